#![doc = include_str!("../README.md")]

mod access;
mod accounts;
mod app;
pub mod config;
pub mod feed;
mod media;
pub mod menu;
mod observe;
pub mod sim;

use std::sync::Arc;

pub use access::{COOKIE, CSRF_HEADER, FAILURE_WINDOW, MAX_FAILURES, PROXY_HEADERS, SESSION_TTL};
pub use app::{escape as escape_html, page as html_page};
pub use config::{Access, ConsoleAccount, ConsoleConfig, PLACEHOLDER_ORIGINAL_ID, TOKEN_ENV, TestUser};
pub use feed::{FailureWords, Hub, LiveEntry, Source, Tap, TapFinding, TapFuture, TapService};
pub use menu::{ButtonKind, Menu, MenuButton, MenuError, MenuProblem};
pub use observe::ConsoleObserver;
use wemp_client::callback::{Simulator, Target};
use wemp_store::MessageLog;

/// Building a console failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The menu breaks one of WeChat's limits.
    #[error("invalid menu: {0}")]
    Menu(#[from] MenuError),
    /// An encrypted mode without an EncodingAESKey.
    #[error("mode {0} needs the account's EncodingAESKey")]
    NoKey(wemp_proto::Mode),
    /// The bot's endpoint cannot be played (not an `http://` or `https://` URL).
    #[error("cannot play WeChat against the endpoint: {0}")]
    Endpoint(String),
    /// The base path is not `/something` without a trailing slash.
    #[error("console path {0:?} must start with '/', not end with one, and not be '/'")]
    BasePath(String),
    /// No test user.
    #[error("the chat simulator needs at least one test user")]
    NoUsers,
    /// No account to play WeChat for, and no third-party platform
    /// ([`ConsoleBuilder::authorizers`]) whose authorizers would become some.
    #[error("the console needs at least one account, or a third-party platform whose authorizers it plays")]
    NoAccounts,
    /// Two accounts with the same [`ConsoleAccount::id`] (or an empty one).
    #[error("account id {0:?} is empty or used by two accounts; each account needs its own")]
    AccountId(String),
    /// One of several accounts is unusable.
    #[error("account {id:?}: {source}")]
    Account {
        /// The account's id.
        id: String,
        /// What is wrong with it.
        #[source]
        source: Box<Self>,
    },
}

/// One `wemp doctor` check as the setup page shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DoctorCheck {
    /// What was checked (`Token format`), in the page's [`Language`].
    pub name: String,
    /// How it went.
    pub status: DoctorStatus,
    /// The finding or the instruction to fix it, in the page's [`Language`].
    pub detail: String,
}

/// How a [`DoctorCheck`] went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DoctorStatus {
    /// Fine.
    Pass,
    /// Works, but worth a look.
    Warn,
    /// Broken.
    Fail,
    /// Not checked (no AppSecret, no database …).
    Skip,
}

/// The language a page speaks (the browser's, or the page's switch), for what the server
/// words itself in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Language {
    /// English (the default).
    #[default]
    English,
    /// Simplified Chinese.
    SimplifiedChinese,
}

impl Language {
    /// The language of a page's tag (`zh-CN`, `en` …): Simplified Chinese for `zh`,
    /// `zh-CN`, `zh-SG` and `zh-Hans…`, English otherwise.
    pub fn from_tag(tag: &str) -> Self {
        let tag = tag.trim().to_ascii_lowercase().replace('_', "-");
        match tag.as_str() {
            "zh" | "zh-cn" | "zh-sg" => Self::SimplifiedChinese,
            t if t.starts_with("zh-hans") => Self::SimplifiedChinese,
            _ => Self::English,
        }
    }
}

/// Runs `wemp doctor`'s checks for the setup page.
#[async_trait::async_trait]
pub trait Doctor: Send + Sync + 'static {
    /// The checks' results, in display order, worded in `lang` (the doctor's sentences have
    /// one home, the doctor's own catalogue; the page shows them as they come).
    async fn checks(&self, lang: Language) -> Vec<DoctorCheck>;
}

/// One account that authorized the server's third-party platform (第三方平台), as the setup
/// page and `wemp component list` show it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuthorizerSummary {
    /// The authorizer's appid.
    pub appid: String,
    /// Its nick name, when the platform gave it.
    pub nick_name: Option<String>,
    /// Its original id (`gh_…`).
    pub user_name: Option<String>,
    /// The function scope ids it granted.
    pub func_scopes: Vec<u32>,
    /// When it authorized (Unix ms).
    pub authorized_at_ms: i64,
    /// Whether its refresh token is stored (its access tokens come from it).
    pub refresh_token_stored: bool,
}

