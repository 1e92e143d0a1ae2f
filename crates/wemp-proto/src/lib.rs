#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod admission;
pub mod clock;
pub mod code;
pub mod component;
pub mod crypto;
pub mod envelope;
mod error;
pub mod event;
mod field;
mod find;
pub mod message;
pub mod reply;
mod secret;
pub mod signature;
pub mod wechat;
pub mod xml;

/// `s.trim()`, without looking at its characters when neither end can be whitespace (a
/// printable ASCII character at each end), as with nearly every value WeChat sends: `trim`
/// decodes a character at each end, ~50 instructions, on every signature, timestamp, number
/// and type read from a message.
#[inline]
pub(crate) fn trim(s: &str) -> &str {
    match s.as_bytes() {
        [first, .., last] if first.is_ascii_graphic() && last.is_ascii_graphic() => s,
        [only] if only.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

pub use admission::RejectReason;
pub use code::ReferenceCode;
pub use crypto::{Cipher, DecryptError, EncryptError, KeyError};
pub use envelope::{EncryptedReply, Envelope, EnvelopeError, Mode};
pub use error::{Error, Result};
pub use event::{Event, EventKind};
pub use message::{Header, Incoming, MsgKind, OtherKind, Unknown};
pub use reply::{Article, Reply, ReplyContext, ReplyError};
pub use secret::{Secret, secret_serde};
pub use signature::VerifyError;
pub use xml::{Document, Element, RawXml, XmlError};

#[cfg(test)]
mod tests {
    proptest::proptest! {
        #[test]
        fn trim_is_str_trim(s in "[ \t\r\n\u{b}\u{c}\u{85}\u{a0}\u{3000}\u{1f}\u{7f}a-z0-9中]{0,6}") {
            proptest::prop_assert_eq!(super::trim(&s), s.trim());
        }

        #[test]
        fn trim_is_str_trim_on_any_text(s in proptest::prelude::any::<String>()) {
            proptest::prop_assert_eq!(super::trim(&s), s.trim());
        }
    }
}
