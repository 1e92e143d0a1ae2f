//! Running the service on a TCP listener: bounded connections, bounded waits, and a
//! shutdown that ends within a grace period.
//!
//! The callback URL is public, so the connection loop assumes hostile clients. [`Limits`]
//! bounds how long a connection may sit silent before its request headers arrive, how long
//! the body may take, how long a keep-alive connection may wait idle for its next request,
//! and how many connections are open at once. WeChat gives up on a callback after 5 s, so
//! an honest request never needs long to arrive.

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker, ready};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

use crate::WechatService;
use crate::handler::BoxError;

/// How long connections may take, and how many may be open: see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// From accepting a connection (or the first byte of a keep-alive connection's next
    /// request) until the request's headers are complete. Default 5 s.
    pub header_timeout: Duration,
    /// From when the service first waits for the body (for [`crate::WechatService`], as soon
    /// as the headers have named an account) until the whole body has arrived. Default 5 s.
    pub body_timeout: Duration,
    /// How long a keep-alive connection may wait, silent, for its next request. Default 30 s.
    pub idle_timeout: Duration,
    /// Connections open at once; more wait in the listen backlog until one closes.
    /// Default 1024.
    pub max_connections: usize,
    /// At shutdown, how long open connections get to finish their responses before they
    /// are dropped. Default 5 s.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl Limits {
    /// Sets [`Limits::header_timeout`].
    #[must_use]
    pub fn header_timeout(mut self, d: Duration) -> Self {
        self.header_timeout = d;
        self
    }

    /// Sets [`Limits::body_timeout`].
    #[must_use]
    pub fn body_timeout(mut self, d: Duration) -> Self {
        self.body_timeout = d;
        self
    }

    /// Sets [`Limits::idle_timeout`].
    #[must_use]
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }

    /// Sets [`Limits::max_connections`] (at least 1).
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Sets [`Limits::shutdown_grace`].
    #[must_use]
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.shutdown_grace = d;
        self
    }
}

/// Serves `service` on `listener` with the default [`Limits`] until the process ends.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve(listener: TcpListener, service: WechatService) -> io::Result<()> {
    serve_with_shutdown(listener, service, std::future::pending()).await
}

/// Serves with the default [`Limits`] until `signal` completes; then stops accepting, lets
/// open connections finish (up to [`Limits::shutdown_grace`]), and waits (up to the
/// service's shutdown grace) for running handlers, whose late replies go to the sink.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve_with_shutdown(
    listener: TcpListener,
    service: WechatService,
    signal: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // The service itself: every request is its, so no router is asked, and the peer goes
    // beside the request.
    let served = serve_app(listener, Direct(service.clone()), Limits::default(), signal).await;
    let running = service.in_flight();
    if running > 0 {
        tracing::info!(running, "shutting down: waiting for running handlers");
    }
    if !service.drain(service.shutdown_grace()).await {
        tracing::warn!(
            abandoned = service.in_flight(),
            "shutdown grace period over; abandoning running handlers"
        );
    }
    served
}

/// Serves `app` — an axum router (the callback router merged with others), a [`Front`], or
/// any service answering axum's requests — under `limits` until `signal` completes, then
/// stops accepting and gives open connections [`Limits::shutdown_grace`] to finish before
/// dropping them. Each request carries the peer's address as [`ConnectInfo<SocketAddr>`].
///
/// # Errors
/// I/O errors of the listener other than per-connection accept failures (those are
/// logged and retried).
pub async fn serve_router<S>(
    listener: TcpListener,
    app: S,
    limits: Limits,
    signal: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    serve_app(listener, WithPeer(app), limits, signal).await
}

/// [`serve_router`] for a [`Front`] whose service takes the peer beside the request
/// ([`PeerService`]), as `wemp serve` runs: a request for one of its fast paths goes to the
/// service with the peer's address handed to [`PeerService::call_from`], and carries no
/// [`ConnectInfo<SocketAddr>`] (that extension cost each request three allocations and ~700
/// instructions under callgrind, its look-ups and its drop included); every request the router
/// gets carries it, as under [`serve_router`].
///
/// # Errors
/// As [`serve_router`].
pub async fn serve_front<S>(
    listener: TcpListener,
    app: Front<S>,
    limits: Limits,
    signal: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    S: PeerService + Clone + Send + 'static,
    S::FromFuture: Send + 'static,
{
    serve_app(listener, app, limits, signal).await
}

/// A service that can be handed the address a request came from beside the request, rather
/// than in its [`ConnectInfo<SocketAddr>`] extension: [`serve_front`] calls a [`Front`]'s
/// service this way. [`WechatService`] is one, and so is an [`Either`](tower::util::Either)
/// of two (and the console's tap of one).
pub trait PeerService:
    tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
{
    /// The future of [`PeerService::call_from`].
    type FromFuture: Future<Output = Result<http::Response<Body>, Infallible>>;

    /// [`tower::Service::call`] (once `poll_ready` says the service is ready) for a request
    /// from `peer`, which the service takes for the request's `ConnectInfo<SocketAddr>`: the
    /// request does not carry one.
    fn call_from(&mut self, req: http::Request<Body>, peer: SocketAddr) -> Self::FromFuture;

    /// [`PeerService::call_from`] on a service given up for this one request (a clone made
    /// for it, as [`serve_front`] makes): a service whose future holds what the service holds
    /// moves it there rather than cloning it. The default calls [`PeerService::call_from`].
    fn call_owned_from(self, req: http::Request<Body>, peer: SocketAddr) -> Self::FromFuture
    where
        Self: Sized,
    {
        let mut service = self;
        service.call_from(req, peer)
    }
}

impl<A, B> PeerService for tower::util::Either<A, B>
where
    A: PeerService,
    B: PeerService,
{
    type FromFuture = futures_util::future::Either<A::FromFuture, B::FromFuture>;

    fn call_from(&mut self, req: http::Request<Body>, peer: SocketAddr) -> Self::FromFuture {
        match self {
            Self::Left(a) => futures_util::future::Either::Left(a.call_from(req, peer)),
            Self::Right(b) => futures_util::future::Either::Right(b.call_from(req, peer)),
        }
    }

    fn call_owned_from(self, req: http::Request<Body>, peer: SocketAddr) -> Self::FromFuture {
        match self {
            Self::Left(a) => futures_util::future::Either::Left(a.call_owned_from(req, peer)),
            Self::Right(b) => futures_util::future::Either::Right(b.call_owned_from(req, peer)),
        }
    }
}

/// What a connection asks for each request's answer, given the peer's address.
trait App: Clone + Send + 'static {
    /// Answers `req`, which came from `peer`: cloning, of the app, only the service that
    /// answers it (the connection's app is not cloned whole for each request).
    fn answer(
        &self,
        req: http::Request<Body>,
        peer: SocketAddr,
    ) -> impl Future<Output = http::Response<Body>> + Send + 'static + use<Self>;
}

