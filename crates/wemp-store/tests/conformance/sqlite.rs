use std::path::PathBuf;
use std::sync::Arc;

use wemp_store::sqlite::SqliteDatabase;

use crate::suite;

/// A database file in the temp dir, removed (with its WAL files) on drop.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("wemp-store-test-{:016x}.db", rand::random::<u64>())))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Two handles with their own connections to one file, as two processes would have.
async fn two(file: &TempDb) -> (SqliteDatabase, SqliteDatabase) {
    (SqliteDatabase::open(&file.0).await.unwrap(), SqliteDatabase::open(&file.0).await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn session() {
    let file = TempDb::new();
    let (a, b) = two(&file).await;
    suite::session(Arc::new(a.session_store()), Arc::new(b.session_store())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn log() {
    let file = TempDb::new();
    let (a, b) = two(&file).await;
    suite::log(Arc::new(a.message_log()), Arc::new(b.message_log())).await;
}

#[tokio::test]
async fn in_memory() {
    let db = SqliteDatabase::open_in_memory().unwrap();
    suite::session(Arc::new(db.session_store()), Arc::new(db.session_store())).await;
    suite::log(Arc::new(db.message_log()), Arc::new(db.message_log())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn component() {
    let file = TempDb::new();
    let (a, b) = two(&file).await;
    suite::component(Arc::new(a.session_store()), Arc::new(b.session_store())).await;
    drop((a, b));
    // After a restart (a new open of the file) the state is still there.
    let reopened = SqliteDatabase::open(&file.0).await.unwrap();
    let state = wemp_store::ComponentState::new(Arc::new(reopened.session_store()), "wxcomp");
    assert_eq!(state.ticket().await.unwrap().unwrap().ticket.expose(), "ticket@@@2");
    assert_eq!(state.authorizers().await.unwrap().len(), 12);
}

/// Tokens shared through the SQLite file (`SessionTokenStore`), as two processes would.
#[tokio::test(flavor = "multi_thread")]
async fn token_on_sessions() {
    let file = TempDb::new();
    let (a, b) = two(&file).await;
    suite::token_store(
        Arc::new(wemp_store::SessionTokenStore::new(Arc::new(a.session_store()))),
        Arc::new(wemp_store::SessionTokenStore::new(Arc::new(b.session_store()))),
    )
    .await;
}
