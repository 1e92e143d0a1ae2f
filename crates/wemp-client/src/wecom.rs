//! WeCom (企业微信) applications: `message/send` to members, departments and tags.
//!
//! A WeCom client is a [`Client`] built with [`crate::ClientBuilder::wecom`]: its appid is
//! the corpid, its secret the application's Secret, and its tokens come from WeCom's
//! `gettoken` (shared across processes through the token store, like an Official
//! Account's). Late replies to WeCom members go through
//! [`KfApi::send_reply`](crate::api::kf::KfApi::send_reply), which sends a WeCom client's replies
//! with [`Client::wecom_send`].
//!
//! ```no_run
//! use wemp_client::Client;
//! use wemp_client::wecom::{Recipients, WecomMessage};
//! # async fn run() -> wemp_client::Result<()> {
//! let app = Client::builder("ww0000000000000001").secret("the-app-secret").wecom("1000002").build()?;
//! let sent = app.wecom_send(&Recipients::users(["zhangsan"]), &WecomMessage::markdown("**done**")).await?;
//! assert!(sent.invalid_users.is_empty());
//! # Ok(()) }
//! ```
//!
//! Official reference: <https://developer.work.weixin.qq.com/document/path/90236>

use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Client, Error, ReplyDelivery, Result};
use wemp_proto::Reply;

/// Who a WeCom message goes to: members (UserIDs), departments and tags; `@all` is
/// [`Recipients::everyone`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recipients {
    /// Members' UserIDs.
    pub users: Vec<String>,
    /// Department ids.
    pub parties: Vec<String>,
    /// Tag ids.
    pub tags: Vec<String>,
}

impl Recipients {
    /// These members.
    pub fn users<S: Into<String>>(users: impl IntoIterator<Item = S>) -> Self {
        Self { users: users.into_iter().map(Into::into).collect(), ..Self::default() }
    }

    /// Every member the app can see (`touser = "@all"`).
    pub fn everyone() -> Self {
        Self::users(["@all"])
    }

    /// Adds departments.
    #[must_use]
    pub fn parties<S: Into<String>>(mut self, parties: impl IntoIterator<Item = S>) -> Self {
        self.parties.extend(parties.into_iter().map(Into::into));
        self
    }

    /// Adds tags.
    #[must_use]
    pub fn tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Self {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    fn is_empty(&self) -> bool {
        self.users.is_empty() && self.parties.is_empty() && self.tags.is_empty()
    }
}

/// A message of a WeCom application.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WecomMessage {
    /// Plain text.
    Text(String),
    /// Markdown (WeCom's subset).
    Markdown(String),
    /// A text card: title, description (may hold WeCom's `<div class="gray">` markup), the
    /// URL it opens and the button text (default 详情).
    TextCard {
        /// The title.
        title: String,
        /// The description.
        description: String,
        /// The URL opened on click.
        url: String,
        /// The button's text.
        btntxt: Option<String>,
    },
    /// An image by media id.
    Image(String),
}

impl WecomMessage {
    /// A text message.
    pub fn text(content: impl Into<String>) -> Self {
        Self::Text(content.into())
    }

    /// A markdown message.
    pub fn markdown(content: impl Into<String>) -> Self {
        Self::Markdown(content.into())
    }

    /// A text card.
    pub fn textcard(
        title: impl Into<String>,
        description: impl Into<String>,
        url: impl Into<String>,
    ) -> Self {
        Self::TextCard { title: title.into(), description: description.into(), url: url.into(), btntxt: None }
    }

    /// The message a passive reply becomes: text and image; `None` for the others (WeCom's
    /// `message/send` has no voice/video reply form wemp maps yet, and nothing for a
    /// transfer to customer service).
    pub fn from_reply(reply: &Reply) -> Option<Self> {
        match reply {
            Reply::Text { content } => Some(Self::Text(content.clone())),
            Reply::Image { media_id } => Some(Self::Image(media_id.clone())),
            _ => None,
        }
    }

    fn body(&self) -> (&'static str, Value) {
        match self {
            Self::Text(content) => ("text", json!({ "content": content })),
            Self::Markdown(content) => ("markdown", json!({ "content": content })),
            Self::TextCard { title, description, url, btntxt } => {
                let mut card = json!({ "title": title, "description": description, "url": url });
                if let Some(b) = btntxt {
                    card["btntxt"] = json!(b);
                }
                ("textcard", card)
            }
            Self::Image(media_id) => ("image", json!({ "media_id": media_id })),
        }
    }
}

/// What `message/send` reported besides success: the recipients it could not reach.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct WecomSent {
    /// UserIDs that do not exist or the app cannot see, `|`-separated by WeCom, split here.
    #[serde(default, rename = "invaliduser", deserialize_with = "split_bars")]
    pub invalid_users: Vec<String>,
    /// Department ids likewise.
    #[serde(default, rename = "invalidparty", deserialize_with = "split_bars")]
    pub invalid_parties: Vec<String>,
    /// Tag ids likewise.
    #[serde(default, rename = "invalidtag", deserialize_with = "split_bars")]
    pub invalid_tags: Vec<String>,
    /// The message id (for recalling it).
    #[serde(default)]
    pub msgid: Option<String>,
}

fn split_bars<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    let s = Option::<String>::deserialize(d)?.unwrap_or_default();
    Ok(s.split('|').filter(|p| !p.is_empty()).map(str::to_owned).collect())
}

impl Client {
    /// Sends `message` from this WeCom application (`POST /cgi-bin/message/send`).
    ///
    /// # Errors
    /// [`Error::Invalid`] when the client is not a WeCom client or there is no recipient;
    /// otherwise as [`Client::get`] (token errors are refreshed and retried once).
    pub async fn wecom_send(&self, to: &Recipients, message: &WecomMessage) -> Result<WecomSent> {
        let Some(agentid) = self.agentid() else {
            return Err(Error::Invalid(format!(
                "account {} is not a WeCom application: build the client with .wecom(agentid)",
                self.appid()
            )));
        };
        if to.is_empty() {
            return Err(Error::Invalid("a WeCom message needs a member, department or tag".into()));
        }
        let (msgtype, content) = message.body();
        // The AgentID is a number in WeCom's JSON; keep it as sent when it is not.
        let agent = agentid.parse::<i64>().map_or_else(|_| json!(agentid), |n| json!(n));
        let mut body = json!({ "msgtype": msgtype, "agentid": agent });
        for (key, ids) in [("touser", &to.users), ("toparty", &to.parties), ("totag", &to.tags)] {
            if !ids.is_empty() {
                body[key] = json!(ids.join("|"));
            }
        }
        body[msgtype] = content;
        self.post_as("/cgi-bin/message/send", &[], &body).await
    }

    /// A WeCom client's [`KfApi::send_reply`](crate::api::kf::KfApi::send_reply): the reply to
    /// member `userid` as a WeCom message.
    pub(crate) async fn wecom_reply(&self, userid: &str, reply: &Reply) -> Result<ReplyDelivery> {
        let Some(message) = WecomMessage::from_reply(reply) else {
            return Err(Error::Invalid(format!(
                "a {} reply has no WeCom message form",
                reply.msg_type().unwrap_or("empty")
            )));
        };
        let sent = self.wecom_send(&Recipients::users([userid]), &message).await?;
        if sent.invalid_users.iter().any(|u| u == userid) {
            return Err(Error::Invalid(format!("WeCom does not know member {userid} (invaliduser)")));
        }
        Ok(ReplyDelivery::Sent)
    }
}
