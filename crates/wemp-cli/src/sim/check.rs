//! `wemp sim check`: a conformance run against a server.
//!
//! The handshake, every message and event type in each mode, a retry of the same MsgId,
//! and requests WeChat never sends (forged signatures, malformed bodies) that must be
//! refused rather than answered with a reply.
//!
//! The checks' names and notes are worded in the language asked for (`--json` asks for
//! English), from the [`Msg`] catalogue and [`super::words`].

use serde::Serialize;
use wemp_proto::reply::ReplyMessage;
use wemp_proto::{Mode, Reply, signature};

use super::build::{MessageSpec, every_type};
use super::{
    Delivery, DeliveryVerdict, Exchange, Kind, Schedule, Simulator, fmt_duration, now_secs, random_msg_id,
    words,
};
use crate::i18n::{Lang, Msg, mode_name};

/// The verdict of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// As WeChat needs.
    Pass,
    /// Accepted, but worth fixing.
    Warn,
    /// WeChat would fail (or the server accepted what it must refuse).
    Fail,
    /// Not run.
    Skip,
}

impl Status {
    /// Upper-case label for reports.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
            Self::Skip => "SKIP",
        }
    }
}

/// One check.
#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    /// What was checked.
    pub name: String,
    /// The verdict.
    pub status: Status,
    /// Reasons (for failures and warnings) or a short note.
    pub details: Vec<String>,
}

impl CheckResult {
    fn new(name: impl Into<String>, status: Status, details: Vec<String>) -> Self {
        Self { name: name.into(), status, details }
    }
}

/// The whole run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckReport {
    /// Every check, in order.
    pub checks: Vec<CheckResult>,
}

impl CheckReport {
    /// How many checks have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        self.count(Status::Fail) == 0
    }
}

/// Runs every check against the simulator's target in each of `modes`, calling `progress`
/// after each check; names and notes are in `lang`.
pub async fn run(
    sim: &Simulator,
    modes: &[Mode],
    lang: Lang,
    mut progress: impl FnMut(&CheckResult),
) -> CheckReport {
    let mut report = CheckReport::default();
    let mut push = |report: &mut CheckReport, result: CheckResult| {
        progress(&result);
        report.checks.push(result);
    };
    let single = sim.with_schedule(Schedule { timeout: sim.target().timeout, tries: 1 });

    let echostr = random_msg_id().to_string();
    let verify = single.verify(&echostr).await;
    let unreachable = matches!(
        verify.attempt.exchange,
        Exchange::Timeout | Exchange::Connect { .. } | Exchange::Tls { .. }
    );
    let status = if !verify.ok {
        Status::Fail
    } else if verify.warnings.is_empty() {
        Status::Pass
    } else {
        Status::Warn
    };
    let details = if verify.ok { &verify.warnings } else { &verify.problems };
    let details = details.iter().map(|p| words::verify_problem(p, lang)).collect();
    push(&mut report, CheckResult::new(Msg::CheckHandshake.get(lang), status, details));
    if unreachable {
        push(
            &mut report,
            CheckResult::new(
                Msg::CheckRemaining.get(lang),
                Status::Skip,
                vec![Msg::CheckUnreachable.get(lang).to_owned()],
            ),
        );
        return report;
    }
    push(&mut report, forged_handshake(&single, lang).await);

    for &mode in modes {
        let m = mode_name(mode, lang);
        let sim = match single.with_mode(mode) {
            Ok(sim) => sim,
            Err(e) => {
                let name = Msg::CheckAllTypes.fill(lang, &[("mode", &m)]);
                push(&mut report, CheckResult::new(name, Status::Skip, vec![e.0]));
                continue;
            }
        };
        if let Some(result) = requires_encryption(&sim, lang).await {
            push(&mut report, result);
            continue;
        }
        if sim.target().kind == Kind::Wecom && mode != Mode::Safe {
            // WeCom sends only safe-mode requests; a WeCom app's server that answers
            // another mode accepts requests without msg_signature.
            let details = vec![Msg::CheckWecomAnswered.fill(lang, &[("mode", &m)])];
            let name = Msg::CheckRequiresEncryption.fill(lang, &[("mode", &m)]);
            push(&mut report, CheckResult::new(name, Status::Fail, details));
            continue;
        }
        for spec in every_type(sim.target().kind) {
            push(&mut report, one_type(&sim, &spec, lang).await);
        }
        push(&mut report, retry_same_msg_id(&sim, lang).await);
        for result in refusals(&sim, lang).await {
            push(&mut report, result);
        }
    }
    report
}

