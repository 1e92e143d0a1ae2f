//! [`LogWriter`]: message-log writes that never hold up a reply.
//!
//! Entries go into a bounded queue with `try_send`; a background task takes them out in
//! batches and appends each batch to a [`MessageLog`]. When the queue is full, or the log's
//! backend keeps failing, entries are counted as dropped (readable for metrics, and a
//! `tracing` warning at most once a second) and the caller carries on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

use crate::log::{DeliveryRecord, MessageLog};

/// Settings for a [`LogWriter`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LogWriterConfig {
    /// Entries the queue holds before new ones are dropped.
    pub capacity: usize,
    /// The most entries appended in one call.
    pub batch_size: usize,
    /// Further tries of a failed batch (so `retries + 1` appends in all) before its entries
    /// are counted as failed.
    pub retries: u32,
    /// Pause before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
    /// An append taking longer than this counts as failed (and is retried). The abandoned
    /// write may still finish: the SQLite log recognises the retried batch and does not
    /// write it twice; other backends may, so keep this well above their normal latency.
    pub write_timeout: Duration,
    /// How long a batch may wait for more entries before it is written (a flush or a
    /// full batch writes at once). Fewer, larger transactions cost the database much less
    /// per entry, and the CPU they save is the server's.
    pub linger: Duration,
}

impl Default for LogWriterConfig {
    fn default() -> Self {
        Self {
            capacity: 8192,
            batch_size: 256,
            retries: 2,
            retry_backoff: Duration::from_millis(100),
            write_timeout: Duration::from_secs(5),
            linger: Duration::from_millis(20),
        }
    }
}

impl LogWriterConfig {
    /// Sets [`capacity`](Self::capacity).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets [`batch_size`](Self::batch_size).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Sets [`retries`](Self::retries) and [`retry_backoff`](Self::retry_backoff).
    pub fn retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.retries = retries;
        self.retry_backoff = backoff;
        self
    }

    /// Sets [`linger`](Self::linger).
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Sets [`write_timeout`](Self::write_timeout).
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }
}

/// Counters of a [`LogWriter`], shared with its task; cheap to clone and read for metrics.
#[derive(Clone, Debug, Default)]
pub struct LogWriterStats(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    written: AtomicU64,
    dropped_full: AtomicU64,
    dropped_failed: AtomicU64,
    last_warn_ms: AtomicU64,
}

impl LogWriterStats {
    /// Entries appended to the log.
    pub fn written(&self) -> u64 {
        self.0.written.load(Ordering::Relaxed)
    }

    /// Entries not logged because the queue was full (or the writer had shut down).
    pub fn dropped_queue_full(&self) -> u64 {
        self.0.dropped_full.load(Ordering::Relaxed)
    }

    /// Entries not logged because the backend failed every try.
    pub fn dropped_failed(&self) -> u64 {
        self.0.dropped_failed.load(Ordering::Relaxed)
    }

    /// Every entry not logged, for whatever reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full() + self.dropped_failed()
    }

    /// Appends the counters in Prometheus text format (`wemp_log_entries_written_total`,
    /// `wemp_log_entries_dropped_total{reason="queue_full"|"write_failed"}`).
    pub fn write_prometheus(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(out, "# HELP wemp_log_entries_written_total Message-log entries written.");
        let _ = writeln!(out, "# TYPE wemp_log_entries_written_total counter");
        let _ = writeln!(out, "wemp_log_entries_written_total {}", self.written());
        let _ = writeln!(
            out,
            "# HELP wemp_log_entries_dropped_total Message-log entries not logged (the server answered anyway)."
        );
        let _ = writeln!(out, "# TYPE wemp_log_entries_dropped_total counter");
        let _ = writeln!(
            out,
            "wemp_log_entries_dropped_total{{reason=\"queue_full\"}} {}",
            self.dropped_queue_full()
        );
        let _ = writeln!(
            out,
            "wemp_log_entries_dropped_total{{reason=\"write_failed\"}} {}",
            self.dropped_failed()
        );
    }
}

enum Command {
    Entry(Box<DeliveryRecord>),
    Flush(oneshot::Sender<()>),
    Shutdown,
}

/// A bounded queue in front of a [`MessageLog`], drained by a background task.
///
/// Dropping every clone lets the task write out what is queued and stop; call
/// [`LogWriter::shutdown`] to wait for that.
#[derive(Clone, Debug)]
pub struct LogWriter {
    tx: mpsc::Sender<Command>,
    stats: LogWriterStats,
    started: Instant,
    /// Wakes the task from its linger: a batch's worth is queued, or a flush or shutdown is.
    wake: Arc<Notify>,
    batch_size: usize,
    task: Arc<tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl LogWriter {
    /// Starts the background task writing to `log`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn(log: Arc<dyn MessageLog>, config: LogWriterConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.capacity.max(1));
        let stats = LogWriterStats::default();
        let started = Instant::now();
        let wake = Arc::new(Notify::new());
        let batch_size = config.batch_size.max(1);
        let task = tokio::spawn(run(log, rx, config, stats.clone(), started, wake.clone()));
        Self { tx, stats, started, wake, batch_size, task: Arc::new(tokio::sync::Mutex::new(Some(task))) }
    }

