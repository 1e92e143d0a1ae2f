use std::sync::Arc;

use wemp_store::postgres::PostgresDatabase;

use crate::suite;

/// Two connections to a fresh schema of the test database; `None` (with a note on
/// stderr) if PostgreSQL cannot be reached.
async fn connect(test: &str) -> Option<(PostgresDatabase, PostgresDatabase)> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("wemp_test_{test}_{:016x}", rand::random::<u64>());
    let a = match PostgresDatabase::connect(&url, &schema).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("skipping postgres test {test}: cannot connect to {url}: {e}");
            return None;
        }
    };
    // The second instance finds the schema migrated already.
    let b = PostgresDatabase::connect(&url, &schema).await.unwrap();
    Some((a, b))
}

#[tokio::test(flavor = "multi_thread")]
async fn session() {
    let Some((a, b)) = connect("session").await else { return };
    suite::session(Arc::new(a.session_store()), Arc::new(b.session_store())).await;
    a.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn log() {
    let Some((a, b)) = connect("log").await else { return };
    suite::log(Arc::new(a.message_log()), Arc::new(b.message_log())).await;
    a.drop_schema().await.unwrap();
}

/// Instances starting together migrate the schema once, without errors.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_migrations() {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("wemp_test_migrate_{:016x}", rand::random::<u64>());
    let (a, b, c) = tokio::join!(
        PostgresDatabase::connect(&url, &schema),
        PostgresDatabase::connect(&url, &schema),
        PostgresDatabase::connect(&url, &schema),
    );
    let a = match a {
        Ok(a) => a,
        Err(e) => {
            eprintln!("skipping postgres test concurrent_migrations: cannot connect to {url}: {e}");
            return;
        }
    };
    b.unwrap();
    c.unwrap();
    a.drop_schema().await.unwrap();
}

#[tokio::test]
async fn rejects_bad_schema_names() {
    for bad in ["", "Wemp", "a-b", "x\"; DROP SCHEMA public; --", "pg_catalog", "1abc"] {
        let err = PostgresDatabase::connect("postgres://postgres@127.0.0.1:1/test", bad).await.unwrap_err();
        assert!(err.to_string().contains("invalid schema name"), "{bad}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn retention() {
    use std::time::Duration;
    use wemp_store::{DeliveryRecord, LogQuery, MessageLog, SessionStore};
    let Some((db, _)) = connect("retention").await else { return };
    let log = db.message_log();
    let at = |ms| DeliveryRecord::new(0, ms);
    log.append(&[at(1), at(2), at(3)]).await.unwrap();
    assert_eq!(log.delete_before(3).await.unwrap(), 2);
    let rows = log.query(&LogQuery::default()).await.unwrap();
    assert_eq!(rows.into_iter().map(|(_, e)| e).collect::<Vec<_>>(), [at(3)]);

    let sessions = db.session_store();
    sessions.save("gone", &serde_json::json!(1), 0, Duration::ZERO).await.unwrap();
    sessions.save("kept", &serde_json::json!(2), 0, Duration::from_secs(60)).await.unwrap();
    assert_eq!(sessions.purge_expired().await.unwrap(), 1);
    assert_eq!(sessions.load("kept").await.unwrap().unwrap().version, 1);
    db.drop_schema().await.unwrap();
}

/// A follower reading with `after_id` never skips an entry: an append whose id was taken
/// while another instance's append (with a smaller id) was still uncommitted would be read
/// first, and the follower's cursor would pass the smaller id before it became visible.
#[tokio::test(flavor = "multi_thread")]
async fn a_follower_never_skips_an_entry_committed_late() {
    use wemp_store::{DeliveryRecord, LogQuery, MessageLog};
    let Some((a, _b)) = connect("follow").await else { return };
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let (mut other, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let log = a.message_log();
    let entry = |openid: &str| {
        let mut e = DeliveryRecord::default();
        e.appid = Some("wx1".into());
        e.openid = Some(openid.into());
        e
    };

    // Another instance's append: its id is taken, its commit is slow.
    let slow = other.transaction().await.unwrap();
    slow.execute(
        &format!(
            "INSERT INTO \"{}\".message_log (received_at_ms, appid, openid, dedup_key, msg_type, mode, dedup, \
             summary, raw_xml, outcome, latency_ms) VALUES (0, 'wx1', 'slow', '', '', '', '', '', '', '', 0)",
            a.schema()
        ),
        &[],
    )
    .await
    .unwrap();
    let fast = {
        let log = log.clone();
        tokio::spawn(async move { log.append(&[entry("fast")]).await.unwrap() })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // A follower reads now, and then again after the slow commit.
    let mut seen = Vec::new();
    let mut cursor = 0;
    let mut follow = async || {
        let rows = log.query(&LogQuery { after_id: Some(cursor), ..LogQuery::default() }).await.unwrap();
        for (id, e) in rows {
            cursor = id;
            seen.push(e.openid.unwrap_or_default());
        }
    };
    follow().await;
    slow.commit().await.unwrap();
    fast.await.unwrap();
    follow().await;
    assert_eq!(seen, ["slow", "fast"]);
    a.drop_schema().await.unwrap();
}

/// A session call gives up with a clear error when PostgreSQL takes the connection and then
/// does not answer (here: a lock held by another client), and works again once it answers.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_call_that_gets_no_answer_fails_within_the_call_timeout() {
    use std::time::{Duration, Instant};
    use wemp_store::{SessionStore, StoreError};
    let Some((a, _b)) = connect("hang").await else { return };
    let schema = a.schema().to_owned();
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let db = PostgresDatabase::connect(&url, &schema).await.unwrap().call_timeout(Duration::from_millis(300));
    let store = db.session_store();
    assert!(store.load("k").await.unwrap().is_none());

    let (mut other, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let lock = other.transaction().await.unwrap();
    lock.batch_execute(&format!("LOCK TABLE \"{schema}\".sessions IN ACCESS EXCLUSIVE MODE")).await.unwrap();
    let started = Instant::now();
    let err = store.load("k").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert!(matches!(&err, StoreError::Backend { .. }), "{err:?}");
    assert!(err.to_string().contains("session load: no answer within 300 ms"), "{err}");
    lock.rollback().await.unwrap();
    assert!(store.load("k").await.unwrap().is_none(), "answers again once the lock is gone");
    a.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn component() {
    let Some((a, b)) = connect("component").await else { return };
    suite::component(Arc::new(a.session_store()), Arc::new(b.session_store())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn token_on_sessions() {
    let Some((a, b)) = connect("token_on_sessions").await else { return };
    suite::token_store(
        Arc::new(wemp_store::SessionTokenStore::new(Arc::new(a.session_store()))),
        Arc::new(wemp_store::SessionTokenStore::new(Arc::new(b.session_store()))),
    )
    .await;
}
