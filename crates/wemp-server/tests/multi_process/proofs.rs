//! The proofs and the child roles.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use wemp_proto::wechat::Platform;
use wemp_proto::{Cipher, Mode, Reply};
use wemp_store::LogQuery;
use wemp_store::MessageLog as _;
use wemp_store::postgres::PostgresDatabase;

const TOKEN: &str = "spamtest";
const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APPID: &str = "wx2c2769f8efd9abc2";
const GH: &str = "gh_10f6c3c3ac5a";
const OPENID: &str = "oyORnuP8q7ou2gfYjqLzSIWZf0rs";
const IPS: &str = "/cgi-bin/getcallbackip";

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child process needs {name}"))
}

pub(crate) fn run() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if let Ok(role) = std::env::var("WEMP_CHILD") {
        match role.as_str() {
            "instance" => rt.block_on(instance()),
            "token" => rt.block_on(token_client()),
            other => panic!("unknown child role {other}"),
        }
        return;
    }
    // `cargo test -- <filter>`: run only the tests whose name contains a positional arg.
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let selected = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    if std::env::args().any(|a| a == "--list") {
        println!("multi_instance: test\ntoken_refresh: test");
        return;
    }
    if selected("multi_instance") {
        println!("test multi_instance ...");
        rt.block_on(multi_instance());
        println!("test multi_instance ... ok");
    }
    if selected("token_refresh") {
        println!("test token_refresh ...");
        rt.block_on(token_refresh());
        println!("test token_refresh ... ok");
    }
}

// ---------------------------------------------------------------------------------------
// Child processes, driven line by line over stdin/stdout.

