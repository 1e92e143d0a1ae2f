//! In-memory dedup backend.
//!
//! [`MemoryDedupStore`] keeps claims and finished replies in one process: bounded by the
//! number of keys and by bytes (least recently used entries go first when either is full),
//! with a TTL per entry, and waiters that wake the moment the owner completes or releases
//! the key.
//!
//! It keeps no key text: each key is reduced to a 128-bit fingerprint, SipHash-1-3 under a
//! key drawn at random for each store. The fingerprint is keyed because the keys can be
//! chosen by whoever sends the request: in safe and compatible mode `MsgId` and
//! `FromUserName` come out of a body that `msg_signature` authenticates, but a plain-mode
//! `signature` covers only the timestamp and nonce, so a captured plain-mode URL can carry
//! a body with any `MsgId` (and `insecure_skip_signature` checks nothing). Under a secret
//! key nobody can aim two keys at one fingerprint, and 128 bits make an accidental
//! collision (which would answer one message with another's reply) out of reach; the same
//! unpredictability keeps the table's buckets even, so its own hasher just takes the
//! fingerprint's bits.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use siphasher::sip128::SipHasher13;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::Result;
use crate::dedup::{Claim, DedupStore};

/// The shortest time a finished reply is kept, whatever `ttl` the caller passes: WeChat's
/// three tries span about 15 seconds, and the reply must still be there for the last one.
pub const MIN_REPLY_TTL: Duration = Duration::from_secs(30);

/// Default number of keys held.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Default bound on the bytes held ([`MemoryDedupStore::bytes`]): 16 MiB.
pub const DEFAULT_MAX_BYTES: usize = 16 << 20;

/// What each key counts against the byte bound besides its reply's bytes: its fingerprint
/// and its entry in the table (56 bytes) and in the recency queue (24), with some of their
/// spare room (a table is between 7/16 and 7/8 full).
pub const ENTRY_BYTES: usize = 128;

/// The reply that `success` stands for: kept as a variant, not as text.
const SUCCESS: &str = "success";

/// A key's 128-bit keyed fingerprint (two words, so that table slots and queue items are
/// aligned to 8 bytes, not 16).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Fp([u64; 2]);

impl Hash for Fp {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0[0]);
    }
}

/// The table's hasher: the fingerprint is already a keyed hash, uniform and unpredictable,
/// so its first word is the bucket hash.
#[derive(Default)]
struct FpHasher(u64);

impl Hasher for FpHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `Fp` is hashed here, through `write_u64`; fold anything else in anyway.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

enum State {
    /// Being handled; waiters subscribe to the channel, which the first of them makes (no
    /// channel while none waits). Its value is `None` until completed; the sender is
    /// dropped (closing the channel) when the claim is released or evicted.
    InFlight(Option<watch::Sender<Option<Arc<str>>>>),
    /// Answered `success` (or nothing): no text kept.
    Success,
    /// The reply sent, plain XML, kept once in the replies' [`Chunks`].
    Reply(Span),
}

/// Where a reply's bytes are: chunk number, offset and length.
#[derive(Clone, Copy)]
struct Span {
    chunk: u32,
    start: u32,
    len: u32,
}

struct Entry {
    /// Milliseconds since the store's epoch.
    expires: u64,
    /// The recency queue's item for this entry is the one with this number.
    seq: u64,
    state: State,
}

/// The replies' bytes, appended to chunks of [`CHUNK_BYTES`] in the order they are stored.
///
/// A reply is not an allocation of its own: the store's replies live for a minute while
/// most of what a request allocates lives for a millisecond, and spread over the
/// allocator's pages the long-lived ones would keep those pages resident after a burst of
/// traffic; a chunk also has no per-reply header or size-class rounding, and its bytes are
/// what the bound counts. A chunk is freed when its last reply goes; replies go roughly in
/// the order they came (least recently used first, a reply read again is moved to the
/// newest chunk), so chunks empty from the oldest.
struct Chunks {
    /// The oldest chunk still kept, then the newer ones.
    list: VecDeque<Chunk>,
    /// The number of `list[0]`.
    first: u32,
    /// The size of a new chunk.
    size: usize,
    /// The capacity of every chunk's buffer.
    bytes: usize,
}

struct Chunk {
    buf: Vec<u8>,
    /// Replies still in it.
    live: u32,
}

