//! Typed extractors for handler arguments.
//!
//! ```
//! use wemp_server::extract::{Content, OpenId};
//! use wemp_server::Reply;
//! async fn echo(Content(text): Content, OpenId(user): OpenId) -> Reply {
//!     Reply::text(format!("{user} said {text}"))
//! }
//! ```
//!
//! An extractor that does not apply (a [`Content`] on an image message) makes the handler
//! fail with [`ExtractError`]; wrap it in `Option<_>` to make it optional.

use std::sync::Arc;

use wemp_proto::message::Text;
use wemp_proto::{Event, Incoming, Mode};

pub use crate::context::Captures;
use crate::{Account, Ctx, Inbound};

/// An extractor did not apply to the message it was given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("extractor {extractor} does not apply to {} {msg_type} message", article(.msg_type))]
pub struct ExtractError {
    /// The extractor's name.
    pub extractor: &'static str,
    /// The message's `MsgType` (and `Event`).
    pub msg_type: String,
}

/// `an` before a vowel sound (`an image`, `an event/subscribe`), else `a`.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) { "an" } else { "a" }
}

impl ExtractError {
    fn new(extractor: &'static str, inbound: &Inbound) -> Self {
        let msg = inbound.message();
        let msg_type = match msg.event() {
            Some(e) => format!("event/{}", e.kind()),
            None => msg.kind().to_string(),
        };
        Self { extractor, msg_type }
    }
}

/// Builds a handler argument from a delivery.
pub trait FromInbound: Sized {
    /// Extracts the value.
    ///
    /// # Errors
    /// [`ExtractError`] when the value does not exist for this message.
    fn from_inbound(inbound: &Inbound) -> Result<Self, ExtractError>;
}

impl<T: FromInbound> FromInbound for Option<T> {
    fn from_inbound(inbound: &Inbound) -> Result<Self, ExtractError> {
        Ok(T::from_inbound(inbound).ok())
    }
}

impl FromInbound for Inbound {
    fn from_inbound(inbound: &Inbound) -> Result<Self, ExtractError> {
        Ok(inbound.clone())
    }
}

/// The whole message (cloned).
impl FromInbound for Incoming {
    fn from_inbound(inbound: &Inbound) -> Result<Self, ExtractError> {
        Ok(inbound.message().clone())
    }
}

/// A text message.
impl FromInbound for Text {
    fn from_inbound(inbound: &Inbound) -> Result<Self, ExtractError> {
        match inbound.message() {
            Incoming::Text(t) => Ok(t.clone()),
            _ => Err(ExtractError::new("Text", inbound)),
        }
    }
}

/// An event.
impl FromInbound for Event {
    fn from_inbound(inbound: &Inbound) -> Result<Self, ExtractError> {
        inbound.event().cloned().ok_or_else(|| ExtractError::new("Event", inbound))
    }
}

/// The account the message was sent to.
impl FromInbound for Arc<Account> {
    fn from_inbound(inbound: &Inbound) -> Result<Self, ExtractError> {
        Ok(inbound.account().clone())
    }
}

/// The deadline context.
impl FromInbound for Ctx {
    fn from_inbound(inbound: &Inbound) -> Result<Self, ExtractError> {
        Ok(inbound.ctx().clone())
    }
}

/// The mode the message arrived in.
impl FromInbound for Mode {
    fn from_inbound(inbound: &Inbound) -> Result<Self, ExtractError> {
        Ok(inbound.mode())
    }
}

/// The regex captures of the matching rule (empty when the rule was not a regex).
impl FromInbound for Captures {
    fn from_inbound(inbound: &Inbound) -> Result<Self, ExtractError> {
        Ok(inbound.captures().cloned().unwrap_or_default())
    }
}

/// A text message's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Content(pub String);

impl FromInbound for Content {
    fn from_inbound(inbound: &Inbound) -> Result<Self, ExtractError> {
        inbound.text().map(|t| Self(t.to_owned())).ok_or_else(|| ExtractError::new("Content", inbound))
    }
}

/// The `EventKey` of an event that has one (a menu click's key, a view's URL, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventKey(pub String);

impl FromInbound for EventKey {
    fn from_inbound(inbound: &Inbound) -> Result<Self, ExtractError> {
        inbound
            .event()
            .and_then(Event::event_key)
            .map(|k| Self(k.to_owned()))
            .ok_or_else(|| ExtractError::new("EventKey", inbound))
    }
}

/// The key of a menu `CLICK`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClickKey(pub String);

impl FromInbound for ClickKey {
    fn from_inbound(inbound: &Inbound) -> Result<Self, ExtractError> {
        match inbound.event() {
            Some(Event::Click(c)) => Ok(Self(c.event_key.clone())),
            _ => Err(ExtractError::new("ClickKey", inbound)),
        }
    }
}

/// The QR scene of a `subscribe` through a QR code or of a `SCAN` (`qrscene_` stripped): the
/// text of the scene the code was created with (`wemp_client::api::qrcode::Scene`; a numeric
/// scene arrives as its digits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrScene(pub String);

impl FromInbound for QrScene {
    fn from_inbound(inbound: &Inbound) -> Result<Self, ExtractError> {
        inbound
            .event()
            .and_then(Event::scene)
            .map(|s| Self(s.to_owned()))
            .ok_or_else(|| ExtractError::new("QrScene", inbound))
    }
}

/// The sender's OpenID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenId(pub String);

impl FromInbound for OpenId {
    fn from_inbound(inbound: &Inbound) -> Result<Self, ExtractError> {
        Ok(Self(inbound.openid().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_reads_as_english() {
        let e = |t: &str| ExtractError { extractor: "Content", msg_type: t.to_owned() }.to_string();
        assert_eq!(e("image"), "extractor Content does not apply to an image message");
        assert_eq!(e("event/LOCATION"), "extractor Content does not apply to an event/LOCATION message");
        assert_eq!(e("voice"), "extractor Content does not apply to a voice message");
    }
}
