//! Where access tokens come from, and how they are cached, shared and refreshed.
//!
//! A [`TokenProvider`] fetches a token: [`StableToken`] (the default: `POST
//! /cgi-bin/stable_token` without force refresh, so separate processes receive the same
//! token), [`ClassicToken`] (`GET /cgi-bin/token`, where each fetch replaces the previous
//! token) or [`RemoteToken`] (another service that owns the AppSecret).
//!
//! The client keeps the token in a [`wemp_store::TokenStore`] shared by every
//! client of the account (in one process or many). Refreshing works like this:
//!
//! * in one client, concurrent callers that find the token missing or about to expire
//!   wait for a single fetch (single flight);
//! * across clients, the one that takes the store's refresh lease fetches; the others poll
//!   the store until the new token appears; writes keep the token with the later expiry;
//! * at about 80 % of the token's lifetime ([`TokenPolicy::refresh_ahead`]) one caller
//!   refreshes while the others keep using the still-valid token; a token within
//!   [`TokenPolicy::safety_margin`] of its expiry is never sent;
//! * a call refused with 40001/40014/42001 removes the token from the store only if it is
//!   still the one that failed (compare-and-invalidate), takes the current or a new one,
//!   and is retried once.

use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use wemp_proto::Secret;
use wemp_store::{CachedToken, TokenStore};

use crate::Clock;
use crate::error::{ApiError, ErrCode, Error, Result};

/// A freshly fetched token and how long it lives. `Debug` shows only the token's length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedToken {
    /// The token.
    pub value: Secret,
    /// Lifetime from now, as the issuer reported it (`expires_in`).
    pub expires_in: Duration,
}

/// What a provider may use to fetch: the client's HTTP client and API base URL.
#[derive(Clone, Copy, Debug)]
pub struct FetchContext<'a> {
    /// The client's HTTP client (timeouts, TLS settings).
    pub http: &'a reqwest::Client,
    /// The API base URL without a trailing slash (`https://api.weixin.qq.com`).
    pub base_url: &'a str,
}

/// Fetches a new access token.
#[async_trait::async_trait]
pub trait TokenProvider: Send + Sync + 'static {
    /// Fetches a token. The client caches, shares and refreshes it; a provider only fetches.
    ///
    /// # Errors
    /// [`Error::Api`] when the issuer answers with an error code (`-1` is retried by the
    /// caller with backoff), [`Error::Http`] or [`Error::Decode`] otherwise.
    async fn fetch(&self, ctx: &FetchContext<'_>) -> Result<FetchedToken>;
}

/// `POST /cgi-bin/stable_token`: every caller receives the same token while it is valid.
#[derive(Clone, Debug)]
pub struct StableToken {
    appid: String,
    secret: Secret,
    force_refresh: bool,
}

impl StableToken {
    /// The stable-token provider without force refresh (the default provider).
    pub fn new(appid: impl Into<String>, secret: impl Into<Secret>) -> Self {
        Self { appid: appid.into(), secret: secret.into(), force_refresh: false }
    }

    /// Asks for a new token on every fetch (`force_refresh: true`, limited per day by
    /// WeChat; rarely what you want).
    pub fn force_refresh(mut self, force: bool) -> Self {
        self.force_refresh = force;
        self
    }
}

#[async_trait::async_trait]
impl TokenProvider for StableToken {
    async fn fetch(&self, ctx: &FetchContext<'_>) -> Result<FetchedToken> {
        const PATH: &str = "/cgi-bin/stable_token";
        let body = serde_json::json!({
            "grant_type": "client_credential",
            "appid": self.appid,
            "secret": self.secret.expose(),
            "force_refresh": self.force_refresh,
        });
        send_for_token(PATH, ctx.http.post(format!("{}{PATH}", ctx.base_url)).json(&body), "access_token")
            .await
    }
}

/// `GET /cgi-bin/token`: each fetch issues a new token and retires the previous one a few
/// minutes later, so only use it with a store shared by every process of the account.
#[derive(Clone, Debug)]
pub struct ClassicToken {
    appid: String,
    secret: Secret,
}

