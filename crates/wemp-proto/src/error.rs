use crate::ReferenceCode;
use crate::crypto::{DecryptError, EncryptError, KeyError};
use crate::envelope::EnvelopeError;
use crate::reply::{ReplyError, ReplyParseError};
use crate::signature::VerifyError;
use crate::xml::XmlError;

/// Any failure of this crate; each maps to a [`ReferenceCode`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A signature did not match.
    #[error("signature check failed: {0}")]
    Verify(#[from] VerifyError),
    /// The EncodingAESKey is not usable.
    #[error("illegal AES key: {0}")]
    Key(#[from] KeyError),
    /// Decryption failed.
    #[error("cannot decrypt payload: {0}")]
    Decrypt(#[from] DecryptError),
    /// Encryption failed.
    #[error("cannot encrypt payload: {0}")]
    Encrypt(#[from] EncryptError),
    /// The XML is not acceptable.
    #[error("bad XML: {0}")]
    Xml(#[from] XmlError),
    /// The encrypted envelope is not usable.
    #[error("bad envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    /// A reply WeChat would refuse.
    #[error("bad reply: {0}")]
    Reply(#[from] ReplyError),
    /// A server's answer that is not a valid passive reply.
    #[error("invalid reply: {0}")]
    ReplyParse(ReplyParseError),
    /// An encrypted mode was asked for but no EncodingAESKey was configured.
    #[error("no EncodingAESKey configured: compatible and safe mode need one")]
    NoCipher,
}

impl From<ReplyParseError> for Error {
    /// Malformed XML is reported as [`Error::Xml`] whichever parser met it.
    fn from(e: ReplyParseError) -> Self {
        match e {
            ReplyParseError::Xml(xml) => Self::Xml(xml),
            other => Self::ReplyParse(other),
        }
    }
}

impl Error {
    /// The reference code of the failure.
    pub fn reference_code(&self) -> ReferenceCode {
        match self {
            Self::Verify(e) => e.reference_code(),
            Self::Key(e) => e.reference_code(),
            Self::Decrypt(e) => e.reference_code(),
            Self::Encrypt(e) => e.reference_code(),
            Self::Xml(e) => e.reference_code(),
            Self::Envelope(e) => e.reference_code(),
            Self::Reply(e) => e.reference_code(),
            Self::ReplyParse(_) => ReferenceCode::ParseXml,
            Self::NoCipher => ReferenceCode::IllegalAesKey,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
