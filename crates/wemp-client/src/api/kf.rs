//! Customer service (客服): messages and late replies, "typing…", agent accounts and
//! their workers, sessions, the waiting queue and chat records.
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Service_Center_messages.html>

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wemp_proto::Reply;

use crate::client::Client;
use crate::client::{MediaFile, Upload};
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
    /// The WeChat id of the worker bound to the account, once one accepted an invitation.
    #[serde(default)]
    pub kf_wx: Option<String>,
    /// The WeChat id invited to bind the account ([`KfApi::invite_worker`]), while pending.
    #[serde(default)]
    pub invite_wx: Option<String>,
    /// When the pending invitation expires, Unix seconds.
    #[serde(default)]
    pub invite_expire_time: Option<i64>,
    /// `waiting`, `rejected` or `expired`.
    #[serde(default)]
    pub invite_status: Option<String>,
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

/// One message of the chat records ([`KfApi::records`]).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct KfRecord {
    /// The user.
    pub openid: String,
    /// 2002 the agent sent, 2003 the agent received (other codes for session events).
    #[serde(default)]
    pub opercode: i64,
    /// The text (images, voice and video read `[image]`, `[voice]`, `[video]`).
    #[serde(default)]
    pub text: String,
    /// When, Unix seconds.
    #[serde(default)]
    pub time: i64,
    /// The agent (`account@wechat_id`).
    #[serde(default)]
    pub worker: String,
}

/// A page of chat records.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct KfRecords {
    /// The messages.
    #[serde(default)]
    pub recordlist: Vec<KfRecord>,
    /// How many came back; fewer than asked means the time range is exhausted.
    #[serde(default)]
    pub number: u64,
    /// The `msgid` to ask from for the next page.
    #[serde(default)]
    pub msgid: i64,
}

/// The endpoints of this area, in one place.
mod path {
    pub(super) const SEND: &str = "/cgi-bin/message/custom/send";
    pub(super) const TYPING: &str = "/cgi-bin/message/custom/typing";
    pub(super) const ACCOUNTS: &str = "/cgi-bin/customservice/getkflist";
    pub(super) const ONLINE: &str = "/cgi-bin/customservice/getonlinekflist";
    pub(super) const ADD_ACCOUNT: &str = "/customservice/kfaccount/add";
    pub(super) const UPDATE_ACCOUNT: &str = "/customservice/kfaccount/update";
    pub(super) const DELETE_ACCOUNT: &str = "/customservice/kfaccount/del";
    pub(super) const UPLOAD_AVATAR: &str = "/customservice/kfaccount/uploadheadimg";
    pub(super) const INVITE_WORKER: &str = "/customservice/kfaccount/inviteworker";
    pub(super) const CREATE_SESSION: &str = "/customservice/kfsession/create";
    pub(super) const CLOSE_SESSION: &str = "/customservice/kfsession/close";
    pub(super) const SESSION_OF: &str = "/customservice/kfsession/getsession";
    pub(super) const SESSIONS: &str = "/customservice/kfsession/getsessionlist";
    pub(super) const WAITING: &str = "/customservice/kfsession/getwaitcase";
    pub(super) const RECORDS: &str = "/customservice/msgrecord/getmsglist";
}

impl Client {
    /// Customer service: [`KfApi`].
    pub fn kf(&self) -> KfApi<'_> {
        KfApi(self)
    }
}

/// Customer service (`/cgi-bin/message/custom/*`, `/customservice/*`), from [`Client::kf`].
#[derive(Clone, Copy, Debug)]
pub struct KfApi<'c>(&'c Client);

/// The longest time range of one [`KfApi::records`] call, in seconds.
pub const RECORDS_MAX_RANGE: i64 = 24 * 3600;
/// The most messages one [`KfApi::records`] call returns.
pub const RECORDS_MAX_NUMBER: u32 = 10_000;

/// Whether `kf_account` has the `prefix@wechat_id` form.
fn check_account(kf_account: &str) -> Result<()> {
    match kf_account.split_once('@') {
        Some((prefix, id)) if !prefix.is_empty() && !id.is_empty() => Ok(()),
        _ => Err(Error::Invalid(format!(
            "customer service: an agent account has the form prefix@wechat_id, not {kf_account:?}"
        ))),
    }
}

