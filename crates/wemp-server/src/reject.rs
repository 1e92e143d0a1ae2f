//! Why a request was refused: a specific 4xx, a one-line reason, a structured log line.

use http::StatusCode;
pub use wemp_proto::admission::RejectReason;
use wemp_proto::{DecryptError, Mode, ReferenceCode};

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
