//! Prometheus text metrics, kept in atomics.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use wemp_proto::Mode;

use crate::observe::RecordOutcome;
use crate::reject::RejectReason;

const MODES: [&str; 4] = ["plain", "compatible", "safe", "unknown"];
/// `wemp_requests_total` counts requests by the outcome their record ends with.
const OUTCOMES: [&str; 6] = RecordOutcome::REQUEST_LABELS;
const DEDUP: [&str; 3] = ["new", "joined", "cached"];
const LATE: [&str; 6] = ["delivered", "window_expired", "quota_exceeded", "unsupported", "logged", "failed"];
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 4.5];

pub(crate) use crate::observe::DedupOutcome;

pub(crate) fn mode_index(mode: Option<Mode>) -> usize {
    match mode {
        Some(Mode::Plain) => 0,
        Some(Mode::Compatible) => 1,
        Some(Mode::Safe) => 2,
        None => 3,
    }
}

/// The server's counters. Read them with [`crate::WechatService::metrics_text`] or at the
/// configured metrics path.
///
/// What every message adds to (its request, its dedup outcome, its handler's latency) is
/// counted in [`Hot`], one copy a thread (up to [`STRIPES`]) and summed when read: counted in one
/// place, those counters' cache lines went from one worker's core to the other's at every
/// message, a wait an atomic add does not show in its instruction count. The counters of what
/// is rare (refusals, late replies, errors) are kept once.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    hot: [Hot; STRIPES],
    rejections: [AtomicU64; RejectReason::ALL.len()],
    rejections_unlogged: [AtomicU64; RejectReason::ALL.len()],
    deadline_misses: AtomicU64,
    deferred: AtomicU64,
    handler_errors: AtomicU64,
    late: [AtomicU64; LATE.len()],
}

/// How many copies of [`Hot`] a [`Metrics`] keeps: threads beyond it share one (as all did before).
const STRIPES: usize = 8;

/// The counters every message adds to, one copy a thread; aligned to 128 bytes so that two
/// copies share no cache line (nor the pair of lines a CPU may fetch together).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Hot {
    requests: [[AtomicU64; OUTCOMES.len()]; MODES.len()],
    dedup: [AtomicU64; DEDUP.len()],
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

/// The next thread's copy of [`Hot`], handed out in turn.
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's copy of [`Hot`] in every [`Metrics`], once it has counted (`usize::MAX`
    /// before): a `const` cell, so asking is a load and a compare, with no lazy initialisation.
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

impl Metrics {
    /// This thread's copy of the counters every message adds to.
    fn hot(&self) -> &Hot {
        let stripe = STRIPE.with(|stripe| match stripe.get() {
            usize::MAX => {
                let next = NEXT_STRIPE.fetch_add(1, Relaxed) % STRIPES;
                stripe.set(next);
                next
            }
            given => given,
        });
        &self.hot[stripe]
    }

    /// The sum of one counter over the copies of [`Hot`].
    fn sum(&self, counter: impl Fn(&Hot) -> &AtomicU64) -> u64 {
        self.hot.iter().map(|h| counter(h).load(Relaxed)).fold(0, u64::wrapping_add)
    }

