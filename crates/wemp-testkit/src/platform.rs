//! The fake WeChat API platform (api.weixin.qq.com) on loopback.
//!
//! [`FakePlatform`] is a real HTTP server on `127.0.0.1:0` that behaves like WeChat's API
//! where it matters for a client: classic `GET /cgi-bin/token` fetches retire the previous
//! token after an overlap; `POST /cgi-bin/stable_token` returns the same token until it
//! expires or `force_refresh` is set; tokens expire on the platform's own clock, which only
//! moves when you [`advance`](FakePlatform::advance) it; errors are `{errcode, errmsg}`
//! with HTTP 200; faults can be injected per endpoint; every request is recorded; media,
//! users, tags, menus, drafts and the rest live in memory; comments live on mass-sent
//! articles, and the data cube reports are computed from the [`StatEvent`]s you record;
//! cards (卡券) keep their stock and review state, and users' codes their redemption state.
//!
//! It also serves `/cgi-bin/showqrcode` (the `mp.weixin.qq.com` image), `/mp/subscribemsg`
//! (the `mp.weixin.qq.com` one-time subscription consent page) and
//! `/connect/oauth2/authorize` (the `open.weixin.qq.com` consent page); both consent pages
//! approve at once as the user set with [`FakePlatform::set_oauth_user`]. So one base URL
//! stands in for all three hosts — and for WeCom's `qyapi.weixin.qq.com`, whose `gettoken` and
//! `message/send` it answers for the apps of one corp ([`PlatformConfig::corpid`],
//! [`FakePlatform::add_wecom_app`]), each with its own Secret and token.
//!
//! ```
//! use std::time::Duration;
//! use wemp_testkit::platform::{FakePlatform, Fault};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let platform = FakePlatform::start().await;
//! let http = reqwest::Client::new();
//! let token: serde_json::Value = http
//!     .post(format!("{}/cgi-bin/stable_token", platform.url()))
//!     .json(&serde_json::json!({
//!         "grant_type": "client_credential",
//!         "appid": platform.appid(),
//!         "secret": platform.secret(),
//!     }))
//!     .send().await?.json().await?;
//! let token = token["access_token"].as_str().unwrap().to_owned();
//!
//! // The next user-info call fails as if the server's IP were not whitelisted.
//! platform.inject_times("/cgi-bin/getcallbackip", Fault::ErrCode(40164), 1);
//! let url = format!("{}/cgi-bin/getcallbackip?access_token={token}", platform.url());
//! let answer: serde_json::Value = http.get(&url).send().await?.json().await?;
//! assert_eq!(answer["errcode"], 40164);
//! let answer: serde_json::Value = http.get(&url).send().await?.json().await?;
//! assert!(answer["ip_list"].is_array());
//!
//! // Two hours later the token has expired.
//! platform.advance(Duration::from_secs(7200));
//! let answer: serde_json::Value = http.get(&url).send().await?.json().await?;
//! assert_eq!(answer["errcode"], 42001);
//! assert_eq!(platform.requests_to("/cgi-bin/getcallbackip").len(), 3);
//! # Ok(()) }
//! ```

mod api;
mod cards;
mod comments;
mod component;
mod datacube;
mod drafts;
mod jssdk;
mod kf;
mod mass;
mod material;
mod media;
mod menu;
mod news;
mod oauth;
mod ops;
mod publish;
mod qrcode;
mod subscribe;
mod support;
mod tags;
mod templates;
mod token;
mod users;
mod wecom;

