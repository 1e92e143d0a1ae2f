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

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls};

use crate::log::{DeliveryRecord, LogQuery, MessageLog};
use crate::session::{SessionStore, Versioned};
use crate::{Result, StoreError, now_ms, ttl_ms};

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

/// The parts of a [`DeliveryRecord`] kept as JSON in the `detail` column.
#[derive(serde::Serialize, serde::Deserialize)]
struct Detail {
    outcome: crate::log::RecordOutcome,
    #[serde(default)]
    rejection: Option<crate::log::RejectionRecord>,
    #[serde(default)]
    status: u16,
    #[serde(default)]
    latency_us: u64,
    #[serde(default)]
    handler: Option<String>,
    #[serde(default)]
    peer: Option<std::net::SocketAddr>,
    #[serde(default)]
    query: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    attempts: u32,
}

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

/// The message log in PostgreSQL, one row per delivery, with an `appid` column.
#[derive(Clone, Debug)]
pub struct PostgresMessageLog {
    db: PostgresDatabase,
}

impl PostgresMessageLog {
    /// Connects and migrates (see [`PostgresDatabase::connect`]).
    ///
    /// # Errors
    ///
    /// As [`PostgresDatabase::connect`].
    pub async fn connect(url: &str, schema: &str) -> Result<Self> {
        Ok(PostgresDatabase::connect(url, schema).await?.message_log())
    }

    /// The database this log lives in.
    pub fn database(&self) -> &PostgresDatabase {
        &self.db
    }

    /// Deletes entries received before `received_at_ms`; returns how many.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if PostgreSQL fails.
    pub async fn delete_before(&self, received_at_ms: i64) -> Result<u64> {
        let sql = format!("DELETE FROM {} WHERE received_at_ms < $1", self.db.table("message_log"));
        self.db.client().await?.execute(&sql, &[&received_at_ms]).await.map_err(pg_err)
    }
}

const LOG_COLUMNS: &str = "received_at_ms, appid, openid, msg_id, dedup_key, msg_type, event, mode, dedup, \
                           summary, raw_xml, reply_xml, outcome, latency_ms, error, detail";

