//! The callback endpoint as a tower service.

use std::collections::HashMap;
use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::{Buf as _, Bytes};
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::Instrument as _;
use tracing::field::Empty;
use wemp_proto::admission::{self, AccountsError, Kind, Policy, Refusal, Replay, ReplayCache, Verdict};
use wemp_proto::{EncryptedReply, Mode, ReferenceCode, Reply};
use wemp_store::memory::MemoryDedupStore;
use wemp_store::{Claim, DedupStore, HandlerFailure, SessionStore, Ticket};

use crate::accounts::{AccountSource, LiveAccounts};
use crate::context::{Decided, ReplyTo, Shared};
use crate::handler::{BoxError, BoxHandler, Called};
use crate::log::{ShortId, Text};
use crate::metrics::{DedupOutcome, Metrics};
use crate::observe::{DeliveryRecord, Observer, Observers, RecordOutcome, RejectionRecord, SharedText};
use crate::reject::{self, RejectionGate, RejectionLogRate};
use crate::session::{SessionConfig, SessionSlot};
use crate::{
    Account, Clock, Ctx, Error, Inbound, LateReplySink, LoggingSink, NonceSource, RandomNonce, Router,
};
use crate::{SystemClock, late::SinkOutcome};

/// What to answer when a handler fails or panics. WeChat shows its error banner for any
/// non-reply, so the answer is never a 500.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorPolicy {
    /// Answer `success` (no reply). The default.
    #[default]
    Success,
    /// Answer this text.
    Apology(String),
}

/// How many plain-mode `(timestamp, nonce)` pairs the replay cache keeps (a busy account
/// gets far fewer signed requests in a freshness window).
const REPLAY_CAPACITY: usize = 100_000;

/// Settings of a [`WechatService`]; set through [`WechatServiceBuilder`].
#[derive(Clone, Debug)]
struct Config {
    budget: Duration,
    freshness: Duration,
    body_limit: usize,
    require_encryption: bool,
    plain_replay_protection: bool,
    insecure_skip_signature: bool,
    error_policy: ErrorPolicy,
    in_flight_ttl: Duration,
    reply_ttl: Duration,
    metrics_path: Option<String>,
    full_openids: bool,
    shutdown_grace: Duration,
    sink_timeout: Duration,
    rejection_log_rate: RejectionLogRate,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            budget: Duration::from_millis(4500),
            freshness: Duration::from_secs(300),
            body_limit: 64 * 1024,
            require_encryption: false,
            plain_replay_protection: false,
            insecure_skip_signature: false,
            error_policy: ErrorPolicy::Success,
            in_flight_ttl: Duration::from_secs(60),
            reply_ttl: Duration::from_secs(60),
            metrics_path: None,
            full_openids: false,
            shutdown_grace: Duration::from_secs(30),
            sink_timeout: Duration::from_secs(60),
            rejection_log_rate: RejectionLogRate::default(),
        }
    }
}

#[derive(Debug, Default)]
struct Tasks {
    count: AtomicUsize,
    idle: Notify,
    /// How many [`WechatService::drain`] calls wait on `idle`: with none (always, but at
    /// shutdown), a handler that finishes skips the notification's lock.
    draining: AtomicUsize,
}

struct TaskGuard(Arc<Tasks>);

impl TaskGuard {
    fn new(tasks: &Arc<Tasks>) -> Self {
        tasks.count.fetch_add(1, Ordering::AcqRel);
        Self(tasks.clone())
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        // SeqCst here and in `drain`: either this sees the drainer, or the drainer sees
        // the count at zero.
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 && self.0.draining.load(Ordering::SeqCst) > 0 {
            self.0.idle.notify_waiters();
        }
    }
}

struct Inner {
    accounts: LiveAccounts,
    policy: Policy,
    /// The `(timestamp, nonce)` of admitted plain-mode requests, for the freshness window.
    replay: Mutex<ReplayCache>,
    config: Config,
    router: BoxHandler,
    dedup: Arc<dyn DedupStore>,
    sink: Arc<dyn LateReplySink>,
    clock: Arc<dyn Clock>,
    nonce: Arc<dyn NonceSource>,
    metrics: Arc<Metrics>,
    /// How many refusals get a WARN line and a record.
    rejections: RejectionGate,
    tasks: Arc<Tasks>,
    local: Mutex<HashMap<Arc<str>, Weak<Shared>>>,
    observers: Observers,
    session: Option<Arc<SessionConfig>>,
    metrics_sources: Vec<MetricsSource>,
}

/// The WeChat callback endpoint: a [`tower::Service`] over `http::Request`, cheap to clone.
///
/// GET answers URL verification; POST verifies, decrypts (per request: plain, compatible or
/// safe mode), deduplicates WeChat's retries, runs the [`Router`] within the deadline
/// budget and answers in the request's mode. Mount it with [`WechatService::into_router`]
/// or run it with [`crate::serve()`].
#[derive(Clone)]
pub struct WechatService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WechatService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatService")
            .field("accounts", &self.inner.accounts)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Builds a [`WechatService`].
pub struct WechatServiceBuilder {
    accounts: Vec<Account>,
    source: Option<Arc<dyn AccountSource>>,
    router: Option<BoxHandler>,
    config: Config,
    dedup: Option<Arc<dyn DedupStore>>,
    sink: Option<Arc<dyn LateReplySink>>,
    clock: Arc<dyn Clock>,
    nonce: Arc<dyn NonceSource>,
    observers: Vec<Arc<dyn Observer>>,
    sessions: Option<Arc<dyn SessionStore>>,
    session_ttl: Duration,
    session_retries: u32,
    metrics_sources: Vec<MetricsSource>,
    metrics: Option<Arc<Metrics>>,
}

/// Appends Prometheus text lines of another component to the service's metrics.
pub(crate) type MetricsSource = Arc<dyn Fn(&mut String) + Send + Sync>;