pub use cards::{CardGrant, FakeCard, FakeCardCode, FakeMember};
pub use component::{FakeAuthorizer, Pushed};
pub use datacube::{ALL_SOURCES, StatEvent};
pub use news::FakeComment;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// How the fake platform is set up.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PlatformConfig {
    /// The account's AppID (default `wx0000000000000001`).
    pub appid: String,
    /// The account's AppSecret (default `fake-app-secret`).
    pub secret: String,
    /// Lifetime of access tokens and jsapi tickets (default 7200 s).
    pub token_lifetime: Duration,
    /// How long a token stays valid after a classic fetch (or a forced stable fetch)
    /// replaced it (default 300 s).
    pub overlap: Duration,
    /// The platform clock's start, ms since the Unix epoch (default 2023-11-14).
    pub start_ms: i64,
    /// OpenIDs per page of `user/get`, `user/tag/get` and the blacklist (default 10,000).
    pub user_page_size: usize,
    /// Customer-service messages allowed per user between two user interactions
    /// (default 20; the next one fails with 45047).
    pub cs_message_limit: u32,
    /// The WeCom corp's corpid (default `ww0000000000000001`), for `gettoken`.
    pub corpid: String,
    /// The WeCom app's Secret (default `fake-corp-secret`).
    pub corp_secret: String,
    /// The WeCom app's AgentID (default `1000002`), checked by `message/send`; more apps of
    /// the corp are added with [`FakePlatform::add_wecom_app`].
    pub agentid: String,
    /// The Open Platform third-party platform's appid (default `wx00000000000c0mp1`).
    pub component_appid: String,
    /// Its AppSecret (default `fake-component-secret`).
    pub component_secret: String,
    /// Its message Token (default `componenttoken`).
    pub component_token: String,
    /// Its EncodingAESKey (43 characters).
    pub component_aes_key: String,
}

impl Default for PlatformConfig {
    fn default() -> Self {
        Self {
            appid: "wx0000000000000001".into(),
            secret: "fake-app-secret".into(),
            token_lifetime: Duration::from_secs(7200),
            overlap: Duration::from_secs(300),
            start_ms: 1_700_000_000_000,
            user_page_size: 10_000,
            cs_message_limit: 20,
            corpid: "ww0000000000000001".into(),
            corp_secret: "fake-corp-secret".into(),
            agentid: "1000002".into(),
            component_appid: "wx00000000000c0mp1".into(),
            component_secret: "fake-component-secret".into(),
            component_token: "componenttoken".into(),
            component_aes_key: "c0mp0nentKeyOfTheFakeThirdPartyPlatform0123".into(),
        }
    }
}

impl PlatformConfig {
    /// Sets the classic-fetch overlap.
    pub fn overlap(mut self, overlap: Duration) -> Self {
        self.overlap = overlap;
        self
    }

    /// Sets the page size of user lists.
    pub fn user_page_size(mut self, size: usize) -> Self {
        self.user_page_size = size.max(1);
        self
    }

    /// Sets the customer-service message limit per user interaction.
    pub fn cs_message_limit(mut self, limit: u32) -> Self {
        self.cs_message_limit = limit;
        self
    }

    /// Sets the token lifetime.
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }
}

/// A fault injected at one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer `{errcode, errmsg}` with this code (HTTP 200), without doing anything.
    ErrCode(i64),
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Send headers, then close the connection before the body (the client sees a
    /// transport error).
    Drop,
    /// Answer normally, but send the body in ten pieces with this pause before each: a
    /// slow network (a large download that keeps arriving, just slowly).
    Trickle(Duration),
}

impl Fault {
    /// `-1`, system busy.
    pub const BUSY: Self = Self::ErrCode(-1);
    /// `40164`, IP not whitelisted.
    pub const IP_NOT_WHITELISTED: Self = Self::ErrCode(40164);
    /// `45009`, daily quota reached.
    pub const QUOTA: Self = Self::ErrCode(45009);
}

#[derive(Clone, Debug)]
struct FaultRule {
    path: String,
    fault: Fault,
    remaining: Option<u32>,
}

/// One request the platform received.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The query parameters.
    pub query: BTreeMap<String, String>,
    /// The request's `Content-Type`.
    pub content_type: Option<String>,
    /// The raw body.
    pub body: Bytes,
    /// The parts of a multipart body.
    pub parts: Vec<RecordedPart>,
    /// The `errcode` answered (`0` for success and binary answers; `None` for a dropped
    /// connection or a redirect).
    pub errcode: Option<i64>,
    /// The platform clock when it arrived.
    pub at_ms: i64,
}

