//! The client, its builder, and the request core every API method goes through.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use wemp_proto::Secret;
use wemp_store::TokenStore;
use wemp_store::memory::MemoryTokenStore;

use crate::error::{ApiError, ErrCode, Error, Result};
use crate::token::{
    AccessToken, ClassicToken, FetchContext, FetchedToken, RemoteToken, RetryPolicy, StableToken, TokenCache,
    TokenPolicy, TokenProvider, WecomToken, parse_token,
};
use crate::{Clock, SystemClock};

/// The default API base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.weixin.qq.com";
/// The default base URL of QR-code images (`showqrcode`).
pub const DEFAULT_MP_BASE_URL: &str = "https://mp.weixin.qq.com";
/// The default base URL of the OAuth2 authorize page.
pub const DEFAULT_OPEN_BASE_URL: &str = "https://open.weixin.qq.com";
/// The default API base URL of WeCom (企业微信) applications.
pub const DEFAULT_WECOM_BASE_URL: &str = "https://qyapi.weixin.qq.com";

/// A WeChat Official Account API client. Cheap to clone; clones share the token cache.
///
/// See the [crate documentation](crate) for an example.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    /// The whole-request timeout of an API call on the default HTTP client (`None` with a
    /// client of the caller's own, whose settings apply).
    api_timeout: Option<Duration>,
    pub(crate) base: String,
    pub(crate) mp_base: String,
    pub(crate) open_base: String,
    pub(crate) appid: String,
    pub(crate) secret: Option<Secret>,
    /// A WeCom application's AgentID (a WeCom client).
    pub(crate) agentid: Option<String>,
    /// The query parameter the token goes in (`access_token`; `component_access_token`
    /// for an Open Platform's own calls).
    token_param: &'static str,
    provider: Arc<dyn TokenProvider>,
    access: TokenCache,
    ticket: TokenCache,
    card_ticket: TokenCache,
    pub(crate) retry: RetryPolicy,
    pub(crate) clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("appid", &self.inner.appid)
            .field("base_url", &self.inner.base)
            .finish_non_exhaustive()
    }
}

enum ProviderChoice {
    Stable,
    Classic,
    Remote(RemoteToken),
    Custom(Arc<dyn TokenProvider>),
}

