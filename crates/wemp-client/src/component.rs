//! Open Platform third-party platforms (第三方平台, "component"): the component token, the
//! authorization flow, and a [`Client`] for each account that authorized the platform.
//!
//! A [`ComponentClient`] holds the platform's appid and AppSecret and its
//! [`ComponentState`] (the stored verify ticket and authorizers; see
//! `wemp_store::component`). Its own calls take the `component_access_token`, fetched with
//! `api_component_token` from the stored ticket through the same token engine as an
//! account's access_token: cached in a shared [`TokenStore`](crate::TokenStore), refreshed by one process at a
//! time, compare-and-invalidated and retried once when WeChat refuses it.
//!
//! The flow:
//! 1. WeChat pushes `component_verify_ticket` every 10 minutes; the server stores it
//!    ([`ComponentState::save_ticket`]). Until the first one arrives there is no component
//!    token ([`Error::NoVerifyTicket`]).
//! 2. [`ComponentClient::pre_auth_code`], then send the account's administrator to
//!    [`ComponentClient::authorize_url`] (PC) or [`ComponentClient::mobile_authorize_url`].
//! 3. WeChat redirects back with `auth_code` and pushes `authorized` with the same code:
//!    [`ComponentClient::query_auth`] stores the authorizer's refresh token.
//! 4. [`ComponentClient::client_for`] is a normal [`Client`] for that account whose
//!    access_token comes from `api_authorizer_token` (a new refresh token, when WeChat returns
//!    one, replaces the stored one).
//!
//! Official reference: <https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/getting_started/how_to_read.html>

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::{Value, json};
use wemp_proto::Secret;
use wemp_store::CachedToken;
use wemp_store::component::{Authorizer, ComponentState, Profile};

use crate::client::{Client, ClientBuilder, decode, token_key};
use crate::error::{Error, Result};
use crate::token::{AccessToken, FetchContext, FetchedToken, TokenProvider, send_for_token};

/// Which accounts the authorization page offers (`auth_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthType {
    /// `1`: Official Accounts only.
    OfficialAccount,
    /// `2`: Mini Programs only.
    MiniProgram,
    /// `3`: both.
    Both,
    /// Another value WeChat documents (for example 6: every kind of account).
    Other(u8),
}

impl AuthType {
    /// The `auth_type` value.
    pub const fn code(self) -> u8 {
        match self {
            Self::OfficialAccount => 1,
            Self::MiniProgram => 2,
            Self::Both => 3,
            Self::Other(c) => c,
        }
    }
}

/// A pre-authorization code, for one authorization page (valid `expires_in` seconds).
/// `Debug` hides the code (a [`Secret`]).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PreAuthCode {
    /// The code.
    #[serde(deserialize_with = "wemp_proto::secret_serde::deserialize")]
    pub pre_auth_code: Secret,
    /// Lifetime in seconds.
    pub expires_in: u64,
}

/// An authorization, as `api_query_auth` reports it (its refresh token is stored, not
/// returned).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Authorization {
    /// The account that authorized the platform.
    pub authorizer_appid: String,
    /// The function scope ids it granted.
    pub func_scopes: Vec<u32>,
}

/// An authorizer's details from `api_get_authorizer_info`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct AuthorizerInfo {
    /// The account's appid.
    pub appid: String,
    /// `nick_name`.
    pub nick_name: Option<String>,
    /// `user_name`: the original id (`gh_…`).
    pub user_name: Option<String>,
    /// `principal_name`: the company or person behind the account.
    pub principal_name: Option<String>,
    /// `alias`: the WeChat id, if set.
    pub alias: Option<String>,
    /// `service_type_info.id` (Official Accounts: 0/1 subscription, 2 service account).
    pub service_type: Option<i64>,
    /// `verify_type_info.id` (-1: not verified).
    pub verify_type: Option<i64>,
    /// The function scope ids granted.
    pub func_scopes: Vec<u32>,
    /// The whole answer (with `MiniProgramInfo`, `business_info` …), without the refresh token.
    pub raw: Value,
}

