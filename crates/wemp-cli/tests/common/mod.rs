//! What the tests of the `wemp` binary share: running `wemp` with a clean environment
//! ([`wemp_in`], [`out`]), a running `wemp serve` ([`ServeProc`]) and `wemp sim send` against
//! it ([`sim_send`]), raw sockets ([`net`]), the shared Redis and PostgreSQL
//! ([`database_url`], [`redis_url`]), WeChat's side of a callback written by hand and an app
//! behind `--forward` that counts its calls and a running `wemp relay` ([`app`]), and a small Official Account server for testing
//! `wemp sim` and `wemp bench`: correct by default, with deliberate flaws to switch on
//! ([`spawn`]).
#![allow(dead_code, unreachable_pub, unused_imports)]

pub mod app;
pub mod net;

pub use app::{CountingApp, RelayProc, signed_query, text_xml};
pub use net::{authority, free_port, http_get, post, raw, wait_for_port};

use std::collections::HashMap;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use wemp_proto::reply::Article;
use wemp_proto::{Cipher, EncryptedReply, Envelope, Incoming, Reply, ReplyContext, signature};

pub const TOKEN: &str = "spamtest";
pub const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
pub const APPID: &str = "wx2c2769f8efd9abc2";

/// How the verification GET answers echostr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Echo {
    #[default]
    Plain,
    Quoted,
    Xml,
    Json,
}

/// Deliberate mistakes.
#[derive(Clone, Debug, Default)]
pub struct Flaws {
    pub echo: Echo,
    /// Reply with To/From swapped.
    pub swapped: bool,
    /// CreateTime in milliseconds.
    pub millis: bool,
    /// Truncated reply XML.
    pub invalid_xml: bool,
    /// Sleep this long before answering POSTs.
    pub slow: Option<Duration>,
    /// Encrypted replies with a wrong MsgSignature.
    pub bad_msg_signature: bool,
    /// Skip every signature check (and answer forged requests).
    pub answers_forged: bool,
    /// Every answer differs (no dedup of retries).
    pub no_dedup: bool,
    /// Answer text messages with two news articles.
    pub two_articles: bool,
    /// Require safe mode: refuse a request without an `<Encrypt>` (403), as a server
    /// configured for safe mode does.
    pub refuse_plain: bool,
}

struct AppState {
    token: String,
    cipher: Cipher,
    flaws: Flaws,
    seen: Mutex<HashMap<String, String>>,
    counter: AtomicU64,
    posts: AtomicU64,
}

/// The Unix time in seconds.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

async fn verify(State(st): State<Arc<AppState>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let p = |k: &str| q.get(k).cloned().unwrap_or_default();
    if !st.flaws.answers_forged
        && signature::verify(&st.token, &p("timestamp"), &p("nonce"), &p("signature")).is_err()
    {
        return (StatusCode::FORBIDDEN, "bad signature").into_response();
    }
    let echostr = p("echostr");
    match st.flaws.echo {
        Echo::Plain => ([(header::CONTENT_TYPE, "text/plain")], echostr).into_response(),
        Echo::Quoted => {
            ([(header::CONTENT_TYPE, "application/json")], format!("\"{echostr}\"")).into_response()
        }
        Echo::Xml => {
            ([(header::CONTENT_TYPE, "text/xml")], format!("<xml><echostr>{echostr}</echostr></xml>"))
                .into_response()
        }
        Echo::Json => {
            ([(header::CONTENT_TYPE, "application/json")], format!("{{\"echostr\":\"{echostr}\"}}"))
                .into_response()
        }
    }
}

fn answer(st: &AppState, incoming: &Incoming) -> Reply {
    if st.flaws.no_dedup {
        let n = st.counter.fetch_add(1, Ordering::Relaxed);
        return Reply::text(format!("answer #{n}"));
    }
    match incoming {
        Incoming::Text(t) if st.flaws.two_articles => {
            let a = Article::new(t.content.clone(), "d", "https://e/p.png", "https://e/");
            Reply::news(vec![a.clone(), a])
        }
        Incoming::Text(t) => Reply::text(format!("echo: {}", t.content)),
        Incoming::Event(e) if e.kind().as_str() == "unsubscribe" => Reply::None,
        Incoming::Event(e) => Reply::text(format!("event {}", e.kind())),
        other => Reply::text(format!("got {}", other.kind())),
    }
}

