//! The deadline, the late sink, and dedup of WeChat's retries, on a paused clock.

use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use tokio::time::Instant;
use wemp_proto::{Mode, Reply};
use wemp_server::extract::Content;
use wemp_server::{
    Ctx, DedupStore, ErrorPolicy, Matcher, Router, Rule, RuleService, SinkOutcome, WechatService,
};
use wemp_store::{Claim, StoreError, Ticket};

use crate::common::*;

const WECHAT_TIMEOUT: Duration = Duration::from_secs(5);

/// What WeChat does: up to three tries, each abandoned after 5 s. Returns, for each try,
/// when it started (relative to `t0`) and what it got, if anything.
async fn wechat_schedule(
    svc: &WechatService,
    t0: Instant,
    req: impl Fn() -> Request<Body>,
) -> Vec<(Duration, Option<(StatusCode, String, Duration)>)> {
    let mut tries = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let got = tokio::time::timeout(WECHAT_TIMEOUT, send(svc, req())).await.ok();
        let answered = got.map(|(s, b)| (s, b, start.elapsed()));
        let done = answered.is_some();
        tries.push((start - t0, answered));
        if done {
            break;
        }
    }
    tries
}

fn slow_router(runs: &Counter, secs: u64) -> Router {
    let runs = runs.clone();
    Router::new().fallback(move |Content(text): Content| {
        let runs = runs.clone();
        async move {
            runs.hit();
            tokio::time::sleep(Duration::from_secs(secs)).await;
            Reply::text(format!("slow: {text}"))
        }
    })
}