/// Builds a [`ComponentClient`].
pub struct ComponentClientBuilder {
    appid: String,
    secret: Secret,
    state: ComponentState,
    push_url: String,
    client: ClientBuilder,
}

impl std::fmt::Debug for ComponentClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentClientBuilder").field("appid", &self.appid).finish_non_exhaustive()
    }
}

impl ComponentClientBuilder {
    /// Sets up the clients as any [`Client`]: the token store (give every process the same
    /// one, so that one of them refreshes each token), base URLs, clock, timeouts, token
    /// and retry policies. The component's own client and each authorizer's share these;
    /// the token provider is always the component's.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use wemp_client::{component::ComponentClient, MemoryTokenStore};
    /// # use wemp_store::{ComponentState, memory::MemorySessionStore};
    /// # let state = ComponentState::new(Arc::new(MemorySessionStore::new()), "wxcomp");
    /// let c = ComponentClient::builder("wxcomp", "secret", state)
    ///     .client(|b| b.store(Arc::new(MemoryTokenStore::new())).base_url("http://127.0.0.1:9"))
    ///     .build()?;
    /// # Ok::<(), wemp_client::Error>(())
    /// ```
    pub fn client(mut self, configure: impl FnOnce(ClientBuilder) -> ClientBuilder) -> Self {
        self.client = configure(self.client);
        self
    }

    /// Where WeChat pushes the ticket (the 授权事件接收 URL), named in
    /// [`Error::NoVerifyTicket`] (default: "the authorization event URL").
    pub fn push_url(mut self, url: impl Into<String>) -> Self {
        self.push_url = url.into();
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`Error::Http`] when the HTTP client cannot be built.
    pub fn build(self) -> Result<ComponentClient> {
        let provider = ComponentToken {
            appid: self.appid.clone(),
            secret: self.secret,
            state: self.state.clone(),
            push_url: self.push_url,
        };
        let api = self
            .client
            .token_provider(provider)
            .token_param("component_access_token")
            .token_owner(format!("component:{}", self.appid))
            .build()?;
        Ok(ComponentClient {
            inner: Arc::new(Inner { api, appid: self.appid, state: self.state, clients: Mutex::default() }),
        })
    }
}

/// An Open Platform third-party platform's client. Cheap to clone; clones share the
/// token caches and the authorizers' clients.
#[derive(Clone)]
pub struct ComponentClient {
    inner: Arc<Inner>,
}

struct Inner {
    /// The client of the component's own calls (token: component_access_token).
    api: Client,
    appid: String,
    state: ComponentState,
    /// One client per authorizer, so that callers in this process share its single flight.
    clients: Mutex<HashMap<String, Client>>,
}

impl std::fmt::Debug for ComponentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentClient").field("appid", &self.inner.appid).finish_non_exhaustive()
    }
}

/// `api_component_token` with the stored verify ticket.
struct ComponentToken {
    appid: String,
    secret: Secret,
    state: ComponentState,
    push_url: String,
}

#[async_trait::async_trait]
impl TokenProvider for ComponentToken {
    async fn fetch(&self, ctx: &FetchContext<'_>) -> Result<FetchedToken> {
        const PATH: &str = "/cgi-bin/component/api_component_token";
        let Some(ticket) = self.state.ticket().await? else {
            return Err(Error::NoVerifyTicket {
                component_appid: self.appid.clone(),
                push_url: self.push_url.clone(),
            });
        };
        let body = json!({
            "component_appid": self.appid,
            "component_appsecret": self.secret.expose(),
            "component_verify_ticket": ticket.ticket.expose(),
        });
        let req = ctx.http.post(format!("{}{PATH}", ctx.base_url)).json(&body);
        send_for_token(PATH, req, "component_access_token").await
    }
}

/// `api_authorizer_token` with the authorizer's stored refresh token.
struct AuthorizerToken {
    component: Client,
    state: ComponentState,
    authorizer_appid: String,
}

