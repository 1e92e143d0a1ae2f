//! PostgreSQL backends: the message log and sessions shared by several instances.
//!
//! Everything lives in one schema of your choosing (`wemp` by default), created on connect
//! together with its tables; migrations are recorded in `<schema>.schema_migrations` and run
//! under an advisory lock, so instances starting together migrate once. Different schemas
//! never see each other's rows, which is how tests run in parallel on one database.
//!
//! The connection is plain TCP (no TLS), as on a private network or a local socket; a lost
//! connection is re-established on the next call.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::{Client, Config, NoTls};

use crate::{Result, StoreError};

mod log;
mod session;

pub use log::PostgresMessageLog;
pub use session::PostgresSessionStore;

fn pg_err(e: tokio_postgres::Error) -> StoreError {
    StoreError::backend("postgres", e)
}

/// Schema migrations, applied in order; `{s}` stands for the quoted schema name.
const MIGRATIONS: &[&str] = &[
    // 1: message log and sessions.
    "CREATE TABLE {s}.message_log (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        received_at_ms BIGINT NOT NULL,
        appid TEXT NOT NULL,
        openid TEXT NOT NULL,
        msg_id BIGINT,
        dedup_key TEXT NOT NULL,
        msg_type TEXT NOT NULL,
        event TEXT,
        mode TEXT NOT NULL,
        dedup TEXT NOT NULL,
        summary TEXT NOT NULL,
        raw_xml TEXT NOT NULL,
        reply_xml TEXT,
        outcome TEXT NOT NULL,
        latency_ms BIGINT NOT NULL,
        error TEXT
    );
    CREATE INDEX ON {s}.message_log (appid, id);
    CREATE INDEX ON {s}.message_log (appid, openid, id);
    CREATE INDEX ON {s}.message_log (received_at_ms);
    CREATE TABLE {s}.sessions (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        version BIGINT NOT NULL,
        expires_at_ms BIGINT NOT NULL
    );
    CREATE INDEX ON {s}.sessions (expires_at_ms);",
    // 2: the typed record. `mode`, `dedup` and `outcome` hold the enums' names; `detail` the
    // JSON of what has no column of its own (see `Detail`). Rows written before have none.
    "ALTER TABLE {s}.message_log ADD COLUMN detail TEXT;",
];

/// A connection to PostgreSQL with wemp's tables in one schema.
///
/// Cheap to clone; clones share the connection, which pipelines concurrent calls.
/// [`PostgresMessageLog`] and [`PostgresSessionStore`] are views of it.
#[derive(Clone)]
pub struct PostgresDatabase {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    schema: String,
    /// How long a session call waits for PostgreSQL.
    call_timeout: Duration,
    client: tokio::sync::Mutex<Arc<Client>>,
    /// The connection appends go through, opened on the first one: each append is a
    /// transaction of its own, which the shared connection cannot hold.
    appender: tokio::sync::Mutex<Option<Client>>,
}

impl std::fmt::Debug for PostgresDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresDatabase").field("schema", &self.inner.schema).finish_non_exhaustive()
    }
}

/// Schema used by [`PostgresDatabase::connect`] callers that have no preference.
pub const DEFAULT_SCHEMA: &str = "wemp";

fn valid_schema(schema: &str) -> bool {
    let mut chars = schema.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= 63
        && !schema.starts_with("pg_")
}