impl ClassicToken {
    /// The classic provider.
    pub fn new(appid: impl Into<String>, secret: impl Into<Secret>) -> Self {
        Self { appid: appid.into(), secret: secret.into() }
    }
}

#[async_trait::async_trait]
impl TokenProvider for ClassicToken {
    async fn fetch(&self, ctx: &FetchContext<'_>) -> Result<FetchedToken> {
        const PATH: &str = "/cgi-bin/token";
        let query = [
            ("grant_type", "client_credential"),
            ("appid", self.appid.as_str()),
            ("secret", self.secret.expose()),
        ];
        send_for_token(PATH, ctx.http.get(format!("{}{PATH}", ctx.base_url)).query(&query), "access_token")
            .await
    }
}

/// WeCom's `GET /cgi-bin/gettoken?corpid=…&corpsecret=…` (on `qyapi.weixin.qq.com`): one
/// token per application (each app has its own Secret). Like the classic endpoint, a
/// fetch while a token is valid returns the same token, so processes sharing a store agree.
#[derive(Clone, Debug)]
pub struct WecomToken {
    corpid: String,
    secret: Secret,
}

impl WecomToken {
    /// The provider for the app whose Secret is `secret`, in the corp `corpid`.
    pub fn new(corpid: impl Into<String>, secret: impl Into<Secret>) -> Self {
        Self { corpid: corpid.into(), secret: secret.into() }
    }
}

#[async_trait::async_trait]
impl TokenProvider for WecomToken {
    async fn fetch(&self, ctx: &FetchContext<'_>) -> Result<FetchedToken> {
        const PATH: &str = "/cgi-bin/gettoken";
        let query = [("corpid", self.corpid.as_str()), ("corpsecret", self.secret.expose())];
        send_for_token(PATH, ctx.http.get(format!("{}{PATH}", ctx.base_url)).query(&query), "access_token")
            .await
    }
}

/// Asks another service for the token, for deployments where the AppSecret lives
/// elsewhere: `GET <url>` must answer `{"access_token": "…", "expires_in": 7200}` (or
/// `{"errcode": …, "errmsg": …}`), like WeChat's own token endpoint.
#[derive(Clone)]
pub struct RemoteToken {
    url: String,
    bearer: Option<String>,
}

impl RemoteToken {
    /// A provider that asks `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), bearer: None }
    }

    /// Sends `Authorization: Bearer <secret>` with each request.
    pub fn bearer(mut self, secret: impl Into<String>) -> Self {
        self.bearer = Some(secret.into());
        self
    }
}

impl std::fmt::Debug for RemoteToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteToken").field("url", &strip_query(&self.url)).finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl TokenProvider for RemoteToken {
    async fn fetch(&self, ctx: &FetchContext<'_>) -> Result<FetchedToken> {
        let path = strip_query(&self.url);
        let mut req = ctx.http.get(&self.url);
        if let Some(b) = &self.bearer {
            req = req.bearer_auth(b);
        }
        send_for_token(path, req, "access_token").await
    }
}

/// Sends a token request and reads `{<field>, expires_in}` or `{errcode, errmsg}`;
/// errors name `path`, never the URL with its secret.
pub(crate) async fn send_for_token(
    path: &str,
    req: reqwest::RequestBuilder,
    field: &str,
) -> Result<FetchedToken> {
    let resp = req.send().await.map_err(|e| Error::http(path, e))?;
    let bytes = resp.bytes().await.map_err(|e| Error::http(path, e))?;
    parse_token(path, &bytes, field)
}

