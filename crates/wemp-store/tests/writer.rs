//! `LogWriter`: bounded, non-blocking, counts what it cannot log, flushes on shutdown.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use wemp_store::memory::MemoryMessageLog;
use wemp_store::{DeliveryRecord, LogQuery, LogWriter, LogWriterConfig, MessageLog, Result, StoreError};

fn entry(n: usize) -> DeliveryRecord {
    let mut e = DeliveryRecord::default();
    e.appid = Some("wx1".into());
    e.summary = Some(format!("m{n}"));
    e
}

/// A log in front of a memory log that can be held shut (appends wait) or made to fail,
/// recording each batch's size.
#[derive(Default)]
struct TestLog {
    inner: MemoryMessageLog,
    gate: Option<tokio::sync::watch::Sender<bool>>,
    failing: AtomicBool,
    failures: AtomicUsize,
    batches: Mutex<Vec<usize>>,
}

impl TestLog {
    fn gated() -> Self {
        Self { gate: Some(tokio::sync::watch::channel(false).0), ..Self::default() }
    }

    fn open(&self) {
        self.gate.as_ref().unwrap().send_replace(true);
    }

    /// Waits (at most five seconds) until the log holds `n` entries; panics with `what` if
    /// it does not.
    async fn until_holding(&self, n: usize, what: &str) {
        let written = async {
            while self.summaries().await.len() < n {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), written).await.expect(what);
    }

    async fn summaries(&self) -> Vec<String> {
        self.inner
            .query(&LogQuery::default())
            .await
            .unwrap()
            .into_iter()
            .map(|(_, e)| e.summary.unwrap_or_default())
            .collect()
    }
}

#[async_trait::async_trait]
impl MessageLog for TestLog {
    async fn append(&self, entries: &[DeliveryRecord]) -> Result<()> {
        if let Some(gate) = &self.gate {
            gate.subscribe().wait_for(|open| *open).await.unwrap();
        }
        if self.failing.load(Ordering::SeqCst) {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::backend("test", "database is down"));
        }
        self.batches.lock().unwrap().push(entries.len());
        self.inner.append(entries).await
    }

    async fn query(&self, query: &LogQuery) -> Result<Vec<(i64, DeliveryRecord)>> {
        self.inner.query(query).await
    }

    async fn delete_before(&self, received_at_ms: i64) -> Result<u64> {
        self.inner.delete_before(received_at_ms).await
    }
}

#[tokio::test]
async fn writes_everything_in_order_and_flushes() {
    let log = Arc::new(TestLog::default());
    let writer = LogWriter::spawn(log.clone(), LogWriterConfig::default().capacity(1000).batch_size(16));
    for n in 0..500 {
        assert!(writer.log(entry(n)));
    }
    writer.flush().await;
    assert_eq!(log.summaries().await, (0..500).map(|n| format!("m{n}")).collect::<Vec<_>>());
    assert!(log.batches.lock().unwrap().iter().all(|&b| (1..=16).contains(&b)));
    assert_eq!(writer.stats().written(), 500);
    assert_eq!(writer.dropped(), 0);
    writer.shutdown().await;
}

#[tokio::test]
async fn a_shared_record_is_stored_as_it_is_not_copied() {
    // The server's other observers (a live console) keep the records the writer logs: the
    // log is given the shared record, not a copy of it.
    let log = Arc::new(MemoryMessageLog::new(10));
    let writer = LogWriter::spawn(log.clone(), LogWriterConfig::default());
    let record = Arc::new(entry(1));
    assert!(writer.log_shared(record.clone()));
    writer.flush().await;
    assert_eq!(Arc::strong_count(&record), 2, "held here and by the memory log, no copy made");
    let rows = log.query(&LogQuery::default()).await.unwrap();
    assert_eq!(rows, [(1, entry(1))]);
    writer.shutdown().await;
}