#[async_trait::async_trait]
impl TokenProvider for AuthorizerToken {
    async fn fetch(&self, _ctx: &FetchContext<'_>) -> Result<FetchedToken> {
        const PATH: &str = "/cgi-bin/component/api_authorizer_token";
        #[derive(Deserialize)]
        struct Answer {
            authorizer_access_token: String,
            expires_in: u64,
            #[serde(default)]
            authorizer_refresh_token: Option<String>,
        }
        let Some(authorizer) = self.state.authorizer(&self.authorizer_appid).await? else {
            return Err(Error::NotAuthorized {
                component_appid: self.state.component_appid().to_owned(),
                authorizer_appid: self.authorizer_appid.clone(),
            });
        };
        let body = json!({
            "component_appid": self.state.component_appid(),
            "authorizer_appid": self.authorizer_appid,
            "authorizer_refresh_token": authorizer.refresh_token.expose(),
        });
        let answer: Answer = self.component.post_json(PATH, &body).await?;
        if let Some(rotated) = answer.authorizer_refresh_token.filter(|r| !r.is_empty())
            && rotated != authorizer.refresh_token.expose()
        {
            let now = self.component.now_ms();
            self.state.set_refresh_token(&self.authorizer_appid, &Secret::new(rotated), now).await?;
        }
        Ok(FetchedToken {
            value: answer.authorizer_access_token.into(),
            expires_in: Duration::from_secs(answer.expires_in),
        })
    }
}

/// `func_info[].funcscope_category.id`.
fn func_scopes(func_info: Option<&Value>) -> Vec<u32> {
    func_info
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| f.pointer("/funcscope_category/id").and_then(Value::as_u64))
        .filter_map(|id| u32::try_from(id).ok())
        .collect()
}

impl ComponentClient {
    /// A builder for the third-party platform `component_appid` with its AppSecret and
    /// state.
    pub fn builder(
        component_appid: impl Into<String>,
        appsecret: impl Into<Secret>,
        state: ComponentState,
    ) -> ComponentClientBuilder {
        let appid = component_appid.into();
        ComponentClientBuilder {
            client: Client::builder(&appid),
            appid,
            secret: appsecret.into(),
            state,
            push_url: "the authorization event URL (授权事件接收 URL)".to_owned(),
        }
    }

    /// The component appid.
    pub fn appid(&self) -> &str {
        &self.inner.appid
    }

    /// The stored state (ticket, authorizers).
    pub fn state(&self) -> &ComponentState {
        &self.inner.state
    }

    /// The client of the component's own calls, whose token is the
    /// `component_access_token` (sent as `component_access_token=`): for component APIs
    /// not covered here, through [`Client::get`] and [`Client::post_json`].
    pub fn api(&self) -> &Client {
        &self.inner.api
    }

    /// The current component_access_token, fetching it (with the stored ticket) as needed.
    ///
    /// # Errors
    /// [`Error::NoVerifyTicket`] before the first ticket arrived; as
    /// [`Client::access_token`] otherwise.
    pub async fn component_token(&self) -> Result<AccessToken> {
        self.inner.api.access_token().await
    }

    /// How many component tokens this client fetched.
    pub fn token_fetches(&self) -> u64 {
        self.inner.api.token_fetches()
    }

    /// `api_create_preauthcode`: a code for one authorization page.
    ///
    /// # Errors
    /// As [`ComponentClient::component_token`] and the call.
    pub async fn pre_auth_code(&self) -> Result<PreAuthCode> {
        let body = json!({ "component_appid": self.inner.appid });
        self.inner.api.post_json("/cgi-bin/component/api_create_preauthcode", &body).await
    }

    fn page_query(&self, pre_auth_code: &str, redirect_uri: &str, auth_type: AuthType) -> String {
        format!(
            "component_appid={}&pre_auth_code={}&redirect_uri={}&auth_type={}",
            utf8_percent_encode(&self.inner.appid, NON_ALPHANUMERIC),
            utf8_percent_encode(pre_auth_code, NON_ALPHANUMERIC),
            utf8_percent_encode(redirect_uri, NON_ALPHANUMERIC),
            auth_type.code(),
        )
    }

