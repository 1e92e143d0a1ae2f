//! A demo bot with the web console: `cargo run -p wemp-console --example console_server`
//! then open http://127.0.0.1:8080/console/.
//!
//! `--config FILE` (default: `examples/console.toml` of this crate), `--listen ADDR`
//! (overrides the file; port 0 picks one), `--console-token T` (or `WEMP_CONSOLE_TOKEN`).
//! The first line printed is `listening on http://ADDR`. The e2e tests drive it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use wemp_console::{
    Access, AccountInfo, Check, CheckStatus, Console, ConsoleConfig, Doctor, Menu, RuleSummary, Rules,
    TestUser,
};
use wemp_server::extract::{ClickKey, Content, OpenId};
use wemp_server::{Account, Article, EventKind, Mode, Reply, Router, WechatService};
use wemp_store::LogWriter;
use wemp_store::memory::MemoryMessageLog;

#[derive(Deserialize)]
struct File {
    server: Server,
    account: AccountSection,
    #[serde(default)]
    users: Vec<TestUser>,
    #[serde(default)]
    menu: Menu,
}

#[derive(Deserialize)]
struct Server {
    listen: SocketAddr,
    path: String,
    deadline: String,
}

#[derive(Deserialize)]
struct AccountSection {
    name: Option<String>,
    token: String,
    appid: String,
    aes_key: Option<String>,
    mode: Mode,
    original_id: String,
    /// Read so a typo is reported, and to show it stays server-side: the console never gets it.
    #[allow(dead_code)]
    appsecret: Option<String>,
}

async fn welcome(OpenId(openid): OpenId) -> Reply {
    Reply::text(format!(
        "欢迎关注 wemp 演示号！\n回复 hello 试试，或点下方菜单。\n文档: https://example.com/wemp/docs\n({openid})"
    ))
}

async fn hello() -> Reply {
    Reply::text("Hello! 这是 wemp 的演示回复。<a href=\"https://example.com/wemp\">了解 wemp</a>")
}

async fn news() -> Reply {
    let mut a = Article::default();
    a.title = "wemp 1.0 发布".into();
    a.description = "一个 Rust 写的公众号框架：验签、解密、去重、5 秒内回复。".into();
    a.pic_url = "https://example.com/wemp/cover.png".into();
    a.url = "https://example.com/wemp/blog/1.0".into();
    Reply::news(vec![a])
}

async fn slow() -> Reply {
    tokio::time::sleep(Duration::from_secs(20)).await;
    Reply::text("这条回复来得太晚了")
}

async fn click(ClickKey(key): ClickKey) -> Reply {
    match key.as_str() {
        "V1001_TODAY_MUSIC" => Reply::text("今日歌曲：《晴天》— 周杰伦"),
        "V1001_GOOD" => Reply::text("谢谢你的赞！"),
        "NEWS" => news().await,
        "SLOW" => slow().await,
        other => Reply::text(format!("未知菜单 {other}")),
    }
}

async fn scan(wemp_server::extract::Scene(scene): wemp_server::extract::Scene) -> Reply {
    Reply::text(format!("你扫描了场景 {scene} 的二维码"))
}

async fn image() -> Reply {
    Reply::text("收到你的图片了")
}

async fn transfer() -> Reply {
    Reply::transfer_customer_service()
}

async fn echo(Content(text): Content) -> Reply {
    Reply::text(format!("你说：{text}"))
}

const RULES: &[(&str, &str)] = &[
    ("event = subscribe", "text: welcome"),
    ("text = \"hello\"", "text with a link"),
    ("text contains \"news\"", "news: one article"),
    ("text = \"slow\"", "sleeps 20 s, then text (too late for WeChat)"),
    ("text = \"kf\"", "transfer to customer service"),
    ("event = CLICK", "by key: V1001_TODAY_MUSIC, V1001_GOOD, NEWS, SLOW"),
    ("event = SCAN", "text naming the scene"),
    ("msg_type = image", "text"),
    ("fallback", "echo the text"),
];

struct DemoRules;

#[async_trait::async_trait]
impl Rules for DemoRules {
    fn current(&self) -> Vec<RuleSummary> {
        RULES.iter().map(|(w, r)| RuleSummary { when: (*w).into(), reply: (*r).into() }).collect()
    }
    async fn reload(&self) -> Result<String, String> {
        Ok(format!("{} rules (built into the demo)", RULES.len()))
    }
}

