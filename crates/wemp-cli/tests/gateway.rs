//! `wemp serve` as a gateway, through the binary over real HTTP: the API proxy against the
//! fake platform.
mod common;

use std::time::Duration;

use common::{ServeProc, temp_dir};
use wemp_testkit::platform::{FakePlatform, FakeUser, Fault};

const PROXY_TOKEN: &str = "proxy-token-0123456789";

/// The test config: `server` is more of `[server]`, `extra` goes after the account.
fn config(platform: &FakePlatform, server: &str, extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmetrics_path = \"/metrics\"\n{server}\n\
         [[accounts]]\nname = \"shop\"\ntoken = \"Tok123\"\nappid = \"{}\"\nappsecret = \"{}\"\n\n{extra}",
        platform.appid(),
        platform.secret()
    )
}

fn start(platform: &FakePlatform, extra: &str) -> (ServeProc, std::path::PathBuf) {
    start_with(platform, "", extra)
}

fn start_with(platform: &FakePlatform, server: &str, extra: &str) -> (ServeProc, std::path::PathBuf) {
    let dir = temp_dir("gateway");
    std::fs::write(dir.join("wemp.toml"), config(platform, server, extra)).unwrap();
    let srv = ServeProc::start(
        &dir,
        &["--config", "wemp.toml", "--data-dir", "d"],
        &[("WEMP_API_BASE", &platform.url()), ("WEMP_LOG", "info")],
    );
    (srv, dir)
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
        .get(format!("{}/api/cgi-bin/user/info?openid=o1", srv.origin()))
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
    let base = srv.origin();
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
    assert!(!at.starts_with(&srv.origin()), "{at} is the callback's address");
    let res = http
        .get(format!("{at}cgi-bin/user/info?openid=o_bob"))
        .bearer_auth(PROXY_TOKEN)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["openid"], "o_bob", "{v}");
    let res = http
        .get(format!("{}/api/cgi-bin/user/info?openid=o_bob", srv.origin()))
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

/// An example of examples/gateway/ (app.py in Flask, app.mjs in plain Node) running for real.
struct Example {
    child: std::process::Child,
    log: std::path::PathBuf,
    url: String,
}