impl std::fmt::Debug for WechatServiceBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatServiceBuilder")
            .field("accounts", &self.accounts)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl WechatServiceBuilder {
    /// Adds an account. With several, each request picks one by its last path segment
    /// ([`Account::with_path`], default the appid), else the account whose Token signs it,
    /// `ToUserName` ([`Account::with_original_id`]) deciding between accounts sharing a
    /// Token. See [`wemp_proto::admission`].
    #[must_use]
    pub fn account(mut self, account: Account) -> Self {
        self.accounts.push(account);
        self
    }

    /// Where accounts added while the service runs come from (the authorizers of an Open
    /// Platform third-party platform): a request for a path segment that no account answers
    /// on asks it before being refused (rate-limited, misses remembered). With a source the
    /// builder needs no account of its own, and a request whose last path segment is no
    /// account's is refused 404 even when only one account is served. See
    /// [`crate::accounts`] and [`WechatService::accounts`].
    #[must_use]
    pub fn account_source(mut self, source: impl AccountSource) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The account source, already shared.
    #[must_use]
    pub fn account_source_arc(mut self, source: Arc<dyn AccountSource>) -> Self {
        self.source = Some(source);
        self
    }

    /// The router handling every account's messages (default: answer `success`).
    #[must_use]
    pub fn router(mut self, router: Router) -> Self {
        self.router = Some(router.into_service());
        self
    }

    /// Any boxed handler service in place of a [`Router`].
    #[must_use]
    pub fn handler_service(mut self, service: BoxHandler) -> Self {
        self.router = Some(service);
        self
    }

    /// Time from a request's arrival until the server answers `success` itself
    /// (default 4.5 s; WeChat gives up at 5 s; at most an hour).
    #[must_use]
    pub fn budget(mut self, budget: Duration) -> Self {
        self.config.budget = budget.min(Duration::from_secs(3600));
        self
    }

    /// Largest accepted difference between `timestamp` and the server clock
    /// (default 300 s; zero disables the check).
    #[must_use]
    pub fn freshness_window(mut self, window: Duration) -> Self {
        self.config.freshness = window;
        self
    }

    /// Largest accepted body (default 64 KiB).
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.config.body_limit = bytes;
        self
    }

    /// Refuse plain-mode POSTs for every account (default: each account's declared mode
    /// decides, see [`Account::with_mode`]; an account without one admits every mode).
    #[must_use]
    pub fn require_encryption(mut self, yes: bool) -> Self {
        self.config.require_encryption = yes;
        self
    }

    /// Refuse a plain-mode request whose `timestamp` and `nonce` already came, within the
    /// freshness window, with another body (default: off). In plain mode `signature` covers
    /// no body, so this stops a captured callback URL from carrying a forged body to this
    /// process (not to another instance; see docs/protocol.md §2.0.1). Off by default because
    /// WeChat's documentation does not promise a fresh nonce for every push: turn it on when
    /// you serve plain-mode accounts, and prefer safe mode where messages matter.
    #[must_use]
    pub fn plain_replay_protection(mut self, yes: bool) -> Self {
        self.config.plain_replay_protection = yes;
        self
    }

    /// Skip `signature`/`msg_signature` checks. Only for WeChat's online debugging tool,
    /// which sends no valid signature; logged loudly at startup and on every request.
    #[must_use]
    pub fn insecure_skip_signature(mut self, yes: bool) -> Self {
        self.config.insecure_skip_signature = yes;
        self
    }

    /// What to answer when a handler fails (default `success`).
    #[must_use]
    pub fn error_policy(mut self, policy: ErrorPolicy) -> Self {
        self.config.error_policy = policy;
        self
    }

    /// The dedup/reply store (default: a [`MemoryDedupStore`] of 100 000 keys and 16 MiB). Use a
    /// shared store (Redis) when retries may reach different instances.
    #[must_use]
    pub fn dedup_store(mut self, store: impl DedupStore) -> Self {
        self.dedup = Some(Arc::new(store));
        self
    }

    /// The dedup/reply store, already shared.
    #[must_use]
    pub fn dedup_store_arc(mut self, store: Arc<dyn DedupStore>) -> Self {
        self.dedup = Some(store);
        self
    }

    /// Where late and deferred replies go (default: [`LoggingSink`]).
    #[must_use]
    pub fn late_sink(mut self, sink: impl LateReplySink) -> Self {
        self.sink = Some(Arc::new(sink));
        self
    }

    /// How long the late sink may take to deliver one reply before the delivery counts as
    /// failed (default 60 s): a sink that never answers must not hold its task, and with
    /// it the shutdown, forever.
    #[must_use]
    pub fn late_sink_timeout(mut self, timeout: Duration) -> Self {
        self.config.sink_timeout = timeout;
        self
    }

    /// Where late and deferred replies go, already shared.
    #[must_use]
    pub fn late_sink_arc(mut self, sink: Arc<dyn LateReplySink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// How long a finished reply is kept for retries (default 60 s; at least 30 s).
    #[must_use]
    pub fn reply_ttl(mut self, ttl: Duration) -> Self {
        self.config.reply_ttl = ttl.max(Duration::from_secs(30));
        self
    }

    /// How long an unfinished claim blocks other deliveries (default 60 s; at least 30 s and
    /// at least the [`budget`](Self::budget), so that it outlasts WeChat's three tries and a
    /// retry never runs the handler again).
    #[must_use]
    pub fn in_flight_ttl(mut self, ttl: Duration) -> Self {
        self.config.in_flight_ttl = ttl.max(Duration::from_secs(30));
        self
    }

    /// Serve Prometheus text metrics on GET at this exact path (e.g. `/metrics`).
    #[must_use]
    pub fn metrics_path(mut self, path: impl Into<String>) -> Self {
        self.config.metrics_path = Some(path.into());
        self
    }

    /// Adds another component's Prometheus text (for example a message-log writer's
    /// counters) to what the metrics path serves.
    #[must_use]
    pub fn metrics_source(mut self, source: impl Fn(&mut String) + Send + Sync + 'static) -> Self {
        self.metrics_sources.push(Arc::new(source));
        self
    }

    /// Counts this service's requests in `other`'s metrics, so one metrics path covers both
    /// (a third-party platform's authorization events beside its accounts' messages).
    #[must_use]
    pub fn count_in(mut self, other: &WechatService) -> Self {
        self.metrics = Some(other.inner.metrics.clone());
        self
    }

    /// How many refused requests get a WARN line and a [`DeliveryRecord`] for the
    /// observers (default [`RejectionLogRate::default`]: 100 at once, then one a second);
    /// the others are counted in `wemp_rejections_unlogged_total`, and summarised in a WARN
    /// line at most every ten seconds. [`RejectionLogRate::unlimited`] logs every one.
    #[must_use]
    pub fn rejection_log_rate(mut self, rate: RejectionLogRate) -> Self {
        self.config.rejection_log_rate = rate;
        self
    }

    /// Log OpenIDs in full (default: shortened to `oyOR…f0rs`).
    #[must_use]
    pub fn log_full_openids(mut self, yes: bool) -> Self {
        self.config.full_openids = yes;
        self
    }

    /// How long [`crate::serve_with_shutdown`] waits for running handlers (default 30 s).
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.config.shutdown_grace = grace;
        self
    }

    /// Adds an observer: called once per request with a [`DeliveryRecord`] (and once more
    /// with the late sink's result when a reply missed the deadline). Several may be
    /// added; each must be cheap and non-blocking, see [`crate::observe`].
    #[must_use]
    pub fn observer(mut self, observer: impl Observer) -> Self {
        self.observers.push(Arc::new(observer));
        self
    }

    /// Adds an observer that is already shared.
    #[must_use]
    pub fn observer_arc(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Where conversation sessions live (default: none; [`crate::Ctx::session`] then
    /// reports [`crate::SessionError::NotConfigured`]). Keys are `<appid>:<openid>`; use
    /// a shared store (Redis, SQLite, PostgreSQL) when several instances serve the account.
    #[must_use]
    pub fn session_store(mut self, store: impl SessionStore) -> Self {
        self.sessions = Some(Arc::new(store));
        self
    }

    /// The session store, already shared.
    #[must_use]
    pub fn session_store_arc(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.sessions = Some(store);
        self
    }

    /// How long a session lives after its last write (default 24 hours).
    #[must_use]
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    /// How many times [`crate::Session::update`] retries after losing a write to another
    /// writer before it reports [`crate::SessionError::Conflict`] (default 10).
    #[must_use]
    pub fn session_retries(mut self, retries: u32) -> Self {
        self.session_retries = retries;
        self
    }

    /// The clock for timestamps and the delivery records' time (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The nonce and random-bytes source for encrypted replies (default: `rand`).
    #[must_use]
    pub fn nonce_source(mut self, nonce: impl NonceSource) -> Self {
        self.nonce = Arc::new(nonce);
        self
    }

    /// Builds the service.
    ///
    /// # Errors
    /// [`Error::NoAccount`] without accounts (and without an
    /// [`account_source`](Self::account_source)); [`Error::DuplicatePath`] when two accounts
    /// answer on the same path segment; [`Error::DuplicateAppid`] when two have one appid.
    pub fn build(mut self) -> Result<WechatService, Error> {
        // A claim must outlast the budget, or a retry could run the handler a second time.
        self.config.in_flight_ttl = self.config.in_flight_ttl.max(self.config.budget);
        if self.accounts.is_empty() && self.source.is_none() {
            return Err(Error::NoAccount);
        }
        let accounts = LiveAccounts::new(self.accounts, self.source).map_err(|e| match e {
            AccountsError::DuplicatePath { segment, .. } => Error::DuplicatePath(segment),
            AccountsError::DuplicateAppid { appid, .. } => Error::DuplicateAppid(appid),
            _ => Error::NoAccount,
        })?;
        let all = accounts.current();
        for a in all.iter().flat_map(|a| a.iter()).filter(|a| !admission::token_is_valid(a.token().expose()))
        {
            tracing::warn!(
                appid = %a.appid(),
                token_len = a.token().len(),
                "the console accepts only Tokens of 3-32 characters [A-Za-z0-9]; check the configured Token"
            );
        }
        let policy = Policy::default()
            .freshness_secs(self.config.freshness.as_secs())
            .require_encryption(self.config.require_encryption)
            .insecure_skip_signature(self.config.insecure_skip_signature);
        if self.config.insecure_skip_signature {
            tracing::error!(
                "INSECURE: signature checks are OFF (insecure_skip_signature); anyone can post messages as \
                 WeChat. Use only with WeChat's online debugging tool, never in production."
            );
        }
        let rejections = RejectionGate::new(self.config.rejection_log_rate, Instant::now());
        Ok(WechatService {
            inner: Arc::new(Inner {
                accounts,
                replay: Mutex::new(ReplayCache::new(policy.freshness_secs, REPLAY_CAPACITY)),
                policy,
                config: self.config,
                router: self.router.unwrap_or_else(|| Router::new().into_service()),
                dedup: self.dedup.unwrap_or_else(|| Arc::new(MemoryDedupStore::default())),
                sink: self.sink.unwrap_or_else(|| Arc::new(LoggingSink::default())),
                clock: self.clock,
                nonce: self.nonce,
                metrics: self.metrics.unwrap_or_default(),
                rejections,
                tasks: Arc::default(),
                local: Mutex::default(),
                observers: Observers::new(self.observers),
                session: self.sessions.map(|store| {
                    Arc::new(SessionConfig { store, ttl: self.session_ttl, retries: self.session_retries })
                }),
                metrics_sources: self.metrics_sources,
            }),
        })
    }
}

impl WechatService {
    /// A builder with default settings.
    pub fn builder() -> WechatServiceBuilder {
        WechatServiceBuilder {
            accounts: Vec::new(),
            source: None,
            router: None,
            config: Config::default(),
            dedup: None,
            sink: None,
            clock: Arc::new(SystemClock),
            nonce: Arc::new(RandomNonce),
            observers: Vec::new(),
            sessions: None,
            session_ttl: Duration::from_secs(24 * 3600),
            session_retries: 10,
            metrics_sources: Vec::new(),
            metrics: None,
        }
    }

    /// One account, one router, default settings.
    pub fn new(account: Account, router: Router) -> Self {
        let inner = Self::builder().account(account).router(router).build();
        // One account cannot be missing or duplicated.
        inner.unwrap_or_else(|_| unreachable!("a single account always builds"))
    }

    /// An axum router that sends every request to this service; mount it anywhere
    /// (`app.nest_service("/wechat", svc.into_router())` or `.merge`).
    pub fn into_router(self) -> axum::Router {
        axum::Router::new().fallback_service(self)
    }

    /// The accounts this service answers for, which can be changed while it serves
    /// ([`LiveAccounts::add`], [`LiveAccounts::remove`]).
    pub fn accounts(&self) -> &LiveAccounts {
        &self.inner.accounts
    }

    /// The metrics in Prometheus text format, followed by those of every
    /// [`WechatServiceBuilder::metrics_source`].
    pub fn metrics_text(&self) -> String {
        self.inner.metrics_text()
    }

    /// How many handlers are running now (including those whose request was answered).
    pub fn in_flight(&self) -> usize {
        self.inner.tasks.count.load(Ordering::Acquire)
    }

    /// Deadline misses so far.
    pub fn deadline_misses(&self) -> u64 {
        self.inner.metrics.deadline_misses()
    }

    /// Deliveries that joined a running handler (`joined`) or got a stored reply
    /// (`cached`) so far: `(joined, cached)`.
    pub fn dedup_counts(&self) -> (u64, u64) {
        let m = &self.inner.metrics;
        (m.dedup_count(DedupOutcome::Joined), m.dedup_count(DedupOutcome::Cached))
    }

    /// Waits until no handler runs (their late replies handed to the sink), then until the
    /// dedup store has written the replies it queued ([`DedupStore::flush`]), at most
    /// `timeout` in all. Returns whether all finished.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let tasks = &self.inner.tasks;
        tasks.draining.fetch_add(1, Ordering::SeqCst);
        // Orders that before `until_zero`'s read of the count (see `TaskGuard::drop`).
        std::sync::atomic::fence(Ordering::SeqCst);
        let wait = async {
            crate::context::until_zero(&tasks.count, &tasks.idle).await;
            if let Err(e) = self.inner.dedup.flush().await {
                tracing::error!(error = %e, "cannot store the last replies for retries");
            }
        };
        let drained = tokio::time::timeout(timeout, wait).await.is_ok();
        tasks.draining.fetch_sub(1, Ordering::SeqCst);
        drained
    }

    pub(crate) fn shutdown_grace(&self) -> Duration {
        self.inner.config.shutdown_grace
    }
}

