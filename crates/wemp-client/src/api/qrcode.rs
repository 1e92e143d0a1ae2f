//! QR codes with scene values, and short keys.
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Account_Management/Generating_a_Parametric_QR_Code.html>

use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::client::Client;
use crate::error::{Error, Result};

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

    /// Whether the documented limits hold: a string scene of 1–64 characters, a numeric
    /// scene that is nonzero (1–100,000 for a permanent code), a lifetime of at most 30 days.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the limit.
    pub fn check(&self) -> Result<()> {
        const MAX_EXPIRE: Duration = Duration::from_secs(2_592_000);
        let invalid = |m: String| Err(Error::Invalid(format!("QR code: {m}")));
        match &self.scene {
            Scene::Str(s) if !(1..=64).contains(&s.chars().count()) => {
                return invalid(format!("a scene string has 1 to 64 characters, not {}", s.chars().count()));
            }
            Scene::Id(0) => return invalid("a scene id is not 0".into()),
            Scene::Id(id) if self.expire.is_none() && *id > 100_000 => {
                return invalid(format!("a permanent code's scene id is 1 to 100000, not {id}"));
            }
            _ => {}
        }
        match self.expire {
            Some(e) if e.is_zero() || e > MAX_EXPIRE => {
                invalid(format!("a temporary code lives 1 s to 30 days (2592000 s), not {} s", e.as_secs()))
            }
            _ => Ok(()),
        }
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
    /// The ticket (exchange it for the image with [`QrCodesApi::image_url`]).
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

/// The endpoints of this area, in one place.
mod path {
    pub(super) const CREATE: &str = "/cgi-bin/qrcode/create";
    /// On `mp.weixin.qq.com`.
    pub(super) const SHOW: &str = "/cgi-bin/showqrcode";
    pub(super) const SHORTEN: &str = "/cgi-bin/shorten/gen";
    pub(super) const FETCH_SHORT: &str = "/cgi-bin/shorten/fetch";
}

impl Client {
    /// QR codes and short keys: [`QrCodesApi`].
    pub fn qrcode(&self) -> QrCodesApi<'_> {
        QrCodesApi(self)
    }
}

/// QR codes with scene values (`/cgi-bin/qrcode/create`) and short keys
/// (`/cgi-bin/shorten/*`), from [`Client::qrcode`].
#[derive(Clone, Copy, Debug)]
pub struct QrCodesApi<'c>(&'c Client);

impl QrCodesApi<'_> {
    /// Creates a QR code.
    ///
    /// # Errors
    /// [`Error::Invalid`] outside the documented limits ([`QrCode::check`]), before anything
    /// is sent; otherwise as [`Client::get`].
    pub async fn create(self, code: &QrCode) -> Result<QrTicket> {
        code.check()?;
        self.0.post_as(path::CREATE, &[], &code.to_json()).await
    }

    /// The image URL of a ticket (`https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=…`).
    pub fn image_url(self, ticket: &str) -> String {
        format!(
            "{}{}?ticket={}",
            self.0.inner.mp_base,
            path::SHOW,
            utf8_percent_encode(ticket, NON_ALPHANUMERIC)
        )
    }

    /// Turns long data into a short key (`expire` at most 30 days).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn short_key(self, long_data: &str, expire: Duration) -> Result<String> {
        #[derive(Deserialize)]
        struct K {
            short_key: String,
        }
        let body = json!({ "long_data": long_data, "expire_seconds": expire.as_secs() });
        Ok(self.0.post_as::<K, _>(path::SHORTEN, &[], &body).await?.short_key)
    }

    /// The data behind a short key.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn fetch_short_key(self, short_key: &str) -> Result<ShortKeyData> {
        self.0.post_as(path::FETCH_SHORT, &[], &json!({ "short_key": short_key })).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_outside_the_documented_limits_are_refused_before_sending() {
        let day = Duration::from_secs(86_400);
        assert!(QrCode::temporary(Scene::Str("promo".into()), day).check().is_ok());
        assert!(QrCode::temporary(Scene::Str("x".repeat(64)), 30 * day).check().is_ok());
        assert!(QrCode::permanent(Scene::Id(100_000)).check().is_ok());
        assert!(QrCode::temporary(Scene::Id(u32::MAX), day).check().is_ok());
        for (code, says) in [
            (QrCode::temporary(Scene::Str(String::new()), day), "1 to 64 characters, not 0"),
            (QrCode::permanent(Scene::Str("码".repeat(65))), "not 65"),
            (QrCode::permanent(Scene::Id(0)), "not 0"),
            (QrCode::permanent(Scene::Id(100_001)), "1 to 100000, not 100001"),
            (QrCode::temporary(Scene::Id(7), 31 * day), "not 2678400 s"),
            (QrCode::temporary(Scene::Id(7), Duration::ZERO), "not 0 s"),
        ] {
            let err = code.check().unwrap_err();
            assert!(matches!(&err, Error::Invalid(m) if m.contains(says)), "{code:?}: {err}");
        }
    }
}
