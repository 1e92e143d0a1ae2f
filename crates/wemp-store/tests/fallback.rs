//! `FallbackDedupStore` over a primary that can be switched off.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use wemp_store::memory::MemoryDedupStore;
use wemp_store::{Claim, DedupStore, FallbackDedupStore, Result, StoreError, Ticket};

const MINUTE: Duration = Duration::from_secs(60);

/// A memory store that fails (or hangs) while switched off; clones share everything.
#[derive(Clone, Default)]
struct Switchable {
    store: MemoryDedupStore,
    down: Arc<AtomicBool>,
    hang: Arc<AtomicBool>,
    calls: Arc<AtomicU64>,
}

impl Switchable {
    async fn check(&self) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::backend("test", "connection refused"));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl DedupStore for Switchable {
    async fn claim(&self, key: &str, ttl: Duration) -> Result<Claim> {
        self.check().await?;
        self.store.claim(key, ttl).await
    }
    async fn complete(&self, key: &str, reply: &str, ttl: Duration) -> Result<()> {
        self.check().await?;
        self.store.complete(key, reply, ttl).await
    }
    async fn release(&self, key: &str) -> Result<()> {
        self.check().await?;
        self.store.release(key).await
    }
    async fn wait(&self, key: &str, timeout: Duration) -> Result<Option<String>> {
        self.check().await?;
        self.store.wait(key, timeout).await
    }
    /// At once, as a store that writes completions behind completes: unless hanging (the
    /// async completion then hangs).
    fn complete_claimed_now(
        &self,
        key: &str,
        _: Ticket,
        reply_xml: &str,
        ttl: Duration,
        now: Instant,
    ) -> Option<Result<()>> {
        if self.hang.load(Ordering::SeqCst) {
            return None;
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Some(Err(StoreError::backend("test", "connection refused")));
        }
        self.store.complete_claimed_now(key, Ticket::NONE, reply_xml, ttl, now)
    }
}

fn setup(
    probe: Duration,
) -> (Switchable, MemoryDedupStore, FallbackDedupStore<Switchable, MemoryDedupStore>) {
    let primary = Switchable::default();
    let local = MemoryDedupStore::default();
    let store = FallbackDedupStore::new(primary.clone(), local.clone())
        .timeout(Duration::from_millis(100))
        .probe_interval(probe);
    (primary, local, store)
}

#[tokio::test]
async fn uses_primary_while_it_answers() {
    let (primary, local, store) = setup(Duration::ZERO);
    assert_eq!(store.claim("k", MINUTE).await.unwrap(), Claim::New);
    store.complete("k", "r", MINUTE).await.unwrap();
    assert_eq!(primary.store.claim("k", MINUTE).await.unwrap(), Claim::Done("r".into()));
    // The local store holds a copy (write-through) but answered nothing.
    assert_eq!(local.claim("k", MINUTE).await.unwrap(), Claim::Done("r".into()));
    assert!(!store.is_degraded());
    assert_eq!(store.fallback_calls(), 0);
}