/// The size of a chunk of replies (smaller when the store's byte bound is small).
pub const CHUNK_BYTES: usize = 64 << 10;

impl Chunks {
    fn new(max_bytes: usize) -> Self {
        Self { list: VecDeque::new(), first: 0, size: CHUNK_BYTES.min(max_bytes / 8).max(64), bytes: 0 }
    }

    fn push(&mut self, reply: &str) -> Span {
        let len = reply.len();
        let fits = self.list.back().is_some_and(|c| c.buf.capacity() - c.buf.len() >= len);
        if !fits {
            let cap = self.size.max(len);
            self.bytes += cap;
            self.list.push_back(Chunk { buf: Vec::with_capacity(cap), live: 0 });
        }
        let n = self.list.len() - 1;
        let chunk = &mut self.list[n];
        let start = chunk.buf.len();
        chunk.buf.extend_from_slice(reply.as_bytes());
        chunk.live += 1;
        // Offsets fit: a chunk holds `size.max(len)` bytes, and a reply is within the
        // server's body limit.
        let number = self.first.wrapping_add(u32::try_from(n).unwrap_or(u32::MAX));
        Span {
            chunk: number,
            start: u32::try_from(start).unwrap_or(u32::MAX),
            len: u32::try_from(len).unwrap_or(u32::MAX),
        }
    }

    fn get(&self, span: Span) -> Option<&[u8]> {
        let chunk = self.list.get(span.chunk.wrapping_sub(self.first) as usize)?;
        let start = span.start as usize;
        chunk.buf.get(start..start + span.len as usize)
    }

    fn text(&self, span: Span) -> String {
        // Stored from a `&str`: always UTF-8.
        String::from_utf8_lossy(self.get(span).unwrap_or_default()).into_owned()
    }

    /// Forgets one reply; frees its chunk when it was the last one there.
    fn free(&mut self, span: Span) {
        let index = span.chunk.wrapping_sub(self.first) as usize;
        let Some(chunk) = self.list.get_mut(index) else { return };
        chunk.live = chunk.live.saturating_sub(1);
        if chunk.live == 0 {
            self.bytes -= chunk.buf.capacity();
            chunk.buf = Vec::new();
        }
        while self.list.front().is_some_and(|c| c.live == 0) {
            self.list.pop_front();
            self.first = self.first.wrapping_add(1);
        }
    }
}

struct Inner {
    /// When the store was made: expiry times count milliseconds from it.
    epoch: Instant,
    /// The secret that fingerprints keys.
    keyer: SipHasher13,
    entries: HashMap<Fp, Entry, BuildHasherDefault<FpHasher>>,
    /// Recency queue, coldest first. An item is live only while its `seq` is the entry's
    /// current one; touched and removed keys leave stale items behind, skipped on eviction
    /// and compacted away when they pile up.
    order: VecDeque<(u64, Fp)>,
    next_seq: u64,
    replies: Chunks,
}

impl Inner {
    fn new(max_bytes: usize) -> Self {
        // Two words of the process's random SipHash key (std draws it from the OS), through
        // a fresh `RandomState` of this store's own.
        let random = std::collections::hash_map::RandomState::new();
        use std::hash::BuildHasher;
        let keyer = SipHasher13::new_with_keys(random.hash_one(0x6b30_u64), random.hash_one(0x6b31_u64));
        Self {
            epoch: Instant::now(),
            keyer,
            entries: HashMap::default(),
            order: VecDeque::new(),
            next_seq: 0,
            replies: Chunks::new(max_bytes),
        }
    }

    /// What the byte bound counts: [`ENTRY_BYTES`] per key and the replies' chunks.
    fn bytes(&self) -> usize {
        self.entries.len() * ENTRY_BYTES + self.replies.bytes
    }

    fn fingerprint(&self, key: &str) -> Fp {
        let (a, b) = self.keyer.hash(key.as_bytes()).as_u64();
        Fp([a, b])
    }

    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// The state for a finished `reply`.
    fn done(&mut self, reply: &str) -> State {
        if reply == SUCCESS { State::Success } else { State::Reply(self.replies.push(reply)) }
    }

    /// The finished reply of `state`, if finished.
    fn reply(&self, state: &State) -> Option<String> {
        match state {
            State::InFlight(_) => None,
            State::Success => Some(SUCCESS.to_owned()),
            State::Reply(span) => Some(self.replies.text(*span)),
        }
    }

