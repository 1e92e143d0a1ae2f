//! The callback driver (feature `callback`): plays WeChat's side of the callback protocol
//! against a server's URL over HTTP, on WeChat's retry schedule.
//!
//! [`Simulator`] signs and encrypts with [`wemp_proto::wechat::Platform`], posts with WeChat's
//! 5-second timeout and three tries ([`Schedule`]) — every retry is the same signed request
//! again, as WeChat's are (docs/protocol.md §3) — and judges the answer with
//! [`wemp_proto::wechat::judge`]. `wemp sim`, `wemp bench`, the console's chat simulator and the
//! tests all drive callbacks through it, so they agree on what WeChat does.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use wemp_client::callback::{Simulator, Target};
//! use wemp_proto::Mode;
//! use wemp_proto::wechat::Message;
//! let mut target = Target::new("http://127.0.0.1:8080/wechat", "spamtest");
//! target.appid = Some("wx2c2769f8efd9abc2".into());
//! target.aes_key = Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into());
//! target.mode = Mode::Safe;
//! let sim = Simulator::new(target)?;
//! assert!(sim.verify("hello").await.ok);
//! let delivery = sim.send(&Message::Text { content: "help".into() }).await;
//! println!("user sees {:?} after {} tries", delivery.outcome.reply(), delivery.attempts.len());
//! # Ok(()) }
//! ```

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde::Serialize;
use tokio::time::Instant;
use wemp_proto::reply::ReplyMessage;
use wemp_proto::wechat::{Message, Platform, SignedRequest, judge};
pub use wemp_proto::wechat::{Problem, Unreadable};
use wemp_proto::{Cipher, Document, Header, Incoming, Mode, Reply};

pub use wemp_proto::admission::Kind;

pub use wemp_proto::wechat::ERROR_BANNER;

/// WeChat's wait for a passive reply.
pub const WECHAT_TIMEOUT: Duration = Schedule::WECHAT.timeout;

/// WeChat's tries per message.
pub const WECHAT_TRIES: u32 = Schedule::WECHAT.tries;

/// The default OpenID of the simulated user.
pub const DEFAULT_OPENID: &str = "o_wemp_sim_user";

/// The default original id (`gh_…`) of the simulated account.
pub const DEFAULT_ACCOUNT: &str = "gh_wemp_sim";

/// WeChat's retry schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// How long one try waits for the answer (5 s).
    pub timeout: Duration,
    /// How many tries in all (3).
    pub tries: u32,
}

impl Schedule {
    /// WeChat's own schedule: each try abandoned after 5 seconds, three tries in all.
    pub const WECHAT: Self = Self { timeout: Duration::from_secs(5), tries: 3 };

    /// Makes the tries of one delivery on this schedule: `attempt(number)` (1, 2, …), each
    /// bounded by [`Schedule::timeout`], until `settled` accepts a try's result (the
    /// delivery ends there, as when the server answers) or the tries run out (at least
    /// one is made). Returns every try in order; one whose timeout ran out has no result.
    pub async fn run<T, F, Fut>(&self, mut attempt: F, mut settled: impl FnMut(&T) -> bool) -> Vec<Timed<T>>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = T>,
    {
        let first = Instant::now();
        let mut tries = Vec::new();
        for number in 1..=self.tries.max(1) {
            let started = Instant::now();
            let result = tokio::time::timeout(self.timeout, attempt(number)).await.ok();
            let done = result.as_ref().is_some_and(&mut settled);
            tries.push(Timed { number, started: started - first, took: started.elapsed(), result });
            if done {
                break;
            }
        }
        tries
    }
}

impl Default for Schedule {
    fn default() -> Self {
        Self::WECHAT
    }
}

/// One try made by [`Schedule::run`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timed<T> {
    /// 1 for the first try, then 2, 3 …
    pub number: u32,
    /// When the try started, from the first try's start.
    pub started: Duration,
    /// How long it took.
    pub took: Duration,
    /// What it came to; `None` when the try's timeout ran out first.
    pub result: Option<T>,
}

/// How a Mini Program pushes its messages: the data format chosen in its admin console.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// XML, as an Official Account's callbacks (the default).
    #[default]
    Xml,
    /// JSON: the message's fields as a JSON object; in safe mode `{"ToUserName", "Encrypt"}`.
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "xml" => Ok(Self::Xml),
            "json" => Ok(Self::Json),
            _ => Err(format!("{s:?} is not a data format: xml or json")),
        }
    }
}

