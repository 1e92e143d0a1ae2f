//! [`FallbackDedupStore`]: a shared dedup store that degrades to a local one.
//!
//! With several instances, dedup lives in Redis. When Redis fails, answering users matters
//! more than perfect dedup across instances: calls go to a local (in-memory) store, with a
//! warning, and the shared store is tried again every
//! [`probe_interval`](FallbackDedupStore::probe_interval); the first call it answers switches
//! back. While Redis answers, the local store is written through (this process's in-flight
//! claims and the replies it stored or read), so a retry that arrives during an outage is
//! not handled a second time by the process that saw the message.

mod deadlines;

use std::pin::pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use self::deadlines::{Deadlines, Passed};
use crate::dedup::{Claim, DedupStore, Ticket};
use crate::{Result, StoreError};

/// A [`DedupStore`] that uses `primary` while it answers and `fallback` while it does not.
///
/// A primary call that fails or takes longer than [`timeout`](Self::timeout) is served by
/// the fallback instead, and the store turns *degraded*: later calls go straight to the
/// fallback, except one call per [`probe_interval`](Self::probe_interval), which tries the
/// primary again.
///
/// The fallback is written through while the primary answers: every claim this store wins
/// on the primary is also held in the fallback until it is completed or released, and every
/// reply it completes or reads there (by a claim or a wait) is kept in the fallback too (for
/// the caller's `ttl`, at most [`WRITE_THROUGH_TTL`], and within the fallback's own size
/// bound). So when the
/// primary goes away, a retry of a message this process answered gets the same reply, and a
/// retry of a message whose handler is still running here joins it instead of running it a
/// second time. The other way round, when the primary answers again, what only the
/// fallback knows wins: a message answered here while the primary was away gets its stored
/// reply (which the primary learns), and one still being handled here is joined.
///
/// What no process can know during an outage stays unknown: a retry that lands on an
/// instance which neither handled the message nor read its reply is handled again there.
///
/// A primary that writes completions behind (`redis::RedisDedupStore`) answers `complete`
/// once the reply is queued: the reply is kept in the fallback as for any answered call, and
/// an outage shows in the primary's next calls, which it then makes in place.
/// [`DedupStore::flush`] flushes both stores.
pub struct FallbackDedupStore<P, F> {
    primary: P,
    fallback: F,
    timeout: Duration,
    probe_interval: Duration,
    state: Mutex<State>,
    /// Whether calls go to the fallback. An atomic beside the lock, so that while the
    /// primary answers (the usual case) a call takes no lock, where the workers would
    /// otherwise all write the lock's line at every message; switched with `swap`, so that
    /// each switch is logged once.
    degraded: AtomicBool,
    fallback_calls: AtomicU64,
    /// The deadlines of claims on the primary (made with the timeout).
    deadlines: Deadlines,
}

struct State {
    last_probe: Option<Instant>,
}

