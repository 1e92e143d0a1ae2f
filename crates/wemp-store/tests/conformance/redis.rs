use std::sync::Arc;

use redis::aio::ConnectionManager;
use wemp_store::redis::{RedisDedupStore, RedisSessionStore, RedisTokenStore};

use crate::suite;

/// Two connections to the test Redis and a fresh key prefix; `None` (with a note on
/// stderr) if no Redis answers.
async fn connect(test: &str) -> Option<(ConnectionManager, ConnectionManager, String)> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let connect = async {
        Ok::<_, wemp_store::StoreError>((
            wemp_store::redis::connect(&url).await?,
            wemp_store::redis::connect(&url).await?,
        ))
    };
    match tokio::time::timeout(std::time::Duration::from_secs(5), connect).await {
        Ok(Ok((a, b))) => Some((a, b, format!("wemp-test:{test}:{:016x}:", rand::random::<u64>()))),
        Ok(Err(e)) => {
            eprintln!("skipping redis test {test}: cannot connect to {url}: {e}");
            None
        }
        Err(_) => {
            eprintln!("skipping redis test {test}: {url} did not answer within 5 s");
            None
        }
    }
}

/// Deletes every key under `prefix`.
async fn cleanup(mut conn: ConnectionManager, prefix: &str) {
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.unwrap();
    if !keys.is_empty() {
        let () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.unwrap();
    }
    let left: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.unwrap();
    assert_eq!(left, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn dedup() {
    let Some((a, b, prefix)) = connect("dedup").await else { return };
    suite::dedup(
        Arc::new(RedisDedupStore::new(a.clone(), &prefix)),
        Arc::new(RedisDedupStore::new(b, &prefix)),
    )
    .await;
    cleanup(a, &prefix).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn token() {
    let Some((a, b, prefix)) = connect("token").await else { return };
    suite::token_store(
        Arc::new(RedisTokenStore::new(a.clone(), &prefix)),
        Arc::new(RedisTokenStore::new(b, &prefix)),
    )
    .await;
    cleanup(a, &prefix).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn session() {
    let Some((a, b, prefix)) = connect("session").await else { return };
    suite::session(
        Arc::new(RedisSessionStore::new(a.clone(), &prefix)),
        Arc::new(RedisSessionStore::new(b, &prefix)),
    )
    .await;
    cleanup(a, &prefix).await;
}

/// Stores with different prefixes on one Redis never see each other's keys.
#[tokio::test(flavor = "multi_thread")]
async fn prefixes_isolate() {
    let Some((a, b, prefix)) = connect("prefixes").await else { return };
    let one = RedisDedupStore::new(a.clone(), format!("{prefix}one:"));
    let two = RedisDedupStore::new(b, format!("{prefix}two:"));
    let minute = std::time::Duration::from_secs(60);
    use wemp_store::{Claim, DedupStore};
    assert_eq!(one.claim("wx1:msg:o1:1", minute).await.unwrap(), Claim::New);
    assert_eq!(two.claim("wx1:msg:o1:1", minute).await.unwrap(), Claim::New);
    cleanup(a, &prefix).await;
}

/// The fallback wrapper over Redis, as the server runs it: two instances, each with its
/// own memory fallback, sharing Redis.
#[tokio::test(flavor = "multi_thread")]
async fn fallback_dedup() {
    use wemp_store::FallbackDedupStore;
    use wemp_store::memory::MemoryDedupStore;
    let Some((a, b, prefix)) = connect("fallback").await else { return };
    let instance =
        |conn| FallbackDedupStore::new(RedisDedupStore::new(conn, &prefix), MemoryDedupStore::default());
    let (one, two) = (Arc::new(instance(a.clone())), Arc::new(instance(b)));
    suite::dedup(one.clone(), two.clone()).await;
    assert!(!one.is_degraded() && !two.is_degraded());
    cleanup(a, &prefix).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn component() {
    let Some((a, b, prefix)) = connect("component").await else { return };
    suite::component(
        Arc::new(RedisSessionStore::new(a.clone(), &prefix)),
        Arc::new(RedisSessionStore::new(b, &prefix)),
    )
    .await;
    cleanup(a, &prefix).await;
}
