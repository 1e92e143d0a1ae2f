//! Dedup and reply cache in Redis.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::redis::{AsyncCommands, ErrorKind, RedisError, Value};
use tokio::sync::{mpsc, oneshot};

use super::command::{Command, DONE};
use super::link::Link;
use super::{Keys, RedisConnection, redis_err};
use crate::dedup::{Claim, DedupStore, Ticket};
use crate::{Result, StoreError};

/// Dedup and reply cache in Redis, shared by every instance using the same prefix.
///
/// A claim is one atomic command, `SET key I NX PX <in-flight ttl> GET`: it stores the
/// in-flight marker unless the key exists, and answers what the key held (nothing, the
/// marker, or a finished reply). Redis before 7.0 refuses `NX` with `GET`; there the first
/// claim falls back, for the life of the store, to a Lua script doing `SET NX PX` and, when
/// the key exists, `GET` (sent as `EVAL` where the other would have been, so one round trip
/// too and batched the same way, but a script run per claim in Redis).
/// Completing stores the reply under the same key (replacing the marker) for the reply TTL.
/// Waiters, on this instance or another, poll the key every
/// [`poll_interval`](Self::poll_interval) (20 ms unless set), so they see a stored reply
/// within that time.
///
/// # Claims and completions go through one writer
///
/// While Redis answers, claims and completions are queued for the store's writer task (started
/// on first use), which sends what is queued as one pipeline, up to 128 commands a round trip,
/// in the order they were made: so concurrent messages share a round trip and Redis reads their
/// commands in one go. When the store's [`RedisConnection`] was made from a URL with the
/// default settings ([`RedisConnection::lazy`], [`RedisConnection::connect`],
/// [`RedisDedupStore::lazy`], [`RedisDedupStore::connect`]), the writer sends its pipelines
/// over a connection of its own, which it opens on first use (authenticating and selecting the
/// database as the URL says) and again after a failure, and writes and reads in its own task;
/// if Redis refuses that connection's greeting, it logs a warning and uses the shared
/// connection from then on. Otherwise (a store over a
/// [`ConnectionManager`](::redis::aio::ConnectionManager), or settings of your own) it uses the
/// shared connection. A claim waits for its own answer (it decides whether the handler runs); a
/// claim whose caller stopped waiting before it was sent (a
/// [`FallbackDedupStore`](crate::FallbackDedupStore) timeout, a caller that hung up) is not
/// sent, and a claim won for a caller that stopped waiting while Redis answered (a caller that
/// hung up; a `FallbackDedupStore` that timed out, and holds the claim in its local store) is
/// released at once: no handler runs for it, and its marker would otherwise make WeChat's
/// retries wait for a reply that never comes, until the in-flight TTL. (A claim made in place —
/// the queue off or full, or Redis failing — runs in a task of its own, which does the same.) A
/// claim made on this instance after a completion of the same key gets the reply, as the
/// completion is sent first (a claim made in place while that completion is still queued may
/// reach Redis first, over the other connection: it then finds the key in flight and waits for
/// the reply).
///
/// A batch is bounded by the connection's response timeout (1 s unless set with
/// [`RedisConnection::timeouts`] or your own settings): when it fails
/// (Redis unreachable, the connection dropped, no answer in time), each of its claims gets
/// the error, and so does every claim queued behind it, at once, rather than wait a timeout
/// each.
///
/// # Completions are written behind
///
/// [`complete`](DedupStore::complete) does not wait for Redis while Redis answers: it queues
/// the `PSETEX` for the writer and returns, so a message's task does not wait a round trip
/// after its reply went out. Until the write lands
/// (a fraction of a millisecond on a local network), a claim of the key on another instance
/// still sees [`Claim::InFlight`] and waits, and [`wait`](DedupStore::wait) sees the reply
/// at its next poll; WeChat's retries come seconds later. [`flush`](DedupStore::flush)
/// waits until every completion queued before it was written (the server calls it when it
/// drains at shutdown).
///
/// Nothing is dropped without a word:
/// - replies of a batch Redis refuses or does not answer are tried once more 100 ms later
///   (with the replies queued meanwhile); then they are
///   given up, with whatever else was queued by then, in one error line
///   (`cannot store replies in redis…`, with their number). A retry of one of those
///   messages on another instance finds the key in flight: it waits its own budget and
///   answers `success`, and the key expires after its in-flight TTL; it never runs the
///   handler twice. (Under a [`FallbackDedupStore`](crate::FallbackDedupStore), this
///   instance keeps the reply in memory, and gives it to Redis when a retry reaches it.)
/// - after any failed call, and until Redis answers again, claims and completions are made
///   in place and return Redis's error, so a
///   [`FallbackDedupStore`](crate::FallbackDedupStore) sees the outage and keeps the reply
///   in memory, as it does for every other call;
/// - the queue is bounded ([`completion_queue`](Self::completion_queue), 4096 unless
///   set): when it is full, claims and completions are made in place and wait for Redis,
///   rather than drop a reply or grow without bound while Redis is slow.
#[derive(Clone, Debug)]
pub struct RedisDedupStore {
    keys: Keys,
    poll: Duration,
    /// Set once Redis refused `SET … NX … GET` (before 7.0): claims use the Lua script.
    claim_by_script: Arc<AtomicBool>,
    /// The queue's capacity; 0: every claim and completion is made in place.
    queue_capacity: usize,
    writer: Arc<Writer>,
}

