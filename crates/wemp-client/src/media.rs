//! Media: temporary and permanent material, `uploadimg`, drafts and free publishing.
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Asset_Management/New_temporary_materials.html>

use std::path::Path;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::client::{Answer, Client, Payload, decode};
use crate::error::{Error, Result};

/// A file to upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaFile {
    /// The file name sent in the multipart part (WeChat checks its extension).
    pub file_name: String,
    /// The part's content type.
    pub content_type: String,
    /// The contents.
    pub data: Bytes,
}

impl MediaFile {
    /// A file from memory; the content type is guessed from the name's extension.
    pub fn from_bytes(file_name: impl Into<String>, data: impl Into<Bytes>) -> Self {
        let file_name = file_name.into();
        let content_type = guess_content_type(&file_name).to_owned();
        Self { file_name, content_type, data: data.into() }
    }

    /// Reads a file from disk (kept in memory so the upload can be retried).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read.
    pub async fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let data = tokio::fs::read(path).await?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file").to_owned();
        Ok(Self::from_bytes(name, data))
    }

    /// Overrides the content type.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = content_type.into();
        self
    }
}

fn guess_content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "mp3" => "audio/mpeg",
        "amr" => "audio/amr",
        "wma" => "audio/x-ms-wma",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// A multipart body, rebuilt for each attempt so uploads can be retried.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Upload {
    parts: Vec<(String, UploadPart)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum UploadPart {
    File(MediaFile),
    Text(String),
}

impl Upload {
    /// An empty form.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file part.
    pub fn file(mut self, name: impl Into<String>, file: MediaFile) -> Self {
        self.parts.push((name.into(), UploadPart::File(file)));
        self
    }

    /// Adds a text part.
    pub fn text(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.parts.push((name.into(), UploadPart::Text(value.into())));
        self
    }

    pub(crate) fn to_form(&self) -> Result<reqwest::multipart::Form> {
        let mut form = reqwest::multipart::Form::new();
        for (name, part) in &self.parts {
            form = match part {
                UploadPart::Text(v) => form.text(name.clone(), v.clone()),
                UploadPart::File(f) => {
                    let part = reqwest::multipart::Part::stream(f.data.clone())
                        .file_name(f.file_name.clone())
                        .mime_str(&f.content_type)
                        .map_err(|e| Error::Invalid(format!("content type {:?}: {e}", f.content_type)))?;
                    form.part(name.clone(), part)
                }
            };
        }
        Ok(form)
    }
}

/// Kinds of media.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaType {
    /// Image (bmp/png/jpeg/jpg/gif, up to 10 MB).
    Image,
    /// Voice (amr/mp3, up to 2 MB, 60 s).
    Voice,
    /// Video (mp4, up to 10 MB).
    Video,
    /// Thumbnail (jpg, up to 64 KB).
    Thumb,
    /// Articles (permanent material lists only).
    News,
}

impl MediaType {
    /// The `type` parameter value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Voice => "voice",
            Self::Video => "video",
            Self::Thumb => "thumb",
            Self::News => "news",
        }
    }
}

/// An uploaded temporary media item (valid 3 days).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TempMedia {
    /// The media type as WeChat reports it.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The media id (`thumb_media_id` for thumbnails).
    #[serde(alias = "thumb_media_id")]
    pub media_id: String,
    /// Upload time, Unix seconds.
    #[serde(default)]
    pub created_at: i64,
}

/// What a download produced.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Download {
    /// The bytes were written to the writer.
    Written {
        /// How many bytes.
        bytes: u64,
        /// The content type WeChat sent.
        content_type: Option<String>,
    },
    /// A video: WeChat answers with a URL instead of the bytes.
    VideoUrl(String),
    /// A permanent video: title, description and download URL.
    Video {
        /// Title.
        title: String,
        /// Description.
        description: String,
        /// Download URL.
        down_url: String,
    },
    /// Permanent articles (`news_item`), as JSON.
    News(serde_json::Value),
}

/// An added permanent material item.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Material {
    /// The media id.
    pub media_id: String,
    /// For images: the image URL.
    #[serde(default)]
    pub url: Option<String>,
}

/// Counts of permanent material.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct MaterialCount {
    /// Voice items.
    pub voice_count: u64,
    /// Video items.
    pub video_count: u64,
    /// Image items.
    pub image_count: u64,
    /// Article items.
    pub news_count: u64,
}

