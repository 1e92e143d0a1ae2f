//! Mass sending (群发): to a tag, to everyone or to a list of users, previews, deletion,
//! status and speed, and the uploads only mass messages use (`uploadvideo`, `uploadnews`).
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Batch_Sends_and_Originality_Checks.html>

use serde::Deserialize;
use serde_json::{Value, json};

use super::drafts::DraftArticle;
use crate::client::Client;
use crate::error::{Error, Result};

/// What a mass message carries.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MassContent {
    /// Text.
    Text(String),
    /// Image by media id.
    Image(String),
    /// Voice by media id.
    Voice(String),
    /// Video (`mpvideo`) by the media id [`MassApi::upload_video`] returns (a plain video
    /// upload's id is refused).
    Video(String),
    /// Articles by media id (`mpnews`); stopped when WeChat judges them a reprint unless
    /// [`MassMessage::ignore_reprint`].
    MpNews(String),
    /// A card by card id (`wxcard`).
    Card(String),
}

impl MassContent {
    fn insert_into(&self, body: &mut Value) {
        let (msgtype, payload) = match self {
            Self::Text(c) => ("text", json!({ "content": c })),
            Self::Image(m) => ("image", json!({ "media_id": m })),
            Self::Voice(m) => ("voice", json!({ "media_id": m })),
            Self::Video(m) => ("mpvideo", json!({ "media_id": m })),
            Self::MpNews(m) => ("mpnews", json!({ "media_id": m })),
            Self::Card(c) => ("wxcard", json!({ "card_id": c })),
        };
        body["msgtype"] = json!(msgtype);
        body[msgtype] = payload;
    }
}

/// A mass message: its content and the send's options, built step by step.
///
/// A `&MassContent` converts into one with the defaults, so
/// `client.mass().send_to_tag(None, &content)` needs no builder.
///
/// ```
/// use wemp_client::api::mass::{MassContent, MassMessage};
/// let msg = MassMessage::new(MassContent::MpNews("media-id".into()))
///     .ignore_reprint(true)
///     .client_msg_id("spring-sale-2026");
/// # let _ = msg;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MassMessage {
    content: MassContent,
    ignore_reprint: bool,
    client_msg_id: Option<String>,
}

impl MassMessage {
    /// A message of `content`, stopped when articles are judged a reprint, with WeChat's
    /// default `clientmsgid` (a digest of the audience and the content).
    pub const fn new(content: MassContent) -> Self {
        Self { content, ignore_reprint: false, client_msg_id: None }
    }

    /// Articles ([`MassContent::MpNews`]) that WeChat judges a reprint are sent anyway, as
    /// the original's reprint (`send_ignore_reprint` 1), instead of stopping the send.
    #[must_use]
    pub const fn ignore_reprint(mut self, yes: bool) -> Self {
        self.ignore_reprint = yes;
        self
    }

    /// The send's own id (`clientmsgid`, at most 64 bytes): WeChat refuses a second send
    /// with the same id (45065), so a retried request cannot mass-send twice.
    #[must_use]
    pub fn client_msg_id(mut self, id: impl Into<String>) -> Self {
        self.client_msg_id = Some(id.into());
        self
    }

    /// The content.
    pub const fn content(&self) -> &MassContent {
        &self.content
    }

    fn body(&self, mut body: Value) -> Result<Value> {
        self.content.insert_into(&mut body);
        if matches!(self.content, MassContent::MpNews(_)) {
            body["send_ignore_reprint"] = json!(u8::from(self.ignore_reprint));
        }
        if let Some(id) = &self.client_msg_id {
            if id.is_empty() || id.len() > MAX_CLIENT_MSG_ID {
                return Err(Error::Invalid(format!(
                    "mass send: clientmsgid is 1 to {MAX_CLIENT_MSG_ID} bytes, not {}",
                    id.len()
                )));
            }
            body["clientmsgid"] = json!(id);
        }
        Ok(body)
    }
}

