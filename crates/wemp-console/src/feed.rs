//! The live feed: one [`LiveEntry`] per request to the callback endpoint, kept in a ring
//! for late-joining pages and broadcast to the open ones (Server-Sent Events).
//!
//! An entry wraps the server's one record of the request, [`wemp_store::DeliveryRecord`]
//! (what WeChat sent — query, headers, peer —, admission's checks, the message, the reply,
//! the call to a gateway app, how it ended), as [`ConsoleObserver`](crate::ConsoleObserver)
//! receives it inside the server or the message log returns it (a caller that hung up
//! before the answer too: [`RecordOutcome::HungUp`]). The console adds only which of its
//! accounts the record is for and what the server cannot see: [`Tap`] reports a service
//! that panicked.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use futures_util::FutureExt as _;
use futures_util::future::CatchUnwind;
use serde::Serialize;
use tokio::sync::broadcast;
use wemp_server::PeerService;
use wemp_store::{DeliveryRecord, RecordOutcome};

use crate::accounts::AccountBook;

/// Where a live-log entry came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Source {
    /// The server's observer ([`crate::ConsoleObserver`]): a request it handled.
    #[default]
    Observer,
    /// The message log: an entry read back (its retries counted in
    /// [`DeliveryRecord::attempts`]).
    Log,
    /// The [`Tap`] around the callback router: a request the server never reported.
    Tap,
    /// The hub itself: making the entry failed ([`DeliveryRecord::error`] says why).
    Hub,
}

/// What the [`Tap`] saw that the server could not report. (A caller that hung up before
/// the answer is the server's to report: [`RecordOutcome::HungUp`].)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TapFinding {
    /// The callback service panicked; the tap answered `500`.
    Panicked,
}

/// One entry of the live log: the server's record of a request (wrapped, not copied), the
/// console's account it is for, and where it came from.
///
/// In JSON: `id`, `source`, `account`, `record` (the record as `wemp log --json` prints
/// it: `msg_id` a string, `latency_us`, `query`, `headers`, `checks`, `forward` …),
/// `reply` (the reply as WeChat reads it, parsed from `record.reply_xml`) and `tap`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LiveEntry {
    /// Assigned by the [`Hub`], growing (for a log entry: the log's row id).
    pub id: u64,
    /// Where the entry came from.
    pub source: Source,
    /// The account it was for: a [`ConsoleAccount::id`](crate::ConsoleAccount::id), or — for
    /// a record naming an account the console does not know — the server's name for it;
    /// `None` when nothing tells.
    pub account: Option<String>,
    /// The server's record.
    pub record: Arc<DeliveryRecord>,
    /// The reply as WeChat reads it, when [`DeliveryRecord::reply_xml`] is a reply.
    pub reply: Option<wemp_proto::Reply>,
    /// For an entry of the [`Tap`]: what it saw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tap: Option<TapFinding>,
    /// How the handler failed, read from [`DeliveryRecord::error`], for the page to word in
    /// its language (`record.error` is the English); `None` without an error, or for a
    /// refusal (its [`DeliveryRecord::rejection`] says why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureWords>,
}

/// A handler's failure ([`wemp_server::HandlerFailure`]) as the page words it: its kind and
/// its detail in the handler's own words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailureWords {
    /// `failed`, `panicked` or `unsendable`.
    pub code: &'static str,
    /// The handler's error, the panic's message or what is wrong with the reply.
    pub detail: String,
}

impl LiveEntry {
    /// An entry for `record` from `source`, its reply parsed; no account yet.
    pub fn new(source: Source, record: Arc<DeliveryRecord>) -> Self {
        let reply = record
            .reply_xml
            .as_deref()
            .and_then(|x| wemp_proto::reply::ReplyMessage::parse(x).ok())
            .map(|m| m.reply);
        let failure = record.error.as_deref().filter(|_| record.rejection.is_none()).map(|line| {
            let f = wemp_server::HandlerFailure::read(line);
            FailureWords { code: f.code(), detail: f.detail().to_owned() }
        });
        let account = record.appid.as_deref().map(str::to_owned);
        Self { id: 0, source, account, record, reply, tap: None, failure }
    }

    /// An entry read back from the message log (row id `row_id`).
    pub fn from_log(row_id: i64, record: DeliveryRecord) -> Self {
        let mut x = Self::new(Source::Log, Arc::new(record));
        x.id = u64::try_from(row_id).unwrap_or_default();
        x
    }

    /// The record's message XML (after decryption), trimmed.
    pub fn raw_xml(&self) -> Option<&str> {
        self.record.raw_xml.as_deref().map(str::trim)
    }
}