pub(crate) fn strip_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// Reads `{<field>, expires_in}` or `{errcode, errmsg}`. The body is never kept in errors.
pub(crate) fn parse_token(path: &str, bytes: &[u8], field: &str) -> Result<FetchedToken> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(default)]
        errcode: i64,
        #[serde(default)]
        errmsg: String,
        #[serde(default)]
        expires_in: u64,
        #[serde(flatten)]
        rest: serde_json::Map<String, serde_json::Value>,
    }
    let raw: Raw = serde_json::from_slice(bytes).map_err(|source| Error::Decode {
        path: path.to_owned(),
        source,
        body: "<withheld: token endpoint>".into(),
    })?;
    if raw.errcode != 0 {
        return Err(
            ApiError { code: ErrCode(raw.errcode), message: raw.errmsg, path: path.to_owned() }.into()
        );
    }
    match raw.rest.get(field).and_then(|v| v.as_str()) {
        Some(value) if !value.is_empty() => {
            Ok(FetchedToken { value: value.into(), expires_in: Duration::from_secs(raw.expires_in) })
        }
        _ => Err(Error::Decode {
            path: path.to_owned(),
            source: <serde_json::Error as serde::de::Error>::missing_field("token"),
            body: "<withheld: token endpoint>".into(),
        }),
    }
}

/// When tokens are refreshed and how long a client waits for another one's refresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenPolicy {
    /// Refresh this long before expiry, while the token is still usable (default 24 min:
    /// 80 % into WeChat's 2-hour lifetime). One caller refreshes; the others go on using
    /// the current token.
    pub refresh_ahead: Duration,
    /// Never send a token closer than this to its expiry (default 60 s).
    pub safety_margin: Duration,
    /// How long a refresh lease lasts in the shared store (default 10 s); the holder renews
    /// it every third of that while it fetches, so this bounds how long a crashed holder
    /// keeps the others waiting, not how long a fetch may take.
    pub lease_ttl: Duration,
    /// How long to wait for another client's refresh before giving up (default 20 s).
    pub wait_timeout: Duration,
    /// How often a waiting client reads the store (default 20 ms).
    pub poll_interval: Duration,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        Self {
            refresh_ahead: Duration::from_secs(24 * 60),
            safety_margin: Duration::from_secs(60),
            lease_ttl: Duration::from_secs(10),
            wait_timeout: Duration::from_secs(20),
            poll_interval: Duration::from_millis(20),
        }
    }
}

/// How calls answered with `-1` (system busy) are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after the first attempt (default 3).
    pub busy_retries: u32,
    /// Backoff before the first retry, doubled each time, with jitter (default 200 ms).
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { busy_retries: 3, backoff: Duration::from_millis(200) }
    }
}

impl RetryPolicy {
    /// No retries (for tests and latency-sensitive callers).
    pub fn none() -> Self {
        Self { busy_retries: 0, backoff: Duration::ZERO }
    }

    /// `busy_retries` retries starting at `backoff`.
    pub fn new(busy_retries: u32, backoff: Duration) -> Self {
        Self { busy_retries, backoff }
    }

    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let base = self.backoff.saturating_mul(1u32 << attempt.min(16));
        let jitter = rand::random_range(0.0..0.25);
        base.mul_f64(1.0 + jitter)
    }
}

impl TokenPolicy {
    /// `refresh_ahead` and `safety_margin` set; the other fields default.
    pub fn new(refresh_ahead: Duration, safety_margin: Duration) -> Self {
        Self { refresh_ahead, safety_margin, ..Self::default() }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    /// Before the proactive refresh point.
    Fresh,
    /// Before the safety margin.
    Valid,
}

#[derive(Default)]
struct Local {
    token: Option<CachedToken>,
    /// A refresh already returned this same value: use it until it expires rather than
    /// asking again (the stable endpoint returns the current token until it rolls over).
    settled: bool,
}

/// A cached token shared through a store: single flight in process, lease across
/// processes.
pub(crate) struct TokenCache {
    kind: &'static str,
    key: String,
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    policy: TokenPolicy,
    retry: RetryPolicy,
    local: Mutex<Local>,
    flight: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

impl TokenCache {
    pub(crate) fn new(
        kind: &'static str,
        key: String,
        store: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
        policy: TokenPolicy,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            kind,
            key,
            store,
            clock,
            policy,
            retry,
            local: Mutex::default(),
            flight: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
        }
    }