/// Builds a [`Client`].
pub struct ClientBuilder {
    appid: String,
    secret: Option<Secret>,
    provider: ProviderChoice,
    store: Option<Arc<dyn TokenStore>>,
    clock: Arc<dyn Clock>,
    base: String,
    mp_base: String,
    open_base: String,
    token_policy: TokenPolicy,
    retry: RetryPolicy,
    http: Option<reqwest::Client>,
    timeout: Duration,
    agentid: Option<String>,
    token_param: &'static str,
    token_owner: Option<String>,
    shared_timeout: bool,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("appid", &self.appid)
            .field("base_url", &self.base)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The AppSecret, for the stable/classic token providers and OAuth2.
    pub fn secret(mut self, secret: impl Into<Secret>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// Makes this a WeCom (企业微信) application's client: the builder's appid is the corpid,
    /// the secret the app's Secret, tokens come from `GET /cgi-bin/gettoken` on
    /// `qyapi.weixin.qq.com` (unless a base URL is set) and are cached per app (corpid and
    /// AgentID), and [`KfApi::send_reply`](crate::api::kf::KfApi::send_reply) sends through
    /// WeCom's `message/send`.
    pub fn wecom(mut self, agentid: impl Into<String>) -> Self {
        self.agentid = Some(agentid.into());
        self
    }

    /// Fetch tokens with `POST /cgi-bin/stable_token` (the default).
    pub fn stable_token(mut self) -> Self {
        self.provider = ProviderChoice::Stable;
        self
    }

    /// Fetch tokens with the classic `GET /cgi-bin/token` (each fetch retires the previous
    /// token: share one store between every process of the account).
    pub fn classic_token(mut self) -> Self {
        self.provider = ProviderChoice::Classic;
        self
    }

    /// Ask another service for the token (see [`RemoteToken`]).
    pub fn remote_token(mut self, provider: RemoteToken) -> Self {
        self.provider = ProviderChoice::Remote(provider);
        self
    }

    /// Use your own [`TokenProvider`].
    pub fn token_provider(mut self, provider: impl TokenProvider) -> Self {
        self.provider = ProviderChoice::Custom(Arc::new(provider));
        self
    }

    /// The store shared by every client of this account (default: a private
    /// [`MemoryTokenStore`]). Give every client — in this process or others — the same
    /// store so that exactly one of them refreshes.
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The clock token expiry is judged by (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The API base URL (default [`DEFAULT_BASE_URL`]); point it at a fake platform in tests.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// The base URL of QR-code images (default [`DEFAULT_MP_BASE_URL`]).
    pub fn mp_base_url(mut self, url: impl Into<String>) -> Self {
        self.mp_base = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// The base URL of the OAuth2 authorize page (default [`DEFAULT_OPEN_BASE_URL`]).
    pub fn open_base_url(mut self, url: impl Into<String>) -> Self {
        self.open_base = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// Sets [`base_url`](Self::base_url), [`mp_base_url`](Self::mp_base_url) and
    /// [`open_base_url`](Self::open_base_url) at once (a fake platform serves all three).
    pub fn all_base_urls(self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.base_url(url.clone()).mp_base_url(url.clone()).open_base_url(url)
    }

    /// When tokens are refreshed.
    pub fn token_policy(mut self, policy: TokenPolicy) -> Self {
        self.token_policy = policy;
        self
    }

    /// How `-1` (system busy) is retried.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// A preconfigured reqwest client (proxies, custom TLS roots); replaces the timeout.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The timeout of the default HTTP client (default 15 s): for connecting, for every
    /// wait for data, and for a whole API call. Media downloads and uploads have no
    /// whole-request limit — a large file may take longer to arrive in full — but fail as
    /// soon as the data stops for this long.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends the token as `param` instead of `access_token` (the Open Platform's own calls
    /// take `component_access_token`).
    pub(crate) fn token_param(mut self, param: &'static str) -> Self {
        self.token_param = param;
        self
    }

    /// Names the token's cache entries after `owner` instead of the appid (a component's
    /// own token, an authorizer's token obtained through a component).
    pub(crate) fn token_owner(mut self, owner: String) -> Self {
        self.token_owner = Some(owner);
        self
    }

    /// An HTTP client shared with another client, built with [`ClientBuilder::timeout`]
    /// `timeout` (so API calls keep their whole-request limit).
    pub(crate) fn shared_http(mut self, http: reqwest::Client, timeout: Duration) -> Self {
        self.http = Some(http);
        self.timeout = timeout;
        self.shared_timeout = true;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the stable or classic provider is chosen without a secret;
    /// [`Error::Http`] when the HTTP client cannot be built.
    pub fn build(self) -> Result<Client> {
        let needs_secret = || {
            self.secret.clone().ok_or_else(|| {
                Error::Invalid("an AppSecret is needed for the stable or classic token provider".into())
            })
        };
        let provider: Arc<dyn TokenProvider> = match &self.provider {
            ProviderChoice::Stable | ProviderChoice::Classic if self.agentid.is_some() => {
                Arc::new(WecomToken::new(&self.appid, needs_secret()?))
            }
            ProviderChoice::Stable => Arc::new(StableToken::new(&self.appid, needs_secret()?)),
            ProviderChoice::Classic => Arc::new(ClassicToken::new(&self.appid, needs_secret()?)),
            ProviderChoice::Remote(r) => Arc::new(r.clone()),
            ProviderChoice::Custom(p) => p.clone(),
        };
        let (http, api_timeout) = match self.http {
            Some(h) if self.shared_timeout => (h, Some(self.timeout)),
            Some(h) => (h, None),
            None => {
                let http = reqwest::Client::builder()
                    .connect_timeout(self.timeout)
                    .read_timeout(self.timeout)
                    .build()
                    .map_err(|e| Error::http("", e))?;
                (http, Some(self.timeout))
            }
        };
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryTokenStore::new()));
        // A WeCom token belongs to one app of the corp: the key names both.
        let owner = match (&self.token_owner, &self.agentid) {
            (Some(owner), _) => owner.clone(),
            (None, Some(agent)) => format!("wecom:{}:{agent}", self.appid),
            (None, None) => self.appid.clone(),
        };
        let base = match &self.agentid {
            Some(_) if self.base == DEFAULT_BASE_URL => DEFAULT_WECOM_BASE_URL.to_owned(),
            _ => self.base,
        };
        let cache = |kind: &'static str| {
            TokenCache::new(
                kind,
                token_key(kind, &owner),
                store.clone(),
                self.clock.clone(),
                self.token_policy,
                self.retry,
            )
        };
        Ok(Client {
            inner: Arc::new(Inner {
                access: cache("access_token"),
                ticket: cache("jsapi_ticket"),
                card_ticket: cache("card_api_ticket"),
                http,
                api_timeout,
                base,
                mp_base: self.mp_base,
                open_base: self.open_base,
                appid: self.appid,
                secret: self.secret,
                agentid: self.agentid,
                token_param: self.token_param,
                provider,
                retry: self.retry,
                clock: self.clock,
            }),
        })
    }
}

type FetchFuture<'a> = std::pin::Pin<Box<dyn Future<Output = Result<FetchedToken>> + Send + 'a>>;

/// What a request sends.
pub(crate) enum Payload<'a> {
    Empty,
    Json(Bytes),
    Form(&'a Upload),
}

/// An answer that passed the errcode check.
pub(crate) enum Answer {
    Json(serde_json::Value),
    Binary(reqwest::Response),
}

impl Client {
    /// A builder for the account `appid`.
    pub fn builder(appid: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            appid: appid.into(),
            secret: None,
            provider: ProviderChoice::Stable,
            store: None,
            clock: Arc::new(SystemClock),
            base: DEFAULT_BASE_URL.to_owned(),
            mp_base: DEFAULT_MP_BASE_URL.to_owned(),
            open_base: DEFAULT_OPEN_BASE_URL.to_owned(),
            token_policy: TokenPolicy::default(),
            retry: RetryPolicy::default(),
            http: None,
            timeout: Duration::from_secs(15),
            agentid: None,
            token_param: "access_token",
            token_owner: None,
            shared_timeout: false,
        }
    }

    /// A client with the stable-token provider and a private in-memory store.
    ///
    /// # Errors
    /// As [`ClientBuilder::build`].
    pub fn new(appid: impl Into<String>, secret: impl Into<Secret>) -> Result<Self> {
        Self::builder(appid).secret(secret).build()
    }

    /// The AppID.
    pub fn appid(&self) -> &str {
        &self.inner.appid
    }

    /// The AgentID of a WeCom application's client ([`ClientBuilder::wecom`]).
    pub fn agentid(&self) -> Option<&str> {
        self.inner.agentid.as_deref()
    }

    /// How many token fetches this client made (not counting ones other clients made and
    /// shared through the store).
    pub fn token_fetches(&self) -> u64 {
        self.inner.access.fetches()
    }

    fn fetch_ctx(&self) -> FetchContext<'_> {
        FetchContext { http: &self.inner.http, base_url: &self.inner.base }
    }

