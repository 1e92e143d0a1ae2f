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

use tokio::sync::broadcast;
use wemp_store::LogWriter;

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

pub use wemp_store::{
    DedupOutcome, DeliveryRecord, ForwardRecord, ForwardResult, ForwardTarget, HandlerFailure, RecordOutcome,
    RejectionRecord, RequestHeaders, RequestQuery, SharedText,
};

/// Keeps what arrived on the request's record: the query string and the headers as they
/// came ([`RequestQuery`], [`RequestHeaders`]: read as parameters and a map where they are
/// shown), and the peer address (from axum's `ConnectInfo<SocketAddr>`, when the server was
/// started with it).
pub fn keep_request(record: &mut DeliveryRecord, parts: &http::request::Parts) {
    keep_arrival(record, &parts.uri, &parts.headers, peer(&parts.extensions));
}

/// [`keep_request`] from the request's URI, headers and peer kept apart (a clone of the
/// URI and the header map shares their bytes: cheap to hold until a record is wanted).
pub fn keep_arrival(
    record: &mut DeliveryRecord,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    peer: Option<std::net::SocketAddr>,
) {
    keep(record, uri, headers, None);
    record.peer = peer;
}

/// What arrived on a request whose record already holds its peer (the server sets it when it
/// starts the record): the query string and headers of `parts`, with the message as it
/// arrived (after decryption) when there is one, `raw_xml`: the texts in one allocation
/// ([`DeliveryRecord::keep_arrival`]).
pub(crate) fn keep_message(record: &mut DeliveryRecord, parts: &http::request::Parts, raw_xml: Option<&str>) {
    keep(record, &parts.uri, &parts.headers, raw_xml);
}

fn keep(record: &mut DeliveryRecord, uri: &http::Uri, headers: &http::HeaderMap, raw_xml: Option<&str>) {
    // One string each, as they came: decoded only where they are read.
    record.keep_arrival(
        uri.query().unwrap_or(""),
        headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())),
        raw_xml,
    );
}

/// The peer address of a request: axum's `ConnectInfo<SocketAddr>`, else a bare
/// `SocketAddr` extension.
pub fn peer(extensions: &http::Extensions) -> Option<std::net::SocketAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| extensions.get::<std::net::SocketAddr>().copied())
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

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn emit(&self, record: DeliveryRecord) {
        self.observe(&Arc::new(record));
    }

    /// A request's record, empty, numbered: made shared ([`DeliveryRecord::new_shared`]), in
    /// the allocation of a record an observer let go on this thread when there is one (the
    /// console's ring lets go of the record it drops for each one it keeps), to be filled in
    /// place while the request runs and emitted as it is ([`Observers::emit_shared`]).
    pub(crate) fn start(&self, received_at_ms: i64) -> Arc<DeliveryRecord> {
        DeliveryRecord::new_shared(self.next_id(), received_at_ms)
    }

    /// [`Observers::emit`] for a record already shared ([`Observers::start`]).
    pub(crate) fn emit_shared(&self, record: Arc<DeliveryRecord>) {
        self.observe(&record);
    }

    fn observe(&self, record: &Arc<DeliveryRecord>) {
        for o in &self.list {
            o.observe(record);
        }
    }
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
/// By default it logs the delivery that ran the handler, plus its late follow-up (outcome
/// [`RecordOutcome::Late`]) when the reply missed the deadline; read back with
/// [`MessageLog::entries`](wemp_store::MessageLog::entries), the two are one entry. WeChat's
/// retries (joined or cached deliveries, counted in the entry's
/// [`attempts`](DeliveryRecord::attempts)) and rejected requests are left out unless asked
/// for; URL verifications are never logged.
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

    /// Also log rejected requests (outcome [`RecordOutcome::Rejected`], the reason in
    /// [`DeliveryRecord::rejection`]).
    #[must_use]
    pub fn include_rejections(mut self, yes: bool) -> Self {
        self.rejections = yes;
        self
    }

    /// The writer (for its [`stats`](LogWriter::stats) and shutdown).
    pub fn writer(&self) -> &LogWriter {
        &self.writer
    }

    /// Whether `record` is logged.
    pub fn logs(&self, record: &DeliveryRecord) -> bool {
        match record.outcome {
            RecordOutcome::Verified => false,
            RecordOutcome::Rejected => self.rejections,
            _ => self.retries || !matches!(record.dedup, Some(DedupOutcome::Joined | DedupOutcome::Cached)),
        }
    }
}

impl Observer for MessageLogObserver {
    fn observe(&self, record: &Arc<DeliveryRecord>) {
        if self.logs(record) {
            // Shared, never copied: the log stores it from the shared record.
            self.writer.log_shared(record.clone());
        }
    }
}
