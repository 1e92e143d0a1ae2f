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
//! unpredictability keeps the table's buckets even, so the table's hash is just the
//! fingerprint's first word. (A fast seeded hash such as foldhash or aHash would be cheaper,
//! but they are built to spread a table's buckets, not to be a pseudorandom function nobody
//! can find collisions of; here a collision is a wrong reply, not a slow bucket. The key is
//! hashed once a delivery: the claim's [`Ticket`] carries the fingerprint to the
//! completion, and the number of the slot the claim left the key in, which the completion
//! uses without a look-up when that slot still holds the fingerprint.)
//!
//! The entries live in a ring in recency order ([`Slot`]s, coldest first), and the table
//! only maps a fingerprint to its slot's number: four bytes a bucket, so the table for
//! 100 000 keys (640 KiB) stays in the CPU's caches where the entries do not. A new key's
//! look-up reads only the table; eviction takes the ring's front and finds its bucket by
//! number, reading no other entry.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hashbrown::HashTable;
use siphasher::sip128::SipHasher13;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::Result;
use crate::dedup::{Claim, DedupStore, Ticket};

/// The number of the next store made (for its [`Ticket`]s).
static NEXT_STORE: AtomicU64 = AtomicU64::new(1);

/// The shortest time a finished reply is kept, whatever `ttl` the caller passes: WeChat's
/// three tries span about 15 seconds, and the reply must still be there for the last one.
pub const MIN_REPLY_TTL: Duration = Duration::from_secs(30);

/// Default number of keys held.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// The most keys a store holds, whatever capacity it is given (2^30): slot numbers are 32
/// bits and the ring holds at most about twice the keys.
pub const MAX_CAPACITY: usize = 1 << 30;

/// Default bound on the bytes held ([`MemoryDedupStore::bytes`]): 16 MiB.
pub const DEFAULT_MAX_BYTES: usize = 16 << 20;

/// What each key counts against the byte bound besides its reply's bytes. A key takes a
/// 40-byte slot in the recency ring and 5 bytes of table (a number and a control byte),
/// each with its spare room (the ring's buffer grows by doubling, the table is between 7/16
/// and 7/8 full): about 100 bytes at the most; the bound counts 128 to stay above it.
pub const ENTRY_BYTES: usize = 128;

/// The reply that `success` stands for: kept as a variant, not as text.
const SUCCESS: &str = "success";

/// A key's 128-bit keyed fingerprint (two words, so that a slot is aligned to 8 bytes, not
/// 16).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Fp([u64; 2]);

