//! `wemp serve`: a rule bot from `wemp.toml` (or the embedded default), with a message log,
//! optional Redis dedup, late replies through the customer-service API, and rules that
//! reload on SIGHUP and when the config file changes.
//!
//! The web console (`wemp-console`) is mounted at `console.path` (default `/console`): it
//! observes every delivery, plays WeChat against the callback URL, shows `wemp doctor`'s
//! checks ([`ServeDoctor`]) and the rules with a reload button ([`ServeRules`], the same
//! path as SIGHUP).
//!
//! The pieces are public so tests can assemble the same server: [`ServedRules`] (the rules
//! compiled into a wemp-server router, swapped whole on reload), [`build_service`],
//! [`build_console`], [`app`] (the axum app: callback paths, metrics and the console) and
//! [`Reloader`].

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use wemp_console::{
    Access, Console, ConsoleAccount, ConsoleConfig, DoctorCheck, DoctorStatus, Language, ReloadReport,
    RuleSummary,
};
use wemp_proto::admission::Kind;
use wemp_proto::{Mode, Secret};
use wemp_server::{
    Component, CustomerServiceSink, LateReplySink, LiveRouter, MessageLogObserver, Observer, RuleService,
    SinkOutcome, WechatService,
};
use wemp_store::{DedupStore, LogWriter, LogWriterConfig, MessageLog};

use crate::config::{AccountError, Config, ConfigError, ServeArgs, TokenSource};
use crate::i18n::{Lang, Msg};
use crate::rules::{RuleInfo, RuleSet};
use crate::sim::check::Status;
use crate::storage::{self, LogLocation};
use crate::term::Style;

/// How long running handlers get to finish at shutdown (their late replies still go out).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How often `serve` reads the third-party platform's authorizers from the state, for those
/// authorized or removed through another instance.
pub const AUTHORIZER_REFRESH: Duration = Duration::from_secs(300);

/// How often the config file is checked for changes.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// The rules in effect: the compiled [`wemp_server::Router`] behind a [`LiveRouter`] (each
/// delivery runs on the router in effect when it arrived; a reload swaps it whole), and what
/// each rule is in the config's words, for the console.
pub struct ServedRules {
    router: LiveRouter,
    info: RwLock<Arc<[RuleInfo]>>,
    fallback: Option<RuleService>,
    gateway: Option<crate::gateway::Gateway>,
}

impl std::fmt::Debug for ServedRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedRules")
            .field("router", &self.router)
            .field("fallback", &self.fallback.is_some())
            .finish_non_exhaustive()
    }
}

impl ServedRules {
    /// Starts with `rules`.
    pub fn new(rules: RuleSet) -> Self {
        Self::with_fallback(rules, None)
    }

    /// Starts with `rules`; what no rule answers goes to `fallback` (the forwarder of
    /// `gateway.forward`), now and after every reload.
    pub fn with_fallback(rules: RuleSet, fallback: Option<RuleService>) -> Self {
        let info = rules.rules().into();
        let router = Self::routed(rules, fallback.as_ref());
        Self { router: LiveRouter::new(router), info: RwLock::new(info), fallback, gateway: None }
    }

    /// Starts with `rules` (compiled with [`ServedRules::compile`] on this gateway); what no
    /// rule answers goes to the gateway's `gateway.forward`, if set; rules reloaded later
    /// forward through the same gateway.
    pub fn with_gateway(rules: RuleSet, gateway: crate::gateway::Gateway) -> Self {
        let fallback = gateway.default_forward().map(crate::gateway::forwarding);
        Self { gateway: Some(gateway), ..Self::with_fallback(rules, fallback) }
    }

    /// Compiles `cfg`'s rules, each `forward` through this server's gateway (so a reload
    /// keeps the relay hub, the pool and the counters).
    ///
    /// # Errors
    /// As [`RuleSet::compile_with`].
    pub fn compile(&self, cfg: &Config) -> Result<RuleSet, Vec<crate::rules::RuleError>> {
        match &self.gateway {
            Some(g) => RuleSet::compile_with(&cfg.rules, &|t| g.forward(t)),
            None => cfg.compiled_rules(),
        }
    }

    fn routed(rules: RuleSet, fallback: Option<&RuleService>) -> wemp_server::Router {
        let router = rules.into_router();
        match fallback {
            Some(f) => router.fallback_service(f.clone()),
            None => router,
        }
    }

    /// The rules now, in the config's words.
    pub fn info(&self) -> Arc<[RuleInfo]> {
        self.info.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the rules: deliveries already running finish on the old router.
    pub fn swap(&self, rules: RuleSet) {
        let info: Arc<[RuleInfo]> = rules.rules().into();
        self.router.swap(Self::routed(rules, self.fallback.as_ref()));
        *self.info.write().unwrap_or_else(|e| e.into_inner()) = info;
    }

    /// The service answering deliveries with the router in effect.
    pub fn service(&self) -> wemp_server::BoxHandler {
        self.router.service()
    }
}

/// The late-reply sink of `serve`: wemp-server's [`CustomerServiceSink`] (the
/// customer-service message API through [`wemp_client::api::kf::KfApi::send_reply`]) for the
/// accounts that have an AppSecret; the others only log.
#[derive(Debug, Default)]
pub struct ClientSink {
    api: Option<CustomerServiceSink>,
}

impl ClientSink {
    /// A sink over these clients (each knows its appid), and `more` (a third-party
    /// platform's authorizers).
    pub fn new(
        clients: impl IntoIterator<Item = wemp_client::Client>,
        more: Option<wemp_server::ClientLookup>,
    ) -> Self {
        let mut api: Option<CustomerServiceSink> =
            more.map(|more| CustomerServiceSink::empty().more_clients(more));
        for c in clients {
            api = Some(match api {
                None => CustomerServiceSink::new(c),
                Some(sink) => sink.with_client(c),
            });
        }
        Self { api }
    }

    /// Whether no account can send.
    pub fn is_empty(&self) -> bool {
        self.api.is_none()
    }
}

#[async_trait::async_trait]
impl LateReplySink for ClientSink {
    async fn deliver(&self, appid: &str, openid: &str, reply: wemp_proto::Reply) -> SinkOutcome {
        match &self.api {
            // The server logs the outcome ("late reply not delivered"): once, not here too.
            Some(api) if api.client(appid).is_some() => api.deliver(appid, openid, reply).await,
            _ => wemp_server::LoggingSink::default().deliver(appid, openid, reply).await,
        }
    }
}

/// The appid an account is known by — in dedup keys, sessions, the message log and the
/// console: its appid, else its name, else `default`. An appid is used as it is (the cipher
/// checks it in every encrypted message, the API client asks a token for it; the config
/// check refuses two accounts with one appid); a name or `default` that an earlier account
/// already has, or that is an account's appid, gets the account's path appended
/// (`default/wechat/shop`).
pub fn account_id(cfg: &Config, i: usize) -> String {
    let base = |i: usize| {
        let a = cfg.accounts.get(i);
        a.and_then(|a| a.id().map(str::to_owned))
            .or_else(|| a.and_then(|a| a.name.clone()))
            .unwrap_or_else(|| "default".into())
    };
    let id = base(i);
    if cfg.accounts.get(i).is_some_and(|a| a.id().is_some()) {
        return id;
    }
    // Two accounts with neither appid nor name (or with the same name) would share an id, and
    // with it dedup keys, sessions and log entries: the later one adds its path.
    let taken = (0..i).any(|j| base(j) == id) || cfg.accounts.iter().any(|a| a.id() == Some(id.as_str()));
    if taken { format!("{id}{}", cfg.account_path(i)) } else { id }
}

/// The key account `i`'s state and records are kept under: its [`account_id`], or
/// `corpid/agentid` for a WeCom app with an AgentID ([`wemp_proto::admission::Account::key`]),
/// so that apps of one corp are told apart in the message log and the console.
pub fn account_key(cfg: &Config, i: usize) -> String {
    wemp_proto::admission::app_key(&account_id(cfg, i), cfg.accounts[i].agentid.as_deref())
}

/// API clients for the accounts that have an AppSecret (a WeCom app's client fetches its
/// token with `gettoken` and sends through `message/send`); `api_base` replaces
/// `https://api.weixin.qq.com` and `https://qyapi.weixin.qq.com` (for the fake platform).
///
/// # Errors
/// A client cannot be built.
pub fn api_clients(
    cfg: &Config,
    api_base: Option<&str>,
    tokens: Option<Arc<dyn wemp_store::TokenStore>>,
) -> Result<Vec<wemp_client::Client>, wemp_client::Error> {
    let mut clients = Vec::new();
    for (i, a) in cfg.accounts.iter().enumerate() {
        let Some(secret) = &a.appsecret else { continue };
        let mut b = wemp_client::Client::builder(account_id(cfg, i)).secret(secret.clone());
        // A WeCom app's client: gettoken with the corpid and the app's Secret, message/send.
        if a.kind == Kind::Wecom
            && let Some(agentid) = &a.agentid
        {
            b = b.wecom(agentid.clone());
        }
        if let Some(base) = api_base {
            b = b.all_base_urls(base);
        }
        if let Some(t) = &tokens {
            b = b.store(t.clone());
        }
        clients.push(b.build()?);
    }
    Ok(clients)
}

/// What the service is built from besides the config.
#[derive(Clone, Default)]
pub struct Parts {
    /// The dedup store; `None` for the server's memory store.
    pub dedup: Option<Arc<dyn DedupStore>>,
    /// The late-reply sink; `None` for the server's logging sink.
    pub sink: Option<Arc<dyn LateReplySink>>,
    /// The message log writer: every delivery (retries and refused requests included) is
    /// logged through it.
    pub log: Option<LogWriter>,
    /// More observers of every delivery (the web console's live feed).
    pub observers: Vec<Arc<dyn Observer>>,
    /// The API proxy, whose counters join the metrics.
    pub api_proxy: Option<wemp_server::ApiProxy>,
    /// Forwarding to apps (gateway mode), whose counters join the metrics.
    pub gateway: Option<crate::gateway::Gateway>,
    /// The third-party platform of `[component]`: its authorizers are served too.
    pub component: Option<Component>,
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parts")
            .field("dedup", &self.dedup.is_some())
            .field("sink", &self.sink.is_some())
            .field("log", &self.log.is_some())
            .field("observers", &self.observers.len())
            .field("api_proxy", &self.api_proxy.is_some())
            .field("gateway", &self.gateway.is_some())
            .field("component", &self.component.is_some())
            .finish()
    }
}

