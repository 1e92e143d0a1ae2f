//! Exactly once through the `wemp` binary (issues 11 §2 and 16 item 8): three `wemp serve`
//! sharing Redis and PostgreSQL run the handler once for a message delivered to all three
//! at once and log it once, and still once when Redis is killed before WeChat's retries
//! reach them; and a single instance whose Redis is killed between a delivery and its
//! retry gives the retry the reply without a second run; and an instance stopped right after
//! answering, while Redis holds back its write of the reply, waits for that write before it
//! exits, so another instance gives WeChat's retry the reply; and a message arriving while
//! Redis stalls is answered from memory at the fallback's deadline. The handler is a real app on loopback
//! behind `--forward` that counts its calls. Redis is a private `redis-server` per test
//! (the shared one is never stopped); PostgreSQL a schema of the test's own.

mod common;

use std::time::Duration;

use common::{CountingApp, PgSchema, ServeProc, out, post, signed_query, temp_dir, text_xml, wemp_in};
use serde_json::Value;
use wemp_testkit::redis_server::RedisServer;

const TOKEN: &str = "DedupToken1";

fn private_redis() -> Option<RedisServer> {
    match RedisServer::start() {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("skipping: cannot start a private redis-server: {e}");
            None
        }
    }
}

/// `wemp serve` in `dir` with the shared Token, `--redis`, `extra` flags, forwarding to `app`.
fn serve(dir: &std::path::Path, redis: &RedisServer, app: &CountingApp, extra: &[&str]) -> ServeProc {
    let url = redis.url();
    let mut args = vec!["--listen", "127.0.0.1:0", "--token", TOKEN, "--redis", url.as_str()];
    args.extend(extra);
    ServeProc::start(dir, &args, &[("WEMP_FORWARD", app.url.as_str())])
}

