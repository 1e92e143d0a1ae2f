//! User tags: create, list, rename and delete tags; tag and untag users; the users with a
//! tag (as a stream).
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/User_Management/User_Tag_Management.html>

use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;

use super::users::{List, OpenIdPage, openid_stream};
use crate::client::Client;
use crate::error::Result;

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

/// The endpoints of this area, in one place.
mod path {
    pub(super) const CREATE: &str = "/cgi-bin/tags/create";
    pub(super) const GET: &str = "/cgi-bin/tags/get";
    pub(super) const UPDATE: &str = "/cgi-bin/tags/update";
    pub(super) const DELETE: &str = "/cgi-bin/tags/delete";
    pub(super) const TAG: &str = "/cgi-bin/tags/members/batchtagging";
    pub(super) const UNTAG: &str = "/cgi-bin/tags/members/batchuntagging";
    pub(super) const OF_USER: &str = "/cgi-bin/tags/getidlist";
    pub(super) const USERS: &str = "/cgi-bin/user/tag/get";
}

impl Client {
    /// User tags: [`TagsApi`].
    pub fn tags(&self) -> TagsApi<'_> {
        TagsApi(self)
    }
}

/// User tags (`/cgi-bin/tags/*`), from [`Client::tags`].
#[derive(Clone, Copy, Debug)]
pub struct TagsApi<'c>(&'c Client);

impl<'c> TagsApi<'c> {
    /// Creates a tag.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn create(self, name: &str) -> Result<Tag> {
        #[derive(Deserialize)]
        struct T {
            tag: Tag,
        }
        Ok(self.0.post_as::<T, _>(path::CREATE, &[], &json!({ "tag": { "name": name } })).await?.tag)
    }

    /// The account's tags.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn list(self) -> Result<Vec<Tag>> {
        #[derive(Deserialize)]
        struct T {
            tags: Vec<Tag>,
        }
        Ok(self.0.get_as::<T>(path::GET, &[]).await?.tags)
    }

    /// Renames a tag.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn rename(self, id: i64, name: &str) -> Result<()> {
        self.0.post_ok(path::UPDATE, &json!({ "tag": { "id": id, "name": name } })).await
    }

    /// Deletes a tag.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn delete(self, id: i64) -> Result<()> {
        self.0.post_ok(path::DELETE, &json!({ "tag": { "id": id } })).await
    }

    /// Tags up to 50 users.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn tag(self, tag_id: i64, openids: &[&str]) -> Result<()> {
        self.0.post_ok(path::TAG, &json!({ "openid_list": openids, "tagid": tag_id })).await
    }

    /// Untags up to 50 users.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn untag(self, tag_id: i64, openids: &[&str]) -> Result<()> {
        self.0.post_ok(path::UNTAG, &json!({ "openid_list": openids, "tagid": tag_id })).await
    }

    /// The tags of a user.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn of_user(self, openid: &str) -> Result<Vec<i64>> {
        #[derive(Deserialize)]
        struct T {
            tagid_list: Vec<i64>,
        }
        Ok(self.0.post_as::<T, _>(path::OF_USER, &[], &json!({ "openid": openid })).await?.tagid_list)
    }

    /// One page of the users with a tag, after `next_openid` (empty: from the start).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn users_page(self, tag_id: i64, next_openid: &str) -> Result<OpenIdPage> {
        self.0.post_as(path::USERS, &[], &json!({ "tagid": tag_id, "next_openid": next_openid })).await
    }

    /// Every user with a tag, as a stream.
    pub fn users(self, tag_id: i64) -> impl Stream<Item = Result<String>> + Send + 'c {
        openid_stream(self.0, List::Tag(tag_id))
    }
}
