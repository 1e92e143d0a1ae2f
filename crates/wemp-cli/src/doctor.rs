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
use wemp_store::SchemaState;

use crate::config::{AccountConfig, Config, ServeArgs, token_is_valid};
use crate::i18n::{Lang, Msg};
use crate::serve::{account_id, api_clients};
use crate::sim::check::Status;
use crate::storage::{self, LogLocation};
use wemp_proto::admission::Kind;

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
pub struct Diagnosis {
    /// The findings in order.
    pub findings: Vec<Finding>,
}

impl Diagnosis {
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

/// What to do about a platform error code met while fetching a token or calling an API, in
/// `lang`.
pub fn instruction(code: ErrCode, lang: Lang) -> String {
    let msg = match code.0 {
        40164 => Msg::Err40164,
        40125 => Msg::Err40125,
        40013 => Msg::Err40013,
        48001 => Msg::Err48001,
        -1 => Msg::ErrBusy,
        45009 => Msg::Err45009,
        _ => {
            return code.hint().map_or_else(
                || Msg::ErrOther.fill(lang, &[("code", &code)]),
                |h| format!("errcode {code}: {h}"),
            );
        }
    };
    msg.get(lang).to_owned()
}

fn describe_error(e: &wemp_client::Error, lang: Lang) -> String {
    match e.code() {
        Some(code) => instruction(code, lang),
        None => Msg::ApiUnreachable.fill(lang, &[("error", e)]),
    }
}

/// Runs every check, wording the findings in `lang`. `api_base` replaces
/// `https://api.weixin.qq.com`; `timeout` bounds each network check. Nothing is written:
/// no SQLite file, no PostgreSQL schema, no Redis key is created.
pub async fn run(
    args: &ServeArgs,
    env: impl Fn(&str) -> Option<String>,
    api_base: Option<&str>,
    timeout: Duration,
    lang: Lang,
) -> Diagnosis {
    let mut report = Diagnosis::default();
    let (cfg, file) = match Config::resolve(args, env) {
        Ok(r) => r,
        Err(e) => {
            let details = match e.problems() {
                [] => vec![e.text(lang)],
                problems => problems.iter().map(|p| p.text(lang)).collect(),
            };
            report.push(Msg::CheckConfig.get(lang), Status::Fail, details);
            return report;
        }
    };
    let source = file.map_or_else(|| Msg::BuiltInDefault.get(lang).to_owned(), |f| f.display().to_string());
    report.push(
        Msg::CheckConfig.get(lang),
        Status::Pass,
        vec![Msg::ConfigValid.fill(lang, &[("source", &source)])],
    );
    check_accounts(&cfg, &mut report, lang);
    check_public_url(&cfg, &mut report, lang);
    check_database(&cfg, &mut report, timeout, lang).await;
    check_redis(&cfg, &mut report, timeout, lang).await;
    check_api(&cfg, &mut report, api_base, timeout, lang).await;
    check_component(&cfg, &mut report, api_base, timeout, lang).await;
    report
}

/// The third-party platform: how old the stored ticket is (warn after 20 minutes, fail
/// after 12 hours), and whether the component token can be fetched with it.
async fn check_component(
    cfg: &Config,
    report: &mut Diagnosis,
    api_base: Option<&str>,
    timeout: Duration,
    lang: Lang,
) {
    use crate::component::{TICKET_EXPIRED_MS, TICKET_LATE_MS, age_text};
    if cfg.component.is_none() {
        return;
    }
    let name = Msg::CheckTicket.get(lang);
    // A check must not write: where `wemp serve` has not created the database yet, no ticket
    // can be stored in it, and opening it would create it.
    if cfg.storage.redis.is_none() && !database_exists(&cfg.storage, timeout).await {
        return report.push(name, Status::Fail, vec![Msg::TicketNone.get(lang).to_owned()]);
    }
    let tokens = crate::storage::token_store(&cfg.storage).await.ok().flatten();
    let component = match tokio::time::timeout(timeout, crate::serve::component(cfg, api_base, tokens)).await
    {
        Ok(Ok(Some(c))) => c,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => return report.push(name, Status::Fail, vec![e]),
        Err(_) => {
            return report.push(
                name,
                Status::Fail,
                vec![format!("no answer within {} s", timeout.as_secs())],
            );
        }
    };
    let ticket = match tokio::time::timeout(timeout, component.client().state().ticket()).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return report.push(name, Status::Fail, vec![e.to_string()]),
        Err(_) => {
            return report.push(
                name,
                Status::Fail,
                vec![format!("no answer within {} s", timeout.as_secs())],
            );
        }
    };
    let Some(ticket) = ticket else {
        return report.push(name, Status::Fail, vec![Msg::TicketNone.get(lang).to_owned()]);
    };
    let age = crate::logview::now_ms().saturating_sub(ticket.received_at_ms);
    let (status, msg) = match age {
        a if a > TICKET_EXPIRED_MS => (Status::Fail, Msg::TicketExpired),
        a if a > TICKET_LATE_MS => (Status::Warn, Msg::TicketLate),
        _ => (Status::Pass, Msg::TicketFresh),
    };
    report.push(name, status, vec![msg.fill(lang, &[("age", &age_text(age))])]);
    let name = Msg::CheckComponentToken.get(lang);
    match tokio::time::timeout(timeout, component.client().component_token()).await {
        Ok(Ok(_)) => report.push(name, Status::Pass, vec![Msg::ComponentTokenFetched.get(lang).to_owned()]),
        Ok(Err(e)) => report.push(name, Status::Fail, vec![describe_error(&e, lang)]),
        Err(_) => {
            report.push(
                name,
                Status::Fail,
                vec![Msg::ApiNoAnswer.fill(lang, &[("secs", &timeout.as_secs())])],
            );
        }
    }
}

