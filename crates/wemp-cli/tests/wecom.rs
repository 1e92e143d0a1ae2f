//! One `wemp serve` for an Official Account, a WeCom app and a Mini Program, through the
//! binary over real HTTP, with the fake platform as the API.
mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{ServeProc, temp_dir};
use wemp_proto::wechat::{Platform, SignedRequest};
use wemp_proto::{Cipher, Document, Mode, Reply};
use wemp_testkit::platform::FakePlatform;

const OA_APPID: &str = "wx2c2769f8efd9abc2";
const CORP_TOKEN: &str = "CorpTok123";
const CORP_KEY: &str = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR";
const MINI_TOKEN: &str = "MiniTok123";
const MINI_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

fn config(platform: &FakePlatform) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"

[[accounts]]
name = "oa"
token = "OaTok123"
appid = "{OA_APPID}"
path = "/wechat"

[[accounts]]
kind = "wecom"
name = "corp"
corpid = "{corpid}"
agentid = "{agentid}"
token = "{CORP_TOKEN}"
aes_key = "{CORP_KEY}"
appsecret = "{corp_secret}"
path = "/wechat/corp"

[[accounts]]
kind = "miniprogram"
name = "mini"
appid = "{mini}"
token = "{MINI_TOKEN}"
aes_key = "{MINI_KEY}"
appsecret = "{secret}"
path = "/wechat/mini"

[[rules]]
name = "price"
keyword = "price"
reply.text = "It costs 1 yuan."
"#,
        corpid = platform.corpid(),
        agentid = platform.agentid(),
        corp_secret = platform.corp_secret(),
        mini = platform.appid(),
        secret = platform.secret(),
    )
}

fn now() -> String {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs().to_string()
}

fn text_xml(to: &str, from: &str, content: &str, msg_id: u64, agent: Option<&str>) -> String {
    let agent = agent.map(|a| format!("<AgentID>{a}</AgentID>")).unwrap_or_default();
    format!(
        "<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{from}]]></FromUserName>\
         <CreateTime>{}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>\
         <MsgId>{msg_id}</MsgId>{agent}</xml>",
        now()
    )
}