    fn forget(&mut self, state: &State) {
        if let State::Reply(span) = state {
            self.replies.free(*span);
        }
    }

    /// Marks `fp` as just used; its reply moves to the newest chunk, so that chunks empty
    /// in the order of use.
    fn touch(&mut self, fp: Fp) {
        let seq = self.next_seq;
        let Some(entry) = self.entries.get_mut(&fp) else { return };
        entry.seq = seq;
        let moved = match entry.state {
            State::Reply(span) => Some(span),
            _ => None,
        };
        self.next_seq += 1;
        self.order.push_back((seq, fp));
        if let Some(old) = moved {
            let text = self.replies.get(old).map(<[u8]>::to_vec).unwrap_or_default();
            let new = self.replies.push(&String::from_utf8_lossy(&text));
            self.replies.free(old);
            if let Some(entry) = self.entries.get_mut(&fp) {
                entry.state = State::Reply(new);
            }
        }
        self.compact();
    }

    fn remove(&mut self, fp: Fp) -> Option<Entry> {
        let entry = self.entries.remove(&fp)?;
        self.forget(&entry.state);
        Some(entry)
    }

    fn insert(&mut self, fp: Fp, state: State, expires: u64) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.push_back((seq, fp));
        if let Some(old) = self.entries.insert(fp, Entry { state, expires, seq }) {
            self.forget(&old.state);
        }
        self.compact();
    }

    /// Replaces an entry's state; the previous state (its reply already forgotten).
    fn replace(&mut self, fp: Fp, state: State, expires: u64) -> Result<State, State> {
        let Some(entry) = self.entries.get_mut(&fp) else { return Err(state) };
        entry.expires = expires;
        let old = std::mem::replace(&mut entry.state, state);
        self.forget(&old);
        Ok(old)
    }

    fn compact(&mut self) {
        if self.order.len() > 2 * self.entries.len() + 1024 {
            let entries = &self.entries;
            self.order.retain(|(seq, fp)| entries.get(fp).is_some_and(|e| e.seq == *seq));
        }
    }

    /// Drops expired entries from the cold end, then the least recently used ones while the
    /// store holds more than `capacity` keys or more than `max_bytes` bytes (but never the
    /// last key).
    fn evict(&mut self, capacity: usize, max_bytes: usize, now: u64) {
        while let Some(&(seq, fp)) = self.order.front() {
            let live = self.entries.get(&fp).filter(|e| e.seq == seq);
            let full = self.entries.len() > capacity || (self.bytes() > max_bytes && self.entries.len() > 1);
            match live {
                None => {}
                Some(entry) if full || entry.expires <= now => {
                    // Dropping an in-flight sender closes its channel: its waiters wake.
                    self.remove(fp);
                }
                Some(_) => break,
            }
            self.order.pop_front();
        }
    }
}

/// Bounded in-process [`DedupStore`]: LRU eviction by keys and by bytes, per-entry TTL, and
/// in-flight joins that wake waiters as soon as the owner completes.
///
/// The store holds at most `capacity` keys and at most `max_bytes` as
/// [`bytes`](Self::bytes) counts them: [`ENTRY_BYTES`] (128) for each key, plus the chunks
/// its replies are kept in ([`CHUNK_BYTES`], 64 KiB each; `success` is kept as no text).
/// The defaults are [`DEFAULT_CAPACITY`] keys and [`DEFAULT_MAX_BYTES`] (16 MiB). Keys are
/// kept as 128-bit fingerprints, never as text: SipHash-1-3 under a key drawn at random for
/// each store, since a plain-mode sender can choose `MsgId` (its `signature` does not cover
/// the body), and nobody who does not know the key can make two keys collide.
///
/// Finished replies are kept at least [`MIN_REPLY_TTL`] (30 s) unless the store is full;
/// size it for at least 30 seconds of peak traffic.
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
    max_bytes: usize,
}

impl std::fmt::Debug for MemoryDedupStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryDedupStore")
            .field("capacity", &self.capacity)
            .field("max_bytes", &self.max_bytes)
            .field("len", &inner.entries.len())
            .field("bytes", &inner.bytes())
            .finish()
    }
}