/// How to reach a server and whom to play.
#[derive(Clone, Debug)]
pub struct Target {
    /// The server's callback URL (`http://` or `https://`).
    pub url: String,
    /// The Token configured on both sides.
    pub token: String,
    /// What kind of account is played: an Official Account (the default), a WeCom app
    /// (always encrypted, `msg_signature` only, the corpid in [`Target::appid`]) or a Mini
    /// Program (which answers `success` and replies through the customer-service API).
    pub kind: Kind,
    /// The account's appid (encrypted modes); a WeCom app's corpid.
    pub appid: Option<String>,
    /// A WeCom app's AgentID, sent in the envelope and the message.
    pub agentid: Option<String>,
    /// A Mini Program's data format.
    pub format: Format,
    /// The EncodingAESKey (encrypted modes).
    pub aes_key: Option<String>,
    /// A cipher already built, used instead of one from [`Target::aes_key`] and
    /// [`Target::appid`]: a third-party platform's authorizer is played with the component's
    /// key, its envelopes sealed for the component appid (their ReceiveId), not its own.
    pub cipher: Option<Cipher>,
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
    /// Accept any TLS certificate (a staging server with a self-signed one).
    pub insecure: bool,
}

impl Target {
    /// A plain-mode target with WeChat's timeout and tries.
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: token.into(),
            kind: Kind::OfficialAccount,
            appid: None,
            agentid: None,
            format: Format::Xml,
            aes_key: None,
            cipher: None,
            mode: Mode::Plain,
            openid: DEFAULT_OPENID.into(),
            account: DEFAULT_ACCOUNT.into(),
            timeout: WECHAT_TIMEOUT,
            tries: WECHAT_TRIES,
            insecure: false,
        }
    }

    /// The schedule of this target's deliveries.
    pub fn schedule(&self) -> Schedule {
        Schedule { timeout: self.timeout, tries: self.tries }
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
    /// The server's TLS certificate was refused.
    Tls {
        /// The TLS error.
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

/// How many characters of a server's reason (the first line of a non-2xx body) are shown.
const REASON_CHARS: usize = 120;

impl Exchange {
    /// A one-line account of the exchange; for a non-2xx answer it ends with the first line
    /// of the body (truncated), the server's own reason.
    pub fn describe(&self, timeout: Duration) -> String {
        match self {
            Self::Timeout => format!("no answer within {}", fmt_duration(timeout)),
            Self::Connect { error } => format!("connection failed: {error}"),
            Self::Tls { error } if error.to_ascii_lowercase().contains("certificate") => format!(
                "TLS failed: {error} (the server's certificate is not trusted; for a staging server with a \
                 self-signed certificate, add --insecure)"
            ),
            Self::Tls { error } => format!("TLS failed: {error} (does the server speak HTTPS on that port?)"),
            Self::Http { status, body, .. } => match self.server_reason() {
                Some(reason) => format!("HTTP {status}, {} bytes: {reason}", body.len()),
                None => format!("HTTP {status}, {} bytes", body.len()),
            },
        }
    }

    /// The first non-empty line of a non-2xx answer's body, truncated: what the server says
    /// is wrong (`token 验证失败`).
    pub fn server_reason(&self) -> Option<String> {
        let Self::Http { status, body, .. } = self else { return None };
        if (200..300).contains(status) {
            return None;
        }
        let line = body.lines().map(str::trim).find(|l| !l.is_empty())?;
        let mut reason: String = line.chars().take(REASON_CHARS).collect();
        if line.chars().count() > REASON_CHARS || body.trim().lines().nth(1).is_some() {
            reason.push('…');
        }
        Some(reason)
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
    /// When the try started, from the first try's start.
    #[serde(rename = "started_ms", serialize_with = "ser_ms")]
    pub started: Duration,
    /// Time to the answer (or to the failure).
    #[serde(rename = "elapsed_ms", serialize_with = "ser_ms")]
    pub elapsed: Duration,
    /// What happened.
    pub exchange: Exchange,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// WeChat's verdict on a delivery: the reply the user sees, or the error banner and why.
/// (Serialized under the tag `outcome`, as `--json` has always printed it.)
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum DeliveryVerdict {
    /// The server answered with a passive reply (or `success`/empty for no reply).
    Reply {
        /// The decoded reply.
        message: ReplyMessage,
        /// Whether it came encrypted.
        encrypted: bool,
        /// The reply XML (decrypted).
        xml: String,
        /// What WeChat refuses about it; non-empty means the user sees the error banner.
        problems: Vec<Problem>,
        /// What deviates from the docs although WeChat shows the reply.
        warnings: Vec<Problem>,
    },
    /// No usable answer: the user sees the error banner.
    Failed {
        /// Why, in English.
        reason: String,
        /// What kind of failure, for words in another language (not in the JSON).
        #[serde(skip)]
        cause: FailCause,
    },
}

/// What kind of failure a [`DeliveryVerdict::Failed`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailCause {
    /// The request could not be signed or encrypted (an unusable key).
    Unsigned {
        /// Why, in English.
        error: String,
    },
    /// No try got a 2xx answer (timeouts, failed connections, error statuses).
    NoAnswer {
        /// How many tries were made.
        tries: usize,
    },
    /// A 2xx answer that is not a usable reply, and why.
    Unreadable(Unreadable),
}

impl DeliveryVerdict {
    /// Whether the user would see [`ERROR_BANNER`].
    pub fn user_sees_error(&self) -> bool {
        match self {
            Self::Reply { problems, .. } => !problems.is_empty(),
            Self::Failed { .. } => true,
        }
    }

    /// Every reason the delivery failed, empty on success.
    pub fn failures(&self) -> Vec<String> {
        match self {
            Self::Reply { problems, .. } => problems.iter().map(ToString::to_string).collect(),
            Self::Failed { reason, .. } => vec![reason.clone()],
        }
    }

    /// What deviates from the docs but is accepted.
    pub fn warnings(&self) -> &[Problem] {
        match self {
            Self::Reply { warnings, .. } => warnings,
            Self::Failed { .. } => &[],
        }
    }

    /// The reply the user sees (`Reply::None` for `success`), or `None` when they see the
    /// error banner.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Self::Reply { message, problems, .. } if problems.is_empty() => Some(&message.reply),
            _ => None,
        }
    }

    /// The text of a text reply the user sees.
    pub fn text(&self) -> Option<&str> {
        match self.reply() {
            Some(Reply::Text { content }) => Some(content),
            _ => None,
        }
    }

    /// Whether the answer came encrypted.
    pub fn encrypted(&self) -> bool {
        matches!(self, Self::Reply { encrypted: true, .. })
    }
}

/// A message delivered the way WeChat delivers it.
#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    /// The mode used.
    pub mode: Mode,
    /// The message XML (before encryption).
    pub request: String,
    /// The signed request as posted: every try posts it unchanged.
    #[serde(skip)]
    pub signed: Option<SignedRequest>,
    /// Each try.
    pub attempts: Vec<Attempt>,
    /// The verdict.
    #[serde(flatten)]
    pub outcome: DeliveryVerdict,
}

