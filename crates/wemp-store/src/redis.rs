//! Redis backends: dedup and reply cache, token store with refresh lease, sessions.
//!
//! Every key is `<prefix><kind>:<key>`, where `kind` is `dedup`, `token`, `lease` or
//! `session` and `key` is the caller's (already namespaced by appid). Several instances
//! pointing at one Redis with one prefix share their state; different prefixes never see
//! each other's keys. Each check-and-write is one `SET NX` or one Lua script, so it is
//! atomic across instances.
//!
//! The stores hold a [`RedisConnection`]: a [`ConnectionManager`], which reconnects by
//! itself after Redis went away, made either now ([`connect`] fails while Redis is down)
//! or on first use ([`RedisConnection::lazy`], and the stores' `lazy` constructors), so a
//! server can start during a Redis outage. Both use short timeouts, so a dead Redis fails
//! calls quickly instead of stalling a reply (wrap the dedup store in a
//! [`FallbackDedupStore`](crate::FallbackDedupStore) to keep answering then).

use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, Script};

use crate::dedup::{Claim, DedupStore};
use crate::session::{SessionStore, Versioned};
use crate::token::{CachedToken, Lease, TokenStore};
use crate::{Result, StoreError};

fn redis_err(e: ::redis::RedisError) -> StoreError {
    StoreError::backend("redis", e)
}

fn px(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn default_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_secs(1))
        .set_response_timeout(Duration::from_secs(1))
        .set_number_of_retries(1)
        .set_factor(50)
        .set_max_delay(500)
}

/// Connects to the Redis at `url` (`redis://host:port/db`), with 1 s connection and
/// response timeouts and one quick reconnection try per failed call.
///
/// # Errors
///
/// [`StoreError::Backend`] if the URL is invalid or Redis does not answer now.
pub async fn connect(url: &str) -> Result<ConnectionManager> {
    connect_with(url, default_config()).await
}

/// Connects to the Redis at `url` with connection-manager settings of your own.
///
/// # Errors
///
/// [`StoreError::Backend`] if the URL is invalid or Redis does not answer now.
pub async fn connect_with(url: &str, config: ConnectionManagerConfig) -> Result<ConnectionManager> {
    let client = ::redis::Client::open(url).map_err(redis_err)?;
    ConnectionManager::new_with_config(client, config).await.map_err(redis_err)
}

/// A Redis connection, made now or on first use.
///
/// [`RedisConnection::lazy`] only checks the URL: the first call that needs Redis connects
/// (concurrent callers wait for that one attempt). While Redis cannot be reached, calls fail
/// at once with [`StoreError::Backend`] and a new attempt is made at most once per
/// [`retry_interval`](Self::retry_interval) (1 s unless set), so an outage costs failed
/// calls, not stalled ones. Once connected, the [`ConnectionManager`] reconnects by itself.
/// Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct RedisConnection {
    inner: Arc<Lazy>,
}

struct Lazy {
    ready: OnceLock<ConnectionManager>,
    pending: Option<Pending>,
}

struct Pending {
    client: ::redis::Client,
    config: ConnectionManagerConfig,
    retry: Duration,
    /// When the last attempt failed; held while an attempt runs.
    last_failure: tokio::sync::Mutex<Option<tokio::time::Instant>>,
}

impl RedisConnection {
    /// A connection to `url` made on first use, with the timeouts of [`connect`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if the URL is invalid (nothing is connected yet).
    pub fn lazy(url: &str) -> Result<Self> {
        Self::lazy_with(url, default_config())
    }

    /// A connection to `url` made on first use, with connection-manager settings of your
    /// own.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if the URL is invalid.
    pub fn lazy_with(url: &str, config: ConnectionManagerConfig) -> Result<Self> {
        let client = ::redis::Client::open(url).map_err(redis_err)?;
        let pending = Pending {
            client,
            config,
            retry: Duration::from_secs(1),
            last_failure: tokio::sync::Mutex::new(None),
        };
        Ok(Self { inner: Arc::new(Lazy { ready: OnceLock::new(), pending: Some(pending) }) })
    }

