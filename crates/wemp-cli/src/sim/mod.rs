//! `wemp sim`: the WeChat platform's side of the callback protocol, played against any URL.
//!
//! The driver is [`wemp_client::callback`] (re-exported here): it signs and encrypts with
//! [`wemp_proto::wechat::Platform`], posts with WeChat's 5-second timeout and three tries of
//! the same signed request, and judges each answer as WeChat would
//! ([`wemp_proto::wechat::judge`]). This module adds the command line's grammar of messages
//! ([`build`]), the interactive chat ([`chat`]) and the conformance run ([`check`]).

pub mod build;
pub mod chat;
pub mod check;
pub mod words;

pub use build::{BuildError, EventSpec, MessageSpec};
pub use wemp_client::callback::*;
use wemp_proto::Incoming;

/// What the user sees when WeChat gives up on a server.
pub const USER_ERROR_BANNER: &str = ERROR_BANNER;

/// Builds a message of `spec` from `sim`'s user, now, with a fresh MsgId.
///
/// # Errors
/// As [`MessageSpec::build`].
pub fn message(sim: &Simulator, spec: &MessageSpec) -> Result<Incoming, BuildError> {
    spec.build(sim.header(), random_msg_id())
}