    /// The PC authorization page (`mp.weixin.qq.com/cgi-bin/componentloginpage`): the
    /// administrator scans a QR code, and the browser returns to `redirect_uri` with
    /// `auth_code` and `expires_in`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use wemp_client::component::{AuthType, ComponentClient};
    /// use wemp_store::{ComponentState, memory::MemorySessionStore};
    /// let state = ComponentState::new(Arc::new(MemorySessionStore::new()), "wxcomp");
    /// let c = ComponentClient::builder("wxcomp", "secret", state).build()?;
    /// assert_eq!(
    ///     c.authorize_url("preauthcode@@@x", "https://example.com/cb", AuthType::OfficialAccount),
    ///     "https://mp.weixin.qq.com/cgi-bin/componentloginpage?component_appid=wxcomp\
    ///      &pre_auth_code=preauthcode%40%40%40x&redirect_uri=https%3A%2F%2Fexample%2Ecom%2Fcb&auth_type=1",
    /// );
    /// # Ok::<(), wemp_client::Error>(())
    /// ```
    pub fn authorize_url(&self, pre_auth_code: &str, redirect_uri: &str, auth_type: AuthType) -> String {
        format!(
            "{}/cgi-bin/componentloginpage?{}",
            self.inner.api.inner.mp_base,
            self.page_query(pre_auth_code, redirect_uri, auth_type)
        )
    }

    /// The mobile authorization page (opened inside WeChat:
    /// `open.weixin.qq.com/wxaopen/safe/bindcomponent`).
    pub fn mobile_authorize_url(
        &self,
        pre_auth_code: &str,
        redirect_uri: &str,
        auth_type: AuthType,
    ) -> String {
        format!(
            "{}/wxaopen/safe/bindcomponent?action=bindcomponent&no_scan=1&{}#wechat_redirect",
            self.inner.api.inner.open_base,
            self.page_query(pre_auth_code, redirect_uri, auth_type)
        )
    }

    /// `api_query_auth`: exchanges the authorization code (the redirect's `auth_code`, or
    /// the `authorized` push's `AuthorizationCode`) and stores the authorizer — its refresh
    /// token and scopes — in the [`ComponentState`]; the access token that came with it is
    /// put in the token store, so [`ComponentClient::client_for`] uses it at once.
    ///
    /// # Errors
    /// As [`ComponentClient::component_token`], the call, and the state's store.
    pub async fn query_auth(&self, authorization_code: &str) -> Result<Authorization> {
        const PATH: &str = "/cgi-bin/component/api_query_auth";
        let body = json!({ "component_appid": self.inner.appid, "authorization_code": authorization_code });
        let v: Value = self.inner.api.post_json(PATH, &body).await?;
        #[derive(Deserialize)]
        struct Info {
            authorizer_appid: String,
            #[serde(default)]
            authorizer_access_token: String,
            #[serde(default)]
            expires_in: u64,
            authorizer_refresh_token: String,
            #[serde(default)]
            func_info: Option<Value>,
        }
        let info: Info = decode(PATH, v.get("authorization_info").cloned().unwrap_or(Value::Null))?;
        let now = self.inner.api.now_ms();
        let scopes = func_scopes(info.func_info.as_ref());
        let authorizer = Authorizer::new(
            &info.authorizer_appid,
            Secret::new(info.authorizer_refresh_token),
            scopes.clone(),
            now,
        );
        self.inner.state.save_authorizer(authorizer).await?;
        if !info.authorizer_access_token.is_empty() && info.expires_in > 0 {
            let token = CachedToken {
                value: info.authorizer_access_token.into(),
                expires_at_ms: now
                    .saturating_add(i64::try_from(info.expires_in.saturating_mul(1000)).unwrap_or(i64::MAX)),
            };
            let store = self.inner.api.shared().store;
            store.put(&self.authorizer_token_key(&info.authorizer_appid), &token).await?;
        }
        Ok(Authorization { authorizer_appid: info.authorizer_appid, func_scopes: scopes })
    }

