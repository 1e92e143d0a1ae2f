//! `wemp serve` as a gateway, through the binary over real HTTP: the API proxy against the
//! fake platform.
mod common;

use std::time::Duration;

use common::{ServeProc, temp_dir};
use wemp_testkit::platform::{FakePlatform, FakeUser, Fault};

const PROXY_TOKEN: &str = "proxy-token-0123456789";

fn config(platform: &FakePlatform, extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmetrics_path = \"/metrics\"\n\n\
         [[accounts]]\nname = \"shop\"\ntoken = \"Tok123\"\nappid = \"{}\"\nappsecret = \"{}\"\n\n{extra}",
        platform.appid(),
        platform.secret()
    )
}

fn start(platform: &FakePlatform, extra: &str) -> (ServeProc, std::path::PathBuf) {
    let dir = temp_dir("gateway");
    std::fs::write(dir.join("wemp.toml"), config(platform, extra)).unwrap();
    let srv = ServeProc::start(
        &dir,
        &["--config", "wemp.toml", "--data-dir", "d"],
        &[("WEMP_API_BASE", &platform.url()), ("WEMP_LOG", "info")],
    );
    (srv, dir)
}

fn origin(srv: &ServeProc) -> String {
    srv.url.strip_suffix("/wechat").unwrap().to_owned()
}

/// Uploads `data` through the proxy as temporary media of `kind`; its media id.
async fn upload(
    http: &reqwest::Client,
    base: &str,
    kind: &str,
    data: &[u8],
    name: &str,
    mime: &str,
) -> String {
    let part =
        reqwest::multipart::Part::bytes(data.to_vec()).file_name(name.to_owned()).mime_str(mime).unwrap();
    let res = http
        .post(format!("{base}/api/cgi-bin/media/upload?type={kind}"))
        .bearer_auth(PROXY_TOKEN)
        .multipart(reqwest::multipart::Form::new().part("media", part))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = res.json().await.unwrap();
    v["media_id"].as_str().unwrap_or_else(|| panic!("{v}")).to_owned()
}

