//! The web console mounted in `wemp serve` (the built binary): its path, its API playing
//! WeChat against the server, the reload button taking the same path as SIGHUP, and the
//! `[console]` / `[menu]` settings with their errors. The browser side is tested by
//! `crates/wemp-console/e2e` (headless Chromium).

mod common;

use std::time::Duration;

use common::{ServeProc, temp_dir, wemp_in};
use serde_json::{Value, json};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/wemp.toml");

/// The console page's CSRF token (`<meta name="wemp-csrf" content="…">`).
fn csrf(page: &str) -> String {
    let at = page.find("name=\"wemp-csrf\"").expect("no CSRF meta");
    let rest = &page[at..];
    let start = rest.find("content=\"").unwrap() + "content=\"".len();
    rest[start..start + rest[start..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn serve_mounts_the_console_at_its_path_and_the_reload_button_reloads_like_sighup() {
    let dir = temp_dir("console");
    let config = dir.join("wemp.toml");
    std::fs::copy(EXAMPLE, &config).unwrap();
    let srv = ServeProc::start(
        &dir,
        &["--config", config.to_str().unwrap()],
        &[("WEMP_LISTEN", "127.0.0.1:0"), ("WEMP_CONSOLE_PATH", "/ops/console")],
    );
    let origin = srv.origin();
    let base = format!("{origin}/ops/console");
    assert!(
        srv.stdout()
            .contains(&format!("Web console (chat as a user, live log, setup): {base}/ (this machine only)")),
        "{}",
        srv.stdout()
    );
    let http = reqwest::Client::new();
    let get = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.unwrap() }
    };
    assert_eq!(get(format!("{origin}/console/")).await.status(), 404, "not at the default path");
    let page = get(format!("{base}/")).await;
    assert_eq!(page.status(), 200);
    let csrf = csrf(&page.text().await.unwrap());

    // The console knows the account and the [menu] of the config.
    let cfg: Value = get(format!("{base}/api/config")).await.json().await.unwrap();
    assert_eq!(cfg["account"]["name"], "demo");
    assert_eq!(cfg["account"]["mode"], "plain");
    let menu: Vec<&str> =
        cfg["menu"]["button"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(menu, ["News", "More", "Contact"]);
    let user = cfg["users"][0]["openid"].as_str().unwrap().to_owned();
    let rules: Value = get(format!("{base}/api/rules")).await.json().await.unwrap();
    let rules = rules["rules"].as_array().unwrap().clone();
    assert_eq!(rules.len(), 15);
    assert!(
        rules.iter().any(|r| r["name"] == "menu: a slow answer" && r["when"] == "event CLICK, key \"SLOW\"")
    );

    // A click from the chat goes through the callback URL; the server's own record comes back.
    let post = |path: &str, body: Value, with_csrf: bool| {
        let mut req = http.post(format!("{base}/api/{path}")).json(&body);
        if with_csrf {
            req = req.header("X-Wemp-Csrf", &csrf);
        }
        req.send()
    };
    let click = json!({ "user": user, "action": { "kind": "click", "key": "NEWS" } });
    assert_eq!(post("send", click.clone(), false).await.unwrap().status(), 403, "CSRF token required");
    let res: Value = post("send", click, true).await.unwrap().json().await.unwrap();
    assert_eq!(res["sees"]["kind"], "reply", "{res}");
    assert_eq!(res["sees"]["reply"]["type"], "news", "{res}");
    // The entry wraps the server's record: its typed outcome, the reply it sent, what arrived.
    let server = &res["server"][0];
    assert_eq!(server["record"]["outcome"]["kind"], "answered", "{res}");
    assert_eq!(server["reply"]["type"], "news", "{res}");
    assert_eq!(server["record"]["dedup"], "new", "{res}");
    assert!(server["record"]["query"]["signature"].is_string(), "{res}");
    assert!(!server["record"]["checks"].as_array().unwrap().is_empty(), "{res}");

    // The reload button: a broken file is refused with its line, the old rules stay.
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, good.replace("keyword = [\"help\", \"帮助\"]", "regex = \"(\"")).unwrap();
    let res = post("rules/reload", json!({}), true).await.unwrap();
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(error.contains(&format!("{}:", config.display())) && error.contains(".regex"), "{error}");
    assert_eq!(body["rules"].as_array().unwrap().len(), 15);
    // Fixed: reloaded through the same path as SIGHUP, which logs it.
    std::fs::write(&config, good.replace("Docs: https://example.com/wemp", "Docs: https://example.com/v2"))
        .unwrap();
    let res = post("rules/reload", json!({}), true).await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["report"], "15 rules in effect", "{body}");
    assert!(
        srv.wait_stderr("rules reloaded (reload from the web console)", Duration::from_secs(10)),
        "{}",
        srv.stderr()
    );
    let help = json!({ "user": user, "action": { "kind": "text", "content": "help" } });
    let res: Value = post("send", help, true).await.unwrap().json().await.unwrap();
    assert!(res["sees"]["reply"]["content"].as_str().unwrap().ends_with("https://example.com/v2"), "{res}");
    let (status, err) = srv.stop();
    assert!(status.success(), "{status}: {err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_console_can_be_turned_off_and_a_bad_menu_names_its_line() {
    let dir = temp_dir("console-off");
    let srv = ServeProc::start(
        &dir,
        &["--listen", "127.0.0.1:0", "--token", "Tok123"],
        &[("WEMP_CONSOLE", "false"), ("WEMP_DATA_DIR", dir.to_str().unwrap())],
    );
    assert!(
        srv.stdout().contains("Web console (chat as a user, live log, setup): off (console.enabled = false)")
    );
    let res = reqwest::get(format!("{}/console/", srv.origin())).await.unwrap();
    assert_eq!(res.status(), 404);
    drop(srv);

    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[accounts]]\ntoken = \"Tok123\"\n\n[[menu.button]]\ntype = \"click\"\nname = \"News\"\n\n\
         [[menu.button]]\ntype = \"click\"\nname = \"Music\"\nkey = \"\"\n",
    )
    .unwrap();
    let o = wemp_in(&dir, &["serve", "--config", bad.to_str().unwrap(), "--listen", "127.0.0.1:0"], &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.toml:4: menu.button[0].key: a click button needs a key"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn wrong_console_logins_are_logged_and_throttled_and_logout_revokes_the_session() {
    let dir = temp_dir("console-login");
    let config = dir.join("wemp.toml");
    std::fs::copy(EXAMPLE, &config).unwrap();
    let srv = ServeProc::start(
        &dir,
        &["--config", config.to_str().unwrap()],
        &[("WEMP_LISTEN", "127.0.0.1:0"), ("WEMP_CONSOLE_TOKEN", "right-admin-token")],
    );
    let base = format!("{}/console", srv.origin());
    let client = |from: [u8; 4]| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(std::net::IpAddr::from(from))
            .build()
            .unwrap()
    };
    let login = |http: reqwest::Client, token: &'static str| {
        let url = format!("{base}/login");
        async move { http.post(url).form(&[("token", token)]).send().await.unwrap() }
    };

    // One peer guessing: each failure logged with its address, then 429 with Retry-After.
    let guesser = client([127, 0, 0, 1]);
    for _ in 0..wemp_console::MAX_FAILURES {
        assert_eq!(login(guesser.clone(), "guess").await.status(), 401);
    }
    let refused = login(guesser.clone(), "guess").await;
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(login(guesser.clone(), "right-admin-token").await.status(), 429, "throttled even when right");
    // The last failure's line, not the first: the lines reach standard error one by one,
    // and counting after the first one raced with the rest on a loaded machine.
    let last = format!("failures={}", wemp_console::MAX_FAILURES);
    assert!(srv.wait_stderr(&last, Duration::from_secs(5)), "{}", srv.stderr());
    let failures = srv.stderr().lines().filter(|l| l.contains("console login failed")).count();
    assert_eq!(failures, wemp_console::MAX_FAILURES as usize, "{}", srv.stderr());
    assert!(srv.stderr().lines().any(|l| l.contains("console login failed") && l.contains("127.0.0.1")));
    assert!(!srv.stderr().contains("guess") && !srv.stderr().contains("right-admin-token"));

    // Another peer logs in: a random session id, not derived from the token; logout revokes it.
    let admin = client([127, 0, 0, 2]);
    let ok = login(admin.clone(), "right-admin-token").await;
    assert_eq!(ok.status(), 303);
    let set = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.contains("HttpOnly") && !set.contains("Secure"), "{set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = |cookie: String| {
        let (admin, url) = (admin.clone(), format!("{base}/"));
        async move { admin.get(url).header("cookie", cookie).send().await.unwrap() }
    };
    let index = page(cookie.clone()).await;
    assert_eq!(index.status(), 200);
    let csrf = csrf(&index.text().await.unwrap());
    // The doctor has side effects: GET is refused, POST needs the CSRF token.
    let doctor = |method: reqwest::Method, csrf: Option<&str>| {
        let mut rb = admin.request(method, format!("{base}/api/doctor")).header("cookie", cookie.clone());
        if let Some(c) = csrf {
            rb = rb.header("x-wemp-csrf", c);
        }
        async move { rb.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(doctor(reqwest::Method::GET, None).await, 405);
    assert_eq!(doctor(reqwest::Method::POST, None).await, 403);
    assert_eq!(doctor(reqwest::Method::POST, Some(&csrf)).await, 200);
    let out = admin.post(format!("{base}/logout")).header("cookie", cookie.clone()).send().await.unwrap();
    assert_eq!(out.status(), 303);
    assert_eq!(page(cookie.clone()).await.status(), 401, "the cookie still worked after logout");

    // Behind an HTTPS proxy the cookie is Secure.
    let https = admin
        .post(format!("{base}/login"))
        .header("x-forwarded-proto", "https")
        .form(&[("token", "right-admin-token")])
        .send()
        .await
        .unwrap();
    assert!(https.headers()["set-cookie"].to_str().unwrap().contains("; Secure"));
}

/// A caller that hangs up before the answer (WeChat gives up after 5 s) reaches the live
/// log through the server's observer, with what arrived, how long it waited and the call to
/// the app its handler made: the built binary on its defaults (console on), a plain-mode
/// message sent by hand to a server forwarding to an app that answers after 3 s, the
/// connection closed after 300 ms; the message still reached the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_hangs_up_reaches_the_live_log_with_what_arrived() {
    use std::io::{Read as _, Write as _};

    let app = common::CountingApp::start("late", Duration::from_secs(3));
    let dir = temp_dir("console-hangup");
    let srv = ServeProc::start(
        &dir,
        &["--listen", "127.0.0.1:0", "--token", "HangupTok1", "--forward", &app.url, "--data-dir", "d"],
        &[],
    );
    let addr = srv.addr();
    let body = common::text_xml("oHangup", 4242, "are you there");
    let head = format!(
        "POST /wechat?{} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: Mozilla/4.0\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
        common::signed_query("HangupTok1", "oHangup"),
        body.len()
    );
    let mut caller = std::net::TcpStream::connect(&addr).unwrap();
    caller.write_all(head.as_bytes()).unwrap();
    caller.write_all(body.as_bytes()).unwrap();
    caller.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut buf = [0_u8; 64];
    assert!(caller.read(&mut buf).is_err(), "no answer within 300 ms: the app takes 3 s");
    drop(caller);

    // The live log, as the console page reads it (Server-Sent Events, this machine only).
    let http = reqwest::Client::new();
    let mut events = http.get(format!("{}/console/api/events", srv.origin())).send().await.unwrap();
    assert_eq!(events.status(), 200);
    let mut seen = String::new();
    let hung_up = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = events.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(line) =
                seen.lines().filter_map(|l| l.strip_prefix("data:")).find(|l| l.contains("\"hung_up\""))
            {
                return serde_json::from_str::<Value>(line.trim()).unwrap();
            }
        }
        panic!("the live log ended: {seen}");
    })
    .await
    .unwrap_or_else(|_| panic!("no hung-up entry in the live log within 10 s: {seen}"));
    // The server's own record (the console's tap no longer makes one).
    assert_eq!(hung_up["source"], "observer", "{hung_up}");
    assert_eq!(hung_up["record"]["outcome"]["kind"], "hung_up", "{hung_up}");
    assert_eq!(hung_up["record"]["status"], 0, "no answer went out: {hung_up}");
    assert_eq!(hung_up["record"]["query"]["openid"], "oHangup", "what arrived: {hung_up}");
    assert_eq!(hung_up["record"]["headers"]["user-agent"], "Mozilla/4.0", "{hung_up}");
    let waited = hung_up["record"]["latency_us"].as_u64().unwrap_or_else(|| panic!("{hung_up}"));
    assert!((250_000..3_000_000).contains(&waited), "waited about 300 ms, not the app's 3 s: {hung_up}");
    // The message was still handled: the app got it once, and the record, which waited for
    // the handler (the app answered at 3 s, within the deadline), holds its call.
    assert_eq!(app.calls(), 1);
    assert_eq!(hung_up["record"]["forward"]["status"], 200, "the app's call: {hung_up}");
    let answer = hung_up["record"]["forward"]["answer"].as_str().unwrap_or_default();
    assert!(answer.contains(r#""content":"late""#), "the app's answer: {hung_up}");
}
