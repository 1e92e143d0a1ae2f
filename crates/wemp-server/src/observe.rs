//! Observers: a record of every handled delivery, for message logs and live consoles.
//!
//! Add observers with [`crate::WechatServiceBuilder::observer`]. Each one is called
//! synchronously, once per request, after the answer is decided, with a shared
//! [`DeliveryRecord`]; a delivery whose reply went to the late sink gets a second record
//! (same [`id`](DeliveryRecord::id), outcome [`RecordOutcome::Late`]) when the sink is
//! done. Observers run on the request path: keep them cheap (push into a channel, as
//! [`BroadcastObserver`] and [`MessageLogObserver`] do). Without observers, no record is
//! built at all.
//!
//! ```
//! use wemp_server::{Account, BroadcastObserver, Router, WechatService};
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let live = BroadcastObserver::new(1024);
//! let mut rx = live.subscribe();
//! let service = WechatService::builder()
//!     .account(Account::new("wx2c2769f8efd9abc2", "spamtest"))
//!     .router(Router::new())
//!     .observer(live.clone())
//!     .observer(|r: &std::sync::Arc<wemp_server::DeliveryRecord>| {
//!         tracing::debug!(id = r.id, outcome = r.outcome.label(), "observed");
//!     })
//!     .build()
//!     .unwrap();
//! # drop((service, rx.try_recv()));
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, Serializer};
use tokio::sync::broadcast;
use wemp_proto::{Incoming, Mode};
use wemp_store::{LogEntry, LogWriter};

use crate::{RejectReason, SinkOutcome};

/// Receives a [`DeliveryRecord`] for every request the service handled.
///
/// Called on the request path, synchronously: it must not block or do I/O (hand the
/// record to a channel or a queue). Closures `Fn(&Arc<DeliveryRecord>)` are observers.
pub trait Observer: Send + Sync + 'static {
    /// Takes note of one record.
    fn observe(&self, record: &Arc<DeliveryRecord>);
}

impl<F> Observer for F
where
    F: Fn(&Arc<DeliveryRecord>) + Send + Sync + 'static,
{
    fn observe(&self, record: &Arc<DeliveryRecord>) {
        self(record);
    }
}

/// How dedup classified a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
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

/// What became of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecordOutcome {
    /// Answered on the HTTP response: [`DeliveryRecord::reply_xml`] holds the reply (plain
    /// XML before encryption) or `success`.
    Answered,
    /// The handler failed or panicked; answered per the [`crate::ErrorPolicy`]
    /// ([`DeliveryRecord::error`] says why).
    HandlerError,
    /// The budget ran out (or the handler deferred): `success` was answered. When this
    /// delivery ran the handler, a [`RecordOutcome::Late`] record follows.
    Deadline,
    /// The follow-up of a [`RecordOutcome::Deadline`] record: the handler's reply went to
    /// the late sink with this result (`None`: the handler ended without a reply, so
    /// nothing was sent).
    Late {
        /// The sink's result.
        sink: Option<SinkOutcome>,
    },
    /// A URL verification (GET) succeeded.
    Verified,
    /// The request was refused ([`DeliveryRecord::rejection`] says why).
    Rejected,
}

impl RecordOutcome {
    /// A short label: `answered`, `handler_error`, `deadline`, `late:<sink label>`
    /// (`late:none` without a reply), `verified`, `rejected`.
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
            Self::Verified => "verified",
            Self::Rejected => "rejected",
        }
    }
}

/// Why a request was refused: the same facts as the 4xx answer and the `warn` log line.
/// Never holds a token, key or signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RejectionRecord {
    /// The reason, as counted in metrics.
    #[serde(serialize_with = "reason_str")]
    pub reason: RejectReason,
    /// The reference implementation's code (`-40001` …), when one applies.
    pub code: Option<i32>,
    /// The code's name (`ValidateSignature` …).
    pub code_name: Option<&'static str>,
    /// The parameter at fault (`msg_signature`, `timestamp`, `Encrypt`, `body` …).
    pub param: &'static str,
    /// The one-line diagnostic.
    pub message: String,
}

