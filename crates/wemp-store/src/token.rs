//! Shared storage of access tokens (and jsapi tickets) for the API client.
//!
//! Several processes share one token: whoever holds the refresh [`Lease`] fetches a new one
//! and stores it; the others wait for it and read it. Writes keep the token with the later
//! expiry, and invalidation is compare-and-invalidate, so a stale failure report can never
//! throw away a token that already replaced the failed one.

use std::time::Duration;

use wemp_proto::Secret;

use crate::Result;

/// A token and when it stops being usable. `Debug` shows only the token's length.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CachedToken {
    /// The token itself (stored as its value: the stores share it between processes).
    #[serde(with = "wemp_proto::secret_serde")]
    pub value: Secret,
    /// Expiry, milliseconds since the Unix epoch (on the client's clock).
    pub expires_at_ms: i64,
}

/// A held refresh lease; the fence is unique per acquisition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Distinguishes this holder from any later one (so an expired holder cannot release a
    /// newer holder's lease).
    pub fence: String,
}

/// Where tokens live between calls and processes.
#[async_trait::async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// The stored token for `key`, if any (expired ones included: the caller decides).
    async fn get(&self, key: &str) -> Result<Option<CachedToken>>;

    /// Stores `token` unless the stored one expires later; returns the token now stored.
    async fn put(&self, key: &str, token: &CachedToken) -> Result<CachedToken>;

    /// Removes the stored token only if its value is `failed`; returns whether it did.
    async fn invalidate(&self, key: &str, failed: &str) -> Result<bool>;

    /// Tries to take the refresh lease for `key` for `ttl`; `None` if someone holds it.
    async fn try_lease(&self, key: &str, ttl: Duration) -> Result<Option<Lease>>;

    /// Releases a lease, only if it is still this holder's.
    async fn release_lease(&self, key: &str, lease: &Lease) -> Result<()>;

    /// Extends a held lease to expire `ttl` from now, only if it is still this holder's;
    /// returns whether it was (`false`: it expired and may be someone else's now). A holder
    /// whose fetch outlasts the lease renews it, so nobody else starts a second fetch.
    async fn renew_lease(&self, key: &str, lease: &Lease, ttl: Duration) -> Result<bool>;
}