impl From<MassContent> for MassMessage {
    fn from(content: MassContent) -> Self {
        Self::new(content)
    }
}

impl From<&MassContent> for MassMessage {
    fn from(content: &MassContent) -> Self {
        Self::new(content.clone())
    }
}

impl From<&Self> for MassMessage {
    fn from(msg: &Self) -> Self {
        msg.clone()
    }
}

/// The longest `clientmsgid` (bytes).
pub const MAX_CLIENT_MSG_ID: usize = 64;

/// The answer to a mass send.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct MassSent {
    /// The job id.
    pub msg_id: i64,
    /// The article data id (articles only).
    #[serde(default)]
    pub msg_data_id: Option<i64>,
}

/// The mass-sending speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct MassSpeed {
    /// Level 0 (fastest) to 4.
    pub speed: i64,
    /// Messages per minute, in ten-thousands.
    pub realspeed: i64,
}

/// A video or articles uploaded for mass sending ([`MassApi::upload_video`],
/// [`MassApi::upload_news`]).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct MassMedia {
    /// `video` or `news`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The id a mass message names ([`MassContent::Video`], [`MassContent::MpNews`]).
    pub media_id: String,
    /// When it was uploaded, Unix seconds.
    #[serde(default)]
    pub created_at: i64,
}

/// The most articles one `uploadnews` takes.
pub const MAX_NEWS_ARTICLES: usize = 8;
/// The most users one [`MassApi::send_to_users`] reaches, and the fewest.
pub const USERS_RANGE: std::ops::RangeInclusive<usize> = 2..=10_000;

/// The endpoints of this area, in one place.
mod path {
    pub(super) const SEND_ALL: &str = "/cgi-bin/message/mass/sendall";
    pub(super) const SEND: &str = "/cgi-bin/message/mass/send";
    pub(super) const PREVIEW: &str = "/cgi-bin/message/mass/preview";
    pub(super) const DELETE: &str = "/cgi-bin/message/mass/delete";
    pub(super) const STATUS: &str = "/cgi-bin/message/mass/get";
    pub(super) const SPEED: &str = "/cgi-bin/message/mass/speed/get";
    pub(super) const SET_SPEED: &str = "/cgi-bin/message/mass/speed/set";
    pub(super) const UPLOAD_VIDEO: &str = "/cgi-bin/media/uploadvideo";
    pub(super) const UPLOAD_NEWS: &str = "/cgi-bin/media/uploadnews";
}

impl Client {
    /// Mass sending: [`MassApi`].
    pub fn mass(&self) -> MassApi<'_> {
        MassApi(self)
    }
}

/// Mass sending (`/cgi-bin/message/mass/*`), from [`Client::mass`].
#[derive(Clone, Copy, Debug)]
pub struct MassApi<'c>(&'c Client);

