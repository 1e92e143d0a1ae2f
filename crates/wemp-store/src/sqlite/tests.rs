use super::log::{LOG_COLUMNS, MAX_SEGMENT};
use super::*;
use crate::log::{DeliveryRecord, LogQuery, MessageLog as _};
use crate::session::SessionStore as _;

struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

fn temp_file(name: &str) -> TempFile {
    TempFile(std::env::temp_dir().join(format!("wemp-sqlite-{name}-{}.db", std::process::id())))
}

#[tokio::test]
async fn probe_reads_the_version_and_writes_nothing() {
    let file = temp_file("probe w?th #odd %name");
    let exists = |suffix: &str| {
        let mut p = file.0.clone().into_os_string();
        p.push(suffix);
        Path::new(&p).exists()
    };
    assert!(probe(&file.0).await.is_err(), "no file: an error, and none created");
    assert!(!exists(""));
    // A server has the log open: its WAL is read.
    let db = SqliteDatabase::open(&file.0).await.unwrap();
    assert_eq!(probe(&file.0).await.unwrap(), SchemaState::Version(MIGRATIONS.len()));
    drop(db);
    // Closed: no WAL left, and probing leaves none behind.
    assert!(!exists("-wal") && !exists("-shm"));
    let before = std::fs::read(&file.0).unwrap();
    assert_eq!(probe(&file.0).await.unwrap(), SchemaState::Version(MIGRATIONS.len()));
    assert!(!exists("-wal") && !exists("-shm"), "probe created WAL files");
    assert_eq!(std::fs::read(&file.0).unwrap(), before);
    std::fs::write(&file.0, b"").unwrap();
    assert_eq!(probe(&file.0).await.unwrap(), SchemaState::Missing);
    assert_eq!(std::fs::read(&file.0).unwrap(), b"");
}

/// A write that outlives the writer's timeout goes on in its blocking thread; the
/// writer's retries of that batch must not write it a second (and third) time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_retried_after_a_timed_out_write_is_written_once() {
    use crate::{LogWriter, LogWriterConfig, MessageLog as _};
    let file = temp_file("retried");
    let db = SqliteDatabase::open(&file.0).await.unwrap();
    // Another process holds the write lock for a while: every try of the batch waits.
    let (locked, released) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let path = file.0.clone();
    let holder = std::thread::spawn(move || {
        let c = Connection::open(path).unwrap();
        c.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked.0.send(()).unwrap();
        released.1.recv().unwrap();
        c.execute_batch("ROLLBACK").unwrap();
    });
    locked.1.recv().unwrap();
    let log = Arc::new(db.message_log());
    let config = LogWriterConfig::default()
        .write_timeout(Duration::from_millis(50))
        .retries(10, Duration::from_millis(20))
        .linger(Duration::ZERO);
    let writer = LogWriter::spawn(log.clone(), config);
    for n in 0..3 {
        assert!(writer.log(at(n, "o1")));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    released.0.send(()).unwrap();
    holder.join().unwrap();
    writer.flush().await;
    let all = log.query(&LogQuery::default()).await.unwrap();
    assert_eq!(all.len(), 3, "{:?}", all.iter().map(|(id, _)| id).collect::<Vec<_>>());
    assert_eq!((writer.stats().written(), writer.stats().dropped()), (3, 0));
    // Another batch with the same entries is another append.
    log.append(&[at(0, "o1")]).await.unwrap();
    assert_eq!(log.query(&LogQuery::default()).await.unwrap().len(), 4);
}

#[tokio::test]
async fn reopen_keeps_data_and_schema() {
    let file = temp_file("reopen");
    let log = SqliteMessageLog::open(&file.0).await.unwrap();
    let mut entry = DeliveryRecord::new(0, 0);
    entry.appid = Some("wx1".into());
    entry.msg_id = Some(u64::MAX);
    log.append(std::slice::from_ref(&entry)).await.unwrap();
    drop(log);

    let db = SqliteDatabase::open(&file.0).await.unwrap();
    let rows = db.message_log().query(&LogQuery::default()).await.unwrap();
    assert_eq!(rows, [(1, entry)]);
    let (mode, version) = db
        .call(|c| {
            let mode: String = c.pragma_query_value(None, "journal_mode", |r| r.get(0)).map_err(sql_err)?;
            let version: usize = c.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(sql_err)?;
            Ok((mode, version))
        })
        .await
        .unwrap();
    assert_eq!((mode.as_str(), version), ("wal", MIGRATIONS.len()));
}

