//! Sending: customer-service messages (and late replies), customer-service accounts and
//! sessions, template messages, subscription notifications, mass sending.
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Service_Center_messages.html>

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wemp_proto::Reply;

use crate::client::Client;
use crate::error::{ApiError, Error, Result};

/// An article of a customer-service `news` (link) message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkArticle {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Where a tap leads.
    pub url: String,
    /// Picture URL.
    pub picurl: String,
}

/// One choice of a customer-service menu message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MenuChoice {
    /// Sent back in the user's reply (`bizmsgmenuid`).
    pub id: String,
    /// The text shown.
    pub content: String,
}

/// A customer-service message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CsMessage {
    /// Text (may contain `<a href>` links).
    Text(String),
    /// An image by media id.
    Image(String),
    /// A voice message by media id.
    Voice(String),
    /// A video.
    Video {
        /// Media id of the video.
        media_id: String,
        /// Media id of the thumbnail.
        thumb_media_id: Option<String>,
        /// Title.
        title: Option<String>,
        /// Description.
        description: Option<String>,
    },
    /// Music.
    Music {
        /// Title.
        title: Option<String>,
        /// Description.
        description: Option<String>,
        /// Music URL.
        music_url: String,
        /// High-quality music URL.
        hq_music_url: String,
        /// Media id of the thumbnail.
        thumb_media_id: String,
    },
    /// One link article (`news`).
    News(LinkArticle),
    /// A published article or draft by media id (`mpnews`).
    MpNews(String),
    /// A published article by article id (`mpnewsarticle`).
    MpNewsArticle(String),
    /// A menu of choices.
    Menu {
        /// Text above the choices.
        head: String,
        /// The choices.
        choices: Vec<MenuChoice>,
        /// Text below the choices.
        tail: String,
    },
    /// A mini-program card.
    MiniProgramPage {
        /// Card title.
        title: String,
        /// The mini program's AppID.
        appid: String,
        /// The page path.
        pagepath: String,
        /// Media id of the card image.
        thumb_media_id: String,
    },
}

impl CsMessage {
    /// A text message.
    pub fn text(content: impl Into<String>) -> Self {
        Self::Text(content.into())
    }

    /// The `msgtype` and its payload.
    fn parts(&self) -> (&'static str, Value) {
        match self {
            Self::Text(content) => ("text", json!({ "content": content })),
            Self::Image(media_id) => ("image", json!({ "media_id": media_id })),
            Self::Voice(media_id) => ("voice", json!({ "media_id": media_id })),
            Self::Video { media_id, thumb_media_id, title, description } => (
                "video",
                json!({ "media_id": media_id, "thumb_media_id": thumb_media_id, "title": title, "description": description }),
            ),
            Self::Music { title, description, music_url, hq_music_url, thumb_media_id } => (
                "music",
                json!({
                    "title": title, "description": description, "musicurl": music_url,
                    "hqmusicurl": hq_music_url, "thumb_media_id": thumb_media_id,
                }),
            ),
            Self::News(article) => ("news", json!({ "articles": [article] })),
            Self::MpNews(media_id) => ("mpnews", json!({ "media_id": media_id })),
            Self::MpNewsArticle(article_id) => ("mpnewsarticle", json!({ "article_id": article_id })),
            Self::Menu { head, choices, tail } => {
                ("msgmenu", json!({ "head_content": head, "list": choices, "tail_content": tail }))
            }
            Self::MiniProgramPage { title, appid, pagepath, thumb_media_id } => (
                "miniprogrampage",
                json!({ "title": title, "appid": appid, "pagepath": pagepath, "thumb_media_id": thumb_media_id }),
            ),
        }
    }

    /// The request body for `touser`, optionally as a named agent.
    pub fn to_json(&self, touser: &str, kf_account: Option<&str>) -> Value {
        let (msgtype, payload) = self.parts();
        let mut body = json!({ "touser": touser, "msgtype": msgtype, msgtype: strip_nulls(payload) });
        if let Some(kf) = kf_account {
            body["customservice"] = json!({ "kf_account": kf });
        }
        body
    }

