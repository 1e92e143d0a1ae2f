//! Handlers: async functions from extractors to `Result<Reply, E>`.

use std::future::Future;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use wemp_proto::Reply;

use crate::Inbound;
use crate::extract::FromInbound;

/// The error type handlers and middleware report.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A type-erased, cloneable service answering a delivery with a [`Reply`]: a whole router
/// ([`crate::Router::into_service`], [`crate::LiveRouter::service`]) and its layers.
pub type BoxHandler = tower::util::BoxCloneSyncService<Inbound, Reply, BoxError>;

/// A type-erased, cloneable service answering a delivery with an [`Answer`]: one rule's
/// handler (or the fallback) and the layers around it.
pub type RuleService = tower::util::BoxCloneSyncService<Inbound, Answer, BoxError>;

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
        RuleService::new(HandlerService { handler: self, _args: PhantomData::<fn() -> Args> })
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