/// The platform side of a conversation with one server: the callback driver.
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
    /// [`SetupError`] when an encrypted mode lacks the appid or key, the key is invalid, the
    /// URL is not `http://` or `https://`, or the JSON data format is asked for a kind other
    /// than a Mini Program (an Official Account's and a WeCom app's callbacks are XML only).
    pub fn new(mut target: Target) -> Result<Self, SetupError> {
        // The data format is a Mini Program's choice (消息推送配置: XML or JSON); an Official
        // Account's push is XML only (its 消息推送配置: 数据格式 仅支持 XML), and so is WeCom's.
        if target.format == Format::Json && target.kind != Kind::Miniprogram {
            let kind = match target.kind {
                Kind::Wecom => "a WeCom app's",
                _ => "an Official Account's",
            };
            return Err(SetupError(format!(
                "--format json is for Mini Programs only (--kind miniprogram): {kind} callbacks are XML only"
            )));
        }
        if target.kind == Kind::Wecom {
            // WeCom encrypts every callback for the corpid, which is also the messages'
            // ToUserName and the replies' FromUserName.
            let corpid = target.appid.clone().filter(|c| !c.is_empty());
            let Some(corpid) = corpid else {
                return Err(SetupError("a WeCom app needs --corpid (the ReceiveId of its envelopes)".into()));
            };
            if target.aes_key.is_none() {
                return Err(SetupError(
                    "a WeCom app is always encrypted: give --aes-key (its EncodingAESKey)".into(),
                ));
            }
            target.account = corpid;
        }
        let mut platform = Platform::new(target.token.clone());
        match (&target.cipher, &target.aes_key, &target.appid) {
            (Some(cipher), _, _) => platform = platform.with_cipher(cipher.clone()),
            (None, Some(key), appid) => {
                let appid = appid.clone().unwrap_or_default();
                if target.mode.is_encrypted() && appid.is_empty() {
                    return Err(SetupError(format!("{} mode needs --appid", target.mode)));
                }
                let cipher = Cipher::new(key, &appid)
                    .map_err(|e| SetupError(format!("--aes-key is not a valid EncodingAESKey: {e}")))?;
                platform = platform.with_cipher(cipher);
            }
            (None, None, _) if target.mode.is_encrypted() => {
                return Err(SetupError(format!("{} mode needs --aes-key and --appid", target.mode)));
            }
            (None, None, _) => {}
        }
        if !(target.url.starts_with("http://") || target.url.starts_with("https://")) {
            return Err(SetupError(format!("{:?} is not an http:// or https:// URL", target.url)));
        }
        let client = reqwest::Client::builder()
            .timeout(target.timeout)
            .connect_timeout(target.timeout)
            .danger_accept_invalid_certs(target.insecure)
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

    /// A copy playing another user.
    #[must_use]
    pub fn with_openid(&self, openid: impl Into<String>) -> Self {
        let mut sim = self.clone();
        sim.target.openid = openid.into();
        sim
    }

    /// A copy on another schedule (short timeouts keep real-time tests fast).
    #[must_use]
    pub fn with_schedule(&self, schedule: Schedule) -> Self {
        let mut sim = self.clone();
        sim.target.timeout = schedule.timeout;
        sim.target.tries = schedule.tries;
        sim
    }

    /// The header of a message from the user to the account, now (a WeCom message to the
    /// corpid, with the app's AgentID).
    pub fn header(&self) -> Header {
        Header {
            to: self.target.account.clone(),
            from: self.target.openid.clone(),
            create_time: now_secs(),
            agent_id: if self.target.kind == Kind::Wecom { self.target.agentid.clone() } else { None },
        }
    }

    /// Builds `message` from the user, now, with a fresh MsgId (events carry none).
    pub fn build(&self, message: &Message) -> Incoming {
        message.build(self.header(), random_msg_id())
    }

    /// Builds `message` (as [`Simulator::build`]) and delivers it.
    pub async fn send(&self, message: &Message) -> Delivery {
        self.deliver(&self.build(message)).await
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
            let content_type = if Document::looks_like_json(&body) { "application/json" } else { "text/xml" };
            self.client.post(url).header("content-type", content_type).body(body)
        };
        let exchange = match tokio::time::timeout(self.target.timeout, send(req)).await {
            Err(_) => Exchange::Timeout,
            Ok(result) => result,
        };
        Attempt { number: 1, started: Duration::ZERO, elapsed: start.elapsed(), exchange }
    }

    /// Signs `xml` in this simulator's mode with a fresh timestamp and nonce.
    ///
    /// # Errors
    /// When the mode is encrypted and `xml` cannot be encrypted or copied.
    pub fn sign(&self, xml: &str) -> Result<SignedRequest, wemp_proto::Error> {
        self.sign_at(xml, &now_secs().to_string(), &random_nonce(), rand::rng().random())
    }

    /// Signs `xml` as this target's kind of account receives it, with the given timestamp,
    /// nonce and encryption randomness: a WeCom app's safe-mode post (`msg_signature` only,
    /// the envelope with the corpid and AgentID), a Mini Program's JSON push when its format
    /// is JSON, else an Official Account's post in this simulator's mode. A WeCom target in
    /// another mode signs as an Official Account would: a request WeCom never sends, which
    /// its server must refuse.
    ///
    /// # Errors
    /// When the mode is encrypted and `xml` cannot be encrypted or copied.
    pub fn sign_at(
        &self,
        xml: &str,
        timestamp: &str,
        nonce: &str,
        random: [u8; 16],
    ) -> Result<SignedRequest, wemp_proto::Error> {
        let t = &self.target;
        match t.kind {
            Kind::Wecom if t.mode == Mode::Safe => {
                self.platform.wecom_post(xml, t.agentid.as_deref(), timestamp, nonce, random)
            }
            Kind::Miniprogram if t.format == Format::Json => {
                self.platform.post_json(t.mode, xml, &t.openid, &t.account, timestamp, nonce, random)
            }
            _ => self.platform.post(t.mode, xml, &t.openid, &t.account, timestamp, nonce, random),
        }
    }

    /// The URL verification GET for `echostr` as this kind of account receives it: an
    /// Official Account's and a Mini Program's plain `echostr` signed with `signature`, a
    /// WeCom app's encrypted `echostr` signed with `msg_signature`.
    ///
    /// # Errors
    /// A WeCom target without a cipher (which [`Simulator::new`] refuses).
    pub fn verification(
        &self,
        timestamp: &str,
        nonce: &str,
        echostr: &str,
    ) -> Result<SignedRequest, wemp_proto::Error> {
        if self.target.kind == Kind::Wecom {
            return self.platform.wecom_verification(timestamp, nonce, echostr, rand::rng().random());
        }
        Ok(self.platform.verification(timestamp, nonce, echostr))
    }

    /// Delivers a message as WeChat does: signed once, then up to `tries` tries of that same
    /// request (a timeout, a failed connection or a non-2xx status counts as a failed try),
    /// then judges the answer.
    pub async fn deliver(&self, incoming: &Incoming) -> Delivery {
        self.deliver_xml(&incoming.to_xml(), !incoming.is_event()).await
    }

    /// As [`Simulator::deliver`], for XML that is already written.
    pub async fn deliver_xml(&self, xml: &str, answering_message: bool) -> Delivery {
        let signed = match self.sign(xml) {
            Ok(signed) => signed,
            Err(e) => {
                return Delivery {
                    mode: self.target.mode,
                    request: xml.to_owned(),
                    signed: None,
                    attempts: Vec::new(),
                    outcome: DeliveryVerdict::Failed {
                        reason: format!("cannot sign the request: {e}"),
                        cause: FailCause::Unsigned { error: e.to_string() },
                    },
                };
            }
        };
        let query = signed.query_string();
        let tries = self
            .target
            .schedule()
            .run(
                |_| self.exchange(false, &query, signed.body.clone()),
                |a: &Attempt| a.exchange.success_body().is_some(),
            )
            .await;
        let mut attempts = Vec::new();
        let mut outcome = None;
        for t in tries {
            let mut attempt = t.result.unwrap_or(Attempt {
                number: 0,
                started: Duration::ZERO,
                elapsed: t.took,
                exchange: Exchange::Timeout,
            });
            attempt.number = t.number;
            attempt.started = t.started;
            if let Some(body) = attempt.exchange.success_body() {
                outcome = Some(self.judge(body, answering_message));
            }
            attempts.push(attempt);
        }
        let outcome = outcome.unwrap_or_else(|| {
            let last = attempts.last().map(|a| a.exchange.describe(self.target.timeout)).unwrap_or_default();
            DeliveryVerdict::Failed {
                reason: format!("all {} tries failed (last: {last})", attempts.len()),
                cause: FailCause::NoAnswer { tries: attempts.len() },
            }
        });
        Delivery { mode: self.target.mode, request: xml.to_owned(), signed: Some(signed), attempts, outcome }
    }

    /// Judges a 2xx body as WeChat would.
    pub fn judge(&self, body: &str, answering_message: bool) -> DeliveryVerdict {
        let opened = match self.platform.open_reply(body) {
            Ok(opened) => opened,
            Err(e) => {
                let why = judge::unreadable(&e, body);
                return DeliveryVerdict::Failed {
                    reason: why.to_string(),
                    cause: FailCause::Unreadable(why),
                };
            }
        };
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        if opened.message.header.is_some() {
            problems.extend(judge::mode_problems(self.target.mode, opened.encrypted));
        }
        if self.target.kind == Kind::Miniprogram
            && opened.message.header.is_some()
            && !matches!(opened.message.reply, Reply::TransferCustomerService { .. })
        {
            warnings.push(Problem::MiniprogramPassive);
        }
        let verdict = judge::reply(
            &opened.message,
            &self.target.openid,
            &self.target.account,
            answering_message,
            now_secs(),
        );
        problems.extend(verdict.problems);
        warnings.extend(verdict.warnings);
        DeliveryVerdict::Reply {
            message: opened.message,
            encrypted: opened.encrypted,
            xml: opened.xml,
            problems,
            warnings,
        }
    }

    /// Performs the URL verification GET and judges the answer.
    ///
    /// A WeCom app gets the `echostr` encrypted and must answer the plaintext; a server that
    /// echoes the encrypted text back is told so.
    pub async fn verify(&self, echostr: &str) -> VerifyReport {
        let req = match self.verification(&now_secs().to_string(), &random_nonce(), echostr) {
            Ok(req) => req,
            Err(e) => {
                let problem = VerifyProblem::Unsigned { error: e.to_string() };
                let attempt = Attempt {
                    number: 1,
                    started: Duration::ZERO,
                    elapsed: Duration::ZERO,
                    exchange: Exchange::Connect { error: problem.to_string() },
                };
                return VerifyReport { ok: false, attempt, problems: vec![problem], warnings: Vec::new() };
            }
        };
        let attempt = self.exchange(true, &req.query_string(), String::new()).await;
        let mut report = judge_verification(echostr, &attempt, self.target.timeout);
        let encrypted = req.param("echostr").filter(|e| *e != echostr);
        if let (Some(encrypted), Some(body)) = (encrypted, attempt.exchange.success_body())
            && body.trim() == encrypted
        {
            report.problems = vec![VerifyProblem::EchoedEncrypted];
            report.ok = false;
        }
        report
    }
}