/// The last segment of a path (`/wechat/demo` → `demo`), which selects the account.
pub(crate) fn last_segment(path: &str) -> String {
    path.rsplit('/').find(|s| !s.is_empty()).unwrap_or_default().to_owned()
}

/// Why [`build_service`] cannot build the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// An account cannot be set up.
    #[error(transparent)]
    Account(#[from] crate::config::AccountError),
    /// The server refuses the set of accounts (two with one appid or path segment …).
    #[error(transparent)]
    Service(#[from] wemp_server::Error),
}

/// Builds the callback service of every account in `cfg`, answering with `rules`.
///
/// # Errors
/// [`BuildError`]: an account cannot be set up (the config was validated, so only an
/// invalid key), or the server refuses the accounts together.
pub fn build_service(cfg: &Config, rules: &ServedRules, parts: &Parts) -> Result<WechatService, BuildError> {
    let mut b = base_builder(cfg, parts);
    match &parts.component {
        // An authorizer not served yet is looked up in the platform's state on its first
        // message (another instance may have seen its authorization), and refreshed.
        Some(c) => b = b.account_source_arc(c.source()).handler_service(c.release_tests(rules.service())),
        None => b = b.handler_service(rules.service()),
    }
    for i in 0..cfg.accounts.len() {
        // Each account's mode is enforced for it alone: a safe-mode account refuses a plain
        // body even when its neighbours are plain.
        b = b.account(cfg.account(i)?);
    }
    if let Some(m) = &cfg.server.metrics_path {
        b = b.metrics_path(m.clone());
    }
    if let Some(s) = &parts.sink {
        b = b.late_sink_arc(s.clone());
    }
    if let Some(w) = &parts.log {
        // What the log could not keep (queue full, database down) is counted at the metrics path.
        let stats = w.stats().clone();
        b = b.metrics_source(move |out| stats.write_prometheus(out));
    }
    if let Some(p) = &parts.api_proxy {
        let p = p.clone();
        b = b.metrics_source(move |out| p.write_prometheus(out));
    }
    if let Some(g) = &parts.gateway {
        let g = g.clone();
        b = b.metrics_source(move |out| g.write_prometheus(out));
    }
    Ok(b.build()?)
}

/// The settings every service of `serve` shares: the deadline, limits, the dedup store and
/// the observers (the message log: every delivery, retry and refused request).
fn base_builder(cfg: &Config, parts: &Parts) -> wemp_server::WechatServiceBuilder {
    let mut b = WechatService::builder()
        .budget(cfg.server.deadline)
        .freshness_window(cfg.server.timestamp_window)
        .body_limit(usize::try_from(cfg.server.body_limit).unwrap_or(usize::MAX))
        .shutdown_grace(SHUTDOWN_GRACE);
    if let Some(d) = &parts.dedup {
        b = b.dedup_store_arc(d.clone());
    }
    if let Some(w) = &parts.log {
        b = b.observer(MessageLogObserver::new(w.clone()).include_retries(true).include_rejections(true));
    }
    for o in &parts.observers {
        b = b.observer_arc(o.clone());
    }
    b
}

/// The service of the third-party platform's authorization events (at `component.path`):
/// the component's account, whose pushes change `service`'s accounts and are counted in
/// `service`'s metrics.
///
/// # Errors
/// The server refuses the component's account.
pub fn build_push_service(
    cfg: &Config,
    component: &Component,
    service: &WechatService,
    parts: &Parts,
) -> Result<WechatService, BuildError> {
    let path = cfg.component.as_ref().map_or(crate::config::DEFAULT_COMPONENT_PATH, |c| c.path.as_str());
    Ok(base_builder(cfg, parts)
        .account(component.account(&last_segment(path)))
        .handler_service(component.push_handler(service.accounts().clone()))
        .count_in(service)
        .build()?)
}

/// The third-party platform of `[component]`, over its stored state (Redis, else the
/// message log's database: [`storage::state_store`]); `None` without the section. Its
/// tokens (the component's and the authorizers') are kept in `tokens` (Redis), else in the
/// state's store, shared by every process using it.
/// `api_base` replaces the platform's URLs (the fake platform in tests).
///
/// # Errors
/// The state cannot be opened, the AppSecret cannot be read or the client not built.
pub async fn component(
    cfg: &Config,
    api_base: Option<&str>,
    tokens: Option<Arc<dyn wemp_store::TokenStore>>,
) -> Result<Option<Component>, String> {
    let Some(c) = &cfg.component else { return Ok(None) };
    let (Some(appid), Some(token), Some(key)) = (&c.appid, &c.token, &c.aes_key) else {
        return Err("[component] needs appid, token and aes_key".into());
    };
    let secret = c.secret().map_err(|e| format!("component.appsecret: {e}"))?;
    let store = storage::state_store(&cfg.storage).await.map_err(|e| format!("component state: {e}"))?;
    // Without Redis the tokens live beside the state (the SQLite file or PostgreSQL
    // database), so `wemp serve`, `wemp component` and `wemp doctor` share one component
    // token instead of each fetching its own.
    let tokens = tokens.unwrap_or_else(|| Arc::new(wemp_store::SessionTokenStore::new(store.clone())));
    let state = wemp_store::ComponentState::new(store, appid.clone());
    let push_url = c.path.clone();
    let client = wemp_client::component::ComponentClient::builder(appid.clone(), secret, state)
        .client(|mut b| {
            if let Some(base) = api_base {
                b = b.all_base_urls(base);
            }
            b.store(tokens)
        })
        .push_url(format!("the 授权事件接收 URL ({push_url})"))
        .build()
        .map_err(|e| format!("component client: {e}"))?;
    let component =
        Component::new(client, token.clone(), key.expose()).map_err(|e| format!("component.aes_key: {e}"))?;
    Ok(Some(component.with_full_network_release(c.full_network_release)))
}

/// The service answering the accounts' callback paths: tapped for the console's live log when
/// there is a console (see [`app`]).
pub type Callback = tower::util::Either<wemp_console::TapService<WechatService>, WechatService>;

/// The HTTP app: each account's callback path and the metrics path go to `service`; with
/// a `console`, the callback paths are tapped for its live log and its routes (under
/// `console.path`) are merged in. The accounts' callback paths are answered before the
/// router is asked ([`Front`](wemp_server::Front)); merge other routes in with
/// [`Front::merge`](wemp_server::Front::merge).
pub fn app(
    cfg: &Config,
    service: WechatService,
    pushes: Option<(WechatService, &Component)>,
    console: Option<&Console>,
) -> wemp_server::Front<Callback> {
    let mut callback = axum::Router::new();
    let mut paths: Vec<String> = (0..cfg.accounts.len().max(1)).map(|i| cfg.account_path(i)).collect();
    paths.sort();
    paths.dedup();
    for p in &paths {
        callback = callback.route_service(p, service.clone());
    }
    let mut authorized = None;
    if let (Some((pushes, component)), Some(c)) = (pushes, &cfg.component) {
        // The authorizers (消息与事件接收 URL `…/$APPID$`) and the authorization events.
        let authorizers = authorizer_route(cfg);
        if !paths.contains(&authorizers) {
            callback = callback.route_service(&authorizers, service.clone());
        }
        callback = callback.route_service(&c.path, pushes);
        // The page the authorization's redirect opens (a browser's, not WeChat's call).
        let route = crate::component::authorized_route(component.clone(), service.accounts().clone());
        authorized = Some((crate::component::authorized_path(c), route));
    }
    let mut app = match console {
        Some(c) => c.tap(callback).merge(c.router()),
        None => callback,
    };
    if let Some((path, route)) = authorized {
        app = app.route(&path, route);
    }
    if let Some(m) = cfg.server.metrics_path.as_ref().filter(|m| !paths.contains(m)) {
        app = app.route_service(m, service.clone());
    }
    let callback = match console {
        Some(c) => tower::util::Either::Left(c.tap_service(service)),
        None => tower::util::Either::Right(service),
    };
    paths.iter().fold(wemp_server::Front::new(callback, app), |front, p| front.path(p))
}

/// The route of the authorizers' messages: `<server.path>/{appid}`.
fn authorizer_route(cfg: &Config) -> String {
    format!("{}/{{appid}}", cfg.server.path.trim_end_matches('/'))
}

/// The warning for a console without a token on a server that a public URL says sits behind
/// a proxy: the console trusts loopback requests without proxy headers, and a proxy that
/// forwards `/console` without them makes the public's requests look local.
pub fn proxied_console_warning(cfg: &Config, access: Option<&Access>) -> Option<String> {
    let url = cfg.console.public_url.as_deref()?;
    (access == Some(&Access::Loopback)).then(|| {
        format!(
            "console.public_url is {url:?}, so this server is reached through a proxy, and its console has no \
             token: keep {} off the proxy (docs/deploy.md proxies the callback path only) or set \
             WEMP_CONSOLE_TOKEN",
            cfg.console.path
        )
    })
}

/// Who may open the web console of a server bound to `bound`: `console.token` (or
/// `WEMP_CONSOLE_TOKEN`) when set, else loopback only; `None` when `console.enabled` is
/// false.
pub fn console_access(cfg: &Config, bound: SocketAddr) -> Option<Access> {
    cfg.console
        .enabled
        .then(|| Access::for_listener(bound, cfg.console.token.as_ref().map(|t| t.expose().to_owned())))
}

/// The web console's configuration for a server bound to `bound`: it plays WeChat for
/// every account, each against its own callback URL on this machine (the first account
/// is the default). `None` when disabled, or without an account and without a third-party
/// platform (`[component]`), whose authorizers become the console's accounts as they
/// authorize: such a console may start with none.
///
/// # Errors
/// An account the server could not answer for either ([`Config::account`]).
pub fn console_config(cfg: &Config, bound: SocketAddr) -> Result<Option<ConsoleConfig>, AccountError> {
    let Some(access) = console_access(cfg, bound) else { return Ok(None) };
    let mut accounts: Vec<ConsoleAccount> = Vec::with_capacity(cfg.accounts.len());
    for i in 0..cfg.accounts.len() {
        // Ids are what the server's records name the account by (`account_key`, unique).
        accounts.push(console_account(cfg, i, bound)?);
    }
    if accounts.is_empty() && cfg.component.is_none() {
        return Ok(None);
    }
    let mut c = ConsoleConfig::from_accounts(accounts);
    c.base_path = cfg.console.path.clone();
    // `[menu]` is one menu for the whole server: every account shows it.
    c.menu = cfg.menu.clone();
    c.access = access;
    if !cfg.console.users.is_empty() {
        c.users = cfg.console.users.clone();
    }
    Ok(Some(c))
}

/// Account `i` as the console plays it: its keys (never its AppSecret), the URL it is
/// reached at on this machine, the URL to paste into the WeChat console, and the id the
/// server's records and the message log name it by.
fn console_account(cfg: &Config, i: usize, bound: SocketAddr) -> Result<ConsoleAccount, AccountError> {
    let mut account =
        ConsoleAccount::new(local_url(cfg, i, bound), cfg.account(i)?).with_id(account_key(cfg, i));
    account.name.clone_from(&cfg.accounts[i].name);
    account.public_url = Some(callback_url(cfg, i, bound));
    Ok(account)
}

/// Builds the web console for a server bound to `bound`, with `wemp doctor`'s checks, the
/// live rules and their reload, the message log and the third-party platform's authorizers.
/// `None` when disabled.
///
/// # Errors
/// The console's configuration is unusable (the config was validated, so rarely).
pub fn build_console(
    cfg: &Config,
    bound: SocketAddr,
    doctor: ServeDoctor,
    rules: ServeRules,
    log: Option<Arc<dyn MessageLog>>,
    component: Option<&Component>,
) -> Result<Option<Console>, ConsoleSetupError> {
    let Some(config) = console_config(cfg, bound)? else { return Ok(None) };
    let mut b = Console::builder(config).doctor(doctor).rules(rules);
    if let Some(log) = log {
        b = b.message_log(log);
    }
    if let Some(c) = component {
        b = b.authorizers(crate::component::ConsoleAuthorizers(c.clone()));
    }
    Ok(Some(b.build()?))
}

/// Why the web console cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsoleSetupError {
    /// An account the server could not answer for either.
    #[error("web console: {0}")]
    Account(#[from] AccountError),
    /// The console refuses its configuration.
    #[error("web console: {0}")]
    Console(#[from] wemp_console::Error),
}

/// The URL of the web console from this machine (`http://127.0.0.1:8080/console/`).
pub fn console_url(cfg: &Config, bound: SocketAddr) -> String {
    let local = local_url(cfg, 0, bound);
    let origin = local.strip_suffix(&cfg.account_path(0)).unwrap_or(&local);
    format!("{origin}{}/", cfg.console.path)
}

/// `wemp doctor`'s checks for the console's setup page: the same checks, run on demand
/// with the arguments and environment `serve` started with.
pub struct ServeDoctor {
    args: ServeArgs,
    env: SharedEnv,
    api_base: Option<String>,
}

type SharedEnv = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

impl std::fmt::Debug for ServeDoctor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeDoctor").field("config", &self.args.config).finish_non_exhaustive()
    }
}

