//! SQLite backends: the embedded default for the message log and sessions.
//!
//! One file, opened in WAL mode; the schema is migrated on open (tracked in
//! `PRAGMA user_version`), so every version of wemp opens the files of earlier ones. Calls
//! run on tokio's blocking pool; each handle serializes its calls over one connection, and
//! several handles (or processes) may open the same file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::log::{LogEntry, LogQuery, MessageLog};
use crate::session::{SessionStore, Versioned};
use crate::{Result, StoreError, now_ms, ttl_ms};

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    // 1: message log and sessions.
    "CREATE TABLE message_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        received_at_ms INTEGER NOT NULL,
        appid TEXT NOT NULL,
        openid TEXT NOT NULL,
        msg_id INTEGER,
        dedup_key TEXT NOT NULL,
        msg_type TEXT NOT NULL,
        event TEXT,
        mode TEXT NOT NULL,
        dedup TEXT NOT NULL,
        summary TEXT NOT NULL,
        raw_xml TEXT NOT NULL,
        reply_xml TEXT,
        outcome TEXT NOT NULL,
        latency_ms INTEGER NOT NULL,
        error TEXT
    );
    CREATE INDEX message_log_appid ON message_log (appid, id);
    CREATE INDEX message_log_appid_openid ON message_log (appid, openid, id);
    CREATE INDEX message_log_received ON message_log (received_at_ms);
    CREATE TABLE sessions (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        version INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_expiry ON sessions (expires_at_ms);",
    // 2: one index on the log instead of three. Every index costs each insert on the request
    // machine's CPU; reads by account or time scan the id order, which is fast enough for a
    // log read by people, and reads by user keep their index.
    "DROP INDEX message_log_appid;
    DROP INDEX message_log_appid_openid;
    DROP INDEX message_log_received;
    CREATE INDEX message_log_openid ON message_log (openid, id);",
];

/// Expired sessions are swept after this many writes through one handle.
const SWEEP_EVERY: u64 = 256;

fn sql_err(e: rusqlite::Error) -> StoreError {
    StoreError::backend("sqlite", e)
}

/// An open SQLite database holding the message log and sessions.
///
/// Cheap to clone; clones share one connection. [`SqliteMessageLog`] and
/// [`SqliteSessionStore`] are views of it.
#[derive(Clone)]
pub struct SqliteDatabase {
    conn: Arc<Mutex<Connection>>,
    path: Option<Arc<PathBuf>>,
    writes: Arc<AtomicU64>,
}

impl std::fmt::Debug for SqliteDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDatabase").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SqliteDatabase {
    /// Opens (creating if needed) the database file at `path`, switches it to WAL mode and
    /// runs pending migrations.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if the file cannot be opened or migrated (for example a
    /// newer wemp's schema).
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let p = path.clone();
        let conn = blocking(move || {
            let conn = Connection::open(&p).map_err(sql_err)?;
            conn.pragma_update(None, "journal_mode", "WAL").map_err(sql_err)?;
            conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql_err)?;
            Self::setup(conn)
        })
        .await?;
        Ok(Self::from_conn(conn, Some(path)))
    }

    /// A private in-memory database (gone when the last clone drops); for tests.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if SQLite cannot allocate it.
    pub fn open_in_memory() -> Result<Self> {
        let conn = Self::setup(Connection::open_in_memory().map_err(sql_err)?)?;
        Ok(Self::from_conn(conn, None))
    }

    fn from_conn(conn: Connection, path: Option<PathBuf>) -> Self {
        Self { conn: Arc::new(Mutex::new(conn)), path: path.map(Arc::new), writes: Arc::default() }
    }

    fn setup(mut conn: Connection) -> Result<Connection> {
        conn.busy_timeout(Duration::from_secs(5)).map_err(sql_err)?;
        migrate(&mut conn)?;
        Ok(conn)
    }

    /// The file, unless in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref().map(PathBuf::as_path)
    }

    /// The message log stored in this database.
    pub fn message_log(&self) -> SqliteMessageLog {
        SqliteMessageLog { db: self.clone() }
    }

    /// The sessions stored in this database.
    pub fn session_store(&self) -> SqliteSessionStore {
        SqliteSessionStore { db: self.clone() }
    }

    async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        blocking(move || {
            // A panic mid-call rolls back its transaction when the guard's borrow ends, so
            // the connection stays usable.
            let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut conn)
        })
        .await
    }
}

