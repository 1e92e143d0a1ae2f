use std::sync::{Arc, Mutex};

use axum::body::Body;
use http::{Request, StatusCode};
use wemp_proto::{Cipher, Mode, signature};
use wemp_server::{Account, FixedClock, Router, WechatService};

use crate::common::*;

fn post(query: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(format!("/?{query}")).body(body.into()).unwrap()
}

/// A safe-mode request whose Encrypt is `encrypt`, correctly signed.
fn signed_safe(encrypt: &str) -> Request<Body> {
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

    // Method.
    let (status, _) = send(&svc, Request::put("/").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

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
    expect(
        &svc,
        req,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body of more than 1024 bytes exceeds the 1024-byte limit",
    )
    .await;
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

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn rejection_log_line_names_code_mode_and_parameter_but_no_secret() {
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Tests on other threads without a subscriber may have cached "never" for the
    // callsites this test reads (the accepted request's debug line): ask again.
    tracing::callsite::rebuild_interest_cache();

    let svc = service(Router::new());
    let ok = wechat_post(Mode::Safe, &text_xml("x", 1));
    let bad = ok.uri().query().unwrap().replace("msg_signature=", "msg_signature=0");
    let body = format!("<xml><ToUserName>{GH}</ToUserName><Encrypt>AAAA</Encrypt></xml>");
    let (status, _) = send(&svc, post(&bad, body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // An appid with a NUL and an escape sequence: escaped in the log line.
    let nul_app = Cipher::new(KEY, "wx\0\u{1b}[2Jevil").unwrap().encrypt(&text_xml("x", 5), [1; 16]).unwrap();
    assert_eq!(send(&svc, signed_safe(&nul_app)).await.0, StatusCode::BAD_REQUEST);
    // And one accepted request, to check the OpenID is shortened.
    let (status, _) = send(&svc, wechat_post(Mode::Safe, &text_xml("x", 2))).await;
    assert_eq!(status, StatusCode::OK);

    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let line = log.lines().find(|l| l.contains("request rejected")).unwrap_or_else(|| panic!("{log}"));
    for needle in [
        "code=-40001",
        "mode=\"safe\"",
        "param=\"msg_signature\"",
        "token of length 8",
        "appid=\"wx2c2769f8efd9abc2\"",
    ] {
        assert!(line.contains(needle), "{needle} missing in {line}");
    }
    assert!(!log.contains(TOKEN) && !log.contains(KEY), "secret in log: {log}");
    assert!(!log.contains('\0') && !log.contains('\u{1b}'), "a control character in the log: {log:?}");
    assert!(!log.contains(OPENID), "OpenID not shortened: {log}");
    assert!(log.contains("oyOR…f0rs"), "{log}");
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

/// Issue 16 item 16: the request span's `rule` field is recorded once, with the name that
/// answered (a handler naming its rule used to add a second `rule=` to every line).
#[tokio::test(flavor = "current_thread")]
async fn the_rule_is_recorded_once_in_the_request_span() {
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    let router = Router::new().fallback(|ctx: wemp_server::Ctx| async move {
        ctx.set_rule_name("keyword:help");
        wemp_proto::Reply::text("named")
    });
    let svc = service(router);
    let (status, _) = send(&svc, wechat_post(Mode::Safe, &text_xml("help", 7))).await;
    assert_eq!(status, StatusCode::OK);
    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let line = log.lines().find(|l| l.contains("answered")).unwrap_or_else(|| panic!("{log}"));
    assert_eq!(line.matches("rule=").count(), 1, "{line}");
    assert!(line.contains("rule=\"keyword:help\"") || line.contains("rule=keyword:help"), "{line}");
}