impl Recorded {
    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The `access_token` query parameter.
    pub fn access_token(&self) -> Option<&str> {
        self.query.get("access_token").map(String::as_str)
    }
}

/// One part of a recorded multipart body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedPart {
    /// The field name.
    pub name: String,
    /// The file name, for file parts.
    pub file_name: Option<String>,
    /// The part's content type.
    pub content_type: Option<String>,
    /// The contents.
    pub data: Bytes,
}

/// A media item held by the platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMedia {
    /// `image`, `voice`, `video`, `thumb`.
    pub kind: String,
    /// The uploaded file name.
    pub file_name: String,
    /// The uploaded content type.
    pub content_type: String,
    /// The contents.
    pub data: Bytes,
    /// Permanent material (`add_material`) rather than temporary media.
    pub permanent: bool,
    /// A permanent video's `{title, introduction}`.
    pub description: Option<Value>,
}

/// A follower of the fake account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeUser {
    /// OpenID.
    pub openid: String,
    /// Nickname (as the OAuth2 userinfo endpoint returns it).
    pub nickname: String,
    /// UnionID, if the account is bound to an open platform.
    pub unionid: Option<String>,
    /// Whether the user follows the account.
    pub subscribe: bool,
    /// Remark set by the account.
    pub remark: String,
    /// Tag ids.
    pub tags: BTreeSet<i64>,
}

impl FakeUser {
    /// A following user with a nickname derived from the OpenID.
    pub fn new(openid: impl Into<String>) -> Self {
        let openid = openid.into();
        Self {
            nickname: format!("user {openid}"),
            openid,
            unionid: None,
            subscribe: true,
            remark: String::new(),
            tags: BTreeSet::new(),
        }
    }
}

#[derive(Clone, Debug)]
struct Token {
    expires_at: i64,
    dies_at: Option<i64>,
}

#[derive(Default)]
pub(crate) struct World {
    cfg: PlatformConfigSlot,
    now_ms: i64,
    seq: u64,
    tokens: HashMap<String, Token>,
    classic_current: Option<String>,
    stable_current: Option<String>,
    wecom: wecom::Corp,
    ticket: Option<(String, i64)>,
    faults: Vec<FaultRule>,
    scripted: HashMap<String, Value>,
    requests: Vec<Recorded>,
    media: HashMap<String, StoredMedia>,
    hd_voices: media::HdVoices,
    users: BTreeMap<String, FakeUser>,
    tags: BTreeMap<i64, String>,
    blacklist: BTreeSet<String>,
    migrations: users::Migrations,
    menu: Option<Value>,
    conditional: BTreeMap<i64, Value>,
    kf: BTreeMap<String, Value>,
    sessions: BTreeMap<String, (String, i64)>,
    industry: Option<(String, String)>,
    templates: BTreeMap<String, Value>,
    drafts: BTreeMap<String, (Vec<Value>, i64)>,
    published: BTreeMap<String, (Vec<Value>, i64)>,
    publish_jobs: HashMap<String, String>,
    qrcodes: HashMap<String, Value>,
    short_keys: HashMap<String, (String, i64, u64)>,
    oauth_user: Option<(String, String)>,
    oauth_codes: HashMap<String, (String, String)>,
    user_tokens: HashMap<String, (String, String, i64)>,
    refresh_tokens: HashMap<String, (String, String)>,
    mass: BTreeMap<i64, Value>,
    mass_speed: i64,
    cs_closed: HashSet<String>,
    cs_sent: HashMap<String, u32>,
    sent: Vec<Value>,
    news: news::Newsroom,
    stats: datacube::Ledger,
    cards: cards::CardDesk,
    component: component::Desk,
    kf_desk: kf::Desk,
    subscriptions: subscribe::Board,
    mass_uploads: mass::Uploads,
}