async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| StoreError::backend("sqlite", e))?
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
    let current: usize = tx.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(sql_err)?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::backend(
            "sqlite",
            format!("database schema version {current} is newer than this wemp ({})", MIGRATIONS.len()),
        ));
    }
    for (i, script) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.execute_batch(script).map_err(sql_err)?;
        tx.pragma_update(None, "user_version", i + 1).map_err(sql_err)?;
        tracing::debug!(version = i + 1, "sqlite schema migrated");
    }
    tx.commit().map_err(sql_err)
}

/// The message log in a SQLite file, one row per delivery, with an `appid` column.
#[derive(Clone, Debug)]
pub struct SqliteMessageLog {
    db: SqliteDatabase,
}

impl SqliteMessageLog {
    /// Opens the log in the database file at `path` (see [`SqliteDatabase::open`]).
    ///
    /// # Errors
    ///
    /// As [`SqliteDatabase::open`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(SqliteDatabase::open(path).await?.message_log())
    }

    /// The database this log lives in.
    pub fn database(&self) -> &SqliteDatabase {
        &self.db
    }

    /// Deletes entries received before `received_at_ms`; returns how many.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if SQLite fails.
    pub async fn delete_before(&self, received_at_ms: i64) -> Result<u64> {
        self.db
            .call(move |c| {
                c.execute("DELETE FROM message_log WHERE received_at_ms < ?1", [received_at_ms])
                    .map(|n| n as u64)
                    .map_err(sql_err)
            })
            .await
    }
}

const LOG_COLUMNS: &str = "received_at_ms, appid, openid, msg_id, dedup_key, msg_type, event, mode, dedup, \
                           summary, raw_xml, reply_xml, outcome, latency_ms, error";

#[async_trait::async_trait]
impl MessageLog for SqliteMessageLog {
    async fn append(&self, entries: &[LogEntry]) -> Result<()> {
        self.append_shared(entries.into()).await
    }

    async fn append_shared(&self, entries: Arc<[LogEntry]>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.db
            .call(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
                {
                    let mut stmt = tx
                        .prepare_cached(&format!(
                            "INSERT INTO message_log ({LOG_COLUMNS}) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
                        ))
                        .map_err(sql_err)?;
                    for e in entries.iter() {
                        stmt.execute(rusqlite::params![
                            e.received_at_ms,
                            e.appid,
                            e.openid,
                            // MsgId is a u64; stored as the i64 with the same bits.
                            e.msg_id.map(|m| m as i64),
                            e.dedup_key,
                            e.msg_type,
                            e.event,
                            e.mode,
                            e.dedup,
                            e.summary,
                            e.raw_xml,
                            e.reply_xml,
                            e.outcome,
                            i64::try_from(e.latency_ms).unwrap_or(i64::MAX),
                            e.error,
                        ])
                        .map_err(sql_err)?;
                    }
                }
                tx.commit().map_err(sql_err)
            })
            .await
    }

    async fn query(&self, query: &LogQuery) -> Result<Vec<(i64, LogEntry)>> {
        let query = query.clone();
        self.db
            .call(move |c| {
                let mut sql = format!("SELECT id, {LOG_COLUMNS} FROM message_log WHERE 1 = 1");
                let mut args: Vec<rusqlite::types::Value> = Vec::new();
                let mut filter = |sql: &mut String, column: &str, op: &str, v: rusqlite::types::Value| {
                    args.push(v);
                    sql.push_str(&format!(" AND {column} {op} ?{}", args.len()));
                };
                if let Some(a) = query.appid {
                    filter(&mut sql, "appid", "=", a.into());
                }
                if let Some(o) = query.openid {
                    filter(&mut sql, "openid", "=", o.into());
                }
                if let Some(t) = query.msg_type {
                    filter(&mut sql, "msg_type", "=", t.into());
                }
                if let Some(s) = query.since_ms {
                    filter(&mut sql, "received_at_ms", ">=", s.into());
                }
                if let Some(a) = query.after_id {
                    filter(&mut sql, "id", ">", a.into());
                }
                sql.push_str(" ORDER BY id");
                if let Some(l) = query.limit {
                    sql.push_str(&format!(" LIMIT {}", i64::try_from(l).unwrap_or(i64::MAX)));
                }
                let mut stmt = c.prepare(&sql).map_err(sql_err)?;
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(args), |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            LogEntry {
                                received_at_ms: r.get(1)?,
                                appid: r.get(2)?,
                                openid: r.get(3)?,
                                msg_id: r.get::<_, Option<i64>>(4)?.map(|m| m as u64),
                                dedup_key: r.get(5)?,
                                msg_type: r.get(6)?,
                                event: r.get(7)?,
                                mode: r.get(8)?,
                                dedup: r.get(9)?,
                                summary: r.get(10)?,
                                raw_xml: r.get(11)?,
                                reply_xml: r.get(12)?,
                                outcome: r.get(13)?,
                                latency_ms: r.get::<_, i64>(14)?.max(0) as u64,
                                error: r.get(15)?,
                            },
                        ))
                    })
                    .map_err(sql_err)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql_err)
            })
            .await
    }
}