#[async_trait::async_trait]
impl MessageLog for PostgresMessageLog {
    async fn append(&self, entries: &[DeliveryRecord]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        // One statement per batch: the arrays are unnested in order, so ids follow it.
        let sql = format!(
            "INSERT INTO {} ({LOG_COLUMNS})
             SELECT {LOG_COLUMNS} FROM UNNEST(
                 $1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[], $7::TEXT[],
                 $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::TEXT[], $12::TEXT[], $13::TEXT[], $14::BIGINT[],
                 $15::TEXT[], $16::TEXT[]
             ) WITH ORDINALITY AS t ({LOG_COLUMNS}, n)
             ORDER BY n",
            self.db.table("message_log")
        );
        let col = |f: fn(&DeliveryRecord) -> Option<&str>| {
            entries.iter().map(|e| f(e).unwrap_or_default()).collect::<Vec<_>>()
        };
        let opt = |f: fn(&DeliveryRecord) -> Option<&str>| entries.iter().map(f).collect::<Vec<_>>();
        let received: Vec<i64> = entries.iter().map(|e| e.received_at_ms).collect();
        // MsgId is a u64; stored as the i64 with the same bits.
        let msg_id: Vec<Option<i64>> = entries.iter().map(|e| e.msg_id.map(|m| m as i64)).collect();
        let latency: Vec<i64> =
            entries.iter().map(|e| i64::try_from(e.latency_ms()).unwrap_or(i64::MAX)).collect();
        let (appid, openid, dedup_key, msg_type) = (
            col(|e| e.appid.as_deref()),
            col(|e| e.openid.as_deref()),
            col(|e| e.dedup_key.as_deref()),
            col(|e| e.msg_type.as_deref()),
        );
        let (summary, raw_xml) = (col(|e| e.summary.as_deref()), col(|e| e.raw_xml.as_deref()));
        let mode: Vec<&str> = entries.iter().map(|e| e.mode.map_or("", wemp_proto::Mode::as_str)).collect();
        let dedup: Vec<&str> =
            entries.iter().map(|e| e.dedup.map_or("", crate::log::DedupOutcome::as_str)).collect();
        let outcome: Vec<&str> = entries.iter().map(|e| e.outcome.label()).collect();
        let detail = entries
            .iter()
            .map(|e| {
                serde_json::to_string(&Detail {
                    outcome: e.outcome.clone(),
                    rejection: e.rejection.clone(),
                    status: e.status,
                    latency_us: u64::try_from(e.latency.as_micros()).unwrap_or(u64::MAX),
                    handler: e.handler.as_deref().map(str::to_owned),
                    peer: e.peer,
                    query: e.query.clone(),
                    headers: e.headers.clone(),
                    attempts: e.attempts,
                })
                .map_err(|e| StoreError::backend("postgres", e))
            })
            .collect::<Result<Vec<String>>>()?;
        let (event, reply_xml, error) =
            (opt(|e| e.event.as_deref()), opt(|e| e.reply_xml.as_deref()), opt(|e| e.error.as_deref()));
        let params: [&(dyn ToSql + Sync); 16] = [
            &received, &appid, &openid, &msg_id, &dedup_key, &msg_type, &event, &mode, &dedup, &summary,
            &raw_xml, &reply_xml, &outcome, &latency, &error, &detail,
        ];
        // Appends are serialized across instances (the lock conflicts with itself and with
        // any other insert) and commit in id order: otherwise an append that took its ids
        // after another instance's could commit first, and a reader following the log with
        // `after_id` would move past the earlier ids before they became visible, never to
        // see those entries. Readers are not blocked.
        let lock = format!("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE", self.db.table("message_log"));
        let mut appender = self.db.inner.appender.lock().await;
        if appender.as_ref().is_none_or(Client::is_closed) {
            *appender = Some(open(&self.db.inner.config).await?);
        }
        let Some(client) = appender.as_mut() else { unreachable!("opened above") };
        let tx = client.transaction().await.map_err(pg_err)?;
        tx.batch_execute(&lock).await.map_err(pg_err)?;
        tx.execute(&sql, &params).await.map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)
    }

    async fn query(&self, query: &LogQuery) -> Result<Vec<(i64, DeliveryRecord)>> {
        let mut sql = format!("SELECT id, {LOG_COLUMNS} FROM {} WHERE TRUE", self.db.table("message_log"));
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let mut filter = |sql: &mut String, column: &str, op: &str, v: Box<dyn ToSql + Sync + Send>| {
            args.push(v);
            sql.push_str(&format!(" AND {column} {op} ${}", args.len()));
        };
        if let Some(a) = &query.appid {
            filter(&mut sql, "appid", "=", Box::new(a.clone()));
        }
        if let Some(o) = &query.openid {
            filter(&mut sql, "openid", "=", Box::new(o.clone()));
        }
        if let Some(t) = &query.msg_type {
            filter(&mut sql, "msg_type", "=", Box::new(t.clone()));
        }
        if let Some(s) = query.since_ms {
            filter(&mut sql, "received_at_ms", ">=", Box::new(s));
        }
        if let Some(a) = query.after_id {
            filter(&mut sql, "id", ">", Box::new(a));
        }
        sql.push_str(" ORDER BY id");
        if let Some(l) = query.limit {
            sql.push_str(&format!(" LIMIT {}", i64::try_from(l).unwrap_or(i64::MAX)));
        }
        let refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| &**a as &(dyn ToSql + Sync)).collect();
        let rows = self.db.client().await?.query(&sql, &refs).await.map_err(pg_err)?;
        rows.iter().map(|r| Ok((r.try_get::<_, i64>(0).map_err(pg_err)?, row(r)?))).collect()
    }
}

/// A row of `message_log` (columns as [`LOG_COLUMNS`], after the id).
fn row(r: &tokio_postgres::Row) -> Result<DeliveryRecord> {
    let some = |s: String| (!s.is_empty()).then_some(s);
    let text = |i: usize| r.try_get::<_, String>(i).map_err(pg_err);
    let mut e = DeliveryRecord::new(0, r.try_get(1).map_err(pg_err)?);
    e.appid = some(text(2)?);
    e.openid = some(text(3)?);
    e.msg_id = r.try_get::<_, Option<i64>>(4).map_err(pg_err)?.map(|m| m as u64);
    e.dedup_key = some(text(5)?);
    e.msg_type = some(text(6)?);
    e.event = r.try_get(7).map_err(pg_err)?;
    e.mode = serde_json::from_value(serde_json::Value::String(text(8)?)).ok();
    e.dedup = crate::log::legacy_dedup(&text(9)?);
    e.summary = some(text(10)?);
    e.raw_xml = some(text(11)?).map(Into::into);
    e.reply_xml = r.try_get(12).map_err(pg_err)?;
    e.latency = std::time::Duration::from_millis(r.try_get::<_, i64>(14).map_err(pg_err)?.max(0) as u64);
    e.error = r.try_get(15).map_err(pg_err)?;
    match r.try_get::<_, Option<String>>(16).map_err(pg_err)? {
        Some(detail) => {
            let d: Detail = serde_json::from_str(&detail).map_err(|e| StoreError::backend("postgres", e))?;
            e.outcome = d.outcome;
            e.rejection = d.rejection;
            e.status = d.status;
            e.latency = std::time::Duration::from_micros(d.latency_us);
            e.handler = d.handler.map(Into::into);
            e.peer = d.peer;
            e.query = d.query;
            e.headers = d.headers;
            e.attempts = d.attempts.max(1);
        }
        None => {
            // Written before the record was typed.
            (e.outcome, e.rejection) = crate::log::legacy_outcome(&text(13)?, e.error.as_deref());
            e.status = if e.outcome == crate::log::RecordOutcome::Rejected { 400 } else { 200 };
        }
    }
    Ok(e)
}

