//! Passing an app's raw API call through with the client's access token: the core of
//! `wemp serve`'s API proxy (`/api/<path>`), for apps that must never hold the token.
//!
//! The call goes out as it came (method, path, query, `Content-Type`, body) with
//! `access_token` added; on `40001`/`42001` the token is compare-and-invalidated and the
//! call retried once, exactly as [`Client`]'s own calls are (one token machinery). Every
//! other answer — errors included — comes back unchanged. JSON answers are read whole (to
//! see their `errcode`); anything else (a media download) comes back as a stream.

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};

use crate::client::{Client, errcode};
use crate::error::{ErrCode, Error, Result};

/// The body of a passed-through call.
#[derive(Debug)]
pub enum PassBody {
    /// No body.
    Empty,
    /// A body held in memory: the call can be retried after a token error.
    Bytes(Bytes),
    /// A body read as it arrives (a large upload): passed on without being held, so a
    /// token error cannot be retried (the token is still invalidated; the caller's retry
    /// gets a fresh one).
    Stream(reqwest::Body),
}

/// The platform's answer to a passed-through call.
#[derive(Debug)]
pub enum Passed {
    /// A JSON (or text) answer, read whole.
    Read {
        /// The HTTP status.
        status: reqwest::StatusCode,
        /// The `Content-Type`, if any.
        content_type: Option<HeaderValue>,
        /// The body, unchanged.
        body: Bytes,
        /// The `errcode` it carries (`None` when it is not JSON or has none).
        errcode: Option<ErrCode>,
        /// Whether a token error was answered by refreshing and retrying.
        retried: bool,
    },
    /// Anything else (a media file): the response, its body not read yet.
    Stream {
        /// The response.
        response: reqwest::Response,
        /// Whether a token error was answered by refreshing and retrying.
        retried: bool,
    },
}

impl Passed {
    /// The `errcode` of a JSON answer (`None` for a stream or an answer without one).
    pub fn errcode(&self) -> Option<ErrCode> {
        match self {
            Self::Read { errcode, .. } => *errcode,
            Self::Stream { .. } => None,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> reqwest::StatusCode {
        match self {
            Self::Read { status, .. } => *status,
            Self::Stream { response, .. } => response.status(),
        }
    }
}

/// `access_token` is the proxy's to add: one the caller sent is dropped.
fn without_token(query: &str) -> impl Iterator<Item = &str> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| p.split('=').next().is_some_and(|k| !k.eq_ignore_ascii_case("access_token")))
}

fn is_read(headers: &HeaderMap) -> bool {
    // As the client's own calls judge it: WeChat answers errors as JSON or text/plain.
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.contains("json") || ct.starts_with("text/"))
}

impl Client {
    /// Sends `method <base><path>?access_token=…&<query>` with `body` and the given
    /// `content_type`, using this client's token: on `40001`/`42001` the token is replaced
    /// (compare-and-invalidate, shared with every client of the store) and the call sent once
    /// more when the body allows it. Other answers come back as they are.
    ///
    /// `path` starts with `/`; `query` is the raw query string (an `access_token` in it is
    /// dropped).
    ///
    /// # Errors
    /// The token cannot be had ([`Client::access_token`]), or the request or reading the
    /// answer failed ([`Error::Http`], the URL and its token removed).
    pub async fn pass_through(
        &self,
        method: Method,
        path: &str,
        query: &str,
        content_type: Option<HeaderValue>,
        body: PassBody,
    ) -> Result<Passed> {
        let mut token = self.access_token().await?;
        let mut body = Some(body);
        let mut retried = false;
        loop {
            let mut url = format!("{}{path}?access_token=", self.inner.base);
            url.extend(percent_encoding::utf8_percent_encode(
                token.secret(),
                percent_encoding::NON_ALPHANUMERIC,
            ));
            for pair in without_token(query) {
                url.push('&');
                url.push_str(pair);
            }
            let mut req = self.inner.http.request(method.clone(), url);
            if let Some(ct) = &content_type {
                req = req.header(CONTENT_TYPE, ct.clone());
            }
            // A held body is cloned so that a retry can send it again; a stream goes once.
            let replay = match body.take() {
                Some(PassBody::Empty) | None => Some(PassBody::Empty),
                Some(PassBody::Bytes(b)) => {
                    req = req.body(b.clone());
                    Some(PassBody::Bytes(b))
                }
                Some(PassBody::Stream(s)) => {
                    req = req.body(s);
                    None
                }
            };
            let resp = req.send().await.map_err(|e| Error::http(path, e))?;
            if !is_read(resp.headers()) {
                return Ok(Passed::Stream { response: resp, retried });
            }
            let status = resp.status();
            let content_type = resp.headers().get(CONTENT_TYPE).cloned();
            let bytes = resp.bytes().await.map_err(|e| Error::http(path, e))?;
            let code = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .filter(|v| v.get("errcode").is_some())
                .map(|v| errcode(&v));
            if let Some(code) = code.filter(|c| c.is_token_error()) {
                tracing::warn!(path, errcode = code.0, "access_token refused; replacing it");
                let fresh = self.replace_access_token(&token).await?;
                if let (false, Some(again)) = (retried, replay) {
                    retried = true;
                    token = fresh;
                    body = Some(again);
                    continue;
                }
            }
            return Ok(Passed::Read { status, content_type, body: bytes, errcode: code, retried });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callers_access_token_is_dropped() {
        let q: Vec<_> = without_token("openid=o1&access_token=x&lang=zh_CN&ACCESS_TOKEN=y&").collect();
        assert_eq!(q, ["openid=o1", "lang=zh_CN"]);
    }
}