async fn send(req: reqwest::RequestBuilder) -> Exchange {
    let resp = match req.send().await {
        Ok(resp) => resp,
        Err(e) if e.is_timeout() => return Exchange::Timeout,
        Err(e) => {
            // The URL carries the signature and nonce: long, and said elsewhere.
            let error = error_chain(&e.without_url());
            return if is_tls_error(&error) { Exchange::Tls { error } } else { Exchange::Connect { error } };
        }
    };
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    match resp.text().await {
        Ok(body) => Exchange::Http { status, content_type, body },
        Err(e) if e.is_timeout() => Exchange::Timeout,
        Err(e) => Exchange::Connect { error: format!("reading the body: {}", error_chain(&e)) },
    }
}

/// Whether a connection error happened in TLS: a certificate the client refused, or a peer
/// that does not speak TLS (rustls's words for both).
fn is_tls_error(chain: &str) -> bool {
    let lower = chain.to_ascii_lowercase();
    ["certificate", "tls", "handshake", "corrupt message", "unknownissuer"].iter().any(|w| lower.contains(w))
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

/// The verdict on a URL verification.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// Whether WeChat would accept the server.
    pub ok: bool,
    /// The exchange.
    pub attempt: Attempt,
    /// Why WeChat would refuse it.
    pub problems: Vec<VerifyProblem>,
    /// What is odd but accepted.
    pub warnings: Vec<VerifyProblem>,
}

