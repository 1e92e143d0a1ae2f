//! `wemp.toml`: the configuration of `wemp serve` (and `doctor`, `log`), with `WEMP_*`
//! environment overrides and the `serve` flags, in that order of precedence:
//! built-in defaults < file < environment < flags.
//!
//! ```
//! use wemp_cli::config::Config;
//! let cfg = Config::from_toml_str(r#"
//! [server]
//! listen = "0.0.0.0:8080"
//! [[accounts]]
//! token = "abc123"
//! "#, "wemp.toml").unwrap();
//! assert_eq!(cfg.server.path, "/wechat");
//! assert_eq!(cfg.accounts[0].token.as_ref().map(|t| t.expose()), Some("abc123"));
//! let err = Config::from_toml_str("[server]\nlisten = 8080\n", "wemp.toml").unwrap_err();
//! assert!(err.to_string().starts_with("wemp.toml:2:"), "{err}");
//! assert!(err.to_string().contains("server.listen"), "{err}");
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::Rng;
use serde::Deserialize;
use wemp_proto::admission::{Account, Accounts, AccountsError, Kind};
use wemp_proto::{Cipher, Mode, Secret};

use wemp_console::{Menu, TestUser};

use crate::i18n::{Arg, Lang, Msg, Wording};
use crate::rules::{DEMO_RULES, RuleConfig, RuleSet};

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default callback path.
pub const DEFAULT_PATH: &str = "/wechat";
/// The default data directory (SQLite log, written config).
pub const DEFAULT_DATA_DIR: &str = "./wemp-data";
/// The default mount path of the web console.
pub const DEFAULT_CONSOLE_PATH: &str = "/console";
/// The name of the config `serve` writes into the data directory.
pub const WRITTEN_CONFIG: &str = "wemp.toml";

/// The whole configuration.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP server settings.
    pub server: ServerConfig,
    /// Where the message log, dedup state and tokens live.
    pub storage: StorageConfig,
    /// The start-up screen and the web console.
    pub console: ConsoleSection,
    /// The account's bottom menu (WeChat's `menu/create` shape), shown by the web console.
    pub menu: Menu,
    /// The Official Accounts served (usually one).
    pub accounts: Vec<AccountConfig>,
    /// The reply rules, tried in order.
    pub rules: Vec<RuleConfig>,
    /// `[api_proxy]`: the platform API for apps, with the access token added.
    pub api_proxy: ApiProxyConfig,
    /// `[gateway]`: forwarding messages to an app as signed JSON (docs/gateway.md).
    pub gateway: GatewayConfig,
    /// `[component]`: an Open Platform third-party platform whose authorizers are served
    /// too (docs/component.md).
    pub component: Option<ComponentConfig>,
    /// Where each value came from when not from the file (`server.listen` → `WEMP_LISTEN`).
    #[serde(skip)]
    pub origins: BTreeMap<String, String>,
}

/// `[server]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: String,
    /// The callback path of the first account (others set `accounts[].path`).
    pub path: String,
    /// How far a request's `timestamp` may be from now (replay protection), e.g. `"5m"`.
    #[serde(deserialize_with = "de_duration")]
    pub timestamp_window: Duration,
    /// The largest request body accepted, in bytes or with a unit (`"64KiB"`).
    #[serde(deserialize_with = "de_size")]
    pub body_limit: u64,
    /// When to give up on a handler and answer without a reply (WeChat waits 5 s), e.g. `"4.5s"`.
    #[serde(deserialize_with = "de_duration")]
    pub deadline: Duration,
    /// Where Prometheus metrics are served; unset for none.
    pub metrics_path: Option<String>,
    /// How long a new connection (or a keep-alive connection's next request, from its first
    /// byte) may take to send its request headers, e.g. `"5s"`.
    #[serde(deserialize_with = "de_duration")]
    pub header_timeout: Duration,
    /// How long a request body may take to arrive once the server waits for it (on the WeChat
    /// callback, right after the headers have named an account), e.g. `"5s"`.
    #[serde(deserialize_with = "de_duration")]
    pub body_timeout: Duration,
    /// How long a keep-alive connection may wait silently for its next request, e.g. `"30s"`.
    #[serde(deserialize_with = "de_duration")]
    pub idle_timeout: Duration,
    /// Connections open at once; more wait in the listen backlog (keep it under the
    /// process's file-descriptor limit).
    pub max_connections: usize,
}

impl ServerConfig {
    /// The connection limits these settings describe.
    pub fn limits(&self) -> wemp_server::Limits {
        wemp_server::Limits::default()
            .header_timeout(self.header_timeout)
            .body_timeout(self.body_timeout)
            .idle_timeout(self.idle_timeout)
            .max_connections(self.max_connections)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.into(),
            path: DEFAULT_PATH.into(),
            timestamp_window: Duration::from_secs(300),
            body_limit: 64 * 1024,
            deadline: Duration::from_millis(4500),
            metrics_path: None,
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

/// `[storage]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// The data directory; the SQLite database lives here unless `database` says otherwise.
    pub data_dir: PathBuf,
    /// `sqlite://path` or `postgres://…`; default `sqlite://DATA_DIR/wemp.db`.
    pub database: Option<String>,
    /// `redis://…` for dedup and tokens shared by several processes.
    pub redis: Option<String>,
    /// How long the message log keeps an entry (default 30 days, e.g. `"12h"`, `"90d"`);
    /// `serve` deletes older ones in the background. `"off"` (or `0`) keeps them forever.
    #[serde(deserialize_with = "de_retention")]
    pub retention: Option<Duration>,
    /// Where log entries wait when the database does not take them (default
    /// `DATA_DIR/log-spool`); appended when it answers again.
    pub spool_dir: Option<PathBuf>,
}

/// The default of `storage.retention`.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 86_400);

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            database: None,
            redis: None,
            retention: Some(DEFAULT_RETENTION),
            spool_dir: None,
        }
    }
}

impl StorageConfig {
    /// The spool directory in effect.
    pub fn spool_dir(&self) -> PathBuf {
        self.spool_dir.clone().unwrap_or_else(|| self.data_dir.join("log-spool"))
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("wemp.db").display()))
    }
}

/// `[console]`: the start-up screen and the web console.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSection {
    /// The public URL WeChat calls (behind a reverse proxy, ports 80/443), shown as the
    /// URL to paste into the WeChat console; default: derived from `listen` and `path`.
    pub public_url: Option<String>,
    /// Whether to print the setup screen at start-up.
    pub show_setup: bool,
    /// Whether to serve the web console (default true). It opens only on loopback unless
    /// an admin `token` is set.
    pub enabled: bool,
    /// Where the web console is mounted (default `/console`).
    pub path: String,
    /// The admin token the web console asks for; required to open it when listening
    /// beyond loopback (`WEMP_CONSOLE_TOKEN`).
    #[serde(deserialize_with = "de_secret")]
    pub token: Option<Secret>,
    /// The users the console's chat simulator speaks as (default: three test users).
    pub users: Vec<TestUser>,
}

impl Default for ConsoleSection {
    fn default() -> Self {
        Self {
            public_url: None,
            show_setup: true,
            enabled: true,
            path: DEFAULT_CONSOLE_PATH.into(),
            token: None,
            users: Vec::new(),
        }
    }
}

/// `[api_proxy]`: `/api/<path>` passed to the platform API with the account's access token
/// added (docs/gateway.md). Off without a token.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiProxyConfig {
    /// The bearer token apps send (`Authorization: Bearer …`; `WEMP_API_PROXY_TOKEN`). Unset:
    /// the proxy is off.
    #[serde(deserialize_with = "de_secret")]
    pub token: Option<Secret>,
    /// An address of its own (e.g. `127.0.0.1:8081`, `WEMP_API_PROXY_LISTEN`), so the proxy is
    /// never exposed with the public callback; default: served with the callback.
    pub listen: Option<String>,
}

/// `[gateway]`: each verified, decrypted, deduplicated message that no rule answered is
/// posted to an app as signed JSON; the app's answer is the reply (docs/gateway.md).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// The app's URL, or `"relay"`: through the relay clients (`wemp relay`) connected to
    /// `<path>/relay` (`WEMP_FORWARD`, `--forward`); unset: no forwarding.
    pub forward: Option<String>,
    /// The shared secret of `X-Wemp-Signature` (`WEMP_FORWARD_SECRET`); required unless the
    /// app is on loopback.
    #[serde(deserialize_with = "de_secret")]
    pub forward_secret: Option<Secret>,
    /// Answered when the app fails (connection refused, 5xx, timeout, bad JSON); unset: no
    /// reply (`WEMP_FALLBACK_TEXT`).
    pub fallback_text: Option<String>,
    /// How long one call to the app may take in all (default `"30s"`): an answer after the
    /// deadline still goes out through the customer-service API.
    #[serde(deserialize_with = "de_duration")]
    pub forward_timeout: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            forward: None,
            forward_secret: None,
            fallback_text: None,
            forward_timeout: Duration::from_secs(30),
        }
    }
}

/// The default path of the component's authorization events (授权事件接收 URL).
pub const DEFAULT_COMPONENT_PATH: &str = "/component";

/// `[component]`: an Open Platform third-party platform (第三方平台). Its authorization
/// events arrive at `path`; the accounts that authorize it are served at
/// `<server.path>/<authorizer appid>` (docs/component.md).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ComponentConfig {
    /// The component's appid (`wx…`).
    pub appid: Option<String>,
    /// The component's AppSecret (better: `appsecret_file` or `WEMP_COMPONENT_APPSECRET`).
    #[serde(deserialize_with = "de_secret")]
    pub appsecret: Option<Secret>,
    /// A file holding the AppSecret (its surrounding whitespace is ignored).
    pub appsecret_file: Option<PathBuf>,
    /// The Token of the component's message checks (3–32 letters and digits).
    #[serde(deserialize_with = "de_secret")]
    pub token: Option<Secret>,
    /// The EncodingAESKey of the component (43 characters).
    #[serde(alias = "encoding_aes_key", deserialize_with = "de_secret")]
    pub aes_key: Option<Secret>,
    /// Where the authorization events arrive (default `/component`).
    pub path: String,
    /// Answer WeChat's automated full-network-release test cases (全网发布).
    pub full_network_release: bool,
}

impl Default for ComponentConfig {
    fn default() -> Self {
        Self {
            appid: None,
            appsecret: None,
            appsecret_file: None,
            token: None,
            aes_key: None,
            path: DEFAULT_COMPONENT_PATH.into(),
            full_network_release: false,
        }
    }
}

impl ComponentConfig {
    /// The AppSecret: `appsecret` (or `WEMP_COMPONENT_APPSECRET`), else the contents of
    /// `appsecret_file`.
    ///
    /// # Errors
    /// Neither is set, or the file cannot be read or is empty.
    pub fn secret(&self) -> Result<Secret, Wording> {
        if let Some(s) = &self.appsecret {
            return Ok(s.clone());
        }
        let Some(file) = &self.appsecret_file else {
            return Err(Msg::CfgComponentSecretMissing.into());
        };
        let text = std::fs::read_to_string(file).map_err(|e| {
            Wording::new(Msg::CfgSecretFileUnreadable).with("file", file.display()).with("error", e)
        })?;
        let text = text.trim();
        if text.is_empty() {
            return Err(Wording::new(Msg::CfgSecretFileEmpty).with("file", file.display()));
        }
        Ok(Secret::new(text))
    }

    /// The component's cipher (ReceiveId: its appid), which also seals its authorizers'
    /// messages.
    ///
    /// # Errors
    /// No appid or key, or the key is not a valid EncodingAESKey.
    pub fn cipher(&self) -> Result<Cipher, String> {
        let (Some(appid), Some(key)) = (&self.appid, &self.aes_key) else {
            return Err("the component needs its appid and aes_key".into());
        };
        Cipher::new(key.expose(), appid).map_err(|e| format!("component.aes_key: {e}"))
    }
}

/// Whether `url`'s host is a loopback address or `localhost` (forwarding there may go
/// unsigned).
pub fn is_loopback_url(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else { return false };
    let Some(host) = u.host_str() else { return false };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// One `[[accounts]]` entry. The Token, AppSecret and EncodingAESKey are
/// [`Secret`]s: `Debug` (and any log line or error built from one) shows only a length.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AccountConfig {
    /// What kind of account: `official_account` (default), `wecom` or `miniprogram`.
    pub kind: Kind,
    /// A name for logs and metrics.
    pub name: Option<String>,
    /// A WeCom app's corpid (`ww…`/`wx…`), the ReceiveId of its envelopes — the suite id
    /// for a service provider's suite callback. WeCom only.
    pub corpid: Option<String>,
    /// A WeCom app's AgentID. WeCom only.
    pub agentid: Option<String>,
    /// The Token (3–32 letters and digits); generated at start-up when unset.
    #[serde(deserialize_with = "de_secret")]
    pub token: Option<Secret>,
    /// The appid (`wx…`).
    pub appid: Option<String>,
    /// The AppSecret (for the API; never printed).
    #[serde(deserialize_with = "de_secret")]
    pub appsecret: Option<Secret>,
    /// The EncodingAESKey (43 characters), for compatible and safe mode.
    #[serde(alias = "encoding_aes_key", deserialize_with = "de_secret")]
    pub aes_key: Option<Secret>,
    /// Wording encryption mode as set in the console.
    pub mode: Mode,
    /// The account's original id (`gh_…`), if known.
    pub original_id: Option<String>,
    /// The callback path of this account (default: `server.path`).
    pub path: Option<String>,
}

