//! WeChat's side of a callback written by hand, and an app behind `wemp serve --forward`
//! that counts what reaches it: for tests that must send one exact message several times
//! (to several servers at once, or as WeChat's retry) and count the handler runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wemp_proto::signature;

/// A text message from `openid` as WeChat posts it in plain mode.
pub fn text_xml(openid: &str, msg_id: u64, content: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>\
         <CreateTime>{}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>\
         <MsgId>{msg_id}</MsgId></xml>",
        super::now()
    )
}

/// The query WeChat puts on a POST for `openid`, signed with `token` now: `signature`,
/// `timestamp`, `nonce` and `openid` (in safe mode the same `signature` covers no body).
pub fn signed_query(token: &str, openid: &str) -> String {
    let (ts, nonce) = (super::now().to_string(), "424242");
    format!("signature={}&timestamp={ts}&nonce={nonce}&openid={openid}", signature::sign(token, &ts, nonce))
}

/// An app on loopback for `[gateway] forward` (docs/gateway.md): answers every forwarded
/// message with the text `reply` after `delay`, and counts the messages it was given.
pub struct CountingApp {
    /// Where it listens (`http://127.0.0.1:<port>/hook`).
    pub url: String,
    calls: Arc<AtomicU64>,
}

impl CountingApp {
    /// Starts the app in a background thread.
    pub fn start(reply: &'static str, delay: Duration) -> Self {
        let calls = Arc::new(AtomicU64::new(0));
        let counted = calls.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let counted = counted.clone();
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    axum::Json(serde_json::json!({"reply": {"type": "text", "content": reply}}))
                }
            }),
        );
        let addr = super::serve_in_background(app);
        Self { url: format!("http://{addr}/hook"), calls }
    }

    /// Messages forwarded to it so far: the handler runs.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}