#[tokio::test]
async fn migrates_a_version_1_file() {
    let file = temp_file("v1");
    {
        let conn = Connection::open(&file.0).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO message_log (received_at_ms, appid, openid, dedup_key, msg_type, mode, dedup, \
             summary, raw_xml, outcome, latency_ms) VALUES (5, 'wx1', 'o1', 'k', 'text', 'plain', 'new', \
             's', '<xml/>', 'answered', 1)",
            [],
        )
        .unwrap();
    }
    let db = SqliteDatabase::open(&file.0).await.unwrap();
    let query = LogQuery { openid: Some("o1".into()), ..LogQuery::default() };
    let rows = db.message_log().query(&query).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1.raw_xml.as_deref(), Some("<xml/>"));
    let indexes: Vec<String> = db
        .call(|c| {
            let mut stmt = c
                .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'message_log'")
                .map_err(sql_err)?;
            let names = stmt.query_map([], |r| r.get(0)).map_err(sql_err)?;
            names.collect::<Result<_, _>>().map_err(sql_err)
        })
        .await
        .unwrap();
    assert_eq!(indexes, ["message_log_openid"]);
}

#[tokio::test]
async fn refuses_a_newer_schema() {
    let file = temp_file("newer");
    let db = SqliteDatabase::open(&file.0).await.unwrap();
    db.call(|c| c.pragma_update(None, "user_version", MIGRATIONS.len() + 1).map_err(sql_err)).await.unwrap();
    drop(db);
    let err = SqliteDatabase::open(&file.0).await.unwrap_err();
    assert!(err.to_string().contains("newer than this wemp"), "{err}");
}

#[tokio::test]
async fn delete_before_and_purge() {
    let db = SqliteDatabase::open_in_memory().unwrap();
    let log = db.message_log();
    let at = |ms| DeliveryRecord { received_at_ms: ms, ..DeliveryRecord::default() };
    log.append(&[at(1), at(2), at(3)]).await.unwrap();
    assert_eq!(log.delete_before(3).await.unwrap(), 2);
    assert_eq!(log.query(&LogQuery::default()).await.unwrap(), [(3, at(3))]);

    let sessions = db.session_store();
    sessions.save("gone", &serde_json::json!(1), 0, Duration::ZERO).await.unwrap();
    sessions.save("kept", &serde_json::json!(2), 0, Duration::from_secs(60)).await.unwrap();
    assert_eq!(sessions.purge_expired().await.unwrap(), 1);
    assert_eq!(sessions.load("kept").await.unwrap().unwrap().version, 1);
}

fn at(ms: i64, openid: &str) -> DeliveryRecord {
    let mut e = DeliveryRecord::new(0, ms);
    e.appid = Some("wx1".into());
    e.openid = Some(openid.into());
    e.msg_type = Some(if ms % 2 == 0 { "text" } else { "event" }.into());
    e.raw_xml = Some(format!("<xml><N>{ms}</N></xml>").into());
    e.reply_xml = (ms % 3 == 0).then(|| "success".into());
    e.mode = Some(wemp_proto::Mode::Plain);
    e.dedup = Some(crate::log::DedupOutcome::New);
    e.status = 200;
    e
}

async fn all(log: &SqliteMessageLog) -> Vec<(i64, DeliveryRecord)> {
    log.query(&LogQuery::default()).await.unwrap()
}

async fn segments(db: &SqliteDatabase) -> i64 {
    db.call(|c| c.query_row("SELECT COUNT(*) FROM message_log_segments", [], |r| r.get(0)).map_err(sql_err))
        .await
        .unwrap()
}

/// `message_log_ids.next_id`: the floor of the ids appends hand out.
async fn floor(db: &SqliteDatabase) -> i64 {
    db.call(|c| c.query_row("SELECT next_id FROM message_log_ids", [], |r| r.get(0)).map_err(sql_err))
        .await
        .unwrap()
}