#[tokio::test]
async fn full_queue_drops_and_counts_without_blocking() {
    let log = Arc::new(TestLog::gated());
    let writer = LogWriter::spawn(log.clone(), LogWriterConfig::default().capacity(4).batch_size(1));
    // The task holds at most one entry (blocked in append), the queue four more.
    let accepted: Vec<usize> = (0..20).filter(|&n| writer.log(entry(n))).collect();
    assert!((4..=5).contains(&accepted.len()), "{accepted:?}");
    assert_eq!(accepted, (0..accepted.len()).collect::<Vec<_>>());
    assert_eq!(writer.stats().dropped_queue_full(), (20 - accepted.len()) as u64);

    // Shutdown writes out what it holds.
    log.open();
    writer.shutdown().await;
    assert_eq!(log.summaries().await, accepted.iter().map(|n| format!("m{n}")).collect::<Vec<_>>());
    assert_eq!(writer.stats().written(), accepted.len() as u64);

    // After shutdown entries are dropped and counted; nothing panics.
    assert!(!writer.log(entry(99)));
    assert_eq!(writer.stats().dropped_queue_full(), (21 - accepted.len()) as u64);
    writer.flush().await;
    writer.shutdown().await;
}

#[tokio::test]
async fn failing_backend_is_retried_then_counted() {
    let log = Arc::new(TestLog { failing: AtomicBool::new(true), ..TestLog::default() });
    let config =
        LogWriterConfig::default().capacity(100).batch_size(100).retries(2, Duration::from_millis(1));
    let writer = LogWriter::spawn(log.clone(), config);
    for n in 0..10 {
        assert!(writer.log(entry(n)));
    }
    writer.flush().await;
    assert_eq!(writer.stats().dropped_failed(), 10);
    assert_eq!(writer.stats().written(), 0);
    assert_eq!(writer.dropped(), 10);
    // Each batch was tried three times.
    assert_eq!(log.failures.load(Ordering::SeqCst) % 3, 0);

    // The database comes back: the writer carries on.
    log.failing.store(false, Ordering::SeqCst);
    for n in 10..15 {
        assert!(writer.log(entry(n)));
    }
    writer.shutdown().await;
    assert_eq!(log.summaries().await, (10..15).map(|n| format!("m{n}")).collect::<Vec<_>>());
    assert_eq!(writer.stats().written(), 5);
    assert_eq!(writer.dropped(), 10);
}

#[tokio::test]
async fn slow_backend_times_out() {
    // Held shut for good: every append hangs until the write timeout.
    let log = Arc::new(TestLog::gated());
    let config = LogWriterConfig::default()
        .capacity(10)
        .retries(0, Duration::ZERO)
        .write_timeout(Duration::from_millis(20));
    let writer = LogWriter::spawn(log.clone(), config);
    assert!(writer.log(entry(0)));
    writer.shutdown().await;
    assert_eq!(writer.stats().dropped_failed(), 1);
    assert!(log.summaries().await.is_empty());
}

