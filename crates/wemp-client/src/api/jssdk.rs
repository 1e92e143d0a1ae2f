//! JS-SDK: the signed `wx.config` for a page.
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html>

use serde::Serialize;
use sha1::{Digest, Sha1};

use crate::client::Client;
use crate::error::Result;

/// The values `wx.config` needs (serialized in its camelCase).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsSdkConfig {
    /// The AppID.
    pub app_id: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// Random string.
    pub nonce_str: String,
    /// SHA-1 signature.
    pub signature: String,
}

/// The JS-SDK signature: SHA-1 of
/// `jsapi_ticket=…&noncestr=…&timestamp=…&url=…` (the URL without its `#` fragment).
///
/// ```
/// // The example from WeChat's documentation.
/// let sig = wemp_client::api::jssdk::sign(
///     "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg",
///     "Wm3WZYTPz0wzccnW",
///     1414587457,
///     "http://mp.weixin.qq.com?params=value",
/// );
/// assert_eq!(sig, "0f9de62fce790f9a083d5c99e95740ceb90c27ed");
/// ```
pub fn sign(jsapi_ticket: &str, noncestr: &str, timestamp: i64, url: &str) -> String {
    let url = url.split('#').next().unwrap_or(url);
    let plain = format!("jsapi_ticket={jsapi_ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}");
    Sha1::digest(plain.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl Client {
    /// The JS-SDK: [`JsSdkApi`].
    pub fn jssdk(&self) -> JsSdkApi<'_> {
        JsSdkApi(self)
    }
}

/// The JS-SDK's signed `wx.config`, from [`Client::jssdk`]. Its ticket is the client's
/// cached [`Client::jsapi_ticket`].
#[derive(Clone, Copy, Debug)]
pub struct JsSdkApi<'c>(&'c Client);

impl JsSdkApi<'_> {
    /// The signed config for the page at `url`, using the cached jsapi_ticket.
    ///
    /// # Errors
    /// As [`Client::jsapi_ticket`].
    pub async fn config(self, url: &str) -> Result<JsSdkConfig> {
        let ticket = self.0.jsapi_ticket().await?;
        let nonce_str = crate::client::nonce_str();
        let timestamp = self.0.now_ms() / 1000;
        Ok(JsSdkConfig {
            app_id: self.0.appid().to_owned(),
            timestamp,
            signature: sign(&ticket, &nonce_str, timestamp, url),
            nonce_str,
        })
    }
}