#[derive(Default)]
struct PlatformConfigSlot(Option<PlatformConfig>);

impl World {
    fn cfg(&self) -> &PlatformConfig {
        self.cfg.0.as_ref().expect("config is set at start")
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}{:08}{}", self.seq, rand::random::<u32>())
    }

    fn lifetime_ms(&self) -> i64 {
        ms(self.cfg().token_lifetime)
    }

    fn issue_token(&mut self) -> String {
        let value = self.next_id("ACCESS_TOKEN_");
        let expires_at = self.now_ms + self.lifetime_ms();
        self.tokens.insert(value.clone(), Token { expires_at, dies_at: None });
        value
    }

    fn retire(&mut self, value: &str) {
        let dies = self.now_ms + ms(self.cfg().overlap);
        if let Some(t) = self.tokens.get_mut(value) {
            t.dies_at = Some(t.dies_at.map_or(dies, |d| d.min(dies)));
        }
    }

    /// 0 when `token` may call, else the errcode.
    fn check_token(&self, token: Option<&str>) -> i64 {
        let Some(token) = token.filter(|t| !t.is_empty()) else { return 41001 };
        match self.tokens.get(token) {
            None => 40001,
            Some(t) if t.dies_at.is_some_and(|d| self.now_ms >= d) => 40001,
            Some(t) if self.now_ms >= t.expires_at => 42001,
            Some(_) => 0,
        }
    }

    fn take_fault(&mut self, path: &str) -> Option<Fault> {
        let idx = self.faults.iter().position(|r| r.path == path)?;
        let rule = &mut self.faults[idx];
        let fault = rule.fault.clone();
        if let Some(n) = &mut rule.remaining {
            *n -= 1;
            if *n == 0 {
                self.faults.remove(idx);
            }
        }
        Some(fault)
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) type Shared = Arc<Mutex<World>>;

fn lock(shared: &Shared) -> MutexGuard<'_, World> {
    shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The fake platform. Dropping it stops the server.
pub struct FakePlatform {
    world: Shared,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakePlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakePlatform").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Drop for FakePlatform {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A handle on the platform's clock (cheap to clone; reads the same time).
#[derive(Clone)]
pub struct PlatformClock(Shared);

impl std::fmt::Debug for PlatformClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PlatformClock").field(&self.now_ms()).finish()
    }
}

impl PlatformClock {
    /// The platform's time, ms since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        lock(&self.0).now_ms
    }

    /// Moves the platform's time forward.
    pub fn advance(&self, by: Duration) {
        lock(&self.0).now_ms += ms(by);
    }
}

