//! Where replies go when they miss the passive-reply deadline.

use wemp_proto::Reply;

use crate::log::ShortId;

pub use wemp_store::SinkOutcome;

/// Receives replies that missed the deadline (or were deferred with
/// [`crate::Ctx::defer`]); the server answered `success` for them already.
///
/// The production implementation sends them through the customer-service message API
/// (`message/custom/send`), allowed within 48 hours of the user's last interaction.
#[async_trait::async_trait]
pub trait LateReplySink: Send + Sync + 'static {
    /// Delivers `reply` to the user `openid` of the account `appid` — the account's
    /// [`wemp_proto::admission::Account::key`]: its appid, or `corpid/agentid` for a WeCom
    /// app with an AgentID (apps of one corp share the corpid).
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