    /// The store the token is shared through.
    pub(crate) fn store(&self) -> &Arc<dyn TokenStore> {
        &self.store
    }

    /// When the token is refreshed.
    pub(crate) fn policy(&self) -> TokenPolicy {
        self.policy
    }

    /// How many fetches this cache made.
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn margin_ms(&self) -> i64 {
        ms(self.policy.safety_margin)
    }

    fn ahead_ms(&self) -> i64 {
        ms(self.policy.refresh_ahead).max(self.margin_ms())
    }

    fn snapshot(&self) -> Option<(CachedToken, bool)> {
        let local = self.local.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        local.token.clone().map(|t| (t, local.settled))
    }

    fn adopt(&self, token: CachedToken, settled: bool) -> Secret {
        let mut local = self.local.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let value = token.value.clone();
        local.token = Some(token);
        local.settled = settled;
        value
    }

    fn acceptable(&self, t: &CachedToken, need: Need, failed: Option<&str>, now: i64) -> bool {
        if failed == Some(t.value.expose()) {
            return false;
        }
        let lead = match need {
            Need::Fresh => self.ahead_ms(),
            Need::Valid => self.margin_ms(),
        };
        now < t.expires_at_ms.saturating_sub(lead)
    }

    /// A token to send now, fetching at most once (shared with every concurrent caller).
    pub(crate) async fn get<F, Fut>(&self, fetch: F) -> Result<Secret>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<FetchedToken>>,
    {
        let now = self.clock.now_ms();
        if let Some((tok, settled)) = self.snapshot() {
            if self.acceptable(&tok, Need::Fresh, None, now) {
                return Ok(tok.value);
            }
            if self.acceptable(&tok, Need::Valid, None, now) {
                if settled {
                    return Ok(tok.value);
                }
                // Proactive refresh: whoever gets the flight refreshes, nobody waits.
                if let Ok(_flight) = self.flight.try_lock() {
                    match self.refresh_locked(Need::Fresh, None, &fetch).await {
                        Ok(value) => return Ok(value),
                        Err(e) => {
                            tracing::warn!(kind = self.kind, error = %e, "proactive token refresh failed");
                        }
                    }
                }
                return Ok(tok.value);
            }
            if settled && now < tok.expires_at_ms {
                return Ok(tok.value);
            }
        }
        let _flight = self.flight.lock().await;
        let now = self.clock.now_ms();
        if let Some((tok, settled)) = self.snapshot()
            && (self.acceptable(&tok, Need::Valid, None, now) || (settled && now < tok.expires_at_ms))
        {
            return Ok(tok.value);
        }
        self.refresh_locked(Need::Valid, None, &fetch).await
    }

    /// The call made with `failed` was refused: compare-and-invalidate, then return the
    /// current token, fetching only if nobody replaced the failed one yet.
    pub(crate) async fn replace<F, Fut>(&self, failed: &str, fetch: F) -> Result<Secret>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<FetchedToken>>,
    {
        let removed = self.store.invalidate(&self.key, failed).await?;
        tracing::debug!(kind = self.kind, removed, "token refused; compare-and-invalidate");
        {
            let mut local = self.local.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if local.token.as_ref().is_some_and(|t| t.value.expose() == failed) {
                *local = Local::default();
            }
        }
        let _flight = self.flight.lock().await;
        let now = self.clock.now_ms();
        if let Some((tok, _)) = self.snapshot()
            && self.acceptable(&tok, Need::Valid, Some(failed), now)
        {
            return Ok(tok.value);
        }
        self.refresh_locked(Need::Valid, Some(failed), &fetch).await
    }

    /// Drops the cached token everywhere if it is still `value`.
    pub(crate) async fn invalidate(&self, value: &str) -> Result<bool> {
        let removed = self.store.invalidate(&self.key, value).await?;
        let mut local = self.local.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if local.token.as_ref().is_some_and(|t| t.value.expose() == value) {
            *local = Local::default();
        }
        Ok(removed)
    }