    fn fetch_access<'a>(&'a self) -> impl Fn() -> FetchFuture<'a> + 'a {
        move || {
            Box::pin(async move {
                let ctx = self.fetch_ctx();
                self.inner.provider.fetch(&ctx).await
            })
        }
    }

    /// The current access token, fetching or refreshing it as needed.
    ///
    /// # Errors
    /// As the provider's fetch, the store, or [`Error::TokenWait`].
    pub async fn access_token(&self) -> Result<AccessToken> {
        self.inner.access.get(self.fetch_access()).await.map(AccessToken::new)
    }

    /// Drops `token` from the cache and the store if it is still the current one (for
    /// tokens you found invalid yourself); returns whether it was.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn invalidate_access_token(&self, token: &AccessToken) -> Result<bool> {
        self.inner.access.invalidate(token.0.expose()).await
    }

    /// Replaces `failed` (refused by the platform): compare-and-invalidate, then the token
    /// now current (another process's fresh one, or one fetched now).
    pub(crate) async fn replace_access_token(&self, failed: &AccessToken) -> Result<AccessToken> {
        self.inner.access.replace(failed.0.expose(), self.fetch_access()).await.map(AccessToken::new)
    }

    /// The current jsapi_ticket (`GET /cgi-bin/ticket/getticket?type=jsapi`), cached,
    /// shared and refreshed exactly like the access token.
    ///
    /// # Errors
    /// As [`Client::access_token`] and the ticket call.
    pub async fn jsapi_ticket(&self) -> Result<String> {
        self.ticket(Ticket::JsApi).await
    }

    /// A ticket of `GET /cgi-bin/ticket/getticket?type=…`, cached, shared and refreshed
    /// exactly like the access token (each kind in its own store entry).
    pub(crate) async fn ticket(&self, kind: Ticket) -> Result<String> {
        const PATH: &str = "/cgi-bin/ticket/getticket";
        let (cache, type_) = match kind {
            Ticket::JsApi => (&self.inner.ticket, "jsapi"),
            Ticket::Card => (&self.inner.card_ticket, "wx_card"),
        };
        let fetch = || async {
            let v = self.call(Method::GET, PATH, &[("type", type_)], Payload::Empty).await?;
            parse_token(PATH, v.to_string().as_bytes(), "ticket")
        };
        cache.get(fetch).await.map(|t| t.expose().to_owned())
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// The request core: token injection, compare-and-invalidate with one retry on token
    /// errors, bounded backoff on `-1`, typed errors for everything else.
    pub(crate) async fn execute(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        payload: Payload<'_>,
        binary: bool,
    ) -> Result<Answer> {
        let mut token = self.inner.access.get(self.fetch_access()).await?;
        let mut token_retried = false;
        let mut busy = 0;
        loop {
            let answer = self.attempt(&method, path, query, &payload, Some(token.expose()), binary).await?;
            let Answer::Json(value) = answer else { return Ok(answer) };
            let code = errcode(&value);
            if code.is_ok() {
                return Ok(Answer::Json(value));
            }
            if code.is_token_error() && !token_retried {
                tracing::warn!(path, errcode = code.0, "access_token refused; refreshing and retrying once");
                token_retried = true;
                token = self.inner.access.replace(token.expose(), self.fetch_access()).await?;
                continue;
            }
            if code.is_retryable() && busy < self.inner.retry.busy_retries {
                tracing::debug!(path, attempt = busy + 1, "system busy; backing off");
                tokio::time::sleep(self.inner.retry.delay(busy)).await;
                busy += 1;
                continue;
            }
            return Err(api_error(path, code, &value).into());
        }
    }

    /// A call without the app's access token (OAuth2 user endpoints): only `-1` is retried.
    pub(crate) async fn execute_plain(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<serde_json::Value> {
        let mut busy = 0;
        loop {
            let Answer::Json(value) =
                self.attempt(&Method::GET, path, query, &Payload::Empty, None, false).await?
            else {
                unreachable!("attempt returns JSON unless binary was asked for")
            };
            let code = errcode(&value);
            if code.is_ok() {
                return Ok(value);
            }
            if code.is_retryable() && busy < self.inner.retry.busy_retries {
                tokio::time::sleep(self.inner.retry.delay(busy)).await;
                busy += 1;
                continue;
            }
            return Err(api_error(path, code, &value).into());
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        path: &str,
        query: &[(&str, &str)],
        payload: &Payload<'_>,
        token: Option<&str>,
        binary: bool,
    ) -> Result<Answer> {
        let mut req = self.inner.http.request(method.clone(), format!("{}{path}", self.inner.base));
        if let Some(t) = token {
            req = req.query(&[(self.inner.token_param, t)]);
        }
        if !query.is_empty() {
            req = req.query(query);
        }
        // An API call is bounded as a whole; a file (down or up) only while its data flows.
        if let Some(limit) =
            self.inner.api_timeout.filter(|_| !binary && !matches!(payload, Payload::Form(_)))
        {
            req = req.timeout(limit);
        }
        req = match payload {
            Payload::Empty => req,
            Payload::Json(b) => req.header(reqwest::header::CONTENT_TYPE, "application/json").body(b.clone()),
            Payload::Form(upload) => req.multipart(upload.to_form()?),
        };
        let resp = req.send().await.map_err(|e| Error::http(path, e))?;
        let resp = resp.error_for_status().map_err(|e| Error::http(path, e))?;
        let is_json = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|ct| ct.contains("json") || ct.starts_with("text/"));
        if binary && !is_json {
            return Ok(Answer::Binary(resp));
        }
        let bytes = resp.bytes().await.map_err(|e| Error::http(path, e))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|source| Error::Decode {
            path: path.to_owned(),
            source,
            body: redacted_body(path, &bytes),
        })?;
        Ok(Answer::Json(value))
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        payload: Payload<'_>,
    ) -> Result<serde_json::Value> {
        match self.execute(method, path, query, payload, false).await? {
            Answer::Json(v) => Ok(v),
            Answer::Binary(_) => unreachable!("attempt returns JSON unless binary was asked for"),
        }
    }

    /// A POST whose answer carries nothing but `errcode`/`errmsg`.
    pub(crate) async fn post_ok<B: Serialize + ?Sized>(&self, path: &str, body: &B) -> Result<()> {
        self.post_as::<serde_json::Value, B>(path, &[], body).await.map(drop)
    }

    /// A GET whose answer carries nothing but `errcode`/`errmsg`.
    pub(crate) async fn get_ok(&self, path: &str, query: &[(&str, &str)]) -> Result<()> {
        self.get_as::<serde_json::Value>(path, query).await.map(drop)
    }

    pub(crate) async fn get_as<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T> {
        let v = self.call(Method::GET, path, query, Payload::Empty).await?;
        decode(path, v)
    }

    pub(crate) async fn post_as<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: &B,
    ) -> Result<T> {
        let bytes = serde_json::to_vec(body).map_err(|source| Error::Decode {
            path: path.to_owned(),
            source,
            body: "<request>".into(),
        })?;
        let v = self.call(Method::POST, path, query, Payload::Json(bytes.into())).await?;
        decode(path, v)
    }

    /// `GET <base><path>?access_token=…&<query>` with the client's token and retry rules,
    /// for APIs not covered by a typed method. Decode into `serde_json::Value` or your own
    /// type.
    ///
    /// # Errors
    /// [`Error::Api`] for a nonzero errcode (after the retries it allows), [`Error::Http`],
    /// [`Error::Decode`].
    pub async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T> {
        self.get_as(path, query).await
    }

    /// `POST <base><path>?access_token=…` with a JSON body, for APIs not covered by a
    /// typed method.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn post_json<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.post_as(path, &[], body).await
    }

    /// `POST <base><path>?access_token=…&<query>` with a multipart body, for upload APIs not
    /// covered by a typed method.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn upload<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        form: &Upload,
    ) -> Result<T> {
        let v = self.call(Method::POST, path, query, Payload::Form(form)).await?;
        decode(path, v)
    }
}