#[tokio::test]
async fn one_segment_per_batch_and_ids_grow_across_reopen() {
    let file = temp_file("segments");
    let db = SqliteDatabase::open(&file.0).await.unwrap();
    let log = db.message_log();
    let first: Vec<DeliveryRecord> = (0..300).map(|n| at(n, "o1")).collect();
    log.append(&first).await.unwrap();
    log.append(&[at(300, "o2")]).await.unwrap();
    assert_eq!(segments(&db).await, 2);
    drop((log, db));

    let db = SqliteDatabase::open(&file.0).await.unwrap();
    let log = db.message_log();
    log.append(&[at(301, "o1"), at(302, "o2")]).await.unwrap();
    let rows = all(&log).await;
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), (1..=303).collect::<Vec<_>>());
    assert_eq!(rows.iter().map(|r| r.1.received_at_ms).collect::<Vec<_>>(), (0..303).collect::<Vec<_>>());
    assert_eq!(rows[5].1, at(5, "o1"));

    // Ids are never reused, not even after everything is deleted.
    assert_eq!(log.delete_before(i64::MAX).await.unwrap(), 303);
    assert_eq!(segments(&db).await, 0);
    log.append(&[at(400, "o1")]).await.unwrap();
    assert_eq!(all(&log).await, [(304, at(400, "o1"))]);
}

#[tokio::test]
async fn filters_and_paging_across_segments() {
    let db = SqliteDatabase::open_in_memory().unwrap();
    let log = db.message_log();
    for batch in 0..5 {
        let entries: Vec<DeliveryRecord> =
            (0..10).map(|n| at(batch * 10 + n, if n % 3 == 0 { "o3" } else { "ox" })).collect();
        log.append(&entries).await.unwrap();
    }
    let expect = |q: &LogQuery| -> Vec<i64> {
        let all: Vec<(i64, DeliveryRecord)> =
            (0..50).map(|n| (n + 1, at(n, if n % 10 % 3 == 0 { "o3" } else { "ox" }))).collect();
        let hits = all.iter().filter(|(id, e)| q.matches(*id, e)).map(|r| r.0);
        hits.take(q.limit.unwrap_or(usize::MAX)).collect()
    };
    let queries = [
        LogQuery { openid: Some("o3".into()), ..LogQuery::default() },
        LogQuery { msg_type: Some("event".into()), since_ms: Some(17), ..LogQuery::default() },
        LogQuery { since_ms: Some(35), limit: Some(7), ..LogQuery::default() },
        LogQuery { after_id: Some(9), limit: Some(3), ..LogQuery::default() },
        LogQuery { after_id: Some(10), openid: Some("o3".into()), ..LogQuery::default() },
        LogQuery { appid: Some("wx2".into()), ..LogQuery::default() },
        LogQuery { after_id: Some(50), ..LogQuery::default() },
        LogQuery { limit: Some(0), ..LogQuery::default() },
    ];
    for q in &queries {
        let got: Vec<i64> = log.query(q).await.unwrap().into_iter().map(|r| r.0).collect();
        assert_eq!(got, expect(q), "{q:?}");
    }
    // Paging with after_id visits every entry once.
    let (mut seen, mut page) = (Vec::new(), LogQuery { limit: Some(4), ..LogQuery::default() });
    loop {
        let rows = log.query(&page).await.unwrap();
        let Some(last) = rows.last() else { break };
        page.after_id = Some(last.0);
        seen.extend(rows.into_iter().map(|r| r.0));
    }
    assert_eq!(seen, (1..=50).collect::<Vec<_>>());
}

#[tokio::test]
async fn large_appends_split_and_seek_by_id() {
    let db = SqliteDatabase::open_in_memory().unwrap();
    let log = db.message_log();
    let n = MAX_SEGMENT * 2 + 5;
    let entries: Vec<DeliveryRecord> = (0..n as i64).map(|i| at(i, "o")).collect();
    log.append(&entries).await.unwrap();
    assert_eq!(segments(&db).await, 3);
    for after in [0, 1, MAX_SEGMENT as i64 - 1, MAX_SEGMENT as i64, 2 * MAX_SEGMENT as i64 + 3] {
        let q = LogQuery { after_id: Some(after), limit: Some(2), ..LogQuery::default() };
        let ids: Vec<i64> = log.query(&q).await.unwrap().into_iter().map(|r| r.0).collect();
        assert_eq!(ids, [after + 1, after + 2]);
    }
    assert_eq!(all(&log).await.len(), n);
}