impl ServeDoctor {
    /// How long each network check may take.
    pub const TIMEOUT: Duration = Duration::from_secs(5);

    /// Checks for a server started from `args` and `env`, calling the API at `api_base`.
    pub fn new(
        args: ServeArgs,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
        api_base: Option<String>,
    ) -> Self {
        Self { args, env: Arc::new(env), api_base }
    }
}

#[async_trait::async_trait]
impl wemp_console::Doctor for ServeDoctor {
    async fn checks(&self, lang: Language) -> Vec<DoctorCheck> {
        let env = self.env.clone();
        // In the page's language, from the doctor's own catalogue (`crate::i18n`).
        let lang = match lang {
            Language::SimplifiedChinese => Lang::Zh,
            _ => Lang::En,
        };
        let report =
            crate::doctor::run(&self.args, move |k| env(k), self.api_base.as_deref(), Self::TIMEOUT, lang)
                .await;
        report
            .findings
            .into_iter()
            .map(|f| DoctorCheck {
                name: f.name,
                status: match f.status {
                    Status::Pass => DoctorStatus::Pass,
                    Status::Warn => DoctorStatus::Warn,
                    Status::Fail => DoctorStatus::Fail,
                    Status::Skip => DoctorStatus::Skip,
                },
                detail: f.details.join(" "),
            })
            .collect()
    }
}

/// The rules for the console's setup page: those in effect, and a reload through the
/// same [`Reloader`] as SIGHUP and file changes.
#[derive(Debug)]
pub struct ServeRules {
    live: Arc<ServedRules>,
    reloader: Arc<Reloader>,
}

impl ServeRules {
    /// The rules of `live`, reloaded by `reloader`.
    pub fn new(live: Arc<ServedRules>, reloader: Arc<Reloader>) -> Self {
        Self { live, reloader }
    }
}

#[async_trait::async_trait]
impl wemp_console::Rules for ServeRules {
    fn current(&self) -> Vec<RuleSummary> {
        self.live
            .info()
            .iter()
            .map(|r| RuleSummary {
                name: Some(r.name.clone()),
                when: r.when().to_owned(),
                reply: r.answer().to_owned(),
            })
            .collect()
    }

    async fn reload(&self) -> Result<ReloadReport, wemp_console::ReloadError> {
        match self.reloader.reload_and_log("reload from the web console") {
            Ok(report) => Ok(report),
            // Problems located in the config: the console words their places in its language.
            Err(ConfigError::Invalid(problems)) => Err(Box::new(wemp_console::ReloadRefused {
                problems: problems
                    .iter()
                    .map(|p| wemp_console::ReloadProblem {
                        source: p.source.clone(),
                        line: p.line,
                        field: p.field.clone(),
                        message: p.message.get(Lang::En),
                        messages: [("en", Lang::En), ("zh-CN", Lang::Zh)]
                            .into_iter()
                            .map(|(code, lang)| (code.to_owned(), p.message.get(lang)))
                            .collect(),
                        text: p.to_string(),
                    })
                    .collect(),
            })),
            Err(e) => Err(e.into()),
        }
    }
}

/// The file reloads watch and re-read: the one `resolve` found, or the one a generated token
/// was saved to.
pub fn watched_file(file: Option<&Path>, token: &TokenSource) -> Option<PathBuf> {
    match (file, token) {
        (Some(f), _) => Some(f.to_path_buf()),
        (None, TokenSource::Generated { saved_to }) => Some(saved_to.clone()),
        (None, TokenSource::Configured) => None,
    }
}

/// Reads an environment variable (`std::env::var` in the binary, a map in tests).
pub type EnvLookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Re-resolves the configuration and swaps the rules.
pub struct Reloader {
    args: ServeArgs,
    env: EnvLookup,
    rules: Arc<ServedRules>,
    running: Config,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").field("config", &self.args.config).finish_non_exhaustive()
    }
}

impl Reloader {
    /// A reloader for a server started from `args` and `env`, now running `running`.
    pub fn new(
        args: ServeArgs,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
        rules: Arc<ServedRules>,
        running: Config,
    ) -> Self {
        Self { args, env: Box::new(env), rules, running }
    }

    /// Resolves the configuration again; on success swaps the rules and reports how many
    /// there are now, plus the settings that changed but need a restart. On error the
    /// rules stay as they were.
    ///
    /// # Errors
    /// The configuration is invalid (with file and line) or unreadable.
    pub fn reload(&self) -> Result<ReloadReport, ConfigError> {
        let (cfg, _) = Config::resolve(&self.args, &self.env)?;
        let rules = self.rules.compile(&cfg).map_err(|errs| {
            ConfigError::Invalid(
                errs.into_iter()
                    .map(|e| crate::config::ConfigProblem {
                        source: "rules".into(),
                        line: None,
                        column: None,
                        field: Some(e.path),
                        message: e.message,
                    })
                    .collect(),
            )
        })?;
        let n = rules.len();
        for w in rules.warnings() {
            tracing::warn!("rules: {w}");
        }
        self.rules.swap(rules);
        let mut restart = Vec::new();
        if cfg.server != self.running.server {
            restart.push("[server]");
        }
        if cfg.storage != self.running.storage {
            restart.push("[storage]");
        }
        if cfg.api_proxy != self.running.api_proxy {
            restart.push("[api_proxy]");
        }
        if cfg.gateway != self.running.gateway {
            restart.push("[gateway]");
        }
        if cfg.console != self.running.console {
            restart.push("[console]");
        }
        if cfg.menu != self.running.menu {
            restart.push("[menu]");
        }
        // A token generated at start-up is in the file now; compare without it.
        let strip = |c: &Config| {
            c.accounts
                .iter()
                .map(|a| (a.appid.clone(), a.aes_key.clone(), a.appsecret.clone(), a.mode, a.path.clone()))
                .collect::<Vec<_>>()
        };
        let tokens = |c: &Config| c.accounts.iter().map(|a| a.token.clone()).collect::<Vec<_>>();
        if strip(&cfg) != strip(&self.running) || tokens(&cfg) != tokens(&self.running) {
            restart.push("[[accounts]]");
        }
        Ok(ReloadReport { rules: n, restart: restart.into_iter().map(str::to_owned).collect() })
    }

