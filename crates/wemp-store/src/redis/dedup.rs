//! Dedup and reply cache in Redis.

use std::sync::LazyLock;
use std::time::Duration;

use ::redis::{AsyncCommands, Script};

use super::{Keys, RedisConnection, px, redis_err};
use crate::Result;
use crate::dedup::{Claim, DedupStore};

/// In-flight marker stored under a claimed key.
const IN_FLIGHT: &str = "I";
/// Prefix of a finished reply stored under a key.
const DONE: char = 'D';

/// Claims a key: `SET NX PX` the in-flight marker; if the key exists, returns its value.
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
/// A claim is one atomic `SET NX PX` of an in-flight marker; completing stores the reply
/// under the same key (replacing the marker) for the reply TTL. Waiters, on this instance
/// or another, poll the key every [`poll_interval`](Self::poll_interval) (20 ms unless
/// set), so they see a stored reply within that time.
#[derive(Clone, Debug)]
pub struct RedisDedupStore {
    keys: Keys,
    poll: Duration,
}

impl RedisDedupStore {
    /// Poll interval of waiters unless set with [`poll_interval`](Self::poll_interval).
    pub const DEFAULT_POLL: Duration = Duration::from_millis(20);

    /// A store over `conn` (a [`ConnectionManager`](::redis::aio::ConnectionManager) or a [`RedisConnection`]) with every
    /// key under `prefix` (e.g. `"wemp:"`).
    pub fn new(conn: impl Into<RedisConnection>, prefix: impl Into<String>) -> Self {
        Self { keys: Keys { conn: conn.into(), prefix: prefix.into() }, poll: Self::DEFAULT_POLL }
    }

    /// Sets how often waiters look for the reply.
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll = every.max(Duration::from_millis(1));
        self
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
        let existing: Option<String> = CLAIM
            .key(self.keys.key("dedup", key))
            .arg(IN_FLIGHT)
            .arg(px(in_flight_ttl))
            .invoke_async(&mut self.keys.conn().await?)
            .await
            .map_err(redis_err)?;
        Ok(Self::decode(existing).unwrap_or(Claim::New))
    }

    async fn complete(&self, key: &str, reply: &str, ttl: Duration) -> Result<()> {
        let value = format!("{DONE}{reply}");
        self.keys
            .conn()
            .await?
            .pset_ex::<_, _, ()>(self.keys.key("dedup", key), value, px(ttl))
            .await
            .map_err(redis_err)
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
            let value: Option<String> = conn.get(&key).await.map_err(redis_err)?;
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
