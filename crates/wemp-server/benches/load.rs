//! Load benchmark (not a test): the server in safe mode with a trivial handler, driven over
//! loopback with distinct MsgIds, against a bare axum handler returning a constant string.
//!
//! ```sh
//! cargo bench -p wemp-server --bench load
//! WEMP_BENCH_CONNS=64 WEMP_BENCH_REQS=400 WEMP_BENCH_ROUNDS=3 WEMP_BENCH_DEDUP_CAPACITY=100000 \
//!     cargo bench -p wemp-server --bench load
//! # storage variants, each run in every round after the bare server:
//! WEMP_BENCH_VARIANTS=memory,sqlite-log,redis,redis+sqlite-log \
//!     cargo bench -p wemp-server --bench load --features sqlite,redis
//! ```
//!
//! Variants: `memory` (memory dedup, no log; the default), `sqlite-log` (memory dedup and
//! the message log in a SQLite file through `MessageLogObserver`), `memory-log` (the same
//! observer and queue into an in-memory log, to tell their cost from SQLite's), `redis` (Redis dedup at
//! `REDIS_URL`, under a fresh prefix removed afterwards), `redis+sqlite-log`.
//!
//! Every round runs bare axum, then each variant in a rotating order; each variant's line
//! gives req/s and latency, and the CPU the whole process spent per request (client
//! included, over the run and its log flush). The end prints medians over the rounds.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use wemp_proto::wechat::Platform;
use wemp_proto::{Cipher, Mode};
use wemp_server::{Account, Reply, Router, WechatService};

// The same allocator as the `wemp` binary; both servers below share it.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const TOKEN: &str = "spamtest";
const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APPID: &str = "wx2c2769f8efd9abc2";
const GH: &str = "gh_10f6c3c3ac5a";

/// CPU time (user + system) of this whole process so far — client, servers and log
/// writers — from `/proc/self/stat` (Linux; clock ticks, assumed 100 per second, the
/// kernel's fixed `USER_HZ`). `None` elsewhere.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Prepared {
    target: String,
    body: Bytes,
}

struct Run {
    rps: f64,
    p50: Duration,
    p99: Duration,
    errors: usize,
    total: usize,
}