/// Keeps the latest entries and broadcasts new ones.
///
/// Nobody may be watching: an entry published with [`Hub::publish_with`] while no page
/// listens is kept as the closure that makes it, and made only when a page asks for it
/// ([`Hub::recent`]), so an idle console costs the server almost nothing per request.
pub struct Hub {
    /// The kept entries and what numbers and tags them. Its lock also orders publishing
    /// against [`Hub::subscribe`]: an entry kept unmade is never one a new page misses.
    recent: Mutex<Ring>,
    capacity: usize,
    tx: broadcast::Sender<Arc<LiveEntry>>,
}

/// What the [`Hub`]'s lock guards. A publish takes that lock and nothing else: no counter
/// of its own, no lock of the channel's, no count of a shared `Arc` (the two worker threads
/// publish in turn, and each of those was a cache line passed between them).
struct Ring {
    /// The kept entries, oldest first.
    kept: VecDeque<Kept>,
    /// The id of the next entry.
    next_id: u64,
    /// Whether a page may be listening: set by [`Hub::subscribe`], cleared by the first
    /// publish that finds no receiver left. While it is clear no receiver exists (one is
    /// made only by `subscribe`, or from another), so a publish keeps its entry unmade
    /// without asking the channel.
    watched: bool,
    /// The account books of the consoles publishing here ([`Hub::book`]), which a kept
    /// record of their observer is tagged from when made: one, as a rule.
    books: Vec<Arc<AccountBook>>,
}

/// A kept entry, made or still to be made.
enum Kept {
    Made(Arc<LiveEntry>),
    Later(u64, Box<dyn FnOnce() -> LiveEntry + Send>),
    /// A record of the server's observer ([`crate::ConsoleObserver`]), tagged with its
    /// account when made: kept as the record and its console's book (an index into
    /// [`Ring::books`]), with no box per request.
    Observed(u64, Arc<DeliveryRecord>, usize),
}

impl Kept {
    fn id(&self) -> u64 {
        match self {
            Self::Made(x) => x.id,
            Self::Later(id, _) | Self::Observed(id, ..) => *id,
        }
    }

    /// Drops the entry; a record kept unmade is let go ([`DeliveryRecord::let_go`]). (A made
    /// entry was sent to the pages, which may hold it still.)
    fn let_go(self) {
        if let Self::Observed(_, record, _) = self {
            DeliveryRecord::let_go(record);
        }
    }

    /// The entry, made now if it was not yet (an observer's record tagged from `books`).
    fn made(&mut self, books: &[Arc<AccountBook>]) -> Arc<LiveEntry> {
        let made = match std::mem::replace(self, Self::Made(Arc::default())) {
            Self::Made(x) => x,
            Self::Later(id, make) => make_numbered(id, make),
            Self::Observed(id, record, book) => make_numbered(id, || observed(&record, &books[book])),
        };
        *self = Self::Made(made.clone());
        made
    }
}

/// The live entry of a record of the server's observer.
fn observed(record: &Arc<DeliveryRecord>, accounts: &AccountBook) -> LiveEntry {
    crate::observe::entry(&accounts.now().accounts, Source::Observer, record.clone())
}

/// An entry to publish, not made yet: made at once when a page listens, else kept as it is.
enum Pending<F> {
    Make(F),
    Observed(Arc<DeliveryRecord>, usize),
}

