//! `wemp doctor` run as the built binary against the fake WeChat platform, with injected
//! platform errors, and against broken configurations.

mod common;

use std::path::Path;

use common::{AES_KEY, database_url, out as text, temp_dir, wemp_in};
use wemp_testkit::platform::{FakePlatform, Fault};

fn config(dir: &Path, platform: &FakePlatform, secret: &str) -> std::path::PathBuf {
    let path = dir.join("wemp.toml");
    std::fs::write(
        &path,
        format!(
            "[storage]\ndata_dir = \"data\"\n\n[[accounts]]\ntoken = \"DoctorToken1\"\nappid = \"{}\"\n\
             appsecret = \"{secret}\"\naes_key = \"{AES_KEY}\"\nmode = \"safe\"\n",
            platform.appid()
        ),
    )
    .unwrap();
    path
}

/// Runs `wemp doctor --config F --api-base URL ARGS` off the runtime thread.
async fn doctor(dir: &Path, cfg: &Path, platform: &FakePlatform, args: &[&str]) -> std::process::Output {
    let mut all: Vec<String> =
        ["doctor", "--config", cfg.to_str().unwrap(), "--api-base", &platform.url(), "--timeout", "10s"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
    all.extend(args.iter().map(|s| (*s).to_owned()));
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        wemp_in(&dir, &refs, &[])
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_against_the_fake_platform() {
    let platform = FakePlatform::start().await;
    let dir = temp_dir("doctor");
    let cfg = config(&dir, &platform, &platform.secret());

    // A healthy setup.
    let o = doctor(&dir, &cfg, &platform, &[]).await;
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    for want in [
        "PASS  configuration",
        "PASS  token",
        "PASS  appid",
        "PASS  EncodingAESKey",
        "PASS  message log database",
        "SKIP  redis",
        "PASS  access token",
        "PASS  API call",
        "PASS  customer-service API",
        "PASS  API quota: /cgi-bin/stable_token: 1 of 100000 calls used today, 99999 left",
        "/cgi-bin/message/custom/send: 0 of 100000 calls used today, 100000 left",
        "quotas reset at 00:00 China time (16:00 UTC)",
    ] {
        assert!(t.contains(want), "{want:?} missing:\n{t}");
    }
    assert!(!t.contains(&platform.secret()), "the AppSecret is never printed:\n{t}");
    assert!(!dir.join("data/wemp.db").exists(), "doctor creates no database");
    assert!(platform.token_requests() >= 1);

    // 40164: the IP is not whitelisted.
    platform.inject_times("/cgi-bin/stable_token", Fault::ErrCode(40164), 1);
    let o = doctor(&dir, &cfg, &platform, &[]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("FAIL  access token: WeChat refused this machine's IP address (40164)"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("API IP 白名单"), "{}", text(&o));

    // The same in Chinese: check names and the instruction.
    platform.inject_times("/cgi-bin/stable_token", Fault::ErrCode(40164), 1);
    let o = tokio::task::spawn_blocking({
        let (dir, cfg, base) = (dir.clone(), cfg.clone(), platform.url());
        move || {
            let args = ["doctor", "--config", cfg.to_str().unwrap(), "--api-base", &base, "--timeout", "10s"];
            wemp_in(&dir, &args, &[("LANG", "zh_CN.UTF-8")])
        }
    })
    .await
    .unwrap();
    let t = text(&o);
    assert!(t.contains("FAIL  access_token: 微信拒绝了本机的 IP 地址\u{ff08}40164\u{ff09}"), "{t}");
    assert!(t.contains("PASS  消息加解密密钥\u{ff08}EncodingAESKey\u{ff09}: 43 个字符"), "{t}");

    // 40125: the AppSecret is wrong — the platform itself says so for a wrong secret.
    let wrong = config(&dir, &platform, "not-the-secret");
    let o = doctor(&dir, &wrong, &platform, &["--json"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["passed"], false);
    let token = v["findings"].as_array().unwrap().iter().find(|f| f["name"] == "access token").unwrap();
    assert_eq!(token["status"], "fail");
    assert!(token["details"][0].as_str().unwrap().contains("the AppSecret is wrong (40125)"), "{token}");
    let cfg = config(&dir, &platform, &platform.secret());

    // The customer-service send's daily quota is used up: late replies stop until the reset.
    platform.script(
        "/cgi-bin/openapi/quota/get",
        serde_json::json!({ "errcode": 0, "errmsg": "ok", "quota": { "daily_limit": 500_000, "used": 500_000, "remain": 0 } }),
    );
    let o = doctor(&dir, &cfg, &platform, &[]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o)
            .contains("FAIL  API quota: /cgi-bin/stable_token: 500000 of 500000 calls used today, 0 left"),
        "{}",
        text(&o)
    );
    // The quota API itself refused: a warning that says why, not a failure.
    platform.unscript("/cgi-bin/openapi/quota/get");
    platform.inject_times("/cgi-bin/openapi/quota/get", Fault::ErrCode(48001), 2);
    let o = doctor(&dir, &cfg, &platform, &[]).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("WARN  API quota: /cgi-bin/stable_token: quota unknown (this account lacks"),
        "{}",
        text(&o)
    );

    // 48001: the account lacks the customer-service permission.
    platform.inject_times("/cgi-bin/customservice/getkflist", Fault::ErrCode(48001), 1);
    let o = doctor(&dir, &cfg, &platform, &[]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("PASS  access token"), "{t}");
    assert!(
        t.contains("FAIL  customer-service API: this account lacks the permission for this API (48001)"),
        "{t}"
    );
    assert!(t.contains("only logged"), "{t}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_explains_configuration_problems() {
    let platform = FakePlatform::start().await;
    let dir = temp_dir("doctor-cfg");
    // The AppSecret is not a flag.
    let o = wemp_in(&dir, &["doctor", "--appsecret", "x"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // Problems in the file, with their lines; the token from the environment names it.
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[accounts]]\nappid = \"wx123\"\naes_key = \"short\"\nmode = \"safe\"\n").unwrap();
    let o = doctor(&dir, &bad, &platform, &[]).await;
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(t.contains("FAIL  configuration"), "{t}");
    assert!(t.contains("bad.toml:2: accounts[0].appid"), "{t}");
    assert!(t.contains("bad.toml:3: accounts[0].aes_key: not a valid EncodingAESKey"), "{t}");

    let good = dir.join("good.toml");
    std::fs::write(&good, "[[accounts]]\ntoken = \"GoodToken1\"\n").unwrap();
    let o = tokio::task::spawn_blocking({
        let (dir, good) = (dir.clone(), good.clone());
        move || wemp_in(&dir, &["doctor", "--config", good.to_str().unwrap()], &[("WEMP_TOKEN", "a b")])
    })
    .await
    .unwrap();
    assert!(
        text(&o).contains("WEMP_TOKEN: accounts[0].token: must be 3 to 32 letters and digits"),
        "{}",
        text(&o)
    );

    // Unreachable Redis and PostgreSQL, and a public URL on a port WeChat does not call.
    let o = tokio::task::spawn_blocking({
        let (dir, good) = (dir.clone(), good.clone());
        move || {
            wemp_in(
                &dir,
                &[
                    "doctor",
                    "--config",
                    good.to_str().unwrap(),
                    "--redis",
                    "redis://127.0.0.1:9/",
                    "--database",
                    "postgres://nobody@127.0.0.1:9/x",
                    "--timeout",
                    "3s",
                ],
                &[("WEMP_PUBLIC_URL", "https://bot.example.com:8443/wechat")],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(t.contains("PASS  token"), "{t}");
    assert!(t.contains("FAIL  redis: redis://127.0.0.1:9/"), "{t}");
    assert!(t.contains("FAIL  message log database: postgres postgres://nobody@127.0.0.1:9/x"), "{t}");
    assert!(
        t.contains(
            "FAIL  public URL: https://bot.example.com:8443/wechat: WeChat calls only ports 80 and 443"
        ),
        "{t}"
    );
    assert!(t.contains("SKIP  API access"), "{t}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn doctor_help_says_what_its_token_flag_does() {
    let o = wemp_in(Path::new("."), &["doctor", "--help"], &[]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("The Token to check instead of the configured one"), "{t}");
    assert!(!t.contains("generated and saved"), "doctor generates nothing: {t}");
}

#[test]
fn doctor_refuses_public_urls_wechat_cannot_call_and_notices_the_path() {
    let dir = temp_dir("doctor-url");
    let good = dir.join("good.toml");
    std::fs::write(&good, "[[accounts]]\ntoken = \"GoodToken1\"\n").unwrap();
    let run = |url: &str, lang: &str| {
        wemp_in(
            &dir,
            &["doctor", "--config", good.to_str().unwrap()],
            &[("WEMP_PUBLIC_URL", url), ("LANG", lang)],
        )
    };
    for (url, host) in [
        ("https://127.0.0.1/wechat", "127.0.0.1"),
        ("http://localhost/wechat", "localhost"),
        ("https://[::1]/wechat", "[::1]"),
    ] {
        let o = run(url, "C");
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let want = format!(
            "FAIL  public URL: {url}: {host} is this machine (loopback); WeChat calls only public hosts"
        );
        assert!(text(&o).contains(&want), "{}", text(&o));
    }
    let o = run("https://192.168.1.20/wechat", "C");
    assert!(text(&o).contains("192.168.1.20 is a private network address"), "{}", text(&o));

    // A public path other than the callback path is a warning, not a failure: a proxy may
    // rewrite it.
    let o = run("https://bot.example.com/wx", "C");
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("WARN  public URL: https://bot.example.com/wx"), "{t}");
    assert!(
        t.contains("WeChat will call the path /wx but wemp serves /wechat: set server.path = \"/wx\""),
        "{t}"
    );
    let o = run("https://bot.example.com/wechat", "C");
    assert!(text(&o).contains("PASS  public URL: https://bot.example.com/wechat"), "{}", text(&o));

    // The same checks in Chinese.
    let o = run("https://127.0.0.1/wechat", "zh_CN.UTF-8");
    let t = text(&o);
    assert!(t.contains("FAIL  公网地址: https://127.0.0.1/wechat：127.0.0.1 是本机地址（loopback）"), "{t}");
    assert!(t.contains("PASS  令牌（Token）: 10 个字符，字母和数字"), "{t}");
    assert!(t.contains("doctor：3 项通过，1 项失败，0 项警告，4 项跳过"), "{t}");
    let o = run("https://bot.example.com/wx", "zh_CN.UTF-8");
    assert!(text(&o).contains("微信会调用路径 /wx，但 wemp 在 /wechat 上提供服务"), "{}", text(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_creates_no_postgresql_schema() {
    let url = database_url();
    let schema = format!("first_hour_doctor_{}", rand::random::<u32>());
    match wemp_store::postgres::probe(&url, &schema).await {
        Ok(wemp_store::postgres::SchemaState::Missing) => {}
        Ok(other) => panic!("a fresh schema name exists already: {other:?}"),
        Err(e) => {
            eprintln!("skipped: no PostgreSQL at {url}: {e}");
            return;
        }
    }
    let dir = temp_dir("doctor-pg");
    let database = format!("{url}?schema={schema}");
    let o = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || wemp_in(&dir, &["doctor", "--token", "PgToken1", "--database", &database], &[])
    })
    .await
    .unwrap();
    let t = text(&o);
    assert!(
        t.contains("PASS  message log database: postgres") && t.contains("the schema does not exist yet"),
        "{t}"
    );
    assert_eq!(
        wemp_store::postgres::probe(&url, &schema).await.unwrap(),
        wemp_store::postgres::SchemaState::Missing,
        "doctor created schema {schema}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every file in `dir` with its bytes, to tell whether anything was written.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_opens_an_existing_sqlite_log_read_only() {
    let dir = temp_dir("doctor-sqlite");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let run = |dir: &Path| {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || {
            wemp_in(&dir, &["doctor", "--token", "SqliteToken1", "--data-dir", "data"], &[])
        })
    };

    // An empty file (what `touch` leaves): opening it for writing would create the tables.
    std::fs::write(data.join("wemp.db"), b"").unwrap();
    let before = snapshot(&data);
    let o = run(&dir).await.unwrap();
    let t = text(&o);
    assert!(
        t.contains(
            "PASS  message log database: sqlite data/wemp.db: reachable; the schema does not exist yet"
        ),
        "{t}"
    );
    assert_eq!(snapshot(&data), before, "doctor wrote to the database directory:\n{t}");

    // A log `wemp serve` wrote: reachable, and left byte for byte as it was.
    std::fs::remove_file(data.join("wemp.db")).unwrap();
    drop(wemp_store::sqlite::SqliteDatabase::open(data.join("wemp.db")).await.unwrap());
    let before = snapshot(&data);
    let o = run(&dir).await.unwrap();
    let t = text(&o);
    assert!(t.contains("PASS  message log database: sqlite data/wemp.db: reachable"), "{t}");
    assert_eq!(snapshot(&data), before, "doctor wrote to the database directory:\n{t}");

    // Not a database at all: a clear failure, and the file is left alone.
    std::fs::write(data.join("wemp.db"), b"this is not a database, it is a note").unwrap();
    let o = run(&dir).await.unwrap();
    let t = text(&o);
    assert!(t.contains("FAIL  message log database: sqlite data/wemp.db:"), "{t}");
    assert_eq!(std::fs::read(data.join("wemp.db")).unwrap(), b"this is not a database, it is a note");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// With Redis configured, doctor says which claim its version takes and warns when Redis
/// would evict dedup keys once full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reads_what_redis_says_of_itself() {
    let platform = FakePlatform::start().await;
    let dir = temp_dir("doctor-redis");
    let cfg = config(&dir, &platform, &platform.secret());
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let plain = match wemp_testkit::redis_server::RedisServer::start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("skipping the doctor's redis test: cannot start redis-server: {e}");
            return;
        }
    };
    let evicting = wemp_testkit::redis_server::RedisServer::start_with(
        free(),
        &["--maxmemory", "100mb", "--maxmemory-policy", "volatile-lru"],
    )
    .unwrap();

    let o = doctor(&dir, &cfg, &platform, &["--redis", &plain.url()]).await;
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains(&format!("PASS  redis: {}: reachable", plain.url())), "{t}");
    assert!(t.contains(": a dedup claim is one SET … NX … GET"), "{t}");
    assert!(!t.contains("evicts"), "{t}");

    let o = doctor(&dir, &cfg, &platform, &["--redis", &evicting.url()]).await;
    let t = text(&o);
    assert!(o.status.success(), "a warning, not a failure: {t}");
    assert!(t.contains(&format!("WARN  redis: {}: reachable", evicting.url())), "{t}");
    assert!(
        t.contains(
            "Redis evicts keys once it holds maxmemory (104857600 bytes; maxmemory-policy volatile-lru)"
        ),
        "{t}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