/// Whether the log's database (where the component state lives without Redis) exists, found
/// without creating it: the SQLite file, or the PostgreSQL schema.
async fn database_exists(storage: &crate::config::StorageConfig, timeout: Duration) -> bool {
    match LogLocation::of(storage) {
        LogLocation::Sqlite(path) => path.exists(),
        LogLocation::Postgres { url, schema } => matches!(
            tokio::time::timeout(timeout, wemp_store::postgres::probe(&url, &schema)).await,
            Ok(Ok(SchemaState::Version(_) | SchemaState::Newer(_)))
        ),
    }
}

fn check_accounts(cfg: &Config, report: &mut Diagnosis, lang: Lang) {
    if cfg.accounts.is_empty() {
        report.push(Msg::CheckToken.get(lang), Status::Warn, vec![Msg::NoAccount.get(lang).to_owned()]);
        return;
    }
    for (i, a) in cfg.accounts.iter().enumerate() {
        let label = |what: Msg| {
            let what = what.get(lang);
            if cfg.accounts.len() == 1 {
                what.to_owned()
            } else {
                Msg::OfAccount.fill(lang, &[("i", &i), ("what", &what)])
            }
        };
        match a.token.as_ref().map(wemp_proto::Secret::expose) {
            Some(t) if token_is_valid(t) => {
                report.push(
                    label(Msg::CheckToken),
                    Status::Pass,
                    vec![Msg::TokenOk.fill(lang, &[("n", &t.len())])],
                );
            }
            Some(t) => report.push(
                label(Msg::CheckToken),
                Status::Fail,
                vec![Msg::TokenBad.fill(lang, &[("n", &t.chars().count())])],
            ),
            None => {
                report.push(label(Msg::CheckToken), Status::Warn, vec![Msg::TokenNone.get(lang).to_owned()])
            }
        }
        if a.kind == Kind::Wecom {
            check_wecom_ids(a, report, &label, lang);
        } else {
            check_appid(a, report, &label, lang);
        }
        let mode = mode_name(a.effective_mode(), lang);
        match (&a.aes_key, a.effective_mode().is_encrypted()) {
            (Some(key), _) => match wemp_proto::crypto::decode_key(key.expose()) {
                Ok(_) => report.push(
                    label(Msg::CheckAesKey),
                    Status::Pass,
                    vec![Msg::AesKeyOk.fill(lang, &[("mode", &mode)])],
                ),
                Err(e) => report.push(label(Msg::CheckAesKey), Status::Fail, vec![format!("{e}")]),
            },
            (None, true) if a.kind == Kind::Wecom => {
                report.push(
                    label(Msg::CheckAesKey),
                    Status::Fail,
                    vec![Msg::AesKeyWecom.get(lang).to_owned()],
                );
            }
            (None, true) => report.push(
                label(Msg::CheckAesKey),
                Status::Fail,
                vec![Msg::AesKeyMissing.fill(lang, &[("mode", &mode)])],
            ),
            (None, false) => {
                report.push(
                    label(Msg::CheckAesKey),
                    Status::Skip,
                    vec![Msg::AesKeySkip.get(lang).to_owned()],
                );
            }
        }
    }
}

