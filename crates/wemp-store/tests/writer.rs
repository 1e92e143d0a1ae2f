//! `LogWriter`: bounded, non-blocking, counts what it cannot log, flushes on shutdown.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use wemp_store::memory::MemoryMessageLog;
use wemp_store::{DeliveryRecord, LogQuery, LogWriter, LogWriterConfig, MessageLog, Result, StoreError};

fn entry(n: usize) -> DeliveryRecord {
    let mut e = DeliveryRecord::default();
    e.appid = Some("wx1".to_owned());
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
    let full = async {
        while log.summaries().await.len() < 8 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), full).await.expect("a full batch waited for the linger");
    // A partial batch waits for the linger, unless someone flushes.
    assert!(writer.log(entry(8)));
    tokio::time::timeout(Duration::from_secs(5), writer.flush()).await.expect("flush waited for the linger");
    assert_eq!(log.summaries().await.len(), 9);
    assert_eq!(*log.batches.lock().unwrap(), [8, 1]);
    tokio::time::timeout(Duration::from_secs(5), writer.shutdown()).await.unwrap();
}