async fn receive(
    State(st): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    st.posts.fetch_add(1, Ordering::Relaxed);
    let p = |k: &str| q.get(k).cloned().unwrap_or_default();
    let strict = !st.flaws.answers_forged;
    if strict && signature::verify(&st.token, &p("timestamp"), &p("nonce"), &p("signature")).is_err() {
        return (StatusCode::FORBIDDEN, "bad signature").into_response();
    }
    if strict && p("timestamp").parse::<i64>().map_or(true, |t| (now() - t).abs() > 300) {
        return (StatusCode::FORBIDDEN, "stale").into_response();
    }
    let encrypted = p("encrypt_type") == "aes" || body.contains("<Encrypt>");
    if st.flaws.refuse_plain && !body.contains("<Encrypt>") {
        return (StatusCode::FORBIDDEN, "plain requests refused: this account requires encryption")
            .into_response();
    }
    let xml = if encrypted {
        let Ok(env) = Envelope::parse(&body) else {
            return (StatusCode::BAD_REQUEST, "bad envelope").into_response();
        };
        let opened = if strict {
            env.open(&st.cipher, &st.token, &p("timestamp"), &p("nonce"), &p("msg_signature"))
        } else {
            st.cipher.decrypt(&env.encrypt).map_err(Into::into)
        };
        match opened {
            Ok(xml) => xml,
            Err(_) => return (StatusCode::BAD_REQUEST, "cannot open").into_response(),
        }
    } else {
        body
    };
    let incoming = match Incoming::parse(&xml) {
        Ok(m) => m,
        Err(_) if st.flaws.answers_forged => {
            return "<xml><ToUserName>x</ToUserName><FromUserName>y</FromUserName><CreateTime>1</CreateTime>\
                    <MsgType>text</MsgType><Content>ok</Content></xml>"
                .into_response();
        }
        Err(_) => return (StatusCode::BAD_REQUEST, "bad xml").into_response(),
    };
    if let Some(delay) = st.flaws.slow {
        tokio::time::sleep(delay).await;
    }
    let key = incoming.dedup_key();
    if let Some(cached) = st.seen.lock().unwrap().get(&key).cloned() {
        return seal(&st, cached, encrypted);
    }
    let reply = answer(&st, &incoming);
    let mut ctx = ReplyContext::answering(&incoming, now());
    if st.flaws.two_articles {
        ctx.answering_message = false;
    }
    if st.flaws.swapped {
        std::mem::swap(&mut ctx.to, &mut ctx.from);
    }
    if st.flaws.millis {
        ctx.create_time *= 1000;
    }
    let mut out = reply.to_xml(&ctx).unwrap();
    if st.flaws.invalid_xml && !reply.is_none() {
        out.truncate(out.len() / 2);
    }
    if !st.flaws.no_dedup {
        st.seen.lock().unwrap().insert(key, out.clone());
    }
    seal(&st, out, encrypted)
}

fn seal(st: &AppState, xml: String, encrypted: bool) -> Response {
    if !encrypted || xml == "success" {
        return ([(header::CONTENT_TYPE, "text/xml")], xml).into_response();
    }
    let mut sealed =
        EncryptedReply::seal(&st.cipher, &st.token, &xml, &now().to_string(), "4242", [9; 16]).unwrap();
    if st.flaws.bad_msg_signature {
        sealed.msg_signature = signature::sign_msg(&st.token, "1", "2", &sealed.encrypt);
    }
    ([(header::CONTENT_TYPE, "text/xml")], sealed.to_xml()).into_response()
}

/// A running test server.
pub struct Server {
    pub url: String,
    state: Arc<AppState>,
}

impl Server {
    /// POSTs received so far.
    pub fn posts(&self) -> u64 {
        self.state.posts.load(Ordering::Relaxed)
    }
}

/// Starts a server with `flaws` on 127.0.0.1 in a background thread.
pub fn spawn(flaws: Flaws) -> Server {
    let state = Arc::new(AppState {
        token: TOKEN.into(),
        cipher: Cipher::new(AES_KEY, APPID).unwrap(),
        flaws,
        seen: Mutex::new(HashMap::new()),
        counter: AtomicU64::new(0),
        posts: AtomicU64::new(0),
    });
    let app = Router::new().route("/wechat", get(verify).post(receive)).with_state(state.clone());
    let addr = serve_in_background(app);
    Server { url: format!("http://{addr}/wechat"), state }
}

/// Serves `app` on a free loopback port from a thread of its own (so sync tests can use
/// it); its address.
pub fn serve_in_background(app: Router) -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// Runs the built `wemp` with `args`.
pub fn wemp(args: &[&str]) -> Output {
    wemp_with_stdin(args, None)
}

/// Runs the built `wemp` with `args` and `stdin`.
pub fn wemp_with_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wemp"));
    cmd.args(args)
        .env_remove("WEMP_TOKEN")
        .env_remove("WEMP_APPID")
        .env_remove("WEMP_AES_KEY")
        .env_remove("WEMP_SIM_TIMEOUT_MS")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("LANG")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        // The command may exit before reading stdin (a bad key, say): not a test failure.
        let _ = input.write_all(text.as_bytes());
    }
    drop(input);
    child.wait_with_output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Standard output then standard error: all a user sees of a run.