impl Fp {
    /// The table's hash: the fingerprint is already a keyed hash, uniform and unpredictable.
    fn hash(self) -> u64 {
        self.0[0]
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
    /// The slot's key moved to a newer slot or went: the slot waits to leave the ring.
    Gone,
}

/// Where a reply's bytes are: chunk number, offset and length.
#[derive(Clone, Copy)]
struct Span {
    chunk: u32,
    start: u32,
    len: u32,
}

/// An entry of the recency ring.
struct Slot {
    fp: Fp,
    /// Milliseconds since the store's epoch.
    expires: u64,
    state: State,
}

impl Slot {
    fn is_gone(&self) -> bool {
        matches!(self.state, State::Gone)
    }
}

/// The replies' text, appended to chunks of [`CHUNK_BYTES`] in the order they are stored.
///
/// A reply is not an allocation of its own: the store's replies live for a minute while
/// most of what a request allocates lives for a millisecond, and spread over the
/// allocator's pages the long-lived ones would keep those pages resident after a burst of
/// traffic; a chunk also has no per-reply header or size-class rounding, and its bytes are
/// what the bound counts. A chunk is freed when its last reply goes; replies go roughly in
/// the order they came (least recently used first, a reply read again is moved to the
/// newest chunk), so chunks empty from the oldest. Chunks are text, so that a reply read
/// back is a slice of one, not bytes to check for UTF-8 again.
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
    buf: String,
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
            self.list.push_back(Chunk { buf: String::with_capacity(cap), live: 0 });
        }
        let n = self.list.len() - 1;
        let chunk = &mut self.list[n];
        let start = chunk.buf.len();
        chunk.buf.push_str(reply);
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

    fn get(&self, span: Span) -> &str {
        let start = span.start as usize;
        self.list
            .get(span.chunk.wrapping_sub(self.first) as usize)
            .and_then(|chunk| chunk.buf.get(start..start + span.len as usize))
            .unwrap_or_default()
    }

    /// Forgets one reply; frees its chunk when it was the last one there.
    fn free(&mut self, span: Span) {
        let index = span.chunk.wrapping_sub(self.first) as usize;
        let Some(chunk) = self.list.get_mut(index) else { return };
        chunk.live = chunk.live.saturating_sub(1);
        if chunk.live == 0 {
            self.bytes -= chunk.buf.capacity();
            chunk.buf = String::new();
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
    /// This store's number, in its [`Ticket`]s (never 0: that is no ticket).
    id: u64,
    /// Each live key's slot number, found by the key's fingerprint (compared in the slot).
    index: HashTable<u32>,
    /// The recency ring, coldest first: slot number `n` is `slots[n - head]` (wrapping).
    /// A key read again moves to a new slot at the back, and a released one leaves; the
    /// slots they leave behind are [`State::Gone`], dropped when they reach the front (or
    /// compacted away when they pile up).
    slots: VecDeque<Slot>,
    /// The number of `slots[0]`.
    head: u32,
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
            id: NEXT_STORE.fetch_add(1, Ordering::Relaxed),
            index: HashTable::new(),
            slots: VecDeque::new(),
            head: 0,
            replies: Chunks::new(max_bytes),
        }
    }

    /// The number of keys held.
    fn len(&self) -> usize {
        self.index.len()
    }

    /// What the byte bound counts: [`ENTRY_BYTES`] per key and the replies' chunks.
    fn bytes(&self) -> usize {
        self.len() * ENTRY_BYTES + self.replies.bytes
    }

    fn fingerprint(&self, key: &str) -> Fp {
        let (a, b) = self.keyer.hash(key.as_bytes()).as_u64();
        Fp([a, b])
    }

    /// The fingerprint `ticket` carries when this store made it, else `key`'s.
    fn fingerprint_of(&self, key: &str, ticket: Ticket) -> Fp {
        if ticket.store == self.id { Fp(ticket.fingerprint) } else { self.fingerprint(key) }
    }

    /// A ticket for the key of `fp`, now in slot `n`.
    fn ticket(&self, fp: Fp, n: u32) -> Ticket {
        Ticket { store: self.id, fingerprint: fp.0, slot: n }
    }

    fn ms(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.epoch);
        // `as_millis` without its 128-bit product (the same value below 584 million years).
        since.as_secs().saturating_mul(1000).saturating_add(u64::from(since.subsec_millis()))
    }

    /// The number of `fp`'s slot, if the key is held.
    fn find(&self, fp: Fp) -> Option<u32> {
        let (slots, head) = (&self.slots, self.head);
        let at = |n: u32| slots.get(n.wrapping_sub(head) as usize);
        self.index.find(fp.hash(), |&n| at(n).is_some_and(|s| s.fp == fp)).copied()
    }

    /// The number of the slot of the key that `ticket` (made by this store for `fp`) was
    /// claimed in, if the key is still there (not moved by a retry, released, evicted, or
    /// renumbered); else [`Inner::find`]'s answer. A slot still holding `fp`, not left
    /// behind, is the key's: a key has one such slot, and the table points to it.
    fn find_claimed(&self, fp: Fp, ticket: Ticket) -> Option<u32> {
        let hinted =
            ticket.store == self.id && self.slot(ticket.slot).is_some_and(|s| s.fp == fp && !s.is_gone());
        if hinted { Some(ticket.slot) } else { self.find(fp) }
    }

    fn slot(&self, n: u32) -> Option<&Slot> {
        self.slots.get(n.wrapping_sub(self.head) as usize)
    }

    fn slot_mut(&mut self, n: u32) -> Option<&mut Slot> {
        self.slots.get_mut(n.wrapping_sub(self.head) as usize)
    }

    /// The state for a finished `reply`.
    fn done(&mut self, reply: &str) -> State {
        if reply == SUCCESS { State::Success } else { State::Reply(self.replies.push(reply)) }
    }

    /// The finished reply of `state`, if finished.
    fn reply(&self, state: &State) -> Option<String> {
        match state {
            State::InFlight(_) | State::Gone => None,
            State::Success => Some(SUCCESS.to_owned()),
            State::Reply(span) => Some(self.replies.get(*span).to_owned()),
        }
    }

    fn forget(&mut self, state: &State) {
        if let State::Reply(span) = state {
            self.replies.free(*span);
        }
    }

    /// Adds a slot at the back for a key not held; its number.
    fn insert(&mut self, fp: Fp, state: State, expires: u64) -> u32 {
        let n = self.push(fp, state, expires);
        let (slots, head) = (&self.slots, self.head);
        let hash = |&n: &u32| slots.get(n.wrapping_sub(head) as usize).map_or(0, |s| s.fp.hash());
        self.index.insert_unique(fp.hash(), n, hash);
        n
    }

    /// Appends a slot; its number.
    fn push(&mut self, fp: Fp, state: State, expires: u64) -> u32 {
        // The ring holds under 2^32 slots: at most `2 * MAX_CAPACITY + 1024` (see `compact`).
        let n = self.head.wrapping_add(self.slots.len() as u32);
        self.slots.push_back(Slot { fp, expires, state });
        n
    }

    /// Moves the key of slot `n` to a new slot at the back with `state` and `expires`; the
    /// state it had (its reply not yet forgotten) and the key's slot number now.
    fn renew(&mut self, n: u32, state: State, expires: u64) -> (State, u32) {
        let Some(slot) = self.slot_mut(n) else { return (state, n) };
        let (fp, old) = (slot.fp, std::mem::replace(&mut slot.state, State::Gone));
        let new = self.push(fp, state, expires);
        if let Some(number) = self.index.find_mut(fp.hash(), |&m| m == n) {
            *number = new;
        }
        // Compaction renumbers the slots: `new` may then be another key's, or none (a ticket
        // checks its slot before it trusts it).
        self.compact();
        (old, new)
    }

    /// Marks the key of slot `n` as just used: it moves to the back, and its reply (`text`,
    /// just read from the store) to the newest chunk, so that chunks empty in the order of
    /// use. The key's slot number now.
    fn touch(&mut self, n: u32, text: &str) -> u32 {
        let Some(slot) = self.slot_mut(n) else { return n };
        let expires = slot.expires;
        let state = match std::mem::replace(&mut slot.state, State::Gone) {
            State::Reply(span) => {
                let moved = self.replies.push(text);
                self.replies.free(span);
                State::Reply(moved)
            }
            other => other,
        };
        self.renew(n, state, expires).1
    }

    /// Drops the key of slot `n`; its state (its reply already forgotten).
    fn remove(&mut self, n: u32) -> State {
        let Some(slot) = self.slot_mut(n) else { return State::Gone };
        let (hash, old) = (slot.fp.hash(), std::mem::replace(&mut slot.state, State::Gone));
        if let Ok(entry) = self.index.find_entry(hash, |&m| m == n) {
            entry.remove();
        }
        self.forget(&old);
        self.compact();
        old
    }

    /// Drops the slots left behind when they are more than the keys (and a margin): the
    /// ring is renumbered and the table rebuilt, once in a while under repeated reads.
    fn compact(&mut self) {
        if self.slots.len() <= 2 * self.len() + 1024 {
            return;
        }
        self.slots.retain(|s| !s.is_gone());
        self.index.clear();
        let (slots, head) = (&self.slots, self.head);
        let hash = |&n: &u32| slots.get(n.wrapping_sub(head) as usize).map_or(0, |s| s.fp.hash());
        for (i, slot) in slots.iter().enumerate() {
            // Below 2^32: a ring of at most `2 * MAX_CAPACITY + 1024` slots.
            self.index.insert_unique(slot.fp.hash(), head.wrapping_add(i as u32), hash);
        }
    }

    /// Whether the store holds more than `capacity` keys or more than `max_bytes` bytes
    /// (eviction would take a key; never the last one for bytes).
    fn over(&self, capacity: usize, max_bytes: usize) -> bool {
        self.len() > capacity || (self.bytes() > max_bytes && self.len() > 1)
    }

    /// Drops expired keys from the cold end, then the least recently used ones while the
    /// store holds more than `capacity` keys or more than `max_bytes` bytes (but never the
    /// last key).
    fn evict(&mut self, capacity: usize, max_bytes: usize, now: u64) {
        while let Some(front) = self.slots.front() {
            if !front.is_gone() {
                if !self.over(capacity, max_bytes) && front.expires > now {
                    break;
                }
                let (hash, head) = (front.fp.hash(), self.head);
                if let Ok(entry) = self.index.find_entry(hash, |&n| n == head) {
                    entry.remove();
                }
                // Dropping an in-flight sender closes its channel: its waiters wake.
                if let Some(slot) = self.slots.pop_front() {
                    self.forget(&slot.state);
                }
            } else {
                self.slots.pop_front();
            }
            self.head = self.head.wrapping_add(1);
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
            .field("len", &inner.len())
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
    /// A store holding at most `capacity` keys (at least 1, at most [`MAX_CAPACITY`]) and
    /// [`DEFAULT_MAX_BYTES`].
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner::new(DEFAULT_MAX_BYTES))),
            capacity: capacity.clamp(1, MAX_CAPACITY),
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
        self.lock().len()
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

    /// [`DedupStore::claim_ticket`] and [`DedupStore::claim_ticket_now`] (and
    /// [`DedupStore::claim`]): the ticket carries the key's fingerprint.
    fn claim_now(&self, key: &str, in_flight_ttl: Duration) -> (Claim, Ticket) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let now = inner.ms(Instant::now());
        let fp = inner.fingerprint(key);
        let expires = now.saturating_add(millis(in_flight_ttl));
        // The channel is made by the first retry that waits (most messages have none).
        let claim = State::InFlight(None);
        let n = match inner.find(fp) {
            None => inner.insert(fp, claim, expires),
            Some(n) => match inner.slot(n).filter(|s| s.expires > now) {
                Some(slot) => {
                    let answer = match inner.reply(&slot.state) {
                        Some(reply) => Claim::Done(reply),
                        None => Claim::InFlight,
                    };
                    let moved = inner.touch(n, if let Claim::Done(text) = &answer { text } else { "" });
                    return (answer, inner.ticket(fp, moved));
                }
                // Expired: a claim like a new key's (an in-flight sender dropped here wakes
                // its waiters).
                None => {
                    let (old, moved) = inner.renew(n, claim, expires);
                    inner.forget(&old);
                    moved
                }
            },
        };
        self.evict(inner, now);
        // (Should eviction have taken the new slot, as it does with an in-flight TTL of
        // zero, the completion finds the slot gone and looks the key up.)
        (Claim::New, inner.ticket(fp, n))
    }

    /// [`DedupStore::complete_claimed`] and [`DedupStore::complete_claimed_now`] (and
    /// [`DedupStore::complete`]): the fingerprint from the ticket when this store made it
    /// (no second hash of the key), else from `key`; the reply kept from `now` (the
    /// caller's reading of the clock: the async methods read it here).
    fn complete_now(&self, key: &str, ticket: Ticket, reply: &str, ttl: Duration, now: Instant) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let now = inner.ms(now);
        let fp = inner.fingerprint_of(key, ticket);
        let expires = now.saturating_add(millis(ttl.max(MIN_REPLY_TTL)));
        // Completing is not a use: the key keeps its place in the recency order (its
        // claim's), so that a message costs one slot, not two.
        let done = inner.done(reply);
        let previous = match inner.find_claimed(fp, ticket) {
            Some(n) => inner.slot_mut(n).map(|slot| {
                slot.expires = expires;
                std::mem::replace(&mut slot.state, done)
            }),
            None => {
                inner.insert(fp, done, expires);
                None
            }
        };
        if let Some(previous) = &previous {
            inner.forget(previous);
        }
        // Over a bound only when this reply (or a retry's answer since the last eviction)
        // opened a chunk, or the key came back; expired keys are swept by the claims of
        // new keys, each of which evicts.
        if inner.over(self.capacity, self.max_bytes) {
            self.evict(inner, now);
        }
        drop(guard);
        if let Some(State::InFlight(Some(tx))) = previous
            && tx.receiver_count() > 0
        {
            tx.send_replace(Some(reply.into()));
        }
    }

    /// Evicts down to this store's bounds.
    fn evict(&self, inner: &mut Inner, now: u64) {
        inner.evict(self.capacity, self.max_bytes, now);
    }
}