impl FakePlatform {
    /// Starts a platform with the default configuration.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start() -> Self {
        Self::start_with(PlatformConfig::default()).await
    }

    /// Starts a platform with `cfg`.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start_with(cfg: PlatformConfig) -> Self {
        let world = World {
            now_ms: cfg.start_ms,
            mass_speed: 0,
            cfg: PlatformConfigSlot(Some(cfg)),
            ..World::default()
        };
        let world: Shared = Arc::new(Mutex::new(world));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let app = axum::Router::new().fallback(handle).with_state(world.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "fake platform stopped");
            }
        });
        Self { world, addr, server }
    }

    fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    /// The base URL (`http://127.0.0.1:<port>`): use it as the API, QR-code and OAuth2 base.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The AppID the platform accepts.
    pub fn appid(&self) -> String {
        self.world().cfg().appid.clone()
    }

    /// The AppSecret the platform accepts.
    pub fn secret(&self) -> String {
        self.world().cfg().secret.clone()
    }

    /// The platform's clock.
    pub fn clock(&self) -> PlatformClock {
        PlatformClock(self.world.clone())
    }

    /// The platform's time, ms since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        self.world().now_ms
    }

    /// Moves the platform's time forward (tokens, tickets, OAuth tokens expire by it).
    pub fn advance(&self, by: Duration) {
        self.world().now_ms += ms(by);
    }

    /// Injects `fault` at `path` for every request until [`clear_faults`](Self::clear_faults).
    pub fn inject(&self, path: &str, fault: Fault) {
        self.world().faults.push(FaultRule { path: path.to_owned(), fault, remaining: None });
    }

    /// Injects `fault` at `path` for the next `times` requests.
    pub fn inject_times(&self, path: &str, fault: Fault, times: u32) {
        if times > 0 {
            self.world().faults.push(FaultRule { path: path.to_owned(), fault, remaining: Some(times) });
        }
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.world().faults.clear();
    }

    /// Answers `path` with `answer` (after the token check) instead of the built-in behaviour.
    pub fn script(&self, path: &str, answer: Value) {
        self.world().scripted.insert(path.to_owned(), answer);
    }

    /// Removes the answer [`FakePlatform::script`] set for `path`: it answers as built in again.
    pub fn unscript(&self, path: &str) {
        self.world().scripted.remove(path);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.world().requests.clone()
    }

    /// The requests to `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.world().requests.iter().filter(|r| r.path == path).cloned().collect()
    }

    /// The last request to `path`.
    pub fn last_request(&self, path: &str) -> Option<Recorded> {
        self.world().requests.iter().rev().find(|r| r.path == path).cloned()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.world().requests.clear();
    }

    /// Requests to `/cgi-bin/token` and `/cgi-bin/stable_token` so far.
    pub fn token_requests(&self) -> usize {
        self.world()
            .requests
            .iter()
            .filter(|r| r.path == "/cgi-bin/token" || r.path == "/cgi-bin/stable_token")
            .count()
    }

    /// Requests answered with `errcode` so far.
    pub fn answered_with(&self, errcode: i64) -> usize {
        self.world().requests.iter().filter(|r| r.errcode == Some(errcode)).count()
    }

    /// Issues a classic token as if another process had called `/cgi-bin/token` (the
    /// previous classic token starts its overlap).
    pub fn issue_classic_token(&self) -> String {
        let mut w = self.world();
        let value = w.issue_token();
        if let Some(prev) = w.classic_current.replace(value.clone()) {
            w.retire(&prev);
        }
        value
    }

    /// Makes every access token issued so far invalid at once (40001).
    pub fn revoke_tokens(&self) {
        let mut w = self.world();
        let now = w.now_ms;
        for t in w.tokens.values_mut() {
            t.dies_at = Some(now);
        }
        w.classic_current = None;
        w.stable_current = None;
    }

    /// Whether `token` may call now.
    pub fn token_is_valid(&self, token: &str) -> bool {
        self.world().check_token(Some(token)) == 0
    }

    /// Adds (or replaces) a follower.
    pub fn add_user(&self, user: FakeUser) {
        self.world().users.insert(user.openid.clone(), user);
    }

    /// A follower as the platform holds it.
    pub fn user(&self, openid: &str) -> Option<FakeUser> {
        self.world().users.get(openid).cloned()
    }

    /// The OpenIDs on the blacklist.
    pub fn blacklist(&self) -> BTreeSet<String> {
        self.world().blacklist.clone()
    }

    /// A stored media item (temporary or permanent).
    pub fn media(&self, media_id: &str) -> Option<StoredMedia> {
        self.world().media.get(media_id).cloned()
    }

    /// Stores a media item directly; returns its media id.
    pub fn put_media(&self, media: StoredMedia) -> String {
        let mut w = self.world();
        let id = w.next_id("MEDIA_");
        w.media.insert(id.clone(), media);
        id
    }

    /// The current menu (`{"button": [...]}`), if one was created.
    pub fn menu(&self) -> Option<Value> {
        self.world().menu.clone()
    }

    /// Every message sent through customer-service, template, subscription and mass APIs
    /// (the request bodies), in order.
    pub fn sent_messages(&self) -> Vec<Value> {
        self.world().sent.clone()
    }

    /// The WeCom corpid `gettoken` accepts.
    pub fn corpid(&self) -> String {
        self.world().cfg().corpid.clone()
    }

    /// The WeCom app's Secret `gettoken` accepts.
    pub fn corp_secret(&self) -> String {
        self.world().cfg().corp_secret.clone()
    }

    /// The WeCom app's AgentID `message/send` accepts.
    pub fn agentid(&self) -> String {
        self.world().cfg().agentid.clone()
    }

    /// Adds another app of the WeCom corp (or replaces the Secret of one added before):
    /// `gettoken` with `secret` gives a token of its own, which `message/send` accepts for
    /// `agentid` only — another app's token is refused with `301002`, as WeCom does.
    pub fn add_wecom_app(&self, agentid: impl Into<String>, secret: impl Into<String>) {
        self.world().add_wecom_app(agentid.into(), secret.into());
    }

    /// The AgentID of the WeCom app a token was issued to by `gettoken`.
    pub fn wecom_token_app(&self, token: &str) -> Option<String> {
        self.world().wecom_token_app(token)
    }

    /// Every WeCom `message/send` body accepted, in order.
    pub fn wecom_messages(&self) -> Vec<Value> {
        self.world().wecom.sent.clone()
    }

    /// Makes customer-service messages to `openid` fail with 45015 (48 hours passed).
    pub fn close_cs_window(&self, openid: &str) {
        self.world().cs_closed.insert(openid.to_owned());
    }

    /// The user wrote again: reopens the window and resets the 45047 counter.
    pub fn user_interacted(&self, openid: &str) {
        let mut w = self.world();
        w.cs_closed.remove(openid);
        w.cs_sent.remove(openid);
    }

    /// Who approves on the OAuth2 consent page (`/connect/oauth2/authorize`) and
    /// `snsapi_userinfo` answers; also added as a follower.
    pub fn set_oauth_user(&self, user: FakeUser) {
        let mut w = self.world();
        w.oauth_user = Some((user.openid.clone(), user.nickname.clone()));
        w.users.insert(user.openid.clone(), user);
    }

    /// Issues an OAuth2 code for `openid` and `scope`, as the consent page would.
    pub fn oauth_code(&self, openid: &str, scope: &str) -> String {
        let mut w = self.world();
        let code = w.next_id("CODE_");
        w.oauth_codes.insert(code.clone(), (openid.to_owned(), scope.to_owned()));
        code
    }
}

