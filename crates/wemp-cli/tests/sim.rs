//! `wemp sim`, `wemp bench` and the general flags, run as the built binary against test
//! servers: a correct one and deliberately broken ones.

mod common;

use std::time::Duration;

use common::{AES_KEY, APPID, Echo, Flaws, TOKEN, spawn, stderr, stdout, wemp, wemp_with_stdin};

const ENC: [&str; 4] = ["--appid", APPID, "--aes-key", AES_KEY];

fn send(url: &str, mode: &str, what: &[&str]) -> std::process::Output {
    let mut args = vec!["sim", "send", url, "--token", TOKEN, "--mode", mode];
    args.extend(ENC);
    args.extend(what);
    wemp(&args)
}

#[test]
fn verify_passes_against_a_correct_server() {
    let server = spawn(Flaws::default());
    let out = wemp(&["sim", "verify", &server.url, "--token", TOKEN]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("echoed echostr"), "{}", stdout(&out));
}

#[test]
fn verify_explains_failures() {
    let server = spawn(Flaws::default());
    let out = wemp(&["sim", "verify", &server.url, "--token", "wrongtoken"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("HTTP 403"), "{}", stdout(&out));
    assert!(stdout(&out).contains("Token"), "{}", stdout(&out));

    for (echo, reason) in
        [(Echo::Quoted, "quoted"), (Echo::Xml, "wrapped in XML"), (Echo::Json, "wrapped in JSON")]
    {
        let server = spawn(Flaws { echo, ..Flaws::default() });
        let out = wemp(&["sim", "verify", &server.url, "--token", TOKEN]);
        assert_eq!(out.status.code(), Some(1), "{echo:?}");
        assert!(stdout(&out).contains(reason), "{echo:?}: {}", stdout(&out));
    }

    let out = wemp(&["sim", "verify", "http://127.0.0.1:9/wechat", "--token", TOKEN, "--timeout-ms", "500"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("is the server running"), "{}", stdout(&out));
}

#[test]
fn send_every_type_in_every_mode() {
    let server = spawn(Flaws::default());
    let types: &[&[&str]] = &[
        &["text", "hi"],
        &["image"],
        &["voice", "--recognition", "weather"],
        &["video"],
        &["shortvideo"],
        &["location", "-33.86", "151.2", "--label", "Sydney"],
        &["link", "https://example.com/"],
        &["event", "subscribe"],
        &["event", "subscribe", "--scene", "promo"],
        &["event", "unsubscribe"],
        &["event", "scan", "promo"],
        &["event", "click", "V1001"],
        &["event", "view", "https://example.com/"],
        &["event", "location"],
        &["event", "view_miniprogram", "pages/index"],
        &["event", "scancode_push", "K", "result"],
        &["event", "scancode-waitmsg", "K", "result"],
        &["event", "pic_sysphoto", "K"],
        &["event", "pic_photo_or_album", "K", "--count", "3"],
        &["event", "pic_weixin", "K"],
        &["event", "location_select", "K", "23.1", "113.3"],
        &["event", "other", "user_get_card", "-f", "CardId=pCard1", "--field", "UserCardCode=12312312"],
        &["event", "other", "user_stamp_card", "-f", "StampCount=3"],
    ];
    for mode in ["plain", "compatible", "safe"] {
        for what in types {
            let out = send(&server.url, mode, what);
            assert!(out.status.success(), "{mode} {what:?}: {}{}", stdout(&out), stderr(&out));
        }
    }
    let out = send(&server.url, "safe", &["text", "hi"]);
    let text = stdout(&out);
    assert!(text.contains("text reply, encrypted"), "{text}");
    assert!(text.contains("echo: hi"), "{text}");
    assert!(text.contains("To o_wemp_sim_user  From gh_wemp_sim"), "{text}");
    let out = send(&server.url, "plain", &["event", "click", "V1001"]);
    assert!(stdout(&out).contains("event CLICK"), "{}", stdout(&out));
    let out = send(&server.url, "plain", &["event", "unsubscribe"]);
    assert!(stdout(&out).contains("no reply"), "{}", stdout(&out));
    // Events without a subcommand of their own reach the server typed when wemp knows them.
    let out = send(&server.url, "safe", &["event", "other", "user_get_card", "-f", "CardId=pCard1"]);
    assert!(stdout(&out).contains("event user_get_card"), "{}", stdout(&out));
}

#[test]
fn send_json_is_machine_readable() {
    let server = spawn(Flaws::default());
    let mut args = vec!["sim", "send", &server.url, "--token", TOKEN, "--mode", "compatible", "--json"];
    args.extend(ENC);
    args.extend(["text", "hello"]);
    let out = wemp(&args);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["outcome"], "reply");
    assert_eq!(v["user_sees_error"], false);
    assert_eq!(v["encrypted"], true);
    assert_eq!(v["message"]["reply"]["content"], "echo: hello");
    assert_eq!(v["attempts"].as_array().unwrap().len(), 1);
    assert!(v["msg_id"].as_str().unwrap().parse::<u64>().unwrap() > 1 << 53);
}

#[test]
fn a_slow_server_gets_three_tries_then_the_user_sees_the_banner() {
    let server = spawn(Flaws { slow: Some(Duration::from_secs(2)), ..Flaws::default() });
    let out =
        wemp(&["sim", "send", &server.url, "--token", TOKEN, "--timeout-ms", "200", "--json", "text", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["user_sees_error"], true);
    let attempts = v["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|a| a["exchange"]["kind"] == "timeout"), "{attempts:?}");
    let out = wemp(&["sim", "send", &server.url, "--token", TOKEN, "--timeout-ms", "200", "text", "hi"]);
    assert!(stdout(&out).contains("该公众号暂时无法提供服务"), "{}", stdout(&out));
    assert!(stdout(&out).contains("all 3 tries failed"), "{}", stdout(&out));
}

#[test]
fn send_reports_refused_replies() {
    // A CreateTime in milliseconds is not refused: see a_create_time_in_milliseconds_is_a_warning.
    let cases: [(Flaws, &str); 3] = [
        (Flaws { swapped: true, ..Flaws::default() }, "swapped"),
        (Flaws { invalid_xml: true, ..Flaws::default() }, "invalid XML"),
        (Flaws { two_articles: true, ..Flaws::default() }, "news article limits"),
    ];
    for (flaws, reason) in cases {
        let server = spawn(flaws);
        let out = send(&server.url, "plain", &["text", "hi"]);
        assert_eq!(out.status.code(), Some(1), "{reason}");
        assert!(stdout(&out).contains(reason), "{reason}: {}", stdout(&out));
        assert!(stdout(&out).contains("该公众号暂时无法提供服务"), "{}", stdout(&out));
    }
    let server = spawn(Flaws { bad_msg_signature: true, ..Flaws::default() });
    let out = send(&server.url, "safe", &["text", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("bad MsgSignature"), "{}", stdout(&out));
}

#[test]
fn usage_errors_exit_2() {
    let out = wemp(&["sim", "send", "http://127.0.0.1:9/", "--token", TOKEN, "--mode", "safe", "text", "hi"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--aes-key"), "{}", stderr(&out));
    let out = wemp(&["sim", "send", "http://127.0.0.1:9/", "--token", TOKEN, "bogus"]);
    assert_eq!(out.status.code(), Some(2));
    for bad in ["CardId", "1st=x", "a b=x"] {
        let out =
            wemp(&["sim", "send", "http://127.0.0.1:9/", "--token", TOKEN, "event", "other", "x", "-f", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&out).contains("NAME=VALUE") || stderr(&out).contains("element name"),
            "{}",
            stderr(&out)
        );
    }
}

fn check(url: &str, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["sim", "check", url, "--token", TOKEN];
    args.extend(extra);
    let out = wemp(&args);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}{}", stdout(&out), stderr(&out));
    (out.status.success(), stdout(&out))
}

#[test]
fn check_passes_a_correct_server_in_every_mode() {
    let server = spawn(Flaws::default());
    let (ok, text) = check(&server.url, &ENC);
    assert!(ok, "{text}");
    assert!(text.contains("0 fail"), "{text}");
    for needle in [
        "PASS  handshake",
        "PASS  safe: event location_select",
        "PASS  compatible: a retry of the same MsgId gets the same reply",
        "PASS  plain: a wrong signature is refused",
        "PASS  safe: a wrong msg_signature is refused",
        "PASS  plain: a malformed body is refused",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    let mut args = vec!["sim", "check", &server.url, "--token", TOKEN, "--json", "--mode", "safe"];
    args.extend(ENC);
    let out = wemp(&args);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["passed"], true);
    assert!(v["checks"].as_array().unwrap().len() > 20);
}

#[test]
fn check_names_the_reason_for_each_broken_server() {
    let cases: Vec<(Flaws, Vec<&str>, &str)> = vec![
        (Flaws { swapped: true, ..Flaws::default() }, vec![], "FAIL  plain: text"),
        (Flaws { swapped: true, ..Flaws::default() }, vec![], "wrong direction"),
        (Flaws { invalid_xml: true, ..Flaws::default() }, vec![], "invalid XML"),
        (Flaws { bad_msg_signature: true, ..Flaws::default() }, vec!["--mode", "safe"], "bad MsgSignature"),
        (Flaws { answers_forged: true, ..Flaws::default() }, vec![], "answered a forged request"),
        (Flaws { no_dedup: true, ..Flaws::default() }, vec![], "the retry got a different reply"),
        (Flaws { two_articles: true, ..Flaws::default() }, vec![], "news article limits"),
        (Flaws { echo: Echo::Quoted, ..Flaws::default() }, vec![], "echostr is quoted"),
    ];
    for (flaws, extra, reason) in cases {
        let server = spawn(flaws);
        let mut args: Vec<&str> = extra.clone();
        if extra.contains(&"safe") {
            args.extend(ENC);
        }
        let (ok, text) = check(&server.url, &args);
        assert!(!ok, "{reason}: passed\n{text}");
        assert!(text.contains(reason), "{reason}: {text}");
    }
}

#[test]
fn check_reports_a_slow_server() {
    let server = spawn(Flaws { slow: Some(Duration::from_secs(2)), ..Flaws::default() });
    let (ok, text) = check(&server.url, &["--timeout-ms", "150"]);
    assert!(!ok);
    assert!(text.contains("FAIL  plain: text"), "{text}");
    assert!(text.contains("no answer within 150ms"), "{text}");
    assert!(text.contains("then shows the user the error banner"), "{text}");
}

#[test]
fn check_stops_early_when_nothing_answers() {
    let (ok, text) = check("http://127.0.0.1:9/wechat", &["--timeout-ms", "300"]);
    assert!(!ok);
    assert!(text.contains("SKIP  remaining checks"), "{text}");
}

#[test]
fn chat_reads_lines_and_commands() {
    let server = spawn(Flaws::default());
    let input =
        "hello\n/click V1001\n/subscribe promo\n/location\n/image\n/nope\n/history\n/quit\nnot sent\n";
    let out = wemp_with_stdin(&["sim", "chat", &server.url, "--token", TOKEN], Some(input));
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    for needle in [
        "bot: echo: hello",
        "bot: event CLICK",
        "bot: event subscribe",
        "bot: got location",
        "bot: got image",
        "unknown command /nope",
        "you: [event CLICK]",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    assert!(!text.contains("not sent"), "{text}");
    assert_eq!(server.posts(), 5);
}

#[test]
fn bench_sends_distinct_messages_and_reports_latency() {
    let server = spawn(Flaws::default());
    let mut args =
        vec!["bench", &server.url, "--token", TOKEN, "--mode", "safe", "-n", "60", "-c", "4", "--json"];
    args.extend(ENC);
    let out = wemp(&args);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["requests"], 60);
    assert_eq!(v["ok"], 60);
    assert!(v["errors"].as_object().unwrap().is_empty());
    let l = &v["latency_ms"];
    assert!(l["p50"].as_f64().unwrap() <= l["p99"].as_f64().unwrap());
    assert!(l["p99"].as_f64().unwrap() <= l["max"].as_f64().unwrap());
    assert_eq!(server.posts(), 60);
    // Not a terminal: no progress bar on stderr.
    assert!(!stderr(&out).contains('['), "{}", stderr(&out));

    let out = wemp(&[
        "bench",
        "http://127.0.0.1:9/wechat",
        "--token",
        TOKEN,
        "-n",
        "5",
        "-c",
        "2",
        "--timeout-ms",
        "300",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("connect 5"), "{}", stdout(&out));
}

#[test]
fn bench_counts_refused_replies_as_errors() {
    let server = spawn(Flaws { swapped: true, ..Flaws::default() });
    let out = wemp(&["bench", &server.url, "--token", TOKEN, "-n", "10", "-c", "2", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["errors"]["refused_reply"], 10, "{v}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn version_help_and_completions() {
    let out = wemp(&["--version"]);
    assert_eq!(stdout(&out).trim(), format!("wemp {}", env!("CARGO_PKG_VERSION")));
    let out = wemp(&["--help"]);
    assert!(stdout(&out).contains("Exit codes"), "{}", stdout(&out));
    let out = wemp(&["sim", "send", "--help"]);
    assert!(stdout(&out).contains("--mode"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("timeout-ms"), "hidden flag shown");
    for shell in ["bash", "zsh", "fish"] {
        let out = wemp(&["completions", shell]);
        assert!(out.status.success());
        assert!(stdout(&out).contains("sim"), "{shell}");
    }
}

/// A reader that goes away early (`wemp … | head -1`) ends the command quietly and
/// successfully, as it does `grep`; it used to panic ("failed printing to stdout") with 101.
#[test]
fn a_closed_standard_output_is_not_a_panic() {
    use std::process::{Command, Stdio};
    let sign = ["crypto", "sign", "--token", "spamtest", "--timestamp", "1409304348", "--nonce", "xxxxxx"];
    for args in [&["completions", "bash"][..], &sign, &["--help"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wemp"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the command writes anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

/// WeChat shows a reply whose CreateTime is in milliseconds (node `wechat` writes them;
/// node-webot/wechat#175): the docs say seconds, so it is a warning, not the error banner.
#[test]
fn a_create_time_in_milliseconds_is_a_warning() {
    let server = spawn(Flaws { millis: true, ..Flaws::default() });
    let out = send(&server.url, "plain", &["text", "hi"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("echo: hi"), "{text}");
    assert!(text.contains("warning:") && text.contains("milliseconds"), "{text}");
    assert!(!text.contains("该公众号暂时无法提供服务"), "{text}");
    let mut args = vec!["sim", "send", &server.url, "--token", TOKEN, "--json", "text", "hi"];
    args.extend(ENC);
    let v: serde_json::Value = serde_json::from_str(&stdout(&wemp(&args))).unwrap();
    assert_eq!(v["user_sees_error"], false, "{v}");
    assert!(v["warnings"][0].as_str().unwrap().contains("milliseconds"), "{v}");

    let out = wemp_with_stdin(&["sim", "chat", &server.url, "--token", TOKEN], Some("hello 订单\n/quit\n"));
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("bot: echo: hello 订单") && text.contains("warning: CreateTime"), "{text}");

    let (ok, text) = check(&server.url, &[]);
    assert!(ok, "{text}");
    assert!(text.contains("WARN  plain: text"), "{text}");
    assert!(text.contains("milliseconds"), "{text}");
    let out = wemp(&["bench", &server.url, "--token", TOKEN, "-n", "5", "-c", "1", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["ok"], 5, "{v}");
}

/// The server's one-line reason for refusing ("bad signature" here; a Flask app's "token
/// 验证失败") is printed in text mode by send, verify, check and bench.
#[test]
fn the_servers_reason_is_printed() {
    let server = spawn(Flaws::default());
    let said = "HTTP 403, 13 bytes: bad signature";
    let out = wemp(&["sim", "send", &server.url, "--token", "wrong", "--tries", "1", "text", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains(said), "{}", stdout(&out));
    let out = wemp(&["sim", "verify", &server.url, "--token", "wrong"]);
    assert!(stdout(&out).contains("it said: bad signature"), "{}", stdout(&out));
    let out = wemp(&["sim", "check", &server.url, "--token", "wrong"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("it said: bad signature"), "{}", stdout(&out));
    let out = wemp(&["bench", &server.url, "--token", "wrong", "-n", "3", "-c", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains(said), "{}", stdout(&out));
}

#[test]
fn text_takes_the_rest_of_the_line() {
    let server = spawn(Flaws::default());
    let out = wemp(&["sim", "send", &server.url, "--token", TOKEN, "text", "订单", "42", "-x"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("echo: 订单 42 -x"), "{}", stdout(&out));
}

/// With an EncodingAESKey, sim and bench speak safe mode unless told otherwise.
#[test]
fn an_aes_key_means_safe_mode_by_default() {
    let server = spawn(Flaws::default());
    let mut args = vec!["sim", "send", &server.url, "--token", TOKEN];
    args.extend(ENC);
    args.extend(["text", "hi"]);
    let out = wemp(&args);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("(safe mode"), "{}", stdout(&out));
    assert!(stdout(&out).contains("text reply, encrypted"), "{}", stdout(&out));
    let mut args = vec!["bench", &server.url, "--token", TOKEN, "-n", "2", "-c", "1", "--json"];
    args.extend(ENC);
    let v: serde_json::Value = serde_json::from_str(&stdout(&wemp(&args))).unwrap();
    assert_eq!(v["mode"], "safe", "{v}");
    let out = wemp(&["sim", "send", &server.url, "--token", TOKEN, "text", "hi"]);
    assert!(stdout(&out).contains("(plain mode"), "{}", stdout(&out));
}

#[test]
fn completion_and_help_are_tidy() {
    let script = stdout(&wemp(&["completions", "bash"]));
    let mode_lines: Vec<&str> = script
        .lines()
        .zip(script.lines().skip(1))
        .filter(|(flag, _)| flag.trim() == "--mode)")
        .map(|(_, action)| action)
        .collect();
    assert!(mode_lines.len() >= 4, "{mode_lines:?}");
    for action in mode_lines {
        assert!(action.contains("plain compatible safe"), "--mode completes file names: {action}");
    }
    let events = script.lines().find(|l| l.contains("opts=") && l.contains(" scancode-push")).unwrap();
    assert!(!events.contains("scancode_push"), "event subcommands listed twice: {events}");
    let help = stdout(&wemp(&["sim", "send", "--help"]));
    let color: Vec<&str> = help.lines().filter(|l| l.contains("auto") || l.contains("never")).collect();
    assert_eq!(color.len(), 1, "the --color block: {color:?}");
    // The snake_case spellings still work.
    let server = spawn(Flaws::default());
    let out = send(&server.url, "plain", &["event", "scancode_push", "K", "r"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// An https URL with a certificate the simulator does not trust names the TLS error and
/// offers --insecure (it used to ask "is the server running?").
#[test]
#[allow(clippy::print_stdout)] // the reason a test steps aside goes to its output
fn an_untrusted_certificate_is_named() {
    let dir = common::temp_dir("tls");
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-keyout", "k.pem", "-out", "c.pem"])
        .current_dir(&dir)
        .output();
    if !made.is_ok_and(|o| o.status.success()) {
        println!("skipping: openssl cannot make a certificate here");
        return;
    }
    let port = common::free_port();
    let mut server = std::process::Command::new("openssl")
        .args(["s_server", "-accept", &format!("127.0.0.1:{port}"), "-cert", "c.pem", "-key", "k.pem"])
        .args(["-www", "-quiet"])
        .current_dir(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    common::wait_for_port(port, Duration::from_secs(10));
    let url = format!("https://127.0.0.1:{port}/wechat");
    let out = wemp(&["sim", "verify", &url, "--token", TOKEN]);
    let insecure = wemp(&["sim", "verify", &url, "--token", TOKEN, "--insecure"]);
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("TLS failed") && text.contains("certificate"), "{text}");
    assert!(text.contains("--insecure"), "{text}");
    assert!(!text.contains("is the server running"), "{text}");
    assert!(!text.contains("signature="), "the URL with its signature is repeated: {text}");
    // With --insecure the exchange happens (openssl's page is not an echostr, so it fails).
    assert!(stdout(&insecure).contains("HTTP 200"), "{}", stdout(&insecure));
}

/// Issue 17, "speaking the user's language": sim's verdicts and serve's most common start
/// error follow the locale, in English and in Chinese.
#[test]
fn wechats_verdicts_are_worded_in_chinese_and_json_stays_english() {
    let dir = common::temp_dir("sim-verdicts-zh");
    let swapped = spawn(Flaws { swapped: true, millis: true, ..Flaws::default() });
    let broken = spawn(Flaws { echo: Echo::Quoted, invalid_xml: true, ..Flaws::default() });
    let run = |lang: &str, args: &[&str]| {
        let o = common::wemp_in(&dir, args, &[("LANG", lang)]);
        format!("{}{}", stdout(&o), stderr(&o))
    };
    let send = |lang: &str, url: &str, extra: &[&str]| {
        let mut args = vec!["sim", "send", url, "--token", TOKEN];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["text", "hi"]);
        run(lang, &args)
    };

    // A reply WeChat refuses, and a warning, in Chinese.
    let zh = send("zh_CN.UTF-8", &swapped.url, &[]);
    assert!(zh.contains("  - 方向错误：ToUserName 和 FromUserName 写反了"), "{zh}");
    assert!(zh.contains("警告： CreateTime ") && zh.contains("是毫秒；文档要求以秒为单位的时间戳"), "{zh}");
    assert!(!zh.contains("wrong direction") && !zh.contains("milliseconds"), "{zh}");
    let en = send("en_US.UTF-8", &swapped.url, &[]);
    assert!(en.contains("  - wrong direction: ToUserName/FromUserName are swapped"), "{en}");
    // `--json` keeps the English words whatever the locale.
    let args = ["sim", "send", &swapped.url, "--token", TOKEN, "--json", "text", "hi"];
    let json = stdout(&common::wemp_in(&dir, &args, &[("LANG", "zh_CN.UTF-8")]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert!(
        v["problems"][0]
            .as_str()
            .unwrap()
            .starts_with("wrong direction: ToUserName/FromUserName are swapped"),
        "{v}"
    );
    assert!(v["warnings"][0].as_str().unwrap().contains("is in milliseconds"), "{v}");

    // An unreadable reply and a URL verification WeChat refuses.
    let zh = send("zh_CN.UTF-8", &broken.url, &[]);
    assert!(zh.contains("✗ 回复不是有效的 XML（"), "{zh}");
    let zh = run("zh_CN.UTF-8", &["sim", "verify", &broken.url, "--token", TOKEN]);
    assert!(zh.contains("  - echostr 带了引号（"), "{zh}");

    // No answer at all: the tries and the last one, in Chinese.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let nobody = format!("http://{closed}/wechat");
    let zh = send("zh_CN.UTF-8", &nobody, &["--tries", "1"]);
    assert!(zh.contains("✗ 1 次尝试全部失败（最后一次：连接失败："), "{zh}");
    let zh = run("zh_CN.UTF-8", &["sim", "verify", &nobody, "--token", TOKEN]);
    assert!(zh.contains("——服务器在这个 URL 上运行吗？"), "{zh}");

    // `sim check`: each check's name and its notes, in Chinese and in English; `--json`
    // English whatever the locale.
    let check = |lang: &str, url: &str, extra: &[&str]| {
        let mut args = vec!["sim", "check", url, "--token", TOKEN];
        args.extend_from_slice(extra);
        run(lang, &args)
    };
    let zh = check("zh_CN.UTF-8", &swapped.url, &[]);
    for line in [
        "PASS  URL 验证（GET echostr）",
        "PASS  伪造签名的 URL 验证被拒绝",
        "FAIL  明文模式：text\n      方向错误：ToUserName 和 FromUserName 写反了",
        "明文模式：同一 MsgId 的重试得到相同的回复",
        "明文模式：错误的 signature 被拒绝",
        "明文模式：不带签名的请求被拒绝",
        "明文模式：格式错误的消息体被拒绝",
        "明文模式：一天前的时间戳被拒绝（重放）",
    ] {
        assert!(zh.contains(line), "{line}: {zh}");
    }
    assert!(!zh.contains("wrong direction") && !zh.contains("is refused"), "{zh}");
    let en = check("en_US.UTF-8", &swapped.url, &[]);
    for line in [
        "PASS  handshake (GET echostr)",
        "PASS  handshake with a forged signature is refused",
        "FAIL  plain: text\n      wrong direction: ToUserName/FromUserName are swapped",
        "plain: a retry of the same MsgId gets the same reply",
        "plain: a wrong signature is refused",
        "plain: a day-old timestamp is refused (replay)",
    ] {
        assert!(en.contains(line), "{line}: {en}");
    }
    // A forged request answered, and a mode refused for want of encryption, in both.
    let forged = spawn(Flaws { answers_forged: true, ..Flaws::default() });
    let zh = check("zh_CN.UTF-8", &forged.url, &[]);
    assert!(zh.contains("对伪造的请求（签名错误，说明服务器没有校验 `signature`）给出了回复"), "{zh}");
    let en = check("en_US.UTF-8", &forged.url, &[]);
    assert!(
        en.contains("answered a forged request (bad signature, so the server does not check `signature`)"),
        "{en}"
    );
    let safe_only = spawn(Flaws { refuse_plain: true, ..Flaws::default() });
    let zh = check("zh_CN.UTF-8", &safe_only.url, &ENC);
    assert!(zh.contains("PASS  明文模式：服务器要求加密 (明文模式请求被拒绝：HTTP 403，"), "{zh}");
    assert!(zh.contains("PASS  安全模式：text (text 回复)"), "{zh}");
    let en = check("en_US.UTF-8", &safe_only.url, &ENC);
    assert!(
        en.contains("PASS  plain: server requires encryption (plain requests are refused: HTTP 403, "),
        "{en}"
    );
    let json = stdout(&common::wemp_in(
        &dir,
        &["sim", "check", &swapped.url, "--token", TOKEN, "--json"],
        &[("LANG", "zh_CN.UTF-8")],
    ));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(v["checks"][0]["name"], "handshake (GET echostr)", "{v}");
    let text = v["checks"].as_array().unwrap().iter().find(|c| c["name"] == "plain: text").unwrap();
    assert!(text["details"][0].as_str().unwrap().starts_with("wrong direction:"), "{v}");

    // `bench`: the reply WeChat refuses, told in the user's language; `--json` in English.
    let bench = |lang: &str, json: bool| {
        let mut args = vec!["bench", &swapped.url, "--token", TOKEN, "-n", "4", "-c", "1"];
        if json {
            args.push("--json");
        }
        run(lang, &args)
    };
    let zh = bench("zh_CN.UTF-8", false);
    for line in [
        "（明文模式，并发 1）",
        "\n  请求       ",
        " 秒内 4 个，0 个成功\n",
        "\n  吞吐量     每秒 ",
        "\n  延迟       p50 ",
        "\n  错误       refused_reply 4\n",
        "\n  例如       方向错误：ToUserName 和 FromUserName 写反了",
    ] {
        assert!(zh.contains(line), "{line:?}: {zh}");
    }
    let en = bench("en_US.UTF-8", false);
    for line in [
        "(plain mode, concurrency 1)",
        "\n  requests   4 in ",
        "s, 0 ok\n",
        "\n  throughput ",
        "\n  latency    p50 ",
        "\n  errors     refused_reply 4\n",
        "\n  e.g.       wrong direction: ToUserName/FromUserName are swapped",
    ] {
        assert!(en.contains(line), "{line:?}: {en}");
    }
    let json = bench("zh_CN.UTF-8", true);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert!(v["first_error"].as_str().unwrap().starts_with("wrong direction: "), "{v}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sim_verdicts_and_start_errors_follow_the_locale() {
    let dir = common::temp_dir("sim-locale");
    let good = spawn(Flaws::default());
    let broken = spawn(Flaws { echo: Echo::Quoted, invalid_xml: true, ..Flaws::default() });
    let run = |lang: &str, args: &[&str]| {
        let o = common::wemp_in(&dir, args, &[("LANG", lang)]);
        format!("{}{}", stdout(&o), stderr(&o))
    };
    let verify = |url: &str| ["sim", "verify", url, "--token", TOKEN].map(str::to_owned);
    let verify =
        |lang: &str, url: &str| run(lang, &verify(url).iter().map(String::as_str).collect::<Vec<_>>());
    let send = |lang: &str, url: &str| run(lang, &["sim", "send", url, "--token", TOKEN, "text", "订单 42"]);
    let check = |lang: &str| run(lang, &["sim", "check", &good.url, "--token", TOKEN]);

    let en = [verify("en_US.UTF-8", &good.url), verify("en_US.UTF-8", &broken.url)];
    assert!(
        en[0].contains("✓ the server echoed echostr: WeChat will accept this URL and Token"),
        "{}",
        en[0]
    );
    assert!(
        en[1].contains("✗ verification fails; WeChat's console would say the Token check failed:"),
        "{}",
        en[1]
    );
    let zh = [verify("zh_CN.UTF-8", &good.url), verify("zh_CN.UTF-8", &broken.url)];
    assert!(zh[0].contains("✓ 服务器原样返回了 echostr：微信会接受这个 URL 和令牌（Token）"), "{}", zh[0]);
    assert!(zh[1].contains("✗ 验证失败；微信后台会提示“token验证失败”："), "{}", zh[1]);

    let en = send("en_US.UTF-8", &good.url);
    assert!(en.contains("(plain mode, MsgId ") && en.contains("← text reply"), "{en}");
    let zh = send("zh_CN.UTF-8", &good.url);
    assert!(zh.contains("（明文模式，MsgId ") && zh.contains("← text 回复"), "{zh}");
    let zh = send("zh_CN.UTF-8", &broken.url);
    assert!(zh.contains("微信会拒绝这个回复；用户看到“") || zh.contains("用户会看到“"), "{zh}");
    // Each try's line, from the driver's exchange, in the user's language too.
    assert!(
        send("en_US.UTF-8", &good.url).contains("  try 1: HTTP 200, "),
        "{}",
        send("en_US.UTF-8", &good.url)
    );
    let zh = send("zh_CN.UTF-8", &good.url);
    assert!(zh.contains("  第 1 次：HTTP 200，") && zh.contains(" 字节，用时 "), "{zh}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let nobody = format!("http://{closed}/wechat");
    let zh = run("zh_CN.UTF-8", &["sim", "send", &nobody, "--token", TOKEN, "--tries", "1", "text", "hi"]);
    assert!(zh.contains("第 1 次：连接失败："), "{zh}");
    let zh = run("zh_CN.UTF-8", &["sim", "verify", &nobody, "--token", TOKEN]);
    assert!(zh.lines().nth(1).is_some_and(|l| l.starts_with("  连接失败：")), "{zh}");

    assert!(check("C").contains("\nchecks: "), "{}", check("C"));
    let zh = check("zh_CN.UTF-8");
    assert!(zh.starts_with("以微信的方式检查 ") && zh.contains("\n检查：") && zh.contains("项通过"), "{zh}");

    // A taken port: the start error in the user's language.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let serve = |lang: &str| run(lang, &["serve", "--listen", &addr, "--token", "LocaleToken1"]);
    assert!(serve("en_US.UTF-8").contains(&format!("cannot listen on {addr}: ")), "{}", serve("en_US.UTF-8"));
    let zh = serve("zh_CN.UTF-8");
    assert!(zh.contains(&format!("无法监听 {addr}：")) && zh.contains("用 --listen 换一个地址"), "{zh}");
    drop(taken);
    std::fs::remove_dir_all(&dir).unwrap();
}
