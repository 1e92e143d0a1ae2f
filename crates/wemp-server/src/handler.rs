//! Handlers: async functions from extractors to `Result<Reply, E>`.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use wemp_proto::Reply;

use crate::Inbound;
use crate::extract::FromInbound;

/// The error type handlers and middleware report.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A type-erased, cloneable service answering a delivery with a [`Reply`]: a whole router
/// ([`crate::Router::into_service`], [`crate::LiveRouter::service`]) and its layers.
pub type BoxHandler = BoxInboundService<Reply>;

/// A type-erased, cloneable service answering a delivery with an [`Answer`]: one rule's
/// handler (or the fallback) and the layers around it.
pub type RuleService = BoxInboundService<Answer>;

/// A type-erased, cloneable [`tower::Service`] from [`Inbound`] to `T` with [`BoxError`]s:
/// what [`BoxHandler`] (`T` = [`Reply`]) and [`RuleService`] (`T` = [`Answer`]) are.
///
/// It stands where `tower::util::BoxCloneSyncService<Inbound, T, BoxError>` stood (the two
/// names were aliases of it): the same [`BoxInboundService::new`], [`Clone`] and
/// [`tower::Service`] with the same future type, and a [`From`] conversion from tower's.
/// What it does differently is the crate's own services — a handler
/// ([`Handler::into_service`]), a router ([`crate::Router::into_service`]),
/// [`crate::LiveRouter::service`] and a plain function ([`BoxInboundService::from_sync_fn`],
/// which makes no future at all) — which are always ready: they are kept behind an `Arc`
/// and called through a shared reference, so cloning one counts a reference instead of
/// allocating, and their future, a boxed future already, is not boxed a second time. Any
/// other service (a layered one, say) is boxed as tower boxes it, cloned for each call and
/// driven through `poll_ready` first; its future is boxed once (not again when it already
/// is a [`BoxFuture`]).
pub struct BoxInboundService<T> {
    inner: Erased<T>,
}

enum Erased<T> {
    /// Always ready, called through a shared reference.
    Shared(Arc<dyn CallShared<T>>),
    /// Answers at once, without a future ([`BoxInboundService::from_sync_fn`]).
    Sync(Arc<SyncFn<T>>),
    /// Any tower service.
    Tower(Box<dyn CloneService<T>>),
}

/// What [`BoxInboundService::from_sync_fn`] keeps.
type SyncFn<T> = dyn Fn(&Inbound) -> Result<T, BoxError> + Send + Sync;

/// A service that is always ready and answers through a shared reference: the crate's own.
pub(crate) trait CallShared<T>: Send + Sync + 'static {
    fn call_shared(&self, inbound: Inbound) -> BoxFuture<'static, Result<T, BoxError>>;

    /// The call made now: the answer where the service has it without waiting for anything
    /// (a router whose matched rule is a plain function), else the future that gives it. By
    /// default, [`CallShared::call_shared`]'s future.
    fn call_now(&self, inbound: Inbound) -> Called<T> {
        Called::Later(self.call_shared(inbound))
    }
}

/// What [`BoxInboundService::call_now`] gave.
pub(crate) enum Called<T> {
    /// The answer, given in place: no future was made (nor boxed).
    Now(Result<T, BoxError>),
    /// The future that gives the answer.
    Later(BoxFuture<'static, Result<T, BoxError>>),
    /// Not called, the delivery given back: a service that is asked whether it is ready
    /// first ([`BoxInboundService::call_once`] calls it).
    NotYet(Inbound),
}

/// A tower service, object-safe and cloneable.
trait CloneService<T>: Send + Sync {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>>;
    fn call(&mut self, inbound: Inbound) -> BoxFuture<'static, Result<T, BoxError>>;
    fn clone_box(&self) -> Box<dyn CloneService<T>>;
}

impl<S, T> CloneService<T> for S
where
    S: tower::Service<Inbound, Response = T, Error = BoxError> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    T: 'static,
{
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        tower::Service::poll_ready(self, cx)
    }

    fn call(&mut self, inbound: Inbound) -> BoxFuture<'static, Result<T, BoxError>> {
        boxed(tower::Service::call(self, inbound))
    }

    fn clone_box(&self) -> Box<dyn CloneService<T>> {
        Box::new(self.clone())
    }
}

