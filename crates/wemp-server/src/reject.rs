//! Why a request was refused: a specific 4xx, a one-line reason, a structured log line.
//!
//! What is refused and why is decided by [`wemp_proto::admission`]; the server adds only
//! what needs I/O (a body over the limit, a body that cannot be read).

use http::StatusCode;
use wemp_proto::admission::Refusal;
pub use wemp_proto::admission::RejectReason;
use wemp_proto::{Mode, ReferenceCode};

/// A body over `limit` bytes (`len` is what is known of its size).
pub(crate) fn too_large(len: &str, limit: usize) -> Refusal {
    Refusal {
        reason: RejectReason::BodyTooLarge,
        status: StatusCode::PAYLOAD_TOO_LARGE.as_u16(),
        code: None,
        param: "body",
        message: format!("body of {len} bytes exceeds the {limit}-byte limit"),
        detail: None,
    }
}

/// A body that failed while read (the client hung up, or sent a broken chunk).
pub(crate) fn unreadable(error: &(dyn std::error::Error + 'static)) -> Refusal {
    // Not bad XML: the body never arrived whole (a hang-up, or too slow).
    let timed_out = std::iter::successors(Some(error), |e| e.source()).any(|e| e.is::<crate::BodyTimeout>());
    let status = if timed_out { StatusCode::REQUEST_TIMEOUT } else { StatusCode::BAD_REQUEST };
    Refusal {
        reason: RejectReason::BodyIncomplete,
        status: status.as_u16(),
        code: None,
        param: "body",
        message: format!("the body did not arrive whole: {error}"),
        detail: None,
    }
}

/// A request the server could not make sense of for a reason of its own (not the body's).
pub(crate) fn internal(message: &str) -> Refusal {
    Refusal {
        reason: RejectReason::BadXml,
        status: StatusCode::BAD_REQUEST.as_u16(),
        code: Some(ReferenceCode::ParseXml),
        param: "body",
        message: format!("cannot read the body: {message}"),
        detail: None,
    }
}

/// The HTTP status of a refusal.
pub(crate) fn status(refusal: &Refusal) -> StatusCode {
    StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST)
}

/// The structured WARN line of a refusal; its `detail` (e.g. the Token's length) goes here
/// and never into the response.
pub(crate) fn log(refusal: &Refusal, mode: Option<Mode>, appid: Option<&str>) {
    let detail = refusal.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
    tracing::warn!(
        target: "wemp_server::reject",
        status = refusal.status,
        code = refusal.code.map(ReferenceCode::code),
        code_name = refusal.code.map(ReferenceCode::name),
        reason = refusal.reason.as_str(),
        mode = mode.map_or("unknown", Mode::as_str),
        param = refusal.param,
        appid,
        "request rejected: {}{detail}",
        refusal.message
    );
}

/// A plain-mode request whose `timestamp` and `nonce` already came with another body.
pub(crate) fn replayed() -> Refusal {
    Refusal {
        reason: RejectReason::Replayed,
        status: StatusCode::FORBIDDEN.as_u16(),
        code: Some(ReferenceCode::ValidateSignature),
        param: "nonce",
        message: "timestamp and nonce already came with another body: a reused signature, refused".to_owned(),
        detail: None,
    }
}
