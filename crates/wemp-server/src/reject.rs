//! Why a request was refused: a specific 4xx, a one-line reason, a structured log line.

use http::StatusCode;
use wemp_proto::{DecryptError, Mode, ReferenceCode};

/// The reasons a request is refused, as counted in metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

/// A refused request.
#[derive(Clone, Debug)]
pub(crate) struct Rejection {
    pub(crate) status: StatusCode,
    pub(crate) reason: RejectReason,
    pub(crate) code: Option<ReferenceCode>,
    pub(crate) param: &'static str,
    pub(crate) message: String,
}

impl Rejection {
    pub(crate) fn new(
        status: StatusCode,
        reason: RejectReason,
        code: Option<ReferenceCode>,
        param: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self { status, reason, code, param, message: message.into() }
    }

    pub(crate) fn missing(param: &'static str, mode: Option<Mode>) -> Self {
        let during = match mode {
            Some(m) if m.is_encrypted() => " (encrypted requests carry it in the query)",
            _ => "",
        };
        Self::new(
            StatusCode::BAD_REQUEST,
            RejectReason::MissingParam,
            Some(ReferenceCode::ValidateSignature),
            param,
            format!("missing query parameter {param}{during}; is this request from WeChat?"),
        )
    }

    pub(crate) fn signature(param: &'static str, token_len: usize, over: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            RejectReason::SignatureMismatch,
            Some(ReferenceCode::ValidateSignature),
            param,
            format!(
                "{param} mismatch: computed from token of length {token_len} over {over}; check the Token in the console"
            ),
        )
    }

    pub(crate) fn decrypt(err: &DecryptError) -> Self {
        let reason = match err {
            DecryptError::Base64(_) => RejectReason::Base64,
            DecryptError::BlockLength(_) => RejectReason::AesDecrypt,
            DecryptError::AppidMismatch { .. } => RejectReason::AppidMismatch,
            _ => RejectReason::IllegalBuffer,
        };
        Self::new(StatusCode::BAD_REQUEST, reason, Some(err.reference_code()), "Encrypt", err.to_string())
    }

    /// The one-line body: `-40001 signature mismatch: …`.
    pub(crate) fn body(&self) -> String {
        match self.code {
            Some(code) => format!("{} {}\n", code.code(), self.message),
            None => format!("{}\n", self.message),
        }
    }

    pub(crate) fn log(&self, mode: Option<Mode>, appid: Option<&str>) {
        tracing::warn!(
            target: "wemp_server::reject",
            status = self.status.as_u16(),
            code = self.code.map(ReferenceCode::code),
            code_name = self.code.map(ReferenceCode::name),
            reason = self.reason.as_str(),
            mode = mode.map_or("unknown", Mode::as_str),
            param = self.param,
            appid,
            "request rejected: {}",
            self.message
        );
    }
}