impl Default for MemoryDedupStore {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl MemoryDedupStore {
    /// A store holding at most `capacity` keys (at least 1) and [`DEFAULT_MAX_BYTES`].
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner::new(DEFAULT_MAX_BYTES))),
            capacity: capacity.max(1),
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    /// Holds at most `max_bytes` ([`MemoryDedupStore::bytes`]); at least one key is always
    /// kept, whatever its size. Below 512 KiB, replies go in chunks of an eighth of it.
    #[must_use]
    pub fn max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self.inner = Arc::new(Mutex::new(Inner::new(max_bytes)));
        self
    }

    /// The number of keys held now (expired ones included until they are swept).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes held now, as the bound counts them: [`ENTRY_BYTES`] for each key plus the
    /// chunks holding the replies.
    pub fn bytes(&self) -> usize {
        self.lock().bytes()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps inconsistent in a way that
        // matters more than losing dedup; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Evicts down to this store's bounds.
    fn evict(&self, inner: &mut Inner, now: u64) {
        inner.evict(self.capacity, self.max_bytes, now);
    }
}

#[async_trait::async_trait]
impl DedupStore for MemoryDedupStore {
    async fn claim(&self, key: &str, in_flight_ttl: Duration) -> Result<Claim> {
        let mut inner = self.lock();
        let now = inner.ms(Instant::now());
        let fp = inner.fingerprint(key);
        let live = match inner.entries.get(&fp) {
            Some(entry) if entry.expires > now => Some(match inner.reply(&entry.state) {
                Some(reply) => Claim::Done(reply),
                None => Claim::InFlight,
            }),
            _ => None,
        };
        if let Some(claim) = live {
            inner.touch(fp);
            return Ok(claim);
        }
        let expires = now.saturating_add(millis(in_flight_ttl));
        // The channel is made by the first retry that waits (most messages have none).
        inner.insert(fp, State::InFlight(None), expires);
        self.evict(&mut inner, now);
        Ok(Claim::New)
    }