/// Runs `make` and numbers what it made. It runs under the ring lock, for a page or inside
/// a publisher (the server's request path): a panic becomes an entry that says so rather
/// than unwinding into either.
fn make_numbered(id: u64, make: impl FnOnce() -> LiveEntry) -> Arc<LiveEntry> {
    let mut x = std::panic::catch_unwind(std::panic::AssertUnwindSafe(make)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        let mut record = DeliveryRecord::new(0, now_ms());
        record.outcome = RecordOutcome::HandlerError;
        record.error = Some(format!("the console could not make this entry: {why}"));
        LiveEntry::new(Source::Hub, Arc::new(record))
    });
    x.id = id;
    Arc::new(x)
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("capacity", &self.capacity)
            .field("next_id", &self.recent.try_lock().ok().map(|r| r.next_id))
            .finish_non_exhaustive()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl Hub {
    /// Entries kept for pages that open later.
    pub const DEFAULT_CAPACITY: usize = 500;

    /// A hub keeping the last `capacity` entries.
    ///
    /// Its ids start at the time it is made, in milliseconds since the epoch × 1000, so
    /// they keep growing across restarts of the server: a page that reconnects with the
    /// `Last-Event-ID` of the previous run gets the new run's entries, not nothing until
    /// the count passes the old one. (Such ids stay below 2^53, exact in JavaScript, until
    /// the year 2255.)
    pub fn new(capacity: usize) -> Self {
        let first = u64::try_from(now_ms()).unwrap_or(0).saturating_mul(1000).max(1);
        Self::with_first_id(capacity, first)
    }

    /// A hub keeping the last `capacity` entries whose ids start at `first`.
    pub fn with_first_id(capacity: usize, first: u64) -> Self {
        let (tx, _) = broadcast::channel(256);
        let ring = Ring {
            kept: VecDeque::with_capacity(capacity.min(1024)),
            next_id: first,
            watched: false,
            books: Vec::new(),
        };
        Self { recent: Mutex::new(ring), capacity: capacity.max(1), tx }
    }

    /// Numbers `entry`, keeps it and sends it to every open page; returns its id.
    pub fn publish(&self, entry: LiveEntry) -> u64 {
        self.publish_with(move || entry)
    }

    /// Numbers the entry `make` makes and keeps it; returns its id. `make` runs now if a
    /// page listens (the entry is sent to every open one), otherwise when a page first
    /// asks for it — or never, if it leaves the ring first. A `make` that panics is kept as
    /// an entry that says so; the panic reaches neither the publisher nor the page.
    pub fn publish_with(&self, make: impl FnOnce() -> LiveEntry + Send + 'static) -> u64 {
        self.publish_pending(Pending::Make(make))
    }

    /// Publishes the server's `record` as [`crate::ConsoleObserver`] does: tagged with its
    /// account of the book numbered `book` ([`Hub::book`]) when made.
    pub(crate) fn publish_observed(&self, record: &Arc<DeliveryRecord>, book: usize) -> u64 {
        self.publish_pending(Pending::<fn() -> LiveEntry>::Observed(record.clone(), book))
    }

    /// The number of `accounts` among the books the hub tags an observer's records from,
    /// added if it is not one yet: a console's observer publishes with it.
    pub(crate) fn book(&self, accounts: &Arc<AccountBook>) -> usize {
        let mut ring = self.lock();
        match ring.books.iter().position(|b| Arc::ptr_eq(b, accounts)) {
            Some(at) => at,
            None => {
                ring.books.push(accounts.clone());
                ring.books.len() - 1
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish_pending<F: FnOnce() -> LiveEntry + Send + 'static>(&self, pending: Pending<F>) -> u64 {
        let (id, evicted) = {
            let mut ring = self.lock();
            let ring = &mut *ring;
            let id = ring.next_id;
            ring.next_id += 1;
            let evicted = if ring.kept.len() == self.capacity { ring.kept.pop_front() } else { None };
            // Asked only while a page may listen: its lock is taken by every send too.
            if ring.watched && self.tx.receiver_count() == 0 {
                ring.watched = false;
            }
            if ring.watched {
                let x = match pending {
                    Pending::Make(make) => make_numbered(id, make),
                    Pending::Observed(record, book) => {
                        make_numbered(id, || observed(&record, &ring.books[book]))
                    }
                };
                ring.kept.push_back(Kept::Made(x.clone()));
                // A page that closed since the count is not an error.
                let _ = self.tx.send(x);
            } else {
                ring.kept.push_back(match pending {
                    Pending::Make(make) => Kept::Later(id, Box::new(make)),
                    Pending::Observed(record, book) => Kept::Observed(id, record, book),
                });
            }
            (id, evicted)
        };
        // The entry that left the ring is let go once the lock is released: it is usually
        // the last holder of its record, whose allocation the next record the server emits
        // on this thread then takes ([`DeliveryRecord::let_go`]; freeing it was most of a
        // publish).
        if let Some(evicted) = evicted {
            evicted.let_go();
        }
        id
    }

    /// The kept entries with an id above `after`, oldest first.
    pub fn recent(&self, after: u64) -> Vec<Arc<LiveEntry>> {
        let mut ring = self.lock();
        let Ring { kept, books, .. } = &mut *ring;
        kept.iter_mut().filter(|k| k.id() > after).map(|k| k.made(books)).collect()
    }

    /// A receiver of every entry published from now on (call [`Hub::recent`] after it for
    /// what came before: nothing falls between the two).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEntry>> {
        let mut ring = self.lock();
        ring.watched = true;
        self.tx.subscribe()
    }
}

/// Layer for the callback router: reports to the hub what the server cannot — a service
/// that panicked (answered `500`) — with what arrived (query and peer; the headers went
/// with the request). Everything the server handled reaches the live log through its
/// observer ([`crate::Console::observer`]), callers that hung up before the answer included.
///
/// A hand-written layer rather than `axum::middleware::from_fn`: that one boxes each
/// request's future and clones the inner service into a boxed `Next`, for every request.
///
/// ```ignore
/// let app = service.into_router().layer(Tap::new(hub));
/// ```
#[derive(Clone, Debug)]
pub struct Tap {
    hub: Arc<Hub>,
}

impl Tap {
    /// A tap reporting to `hub`.
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }
}