#[tokio::test(start_paused = true)]
async fn seven_second_handler_runs_once_and_reply_goes_to_the_sink() {
    let runs = Counter::default();
    let sink = RecordingSink::default();
    let svc = builder(slow_router(&runs, 7)).late_sink(sink.clone()).build().unwrap();
    let t0 = Instant::now();
    let xml = text_xml("hello", 42);
    let tries = wechat_schedule(&svc, t0, || wechat_post(Mode::Safe, &xml)).await;

    // The server answered `success` at its 4.5 s budget, inside WeChat's 5 s: one try only.
    assert_eq!(tries.len(), 1);
    let (status, body, waited) = tries[0].1.clone().expect("answered");
    assert_eq!((status, body.as_str()), (StatusCode::OK, "success"));
    assert_eq!(waited, Duration::from_millis(4500));
    assert!(sink.replies().is_empty(), "handler still running");

    assert!(svc.drain(Duration::from_secs(10)).await);
    let late = sink.replies();
    assert_eq!(late.len(), 1);
    assert_eq!((late[0].0.as_str(), late[0].1.as_str()), (APPID, OPENID));
    assert_eq!(late[0].2, Reply::text("slow: hello"));
    assert_eq!(late[0].3 - t0, Duration::from_secs(7));
    assert_eq!(runs.get(), 1);
    assert_eq!(svc.deadline_misses(), 1);

    // A later duplicate (say, WeChat resent after a network error) neither runs the handler
    // nor delivers the reply a second time.
    let (status, body) = send(&svc, wechat_post(Mode::Safe, &xml)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "success"));
    assert_eq!(runs.get(), 1);
    assert_eq!(sink.replies().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn retry_joins_the_running_handler_and_gets_its_reply() {
    // A budget longer than WeChat's timeout: the first try is abandoned at 5 s and the
    // second joins the handler that is still running.
    let runs = Counter::default();
    let sink = RecordingSink::default();
    let svc = builder(slow_router(&runs, 7))
        .budget(Duration::from_secs(6))
        .late_sink(sink.clone())
        .build()
        .unwrap();
    let t0 = Instant::now();
    let xml = text_xml("join me", 43);
    let tries = wechat_schedule(&svc, t0, || wechat_post(Mode::Safe, &xml)).await;

    assert_eq!(tries.len(), 2, "{tries:?}");
    assert!(tries[0].1.is_none(), "first try abandoned by WeChat");
    assert_eq!(tries[1].0, WECHAT_TIMEOUT);
    let (status, body, waited) = tries[1].1.clone().expect("second try answered");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(waited, Duration::from_secs(2), "woken as soon as the handler finished");
    let opened = open(&body);
    assert!(opened.encrypted);
    assert_eq!(opened.message.reply, Reply::text("slow: join me"));

    assert!(svc.drain(Duration::from_secs(10)).await);
    assert_eq!(runs.get(), 1);
    assert!(sink.replies().is_empty(), "the reply went out passively, not twice");
    assert_eq!(svc.dedup_counts(), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn joined_retry_never_waits_past_its_budget_and_the_reply_goes_to_the_sink() {
    let runs = Counter::default();
    let sink = RecordingSink::default();
    let svc = builder(slow_router(&runs, 7)).late_sink(sink.clone()).build().unwrap();
    let xml = text_xml("flaky network", 44);
    // The first connection dies after one second (the request future is dropped).
    let first =
        tokio::time::timeout(Duration::from_secs(1), send(&svc, wechat_post(Mode::Plain, &xml))).await;
    assert!(first.is_err());
    let start = Instant::now();
    let (status, body) = send(&svc, wechat_post(Mode::Plain, &xml)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "success"));
    assert_eq!(start.elapsed(), Duration::from_millis(4500), "the retry's own budget");

    assert!(svc.drain(Duration::from_secs(10)).await);
    assert_eq!(runs.get(), 1);
    let late = sink.replies();
    assert_eq!(late.len(), 1, "the joined retry answered success, so the sink must deliver");
    assert_eq!(late[0].2, Reply::text("slow: flaky network"));
}

#[tokio::test(start_paused = true)]
async fn retry_after_completion_replays_the_reply_freshly_encrypted() {
    let runs = Counter::default();
    let svc = builder(slow_router(&runs, 1)).build().unwrap();
    let xml = text_xml("again", 45);
    let (s1, b1) = send(&svc, wechat_post(Mode::Safe, &xml)).await;
    let (s2, b2) = send(&svc, wechat_post(Mode::Safe, &xml)).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_ne!(b1, b2, "fresh nonce and random bytes");
    let (o1, o2) = (open(&b1), open(&b2));
    assert!(o1.encrypted && o2.encrypted);
    assert_eq!(o1.xml, o2.xml, "same reply");
    assert_eq!(o1.message.reply, Reply::text("slow: again"));
    assert_eq!(runs.get(), 1);
    assert_eq!(svc.dedup_counts(), (0, 1));

    // The same delivery arriving in plain mode is answered in plain mode.
    let (_, b3) = send(&svc, wechat_post(Mode::Plain, &xml)).await;
    assert!(!open(&b3).encrypted);
    assert_eq!(open(&b3).xml, o1.xml);

    // Another user's message with the same MsgId is a different delivery.
    let (_, b4) = send(&svc, wechat_post(Mode::Plain, &text_xml_from("o_other", "again", 45))).await;
    assert_eq!(reply_text(&b4).as_deref(), Some("slow: again"));
    assert_eq!(runs.get(), 2);
}

#[tokio::test(start_paused = true)]
async fn ctx_defer_answers_success_now_and_sends_later() {
    let sink = RecordingSink { outcome: Some(SinkOutcome::WindowExpired), ..Default::default() };
    let router = Router::new().fallback(|ctx: Ctx| async move {
        assert_eq!(ctx.remaining(), Duration::from_millis(4500));
        assert!(ctx.defer());
        assert!(ctx.is_deferred());
        tokio::time::sleep(Duration::from_secs(20)).await;
        Reply::text("report ready")
    });
    let svc = builder(router).late_sink(sink.clone()).build().unwrap();
    let t0 = Instant::now();
    let (status, body) = send(&svc, wechat_post(Mode::Safe, &text_xml("report", 46))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "success"));
    assert_eq!(t0.elapsed(), Duration::ZERO);
    assert!(svc.drain(Duration::from_secs(30)).await);
    let late = sink.replies();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].3 - t0, Duration::from_secs(20));
    assert!(svc.metrics_text().contains("wemp_late_replies_total{outcome=\"window_expired\"} 1"));
    assert!(svc.metrics_text().contains("wemp_deferred_total 1"));
    assert_eq!(svc.deadline_misses(), 0);
}