    /// Sets the least time between two connection attempts while Redis cannot be reached.
    /// Only before the connection is shared (on a fresh [`RedisConnection::lazy`]).
    #[must_use]
    pub fn retry_interval(mut self, every: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner)
            && let Some(p) = inner.pending.as_mut()
        {
            p.retry = every;
        }
        self
    }

    /// Whether the connection has been made.
    pub fn is_connected(&self) -> bool {
        self.inner.ready.get().is_some()
    }

    /// The connection, connecting first if needed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] while Redis cannot be reached (at once, without a new
    /// attempt, within the retry interval of the last failed one).
    pub async fn get(&self) -> Result<ConnectionManager> {
        if let Some(c) = self.inner.ready.get() {
            return Ok(c.clone());
        }
        let Some(p) = &self.inner.pending else {
            unreachable!("a connection without a pending connect is always ready")
        };
        let mut last_failure = p.last_failure.lock().await;
        if let Some(c) = self.inner.ready.get() {
            return Ok(c.clone());
        }
        if let Some(at) = *last_failure
            && at.elapsed() < p.retry
        {
            return Err(StoreError::backend(
                "redis",
                format!("not connected: the last attempt failed {} ms ago", at.elapsed().as_millis()),
            ));
        }
        match ConnectionManager::new_with_config(p.client.clone(), p.config.clone()).await {
            Ok(c) => {
                let c = self.inner.ready.get_or_init(|| c).clone();
                *last_failure = None;
                tracing::info!("connected to redis");
                Ok(c)
            }
            Err(e) => {
                if last_failure.is_none() {
                    tracing::warn!(error = %e, "cannot connect to redis; retrying on use");
                }
                *last_failure = Some(tokio::time::Instant::now());
                Err(redis_err(e))
            }
        }
    }
}

impl From<ConnectionManager> for RedisConnection {
    fn from(conn: ConnectionManager) -> Self {
        let ready = OnceLock::new();
        let _ = ready.set(conn);
        Self { inner: Arc::new(Lazy { ready, pending: None }) }
    }
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection").field("connected", &self.is_connected()).finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Keys {
    conn: RedisConnection,
    prefix: String,
}

impl Keys {
    fn key(&self, kind: &str, key: &str) -> String {
        format!("{}{kind}:{key}", self.prefix)
    }

    async fn conn(&self) -> Result<ConnectionManager> {
        self.conn.get().await
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------
// Dedup

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

/// `lazy` and `connect` for a store with `new(conn, prefix)`.
macro_rules! url_constructors {
    ($($store:ident),*) => {$(
        impl $store {
            /// A store that connects to `url` on first use ([`RedisConnection::lazy`]): it
            /// can be built while Redis is down.
            ///
            /// # Errors
            ///
            /// [`StoreError::Backend`] if the URL is invalid.
            pub fn lazy(url: &str, prefix: impl Into<String>) -> Result<Self> {
                Ok(Self::new(RedisConnection::lazy(url)?, prefix))
            }

            /// Connects to `url` (see [`connect`]) and builds a store with `prefix`.
            ///
            /// # Errors
            ///
            /// As [`connect`].
            pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self> {
                Ok(Self::new(connect(url).await?, prefix))
            }
        }
    )*};
}

url_constructors!(RedisDedupStore, RedisTokenStore, RedisSessionStore);

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

    /// A store over `conn` (a [`ConnectionManager`] or a [`RedisConnection`]) with every
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

// ---------------------------------------------------------------------------------------
// Tokens

/// Stores a token unless the stored one expires later; returns the token now stored.
static PUT_TOKEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local cur = redis.call('HMGET', KEYS[1], 'v', 'e')
          if cur[1] and cur[2] and tonumber(cur[2]) > tonumber(ARGV[2]) then return cur end
          redis.call('HSET', KEYS[1], 'v', ARGV[1], 'e', ARGV[2])
          return {ARGV[1], ARGV[2]}",
    )
});

/// Deletes the stored token only if its value is the failed one.
static INVALIDATE_TOKEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('HGET', KEYS[1], 'v') == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
          return 0",
    )
});

/// Deletes a key only if it still holds this value (a lease's fence).
static COMPARE_AND_DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
          return 0",
    )
});

/// Extends a key's expiry only if it still holds this value (a lease's fence).
static COMPARE_AND_PEXPIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
          return 0",
    )
});

/// Access tokens and the refresh lease in Redis, shared by every instance using the same
/// prefix.
///
/// A token is a hash (`v`, `e`) written by a Lua script that keeps the later expiry;
/// invalidation compares the value in the same script. The lease is `SET NX PX` of a random
/// 128-bit fence, renewed by a compare-and-pexpire script and released by a
/// compare-and-delete script, so a holder whose lease expired can neither extend nor release
/// its successor's.
#[derive(Clone, Debug)]
pub struct RedisTokenStore {
    keys: Keys,
}

impl RedisTokenStore {
    /// A store over `conn` (a [`ConnectionManager`] or a [`RedisConnection`]) with every
    /// key under `prefix`.
    pub fn new(conn: impl Into<RedisConnection>, prefix: impl Into<String>) -> Self {
        Self { keys: Keys { conn: conn.into(), prefix: prefix.into() } }
    }
}

fn parse_token(value: String, expires: &str) -> Result<CachedToken> {
    let expires_at_ms = expires
        .parse()
        .map_err(|e| StoreError::backend("redis", format!("stored token expiry {expires:?}: {e}")))?;
    Ok(CachedToken { value, expires_at_ms })
}