/// `future` as a boxed future: itself when it is one already (the future of tower's boxed
/// services, or of another [`BoxInboundService`]), in a new box otherwise.
fn boxed<F>(future: F) -> BoxFuture<'static, F::Output>
where
    F: Future + Send + 'static,
{
    let mut slot = Some(future);
    if let Some(already) = (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<BoxFuture<'static, F::Output>>>()
        .and_then(Option::take)
    {
        return already;
    }
    match slot {
        Some(future) => Box::pin(future),
        None => unreachable!("taken only when it was a boxed future"),
    }
}

impl<T: 'static> BoxInboundService<T> {
    /// Boxes `service`. (A `BoxInboundService` given here is returned as it is, and a
    /// service whose future is a [`BoxFuture`] already keeps it: nothing is boxed twice.)
    pub fn new<S>(service: S) -> Self
    where
        S: tower::Service<Inbound, Response = T, Error = BoxError> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
    {
        let mut slot = Some(service);
        if let Some(already) =
            (&mut slot as &mut dyn Any).downcast_mut::<Option<Self>>().and_then(Option::take)
        {
            return already;
        }
        match slot {
            Some(service) => Self { inner: Erased::Tower(Box::new(service)) },
            None => unreachable!("taken only when it was a BoxInboundService"),
        }
    }

    /// A service answering at once with what `f` returns for the delivery: for answers that
    /// wait for nothing (a fixed or templated reply, say). It is always ready and makes no
    /// future of its own (an async [`Handler`] makes and boxes one for every delivery);
    /// cloning it counts a reference. When a router calls it, `f` runs where the router's
    /// future is polled (a panic in it is caught with the router's).
    ///
    /// ```
    /// use wemp_server::{Answer, Matcher, Reply, Router, Rule, RuleService};
    /// let hello = RuleService::from_sync_fn(|inbound| {
    ///     Ok(Answer::Reply(Reply::text(format!("Hello, {}!", inbound.openid()))))
    /// });
    /// let router = Router::new().route(Rule::service(Matcher::text("hi"), hello));
    /// # drop(router);
    /// ```
    pub fn from_sync_fn(f: impl Fn(&Inbound) -> Result<T, BoxError> + Send + Sync + 'static) -> Self {
        Self { inner: Erased::Sync(Arc::new(f)) }
    }

    /// One of the crate's own services: always ready, called through a shared reference.
    pub(crate) fn shared(service: impl CallShared<T>) -> Self {
        Self { inner: Erased::Shared(Arc::new(service)) }
    }

    /// Calls the service once: through the shared reference when it is always ready,
    /// otherwise on a clone, once `poll_ready` says it is ready (as `oneshot` does). The
    /// call itself is made at the first poll (a panic in it is the caller's to catch there).
    pub(crate) async fn call_once(&self, inbound: Inbound) -> Result<T, BoxError> {
        match &self.inner {
            Erased::Shared(service) => service.call_shared(inbound).await,
            Erased::Sync(f) => f(&inbound),
            Erased::Tower(service) => when_ready(service.clone_box(), inbound).await,
        }
    }

    /// Calls the service now when it is always ready: its answer if it has it without
    /// waiting (a plain function, or a router whose matched rule is one), else its future;
    /// [`Called::NotYet`] for a service that is asked whether it is ready first. A panic in
    /// the call is the caller's to catch.
    pub(crate) fn call_now(&self, inbound: Inbound) -> Called<T> {
        match &self.inner {
            Erased::Shared(service) => service.call_now(inbound),
            Erased::Sync(f) => Called::Now(f(&inbound)),
            Erased::Tower(_) => Called::NotYet(inbound),
        }
    }

    /// The function of a [`BoxInboundService::from_sync_fn`] service, for a router to call
    /// in place (with a reference to the delivery, and no future).
    pub(crate) fn sync_fn(&self) -> Option<&SyncFn<T>> {
        match &self.inner {
            Erased::Sync(f) => Some(&**f),
            _ => None,
        }
    }

    /// [`Self::call_once`] as a future of its own, which does not borrow the service.
    pub(crate) fn call_owned(&self, inbound: Inbound) -> BoxFuture<'static, Result<T, BoxError>> {
        match &self.inner {
            Erased::Shared(service) => service.call_shared(inbound),
            Erased::Sync(f) => sync_call(f, inbound),
            Erased::Tower(service) => Box::pin(when_ready(service.clone_box(), inbound)),
        }
    }
}

/// A future calling `f` at its first poll, as [`BoxInboundService::call_once`] does.
fn sync_call<T: 'static>(f: &Arc<SyncFn<T>>, inbound: Inbound) -> BoxFuture<'static, Result<T, BoxError>> {
    let f = f.clone();
    Box::pin(async move { f(&inbound) })
}

/// Calls `service` (a clone of its own) once `poll_ready` says it is ready, as `oneshot`
/// does.
async fn when_ready<T>(mut service: Box<dyn CloneService<T>>, inbound: Inbound) -> Result<T, BoxError> {
    std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
    service.call(inbound).await
}

