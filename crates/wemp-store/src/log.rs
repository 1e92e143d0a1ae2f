//! The message log, and the one record of a handled request it keeps: [`DeliveryRecord`].
//!
//! The server emits a [`DeliveryRecord`] for every request it handles (`wemp-server`'s
//! observers), every backend stores it as it is, the console shows it and `wemp log` prints
//! it. One entry stands for one message: later deliveries of the same message (WeChat's
//! retries, on this instance or another) are folded into it by [`merge`] when the log is
//! read, so [`DeliveryRecord::attempts`] counts them; rejected requests are entries of their
//! own.

use std::borrow::Cow;
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use wemp_proto::{Incoming, Mode, ReferenceCode, RejectReason};

use crate::Result;

mod arrival;

pub use arrival::{RequestHeaders, RequestQuery, SharedText};

/// WeChat abandons a try after this long (and retries the message, up to three tries).
pub const WECHAT_TIMEOUT: Duration = Duration::from_secs(5);

/// How dedup classified a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DedupOutcome {
    /// The first delivery of the message: it ran the handler.
    New = 0,
    /// A retry that arrived while the handler ran, and waited for its reply.
    Joined = 1,
    /// A retry after the handler finished: the stored reply was sent again.
    Cached = 2,
}

impl DedupOutcome {
    /// `new`, `joined` or `cached`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Joined => "joined",
            Self::Cached => "cached",
        }
    }
}

/// What happened to a late reply (one that missed the passive-reply deadline, or was
/// deferred): the late-reply sink's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SinkOutcome {
    /// Sent to the user.
    Delivered,
    /// The user has not interacted within 48 hours (errcode 45015): customer-service
    /// messages are not allowed.
    WindowExpired,
    /// Customer-service message quota or rate exceeded (errcode 45047).
    QuotaExceeded,
    /// The sink cannot carry this kind of reply (e.g. transfer to customer service).
    Unsupported,
    /// Only logged; not sent anywhere.
    Logged,
    /// Another failure (errcode when the API gave one).
    Failed {
        /// The platform's `errcode`, if any.
        errcode: Option<i64>,
        /// A description (never containing a credential).
        message: String,
    },
}

impl SinkOutcome {
    /// Maps a platform `errcode` (0 is success).
    pub fn from_errcode(errcode: i64, errmsg: impl Into<String>) -> Self {
        match errcode {
            0 => Self::Delivered,
            45015 => Self::WindowExpired,
            45047 => Self::QuotaExceeded,
            _ => Self::Failed { errcode: Some(errcode), message: errmsg.into() },
        }
    }

    /// A short label, used in metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::WindowExpired => "window_expired",
            Self::QuotaExceeded => "quota_exceeded",
            Self::Unsupported => "unsupported",
            Self::Logged => "logged",
            Self::Failed { .. } => "failed",
        }
    }
}

impl std::fmt::Display for SinkOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Delivered => f.write_str("delivered"),
            Self::WindowExpired => f.write_str("48-hour customer-service window expired (45015)"),
            Self::QuotaExceeded => f.write_str("customer-service quota exceeded (45047)"),
            Self::Unsupported => f.write_str("reply type cannot be sent as a customer-service message"),
            Self::Logged => f.write_str("logged only"),
            Self::Failed { errcode: Some(c), message } => write!(f, "failed ({c}): {message}"),
            Self::Failed { errcode: None, message } => write!(f, "failed: {message}"),
        }
    }
}

/// What became of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecordOutcome {
    /// Answered on the HTTP response: [`DeliveryRecord::reply_xml`] holds the reply (plain
    /// XML before encryption) or `success`.
    Answered,
    /// The handler failed or panicked; answered per the server's error policy
    /// ([`DeliveryRecord::error`] says why).
    HandlerError,
    /// The budget ran out (or the handler deferred): `success` was answered. When this
    /// delivery ran the handler, a [`RecordOutcome::Late`] record follows.
    Deadline,
    /// The follow-up of a [`RecordOutcome::Deadline`] record: the handler's reply went to
    /// the late sink with this result (`None`: the handler ended without a reply, so
    /// nothing was sent). Read back from the log, the message's entry ends this way.
    Late {
        /// The sink's result.
        sink: Option<SinkOutcome>,
    },
    /// The caller hung up (WeChat's timeout, a proxy's, a closed connection) before the
    /// server answered an admitted message: nothing went out ([`DeliveryRecord::status`]
    /// 0; [`DeliveryRecord::latency`] is how long the caller waited). A handler still
    /// running goes on: its reply waits in the reply cache for WeChat's retry (which then
    /// folds into this entry), or goes to the late sink at the deadline (a
    /// [`RecordOutcome::Late`] record follows).
    HungUp,
    /// A URL verification (GET) succeeded.
    Verified,
    /// The request was refused ([`DeliveryRecord::rejection`] says why).
    Rejected,
}

impl RecordOutcome {
    /// The labels of the outcomes a request ends with (all but [`RecordOutcome::Late`], the
    /// follow-up of a deadline), as [`label`](Self::label) gives them: the values of the
    /// `outcome` label of `wemp_requests_total`.
    pub const REQUEST_LABELS: [&'static str; 6] =
        ["answered", "handler_error", "deadline", "hung_up", "verified", "rejected"];

    /// A short label: `answered`, `handler_error`, `deadline`, `late:<sink label>`
    /// (`late:none` without a reply), `hung_up`, `verified`, `rejected`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::HandlerError => "handler_error",
            Self::Deadline => "deadline",
            Self::Late { sink: None } => "late:none",
            Self::Late { sink: Some(s) } => match s {
                SinkOutcome::Delivered => "late:delivered",
                SinkOutcome::WindowExpired => "late:window_expired",
                SinkOutcome::QuotaExceeded => "late:quota_exceeded",
                SinkOutcome::Unsupported => "late:unsupported",
                SinkOutcome::Logged => "late:logged",
                SinkOutcome::Failed { .. } => "late:failed",
            },
            Self::HungUp => "hung_up",
            Self::Verified => "verified",
            Self::Rejected => "rejected",
        }
    }
}