/// Posts a signed request (JSON or XML, as its body says) and returns the status and body.
async fn post_signed(http: &reqwest::Client, url: &str, req: SignedRequest) -> (u16, String) {
    let content_type = if Document::looks_like_json(&req.body) { "application/json" } else { "text/xml" };
    let res = http
        .post(format!("{url}?{}", req.query_string()))
        .header("content-type", content_type)
        .body(req.body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Waits for the fake platform to have sent `text` to `openid` by customer-service message.
async fn wait_cs(platform: &FakePlatform, srv: &ServeProc, openid: &str, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let sent = platform.sent_messages();
        if sent
            .iter()
            .any(|m| m["touser"] == openid && m["msgtype"] == "text" && m["text"]["content"] == text)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no customer-service message to {openid}: {sent:?}\n{}",
            srv.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The fake platform, a fresh directory with [`config`] and `wemp serve` on it.
async fn serve_all_three(tag: &str) -> (FakePlatform, std::path::PathBuf, ServeProc) {
    let platform = FakePlatform::start().await;
    let dir = temp_dir(tag);
    std::fs::write(dir.join("wemp.toml"), config(&platform)).unwrap();
    let srv = ServeProc::start(
        &dir,
        &["--config", "wemp.toml", "--data-dir", "d"],
        &[("WEMP_API_BASE", &platform.url()), ("WEMP_LOG", "info")],
    );
    (platform, dir, srv)
}

/// The setup screen names, for each kind, the console it is configured in and what to paste
/// there: the Official Account's 消息推送配置, the WeCom app's 设置API接收 (no mode: WeCom
/// always encrypts), the Mini Program's 消息推送配置 with its data format and the note that
/// its replies go through the customer-service API; in English and in Chinese.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_screen_says_where_each_kind_is_configured() {
    let platform = FakePlatform::start().await;
    let dir = temp_dir("kinds-screen");
    std::fs::write(dir.join("wemp.toml"), config(&platform)).unwrap();
    let agentid = platform.agentid();
    let args = ["--config", "wemp.toml", "--data-dir", "d"];
    let screen = |lang: &str| ServeProc::start(&dir, &args, &[("LANG", lang), ("LC_ALL", "")]).stdout();

    let en = screen("en_US.UTF-8");
    let blocks: Vec<&str> = en.split("\n\n").filter(|b| b.contains("Paste into")).collect();
    assert_eq!(blocks.len(), 3, "{en}");
    let [oa, corp, mini] = [blocks[0], blocks[1], blocks[2]];
    assert!(oa.starts_with("Paste into the WeChat Developer Platform for oa ("), "{oa}");
    assert!(oa.contains("  消息加解密方式  明文模式 (plain)"), "{oa}");
    let want = format!(
        "Paste into the WeCom admin console for corp (work.weixin.qq.com → 应用管理 → the app with AgentID \
         {agentid} → 接收消息 → 设置API接收):\n  URL             "
    );
    assert!(corp.starts_with(&want), "{corp}");
    assert!(corp.contains("/wechat/corp\n"), "{corp}");
    assert!(
        corp.contains("  EncodingAESKey  (not shown: output is not a terminal; it is accounts[1].aes_key in")
    );
    assert!(!corp.contains("消息加解密方式"), "WeCom has no mode to choose:\n{corp}");
    assert!(
        mini.starts_with(
            "Paste into the Mini Program admin console for mini (mp.weixin.qq.com → 管理 → 开发管理 → 消息推送配置):"
        ),
        "{mini}"
    );
    assert!(mini.contains("/wechat/mini\n"), "{mini}");
    assert!(
        mini.contains("  数据格式        XML or JSON (either: wemp reads the one the push uses)\n"),
        "{mini}"
    );
    assert!(mini.contains("sends each reply through the customer-service API"), "{mini}");
    assert!(!oa.contains("数据格式") && !corp.contains("数据格式"), "{en}");

    let zh = screen("zh_CN.UTF-8");
    for want in [
        "请在微信开发者平台为 oa 填写（developers.weixin.qq.com/platform → 我的业务 → 公众号/服务号 → 基础信息 → 消息推送配置）：",
        &format!(
            "请在企业微信管理后台为 corp 填写（work.weixin.qq.com → 应用管理 → AgentID 为 {agentid} 的应用 → 接收消息 → 设置API接收）："
        ),
        "请在小程序管理后台为 mini 填写（mp.weixin.qq.com → 管理 → 开发管理 → 消息推送配置）：",
        "  数据格式           XML 或 JSON（任选：wemp 按推送的格式读取）\n",
        "小程序不接受被动回复：wemp 先回 success，再通过客服消息接口发出每条回复。",
    ] {
        assert!(zh.contains(want), "the Chinese screen lacks {want:?}:\n{zh}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A WeCom account with no AgentID is a service provider's suite (第三方应用), whose
/// callbacks are sealed for its SuiteID: the setup screen says to paste it as the suite's
/// 指令回调URL in the service provider admin (never "the app with AgentID ?"), and what an
/// app of one's own corp would need instead; `wemp doctor` says the same of the missing
/// AgentID. In English and in Chinese.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suite_callback_says_what_it_is() {
    const SUITE: &str = "wwsuite0123456789abcd";
    let dir = temp_dir("kinds-suite");
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n\
         [[accounts]]\nname = \"oa\"\ntoken = \"OaTok123\"\nappid = \"{OA_APPID}\"\npath = \"/wechat\"\n\n\
         [[accounts]]\nkind = \"wecom\"\nname = \"crm\"\ncorpid = \"{SUITE}\"\ntoken = \"{CORP_TOKEN}\"\n\
         aes_key = \"{CORP_KEY}\"\npath = \"/wechat/suite\"\n"
    );
    std::fs::write(dir.join("wemp.toml"), cfg).unwrap();
    let args = ["--config", "wemp.toml", "--data-dir", "d"];
    let screen = |lang: &str| ServeProc::start(&dir, &args, &[("LANG", lang), ("LC_ALL", "")]).stdout();

    let en = screen("en_US.UTF-8");
    let suite = en.split("\n\n").find(|b| b.contains("/wechat/suite")).unwrap_or_else(|| panic!("{en}"));
    assert!(
        suite.starts_with(&format!(
            "Paste into the WeCom service provider admin for crm as the 指令回调URL of the third-party app \
             (第三方应用) with SuiteID {SUITE} (open.work.weixin.qq.com → 应用管理 → the app → 回调配置); an app of \
             your own corp needs accounts[1].agentid:\n  URL             "
        )),
        "{suite}"
    );
    assert!(!en.contains("AgentID ?") && !en.contains("AgentID {"), "{en}");
    let zh = screen("zh_CN.UTF-8");
    let want = format!(
        "请在企业微信服务商管理后台为 crm 填写 SuiteID 为 {SUITE} 的第三方应用的指令回调URL（open.work.weixin.qq.com → \
         应用管理 → 该应用 → 回调配置）；若是本企业的自建应用，请设置 accounts[1].agentid："
    );
    assert!(zh.contains(&want), "{zh}");
    assert!(!zh.contains("AgentID 为 ?"), "{zh}");

    let o = common::wemp_in(&dir, &["doctor", "--config", "wemp.toml"], &[("LANG", "C")]);
    let text = common::out(&o);
    assert!(
        text.contains("WARN  accounts[1] AgentID")
            && text.contains("not set: right for a service provider's suite (第三方应用)"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_serves_an_official_account_a_wecom_app_and_a_mini_program() {
    let (platform, _dir, srv) = serve_all_three("wecom").await;
    let origin = srv.url.strip_suffix("/wechat").unwrap().to_owned();
    let http = reqwest::Client::new();
    let corpid = platform.corpid();
    let agentid = platform.agentid();
    let corp = Platform::new(CORP_TOKEN).with_cipher(Cipher::new(CORP_KEY, &corpid).unwrap());

    // WeCom URL verification: the encrypted echostr is answered in plaintext.
    let ts = now();
    let get = corp.wecom_verification(&ts, "1234", "echo-5927782489442352469", [7; 16]).unwrap();
    let res = http.get(format!("{origin}/wechat/corp?{}", get.query_string())).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "echo-5927782489442352469");
    // A forged msg_signature is refused, and nothing is echoed.
    let forged = get.query_string().replace(get.param("msg_signature").unwrap(), &"0".repeat(40));
    let res = http.get(format!("{origin}/wechat/corp?{forged}")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let body = res.text().await.unwrap();
    assert!(body.contains("msg_signature") && !body.contains("echo-5927"), "{body}");
    // The Official Account's plain verification still works beside it.
    let oa = Platform::new("OaTok123").verification(&ts, "99", "plain-echo");
    let res = http.get(format!("{origin}/wechat?{}", oa.query_string())).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "plain-echo");

    // A WeCom text gets the keyword rule's reply, sealed for the corpid.
    let xml = text_xml(&corpid, "zhangsan", "price", 6_000_000_000_000_000_001, Some(&agentid));
    let post = corp.wecom_post(&xml, Some(&agentid), &ts, "5678", [8; 16]).unwrap();
    let (status, body) = post_signed(&http, &format!("{origin}/wechat/corp"), post).await;
    assert_eq!(status, 200, "{body}");
    let opened = corp.open_reply(&body).unwrap_or_else(|e| panic!("{e}: {body}\n{}", srv.stderr()));
    assert!(opened.encrypted, "{body}");
    assert_eq!(opened.message.reply, Reply::text("It costs 1 yuan."));
    let header = opened.message.header.unwrap();
    assert_eq!((header.to.as_str(), header.from.as_str()), ("zhangsan", corpid.as_str()));
    // Sealed for another corp, the reply does not open.
    let stranger =
        Platform::new(CORP_TOKEN).with_cipher(Cipher::new(CORP_KEY, "ww9999999999999999").unwrap());
    assert!(stranger.open_reply(&body).is_err());

    // Mini Program, JSON in safe mode: `success` now, the rule's text by customer-service API.
    let mini = Platform::new(MINI_TOKEN).with_cipher(Cipher::new(MINI_KEY, &platform.appid()).unwrap());
    let xml = text_xml("gh_mini", "oMiniJson", "price", 6_000_000_000_000_000_002, None);
    let push = mini.post_json(Mode::Safe, &xml, "oMiniJson", "gh_mini", &ts, "1111", [9; 16]).unwrap();
    assert!(Document::looks_like_json(&push.body) && push.body.contains("\"Encrypt\""), "{}", push.body);
    assert_eq!(post_signed(&http, &format!("{origin}/wechat/mini"), push).await, (200, "success".into()));
    wait_cs(&platform, &srv, "oMiniJson", "It costs 1 yuan.").await;

    // Mini Program, XML in plain mode (no mode declared: the account admits every mode).
    let xml = text_xml("gh_mini", "oMiniXml", "price", 6_000_000_000_000_000_003, None);
    let push = mini.post(Mode::Plain, &xml, "oMiniXml", "gh_mini", &ts, "2222", [0; 16]).unwrap();
    assert_eq!(post_signed(&http, &format!("{origin}/wechat/mini"), push).await, (200, "success".into()));
    wait_cs(&platform, &srv, "oMiniXml", "It costs 1 yuan.").await;

    // Nothing went to WeCom's message API: the WeCom reply was passive.
    assert!(platform.wecom_messages().is_empty(), "{:?}", platform.wecom_messages());
    let (_, log) = srv.stop();
    for secret in [CORP_KEY, MINI_KEY, platform.corp_secret().as_str(), platform.secret().as_str()] {
        assert!(!log.contains(secret), "a secret in the log:\n{log}");
    }
}

/// `wemp sim` plays each kind: a WeCom app (encrypted echostr, `msg_signature` only, the
/// corpid and AgentID in the envelope) and a Mini Program (JSON in safe mode, XML in plain;
/// `success` is the right answer and the reply goes through the customer-service API).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_plays_a_wecom_app_and_a_mini_program() {
    let (platform, dir, srv) = serve_all_three("wecom-sim").await;
    let origin = srv.origin();
    let corp_url = format!("{origin}/wechat/corp");
    let mini_url = format!("{origin}/wechat/mini");
    let (corpid, agentid) = (platform.corpid(), platform.agentid());
    let wecom: Vec<&str> = vec!["--kind", "wecom", "--corpid", &corpid, "--agentid", &agentid];
    let sim = |args: &[&str]| common::wemp_in(&dir, args, &[]);
    let with = |head: &[&str], url: &str, rest: &[&str], creds: &[&str]| {
        let mut all: Vec<&str> = head.to_vec();
        all.push(url);
        all.extend(creds);
        all.extend(rest);
        sim(&all)
    };
    let corp_creds: Vec<&str> = [&["--token", CORP_TOKEN, "--aes-key", CORP_KEY][..], &wecom].concat();

    // WeCom: the encrypted echostr is answered in plaintext.
    let o = with(&["sim", "verify"], &corp_url, &[], &corp_creds);
    assert!(o.status.success(), "{}", common::out(&o));
    assert!(common::out(&o).contains("echoed echostr"), "{}", common::out(&o));
    // The Official Account's path does not decrypt a WeCom echostr.
    let o = with(&["sim", "verify"], &format!("{origin}/wechat"), &[], &corp_creds);
    assert!(!o.status.success(), "{}", common::out(&o));

    // A WeCom text: the rule's reply, encrypted for the corpid, in the user's chat.
    let o = with(&["sim", "send"], &corp_url, &["--openid", "zhangsan", "text", "price"], &corp_creds);
    let text = common::out(&o);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("← text reply, encrypted") && text.contains("It costs 1 yuan."), "{text}");
    assert!(text.contains(&format!("To zhangsan  From {corpid}")), "{text}");
    // The same with everything from --config: the kind, corpid, AgentID, Token and key.
    let o = sim(&["sim", "send", &corp_url, "--config", "wemp.toml", "--json", "text", "price"]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    assert_eq!(json["message"]["reply"]["content"], "It costs 1 yuan.", "{}", common::out(&o));
    assert!(json["request"].as_str().unwrap().contains(&format!("<AgentID>{agentid}</AgentID>")), "{json}");
    // JSON is a Mini Program's data format only: a WeCom app's and an Official Account's
    // callbacks are XML, so --format json for them is refused with the reason (explicit XML
    // is what they use anyway).
    for (url, kind) in [(&corp_url, "a WeCom app's"), (&format!("{origin}/wechat"), "an Official Account's")]
    {
        for cmd in ["send", "check", "verify"] {
            let mut args = vec!["sim", cmd, url.as_str(), "--config", "wemp.toml", "--format", "json"];
            if cmd == "send" {
                args.extend(["text", "price"]);
            }
            let o = sim(&args);
            let text = common::out(&o);
            assert_eq!(o.status.code(), Some(2), "{cmd}: {text}");
            assert!(
                text.contains(&format!(
                    "--format json is for Mini Programs only (--kind miniprogram): {kind} callbacks are XML only"
                )),
                "{cmd}: {text}"
            );
        }
    }
    let o = sim(&["sim", "send", &corp_url, "--config", "wemp.toml", "--format", "xml", "text", "price"]);
    assert!(o.status.success() && common::out(&o).contains("It costs 1 yuan."), "{}", common::out(&o));
    // The conformance run: every WeCom type, and plain requests rightly refused.
    let o = sim(&["sim", "check", &corp_url, "--config", "wemp.toml"]);
    let text = common::out(&o);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("PASS  plain: server requires encryption"), "{text}");
    assert!(text.contains("PASS  safe: event enter_agent"), "{text}");
    assert!(text.contains("PASS  handshake with a forged signature is refused"), "{text}");

    // Mini Program, JSON in safe mode: `success`, and the reply by customer-service message.
    let mini_creds = ["--token", MINI_TOKEN, "--appid", &platform.appid(), "--aes-key", MINI_KEY];
    let o = with(
        &["sim", "send"],
        &mini_url,
        &[
            "--kind",
            "miniprogram",
            "--format",
            "json",
            "--mode",
            "safe",
            "--openid",
            "oSimJson",
            "-v",
            "text",
            "price",
        ],
        &mini_creds,
    );
    let text = common::out(&o);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("← success: a Mini Program's replies reach the user through the customer-service API"),
        "{text}"
    );
    wait_cs(&platform, &srv, "oSimJson", "It costs 1 yuan.").await;
    // The message log keeps what arrived: the decrypted JSON, as the Mini Program sent it
    // (the entry is written once the customer-service send is done).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let args = ["log", "--config", "wemp.toml", "--data-dir", "d", "--json", "--user", "oSimJson"];
        let rows = common::json_lines(&sim(&args));
        if let Some(raw) = rows.first().and_then(|r| r["raw_xml"].as_str()) {
            assert!(raw.starts_with('{') && raw.contains("\"Content\":\"price\""), "{rows:?}");
            break;
        }
        assert!(Instant::now() < deadline, "no log entry for oSimJson: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // XML in plain mode, the kind from --config.
    let o = sim(&[
        "sim",
        "send",
        &mini_url,
        "--config",
        "wemp.toml",
        "--mode",
        "plain",
        "--openid",
        "oSimXml",
        "text",
        "price",
    ]);
    assert!(o.status.success(), "{}", common::out(&o));
    wait_cs(&platform, &srv, "oSimXml", "It costs 1 yuan.").await;
    let o = sim(&["sim", "check", &mini_url, "--config", "wemp.toml", "--format", "json"]);
    let text = common::out(&o);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("PASS  safe: miniprogrampage (success: replies go through the customer-service API)"),
        "{text}"
    );
    assert!(text.contains("PASS  safe: event user_enter_tempsession"), "{text}");

    // Usage errors name what a WeCom app needs.
    let o = sim(&["sim", "send", &corp_url, "--kind", "wecom", "--token", CORP_TOKEN, "text", "hi"]);
    assert_eq!(o.status.code(), Some(2), "{}", common::out(&o));
    assert!(common::stderr(&o).contains("--corpid"), "{}", common::out(&o));
    srv.stop();
}

/// A WeCom app's server that echoes the encrypted echostr is told to decrypt it.
#[test]
fn sim_verify_explains_an_undecrypted_wecom_echostr() {
    use axum::extract::Query;
    let app = axum::Router::new().route(
        "/corp",
        axum::routing::get(|Query(q): Query<std::collections::HashMap<String, String>>| async move {
            q.get("echostr").cloned().unwrap_or_default()
        }),
    );
    let addr = common::serve_in_background(app);
    let o = common::wemp(&[
        "sim",
        "verify",
        &format!("http://{addr}/corp"),
        "--kind",
        "wecom",
        "--corpid",
        "ww0123456789abcdef",
        "--token",
        CORP_TOKEN,
        "--aes-key",
        CORP_KEY,
    ]);
    let text = common::out(&o);
    assert!(!o.status.success(), "{text}");
    assert!(text.contains("echoed the encrypted echostr") && text.contains("answer the plaintext"), "{text}");
}

/// A WeCom user's reply that misses the deadline (a slow app behind a `forward` rule) goes
/// out through WeCom's `message/send` for the app's AgentID, never the customer-service API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_reply_to_a_wecom_user_goes_through_message_send() {
    let platform = FakePlatform::start().await;
    let app = common::app::CountingApp::start("Sorry for the wait", Duration::from_millis(1500));
    let dir = temp_dir("wecom-late");
    let cfg = config(&platform).replacen(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\ndeadline = \"500ms\"",
        1,
    ) + &format!("\n[[rules]]\nname = \"slow\"\nkeyword = \"slow\"\nforward = \"{}\"\n", app.url);
    std::fs::write(dir.join("wemp.toml"), cfg).unwrap();
    let srv = ServeProc::start(
        &dir,
        &["--config", "wemp.toml", "--data-dir", "d"],
        &[("WEMP_API_BASE", &platform.url()), ("WEMP_LOG", "info")],
    );
    let corp_url = format!("{}/wechat/corp", srv.origin());
    let started = Instant::now();
    let o = common::wemp_in(
        &dir,
        &["sim", "send", &corp_url, "--config", "wemp.toml", "--openid", "lisi", "text", "slow"],
        &[],
    );
    assert!(o.status.success(), "{}", common::out(&o));
    assert!(started.elapsed() < Duration::from_secs(5), "WeCom waited {:?}", started.elapsed());
    assert!(!common::out(&o).contains("Sorry for the wait"), "{}", common::out(&o));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let sent = platform.wecom_messages();
        if let Some(m) = sent.iter().find(|m| m["touser"] == "lisi") {
            assert_eq!(m["text"]["content"], "Sorry for the wait", "{m}");
            assert_eq!(m["agentid"].to_string().trim_matches('"'), platform.agentid(), "{m}");
            break;
        }
        assert!(Instant::now() < deadline, "no message/send to lisi: {sent:?}\n{}", srv.stderr());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.calls(), 1);
    assert!(platform.sent_messages().iter().all(|m| m["touser"] != "lisi"), "{:?}", platform.sent_messages());
    srv.stop();
}