    async fn refresh_locked<F, Fut>(&self, need: Need, failed: Option<&str>, fetch: &F) -> Result<Secret>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<FetchedToken>>,
    {
        let started = Instant::now();
        loop {
            let now = self.clock.now_ms();
            if let Some(t) = self.store.get(&self.key).await?
                && self.acceptable(&t, need, failed, now)
            {
                return Ok(self.adopt(t, false));
            }
            if let Some(lease) = self.store.try_lease(&self.key, self.policy.lease_ttl).await? {
                let result = self.holding(&lease, self.fetch_under_lease(need, failed, fetch)).await;
                if let Err(e) = self.store.release_lease(&self.key, &lease).await {
                    tracing::warn!(kind = self.kind, error = %e, "cannot release token refresh lease");
                }
                return result;
            }
            if started.elapsed() >= self.policy.wait_timeout {
                return Err(Error::TokenWait {
                    kind: self.kind,
                    waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                });
            }
            tokio::time::sleep(self.policy.poll_interval).await;
        }
    }

    /// Runs `work` while renewing `lease` every third of its TTL, so a fetch that outlasts
    /// one TTL (a slow endpoint, `-1` retries) keeps the other clients waiting for its token
    /// instead of letting one of them fetch a second (with the classic endpoint, retiring
    /// the first). A holder that dies stops renewing, and the lease lapses after one TTL.
    async fn holding<T>(&self, lease: &wemp_store::Lease, work: impl Future<Output = T>) -> T {
        let ttl = self.policy.lease_ttl;
        let every = (ttl / 3).max(Duration::from_millis(1));
        let mut renewals = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        renewals.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = renewals.tick() => match self.store.renew_lease(&self.key, lease, ttl).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(kind = self.kind, "token refresh lease lapsed while fetching");
                    }
                    Err(e) => {
                        tracing::warn!(kind = self.kind, error = %e, "cannot renew token refresh lease");
                    }
                },
            }
        }
    }

    async fn fetch_under_lease<F, Fut>(&self, need: Need, failed: Option<&str>, fetch: &F) -> Result<Secret>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<FetchedToken>>,
    {
        // Someone may have written between our read and our lease.
        if let Some(t) = self.store.get(&self.key).await?
            && self.acceptable(&t, need, failed, self.clock.now_ms())
        {
            return Ok(self.adopt(t, false));
        }
        let mut busy = 0;
        let fetched = loop {
            match fetch().await {
                Err(Error::Api(e)) if e.code.is_retryable() && busy < self.retry.busy_retries => {
                    tokio::time::sleep(self.retry.delay(busy)).await;
                    busy += 1;
                }
                other => break other?,
            }
        };
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now_ms();
        let token =
            CachedToken { value: fetched.value, expires_at_ms: now.saturating_add(ms(fetched.expires_in)) };
        let kept = self.store.put(&self.key, &token).await?;
        let settled = !self.acceptable(&kept, need, failed, now);
        tracing::debug!(kind = self.kind, expires_at_ms = kept.expires_at_ms, settled, "token refreshed");
        Ok(self.adopt(kept, settled))
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// An access token, for calls the client does not cover. `Debug` hides it (it is a
/// [`Secret`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessToken(pub(crate) Secret);

impl AccessToken {
    pub(crate) fn new(value: Secret) -> Self {
        Self(value)
    }

    /// The token itself. Keep it out of logs.
    pub fn secret(&self) -> &str {
        self.0.expose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FakeClock;
    use wemp_store::memory::MemoryTokenStore;

    fn cache(clock: &FakeClock, store: Arc<dyn TokenStore>) -> TokenCache {
        TokenCache::new(
            "access_token",
            "k".into(),
            store,
            Arc::new(clock.clone()),
            TokenPolicy::default(),
            RetryPolicy::none(),
        )
    }

    fn issue(counter: &AtomicU64, lifetime: u64) -> FetchedToken {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        FetchedToken { value: format!("t{n}").into(), expires_in: Duration::from_secs(lifetime) }
    }

    #[tokio::test]
    async fn proactive_refresh_then_hard_refresh() {
        let clock = FakeClock::at_ms(0);
        let c = cache(&clock, Arc::new(MemoryTokenStore::new()));
        let n = AtomicU64::new(0);
        let fetch = || async { Ok(issue(&n, 7200)) };
        assert_eq!(c.get(fetch).await.unwrap().expose(), "t1");
        clock.advance(Duration::from_secs(5000));
        assert_eq!(c.get(fetch).await.unwrap().expose(), "t1", "before 80 %");
        clock.advance(Duration::from_secs(800));
        assert_eq!(c.get(fetch).await.unwrap().expose(), "t2", "past 80 %: refreshed proactively");
        clock.advance(Duration::from_secs(7200 - 30));
        assert_eq!(c.get(fetch).await.unwrap().expose(), "t3", "within the safety margin: never sent");
        assert_eq!(c.fetches(), 3);
    }

    #[tokio::test]
    async fn same_token_again_is_used_until_expiry_without_refetching() {
        let clock = FakeClock::at_ms(0);
        let c = cache(&clock, Arc::new(MemoryTokenStore::new()));
        let calls = AtomicU64::new(0);
        // A stable-token endpoint: the same token, with its remaining lifetime.
        let clock2 = clock.clone();
        let fetch = || {
            let remaining = 7200 - clock2.now_ms() / 1000;
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok(FetchedToken { value: "same".into(), expires_in: Duration::from_secs(remaining as u64) })
            }
        };
        c.get(fetch).await.unwrap();
        clock.advance(Duration::from_secs(6000));
        for _ in 0..5 {
            assert_eq!(c.get(fetch).await.unwrap().expose(), "same");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one proactive attempt, then settled");
    }

    #[tokio::test]
    async fn a_fetch_outlasting_the_lease_ttl_is_not_repeated_by_another_client() {
        let clock = FakeClock::at_ms(0);
        let store: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::new());
        let policy = TokenPolicy {
            lease_ttl: Duration::from_millis(100),
            poll_interval: Duration::from_millis(5),
            ..TokenPolicy::default()
        };
        let cache = || {
            TokenCache::new(
                "access_token",
                "k".into(),
                store.clone(),
                Arc::new(clock.clone()),
                policy,
                RetryPolicy::none(),
            )
        };
        let (a, b) = (cache(), cache());
        let n = AtomicU64::new(0);
        // A slow token endpoint: each fetch takes three and a half lease lifetimes.
        let fetch = || async {
            tokio::time::sleep(Duration::from_millis(350)).await;
            Ok(issue(&n, 7200))
        };
        let (ta, tb) = tokio::join!(a.get(fetch), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            b.get(fetch).await
        });
        assert_eq!(n.load(Ordering::SeqCst), 1, "the lease holder was still fetching");
        assert_eq!((ta.unwrap().expose(), tb.unwrap().expose()), ("t1", "t1"));
    }

    #[tokio::test]
    async fn failed_fetch_in_proactive_window_keeps_the_valid_token() {
        let clock = FakeClock::at_ms(0);
        let c = cache(&clock, Arc::new(MemoryTokenStore::new()));
        c.get(|| async { Ok(FetchedToken { value: "a".into(), expires_in: Duration::from_secs(7200) }) })
            .await
            .unwrap();
        clock.advance(Duration::from_secs(6000));
        let failing = || async {
            Err(ApiError { code: ErrCode(-1), message: "busy".into(), path: "/x".into() }.into())
        };
        assert_eq!(c.get(failing).await.unwrap().expose(), "a");
        clock.advance(Duration::from_secs(1200));
        assert!(c.get(failing).await.is_err(), "past the margin the failure surfaces");
    }
}