/// Why WeChat would refuse a URL verification (or, for [`VerifyProblem::ContentType`], what
/// is odd but accepted). `Display` words it in English; serialized, it is that string.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyProblem {
    /// The request could not be signed.
    Unsigned {
        /// Why, in English.
        error: String,
    },
    /// No answer, or the connection failed.
    Unreachable {
        /// The exchange.
        exchange: Exchange,
        /// The timeout it had.
        timeout: Duration,
    },
    /// TLS failed.
    Tls {
        /// The exchange.
        exchange: Exchange,
        /// The timeout it had.
        timeout: Duration,
    },
    /// A status other than 200.
    WrongStatus {
        /// The status.
        status: u16,
        /// The server's reason (the first line of the body), if any.
        said: Option<String>,
    },
    /// echostr with whitespace around it.
    Whitespace {
        /// The body.
        body: String,
    },
    /// echostr in quotes.
    Quoted {
        /// The body, trimmed.
        body: String,
    },
    /// echostr wrapped in XML.
    InXml,
    /// echostr wrapped in JSON.
    InJson,
    /// echostr with other text.
    Extra {
        /// The body's first 80 characters.
        snippet: String,
    },
    /// Something else than echostr (`None`: an empty body).
    Mismatch {
        /// The body's first 80 characters.
        snippet: Option<String>,
    },
    /// A WeCom app echoed the encrypted echostr.
    EchoedEncrypted,
    /// A warning: the Content-Type is not text/plain.
    ContentType {
        /// The Content-Type.
        content_type: String,
    },
}

