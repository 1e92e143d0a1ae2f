//! `wemp sim`: the WeChat platform's side of the callback protocol, played against any URL.
//!
//! The [`Simulator`] signs and encrypts with [`wemp_proto::testing::Platform`] (the one
//! description of what WeChat does), posts with WeChat's 5-second timeout and three tries
//! ([`wemp_testkit::wechat::Schedule`], the tests' schedule too),
//! and judges each answer as WeChat would: a valid passive reply in the right direction,
//! `CreateTime` in seconds, encrypted when the request was, news within the article limits.

pub mod build;
pub mod chat;
pub mod check;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde::Serialize;
use wemp_proto::reply::ReplyMessage;
use wemp_proto::testing::{Platform, SignedRequest};
use wemp_proto::{Cipher, Header, Incoming, Mode};
use wemp_testkit::wechat::Schedule;

pub use build::{EventSpec, MessageSpec};

/// What the user sees when WeChat gives up on a server.
pub const USER_ERROR_BANNER: &str = wemp_testkit::wechat::ERROR_BANNER;

/// WeChat's wait for a passive reply.
pub const WECHAT_TIMEOUT: Duration = Schedule::WECHAT.timeout;

/// WeChat's tries per message.
pub const WECHAT_TRIES: u32 = Schedule::WECHAT.tries;

/// The default OpenID of the simulated user.
pub const DEFAULT_OPENID: &str = "o_wemp_sim_user";

/// The default original id (`gh_…`) of the simulated account.
pub const DEFAULT_ACCOUNT: &str = "gh_wemp_sim";

/// How to reach a server and whom to play.
#[derive(Clone, Debug)]
pub struct Target {
    /// The server's callback URL.
    pub url: String,
    /// The Token configured on both sides.
    pub token: String,
    /// The account's appid (encrypted modes).
    pub appid: Option<String>,
    /// The EncodingAESKey (encrypted modes).
    pub aes_key: Option<String>,
    /// How requests are protected.
    pub mode: Mode,
    /// The user's OpenID.
    pub openid: String,
    /// The account's original id.
    pub account: String,
    /// How long to wait for each answer.
    pub timeout: Duration,
    /// Tries per message.
    pub tries: u32,
}

impl Target {
    /// A plain-mode target with WeChat's timeout and tries.
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: token.into(),
            appid: None,
            aes_key: None,
            mode: Mode::Plain,
            openid: DEFAULT_OPENID.into(),
            account: DEFAULT_ACCOUNT.into(),
            timeout: WECHAT_TIMEOUT,
            tries: WECHAT_TRIES,
        }
    }
}

/// The simulator cannot be set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupError(pub String);

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SetupError {}

/// What one HTTP exchange came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Exchange {
    /// No answer within the timeout.
    Timeout,
    /// The connection failed.
    Connect {
        /// Why.
        error: String,
    },
    /// An HTTP answer.
    Http {
        /// Status code.
        status: u16,
        /// `Content-Type`, if any.
        content_type: Option<String>,
        /// The body.
        body: String,
    },
}

impl Exchange {
    /// A one-line account of the exchange.
    pub fn describe(&self, timeout: Duration) -> String {
        match self {
            Self::Timeout => format!("no answer within {}", fmt_duration(timeout)),
            Self::Connect { error } => format!("connection failed: {error}"),
            Self::Http { status, body, .. } => format!("HTTP {status}, {} bytes", body.len()),
        }
    }

    /// The status and body of a 2xx answer.
    pub fn success_body(&self) -> Option<&str> {
        match self {
            Self::Http { status, body, .. } if (200..300).contains(status) => Some(body),
            _ => None,
        }
    }
}

/// One try.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    /// 1, 2 or 3.
    pub number: u32,
    /// Time to the answer (or to the failure).
    #[serde(rename = "elapsed_ms", serialize_with = "ser_ms")]
    pub elapsed: Duration,
    /// What happened.
    pub exchange: Exchange,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// How WeChat judges a server's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// The server answered with a passive reply (or `success`/empty for no reply).
    Reply {
        /// The decoded reply.
        message: ReplyMessage,
        /// Whether it came encrypted.
        encrypted: bool,
        /// The reply XML (decrypted).
        xml: String,
        /// What WeChat would refuse about it; non-empty means the user sees the error banner.
        problems: Vec<String>,
    },
    /// No usable answer: the user sees the error banner.
    Failed {
        /// Why.
        reason: String,
    },
}

