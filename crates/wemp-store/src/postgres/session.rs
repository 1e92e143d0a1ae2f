//! Sessions in PostgreSQL.

use std::time::Duration;

use super::{PostgresDatabase, pg_err};
use crate::session::{SessionStore, Versioned};
use crate::{Result, StoreError, now_ms, ttl_ms};

/// Sessions in PostgreSQL, with versions and expiry; each save is one conditional
/// statement.
#[derive(Clone, Debug)]
pub struct PostgresSessionStore {
    pub(super) db: PostgresDatabase,
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
