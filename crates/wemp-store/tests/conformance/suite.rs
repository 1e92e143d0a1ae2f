//! The generic suites: `dedup`, `token`, `session`, `log`.

use std::sync::Arc;
use std::time::Duration;

use wemp_proto::admission::{Check, CheckKind};
use wemp_proto::{Mode, RejectReason};
use wemp_store::{
    CachedToken, Claim, DedupOutcome, DedupStore, DeliveryRecord, ForwardRecord, ForwardResult,
    ForwardTarget, Lease, LogQuery, MessageLog, RecordOutcome, RejectionRecord, SessionStore, SinkOutcome,
    StoreError, Ticket, TokenStore,
};

const MINUTE: Duration = Duration::from_secs(60);

/// A short TTL and a sleep well past it, for expiry checks.
const SHORT: Duration = Duration::from_millis(150);
const PAST_SHORT: Duration = Duration::from_millis(600);

/// Two handles may be of two types: a store, and the same store used through its answers
/// given at once ([`Now`]).
pub(crate) async fn dedup<A: DedupStore, B: DedupStore>(a: Arc<A>, b: Arc<B>) {
    // First claim wins, on either instance.
    let k = "wx1:msg:o1:1";
    assert_eq!(a.claim(k, MINUTE).await.unwrap(), Claim::New);
    assert_eq!(b.claim(k, MINUTE).await.unwrap(), Claim::InFlight);
    assert_eq!(a.claim(k, MINUTE).await.unwrap(), Claim::InFlight);
    let reply = "<xml><Content><![CDATA[你好 ]]]]><![CDATA[>]]></Content></xml>";
    a.complete(k, reply, MINUTE).await.unwrap();
    // A store may write completions behind (Redis): until then a claim elsewhere sees the
    // key in flight and waits (checked per store); `flush` waits for the write.
    a.flush().await.unwrap();
    assert_eq!(b.claim(k, MINUTE).await.unwrap(), Claim::Done(reply.to_owned()));
    assert_eq!(b.wait(k, MINUTE).await.unwrap().as_deref(), Some(reply));

    // Keys are independent.
    assert_eq!(b.claim("wx1:msg:o1:2", MINUTE).await.unwrap(), Claim::New);
    assert_eq!(b.claim("wx2:msg:o1:1", MINUTE).await.unwrap(), Claim::New);

    // An empty reply and `success` are replies like any other.
    let k = "wx1:msg:o1:3";
    assert_eq!(a.claim(k, MINUTE).await.unwrap(), Claim::New);
    a.complete(k, "", MINUTE).await.unwrap();
    a.flush().await.unwrap();
    assert_eq!(b.claim(k, MINUTE).await.unwrap(), Claim::Done(String::new()));

    // Release lets the next delivery run the handler again.
    let k = "wx1:msg:o1:4";
    assert_eq!(a.claim(k, MINUTE).await.unwrap(), Claim::New);
    a.release(k).await.unwrap();
    assert_eq!(b.claim(k, MINUTE).await.unwrap(), Claim::New);
    // Releasing a finished key keeps its reply.
    b.complete(k, "success", MINUTE).await.unwrap();
    b.flush().await.unwrap();
    a.release(k).await.unwrap();
    assert_eq!(a.claim(k, MINUTE).await.unwrap(), Claim::Done("success".to_owned()));

    // A waiter on the other instance sees the reply stored after it started waiting.
    let k = "wx1:msg:o1:5";
    assert_eq!(a.claim(k, MINUTE).await.unwrap(), Claim::New);
    assert_eq!(b.claim(k, MINUTE).await.unwrap(), Claim::InFlight);
    let (waited, ()) = tokio::join!(b.wait(k, Duration::from_secs(10)), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        a.complete(k, "late reply", MINUTE).await.unwrap();
    });
    assert_eq!(waited.unwrap().as_deref(), Some("late reply"));

    // A release wakes waiters with nothing.
    let k = "wx1:msg:o1:6";
    assert_eq!(a.claim(k, MINUTE).await.unwrap(), Claim::New);
    let (waited, ()) = tokio::join!(b.wait(k, Duration::from_secs(10)), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        a.release(k).await.unwrap();
    });
    assert_eq!(waited.unwrap(), None);

    // A wait that runs out gives nothing, and the claim stays in flight.
    let k = "wx1:msg:o1:7";
    assert_eq!(a.claim(k, MINUTE).await.unwrap(), Claim::New);
    assert_eq!(b.wait(k, Duration::from_millis(100)).await.unwrap(), None);
    assert_eq!(b.claim(k, MINUTE).await.unwrap(), Claim::InFlight);

    // A crashed owner's claim expires (a stored reply is kept *at least* its TTL, so its
    // expiry is not part of the contract).
    let k = "wx1:msg:o1:8";
    assert_eq!(a.claim(k, SHORT).await.unwrap(), Claim::New);
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(b.claim(k, MINUTE).await.unwrap(), Claim::New);

    // A claim's ticket completes it (the memory store's spares it a second hash of the key);
    // without a ticket a completion goes by the key.
    let k = "wx1:msg:o1:10";
    let (claim, ticket) = a.claim_ticket(k, MINUTE).await.unwrap();
    assert_eq!(claim, Claim::New);
    assert_eq!(b.claim_ticket(k, MINUTE).await.unwrap().0, Claim::InFlight);
    a.complete_claimed(k, ticket, "r10", MINUTE).await.unwrap();
    a.flush().await.unwrap();
    assert_eq!(b.claim(k, MINUTE).await.unwrap(), Claim::Done("r10".to_owned()));
    let k = "wx1:msg:o1:11";
    assert_eq!(b.claim_ticket(k, MINUTE).await.unwrap().0, Claim::New);
    b.complete_claimed(k, Ticket::NONE, "r11", MINUTE).await.unwrap();
    b.flush().await.unwrap();
    assert_eq!(a.claim_ticket(k, MINUTE).await.unwrap().0, Claim::Done("r11".to_owned()));

    // The claim's future of the store's own type (a `FallbackDedupStore` over the store holds
    // it in its own, unboxed) answers as `claim` does.
    let k = "wx1:msg:o1:13";
    assert_eq!(a.claim_unboxed(k, MINUTE).await.unwrap(), Claim::New);
    assert_eq!(b.claim(k, MINUTE).await.unwrap(), Claim::InFlight);
    assert_eq!(a.claim_unboxed(k, MINUTE).await.unwrap(), Claim::InFlight);
    a.complete(k, "r13", MINUTE).await.unwrap();
    a.flush().await.unwrap();
    assert_eq!(a.claim_unboxed(k, MINUTE).await.unwrap(), Claim::Done("r13".to_owned()));

    // The answer given at once, where the store gives one, is the claim (the server asks
    // for it first); a store that cannot answer at once does nothing when asked, and the
    // async call makes the claim. The same for the completion.
    let k = "wx1:msg:o1:12";
    let (claim, ticket) = match a.claim_ticket_now(k, MINUTE) {
        Some(answered) => answered.unwrap(),
        None => a.claim_ticket(k, MINUTE).await.unwrap(),
    };
    assert_eq!(claim, Claim::New);
    assert_eq!(b.claim(k, MINUTE).await.unwrap(), Claim::InFlight);
    match a.complete_claimed_now(k, ticket, "r12", MINUTE, tokio::time::Instant::now()) {
        Some(done) => done.unwrap(),
        None => a.complete_claimed(k, ticket, "r12", MINUTE).await.unwrap(),
    }
    a.flush().await.unwrap();
    assert_eq!(b.claim(k, MINUTE).await.unwrap(), Claim::Done("r12".to_owned()));

    // Concurrent deliveries of one message, half on each instance: exactly one wins.
    let k = "wx1:msg:o1:9";
    let (a, b): (Arc<dyn DedupStore>, Arc<dyn DedupStore>) = (a, b);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let s = if i % 2 == 0 { Arc::clone(&a) } else { Arc::clone(&b) };
        tasks.spawn(async move { s.claim(k, MINUTE).await.unwrap() });
    }
    let claims = tasks.join_all().await;
    assert_eq!(claims.iter().filter(|c| **c == Claim::New).count(), 1, "{claims:?}");
    assert!(claims.iter().all(|c| *c == Claim::New || *c == Claim::InFlight));
}

