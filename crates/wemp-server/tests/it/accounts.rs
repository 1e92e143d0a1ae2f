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