async fn forged_handshake(sim: &Simulator, lang: Lang) -> CheckResult {
    let name = Msg::CheckForgedHandshake.get(lang);
    let echostr = random_msg_id().to_string();
    let timestamp = now_secs().to_string();
    let mut req = match sim.verification(&timestamp, "20250101", &echostr) {
        Ok(req) => req,
        Err(e) => return CheckResult::new(name, Status::Fail, vec![e.to_string()]),
    };
    let wrong_token = format!("{}x", sim.target().token);
    if req.param("msg_signature").is_some() {
        let encrypted = req.param("echostr").unwrap_or_default().to_owned();
        let forged = signature::sign_msg(&wrong_token, &timestamp, "20250101", &encrypted);
        set_param(&mut req.query, "msg_signature", forged);
    } else {
        set_param(&mut req.query, "signature", signature::sign(&wrong_token, &timestamp, "20250101"));
    }
    let attempt = sim.exchange(true, &req.query_string(), String::new()).await;
    match &attempt.exchange {
        Exchange::Http { status: 200, body, .. } if body.trim() == echostr => CheckResult::new(
            name,
            Status::Fail,
            vec![Msg::CheckForgedEchoed.fill(
                lang,
                &[(
                    "param",
                    &if req.param("msg_signature").is_some() { "msg_signature" } else { "signature" },
                )],
            )],
        ),
        other => {
            CheckResult::new(name, Status::Pass, vec![words::exchange(other, sim.target().timeout, lang)])
        }
    }
}

async fn one_type(sim: &Simulator, spec: &MessageSpec, lang: Lang) -> CheckResult {
    let mode = mode_name(sim.target().mode, lang);
    let name = Msg::CheckType.fill(lang, &[("mode", &mode), ("what", &spec.label())]);
    let incoming = match super::message(sim, spec) {
        Ok(m) => m,
        Err(e) => return CheckResult::new(name, Status::Fail, vec![e.to_string()]),
    };
    let delivery = sim.deliver(&incoming).await;
    match &delivery.outcome {
        DeliveryVerdict::Reply { problems, message, warnings, .. } if problems.is_empty() => {
            if warnings.is_empty() {
                CheckResult::new(name, Status::Pass, vec![summary(sim.target().kind, message, lang)])
            } else {
                CheckResult::new(
                    name,
                    Status::Warn,
                    warnings.iter().map(|p| words::problem(p, lang)).collect(),
                )
            }
        }
        _ => {
            let mut details = words::failures(&delivery, sim.target().timeout, lang);
            if delivery.attempts.iter().any(|a| a.exchange == Exchange::Timeout) {
                details.push(Msg::CheckSlow.fill(lang, &[("timeout", &fmt_duration(sim.target().timeout))]));
            }
            CheckResult::new(name, Status::Fail, details)
        }
    }
}

/// A server configured for safe mode rightly refuses plain (and may refuse compatible)
/// requests: when a `sim`'s mode is refused with a 4xx status while the same message in safe
/// mode is answered, that mode's checks end in one pass, "server requires encryption".
/// `None` when the mode is safe, no EncodingAESKey is known, or the mode is not refused.
async fn requires_encryption(sim: &Simulator, lang: Lang) -> Option<CheckResult> {
    let mode = sim.target().mode;
    if mode == Mode::Safe {
        return None;
    }
    let safe = sim.with_mode(Mode::Safe).ok()?;
    let probe = MessageSpec::text("encryption probe");
    let delivery = sim.deliver(&super::message(sim, &probe).ok()?).await;
    let refused = |a: &super::Attempt| matches!(a.exchange, Exchange::Http { status: 400..=499, .. });
    if !delivery.attempts.last().is_some_and(refused) {
        return None;
    }
    let timeout = sim.target().timeout;
    let said =
        delivery.attempts.last().map(|a| words::exchange(&a.exchange, timeout, lang)).unwrap_or_default();
    let answered = safe.deliver(&super::message(&safe, &probe).ok()?).await;
    let m = mode_name(mode, lang);
    let name = Msg::CheckRequiresEncryption.fill(lang, &[("mode", &m)]);
    Some(if answered.outcome.user_sees_error() {
        let mut details = vec![Msg::CheckRefusedToo.fill(lang, &[("mode", &m), ("said", &said)])];
        details.extend(words::failures(&answered, timeout, lang));
        CheckResult::new(name, Status::Fail, details)
    } else {
        CheckResult::new(
            name,
            Status::Pass,
            vec![Msg::CheckRefused.fill(lang, &[("mode", &m), ("said", &said)])],
        )
    })
}

