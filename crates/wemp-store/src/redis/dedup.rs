//! Dedup and reply cache in Redis.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use ::redis::{AsyncCommands, Cmd, ErrorKind, Pipeline, RedisError, Script, ToRedisArgs};
use tokio::sync::{mpsc, oneshot};

use super::{Key, Keys, RedisConnection, px, redis_err, write_arg};
use crate::Result;
use crate::dedup::{Claim, DedupStore};

/// In-flight marker stored under a claimed key.
const IN_FLIGHT: &str = "I";
/// Prefix of a finished reply stored under a key.
const DONE: char = 'D';

/// Claims a key on a Redis older than 7.0, which refuses `SET` with both `NX` and `GET`:
/// `SET NX PX` the in-flight marker; if the key exists, returns its value.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
          return redis.call('GET', KEYS[1])",
    )
});

/// Deletes a key only while it holds the in-flight marker.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
          return 0",
    )
});

/// Dedup and reply cache in Redis, shared by every instance using the same prefix.
///
/// A claim is one atomic command, `SET key I NX PX <in-flight ttl> GET`: it stores the
/// in-flight marker unless the key exists, and answers what the key held (nothing, the
/// marker, or a finished reply). Redis before 7.0 refuses `NX` with `GET`; there the first
/// claim falls back, for the life of the store, to a Lua script doing `SET NX PX` and, when
/// the key exists, `GET` (one round trip too, but a script run per claim in Redis).
/// Completing stores the reply under the same key (replacing the marker) for the reply TTL.
/// Waiters, on this instance or another, poll the key every
/// [`poll_interval`](Self::poll_interval) (20 ms unless set), so they see a stored reply
/// within that time.
///
/// # Completions are written behind
///
/// [`complete`](DedupStore::complete) does not wait for Redis while Redis answers: it queues
/// the `PSETEX` for the store's writer task (started on the first completion) and returns.
/// The writer sends what is queued as one pipeline, up to 128 replies a round trip, so a
/// message's task does not wait a round trip after its reply went out. Until the write lands
/// (a fraction of a millisecond on a local network), a claim of the key on another instance
/// still sees [`Claim::InFlight`] and waits, and [`wait`](DedupStore::wait) sees the reply
/// at its next poll; WeChat's retries come seconds later. [`flush`](DedupStore::flush)
/// waits until every completion queued before it was written (the server calls it when it
/// drains at shutdown).
///
/// Nothing is dropped without a word:
/// - a batch Redis refuses or does not answer is tried once more 100 ms later; then it is
///   given up, with whatever else was queued by then, in one error line
///   (`cannot store replies in redis…`, with their number). A retry of one of those
///   messages on another instance finds the key in flight: it waits its own budget and
///   answers `success`, and the key expires after its in-flight TTL; it never runs the
///   handler twice. (Under a [`FallbackDedupStore`](crate::FallbackDedupStore), this
///   instance keeps the reply in memory, and gives it to Redis when a retry reaches it.)
/// - after any failed call, and until Redis answers again, `complete` writes in place and
///   returns Redis's error, so a [`FallbackDedupStore`](crate::FallbackDedupStore) sees the
///   outage and keeps the reply in memory, as it does for every other call;
/// - the queue is bounded ([`completion_queue`](Self::completion_queue), 4096 unless
///   set): when it is full, `complete` writes in place and waits for Redis, rather than
///   drop a reply or grow without bound while Redis is slow.
#[derive(Clone, Debug)]
pub struct RedisDedupStore {
    keys: Keys,
    poll: Duration,
    /// Set once Redis refused `SET … NX … GET` (before 7.0): claims use [`CLAIM`].
    claim_by_script: Arc<AtomicBool>,
    /// The queue's capacity; 0: every completion is written in place.
    queue_capacity: usize,
    completions: Arc<Completions>,
}

/// The queue of completions and what decides whether to use it.
#[derive(Debug, Default)]
struct Completions {
    /// The writer task's queue, made with the first completion.
    queue: OnceLock<mpsc::Sender<Queued>>,
    /// Whether the last call to Redis (of this store or its writer) failed: completions are
    /// then written in place, so that their caller sees whether Redis answers.
    failing: Arc<AtomicBool>,
}

