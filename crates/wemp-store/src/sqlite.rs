//! SQLite backends: the embedded default for the message log and sessions.
//!
//! One file, opened in WAL mode; the schema is migrated on open (tracked in
//! `PRAGMA user_version`), so every version of wemp opens the files of earlier ones. Calls
//! run on tokio's blocking pool; each handle serializes its calls over one connection, and
//! several handles (or processes) may open the same file.
//!
//! # How the message log is stored
//!
//! The log is written in *segments*: each append (a [`crate::LogWriter`] batch of up to a
//! few hundred entries) becomes one row of `message_log_segments`, whose `body` blob holds the
//! batch's entries in a compact length-prefixed binary encoding compressed with LZ4, next to
//! the batch's first and last entry id, its entry count and its oldest and newest
//! `received_at_ms`. One insert per batch with no secondary index costs SQLite far less CPU
//! than one 15-column row per entry did, and that CPU is taken from the server answering
//! requests on the same machine: with a row per entry, the SQLite log made a busy server
//! 22–41 % slower. LZ4 shrinks the XML-heavy entries several times over for less CPU than
//! the file system spends writing the bytes saved (twice: WAL, then checkpoint).
//!
//! Entry ids stay what they were: consecutive integers, handed out from a counter
//! (`message_log_ids`) that never goes back, so `after_id` follows the log across restarts
//! and deletions. An entry's id is its segment's first id plus its position in the batch.
//! Queries read segments in id order, skip those outside the `after_id` and `since_ms`
//! bounds from the row's columns, decode the rest and filter each entry with
//! [`LogQuery::matches`], stopping at `limit`. Reads by user or account therefore scan the
//! log instead of using an index, which is fast enough for a log read by people.
//! [`SqliteMessageLog::delete_before`] drops whole segments and rewrites the one that
//! straddles the cut-off.
//!
//! Files written by earlier versions (schema 1 and 2) keep their rows in the `message_log`
//! table, one per entry; they are read first, with their ids, and new entries get ids after
//! the largest one that table ever issued.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::log::{DeliveryRecord, LogQuery, MessageLog};
use crate::session::{SessionStore, Versioned};
use crate::{Result, SchemaState, StoreError, now_ms, ttl_ms};

mod segment;

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
    // 3: the log is stored in segments, one row per appended batch (see the module docs).
    // Rows of `message_log` written by earlier versions stay where they are and keep their
    // ids; new entries get ids after the largest one ever issued there.
    "CREATE TABLE message_log_segments (
        first_id INTEGER PRIMARY KEY,
        last_id INTEGER NOT NULL,
        entries INTEGER NOT NULL,
        min_ms INTEGER NOT NULL,
        max_ms INTEGER NOT NULL,
        body BLOB NOT NULL
    );
    CREATE TABLE message_log_ids (next_id INTEGER NOT NULL);
    INSERT INTO message_log_ids (next_id) SELECT MAX(
        COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'message_log'), 0),
        COALESCE((SELECT MAX(id) FROM message_log), 0)
    ) + 1;",
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
        SqliteMessageLog { db: self.clone(), written: Arc::default() }
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

/// Opens the existing database file at `path` read-only and reports its schema version
/// without creating, migrating or otherwise writing anything, for diagnostics that must not
/// write. A file without wemp's tables (an empty file) is [`SchemaState::Missing`].
///
/// A read-only connection to a WAL database still creates the `-wal` and `-shm` files and
/// leaves them behind, so when there is no `-wal` file (no server has the log open, and
/// everything is in the main file) the file is opened `immutable`, which creates nothing;
/// when there is one, a running server's latest writes are in it and it is read as usual.
///
/// # Errors
///
/// [`StoreError::Backend`] if the file does not exist, is not a SQLite database or cannot
/// be read.
pub async fn probe(path: impl AsRef<Path>) -> Result<SchemaState> {
    let path = path.as_ref().to_owned();
    blocking(move || {
        if !path.is_file() {
            return Err(StoreError::backend("sqlite", format!("{} is not a file", path.display())));
        }
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = if Path::new(&wal).exists() {
            Connection::open_with_flags(&path, flags)
        } else {
            let uri = format!("{}?mode=ro&immutable=1", file_uri(&path));
            Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)
        }
        .map_err(sql_err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(sql_err)?;
        // Reading the schema also tells a file that is not a database from one that is.
        let tables: usize = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0))
            .map_err(sql_err)?;
        let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(sql_err)?;
        Ok(match version {
            0 if tables == 0 => SchemaState::Missing,
            v if v > MIGRATIONS.len() => SchemaState::Newer(v),
            v => SchemaState::Version(v),
        })
    })
    .await
}