pub fn out(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// `wemp sim send URL --token TOKEN --mode MODE ARGS…` in `dir`; every mode but plain also
/// gets this module's [`APPID`] and [`AES_KEY`].
pub fn sim_send(dir: &std::path::Path, url: &str, token: &str, mode: &str, args: &[&str]) -> Output {
    let mut all = vec!["sim", "send", url, "--token", token, "--mode", mode];
    if mode != "plain" {
        all.extend(["--appid", APPID, "--aes-key", AES_KEY]);
    }
    all.extend(args);
    wemp_in(dir, &all, &[])
}

/// The JSON lines a successful run printed (`wemp log --json`), one value each.
pub fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    assert!(o.status.success(), "{}", out(o));
    String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The shared PostgreSQL (`DATABASE_URL`, by default the local `test` database); tests use
/// a schema of their own.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A schema of the test's own in the shared PostgreSQL, dropped with everything in it when
/// this value is dropped.
pub struct PgSchema {
    /// The schema's name.
    pub name: String,
    /// [`database_url`] with `schema=<name>`: what `--database` takes.
    pub url: String,
    db: wemp_store::postgres::PostgresDatabase,
    rt: tokio::runtime::Runtime,
}

impl PgSchema {
    /// Creates `<tag>_<random>`; `None`, with the reason printed, when PostgreSQL does not
    /// answer.
    pub fn create(tag: &str) -> Option<Self> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let name = format!("{tag}_{}", rand::random::<u32>());
        let base = database_url();
        let db = match rt.block_on(wemp_store::postgres::PostgresDatabase::connect(&base, &name)) {
            Ok(db) => db,
            Err(e) => {
                eprintln!("skipping: PostgreSQL at {base} does not answer: {e}");
                return None;
            }
        };
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}schema={name}");
        Some(Self { name, url, db, rt })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        match self.rt.block_on(self.db.drop_schema()) {
            Ok(()) => {}
            // Failing already: say so, without a second panic.
            Err(e) if std::thread::panicking() => eprintln!("cannot drop schema {}: {e}", self.name),
            Err(e) => panic!("cannot drop schema {}: {e}", self.name),
        }
    }
}

/// The shared Redis (`REDIS_URL`, by default the local one); tests use a key prefix of
/// their own.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Every `WEMP_*` variable the commands read, removed from children so the tests do not
/// depend on the caller's environment.
pub const WEMP_VARS: &[&str] = &[
    "WEMP_CONFIG",
    "WEMP_LISTEN",
    "WEMP_PATH",
    "WEMP_TIMESTAMP_WINDOW",
    "WEMP_BODY_LIMIT",
    "WEMP_DEADLINE",
    "WEMP_METRICS_PATH",
    "WEMP_DATA_DIR",
    "WEMP_DATABASE",
    "WEMP_REDIS",
    "WEMP_PUBLIC_URL",
    "WEMP_SHOW_SETUP",
    "WEMP_CONSOLE",
    "WEMP_CONSOLE_PATH",
    "WEMP_CONSOLE_TOKEN",
    "WEMP_ACCOUNT_NAME",
    "WEMP_TOKEN",
    "WEMP_APPID",
    "WEMP_APPSECRET",
    "WEMP_AES_KEY",
    "WEMP_MODE",
    "WEMP_ORIGINAL_ID",
    "WEMP_API_BASE",
    "WEMP_API_PROXY_TOKEN",
    "WEMP_API_PROXY_LISTEN",
    "WEMP_FORWARD",
    "WEMP_FORWARD_SECRET",
    "WEMP_FALLBACK_TEXT",
    "WEMP_SIM_TIMEOUT_MS",
    "WEMP_LOG",
    // The locale picks the language of the setup screen and doctor: English unless a test
    // sets one.
    "LC_ALL",
    "LC_MESSAGES",
    "LANG",
];

