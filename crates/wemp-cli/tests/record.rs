//! The delivery record through the `wemp` binary: one entry per message however often
//! WeChat delivers it, what arrived kept for debugging, junk logged at a bounded rate, the
//! retention period, and nothing answered lost when PostgreSQL goes away for a while.
#![allow(clippy::print_stdout)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{PgSchema, ServeProc, database_url, json_lines, now, signed_query, temp_dir, text_xml, wemp_in};
use serde_json::Value;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// POSTs `body` to `url` with WeChat's User-Agent; the status and the body answered.
async fn post(client: &reqwest::Client, url: &str, body: &str) -> (u16, String) {
    let res = client
        .post(url)
        .header("user-agent", "Mozilla/4.0")
        .header("content-type", "text/xml")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

fn metric(metrics: &str, line: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line} in\n{metrics}"))
}

/// The "done when": with `wemp serve` in plain mode, one message delivered three
/// times (the same signed request, as WeChat retries) is one `wemp log --json` entry with
/// `attempts` 3, its `query` and its `headers`; a forged-signature request is logged as
/// rejected with its query.
#[test]
fn one_message_delivered_three_times_is_one_entry_with_what_arrived() {
    let dir = temp_dir("record-retries");
    let srv = ServeProc::start(&dir, &[], &[("WEMP_LISTEN", "127.0.0.1:0")]);
    let rt = runtime();
    let url = format!("{}?{}", srv.url, signed_query(&srv.token, "o_record"));
    let xml = text_xml("o_retry", 7_300_000_000_000_000_001, "help");
    let client = reqwest::Client::new();
    let answers: Vec<(u16, String)> = rt.block_on(async {
        let mut out = Vec::new();
        for _ in 0..3 {
            out.push(post(&client, &url, &xml).await);
        }
        out
    });
    assert!(answers.iter().all(|(s, b)| *s == 200 && b.contains("Try:")), "{answers:?}");
    assert!(answers.windows(2).all(|w| w[0].1 == w[1].1), "every delivery got the one reply: {answers:?}");
    let forged = format!("{}?signature=0000&timestamp={}&nonce=forged1", srv.url, now());
    let (status, _) = rt.block_on(post(&client, &forged, &text_xml("o_eve", 1, "x")));
    assert_eq!(status, 403);
    let (status, err) = srv.stop();
    assert!(status.success(), "{err}");

    let all = json_lines(&wemp_in(&dir, &["log", "--json"], &[]));
    let retried: Vec<&Value> = all.iter().filter(|e| e["openid"] == "o_retry").collect();
    assert_eq!(retried.len(), 1, "one entry for the message: {all:?}");
    let e = retried[0];
    assert_eq!(e["attempts"], 3, "{e}");
    assert_eq!(e["msg_id"], "7300000000000000001", "{e}");
    assert_eq!(e["outcome"]["kind"], "answered", "{e}");
    assert_eq!(e["query"]["nonce"], "424242", "{e}");
    assert!(e["query"]["signature"].is_string() && e["query"]["timestamp"].is_string(), "{e}");
    assert_eq!(e["query"]["openid"], "o_record", "{e}");
    assert_eq!(e["headers"]["user-agent"], "Mozilla/4.0", "{e}");
    assert_eq!(e["headers"]["content-type"], "text/xml", "{e}");
    let refused: Vec<&Value> = all.iter().filter(|e| e["outcome"]["kind"] == "rejected").collect();
    assert_eq!(refused.len(), 1, "{all:?}");
    assert_eq!(refused[0]["rejection"]["reason"], "signature_mismatch", "{}", refused[0]);
    assert_eq!(refused[0]["query"]["signature"], "0000", "{}", refused[0]);
    assert_eq!(refused[0]["query"]["nonce"], "forged1", "{}", refused[0]);
    assert_eq!(refused[0]["headers"]["user-agent"], "Mozilla/4.0", "{}", refused[0]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Junk does not fill the disk or the log: a few thousand forged requests give at most the
/// logging rate's worth of rejected entries and WARN lines, and the metrics count them all.
#[test]
fn junk_is_logged_at_a_bounded_rate_and_counted_in_full() {
    const JUNK: usize = 3000;
    let dir = temp_dir("record-junk");
    let srv =
        ServeProc::start(&dir, &[], &[("WEMP_LISTEN", "127.0.0.1:0"), ("WEMP_METRICS_PATH", "/metrics")]);
    let rt = runtime();
    let client = reqwest::Client::new();
    let started = Instant::now();
    let statuses: Vec<u16> = rt.block_on(async {
        let mut tasks = Vec::new();
        for worker in 0..16 {
            let client = client.clone();
            let url = srv.url.clone();
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for n in (worker..JUNK).step_by(16) {
                    let forged = format!("{url}?signature=bad{n}&timestamp={}&nonce={n}", now());
                    out.push(post(&client, &forged, "<xml><MsgType>text</MsgType></xml>").await.0);
                }
                out
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(statuses.len(), JUNK);
    assert!(statuses.iter().all(|s| *s == 403), "every one refused");
    let metrics = rt.block_on(async {
        client.get(format!("{}/metrics", srv.origin())).send().await.unwrap().text().await.unwrap()
    });
    let (status, err) = srv.stop();
    assert!(status.success(), "{err}");

    // The default rate: 100 at once, one a second after that.
    let bound = 100 + elapsed.ceil() as usize + 1;
    let all = json_lines(&wemp_in(&dir, &["log", "--json", "-n", "100000"], &[]));
    let rejected = all.iter().filter(|e| e["outcome"]["kind"] == "rejected").count();
    assert!(
        rejected >= 100 && rejected <= bound,
        "{rejected} rejected entries logged in {elapsed:.1} s (bound {bound})"
    );
    let warn_lines = err.lines().filter(|l| l.contains("request rejected")).count();
    let summaries = err.lines().filter(|l| l.contains("more rejected requests not logged")).count();
    assert_eq!(warn_lines, rejected, "one WARN line per logged rejection");
    // The first refusal left out is said at once, then at most one line every ten seconds.
    assert!(summaries >= 1 && summaries <= (elapsed / 10.0).ceil() as usize + 1, "{summaries} summary lines");
    let refused = metric(&metrics, "wemp_verification_failures_total{reason=\"signature_mismatch\"}");
    let unlogged = metric(&metrics, "wemp_rejections_unlogged_total{reason=\"signature_mismatch\"}");
    assert_eq!(refused, JUNK as u64, "the metrics count every one");
    assert_eq!(unlogged, (JUNK - rejected) as u64, "and the ones left out of the log");
    println!(
        "{JUNK} forged requests in {elapsed:.1} s: {rejected} logged, {unlogged} counted only, {summaries} summary lines"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `storage.retention`: `serve` deletes older entries in the background.
#[test]
fn entries_older_than_the_retention_period_are_deleted() {
    let dir = temp_dir("record-retention");
    std::fs::write(dir.join("wemp.toml"), "[storage]\nretention = \"2s\"\n").unwrap();
    let srv = ServeProc::start(&dir, &["--config", "wemp.toml"], &[("WEMP_LISTEN", "127.0.0.1:0")]);
    let rt = runtime();
    let client = reqwest::Client::new();
    let send = |openid: &str, id: u64| {
        let url = format!("{}?{}", srv.url, signed_query(&srv.token, openid));
        let (status, _) = rt.block_on(post(&client, &url, &text_xml(openid, id, "help")));
        assert_eq!(status, 200);
    };
    let users = |dir: &Path| -> Vec<String> {
        json_lines(&wemp_in(dir, &["log", "--json"], &[]))
            .iter()
            .filter_map(|e| e["openid"].as_str().map(str::to_owned))
            .collect()
    };
    send("o_old", 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !users(&dir).contains(&"o_old".to_owned()) {
        assert!(Instant::now() < deadline, "the entry was never written");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Older than two seconds, and a sweep (every second) later: gone.
    let deadline = Instant::now() + Duration::from_secs(15);
    while users(&dir).contains(&"o_old".to_owned()) {
        assert!(Instant::now() < deadline, "the entry outlived its retention period");
        std::thread::sleep(Duration::from_millis(200));
    }
    send("o_new", 2);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !users(&dir).contains(&"o_new".to_owned()) {
        assert!(Instant::now() < deadline, "a new entry is written (and kept) after a sweep");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, err) = srv.stop();
    assert!(status.success(), "{err}");
    assert!(err.contains("message log retention: older entries deleted"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A TCP relay on loopback to `target` that the test can cut (every connection closed, new
/// ones closed at once, as a database that went away) and restore: real bytes, no mock.
struct Relay {
    port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Relay {
    fn start(target: String) -> Self {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let open = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (c, o) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if c.load(Ordering::SeqCst) {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(&target) else { continue };
                let mut o = o.lock().unwrap();
                o.push(client.try_clone().unwrap());
                o.push(server.try_clone().unwrap());
                for (mut from, mut to) in
                    [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Self { port, cut, open }
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Nothing acknowledged is lost: with PostgreSQL unreachable for three seconds while
/// messages keep coming, every message `serve` answered is in the log afterwards — the
/// batches PostgreSQL failed waited in the spool and were appended when it came back.
#[test]
fn answered_messages_survive_a_postgres_outage() {
    let Some(pg) = PgSchema::create("wemp_outage") else { return };
    let rt = runtime();
    let (schema, direct) = (&pg.name, database_url());
    // The same database through the relay.
    let (scheme, rest) = direct.split_once("://").unwrap();
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (user, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let relay = Relay::start(host.to_owned());
    let sep = if tail.contains('?') { '&' } else { '?' };
    let relayed = format!("{scheme}://{user}127.0.0.1:{}{tail}{sep}schema={schema}", relay.port);

    let dir = temp_dir("record-outage");
    let srv = ServeProc::start(
        &dir,
        &["--database", &relayed],
        &[("WEMP_LISTEN", "127.0.0.1:0"), ("WEMP_METRICS_PATH", "/metrics")],
    );
    let client = reqwest::Client::new();
    let started = Instant::now();
    let answered: Vec<u64> = rt.block_on(async {
        let stop = started + Duration::from_secs(7);
        let mut tasks = Vec::new();
        for worker in 0..4u64 {
            let (client, url, token) = (client.clone(), srv.url.clone(), srv.token.clone());
            tasks.push(tokio::spawn(async move {
                let mut answered = Vec::new();
                let mut n = 0;
                while Instant::now() < stop {
                    n += 1;
                    let id = 8_100_000_000_000_000_000 + worker * 1_000_000 + n;
                    let url = format!("{url}?{}", signed_query(&token, "o_outage"));
                    let (status, body) = post(&client, &url, &text_xml("o_outage", id, "help")).await;
                    if status == 200 && body.contains("Try:") {
                        answered.push(id);
                    }
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
                answered
            }));
        }
        // PostgreSQL goes away for three seconds in the middle.
        tokio::time::sleep(Duration::from_millis(2000)).await;
        relay.cut();
        tokio::time::sleep(Duration::from_secs(3)).await;
        relay.restore();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    // The spool drains once PostgreSQL answers again.
    let mut metrics = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        metrics = rt.block_on(async {
            client.get(format!("{}/metrics", srv.origin())).send().await.unwrap().text().await.unwrap()
        });
        if metric(&metrics, "wemp_log_spool_bytes") == 0
            && metric(&metrics, "wemp_log_entries_written_total") >= answered.len() as u64
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, err) = srv.stop();
    assert!(status.success(), "{err}");
    let spooled = metric(&metrics, "wemp_log_entries_spooled_total");
    assert!(spooled > 0, "the outage came while entries were written:\n{metrics}\n{err}");
    assert_eq!(metric(&metrics, "wemp_log_entries_dropped_total{reason=\"write_failed\"}"), 0, "{metrics}");
    assert_eq!(metric(&metrics, "wemp_log_entries_dropped_total{reason=\"queue_full\"}"), 0, "{metrics}");
    assert!(err.contains("entries spooled"), "the outage is logged:\n{err}");

    let logged: std::collections::HashSet<u64> =
        json_lines(&wemp_in(&dir, &["log", "--json", "--database", &pg.url, "-n", "1000000"], &[]))
            .iter()
            .filter_map(|e| e["msg_id"].as_str()?.parse().ok())
            .collect();
    let missing: Vec<&u64> = answered.iter().filter(|id| !logged.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered messages missing from the log",
        missing.len(),
        answered.len()
    );
    println!(
        "{} messages answered in {:.1} s around a 3 s PostgreSQL outage: all logged ({spooled} through the spool)",
        answered.len(),
        started.elapsed().as_secs_f64()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `wemp log --follow`: WeChat's retries of a message shown already update its entry — the
/// same `id`, `attempts` counting up — and never show as an entry of their own.
#[test]
fn following_shows_retries_joining_their_entry() {
    use std::io::BufRead as _;
    let dir = temp_dir("record-follow");
    let srv = ServeProc::start(&dir, &[], &[("WEMP_LISTEN", "127.0.0.1:0")]);
    let mut follower = common::wemp_cmd(&dir, &["log", "--follow", "--json", "--poll-ms", "100"], &[])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(lines).lines() {
            let Ok(line) = line else { break };
            if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                break;
            }
        }
    });
    let next = |want: u64| -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = rx.recv_timeout(left).unwrap_or_else(|_| panic!("no line with {want} attempts"));
            if v["msg_id"] == "7300000000000000042" {
                assert_eq!(v["attempts"], want, "{v}");
                return v;
            }
        }
    };
    let rt = runtime();
    let client = reqwest::Client::new();
    let url = format!("{}?{}", srv.url, signed_query(&srv.token, "o_follow"));
    let xml = text_xml("o_follow", 7_300_000_000_000_000_042, "help");
    rt.block_on(post(&client, &url, &xml));
    let first = next(1);
    rt.block_on(post(&client, &url, &xml));
    let second = next(2);
    rt.block_on(post(&client, &url, &xml));
    let third = next(3);
    assert_eq!(second["id"], first["id"], "the same entry");
    assert_eq!(third["id"], first["id"], "the same entry");
    assert_eq!(third["reply"], first["reply"]);
    let _ = follower.kill();
    let _ = follower.wait();
    let (status, err) = srv.stop();
    assert!(status.success(), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