/// Why a request was refused: the same facts as the 4xx answer and the `warn` log line.
/// Never holds a token, key or signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectionRecord {
    /// The reason, as counted in metrics.
    pub reason: RejectReason,
    /// The reference implementation's code (`-40001` …), when one applies.
    pub code: Option<i32>,
    /// The parameter at fault (`msg_signature`, `timestamp`, `Encrypt`, `body` …).
    pub param: Cow<'static, str>,
    /// The one-line diagnostic.
    pub message: String,
}

impl RejectionRecord {
    /// The short name of [`code`](Self::code) (`bad signature` …), as [`ReferenceCode::name`].
    pub fn code_name(&self) -> Option<&'static str> {
        self.code.and_then(ReferenceCode::from_code).map(ReferenceCode::name)
    }
}

/// Where a forwarded message went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ForwardTarget {
    /// The app's URL (any password in it left out).
    Url {
        /// The URL.
        url: String,
    },
    /// A relay client connected to the server (`wemp relay`).
    Relay,
}

impl std::fmt::Display for ForwardTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Url { url } => f.write_str(url),
            Self::Relay => f.write_str("relay"),
        }
    }
}

/// How a call to the gateway app ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ForwardResult {
    /// The app answered a reply.
    Reply = 0,
    /// The app answered no reply (`{"reply": null}`, `204` or an empty body).
    NoReply = 1,
    /// The app answered a status other than 200 or 204.
    AppError = 2,
    /// The app's answer is not `{"reply": …}`.
    BadAnswer = 3,
    /// The app could not be reached or did not answer in time.
    Unreachable = 4,
}

impl ForwardResult {
    /// Every result, in the order of their discriminants.
    pub const ALL: [Self; 5] =
        [Self::Reply, Self::NoReply, Self::AppError, Self::BadAnswer, Self::Unreachable];

    /// `reply`, `no_reply`, `app_error`, `bad_answer` or `unreachable`.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Reply => "reply",
            Self::NoReply => "no_reply",
            Self::AppError => "app_error",
            Self::BadAnswer => "bad_answer",
            Self::Unreachable => "unreachable",
        }
    }
}

/// A call to the gateway app for the message (`wemp serve --forward`): what was sent and
/// what came back. Never holds the forward secret (nor the signature made with it).
///
/// The texts are bounded: [`sent`](Self::sent) and [`answer`](Self::answer) keep at most
/// [`ForwardRecord::TEXT_LIMIT`] bytes (cut at a character boundary); the sizes say how
/// long they were.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ForwardRecord {
    /// Where it went.
    pub target: ForwardTarget,
    /// How it ended.
    pub result: ForwardResult,
    /// The JSON body sent (bounded).
    pub sent: String,
    /// The size of the JSON body sent, in bytes.
    pub sent_bytes: u64,
    /// The app's HTTP status (`None` when it gave none: unreachable, timed out).
    pub status: Option<u16>,
    /// The app's answer as received (bounded), when it gave one.
    pub answer: Option<String>,
    /// The size of the answer read, in bytes.
    #[serde(default)]
    pub answer_bytes: u64,
    /// Time from sending to the end of the answer (or the failure).
    #[serde(rename = "latency_us", with = "micros")]
    pub latency: Duration,
    /// What went wrong, in one line.
    pub error: Option<String>,
}

impl ForwardRecord {
    /// The most bytes of the JSON sent and of the answer kept.
    pub const TEXT_LIMIT: usize = 16 * 1024;

    /// A call to `target` that sent `sent` and ended with `result` after `latency`; no
    /// status, answer or error yet.
    pub fn new(target: ForwardTarget, result: ForwardResult, sent: &[u8], latency: Duration) -> Self {
        Self {
            target,
            result,
            sent: bounded(sent),
            sent_bytes: sent.len() as u64,
            status: None,
            answer: None,
            answer_bytes: 0,
            latency,
            error: None,
        }
    }

    /// Keeps `answer` (bounded) as the app's answer.
    pub fn set_answer(&mut self, answer: &[u8]) {
        self.answer = Some(bounded(answer));
        self.answer_bytes = answer.len() as u64;
    }

    /// Whether [`sent`](Self::sent) or [`answer`](Self::answer) was cut.
    pub fn truncated(&self) -> bool {
        self.sent.len() as u64 != self.sent_bytes
            || self.answer.as_ref().is_some_and(|a| a.len() as u64 != self.answer_bytes)
    }

    /// The latency in whole milliseconds.
    pub fn latency_ms(&self) -> u64 {
        u64::try_from(self.latency.as_millis()).unwrap_or(u64::MAX)
    }
}

/// At most [`ForwardRecord::TEXT_LIMIT`] bytes of `bytes` as text (lossy UTF-8, cut at a
/// character boundary).
fn bounded(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(ForwardRecord::TEXT_LIMIT)];
    let mut text = String::from_utf8_lossy(head).into_owned();
    if head.len() < bytes.len() {
        // The cut may have split a character: drop its replacement.
        while text.ends_with('\u{fffd}') {
            text.pop();
        }
    }
    text
}

/// How a handler failed, as [`DeliveryRecord::error`] words it: its [`Display`](std::fmt::Display)
/// is that English line (what the log keeps), and [`HandlerFailure::read`] reads a stored
/// line back into its kind, for words in another language (the web console's).
///
/// ```
/// use wemp_store::HandlerFailure;
///
/// let line = HandlerFailure::Panicked { what: "index out of bounds".into() }.to_string();
/// assert_eq!(line, "handler panicked: index out of bounds");
/// assert_eq!(HandlerFailure::read(&line), HandlerFailure::Panicked { what: "index out of bounds".into() });
/// assert_eq!(HandlerFailure::read("db down").code(), "failed");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandlerFailure {
    /// The handler returned an error (its own words).
    Failed {
        /// The handler's error.
        error: String,
    },
    /// The handler panicked.
    Panicked {
        /// The panic's message.
        what: String,
    },
    /// The handler's reply cannot be sent: WeChat would refuse it as written.
    Unsendable {
        /// What is wrong with it.
        error: String,
    },
}

impl HandlerFailure {
    const PANICKED: &'static str = "handler panicked: ";
    const UNSENDABLE: &'static str = "reply cannot be sent: ";