/// A secret string from the config file.
fn de_secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Ok(Some(Secret::new(String::deserialize(d)?)))
}

impl AccountConfig {
    /// The cipher for encrypted modes, if a key is set.
    ///
    /// # Errors
    /// The key is not a valid EncodingAESKey.
    pub fn cipher(&self) -> Result<Option<Cipher>, wemp_proto::KeyError> {
        match &self.aes_key {
            None => Ok(None),
            Some(key) => Cipher::new(key.expose(), self.id().unwrap_or_default()).map(Some),
        }
    }

    /// The mode the account runs in: the configured one; always safe for a WeCom app.
    pub fn effective_mode(&self) -> Mode {
        if self.kind == Kind::Wecom { Mode::Safe } else { self.mode }
    }

    /// The id the platform knows the account by: the appid, or a WeCom app's corpid.
    pub fn id(&self) -> Option<&str> {
        match self.kind {
            Kind::Wecom => self.corpid.as_deref(),
            _ => self.appid.as_deref(),
        }
    }
}

/// Whether `appid` looks like an appid: `wx` and 16 letters and digits.
pub fn appid_is_valid(appid: &str) -> bool {
    appid.starts_with("wx") && appid.len() == 18 && appid.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether `corpid` looks like a WeCom corpid or suite id: 8–32 ASCII letters and digits
/// (`ww…` today, `wx…` for older corps).
pub fn corpid_is_valid(corpid: &str) -> bool {
    (8..=32).contains(&corpid.len()) && corpid.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// One problem with the configuration, located as precisely as possible.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Where it came from: the file, an environment variable or a flag.
    pub source: String,
    /// Line (1-based), when the value is in the file.
    pub line: Option<usize>,
    /// Column (1-based), when known.
    pub column: Option<usize>,
    /// Dotted path of the field (`accounts[0].token`), when known.
    pub field: Option<String>,
    /// What is wrong, worded in any language ([`ConfigProblem::text`]).
    pub message: Wording,
}

impl ConfigProblem {
    /// The whole problem in one line in `lang`: `wemp.toml:3: rules[0].regex: …` (the place
    /// as compilers write it, the message in `lang`).
    pub fn text(&self, lang: Lang) -> String {
        let mut out = self.source.clone();
        if let Some(line) = self.line {
            out.push_str(&format!(":{line}"));
            if let Some(col) = self.column {
                out.push_str(&format!(":{col}"));
            }
        }
        out.push_str(": ");
        if let Some(field) = &self.field {
            out.push_str(&format!("{field}: "));
        }
        out.push_str(&self.message.get(lang));
        out
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text(Lang::En))
    }
}

/// The configuration cannot be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// One or more values are wrong.
    Invalid(Vec<ConfigProblem>),
    /// No Token is configured and the generated one cannot be written to the config file
    /// (a read-only file or directory, as under systemd's `ProtectSystem=strict`).
    TokenNotSaved {
        /// The file the Token would have been saved to.
        path: PathBuf,
        /// Why it could not be written.
        source: std::io::Error,
    },
}

impl ConfigError {
    /// The error in `lang`: one line per problem for [`ConfigError::Invalid`].
    pub fn text(&self, lang: Lang) -> String {
        match self {
            Self::Io { path, source } => format!("{}: {source}", path.display()),
            Self::TokenNotSaved { path, source } => Wording::new(Msg::CfgTokenNotSaved)
                .with("file", path.display())
                .with("error", source)
                .get(lang),
            Self::Invalid(problems) => {
                let lines: Vec<String> = problems.iter().map(|p| p.text(lang)).collect();
                lines.join("\n")
            }
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text(Lang::En))
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } | Self::TokenNotSaved { source, .. } => Some(source),
            Self::Invalid(_) => None,
        }
    }
}

impl ConfigError {
    /// The problems, for [`ConfigError::Invalid`].
    pub fn problems(&self) -> &[ConfigProblem] {
        match self {
            Self::Invalid(p) => p,
            Self::Io { .. } | Self::TokenNotSaved { .. } => &[],
        }
    }
}

/// The values of a `--mode` flag, so that help and shell completion list them.
pub fn mode_parser() -> impl clap::builder::TypedValueParser<Value = Mode> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(["plain", "compatible", "safe"])
        .map(|m| m.parse::<Mode>().unwrap_or(Mode::Plain))
}

/// The command line's parser of an account kind: `official_account`, `wecom` or
/// `miniprogram`, as `kind` is spelled in `wemp.toml`.
pub fn kind_parser() -> impl clap::builder::TypedValueParser<Value = Kind> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(["official_account", "wecom", "miniprogram"]).map(|k| {
        match k.as_str() {
            "wecom" => Kind::Wecom,
            "miniprogram" => Kind::Miniprogram,
            _ => Kind::OfficialAccount,
        }
    })
}

/// A setting's text that is not a value of its kind (a duration, a size, a boolean).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// Not a number followed by a unit.
    #[error("{0:?} is not a duration (e.g. 500ms, 5s, 2m, 1h, 2d)")]
    NotADuration(String),
    /// Not a number followed by a unit.
    #[error("{0:?} is not a size (e.g. 65536, 64KiB, 1MiB)")]
    NotASize(String),
    /// Not `true`/`false` (or `1`/`0`, `yes`/`no`, `on`/`off`).
    #[error("{0:?} is not a boolean (true/false)")]
    NotABoolean(String),
    /// A unit this kind of value does not have.
    #[error("{text:?}: unknown unit {unit:?} (use {expected})")]
    UnknownUnit {
        /// The whole text.
        text: String,
        /// The unit given.
        unit: String,
        /// The units there are.
        expected: &'static str,
    },
    /// Beyond what the setting can hold.
    #[error("{0:?} is too large")]
    TooLarge(String),
}

/// The units of a duration, as [`ValueError::UnknownUnit`] names them.
const DURATION_UNITS: &str = "ms, s, m, h or d";
/// The units of a size.
const SIZE_UNITS: &str = "KiB or MiB";

impl ValueError {
    /// The error as a [`Wording`], for the config check's problems.
    pub fn message(&self) -> Wording {
        match self {
            Self::NotADuration(v) => Wording::new(Msg::CfgNotADuration).with("value", v),
            Self::NotASize(v) => Wording::new(Msg::CfgNotASize).with("value", v),
            Self::NotABoolean(v) => Wording::new(Msg::CfgNotABoolean).with("value", v),
            Self::UnknownUnit { text, unit, expected } => {
                let units = match *expected {
                    DURATION_UNITS => Arg::Wording(Box::new(Msg::CfgUnitsDuration.into())),
                    SIZE_UNITS => Arg::Wording(Box::new(Msg::CfgUnitsSize.into())),
                    other => Arg::Text(other.to_owned()),
                };
                Wording::new(Msg::CfgUnknownUnit)
                    .with("value", text)
                    .with("unit", unit)
                    .arg("expected", units)
            }
            Self::TooLarge(v) => Wording::new(Msg::CfgTooLarge).with("value", v),
        }
    }
}

/// Parses `500ms`, `5s`, `4.5s`, `2m`, `1h`, `2d` or a bare number of seconds (also clap's
/// value parser for duration flags).
///
/// # Errors
/// Text that is not a duration.
pub fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| ValueError::NotADuration(s.to_owned()))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" | "sec" | "secs" => n,
        "m" | "min" | "mins" => n * 60.0,
        "h" => n * 3600.0,
        "d" | "day" | "days" => n * 86_400.0,
        other => {
            return Err(ValueError::UnknownUnit {
                text: s.to_owned(),
                unit: other.to_owned(),
                expected: DURATION_UNITS,
            });
        }
    };
    if !secs.is_finite() || secs > 1e9 {
        return Err(ValueError::TooLarge(s.to_owned()));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_bool(value: &str) -> Result<bool, ValueError> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ValueError::NotABoolean(value.to_owned())),
    }
}

/// Parses a size: bytes, or with `KiB`/`KB`/`k`, `MiB`/`MB`/`m` (all powers of 1024).
///
/// # Errors
/// Text that is not a size.
pub fn parse_size(s: &str) -> Result<u64, ValueError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| ValueError::NotASize(s.to_owned()))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        other => {
            return Err(ValueError::UnknownUnit {
                text: s.to_owned(),
                unit: other.to_owned(),
                expected: SIZE_UNITS,
            });
        }
    };
    n.checked_mul(mult).ok_or_else(|| ValueError::TooLarge(s.to_owned()))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrText {
    Int(u64),
    Float(f64),
    Text(String),
}

/// A number that is not a value of this kind, in English (serde's error; [`toml_message`]
/// words it in either language).
fn float_message(msg: Msg, f: f64) -> Wording {
    Wording::new(msg).with("value", f)
}

fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match NumOrText::deserialize(d)? {
        NumOrText::Int(n) => Ok(Duration::from_secs(n)),
        NumOrText::Float(f) if f.is_finite() && f >= 0.0 => Ok(Duration::from_secs_f64(f)),
        NumOrText::Float(f) => Err(serde::de::Error::custom(float_message(Msg::CfgFloatNotADuration, f))),
        NumOrText::Text(s) => parse_duration(&s).map_err(serde::de::Error::custom),
    }
}

/// `storage.retention`: a duration, or `"off"` / `0` for none.
fn de_retention<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let retention = match NumOrText::deserialize(d)? {
        NumOrText::Text(s) if s.trim().eq_ignore_ascii_case("off") => return Ok(None),
        NumOrText::Int(n) => Duration::from_secs(n),
        NumOrText::Float(f) => {
            return Err(serde::de::Error::custom(float_message(Msg::CfgFloatNotADuration, f)));
        }
        NumOrText::Text(s) => parse_duration(&s).map_err(serde::de::Error::custom)?,
    };
    Ok(Some(retention).filter(|r| !r.is_zero()))
}

fn de_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match NumOrText::deserialize(d)? {
        NumOrText::Int(n) => Ok(n),
        NumOrText::Float(f) => Err(serde::de::Error::custom(float_message(Msg::CfgNotWholeBytes, f))),
        NumOrText::Text(s) => parse_size(&s).map_err(serde::de::Error::custom),
    }
}

/// Line and column (1-based) of a byte offset.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.len(), |i| before.len() - i - 1) + 1;
    (line, col)
}

/// A line's table header (`[server]` → `server`, `[[rules]]` → `rules` + array flag).
fn header_of(line: &str) -> Option<(String, bool)> {
    let t = line.trim();
    if let Some(inner) = t.strip_prefix("[[") {
        return Some((inner.split("]]").next()?.trim().to_owned(), true));
    }
    let inner = t.strip_prefix('[')?;
    Some((inner.split(']').next()?.trim().to_owned(), false))
}

fn key_of(line: &str) -> Option<String> {
    let t = line.trim();
    if t.starts_with('#') || t.starts_with('[') {
        return None;
    }
    let (key, _) = t.split_once('=')?;
    Some(key.trim().trim_matches('"').to_owned())
}

/// The dotted path of the field at byte `offset` (`rules[2].reply.text`), from the table
/// headers above it and the key on its line.
fn field_at(src: &str, offset: usize) -> Option<String> {
    let (line_no, _) = line_col(src, offset);
    let lines: Vec<&str> = src.lines().collect();
    let mut table: Option<String> = None;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for line in lines.iter().take(line_no - 1) {
        if let Some((name, array)) = header_of(line) {
            if array {
                let n = counts.entry(name.clone()).and_modify(|n| *n += 1).or_insert(0);
                table = Some(format!("{name}[{n}]"));
            } else {
                table = Some(name);
            }
        }
    }
    let current = lines.get(line_no - 1).copied().unwrap_or_default();
    // An offending header line itself: name the table.
    if let Some((name, array)) = header_of(current) {
        let n = if array { counts.get(&name).map_or(0, |n| n + 1) } else { 0 };
        return Some(if array { format!("{name}[{n}]") } else { name });
    }
    let key = key_of(current);
    match (table, key) {
        (Some(t), Some(k)) => Some(format!("{t}.{k}")),
        (Some(t), None) => Some(t),
        (None, k) => k,
    }
}

