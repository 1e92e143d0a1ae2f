//! An Open Platform's (第三方平台) persistent state: the latest `component_verify_ticket`
//! and the accounts that authorized the platform (their refresh tokens above all — losing
//! one means asking the customer to authorize again).
//!
//! [`ComponentState`] is a typed layer over any [`SessionStore`] (memory, SQLite,
//! PostgreSQL, Redis), so it lives where the server's sessions live, survives restarts and
//! is shared by every instance using that store. Each value is a versioned document:
//! concurrent writers never lose each other's updates (a write that loses the race re-reads
//! and applies its change again). The ticket and the authorizers never expire ([`KEEP`]).
//!
//! The authorization codes exchanged lately are kept too, with the authorizer each became
//! ([`ComponentState::claim_code`]), for [`CODE_KEPT`]: WeChat exchanges a code once, and
//! the `authorized` push and the authorization page's redirect carry the same code, often to
//! different instances.
//!
//! Keys, for a component appid `C`: `wemp:component:C:ticket`,
//! `wemp:component:C:authorizers` (the list of authorizer appids),
//! `wemp:component:C:authorizer:<appid>` (one authorizer) and
//! `wemp:component:C:code:<sha1 of the code>` (one authorization code; the code itself is
//! not stored).
//!
//! ```
//! use std::sync::Arc;
//! use wemp_proto::Secret;
//! use wemp_store::component::{Authorizer, ComponentState};
//! use wemp_store::memory::MemorySessionStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> wemp_store::Result<()> {
//! let state = ComponentState::new(Arc::new(MemorySessionStore::new()), "wxcomponent");
//! state.save_ticket(&Secret::new("ticket@@@1"), 1_700_000_000_000).await?;
//! assert_eq!(state.ticket().await?.unwrap().ticket.expose(), "ticket@@@1");
//!
//! state.save_authorizer(Authorizer::new("wxa", Secret::new("refreshtoken@@@a"), vec![1, 15], 1_700_000_000_000)).await?;
//! assert_eq!(state.authorizers().await?.len(), 1);
//! assert!(state.remove_authorizer("wxa").await?);
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wemp_proto::Secret;

use crate::{Result, SessionStore, StoreError, Versioned};

/// How long the documents are kept: 100 years, i.e. until removed (every backend stores
/// such an expiry as it is).
pub const KEEP: Duration = Duration::from_secs(100 * 365 * 86_400);

/// How long the outcome of an exchanged authorization code is kept: WeChat's codes are
/// valid for an hour.
pub const CODE_KEPT: Duration = Duration::from_secs(3600);

/// How often a write that lost an optimistic-concurrency race is re-applied before the
/// conflict is reported.
const WRITE_TRIES: usize = 16;

/// The latest `component_verify_ticket` and when it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyTicket {
    /// The ticket. `Debug` shows only its length.
    pub ticket: Secret,
    /// When it arrived, ms since the Unix epoch.
    pub received_at_ms: i64,
}

/// An account that authorized the platform.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Authorizer {
    /// The authorizer's appid.
    pub appid: String,
    /// `authorizer_refresh_token`: what `api_authorizer_token` needs. `Debug` hides it.
    pub refresh_token: Secret,
    /// The function scope ids granted (`func_info[].funcscope_category.id`).
    pub func_scopes: Vec<u32>,
    /// `nick_name` from `api_get_authorizer_info`, when fetched.
    pub nick_name: Option<String>,
    /// `user_name` (the original id, `gh_…`), when fetched.
    pub user_name: Option<String>,
    /// `principal_name` (the subject: company or person), when fetched.
    pub principal_name: Option<String>,
    /// When the platform was first authorized, ms since the Unix epoch.
    pub authorized_at_ms: i64,
    /// When this record last changed, ms since the Unix epoch.
    pub updated_at_ms: i64,
}

impl Authorizer {
    /// A newly authorized account (no profile yet).
    pub fn new(appid: impl Into<String>, refresh_token: Secret, func_scopes: Vec<u32>, now_ms: i64) -> Self {
        Self {
            appid: appid.into(),
            refresh_token,
            func_scopes,
            nick_name: None,
            user_name: None,
            principal_name: None,
            authorized_at_ms: now_ms,
            updated_at_ms: now_ms,
        }
    }
}