    /// The kind: `failed`, `panicked` or `unsendable`.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Failed { .. } => "failed",
            Self::Panicked { .. } => "panicked",
            Self::Unsendable { .. } => "unsendable",
        }
    }

    /// The detail in the kind's own words: the handler's error, the panic's message, what
    /// is wrong with the reply.
    pub fn detail(&self) -> &str {
        match self {
            Self::Failed { error } | Self::Unsendable { error } => error,
            Self::Panicked { what } => what,
        }
    }

    /// The failure a stored [`DeliveryRecord::error`] line words.
    pub fn read(line: &str) -> Self {
        if let Some(what) = line.strip_prefix(Self::PANICKED) {
            Self::Panicked { what: what.to_owned() }
        } else if let Some(error) = line.strip_prefix(Self::UNSENDABLE) {
            Self::Unsendable { error: error.to_owned() }
        } else {
            Self::Failed { error: line.to_owned() }
        }
    }
}

impl std::fmt::Display for HandlerFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Failed { error } => f.write_str(error),
            Self::Panicked { what } => write!(f, "{}{what}", Self::PANICKED),
            Self::Unsendable { error } => write!(f, "{}{error}", Self::UNSENDABLE),
        }
    }
}

/// One handled request (or the late follow-up of one), as the server emits it and the
/// message log keeps it. `Clone + Serialize + Deserialize` (JSON for a live console and
/// `wemp log --json`); the server shares it as `Arc<DeliveryRecord>`.
///
/// Fields the request never got to are `None`: a request rejected for its signature has a
/// mode, its query and headers, but no message. OpenIDs are in full; shorten them where you
/// show them. In JSON, `msg_id` is a string (MsgIds exceed 2^53, where JavaScript's numbers
/// stop being exact) and `latency` is `latency_us`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeliveryRecord {
    /// Numbers the records of one server process; a [`RecordOutcome::Late`] follow-up
    /// repeats its delivery's id. (The log numbers its entries itself: 0 when read back.)
    #[serde(default)]
    pub id: u64,
    /// When the request arrived, milliseconds since the Unix epoch (system clock).
    pub received_at_ms: i64,
    /// The account's appid (or its configured name when it has none), once known; for a
    /// WeCom app with an AgentID, `corpid/agentid` (apps of one corp share the corpid).
    pub appid: Option<Arc<str>>,
    /// The sender's OpenID (`FromUserName`).
    pub openid: Option<String>,
    /// `MsgType`.
    pub msg_type: Option<Cow<'static, str>>,
    /// `Event`, for events.
    pub event: Option<Cow<'static, str>>,
    /// `MsgId`, for ordinary messages.
    #[serde(with = "id_string")]
    pub msg_id: Option<u64>,
    /// The dedup key (`<appid>:msg:<openid>:<msgid>` or `<appid>:event:…`): the deliveries
    /// of one message share it.
    pub dedup_key: Option<Arc<str>>,
    /// The mode the request arrived in.
    pub mode: Option<Mode>,
    /// How dedup classified the delivery (`None` when the dedup store failed or for
    /// requests that never got that far). Read back from the log: the first delivery's.
    pub dedup: Option<DedupOutcome>,
    /// A one-line summary ([`Incoming::summary`]).
    pub summary: Option<String>,
    /// The message as it arrived, after decryption: its XML, or a Mini Program's JSON push
    /// as the JSON it is. Kept by the server in one allocation with the query and the
    /// headers ([`DeliveryRecord::keep_arrival`]).
    pub raw_xml: Option<SharedText>,
    /// The reply sent (plain XML, before encryption) or `success`; for a
    /// [`RecordOutcome::Late`] record, the reply handed to the sink.
    pub reply_xml: Option<String>,
    /// What became of it.
    pub outcome: RecordOutcome,
    /// The HTTP status answered (0 in a late follow-up).
    pub status: u16,
    /// Time from arrival to the answer (in a late follow-up: to the sink's result).
    #[serde(rename = "latency_us", with = "micros")]
    pub latency: Duration,
    /// The router rule that handled the message (`fallback`, `none`, or the rule's
    /// matcher), when the handler ran here.
    pub handler: Option<Arc<str>>,
    /// The handler's error (or panic message), or another failure on the way.
    pub error: Option<String>,
    /// Why the request was refused, for [`RecordOutcome::Rejected`].
    pub rejection: Option<RejectionRecord>,
    /// The peer address of the connection (a proxy's, behind one: see the
    /// `X-Forwarded-For` header).
    pub peer: Option<SocketAddr>,
    /// The query string as received, read as its parameters (percent-decoded; the first of
    /// a repeated name). None of WeChat's parameters is a secret.
    #[serde(default)]
    pub query: RequestQuery,
    /// The request headers as received (names lowercase; read by name, repeated ones are
    /// joined with `, `), less `Cookie` and `Authorization`, which WeChat never sends.
    #[serde(default)]
    pub headers: RequestHeaders,
    /// How many deliveries of the message this entry stands for: 1 for one delivery;
    /// read back from the log, WeChat's retries are counted here.
    #[serde(default = "one")]
    pub attempts: u32,
    /// The checks admission made, in order ([`wemp_proto::admission::Check`]): what a
    /// diagnostics view shows instead of re-checking the request itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<wemp_proto::admission::Check>,
    /// The call to the gateway app, for a message the server forwarded (`None` for others,
    /// and for rows written before forwarding was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<Box<ForwardRecord>>,
}

const fn one() -> u32 {
    1
}

/// What is done with the cache lines a record spans when the message log's writer reads it
/// ahead of encoding it ([`DeliveryRecord::read_record_ahead`] and the steps after it).
pub(crate) trait Ahead {
    /// The cache line holding `at` is read soon.
    fn line<T>(&mut self, at: &T);

    /// Every cache line `bytes` spans: one byte in each 64, and the last.
    fn lines(&mut self, bytes: &[u8]) {
        for byte in bytes.iter().step_by(64) {
            self.line(byte);
        }
        if let Some(last) = bytes.last() {
            self.line(last);
        }
    }
}

impl Default for DeliveryRecord {
    fn default() -> Self {
        Self::new(0, 0)
    }
}

