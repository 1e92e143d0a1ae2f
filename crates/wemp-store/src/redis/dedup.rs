//! Dedup and reply cache in Redis.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ::redis::{AsyncCommands, Cmd, ErrorKind, RedisError, Script, ToRedisArgs};

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
#[derive(Clone, Debug)]
pub struct RedisDedupStore {
    keys: Keys,
    poll: Duration,
    /// Set once Redis refused `SET … NX … GET` (before 7.0): claims use [`CLAIM`].
    claim_by_script: Arc<AtomicBool>,
}

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
        }
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

    async fn complete(&self, key: &str, reply: &str, ttl: Duration) -> Result<()> {
        let key = self.keys.key("dedup", key);
        let value = Done(reply);
        // "PSETEX", the key, at most 20 digits, the value.
        let mut cmd = Cmd::with_capacity(4, key.len() + reply.len() + 27);
        cmd.arg("PSETEX").arg(key).arg(px(ttl)).arg(value);
        cmd.query_async::<()>(&mut self.keys.conn().await?).await.map_err(redis_err)
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
