//! [`LogWriter`]: message-log writes that never hold up a reply.
//!
//! Entries go into a bounded queue with `try_send`; a background task takes them out in
//! batches and appends each batch to a [`MessageLog`]. A batch the backend keeps failing
//! goes to the spool ([`LogWriterConfig::spool`]): files on local disk, appended to the log,
//! oldest first, when it answers again (while any wait, newer batches queue up behind them,
//! so the log keeps its order). When the queue is full, or a failed batch has nowhere to go
//! (no spool, or the spool is full), entries are counted as dropped (readable for metrics,
//! and a `tracing` warning at most once a second) and the caller carries on.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

use crate::log::{DeliveryRecord, MessageLog};
use crate::spool::Spool;

/// Settings for a [`LogWriter`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LogWriterConfig {
    /// Entries the queue holds before new ones are dropped.
    pub capacity: usize,
    /// The most entries appended in one call (default 2048: with [`linger`](Self::linger)'s
    /// 20 ms, a batch is cut by the time, not the count, below ~100 000 entries a second).
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
    /// per entry, and the CPU they save is the server's. It is also most of what a
    /// `kill -9` loses: the entries waiting for their batch. Default 20 ms: each batch
    /// costs the writer's thread a fixed ~0.1 ms of CPU (its transaction, the segment's
    /// string table, the wake-ups of the writer's task and the blocking thread), which a
    /// busy server pays per entry: ~0.5 µs at 256 entries a batch, ~0.15 µs at 800.
    ///
    /// The writer lingers only while it is busy — when the previous batch was written less
    /// than `linger` before this batch's first entry arrived. An entry arriving at an idle
    /// writer is written at once (with whatever else is queued already), so the entry of a
    /// lone request is readable as soon as its reply is out, while a steady stream still
    /// goes in batches: at a rate that keeps the writer busy every batch lingers.
    pub linger: Duration,
    /// Where batches go when the backend fails them every try (none: they are dropped).
    pub spool: Option<SpoolConfig>,
}

/// The spool of a [`LogWriter`]: a directory on local disk holding the batches the log
/// could not take (a database restarting, a network cut), at most `max_bytes` of them.
/// Whatever waits there is appended to the log when it answers again — also by the next
/// process started with the same directory.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpoolConfig {
    /// The directory (created when first needed).
    pub dir: PathBuf,
    /// The most bytes of spooled batches (JSON); a batch that does not fit is dropped.
    pub max_bytes: u64,
}

impl SpoolConfig {
    /// The default [`max_bytes`](Self::max_bytes): 256 MiB.
    pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;

    /// A spool in `dir` of at most [`Self::DEFAULT_MAX_BYTES`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), max_bytes: Self::DEFAULT_MAX_BYTES }
    }

    /// Sets [`max_bytes`](Self::max_bytes).
    #[must_use]
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }
}