/// A random alphanumeric string for signatures (`noncestr`, `nonce_str`): 16 characters.
pub(crate) fn nonce_str() -> String {
    use rand::Rng;
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(16).map(char::from).collect()
}

/// The tickets of `ticket/getticket`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ticket {
    /// `type=jsapi`: the JS-SDK's `wx.config` signature ([`Client::jsapi_ticket`]).
    JsApi,
    /// `type=wx_card`: the card api_ticket of the JS-SDK's card calls
    /// ([`CardsApi::api_ticket`](crate::api::cards::CardsApi::api_ticket)).
    Card,
}

/// The store key of a token of `kind` (`access_token`, `jsapi_ticket`, `card_api_ticket`)
/// owned by `owner`.
pub(crate) fn token_key(kind: &str, owner: &str) -> String {
    format!("wemp:{kind}:{owner}")
}

/// The HTTP client and base URLs, for building a client that shares them.
pub(crate) struct Shared {
    pub(crate) http: reqwest::Client,
    pub(crate) timeout: Option<Duration>,
    pub(crate) base: String,
    pub(crate) mp_base: String,
    pub(crate) open_base: String,
    pub(crate) retry: RetryPolicy,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) store: Arc<dyn TokenStore>,
    pub(crate) token_policy: TokenPolicy,
}