impl<S> tower_layer::Layer<S> for Tap {
    type Service = TapService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TapService { inner, hub: self.hub.clone() }
    }
}

/// The service [`Tap`] wraps around the callback router's routes.
#[derive(Clone, Debug)]
pub struct TapService<S> {
    inner: S,
    hub: Arc<Hub>,
}

impl<S> tower_service::Service<Request> for TapService<S>
where
    S: tower_service::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = TapFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // What arrived is kept as it came (the URI cloned shares its bytes; the header map is
        // not kept, its copy was two allocations a request): the record is made only for a
        // service that panicked, not for every request the server answers. A caller that hangs
        // up is the server's to report (its record says `hung_up`).
        // No clock is read here (see `Arrival::started`): the wall-clock time of arrival is
        // worked out from the latency when a record is made.
        let peer = wemp_server::observe::peer(req.extensions());
        tap(&mut self.inner, self.hub.clone(), req, peer, |inner, req| inner.call(req))
    }
}

/// The peer beside the request: the inner service's [`PeerService::call_from`] gets it too.
impl<S: PeerService> PeerService for TapService<S> {
    type FromFuture = TapFuture<S::FromFuture>;

    fn call_from(&mut self, req: Request, peer: std::net::SocketAddr) -> Self::FromFuture {
        tap(&mut self.inner, self.hub.clone(), req, Some(peer), |inner, req| inner.call_from(req, peer))
    }

    /// The hub moved into the future, not cloned, and the inner service given up to its
    /// call: reference counts every connection shares, counted up and down a request less.
    fn call_owned_from(self, req: Request, peer: std::net::SocketAddr) -> Self::FromFuture {
        tap(self.inner, self.hub, req, Some(peer), |inner, req| inner.call_owned_from(req, peer))
    }
}

/// Calls `inner` (the service, or a reference to it) with `call`, keeping what arrived for a
/// report to `hub`.
fn tap<I, F: Future>(
    inner: I,
    hub: Arc<Hub>,
    req: Request,
    peer: Option<std::net::SocketAddr>,
    call: impl FnOnce(I, Request) -> F,
) -> TapFuture<F> {
    let arrival = Arrival { started: None, target: req.uri().path_and_query().cloned(), peer };
    // A service panics while it is polled, as a rule; one that panics when called counts
    // the same.
    let inner = std::panic::catch_unwind(AssertUnwindSafe(|| call(inner, req)))
        .ok()
        .map(|f| AssertUnwindSafe(f).catch_unwind());
    TapFuture { inner, hub, arrival: Some(arrival) }
}

pin_project_lite::pin_project! {
    /// The future of [`TapService`]: the inner service's, reporting a panic.
    pub struct TapFuture<F> {
        // `None`: calling the inner service panicked.
        #[pin]
        inner: Option<CatchUnwind<AssertUnwindSafe<F>>>,
        hub: Arc<Hub>,
        arrival: Option<Arrival>,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for TapFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // `None`: the service panicked, when called or while polled.
        let answered = match this.inner.as_pin_mut() {
            Some(inner) => match inner.poll(cx) {
                Poll::Ready(answered) => answered.ok(),
                Poll::Pending => {
                    if let Some(arrival) = this.arrival.as_mut() {
                        arrival.started.get_or_insert_with(Instant::now);
                    }
                    return Poll::Pending;
                }
            },
            None => None,
        };
        let Some(arrival) = this.arrival.take() else { unreachable!("polled after it finished") };
        Poll::Ready(Ok(match answered {
            Some(Ok(res)) => res,
            Some(Err(never)) => match never {},
            None => {
                let mut record = arrival.record(Ended::now());
                record.status = 500;
                record.outcome = RecordOutcome::HandlerError;
                let mut x = LiveEntry::new(Source::Tap, Arc::new(record));
                x.tap = Some(TapFinding::Panicked);
                this.hub.publish(x);
                http::Response::builder().status(500).body(axum::body::Body::empty()).unwrap_or_default()
            }
        }))
    }
}