impl VerifyProblem {
    /// The kind, for words in another language: `unsigned`, `unreachable`, `tls`,
    /// `wrong-status`, `whitespace`, `quoted`, `in-xml`, `in-json`, `extra`, `mismatch`,
    /// `echoed-encrypted`, `content-type`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unsigned { .. } => "unsigned",
            Self::Unreachable { .. } => "unreachable",
            Self::Tls { .. } => "tls",
            Self::WrongStatus { .. } => "wrong-status",
            Self::Whitespace { .. } => "whitespace",
            Self::Quoted { .. } => "quoted",
            Self::InXml => "in-xml",
            Self::InJson => "in-json",
            Self::Extra { .. } => "extra",
            Self::Mismatch { .. } => "mismatch",
            Self::EchoedEncrypted => "echoed-encrypted",
            Self::ContentType { .. } => "content-type",
        }
    }
}

impl std::fmt::Display for VerifyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unsigned { error } => write!(f, "cannot sign the request: {error}"),
            Self::Unreachable { exchange, timeout } => {
                write!(f, "{} — is the server running at that URL?", exchange.describe(*timeout))
            }
            Self::Tls { exchange, timeout } => f.write_str(&exchange.describe(*timeout)),
            Self::WrongStatus { status, said } => {
                let hint = match status {
                    404 => " (wrong path? the URL must be the callback path exactly)",
                    401 | 403 => " (the server refused the signature: does its Token match --token?)",
                    405 => " (the server does not answer GET on this path)",
                    s if *s >= 500 => " (the server failed)",
                    _ => "",
                };
                let said = said.as_ref().map(|r| format!("; it said: {r}")).unwrap_or_default();
                write!(f, "wrong status: HTTP {status}, WeChat needs 200{hint}{said}")
            }
            Self::Whitespace { body } => {
                write!(f, "the body has whitespace around echostr ({body:?}); answer exactly the echostr value")
            }
            Self::Quoted { body } => {
                write!(f, "echostr is quoted ({body}); answer the bare value as text/plain, not a JSON string")
            }
            Self::InXml => f.write_str("echostr is wrapped in XML; answer the bare value as text/plain"),
            Self::InJson => f.write_str("echostr is wrapped in JSON; answer the bare value as text/plain"),
            Self::Extra { snippet } => write!(
                f,
                "the body contains echostr but also other text ({snippet:?}); answer exactly the echostr value"
            ),
            Self::Mismatch { snippet } => {
                let what = snippet.as_ref().map_or_else(|| "an empty body".to_owned(), |s| format!("{s:?}"));
                write!(
                    f,
                    "the server answered {what} instead of echostr: most likely a wrong token or a wrong \
                     signature computation (sha1 of token, timestamp and nonce sorted and joined)"
                )
            }
            Self::EchoedEncrypted => f.write_str(
                "the server echoed the encrypted echostr: a WeCom app must check msg_signature, decrypt echostr \
                 with the EncodingAESKey and answer the plaintext",
            ),
            Self::ContentType { content_type } => {
                write!(f, "Content-Type is {content_type:?}, not text/plain (WeChat only reads the body)")
            }
        }
    }
}