/// A dedup store used through its answers given at once: each claim and completion goes to
/// [`DedupStore::claim_ticket_now`] or [`DedupStore::complete_claimed_now`], which must
/// answer (the test fails where the store would have the caller ask the async method).
/// [`dedup`] over it checks that path of a store that answers at once, as the store itself
/// checks the async one.
pub(crate) struct Now<S>(pub(crate) Arc<S>);

#[async_trait::async_trait]
impl<S: DedupStore> DedupStore for Now<S> {
    async fn claim(&self, key: &str, in_flight_ttl: Duration) -> wemp_store::Result<Claim> {
        Ok(self.claim_ticket(key, in_flight_ttl).await?.0)
    }

    async fn claim_ticket(&self, key: &str, in_flight_ttl: Duration) -> wemp_store::Result<(Claim, Ticket)> {
        self.0.claim_ticket_now(key, in_flight_ttl).expect("the store answers a claim at once")
    }

    async fn complete(&self, key: &str, reply: &str, ttl: Duration) -> wemp_store::Result<()> {
        self.complete_claimed(key, Ticket::NONE, reply, ttl).await
    }

    async fn complete_claimed(
        &self,
        key: &str,
        ticket: Ticket,
        reply: &str,
        ttl: Duration,
    ) -> wemp_store::Result<()> {
        let now = tokio::time::Instant::now();
        self.0.complete_claimed_now(key, ticket, reply, ttl, now).expect("the store completes at once")
    }

    async fn release(&self, key: &str) -> wemp_store::Result<()> {
        self.0.release(key).await
    }