/// The writer task's queue and what decides whether to use it.
#[derive(Debug, Default)]
struct Writer {
    /// The writer task's queue, made with the first claim or completion.
    queue: OnceLock<mpsc::Sender<Queued>>,
    /// Whether the last call to Redis (of this store or its writer) failed: claims and
    /// completions are then made in place, so that their callers see whether Redis answers.
    failing: Arc<AtomicBool>,
}

/// What the writer task takes from its queue.
enum Queued {
    /// A claim's `SET … NX … GET`, and where Redis's answer goes.
    Claim(Command, oneshot::Sender<Result<Value>>),
    /// A `PSETEX` of a reply.
    Reply(Command),
    /// Answered once everything queued before it was written (or given up).
    Flush(oneshot::Sender<()>),
}

/// The most commands the writer sends in one pipeline.
const BATCH: usize = 128;
/// How long the writer waits before trying a failed batch once more.
const RETRY_AFTER: Duration = Duration::from_millis(100);

impl RedisDedupStore {
    /// Poll interval of waiters unless set with [`poll_interval`](Self::poll_interval).
    pub const DEFAULT_POLL: Duration = Duration::from_millis(20);

    /// A store over `conn` (a [`ConnectionManager`](::redis::aio::ConnectionManager) or a [`RedisConnection`]) with every
    /// key under `prefix` (e.g. `"wemp:"`).
    pub fn new(conn: impl Into<RedisConnection>, prefix: impl Into<String>) -> Self {
        Self {
            keys: Keys { conn: conn.into(), prefix: prefix.into() },
            poll: Self::DEFAULT_POLL,
            claim_by_script: Arc::new(AtomicBool::new(false)),
            queue_capacity: Self::DEFAULT_COMPLETION_QUEUE,
            writer: Arc::default(),
        }
    }

    /// Claims and completions queued for the writer at most, unless set with
    /// [`completion_queue`](Self::completion_queue).
    pub const DEFAULT_COMPLETION_QUEUE: usize = 4096;

    /// Sets how many claims and completions may wait for the writer task (see "Claims and
    /// completions go through one writer" above); `0` starts no writer: each claim is sent
    /// on its own and each completion written in place, `complete` returning once Redis
    /// stored it. Set it before the first claim.
    #[must_use]
    pub fn completion_queue(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// Sets how often waiters look for the reply.
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll = every.max(Duration::from_millis(1));
        self
    }

    /// Claims with the Lua script that Redis before 7.0 needs, instead of `SET … NX … GET`.
    /// The store switches to it by itself when Redis refuses that command as a syntax error;
    /// this is for a Redis-compatible server or proxy that refuses it in another way. Both
    /// kinds of claim read and write the same keys, so instances of either kind share them.
    #[must_use]
    pub fn claim_by_script(self) -> Self {
        self.claim_by_script.store(true, Ordering::Relaxed);
        self
    }