/// Sessions in a SQLite file, with versions and expiry.
#[derive(Clone, Debug)]
pub struct SqliteSessionStore {
    db: SqliteDatabase,
}

impl SqliteSessionStore {
    /// Opens the sessions in the database file at `path` (see [`SqliteDatabase::open`]).
    ///
    /// # Errors
    ///
    /// As [`SqliteDatabase::open`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(SqliteDatabase::open(path).await?.session_store())
    }

    /// The database these sessions live in.
    pub fn database(&self) -> &SqliteDatabase {
        &self.db
    }

    /// Deletes expired sessions now (this also happens every few hundred writes); returns
    /// how many.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if SQLite fails.
    pub async fn purge_expired(&self) -> Result<u64> {
        self.db.call(|c| purge_sessions(c, now_ms())).await
    }
}

fn purge_sessions(c: &Connection, now: i64) -> Result<u64> {
    c.execute("DELETE FROM sessions WHERE expires_at_ms <= ?1", [now]).map(|n| n as u64).map_err(sql_err)
}

#[async_trait::async_trait]
impl SessionStore for SqliteSessionStore {
    async fn load(&self, key: &str) -> Result<Option<Versioned>> {
        let key = key.to_owned();
        let row = self
            .db
            .call(move |c| {
                c.query_row(
                    "SELECT value, version FROM sessions WHERE key = ?1 AND expires_at_ms > ?2",
                    rusqlite::params![key, now_ms()],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
                )
                .optional()
                .map_err(sql_err)
            })
            .await?;
        match row {
            Some((json, version)) => {
                Ok(Some(Versioned { value: serde_json::from_str(&json)?, version: version as u64 }))
            }
            None => Ok(None),
        }
    }