/// The longest time a reply written through to the fallback while the primary answers is
/// kept there. WeChat's retries of one message end within about 15 seconds; the bound keeps
/// the local copy small when callers keep replies on the primary for long.
pub const WRITE_THROUGH_TTL: Duration = Duration::from_secs(600);

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
            state: Mutex::new(State { last_probe: None }),
            degraded: AtomicBool::new(false),
            fallback_calls: AtomicU64::new(0),
            deadlines: Deadlines::new(Duration::from_millis(500)),
        }
    }

    /// A primary call taking longer than this counts as failed (the wait in
    /// [`DedupStore::wait`] is added to it).
    ///
    /// A claim's timeout is kept by a thread of the store's own (one for all its claims,
    /// started with the first), in real time: under a paused tokio clock too. The other
    /// calls' timeouts are tokio's.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.deadlines = Deadlines::new(timeout);
        self
    }

    /// While degraded, the primary is tried again at most once per `interval`.
    pub fn probe_interval(mut self, interval: Duration) -> Self {
        self.probe_interval = interval;
        self
    }

    /// Whether calls go to the fallback now.
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
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
        // The state is a plain field, consistent after any panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn route(&self) -> Route {
        if !self.degraded.load(Ordering::Acquire) {
            return Route::Primary;
        }
        let mut s = self.lock();
        if !self.degraded.load(Ordering::Acquire) {
            return Route::Primary;
        }
        let now = Instant::now();
        if s.last_probe.is_none_or(|t| now.duration_since(t) >= self.probe_interval) {
            s.last_probe = Some(now);
            Route::Primary
        } else {
            self.fallback_calls.fetch_add(1, Ordering::Relaxed);
            Route::Fallback
        }
    }

    fn primary_ok(&self) {
        // Read first: the usual answer writes nothing.
        if self.degraded.load(Ordering::Acquire) && self.degraded.swap(false, Ordering::AcqRel) {
            tracing::info!("shared dedup store answers again; leaving the local fallback");
        }
    }

    fn primary_failed(&self, op: &str, error: &StoreError) {
        let now = Instant::now();
        let mut s = self.lock();
        s.last_probe = Some(now);
        self.fallback_calls.fetch_add(1, Ordering::Relaxed);
        if !self.degraded.swap(true, Ordering::AcqRel) {
            tracing::warn!(op, %error, "shared dedup store failed; using the local fallback");
        } else {
            tracing::debug!(op, %error, "shared dedup store still failing");
        }
    }

    /// The primary answered `claim` for `key` with `claim`: keep the fallback in step with
    /// it (write-through), and let what only the fallback knows win. The ticket is the
    /// fallback's, for completing its copy of a new claim.
    async fn write_through_claim(&self, key: &str, in_flight_ttl: Duration, claim: Claim) -> (Claim, Ticket) {
        let claim = match claim {
            Claim::New => match self.fallback_claim(key, in_flight_ttl).await {
                // The usual case: the fallback now holds our in-flight claim as well.
                Ok((Claim::New, ticket)) => return (Claim::New, ticket),
                // Answered here while the primary was away (or the primary lost the key): the
                // handler must not run again, and the primary learns the reply for retries
                // landing on other instances.
                Ok((Claim::Done(reply), _)) => {
                    self.reply_to_primary(key, &reply, in_flight_ttl).await;
                    Claim::Done(reply)
                }
                // Still being handled here: join it. The owner's completion reaches the
                // primary too, where the caller's wait looks.
                Ok((Claim::InFlight, _)) => Claim::InFlight,
                Err(e) => {
                    tracing::debug!(error = %e, "local fallback failed; keeping the shared claim");
                    Claim::New
                }
            },
            Claim::InFlight => match self.fallback.wait(key, Duration::ZERO).await {
                // Answered here, but the reply never reached the primary.
                Ok(Some(reply)) => {
                    self.reply_to_primary(key, &reply, in_flight_ttl).await;
                    Claim::Done(reply)
                }
                _ => Claim::InFlight,
            },
            Claim::Done(reply) => {
                // Kept here too, for a retry that arrives while the primary is away.
                let ttl = in_flight_ttl.max(crate::memory::MIN_REPLY_TTL).min(WRITE_THROUGH_TTL);
                if let Err(e) = self.fallback_complete(key, Ticket::NONE, &reply, ttl).await {
                    tracing::debug!(error = %e, "cannot keep a shared reply in the local fallback");
                }
                Claim::Done(reply)
            }
        };
        (claim, Ticket::NONE)
    }

    /// The fallback's claim: answered at once by a fallback that can (the memory store), else
    /// by its async claim.
    async fn fallback_claim(&self, key: &str, in_flight_ttl: Duration) -> Result<(Claim, Ticket)> {
        match self.fallback.claim_ticket_now(key, in_flight_ttl) {
            Some(answered) => answered,
            None => self.fallback.claim_ticket(key, in_flight_ttl).await,
        }
    }

    /// The fallback's completion: at once by a fallback that can (the memory store), else by
    /// its async completion.
    async fn fallback_complete(&self, key: &str, ticket: Ticket, reply: &str, ttl: Duration) -> Result<()> {
        match self.fallback.complete_claimed_now(key, ticket, reply, ttl, Instant::now()) {
            Some(done) => done,
            None => self.fallback.complete_claimed(key, ticket, reply, ttl).await,
        }
    }

    /// Stores on the primary a reply only the fallback had.
    async fn reply_to_primary(&self, key: &str, reply: &str, in_flight_ttl: Duration) {
        let ttl = in_flight_ttl.max(crate::memory::MIN_REPLY_TTL);
        self.try_primary("complete", self.timeout, self.primary.complete(key, reply, ttl)).await;
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
            Err(_) => Err(timed_out(timeout)),
        };
        self.answered(op, result)
    }

    /// The primary's claim, bounded by the timeout as [`Self::try_primary`] bounds a call,
    /// with its deadline kept by the store's thread rather than a timer of its own (a claim
    /// is made for every message); `None` after recording a failure.
    async fn claim_on_primary(&self, key: &str, in_flight_ttl: Duration) -> Option<Claim> {
        let mut call = pin!(self.primary.claim_unboxed(key, in_flight_ttl));
        let mut deadline = self.deadlines.deadline();
        // Only when the thread could not be started.
        let mut timer = None;
        let result = std::future::poll_fn(|cx| {
            if let Poll::Ready(answered) = call.as_mut().poll(cx) {
                return Poll::Ready(answered);
            }
            let passed = match &mut timer {
                None => match deadline.passed(cx.waker()) {
                    Passed::No => false,
                    Passed::Yes => true,
                    Passed::Unkept => {
                        let timer = timer.insert(Box::pin(tokio::time::sleep(self.timeout)));
                        timer.as_mut().poll(cx).is_ready()
                    }
                },
                Some(timer) => timer.as_mut().poll(cx).is_ready(),
            };
            if passed { Poll::Ready(Err(timed_out(self.timeout))) } else { Poll::Pending }
        })
        .await;
        drop(deadline);
        self.answered("claim", result)
    }

    /// Records whether the primary answered `op`: `None` after recording a failure.
    fn answered<T>(&self, op: &str, result: Result<T>) -> Option<T> {
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

/// The failure of a primary call that took longer than `timeout`.
fn timed_out(timeout: Duration) -> StoreError {
    StoreError::backend("fallback", format!("primary timed out after {timeout:?}"))
}

impl<P, F> std::fmt::Debug for FallbackDedupStore<P, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let degraded = self.degraded.load(Ordering::Acquire);
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
        Ok(self.claim_ticket(key, in_flight_ttl).await?.0)
    }

    /// The claim, with the fallback's ticket (its copy of the claim is completed with it).
    async fn claim_ticket(&self, key: &str, in_flight_ttl: Duration) -> Result<(Claim, Ticket)> {
        if let Route::Primary = self.route()
            && let Some(c) = self.claim_on_primary(key, in_flight_ttl).await
        {
            return Ok(self.write_through_claim(key, in_flight_ttl, c).await);
        }
        self.fallback_claim(key, in_flight_ttl).await
    }

    async fn complete(&self, key: &str, reply: &str, ttl: Duration) -> Result<()> {
        self.complete_claimed(key, Ticket::NONE, reply, ttl).await
    }

    async fn complete_claimed(&self, key: &str, ticket: Ticket, reply: &str, ttl: Duration) -> Result<()> {
        if let Route::Primary = self.route()
            && self
                .try_primary("complete", self.timeout, self.primary.complete(key, reply, ttl))
                .await
                .is_some()
        {
            // Written through: the reply a retry gets if the primary goes away.
            let ttl = ttl.min(WRITE_THROUGH_TTL);
            if let Err(e) = self.fallback_complete(key, ticket, reply, ttl).await {
                tracing::debug!(error = %e, "cannot keep the reply in the local fallback");
            }
            return Ok(());
        }
        self.fallback_complete(key, ticket, reply, ttl).await
    }

    /// While the primary answers, completes at once where the primary does (a primary that
    /// writes completions behind queues the reply, with no timer or future) and the fallback
    /// too, keeping the reply there as [`DedupStore::complete_claimed`] does; `None` (nothing
    /// done) while degraded, or when the primary must be waited for.
    ///
    /// A fallback that cannot complete at once also answers `None`, after the primary
    /// completed: the async completion then completes both, the primary a second time with
    /// the same reply.
    fn complete_claimed_now(
        &self,
        key: &str,
        ticket: Ticket,
        reply: &str,
        ttl: Duration,
        now: Instant,
    ) -> Option<Result<()>> {
        if self.is_degraded() {
            return None;
        }
        match self.primary.complete_claimed_now(key, Ticket::NONE, reply, ttl, now)? {
            Ok(()) => {
                self.primary_ok();
                // Written through, as by the async completion.
                if let Err(e) =
                    self.fallback.complete_claimed_now(key, ticket, reply, ttl.min(WRITE_THROUGH_TTL), now)?
                {
                    tracing::debug!(error = %e, "cannot keep the reply in the local fallback");
                }
                Some(Ok(()))
            }
            Err(e) => {
                self.primary_failed("complete", &e);
                self.fallback.complete_claimed_now(key, ticket, reply, ttl, now)
            }
        }
    }

    async fn release(&self, key: &str) -> Result<()> {
        if let Route::Primary = self.route()
            && self.try_primary("release", self.timeout, self.primary.release(key)).await.is_some()
        {
            if let Err(e) = self.fallback.release(key).await {
                tracing::debug!(error = %e, "cannot release the local copy of a claim");
            }
            return Ok(());
        }
        self.fallback.release(key).await
    }

    async fn wait(&self, key: &str, timeout: Duration) -> Result<Option<String>> {
        let start = Instant::now();
        if let Route::Primary = self.route() {
            let bound = timeout.saturating_add(self.timeout);
            // The primary answered with a reply; otherwise the claim may be one taken on the
            // fallback while the primary was away, or the primary failed: look here too.
            if let Some(Some(found)) = self.try_primary("wait", bound, self.primary.wait(key, timeout)).await
            {
                // Kept here too: this process saw the reply, so a retry that reaches it while
                // the primary is away gets it.
                let ttl = crate::memory::MIN_REPLY_TTL;
                if let Err(e) = self.fallback_complete(key, Ticket::NONE, &found, ttl).await {
                    tracing::debug!(error = %e, "cannot keep a shared reply in the local fallback");
                }
                return Ok(Some(found));
            }
        }
        let left = timeout.saturating_sub(start.elapsed());
        self.fallback.wait(key, left).await
    }

    async fn flush(&self) -> Result<()> {
        let (primary, fallback) = tokio::join!(self.primary.flush(), self.fallback.flush());
        primary.and(fallback)
    }
}