impl DeliveryRecord {
    /// An empty record numbered `id`, for a request that arrived at `received_at_ms`
    /// (outcome [`RecordOutcome::Answered`] until said otherwise, one attempt).
    pub fn new(id: u64, received_at_ms: i64) -> Self {
        Self {
            id,
            received_at_ms,
            appid: None,
            openid: None,
            msg_type: None,
            event: None,
            msg_id: None,
            dedup_key: None,
            mode: None,
            dedup: None,
            summary: None,
            raw_xml: None,
            reply_xml: None,
            outcome: RecordOutcome::Answered,
            status: 0,
            latency: Duration::ZERO,
            handler: None,
            error: None,
            rejection: None,
            peer: None,
            query: RequestQuery::default(),
            headers: RequestHeaders::default(),
            attempts: 1,
            checks: Vec::new(),
            forward: None,
        }
    }

    /// Keeps what arrived with the request: its query string `query` (as it came, without the
    /// `?`: [`RequestQuery`]), its `headers` (as [`RequestHeaders::from_pairs`] keeps them)
    /// and, when given, its message as it arrived after decryption, `raw_xml` — the three in
    /// one allocation, which each field shares ([`SharedText`]): one allocation, and one free
    /// when the record goes, where there were three. Without `raw_xml`, the record's is left
    /// as it is.
    ///
    /// ```
    /// use wemp_store::DeliveryRecord;
    ///
    /// let mut r = DeliveryRecord::new(1, 0);
    /// r.keep_arrival("nonce=1", [("Host", &b"example.com"[..])], Some("<xml/>"));
    /// assert_eq!(r.query.get("nonce").as_deref(), Some("1"));
    /// assert_eq!(r.headers.as_str(), "host: example.com\n");
    /// assert_eq!(r.raw_xml.as_deref(), Some("<xml/>"));
    /// ```
    pub fn keep_arrival<'a>(
        &mut self,
        query: &str,
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        raw_xml: Option<&str>,
    ) {
        let (query, headers, raw_xml) = arrival::keep(query, headers, raw_xml);
        self.query = query;
        self.headers = headers;
        if raw_xml.is_some() {
            self.raw_xml = raw_xml;
        }
    }

    /// Fills the message fields (sender, type, event, `MsgId`, summary) from a typed message.
    pub fn describe(&mut self, msg: &Incoming) {
        self.openid = Some(msg.header().from.clone());
        // A third-party platform's push has an InfoType, no MsgType: `component/<InfoType>`.
        match msg.info_type() {
            Some(info) => {
                self.msg_type = Some(Cow::Borrowed("component"));
                self.event = Some(Cow::Owned(info.to_owned()));
            }
            None => {
                self.msg_type = Some(msg.kind().to_cow());
                self.event = msg.event().map(|e| e.kind().to_cow());
            }
        }
        self.msg_id = msg.msg_id();
        self.summary = Some(msg.summary());
    }

    /// An empty record ([`new`](Self::new)) already shared, to be filled through
    /// [`Arc::get_mut`] before anyone else holds it: made in the allocation of a record [let
    /// go](Self::let_go) on this thread when there is one (its old contents are dropped here),
    /// else in a new `Arc`. What a server starts a request's record with: held shared while
    /// the request runs, the record takes 8 bytes of the request's future rather than its 520,
    /// and is emitted as it is.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use wemp_store::DeliveryRecord;
    ///
    /// let first = DeliveryRecord::new_shared(1, 0);
    /// let at = Arc::as_ptr(&first);
    /// DeliveryRecord::let_go(first);
    /// let mut second = DeliveryRecord::new_shared(2, 5);
    /// Arc::get_mut(&mut second).unwrap().status = 200;
    /// assert_eq!((second.id, second.received_at_ms, second.status), (2, 5, 200));
    /// assert_eq!(Arc::as_ptr(&second), at, "the first one's allocation");
    /// ```
    pub fn new_shared(id: u64, received_at_ms: i64) -> Arc<Self> {
        if let Some(mut spare) = SPARE.try_with(Cell::take).ok().flatten()
            && let Some(old) = Arc::get_mut(&mut spare)
        {
            *old = Self::new(id, received_at_ms);
            return spare;
        }
        Arc::new(Self::new(id, received_at_ms))
    }

    /// The record in `slot`, if there is one (then taken), shared: moved into the allocation
    /// of a record [let go](Self::let_go) on this thread when there is one (its old contents
    /// are dropped here), else into a new `Arc`. What a server emits a record with: the
    /// console's ring lets the records it drops go, on the thread that emits the next one,
    /// so a record a request is made without an allocation of its own.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use wemp_store::DeliveryRecord;
    ///
    /// let first = DeliveryRecord::shared_from(&mut Some(DeliveryRecord::new(1, 0))).unwrap();
    /// let at = Arc::as_ptr(&first);
    /// DeliveryRecord::let_go(first);
    /// let mut slot = Some(DeliveryRecord::new(2, 0));
    /// let second = DeliveryRecord::shared_from(&mut slot).unwrap();
    /// assert_eq!((second.id, slot.is_none()), (2, true));
    /// assert_eq!(Arc::as_ptr(&second), at, "the first one's allocation");
    /// ```
    pub fn shared_from(slot: &mut Option<Self>) -> Option<Arc<Self>> {
        let record = slot.as_mut()?;
        let spare = SPARE.try_with(Cell::take).ok().flatten();
        let shared = match spare {
            Some(mut spare) => match Arc::get_mut(&mut spare) {
                Some(old) => {
                    // In place: the old record goes to the slot, and is dropped from there.
                    std::mem::swap(old, record);
                    spare
                }
                None => return slot.take().map(Arc::new),
            },
            None => return slot.take().map(Arc::new),
        };
        *slot = None;
        Some(shared)
    }

    /// Lets `record` go. If this was its last holder, its allocation is kept for the next
    /// record [`shared_from`](Self::shared_from) a slot on this thread (one a thread; the
    /// one kept before is dropped); otherwise only this holder's count goes.
    pub fn let_go(record: Arc<Self>) {
        if Arc::strong_count(&record) == 1 && Arc::weak_count(&record) == 0 {
            // A thread that is exiting drops it instead.
            let _ = SPARE.try_with(|spare| spare.set(Some(record)));
        }
    }

    /// Hands `ahead` every cache line of the record's own fields, reading none: the first
    /// of the three steps in which the message log's writer reads a record ahead of encoding
    /// it, each a few records nearer ([`read_parts_ahead`](Self::read_parts_ahead), then
    /// [`read_ahead`](Self::read_ahead)), each step reading only what the one before it
    /// asked for. A record is built on a worker thread and encoded on the writer's,
    /// milliseconds later, when its lines have left that core's caches; encoding reads them
    /// one wait at a time, while lines asked for ahead arrive together (measured natively
    /// only: BENCHMARKS.md, twenty-fourth and twenty-eighth passes).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn read_record_ahead(&self, ahead: &mut impl Ahead) {
        let Self {
            id,
            received_at_ms,
            appid,
            openid,
            msg_type,
            event,
            msg_id,
            dedup_key,
            mode,
            dedup,
            summary,
            raw_xml,
            reply_xml,
            outcome,
            status,
            latency,
            handler,
            error,
            rejection,
            peer,
            query,
            headers,
            attempts,
            checks,
            forward,
        } = self;
        ahead.line(id);
        ahead.line(received_at_ms);
        ahead.line(appid);
        ahead.line(openid);
        ahead.line(msg_type);
        ahead.line(event);
        ahead.line(msg_id);
        ahead.line(dedup_key);
        ahead.line(mode);
        ahead.line(dedup);
        ahead.line(summary);
        ahead.line(raw_xml);
        ahead.line(reply_xml);
        ahead.line(outcome);
        ahead.line(status);
        ahead.line(latency);
        ahead.line(handler);
        ahead.line(error);
        ahead.line(rejection);
        ahead.line(peer);
        ahead.line(query);
        ahead.line(headers);
        ahead.line(attempts);
        ahead.line(checks);
        ahead.line(forward);
    }

    /// Hands `ahead` every cache line of the record's checks' elements and of its forwarded
    /// call's fields, reading of the record only where they are: the second step of reading
    /// a record ahead (see [`read_record_ahead`](Self::read_record_ahead)).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn read_parts_ahead(&self, ahead: &mut impl Ahead) {
        let Self { checks, forward, .. } = self;
        for check in checks {
            // Each of its fields: an element that spans two lines has both asked for.
            ahead.line(check);
            ahead.line(&check.kind);
            ahead.line(&check.passed);
            ahead.line(&check.note);
        }
        if let Some(f) = forward {
            let ForwardRecord {
                target,
                result,
                sent,
                sent_bytes,
                status,
                answer,
                answer_bytes,
                latency,
                error,
            } = &**f;
            ahead.line(target);
            ahead.line(result);
            ahead.line(sent);
            ahead.line(sent_bytes);
            ahead.line(status);
            ahead.line(answer);
            ahead.line(answer_bytes);
            ahead.line(latency);
            ahead.line(error);
        }
    }

    /// Hands `ahead` every cache line of the record's texts, reading of the record, its
    /// checks and its forwarded call only where they are: the last step of reading a record
    /// ahead (see [`read_record_ahead`](Self::read_record_ahead)).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn read_ahead(&self, ahead: &mut impl Ahead) {
        let mut text = |t: Option<&str>| ahead.lines(t.unwrap_or_default().as_bytes());
        text(self.appid.as_deref());
        text(self.openid.as_deref());
        text(self.msg_type.as_deref());
        text(self.event.as_deref());
        text(self.dedup_key.as_deref());
        text(self.summary.as_deref());
        text(self.reply_xml.as_deref());
        text(self.handler.as_deref());
        text(self.error.as_deref());
        // The arrival's three parts, most often one allocation.
        ahead.lines(self.query.bytes_unread());
        ahead.lines(self.headers.bytes_unread());
        ahead.lines(self.raw_xml.as_ref().map_or(&[], SharedText::bytes_unread));
        for check in &self.checks {
            ahead.lines(check.note.as_bytes());
        }
        if let Some(f) = &self.forward {
            ahead.lines(f.sent.as_bytes());
            ahead.lines(f.answer.as_deref().unwrap_or_default().as_bytes());
            ahead.lines(f.error.as_deref().unwrap_or_default().as_bytes());
        }
    }

    /// Whether this delivery was answered in time for WeChat to take the answer (not a
    /// rejection, a failed handler or a `success` after the deadline, and within
    /// [`WECHAT_TIMEOUT`]).
    pub fn answered_in_time(&self) -> bool {
        matches!(self.outcome, RecordOutcome::Answered) && self.latency <= WECHAT_TIMEOUT
    }

    /// The latency in whole milliseconds.
    pub fn latency_ms(&self) -> u64 {
        u64::try_from(self.latency.as_millis()).unwrap_or(u64::MAX)
    }

    /// Folds a later delivery of the same message (or its late follow-up) into this entry:
    /// [`attempts`](Self::attempts) adds up, and the outcome, status, latency, reply and
    /// error become those of the delivery that answered — the first one WeChat took in
    /// time, else the latest; a late follow-up sets the outcome to the sink's result. The
    /// message, its query and headers stay those of the first delivery; the forwarded call
    /// is the one made for the message, whichever delivery or follow-up carries it.
    pub fn absorb(&mut self, later: &Self) {
        if let RecordOutcome::Late { .. } = later.outcome {
            // Not a delivery: the result of this entry's deadline.
            self.outcome = later.outcome.clone();
            if later.reply_xml.is_some() {
                self.reply_xml.clone_from(&later.reply_xml);
            }
            if later.error.is_some() {
                self.error.clone_from(&later.error);
            }
            if later.forward.is_some() {
                self.forward.clone_from(&later.forward);
            }
            return;
        }
        self.attempts = self.attempts.saturating_add(later.attempts);
        if self.forward.is_none() {
            // The app is called once per message: whichever delivery ran the handler.
            self.forward.clone_from(&later.forward);
        }
        if self.answered_in_time() || matches!(self.outcome, RecordOutcome::Late { .. }) {
            return;
        }
        self.outcome = later.outcome.clone();
        self.status = later.status;
        self.latency = later.latency;
        self.reply_xml.clone_from(&later.reply_xml);
        self.error.clone_from(&later.error);
        if self.handler.is_none() {
            self.handler.clone_from(&later.handler);
        }
    }

    /// Whether later deliveries of the same message fold into this one: it has a dedup key
    /// and was not rejected.
    fn merges(&self) -> bool {
        self.merge_key().is_some()
    }

    /// The key [`merge`] folds this row's message by: the dedup key, unless the request was
    /// rejected (rejected requests are entries of their own).
    pub fn merge_key(&self) -> Option<&str> {
        self.dedup_key.as_deref().filter(|k| !k.is_empty() && self.outcome != RecordOutcome::Rejected)
    }

    /// Whether this row is a retry of a message (a joined or cached delivery) or the late
    /// follow-up of a delivery, rather than a message's first delivery.
    pub fn is_follow_up(&self) -> bool {
        matches!(self.dedup, Some(DedupOutcome::Joined | DedupOutcome::Cached))
            || matches!(self.outcome, RecordOutcome::Late { .. })
    }
}

