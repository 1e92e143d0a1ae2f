//! 图文留言管理: comments on mass-sent articles — open and close them, list them, elect
//! (精选) them, delete them, and answer them.
//!
//! An article is named by the `msg_data_id` a mass send of articles returned
//! ([`MassSent::msg_data_id`](crate::api::mass::MassSent::msg_data_id)) and its 0-based
//! `index` within that message (0 is the first article). Every call needs the account's
//! comment permission (errcode `88000 without comment privilege` otherwise).
//!
//! ```no_run
//! use wemp_client::api::comments::CommentType;
//! # async fn demo(client: wemp_client::Client, msg_data_id: i64) -> wemp_client::Result<()> {
//! let page = client.comments().list(msg_data_id, 0, 0, 20, CommentType::Normal).await?;
//! for c in &page.comments {
//!     if c.content.contains("thanks") {
//!         client.comments().elect(msg_data_id, 0, c.id).await?;
//!         client.comments().reply(msg_data_id, 0, c.id, "You're welcome!").await?;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Official references:
//! - <https://developers.weixin.qq.com/doc/offiaccount/Comments_management/Image_Comments_Management_Interface.html>
//! - per API: `https://developers.weixin.qq.com/doc/service/api/leaving/api_<name>` (`api_opencomment`,
//!   `api_listcomment`, `api_markelect`, `api_replycomment`, …)
//!
//! Where the sources disagree:
//! - The docs type `msg_data_id` and `user_comment_id` as numbers (Uint32 in the older
//!   page); WxJava switched `msg_data_id` to a string. This client takes `i64` and sends
//!   numbers, as documented.
//! - `create_time` is a number (Unix seconds) in the docs and a string in WxJava's model;
//!   both are accepted.
//! - `total` is documented as the number of comments in all, "not the size of `comment`",
//!   but developers report that it equals the size of the page and that an undocumented
//!   `comment_cnt` holds the total. [`CommentPage`] keeps both; to read every comment,
//!   page until a page comes back shorter than `count`.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;

use crate::client::Client;
use crate::error::{Error, Result};

/// The most comments one [`CommentsApi::list`] call may ask for ("`count` ≥ 50 is
/// refused", errcode 88010).
pub const MAX_COMMENTS_PER_PAGE: u32 = 49;

/// Which comments [`CommentsApi::list`] returns (`type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CommentType {
    /// `0`: normal and elected comments.
    #[default]
    All,
    /// `1`: comments that are not elected.
    Normal,
    /// `2`: elected comments only.
    Elected,
}

impl CommentType {
    /// The `type` value.
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::All => 0,
            Self::Normal => 1,
            Self::Elected => 2,
        }
    }
}

/// A user's comment on an article.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// The comment id (`user_comment_id`), which the other calls take.
    #[serde(rename = "user_comment_id")]
    pub id: i64,
    /// The commenter's OpenID; absent when they commented under a non-WeChat identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
    /// When it was written, Unix seconds.
    #[serde(default, deserialize_with = "seconds")]
    pub create_time: i64,
    /// The text.
    #[serde(default)]
    pub content: String,
    /// Whether it is elected (`comment_type` 1).
    #[serde(rename = "comment_type", default, deserialize_with = "flag", serialize_with = "flag_out")]
    pub elected: bool,
    /// The account's reply, if it answered.
    #[serde(default, deserialize_with = "reply", skip_serializing_if = "Option::is_none")]
    pub reply: Option<CommentReply>,
}

/// The account's reply to a comment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentReply {
    /// The text.
    #[serde(default)]
    pub content: String,
    /// When it was written, Unix seconds.
    #[serde(default, deserialize_with = "seconds")]
    pub create_time: i64,
}

/// A page of comments.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentPage {
    /// Comments in all, as documented (see the module notes: reported to be the page size).
    #[serde(default)]
    pub total: u64,
    /// The comments on this page (`comment`).
    #[serde(rename = "comment", default, deserialize_with = "crate::serde_util::null_as_empty")]
    pub comments: Vec<Comment>,
    /// The undocumented total that developers report WeChat sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment_cnt: Option<u64>,
}

