//! Access tokens and the refresh lease in Redis.

use std::sync::LazyLock;
use std::time::Duration;

use ::redis::Script;

use super::{Keys, RedisConnection, px, redis_err};
use crate::token::{CachedToken, Lease, TokenStore};
use crate::{Result, StoreError};

/// Stores a token unless the stored one expires later; returns the token now stored.
static PUT_TOKEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local cur = redis.call('HMGET', KEYS[1], 'v', 'e')
          if cur[1] and cur[2] and tonumber(cur[2]) > tonumber(ARGV[2]) then return cur end
          redis.call('HSET', KEYS[1], 'v', ARGV[1], 'e', ARGV[2])
          return {ARGV[1], ARGV[2]}",
    )
});

/// Deletes the stored token only if its value is the failed one.
static INVALIDATE_TOKEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('HGET', KEYS[1], 'v') == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
          return 0",
    )
});

/// Deletes a key only if it still holds this value (a lease's fence).
static COMPARE_AND_DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
          return 0",
    )
});

/// Extends a key's expiry only if it still holds this value (a lease's fence).
static COMPARE_AND_PEXPIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
          return 0",
    )
});

/// Access tokens and the refresh lease in Redis, shared by every instance using the same
/// prefix.
///
/// A token is a hash (`v`, `e`) written by a Lua script that keeps the later expiry;
/// invalidation compares the value in the same script. The lease is `SET NX PX` of a random
/// 128-bit fence, renewed by a compare-and-pexpire script and released by a
/// compare-and-delete script, so a holder whose lease expired can neither extend nor release
/// its successor's.
#[derive(Clone, Debug)]
pub struct RedisTokenStore {
    keys: Keys,
}

impl RedisTokenStore {
    /// A store over `conn` (a [`ConnectionManager`](::redis::aio::ConnectionManager) or a [`RedisConnection`]) with every
    /// key under `prefix`.
    pub fn new(conn: impl Into<RedisConnection>, prefix: impl Into<String>) -> Self {
        Self { keys: Keys { conn: conn.into(), prefix: prefix.into() } }
    }
}

fn parse_token(value: String, expires: &str) -> Result<CachedToken> {
    let expires_at_ms = expires
        .parse()
        .map_err(|e| StoreError::backend("redis", format!("stored token expiry {expires:?}: {e}")))?;
    Ok(CachedToken { value: value.into(), expires_at_ms })
}

#[async_trait::async_trait]
impl TokenStore for RedisTokenStore {
    async fn get(&self, key: &str) -> Result<Option<CachedToken>> {
        let (value, expires): (Option<String>, Option<String>) = ::redis::cmd("HMGET")
            .arg(self.keys.key("token", key))
            .arg("v")
            .arg("e")
            .query_async(&mut self.keys.conn().await?)
            .await
            .map_err(redis_err)?;
        match (value, expires) {
            (Some(v), Some(e)) => parse_token(v, &e).map(Some),
            _ => Ok(None),
        }
    }

    async fn put(&self, key: &str, token: &CachedToken) -> Result<CachedToken> {
        let (value, expires): (String, String) = PUT_TOKEN
            .key(self.keys.key("token", key))
            .arg(token.value.expose())
            .arg(token.expires_at_ms)
            .invoke_async(&mut self.keys.conn().await?)
            .await
            .map_err(redis_err)?;
        parse_token(value, &expires)
    }

    async fn invalidate(&self, key: &str, failed: &str) -> Result<bool> {
        let n: i64 = INVALIDATE_TOKEN
            .key(self.keys.key("token", key))
            .arg(failed)
            .invoke_async(&mut self.keys.conn().await?)
            .await
            .map_err(redis_err)?;
        Ok(n == 1)
    }

    async fn try_lease(&self, key: &str, ttl: Duration) -> Result<Option<Lease>> {
        let fence = format!("{:032x}", rand::random::<u128>());
        let set: Option<String> = ::redis::cmd("SET")
            .arg(self.keys.key("lease", key))
            .arg(&fence)
            .arg("NX")
            .arg("PX")
            .arg(px(ttl))
            .query_async(&mut self.keys.conn().await?)
            .await
            .map_err(redis_err)?;
        Ok(set.map(|_| Lease { fence }))
    }

    async fn release_lease(&self, key: &str, lease: &Lease) -> Result<()> {
        COMPARE_AND_DELETE
            .key(self.keys.key("lease", key))
            .arg(&lease.fence)
            .invoke_async::<i64>(&mut self.keys.conn().await?)
            .await
            .map(drop)
            .map_err(redis_err)
    }

    async fn renew_lease(&self, key: &str, lease: &Lease, ttl: Duration) -> Result<bool> {
        let n: i64 = COMPARE_AND_PEXPIRE
            .key(self.keys.key("lease", key))
            .arg(&lease.fence)
            .arg(px(ttl))
            .invoke_async(&mut self.keys.conn().await?)
            .await
            .map_err(redis_err)?;
        Ok(n == 1)
    }
}
