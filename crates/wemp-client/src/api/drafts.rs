//! Drafts (草稿箱): add, get, update, delete, count and list drafts of articles. Free
//! publishing of a draft is its own area ([`publish`](super::publish)).
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Draft_Box/Add_draft.html>

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::Client;
use crate::error::Result;

/// An article of a draft or a published item.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftArticle {
    /// Title.
    pub title: String,
    /// Author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// HTML content.
    #[serde(default)]
    pub content: String,
    /// "Read more" URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_source_url: Option<String>,
    /// Cover image (permanent material id).
    #[serde(default)]
    pub thumb_media_id: String,
    /// 1 to open comments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub need_open_comment: Option<u8>,
    /// 1 to let only followers comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_fans_can_comment: Option<u8>,
    /// The article's URL (answers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl DraftArticle {
    /// An article with a title, HTML content and cover.
    pub fn new(
        title: impl Into<String>,
        content: impl Into<String>,
        thumb_media_id: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            content: content.into(),
            thumb_media_id: thumb_media_id.into(),
            ..Self::default()
        }
    }
}

/// A page of drafts or published items.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ArticlePage {
    /// Items in all.
    pub total_count: u64,
    /// Items on this page.
    pub item_count: u64,
    /// The items.
    #[serde(default)]
    pub item: Vec<ArticlePageItem>,
}

/// One draft or published item.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ArticlePageItem {
    /// The draft's media id (drafts).
    #[serde(default)]
    pub media_id: Option<String>,
    /// The article id (published items).
    #[serde(default)]
    pub article_id: Option<String>,
    /// The articles.
    #[serde(default)]
    pub content: Option<NewsItems>,
    /// Last update, Unix seconds.
    #[serde(default)]
    pub update_time: i64,
}

/// `{"news_item": [...]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct NewsItems {
    /// The articles.
    #[serde(default)]
    pub news_item: Vec<DraftArticle>,
}

/// The endpoints of this area, in one place.
mod path {
    pub(super) const ADD: &str = "/cgi-bin/draft/add";
    pub(super) const GET: &str = "/cgi-bin/draft/get";
    pub(super) const UPDATE: &str = "/cgi-bin/draft/update";
    pub(super) const DELETE: &str = "/cgi-bin/draft/delete";
    pub(super) const COUNT: &str = "/cgi-bin/draft/count";
    pub(super) const LIST: &str = "/cgi-bin/draft/batchget";
}

impl Client {
    /// Drafts: [`DraftsApi`].
    pub fn drafts(&self) -> DraftsApi<'_> {
        DraftsApi(self)
    }
}

/// Drafts (`/cgi-bin/draft/*`), from [`Client::drafts`].
#[derive(Clone, Copy, Debug)]
pub struct DraftsApi<'c>(&'c Client);

impl DraftsApi<'_> {
    /// Adds a draft; returns its media id.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn add(self, articles: &[DraftArticle]) -> Result<String> {
        #[derive(Deserialize)]
        struct Id {
            media_id: String,
        }
        let a: Id = self.0.post_as(path::ADD, &[], &json!({ "articles": articles })).await?;
        Ok(a.media_id)
    }

    /// Gets a draft's articles.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn get(self, media_id: &str) -> Result<Vec<DraftArticle>> {
        let n: NewsItems = self.0.post_as(path::GET, &[], &json!({ "media_id": media_id })).await?;
        Ok(n.news_item)
    }

    /// Replaces article `index` of a draft.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn update(self, media_id: &str, index: u32, article: &DraftArticle) -> Result<()> {
        let body = json!({ "media_id": media_id, "index": index, "articles": article });
        self.0.post_ok(path::UPDATE, &body).await
    }

    /// Deletes a draft.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn delete(self, media_id: &str) -> Result<()> {
        self.0.post_ok(path::DELETE, &json!({ "media_id": media_id })).await
    }

    /// Counts drafts.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn count(self) -> Result<u64> {
        #[derive(Deserialize)]
        struct Count {
            total_count: u64,
        }
        let c: Count = self.0.get_as(path::COUNT, &[]).await?;
        Ok(c.total_count)
    }

    /// Lists drafts (`count` at most 20).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn list(self, offset: u32, count: u32, no_content: bool) -> Result<ArticlePage> {
        let body = json!({ "offset": offset, "count": count, "no_content": u8::from(no_content) });
        self.0.post_as(path::LIST, &[], &body).await
    }
}