    /// Queues `entry` without waiting; returns whether it was queued. An entry that does not
    /// fit is counted in [`LogWriterStats::dropped_queue_full`].
    pub fn log(&self, entry: DeliveryRecord) -> bool {
        match self.tx.try_send(Command::Entry(Box::new(entry))) {
            Ok(()) => {
                // The task lingers without waking for every entry; a full batch cuts it short.
                if self.tx.max_capacity() - self.tx.capacity() >= self.batch_size {
                    self.wake.notify_one();
                }
                true
            }
            Err(e) => {
                let total = self.stats.0.dropped_full.fetch_add(1, Ordering::Relaxed) + 1;
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "queue full",
                    mpsc::error::TrySendError::Closed(_) => "writer stopped",
                };
                if warn_due(&self.stats, self.started) {
                    tracing::warn!(dropped_total = total, reason = why, "message log entry dropped");
                }
                false
            }
        }
    }

    /// The writer's counters.
    pub fn stats(&self) -> &LogWriterStats {
        &self.stats
    }

    /// Entries not logged so far (see [`LogWriterStats::dropped`]).
    pub fn dropped(&self) -> u64 {
        self.stats.dropped()
    }

    /// Waits until every entry queued before this call was written (or given up on).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Command::Flush(done)).await.is_ok() {
            self.wake.notify_one();
            let _ = wait.await;
        }
    }

    /// Writes out what is queued and stops the task, waiting for it; from then on
    /// [`LogWriter::log`] on any clone drops its entry (counted as
    /// [`dropped_queue_full`](LogWriterStats::dropped_queue_full)).
    pub async fn shutdown(&self) {
        let mut task = self.task.lock().await;
        if let Some(handle) = task.take() {
            // Fails only if the task is gone already.
            let _ = self.tx.send(Command::Shutdown).await;
            self.wake.notify_one();
            if let Err(e) = handle.await {
                tracing::warn!(error = %e, "message log writer task failed");
            }
        }
    }
}

fn warn_due(stats: &LogWriterStats, started: Instant) -> bool {
    let now = started.elapsed().as_millis() as u64 + 1;
    let last = stats.0.last_warn_ms.load(Ordering::Relaxed);
    (last == 0 || now >= last + 1000)
        && stats.0.last_warn_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
}

async fn run(
    log: Arc<dyn MessageLog>,
    mut rx: mpsc::Receiver<Command>,
    config: LogWriterConfig,
    stats: LogWriterStats,
    started: Instant,
    wake: Arc<Notify>,
) {
    let batch_size = config.batch_size.max(1);
    let mut batch = Vec::with_capacity(batch_size.min(1024));
    let mut flushes = Vec::new();
    // After `Shutdown`, `recv` yields what is still buffered, then `None`.
    while let Some(first) = rx.recv().await {
        let deadline = Instant::now() + config.linger;
        let mut next = Some(first);
        let mut closing = false;
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Entry(e) => batch.push(*e),
                Command::Flush(done) => flushes.push(done),
                Command::Shutdown => {
                    closing = true;
                    rx.close();
                }
            }
            if batch.len() >= batch_size {
                break;
            }
            next = match rx.try_recv() {
                Ok(cmd) => Some(cmd),
                // Nothing queued: linger for more unless someone waits for this batch. The
                // task sleeps instead of waiting on the queue, which would wake it for every
                // entry; senders wake it when a full batch or a flush is queued.
                Err(mpsc::error::TryRecvError::Empty) if flushes.is_empty() && !closing => {
                    linger(&mut rx, &wake, deadline).await
                }
                Err(_) => None,
            };
        }
        if !batch.is_empty() {
            let shared: Arc<[DeliveryRecord]> = std::mem::take(&mut batch).into();
            write_batch(&*log, shared, &config, &stats, started).await;
        }
        // Every entry queued before these flushes is in a batch written by now.
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// The next command queued before `deadline`, sleeping between wake-ups.
async fn linger(rx: &mut mpsc::Receiver<Command>, wake: &Notify, deadline: Instant) -> Option<Command> {
    loop {
        let woken = tokio::time::timeout_at(deadline, wake.notified()).await.is_ok();
        match rx.try_recv() {
            Ok(cmd) => return Some(cmd),
            Err(mpsc::error::TryRecvError::Empty) if woken => {}
            Err(_) => return None,
        }
    }
}

async fn write_batch(
    log: &dyn MessageLog,
    batch: Arc<[DeliveryRecord]>,
    config: &LogWriterConfig,
    stats: &LogWriterStats,
    started: Instant,
) {
    let mut backoff = config.retry_backoff;
    let mut tries = 0;
    loop {
        let error = match tokio::time::timeout(config.write_timeout, log.append_shared(batch.clone())).await {
            Ok(Ok(())) => {
                stats.0.written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("append timed out after {:?}", config.write_timeout),
        };
        if tries >= config.retries {
            let total =
                stats.0.dropped_failed.fetch_add(batch.len() as u64, Ordering::Relaxed) + batch.len() as u64;
            if warn_due(stats, started) {
                tracing::warn!(
                    entries = batch.len(),
                    dropped_failed_total = total,
                    %error,
                    "message log write failed; entries dropped"
                );
            }
            return;
        }
        tries += 1;
        tracing::debug!(%error, tries, "message log write failed; retrying");
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2);
    }
}
