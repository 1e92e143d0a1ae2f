//! The message log: every inbound message, the reply sent, and what happened.

use crate::Result;

/// One handled delivery.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogEntry {
    /// When the request arrived, milliseconds since the Unix epoch.
    pub received_at_ms: i64,
    /// The account's appid (or its configured name when it has none).
    pub appid: String,
    /// The user's OpenID (`FromUserName`).
    pub openid: String,
    /// `MsgId` for messages.
    pub msg_id: Option<u64>,
    /// The dedup key of the delivery.
    pub dedup_key: String,
    /// `MsgType`.
    pub msg_type: String,
    /// `Event`, for events.
    pub event: Option<String>,
    /// `plain`, `compatible` or `safe`.
    pub mode: String,
    /// `new`, `joined` or `cached`.
    pub dedup: String,
    /// A one-line summary of the message (text content, event key, …).
    pub summary: String,
    /// The inbound XML after decryption.
    pub raw_xml: String,
    /// The reply XML sent (plain), or `success`.
    pub reply_xml: Option<String>,
    /// What happened to the reply: `sent`, `deadline_success`, `late_sink:<result>`, `error`.
    pub outcome: String,
    /// Time to answer, milliseconds.
    pub latency_ms: u64,
    /// Handler or delivery error, if any.
    pub error: Option<String>,
}

/// A filter over the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Only this account.
    pub appid: Option<String>,
    /// Only this user.
    pub openid: Option<String>,
    /// Only this `MsgType`.
    pub msg_type: Option<String>,
    /// Only entries received at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only entries with a row id greater than this (for following).
    pub after_id: Option<i64>,
    /// At most this many: the first ones in id order (page on with `after_id` set to the
    /// last id returned).
    pub limit: Option<usize>,
}

impl LogQuery {
    /// Whether the entry with row id `id` passes every filter (all but `limit`).
    pub fn matches(&self, id: i64, entry: &LogEntry) -> bool {
        self.appid.as_ref().is_none_or(|a| *a == entry.appid)
            && self.openid.as_ref().is_none_or(|o| *o == entry.openid)
            && self.msg_type.as_ref().is_none_or(|t| *t == entry.msg_type)
            && self.since_ms.is_none_or(|s| entry.received_at_ms >= s)
            && self.after_id.is_none_or(|a| id > a)
    }
}

/// Durable message log storage.
#[async_trait::async_trait]
pub trait MessageLog: Send + Sync + 'static {
    /// Appends entries in order.
    async fn append(&self, entries: &[LogEntry]) -> Result<()>;

    /// Appends a batch the caller shares (the [`crate::LogWriter`] does, to retry it without a
    /// copy). Backends that hand the batch to another thread override this to avoid cloning
    /// every entry; the default appends a borrowed slice.
    async fn append_shared(&self, entries: std::sync::Arc<[LogEntry]>) -> Result<()> {
        self.append(&entries).await
    }

    /// Entries matching `query` in row-id order (oldest first), with their row ids.
    ///
    /// Row ids grow with every append, so `after_id` follows the log.
    async fn query(&self, query: &LogQuery) -> Result<Vec<(i64, LogEntry)>>;
}
