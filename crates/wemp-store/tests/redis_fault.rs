//! A Redis started by this test is killed mid-run: dedup through `FallbackDedupStore`
//! keeps answering from memory, and goes back to Redis once it is back; a retry arriving
//! during the outage gets the reply given while Redis was up, or joins the handler still
//! running, instead of running it again.

#![cfg(feature = "redis")]

use std::sync::Arc;
use std::time::Duration;

use wemp_store::memory::MemoryDedupStore;
use wemp_store::redis::{RedisConnection, RedisDedupStore};
use wemp_store::{Claim, DedupStore, FallbackDedupStore, SessionStore};
use wemp_testkit::redis_server::RedisServer;

const MINUTE: Duration = Duration::from_secs(60);

/// A private Redis, or `None` (with the reason printed) where `redis-server` cannot run.
fn private_redis(test: &str) -> Option<RedisServer> {
    match RedisServer::start() {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("skipping {test}: cannot start redis-server: {e}");
            None
        }
    }
}

/// The store the server builds for `--redis`, over `server`, with short timeouts.
async fn fallback_over(
    server: &RedisServer,
    prefix: &str,
) -> FallbackDedupStore<RedisDedupStore, MemoryDedupStore> {
    let conn = wemp_store::redis::connect(&server.url()).await.unwrap();
    FallbackDedupStore::new(RedisDedupStore::new(conn, prefix), MemoryDedupStore::default())
        .timeout(Duration::from_millis(500))
        .probe_interval(Duration::from_millis(100))
}

/// One delivery as the server handles it: claim, and complete when new.
async fn handle(store: &impl DedupStore, key: &str) -> Claim {
    let claim = store.claim(key, MINUTE).await.expect("dedup must keep answering");
    if claim == Claim::New {
        store.complete(key, &format!("reply to {key}"), MINUTE).await.expect("complete must keep answering");
    }
    claim
}

async fn redis_dies_and_returns(via: Via) {
    let Some(mut server) = private_redis("redis_dies_and_returns") else { return };
    let (port, url) = (server.port(), server.url());

    let conn = connection(&url, via, Duration::from_secs(1)).await;
    let mut raw = conn.get().await.unwrap();
    let store = FallbackDedupStore::new(RedisDedupStore::new(conn, "fault:"), MemoryDedupStore::default())
        .timeout(Duration::from_millis(500))
        .probe_interval(Duration::from_millis(100));

    // Redis up: claims land in Redis.
    for n in 0..5 {
        let key = format!("wx1:msg:o1:{n}");
        assert_eq!(handle(&store, &key).await, Claim::New);
        assert_eq!(handle(&store, &key).await, Claim::Done(format!("reply to {key}")));
    }
    store.flush().await.unwrap();
    let stored: Option<String> =
        redis::cmd("GET").arg("fault:dedup:wx1:msg:o1:0").query_async(&mut raw).await.unwrap();
    assert_eq!(stored.as_deref(), Some("Dreply to wx1:msg:o1:0"));
    assert!(!store.is_degraded());

    // Redis dies mid-run: every delivery is still answered, deduplicated in memory.
    server.kill();
    for n in 100..120 {
        let key = format!("wx1:msg:o1:{n}");
        assert_eq!(handle(&store, &key).await, Claim::New);
        assert_eq!(handle(&store, &key).await, Claim::Done(format!("reply to {key}")));
    }
    assert!(store.is_degraded());
    assert!(store.fallback_calls() > 0);

    // Redis comes back on the same port: the store reconnects and uses it again.
    let _server = RedisServer::start_on(port).unwrap();
    let mut n = 1000;
    while store.is_degraded() {
        assert!(n < 1200, "dedup did not go back to redis");
        let key = format!("wx1:msg:o1:{n}");
        assert_eq!(handle(&store, &key).await, Claim::New);
        tokio::time::sleep(Duration::from_millis(50)).await;
        n += 1;
    }
    let key = "wx1:msg:o1:after";
    assert_eq!(handle(&store, key).await, Claim::New);
    store.flush().await.unwrap();
    let stored: Option<String> =
        redis::cmd("GET").arg(format!("fault:dedup:{key}")).query_async(&mut raw).await.unwrap();
    assert_eq!(stored.as_deref(), Some("Dreply to wx1:msg:o1:after"));
}

