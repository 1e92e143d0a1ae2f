//! A Redis started by this test is killed mid-run: dedup through `FallbackDedupStore`
//! keeps answering from memory, and goes back to Redis once it is back.

#![cfg(feature = "redis")]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use wemp_store::memory::MemoryDedupStore;
use wemp_store::redis::RedisDedupStore;
use wemp_store::{Claim, DedupStore, FallbackDedupStore, SessionStore};

const MINUTE: Duration = Duration::from_secs(60);

/// A `redis-server` child, killed on drop.
struct Server(Child);

impl Server {
    fn start(port: u16) -> std::io::Result<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Self(child))
    }

    fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spare_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until something answers PING at `url`.
async fn ready(url: &str) -> bool {
    for _ in 0..100 {
        if let Ok(conn) = wemp_store::redis::connect(url).await {
            let mut conn = conn;
            if redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok() {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// One delivery as the server handles it: claim, and complete when new.
async fn handle(store: &impl DedupStore, key: &str) -> Claim {
    let claim = store.claim(key, MINUTE).await.expect("dedup must keep answering");
    if claim == Claim::New {
        store.complete(key, &format!("reply to {key}"), MINUTE).await.expect("complete must keep answering");
    }
    claim
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_dies_and_returns() {
    let port = spare_port();
    let url = format!("redis://127.0.0.1:{port}");
    let server = match Server::start(port) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("skipping redis fault test: cannot start redis-server: {e}");
            return;
        }
    };
    assert!(ready(&url).await, "redis-server on {port} did not come up");

    let conn = wemp_store::redis::connect(&url).await.unwrap();
    let mut raw = conn.clone();
    let store = FallbackDedupStore::new(RedisDedupStore::new(conn, "fault:"), MemoryDedupStore::default())
        .timeout(Duration::from_millis(500))
        .probe_interval(Duration::from_millis(100));

    // Redis up: claims land in Redis.
    for n in 0..5 {
        let key = format!("wx1:msg:o1:{n}");
        assert_eq!(handle(&store, &key).await, Claim::New);
        assert_eq!(handle(&store, &key).await, Claim::Done(format!("reply to {key}")));
    }
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
    let _server = Server::start(port).unwrap();
    assert!(ready(&url).await, "restarted redis-server on {port} did not come up");
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
    let stored: Option<String> =
        redis::cmd("GET").arg(format!("fault:dedup:{key}")).query_async(&mut raw).await.unwrap();
    assert_eq!(stored.as_deref(), Some("Dreply to wx1:msg:o1:after"));
}

#[tokio::test(flavor = "multi_thread")]
async fn stores_built_while_redis_is_down_connect_when_it_comes_up() {
    if let Err(e) = Command::new("redis-server").arg("--version").stdout(Stdio::null()).status() {
        eprintln!("skipping redis lazy-connect test: cannot run redis-server: {e}");
        return;
    }
    let port = spare_port();
    let url = format!("redis://127.0.0.1:{port}");
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
    let _server = Server::start(port).unwrap();
    assert!(ready(&url).await, "redis-server on {port} did not come up");
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
    let mut raw = wemp_store::redis::connect(&url).await.unwrap();
    let stored: Option<String> =
        redis::cmd("GET").arg(format!("lazy:dedup:{key}")).query_async(&mut raw).await.unwrap();
    assert_eq!(stored.as_deref(), Some("Dreply to wx1:msg:o1:after"));
    assert_eq!(sessions.load("wx1:o1").await.unwrap(), None);
}