/// Whether `id` has the shape the platform issues: `prefix` and 16 hexadecimal digits
/// (an appid `wx…`; a corpid `ww…`, or `wx…` for corps created before WeCom's rename).
fn issued_id(id: &str, prefixes: &[&str]) -> bool {
    id.len() == 18
        && prefixes.iter().any(|p| id.starts_with(p))
        && id[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// A WeCom app's corpid (`ww` or `wx` and 16 hex digits; a suite id for a service provider's
/// suite callback has another shape, so that is a warning) and AgentID (a number).
fn check_wecom_ids(a: &AccountConfig, report: &mut Diagnosis, label: &impl Fn(Msg) -> String, lang: Lang) {
    match &a.corpid {
        Some(id) if issued_id(id, &["ww", "wx"]) => {
            report.push(
                label(Msg::CheckCorpid),
                Status::Pass,
                vec![Msg::CorpidOk.fill(lang, &[("corpid", id)])],
            );
        }
        Some(id) => {
            report.push(
                label(Msg::CheckCorpid),
                Status::Warn,
                vec![Msg::CorpidOdd.fill(lang, &[("corpid", id)])],
            );
        }
        None => {
            report.push(label(Msg::CheckCorpid), Status::Fail, vec![Msg::CorpidMissing.get(lang).to_owned()])
        }
    }
    match &a.agentid {
        Some(g) if !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()) => {
            report.push(
                label(Msg::CheckAgentid),
                Status::Pass,
                vec![Msg::AgentidOk.fill(lang, &[("agentid", g)])],
            );
        }
        Some(g) => {
            report.push(
                label(Msg::CheckAgentid),
                Status::Fail,
                vec![Msg::AgentidBad.fill(lang, &[("agentid", g)])],
            );
        }
        None => report.push(
            label(Msg::CheckAgentid),
            Status::Warn,
            vec![Msg::AgentidMissing.get(lang).to_owned()],
        ),
    }
}

/// An Official Account's or Mini Program's appid.
fn check_appid(a: &AccountConfig, report: &mut Diagnosis, label: &impl Fn(Msg) -> String, lang: Lang) {
    match &a.appid {
        Some(id) if a.kind == Kind::Miniprogram && !issued_id(id, &["wx"]) => {
            report.push(
                label(Msg::CheckAppid),
                Status::Warn,
                vec![Msg::AppidOdd.fill(lang, &[("appid", id)])],
            );
        }
        Some(id) => {
            report.push(
                label(Msg::CheckAppid),
                Status::Pass,
                vec![Msg::AppidOk.fill(lang, &[("appid", id)])],
            );
        }
        None if a.mode.is_encrypted() || a.appsecret.is_some() => {
            report.push(label(Msg::CheckAppid), Status::Fail, vec![Msg::AppidMissing.get(lang).to_owned()]);
        }
        None => report.push(label(Msg::CheckAppid), Status::Skip, vec![Msg::AppidSkip.get(lang).to_owned()]),
    }
}

/// `plain` in English, 明文模式 in Chinese.
fn mode_name(mode: wemp_proto::Mode, lang: Lang) -> String {
    match lang {
        Lang::Zh => match mode {
            wemp_proto::Mode::Plain => Msg::ModePlain,
            wemp_proto::Mode::Compatible => Msg::ModeCompatible,
            wemp_proto::Mode::Safe => Msg::ModeSafe,
        }
        .get(lang)
        .to_owned(),
        _ => mode.to_string(),
    }
}

/// Why WeChat cannot call `host` (an IP literal or `localhost`), if it cannot.
fn unreachable_host(host: &str) -> Option<Msg> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") || bare.to_ascii_lowercase().ends_with(".localhost") {
        return Some(Msg::HostLoopback);
    }
    let ip: std::net::IpAddr = bare.parse().ok()?;
    if ip.is_loopback() {
        return Some(Msg::HostLoopback);
    }
    if ip.is_unspecified() {
        return Some(Msg::HostUnspecified);
    }
    let private = match ip {
        std::net::IpAddr::V4(v4) => {
            v4.is_private() || v4.is_link_local() || v4.octets()[0] == 100 && (v4.octets()[1] & 0xC0) == 64
        }
        std::net::IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xfe00) == 0xfc00 || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    };
    private.then_some(Msg::HostPrivate)
}

