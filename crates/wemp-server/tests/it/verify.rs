use axum::body::Body;
use http::{Request, StatusCode};
use wemp_server::{Account, FixedClock, Router, WechatService};

use crate::common::send;

fn weixin() -> WechatService {
    WechatService::builder()
        .account(Account::new("wx1", "weixin"))
        .router(Router::new())
        .clock(FixedClock(1_540_176_606))
        .build()
        .unwrap()
}

fn get(query: &str) -> Request<Body> {
    Request::get(format!("/wechat?{query}")).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn documented_vector_answers_echostr_as_plain_text() {
    let svc = weixin();
    let mut req = get(
        "signature=6a62fc79ddf83b3ff96e5cbd068b983f88f192ba&echostr=3892692869596528638&timestamp=1540176606&nonce=1854606751",
    );
    req.headers_mut().insert("user-agent", http::HeaderValue::from_static("Mozilla/4.0"));
    let res = tower::ServiceExt::oneshot(svc.clone(), req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The content type alone: the request's headers do not come back in the answer's map.
    let headers: Vec<_> = res.headers().iter().map(|(n, v)| (n.as_str(), v.to_str().unwrap())).collect();
    assert_eq!(headers, [("content-type", "text/plain; charset=utf-8")]);
    let (status, body) = send(
        &svc,
        get("signature=6a62fc79ddf83b3ff96e5cbd068b983f88f192ba&echostr=3892692869596528638&timestamp=1540176606&nonce=1854606751"),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "3892692869596528638"));
}

#[tokio::test]
async fn wrong_signature_is_diagnosed_without_the_token() {
    let (status, body) = send(
        &weixin(),
        get("signature=6a62fc79ddf83b3ff96e5cbd068b983f88f192bb&echostr=1&timestamp=1540176606&nonce=1854606751"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body.trim(),
        "-40001 signature mismatch: computed over timestamp, nonce; check the Token in the console"
    );
    // The Token's length is for the server's log only (issue 16 item 5).
    assert!(!body.contains("length"), "{body}");
    assert!(!body.contains("weixin"));
}

#[tokio::test]
async fn missing_parameters_and_stale_timestamp() {
    let (status, body) = send(&weixin(), get("signature=x&timestamp=1540176606&nonce=1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("missing query parameter echostr"), "{body}");

    let svc = WechatService::builder()
        .account(Account::new("wx1", "weixin"))
        .clock(FixedClock(1_540_176_606 + 734))
        .build()
        .unwrap();
    let (status, body) = send(
        &svc,
        get("signature=6a62fc79ddf83b3ff96e5cbd068b983f88f192ba&echostr=1&timestamp=1540176606&nonce=1854606751"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("timestamp 1540176606 is 734 s behind server time (window 300 s)"), "{body}");

    // A zero window disables the check.
    let svc = WechatService::builder()
        .account(Account::new("wx1", "weixin"))
        .clock(FixedClock(1_540_176_606 + 734))
        .freshness_window(std::time::Duration::ZERO)
        .build()
        .unwrap();
    let (status, _) = send(
        &svc,
        get("signature=6a62fc79ddf83b3ff96e5cbd068b983f88f192ba&echostr=1&timestamp=1540176606&nonce=1854606751"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn insecure_skip_signature_accepts_unsigned_get() {
    let svc = WechatService::builder()
        .account(Account::new("wx1", "weixin"))
        .clock(FixedClock(1_540_176_606))
        .insecure_skip_signature(true)
        .build()
        .unwrap();
    let (status, body) = send(&svc, get("signature=00&echostr=hi&timestamp=1540176606&nonce=1")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "hi"));
}