/// A copy of this binary in a child role; killed on drop.
struct Child {
    proc: std::process::Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Child {
    fn spawn(role: &str, vars: &[(&str, String)]) -> Self {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env("WEMP_CHILD", role).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let mut proc = cmd.spawn().expect("start a child process");
        let stdout = proc.stdout.take().unwrap();
        let stdin = proc.stdin.take();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { proc, stdin, lines }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next line, which must start with `prefix`; returns the rest.
    fn expect(&self, prefix: &str) -> String {
        let line = tokio::task::block_in_place(|| self.lines.recv_timeout(Duration::from_secs(30)))
            .unwrap_or_else(|e| panic!("child did not say {prefix:?}: {e}"));
        line.strip_prefix(prefix)
            .unwrap_or_else(|| panic!("expected {prefix:?}, child said {line:?}"))
            .to_owned()
    }

    /// Closes stdin (the child's signal to finish) and waits for a clean exit.
    fn finish(mut self) {
        drop(self.stdin.take());
        let status = tokio::task::block_in_place(|| self.proc.wait()).unwrap();
        assert!(status.success(), "child exited with {status}");
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(None) = self.proc.try_wait() {
            let _ = self.proc.kill();
            let _ = self.proc.wait();
        }
    }
}

/// Reads stdin lines as commands until it closes or `each` returns `false`.
async fn commands(mut each: impl AsyncFnMut(String) -> bool) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = rx.recv().await {
        if !each(line).await {
            break;
        }
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

// ---------------------------------------------------------------------------------------
// Service reachability and cleanup.

async fn redis_or_skip(test: &str) -> Option<redis::aio::ConnectionManager> {
    let url = redis_url();
    match tokio::time::timeout(Duration::from_secs(5), wemp_store::redis::connect(&url)).await {
        Ok(Ok(conn)) => Some(conn),
        Ok(Err(e)) => {
            println!("skipping {test}: cannot connect to Redis at {url}: {e}");
            None
        }
        Err(_) => {
            println!("skipping {test}: Redis at {url} did not answer within 5 s");
            None
        }
    }
}

async fn delete_prefix(conn: &mut redis::aio::ConnectionManager, prefix: &str) {
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(conn).await.unwrap();
    if !keys.is_empty() {
        let () = redis::cmd("DEL").arg(&keys).query_async(conn).await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// multi_instance

/// A server instance: Redis dedup (lazily connected, memory fallback), the PostgreSQL
/// message log, a handler that counts its runs in Redis and takes 300 ms.
async fn instance() {
    use wemp_server::extract::Content;
    use wemp_server::{Account, MemoryDedupStore, MessageLogObserver, Router, WechatService};
    use wemp_store::redis::RedisDedupStore;
    use wemp_store::{FallbackDedupStore, LogWriter, LogWriterConfig};

    let (redis, prefix) = (env("REDIS_URL"), env("WEMP_PREFIX"));
    let db = PostgresDatabase::connect(&env("DATABASE_URL"), &env("WEMP_SCHEMA")).await.unwrap();
    let writer = LogWriter::spawn(Arc::new(db.message_log()), LogWriterConfig::default());
    let dedup = FallbackDedupStore::new(
        RedisDedupStore::lazy(&redis, prefix.clone()).unwrap(),
        MemoryDedupStore::default(),
    );
    let counter = wemp_store::redis::connect(&redis).await.unwrap();
    let runs_key = format!("{prefix}runs");
    let pid = std::process::id();
    let router = Router::new().fallback(move |Content(text): Content| {
        let (mut counter, runs_key) = (counter.clone(), runs_key.clone());
        async move {
            let _runs: i64 = redis::cmd("INCR").arg(&runs_key).query_async(&mut counter).await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<_, redis::RedisError>(Reply::text(format!("handled {text} (pid {pid})")))
        }
    });
    let account = Account::new(APPID, TOKEN).with_aes_key(KEY).unwrap().with_original_id(GH);
    let svc = WechatService::builder()
        .account(account)
        .router(router)
        .dedup_store(dedup)
        .observer(MessageLogObserver::new(writer.clone()))
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    say(&format!("LISTENING {}", listener.local_addr().unwrap().port()));
    tokio::spawn(wemp_server::serve(listener, svc));
    commands(async |line| line != "STOP").await;
    writer.shutdown().await;
    say(&format!("STOPPED written={}", writer.stats().written()));
}

async fn post(port: u16, target: String, body: Bytes) -> (u16, String) {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req =
        http::Request::post(target).header(http::header::HOST, "127.0.0.1").body(Full::new(body)).unwrap();
    let res = sender.send_request(req).await.unwrap();
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn multi_instance() {
    let Some(mut redis) = redis_or_skip("multi_instance").await else { return };
    let (db_url, tag) = (database_url(), rand::random::<u64>());
    let schema = format!("wemp_test_multi_{tag:016x}");
    // Migrate once, before the instances start.
    let db = match PostgresDatabase::connect(&db_url, &schema).await {
        Ok(db) => db,
        Err(e) => return println!("skipping multi_instance: cannot connect to PostgreSQL at {db_url}: {e}"),
    };
    let prefix = format!("wemp-test:multi:{tag:016x}:");
    let vars = [
        ("REDIS_URL", redis_url()),
        ("DATABASE_URL", db_url),
        ("WEMP_PREFIX", prefix.clone()),
        ("WEMP_SCHEMA", schema),
    ];
    let children: Vec<Child> = (0..3).map(|_| Child::spawn("instance", &vars)).collect();
    let ports: Vec<u16> = children.iter().map(|c| c.expect("LISTENING ").parse().unwrap()).collect();

    // One message, delivered to all three instances at once.
    let msg_id = 6_054_768_590_064_713_728 + (tag % 1_000_000);
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
    let xml = format!(
        "<xml><ToUserName><![CDATA[{GH}]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>\
         <CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content>\
         <MsgId>{msg_id}</MsgId></xml>"
    );
    let platform = Platform::new(TOKEN).with_cipher(Cipher::new(KEY, APPID).unwrap());
    let signed = platform.post(Mode::Safe, &xml, OPENID, GH, &now, "4242", [5; 16]).unwrap();
    let (target, body) = (format!("/wechat?{}", signed.query_string()), Bytes::from(signed.body));
    let barrier = Arc::new(tokio::sync::Barrier::new(3));
    let tasks: Vec<_> = ports
        .iter()
        .map(|&port| {
            let (target, body, barrier) = (target.clone(), body.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                post(port, target, body).await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
        let opened = platform.open_reply(&body).unwrap_or_else(|e| panic!("bad reply {body:?}: {e}"));
        assert!(opened.encrypted);
        replies.push(opened);
    }
    // The same reply (one handler run's XML, CreateTime included) from all three.
    assert_eq!(replies[0].xml, replies[1].xml);
    assert_eq!(replies[1].xml, replies[2].xml);
    let Reply::Text { content } = &replies[0].message.reply else { panic!("not text: {:?}", replies[0]) };
    assert!(content.starts_with("handled hello (pid "), "{content}");

    let runs: i64 = redis::cmd("GET").arg(format!("{prefix}runs")).query_async(&mut redis).await.unwrap();
    assert_eq!(runs, 1, "the handler ran exactly once across three instances");

    let mut written = 0;
    for mut c in children {
        c.send("STOP");
        written += c.expect("STOPPED written=").parse::<u64>().unwrap();
        c.finish();
    }
    assert_eq!(written, 1, "one log entry written across the instances");
    let rows = db
        .message_log()
        .query(&LogQuery { appid: Some(APPID.to_owned()), ..LogQuery::default() })
        .await
        .unwrap();
    let entries: Vec<_> = rows.iter().filter(|(_, e)| e.msg_id == Some(msg_id)).collect();
    assert_eq!(entries.len(), 1, "the log holds exactly one entry: {rows:?}");
    let e = &entries[0].1;
    assert_eq!((e.dedup.as_str(), e.outcome.as_str(), e.mode.as_str()), ("new", "sent", "safe"));
    assert_eq!(e.raw_xml, xml);
    assert!(e.reply_xml.as_deref().unwrap().contains(content.as_str()));

    db.drop_schema().await.unwrap();
    delete_prefix(&mut redis, &prefix).await;
}

// ---------------------------------------------------------------------------------------
// token_refresh

/// A client process: classic tokens, a Redis token store, a clock the parent moves.
async fn token_client() {
    use wemp_client::{Client, FakeClock};
    use wemp_store::redis::RedisTokenStore;

    let clock = FakeClock::at_ms(env("START_MS").parse().unwrap());
    let store = RedisTokenStore::lazy(&env("REDIS_URL"), env("WEMP_PREFIX")).unwrap();
    let client = Client::builder(env("APPID"))
        .secret(env("SECRET"))
        .all_base_urls(env("FAKE_URL"))
        .classic_token()
        .store(Arc::new(store))
        .clock(clock.clone())
        .build()
        .unwrap();
    say("READY");
    commands(async |line| {
        if line == "CALL" {
            let calls: Vec<_> = (0..10)
                .map(|_| {
                    let client = client.clone();
                    tokio::spawn(async move { client.get::<serde_json::Value>(IPS, &[]).await })
                })
                .collect();
            let mut failures = Vec::new();
            for c in calls {
                if let Err(e) = c.await.unwrap() {
                    failures.push(e.to_string());
                }
            }
            say(&format!("DONE failures={failures:?}"));
        } else if let Some(secs) = line.strip_prefix("ADVANCE ") {
            clock.advance(Duration::from_secs(secs.parse().unwrap()));
            say("ADVANCED");
        }
        true
    })
    .await;
}

async fn token_refresh() {
    use wemp_testkit::platform::FakePlatform;

    let Some(mut redis) = redis_or_skip("token_refresh").await else { return };
    let platform = FakePlatform::start().await;
    let prefix = format!("wemp-test:tokens:{:016x}:", rand::random::<u64>());
    let vars = [
        ("REDIS_URL", redis_url()),
        ("WEMP_PREFIX", prefix.clone()),
        ("APPID", platform.appid()),
        ("SECRET", platform.secret()),
        ("FAKE_URL", platform.url()),
        ("START_MS", platform.now_ms().to_string()),
    ];
    let mut children: Vec<Child> = (0..3).map(|_| Child::spawn("token", &vars)).collect();
    for c in &children {
        c.expect("READY");
    }
    let call_all = |children: &mut Vec<Child>| {
        for c in children.iter_mut() {
            c.send("CALL");
        }
        for c in children.iter() {
            assert_eq!(c.expect("DONE failures="), "[]", "every call succeeds");
        }
    };

    // Three processes with an empty store need a token at once: one fetch.
    call_all(&mut children);
    assert_eq!(platform.token_requests(), 1, "one token request for three processes");

    // Two hours on, for the platform and every process: all refresh at once, one fetch.
    platform.advance(Duration::from_secs(7200));
    for c in children.iter_mut() {
        c.send("ADVANCE 7200");
    }
    for c in &children {
        c.expect("ADVANCED");
    }
    call_all(&mut children);
    assert_eq!(platform.token_requests(), 2, "one refresh across three processes");
    assert_eq!(platform.requests_to(IPS).len(), 60);
    assert_eq!(platform.answered_with(40001), 0, "no process used a retired token");
    assert_eq!(platform.answered_with(42001), 0, "no call went out with an expired token");

    for c in children {
        c.finish();
    }
    delete_prefix(&mut redis, &prefix).await;
}
