//! `wemp serve` run as the built binary: the README quick start as written, the example
//! config with every message type in every mode, `sim check` against it, reload on file
//! change and SIGHUP, and the stores from the config.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{AES_KEY, APPID, ServeProc, out, temp_dir, wemp_in};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/wemp.toml");

#[test]
fn quick_start_as_written() {
    // README: `wemp serve`, then the `wemp sim send …` command it prints. The test binds a
    // free port through WEMP_LISTEN so the command line stays exactly `wemp serve`.
    let dir = temp_dir("quickstart");
    let srv = ServeProc::start(&dir, &[], &[("WEMP_LISTEN", "127.0.0.1:0")]);
    let screen = srv.stdout();
    for want in
        ["Paste into the WeChat Developer Platform", "URL ", "Token ", "EncodingAESKey", "明文模式 (plain)"]
    {
        assert!(screen.contains(want), "setup screen lacks {want:?}:\n{screen}");
    }
    // Off a terminal (journald keeps what it is given) the Token is not printed: the screen
    // says where it is, and the command it prints reads it from there (issue 16 item 15).
    assert!(
        screen.contains(
            "Token           (not shown: output is not a terminal; it is accounts[0].token in ./wemp-data/wemp.toml)"
        ),
        "{screen}"
    );
    assert!(!screen.contains(&srv.token), "the Token is on a screen that is not a terminal:\n{screen}");
    assert!(srv.sim_command.contains("--config ./wemp-data/wemp.toml"), "{}", srv.sim_command);
    assert!(screen.contains("saved to ./wemp-data/wemp.toml"), "{screen}");
    // The screen names the file it just wrote, not a "built-in config".
    assert!(screen.contains("(config ./wemp-data/wemp.toml, written now, 11 rules)"), "{screen}");
    assert!(!screen.contains("built-in config"), "{screen}");
    assert_eq!(srv.token.len(), 32);

    // The printed command, word for word (`wemp` is the built binary).
    let words: Vec<&str> = srv.sim_command.split_whitespace().collect();
    assert_eq!(&words[..3], ["wemp", "sim", "send"], "{}", srv.sim_command);
    let o = wemp_in(&dir, &words[1..], &[]);
    assert!(o.status.success(), "{}", out(&o));
    let text = out(&o);
    assert!(text.contains("← text reply"), "{text}");
    assert!(text.contains("Try: \"hello\", \"order 42\""), "the demo help rule answers: {text}");

    // The token was saved where the screen said, and a second start keeps it.
    let saved = std::fs::read_to_string(dir.join("wemp-data/wemp.toml")).unwrap();
    assert!(saved.contains(&srv.token));
    let token = srv.token.clone();
    let (status, err) = srv.stop();
    assert!(status.success(), "{status}: {err}");
    assert!(err.contains("message log flushed"), "{err}");
    assert!(dir.join("wemp-data/wemp.db").exists());
    let again = ServeProc::start(&dir, &[], &[("WEMP_LISTEN", "127.0.0.1:0")]);
    assert_eq!(again.token, token);
    assert!(!again.stdout().contains("was generated"), "{}", again.stdout());
    drop(again);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every type `sim send` knows, with a piece of the reply the example config gives it.
const EXAMPLE_CASES: &[(&[&str], &str)] = &[
    (&["text", "help"], "Send \"order 42\", a picture or your location."),
    (&["text", "帮助"], "Send \"order 42\""),
    (&["text", "order 42"], "Order 42 is on its way, o_wemp_sim_user."),
    (&["text", "what is the price?"], "[transferred to customer service]"),
    (&["text", "something else"], "Sorry, I did not understand."),
    (&["image"], "[image THANKS_IMAGE_MEDIA_ID]"),
    (&["voice", "--recognition", "help"], "Send \"order 42\""),
    (&["video"], "Sorry, I did not understand."),
    (&["shortvideo"], "Sorry, I did not understand."),
    (&["location", "23.13", "113.26", "--label", "Guangzhou"], "You are at"),
    (&["link", "https://example.com/"], "Sorry, I did not understand."),
    (&["event", "subscribe"], "Welcome, o_wemp_sim_user!"),
    (&["event", "subscribe", "--scene", "spring"], "spring offer"),
    (&["event", "scan", "door"], "Checked in at the door."),
    (&["event", "click", "NEWS"], "[news, 2 article(s)]"),
    (&["event", "click", "MUSIC"], "[music Theme"),
    (&["event", "click", "CONTACT"], "customer service agent support@example_wechat"),
    (&["event", "view", "https://example.com/"], "no reply (success)"),
    (&["event", "unsubscribe"], "no reply (success)"),
    // The catch-all answers messages, not events: a LOCATION report (sent when a follower
    // opens the chat) gets no apology.
    (&["event", "location"], "no reply (success)"),
];

#[test]
fn example_config_every_type_in_every_mode_and_sim_check() {
    let dir = temp_dir("example");
    let config = dir.join("wemp.toml");
    std::fs::copy(EXAMPLE, &config).unwrap();
    let srv = ServeProc::start(
        &dir,
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--appid",
            APPID,
            "--aes-key",
            AES_KEY,
            "--mode",
            "compatible",
        ],
        &[],
    );
    assert_eq!(srv.token, "wempDemoToken2024", "the token from the example file");
    let screen = srv.stdout();
    assert!(screen.contains("兼容模式 (compatible)") && !screen.contains(AES_KEY), "{screen}");
    assert!(
        screen.contains("EncodingAESKey  (not shown: output is not a terminal; set by --aes-key)"),
        "{screen}"
    );
    assert!(srv.sim_command.contains("--mode compatible"), "{}", srv.sim_command);
    // A compatible-mode account trusts only what is encrypted: a plain request is refused
    // (issue 11 §1, issue 16 item 6; it used to be answered).
    let o = srv.send(&dir, "plain", &["text", "help"]);
    assert_eq!(o.status.code(), Some(1), "plain to a compatible-mode account: {}", out(&o));
    assert!(out(&o).contains("403"), "{}", out(&o));
    for mode in ["compatible", "safe"] {
        for (what, want) in EXAMPLE_CASES {
            let o = srv.send(&dir, mode, what);
            let text = out(&o);
            assert!(o.status.success(), "{mode} {what:?}: {text}");
            assert!(text.contains(want), "{mode} {what:?}: wanted {want:?} in\n{text}");
            if mode != "plain" && !text.contains("no reply") {
                assert!(text.contains("reply, encrypted"), "{mode} {what:?}: {text}");
            }
        }
    }
    let o = wemp_in(
        &dir,
        // The encrypted modes only: the compatible-mode account refuses plain requests.
        &[
            "sim",
            "check",
            &srv.url,
            "--token",
            &srv.token,
            "--appid",
            APPID,
            "--aes-key",
            AES_KEY,
            "--mode",
            "compatible",
            "--mode",
            "safe",
        ],
        &[],
    );
    assert!(o.status.success(), "sim check against serve failed:\n{}", out(&o));
    assert!(out(&o).contains("0 fail"), "{}", out(&o));
    let (status, err) = srv.stop();
    assert!(status.success(), "{status}: {err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn safe_mode_refuses_plain_requests_and_a_bad_config_names_the_line() {
    let dir = temp_dir("safe");
    let srv = ServeProc::start(
        &dir,
        &[
            "--listen",
            "127.0.0.1:0",
            "--token",
            "SafeToken1",
            "--appid",
            APPID,
            "--aes-key",
            AES_KEY,
            "--mode",
            "safe",
        ],
        &[],
    );
    assert!(srv.stdout().contains("安全模式 (safe)"));
    let o = srv.send(&dir, "safe", &["text", "help"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = srv.send(&dir, "plain", &["text", "help"]);
    assert_eq!(o.status.code(), Some(1), "a plain request to a safe-mode server is refused: {}", out(&o));
    drop(srv);

    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[[rules]]\nregex = \"(\"\nreply.text = \"x\"\n",
    )
    .unwrap();
    let o = wemp_in(&dir, &["serve", "--config", bad.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("bad.toml:5: rules[0].regex"), "{}", out(&o));
    let o = wemp_in(&dir, &["serve", "--listen", "127.0.0.1:0", "--data-dir", "d"], &[("WEMP_TOKEN", "x")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("WEMP_TOKEN: accounts[0].token"), "{}", out(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn toml_keyword_rules_read_any_case_and_voice_and_the_catch_all_skips_events() {
    let dir = temp_dir("rules-bin");
    let config = dir.join("wemp.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[[accounts]]\ntoken = \"RulesToken1\"\n\n\
         [[rules]]\nname = \"help\"\nkeyword = [\"Help\", \"帮助\"]\nreply.text = \"help for {openid}\"\n\n\
         [[rules]]\nevent = \"subscibe\"\nreply.text = \"a typo never matches\"\n\n\
         [[rules]]\nname = \"catch-all\"\ndefault = true\nreply.text = \"Sorry: {content}\"\n",
    )
    .unwrap();
    let srv = ServeProc::start(&dir, &["--config", config.to_str().unwrap()], &[]);
    for (what, want) in [
        (&["text", "HELP"][..], "help for o_wemp_sim_user"),
        (&["voice", "--recognition", "帮助"][..], "help for o_wemp_sim_user"),
        (&["text", "zzz"][..], "Sorry: zzz"),
        (&["event", "location"][..], "no reply (success)"),
        (&["event", "subscribe"][..], "no reply (success)"),
    ] {
        let o = srv.send(&dir, "plain", what);
        assert!(o.status.success() && out(&o).contains(want), "{what:?}: wanted {want:?} in\n{}", out(&o));
    }
    let err = srv.stderr();
    assert!(err.contains("rules[1].event: unknown event \"subscibe\": did you mean \"subscribe\"?"), "{err}");
    let (status, err) = srv.stop();
    assert!(status.success(), "{status}: {err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// With `WEMP_LOG=wemp_server=debug`, each message's `answered` line carries the message's
/// span: the fields given when it was made and the rule recorded later, as tracing's own
/// fmt layer writes them (`wemp serve` writes a span's fields only for a line inside it).
#[test]
fn the_answered_line_carries_the_messages_fields_and_rule() {
    let dir = temp_dir("span-bin");
    let config = dir.join("wemp.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[[accounts]]\ntoken = \"SpanToken1\"\n\n\
         [[rules]]\nname = \"help\"\nkeyword = \"help\"\nreply.text = \"help\"\n\n\
         [[rules]]\nname = \"catch-all\"\ndefault = true\nreply.text = \"Sorry\"\n",
    )
    .unwrap();
    let srv = ServeProc::start(
        &dir,
        &["--config", config.to_str().unwrap()],
        &[("WEMP_LOG", "wemp_server=debug,info")],
    );
    for (what, want) in [
        (&["text", "help"][..], "help"),
        (&["text", "zzz"][..], "Sorry"),
        (&["event", "location"][..], "success"),
    ] {
        let o = srv.send(&dir, "plain", what);
        assert!(o.status.success() && out(&o).contains(want), "{what:?}: wanted {want:?} in\n{}", out(&o));
    }
    let (status, log) = srv.stop();
    assert!(status.success(), "{status}: {log}");
    let answered: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_time, rest)| rest))
        .filter_map(|l| l.split_once(" latency_us=").map(|(line, _)| line))
        .collect();
    let span = "wechat{appid=default mode=plain msg_type";
    let want = [
        format!("DEBUG {span}=text openid=o_we…user dedup=new rule=\"help\"}}: answered status=200"),
        format!("DEBUG {span}=text openid=o_we…user dedup=new rule=\"catch-all\"}}: answered status=200"),
        format!(
            "DEBUG {span}=event/LOCATION openid=o_we…user dedup=new rule=\"none\"}}: answered status=200"
        ),
    ];
    assert_eq!(answered, want, "{log}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn rules_file(reply: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[[accounts]]\ntoken = \"ReloadToken1\"\n\n\
         [[rules]]\nkeyword = \"ping\"\nreply.text = \"{reply}\"\n"
    )
}

fn reply_to_ping(dir: &Path, srv: &ServeProc) -> String {
    out(&srv.send(dir, "plain", &["text", "ping"]))
}

fn wait_for_reply(dir: &Path, srv: &ServeProc, want: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if reply_to_ping(dir, srv).contains(want) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn rules_reload_on_file_change_and_sighup_and_keep_the_old_rules_on_error() {
    let dir = temp_dir("reload");
    let config = dir.join("wemp.toml");
    std::fs::write(&config, rules_file("first")).unwrap();
    let srv = ServeProc::start(&dir, &["--config", config.to_str().unwrap()], &[]);
    assert!(reply_to_ping(&dir, &srv).contains("first"));

    // A changed file is picked up without a restart.
    std::fs::write(&config, rules_file("second")).unwrap();
    assert!(wait_for_reply(&dir, &srv, "second"), "no reload:\n{}", srv.stderr());
    assert!(srv.stderr().contains("rules reloaded"), "{}", srv.stderr());

    // A broken file: the error names file and line, the previous rules keep answering.
    std::fs::write(
        &config,
        rules_file("third").replace("keyword = \"ping\"", "keyword = \"ping\"\nregex = \"(\""),
    )
    .unwrap();
    assert!(srv.wait_stderr("keeping the previous rules", Duration::from_secs(15)), "{}", srv.stderr());
    let err = srv.stderr();
    assert!(err.contains(&format!("{}:", config.display())), "{err}");
    assert!(err.contains("rules[0]"), "{err}");
    assert!(reply_to_ping(&dir, &srv).contains("second"));

    // SIGHUP reloads too (the file is fixed first, so both paths may fire; the log says which).
    std::fs::write(&config, rules_file("fourth")).unwrap();
    srv.signal("HUP");
    assert!(srv.wait_stderr("rules reloaded (SIGHUP)", Duration::from_secs(15)), "{}", srv.stderr());
    assert!(wait_for_reply(&dir, &srv, "fourth"));

    // Settings other than rules need a restart, and the log says so.
    std::fs::write(&config, rules_file("fifth").replace("ReloadToken1", "OtherToken2")).unwrap();
    assert!(srv.wait_stderr("only after a restart", Duration::from_secs(15)), "{}", srv.stderr());
    assert!(wait_for_reply(&dir, &srv, "fifth"));

    // An editor that empties the file before writing it: the empty moment is waited out
    // (loaded, it would be a configuration without rules), the new contents are taken.
    std::fs::write(&config, "").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(reply_to_ping(&dir, &srv).contains("fifth"), "{}", srv.stderr());
    std::fs::write(&config, rules_file("sixth").replace("ReloadToken1", "OtherToken2")).unwrap();
    assert!(wait_for_reply(&dir, &srv, "sixth"), "{}", srv.stderr());
    let (status, err) = srv.stop();
    assert!(status.success(), "{status}: {err}");
    assert!(!err.contains("ReloadToken1") && !err.contains("OtherToken2"), "tokens stay out of logs: {err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn requests_in_flight_during_reloads_are_all_answered() {
    let dir = temp_dir("reload-load");
    let config = dir.join("wemp.toml");
    std::fs::write(&config, rules_file("r0")).unwrap();
    let srv = ServeProc::start(&dir, &["--config", config.to_str().unwrap()], &[]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let config = config.clone();
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                std::fs::write(&config, rules_file(&format!("r{i}"))).unwrap();
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    // bench sends distinct messages while the rules change under it; none may fail.
    let o = wemp_in(&dir, &["bench", &srv.url, "--token", &srv.token, "-c", "8", "-d", "3s", "--json"], &[]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert!(o.status.success(), "{}", out(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(report["requests"].as_u64().unwrap_or(0) > 0, "{report}");
    assert!(srv.stderr().contains("rules reloaded"), "{}", srv.stderr());
    drop(srv);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serve_starts_and_answers_while_redis_is_down() {
    let dir = temp_dir("redis-down");
    let srv = ServeProc::start(
        &dir,
        &["--listen", "127.0.0.1:0", "--token", "NoRedis1", "--redis", "redis://127.0.0.1:9/"],
        &[],
    );
    assert!(srv.stdout().contains("Dedup: redis"), "{}", srv.stdout());
    assert!(srv.stderr().contains("Redis does not answer"), "{}", srv.stderr());
    let o = srv.send(&dir, "plain", &["text", "help"]);
    assert!(o.status.success() && out(&o).contains("Try: \"hello\""), "{}", out(&o));
    let (status, err) = srv.stop();
    assert!(status.success(), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--color never` on a terminal: neither the first screen nor the log lines carry ANSI
/// escapes (and by default, on a terminal, the log lines do). Runs `serve` under
/// `script`, which gives it a terminal; steps aside where `script` is missing.
#[test]
fn color_never_keeps_the_log_lines_plain_on_a_terminal() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: `script` (util-linux) is not installed, so no terminal to run serve on");
        return;
    }
    let dir = temp_dir("color");
    let on_a_terminal = |color: &str| {
        let cmd = format!(
            "timeout -s INT 2 {} --color {color} serve --listen 127.0.0.1:0 --data-dir {}",
            env!("CARGO_BIN_EXE_wemp"),
            dir.join(color).display()
        );
        let o = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env_remove("NO_COLOR")
            .current_dir(&dir)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let auto = on_a_terminal("auto");
    assert!(auto.contains("serving") && auto.contains('\x1b'), "{auto}");
    let never = on_a_terminal("never");
    assert!(never.contains("serving"), "{never}");
    assert!(!never.contains('\x1b'), "colour with --color never:\n{never}");
}

/// Whether this process runs as root (which writes through any file mode).
fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn a_read_only_config_without_a_token_says_what_to_set() {
    // systemd's ProtectSystem=strict makes the config read-only: the generated Token cannot
    // be saved, and the error must say so instead of "Permission denied (os error 13)".
    let dir = temp_dir("readonly");
    let file = dir.join("wemp.toml");
    std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:0\"\n\n[[accounts]]\nmode = \"plain\"\n").unwrap();
    let mode = |p: &Path, m: u32| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    };
    mode(&file, 0o444);
    mode(&dir, 0o555);
    let file_arg = file.to_str().unwrap();
    let mut args = vec!["serve", "--config", file_arg, "--data-dir", "/nonexistent-wemp-data"];
    let o = if is_root() {
        // Root writes through file modes: run the binary as nobody, as systemd would.
        let mut all = vec!["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_wemp")];
        all.append(&mut args);
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args(&all).current_dir(&dir).env("NO_COLOR", "1");
        for v in common::WEMP_VARS {
            cmd.env_remove(v);
        }
        match cmd.stdin(std::process::Stdio::null()).output() {
            Ok(o) => o,
            Err(e) => {
                eprintln!("skipped: running as root and setpriv cannot drop privileges: {e}");
                mode(&dir, 0o755);
                std::fs::remove_dir_all(&dir).unwrap();
                return;
            }
        }
    } else {
        wemp_in(&dir, &args, &[])
    };
    mode(&dir, 0o755);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(2), "{text}");
    let want = format!("no Token configured and the generated one cannot be saved to {file_arg}");
    assert!(text.contains(&want), "{text}");
    assert!(text.contains("set accounts[0].token or WEMP_TOKEN"), "{text}");
    assert!(!std::fs::read_to_string(&file).unwrap().contains("token"), "the file is unchanged");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_setup_screen_speaks_the_locale() {
    let dir = temp_dir("locale");
    let env = [("WEMP_LISTEN", "127.0.0.1:0"), ("WEMP_TOKEN", "LocaleToken1")];
    let en = ServeProc::start(&dir, &[], &[env[0], env[1], ("LANG", "en_US.UTF-8")]);
    let screen = en.stdout();
    for want in [
        "wemp serve is running on http://127.0.0.1:",
        "Paste into the WeChat Developer Platform (developers.weixin.qq.com/platform → 我的业务 → 公众号/服务号 → 基础信息 → 消息推送配置):",
        "  Token           (not shown: output is not a terminal; set by WEMP_TOKEN)\n",
        "  消息加解密方式  明文模式 (plain)\n",
        "Try it locally (in another terminal):",
        "Stop with Ctrl-C.",
    ] {
        assert!(screen.contains(want), "English screen lacks {want:?}:\n{screen}");
    }
    drop(en);

    // LC_ALL outranks LANG, as POSIX says; the sim command stays the same.
    let zh =
        ServeProc::start(&dir, &[], &[env[0], env[1], ("LANG", "en_US.UTF-8"), ("LC_ALL", "zh_CN.UTF-8")]);
    let screen = zh.stdout();
    for want in [
        "wemp serve 已在 http://127.0.0.1:",
        "请在微信开发者平台填写（developers.weixin.qq.com/platform → 我的业务 → 公众号/服务号 → 基础信息 → 消息推送配置）：",
        "  服务器地址（URL）  http://127.0.0.1:",
        "  令牌（Token）      （输出不是终端，不显示：由 WEMP_TOKEN 设置）\n",
        "  消息加解密密钥     （任意：明文模式不使用它，点“随机生成”即可）\n",
        "  消息加解密方式     明文模式\n",
        "注意： 微信只调用公网主机的 80/443 端口",
        "在本机试一试（另开一个终端）：",
        "网页控制台（以粉丝身份聊天、实时日志、接入配置）：",
        "消息日志：sqlite ./wemp-data/wemp.db",
        "按 Ctrl-C 停止。",
    ] {
        assert!(screen.contains(want), "Chinese screen lacks {want:?}:\n{screen}");
    }
    assert!(!screen.contains("Paste into"), "{screen}");
    assert!(zh.sim_command.starts_with("wemp sim send http://127.0.0.1:"), "{}", zh.sim_command);
    let words: Vec<&str> = zh.sim_command.split_whitespace().collect();
    // It reads the Token from WEMP_TOKEN, as the server did.
    let o = wemp_in(&dir, &words[1..], &[env[1]]);
    assert!(o.status.success(), "the printed command works: {}", out(&o));
    drop(zh);
    std::fs::remove_dir_all(&dir).unwrap();
}
