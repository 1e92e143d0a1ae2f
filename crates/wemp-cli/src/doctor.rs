//! `wemp doctor`: checks a setup the way `serve` will use it, and says what to do about
//! each problem.
//!
//! It reads the same file, `WEMP_*` variables and flags as `serve` and checks: the
//! configuration itself (every problem with its file and line), each account's Token,
//! appid and EncodingAESKey, the public URL's port, the message-log database and Redis,
//! and — for accounts with an AppSecret — fetches an access token and calls the APIs the
//! server needs, translating WeChat's error codes into instructions.

use std::time::Duration;

use serde::Serialize;
use wemp_client::ErrCode;

use crate::config::{Config, ServeArgs, token_is_valid};
use crate::serve::{account_id, api_clients};
use crate::sim::check::Status;
use crate::storage::{self, LogLocation};

/// One finding.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// What was checked.
    pub name: String,
    /// The verdict.
    pub status: Status,
    /// What was found, and what to do about it.
    pub details: Vec<String>,
}

/// Everything `doctor` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// The findings in order.
    pub findings: Vec<Finding>,
}

impl Report {
    fn push(&mut self, name: impl Into<String>, status: Status, details: Vec<String>) {
        self.findings.push(Finding { name: name.into(), status, details });
    }

    /// Whether nothing failed.
    pub fn passed(&self) -> bool {
        self.findings.iter().all(|f| f.status != Status::Fail)
    }

    /// How many findings have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.findings.iter().filter(|f| f.status == status).count()
    }
}

/// What to do about a platform error code met while fetching a token or calling an API.
pub fn instruction(code: ErrCode) -> String {
    match code.0 {
        40164 => "WeChat refused this machine's IP address (40164): add this server's public outbound IP \
                  to the IP whitelist (mp.weixin.qq.com → 设置与开发 → 基本配置 → IP白名单), then run \
                  `wemp doctor` again"
            .to_owned(),
        40125 => "the AppSecret is wrong (40125): copy the current AppSecret from 设置与开发 → 基本配置 \
                  (reset it if nobody knows it) into the config file or WEMP_APPSECRET"
            .to_owned(),
        40013 => "the appid is wrong (40013): copy the AppID from 设置与开发 → 基本配置".to_owned(),
        48001 => "this account lacks the permission for this API (48001): check 设置与开发 → 接口权限; \
                  customer-service messages and many others need a verified (认证) service account"
            .to_owned(),
        -1 => "WeChat is busy (-1): try again in a minute".to_owned(),
        45009 => "the daily quota for this API is used up (45009): wait for the reset at midnight \
                  (Beijing time) or clear it in the console"
            .to_owned(),
        _ => code.hint().map_or_else(
            || format!("WeChat answered errcode {code}; look it up in the 全局返回码 page"),
            |h| format!("errcode {code}: {h}"),
        ),
    }
}

fn describe_error(e: &wemp_client::Error) -> String {
    match e.code() {
        Some(code) => instruction(code),
        None => format!("{e} (is the API reachable from here? --api-base points elsewhere)"),
    }
}

/// Runs every check. `api_base` replaces `https://api.weixin.qq.com`; `timeout` bounds
/// each network check.
pub async fn run(
    args: &ServeArgs,
    env: impl Fn(&str) -> Option<String>,
    api_base: Option<&str>,
    timeout: Duration,
) -> Report {
    let mut report = Report::default();
    let (cfg, file) = match Config::resolve(args, env) {
        Ok(r) => r,
        Err(e) => {
            let details = match e.problems() {
                [] => vec![e.to_string()],
                problems => problems.iter().map(ToString::to_string).collect(),
            };
            report.push("configuration", Status::Fail, details);
            return report;
        }
    };
    let source = file.map_or_else(|| "built-in default".to_owned(), |f| f.display().to_string());
    report.push("configuration", Status::Pass, vec![format!("{source}: valid")]);
    check_accounts(&cfg, &mut report);
    check_public_url(&cfg, &mut report);
    check_database(&cfg, &mut report, timeout).await;
    check_redis(&cfg, &mut report, timeout).await;
    check_api(&cfg, &mut report, api_base, timeout).await;
    report
}

