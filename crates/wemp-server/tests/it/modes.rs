use http::StatusCode;
use wemp_proto::Mode;
use wemp_server::extract::Content;
use wemp_server::{Reply, Router};

use crate::common::*;

async fn echo(Content(text): Content, mode: Mode) -> Reply {
    Reply::text(format!("{mode}: {text}"))
}

#[tokio::test]
async fn each_mode_is_answered_in_the_same_mode() {
    let svc = service(Router::new().fallback(echo));
    for (i, mode) in [Mode::Plain, Mode::Compatible, Mode::Safe].into_iter().enumerate() {
        let (status, body) = send(&svc, wechat_post(mode, &text_xml("abcdteT", 100 + i as u64))).await;
        assert_eq!(status, StatusCode::OK, "{mode}: {body}");
        let opened = open(&body);
        assert_eq!(opened.encrypted, mode.is_encrypted(), "{mode}: {body}");
        let header = opened.message.header.expect("a reply header");
        assert_eq!(header.to, OPENID, "direction swapped");
        assert_eq!(header.from, GH);
        assert_eq!(header.create_time, NOW);
        assert_eq!(opened.message.reply, Reply::text(format!("{mode}: abcdteT")));
    }
}

#[tokio::test]
async fn no_reply_is_success_in_every_mode() {
    let svc = service(Router::new());
    for mode in [Mode::Plain, Mode::Compatible, Mode::Safe] {
        let (status, body) = send(&svc, wechat_post(mode, &text_xml("x", 7 + mode as u64))).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "success"));
    }
}

#[tokio::test]
async fn compatible_mode_trusts_only_what_decrypts() {
    // The plain fields say "forged"; the encrypted payload says "real".
    let svc = service(Router::new().fallback(echo));
    let real = text_xml("real", 5);
    let req = platform().post(Mode::Compatible, &real, OPENID, GH, &NOW.to_string(), "7", [1; 16]).unwrap();
    let body = req.body.replace("<![CDATA[real]]>", "<![CDATA[forged]]>");
    assert!(body.contains("forged"));
    let http =
        http::Request::post(format!("/?{}", req.query_string())).body(axum::body::Body::from(body)).unwrap();
    let (status, body) = send(&svc, http).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply_text(&body).as_deref(), Some("compatible: real"));
}

#[tokio::test]
async fn official_sample_request_decrypts() {
    // The documented sample: token spamtest, timestamp 1409735669, nonce 1320562132.
    let svc = service(Router::new().fallback(echo));
    let req = wechat_post_at("/", Mode::Safe, &text_xml("abcdteT", 6054768590064713728), "1320562132");
    let (status, body) = send(&svc, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply_text(&body).as_deref(), Some("safe: abcdteT"));
}

/// Issue 16 item 6: the URL of a real safe-mode callback carries a valid `signature` (it
/// covers no body). Posting a forged plain body with it must not work, whether the account
/// is alone, next to a plain-mode account, or in compatible mode.
#[tokio::test]
async fn a_captured_signature_does_not_carry_a_forged_plain_body() {
    use wemp_server::{Account, WechatService};
    let captured = wechat_post(Mode::Safe, &text_xml("real", 40)).uri().query().unwrap().to_owned();
    let captured: String = captured
        .split('&')
        .filter(|kv| !kv.starts_with("encrypt_type") && !kv.starts_with("msg_signature"))
        .collect::<Vec<_>>()
        .join("&");
    let forged = text_xml("forged", 41);
    for mode in [Mode::Safe, Mode::Compatible] {
        let alone = || {
            WechatService::builder()
                .account(account().with_mode(mode))
                .router(Router::new().fallback(echo))
                .clock(wemp_server::FixedClock(NOW))
        };
        let mixed = || {
            WechatService::builder()
                .account(account().with_mode(mode).with_path("safe"))
                .account(Account::new("wxplain", "plaintoken").with_path("plain"))
                .router(Router::new().fallback(echo))
                .clock(wemp_server::FixedClock(NOW))
        };
        for (svc, path) in [(alone(), "/"), (mixed(), "/wechat/safe"), (mixed(), "/wechat")] {
            let svc = svc.build().unwrap();
            let req = http::Request::post(format!("{path}?{captured}"))
                .body(axum::body::Body::from(forged.clone()))
                .unwrap();
            let (status, body) = send(&svc, req).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{mode} {path}: {body}");
            assert!(body.starts_with("plain-mode request refused"), "{body}");
            // The real encrypted request still goes through.
            let (status, body) = send(&svc, wechat_post_at(path, mode, &text_xml("real", 42), "9")).await;
            assert_eq!(status, StatusCode::OK, "{mode} {path}: {body}");
        }
    }
}
