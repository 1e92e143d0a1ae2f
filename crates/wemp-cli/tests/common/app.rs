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

/// A running `wemp relay`, its output collected.
pub struct RelayProc {
    child: std::process::Child,
    out: std::sync::Arc<std::sync::Mutex<String>>,
}

impl RelayProc {
    /// Starts `wemp relay WS --to TO` with the shared secret.
    pub fn start(dir: &std::path::Path, ws: &str, to: &str, secret: &str) -> Self {
        let mut child = super::wemp_cmd(dir, &["relay", ws, "--to", to], &[("WEMP_FORWARD_SECRET", secret)])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = super::collect(child.stdout.take().unwrap());
        let _err = super::collect(child.stderr.take().unwrap());
        Self { child, out }
    }

    /// Waits (up to 20 s) until its output contains `needle`.
    pub fn wait_for(&self, needle: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !self.out.lock().unwrap().contains(needle) {
            assert!(std::time::Instant::now() < deadline, "no {needle:?}:\n{}", self.out.lock().unwrap());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl RelayProc {
    /// Ctrl-C: the relay closes its WebSocket and exits with success.
    pub fn interrupt(mut self) {
        let ok =
            std::process::Command::new("kill").arg("-INT").arg(self.child.id().to_string()).status().unwrap();
        assert!(ok.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "wemp relay exited with {status}");
                return;
            }
            assert!(std::time::Instant::now() < deadline, "wemp relay did not stop on Ctrl-C");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RelayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