impl Client {
    /// What a client for another account needs to share this one's transport and clock.
    pub(crate) fn shared(&self) -> Shared {
        Shared {
            http: self.inner.http.clone(),
            timeout: self.inner.api_timeout,
            base: self.inner.base.clone(),
            mp_base: self.inner.mp_base.clone(),
            open_base: self.inner.open_base.clone(),
            retry: self.inner.retry,
            clock: self.inner.clock.clone(),
            store: self.inner.access.store().clone(),
            token_policy: self.inner.access.policy(),
        }
    }
}

pub(crate) fn errcode(v: &serde_json::Value) -> ErrCode {
    ErrCode(v.get("errcode").and_then(serde_json::Value::as_i64).unwrap_or(0))
}

fn api_error(path: &str, code: ErrCode, v: &serde_json::Value) -> ApiError {
    ApiError {
        code,
        message: v.get("errmsg").and_then(|m| m.as_str()).unwrap_or_default().to_owned(),
        path: path.to_owned(),
    }
}

fn redacted_body(path: &str, bytes: &[u8]) -> Box<str> {
    // The Open Platform's answers carry authorizers' access and refresh tokens.
    if path.starts_with("/sns/")
        || path.contains("token")
        || path.contains("ticket")
        || path.contains("/component/")
    {
        "<withheld: may carry a token>".into()
    } else {
        String::from_utf8_lossy(bytes).into()
    }
}