/// `wemp doctor` checks each kind's settings and fetches each kind's token from the fake
/// platform: WeCom's `gettoken` with the corpid and the app's Secret, the Mini Program's and
/// the Official Account's access_token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_each_kind_and_fetches_its_token() {
    let platform = FakePlatform::start().await;
    let dir = temp_dir("wecom-doctor");
    let good = config(&platform);
    std::fs::write(dir.join("wemp.toml"), &good).unwrap();
    let base = platform.url();
    let doctor = |lang: &'static str, file: &'static str| {
        let (dir, base) = (dir.clone(), base.clone());
        tokio::task::spawn_blocking(move || {
            let args = ["doctor", "--config", file, "--api-base", &base, "--timeout", "10s"];
            common::wemp_in(&dir, &args, &[("LANG", lang)])
        })
    };
    let o = doctor("C", "wemp.toml").await.unwrap();
    let text = common::out(&o);
    assert!(o.status.success(), "{text}");
    for want in [
        "PASS  accounts[1] corpid",
        "PASS  accounts[1] AgentID",
        "PASS  accounts[1] EncodingAESKey",
        "PASS  accounts[2] appid",
        &format!("PASS  {} WeCom token (gettoken)", platform.corpid()),
        &format!("PASS  {} access token", platform.appid()),
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    let zh = common::out(&doctor("zh_CN.UTF-8", "wemp.toml").await.unwrap());
    assert!(
        zh.contains("accounts[1] 企业 ID（corpid）") && zh.contains("已用企业 ID 和应用的 Secret 获取"),
        "{zh}"
    );

    // A corpid of another shape is a warning; the platform refuses its token.
    let odd = good.replace(&platform.corpid(), "wwNotHexButValid");
    std::fs::write(dir.join("odd.toml"), odd).unwrap();
    let o = doctor("C", "odd.toml").await.unwrap();
    let text = common::out(&o);
    assert!(!o.status.success(), "{text}");
    assert!(
        text.contains("WARN  accounts[1] corpid") && text.contains("wwNotHexButValid is not ww or wx"),
        "{text}"
    );
    assert!(text.contains("FAIL  wwNotHexButValid WeCom token (gettoken)"), "{text}");
}