/// What [`ComponentState::claim_code`] found for an authorization code.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeClaim {
    /// Nobody exchanged the code nor is exchanging it: the caller holds it now (for the
    /// lease it asked for), exchanges it, then records the outcome with
    /// [`ComponentState::code_exchanged`] or gives it up with [`ComponentState::release_code`].
    Claimed,
    /// Another caller (this instance or another) holds it and is exchanging it now.
    Exchanging,
    /// It was exchanged: the authorizer appid it became.
    Exchanged(String),
}

/// The profile fields [`ComponentState::set_profile`] records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// `nick_name`.
    pub nick_name: Option<String>,
    /// `user_name` (`gh_…`).
    pub user_name: Option<String>,
    /// `principal_name`.
    pub principal_name: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct TicketDoc {
    ticket: String,
    received_at_ms: i64,
}

/// An authorization code: held while `authorizer_appid` is `None`, exchanged once it is set.
#[derive(Serialize, Deserialize)]
struct CodeDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    authorizer_appid: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct AuthorizerDoc {
    appid: String,
    refresh_token: String,
    #[serde(default)]
    func_scopes: Vec<u32>,
    #[serde(default)]
    nick_name: Option<String>,
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default)]
    principal_name: Option<String>,
    authorized_at_ms: i64,
    updated_at_ms: i64,
}

impl From<&Authorizer> for AuthorizerDoc {
    fn from(a: &Authorizer) -> Self {
        Self {
            appid: a.appid.clone(),
            refresh_token: a.refresh_token.expose().to_owned(),
            func_scopes: a.func_scopes.clone(),
            nick_name: a.nick_name.clone(),
            user_name: a.user_name.clone(),
            principal_name: a.principal_name.clone(),
            authorized_at_ms: a.authorized_at_ms,
            updated_at_ms: a.updated_at_ms,
        }
    }
}

impl From<AuthorizerDoc> for Authorizer {
    fn from(d: AuthorizerDoc) -> Self {
        Self {
            appid: d.appid,
            refresh_token: Secret::new(d.refresh_token),
            func_scopes: d.func_scopes,
            nick_name: d.nick_name,
            user_name: d.user_name,
            principal_name: d.principal_name,
            authorized_at_ms: d.authorized_at_ms,
            updated_at_ms: d.updated_at_ms,
        }
    }
}

/// One component's state in a [`SessionStore`]. Cheap to clone.
#[derive(Clone)]
pub struct ComponentState {
    store: Arc<dyn SessionStore>,
    component_appid: String,
}

impl std::fmt::Debug for ComponentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentState")
            .field("component_appid", &self.component_appid)
            .finish_non_exhaustive()
    }
}

impl ComponentState {
    /// The state of the component `component_appid` in `store`.
    pub fn new(store: Arc<dyn SessionStore>, component_appid: impl Into<String>) -> Self {
        Self { store, component_appid: component_appid.into() }
    }

    /// The component appid.
    pub fn component_appid(&self) -> &str {
        &self.component_appid
    }

    fn key(&self, what: &str) -> String {
        format!("wemp:component:{}:{what}", self.component_appid)
    }

    fn authorizer_key(&self, appid: &str) -> String {
        self.key(&format!("authorizer:{appid}"))
    }

    /// The key of an authorization code: its digest, so the store never holds a usable code.
    fn code_key(&self, code: &str) -> String {
        self.key(&format!("code:{}", wemp_proto::signature::sha1_sorted(&mut [code])))
    }

    /// Reads `key`, lets `change` compute the new value from the current one (`None`: no
    /// write), writes it if nobody wrote meanwhile, and otherwise starts over.
    async fn modify<T>(
        &self,
        key: &str,
        change: impl FnMut(Option<&serde_json::Value>) -> Result<(Option<serde_json::Value>, T)>,
    ) -> Result<T> {
        self.modify_for(key, KEEP, change).await
    }

