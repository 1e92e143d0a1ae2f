//! Users: info, follower lists (as streams), remarks, tags and the blacklist.
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/User_Management/Get_users_basic_information_UnionID.html>

use std::collections::VecDeque;

use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;

use crate::client::Client;
use crate::error::Result;

/// A user's information as the account sees it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct UserInfo {
    /// 1 while the user follows the account (0: the other fields are absent).
    pub subscribe: u8,
    /// OpenID.
    pub openid: String,
    /// Language (`zh_CN`).
    #[serde(default)]
    pub language: Option<String>,
    /// Last follow time, Unix seconds.
    #[serde(default)]
    pub subscribe_time: Option<i64>,
    /// UnionID, when bound to an open platform account.
    #[serde(default)]
    pub unionid: Option<String>,
    /// The account's remark.
    #[serde(default)]
    pub remark: Option<String>,
    /// Tag ids.
    #[serde(default)]
    pub tagid_list: Vec<i64>,
    /// How the user came (`ADD_SCENE_QR_CODE`, …).
    #[serde(default)]
    pub subscribe_scene: Option<String>,
    /// QR scene id.
    #[serde(default)]
    pub qr_scene: Option<i64>,
    /// QR scene string.
    #[serde(default)]
    pub qr_scene_str: Option<String>,
}

/// A page of OpenIDs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct OpenIdPage {
    /// All OpenIDs of the list (absent for tag members).
    #[serde(default)]
    pub total: Option<u64>,
    /// OpenIDs on this page.
    pub count: u64,
    /// The OpenIDs.
    #[serde(default)]
    pub data: Option<OpenIds>,
    /// Pass this to get the next page.
    #[serde(default)]
    pub next_openid: String,
}

/// `{"openid": [...]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct OpenIds {
    /// The OpenIDs.
    #[serde(default)]
    pub openid: Vec<String>,
}

impl OpenIdPage {
    /// The OpenIDs of this page.
    pub fn openids(&self) -> &[String] {
        self.data.as_ref().map_or(&[], |d| &d.openid)
    }
}

/// A user tag.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Tag {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Users with the tag.
    #[serde(default)]
    pub count: u64,
}

#[derive(Clone, Copy)]
enum List {
    Followers,
    Blacklist,
    Tag(i64),
}