impl MassApi<'_> {
    /// Mass-sends to followers with `tag_id`, or to all followers with `None`: a
    /// [`MassMessage`], or a `&MassContent` with the defaults.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a `clientmsgid` longer than 64 bytes, before sending;
    /// otherwise as [`Client::get`] (45065 when a send with the same `clientmsgid` went out
    /// already).
    pub async fn send_to_tag(self, tag_id: Option<i64>, message: impl Into<MassMessage>) -> Result<MassSent> {
        let filter = match tag_id {
            Some(id) => json!({ "is_to_all": false, "tag_id": id }),
            None => json!({ "is_to_all": true }),
        };
        let body = message.into().body(json!({ "filter": filter }))?;
        self.0.post_as(path::SEND_ALL, &[], &body).await
    }

    /// Mass-sends to a list of OpenIDs (2 to 10,000), as [`MassApi::send_to_tag`].
    ///
    /// # Errors
    /// [`Error::Invalid`] for fewer than 2 or more than 10,000 OpenIDs or a `clientmsgid`
    /// longer than 64 bytes, before sending; otherwise as [`Client::get`].
    pub async fn send_to_users(self, openids: &[&str], message: impl Into<MassMessage>) -> Result<MassSent> {
        if !USERS_RANGE.contains(&openids.len()) {
            return Err(Error::Invalid(format!(
                "mass send: a list of users has 2 to 10000 OpenIDs, not {}",
                openids.len()
            )));
        }
        let body = message.into().body(json!({ "touser": openids }))?;
        self.0.post_as(path::SEND, &[], &body).await
    }

    /// Previews a mass message to one user.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn preview(self, openid: &str, content: &MassContent) -> Result<()> {
        let mut body = json!({ "touser": openid });
        content.insert_into(&mut body);
        self.0.post_ok(path::PREVIEW, &body).await
    }

    /// Deletes a sent mass message (`article_idx` 0 or `None`: all articles).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn delete(self, msg_id: i64, article_idx: Option<u32>) -> Result<()> {
        self.0
            .post_ok(path::DELETE, &json!({ "msg_id": msg_id, "article_idx": article_idx.unwrap_or(0) }))
            .await
    }

    /// The state of a mass message (`SEND_SUCCESS`, `SENDING`, `SEND_FAIL`, `DELETE`).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn status(self, msg_id: i64) -> Result<String> {
        #[derive(Deserialize)]
        struct S {
            msg_status: String,
        }
        Ok(self.0.post_as::<S, _>(path::STATUS, &[], &json!({ "msg_id": msg_id })).await?.msg_status)
    }

    /// The mass-sending speed.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn speed(self) -> Result<MassSpeed> {
        self.0.post_as(path::SPEED, &[], &json!({})).await
    }

    /// Sets the mass-sending speed level (0 fastest … 4).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a level above 4, before sending; otherwise as [`Client::get`].
    pub async fn set_speed(self, speed: u8) -> Result<()> {
        if speed > 4 {
            return Err(Error::Invalid(format!("mass send: the speed level is 0 to 4, not {speed}")));
        }
        self.0.post_ok(path::SET_SPEED, &json!({ "speed": speed })).await
    }

    /// Turns an uploaded video (the `media_id` of a temporary `video` upload) into the
    /// video a mass message sends, with its title and description; returns the id for
    /// [`MassContent::Video`].
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty media id, before sending; otherwise as
    /// [`Client::get`] (40007 when the id is not a video upload of this account).
    pub async fn upload_video(self, media_id: &str, title: &str, description: &str) -> Result<MassMedia> {
        if media_id.trim().is_empty() {
            return Err(Error::Invalid("mass send: the video's media id is empty".into()));
        }
        let body = json!({ "media_id": media_id, "title": title, "description": description });
        self.0.post_as(path::UPLOAD_VIDEO, &[], &body).await
    }

    /// Uploads 1–8 articles for a mass message (`uploadnews`); returns the id for
    /// [`MassContent::MpNews`]. Each article needs a title, content and cover
    /// (`thumb_media_id`, a `thumb` or `image` upload).
    ///
    /// # Errors
    /// [`Error::Invalid`] for no articles, more than 8, or an article without a title,
    /// content or cover, before sending; otherwise as [`Client::get`] (40007 unknown
    /// cover).
    pub async fn upload_news(self, articles: &[DraftArticle]) -> Result<MassMedia> {
        if !(1..=MAX_NEWS_ARTICLES).contains(&articles.len()) {
            return Err(Error::Invalid(format!(
                "mass send: uploadnews takes 1 to 8 articles, not {}",
                articles.len()
            )));
        }
        for (i, a) in articles.iter().enumerate() {
            let missing =
                [("title", &a.title), ("content", &a.content), ("thumb_media_id", &a.thumb_media_id)]
                    .into_iter()
                    .find(|(_, v)| v.trim().is_empty());
            if let Some((field, _)) = missing {
                return Err(Error::Invalid(format!("mass send: article {i} has no {field}")));
            }
        }
        let body = json!({ "articles": articles });
        let media: MassMedia = self.0.post_as(path::UPLOAD_NEWS, &[], &body).await?;
        Ok(media)
    }
}