fn summary(kind: Kind, message: &ReplyMessage, lang: Lang) -> String {
    match &message.reply {
        Reply::None if kind == Kind::Miniprogram => Msg::CheckMiniprogramSuccess.get(lang).to_owned(),
        Reply::None => Msg::CheckNoReply.get(lang).to_owned(),
        reply => Msg::CheckReply.fill(lang, &[("type", &reply.msg_type().unwrap_or("?"))]),
    }
}

async fn retry_same_msg_id(sim: &Simulator, lang: Lang) -> CheckResult {
    let name = Msg::CheckRetry.fill(lang, &[("mode", &mode_name(sim.target().mode, lang))]);
    let timeout = sim.target().timeout;
    let incoming = match super::message(sim, &MessageSpec::text("retry check")) {
        Ok(m) => m,
        Err(e) => return CheckResult::new(name, Status::Fail, vec![e.to_string()]),
    };
    let first = sim.deliver(&incoming).await;
    let second = sim.deliver(&incoming).await;
    match (&first.outcome, &second.outcome) {
        (DeliveryVerdict::Reply { message: a, .. }, DeliveryVerdict::Reply { message: b, .. }) => {
            if a.reply == b.reply {
                CheckResult::new(name, Status::Pass, vec![summary(sim.target().kind, a, lang)])
            } else {
                let (first, second) = (format!("{:?}", a.reply), format!("{:?}", b.reply));
                let differs = Msg::CheckRetryDiffers.fill(lang, &[("first", &first), ("second", &second)]);
                CheckResult::new(name, Status::Fail, vec![differs])
            }
        }
        _ => {
            let retried = |d: &Delivery| words::failures(d, timeout, lang);
            let mut details = retried(&first);
            details.extend(
                retried(&second).into_iter().map(|r| Msg::CheckRetryFailed.fill(lang, &[("reason", &r)])),
            );
            CheckResult::new(name, Status::Fail, details)
        }
    }
}

fn set_param(query: &mut [(String, String)], name: &str, value: String) {
    if let Some(slot) = query.iter_mut().find(|(k, _)| k == name) {
        slot.1 = value;
    }
}

fn query_string(query: &[(String, String)]) -> String {
    wemp_proto::wechat::SignedRequest { query: query.to_vec(), body: String::new() }.query_string()
}

/// Judges the answer to a request that must be refused (`what`: the request, in words).
fn refused(
    name: String,
    exchange: &Exchange,
    what: Msg,
    timeout: std::time::Duration,
    lang: Lang,
) -> CheckResult {
    let Some(body) = exchange.success_body() else {
        return CheckResult::new(name, Status::Pass, vec![words::exchange(exchange, timeout, lang)]);
    };
    let what = what.get(lang);
    let trimmed = body.trim();
    if trimmed.is_empty() || trimmed == "success" {
        return CheckResult::new(name, Status::Pass, vec![Msg::RefusedNoReply.get(lang).to_owned()]);
    }
    let is_reply = trimmed.starts_with('<')
        && (trimmed.contains("<Encrypt>") || ReplyMessage::parse(trimmed).is_ok_and(|m| m.header.is_some()));
    if is_reply {
        CheckResult::new(name, Status::Fail, vec![Msg::RefusedWithReply.fill(lang, &[("what", &what)])])
    } else {
        CheckResult::new(name, Status::Warn, vec![Msg::RefusedWithBody.fill(lang, &[("what", &what)])])
    }
}