fn reason_str<S: Serializer>(r: &RejectReason, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.as_str())
}

fn micros<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// One handled request (or the late follow-up of one). `Clone + Serialize` (JSON for a
/// live console); shared as `Arc<DeliveryRecord>`.
///
/// Fields the request never got to are `None`: a request rejected for its signature has a
/// mode and an appid but no message. OpenIDs are in full; shorten them where you show them.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct DeliveryRecord {
    /// Numbers the records of one service; a [`RecordOutcome::Late`] follow-up repeats its
    /// delivery's id.
    pub id: u64,
    /// When the request arrived, milliseconds since the Unix epoch (system clock).
    pub received_at_ms: i64,
    /// The account's appid, once the account is known.
    pub appid: Option<String>,
    /// The sender's OpenID (`FromUserName`).
    pub openid: Option<String>,
    /// `MsgType`.
    pub msg_type: Option<String>,
    /// `Event`, for events.
    pub event: Option<String>,
    /// `MsgId`, for ordinary messages.
    pub msg_id: Option<u64>,
    /// The dedup key (`<appid>:msg:<openid>:<msgid>` or `<appid>:event:…`).
    pub dedup_key: Option<String>,
    /// The mode the request arrived in.
    pub mode: Option<Mode>,
    /// How dedup classified the delivery (`None` when the dedup store failed or for
    /// requests that never got that far).
    pub dedup: Option<DedupOutcome>,
    /// A one-line summary: a text's content, an event's key, a media id…
    pub summary: Option<String>,
    /// The message XML after decryption.
    pub raw_xml: Option<Arc<str>>,
    /// The reply sent (plain XML, before encryption) or `success`; for a
    /// [`RecordOutcome::Late`] record, the reply handed to the sink.
    pub reply_xml: Option<String>,
    /// What became of it.
    pub outcome: RecordOutcome,
    /// The HTTP status answered (0 in a late follow-up).
    pub status: u16,
    /// Time from arrival to the answer (in a late follow-up: to the sink's result).
    #[serde(rename = "latency_us", serialize_with = "micros")]
    pub latency: Duration,
    /// The router rule that handled the message (`fallback`, `none`, or the rule's
    /// matcher), when the handler ran here.
    pub handler: Option<Arc<str>>,
    /// The handler's error (or panic message), or another failure on the way.
    pub error: Option<String>,
    /// Why the request was refused, for [`RecordOutcome::Rejected`].
    pub rejection: Option<RejectionRecord>,
    /// The checks admission made, in order ([`wemp_proto::admission::Check`]): what a
    /// diagnostics view shows instead of re-checking the request itself.
    pub checks: Vec<wemp_proto::admission::Check>,
}

impl DeliveryRecord {
    pub(crate) fn empty(id: u64, received_at_ms: i64) -> Self {
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
            checks: Vec::new(),
        }
    }

    /// Fills the message fields from a typed message.
    pub(crate) fn describe(&mut self, msg: &Incoming) {
        self.openid = Some(msg.header().from.clone());
        self.msg_type = Some(msg.kind().as_str().to_owned());
        self.event = msg.event().map(|e| e.kind().as_str().to_owned());
        self.msg_id = msg.msg_id();
        self.summary = Some(summary(msg));
    }
}

/// The most telling field of a message, at most 200 characters.
fn summary(msg: &Incoming) -> String {
    let text = match msg {
        Incoming::Text(t) => t.content.clone(),
        Incoming::Event(e) => {
            fn non_empty(s: Option<&str>) -> Option<&str> {
                s.filter(|s| !s.is_empty())
            }
            // The key of a menu or QR event; a card event's card (and the user's code).
            let detail = non_empty(e.event_key()).map(str::to_owned).or_else(|| {
                let card = non_empty(e.card_id())?;
                Some(match non_empty(e.user_card_code()) {
                    Some(code) => format!("{card} {code}"),
                    None => card.to_owned(),
                })
            });
            match detail {
                Some(d) => format!("{} {d}", e.kind().as_str()),
                None => e.kind().as_str().to_owned(),
            }
        }
        Incoming::Image(m) => format!("image {}", m.media_id),
        Incoming::Voice(m) => format!("voice {}", m.media_id),
        Incoming::Video(m) => format!("video {}", m.media_id),
        Incoming::ShortVideo(m) => format!("shortvideo {}", m.media_id),
        Incoming::Location(m) => format!("location {},{} {}", m.latitude, m.longitude, m.label),
        Incoming::Link(m) => format!("link {}", m.url),
        other => other.kind().as_str().to_owned(),
    };
    if text.chars().count() > 200 { text.chars().take(199).chain(['…']).collect() } else { text }
}

