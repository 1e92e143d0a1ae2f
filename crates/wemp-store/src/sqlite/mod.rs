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
//! Entry ids stay what they were: consecutive integers that never go back, so `after_id`
//! follows the log across restarts and deletions. An entry's id is its segment's first id
//! plus its position in the batch; a batch's first id follows the newest segment's last
//! one, or a floor kept in `message_log_ids` if that is larger: the ids the `message_log`
//! table issued, raised before each deletion to the next id, so that deleting the newest
//! entries does not hand their ids out again. (Until schema 4 every append also wrote the
//! next id there: an `UPDATE` and a page more to each batch's transaction.)
//! Queries read segments in id order, skip those outside the `after_id` and `since_ms`
//! bounds from the row's columns, decode the rest and filter each entry with
//! [`LogQuery::matches`](crate::LogQuery::matches), stopping at `limit`. Reads by user or account therefore scan the
//! log instead of using an index, which is fast enough for a log read by people.
//! [`MessageLog::delete_before`](crate::MessageLog::delete_before) drops whole segments and rewrites the one that
//! straddles the cut-off.
//!
//! Files written by earlier versions (schema 1 and 2) keep their rows in the `message_log`
//! table, one per entry; they are read first, with their ids, and new entries get ids after
//! the largest one that table ever issued.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::{Result, SchemaState, StoreError};

mod log;
mod session;
#[cfg(test)]
mod tests;

pub use log::SqliteMessageLog;
pub use session::SqliteSessionStore;

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
    // 4: `message_log_ids.next_id` is a floor, no longer written by every append: the next
    // id follows the newest segment's last one, or the floor if larger, and deleting raises
    // the floor first (see the module docs). Nothing in the file changes; the version keeps
    // out a wemp of schema 3, which would take the floor for the next id and issue ids again.
    "",
];

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