    /// `api_get_authorizer_info`: the authorizer's profile; its nick name, original id
    /// and principal are recorded in the state when the authorizer is stored.
    ///
    /// # Errors
    /// As [`ComponentClient::component_token`], the call, and the state's store.
    pub async fn authorizer_info(&self, authorizer_appid: &str) -> Result<AuthorizerInfo> {
        const PATH: &str = "/cgi-bin/component/api_get_authorizer_info";
        let body = json!({ "component_appid": self.inner.appid, "authorizer_appid": authorizer_appid });
        let mut raw: Value = self.inner.api.post_json(PATH, &body).await?;
        if let Some(auth) = raw.get_mut("authorization_info").and_then(Value::as_object_mut) {
            auth.remove("authorizer_refresh_token");
        }
        let info = raw.get("authorizer_info").cloned().unwrap_or(Value::Null);
        let text = |k: &str| info.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        let out = AuthorizerInfo {
            appid: authorizer_appid.to_owned(),
            nick_name: text("nick_name"),
            user_name: text("user_name"),
            principal_name: text("principal_name"),
            alias: text("alias"),
            service_type: info.pointer("/service_type_info/id").and_then(Value::as_i64),
            verify_type: info.pointer("/verify_type_info/id").and_then(Value::as_i64),
            func_scopes: func_scopes(raw.pointer("/authorization_info/func_info")),
            raw,
        };
        let profile = Profile {
            nick_name: out.nick_name.clone(),
            user_name: out.user_name.clone(),
            principal_name: out.principal_name.clone(),
        };
        self.inner.state.set_profile(authorizer_appid, &profile, self.inner.api.now_ms()).await?;
        Ok(out)
    }

    /// Forgets an authorizer (`unauthorized`): its stored record, its client here and its
    /// cached access token. Returns whether it was stored.
    ///
    /// # Errors
    /// When a store fails.
    pub async fn remove_authorizer(&self, authorizer_appid: &str) -> Result<bool> {
        let removed = self.inner.state.remove_authorizer(authorizer_appid).await?;
        self.lock_clients().remove(authorizer_appid);
        let key = self.authorizer_token_key(authorizer_appid);
        let store = self.inner.api.shared().store;
        if let Some(token) = store.get(&key).await? {
            store.invalidate(&key, token.value.expose()).await?;
        }
        Ok(removed)
    }

    fn lock_clients(&self) -> std::sync::MutexGuard<'_, HashMap<String, Client>> {
        self.inner.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn authorizer_owner(&self, authorizer_appid: &str) -> String {
        format!("component:{}:{authorizer_appid}", self.inner.appid)
    }

    fn authorizer_token_key(&self, authorizer_appid: &str) -> String {
        token_key("access_token", &self.authorizer_owner(authorizer_appid))
    }

    /// A [`Client`] for the account `authorizer_appid`, whose access_token comes from the
    /// platform (`api_authorizer_token` with the stored refresh token), shared through
    /// the token store like any access token. Everything a `Client` does works with it.
    /// Calls fail with [`Error::NotAuthorized`] when the account has not authorized the
    /// platform.
    ///
    /// # Errors
    /// [`Error::Http`] when the HTTP client cannot be built.
    pub fn client_for(&self, authorizer_appid: &str) -> Result<Client> {
        if let Some(c) = self.lock_clients().get(authorizer_appid) {
            return Ok(c.clone());
        }
        let shared = self.inner.api.shared();
        let clock = shared.clock.clone();
        let provider = AuthorizerToken {
            component: self.inner.api.clone(),
            state: self.inner.state.clone(),
            authorizer_appid: authorizer_appid.to_owned(),
        };
        let builder = Client::builder(authorizer_appid)
            .token_provider(provider)
            .token_owner(self.authorizer_owner(authorizer_appid))
            .store(shared.store)
            .clock(move || clock.now_ms())
            .token_policy(shared.token_policy)
            .retry_policy(shared.retry)
            .base_url(shared.base)
            .mp_base_url(shared.mp_base)
            .open_base_url(shared.open_base);
        let builder = match shared.timeout {
            Some(t) => builder.shared_http(shared.http, t),
            None => builder.http_client(shared.http),
        };
        let client = builder.build()?;
        Ok(self.lock_clients().entry(authorizer_appid.to_owned()).or_insert(client).clone())
    }
}
