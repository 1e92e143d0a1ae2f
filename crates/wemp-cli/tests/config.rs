//! The shipped example config loads, and its rules answer as annotated.

mod common;

use std::path::Path;

use std::sync::Arc;
use std::time::Duration;

use tower::ServiceExt as _;
use wemp_cli::config::Config;
use wemp_cli::rules::RuleSet;
use wemp_proto::{Incoming, Mode, Reply};
use wemp_server::{Account, Ctx, Inbound};

/// The reply of the compiled router, as `wemp serve` answers.
fn evaluate(rules: &RuleSet, incoming: &Incoming) -> Reply {
    let account = Arc::new(Account::new("wx_example", "Tok123"));
    let inbound = Inbound::new(incoming.clone(), account, Mode::Plain, Ctx::detached(Duration::from_secs(5)));
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(rules.router().clone().into_service().oneshot(inbound)).unwrap()
}

fn example() -> Config {
    Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/wemp.toml")).unwrap()
}

fn parse(body: &str) -> Incoming {
    Incoming::parse(&format!(
        "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>{body}</xml>"
    ))
    .unwrap()
}

#[test]
fn the_example_config_is_valid() {
    let cfg = example();
    assert_eq!(cfg.server.listen, "127.0.0.1:8080");
    assert_eq!(cfg.accounts.len(), 1);
    assert_eq!(cfg.accounts[0].token.as_ref().map(wemp_proto::Secret::expose), Some("wempDemoToken2024"));
    assert_eq!(cfg.account_path(0), "/wechat");
    assert!(cfg.rules.len() >= 10);
}

#[test]
fn the_example_rules_answer_as_documented() {
    let rules = example().compiled_rules().unwrap();
    let text = |c: &str| parse(&format!("<MsgType>text</MsgType><Content>{c}</Content><MsgId>1</MsgId>"));
    let event = |e: &str, extra: &str| parse(&format!("<MsgType>event</MsgType><Event>{e}</Event>{extra}"));
    assert_eq!(evaluate(&rules, &text("order 7")), Reply::text("Order 7 is on its way, o1."));
    assert_eq!(evaluate(&rules, &text("what price?")), Reply::transfer_customer_service());
    let spring = event("subscribe", "<EventKey>qrscene_spring</EventKey><Ticket>t</Ticket>");
    assert!(matches!(evaluate(&rules, &spring), Reply::Text { content } if content.contains("spring")));
    assert!(
        matches!(evaluate(&rules, &event("CLICK", "<EventKey>NEWS</EventKey>")), Reply::News(a) if a.len() == 2)
    );
    assert!(matches!(evaluate(&rules, &event("CLICK", "<EventKey>MUSIC</EventKey>")), Reply::Music(_)));
    assert_eq!(
        evaluate(&rules, &event("CLICK", "<EventKey>CONTACT</EventKey>")),
        Reply::transfer_to("support@example_wechat")
    );
    assert_eq!(evaluate(&rules, &event("VIEW", "<EventKey>https://e/</EventKey>")), Reply::None);
    assert_eq!(
        evaluate(
            &rules,
            &parse("<MsgType>image</MsgType><PicUrl>u</PicUrl><MediaId>m</MediaId><MsgId>1</MsgId>")
        ),
        Reply::image("THANKS_IMAGE_MEDIA_ID")
    );
    assert!(
        matches!(evaluate(&rules, &text("zzz")), Reply::Text { content } if content.starts_with("Sorry"))
    );
    // The catch-all apologises for messages, not for events.
    let location =
        event("LOCATION", "<Latitude>1</Latitude><Longitude>2</Longitude><Precision>3</Precision>");
    assert_eq!(evaluate(&rules, &location), Reply::None);
    let scan = event("scancode_waitmsg", "<EventKey>k</EventKey>");
    assert_eq!(evaluate(&rules, &scan), Reply::None);
    assert!(example().compiled_rules().unwrap().warnings().is_empty());
}

#[test]
fn a_broken_copy_of_the_example_names_file_line_and_field() {
    let src =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/wemp.toml")).unwrap();
    let broken = src.replace("regex = '^order\\s+(\\d+)$'", "regex = '^order\\s+(\\d+$'");
    assert_ne!(broken, src);
    let line = broken.lines().position(|l| l.starts_with("regex = ")).unwrap() + 1;
    let err = Config::from_toml_str(&broken, "wemp.toml").unwrap_err().to_string();
    assert!(err.starts_with(&format!("wemp.toml:{line}: rules[")), "{err}");
    assert!(err.contains("].regex: invalid regular expression"), "{err}");
}