/// Any service: each request carries the peer as [`ConnectInfo<SocketAddr>`].
#[derive(Clone)]
struct WithPeer<S>(S);

impl<S> App for WithPeer<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    fn answer(
        &self,
        req: http::Request<Body>,
        peer: SocketAddr,
    ) -> impl Future<Output = http::Response<Body>> + Send + 'static + use<S> {
        routed(self.0.clone(), req, peer)
    }
}

/// `service`'s answer to `req`, which carries `peer` as [`ConnectInfo<SocketAddr>`].
fn routed<S>(
    service: S,
    mut req: http::Request<Body>,
    peer: SocketAddr,
) -> impl Future<Output = http::Response<Body>> + Send + 'static
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    req.extensions_mut().insert(ConnectInfo(peer));
    let answered = service.oneshot(req);
    async move {
        match answered.await {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }
}

/// A [`PeerService`]: each request's peer goes beside it.
#[derive(Clone)]
struct Direct<S>(S);

impl<S> App for Direct<S>
where
    S: PeerService + Clone + Send + 'static,
    S::FromFuture: Send + 'static,
{
    fn answer(
        &self,
        req: http::Request<Body>,
        peer: SocketAddr,
    ) -> impl Future<Output = http::Response<Body>> + Send + 'static + use<S> {
        Self(self.0.clone()).call(req, peer)
    }
}

impl<S> Direct<S>
where
    S: PeerService + Send + 'static,
    S::FromFuture: Send + 'static,
{
    /// The service called at once when it is ready at once ([`WechatService`] always is):
    /// the connection then holds the service's own future (boxed by it), where a future
    /// holding the request until its first poll was copied whole into the connection and
    /// again at each step into the call. The service, this request's clone, is given up to
    /// the call ([`PeerService::call_owned_from`]).
    fn call(mut self, req: http::Request<Body>, peer: SocketAddr) -> Answer<S::FromFuture> {
        // Asked without a waker first: a service not ready yet is asked again, with the
        // connection's, in the future that waits for it.
        match self.0.poll_ready(&mut Context::from_waker(std::task::Waker::noop())) {
            Poll::Ready(Ok(())) => Answer::Called { inner: self.0.call_owned_from(req, peer) },
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => Answer::Other { inner: Box::pin(self.when_ready(req, peer)) },
        }
    }

    /// [`App::answer`] once the service is ready.
    async fn when_ready(mut self, req: http::Request<Body>, peer: SocketAddr) -> http::Response<Body> {
        let ready = std::future::poll_fn(|cx| self.0.poll_ready(cx)).await;
        let answered = match ready {
            Ok(()) => self.0.call_owned_from(req, peer).await,
            Err(never) => match never {},
        };
        match answered {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`Direct`] and [`Front`]: the service's own future when it was called
    /// at once, else (a router's request, a service not ready at once) one in a box.
    #[project = AnswerProj]
    enum Answer<F> {
        Called { #[pin] inner: F },
        Other { inner: Pin<Box<dyn Future<Output = http::Response<Body>> + Send>> },
    }
}

impl<F: Future<Output = Result<http::Response<Body>, Infallible>>> Future for Answer<F> {
    type Output = http::Response<Body>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AnswerProj::Called { inner } => match ready!(inner.poll(cx)) {
                Ok(r) => Poll::Ready(r),
                Err(never) => match never {},
            },
            AnswerProj::Other { inner } => inner.as_mut().poll(cx),
        }
    }
}

/// A fast path's request goes to the service with the peer beside it; the router's carries
/// [`ConnectInfo<SocketAddr>`].
impl<S> App for Front<S>
where
    S: PeerService + Clone + Send + 'static,
    S::FromFuture: Send + 'static,
{
    fn answer(
        &self,
        req: http::Request<Body>,
        peer: SocketAddr,
    ) -> impl Future<Output = http::Response<Body>> + Send + 'static + use<S> {
        if self.is_fast(req.uri().path()) {
            Direct(self.service.clone()).call(req, peer)
        } else {
            // Not the hot path (the console, other apps' routes): boxed, so that the fast
            // path's future is not the size of this one.
            Answer::Other { inner: Box::pin(routed(self.router.clone(), req, peer)) }
        }
    }
}