impl PostgresDatabase {
    /// Connects to `url` (`postgres://user@host:port/db`), creates `schema` if needed and
    /// runs pending migrations in it. A connect timeout of 5 s applies unless the URL sets
    /// one.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if the URL or schema name is invalid (a schema is
    /// `[a-z_][a-z0-9_]*`, at most 63 bytes, not `pg_…`), PostgreSQL cannot be reached, or
    /// the schema was written by a newer wemp.
    pub async fn connect(url: &str, schema: &str) -> Result<Self> {
        let config = connect_config(url, schema)?;
        let mut client = open(&config).await?;
        migrate(&mut client, schema).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                schema: schema.to_owned(),
                call_timeout: Self::DEFAULT_CALL_TIMEOUT,
                client: tokio::sync::Mutex::new(Arc::new(client)),
                appender: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// How long a session call waits for an answer unless set with
    /// [`call_timeout`](Self::call_timeout).
    pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

    /// Sets how long a session call ([`PostgresSessionStore`]) waits for PostgreSQL before
    /// it fails with [`StoreError::Backend`]: a server that accepts a connection and then
    /// never answers (a lock held elsewhere, a network that drops packets) must not hold
    /// a handler forever. Only before the database is shared (on a fresh `connect`). The
    /// message log is bounded by its [`crate::LogWriter`]'s write timeout instead.
    #[must_use]
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.call_timeout = timeout;
        }
        self
    }

    /// `call`, failing if PostgreSQL does not answer within the call timeout.
    async fn bounded<T>(&self, what: &str, call: impl Future<Output = Result<T>>) -> Result<T> {
        let limit = self.inner.call_timeout;
        tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
            Err(StoreError::backend("postgres", format!("{what}: no answer within {} ms", limit.as_millis())))
        })
    }

    /// The schema holding the tables.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// The message log in this schema.
    pub fn message_log(&self) -> PostgresMessageLog {
        PostgresMessageLog { db: self.clone() }
    }

    /// The sessions in this schema.
    pub fn session_store(&self) -> PostgresSessionStore {
        PostgresSessionStore { db: self.clone() }
    }

    /// Drops the schema and everything in it (for tests and uninstalling).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if PostgreSQL fails.
    pub async fn drop_schema(&self) -> Result<()> {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.inner.schema);
        self.client().await?.batch_execute(&sql).await.map_err(pg_err)
    }

    fn table(&self, name: &str) -> String {
        format!("\"{}\".{name}", self.inner.schema)
    }

    async fn client(&self) -> Result<Arc<Client>> {
        let mut client = self.inner.client.lock().await;
        if client.is_closed() {
            tracing::info!(schema = %self.inner.schema, "reconnecting to postgres");
            *client = Arc::new(open(&self.inner.config).await?);
        }
        Ok(Arc::clone(&client))
    }
}

pub use crate::SchemaState;

/// Connects to `url` and reports the state of `schema` without creating or migrating
/// anything (only reads the catalog and `schema_migrations`), for diagnostics that must not
/// write. A connect timeout of 5 s applies unless the URL sets one.
///
/// # Errors
///
/// [`StoreError::Backend`] if the URL or schema name is invalid or PostgreSQL cannot be
/// reached or read.
pub async fn probe(url: &str, schema: &str) -> Result<SchemaState> {
    let client = open(&connect_config(url, schema)?).await?;
    let table = client
        .query_one("SELECT to_regclass($1)::text", &[&format!("\"{schema}\".schema_migrations")])
        .await
        .map_err(pg_err)?;
    if table.get::<_, Option<String>>(0).is_none() {
        return Ok(SchemaState::Missing);
    }
    let row = client
        .query_one(&format!("SELECT COALESCE(MAX(version), 0) FROM \"{schema}\".schema_migrations"), &[])
        .await
        .map_err(pg_err)?;
    let version = usize::try_from(row.get::<_, i32>(0)).unwrap_or(0);
    Ok(if version > MIGRATIONS.len() { SchemaState::Newer(version) } else { SchemaState::Version(version) })
}

/// The connection settings of `url` for `schema`: the schema name checked, and a connect
/// timeout of 5 s unless the URL sets one.
fn connect_config(url: &str, schema: &str) -> Result<Config> {
    if !valid_schema(schema) {
        return Err(StoreError::backend("postgres", format!("invalid schema name {schema:?}")));
    }
    let mut config: Config = url.parse().map_err(pg_err)?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    Ok(config)
}

async fn open(config: &Config) -> Result<Client> {
    let (client, connection) = config.connect(NoTls).await.map_err(pg_err)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "postgres connection closed");
        }
    });
    Ok(client)
}

async fn migrate(client: &mut Client, schema: &str) -> Result<()> {
    let s = format!("\"{schema}\"");
    let tx = client.transaction().await.map_err(pg_err)?;
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&format!("wemp-migrate:{schema}")])
        .await
        .map_err(pg_err)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
         CREATE TABLE IF NOT EXISTS {s}.schema_migrations (
             version INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(pg_err)?;
    let row = tx
        .query_one(&format!("SELECT COALESCE(MAX(version), 0) FROM {s}.schema_migrations"), &[])
        .await
        .map_err(pg_err)?;
    let current = usize::try_from(row.get::<_, i32>(0)).unwrap_or(0);
    if current > MIGRATIONS.len() {
        return Err(StoreError::backend(
            "postgres",
            format!("schema {schema} is at version {current}, newer than this wemp ({})", MIGRATIONS.len()),
        ));
    }
    for (i, script) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.batch_execute(&script.replace("{s}", &s)).await.map_err(pg_err)?;
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.execute(&format!("INSERT INTO {s}.schema_migrations (version) VALUES ($1)"), &[&version])
            .await
            .map_err(pg_err)?;
        tracing::debug!(schema, version, "postgres schema migrated");
    }
    tx.commit().await.map_err(pg_err)
}