/// What the [`Tap`] keeps of a request until it knows whether it has anything to report.
struct Arrival {
    /// When the service first made the caller wait (its first poll came back pending): the
    /// start of a record's latency. A request answered at its first poll — `wemp serve`'s, as
    /// a rule — reads no clock here; one that panics there is reported with no latency (the
    /// time of that one poll). (The clock was read when the service was called: one reading a
    /// request, for a record made only when a service panics.)
    started: Option<Instant>,
    /// The request's path and query (a clone shares their bytes), which is what a record
    /// reads of its URI: not the whole URI, whose clone and drop cost twice as much, for a
    /// record rarely made.
    target: Option<http::uri::PathAndQuery>,
    peer: Option<std::net::SocketAddr>,
}

/// When the [`Tap`] found it had something to report: both clocks, read then.
struct Ended {
    at_ms: i64,
    at: Instant,
}

impl Ended {
    fn now() -> Self {
        Self { at_ms: now_ms(), at: Instant::now() }
    }
}

impl Arrival {
    /// The record of what arrived, its latency the time until `ended`, and its time of
    /// arrival `ended`'s wall-clock time less that latency.
    fn record(self, ended: Ended) -> DeliveryRecord {
        let latency = self.started.map_or(Duration::ZERO, |s| ended.at.saturating_duration_since(s));
        let received_at_ms =
            ended.at_ms.saturating_sub(i64::try_from(latency.as_millis()).unwrap_or(i64::MAX));
        let mut record = DeliveryRecord::new(0, received_at_ms);
        let uri = self.target.map(http::Uri::from).unwrap_or_default();
        wemp_server::observe::keep_arrival(&mut record, &uri, &http::HeaderMap::new(), self.peer);
        record.latency = latency;
        record
    }
}

