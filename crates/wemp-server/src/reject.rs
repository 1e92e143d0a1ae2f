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

/// A request whose path segment no account answers on (see [`crate::accounts`]).
pub(crate) fn unknown_account(unknown: &crate::accounts::Unknown) -> Refusal {
    Refusal {
        reason: RejectReason::UnknownAccount,
        status: StatusCode::NOT_FOUND.as_u16(),
        code: None,
        param: "path",
        message: unknown.message(),
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

/// How many refused requests are logged: a token bucket of `burst` log lines (each with
/// its [`DeliveryRecord`](crate::DeliveryRecord) for the observers — the message log, the
/// console), refilled at `per_second`. Refusals over the rate get neither: they are counted
/// in `wemp_rejections_unlogged_total{reason}` (every refusal is in
/// `wemp_verification_failures_total{reason}` and `wemp_requests_total`), and a WARN line at
/// most every ten seconds says how many were left out. The callback URL is public:
/// junk must not fill the disk or the log.
///
/// The default, 100 at once and one a second after that, logs every refusal of someone
/// setting up or debugging an account, and at most ~86 400 a day under attack.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RejectionLogRate {
    /// Refusals logged at once before the rate applies.
    pub burst: u32,
    /// Refusals logged per second after that.
    pub per_second: f64,
}

impl Default for RejectionLogRate {
    fn default() -> Self {
        Self { burst: 100, per_second: 1.0 }
    }
}

impl RejectionLogRate {
    /// Every refusal logged (no limit).
    pub fn unlimited() -> Self {
        Self { burst: u32::MAX, per_second: f64::INFINITY }
    }
}

/// The most often a WARN line says how many refusals were left out.
pub(crate) const SUMMARY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// What to do with one refusal: log it (a WARN line and a record) or only count it; and
/// `summary`: say first how many were left out since the last summary (at most one every
/// [`SUMMARY_INTERVAL`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Gate {
    pub(crate) log: bool,
    pub(crate) summary: Option<u64>,
}

/// The token bucket of [`RejectionLogRate`].
#[derive(Debug)]
pub(crate) struct RejectionGate {
    rate: RejectionLogRate,
    state: std::sync::Mutex<GateState>,
}

#[derive(Debug)]
struct GateState {
    tokens: f64,
    refilled: tokio::time::Instant,
    left_out: u64,
    /// When a summary was last given (none yet: the first refusal left out gets one).
    summarised: Option<tokio::time::Instant>,
}

impl RejectionGate {
    pub(crate) fn new(rate: RejectionLogRate, now: tokio::time::Instant) -> Self {
        let state = GateState { tokens: f64::from(rate.burst), refilled: now, left_out: 0, summarised: None };
        Self { rate, state: std::sync::Mutex::new(state) }
    }

    pub(crate) fn admit(&self, now: tokio::time::Instant) -> Gate {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(s.refilled).as_secs_f64();
        let refill =
            if self.rate.per_second.is_finite() { elapsed * self.rate.per_second } else { f64::INFINITY };
        s.tokens = (s.tokens + refill).min(f64::from(self.rate.burst));
        s.refilled = now;
        let log = s.tokens >= 1.0;
        if log {
            s.tokens -= 1.0;
        } else {
            s.left_out += 1;
        }
        let due = s.summarised.is_none_or(|at| now.saturating_duration_since(at) >= SUMMARY_INTERVAL);
        let summary = (s.left_out > 0 && due).then(|| {
            s.summarised = Some(now);
            std::mem::take(&mut s.left_out)
        });
        Gate { log, summary }
    }
}

/// The WARN line saying how many refusals were not logged.
pub(crate) fn log_left_out(n: u64, rate: RejectionLogRate) {
    tracing::warn!(
        target: "wemp_server::reject",
        left_out = n,
        "{n} more rejected requests not logged (over the rate of {} at once, {}/s); \
         counted in wemp_rejections_unlogged_total",
        rate.burst,
        rate.per_second
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_gate_logs_a_burst_then_the_rate_and_summarises_the_rest() {
        let t0 = tokio::time::Instant::now();
        let gate = RejectionGate::new(RejectionLogRate { burst: 3, per_second: 1.0 }, t0);
        let (log, count) = (Gate { log: true, summary: None }, Gate { log: false, summary: None });
        for _ in 0..3 {
            assert_eq!(gate.admit(t0), log);
        }
        // The first one left out is said at once, the next ones at most every interval.
        assert_eq!(gate.admit(t0), Gate { log: false, summary: Some(1) });
        assert_eq!(gate.admit(t0 + Duration::from_millis(500)), count);
        assert_eq!(gate.admit(t0 + Duration::from_millis(600)), count);
        // A second later one token is back: logged; the two left out wait for the summary.
        assert_eq!(gate.admit(t0 + Duration::from_millis(1000)), log);
        // Over the rate for longer than the interval: one summary line, of all left out.
        let later = t0 + SUMMARY_INTERVAL;
        let (mut summarised, mut summaries, mut logged, mut counted) = (0, 0, 0, 0);
        for i in 0..1000u64 {
            let g = gate.admit(later + Duration::from_micros(i));
            if let Some(n) = g.summary {
                summaries += 1;
                summarised += n;
            }
            if g.log { logged += 1 } else { counted += 1 }
        }
        assert_eq!(logged, 3, "the bucket refilled to its burst, no more");
        assert_eq!((summaries, summarised), (1, 2), "the two left out before");
        assert_eq!(counted, 997);
        let unlimited = RejectionGate::new(RejectionLogRate::unlimited(), t0);
        assert!((0..10_000).all(|_| unlimited.admit(t0) == log));
    }
}
