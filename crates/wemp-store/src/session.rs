//! Conversation sessions per (appid, OpenID), with optimistic concurrency.
//!
//! A session is a JSON value and a version. A write names the version it read; if another
//! writer got there first the write fails with [`crate::StoreError::Conflict`] and the
//! caller re-reads and retries. Nothing is silently lost.

use std::time::Duration;

use crate::Result;

/// A stored value and its version (1 for the first write).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    /// The value.
    pub value: serde_json::Value,
    /// Its version.
    pub version: u64,
}

/// Session storage.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// The session under `key`, if any and not expired.
    async fn load(&self, key: &str) -> Result<Option<Versioned>>;

    /// Writes `value` if the stored version is still `expected` (0: no session yet); the
    /// session then expires `ttl` after this write. Returns the new version.
    async fn save(&self, key: &str, value: &serde_json::Value, expected: u64, ttl: Duration) -> Result<u64>;

    /// Removes the session.
    async fn delete(&self, key: &str) -> Result<()>;
}
