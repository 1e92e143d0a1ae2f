//! The Open Platform third-party platform (第三方平台) through the `wemp` binary over real
//! HTTP, with the fake platform as WeChat: the ticket push, `wemp component authorize-url`
//! and `list` (separate processes), an authorizer's messages answered by the rules and
//! sealed with the component key, the API proxy with the authorizer's token, a restart.
mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{ServeProc, temp_dir, wemp_in};
use wemp_proto::wechat::Platform;
use wemp_proto::{Cipher, Mode, Reply};
use wemp_testkit::platform::FakePlatform;

const PROXY_TOKEN: &str = "a-long-random-proxy-token";
const OPENID: &str = "oUserOfTheAuthorizer0000001";

fn config(platform: &FakePlatform) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"

[[accounts]]
token = "OaTok123"

[component]
appid = "{appid}"
token = "{token}"
aes_key = "{key}"
appsecret_file = "component.secret"

[api_proxy]
token = "{PROXY_TOKEN}"

[[rules]]
name = "price"
keyword = "price"
reply.text = "It costs 1 yuan."
"#,
        appid = platform.component_appid(),
        token = platform.component_token(),
        key = platform.component_aes_key(),
    )
}

/// What WeChat posts for an authorizer: signed and sealed with the component's Token and
/// key (ReceiveId: the component appid).
fn component_side(platform: &FakePlatform) -> Platform {
    let cipher = Cipher::new(&platform.component_aes_key(), &platform.component_appid()).unwrap();
    Platform::new(platform.component_token()).with_cipher(cipher)
}

async fn say(
    http: &reqwest::Client,
    platform: &FakePlatform,
    url: &str,
    content: &str,
    id: u64,
) -> (u16, String) {
    let body = format!(
        "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content><MsgId>{id}</MsgId>"
    );
    post(http, platform, url, &body, id).await
}

/// Posts a message or event whose elements after `CreateTime` are `body`, as WeChat does for
/// an authorizer.
async fn post(
    http: &reqwest::Client,
    platform: &FakePlatform,
    url: &str,
    body: &str,
    id: u64,
) -> (u16, String) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let xml = format!(
        "<xml><ToUserName><![CDATA[gh_authorizer]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>\
         <CreateTime>{now}</CreateTime>{body}</xml>"
    );
    let req = component_side(platform)
        .post(Mode::Safe, &xml, OPENID, "gh_authorizer", &now.to_string(), &id.to_string(), rand::random())
        .unwrap();
    let res = http.post(format!("{url}?{}", req.query_string())).body(req.body).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

fn reply_text(platform: &FakePlatform, body: &str) -> String {
    match component_side(platform).open_reply(body).unwrap_or_else(|e| panic!("{body:?}: {e}")).message.reply
    {
        Reply::Text { content } => content,
        other => panic!("not a text reply: {other:?}"),
    }
}

/// A fake platform and a directory holding `wemp.toml` (the [`config`], changed by `edit`)
/// and the component's AppSecret file.
async fn setup(tag: &str, edit: impl FnOnce(String) -> String) -> (FakePlatform, std::path::PathBuf) {
    let platform = FakePlatform::start().await;
    let dir = temp_dir(tag);
    std::fs::write(dir.join("wemp.toml"), edit(config(&platform))).unwrap();
    std::fs::write(dir.join("component.secret"), platform.component_secret()).unwrap();
    (platform, dir)
}