    async fn wait(&self, key: &str, timeout: Duration) -> wemp_store::Result<Option<String>> {
        self.0.wait(key, timeout).await
    }

    async fn flush(&self) -> wemp_store::Result<()> {
        self.0.flush().await
    }
}

fn token(value: &str, expires_at_ms: i64) -> CachedToken {
    CachedToken { value: value.into(), expires_at_ms }
}

pub(crate) async fn token_store<S: TokenStore>(a: Arc<S>, b: Arc<S>) {
    let k = "wx1:access_token";
    assert_eq!(a.get(k).await.unwrap(), None);

    // Put, then read from the other instance.
    let t1 = token("t1", 1_700_000_000_000);
    assert_eq!(a.put(k, &t1).await.unwrap(), t1);
    assert_eq!(b.get(k).await.unwrap(), Some(t1.clone()));

    // A token expiring earlier does not replace a later one.
    assert_eq!(b.put(k, &token("t0", 1_699_000_000_000)).await.unwrap(), t1);
    assert_eq!(a.get(k).await.unwrap(), Some(t1.clone()));

    // A later one does.
    let t2 = token("t2", 1_700_000_007_200);
    assert_eq!(b.put(k, &t2).await.unwrap(), t2);
    assert_eq!(a.get(k).await.unwrap(), Some(t2.clone()));

    // Invalidation compares the value: a stale report does not remove the new token.
    assert!(!a.invalidate(k, "t1").await.unwrap());
    assert_eq!(b.get(k).await.unwrap(), Some(t2.clone()));
    assert!(a.invalidate(k, "t2").await.unwrap());
    assert_eq!(b.get(k).await.unwrap(), None);
    assert!(!a.invalidate(k, "t2").await.unwrap());

    // After invalidation any expiry is accepted again.
    let t3 = token("t3", 5);
    assert_eq!(a.put(k, &t3).await.unwrap(), t3);

    // Keys are independent.
    assert_eq!(a.get("wx2:access_token").await.unwrap(), None);
    assert_eq!(a.get("wx1:jsapi_ticket").await.unwrap(), None);

    // One lease holder at a time, across instances.
    let held = a.try_lease(k, MINUTE).await.unwrap().expect("first lease");
    assert_eq!(b.try_lease(k, MINUTE).await.unwrap(), None);
    assert_eq!(a.try_lease(k, MINUTE).await.unwrap(), None);
    // Someone else's fence does not release it.
    b.release_lease(k, &Lease { fence: format!("not-{}", held.fence) }).await.unwrap();
    assert_eq!(b.try_lease(k, MINUTE).await.unwrap(), None);
    // The holder's does.
    a.release_lease(k, &held).await.unwrap();
    let second = b.try_lease(k, MINUTE).await.unwrap().expect("lease after release");
    assert_ne!(second.fence, held.fence);
    b.release_lease(k, &second).await.unwrap();

    // An expired lease can be taken, and its old holder cannot release the new one.
    let old = a.try_lease(k, SHORT).await.unwrap().expect("short lease");
    tokio::time::sleep(PAST_SHORT).await;
    let new = b.try_lease(k, MINUTE).await.unwrap().expect("lease after expiry");
    assert_ne!(new.fence, old.fence);
    a.release_lease(k, &old).await.unwrap();
    assert_eq!(a.try_lease(k, MINUTE).await.unwrap(), None);
    // Nor extend it; the new holder can.
    assert!(!a.renew_lease(k, &old, MINUTE).await.unwrap());
    assert!(b.renew_lease(k, &new, MINUTE).await.unwrap());
    b.release_lease(k, &new).await.unwrap();
    assert!(!b.renew_lease(k, &new, MINUTE).await.unwrap(), "a released lease is not renewed");

    // A renewed lease outlives its first TTL.
    let renewed = a.try_lease(k, SHORT).await.unwrap().expect("short lease");
    assert!(a.renew_lease(k, &renewed, MINUTE).await.unwrap());
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(b.try_lease(k, MINUTE).await.unwrap(), None, "renewed past its first TTL");
    a.release_lease(k, &renewed).await.unwrap();

    // Concurrent tries: exactly one wins.
    let k = "wx3:access_token";
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let s = if i % 2 == 0 { Arc::clone(&a) } else { Arc::clone(&b) };
        tasks.spawn(async move { s.try_lease(k, MINUTE).await.unwrap() });
    }
    let leases = tasks.join_all().await;
    assert_eq!(leases.iter().flatten().count(), 1, "{leases:?}");

    // Concurrent puts: the latest expiry is what stays.
    let k = "wx4:access_token";
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20_i64 {
        let s = if i % 2 == 0 { Arc::clone(&a) } else { Arc::clone(&b) };
        tasks.spawn(async move { s.put(k, &token(&format!("t{i}"), 1_000 + i)).await.unwrap() });
    }
    tasks.join_all().await;
    assert_eq!(a.get(k).await.unwrap(), Some(token("t19", 1_019)));
}