#[tokio::test]
async fn claims_replies_and_releases_are_written_through_while_the_primary_answers() {
    let (primary, local, store) = setup(Duration::from_secs(3600));
    // Our claim is held locally too, and its reply lands on both.
    assert_eq!(store.claim("ours", MINUTE).await.unwrap(), Claim::New);
    assert_eq!(local.wait("ours", Duration::ZERO).await.unwrap(), None);
    assert_eq!(local.claim("ours", MINUTE).await.unwrap(), Claim::InFlight);
    store.complete("ours", "r1", MINUTE).await.unwrap();
    assert_eq!(local.claim("ours", MINUTE).await.unwrap(), Claim::Done("r1".into()));
    // Another instance's reply, read from the primary, is kept locally.
    assert_eq!(primary.store.claim("theirs", MINUTE).await.unwrap(), Claim::New);
    primary.store.complete("theirs", "r2", MINUTE).await.unwrap();
    assert_eq!(store.claim("theirs", MINUTE).await.unwrap(), Claim::Done("r2".into()));
    // Another instance's claim still running is not copied: this process does not own it.
    assert_eq!(primary.store.claim("running", MINUTE).await.unwrap(), Claim::New);
    assert_eq!(store.claim("running", MINUTE).await.unwrap(), Claim::InFlight);
    assert_eq!(local.claim("running", MINUTE).await.unwrap(), Claim::New);
    // Another instance's reply, waited for, is kept locally.
    assert_eq!(primary.store.claim("joined", MINUTE).await.unwrap(), Claim::New);
    assert_eq!(store.claim("joined", MINUTE).await.unwrap(), Claim::InFlight);
    let (waited, ()) = tokio::join!(store.wait("joined", MINUTE), async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        primary.store.complete("joined", "r3", MINUTE).await.unwrap();
    });
    assert_eq!(waited.unwrap().as_deref(), Some("r3"));
    // A release frees the local copy too.
    assert_eq!(store.claim("given_up", MINUTE).await.unwrap(), Claim::New);
    store.release("given_up").await.unwrap();
    assert_eq!(local.claim("given_up", MINUTE).await.unwrap(), Claim::New);

    // The primary goes away: retries get what this process answered or read.
    primary.down.store(true, Ordering::SeqCst);
    assert_eq!(store.claim("ours", MINUTE).await.unwrap(), Claim::Done("r1".into()));
    assert!(store.is_degraded());
    assert_eq!(store.claim("theirs", MINUTE).await.unwrap(), Claim::Done("r2".into()));
    assert_eq!(store.claim("joined", MINUTE).await.unwrap(), Claim::Done("r3".into()));
}

