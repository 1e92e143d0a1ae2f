//! Sessions in Redis.

use std::sync::LazyLock;
use std::time::Duration;

use ::redis::{AsyncCommands, Script};

use super::{Keys, RedisConnection, px, redis_err};
use crate::session::{SessionStore, Versioned};
use crate::{Result, StoreError};

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
    /// A store over `conn` (a [`ConnectionManager`](::redis::aio::ConnectionManager) or a [`RedisConnection`]) with every
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
