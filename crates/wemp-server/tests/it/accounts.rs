use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use wemp_proto::wechat::Platform;
use wemp_proto::{Cipher, Mode, Reply};
use wemp_server::{Account, Error, FixedClock, Router, WechatService};

use crate::common::*;

const KEY_B: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg";

async fn which(account: Arc<Account>) -> Reply {
    Reply::text(account.appid())
}

fn two_accounts() -> WechatService {
    WechatService::builder()
        .account(account().with_path("shop"))
        .account(
            Account::new("wxbbbbbbbbbbbbbbbb", "tokenb")
                .with_aes_key(KEY_B)
                .unwrap()
                .with_original_id("gh_b")
                .with_path("blog"),
        )
        .router(Router::new().fallback(which))
        .clock(FixedClock(NOW))
        .build()
        .unwrap()
}

fn b_platform() -> Platform {
    Platform::new("tokenb").with_cipher(Cipher::new(KEY_B, "wxbbbbbbbbbbbbbbbb").unwrap())
}

fn b_post(path: &str, mode: Mode) -> Request<Body> {
    let xml = text_xml("hi", 1).replace(GH, "gh_b");
    let req = b_platform().post(mode, &xml, OPENID, "gh_b", &NOW.to_string(), "3", [2; 16]).unwrap();
    Request::post(format!("{path}?{}", req.query_string())).body(Body::from(req.body)).unwrap()
}