/// The line of a dotted field path (`rules[2].regex`), searching the table headers and keys.
pub fn line_of(src: &str, path: &str) -> Option<usize> {
    if let Some(rest) = path.strip_prefix("menu.") {
        return menu_line(src, rest);
    }
    let lines: Vec<&str> = src.lines().collect();
    // Split `rules[2].reply.text` into the table part and the key part.
    let (table, index, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, None::<usize>, rest),
        None => (path, None, ""),
    };
    let (table, index) = match table.split_once('[') {
        Some((name, idx)) => (name, idx.trim_end_matches(']').parse().ok()),
        None => (table, index),
    };
    let mut seen = 0usize;
    let mut start = None;
    for (i, line) in lines.iter().enumerate() {
        if let Some((name, array)) = header_of(line)
            && name == table
        {
            if !array || Some(seen) == index {
                start = Some(i);
                break;
            }
            seen += 1;
        }
    }
    let Some(start) = start else {
        // A dotted key at the top level (`server.listen = …`).
        return lines.iter().position(|l| key_of(l).as_deref() == Some(path)).map(|i| i + 1);
    };
    if rest.is_empty() {
        return Some(start + 1);
    }
    let end = lines
        .iter()
        .skip(start + 1)
        .position(|l| header_of(l).is_some())
        .map_or(lines.len(), |p| start + 1 + p);
    // The longest dotted prefix of `rest` written as a key in the section, down to its first part.
    let parts: Vec<&str> = rest.split('.').collect();
    for n in (1..=parts.len()).rev() {
        let want = parts[..n].join(".");
        let want = want.split('[').next().unwrap_or_default().to_owned();
        if let Some(p) =
            lines[start + 1..end].iter().position(|l| key_of(l).as_deref() == Some(want.as_str()))
        {
            return Some(start + 2 + p);
        }
    }
    Some(start + 1)
}

/// The line of a menu field (`button[1].sub_button[0].key`, without `menu.`): the key
/// in the button's `[[menu.button]]` / `[[menu.button.sub_button]]` table, else that
/// table's header, else `[menu]`.
fn menu_line(src: &str, path: &str) -> Option<usize> {
    let index = |part: &str, name: &str| -> Option<usize> {
        part.strip_prefix(name)?.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
    };
    let parts: Vec<&str> = path.split('.').collect();
    let button = parts.first().and_then(|p| index(p, "button"));
    let sub = parts.get(1).and_then(|p| index(p, "sub_button"));
    let key = parts.get(if sub.is_some() { 2 } else { 1 }).copied();
    let lines: Vec<&str> = src.lines().collect();
    let mut menu_header = None;
    let (mut b, mut s) = (None::<usize>, None::<usize>);
    let mut start = None;
    for (i, line) in lines.iter().enumerate() {
        match header_of(line) {
            Some((name, false)) if name == "menu" => menu_header = Some(i),
            Some((name, true)) if name == "menu.button" => {
                b = Some(b.map_or(0, |n| n + 1));
                s = None;
                if b == button && sub.is_none() {
                    start = Some(i);
                }
            }
            Some((name, true)) if name == "menu.button.sub_button" => {
                s = Some(s.map_or(0, |n| n + 1));
                if b == button && sub.is_some() && s == sub {
                    start = Some(i);
                }
            }
            _ => {}
        }
        if start.is_some() {
            break;
        }
    }
    let Some(start) = start else {
        return menu_header.map(|i| i + 1).or_else(|| {
            lines.iter().position(|l| header_of(l).is_some_and(|(n, _)| n.starts_with("menu"))).map(|i| i + 1)
        });
    };
    let end = lines
        .iter()
        .skip(start + 1)
        .position(|l| header_of(l).is_some())
        .map_or(lines.len(), |p| start + 1 + p);
    key.and_then(|k| lines[start + 1..end].iter().position(|l| key_of(l).as_deref() == Some(k)))
        .map_or(Some(start + 1), |p| Some(start + 2 + p))
}

/// A fresh Token: 32 letters and digits (WeChat allows 3–32).
pub fn generate_token(rng: &mut impl Rng) -> String {
    (0..32).map(|_| char::from(rng.sample(rand::distr::Alphanumeric))).collect()
}

/// Whether `token` is acceptable to the WeChat console: 3–32 ASCII letters and digits
/// (the rule lives in [`wemp_proto::admission::token_is_valid`]).
pub use wemp_proto::admission::token_is_valid;

/// The environment variables `Config::apply_env` reads, and the field each sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("WEMP_LISTEN", "server.listen"),
    ("WEMP_PATH", "server.path"),
    ("WEMP_TIMESTAMP_WINDOW", "server.timestamp_window"),
    ("WEMP_BODY_LIMIT", "server.body_limit"),
    ("WEMP_DEADLINE", "server.deadline"),
    ("WEMP_METRICS_PATH", "server.metrics_path"),
    ("WEMP_DATA_DIR", "storage.data_dir"),
    ("WEMP_DATABASE", "storage.database"),
    ("WEMP_REDIS", "storage.redis"),
    ("WEMP_PUBLIC_URL", "console.public_url"),
    ("WEMP_SHOW_SETUP", "console.show_setup"),
    ("WEMP_CONSOLE", "console.enabled"),
    ("WEMP_CONSOLE_PATH", "console.path"),
    ("WEMP_CONSOLE_TOKEN", "console.token"),
    ("WEMP_API_PROXY_TOKEN", "api_proxy.token"),
    ("WEMP_API_PROXY_LISTEN", "api_proxy.listen"),
    ("WEMP_FORWARD", "gateway.forward"),
    ("WEMP_FORWARD_SECRET", "gateway.forward_secret"),
    ("WEMP_FALLBACK_TEXT", "gateway.fallback_text"),
    ("WEMP_COMPONENT_APPSECRET", "component.appsecret"),
    ("WEMP_ACCOUNT_NAME", "accounts[0].name"),
    ("WEMP_TOKEN", "accounts[0].token"),
    ("WEMP_APPID", "accounts[0].appid"),
    ("WEMP_APPSECRET", "accounts[0].appsecret"),
    ("WEMP_AES_KEY", "accounts[0].aes_key"),
    ("WEMP_MODE", "accounts[0].mode"),
    ("WEMP_ORIGINAL_ID", "accounts[0].original_id"),
];

/// The flags `serve` (and `doctor`, `log`) share. Flatten into a clap command.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// The config file (default: DATA_DIR/wemp.toml when it exists).
    #[arg(long, short = 'c', env = "WEMP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address and port to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<String>,
    /// The callback path [default: /wechat].
    #[arg(long)]
    pub path: Option<String>,
    /// The Token (3–32 letters and digits); generated and saved when none is configured.
    #[arg(long)]
    pub token: Option<String>,
    /// The appid (wx…).
    #[arg(long)]
    pub appid: Option<String>,
    /// The EncodingAESKey (43 characters).
    #[arg(long)]
    pub aes_key: Option<String>,
    /// Encryption mode: plain, compatible or safe.
    #[arg(long, value_parser = mode_parser())]
    pub mode: Option<Mode>,
    /// The data directory [default: ./wemp-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Redis URL for shared dedup and tokens.
    #[arg(long)]
    pub redis: Option<String>,
    /// Database URL: sqlite://path or postgres://… [default: sqlite://DATA_DIR/wemp.db].
    #[arg(long)]
    pub database: Option<String>,
    /// Forward each message no rule answered to this app URL as signed JSON
    /// (docs/gateway.md; `WEMP_FORWARD`).
    #[arg(long)]
    pub forward: Option<String>,
}

/// What a file-less start-up found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// The token was configured (file, environment or flag), or none is needed (a
    /// third-party platform, `[component]`, without accounts of its own).
    Configured,
    /// A token was generated and saved to this file.
    Generated {
        /// Where it was saved.
        saved_to: PathBuf,
    },
}

impl Config {
    /// The built-in configuration: defaults and the demo rules.
    pub fn embedded() -> Self {
        let mut cfg = Self::default();
        if let Ok(doc) = Self::from_toml_str(DEMO_RULES, "<demo rules>") {
            cfg.rules = doc.rules;
        }
        cfg
    }

    /// Parses and validates a config document; `name` is used in error messages.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] with the file, line and field of each problem.
    pub fn from_toml_str(src: &str, name: &str) -> Result<Self, ConfigError> {
        let cfg = Self::parse_toml_str(src, name)?;
        cfg.validate_with(Some(src), name)?;
        Ok(cfg)
    }

    /// Parses a config document without checking the values together (the environment and
    /// flags may still complete it, e.g. a safe-mode file whose key is in `WEMP_AES_KEY`).
    fn parse_toml_str(src: &str, name: &str) -> Result<Self, ConfigError> {
        toml::from_str(src).map_err(|e| {
            let (line, column, field) = match e.span() {
                Some(span) => {
                    let (l, c) = line_col(src, span.start);
                    (Some(l), Some(c), field_at(src, span.start))
                }
                None => (None, None, None),
            };
            ConfigError::Invalid(vec![ConfigProblem {
                source: name.to_owned(),
                line,
                column,
                field,
                message: toml_message(src, &e),
            }])
        })
    }