    /// [`Self::modify`], the written value expiring `ttl` after the write.
    async fn modify_for<T>(
        &self,
        key: &str,
        ttl: Duration,
        mut change: impl FnMut(Option<&serde_json::Value>) -> Result<(Option<serde_json::Value>, T)>,
    ) -> Result<T> {
        let mut tries = 0;
        loop {
            let current = self.store.load(key).await?;
            let (expected, value) = match &current {
                Some(Versioned { value, version }) => (*version, Some(value)),
                None => (0, None),
            };
            let (next, out) = change(value)?;
            let Some(next) = next else { return Ok(out) };
            match self.store.save(key, &next, expected, ttl).await {
                Ok(_) => return Ok(out),
                Err(StoreError::Conflict { .. }) if tries + 1 < WRITE_TRIES => tries += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Records a ticket that arrived at `received_at_ms`, unless a later one is stored
    /// already (pushes from two instances may land out of order). Returns whether it was
    /// stored.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn save_ticket(&self, ticket: &Secret, received_at_ms: i64) -> Result<bool> {
        let doc = serde_json::to_value(TicketDoc { ticket: ticket.expose().to_owned(), received_at_ms })?;
        self.modify(&self.key("ticket"), |current| {
            let newer = match current {
                Some(v) => serde_json::from_value::<TicketDoc>(v.clone())?.received_at_ms,
                None => i64::MIN,
            };
            Ok(if received_at_ms >= newer { (Some(doc.clone()), true) } else { (None, false) })
        })
        .await
    }

    /// The latest ticket, if one ever arrived.
    ///
    /// # Errors
    /// When the store fails or the stored value does not decode.
    pub async fn ticket(&self) -> Result<Option<VerifyTicket>> {
        let Some(v) = self.store.load(&self.key("ticket")).await? else { return Ok(None) };
        let doc: TicketDoc = serde_json::from_value(v.value)?;
        Ok(Some(VerifyTicket { ticket: Secret::new(doc.ticket), received_at_ms: doc.received_at_ms }))
    }

    /// Stores an authorizer (a new authorization, or `updateauthorized`): its refresh
    /// token and scopes replace the stored ones; the profile fields it does not know and
    /// the first `authorized_at_ms` are kept.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn save_authorizer(&self, authorizer: Authorizer) -> Result<()> {
        let key = self.authorizer_key(&authorizer.appid);
        self.modify(&key, |current| {
            let mut next = AuthorizerDoc::from(&authorizer);
            if let Some(v) = current {
                let old: AuthorizerDoc = serde_json::from_value(v.clone())?;
                next.authorized_at_ms = old.authorized_at_ms.min(next.authorized_at_ms);
                next.nick_name = next.nick_name.or(old.nick_name);
                next.user_name = next.user_name.or(old.user_name);
                next.principal_name = next.principal_name.or(old.principal_name);
            }
            Ok((Some(serde_json::to_value(next)?), ()))
        })
        .await?;
        let appid = authorizer.appid.clone();
        self.modify(&self.key("authorizers"), |current| {
            let mut list: Vec<String> =
                current.map(|v| serde_json::from_value(v.clone())).transpose()?.unwrap_or_default();
            if list.contains(&appid) {
                return Ok((None, ()));
            }
            list.push(appid.clone());
            Ok((Some(serde_json::to_value(list)?), ()))
        })
        .await
    }

    /// The authorizer `appid`, if it authorized the platform.
    ///
    /// # Errors
    /// When the store fails or the stored value does not decode.
    pub async fn authorizer(&self, appid: &str) -> Result<Option<Authorizer>> {
        let Some(v) = self.store.load(&self.authorizer_key(appid)).await? else { return Ok(None) };
        Ok(Some(serde_json::from_value::<AuthorizerDoc>(v.value)?.into()))
    }

    /// Every authorizer, in the order they first authorized.
    ///
    /// # Errors
    /// When the store fails or a stored value does not decode.
    pub async fn authorizers(&self) -> Result<Vec<Authorizer>> {
        let Some(list) = self.store.load(&self.key("authorizers")).await? else { return Ok(Vec::new()) };
        let appids: Vec<String> = serde_json::from_value(list.value)?;
        let mut out = Vec::with_capacity(appids.len());
        for appid in appids {
            // Removed between the two reads: not an authorizer any more.
            if let Some(a) = self.authorizer(&appid).await? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Replaces the refresh token of `appid` (`api_authorizer_token` returned a new one).
    /// Returns `false` when the authorizer is not stored (it was removed meanwhile).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn set_refresh_token(&self, appid: &str, refresh_token: &Secret, now_ms: i64) -> Result<bool> {
        self.update(appid, |doc| {
            doc.refresh_token = refresh_token.expose().to_owned();
            doc.updated_at_ms = now_ms;
        })
        .await
    }

    /// Records the profile from `api_get_authorizer_info`. Returns `false` when the
    /// authorizer is not stored.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn set_profile(&self, appid: &str, profile: &Profile, now_ms: i64) -> Result<bool> {
        self.update(appid, |doc| {
            doc.nick_name.clone_from(&profile.nick_name);
            doc.user_name.clone_from(&profile.user_name);
            doc.principal_name.clone_from(&profile.principal_name);
            doc.updated_at_ms = now_ms;
        })
        .await
    }

    async fn update(&self, appid: &str, change: impl Fn(&mut AuthorizerDoc)) -> Result<bool> {
        self.modify(&self.authorizer_key(appid), |current| {
            let Some(v) = current else { return Ok((None, false)) };
            let mut doc: AuthorizerDoc = serde_json::from_value(v.clone())?;
            change(&mut doc);
            Ok((Some(serde_json::to_value(doc)?), true))
        })
        .await
    }

    /// Claims the authorization code `code` for exchanging it (`api_query_auth`), unless it
    /// was exchanged lately — then the authorizer it became is returned — or someone is
    /// exchanging it now. A claim lapses after `lease` (its holder died or hangs), so the
    /// code can be claimed again.
    ///
    /// # Errors
    /// When the store fails or the stored value does not decode.
    pub async fn claim_code(&self, code: &str, lease: Duration) -> Result<CodeClaim> {
        let key = self.code_key(code);
        let held = serde_json::to_value(CodeDoc { authorizer_appid: None })?;
        let mut tries = 0;
        loop {
            if let Some(v) = self.store.load(&key).await? {
                let doc: CodeDoc = serde_json::from_value(v.value)?;
                return Ok(doc.authorizer_appid.map_or(CodeClaim::Exchanging, CodeClaim::Exchanged));
            }
            match self.store.save(&key, &held, 0, lease).await {
                Ok(_) => return Ok(CodeClaim::Claimed),
                // Claimed or exchanged meanwhile: read what it is now.
                Err(StoreError::Conflict { .. }) if tries + 1 < WRITE_TRIES => tries += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Records that `code` was exchanged and became the authorizer `appid`, for
    /// [`CODE_KEPT`]: [`ComponentState::claim_code`] answers with it from now on.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn code_exchanged(&self, code: &str, appid: &str) -> Result<()> {
        let doc = serde_json::to_value(CodeDoc { authorizer_appid: Some(appid.to_owned()) })?;
        self.modify_for(&self.code_key(code), CODE_KEPT, |_| Ok((Some(doc.clone()), ()))).await
    }

    /// Gives up a claim on `code` (the exchange failed): the next
    /// [`ComponentState::claim_code`] claims it again.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn release_code(&self, code: &str) -> Result<()> {
        let key = self.code_key(code);
        let Some(v) = self.store.load(&key).await? else { return Ok(()) };
        // An exchanged code's outcome stays.
        if serde_json::from_value::<CodeDoc>(v.value)?.authorizer_appid.is_none() {
            self.store.delete(&key).await?;
        }
        Ok(())
    }

    /// Forgets the authorizer (`unauthorized`). Returns whether it was stored.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn remove_authorizer(&self, appid: &str) -> Result<bool> {
        let existed = self.store.load(&self.authorizer_key(appid)).await?.is_some();
        self.store.delete(&self.authorizer_key(appid)).await?;
        let listed = self
            .modify(&self.key("authorizers"), |current| {
                let Some(v) = current else { return Ok((None, false)) };
                let mut list: Vec<String> = serde_json::from_value(v.clone())?;
                let before = list.len();
                list.retain(|a| a != appid);
                if list.len() == before {
                    return Ok((None, false));
                }
                Ok((Some(serde_json::to_value(list)?), true))
            })
            .await?;
        Ok(existed || listed)
    }
}