fn now_ms() -> i64 {
    // The one system clock (wemp_proto::clock); this name stays for the call sites.
    wemp_proto::clock::Clock::now_ms(&wemp_proto::clock::SystemClock)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    /// A handler's failure reaches the page as its kind and detail (the English line stays
    /// `record.error`), and the page has Chinese words for every kind.
    #[test]
    fn a_handler_failure_comes_with_its_kind_for_the_page() {
        use wemp_server::HandlerFailure;
        let strings = include_str!("../assets/strings.js");
        for failure in [
            HandlerFailure::Failed { error: "db down".into() },
            HandlerFailure::Panicked { what: "index out of bounds".into() },
            HandlerFailure::Unsendable { error: "<MediaId> must not be empty".into() },
        ] {
            let mut record = DeliveryRecord::new(1, 0);
            record.error = Some(failure.to_string());
            let x = LiveEntry::new(Source::Observer, Arc::new(record));
            let words = x.failure.as_ref().unwrap();
            assert_eq!((words.code, words.detail.as_str()), (failure.code(), failure.detail()));
            let json = serde_json::to_value(&x).unwrap();
            assert_eq!(json["failure"]["code"], failure.code());
            assert_eq!(json["record"]["error"], failure.to_string());
            let key = format!("'server.handler.{}': '", failure.code());
            let line = strings.lines().find(|l| l.trim_start().starts_with(&key));
            assert!(line.unwrap_or_else(|| panic!("strings.js has no {key}")).contains("{detail}"), "{key}");
        }
        // A refusal is worded by its rejection, not as a handler's failure.
        let mut record = DeliveryRecord::new(1, 0);
        record.error = Some("bad signature".into());
        record.rejection = Some(wemp_store::RejectionRecord {
            reason: wemp_proto::admission::RejectReason::SignatureMismatch,
            code: Some(-40001),
            param: "signature".into(),
            message: "bad signature".into(),
        });
        assert!(LiveEntry::new(Source::Observer, Arc::new(record)).failure.is_none());
    }

    #[test]
    fn an_unwatched_hub_makes_entries_only_when_a_page_asks() {
        use std::sync::atomic::AtomicUsize;
        let hub = Hub::with_first_id(3, 1);
        let made = Arc::new(AtomicUsize::new(0));
        let publish = |n: &str| {
            let (made, n) = (made.clone(), n.to_owned());
            hub.publish_with(move || {
                made.fetch_add(1, Ordering::SeqCst);
                LiveEntry { account: Some(n), ..LiveEntry::default() }
            })
        };
        let ids: Vec<u64> = ["a", "b", "c", "d"].into_iter().map(publish).collect();
        assert_eq!(ids, [1, 2, 3, 4]);
        assert_eq!(made.load(Ordering::SeqCst), 0, "nobody watched: nothing made yet");
        // "a" left the ring unmade; a page opening now gets the others, made once.
        let users = |xs: Vec<Arc<LiveEntry>>| -> Vec<(u64, String)> {
            xs.iter().map(|x| (x.id, x.account.clone().unwrap_or_default())).collect()
        };
        let rx = hub.subscribe();
        assert_eq!(users(hub.recent(0)), [(2, "b".into()), (3, "c".into()), (4, "d".into())]);
        assert_eq!(users(hub.recent(2)), [(3, "c".into()), (4, "d".into())]);
        assert_eq!(made.load(Ordering::SeqCst), 3, "each made once, the evicted one never");
        // While a page listens, an entry is made at once and sent to it.
        let mut rx = rx;
        publish("e");
        assert_eq!(made.load(Ordering::SeqCst), 4);
        let live = rx.try_recv().unwrap();
        assert_eq!((live.id, live.account.as_deref()), (5, Some("e")));
        drop(rx);
        publish("f");
        assert_eq!(made.load(Ordering::SeqCst), 4, "the page left: kept unmade again");
        assert_eq!(users(hub.recent(4)), [(5, "e".into()), (6, "f".into())]);
    }

    #[test]
    fn ids_keep_growing_across_a_restart() {
        // A page that reconnects after a restart sends the old run's last id.
        let old = Hub::new(8);
        let last_seen = (0..3).map(|_| old.publish(LiveEntry::default())).max().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let restarted = Hub::new(8);
        let next = restarted.publish(LiveEntry::default());
        assert!(next > last_seen, "{next} after {last_seen}");
        assert_eq!(restarted.recent(last_seen).len(), 1);
        assert!(next < 1 << 53, "exact as a JavaScript number");
    }

    #[test]
    fn an_entry_that_panics_while_made_costs_neither_the_page_nor_the_publisher() {
        let hub = Hub::with_first_id(4, 1);
        let summary = |s: &str| LiveEntry { account: Some(s.into()), ..LiveEntry::default() };
        hub.publish(summary("a"));
        hub.publish_with(|| panic!("boom"));
        hub.publish(summary("c"));
        // Made when the page asks: it gets every record, the failed one saying why.
        let xs = hub.recent(0);
        let ids: Vec<u64> = xs.iter().map(|x| x.id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!((xs[0].account.as_deref(), xs[2].account.as_deref()), (Some("a"), Some("c")));
        assert!(xs[1].record.error.as_deref().is_some_and(|e| e.contains("boom")), "{:?}", xs[1]);
        assert_eq!(hub.recent(1).len(), 2, "the ring is intact");
        // Made at once for a listening page: the publisher carries on, the page is told.
        let mut rx = hub.subscribe();
        assert_eq!(hub.publish_with(|| panic!("bang")), 4);
        let live = rx.try_recv().unwrap();
        assert_eq!(live.id, 4);
        assert!(live.record.error.as_deref().is_some_and(|e| e.contains("bang")), "{live:?}");
        hub.publish(summary("e"));
        assert_eq!(rx.try_recv().unwrap().account.as_deref(), Some("e"));
        let ids: Vec<u64> = hub.recent(0).iter().map(|x| x.id).collect();
        assert_eq!(ids, [2, 3, 4, 5]);
    }

    #[test]
    fn log_entries_wrap_the_record_with_its_typed_outcome() {
        // Read back from the log, a rejected request and a failed handler were both shown as
        // "error" when the console kept an outcome of its own: it shows the record's.
        let mut rejected = DeliveryRecord::new(0, 1);
        rejected.outcome = RecordOutcome::Rejected;
        rejected.status = 403;
        rejected.query = [("signature".to_owned(), "forged".to_owned())].into();
        let mut failed = DeliveryRecord::new(0, 2);
        failed.outcome = RecordOutcome::HandlerError;
        failed.error = Some("handler failed: boom".into());
        failed.attempts = 2;
        let shown: Vec<serde_json::Value> = [(1, rejected), (2, failed)]
            .into_iter()
            .map(|(id, r)| serde_json::to_value(LiveEntry::from_log(id, r)).unwrap())
            .collect();
        assert_eq!(shown[0]["id"], 1);
        assert_eq!(shown[0]["source"], "log");
        assert_eq!(shown[0]["record"]["outcome"]["kind"], "rejected");
        assert_eq!(shown[0]["record"]["query"]["signature"], "forged");
        assert_eq!(shown[1]["record"]["outcome"]["kind"], "handler_error");
        assert_eq!((shown[1]["record"]["attempts"].as_u64(), shown[1]["tap"].as_str()), (Some(2), None));
    }

    /// The server's record of a caller that hung up is the live log's entry for it, shown
    /// with its typed outcome and how long the caller waited (no tap finding).
    #[test]
    fn a_hang_up_is_the_servers_record() {
        let mut record = DeliveryRecord::new(0, 1);
        record.outcome = RecordOutcome::HungUp;
        record.latency = std::time::Duration::from_millis(500);
        record.dedup_key = Some("wx1:oA:1".into());
        let hub = Hub::with_first_id(4, 1);
        let record = Arc::new(record);
        hub.publish_with(move || crate::observe::entry(&[], Source::Observer, record));
        let x = hub.recent(0).pop().unwrap();
        let json = serde_json::to_value(&*x).unwrap();
        assert_eq!(json["source"], "observer");
        assert_eq!(json["record"]["outcome"]["kind"], "hung_up");
        assert_eq!(
            (json["record"]["status"].as_u64(), json["record"]["latency_us"].as_u64()),
            (Some(0), Some(500_000))
        );
        assert!(json.get("tap").is_none(), "{json}");
        let strings = include_str!("../assets/log.js");
        assert!(strings.contains("case 'hung_up': return 'abandoned';"), "the page names it");
    }

    #[test]
    fn a_record_is_dated_at_arrival_from_its_end_and_latency() {
        let started = Instant::now();
        let target = Some(http::uri::PathAndQuery::from_static("/wechat?nonce=1"));
        let arrival = Arrival { started: Some(started), target, peer: None };
        let ended = Ended { at_ms: 1_700_000_009_250, at: started + std::time::Duration::from_millis(4_200) };
        let record = arrival.record(ended);
        assert_eq!(record.latency, std::time::Duration::from_millis(4_200));
        assert_eq!(record.received_at_ms, 1_700_000_005_050);
        assert_eq!(record.query.as_str(), "nonce=1");
    }

    /// A panicked service's record: its latency runs from the service's first wait (the
    /// clock is read then, not for every request), and is none for a panic at the first poll.
    #[tokio::test]
    async fn a_panic_after_a_wait_is_timed_from_the_wait() {
        use tower::ServiceExt as _;
        let hub = Arc::new(Hub::with_first_id(8, 1));
        async fn panics_later() -> &'static str {
            tokio::time::sleep(Duration::from_millis(120)).await;
            panic!("boom, later")
        }
        let later = axum::Router::new().route("/wechat", axum::routing::post(panics_later));
        let req = || http::Request::post("/wechat").body(axum::body::Body::empty()).unwrap();
        let res = later.layer(Tap::new(hub.clone())).oneshot(req()).await.unwrap();
        assert_eq!(res.status(), 500);
        let x = hub.recent(0).pop().unwrap();
        assert_eq!(x.tap, Some(TapFinding::Panicked));
        assert!(x.record.latency >= Duration::from_millis(120), "{:?}", x.record.latency);
        let now = now_ms();
        assert!((now - 2_000..=now - 120).contains(&x.record.received_at_ms), "dated at arrival");

        let at_once = slow(Duration::ZERO).layer(Tap::new(hub.clone()));
        let res =
            at_once.oneshot(http::Request::post("/wechat?panic=1").body(axum::body::Body::empty()).unwrap());
        assert_eq!(res.await.unwrap().status(), 500);
        let x = hub.recent(1).pop().unwrap();
        assert_eq!((x.tap, x.record.latency), (Some(TapFinding::Panicked), Duration::ZERO));
    }

    /// Answers `success`, or panics for a `panic` query, whether called with the peer beside
    /// the request or given up for the call.
    #[derive(Clone)]
    struct PanicsFor;

    impl PanicsFor {
        fn answer(req: &Request) -> std::future::Ready<Result<Response, Infallible>> {
            if req.uri().query().is_some_and(|q| q.starts_with("panic=1")) {
                panic!("boom");
            }
            std::future::ready(Ok(Response::new(axum::body::Body::from("success"))))
        }
    }

    impl tower_service::Service<Request> for PanicsFor {
        type Response = Response;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response, Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: Request) -> Self::Future {
            Self::answer(&req)
        }
    }

    impl PeerService for PanicsFor {
        type FromFuture = Self::Future;

        fn call_from(&mut self, req: Request, _peer: std::net::SocketAddr) -> Self::FromFuture {
            Self::answer(&req)
        }

        fn call_owned_from(self, req: Request, _peer: std::net::SocketAddr) -> Self::FromFuture {
            Self::answer(&req)
        }
    }

    /// The tap of a [`PeerService`], kept or given up for the call (as `wemp serve`'s front
    /// gives it up): a panic is reported with what arrived and the peer beside the request;
    /// an answer goes through untouched.
    #[tokio::test]
    async fn the_tap_of_a_peer_service_reports_a_panic_kept_or_given_up() {
        let hub = Arc::new(Hub::with_first_id(8, 1));
        let tapped = tower_layer::Layer::layer(&Tap::new(hub.clone()), PanicsFor);
        let peer: std::net::SocketAddr = "203.0.113.7:4242".parse().unwrap();
        let req =
            |q: &str| http::Request::post(format!("/wechat?{q}")).body(axum::body::Body::empty()).unwrap();
        for given_up in [false, true] {
            let call = |r: Request| {
                let mut service = tapped.clone();
                if given_up { service.call_owned_from(r, peer) } else { service.call_from(r, peer) }
            };
            let answered = call(req("nonce=1")).await.unwrap();
            assert_eq!(answered.status(), 200);
            assert_eq!(hub.recent(0).len(), usize::from(given_up), "an answer is not the tap's to report");
            assert_eq!(call(req("panic=1&nonce=n%20n")).await.unwrap().status(), 500);
            let x = hub.recent(0).pop().unwrap();
            assert_eq!((x.source, x.tap, x.record.status), (Source::Tap, Some(TapFinding::Panicked), 500));
            assert_eq!(x.record.query.get("nonce").unwrap(), "n n", "what arrived ({given_up})");
            assert_eq!(x.record.peer, Some(peer), "the peer beside the request ({given_up})");
        }
    }

    /// A service that answers after `wait`, or panics for a `panic` query.
    fn slow(wait: std::time::Duration) -> axum::Router {
        axum::Router::new().route(
            "/wechat",
            axum::routing::post(move |q: axum::extract::RawQuery| async move {
                if q.0.as_deref().is_some_and(|q| q.starts_with("panic=1")) {
                    panic!("boom");
                }
                tokio::time::sleep(wait).await;
                "success"
            }),
        )
    }

    #[tokio::test]
    async fn the_tap_reports_services_that_panicked_and_leaves_hang_ups_to_the_server() {
        use tower::ServiceExt as _;
        let hub = Arc::new(Hub::with_first_id(8, 1));
        let app = slow(std::time::Duration::from_secs(30)).layer(Tap::new(hub.clone()));
        let req = || {
            http::Request::post("/wechat?signature=abc&timestamp=1&nonce=n%20n")
                .header("user-agent", "Mozilla/4.0")
                .header("cookie", "secret=1")
                .body(axum::body::Body::empty())
                .unwrap()
        };
        // The caller gives up: the server reports that itself (a `hung_up` record through its
        // observer); the tap adds nothing.
        let gave_up =
            tokio::time::timeout(std::time::Duration::from_millis(50), app.clone().oneshot(req())).await;
        assert!(gave_up.is_err());
        assert_eq!(hub.recent(0).len(), 0);

        let res = app.oneshot(
            http::Request::post("/wechat?panic=1&nonce=n%20n").body(axum::body::Body::empty()).unwrap(),
        );
        assert_eq!(res.await.unwrap().status(), 500);
        let x = hub.recent(0).pop().unwrap();
        assert_eq!((x.source, x.tap, x.record.status), (Source::Tap, Some(TapFinding::Panicked), 500));
        assert_eq!(x.record.query.get("nonce").unwrap(), "n n", "what arrived, as the server reads it");

        // A service that panics when called, before it returns a future, counts the same.
        let mut panics = tower_layer::Layer::layer(
            &Tap::new(hub.clone()),
            tower::service_fn(|_: Request| -> std::future::Ready<Result<Response, Infallible>> {
                panic!("called")
            }),
        );
        let ready = tower::ServiceExt::ready(&mut panics).await.unwrap();
        let res = tower_service::Service::call(ready, req()).await.unwrap();
        assert_eq!(res.status(), 500);
        let x = hub.recent(1).pop().unwrap();
        assert_eq!((x.tap, x.record.status), (Some(TapFinding::Panicked), 500));
        assert_eq!(x.record.query.get("signature").unwrap(), "abc", "what arrived");
        assert!(x.record.headers.is_empty(), "the headers went with the request");

        // An answered request is the observer's to report: the tap adds nothing.
        let quick = slow(std::time::Duration::ZERO).layer(Tap::new(hub.clone()));
        assert_eq!(quick.oneshot(req()).await.unwrap().status(), 200);
        assert_eq!(hub.recent(2).len(), 0);
    }
}