#[tokio::test]
async fn delete_before_rewrites_a_straddling_segment() {
    let db = SqliteDatabase::open_in_memory().unwrap();
    let log = db.message_log();
    log.append(&[at(10, "a"), at(20, "b")]).await.unwrap(); // ids 1, 2
    // Received times within a batch need not be in order.
    log.append(&[at(35, "c"), at(30, "d"), at(40, "e"), at(31, "f")]).await.unwrap(); // ids 3..=6
    assert_eq!(log.delete_before(32).await.unwrap(), 4);
    assert_eq!(all(&log).await, [(3, at(35, "c")), (5, at(40, "e"))]);
    assert_eq!(segments(&db).await, 1);
    let q = LogQuery { after_id: Some(3), ..LogQuery::default() };
    assert_eq!(log.query(&q).await.unwrap(), [(5, at(40, "e"))]);
    let q = LogQuery { since_ms: Some(36), ..LogQuery::default() };
    assert_eq!(log.query(&q).await.unwrap(), [(5, at(40, "e"))]);
    assert_eq!(log.delete_before(32).await.unwrap(), 0);
    log.append(&[at(50, "g")]).await.unwrap();
    assert_eq!(all(&log).await.last().unwrap().0, 7);
}

/// Appends do not write `message_log_ids` (schema 4): the next id follows the newest
/// segment, and the floor there counts only where it is larger — as a schema-3 file leaves
/// it after its newest entries were deleted.
#[tokio::test]
async fn ids_follow_the_newest_segment_or_the_floor() {
    let file = temp_file("floor");
    {
        let db = SqliteDatabase::open(&file.0).await.unwrap();
        let log = db.message_log();
        log.append(&[at(1, "a"), at(2, "b")]).await.unwrap(); // ids 1, 2
        log.append(&[at(3, "c")]).await.unwrap(); // id 3
        assert_eq!(floor(&db).await, 1, "an append wrote the floor");
        // As schema 3 left a file whose newest segment was deleted after the counter said 9.
        db.call(|c| {
            c.execute_batch(
                "DELETE FROM message_log_segments WHERE first_id = 3; \
                 UPDATE message_log_ids SET next_id = 9; PRAGMA user_version = 3;",
            )
            .map_err(sql_err)
        })
        .await
        .unwrap();
    }
    let db = SqliteDatabase::open(&file.0).await.unwrap();
    let log = db.message_log();
    log.append(&[at(4, "d"), at(5, "e")]).await.unwrap();
    log.append(&[at(6, "f")]).await.unwrap();
    let ids: Vec<i64> = all(&log).await.iter().map(|r| r.0).collect();
    assert_eq!(ids, [1, 2, 9, 10, 11]);
    assert_eq!(floor(&db).await, 9);
    // A deletion raises the floor to the next id, whatever it deletes.
    assert_eq!(log.delete_before(6).await.unwrap(), 4);
    assert_eq!(floor(&db).await, 12);
}

