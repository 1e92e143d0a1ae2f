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
pub mod message;
pub mod reply;
mod secret;
pub mod signature;
pub mod wechat;
pub mod xml;

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