    /// Whether claims use the Lua script of Redis before 7.0 (after Redis refused `SET … NX
    /// … GET` once, or as set by a test).
    fn claims_by_script(&self) -> bool {
        self.claim_by_script.load(Ordering::Relaxed)
    }

    /// Queues the reply for the writer (see "Completions are written behind" above) while
    /// Redis answers and the queue has room; `None` otherwise (the async completion then
    /// writes it in place).
    fn queue_reply(&self, key: &str, reply: &str, ttl: Duration) -> Option<Result<()>> {
        let slot = self.slot()?;
        slot.send(Queued::Reply(Command::reply(self.keys.key("dedup", key), reply, ttl)));
        Some(Ok(()))
    }

    /// A place in the writer task's queue (the task started on first use), or `None` when
    /// the queue is off, full or gone, or while Redis fails: the call is then made in place.
    fn slot(&self) -> Option<mpsc::Permit<'_, Queued>> {
        if self.queue_capacity == 0 || self.writer.failing.load(Ordering::Relaxed) {
            return None;
        }
        let queue = match self.writer.queue.get() {
            Some(q) => q,
            None => {
                // The writer runs on the runtime of the first claim or completion (they are
                // always made on one: the connection needs tokio).
                let runtime = tokio::runtime::Handle::try_current().ok()?;
                self.writer.queue.get_or_init(|| {
                    let (tx, rx) = mpsc::channel(self.queue_capacity);
                    let failing = self.writer.failing.clone();
                    runtime.spawn(write_behind(Link::new(&self.keys.conn), failing, rx));
                    tx
                })
            }
        };
        queue.try_reserve().ok()
    }

    /// Records whether Redis answered a call, for [`Self::slot`].
    fn answered<T>(&self, result: Result<T>) -> Result<T> {
        let failing = result.is_err();
        if self.writer.failing.load(Ordering::Relaxed) != failing {
            self.writer.failing.store(failing, Ordering::Relaxed);
        }
        result
    }

    /// What a claim found, from what the key held (`None`: nothing).
    fn decode(value: Option<String>) -> Option<Claim> {
        let mut v = value?;
        Some(if v.starts_with(DONE) {
            // The reply is what follows the marker: moved down in place, not copied.
            v.drain(..DONE.len_utf8());
            Claim::Done(v)
        } else {
            Claim::InFlight
        })
    }

    /// What a claim found, from Redis's answer to `SET … NX … GET` or the script.
    fn decode_answer(answer: Value) -> std::result::Result<Claim, RedisError> {
        // The usual answer, read without the redis crate's conversions: the key was free.
        if answer == Value::Nil {
            return Ok(Claim::New);
        }
        let existing: Option<String> = ::redis::from_owned_redis_value(answer.extract_error()?)?;
        Ok(Self::decode(existing).unwrap_or(Claim::New))
    }
}

#[async_trait::async_trait]
impl DedupStore for RedisDedupStore {
    async fn claim(&self, key: &str, in_flight_ttl: Duration) -> Result<Claim> {
        self.claim_unboxed(key, in_flight_ttl).await
    }

    /// The claim's future, not boxed (a [`FallbackDedupStore`](crate::FallbackDedupStore)
    /// over this store holds it in its own). Not an `async fn`: `async_trait` would box it.
    #[allow(clippy::manual_async_fn)]
    fn claim_unboxed(
        &self,
        key: &str,
        in_flight_ttl: Duration,
    ) -> impl Future<Output = Result<Claim>> + Send {
        async move {
            let claim = self.claim_in_redis(key, in_flight_ttl).await;
            self.answered(claim)
        }
    }

    async fn complete(&self, key: &str, reply: &str, ttl: Duration) -> Result<()> {
        if let Some(queued) = self.queue_reply(key, reply, ttl) {
            return queued;
        }
        let cmd = Command::reply(self.keys.key("dedup", key), reply, ttl);
        let stored = match self.keys.conn().await {
            Ok(mut conn) => cmd.to_cmd().query_async::<()>(&mut conn).await.map_err(redis_err),
            Err(e) => Err(e),
        };
        self.answered(stored)
    }