#[test]
fn an_appsecret_without_an_appid_is_refused_with_file_and_line() {
    // Before, the account's name went to the token endpoint as the appid while the setup
    // screen promised late replies.
    let dir = common::temp_dir("appsecret-no-appid");
    let config = dir.join("wemp.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[[accounts]]\nname = \"demo\"\nappsecret = \"0123456789abcdef0123456789abcdef\"\n",
    )
    .unwrap();
    let o = common::wemp_in(&dir, &["serve", "--config", config.to_str().unwrap()], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "started anyway:\n{err}");
    assert!(
        err.contains("wemp.toml:6: accounts[0].appsecret: an AppSecret needs the account's appid"),
        "{err}"
    );
    assert!(!err.contains("0123456789abcdef"), "the secret was printed:\n{err}");
}

#[test]
fn config_problems_follow_the_locale_with_file_and_line() {
    // The config check's problems in the reader's language: `wemp serve` and `wemp doctor`
    // under LANG=zh_CN.UTF-8 word each problem in Chinese at the same file:line and field,
    // with the field names and values verbatim; in English (LANG=C) as before.
    let dir = common::temp_dir("config-zh");
    let config = dir.join("wemp.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[[accounts]]\nname = \"demo\"\nmode = \"safe\"\n\
         appsecret = \"0123456789abcdef0123456789abcdef\"\n\n[[rules]]\nkeyword = \"hi\"\nregex = \"h\"\n\
         reply.text = \"hello\"\n",
    )
    .unwrap();
    let file = config.to_str().unwrap();
    let zh_lines = [
        format!("{file}:4: accounts[0].aes_key: 安全模式需要消息加解密密钥（EncodingAESKey）"),
        format!(
            "{file}:7: accounts[0].appsecret: AppSecret 还需要账号的 appid（接口以 AppID 和 AppSecret \
             一起识别账号）：请设置 appid，或删除 appsecret"
        ),
        format!("{file}:4: accounts[0].appid: 安全模式需要 appid（每条消息都会校验它）"),
        format!("{file}:9: rules[0]: 有多个匹配条件（keyword, regex）：一条规则只能有一个"),
    ];
    let en_lines = [
        format!("{file}:4: accounts[0].aes_key: safe mode needs the EncodingAESKey"),
        format!("{file}:4: accounts[0].appid: safe mode needs the appid (it is checked in every message)"),
        format!("{file}:9: rules[0]: several matchers (keyword, regex): a rule has exactly one"),
    ];
    for (lang, lines, not) in [("zh_CN.UTF-8", &zh_lines[..], "needs the"), ("C", &en_lines[..], "需要")] {
        let o = common::wemp_in(&dir, &["serve", "--config", file], &[("LANG", lang)]);
        let err = common::stderr(&o);
        assert!(!o.status.success(), "started anyway ({lang}):\n{err}");
        for line in lines {
            assert!(err.contains(line.as_str()), "{lang}: no {line:?} in:\n{err}");
        }
        assert!(!err.contains(not), "{lang}: the other language in:\n{err}");
        assert!(!err.contains("0123456789abcdef"), "the secret was printed:\n{err}");

        let o = common::wemp_in(&dir, &["doctor", "--config", file], &[("LANG", lang)]);
        let out = common::out(&o);
        assert!(!o.status.success(), "doctor passed ({lang}):\n{out}");
        for line in lines {
            assert!(out.contains(line.as_str()), "doctor, {lang}: no {line:?} in:\n{out}");
        }
    }
}

#[test]
fn two_accounts_with_one_name_are_refused_at_the_second() {
    // A name picks one account (the API proxy's X-Wemp-Account, the console, forwarded JSON):
    // two accounts named alike are refused where the second says it, in both languages.
    let dir = common::temp_dir("config-dup-name");
    let config = dir.join("wemp.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[[accounts]]\nname = \"shop\"\ntoken = \"tok12345\"\npath = \"/wechat/a\"\n\n\
         [[accounts]]\nname = \"shop\"\ntoken = \"tok67890\"\npath = \"/wechat/b\"\n",
    )
    .unwrap();
    let file = config.to_str().unwrap();
    for (lang, want) in [
        ("C", format!("{file}:10: accounts[1].name: \"shop\" is already the name of accounts[0]")),
        ("zh_CN.UTF-8", format!("{file}:10: accounts[1].name: \"shop\" 已是 accounts[0] 的名称")),
    ] {
        let o = common::wemp_in(&dir, &["serve", "--config", file], &[("LANG", lang)]);
        let err = common::stderr(&o);
        assert!(!o.status.success(), "started anyway ({lang}):\n{err}");
        assert!(err.contains(&want), "{lang}: no {want:?} in:\n{err}");
    }
}
