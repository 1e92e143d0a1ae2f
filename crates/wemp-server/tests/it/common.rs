use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use wemp_proto::wechat::{OpenedReply, Platform};
use wemp_proto::{Cipher, Mode, Reply, signature};
use wemp_server::{
    Account, FixedClock, LateReplySink, Router, SinkOutcome, WechatService, WechatServiceBuilder,
};

pub(crate) const TOKEN: &str = "spamtest";
pub(crate) const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
pub(crate) const APPID: &str = "wx2c2769f8efd9abc2";
pub(crate) const GH: &str = "gh_10f6c3c3ac5a";
pub(crate) const OPENID: &str = "oyORnuP8q7ou2gfYjqLzSIWZf0rs";
pub(crate) const NOW: i64 = 1_409_735_669;

pub(crate) fn cipher() -> Cipher {
    Cipher::new(KEY, APPID).unwrap()
}

pub(crate) fn platform() -> Platform {
    Platform::new(TOKEN).with_cipher(cipher())
}

pub(crate) fn account() -> Account {
    Account::new(APPID, TOKEN).with_aes_key(KEY).unwrap().with_original_id(GH)
}

pub(crate) fn builder(router: Router) -> WechatServiceBuilder {
    WechatService::builder().account(account()).router(router).clock(FixedClock(NOW))
}

pub(crate) fn service(router: Router) -> WechatService {
    builder(router).build().unwrap()
}

pub(crate) fn text_xml_from(from: &str, content: &str, msg_id: u64) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{GH}]]></ToUserName><FromUserName><![CDATA[{from}]]></FromUserName>\
         <CreateTime>{}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>\
         <MsgId>{msg_id}</MsgId></xml>",
        NOW - 1
    )
}

pub(crate) fn text_xml(content: &str, msg_id: u64) -> String {
    text_xml_from(OPENID, content, msg_id)
}

pub(crate) fn event_xml(event: &str, key: Option<&str>) -> String {
    let key = key.map(|k| format!("<EventKey><![CDATA[{k}]]></EventKey>")).unwrap_or_default();
    format!(
        "<xml><ToUserName><![CDATA[{GH}]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>\
         <CreateTime>{}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>{key}</xml>",
        NOW - 1
    )
}

/// A POST exactly as WeChat would send it, at `path`.
pub(crate) fn wechat_post_at(path: &str, mode: Mode, xml: &str, nonce: &str) -> Request<Body> {
    let req = platform().post(mode, xml, OPENID, GH, &NOW.to_string(), nonce, [9; 16]).unwrap();
    Request::post(format!("{path}?{}", req.query_string())).body(Body::from(req.body)).unwrap()
}

pub(crate) fn wechat_post(mode: Mode, xml: &str) -> Request<Body> {
    wechat_post_at("/", mode, xml, "1320562132")
}

pub(crate) async fn send(svc: &WechatService, req: Request<Body>) -> (StatusCode, String) {
    let res = svc.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

pub(crate) fn open(body: &str) -> OpenedReply {
    platform().open_reply(body).unwrap_or_else(|e| panic!("invalid reply {body:?}: {e}"))
}

pub(crate) fn reply_text(body: &str) -> Option<String> {
    match open(body).message.reply {
        Reply::Text { content } => Some(content),
        _ => None,
    }
}

/// Counts handler runs.
#[derive(Clone, Default)]
pub(crate) struct Counter(pub Arc<AtomicUsize>);

impl Counter {
    pub(crate) fn hit(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// One late reply: appid, openid, reply, when.
pub(crate) type Late = (String, String, Reply, tokio::time::Instant);

/// Records late replies.
#[derive(Clone, Default)]
pub(crate) struct RecordingSink {
    pub(crate) got: Arc<Mutex<Vec<Late>>>,
    pub(crate) outcome: Option<SinkOutcome>,
}

impl RecordingSink {
    pub(crate) fn replies(&self) -> Vec<Late> {
        self.got.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl LateReplySink for RecordingSink {
    async fn deliver(&self, appid: &str, openid: &str, reply: Reply) -> SinkOutcome {
        self.got.lock().unwrap().push((
            appid.to_owned(),
            openid.to_owned(),
            reply,
            tokio::time::Instant::now(),
        ));
        self.outcome.clone().unwrap_or(SinkOutcome::Delivered)
    }
}

/// A POST to `/?query` with this body.
pub(crate) fn post(query: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(format!("/?{query}")).body(body.into()).unwrap()
}

/// A safe-mode request whose Encrypt is `encrypt`, correctly signed.
pub(crate) fn signed_safe(encrypt: &str) -> Request<Body> {
    // WeChat signs `signature` on every request, encrypted ones too; it is checked first.
    let plain_sig = signature::sign(TOKEN, &NOW.to_string(), "5");
    let sig = signature::sign_msg(TOKEN, &NOW.to_string(), "5", encrypt);
    post(
        &format!(
            "signature={plain_sig}&timestamp={NOW}&nonce=5&openid={OPENID}&encrypt_type=aes&msg_signature={sig}"
        ),
        format!(
            "<xml><ToUserName><![CDATA[{GH}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        ),
    )
}