    /// The customer-service form of a passive reply; `None` for [`Reply::None`] and
    /// [`Reply::TransferCustomerService`], which have none.
    pub fn from_reply(reply: &Reply) -> Option<Self> {
        Some(match reply {
            Reply::Text { content } => Self::Text(content.clone()),
            Reply::Image { media_id } => Self::Image(media_id.clone()),
            Reply::Voice { media_id } => Self::Voice(media_id.clone()),
            Reply::Video { media_id, title, description } => Self::Video {
                media_id: media_id.clone(),
                thumb_media_id: None,
                title: title.clone(),
                description: description.clone(),
            },
            Reply::Music(m) => Self::Music {
                title: m.title.clone(),
                description: m.description.clone(),
                music_url: m.music_url.clone().unwrap_or_default(),
                hq_music_url: m.hq_music_url.clone().unwrap_or_default(),
                thumb_media_id: m.thumb_media_id.clone(),
            },
            // A customer-service news message carries exactly one article.
            Reply::News(articles) => {
                let a = articles.first()?;
                Self::News(LinkArticle {
                    title: a.title.clone(),
                    description: a.description.clone(),
                    url: a.url.clone(),
                    picurl: a.pic_url.clone(),
                })
            }
            _ => return None,
        })
    }
}

fn strip_nulls(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.retain(|_, x| !x.is_null());
    }
    v
}

/// The outcome of delivering a late reply as a customer-service message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyDelivery {
    /// WeChat accepted the message.
    Sent,
    /// There was nothing to send ([`Reply::None`]).
    Nothing,
    /// 45015: the user has not interacted within 48 hours; the reply cannot reach them.
    WindowClosed(ApiError),
    /// 45047: the limit of messages since the user last wrote is reached.
    LimitReached(ApiError),
}

impl ReplyDelivery {
    /// Whether the message reached WeChat.
    pub fn is_sent(&self) -> bool {
        matches!(self, Self::Sent)
    }
}

/// A customer-service agent account.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct KfAccount {
    /// `account@wechat_id`.
    pub kf_account: String,
    /// Nickname.
    #[serde(default)]
    pub kf_nick: String,
    /// Numeric id.
    #[serde(default)]
    pub kf_id: Value,
    /// Avatar URL.
    #[serde(default)]
    pub kf_headimgurl: String,
}

/// An online agent.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct KfOnline {
    /// `account@wechat_id`.
    pub kf_account: String,
    /// Status (1 web).
    #[serde(default)]
    pub status: i64,
    /// Numeric id.
    #[serde(default)]
    pub kf_id: Value,
    /// Sessions the agent is handling.
    #[serde(default)]
    pub accepted_case: i64,
}

/// A customer-service session.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct KfSession {
    /// The user.
    pub openid: String,
    /// When it started, Unix seconds.
    #[serde(default)]
    pub createtime: i64,
}

/// Users waiting for an agent.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct KfWaitCases {
    /// How many.
    pub count: u64,
    /// The waiting users.
    #[serde(default)]
    pub waitcaselist: Vec<Value>,
}

/// One field of a template message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateValue {
    /// The text.
    pub value: String,
    /// `#RRGGBB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

/// A mini-program a template or subscription message opens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MiniProgram {
    /// The mini program's AppID.
    pub appid: String,
    /// The page path.
    #[serde(default)]
    pub pagepath: String,
}

/// A template message.
///
/// ```
/// use wemp_client::message::TemplateMessage;
/// let msg = TemplateMessage::new("o1", "TPL").url("https://example.com").field("first", "Hello");
/// assert_eq!(serde_json::to_value(&msg).unwrap()["data"]["first"]["value"], "Hello");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateMessage {
    /// The recipient's OpenID.
    pub touser: String,
    /// The template id.
    pub template_id: String,
    /// Where a tap leads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A mini-program a tap opens (preferred over `url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miniprogram: Option<MiniProgram>,
    /// Fields by keyword.
    pub data: BTreeMap<String, TemplateValue>,
    /// Dedup id for retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
}

impl TemplateMessage {
    /// A message with no fields yet.
    pub fn new(touser: impl Into<String>, template_id: impl Into<String>) -> Self {
        Self {
            touser: touser.into(),
            template_id: template_id.into(),
            url: None,
            miniprogram: None,
            data: BTreeMap::new(),
            client_msg_id: None,
        }
    }

    /// Sets the URL.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Adds a field.
    pub fn field(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.data.insert(key.into(), TemplateValue { value: value.into(), color: None });
        self
    }