impl<T> Clone for BoxInboundService<T> {
    fn clone(&self) -> Self {
        let inner = match &self.inner {
            Erased::Shared(service) => Erased::Shared(service.clone()),
            Erased::Sync(f) => Erased::Sync(f.clone()),
            Erased::Tower(service) => Erased::Tower(service.clone_box()),
        };
        Self { inner }
    }
}

impl<T> fmt::Debug for BoxInboundService<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoxInboundService")
    }
}

impl<T: 'static> tower::Service<Inbound> for BoxInboundService<T> {
    type Response = T;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<T, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match &mut self.inner {
            Erased::Shared(_) | Erased::Sync(_) => Poll::Ready(Ok(())),
            Erased::Tower(service) => service.poll_ready(cx),
        }
    }

    fn call(&mut self, inbound: Inbound) -> Self::Future {
        match &mut self.inner {
            Erased::Shared(service) => service.call_shared(inbound),
            Erased::Sync(f) => sync_call(f, inbound),
            Erased::Tower(service) => service.call(inbound),
        }
    }
}

impl<T: 'static> From<tower::util::BoxCloneSyncService<Inbound, T, BoxError>> for BoxInboundService<T> {
    fn from(service: tower::util::BoxCloneSyncService<Inbound, T, BoxError>) -> Self {
        Self::new(service)
    }
}

/// What a rule's handler decided: a reply, or to let the next matching rule (then the
/// fallback) have the message. Control flow is a value, not an error.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// This is the reply ([`Reply::None`] answers `success`).
    Reply(Reply),
    /// Not for this handler: the router goes on with the next matching rule.
    FallThrough,
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Self {
        Self::Reply(reply)
    }
}

impl From<FallThrough> for Answer {
    fn from(_: FallThrough) -> Self {
        Self::FallThrough
    }
}

/// What a handler returns to decline a message: `Err(FallThrough)` (or `None` from a handler
/// returning `Option<Reply>`) makes the router go on with the next matching rule, then the
/// fallback. It is not an error: it is [`Answer::FallThrough`].
///
/// ```
/// use wemp_server::{FallThrough, Reply};
/// async fn only_vips(openid: wemp_server::extract::OpenId) -> Result<Reply, FallThrough> {
///     if openid.0.starts_with("vip") { Ok(Reply::text("welcome back")) } else { Err(FallThrough) }
/// }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FallThrough;

/// What a handler may return: a [`Reply`], an [`Answer`], `Option<Reply>` (`None` falls
/// through), `Result<Reply, FallThrough>` or `Result<Reply, E>` for any error `E`.
pub trait IntoReply {
    /// Converts into the router's result.
    ///
    /// # Errors
    /// The handler's error, boxed.
    fn into_reply(self) -> Result<Answer, BoxError>;
}

impl IntoReply for Reply {
    fn into_reply(self) -> Result<Answer, BoxError> {
        Ok(Answer::Reply(self))
    }
}

impl IntoReply for Answer {
    fn into_reply(self) -> Result<Answer, BoxError> {
        Ok(self)
    }
}

impl IntoReply for Option<Reply> {
    fn into_reply(self) -> Result<Answer, BoxError> {
        Ok(self.map_or(Answer::FallThrough, Answer::Reply))
    }
}

impl IntoReply for Result<Reply, FallThrough> {
    fn into_reply(self) -> Result<Answer, BoxError> {
        Ok(self.map_or(Answer::FallThrough, Answer::Reply))
    }
}

impl<E: Into<BoxError>> IntoReply for Result<Reply, E> {
    fn into_reply(self) -> Result<Answer, BoxError> {
        self.map(Answer::Reply).map_err(Into::into)
    }
}

/// An async function usable as a handler: its arguments are [`FromInbound`] extractors
/// (up to six), its output anything [`IntoReply`].
pub trait Handler<Args>: Clone + Send + Sync + 'static {
    /// Runs the handler for one delivery.
    fn call(&self, inbound: Inbound) -> BoxFuture<'static, Result<Answer, BoxError>>;

    /// The handler as a boxed tower service.
    fn into_service(self) -> RuleService
    where
        Args: 'static,
    {
        RuleService::shared(HandlerService { handler: self, _args: PhantomData::<fn() -> Args> })
    }
}

