//! [`CustomerServiceSink`]: late replies through the customer-service message API.

use std::collections::HashMap;

use wemp_client::{Client, Error as ClientError, ReplyDelivery};
use wemp_proto::Reply;

use crate::api_proxy::ClientLookup;
use crate::log::ShortId;
use crate::{LateReplySink, SinkOutcome};

/// Sends replies that missed the deadline (or were deferred) as customer-service messages
/// (`message/custom/send`) through a [`wemp_client::Client`], one client per account.
///
/// Outcomes: sent → [`SinkOutcome::Delivered`]; 45015 (the user has not written within 48
/// hours) → [`SinkOutcome::WindowExpired`]; 45047 (too many messages since the user last
/// wrote) → [`SinkOutcome::QuotaExceeded`]; a reply with no customer-service form
/// (transfer to customer service) → [`SinkOutcome::Unsupported`]; any other error →
/// [`SinkOutcome::Failed`] with its errcode. The client's own retry rules apply (token
/// refresh on 40001, bounded retries on -1).
///
/// ```no_run
/// use wemp_server::{Account, CustomerServiceSink, Router, WechatService};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = wemp_client::Client::new("wx2c2769f8efd9abc2", "the-app-secret")?;
/// let service = WechatService::builder()
///     .account(Account::new("wx2c2769f8efd9abc2", "spamtest"))
///     .router(Router::new())
///     .late_sink(CustomerServiceSink::new(client))
///     .build()?;
/// # drop(service); Ok(()) }
/// ```
#[derive(Clone)]
pub struct CustomerServiceSink {
    clients: HashMap<String, Client>,
    more: Option<ClientLookup>,
}

impl std::fmt::Debug for CustomerServiceSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerServiceSink")
            .field("clients", &self.clients)
            .field("more", &self.more.is_some())
            .finish()
    }
}

impl CustomerServiceSink {
    /// A sink for the account of `client` (its appid).
    pub fn new(client: Client) -> Self {
        Self::empty().with_client(client)
    }

    /// Adds (or replaces) the client of another account, for services with several: found
    /// by its appid, or `corpid/agentid` for a WeCom app's client
    /// ([`wemp_proto::admission::app_key`], what the server passes as `appid`).
    #[must_use]
    pub fn with_client(mut self, client: Client) -> Self {
        self.clients.insert(wemp_proto::admission::app_key(client.appid(), client.agentid()), client);
        self
    }

    /// A sink with no client yet (add them, or [`CustomerServiceSink::more_clients`]).
    pub fn empty() -> Self {
        Self { clients: HashMap::new(), more: None }
    }

    /// Clients of accounts known while serving (a third-party platform's authorizers),
    /// asked for an appid no added client has.
    #[must_use]
    pub fn more_clients(mut self, lookup: ClientLookup) -> Self {
        self.more = Some(lookup);
        self
    }

    /// The client used for `appid` (an account's key, as [`CustomerServiceSink::with_client`]).
    pub fn client(&self, appid: &str) -> Option<Client> {
        self.clients.get(appid).cloned().or_else(|| self.more.as_ref().and_then(|more| more(appid)))
    }
}

#[async_trait::async_trait]
impl LateReplySink for CustomerServiceSink {
    async fn deliver(&self, appid: &str, openid: &str, reply: Reply) -> SinkOutcome {
        let Some(client) = self.client(appid) else {
            return SinkOutcome::Failed {
                errcode: None,
                message: format!("no API client configured for account {appid}"),
            };
        };
        let outcome = match client.kf().send_reply(openid, &reply).await {
            Ok(ReplyDelivery::Sent) => SinkOutcome::Delivered,
            // Nothing to send: nothing lost either.
            Ok(ReplyDelivery::Nothing) => SinkOutcome::Delivered,
            Ok(ReplyDelivery::WindowClosed(_)) => SinkOutcome::WindowExpired,
            Ok(ReplyDelivery::LimitReached(_)) => SinkOutcome::QuotaExceeded,
            Ok(other) => {
                SinkOutcome::Failed { errcode: None, message: format!("unexpected delivery {other:?}") }
            }
            Err(ClientError::Invalid(_)) => SinkOutcome::Unsupported,
            Err(ClientError::Api(e)) => SinkOutcome::from_errcode(e.code.0, e.message),
            // The client's errors never carry the access_token.
            Err(e) => SinkOutcome::Failed { errcode: e.code().map(|c| c.0), message: e.to_string() },
        };
        if !matches!(outcome, SinkOutcome::Delivered) {
            tracing::debug!(appid, openid = %ShortId::new(openid, false), %outcome, "customer-service sink");
        }
        outcome
    }
}
