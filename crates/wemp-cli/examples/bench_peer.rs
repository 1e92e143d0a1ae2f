//! The other half of `scripts/bench-serve`: everything the load benchmark of `wemp serve`
//! needs besides `wemp` itself and `wrk`.
//!
//! - `bench_peer serve --listen ADDR`: a bare axum server. `POST /hook` answers the
//!   gateway's JSON contract with a constant text reply (the "trivial loopback app" that
//!   `wemp serve --forward` calls); every other request gets the constant string `success`
//!   (the bare HTTP server `wemp serve` is compared with).
//! - `bench_peer library --listen ADDR --token … --appid … --aes-key …`: the library on its
//!   defaults, as a Rust user runs it — `wemp_server::serve` with one account and a handler
//!   answering every message with the text `ok`, no observer, tracing's fmt subscriber at
//!   `info` to standard error — so that one run shows how far `wemp serve` is from the
//!   library, and the library from the bare server.
//! - `bench_peer floor --listen ADDR --token … --appid … --aes-key …`: the protocol's floor,
//!   the handler a Rust user would write by hand on the bare server — axum, the query read
//!   by hand, `msg_signature` checked, the envelope opened and its message parsed, a text
//!   reply `ok` built, encrypted and signed, all with `wemp_proto`'s pieces — and nothing
//!   else: no dedup, no replay window, no log, no span, no plain or compatible mode. What a
//!   request costs there beyond the bare server is the protocol's own work; what the library
//!   costs beyond it is the framework's.
//! - `bench_peer gen --out PREFIX --count N --threads T …`: signs and encrypts N distinct
//!   text messages (unique MsgIds, a thousand users) exactly as WeChat does, with
//!   `wemp_proto::wechat::Platform`, and writes them as raw HTTP/1.1 requests into `PREFIX.0`
//!   … `PREFIX.{T-1}`, one file per wrk thread (`scripts/bench-serve.lua` replays them).
//!   Each record is its length in bytes on a line of its own, then the request's bytes.
//!
//! Built by `scripts/bench-serve` with `cargo build --release -p wemp-cli --example bench_peer`.
#![allow(clippy::print_stdout)]

use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use wemp_proto::wechat::Platform;
use wemp_proto::{Cipher, Mode};

// The same allocator as the `wemp` binary.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The app's answer to every forwarded message.
const APP_REPLY: &str = r#"{"reply":{"type":"text","content":"ok"}}"#;

#[derive(Parser)]
#[command(about = "Bare server and request generator for scripts/bench-serve")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The bench's account, as WeChat and the server both know it.
#[derive(clap::Args)]
struct AccountArgs {
    /// The Token.
    #[arg(long)]
    token: String,
    /// The appid.
    #[arg(long)]
    appid: String,
    /// The EncodingAESKey.
    #[arg(long)]
    aes_key: String,
}

#[derive(Subcommand)]
enum Command {
    /// Serve `success` on every path, and the gateway app's JSON reply on `POST /hook`.
    Serve {
        /// Address to listen on.
        #[arg(long)]
        listen: String,
    },
    /// Serve one account with the library's defaults and a handler answering `ok`.
    Library {
        /// Address to listen on.
        #[arg(long)]
        listen: String,
        #[command(flatten)]
        account: AccountArgs,
    },
    /// Serve one account's safe-mode messages with a hand-written handler answering `ok`.
    Floor {
        /// Address to listen on.
        #[arg(long)]
        listen: String,
        #[command(flatten)]
        account: AccountArgs,
    },
    /// Write signed and encrypted text messages as raw HTTP requests.
    Gen {
        /// Files are PREFIX.0 … PREFIX.{threads-1}.
        #[arg(long)]
        out: PathBuf,
        /// Requests in all.
        #[arg(long)]
        count: u64,
        /// Files (one per wrk thread); requests are dealt round-robin.
        #[arg(long, default_value_t = 2)]
        threads: u64,
        /// The `Host` header.
        #[arg(long)]
        host: String,
        /// The callback path.
        #[arg(long, default_value = "/wechat")]
        path: String,
        #[command(flatten)]
        account: AccountArgs,
        /// The account's original id (`ToUserName`).
        #[arg(long, default_value = "gh_0be4c4be4c4b")]
        to: String,
        /// How requests are protected (plain, compatible, safe).
        #[arg(long, default_value = "safe", value_parser = wemp_cli::config::mode_parser())]
        mode: Mode,
        /// The text every message says.
        #[arg(long, default_value = "hello")]
        content: String,
    },
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Command::Serve { listen } => serve(&listen),
        Command::Library { listen, account } => library(&listen, &account),
        Command::Floor { listen, account } => floor(&listen, &account),
        Command::Gen {
            out,
            count,
            threads,
            host,
            path,
            account: AccountArgs { token, appid, aes_key },
            to,
            mode,
            content,
        } => {
            let threads = threads.max(1);
            let platform = Platform::new(&token).with_cipher(Cipher::new(&aes_key, &appid)?);
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
            // MsgIds no earlier run used: the time in the high half, a counter in the low.
            let first_id = (now.as_secs() << 32) | u64::from(now.subsec_micros() & 0xfff) << 20;
            let timestamp = now.as_secs().to_string();
            let job = Job { platform, mode, host, path, to, content, timestamp, first_id };
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let (job, out) = (&job, &out);
                        s.spawn(move || job.write(&file_name(out, t), (t..count).step_by(threads as usize)))
                    })
                    .collect();
                handles.into_iter().try_for_each(|h| h.join().expect("generator thread panicked"))
            })?;
            println!("{count} requests in {threads} files {}.*, first MsgId {first_id}", out.display());
            Ok(())
        }
    }
}