async fn drive(addr: SocketAddr, conns: Vec<Vec<Prepared>>, expect: fn(&[u8]) -> bool) -> Run {
    let total: usize = conns.iter().map(Vec::len).sum();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for reqs in conns {
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
            tokio::spawn(conn);
            let mut latencies = Vec::with_capacity(reqs.len());
            let mut errors = 0;
            for p in reqs {
                let req = http::Request::post(p.target)
                    .header(http::header::HOST, "127.0.0.1")
                    .header(http::header::CONTENT_TYPE, "text/xml")
                    .body(Full::new(p.body))
                    .unwrap();
                let t = Instant::now();
                let ok = match sender.send_request(req).await {
                    Ok(res) => {
                        let status = res.status();
                        match res.into_body().collect().await {
                            Ok(body) => status == 200 && expect(&body.to_bytes()),
                            Err(_) => false,
                        }
                    }
                    Err(_) => false,
                };
                latencies.push(t.elapsed());
                if !ok {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::with_capacity(total);
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed();
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Run { rps: total as f64 / elapsed.as_secs_f64(), p50: pct(0.50), p99: pct(0.99), errors, total }
}

fn prepare(conns: usize, per_conn: usize, first_id: u64) -> Vec<Vec<Prepared>> {
    let platform = Platform::new(TOKEN).with_cipher(Cipher::new(KEY, APPID).unwrap());
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs().to_string();
    (0..conns)
        .map(|c| {
            (0..per_conn)
                .map(|i| {
                    let id = first_id + (c * per_conn + i) as u64;
                    let openid = format!("oBench{c:04}xxxxxxxxxxxxxxxxxxx");
                    let xml = format!(
                        "<xml><ToUserName><![CDATA[{GH}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>\
                         <CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType>\
                         <Content><![CDATA[hello]]></Content><MsgId>{id}</MsgId></xml>"
                    );
                    let nonce = id.to_string();
                    let r = platform.post(Mode::Safe, &xml, &openid, GH, &now, &nonce, [7; 16]).unwrap();
                    Prepared { target: format!("/wechat?{}", r.query_string()), body: Bytes::from(r.body) }
                })
                .collect()
        })
        .collect()
}

fn report(name: &str, r: &Run) {
    println!(
        "{name:<28} {:>9.0} req/s   p50 {:>7.3} ms   p99 {:>7.3} ms   errors {}/{}",
        r.rps,
        r.p50.as_secs_f64() * 1e3,
        r.p99.as_secs_f64() * 1e3,
        r.errors,
        r.total
    );
}

/// A wemp server configuration under test.
struct Variant {
    name: String,
    addr: SocketAddr,
    writer: Option<wemp_store::LogWriter>,
}

async fn start_variant(name: &str, redis_prefix: &str, dir: &std::path::Path) -> Option<Variant> {
    let account = Account::new(APPID, TOKEN).with_aes_key(KEY).unwrap().with_original_id(GH);
    let router = Router::new().fallback(|| async { Reply::text("ok") });
    let mut builder = WechatService::builder().account(account).router(router);
    let (dedup, log) = match name.split_once('+') {
        Some((d, l)) => (d, Some(l)),
        None if name.ends_with("-log") => ("memory", Some(name)),
        None => (name, None),
    };
    match dedup {
        "memory" => {
            builder = builder
                .dedup_store(wemp_server::MemoryDedupStore::new(env("WEMP_BENCH_DEDUP_CAPACITY", 100_000)));
        }
        #[cfg(feature = "redis")]
        "redis" => {
            let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
            match wemp_store::redis::RedisDedupStore::connect(&url, redis_prefix).await {
                Ok(store) => builder = builder.dedup_store(store),
                Err(e) => {
                    println!("variant {name}: skipped, cannot connect to Redis at {url}: {e}");
                    return None;
                }
            }
        }
        other => {
            let _ = redis_prefix;
            println!("variant {name}: skipped, unknown dedup {other:?} or feature not enabled");
            return None;
        }
    }
    let mut writer = None;
    match log {
        None => {}
        #[cfg(feature = "sqlite")]
        Some("sqlite-log") => {
            let db =
                wemp_store::sqlite::SqliteDatabase::open(dir.join(format!("{}.db", name.replace('+', "_"))))
                    .await
                    .unwrap();
            let w = wemp_store::LogWriter::spawn(
                std::sync::Arc::new(db.message_log()),
                wemp_store::LogWriterConfig::default(),
            );
            builder = builder.observer(wemp_server::MessageLogObserver::new(w.clone()));
            writer = Some(w);
        }
        Some("memory-log") => {
            let log = wemp_store::memory::MemoryMessageLog::new(10_000);
            let w = wemp_store::LogWriter::spawn(
                std::sync::Arc::new(log),
                wemp_store::LogWriterConfig::default(),
            );
            builder = builder.observer(wemp_server::MessageLogObserver::new(w.clone()));
            writer = Some(w);
        }
        Some(other) => {
            let _ = dir;
            println!("variant {name}: skipped, unknown log {other:?} or feature not enabled");
            return None;
        }
    }
    let svc = builder.build().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(wemp_server::serve(listener, svc));
    Some(Variant { name: name.to_owned(), addr, writer })
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent; keep that fast.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let conns = env("WEMP_BENCH_CONNS", 64);
    let per_conn = env("WEMP_BENCH_REQS", 300);
    let rounds = env("WEMP_BENCH_ROUNDS", 3);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let names = std::env::var("WEMP_BENCH_VARIANTS").unwrap_or_else(|_| "memory".to_owned());
    let tag = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let redis_prefix = format!("wemp-bench:{tag:x}:");
    let dir = std::env::temp_dir().join(format!("wemp-bench-{tag:x}"));
    std::fs::create_dir_all(&dir).unwrap();
    rt.block_on(async {
        let mut variants = Vec::new();
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if let Some(v) = start_variant(name, &redis_prefix, &dir).await {
                variants.push(v);
            }
        }

        let bare = axum::Router::new().fallback(|| async { "success" });
        let bare_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bare_addr = bare_listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(bare_listener, bare).await });

        println!(
            "wemp-server load: {conns} connections x {per_conn} requests, {rounds} rounds each, loopback"
        );
        let mut next_id = 6_054_768_590_064_713_728_u64;
        // Per variant: (ratio to bare, change versus the first variant) of every round.
        let mut ratios: Vec<Vec<(f64, f64)>> = vec![Vec::new(); variants.len()];
        // Per variant: process CPU µs per request of every round.
        let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        for round in 1..=rounds {
            let bare_reqs = prepare(conns, per_conn, next_id);
            let bare_run = drive(bare_addr, bare_reqs, |b| b == b"success").await;
            next_id += (conns * per_conn) as u64;
            report(&format!("round {round} bare axum"), &bare_run);
            // The variants take turns in a rotating order, so none always runs right after
            // another's log writes or on a warmer machine.
            let mut rps = vec![0.0; variants.len()];
            for k in 0..variants.len() {
                let i = (k + round - 1) % variants.len();
                let v = &variants[i];
                let wemp_reqs = prepare(conns, per_conn, next_id);
                next_id += (conns * per_conn) as u64;
                let cpu_before = process_cpu();
                let wemp_run = drive(v.addr, wemp_reqs, |b| b.starts_with(b"<xml><Encrypt><![CDATA[")).await;
                let label = if v.name == "memory" {
                    format!("round {round} wemp safe mode")
                } else {
                    format!("round {round} wemp {}", v.name)
                };
                report(&label, &wemp_run);
                rps[i] = wemp_run.rps;
                // What the log writer still holds is written before the next variant runs
                // (and the time it takes is shown), so one variant's writes never slow
                // another's measurement.
                if let Some(w) = &v.writer {
                    let started = Instant::now();
                    w.flush().await;
                    println!("round {round} {} log flush after the run: {:?}", v.name, started.elapsed());
                }
                // The CPU the whole process spent on the run and the flush, per request: what
                // a variant costs, much steadier than req/s on a shared 2-core machine.
                if let (Some(a), Some(b)) = (cpu_before, process_cpu()) {
                    let per_req = (b - a).as_secs_f64() * 1e6 / wemp_run.total as f64;
                    println!("round {round} {} CPU {per_req:.1} µs/request (process, incl. client)", v.name);
                    cpu[i].push(per_req);
                }
            }
            for (i, v) in variants.iter().enumerate() {
                let ratio = rps[i] / bare_run.rps;
                let change = rps[i] / rps[0] - 1.0;
                ratios[i].push((ratio, change));
                let vs_first = if i == 0 {
                    String::new()
                } else {
                    format!(", {:+.1} % vs {}", 100.0 * change, variants[0].name)
                };
                println!("round {round} {} ratio: {:.1} % of bare{vs_first}", v.name, 100.0 * ratio);
            }
        }
        let median = |mut xs: Vec<f64>| {
            xs.sort_by(f64::total_cmp);
            let n = xs.len();
            if n % 2 == 1 { xs[n / 2] } else { (xs[n / 2 - 1] + xs[n / 2]) / 2.0 }
        };
        for (i, v) in variants.iter().enumerate() {
            let ratio = median(ratios[i].iter().map(|r| r.0).collect());
            let change = median(ratios[i].iter().map(|r| r.1).collect());
            let vs_first = if i == 0 {
                String::new()
            } else {
                format!(", {:+.1} % vs {}", 100.0 * change, variants[0].name)
            };
            println!("median over {rounds} rounds: {} {:.1} % of bare{vs_first}", v.name, 100.0 * ratio);
        }
        if cpu.iter().all(|c| !c.is_empty()) {
            let base = median(cpu[0].clone());
            for (i, v) in variants.iter().enumerate() {
                let m = median(cpu[i].clone());
                let vs_first = if i == 0 {
                    String::new()
                } else {
                    format!(", {:+.1} % vs {}", 100.0 * (m / base - 1.0), variants[0].name)
                };
                println!("median over {rounds} rounds: {} CPU {m:.1} µs/request{vs_first}", v.name);
            }
        }
        for v in &variants {
            if let Some(w) = &v.writer {
                w.shutdown().await;
                let s = w.stats();
                println!(
                    "{}: log entries written {}, dropped (queue full) {}, dropped (write failed) {}",
                    v.name,
                    s.written(),
                    s.dropped_queue_full(),
                    s.dropped_failed()
                );
            }
        }
        #[cfg(feature = "redis")]
        if variants.iter().any(|v| v.name.starts_with("redis")) {
            let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
            if let Ok(mut conn) = wemp_store::redis::connect(&url).await {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{redis_prefix}*"))
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_default();
                for chunk in keys.chunks(1000) {
                    let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await;
                }
            }
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}