/// Entries whose strings repeat (written once in the segment, referred to by each entry):
/// deleting the first of them, then all but the last, leaves the others as they were.
#[tokio::test]
async fn delete_before_keeps_the_strings_kept_entries_share() {
    use wemp_proto::admission::{Check, CheckKind};
    let entry = |ms: i64| {
        let mut e = at(ms, "o1");
        e.msg_id = Some(ms as u64);
        e.dedup_key = Some(format!("wx1:msg:o1:{ms}").into());
        e.handler = Some("echo".into());
        e.summary = Some("hello".into());
        e.headers = crate::log::RequestHeaders::from_pairs([("host", &b"127.0.0.1"[..])]);
        e.checks = vec![
            Check { kind: CheckKind::Signature, passed: true, note: "matches".into() },
            Check { kind: CheckKind::Timestamp, passed: true, note: format!("{} s", ms / 3).into() },
        ];
        e
    };
    let db = SqliteDatabase::open_in_memory().unwrap();
    let log = db.message_log();
    let entries: Vec<DeliveryRecord> = (10..20).map(entry).collect();
    log.append(&entries).await.unwrap(); // ids 1..=10
    let from = |ms: i64| entries.iter().enumerate().skip_while(move |(_, e)| e.received_at_ms < ms);
    let want = |ms: i64| -> Vec<(i64, DeliveryRecord)> {
        from(ms).map(|(i, e)| (i as i64 + 1, e.clone())).collect()
    };
    assert_eq!(log.delete_before(14).await.unwrap(), 4);
    assert_eq!(all(&log).await, want(14));
    assert_eq!(log.delete_before(19).await.unwrap(), 5);
    assert_eq!(all(&log).await, want(19));
    assert_eq!(segments(&db).await, 1);
}

#[tokio::test]
async fn migrates_a_version_2_file_keeping_rows_and_ids() {
    let file = temp_file("v2");
    let old: Vec<DeliveryRecord> = (0..5).map(|n| at(n, if n % 2 == 0 { "o1" } else { "o2" })).collect();
    {
        // A file as wemp with schema version 2 left it, the last rows deleted.
        let db = SqliteDatabase::open(&file.0).await.unwrap();
        drop(db);
        let conn = Connection::open(&file.0).unwrap();
        conn.execute_batch(
            "DROP TABLE message_log_segments; DROP TABLE message_log_ids; PRAGMA user_version = 2;",
        )
        .unwrap();
        let cols = LOG_COLUMNS;
        for (n, e) in old.iter().chain(&old[..2]).enumerate() {
            conn.execute(
                &format!(
                    "INSERT INTO message_log ({cols}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
                ),
                rusqlite::params![
                    if n < 5 { e.received_at_ms } else { 1_000 },
                    e.appid,
                    e.openid,
                    e.msg_id.map(|m| m as i64),
                    e.dedup_key.as_deref().unwrap_or_default(),
                    e.msg_type,
                    e.event,
                    e.mode.map_or("", wemp_proto::Mode::as_str),
                    e.dedup.map_or("", crate::log::DedupOutcome::as_str),
                    e.summary.as_deref().unwrap_or_default(),
                    e.raw_xml.as_deref().unwrap_or_default(),
                    e.reply_xml,
                    "sent",
                    e.latency_ms() as i64,
                    e.error
                ],
            )
            .unwrap();
        }
        conn.execute("DELETE FROM message_log WHERE received_at_ms = 1000", []).unwrap();
    }
    let db = SqliteDatabase::open(&file.0).await.unwrap();
    let log = db.message_log();
    let version: usize =
        db.call(|c| c.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(sql_err)).await.unwrap();
    assert_eq!(version, MIGRATIONS.len());
    assert_eq!(all(&log).await, old.iter().cloned().zip(1..).map(|(e, id)| (id, e)).collect::<Vec<_>>());

    // New entries follow the largest id the old table ever issued (7), not its last row.
    log.append(&[at(10, "o1"), at(11, "o2")]).await.unwrap();
    let rows = all(&log).await;
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 8, 9]);
    let q = LogQuery { openid: Some("o1".into()), ..LogQuery::default() };
    assert_eq!(log.query(&q).await.unwrap().iter().map(|r| r.0).collect::<Vec<_>>(), [1, 3, 5, 8]);
    let q = LogQuery { after_id: Some(4), limit: Some(2), ..LogQuery::default() };
    assert_eq!(log.query(&q).await.unwrap().iter().map(|r| r.0).collect::<Vec<_>>(), [5, 8]);
    let q = LogQuery { limit: Some(5), ..LogQuery::default() };
    assert_eq!(log.query(&q).await.unwrap().len(), 5);

    // delete_before reaches both the old rows and the segments.
    assert_eq!(log.delete_before(11).await.unwrap(), 6);
    assert_eq!(all(&log).await, [(9, at(11, "o2"))]);
}
