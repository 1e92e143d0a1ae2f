//! `wemp bench`: a load generator that sends distinct text messages (fresh MsgIds) in any
//! mode and measures throughput and latency. Every run is bounded both in requests and time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use wemp_proto::Header;
use wemp_proto::message::Text;

use crate::i18n::{Lang, Msg};
use crate::sim::{DeliveryVerdict, Exchange, FailCause, Simulator, now_secs, random_msg_id, words};
use crate::term::Style;

/// The longest run allowed.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// The most requests allowed in one run.
pub const MAX_REQUESTS: u64 = 10_000_000;
/// Requests sent when neither a count nor a duration is given.
pub const DEFAULT_REQUESTS: u64 = 1000;

/// How much load to generate.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    concurrency: usize,
    requests: u64,
    duration: Duration,
    content: String,
}

/// Options `wemp bench` refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BenchOptionError {
    /// `--concurrency` out of range.
    #[error("--concurrency must be 1 to 4096, not {0}")]
    Concurrency(usize),
    /// `--requests` out of range.
    #[error("--requests must be 1 to {MAX_REQUESTS}")]
    Requests,
    /// `--duration` out of range.
    #[error("--duration must be more than 0 and at most 1h")]
    Duration,
}

impl BenchOptions {
    /// Validated options: with neither `requests` nor `duration`, [`DEFAULT_REQUESTS`].
    ///
    /// # Errors
    /// Zero or excessive concurrency, requests or duration.
    pub fn new(
        concurrency: usize,
        requests: Option<u64>,
        duration: Option<Duration>,
        content: String,
    ) -> Result<Self, BenchOptionError> {
        if !(1..=4096).contains(&concurrency) {
            return Err(BenchOptionError::Concurrency(concurrency));
        }
        if requests == Some(0) || requests.is_some_and(|n| n > MAX_REQUESTS) {
            return Err(BenchOptionError::Requests);
        }
        if duration.is_some_and(|d| d.is_zero() || d > MAX_DURATION) {
            return Err(BenchOptionError::Duration);
        }
        let requests = match (requests, duration) {
            (Some(n), _) => n,
            (None, Some(_)) => MAX_REQUESTS,
            (None, None) => DEFAULT_REQUESTS,
        };
        Ok(Self { concurrency, requests, duration: duration.unwrap_or(MAX_DURATION), content })
    }
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Latency {
    /// Percentiles of `samples` (nearest rank).
    pub fn of(samples: &mut [Duration]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let rank = |p: f64| {
            let idx = ((p / 100.0) * samples.len() as f64).ceil() as usize;
            ms(samples[idx.clamp(1, samples.len()) - 1])
        };
        let total: Duration = samples.iter().sum();
        Self {
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: ms(samples[samples.len() - 1]),
            mean: ms(total) / samples.len() as f64,
        }
    }
}

/// The result of a run.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// The URL.
    pub url: String,
    /// The mode.
    pub mode: wemp_proto::Mode,
    /// Concurrency.
    pub concurrency: usize,
    /// Requests sent.
    pub requests: u64,
    /// Requests answered with an acceptable reply.
    pub ok: u64,
    /// Failures by kind (`timeout`, `connect`, `http_503`, `invalid_reply`, `refused_reply`).
    pub errors: BTreeMap<String, u64>,
    /// One failure told in full (in the language the run was asked for), with the server's
    /// own reason for a non-2xx answer (`HTTP 403, 13 bytes: bad signature`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Wall time in seconds.
    pub elapsed_secs: f64,
    /// Requests per second.
    pub requests_per_sec: f64,
    /// Latency of the answered requests.
    pub latency_ms: Latency,
}

