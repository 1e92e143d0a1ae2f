//! In-memory dedup backend.
//!
//! [`MemoryDedupStore`] keeps claims and finished replies in one process: bounded (least
//! recently used entries go first when full), with a TTL per entry, and waiters that wake the
//! moment the owner completes or releases the key.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::Result;
use crate::dedup::{Claim, DedupStore};

/// The shortest time a finished reply is kept, whatever `ttl` the caller passes: WeChat's
/// three tries span about 15 seconds, and the reply must still be there for the last one.
pub const MIN_REPLY_TTL: Duration = Duration::from_secs(30);

/// Default number of keys held.
pub const DEFAULT_CAPACITY: usize = 100_000;

enum State {
    /// Being handled; waiters subscribe to the channel. `None` until completed; the sender
    /// is dropped (closing the channel) when the claim is released or evicted.
    InFlight(watch::Sender<Option<Arc<str>>>),
    Done(Arc<str>),
}

struct Entry {
    state: State,
    expires: Instant,
    seq: u64,
}

#[derive(Default)]
struct Inner {
    /// Keyed by foldhash, not SipHash (about 1.5 % of a request's instructions went to
    /// SipHash here): the server's keys are an account's key and the dedup key of a message
    /// that passed the signature check — WeChat's MsgId, or its sender and time — which no
    /// one without the Token chooses, and the hasher is still seeded at random per process.
    entries: HashMap<Arc<str>, Entry, foldhash::fast::RandomState>,
    /// Recency queue, coldest first. An item is live only while its `seq` is the entry's
    /// current one; touched and removed keys leave stale items behind, skipped on eviction
    /// and compacted away when they pile up.
    order: VecDeque<(u64, Arc<str>)>,
    next_seq: u64,
}

impl Inner {
    fn touch(&mut self, key: &str) {
        let Some((k, _)) = self.entries.get_key_value(key) else { return };
        let k = k.clone();
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(entry) = self.entries.get_mut(key) {
            entry.seq = seq;
        }
        self.order.push_back((seq, k));
        self.compact();
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        self.entries.remove(key)
    }

    fn insert(&mut self, key: &str, state: State, expires: Instant) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let key: Arc<str> = key.into();
        self.order.push_back((seq, key.clone()));
        self.entries.insert(key, Entry { state, expires, seq });
        self.compact();
    }

    fn compact(&mut self) {
        if self.order.len() > 2 * self.entries.len() + 1024 {
            let entries = &self.entries;
            self.order.retain(|(seq, k)| entries.get(k).is_some_and(|e| e.seq == *seq));
        }
    }

    /// Drops expired entries from the cold end, then the least recently used ones while the
    /// store holds more than `capacity`.
    fn evict(&mut self, capacity: usize, now: Instant) {
        while let Some((seq, key)) = self.order.front() {
            let live = self.entries.get(key).filter(|e| e.seq == *seq);
            match live {
                None => {}
                Some(entry) if self.entries.len() > capacity || entry.expires <= now => {
                    let key = key.clone();
                    self.entries.remove(&key);
                }
                Some(_) => break,
            }
            self.order.pop_front();
        }
    }
}

/// Bounded in-process [`DedupStore`]: LRU eviction, per-entry TTL, and in-flight joins that
/// wake waiters as soon as the owner completes.
///
/// Finished replies are kept at least [`MIN_REPLY_TTL`] (30 s) unless the store is full;
/// size `capacity` for at least 30 seconds of peak traffic.
///
/// ```
/// # tokio_test_block_on(async {
/// use std::time::Duration;
/// use wemp_store::{Claim, DedupStore, memory::MemoryDedupStore};
/// let store = MemoryDedupStore::new(1000);
/// assert_eq!(store.claim("wx1:msg:o1:42", Duration::from_secs(60)).await?, Claim::New);
/// assert_eq!(store.claim("wx1:msg:o1:42", Duration::from_secs(60)).await?, Claim::InFlight);
/// store.complete("wx1:msg:o1:42", "success", Duration::from_secs(60)).await?;
/// assert_eq!(store.claim("wx1:msg:o1:42", Duration::from_secs(60)).await?, Claim::Done("success".into()));
/// # Ok::<(), wemp_store::StoreError>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryDedupStore {
    inner: Arc<Mutex<Inner>>,
    capacity: usize,
}