    /// Reloads and logs the outcome; `why` says what triggered it.
    ///
    /// # Errors
    /// Why the new rules were not taken (the previous ones stay in effect).
    pub fn reload_and_log(&self, why: &str) -> Result<ReloadReport, ConfigError> {
        match self.reload() {
            Ok(report) => {
                tracing::info!("rules reloaded ({why}): {} rules in effect", report.rules);
                if !report.restart.is_empty() {
                    tracing::warn!("{}", report.restart_note());
                }
                Ok(report)
            }
            Err(e) => {
                tracing::error!("reload ({why}) failed; keeping the previous rules:\n{e}");
                Err(e)
            }
        }
    }
}

/// SIGHUP, caught from the moment it is made (SIGHUP's default action ends the process, so
/// `serve` makes it before anything else).
pub struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    /// Starts catching SIGHUP (nothing to catch off Unix). Inside a tokio runtime.
    pub fn catch() -> Self {
        Self {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
        }
    }
}

/// Reloads on SIGHUP and whenever `file`'s contents change (checked every `every`), until
/// the task is dropped. A file that is empty for a moment — an editor writing it — is
/// waited out, not loaded as a configuration without rules.
pub async fn watch(reloader: Arc<Reloader>, file: Option<PathBuf>, every: Duration, hangup: Hangup) {
    let read = |f: &Option<PathBuf>| f.as_ref().and_then(|p| std::fs::read(p).ok());
    let mut last = read(&file);
    #[cfg(unix)]
    let mut hup = hangup.signal;
    #[cfg(not(unix))]
    let _ = hangup;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let hangup = async {
            match hup.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<()>();
        tokio::select! {
            () = hangup => {
                last = read(&file);
                let _ = reloader.reload_and_log("SIGHUP");
            }
            _ = tick.tick() => {
                let now = read(&file);
                if now.as_ref().is_some_and(|b| b.iter().all(u8::is_ascii_whitespace)) {
                    continue;
                }
                if now != last {
                    last = now;
                    let name = file.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
                    let _ = reloader.reload_and_log(&format!("{name} changed"));
                }
            }
        }
    }
}

/// The URL WeChat should call for account `i`: `console.public_url` (first account), else
/// built from the address the server listens on.
pub fn callback_url(cfg: &Config, i: usize, bound: SocketAddr) -> String {
    if i == 0
        && let Some(u) = &cfg.console.public_url
    {
        return u.clone();
    }
    format!("http://{bound}{}", cfg.account_path(i))
}

/// The URL to reach account `i` from this machine (`0.0.0.0` becomes `127.0.0.1`).
pub fn local_url(cfg: &Config, i: usize, bound: SocketAddr) -> String {
    format!("{}{}", local_origin(bound), cfg.account_path(i))
}

/// The URL the third-party platform's authorizers are reached at from this machine, each
/// under its appid: `http://127.0.0.1:8080/wechat` for `…/wechat/<appid>`.
pub fn authorizers_url(cfg: &Config, bound: SocketAddr) -> String {
    format!("{}{}", local_origin(bound), cfg.server.path.trim_end_matches('/'))
}

/// `http://host:port` of a server bound to `bound`, from this machine (`0.0.0.0` becomes
/// `127.0.0.1`).
fn local_origin(bound: SocketAddr) -> String {
    let host = match bound.ip() {
        ip if ip.is_unspecified() && bound.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    format!("http://{host}:{}", bound.port())
}

/// The relay endpoint (`forward = "relay"`) of account `i`'s path, and whether it is the
/// public one: from `console.public_url` (first account; `https://bot.example.com/wechat` →
/// `wss://bot.example.com/wechat/relay`), else from this machine
/// (`ws://127.0.0.1:8080/wechat/relay`).
pub fn relay_url(cfg: &Config, i: usize, bound: SocketAddr) -> (String, bool) {
    let public = i == 0 && cfg.console.public_url.is_some();
    let url = if public { callback_url(cfg, i, bound) } else { local_url(cfg, i, bound) };
    (format!("ws{}/relay", url.trim_start_matches("http").trim_end_matches('/')), public)
}

/// Whether the setup screen may print the Token and the EncodingAESKey.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secrets<'a> {
    /// Print them: standard output is a terminal, read by the person who started the server.
    Shown,
    /// Say where they are instead: standard output goes to a file or a journal (journald keeps
    /// what it is given), so only the config file's name is printed.
    Hidden {
        /// The config file the server read or the generated Token was saved to, if any.
        file: Option<&'a Path>,
    },
}

/// Where a secret field of account `i` came from when it is not shown: `WEMP_TOKEN`,
/// `--token`, or the config file.
fn secret_origin<'c>(cfg: &'c Config, i: usize, field: &str) -> Option<&'c str> {
    cfg.origins.get(&format!("accounts[{i}].{field}")).map(String::as_str)
}

/// `word` as one shell word: as it is when it needs no quoting, else in single quotes.
pub fn shell_word(word: &str) -> String {
    let plain =
        !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "_-./:@%+=,~".contains(c));
    if plain { word.to_owned() } else { format!("'{}'", word.replace('\'', "'\\''")) }
}

/// The `wemp sim send` command that tries account `i` locally. With the secrets hidden it
/// reads them where the server did: `--config FILE` (whose Token and EncodingAESKey `sim`
/// reads itself), or the `WEMP_*` variables `sim` also reads.
pub fn sim_command(cfg: &Config, i: usize, bound: SocketAddr, secrets: Secrets<'_>) -> String {
    let a = &cfg.accounts[i];
    let mut cmd = format!("wemp sim send {}", local_url(cfg, i, bound));
    // The kind and a WeCom app's ids, unless `--config` gives them.
    if !matches!(secrets, Secrets::Hidden { file: Some(_) }) {
        match a.kind {
            Kind::Wecom => {
                let _ = write!(cmd, " --kind wecom --corpid {}", a.corpid.as_deref().unwrap_or("CORPID"));
                if let Some(agentid) = &a.agentid {
                    let _ = write!(cmd, " --agentid {agentid}");
                }
            }
            Kind::Miniprogram => cmd.push_str(" --kind miniprogram"),
            _ => {}
        }
    }
    match secrets {
        Secrets::Shown => {
            let _ = write!(cmd, " --token {}", a.token.as_ref().map_or("T", Secret::expose));
            match (a.kind, &a.appid, &a.aes_key) {
                (Kind::Wecom, _, Some(key)) => {
                    let _ = write!(cmd, " --aes-key {}", key.expose());
                }
                (_, Some(appid), Some(key)) if a.mode.is_encrypted() => {
                    let _ = write!(cmd, " --appid {appid} --aes-key {} --mode {}", key.expose(), a.mode);
                }
                _ => {}
            }
        }
        Secrets::Hidden { file } => {
            // `sim --config` reads the file (and the WEMP_* variables) as `serve` did, and
            // picks the account whose path the URL ends in; without a file, `sim` reads
            // WEMP_TOKEN, WEMP_APPID and WEMP_AES_KEY itself. What came from a flag of
            // `serve` is repeated, the secrets as placeholders.
            if let Some(file) = file {
                let _ = write!(cmd, " --config {}", shell_word(&file.display().to_string()));
            }
            let flag = |field: &str| secret_origin(cfg, i, field).is_some_and(|o| o.starts_with("--"));
            if flag("token") {
                cmd.push_str(" --token TOKEN");
            }
            if a.kind == Kind::Wecom {
                if flag("aes_key") {
                    cmd.push_str(" --aes-key KEY");
                }
            } else if a.mode.is_encrypted() {
                if let Some(appid) = a.appid.as_ref().filter(|_| flag("appid") || file.is_none()) {
                    let _ = write!(cmd, " --appid {appid}");
                }
                if flag("aes_key") {
                    cmd.push_str(" --aes-key KEY");
                }
                if flag("mode") || file.is_none() {
                    let _ = write!(cmd, " --mode {}", a.mode);
                }
            }
        }
    }
    cmd.push_str(" text help");
    cmd
}

/// The `wemp log` command that reads the log this server writes: the flags that moved it
/// (`--config`, `--data-dir`, `--database`) repeated, so it works for any of them. A
/// database URL with a password is given as `"$WEMP_DATABASE"` when it came from there, and
/// with the password masked otherwise.
pub fn log_command(cfg: &Config, file: Option<&Path>) -> String {
    let mut cmd = with_config_flags("wemp log", cfg, file);
    let origin = |field: &str| cfg.origins.get(field).map(String::as_str);
    if let (Some(from), Some(url)) = (origin("storage.database"), &cfg.storage.database) {
        let masked = storage::redact_url(url);
        let word = match from {
            "WEMP_DATABASE" if masked != *url => "\"$WEMP_DATABASE\"".to_owned(),
            _ => shell_word(&masked),
        };
        let _ = write!(cmd, " --database {word}");
    }
    cmd
}