#[async_trait::async_trait]
impl DedupStore for MemoryDedupStore {
    async fn claim(&self, key: &str, in_flight_ttl: Duration) -> Result<Claim> {
        Ok(self.claim_now(key, in_flight_ttl).0)
    }

    async fn claim_ticket(&self, key: &str, in_flight_ttl: Duration) -> Result<(Claim, Ticket)> {
        Ok(self.claim_now(key, in_flight_ttl))
    }

    async fn complete(&self, key: &str, reply: &str, ttl: Duration) -> Result<()> {
        self.complete_now(key, Ticket::NONE, reply, ttl, Instant::now());
        Ok(())
    }

    async fn complete_claimed(&self, key: &str, ticket: Ticket, reply: &str, ttl: Duration) -> Result<()> {
        self.complete_now(key, ticket, reply, ttl, Instant::now());
        Ok(())
    }

    /// Always answers: the claim is made here (the async methods make it the same way).
    fn claim_ticket_now(&self, key: &str, in_flight_ttl: Duration) -> Option<Result<(Claim, Ticket)>> {
        Some(Ok(self.claim_now(key, in_flight_ttl)))
    }

    /// Always completes here (the async methods complete the same way, with the clock read
    /// when called), keeping the reply `ttl` from `now`.
    fn complete_claimed_now(
        &self,
        key: &str,
        ticket: Ticket,
        reply: &str,
        ttl: Duration,
        now: Instant,
    ) -> Option<Result<()>> {
        self.complete_now(key, ticket, reply, ttl, now);
        Some(Ok(()))
    }

