//! A [`TokenStore`] on any [`SessionStore`]: tokens and refresh leases shared by every
//! process using one SQLite file or PostgreSQL database, which have no token store of their
//! own.
//!
//! Every operation is a compare-and-set on a versioned document: the token under `key`, the
//! lease under `key:lease` (a session expiring with the lease's TTL). Removing writes a
//! tombstone (`null`) at the version read, so a token or lease written meanwhile by another
//! process is never removed by mistake.
//!
//! ```
//! use std::sync::Arc;
//! use wemp_store::{CachedToken, SessionTokenStore, TokenStore};
//! use wemp_store::memory::MemorySessionStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> wemp_store::Result<()> {
//! let store = SessionTokenStore::new(Arc::new(MemorySessionStore::new()));
//! store.put("wx1", &CachedToken { value: "t1".into(), expires_at_ms: 1_000 }).await?;
//! assert!(store.invalidate("wx1", "t1").await?);
//! assert_eq!(store.get("wx1").await?, None);
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::{CachedToken, Lease, Result, SessionStore, StoreError, TokenStore, Versioned};

/// How long a token document is kept after its last write (tokens live 2 hours).
const TOKEN_KEEP: Duration = Duration::from_secs(7 * 86_400);
/// How often a compare-and-set that lost a race is tried again.
const TRIES: usize = 100;

/// Tokens and leases as session documents (see the [module](self)).
#[derive(Clone)]
pub struct SessionTokenStore {
    sessions: Arc<dyn SessionStore>,
}

impl std::fmt::Debug for SessionTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTokenStore").finish_non_exhaustive()
    }
}

fn lease_key(key: &str) -> String {
    format!("{key}:lease")
}

/// A fence unique across processes: the process id, the time and a counter.
fn fence() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = wemp_proto::clock::Clock::now_ms(&wemp_proto::clock::SystemClock);
    format!("{}-{now}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// The document's value, `None` for none or a tombstone, and its version (0: none).
fn read(doc: Option<Versioned>) -> (Option<Value>, u64) {
    match doc {
        Some(Versioned { value: Value::Null, version }) => (None, version),
        Some(Versioned { value, version }) => (Some(value), version),
        None => (None, 0),
    }
}

impl SessionTokenStore {
    /// Tokens kept in `sessions`.
    pub fn new(sessions: Arc<dyn SessionStore>) -> Self {
        Self { sessions }
    }

    async fn token(&self, key: &str) -> Result<(Option<CachedToken>, u64)> {
        let (value, version) = read(self.sessions.load(key).await?);
        Ok((value.map(serde_json::from_value).transpose()?, version))
    }

    /// The lease's fence and version, when a lease is held.
    async fn lease(&self, key: &str) -> Result<(Option<String>, u64)> {
        let (value, version) = read(self.sessions.load(&lease_key(key)).await?);
        Ok((value.and_then(|v| v.as_str().map(str::to_owned)), version))
    }

    /// Writes `value` at `expected`; `Ok(false)` when another writer got there first.
    async fn cas(&self, key: &str, value: &Value, expected: u64, ttl: Duration) -> Result<bool> {
        match self.sessions.save(key, value, expected, ttl).await {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn contended(key: &str) -> StoreError {
        StoreError::Conflict { key: key.to_owned(), expected: 0, found: 0 }
    }
}

#[async_trait::async_trait]
impl TokenStore for SessionTokenStore {
    async fn get(&self, key: &str) -> Result<Option<CachedToken>> {
        Ok(self.token(key).await?.0)
    }

    async fn put(&self, key: &str, token: &CachedToken) -> Result<CachedToken> {
        let value = serde_json::to_value(token)?;
        for _ in 0..TRIES {
            let (stored, version) = self.token(key).await?;
            if let Some(stored) = stored.filter(|s| s.expires_at_ms > token.expires_at_ms) {
                return Ok(stored);
            }
            if self.cas(key, &value, version, TOKEN_KEEP).await? {
                return Ok(token.clone());
            }
        }
        Err(Self::contended(key))
    }

    async fn invalidate(&self, key: &str, failed: &str) -> Result<bool> {
        for _ in 0..TRIES {
            let (stored, version) = self.token(key).await?;
            if stored.is_none_or(|s| s.value.expose() != failed) {
                return Ok(false);
            }
            if self.cas(key, &Value::Null, version, TOKEN_KEEP).await? {
                return Ok(true);
            }
        }
        Err(Self::contended(key))
    }

    async fn try_lease(&self, key: &str, ttl: Duration) -> Result<Option<Lease>> {
        let (holder, version) = self.lease(key).await?;
        if holder.is_some() {
            return Ok(None);
        }
        let fence = fence();
        // Losing the race means someone else took it.
        let won = self.cas(&lease_key(key), &Value::String(fence.clone()), version, ttl).await?;
        Ok(won.then_some(Lease { fence }))
    }

    async fn release_lease(&self, key: &str, lease: &Lease) -> Result<()> {
        let (holder, version) = self.lease(key).await?;
        if holder.as_deref() == Some(lease.fence.as_str()) {
            // Lost: it expired and was taken meanwhile; that lease is not ours to release.
            self.cas(&lease_key(key), &Value::Null, version, Duration::from_secs(60)).await?;
        }
        Ok(())
    }

    async fn renew_lease(&self, key: &str, lease: &Lease, ttl: Duration) -> Result<bool> {
        let (holder, version) = self.lease(key).await?;
        if holder.as_deref() != Some(lease.fence.as_str()) {
            return Ok(false);
        }
        self.cas(&lease_key(key), &Value::String(lease.fence.clone()), version, ttl).await
    }
}