/// The second app of the fake platform's corp, with a Secret of its own (so a token of its
/// own, which the platform refuses for the first app's AgentID and the other way round).
const OPS_AGENT: &str = "1000003";
const OPS_SECRET: &str = "another-apps-secret";

/// Two apps of one WeCom corp on one server: the same corpid, distinct AgentIDs and paths.
/// Each answers on its path (else the envelope's AgentID picks), a late reply goes out for
/// its own AgentID with its own token, and a true duplicate is refused naming the kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_wecom_apps_of_one_corp_on_one_server() {
    let platform = FakePlatform::start().await;
    platform.add_wecom_app(OPS_AGENT, OPS_SECRET);
    let app = common::app::CountingApp::start("Sorry for the wait", Duration::from_millis(1500));
    let dir = temp_dir("wecom-two");
    let (corpid, agentid) = (platform.corpid(), platform.agentid());
    let second = |agent: &str, path: &str| {
        format!(
            "[[accounts]]\nkind = \"wecom\"\nname = \"ops\"\ncorpid = \"{corpid}\"\nagentid = \"{agent}\"\n\
             token = \"OpsTok123\"\naes_key = \"{MINI_KEY}\"\nappsecret = \"{OPS_SECRET}\"\npath = \"{path}\"\n"
        )
    };
    let cfg = config(&platform).replacen(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\ndeadline = \"500ms\"",
        1,
    ) + &format!("\n[[rules]]\nname = \"slow\"\nkeyword = \"slow\"\nforward = \"{}\"\n\n", app.url)
        + &second(OPS_AGENT, "/wechat/ops");
    std::fs::write(dir.join("wemp.toml"), &cfg).unwrap();

    // The same AgentID twice is one app configured twice.
    std::fs::write(dir.join("twice.toml"), config(&platform) + &second(&agentid, "/wechat/ops")).unwrap();
    let o = common::wemp_in(&dir, &["doctor", "--config", "twice.toml"], &[]);
    let text = common::out(&o);
    assert!(!o.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "accounts[3].agentid: \"{corpid}/{agentid}\" (corpid/agentid) is already accounts[1]: a WeCom app"
        )),
        "{text}"
    );
    assert!(!text.contains("Official Account"), "{text}");

    let srv = ServeProc::start(
        &dir,
        &["--config", "wemp.toml", "--data-dir", "d"],
        &[("WEMP_API_BASE", &platform.url()), ("WEMP_LOG", "info")],
    );
    let origin = srv.origin();
    let send = |url: String, token: &str, key: &str, agent: &str, openid: &str, text: &str| {
        let args = [
            "sim",
            "send",
            &url,
            "--kind",
            "wecom",
            "--corpid",
            &corpid,
            "--agentid",
            agent,
            "--token",
            token,
            "--aes-key",
            key,
            "--openid",
            openid,
            "text",
            text,
        ];
        common::wemp_in(&dir, &args, &[])
    };
    // Each app on its path, with its own Token and key.
    let o = send(format!("{origin}/wechat/ops"), "OpsTok123", MINI_KEY, OPS_AGENT, "wangwu", "price");
    assert!(o.status.success() && common::out(&o).contains("It costs 1 yuan."), "{}", common::out(&o));
    let o = send(format!("{origin}/wechat/corp"), CORP_TOKEN, CORP_KEY, &agentid, "wangwu", "price");
    assert!(o.status.success() && common::out(&o).contains("It costs 1 yuan."), "{}", common::out(&o));
    // Signed for one app, sent to the other's path: refused.
    let o = send(format!("{origin}/wechat/ops"), CORP_TOKEN, CORP_KEY, &agentid, "wangwu", "price");
    assert!(!o.status.success(), "{}", common::out(&o));

    // A late reply goes out for the app the message came to, with its AgentID and its own
    // token (the platform refuses the other app's token for it with 301002), although the
    // two apps share the corpid.
    let o = send(format!("{origin}/wechat/corp"), CORP_TOKEN, CORP_KEY, &agentid, "zhaoliu", "slow");
    assert!(o.status.success(), "{}", common::out(&o));
    let o = send(format!("{origin}/wechat/ops"), "OpsTok123", MINI_KEY, OPS_AGENT, "sunqi", "slow");
    assert!(o.status.success(), "{}", common::out(&o));
    for (user, agent) in [("zhaoliu", agentid.as_str()), ("sunqi", OPS_AGENT)] {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let sent = platform.wecom_messages();
            if let Some(m) = sent.iter().find(|m| m["touser"] == user) {
                assert_eq!(m["agentid"].to_string().trim_matches('"'), agent, "{m}");
                assert_eq!(m["text"]["content"], "Sorry for the wait", "{m}");
                break;
            }
            assert!(Instant::now() < deadline, "no message/send to {user}: {sent:?}\n{}", srv.stderr());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(platform.answered_with(301002), 0);
    let tokens: Vec<Option<String>> = platform
        .requests_to("/cgi-bin/message/send")
        .iter()
        .map(|r| r.access_token().and_then(|t| platform.wecom_token_app(t)))
        .collect();
    assert_eq!(tokens, [Some(agentid.clone()), Some(OPS_AGENT.to_owned())], "one token per app");
    srv.stop();
}