    async fn release(&self, key: &str) -> Result<()> {
        let mut inner = self.lock();
        let fp = inner.fingerprint(key);
        if let Some(n) = inner.find(fp)
            && matches!(inner.slot(n), Some(Slot { state: State::InFlight(_), .. }))
        {
            // Dropping the sender closes the channel and wakes every waiter with `None`.
            inner.remove(n);
        }
        Ok(())
    }

    async fn wait(&self, key: &str, timeout: Duration) -> Result<Option<String>> {
        let mut rx = {
            let mut inner = self.lock();
            let now = inner.ms(Instant::now());
            let fp = inner.fingerprint(key);
            let Some(n) = inner.find(fp) else { return Ok(None) };
            match inner.slot(n) {
                Some(slot) if slot.expires > now => {
                    if !matches!(slot.state, State::InFlight(_)) {
                        return Ok(inner.reply(&slot.state));
                    }
                }
                _ => return Ok(None),
            }
            let Some(Slot { state: State::InFlight(tx), .. }) = inner.slot_mut(n) else { return Ok(None) };
            tx.get_or_insert_with(|| watch::channel(None).0).subscribe()
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
        let queued = store.lock().slots.len();
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
        // Compact: a slot is five words, a bucket of the table one number.
        assert_eq!(std::mem::size_of::<Slot>(), 40);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_completed_after_its_slot_left_gets_its_own_reply() {
        let store = MemoryDedupStore::new(2);
        // Slot numbers wrap around: start just below the wrap.
        store.lock().head = u32::MAX - 1;
        store.claim("a", TTL).await.unwrap();
        store.claim("b", TTL).await.unwrap();
        // "c" takes the number after the wrap; "a", the coldest, leaves the ring.
        store.claim("c", TTL).await.unwrap();
        assert_eq!(store.len(), 2);
        // "a"'s handler finishes after all: it comes back in a slot of its own, and "b" goes.
        store.complete("a", "ra", TTL).await.unwrap();
        store.complete("c", "rc", TTL).await.unwrap();
        assert_eq!(store.claim("a", TTL).await.unwrap(), Claim::Done("ra".into()));
        assert_eq!(store.claim("c", TTL).await.unwrap(), Claim::Done("rc".into()));
        assert_eq!(store.claim("b", TTL).await.unwrap(), Claim::New, "b was evicted");
        // "b" took the place of "a" (the coldest then): its reply is its own.
        store.complete("b", "rb", TTL).await.unwrap();
        assert_eq!(store.claim("b", TTL).await.unwrap(), Claim::Done("rb".into()));
        assert_eq!(store.claim("c", TTL).await.unwrap(), Claim::Done("rc".into()));
        assert_eq!(store.claim("a", TTL).await.unwrap(), Claim::New);
    }

    #[tokio::test(start_paused = true)]
    async fn compaction_keeps_each_key_with_its_reply_and_its_place() {
        let store = MemoryDedupStore::new(100);
        let reply =
            |i: usize| if i.is_multiple_of(3) { SUCCESS.to_owned() } else { format!("<xml>{i}</xml>") };
        for i in 0..50 {
            store.claim(&format!("k{i}"), TTL).await.unwrap();
            store.complete(&format!("k{i}"), &reply(i), TTL).await.unwrap();
        }
        // Each read moves "k7" to a new slot: the ring is compacted (renumbered) a few times.
        for _ in 0..5_000 {
            assert_eq!(store.claim("k7", TTL).await.unwrap(), Claim::Done(reply(7)));
            assert!(store.lock().slots.len() <= 2 * 50 + 1024 + 1);
        }
        for i in 0..50 {
            assert_eq!(store.claim(&format!("k{i}"), TTL).await.unwrap(), Claim::Done(reply(i)), "k{i}");
        }
        // Least recently used first still: k0 (read before k1) goes first, then k1.
        for i in 0..52 {
            assert_eq!(store.claim(&format!("new{i}"), TTL).await.unwrap(), Claim::New);
        }
        assert_eq!(store.len(), 100);
        assert_eq!(store.claim("k2", TTL).await.unwrap(), Claim::Done(reply(2)));
        assert_eq!(store.claim("k1", TTL).await.unwrap(), Claim::New, "k1 went second");
        // That claim made "k3" go (the coldest, "k2" having been read).
        assert_eq!(store.claim("k2", TTL).await.unwrap(), Claim::Done(reply(2)));
        assert_eq!(store.claim("k3", TTL).await.unwrap(), Claim::New);
        assert_eq!(store.claim("k0", TTL).await.unwrap(), Claim::New, "k0 went first");
    }

    #[tokio::test(start_paused = true)]
    async fn released_and_moved_keys_leave_no_key_behind() {
        let store = MemoryDedupStore::new(3);
        for k in ["a", "b", "c"] {
            store.claim(k, TTL).await.unwrap();
        }
        // "a" is released and "b" read again: the ring's two coldest slots are left over.
        store.release("a").await.unwrap();
        assert_eq!(store.claim("b", TTL).await.unwrap(), Claim::InFlight);
        assert_eq!(store.len(), 2);
        // Three keys fit: nothing goes.
        assert_eq!(store.claim("d", TTL).await.unwrap(), Claim::New);
        assert_eq!(store.len(), 3);
        // A fourth: the coldest key held, "c", goes (not "b", read after it).
        assert_eq!(store.claim("e", TTL).await.unwrap(), Claim::New);
        assert_eq!(store.claim("b", TTL).await.unwrap(), Claim::InFlight);
        assert_eq!(store.claim("c", TTL).await.unwrap(), Claim::New, "c was evicted");
        assert_eq!(store.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_follows_its_key_when_a_retry_moves_it() {
        let store = MemoryDedupStore::new(2);
        store.claim("k", TTL).await.unwrap();
        let waiter = |store: MemoryDedupStore| {
            tokio::spawn(async move { store.wait("k", Duration::from_secs(10)).await.unwrap() })
        };
        let first = waiter(store.clone());
        tokio::task::yield_now().await;
        // A retry moves the in-flight key (and the channel its waiter listens to).
        assert_eq!(store.claim("k", TTL).await.unwrap(), Claim::InFlight);
        store.complete("k", "done", TTL).await.unwrap();
        assert_eq!(first.await.unwrap().as_deref(), Some("done"));
        // And when the moved key is evicted, its waiters wake with nothing.
        store.claim("j", TTL).await.unwrap();
        let second = {
            let store = store.clone();
            tokio::spawn(async move { store.wait("j", Duration::from_secs(10)).await.unwrap() })
        };
        tokio::task::yield_now().await;
        assert_eq!(store.claim("j", TTL).await.unwrap(), Claim::InFlight);
        store.claim("x", TTL).await.unwrap();
        store.claim("y", TTL).await.unwrap();
        let start = Instant::now();
        assert_eq!(second.await.unwrap(), None);
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_ticket_stands_for_its_key_in_the_store_that_made_it_only() {
        let (one, two) = (MemoryDedupStore::new(10), MemoryDedupStore::new(10));
        let (claim, ticket) = one.claim_ticket("k", TTL).await.unwrap();
        assert_eq!(claim, Claim::New);
        assert_eq!(format!("{ticket:?}"), "Ticket(..)", "no fingerprint in Debug");
        // The store that made it takes the fingerprint from the ticket, not from the key.
        one.complete_claimed("not read", ticket, "r", TTL).await.unwrap();
        assert_eq!(one.claim("k", TTL).await.unwrap(), Claim::Done("r".into()));
        assert_eq!(one.claim("not read", TTL).await.unwrap(), Claim::New);
        // Another store goes by the key.
        assert_eq!(two.claim("j", TTL).await.unwrap(), Claim::New);
        two.complete_claimed("j", ticket, "rj", TTL).await.unwrap();
        assert_eq!(two.claim("j", TTL).await.unwrap(), Claim::Done("rj".into()));
        assert_eq!(two.claim("k", TTL).await.unwrap(), Claim::New);
        // And so does a claim's ticket of a retry (the same fingerprint as the first's).
        let (claim, again) = one.claim_ticket("k", TTL).await.unwrap();
        assert_eq!((claim, again), (Claim::Done("r".into()), ticket));
    }

    #[tokio::test(start_paused = true)]
    async fn a_completion_lands_on_its_own_key_wherever_the_claim_left_it() {
        let store = MemoryDedupStore::new(100);
        // Still where the claim put it: the ticket's slot is the key's.
        let (_, a) = store.claim_ticket("a", TTL).await.unwrap();
        store.complete_claimed("a", a, "ra", TTL).await.unwrap();
        assert_eq!(store.claim("a", TTL).await.unwrap(), Claim::Done("ra".into()));

        // Moved by a retry: the ticket's slot is left behind (same fingerprint, gone).
        let (_, b) = store.claim_ticket("b", TTL).await.unwrap();
        assert_eq!(store.claim("b", TTL).await.unwrap(), Claim::InFlight);
        store.complete_claimed("b", b, "rb", TTL).await.unwrap();
        assert_eq!(store.claim("b", TTL).await.unwrap(), Claim::Done("rb".into()));

        // Renumbered by a compaction: the ticket's slot number is another key's now.
        let store = MemoryDedupStore::new(100);
        store.claim("p", TTL).await.unwrap();
        store.claim("p", TTL).await.unwrap();
        let (_, c) = store.claim_ticket("c", TTL).await.unwrap();
        store.claim("q", TTL).await.unwrap();
        store.claim("r", TTL).await.unwrap();
        // Reads of "p" until the ring is compacted (it shrinks), and no further.
        let mut before = 0;
        while store.lock().slots.len() >= before {
            before = store.lock().slots.len();
            store.claim("p", TTL).await.unwrap();
        }
        {
            let inner = store.lock();
            assert!(inner.slot(c.slot).is_some_and(|s| s.fp.0 != c.fingerprint && !s.is_gone()));
        }
        store.complete_claimed("c", c, "rc", TTL).await.unwrap();
        assert_eq!(store.claim("c", TTL).await.unwrap(), Claim::Done("rc".into()));
        for k in ["p", "q", "r"] {
            assert_eq!(store.claim(k, TTL).await.unwrap(), Claim::InFlight, "{k}'s claim untouched");
        }

        // Evicted (capacity 1): the completion brings the key back in a slot of its own.
        let store = MemoryDedupStore::new(1);
        let (_, e) = store.claim_ticket("e", TTL).await.unwrap();
        let (_, f) = store.claim_ticket("f", TTL).await.unwrap();
        assert_eq!(store.lock().slot(e.slot).map(|s| s.fp.0), None, "e's slot left the ring");
        store.complete_claimed("e", e, "re", TTL).await.unwrap();
        assert_eq!(store.claim("e", TTL).await.unwrap(), Claim::Done("re".into()));
        store.complete_claimed("f", f, "rf", TTL).await.unwrap();
        assert_eq!(store.claim("f", TTL).await.unwrap(), Claim::Done("rf".into()));
        assert_eq!(store.len(), 1);
    }

    /// A completion made at once keeps its reply `ttl` from the reading it is given (the
    /// server's, when the handler ended), not from a reading of its own.
    #[tokio::test(start_paused = true)]
    async fn a_completion_at_once_keeps_the_reply_from_the_given_reading() {
        let store = MemoryDedupStore::new(10);
        let (claim, ticket) = store.claim_ticket("k", TTL).await.unwrap();
        assert_eq!(claim, Claim::New);
        let ended = Instant::now();
        tokio::time::advance(Duration::from_secs(20)).await;
        assert!(matches!(
            store.complete_claimed_now("k", ticket, "<xml>r</xml>", MIN_REPLY_TTL, ended),
            Some(Ok(()))
        ));
        // 29 s after the reading: kept.
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(store.claim("k", TTL).await.unwrap(), Claim::Done("<xml>r</xml>".into()));
        // 31 s after it (11 s after the call): gone, a new claim.
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(store.claim("k", TTL).await.unwrap(), Claim::New);
    }

    #[tokio::test(start_paused = true)]
    async fn a_completion_evicts_when_its_reply_goes_over_the_bytes_bound() {
        // Chunks of 64 bytes (a 512-byte bound): each 100-byte reply opens its own.
        let store = MemoryDedupStore::new(100).max_bytes(512);
        let reply = |k: &str| k.repeat(100);
        store.claim("a", TTL).await.unwrap();
        store.claim("b", TTL).await.unwrap();
        store.complete("a", &reply("a"), TTL).await.unwrap();
        assert_eq!((store.len(), store.bytes()), (2, 2 * ENTRY_BYTES + 100));
        // b's reply would make 2 * 128 + 200 = 456 ... and c's claim 584: over.
        store.claim("c", TTL).await.unwrap();
        assert_eq!((store.len(), store.bytes()), (3, 3 * ENTRY_BYTES + 100));
        store.complete("b", &reply("b"), TTL).await.unwrap();
        // 3 * 128 + 200 = 584 > 512: the coldest key, "a", went with its chunk.
        assert_eq!((store.len(), store.bytes()), (2, 2 * ENTRY_BYTES + 100));
        assert_eq!(store.claim("a", TTL).await.unwrap(), Claim::New);
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