#[tokio::test(start_paused = true)]
async fn handler_failures_never_produce_a_500() {
    let router = Router::new()
        .on_text("err", || async { Err::<Reply, _>(std::io::Error::other("boom")) })
        .on_text("panic", || async {
            if true {
                panic!("handler bug");
            }
            Reply::None
        })
        // Panicking before it returns a future: in the call, not in a poll of the future.
        .on_text("panic at once", || -> std::future::Ready<Reply> { panic!("handler bug at once") })
        .on_text("too many", || async { Reply::news(vec![]) })
        // A function answering in place, failing or panicking inside the router's poll.
        .route(Rule::service(
            Matcher::text("sync err"),
            RuleService::from_sync_fn(|_| Err(std::io::Error::other("boom").into())),
        ))
        .route(Rule::service(
            Matcher::text("sync panic"),
            RuleService::from_sync_fn(|_| panic!("handler bug in place")),
        ));
    let texts = ["err", "panic", "panic at once", "too many", "sync err", "sync panic"];
    let svc = builder(router.clone()).build().unwrap();
    for (i, text) in texts.into_iter().enumerate() {
        let (status, body) = send(&svc, wechat_post(Mode::Safe, &text_xml(text, 50 + i as u64))).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "success"), "{text}");
    }
    let apologetic =
        builder(router).error_policy(ErrorPolicy::Apology("sorry, try later".into())).build().unwrap();
    for (i, text) in texts.into_iter().enumerate() {
        let (status, body) = send(&apologetic, wechat_post(Mode::Safe, &text_xml(text, 60 + i as u64))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(reply_text(&body).as_deref(), Some("sorry, try later"), "{text}");
    }
    // A reply WeChat would refuse (an empty news list) counts as the handler's error too.
    assert!(svc.metrics_text().contains("wemp_handler_errors_total 6"));
}

/// A store that is down.
struct BrokenStore;