struct DemoDoctor {
    token: String,
    aes_key: Option<String>,
    appid: String,
}

#[async_trait::async_trait]
impl Doctor for DemoDoctor {
    async fn checks(&self) -> Vec<Check> {
        let token_ok =
            (3..=32).contains(&self.token.len()) && self.token.chars().all(|c| c.is_ascii_alphanumeric());
        let key = self.aes_key.as_deref().map(|k| wemp_proto::Cipher::new(k, &self.appid));
        vec![
            Check {
                name: "Token format".into(),
                status: if token_ok { CheckStatus::Pass } else { CheckStatus::Fail },
                detail: if token_ok {
                    "3–32 letters and digits".into()
                } else {
                    "must be 3–32 letters and digits".into()
                },
            },
            Check {
                name: "EncodingAESKey".into(),
                status: match &key {
                    Some(Ok(_)) => CheckStatus::Pass,
                    Some(Err(_)) => CheckStatus::Fail,
                    None => CheckStatus::Skip,
                },
                detail: match &key {
                    Some(Ok(_)) => "43 characters, decodes to a 32-byte AES key".into(),
                    Some(Err(e)) => e.to_string(),
                    None => "not set: plain mode only".into(),
                },
            },
            Check {
                name: "AppSecret".into(),
                status: CheckStatus::Skip,
                detail: "not configured: API checks (access_token, IP whitelist) skipped".into(),
            },
        ]
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    let args: Vec<String> = std::env::args().collect();
    let path = arg(&args, "--config").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/console.toml"),
        PathBuf::from,
    );
    let file: File = toml::from_str(&std::fs::read_to_string(&path)?)?;
    let listen: SocketAddr = match arg(&args, "--listen") {
        Some(l) => l.parse()?,
        None => file.server.listen,
    };
    let deadline = file.server.deadline.trim_end_matches('s').parse::<f64>().map(Duration::from_secs_f64)?;
    let a = &file.account;

    let mut account = Account::new(a.appid.clone(), a.token.clone()).with_original_id(a.original_id.clone());
    if let Some(k) = &a.aes_key {
        account = account.with_aes_key(k)?;
    }
    let router = Router::new()
        .on_event(EventKind::Subscribe, welcome)
        .on_text("hello", hello)
        .on_text_contains("news", news)
        .on_text("slow", slow)
        .on_text("kf", transfer)
        .on_event(EventKind::Click, click)
        .on_event(EventKind::Scan, scan)
        .on_msg(wemp_server::MsgKind::Image, image)
        .fallback(echo);

    let listener = tokio::net::TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
    let endpoint = format!("http://{bound}{}", file.server.path);

    let mut info = AccountInfo::new(a.token.clone());
    info.name = a.name.clone();
    info.appid = a.appid.clone();
    info.aes_key = a.aes_key.clone();
    info.mode = a.mode;
    info.original_id = a.original_id.clone();
    let mut config = ConsoleConfig::new(endpoint.clone(), info);
    if !file.users.is_empty() {
        config.users = file.users;
    }
    config.menu = file.menu;
    config.access = Access::from_env(bound, arg(&args, "--console-token"));

    let log: Arc<MemoryMessageLog> = Arc::new(MemoryMessageLog::new(10_000));
    let console = Console::builder(config)
        .doctor(DemoDoctor { token: a.token.clone(), aes_key: a.aes_key.clone(), appid: a.appid.clone() })
        .rules(DemoRules)
        .message_log(log.clone())
        .build()?;
    let writer = LogWriter::spawn(log, wemp_store::LogWriterConfig::default());
    let service = WechatService::builder()
        .account(account.with_path(file.server.path.trim_start_matches('/')))
        .router(router)
        .budget(deadline)
        .observer(console.observer())
        .observer(wemp_server::MessageLogObserver::new(writer))
        .build()?;
    let app = console.tap(service.clone().into_router()).merge(console.router());

    #[allow(clippy::print_stdout)]
    {
        println!("listening on http://{bound}");
        println!("console at http://{bound}{}/", console.config().base_path);
    }
    axum::serve(listener, app).with_graceful_shutdown(wemp_server::shutdown_signal()).await?;
    Ok(())
}