fn check_public_url(cfg: &Config, report: &mut Diagnosis, lang: Lang) {
    let name = Msg::CheckPublicUrl.get(lang);
    let Some(url) = &cfg.console.public_url else {
        let listen = &cfg.server.listen;
        let loopback =
            listen.starts_with("127.") || listen.starts_with("[::1]") || listen.starts_with("localhost");
        if loopback {
            report.push(name, Status::Warn, vec![Msg::PublicUrlLoopback.fill(lang, &[("listen", listen)])]);
        }
        return;
    };
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        report.push(name, Status::Fail, vec![Msg::PublicUrlScheme.fill(lang, &[("url", url)])]);
        return;
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.parse::<u16>().ok()),
        _ => (host_port, None),
    };
    if let Some(p) = port
        && p != 80
        && p != 443
    {
        report.push(name, Status::Fail, vec![Msg::PublicUrlPort.fill(lang, &[("url", url), ("port", &p)])]);
        return;
    }
    if let Some(what) = unreachable_host(host) {
        report.push(
            name,
            Status::Fail,
            vec![
                Msg::PublicUrlPrivate.fill(lang, &[("url", url), ("host", &host), ("what", &what.get(lang))]),
            ],
        );
        return;
    }
    let public = if path.is_empty() { "/" } else { path };
    let callback = cfg.account_path(0);
    if public.trim_end_matches('/') != callback.trim_end_matches('/') {
        report.push(
            name,
            Status::Warn,
            vec![url.clone(), Msg::PublicUrlPath.fill(lang, &[("public", &public), ("callback", &callback)])],
        );
        return;
    }
    report.push(name, Status::Pass, vec![url.clone()]);
}

/// The report line of a read-only schema probe (SQLite or PostgreSQL).
fn schema_report(
    probed: Result<Result<SchemaState, wemp_store::StoreError>, tokio::time::error::Elapsed>,
    db: &str,
    name: &'static str,
    report: &mut Diagnosis,
    timeout: Duration,
    lang: Lang,
) {
    match probed {
        Ok(Ok(SchemaState::Missing)) => {
            report.push(name, Status::Pass, vec![Msg::DbSchemaNotYet.fill(lang, &[("db", &db)])]);
        }
        Ok(Ok(SchemaState::Newer(v))) => {
            report.push(name, Status::Fail, vec![Msg::DbNewer.fill(lang, &[("db", &db), ("version", &v)])]);
        }
        Ok(Ok(_)) => report.push(name, Status::Pass, vec![Msg::DbReachable.fill(lang, &[("db", &db)])]),
        Ok(Err(e)) => report.push(name, Status::Fail, vec![format!("{db}: {e}")]),
        Err(_) => report.push(
            name,
            Status::Fail,
            vec![Msg::NoAnswerWithin.fill(lang, &[("what", &db), ("secs", &timeout.as_secs())])],
        ),
    }
}

async fn check_database(cfg: &Config, report: &mut Diagnosis, timeout: Duration, lang: Lang) {
    let name = Msg::CheckDatabase.get(lang);
    let location = LogLocation::of(&cfg.storage);
    let db = location.describe();
    match &location {
        LogLocation::Sqlite(path) if !path.exists() => {
            // Do not create a database while diagnosing: check the directory can hold one.
            let dir =
                path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
            let existing = dir.ancestors().find(|d| d.exists()).unwrap_or(std::path::Path::new("."));
            let writable = std::fs::metadata(existing).map(|m| !m.permissions().readonly()).unwrap_or(false);
            let (status, detail) = if writable {
                (Status::Pass, Msg::DbNotYet.fill(lang, &[("db", &db)]))
            } else {
                (Status::Fail, Msg::DbNotWritable.fill(lang, &[("db", &db), ("dir", &existing.display())]))
            };
            report.push(name, status, vec![detail]);
        }
        LogLocation::Sqlite(path) => {
            // Read only: a check must not migrate the file or switch its journal mode.
            let probe = wemp_store::sqlite::probe(path);
            schema_report(tokio::time::timeout(timeout, probe).await, &db, name, report, timeout, lang);
        }
        LogLocation::Postgres { url, schema } => {
            // Read only: a check must not create the schema or run migrations.
            let probe = wemp_store::postgres::probe(url, schema);
            schema_report(tokio::time::timeout(timeout, probe).await, &db, name, report, timeout, lang);
        }
    }
}

