//! In-memory token backend.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::Result;
use crate::token::{CachedToken, Lease, TokenStore};

/// A [`TokenStore`] in this process's memory: the default, shared by the clients of one
/// process (clone the `Arc` you hand to each client).
///
/// Writes keep the token with the later expiry, invalidation compares before removing, and
/// the refresh lease expires on its own after its time to live (measured on the monotonic
/// clock), so a holder that never releases cannot block refreshes forever.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use wemp_store::{CachedToken, TokenStore, memory::MemoryTokenStore};
///
/// let store = MemoryTokenStore::new();
/// let lease = store.try_lease("wx1", Duration::from_secs(5)).await?.expect("free");
/// assert!(store.try_lease("wx1", Duration::from_secs(5)).await?.is_none());
/// store.put("wx1", &CachedToken { value: "t1".into(), expires_at_ms: 1_000 }).await?;
/// store.release_lease("wx1", &lease).await?;
/// assert_eq!(store.get("wx1").await?.unwrap().value.expose(), "t1");
/// # Ok::<(), wemp_store::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    state: Mutex<State>,
    fences: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    tokens: HashMap<String, CachedToken>,
    leases: HashMap<String, (String, Instant)>,
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves the maps consistent (every update is a
        // single insert or remove), so a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl TokenStore for MemoryTokenStore {
    async fn get(&self, key: &str) -> Result<Option<CachedToken>> {
        Ok(self.lock().tokens.get(key).cloned())
    }

    async fn put(&self, key: &str, token: &CachedToken) -> Result<CachedToken> {
        let mut state = self.lock();
        let kept = match state.tokens.get(key) {
            Some(stored) if stored.expires_at_ms > token.expires_at_ms => stored.clone(),
            _ => token.clone(),
        };
        state.tokens.insert(key.to_owned(), kept.clone());
        Ok(kept)
    }

    async fn invalidate(&self, key: &str, failed: &str) -> Result<bool> {
        let mut state = self.lock();
        if state.tokens.get(key).is_some_and(|t| t.value.expose() == failed) {
            state.tokens.remove(key);
            Ok(true)
        } else {
            Ok(false)
        }
    }

    async fn try_lease(&self, key: &str, ttl: Duration) -> Result<Option<Lease>> {
        let now = Instant::now();
        let mut state = self.lock();
        if let Some((_, until)) = state.leases.get(key)
            && *until > now
        {
            return Ok(None);
        }
        let fence = format!("{}", self.fences.fetch_add(1, Ordering::Relaxed) + 1);
        state.leases.insert(key.to_owned(), (fence.clone(), now + ttl));
        Ok(Some(Lease { fence }))
    }

    async fn release_lease(&self, key: &str, lease: &Lease) -> Result<()> {
        let mut state = self.lock();
        if state.leases.get(key).is_some_and(|(fence, _)| *fence == lease.fence) {
            state.leases.remove(key);
        }
        Ok(())
    }

    async fn renew_lease(&self, key: &str, lease: &Lease, ttl: Duration) -> Result<bool> {
        let now = Instant::now();
        let mut state = self.lock();
        match state.leases.get_mut(key) {
            Some((fence, until)) if *fence == lease.fence && *until > now => {
                *until = now + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(value: &str, expires_at_ms: i64) -> CachedToken {
        CachedToken { value: value.into(), expires_at_ms }
    }

    #[tokio::test]
    async fn put_keeps_the_later_expiry() {
        let store = MemoryTokenStore::new();
        assert_eq!(store.get("k").await.unwrap(), None);
        assert_eq!(store.put("k", &tok("a", 200)).await.unwrap(), tok("a", 200));
        assert_eq!(store.put("k", &tok("old", 100)).await.unwrap(), tok("a", 200));
        assert_eq!(store.get("k").await.unwrap(), Some(tok("a", 200)));
        assert_eq!(store.put("k", &tok("b", 300)).await.unwrap(), tok("b", 300));
        assert_eq!(store.get("other").await.unwrap(), None);
    }

    #[tokio::test]
    async fn invalidate_compares_first() {
        let store = MemoryTokenStore::new();
        store.put("k", &tok("new", 100)).await.unwrap();
        assert!(!store.invalidate("k", "stale").await.unwrap());
        assert_eq!(store.get("k").await.unwrap(), Some(tok("new", 100)));
        assert!(store.invalidate("k", "new").await.unwrap());
        assert_eq!(store.get("k").await.unwrap(), None);
        assert!(!store.invalidate("k", "new").await.unwrap());
    }

    #[tokio::test]
    async fn lease_is_exclusive_fenced_and_expires() {
        let store = MemoryTokenStore::new();
        let first = store.try_lease("k", Duration::from_millis(30)).await.unwrap().unwrap();
        assert!(store.try_lease("k", Duration::from_secs(5)).await.unwrap().is_none());
        // Another key is independent.
        assert!(store.try_lease("k2", Duration::from_secs(5)).await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(60)).await;
        let second = store.try_lease("k", Duration::from_secs(5)).await.unwrap().unwrap();
        assert_ne!(first.fence, second.fence);
        // The expired holder cannot release the newer holder's lease.
        store.release_lease("k", &first).await.unwrap();
        assert!(store.try_lease("k", Duration::from_secs(5)).await.unwrap().is_none());
        store.release_lease("k", &second).await.unwrap();
        assert!(store.try_lease("k", Duration::from_secs(5)).await.unwrap().is_some());
    }
}
