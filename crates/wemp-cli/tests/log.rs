//! `wemp log` reading what `wemp serve` wrote: SQLite by default, PostgreSQL with
//! `--database` (and Redis dedup with `--redis`) when those services answer.
#![allow(clippy::print_stdout)]

mod common;

use std::io::BufRead as _;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    PgSchema, ServeProc, http_get, json_lines, out as text, redis_url, temp_dir, wemp_cmd, wemp_in,
};
use serde_json::Value;

/// Sends one message as `openid` with `sim send --json`; returns its MsgId (if any).
fn send_as(dir: &Path, srv: &ServeProc, openid: &str, what: &[&str]) -> Option<String> {
    let mut args = vec!["--openid", openid, "--json"];
    args.extend(what);
    let o = srv.send(dir, "plain", &args);
    assert!(o.status.success(), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["msg_id"].as_str().map(str::to_owned)
}

#[test]
fn log_reads_what_serve_wrote() {
    let dir = temp_dir("log");
    let none = wemp_in(&dir, &["log"], &[]);
    assert_eq!(none.status.code(), Some(1));
    assert!(text(&none).contains("no message log"), "{}", text(&none));

    let srv =
        ServeProc::start(&dir, &[], &[("WEMP_LISTEN", "127.0.0.1:0"), ("WEMP_METRICS_PATH", "/metrics")]);
    // A follower started before the messages sees them arrive.
    let mut follower = wemp_cmd(&dir, &["log", "--follow", "--json", "--poll-ms", "100"], &[])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let follow_out = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(follow_out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let alice_help = send_as(&dir, &srv, "o_alice", &["text", "help"]).unwrap();
    let bob_image = send_as(&dir, &srv, "o_bob", &["image"]).unwrap();
    assert!(send_as(&dir, &srv, "o_alice", &["event", "subscribe"]).is_none());
    // A request with the wrong token: refused, and logged as such.
    let forged = wemp_in(
        &dir,
        &["sim", "send", &srv.url, "--token", "WrongToken1", "--openid", "o_eve", "text", "x"],
        &[],
    );
    assert_eq!(forged.status.code(), Some(1), "{}", text(&forged));

    let mut followed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while followed.len() < 3 && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            followed.push(serde_json::from_str::<Value>(&line).unwrap());
        }
    }
    let _ = follower.kill();
    let _ = follower.wait();
    assert!(followed.len() >= 3, "--follow printed {followed:?}");
    assert_eq!(followed[0]["msg_id"], alice_help.as_str());

    // The log writer's counters are at the metrics path: everything written (compared with
    // what `wemp log` reads below), nothing dropped.
    let written_of = |metrics: &str| -> Option<u64> {
        metrics.lines().find_map(|l| l.strip_prefix("wemp_log_entries_written_total ")?.parse().ok())
    };
    let (mut written, mut metrics) = (0, String::new());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        metrics = http_get(&srv.addr(), "/metrics");
        let now = written_of(&metrics).unwrap_or_else(|| panic!("no log counters in\n{metrics}"));
        if now >= 4 && now == written {
            break;
        }
        written = now;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(metrics.contains("wemp_log_entries_dropped_total{reason=\"queue_full\"} 0"), "{metrics}");
    assert!(metrics.contains("wemp_log_entries_dropped_total{reason=\"write_failed\"} 0"), "{metrics}");

    let (status, err) = srv.stop();
    assert!(status.success(), "{err}");

    // Everything, as JSON lines.
    let all = json_lines(&wemp_in(&dir, &["log", "--json"], &[]));
    assert_eq!(all.len() as u64, written, "the metrics counted what the log holds");
    let find =
        |id: &str| all.iter().find(|e| e["msg_id"] == id).unwrap_or_else(|| panic!("{id} not in {all:?}"));
    let e = find(&alice_help);
    assert_eq!(e["openid"], "o_alice");
    assert_eq!(e["type"], "text");
    assert_eq!(e["mode"], "plain");
    assert_eq!(e["dedup"], "new");
    assert_eq!(e["outcome"]["kind"], "answered");
    assert_eq!(e["attempts"], 1);
    assert!(e["query"]["signature"].is_string() && e["query"]["nonce"].is_string(), "{e}");
    assert!(e["headers"]["user-agent"].is_string(), "{e}");
    assert!(e["peer"].as_str().is_some_and(|p| p.starts_with("127.0.0.1:")), "{e}");
    assert_eq!(e["reply_type"], "text");
    assert!(e["reply"].as_str().unwrap().starts_with("Try: \"hello\""), "{e}");
    assert!(e["raw_xml"].as_str().unwrap().contains("<Content><![CDATA[help]]></Content>"), "{e}");
    assert_eq!(find(&bob_image)["reply"], "Nice picture!");
    let sub = all.iter().find(|e| e["event"] == "subscribe").unwrap();
    assert!(sub["reply"].as_str().unwrap().starts_with("Welcome, o_alice!"), "{sub}");
    let refused = all.iter().find(|e| e["outcome"]["kind"] == "rejected").unwrap();
    assert_eq!(refused["rejection"]["code"], -40001, "{refused}");
    assert_eq!(refused["rejection"]["reason"], "signature_mismatch", "{refused}");
    assert!(refused["query"]["signature"].is_string(), "the forged request's query is kept: {refused}");

    // Filters.
    let alice = json_lines(&wemp_in(&dir, &["log", "--json", "--user", "o_alice"], &[]));
    assert_eq!(alice.len(), 2, "{alice:?}");
    assert!(alice.iter().all(|e| e["openid"] == "o_alice"));
    let images = json_lines(&wemp_in(&dir, &["log", "--json", "--type", "image"], &[]));
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["openid"], "o_bob");
    let subs = json_lines(&wemp_in(&dir, &["log", "--json", "--type", "subscribe"], &[]));
    assert_eq!(subs.len(), 1);
    assert_eq!(json_lines(&wemp_in(&dir, &["log", "--json", "--since", "1h"], &[])).len(), all.len());
    assert_eq!(json_lines(&wemp_in(&dir, &["log", "--json", "-n", "1"], &[])).len(), 1);

    // The readable table, and the same log through an explicit --data-dir from elsewhere.
    let table = wemp_in(Path::new("/"), &["log", "--data-dir", dir.join("wemp-data").to_str().unwrap()], &[]);
    let t = text(&table);
    assert!(table.status.success(), "{t}");
    assert!(t.lines().next().unwrap().contains("openid"), "{t}");
    assert!(t.contains("o_alice") && t.contains(&alice_help) && t.contains("event/subscribe"), "{t}");
    assert!(t.contains("Nice picture!") && t.contains("[rejected"), "{t}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `wemp log` run the moment `wemp sim send` returns shows the message just sent: the log
/// writer does not hold a lone entry back for company.
#[test]
fn log_right_after_sim_send_shows_the_message() {
    let dir = temp_dir("log-prompt");
    let srv = ServeProc::start(&dir, &[], &[("WEMP_LISTEN", "127.0.0.1:0")]);
    for n in 0..5 {
        let text = format!("prompt {n}");
        let msg_id = send_as(&dir, &srv, "o_prompt", &["text", &text]).unwrap();
        let newest = json_lines(&wemp_in(&dir, &["log", "--json", "-n", "1"], &[]));
        assert_eq!(newest.len(), 1, "`wemp log` right after send {n} showed nothing");
        assert_eq!(newest[0]["msg_id"], msg_id.as_str(), "{newest:?}");
    }
    let (status, err) = srv.stop();
    assert!(status.success(), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serve_logs_to_postgres_with_redis_dedup() {
    let Some(pg) = PgSchema::create("wemp_cli") else { return };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    if let Err(e) = rt.block_on(wemp_store::redis::connect(&redis_url())) {
        println!("skipping: Redis at {} does not answer: {e}", redis_url());
        return;
    }
    let dir = temp_dir("pg");
    let (schema, database) = (pg.name.clone(), pg.url.clone());
    let srv = ServeProc::start(
        &dir,
        &["--listen", "127.0.0.1:0", "--database", &database, "--redis", &redis_url()],
        &[],
    );
    let screen = srv.stdout();
    assert!(screen.contains(&format!("(schema {schema})")) && screen.contains("Dedup: redis"), "{screen}");
    let id = send_as(&dir, &srv, "o_pg", &["text", "order 7"]).unwrap();
    // A retry with the same MsgId is answered from the Redis reply cache.
    let o = wemp_in(&dir, &["sim", "check", &srv.url, "--token", &srv.token], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let (status, err) = srv.stop();
    assert!(status.success(), "{err}");
    assert!(!std::fs::exists(dir.join("wemp-data/wemp.db")).unwrap(), "no SQLite file with --database");

    let rows = json_lines(&wemp_in(&dir, &["log", "--json", "--database", &database, "--user", "o_pg"], &[]));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["msg_id"], id.as_str());
    assert_eq!(rows[0]["reply"], "Order 7 is on its way.");
    let all = json_lines(&wemp_in(&dir, &["log", "--json", "--database", &database, "-n", "1000"], &[]));
    assert!(
        all.iter().any(|e| e["attempts"].as_u64().is_some_and(|n| n >= 2)),
        "the retry is counted on its message's entry: {all:?}"
    );
    println!("PostgreSQL schema {schema}: {} entries logged and read back", all.len());
    drop(pg);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 17 item 5: the start screen prints the `wemp log` command for the data directory in
/// use, and that command shows whole OpenIDs (pasteable into `--user`), Chinese text in
/// aligned columns, and times in the local zone (`TZ`) or UTC with `--utc`.
#[test]
fn log_speaks_the_local_time_and_keeps_columns_with_chinese() {
    let dir = temp_dir("log-zh");
    let srv = ServeProc::start(&dir, &["--listen", "127.0.0.1:0", "--data-dir", "my data"], &[]);
    let screen = srv.stdout();
    let command = screen
        .lines()
        .find_map(|l| Some(l.split_once("(read it with `")?.1.split_once('`')?.0.to_owned()))
        .unwrap_or_else(|| panic!("no `wemp log` command on the screen:\n{screen}"));
    assert_eq!(command, "wemp log --data-dir 'my data'");
    let openid = "oABCDEFGHIJKLMNOPQRSTUVWXYZ0";
    send_as(&dir, &srv, openid, &["text", "我想查询一下我的订单状态"]).unwrap();
    send_as(&dir, &srv, openid, &["text", "help"]).unwrap();
    let (status, err) = srv.stop();
    assert!(status.success(), "{err}");

    // The printed command, as a shell would split it.
    let args = ["log", "--data-dir", "my data"];
    let utc = wemp_in(&dir, &[&args[..], &["--utc"]].concat(), &[("TZ", "Asia/Shanghai")]);
    let local = wemp_in(&dir, &args, &[("TZ", "Asia/Shanghai")]);
    let (utc, local) = (text(&utc), text(&local));
    assert!(utc.starts_with("time (UTC)"), "{utc}");
    assert!(local.starts_with("time (Asia/Shanghai)"), "{local}");
    let rows = |t: &str| t.lines().skip(1).map(str::to_owned).collect::<Vec<_>>();
    let (utc_rows, local_rows) = (rows(&utc), rows(&local));
    assert_eq!(utc_rows.len(), 2, "{utc}");
    let hour = |row: &str| row[11..13].parse::<u32>().unwrap();
    assert_eq!((hour(&utc_rows[0]) + 8) % 24, hour(&local_rows[0]), "Beijing is UTC+8:\n{utc}\n{local}");
    // Whole OpenIDs, and the columns after a Chinese message start where they do after an
    // English one (in terminal cells: a CJK character takes two).
    assert!(utc_rows.iter().all(|r| r.contains(openid)), "{utc}");
    // The reply is the last column (its text has no double space).
    let reply_at = |row: &str| wemp_cli::term::display_width(&row[..row.rfind("  ").unwrap() + 2]);
    assert_eq!(reply_at(&utc_rows[0]), reply_at(&utc_rows[1]), "\n{utc}");
    // JSON carries the offset of the zone asked for.
    let json =
        json_lines(&wemp_in(&dir, &["log", "--json", "--data-dir", "my data"], &[("TZ", "Asia/Shanghai")]));
    assert!(json[0]["received_at"].as_str().unwrap().ends_with("+08:00"), "{}", json[0]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A caller that hangs up before the answer (a proxy or tunnel with a short timeout, or
/// WeChat itself) leaves an entry saying so, although nothing was answered: the built binary
/// forwarding to an app that answers after 2 s, a plain-mode message posted by hand and the
/// connection closed after 0.5 s. WeChat's retry then gets the handler's reply from the
/// reply cache, and the entry counts both deliveries; the handler ran once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_hangs_up_is_in_the_log_and_its_retry_gets_the_reply() {
    use std::io::{Read as _, Write as _};

    let app = common::CountingApp::start("worth the wait", Duration::from_secs(2));
    let dir = temp_dir("log-hangup");
    let srv = ServeProc::start(
        &dir,
        &["--listen", "127.0.0.1:0", "--token", "HangupTok2", "--forward", &app.url, "--data-dir", "d"],
        &[("WEMP_METRICS_PATH", "/metrics")],
    );
    let addr = srv.addr();
    let (body, query) =
        (common::text_xml("oHungUp", 5151, "hello?"), common::signed_query("HangupTok2", "oHungUp"));
    let head = format!(
        "POST /wechat?{query} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: Mozilla/4.0\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut caller = std::net::TcpStream::connect(&addr).unwrap();
    caller.write_all(head.as_bytes()).unwrap();
    caller.write_all(body.as_bytes()).unwrap();
    caller.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut buf = [0_u8; 64];
    assert!(caller.read(&mut buf).is_err(), "no answer within 500 ms: the app takes 2 s");
    drop(caller);

    // The hang-up is logged (and counted) while the handler still runs.
    let read_log = || {
        let out = wemp_in(&dir, &["log", "--json", "--data-dir", "d"], &[]);
        assert!(out.status.success(), "{}", text(&out));
        json_lines(&out)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let entries = loop {
        let entries = read_log();
        if !entries.is_empty() || Instant::now() > deadline {
            break entries;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(e["outcome"]["kind"], "hung_up", "{e}");
    assert_eq!((e["status"].as_u64(), e["attempts"].as_u64()), (Some(0), Some(1)), "no answer went out: {e}");
    assert_eq!((e["openid"].as_str(), e["summary"].as_str()), (Some("oHungUp"), Some("hello?")), "{e}");
    assert_eq!(e["headers"]["user-agent"], "Mozilla/4.0", "what arrived: {e}");
    let waited = e["latency_us"].as_u64().unwrap_or_else(|| panic!("{e}"));
    assert!((400_000..2_000_000).contains(&waited), "waited about 500 ms, not the app's 2 s: {e}");
    let metrics = http_get(&addr, "/metrics");
    assert!(metrics.contains("wemp_requests_total{mode=\"plain\",outcome=\"hung_up\"} 1"), "{metrics}");

    // WeChat's retry, once the handler is done: its reply, from the cache.
    std::thread::sleep(Duration::from_millis(2000));
    let (status, answer) = common::raw(
        &addr,
        &format!(
            "POST /wechat?{query} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ),
        body.as_bytes(),
    );
    assert!(status.contains("200"), "{answer}");
    assert!(answer.contains("worth the wait"), "{answer}");
    assert_eq!(app.calls(), 1, "the handler ran once");

    let deadline = Instant::now() + Duration::from_secs(10);
    let entries = loop {
        let entries = read_log();
        if entries.first().is_some_and(|e| e["attempts"] == 2) || Instant::now() > deadline {
            break entries;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(entries.len(), 1, "one entry for the message: {entries:?}");
    let e = &entries[0];
    assert_eq!(e["attempts"].as_u64(), Some(2), "both deliveries: {e}");
    assert_eq!((e["outcome"]["kind"].as_str(), e["status"].as_u64()), (Some("answered"), Some(200)), "{e}");
    assert!(e["reply"].to_string().contains("worth the wait"), "{e}");
    srv.stop();
}