impl<B> tower::Service<Request<B>> for WechatService
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The request's parts go into the handling future as they are (split here, not in
        // it, where the future would hold the request and its parts both).
        let (parts, body) = req.into_parts();
        Box::pin(self.inner.clone().handle(parts, body, None))
    }
}

impl crate::PeerService for WechatService {
    type FromFuture = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn call_from(&mut self, req: Request<Body>, peer: std::net::SocketAddr) -> Self::FromFuture {
        self.clone().call_owned_from(req, peer)
    }

    /// The service's shared state moved into the future, not cloned (a reference count
    /// every connection shares, counted up and down a request less).
    fn call_owned_from(self, req: Request<Body>, peer: std::net::SocketAddr) -> Self::FromFuture {
        let (parts, body) = req.into_parts();
        Box::pin(self.inner.handle(parts, body, Some(peer)))
    }
}

/// An answer before it is a response: its status, `Content-Type` and body. It becomes one in
/// [`Inner::handle`] with the request's header map, cleared: hyper keeps a response's map for
/// the connection's next request, so one map serves all of a connection's requests (a map of
/// its own allocated twice for each answer).
struct Outgoing {
    status: StatusCode,
    content_type: HeaderValue,
    body: Body,
}

/// The `Content-Type`s of [`Outgoing`], checked when built rather than for every answer
/// (`HeaderValue::from_static` called at run time looks at each byte: ~100 instructions an
/// answer by callgrind).
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const XML: HeaderValue = HeaderValue::from_static("application/xml");
const METRICS: HeaderValue = HeaderValue::from_static("text/plain; version=0.0.4");

impl Outgoing {
    fn new(status: StatusCode, content_type: HeaderValue, body: impl Into<Body>) -> Self {
        Self { status, content_type, body: body.into() }
    }

    /// The response, its headers in `headers` (cleared first). A 405 says what is allowed.
    fn into_response(self, mut headers: http::HeaderMap) -> Response<Body> {
        headers.clear();
        headers.insert(header::CONTENT_TYPE, self.content_type);
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            headers.insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
        }
        let mut res = Response::new(self.body);
        *res.status_mut() = self.status;
        *res.headers_mut() = headers;
        res
    }
}

thread_local! {
    /// Where [`dedup_key`] puts a key together; its capacity is kept between calls.
    static KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// A delivery's dedup key, `appid:dedup key` ([`Account::push_key`],
/// [`wemp_proto::Incoming::push_dedup_key`]), shared: put together in a buffer the thread
/// keeps, then copied once into its `Arc`, where a `String` of its own was a second
/// allocation and a second copy for each message.
fn dedup_key(account: &Account, incoming: &wemp_proto::Incoming) -> Arc<str> {
    let build = |key: &mut String| {
        account.push_key(key);
        key.push(':');
        incoming.push_dedup_key(key);
    };
    KEY.with(|buffer| {
        let Ok(mut key) = buffer.try_borrow_mut() else {
            // Not reached (nothing here calls back in), but never a panic.
            let mut key = String::new();
            build(&mut key);
            return key.into();
        };
        key.clear();
        build(&mut key);
        let shared = Arc::from(key.as_str());
        if key.capacity() > 4096 {
            // One huge key does not stay resident in every thread.
            *key = String::new();
        }
        shared
    })
}

fn success() -> Outgoing {
    Outgoing::new(StatusCode::OK, TEXT, "success")
}

/// The message of a caught panic, when it has one.
/// Says that a reply could not be stored for WeChat's retries (at once or later, the same
/// line).
fn reply_not_stored(e: &wemp_store::StoreError) {
    tracing::error!(error = %e, "cannot store the reply for retries");
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// What the request has revealed so far, for the rejection log line.
#[derive(Default)]
struct Seen {
    mode: Option<Mode>,
    appid: Option<Arc<Account>>,
    /// Filled on the way when an observer listens, in place ([`Seen::record`]): shared from
    /// the start ([`Observers::start`]), it is 8 bytes of the request's future where the
    /// record itself was 520 (and the future, boxed for each request, over the 1 KiB that
    /// mimalloc, the allocator then, served on its fast path), and is emitted as it is.
    record: Option<Arc<DeliveryRecord>>,
    /// Whether `record` holds what arrived (kept with the message once it is decrypted, else
    /// at the end).
    arrival_kept: bool,
    /// The delivery's shared state, once admission made it (before the dedup claim): it
    /// keeps the message's `wechat` span once that is made (after the claim).
    shared: Option<Arc<Shared>>,
}

impl Seen {
    /// The record, to fill: no one else holds it before it is emitted.
    fn record(&mut self) -> Option<&mut DeliveryRecord> {
        self.record.as_mut().and_then(Arc::get_mut)
    }
}

/// Keeps the deadline of a delivery whose request went away (WeChat hung up, or a proxy
/// did) while its handler still ran: no one else would answer for it at that deadline, so a
/// retry that joined from another instance and gave up with `success` would leave the
/// handler's reply in the reply cache, never sent. At the deadline, once no retry waits on
/// this instance (a local joiner decides at the end of its own budget), the reply is moved
/// to the late sink.
struct Abandon {
    armed: Option<(Arc<Inner>, Arc<Shared>)>,
    deadline: Instant,
}

impl Drop for Abandon {
    fn drop(&mut self) {
        let Some((inner, shared)) = self.armed.take() else { return };
        if !shared.is_pending() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let deadline = self.deadline;
        let watch = async move {
            tokio::time::sleep_until(deadline).await;
            // The handler has not finished: the hung-up delivery's record goes out now.
            if let Some(record) = shared.take_hung_up() {
                inner.emit_hung_up(*record, &shared);
            }
            shared.no_joiners().await;
            if shared.try_defer() {
                inner.metrics.deadline_miss();
                tracing::warn!(
                    "the request went away before the handler finished and no retry waits here; \
                     at the deadline its reply goes to the late sink"
                );
            }
        };
        runtime.spawn(crate::log::in_current_scope(watch.instrument(tracing::Span::current())));
    }
}

/// Reports a delivery whose caller hung up (WeChat's timeout, a proxy's, a closed
/// connection) before the answer: dropped with the request's future, it counts it and emits
/// the record made so far with [`RecordOutcome::HungUp`] — at once, or, while the handler
/// runs in its task, when the handler finishes or the deadline comes (whichever is first:
/// [`Shared::keep_hung_up`]), so that the record holds what the handler did. Only a message that was admitted
/// and got as far as its dedup claim is reported (a claim a remote store still had to answer
/// included: its record has no dedup outcome and no handler): a caller that goes away before
/// leaves nothing to report, and costs nothing more. The handler goes on (see [`Abandon`]).
struct HangUp<'a> {
    inner: &'a Inner,
    arrived: Instant,
    seen: Seen,
    /// Set once the request's future has its answer: nothing to report then.
    answered: bool,
}

impl Drop for HangUp<'_> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let (inner, seen) = (self.inner, &mut self.seen);
        let Some(shared) = seen.shared.clone() else { return };
        inner.metrics.request(seen.mode, &RecordOutcome::HungUp);
        let latency = self.arrived.elapsed();
        // In the message's scope when it has one in place of its span.
        let scope = crate::log::enter_scope(&shared);
        tracing::warn!(
            parent: shared.span().and_then(tracing::Span::id),
            latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            "the caller hung up before the answer"
        );
        drop(scope);
        if let Some(record) = seen.record.take() {
            // Out of its `Arc` (no one else holds it): the handler's task may fill it in.
            let mut record = Arc::unwrap_or_clone(record);
            record.mode = seen.mode;
            record.appid = seen.appid.as_ref().map(|a| a.shared_key());
            // No answer went out.
            record.status = 0;
            record.latency = latency;
            record.outcome = RecordOutcome::HungUp;
            // While the handler runs in its task, the record waits for it (or the deadline),
            // to go out with what it did: a retry answered from the reply cache afterwards
            // carries none of that.
            if let Some(record) = shared.keep_hung_up(record) {
                inner.emit_hung_up(record, &shared);
            }
        }
    }
}