#[async_trait::async_trait]
impl DedupStore for BrokenStore {
    async fn claim(&self, _: &str, _: Duration) -> wemp_store::Result<Claim> {
        Err(StoreError::backend("memory", "unreachable"))
    }
    async fn complete(&self, _: &str, _: &str, _: Duration) -> wemp_store::Result<()> {
        Err(StoreError::backend("memory", "unreachable"))
    }
    async fn release(&self, _: &str) -> wemp_store::Result<()> {
        Ok(())
    }
    async fn wait(&self, _: &str, _: Duration) -> wemp_store::Result<Option<String>> {
        Ok(None)
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_dedup_store_degrades_to_no_dedup() {
    let runs = Counter::default();
    let svc = builder(slow_router(&runs, 0)).dedup_store(BrokenStore).build().unwrap();
    let xml = text_xml("x", 70);
    for _ in 0..2 {
        let (status, body) = send(&svc, wechat_post(Mode::Plain, &xml)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(reply_text(&body).as_deref(), Some("slow: x"));
    }
    assert_eq!(runs.get(), 2);
}

#[tokio::test(start_paused = true)]
async fn shared_store_dedups_across_instances() {
    // Two server instances (as behind a load balancer) share one store: a retry landing on
    // the second instance joins the handler running on the first.
    let store = wemp_server::MemoryDedupStore::new(100);
    let runs = Counter::default();
    let a = builder(slow_router(&runs, 3)).dedup_store(store.clone()).build().unwrap();
    let b = builder(slow_router(&runs, 3)).dedup_store(store).build().unwrap();
    let xml = text_xml("cluster", 80);
    let first = tokio::spawn({
        let a = a.clone();
        let req = wechat_post(Mode::Plain, &xml);
        async move { send(&a, req).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (s2, b2) = send(&b, wechat_post(Mode::Plain, &xml)).await;
    let (s1, b1) = first.await.unwrap();
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(reply_text(&b1), reply_text(&b2));
    assert_eq!(runs.get(), 1);
}

/// A late sink with a bug.
struct PanickingSink;

#[async_trait::async_trait]
impl wemp_server::LateReplySink for PanickingSink {
    async fn deliver(&self, _: &str, _: &str, _: Reply) -> SinkOutcome {
        panic!("sink bug")
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_late_sink_is_a_failed_delivery_not_a_panic_in_the_request() {
    // The handler defers and returns at once: the sink runs inside the request's own poll.
    let quick = Router::new().fallback(|ctx: Ctx| async move {
        ctx.defer();
        Reply::text("later")
    });
    // The handler misses the deadline: the sink runs in the handler's task.
    let runs = Counter::default();
    for (router, msg_id) in [(quick, 90), (slow_router(&runs, 7), 91)] {
        let svc = builder(router).late_sink(PanickingSink).build().unwrap();
        let (status, body) = send(&svc, wechat_post(Mode::Safe, &text_xml("x", msg_id))).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "success"));
        assert!(svc.drain(Duration::from_secs(10)).await);
        assert!(
            svc.metrics_text().contains("wemp_late_replies_total{outcome=\"failed\"} 1"),
            "{}",
            svc.metrics_text()
        );
        // The delivery stays answered: a retry is told `success`, the handler does not rerun.
        let (status, body) = send(&svc, wechat_post(Mode::Safe, &text_xml("x", msg_id))).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "success"));
    }
    assert_eq!(runs.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_first_try_whose_retry_lands_on_another_instance_loses_no_reply() {
    // Two instances share one store. WeChat's first connection to A dies after one second
    // (A's request future is dropped, so A never reaches its own deadline); the retry
    // lands on B, joins through the store and, its budget spent, answers `success`. A's
    // handler finishes later: its reply must still reach the user, through the sink.
    let store = wemp_server::MemoryDedupStore::new(100);
    let runs = Counter::default();
    let sink = RecordingSink::default();
    let a =
        builder(slow_router(&runs, 7)).dedup_store(store.clone()).late_sink(sink.clone()).build().unwrap();
    let b = builder(slow_router(&runs, 7)).dedup_store(store).late_sink(sink.clone()).build().unwrap();
    let xml = text_xml("cluster", 92);
    let first = tokio::time::timeout(Duration::from_secs(1), send(&a, wechat_post(Mode::Plain, &xml))).await;
    assert!(first.is_err());
    let start = Instant::now();
    let (status, body) = send(&b, wechat_post(Mode::Plain, &xml)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "success"));
    assert_eq!(start.elapsed(), Duration::from_millis(4500), "the retry's own budget");

    assert!(a.drain(Duration::from_secs(10)).await);
    assert_eq!(runs.get(), 1);
    let late = sink.replies();
    assert_eq!(late.len(), 1, "the retry answered success, so the sink must deliver");
    assert_eq!(late[0].2, Reply::text("slow: cluster"));
    assert_eq!(a.deadline_misses(), 1);
}

#[tokio::test]
async fn an_unbounded_budget_is_capped_not_a_panic() {
    // `arrived + budget` overflowed for a budget of Duration::MAX.
    let runs = Counter::default();
    let svc = builder(slow_router(&runs, 0)).budget(Duration::MAX).build().unwrap();
    let (status, body) = send(&svc, wechat_post(Mode::Safe, &text_xml("hi", 44))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(open(&body).message.reply, Reply::text("slow: hi"));
    assert_eq!(runs.get(), 1);
}

struct HangingSink;

#[async_trait::async_trait]
impl wemp_server::LateReplySink for HangingSink {
    async fn deliver(&self, _: &str, _: &str, _: Reply) -> SinkOutcome {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_late_sink_that_never_answers_fails_after_its_timeout() {
    // As above: a deferring handler (the sink starts in the request's poll) and a slow one
    // (the sink runs in the handler's task).
    let quick = Router::new().fallback(|ctx: Ctx| async move {
        ctx.defer();
        Reply::text("later")
    });
    let runs = Counter::default();
    for (router, msg_id) in [(quick, 93), (slow_router(&runs, 7), 94)] {
        let svc = builder(router)
            .late_sink(HangingSink)
            .late_sink_timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let started = Instant::now();
        let (status, body) = send(&svc, wechat_post(Mode::Safe, &text_xml("x", msg_id))).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "success"));
        assert!(
            started.elapsed() <= Duration::from_millis(4500),
            "answered in time: {:?}",
            started.elapsed()
        );
        assert!(svc.drain(Duration::from_secs(60)).await, "the hanging delivery was given up");
        assert!(
            svc.metrics_text().contains("wemp_late_replies_total{outcome=\"failed\"} 1"),
            "{}",
            svc.metrics_text()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_handler_that_defers_and_returns_at_once_counts_as_deferred() {
    let sink = RecordingSink::default();
    let quick = Router::new().fallback(|ctx: Ctx| async move {
        ctx.defer();
        Reply::text("later")
    });
    let svc = builder(quick).late_sink(sink.clone()).build().unwrap();
    let (status, body) = send(&svc, wechat_post(Mode::Safe, &text_xml("x", 95))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "success"));
    assert!(svc.drain(Duration::from_secs(10)).await);
    let metrics = svc.metrics_text();
    assert!(metrics.contains("wemp_deferred_total 1"), "{metrics}");
    assert!(metrics.contains("wemp_deadline_misses_total 0"), "{metrics}");
    assert_eq!(sink.replies().len(), 1);
}

/// How often a store was asked for each kind of answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Calls {
    /// `claim_ticket_now`, answered or not.
    claim_now: u32,
    /// `claim` or `claim_ticket`.
    claim: u32,
    /// `complete_claimed_now`, answered or not.
    complete_now: u32,
    /// `complete` or `complete_claimed`.
    complete: u32,
}

/// A memory store that counts its calls. With `now`, it answers claims and completions at
/// once as the memory store does; without, only through the async methods (as a remote
/// store does: `None` at once).
#[derive(Clone)]
struct Counting {
    store: wemp_server::MemoryDedupStore,
    now: bool,
    calls: std::sync::Arc<std::sync::Mutex<Calls>>,
}

impl Counting {
    fn new(now: bool) -> Self {
        Self { store: wemp_server::MemoryDedupStore::new(100), now, calls: Default::default() }
    }

    fn calls(&self) -> Calls {
        *self.calls.lock().unwrap()
    }

    fn count(&self, f: impl FnOnce(&mut Calls)) {
        f(&mut self.calls.lock().unwrap());
    }
}

#[async_trait::async_trait]
impl DedupStore for Counting {
    async fn claim(&self, key: &str, ttl: Duration) -> wemp_store::Result<Claim> {
        self.count(|c| c.claim += 1);
        self.store.claim(key, ttl).await
    }
    async fn claim_ticket(&self, key: &str, ttl: Duration) -> wemp_store::Result<(Claim, Ticket)> {
        self.count(|c| c.claim += 1);
        self.store.claim_ticket(key, ttl).await
    }
    fn claim_ticket_now(&self, key: &str, ttl: Duration) -> Option<wemp_store::Result<(Claim, Ticket)>> {
        self.count(|c| c.claim_now += 1);
        if self.now { self.store.claim_ticket_now(key, ttl) } else { None }
    }
    async fn complete(&self, key: &str, reply: &str, ttl: Duration) -> wemp_store::Result<()> {
        self.count(|c| c.complete += 1);
        self.store.complete(key, reply, ttl).await
    }
    async fn complete_claimed(
        &self,
        key: &str,
        ticket: Ticket,
        reply: &str,
        ttl: Duration,
    ) -> wemp_store::Result<()> {
        self.count(|c| c.complete += 1);
        self.store.complete_claimed(key, ticket, reply, ttl).await
    }
    fn complete_claimed_now(
        &self,
        key: &str,
        ticket: Ticket,
        reply: &str,
        ttl: Duration,
        now: tokio::time::Instant,
    ) -> Option<wemp_store::Result<()>> {
        self.count(|c| c.complete_now += 1);
        if self.now { self.store.complete_claimed_now(key, ticket, reply, ttl, now) } else { None }
    }
    async fn release(&self, key: &str) -> wemp_store::Result<()> {
        self.store.release(key).await
    }
    async fn wait(&self, key: &str, timeout: Duration) -> wemp_store::Result<Option<String>> {
        self.store.wait(key, timeout).await
    }
}

/// A store that answers at once is asked at once, and never through a future; one that
/// does not is asked through the async methods after. Both serve the same: a message
/// answered in time, its retry answered from the store, a slow message answered `success`
/// whose reply goes to the late sink, and that message's retry.
#[tokio::test(start_paused = true)]
async fn the_dedup_store_is_asked_for_an_answer_at_once_first() {
    let mut answers = Vec::new();
    for now in [true, false] {
        let store = Counting::new(now);
        let sink = RecordingSink::default();
        let router = Router::new().fallback(|Content(text): Content| async move {
            if text == "slow" {
                tokio::time::sleep(Duration::from_secs(7)).await;
            }
            Reply::text(format!("re: {text}"))
        });
        let svc = builder(router).dedup_store(store.clone()).late_sink(sink.clone()).build().unwrap();
        let mut got = Vec::new();
        for (text, id) in [("fast", 90), ("fast", 90), ("slow", 91)] {
            let (status, body) = send(&svc, wechat_post(Mode::Plain, &text_xml(text, id))).await;
            got.push((status, reply_text(&body).unwrap_or(body)));
        }
        assert!(svc.drain(Duration::from_secs(10)).await);
        let (status, body) = send(&svc, wechat_post(Mode::Plain, &text_xml("slow", 91))).await;
        got.push((status, reply_text(&body).unwrap_or(body)));
        assert_eq!(sink.replies().len(), 1);
        assert_eq!(svc.dedup_counts(), (0, 2), "two retries answered from the store");

        let calls = store.calls();
        // Four claims, two completions (the fast reply, and `success` for the slow one).
        let expected = if now {
            Calls { claim_now: 4, claim: 0, complete_now: 2, complete: 0 }
        } else {
            Calls { claim_now: 4, claim: 4, complete_now: 2, complete: 2 }
        };
        assert_eq!(calls, expected, "answering at once: {now}");
        answers.push(got);
    }
    assert_eq!(answers[0], answers[1], "the same answers either way");
    assert_eq!(answers[0][1].1, "re: fast");
    assert_eq!(answers[0][3].1, "success");
}