enum Answer {
    Json(Value),
    Binary { content_type: String, data: Bytes },
    Redirect(String),
    Dropped,
}

fn errmsg_for(code: i64) -> &'static str {
    match code {
        -1 => "system error",
        0 => "ok",
        40001 => "invalid credential, access_token is invalid or not latest",
        40003 => "invalid openid",
        40007 => "invalid media_id",
        40013 => "invalid appid",
        40029 => "invalid code",
        40032 => "invalid openid list size",
        40037 => "invalid template_id",
        40066 => "invalid url",
        40014 => "invalid access_token",
        40125 => "invalid appsecret",
        40056 => "invalid agentid",
        40164 => "invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist",
        41001 => "access_token missing",
        42001 => "access_token expired",
        45009 => "reach max api daily quota limit",
        45015 => "response out of time limit or subscription is canceled",
        45047 => "out of response count limit",
        48001 => "api unauthorized",
        61003 => "component is not authorized by this account",
        61005 => "component ticket is expired",
        61006 => "component ticket is invalid",
        61010 => "code is expired",
        61011 => "invalid component",
        61023 => "refresh_token is invalid",
        63178 => "appid not match",
        301002 => "not allow operate another agent with this accesstoken",
        _ => "error",
    }
}

pub(crate) fn err(code: i64) -> Value {
    json!({ "errcode": code, "errmsg": format!("{} rid: fake-{code}", errmsg_for(code)) })
}