/// A page of permanent material.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct MaterialPage {
    /// Items of this type in all.
    pub total_count: u64,
    /// Items on this page.
    pub item_count: u64,
    /// The items.
    #[serde(default)]
    pub item: Vec<MaterialItem>,
}

/// One item of a material page.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct MaterialItem {
    /// The media id.
    pub media_id: String,
    /// File name (non-article items).
    #[serde(default)]
    pub name: Option<String>,
    /// Last update, Unix seconds.
    #[serde(default)]
    pub update_time: i64,
    /// URL (images).
    #[serde(default)]
    pub url: Option<String>,
    /// Articles (news items).
    #[serde(default)]
    pub content: Option<serde_json::Value>,
}

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

#[derive(Deserialize)]
struct MediaIdAnswer {
    media_id: String,
}

impl Client {
    /// Uploads temporary media (`POST /cgi-bin/media/upload`, valid 3 days).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn upload_temp_media(&self, kind: MediaType, file: MediaFile) -> Result<TempMedia> {
        self.upload("/cgi-bin/media/upload", &[("type", kind.as_str())], &Upload::new().file("media", file))
            .await
    }

    /// Downloads temporary media (`GET /cgi-bin/media/get`), streaming it to `out`. A video
    /// comes back as [`Download::VideoUrl`] and nothing is written.
    ///
    /// # Errors
    /// As [`Client::get`], plus [`Error::Io`] when writing fails.
    pub async fn download_temp_media<W: AsyncWrite + Unpin + ?Sized>(
        &self,
        media_id: &str,
        out: &mut W,
    ) -> Result<Download> {
        const PATH: &str = "/cgi-bin/media/get";
        let answer = self.execute(Method::GET, PATH, &[("media_id", media_id)], Payload::Empty, true).await?;
        match answer {
            Answer::Binary(resp) => stream_to(PATH, resp, out).await,
            Answer::Json(v) => {
                #[derive(Deserialize)]
                struct Video {
                    video_url: String,
                }
                Ok(Download::VideoUrl(decode::<Video>(PATH, v)?.video_url))
            }
        }
    }

    /// Uploads an image for use inside article content (`POST /cgi-bin/media/uploadimg`);
    /// returns its URL.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn upload_article_image(&self, file: MediaFile) -> Result<String> {
        #[derive(Deserialize)]
        struct Url {
            url: String,
        }
        let u: Url = self.upload("/cgi-bin/media/uploadimg", &[], &Upload::new().file("media", file)).await?;
        Ok(u.url)
    }

    /// Adds permanent material (`POST /cgi-bin/material/add_material`). Videos need a
    /// title and an introduction.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn add_material(
        &self,
        kind: MediaType,
        file: MediaFile,
        video: Option<(&str, &str)>,
    ) -> Result<Material> {
        let mut form = Upload::new().file("media", file);
        if let Some((title, introduction)) = video {
            let desc = serde_json::json!({ "title": title, "introduction": introduction });
            form = form.text("description", desc.to_string());
        }
        self.upload("/cgi-bin/material/add_material", &[("type", kind.as_str())], &form).await
    }

    /// Gets permanent material (`POST /cgi-bin/material/get_material`): images and voice
    /// are streamed to `out`; videos and articles come back as JSON.
    ///
    /// # Errors
    /// As [`Client::download_temp_media`].
    pub async fn get_material<W: AsyncWrite + Unpin + ?Sized>(
        &self,
        media_id: &str,
        out: &mut W,
    ) -> Result<Download> {
        const PATH: &str = "/cgi-bin/material/get_material";
        let body = serde_json::to_vec(&serde_json::json!({ "media_id": media_id })).unwrap_or_default();
        match self.execute(Method::POST, PATH, &[], Payload::Json(body.into()), true).await? {
            Answer::Binary(resp) => stream_to(PATH, resp, out).await,
            Answer::Json(v) => {
                if v.get("news_item").is_some() {
                    return Ok(Download::News(v));
                }
                #[derive(Deserialize)]
                struct Video {
                    #[serde(default)]
                    title: String,
                    #[serde(default)]
                    description: String,
                    down_url: String,
                }
                let video: Video = decode(PATH, v)?;
                Ok(Download::Video {
                    title: video.title,
                    description: video.description,
                    down_url: video.down_url,
                })
            }
        }
    }

    /// Deletes permanent material.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn delete_material(&self, media_id: &str) -> Result<()> {
        self.post_ok("/cgi-bin/material/del_material", &serde_json::json!({ "media_id": media_id })).await
    }

    /// Counts permanent material.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn material_count(&self) -> Result<MaterialCount> {
        self.get_as("/cgi-bin/material/get_materialcount", &[]).await
    }

    /// Lists permanent material of one type (`count` at most 20).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn list_materials(&self, kind: MediaType, offset: u32, count: u32) -> Result<MaterialPage> {
        let body = serde_json::json!({ "type": kind.as_str(), "offset": offset, "count": count });
        self.post_as("/cgi-bin/material/batchget_material", &[], &body).await
    }

    /// Adds a draft; returns its media id.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn add_draft(&self, articles: &[DraftArticle]) -> Result<String> {
        let a: MediaIdAnswer =
            self.post_as("/cgi-bin/draft/add", &[], &serde_json::json!({ "articles": articles })).await?;
        Ok(a.media_id)
    }

    /// Gets a draft's articles.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn get_draft(&self, media_id: &str) -> Result<Vec<DraftArticle>> {
        let n: NewsItems =
            self.post_as("/cgi-bin/draft/get", &[], &serde_json::json!({ "media_id": media_id })).await?;
        Ok(n.news_item)
    }

    /// Replaces article `index` of a draft.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn update_draft(&self, media_id: &str, index: u32, article: &DraftArticle) -> Result<()> {
        let body = serde_json::json!({ "media_id": media_id, "index": index, "articles": article });
        self.post_ok("/cgi-bin/draft/update", &body).await
    }

    /// Deletes a draft.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn delete_draft(&self, media_id: &str) -> Result<()> {
        self.post_ok("/cgi-bin/draft/delete", &serde_json::json!({ "media_id": media_id })).await
    }

    /// Counts drafts.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn draft_count(&self) -> Result<u64> {
        #[derive(Deserialize)]
        struct Count {
            total_count: u64,
        }
        let c: Count = self.get_as("/cgi-bin/draft/count", &[]).await?;
        Ok(c.total_count)
    }

    /// Lists drafts (`count` at most 20).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn list_drafts(&self, offset: u32, count: u32, no_content: bool) -> Result<ArticlePage> {
        let body =
            serde_json::json!({ "offset": offset, "count": count, "no_content": u8::from(no_content) });
        self.post_as("/cgi-bin/draft/batchget", &[], &body).await
    }

    /// Submits a draft for publishing (`POST /cgi-bin/freepublish/submit`).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn publish(&self, media_id: &str) -> Result<PublishTicket> {
        self.post_as("/cgi-bin/freepublish/submit", &[], &serde_json::json!({ "media_id": media_id })).await
    }

    /// The state of a publish job.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn publish_status(&self, publish_id: &str) -> Result<PublishStatus> {
        self.post_as("/cgi-bin/freepublish/get", &[], &serde_json::json!({ "publish_id": publish_id })).await
    }

    /// Deletes a published article (`index` 0 deletes all of them).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn delete_published(&self, article_id: &str, index: u32) -> Result<()> {
        self.post_ok(
            "/cgi-bin/freepublish/delete",
            &serde_json::json!({ "article_id": article_id, "index": index }),
        )
        .await
    }

    /// The articles of a published item.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn get_published(&self, article_id: &str) -> Result<Vec<DraftArticle>> {
        let n: NewsItems = self
            .post_as("/cgi-bin/freepublish/getarticle", &[], &serde_json::json!({ "article_id": article_id }))
            .await?;
        Ok(n.news_item)
    }

    /// Lists published items.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn list_published(&self, offset: u32, count: u32, no_content: bool) -> Result<ArticlePage> {
        let body =
            serde_json::json!({ "offset": offset, "count": count, "no_content": u8::from(no_content) });
        self.post_as("/cgi-bin/freepublish/batchget", &[], &body).await
    }
}

async fn stream_to<W: AsyncWrite + Unpin + ?Sized>(
    path: &str,
    resp: reqwest::Response,
    out: &mut W,
) -> Result<Download> {
    let content_type =
        resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut stream = resp.bytes_stream();
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::http(path, e))?;
        out.write_all(&chunk).await?;
        written += chunk.len() as u64;
    }
    out.flush().await?;
    Ok(Download::Written { bytes: written, content_type })
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