macro_rules! impl_handler {
    ($($ty:ident),*) => {
        #[allow(non_snake_case, unused_variables)]
        impl<F, Fut, R, $($ty,)*> Handler<($($ty,)*)> for F
        where
            F: Fn($($ty),*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoReply,
            $($ty: FromInbound + Send + 'static,)*
        {
            fn call(&self, inbound: Inbound) -> BoxFuture<'static, Result<Answer, BoxError>> {
                $(
                    let $ty = match $ty::from_inbound(&inbound) {
                        Ok(v) => v,
                        Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
                    };
                )*
                let fut = (self)($($ty),*);
                Box::pin(async move { fut.await.into_reply() })
            }
        }
    };
}

impl_handler!();
impl_handler!(T1);
impl_handler!(T1, T2);
impl_handler!(T1, T2, T3);
impl_handler!(T1, T2, T3, T4);
impl_handler!(T1, T2, T3, T4, T5);
impl_handler!(T1, T2, T3, T4, T5, T6);

/// A [`Handler`] as a [`tower::Service`].
pub struct HandlerService<H, Args> {
    handler: H,
    _args: PhantomData<fn() -> Args>,
}

impl<H: Clone, Args> Clone for HandlerService<H, Args> {
    fn clone(&self) -> Self {
        Self { handler: self.handler.clone(), _args: PhantomData }
    }
}

impl<H, Args> tower::Service<Inbound> for HandlerService<H, Args>
where
    H: Handler<Args>,
{
    type Response = Answer;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Answer, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, inbound: Inbound) -> Self::Future {
        self.handler.call(inbound)
    }
}

impl<H, Args> CallShared<Answer> for HandlerService<H, Args>
where
    H: Handler<Args>,
    Args: 'static,
{
    fn call_shared(&self, inbound: Inbound) -> BoxFuture<'static, Result<Answer, BoxError>> {
        self.handler.call(inbound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address<T>(future: &BoxFuture<'static, T>) -> *const () {
        std::ptr::from_ref::<dyn Future<Output = T> + Send>(&**future).cast()
    }

    #[test]
    fn a_boxed_future_is_not_boxed_again() {
        let future: BoxFuture<'static, u8> = Box::pin(async { 1 });
        let at = address(&future);
        assert_eq!(address(&boxed(future)), at);
        // Any other future is boxed.
        let ready = boxed(std::future::ready(2u8));
        assert_eq!(futures_util::FutureExt::now_or_never(ready), Some(2));
    }

    fn inbound() -> Inbound {
        let message = wemp_proto::Incoming::parse(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>o_1</FromUserName><CreateTime>1</CreateTime>\
             <MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId></xml>",
        )
        .unwrap();
        let account = Arc::new(crate::Account::new("wx_handler_test", "Tok123"));
        Inbound::new(
            message,
            account,
            wemp_proto::Mode::Plain,
            crate::Ctx::detached(std::time::Duration::from_secs(5)),
        )
    }

    #[test]
    fn a_sync_fn_runs_at_the_first_poll_and_its_clones_share_it() {
        use futures_util::FutureExt as _;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let mut service = BoxHandler::from_sync_fn(move |inbound| {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(Reply::text(inbound.openid()))
        });
        let f = service.sync_fn().map(|f| std::ptr::from_ref(f).cast::<()>());
        // Cloned, or boxed again: the same function, not a copy nor a tower service.
        let clone = BoxHandler::new(service.clone());
        assert_eq!(clone.sync_fn().map(|f| std::ptr::from_ref(f).cast::<()>()), f);
        assert!(f.is_some());
        // Each way of calling it makes its call at the first poll, as a handler's is.
        let futures = [
            service.call_once(inbound()).boxed(),
            service.call_owned(inbound()),
            tower::Service::call(&mut service.clone(), inbound()),
        ];
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        for (i, future) in futures.into_iter().enumerate() {
            assert_eq!(future.now_or_never().unwrap().unwrap(), Reply::text("o_1"));
            assert_eq!(calls.load(Ordering::SeqCst), i + 1);
        }
        assert!(
            tower::Service::poll_ready(&mut service, &mut Context::from_waker(std::task::Waker::noop()))
                .is_ready()
        );
        // A handler is not one.
        assert!(
            RuleService::new(tower::service_fn(|_: Inbound| async {
                Ok::<_, BoxError>(Answer::FallThrough)
            }))
            .sync_fn()
            .is_none()
        );
        assert!((|| async { Reply::None }).into_service().sync_fn().is_none());
    }

    #[test]
    fn a_boxed_service_boxed_again_is_itself() {
        let router = crate::Router::new().into_service();
        assert!(matches!(router.inner, Erased::Shared(_)));
        assert!(matches!(BoxHandler::new(router).inner, Erased::Shared(_)));
        let tower = tower::service_fn(|_: Inbound| async { Ok::<_, BoxError>(Reply::None) });
        let boxed = BoxHandler::new(tower);
        assert!(matches!(boxed.inner, Erased::Tower(_)));
        assert!(matches!(BoxHandler::new(boxed).inner, Erased::Tower(_)));
    }
}
