//! A server built while Redis is down still answers: dedup goes to memory through
//! `FallbackDedupStore` over a lazily connected `RedisDedupStore`.

use std::time::Duration;

use wemp_proto::{Mode, Reply};
use wemp_server::extract::Content;
use wemp_server::{MemoryDedupStore, Router};
use wemp_store::FallbackDedupStore;
use wemp_store::redis::RedisDedupStore;

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
    let r = runs.clone();
    let router = Router::new().fallback(move |Content(text): Content| {
        r.hit();
        async move { Reply::text(format!("echo: {text}")) }
    });
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