/// Sessions in PostgreSQL, with versions and expiry; each save is one conditional
/// statement.
#[derive(Clone, Debug)]
pub struct PostgresSessionStore {
    db: PostgresDatabase,
}

impl PostgresSessionStore {
    /// Connects and migrates (see [`PostgresDatabase::connect`]).
    ///
    /// # Errors
    ///
    /// As [`PostgresDatabase::connect`].
    pub async fn connect(url: &str, schema: &str) -> Result<Self> {
        Ok(PostgresDatabase::connect(url, schema).await?.session_store())
    }

    /// The database these sessions live in.
    pub fn database(&self) -> &PostgresDatabase {
        &self.db
    }

    /// Deletes expired sessions; returns how many. Run it now and then: expired sessions
    /// are invisible but stay until purged or overwritten.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if PostgreSQL fails.
    pub async fn purge_expired(&self) -> Result<u64> {
        let sql = format!("DELETE FROM {} WHERE expires_at_ms <= $1", self.db.table("sessions"));
        let purge = async { self.db.client().await?.execute(&sql, &[&now_ms()]).await.map_err(pg_err) };
        self.db.bounded("session purge", purge).await
    }
}

#[async_trait::async_trait]
impl SessionStore for PostgresSessionStore {
    async fn load(&self, key: &str) -> Result<Option<Versioned>> {
        self.db.bounded("session load", self.load_now(key)).await
    }

    async fn save(&self, key: &str, value: &serde_json::Value, expected: u64, ttl: Duration) -> Result<u64> {
        self.db.bounded("session save", self.save_now(key, value, expected, ttl)).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.db.bounded("session delete", self.delete_now(key)).await
    }
}

impl PostgresSessionStore {
    async fn load_now(&self, key: &str) -> Result<Option<Versioned>> {
        let sql = format!(
            "SELECT value, version FROM {} WHERE key = $1 AND expires_at_ms > $2",
            self.db.table("sessions")
        );
        let row = self.db.client().await?.query_opt(&sql, &[&key, &now_ms()]).await.map_err(pg_err)?;
        match row {
            Some(r) => {
                let json: String = r.try_get(0).map_err(pg_err)?;
                let version: i64 = r.try_get(1).map_err(pg_err)?;
                Ok(Some(Versioned { value: serde_json::from_str(&json)?, version: version as u64 }))
            }
            None => Ok(None),
        }
    }

    async fn save_now(
        &self,
        key: &str,
        value: &serde_json::Value,
        expected: u64,
        ttl: Duration,
    ) -> Result<u64> {
        let table = self.db.table("sessions");
        let json = serde_json::to_string(value)?;
        let now = now_ms();
        let expires = now.saturating_add(ttl_ms(ttl));
        let client = self.db.client().await?;
        let row = if expected == 0 {
            let sql = format!(
                "INSERT INTO {table} AS s (key, value, version, expires_at_ms) VALUES ($1, $2, 1, $3)
                 ON CONFLICT (key) DO UPDATE
                     SET value = EXCLUDED.value, version = 1, expires_at_ms = EXCLUDED.expires_at_ms
                     WHERE s.expires_at_ms <= $4
                 RETURNING version"
            );
            client.query_opt(&sql, &[&key, &json, &expires, &now]).await
        } else {
            let sql = format!(
                "UPDATE {table} SET value = $2, version = version + 1, expires_at_ms = $3
                 WHERE key = $1 AND version = $4 AND expires_at_ms > $5
                 RETURNING version"
            );
            let expected = i64::try_from(expected).unwrap_or(i64::MAX);
            client.query_opt(&sql, &[&key, &json, &expires, &expected, &now]).await
        }
        .map_err(pg_err)?;
        if let Some(r) = row {
            return Ok(r.try_get::<_, i64>(0).map_err(pg_err)? as u64);
        }
        let sql = format!("SELECT version FROM {table} WHERE key = $1 AND expires_at_ms > $2");
        let found = client
            .query_opt(&sql, &[&key, &now_ms()])
            .await
            .map_err(pg_err)?
            .map_or(Ok(0), |r| r.try_get::<_, i64>(0).map(|v| v as u64))
            .map_err(pg_err)?;
        Err(StoreError::Conflict { key: key.to_owned(), expected, found })
    }

    async fn delete_now(&self, key: &str) -> Result<()> {
        let sql = format!("DELETE FROM {} WHERE key = $1", self.db.table("sessions"));
        self.db.client().await?.execute(&sql, &[&key]).await.map(drop).map_err(pg_err)
    }
}
