//! Opening the stores a configuration names: the message log (SQLite or PostgreSQL) and
//! the dedup store (Redis with an in-memory fallback). Shared by `serve`, `log` and
//! `doctor`, so all three read the same `--data-dir` / `--database` / `--redis`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wemp_store::memory::MemoryDedupStore;
use wemp_store::{DedupStore, FallbackDedupStore, MessageLog, StoreError};

use crate::config::StorageConfig;

/// The PostgreSQL schema used unless the URL carries `schema=NAME`.
pub const DEFAULT_SCHEMA: &str = "wemp";

/// The key prefix of everything wemp keeps in Redis: keys are `wemp:<kind>:<key>`, with
/// `kind` one of `dedup`, `token`, `lease` (see `wemp_store::redis`).
pub const REDIS_PREFIX: &str = "wemp:";

/// Where the message log lives.
#[derive(Clone, PartialEq, Eq)]
pub enum LogLocation {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database: the connection URL (without `schema=`) and the schema.
    Postgres {
        /// The connection URL, as tokio-postgres reads it.
        url: String,
        /// The schema holding wemp's tables.
        schema: String,
    },
}

impl fmt::Debug for LogLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl LogLocation {
    /// Reads `storage.database` (default `sqlite://DATA_DIR/wemp.db`). A PostgreSQL URL may
    /// carry `schema=NAME` among its query parameters (default [`DEFAULT_SCHEMA`]).
    pub fn of(storage: &StorageConfig) -> Self {
        let url = storage.database_url();
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            return Self::Sqlite(PathBuf::from(path));
        }
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b.to_owned(), q.to_owned()),
            None => (url.clone(), String::new()),
        };
        let mut schema = DEFAULT_SCHEMA.to_owned();
        let kept: Vec<&str> = query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .filter(|kv| match kv.strip_prefix("schema=") {
                Some(s) => {
                    schema = s.to_owned();
                    false
                }
                None => true,
            })
            .collect();
        let url = if kept.is_empty() { base } else { format!("{base}?{}", kept.join("&")) };
        Self::Postgres { url, schema }
    }

    /// A description without the password: `sqlite ./wemp-data/wemp.db`,
    /// `postgres postgres://user@host/db (schema wemp)`.
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite {}", path.display()),
            Self::Postgres { url, schema } => format!("postgres {} (schema {schema})", redact_url(url)),
        }
    }

    /// Opens the log, creating the SQLite file (and its directory) or the PostgreSQL schema
    /// and running migrations.
    ///
    /// # Errors
    /// The directory cannot be created, or the database cannot be opened or migrated.
    pub async fn open(&self) -> Result<Arc<dyn MessageLog>, StoreError> {
        match self {
            Self::Sqlite(path) => {
                let db = open_sqlite(path).await?;
                Ok(Arc::new(db.message_log()))
            }
            Self::Postgres { url, schema } => {
                let db = wemp_store::postgres::PostgresDatabase::connect(url, schema).await?;
                Ok(Arc::new(db.message_log()))
            }
        }
    }

    /// Opens the log only if it exists already (an SQLite file that is there; PostgreSQL
    /// always), for readers that must not create one.
    ///
    /// # Errors
    /// As [`LogLocation::open`]; `Ok(None)` when the SQLite file does not exist.
    pub async fn open_existing(&self) -> Result<Option<Arc<dyn MessageLog>>, StoreError> {
        if let Self::Sqlite(path) = self
            && !path.exists()
        {
            return Ok(None);
        }
        self.open().await.map(Some)
    }

    /// The SQLite file, if the log is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Self::Sqlite(p) => Some(p),
            Self::Postgres { .. } => None,
        }
    }
}

/// `url` with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            let masked = if userinfo.contains(':') { format!("{user}:***") } else { user.to_owned() };
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// A connection to the configured Redis, made now when Redis answers; otherwise a lazy one
/// that connects on first use (so `serve` starts during an outage: dedup falls back to
/// memory until Redis is back, with a warning).
///
/// # Errors
/// The URL is invalid.
pub async fn redis_connection(url: &str) -> Result<wemp_store::redis::RedisConnection, StoreError> {
    match wemp_store::redis::RedisConnection::connect(url).await {
        Ok(conn) => Ok(conn),
        Err(e) => {
            tracing::warn!(
                redis = %redact_url(url),
                error = %e,
                "Redis does not answer: starting anyway; dedup uses memory until it does"
            );
            wemp_store::redis::RedisConnection::lazy(url)
        }
    }
}

/// The dedup store of `storage`: Redis (shared by every instance) wrapped in a fallback to
/// memory when Redis stops answering, or `None` for the server's in-memory default.
///
/// # Errors
/// The Redis URL is invalid.
pub async fn dedup_store(storage: &StorageConfig) -> Result<Option<Arc<dyn DedupStore>>, StoreError> {
    let Some(url) = &storage.redis else { return Ok(None) };
    let conn = redis_connection(url).await?;
    let redis = wemp_store::redis::RedisDedupStore::new(conn, REDIS_PREFIX);
    Ok(Some(Arc::new(FallbackDedupStore::new(redis, MemoryDedupStore::default()))))
}