/// `command` with the `--config` and `--data-dir` this server was started with, when they
/// are not the defaults, so the command reads the same config and data.
fn with_config_flags(command: &str, cfg: &Config, file: Option<&Path>) -> String {
    let mut cmd = command.to_owned();
    let default_file = cfg.storage.data_dir.join(crate::config::WRITTEN_CONFIG);
    if let Some(f) = file
        && f != default_file
    {
        let _ = write!(cmd, " --config {}", shell_word(&f.display().to_string()));
    }
    if cfg.origins.contains_key("storage.data_dir") {
        let _ = write!(cmd, " --data-dir {}", shell_word(&cfg.storage.data_dir.display().to_string()));
    }
    cmd
}

fn mode_label(mode: Mode, lang: Lang) -> &'static str {
    match mode {
        Mode::Plain => Msg::ModePlain.get(lang),
        Mode::Compatible => Msg::ModeCompatible.get(lang),
        Mode::Safe => Msg::ModeSafe.get(lang),
    }
}

/// What the server runs with, for the start-up screen.
#[derive(Debug)]
pub struct ScreenInfo<'a> {
    /// The configuration.
    pub cfg: &'a Config,
    /// The config file read, if any.
    pub file: Option<&'a Path>,
    /// Whether the token was generated now.
    pub token: &'a TokenSource,
    /// The address bound.
    pub bound: SocketAddr,
    /// The rules in effect.
    pub rules: usize,
    /// The message log.
    pub log: &'a LogLocation,
    /// Whether late replies go through the API.
    pub late_api: bool,
    /// Who may open the web console (`None`: disabled in the config).
    pub console: Option<&'a Access>,
    /// The language to speak (from the locale: [`Lang::detect`]).
    pub lang: Lang,
    /// Whether standard output is a terminal: only then are the Token and the
    /// EncodingAESKey printed (a journal keeps what it is given).
    pub terminal: bool,
}

/// The start-up screen: what to paste into the WeChat console, and the `wemp sim` command
/// that tries the bot locally, in the user's language.
pub fn setup_screen(info: &ScreenInfo<'_>, style: Style) -> String {
    let cfg = info.cfg;
    let lang = info.lang;
    // The file holding the secrets: the config read, or the one the generated Token went to.
    let file = match info.token {
        TokenSource::Generated { saved_to } => info.file.or(Some(saved_to.as_path())),
        TokenSource::Configured => info.file,
    };
    let secrets = if info.terminal { Secrets::Shown } else { Secrets::Hidden { file } };
    let mut s = String::new();
    // A first start writes the config it runs (demo rules and the generated Token): say so,
    // rather than "built-in", since editing that file is how the user goes on.
    let from = match (info.file, info.token) {
        (Some(f), _) => Msg::FromFile.fill(lang, &[("file", &f.display())]),
        (None, TokenSource::Generated { saved_to }) => {
            Msg::FromWritten.fill(lang, &[("file", &saved_to.display())])
        }
        (None, TokenSource::Configured) => Msg::FromBuiltIn.get(lang).to_owned(),
    };
    let running = Msg::Running
        .fill(lang, &[("url", &local_url(cfg, 0, info.bound)), ("from", &from), ("rules", &info.rules)]);
    // Only the product name is bold, as before: the rest of the line is plain.
    let _ = writeln!(s, "{}", running.replacen("wemp serve", &style.bold("wemp serve"), 1));
    let labels = [Msg::FieldUrl, Msg::FieldToken, Msg::FieldAesKey, Msg::FieldMode, Msg::FieldFormat]
        .map(|m| m.get(lang));
    let width = labels.iter().map(|l| crate::term::display_width(l)).max().unwrap_or(0) + 2;
    let field = |s: &mut String, label: Msg, value: &str| {
        let _ = writeln!(s, "  {}{value}", crate::term::pad(label.get(lang), width));
    };
    for (i, a) in cfg.accounts.iter().enumerate() {
        let name = a.name.clone().or_else(|| a.id().map(str::to_owned));
        let title = match (&name, cfg.accounts.len()) {
            (_, 1) | (None, _) => String::new(),
            (Some(n), _) => Msg::ForAccount.fill(lang, &[("name", n)]),
        };
        let _ = writeln!(s);
        let paste = match (a.kind, &a.agentid) {
            (Kind::Wecom, Some(agentid)) => {
                Msg::WecomPasteInto.fill(lang, &[("title", &title), ("agentid", agentid)])
            }
            // No AgentID: a service provider's suite, whose callbacks carry none.
            (Kind::Wecom, None) => Msg::WecomSuitePasteInto.fill(
                lang,
                &[
                    ("title", &title),
                    ("suiteid", &a.corpid.as_deref().unwrap_or_default()),
                    ("field", &format!("accounts[{i}].agentid")),
                ],
            ),
            (Kind::Miniprogram, _) => Msg::MiniprogramPasteInto.fill(lang, &[("title", &title)]),
            _ => Msg::PasteInto.fill(lang, &[("title", &title)]),
        };
        let _ = writeln!(s, "{paste}");
        field(&mut s, Msg::FieldUrl, &callback_url(cfg, i, info.bound));
        // Off a terminal, say where each secret is instead of printing it.
        let hidden = |name: &str| match (secret_origin(cfg, i, name), file) {
            (Some(origin), _) => Msg::SecretFrom.fill(lang, &[("origin", &origin)]),
            (None, Some(f)) => Msg::SecretIn
                .fill(lang, &[("field", &format!("accounts[{i}].{name}")), ("file", &f.display())]),
            (None, None) => Msg::SecretFrom.fill(lang, &[("origin", &"?")]),
        };
        let token = match (&a.token, info.terminal) {
            (Some(t), true) => t.expose().to_owned(),
            (Some(_), false) => hidden("token"),
            (None, _) => "?".to_owned(),
        };
        field(&mut s, Msg::FieldToken, &token);
        let key = match (&a.aes_key, info.terminal) {
            (Some(k), true) => k.expose().to_owned(),
            (Some(_), false) => hidden("aes_key"),
            (None, _) => Msg::AnyKey.get(lang).to_owned(),
        };
        field(&mut s, Msg::FieldAesKey, &key);
        // WeCom callbacks are always encrypted: its console has no mode to choose.
        if a.kind != Kind::Wecom {
            field(&mut s, Msg::FieldMode, mode_label(a.effective_mode(), lang));
        }
        if a.kind == Kind::Miniprogram {
            field(&mut s, Msg::FieldFormat, Msg::FormatEither.get(lang));
            let replies =
                if a.appsecret.is_some() { Msg::MiniprogramReplies } else { Msg::MiniprogramNoSecret };
            let _ = writeln!(s, "  {} {}", style.yellow(Msg::Note.get(lang)), replies.get(lang));
        }
        if i == 0 && cfg.console.public_url.is_none() {
            let _ = writeln!(s, "  {} {}", style.yellow(Msg::Note.get(lang)), Msg::PortsNote.get(lang));
        }
    }
    if let Some(c) = &cfg.component {
        let origin = callback_url(cfg, 0, info.bound);
        let origin = origin.strip_suffix(&cfg.account_path(0)).unwrap_or(&origin);
        let appid = c.appid.as_deref().unwrap_or("?");
        let _ = writeln!(s);
        let _ = writeln!(s, "{}", Msg::ComponentPasteInto.fill(lang, &[("appid", &appid)]));
        let labels =
            [Msg::FieldAuthEventUrl, Msg::FieldAuthorizerUrl, Msg::FieldAuthStartDomain].map(|m| m.get(lang));
        let width = labels.iter().map(|l| crate::term::display_width(l)).max().unwrap_or(0) + 2;
        let authorizers = format!("{origin}{}/$APPID$", cfg.server.path.trim_end_matches('/'));
        let domain = origin.split_once("://").map_or(origin, |(_, host)| host);
        let values = [format!("{origin}{}", c.path), authorizers, domain.to_owned()];
        for (label, value) in labels.into_iter().zip(values) {
            let _ = writeln!(s, "  {}{value}", crate::term::pad(label, width));
        }
        let _ = writeln!(s, "  {}", Msg::ComponentSecrets.get(lang));
        let page = format!("{origin}{}", crate::component::authorized_path(c));
        let _ = writeln!(s, "  {}", Msg::AuthorizedPageAt.fill(lang, &[("url", &page)]));
        let authorize = with_config_flags("wemp component authorize-url", cfg, info.file);
        let _ = writeln!(s, "  {}", Msg::AuthorizeWith.fill(lang, &[("command", &authorize)]));
    }
    if let TokenSource::Generated { saved_to } = info.token {
        let _ = writeln!(s);
        let _ = writeln!(s, "{}", Msg::TokenSaved.fill(lang, &[("path", &saved_to.display())]));
    }
    // A third-party platform without accounts of its own has nothing to try before an
    // account authorizes it (its section above says where the authorization starts).
    if !cfg.accounts.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(s, "{}", Msg::TryLocally.get(lang));
        let _ = writeln!(s, "  {}", sim_command(cfg, 0, info.bound, secrets));
    }
    let _ = writeln!(s);
    let url = console_url(cfg, info.bound);
    let console = match info.console {
        None => Msg::ConsoleOff.get(lang).to_owned(),
        Some(Access::Loopback) => Msg::ConsoleLoopback.fill(lang, &[("url", &style.bold(&url))]),
        Some(Access::Token(_)) => Msg::ConsoleToken.fill(lang, &[("url", &style.bold(&url))]),
        Some(_) => format!(
            "{} {}",
            style.yellow(Msg::ConsoleOffLabel.get(lang)),
            Msg::ConsoleNoToken.fill(lang, &[("url", &url)])
        ),
    };
    let _ = writeln!(s, "{}", Msg::Console.fill(lang, &[("console", &console)]));
    let _ = writeln!(s);
    let late = if info.late_api { Msg::LateApi } else { Msg::LateLogged }.get(lang);
    let dedup = if cfg.storage.redis.is_some() { Msg::DedupRedis } else { Msg::DedupMemory }.get(lang);
    let _ = writeln!(
        s,
        "{}",
        Msg::MessageLog.fill(
            lang,
            &[
                ("log", &info.log.describe()),
                ("command", &log_command(cfg, file)),
                ("dedup", &dedup),
                ("late", &late)
            ]
        )
    );
    if let Some(m) = &cfg.server.metrics_path {
        let _ = writeln!(s, "{}", Msg::Metrics.fill(lang, &[("url", &format!("http://{}{m}", info.bound))]));
    }
    let reload = match watched_file(info.file, info.token) {
        Some(f) => Msg::ReloadFile.fill(lang, &[("file", &f.display())]),
        None => Msg::ReloadHup.get(lang).to_owned(),
    };
    let _ = writeln!(s, "{reload} {}", Msg::Stop.get(lang));
    s
}