/// The observers of a service, and the record numbering.
#[derive(Default)]
pub(crate) struct Observers {
    list: Vec<Arc<dyn Observer>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl Observers {
    pub(crate) fn new(list: Vec<Arc<dyn Observer>>) -> Self {
        Self { list, next_id: std::sync::atomic::AtomicU64::new(1) }
    }

    /// Whether any observer listens (no record is built otherwise).
    pub(crate) fn active(&self) -> bool {
        !self.list.is_empty()
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn emit(&self, record: DeliveryRecord) {
        let record = Arc::new(record);
        for o in &self.list {
            o.observe(&record);
        }
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Fans records out to any number of subscribers (a live log over SSE or WebSocket)
/// through a [`tokio::sync::broadcast`] channel. Cheap to clone; clones share the channel.
///
/// Sending never waits: with no subscriber the record is dropped, and a subscriber that
/// falls more than `capacity` records behind gets
/// [`RecvError::Lagged`](broadcast::error::RecvError::Lagged) and skips ahead.
#[derive(Clone, Debug)]
pub struct BroadcastObserver {
    tx: broadcast::Sender<Arc<DeliveryRecord>>,
}

impl BroadcastObserver {
    /// A channel keeping up to `capacity` records for slow subscribers (at least 1).
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self { tx }
    }

    /// A receiver of every record from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<DeliveryRecord>> {
        self.tx.subscribe()
    }

    /// How many receivers are subscribed.
    pub fn receiver_count(&self) -> usize {
        self.tx.receiver_count()
    }
}

impl Default for BroadcastObserver {
    /// A channel of 1024 records.
    fn default() -> Self {
        Self::new(1024)
    }
}

impl Observer for BroadcastObserver {
    fn observe(&self, record: &Arc<DeliveryRecord>) {
        // No subscriber is not an error: nobody is watching.
        let _ = self.tx.send(record.clone());
    }
}

/// Writes records to a message log ([`wemp_store::MessageLog`]: SQLite, PostgreSQL,
/// memory) through a [`LogWriter`]'s bounded queue, so logging never holds up a reply
/// (entries that do not fit are counted in [`LogWriter::stats`]).
///
/// By default it logs one entry per message: the delivery that ran the handler, plus the
/// late-sink result as a second entry (outcome `late_sink:<result>`) when the reply missed
/// the deadline. WeChat's retries (joined or cached deliveries), URL verifications and
/// rejected requests are left out unless asked for.
///
/// ```
/// use std::sync::Arc;
/// use wemp_server::{Account, MessageLogObserver, Router, WechatService};
/// use wemp_store::{LogWriter, LogWriterConfig, memory::MemoryMessageLog};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // SQLite: `wemp_store::sqlite::SqliteDatabase::open("wemp.db").await?.message_log()`;
/// // PostgreSQL: `wemp_store::postgres::PostgresDatabase::connect(url, schema).await?.message_log()`.
/// let log = Arc::new(MemoryMessageLog::new(10_000));
/// let writer = LogWriter::spawn(log, LogWriterConfig::default());
/// let service = WechatService::builder()
///     .account(Account::new("wx2c2769f8efd9abc2", "spamtest"))
///     .router(Router::new())
///     .observer(MessageLogObserver::new(writer.clone()))
///     .build()?;
/// // … serve; on shutdown, write out what is queued:
/// writer.shutdown().await;
/// # drop(service); Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct MessageLogObserver {
    writer: LogWriter,
    retries: bool,
    rejections: bool,
}

impl MessageLogObserver {
    /// Logs through `writer`.
    pub fn new(writer: LogWriter) -> Self {
        Self { writer, retries: false, rejections: false }
    }