/// The token store for API clients: Redis when configured (so several instances share one
/// access_token), else `None`: the accounts' clients keep theirs in memory (`stable_token`
/// gives every process the same one) and the third-party platform's go beside its state
/// (`serve::component`).
///
/// # Errors
/// The Redis URL is invalid.
pub async fn token_store(
    storage: &StorageConfig,
) -> Result<Option<Arc<dyn wemp_store::TokenStore>>, StoreError> {
    let Some(url) = &storage.redis else { return Ok(None) };
    let conn = redis_connection(url).await?;
    Ok(Some(Arc::new(wemp_store::redis::RedisTokenStore::new(conn, REDIS_PREFIX))))
}

/// Opens (creating it and its directory) the SQLite database at `path`.
async fn open_sqlite(path: &Path) -> Result<wemp_store::sqlite::SqliteDatabase, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::backend("sqlite", format!("cannot create {}: {e}", dir.display())))?;
    }
    wemp_store::sqlite::SqliteDatabase::open(path).await
}

/// Where a third-party platform's state (verify ticket, authorizers) lives: Redis when
/// configured (shared by every instance), else the database of the message log (SQLite by
/// default, or PostgreSQL), so it survives restarts.
///
/// # Errors
/// The store cannot be opened.
pub async fn state_store(storage: &StorageConfig) -> Result<Arc<dyn wemp_store::SessionStore>, StoreError> {
    if let Some(url) = &storage.redis {
        let conn = redis_connection(url).await?;
        return Ok(Arc::new(wemp_store::redis::RedisSessionStore::new(conn, REDIS_PREFIX)));
    }
    match LogLocation::of(storage) {
        LogLocation::Sqlite(path) => {
            let db = open_sqlite(&path).await?;
            Ok(Arc::new(db.session_store()))
        }
        LogLocation::Postgres { url, schema } => {
            let db = wemp_store::postgres::PostgresDatabase::connect(&url, &schema).await?;
            Ok(Arc::new(db.session_store()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn redis_keys_carry_the_prefix_once() {
        // The store adds the kind itself: `wemp:dedup:<key>`, not `wemp:dedup:dedup:<key>`.
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        if let Err(e) = wemp_store::redis::connect(&url).await {
            eprintln!("skipped: no Redis at {url}: {e}");
            return;
        }
        let storage = StorageConfig { redis: Some(url.clone()), ..StorageConfig::default() };
        let dedup = dedup_store(&storage).await.unwrap().unwrap();
        let key = format!("first-hour-test:{}", rand::random::<u64>());
        let ttl = std::time::Duration::from_secs(30);
        assert_eq!(dedup.claim(&key, ttl).await.unwrap(), wemp_store::Claim::New);
        dedup.complete(&key, "the reply", ttl).await.unwrap();
        // Written behind: stored once flushed.
        dedup.flush().await.unwrap();
        // Read back through the documented layout `wemp:<kind>:<key>`.
        let conn = wemp_store::redis::connect(&url).await.unwrap();
        let plain = wemp_store::redis::RedisDedupStore::new(conn, "wemp:");
        assert_eq!(plain.claim(&key, ttl).await.unwrap(), wemp_store::Claim::Done("the reply".into()));
    }

    #[tokio::test]
    async fn the_state_store_lives_in_the_sqlite_database_and_survives_a_reopen() {
        let dir = std::env::temp_dir().join(format!("wemp-state-{}", rand::random::<u64>()));
        let storage = StorageConfig { data_dir: dir.join("data"), ..StorageConfig::default() };
        let ttl = std::time::Duration::from_secs(3600);
        let store = state_store(&storage).await.unwrap();
        let v = store.save("component:k", &serde_json::json!({"ticket": 1}), 0, ttl).await.unwrap();
        drop(store);
        let again = state_store(&storage).await.unwrap();
        let got = again.load("component:k").await.unwrap().unwrap();
        assert_eq!((got.value, got.version), (serde_json::json!({"ticket": 1}), v));
        assert!(dir.join("data/wemp.db").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn locations() {
        let mut s = StorageConfig { data_dir: PathBuf::from("/d"), ..StorageConfig::default() };
        assert_eq!(LogLocation::of(&s), LogLocation::Sqlite(PathBuf::from("/d/wemp.db")));
        s.database = Some("sqlite:rel/x.db".into());
        assert_eq!(LogLocation::of(&s), LogLocation::Sqlite(PathBuf::from("rel/x.db")));
        s.database = Some("postgres://u:pw@h:5432/db?schema=t1&sslmode=disable".into());
        let loc = LogLocation::of(&s);
        assert_eq!(
            loc,
            LogLocation::Postgres {
                url: "postgres://u:pw@h:5432/db?sslmode=disable".into(),
                schema: "t1".into()
            }
        );
        assert_eq!(loc.describe(), "postgres postgres://u:***@h:5432/db?sslmode=disable (schema t1)");
        assert!(!format!("{loc:?}").contains("pw"));
        s.database = Some("postgres://h/db".into());
        assert_eq!(
            LogLocation::of(&s),
            LogLocation::Postgres { url: "postgres://h/db".into(), schema: DEFAULT_SCHEMA.into() }
        );
        assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact_url("redis://:secret@h:1/0"), "redis://:***@h:1/0");
    }
}