/// Without `[api_proxy] token` nothing answers at /api/.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_proxy_is_off_without_a_token() {
    let platform = FakePlatform::start().await;
    let (srv, _dir) = start(&platform, "");
    let http = reqwest::Client::new();
    let res = http
        .get(format!("{}/api/cgi-bin/user/info?openid=o1", origin(&srv)))
        .bearer_auth(PROXY_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(platform.requests_to("/cgi-bin/user/info").is_empty());
    assert!(!srv.stdout().contains("API proxy"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_proxy_adds_the_token_retries_token_errors_and_passes_the_rest() {
    let platform = FakePlatform::start().await;
    platform.add_user(FakeUser::new("o_ann"));
    let (srv, _dir) = start(&platform, &format!("[api_proxy]\ntoken = \"{PROXY_TOKEN}\"\n"));
    let base = origin(&srv);
    let http = reqwest::Client::new();
    let info = format!("{base}/api/cgi-bin/user/info?openid=o_ann&lang=zh_CN");

    // No token, a wrong token: 401, and the platform is never called.
    let res = http.get(&info).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let res = http.get(&info).bearer_auth("proxy-token-0123456780").send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(platform.requests_to("/cgi-bin/user/info").is_empty());

    // The right token: the platform sees the account's access token, the app sees the answer.
    let res = http.get(&info).bearer_auth(PROXY_TOKEN).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["openid"], "o_ann", "{v}");
    let seen = platform.last_request("/cgi-bin/user/info").unwrap();
    let token = seen.access_token().unwrap().to_owned();
    assert!(platform.token_is_valid(&token));
    assert_eq!(seen.query["lang"], "zh_CN");

    // An access_token the app sends is not the one used.
    let res = http
        .get(format!("{info}&access_token=forged"))
        .header("X-Wemp-Account", "shop")
        .bearer_auth(PROXY_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(platform.last_request("/cgi-bin/user/info").unwrap().access_token(), Some(token.as_str()));

    // The token is revoked behind wemp's back: 40001, replaced, retried once — the app sees
    // only the success.
    let fetches = platform.token_requests();
    platform.revoke_tokens();
    let res = http.get(&info).bearer_auth(PROXY_TOKEN).send().await.unwrap();
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["openid"], "o_ann", "{v}");
    assert_eq!(platform.token_requests(), fetches + 1);
    assert_eq!(platform.answered_with(40001), 1);

    // Other errors pass through unchanged, and are not retried.
    platform.inject_times("/cgi-bin/user/info", Fault::QUOTA, 1);
    let before = platform.requests_to("/cgi-bin/user/info").len();
    let res = http.get(&info).bearer_auth(PROXY_TOKEN).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["errcode"], 45009, "{v}");
    assert_eq!(platform.requests_to("/cgi-bin/user/info").len(), before + 1);

    // A JSON POST (a customer-service message) goes through with its body.
    let res = http
        .post(format!("{base}/api/cgi-bin/message/custom/send"))
        .bearer_auth(PROXY_TOKEN)
        .json(&serde_json::json!({"touser": "o_ann", "msgtype": "text", "text": {"content": "hi"}}))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["errcode"], 0, "{v}");
    assert_eq!(platform.sent_messages().last().unwrap()["text"]["content"], "hi");

    // An upload (multipart) and the download of what was uploaded.
    let image: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let media_id = upload(&http, &base, "image", &image, "cat.jpg", "image/jpeg").await;
    assert_eq!(platform.media(&media_id).unwrap().data.as_ref(), image.as_slice());
    let res = http
        .get(format!("{base}/api/cgi-bin/media/get?media_id={media_id}"))
        .bearer_auth(PROXY_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert_eq!(res.bytes().await.unwrap().as_ref(), image.as_slice());

    // A body larger than wemp holds (1 MiB) streams through (a 2 MiB voice upload).
    let voice: Vec<u8> = (0..2_000_000u32).map(|i| (i % 241) as u8).collect();
    let voice_id = upload(&http, &base, "voice", &voice, "a.mp3", "audio/mpeg").await;
    assert_eq!(platform.media(&voice_id).unwrap().data.len(), voice.len());

    // An unknown account is a clear 400.
    let res = http.get(&info).header("X-Wemp-Account", "nope").bearer_auth(PROXY_TOKEN).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("no account \\\"nope\\\""));

    // Counted in the metrics, logged with path, account and errcode — never a token.
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("wemp_api_proxy_calls_total{result=\"unauthorized\"} 2"), "{metrics}");
    assert!(metrics.contains("wemp_api_proxy_calls_total{result=\"api_error\"} 1"), "{metrics}");
    assert!(metrics.contains("wemp_api_proxy_calls_total{result=\"bad_request\"} 1"), "{metrics}");
    assert!(metrics.contains("wemp_api_proxy_token_retries_total 1"), "{metrics}");
    assert!(srv.wait_stderr("errcode=45009", Duration::from_secs(5)), "{}", srv.stderr());
    let (_, log) = srv.stop();
    assert!(log.contains("/cgi-bin/user/info") && log.contains("shop") && log.contains("api call"), "{log}");
    for secret in [token.as_str(), PROXY_TOKEN, &platform.secret()] {
        assert!(!log.contains(secret), "a secret in the log:\n{log}");
    }
}

/// `[api_proxy] listen`: the proxy on an address of its own, not on the callback's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_proxy_listens_on_its_own_address() {
    let platform = FakePlatform::start().await;
    platform.add_user(FakeUser::new("o_bob"));
    let (srv, _dir) =
        start(&platform, &format!("[api_proxy]\ntoken = \"{PROXY_TOKEN}\"\nlisten = \"127.0.0.1:0\"\n"));
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let line = loop {
        if let Some(l) = srv.stdout().lines().find(|l| l.starts_with("API proxy: ")) {
            break l.to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "no API proxy line:\n{}", srv.stdout());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let at = line.split_whitespace().nth(2).unwrap().trim_end_matches("<path>").to_owned();
    assert!(!at.starts_with(&origin(&srv)), "{at} is the callback's address");
    let res = http
        .get(format!("{at}cgi-bin/user/info?openid=o_bob"))
        .bearer_auth(PROXY_TOKEN)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["openid"], "o_bob", "{v}");
    let res = http
        .get(format!("{}/api/cgi-bin/user/info?openid=o_bob", origin(&srv)))
        .bearer_auth(PROXY_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "not on the callback's address");
}

/// A token too short to guard the access token is refused at start-up.
#[test]
fn a_short_proxy_token_is_refused() {
    let dir = temp_dir("gateway-short");
    let o = common::wemp_in(
        &dir,
        &["serve", "--listen", "127.0.0.1:0", "--token", "Tok123", "--data-dir", "d"],
        &[("WEMP_API_PROXY_TOKEN", "short")],
    );
    assert!(!o.status.success());
    let err = common::stderr(&o);
    assert!(err.contains("WEMP_API_PROXY_TOKEN") && err.contains("at least 16 characters"), "{err}");
    assert!(!err.contains("short\""), "{err}");
}