/// The accounts that authorized the server's third-party platform, listed (read-only) on
/// the setup page.
#[async_trait::async_trait]
pub trait Authorizers: Send + Sync + 'static {
    /// The authorizers stored now, first authorized first; `Err` says why they cannot be read.
    async fn list(&self) -> Result<Vec<AuthorizerSummary>, String>;
}

/// One rule as the setup page lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RuleSummary {
    /// The rule's name, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When it applies (`text = "help"`, `event = subscribe`).
    pub when: String,
    /// What it answers (`text "Hi {openid}"`).
    pub reply: String,
}

/// What a rules reload did: the page words it in its language from these values, a log
/// line in English from [`ReloadReport`]'s `Display` (`15 rules in effect; changes to
/// [server] take effect only after a restart; …`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReloadReport {
    /// How many rules are in effect now.
    pub rules: usize,
    /// The changed sections that take effect only after a restart (`[server]`,
    /// `[[accounts]]` …); the running server keeps their old values.
    pub restart: Vec<String>,
}

impl std::fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} rules in effect", self.rules)?;
        if !self.restart.is_empty() {
            write!(f, "; {}", self.restart_note())?;
        }
        Ok(())
    }
}

impl ReloadReport {
    /// The English note on the sections that need a restart.
    pub fn restart_note(&self) -> String {
        format!(
            "changes to {} take effect only after a restart; the running server keeps the old values",
            self.restart.join(", ")
        )
    }
}

/// Why a reload did not take the new rules (the old ones stay in effect): the source's own
/// error, shown as it words it; a [`ReloadRefused`] (problems located in the config) is
/// sent to the page with each problem's place, which the page words in its language.
pub type ReloadError = Box<dyn std::error::Error + Send + Sync>;

/// A reload refused for problems in the configuration, each with its place: the page frames
/// them in its language (`配置文件 第 3 行，rules[0].regex：…`) and shows each problem's message
/// in its language when the source gives it ([`ReloadProblem::messages`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReloadRefused {
    /// The problems, in order.
    pub problems: Vec<ReloadProblem>,
}

/// One problem of a [`ReloadRefused`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReloadProblem {
    /// Where it came from: the file, an environment variable, a flag, `rules`.
    pub source: String,
    /// The line (1-based), when the value is in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The dotted path of the field (`rules[0].regex`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong, in English.
    pub message: String,
    /// What is wrong in each language the page speaks, by the page's language code (`en`,
    /// `zh-CN`); the page shows its own, else `message`.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub messages: std::collections::BTreeMap<String, String>,
    /// The whole problem in one English line (`wemp.toml:3: rules[0].regex: …`).
    pub text: String,
}

impl std::fmt::Display for ReloadRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<&str> = self.problems.iter().map(|p| p.text.as_str()).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for ReloadRefused {}

/// The bot's current rules and how to reload them.
#[async_trait::async_trait]
pub trait Rules: Send + Sync + 'static {
    /// The rules in effect, in evaluation order.
    fn current(&self) -> Vec<RuleSummary>;
    /// Reloads the rules from their source.
    ///
    /// # Errors
    /// Why the new rules were not taken (the old ones stay in effect).
    async fn reload(&self) -> Result<ReloadReport, ReloadError>;
}

/// The web console: build it once, mount [`Console::router`] next to the callback, and
/// wrap the callback router with [`Console::tap`] to feed the live log.
#[derive(Clone, Debug)]
pub struct Console {
    shared: Arc<Shared>,
}

/// What the handlers share.
pub(crate) struct Shared {
    pub(crate) config: ConsoleConfig,
    /// The accounts played (the configured ones and those the server adds), each with its
    /// WeChat side; shared with the observer.
    pub(crate) accounts: Arc<accounts::AccountBook>,
    pub(crate) csrf: String,
    /// Logged-in browsers (token access).
    pub(crate) sessions: access::Sessions,
    /// Wrong tokens per peer.
    pub(crate) throttle: access::Throttle,
    pub(crate) hub: Arc<Hub>,
    pub(crate) media: media::MediaStore,
    pub(crate) doctor: Option<Arc<dyn Doctor>>,
    pub(crate) rules: Option<Arc<dyn Rules>>,
    pub(crate) log: Option<Arc<dyn MessageLog>>,
    pub(crate) authorizers: Option<Arc<dyn Authorizers>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Sets up a [`Console`].
#[must_use]
pub struct ConsoleBuilder {
    config: ConsoleConfig,
    hub: Option<Arc<Hub>>,
    doctor: Option<Arc<dyn Doctor>>,
    rules: Option<Arc<dyn Rules>>,
    log: Option<Arc<dyn MessageLog>>,
    authorizers: Option<Arc<dyn Authorizers>>,
}

impl std::fmt::Debug for ConsoleBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleBuilder").field("config", &self.config).finish_non_exhaustive()
    }
}