    /// Counts a request by the outcome of its record ([`RecordOutcome::Late`] is no request's).
    pub(crate) fn request(&self, mode: Option<Mode>, outcome: &RecordOutcome) {
        if let Some(o) = OUTCOMES.iter().position(|l| *l == outcome.label()) {
            self.hot().requests[mode_index(mode)][o].fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn rejected(&self, reason: RejectReason) {
        self.rejections[reason as usize].fetch_add(1, Relaxed);
    }

    /// A rejection over the logging rate: neither a WARN line nor a record.
    pub(crate) fn rejection_unlogged(&self, reason: RejectReason) {
        self.rejections_unlogged[reason as usize].fetch_add(1, Relaxed);
    }

    pub(crate) fn dedup(&self, outcome: DedupOutcome) {
        self.hot().dedup[outcome as usize].fetch_add(1, Relaxed);
    }

    pub(crate) fn deadline_miss(&self) {
        self.deadline_misses.fetch_add(1, Relaxed);
    }

    pub(crate) fn deferred(&self) {
        self.deferred.fetch_add(1, Relaxed);
    }

    pub(crate) fn handler_error(&self) {
        self.handler_errors.fetch_add(1, Relaxed);
    }

    pub(crate) fn late(&self, label: &str) {
        if let Some(i) = LATE.iter().position(|l| *l == label) {
            self.late[i].fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn handler_latency(&self, d: Duration) {
        let hot = self.hot();
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            hot.buckets[i].fetch_add(1, Relaxed);
        }
        hot.latency_count.fetch_add(1, Relaxed);
        hot.latency_sum_us.fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    pub(crate) fn deadline_misses(&self) -> u64 {
        self.deadline_misses.load(Relaxed)
    }

    pub(crate) fn dedup_count(&self, outcome: DedupOutcome) -> u64 {
        self.sum(|h| &h.dedup[outcome as usize])
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let _ = self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) -> std::fmt::Result {
        writeln!(out, "# HELP wemp_requests_total Callback requests by mode and outcome.")?;
        writeln!(out, "# TYPE wemp_requests_total counter")?;
        for (m, mode) in MODES.iter().enumerate() {
            for (o, outcome) in OUTCOMES.iter().enumerate() {
                let v = self.sum(|h| &h.requests[m][o]);
                writeln!(out, "wemp_requests_total{{mode=\"{mode}\",outcome=\"{outcome}\"}} {v}")?;
            }
        }
        writeln!(out, "# HELP wemp_verification_failures_total Rejected requests by reason.")?;
        writeln!(out, "# TYPE wemp_verification_failures_total counter")?;
        for reason in RejectReason::ALL {
            let v = self.rejections[*reason as usize].load(Relaxed);
            writeln!(out, "wemp_verification_failures_total{{reason=\"{}\"}} {v}", reason.as_str())?;
        }
        writeln!(
            out,
            "# HELP wemp_rejections_unlogged_total Rejected requests over the logging rate: no log line, no record."
        )?;
        writeln!(out, "# TYPE wemp_rejections_unlogged_total counter")?;
        for reason in RejectReason::ALL {
            let v = self.rejections_unlogged[*reason as usize].load(Relaxed);
            writeln!(out, "wemp_rejections_unlogged_total{{reason=\"{}\"}} {v}", reason.as_str())?;
        }
        writeln!(out, "# HELP wemp_dedup_total Deliveries by dedup outcome.")?;
        writeln!(out, "# TYPE wemp_dedup_total counter")?;
        for (i, label) in DEDUP.iter().enumerate() {
            writeln!(out, "wemp_dedup_total{{outcome=\"{label}\"}} {}", self.sum(|h| &h.dedup[i]))?;
        }
        writeln!(out, "# HELP wemp_deadline_misses_total Handlers still running when the budget ran out.")?;
        writeln!(out, "# TYPE wemp_deadline_misses_total counter")?;
        writeln!(out, "wemp_deadline_misses_total {}", self.deadline_misses.load(Relaxed))?;
        writeln!(out, "# HELP wemp_deferred_total Replies deferred on purpose with ctx.defer().")?;
        writeln!(out, "# TYPE wemp_deferred_total counter")?;
        writeln!(out, "wemp_deferred_total {}", self.deferred.load(Relaxed))?;
        writeln!(out, "# HELP wemp_handler_errors_total Handlers that failed or panicked.")?;
        writeln!(out, "# TYPE wemp_handler_errors_total counter")?;
        writeln!(out, "wemp_handler_errors_total {}", self.handler_errors.load(Relaxed))?;
        writeln!(out, "# HELP wemp_late_replies_total Late replies by sink outcome.")?;
        writeln!(out, "# TYPE wemp_late_replies_total counter")?;
        for (i, label) in LATE.iter().enumerate() {
            writeln!(out, "wemp_late_replies_total{{outcome=\"{label}\"}} {}", self.late[i].load(Relaxed))?;
        }
        writeln!(out, "# HELP wemp_handler_duration_seconds Handler latency.")?;
        writeln!(out, "# TYPE wemp_handler_duration_seconds histogram")?;
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.sum(|h| &h.buckets[i]);
            writeln!(out, "wemp_handler_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}")?;
        }
        let count = self.sum(|h| &h.latency_count);
        writeln!(out, "wemp_handler_duration_seconds_bucket{{le=\"+Inf\"}} {count}")?;
        let sum = self.sum(|h| &h.latency_sum_us) as f64 / 1e6;
        writeln!(out, "wemp_handler_duration_seconds_sum {sum}")?;
        writeln!(out, "wemp_handler_duration_seconds_count {count}")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the line of `text` that starts with `name` followed by a space.
    fn value(text: &str, name: &str) -> String {
        let line = text.lines().find(|l| l.strip_prefix(name).is_some_and(|r| r.starts_with(' '))).unwrap();
        line.rsplit(' ').next().unwrap().to_owned()
    }

    #[test]
    fn what_threads_count_apart_is_read_as_one_sum() {
        let metrics = Metrics::default();
        let count = |n: u64| {
            for _ in 0..n {
                metrics.request(Some(Mode::Safe), &RecordOutcome::Answered);
                metrics.dedup(DedupOutcome::New);
                metrics.handler_latency(Duration::from_millis(3));
            }
            metrics.handler_latency(Duration::from_secs(1));
        };
        // More threads than copies: each new thread takes the next copy, so these count in
        // every copy, some in one with another thread.
        std::thread::scope(|s| {
            for n in 1..=(STRIPES as u64 + 2) {
                s.spawn(move || count(n));
            }
        });
        count(5);
        let threads = STRIPES as u64 + 2;
        let messages = threads * (threads + 1) / 2 + 5;
        let text = metrics.render();
        assert_eq!(
            value(&text, r#"wemp_requests_total{mode="safe",outcome="answered"}"#),
            messages.to_string()
        );
        assert_eq!(value(&text, r#"wemp_requests_total{mode="plain",outcome="answered"}"#), "0");
        assert_eq!(value(&text, r#"wemp_dedup_total{outcome="new"}"#), messages.to_string());
        assert_eq!(metrics.dedup_count(DedupOutcome::New), messages);
        assert_eq!(metrics.dedup_count(DedupOutcome::Cached), 0);
        // 3 ms in the 5 ms bucket (cumulative from there), 1 s in the 1 s bucket.
        assert_eq!(value(&text, r#"wemp_handler_duration_seconds_bucket{le="0.0025"}"#), "0");
        assert_eq!(value(&text, r#"wemp_handler_duration_seconds_bucket{le="0.005"}"#), messages.to_string());
        assert_eq!(value(&text, r#"wemp_handler_duration_seconds_bucket{le="0.5"}"#), messages.to_string());
        let all = messages + threads + 1;
        assert_eq!(value(&text, r#"wemp_handler_duration_seconds_bucket{le="1"}"#), all.to_string());
        assert_eq!(value(&text, r#"wemp_handler_duration_seconds_bucket{le="+Inf"}"#), all.to_string());
        assert_eq!(value(&text, "wemp_handler_duration_seconds_count"), all.to_string());
        let sum_us = messages * 3_000 + (threads + 1) * 1_000_000;
        assert_eq!(value(&text, "wemp_handler_duration_seconds_sum"), (sum_us as f64 / 1e6).to_string());
    }
}
