//! Sessions in SQLite.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::{SqliteDatabase, sql_err};
use crate::session::{SessionStore, Versioned};
use crate::{Result, StoreError, now_ms, ttl_ms};

/// Expired sessions are swept after this many writes through one handle.
const SWEEP_EVERY: u64 = 256;

/// Sessions in a SQLite file, with versions and expiry.
#[derive(Clone, Debug)]
pub struct SqliteSessionStore {
    pub(super) db: SqliteDatabase,
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