/// Options of `serve` that are not configuration.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The API base URL instead of `https://api.weixin.qq.com` (`WEMP_API_BASE`; the fake
    /// platform in tests).
    pub api_base: Option<String>,
}

/// Why `serve` could not start.
#[derive(Debug)]
pub struct StartError {
    /// What went wrong, ready to print.
    pub message: String,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn fail(message: impl Into<String>) -> StartError {
    StartError { message: message.into() }
}

/// Runs `wemp serve` until `shutdown` completes: resolves the config, makes sure there is a
/// token, opens the stores, binds, prints the setup screen to stdout, serves, reloads rules
/// on SIGHUP and file change, and at shutdown drains handlers and flushes the log.
///
/// # Errors
/// The configuration is invalid, a store cannot be opened or the address cannot be bound.
pub async fn run(
    args: ServeArgs,
    env: impl Fn(&str) -> Option<String> + Clone + Send + Sync + 'static,
    opts: RunOptions,
    style: Style,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let hangup = Hangup::catch();
    let lang = Lang::from_env(&env);
    let (mut cfg, file) = Config::resolve(&args, &env).map_err(|e| fail(e.text(lang)))?;
    let token = crate::config::ensure_token(&mut cfg, file.as_deref(), &mut rand::rng())
        .map_err(|e| fail(e.text(lang)))?;
    let watched = watched_file(file.as_deref(), &token);
    // Forwarding (gateway.forward, rules' forward): one gateway, kept across reloads; a
    // message no rule answers goes to gateway.forward, when set.
    // Built even when nothing forwards yet: a rule given a `forward` on reload uses it (with
    // [gateway]'s secret and fallback as they were at start).
    let gateway = crate::gateway::Gateway::of(&cfg).map_err(|e| fail(e.to_string()))?;
    let rules = RuleSet::compile_with(&cfg.rules, &|t| gateway.forward(t))
        .map_err(|errs| fail(errs.iter().map(|e| e.text(lang)).collect::<Vec<_>>().join("\n")))?;
    let n_rules = rules.len();
    for w in rules.warnings() {
        tracing::warn!("rules: {w}");
    }
    let live = Arc::new(ServedRules::with_gateway(rules, gateway.clone()));
    let forward = gateway.default_forward().cloned();

    let location = LogLocation::of(&cfg.storage);
    let log = location
        .open()
        .await
        .map_err(|e| fail(Msg::CannotOpenLog.fill(lang, &[("log", &location.describe()), ("error", &e)])))?;
    // Batches the database fails wait on local disk until it answers again.
    let spool = wemp_store::SpoolConfig::new(cfg.storage.spool_dir());
    let writer = LogWriter::spawn(log.clone(), LogWriterConfig::default().spool(spool));
    let retention = cfg.storage.retention.map(|r| tokio::spawn(wemp_store::apply_retention(log.clone(), r)));
    let redis_err = |e: wemp_store::StoreError| {
        let url = cfg.storage.redis.as_deref().map(storage::redact_url).unwrap_or_default();
        fail(Msg::RedisAtStart.fill(lang, &[("url", &url), ("error", &e)]))
    };
    let dedup = storage::dedup_store(&cfg.storage).await.map_err(redis_err)?;
    let tokens = storage::token_store(&cfg.storage).await.map_err(redis_err)?;
    let component = component(&cfg, opts.api_base.as_deref(), tokens.clone()).await.map_err(fail)?;
    let clients =
        api_clients(&cfg, opts.api_base.as_deref(), tokens).map_err(|e| fail(format!("API client: {e}")))?;
    let more = component.as_ref().map(Component::clients);
    let api_proxy = crate::gateway::api_proxy(&cfg, &clients, more.clone());
    let late_api = !clients.is_empty() || more.is_some();
    let sink: Option<Arc<dyn LateReplySink>> =
        late_api.then(|| Arc::new(ClientSink::new(clients, more)) as Arc<dyn LateReplySink>);
    let listener = tokio::net::TcpListener::bind(&cfg.server.listen)
        .await
        .map_err(|e| fail(Msg::CannotListen.fill(lang, &[("addr", &cfg.server.listen), ("error", &e)])))?;
    let bound = listener.local_addr().map_err(|e| fail(e.to_string()))?;

    let reloader = Arc::new(Reloader::new(args.clone(), env.clone(), live.clone(), cfg.clone()));
    // The doctor checks the running server: the address it bound, not `:0`.
    let doctor_args = ServeArgs { listen: Some(bound.to_string()), ..args };
    let doctor = ServeDoctor::new(doctor_args, env, opts.api_base.clone());
    let console = build_console(
        &cfg,
        bound,
        doctor,
        ServeRules::new(live.clone(), reloader.clone()),
        Some(log),
        component.as_ref(),
    )
    .map_err(|e| fail(e.to_string()))?;
    let observers: Vec<Arc<dyn Observer>> =
        console.iter().map(|c| Arc::new(c.observer()) as Arc<dyn Observer>).collect();
    let proxy_listener = match (&api_proxy, &cfg.api_proxy.listen) {
        (Some(_), Some(addr)) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| fail(format!("cannot listen on {addr} (api_proxy.listen): {e}")))?,
        ),
        _ => None,
    };
    let parts = Parts {
        dedup,
        sink,
        log: Some(writer.clone()),
        observers,
        api_proxy: api_proxy.clone(),
        gateway: Some(gateway.clone()),
        component: component.clone(),
    };
    let service = build_service(&cfg, &live, &parts).map_err(|e| fail(e.to_string()))?;
    let pushes = match &component {
        Some(c) => Some(build_push_service(&cfg, c, &service, &parts).map_err(|e| fail(e.to_string()))?),
        None => None,
    };
    // The console plays the authorizers too, at `<server.path>/<appid>`.
    if let (Some(console), Some(_)) = (&console, &component) {
        console.live_accounts(service.accounts().clone(), authorizers_url(&cfg, bound));
    }
    // The authorizers stored now, and every few minutes those authorized or removed through
    // another instance.
    let refresh = if component.is_some() {
        if let Err(e) = service.accounts().refresh().await {
            tracing::warn!(error = %e, "cannot read the third-party platform's authorizers at start");
        }
        Some(service.accounts().spawn_refresh(AUTHORIZER_REFRESH))
    } else {
        None
    };
    if cfg.console.show_setup {
        let screen = setup_screen(
            &ScreenInfo {
                cfg: &cfg,
                file: file.as_deref(),
                token: &token,
                bound,
                rules: n_rules,
                log: &location,
                late_api,
                console: console.as_ref().map(|c| &c.config().access),
                lang,
                terminal: std::io::stdout().is_terminal(),
            },
            style,
        );
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(screen.as_bytes());
        let _ = out.flush();
    }
    tracing::info!(%bound, rules = n_rules, log = %location.describe(), "serving");
    if let Some(warning) = proxied_console_warning(&cfg, console.as_ref().map(|c| &c.config().access)) {
        tracing::warn!("{warning}");
    }

    let watcher = tokio::spawn(watch(reloader, watched, WATCH_INTERVAL, hangup));

    let pushes = pushes.zip(component.as_ref());
    let mut router = app(&cfg, service.clone(), pushes, console.as_ref());
    if let Some(relay) = gateway.relay() {
        // The relay endpoint: a WebSocket each `wemp relay` keeps open (outside the console's
        // tap: it is not a delivery).
        let mut mounted = Vec::new();
        for i in 0..cfg.accounts.len().max(1) {
            let path = crate::gateway::relay_path(&cfg, i);
            if mounted.contains(&path) {
                continue;
            }
            router = router.merge(relay.router(&path));
            mounted.push(path);
            let (url, public) = relay_url(&cfg, i, bound);
            tracing::info!(target: "wemp::relay", "relay endpoint at {url} (wemp relay {url} --to <your app>)");
            if cfg.console.show_setup {
                use std::io::Write as _;
                let mut out = std::io::stdout().lock();
                let line = if public { Msg::RelayEndpoint } else { Msg::RelayEndpointLocal };
                let _ = writeln!(out, "{}", line.fill(lang, &[("url", &url)]));
                let _ = out.flush();
            }
        }
    }
    let mut proxy_task = None;
    if let Some(proxy) = &api_proxy {
        let at = match proxy_listener {
            Some(l) => {
                let addr = l.local_addr().map_err(|e| fail(e.to_string()))?;
                let routes = proxy.router();
                proxy_task = Some(tokio::spawn(wemp_server::serve_router(
                    l,
                    routes,
                    cfg.server.limits(),
                    std::future::pending(),
                )));
                addr
            }
            None => {
                router = router.merge(proxy.router());
                bound
            }
        };
        tracing::info!(target: "wemp::api_proxy", "API proxy on http://{at}/api/ (Authorization: Bearer <api_proxy.token>)");
        if cfg.console.show_setup {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            let _ =
                writeln!(out, "API proxy: http://{at}/api/<path> (Authorization: Bearer <api_proxy.token>)");
            let _ = out.flush();
        }
        if proxy.is_empty() {
            tracing::warn!(
                "api_proxy.token is set but no account has an appsecret: every proxied call is refused"
            );
        }
    }
    if let Some(f) = &forward {
        let signed = if cfg.gateway.forward_secret.is_some() { "signed" } else { "unsigned: loopback" };
        let to = match f.url() {
            wemp_server::RELAY_TARGET => "the relay clients (wemp relay)",
            url => url,
        };
        tracing::info!(target: "wemp::forward", "forwarding messages no rule answers to {to} ({signed})");
        if cfg.console.show_setup {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            let _ =
                writeln!(out, "Forwarding: messages no rule answers go to {to} ({signed}; docs/gateway.md)");
            let _ = out.flush();
        }
    }
    let served = wemp_server::serve_front(listener, router, cfg.server.limits(), shutdown).await;
    if let Some(t) = proxy_task {
        t.abort();
    }
    watcher.abort();
    if let Some(r) = refresh {
        r.abort();
    }
    if let Some(r) = retention {
        r.abort();
    }
    tracing::info!("shutting down: waiting for running handlers, then flushing the message log");
    if !service.drain(SHUTDOWN_GRACE).await {
        tracing::warn!(
            abandoned = service.in_flight(),
            "shutdown grace period over; abandoning running handlers"
        );
    }
    writer.shutdown().await;
    let stats = writer.stats();
    tracing::info!(logged = stats.written(), dropped = stats.dropped(), "message log flushed; stopped");
    served.map_err(|e| fail(format!("server error: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_rules_swap_as_a_whole() {
        let live = Arc::new(ServedRules::new(RuleSet::demo()));
        let before = live.info();
        live.swap(RuleSet::from_toml("[[rules]]\ndefault = true\nreply.text = \"x\"\n").unwrap());
        assert_eq!(live.info().len(), 1);
        assert!(before.len() > 1, "a loaded set stays whole after a swap");
    }

    #[tokio::test]
    async fn the_matching_rule_names_the_handler() {
        use axum::body::Body;
        use tower::ServiceExt as _;

        let records = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = records.clone();
        let rules = RuleSet::from_toml(
            "[[rules]]\nname = \"greeting\"\nkeyword = \"hi\"\nreply.text = \"hello\"\n\
             [[rules]]\ndefault = true\nreply.text = \"?\"\n",
        )
        .unwrap();
        let svc = wemp_server::WechatService::builder()
            .account(wemp_server::Account::new("wx_rules", "Tok123"))
            .handler_service(ServedRules::new(rules).service())
            .observer(move |r: &Arc<wemp_server::DeliveryRecord>| seen.lock().unwrap().push(r.clone()))
            .build()
            .unwrap();
        let platform = wemp_proto::wechat::Platform::new("Tok123");
        for (i, text) in ["hi", "other"].into_iter().enumerate() {
            let xml = format!(
                "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>\
                 <MsgType>text</MsgType><Content>{text}</Content><MsgId>{i}</MsgId></xml>"
            );
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
            let req = platform.post(Mode::Plain, &xml, "o1", "gh_1", &now.to_string(), "7", [0; 16]).unwrap();
            let http =
                http::Request::post(format!("/?{}", req.query_string())).body(Body::from(req.body)).unwrap();
            let res = svc.clone().into_router().oneshot(http).await.unwrap();
            assert_eq!(res.status(), 200);
        }
        let names: Vec<_> = records.lock().unwrap().iter().map(|r| r.handler.clone()).collect();
        assert_eq!(names, [Some("greeting".into()), Some("rules[1]".into())]);
    }

    #[tokio::test]
    async fn client_sink_sends_late_replies_through_the_customer_service_api() {
        use wemp_testkit::platform::FakePlatform;
        let platform = FakePlatform::start().await;
        let mut cfg = Config::embedded();
        cfg.accounts.push(crate::config::AccountConfig {
            token: Some("Tok123".into()),
            appid: Some(platform.appid()),
            appsecret: Some(platform.secret().into()),
            ..Default::default()
        });
        let sink = ClientSink::new(api_clients(&cfg, Some(&platform.url()), None).unwrap(), None);
        assert!(!sink.is_empty());
        let appid = platform.appid();
        let out = sink.deliver(&appid, "o_late", wemp_proto::Reply::text("sorry for the wait")).await;
        assert_eq!(out, SinkOutcome::Delivered);
        let sent = platform.sent_messages();
        assert_eq!(sent[0]["touser"], "o_late");
        assert_eq!(sent[0]["text"]["content"], "sorry for the wait");
        platform.close_cs_window("o_late");
        let out = sink.deliver(&appid, "o_late", wemp_proto::Reply::text("again")).await;
        assert_eq!(out, SinkOutcome::WindowExpired);
        let transfer = wemp_proto::Reply::TransferCustomerService { kf_account: None };
        assert_eq!(sink.deliver(&appid, "o_x", transfer).await, SinkOutcome::Unsupported);
        // An account without a client only logs.
        assert_eq!(sink.deliver("wx_other", "o_x", wemp_proto::Reply::text("x")).await, SinkOutcome::Logged);
        // A platform error is reported with its code.
        platform.inject_times(
            "/cgi-bin/message/custom/send",
            wemp_testkit::platform::Fault::ErrCode(48001),
            1,
        );
        let out = sink.deliver(&appid, "o_y", wemp_proto::Reply::text("x")).await;
        assert!(matches!(out, SinkOutcome::Failed { errcode: Some(48001), .. }), "{out:?}");
    }

    /// Two entries for one appid (the same account at a second path, configured in code
    /// where the config check does not run) are refused; the appid stays the appid — it is what the
    /// cipher checks in every encrypted message and what the API client asks a token for —
    /// even though an earlier account already uses it.
    #[tokio::test]
    async fn an_account_id_never_rewrites_the_appid() {
        use axum::body::Body;
        use tower::ServiceExt as _;

        const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
        const APPID: &str = "wx00000000000000b2";
        let mut cfg = Config::embedded();
        for path in ["/wechat", "/wechat/v2"] {
            cfg.accounts.push(crate::config::AccountConfig {
                token: Some("Tok123".into()),
                appid: Some(APPID.into()),
                aes_key: Some(KEY.into()),
                mode: Mode::Safe,
                path: Some(path.into()),
                ..Default::default()
            });
        }
        assert_eq!(account_id(&cfg, 1), APPID);
        let rules = RuleSet::from_toml("[[rules]]\ndefault = true\nreply.text = \"pong\"\n").unwrap();
        // One appid twice is refused by the accounts' own constructor too (issue 11 §1), so
        // code that skips the config check cannot build it either …
        let served = ServedRules::new(rules);
        let err = build_service(&cfg, &served, &Parts::default()).unwrap_err().to_string();
        assert!(err.contains(APPID), "{err}");
        // … and the account at the second path, alone, still answers under its own appid.
        cfg.accounts.remove(cfg.accounts.len() - 2);
        let svc = build_service(&cfg, &served, &Parts::default()).unwrap();
        let app = app(&cfg, svc, None, None);
        let platform = wemp_proto::wechat::Platform::new("Tok123")
            .with_cipher(wemp_proto::Cipher::new(KEY, APPID).unwrap());
        let xml = "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>\
                   <MsgType>text</MsgType><Content>ping</Content><MsgId>1</MsgId></xml>";
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let req = platform.post(Mode::Safe, xml, "o1", "gh_1", &now.to_string(), "7", [0; 16]).unwrap();
        let http = http::Request::post(format!("/wechat/v2?{}", req.query_string()))
            .body(Body::from(req.body))
            .unwrap();
        let res = app.oneshot(http).await.unwrap();
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let reply = wemp_proto::EncryptedReply::parse(std::str::from_utf8(&body).unwrap()).unwrap();
        let plain = reply.open(&wemp_proto::Cipher::new(KEY, APPID).unwrap(), "Tok123").unwrap();
        assert!(plain.contains("pong"), "{plain}");
    }

    fn console_cfg(src: &str) -> Config {
        Config::from_toml_str(src, "w.toml").unwrap()
    }

    #[test]
    fn the_console_takes_the_configured_path_users_menu_and_access() {
        let mut cfg = console_cfg(
            "[console]\npath = \"/admin\"\nusers = [{ openid = \"o1\", name = \"Ann\" }]\n\
             [[menu.button]]\ntype = \"click\"\nname = \"Hi\"\nkey = \"HI\"\n\
             [[accounts]]\nname = \"bot\"\ntoken = \"Tok123\"\nappid = \"wx0123456789abcdef\"\n\
             aes_key = \"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\"\nmode = \"safe\"\n\
             appsecret = \"s3cr3t\"\n",
        );
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let c = console_config(&cfg, lo).unwrap().unwrap();
        assert_eq!(c.base_path, "/admin");
        assert_eq!(c.accounts.len(), 1);
        let a = &c.accounts[0];
        assert_eq!(a.endpoint, "http://127.0.0.1:8080/wechat");
        assert_eq!(a.id, "wx0123456789abcdef");
        assert_eq!(a.account().token().expose(), "Tok123");
        assert_eq!(a.mode(), Mode::Safe);
        assert_eq!(a.account().appid(), "wx0123456789abcdef");
        assert_eq!(a.name.as_deref(), Some("bot"));
        assert_eq!(c.users, vec![wemp_console::TestUser::new("o1", "Ann")]);
        assert_eq!(c.menu.button[0].key.as_deref(), Some("HI"));
        assert_eq!(c.access, Access::Loopback);
        assert!(!format!("{c:?}").contains("s3cr3t"), "the AppSecret is not part of the console");
        assert_eq!(console_url(&cfg, lo), "http://127.0.0.1:8080/admin/");
        // Beyond loopback: only with a token.
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(console_access(&cfg, any), Some(Access::Disabled));
        assert_eq!(console_url(&cfg, any), "http://127.0.0.1:8080/admin/");
        cfg.console.token = Some("admin-token-1".into());
        assert_eq!(console_access(&cfg, any), Some(Access::Token("admin-token-1".into())));
        cfg.console.enabled = false;
        assert!(console_config(&cfg, lo).unwrap().is_none());
    }

    #[test]
    fn a_third_party_platform_without_accounts_has_a_console_with_none_yet() {
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let mut cfg = Config::default();
        cfg.accounts.clear();
        assert!(console_config(&cfg, lo).unwrap().is_none(), "no account and no platform: no console");
        cfg.component = Some(crate::config::ComponentConfig::default());
        let c = console_config(&cfg, lo).unwrap().expect("a platform's console");
        assert!(c.accounts.is_empty());
        assert_eq!(console_url(&cfg, lo), "http://127.0.0.1:8080/console/");
    }

    #[test]
    fn a_tokenless_console_behind_a_public_url_is_warned_about() {
        let mut cfg = Config::default();
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(proxied_console_warning(&cfg, console_access(&cfg, lo).as_ref()), None);
        cfg.console.public_url = Some("https://bot.example.com/wechat".into());
        let warning = proxied_console_warning(&cfg, console_access(&cfg, lo).as_ref()).unwrap();
        assert!(warning.contains("/console") && warning.contains("WEMP_CONSOLE_TOKEN"), "{warning}");
        cfg.console.token = Some("admin-token-1".into());
        assert_eq!(proxied_console_warning(&cfg, console_access(&cfg, lo).as_ref()), None);
    }

    #[test]
    fn the_console_plays_every_account_with_its_own_path_and_keys() {
        let cfg = console_cfg(
            "[console]\npublic_url = \"https://bot.example.com/wechat\"\n\
             [[menu.button]]\ntype = \"click\"\nname = \"Hi\"\nkey = \"HI\"\n\
             [[accounts]]\nname = \"demo\"\ntoken = \"Tok123\"\n\
             [[accounts]]\nname = \"shop\"\ntoken = \"Shop456\"\nappid = \"wx00000000000000b2\"\n\
             aes_key = \"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\"\nmode = \"safe\"\n\
             original_id = \"gh_shop00000001\"\npath = \"/wechat/shop\"\nappsecret = \"sh0ps3cr3t\"\n\
             [[accounts]]\ntoken = \"Third789\"\npath = \"/wechat/third\"\n\
             [[accounts]]\ntoken = \"Fourth01\"\npath = \"/wechat/fourth\"\n",
        );
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let c = console_config(&cfg, lo).unwrap().unwrap();
        let ids: Vec<&str> = c.accounts.iter().map(|a| a.id.as_str()).collect();
        // The ids the server's records and the message log use (`account_id`), unique.
        assert_eq!(ids, ["demo", "wx00000000000000b2", "default", "default/wechat/fourth"]);
        // The server names them the same way (its records, dedup keys and log entries).
        let server_ids: Vec<String> = (0..4).map(|i| account_id(&cfg, i)).collect();
        assert_eq!(server_ids, ids);
        let endpoints: Vec<&str> = c.accounts.iter().map(|a| a.endpoint.as_str()).collect();
        assert_eq!(
            endpoints,
            [
                "http://127.0.0.1:8080/wechat",
                "http://127.0.0.1:8080/wechat/shop",
                "http://127.0.0.1:8080/wechat/third",
                "http://127.0.0.1:8080/wechat/fourth"
            ]
        );
        // console.public_url is the first account's; the others are reached where they listen.
        assert_eq!(c.accounts[0].public_url(), "https://bot.example.com/wechat");
        assert_eq!(c.accounts[1].public_url(), "http://127.0.0.1:8080/wechat/shop");
        let shop = &c.accounts[1];
        assert_eq!((shop.account().token().expose(), shop.mode()), ("Shop456", Mode::Safe));
        assert_eq!(shop.original_id(), "gh_shop00000001");
        assert_eq!(
            shop.account().aes_key().map(Secret::expose),
            Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
        );
        assert_eq!(c.accounts[0].mode(), Mode::Plain);
        assert_eq!(c.accounts[2].account().token().expose(), "Third789");
        // One [menu] for the server: every account shows it.
        assert_eq!(c.menu.button[0].key.as_deref(), Some("HI"));
        assert!(!format!("{c:?}").contains("sh0ps3cr3t"), "no AppSecret in the console");
        // The server names its accounts the same way, so records find their account.
        assert_eq!(
            (0..4).map(|i| account_id(&cfg, i)).collect::<Vec<_>>()[..2],
            ["demo", "wx00000000000000b2"]
        );
        let console = Console::builder(c).build().unwrap();
        assert_eq!(console.config().accounts.len(), 4);
    }

    #[test]
    fn the_first_screen_names_the_console() {
        let cfg = console_cfg("[[accounts]]\ntoken = \"Tok123\"\n");
        let bound: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let log = LogLocation::of(&cfg.storage);
        let screen = |access: Option<&Access>| {
            setup_screen(
                &ScreenInfo {
                    cfg: &cfg,
                    file: None,
                    token: &TokenSource::Configured,
                    bound,
                    rules: 1,
                    log: &log,
                    late_api: false,
                    console: access,
                    lang: Lang::En,
                    terminal: true,
                },
                Style::plain(),
            )
        };
        assert!(
            screen(Some(&Access::Loopback)).contains("http://127.0.0.1:8080/console/ (this machine only)")
        );
        let token = screen(Some(&Access::Token("admin-token-1".into())));
        assert!(
            token.contains("asks once for the admin token") && !token.contains("admin-token-1"),
            "{token}"
        );
        assert!(screen(Some(&Access::Disabled)).contains("off: listening beyond loopback"));
        assert!(screen(None).contains("off (console.enabled = false)"));
    }

    #[test]
    fn urls_and_sim_command() {
        let mut cfg = Config::embedded();
        cfg.accounts
            .push(crate::config::AccountConfig { token: Some("Tok123".into()), ..Default::default() });
        let bound: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(local_url(&cfg, 0, bound), "http://127.0.0.1:8080/wechat");
        assert_eq!(
            sim_command(&cfg, 0, bound, Secrets::Shown),
            "wemp sim send http://127.0.0.1:8080/wechat --token Tok123 text help"
        );
        cfg.accounts[0].mode = Mode::Safe;
        cfg.accounts[0].appid = Some("wx0123456789abcdef".into());
        cfg.accounts[0].aes_key = Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into());
        assert!(sim_command(&cfg, 0, bound, Secrets::Shown).ends_with(
            "--appid wx0123456789abcdef --aes-key abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG --mode safe text help"
        ));
        // Off a terminal: the config file, never the secrets.
        let file = Path::new("my data/wemp.toml");
        assert_eq!(
            sim_command(&cfg, 0, bound, Secrets::Hidden { file: Some(file) }),
            "wemp sim send http://127.0.0.1:8080/wechat --config 'my data/wemp.toml' text help"
        );
        // From the environment, which `sim` reads too.
        cfg.origins.insert("accounts[0].token".into(), "WEMP_TOKEN".into());
        cfg.origins.insert("accounts[0].aes_key".into(), "WEMP_AES_KEY".into());
        assert_eq!(
            sim_command(&cfg, 0, bound, Secrets::Hidden { file: None }),
            "wemp sim send http://127.0.0.1:8080/wechat --appid wx0123456789abcdef --mode safe text help"
        );
        // Each kind plays its own platform: WeCom's ids, a Mini Program's kind.
        let corp = crate::config::AccountConfig {
            kind: Kind::Wecom,
            corpid: Some("ww0123456789abcdef".into()),
            agentid: Some("1000002".into()),
            token: Some("CorpTok1".into()),
            aes_key: Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into()),
            ..Default::default()
        };
        cfg.accounts[0] = corp;
        assert!(sim_command(&cfg, 0, bound, Secrets::Shown).ends_with(
            "/wechat --kind wecom --corpid ww0123456789abcdef --agentid 1000002 --token CorpTok1 --aes-key \
             abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG text help"
        ));
        assert!(
            sim_command(&cfg, 0, bound, Secrets::Hidden { file: Some(file) })
                .ends_with("--config 'my data/wemp.toml' text help")
        );
        cfg.accounts[0].kind = Kind::Miniprogram;
        cfg.accounts[0].aes_key = None;
        assert!(
            sim_command(&cfg, 0, bound, Secrets::Shown)
                .ends_with("/wechat --kind miniprogram --token CorpTok1 text help")
        );
        cfg.console.public_url = Some("https://bot.example.com/wechat".into());
        assert_eq!(callback_url(&cfg, 0, bound), "https://bot.example.com/wechat");
        assert_eq!(last_segment("/wechat/demo/"), "demo");
    }
}
