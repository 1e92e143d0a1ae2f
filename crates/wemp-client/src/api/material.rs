//! Permanent material: add (videos with a title and introduction), get (images and voice
//! streamed to a writer), delete, count and list.
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Asset_Management/Adding_Permanent_Assets.html>

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWrite;

use super::media::{Download, MediaType};
use crate::client::{Answer, Client, MediaFile, Payload, Upload, decode, stream_to};
use crate::error::Result;

/// An added permanent material item.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct NewMaterial {
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

/// The endpoints of this area, in one place.
mod path {
    pub(super) const ADD: &str = "/cgi-bin/material/add_material";
    pub(super) const GET: &str = "/cgi-bin/material/get_material";
    pub(super) const DELETE: &str = "/cgi-bin/material/del_material";
    pub(super) const COUNT: &str = "/cgi-bin/material/get_materialcount";
    pub(super) const LIST: &str = "/cgi-bin/material/batchget_material";
}

impl Client {
    /// Permanent material: [`MaterialApi`].
    pub fn material(&self) -> MaterialApi<'_> {
        MaterialApi(self)
    }
}

/// Permanent material (`/cgi-bin/material/*`), from [`Client::material`].
#[derive(Clone, Copy, Debug)]
pub struct MaterialApi<'c>(&'c Client);

impl MaterialApi<'_> {
    /// Adds permanent material (`POST /cgi-bin/material/add_material`). Videos need a
    /// title and an introduction.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn add(
        self,
        kind: MediaType,
        file: MediaFile,
        video: Option<(&str, &str)>,
    ) -> Result<NewMaterial> {
        let mut form = Upload::new().file("media", file);
        if let Some((title, introduction)) = video {
            let desc = json!({ "title": title, "introduction": introduction });
            form = form.text("description", desc.to_string());
        }
        self.0.upload(path::ADD, &[("type", kind.as_str())], &form).await
    }

    /// Gets permanent material (`POST /cgi-bin/material/get_material`): images and voice
    /// are streamed to `out`; videos and articles come back as JSON.
    ///
    /// # Errors
    /// As [`MediaApi::download`](super::media::MediaApi::download).
    pub async fn get<W: AsyncWrite + Unpin + ?Sized>(self, media_id: &str, out: &mut W) -> Result<Download> {
        let body = serde_json::to_vec(&json!({ "media_id": media_id })).unwrap_or_default();
        match self.0.execute(Method::POST, path::GET, &[], Payload::Json(body.into()), true).await? {
            Answer::Binary(resp) => stream_to(path::GET, resp, out).await,
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
                let video: Video = decode(path::GET, v)?;
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
    pub async fn delete(self, media_id: &str) -> Result<()> {
        self.0.post_ok(path::DELETE, &json!({ "media_id": media_id })).await
    }

    /// Counts permanent material.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn count(self) -> Result<MaterialCount> {
        self.0.get_as(path::COUNT, &[]).await
    }

    /// Lists permanent material of one type (`count` at most 20).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn list(self, kind: MediaType, offset: u32, count: u32) -> Result<MaterialPage> {
        let body = json!({ "type": kind.as_str(), "offset": offset, "count": count });
        self.0.post_as(path::LIST, &[], &body).await
    }
}