#[tokio::test]
async fn clones_share_queue_and_counters() {
    let log = Arc::new(TestLog::default());
    let writer = LogWriter::spawn(log.clone(), LogWriterConfig::default());
    let other = writer.clone();
    let stats = writer.stats().clone();
    assert!(writer.log(entry(0)));
    assert!(other.log(entry(1)));
    other.shutdown().await;
    assert!(!writer.log(entry(2)));
    assert_eq!((stats.written(), stats.dropped()), (2, 1));
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread")]
async fn into_sqlite() {
    let db = wemp_store::sqlite::SqliteDatabase::open_in_memory().unwrap();
    let log = Arc::new(db.message_log());
    let writer = LogWriter::spawn(log.clone(), LogWriterConfig::default().batch_size(64));
    for n in 0..300 {
        assert!(writer.log(entry(n)));
    }
    writer.shutdown().await;
    let rows = log.query(&LogQuery { appid: Some("wx1".into()), ..LogQuery::default() }).await.unwrap();
    assert_eq!(rows.len(), 300);
    assert_eq!(rows[299].1.summary.as_deref(), Some("m299"));
}

#[tokio::test]
async fn a_full_batch_or_a_flush_cuts_the_linger_short() {
    let log = Arc::new(TestLog::default());
    let config = LogWriterConfig::default().capacity(100).batch_size(8).linger(Duration::from_secs(600));
    let writer = LogWriter::spawn(log.clone(), config);
    // A full batch is written at once, without waking the writer for every entry.
    for n in 0..8 {
        assert!(writer.log(entry(n)));
    }
    log.until_holding(8, "a full batch waited for the linger").await;
    // A partial batch waits for the linger, unless someone flushes.
    assert!(writer.log(entry(8)));
    tokio::time::timeout(Duration::from_secs(5), writer.flush()).await.expect("flush waited for the linger");
    assert_eq!(log.summaries().await.len(), 9);
    assert_eq!(*log.batches.lock().unwrap(), [8, 1]);
    tokio::time::timeout(Duration::from_secs(5), writer.shutdown()).await.unwrap();
}

/// A database that fails for a while loses nothing: failed batches wait in the spool on
/// disk, newer ones queue up behind them, and all are appended in order when it answers.
#[tokio::test]
async fn a_failing_backend_spools_and_replays_in_order() {
    let dir = std::env::temp_dir().join(format!("wemp-writer-spool-{}-{}", std::process::id(), line!()));
    let _ = std::fs::remove_dir_all(&dir);
    let log = Arc::new(TestLog { failing: AtomicBool::new(true), ..TestLog::default() });
    let config = LogWriterConfig::default()
        .capacity(100)
        .batch_size(4)
        .retries(1, Duration::from_millis(1))
        .spool(wemp_store::SpoolConfig::new(&dir));
    let writer = LogWriter::spawn(log.clone(), config.clone());
    for n in 0..10 {
        assert!(writer.log(entry(n)));
    }
    writer.flush().await;
    assert_eq!((writer.stats().spooled(), writer.stats().written(), writer.dropped()), (10, 0, 0));
    assert!(writer.stats().spool_bytes() > 0);

    // Back: the spool goes first, then what came since.
    log.failing.store(false, Ordering::SeqCst);
    for n in 10..15 {
        assert!(writer.log(entry(n)));
    }
    writer.flush().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while writer.stats().written() < 15 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(log.summaries().await, (0..15).map(|n| format!("m{n}")).collect::<Vec<_>>());
    // The newer ones came before the next try of the log: they queued up in the spool too.
    assert_eq!((writer.stats().replayed(), writer.stats().spool_bytes(), writer.dropped()), (15, 0, 0));
    writer.shutdown().await;

    // What is left at shutdown is appended by the next writer on the same spool.
    log.failing.store(true, Ordering::SeqCst);
    let writer = LogWriter::spawn(log.clone(), config.clone());
    assert!(writer.log(entry(15)));
    writer.shutdown().await;
    assert_eq!(writer.stats().spooled(), 1);
    log.failing.store(false, Ordering::SeqCst);
    let writer = LogWriter::spawn(log.clone(), config);
    writer.flush().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while writer.stats().replayed() < 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    writer.shutdown().await;
    assert_eq!(log.summaries().await.last().map(String::as_str), Some("m15"));
    assert_eq!(log.summaries().await.len(), 16);

    // A full spool drops, and counts it.
    log.failing.store(true, Ordering::SeqCst);
    let config = LogWriterConfig::default()
        .retries(0, Duration::from_millis(1))
        .spool(wemp_store::SpoolConfig::new(&dir).max_bytes(10));
    let writer = LogWriter::spawn(log.clone(), config);
    assert!(writer.log(entry(16)));
    writer.shutdown().await;
    assert_eq!((writer.stats().spooled(), writer.stats().dropped_failed()), (0, 1));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An entry reaching an idle writer is written at once, however long the linger: a lone
/// request's entry is readable right after its reply. Once busy, the writer lingers again.
#[tokio::test]
async fn an_idle_writer_writes_at_once_and_lingers_when_busy() {
    let log = Arc::new(TestLog::default());
    let config = LogWriterConfig::default().capacity(100).linger(Duration::from_secs(600));
    let writer = LogWriter::spawn(log.clone(), config);
    assert!(writer.log(entry(0)));
    log.until_holding(1, "an idle writer lingered").await;
    // Right after a write the writer is busy: the next entry waits for company (or a flush).
    assert!(writer.log(entry(1)));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(log.summaries().await, ["m0"], "a busy writer wrote a lone entry without lingering");
    tokio::time::timeout(Duration::from_secs(5), writer.flush()).await.expect("flush waited for the linger");
    assert_eq!(*log.batches.lock().unwrap(), [1, 1]);
    tokio::time::timeout(Duration::from_secs(5), writer.shutdown()).await.unwrap();
}

/// A lingering batch woken by a full queue takes what is queued in one go, but never more
/// than fills it: the rest goes in the next batch, in order.
#[tokio::test]
async fn entries_taken_at_once_never_overfill_a_batch() {
    let log = Arc::new(TestLog::default());
    let config = LogWriterConfig::default().capacity(100).batch_size(16).linger(Duration::from_secs(600));
    let writer = LogWriter::spawn(log.clone(), config);
    // The first entry reaches an idle writer and is written at once; the writer is busy then.
    assert!(writer.log(entry(0)));
    log.until_holding(1, "an idle writer lingered").await;
    // The next one starts a batch that lingers; nineteen more arrive while it does (this
    // runtime has one thread: the writer runs only when the test waits).
    assert!(writer.log(entry(1)));
    tokio::time::sleep(Duration::from_millis(20)).await;
    for n in 2..21 {
        assert!(writer.log(entry(n)));
    }
    tokio::time::timeout(Duration::from_secs(5), writer.flush()).await.expect("flush waited for the linger");
    assert_eq!(*log.batches.lock().unwrap(), [1, 16, 4]);
    assert_eq!(log.summaries().await, (0..21).map(|n| format!("m{n}")).collect::<Vec<_>>());
    tokio::time::timeout(Duration::from_secs(5), writer.shutdown()).await.unwrap();
}

/// With the defaults, a busy writer's batches are cut by the linger, not by the count, up to
/// ~100 000 entries a second: each batch costs the writer a fixed amount (its transaction,
/// the wake-ups), so the batches a busy server writes are as large as the linger allows.
/// (Time is paused: the stream's rate is exact.)
#[tokio::test(start_paused = true)]
async fn default_batches_are_cut_by_the_linger_under_a_steady_stream() {
    let log = Arc::new(TestLog::default());
    let config = LogWriterConfig::default();
    let writer = LogWriter::spawn(log.clone(), config.clone());
    // Written at once (the writer was idle); it is busy from then on.
    assert!(writer.log(entry(0)));
    log.until_holding(1, "an idle writer lingered").await;
    // 90 000 entries a second for three lingers: nine every 100 µs.
    let step = Duration::from_micros(100);
    let steps = 3 * config.linger.as_micros() / step.as_micros();
    let mut n = 1;
    for _ in 0..steps {
        for _ in 0..9 {
            assert!(writer.log(entry(n)), "entry {n} dropped");
            n += 1;
        }
        tokio::time::advance(step).await;
    }
    writer.flush().await;
    let batches = log.batches.lock().unwrap().clone();
    let per_linger = 9 * (config.linger.as_micros() / step.as_micros()) as usize;
    // The first after the idle one is whole: cut by its linger, under the count (tokio's
    // timers tick in milliseconds: a linger may run up to one more, 90 entries here).
    assert!(
        per_linger + 108 < config.batch_size,
        "{per_linger} entries a linger fill a batch of {}",
        config.batch_size
    );
    assert!(
        batches[1] >= per_linger - 18 && batches[1] <= per_linger + 108,
        "a busy writer's batch was {} entries, not the ~{per_linger} of a linger: {batches:?}",
        batches[1]
    );
    assert_eq!(batches.iter().sum::<usize>(), n);
    writer.shutdown().await;
}
