//! Free publishing (发布能力): submit a draft, follow the job, get, list and delete
//! published articles.
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Publish/Publish.html>

use serde::Deserialize;
use serde_json::json;

use super::drafts::{ArticlePage, DraftArticle, NewsItems};
use crate::client::Client;
use crate::error::Result;

/// The answer to a publish submission.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PublishTicket {
    /// The publish job id.
    pub publish_id: String,
    /// The message data id (a string in the documentation; read from a number too, as
    /// the mass-send API sends it).
    #[serde(default, deserialize_with = "crate::serde_util::string_or_number")]
    pub msg_data_id: Option<String>,
}

/// The state of a publish job.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct PublishStatus {
    /// The publish job id.
    pub publish_id: String,
    /// 0 success, 1 publishing, 2 original-content failure, 3 normal failure, 4 platform
    /// review failure, 5 deleted after success, 6 banned after success.
    pub publish_status: i64,
    /// The article id, once published.
    #[serde(default)]
    pub article_id: Option<String>,
    /// Article URLs and indexes.
    #[serde(default)]
    pub article_detail: Option<serde_json::Value>,
    /// Indexes of failed articles.
    #[serde(default)]
    pub fail_idx: Vec<u32>,
}

/// The endpoints of this area, in one place.
mod path {
    pub(super) const SUBMIT: &str = "/cgi-bin/freepublish/submit";
    pub(super) const STATUS: &str = "/cgi-bin/freepublish/get";
    pub(super) const DELETE: &str = "/cgi-bin/freepublish/delete";
    pub(super) const ARTICLE: &str = "/cgi-bin/freepublish/getarticle";
    pub(super) const LIST: &str = "/cgi-bin/freepublish/batchget";
}

impl Client {
    /// Free publishing: [`PublishApi`].
    pub fn publish(&self) -> PublishApi<'_> {
        PublishApi(self)
    }
}

/// Free publishing (`/cgi-bin/freepublish/*`), from [`Client::publish`].
#[derive(Clone, Copy, Debug)]
pub struct PublishApi<'c>(&'c Client);

impl PublishApi<'_> {
    /// Submits a draft for publishing.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn submit(self, media_id: &str) -> Result<PublishTicket> {
        self.0.post_as(path::SUBMIT, &[], &json!({ "media_id": media_id })).await
    }

    /// The state of a publish job.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn status(self, publish_id: &str) -> Result<PublishStatus> {
        self.0.post_as(path::STATUS, &[], &json!({ "publish_id": publish_id })).await
    }

    /// Deletes a published article (`index` 0 deletes all of them).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn delete(self, article_id: &str, index: u32) -> Result<()> {
        self.0.post_ok(path::DELETE, &json!({ "article_id": article_id, "index": index })).await
    }

    /// The articles of a published item.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn article(self, article_id: &str) -> Result<Vec<DraftArticle>> {
        let n: NewsItems = self.0.post_as(path::ARTICLE, &[], &json!({ "article_id": article_id })).await?;
        Ok(n.news_item)
    }

    /// Lists published items (`count` at most 20).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn list(self, offset: u32, count: u32, no_content: bool) -> Result<ArticlePage> {
        let body = json!({ "offset": offset, "count": count, "no_content": u8::from(no_content) });
        self.0.post_as(path::LIST, &[], &body).await
    }
}

#[cfg(test)]
mod tests {
    use super::PublishTicket;

    #[test]
    fn a_publish_ticket_reads_its_msg_data_id_as_a_string_or_a_number() {
        let of = |json: &str| serde_json::from_str::<PublishTicket>(json).unwrap().msg_data_id;
        assert_eq!(of(r#"{"publish_id":"1","msg_data_id":"2247483647"}"#).as_deref(), Some("2247483647"));
        assert_eq!(of(r#"{"publish_id":"1","msg_data_id":2247483647}"#).as_deref(), Some("2247483647"));
        assert_eq!(of(r#"{"publish_id":"1"}"#), None);
    }
}