/// What the writer task takes from its queue.
enum Queued {
    /// A `PSETEX` of a reply.
    Reply(Cmd),
    /// Answered once everything queued before it was written (or given up).
    Flush(oneshot::Sender<()>),
}

/// The most replies the writer sends in one pipeline.
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
            completions: Arc::default(),
        }
    }

    /// Completions queued for the writer at most, unless set with
    /// [`completion_queue`](Self::completion_queue).
    pub const DEFAULT_COMPLETION_QUEUE: usize = 4096;

    /// Sets how many completions may wait for the writer task (see "Completions are written
    /// behind" above); `0` writes each one in place, `complete` returning once Redis stored
    /// it. Set it before the first completion.
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

    /// `SET key I NX PX <ttl> GET`, built in one buffer of the right size.
    fn claim_command(key: Key<'_>, in_flight_ttl: Duration) -> Cmd {
        // "SET", the key, "I", "NX", "PX", at most 20 digits, "GET".
        let mut cmd = Cmd::with_capacity(7, key.len() + 34);
        cmd.arg("SET").arg(key).arg(IN_FLIGHT).arg("NX").arg("PX").arg(px(in_flight_ttl)).arg("GET");
        cmd
    }

    /// `PSETEX key <ttl> D<reply>`, built in one buffer of the right size.
    fn complete_command(key: Key<'_>, reply: &str, ttl: Duration) -> Cmd {
        // "PSETEX", the key, at most 20 digits, the value.
        let mut cmd = Cmd::with_capacity(4, key.len() + reply.len() + 27);
        cmd.arg("PSETEX").arg(key).arg(px(ttl)).arg(Done(reply));
        cmd
    }

    /// Queues `cmd` for the writer task; gives it back to be written in place when the
    /// queue is off, full or gone, or while Redis fails.
    fn queue(&self, cmd: Cmd) -> Option<Cmd> {
        if self.queue_capacity == 0 || self.completions.failing.load(Ordering::Relaxed) {
            return Some(cmd);
        }
        let queue = match self.completions.queue.get() {
            Some(q) => q,
            None => {
                // The writer runs on the runtime of the first completion (a completion is
                // always made on one: the connection needs tokio).
                let Ok(runtime) = tokio::runtime::Handle::try_current() else { return Some(cmd) };
                self.completions.queue.get_or_init(|| {
                    let (tx, rx) = mpsc::channel(self.queue_capacity);
                    let failing = self.completions.failing.clone();
                    runtime.spawn(write_behind(self.keys.conn.clone(), failing, rx));
                    tx
                })
            }
        };
        match queue.try_send(Queued::Reply(cmd)) {
            Ok(()) => None,
            Err(e) => match e.into_inner() {
                Queued::Reply(cmd) => Some(cmd),
                Queued::Flush(_) => None,
            },
        }
    }

    /// Records whether Redis answered a call, for [`Self::queue`].
    fn answered<T>(&self, result: Result<T>) -> Result<T> {
        let failing = result.is_err();
        if self.completions.failing.load(Ordering::Relaxed) != failing {
            self.completions.failing.store(failing, Ordering::Relaxed);
        }
        result
    }

    fn decode(value: Option<String>) -> Option<Claim> {
        let v = value?;
        Some(match v.strip_prefix(DONE) {
            Some(reply) => Claim::Done(reply.to_owned()),
            None => Claim::InFlight,
        })
    }
}

#[async_trait::async_trait]
impl DedupStore for RedisDedupStore {
    async fn claim(&self, key: &str, in_flight_ttl: Duration) -> Result<Claim> {
        let claim = self.claim_in_redis(key, in_flight_ttl).await;
        self.answered(claim)
    }

    async fn complete(&self, key: &str, reply: &str, ttl: Duration) -> Result<()> {
        let Some(cmd) = self.queue(Self::complete_command(self.keys.key("dedup", key), reply, ttl)) else {
            return Ok(());
        };
        let stored = match self.keys.conn().await {
            Ok(mut conn) => cmd.query_async::<()>(&mut conn).await.map_err(redis_err),
            Err(e) => Err(e),
        };
        self.answered(stored)
    }