impl Serialize for VerifyProblem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Judges the answer to a verification GET with `echostr`.
pub fn judge_verification(echostr: &str, attempt: &Attempt, timeout: Duration) -> VerifyReport {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let exchange = attempt.exchange.clone();
    match &attempt.exchange {
        Exchange::Timeout | Exchange::Connect { .. } => {
            problems.push(VerifyProblem::Unreachable { exchange, timeout });
        }
        Exchange::Tls { .. } => problems.push(VerifyProblem::Tls { exchange, timeout }),
        Exchange::Http { status, content_type, body } => {
            let trimmed = body.trim();
            let snippet = || trimmed.chars().take(80).collect::<String>();
            if *status != 200 {
                problems.push(VerifyProblem::WrongStatus {
                    status: *status,
                    said: attempt.exchange.server_reason(),
                });
            }
            if body == echostr {
                if let Some(ct) = content_type
                    && !ct.trim_start().to_ascii_lowercase().starts_with("text/plain")
                {
                    warnings.push(VerifyProblem::ContentType { content_type: ct.clone() });
                }
            } else if trimmed == echostr {
                problems.push(VerifyProblem::Whitespace { body: body.clone() });
            } else if trimmed == format!("\"{echostr}\"") || trimmed == format!("'{echostr}'") {
                problems.push(VerifyProblem::Quoted { body: trimmed.to_owned() });
            } else if trimmed.starts_with('<') && trimmed.contains(echostr) {
                problems.push(VerifyProblem::InXml);
            } else if (trimmed.starts_with('{') || trimmed.starts_with('[')) && trimmed.contains(echostr) {
                problems.push(VerifyProblem::InJson);
            } else if trimmed.contains(echostr) {
                problems.push(VerifyProblem::Extra { snippet: snippet() });
            } else if *status == 200 {
                let snippet = (!trimmed.is_empty()).then(snippet);
                problems.push(VerifyProblem::Mismatch { snippet });
            }
        }
    }
    VerifyReport { ok: problems.is_empty(), attempt: attempt.clone(), problems, warnings }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn answered(status: u16, content_type: &str, body: &str) -> Attempt {
        Attempt {
            number: 1,
            started: Duration::ZERO,
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
        assert!(html.warnings[0].to_string().contains("not text/plain"));
        assert!(judge(200, "application/json", "\"12345\"").problems[0].to_string().contains("quoted"));
        assert!(
            judge(200, "text/xml", "<xml><echostr>12345</echostr></xml>").problems[0]
                .to_string()
                .contains("XML")
        );
        assert!(
            judge(200, "application/json", "{\"echostr\":\"12345\"}").problems[0]
                .to_string()
                .contains("JSON")
        );
        assert!(judge(200, "text/plain", "12345\n").problems[0].to_string().contains("whitespace"));
        assert!(judge(200, "text/plain", "").problems[0].to_string().contains("wrong token"));
        let forbidden = judge(403, "text/plain", "");
        assert!(forbidden.problems[0].to_string().contains("HTTP 403"), "{forbidden:?}");
        assert!(forbidden.problems[0].to_string().contains("Token"));
        let timeout = Attempt {
            number: 1,
            started: Duration::ZERO,
            elapsed: WECHAT_TIMEOUT,
            exchange: Exchange::Timeout,
        };
        let report = judge_verification("1", &timeout, WECHAT_TIMEOUT);
        assert!(report.problems[0].to_string().contains("no answer within 5s"));
        let tls = Attempt {
            exchange: Exchange::Tls { error: "invalid peer certificate: UnknownIssuer".into() },
            ..timeout
        };
        let report = judge_verification("1", &tls, WECHAT_TIMEOUT);
        assert!(report.problems[0].to_string().contains("UnknownIssuer"), "{report:?}");
        assert!(report.problems[0].to_string().contains("--insecure"), "{report:?}");
        assert!(!report.problems[0].to_string().contains("is the server running"), "{report:?}");
    }

    #[test]
    fn the_servers_reason_is_its_first_line_truncated() {
        let said = judge(403, "text/plain", "token 验证失败\nsecond line");
        assert!(said.problems[0].to_string().ends_with("it said: token 验证失败…"), "{said:?}");
        let long = "x".repeat(500);
        let e = answered(500, "text/plain", &long).exchange;
        assert_eq!(e.describe(WECHAT_TIMEOUT), format!("HTTP 500, 500 bytes: {}…", "x".repeat(REASON_CHARS)));
        assert_eq!(answered(200, "text/plain", "fine").exchange.server_reason(), None);
        assert_eq!(answered(404, "text/plain", " \n").exchange.describe(WECHAT_TIMEOUT), "HTTP 404, 2 bytes");
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

    #[tokio::test]
    async fn the_schedule_abandons_slow_tries_and_stops_at_a_settled_one() {
        let schedule = Schedule { timeout: Duration::from_millis(30), tries: 3 };
        let tries = schedule
            .run(
                |number| async move {
                    if number < 3 {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                    number
                },
                |_| true,
            )
            .await;
        let results: Vec<_> = tries.iter().map(|t| (t.number, t.result)).collect();
        assert_eq!(results, [(1, None), (2, None), (3, Some(3))]);
        assert!(tries[1].started >= Duration::from_millis(30), "{tries:?}");

        let tries = schedule.run(|number| async move { number }, |n| *n == 2).await;
        assert_eq!(tries.iter().map(|t| t.result).collect::<Vec<_>>(), [Some(1), Some(2)]);
        let once = Schedule { timeout: Duration::from_millis(30), tries: 0 };
        assert_eq!(once.run(|n| async move { n }, |_| false).await.len(), 1);
    }

    /// WeChat's retries repeat the same signed request (docs/protocol.md §3): the query
    /// (signature, timestamp, nonce, msg_signature) and the body — the same MsgId, the same
    /// ciphertext — are byte for byte the first try's.
    #[tokio::test]
    async fn every_retry_is_the_same_signed_request() {
        let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let kept = seen.clone();
        let app = axum::Router::new().route(
            "/wechat",
            axum::routing::post(move |uri: axum::http::Uri, body: String| {
                let kept = kept.clone();
                async move {
                    let mut kept = kept.lock().unwrap();
                    kept.push((uri.query().unwrap_or_default().to_owned(), body));
                    if kept.len() < 3 {
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "busy")
                    } else {
                        (axum::http::StatusCode::OK, "success")
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut target = Target::new(format!("http://{addr}/wechat"), "t0ken");
        target.appid = Some("wx2c2769f8efd9abc2".into());
        target.aes_key = Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into());
        target.mode = Mode::Safe;
        let sim = Simulator::new(target).unwrap();
        let d = sim.send(&Message::Text { content: "retry me".into() }).await;
        assert_eq!(d.attempts.len(), 3, "{d:?}");
        assert_eq!(d.outcome.reply(), Some(&Reply::None), "{d:?}");
        assert!(d.attempts[0].exchange.describe(WECHAT_TIMEOUT).ends_with(": busy"), "{d:?}");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3);
        assert!(seen[0].0.contains("msg_signature="), "{seen:?}");
        assert!(seen.iter().all(|s| *s == seen[0]), "a retry differs from the first try: {seen:?}");
        let signed = d.signed.expect("signed");
        assert_eq!(seen[0].0, signed.query_string());
        let opened = sim
            .platform()
            .cipher()
            .unwrap()
            .decrypt(&wemp_proto::Envelope::parse(&seen[2].1).unwrap().encrypt);
        let Ok(Incoming::Text(text)) = Incoming::parse(&opened.unwrap()) else { panic!("not a text") };
        assert!(d.request.contains(&format!("<MsgId>{}</MsgId>", text.id)), "{}", d.request);
    }
}
