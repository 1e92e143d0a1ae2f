//! QR codes with scene values, and short keys.
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Account_Management/Generating_a_Parametric_QR_Code.html>

use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::client::Client;
use crate::error::Result;

/// A QR code's scene value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scene {
    /// A number (temporary: 32-bit nonzero; permanent: 1–100,000).
    Id(u32),
    /// A string of 1–64 characters.
    Str(String),
}

/// A QR code to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrCode {
    /// The scene value.
    pub scene: Scene,
    /// `Some(lifetime)` for a temporary code (60 s to 30 days), `None` for a permanent one.
    pub expire: Option<Duration>,
}

impl QrCode {
    /// A temporary code.
    pub fn temporary(scene: Scene, expire: Duration) -> Self {
        Self { scene, expire: Some(expire) }
    }

    /// A permanent code.
    pub fn permanent(scene: Scene) -> Self {
        Self { scene, expire: None }
    }

    /// The request body.
    pub fn to_json(&self) -> Value {
        let (action, scene) = match (&self.scene, self.expire.is_some()) {
            (Scene::Id(id), true) => ("QR_SCENE", json!({ "scene_id": id })),
            (Scene::Str(s), true) => ("QR_STR_SCENE", json!({ "scene_str": s })),
            (Scene::Id(id), false) => ("QR_LIMIT_SCENE", json!({ "scene_id": id })),
            (Scene::Str(s), false) => ("QR_LIMIT_STR_SCENE", json!({ "scene_str": s })),
        };
        let mut body = json!({ "action_name": action, "action_info": { "scene": scene } });
        if let Some(e) = self.expire {
            body["expire_seconds"] = json!(e.as_secs());
        }
        body
    }
}

/// A created QR code.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct QrTicket {
    /// The ticket (exchange it for the image with [`Client::qrcode_image_url`]).
    pub ticket: String,
    /// Lifetime in seconds (temporary codes).
    #[serde(default)]
    pub expire_seconds: Option<u64>,
    /// The URL the code encodes.
    pub url: String,
}

/// A short key's data.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ShortKeyData {
    /// The long data.
    pub long_data: String,
    /// Creation time, Unix seconds.
    pub create_time: i64,
    /// Seconds left.
    pub expire_seconds: u64,
}

impl Client {
    /// Creates a QR code.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn create_qrcode(&self, code: &QrCode) -> Result<QrTicket> {
        self.post_as("/cgi-bin/qrcode/create", &[], &code.to_json()).await
    }

    /// The image URL of a ticket (`https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=…`).
    pub fn qrcode_image_url(&self, ticket: &str) -> String {
        format!(
            "{}/cgi-bin/showqrcode?ticket={}",
            self.inner.mp_base,
            utf8_percent_encode(ticket, NON_ALPHANUMERIC)
        )
    }

    /// Turns long data into a short key (`expire` at most 30 days).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn short_key(&self, long_data: &str, expire: Duration) -> Result<String> {
        #[derive(Deserialize)]
        struct K {
            short_key: String,
        }
        let body = json!({ "long_data": long_data, "expire_seconds": expire.as_secs() });
        Ok(self.post_as::<K, _>("/cgi-bin/shorten/gen", &[], &body).await?.short_key)
    }

    /// The data behind a short key.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn fetch_short_key(&self, short_key: &str) -> Result<ShortKeyData> {
        self.post_as("/cgi-bin/shorten/fetch", &[], &json!({ "short_key": short_key })).await
    }
}