    /// Reads and validates a config file.
    ///
    /// # Errors
    /// [`ConfigError::Io`] or [`ConfigError::Invalid`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let src =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.into(), source })?;
        Self::from_toml_str(&src, &path.display().to_string())
    }

    /// The configuration `serve` runs with: the file (`--config`, or `DATA_DIR/wemp.toml`
    /// when it exists, or the embedded default), then `WEMP_*` variables from `env`, then
    /// the flags; validated as a whole. Returns the file it read, if any.
    ///
    /// # Errors
    /// As [`Config::load`], plus problems with environment values and flags.
    pub fn resolve(
        args: &ServeArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(Self, Option<PathBuf>), ConfigError> {
        let data_dir = args
            .data_dir
            .clone()
            .or_else(|| env("WEMP_DATA_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let written = data_dir.join(WRITTEN_CONFIG);
        let (mut cfg, file, src) = match &args.config {
            Some(path) => {
                let src = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Io { path: path.clone(), source })?;
                (Self::parse_toml_str(&src, &path.display().to_string())?, Some(path.clone()), Some(src))
            }
            None if written.exists() => {
                let src = std::fs::read_to_string(&written)
                    .map_err(|source| ConfigError::Io { path: written.clone(), source })?;
                (Self::parse_toml_str(&src, &written.display().to_string())?, Some(written), Some(src))
            }
            None => (Self::embedded(), None, None),
        };
        let mut problems = cfg.apply_env(env);
        problems.extend(cfg.apply_flags(args));
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }
        // Forwarding without a file: the app answers everything, not the demo rules.
        if file.is_none() && cfg.gateway.forward.is_some() {
            cfg.rules.clear();
        }
        let name = file.as_ref().map_or_else(|| "<built-in config>".to_owned(), |p| p.display().to_string());
        cfg.validate_with(src.as_deref(), &name)?;
        Ok((cfg, file))
    }

    fn account0(&mut self) -> &mut AccountConfig {
        if self.accounts.is_empty() {
            self.accounts.push(AccountConfig::default());
        }
        &mut self.accounts[0]
    }

    fn set(&mut self, field: &str, value: &str, origin: &str) -> Result<(), ConfigProblem> {
        let problem = |message: Wording| ConfigProblem {
            source: origin.to_owned(),
            line: None,
            column: None,
            field: Some(field.to_owned()),
            message,
        };
        let some = || Some(value.to_owned());
        match field {
            "server.listen" => self.server.listen = value.to_owned(),
            "server.path" => self.server.path = value.to_owned(),
            "server.timestamp_window" => {
                self.server.timestamp_window = parse_duration(value).map_err(|e| problem(e.message()))?
            }
            "server.body_limit" => {
                self.server.body_limit = parse_size(value).map_err(|e| problem(e.message()))?
            }
            "server.deadline" => {
                self.server.deadline = parse_duration(value).map_err(|e| problem(e.message()))?
            }
            "server.metrics_path" => self.server.metrics_path = some(),
            "storage.data_dir" => self.storage.data_dir = PathBuf::from(value),
            "storage.database" => self.storage.database = some(),
            "storage.redis" => self.storage.redis = some(),
            "console.public_url" => self.console.public_url = some(),
            "console.show_setup" => {
                self.console.show_setup = parse_bool(value).map_err(|e| problem(e.message()))?
            }
            "console.enabled" => {
                self.console.enabled = parse_bool(value).map_err(|e| problem(e.message()))?
            }
            "console.path" => self.console.path = value.to_owned(),
            "console.token" => self.console.token = Some(Secret::new(value)),
            "api_proxy.token" => self.api_proxy.token = Some(Secret::new(value)),
            "api_proxy.listen" => self.api_proxy.listen = some(),
            "gateway.forward" => self.gateway.forward = some(),
            "gateway.forward_secret" => self.gateway.forward_secret = Some(Secret::new(value)),
            "gateway.fallback_text" => self.gateway.fallback_text = some(),
            "component.appsecret" => {
                self.component.get_or_insert_with(ComponentConfig::default).appsecret =
                    Some(Secret::new(value))
            }
            "accounts[0].name" => self.account0().name = some(),
            "accounts[0].token" => self.account0().token = Some(Secret::new(value)),
            "accounts[0].appid" => self.account0().appid = some(),
            "accounts[0].appsecret" => self.account0().appsecret = Some(Secret::new(value)),
            "accounts[0].aes_key" => self.account0().aes_key = Some(Secret::new(value)),
            "accounts[0].mode" => {
                self.account0().mode = value.parse().map_err(|_| {
                    problem(Wording::new(Msg::CfgNotAMode).with("value", value.to_ascii_lowercase()))
                })?
            }
            "accounts[0].original_id" => self.account0().original_id = some(),
            _ => return Err(problem(Msg::CfgNotConfigurable.into())),
        }
        self.origins.insert(field.to_owned(), origin.to_owned());
        Ok(())
    }

    /// Applies the `WEMP_*` variables ([`ENV_VARS`]) that `env` returns; account values go
    /// to the first account. Returns the values that could not be used.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        for (var, field) in ENV_VARS {
            if let Some(value) = env(var).filter(|v| !v.is_empty())
                && let Err(p) = self.set(field, &value, var)
            {
                problems.push(p);
            }
        }
        problems
    }

    /// Applies the `serve` flags. Returns the values that could not be used.
    pub fn apply_flags(&mut self, args: &ServeArgs) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut apply = |flag: &str, field: &str, value: Option<String>| {
            if let Some(v) = value
                && let Err(p) = self.set(field, &v, flag)
            {
                problems.push(p);
            }
        };
        apply("--listen", "server.listen", args.listen.clone());
        apply("--path", "server.path", args.path.clone());
        apply("--token", "accounts[0].token", args.token.clone());
        apply("--appid", "accounts[0].appid", args.appid.clone());
        apply("--aes-key", "accounts[0].aes_key", args.aes_key.clone());
        apply("--mode", "accounts[0].mode", args.mode.map(|m| m.as_str().to_owned()));
        apply("--data-dir", "storage.data_dir", args.data_dir.as_ref().map(|p| p.display().to_string()));
        apply("--redis", "storage.redis", args.redis.clone());
        apply("--database", "storage.database", args.database.clone());
        apply("--forward", "gateway.forward", args.forward.clone());
        problems
    }

    /// Checks the values together; `src` (the file text) locates problems by line.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] with every problem found.
    pub fn validate_with(&self, src: Option<&str>, name: &str) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut report = |field: String, message: Wording| {
            let (source, line) = match self.origins.get(&field) {
                Some(origin) => (origin.clone(), None),
                None => (name.to_owned(), src.and_then(|s| line_of(s, &field))),
            };
            problems.push(ConfigProblem { source, line, column: None, field: Some(field), message });
        };
        if let Err(e) = self.server.listen.parse::<SocketAddr>() {
            report(
                "server.listen".into(),
                Wording::new(Msg::CfgNotAnAddress).with("value", &self.server.listen).with("error", e),
            );
        }
        if !self.server.path.starts_with('/') {
            report("server.path".into(), slash(&self.server.path));
        }
        if let Some(m) = &self.server.metrics_path
            && !m.starts_with('/')
        {
            report("server.metrics_path".into(), slash(m));
        }
        if self.server.deadline.is_zero() || self.server.deadline >= Duration::from_secs(5) {
            report("server.deadline".into(), Msg::CfgDeadline.into());
        }
        for (field, value) in [
            ("server.header_timeout", self.server.header_timeout),
            ("server.body_timeout", self.server.body_timeout),
            ("server.idle_timeout", self.server.idle_timeout),
        ] {
            if value.is_zero() || value > Duration::from_secs(300) {
                report(field.into(), Msg::CfgTimeoutRange.into());
            }
        }
        if self.server.max_connections == 0 {
            report("server.max_connections".into(), Msg::CfgAtLeastOne.into());
        }
        if self.server.body_limit < 1024 {
            report("server.body_limit".into(), Msg::CfgBodyLimit.into());
        }
        if let Some(db) = &self.storage.database
            && !["sqlite://", "sqlite:", "postgres://", "postgresql://"].iter().any(|p| db.starts_with(p))
        {
            let shown = crate::storage::redact_url(db);
            report("storage.database".into(), Wording::new(Msg::CfgDatabaseUrl).with("url", shown));
        }
        if let Some(redis) = &self.storage.redis
            && !(redis.starts_with("redis://")
                || redis.starts_with("rediss://")
                || redis.starts_with("unix://"))
        {
            let shown = crate::storage::redact_url(redis);
            report("storage.redis".into(), Wording::new(Msg::CfgRedisUrl).with("url", shown));
        }
        if let Some(token) = &self.api_proxy.token
            && token.len() < 16
        {
            report("api_proxy.token".into(), Msg::CfgApiProxyToken.into());
        }
        if let Some(listen) = &self.api_proxy.listen
            && let Err(e) = listen.parse::<SocketAddr>()
        {
            report(
                "api_proxy.listen".into(),
                Wording::new(Msg::CfgNotAnAddress).with("value", listen).with("error", e),
            );
        }
        let secret = self.gateway.forward_secret.is_some();
        if let Some(target) = &self.gateway.forward {
            match crate::gateway::check_target(target, secret) {
                Ok(()) => {}
                Err(e) if e.needs_secret() => report("gateway.forward_secret".into(), e.message_missing()),
                Err(e) => report("gateway.forward".into(), e.message()),
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            // What the target itself lacks is the rules' error (below); here the secret.
            if let Some(target) = &rule.forward
                && let Err(e) = crate::gateway::check_target(target, secret)
                && e.needs_secret()
            {
                report(format!("rules[{i}].forward"), e.message());
            }
        }
        if crate::gateway::uses_relay(self) {
            let relays = crate::gateway::relay_paths(self);
            for i in 0..self.accounts.len() {
                let path = self.account_path(i);
                if relays.contains(&path) {
                    report(
                        format!("accounts[{i}].path"),
                        Wording::new(Msg::CfgRelayPath).with("path", &path),
                    );
                }
            }
        }
        if let Some(c) = &self.component {
            self.check_component(c, &mut report);
        }
        if self.gateway.forward_timeout.is_zero() {
            report("gateway.forward_timeout".into(), Msg::CfgMoreThanZero.into());
        }
        for (i, account) in self.accounts.iter().enumerate() {
            let at = |f: &str| format!("accounts[{i}].{f}");
            if let Some(token) = &account.token
                && !token_is_valid(token.expose())
            {
                report(at("token"), Msg::CfgTokenShape.into());
            }
            // Only the first account's Token is generated when missing.
            if i > 0 && account.token.is_none() {
                report(at("token"), Msg::CfgTokenMissing.into());
            }
            if account.kind == Kind::Wecom {
                self.check_wecom(account, &at, &mut report);
                continue;
            }
            for (field, set) in [("corpid", account.corpid.is_some()), ("agentid", account.agentid.is_some())]
            {
                if set {
                    report(at(field), Wording::new(Msg::CfgWecomOnly).with("field", field));
                }
            }
            if let Some(appid) = &account.appid
                && !appid_is_valid(appid)
            {
                report(at("appid"), Wording::new(Msg::CfgAppidShape).with("appid", appid));
            }
            match (&account.aes_key, account.mode.is_encrypted()) {
                (Some(key), _) => {
                    if let Err(e) = wemp_proto::crypto::decode_key(key.expose()) {
                        report(
                            at("aes_key"),
                            Wording::new(Msg::CfgAesKeyInvalid).arg("error", key_error(&e)),
                        );
                    }
                }
                (None, true) => {
                    report(
                        at("aes_key"),
                        Wording::new(Msg::CfgModeNeedsKey).arg("mode", Arg::Mode(account.mode)),
                    );
                }
                (None, false) => {}
            }
            if account.appsecret.is_some() && account.appid.is_none() {
                report(at("appsecret"), Msg::CfgSecretNeedsAppid.into());
            }
            if account.mode.is_encrypted() && account.appid.is_none() {
                report(
                    at("appid"),
                    Wording::new(Msg::CfgModeNeedsAppid).arg("mode", Arg::Mode(account.mode)),
                );
            }
            let path = account.path.clone().unwrap_or_else(|| self.server.path.clone());
            if !path.starts_with('/') {
                report(at("path"), slash(&path));
            }
        }
        // A name picks one account (the API proxy's X-Wemp-Account, the console, forwarded
        // JSON): two accounts cannot share one.
        for (i, account) in self.accounts.iter().enumerate() {
            if let Some(name) = account.name.as_deref().filter(|n| !n.is_empty())
                && let Some(first) = self.accounts[..i].iter().position(|a| a.name.as_deref() == Some(name))
            {
                report(
                    format!("accounts[{i}].name"),
                    Wording::new(Msg::CfgDuplicateName).with("name", name).with("first", first),
                );
            }
        }
        // Duplicate path segments and appids: the server's own constructor decides.
        if !self.accounts.is_empty()
            && let Err(e) = Accounts::new((0..self.accounts.len()).map(|i| self.account_unkeyed(i)))
        {
            match e {
                AccountsError::DuplicateAppid { appid, kind, first, second } => {
                    let (field, msg) = match kind {
                        Kind::Wecom => ("agentid", Msg::CfgDuplicateWecom),
                        Kind::Miniprogram => ("appid", Msg::CfgDuplicateMiniprogram),
                        _ => ("appid", Msg::CfgDuplicateAppid),
                    };
                    let message = Wording::new(msg).with("appid", appid).with("first", first);
                    report(format!("accounts[{second}].{field}"), message);
                }
                AccountsError::DuplicatePath { segment, first, second } => {
                    let path = self.account_path(second);
                    let message = if path == self.account_path(first) {
                        Wording::new(Msg::CfgDuplicatePath).with("path", &path).with("first", first)
                    } else {
                        Wording::new(Msg::CfgDuplicateSegment)
                            .with("path", &path)
                            .with("segment", segment)
                            .with("first", first)
                    };
                    report(format!("accounts[{second}].path"), message);
                }
                other => report("accounts".into(), Wording::new(Msg::CfgAccounts).with("error", other)),
            }
        }
        let console = &self.console.path;
        if !console.starts_with('/')
            || console.len() < 2
            || console.ends_with('/')
            || console.contains(['?', '#', ' '])
        {
            report("console.path".into(), Wording::new(Msg::CfgConsolePath).with("path", console));
        } else if let Some(i) = (0..self.accounts.len().max(1)).find(|&i| {
            let p = self.account_path(i);
            p == *console || p.starts_with(&format!("{console}/"))
        }) {
            report(
                "console.path".into(),
                Wording::new(Msg::CfgConsolePathTaken)
                    .with("path", console)
                    .with("callback", self.account_path(i)),
            );
        } else if self.server.metrics_path.as_deref() == Some(console.as_str()) {
            report("console.path".into(), Wording::new(Msg::CfgConsolePathMetrics).with("path", console));
        }
        if let Some(t) = &self.console.token
            && t.expose().trim().len() < 8
        {
            report("console.token".into(), Msg::CfgConsoleToken.into());
        }
        for (i, u) in self.console.users.iter().enumerate() {
            if u.openid.trim().is_empty() {
                report(format!("console.users[{i}].openid"), Msg::CfgEmpty.into());
            } else if self.console.users[..i].iter().any(|o| o.openid == u.openid) {
                report(
                    format!("console.users[{i}].openid"),
                    Wording::new(Msg::CfgListedTwice).with("value", &u.openid),
                );
            }
        }
        if let Err(e) = self.menu.validate() {
            report(format!("menu.{}", e.path), menu_message(&e.problem));
        }
        if let Err(errors) = RuleSet::compile(&self.rules) {
            for e in errors {
                report(e.path, e.message);
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(ConfigError::Invalid(problems)) }
    }

    /// The settings of a WeCom app: corpid, AgentID, Token and EncodingAESKey, never an
    /// appid, and no mode but safe (WeCom encrypts every callback).
    fn check_wecom(
        &self,
        account: &AccountConfig,
        at: &dyn Fn(&str) -> String,
        report: &mut dyn FnMut(String, Wording),
    ) {
        match &account.corpid {
            None => report(at("corpid"), Msg::CfgCorpidMissing.into()),
            Some(corpid) if !corpid_is_valid(corpid) => {
                report(at("corpid"), Wording::new(Msg::CfgCorpidShape).with("corpid", corpid));
            }
            Some(_) => {}
        }
        if let Some(agentid) = &account.agentid
            && !(agentid.len() <= 16 && !agentid.is_empty() && agentid.bytes().all(|b| b.is_ascii_digit()))
        {
            report(at("agentid"), Wording::new(Msg::CfgAgentidShape).with("agentid", agentid));
        }
        if account.appsecret.is_some() && account.agentid.is_none() {
            report(at("agentid"), Msg::CfgAgentidMissing.into());
        }
        if account.appid.is_some() {
            report(at("appid"), Msg::CfgWecomAppid.into());
        }
        if account.original_id.is_some() {
            report(at("original_id"), Msg::CfgWecomOriginalId.into());
        }
        match &account.aes_key {
            None => report(at("aes_key"), Msg::CfgWecomKeyMissing.into()),
            Some(key) => {
                if let Err(e) = wemp_proto::crypto::decode_key(key.expose()) {
                    report(at("aes_key"), Wording::new(Msg::CfgAesKeyInvalid).arg("error", key_error(&e)));
                }
            }
        }
        if account.mode == Mode::Compatible {
            report(at("mode"), Wording::new(Msg::CfgWecomMode).with("mode", account.mode));
        }
        let path = account.path.clone().unwrap_or_else(|| self.server.path.clone());
        if !path.starts_with('/') {
            report(at("path"), slash(&path));
        }
    }

    /// The compiled rules.
    ///
    /// # Errors
    /// As [`RuleSet::compile`] (already checked when the config was loaded).
    pub fn compiled_rules(&self) -> Result<RuleSet, Vec<crate::rules::RuleError>> {
        RuleSet::compile(&self.rules)
    }

    /// The callback path of account `i`.
    pub fn account_path(&self, i: usize) -> String {
        self.accounts.get(i).and_then(|a| a.path.clone()).unwrap_or_else(|| self.server.path.clone())
    }

    /// Account `i` as the server admits it: its id ([`crate::serve::account_id`]), Token,
    /// EncodingAESKey, AppSecret, mode, original id and the last segment of its path.
    ///
    /// # Errors
    /// [`AccountError`]: there is no account `i`, it has no Token yet, or its key is not a
    /// valid EncodingAESKey (the last two reported by [`Config::validate_with`] first).
    pub fn account(&self, i: usize) -> Result<Account, AccountError> {
        let a = self.accounts.get(i).ok_or(AccountError::Missing(i))?;
        if a.token.is_none() {
            return Err(AccountError::NoToken(i));
        }
        let account = self.account_unkeyed(i);
        match &a.aes_key {
            Some(key) => {
                account.with_aes_key(key.expose()).map_err(|source| AccountError::Key { index: i, source })
            }
            None => Ok(account),
        }
    }

    /// The `[component]` section's problems.
    fn check_component(&self, c: &ComponentConfig, report: &mut impl FnMut(String, Wording)) {
        let at = |f: &str| format!("component.{f}");
        match &c.appid {
            None => report(at("appid"), Msg::CfgComponentAppidMissing.into()),
            Some(appid) if !appid_is_valid(appid) => {
                report(at("appid"), Wording::new(Msg::CfgAppidShape).with("appid", appid));
            }
            Some(_) => {}
        }
        match &c.token {
            None => report(at("token"), Msg::CfgComponentTokenMissing.into()),
            Some(t) if !token_is_valid(t.expose()) => {
                report(at("token"), Msg::CfgTokenShape.into());
            }
            Some(_) => {}
        }
        match &c.aes_key {
            None => report(at("aes_key"), Msg::CfgComponentKeyMissing.into()),
            Some(key) => {
                if let Err(e) = wemp_proto::crypto::decode_key(key.expose()) {
                    report(at("aes_key"), Wording::new(Msg::CfgAesKeyInvalid).arg("error", key_error(&e)));
                }
            }
        }
        if c.appsecret.is_some()
            && c.appsecret_file.is_some()
            && !self.origins.contains_key("component.appsecret")
        {
            report(at("appsecret"), Msg::CfgComponentSecretTwice.into());
        } else if let Err(e) = c.secret() {
            let field = if c.appsecret_file.is_some() { "appsecret_file" } else { "appsecret" };
            report(at(field), e);
        }
        if !c.path.starts_with('/') {
            report(at("path"), slash(&c.path));
        } else {
            let taken = (0..self.accounts.len().max(1)).map(|i| self.account_path(i)).any(|p| p == c.path);
            if taken || c.path == self.console.path || self.server.metrics_path.as_ref() == Some(&c.path) {
                report(at("path"), Wording::new(Msg::CfgPathTaken).with("path", &c.path));
            }
        }
    }

    /// [`Config::account`] without the EncodingAESKey (which may not be valid yet).
    fn account_unkeyed(&self, i: usize) -> Account {
        let a = &self.accounts[i];
        let mut account = Account::new(
            crate::serve::account_id(self, i),
            a.token.clone().unwrap_or_else(|| Secret::new("")),
        )
        .with_kind(a.kind)
        .with_path(crate::serve::last_segment(&self.account_path(i)))
        .with_mode(a.effective_mode());
        if let Some(agentid) = &a.agentid {
            account = account.with_agentid(agentid.clone());
        }
        if let Some(gh) = &a.original_id {
            account = account.with_original_id(gh.clone());
        }
        if let Some(secret) = &a.appsecret {
            account = account.with_app_secret(secret.clone());
        }
        account
    }
}