pub(crate) fn decode<T: DeserializeOwned>(path: &str, v: serde_json::Value) -> Result<T> {
    serde_json::from_value(v.clone()).map_err(|source| Error::Decode {
        path: path.to_owned(),
        source,
        body: redacted_body(path, v.to_string().as_bytes()),
    })
}

/// A file to upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaFile {
    /// The file name sent in the multipart part (WeChat checks its extension).
    pub file_name: String,
    /// The part's content type.
    pub content_type: String,
    /// The contents.
    pub data: Bytes,
}

impl MediaFile {
    /// A file from memory; the content type is guessed from the name's extension.
    pub fn from_bytes(file_name: impl Into<String>, data: impl Into<Bytes>) -> Self {
        let file_name = file_name.into();
        let content_type = guess_content_type(&file_name).to_owned();
        Self { file_name, content_type, data: data.into() }
    }

    /// Reads a file from disk (kept in memory so the upload can be retried).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read.
    pub async fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let data = tokio::fs::read(path).await?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file").to_owned();
        Ok(Self::from_bytes(name, data))
    }

    /// Overrides the content type.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = content_type.into();
        self
    }
}

fn guess_content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "mp3" => "audio/mpeg",
        "amr" => "audio/amr",
        "wma" => "audio/x-ms-wma",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// A multipart body, rebuilt for each attempt so uploads can be retried.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Upload {
    parts: Vec<(String, UploadPart)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum UploadPart {
    File(MediaFile),
    Text(String),
}

impl Upload {
    /// An empty form.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file part.
    pub fn file(mut self, name: impl Into<String>, file: MediaFile) -> Self {
        self.parts.push((name.into(), UploadPart::File(file)));
        self
    }

    /// Adds a text part.
    pub fn text(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.parts.push((name.into(), UploadPart::Text(value.into())));
        self
    }

    pub(crate) fn to_form(&self) -> Result<reqwest::multipart::Form> {
        let mut form = reqwest::multipart::Form::new();
        for (name, part) in &self.parts {
            form = match part {
                UploadPart::Text(v) => form.text(name.clone(), v.clone()),
                UploadPart::File(f) => {
                    let part = reqwest::multipart::Part::stream(f.data.clone())
                        .file_name(f.file_name.clone())
                        .mime_str(&f.content_type)
                        .map_err(|e| Error::Invalid(format!("content type {:?}: {e}", f.content_type)))?;
                    form.part(name.clone(), part)
                }
            };
        }
        Ok(form)
    }
}

/// Streams a binary answer to `out`.
pub(crate) async fn stream_to<W: AsyncWrite + Unpin + ?Sized>(
    path: &str,
    resp: reqwest::Response,
    out: &mut W,
) -> Result<crate::api::media::Download> {
    let content_type =
        resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut stream = resp.bytes_stream();
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::http(path, e))?;
        out.write_all(&chunk).await?;
        written += chunk.len() as u64;
    }
    out.flush().await?;
    Ok(crate::api::media::Download::Written { bytes: written, content_type })
}