impl BenchReport {
    /// All failures.
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The report for people, in `lang` (the failure told in full is in the language the
    /// run was asked for).
    pub fn render(&self, style: Style, lang: Lang) -> String {
        let l = &self.latency_ms;
        // Labels padded to one column, measured in terminal cells (a CJK character takes two).
        let label = |m: Msg| crate::term::cell(m.get(lang), 11);
        let mode = crate::i18n::mode_name(self.mode, lang);
        let head =
            Msg::BenchHead.fill(lang, &[("url", &self.url), ("mode", &mode), ("c", &self.concurrency)]);
        let secs = format!("{:.2}", self.elapsed_secs);
        let rps = format!("{:.1}", self.requests_per_sec);
        let mut out = format!(
            "{} {head}\n  {}{}\n  {}{}\n  {}p50 {:.2}ms  p90 {:.2}ms  p99 {:.2}ms  max {:.2}ms  mean {:.2}ms\n",
            style.bold("bench"),
            label(Msg::BenchRequestsLabel),
            Msg::BenchRequests.fill(lang, &[("n", &self.requests), ("secs", &secs), ("ok", &self.ok)]),
            label(Msg::BenchThroughputLabel),
            Msg::BenchThroughput.fill(lang, &[("rps", &rps)]),
            label(Msg::BenchLatencyLabel),
            l.p50,
            l.p90,
            l.p99,
            l.max,
            l.mean
        );
        if self.errors.is_empty() {
            out.push_str(&format!("  {}{}\n", label(Msg::BenchErrorsLabel), Msg::BenchNoErrors.get(lang)));
        } else {
            let list: Vec<String> = self.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
            out.push_str(&format!("  {}{}\n", label(Msg::BenchErrorsLabel), style.red(&list.join(", "))));
            if let Some(first) = &self.first_error {
                out.push_str(&format!("  {}{first}\n", label(Msg::BenchExampleLabel)));
            }
        }
        out
    }
}

#[derive(Default)]
struct WorkerStats {
    latencies: Vec<Duration>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    first_error: Option<String>,
}

async fn worker(
    sim: Arc<Simulator>,
    opts: Arc<BenchOptions>,
    issued: Arc<AtomicU64>,
    deadline: Instant,
    base: u64,
    lang: Lang,
) -> WorkerStats {
    let mut stats = WorkerStats::default();
    loop {
        let idx = issued.fetch_add(1, Ordering::Relaxed);
        if idx >= opts.requests || Instant::now() >= deadline {
            issued.fetch_sub(1, Ordering::Relaxed);
            break;
        }
        let mut text = Text::default();
        text.header = Header {
            to: sim.target().account.clone(),
            from: sim.target().openid.clone(),
            create_time: now_secs(),
            agent_id: None,
        };
        text.content = opts.content.clone();
        text.id = base + idx;
        let xml = text.to_xml();
        let timeout = sim.target().timeout;
        let failure = match sim.sign(&xml) {
            Err(e) => Some(("sign".to_owned(), e.to_string())),
            Ok(req) => {
                let attempt = sim.exchange(false, &req.query_string(), req.body).await;
                let told = || words::exchange(&attempt.exchange, timeout, lang);
                match &attempt.exchange {
                    Exchange::Timeout => Some(("timeout".to_owned(), told())),
                    Exchange::Connect { .. } => Some(("connect".to_owned(), told())),
                    Exchange::Tls { .. } => Some(("tls".to_owned(), told())),
                    Exchange::Http { status, body, .. } => {
                        stats.latencies.push(attempt.elapsed);
                        if !(200..300).contains(status) {
                            Some((format!("http_{status}"), told()))
                        } else {
                            match sim.judge(body, true) {
                                DeliveryVerdict::Failed { cause: FailCause::Unreadable(why), .. } => {
                                    Some(("invalid_reply".to_owned(), words::unreadable(&why, lang)))
                                }
                                DeliveryVerdict::Failed { reason, .. } => {
                                    Some(("invalid_reply".to_owned(), reason))
                                }
                                DeliveryVerdict::Reply { problems, .. } if !problems.is_empty() => Some((
                                    "refused_reply".to_owned(),
                                    problems
                                        .iter()
                                        .map(|p| words::problem(p, lang))
                                        .collect::<Vec<_>>()
                                        .join("; "),
                                )),
                                DeliveryVerdict::Reply { .. } => None,
                            }
                        }
                    }
                }
            }
        };
        let kind = failure.map(|(kind, told)| {
            stats.first_error.get_or_insert(told);
            kind
        });
        match kind {
            None => stats.ok += 1,
            Some(k) => *stats.errors.entry(k).or_default() += 1,
        }
    }
    stats
}

/// Runs the load; `progress(done, fraction)` is called about ten times a second. The
/// failure told in full is worded in `lang`.
pub async fn run(
    sim: &Simulator,
    opts: &BenchOptions,
    lang: Lang,
    mut progress: impl FnMut(u64, f64),
) -> BenchReport {
    let sim = Arc::new(sim.clone());
    let opts_arc = Arc::new(opts.clone());
    let issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + opts.duration;
    let base = random_msg_id() >> 1 | (1 << 62);
    let mut handles = Vec::with_capacity(opts.concurrency);
    for _ in 0..opts.concurrency {
        handles.push(tokio::spawn(worker(
            sim.clone(),
            opts_arc.clone(),
            issued.clone(),
            deadline,
            base,
            lang,
        )));
    }
    let fraction = |done: u64| {
        let by_count = done as f64 / opts.requests as f64;
        let by_time = start.elapsed().as_secs_f64() / opts.duration.as_secs_f64();
        by_count.max(by_time).min(1.0)
    };
    while !handles.iter().all(tokio::task::JoinHandle::is_finished) {
        let done = issued.load(Ordering::Relaxed);
        progress(done, fraction(done));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = start.elapsed();
    let mut latencies = Vec::new();
    let mut ok = 0;
    let mut errors = BTreeMap::new();
    let mut first_error = None;
    for handle in handles {
        match handle.await {
            Ok(stats) => {
                first_error = first_error.or(stats.first_error);
                latencies.extend(stats.latencies);
                ok += stats.ok;
                for (k, v) in stats.errors {
                    *errors.entry(k).or_default() += v;
                }
            }
            Err(_) => *errors.entry("worker_panicked".to_owned()).or_default() += 1,
        }
    }
    let requests = ok + errors.values().sum::<u64>();
    progress(requests, 1.0);
    BenchReport {
        url: sim.target().url.clone(),
        mode: sim.target().mode,
        concurrency: opts.concurrency,
        requests,
        ok,
        errors,
        first_error,
        elapsed_secs: elapsed.as_secs_f64(),
        requests_per_sec: if elapsed.is_zero() { 0.0 } else { requests as f64 / elapsed.as_secs_f64() },
        latency_ms: Latency::of(&mut latencies),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        samples.reverse();
        let l = Latency::of(&mut samples);
        assert_eq!((l.p50, l.p90, l.p99, l.max), (50.0, 90.0, 99.0, 100.0));
        assert!((l.mean - 50.5).abs() < 1e-9);
        assert_eq!(Latency::of(&mut []), Latency::default());
        let mut one = vec![Duration::from_millis(7)];
        assert_eq!(Latency::of(&mut one).p99, 7.0);
    }

    #[test]
    fn options_are_bounded() {
        let o = BenchOptions::new(4, None, None, "x".into()).unwrap();
        assert_eq!((o.requests, o.duration), (DEFAULT_REQUESTS, MAX_DURATION));
        let o = BenchOptions::new(4, None, Some(Duration::from_secs(2)), "x".into()).unwrap();
        assert_eq!((o.requests, o.duration), (MAX_REQUESTS, Duration::from_secs(2)));
        assert!(BenchOptions::new(0, None, None, "x".into()).is_err());
        assert!(BenchOptions::new(1, Some(0), None, "x".into()).is_err());
        assert!(BenchOptions::new(1, None, Some(Duration::from_secs(7200)), "x".into()).is_err());
    }
}