/// Why an EncodingAESKey is not usable, in words of either language.
fn key_error(e: &wemp_proto::KeyError) -> Arg {
    use wemp_proto::KeyError as K;
    let m = match e {
        K::Length(n) => Wording::new(Msg::CfgKeyLength).with("n", n),
        K::Alphabet { position } => Wording::new(Msg::CfgKeyAlphabet).with("position", position),
        other => return Arg::Text(other.to_string()),
    };
    Arg::Wording(Box::new(m))
}

/// A menu WeChat would refuse, in words of either language.
fn menu_message(p: &wemp_console::MenuProblem) -> Wording {
    use wemp_console::MenuProblem as P;
    match p {
        P::TooManyButtons { n, max } => Wording::new(Msg::MenuTooManyButtons).with("n", n).with("max", max),
        P::GroupWithType => Msg::MenuGroupWithType.into(),
        P::TooManySubButtons { n, max } => {
            Wording::new(Msg::MenuTooManySubButtons).with("n", n).with("max", max)
        }
        P::NestedSubButtons => Msg::MenuNestedSubButtons.into(),
        P::Empty => Msg::CfgEmpty.into(),
        P::TooLong { bytes, max } => Wording::new(Msg::MenuTooLong).with("bytes", bytes).with("max", max),
        P::MissingType => Msg::MenuMissingType.into(),
        P::NoKey => Msg::MenuNoKey.into(),
        P::NotHttpUrl(url) => Wording::new(Msg::MenuNotHttpUrl).with("url", url),
        P::NoUrl => Msg::MenuNoUrl.into(),
        other => Wording::new(Msg::CfgMenu).with("error", other),
    }
}

/// A TOML document's error in words of either language: a value wemp's own parsers refused
/// (a duration, a size) in theirs, serde's usual errors (an unknown or missing field, a
/// wrong type, a key set twice) framed with their names, anything else as the parser words it.
fn toml_message(src: &str, e: &toml::de::Error) -> Wording {
    let text = e.message().trim();
    if let Some(raw) = e.span().and_then(|span| src.get(span)) {
        let value = raw.trim().trim_matches(['"', '\'']);
        if let Some(err) = [parse_duration(value).err(), parse_size(value).err()]
            .into_iter()
            .flatten()
            .find(|err| err.to_string() == text)
        {
            return err.message();
        }
    }
    if let Some((value, _)) = text.split_once(' ') {
        for msg in [Msg::CfgFloatNotADuration, Msg::CfgNotWholeBytes] {
            let m = Wording::new(msg).with("value", value);
            if m.to_string() == text {
                return m;
            }
        }
    }
    let tick = |s: &str| s.strip_suffix('`').filter(|s| !s.contains('`')).map(str::to_owned);
    if let Some((field, expected)) =
        text.strip_prefix("unknown field `").and_then(|rest| rest.split_once("`, expected "))
    {
        return match expected.strip_prefix("one of ") {
            Some(fields) => Wording::new(Msg::CfgUnknownField).with("field", field).with("fields", fields),
            None => {
                Wording::new(Msg::CfgUnknownFieldExpected).with("field", field).with("expected", expected)
            }
        };
    }
    if let Some(field) = text.strip_prefix("missing field `").and_then(tick) {
        return Wording::new(Msg::CfgMissingField).with("field", field);
    }
    if text == "duplicate key" {
        return Msg::CfgDuplicateKey.into();
    }
    if let Some((found, expected)) =
        text.strip_prefix("invalid type: ").and_then(|rest| rest.split_once(", expected "))
    {
        return Wording::new(Msg::CfgInvalidType).with("found", found).with("expected", expected);
    }
    Wording::new(Msg::CfgToml).with("error", text)
}

/// "`path` must start with /".
fn slash(path: &str) -> Wording {
    Wording::new(Msg::CfgPathSlash).with("path", path)
}

/// Why [`Config::account`] cannot give an account.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// There is no such account.
    #[error("no accounts[{0}]")]
    Missing(usize),
    /// The account has no Token (only the first one's is generated).
    #[error("accounts[{0}] has no token")]
    NoToken(usize),
    /// The EncodingAESKey is not valid.
    #[error("accounts[{index}].aes_key: {source}")]
    Key {
        /// The account.
        index: usize,
        /// What is wrong with the key.
        #[source]
        source: wemp_proto::KeyError,
    },
}

/// Why [`insert_token`] cannot put the Token into a config document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InsertTokenError {
    /// The document is not TOML.
    #[error(transparent)]
    Toml(#[from] toml_edit::TomlError),
    /// `accounts` is an inline array without a first table.
    #[error("`accounts` has no first table to put the Token in")]
    NoFirstAccount,
    /// `accounts` is something else than a list of tables.
    #[error("`accounts` is not a list of tables ([[accounts]])")]
    NotTables,
}

/// Makes sure the first account has a token (a `[component]` without `[[accounts]]` has no
/// first account and needs none). When none is configured, generates one and
/// saves it: into `config_file` when given ([`insert_token`], keeping its comments),
/// otherwise into `DATA_DIR/wemp.toml`, which is created with the demo rules.
///
/// # Errors
/// [`ConfigError::Io`] when the file cannot be read or written.
pub fn ensure_token(
    cfg: &mut Config,
    config_file: Option<&Path>,
    rng: &mut impl Rng,
) -> Result<TokenSource, ConfigError> {
    if cfg.accounts.first().and_then(|a| a.token.as_ref()).is_some() {
        return Ok(TokenSource::Configured);
    }
    // A third-party platform without accounts of its own (the usual SaaS deployment) needs
    // none: its authorizers' messages are signed with the component's Token.
    if cfg.accounts.is_empty() && cfg.component.is_some() {
        return Ok(TokenSource::Configured);
    }
    let token = generate_token(rng);
    let path = config_file.map_or_else(|| cfg.storage.data_dir.join(WRITTEN_CONFIG), Path::to_path_buf);
    let io = |source| ConfigError::Io { path: path.clone(), source };
    let unsaved = |source| ConfigError::TokenNotSaved { path: path.clone(), source };
    let text = if path.exists() {
        let src = std::fs::read_to_string(&path).map_err(io)?;
        insert_token(&src, &token).map_err(|e| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("cannot save the generated Token: {e}"),
            ))
        })?
    } else {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(unsaved)?;
        }
        written_config(&token)
    };
    std::fs::write(&path, text).map_err(unsaved)?;
    cfg.account0().token = Some(Secret::new(token));
    Ok(TokenSource::Generated { saved_to: path })
}

/// Sets `token = "…"` in the first account of `src` (adding an `[[accounts]]` table before
/// the others, with the comment that opened the file, when there is none), editing the TOML
/// document (`toml_edit`) so comments, order and formatting stay as they were.
///
/// # Errors
/// `src` is not TOML, or its `accounts` is not a list of tables.
pub fn insert_token(src: &str, token: &str) -> Result<String, InsertTokenError> {
    use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, Value};
    let mut doc: DocumentMut = src.parse()?;
    let mut value = Value::from(token);
    value.decor_mut().set_suffix("  # generated by wemp serve");
    match doc.get_mut("accounts") {
        Some(Item::ArrayOfTables(accounts)) => match accounts.get_mut(0) {
            Some(first) => {
                first.insert("token", Item::Value(value));
            }
            None => {
                let mut t = Table::new();
                t.insert("token", Item::Value(value));
                accounts.push(t);
            }
        },
        Some(Item::Value(Value::Array(accounts))) => match accounts.get_mut(0) {
            // No comment inside an inline table: it would end the line.
            Some(Value::InlineTable(first)) => {
                first.insert("token", Value::from(token));
            }
            _ => return Err(InsertTokenError::NoFirstAccount),
        },
        Some(_) => return Err(InsertTokenError::NotTables),
        None => {
            let mut t = Table::new();
            t.insert("token", Item::Value(value));
            // First among the tables, taking over the comment that opened the file.
            let first = doc
                .as_table_mut()
                .iter_mut()
                .filter_map(|(_, item)| match item {
                    Item::Table(t) => Some(t),
                    Item::ArrayOfTables(a) => a.get_mut(0),
                    _ => None,
                })
                .filter(|t| t.position().is_some())
                .min_by_key(|t| t.position());
            if let Some(first) = first {
                t.set_position(first.position().map(|p| p - 1));
                if let Some(prefix) = first.decor().prefix().cloned() {
                    t.decor_mut().set_prefix(prefix);
                    first.decor_mut().set_prefix("\n");
                }
            }
            let mut accounts = ArrayOfTables::new();
            accounts.push(t);
            doc.insert("accounts", Item::ArrayOfTables(accounts));
        }
    }
    Ok(doc.to_string())
}

