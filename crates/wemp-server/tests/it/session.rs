//! Sessions in handlers: typed values per (appid, OpenID), a TTL, optimistic concurrency;
//! and 100 concurrent updates from two instances sharing SQLite or Redis lose nothing.

use std::sync::Arc;
use std::time::Duration;

use wemp_proto::{Mode, Reply};
use wemp_server::extract::Content;
use wemp_server::{Ctx, Router, Session, SessionError, SessionStore};
use wemp_store::memory::MemorySessionStore;
use wemp_store::{StoreError, Versioned};

use crate::common::*;

#[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Visits {
    count: u32,
    seen: Vec<String>,
}

fn counter() -> Router {
    Router::new().fallback(|Content(text): Content, session: Session<Visits>| async move {
        let n = session
            .update(|v| {
                v.count += 1;
                v.seen.push(text.clone());
                v.count
            })
            .await?;
        Ok::<_, SessionError>(Reply::text(format!("visit {n}")))
    })
}

#[tokio::test(start_paused = true)]
async fn handlers_keep_a_typed_session_per_user_with_a_ttl() {
    let store = Arc::new(MemorySessionStore::new());
    let svc = builder(counter())
        .session_store_arc(store.clone())
        .session_ttl(Duration::from_secs(60))
        .build()
        .unwrap();
    for (i, word) in ["a", "b", "c"].iter().enumerate() {
        let (_, body) = send(&svc, wechat_post(Mode::Safe, &text_xml(word, i as u64))).await;
        assert_eq!(reply_text(&body), Some(format!("visit {}", i + 1)));
    }
    // Keyed by appid and OpenID, stored as JSON with a version.
    let stored = store.load(&format!("{APPID}:{OPENID}")).await.unwrap().unwrap();
    assert_eq!(stored.version, 3);
    assert_eq!(stored.value, serde_json::json!({"count": 3, "seen": ["a", "b", "c"]}));

    // Another user has a session of their own.
    let other = text_xml_from("oOtherUserxxxxxxxxxxxxxxxxxx", "z", 10);
    let (_, body) = send(&svc, wechat_post(Mode::Plain, &other)).await;
    assert!(body.contains("<Content><![CDATA[visit 1]]></Content>"), "{body}");

    // The TTL runs from the last write.
    tokio::time::advance(Duration::from_secs(61)).await;
    let (_, body) = send(&svc, wechat_post(Mode::Safe, &text_xml("d", 20))).await;
    assert_eq!(reply_text(&body).as_deref(), Some("visit 1"));
}

#[tokio::test]
async fn without_a_store_sessions_report_not_configured() {
    let router = Router::new().fallback(|ctx: Ctx| async move {
        let err = ctx.session::<Visits>().get().await.unwrap_err();
        Reply::text(err.to_string())
    });
    let (_, body) = send(&service(router), wechat_post(Mode::Safe, &text_xml("x", 1))).await;
    assert!(reply_text(&body).unwrap().starts_with("no session store configured"));
}

/// A store where another writer always got there first.
struct AlwaysConflicting;

#[async_trait::async_trait]
impl SessionStore for AlwaysConflicting {
    async fn load(&self, _key: &str) -> wemp_store::Result<Option<Versioned>> {
        Ok(None)
    }
    async fn save(
        &self,
        key: &str,
        _: &serde_json::Value,
        expected: u64,
        _: Duration,
    ) -> wemp_store::Result<u64> {
        Err(StoreError::Conflict { key: key.to_owned(), expected, found: expected + 1 })
    }
    async fn delete(&self, _key: &str) -> wemp_store::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn an_update_that_keeps_losing_is_reported_not_dropped() {
    let tries = Counter::default();
    let t = tries.clone();
    let router = Router::new().fallback(move |session: Session<Visits>| {
        let t = t.clone();
        async move {
            let err = session.update(|v| {
                t.hit();
                v.count += 1;
            });
            Reply::text(err.await.unwrap_err().to_string())
        }
    });
    let svc = builder(router).session_store(AlwaysConflicting).session_retries(2).build().unwrap();
    let (_, body) = send(&svc, wechat_post(Mode::Safe, &text_xml("x", 1))).await;
    assert_eq!(
        reply_text(&body).as_deref(),
        Some(
            format!("session {APPID}:{OPENID} changed under every one of 3 tries; update not applied")
                .as_str()
        )
    );
    assert_eq!(tries.get(), 3);
}

#[cfg(any(feature = "sqlite", feature = "redis"))]
/// 100 deliveries (distinct MsgIds, one user) at once, alternating between two service
/// instances with their own connections to one store; each adds its MsgId to the session.
async fn hundred_concurrent_updates(a: Arc<dyn SessionStore>, b: Arc<dyn SessionStore>) {
    let make = |store: Arc<dyn SessionStore>| {
        let router =
            Router::new().fallback(|msg: wemp_proto::Incoming, session: Session<Visits>| async move {
                let id = msg.msg_id().unwrap_or_default().to_string();
                session
                    .update(|v| {
                        v.count += 1;
                        v.seen.push(id.clone());
                    })
                    .await?;
                Ok::<_, SessionError>(Reply::text("ok"))
            });
        builder(router)
            .session_store_arc(store)
            .session_retries(10_000)
            .budget(Duration::from_secs(60))
            .build()
            .unwrap()
    };
    let instances: [wemp_server::WechatService; 2] = [make(a.clone()), make(b)];
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100u64)
        .map(|i| {
            let svc = instances[(i % 2) as usize].clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let req = wechat_post(Mode::Safe, &text_xml("add", 1000 + i));
                barrier.wait().await;
                send(&svc, req).await
            })
        })
        .collect();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, http::StatusCode::OK);
        assert_eq!(reply_text(&body).as_deref(), Some("ok"), "every update applied");
    }
    let key = format!("{APPID}:{OPENID}");
    let stored = a.load(&key).await.unwrap().expect("session stored");
    let visits: Visits = serde_json::from_value(stored.value).unwrap();
    assert_eq!(visits.count, 100, "no lost update");
    let mut ids: Vec<u64> = visits.seen.iter().map(|s| s.parse().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1000..1100).collect::<Vec<_>>());
    assert_eq!(stored.version, 100, "one write per update");
    a.delete(&key).await.unwrap();
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_sharing_sqlite_lose_no_update() {
    use wemp_store::sqlite::SqliteDatabase;
    let dir = std::env::temp_dir().join(format!("wemp-server-session-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sessions.db");
    // Two connections to one file, as two processes would have.
    let a = SqliteDatabase::open(&path).await.unwrap();
    let b = SqliteDatabase::open(&path).await.unwrap();
    hundred_concurrent_updates(Arc::new(a.session_store()), Arc::new(b.session_store())).await;
    drop((a, b));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_sharing_redis_lose_no_update() {
    use wemp_store::redis::RedisSessionStore;
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("wemp-test:server-session:{:016x}:", rand::random::<u64>());
    let connect = async {
        Ok::<_, StoreError>((
            RedisSessionStore::connect(&url, prefix.clone()).await?,
            RedisSessionStore::connect(&url, prefix.clone()).await?,
        ))
    };
    let (a, b) = match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return eprintln!("skipping redis session test: cannot connect to {url}: {e}"),
        Err(_) => return eprintln!("skipping redis session test: {url} did not answer within 5 s"),
    };
    hundred_concurrent_updates(Arc::new(a), Arc::new(b)).await;
}