/// The `file:` URI of `path`, every byte but unreserved ones and `/` percent-encoded.
fn file_uri(path: &Path) -> String {
    use std::fmt::Write as _;
    let mut uri = String::from("file:");
    for b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(b) {
            uri.push(char::from(*b));
        } else {
            let _ = write!(uri, "%{b:02X}");
        }
    }
    uri
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

/// The message log in a SQLite file, one row per appended batch (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct SqliteMessageLog {
    db: SqliteDatabase,
    /// The last batch written through [`MessageLog::append_shared`]: a retry of it is not
    /// written again. (Held weakly, its allocation cannot be reused for another batch.)
    written: Arc<Mutex<Option<std::sync::Weak<[DeliveryRecord]>>>>,
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
    /// Segments entirely older go as a whole; a segment holding older and newer entries is
    /// rewritten without the older ones, and the others keep their ids.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if SQLite fails or a segment does not decode.
    pub async fn delete_before(&self, received_at_ms: i64) -> Result<u64> {
        self.db.call(move |c| delete_log_before(c, received_at_ms)).await
    }
}

/// The most entries in one segment; larger appends are split. Bounds `last_id - first_id`,
/// which lets a query by `after_id` seek on the primary key.
const MAX_SEGMENT: usize = 4096;

const LOG_COLUMNS: &str = "received_at_ms, appid, openid, msg_id, dedup_key, msg_type, event, mode, dedup, \
                           summary, raw_xml, reply_xml, outcome, latency_ms, error";

fn corrupt(first_id: i64, what: segment::Corrupt) -> StoreError {
    StoreError::backend("sqlite", format!("message log segment {first_id} does not decode: {what}"))
}