fn check_accounts(cfg: &Config, report: &mut Report) {
    if cfg.accounts.is_empty() {
        report.push(
            "token",
            Status::Warn,
            vec!["no account configured: `wemp serve` will generate a Token and save it".into()],
        );
        return;
    }
    for (i, a) in cfg.accounts.iter().enumerate() {
        let label = |what: &str| {
            if cfg.accounts.len() == 1 { what.to_owned() } else { format!("accounts[{i}] {what}") }
        };
        match &a.token {
            Some(t) if token_is_valid(t) => {
                report.push(
                    label("token"),
                    Status::Pass,
                    vec![format!("{} characters, letters and digits", t.len())],
                );
            }
            Some(t) => report.push(
                label("token"),
                Status::Fail,
                vec![format!(
                    "{} characters; the WeChat console accepts 3–32 letters and digits only",
                    t.chars().count()
                )],
            ),
            None => report.push(
                label("token"),
                Status::Warn,
                vec!["none configured: `wemp serve` will generate one and save it".into()],
            ),
        }
        match &a.appid {
            Some(id) => report.push(label("appid"), Status::Pass, vec![format!("{id} looks like an appid")]),
            None if a.mode.is_encrypted() || a.appsecret.is_some() => report.push(
                label("appid"),
                Status::Fail,
                vec!["missing: encrypted modes and the API need the AppID (设置与开发 → 基本配置)".into()],
            ),
            None => report.push(
                label("appid"),
                Status::Skip,
                vec!["not set (plain mode works without it; encrypted modes and the API need it)".into()],
            ),
        }
        match (&a.aes_key, a.mode.is_encrypted()) {
            (Some(key), _) => match wemp_proto::crypto::decode_key(key) {
                Ok(_) => report.push(
                    label("EncodingAESKey"),
                    Status::Pass,
                    vec![format!("43 characters, decodes to a 32-byte AES key ({} mode)", a.mode)],
                ),
                Err(e) => report.push(label("EncodingAESKey"), Status::Fail, vec![format!("{e}")]),
            },
            (None, true) => report.push(
                label("EncodingAESKey"),
                Status::Fail,
                vec![format!("{} mode needs the EncodingAESKey from the console", a.mode)],
            ),
            (None, false) => {
                report.push(label("EncodingAESKey"), Status::Skip, vec!["not needed in plain mode".into()]);
            }
        }
    }
}

fn check_public_url(cfg: &Config, report: &mut Report) {
    let Some(url) = &cfg.console.public_url else {
        let listen = &cfg.server.listen;
        let loopback =
            listen.starts_with("127.") || listen.starts_with("[::1]") || listen.starts_with("localhost");
        if loopback {
            report.push(
                "public URL",
                Status::Warn,
                vec![format!(
                    "listening on {listen} (this machine only) and no console.public_url: WeChat needs a public \
                     http(s) URL on port 80 or 443 (reverse proxy: docs/deploy.md)"
                )],
            );
        }
        return;
    };
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        report.push("public URL", Status::Fail, vec![format!("{url:?} must start with http:// or https://")]);
        return;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let port = authority.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok());
    match port {
        Some(p) if p != 80 && p != 443 => report.push(
            "public URL",
            Status::Fail,
            vec![format!("{url}: WeChat calls only ports 80 and 443, not {p}")],
        ),
        _ => report.push("public URL", Status::Pass, vec![url.clone()]),
    }
}

async fn check_database(cfg: &Config, report: &mut Report, timeout: Duration) {
    let location = LogLocation::of(&cfg.storage);
    if let Some(path) = location.sqlite_path()
        && !path.exists()
    {
        // Do not create a database while diagnosing: check the directory can hold one.
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        let existing = dir.ancestors().find(|d| d.exists()).unwrap_or(std::path::Path::new("."));
        let writable = std::fs::metadata(existing).map(|m| !m.permissions().readonly()).unwrap_or(false);
        let (status, detail) = if writable {
            (Status::Pass, format!("{}: not created yet; `wemp serve` will create it", location.describe()))
        } else {
            (
                Status::Fail,
                format!(
                    "{}: cannot be created ({} is not writable)",
                    location.describe(),
                    existing.display()
                ),
            )
        };
        report.push("message log database", status, vec![detail]);
        return;
    }
    match tokio::time::timeout(timeout, location.open()).await {
        Ok(Ok(_)) => report.push(
            "message log database",
            Status::Pass,
            vec![format!("{}: reachable", location.describe())],
        ),
        Ok(Err(e)) => {
            report.push("message log database", Status::Fail, vec![format!("{}: {e}", location.describe())])
        }
        Err(_) => report.push(
            "message log database",
            Status::Fail,
            vec![format!("{}: no answer within {} s", location.describe(), timeout.as_secs())],
        ),
    }
}