fn seconds<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        Num(i64),
        Str(String),
    }
    match Option::<NumOrStr>::deserialize(d)? {
        None => Ok(0),
        Some(NumOrStr::Num(n)) => Ok(n),
        Some(NumOrStr::Str(s)) if s.is_empty() => Ok(0),
        Some(NumOrStr::Str(s)) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

fn flag<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    Ok(Option::<i64>::deserialize(d)?.unwrap_or(0) != 0)
}

fn flag_out<S: serde::Serializer>(v: &bool, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u8(u8::from(*v))
}

/// No reply may arrive as a missing field, `null`, `{}` or an empty reply.
fn reply<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<CommentReply>, D::Error> {
    Ok(Option::<CommentReply>::deserialize(d)?.filter(|r| !r.content.is_empty() || r.create_time != 0))
}

fn target(msg_data_id: i64, index: u32) -> serde_json::Value {
    json!({ "msg_data_id": msg_data_id, "index": index })
}

fn on_comment(msg_data_id: i64, index: u32, user_comment_id: i64) -> serde_json::Value {
    json!({ "msg_data_id": msg_data_id, "index": index, "user_comment_id": user_comment_id })
}

/// The endpoints of this area, in one place.
mod path {
    pub(super) const OPEN: &str = "/cgi-bin/comment/open";
    pub(super) const CLOSE: &str = "/cgi-bin/comment/close";
    pub(super) const LIST: &str = "/cgi-bin/comment/list";
    pub(super) const ELECT: &str = "/cgi-bin/comment/markelect";
    pub(super) const UNELECT: &str = "/cgi-bin/comment/unmarkelect";
    pub(super) const DELETE: &str = "/cgi-bin/comment/delete";
    pub(super) const REPLY: &str = "/cgi-bin/comment/reply/add";
    pub(super) const DELETE_REPLY: &str = "/cgi-bin/comment/reply/delete";
}

impl Client {
    /// Comments on mass-sent articles (`/cgi-bin/comment/*`): [`CommentsApi`].
    pub fn comments(&self) -> CommentsApi<'_> {
        CommentsApi(self)
    }
}

/// Comments on mass-sent articles (`/cgi-bin/comment/*`), from [`Client::comments`].
#[derive(Clone, Copy, Debug)]
pub struct CommentsApi<'c>(&'c Client);