impl std::fmt::Debug for MemoryDedupStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryDedupStore")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

impl Default for MemoryDedupStore {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl MemoryDedupStore {
    /// A store holding at most `capacity` keys (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self { inner: Arc::default(), capacity: capacity.max(1) }
    }

    /// The number of keys held now (expired ones included until they are swept).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps inconsistent in a way that
        // matters more than losing dedup; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl DedupStore for MemoryDedupStore {
    async fn claim(&self, key: &str, in_flight_ttl: Duration) -> Result<Claim> {
        let now = Instant::now();
        let mut inner = self.lock();
        let live = match inner.entries.get(key) {
            Some(entry) if entry.expires > now => match &entry.state {
                State::Done(reply) => Some(Claim::Done(reply.to_string())),
                State::InFlight(_) => Some(Claim::InFlight),
            },
            _ => None,
        };
        if let Some(claim) = live {
            inner.touch(key);
            return Ok(claim);
        }
        let (tx, _) = watch::channel(None);
        inner.insert(key, State::InFlight(tx), now + in_flight_ttl);
        let capacity = self.capacity;
        inner.evict(capacity, now);
        Ok(Claim::New)
    }

    async fn complete(&self, key: &str, reply: &str, ttl: Duration) -> Result<()> {
        let now = Instant::now();
        let reply: Arc<str> = reply.into();
        let expires = now + ttl.max(MIN_REPLY_TTL);
        let mut inner = self.lock();
        let previous = match inner.entries.get_mut(key) {
            Some(entry) => {
                entry.expires = expires;
                Some(std::mem::replace(&mut entry.state, State::Done(reply.clone())))
            }
            None => None,
        };
        if previous.is_some() {
            inner.touch(key);
        } else {
            inner.insert(key, State::Done(reply.clone()), expires);
            let capacity = self.capacity;
            inner.evict(capacity, now);
        }
        drop(inner);
        if let Some(State::InFlight(tx)) = previous {
            tx.send_replace(Some(reply));
        }
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<()> {
        let mut inner = self.lock();
        if matches!(inner.entries.get(key), Some(Entry { state: State::InFlight(_), .. })) {
            // Dropping the sender closes the channel and wakes every waiter with `None`.
            inner.remove(key);
        }
        Ok(())
    }

    async fn wait(&self, key: &str, timeout: Duration) -> Result<Option<String>> {
        let mut rx = {
            let now = Instant::now();
            let inner = self.lock();
            match inner.entries.get(key) {
                Some(entry) if entry.expires > now => match &entry.state {
                    State::Done(reply) => return Ok(Some(reply.to_string())),
                    State::InFlight(tx) => tx.subscribe(),
                },
                _ => return Ok(None),
            }
        };
        let done = tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await;
        Ok(match done {
            Ok(Ok(reply)) => reply.as_deref().map(str::to_owned),
            // Timed out, or the claim was released / evicted.
            Ok(Err(_)) | Err(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn claim_complete_replay() {
        let store = MemoryDedupStore::new(10);
        assert_eq!(store.claim("k", TTL).await.unwrap(), Claim::New);
        assert_eq!(store.claim("k", TTL).await.unwrap(), Claim::InFlight);
        store.complete("k", "<xml>r</xml>", TTL).await.unwrap();
        assert_eq!(store.claim("k", TTL).await.unwrap(), Claim::Done("<xml>r</xml>".into()));
        assert_eq!(store.wait("k", Duration::ZERO).await.unwrap().as_deref(), Some("<xml>r</xml>"));
        assert_eq!(store.claim("other", TTL).await.unwrap(), Claim::New);
    }

    #[tokio::test(start_paused = true)]
    async fn waiter_wakes_immediately_on_complete() {
        let store = MemoryDedupStore::new(10);
        assert_eq!(store.claim("k", TTL).await.unwrap(), Claim::New);
        let waiter = {
            let store = store.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                let got = store.wait("k", Duration::from_secs(10)).await.unwrap();
                (got, start.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_secs(2)).await;
        store.complete("k", "done", TTL).await.unwrap();
        let (got, waited) = waiter.await.unwrap();
        assert_eq!(got.as_deref(), Some("done"));
        // Woken at the completion, not at the timeout.
        assert_eq!(waited, Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_times_out_and_release_wakes_with_none() {
        let store = MemoryDedupStore::new(10);
        store.claim("k", TTL).await.unwrap();
        let start = Instant::now();
        assert_eq!(store.wait("k", Duration::from_secs(3)).await.unwrap(), None);
        assert_eq!(start.elapsed(), Duration::from_secs(3));

        let waiter = {
            let store = store.clone();
            tokio::spawn(async move { store.wait("k", Duration::from_secs(10)).await.unwrap() })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        store.release("k").await.unwrap();
        assert_eq!(waiter.await.unwrap(), None);
        assert_eq!(Instant::now() - start, Duration::from_secs(4));
        // Released: the next delivery owns the key again.
        assert_eq!(store.claim("k", TTL).await.unwrap(), Claim::New);
        // Release never discards a finished reply.
        store.complete("k", "r", TTL).await.unwrap();
        store.release("k").await.unwrap();
        assert_eq!(store.claim("k", TTL).await.unwrap(), Claim::Done("r".into()));
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_claim_expires_and_reply_kept_at_least_30s() {
        let store = MemoryDedupStore::new(10);
        store.claim("k", Duration::from_secs(5)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(store.claim("k", TTL).await.unwrap(), Claim::New, "crashed owner must not block");

        store.complete("k", "r", Duration::from_secs(1)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert_eq!(store.claim("k", TTL).await.unwrap(), Claim::Done("r".into()));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(store.claim("k", TTL).await.unwrap(), Claim::New);
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_lru_evicts_least_recently_used() {
        let store = MemoryDedupStore::new(3);
        for k in ["a", "b", "c"] {
            store.claim(k, TTL).await.unwrap();
            store.complete(k, k, TTL).await.unwrap();
        }
        // Touch "a" so "b" becomes the least recently used.
        assert_eq!(store.claim("a", TTL).await.unwrap(), Claim::Done("a".into()));
        assert_eq!(store.claim("d", TTL).await.unwrap(), Claim::New);
        assert_eq!(store.len(), 3);
        assert_eq!(store.claim("b", TTL).await.unwrap(), Claim::New, "b was evicted");
        // Claiming "b" again evicted the next coldest, "c".
        assert_eq!(store.claim("a", TTL).await.unwrap(), Claim::Done("a".into()));
        assert_eq!(store.claim("c", TTL).await.unwrap(), Claim::New);
        assert_eq!(store.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn recency_queue_stays_bounded_under_repeated_touches() {
        let store = MemoryDedupStore::new(10);
        store.claim("k", TTL).await.unwrap();
        store.complete("k", "r", TTL).await.unwrap();
        for _ in 0..10_000 {
            assert_eq!(store.claim("k", TTL).await.unwrap(), Claim::Done("r".into()));
        }
        let queued = store.lock().order.len();
        assert!(queued <= 2 + 1024 + 1, "stale items compacted, got {queued}");
        assert_eq!(store.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn eviction_of_in_flight_wakes_waiters() {
        let store = MemoryDedupStore::new(1);
        store.claim("a", TTL).await.unwrap();
        let waiter = {
            let store = store.clone();
            tokio::spawn(async move { store.wait("a", Duration::from_secs(10)).await.unwrap() })
        };
        tokio::task::yield_now().await;
        store.claim("b", TTL).await.unwrap();
        let start = Instant::now();
        assert_eq!(waiter.await.unwrap(), None);
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn many_waiters_all_get_the_reply() {
        let store = MemoryDedupStore::new(10);
        store.claim("k", TTL).await.unwrap();
        let waiters: Vec<_> = (0..5)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.wait("k", Duration::from_secs(10)).await.unwrap() })
            })
            .collect();
        tokio::task::yield_now().await;
        store.complete("k", "x", TTL).await.unwrap();
        for w in waiters {
            assert_eq!(w.await.unwrap().as_deref(), Some("x"));
        }
    }
}
