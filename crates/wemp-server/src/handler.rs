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

/// A type-erased, cloneable handler service: what routers, rules and layers pass around.
pub type BoxHandler = tower::util::BoxCloneSyncService<Inbound, Reply, BoxError>;

/// Returned (as the error) by a handler that declines a message: the router goes on with
/// the next matching rule, then the fallback.
///
/// ```
/// use wemp_server::{FallThrough, Reply};
/// async fn only_vips(openid: wemp_server::extract::OpenId) -> Result<Reply, FallThrough> {
///     if openid.0.starts_with("vip") { Ok(Reply::text("welcome back")) } else { Err(FallThrough) }
/// }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, thiserror::Error)]
#[error("handler fell through to the next rule")]
pub struct FallThrough;

/// What a handler may return: a [`Reply`] or `Result<Reply, E>`.
pub trait IntoReply {
    /// Converts into the router's result.
    ///
    /// # Errors
    /// The handler's error, boxed.
    fn into_reply(self) -> Result<Reply, BoxError>;
}

impl IntoReply for Reply {
    fn into_reply(self) -> Result<Reply, BoxError> {
        Ok(self)
    }
}

impl<E: Into<BoxError>> IntoReply for Result<Reply, E> {
    fn into_reply(self) -> Result<Reply, BoxError> {
        self.map_err(Into::into)
    }
}

/// An async function usable as a handler: its arguments are [`FromInbound`] extractors
/// (up to six), its output a [`Reply`] or `Result<Reply, E>`.
pub trait Handler<Args>: Clone + Send + Sync + 'static {
    /// Runs the handler for one delivery.
    fn call(&self, inbound: Inbound) -> BoxFuture<'static, Result<Reply, BoxError>>;

    /// The handler as a boxed tower service.
    fn into_service(self) -> BoxHandler
    where
        Args: 'static,
    {
        BoxHandler::new(HandlerService { handler: self, _args: PhantomData::<fn() -> Args> })
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
            fn call(&self, inbound: Inbound) -> BoxFuture<'static, Result<Reply, BoxError>> {
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
    type Response = Reply;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Reply, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, inbound: Inbound) -> Self::Future {
        self.handler.call(inbound)
    }
}
