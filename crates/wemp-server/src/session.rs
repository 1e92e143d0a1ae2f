//! Conversation sessions in handlers: a typed value per (appid, OpenID), kept in a
//! [`SessionStore`] with optimistic concurrency.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wemp_store::{SessionStore, StoreError};

use crate::Inbound;
use crate::extract::{ExtractError, FromInbound};

/// The session settings of a service.
pub(crate) struct SessionConfig {
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) ttl: Duration,
    pub(crate) retries: u32,
}

/// One delivery's way to its user's session: the store and the key.
#[derive(Clone)]
pub(crate) struct SessionSlot {
    pub(crate) config: Arc<SessionConfig>,
    pub(crate) key: Arc<str>,
}

/// A session operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The service has no session store
    /// ([`crate::WechatServiceBuilder::session_store`]).
    #[error("no session store configured: add one with WechatService::builder().session_store(..)")]
    NotConfigured,
    /// Other writers kept winning: the update was tried this many times and not applied.
    #[error("session {key} changed under every one of {attempts} tries; update not applied")]
    Conflict {
        /// The session key (`<appid>:<openid>`).
        key: String,
        /// How many times the update was tried.
        attempts: u32,
    },
    /// A write named a version that is no longer the stored one ([`Session::save`]).
    #[error(transparent)]
    Stale(StoreError),
    /// The store failed.
    #[error("session store failed: {0}")]
    Store(#[source] StoreError),
    /// The stored value does not decode as the session type (or the value does not encode).
    #[error("session value does not (de)serialize: {0}")]
    Codec(#[from] serde_json::Error),
}

impl From<StoreError> for SessionError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => Self::Stale(e),
            StoreError::Codec(c) => Self::Codec(c),
            other => Self::Store(other),
        }
    }
}

/// The session of the user who sent the message, typed as `T` (any serde type), under the
/// key `<appid>:<openid>`.
///
/// Get one with [`crate::Ctx::session`] or as a handler argument. Writes are optimistic:
/// [`Session::update`] reads, applies a change and writes back naming the version it read;
/// when another delivery (on this instance or another one sharing the store) wrote in
/// between, it reads again and re-applies the change, up to the configured number of tries
/// ([`crate::WechatServiceBuilder::session_retries`]), then reports
/// [`SessionError::Conflict`]. Nothing is lost silently.
///
/// ```
/// use wemp_server::{Reply, Session};
/// #[derive(Default, serde::Serialize, serde::Deserialize)]
/// struct Cart { items: Vec<String> }
///
/// async fn add(session: Session<Cart>) -> Result<Reply, wemp_server::SessionError> {
///     let n = session.update(|cart| { cart.items.push("tea".into()); cart.items.len() }).await?;
///     Ok(Reply::text(format!("{n} items in your cart")))
/// }
/// ```
pub struct Session<T> {
    slot: Option<SessionSlot>,
    _value: PhantomData<fn() -> T>,
}

impl<T> Clone for Session<T> {
    fn clone(&self) -> Self {
        Self { slot: self.slot.clone(), _value: PhantomData }
    }
}

impl<T> std::fmt::Debug for Session<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("key", &self.slot.as_ref().map(|s| &*s.key)).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SessionSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSlot").field("key", &self.key).finish_non_exhaustive()
    }
}

impl<T> Session<T>
where
    T: Serialize + DeserializeOwned + Send,
{
    pub(crate) fn new(slot: Option<SessionSlot>) -> Self {
        Self { slot, _value: PhantomData }
    }

    fn slot(&self) -> Result<&SessionSlot, SessionError> {
        self.slot.as_ref().ok_or(SessionError::NotConfigured)
    }

    /// The store key, `<appid>:<openid>` (`None` without a session store).
    pub fn key(&self) -> Option<&str> {
        self.slot.as_ref().map(|s| &*s.key)
    }

    /// The stored value and its version, if there is a session (and it has not expired).
    ///
    /// # Errors
    /// [`SessionError::NotConfigured`], [`SessionError::Store`], [`SessionError::Codec`].
    pub async fn load(&self) -> Result<Option<(T, u64)>, SessionError> {
        let slot = self.slot()?;
        match slot.config.store.load(&slot.key).await? {
            Some(v) => Ok(Some((serde_json::from_value(v.value)?, v.version))),
            None => Ok(None),
        }
    }

    /// The stored value, or `T::default()` when there is none.
    ///
    /// # Errors
    /// As [`Session::load`].
    pub async fn get(&self) -> Result<T, SessionError>
    where
        T: Default,
    {
        Ok(self.load().await?.map(|(v, _)| v).unwrap_or_default())
    }

    /// Writes `value` if the stored version is still `expected` (0: no session yet);
    /// returns the new version. The session expires the configured TTL after this write.
    ///
    /// # Errors
    /// [`SessionError::Stale`] when someone else wrote since `expected`; as
    /// [`Session::load`] otherwise.
    pub async fn save(&self, value: &T, expected: u64) -> Result<u64, SessionError> {
        let slot = self.slot()?;
        let json = serde_json::to_value(value)?;
        Ok(slot.config.store.save(&slot.key, &json, expected, slot.config.ttl).await?)
    }

    /// Reads the session (or `T::default()`), applies `change` and writes it back; on a
    /// conflicting write, reads again and re-applies `change` (so it must be safe to run
    /// more than once). Returns what `change` returned on the try that was written.
    ///
    /// # Errors
    /// [`SessionError::Conflict`] when every try lost to another writer; as
    /// [`Session::load`] otherwise.
    pub async fn update<R>(&self, mut change: impl FnMut(&mut T) -> R + Send) -> Result<R, SessionError>
    where
        T: Default,
    {
        let slot = self.slot()?;
        let attempts = slot.config.retries.saturating_add(1);
        for attempt in 0..attempts {
            let (mut value, version) = self.load().await?.unwrap_or_else(|| (T::default(), 0));
            let out = change(&mut value);
            match self.save(&value, version).await {
                Ok(_) => return Ok(out),
                Err(SessionError::Stale(_)) => {
                    // Spread the retries of competing writers apart.
                    let cap = 1u64 << attempt.min(5);
                    let pause = Duration::from_micros(rand::random_range(0..cap * 1000));
                    tokio::time::sleep(pause).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(SessionError::Conflict { key: slot.key.to_string(), attempts })
    }

    /// Removes the session.
    ///
    /// # Errors
    /// [`SessionError::NotConfigured`], [`SessionError::Store`].
    pub async fn clear(&self) -> Result<(), SessionError> {
        let slot = self.slot()?;
        Ok(slot.config.store.delete(&slot.key).await?)
    }
}

/// The sender's session; operations fail with [`SessionError::NotConfigured`] when the
/// service has no session store.
impl<T> FromInbound for Session<T>
where
    T: Serialize + DeserializeOwned + Send,
{
    fn from_inbound(inbound: &Inbound) -> Result<Self, ExtractError> {
        Ok(inbound.ctx().session())
    }
}