impl Outcome {
    /// Whether the user would see [`USER_ERROR_BANNER`].
    pub fn user_sees_error(&self) -> bool {
        match self {
            Self::Reply { problems, .. } => !problems.is_empty(),
            Self::Failed { .. } => true,
        }
    }

    /// Every reason the delivery failed, empty on success.
    pub fn failures(&self) -> Vec<String> {
        match self {
            Self::Reply { problems, .. } => problems.clone(),
            Self::Failed { reason } => vec![reason.clone()],
        }
    }
}

/// A message delivered the way WeChat delivers it.
#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    /// The mode used.
    pub mode: Mode,
    /// The message XML (before encryption).
    pub request: String,
    /// Each try.
    pub attempts: Vec<Attempt>,
    /// The verdict.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The platform side of a conversation with one server.
#[derive(Clone, Debug)]
pub struct Simulator {
    client: reqwest::Client,
    target: Target,
    platform: Platform,
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// A MsgId as WeChat issues them: 64-bit, above 2^53.
pub fn random_msg_id() -> u64 {
    rand::rng().random_range((1u64 << 62)..(1u64 << 63))
}

fn random_nonce() -> String {
    rand::rng().random_range(100_000_000u32..4_000_000_000).to_string()
}

/// Formats a duration for people (`5s`, `250ms`).
pub fn fmt_duration(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

impl Simulator {
    /// Prepares a simulator for `target`.
    ///
    /// # Errors
    /// [`SetupError`] when an encrypted mode lacks the appid or key, or the key is invalid.
    pub fn new(target: Target) -> Result<Self, SetupError> {
        let mut platform = Platform::new(target.token.clone());
        match (&target.aes_key, &target.appid) {
            (Some(key), appid) => {
                let appid = appid.clone().unwrap_or_default();
                if target.mode.is_encrypted() && appid.is_empty() {
                    return Err(SetupError(format!("{} mode needs --appid", target.mode)));
                }
                let cipher = Cipher::new(key, &appid)
                    .map_err(|e| SetupError(format!("--aes-key is not a valid EncodingAESKey: {e}")))?;
                platform = platform.with_cipher(cipher);
            }
            (None, _) if target.mode.is_encrypted() => {
                return Err(SetupError(format!("{} mode needs --aes-key and --appid", target.mode)));
            }
            (None, _) => {}
        }
        if !(target.url.starts_with("http://") || target.url.starts_with("https://")) {
            return Err(SetupError(format!("{:?} is not an http:// or https:// URL", target.url)));
        }
        let client = reqwest::Client::builder()
            .timeout(target.timeout)
            .connect_timeout(target.timeout)
            .user_agent("Mozilla/4.0 (wemp sim)")
            .build()
            .map_err(|e| SetupError(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { client, target, platform })
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The platform (signing and encryption).
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// A copy using another mode (the cipher must be set for encrypted modes).
    ///
    /// # Errors
    /// [`SetupError`] when the mode is encrypted and no cipher is configured.
    pub fn with_mode(&self, mode: Mode) -> Result<Self, SetupError> {
        if mode.is_encrypted() && self.platform.cipher().is_none() {
            return Err(SetupError(format!("{mode} mode needs --aes-key and --appid")));
        }
        let mut sim = self.clone();
        sim.target.mode = mode;
        Ok(sim)
    }

    /// The header of a message from the user to the account, now.
    pub fn header(&self) -> Header {
        Header { to: self.target.account.clone(), from: self.target.openid.clone(), create_time: now_secs() }
    }

    /// Builds a message of `spec` from the user, now, with a fresh MsgId.
    ///
    /// # Errors
    /// As [`MessageSpec::build`].
    pub fn message(&self, spec: &MessageSpec) -> Result<Incoming, String> {
        spec.build(self.header(), random_msg_id())
    }

    fn url_with(&self, query: &str) -> String {
        let sep = if self.target.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}{query}", self.target.url)
    }

    /// One HTTP exchange with the server, bounded by the timeout.
    pub async fn exchange(&self, get: bool, query: &str, body: String) -> Attempt {
        let url = self.url_with(query);
        let start = Instant::now();
        let req = if get {
            self.client.get(url)
        } else {
            self.client.post(url).header("content-type", "text/xml").body(body)
        };
        let exchange = match tokio::time::timeout(self.target.timeout, send(req)).await {
            Err(_) => Exchange::Timeout,
            Ok(result) => result,
        };
        Attempt { number: 1, elapsed: start.elapsed(), exchange }
    }

    /// Signs `xml` in this simulator's mode with a fresh timestamp and nonce.
    ///
    /// # Errors
    /// When the mode is encrypted and `xml` cannot be encrypted or copied.
    pub fn sign(&self, xml: &str) -> Result<SignedRequest, wemp_proto::Error> {
        self.platform.post(
            self.target.mode,
            xml,
            &self.target.openid,
            &self.target.account,
            &now_secs().to_string(),
            &random_nonce(),
            rand::rng().random(),
        )
    }

    /// Delivers a message as WeChat does: up to `tries` tries (a timeout, a failed
    /// connection or a non-2xx status counts as a failed try), then judges the answer.
    pub async fn deliver(&self, incoming: &Incoming) -> Delivery {
        self.deliver_xml(&incoming.to_xml(), !incoming.is_event()).await
    }

    /// As [`Simulator::deliver`], for XML that is already written.
    pub async fn deliver_xml(&self, xml: &str, answering_message: bool) -> Delivery {
        let schedule = Schedule { timeout: self.target.timeout, tries: self.target.tries };
        // Each try is signed afresh; a request that cannot be signed ends the delivery.
        let tries = schedule
            .run(
                |_| async {
                    let req = self.sign(xml).map_err(|e| format!("cannot sign the request: {e}"))?;
                    Ok(self.exchange(false, &req.query_string(), req.body).await)
                },
                |result: &Result<Attempt, String>| {
                    result.as_ref().map_or(true, |a| a.exchange.success_body().is_some())
                },
            )
            .await;
        let mut attempts = Vec::new();
        let mut outcome = None;
        for t in tries {
            match t.result {
                Some(Ok(mut attempt)) => {
                    attempt.number = t.number;
                    if let Some(body) = attempt.exchange.success_body() {
                        outcome = Some(self.judge(body, answering_message));
                    }
                    attempts.push(attempt);
                }
                Some(Err(reason)) => outcome = Some(Outcome::Failed { reason }),
                None => {
                    attempts.push(Attempt { number: t.number, elapsed: t.took, exchange: Exchange::Timeout })
                }
            }
        }
        let outcome = outcome.unwrap_or_else(|| {
            let last = attempts.last().map(|a| a.exchange.describe(self.target.timeout)).unwrap_or_default();
            Outcome::Failed { reason: format!("all {} tries failed (last: {last})", attempts.len()) }
        });
        Delivery { mode: self.target.mode, request: xml.to_owned(), attempts, outcome }
    }

    /// Judges a 2xx body as WeChat would.
    pub fn judge(&self, body: &str, answering_message: bool) -> Outcome {
        let opened = match self.platform.open_reply(body) {
            Ok(opened) => opened,
            Err(e) => return Outcome::Failed { reason: explain_open_error(&e, body) },
        };
        let mut problems = Vec::new();
        if opened.message.header.is_some() {
            problems.extend(wemp_testkit::wechat::mode_problems(self.target.mode, opened.encrypted));
        }
        problems.extend(inspect_reply(
            &opened.message,
            &self.target.openid,
            &self.target.account,
            answering_message,
            now_secs(),
        ));
        Outcome::Reply { message: opened.message, encrypted: opened.encrypted, xml: opened.xml, problems }
    }

    /// Performs the URL verification GET and judges the answer.
    pub async fn verify(&self, echostr: &str) -> VerifyReport {
        let req = self.platform.verification(&now_secs().to_string(), &random_nonce(), echostr);
        let attempt = self.exchange(true, &req.query_string(), String::new()).await;
        judge_verification(echostr, &attempt, self.target.timeout)
    }
}

async fn send(req: reqwest::RequestBuilder) -> Exchange {
    let resp = match req.send().await {
        Ok(resp) => resp,
        Err(e) if e.is_timeout() => return Exchange::Timeout,
        Err(e) => return Exchange::Connect { error: error_chain(&e) },
    };
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    match resp.text().await {
        Ok(body) => Exchange::Http { status, content_type, body },
        Err(e) if e.is_timeout() => Exchange::Timeout,
        Err(e) => Exchange::Connect { error: format!("reading the body: {}", error_chain(&e)) },
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn explain_open_error(e: &wemp_proto::Error, body: &str) -> String {
    use wemp_proto::Error as E;
    let snippet: String = body.chars().take(80).collect();
    match e {
        E::Verify(_) => "bad MsgSignature in the encrypted reply: sign sha1(sort(token, TimeStamp, Nonce, \
                         Encrypt)) over the reply's own TimeStamp and Nonce"
            .to_owned(),
        E::Decrypt(d) => format!("the encrypted reply does not decrypt ({d}); {}", e.reference_code().code()),
        E::Envelope(env) => format!("invalid encrypted reply: {env}"),
        E::Xml(x) | E::ReplyParse(wemp_proto::reply::ReplyParseError::Xml(x)) => {
            format!("invalid XML in the reply ({x}): {snippet:?}")
        }
        E::ReplyParse(p) => format!("not a valid passive reply ({p}): {snippet:?}"),
        other => format!("unusable reply: {other}"),
    }
}

/// What WeChat would refuse about a decoded reply: direction, `CreateTime`, news limits
/// (the testkit's judgement, which the tests use too).
pub use wemp_testkit::wechat::reply_problems as inspect_reply;

/// The verdict on a URL verification.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// Whether WeChat would accept the server.
    pub ok: bool,
    /// The exchange.
    pub attempt: Attempt,
    /// Why WeChat would refuse it.
    pub problems: Vec<String>,
    /// What is odd but accepted.
    pub warnings: Vec<String>,
}

/// Judges the answer to a verification GET with `echostr`.
pub fn judge_verification(echostr: &str, attempt: &Attempt, timeout: Duration) -> VerifyReport {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    match &attempt.exchange {
        Exchange::Timeout | Exchange::Connect { .. } => {
            problems
                .push(format!("{} — is the server running at that URL?", attempt.exchange.describe(timeout)));
        }
        Exchange::Http { status, content_type, body } => {
            let trimmed = body.trim();
            if *status != 200 {
                let hint = match status {
                    404 => " (wrong path? the URL must be the callback path exactly)",
                    401 | 403 => " (the server refused the signature: does its Token match --token?)",
                    405 => " (the server does not answer GET on this path)",
                    s if *s >= 500 => " (the server failed)",
                    _ => "",
                };
                problems.push(format!("wrong status: HTTP {status}, WeChat needs 200{hint}"));
            }
            if body == echostr {
                if let Some(ct) = content_type
                    && !ct.trim_start().to_ascii_lowercase().starts_with("text/plain")
                {
                    warnings
                        .push(format!("Content-Type is {ct:?}, not text/plain (WeChat only reads the body)"));
                }
            } else if trimmed == echostr {
                problems.push(format!(
                    "the body has whitespace around echostr ({body:?}); answer exactly the echostr value"
                ));
            } else if trimmed == format!("\"{echostr}\"") || trimmed == format!("'{echostr}'") {
                problems.push(format!(
                    "echostr is quoted ({trimmed}); answer the bare value as text/plain, not a JSON string"
                ));
            } else if trimmed.starts_with('<') && trimmed.contains(echostr) {
                problems.push("echostr is wrapped in XML; answer the bare value as text/plain".to_owned());
            } else if (trimmed.starts_with('{') || trimmed.starts_with('[')) && trimmed.contains(echostr) {
                problems.push("echostr is wrapped in JSON; answer the bare value as text/plain".to_owned());
            } else if trimmed.contains(echostr) {
                problems.push(format!(
                    "the body contains echostr but also other text ({:?}); answer exactly the echostr value",
                    trimmed.chars().take(80).collect::<String>()
                ));
            } else if *status == 200 {
                let what = if trimmed.is_empty() {
                    "an empty body".to_owned()
                } else {
                    format!("{:?}", trimmed.chars().take(80).collect::<String>())
                };
                problems.push(format!(
                    "the server answered {what} instead of echostr: most likely a wrong token or a wrong \
                     signature computation (sha1 of token, timestamp and nonce sorted and joined)"
                ));
            }
        }
    }
    VerifyReport { ok: problems.is_empty(), attempt: attempt.clone(), problems, warnings }
}

#[cfg(test)]
mod tests {
    use wemp_proto::Reply;
    use wemp_proto::reply::Article;

    use super::*;

    fn answered(status: u16, content_type: &str, body: &str) -> Attempt {
        Attempt {
            number: 1,
            elapsed: Duration::from_millis(3),
            exchange: Exchange::Http {
                status,
                content_type: Some(content_type.to_owned()),
                body: body.to_owned(),
            },
        }
    }

    fn judge(status: u16, ct: &str, body: &str) -> VerifyReport {
        judge_verification("12345", &answered(status, ct, body), WECHAT_TIMEOUT)
    }

    #[test]
    fn verification_explains_each_kind_of_failure() {
        assert!(judge(200, "text/plain; charset=utf-8", "12345").ok);
        let html = judge(200, "text/html", "12345");
        assert!(html.ok);
        assert!(html.warnings[0].contains("not text/plain"));
        assert!(judge(200, "application/json", "\"12345\"").problems[0].contains("quoted"));
        assert!(judge(200, "text/xml", "<xml><echostr>12345</echostr></xml>").problems[0].contains("XML"));
        assert!(judge(200, "application/json", "{\"echostr\":\"12345\"}").problems[0].contains("JSON"));
        assert!(judge(200, "text/plain", "12345\n").problems[0].contains("whitespace"));
        assert!(judge(200, "text/plain", "").problems[0].contains("wrong token"));
        let forbidden = judge(403, "text/plain", "");
        assert!(forbidden.problems[0].contains("HTTP 403"), "{forbidden:?}");
        assert!(forbidden.problems[0].contains("Token"));
        let timeout = Attempt { number: 1, elapsed: WECHAT_TIMEOUT, exchange: Exchange::Timeout };
        let report = judge_verification("1", &timeout, WECHAT_TIMEOUT);
        assert!(report.problems[0].contains("no answer within 5s"));
    }

    fn reply(to: &str, from: &str, create_time: i64, reply: Reply) -> ReplyMessage {
        ReplyMessage { header: Some(Header { to: to.into(), from: from.into(), create_time }), reply }
    }

    #[test]
    fn replies_are_checked_for_direction_time_and_news_limits() {
        let now = 1_700_000_000;
        let ok = reply("o1", "gh_1", now, Reply::text("hi"));
        assert!(inspect_reply(&ok, "o1", "gh_1", true, now).is_empty());
        let swapped = reply("gh_1", "o1", now, Reply::text("hi"));
        assert!(inspect_reply(&swapped, "o1", "gh_1", true, now)[0].contains("swapped"));
        let wrong_to = reply("o2", "gh_1", now, Reply::text("hi"));
        assert!(inspect_reply(&wrong_to, "o1", "gh_1", true, now)[0].contains("ToUserName"));
        let ms = reply("o1", "gh_1", now * 1000, Reply::text("hi"));
        assert!(inspect_reply(&ms, "o1", "gh_1", true, now)[0].contains("milliseconds"));
        let article = Article::new("t", "d", "p", "u");
        let two = reply("o1", "gh_1", now, Reply::news(vec![article.clone(), article]));
        assert!(inspect_reply(&two, "o1", "gh_1", true, now)[0].contains("news article limits"));
        assert!(inspect_reply(&two, "o1", "gh_1", false, now).is_empty());
        let none = ReplyMessage { header: None, reply: Reply::None };
        assert!(inspect_reply(&none, "o1", "gh_1", true, now).is_empty());
    }

    #[test]
    fn encrypted_modes_need_a_key_and_appid() {
        let mut target = Target::new("http://127.0.0.1:1/wechat", "token");
        target.mode = Mode::Safe;
        assert!(Simulator::new(target.clone()).unwrap_err().0.contains("--aes-key"));
        target.aes_key = Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into());
        assert!(Simulator::new(target.clone()).unwrap_err().0.contains("--appid"));
        target.appid = Some("wx1".into());
        assert!(Simulator::new(target.clone()).is_ok());
        target.aes_key = Some("short".into());
        assert!(Simulator::new(target).unwrap_err().0.contains("EncodingAESKey"));
    }
}
