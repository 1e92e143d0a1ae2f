//! In-memory session backend.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::session::{SessionStore, Versioned};
use crate::{Result, StoreError};

struct Entry {
    value: serde_json::Value,
    version: u64,
    expires_at: Instant,
}

/// Sessions in a process-local map, each expiring `ttl` after its last write.
///
/// Expired sessions are dropped when read and swept every few hundred writes, so the map
/// holds at most the sessions written within one TTL. Use it for one instance; several
/// instances share sessions through SQLite, Redis or PostgreSQL.
#[derive(Default)]
pub struct MemorySessionStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Entry>,
    writes: u64,
}

/// A sweep of expired sessions runs after this many writes.
const SWEEP_EVERY: u64 = 256;

impl MemorySessionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many sessions are held (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the map consistent (every update is one
        // insert or remove), so a poisoned lock is safe to reuse.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for MemorySessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySessionStore").field("len", &self.len()).finish()
    }
}

#[async_trait::async_trait]
impl SessionStore for MemorySessionStore {
    async fn load(&self, key: &str) -> Result<Option<Versioned>> {
        let now = Instant::now();
        let mut inner = self.lock();
        match inner.map.get(key) {
            Some(e) if e.expires_at > now => {
                Ok(Some(Versioned { value: e.value.clone(), version: e.version }))
            }
            Some(_) => {
                inner.map.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn save(&self, key: &str, value: &serde_json::Value, expected: u64, ttl: Duration) -> Result<u64> {
        let now = Instant::now();
        let mut inner = self.lock();
        let current = match inner.map.get(key) {
            Some(e) if e.expires_at > now => e.version,
            _ => 0,
        };
        if current != expected {
            return Err(StoreError::Conflict { key: key.to_owned(), expected, found: current });
        }
        let version = current + 1;
        let expires_at = now.checked_add(ttl).unwrap_or(now + Duration::from_secs(100 * 365 * 86_400));
        inner.map.insert(key.to_owned(), Entry { value: value.clone(), version, expires_at });
        inner.writes += 1;
        if inner.writes.is_multiple_of(SWEEP_EVERY) {
            inner.map.retain(|_, e| e.expires_at > now);
        }
        Ok(version)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.lock().map.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn expires_after_ttl() {
        let store = MemorySessionStore::new();
        let v = serde_json::json!({"step": 1});
        assert_eq!(store.save("k", &v, 0, Duration::from_secs(10)).await.unwrap(), 1);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(store.load("k").await.unwrap().unwrap().version, 1);
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(store.load("k").await.unwrap().is_none());
        assert!(store.is_empty());
    }
}
