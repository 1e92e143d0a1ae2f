use std::sync::Arc;

use wemp_store::memory::{MemoryDedupStore, MemoryMessageLog, MemorySessionStore, MemoryTokenStore};

use crate::suite;

fn twice<T>(store: T) -> (Arc<T>, Arc<T>) {
    let a = Arc::new(store);
    (Arc::clone(&a), a)
}

#[tokio::test]
async fn dedup() {
    let (a, b) = twice(MemoryDedupStore::default());
    suite::dedup(a, b).await;
}

/// The memory store answers claims and completions at once: the suite passes through that
/// path alone, and with one handle on each path (the same store).
#[tokio::test]
async fn dedup_answered_now() {
    let (a, b) = twice(MemoryDedupStore::default());
    suite::dedup(Arc::new(suite::Now(a)), Arc::new(suite::Now(b))).await;
    let (a, b) = twice(MemoryDedupStore::default());
    suite::dedup(Arc::new(suite::Now(a)), b).await;
    let (a, b) = twice(MemoryDedupStore::default());
    suite::dedup(a, Arc::new(suite::Now(b))).await;
}

#[tokio::test]
async fn token() {
    let (a, b) = twice(MemoryTokenStore::new());
    suite::token_store(a, b).await;
}

#[tokio::test]
async fn session() {
    let (a, b) = twice(MemorySessionStore::new());
    suite::session(a, b).await;
}

#[tokio::test]
async fn log() {
    let (a, b) = twice(MemoryMessageLog::default());
    suite::log(a, b).await;
}

#[tokio::test]
async fn fallback_dedup() {
    let store = wemp_store::FallbackDedupStore::new(MemoryDedupStore::default(), MemoryDedupStore::default());
    let (a, b) = twice(store);
    suite::dedup(a, b).await;
}

#[tokio::test]
async fn component() {
    let store: Arc<dyn wemp_store::SessionStore> = Arc::new(MemorySessionStore::new());
    suite::component(store.clone(), store).await;
}

#[tokio::test]
async fn token_on_sessions() {
    let (a, b) = twice(wemp_store::SessionTokenStore::new(Arc::new(MemorySessionStore::new())));
    suite::token_store(a, b).await;
}