thread_local! {
    /// A record's allocation let go on this thread ([`DeliveryRecord::let_go`]), for the next
    /// [`DeliveryRecord::shared_from`].
    static SPARE: Cell<Option<Arc<DeliveryRecord>>> = const { Cell::new(None) };
}

/// Serializes an id as a string (and reads a string or a number).
mod id_string {
    use super::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Id {
            Number(u64),
            Text(String),
        }
        match Option::<Id>::deserialize(d)? {
            None => Ok(None),
            Some(Id::Number(n)) => Ok(Some(n)),
            Some(Id::Text(t)) => t.parse().map(Some).map_err(serde::de::Error::custom),
        }
    }
}

/// A duration as whole microseconds.
mod micros {
    use super::{Deserialize, Deserializer, Duration, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_micros)
    }
}

/// Folds rows read from a log (id order) into entries, one per message: a row whose dedup
/// key an earlier row of `rows` has is [absorbed](DeliveryRecord::absorb) into that row's
/// entry; rejected requests and rows without a key stay entries of their own. A late
/// follow-up or retry whose first delivery is not among `rows` stays an entry too.
pub fn merge(rows: Vec<(i64, DeliveryRecord)>) -> Vec<(i64, DeliveryRecord)> {
    let mut out: Vec<(i64, DeliveryRecord)> = Vec::with_capacity(rows.len());
    let mut by_key: std::collections::HashMap<Arc<str>, usize> = std::collections::HashMap::new();
    for (id, row) in rows {
        if row.merges() {
            let key = row.dedup_key.clone().unwrap_or_default();
            if let Some(&at) = by_key.get(&key) {
                out[at].1.absorb(&row);
                continue;
            }
            by_key.insert(key, out.len());
        }
        out.push((id, row));
    }
    out
}