async fn refusals(sim: &Simulator, lang: Lang) -> Vec<CheckResult> {
    let mode = sim.target().mode;
    let m = mode_name(mode, lang);
    let name = |check: Msg| check.fill(lang, &[("mode", &m)]);
    let timeout = sim.target().timeout;
    let mut out = Vec::new();
    let incoming = match super::message(sim, &MessageSpec::text("hello")) {
        Ok(m) => m,
        Err(e) => {
            return vec![CheckResult::new(name(Msg::CheckRefusals), Status::Fail, vec![e.to_string()])];
        }
    };
    let xml = incoming.to_xml();
    let Ok(good) = sim.sign(&xml) else {
        let cannot = vec![Msg::CheckCannotSign.get(lang).to_owned()];
        return vec![CheckResult::new(name(Msg::CheckRefusals), Status::Fail, cannot)];
    };

    // A wrong `signature`. Only in plain mode: encrypted requests are authenticated by
    // `msg_signature` (which covers the Encrypt payload; WXBizMsgCrypt checks only it), so a
    // server may ignore `signature` there; the wrong-msg_signature check below covers them.
    if !mode.is_encrypted() {
        let mut query = good.query.clone();
        let forged = signature::sign(&format!("{}x", sim.target().token), &now_secs().to_string(), "1");
        set_param(&mut query, "signature", forged);
        let attempt = sim.exchange(false, &query_string(&query), good.body.clone()).await;
        out.push(refused(
            name(Msg::CheckWrongSignature),
            &attempt.exchange,
            Msg::ForgedSignature,
            timeout,
            lang,
        ));
    }

    // No signature parameters at all.
    let attempt = sim.exchange(false, "", good.body.clone()).await;
    out.push(refused(name(Msg::CheckNoSignature), &attempt.exchange, Msg::ForgedNoSignature, timeout, lang));

    if mode.is_encrypted() {
        // A wrong `msg_signature` (the plain `signature` is right).
        let mut query = good.query.clone();
        let bad = signature::sign_msg(&sim.target().token, "1", "2", "not the Encrypt");
        set_param(&mut query, "msg_signature", bad);
        let attempt = sim.exchange(false, &query_string(&query), good.body.clone()).await;
        let check = name(Msg::CheckWrongMsgSignature);
        out.push(refused(check, &attempt.exchange, Msg::ForgedMsgSignature, timeout, lang));

        // A correctly signed Encrypt that does not decrypt.
        let garbage = "bm90IGEgY2lwaGVydGV4dCBvZiB0aGUgcmlnaHQgbGVuZ3Ro";
        let body = format!(
            "<xml><ToUserName><![CDATA[{}]]></ToUserName><Encrypt><![CDATA[{garbage}]]></Encrypt></xml>",
            sim.target().account
        );
        let mut query = good.query.clone();
        let ts = good.param("timestamp").unwrap_or_default().to_owned();
        let nonce = good.param("nonce").unwrap_or_default().to_owned();
        set_param(
            &mut query,
            "msg_signature",
            signature::sign_msg(&sim.target().token, &ts, &nonce, garbage),
        );
        let attempt = sim.exchange(false, &query_string(&query), body).await;
        let check = name(Msg::CheckUndecryptable);
        out.push(refused(check, &attempt.exchange, Msg::ForgedUndecryptable, timeout, lang));
    } else {
        // Malformed XML, correctly signed (plain mode signs no body).
        let attempt = sim.exchange(false, &good.query_string(), "<xml><ToUserName>oops".into()).await;
        out.push(refused(name(Msg::CheckMalformed), &attempt.exchange, Msg::ForgedMalformed, timeout, lang));
    }

    // A correctly signed request from a day ago: a replay.
    let stale = (now_secs() - 86_400).to_string();
    if let Ok(req) = sim.sign_at(&xml, &stale, "31415926", [3; 16]) {
        let attempt = sim.exchange(false, &req.query_string(), req.body).await;
        let mut result = refused(name(Msg::CheckReplay), &attempt.exchange, Msg::ForgedReplay, timeout, lang);
        if result.status == Status::Fail {
            // Checking the timestamp window is good practice, not a WeChat requirement.
            result.status = Status::Warn;
        }
        out.push(result);
    }
    out
}
