//! Where replies go when they miss the passive-reply deadline.

use std::fmt;

use wemp_proto::Reply;

use crate::log::ShortId;

/// What happened to a late reply.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SinkOutcome {
    /// Sent to the user.
    Delivered,
    /// The user has not interacted within 48 hours (errcode 45015): customer-service
    /// messages are not allowed.
    WindowExpired,
    /// Customer-service message quota or rate exceeded (errcode 45047).
    QuotaExceeded,
    /// The sink cannot carry this kind of reply (e.g. transfer to customer service).
    Unsupported,
    /// Only logged; not sent anywhere.
    Logged,
    /// Another failure (errcode when the API gave one).
    Failed {
        /// The platform's `errcode`, if any.
        errcode: Option<i64>,
        /// A description (never containing a credential).
        message: String,
    },
}

impl SinkOutcome {
    /// Maps a platform `errcode` (0 is success).
    pub fn from_errcode(errcode: i64, errmsg: impl Into<String>) -> Self {
        match errcode {
            0 => Self::Delivered,
            45015 => Self::WindowExpired,
            45047 => Self::QuotaExceeded,
            _ => Self::Failed { errcode: Some(errcode), message: errmsg.into() },
        }
    }

    /// A short label, used in metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::WindowExpired => "window_expired",
            Self::QuotaExceeded => "quota_exceeded",
            Self::Unsupported => "unsupported",
            Self::Logged => "logged",
            Self::Failed { .. } => "failed",
        }
    }
}

impl fmt::Display for SinkOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Delivered => f.write_str("delivered"),
            Self::WindowExpired => f.write_str("48-hour customer-service window expired (45015)"),
            Self::QuotaExceeded => f.write_str("customer-service quota exceeded (45047)"),
            Self::Unsupported => f.write_str("reply type cannot be sent as a customer-service message"),
            Self::Logged => f.write_str("logged only"),
            Self::Failed { errcode: Some(c), message } => write!(f, "failed ({c}): {message}"),
            Self::Failed { errcode: None, message } => write!(f, "failed: {message}"),
        }
    }
}

/// Receives replies that missed the deadline (or were deferred with
/// [`crate::Ctx::defer`]); the server answered `success` for them already.
///
/// The production implementation sends them through the customer-service message API
/// (`message/custom/send`), allowed within 48 hours of the user's last interaction.
#[async_trait::async_trait]
pub trait LateReplySink: Send + Sync + 'static {
    /// Delivers `reply` to the user `openid` of the account `appid`.
    async fn deliver(&self, appid: &str, openid: &str, reply: Reply) -> SinkOutcome;
}

/// The default sink: logs each late reply at `warn` and drops it.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoggingSink {
    /// Log OpenIDs in full rather than shortened.
    pub full_openids: bool,
}

#[async_trait::async_trait]
impl LateReplySink for LoggingSink {
    async fn deliver(&self, appid: &str, openid: &str, reply: Reply) -> SinkOutcome {
        tracing::warn!(
            appid,
            openid = %ShortId::new(openid, self.full_openids),
            reply_type = reply.msg_type().unwrap_or("none"),
            "late reply dropped: no customer-service sink is configured"
        );
        SinkOutcome::Logged
    }
}
