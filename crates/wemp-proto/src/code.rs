//! The error codes of WeChat's reference `WXBizMsgCrypt` implementation.
//!
//! Every error in this crate maps to one of them through `reference_code()`, so that
//! diagnostics can name the code a developer will find in WeChat's documentation and in
//! other SDKs' logs.

use std::fmt;

/// An error code of the official `WXBizMsgCrypt` sample implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ReferenceCode {
    /// `-40001`: signature verification failed.
    ValidateSignature,
    /// `-40002`: the XML could not be parsed (or has no `Encrypt`).
    ParseXml,
    /// `-40003`: the signature could not be computed.
    ComputeSignature,
    /// `-40004`: the EncodingAESKey is not valid.
    IllegalAesKey,
    /// `-40005`: the appid inside the decrypted payload is not ours.
    ValidateAppid,
    /// `-40006`: AES encryption failed.
    EncryptAes,
    /// `-40007`: AES decryption failed.
    DecryptAes,
    /// `-40008`: the decrypted buffer is illegal (padding, length field, encoding).
    IllegalBuffer,
    /// `-40009`: base64 encoding failed.
    EncodeBase64,
    /// `-40010`: base64 decoding failed.
    DecodeBase64,
    /// `-40011`: the reply XML could not be generated.
    GenReturnXml,
}

impl ReferenceCode {
    /// The numeric code, e.g. `-40001`.
    pub const fn code(self) -> i32 {
        match self {
            Self::ValidateSignature => -40001,
            Self::ParseXml => -40002,
            Self::ComputeSignature => -40003,
            Self::IllegalAesKey => -40004,
            Self::ValidateAppid => -40005,
            Self::EncryptAes => -40006,
            Self::DecryptAes => -40007,
            Self::IllegalBuffer => -40008,
            Self::EncodeBase64 => -40009,
            Self::DecodeBase64 => -40010,
            Self::GenReturnXml => -40011,
        }
    }

    /// The code for a number, if it is one of the reference codes.
    pub const fn from_code(code: i32) -> Option<Self> {
        Some(match code {
            -40001 => Self::ValidateSignature,
            -40002 => Self::ParseXml,
            -40003 => Self::ComputeSignature,
            -40004 => Self::IllegalAesKey,
            -40005 => Self::ValidateAppid,
            -40006 => Self::EncryptAes,
            -40007 => Self::DecryptAes,
            -40008 => Self::IllegalBuffer,
            -40009 => Self::EncodeBase64,
            -40010 => Self::DecodeBase64,
            -40011 => Self::GenReturnXml,
            _ => return None,
        })
    }

    /// A short English name for the code, e.g. `"bad signature"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ValidateSignature => "bad signature",
            Self::ParseXml => "XML parse error",
            Self::ComputeSignature => "cannot compute signature",
            Self::IllegalAesKey => "illegal AES key",
            Self::ValidateAppid => "appid mismatch",
            Self::EncryptAes => "AES encrypt failed",
            Self::DecryptAes => "AES decrypt failed",
            Self::IllegalBuffer => "illegal buffer",
            Self::EncodeBase64 => "base64 encode failed",
            Self::DecodeBase64 => "base64 decode failed",
            Self::GenReturnXml => "cannot generate reply XML",
        }
    }
}

impl fmt::Display for ReferenceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for n in -40011..=-40001 {
            let code = ReferenceCode::from_code(n).expect("every code in range is known");
            assert_eq!(code.code(), n);
        }
        assert_eq!(ReferenceCode::from_code(-40012), None);
        assert_eq!(ReferenceCode::from_code(0), None);
        assert_eq!(ReferenceCode::ValidateAppid.to_string(), "-40005 appid mismatch");
    }
}