/// The `wemp log --json` entries of `openid`.
fn entries(dir: &std::path::Path, openid: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["log", "--json", "--user", openid];
    args.extend(extra);
    let o = wemp_in(dir, &args, &[]);
    assert!(o.status.success(), "{}", out(&o));
    String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn three_instances_sharing_redis_and_postgres_run_the_handler_once_and_log_it_once() {
    let Some(mut redis) = private_redis() else { return };
    let Some(pg) = PgSchema::create("wemp_dedup") else { return };
    // Slow enough that the three deliveries meet while the first is being handled.
    let app = CountingApp::start("handled", Duration::from_millis(800));
    let dirs: Vec<_> = (0..3).map(|i| temp_dir(&format!("dedup-three-{i}"))).collect();
    let servers: Vec<ServeProc> =
        dirs.iter().map(|d| serve(d, &redis, &app, &["--database", pg.url.as_str()])).collect();

    // One message, signed as WeChat signs it, delivered to all three at once.
    let openid = format!("o_three_{}", rand::random::<u32>());
    let (query, body) = (signed_query(TOKEN, &openid), text_xml(&openid, 6_000_001, "hello"));
    let answers: Vec<(String, String)> = std::thread::scope(|s| {
        let sent: Vec<_> = servers
            .iter()
            .map(|srv| {
                let target = format!("{}?{query}", srv.path());
                let (addr, body) = (srv.addr(), body.clone());
                s.spawn(move || post(&addr, &target, &body))
            })
            .collect();
        sent.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (status, whole) in &answers {
        assert!(status.starts_with("HTTP/1.1 200"), "{whole}");
        assert!(
            whole.contains("<Content><![CDATA[handled]]></Content>"),
            "every delivery gets the reply: {whole}"
        );
    }
    assert_eq!(app.calls(), 1, "one handler run for three deliveries");

    // Redis dies; WeChat's retry reaches each instance: each saw the message (one handled
    // it, two waited for its reply), so each answers from memory without a second run.
    redis.kill();
    for srv in &servers {
        let (status, whole) = post(&srv.addr(), &format!("{}?{query}", srv.path()), &body);
        assert!(status.starts_with("HTTP/1.1 200"), "{whole}");
        assert!(
            whole.contains("<Content><![CDATA[handled]]></Content>"),
            "the retry gets the reply: {whole}"
        );
    }
    assert_eq!(app.calls(), 1, "still one handler run after three retries during the outage");

    for srv in servers {
        let (status, err) = srv.stop();
        assert!(status.success(), "{err}");
    }
    let rows = entries(&dirs[0], &openid, &["--database", pg.url.as_str()]);
    assert_eq!(rows.len(), 1, "one log entry: {rows:?}");
    assert_eq!(rows[0]["attempts"], 6, "three deliveries and three retries: {rows:?}");
    assert_eq!(rows[0]["msg_id"], "6000001");
    for d in dirs {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn redis_killed_between_delivery_and_retry_the_retry_gets_the_reply_without_a_second_run() {
    let Some(mut redis) = private_redis() else { return };
    let app = CountingApp::start("handled once", Duration::ZERO);
    let dir = temp_dir("dedup-outage");
    let srv = serve(&dir, &redis, &app, &[]);
    let openid = format!("o_outage_{}", rand::random::<u32>());
    let (query, body) = (signed_query(TOKEN, &openid), text_xml(&openid, 6_000_002, "hello"));
    let target = format!("{}?{query}", srv.path());

    let (status, first) = post(&srv.addr(), &target, &body);
    assert!(status.starts_with("HTTP/1.1 200") && first.contains("handled once"), "{first}");
    redis.kill();
    // WeChat's retry of the same message, during the outage.
    let (status, retry) = post(&srv.addr(), &target, &body);
    assert!(status.starts_with("HTTP/1.1 200"), "{retry}");
    assert!(
        retry.contains("<Content><![CDATA[handled once]]></Content>"),
        "the retry gets the reply: {retry}"
    );
    assert_eq!(app.calls(), 1, "handled once");
    // A new message during the outage is still answered (from memory).
    let other = text_xml(&openid, 6_000_003, "still there?");
    let (status, answer) = post(&srv.addr(), &target, &other);
    assert!(status.starts_with("HTTP/1.1 200") && answer.contains("handled once"), "{answer}");
    assert_eq!(app.calls(), 2);

    let (status, err) = srv.stop();
    assert!(status.success(), "{err}");
    assert!(err.contains("shared dedup store failed; using the local fallback"), "{err}");
    let rows = entries(&dir, &openid, &[]);
    let first_msg: Vec<_> = rows.iter().filter(|r| r["msg_id"] == "6000002").collect();
    assert_eq!(first_msg.len(), 1, "one log entry for the message: {rows:?}");
    assert_eq!(first_msg[0]["attempts"], 2, "{rows:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Redis that stops answering (its writes held back for 3 s) does not hold a message for
/// long: the claim falls back to memory at the fallback's 500 ms deadline — sooner than the
/// Redis connection's own 1 s response timeout, and long before Redis answers again — and
/// WeChat's retry during the outage gets the reply without a second run.
#[test]
fn a_message_arriving_while_redis_stalls_is_answered_from_memory_at_the_fallback_deadline() {
    let Some(redis) = private_redis() else { return };
    let app = CountingApp::start("answered while redis stalls", Duration::ZERO);
    let dir = temp_dir("dedup-stall");
    let srv = serve(&dir, &redis, &app, &[]);
    let openid = format!("o_stall_{}", rand::random::<u32>());
    let target = format!("{}?{}", srv.path(), signed_query(TOKEN, &openid));
    // One message while Redis answers: the connection to it is open.
    let (status, warm) = post(&srv.addr(), &target, &text_xml(&openid, 6_000_010, "hello"));
    assert!(status.starts_with("HTTP/1.1 200") && warm.contains("answered while redis stalls"), "{warm}");

    pause_writes(redis.port(), 3_000);
    let body = text_xml(&openid, 6_000_011, "hello");
    let sent = std::time::Instant::now();
    let (status, first) = post(&srv.addr(), &target, &body);
    let took = sent.elapsed();
    assert!(status.starts_with("HTTP/1.1 200") && first.contains("answered while redis stalls"), "{first}");
    assert!(took < Duration::from_millis(900), "answered after {took:?}: not at the 500 ms deadline");
    // WeChat's retry, Redis still stalled: the same reply, from memory, no second run.
    let (status, retry) = post(&srv.addr(), &target, &body);
    assert!(status.starts_with("HTTP/1.1 200"), "{retry}");
    assert!(retry.contains("<Content><![CDATA[answered while redis stalls]]></Content>"), "{retry}");
    assert_eq!(app.calls(), 2, "the warm-up and the stalled message, each handled once");

    let (status, err) = srv.stop();
    assert!(status.success(), "{err}");
    assert!(err.contains("shared dedup store failed; using the local fallback"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Sends `CLIENT PAUSE <ms> WRITE` to the Redis on `port` (RESP by hand): for `ms`, Redis
/// holds back every write command (and its answer), as a slow or busy Redis would.
fn pause_writes(port: u16, ms: u64) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let ms = ms.to_string();
    let cmd = format!("*4\r\n$6\r\nCLIENT\r\n$5\r\nPAUSE\r\n${}\r\n{ms}\r\n$5\r\nWRITE\r\n", ms.len());
    conn.write_all(cmd.as_bytes()).unwrap();
    let mut answer = [0u8; 5];
    conn.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"+OK\r\n", "CLIENT PAUSE refused");
}

#[test]
fn sigterm_right_after_an_answer_waits_for_redis_to_store_the_reply() {
    let Some(redis) = private_redis() else { return };
    let app = CountingApp::start("stored before exit", Duration::from_millis(400));
    let (dir_a, dir_b) = (temp_dir("dedup-term-a"), temp_dir("dedup-term-b"));
    let a = serve(&dir_a, &redis, &app, &[]);
    let openid = format!("o_term_{}", rand::random::<u32>());
    let (query, body) = (signed_query(TOKEN, &openid), text_xml(&openid, 6_000_004, "hello"));

    let (status, first) = std::thread::scope(|s| {
        let (addr, target, body) = (a.addr(), format!("{}?{query}", a.path()), body.clone());
        let sent = s.spawn(move || post(&addr, &target, &body));
        // The claim is stored and the handler runs: from now until well after the answer,
        // Redis holds back writes, so the reply's write waits in Redis when the answer goes
        // out (still within the connection's 1 s response timeout).
        std::thread::sleep(Duration::from_millis(150));
        pause_writes(redis.port(), 800);
        sent.join().unwrap()
    });
    assert!(status.starts_with("HTTP/1.1 200") && first.contains("stored before exit"), "{first}");
    // Stopped at once: it must not exit before Redis has stored the reply.
    let (status, err) = a.stop();
    assert!(status.success(), "{err}");
    assert!(!err.contains("cannot store"), "{err}");

    // WeChat's retry reaches another instance: the reply is in Redis.
    let b = serve(&dir_b, &redis, &app, &[]);
    let (status, retry) = post(&b.addr(), &format!("{}?{query}", b.path()), &body);
    assert!(status.starts_with("HTTP/1.1 200"), "{retry}");
    assert!(
        retry.contains("<Content><![CDATA[stored before exit]]></Content>"),
        "the retry on another instance gets the stored reply: {retry}"
    );
    assert_eq!(app.calls(), 1, "handled once");
    let (status, err) = b.stop();
    assert!(status.success(), "{err}");
    for d in [dir_a, dir_b] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// WeChat hangs up while a slow Redis holds back the delivery's claim: the delivery is logged
/// as hung up, and its claim is not left behind — WeChat's retry runs the handler and gets
/// its reply, where a claim left in Redis would make it wait for a reply no handler makes
/// and answer `success` (the message lost without a handler ever running).
#[test]
fn a_caller_that_hangs_up_while_redis_holds_the_claim_leaves_no_claim_behind() {
    use std::io::{Read, Write};
    let Some(redis) = private_redis() else { return };
    let app = CountingApp::start("handled after the hang-up", Duration::ZERO);
    let dir = temp_dir("dedup-hangup");
    let srv = serve(&dir, &redis, &app, &[]);
    let openid = format!("o_hangup_{}", rand::random::<u32>());
    let addr = srv.addr();

    // Redis holds back writes (the claim's `SET`) for 400 ms, within the fallback's 500 ms;
    // the caller gives up after 150 ms and hangs up. On a machine so busy that the server
    // reaches the claim only after the pause, the answer comes in time: that try proves
    // nothing, and the next one goes with a message of its own.
    let mut hung_up = None;
    for msg_id in 6_000_005..6_000_008 {
        let (query, body) = (signed_query(TOKEN, &openid), text_xml(&openid, msg_id, "hello"));
        let target = format!("{}?{query}", srv.path());
        pause_writes(redis.port(), 400);
        let mut caller = std::net::TcpStream::connect(&addr).unwrap();
        let head = format!(
            "POST {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        caller.write_all(head.as_bytes()).unwrap();
        caller.write_all(body.as_bytes()).unwrap();
        caller.set_read_timeout(Some(Duration::from_millis(150))).unwrap();
        let answered = caller.read(&mut [0_u8; 64]).is_ok_and(|n| n > 0);
        drop(caller);
        std::thread::sleep(Duration::from_millis(600));
        if !answered {
            hung_up = Some((msg_id, target, body));
            break;
        }
    }
    let (msg_id, target, body) =
        hung_up.expect("in three tries, the caller hung up once while Redis held the claim");
    let calls = app.calls();

    // WeChat's retry of the message whose caller hung up.
    let (status, retry) = post(&addr, &target, &body);
    assert!(status.starts_with("HTTP/1.1 200"), "{retry}");
    assert!(
        retry.contains("<Content><![CDATA[handled after the hang-up]]></Content>"),
        "the retry runs the handler: {retry}"
    );
    assert_eq!(app.calls(), calls + 1, "handled once, by the retry");

    let (status, err) = srv.stop();
    assert!(status.success(), "{err}");
    assert!(err.contains("the caller hung up before the answer"), "{err}");
    let msg_id = msg_id.to_string();
    let rows: Vec<_> =
        entries(&dir, &openid, &[]).into_iter().filter(|r| r["msg_id"] == msg_id.as_str()).collect();
    let kinds: Vec<_> = rows.iter().map(|r| r["outcome"]["kind"].as_str().unwrap_or_default()).collect();
    assert!(kinds.contains(&"hung_up"), "the hang-up is logged: {rows:?}");
    assert!(kinds.contains(&"answered"), "and the retry's answer: {rows:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
