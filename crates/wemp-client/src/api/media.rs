//! Temporary media (valid 3 days): upload, download (streamed to a writer), the
//! high-definition voice of JS-SDK recordings, and images for article content (`uploadimg`).
//! Files to upload are [`MediaFile`]s.
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Asset_Management/New_temporary_materials.html>

use reqwest::Method;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWrite;

use crate::client::{Answer, Client, MediaFile, Payload, Upload, decode, stream_to};
use crate::error::{Error, Result};

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

/// The endpoints of this area, in one place.
mod path {
    pub(super) const UPLOAD: &str = "/cgi-bin/media/upload";
    pub(super) const GET: &str = "/cgi-bin/media/get";
    pub(super) const GET_HD_VOICE: &str = "/cgi-bin/media/get/jssdk";
    pub(super) const UPLOAD_IMAGE: &str = "/cgi-bin/media/uploadimg";
}

impl Client {
    /// Temporary media: [`MediaApi`].
    pub fn media(&self) -> MediaApi<'_> {
        MediaApi(self)
    }
}

/// Temporary media (`/cgi-bin/media/*`), from [`Client::media`].
#[derive(Clone, Copy, Debug)]
pub struct MediaApi<'c>(&'c Client);

impl MediaApi<'_> {
    /// Uploads temporary media (`POST /cgi-bin/media/upload`, valid 3 days).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn upload(self, kind: MediaType, file: MediaFile) -> Result<TempMedia> {
        self.0.upload(path::UPLOAD, &[("type", kind.as_str())], &Upload::new().file("media", file)).await
    }

    /// Downloads temporary media (`GET /cgi-bin/media/get`), streaming it to `out`. A video
    /// comes back as [`Download::VideoUrl`] and nothing is written.
    ///
    /// # Errors
    /// As [`Client::get`], plus [`Error::Io`] when writing fails.
    pub async fn download<W: AsyncWrite + Unpin + ?Sized>(
        self,
        media_id: &str,
        out: &mut W,
    ) -> Result<Download> {
        let answer =
            self.0.execute(Method::GET, path::GET, &[("media_id", media_id)], Payload::Empty, true).await?;
        match answer {
            Answer::Binary(resp) => stream_to(path::GET, resp, out).await,
            Answer::Json(v) => {
                #[derive(Deserialize)]
                struct Video {
                    video_url: String,
                }
                Ok(Download::VideoUrl(decode::<Video>(path::GET, v)?.video_url))
            }
        }
    }

    /// Downloads the high-definition voice of a JS-SDK recording (`GET
    /// /cgi-bin/media/get/jssdk`: speex at 16 kHz, clearer than the 8 kHz amr of
    /// [`MediaApi::download`]), streaming it to `out`. `media_id` is the `serverId` that
    /// `wx.uploadVoice` gave the page.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty `media_id`, before anything is sent; [`Error::Api`]
    /// (40007 for an unknown or expired id), the transport errors of [`Client::get`],
    /// [`Error::Decode`] when WeChat answers with JSON but no error, and [`Error::Io`] when
    /// writing fails.
    pub async fn download_hd_voice<W: AsyncWrite + Unpin + ?Sized>(
        self,
        media_id: &str,
        out: &mut W,
    ) -> Result<Download> {
        if media_id.is_empty() {
            return Err(Error::Invalid(
                "HD voice: media_id is the serverId wx.uploadVoice returned, not empty".into(),
            ));
        }
        let query = [("media_id", media_id)];
        match self.0.execute(Method::GET, path::GET_HD_VOICE, &query, Payload::Empty, true).await? {
            Answer::Binary(resp) => stream_to(path::GET_HD_VOICE, resp, out).await,
            Answer::Json(v) => Err(Error::Decode {
                path: path::GET_HD_VOICE.to_owned(),
                source: serde::de::Error::custom("a JSON answer where the speex file was expected"),
                body: v.to_string().into(),
            }),
        }
    }

    /// Uploads an image for use inside article content (`POST /cgi-bin/media/uploadimg`);
    /// returns its URL.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn upload_image(self, file: MediaFile) -> Result<String> {
        #[derive(Deserialize)]
        struct Url {
            url: String,
        }
        let u: Url = self.0.upload(path::UPLOAD_IMAGE, &[], &Upload::new().file("media", file)).await?;
        Ok(u.url)
    }
}
