#![doc = include_str!("../README.md")]

pub mod accounts;
#[cfg(feature = "client")]
mod api_proxy;
mod clock;
#[cfg(feature = "client")]
pub mod component;
mod context;
#[cfg(feature = "client")]
mod cs_sink;
pub mod extract;
#[cfg(feature = "client")]
mod forward;
mod handler;
mod late;
pub mod log;
mod metrics;
pub mod observe;
mod reject;
#[cfg(feature = "client")]
mod relay;
mod router;
mod serve;
mod service;
mod session;

pub use accounts::{AccountSource, AddError, LiveAccounts};
#[cfg(feature = "client")]
pub use api_proxy::{ACCOUNT_HEADER, ApiProxy, ClientLookup, HELD_BODY_LIMIT};
pub use clock::{Clock, FakeClock, FixedClock, NonceBuf, NonceSource, RandomNonce, SystemClock};
#[cfg(feature = "client")]
pub use component::Component;
pub use context::{Captures, Ctx, Inbound};
#[cfg(feature = "client")]
pub use cs_sink::CustomerServiceSink;
#[cfg(feature = "client")]
pub use forward::{
    ANSWER_LIMIT, CONTRACT_VERSION, DEDUP_KEY_HEADER, Forward, ForwardError, RELAY_TARGET, SIGNATURE_HEADER,
    sign,
};
pub use handler::{
    Answer, BoxError, BoxHandler, BoxInboundService, FallThrough, Handler, HandlerService, IntoReply,
    RuleService,
};
pub use late::{LateReplySink, LoggingSink, SinkOutcome};
pub use observe::{
    BroadcastObserver, DedupOutcome, DeliveryRecord, ForwardRecord, ForwardResult, ForwardTarget,
    HandlerFailure, MessageLogObserver, Observer, RecordOutcome, RejectionRecord,
};
pub use reject::{RejectReason, RejectionLogRate};
#[cfg(feature = "client")]
pub use relay::{
    RELAY_AUTH_HEADER, RELAY_AUTH_WINDOW, RELAY_PING_INTERVAL, Relay, RelayAnswer, RelayError, RelayRequest,
    relay_auth,
};
pub use router::{LiveRouter, Match, Matcher, Router, Rule};
pub use serve::{
    BodyTimeout, Front, FrontFuture, Limits, PeerService, serve, serve_front, serve_router,
    serve_with_shutdown, shutdown_signal,
};
pub use service::{ErrorPolicy, WechatService, WechatServiceBuilder};
pub use session::{Session, SessionError};
pub use wemp_proto::admission::Account;

pub use wemp_proto::{Article, Event, EventKind, Incoming, Mode, MsgKind, Reply};
pub use wemp_store::{DedupStore, SessionStore, memory::MemoryDedupStore, memory::MemorySessionStore};

/// Building or running a server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No account was added to the builder.
    #[error("no account configured: add one with WechatService::builder().account(..)")]
    NoAccount,
    /// Two accounts answer on the same path segment.
    #[error("two accounts answer on path segment {0:?}: give one another with Account::with_path")]
    DuplicatePath(String),
    /// Two accounts have the same appid.
    #[error("two accounts have appid {0:?}: configure each account once")]
    DuplicateAppid(String),
    /// The listener failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
