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
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use ::redis::aio::ConnectionManager;
use ::redis::aio::ConnectionManagerConfig;

use self::link::{Address, Timeouts};
use crate::{Result, StoreError};

mod command;
mod dedup;
mod link;
mod session;
mod token;

pub use dedup::RedisDedupStore;
pub use session::RedisSessionStore;
pub use token::RedisTokenStore;

fn redis_err(e: ::redis::RedisError) -> StoreError {
    StoreError::backend("redis", e)
}

fn px(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn default_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Timeouts::DEFAULT.connection)
        .set_response_timeout(Timeouts::DEFAULT.response)
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

/// What a Redis says of itself (`INFO server` and `INFO memory`) that matters to the stores
/// here: read by [`server_info`], for checks such as `wemp doctor`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerInfo {
    /// `redis_version` (Valkey reports the Redis version it is compatible with).
    pub version: String,
    /// `maxmemory` in bytes; 0: no limit.
    pub maxmemory: u64,
    /// `maxmemory_policy`, e.g. `noeviction`, `allkeys-lru`.
    pub maxmemory_policy: String,
}

impl ServerInfo {
    /// Whether [`RedisDedupStore`]'s claims will run the Lua script: Redis before 7.0
    /// refuses `SET` with both `NX` and `GET` (the store finds out by itself on its first
    /// claim; this says so beforehand).
    pub fn claims_by_script(&self) -> bool {
        self.version
            .split('.')
            .next()
            .and_then(|major| major.parse::<u32>().ok())
            .is_some_and(|major| major < 7)
    }

    /// Whether Redis evicts keys once full: a limit is set and the policy is not
    /// `noeviction`. Every key the stores write has a TTL, so the `volatile-*` policies
    /// evict them too: an evicted dedup claim or reply lets a retry run the handler again.
    pub fn evicts(&self) -> bool {
        self.maxmemory > 0 && self.maxmemory_policy != "noeviction"
    }

    /// Reads the fields from the text of `INFO` sections.
    fn parse(info: &str) -> Option<Self> {
        let field = |name: &str| {
            info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')).map(|v| v.trim().to_owned())
        };
        Some(Self {
            version: field("redis_version")?,
            maxmemory: field("maxmemory")?.parse().ok()?,
            maxmemory_policy: field("maxmemory_policy")?,
        })
    }
}

/// What Redis says of itself over `conn` (two `INFO` calls, which managed Redis services
/// allow where they refuse `CONFIG`).
///
/// # Errors
///
/// [`StoreError::Backend`] if Redis does not answer, refuses `INFO`, or leaves a field out.
pub async fn server_info(conn: &mut ConnectionManager) -> Result<ServerInfo> {
    let mut info = String::new();
    for section in ["server", "memory"] {
        let text: String = ::redis::cmd("INFO").arg(section).query_async(conn).await.map_err(redis_err)?;
        info.push_str(&text);
    }
    ServerInfo::parse(&info).ok_or_else(|| {
        StoreError::backend("redis", "INFO left out redis_version, maxmemory or maxmemory_policy")
    })
}

#[cfg(test)]
mod tests {
    use super::ServerInfo;

    #[test]
    fn server_info_reads_the_version_and_the_eviction_policy() {
        let info = "# Server\r\nredis_version:6.2.14\r\nredis_mode:standalone\r\n# Memory\r\nused_memory:1\r\n\
                    maxmemory:104857600\r\nmaxmemory_human:100.00M\r\nmaxmemory_policy:volatile-lru\r\n";
        let facts = ServerInfo::parse(info).unwrap();
        assert_eq!(facts.version, "6.2.14");
        assert_eq!(facts.maxmemory, 104_857_600);
        assert_eq!(facts.maxmemory_policy, "volatile-lru");
        assert!(facts.claims_by_script());
        assert!(facts.evicts(), "volatile-lru evicts keys with a TTL, which every dedup key has");

        let info = "redis_version:7.0.15\nmaxmemory:0\nmaxmemory_policy:noeviction\n";
        let facts = ServerInfo::parse(info).unwrap();
        assert!(!facts.claims_by_script() && !facts.evicts());
        let limited = ServerInfo { maxmemory: 1 << 30, ..facts.clone() };
        assert!(!limited.evicts(), "noeviction refuses writes instead");
        let unlimited = ServerInfo { maxmemory_policy: "allkeys-lru".into(), ..facts };
        assert!(!unlimited.evicts(), "no limit, nothing to evict for");

        assert_eq!(ServerInfo::parse("redis_version:7.2.4\nmaxmemory:0\n"), None);
    }
}