/// An app behind `forward` for two apps of one WeCom corp: each forwarded message names its
/// app (`X-Wemp-Account: corpid/agentid`, `account` its name), and the API proxy calls the
/// platform with the token of the app `X-Wemp-Account` names — its `corpid/agentid` or its
/// name; a bare corpid is ambiguous and refused with a 400 that names both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_proxy_and_forwarding_tell_two_apps_of_one_corp_apart() {
    use std::sync::{Arc, Mutex};
    const PROXY_TOKEN: &str = "proxy-token-0123456789";
    let platform = FakePlatform::start().await;
    platform.add_wecom_app(OPS_AGENT, OPS_SECRET);
    let (corpid, agentid) = (platform.corpid(), platform.agentid());

    // An app that records the account headers and JSON of what is forwarded to it.
    let seen: Arc<Mutex<Vec<(String, serde_json::Value)>>> = Arc::default();
    let s = seen.clone();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::Json<serde_json::Value>| {
            let s = s.clone();
            async move {
                let account = headers["x-wemp-account"].to_str().unwrap().to_owned();
                s.lock().unwrap().push((account, body.0));
                axum::Json(serde_json::json!({ "reply": null }))
            }
        }),
    );
    let hook = format!("http://{}/hook", common::serve_in_background(hook));

    let dir = temp_dir("wecom-proxy");
    let cfg = config(&platform)
        + &format!(
            "\n[[rules]]\nname = \"who\"\nkeyword = \"who\"\nforward = \"{hook}\"\n\n\
             [api_proxy]\ntoken = \"{PROXY_TOKEN}\"\n\n\
             [[accounts]]\nkind = \"wecom\"\nname = \"ops\"\ncorpid = \"{corpid}\"\nagentid = \"{OPS_AGENT}\"\n\
             token = \"OpsTok123\"\naes_key = \"{MINI_KEY}\"\nappsecret = \"{OPS_SECRET}\"\npath = \"/wechat/ops\"\n"
        );
    std::fs::write(dir.join("wemp.toml"), &cfg).unwrap();
    let srv = ServeProc::start(
        &dir,
        &["--config", "wemp.toml", "--data-dir", "d"],
        &[("WEMP_API_BASE", &platform.url()), ("WEMP_LOG", "info")],
    );
    let origin = srv.origin();

    // Forwarding: each message names the app it came to.
    for path in ["/wechat/corp", "/wechat/ops"] {
        let url = format!("{origin}{path}");
        let o = common::wemp_in(&dir, &["sim", "send", &url, "--config", "wemp.toml", "text", "who"], &[]);
        assert!(o.status.success(), "{}", common::out(&o));
    }
    let seen = seen.lock().unwrap().clone();
    let named: Vec<(&str, &str)> =
        seen.iter().map(|(h, b)| (h.as_str(), b["account"].as_str().unwrap_or_default())).collect();
    let (corp_key, ops_key) = (format!("{corpid}/{agentid}"), format!("{corpid}/{OPS_AGENT}"));
    assert_eq!(named, [(corp_key.as_str(), "corp"), (ops_key.as_str(), "ops")], "{seen:?}");
    // The JSON names the app too, so an app needs no header parsing to tell them apart.
    let apps: Vec<(&str, &str, &str)> = seen
        .iter()
        .map(|(_, b)| {
            (
                b["kind"].as_str().unwrap_or_default(),
                b["corpid"].as_str().unwrap_or_default(),
                b["agentid"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(apps, [("wecom", corpid.as_str(), agentid.as_str()), ("wecom", corpid.as_str(), OPS_AGENT)]);

    // The API proxy: message/send for the second app's AgentID succeeds only with its token.
    let http = reqwest::Client::new();
    let send = |account: &str, agent: &str, user: &str| {
        http.post(format!("{origin}/api/cgi-bin/message/send"))
            .bearer_auth(PROXY_TOKEN)
            .header("X-Wemp-Account", account)
            .json(&serde_json::json!({
                "touser": user, "msgtype": "text", "agentid": agent, "text": { "content": "from the app" }
            }))
            .send()
    };
    // The header the forwarded message carried, the key typed by hand, and the name.
    for (account, user) in [(seen[1].0.as_str(), "u1"), (ops_key.as_str(), "u2"), ("ops", "u3")] {
        let res = send(account, OPS_AGENT, user).await.unwrap();
        assert_eq!(res.status(), 200);
        let v: serde_json::Value = res.json().await.unwrap();
        assert_eq!(v["errcode"], 0, "{account}: {v}");
        let req = platform.last_request("/cgi-bin/message/send").unwrap();
        let app = req.access_token().and_then(|t| platform.wecom_token_app(t));
        assert_eq!(app.as_deref(), Some(OPS_AGENT), "{account}");
    }
    // The first app by name: its token, which the platform refuses for the other AgentID.
    let v: serde_json::Value = send("corp", OPS_AGENT, "u4").await.unwrap().json().await.unwrap();
    assert_eq!(v["errcode"], 301002, "{v}");
    let v: serde_json::Value = send("corp", &agentid, "u4").await.unwrap().json().await.unwrap();
    assert_eq!(v["errcode"], 0, "{v}");
    let sent: Vec<(String, String)> = platform
        .wecom_messages()
        .iter()
        .map(|m| {
            (m["touser"].as_str().unwrap().to_owned(), m["agentid"].to_string().trim_matches('"').to_owned())
        })
        .collect();
    let want: Vec<(String, String)> =
        [("u1", OPS_AGENT), ("u2", OPS_AGENT), ("u3", OPS_AGENT), ("u4", &agentid)]
            .iter()
            .map(|(u, a)| ((*u).to_owned(), (*a).to_owned()))
            .collect();
    assert_eq!(sent, want);

    // A bare corpid names both apps: refused, naming each, and nothing is sent.
    let before = platform.requests_to("/cgi-bin/message/send").len();
    let res = send(&corpid, OPS_AGENT, "u5").await.unwrap();
    assert_eq!(res.status(), 400);
    let v: serde_json::Value = res.json().await.unwrap();
    let msg = v["error"].as_str().unwrap();
    assert_eq!(
        msg,
        format!(
            "X-Wemp-Account \"{corpid}\" is the corpid of 2 WeCom apps: name one, as one of \
             \"{corp_key}\" (corp), \"{ops_key}\" (ops)"
        )
    );
    assert_eq!(platform.requests_to("/cgi-bin/message/send").len(), before);
    srv.stop();
}

/// The web console's chat plays each kind through the same driver: a WeCom account's
/// messages are WeCom-shaped (corpid, AgentID, msg_signature only) and get the sealed
/// reply; a Mini Program's are answered `success` and the rule's text reaches the user
/// through the customer-service API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consoles_chat_plays_each_kind() {
    let (platform, _dir, srv) = serve_all_three("wecom-console").await;
    let base = format!("{}/console", srv.origin());
    let http = reqwest::Client::new();
    let page = http.get(format!("{base}/")).send().await.unwrap().text().await.unwrap();
    let csrf = page
        .split("name=\"wemp-csrf\" content=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let corp_id = format!("{}/{}", platform.corpid(), platform.agentid());
    let cfg: serde_json::Value =
        http.get(format!("{base}/api/config?account={corp_id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(cfg["account"]["kind"], "wecom", "{cfg}");
    assert_eq!(cfg["account"]["agentid"], platform.agentid(), "{cfg}");
    let send = |account: String, user: &str| {
        let body = serde_json::json!({
            "account": account, "user": user, "action": { "kind": "text", "content": "price" }
        });
        http.post(format!("{base}/api/send")).header("X-Wemp-Csrf", &csrf).json(&body).send()
    };
    let users: Vec<String> =
        cfg["users"].as_array().unwrap().iter().map(|u| u["openid"].as_str().unwrap().to_owned()).collect();
    let res: serde_json::Value = send(corp_id.clone(), &users[0]).await.unwrap().json().await.unwrap();
    assert_eq!(res["sees"]["reply"]["content"], "It costs 1 yuan.", "{res}");
    let record = &res["server"][0]["record"];
    assert!(record["query"]["msg_signature"].is_string() && record["query"]["signature"].is_null(), "{res}");
    assert_eq!(record["appid"], corp_id, "{res}");
    // WeCom puts the AgentID in the message as well as in the envelope.
    let agent = format!("<AgentID>{}</AgentID>", platform.agentid());
    assert!(res["sent_xml"].as_str().unwrap().contains(&agent), "{res}");

    let mini_user = users.last().unwrap();
    let res: serde_json::Value = send(platform.appid(), mini_user).await.unwrap().json().await.unwrap();
    assert!(res["sees"]["reply"]["content"].is_null(), "a Mini Program takes no passive reply: {res}");
    wait_cs(&platform, &srv, mini_user, "It costs 1 yuan.").await;
    srv.stop();
}