impl Example {
    /// Starts `examples/gateway/<file>` with `program` on the port in `env` (`PORT`); `None`
    /// (with the reason printed) when `program` cannot run it (`probe` fails).
    fn start(
        program: &str,
        probe: &[&str],
        file: &str,
        dir: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Option<Self> {
        let runs = std::process::Command::new(program).args(probe).output().is_ok_and(|o| o.status.success());
        if !runs {
            eprintln!(
                "skipped: `{program} {}` fails here (scripts/test installs what it needs)",
                probe.join(" ")
            );
            return None;
        }
        let port: u16 = env.iter().find(|(k, _)| *k == "PORT").and_then(|(_, v)| v.parse().ok()).unwrap();
        let app = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/gateway").join(file);
        let log = dir.join(format!("{file}.log"));
        let child = std::process::Command::new(program)
            .arg(app)
            .envs(env.iter().copied())
            .stdout(std::fs::File::create(dir.join(format!("{file}.out"))).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        assert!(common::wait_for_port(port, Duration::from_secs(20)), "{file} did not start");
        Some(Self { child, log, url: format!("http://127.0.0.1:{port}/wechat") })
    }

    /// The Flask example.
    fn flask(dir: &std::path::Path, env: &[(&str, &str)]) -> Option<Self> {
        Self::start("python3", &["-c", "import flask"], "app.py", dir, env)
    }

    /// The plain Node example.
    fn node(dir: &std::path::Path, env: &[(&str, &str)]) -> Option<Self> {
        Self::start(
            "node",
            &["-e", "process.exit(Number(process.versions.node.split('.')[0]) >= 18 ? 0 : 1)"],
            "app.mjs",
            dir,
            env,
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sim(dir: &std::path::Path, srv: &ServeProc, args: &[&str]) -> (bool, String) {
    let mut all = vec!["--openid", "o_ann"];
    all.extend(args);
    let o = common::sim_send(dir, &srv.url, "Tok123", "plain", &all);
    (o.status.success(), common::out(&o))
}

/// What every example does behind wemp, however it is reached (a URL, the relay): a reply,
/// WeChat's retries reaching the app once, a failing app answered with the fallback text
/// (never a 5xx), a slow app's reply sent later through the customer-service API.
async fn the_example_behaves(
    platform: &FakePlatform,
    srv: &ServeProc,
    dir: &std::path::Path,
    app: &Example,
    msg_id: u64,
) {
    // A reply.
    let (ok, out) = sim(dir, srv, &["text", "hello"]);
    assert!(ok && out.contains("You said: hello"), "{out}\n{}", app.log());

    // WeChat's retries of one message (the same MsgId): the app is called once.
    let xml = dir.join(format!("retry-{msg_id}.xml"));
    std::fs::write(
        &xml,
        format!(
            "<xml><ToUserName><![CDATA[gh_wemp_sim]]></ToUserName><FromUserName><![CDATA[o_ann]]></FromUserName>\
             <CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>\
             <Content><![CDATA[again]]></Content><MsgId>{msg_id}</MsgId></xml>"
        ),
    )
    .unwrap();
    for _ in 0..3 {
        let (ok, out) = sim(dir, srv, &["raw", xml.to_str().unwrap()]);
        assert!(ok && out.contains("You said: again"), "{out}");
    }
    assert_eq!(app.log().matches(&format!("message msg:o_ann:{msg_id}")).count(), 1, "{}", app.log());

    // A failing app: WeChat gets the fallback text, never a 5xx.
    let (ok, out) = sim(dir, srv, &["text", "fail"]);
    assert!(ok && out.contains("Please try again later"), "{out}");

    // A slow app: WeChat is answered in time, the reply goes out through the
    // customer-service API when the app has it.
    let before = platform.sent_messages().len();
    let started = std::time::Instant::now();
    let (ok, out) = sim(dir, srv, &["text", "slow"]);
    assert!(ok, "{out}");
    assert!(started.elapsed() < Duration::from_secs(5), "WeChat waited {:?}", started.elapsed());
    assert!(!out.contains("Sorry for the wait"), "{out}");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let sent = platform.sent_messages();
        if sent[before.min(sent.len())..]
            .iter()
            .any(|m| m["touser"] == "o_ann" && m["text"]["content"] == "Sorry for the wait")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no late reply: {sent:?}\n{}", srv.stderr());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const FALLBACK: &str = "fallback_text = \"Please try again later\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flask_example_answers_behind_wemp_serve_forward() {
    const SECRET: &str = "forward-secret-42";
    let platform = FakePlatform::start().await;
    platform.add_user(FakeUser::new("o_ann"));
    let flask_port = common::free_port();
    // The app's URL is known before it starts; serve starts first so the app knows the proxy.
    let app_url = format!("http://127.0.0.1:{flask_port}/wechat");
    let (srv, dir) = start(
        &platform,
        &format!(
            "[api_proxy]\ntoken = \"{PROXY_TOKEN}\"\n\n[gateway]\nforward = \"{app_url}\"\n\
             forward_secret = \"{SECRET}\"\n{FALLBACK}"
        ),
    );
    let api = format!("{}/api", srv.origin());
    let port = flask_port.to_string();
    let Some(flask) = Example::flask(
        &dir,
        &[
            ("PORT", port.as_str()),
            ("WEMP_FORWARD_SECRET", SECRET),
            ("WEMP_API", &api),
            ("WEMP_API_PROXY_TOKEN", PROXY_TOKEN),
        ],
    ) else {
        return;
    };
    assert_eq!(flask.url, app_url);
    assert!(srv.stdout().contains("Forwarding: messages no rule answers go to"), "{}", srv.stdout());

    the_example_behaves(&platform, &srv, &dir, &flask, 4242424242).await;

    // The app calls the API through the proxy with its token (and the platform sees wemp's).
    let (ok, out) = sim(&dir, &srv, &["text", "who am i"]);
    assert!(ok && out.contains("You are o_ann"), "{out}\n{}", flask.log());
    assert!(platform.last_request("/cgi-bin/user/info").unwrap().access_token().is_some());

    // The example checks the signature: an unsigned or forged POST is refused.
    let http = reqwest::Client::new();
    let body = r#"{"msg_type":"text","content":"forged","openid":"o_x"}"#;
    let res = http.post(&app_url).body(body).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = http
        .post(&app_url)
        .header("X-Wemp-Signature", format!("sha256={}", wemp_server::sign(b"wrong", body.as_bytes())))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // The proxy without its token refuses the app's kind of call.
    let res = http.get(format!("{api}/cgi-bin/user/info?openid=o_ann")).send().await.unwrap();
    assert_eq!(res.status(), 401);

    let metrics = http.get(format!("{}/metrics", srv.origin())).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("wemp_forward_calls_total{result=\"app_error\"} 1"), "{metrics}");
    let (_, log) = srv.stop();
    assert!(log.contains("forwarding failed") && log.contains("HTTP 500"), "{log}");
    assert!(!log.contains(SECRET), "the forward secret in the log:\n{log}");
}

/// The plain Node example (examples/gateway/app.mjs, no npm install) behind `wemp serve --forward`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_example_answers_behind_wemp_serve_forward() {
    const SECRET: &str = "node-secret-42";
    let platform = FakePlatform::start().await;
    platform.add_user(FakeUser::new("o_ann"));
    let node_port = common::free_port();
    let app_url = format!("http://127.0.0.1:{node_port}/wechat");
    let (srv, dir) = start(
        &platform,
        &format!(
            "[api_proxy]\ntoken = \"{PROXY_TOKEN}\"\n\n[gateway]\nforward = \"{app_url}\"\n\
             forward_secret = \"{SECRET}\"\n{FALLBACK}"
        ),
    );
    let api = format!("{}/api", srv.origin());
    let port = node_port.to_string();
    let env = [
        ("PORT", port.as_str()),
        ("WEMP_FORWARD_SECRET", SECRET),
        ("WEMP_API", &api),
        ("WEMP_API_PROXY_TOKEN", PROXY_TOKEN),
    ];
    let Some(node) = Example::node(&dir, &env) else { return };
    the_example_behaves(&platform, &srv, &dir, &node, 4343434343).await;
    let (ok, out) = sim(&dir, &srv, &["text", "who am i"]);
    assert!(ok && out.contains("You are o_ann"), "{out}\n{}", node.log());
    let (_, log) = srv.stop();
    assert!(log.contains("forwarding failed") && log.contains("HTTP 500"), "{log}");
}

/// The line of serve's start-up output that starts with `prefix` (printed after the setup
/// screen, so waited for).
async fn screen_line(srv: &ServeProc, prefix: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(l) = srv.stdout().lines().find(|l| l.starts_with(prefix)) {
            return l.to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "no {prefix:?} line:\n{}", srv.stdout());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The relay end to end on loopback: `wemp serve --forward relay`, `wemp relay` to the Flask
/// example, messages through `wemp sim`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_carries_messages_to_the_flask_example() {
    const SECRET: &str = "relay-secret-42";
    let platform = FakePlatform::start().await;
    // HTTP connections get 1 s to send their headers and 1 s idle; the relay's WebSocket is
    // exempt (checked below).
    let (srv, dir) = start_with(
        &platform,
        "header_timeout = \"1s\"\nidle_timeout = \"1s\"\n",
        &format!("[gateway]\nforward = \"relay\"\nforward_secret = \"{SECRET}\"\n{FALLBACK}"),
    );
    let line = screen_line(&srv, "Relay: wemp relay ").await;
    let ws = line.split_whitespace().nth(3).unwrap().to_owned();
    assert_eq!(ws, format!("ws{}/relay", srv.url.trim_start_matches("http")));

    // No relay connected: the fallback text, never a 5xx, and a log line.
    let (ok, out) = sim(&dir, &srv, &["text", "anyone there?"]);
    assert!(ok && out.contains("Please try again later"), "{out}");
    assert!(srv.wait_stderr("no relay client is connected", Duration::from_secs(5)), "{}", srv.stderr());

    // A plain HTTP request, or a relay without the secret, is refused with a reason.
    let res = reqwest::Client::new().get(ws.replace("ws://", "http://")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let port = common::free_port();
    let app_url = format!("http://127.0.0.1:{port}/wechat");
    let o = common::wemp_in(
        &dir,
        &["relay", &ws, "--to", &app_url],
        &[("WEMP_FORWARD_SECRET", "not-the-secret")],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = common::stderr(&o);
    assert!(err.contains("HTTP 401") && err.contains("WEMP_FORWARD_SECRET differs"), "{err}");
    assert!(!err.contains(SECRET) && !srv.stderr().contains("not-the-secret"));

    let port = port.to_string();
    let Some(flask) = Example::flask(&dir, &[("PORT", port.as_str()), ("WEMP_FORWARD_SECRET", SECRET)])
    else {
        return;
    };
    let relay = common::RelayProc::start(&dir, &ws, &app_url, SECRET);
    relay.wait_for("relay: connected to");
    assert!(srv.wait_stderr("relay client connected", Duration::from_secs(5)), "{}", srv.stderr());
    // Quiet for longer than serve's HTTP header and idle bounds: the relay stays connected.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!srv.stderr().contains("relay client disconnected"), "{}", srv.stderr());

    // The example checks X-Wemp-Signature: what it answers came signed through the relay.
    the_example_behaves(&platform, &srv, &dir, &flask, 4444444444).await;
    relay.wait_for("HTTP 500");

    // The relay goes away (Ctrl-C: it closes the WebSocket properly): the fallback again, not
    // a wait for the timeout.
    relay.interrupt();
    assert!(
        srv.wait_stderr("relay client disconnected: closed", Duration::from_secs(10)),
        "{}",
        srv.stderr()
    );
    let started = std::time::Instant::now();
    let (ok, out) = sim(&dir, &srv, &["text", "still there?"]);
    assert!(ok && out.contains("Please try again later"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(5), "WeChat waited {:?}", started.elapsed());

    let http = reqwest::Client::new();
    let metrics = http.get(format!("{}/metrics", srv.origin())).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("wemp_forward_calls_total{result=\"unreachable\"} 2"), "{metrics}");
    assert!(metrics.contains("wemp_forward_calls_total{result=\"app_error\"} 1"), "{metrics}");
    let (_, log) = srv.stop();
    assert!(log.contains("app at relay answered HTTP 500"), "{log}");
    assert!(!log.contains(SECRET), "the forward secret in the log:\n{log}");

    // Relayed calls are on their messages' log entries, as direct ones are.
    let out = common::wemp_in(&dir, &["log", "--json", "--data-dir", "d"], &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.contains(SECRET), "the forward secret in the log:\n{text}");
    let entries: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let forward_of = |s: &str| {
        let e = entries.iter().find(|e| e["summary"] == s).unwrap_or_else(|| panic!("{s:?} not in {text}"));
        e["forward"].clone()
    };
    let f = forward_of("hello");
    assert_eq!(f["target"], serde_json::json!({"kind": "relay"}));
    assert_eq!((f["result"].as_str(), f["status"].as_u64()), (Some("reply"), Some(200)), "{f}");
    assert!(f["answer"].as_str().unwrap().contains("You said: hello"), "{f}");
    let f = forward_of("anyone there?");
    assert_eq!((f["result"].as_str(), f["status"].as_u64()), (Some("unreachable"), None), "{f}");
    assert!(f["error"].as_str().unwrap().contains("no relay client is connected"), "{f}");
    assert_eq!(forward_of("fail")["status"], 500);
}

/// `forward` as a rule action: keyword rules answer some messages, others go to the app (or
/// through the relay), with [gateway]'s secret and fallback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_forward_some_messages_and_answer_the_rest() {
    const SECRET: &str = "rule-secret-42";
    let platform = FakePlatform::start().await;
    let (url, seen) =
        recording_app(vec![(200, r#"{"reply": {"type": "text", "content": "from the app"}}"#)]).await;
    let (srv, dir) = start(
        &platform,
        &format!(
            "[console]\npublic_url = \"https://bot.example.com/wechat\"\n\n\
             [gateway]\nforward_secret = \"{SECRET}\"\n{FALLBACK}\n\
             [[rules]]\nkeyword = \"hi\"\nreply.text = \"from a rule\"\n\n\
             [[rules]]\nname = \"orders\"\ncontains = \"order\"\nforward = \"{url}\"\n\n\
             [[rules]]\nkeyword = \"relay\"\nforward = \"relay\"\n"
        ),
    );
    let (ok, out) = sim(&dir, &srv, &["text", "hi"]);
    assert!(ok && out.contains("from a rule"), "{out}");
    assert!(seen.lock().unwrap().is_empty());

    let (ok, out) = sim(&dir, &srv, &["text", "my order 42"]);
    assert!(ok && out.contains("from the app"), "{out}");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let (headers, body) = &seen[0];
        let sig = headers["x-wemp-signature"].to_str().unwrap();
        assert_eq!(sig, format!("sha256={}", wemp_server::sign(SECRET.as_bytes(), body)));
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["content"], "my order 42");
    }

    // No rule matches and there is no gateway.forward: no reply, the app is not called.
    let (ok, out) = sim(&dir, &srv, &["text", "something else"]);
    assert!(ok && !out.contains("from the app"), "{out}");
    assert_eq!(seen.lock().unwrap().len(), 1);

    // A rule forwarding through the relay: its endpoint is served, named at the public URL;
    // with no relay, the fallback.
    let line = screen_line(&srv, "Relay: wemp relay ").await;
    assert_eq!(line, "Relay: wemp relay wss://bot.example.com/wechat/relay --to <your app's URL>");
    let (ok, out) = sim(&dir, &srv, &["text", "relay"]);
    assert!(ok && out.contains("Please try again later"), "{out}");
    srv.stop();
    // The message log names the rule that forwarded a message, with its call to the app.
    let out = common::wemp_in(&dir, &["log", "--json", "--data-dir", "d"], &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let order = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["summary"] == "my order 42")
        .unwrap_or_else(|| panic!("no entry for the order in {text}"));
    assert_eq!(order["handler"], "orders", "{order}");
    assert_eq!(order["forward"]["result"], "reply", "{order}");
}

/// A rule given a `forward` on reload forwards with [gateway]'s secret as it was at start; a
/// first `forward = "relay"` needs a restart, and the reload says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_added_on_reload_is_signed_and_a_new_relay_needs_a_restart() {
    const SECRET: &str = "reload-secret-42";
    let platform = FakePlatform::start().await;
    let (url, seen) =
        recording_app(vec![(200, r#"{"reply": {"type": "text", "content": "from the app"}}"#); 2]).await;
    let gateway = format!("[gateway]\nforward_secret = \"{SECRET}\"\n");
    let (srv, dir) = start(&platform, &gateway);
    let (ok, out) = sim(&dir, &srv, &["text", "order 7"]);
    assert!(ok && !out.contains("from the app"), "{out}");

    let file = dir.join("wemp.toml");
    let rule = format!("\n[[rules]]\ncontains = \"order\"\nforward = \"{url}\"\n");
    std::fs::write(&file, config(&platform, "", &format!("{gateway}{rule}"))).unwrap();
    assert!(srv.wait_stderr("rules reloaded", Duration::from_secs(10)), "{}", srv.stderr());
    let (ok, out) = sim(&dir, &srv, &["text", "order 8"]);
    assert!(ok && out.contains("from the app"), "{out}");
    {
        let seen = seen.lock().unwrap();
        let (headers, body) = &seen[0];
        let sig = headers["x-wemp-signature"].to_str().unwrap();
        assert_eq!(sig, format!("sha256={}", wemp_server::sign(SECRET.as_bytes(), body)));
    }

    let relay = "\n[[rules]]\nkeyword = \"live\"\nforward = \"relay\"\n";
    std::fs::write(&file, config(&platform, "", &format!("{gateway}{rule}{relay}"))).unwrap();
    assert!(srv.wait_stderr("restart `wemp serve`", Duration::from_secs(10)), "{}", srv.stderr());
    // The previous rules stay in effect.
    let (ok, out) = sim(&dir, &srv, &["text", "order 9"]);
    assert!(ok && out.contains("from the app"), "{out}");
}

/// An account whose callback path is the relay endpoint is refused, with its line.
#[test]
fn an_account_on_the_relay_endpoint_is_refused() {
    let dir = temp_dir("gateway-relay-path");
    std::fs::write(
        dir.join("wemp.toml"),
        "[gateway]\nforward = \"relay\"\nforward_secret = \"s3cret-s3cret\"\n\n\
         [[accounts]]\ntoken = \"Tok123\"\n\n\
         [[accounts]]\nname = \"shop\"\ntoken = \"Tok456\"\npath = \"/wechat/relay\"\n",
    )
    .unwrap();
    let args = ["serve", "--config", "wemp.toml", "--data-dir", "d", "--listen", "127.0.0.1:0"];
    let o = common::wemp_in(&dir, &args, &[]);
    assert!(!o.status.success());
    let err = common::stderr(&o);
    assert!(err.contains("wemp.toml:11: accounts[1].path: \"/wechat/relay\" is the relay endpoint"), "{err}");
}

/// A rule's `forward` that cannot work is a config error with the file and the line.
#[test]
fn a_bad_rule_forward_is_refused_with_its_line() {
    let dir = temp_dir("gateway-rule-forward");
    std::fs::write(
        dir.join("wemp.toml"),
        "[[accounts]]\ntoken = \"Tok123\"\n\n\
         [[rules]]\nkeyword = \"a\"\nforward = \"ftp://x/\"\n\n\
         [[rules]]\nkeyword = \"b\"\nforward = \"http://10.1.2.3/hook\"\n\n\
         [[rules]]\nkeyword = \"c\"\nforward = \"http://127.0.0.1:5000/hook\"\nreply.text = \"both\"\n\n\
         [[rules]]\nkeyword = \"d\"\nforward = \"relay\"\n",
    )
    .unwrap();
    let o = common::wemp_in(
        &dir,
        &["serve", "--config", "wemp.toml", "--data-dir", "d", "--listen", "127.0.0.1:0"],
        &[],
    );
    assert!(!o.status.success());
    let err = common::stderr(&o);
    assert!(
        err.contains("wemp.toml:6: rules[0].forward: \"ftp://x/\" is not an http:// or https:// URL"),
        "{err}"
    );
    assert!(
        err.contains(
            "wemp.toml:10: rules[1].forward: forwarding to \"http://10.1.2.3/hook\", beyond loopback"
        ),
        "{err}"
    );
    assert!(err.contains("rules[2].forward: a rule has a reply or forward, not both"), "{err}");
    assert!(err.contains("wemp.toml:19: rules[3].forward: \"relay\" needs gateway.forward_secret"), "{err}");
}

/// Forwarding beyond loopback without a secret is refused at start-up, and says why.
#[test]
fn forwarding_beyond_loopback_needs_a_secret() {
    let dir = temp_dir("gateway-secret");
    let serve = |url: &str| {
        let args =
            ["serve", "--listen", "127.0.0.1:0", "--token", "Tok123", "--data-dir", "d", "--forward", url];
        let o = common::wemp_in(&dir, &args, &[]);
        assert!(!o.status.success(), "{url} was accepted");
        common::stderr(&o)
    };
    let err = serve("http://10.1.2.3/hook");
    assert!(err.contains("forward_secret") && err.contains("WEMP_FORWARD_SECRET"), "{err}");
    let err = serve("ftp://x/");
    assert!(err.contains("is not an http:// or https:// URL"), "{err}");
    // The relay's endpoint is public: it always needs the secret.
    let err = serve("relay");
    assert!(err.contains("\"relay\" needs gateway.forward_secret (or WEMP_FORWARD_SECRET)"), "{err}");
}

/// An app on loopback (a real HTTP server) that records what it receives and answers with
/// the next scripted answer.
async fn recording_app(
    answers: Vec<(u16, &'static str)>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, axum::body::Bytes)>>>) {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<(axum::http::HeaderMap, axum::body::Bytes)>>> = Arc::default();
    let answers = Arc::new(Mutex::new(answers.into_iter()));
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let s = s.clone();
            let answers = answers.clone();
            async move {
                s.lock().unwrap().push((headers, body));
                let (status, body) = answers.lock().unwrap().next().unwrap_or((204, ""));
                (axum::http::StatusCode::from_u16(status).unwrap(), body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarded_json_follows_the_contract() {
    const SECRET: &str = "contract-secret";
    let platform = FakePlatform::start().await;
    let (url, seen) = recording_app(vec![
        (200, r#"{"reply": {"type": "news", "articles": [{"title": "T", "url": "https://e/"}]}}"#),
        (200, r#"{"reply": null}"#),
        (200, r#"{"text": "not the contract"}"#),
        (200, "<xml>nope</xml>"),
    ])
    .await;
    let (srv, dir) = start(
        &platform,
        &format!(
            "[gateway]\nforward = \"{url}\"\nforward_secret = \"{SECRET}\"\n\n[[rules]]\nkeyword = \"rule\"\nreply.text = \"from a rule\"\n"
        ),
    );
    // A rule answers first; the app never sees it.
    let (ok, out) = sim(&dir, &srv, &["text", "rule"]);
    assert!(ok && out.contains("from a rule"), "{out}");
    assert!(seen.lock().unwrap().is_empty());

    let (ok, out) = sim(&dir, &srv, &["text", "hello"]);
    assert!(ok && out.contains("news") && out.contains('T'), "{out}");
    let (ok, _) = sim(&dir, &srv, &["event", "subscribe"]);
    assert!(ok);
    // Malformed answers: no reply to WeChat, never a 5xx, and a clear log line.
    for word in ["one", "two"] {
        let (ok, out) = sim(&dir, &srv, &["text", word]);
        assert!(ok, "{out}");
        assert!(!out.contains("not the contract") && !out.contains("nope"), "{out}");
    }

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    let (headers, body) = &seen[0];
    let sig = headers["x-wemp-signature"].to_str().unwrap();
    assert_eq!(sig, format!("sha256={}", wemp_server::sign(SECRET.as_bytes(), body)));
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["account"], "shop");
    assert_eq!(v["appid"], platform.appid());
    assert_eq!(v["kind"], "official_account");
    assert_eq!((&v["corpid"], &v["agentid"]), (&serde_json::Value::Null, &serde_json::Value::Null));
    assert_eq!(v["openid"], "o_ann");
    assert_eq!(v["msg_type"], "text");
    assert_eq!(v["event"], serde_json::Value::Null);
    assert!(v["msg_id"].is_string(), "msg_id is a string: {v}");
    assert_eq!(v["content"], "hello");
    assert_eq!(v["message"]["content"], "hello");
    assert!(v["raw_xml"].as_str().unwrap().contains("<Content><![CDATA[hello]]></Content>"), "{v}");
    assert_eq!(v["mode"], "plain");
    assert_eq!(headers["x-wemp-dedup-key"].to_str().unwrap(), v["dedup_key"].as_str().unwrap());
    assert!(v["received_at"].as_u64().unwrap() > 1_700_000_000_000);
    let remaining = v["remaining_ms"].as_u64().unwrap();
    assert!(remaining > 0 && remaining <= 4500, "{remaining}");
    let event: serde_json::Value = serde_json::from_slice(&seen[1].1).unwrap();
    assert_eq!((event["msg_type"].as_str(), event["event"].as_str()), (Some("event"), Some("subscribe")));
    assert_eq!(event["msg_id"], serde_json::Value::Null);
    assert_eq!(event["content"], serde_json::Value::Null);

    let (_, log) = srv.stop();
    assert!(log.contains("no \\\"reply\\\" field") || log.contains("no \"reply\" field"), "{log}");
    assert!(log.contains("not JSON"), "{log}");
    // At `info`, a call that succeeded writes no line (the message log has it, below).
    assert!(!log.contains("forwarded"), "{log}");

    // `wemp log --json` keeps each call to the app on its message's entry: the JSON sent, the
    // app's status and answer, the latency — never the forward secret.
    let out = common::wemp_in(&dir, &["log", "--json", "--data-dir", "d"], &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains(SECRET), "the forward secret in the log:\n{text}");
    let entries: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let by_summary =
        |s: &str| entries.iter().find(|e| e["summary"] == s).unwrap_or_else(|| panic!("{s:?} not in {text}"));
    assert!(by_summary("rule").get("forward").is_none(), "a rule answered: no call to the app");
    let f = &by_summary("hello")["forward"];
    assert_eq!(f["target"], serde_json::json!({"kind": "url", "url": url}));
    assert_eq!((f["result"].as_str(), f["status"].as_u64()), (Some("reply"), Some(200)));
    let sent = f["sent"].as_str().unwrap();
    assert_eq!(sent.as_bytes(), &seen[0].1[..], "the JSON sent, as the app received it");
    assert_eq!(f["sent_bytes"].as_u64(), Some(seen[0].1.len() as u64));
    assert!(f["answer"].as_str().unwrap().contains(r#""type": "news""#), "{f}");
    assert!(f["latency_us"].as_u64().unwrap() > 0, "{f}");
    assert_eq!(f["error"], serde_json::Value::Null);
    let f = &by_summary("subscribe")["forward"];
    assert_eq!((f["result"].as_str(), f["answer"].as_str()), (Some("no_reply"), Some(r#"{"reply": null}"#)));
    let f = &by_summary("one")["forward"];
    assert_eq!(f["result"], "bad_answer");
    assert_eq!(f["answer"], r#"{"text": "not the contract"}"#);
    assert!(f["error"].as_str().unwrap().contains("no \"reply\" field"), "{f}");
    assert_eq!(by_summary("two")["forward"]["answer"], "<xml>nope</xml>");
}

/// `WEMP_LOG=info,wemp::forward=debug` prints one `forwarded` line per call that succeeded,
/// with its dedup key and reply type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_forwarded_call_is_logged_at_debug() {
    let platform = FakePlatform::start().await;
    let (url, seen) = recording_app(vec![(200, r#"{"reply": {"type": "text", "content": "hi"}}"#)]).await;
    let dir = temp_dir("gateway");
    std::fs::write(
        dir.join("wemp.toml"),
        config(&platform, "", &format!("[gateway]\nforward = \"{url}\"\n")),
    )
    .unwrap();
    let srv = ServeProc::start(
        &dir,
        &["--config", "wemp.toml", "--data-dir", "d"],
        &[("WEMP_API_BASE", &platform.url()), ("WEMP_LOG", "info,wemp::forward=debug")],
    );
    let (ok, out) = sim(&dir, &srv, &["text", "hello"]);
    assert!(ok && out.contains("hi"), "{out}");
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert!(srv.wait_stderr("forwarded", Duration::from_secs(5)), "{}", srv.stderr());
    let log = srv.stderr();
    let line = log.lines().find(|l| l.contains("forwarded")).unwrap();
    assert!(
        line.contains("DEBUG") && line.contains("dedup_key=msg:o_ann:") && line.contains("reply=\"text\""),
        "{line}"
    );
}

/// A failed forward is logged inside the message's span, whose context reads as it always
/// has: these lines as `wemp serve` wrote them before the span's values became `&str`s
/// (byte for byte past the time, but for the MsgId).
#[test]
fn a_failed_forward_is_logged_with_the_messages_context() {
    let dir = temp_dir("gateway-span");
    let hook = format!("http://127.0.0.1:{}/hook", common::free_port());
    let args = ["--listen", "127.0.0.1:0", "--data-dir", "d", "--token", "Tok123", "--forward", &hook];
    let (appid, aes_key) = (common::APPID, common::AES_KEY);
    let mut all = args.to_vec();
    all.extend(["--appid", appid, "--aes-key", aes_key, "--mode", "compatible"]);
    let srv = ServeProc::start(&dir, &all, &[("WEMP_LOG", "info")]);
    let o = srv.send(&dir, "compatible", &["event", "subscribe"]);
    assert!(o.status.success(), "{}", common::out(&o));
    let o = srv.send(&dir, "safe", &["text", "hello"]);
    assert!(o.status.success(), "{}", common::out(&o));
    let (_, log) = srv.stop();
    let lines: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_time, rest)| rest))
        .filter(|l| l.contains("wechat{"))
        .collect();
    let unreachable = format!("app at {hook} unreachable");
    let sending = format!("{unreachable}: error sending request for url ({hook})");
    let event =
        "wechat{appid=wx2c2769f8efd9abc2 mode=compatible msg_type=event/subscribe openid=o_we…user dedup=new";
    let text = "wechat{appid=wx2c2769f8efd9abc2 mode=safe msg_type=text openid=o_we…user dedup=new";
    let policy = "handler failed; answering per the error policy";
    let want = [
        format!(" WARN {event}}}: forwarding failed: {sending} dedup_key=event:o_wemp_sim_user:"),
        format!("ERROR {event} rule=\"fallback\"}}: {policy} error={sending}"),
        format!(" WARN {text}}}: forwarding failed: {sending} dedup_key=msg:o_wemp_sim_user:"),
        format!("ERROR {text} rule=\"fallback\"}}: {policy} error={sending}"),
    ];
    assert_eq!(lines.len(), want.len(), "{log}");
    for (line, want) in lines.iter().zip(&want) {
        if want.ends_with(':') {
            // The MsgId (or the event's time) and the latency vary.
            let latency = line.rsplit_once(" latency_ms=").map(|(_, ms)| ms.parse::<u64>());
            assert!(line.starts_with(want.as_str()) && matches!(latency, Some(Ok(_))), "{line}\n{want}");
        } else {
            assert_eq!(line, want, "{log}");
        }
    }
}

/// WeChat hangs up while the message's forward still waits on a slow app: the hang-up line
/// (written as the request's future is dropped) and, at the deadline, the line of the watch
/// that hang-up left behind (a task of its own) carry the message's context as the lines
/// inside it do; and so does the line of the handler's task when the app answers too late.
#[test]
fn a_hang_up_and_its_deadline_are_logged_with_the_messages_context() {
    use std::io::{Read, Write};
    let app = common::CountingApp::start("too late", Duration::from_millis(1500));
    let dir = temp_dir("gateway-hangup");
    let args = ["--listen", "127.0.0.1:0", "--data-dir", "d", "--token", "Tok123", "--forward", &app.url];
    let srv = ServeProc::start(&dir, &args, &[("WEMP_LOG", "info"), ("WEMP_DEADLINE", "800ms")]);
    let addr = srv.addr();
    let openid = "o_hangup_user";
    let (query, body) =
        (common::signed_query("Tok123", openid), common::text_xml(openid, 7_000_001, "hello"));
    let head = format!(
        "POST {}?{query} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
        srv.path(),
        body.len()
    );
    let mut caller = std::net::TcpStream::connect(&addr).unwrap();
    caller.write_all(head.as_bytes()).unwrap();
    caller.write_all(body.as_bytes()).unwrap();
    caller.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    assert!(caller.read(&mut [0_u8; 64]).is_err(), "no answer before the app's");
    drop(caller);
    // The deadline, then the app's late answer.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(app.calls(), 1);
    let (_, log) = srv.stop();
    let lines: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_time, rest)| rest))
        .filter(|l| l.contains("hung up") || l.contains("went away") || l.contains("late"))
        .collect();
    let span = "wechat{appid=default mode=plain msg_type=text openid=o_ha…user dedup=new";
    let want = [
        format!(" WARN {span}}}: the caller hung up before the answer latency_ms="),
        format!(
            " WARN {span}}}: the request went away before the handler finished and no retry waits \
             here; at the deadline its reply goes to the late sink"
        ),
    ];
    assert!(lines.len() >= 2, "{log}");
    assert!(lines[0].starts_with(&want[0]), "{}\n{log}", want[0]);
    assert_eq!(lines[1], want[1], "{log}");
    // What the handler's task logs when the reply comes too late (after the deadline).
    for line in &lines[2..] {
        assert!(line.contains(&format!("{span} rule=")), "{line}\n{log}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