async fn serve_app<A: App>(
    listener: TcpListener,
    app: A,
    limits: Limits,
    signal: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut signal = std::pin::pin!(signal);
    let result = loop {
        // Reap finished connections so the set does not grow.
        while conns.try_join_next().is_some() {}
        let permit = tokio::select! {
            () = &mut signal => break Ok(()),
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break Ok(()),
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut signal => break Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let stop = stop_rx.clone();
        conns.spawn(async move {
            serve_connection(stream, peer, app, limits, stop).await;
            drop(permit);
        });
    };
    drop(listener);
    let _ = stop_tx.send(true);
    let open = conns.len();
    if open > 0 {
        tracing::info!(open, "shutting down: letting open connections finish");
    }
    let finished =
        tokio::time::timeout(limits.shutdown_grace, async { while conns.join_next().await.is_some() {} })
            .await;
    if finished.is_err() {
        tracing::warn!(dropped = conns.len(), "connection grace period over; dropping open connections");
        conns.shutdown().await;
    }
    result
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

async fn serve_connection<A: App>(
    stream: TcpStream,
    peer: SocketAddr,
    app: A,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let accepted = Instant::now();
    let state = Arc::new(Phase::new());
    let io = TokioIo::new(Guarded { inner: stream, state: state.clone() });
    let svc_state = state.clone();
    // hyper is polled with this waker, not the task's (see `ConnWaker`).
    let waker = Arc::new(ConnWaker::new());
    let mut through = Through::new(waker.clone());
    let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let state = svc_state.clone();
        state.busy();
        let (parts, body) = req.into_parts();
        let req =
            http::Request::from_parts(parts, Body::new(Timed::new(body, waker.clone(), limits.body_timeout)));
        let answered = app.answer(req, peer);
        async move {
            let resp = answered.await;
            if resp.status() == http::StatusCode::SWITCHING_PROTOCOLS {
                // A WebSocket (the relay): the connection now belongs to its handler, which
                // keeps its own liveness checks; the HTTP bounds no longer apply.
                state.upgraded();
            }
            // The body as it is, in the wrapper (hyper takes any body: no box for it).
            Ok::<_, Infallible>(resp.map(|inner| Done { inner, state: Some(state) }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The watchdog below enforces the header and idle bounds; hyper's own header timer is off.
    builder.timer(TokioTimer::new()).header_read_timeout(None);
    // A response's head and body copied into one buffer and written with one `write`, rather
    // than queued and written with `writev`: the answers are small, and the queue cost
    // ~320-450 instructions a request more than the copy under callgrind.
    builder.writev(false);
    let conn = builder.serve_connection(io, svc).with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let mut watchdog = Watchdog::new(state.clone(), limits, accepted);
    // The stop signal's future is polled again only once the signal has changed (or for
    // another waker): in between it stays registered with the task's waker, where polling it
    // at each of the connection's wakes cost ~200 instructions for nothing.
    let seen = stop.clone();
    let mut stopping = std::pin::pin!(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    let mut registered: Option<std::task::Waker> = None;
    let stopped = std::future::poll_fn(|cx| {
        let same = registered.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if same && matches!(seen.has_changed(), Ok(false)) {
            return Poll::Pending;
        }
        let polled = stopping.as_mut().poll(cx);
        if polled.is_pending() && !same {
            registered = Some(cx.waker().clone());
        }
        polled
    });
    // `biased`: the watchdog is polled after the connection, so it sees the phase that poll
    // left (a response finished in it starts the idle bound there and then).
    let result = tokio::select! {
        biased;
        r = std::future::poll_fn(|cx| through.poll(conn.as_mut(), cx)) => r,
        () = stopped => {
            // A connection with no request in the service owes nobody an answer: close it
            // now. One that is serving finishes its response (bounded by the grace).
            if !state.is_busy() {
                tracing::debug!(%peer, "shutting down: closing a connection with no request in progress");
                return;
            }
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                biased;
                r = std::future::poll_fn(|cx| through.poll(conn.as_mut(), cx)) => r,
                what = std::future::poll_fn(|cx| watchdog.poll_overdue(cx)) => {
                    tracing::debug!(%peer, "{what} timed out; closing the connection");
                    return;
                }
            }
        }
        what = std::future::poll_fn(|cx| watchdog.poll_overdue(cx)) => {
            tracing::debug!(%peer, "{what} timed out; closing the connection");
            return;
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection closed with an error");
    }
}

/// An app whose hottest paths are found before the axum router: a request whose path is
/// exactly one of [`Front::path`]'s goes straight to `service`, any other to `router`.
///
/// `wemp serve` answers its callback paths this way: asking the router for them (its path
/// look-up, the extensions it adds for the path matched and its parameters, the boxed clones
/// of the routes' services and their boxed futures) cost each message about 2 000
/// instructions and ten allocations. The router keeps every route, the fast ones included,
/// so which service answers a path is the same either way, and so is the answer: the router
/// hands a service's response on as it is (hyper adds `Content-Length`). Served by
/// [`serve_front`] (as `wemp serve` does), a fast path's request also goes without the
/// [`ConnectInfo<SocketAddr>`] extension: the service is a [`PeerService`], handed the peer
/// beside the request.
///
/// ```
/// # use wemp_server::{Front, WechatService};
/// # fn app(service: WechatService) -> Front<WechatService> {
/// let router = axum::Router::new().route_service("/wechat", service.clone());
/// Front::new(service, router).path("/wechat")
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Front<S> {
    /// The fast paths, sorted.
    paths: Arc<[Box<str>]>,
    service: S,
    router: axum::Router,
}

impl<S> Front<S> {
    /// `router` for every path until [`Front::path`] adds one for `service`.
    pub fn new(service: S, router: axum::Router) -> Self {
        Self { paths: Arc::new([]), service, router }
    }

    /// Sends requests for exactly `path` (as the request line has it, not decoded) to the
    /// service. A path with a parameter or wildcard (`{`, `}` or `*`) is not a fast path and
    /// stays the router's alone.
    #[must_use]
    pub fn path(mut self, path: &str) -> Self {
        if !path.contains(['{', '}', '*']) {
            let mut paths = self.paths.to_vec();
            if let Err(at) = paths.binary_search_by(|p| (**p).cmp(path)) {
                paths.insert(at, path.into());
            }
            self.paths = paths.into();
        }
        self
    }

    /// Merges `other`'s routes into the router ([`axum::Router::merge`], which panics on a
    /// route both have).
    #[must_use]
    pub fn merge(mut self, other: axum::Router) -> Self {
        self.router = self.router.merge(other);
        self
    }

    /// Whether `path` goes straight to the service.
    pub fn is_fast(&self, path: &str) -> bool {
        self.paths.binary_search_by(|p| (**p).cmp(path)).is_ok()
    }
}

impl<S> tower::Service<http::Request<Body>> for Front<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = FrontFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        ready!(self.service.poll_ready(cx))?;
        tower::Service::<http::Request<Body>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        if self.is_fast(req.uri().path()) {
            FrontFuture { inner: Either::Fast { inner: self.service.call(req) } }
        } else {
            FrontFuture { inner: Either::Routed { inner: self.router.call(req) } }
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Front`].
    pub struct FrontFuture<F> {
        #[pin]
        inner: Either<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = EitherProj]
    enum Either<F> {
        Fast { #[pin] inner: F },
        Routed { #[pin] inner: axum::routing::future::RouteFuture<Infallible> },
    }
}

impl<F: Future<Output = Result<http::Response<Body>, Infallible>>> Future for FrontFuture<F> {
    type Output = Result<http::Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().inner.project() {
            EitherProj::Fast { inner } => inner.poll(cx),
            EitherProj::Routed { inner } => inner.poll(cx),
        }
    }
}

/// Where a connection is in its life, for the header and idle bounds: one word, where a
/// mutex around an enum holding the instants was locked at every request's first bytes,
/// dispatch and answer and at every poll of the watchdog.
///
/// Its low two bits are the kind ([`Phase::HEADERS`] and the others), then [`Phase::NEW`],
/// then for [`Phase::BUSY`] a count. It holds no instant: a bound's start is read from the
/// clock by the watchdog, polled after the connection in the same wake, when it first sees
/// the phase ([`Phase::NEW`]), and kept there. It is read and written only from the
/// connection's task (the stream, the service's future, the response body and the watchdog
/// all live in it, and the runtime orders a task's polls), so plain loads and stores do.
struct Phase(AtomicU64);

impl Phase {
    /// The header bound runs: from the connection's acceptance, or from a request's first
    /// bytes.
    const HEADERS: u64 = 0;
    /// The last response is finished: the idle bound runs until a byte arrives.
    const IDLE: u64 = 1;
    /// This many requests are in the service or their responses are being written: no bound.
    const BUSY: u64 = 2;
    /// Switched protocols (a WebSocket): no bound.
    const UPGRADED: u64 = 3;
    const KIND: u64 = 3;
    /// The phase began since the watchdog last looked: its bound runs from then (read as
    /// "now" when the watchdog sees it, microseconds later, after the connection's poll).
    const NEW: u64 = 4;
    /// One request in [`Phase::BUSY`]'s count.
    const ONE: u64 = 8;

    /// Accepted, no request yet: the header bound runs from the acceptance (the watchdog's
    /// first deadline).
    fn new() -> Self {
        Self(AtomicU64::new(Self::HEADERS))
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, word: u64) {
        self.0.store(word, Ordering::Relaxed);
    }

    /// A request goes to the service.
    fn busy(&self) {
        let word = self.get();
        self.set(match word & Self::KIND {
            Self::BUSY => word + Self::ONE,
            Self::UPGRADED => word,
            _ => Self::ONE | Self::BUSY,
        });
    }

    /// A response was written (or abandoned): when it was the last, the idle bound starts.
    fn done(&self) {
        let word = self.get();
        self.set(match word & Self::KIND {
            Self::BUSY if word >= 2 * Self::ONE => word - Self::ONE,
            Self::UPGRADED => word,
            _ => Self::NEW | Self::IDLE,
        });
    }

    /// Bytes arrived: on an idle connection they start a request, and its header bound.
    fn reading(&self) {
        if self.get() & Self::KIND == Self::IDLE {
            self.set(Self::NEW | Self::HEADERS);
        }
    }

    fn upgraded(&self) {
        self.set(Self::UPGRADED);
    }

    fn is_busy(&self) -> bool {
        self.get() & Self::KIND == Self::BUSY
    }
}

/// The header and idle bounds of a connection, polled after it (see `serve_connection`):
/// while a request is being served there is no bound; otherwise its deadline is the phase's.
///
/// The timer is moved only to an earlier deadline. A later one (each response starts the
/// idle bound anew) is left for the timer to reach first, when the deadline in force is read
/// again: a busy connection neither moves its timer nor polls it at every request.
struct Watchdog {
    state: Arc<Phase>,
    limits: Limits,
    /// The deadline of the header or idle bound in force when the phase last had one.
    deadline: Instant,
    timer: Pin<Box<Sleep>>,
    /// The waker the timer was last polled with: until the timer is moved or fires, polling
    /// it again with the same one changes nothing.
    polled: Option<std::task::Waker>,
}

impl Watchdog {
    /// For a connection accepted at `accepted`.
    fn new(state: Arc<Phase>, limits: Limits, accepted: Instant) -> Self {
        let deadline = accepted + limits.header_timeout;
        let timer = Box::pin(tokio::time::sleep_until(deadline));
        Self { state, limits, deadline, timer, polled: None }
    }

    /// Ready with what timed out once the bound in force has passed.
    fn poll_overdue(&mut self, cx: &mut Context<'_>) -> Poll<&'static str> {
        let word = self.state.get();
        let (bound, what) = match word & Phase::KIND {
            Phase::HEADERS => (self.limits.header_timeout, "request headers"),
            Phase::IDLE => (self.limits.idle_timeout, "idle keep-alive"),
            _ => return Poll::Pending,
        };
        if word & Phase::NEW != 0 {
            // A response finished, or a request's first bytes came and its head is not
            // complete, in the connection's poll just made: the bound runs from now.
            self.deadline = Instant::now() + bound;
            self.state.set(word & !Phase::NEW);
        }
        let deadline = self.deadline;
        let polled = self.polled.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if deadline < self.timer.deadline() {
            self.timer.as_mut().reset(deadline);
        } else if polled && !self.timer.is_elapsed() {
            return Poll::Pending;
        }
        // Polled after every move: a timer that fired has let go of its waker.
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                if !polled {
                    self.polled = Some(cx.waker().clone());
                }
                return Poll::Pending;
            }
            if self.timer.deadline() >= deadline {
                return Poll::Ready(what);
            }
            // Reached an earlier deadline than the one in force now: on to that one.
            self.timer.as_mut().reset(deadline);
        }
    }
}

/// The waker hyper's connection is polled with: it wakes the connection's task, except for a
/// wake held back while [`Timed`] takes a body's last bytes from hyper's channel.
///
/// hyper's body channel wakes its sender's waker each time the receiver takes a chunk, even
/// once the sender is gone (hyper 1.12 `body::chan`, `Receiver::poll_next`), and the sender's
/// waker is the connection's: so the connection, which had just put the body in the channel
/// and read all of its declared length, was polled again for nothing (the spare poll of
/// BENCHMARKS.md: 1.77 polls a request under callgrind, now 1.00). Only the wakes made on the
/// thread that takes the chunk, inside that call, are held ([`ConnWaker::holding`]), and one
/// is made after all when the body is not all here; any other wake (the socket, a timer, a
/// handler's answer, hyper's own yield) goes to the task as it comes.
struct ConnWaker {
    /// The task's waker, as of the connection's last poll.
    task: Mutex<Waker>,
}

thread_local! {
    /// While [`ConnWaker::holding`] runs on this thread: the connection whose wakes are held
    /// (its [`ConnWaker`]'s address), and whether one came.
    static HELD: Cell<(usize, bool)> = const { Cell::new((0, false)) };
}

impl ConnWaker {
    fn new() -> Self {
        Self { task: Mutex::new(Waker::noop().clone()) }
    }

    fn id(this: &Arc<Self>) -> usize {
        Arc::as_ptr(this) as usize
    }

    /// `take` (a poll of the body `inner`) with `this`'s wakes on this thread held back; a
    /// wake that came is made afterwards unless `inner` has all of its declared length.
    fn holding<B: HttpBody, T>(this: &Arc<Self>, inner: &mut B, take: impl FnOnce(&mut B) -> T) -> T {
        /// Puts back what was held before, also when `take` panics.
        struct Restore((usize, bool));
        impl Drop for Restore {
            fn drop(&mut self) {
                HELD.set(self.0);
            }
        }
        let restore = Restore(HELD.replace((Self::id(this), false)));
        let taken = take(inner);
        let (_, woken) = HELD.get();
        drop(restore);
        if woken && !inner.is_end_stream() {
            this.wake_by_ref();
        }
        taken
    }
}

impl Wake for ConnWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let id = Self::id(self);
        let held = HELD.with(|held| {
            let (at, _) = held.get();
            if at == id {
                held.set((at, true));
            }
            at == id
        });
        if !held {
            self.task.lock().unwrap_or_else(PoisonError::into_inner).wake_by_ref();
        }
    }
}

/// Polls hyper's connection with its [`ConnWaker`], which it first points at the polling
/// task's waker when that changed.
struct Through {
    shared: Arc<ConnWaker>,
    waker: Waker,
    /// The task's waker the [`ConnWaker`] holds.
    last: Option<Waker>,
}

impl Through {
    fn new(shared: Arc<ConnWaker>) -> Self {
        Self { waker: Waker::from(shared.clone()), shared, last: None }
    }

    fn poll<F: Future>(&mut self, conn: Pin<&mut F>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if !self.last.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.shared.task.lock().unwrap_or_else(PoisonError::into_inner).clone_from(cx.waker());
            self.last = Some(cx.waker().clone());
        }
        conn.poll(&mut Context::from_waker(&self.waker))
    }
}

/// The TCP stream, marking the first byte of a keep-alive connection's next request (from
/// which the header bound runs).
struct Guarded {
    inner: TcpStream,
    state: Arc<Phase>,
}

impl AsyncRead for Guarded {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            this.state.reading();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The request body, failing once [`Limits::body_timeout`] has passed since the service
/// first waited for it.
struct Timed {
    inner: hyper::body::Incoming,
    /// The waker hyper's connection is polled with (see [`ConnWaker`]).
    conn: Arc<ConnWaker>,
    /// Made, with the clock read for it, only when the body first makes the service wait:
    /// most bodies arrive with their headers, and then neither a timer is allocated nor the
    /// clock read. (The bound was read from the clock at dispatch: one reading a request,
    /// used by few. The service waits for the body microseconds after dispatch — for
    /// [`crate::WechatService`], once the account is known — so the bound moved by as much.)
    deadline: Option<Pin<Box<Sleep>>>,
    limit: Duration,
}

impl Timed {
    fn new(inner: hyper::body::Incoming, conn: Arc<ConnWaker>, limit: Duration) -> Self {
        Self { inner, conn, deadline: None, limit }
    }
}

/// The body did not arrive within [`Limits::body_timeout`].
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(pub Duration);

impl HttpBody for Timed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.inner.is_end_stream() {
            // All of a declared length has come (or there was no body): hyper's channel would
            // say so only after taking its lock twice and registering the waker again.
            return Poll::Ready(None);
        }
        // hyper's channel wakes its sender's waker (the connection's) whenever a chunk is
        // taken, also when the sender is gone, having sent all of a declared length: the
        // connection was then polled once more for nothing. That wake is held back, and made
        // only if the body is not all here (hyper has more to send).
        let polled = ConnWaker::holding(&this.conn, &mut this.inner, |inner| Pin::new(inner).poll_frame(cx));
        if let Poll::Ready(frame) = polled {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let limit = this.limit;
        let deadline = this.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        ready!(deadline.as_mut().poll(cx));
        Poll::Ready(Some(Err(Box::new(BodyTimeout(this.limit)))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The response body; when hyper drops it (written or abandoned) the connection is idle.
struct Done {
    inner: Body,
    state: Option<Arc<Phase>>,
}

impl Drop for Done {
    fn drop(&mut self) {
        if let Some(s) = self.state.take() {
            s.done();
        }
    }
}

impl HttpBody for Done {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Completes on Ctrl-C (and SIGTERM on Unix): pass it to [`serve_with_shutdown`].
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse as _;

    fn said(
        what: &'static str,
    ) -> impl tower::Service<
        http::Request<Body>,
        Response = http::Response<Body>,
        Error = Infallible,
        Future = impl Future<Output = Result<http::Response<Body>, Infallible>> + Send,
    > + Clone
    + Send
    + Sync
    + 'static {
        tower::service_fn(move |_req: http::Request<Body>| async move { Ok(what.into_response()) })
    }

    /// `serve_router` on a loopback port of its own, in a task: the port's address, and the
    /// task (aborted, or awaited after `stop`).
    async fn serving<S>(
        app: S,
        limits: Limits,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> (SocketAddr, tokio::task::JoinHandle<io::Result<()>>)
    where
        S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (addr, tokio::spawn(serve_router(listener, app, limits, stop)))
    }

    async fn call<S>(app: S, method: &str, path: &str) -> (http::StatusCode, http::HeaderMap, String)
    where
        S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    {
        let req = http::Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
        let res = app.oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (parts.status, parts.headers, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_fast_path_goes_to_the_service_and_every_other_to_the_router() {
        let router = axum::Router::new().route_service("/a", said("routed a")).route_service("/b", said("b"));
        let front = Front::new(said("fast"), router).path("/a").path("/c");
        assert_eq!(call(front.clone(), "GET", "/a?x=1").await.2, "fast");
        assert_eq!(call(front.clone(), "POST", "/c").await.2, "fast");
        assert_eq!(call(front.clone(), "GET", "/b").await.2, "b");
        // Exactly the path: anything else is the router's (which has no `/a/`).
        assert_eq!(call(front.clone(), "GET", "/a/").await.0, 404);
        assert_eq!(call(front.clone(), "GET", "/%61").await.0, 404);
        assert_eq!(
            call(front.merge(axum::Router::new().route_service("/d", said("d"))), "GET", "/d").await.2,
            "d"
        );
    }

    #[tokio::test]
    async fn a_path_with_a_parameter_stays_the_routers() {
        let router = axum::Router::new().route_service("/w/{appid}", said("routed"));
        let front = Front::new(said("fast"), router).path("/w/{appid}").path("/*");
        assert!(!front.is_fast("/w/{appid}") && !front.is_fast("/*"));
        assert_eq!(call(front.clone(), "GET", "/w/{appid}").await.2, "routed");
        assert_eq!(call(front, "GET", "/w/wx1").await.2, "routed");
    }

    /// Answers what it learnt of the peer: beside the request ([`PeerService::call_from`]) or
    /// in its extension.
    #[derive(Clone)]
    struct Peer;

    fn learnt(req: &http::Request<Body>, beside: Option<SocketAddr>) -> http::Response<Body> {
        let extension = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        format!("beside {beside:?}, extension {extension:?}").into_response()
    }

    impl tower::Service<http::Request<Body>> for Peer {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<http::Response<Body>, Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: http::Request<Body>) -> Self::Future {
            std::future::ready(Ok(learnt(&req, None)))
        }
    }

    impl PeerService for Peer {
        type FromFuture = Self::Future;

        fn call_from(&mut self, req: http::Request<Body>, peer: SocketAddr) -> Self::FromFuture {
            std::future::ready(Ok(learnt(&req, Some(peer))))
        }
    }

    /// `GET path` over a connection of its own: the body, and the client's address.
    async fn get(addr: SocketAddr, path: &str) -> (String, SocketAddr) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let me = conn.local_addr().unwrap();
        conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).await.unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        (body.to_owned(), me)
    }

    #[tokio::test]
    async fn served_front_a_fast_path_learns_the_peer_beside_the_request_and_the_router_in_its_extension() {
        let routed = axum::Router::new().route(
            "/r",
            axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                format!("routed {peer}")
            }),
        );
        let front = || Front::new(Peer, routed.clone()).path("/f");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            let _ = stopped.await;
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = tokio::spawn(serve_front(listener, front(), Limits::default(), signal));
        let (body, me) = get(addr, "/f").await;
        assert_eq!(body, format!("beside Some({me}), extension None"));
        let (body, me) = get(addr, "/r").await;
        assert_eq!(body, format!("routed {me}"));
        stop.send(()).unwrap();
        served.await.unwrap().unwrap();

        // Under `serve_router`, the same service gets the extension.
        let (addr, served) = serving(front(), Limits::default(), std::future::pending()).await;
        let (body, me) = get(addr, "/f").await;
        assert_eq!(body, format!("beside None, extension Some({me})"));
        let (body, me) = get(addr, "/r").await;
        assert_eq!(body, format!("routed {me}"));
        served.abort();
    }

    /// Says whether it was called given up ([`PeerService::call_owned_from`]) or kept.
    #[derive(Clone)]
    struct Owned;

    impl tower::Service<http::Request<Body>> for Owned {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<http::Response<Body>, Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _req: http::Request<Body>) -> Self::Future {
            std::future::ready(Ok("called".into_response()))
        }
    }

    impl PeerService for Owned {
        type FromFuture = Self::Future;

        fn call_from(&mut self, _req: http::Request<Body>, _peer: SocketAddr) -> Self::FromFuture {
            std::future::ready(Ok("kept".into_response()))
        }

        fn call_owned_from(self, req: http::Request<Body>, peer: SocketAddr) -> Self::FromFuture {
            std::future::ready(Ok(format!("given up, {}", learnt(&req, Some(peer)).status()).into_response()))
        }
    }

    /// Each fast-path request gets a service of its own, given up to the call: what its future
    /// needs of the service is moved there, not cloned (an `Either` passes that on).
    #[tokio::test]
    async fn served_front_gives_the_service_up_to_each_fast_request() {
        type Either = tower::util::Either<Owned, Peer>;
        for (service, want) in [
            (Either::Left(Owned), "given up, 200 OK".to_owned()),
            (Either::Right(Peer), "beside Some({me}), extension None".to_owned()),
        ] {
            let front = Front::new(service, axum::Router::new()).path("/f");
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let served =
                tokio::spawn(serve_front(listener, front, Limits::default(), std::future::pending()));
            for _ in 0..2 {
                let (body, me) = get(addr, "/f").await;
                assert_eq!(body, want.replace("{me}", &me.to_string()));
            }
            served.abort();
        }
    }

    /// Not ready when first asked (by anyone): ready from the second time on. Called only
    /// once it said it was ready, as `tower::Service` asks.
    #[derive(Clone)]
    struct Late {
        asked: Arc<std::sync::atomic::AtomicUsize>,
        ready: bool,
    }

    impl tower::Service<http::Request<Body>> for Late {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<http::Response<Body>, Infallible>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            if self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.ready = true;
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: http::Request<Body>) -> Self::Future {
            assert!(std::mem::take(&mut self.ready), "called before it was ready");
            std::future::ready(Ok(learnt(&req, None)))
        }
    }

    impl PeerService for Late {
        type FromFuture = Self::Future;

        fn call_from(&mut self, req: http::Request<Body>, peer: SocketAddr) -> Self::FromFuture {
            assert!(std::mem::take(&mut self.ready), "called before it was ready");
            std::future::ready(Ok(learnt(&req, Some(peer))))
        }
    }

    #[tokio::test]
    async fn served_front_a_service_not_ready_at_once_is_called_once_it_is() {
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let front = Front::new(Late { asked: asked.clone(), ready: false }, axum::Router::new()).path("/f");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = tokio::spawn(serve_front(listener, front, Limits::default(), std::future::pending()));
        for _ in 0..2 {
            let (body, me) = tokio::time::timeout(Duration::from_secs(5), get(addr, "/f")).await.unwrap();
            assert_eq!(body, format!("beside Some({me}), extension None"));
        }
        // Pending once, then ready for that request and the next.
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 3);
        served.abort();
    }

    /// A keep-alive request on `conn`, answered `ok`.
    async fn ask(conn: &mut TcpStream) {
        use tokio::io::AsyncWriteExt as _;
        conn.write_all(b"GET /k HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        answered(conn, b"\r\n\r\nok").await;
    }

    /// Reads `conn` until what came ends with `want` (within 5 s: a wake lost on the way
    /// leaves an answer waiting forever), and holds it to be a 200.
    async fn answered(conn: &mut TcpStream, want: &[u8]) {
        use tokio::io::AsyncReadExt as _;
        let mut answer = Vec::new();
        while !answer.ends_with(want) {
            let mut buf = [0_u8; 512];
            let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
                .await
                .expect("no answer within 5 s")
                .unwrap();
            assert!(n > 0, "closed before the answer: {:?}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&buf[..n]);
            assert!(answer.len() < 4096, "{:?}", String::from_utf8_lossy(&answer));
        }
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&answer));
    }

    /// How long after `since` the server closed `conn` (nothing else arriving), if within 10 s.
    async fn closed_after(conn: &mut TcpStream, since: Instant) -> Duration {
        use tokio::io::AsyncReadExt as _;
        let mut buf = [0_u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0) | Err(_))), "not closed within 10 s: {read:?}");
        since.elapsed()
    }

    /// The bounds' timer is moved only to earlier deadlines: one it reaches early (the first
    /// request's header bound, the first answer's idle bound) is looked at again rather than
    /// closing the connection, the idle bound runs from the last answer, and a request's first
    /// bytes start the (shorter) header bound.
    #[tokio::test]
    async fn the_bounds_run_from_the_last_answer_and_the_first_byte_of_the_next_request() {
        let limits = Limits::default()
            .header_timeout(Duration::from_millis(500))
            .idle_timeout(Duration::from_millis(3_000));
        let (addr, served) = serving(said("ok"), limits, std::future::pending()).await;

        let (mut idle, mut half) =
            (TcpStream::connect(addr).await.unwrap(), TcpStream::connect(addr).await.unwrap());
        ask(&mut idle).await;
        ask(&mut half).await;
        // Past the first request's header bound and the answers' idle bound start: both open.
        tokio::time::sleep(Duration::from_millis(700)).await;
        ask(&mut half).await;
        let header_sent = {
            use tokio::io::AsyncWriteExt as _;
            half.write_all(b"GET /k HTTP/1.1\r\nHo").await.unwrap();
            Instant::now()
        };
        ask(&mut idle).await;
        let answered = Instant::now();

        let (idle_for, half_for) =
            tokio::join!(closed_after(&mut idle, answered), closed_after(&mut half, header_sent));
        // ~3 s from the last answer; from the first one (700 ms earlier) it would be ~2.3 s. The
        // bound sits between the two, leaving a loaded machine 300 ms either way.
        assert!(idle_for >= Duration::from_millis(2_600), "idle closed after {idle_for:?}");
        assert!(
            half_for >= Duration::from_millis(450) && half_for < Duration::from_millis(2_500),
            "half-sent request closed after {half_for:?}"
        );
        served.abort();
    }

    /// The stop signal reaches a keep-alive connection that has been woken many times since it
    /// first looked at it: the idle connection is closed at once, not after the grace period.
    #[tokio::test]
    async fn at_the_stop_signal_an_idle_keep_alive_connection_is_closed_at_once() {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            let _ = stopped.await;
        };
        let limits = Limits::default().shutdown_grace(Duration::from_secs(20));
        let (addr, served) = serving(said("ok"), limits, signal).await;
        let mut conn = TcpStream::connect(addr).await.unwrap();
        for _ in 0..5 {
            ask(&mut conn).await;
        }
        let t0 = Instant::now();
        stop.send(()).unwrap();
        let closed = closed_after(&mut conn, t0).await;
        assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
        tokio::time::timeout(Duration::from_secs(3), served).await.unwrap().unwrap().unwrap();
    }

    /// The header bound of a keep-alive connection's next request runs from its first bytes,
    /// stamped by the watchdog after the poll that read them, not from later pieces of the head.
    #[tokio::test]
    async fn a_head_in_pieces_is_bounded_from_its_first_bytes() {
        use tokio::io::AsyncWriteExt as _;
        let limits = Limits::default()
            .header_timeout(Duration::from_millis(600))
            .idle_timeout(Duration::from_millis(5_000));
        let (addr, served) = serving(said("ok"), limits, std::future::pending()).await;
        let mut conn = TcpStream::connect(addr).await.unwrap();
        ask(&mut conn).await;
        conn.write_all(b"GET /k HTTP/1.1\r\n").await.unwrap();
        let first = Instant::now();
        tokio::time::sleep(Duration::from_millis(350)).await;
        conn.write_all(b"Host: x\r\n").await.unwrap();
        let second = Instant::now();
        let closed = closed_after(&mut conn, first).await;
        let after_second = closed.saturating_sub(second - first);
        // ~600 ms from the first piece, so ~250 ms after the second; a bound from the second
        // piece would close ~600 ms after it.
        assert!(closed >= Duration::from_millis(550), "closed {closed:?} after the first piece");
        assert!(after_second < Duration::from_millis(450), "closed {after_second:?} after the second piece");
        served.abort();
    }

    /// A body that comes in two writes, declared or chunked, reaches the handler whole, and the
    /// connection serves the next request.
    #[tokio::test]
    async fn a_body_in_pieces_reaches_the_handler_whole() {
        use tokio::io::AsyncWriteExt as _;
        let echo = axum::Router::new().route(
            "/echo",
            axum::routing::post(|body: Bytes| async move { format!("[{}]", String::from_utf8_lossy(&body)) }),
        );
        let (addr, served) = serving(echo, Limits::default(), std::future::pending()).await;
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let pieces: [&[u8]; 4] = [
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello",
            b"world",
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
            b"2\r\nde\r\n0\r\n\r\n",
        ];
        for (pair, want) in pieces.chunks(2).zip(["[helloworld]", "[abcde]"]) {
            conn.write_all(pair[0]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            conn.write_all(pair[1]).await.unwrap();
            answered(&mut conn, want.as_bytes()).await;
        }
        served.abort();
    }

    /// The body's bound runs from when the service first waits for the body, not from the
    /// headers: a handler that takes a second before it reads gets the whole bound then (the
    /// clock is read only for a body that makes the service wait).
    #[tokio::test]
    async fn the_body_bound_runs_from_the_services_first_wait_for_it() {
        use tokio::io::AsyncWriteExt as _;
        let slow = axum::Router::new().route(
            "/slow",
            axum::routing::post(|req: axum::extract::Request| async move {
                tokio::time::sleep(Duration::from_millis(1_000)).await;
                match axum::body::to_bytes(req.into_body(), 1 << 10).await {
                    Ok(body) => format!("[{}]", String::from_utf8_lossy(&body)),
                    Err(e) => format!("failed: {e}"),
                }
            }),
        );
        let limits = Limits::default().body_timeout(Duration::from_millis(600));
        let (addr, served) = serving(slow, limits, std::future::pending()).await;
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello").await.unwrap();
        // The rest 1.3 s after the headers: 0.3 s into a bound that began when the handler
        // asked (a bound from the headers ended at 0.6 s).
        tokio::time::sleep(Duration::from_millis(1_300)).await;
        conn.write_all(b"world").await.unwrap();
        answered(&mut conn, b"[helloworld]").await;
        served.abort();
    }

    /// Request after request with a declared body on one keep-alive connection, each answered
    /// (the wake hyper's channel makes when the last bytes are taken is held back, so the
    /// connection must be woken by the socket for the next), and the bodies kept past their
    /// requests still what was sent.
    #[tokio::test]
    async fn declared_bodies_on_one_connection_are_answered_and_outlive_their_requests() {
        use tokio::io::AsyncWriteExt as _;
        let kept = Arc::new(Mutex::new(Vec::<Bytes>::new()));
        let keep = kept.clone();
        let echo = axum::Router::new().route(
            "/keep",
            axum::routing::post(move |body: Bytes| {
                let len = body.len();
                keep.lock().unwrap().push(body);
                async move { format!("[{len}]") }
            }),
        );
        let (addr, served) = serving(echo, Limits::default(), std::future::pending()).await;
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let sent: Vec<String> =
            (0..12).map(|i| format!("<xml><n>{i}</n>{}</xml>", "x".repeat(300 + i * 37))).collect();
        for body in &sent {
            let request =
                format!("POST /keep HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            conn.write_all(request.as_bytes()).await.unwrap();
            let want = format!("[{}]", body.len());
            answered(&mut conn, want.as_bytes()).await;
        }
        let kept: Vec<String> =
            kept.lock().unwrap().iter().map(|b| String::from_utf8(b.to_vec()).unwrap()).collect();
        assert_eq!(kept, sent);
        served.abort();
    }

    /// A body of `chunks` whose every poll wakes `sender`, as hyper's channel wakes its
    /// sender's waker (the connection's) when a chunk is taken.
    struct Chunks {
        sender: Waker,
        chunks: std::collections::VecDeque<Bytes>,
    }

    impl HttpBody for Chunks {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            let this = self.get_mut();
            this.sender.wake_by_ref();
            Poll::Ready(this.chunks.pop_front().map(|c| Ok(Frame::data(c))))
        }

        /// All of the declared length taken.
        fn is_end_stream(&self) -> bool {
            self.chunks.is_empty()
        }
    }

    #[derive(Default)]
    struct Count(std::sync::atomic::AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The wake made while a body's last bytes are taken is held back; one made while earlier
    /// bytes are taken, one from another thread, another connection's and any outside go to
    /// the task; a panic inside puts things back.
    #[test]
    fn only_the_wake_of_taking_a_bodys_last_bytes_is_held() {
        let count = Arc::new(Count::default());
        let task = Waker::from(count.clone());
        let wakes = || count.0.load(Ordering::SeqCst);
        let conn = Arc::new(ConnWaker::new());
        // Polling the connection through it points it at the task's waker.
        let mut through = Through::new(conn.clone());
        let mut cx = Context::from_waker(&task);
        assert!(through.poll(std::pin::pin!(std::future::ready(())), &mut cx).is_ready());
        let sender = Waker::from(conn.clone());
        let mut body = Chunks {
            sender: sender.clone(),
            chunks: [Bytes::from_static(b"hello"), Bytes::from_static(b"world")].into(),
        };
        let take = |body: &mut Chunks| match ConnWaker::holding(&conn, body, |b| {
            Pin::new(b).poll_frame(&mut Context::from_waker(&task))
        }) {
            Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap(),
            other => panic!("{other:?}"),
        };
        // More to come: hyper must be woken to send it.
        assert_eq!(take(&mut body), "hello");
        assert_eq!(wakes(), 1);
        // The last: the wake is for nothing.
        assert_eq!(take(&mut body), "world");
        assert_eq!(wakes(), 1);
        sender.wake_by_ref();
        assert_eq!(wakes(), 2);
        // Inside, a wake from another thread goes through, and so does another connection's.
        let other = Arc::new(ConnWaker::new());
        let mut other_through = Through::new(other.clone());
        assert!(other_through.poll(std::pin::pin!(std::future::ready(())), &mut cx).is_ready());
        ConnWaker::holding(&conn, &mut body, |_| {
            let s = sender.clone();
            std::thread::spawn(move || s.wake()).join().unwrap();
            Waker::from(other.clone()).wake();
        });
        assert_eq!(wakes(), 4);
        // A panic inside: the wakes are not held after it.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ConnWaker::holding(&conn, &mut body, |_| panic!("taking failed"));
        }));
        assert!(panicked.is_err());
        sender.wake_by_ref();
        assert_eq!(wakes(), 5);
    }

    /// The phase's word: requests in the service counted, the idle bound from the last answer,
    /// bytes on an idle connection a request's head (unstamped), an upgrade for good.
    #[test]
    fn the_phase_counts_requests_and_keeps_an_upgrade() {
        let phase = Phase::new();
        assert_eq!(phase.get(), Phase::HEADERS);
        phase.reading();
        assert_eq!(phase.get(), Phase::HEADERS, "the first request's bound runs from the accept");
        phase.busy();
        phase.busy();
        phase.done();
        assert!(phase.is_busy());
        phase.done();
        assert_eq!(phase.get(), Phase::NEW | Phase::IDLE);
        phase.set(Phase::IDLE); // seen by the watchdog
        phase.reading();
        assert_eq!(phase.get(), Phase::NEW | Phase::HEADERS);
        phase.set(Phase::HEADERS);
        phase.reading();
        assert_eq!(phase.get(), Phase::HEADERS, "later bytes of the head do not restart its bound");
        phase.busy();
        phase.upgraded();
        phase.done();
        phase.busy();
        phase.reading();
        assert_eq!(phase.get(), Phase::UPGRADED);
    }

    #[tokio::test]
    async fn a_fast_answer_is_the_routers_answer() {
        let router = axum::Router::new().route_service("/r", said("twelve bytes"));
        let front = Front::new(said("twelve bytes"), router).path("/f");
        for method in ["GET", "HEAD", "POST"] {
            let (fast, routed) =
                (call(front.clone(), method, "/f").await, call(front.clone(), method, "/r").await);
            assert_eq!(fast, routed, "{method}");
        }
    }
}
