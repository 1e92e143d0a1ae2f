//! [`FallbackDedupStore`]: a shared dedup store that degrades to a local one.
//!
//! With several instances, dedup lives in Redis. When Redis fails, answering users matters
//! more than perfect dedup across instances: calls go to a local (in-memory) store, with a
//! warning, and the shared store is tried again every
//! [`probe_interval`](FallbackDedupStore::probe_interval); the first call it answers switches
//! back.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::dedup::{Claim, DedupStore};
use crate::{Result, StoreError};

/// A [`DedupStore`] that uses `primary` while it answers and `fallback` while it does not.
///
/// A primary call that fails or takes longer than [`timeout`](Self::timeout) is served by
/// the fallback instead, and the store turns *degraded*: later calls go straight to the
/// fallback, except one call per [`probe_interval`](Self::probe_interval), which tries the
/// primary again. While the fallback was used in the last ten minutes, completions and
/// releases also go to it, so claims taken there are finished there, and a key the primary
/// hands out as new is first looked up on the fallback: a message answered (or still being
/// handled) there while the primary was away is not handled a second time.
pub struct FallbackDedupStore<P, F> {
    primary: P,
    fallback: F,
    timeout: Duration,
    probe_interval: Duration,
    state: Mutex<State>,
    fallback_calls: AtomicU64,
}

struct State {
    degraded: bool,
    last_probe: Option<Instant>,
    last_fallback_use: Option<Instant>,
}

/// How long after its last use completions and releases are mirrored to the fallback.
const MIRROR_WINDOW: Duration = Duration::from_secs(600);

enum Route {
    Primary,
    Fallback,
}

impl<P: DedupStore, F: DedupStore> FallbackDedupStore<P, F> {
    /// Uses `primary`, falling back to `fallback`; a 500 ms timeout and a 1 s probe interval
    /// unless set.
    pub fn new(primary: P, fallback: F) -> Self {
        Self {
            primary,
            fallback,
            timeout: Duration::from_millis(500),
            probe_interval: Duration::from_secs(1),
            state: Mutex::new(State { degraded: false, last_probe: None, last_fallback_use: None }),
            fallback_calls: AtomicU64::new(0),
        }
    }

    /// A primary call taking longer than this counts as failed (the wait in
    /// [`DedupStore::wait`] is added to it).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// While degraded, the primary is tried again at most once per `interval`.
    pub fn probe_interval(mut self, interval: Duration) -> Self {
        self.probe_interval = interval;
        self
    }

    /// Whether calls go to the fallback now.
    pub fn is_degraded(&self) -> bool {
        self.lock().degraded
    }

    /// Calls served by the fallback so far (for metrics).
    pub fn fallback_calls(&self) -> u64 {
        self.fallback_calls.load(Ordering::Relaxed)
    }

    /// The shared store.
    pub fn primary(&self) -> &P {
        &self.primary
    }