/// The config `serve` writes on a first start without a file.
pub fn written_config(token: &str) -> String {
    format!(
        "# Written by `wemp serve` on first start. Edit freely; see examples/wemp.toml for every setting.\n\
         \n[server]\nlisten = \"{DEFAULT_LISTEN}\"\npath = \"{DEFAULT_PATH}\"\n\
         \n[[accounts]]\ntoken = \"{token}\"  # paste into the WeChat console (Token)\nmode = \"plain\"\n\n{DEMO_RULES}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(src: &str) -> Vec<ConfigProblem> {
        Config::from_toml_str(src, "w.toml").unwrap_err().problems().to_vec()
    }

    /// Configs that each show some of the config check's problems, together every kind.
    const BROKEN: &[&str] = &[
        "[server\n",
        "[[accounts]]\nname = \"shop\"\ntoken = \"tok123\"\npath = \"/a\"\n[[accounts]]\nname = \"shop\"\ntoken = \"tok456\"\npath = \"/b\"\n",
        "[server]\nlisen = \"127.0.0.1:80\"\n",
        "[[console.users]]\nname = \"ann\"\n",
        "[server]\nmax_connections = \"many\"\n",
        "[server]\npath = \"/a\"\npath = \"/b\"\n",
        "[server]\ndeadline = \"soon\"\n",
        "[server]\nbody_limit = \"big\"\n",
        "[server]\nbody_limit = \"5q\"\n",
        "[server]\ndeadline = \"5q\"\n",
        "[[accounts]]\ntoken = \"tok123\"\naes_key = \"abcdefghijklmnopqrstuvwxyz0123456789ABCDEF!\"\n",
        "[server]\ndeadline = \"99999999999d\"\n",
        "[server]\ndeadline = -1.5\n",
        "[server]\nbody_limit = 1.5\n",
        "[server]\nlisten = \"nowhere\"\npath = \"wechat\"\nmetrics_path = \"m\"\ndeadline = \"6s\"\n\
         header_timeout = \"0s\"\nmax_connections = 0\nbody_limit = 10\n\
         [storage]\ndatabase = \"mysql://x\"\nredis = \"http://x\"\n\
         [api_proxy]\ntoken = \"short\"\nlisten = \"nowhere\"\n\
         [gateway]\nforward = \"relay\"\nforward_timeout = \"0s\"\n\
         [console]\npath = \"/\"\ntoken = \"short\"\n\
         [[console.users]]\nopenid = \"\"\nname = \"a\"\n\
         [[console.users]]\nopenid = \"o1\"\nname = \"b\"\n\
         [[console.users]]\nopenid = \"o1\"\nname = \"c\"\n",
        "[gateway]\nforward = \"ftp://x\"\n",
        "[gateway]\nforward = \"relay\"\nforward_secret = \"0123456789abcdef\"\n\
         [[accounts]]\ntoken = \"tok123\"\n[[accounts]]\ntoken = \"tok456\"\npath = \"/wechat/relay\"\n",
        "[[accounts]]\ntoken = \"a\"\ncorpid = \"ww1234567890\"\nappid = \"nope\"\naes_key = \"short\"\n\
         [[accounts]]\npath = \"/b\"\nmode = \"safe\"\nappsecret = \"s3cr3t\"\n",
        "[[accounts]]\ntoken = \"tok123\"\nappid = \"wx0123456789abcdef\"\n\
         [[accounts]]\ntoken = \"tok123\"\nappid = \"wx0123456789abcdef\"\npath = \"/other\"\n",
        "[[accounts]]\ntoken = \"tok123\"\nkind = \"miniprogram\"\nappid = \"wx0123456789abcdef\"\n\
         [[accounts]]\ntoken = \"tok123\"\nkind = \"miniprogram\"\nappid = \"wx0123456789abcdef\"\npath = \"/other\"\n",
        "[[accounts]]\ntoken = \"tok123\"\n[[accounts]]\ntoken = \"tok123\"\n",
        "[[accounts]]\ntoken = \"tok123\"\npath = \"/a/wechat\"\n[[accounts]]\ntoken = \"tok123\"\npath = \"/b/wechat\"\n",
        "[[accounts]]\ntoken = \"tok123\"\nkind = \"wecom\"\nmode = \"compatible\"\nappid = \"wx0123456789abcdef\"\n\
         original_id = \"gh_1\"\nagentid = \"x\"\npath = \"w\"\n\
         [[accounts]]\ntoken = \"tok123\"\nkind = \"wecom\"\ncorpid = \"!\"\nappsecret = \"s\"\npath = \"/b\"\n\
         aes_key = \"short\"\n",
        "[[accounts]]\ntoken = \"tok123\"\nkind = \"wecom\"\ncorpid = \"ww1234567890\"\nagentid = \"1000002\"\n\
         aes_key = \"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\"\n\
         [[accounts]]\ntoken = \"tok123\"\nkind = \"wecom\"\ncorpid = \"ww1234567890\"\nagentid = \"1000002\"\n\
         aes_key = \"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\"\npath = \"/b\"\n",
        "[server]\nmetrics_path = \"/console\"\n",
        "[console]\npath = \"/wechat\"\n",
        "[component]\nappsecret = \"s\"\nappsecret_file = \"/x\"\n",
        "[component]\nappid = \"nope\"\ntoken = \"a\"\naes_key = \"short\"\nappsecret_file = \"/nonexistent/wemp-secret\"\npath = \"x\"\n",
        "[component]\npath = \"/wechat\"\n",
        "[[menu.button]]\nname = \"a\"\ntype = \"click\"\nkey = \"a\"\n[[menu.button]]\nname = \"b\"\ntype = \"click\"\nkey = \"b\"\n\
         [[menu.button]]\nname = \"c\"\ntype = \"click\"\nkey = \"c\"\n[[menu.button]]\nname = \"d\"\ntype = \"click\"\nkey = \"d\"\n",
        "[[menu.button]]\nname = \"a\"\ntype = \"click\"\nkey = \"a\"\n[[menu.button.sub_button]]\nname = \"s\"\ntype = \"click\"\nkey = \"s\"\n",
        "[[menu.button]]\nname = \"a\"\nsub_button = [{name = \"1\", type = \"click\", key = \"1\"}, {name = \"2\", type = \"click\", key = \"2\"}, \
         {name = \"3\", type = \"click\", key = \"3\"}, {name = \"4\", type = \"click\", key = \"4\"}, \
         {name = \"5\", type = \"click\", key = \"5\"}, {name = \"6\", type = \"click\", key = \"6\"}]\n",
        "[[menu.button]]\nname = \"a\"\nsub_button = [{name = \"1\", sub_button = [{name = \"x\", type = \"click\", key = \"x\"}]}]\n",
        "[[menu.button]]\nname = \" \"\ntype = \"click\"\nkey = \"a\"\n",
        "[[menu.button]]\nname = \"a very long button name\"\ntype = \"click\"\nkey = \"a\"\n",
        "[[menu.button]]\nname = \"a\"\n",
        "[[menu.button]]\nname = \"a\"\ntype = \"click\"\n",
        "[[menu.button]]\nname = \"a\"\ntype = \"view\"\nurl = \"ftp://x\"\n",
        "[[menu.button]]\nname = \"a\"\ntype = \"view\"\n",
        "[[rules]]\nreply.text = \"x\"\n\
         [[rules]]\nkeyword = \"a\"\nregex = \"a\"\nreply.text = \"x\"\n\
         [[rules]]\nkeyword = \"\"\nreply.text = \"x\"\nignore_case = true\nevents = true\n\
         [[rules]]\nregex = \"(\"\nreply.text = \"x\"\n\
         [[rules]]\nevent = \"\"\nreply.text = \"x\"\n\
         [[rules]]\nevent = \"CLICK\"\nscene = \"s\"\nreply.text = \"x\"\n\
         [[rules]]\nevent = \"subscribe\"\nkey = \"k\"\nreply.text = \"{content}\"\n\
         [[rules]]\ntype = \"fax\"\nscene = \"s\"\nkey = \"k\"\nreply.text = \"x\"\n\
         [[rules]]\nkeyword = \"a\"\nreply.text = \"{1}\"\n\
         [[rules]]\nregex = \"(a)\"\nreply.text = \"{2}\"\nignore_case = false\n\
         [[rules]]\nkeyword = \"a\"\nreply.text = \"}\"\n\
         [[rules]]\nkeyword = \"a\"\nreply.text = \"{ \"\n\
         [[rules]]\nkeyword = \"a\"\nreply.text = \"{nope}\"\n\
         [[rules]]\nkeyword = \"a\"\nreply.text = \"x\"\nforward = \"http://127.0.0.1:9/x\"\n\
         [[rules]]\nkeyword = \"a\"\nforward = \"http://127.0.0.1:9/x\"\ndelay = \"1s\"\n\
         [[rules]]\nkeyword = \"a\"\n\
         [[rules]]\nkeyword = \"a\"\nreply.text = \"x\"\nreply.image = \"m\"\n\
         [[rules]]\nkeyword = \"a\"\nreply.news = []\n\
         [[rules]]\nevent = \"subscribe\"\nreply.news = []\n\
         [[rules]]\nkeyword = \"a\"\nreply.transfer = false\n\
         [[rules]]\nkeyword = \"a\"\nreply.text = \"x\"\ndelay = \"2m\"\n\
         [[rules]]\nkeyword = \"a\"\nreply.text = \"x\"\ndelay = \"soon\"\n\
         [[rules]]\nkeyword = \"a\"\nforward = \"https://example.com/x\"\n",
        // Warnings: rules that compile but look wrong.
        "[[rules]]\nevent = \"subscibe\"\nreply.text = \"x\"\n\
         [[rules]]\nevent = \"no-such event\"\nreply.text = \"x\"\n",
    ];

    /// Messages no config above can show, and why.
    const NOT_SHOWN: &[(Msg, &str)] = &[
        (Msg::CfgUnknownFieldExpected, "serde's words for a section of one field or none: wemp has none"),
        (Msg::CfgRelayNotStarted, "a rule given \"relay\" on reload by a server started without one"),
        (Msg::CfgForwardClient, "the HTTP client cannot be built (no TLS backend)"),
        (Msg::CfgAccounts, "another AccountsError: those the config can cause have their own words"),
        (Msg::CfgMenu, "a MenuProblem added later, until it has its own words"),
        (
            Msg::CfgTokenNotSaved,
            "a read-only config file: tests/serve.rs a_read_only_config_without_a_token_says_what_to_set",
        ),
    ];

    #[test]
    fn every_config_problem_is_worded_in_both_languages_and_names_its_parameters() {
        // Rules' templates show these as they are.
        let literal = ["openid", "account", "content", "scene", "key", "1"];
        let empty_secret = std::env::temp_dir().join(format!("wemp-empty-secret-{}", std::process::id()));
        std::fs::write(&empty_secret, " \n").unwrap();
        let mut docs: Vec<String> = BROKEN.iter().map(|s| (*s).to_owned()).collect();
        docs.push(format!("[component]\nappsecret_file = {:?}\n", empty_secret.display().to_string()));
        let mut messages: Vec<Wording> = Vec::new();
        for doc in &docs {
            let before = messages.len();
            if let Err(e) = Config::from_toml_str(doc, "w.toml") {
                messages.extend(e.problems().iter().map(|p| p.message.clone()));
            }
            if let Ok(cfg) = Config::parse_toml_str(doc, "w.toml")
                && let Ok(rules) = RuleSet::compile(&cfg.rules)
            {
                messages.extend(rules.warnings().iter().map(|w| w.message.clone()));
            }
            assert!(messages.len() > before, "no problem: {doc}");
        }
        std::fs::remove_file(&empty_secret).unwrap();
        let mut cfg = Config::embedded();
        let env = |k: &str| match k {
            "WEMP_MODE" => Some("secret".to_owned()),
            "WEMP_SHOW_SETUP" => Some("maybe".to_owned()),
            _ => None,
        };
        messages.extend(cfg.apply_env(env).into_iter().map(|p| p.message));
        messages.push(cfg.set("nope", "x", "--nope").unwrap_err().message);

        for m in &messages {
            assert_eq!(m.misnamed(&literal), Vec::<String>::new());
            let (en, zh) = (m.get(Lang::En), m.get(Lang::Zh));
            assert!(
                zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{:?} is not Chinese: {zh}",
                m.msg
            );
            assert_ne!(en, zh, "{:?}", m.msg);
        }
        let shown: std::collections::BTreeSet<String> =
            messages.iter().flat_map(Wording::msgs).map(|m| format!("{m:?}")).collect();
        for m in Msg::ALL {
            let name = format!("{m:?}");
            let is_problem = ["Cfg", "Rule", "Menu"].iter().any(|p| name.starts_with(p));
            let excused = NOT_SHOWN.iter().any(|(n, _)| n == m);
            if is_problem && !excused {
                assert!(shown.contains(&name), "no config above shows {name}");
            }
            if excused {
                assert!(!shown.contains(&name), "{name} is shown: take it off NOT_SHOWN");
            }
        }
    }

    #[test]
    fn wecom_and_miniprogram_accounts_are_checked_by_kind_with_file_and_line() {
        let ok = "[[accounts]]\nkind = \"wecom\"\ncorpid = \"ww0123456789abcdef\"\nagentid = \"1000002\"\n\
                  token = \"CorpTok1\"\naes_key = \"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\"\n\
                  appsecret = \"s\"\npath = \"/corp\"\n\
                  [[accounts]]\nkind = \"miniprogram\"\nappid = \"wx0123456789abcdef\"\ntoken = \"MiniTok1\"\n\
                  path = \"/mini\"\n";
        let cfg = Config::from_toml_str(ok, "w.toml").unwrap();
        let corp = cfg.account(0).unwrap();
        assert_eq!(
            (corp.kind(), corp.appid(), corp.agentid()),
            (Kind::Wecom, "ww0123456789abcdef", Some("1000002"))
        );
        assert_eq!(corp.mode(), Some(Mode::Safe));
        assert_eq!(
            corp.cipher().map(Cipher::appid),
            Some("ww0123456789abcdef"),
            "the corpid is the ReceiveId"
        );
        assert_eq!(cfg.account(1).unwrap().kind(), Kind::Miniprogram);

        let bad = problems(
            "[[accounts]]\nkind = \"wecom\"\nappid = \"wx0123456789abcdef\"\ntoken = \"CorpTok1\"\n\
             agentid = \"x1\"\nappsecret = \"s\"\n\
             [[accounts]]\ntoken = \"OaTok123\"\ncorpid = \"ww0123456789abcdef\"\npath = \"/oa\"\n",
        );
        let find = |field: &str| {
            bad.iter()
                .find(|p| p.field.as_deref() == Some(field))
                .unwrap_or_else(|| panic!("{field}: {bad:?}"))
        };
        assert!(find("accounts[0].corpid").message.to_string().contains("needs its corpid"));
        assert!(find("accounts[0].appid").message.to_string().contains("rename appid to corpid"));
        assert_eq!(find("accounts[0].appid").line, Some(3));
        assert!(find("accounts[0].agentid").message.to_string().contains("is not an AgentID"));
        assert!(find("accounts[0].aes_key").message.to_string().contains("WeCom encrypts every callback"));
        let stray = find("accounts[1].corpid");
        assert!(stray.message.to_string().contains("kind = \"wecom\""), "{stray}");
        assert_eq!((stray.source.as_str(), stray.line), ("w.toml", Some(9)));
        let unknown = Config::from_toml_str("[[accounts]]\nkind = \"channels\"\n", "w.toml").unwrap_err();
        assert!(unknown.to_string().contains("w.toml:2"), "{unknown}");
    }

    #[test]
    fn the_component_section_is_checked_with_file_and_line_and_takes_its_secret_from_a_file_or_the_env() {
        let dir = std::env::temp_dir().join(format!("wemp-component-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("component.secret");
        std::fs::write(&secret, "  s3cr3t\n").unwrap();
        let ok = format!(
            "[component]\nappid = \"wx0123456789abcdef\"\ntoken = \"CompTok1\"\n\
             aes_key = \"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\"\nappsecret_file = {:?}\n",
            secret.display().to_string()
        );
        let cfg = Config::from_toml_str(&ok, "w.toml").unwrap();
        let c = cfg.component.as_ref().unwrap();
        assert_eq!((c.path.as_str(), c.full_network_release), ("/component", false));
        assert_eq!(c.secret().unwrap().expose(), "s3cr3t");
        assert_eq!(c.cipher().unwrap().appid(), "wx0123456789abcdef");
        // The environment's secret wins over the file's.
        let mut env_cfg = Config::parse_toml_str(&ok, "w.toml").unwrap();
        assert!(
            env_cfg.apply_env(|v| (v == "WEMP_COMPONENT_APPSECRET").then(|| "fromenv".into())).is_empty()
        );
        env_cfg.validate_with(Some(&ok), "w.toml").unwrap();
        assert_eq!(env_cfg.component.unwrap().secret().unwrap().expose(), "fromenv");

        let bad = problems(
            "[server]\npath = \"/wechat\"\n[component]\nappid = \"component\"\ntoken = \"x\"\n\
             aes_key = \"short\"\npath = \"/wechat\"\n",
        );
        let find = |field: &str| {
            bad.iter()
                .find(|p| p.field.as_deref() == Some(field))
                .unwrap_or_else(|| panic!("{field}: {bad:?}"))
        };
        assert!(find("component.appid").message.to_string().contains("does not look like an appid"));
        assert_eq!(find("component.appid").line, Some(4));
        assert!(find("component.token").message.to_string().contains("3 to 32"));
        assert!(find("component.aes_key").message.to_string().contains("EncodingAESKey"));
        assert!(find("component.appsecret").message.to_string().contains("WEMP_COMPONENT_APPSECRET"));
        assert!(find("component.path").message.to_string().contains("already served"));
        assert_eq!(find("component.path").line, Some(7));
        let missing = dir.join("nope");
        let bad = problems(&format!(
            "[component]\nappid = \"wx0123456789abcdef\"\ntoken = \"CompTok1\"\n\
             aes_key = \"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\"\nappsecret_file = {:?}\n",
            missing.display().to_string()
        ));
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!((bad[0].field.as_deref(), bad[0].line), (Some("component.appsecret_file"), Some(5)));
        assert!(bad[0].message.to_string().contains("cannot read"), "{}", bad[0]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn defaults_and_units() {
        let cfg = Config::from_toml_str(
            "[server]\ntimestamp_window = \"10m\"\nbody_limit = \"1MiB\"\ndeadline = 3\n\
             [storage]\ndata_dir = \"/var/lib/wemp\"\n",
            "w.toml",
        )
        .unwrap();
        assert_eq!(cfg.server.timestamp_window, Duration::from_secs(600));
        assert_eq!(cfg.server.body_limit, 1024 * 1024);
        assert_eq!(cfg.server.deadline, Duration::from_secs(3));
        assert_eq!(cfg.storage.database_url(), "sqlite:///var/lib/wemp/wemp.db");
        assert_eq!(cfg.server.listen, DEFAULT_LISTEN);
        assert_eq!(parse_duration("4.5s").unwrap(), Duration::from_millis(4500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("5 parsecs").is_err());
        assert_eq!(parse_size("64k").unwrap(), 65536);
        assert!(parse_size("1.5MiB").is_err());
    }

    /// `wemp log --help` offers `--since 2d`.
    #[test]
    fn durations_take_days() {
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(48 * 3600));
        assert_eq!(parse_duration("1day").unwrap(), Duration::from_secs(24 * 3600));
    }

    #[test]
    fn retention_reads_a_human_duration_or_off() {
        let retention = |toml: &str| Config::from_toml_str(toml, "w.toml").map(|c| c.storage.retention);
        assert_eq!(retention("").unwrap(), Some(DEFAULT_RETENTION));
        assert_eq!(DEFAULT_RETENTION, Duration::from_secs(30 * 24 * 3600));
        assert_eq!(
            retention("[storage]\nretention = \"12h\"").unwrap(),
            Some(Duration::from_secs(12 * 3600))
        );
        assert_eq!(
            retention("[storage]\nretention = \"90d\"").unwrap(),
            Some(Duration::from_secs(90 * 86_400))
        );
        assert_eq!(retention("[storage]\nretention = \"off\"").unwrap(), None);
        assert_eq!(retention("[storage]\nretention = \"0\"").unwrap(), None);
        assert_eq!(retention("[storage]\nretention = 0").unwrap(), None);
        let err = retention("[storage]\nretention = \"forever\"").unwrap_err().to_string();
        assert!(err.contains("w.toml:2:") && err.contains("storage.retention"), "{err}");
    }

    #[test]
    fn toml_errors_name_file_line_and_field() {
        let p = problems("[server]\npath = \"/wechat\"\nlisten = 8080\n");
        assert_eq!((p[0].line, p[0].field.as_deref()), (Some(3), Some("server.listen")));
        assert!(p[0].to_string().starts_with("w.toml:3:"), "{}", p[0]);
        let p = problems("[server]\nlisen = \"x\"\n");
        assert_eq!(p[0].line, Some(2));
        assert!(p[0].message.to_string().contains("unknown field `lisen`"), "{}", p[0].message.to_string());
        let p = problems(
            "[[rules]]\nkeyword = \"a\"\nreply.text = \"x\"\n\n[[rules]]\nevent = \"CLICK\"\nreply.txt = \"x\"\n",
        );
        assert_eq!(p[0].line, Some(7));
        assert_eq!(p[0].field.as_deref(), Some("rules[1].reply.txt"));
        let p = problems("[server]\ndeadline = \"5 parsecs\"\n");
        assert_eq!((p[0].line, p[0].field.as_deref()), (Some(2), Some("server.deadline")));
    }

    #[test]
    fn validation_errors_name_line_and_field() {
        let src = "[server]\nlisten = \"nowhere\"\n\n[[accounts]]\ntoken = \"ab\"\nmode = \"safe\"\n\n\
                   [[rules]]\nkeyword = \"a\"\nreply.text = \"x\"\n\n[[rules]]\nregex = \"(\"\nreply.text = \"x\"\n";
        let p = problems(src);
        let find = |f: &str| {
            p.iter().find(|p| p.field.as_deref() == Some(f)).unwrap_or_else(|| panic!("{f}: {p:?}"))
        };
        assert_eq!(find("server.listen").line, Some(2));
        assert_eq!(find("accounts[0].token").line, Some(5));
        assert_eq!(find("accounts[0].aes_key").line, Some(4));
        assert!(find("accounts[0].appid").message.to_string().contains("safe mode needs the appid"));
        assert_eq!(find("rules[1].regex").line, Some(13));
        assert!(find("rules[1].regex").to_string().starts_with("w.toml:13: rules[1].regex: invalid regular"));
    }

    /// The server picks an account by the last segment of the path: `/wechat` and
    /// `/shop/wechat` cannot both be served, and the config check says so with the line
    /// (serve refused to start with "give one another with Account::with_path").
    #[test]
    fn two_account_paths_ending_in_one_segment_are_refused() {
        let src = "[[accounts]]\ntoken = \"Tok123\"\n\n\
                   [[accounts]]\nname = \"shop\"\ntoken = \"Tok456\"\npath = \"/shop/wechat\"\n";
        let p = problems(src);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!((p[0].line, p[0].field.as_deref()), (Some(7), Some("accounts[1].path")));
        assert!(p[0].message.to_string().contains("last segment \"wechat\""), "{}", p[0].message.to_string());
        let ok = "[[accounts]]\ntoken = \"Tok123\"\n\n\
                  [[accounts]]\ntoken = \"Tok456\"\npath = \"/wechat/shop\"\n";
        assert!(Config::from_toml_str(ok, "w.toml").is_ok());
    }

    #[test]
    fn two_accounts_with_one_appid_are_refused() {
        let src = "[[accounts]]\ntoken = \"Tok123\"\nappid = \"wx0123456789abcdef\"\n\n\
                   [[accounts]]\ntoken = \"Tok456\"\nappid = \"wx0123456789abcdef\"\npath = \"/wechat/v2\"\n";
        let p = problems(src);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].field.as_deref(), Some("accounts[1].appid"));
        assert!(
            p[0].message.to_string().contains("already the appid of accounts[0]"),
            "{}",
            p[0].message.to_string()
        );
    }

    #[test]
    fn a_second_account_without_a_token_is_refused_with_its_line() {
        let src = "[[accounts]]\ntoken = \"Tok123\"\n\n[[accounts]]\nname = \"shop\"\npath = \"/shop\"\n";
        let p = problems(src);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].field.as_deref(), Some("accounts[1].token"));
        assert!(p[0].line.is_some(), "{p:?}");
        // The first account's Token may be missing: it is generated.
        assert!(Config::from_toml_str("[[accounts]]\nname = \"demo\"\n", "w.toml").is_ok());
    }

    #[test]
    fn env_then_flags_override_the_file_and_errors_name_their_origin() {
        let mut cfg = Config::from_toml_str("[[accounts]]\ntoken = \"fromfile\"\n", "w.toml").unwrap();
        let env = |k: &str| match k {
            "WEMP_TOKEN" => Some("fromenv".to_owned()),
            "WEMP_LISTEN" => Some("0.0.0.0:9000".to_owned()),
            "WEMP_DEADLINE" => Some("2s".to_owned()),
            _ => None,
        };
        assert!(cfg.apply_env(env).is_empty());
        assert_eq!(cfg.accounts[0].token.as_ref().map(Secret::expose), Some("fromenv"));
        assert_eq!(cfg.server.deadline, Duration::from_secs(2));
        let args = ServeArgs {
            token: Some("fromflag".into()),
            mode: Some(Mode::Compatible),
            ..ServeArgs::default()
        };
        assert!(cfg.apply_flags(&args).is_empty());
        assert_eq!(cfg.accounts[0].token.as_ref().map(Secret::expose), Some("fromflag"));
        assert_eq!(cfg.server.listen, "0.0.0.0:9000");
        let err = cfg.validate_with(None, "w.toml").unwrap_err();
        let p = err.problems().iter().find(|p| p.field.as_deref() == Some("accounts[0].aes_key")).unwrap();
        assert_eq!(p.source, "w.toml");
        let mut bad = Config::default();
        let p = bad.apply_env(|k| (k == "WEMP_BODY_LIMIT").then(|| "lots".to_owned()));
        assert_eq!(
            p[0].to_string(),
            "WEMP_BODY_LIMIT: server.body_limit: \"lots\" is not a size (e.g. 65536, 64KiB, 1MiB)"
        );
        bad.apply_env(|k| (k == "WEMP_LISTEN").then(|| "bad".to_owned()));
        let err = bad.validate_with(Some(""), "w.toml").unwrap_err();
        assert!(err.to_string().starts_with("WEMP_LISTEN: server.listen:"), "{err}");
    }

    #[test]
    fn a_file_in_safe_mode_takes_its_key_from_the_environment_or_a_flag() {
        let dir = std::env::temp_dir().join(format!("wemp-safe-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("w.toml");
        std::fs::write(
            &file,
            "[[accounts]]\ntoken = \"Tok123\"\nappid = \"wx0123456789abcdef\"\nmode = \"safe\"\n",
        )
        .unwrap();
        const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
        let args = ServeArgs { config: Some(file.clone()), ..ServeArgs::default() };
        let (cfg, _) = Config::resolve(&args, |k| (k == "WEMP_AES_KEY").then(|| KEY.to_owned())).unwrap();
        assert_eq!(cfg.accounts[0].aes_key.as_ref().map(Secret::expose), Some(KEY));
        let flagged = ServeArgs { aes_key: Some(KEY.into()), ..args.clone() };
        assert!(Config::resolve(&flagged, |_| None).is_ok());
        // Without the key anywhere, the problem still names the file and the line.
        let err = Config::resolve(&args, |_| None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{}:1: accounts[0].aes_key: safe mode needs", file.display())),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resolve_uses_the_embedded_default_without_a_file() {
        let dir = std::env::temp_dir().join(format!("wemp-cfg-{}", rand::random::<u64>()));
        let args = ServeArgs { data_dir: Some(dir.clone()), ..ServeArgs::default() };
        let (cfg, file) = Config::resolve(&args, |_| None).unwrap();
        assert!(file.is_none());
        assert!(!cfg.rules.is_empty());
        assert_eq!(cfg.storage.data_dir, dir);
        let args = ServeArgs { config: Some(dir.join("missing.toml")), ..ServeArgs::default() };
        assert!(matches!(Config::resolve(&args, |_| None), Err(ConfigError::Io { .. })));
    }

    #[test]
    fn a_third_party_platform_without_accounts_gets_no_generated_token() {
        let dir = std::env::temp_dir().join(format!("wemp-token-{}", rand::random::<u64>()));
        let mut cfg = Config { component: Some(ComponentConfig::default()), ..Config::default() };
        cfg.storage.data_dir.clone_from(&dir);
        assert_eq!(ensure_token(&mut cfg, None, &mut rand::rng()).unwrap(), TokenSource::Configured);
        assert!(cfg.accounts.is_empty() && !dir.exists(), "nothing written");
        // Without the platform, a first start still gets its Token.
        cfg.component = None;
        assert!(matches!(ensure_token(&mut cfg, None, &mut rand::rng()), Ok(TokenSource::Generated { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_generated_token_is_saved_and_read_back() {
        let dir = std::env::temp_dir().join(format!("wemp-token-{}", rand::random::<u64>()));
        let mut rng = rand::rng();
        let args = ServeArgs { data_dir: Some(dir.clone()), ..ServeArgs::default() };
        let (mut cfg, _) = Config::resolve(&args, |_| None).unwrap();
        let source = ensure_token(&mut cfg, None, &mut rng).unwrap();
        let TokenSource::Generated { saved_to } = source else { panic!("not generated") };
        assert_eq!(saved_to, dir.join(WRITTEN_CONFIG));
        let token = cfg.accounts[0].token.as_ref().unwrap().expose().to_owned();
        assert!(token_is_valid(&token));
        // The next start reads the written config and keeps the token.
        let (mut again, file) = Config::resolve(&args, |_| None).unwrap();
        assert_eq!(file.as_deref(), Some(saved_to.as_path()));
        assert_eq!(again.accounts[0].token.as_ref().map(Secret::expose), Some(token.as_str()));
        assert_eq!(ensure_token(&mut again, None, &mut rng).unwrap(), TokenSource::Configured);
        assert!(!again.rules.is_empty());
        // A user's file without a token gets one inserted, comments kept.
        let user = dir.join("user.toml");
        std::fs::write(&user, "# my bot\n[server]\nlisten = \"127.0.0.1:9999\"\n").unwrap();
        let mut cfg = Config::load(&user).unwrap();
        ensure_token(&mut cfg, Some(&user), &mut rng).unwrap();
        let text = std::fs::read_to_string(&user).unwrap();
        assert!(text.starts_with("# my bot\n[[accounts]]\ntoken = \""), "{text}");
        let reread = Config::load(&user).unwrap();
        assert_eq!(reread.accounts[0].token, cfg.accounts[0].token);
        assert_eq!(reread.server.listen, "127.0.0.1:9999");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn token_insertion_edits_the_document_and_keeps_comments() {
        let src = "# my bot\n[server]  # the server\nlisten = \"127.0.0.1:9999\"\n\n# replies\n[[rules]]\ndefault = true\nreply.none = true\n";
        let out = insert_token(src, "T0k3n").unwrap();
        assert!(
            out.starts_with("# my bot\n[[accounts]]\ntoken = \"T0k3n\"  # generated by wemp serve\n"),
            "{out}"
        );
        assert!(
            out.contains("[server]  # the server\nlisten = \"127.0.0.1:9999\"\n\n# replies\n[[rules]]"),
            "{out}"
        );
        let cfg = Config::from_toml_str(&out, "w.toml").unwrap();
        assert_eq!(cfg.accounts[0].token.as_ref().map(Secret::expose), Some("T0k3n"));
        // A token-like text elsewhere (a rule's reply) is not mistaken for the table.
        let src = "[[rules]]\nkeyword = \"[[accounts]]\"\nreply.text = \"\"\"\n[[accounts]]\n\"\"\"\n";
        let out = insert_token(src, "T0k3n").unwrap();
        let cfg = Config::from_toml_str(&out, "w.toml").unwrap();
        assert_eq!(cfg.accounts[0].token.as_ref().map(Secret::expose), Some("T0k3n"));
        assert_eq!(cfg.rules[0].reply.text.as_deref(), Some("[[accounts]]\n"));
        // Inline accounts.
        let out = insert_token("accounts = [{ appid = \"wx0123456789abcdef\" }]\n", "T0k3n").unwrap();
        assert_eq!(
            Config::from_toml_str(&out, "w.toml").unwrap().accounts[0].token.as_ref().map(Secret::expose),
            Some("T0k3n")
        );
        assert!(matches!(insert_token("accounts = 3\n", "T0k3n"), Err(InsertTokenError::NotTables)));
    }

    #[test]
    fn token_goes_into_an_existing_accounts_table() {
        let src = "[server]\n[[accounts]]\nappid = \"wx0123456789abcdef\"\n[[rules]]\ndefault = true\nreply.none = true\n";
        let out = insert_token(src, "T0k3n").unwrap();
        let cfg = Config::from_toml_str(&out, "w.toml").unwrap();
        assert_eq!(cfg.accounts[0].token.as_ref().map(Secret::expose), Some("T0k3n"));
        assert_eq!(cfg.accounts[0].appid.as_deref(), Some("wx0123456789abcdef"));
        assert_eq!(cfg.rules.len(), 1);
    }

    #[test]
    fn menu_and_console_errors_name_line_and_field() {
        let src = "[console]\npath = \"/wechat\"\ntoken = \"short\"\n\n\
                   [[menu.button]]\ntype = \"click\"\nname = \"News\"\nkey = \"NEWS\"\n\n\
                   [[menu.button]]\nname = \"More\"\n\
                   [[menu.button.sub_button]]\ntype = \"click\"\nname = \"Music\"\nkey = \"MUSIC\"\n\
                   [[menu.button.sub_button]]\ntype = \"view\"\nname = \"Site\"\nurl = \"ftp://x\"\n";
        let p = problems(src);
        let find = |f: &str| {
            p.iter().find(|p| p.field.as_deref() == Some(f)).unwrap_or_else(|| panic!("{f}: {p:?}"))
        };
        assert_eq!(find("menu.button[1].sub_button[1].url").line, Some(19));
        assert!(
            find("menu.button[1].sub_button[1].url").to_string().starts_with(
                "w.toml:19: menu.button[1].sub_button[1].url: \"ftp://x\" is not an http(s) URL"
            ),
            "{p:?}"
        );
        assert_eq!(find("console.path").line, Some(2));
        assert!(find("console.path").message.to_string().contains("taken by the callback path"));
        assert_eq!(find("console.token").line, Some(3));
        // A button without a key: the button's header line.
        let p = problems("[[menu.button]]\nname = \"News\"\n");
        assert_eq!((p[0].line, p[0].field.as_deref()), (Some(1), Some("menu.button[0].type")));
        // A type error inside the menu is located by the TOML parser.
        let p = problems("[[menu.button]]\ntype = \"tap\"\nname = \"x\"\n");
        assert_eq!((p[0].line, p[0].field.as_deref()), (Some(2), Some("menu.button[0].type")));
        let p = problems("[console]\npath = \"/\"\n");
        assert!(p[0].message.to_string().contains("must start with /"), "{p:?}");
        let cfg = Config::from_toml_str("[console]\npath = \"/admin/console\"\nenabled = false\n", "w.toml")
            .unwrap();
        assert_eq!(cfg.console.path, "/admin/console");
        assert!(!cfg.console.enabled);
    }

    #[test]
    fn console_settings_from_the_environment() {
        let mut cfg = Config::default();
        let env = |k: &str| match k {
            "WEMP_CONSOLE" => Some("off".to_owned()),
            "WEMP_CONSOLE_PATH" => Some("/ops".to_owned()),
            "WEMP_CONSOLE_TOKEN" => Some("admin-token-1".to_owned()),
            _ => None,
        };
        assert!(cfg.apply_env(env).is_empty());
        assert!(!cfg.console.enabled);
        assert_eq!(cfg.console.path, "/ops");
        assert_eq!(cfg.console.token.as_ref().map(Secret::expose), Some("admin-token-1"));
        assert!(!format!("{cfg:?}").contains("admin-token-1"), "the admin token stays out of Debug");
    }

    #[test]
    fn a_refused_database_or_redis_url_does_not_show_its_password() {
        let p = problems(
            "[storage]\ndatabase = \"mysql://wemp:s3cretDb@db.local/wemp\"\n\
             redis = \"http://:s3cretRedis@cache.local:6379\"\n",
        );
        let text: Vec<String> = p.iter().map(ToString::to_string).collect();
        assert_eq!(p.len(), 2, "{text:?}");
        assert!(text.iter().all(|t| !t.contains("s3cret")), "{text:?}");
        assert!(text[0].contains("mysql://wemp:***@db.local/wemp"), "{text:?}");
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let a = AccountConfig {
            appsecret: Some("supersecret".into()),
            token: Some("tok".into()),
            ..AccountConfig::default()
        };
        let dbg = format!("{a:?}");
        assert!(!dbg.contains("supersecret") && !dbg.contains("tok\""), "{dbg}");
    }
}
