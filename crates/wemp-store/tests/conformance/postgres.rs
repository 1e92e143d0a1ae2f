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