thread_local! {
    /// The encoding buffers of segment bodies (records, then compressed), one pair per
    /// blocking thread, reused across batches.
    static ENCODE_BUFFERS: std::cell::RefCell<(Vec<u8>, Vec<u8>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// A larger encoding buffer is freed after use rather than kept for the next batch.
const MAX_KEPT_BUFFER: usize = 4 << 20;

fn append_log(c: &mut Connection, entries: &[DeliveryRecord]) -> Result<()> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
    {
        let first: i64 = tx
            .prepare_cached("UPDATE message_log_ids SET next_id = next_id + ?1 RETURNING next_id - ?1")
            .and_then(|mut s| s.query_row([entries.len() as i64], |r| r.get(0)))
            .map_err(sql_err)?;
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO message_log_segments (first_id, last_id, entries, min_ms, max_ms, body) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(sql_err)?;
        for (k, chunk) in entries.chunks(MAX_SEGMENT).enumerate() {
            let first_id = first + (k * MAX_SEGMENT) as i64;
            let times = chunk.iter().map(|e| e.received_at_ms);
            let (min, max) = (times.clone().min().unwrap_or(0), times.max().unwrap_or(0));
            ENCODE_BUFFERS
                .with_borrow_mut(|(raw, body)| {
                    segment::encode_into(raw, chunk.iter().enumerate().map(|(i, e)| (i as u64, e)));
                    segment::compress_into(body, raw);
                    let done = insert.execute(rusqlite::params![
                        first_id,
                        first_id + chunk.len() as i64 - 1,
                        chunk.len() as i64,
                        min,
                        max,
                        &body[..]
                    ]);
                    for buf in [raw, body] {
                        if buf.capacity() > MAX_KEPT_BUFFER {
                            *buf = Vec::new();
                        }
                    }
                    done
                })
                .map_err(sql_err)?;
        }
    }
    tx.commit().map_err(sql_err)
}

fn delete_log_before(c: &mut Connection, before_ms: i64) -> Result<u64> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
    let mut deleted =
        tx.execute("DELETE FROM message_log WHERE received_at_ms < ?1", [before_ms]).map_err(sql_err)? as u64;
    let whole: i64 = tx
        .query_row(
            "SELECT COALESCE(SUM(entries), 0) FROM message_log_segments WHERE max_ms < ?1",
            [before_ms],
            |r| r.get(0),
        )
        .map_err(sql_err)?;
    tx.execute("DELETE FROM message_log_segments WHERE max_ms < ?1", [before_ms]).map_err(sql_err)?;
    deleted += whole as u64;
    let partial: Vec<(i64, Vec<u8>)> = {
        let mut stmt = tx
            .prepare("SELECT first_id, body FROM message_log_segments WHERE min_ms < ?1 ORDER BY first_id")
            .map_err(sql_err)?;
        let rows = stmt.query_map([before_ms], |r| Ok((r.get(0)?, r.get(1)?))).map_err(sql_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_err)?
    };
    for (first_id, body) in partial {
        let raw = segment::plain(&body).map_err(|e| corrupt(first_id, e))?;
        let records = segment::records(&raw)
            .map_err(|e| corrupt(first_id, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| corrupt(first_id, e))?;
        let total = records.len();
        let kept: Vec<_> = records.into_iter().filter(|r| r.received_at_ms >= before_ms).collect();
        deleted += (total - kept.len()) as u64;
        // Not empty: the segment's newest entry is at or after `before_ms`.
        let last = kept.iter().map(|r| r.index).max().unwrap_or(0) as i64;
        let min = kept.iter().map(|r| r.received_at_ms).min().unwrap_or(before_ms);
        let max = kept.iter().map(|r| r.received_at_ms).max().unwrap_or(before_ms);
        let n = kept.len() as i64;
        let mut body = Vec::new();
        segment::compress_into(&mut body, &segment::rebuild(kept.into_iter()));
        tx.execute(
            "UPDATE message_log_segments SET last_id = ?2, entries = ?3, min_ms = ?4, max_ms = ?5, body = ?6 \
             WHERE first_id = ?1",
            rusqlite::params![first_id, first_id + last, n, min, max, body],
        )
        .map_err(sql_err)?;
    }
    tx.commit().map_err(sql_err)?;
    Ok(deleted)
}

/// Rows of the `message_log` table (written before segments), then entries of segments.
fn query_log(c: &mut Connection, query: &LogQuery) -> Result<Vec<(i64, DeliveryRecord)>> {
    let limit = query.limit.unwrap_or(usize::MAX);
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut out = query_rows(c, query)?;
    if out.len() >= limit {
        return Ok(out);
    }
    let after = query.after_id.unwrap_or(i64::MIN);
    let mut stmt = c
        .prepare_cached(
            "SELECT first_id, body FROM message_log_segments \
             WHERE first_id > ?1 AND last_id > ?2 AND max_ms >= ?3 ORDER BY first_id",
        )
        .map_err(sql_err)?;
    let mut rows = stmt
        .query(rusqlite::params![
            after.saturating_sub(MAX_SEGMENT as i64),
            after,
            query.since_ms.unwrap_or(i64::MIN)
        ])
        .map_err(sql_err)?;
    while let Some(row) = rows.next().map_err(sql_err)? {
        let first_id: i64 = row.get(0).map_err(sql_err)?;
        let body =
            row.get_ref(1).map_err(sql_err)?.as_blob().map_err(|e| StoreError::backend("sqlite", e))?;
        let raw = segment::plain(body).map_err(|e| corrupt(first_id, e))?;
        for record in segment::records(&raw).map_err(|e| corrupt(first_id, e))? {
            let record = record.map_err(|e| corrupt(first_id, e))?;
            let id = first_id + record.index as i64;
            if !record.may_match(id, query) {
                continue;
            }
            let entry = record.entry().map_err(|e| corrupt(first_id, e))?;
            if query.matches(id, &entry) {
                out.push((id, entry));
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

/// Matching rows of the `message_log` table, as earlier versions wrote them.
fn query_rows(c: &Connection, query: &LogQuery) -> Result<Vec<(i64, DeliveryRecord)>> {
    let query = query.clone();
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
            Ok((r.get::<_, i64>(0)?, {
                let mut e = DeliveryRecord::new(0, r.get(1)?);
                let some = |s: String| (!s.is_empty()).then_some(s);
                e.appid = some(r.get(2)?);
                e.openid = some(r.get(3)?);
                e.msg_id = r.get::<_, Option<i64>>(4)?.map(|m| m as u64);
                e.dedup_key = some(r.get(5)?);
                e.msg_type = some(r.get(6)?);
                e.event = r.get(7)?;
                e.mode = serde_json::from_value(serde_json::Value::String(r.get(8)?)).ok();
                e.dedup = crate::log::legacy_dedup(&r.get::<_, String>(9)?);
                e.summary = some(r.get(10)?);
                e.raw_xml = some(r.get(11)?).map(Into::into);
                e.reply_xml = r.get(12)?;
                e.latency = Duration::from_millis(r.get::<_, i64>(14)?.max(0) as u64);
                e.error = r.get(15)?;
                (e.outcome, e.rejection) =
                    crate::log::legacy_outcome(&r.get::<_, String>(13)?, e.error.as_deref());
                e.status = if e.outcome == crate::log::RecordOutcome::Rejected { 400 } else { 200 };
                e
            }))
        })
        .map_err(sql_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql_err)
}

#[async_trait::async_trait]
impl MessageLog for SqliteMessageLog {
    async fn append(&self, entries: &[DeliveryRecord]) -> Result<()> {
        self.append_shared(entries.into()).await
    }

    /// A batch given again (the same `Arc`, as [`crate::LogWriter`] retries one) after it was
    /// written is not written twice: a first try that outlived the writer's timeout — the
    /// blocking write goes on after the wait is abandoned — has written it by the time the
    /// retry reaches the connection.
    async fn append_shared(&self, entries: Arc<[DeliveryRecord]>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let written = Arc::clone(&self.written);
        self.db
            .call(move |c| {
                let mut last = written.lock().unwrap_or_else(|e| e.into_inner());
                if last.as_ref().is_some_and(|w| std::ptr::addr_eq(w.as_ptr(), Arc::as_ptr(&entries))) {
                    return Ok(());
                }
                append_log(c, &entries)?;
                *last = Some(Arc::downgrade(&entries));
                Ok(())
            })
            .await
    }

    async fn query(&self, query: &LogQuery) -> Result<Vec<(i64, DeliveryRecord)>> {
        let query = query.clone();
        self.db.call(move |c| query_log(c, &query)).await
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
    async fn probe_reads_the_version_and_writes_nothing() {
        let file = temp_file("probe w?th #odd %name");
        let exists = |suffix: &str| {
            let mut p = file.0.clone().into_os_string();
            p.push(suffix);
            Path::new(&p).exists()
        };
        assert!(probe(&file.0).await.is_err(), "no file: an error, and none created");
        assert!(!exists(""));
        // A server has the log open: its WAL is read.
        let db = SqliteDatabase::open(&file.0).await.unwrap();
        assert_eq!(probe(&file.0).await.unwrap(), SchemaState::Version(MIGRATIONS.len()));
        drop(db);
        // Closed: no WAL left, and probing leaves none behind.
        assert!(!exists("-wal") && !exists("-shm"));
        let before = std::fs::read(&file.0).unwrap();
        assert_eq!(probe(&file.0).await.unwrap(), SchemaState::Version(MIGRATIONS.len()));
        assert!(!exists("-wal") && !exists("-shm"), "probe created WAL files");
        assert_eq!(std::fs::read(&file.0).unwrap(), before);
        std::fs::write(&file.0, b"").unwrap();
        assert_eq!(probe(&file.0).await.unwrap(), SchemaState::Missing);
        assert_eq!(std::fs::read(&file.0).unwrap(), b"");
    }

    /// A write that outlives the writer's timeout goes on in its blocking thread; the
    /// writer's retries of that batch must not write it a second (and third) time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_retried_after_a_timed_out_write_is_written_once() {
        use crate::{LogWriter, LogWriterConfig, MessageLog as _};
        let file = temp_file("retried");
        let db = SqliteDatabase::open(&file.0).await.unwrap();
        // Another process holds the write lock for a while: every try of the batch waits.
        let (locked, released) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let path = file.0.clone();
        let holder = std::thread::spawn(move || {
            let c = Connection::open(path).unwrap();
            c.execute_batch("BEGIN IMMEDIATE").unwrap();
            locked.0.send(()).unwrap();
            released.1.recv().unwrap();
            c.execute_batch("ROLLBACK").unwrap();
        });
        locked.1.recv().unwrap();
        let log = Arc::new(db.message_log());
        let config = LogWriterConfig::default()
            .write_timeout(Duration::from_millis(50))
            .retries(10, Duration::from_millis(20))
            .linger(Duration::ZERO);
        let writer = LogWriter::spawn(log.clone(), config);
        for n in 0..3 {
            assert!(writer.log(at(n, "o1")));
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        released.0.send(()).unwrap();
        holder.join().unwrap();
        writer.flush().await;
        let all = log.query(&LogQuery::default()).await.unwrap();
        assert_eq!(all.len(), 3, "{:?}", all.iter().map(|(id, _)| id).collect::<Vec<_>>());
        assert_eq!((writer.stats().written(), writer.stats().dropped()), (3, 0));
        // Another batch with the same entries is another append.
        log.append(&[at(0, "o1")]).await.unwrap();
        assert_eq!(log.query(&LogQuery::default()).await.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn reopen_keeps_data_and_schema() {
        let file = temp_file("reopen");
        let log = SqliteMessageLog::open(&file.0).await.unwrap();
        let mut entry = DeliveryRecord::new(0, 0);
        entry.appid = Some("wx1".into());
        entry.msg_id = Some(u64::MAX);
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
        assert_eq!(rows[0].1.raw_xml.as_deref(), Some("<xml/>"));
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
        let at = |ms| DeliveryRecord { received_at_ms: ms, ..DeliveryRecord::default() };
        log.append(&[at(1), at(2), at(3)]).await.unwrap();
        assert_eq!(log.delete_before(3).await.unwrap(), 2);
        assert_eq!(log.query(&LogQuery::default()).await.unwrap(), [(3, at(3))]);

        let sessions = db.session_store();
        sessions.save("gone", &serde_json::json!(1), 0, Duration::ZERO).await.unwrap();
        sessions.save("kept", &serde_json::json!(2), 0, Duration::from_secs(60)).await.unwrap();
        assert_eq!(sessions.purge_expired().await.unwrap(), 1);
        assert_eq!(sessions.load("kept").await.unwrap().unwrap().version, 1);
    }

    fn at(ms: i64, openid: &str) -> DeliveryRecord {
        let mut e = DeliveryRecord::new(0, ms);
        e.appid = Some("wx1".into());
        e.openid = Some(openid.into());
        e.msg_type = Some(if ms % 2 == 0 { "text" } else { "event" }.into());
        e.raw_xml = Some(format!("<xml><N>{ms}</N></xml>").into());
        e.reply_xml = (ms % 3 == 0).then(|| "success".into());
        e.mode = Some(wemp_proto::Mode::Plain);
        e.dedup = Some(crate::log::DedupOutcome::New);
        e.status = 200;
        e
    }

    async fn all(log: &SqliteMessageLog) -> Vec<(i64, DeliveryRecord)> {
        log.query(&LogQuery::default()).await.unwrap()
    }

    async fn segments(db: &SqliteDatabase) -> i64 {
        db.call(|c| {
            c.query_row("SELECT COUNT(*) FROM message_log_segments", [], |r| r.get(0)).map_err(sql_err)
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn one_segment_per_batch_and_ids_grow_across_reopen() {
        let file = temp_file("segments");
        let db = SqliteDatabase::open(&file.0).await.unwrap();
        let log = db.message_log();
        let first: Vec<DeliveryRecord> = (0..300).map(|n| at(n, "o1")).collect();
        log.append(&first).await.unwrap();
        log.append(&[at(300, "o2")]).await.unwrap();
        assert_eq!(segments(&db).await, 2);
        drop((log, db));

        let db = SqliteDatabase::open(&file.0).await.unwrap();
        let log = db.message_log();
        log.append(&[at(301, "o1"), at(302, "o2")]).await.unwrap();
        let rows = all(&log).await;
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), (1..=303).collect::<Vec<_>>());
        assert_eq!(rows.iter().map(|r| r.1.received_at_ms).collect::<Vec<_>>(), (0..303).collect::<Vec<_>>());
        assert_eq!(rows[5].1, at(5, "o1"));

        // Ids are never reused, not even after everything is deleted.
        assert_eq!(log.delete_before(i64::MAX).await.unwrap(), 303);
        assert_eq!(segments(&db).await, 0);
        log.append(&[at(400, "o1")]).await.unwrap();
        assert_eq!(all(&log).await, [(304, at(400, "o1"))]);
    }

    #[tokio::test]
    async fn filters_and_paging_across_segments() {
        let db = SqliteDatabase::open_in_memory().unwrap();
        let log = db.message_log();
        for batch in 0..5 {
            let entries: Vec<DeliveryRecord> =
                (0..10).map(|n| at(batch * 10 + n, if n % 3 == 0 { "o3" } else { "ox" })).collect();
            log.append(&entries).await.unwrap();
        }
        let expect = |q: &LogQuery| -> Vec<i64> {
            let all: Vec<(i64, DeliveryRecord)> =
                (0..50).map(|n| (n + 1, at(n, if n % 10 % 3 == 0 { "o3" } else { "ox" }))).collect();
            let hits = all.iter().filter(|(id, e)| q.matches(*id, e)).map(|r| r.0);
            hits.take(q.limit.unwrap_or(usize::MAX)).collect()
        };
        let queries = [
            LogQuery { openid: Some("o3".into()), ..LogQuery::default() },
            LogQuery { msg_type: Some("event".into()), since_ms: Some(17), ..LogQuery::default() },
            LogQuery { since_ms: Some(35), limit: Some(7), ..LogQuery::default() },
            LogQuery { after_id: Some(9), limit: Some(3), ..LogQuery::default() },
            LogQuery { after_id: Some(10), openid: Some("o3".into()), ..LogQuery::default() },
            LogQuery { appid: Some("wx2".into()), ..LogQuery::default() },
            LogQuery { after_id: Some(50), ..LogQuery::default() },
            LogQuery { limit: Some(0), ..LogQuery::default() },
        ];
        for q in &queries {
            let got: Vec<i64> = log.query(q).await.unwrap().into_iter().map(|r| r.0).collect();
            assert_eq!(got, expect(q), "{q:?}");
        }
        // Paging with after_id visits every entry once.
        let (mut seen, mut page) = (Vec::new(), LogQuery { limit: Some(4), ..LogQuery::default() });
        loop {
            let rows = log.query(&page).await.unwrap();
            let Some(last) = rows.last() else { break };
            page.after_id = Some(last.0);
            seen.extend(rows.into_iter().map(|r| r.0));
        }
        assert_eq!(seen, (1..=50).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn large_appends_split_and_seek_by_id() {
        let db = SqliteDatabase::open_in_memory().unwrap();
        let log = db.message_log();
        let n = MAX_SEGMENT * 2 + 5;
        let entries: Vec<DeliveryRecord> = (0..n as i64).map(|i| at(i, "o")).collect();
        log.append(&entries).await.unwrap();
        assert_eq!(segments(&db).await, 3);
        for after in [0, 1, MAX_SEGMENT as i64 - 1, MAX_SEGMENT as i64, 2 * MAX_SEGMENT as i64 + 3] {
            let q = LogQuery { after_id: Some(after), limit: Some(2), ..LogQuery::default() };
            let ids: Vec<i64> = log.query(&q).await.unwrap().into_iter().map(|r| r.0).collect();
            assert_eq!(ids, [after + 1, after + 2]);
        }
        assert_eq!(all(&log).await.len(), n);
    }

    #[tokio::test]
    async fn delete_before_rewrites_a_straddling_segment() {
        let db = SqliteDatabase::open_in_memory().unwrap();
        let log = db.message_log();
        log.append(&[at(10, "a"), at(20, "b")]).await.unwrap(); // ids 1, 2
        // Received times within a batch need not be in order.
        log.append(&[at(35, "c"), at(30, "d"), at(40, "e"), at(31, "f")]).await.unwrap(); // ids 3..=6
        assert_eq!(log.delete_before(32).await.unwrap(), 4);
        assert_eq!(all(&log).await, [(3, at(35, "c")), (5, at(40, "e"))]);
        assert_eq!(segments(&db).await, 1);
        let q = LogQuery { after_id: Some(3), ..LogQuery::default() };
        assert_eq!(log.query(&q).await.unwrap(), [(5, at(40, "e"))]);
        let q = LogQuery { since_ms: Some(36), ..LogQuery::default() };
        assert_eq!(log.query(&q).await.unwrap(), [(5, at(40, "e"))]);
        assert_eq!(log.delete_before(32).await.unwrap(), 0);
        log.append(&[at(50, "g")]).await.unwrap();
        assert_eq!(all(&log).await.last().unwrap().0, 7);
    }

    #[tokio::test]
    async fn migrates_a_version_2_file_keeping_rows_and_ids() {
        let file = temp_file("v2");
        let old: Vec<DeliveryRecord> = (0..5).map(|n| at(n, if n % 2 == 0 { "o1" } else { "o2" })).collect();
        {
            // A file as wemp with schema version 2 left it, the last rows deleted.
            let db = SqliteDatabase::open(&file.0).await.unwrap();
            drop(db);
            let conn = Connection::open(&file.0).unwrap();
            conn.execute_batch(
                "DROP TABLE message_log_segments; DROP TABLE message_log_ids; PRAGMA user_version = 2;",
            )
            .unwrap();
            let cols = LOG_COLUMNS;
            for (n, e) in old.iter().chain(&old[..2]).enumerate() {
                conn.execute(
                    &format!(
                        "INSERT INTO message_log ({cols}) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
                    ),
                    rusqlite::params![
                        if n < 5 { e.received_at_ms } else { 1_000 },
                        e.appid,
                        e.openid,
                        e.msg_id.map(|m| m as i64),
                        e.dedup_key.as_deref().unwrap_or_default(),
                        e.msg_type,
                        e.event,
                        e.mode.map_or("", wemp_proto::Mode::as_str),
                        e.dedup.map_or("", crate::log::DedupOutcome::as_str),
                        e.summary.as_deref().unwrap_or_default(),
                        e.raw_xml.as_deref().unwrap_or_default(),
                        e.reply_xml,
                        "sent",
                        e.latency_ms() as i64,
                        e.error
                    ],
                )
                .unwrap();
            }
            conn.execute("DELETE FROM message_log WHERE received_at_ms = 1000", []).unwrap();
        }
        let db = SqliteDatabase::open(&file.0).await.unwrap();
        let log = db.message_log();
        let version: usize = db
            .call(|c| c.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(sql_err))
            .await
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
        assert_eq!(all(&log).await, old.iter().cloned().zip(1..).map(|(e, id)| (id, e)).collect::<Vec<_>>());

        // New entries follow the largest id the old table ever issued (7), not its last row.
        log.append(&[at(10, "o1"), at(11, "o2")]).await.unwrap();
        let rows = all(&log).await;
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 8, 9]);
        let q = LogQuery { openid: Some("o1".into()), ..LogQuery::default() };
        assert_eq!(log.query(&q).await.unwrap().iter().map(|r| r.0).collect::<Vec<_>>(), [1, 3, 5, 8]);
        let q = LogQuery { after_id: Some(4), limit: Some(2), ..LogQuery::default() };
        assert_eq!(log.query(&q).await.unwrap().iter().map(|r| r.0).collect::<Vec<_>>(), [5, 8]);
        let q = LogQuery { limit: Some(5), ..LogQuery::default() };
        assert_eq!(log.query(&q).await.unwrap().len(), 5);

        // delete_before reaches both the old rows and the segments.
        assert_eq!(log.delete_before(11).await.unwrap(), 6);
        assert_eq!(all(&log).await, [(9, at(11, "o2"))]);
    }
}