    /// Adds a colored field.
    pub fn colored(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
        color: impl Into<String>,
    ) -> Self {
        self.data.insert(key.into(), TemplateValue { value: value.into(), color: Some(color.into()) });
        self
    }
}

/// A template of the account.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Template {
    /// The template id.
    pub template_id: String,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Primary industry.
    #[serde(default)]
    pub primary_industry: String,
    /// Deputy industry.
    #[serde(default)]
    pub deputy_industry: String,
    /// Content with `{{key.DATA}}` placeholders.
    #[serde(default)]
    pub content: String,
    /// Example.
    #[serde(default)]
    pub example: String,
}

/// An industry class.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct IndustryClass {
    /// First level.
    pub first_class: String,
    /// Second level.
    pub second_class: String,
}

/// The account's template industries.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Industry {
    /// Primary industry.
    pub primary_industry: IndustryClass,
    /// Secondary industry.
    pub secondary_industry: IndustryClass,
}

/// A subscription notification (`bizsend`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeMessage {
    /// The recipient's OpenID.
    pub touser: String,
    /// The template id.
    pub template_id: String,
    /// Where a tap leads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// A mini-program a tap opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miniprogram: Option<MiniProgram>,
    /// Fields by keyword: `{"thing1": {"value": "…"}}`.
    pub data: BTreeMap<String, TemplateValue>,
}

impl SubscribeMessage {
    /// A notification with no fields yet.
    pub fn new(touser: impl Into<String>, template_id: impl Into<String>) -> Self {
        Self {
            touser: touser.into(),
            template_id: template_id.into(),
            page: None,
            miniprogram: None,
            data: BTreeMap::new(),
        }
    }

    /// Adds a field.
    pub fn field(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.data.insert(key.into(), TemplateValue { value: value.into(), color: None });
        self
    }
}

/// A subscription-notification template of the account.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct SubscribeTemplate {
    /// The template id.
    #[serde(rename = "priTmplId")]
    pub pri_tmpl_id: String,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Content.
    #[serde(default)]
    pub content: String,
    /// Example.
    #[serde(default)]
    pub example: String,
    /// 2 one-time, 3 long-term.
    #[serde(rename = "type", default)]
    pub kind: i64,
}

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
    /// Video by media id (`mpvideo`).
    Video(String),
    /// Articles by media id (`mpnews`); `send_ignore_reprint` 0.
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
            Self::MpNews(m) => {
                body["send_ignore_reprint"] = json!(0);
                ("mpnews", json!({ "media_id": m }))
            }
            Self::Card(c) => ("wxcard", json!({ "card_id": c })),
        };
        body["msgtype"] = json!(msgtype);
        body[msgtype] = payload;
    }
}

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

impl Client {
    /// Sends a customer-service message (`POST /cgi-bin/message/custom/send`).
    ///
    /// # Errors
    /// As [`Client::get`]; 45015/45047 arrive as [`Error::Api`] (see
    /// [`Client::send_reply`] for a typed outcome).
    pub async fn send_cs_message(&self, touser: &str, msg: &CsMessage) -> Result<()> {
        self.post_ok("/cgi-bin/message/custom/send", &msg.to_json(touser, None)).await
    }

    /// Sends a customer-service message as a named agent (`kf_account`).
    ///
    /// # Errors
    /// As [`Client::send_cs_message`].
    pub async fn send_cs_message_as(&self, touser: &str, msg: &CsMessage, kf_account: &str) -> Result<()> {
        self.post_ok("/cgi-bin/message/custom/send", &msg.to_json(touser, Some(kf_account))).await
    }

    /// Delivers a passive [`Reply`] that missed WeChat's 5-second window as the matching
    /// customer-service message. 45015 and 45047 become [`ReplyDelivery::WindowClosed`] and
    /// [`ReplyDelivery::LimitReached`]; [`Reply::None`] sends nothing.
    ///
    /// # Errors
    /// [`Error::Invalid`] for [`Reply::TransferCustomerService`] (it has no message form)
    /// or a news reply without articles; otherwise as [`Client::get`].
    pub async fn send_reply(&self, openid: &str, reply: &Reply) -> Result<ReplyDelivery> {
        if reply.is_none() {
            return Ok(ReplyDelivery::Nothing);
        }
        let Some(msg) = CsMessage::from_reply(reply) else {
            return Err(Error::Invalid(format!(
                "a {} reply has no customer-service message form",
                reply.msg_type().unwrap_or("empty")
            )));
        };
        match self.send_cs_message(openid, &msg).await {
            Ok(()) => Ok(ReplyDelivery::Sent),
            Err(Error::Api(e)) if e.code.0 == 45015 => Ok(ReplyDelivery::WindowClosed(e)),
            Err(Error::Api(e)) if e.code.0 == 45047 => Ok(ReplyDelivery::LimitReached(e)),
            Err(e) => Err(e),
        }
    }

