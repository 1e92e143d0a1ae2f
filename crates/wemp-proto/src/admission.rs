//! Admission: what decides whether a callback request is WeChat's and which account it is for.
//!
//! This module is the one home of the inbound contract's vocabulary; today it holds the reasons
//! a request is refused, shared by the server (status, metrics, log lines) and the message log.

/// The reasons a request is refused, as counted in metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RejectReason {
    /// A required query parameter is missing.
    MissingParam,
    /// `timestamp` is not a number.
    BadTimestamp,
    /// `timestamp` is outside the freshness window.
    StaleTimestamp,
    /// `signature` or `msg_signature` does not match (`-40001`).
    SignatureMismatch,
    /// A plain request while encryption is required.
    PlainRefused,
    /// The body exceeds the limit.
    BodyTooLarge,
    /// The body did not arrive whole: the client hung up, or was too slow.
    BodyIncomplete,
    /// The body is not acceptable XML, or has a DOCTYPE (`-40002`).
    BadXml,
    /// An encrypted request without `Encrypt` (`-40002`).
    MissingEncrypt,
    /// An encrypted request to an account with no EncodingAESKey (`-40004`).
    NoAesKey,
    /// `Encrypt` is not base64 (`-40010`).
    Base64,
    /// The ciphertext is not whole AES blocks (`-40007`).
    AesDecrypt,
    /// Bad padding, length or UTF-8 after decryption (`-40008`).
    IllegalBuffer,
    /// The payload's appid is another account's (`-40005`).
    AppidMismatch,
    /// No configured account matches the path or `ToUserName`.
    UnknownAccount,
    /// Neither GET nor POST.
    MethodNotAllowed,
}

impl RejectReason {
    /// Every reason, in metric order.
    pub const ALL: &'static [Self] = &[
        Self::MissingParam,
        Self::BadTimestamp,
        Self::StaleTimestamp,
        Self::SignatureMismatch,
        Self::PlainRefused,
        Self::BodyTooLarge,
        Self::BodyIncomplete,
        Self::BadXml,
        Self::MissingEncrypt,
        Self::NoAesKey,
        Self::Base64,
        Self::AesDecrypt,
        Self::IllegalBuffer,
        Self::AppidMismatch,
        Self::UnknownAccount,
        Self::MethodNotAllowed,
    ];

    /// The metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MissingParam => "missing_param",
            Self::BadTimestamp => "bad_timestamp",
            Self::StaleTimestamp => "stale_timestamp",
            Self::SignatureMismatch => "signature_mismatch",
            Self::PlainRefused => "plain_refused",
            Self::BodyTooLarge => "body_too_large",
            Self::BodyIncomplete => "body_incomplete",
            Self::BadXml => "bad_xml",
            Self::MissingEncrypt => "missing_encrypt",
            Self::NoAesKey => "no_aes_key",
            Self::Base64 => "base64",
            Self::AesDecrypt => "aes_decrypt",
            Self::IllegalBuffer => "illegal_buffer",
            Self::AppidMismatch => "appid_mismatch",
            Self::UnknownAccount => "unknown_account",
            Self::MethodNotAllowed => "method_not_allowed",
        }
    }
}