    async fn release(&self, key: &str) -> Result<()> {
        RELEASE
            .key(self.keys.key("dedup", key))
            .arg(IN_FLIGHT)
            .invoke_async::<i64>(&mut self.keys.conn().await?)
            .await
            .map(drop)
            .map_err(redis_err)
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
        let Some(queue) = self.completions.queue.get() else { return Ok(()) };
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
        let mut conn = self.keys.conn().await?;
        if !self.claims_by_script() {
            match Self::claim_command(key, in_flight_ttl).query_async::<Option<String>>(&mut conn).await {
                Ok(existing) => return Ok(Self::decode(existing).unwrap_or(Claim::New)),
                // Redis checks a command's syntax before running it: nothing was written.
                Err(e) if refuses_nx_with_get(&e) => {
                    if !self.claim_by_script.swap(true, Ordering::Relaxed) {
                        tracing::info!(
                            "redis refuses SET with NX and GET (before 7.0): dedup claims run a Lua script"
                        );
                    }
                }
                Err(e) => return Err(redis_err(e)),
            }
        }
        let existing: Option<String> = CLAIM
            .key(key)
            .arg(IN_FLIGHT)
            .arg(px(in_flight_ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(redis_err)?;
        Ok(Self::decode(existing).unwrap_or(Claim::New))
    }
}

/// The writer task of a store's completions: takes what is queued, up to [`BATCH`] at a
/// time, and writes it as one pipeline; ends once every clone of the store is gone and the
/// queue is empty.
async fn write_behind(conn: RedisConnection, failing: Arc<AtomicBool>, mut queue: mpsc::Receiver<Queued>) {
    let mut taken = Vec::with_capacity(BATCH);
    let mut flushes = Vec::new();
    let mut pipe = Pipeline::with_capacity(BATCH);
    while queue.recv_many(&mut taken, BATCH).await > 0 {
        if taken.len() < BATCH {
            // Woken by a completion, tokio runs this task right after the one that completed:
            // let the other ready tasks run first, so that their completions join the batch.
            tokio::task::yield_now().await;
            while taken.len() < BATCH
                && let Ok(queued) = queue.try_recv()
            {
                taken.push(queued);
            }
        }
        for queued in taken.drain(..) {
            match queued {
                Queued::Reply(cmd) => {
                    pipe.add_command(cmd);
                }
                Queued::Flush(done) => flushes.push(done),
            }
        }
        if !pipe.is_empty() {
            let mut written = send(&conn, &pipe).await;
            if written.is_err() {
                // Completions are written in place now, so their callers see the outage.
                failing.store(true, Ordering::Relaxed);
                tokio::time::sleep(RETRY_AFTER).await;
                written = send(&conn, &pipe).await;
            }
            match written {
                Ok(()) => failing.store(false, Ordering::Relaxed),
                Err(e) => {
                    failing.store(true, Ordering::Relaxed);
                    // What was queued before the outage showed goes with this batch, so a Redis
                    // that does not answer at all costs one batch's timeouts, not one per
                    // batch (nothing more is queued while it fails).
                    let mut lost = pipe.len();
                    while let Ok(queued) = queue.try_recv() {
                        match queued {
                            Queued::Reply(_) => lost += 1,
                            Queued::Flush(done) => flushes.push(done),
                        }
                    }
                    tracing::error!(
                        error = %e,
                        replies = lost,
                        "cannot store replies in redis for retries on other instances"
                    );
                }
            }
            pipe.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

async fn send(conn: &RedisConnection, pipe: &Pipeline) -> Result<()> {
    pipe.query_async::<()>(&mut conn.get().await?).await.map_err(redis_err)
}

/// A finished reply as stored: [`DONE`], then the reply, written as one argument.
struct Done<'a>(&'a str);

impl ToRedisArgs for Done<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + ::redis::RedisWrite,
    {
        let mut done = [0; 4];
        write_arg(out, &[DONE.encode_utf8(&mut done).as_bytes(), self.0.as_bytes()]);
    }
}

/// Whether `e` is Redis refusing `SET` with both `NX` and `GET` (a syntax error before 7.0).
fn refuses_nx_with_get(e: &RedisError) -> bool {
    e.kind() == ErrorKind::ResponseError && e.detail().is_some_and(|d| d.contains("syntax error"))
}