impl ConsoleBuilder {
    /// The hub the live log reads (default: a new one); share it with other publishers.
    pub fn hub(mut self, hub: Arc<Hub>) -> Self {
        self.hub = Some(hub);
        self
    }

    /// The `wemp doctor` checks shown on the setup page.
    pub fn doctor(mut self, doctor: impl Doctor) -> Self {
        self.doctor = Some(Arc::new(doctor));
        self
    }

    /// The rules listed on the setup page, with their reload.
    pub fn rules(mut self, rules: impl Rules) -> Self {
        self.rules = Some(Arc::new(rules));
        self
    }

    /// The third-party platform's authorizers listed on the setup page. With them the console
    /// may have no account of its own ([`ConsoleConfig::accounts`] empty): until an account
    /// authorizes the platform (and [`Console::live_accounts`] plays it), its pages say there
    /// is none yet and how to authorize one.
    pub fn authorizers(mut self, authorizers: impl Authorizers) -> Self {
        self.authorizers = Some(Arc::new(authorizers));
        self
    }

    /// The message log the live log's history comes from.
    pub fn message_log(mut self, log: Arc<dyn MessageLog>) -> Self {
        self.log = Some(log);
        self
    }

    /// Checks the configuration and builds the console.
    ///
    /// # Errors
    /// [`Error`] for an invalid menu, AES key, base path, account id, or no test user or
    /// account.
    pub fn build(self) -> Result<Console, Error> {
        let c = &self.config;
        let p = &c.base_path;
        if !p.starts_with('/') || p.ends_with('/') || p.contains(['?', '#', ' ']) {
            return Err(Error::BasePath(p.clone()));
        }
        c.menu.validate()?;
        if c.users.is_empty() {
            return Err(Error::NoUsers);
        }
        // A third-party platform's console may start before any account authorized it: its
        // accounts come from `Console::live_accounts` as they authorize.
        if c.accounts.is_empty() && self.authorizers.is_none() {
            return Err(Error::NoAccounts);
        }
        let mut wechat = Vec::with_capacity(c.accounts.len());
        for (i, a) in c.accounts.iter().enumerate() {
            if a.id.is_empty() || c.accounts[..i].iter().any(|b| b.id == a.id) {
                return Err(Error::AccountId(a.id.clone()));
            }
            match callback(a, c.schedule) {
                Ok(w) => wechat.push(w),
                Err(e) if c.accounts.len() == 1 => return Err(e),
                Err(e) => return Err(Error::Account { id: a.id.clone(), source: Box::new(e) }),
            }
        }
        let csrf: String = (0..32).map(|_| format!("{:x}", rand::random::<u8>() & 0xf)).collect();
        let played = accounts::Played { accounts: c.accounts.clone().into(), wechat };
        Ok(Console {
            shared: Arc::new(Shared {
                accounts: Arc::new(accounts::AccountBook::new(played, c.schedule)),
                config: self.config,
                csrf,
                sessions: access::Sessions::default(),
                throttle: access::Throttle::default(),
                hub: self.hub.unwrap_or_default(),
                media: media::MediaStore::default(),
                doctor: self.doctor,
                rules: self.rules,
                authorizers: self.authorizers,
                log: self.log,
            }),
        })
    }
}

/// WeChat's side of `account`: signs and encrypts with its keys, posts to its endpoint.
pub(crate) fn callback(
    account: &ConsoleAccount,
    schedule: wemp_client::callback::Schedule,
) -> Result<Simulator, Error> {
    let a = account.account();
    let mode = account.mode();
    if mode.is_encrypted() && a.cipher().is_none() {
        return Err(Error::NoKey(mode));
    }
    let mut target = Target::new(account.endpoint.clone(), a.token().expose());
    target.mode = mode;
    account.original_id().clone_into(&mut target.account);
    target.appid = Some(a.appid().to_owned());
    // A WeCom app's callbacks are WeCom-shaped (the corpid, AgentID, msg_signature only); a
    // Mini Program's answer is `success`, its reply going through the customer-service API.
    target.kind = a.kind();
    target.agentid = a.agentid().map(str::to_owned);
    target.aes_key = a.aes_key().map(|k| k.expose().to_owned());
    // The account's own cipher: a third-party platform's authorizer is sealed with the
    // component's key for the component appid.
    target.cipher = a.cipher().cloned();
    target.timeout = schedule.timeout;
    target.tries = schedule.tries;
    Simulator::new(target).map_err(|e| Error::Endpoint(e.0))
}

impl Console {
    /// Starts building a console from `config`.
    pub fn builder(config: ConsoleConfig) -> ConsoleBuilder {
        ConsoleBuilder { config, hub: None, doctor: None, rules: None, log: None, authorizers: None }
    }