impl Client {
    /// A user's information (`lang`: `zh_CN`, `zh_TW`, `en`).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn user_info(&self, openid: &str) -> Result<UserInfo> {
        self.get_as("/cgi-bin/user/info", &[("openid", openid), ("lang", "zh_CN")]).await
    }

    /// Information about up to 100 users.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn users_info(&self, openids: &[&str]) -> Result<Vec<UserInfo>> {
        #[derive(Deserialize)]
        struct L {
            user_info_list: Vec<UserInfo>,
        }
        let list: Vec<_> = openids.iter().map(|o| json!({ "openid": o, "lang": "zh_CN" })).collect();
        Ok(self
            .post_as::<L, _>("/cgi-bin/user/info/batchget", &[], &json!({ "user_list": list }))
            .await?
            .user_info_list)
    }

    /// One page of followers after `next_openid` (empty: from the start).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn followers_page(&self, next_openid: &str) -> Result<OpenIdPage> {
        self.get_as("/cgi-bin/user/get", &[("next_openid", next_openid)]).await
    }

    /// Every follower's OpenID, fetching pages as the stream is read.
    pub fn followers(&self) -> impl Stream<Item = Result<String>> + Send + '_ {
        self.openid_stream(List::Followers)
    }

    /// Sets the account's remark for a user.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn set_remark(&self, openid: &str, remark: &str) -> Result<()> {
        self.post_ok("/cgi-bin/user/info/updateremark", &json!({ "openid": openid, "remark": remark })).await
    }

    /// Creates a tag.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn create_tag(&self, name: &str) -> Result<Tag> {
        #[derive(Deserialize)]
        struct T {
            tag: Tag,
        }
        Ok(self.post_as::<T, _>("/cgi-bin/tags/create", &[], &json!({ "tag": { "name": name } })).await?.tag)
    }

    /// The account's tags.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn tags(&self) -> Result<Vec<Tag>> {
        #[derive(Deserialize)]
        struct T {
            tags: Vec<Tag>,
        }
        Ok(self.get_as::<T>("/cgi-bin/tags/get", &[]).await?.tags)
    }

    /// Renames a tag.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn rename_tag(&self, id: i64, name: &str) -> Result<()> {
        self.post_ok("/cgi-bin/tags/update", &json!({ "tag": { "id": id, "name": name } })).await
    }

    /// Deletes a tag.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn delete_tag(&self, id: i64) -> Result<()> {
        self.post_ok("/cgi-bin/tags/delete", &json!({ "tag": { "id": id } })).await
    }

    /// Tags up to 50 users.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn tag_users(&self, tag_id: i64, openids: &[&str]) -> Result<()> {
        self.post_ok(
            "/cgi-bin/tags/members/batchtagging",
            &json!({ "openid_list": openids, "tagid": tag_id }),
        )
        .await
    }

    /// Untags up to 50 users.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn untag_users(&self, tag_id: i64, openids: &[&str]) -> Result<()> {
        self.post_ok(
            "/cgi-bin/tags/members/batchuntagging",
            &json!({ "openid_list": openids, "tagid": tag_id }),
        )
        .await
    }

    /// The tags of a user.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn tags_of(&self, openid: &str) -> Result<Vec<i64>> {
        #[derive(Deserialize)]
        struct T {
            tagid_list: Vec<i64>,
        }
        Ok(self
            .post_as::<T, _>("/cgi-bin/tags/getidlist", &[], &json!({ "openid": openid }))
            .await?
            .tagid_list)
    }

    /// One page of the users with a tag.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn tag_users_page(&self, tag_id: i64, next_openid: &str) -> Result<OpenIdPage> {
        self.post_as("/cgi-bin/user/tag/get", &[], &json!({ "tagid": tag_id, "next_openid": next_openid }))
            .await
    }

    /// Every user with a tag, as a stream.
    pub fn users_with_tag(&self, tag_id: i64) -> impl Stream<Item = Result<String>> + Send + '_ {
        self.openid_stream(List::Tag(tag_id))
    }

    /// One page of the blacklist.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn blacklist_page(&self, begin_openid: &str) -> Result<OpenIdPage> {
        self.post_as("/cgi-bin/tags/members/getblacklist", &[], &json!({ "begin_openid": begin_openid }))
            .await
    }

    /// The whole blacklist, as a stream.
    pub fn blacklist(&self) -> impl Stream<Item = Result<String>> + Send + '_ {
        self.openid_stream(List::Blacklist)
    }

    /// Blacklists up to 20 users.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn block_users(&self, openids: &[&str]) -> Result<()> {
        self.post_ok("/cgi-bin/tags/members/batchblacklist", &json!({ "openid_list": openids })).await
    }

    /// Removes up to 20 users from the blacklist.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn unblock_users(&self, openids: &[&str]) -> Result<()> {
        self.post_ok("/cgi-bin/tags/members/batchunblacklist", &json!({ "openid_list": openids })).await
    }

    fn openid_stream(&self, list: List) -> impl Stream<Item = Result<String>> + Send + '_ {
        struct State {
            buf: VecDeque<String>,
            next: String,
            done: bool,
        }
        let init = State { buf: VecDeque::new(), next: String::new(), done: false };
        futures_util::stream::unfold(init, move |mut st| async move {
            loop {
                if let Some(id) = st.buf.pop_front() {
                    return Some((Ok(id), st));
                }
                if st.done {
                    return None;
                }
                let page = match list {
                    List::Followers => self.followers_page(&st.next).await,
                    List::Blacklist => self.blacklist_page(&st.next).await,
                    List::Tag(id) => self.tag_users_page(id, &st.next).await,
                };
                match page {
                    Err(e) => {
                        st.done = true;
                        return Some((Err(e), st));
                    }
                    Ok(p) => {
                        st.buf.extend(p.openids().iter().cloned());
                        st.done = p.count == 0 || p.next_openid.is_empty() || p.next_openid == st.next;
                        st.next = p.next_openid;
                    }
                }
            }
        })
    }
}