#[tokio::test(flavor = "multi_thread")]
async fn stores_built_while_redis_is_down_connect_when_it_comes_up() {
    let Some(mut probe) = private_redis("the lazy-connect test") else { return };
    // Its port, free again.
    let (port, url) = (probe.port(), probe.url());
    probe.kill();
    // Nothing listens on the port: eager connecting fails, lazy building does not.
    assert!(wemp_store::redis::connect(&url).await.is_err());
    let conn =
        wemp_store::redis::RedisConnection::lazy(&url).unwrap().retry_interval(Duration::from_millis(50));
    let redis_store = RedisDedupStore::new(conn.clone(), "lazy:");
    let store = FallbackDedupStore::new(redis_store, MemoryDedupStore::default())
        .timeout(Duration::from_millis(500))
        .probe_interval(Duration::from_millis(50));
    let sessions = wemp_store::redis::RedisSessionStore::new(conn.clone(), "lazy:");
    assert!(RedisDedupStore::lazy("not a url", "x").is_err(), "invalid URLs still fail at once");

    // Redis down: deliveries are answered from memory.
    for n in 0..10 {
        let key = format!("wx1:msg:o1:{n}");
        assert_eq!(handle(&store, &key).await, Claim::New);
        assert_eq!(handle(&store, &key).await, Claim::Done(format!("reply to {key}")));
    }
    assert!(store.is_degraded());
    assert!(!conn.is_connected());
    assert!(sessions.load("wx1:o1").await.is_err(), "sessions report the outage");

    // Redis comes up: the next probe connects, and claims land in Redis.
    let _server = RedisServer::start_on(port).unwrap();
    let mut n = 1000;
    while store.is_degraded() {
        assert!(n < 1200, "dedup did not move to redis");
        handle(&store, &format!("wx1:msg:o1:{n}")).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        n += 1;
    }
    assert!(conn.is_connected());
    let key = "wx1:msg:o1:after";
    assert_eq!(handle(&store, key).await, Claim::New);
    store.flush().await.unwrap();
    let mut raw = wemp_store::redis::connect(&url).await.unwrap();
    let stored: Option<String> =
        redis::cmd("GET").arg(format!("lazy:dedup:{key}")).query_async(&mut raw).await.unwrap();
    assert_eq!(stored.as_deref(), Some("Dreply to wx1:msg:o1:after"));
    assert_eq!(sessions.load("wx1:o1").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_during_an_outage_get_the_reply_or_join_the_running_handler() {
    let Some(mut server) = private_redis("the write-through test") else { return };
    let store = Arc::new(fallback_over(&server, "wt:").await);
    let (answered, running, unseen) = ("wx1:msg:o1:1", "wx1:msg:o1:2", "wx1:msg:o1:3");
    // Redis up: one message is answered, another one's handler is still running (slow).
    assert_eq!(handle(&*store, answered).await, Claim::New);
    assert_eq!(store.claim(running, MINUTE).await.unwrap(), Claim::New);
    assert!(!store.is_degraded());

    // Redis dies; WeChat's retries arrive.
    server.kill();
    assert_eq!(store.claim(answered, MINUTE).await.unwrap(), Claim::Done(format!("reply to {answered}")));
    assert!(store.is_degraded());
    assert_eq!(store.claim(running, MINUTE).await.unwrap(), Claim::InFlight, "the retry joins");
    // The joined retry gets the running handler's reply: one reply, one handler run.
    let waiter = {
        let s = store.clone();
        tokio::spawn(async move { s.wait(running, MINUTE).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.complete(running, "the slow reply", MINUTE).await.unwrap();
    assert_eq!(waiter.await.unwrap().as_deref(), Some("the slow reply"));
    assert_eq!(store.claim(running, MINUTE).await.unwrap(), Claim::Done("the slow reply".into()));
    // A message first seen during the outage is still handled, once.
    assert_eq!(handle(&*store, unseen).await, Claim::New);
    assert_eq!(handle(&*store, unseen).await, Claim::Done(format!("reply to {unseen}")));
}

/// While Redis fails, completions are not queued: `complete` writes in place and reports the
/// failure (so `FallbackDedupStore` sees the outage). Once Redis answers again they are
/// queued, and `flush` waits until they are stored.
async fn completions_are_written_in_place_while_redis_fails(via: Via) {
    let Some(mut server) = private_redis("the write-behind outage test") else { return };
    let (port, url) = (server.port(), server.url());
    let store = RedisDedupStore::new(connection(&url, via, Duration::from_secs(1)).await, "wb:");
    assert_eq!(store.claim("wx1:msg:o1:1", MINUTE).await.unwrap(), Claim::New);
    store.complete("wx1:msg:o1:1", "queued", MINUTE).await.unwrap();
    store.flush().await.unwrap();

    server.kill();
    assert!(store.claim("wx1:msg:o1:2", MINUTE).await.is_err());
    assert!(store.complete("wx1:msg:o1:2", "lost", MINUTE).await.is_err(), "written in place, and failed");

    let _server = RedisServer::start_on(port).unwrap();
    let mut tries = 0;
    while store.claim("wx1:msg:o1:3", MINUTE).await.is_err() {
        tries += 1;
        assert!(tries < 100, "redis did not come back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.complete("wx1:msg:o1:3", "queued again", MINUTE).await.unwrap();
    store.flush().await.unwrap();
    let mut raw = wemp_store::redis::connect(&url).await.unwrap();
    let stored: Option<String> =
        redis::cmd("GET").arg("wb:dedup:wx1:msg:o1:3").query_async(&mut raw).await.unwrap();
    assert_eq!(stored.as_deref(), Some("Dqueued again"));
}

/// How a dedup store's writer reaches Redis: over a connection of its own (a store built
/// from a URL, as `wemp serve` builds it) or over the store's shared connection manager.
#[derive(Clone, Copy, Debug)]
enum Via {
    Own,
    Shared,
}

/// A connection to `url`, made now, waiting `response_timeout` for answers, over which a
/// dedup store's writer goes `via`.
async fn connection(url: &str, via: Via, response_timeout: Duration) -> RedisConnection {
    match via {
        Via::Own => {
            let conn = RedisConnection::lazy(url).unwrap().timeouts(Duration::from_secs(1), response_timeout);
            conn.get().await.unwrap();
            conn
        }
        Via::Shared => {
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Duration::from_secs(1))
                .set_response_timeout(response_timeout)
                .set_number_of_retries(1);
            wemp_store::redis::connect_with(url, config).await.unwrap().into()
        }
    }
}

/// The tests of what the writer does, run both ways (`own::…` and `shared::…`).
macro_rules! both_ways {
    ($($test:ident),* $(,)?) => {
        mod own {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $test() {
                super::$test(super::Via::Own).await
            })*
        }
        mod shared {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $test() {
                super::$test(super::Via::Shared).await
            })*
        }
    };
}

both_ways!(
    redis_dies_and_returns,
    completions_are_written_in_place_while_redis_fails,
    claims_queued_when_the_connection_drops_each_get_an_error,
    claims_queued_behind_a_stalled_batch_fail_with_it,
    a_claim_given_up_while_queued_is_not_sent,
    a_claim_won_for_a_caller_that_stopped_waiting_is_released,
    a_script_claim_won_for_a_caller_that_stopped_waiting_is_released,
    claims_through_the_fallback_are_answered_by_their_deadline,
);

/// A store whose connection waits `response_timeout` for an answer, over `server`, its
/// writer going `via`.
async fn store_waiting(
    server: &RedisServer,
    prefix: &str,
    response_timeout: Duration,
    via: Via,
) -> RedisDedupStore {
    RedisDedupStore::new(connection(&server.url(), via, response_timeout).await, prefix)
}

/// Stops Redis answering commands for `ms` milliseconds (every client), from a connection of
/// its own.
async fn pause(server: &RedisServer, ms: u64) {
    let mut raw = wemp_store::redis::connect(&server.url()).await.unwrap();
    let () = redis::cmd("CLIENT").arg("PAUSE").arg(ms).arg("ALL").query_async(&mut raw).await.unwrap();
}

/// Claims go to Redis in pipelines, several at a time. When the connection drops with claims
/// sent and others still queued behind them, each one gets an error at once (so a
/// `FallbackDedupStore` serves it from memory), none waits for an answer that cannot come.
async fn claims_queued_when_the_connection_drops_each_get_an_error(via: Via) {
    let Some(mut server) = private_redis("the dropped-connection test") else { return };
    // Only the dropped connection can end the wait: the response timeout is far away.
    let store = Arc::new(store_waiting(&server, "drop:", Duration::from_secs(60), via).await);
    assert_eq!(store.claim("wx1:msg:o1:0", MINUTE).await.unwrap(), Claim::New);

    pause(&server, 30_000).await;
    let mut claims = tokio::task::JoinSet::new();
    for n in 0..110 {
        // 100 keys of their own, and ten claims of one key.
        let key = if n < 100 { format!("wx1:msg:o1:{n}") } else { "wx1:msg:o2:same".to_owned() };
        let s = store.clone();
        claims.spawn(async move { s.claim(&key, MINUTE).await });
    }
    // Every claim sent or queued, none answered (Redis is paused).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(claims.len(), 110);
    assert!(claims.try_join_next().is_none());

    let dropped = std::time::Instant::now();
    server.kill();
    let answers = tokio::time::timeout(Duration::from_secs(10), claims.join_all())
        .await
        .expect("claims queued on a dropped connection must not hang");
    assert!(dropped.elapsed() < Duration::from_secs(10));
    assert_eq!(answers.len(), 110);
    for answer in answers {
        assert!(answer.is_err(), "a claim on a dropped connection must fail, got {answer:?}");
    }
}

/// A Redis that stops answering without closing the socket: the batch on the wire fails at the
/// connection's response timeout, and the claims queued behind it fail with it rather than
/// wait a timeout each; once Redis answers again, claims are answered again.
async fn claims_queued_behind_a_stalled_batch_fail_with_it(via: Via) {
    let Some(server) = private_redis("the stalled-redis test") else { return };
    let store = Arc::new(store_waiting(&server, "stall:", Duration::from_millis(300), via).await);
    assert_eq!(store.claim("wx1:msg:o1:0", MINUTE).await.unwrap(), Claim::New);

    pause(&server, 4_000).await;
    let paused = std::time::Instant::now();
    let mut claims = tokio::task::JoinSet::new();
    for n in 1..=300 {
        let s = store.clone();
        claims.spawn(async move { s.claim(&format!("wx1:msg:o1:{n}"), MINUTE).await });
    }
    let answers = claims.join_all().await;
    // Answered (with errors) before the pause ends: Redis would have answered them after.
    assert!(paused.elapsed() < Duration::from_millis(3_500), "took {:?}", paused.elapsed());
    assert!(answers.iter().all(Result::is_err), "{answers:?}");

    // Redis answers again: so does the store (a claim first seen now is new).
    tokio::time::sleep(Duration::from_millis(4_000).saturating_sub(paused.elapsed())).await;
    let mut tries = 0;
    loop {
        match store.claim("wx1:msg:o1:after", MINUTE).await {
            Ok(claim) => {
                assert_eq!(claim, Claim::New);
                break;
            }
            Err(_) => {
                tries += 1;
                assert!(tries < 50, "the store did not answer again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A claim whose caller stopped waiting (a `FallbackDedupStore` timeout) while it was queued
/// is not sent: Redis never sees the key in flight for a message handled elsewhere.
async fn a_claim_given_up_while_queued_is_not_sent(via: Via) {
    let Some(server) = private_redis("the given-up claim test") else { return };
    let store = Arc::new(store_waiting(&server, "gone:", Duration::from_secs(60), via).await);
    assert_eq!(store.claim("wx1:msg:o1:0", MINUTE).await.unwrap(), Claim::New);

    pause(&server, 600).await;
    // On the wire, waiting for the paused Redis.
    let first = {
        let s = store.clone();
        tokio::spawn(async move { s.claim("wx1:msg:o1:1", MINUTE).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Queued behind it, then given up.
    assert!(
        tokio::time::timeout(Duration::from_millis(50), store.claim("wx1:msg:o1:2", MINUTE)).await.is_err()
    );
    assert_eq!(first.await.unwrap().unwrap(), Claim::New);
    store.flush().await.unwrap();

    let mut raw = wemp_store::redis::connect(&server.url()).await.unwrap();
    let held: Option<String> =
        redis::cmd("GET").arg("gone:dedup:wx1:msg:o1:2").query_async(&mut raw).await.unwrap();
    assert_eq!(held, None, "the given-up claim reached Redis");
    let held: Option<String> =
        redis::cmd("GET").arg("gone:dedup:wx1:msg:o1:1").query_async(&mut raw).await.unwrap();
    assert_eq!(held.as_deref(), Some("I"));
    assert_eq!(store.claim("wx1:msg:o1:2", MINUTE).await.unwrap(), Claim::New);
}

/// A `FallbackDedupStore`'s claims are bounded by its timeout: with Redis paused, the claim
/// out on the wire and the claim queued behind it are each answered by their deadline (and
/// served from memory), not at the batch's response timeout nor when Redis answers again;
/// the claim Redis then makes is released, and the one queued behind it is never sent.
async fn claims_through_the_fallback_are_answered_by_their_deadline(via: Via) {
    let Some(server) = private_redis("the claims' deadline test") else { return };
    let primary = store_waiting(&server, "due:", Duration::from_secs(5), via).await;
    let store = Arc::new(
        FallbackDedupStore::new(primary, MemoryDedupStore::default())
            .timeout(Duration::from_millis(200))
            .probe_interval(Duration::from_secs(3600)),
    );
    assert_eq!(store.claim("wx1:msg:o1:0", MINUTE).await.unwrap(), Claim::New);

    pause(&server, 1_000).await;
    let claim = |key: &'static str| {
        let s = store.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            (s.claim(key, MINUTE).await, started.elapsed())
        })
    };
    // On the wire, waiting for the paused Redis.
    let first = claim("wx1:msg:o1:1");
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Queued behind it.
    let second = claim("wx1:msg:o1:2");
    for (n, claimed) in [first.await.unwrap(), second.await.unwrap()].into_iter().enumerate() {
        let (claim, took) = claimed;
        assert_eq!(claim.unwrap(), Claim::New, "claim {n}: served from memory");
        assert!(
            took >= Duration::from_millis(150) && took < Duration::from_millis(600),
            "claim {n} took {took:?}"
        );
    }
    assert!(store.is_degraded());

    // Redis answers again: the claim it made for the first is released, the second was never
    // sent.
    let mut raw = wemp_store::redis::connect(&server.url()).await.unwrap();
    let mut held: Option<String> = Some(String::new());
    for _ in 0..100 {
        held = redis::cmd("GET").arg("due:dedup:wx1:msg:o1:1").query_async(&mut raw).await.unwrap();
        if held.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(held, None, "the claim Redis made after its deadline is released");
    let held: Option<String> =
        redis::cmd("GET").arg("due:dedup:wx1:msg:o1:2").query_async(&mut raw).await.unwrap();
    assert_eq!(held, None, "the claim given up while queued reached Redis");
}

/// A claim sent to Redis whose caller stops waiting before the answer (WeChat hung up while
/// Redis was slow): when Redis then wins the claim, the key is released at once, so WeChat's
/// retry runs the handler instead of waiting on a marker no handler will ever complete. A
/// claim that found the key taken leaves it as it is.
async fn a_claim_won_for_a_caller_that_stopped_waiting_is_released(via: Via) {
    claim_won_for_a_caller_that_stopped_waiting(via, false).await;
}

/// The same with the claims of Redis before 7.0 (the Lua script), which go through the
/// writer too.
async fn a_script_claim_won_for_a_caller_that_stopped_waiting_is_released(via: Via) {
    claim_won_for_a_caller_that_stopped_waiting(via, true).await;
}

async fn claim_won_for_a_caller_that_stopped_waiting(via: Via, by_script: bool) {
    let Some(server) = private_redis("the abandoned-claim test") else { return };
    let mut store = store_waiting(&server, "gone:", Duration::from_secs(5), via).await;
    if by_script {
        store = store.claim_by_script();
    }
    abandon_a_claim_while_redis_is_paused(&server, &store, false).await;
}

/// A claim made in place (here: the store has no queue, as while Redis fails or when the
/// queue is full) whose caller stops waiting before Redis answers is released too once Redis
/// wins it; a claim that found the key taken leaves it as it is.
#[tokio::test(flavor = "multi_thread")]
async fn a_claim_made_in_place_for_a_caller_that_stopped_waiting_is_released() {
    let Some(server) = private_redis("the abandoned in-place claim test") else { return };
    let store = store_waiting(&server, "gone:", Duration::from_secs(5), Via::Own).await.completion_queue(0);
    abandon_a_claim_while_redis_is_paused(&server, &store, true).await;
}

/// With Redis paused, the claims of a free key and of a key another delivery holds are given
/// up by their callers; once Redis answers, the free key is released (`in_place`: by the
/// claim's own task, else by the writer) and the held one is not.
async fn abandon_a_claim_while_redis_is_paused(
    server: &RedisServer,
    store: &RedisDedupStore,
    in_place: bool,
) {
    // The writer is started, and a key another delivery holds.
    assert_eq!(store.claim("wx1:msg:o1:held", MINUTE).await.unwrap(), Claim::New);

    pause(server, 400).await;
    for key in ["wx1:msg:o1:gone", "wx1:msg:o1:held"] {
        let gave_up = tokio::time::timeout(Duration::from_millis(100), store.claim(key, MINUTE)).await;
        assert!(gave_up.is_err(), "Redis is paused: the claim of {key} cannot be answered yet");
    }
    let mut raw = wemp_store::redis::connect(&server.url()).await.unwrap();
    if in_place {
        // The release is the only `EVAL` here: wait for it.
        let mut evals = 0;
        for _ in 0..100 {
            let stats: String = redis::cmd("INFO").arg("commandstats").query_async(&mut raw).await.unwrap();
            evals = stats
                .lines()
                .find_map(|l| l.strip_prefix("cmdstat_eval:calls="))
                .and_then(|rest| rest.split(',').next()?.parse::<u32>().ok())
                .unwrap_or(0);
            if evals > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(evals, 1, "one release, of the claim won for a caller that stopped waiting");
    } else {
        // Redis answers the claims once the pause is over; the writer releases the one it
        // won before it sends its next batch, which holds this claim: once it is answered,
        // the release is done.
        assert_eq!(store.claim("wx1:msg:o1:probe", MINUTE).await.unwrap(), Claim::New);
    }
    let held: Option<String> =
        redis::cmd("GET").arg("gone:dedup:wx1:msg:o1:gone").query_async(&mut raw).await.unwrap();
    assert_eq!(held, None, "the claim won for a caller that stopped waiting is released");
    assert_eq!(
        store.claim("wx1:msg:o1:gone", MINUTE).await.unwrap(),
        Claim::New,
        "the retry runs the handler"
    );
    assert_eq!(
        store.claim("wx1:msg:o1:held", MINUTE).await.unwrap(),
        Claim::InFlight,
        "a key held by another delivery is not released"
    );
}

/// `CONFIG SET name value` over `conn`.
async fn config_set(conn: &mut redis::aio::ConnectionManager, name: &str, value: impl redis::ToRedisArgs) {
    let () = redis::cmd("CONFIG").arg("SET").arg(name).arg(value).query_async(conn).await.unwrap();
}

/// Redis closes idle clients after its `timeout` setting: the writer notices that its own
/// connection was closed while idle and opens another before it sends a batch, so no claim
/// fails for it.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_redis_closed_while_idle_is_replaced_before_a_batch() {
    let Some(server) = private_redis("the idle-connection test") else { return };
    let store = store_waiting(&server, "idle:", Duration::from_secs(1), Via::Own).await;
    assert_eq!(store.claim("wx1:msg:o1:1", MINUTE).await.unwrap(), Claim::New);
    let mut admin = wemp_store::redis::connect(&server.url()).await.unwrap();
    config_set(&mut admin, "timeout", 1).await;
    // Redis closes clients idle for more than a second (checked a few times a second).
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    for n in 2..5 {
        assert_eq!(store.claim(&format!("wx1:msg:o1:{n}"), MINUTE).await.unwrap(), Claim::New);
    }
}

/// The writer's own connection greets Redis as the URL says: it authenticates with the URL's
/// password and selects its database, so claims and replies land where the shared
/// connection's commands do.
#[tokio::test(flavor = "multi_thread")]
async fn the_writers_own_connection_authenticates_and_selects_the_urls_database() {
    let Some(server) = private_redis("the own-connection greeting test") else { return };
    let mut admin = wemp_store::redis::connect(&server.url()).await.unwrap();
    config_set(&mut admin, "requirepass", "s3cret").await;
    let url = format!("redis://:s3cret@127.0.0.1:{}/3", server.port());

    let store = RedisDedupStore::connect(&url, "greet:").await.unwrap();
    assert_eq!(store.claim("wx1:msg:o1:1", MINUTE).await.unwrap(), Claim::New);
    store.complete("wx1:msg:o1:1", "in db 3", MINUTE).await.unwrap();
    store.flush().await.unwrap();

    let mut db3 = wemp_store::redis::connect(&url).await.unwrap();
    let stored: Option<String> =
        redis::cmd("GET").arg("greet:dedup:wx1:msg:o1:1").query_async(&mut db3).await.unwrap();
    assert_eq!(stored.as_deref(), Some("Din db 3"));
    let mut db0 =
        wemp_store::redis::connect(&format!("redis://:s3cret@127.0.0.1:{}/0", server.port())).await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("greet:*").query_async(&mut db0).await.unwrap();
    assert_eq!(keys, Vec::<String>::new(), "nothing in database 0");
    // Two clients of the store: the shared connection and the writer's own.
    let clients: String = redis::cmd("CLIENT").arg("LIST").query_async(&mut db3).await.unwrap();
    assert_eq!(clients.lines().filter(|l| l.contains(" db=3 ")).count(), 3, "{clients}");
}

/// When Redis refuses the greeting of the writer's own connection (here: the password changed
/// after the shared connection logged in), the writer goes on over the shared connection:
/// claims are answered, nothing is lost.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_own_connection_leaves_the_writer_on_the_shared_one() {
    let Some(server) = private_redis("the refused own-connection test") else { return };
    let mut admin = wemp_store::redis::connect(&server.url()).await.unwrap();
    config_set(&mut admin, "requirepass", "before").await;
    let store = RedisDedupStore::connect(&format!("redis://:before@127.0.0.1:{}", server.port()), "refused:")
        .await
        .unwrap();
    config_set(&mut admin, "requirepass", "after").await;

    for n in 0..3 {
        let key = format!("wx1:msg:o1:{n}");
        assert_eq!(handle(&store, &key).await, Claim::New);
        assert_eq!(handle(&store, &key).await, Claim::Done(format!("reply to {key}")));
    }
    let stored: Option<String> =
        redis::cmd("GET").arg("refused:dedup:wx1:msg:o1:2").query_async(&mut admin).await.unwrap();
    assert_eq!(stored.as_deref(), Some("Dreply to wx1:msg:o1:2"));
}