    /// Queues the reply for the writer (`queue_reply`); the clock's reading is not used
    /// (Redis keeps the expiry).
    fn complete_claimed_now(
        &self,
        key: &str,
        _: Ticket,
        reply: &str,
        ttl: Duration,
        _: tokio::time::Instant,
    ) -> Option<Result<()>> {
        self.queue_reply(key, reply, ttl)
    }

    async fn release(&self, key: &str) -> Result<()> {
        let cmd = Command::release(self.keys.key("dedup", key)).to_cmd();
        cmd.query_async::<i64>(&mut self.keys.conn().await?).await.map(drop).map_err(redis_err)
    }

    async fn wait(&self, key: &str, timeout: Duration) -> Result<Option<String>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let key = self.keys.key("dedup", key);
        let mut conn = self.keys.conn().await?;
        loop {
            let value: Option<String> = conn.get(key).await.map_err(redis_err)?;
            match Self::decode(value) {
                Some(Claim::Done(reply)) => return Ok(Some(reply)),
                Some(_) => {}
                // Released, or the in-flight claim expired: nothing will arrive.
                None => return Ok(None),
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(self.poll.min(deadline - now)).await;
        }
    }

    async fn flush(&self) -> Result<()> {
        let Some(queue) = self.writer.queue.get() else { return Ok(()) };
        let (done, written) = oneshot::channel();
        if queue.send(Queued::Flush(done)).await.is_ok() {
            // An error: the writer is gone (its runtime stopped), and what it held with it.
            let _ = written.await;
        }
        Ok(())
    }
}

impl RedisDedupStore {
    /// The claim itself (see [`DedupStore::claim`]).
    async fn claim_in_redis(&self, key: &str, in_flight_ttl: Duration) -> Result<Claim> {
        let key = self.keys.key("dedup", key);
        loop {
            let by_script = self.claims_by_script();
            let cmd = if by_script {
                Command::claim_by_script(key, in_flight_ttl)
            } else {
                Command::claim(key, in_flight_ttl)
            };
            let answer = match self.slot() {
                // Sent with whatever else is queued, in one pipeline by the writer.
                Some(slot) => {
                    let (answer, answered) = oneshot::channel();
                    slot.send(Queued::Claim(cmd, answer));
                    match answered.await {
                        Ok(answer) => Ok(answer?),
                        Err(_) => {
                            return Err(StoreError::backend(
                                "redis",
                                "the dedup store's writer task stopped",
                            ));
                        }
                    }
                }
                // Boxed: the connection's future is large (kilobytes), and this path is rare
                // (Redis failing, the queue full); the claim's future stays small.
                None => Box::pin(async { claim_in_place(self.keys.conn().await?, cmd).await }).await?,
            };
            match answer.and_then(Self::decode_answer) {
                Ok(claim) => return Ok(claim),
                // Redis checks a command's syntax before running it: nothing was written.
                Err(e) if !by_script && refuses_nx_with_get(&e) => {
                    if !self.claim_by_script.swap(true, Ordering::Relaxed) {
                        tracing::info!(
                            "redis refuses SET with NX and GET (before 7.0): dedup claims run a Lua script"
                        );
                    }
                }
                Err(e) => return Err(redis_err(e)),
            }
        }
    }
}

/// Makes a claim in place (not through the writer), in a task of its own, so that a caller
/// that stops waiting (hangs up) does not stop it: a claim Redis wins for such a caller is
/// released at once, as the writer releases one.
async fn claim_in_place(
    mut conn: ::redis::aio::ConnectionManager,
    cmd: Command,
) -> Result<std::result::Result<Value, RedisError>> {
    let (answer, answered) = oneshot::channel();
    tokio::spawn(async move {
        let claimed = cmd.to_cmd().query_async::<Value>(&mut conn).await;
        // `SET … NX … GET` (and the script) answers nil when the key was free and is now ours.
        if let Err(Ok(Value::Nil)) = answer.send(claimed) {
            let released = cmd.into_release().to_cmd().query_async::<i64>(&mut conn).await;
            match released {
                Ok(_) => tracing::debug!("released a dedup claim whose caller stopped waiting"),
                Err(e) => tracing::warn!(
                    error = %e,
                    "cannot release a dedup claim whose caller stopped waiting; it expires after the in-flight TTL"
                ),
            }
        }
    });
    answered.await.map_err(|_| StoreError::backend("redis", "the dedup claim's task stopped"))
}