impl CommentsApi<'_> {
    /// Opens comments on a mass-sent article (`POST /cgi-bin/comment/open`).
    ///
    /// # Errors
    /// As [`Client::get`]: `88000` no comment permission, `88001` no such article, `88002`
    /// the article is restricted for safety.
    pub async fn open(self, msg_data_id: i64, index: u32) -> Result<()> {
        self.0.post_ok(path::OPEN, &target(msg_data_id, index)).await
    }

    /// Closes comments on a mass-sent article (`POST /cgi-bin/comment/close`).
    ///
    /// # Errors
    /// As [`CommentsApi::open`].
    pub async fn close(self, msg_data_id: i64, index: u32) -> Result<()> {
        self.0.post_ok(path::CLOSE, &target(msg_data_id, index)).await
    }

    /// One page of an article's comments (`POST /cgi-bin/comment/list`): `count` comments
    /// (1 to [`MAX_COMMENTS_PER_PAGE`]) from position `begin`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a `count` of 0 or above [`MAX_COMMENTS_PER_PAGE`] (nothing is
    /// sent); otherwise as [`CommentsApi::open`] (`88010` count out of range).
    pub async fn list(
        self,
        msg_data_id: i64,
        index: u32,
        begin: u32,
        count: u32,
        kind: CommentType,
    ) -> Result<CommentPage> {
        if count == 0 || count > MAX_COMMENTS_PER_PAGE {
            return Err(Error::Invalid(format!(
                "comment/list takes a count of 1 to {MAX_COMMENTS_PER_PAGE} (WeChat refuses 50 or more \
                 with 88010), not {count}"
            )));
        }
        let body = json!({
            "msg_data_id": msg_data_id, "index": index, "begin": begin, "count": count,
            "type": kind.as_u8(),
        });
        self.0.post_as(path::LIST, &[], &body).await
    }

    /// Elects (精选) a comment, showing it under the article (`POST /cgi-bin/comment/markelect`).
    ///
    /// # Errors
    /// As [`CommentsApi::open`], plus `88003` too many elected comments, `88004` the
    /// user deleted the comment, `88008` no such comment.
    pub async fn elect(self, msg_data_id: i64, index: u32, user_comment_id: i64) -> Result<()> {
        self.0.post_ok(path::ELECT, &on_comment(msg_data_id, index, user_comment_id)).await
    }

    /// Un-elects a comment (`POST /cgi-bin/comment/unmarkelect`).
    ///
    /// # Errors
    /// As [`CommentsApi::open`], plus `88008` no such comment.
    pub async fn unelect(self, msg_data_id: i64, index: u32, user_comment_id: i64) -> Result<()> {
        self.0.post_ok(path::UNELECT, &on_comment(msg_data_id, index, user_comment_id)).await
    }

    /// Deletes a comment (`POST /cgi-bin/comment/delete`).
    ///
    /// # Errors
    /// As [`CommentsApi::open`], plus `88008` no such comment.
    pub async fn delete(self, msg_data_id: i64, index: u32, user_comment_id: i64) -> Result<()> {
        self.0.post_ok(path::DELETE, &on_comment(msg_data_id, index, user_comment_id)).await
    }

    /// Replies to a comment (`POST /cgi-bin/comment/reply/add`); a comment takes one reply.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty `content` (nothing is sent); otherwise as
    /// [`CommentsApi::open`], plus `88005` already replied, `88007` content too long,
    /// `88008` no such comment.
    pub async fn reply(
        self,
        msg_data_id: i64,
        index: u32,
        user_comment_id: i64,
        content: &str,
    ) -> Result<()> {
        if content.is_empty() {
            return Err(Error::Invalid("comment/reply/add needs a non-empty content (88007)".into()));
        }
        let mut body = on_comment(msg_data_id, index, user_comment_id);
        body["content"] = json!(content);
        self.0.post_ok(path::REPLY, &body).await
    }

    /// Deletes the account's reply to a comment (`POST /cgi-bin/comment/reply/delete`).
    ///
    /// # Errors
    /// As [`CommentsApi::open`], plus `88008` no such comment.
    pub async fn delete_reply(self, msg_data_id: i64, index: u32, user_comment_id: i64) -> Result<()> {
        self.0.post_ok(path::DELETE_REPLY, &on_comment(msg_data_id, index, user_comment_id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_parse_in_every_documented_and_observed_shape() {
        let page: CommentPage = serde_json::from_value(json!({
            "errcode": 0, "errmsg": "ok", "total": 2, "comment_cnt": 182,
            "comment": [
                { "user_comment_id": 7, "openid": "o1", "create_time": 1_700_000_000, "content": "hi",
                  "comment_type": 1, "reply": { "content": "thanks", "create_time": 1_700_000_100 } },
                { "user_comment_id": 8, "create_time": "1700000200", "content": "anon", "comment_type": 0,
                  "reply": {} },
            ],
        }))
        .unwrap();
        assert_eq!((page.total, page.comment_cnt), (2, Some(182)));
        let [a, b] = &page.comments[..] else { panic!("{page:?}") };
        assert!(a.elected && a.reply.as_ref().unwrap().content == "thanks");
        assert_eq!((b.id, b.openid.as_deref(), b.create_time, b.elected), (8, None, 1_700_000_200, false));
        assert_eq!(b.reply, None);
        let empty: CommentPage = serde_json::from_value(json!({ "comment": null })).unwrap();
        assert!(empty.comments.is_empty());
        let out = serde_json::to_value(a).unwrap();
        assert_eq!((out["user_comment_id"].clone(), out["comment_type"].clone()), (json!(7), json!(1)));
    }
}