async fn check_redis(cfg: &Config, report: &mut Diagnosis, timeout: Duration, lang: Lang) {
    let name = Msg::CheckRedis.get(lang);
    let Some(url) = &cfg.storage.redis else {
        report.push(name, Status::Skip, vec![Msg::RedisSkip.get(lang).to_owned()]);
        return;
    };
    let shown = storage::redact_url(url);
    match tokio::time::timeout(timeout, wemp_store::redis::connect(url)).await {
        Ok(Ok(mut conn)) => {
            let mut status = Status::Pass;
            let mut details = vec![Msg::DbReachable.fill(lang, &[("db", &shown)])];
            // What Redis says of itself (`INFO`, which managed Redis allows where it refuses
            // `CONFIG`); nothing more is said when it does not answer.
            if let Ok(Ok(facts)) =
                tokio::time::timeout(timeout, wemp_store::redis::server_info(&mut conn)).await
            {
                let claim = if facts.claims_by_script() { Msg::RedisBefore7 } else { Msg::RedisClaimSetGet };
                details.push(claim.fill(lang, &[("version", &facts.version)]));
                if facts.evicts() {
                    status = Status::Warn;
                    details.push(
                        Msg::RedisEvicts
                            .fill(lang, &[("bytes", &facts.maxmemory), ("policy", &facts.maxmemory_policy)]),
                    );
                }
            }
            report.push(name, status, details);
        }
        Ok(Err(e)) => {
            report.push(
                name,
                Status::Fail,
                vec![format!("{shown}: {e}"), Msg::RedisDown.get(lang).to_owned()],
            );
        }
        Err(_) => report.push(
            name,
            Status::Fail,
            vec![Msg::NoAnswerWithin.fill(lang, &[("what", &shown), ("secs", &timeout.as_secs())])],
        ),
    }
}