#[tokio::test]
async fn a_handler_running_when_the_primary_dies_is_joined_not_run_again() {
    let (primary, _local, store) = setup(Duration::from_secs(3600));
    assert_eq!(store.claim("slow", MINUTE).await.unwrap(), Claim::New);
    primary.down.store(true, Ordering::SeqCst);
    // The retry during the outage joins the running handler.
    assert_eq!(store.claim("slow", MINUTE).await.unwrap(), Claim::InFlight);
    let store = Arc::new(store);
    let waiter = {
        let s = store.clone();
        tokio::spawn(async move { s.wait("slow", MINUTE).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    store.complete("slow", "late", MINUTE).await.unwrap();
    assert_eq!(waiter.await.unwrap().as_deref(), Some("late"));
    assert_eq!(store.claim("slow", MINUTE).await.unwrap(), Claim::Done("late".into()));
}

#[tokio::test]
async fn a_reply_the_primary_never_got_is_given_to_it() {
    let (primary, _local, store) = setup(Duration::ZERO);
    assert_eq!(store.claim("k", MINUTE).await.unwrap(), Claim::New);
    // The completion fails on the primary and lands locally only.
    primary.down.store(true, Ordering::SeqCst);
    store.complete("k", "r", MINUTE).await.unwrap();
    primary.down.store(false, Ordering::SeqCst);
    // The primary still shows the claim in flight; the retry gets the reply, and so does the
    // primary.
    assert_eq!(store.claim("k", MINUTE).await.unwrap(), Claim::Done("r".into()));
    assert_eq!(primary.store.claim("k", MINUTE).await.unwrap(), Claim::Done("r".into()));
}

#[tokio::test(start_paused = true)]
async fn the_local_copy_is_bounded_in_size_and_time() {
    let primary = Switchable::default();
    let local = MemoryDedupStore::new(3);
    let store =
        FallbackDedupStore::new(primary.clone(), local.clone()).probe_interval(Duration::from_secs(3600));
    for n in 0..20 {
        let key = format!("k{n}");
        assert_eq!(store.claim(&key, MINUTE).await.unwrap(), Claim::New);
        store.complete(&key, "r", Duration::from_secs(24 * 3600)).await.unwrap();
    }
    assert!(local.len() <= 3, "{} keys held locally", local.len());
    // A day-long reply on the primary is kept locally for WRITE_THROUGH_TTL only.
    tokio::time::advance(wemp_store::fallback::WRITE_THROUGH_TTL + Duration::from_secs(1)).await;
    primary.down.store(true, Ordering::SeqCst);
    assert_eq!(store.claim("k19", MINUTE).await.unwrap(), Claim::New);
}

#[tokio::test]
async fn falls_back_and_returns() {
    let (primary, local, store) = setup(Duration::ZERO);
    primary.down.store(true, Ordering::SeqCst);

    // Dedup keeps working on the fallback.
    assert_eq!(store.claim("k1", MINUTE).await.unwrap(), Claim::New);
    assert!(store.is_degraded());
    assert_eq!(store.claim("k1", MINUTE).await.unwrap(), Claim::InFlight);
    store.complete("k1", "r1", MINUTE).await.unwrap();
    assert_eq!(store.claim("k1", MINUTE).await.unwrap(), Claim::Done("r1".into()));
    assert_eq!(store.wait("k1", MINUTE).await.unwrap().as_deref(), Some("r1"));
    assert_eq!(local.claim("k1", MINUTE).await.unwrap(), Claim::Done("r1".into()));
    assert!(store.fallback_calls() >= 5);

    // The primary answers again: the next call (probe interval zero) switches back.
    primary.down.store(false, Ordering::SeqCst);
    assert_eq!(store.claim("k2", MINUTE).await.unwrap(), Claim::New);
    assert!(!store.is_degraded());
    assert_eq!(primary.store.claim("k2", MINUTE).await.unwrap(), Claim::InFlight);

    // A claim taken on the fallback while the primary was away is finished on both, so
    // waiters on either see the reply.
    primary.down.store(true, Ordering::SeqCst);
    assert_eq!(store.claim("k3", MINUTE).await.unwrap(), Claim::New);
    primary.down.store(false, Ordering::SeqCst);
    store.complete("k3", "r3", MINUTE).await.unwrap();
    assert!(!store.is_degraded());
    assert_eq!(local.claim("k3", MINUTE).await.unwrap(), Claim::Done("r3".into()));
    assert_eq!(primary.store.claim("k3", MINUTE).await.unwrap(), Claim::Done("r3".into()));
}

#[tokio::test]
async fn probes_at_most_once_per_interval() {
    let (primary, _local, store) = setup(Duration::from_secs(3600));
    primary.down.store(true, Ordering::SeqCst);
    assert_eq!(store.claim("k1", MINUTE).await.unwrap(), Claim::New);
    let calls = primary.calls.load(Ordering::SeqCst);
    primary.down.store(false, Ordering::SeqCst);
    for n in 0..10 {
        assert_eq!(store.claim(&format!("k{n}x"), MINUTE).await.unwrap(), Claim::New);
    }
    // Within the interval nothing went to the primary, even though it is back.
    assert_eq!(primary.calls.load(Ordering::SeqCst), calls);
    assert!(store.is_degraded());
}

#[tokio::test]
async fn a_hanging_primary_times_out() {
    let (primary, _local, store) = setup(Duration::from_secs(3600));
    primary.hang.store(true, Ordering::SeqCst);
    assert_eq!(store.claim("k", MINUTE).await.unwrap(), Claim::New);
    assert!(store.is_degraded());
    assert_eq!(store.claim("k", MINUTE).await.unwrap(), Claim::InFlight);
}

#[tokio::test]
async fn release_while_degraded() {
    let (primary, _local, store) = setup(Duration::from_secs(3600));
    primary.down.store(true, Ordering::SeqCst);
    assert_eq!(store.claim("k", MINUTE).await.unwrap(), Claim::New);
    store.release("k").await.unwrap();
    assert_eq!(store.claim("k", MINUTE).await.unwrap(), Claim::New);
}

#[tokio::test]
async fn a_message_handled_on_the_fallback_is_not_handled_again_when_the_primary_returns() {
    let (primary, _local, store) = setup(Duration::ZERO);
    primary.down.store(true, Ordering::SeqCst);
    // Redis is down: the first delivery is claimed and answered on the fallback.
    assert_eq!(store.claim("done", MINUTE).await.unwrap(), Claim::New);
    store.complete("done", "r", MINUTE).await.unwrap();
    // And another one is still being handled there when Redis comes back.
    assert_eq!(store.claim("running", MINUTE).await.unwrap(), Claim::New);
    primary.down.store(false, Ordering::SeqCst);

    // WeChat's retries arrive after Redis is back: neither may run the handler again.
    assert_eq!(store.claim("done", MINUTE).await.unwrap(), Claim::Done("r".into()));
    assert!(!store.is_degraded());
    // The primary learned the reply, so a retry landing on another instance gets it too.
    assert_eq!(primary.store.claim("done", MINUTE).await.unwrap(), Claim::Done("r".into()));

    assert_eq!(store.claim("running", MINUTE).await.unwrap(), Claim::InFlight);
    let waiter = {
        let store = Arc::new(store);
        let s = store.clone();
        let w = tokio::spawn(async move { s.wait("running", MINUTE).await.unwrap() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        store.complete("running", "r2", MINUTE).await.unwrap();
        w
    };
    assert_eq!(waiter.await.unwrap().as_deref(), Some("r2"));
    assert_eq!(primary.store.claim("running", MINUTE).await.unwrap(), Claim::Done("r2".into()));
}

/// The server claims with a ticket and completes with it: the fallback's ticket is passed
/// through, and each completion lands on its own key in both stores, while the primary
/// answers and while it is down.
#[tokio::test]
async fn claims_completed_with_their_tickets_land_on_their_keys_in_both_stores() {
    let (primary, local, store) = setup(Duration::from_secs(3600));
    let keys = ["wx1:msg:o1:1", "wx1:msg:o1:2", "wx1:msg:o2:3"];
    let mut tickets = Vec::new();
    for key in keys {
        let (claim, ticket) = store.claim_ticket(key, MINUTE).await.unwrap();
        assert_eq!(claim, Claim::New);
        tickets.push(ticket);
    }
    // Completed in another order than claimed.
    for (key, ticket) in keys.iter().zip(&tickets).rev() {
        store.complete_claimed(key, *ticket, &format!("reply to {key}"), MINUTE).await.unwrap();
    }
    for key in keys {
        let reply = Claim::Done(format!("reply to {key}"));
        assert_eq!(primary.store.claim(key, MINUTE).await.unwrap(), reply);
        assert_eq!(local.claim(key, MINUTE).await.unwrap(), reply, "written through");
    }

    // The primary down: claimed and completed on the fallback, with its tickets.
    primary.down.store(true, Ordering::SeqCst);
    let (a, b) = ("wx1:msg:o3:4", "wx1:msg:o3:5");
    let (claim_a, ticket_a) = store.claim_ticket(a, MINUTE).await.unwrap();
    let (claim_b, ticket_b) = store.claim_ticket(b, MINUTE).await.unwrap();
    assert_eq!((claim_a, claim_b), (Claim::New, Claim::New));
    store.complete_claimed(b, ticket_b, "reply b", MINUTE).await.unwrap();
    store.complete_claimed(a, ticket_a, "reply a", MINUTE).await.unwrap();
    assert_eq!(local.claim(a, MINUTE).await.unwrap(), Claim::Done("reply a".into()));
    assert_eq!(local.claim(b, MINUTE).await.unwrap(), Claim::Done("reply b".into()));
}

/// The server completes at once where the store can: through a primary that completes at
/// once (as the Redis store queues a reply), the reply lands on both stores with no future;
/// a primary failing at once leaves it on the fallback and the store degraded; while
/// degraded, nothing is done at once (the async completion decides, probes included).
#[tokio::test]
async fn completions_made_at_once_land_on_both_stores_while_the_primary_answers() {
    let (primary, local, store) = setup(Duration::from_secs(3600));
    let (claim, ticket) = store.claim_ticket("now", MINUTE).await.unwrap();
    assert_eq!(claim, Claim::New);
    assert!(matches!(store.complete_claimed_now("now", ticket, "r1", MINUTE, Instant::now()), Some(Ok(()))));
    assert_eq!(primary.store.claim("now", MINUTE).await.unwrap(), Claim::Done("r1".into()));
    assert_eq!(local.claim("now", MINUTE).await.unwrap(), Claim::Done("r1".into()), "written through");
    assert!(!store.is_degraded());

    // The primary fails at once: the reply is kept on the fallback.
    let (claim, ticket) = store.claim_ticket("failed", MINUTE).await.unwrap();
    assert_eq!(claim, Claim::New);
    primary.down.store(true, Ordering::SeqCst);
    assert!(matches!(
        store.complete_claimed_now("failed", ticket, "r2", MINUTE, Instant::now()),
        Some(Ok(()))
    ));
    assert!(store.is_degraded());
    assert_eq!(local.claim("failed", MINUTE).await.unwrap(), Claim::Done("r2".into()));

    // Degraded: not at once, whether or not the primary is back.
    primary.down.store(false, Ordering::SeqCst);
    let calls = primary.calls.load(Ordering::SeqCst);
    assert!(store.complete_claimed_now("later", Ticket::NONE, "r3", MINUTE, Instant::now()).is_none());
    assert_eq!(primary.calls.load(Ordering::SeqCst), calls, "nothing done");
    assert_eq!(local.claim("later", MINUTE).await.unwrap(), Claim::New, "nothing done");
}

/// Each claim on a hanging primary is served by the fallback once the timeout passed: claims
/// made together, claims made one after another (each alone in the store's queue of
/// deadlines), and a claim whose deadline comes while others ended before it. A claim that
/// never times out fails the outer bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_claim_on_a_hanging_primary_is_served_by_its_deadline() {
    let (primary, _local, store) = setup(Duration::ZERO);
    let store = Arc::new(store);
    primary.hang.store(true, Ordering::SeqCst);
    let timed = |store: Arc<FallbackDedupStore<Switchable, MemoryDedupStore>>, key: String| async move {
        let start = std::time::Instant::now();
        let claim = tokio::time::timeout(Duration::from_secs(5), store.claim(&key, MINUTE)).await;
        (claim.expect("the claim outlived its deadline").unwrap(), start.elapsed())
    };
    // Together.
    let claims: Vec<_> =
        (0..20).map(|n| tokio::spawn(timed(store.clone(), format!("together{n}")))).collect();
    for claim in claims {
        let (claim, took) = claim.await.unwrap();
        assert_eq!(claim, Claim::New);
        assert!(took >= Duration::from_millis(90) && took < Duration::from_secs(1), "{took:?}");
    }
    // One after another, each alone.
    for n in 0..3 {
        let (claim, took) = timed(store.clone(), format!("alone{n}")).await;
        assert_eq!(claim, Claim::New);
        assert!(took >= Duration::from_millis(90) && took < Duration::from_secs(1), "{took:?}");
    }
    // Staggered: the first ends early (its caller gives up), the second waits its deadline.
    let early = tokio::spawn(tokio::time::timeout(Duration::from_millis(20), {
        let store = store.clone();
        async move { store.claim("early", MINUTE).await }
    }));
    tokio::time::sleep(Duration::from_millis(10)).await;
    let (claim, took) = timed(store.clone(), "late".to_owned()).await;
    assert!(early.await.unwrap().is_err(), "given up");
    assert_eq!(claim, Claim::New);
    assert!(took >= Duration::from_millis(90) && took < Duration::from_secs(1), "{took:?}");
    assert!(store.is_degraded());
}

/// A claim's deadline does not depend on the runtime the store was first used on: that one
/// gone, a claim on another runtime still times out.
#[test]
fn claims_time_out_on_any_runtime() {
    let (primary, _local, store) = setup(Duration::ZERO);
    primary.hang.store(true, Ordering::SeqCst);
    for _ in 0..2 {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(async {
            let claim = tokio::time::timeout(Duration::from_secs(5), store.claim("k", MINUTE)).await;
            assert!(claim.expect("the claim outlived its deadline").is_ok());
        });
    }
}

/// A timeout longer than the clock can add (`Duration::MAX`, "never") is taken as no
/// timeout, not a panic.
#[tokio::test]
async fn a_timeout_past_the_clock_is_no_timeout() {
    let primary = Switchable::default();
    let store = FallbackDedupStore::new(primary.clone(), MemoryDedupStore::default()).timeout(Duration::MAX);
    assert_eq!(store.claim("k", MINUTE).await.unwrap(), Claim::New);
    primary.hang.store(true, Ordering::SeqCst);
    let waited = tokio::time::timeout(Duration::from_millis(200), store.claim("k2", MINUTE)).await;
    assert!(waited.is_err(), "still waiting for the primary");
    assert!(!store.is_degraded());
}