pub(crate) async fn session<S: SessionStore>(a: Arc<S>, b: Arc<S>) {
    let k = "wx1:session:o1";
    assert_eq!(a.load(k).await.unwrap(), None);

    let v1 = serde_json::json!({"step": "ask_name", "tries": 1, "nested": {"list": [1, 2, 3]}, "名": "值"});
    assert_eq!(a.save(k, &v1, 0, MINUTE).await.unwrap(), 1);
    let loaded = b.load(k).await.unwrap().unwrap();
    assert_eq!((loaded.value, loaded.version), (v1.clone(), 1));

    // A second "first write" conflicts.
    match b.save(k, &serde_json::json!({"other": true}), 0, MINUTE).await {
        Err(StoreError::Conflict { expected: 0, found: 1, .. }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    // A write from the version read succeeds; the stale writer then conflicts.
    let v2 = serde_json::json!({"step": "done"});
    assert_eq!(b.save(k, &v2, 1, MINUTE).await.unwrap(), 2);
    match a.save(k, &v1, 1, MINUTE).await {
        Err(StoreError::Conflict { expected: 1, found: 2, .. }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(a.load(k).await.unwrap().unwrap().value, v2);

    // Keys are independent.
    assert_eq!(a.load("wx1:session:o2").await.unwrap(), None);
    assert_eq!(a.load("wx2:session:o1").await.unwrap(), None);

    // Delete; then the key starts over.
    a.delete(k).await.unwrap();
    assert_eq!(b.load(k).await.unwrap(), None);
    assert_eq!(b.save(k, &serde_json::Value::Null, 0, MINUTE).await.unwrap(), 1);
    assert_eq!(a.load(k).await.unwrap().unwrap().value, serde_json::Value::Null);
    a.delete("wx1:session:never-written").await.unwrap();

    // Sessions expire TTL after their last write.
    let k = "wx1:session:short";
    assert_eq!(a.save(k, &v1, 0, SHORT).await.unwrap(), 1);
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(b.load(k).await.unwrap(), None);
    match b.save(k, &v1, 1, MINUTE).await {
        Err(StoreError::Conflict { expected: 1, found: 0, .. }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(b.save(k, &v1, 0, MINUTE).await.unwrap(), 1);

    // Concurrent read-modify-write from both instances: no update is lost.
    let k = "wx1:session:counter";
    let updates = 50_u64;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..updates {
        let s = if i % 2 == 0 { Arc::clone(&a) } else { Arc::clone(&b) };
        tasks.spawn(async move {
            loop {
                let (n, version) = match s.load(k).await.unwrap() {
                    Some(v) => (v.value["n"].as_u64().unwrap(), v.version),
                    None => (0, 0),
                };
                match s.save(k, &serde_json::json!({ "n": n + 1 }), version, MINUTE).await {
                    Ok(_) => break,
                    Err(StoreError::Conflict { .. }) => tokio::task::yield_now().await,
                    Err(e) => panic!("save failed: {e}"),
                }
            }
        });
    }
    tasks.join_all().await;
    let end = a.load(k).await.unwrap().unwrap();
    assert_eq!(end.value["n"].as_u64(), Some(updates));
    assert_eq!(end.version, updates);
}

fn entry(appid: &str, openid: &str, msg_type: &str, at: i64, n: u64) -> DeliveryRecord {
    let mut e = DeliveryRecord::new(0, at);
    e.appid = Some(appid.into());
    e.openid = Some(openid.to_owned());
    e.msg_id = (msg_type != "event").then_some(u64::MAX - n);
    e.dedup_key = Some(format!("{appid}:msg:{openid}:{n}").into());
    e.msg_type = Some(msg_type.to_owned().into());
    e.event = (msg_type == "event").then(|| "subscribe".into());
    e.mode = Some(Mode::Safe);
    e.dedup = Some(DedupOutcome::New);
    e.summary = Some(format!("message {n} 你好"));
    e.raw_xml = Some(format!("<xml><MsgId>{n}</MsgId><Content><![CDATA[x]]></Content></xml>").into());
    e.reply_xml = n.is_multiple_of(2).then(|| "success".to_owned());
    e.status = 200;
    e.latency = Duration::from_micros(n * 7_001);
    e.handler = Some("fallback".into());
    if n == 3 {
        e.outcome = RecordOutcome::HandlerError;
        e.error = Some("handler failed: boom".to_owned());
    }
    e.peer = Some(format!("10.0.0.{}:{}", n % 200, 40_000 + n).parse().unwrap());
    e.query = [
        ("signature".to_owned(), format!("sig{n}")),
        ("timestamp".to_owned(), "1700000000".to_owned()),
        ("nonce".to_owned(), "随机".to_owned()),
    ]
    .into();
    e.headers = [
        ("user-agent".to_owned(), "Mozilla/4.0".to_owned()),
        ("x-forwarded-for".to_owned(), "1.2.3.4".to_owned()),
    ]
    .into();
    e.checks = vec![
        Check { kind: CheckKind::Signature, passed: true, note: "signature matches the Token".into() },
        Check { kind: CheckKind::Decrypt, passed: n != 2, note: format!("解密 {n}").into() },
    ];
    if n % 2 == 1 {
        e.forward = Some(Box::new(forwarded(n)));
    }
    e
}

/// A call to the gateway app that answered a reply.
fn forwarded(n: u64) -> ForwardRecord {
    let sent = format!(r#"{{"version":1,"content":"你好 {n}"}}"#);
    let mut f = ForwardRecord::new(
        ForwardTarget::Url { url: "http://127.0.0.1:5000/hook".into() },
        ForwardResult::Reply,
        sent.as_bytes(),
        Duration::from_micros(1_500 + n),
    );
    f.status = Some(200);
    f.set_answer(br#"{"reply":{"type":"text","content":"hi"}}"#);
    f
}

/// A request refused for its signature: no message, but its query, headers and peer.
fn rejected(at: i64, n: u64) -> DeliveryRecord {
    let mut e = DeliveryRecord::new(0, at);
    e.appid = Some("wx1".into());
    e.mode = Some(Mode::Plain);
    e.outcome = RecordOutcome::Rejected;
    e.status = 403;
    e.rejection = Some(RejectionRecord {
        reason: RejectReason::SignatureMismatch,
        code: Some(-40001),
        param: "signature".into(),
        message: format!("signature does not match ({n})"),
    });
    e.peer = Some("192.0.2.1:5555".parse().unwrap());
    e.query = [("signature".to_owned(), "forged".to_owned())].into();
    e
}

/// The same message delivered again (`dedup`), answered as `outcome` after `latency_ms`.
fn retry(first: &DeliveryRecord, at: i64, dedup: DedupOutcome, latency_ms: u64) -> DeliveryRecord {
    let mut e = first.clone();
    e.received_at_ms = at;
    e.dedup = Some(dedup);
    e.latency = Duration::from_millis(latency_ms);
    let mut query = e.query.to_map();
    query.insert("timestamp".to_owned(), at.to_string());
    e.query = query.into_iter().collect();
    e
}

/// One entry per message: retries and a late follow-up fold into the first delivery's
/// entry, wherever they were written from; rejected requests are entries of their own.
pub(crate) async fn log_entries<L: MessageLog>(a: Arc<L>, b: Arc<L>) {
    // A slow handler: WeChat gives up on the first try (answered `success` at the
    // deadline), the retries join and get the stored reply.
    let mut first = entry("wx5", "o5", "text", 50_000, 500);
    first.outcome = RecordOutcome::Deadline;
    first.latency = Duration::from_millis(4_500);
    first.reply_xml = Some("success".to_owned());
    let mut second = retry(&first, 55_000, DedupOutcome::Joined, 300);
    second.outcome = RecordOutcome::Answered;
    second.reply_xml = Some("<xml>reply</xml>".to_owned());
    let mut third = retry(&first, 60_000, DedupOutcome::Cached, 1);
    third.outcome = RecordOutcome::Answered;
    third.reply_xml = Some("<xml>reply</xml>".to_owned());
    let other = entry("wx5", "o6", "text", 51_000, 501);
    let refused = rejected(52_000, 1);
    let refused_again = rejected(53_000, 2);
    a.append(&[first.clone(), other.clone(), refused.clone()]).await.unwrap();
    b.append(&[second.clone(), refused_again.clone()]).await.unwrap();
    a.append(std::slice::from_ref(&third)).await.unwrap();

    let wx5 = LogQuery { appid: Some("wx5".into()), ..LogQuery::default() };
    let rows = b.query(&wx5).await.unwrap();
    assert_eq!(rows.len(), 4, "every delivery is kept as written");
    let entries = b.entries(&wx5).await.unwrap();
    let got: Vec<_> = entries.iter().map(|(_, e)| (e.openid.clone(), e.attempts)).collect();
    assert_eq!(got, [(Some("o5".to_owned()), 3), (Some("o6".to_owned()), 1)]);
    let (id, e) = &entries[0];
    assert_eq!(*id, rows[0].0, "an entry is numbered by its first delivery");
    assert_eq!(e.outcome, RecordOutcome::Answered, "the delivery that answered in time");
    assert_eq!((e.latency, e.reply_xml.as_deref()), (Duration::from_millis(300), Some("<xml>reply</xml>")));
    assert_eq!((e.dedup, e.received_at_ms), (Some(DedupOutcome::New), 50_000), "the first delivery's");
    assert_eq!(e.query.get("timestamp").unwrap(), "1700000000", "the first delivery's query");
    assert_eq!(e.headers.get("user-agent").unwrap(), "Mozilla/4.0");

    // Rejections: one entry each, with what arrived.
    let all = b.entries(&LogQuery { since_ms: Some(50_000), ..LogQuery::default() }).await.unwrap();
    let refusals: Vec<_> =
        all.iter().filter(|(_, e)| e.outcome == RecordOutcome::Rejected).map(|(_, e)| e.clone()).collect();
    assert_eq!(refusals, [refused, refused_again]);

    // Paging: a limit counts entries, and the retries of the last one come with it; the
    // next page does not show them again.
    let page = LogQuery { limit: Some(1), ..wx5.clone() };
    let first_page = a.entries(&page).await.unwrap();
    assert_eq!(first_page.iter().map(|(_, e)| e.attempts).collect::<Vec<_>>(), [3]);
    let next = LogQuery { after_id: Some(first_page[0].0), ..wx5.clone() };
    let rest = a.entries(&next).await.unwrap();
    assert_eq!(rest.iter().map(|(_, e)| e.openid.as_deref()).collect::<Vec<_>>(), [Some("o6")]);

    // A late follow-up ends its message's entry.
    let mut slow = entry("wx6", "o7", "text", 70_000, 700);
    slow.outcome = RecordOutcome::Deadline;
    let mut late = slow.clone();
    late.outcome = RecordOutcome::Late { sink: Some(SinkOutcome::WindowExpired) };
    late.reply_xml = Some("<xml>late</xml>".to_owned());
    // The app answered after the deadline: the follow-up carries the forwarded call.
    late.forward = Some(Box::new(forwarded(700)));
    a.append(&[slow]).await.unwrap();
    b.append(&[late]).await.unwrap();
    let wx6 = b.entries(&LogQuery { appid: Some("wx6".into()), ..LogQuery::default() }).await.unwrap();
    assert_eq!(wx6.len(), 1);
    assert_eq!(wx6[0].1.outcome, RecordOutcome::Late { sink: Some(SinkOutcome::WindowExpired) });
    assert_eq!((wx6[0].1.attempts, wx6[0].1.reply_xml.as_deref()), (1, Some("<xml>late</xml>")));
    assert_eq!(wx6[0].1.forward.as_deref(), Some(&forwarded(700)), "the late call to the app");

    // A caller that hung up before the answer: stored and read back as such; WeChat's retry,
    // answered from the reply cache, folds into its entry.
    let mut hung_up = entry("wx7", "o8", "text", 80_000, 800);
    hung_up.outcome = RecordOutcome::HungUp;
    (hung_up.status, hung_up.reply_xml) = (0, None);
    let mut cached = retry(&hung_up, 85_000, DedupOutcome::Cached, 1);
    cached.outcome = RecordOutcome::Answered;
    cached.reply_xml = Some("<xml>reply</xml>".to_owned());
    a.append(std::slice::from_ref(&hung_up)).await.unwrap();
    let wx7 = LogQuery { appid: Some("wx7".into()), ..LogQuery::default() };
    let rows = b.query(&wx7).await.unwrap();
    assert_eq!(rows.iter().map(|(_, e)| e).collect::<Vec<_>>(), [&hung_up]);
    b.append(std::slice::from_ref(&cached)).await.unwrap();
    let wx7 = a.entries(&wx7).await.unwrap();
    assert_eq!(wx7.len(), 1);
    assert_eq!((wx7[0].1.outcome.clone(), wx7[0].1.attempts), (RecordOutcome::Answered, 2));
}

pub(crate) async fn log<L: MessageLog>(a: Arc<L>, b: Arc<L>) {
    a.append(&[]).await.unwrap();
    assert_eq!(b.query(&LogQuery::default()).await.unwrap(), []);

    let entries = vec![
        entry("wx1", "o1", "text", 1_000, 0),
        entry("wx1", "o2", "event", 2_000, 1),
        entry("wx2", "o1", "text", 3_000, 2),
        entry("wx1", "o1", "image", 4_000, 3),
    ];
    a.append(&entries[..2]).await.unwrap();
    b.append(&entries[2..]).await.unwrap();

    // Everything comes back as written, in order, with growing ids.
    let all = b.query(&LogQuery::default()).await.unwrap();
    assert_eq!(all.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(), entries);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "ids grow: {:?}", all.iter().map(|r| r.0));
    let ids: Vec<i64> = all.iter().map(|r| r.0).collect();

    let summaries = |rows: Vec<(i64, DeliveryRecord)>| {
        rows.into_iter().map(|(_, e)| e.summary.unwrap_or_default()).collect::<Vec<_>>()
    };
    let q = |f: fn(&mut LogQuery)| {
        let mut q = LogQuery::default();
        f(&mut q);
        q
    };
    let s = |ns: &[u64]| ns.iter().map(|n| format!("message {n} 你好")).collect::<Vec<_>>();

    assert_eq!(summaries(a.query(&q(|q| q.appid = Some("wx1".into()))).await.unwrap()), s(&[0, 1, 3]));
    assert_eq!(summaries(a.query(&q(|q| q.appid = Some("wx3".into()))).await.unwrap()), s(&[]));
    assert_eq!(summaries(a.query(&q(|q| q.openid = Some("o1".into()))).await.unwrap()), s(&[0, 2, 3]));
    assert_eq!(summaries(a.query(&q(|q| q.msg_type = Some("event".into()))).await.unwrap()), s(&[1]));
    assert_eq!(summaries(a.query(&q(|q| q.since_ms = Some(2_000))).await.unwrap()), s(&[1, 2, 3]));
    assert_eq!(summaries(a.query(&q(|q| q.limit = Some(2))).await.unwrap()), s(&[0, 1]));
    assert_eq!(summaries(a.query(&q(|q| q.limit = Some(0))).await.unwrap()), s(&[]));
    let both = LogQuery { appid: Some("wx1".into()), openid: Some("o1".into()), ..LogQuery::default() };
    assert_eq!(summaries(a.query(&both).await.unwrap()), s(&[0, 3]));

    // Paging on with after_id.
    let page = LogQuery { after_id: Some(ids[1]), limit: Some(1), ..LogQuery::default() };
    let rows = a.query(&page).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [ids[2]]);
    let page = LogQuery { after_id: Some(ids[3]), ..LogQuery::default() };
    assert_eq!(a.query(&page).await.unwrap(), []);

    // A bigger batch keeps its order.
    let batch: Vec<DeliveryRecord> =
        (10..110).map(|n| entry("wx9", "o9", "text", 10_000 + n as i64, n)).collect();
    a.append(&batch).await.unwrap();
    let rows = b.query(&q(|q| q.appid = Some("wx9".into()))).await.unwrap();
    assert_eq!(rows.into_iter().map(|(_, e)| e).collect::<Vec<_>>(), batch);

    log_entries(a.clone(), b.clone()).await;
    retention(a, b).await;
}

/// `delete_before`, as a retention period calls it: the older rows go (on every instance),
/// the others stay as they were, ids included, and new rows still come after them.
async fn retention<L: MessageLog>(a: Arc<L>, b: Arc<L>) {
    let before = b.query(&LogQuery::default()).await.unwrap();
    // Inside the batch of a hundred: a SQLite segment holding older and newer rows.
    let cut = 10_050;
    let gone = before.iter().filter(|(_, e)| e.received_at_ms < cut).count() as u64;
    assert!(gone > 0 && gone < before.len() as u64, "{gone} of {}", before.len());
    assert_eq!(a.delete_before(cut).await.unwrap(), gone);
    let kept: Vec<_> = before.iter().filter(|(_, e)| e.received_at_ms >= cut).cloned().collect();
    assert_eq!(b.query(&LogQuery::default()).await.unwrap(), kept);
    assert_eq!(b.delete_before(cut).await.unwrap(), 0, "nothing older is left");
    let last = kept.last().map(|(id, _)| *id);
    a.append(&[entry("wx9", "o9", "text", 1, 999)]).await.unwrap();
    let new = b.query(&LogQuery { after_id: last, ..LogQuery::default() }).await.unwrap();
    assert_eq!(new.len(), 1, "a row appended after a deletion comes after the kept ones");
    assert_eq!(a.delete_before(cut).await.unwrap(), 1, "by when it arrived, not by id");
}

/// The Open Platform state (`wemp_store::component`) on a session store: `a` and `b` are
/// two instances sharing it.
pub(crate) async fn component(a: Arc<dyn SessionStore>, b: Arc<dyn SessionStore>) {
    use wemp_proto::Secret;
    use wemp_store::component::{Authorizer, ComponentState, Profile};
    let (one, two) = (ComponentState::new(a, "wxcomp"), ComponentState::new(b.clone(), "wxcomp"));
    let other = ComponentState::new(b, "wxothercomp");

    // The ticket: none yet, then the latest by arrival time, whoever wrote it.
    assert_eq!(one.ticket().await.unwrap(), None);
    assert!(one.save_ticket(&Secret::new("ticket@@@1"), 1_000).await.unwrap());
    assert!(two.save_ticket(&Secret::new("ticket@@@2"), 2_000).await.unwrap());
    assert!(!one.save_ticket(&Secret::new("ticket@@@late"), 1_500).await.unwrap(), "an older push loses");
    let t = one.ticket().await.unwrap().unwrap();
    assert_eq!((t.ticket.expose(), t.received_at_ms), ("ticket@@@2", 2_000));
    assert_eq!(other.ticket().await.unwrap(), None, "components are separate");

    // Authorizers: stored by one instance, listed by the other.
    assert_eq!(two.authorizers().await.unwrap(), vec![]);
    one.save_authorizer(Authorizer::new("wxa", Secret::new("refresh@@@a1"), vec![1, 15], 10)).await.unwrap();
    let a = two.authorizer("wxa").await.unwrap().unwrap();
    assert_eq!(
        (a.refresh_token.expose(), a.func_scopes.as_slice(), a.authorized_at_ms),
        ("refresh@@@a1", &[1, 15][..], 10)
    );
    assert!(!format!("{a:?}").contains("refresh@@@a1"), "Debug hides the refresh token");

    let profile = Profile {
        nick_name: Some("小店".into()),
        user_name: Some("gh_a".into()),
        principal_name: Some("某某有限公司".into()),
    };
    assert!(two.set_profile("wxa", &profile, 20).await.unwrap());
    assert!(one.set_refresh_token("wxa", &Secret::new("refresh@@@a2"), 30).await.unwrap());
    assert!(!one.set_refresh_token("wxnobody", &Secret::new("x"), 30).await.unwrap());
    // updateauthorized: new scopes and token; the first authorization time and the profile stay.
    two.save_authorizer(Authorizer::new("wxa", Secret::new("refresh@@@a3"), vec![1], 40)).await.unwrap();
    let a = one.authorizer("wxa").await.unwrap().unwrap();
    assert_eq!(a.refresh_token.expose(), "refresh@@@a3");
    assert_eq!((a.authorized_at_ms, a.updated_at_ms, a.func_scopes.clone()), (10, 40, vec![1]));
    assert_eq!(a.nick_name.as_deref(), Some("小店"));
    assert_eq!(a.principal_name.as_deref(), Some("某某有限公司"));

    // Concurrent authorizations on both instances: none is lost from the list.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let s = if i % 2 == 0 { one.clone() } else { two.clone() };
        tasks.push(tokio::spawn(async move {
            s.save_authorizer(Authorizer::new(format!("wx{i:02}"), Secret::new(format!("r{i}")), vec![], i))
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let listed: Vec<String> = one.authorizers().await.unwrap().into_iter().map(|a| a.appid).collect();
    assert_eq!(listed.len(), 13, "{listed:?}");
    assert_eq!(listed[0], "wxa");
    for i in 0..12 {
        assert!(listed.contains(&format!("wx{i:02}")), "{listed:?}");
    }

    // Concurrent refresh-token rotations of one authorizer: the last write is whole.
    let (r1, r2) = (Secret::new("from-one"), Secret::new("from-two"));
    let (x, y) =
        tokio::join!(one.set_refresh_token("wx00", &r1, 50), two.set_refresh_token("wx00", &r2, 50),);
    assert!(x.unwrap() && y.unwrap());
    let r = two.authorizer("wx00").await.unwrap().unwrap().refresh_token;
    assert!(["from-one", "from-two"].contains(&r.expose()));

    // unauthorized.
    assert!(two.remove_authorizer("wxa").await.unwrap());
    assert!(!one.remove_authorizer("wxa").await.unwrap());
    assert_eq!(one.authorizer("wxa").await.unwrap(), None);
    assert_eq!(one.authorizers().await.unwrap().len(), 12);

    component_codes(&one, &two, &other).await;
}

/// Authorization codes (`ComponentState::claim_code`): one instance exchanges a code, the
/// other waits for it and then learns the authorizer it became, never exchanging it again.
async fn component_codes(
    one: &wemp_store::ComponentState,
    two: &wemp_store::ComponentState,
    other: &wemp_store::ComponentState,
) {
    use std::time::Duration;
    use wemp_store::component::CodeClaim;
    let lease = Duration::from_secs(30);
    let code = "queryauthcode@@@first";
    assert_eq!(one.claim_code(code, lease).await.unwrap(), CodeClaim::Claimed);
    assert_eq!(two.claim_code(code, lease).await.unwrap(), CodeClaim::Exchanging, "held by one");
    assert_eq!(
        one.claim_code(code, lease).await.unwrap(),
        CodeClaim::Exchanging,
        "held, even for its holder"
    );
    assert_eq!(other.claim_code(code, lease).await.unwrap(), CodeClaim::Claimed, "components are separate");
    one.code_exchanged(code, "wxa").await.unwrap();
    assert_eq!(two.claim_code(code, lease).await.unwrap(), CodeClaim::Exchanged("wxa".into()));
    two.release_code(code).await.unwrap();
    assert_eq!(one.claim_code(code, lease).await.unwrap(), CodeClaim::Exchanged("wxa".into()), "kept");

    // A failed exchange gives the code up: the other instance claims it.
    let code = "queryauthcode@@@second";
    assert_eq!(two.claim_code(code, lease).await.unwrap(), CodeClaim::Claimed);
    two.release_code(code).await.unwrap();
    assert_eq!(one.claim_code(code, lease).await.unwrap(), CodeClaim::Claimed);

    // A claim whose holder never finished lapses after its lease.
    let code = "queryauthcode@@@third";
    let short = Duration::from_millis(300);
    assert_eq!(one.claim_code(code, short).await.unwrap(), CodeClaim::Claimed);
    assert_eq!(two.claim_code(code, short).await.unwrap(), CodeClaim::Exchanging);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(two.claim_code(code, lease).await.unwrap(), CodeClaim::Claimed, "the lease lapsed");

    // Racing claims on both instances: exactly one holds the code.
    let code = "queryauthcode@@@raced";
    let (x, y) = tokio::join!(one.claim_code(code, lease), two.claim_code(code, lease));
    let claims = [x.unwrap(), y.unwrap()];
    assert_eq!(claims.iter().filter(|c| **c == CodeClaim::Claimed).count(), 1, "{claims:?}");
}