    /// Shows or hides "typing…" to the user (`POST /cgi-bin/message/custom/typing`).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn set_typing(&self, touser: &str, typing: bool) -> Result<()> {
        let command = if typing { "Typing" } else { "CancelTyping" };
        self.post_ok("/cgi-bin/message/custom/typing", &json!({ "touser": touser, "command": command })).await
    }

    /// The agent accounts.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn kf_accounts(&self) -> Result<Vec<KfAccount>> {
        #[derive(Deserialize)]
        struct L {
            kf_list: Vec<KfAccount>,
        }
        Ok(self.get_as::<L>("/cgi-bin/customservice/getkflist", &[]).await?.kf_list)
    }

    /// The agents online.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn kf_online(&self) -> Result<Vec<KfOnline>> {
        #[derive(Deserialize)]
        struct L {
            kf_online_list: Vec<KfOnline>,
        }
        Ok(self.get_as::<L>("/cgi-bin/customservice/getonlinekflist", &[]).await?.kf_online_list)
    }

    /// Adds an agent account (`account@wechat_id`).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn add_kf_account(&self, kf_account: &str, nickname: &str) -> Result<()> {
        self.post_ok(
            "/customservice/kfaccount/add",
            &json!({ "kf_account": kf_account, "nickname": nickname }),
        )
        .await
    }

    /// Renames an agent account.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn update_kf_account(&self, kf_account: &str, nickname: &str) -> Result<()> {
        self.post_ok(
            "/customservice/kfaccount/update",
            &json!({ "kf_account": kf_account, "nickname": nickname }),
        )
        .await
    }

    /// Deletes an agent account.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn delete_kf_account(&self, kf_account: &str) -> Result<()> {
        self.get_ok("/customservice/kfaccount/del", &[("kf_account", kf_account)]).await
    }

    /// Starts a session between an agent and a user.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn create_kf_session(&self, kf_account: &str, openid: &str) -> Result<()> {
        self.post_ok(
            "/customservice/kfsession/create",
            &json!({ "kf_account": kf_account, "openid": openid }),
        )
        .await
    }

    /// Ends a session.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn close_kf_session(&self, kf_account: &str, openid: &str) -> Result<()> {
        self.post_ok("/customservice/kfsession/close", &json!({ "kf_account": kf_account, "openid": openid }))
            .await
    }

    /// The agent a user is talking to, if any.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn kf_session_of(&self, openid: &str) -> Result<Option<String>> {
        #[derive(Deserialize)]
        struct S {
            #[serde(default)]
            kf_account: String,
        }
        let s: S = self.get_as("/customservice/kfsession/getsession", &[("openid", openid)]).await?;
        Ok(Some(s.kf_account).filter(|a| !a.is_empty()))
    }

    /// An agent's sessions.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn kf_sessions(&self, kf_account: &str) -> Result<Vec<KfSession>> {
        #[derive(Deserialize)]
        struct L {
            sessionlist: Vec<KfSession>,
        }
        Ok(self
            .get_as::<L>("/customservice/kfsession/getsessionlist", &[("kf_account", kf_account)])
            .await?
            .sessionlist)
    }

    /// Users waiting for an agent.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn kf_waiting(&self) -> Result<KfWaitCases> {
        self.get_as("/customservice/kfsession/getwaitcase", &[]).await
    }

    /// Sends a template message; returns its `msgid`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn send_template(&self, msg: &TemplateMessage) -> Result<i64> {
        #[derive(Deserialize)]
        struct M {
            msgid: i64,
        }
        Ok(self.post_as::<M, _>("/cgi-bin/message/template/send", &[], msg).await?.msgid)
    }

    /// Sets the account's two template industries.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn set_industry(&self, industry_id1: &str, industry_id2: &str) -> Result<()> {
        self.post_ok(
            "/cgi-bin/template/api_set_industry",
            &json!({ "industry_id1": industry_id1, "industry_id2": industry_id2 }),
        )
        .await
    }

    /// The account's template industries.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn industry(&self) -> Result<Industry> {
        self.get_as("/cgi-bin/template/get_industry", &[]).await
    }

    /// The account's templates.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn templates(&self) -> Result<Vec<Template>> {
        #[derive(Deserialize)]
        struct L {
            template_list: Vec<Template>,
        }
        Ok(self.get_as::<L>("/cgi-bin/template/get_all_private_template", &[]).await?.template_list)
    }

    /// Adds a template from the library; returns its id.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn add_template(&self, template_id_short: &str, keyword_names: &[&str]) -> Result<String> {
        #[derive(Deserialize)]
        struct T {
            template_id: String,
        }
        let body = json!({ "template_id_short": template_id_short, "keyword_name_list": keyword_names });
        Ok(self.post_as::<T, _>("/cgi-bin/template/api_add_template", &[], &body).await?.template_id)
    }

    /// Deletes a template.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn delete_template(&self, template_id: &str) -> Result<()> {
        self.post_ok("/cgi-bin/template/del_private_template", &json!({ "template_id": template_id })).await
    }

    /// Sends a subscription notification (`POST /cgi-bin/message/subscribe/bizsend`).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn send_subscribe(&self, msg: &SubscribeMessage) -> Result<()> {
        self.post_ok("/cgi-bin/message/subscribe/bizsend", msg).await
    }

    /// The account's subscription-notification templates.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn subscribe_templates(&self) -> Result<Vec<SubscribeTemplate>> {
        #[derive(Deserialize)]
        struct L {
            data: Vec<SubscribeTemplate>,
        }
        Ok(self.get_as::<L>("/wxaapi/newtmpl/gettemplate", &[]).await?.data)
    }

    /// Mass-sends to followers with `tag_id`, or to all followers with `None`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn mass_send_to_tag(&self, tag_id: Option<i64>, content: &MassContent) -> Result<MassSent> {
        let filter = match tag_id {
            Some(id) => json!({ "is_to_all": false, "tag_id": id }),
            None => json!({ "is_to_all": true }),
        };
        let mut body = json!({ "filter": filter });
        content.insert_into(&mut body);
        self.post_as("/cgi-bin/message/mass/sendall", &[], &body).await
    }

    /// Mass-sends to a list of OpenIDs (2 to 10,000).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn mass_send_to_users(&self, openids: &[&str], content: &MassContent) -> Result<MassSent> {
        let mut body = json!({ "touser": openids });
        content.insert_into(&mut body);
        self.post_as("/cgi-bin/message/mass/send", &[], &body).await
    }

    /// Previews a mass message to one user.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn mass_preview(&self, openid: &str, content: &MassContent) -> Result<()> {
        let mut body = json!({ "touser": openid });
        content.insert_into(&mut body);
        self.post_ok("/cgi-bin/message/mass/preview", &body).await
    }

    /// Deletes a sent mass message (`article_idx` 0 or `None`: all articles).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn mass_delete(&self, msg_id: i64, article_idx: Option<u32>) -> Result<()> {
        self.post_ok(
            "/cgi-bin/message/mass/delete",
            &json!({ "msg_id": msg_id, "article_idx": article_idx.unwrap_or(0) }),
        )
        .await
    }

    /// The state of a mass message (`SEND_SUCCESS`, `SENDING`, `SEND_FAIL`, `DELETE`).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn mass_status(&self, msg_id: i64) -> Result<String> {
        #[derive(Deserialize)]
        struct S {
            msg_status: String,
        }
        Ok(self
            .post_as::<S, _>("/cgi-bin/message/mass/get", &[], &json!({ "msg_id": msg_id }))
            .await?
            .msg_status)
    }

    /// The mass-sending speed.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn mass_speed(&self) -> Result<MassSpeed> {
        self.post_as("/cgi-bin/message/mass/speed/get", &[], &json!({})).await
    }

    /// Sets the mass-sending speed level (0 fastest … 4).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn set_mass_speed(&self, speed: u8) -> Result<()> {
        self.post_ok("/cgi-bin/message/mass/speed/set", &json!({ "speed": speed })).await
    }
}