async fn check_api(
    cfg: &Config,
    report: &mut Diagnosis,
    api_base: Option<&str>,
    timeout: Duration,
    lang: Lang,
) {
    let with_secret: Vec<usize> =
        (0..cfg.accounts.len()).filter(|&i| cfg.accounts[i].appsecret.is_some()).collect();
    if with_secret.is_empty() {
        report.push(Msg::CheckApi.get(lang), Status::Skip, vec![Msg::ApiSkip.get(lang).to_owned()]);
        return;
    }
    let clients = match api_clients(cfg, api_base, None) {
        Ok(c) => c,
        Err(e) => {
            report.push(Msg::CheckApi.get(lang), Status::Fail, vec![e.to_string()]);
            return;
        }
    };
    let many = clients.len() > 1;
    for (client, i) in clients.iter().zip(with_secret) {
        let name = |what: Msg| {
            let what = what.get(lang);
            if many { format!("{} {what}", account_id(cfg, i)) } else { what.to_owned() }
        };
        let kind = cfg.accounts[i].kind;
        let (check, fetched) = if kind == Kind::Wecom {
            (Msg::CheckWecomToken, Msg::WecomTokenFetched)
        } else {
            (Msg::CheckAccessToken, Msg::TokenFetched)
        };
        match tokio::time::timeout(timeout, client.access_token()).await {
            Ok(Ok(_)) => report.push(name(check), Status::Pass, vec![fetched.get(lang).to_owned()]),
            Ok(Err(e)) => {
                report.push(name(check), Status::Fail, vec![describe_error(&e, lang)]);
                continue;
            }
            Err(_) => {
                report.push(
                    name(check),
                    Status::Fail,
                    vec![Msg::ApiNoAnswer.fill(lang, &[("secs", &timeout.as_secs())])],
                );
                continue;
            }
        }
        if kind != Kind::OfficialAccount {
            // getcallbackip and the customer-service account list are Official Account APIs;
            // a WeCom app replies late through message/send, a Mini Program through the
            // customer-service send, for which the token above is all they need.
            continue;
        }
        match tokio::time::timeout(timeout, client.ops().callback_ips()).await {
            Ok(Ok(ips)) => report.push(
                name(Msg::CheckApiCall),
                Status::Pass,
                vec![Msg::CallbackIps.fill(lang, &[("n", &ips.len())])],
            ),
            Ok(Err(e)) => report.push(name(Msg::CheckApiCall), Status::Fail, vec![describe_error(&e, lang)]),
            Err(_) => report.push(
                name(Msg::CheckApiCall),
                Status::Fail,
                vec![Msg::CallbackIpsNoAnswer.get(lang).to_owned()],
            ),
        }
        // Late replies go out as customer-service messages: check that permission.
        match tokio::time::timeout(timeout, client.kf().accounts()).await {
            Ok(Ok(_)) => {
                report.push(name(Msg::CheckKf), Status::Pass, vec![Msg::KfAllowed.get(lang).to_owned()])
            }
            Ok(Err(e)) => report.push(
                name(Msg::CheckKf),
                Status::Fail,
                vec![describe_error(&e, lang), Msg::KfUntilFixed.get(lang).to_owned()],
            ),
            Err(_) => report.push(name(Msg::CheckKf), Status::Fail, vec![Msg::NoAnswer.get(lang).to_owned()]),
        }
        check_quota(client, report, &name(Msg::CheckQuota), timeout, lang).await;
    }
}

/// The APIs `wemp serve` itself calls for an Official Account: the token (the client's
/// default provider, `stable_token`) and the customer-service send of late replies.
const SERVER_APIS: [&str; 2] = ["/cgi-bin/stable_token", "/cgi-bin/message/custom/send"];

/// Below this share of the daily limit left, the quota is a warning.
const QUOTA_LOW_PERCENT: u64 = 10;

/// The daily quota of [`SERVER_APIS`] (`openapi/quota/get`): fails when one is used up
/// (late replies stop until 00:00 China time), warns when little is left or it cannot be
/// read (the quota API is itself limited, and a failed read is not a broken server).
async fn check_quota(
    client: &wemp_client::Client,
    report: &mut Diagnosis,
    name: &str,
    timeout: Duration,
    lang: Lang,
) {
    let mut status = Status::Pass;
    let mut details = Vec::new();
    for path in SERVER_APIS {
        let error = match tokio::time::timeout(timeout, client.ops().quota(path)).await {
            Ok(Ok(q)) => {
                if q.remain == 0 {
                    status = Status::Fail;
                } else if q.remain.saturating_mul(100) < q.daily_limit.saturating_mul(QUOTA_LOW_PERCENT)
                    && status == Status::Pass
                {
                    status = Status::Warn;
                }
                details.push(Msg::QuotaLine.fill(
                    lang,
                    &[("path", &path), ("used", &q.used), ("limit", &q.daily_limit), ("remain", &q.remain)],
                ));
                continue;
            }
            Ok(Err(e)) => describe_error(&e, lang),
            Err(_) => Msg::NoAnswer.get(lang).to_owned(),
        };
        if status == Status::Pass {
            status = Status::Warn;
        }
        details.push(Msg::QuotaUnknown.fill(lang, &[("path", &path), ("error", &error)]));
    }
    details.push(Msg::QuotaResets.get(lang).to_owned());
    report.push(name, status, details);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_name_the_fix() {
        assert!(instruction(ErrCode(40164), Lang::En).contains("whitelist"));
        assert!(instruction(ErrCode(40164), Lang::Zh).contains("IP 白名单"));
        assert!(instruction(ErrCode(40125), Lang::En).contains("AppSecret is wrong"));
        assert!(instruction(ErrCode(48001), Lang::En).contains("lacks the permission"));
        assert!(instruction(ErrCode(99999), Lang::En).contains("99999"));
        assert!(instruction(ErrCode(99999), Lang::Zh).contains("全局返回码"));
    }
}