    /// Also log WeChat's retries (deliveries that joined a running handler or got the
    /// stored reply).
    #[must_use]
    pub fn include_retries(mut self, yes: bool) -> Self {
        self.retries = yes;
        self
    }

    /// Also log rejected requests (outcome `rejected:<reason>`, the diagnostic as error).
    #[must_use]
    pub fn include_rejections(mut self, yes: bool) -> Self {
        self.rejections = yes;
        self
    }

    /// The writer (for its [`stats`](LogWriter::stats) and shutdown).
    pub fn writer(&self) -> &LogWriter {
        &self.writer
    }

    /// The entry logged for `record`, or `None` when it is left out.
    pub fn entry(&self, record: &DeliveryRecord) -> Option<LogEntry> {
        let outcome = match &record.outcome {
            RecordOutcome::Verified => return None,
            RecordOutcome::Rejected if !self.rejections => return None,
            RecordOutcome::Rejected => match &record.rejection {
                Some(r) => format!("rejected:{}", r.reason.as_str()),
                None => "rejected".to_owned(),
            },
            _ if !self.retries
                && matches!(record.dedup, Some(DedupOutcome::Joined | DedupOutcome::Cached)) =>
            {
                return None;
            }
            RecordOutcome::Answered => "sent".to_owned(),
            RecordOutcome::HandlerError => "error".to_owned(),
            RecordOutcome::Deadline => "deadline_success".to_owned(),
            RecordOutcome::Late { sink: Some(s) } => format!("late_sink:{}", s.label()),
            RecordOutcome::Late { sink: None } => "late_sink:none".to_owned(),
        };
        let error = match &record.rejection {
            Some(r) => Some(match r.code {
                Some(code) => format!("{code} {}", r.message),
                None => r.message.clone(),
            }),
            None => record.error.clone(),
        };
        Some(LogEntry {
            received_at_ms: record.received_at_ms,
            appid: record.appid.clone().unwrap_or_default(),
            openid: record.openid.clone().unwrap_or_default(),
            msg_id: record.msg_id,
            dedup_key: record.dedup_key.clone().unwrap_or_default(),
            msg_type: record.msg_type.clone().unwrap_or_default(),
            event: record.event.clone(),
            mode: record.mode.map_or("unknown", Mode::as_str).to_owned(),
            dedup: record.dedup.map_or("", DedupOutcome::as_str).to_owned(),
            summary: record.summary.clone().unwrap_or_default(),
            raw_xml: record.raw_xml.as_deref().unwrap_or_default().to_owned(),
            reply_xml: record.reply_xml.clone(),
            outcome,
            latency_ms: u64::try_from(record.latency.as_millis()).unwrap_or(u64::MAX),
            error,
        })
    }
}

impl Observer for MessageLogObserver {
    fn observe(&self, record: &Arc<DeliveryRecord>) {
        if let Some(entry) = self.entry(record) {
            self.writer.log(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Incoming {
        let xml = format!(
            "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>\
             <CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>{body}</xml>"
        );
        Incoming::parse(&xml).unwrap()
    }

    #[test]
    fn event_summaries_name_the_key_or_the_card() {
        let click = parse("<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[V1001]]></EventKey>");
        assert_eq!(summary(&click), "CLICK V1001");
        let got = parse(
            "<Event><![CDATA[user_get_card]]></Event><CardId><![CDATA[pCard1]]></CardId>\
             <UserCardCode><![CDATA[12312312]]></UserCardCode><IsGiveByFriend>0</IsGiveByFriend>",
        );
        assert_eq!(summary(&got), "user_get_card pCard1 12312312");
        let review = parse("<Event><![CDATA[card_pass_check]]></Event><CardId><![CDATA[pCard1]]></CardId>");
        assert_eq!(summary(&review), "card_pass_check pCard1");
        let unsubscribe = parse("<Event><![CDATA[unsubscribe]]></Event><EventKey><![CDATA[]]></EventKey>");
        assert_eq!(summary(&unsubscribe), "unsubscribe");
    }
}