    async fn complete(&self, key: &str, reply: &str, ttl: Duration) -> Result<()> {
        let mut inner = self.lock();
        let now = inner.ms(Instant::now());
        let fp = inner.fingerprint(key);
        let expires = now.saturating_add(millis(ttl.max(MIN_REPLY_TTL)));
        // Completing is not a use: the entry keeps its place in the recency order (its
        // claim's), so that a message costs one queue item, not two.
        let done = inner.done(reply);
        let previous = match inner.replace(fp, done, expires) {
            Ok(previous) => Some(previous),
            Err(done) => {
                inner.insert(fp, done, expires);
                None
            }
        };
        self.evict(&mut inner, now);
        drop(inner);
        if let Some(State::InFlight(Some(tx))) = previous
            && tx.receiver_count() > 0
        {
            tx.send_replace(Some(reply.into()));
        }
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<()> {
        let mut inner = self.lock();
        let fp = inner.fingerprint(key);
        if matches!(inner.entries.get(&fp), Some(Entry { state: State::InFlight(_), .. })) {
            // Dropping the sender closes the channel and wakes every waiter with `None`.
            inner.remove(fp);
        }
        Ok(())
    }

    async fn wait(&self, key: &str, timeout: Duration) -> Result<Option<String>> {
        let mut rx = {
            let mut inner = self.lock();
            let now = inner.ms(Instant::now());
            let fp = inner.fingerprint(key);
            match inner.entries.get_mut(&fp) {
                Some(entry) if entry.expires > now => match &mut entry.state {
                    State::InFlight(tx) => tx.get_or_insert_with(|| watch::channel(None).0).subscribe(),
                    _ => {
                        let done = &inner.entries[&fp].state;
                        return Ok(inner.reply(done));
                    }
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

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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
    async fn bounded_by_bytes_least_recently_used_first() {
        // Room for three keys with 100-byte replies.
        let store = MemoryDedupStore::new(100).max_bytes(3 * (ENTRY_BYTES + 100));
        let reply = |k: &str| k.repeat(100);
        for k in ["a", "b", "c"] {
            store.claim(k, TTL).await.unwrap();
            store.complete(k, &reply(k), TTL).await.unwrap();
        }
        assert_eq!((store.len(), store.bytes()), (3, 3 * (ENTRY_BYTES + 100)));
        assert_eq!(store.claim("a", TTL).await.unwrap(), Claim::Done(reply("a")));
        // A fourth key does not fit: the least recently used, "b", goes.
        assert_eq!(store.claim("d", TTL).await.unwrap(), Claim::New);
        assert_eq!((store.len(), store.bytes()), (3, 2 * (ENTRY_BYTES + 100) + ENTRY_BYTES));
        store.complete("d", &reply("d"), TTL).await.unwrap();
        assert_eq!(store.bytes(), 3 * (ENTRY_BYTES + 100));
        assert_eq!(store.claim("b", TTL).await.unwrap(), Claim::New, "b was evicted");
        // Claiming "b" again evicted the next coldest, "c".
        assert_eq!(store.claim("a", TTL).await.unwrap(), Claim::Done(reply("a")));
        assert_eq!(store.claim("d", TTL).await.unwrap(), Claim::Done(reply("d")));
        assert_eq!(store.claim("c", TTL).await.unwrap(), Claim::New);
        assert!(store.bytes() <= 3 * (ENTRY_BYTES + 100), "{}", store.bytes());
    }

    #[tokio::test(start_paused = true)]
    async fn success_costs_no_text_and_released_keys_give_their_bytes_back() {
        let store = MemoryDedupStore::new(10);
        store.claim("k", TTL).await.unwrap();
        assert_eq!(store.bytes(), ENTRY_BYTES);
        store.complete("k", "success", TTL).await.unwrap();
        assert_eq!(store.bytes(), ENTRY_BYTES);
        assert_eq!(store.claim("k", TTL).await.unwrap(), Claim::Done("success".into()));
        assert_eq!(store.wait("k", Duration::ZERO).await.unwrap().as_deref(), Some("success"));
        store.claim("r", TTL).await.unwrap();
        store.release("r").await.unwrap();
        assert_eq!((store.len(), store.bytes()), (1, ENTRY_BYTES));
        // A reply takes a chunk; a claim of its expired key replaces it, and the chunk goes.
        store.complete("x", "<xml>12345</xml>", TTL).await.unwrap();
        assert_eq!(store.bytes(), 2 * ENTRY_BYTES + CHUNK_BYTES);
        store.complete("y", "<xml>67890</xml>", TTL).await.unwrap();
        assert_eq!(store.bytes(), 3 * ENTRY_BYTES + CHUNK_BYTES, "one chunk holds both");
        assert_eq!(store.claim("y", TTL).await.unwrap(), Claim::Done("<xml>67890</xml>".into()));
        tokio::time::sleep(TTL * 2).await;
        assert_eq!(store.claim("x", TTL).await.unwrap(), Claim::New);
        assert_eq!(store.claim("y", TTL).await.unwrap(), Claim::New);
        assert_eq!(store.bytes(), 2 * ENTRY_BYTES, "{}", store.bytes());
    }

    #[tokio::test(start_paused = true)]
    async fn a_reply_larger_than_the_bound_is_still_kept_alone() {
        let store = MemoryDedupStore::new(10).max_bytes(ENTRY_BYTES);
        let big = "x".repeat(1000);
        store.claim("a", TTL).await.unwrap();
        store.complete("a", &big, TTL).await.unwrap();
        assert_eq!(store.claim("a", TTL).await.unwrap(), Claim::Done(big.clone()));
        assert_eq!(store.claim("b", TTL).await.unwrap(), Claim::New);
        assert_eq!(store.len(), 1, "a went to make room for b");
        assert_eq!(store.claim("a", TTL).await.unwrap(), Claim::New);
    }

    #[test]
    fn keys_are_kept_as_keyed_fingerprints() {
        let (one, two) = (MemoryDedupStore::new(1), MemoryDedupStore::new(1));
        let (one, two) = (one.lock(), two.lock());
        let key = "wx1:msg:o1:42";
        assert!(one.fingerprint(key) == one.fingerprint(key));
        assert!(one.fingerprint(key) != one.fingerprint("wx1:msg:o1:43"));
        // Each store draws its own secret: the same key has another fingerprint there.
        assert!(one.fingerprint(key) != two.fingerprint(key));
        // Compact: a table slot and a queue item are a few words each.
        assert!(std::mem::size_of::<(Fp, Entry)>() <= 56, "{}", std::mem::size_of::<(Fp, Entry)>());
        assert_eq!(std::mem::size_of::<(u64, Fp)>(), 24);
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