/// A Redis connection, made now or on first use.
///
/// [`RedisConnection::lazy`] only checks the URL: the first call that needs Redis connects
/// (concurrent callers wait for that one attempt). While Redis cannot be reached, calls fail
/// at once with [`StoreError::Backend`] and a new attempt is made at most once per
/// [`retry_interval`](Self::retry_interval) (1 s unless set), so an outage costs failed
/// calls, not stalled ones. Once connected, the [`ConnectionManager`] reconnects by itself.
/// Cheap to clone; clones share the connection.
///
/// A connection made from a URL with the default settings ([`RedisConnection::lazy`],
/// [`RedisConnection::connect`], and the stores' `lazy` and `connect`) also knows Redis's
/// address: a [`RedisDedupStore`]'s writer task then opens a connection of its own with it
/// (TCP or a Unix socket; TLS goes over the shared one), with the same timeouts. One made
/// from a [`ConnectionManager`] or with settings of your own ([`RedisConnection::lazy_with`])
/// is the only connection its stores use.
#[derive(Clone)]
pub struct RedisConnection {
    inner: Arc<Lazy>,
}

struct Lazy {
    ready: OnceLock<ConnectionManager>,
    pending: Option<Pending>,
    /// Where Redis is, for a connection of a dedup writer's own; `None` when the settings
    /// are the caller's.
    address: Option<Address>,
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
        Self::from_url(url, default_config(), Some(Timeouts::DEFAULT))
    }

    /// A connection to `url`, made now, with the timeouts of [`connect`] (and, unlike
    /// [`connect`]'s bare [`ConnectionManager`], Redis's address for a dedup writer's own
    /// connection).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if the URL is invalid or Redis does not answer now.
    pub async fn connect(url: &str) -> Result<Self> {
        let conn = Self::lazy(url)?;
        conn.get().await?;
        Ok(conn)
    }

    /// A connection to `url` made on first use, with connection-manager settings of your
    /// own.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if the URL is invalid.
    pub fn lazy_with(url: &str, config: ConnectionManagerConfig) -> Result<Self> {
        Self::from_url(url, config, None)
    }

    /// A connection to `url` made on first use with `config`; with `own`, a dedup writer may
    /// open a connection of its own with those timeouts.
    fn from_url(url: &str, config: ConnectionManagerConfig, own: Option<Timeouts>) -> Result<Self> {
        let client = ::redis::Client::open(url).map_err(redis_err)?;
        let address = own.and_then(|timeouts| Address::of(client.get_connection_info(), timeouts));
        let pending = Pending {
            client,
            config,
            retry: Duration::from_secs(1),
            last_failure: tokio::sync::Mutex::new(None),
        };
        Ok(Self { inner: Arc::new(Lazy { ready: OnceLock::new(), pending: Some(pending), address }) })
    }

    /// Sets how long connecting may take and how long a call waits for Redis's answer (1 s
    /// each unless set), for the shared connection and a dedup writer's own. Only before the
    /// connection is shared and made (on a fresh [`RedisConnection::lazy`]).
    #[must_use]
    pub fn timeouts(mut self, connection: Duration, response: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner)
            && let Some(p) = inner.pending.as_mut()
        {
            p.config = p.config.clone().set_connection_timeout(connection).set_response_timeout(response);
            if let Some(address) = inner.address.as_mut() {
                address.timeouts = Timeouts { connection, response };
            }
        }
        self
    }

    /// Redis's address, when a dedup writer may open a connection of its own.
    fn address(&self) -> Option<&Address> {
        self.inner.address.as_ref()
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
        Self { inner: Arc::new(Lazy { ready, pending: None, address: None }) }
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

/// A Redis key, `<prefix><kind>:<key>`, written straight into the command's buffer as one
/// argument (no `String` made for it on the way).
#[derive(Clone, Copy)]
struct Key<'a> {
    prefix: &'a str,
    kind: &'a str,
    key: &'a str,
}

impl Key<'_> {
    /// Its length in bytes.
    fn len(&self) -> usize {
        self.prefix.len() + self.kind.len() + 1 + self.key.len()
    }

    /// Its bytes, in the pieces it is made of.
    fn parts(&self) -> [&[u8]; 4] {
        [self.prefix.as_bytes(), self.kind.as_bytes(), b":", self.key.as_bytes()]
    }

    /// Appends its bytes to `out`.
    fn write_to(&self, out: &mut Vec<u8>) {
        for part in self.parts() {
            out.extend_from_slice(part);
        }
    }
}

impl ::redis::ToRedisArgs for Key<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + ::redis::RedisWrite,
    {
        write_arg(out, &self.parts());
    }
}

/// Writes `parts`, one after the other, as a single argument of `out`.
fn write_arg<W: ?Sized + ::redis::RedisWrite>(out: &mut W, parts: &[&[u8]]) {
    use std::io::Write as _;
    let mut arg = out.writer_for_next_arg();
    for part in parts {
        // The writers of the redis crate append to a `Vec`, which cannot fail.
        let _ = arg.write_all(part);
    }
}

impl Keys {
    fn key<'a>(&'a self, kind: &'a str, key: &'a str) -> Key<'a> {
        Key { prefix: &self.prefix, kind, key }
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

            /// Connects to `url` (see [`RedisConnection::connect`]) and builds a store with
            /// `prefix`.
            ///
            /// # Errors
            ///
            /// As [`connect`].
            pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self> {
                Ok(Self::new(RedisConnection::connect(url).await?, prefix))
            }
        }
    )*};
}

url_constructors!(RedisDedupStore, RedisTokenStore, RedisSessionStore);