#[tokio::test]
async fn by_path_segment() {
    let svc = two_accounts();
    let (status, body) =
        send(&svc, wechat_post_at("/wechat/shop", Mode::Safe, &text_xml("hi", 1), "1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply_text(&body).as_deref(), Some(APPID));

    let (status, body) = send(&svc, b_post("/wechat/blog/", Mode::Safe)).await;
    assert_eq!(status, StatusCode::OK);
    let opened = b_platform().open_reply(&body).unwrap();
    assert_eq!(opened.message.reply, Reply::text("wxbbbbbbbbbbbbbbbb"));

    // Account B's request sent to A's path fails A's signature check.
    let (status, _) = send(&svc, b_post("/wechat/shop", Mode::Safe)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn by_to_user_name_and_unknown() {
    let svc = two_accounts();
    for mode in [Mode::Plain, Mode::Safe] {
        let (status, body) = send(&svc, b_post("/wechat", mode)).await;
        assert_eq!(status, StatusCode::OK, "{mode}: {body}");
        assert_eq!(b_platform().open_reply(&body).unwrap().message.reply, Reply::text("wxbbbbbbbbbbbbbbbb"));
    }
    let xml = text_xml("hi", 1).replace(GH, "gh_nobody");
    let req =
        platform().post(Mode::Plain, &xml, OPENID, "gh_nobody", &NOW.to_string(), "3", [2; 16]).unwrap();
    let req = Request::post(format!("/wechat?{}", req.query_string())).body(Body::from(req.body)).unwrap();
    let (status, body) = send(&svc, req).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("no account for path \"/wechat\" or ToUserName \"gh_nobody\""), "{body}");
}

#[tokio::test]
async fn verification_get_without_path_picks_the_signing_account() {
    let svc = two_accounts();
    let q = b_platform().verification(&NOW.to_string(), "77", "echo-b").query_string();
    let (status, body) = send(&svc, Request::get(format!("/wechat?{q}")).body(Body::empty()).unwrap()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "echo-b"));
}

#[tokio::test]
async fn dedup_keys_are_namespaced_by_appid() {
    // The same user and MsgId on two accounts are two deliveries.
    let svc = two_accounts();
    let (_, a) = send(&svc, wechat_post_at("/shop", Mode::Plain, &text_xml("hi", 1), "1")).await;
    let (_, b) = send(&svc, b_post("/blog", Mode::Plain)).await;
    assert_eq!(reply_text(&a).as_deref(), Some(APPID));
    assert_eq!(b_platform().open_reply(&b).unwrap().message.reply, Reply::text("wxbbbbbbbbbbbbbbbb"));
    assert_eq!(svc.dedup_counts(), (0, 0));
}

#[test]
fn builder_errors() {
    assert!(matches!(WechatService::builder().build(), Err(Error::NoAccount)));
    let dup = WechatService::builder()
        .account(Account::new("wx1", "token1"))
        .account(Account::new("wx2", "token2").with_path("wx1"))
        .build();
    assert!(matches!(dup, Err(Error::DuplicatePath(p)) if p == "wx1"));
    let twice = WechatService::builder()
        .account(Account::new("wx1", "token1").with_path("a"))
        .account(Account::new("wx1", "token2").with_path("b"))
        .build();
    assert!(matches!(twice, Err(Error::DuplicateAppid(a)) if a == "wx1"));
}

/// An authorizer of a third-party platform: its own appid, the component's Token and a
/// cipher whose ReceiveId is the component's appid.
const COMPONENT: &str = "wxcccccccccccccccc";
const AUTHORIZER: &str = "wxaaaaaaaaaaaaaaaa";

fn component_platform() -> Platform {
    Platform::new("ctoken").with_cipher(Cipher::new(KEY_B, COMPONENT).unwrap())
}

fn authorizer() -> Account {
    Account::new(AUTHORIZER, "ctoken")
        .with_cipher(Cipher::new(KEY_B, COMPONENT).unwrap())
        .with_mode(Mode::Safe)
}

fn component_post(path: &str) -> Request<Body> {
    let xml = text_xml("hi", 7).replace(GH, "gh_auth");
    let req = component_platform()
        .post(Mode::Safe, &xml, OPENID, "gh_auth", &NOW.to_string(), "5", [3; 16])
        .unwrap();
    Request::post(format!("{path}?{}", req.query_string())).body(Body::from(req.body)).unwrap()
}

#[tokio::test]
async fn an_account_added_while_serving_is_answered_sealed_with_its_cipher_and_removed() {
    let svc = WechatService::builder()
        .account(account().with_path("wechat"))
        .router(Router::new().fallback(which))
        .clock(FixedClock(NOW))
        .build()
        .unwrap();
    let at = format!("/wechat/{AUTHORIZER}");
    let (status, _) = send(&svc, component_post(&at)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not yet added: the only account's Token does not sign it");

    svc.accounts().add(authorizer()).unwrap();
    let (status, body) = send(&svc, component_post(&at)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let opened = component_platform().open_reply(&body).unwrap();
    assert_eq!(opened.message.reply, Reply::text(AUTHORIZER));
    // The configured account still answers on its own path.
    let (status, body) = send(&svc, wechat_post_at("/wechat", Mode::Safe, &text_xml("hi", 8), "6")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply_text(&body).as_deref(), Some(APPID));

    assert!(svc.accounts().remove(AUTHORIZER));
    let (status, body) = send(&svc, component_post(&at)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

struct Authorizers(Vec<Account>);

#[async_trait::async_trait]
impl wemp_server::AccountSource for Authorizers {
    async fn find(&self, segment: &str) -> Result<Option<Account>, wemp_server::BoxError> {
        Ok(self.0.iter().find(|a| a.path() == segment).cloned())
    }
    async fn all(&self) -> Result<Vec<Account>, wemp_server::BoxError> {
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn with_a_source_an_unknown_segment_is_looked_up_once_then_refused_404() {
    let svc = WechatService::builder()
        .account_source(Authorizers(vec![authorizer()]))
        .router(Router::new().fallback(which))
        .clock(FixedClock(NOW))
        .build()
        .expect("a source needs no account of its own");
    // Not added here: found in the source on the first request.
    let (status, body) = send(&svc, component_post(&format!("/wechat/{AUTHORIZER}"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(component_platform().open_reply(&body).unwrap().message.reply, Reply::text(AUTHORIZER));
    assert_eq!(svc.accounts().added(), [AUTHORIZER]);

    let (status, body) = send(&svc, component_post("/wechat/wxdddddddddddddddd")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("\"wxdddddddddddddddd\"") && body.contains("authorizers"), "{body}");
    let (status, body) = send(&svc, component_post("/wechat/..%2F..")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("not an appid"), "{body}");
    assert!(matches!(WechatService::builder().build(), Err(Error::NoAccount)));
}
