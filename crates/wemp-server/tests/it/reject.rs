use axum::body::Body;
use http::{Request, StatusCode};
use wemp_proto::{Cipher, Mode, signature};
use wemp_server::{Account, FixedClock, Reply, Router, WechatService};

use crate::common::*;

async fn expect(svc: &WechatService, req: Request<Body>, status: StatusCode, starts: &str) -> String {
    let (got, body) = send(svc, req).await;
    assert_eq!(got, status, "{body}");
    assert!(body.starts_with(starts), "expected {starts:?}, got {body:?}");
    assert_eq!(body.trim_end().lines().count(), 1, "one-line reason: {body:?}");
    assert!(!body.contains(TOKEN) && !body.contains(KEY), "a secret leaked: {body}");
    body
}

#[tokio::test]
async fn every_rejection_has_its_status_code_and_reason() {
    let svc = service(Router::new());
    let ok = wechat_post(Mode::Safe, &text_xml("x", 1));
    let query = ok.uri().query().unwrap().to_owned();

    // Bad msg_signature.
    let bad_sig = query.replace("msg_signature=", "msg_signature=0");
    let body = format!("<xml><ToUserName>{GH}</ToUserName><Encrypt>AAAA</Encrypt></xml>");
    expect(
        &svc,
        post(&bad_sig, body.clone()),
        StatusCode::FORBIDDEN,
        "-40001 msg_signature mismatch: computed over timestamp, nonce, Encrypt",
    )
    .await;
    // The Token's length stays in the server's log (see the log-line test below).
    let (_, body) = send(&svc, post(&bad_sig, "<xml><Encrypt>AAAA</Encrypt></xml>")).await;
    assert!(!body.contains("length"), "{body}");

    // Missing msg_signature in an encrypted request.
    let q = format!("signature=x&timestamp={NOW}&nonce=5&encrypt_type=aes");
    expect(&svc, post(&q, body), StatusCode::BAD_REQUEST, "-40001 missing query parameter msg_signature")
        .await;

    // Plain: bad signature, missing signature, missing timestamp, non-numeric timestamp.
    let plain = text_xml("x", 2);
    expect(
        &svc,
        post(&format!("signature=00&timestamp={NOW}&nonce=5"), plain.clone()),
        StatusCode::FORBIDDEN,
        "-40001 signature mismatch",
    )
    .await;
    expect(
        &svc,
        post(&format!("timestamp={NOW}&nonce=5"), plain.clone()),
        StatusCode::BAD_REQUEST,
        "-40001 missing query parameter signature",
    )
    .await;
    expect(
        &svc,
        post("signature=00&nonce=5", plain.clone()),
        StatusCode::BAD_REQUEST,
        "-40001 missing query parameter timestamp",
    )
    .await;
    let sig = signature::sign(TOKEN, "soon", "5");
    expect(
        &svc,
        post(&format!("signature={sig}&timestamp=soon&nonce=5"), plain.clone()),
        StatusCode::BAD_REQUEST,
        "timestamp \"soon\" is not a number",
    )
    .await;

    // Stale timestamp (signed correctly).
    let old = (NOW - 1000).to_string();
    let sig = signature::sign(TOKEN, &old, "5");
    expect(
        &svc,
        post(&format!("signature={sig}&timestamp={old}&nonce=5"), plain.clone()),
        StatusCode::BAD_REQUEST,
        "timestamp 1409734669 is 1000 s behind server time (window 300 s)",
    )
    .await;

    // Malformed XML, DOCTYPE, empty body, not UTF-8.
    expect(
        &svc,
        post(&query, "<xml><a></xml>"),
        StatusCode::BAD_REQUEST,
        "-40002 body is not acceptable XML",
    )
    .await;
    let doctype =
        "<!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><xml><Encrypt>&x;</Encrypt></xml>";
    let body =
        expect(&svc, post(&query, doctype), StatusCode::BAD_REQUEST, "-40002 body is not acceptable XML")
            .await;
    assert!(body.contains("DOCTYPE"), "{body}");
    expect(&svc, post(&query, ""), StatusCode::BAD_REQUEST, "-40002 body is not acceptable XML").await;
    expect(&svc, post(&query, vec![0xff_u8, 0xfe]), StatusCode::BAD_REQUEST, "-40002 body is not UTF-8")
        .await;

    // encrypt_type=aes without Encrypt.
    expect(
        &svc,
        post(&query, format!("<xml><ToUserName>{GH}</ToUserName></xml>")),
        StatusCode::BAD_REQUEST,
        "-40002 no <Encrypt> element",
    )
    .await;

    // An empty one says so (issue 16 item 16).
    expect(
        &svc,
        post(&query, format!("<xml><ToUserName>{GH}</ToUserName><Encrypt></Encrypt></xml>")),
        StatusCode::BAD_REQUEST,
        "-40002 the <Encrypt> element is empty",
    )
    .await;

    // Bad base64, wrong key (padding), wrong appid, truncated ciphertext.
    expect(&svc, signed_safe("!!!!not-base64!!!!"), StatusCode::BAD_REQUEST, "-40010").await;
    let other_key = Cipher::new("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg", APPID).unwrap();
    let wrong_key = other_key.encrypt(&text_xml("x", 3), [1; 16]).unwrap();
    expect(&svc, signed_safe(&wrong_key), StatusCode::BAD_REQUEST, "-40008").await;
    let other_app =
        Cipher::new(KEY, "wxotherapp000000").unwrap().encrypt(&text_xml("x", 4), [1; 16]).unwrap();
    let body = expect(&svc, signed_safe(&other_app), StatusCode::BAD_REQUEST, "-40005 appid mismatch").await;
    assert!(body.contains("wxotherapp000000"), "{body}");
    // A NUL or an escape sequence in a decrypted appid is escaped, not written raw.
    let nul_app = Cipher::new(KEY, "wx\0\u{1b}[2Jevil").unwrap().encrypt(&text_xml("x", 5), [1; 16]).unwrap();
    let body = expect(&svc, signed_safe(&nul_app), StatusCode::BAD_REQUEST, "-40005 appid mismatch").await;
    assert!(body.contains("found wx\\u{0}\\u{1b}[2Jevil"), "{body:?}");
    assert!(!body.chars().any(|c| c.is_control() && c != '\n'), "{body:?}");
    expect(&svc, signed_safe("AAAAAAAAAAAAAAAAAAAAAAAA"), StatusCode::BAD_REQUEST, "-40007").await;

    // Method: the request's headers do not come back (the answer's header map is the
    // request's, cleared).
    let put = Request::put("/").header("authorization", "Bearer x").header("x-probe", "1");
    let res = tower::ServiceExt::oneshot(svc.clone(), put.body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    let headers: Vec<_> = res.headers().iter().map(|(n, v)| (n.as_str(), v.to_str().unwrap())).collect();
    assert_eq!(headers, [("content-type", "text/plain; charset=utf-8"), ("allow", "GET, POST")]);
}

/// What a streamed body over a 1024-byte limit is refused with.
const OVER_1024: &str = "body of more than 1024 bytes exceeds the 1024-byte limit";

#[tokio::test]
async fn body_limit() {
    let svc = builder(Router::new()).body_limit(1024).build().unwrap();
    let big = text_xml(&"x".repeat(2000), 1);
    expect(&svc, wechat_post(Mode::Plain, &big), StatusCode::PAYLOAD_TOO_LARGE, "body of").await;
    // Without Content-Length (streamed) the limit still holds.
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![Ok(big.clone().into())];
    let stream = Body::from_stream(futures_util::stream::iter(chunks));
    let req = wechat_post(Mode::Plain, &big);
    let req = Request::post(req.uri().clone()).body(stream).unwrap();
    expect(&svc, req, StatusCode::PAYLOAD_TOO_LARGE, OVER_1024).await;
}

/// The body as `chunks` pieces (each an error where `None`), with no `Content-Length`.
fn streamed(uri: &http::Uri, body: &str, cut: &[usize], fail_at: Option<usize>) -> Request<Body> {
    let mut pieces = Vec::new();
    let mut at = 0;
    for (i, &end) in cut.iter().chain([&body.len()]).enumerate() {
        if fail_at == Some(i) {
            pieces.push(Err(std::io::Error::other("connection reset")));
        }
        pieces.push(Ok(bytes::Bytes::copy_from_slice(&body.as_bytes()[at..end])));
        at = end;
    }
    Request::post(uri.clone()).body(Body::from_stream(futures_util::stream::iter(pieces))).unwrap()
}

#[tokio::test]
async fn a_body_in_pieces_is_read_whole_and_held_to_the_limit_in_all() {
    let svc =
        builder(Router::new().fallback(|| async { Reply::text("got it") })).body_limit(1024).build().unwrap();
    let xml = text_xml(&"y".repeat(600), 1);
    let whole = wechat_post(Mode::Plain, &xml);
    let uri = whole.uri().clone();
    let (status, one) = send(&svc, whole).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert!(one.contains("got it"), "{one}");
    // In pieces (an empty one too), each under the limit: the same answer.
    let (status, pieces) = send(&svc, streamed(&uri, &xml, &[0, 1, 100, 100, 650], None)).await;
    assert_eq!((status, pieces), (StatusCode::OK, one));
    // Over the limit only in all.
    let big = text_xml(&"y".repeat(1100), 2);
    let big_uri = wechat_post(Mode::Plain, &big).uri().clone();
    let req = streamed(&big_uri, &big, &[500, 1000], None);
    expect(&svc, req, StatusCode::PAYLOAD_TOO_LARGE, OVER_1024).await;
    // A piece that fails: the body did not arrive whole.
    let req = streamed(&uri, &xml, &[300], Some(1));
    let body = expect(&svc, req, StatusCode::BAD_REQUEST, "the body did not arrive whole").await;
    assert!(body.contains("connection reset"), "{body}");
}

#[tokio::test]
async fn require_encryption_and_missing_key() {
    let svc = builder(Router::new()).require_encryption(true).build().unwrap();
    expect(
        &svc,
        wechat_post(Mode::Plain, &text_xml("x", 1)),
        StatusCode::FORBIDDEN,
        "plain-mode request refused",
    )
    .await;
    let (status, _) = send(&svc, wechat_post(Mode::Safe, &text_xml("x", 1))).await;
    assert_eq!(status, StatusCode::OK);

    let plain_only =
        WechatService::builder().account(Account::new(APPID, TOKEN)).clock(FixedClock(NOW)).build().unwrap();
    expect(
        &plain_only,
        wechat_post(Mode::Safe, &text_xml("x", 1)),
        StatusCode::BAD_REQUEST,
        "-40004 safe-mode request but no EncodingAESKey",
    )
    .await;
}

/// Issue 16 item 7: in plain mode `signature` covers no body, so a captured URL could carry
/// another body within the freshness window; the second body is refused, the same request
/// again (a retry) is not.
#[tokio::test]
async fn a_plain_signature_reused_with_another_body_is_refused() {
    let svc = builder(Router::new()).plain_replay_protection(true).build().unwrap();
    let first = wechat_post(Mode::Plain, &text_xml("real", 50));
    let query = first.uri().query().unwrap().to_owned();
    let (status, body) = send(&svc, first).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(&svc, post(&query, text_xml("real", 50))).await;
    assert_eq!(status, StatusCode::OK, "the same request again is a retry: {body}");
    expect(
        &svc,
        post(&query, text_xml("forged", 51)),
        StatusCode::FORBIDDEN,
        "-40001 timestamp and nonce already came",
    )
    .await;
}