/// A `wemp` command with a clean environment, run in `dir`.
pub fn wemp_cmd(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wemp"));
    cmd.args(args).current_dir(dir).env("NO_COLOR", "1");
    for v in WEMP_VARS {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `wemp` in `dir` with `env` and waits for it.
pub fn wemp_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    wemp_cmd(dir, args, env).stdin(std::process::Stdio::null()).output().unwrap()
}

/// A fresh temporary directory (removed by the caller or left in the temp dir).
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("wemp-cli-{tag}-{}-{}", std::process::id(), rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The Token `wemp serve` runs with. Its setup screen does not print it when standard output
/// is not a terminal (as here): the screen's `wemp sim send … --config FILE` names the file
/// it is in, else it came from `WEMP_TOKEN` or `--token`.
fn token_off_screen(dir: &std::path::Path, sim: &[&str], args: &[&str], env: &[(&str, &str)]) -> String {
    let after = |words: &[&str], flag: &str| {
        words.iter().position(|w| *w == flag).and_then(|i| words.get(i + 1)).map(|w| (*w).to_owned())
    };
    let line = sim.join(" ");
    let quoted = line.split_once(" --config ").map(|(_, rest)| match rest.strip_prefix('\'') {
        Some(q) => q.split_once('\'').map_or(q, |(path, _)| path).to_owned(),
        None => rest.split_whitespace().next().unwrap_or_default().to_owned(),
    });
    if let Some(file) = quoted {
        let file = file.as_str();
        let src = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let doc: toml::Table = toml::from_str(&src).unwrap();
        let from_file = doc["accounts"][0].get("token").and_then(|t| t.as_str()).map(str::to_owned);
        // The environment and flags win over the file, as in `wemp serve`.
        return after(args, "--token")
            .or_else(|| env.iter().find(|(k, _)| *k == "WEMP_TOKEN").map(|(_, v)| (*v).to_owned()))
            .or(from_file)
            .unwrap_or_else(|| panic!("no Token in {file}:\n{src}"));
    }
    after(args, "--token")
        .or_else(|| env.iter().find(|(k, _)| *k == "WEMP_TOKEN").map(|(_, v)| (*v).to_owned()))
        .unwrap_or_else(|| panic!("no Token on the screen, in a file, WEMP_TOKEN or --token: {sim:?}"))
}

/// A running `wemp serve`, its output collected as it comes.
pub struct ServeProc {
    child: std::process::Child,
    /// The callback URL from the setup screen's `wemp sim send` line.
    pub url: String,
    /// The Token it runs with (from the file that line names, `WEMP_TOKEN` or `--token`:
    /// off a terminal the screen does not print it).
    pub token: String,
    /// The whole `wemp sim send …` line the setup screen printed.
    pub sim_command: String,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
}

/// Collects what `stream` gives, line by line, as it comes (in a thread).
pub fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    use std::io::BufRead as _;
    let buf = Arc::new(Mutex::new(String::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(stream);
        let mut line = String::new();
        while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            b.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    buf
}

impl ServeProc {
    /// Starts `wemp serve ARGS` in `dir` and waits (up to 30 s) for the setup screen.
    pub fn start(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut all = vec!["serve"];
        all.extend(args);
        let mut child = wemp_cmd(dir, &all, env)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = collect(child.stdout.take().unwrap());
        let err = collect(child.stderr.take().unwrap());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let text = out.lock().unwrap().clone();
            if let Some(line) = text.lines().find(|l| l.trim_start().starts_with("wemp sim send "))
                && text.contains("Ctrl-C")
            {
                let sim_command = line.trim().to_owned();
                let words: Vec<&str> = sim_command.split_whitespace().collect();
                let url = words[3].to_owned();
                let token = token_off_screen(dir, &words, args, env);
                return Self { child, url, token, sim_command, out, err };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "wemp serve exited with {status} before its setup screen:\n{text}\n{}",
                    err.lock().unwrap()
                );
            }
            assert!(std::time::Instant::now() < deadline, "no setup screen after 30 s:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `host:port` the server listens on.
    pub fn addr(&self) -> String {
        authority(&self.url)
    }

    /// `http://host:port`, where the console, metrics and API proxy paths start.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The callback path (`/wechat` unless configured otherwise).
    pub fn path(&self) -> String {
        self.url[self.origin().len()..].to_owned()
    }

    /// `wemp sim send` to this server with its Token in `mode` (see [`sim_send`]).
    pub fn send(&self, dir: &std::path::Path, mode: &str, args: &[&str]) -> Output {
        sim_send(dir, &self.url, &self.token, mode, args)
    }

    /// Standard output so far.
    pub fn stdout(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Standard error so far.
    pub fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`HUP`, `TERM`) to this process.
    pub fn signal(&self, sig: &str) {
        let ok =
            Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(ok.success(), "kill -{sig} failed");
    }

    /// Waits up to `timeout` for `needle` to appear on standard error.
    pub fn wait_stderr(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.stderr().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Stops the server with SIGTERM and waits (up to 30 s) for it to exit; returns its
    /// status and all of its standard error.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        self.signal("TERM");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(50));
                return (status, self.stderr());
            }
            assert!(std::time::Instant::now() < deadline, "wemp serve did not stop within 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServeProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