/// The writer task of a store: takes what is queued, up to [`BATCH`] at a time, and sends it
/// as one pipeline, in the order it was queued; each claim gets Redis's answer to it. Ends
/// once every clone of the store is gone and the queue is empty.
async fn write_behind(mut link: Link, failing: Arc<AtomicBool>, mut queue: mpsc::Receiver<Queued>) {
    let mut taken = Vec::with_capacity(BATCH);
    let mut flushes = Vec::new();
    let mut batch = Vec::with_capacity(BATCH);
    // Per command of `batch`: where a claim's answer goes, `None` for a reply.
    let mut answers: Vec<Option<oneshot::Sender<Result<Value>>>> = Vec::with_capacity(BATCH);
    // Claims won for callers that stopped waiting, to release.
    let mut orphans = Vec::new();
    // Redis's answers to a batch, one per command.
    let mut values = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut taken, BATCH).await > 0 {
        if taken.len() < BATCH {
            // Woken by a claim or a completion, tokio runs this task right after the one that
            // queued it: let the other ready tasks run first, so that theirs join the batch.
            tokio::task::yield_now().await;
            while taken.len() < BATCH
                && let Ok(queued) = queue.try_recv()
            {
                taken.push(queued);
            }
        }
        for queued in taken.drain(..) {
            match queued {
                // Its caller gave up waiting (a timeout): not sent.
                Queued::Claim(_, answer) if answer.is_closed() => {}
                Queued::Claim(cmd, answer) => {
                    batch.push(cmd);
                    answers.push(Some(answer));
                }
                Queued::Reply(cmd) => {
                    batch.push(cmd);
                    answers.push(None);
                }
                Queued::Flush(done) => flushes.push(done),
            }
        }
        if !batch.is_empty() {
            let replies = match link.send_into(&batch, &mut values).await {
                Ok(()) => answer(&mut batch, &mut answers, &mut values, &mut orphans),
                Err(e) => fail(&mut batch, &mut answers, &e),
            };
            if !orphans.is_empty() {
                release_orphans(&mut link, &orphans).await;
                orphans.clear();
            }
            match replies {
                None => failing.store(false, Ordering::Relaxed),
                Some((replies, e)) => retry(&mut link, &failing, &mut queue, &mut flushes, replies, e).await,
            }
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// The replies of a batch that were not stored, to be tried again, and why.
type Unstored = Option<(Vec<Command>, StoreError)>;

/// Gives each claim of `batch` (emptied) Redis's answer to it (from `values`, emptied); the
/// replies Redis refused, if any. A claim won (the key was free) whose caller is gone goes to
/// `orphans` as its release.
fn answer(
    batch: &mut Vec<Command>,
    answers: &mut Vec<Option<oneshot::Sender<Result<Value>>>>,
    values: &mut Vec<Value>,
    orphans: &mut Vec<Command>,
) -> Unstored {
    let mut unstored: Unstored = None;
    let mut values = values.drain(..);
    for (cmd, answer) in batch.drain(..).zip(answers.drain(..)) {
        let value = values.next();
        match (answer, value) {
            (Some(answer), Some(value)) => {
                // `SET … NX … GET` answers nil when the key was free and is now ours.
                if let Err(Ok(Value::Nil)) = answer.send(Ok(value))
                    && cmd.is_claim()
                {
                    orphans.push(cmd.into_release());
                }
            }
            (Some(answer), None) => {
                let _ = answer.send(Err(StoreError::backend("redis", "no answer in the pipeline's replies")));
            }
            (None, Some(Value::ServerError(e))) => {
                unstored.get_or_insert_with(|| (Vec::new(), redis_err(RedisError::from(e)))).0.push(cmd);
            }
            (None, Some(_)) => {}
            (None, None) => {
                unstored
                    .get_or_insert_with(|| {
                        (Vec::new(), StoreError::backend("redis", "no answer in the pipeline's replies"))
                    })
                    .0
                    .push(cmd);
            }
        }
    }
    unstored
}

/// Gives each claim of `batch` (emptied) the error `e` (the batch failed as a whole); its
/// replies.
fn fail(
    batch: &mut Vec<Command>,
    answers: &mut Vec<Option<oneshot::Sender<Result<Value>>>>,
    e: &StoreError,
) -> Unstored {
    let mut replies = Vec::new();
    for (cmd, answer) in batch.drain(..).zip(answers.drain(..)) {
        match answer {
            Some(answer) => {
                let _ = answer.send(Err(again(e)));
            }
            None => replies.push(cmd),
        }
    }
    Some((replies, again(e)))
}

/// After a failed batch: claims and completions are made in place until Redis answers again
/// (so their callers see the outage); what was queued meanwhile goes with this batch (its
/// claims fail at once, its replies join the retry); the replies are tried once more
/// [`RETRY_AFTER`] later, then given up with one error line.
async fn retry(
    link: &mut Link,
    failing: &AtomicBool,
    queue: &mut mpsc::Receiver<Queued>,
    flushes: &mut Vec<oneshot::Sender<()>>,
    mut replies: Vec<Command>,
    error: StoreError,
) {
    failing.store(true, Ordering::Relaxed);
    take_queued(queue, &mut replies, flushes, &error);
    if replies.is_empty() {
        return;
    }
    tokio::time::sleep(RETRY_AFTER).await;
    take_queued(queue, &mut replies, flushes, &error);
    let error = match link.send(&replies).await {
        Ok(values) => match values.into_iter().find_map(|v| v.extract_error().err()) {
            None => {
                failing.store(false, Ordering::Relaxed);
                return;
            }
            Some(e) => redis_err(e),
        },
        Err(e) => e,
    };
    // What was queued before the outage showed goes with this batch, so a Redis that does not
    // answer at all costs one batch's timeouts, not one per batch (nothing more is queued
    // while it fails).
    take_queued(queue, &mut replies, flushes, &error);
    tracing::error!(
        error = %error,
        replies = replies.len(),
        "cannot store replies in redis for retries on other instances"
    );
}

/// Takes what is queued now: claims are failed with `error`, replies added to `replies`.
fn take_queued(
    queue: &mut mpsc::Receiver<Queued>,
    replies: &mut Vec<Command>,
    flushes: &mut Vec<oneshot::Sender<()>>,
    error: &StoreError,
) {
    while let Ok(queued) = queue.try_recv() {
        match queued {
            Queued::Claim(_, answer) => {
                let _ = answer.send(Err(again(error)));
            }
            Queued::Reply(cmd) => replies.push(cmd),
            Queued::Flush(done) => flushes.push(done),
        }
    }
}

/// Releases the claims of `orphans` (see [`answer`]). A failure leaves their markers to
/// expire after the in-flight TTL, as a crashed owner's would; it is logged.
async fn release_orphans(link: &mut Link, orphans: &[Command]) {
    let failed = match link.send(orphans).await {
        Ok(values) => values.into_iter().find_map(|v| v.extract_error().err()).map(redis_err),
        Err(e) => Some(e),
    };
    match failed {
        None => {
            tracing::debug!(claims = orphans.len(), "released dedup claims whose callers stopped waiting")
        }
        Some(e) => tracing::warn!(
            error = %e,
            claims = orphans.len(),
            "cannot release dedup claims whose callers stopped waiting; they expire after the in-flight TTL"
        ),
    }
}

/// The same error once more (for each claim of a failed batch).
fn again(e: &StoreError) -> StoreError {
    match e {
        StoreError::Backend { backend, source } => StoreError::backend(backend, source.to_string()),
        other => StoreError::backend("redis", other.to_string()),
    }
}

/// Whether `e` is Redis refusing `SET` with both `NX` and `GET` (a syntax error before 7.0).
fn refuses_nx_with_get(e: &RedisError) -> bool {
    e.kind() == ErrorKind::ResponseError && e.detail().is_some_and(|d| d.contains("syntax error"))
}