impl Default for LogWriterConfig {
    fn default() -> Self {
        Self {
            capacity: 8192,
            batch_size: 2048,
            retries: 2,
            retry_backoff: Duration::from_millis(100),
            write_timeout: Duration::from_secs(5),
            linger: Duration::from_millis(20),
            spool: None,
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

    /// Sets [`spool`](Self::spool).
    pub fn spool(mut self, spool: SpoolConfig) -> Self {
        self.spool = Some(spool);
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
    spooled: AtomicU64,
    replayed: AtomicU64,
    spool_bytes: AtomicU64,
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

    /// Entries the log failed, kept in the spool (replayed ones included).
    pub fn spooled(&self) -> u64 {
        self.0.spooled.load(Ordering::Relaxed)
    }

    /// Spooled entries appended to the log since (also counted in [`written`](Self::written)).
    pub fn replayed(&self) -> u64 {
        self.0.replayed.load(Ordering::Relaxed)
    }

    /// Bytes waiting in the spool now.
    pub fn spool_bytes(&self) -> u64 {
        self.0.spool_bytes.load(Ordering::Relaxed)
    }

    /// Appends the counters in Prometheus text format (`wemp_log_entries_written_total`,
    /// `wemp_log_entries_dropped_total{reason="queue_full"|"write_failed"}`,
    /// `wemp_log_entries_spooled_total`, `wemp_log_entries_replayed_total`,
    /// `wemp_log_spool_bytes`).
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
        let _ = writeln!(
            out,
            "# HELP wemp_log_entries_spooled_total Message-log entries the log failed, kept in the spool on disk."
        );
        let _ = writeln!(out, "# TYPE wemp_log_entries_spooled_total counter");
        let _ = writeln!(out, "wemp_log_entries_spooled_total {}", self.spooled());
        let _ = writeln!(
            out,
            "# HELP wemp_log_entries_replayed_total Spooled message-log entries appended to the log since."
        );
        let _ = writeln!(out, "# TYPE wemp_log_entries_replayed_total counter");
        let _ = writeln!(out, "wemp_log_entries_replayed_total {}", self.replayed());
        let _ =
            writeln!(out, "# HELP wemp_log_spool_bytes Bytes of message-log entries waiting in the spool.");
        let _ = writeln!(out, "# TYPE wemp_log_spool_bytes gauge");
        let _ = writeln!(out, "wemp_log_spool_bytes {}", self.spool_bytes());
    }
}

/// A batch as the task hands it to the log: shared (a retry is the same batch), of records
/// shared with the server's other observers.
type Batch = Arc<[Arc<DeliveryRecord>]>;

enum Command {
    /// Shared with whoever else holds the record (the server's other observers): the log
    /// stores it from the shared record, without a copy.
    Entry(Arc<DeliveryRecord>),
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
        self.log_shared(Arc::new(entry))
    }

    /// [`log`](Self::log) for a record others hold too: queued and stored as it is, never
    /// copied.
    pub fn log_shared(&self, entry: Arc<DeliveryRecord>) -> bool {
        match self.tx.try_send(Command::Entry(entry)) {
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
    // Commands as the queue gives them, many at a time (one take a batch rather than one a
    // record: the queue's permits go back in one step).
    let mut taken = Vec::with_capacity(batch_size.min(1024));
    let mut flushes = Vec::new();
    let mut spool = config.spool.as_ref().map(|s| Spooling::new(Spool::open(&s.dir, s.max_bytes), &stats));
    // When the last batch was written: the writer lingers only while that is recent.
    let mut last_write: Option<Instant> = None;
    // After `Shutdown`, `recv_many` yields what is still buffered, then nothing.
    loop {
        // While batches wait in the spool, try the log again now and then.
        let replay_at = spool.as_ref().filter(|s| !s.spool.is_empty()).map(|s| s.retry_at);
        let got = match replay_at {
            None => rx.recv_many(&mut taken, batch_size).await,
            Some(at) => tokio::select! {
                biased;
                got = rx.recv_many(&mut taken, batch_size) => got,
                () = tokio::time::sleep_until(at) => {
                    if let Some(s) = spool.as_mut() {
                        s.replay(&*log, &config, &stats).await;
                    }
                    continue;
                }
            },
        };
        if got == 0 {
            break;
        }
        let now = Instant::now();
        let busy = last_write.is_some_and(|at| now.duration_since(at) < config.linger);
        // Idle: no lingering, the batch is what is queued now.
        let deadline = if busy { now + config.linger } else { now };
        let mut closing = false;
        loop {
            for cmd in taken.drain(..) {
                match cmd {
                    Command::Entry(e) => batch.push(e),
                    Command::Flush(done) => flushes.push(done),
                    Command::Shutdown => {
                        closing = true;
                        rx.close();
                    }
                }
            }
            if batch.len() >= batch_size {
                break;
            }
            match take_queued(&mut rx, &mut taken, batch_size - batch.len()).await {
                Queued::Taken => {}
                // Nothing queued: linger for more unless someone waits for this batch. The
                // task sleeps instead of waiting on the queue, which would wake it for every
                // entry; senders wake it when a full batch or a flush is queued.
                Queued::Empty if flushes.is_empty() && !closing => {
                    if !linger(&mut rx, &mut taken, &wake, deadline, batch_size - batch.len()).await {
                        break;
                    }
                }
                Queued::Empty | Queued::Closed => break,
            }
        }
        if !batch.is_empty() {
            // Moved out, the vector keeps its room for the next batch.
            let shared: Batch = batch.drain(..).collect();
            let shared = match spool.as_mut() {
                // Older batches wait in the spool: this one goes behind them, unless the
                // log takes them all now.
                Some(s) if !s.spool.is_empty() => {
                    if Instant::now() >= s.retry_at {
                        s.replay(&*log, &config, &stats).await;
                    }
                    if s.spool.is_empty() {
                        Some(shared)
                    } else {
                        s.keep(shared, "older entries wait", &stats, started)
                    }
                }
                _ => Some(shared),
            };
            if let Some(shared) = shared
                && let Err((failed, error)) = write_batch(&*log, shared, &config, &stats).await
            {
                let left = match spool.as_mut() {
                    Some(s) => s.keep(failed, &error, &stats, started),
                    None => Some(failed),
                };
                if let Some(lost) = left {
                    drop_failed(&lost, &error, &stats, started);
                }
            }
            last_write = Some(Instant::now());
        }
        // Every entry queued before these flushes is in a batch written (or spooled) by now.
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
    if let Some(s) = spool.as_mut()
        && !s.spool.is_empty()
    {
        s.replay(&*log, &config, &stats).await;
        if !s.spool.is_empty() {
            tracing::warn!(
                spool = %s.spool.dir().display(),
                bytes = s.spool.bytes(),
                "message log entries remain in the spool; the next start with this spool appends them"
            );
        }
    }
}

/// The spool, and when to try the log again.
struct Spooling {
    spool: Spool,
    retry_at: Instant,
    backoff: Duration,
}

/// The first pause before the log is tried again after a failed replay, doubled up to
/// [`REPLAY_BACKOFF_MAX`].
const REPLAY_BACKOFF: Duration = Duration::from_millis(250);
const REPLAY_BACKOFF_MAX: Duration = Duration::from_secs(2);

impl Spooling {
    fn new(spool: Spool, stats: &LogWriterStats) -> Self {
        stats.0.spool_bytes.store(spool.bytes(), Ordering::Relaxed);
        if !spool.is_empty() {
            tracing::info!(
                spool = %spool.dir().display(),
                bytes = spool.bytes(),
                "message log entries wait in the spool from an earlier run; appending them"
            );
        }
        Self { spool, retry_at: Instant::now(), backoff: REPLAY_BACKOFF }
    }

    /// Spools a failed batch; gives it back when it has nowhere to go.
    fn keep(&mut self, batch: Batch, why: &str, stats: &LogWriterStats, started: Instant) -> Option<Batch> {
        let first = self.spool.is_empty();
        match self.spool.push(&batch) {
            Ok(()) => {
                stats.0.spooled.fetch_add(batch.len() as u64, Ordering::Relaxed);
                stats.0.spool_bytes.store(self.spool.bytes(), Ordering::Relaxed);
                if first {
                    self.retry_at = Instant::now() + self.backoff;
                    if warn_due(stats, started) {
                        tracing::warn!(
                            entries = batch.len(),
                            spool = %self.spool.dir().display(),
                            error = %why,
                            "message log write failed; entries spooled, appended when the log answers again"
                        );
                    }
                }
                None
            }
            Err(e) => {
                if warn_due(stats, started) {
                    tracing::warn!(spool = %self.spool.dir().display(), error = %e, "cannot spool message log entries");
                }
                Some(batch)
            }
        }
    }

    /// Appends spooled batches to the log, oldest first, until none is left or one fails.
    async fn replay(&mut self, log: &dyn MessageLog, config: &LogWriterConfig, stats: &LogWriterStats) {
        let mut replayed = 0u64;
        while let Some(claimed) = self.spool.claim_front() {
            let n = claimed.batch.len() as u64;
            match tokio::time::timeout(config.write_timeout, log.append_shared(claimed.batch.clone())).await {
                Ok(Ok(())) => {
                    self.spool.done(claimed);
                    stats.0.written.fetch_add(n, Ordering::Relaxed);
                    stats.0.replayed.fetch_add(n, Ordering::Relaxed);
                    replayed += n;
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "message log still failing; the spool waits");
                    self.spool.release(claimed);
                    break;
                }
                Err(_) => {
                    tracing::debug!("message log still not answering; the spool waits");
                    self.spool.release(claimed);
                    break;
                }
            }
        }
        stats.0.spool_bytes.store(self.spool.bytes(), Ordering::Relaxed);
        if self.spool.is_empty() {
            self.backoff = REPLAY_BACKOFF;
            if replayed > 0 {
                tracing::info!(entries = replayed, "message log answers again; spooled entries appended");
            }
        } else {
            self.retry_at = Instant::now() + self.backoff;
            self.backoff = self.backoff.saturating_mul(2).min(REPLAY_BACKOFF_MAX);
        }
    }
}

/// Counts a batch that could not be logged, with a warning at most once a second.
fn drop_failed(batch: &[Arc<DeliveryRecord>], error: &str, stats: &LogWriterStats, started: Instant) {
    let total = stats.0.dropped_failed.fetch_add(batch.len() as u64, Ordering::Relaxed) + batch.len() as u64;
    if warn_due(stats, started) {
        tracing::warn!(
            entries = batch.len(),
            dropped_failed_total = total,
            %error,
            "message log write failed; entries dropped"
        );
    }
}

/// What [`take_queued`] found.
enum Queued {
    /// Commands, now in the caller's vector.
    Taken,
    /// None queued.
    Empty,
    /// None queued, and no more will be: every sender is gone, or the queue is closed.
    Closed,
}

/// Takes the commands queued now, at most `limit` (> 0), into `out`, without waiting and
/// without leaving the task's waker with the queue (a sender would wake the task for the
/// next entry; the senders wake it through `wake` instead).
async fn take_queued(rx: &mut mpsc::Receiver<Command>, out: &mut Vec<Command>, limit: usize) -> Queued {
    // Unconstrained: tokio's cooperative budget does not make a queued command look absent.
    tokio::task::unconstrained(std::future::poll_fn(|_| {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        std::task::Poll::Ready(match rx.poll_recv_many(&mut cx, out, limit) {
            std::task::Poll::Ready(0) => Queued::Closed,
            std::task::Poll::Ready(_) => Queued::Taken,
            std::task::Poll::Pending => Queued::Empty,
        })
    }))
    .await
}

/// Sleeps until `deadline` or a wake-up, then takes what is queued into `out` (at most
/// `limit`); false when there was nothing to take by the deadline, or the queue is closed.
async fn linger(
    rx: &mut mpsc::Receiver<Command>,
    out: &mut Vec<Command>,
    wake: &Notify,
    deadline: Instant,
    limit: usize,
) -> bool {
    loop {
        let woken = tokio::time::timeout_at(deadline, wake.notified()).await.is_ok();
        match take_queued(rx, out, limit).await {
            Queued::Taken => return true,
            Queued::Empty if woken => {}
            Queued::Empty | Queued::Closed => return false,
        }
    }
}

/// Appends `batch`, retrying as configured; gives it back with the last error when every
/// try failed.
async fn write_batch(
    log: &dyn MessageLog,
    batch: Batch,
    config: &LogWriterConfig,
    stats: &LogWriterStats,
) -> Result<(), (Batch, String)> {
    let mut backoff = config.retry_backoff;
    let mut tries = 0;
    loop {
        let error = match tokio::time::timeout(config.write_timeout, log.append_shared(batch.clone())).await {
            Ok(Ok(())) => {
                stats.0.written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                return Ok(());
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("append timed out after {:?}", config.write_timeout),
        };
        if tries >= config.retries {
            return Err((batch, error));
        }
        tries += 1;
        tracing::debug!(%error, tries, "message log write failed; retrying");
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2);
    }
}