/// What a handler task needs to report its late reply to the observers.
struct LateReport {
    id: u64,
    received_at_ms: i64,
    arrived: Instant,
    raw_xml: Option<SharedText>,
}

/// The handler's call as [`Inner::run`] left it, when it did not answer at once.
enum Call {
    /// The future of its answer.
    Pending(BoxFuture<'static, Result<Reply, BoxError>>),
    /// Not made: the service is asked whether it is ready first ([`BoxHandler`]'s `call_once`).
    ToMake,
}

/// What is left of a handler's work once its reply is settled ([`Inner::settle`]).
enum Rest {
    /// Nothing.
    Done,
    /// Storing the reply for retries, with a store that has to be waited for.
    Store(String),
    /// The late sink: `success` was answered. (Boxed: a reply is large, and few
    /// deliveries go this way.)
    Late(Box<(String, Reply)>),
}

/// What a handler's boxed future ([`Inner::handle_in_task`]) starts from.
enum Task {
    /// The handler's call, not answered at once, and when it was made.
    Call(Call, Instant),
    /// What is left once the reply was settled in place.
    Rest(Rest),
}

impl Inner {
    /// Emits the record of a delivery whose caller hung up, with what its handler did so far.
    fn emit_hung_up(&self, mut record: DeliveryRecord, shared: &Shared) {
        shared.record_handler(&mut record);
        self.observers.emit(record);
    }

    fn metrics_text(&self) -> String {
        let mut out = self.metrics.render();
        for source in &self.metrics_sources {
            source(&mut out);
        }
        out
    }

    /// The answer to one request, in a future boxed for each ([`crate::PeerService::call_from`]).
    ///
    /// This and the futures it awaits are `async` blocks rather than `async fn`s: an `async
    /// fn`'s future keeps its arguments twice (as given, and moved into its body's locals),
    /// and the locals it borrowed keep their room across every later `await` even once moved
    /// on, so the inner futures' locals are scoped to end before the next one's `await`. The
    /// future was 2 760 bytes, then 1 768, then 1 560, now 1 000 (release build; `run`'s waits
    /// boxed, the delivery record kept shared: see `the_handling_futures_stay_this_small`): it
    /// is copied into its box for every request, and each inner future into its place when
    /// first polled.
    #[allow(clippy::manual_async_fn)] // on purpose: see above
    fn handle<B>(
        self: Arc<Self>,
        parts: http::request::Parts,
        body: B,
        // Given by [`crate::PeerService::call_from`]; else read from the extensions.
        peer: Option<std::net::SocketAddr>,
    ) -> impl Future<Output = Result<Response<Body>, Infallible>> + Send + 'static
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        async move {
            let arrived = Instant::now();
            if parts.method == Method::GET
                && self.config.metrics_path.as_deref().is_some_and(|p| p == parts.uri.path())
            {
                let answer = Outgoing::new(StatusCode::OK, METRICS, self.metrics_text());
                return Ok(answer.into_response(parts.headers));
            }
            // The wall clock, read once at arrival: the record's time and the `timestamp` window's
            // "now" (a request fresh when its headers came stays fresh while its body is read).
            let now_ms = self.clock.now_ms();
            // The request's `wechat` span starts in `admit_and_handle`, once the message is known.
            // In a guard that reports the delivery if the caller hangs up before the answer (this
            // future is then dropped at its `await`).
            let mut guard = HangUp { inner: &self, arrived, seen: Seen::default(), answered: false };
            let seen = &mut guard.seen;
            if self.observers.active() {
                // What arrived is kept with the message, in one allocation, once it is decrypted;
                // for a request that gets no further, at the end.
                seen.record = Some(self.observers.start(now_ms));
                if let Some(r) = seen.record() {
                    // The peer given beside the request, else the one in its extensions (kept
                    // here rather than beside the record: the request's future is smaller).
                    r.peer = peer.or_else(|| crate::observe::peer(&parts.extensions));
                }
            }
            if self.policy.insecure_skip_signature {
                tracing::warn!("INSECURE: signature not checked (insecure_skip_signature)");
            }
            let result =
                self.clone().admit_and_handle(&parts, body, (arrived, now_ms.div_euclid(1000)), seen).await;
            guard.answered = true;
            // Read back from the guard: a copy kept across the `await` was 16 bytes more of this future.
            let arrived = guard.arrived;
            let seen = &mut guard.seen;
            let mut rejected = None;
            let (answer, outcome) = match result {
                Ok(answered) => answered,
                Err(rejection) => {
                    self.metrics.rejected(rejection.reason);
                    let gate = self.rejections.admit(Instant::now());
                    if let Some(n) = gate.summary {
                        reject::log_left_out(n, self.config.rejection_log_rate);
                    }
                    if gate.log {
                        reject::log(&rejection, seen.mode, seen.appid.as_deref().map(Account::appid));
                    } else {
                        // Over the rate: counted, neither logged nor recorded.
                        self.metrics.rejection_unlogged(rejection.reason);
                        seen.record = None;
                    }
                    if seen.record.is_some() {
                        rejected = Some(RejectionRecord {
                            reason: rejection.reason,
                            code: rejection.code.map(ReferenceCode::code),
                            param: rejection.param.into(),
                            // The record is the server's own log: the detail goes with it.
                            message: match &rejection.detail {
                                Some(detail) => format!("{} ({detail})", rejection.message),
                                None => rejection.message.clone(),
                            },
                        });
                    }
                    (
                        Outgoing::new(reject::status(&rejection), TEXT, rejection.body()),
                        RecordOutcome::Rejected,
                    )
                }
            };
            self.metrics.request(seen.mode, &outcome);
            // Measured here, at the end, once for the line and the record (neither may need it).
            let latency = std::cell::OnceCell::new();
            let latency = || *latency.get_or_init(|| arrived.elapsed());
            // Only where a debug line may be written at all: the scope is not entered (and left)
            // for nothing (callgrind: ~50 instructions a request).
            if crate::log::level_enabled(tracing::Level::DEBUG) {
                // Status and latency are this event's fields, not the span's: recorded into the
                // span they were formatted for every request, and read only by this debug line.
                // Its parent is the message's span (none for a request refused before one was made).
                let span = seen.shared.as_deref().and_then(Shared::span);
                // In the message's scope when it has one in place of its span.
                let scope = seen.shared.as_ref().map(crate::log::enter_scope);
                tracing::debug!(
                    parent: span.and_then(tracing::Span::id),
                    status = answer.status.as_u16(),
                    latency_us = u64::try_from(latency().as_micros()).unwrap_or(u64::MAX),
                    "answered"
                );
                drop(scope);
            }
            // Completed in place (no one else holds it yet) and emitted as it is.
            if let Some(mut shared) = seen.record.take() {
                if let Some(record) = Arc::get_mut(&mut shared) {
                    if !seen.arrival_kept {
                        crate::observe::keep_message(record, &parts, None);
                    }
                    record.mode = seen.mode;
                    record.appid = seen.appid.as_ref().map(|a| a.shared_key());
                    record.status = answer.status.as_u16();
                    record.latency = latency();
                    record.outcome = outcome;
                    record.rejection = rejected;
                }
                self.observers.emit_shared(shared);
            }
            Ok(answer.into_response(parts.headers))
        }
    }

