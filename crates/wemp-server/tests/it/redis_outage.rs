//! A server built while Redis is down still answers: dedup goes to memory through
//! `FallbackDedupStore` over a lazily connected `RedisDedupStore`. And when a private Redis
//! dies between a delivery and WeChat's retry, the retry is answered from what this server
//! wrote through to memory: the reply it gave, or the handler still running — never a second
//! run or a second late reply.

use std::time::Duration;

use wemp_proto::{Mode, Reply};
use wemp_server::extract::Content;
use wemp_server::{MemoryDedupStore, Router};
use wemp_store::FallbackDedupStore;
use wemp_store::redis::RedisDedupStore;
use wemp_testkit::redis_server::RedisServer;

use crate::common::*;

#[tokio::test]
async fn a_server_started_during_a_redis_outage_answers_and_dedups() {
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let redis = RedisDedupStore::lazy(&format!("redis://127.0.0.1:{port}"), "outage:").unwrap();
    let dedup = FallbackDedupStore::new(redis, MemoryDedupStore::default())
        .timeout(Duration::from_millis(300))
        .probe_interval(Duration::from_secs(60));
    let runs = Counter::default();
    let router = echo(&runs, Duration::ZERO);
    let svc = builder(router).dedup_store(dedup).build().unwrap();
    for id in 0..3 {
        let xml = text_xml(&format!("m{id}"), id);
        for _ in 0..2 {
            let (status, body) = send(&svc, wechat_post(Mode::Safe, &xml)).await;
            assert_eq!(status, http::StatusCode::OK);
            assert_eq!(reply_text(&body), Some(format!("echo: m{id}")));
        }
    }
    assert_eq!(runs.get(), 3, "retries deduplicated in memory");
}

/// A handler that counts its runs in `runs` and echoes the text after `delay`.
fn echo(runs: &Counter, delay: Duration) -> Router {
    let runs = runs.clone();
    Router::new().fallback(move |Content(text): Content| {
        runs.hit();
        async move {
            tokio::time::sleep(delay).await;
            Reply::text(format!("echo: {text}"))
        }
    })
}

/// A private Redis and the dedup store `wemp serve` builds over it, or `None` (with the
/// reason printed) where `redis-server` cannot run.
async fn killable_redis(
    prefix: &str,
) -> Option<(RedisServer, FallbackDedupStore<RedisDedupStore, MemoryDedupStore>)> {
    let redis = match RedisServer::start() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("skipped: cannot start a private redis-server: {e}");
            return None;
        }
    };
    let conn = wemp_store::redis::connect(&redis.url()).await.unwrap();
    let dedup = FallbackDedupStore::new(RedisDedupStore::new(conn, prefix), MemoryDedupStore::default())
        .timeout(Duration::from_millis(300))
        .probe_interval(Duration::from_secs(60));
    Some((redis, dedup))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_between_delivery_and_retry_the_retry_gets_the_reply() {
    let Some((mut redis, dedup)) = killable_redis("between:").await else { return };
    let runs = Counter::default();
    let router = echo(&runs, Duration::ZERO);
    let svc = builder(router).dedup_store(dedup).build().unwrap();
    let xml = text_xml("once", 7001);
    let (_, first) = send(&svc, wechat_post(Mode::Safe, &xml)).await;
    assert_eq!(reply_text(&first).as_deref(), Some("echo: once"));
    redis.kill();
    let (status, retry) = send(&svc, wechat_post(Mode::Safe, &xml)).await;
    assert_eq!(status, http::StatusCode::OK);
    assert_eq!(reply_text(&retry).as_deref(), Some("echo: once"), "the retry gets the same reply");
    assert_eq!(runs.get(), 1, "handled once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handler_running_when_redis_dies_sends_one_late_reply() {
    let Some((mut redis, dedup)) = killable_redis("slow:").await else { return };
    let runs = Counter::default();
    let router = echo(&runs, Duration::from_millis(1500));
    let sink = RecordingSink::default();
    let svc = builder(router)
        .dedup_store(dedup)
        .late_sink(sink.clone())
        .budget(Duration::from_millis(400))
        .build()
        .unwrap();
    let xml = text_xml("slow", 7002);
    // Redis up: the first delivery is answered `success` at the budget; the handler runs on.
    let (_, first) = send(&svc, wechat_post(Mode::Safe, &xml)).await;
    assert_eq!(first, "success");
    // Redis dies while the handler runs; WeChat's retry arrives and joins it.
    redis.kill();
    let (status, retry) = send(&svc, wechat_post(Mode::Safe, &xml)).await;
    assert_eq!((status, retry.as_str()), (http::StatusCode::OK, "success"));
    assert!(svc.drain(Duration::from_secs(10)).await);
    assert_eq!(runs.get(), 1, "the handler ran once");
    let late = sink.replies();
    assert_eq!(late.len(), 1, "one late reply: {late:?}");
    assert_eq!(late[0].2, Reply::text("echo: slow"));
    // The last try, after the handler finished, sends nothing new.
    let (_, third) = send(&svc, wechat_post(Mode::Safe, &xml)).await;
    assert_eq!(third, "success");
    assert_eq!((runs.get(), sink.replies().len()), (1, 1));
}

/// `drain` waits, after the handlers, for the dedup store to write what it queued
/// ([`wemp_store::DedupStore::flush`]; the Redis store writes replies behind).
#[tokio::test]
async fn drain_flushes_the_dedup_store() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use wemp_store::{Claim, DedupStore};

    #[derive(Default)]
    struct Flushes(MemoryDedupStore, Arc<AtomicUsize>);

    #[async_trait::async_trait]
    impl DedupStore for Flushes {
        async fn claim(&self, key: &str, ttl: Duration) -> wemp_store::Result<Claim> {
            self.0.claim(key, ttl).await
        }
        async fn complete(&self, key: &str, reply: &str, ttl: Duration) -> wemp_store::Result<()> {
            self.0.complete(key, reply, ttl).await
        }
        async fn release(&self, key: &str) -> wemp_store::Result<()> {
            self.0.release(key).await
        }
        async fn wait(&self, key: &str, timeout: Duration) -> wemp_store::Result<Option<String>> {
            self.0.wait(key, timeout).await
        }
        async fn flush(&self) -> wemp_store::Result<()> {
            self.1.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    let store = Flushes::default();
    let flushes = store.1.clone();
    let runs = Counter::default();
    let svc = builder(echo(&runs, Duration::ZERO)).dedup_store(store).build().unwrap();
    let (_, body) = send(&svc, wechat_post(Mode::Safe, &text_xml("hi", 7003))).await;
    assert_eq!(reply_text(&body).as_deref(), Some("echo: hi"));
    assert_eq!(flushes.load(Ordering::SeqCst), 0);
    assert!(svc.drain(Duration::from_secs(5)).await);
    assert_eq!(flushes.load(Ordering::SeqCst), 1);
}