    /// The local store.
    pub fn fallback(&self) -> &F {
        &self.fallback
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a few plain fields, consistent after any panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn route(&self) -> Route {
        let mut s = self.lock();
        if !s.degraded {
            return Route::Primary;
        }
        let now = Instant::now();
        if s.last_probe.is_none_or(|t| now.duration_since(t) >= self.probe_interval) {
            s.last_probe = Some(now);
            Route::Primary
        } else {
            s.last_fallback_use = Some(now);
            self.fallback_calls.fetch_add(1, Ordering::Relaxed);
            Route::Fallback
        }
    }

    fn primary_ok(&self) {
        let mut s = self.lock();
        if s.degraded {
            s.degraded = false;
            tracing::info!("shared dedup store answers again; leaving the local fallback");
        }
    }

    fn primary_failed(&self, op: &str, error: &StoreError) {
        let now = Instant::now();
        let mut s = self.lock();
        s.last_probe = Some(now);
        s.last_fallback_use = Some(now);
        self.fallback_calls.fetch_add(1, Ordering::Relaxed);
        if !s.degraded {
            s.degraded = true;
            tracing::warn!(op, %error, "shared dedup store failed; using the local fallback");
        } else {
            tracing::debug!(op, %error, "shared dedup store still failing");
        }
    }

    fn mirror_to_fallback(&self) -> bool {
        self.lock().last_fallback_use.is_some_and(|t| t.elapsed() < MIRROR_WINDOW)
    }

    /// The primary just gave us `key`, but the fallback was in use lately: a delivery of the
    /// same message may have been claimed there while the primary was away. If it was
    /// answered there, the reply is stored on the primary too and returned (the handler must
    /// not run again); if it is still being handled there, the caller joins it (the owner's
    /// completion reaches the primary, where the caller's wait looks). Otherwise the claim
    /// stays ours.
    async fn claimed_on_fallback(&self, key: &str, in_flight_ttl: Duration) -> Claim {
        match self.fallback.claim(key, in_flight_ttl).await {
            Ok(Claim::Done(reply)) => {
                let ttl = in_flight_ttl.max(crate::memory::MIN_REPLY_TTL);
                self.try_primary("complete", self.timeout, self.primary.complete(key, &reply, ttl)).await;
                Claim::Done(reply)
            }
            Ok(Claim::InFlight) => Claim::InFlight,
            Ok(Claim::New) => {
                // Only a probe: the claim that counts is the primary's.
                if let Err(e) = self.fallback.release(key).await {
                    tracing::debug!(error = %e, "cannot release a probing fallback claim");
                }
                Claim::New
            }
            Err(e) => {
                tracing::debug!(error = %e, "local fallback failed; keeping the shared claim");
                Claim::New
            }
        }
    }

    /// Runs `call` on the primary, bounded by `timeout`; `None` after recording a failure.
    async fn try_primary<T>(
        &self,
        op: &str,
        timeout: Duration,
        call: impl Future<Output = Result<T>>,
    ) -> Option<T> {
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::backend("fallback", format!("primary timed out after {timeout:?}"))),
        };
        match result {
            Ok(v) => {
                self.primary_ok();
                Some(v)
            }
            Err(e) => {
                self.primary_failed(op, &e);
                None
            }
        }
    }
}

impl<P, F> std::fmt::Debug for FallbackDedupStore<P, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let degraded = self.state.lock().map(|s| s.degraded).unwrap_or(true);
        f.debug_struct("FallbackDedupStore")
            .field("degraded", &degraded)
            .field("timeout", &self.timeout)
            .field("probe_interval", &self.probe_interval)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl<P: DedupStore, F: DedupStore> DedupStore for FallbackDedupStore<P, F> {
    async fn claim(&self, key: &str, in_flight_ttl: Duration) -> Result<Claim> {
        if let Route::Primary = self.route()
            && let Some(c) =
                self.try_primary("claim", self.timeout, self.primary.claim(key, in_flight_ttl)).await
        {
            if c == Claim::New && self.mirror_to_fallback() {
                return Ok(self.claimed_on_fallback(key, in_flight_ttl).await);
            }
            return Ok(c);
        }
        self.fallback.claim(key, in_flight_ttl).await
    }

    async fn complete(&self, key: &str, reply: &str, ttl: Duration) -> Result<()> {
        if let Route::Primary = self.route()
            && self
                .try_primary("complete", self.timeout, self.primary.complete(key, reply, ttl))
                .await
                .is_some()
        {
            if self.mirror_to_fallback() {
                self.fallback.complete(key, reply, ttl).await?;
            }
            return Ok(());
        }
        self.fallback.complete(key, reply, ttl).await
    }

    async fn release(&self, key: &str) -> Result<()> {
        if let Route::Primary = self.route()
            && self.try_primary("release", self.timeout, self.primary.release(key)).await.is_some()
        {
            if self.mirror_to_fallback() {
                self.fallback.release(key).await?;
            }
            return Ok(());
        }
        self.fallback.release(key).await
    }

    async fn wait(&self, key: &str, timeout: Duration) -> Result<Option<String>> {
        let start = Instant::now();
        if let Route::Primary = self.route() {
            let bound = timeout.saturating_add(self.timeout);
            match self.try_primary("wait", bound, self.primary.wait(key, timeout)).await {
                // The primary answered but saw nothing; the claim may have been taken on the
                // fallback while the primary was away.
                Some(None) if self.mirror_to_fallback() => {}
                Some(found) => return Ok(found),
                None => {}
            }
        }
        let left = timeout.saturating_sub(start.elapsed());
        self.fallback.wait(key, left).await
    }
}