    /// Reads the body of a POST within the limit: a declared length over it is refused
    /// before anything is read (and so before `100 Continue` is sent).
    async fn read_body<B>(&self, headers: &http::HeaderMap, body: B) -> Result<Bytes, Refusal>
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let limit = self.config.body_limit;
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(len) = declared.filter(|&l| l > limit as u64) {
            return Err(reject::too_large(&len.to_string(), limit));
        }
        // Read frame by frame as `Limited` and `collect` would, without their list of chunks: a
        // body that comes in one piece (as a rule) is kept as that piece, shared, not copied.
        let mut body = std::pin::pin!(body);
        let (mut first, mut joined) = (None::<Bytes>, None::<bytes::BytesMut>);
        let mut read = 0usize;
        while let Some(frame) = body.as_mut().frame().await {
            let frame = frame.map_err(|e| reject::unreadable(&*e.into()))?;
            let Ok(mut data) = frame.into_data() else { continue };
            read = read.saturating_add(data.remaining());
            if read > limit {
                return Err(reject::too_large(&format!("more than {limit}"), limit));
            }
            let data = data.copy_to_bytes(data.remaining());
            match (&mut joined, first.take()) {
                (Some(all), _) => all.extend_from_slice(&data),
                (None, Some(before)) => {
                    let mut all = bytes::BytesMut::with_capacity(before.len() + data.len());
                    all.extend_from_slice(&before);
                    all.extend_from_slice(&data);
                    joined = Some(all);
                }
                (None, None) => first = Some(data),
            }
        }
        Ok(match joined {
            Some(all) => all.freeze(),
            None => first.unwrap_or_default(),
        })
    }

    /// Admission ([`wemp_proto::admission::admit`]), then the handler. (An `async` block: see
    /// [`Inner::handle`].)
    #[allow(clippy::manual_async_fn)] // an `async` block, not an `async fn`: see `Inner::handle`
    fn admit_and_handle<B>(
        self: Arc<Self>,
        parts: &http::request::Parts,
        body: B,
        (arrived, now_unix): (Instant, i64),
        seen: &mut Seen,
    ) -> impl Future<Output = Result<(Outgoing, RecordOutcome), Refusal>> + Send
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        async move {
            // Up to the delivery's own future, in a block: what is made on the way (the message,
            // its key, the claim, the span's values) is moved into it or dropped, and does not keep
            // its room in this future while the delivery runs.
            let delivery = {
                // Admission, in a block of its own: the body, the parsed document and the admission's
                // notes are gone before the claim is awaited (so this future does not keep them).
                let (inbound, shared) = {
                    // An unknown path segment is refused before the body is read (after one look-up in
                    // the account source, when there is one).
                    let accounts = self
                        .accounts
                        .for_path(parts.uri.path())
                        .await
                        .map_err(|u| reject::unknown_account(&u))?;
                    let bytes = if parts.method == Method::POST {
                        self.read_body(&parts.headers, body).await?
                    } else {
                        Bytes::new()
                    };
                    let request = admission::Request {
                        method: parts.method.as_str(),
                        path: parts.uri.path(),
                        query: parts.uri.query().unwrap_or(""),
                        body: &bytes,
                    };
                    // The checks' notes are for the delivery record: with no observer, none is formatted.
                    let admitted = if seen.record.is_some() {
                        admission::admit(&accounts, &self.policy, now_unix, &request)
                    } else {
                        admission::admit_unrecorded(&accounts, &self.policy, now_unix, &request)
                    };
                    seen.mode = admitted.mode;
                    seen.appid = admitted.account.clone();
                    if let Some(r) = seen.record() {
                        r.checks = admitted.checks;
                    }
                    // The message is read where the verdict has it, and moved out once, into its
                    // `Arc` below (taken out here, it was copied once more: 368 bytes).
                    let Verdict::Message { xml, message: incoming } = &admitted.verdict else {
                        return match admitted.verdict {
                            Verdict::Refused(refusal) => Err(refusal),
                            Verdict::Verified { echostr } => {
                                tracing::info!(
                                    appid = admitted.account.as_deref().map(Account::appid),
                                    "URL verification succeeded"
                                );
                                Ok((Outgoing::new(StatusCode::OK, TEXT, echostr), RecordOutcome::Verified))
                            }
                            _ => Err(reject::internal("admission gave no verdict")),
                        };
                    };
                    let (Some(account), Some(mode)) = (admitted.account, admitted.mode) else {
                        return Err(reject::internal("admission accepted a request without account or mode"));
                    };
                    if mode == Mode::Plain
                        && self.config.plain_replay_protection
                        && self.policy.freshness_secs > 0
                        && !self.policy.insecure_skip_signature
                    {
                        // `signature` covers no body: the same `timestamp` and `nonce` with another body
                        // is a captured URL carrying a forgery (docs/protocol.md §2.0.1).
                        let query = admission::Query::parse(request.query);
                        let (timestamp, nonce) = (query.timestamp.as_deref(), query.nonce.as_deref());
                        let replay = self.replay.lock().unwrap_or_else(|e| e.into_inner()).check(
                            account.appid(),
                            timestamp.unwrap_or_default(),
                            nonce.unwrap_or_default(),
                            request.body,
                            now_unix,
                        );
                        if replay == Replay::OtherBody {
                            return Err(reject::replayed());
                        }
                    }
                    if let Some(r) = seen.record() {
                        // What arrived, the message with it. A third-party platform's push carries the
                        // ticket or an authorization code.
                        let kept = match incoming.info_type() {
                            Some(_) => std::borrow::Cow::Owned(wemp_proto::component::redacted(xml)),
                            None => std::borrow::Cow::Borrowed(xml.as_str()),
                        };
                        crate::observe::keep_message(r, parts, Some(&kept));
                        r.describe(incoming);
                        seen.arrival_kept = true;
                    }
                    // The message goes on as the handler will see it: a reference count to pass
                    // down, where the parsed message would be copied into each future on the way.
                    // (A retry answered from the store leaves it unused.) Put in its `Arc` here,
                    // where it was taken from the verdict: handed out of this block as it is (368
                    // bytes), it was copied twice more on the way (callgrind: ~130 instructions a
                    // request).
                    let deadline = arrived + self.config.budget;
                    let session = self.session.as_ref().map(|config| SessionSlot {
                        config: config.clone(),
                        key: format!("{}:{}", account.key(), incoming.header().from).into(),
                    });
                    // Made in its `Arc` (a `Shared` moved through `with_session` was copied twice more).
                    let shared = Arc::new(Shared::with_session(deadline, session));
                    let Verdict::Message { message, .. } = admitted.verdict else {
                        return Err(reject::internal("admission gave no verdict"));
                    };
                    (Inbound::new(message, account, mode, Ctx::from_shared(shared.clone())), shared)
                };
                let (account, mode, message) = (inbound.account(), inbound.mode(), inbound.message());
                // The claim comes before the span, so that its outcome is one of the span's fields at
                // creation rather than recorded into it after (a record costs the fmt subscriber a
                // slab lookup and a second formatting pass: ~1.4 % of a request's instructions).
                // `appid:dedup key`, shared (`dedup_key`): one copy for the claim, the record, the
                // handler's task and the owners' map.
                let key = dedup_key(account, message);
                // From here a caller that hangs up is reported (see `HangUp`), also while the claim
                // waits for a remote store.
                seen.shared = Some(shared.clone());
                // With a ticket: the memory store's completion then does not hash the key again.
                let claim = self.claim(&key).await;
                let dedup = match &claim {
                    Ok((Claim::InFlight, _)) => DedupOutcome::Joined,
                    Ok((Claim::Done(_), _)) => DedupOutcome::Cached,
                    _ => DedupOutcome::New,
                };
                // One span per admitted message, its fields given at creation: every `record` into a
                // span costs the fmt subscriber a slab lookup and a formatting pass (callgrind: the
                // span took ~11 % of the instructions per request when it was made for every request
                // and nine fields were recorded into it one by one). `%`: Display, which the subscriber
                // writes as it is, where a `&str` goes through `Debug`'s escaping (`Text`: a `str` without
                // `Display`'s padding pass, ~25 instructions a field). `rule` comes later.
                let kind = message.kind();
                let msg_type: std::borrow::Cow<'_, str> = match message.event() {
                    Some(e) => format!("event/{}", e.kind()).into(),
                    None => kind.as_str().into(),
                };
                // The same values handed over as text too (`log::info_span_handing!`): `wemp
                // serve`'s log layer keeps that text instead of formatting the `%` values
                // (callgrind: the span made 1 620 → ~1 305 instructions a request, the handing
                // included). `tests/log_lines.rs` checks that the two agree field by field.
                let (appid, mode_text, msg_type, dedup_text) =
                    (Text(account.appid()), Text(mode.as_str()), Text(&msg_type), Text(dedup.as_str()));
                let openid = ShortId::new(&message.header().from, self.config.full_openids);
                let span = crate::log::info_span_handing!(
                    &shared,
                    "wechat",
                    appid = %appid,
                    mode = %mode_text,
                    msg_type = %msg_type,
                    openid = %openid,
                    dedup = %dedup_text;
                    rule = Empty
                );
                // The span goes with the delivery's state (its `rule` field is recorded there),
                // runs the delivery (`in_span`, without a second handle on it) and parents the
                // `answered` line. (None under a subscriber that writes the message's scope,
                // kept there instead: `log::handing`.)
                if shared.scope().is_none() {
                    shared.set_span(span);
                }
                let claim = match claim {
                    Ok(c) => Some(c),
                    Err(e) => {
                        shared.in_scope(
                            || tracing::error!(error = %e, "dedup store failed; handling without dedup"),
                        );
                        None
                    }
                };
                shared.in_span(self.dispatch(inbound, shared.clone(), (key, claim, dedup), seen))
            };
            Ok(delivery.await)
        }
    }

    /// The admitted delivery: its claim's answer, or its handler. (An `async` block: see
    /// [`Inner::handle`].)
    #[allow(clippy::manual_async_fn)] // an `async` block, not an `async fn`: see `Inner::handle`
    fn dispatch(
        self: Arc<Self>,
        inbound: Inbound,
        shared: Arc<Shared>,
        (key, claim, dedup): (Arc<str>, Option<(Claim, Ticket)>, DedupOutcome),
        seen: &mut Seen,
    ) -> impl Future<Output = (Outgoing, RecordOutcome)> + Send {
        async move {
            let (account, mode, deadline) = (inbound.account(), inbound.mode(), inbound.ctx().deadline());
            self.metrics.dedup(dedup);
            if let Some(r) = seen.record() {
                r.dedup_key = Some(key.clone());
                r.dedup = claim.is_some().then_some(dedup);
            }
            match claim {
                Some((Claim::Done(xml), _)) => self.answer_recorded(account, mode, xml, None, seen),
                Some((Claim::InFlight, _)) => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    // While we wait, the first delivery's deadline is ours to keep (see `Abandon`).
                    let owner = self.local_owner(&key);
                    let _joined = owner.as_ref().map(|shared| shared.join());
                    match self.dedup.wait(&key, remaining).await {
                        Ok(Some(xml)) => self.answer_recorded(account, mode, xml, None, seen),
                        Ok(None) | Err(_) => {
                            // Our budget is spent: make sure the running handler's reply goes to
                            // the sink, since `success` now stops WeChat's retries.
                            let owner = owner.or_else(|| self.local_owner(&key));
                            if let Some(shared) = owner
                                && shared.defer() == Decided::Passive
                            {
                                // It just finished: its reply is being stored right now.
                                if let Ok(Some(xml)) = self.dedup.wait(&key, Duration::from_millis(50)).await
                                {
                                    return self.answer_recorded(account, mode, xml, None, seen);
                                }
                            }
                            self.metrics.deadline_miss();
                            tracing::warn!(
                                "retry waited its whole budget for the first delivery; answering success"
                            );
                            if let Some(r) = seen.record() {
                                r.reply_xml = Some("success".to_owned());
                            }
                            (success(), RecordOutcome::Deadline)
                        }
                    }
                }
                Some((Claim::New, ticket)) => {
                    self.clone().run(inbound, shared, Some((key, ticket)), seen).await
                }
                None => self.clone().run(inbound, shared, None, seen).await,
            }
        }
    }

    /// Claims `key`: answered at once by a store that can (the memory store: no boxed
    /// future), else by the store's async claim.
    async fn claim(&self, key: &str) -> wemp_store::Result<(Claim, Ticket)> {
        let ttl = self.config.in_flight_ttl;
        match self.dedup.claim_ticket_now(key, ttl) {
            Some(answered) => answered,
            None => self.dedup.claim_ticket(key, ttl).await,
        }
    }

    /// Stores `reply` for `key`'s retries, with its claim's `ticket`: at once in a store
    /// that can (the memory store: no boxed future), else by the store's async completion.
    async fn complete(&self, key: &str, ticket: Ticket, reply: &str) -> wemp_store::Result<()> {
        match self.complete_now(key, ticket, reply, Instant::now()) {
            Some(done) => done,
            None => self.complete_later(key, ticket, reply).await,
        }
    }

    /// [`Inner::complete`] by a store that answers at once, the reply kept from `now` (a
    /// reading of the clock just taken); `None` (nothing done) from one that has to be
    /// waited for.
    fn complete_now(
        &self,
        key: &str,
        ticket: Ticket,
        reply: &str,
        now: Instant,
    ) -> Option<wemp_store::Result<()>> {
        self.dedup.complete_claimed_now(key, ticket, reply, self.config.reply_ttl, now)
    }

    /// [`Inner::complete`] by the store's async completion.
    async fn complete_later(&self, key: &str, ticket: Ticket, reply: &str) -> wemp_store::Result<()> {
        self.dedup.complete_claimed(key, ticket, reply, self.config.reply_ttl).await
    }

    fn local_owner(&self, key: &str) -> Option<Arc<Shared>> {
        self.local.lock().unwrap_or_else(|e| e.into_inner()).get(key).and_then(Weak::upgrade)
    }

    /// Runs the handler (in a task of its own if it does not finish at its first poll) and
    /// answers with its reply. (An `async` block: see [`Inner::handle`].)
    #[allow(clippy::manual_async_fn)] // an `async` block, not an `async fn`: see `Inner::handle`
    fn run(
        self: Arc<Self>,
        inbound: Inbound,
        shared: Arc<Shared>,
        key: Option<(Arc<str>, Ticket)>,
        seen: &mut Seen,
    ) -> impl Future<Output = (Outgoing, RecordOutcome)> + Send {
        async move {
            let (account, mode, deadline) =
                (inbound.account().clone(), inbound.mode(), inbound.ctx().deadline());
            if account.kind() == Kind::Miniprogram {
                // A Mini Program takes no passive reply (the platform drops it): `success` now,
                // and whatever the handler answers goes through the customer-service API — the
                // late sink — as if the handler had deferred.
                shared.defer();
                shared.deferred.notify_one();
            }
            let guard = TaskGuard::new(&self.tasks);
            let (key, ticket) = match key {
                Some((key, ticket)) => (Some(key), ticket),
                None => (None, Ticket::NONE),
            };
            // The handler called here: a router whose matched rule is a plain function answers
            // at once (most do), without a future; then the reply is settled and stored here
            // too when the store answers at once, and no task is made at all (its future
            // boxed and copied, the router's boxed: two allocations a message).
            let started = Instant::now();
            let settle =
                |result| match self.settle(&inbound, key.as_deref(), ticket, &shared, result, started) {
                    // Nothing is left to wait for.
                    Rest::Done => None,
                    rest => Some(Task::Rest(rest)),
                };
            let task =
                match std::panic::catch_unwind(AssertUnwindSafe(|| self.router.call_now(inbound.clone()))) {
                    Ok(Called::Now(answer)) => settle(Ok(answer)),
                    Err(panic) => settle(Err(panic)),
                    Ok(Called::Later(future)) => Some(Task::Call(Call::Pending(future), started)),
                    Ok(Called::NotYet(_)) => Some(Task::Call(Call::ToMake, started)),
                };
            // Boxed in a statement of its own: what it starts from (a reply, say) is not kept in
            // this future while the task is polled.
            let task = task.map(|task| {
                // Made only for a task (a handler answered in place has nothing to report late).
                let report = seen.record.as_deref().map(|r| LateReport {
                    id: r.id,
                    received_at_ms: r.received_at_ms,
                    arrived: deadline - self.config.budget,
                    raw_xml: r.raw_xml.clone(),
                });
                Box::pin(self.clone().handle_in_task(
                    inbound,
                    (key.clone(), ticket),
                    shared.clone(),
                    guard,
                    report,
                    task,
                ))
            });
            let pending = match task {
                // The guard counted a handler that has finished.
                None => false,
                Some(mut task) => {
                    // Most handlers that wait for something still finish at their first poll: run
                    // them here, and only hand the ones that do not to a task of their own (which
                    // outlives this request if WeChat hangs up).
                    let pending =
                        std::future::poll_fn(|cx| Poll::Ready(task.as_mut().poll(cx).is_pending())).await;
                    if pending {
                        shared.set_in_task();
                        if let Some(key) = key {
                            self.local
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(key, Arc::downgrade(&shared));
                        }
                        tokio::spawn(crate::log::in_current_scope(task.instrument(tracing::Span::current())));
                    }
                    pending
                }
            };
            // Disarmed below; fires only if this request goes away before anything decided.
            let mut abandon = Abandon { armed: pending.then(|| (self.clone(), shared.clone())), deadline };

            // A handler that finished at its first poll has settled its reply already: no
            // waiting, no timer.
            let settled = if pending { None } else { shared.take_reply() };
            let xml = match settled {
                Some(reply) => {
                    // No reply: the handler deferred.
                    if reply.is_none() && shared.handler_deferred() {
                        self.metrics.deferred();
                    }
                    reply
                }
                // Boxed: the timer and the two waits would otherwise make every delivery's
                // future larger (and every future around it), when few handlers go on in a task.
                None => Box::pin(self.wait_reply(&shared, deadline)).await,
            };
            abandon.armed = None;
            let error = shared.error();
            let failed = error.is_some();
            if let Some(r) = seen.record() {
                r.handler = shared.rule();
                r.error = error;
                r.forward = shared.forward();
            }
            match xml {
                Some((xml, replied_at)) => {
                    let (res, outcome) = self.answer_recorded(&account, mode, xml, Some(replied_at), seen);
                    (res, if failed { RecordOutcome::HandlerError } else { outcome })
                }
                None => {
                    if let Some(r) = seen.record() {
                        r.reply_xml = Some("success".to_owned());
                    }
                    (success(), RecordOutcome::Deadline)
                }
            }
        }
    }

    /// [`Self::answer`], keeping the plain reply for the observers.
    fn answer_recorded(
        &self,
        account: &Account,
        mode: Mode,
        xml: String,
        replied_at: Option<i64>,
        seen: &mut Seen,
    ) -> (Outgoing, RecordOutcome) {
        let (res, replied) = self.answer(account, mode, &xml, replied_at);
        if let Some(r) = seen.record() {
            r.reply_xml = Some(if replied { xml } else { "success".to_owned() });
        }
        (res, RecordOutcome::Answered)
    }

    /// The reply of a handler that went on in its task: as it comes, or none when it
    /// defers or the deadline comes first.
    async fn wait_reply(&self, shared: &Shared, deadline: Instant) -> Option<(String, i64)> {
        tokio::select! {
            biased;
            reply = shared.reply() => {
                // No reply here: the handler deferred and its task already finished.
                if reply.is_none() && shared.handler_deferred() {
                    self.metrics.deferred();
                }
                reply
            }
            () = shared.deferred.notified() => match shared.defer() {
                Decided::Late => {
                    self.metrics.deferred();
                    None
                }
                Decided::Passive => shared.reply().await,
            },
            () = tokio::time::sleep_until(deadline) => match shared.defer() {
                Decided::Late => {
                    self.metrics.deadline_miss();
                    tracing::warn!(
                        budget_ms = u64::try_from(self.config.budget.as_millis()).unwrap_or(u64::MAX),
                        "handler missed the deadline; answered success, its reply goes to the late sink"
                    );
                    None
                }
                Decided::Passive => shared.reply().await,
            },
        }
    }

    fn policy_reply(&self) -> Reply {
        match &self.config.error_policy {
            ErrorPolicy::Success => Reply::None,
            ErrorPolicy::Apology(text) => Reply::text(text.clone()),
        }
    }

    /// The handler's work that waits for something, in a future boxed for it (and spawned as
    /// a task of its own if it does not finish at its first poll): the handler's call when it
    /// did not answer at once, then what is left once its reply is handed over.
    async fn handle_in_task(
        self: Arc<Self>,
        inbound: Inbound,
        (key, ticket): (Option<Arc<str>>, Ticket),
        shared: Arc<Shared>,
        _guard: TaskGuard,
        report: Option<LateReport>,
        task: Task,
    ) {
        let rest = match task {
            Task::Rest(rest) => rest,
            Task::Call(call, started) => {
                // Settled (a reply, or none) however this ends, a drop of this future included.
                let reply_to = ReplyTo::new(&shared);
                let result = match call {
                    Call::Pending(future) => AssertUnwindSafe(future).catch_unwind().await,
                    Call::ToMake => {
                        AssertUnwindSafe(self.router.call_once(inbound.clone())).catch_unwind().await
                    }
                };
                self.settle_to(&inbound, key.as_deref(), ticket, &shared, reply_to, result, started)
            }
        };
        match rest {
            Rest::Done => {}
            Rest::Store(xml) => {
                if let Some(key) = &key
                    && let Err(e) = self.complete_later(key, ticket, &xml).await
                {
                    reply_not_stored(&e);
                }
            }
            Rest::Late(late) => {
                // Boxed: what this takes (the sink's call and its timer) would otherwise make
                // every delivery's task larger, when few go this way.
                let (xml, reply) = *late;
                Box::pin(self.late(
                    &inbound,
                    key.as_deref().map(|k| (k, ticket)),
                    xml,
                    reply,
                    &shared,
                    report,
                ))
                .await;
            }
        }
        if let Some(key) = &key {
            let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
            if local.get(&**key).is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&shared))) {
                local.remove(&**key);
            }
        }
    }

    /// What follows the handler's answer, up to what has to be waited for: the reply made
    /// (per the error policy when the handler failed), the delivery decided, a hung-up
    /// caller's record emitted, and a passive reply stored for retries by a store that
    /// answers at once and handed over to the request.
    fn settle(
        &self,
        inbound: &Inbound,
        key: Option<&str>,
        ticket: Ticket,
        shared: &Shared,
        result: std::thread::Result<Result<Reply, BoxError>>,
        started: Instant,
    ) -> Rest {
        self.settle_to(inbound, key, ticket, shared, ReplyTo::new(shared), result, started)
    }

    /// [`Inner::settle`] with the [`ReplyTo`] made before the handler was called.
    #[allow(clippy::too_many_arguments)]
    fn settle_to(
        &self,
        inbound: &Inbound,
        key: Option<&str>,
        ticket: Ticket,
        shared: &Shared,
        reply_to: ReplyTo<'_>,
        result: std::thread::Result<Result<Reply, BoxError>>,
        started: Instant,
    ) -> Rest {
        // When the handler ended: its latency, and the moment its reply is kept from in a
        // store that keeps its own expiry times (one reading for both).
        let ended = Instant::now();
        self.metrics.handler_latency(ended.saturating_duration_since(started));
        // `fallback` or `none`, when nothing more specific named the rule.
        if let Some(rule) = shared.rule() {
            shared.name_in_span(&rule);
        }
        let mut reply = match result {
            Ok(Ok(reply)) => reply,
            Ok(Err(error)) => {
                self.metrics.handler_error();
                tracing::error!(error = %error, "handler failed; answering per the error policy");
                shared.set_error(HandlerFailure::Failed { error: error.to_string() }.to_string());
                self.policy_reply()
            }
            Err(panic) => {
                self.metrics.handler_error();
                let what = panic_text(&*panic);
                tracing::error!(panic = %what, "handler panicked; answering per the error policy");
                shared.set_error(HandlerFailure::Panicked { what }.to_string());
                self.policy_reply()
            }
        };
        let msg = inbound.message();
        // Read when the reply is made (after the handler): its `CreateTime`, and the
        // timestamp of the encrypted envelope it goes out in.
        let replied_at = self.clock.now_unix();
        let xml = match reply.to_xml_answering(msg, replied_at) {
            Ok(xml) => xml,
            Err(e) => {
                // The handler failed after all: it asked for a reply WeChat would refuse.
                self.metrics.handler_error();
                tracing::error!(
                    code = e.reference_code().code(),
                    error = %e,
                    "handler's reply cannot be sent; answering per the error policy"
                );
                shared.set_error(HandlerFailure::Unsendable { error: e.to_string() }.to_string());
                reply = self.policy_reply();
                reply.to_xml_answering(msg, replied_at).unwrap_or_else(|_| "success".to_owned())
            }
        };
        let decided = shared.finish();
        // A caller that hung up while this ran: its record goes out now, with what the
        // handler did, and before the reply is handed over (so before a retry it answers).
        if let Some(record) = shared.take_hung_up() {
            self.emit_hung_up(*record, shared);
        }
        match decided {
            Decided::Passive => {
                drop(reply);
                // A store that answers at once keeps the reply before it is handed over (no
                // copy of it); one that has to be waited for gets a copy after, so that the
                // caller's answer does not wait for it.
                let later = key.and_then(|key| match self.complete_now(key, ticket, &xml, ended) {
                    Some(done) => {
                        if let Err(e) = done {
                            reply_not_stored(&e);
                        }
                        None
                    }
                    None => Some(xml.clone()),
                });
                reply_to.send(xml, replied_at);
                later.map_or(Rest::Done, Rest::Store)
            }
            Decided::Late => {
                drop(reply_to);
                Rest::Late(Box::new((xml, reply)))
            }
        }
    }

    /// What a delivery answered with `success` does with its handler's reply: it goes to the
    /// late sink, and to the observers.
    async fn late(
        &self,
        inbound: &Inbound,
        key: Option<(&str, Ticket)>,
        xml: String,
        reply: Reply,
        shared: &Shared,
        report: Option<LateReport>,
    ) {
        if let Some((key, ticket)) = key {
            // `success` went out for this delivery; retries must not send it again.
            if let Err(e) = self.complete(key, ticket, "success").await {
                tracing::error!(error = %e, "cannot store the delivery as answered");
            }
        }
        let mut sink_result = None;
        if xml != "success" {
            let account = inbound.account();
            let openid = inbound.openid();
            // The sink is the application's code too: a panic in it is a failed
            // delivery, not a panic in the request that polled this task first.
            let account_key = account.key();
            let delivery = AssertUnwindSafe(self.sink.deliver(&account_key, openid, reply));
            let limit = self.config.sink_timeout;
            let outcome = match tokio::time::timeout(limit, delivery.catch_unwind()).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(panic)) => SinkOutcome::Failed {
                    errcode: None,
                    message: format!("sink panicked: {}", panic_text(&*panic)),
                },
                Err(_) => SinkOutcome::Failed {
                    errcode: None,
                    message: format!("sink gave no answer within {} ms", limit.as_millis()),
                },
            };
            self.metrics.late(outcome.label());
            let shown = ShortId::new(openid, self.config.full_openids);
            match &outcome {
                SinkOutcome::Delivered => tracing::info!(openid = %shown, "late reply delivered"),
                other => {
                    tracing::warn!(openid = %shown, outcome = %other, "late reply not delivered")
                }
            }
            sink_result = Some(outcome);
        }
        if let Some(report) = report {
            let mut r = DeliveryRecord::new(report.id, report.received_at_ms);
            r.appid = Some(inbound.account().shared_key());
            r.describe(inbound.message());
            r.dedup_key = key.map(|(key, _)| key.into());
            r.mode = Some(inbound.mode());
            r.dedup = key.is_some().then_some(DedupOutcome::New);
            r.raw_xml = report.raw_xml;
            r.reply_xml = Some(xml);
            r.outcome = RecordOutcome::Late { sink: sink_result };
            r.latency = report.arrived.elapsed();
            shared.record_handler(&mut r);
            self.observers.emit(r);
        }
    }

    /// Answers with stored or fresh reply XML in the request's mode (re-encrypted with a
    /// fresh nonce every time), and whether that was a reply (not `success`). The envelope's
    /// timestamp: a fresh reply's `replied_at` (its `CreateTime`, read once), a stored one's
    /// the time now.
    fn answer(&self, account: &Account, mode: Mode, xml: &str, replied_at: Option<i64>) -> (Outgoing, bool) {
        if xml.is_empty() || xml == "success" {
            return (success(), false);
        }
        if mode.is_encrypted()
            && let Some(cipher) = account.cipher()
        {
            // Written without `core::fmt` or a string of its own.
            let mut timestamp = itoa::Buffer::new();
            let timestamp = timestamp.format(replied_at.unwrap_or_else(|| self.clock.now_unix()));
            let mut nonce = crate::clock::NonceBuf::new();
            let nonce = self.nonce.nonce_in(&mut nonce);
            return match EncryptedReply::seal_xml(
                cipher,
                account.token().expose(),
                xml,
                timestamp,
                nonce,
                self.nonce.random16(),
            ) {
                Ok(sealed) => (Outgoing::new(StatusCode::OK, XML, sealed), true),
                Err(e) => {
                    tracing::error!(code = e.reference_code().code(), error = %e, "cannot encrypt the reply");
                    (success(), false)
                }
            };
        }
        (Outgoing::new(StatusCode::OK, XML, xml.to_owned()), true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The futures of a request's handling, measured (`size_of_val`, the same in debug and
    /// release builds with rustc 1.95): `handle`'s is boxed and copied for every request,
    /// and every future in it is moved into place when first polled; a handler's task is
    /// boxed for each handler that waits for something (an async one, a store answering
    /// later, the late sink). They were 1 792, 568 and 1 104 bytes with the reply waited for
    /// inline in `run` and the task started from the handler's answer (736 before that);
    /// `handle`'s was 1 560 with the delivery record in it (see [`Seen::record`]). Its bound
    /// was mimalloc's, the allocator then: a block over 1 KiB was never served on its fast path
    /// (callgrind: ~195 instructions a request in its slow path for the 1 560 bytes, ~50 for
    /// the 1 000).
    #[tokio::test]
    async fn the_handling_futures_stay_this_small() {
        let svc = WechatService::new(Account::new("wx2c2769f8efd9abc2", "token"), Router::new());
        let (parts, ()) = Request::post("/").body(()).unwrap().into_parts();
        let handle = svc.inner.clone().handle(parts, Body::empty(), None);
        let incoming = wemp_proto::Incoming::parse(
            "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oUser1]]></FromUserName>\
             <CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>\
             <Content><![CDATA[hi]]></Content><MsgId>1234567890123456</MsgId></xml>",
        )
        .unwrap();
        let shared = Arc::new(Shared::new(Instant::now()));
        let account = Arc::new(Account::new("wx2c2769f8efd9abc2", "token"));
        let inbound = Inbound::new(incoming, account, Mode::Plain, Ctx::from_shared(shared.clone()));
        let mut seen = Seen::default();
        let run = svc.inner.clone().run(inbound.clone(), shared.clone(), None, &mut seen);
        let run_size = std::mem::size_of_val(&run);
        drop(run);
        let guard = TaskGuard::new(&svc.inner.tasks);
        let task = Task::Call(Call::ToMake, Instant::now());
        let task = svc.inner.clone().handle_in_task(inbound, (None, Ticket::NONE), shared, guard, None, task);
        let sizes = (std::mem::size_of_val(&handle), run_size, std::mem::size_of_val(&task));
        assert!(sizes.0 <= 1024 && sizes.1 <= 400 && sizes.2 <= 700, "handle, run, task: {sizes:?}");
    }

    #[test]
    fn a_dedup_key_is_the_accounts_and_the_messages() {
        let text = wemp_proto::Incoming::parse(
            "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oUser1]]></FromUserName>\
             <CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>\
             <Content><![CDATA[hi]]></Content><MsgId>1234567890123456</MsgId></xml>",
        )
        .unwrap();
        let event = wemp_proto::Incoming::parse(
            "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oUser2]]></FromUserName>\
             <CreateTime>1700000001</CreateTime><MsgType><![CDATA[event]]></MsgType>\
             <Event><![CDATA[subscribe]]></Event></xml>",
        )
        .unwrap();
        let plain = Account::new("wx2c2769f8efd9abc2", "token");
        let agent = Account::new("ww1", "token").with_agentid("1000002");
        // Long keys first: a shorter one after them in the thread's buffer keeps nothing of theirs.
        for account in [&agent, &plain, &agent] {
            for message in [&text, &event, &text] {
                let key = dedup_key(account, message);
                assert_eq!(&*key, format!("{}:{}", account.key(), message.dedup_key()));
            }
        }
        assert_eq!(&*dedup_key(&plain, &text), "wx2c2769f8efd9abc2:msg:oUser1:1234567890123456");
    }
}