fn start(dir: &std::path::Path, platform: &FakePlatform) -> ServeProc {
    ServeProc::start(dir, &["--config", "wemp.toml"], &[("WEMP_API_BASE", &platform.url())])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_party_platform_serves_its_authorizers_from_ticket_to_restart() {
    let platform = FakePlatform::start().await;
    let dir = temp_dir("component");
    std::fs::write(dir.join("wemp.toml"), config(&platform)).unwrap();
    std::fs::write(dir.join("component.secret"), format!("{}\n", platform.component_secret())).unwrap();
    let api = [("WEMP_API_BASE", platform.url())];
    let api: Vec<(&str, &str)> = api.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let http = reqwest::Client::new();

    let srv = start(&dir, &platform);
    let screen = srv.stdout();
    assert!(
        screen.contains("授权事件接收 URL") && screen.contains(&format!("{}/component", srv.origin())),
        "{screen}"
    );
    assert!(screen.contains(&format!("{}/wechat/$APPID$", srv.origin())), "{screen}");
    assert!(screen.contains(&format!("{}/component/authorized", srv.origin())), "{screen}");
    let domain = screen.lines().find(|l| l.contains("授权发起页域名")).unwrap_or_default();
    assert!(domain.trim_end().ends_with(&format!(" {}", srv.addr())), "{screen}");
    let component_url = format!("{}/component", srv.origin());

    // Before any ticket, the CLI says why it cannot get a pre_auth_code.
    let early = wemp_in(
        &dir,
        &["component", "authorize-url", "--redirect", "https://example.com/cb", "--config", "wemp.toml"],
        &api,
    );
    assert!(!early.status.success(), "{early:?}");

    // 1. The ticket push is answered `success`.
    let pushed = platform.push_ticket(&component_url).await;
    assert_eq!((pushed.status, pushed.body.as_str()), (200, "success"), "{pushed:?}");
    let ticket = pushed.value.clone();

    // 2. A separate process uses that ticket for the component token and prints the URL.
    let out = wemp_in(
        &dir,
        &["component", "authorize-url", "--redirect", "https://example.com/cb", "--config", "wemp.toml"],
        &api,
    );
    let url = common::stdout(&out);
    assert!(out.status.success(), "{url}\n{}", common::stderr(&out));
    assert!(url.contains("componentloginpage?component_appid=") && url.contains("pre_auth_code="), "{url}");
    let token_call = platform.last_request("/cgi-bin/component/api_component_token").unwrap();
    assert!(String::from_utf8_lossy(&token_call.body).contains(&pushed.value), "the stored ticket was used");
    assert_eq!(platform.requests_to("/cgi-bin/component/api_create_preauthcode").len(), 1);
    // `wemp doctor` finds the ticket fresh and the component token fetchable.
    let doctor = wemp_in(&dir, &["doctor", "--config", "wemp.toml", "--json"], &api);
    let v: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let finding = |name: &str| {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name}: {v}"))
    };
    assert_eq!(finding("component_verify_ticket")["status"], "pass", "{v}");
    assert!(finding("component_verify_ticket")["details"][0].as_str().unwrap().contains("0 min ago"), "{v}");
    assert_eq!(finding("component_access_token")["status"], "pass", "{v}");

    // 3. An `authorized` push makes `wemp component list` show the authorizer.
    let appid = platform.appid();
    let pushed = platform.push_authorized(&component_url, &appid).await;
    assert_eq!((pushed.status, pushed.body.as_str()), (200, "success"), "{pushed:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let listing = loop {
        let out = wemp_in(&dir, &["component", "list", "--json", "--config", "wemp.toml"], &api);
        let text = common::stdout(&out);
        if out.status.success() && text.contains(&appid) {
            break serde_json::from_str::<serde_json::Value>(&text).unwrap();
        }
        assert!(Instant::now() < deadline, "no authorizer listed:\n{text}\n{}", srv.stderr());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(listing["authorizers"][0]["appid"], appid.as_str());
    assert_eq!(listing["authorizers"][0]["refresh_token_stored"], true);
    // The pushes are in the message log, typed, without the ticket or the code.
    let log = wemp_in(&dir, &["log", "--json", "--config", "wemp.toml"], &[]);
    let entries = common::json_lines(&log);
    let pushes: Vec<_> = entries.iter().filter(|e| e["msg_type"] == "component").collect();
    assert!(
        pushes
            .iter()
            .any(|e| e["event"] == "authorized" && e["summary"] == format!("authorized {appid}").as_str()),
        "{entries:?}"
    );
    assert!(pushes.iter().any(|e| e["event"] == "component_verify_ticket"), "{entries:?}");
    assert!(!common::stdout(&log).contains(&pushed.value), "no authorization code in the log");
    assert!(!common::stdout(&log).contains(&ticket), "no ticket in the log");

    // 4. A text message for the authorizer gets the keyword rule's reply, sealed with the
    //    component's key.
    let at = format!("{}/wechat/{appid}", srv.origin());
    let (status, body) = say(&http, &platform, &at, "price", 1).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(reply_text(&platform, &body), "It costs 1 yuan.");

    // 5. The API proxy calls the platform with the authorizer's token (it has no AppSecret:
    //    the token came with api_query_auth).
    let res = http
        .get(format!("{}/api/cgi-bin/user/get", srv.origin()))
        .bearer_auth(PROXY_TOKEN)
        .header("X-Wemp-Account", &appid)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
    let call = platform.last_request("/cgi-bin/user/get").unwrap();
    let used = call.query.get("access_token").cloned().unwrap_or_default();
    let component_token =
        platform.last_request("/cgi-bin/component/api_query_auth").unwrap().query["component_access_token"]
            .clone();
    assert!(!used.is_empty() && used != component_token, "{call:?}");
    assert!(
        platform.requests_to("/cgi-bin/token").is_empty()
            && platform.requests_to("/cgi-bin/stable_token").is_empty()
    );

    // Bad input: a forged push, an unknown authorizer.
    let forged = http
        .post(format!("{component_url}?signature=0&timestamp=1&nonce=2&encrypt_type=aes&msg_signature=3"))
        .body("<xml><AppId>x</AppId><Encrypt>AAAA</Encrypt></xml>")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    assert!(forged.text().await.unwrap().contains("signature"));
    let (status, body) =
        say(&http, &platform, &format!("{}/wechat/wx00000000000000aa", srv.origin()), "price", 2).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("wx00000000000000aa") && body.contains("authorizers"), "{body}");

    // 6. After a restart the authorizer is still served.
    let (status, _) = srv.stop();
    assert!(status.success());
    let srv = start(&dir, &platform);
    let (status, body) = say(&http, &platform, &format!("{}/wechat/{appid}", srv.origin()), "price", 3).await;
    assert_eq!(status, 200, "{body}\n{}", srv.stderr());
    assert_eq!(reply_text(&platform, &body), "It costs 1 yuan.");

    // `unauthorized` removes it.
    let pushed = platform.push_unauthorized(&format!("{}/component", srv.origin()), &appid).await;
    assert_eq!(pushed.body, "success");
    let (status, body) = say(&http, &platform, &format!("{}/wechat/{appid}", srv.origin()), "price", 4).await;
    assert_eq!(status, 404, "{body}");
    let (status, stderr) = srv.stop();
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Full-network release (全网发布): WeChat's automated cases answered for an authorizer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_network_release_answers_wechats_automated_cases() {
    let release = |c: String| c.replace("appsecret_file", "full_network_release = true\nappsecret_file");
    let (platform, dir) = setup("component-release", release).await;
    let http = reqwest::Client::new();
    let srv = start(&dir, &platform);
    let component_url = format!("{}/component", srv.origin());
    assert_eq!(platform.push_ticket(&component_url).await.body, "success");
    let appid = platform.appid();
    assert_eq!(platform.push_authorized(&component_url, &appid).await.body, "success");
    let at = format!("{}/wechat/{appid}", srv.origin());

    // The text case, once the authorization is exchanged and stored.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut id = 10;
    let (status, body) = loop {
        id += 1;
        let answer = say(&http, &platform, &at, "TESTCOMPONENT_MSG_TYPE_TEXT", id).await;
        if answer.0 == 200 || Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status, 200, "{body}");
    assert_eq!(reply_text(&platform, &body), "TESTCOMPONENT_MSG_TYPE_TEXT_callback");
    // An event: `<Event>from_callback`.
    let event = "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[LOCATION]]></Event>\
                 <Latitude>23.1</Latitude><Longitude>113.3</Longitude><Precision>50</Precision>";
    let (status, body) = post(&http, &platform, &at, event, 2).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(reply_text(&platform, &body), "LOCATIONfrom_callback");
    // The API case: an empty answer, then `<code>_from_api` through the customer-service API
    // with the authorizer's token.
    let code = platform.authorization_code(&appid);
    let (status, body) = say(&http, &platform, &at, &format!("QUERY_AUTH_CODE:{code}"), 3).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    let want = format!("{code}_from_api");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let sent = platform.sent_messages();
        if sent.iter().any(|m| m["touser"] == OPENID && m["text"]["content"] == want.as_str()) {
            break;
        }
        assert!(Instant::now() < deadline, "no customer-service message: {sent:?}\n{}", srv.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Other messages still go to the rules.
    let (_, body) = say(&http, &platform, &at, "price", 4).await;
    assert_eq!(reply_text(&platform, &body), "It costs 1 yuan.");
    let (status, stderr) = srv.stop();
    assert!(status.success() && !stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `wemp doctor` before `wemp serve` ever ran: no ticket can be stored yet, and the check
/// creates no database to find that out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_before_the_first_start_reports_no_ticket_and_writes_nothing() {
    let (platform, dir) = setup("component-doctor", |c| c).await;
    let base = platform.url();
    let doctor = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || wemp_in(&dir, &["doctor", "--config", "wemp.toml", "--json"], &[("WEMP_API_BASE", &base)])
    })
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let ticket =
        v["findings"].as_array().unwrap().iter().find(|f| f["name"] == "component_verify_ticket").unwrap();
    assert_eq!(ticket["status"], "fail", "{v}");
    assert!(ticket["details"][0].as_str().unwrap().contains("none stored yet"), "{v}");
    assert!(!dir.join("wemp-data").exists(), "doctor created the data directory or database");
    assert!(platform.requests_to("/cgi-bin/component/api_component_token").is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Without Redis, the component token `wemp serve` fetched is in the SQLite database, and a
/// separate `wemp component authorize-url` uses it instead of fetching its own; the pushes
/// are counted at the metrics path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_component_token_is_shared_by_serve_and_the_cli_on_sqlite() {
    let metrics = |c: String| c.replace("[server]\n", "[server]\nmetrics_path = \"/metrics\"\n");
    let (platform, dir) = setup("component-shared-token", metrics).await;
    let base = platform.url();
    let srv = start(&dir, &platform);
    let component_url = format!("{}/component", srv.origin());
    assert_eq!(platform.push_ticket(&component_url).await.body, "success");
    // `authorized` makes the server fetch the component token (for api_query_auth).
    let appid = platform.appid();
    assert_eq!(platform.push_authorized(&component_url, &appid).await.body, "success");
    let deadline = Instant::now() + Duration::from_secs(15);
    while platform.requests_to("/cgi-bin/component/api_query_auth").is_empty() {
        assert!(Instant::now() < deadline, "no api_query_auth:\n{}", srv.stderr());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token_calls = platform.requests_to("/cgi-bin/component/api_component_token");
    assert_eq!(token_calls.len(), 1, "{token_calls:?}");
    // The two pushes are counted at the metrics path like any request (safe mode).
    let metrics = reqwest::get(format!("{}/metrics", srv.origin())).await.unwrap().text().await.unwrap();
    let safe: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("wemp_requests_total{mode=\"safe\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(safe, 2, "{metrics}");
    let served_token =
        platform.last_request("/cgi-bin/component/api_query_auth").unwrap().query["component_access_token"]
            .clone();

    let out = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || {
            wemp_in(
                &dir,
                &[
                    "component",
                    "authorize-url",
                    "--redirect",
                    "https://example.com/cb",
                    "--config",
                    "wemp.toml",
                ],
                &[("WEMP_API_BASE", &base)],
            )
        }
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let token_calls = platform.requests_to("/cgi-bin/component/api_component_token");
    assert_eq!(token_calls.len(), 1, "the CLI fetched its own component token: {token_calls:?}");
    let pre = platform.last_request("/cgi-bin/component/api_create_preauthcode").unwrap();
    assert_eq!(pre.query["component_access_token"], served_token);
    let (status, stderr) = srv.stop();
    assert!(status.success() && !stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The authorization's redirect: `authorize-url` (without `--redirect`, from
/// `console.public_url`) sends the browser to the fake platform's authorization page, which
/// returns it to `wemp serve`'s `/component/authorized` with `auth_code`: the page exchanges
/// the code, stores and serves the authorizer and says which account it was; a refused or
/// missing code gets a 400 page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_redirect_page_adds_the_authorizer() {
    let (platform, dir) = setup("component-redirect", |c| c).await;
    let http = reqwest::Client::new();
    let srv = start(&dir, &platform);
    assert_eq!(platform.push_ticket(&format!("{}/component", srv.origin())).await.body, "success");
    let authorize_url = |public_url: Option<String>| {
        let (dir, base) = (dir.clone(), platform.url());
        tokio::task::spawn_blocking(move || {
            let mut env = vec![("WEMP_API_BASE", base.as_str())];
            if let Some(u) = &public_url {
                env.push(("WEMP_PUBLIC_URL", u.as_str()));
            }
            wemp_in(&dir, &["component", "authorize-url", "--config", "wemp.toml"], &env)
        })
    };

    // Without --redirect nor console.public_url, the CLI says what to give.
    let out = authorize_url(None).await.unwrap();
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("--redirect") && common::stderr(&out).contains("public_url"),
        "{out:?}"
    );
    // With console.public_url, the redirect is this server's page.
    let out = authorize_url(Some(format!("{}/wechat", srv.origin()))).await.unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let url = common::stdout(&out).trim().to_owned();
    let page = format!("{}/component/authorized", srv.origin());
    let parsed = reqwest::Url::parse(&url).unwrap();
    let redirect = parsed.query_pairs().find(|(k, _)| k == "redirect_uri").map(|(_, v)| v.into_owned());
    assert!(url.starts_with(&platform.url()) && redirect.as_deref() == Some(page.as_str()), "{url}");

    // The administrator approves; the browser comes back with auth_code.
    let res = http.get(&url).header("Accept-Language", "en-US,en;q=0.9").send().await.unwrap();
    let landed = res.url().clone();
    assert!(landed.as_str().starts_with(&page) && landed.query().unwrap().contains("auth_code="), "{landed}");
    assert_eq!(res.status().as_u16(), 200);
    let html = res.text().await.unwrap();
    let appid = platform.appid();
    assert!(html.contains("Authorization complete") && html.contains(&appid), "{html}");
    assert!(html.contains(&format!("authorizer {appid}")), "the nick name: {html}");
    let code = landed.query_pairs().find(|(k, _)| k == "auth_code").unwrap().1.into_owned();
    let refresh = platform.authorizer(&appid).unwrap().refresh_token;
    assert!(!html.contains(&code) && !html.contains(&refresh), "{html}");
    // Stored (another process lists it) and served at once.
    let base = platform.url();
    let listed = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || {
            wemp_in(
                &dir,
                &["component", "list", "--json", "--config", "wemp.toml"],
                &[("WEMP_API_BASE", &base)],
            )
        }
    })
    .await
    .unwrap();
    assert!(common::stdout(&listed).contains(&appid), "{listed:?}");
    // The console's setup page lists it (read-only), without its refresh token.
    let res = http.get(format!("{}/console/api/authorizers", srv.origin())).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let listed: serde_json::Value = res.json().await.unwrap();
    assert_eq!(listed["component"], true, "{listed}");
    assert_eq!(listed["authorizers"][0]["appid"], appid.as_str(), "{listed}");
    assert_eq!(listed["authorizers"][0]["nick_name"], format!("authorizer {appid}").as_str(), "{listed}");
    assert!(!listed.to_string().contains(&platform.authorizer(&appid).unwrap().refresh_token));
    let (status, body) = say(&http, &platform, &format!("{}/wechat/{appid}", srv.origin()), "price", 1).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(reply_text(&platform, &body), "It costs 1 yuan.");

    // A reload (or the `authorized` push with the same code) does not exchange it again.
    let again = http.get(landed.as_str()).send().await.unwrap();
    assert_eq!(again.status().as_u16(), 200);
    assert!(again.text().await.unwrap().contains("授权成功"), "Chinese without Accept-Language");
    assert_eq!(platform.requests_to("/cgi-bin/component/api_query_auth").len(), 1);

    // A code WeChat refuses, and none at all: 400 pages saying why.
    let res = http
        .get(format!("{page}?auth_code=queryauthcode%40%40%40forged&expires_in=3600"))
        .header("Accept-Language", "zh-CN,zh;q=0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("授权未完成") && html.contains("61010"), "{html}");
    let res = http.get(&page).header("Accept-Language", "en").send().await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert!(res.text().await.unwrap().contains("auth_code"));
    let (status, stderr) = srv.stop();
    assert!(status.success() && !stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains(&refresh) && !stderr.contains(&code), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two `wemp serve` sharing one SQLite database: WeChat pushes `authorized` to one, the
/// browser returns from the authorization page with the same code to the other. The code
/// is exchanged once (WeChat refuses a second exchange): the second instance finds it
/// exchanged — or waits while the first exchanges it — in the shared store, says which
/// account authorized, and serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_exchange_one_authorization_code_once() {
    let (platform, dir) = setup("component-two-instances", |c| c).await;
    let http = reqwest::Client::new();
    let (one, two) = (start(&dir, &platform), start(&dir, &platform));
    assert_eq!(platform.push_ticket(&format!("{}/component", one.origin())).await.body, "success");
    let appid = platform.appid();
    let pushed = platform.push_authorized(&format!("{}/component", one.origin()), &appid).await;
    assert_eq!((pushed.status, pushed.body.as_str()), (200, "success"), "{pushed:?}");

    // The redirect with the same code, to the other instance.
    let res = http
        .get(format!("{}/component/authorized", two.origin()))
        .query(&[("auth_code", pushed.value.as_str()), ("expires_in", "3600")])
        .header("Accept-Language", "en")
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let html = res.text().await.unwrap();
    assert_eq!(status, 200, "{html}\n{}\n{}", one.stderr(), two.stderr());
    assert!(html.contains("Authorization complete") && html.contains(&appid), "{html}");
    assert!(!html.contains("61010"), "{html}");
    assert_eq!(platform.requests_to("/cgi-bin/component/api_query_auth").len(), 1, "exchanged once");

    // Both instances serve the authorizer.
    for (n, srv) in [&one, &two].into_iter().enumerate() {
        let at = format!("{}/wechat/{appid}", srv.origin());
        let deadline = Instant::now() + Duration::from_secs(15);
        let (status, body) = loop {
            let answer = say(&http, &platform, &at, "price", 10 + n as u64).await;
            if answer.0 == 200 || Instant::now() > deadline {
                break answer;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(status, 200, "instance {n}: {body}");
        assert_eq!(reply_text(&platform, &body), "It costs 1 yuan.");
    }
    // A reload on the first instance: still the one exchange.
    let res = http
        .get(format!("{}/component/authorized", one.origin()))
        .query(&[("auth_code", pushed.value.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.text().await.unwrap().contains("授权成功"));
    assert_eq!(platform.requests_to("/cgi-bin/component/api_query_auth").len(), 1);
    for srv in [one, two] {
        let (status, stderr) = srv.stop();
        assert!(status.success() && !stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains(&pushed.value), "the code in a log line: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The console's chat plays the authorizers too: once an account authorizes, the console's
/// account list (the configured account, then the authorizer) offers it, and a message sent
/// as one of its users is signed with the component's Token, sealed with the component's key
/// for the component appid, posted to `/wechat/<authorizer appid>` and answered by the rules;
/// the server's record of it is tagged with the authorizer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_chats_as_a_user_of_an_authorizer() {
    let (platform, dir) = setup("component-console", |c| c).await;
    let http = reqwest::Client::new();
    let srv = start(&dir, &platform);
    let base = format!("{}/console", srv.origin());
    let page = http.get(format!("{base}/")).send().await.unwrap().text().await.unwrap();
    let at = page.find("name=\"wemp-csrf\"").expect("no CSRF meta");
    let csrf = page[at..].split("content=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let config = || async {
        let res = http.get(format!("{base}/api/config")).send().await.unwrap();
        res.json::<serde_json::Value>().await.unwrap()
    };
    let ids = |cfg: &serde_json::Value| -> Vec<String> {
        cfg["accounts"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(&config().await).len(), 1, "only the configured account before any authorization");

    assert_eq!(platform.push_ticket(&format!("{}/component", srv.origin())).await.body, "success");
    let appid = platform.appid();
    assert_eq!(
        platform.push_authorized(&format!("{}/component", srv.origin()), &appid).await.body,
        "success"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let cfg = loop {
        let cfg = config().await;
        if ids(&cfg).contains(&appid) || Instant::now() > deadline {
            break cfg;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ids(&cfg)[1], appid, "{cfg}");
    let authorizer = &cfg["accounts"][1];
    assert_eq!(authorizer["path"], format!("/wechat/{appid}").as_str(), "{cfg}");
    assert_eq!(authorizer["mode"], "safe", "{cfg}");
    assert_eq!(authorizer["component"], platform.component_appid().as_str(), "{cfg}");
    assert!(authorizer["original_id"].as_str().unwrap().starts_with("gh_"), "{cfg}");
    assert!(cfg["accounts"][0]["component"].is_null(), "{cfg}");

    let user = cfg["users"][0]["openid"].as_str().unwrap().to_owned();
    let send = |account: &str, with_csrf: bool| {
        let body = serde_json::json!({ "user": user, "account": account, "action": { "kind": "text", "content": "price" } });
        let mut req = http.post(format!("{base}/api/send")).json(&body);
        if with_csrf {
            req = req.header("X-Wemp-Csrf", &csrf);
        }
        req.send()
    };
    let res = send(&appid, true).await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let res: serde_json::Value = res.json().await.unwrap();
    assert_eq!(res["account"], appid.as_str(), "{res}");
    assert_eq!(res["encrypted"], true, "{res}");
    assert_eq!(res["sees"]["kind"], "reply", "{res}");
    assert_eq!(res["sees"]["reply"]["content"], "It costs 1 yuan.", "{res}");
    let tries = res["attempts"].as_array().unwrap();
    assert_eq!(tries.len(), 1, "{res}");
    // The server's record of it names the authorizer and was admitted with the component's keys.
    let record = res["server"].as_array().unwrap().iter().find(|e| e["account"] == appid.as_str());
    assert!(record.is_some(), "{res}");
    assert_eq!(record.unwrap()["record"]["outcome"]["kind"], "answered", "{res}");
    // An account the console does not play: a 400 naming those it does.
    let res = send("wx00000000000000aa", true).await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains(&format!("\"{appid}\"")), "{body}");

    // Unauthorized: no longer offered nor played.
    let pushed = platform.push_unauthorized(&format!("{}/component", srv.origin()), &appid).await;
    assert_eq!(pushed.body, "success");
    assert!(!ids(&config().await).contains(&appid));
    assert_eq!(send(&appid, true).await.unwrap().status().as_u16(), 400);
    let (status, stderr) = srv.stop();
    assert!(status.success() && !stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A server with only `[component]` — no `[[accounts]]`, the usual SaaS deployment — has a
/// console from the start: before any authorization its config lists no account and says the
/// server is a third-party platform, what needs an account answers how to authorize one
/// (`wemp component authorize-url`), and the authorizers are listed (none); after an
/// `authorized` push the authorizer is its (default) account and answers the chat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_without_accounts_of_its_own_has_a_console() {
    let (platform, dir) = setup("component-console-only", |c| {
        let only = c.replace("[[accounts]]\ntoken = \"OaTok123\"\n", "");
        assert_ne!(only, c, "the config's account was not removed");
        only
    })
    .await;
    let http = reqwest::Client::new();
    let srv = start(&dir, &platform);
    // No Token generated into the config for an account it does not have, and nothing to
    // `wemp sim` before an account authorizes; the console is on the screen.
    let written = std::fs::read_to_string(dir.join("wemp.toml")).unwrap();
    assert!(!written.contains("[[accounts]]") && !written.contains("generated"), "{written}");
    let screen = srv.stdout();
    assert!(!screen.contains("wemp sim send") && screen.contains("/console/"), "{screen}");
    // It says how an account authorizes, with a command that reads this server's config.
    assert!(screen.contains("wemp component authorize-url --config"), "{screen}");
    let base = format!("{}/console", srv.origin());
    let page = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200, "no console for a platform without accounts");
    let page = page.text().await.unwrap();
    let at = page.find("name=\"wemp-csrf\"").expect("no CSRF meta");
    let csrf = page[at..].split("content=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let get = |path: &str| {
        let req = http.get(format!("{base}/api/{path}"));
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, cfg) = get("config").await;
    assert_eq!(status, 200, "{cfg}");
    assert_eq!(cfg["accounts"], serde_json::json!([]), "{cfg}");
    assert!(cfg["account"].is_null() && cfg["component"] == true, "{cfg}");
    let (status, setup) = get("setup").await;
    assert_eq!((status, setup["code"].as_str()), (404, Some("no-account")), "{setup}");
    assert!(setup["error"].as_str().unwrap().contains("wemp component authorize-url"), "{setup}");
    assert_eq!(get("authorizers").await, (200, serde_json::json!({ "component": true, "authorizers": [] })));
    let user = cfg["users"][0]["openid"].as_str().unwrap().to_owned();
    let send = || {
        let body = serde_json::json!({ "user": user, "action": { "kind": "text", "content": "price" } });
        http.post(format!("{base}/api/send")).header("X-Wemp-Csrf", &csrf).json(&body).send()
    };
    let res = send().await.unwrap();
    assert_eq!(res.status().as_u16(), 404);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["code"], "no-account");

    let pushes = format!("{}/component", srv.origin());
    assert_eq!(platform.push_ticket(&pushes).await.body, "success");
    let appid = platform.appid();
    assert_eq!(platform.push_authorized(&pushes, &appid).await.body, "success");
    let deadline = Instant::now() + Duration::from_secs(15);
    let cfg = loop {
        let (_, cfg) = get("config").await;
        if cfg["accounts"].as_array().is_some_and(|a| !a.is_empty()) || Instant::now() > deadline {
            break cfg;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(cfg["accounts"].as_array().map(Vec::len), Some(1), "{cfg}");
    assert_eq!(cfg["account"]["id"], appid.as_str(), "the authorizer is the default account: {cfg}");
    assert_eq!(cfg["account"]["component"], platform.component_appid().as_str(), "{cfg}");
    assert_eq!(cfg["endpoint"], format!("{}/wechat/{appid}", srv.origin()).as_str(), "{cfg}");
    let (_, listed) = get("authorizers").await;
    assert_eq!(listed["authorizers"][0]["appid"], appid.as_str(), "{listed}");
    let (status, setup) = get("setup").await;
    assert_eq!((status, setup["account"].as_str()), (200, Some(appid.as_str())), "{setup}");
    let res = send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let res: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        (res["account"].as_str(), res["encrypted"].as_bool()),
        (Some(appid.as_str()), Some(true)),
        "{res}"
    );
    assert_eq!(res["sees"]["reply"]["content"], "It costs 1 yuan.", "{res}");
    let (status, stderr) = srv.stop();
    assert!(status.success() && !stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