pub(crate) fn ok() -> Value {
    json!({ "errcode": 0, "errmsg": "ok" })
}

/// The endpoints in their own modules first, then the rest; mass sends are noted afterwards.
fn route(w: &mut World, method: &axum::http::Method, r: &Recorded) -> Answer {
    let answer = datacube::dispatch(w, method, r)
        .or_else(|| wecom::dispatch(w, method, r))
        .or_else(|| component::dispatch(w, method, r))
        .or_else(|| comments::dispatch(w, method, r))
        .or_else(|| cards::dispatch(w, method, r))
        .unwrap_or_else(|| api::dispatch(w, method, r));
    news::observe(w, r, &answer);
    answer
}

async fn handle(axum::extract::State(world): axum::extract::State<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let query: BTreeMap<String, String> =
        axum::extract::Query::try_from_uri(&parts.uri).map(|q| q.0).unwrap_or_default();
    let content_type =
        parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut recorded = Recorded {
        method: parts.method.to_string(),
        path: path.clone(),
        query,
        content_type: content_type.clone(),
        body: body.clone(),
        parts: Vec::new(),
        errcode: None,
        at_ms: 0,
    };
    if content_type.as_deref().is_some_and(|ct| ct.starts_with("multipart/form-data")) {
        let req = Request::from_parts(parts.clone(), Body::from(body.clone()));
        if let Ok(mut mp) = Multipart::from_request(req, &()).await {
            while let Ok(Some(field)) = mp.next_field().await {
                let name = field.name().unwrap_or_default().to_owned();
                let file_name = field.file_name().map(str::to_owned);
                let content_type = field.content_type().map(str::to_owned);
                let data = field.bytes().await.unwrap_or_default();
                recorded.parts.push(RecordedPart { name, file_name, content_type, data });
            }
        }
    }
    let fault = lock(&world).take_fault(&path);
    let trickle = match fault {
        Some(Fault::Trickle(pause)) => Some(pause),
        _ => None,
    };
    let answer = match fault {
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            None
        }
        Some(Fault::ErrCode(code)) => Some(Answer::Json(err(code))),
        Some(Fault::Drop) => Some(Answer::Dropped),
        Some(Fault::Trickle(_)) | None => None,
    };
    let mut w = lock(&world);
    recorded.at_ms = w.now_ms;
    let answer = answer.unwrap_or_else(|| route(&mut w, &parts.method, &recorded));
    recorded.errcode = match &answer {
        Answer::Json(v) => Some(v.get("errcode").and_then(Value::as_i64).unwrap_or(0)),
        Answer::Binary { .. } => Some(0),
        Answer::Redirect(_) | Answer::Dropped => None,
    };
    w.requests.push(recorded);
    drop(w);
    match answer {
        Answer::Json(v) => {
            let mut resp = axum::Json(v).into_response();
            // WeChat sends JSON errors as text/plain on some endpoints; the client must cope.
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; encoding=utf-8"));
            resp
        }
        Answer::Binary { content_type, data } => {
            let body = match trickle {
                None => Body::from(data),
                Some(pause) => {
                    let piece = data.len().div_ceil(10).max(1);
                    let pieces: Vec<Bytes> = (0..data.len())
                        .step_by(piece)
                        .map(|at| data.slice(at..(at + piece).min(data.len())))
                        .collect();
                    Body::from_stream(futures_util::StreamExt::then(
                        futures_util::stream::iter(pieces),
                        move |p| async move {
                            tokio::time::sleep(pause).await;
                            Ok::<_, std::io::Error>(p)
                        },
                    ))
                }
            };
            let mut resp = Response::new(body);
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                resp.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            resp
        }
        Answer::Redirect(location) => {
            let mut resp = StatusCode::FOUND.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp
        }
        Answer::Dropped => {
            let stream = futures_util::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "fault: drop",
                ))
            });
            let mut resp = Response::new(Body::from_stream(stream));
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
    }
}