impl KfApi<'_> {
    /// Sends a customer-service message (`POST /cgi-bin/message/custom/send`).
    ///
    /// # Errors
    /// As [`Client::get`]; 45015/45047 arrive as [`Error::Api`] (see [`KfApi::send_reply`] for
    /// a typed outcome).
    pub async fn send(self, touser: &str, msg: &CsMessage) -> Result<()> {
        self.0.post_ok(path::SEND, &msg.to_json(touser, None)).await
    }

    /// Sends a customer-service message as a named agent (`kf_account`).
    ///
    /// # Errors
    /// As [`KfApi::send`].
    pub async fn send_as(self, touser: &str, msg: &CsMessage, kf_account: &str) -> Result<()> {
        self.0.post_ok(path::SEND, &msg.to_json(touser, Some(kf_account))).await
    }

    /// Delivers a passive [`Reply`] that missed WeChat's 5-second window as the matching
    /// customer-service message. 45015 and 45047 become [`ReplyDelivery::WindowClosed`] and
    /// [`ReplyDelivery::LimitReached`]; [`Reply::None`] sends nothing. A WeCom application's
    /// client ([`crate::ClientBuilder::wecom`]) sends text and image replies to the member
    /// `openid` (their UserID) through [`Client::wecom_send`] instead.
    ///
    /// # Errors
    /// [`Error::Invalid`] for [`Reply::TransferCustomerService`] (it has no message form)
    /// or a news reply without articles; otherwise as [`Client::get`].
    pub async fn send_reply(self, openid: &str, reply: &Reply) -> Result<ReplyDelivery> {
        if reply.is_none() {
            return Ok(ReplyDelivery::Nothing);
        }
        if self.0.agentid().is_some() {
            return self.0.wecom_reply(openid, reply).await;
        }
        let Some(msg) = CsMessage::from_reply(reply) else {
            return Err(Error::Invalid(format!(
                "a {} reply has no customer-service message form",
                reply.msg_type().unwrap_or("empty")
            )));
        };
        match self.send(openid, &msg).await {
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
    pub async fn typing(self, touser: &str, typing: bool) -> Result<()> {
        let command = if typing { "Typing" } else { "CancelTyping" };
        self.0.post_ok(path::TYPING, &json!({ "touser": touser, "command": command })).await
    }

    /// The agent accounts.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn accounts(self) -> Result<Vec<KfAccount>> {
        #[derive(Deserialize)]
        struct L {
            kf_list: Vec<KfAccount>,
        }
        Ok(self.0.get_as::<L>(path::ACCOUNTS, &[]).await?.kf_list)
    }

    /// The agents online.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn online(self) -> Result<Vec<KfOnline>> {
        #[derive(Deserialize)]
        struct L {
            kf_online_list: Vec<KfOnline>,
        }
        Ok(self.0.get_as::<L>(path::ONLINE, &[]).await?.kf_online_list)
    }

    /// Adds an agent account (`account@wechat_id`).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn add_account(self, kf_account: &str, nickname: &str) -> Result<()> {
        self.0.post_ok(path::ADD_ACCOUNT, &json!({ "kf_account": kf_account, "nickname": nickname })).await
    }

    /// Renames an agent account.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn update_account(self, kf_account: &str, nickname: &str) -> Result<()> {
        self.0.post_ok(path::UPDATE_ACCOUNT, &json!({ "kf_account": kf_account, "nickname": nickname })).await
    }

    /// Deletes an agent account.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn delete_account(self, kf_account: &str) -> Result<()> {
        self.0.get_ok(path::DELETE_ACCOUNT, &[("kf_account", kf_account)]).await
    }

    /// Sets an agent's avatar (`uploadheadimg`, multipart): a JPEG file (`.jpg`/`.jpeg`;
    /// 640×640 shows best).
    ///
    /// # Errors
    /// [`Error::Invalid`] for an account not of the form `prefix@wechat_id`, an empty file
    /// or one not named `.jpg`/`.jpeg`, before sending; otherwise as [`Client::get`]
    /// (65401 unknown account, 40005 a file WeChat does not take as JPEG).
    pub async fn upload_avatar(self, kf_account: &str, file: MediaFile) -> Result<()> {
        check_account(kf_account)?;
        let ext = file.file_name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        if !matches!(ext.as_deref(), Some("jpg" | "jpeg")) {
            return Err(Error::Invalid(format!(
                "customer service: an avatar is a JPEG file named .jpg or .jpeg, not {:?}",
                file.file_name
            )));
        }
        if file.data.is_empty() {
            return Err(Error::Invalid("customer service: the avatar file is empty".into()));
        }
        let form = Upload::new().file("media", file);
        self.0.upload::<Value>(path::UPLOAD_AVATAR, &[("kf_account", kf_account)], &form).await.map(drop)
    }

    /// Invites the WeChat user `invite_wx` (their WeChat id) to work as agent `kf_account`;
    /// they accept in WeChat within 7 days ([`KfAccount::invite_status`] follows it).
    ///
    /// # Errors
    /// [`Error::Invalid`] for an account not of the form `prefix@wechat_id` or an empty
    /// WeChat id, before sending; otherwise as [`Client::get`] (65407 already its worker,
    /// 65411 an invitation is pending, 65412 a worker is already bound).
    pub async fn invite_worker(self, kf_account: &str, invite_wx: &str) -> Result<()> {
        check_account(kf_account)?;
        if invite_wx.trim().is_empty() {
            return Err(Error::Invalid("customer service: the invited WeChat id is empty".into()));
        }
        self.0
            .post_ok(path::INVITE_WORKER, &json!({ "kf_account": kf_account, "invite_wx": invite_wx }))
            .await
    }

    /// Starts a session between an agent and a user.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn create_session(self, kf_account: &str, openid: &str) -> Result<()> {
        self.0.post_ok(path::CREATE_SESSION, &json!({ "kf_account": kf_account, "openid": openid })).await
    }

    /// Ends a session.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn close_session(self, kf_account: &str, openid: &str) -> Result<()> {
        self.0.post_ok(path::CLOSE_SESSION, &json!({ "kf_account": kf_account, "openid": openid })).await
    }

    /// The agent a user is talking to, if any.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn session_of(self, openid: &str) -> Result<Option<String>> {
        #[derive(Deserialize)]
        struct S {
            #[serde(default)]
            kf_account: String,
        }
        let s: S = self.0.get_as(path::SESSION_OF, &[("openid", openid)]).await?;
        Ok(Some(s.kf_account).filter(|a| !a.is_empty()))
    }

    /// An agent's sessions.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn sessions(self, kf_account: &str) -> Result<Vec<KfSession>> {
        #[derive(Deserialize)]
        struct L {
            sessionlist: Vec<KfSession>,
        }
        Ok(self.0.get_as::<L>(path::SESSIONS, &[("kf_account", kf_account)]).await?.sessionlist)
    }

    /// Users waiting for an agent.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn waiting(self) -> Result<KfWaitCases> {
        self.0.get_as(path::WAITING, &[]).await
    }

    /// The chat records between `start` and `end` (Unix seconds, at most 24 hours apart),
    /// from message `msgid` on (1 for the first page), at most `number` (1–10,000) of them.
    /// Page on with the answer's [`KfRecords::msgid`] until fewer than `number` come back.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a range that is empty, reversed or longer than 24 hours, a
    /// `msgid` below 1 or a `number` outside 1–10,000, before sending; otherwise as
    /// [`Client::get`] (65416 invalid parameters, 65417 range too long).
    pub async fn records(self, start: i64, end: i64, msgid: i64, number: u32) -> Result<KfRecords> {
        let invalid = |m: String| Err(Error::Invalid(format!("chat records: {m}")));
        if end <= start {
            return invalid(format!("the end ({end}) comes after the start ({start})"));
        }
        if end - start > RECORDS_MAX_RANGE {
            return invalid(format!("the range is at most 24 hours (86400 s), not {} s", end - start));
        }
        if msgid < 1 {
            return invalid(format!("msgid counts from 1, not {msgid}"));
        }
        if !(1..=RECORDS_MAX_NUMBER).contains(&number) {
            return invalid(format!("number is 1 to 10000, not {number}"));
        }
        let body = json!({ "starttime": start, "endtime": end, "msgid": msgid, "number": number });
        self.0.post_as(path::RECORDS, &[], &body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_the_documented_answer() {
        let answer = json!({
            "recordlist": [
                { "openid": "oDF3iY9WMaswOPWjCIp_f3Bnpljk", "opercode": 2002,
                  "text": " 您好，客服test1为您服务。", "time": 1_400_563_710, "worker": "test1@test" },
                { "openid": "oDF3iY9WMaswOPWjCIp_f3Bnpljk", "opercode": 2003,
                  "text": "你好，有什么事情？", "time": 1_400_563_731, "worker": "test1@test" }
            ],
            "number": 2,
            "msgid": 20_165_267
        });
        let records: KfRecords = serde_json::from_value(answer).unwrap();
        assert_eq!((records.number, records.msgid), (2, 20_165_267));
        assert_eq!(records.recordlist[1].opercode, 2003);
        assert_eq!(records.recordlist[0].worker, "test1@test");
    }
}