#[async_trait::async_trait]
impl TokenStore for RedisTokenStore {
    async fn get(&self, key: &str) -> Result<Option<CachedToken>> {
        let (value, expires): (Option<String>, Option<String>) = ::redis::cmd("HMGET")
            .arg(self.keys.key("token", key))
            .arg("v")
            .arg("e")
            .query_async(&mut self.keys.conn().await?)
            .await
            .map_err(redis_err)?;
        match (value, expires) {
            (Some(v), Some(e)) => parse_token(v, &e).map(Some),
            _ => Ok(None),
        }
    }

    async fn put(&self, key: &str, token: &CachedToken) -> Result<CachedToken> {
        let (value, expires): (String, String) = PUT_TOKEN
            .key(self.keys.key("token", key))
            .arg(&token.value)
            .arg(token.expires_at_ms)
            .invoke_async(&mut self.keys.conn().await?)
            .await
            .map_err(redis_err)?;
        parse_token(value, &expires)
    }

    async fn invalidate(&self, key: &str, failed: &str) -> Result<bool> {
        let n: i64 = INVALIDATE_TOKEN
            .key(self.keys.key("token", key))
            .arg(failed)
            .invoke_async(&mut self.keys.conn().await?)
            .await
            .map_err(redis_err)?;
        Ok(n == 1)
    }

    async fn try_lease(&self, key: &str, ttl: Duration) -> Result<Option<Lease>> {
        let fence = format!("{:032x}", rand::random::<u128>());
        let set: Option<String> = ::redis::cmd("SET")
            .arg(self.keys.key("lease", key))
            .arg(&fence)
            .arg("NX")
            .arg("PX")
            .arg(px(ttl))
            .query_async(&mut self.keys.conn().await?)
            .await
            .map_err(redis_err)?;
        Ok(set.map(|_| Lease { fence }))
    }

    async fn release_lease(&self, key: &str, lease: &Lease) -> Result<()> {
        COMPARE_AND_DELETE
            .key(self.keys.key("lease", key))
            .arg(&lease.fence)
            .invoke_async::<i64>(&mut self.keys.conn().await?)
            .await
            .map(drop)
            .map_err(redis_err)
    }

    async fn renew_lease(&self, key: &str, lease: &Lease, ttl: Duration) -> Result<bool> {
        let n: i64 = COMPARE_AND_PEXPIRE
            .key(self.keys.key("lease", key))
            .arg(&lease.fence)
            .arg(px(ttl))
            .invoke_async(&mut self.keys.conn().await?)
            .await
            .map_err(redis_err)?;
        Ok(n == 1)
    }
}

// ---------------------------------------------------------------------------------------
// Sessions

/// Writes a session if its version is still the expected one; `{1, new}` or `{0, found}`.
static SAVE_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
          if cur ~= tonumber(ARGV[2]) then return {0, cur} end
          redis.call('HSET', KEYS[1], 'v', tostring(cur + 1), 'd', ARGV[1])
          redis.call('PEXPIRE', KEYS[1], ARGV[3])
          return {1, cur + 1}",
    )
});

/// Sessions in Redis: a hash (`v` version, `d` JSON) per session, expiring by Redis TTL;
/// the version check and write are one Lua script.
#[derive(Clone, Debug)]
pub struct RedisSessionStore {
    keys: Keys,
}

impl RedisSessionStore {
    /// A store over `conn` (a [`ConnectionManager`] or a [`RedisConnection`]) with every
    /// key under `prefix`.
    pub fn new(conn: impl Into<RedisConnection>, prefix: impl Into<String>) -> Self {
        Self { keys: Keys { conn: conn.into(), prefix: prefix.into() } }
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisSessionStore {
    async fn load(&self, key: &str) -> Result<Option<Versioned>> {
        let (version, data): (Option<u64>, Option<String>) = ::redis::cmd("HMGET")
            .arg(self.keys.key("session", key))
            .arg("v")
            .arg("d")
            .query_async(&mut self.keys.conn().await?)
            .await
            .map_err(redis_err)?;
        match (version, data) {
            (Some(version), Some(json)) => {
                Ok(Some(Versioned { value: serde_json::from_str(&json)?, version }))
            }
            _ => Ok(None),
        }
    }

    async fn save(&self, key: &str, value: &serde_json::Value, expected: u64, ttl: Duration) -> Result<u64> {
        let (ok, version): (i64, u64) = SAVE_SESSION
            .key(self.keys.key("session", key))
            .arg(serde_json::to_string(value)?)
            .arg(expected)
            .arg(px(ttl))
            .invoke_async(&mut self.keys.conn().await?)
            .await
            .map_err(redis_err)?;
        if ok == 1 {
            Ok(version)
        } else {
            Err(StoreError::Conflict { key: key.to_owned(), expected, found: version })
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.keys.conn().await?.del::<_, ()>(self.keys.key("session", key)).await.map_err(redis_err)
    }
}