/// A filter over the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Only this account.
    pub appid: Option<String>,
    /// Only this user.
    pub openid: Option<String>,
    /// Only this `MsgType`.
    pub msg_type: Option<String>,
    /// Only entries received at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only entries with a row id greater than this (for following).
    pub after_id: Option<i64>,
    /// At most this many: the first ones in id order (page on with `after_id` set to the
    /// last id returned).
    pub limit: Option<usize>,
}

impl LogQuery {
    /// Whether the entry with row id `id` passes every filter (all but `limit`).
    pub fn matches(&self, id: i64, entry: &DeliveryRecord) -> bool {
        fn is(want: Option<&String>, have: Option<&str>) -> bool {
            want.is_none_or(|w| have.is_some_and(|h| h == w))
        }
        is(self.appid.as_ref(), entry.appid.as_deref())
            && is(self.openid.as_ref(), entry.openid.as_deref())
            && is(self.msg_type.as_ref(), entry.msg_type.as_deref())
            && self.since_ms.is_none_or(|s| entry.received_at_ms >= s)
            && self.after_id.is_none_or(|a| id > a)
    }
}

/// Durable message log storage.
///
/// Backends append every record they are given, in order, as rows with growing ids;
/// readers fold a message's deliveries into one entry with [`merge`] ([`MessageLog::entries`]).
#[async_trait::async_trait]
pub trait MessageLog: Send + Sync + 'static {
    /// Appends records in order.
    async fn append(&self, entries: &[DeliveryRecord]) -> Result<()>;

    /// Appends a batch the caller shares, of records others may hold too (the
    /// [`crate::LogWriter`] does: the server's other observers, such as a live console, keep
    /// the records it logs, and it retries a failed batch without a copy). Backends
    /// override this to store the records without copying them; the default appends a copy.
    async fn append_shared(&self, entries: Arc<[Arc<DeliveryRecord>]>) -> Result<()> {
        let copy: Vec<DeliveryRecord> = entries.iter().map(|e| DeliveryRecord::clone(e)).collect();
        self.append(&copy).await
    }

    /// Rows matching `query` in row-id order (oldest first), with their row ids: one per
    /// record appended (not merged).
    ///
    /// Row ids grow with every append, so `after_id` follows the log.
    async fn query(&self, query: &LogQuery) -> Result<Vec<(i64, DeliveryRecord)>>;

    /// Deletes the rows received before `received_at_ms` (ms since the epoch); returns
    /// how many went. What a retention period calls (`wemp serve` does, in the background,
    /// for `storage.retention`); the other rows keep their ids.
    async fn delete_before(&self, received_at_ms: i64) -> Result<u64>;

    /// Entries matching `query`, one per message: [`query`](Self::query)'s rows folded by
    /// [`merge`], each with the row id of its first delivery. With a `limit`, the rows of
    /// the entries returned are read a little past the last one (WeChat's retries come
    /// within [`WECHAT_TIMEOUT`]s of each other, so a minute covers them), and a retry whose
    /// first delivery is before `after_id` is left out: paging on with `after_id` set to the
    /// last id returned shows each message once.
    async fn entries(&self, query: &LogQuery) -> Result<Vec<(i64, DeliveryRecord)>> {
        let Some(limit) = query.limit else {
            return Ok(entries_of(self.query(query).await?, query));
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Pages of rows until `limit` entries are complete: a minute of rows past the
        // first delivery of the last one.
        let page = limit.saturating_mul(2).max(64);
        let mut rows = Vec::new();
        let mut q = LogQuery { limit: Some(page), ..query.clone() };
        loop {
            let got = self.query(&q).await?;
            let full = got.len() == page;
            q.after_id = got.last().map(|(id, _)| *id).or(q.after_id);
            rows.extend(got);
            if !full {
                break;
            }
            let heads = heads(&rows, query.after_id.is_some());
            if let (Some(&nth), Some((_, last))) = (heads.get(limit - 1), rows.last())
                && last.received_at_ms > nth.saturating_add(MERGE_WINDOW_MS)
            {
                break;
            }
        }
        let mut entries = entries_of(rows, query);
        entries.truncate(limit);
        Ok(entries)
    }
}