fn file_name(prefix: &std::path::Path, thread: u64) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(format!(".{thread}"));
    name.into()
}

struct Job {
    platform: Platform,
    mode: Mode,
    host: String,
    path: String,
    to: String,
    content: String,
    timestamp: String,
    first_id: u64,
}

impl Job {
    fn write(&self, file: &std::path::Path, ids: impl Iterator<Item = u64>) -> Result<(), String> {
        let err = |e: &dyn std::fmt::Display| format!("{}: {e}", file.display());
        let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(file).map_err(|e| err(&e))?);
        let (to, content, now) = (&self.to, &self.content, &self.timestamp);
        for n in ids {
            let id = self.first_id + n;
            let openid = format!("oBench{:022}", n % 1000);
            let xml = format!(
                "<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>\
                 <CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType>\
                 <Content><![CDATA[{content}]]></Content><MsgId>{id}</MsgId></xml>"
            );
            let mut random = [0u8; 16];
            random[..8].copy_from_slice(&id.to_le_bytes());
            let req = self
                .platform
                .post(self.mode, &xml, &openid, to, now, &id.to_string(), random)
                .map_err(|e| err(&e))?;
            let raw = format!(
                "POST {}?{} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{}",
                self.path,
                req.query_string(),
                self.host,
                req.body.len(),
                req.body
            );
            write!(w, "{}\n{raw}", raw.len()).map_err(|e| err(&e))?;
        }
        w.flush().map_err(|e| err(&e))
    }
}

fn library(listen: &str, account: &AccountArgs) -> Result<(), Box<dyn std::error::Error>> {
    use wemp_server::{Account, Reply, Router, WechatService};
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).with_target(false).init();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        // Compatible mode, as `wemp serve` in the bench: each request answered in its own mode.
        let account =
            Account::new(account.appid.as_str(), account.token.as_str()).with_aes_key(&account.aes_key)?;
        let router = Router::new().fallback(|| async { Reply::text("ok") });
        let service = WechatService::builder().account(account).router(router).build()?;
        let listener = tokio::net::TcpListener::bind(listen).await?;
        println!("bench_peer library listening on {}", listener.local_addr()?);
        wemp_server::serve(listener, service).await?;
        Ok(())
    })
}

/// The protocol's floor (see the module's docs): one safe-mode message in, its encrypted
/// reply out, by hand.
fn floor(listen: &str, account: &AccountArgs) -> Result<(), Box<dyn std::error::Error>> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use axum::http::StatusCode;
    use wemp_proto::{EncryptedReply, Envelope, Incoming, Reply, ReplyContext};

    struct Floor {
        token: String,
        cipher: Cipher,
        /// The reply's random prefix: a counter, as the bench needs no more.
        next: AtomicU64,
    }

    fn answer(floor: &Floor, query: &str, body: &str) -> Option<String> {
        // The query by hand: WeChat's parameters are never percent-encoded.
        let (mut timestamp, mut nonce, mut msg_signature) = ("", "", "");
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("timestamp", v)) => timestamp = v,
                Some(("nonce", v)) => nonce = v,
                Some(("msg_signature", v)) => msg_signature = v,
                _ => {}
            }
        }
        let envelope = Envelope::parse(body).ok()?;
        let xml = envelope.open(&floor.cipher, &floor.token, timestamp, nonce, msg_signature).ok()?;
        let incoming = Incoming::parse(&xml).ok()?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        let ctx = ReplyContext::answering(&incoming, i64::try_from(now).ok()?);
        let reply = Reply::text("ok").to_xml(&ctx).ok()?;
        let mut random = [0u8; 16];
        random[..8].copy_from_slice(&floor.next.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        EncryptedReply::seal_xml(&floor.cipher, &floor.token, &reply, &now.to_string(), nonce, random).ok()
    }

    let floor = Arc::new(Floor {
        token: account.token.clone(),
        cipher: Cipher::new(&account.aes_key, &account.appid)?,
        next: AtomicU64::new(0),
    });
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: String| {
            let floor = floor.clone();
            async move {
                match answer(&floor, uri.query().unwrap_or(""), &body) {
                    Some(xml) => (StatusCode::OK, xml),
                    None => (StatusCode::BAD_REQUEST, String::new()),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind(listen).await?;
        println!("bench_peer floor listening on {}", listener.local_addr()?);
        axum::serve(listener, app).await?;
        Ok(())
    })
}

fn serve(listen: &str) -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(|| async {
                    ([(axum::http::header::CONTENT_TYPE, "application/json")], APP_REPLY)
                }),
            )
            .fallback(|| async { "success" });
        let listener = tokio::net::TcpListener::bind(listen).await?;
        println!("bench_peer listening on {}", listener.local_addr()?);
        axum::serve(listener, app).await?;
        Ok(())
    })
}