    async fn save(&self, key: &str, value: &serde_json::Value, expected: u64, ttl: Duration) -> Result<u64> {
        let key = key.to_owned();
        let json = serde_json::to_string(value)?;
        let sweep = (self.db.writes.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(SWEEP_EVERY);
        self.db
            .call(move |c| {
                let now = now_ms();
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
                let current = tx
                    .query_row(
                        "SELECT version FROM sessions WHERE key = ?1 AND expires_at_ms > ?2",
                        rusqlite::params![key, now],
                        |r| r.get::<_, i64>(0),
                    )
                    .optional()
                    .map_err(sql_err)?
                    .map_or(0, |v| v as u64);
                if current != expected {
                    return Err(StoreError::Conflict { key, expected, found: current });
                }
                let version = current + 1;
                tx.execute(
                    "INSERT INTO sessions (key, value, version, expires_at_ms) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version,
                         expires_at_ms = excluded.expires_at_ms",
                    rusqlite::params![key, json, version as i64, now.saturating_add(ttl_ms(ttl))],
                )
                .map_err(sql_err)?;
                if sweep {
                    purge_sessions(&tx, now)?;
                }
                tx.commit().map_err(sql_err)?;
                Ok(version)
            })
            .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let key = key.to_owned();
        self.db
            .call(move |c| c.execute("DELETE FROM sessions WHERE key = ?1", [key]).map(drop).map_err(sql_err))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempFile(PathBuf);

    impl Drop for TempFile {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = self.0.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
    }

    fn temp_file(name: &str) -> TempFile {
        TempFile(std::env::temp_dir().join(format!("wemp-sqlite-{name}-{}.db", std::process::id())))
    }

    #[tokio::test]
    async fn reopen_keeps_data_and_schema() {
        let file = temp_file("reopen");
        let log = SqliteMessageLog::open(&file.0).await.unwrap();
        let entry = LogEntry { appid: "wx1".into(), msg_id: Some(u64::MAX), ..LogEntry::default() };
        log.append(std::slice::from_ref(&entry)).await.unwrap();
        drop(log);

        let db = SqliteDatabase::open(&file.0).await.unwrap();
        let rows = db.message_log().query(&LogQuery::default()).await.unwrap();
        assert_eq!(rows, [(1, entry)]);
        let (mode, version) = db
            .call(|c| {
                let mode: String =
                    c.pragma_query_value(None, "journal_mode", |r| r.get(0)).map_err(sql_err)?;
                let version: usize =
                    c.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(sql_err)?;
                Ok((mode, version))
            })
            .await
            .unwrap();
        assert_eq!((mode.as_str(), version), ("wal", MIGRATIONS.len()));
    }

    #[tokio::test]
    async fn migrates_a_version_1_file() {
        let file = temp_file("v1");
        {
            let conn = Connection::open(&file.0).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO message_log (received_at_ms, appid, openid, dedup_key, msg_type, mode, dedup, \
                 summary, raw_xml, outcome, latency_ms) VALUES (5, 'wx1', 'o1', 'k', 'text', 'plain', 'new', \
                 's', '<xml/>', 'answered', 1)",
                [],
            )
            .unwrap();
        }
        let db = SqliteDatabase::open(&file.0).await.unwrap();
        let query = LogQuery { openid: Some("o1".into()), ..LogQuery::default() };
        let rows = db.message_log().query(&query).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].1.raw_xml, "<xml/>");
        let indexes: Vec<String> = db
            .call(|c| {
                let mut stmt = c
                    .prepare(
                        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'message_log'",
                    )
                    .map_err(sql_err)?;
                let names = stmt.query_map([], |r| r.get(0)).map_err(sql_err)?;
                names.collect::<Result<_, _>>().map_err(sql_err)
            })
            .await
            .unwrap();
        assert_eq!(indexes, ["message_log_openid"]);
    }

    #[tokio::test]
    async fn refuses_a_newer_schema() {
        let file = temp_file("newer");
        let db = SqliteDatabase::open(&file.0).await.unwrap();
        db.call(|c| c.pragma_update(None, "user_version", MIGRATIONS.len() + 1).map_err(sql_err))
            .await
            .unwrap();
        drop(db);
        let err = SqliteDatabase::open(&file.0).await.unwrap_err();
        assert!(err.to_string().contains("newer than this wemp"), "{err}");
    }

    #[tokio::test]
    async fn delete_before_and_purge() {
        let db = SqliteDatabase::open_in_memory().unwrap();
        let log = db.message_log();
        let at = |ms| LogEntry { received_at_ms: ms, ..LogEntry::default() };
        log.append(&[at(1), at(2), at(3)]).await.unwrap();
        assert_eq!(log.delete_before(3).await.unwrap(), 2);
        assert_eq!(log.query(&LogQuery::default()).await.unwrap(), [(3, at(3))]);

        let sessions = db.session_store();
        sessions.save("gone", &serde_json::json!(1), 0, Duration::ZERO).await.unwrap();
        sessions.save("kept", &serde_json::json!(2), 0, Duration::from_secs(60)).await.unwrap();
        assert_eq!(sessions.purge_expired().await.unwrap(), 1);
        assert_eq!(sessions.load("kept").await.unwrap().unwrap().version, 1);
    }
}