/// Deletes the rows of `log` older than `retention`, now and then every tenth of it (at
/// least a second apart, at most an hour), for as long as the future runs: spawn it next
/// to the server and abort it at shutdown. What each sweep deleted is logged at `info`
/// (`debug` when nothing), a failure at `warn`; the next sweep tries again.
pub async fn apply_retention(log: std::sync::Arc<dyn MessageLog>, retention: Duration) {
    let every = (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    let keep_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let before = crate::now_ms().saturating_sub(keep_ms);
        match log.delete_before(before).await {
            Ok(0) => tracing::debug!(before_ms = before, "message log retention: nothing to delete"),
            Ok(n) => tracing::info!(
                deleted = n,
                retention_s = retention.as_secs(),
                "message log retention: older entries deleted"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "message log retention: cannot delete older entries; trying again later")
            }
        }
    }
}

/// How far past a message's first delivery its retries are looked for (a paged read, a
/// follower): WeChat's come within [`WECHAT_TIMEOUT`]s of each other, so a minute covers them.
pub const MERGE_WINDOW_MS: i64 = 60_000;

/// `received_at_ms` of the rows that start an entry, in order.
fn heads(rows: &[(i64, DeliveryRecord)], paging: bool) -> Vec<i64> {
    let mut keys = std::collections::HashMap::new();
    rows.iter()
        .filter(|(_, r)| {
            !r.merges()
                || match keys.entry(r.dedup_key.as_deref()) {
                    std::collections::hash_map::Entry::Occupied(_) => false,
                    std::collections::hash_map::Entry::Vacant(v) => *v.insert(!(paging && r.is_follow_up())),
                }
        })
        .map(|(_, r)| r.received_at_ms)
        .collect()
}

/// [`merge`], less the stragglers of an earlier page when paging on with `after_id`: the
/// rows of a message whose first row here is a retry or a follow-up.
fn entries_of(mut rows: Vec<(i64, DeliveryRecord)>, query: &LogQuery) -> Vec<(i64, DeliveryRecord)> {
    if query.after_id.is_some() {
        let mut kept = std::collections::HashMap::new();
        rows.retain(|(_, r)| {
            !r.merges() || *kept.entry(r.dedup_key.clone()).or_insert_with(|| !r.is_follow_up())
        });
    }
    merge(rows)
}

/// A dedup outcome as older versions wrote it.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn legacy_dedup(s: &str) -> Option<DedupOutcome> {
    match s {
        "new" => Some(DedupOutcome::New),
        "joined" => Some(DedupOutcome::Joined),
        "cached" => Some(DedupOutcome::Cached),
        _ => None,
    }
}