async fn check_redis(cfg: &Config, report: &mut Report, timeout: Duration) {
    let Some(url) = &cfg.storage.redis else {
        report.push("redis", Status::Skip, vec!["not configured: dedup stays in this process".into()]);
        return;
    };
    let shown = storage::redact_url(url);
    match tokio::time::timeout(timeout, wemp_store::redis::connect(url)).await {
        Ok(Ok(_)) => report.push("redis", Status::Pass, vec![format!("{shown}: reachable")]),
        Ok(Err(e)) => report.push(
            "redis",
            Status::Fail,
            vec![
                format!("{shown}: {e}"),
                "`wemp serve` still starts, but dedup stays in each process until Redis answers".into(),
            ],
        ),
        Err(_) => report.push(
            "redis",
            Status::Fail,
            vec![format!("{shown}: no answer within {} s", timeout.as_secs())],
        ),
    }
}

async fn check_api(cfg: &Config, report: &mut Report, api_base: Option<&str>, timeout: Duration) {
    let with_secret: Vec<usize> =
        (0..cfg.accounts.len()).filter(|&i| cfg.accounts[i].appsecret.is_some()).collect();
    if with_secret.is_empty() {
        report.push(
            "API access",
            Status::Skip,
            vec!["no AppSecret (config file or WEMP_APPSECRET): late replies will only be logged".into()],
        );
        return;
    }
    let clients = match api_clients(cfg, api_base, None) {
        Ok(c) => c,
        Err(e) => {
            report.push("API access", Status::Fail, vec![e.to_string()]);
            return;
        }
    };
    let many = clients.len() > 1;
    for (client, i) in clients.iter().zip(with_secret) {
        let name = |what: &str| if many { format!("{} {what}", account_id(cfg, i)) } else { what.to_owned() };
        match tokio::time::timeout(timeout, client.access_token()).await {
            Ok(Ok(_)) => {
                report.push(name("access token"), Status::Pass, vec!["fetched with the AppSecret".into()])
            }
            Ok(Err(e)) => {
                report.push(name("access token"), Status::Fail, vec![describe_error(&e)]);
                continue;
            }
            Err(_) => {
                report.push(
                    name("access token"),
                    Status::Fail,
                    vec![format!("no answer within {} s from the API", timeout.as_secs())],
                );
                continue;
            }
        }
        match tokio::time::timeout(timeout, client.callback_ips()).await {
            Ok(Ok(ips)) => report.push(
                name("API call"),
                Status::Pass,
                vec![format!("getcallbackip answered ({} WeChat callback ranges)", ips.len())],
            ),
            Ok(Err(e)) => report.push(name("API call"), Status::Fail, vec![describe_error(&e)]),
            Err(_) => {
                report.push(name("API call"), Status::Fail, vec!["no answer from getcallbackip".into()])
            }
        }
        // Late replies go out as customer-service messages: check that permission.
        match tokio::time::timeout(timeout, client.kf_accounts()).await {
            Ok(Ok(_)) => report.push(
                name("customer-service API"),
                Status::Pass,
                vec!["allowed: replies that miss the 5 s deadline can be sent later".into()],
            ),
            Ok(Err(e)) => report.push(
                name("customer-service API"),
                Status::Fail,
                vec![
                    describe_error(&e),
                    "until fixed, replies that miss the deadline are only logged".into(),
                ],
            ),
            Err(_) => report.push(name("customer-service API"), Status::Fail, vec!["no answer".into()]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_name_the_fix() {
        assert!(instruction(ErrCode(40164)).contains("whitelist"));
        assert!(instruction(ErrCode(40125)).contains("AppSecret is wrong"));
        assert!(instruction(ErrCode(48001)).contains("lacks the permission"));
        assert!(instruction(ErrCode(99999)).contains("99999"));
    }
}
