//! Users: information, the follower list (as a stream), remarks, the blacklist and OpenID
//! migration (`changeopenid`). Tags are their own area ([`tags`](super::tags)).
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/User_Management/Get_users_basic_information_UnionID.html>

use std::collections::VecDeque;

use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;

use crate::client::Client;
use crate::error::{Error, Result};

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

/// One user's OpenID under the new account, from [`UsersApi::change_openid`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ChangedOpenId {
    /// The OpenID under the old account.
    pub ori_openid: String,
    /// The OpenID under this account (absent when the user could not be migrated).
    #[serde(default)]
    pub new_openid: Option<String>,
    /// `ok`, or why the user could not be migrated (`ori_openid error`: not a follower of
    /// the old account).
    #[serde(default)]
    pub err_msg: Option<String>,
}

/// The most OpenIDs [`UsersApi::change_openid`] takes per call.
pub const CHANGE_OPENID_MAX: usize = 100;

/// The endpoints of this area, in one place.
mod path {
    pub(super) const INFO: &str = "/cgi-bin/user/info";
    pub(super) const BATCH_INFO: &str = "/cgi-bin/user/info/batchget";
    pub(super) const FOLLOWERS: &str = "/cgi-bin/user/get";
    pub(super) const REMARK: &str = "/cgi-bin/user/info/updateremark";
    pub(super) const BLACKLIST: &str = "/cgi-bin/tags/members/getblacklist";
    pub(super) const BLOCK: &str = "/cgi-bin/tags/members/batchblacklist";
    pub(super) const UNBLOCK: &str = "/cgi-bin/tags/members/batchunblacklist";
    pub(super) const CHANGE_OPENID: &str = "/cgi-bin/changeopenid";
}

impl Client {
    /// Users, followers and the blacklist: [`UsersApi`].
    pub fn users(&self) -> UsersApi<'_> {
        UsersApi(self)
    }
}

/// Users (`/cgi-bin/user/*`, the blacklist, `changeopenid`), from [`Client::users`].
#[derive(Clone, Copy, Debug)]
pub struct UsersApi<'c>(&'c Client);

impl<'c> UsersApi<'c> {
    /// A user's information (in `zh_CN`).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn info(self, openid: &str) -> Result<UserInfo> {
        self.0.get_as(path::INFO, &[("openid", openid), ("lang", "zh_CN")]).await
    }

    /// Information about up to 100 users.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn batch_info(self, openids: &[&str]) -> Result<Vec<UserInfo>> {
        #[derive(Deserialize)]
        struct L {
            user_info_list: Vec<UserInfo>,
        }
        let list: Vec<_> = openids.iter().map(|o| json!({ "openid": o, "lang": "zh_CN" })).collect();
        Ok(self.0.post_as::<L, _>(path::BATCH_INFO, &[], &json!({ "user_list": list })).await?.user_info_list)
    }

    /// One page of followers after `next_openid` (empty: from the start).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn followers_page(self, next_openid: &str) -> Result<OpenIdPage> {
        self.0.get_as(path::FOLLOWERS, &[("next_openid", next_openid)]).await
    }

    /// Every follower's OpenID, fetching pages as the stream is read.
    pub fn followers(self) -> impl Stream<Item = Result<String>> + Send + 'c {
        openid_stream(self.0, List::Followers)
    }

    /// Sets the account's remark for a user.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn set_remark(self, openid: &str, remark: &str) -> Result<()> {
        self.0.post_ok(path::REMARK, &json!({ "openid": openid, "remark": remark })).await
    }

    /// One page of the blacklist after `begin_openid` (empty: from the start).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn blacklist_page(self, begin_openid: &str) -> Result<OpenIdPage> {
        self.0.post_as(path::BLACKLIST, &[], &json!({ "begin_openid": begin_openid })).await
    }

    /// The whole blacklist, as a stream.
    pub fn blacklist(self) -> impl Stream<Item = Result<String>> + Send + 'c {
        openid_stream(self.0, List::Blacklist)
    }

    /// Blacklists up to 20 users.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn block(self, openids: &[&str]) -> Result<()> {
        self.0.post_ok(path::BLOCK, &json!({ "openid_list": openids })).await
    }

    /// Removes up to 20 users from the blacklist.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn unblock(self, openids: &[&str]) -> Result<()> {
        self.0.post_ok(path::UNBLOCK, &json!({ "openid_list": openids })).await
    }

    /// The OpenIDs under this account of users known by their OpenIDs under the account
    /// `from_appid`, after an account migration (迁移; called by the account the followers
    /// moved to, for 15 days after the migration): 1 to [`CHANGE_OPENID_MAX`] OpenIDs per
    /// call, one answer per OpenID. WeChat's page asks for the old account's original id
    /// (`gh_…`) in `from_appid`; developers report its AppID is what works.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty `from_appid` or no or more than 100 OpenIDs, before
    /// anything is sent; otherwise as [`Client::get`] (63178 when `from_appid` is not the
    /// account migrated from).
    pub async fn change_openid(self, from_appid: &str, openids: &[&str]) -> Result<Vec<ChangedOpenId>> {
        #[derive(Deserialize)]
        struct R {
            #[serde(default)]
            result_list: Vec<ChangedOpenId>,
        }
        if from_appid.is_empty() {
            return Err(Error::Invalid(
                "changeopenid: from_appid is the AppID migrated from, not empty".into(),
            ));
        }
        if openids.is_empty() || openids.len() > CHANGE_OPENID_MAX {
            return Err(Error::Invalid(format!(
                "changeopenid: 1 to {CHANGE_OPENID_MAX} OpenIDs per call, not {}",
                openids.len()
            )));
        }
        let body = json!({ "from_appid": from_appid, "openid_list": openids });
        Ok(self.0.post_as::<R, _>(path::CHANGE_OPENID, &[], &body).await?.result_list)
    }
}

/// Which paged OpenID list a stream reads.
#[derive(Clone, Copy)]
pub(super) enum List {
    Followers,
    Blacklist,
    Tag(i64),
}

/// A paged OpenID list as a stream, fetching pages as it is read.
pub(super) fn openid_stream(client: &Client, list: List) -> impl Stream<Item = Result<String>> + Send + '_ {
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
                List::Followers => client.users().followers_page(&st.next).await,
                List::Blacklist => client.users().blacklist_page(&st.next).await,
                List::Tag(id) => client.tags().users_page(id, &st.next).await,
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