/// An outcome as older versions wrote it (`sent`, `error`, `deadline_success`,
/// `late_sink:<result>`, `rejected:<reason>`), typed; a rejection's diagnostic was kept
/// as the error (`<code> <message>`).
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn legacy_outcome(s: &str, error: Option<&str>) -> (RecordOutcome, Option<RejectionRecord>) {
    let sink = |label: &str| match label {
        "delivered" => Some(SinkOutcome::Delivered),
        "window_expired" => Some(SinkOutcome::WindowExpired),
        "quota_exceeded" => Some(SinkOutcome::QuotaExceeded),
        "unsupported" => Some(SinkOutcome::Unsupported),
        "logged" => Some(SinkOutcome::Logged),
        "failed" => {
            Some(SinkOutcome::Failed { errcode: None, message: error.unwrap_or_default().to_owned() })
        }
        _ => None,
    };
    match s.split_once(':') {
        Some(("late_sink", label)) => (RecordOutcome::Late { sink: sink(label) }, None),
        Some(("rejected", reason)) => {
            let reason = RejectReason::ALL.iter().copied().find(|r| r.as_str() == reason);
            let message = error.unwrap_or_default();
            let (code, message) = match message.split_once(' ') {
                Some((c, rest)) if c.parse::<i32>().is_ok() => (c.parse().ok(), rest),
                _ => (None, message),
            };
            let rejection = reason.map(|reason| RejectionRecord {
                reason,
                code,
                param: "".into(),
                message: message.to_owned(),
            });
            (RecordOutcome::Rejected, rejection)
        }
        _ => match s {
            "sent" => (RecordOutcome::Answered, None),
            "deadline_success" => (RecordOutcome::Deadline, None),
            "rejected" => (RecordOutcome::Rejected, None),
            _ => (RecordOutcome::HandlerError, None),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reading a record ahead asks for every cache line of the record, of its checks'
    /// elements, of its forwarded call and of each of its texts (of lengths around a line's),
    /// whichever field holds a text.
    #[test]
    fn the_writer_reads_ahead_every_line_of_a_record() {
        /// The cache lines handed to it.
        #[derive(Default)]
        struct Lines(std::collections::BTreeSet<usize>);
        impl Ahead for Lines {
            fn line<T>(&mut self, at: &T) {
                self.0.insert(std::ptr::from_ref(at) as usize / 64);
            }
        }
        /// Whether every line of the `len` bytes at `at` was handed over.
        fn all_lines(seen: &Lines, at: usize, len: usize) -> bool {
            (at / 64..=(at + len - 1) / 64).all(|line| seen.0.contains(&line))
        }
        let address = |bytes: &[u8]| bytes.as_ptr() as usize;
        type Set = fn(&mut DeliveryRecord, String);
        type Get = fn(&DeliveryRecord) -> &[u8];
        let fields: Vec<(&str, Set, Get)> = vec![
            ("appid", |r, t| r.appid = Some(t.into()), |r| r.appid.as_deref().unwrap().as_bytes()),
            ("openid", |r, t| r.openid = Some(t), |r| r.openid.as_deref().unwrap().as_bytes()),
            ("msg_type", |r, t| r.msg_type = Some(t.into()), |r| r.msg_type.as_deref().unwrap().as_bytes()),
            ("event", |r, t| r.event = Some(t.into()), |r| r.event.as_deref().unwrap().as_bytes()),
            (
                "dedup_key",
                |r, t| r.dedup_key = Some(t.into()),
                |r| r.dedup_key.as_deref().unwrap().as_bytes(),
            ),
            ("summary", |r, t| r.summary = Some(t), |r| r.summary.as_deref().unwrap().as_bytes()),
            (
                "raw_xml",
                |r, t| r.keep_arrival("a=1", [("host", b"h".as_slice())], Some(&t)),
                |r| r.raw_xml.as_deref().unwrap().as_bytes(),
            ),
            ("reply_xml", |r, t| r.reply_xml = Some(t), |r| r.reply_xml.as_deref().unwrap().as_bytes()),
            ("handler", |r, t| r.handler = Some(t.into()), |r| r.handler.as_deref().unwrap().as_bytes()),
            ("error", |r, t| r.error = Some(t), |r| r.error.as_deref().unwrap().as_bytes()),
            ("query", |r, t| r.query = RequestQuery::new(&t), |r| r.query.as_str().as_bytes()),
            ("headers", |r, t| r.headers = RequestHeaders::from_block(&t), |r| r.headers.as_str().as_bytes()),
            (
                "checks",
                |r, t| {
                    let check = |note: String| wemp_proto::admission::Check {
                        kind: wemp_proto::admission::CheckKind::Query,
                        passed: true,
                        note: note.into(),
                    };
                    r.checks = vec![check(String::new()), check(t), check("short".into())];
                },
                |r| r.checks[1].note.as_bytes(),
            ),
            (
                "forward.sent",
                |r, t| {
                    r.forward = Some(Box::new(ForwardRecord::new(
                        ForwardTarget::Relay,
                        ForwardResult::Reply,
                        t.as_bytes(),
                        Duration::ZERO,
                    )));
                },
                |r| r.forward.as_ref().unwrap().sent.as_bytes(),
            ),
        ];
        for (field, set, get) in fields {
            for len in [1, 63, 64, 65, 300] {
                let mut r = DeliveryRecord::new(1, 2);
                set(&mut r, "x".repeat(len));
                let (mut fields_ahead, mut texts_ahead) = (Lines::default(), Lines::default());
                r.read_record_ahead(&mut fields_ahead);
                r.read_parts_ahead(&mut fields_ahead);
                r.read_ahead(&mut texts_ahead);
                let text = get(&r);
                assert_eq!(text.len(), len, "{field}");
                assert!(
                    all_lines(&texts_ahead, address(text), len),
                    "{field}: a line of its {len} bytes not read"
                );
                // The record itself, its checks' elements, its forwarded call's fields.
                let at = std::ptr::from_ref(&r) as usize;
                assert!(all_lines(&fields_ahead, at, size_of::<DeliveryRecord>()), "{field}: the record");
                for check in &r.checks {
                    let at = std::ptr::from_ref(check) as usize;
                    assert!(all_lines(&fields_ahead, at, size_of_val(check)), "{field}: a check");
                }
                if let Some(f) = &r.forward {
                    let at = std::ptr::from_ref(&**f) as usize;
                    assert!(all_lines(&fields_ahead, at, size_of::<ForwardRecord>()), "{field}: the forward");
                }
            }
        }
    }

    /// A record let go by its last holder lends its allocation to the next one shared on the
    /// same thread, and is dropped only then; one held elsewhere is left alone.
    #[test]
    fn a_record_let_go_lends_its_allocation_to_the_next_one_shared() {
        // Each record holds `mark`: its count tells how many are alive.
        let mark: Arc<str> = Arc::from("wx1");
        let record = |id| {
            let mut r = DeliveryRecord::new(id, 0);
            r.appid = Some(mark.clone());
            Some(r)
        };
        assert_eq!(DeliveryRecord::shared_from(&mut None), None);
        let first = DeliveryRecord::shared_from(&mut record(1)).unwrap();
        let at = Arc::as_ptr(&first);
        DeliveryRecord::let_go(first);
        assert_eq!(Arc::strong_count(&mark), 2, "kept for the next one");
        let mut slot = record(2);
        let second = DeliveryRecord::shared_from(&mut slot).unwrap();
        assert!(slot.is_none());
        assert_eq!(Arc::as_ptr(&second), at);
        assert_eq!(*second, record(2).unwrap());
        assert_eq!(Arc::strong_count(&mark), 2, "the first one dropped");
        // Held elsewhere: only this holder's count goes.
        let held = second.clone();
        DeliveryRecord::let_go(second);
        assert_eq!(Arc::strong_count(&held), 1);
        let third = DeliveryRecord::shared_from(&mut record(3)).unwrap();
        assert_eq!((held.id, third.id), (2, 3));
        // Let go on another thread: kept there, not here.
        std::thread::spawn(move || DeliveryRecord::let_go(third)).join().unwrap();
        assert_eq!(Arc::strong_count(&mark), 2, "dropped with its thread");
        let fourth = DeliveryRecord::shared_from(&mut record(4)).unwrap();
        assert_eq!((fourth.id, held.id), (4, 2));
        // Made empty in the allocation let go, the old one's contents dropped.
        let at = Arc::as_ptr(&fourth);
        DeliveryRecord::let_go(fourth);
        let fifth = DeliveryRecord::new_shared(5, 7);
        assert_eq!(Arc::as_ptr(&fifth), at);
        assert_eq!(*fifth, DeliveryRecord::new(5, 7));
        assert_eq!(Arc::strong_count(&mark), 2, "the fourth one dropped");
        // Nothing let go: a new allocation.
        assert_eq!(*DeliveryRecord::new_shared(6, 0), DeliveryRecord::new(6, 0));
    }

    #[test]
    fn request_labels_are_the_labels_of_every_outcome_but_late() {
        let all = [
            RecordOutcome::Answered,
            RecordOutcome::HandlerError,
            RecordOutcome::Deadline,
            RecordOutcome::HungUp,
            RecordOutcome::Verified,
            RecordOutcome::Rejected,
        ];
        assert_eq!(all.map(|o| o.label()), RecordOutcome::REQUEST_LABELS);
        assert!(!RecordOutcome::REQUEST_LABELS.contains(&RecordOutcome::Late { sink: None }.label()));
    }
}