    /// The hub behind the live log: publish [`LiveEntry`]s from other sources here.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.shared.hub
    }

    /// The configuration in effect.
    pub fn config(&self) -> &ConsoleConfig {
        &self.shared.config
    }

    /// The console's routes, all under [`ConsoleConfig::base_path`]: merge them into the
    /// server's app (`app.merge(console.router())`).
    pub fn router(&self) -> axum::Router {
        app::router(self.shared.clone())
    }

    /// Also plays the accounts the server adds while it runs — a third-party platform's
    /// authorizers, added to `accounts` (the service's
    /// [`WechatService::accounts`](wemp_server::WechatService::accounts)) when they
    /// authorize — each at `endpoint` + `/` + its path segment (`http://127.0.0.1:8080/wechat`
    /// → `…/wechat/<authorizer appid>`): the page lists them after the configured ones,
    /// with their keys (an authorizer's are the component's), and the live log tags their
    /// deliveries. The accounts are read from `accounts` whenever its set changed, not
    /// copied. The first call counts; returns `false` for a later one.
    pub fn live_accounts(&self, accounts: wemp_server::LiveAccounts, endpoint: impl Into<String>) -> bool {
        self.shared.accounts.follow(accounts, endpoint.into())
    }

    /// The observer to add to the bot's service
    /// (`WechatService::builder().observer(console.observer())`): every delivery the server
    /// handles reaches the live log with its dedup outcome, handler and rejection details.
    pub fn observer(&self) -> ConsoleObserver {
        ConsoleObserver { hub: self.shared.hub.clone(), book: self.shared.hub.book(&self.shared.accounts) }
    }

    /// Wraps the callback router so the live log also sees what the server cannot report
    /// (see [`Tap`]): a service that panicked. Everything the server handles reaches the live
    /// log through [`Console::observer`], which the service needs for that — callers that
    /// hung up before the answer (WeChat's 5 s timeout) included.
    pub fn tap(&self, callback: axum::Router) -> axum::Router {
        callback.layer(Tap::new(self.shared.hub.clone()))
    }

    /// [`Console::tap`] for one service rather than a router's routes.
    pub fn tap_service<S>(&self, service: S) -> TapService<S> {
        tower_layer::Layer::layer(&Tap::new(self.shared.hub.clone()), service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wemp_proto::admission::Account;

    #[test]
    fn a_page_language_tag_names_chinese_or_english() {
        for zh in ["zh", "zh-CN", "zh_cn", "zh-SG", "zh-Hans-CN"] {
            assert_eq!(Language::from_tag(zh), Language::SimplifiedChinese, "{zh}");
        }
        for en in ["en", "en-US", "zh-TW", "", "fr"] {
            assert_eq!(Language::from_tag(en), Language::English, "{en}");
        }
    }

    struct NoAuthorizers;
    #[async_trait::async_trait]
    impl Authorizers for NoAuthorizers {
        async fn list(&self) -> Result<Vec<AuthorizerSummary>, String> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn every_account_must_be_usable_and_have_its_own_id() {
        let first = || ConsoleConfig::new("http://127.0.0.1:8080/wechat", Account::new("", "Tok123"));
        let safe = Account::new("", "Tok456").with_mode(wemp_proto::Mode::Safe);
        let shop = ConsoleAccount::new("http://127.0.0.1:8080/wechat/shop", safe).with_id("shop");
        let err = Console::builder(first().with_account(shop.clone())).build().unwrap_err();
        assert_eq!(err.to_string(), "account \"shop\": mode safe needs the account's EncodingAESKey");
        let twin = ConsoleAccount::new("http://127.0.0.1:8080/wechat/b", Account::new("", "Tok456"));
        let err = Console::builder(first().with_account(twin)).build().unwrap_err();
        assert!(matches!(&err, Error::AccountId(id) if id == "default"), "{err}");
        let err = Console::builder(ConsoleConfig::from_accounts(Vec::new())).build().unwrap_err();
        assert!(matches!(err, Error::NoAccounts));
        // …unless a third-party platform's authorizers will be its accounts.
        let platform = Console::builder(ConsoleConfig::from_accounts(Vec::new())).authorizers(NoAuthorizers);
        assert!(platform.build().unwrap().shared.accounts.now().accounts.is_empty());
        let keyed = Account::new("wx00000000000000b2", "Tok456")
            .with_mode(wemp_proto::Mode::Safe)
            .with_aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
            .unwrap();
        let shop = ConsoleAccount::new(shop.endpoint, keyed).with_id("shop");
        let console = Console::builder(first().with_account(shop)).build().unwrap();
        assert_eq!(console.config().accounts.len(), 2);
        assert_eq!(console.shared.accounts.now().wechat.len(), 2);
        let dbg = format!("{console:?}");
        assert!(
            dbg.contains("wechat/shop") && !dbg.contains("Tok456") && !dbg.contains("abcdefghij"),
            "{dbg}"
        );
    }
}
