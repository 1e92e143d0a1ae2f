//! Observers: one record per request, a follow-up for late replies, rejections with their
//! reference code, the message-log adapter and the broadcast channel.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use wemp_proto::{Article, Mode, Reply};
use wemp_server::extract::Content;
use wemp_server::{
    BroadcastObserver, DedupOutcome, DeliveryRecord, ErrorPolicy, MessageLogObserver, RecordOutcome, Router,
    SinkOutcome,
};
use wemp_store::memory::MemoryMessageLog;
use wemp_store::{LogQuery, LogWriter, LogWriterConfig, MessageLog};

use crate::common::*;

/// Collects records.
#[derive(Clone, Default)]
struct Records(Arc<Mutex<Vec<Arc<DeliveryRecord>>>>);

impl Records {
    fn observer(&self) -> impl Fn(&Arc<DeliveryRecord>) + Send + Sync + 'static {
        let all = self.0.clone();
        move |r| all.lock().unwrap().push(r.clone())
    }
    fn all(&self) -> Vec<Arc<DeliveryRecord>> {
        self.0.lock().unwrap().clone()
    }
}

fn echo() -> Router {
    Router::new()
        .on_text("boom", || async { Err::<Reply, _>(std::io::Error::other("database is down")) })
        .fallback(|Content(text): Content| async move { Reply::text(format!("echo: {text}")) })
}

#[tokio::test]
async fn a_delivery_and_its_retry_are_recorded() {
    let records = Records::default();
    let svc = builder(echo()).observer(records.observer()).build().unwrap();
    let xml = text_xml("hello", 77);

    let (status, body) = send(&svc, wechat_post(Mode::Safe, &xml)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply_text(&body).as_deref(), Some("echo: hello"));
    let (_, again) = send(&svc, wechat_post(Mode::Safe, &xml)).await;
    assert_eq!(reply_text(&again).as_deref(), Some("echo: hello"));

    let all = records.all();
    assert_eq!(all.len(), 2);
    let first = &all[0];
    assert_eq!(first.appid.as_deref(), Some(APPID));
    assert_eq!(first.openid.as_deref(), Some(OPENID));
    assert_eq!(first.msg_type.as_deref(), Some("text"));
    assert_eq!(first.event, None);
    assert_eq!(first.msg_id, Some(77));
    assert_eq!(first.mode, Some(Mode::Safe));
    assert_eq!(first.dedup, Some(DedupOutcome::New));
    assert_eq!(first.dedup_key.as_deref(), Some(format!("{APPID}:msg:{OPENID}:77").as_str()));
    assert_eq!(first.raw_xml.as_deref(), Some(xml.as_str()), "the decrypted XML, as sent");
    assert_eq!(first.summary.as_deref(), Some("hello"));
    assert_eq!(first.outcome, RecordOutcome::Answered);
    assert_eq!(first.status, 200);
    assert_eq!(first.handler.as_deref(), Some("fallback"));
    assert_eq!(first.error, None);
    let reply = first.reply_xml.as_deref().expect("reply recorded");
    assert!(reply.contains("<Content><![CDATA[echo: hello]]></Content>"), "{reply}");
    assert!(!reply.contains("<Encrypt>"), "the plain reply, before encryption");

    let second = &all[1];
    assert_eq!(second.dedup, Some(DedupOutcome::Cached));
    assert_eq!(second.reply_xml, first.reply_xml);
    assert_eq!(second.handler, None, "no handler ran for the retry");
    assert_ne!(second.id, first.id);

    let json = serde_json::to_value(&**first).unwrap();
    assert_eq!(json["outcome"]["kind"], "answered");
    assert_eq!(json["mode"], "safe");
    assert_eq!(json["dedup"], "new");
}

#[tokio::test]
async fn handler_errors_and_empty_replies() {
    let records = Records::default();
    let router = Router::new()
        .on_text("boom", || async { Err::<Reply, _>(std::io::Error::other("database is down")) })
        .on_text("quiet", || async { Reply::None })
        .fallback(|| async { Reply::text("x") });
    let svc = builder(router).observer(records.observer()).build().unwrap();
    let (_, body) = send(&svc, wechat_post(Mode::Plain, &text_xml("boom", 1))).await;
    assert_eq!(body, "success");
    let (_, body) = send(&svc, wechat_post(Mode::Plain, &text_xml("quiet", 2))).await;
    assert_eq!(body, "success");

    let all = records.all();
    assert_eq!(all[0].outcome, RecordOutcome::HandlerError);
    assert_eq!(all[0].error.as_deref(), Some("database is down"));
    assert!(all[0].handler.as_deref().unwrap().contains("boom"), "{:?}", all[0].handler);
    assert_eq!(all[0].mode, Some(Mode::Plain));
    assert_eq!(all[1].outcome, RecordOutcome::Answered);
    assert_eq!(all[1].reply_xml.as_deref(), Some("success"));
    assert_eq!(all[1].error, None);
}

#[tokio::test]
async fn rejections_carry_the_reference_code_and_no_secret() {
    let records = Records::default();
    let svc = builder(echo()).observer(records.observer()).build().unwrap();
    let ok = wechat_post(Mode::Safe, &text_xml("x", 1));
    let query = ok.uri().query().unwrap().replace("msg_signature=", "msg_signature=0");
    let body = ok.into_body();
    let req = Request::post(format!("/?{query}")).body(body).unwrap();
    let (status, _) = send(&svc, req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let all = records.all();
    assert_eq!(all.len(), 1);
    let r = &all[0];
    assert_eq!(r.outcome, RecordOutcome::Rejected);
    assert_eq!(r.status, 403);
    assert_eq!(r.mode, Some(Mode::Safe));
    assert_eq!(r.appid.as_deref(), Some(APPID));
    assert_eq!(r.raw_xml, None, "nothing was decrypted");
    let rej = r.rejection.as_ref().unwrap();
    assert_eq!(rej.code, Some(-40001));
    assert_eq!(rej.param, "msg_signature");
    assert!(rej.message.contains("token of length 8"), "{}", rej.message);
    let json = serde_json::to_string(&**r).unwrap();
    assert!(json.contains("signature_mismatch"), "{json}");
    assert!(!json.contains(TOKEN) && !json.contains(KEY), "a secret leaked: {json}");
}

#[tokio::test]
async fn url_verification_is_recorded() {
    let records = Records::default();
    let svc = builder(echo()).observer(records.observer()).build().unwrap();
    let sig = wemp_proto::signature::sign(TOKEN, &NOW.to_string(), "7");
    let req =
        Request::get(format!("/?signature={sig}&timestamp={NOW}&nonce=7&echostr=hi")).body(Body::empty());
    let (status, body) = send(&svc, req.unwrap()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "hi"));
    assert_eq!(records.all()[0].outcome, RecordOutcome::Verified);
}

#[tokio::test(start_paused = true)]
async fn a_late_reply_gets_a_follow_up_record() {
    let records = Records::default();
    let sink = RecordingSink { outcome: Some(SinkOutcome::WindowExpired), ..RecordingSink::default() };
    let router = Router::new().fallback(|Content(text): Content| async move {
        tokio::time::sleep(Duration::from_secs(7)).await;
        Reply::text(format!("slow: {text}"))
    });
    let svc = builder(router).late_sink(sink.clone()).observer(records.observer()).build().unwrap();
    let (_, body) = send(&svc, wechat_post(Mode::Safe, &text_xml("hello", 5))).await;
    assert_eq!(body, "success");
    let all = records.all();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].outcome, RecordOutcome::Deadline);
    assert_eq!(all[0].latency, Duration::from_millis(4500));

    assert!(svc.drain(Duration::from_secs(10)).await);
    let all = records.all();
    assert_eq!(all.len(), 2);
    let late = &all[1];
    assert_eq!(late.id, all[0].id, "the follow-up names its delivery");
    assert_eq!(late.outcome, RecordOutcome::Late { sink: Some(SinkOutcome::WindowExpired) });
    assert_eq!(late.outcome.label(), "late:window_expired");
    assert_eq!(late.latency, Duration::from_secs(7));
    assert!(late.reply_xml.as_deref().unwrap().contains("slow: hello"));
    assert_eq!(late.raw_xml, all[0].raw_xml);
    assert_eq!(late.openid.as_deref(), Some(OPENID));
    assert_eq!(sink.replies().len(), 1);
}

/// A caller that hangs up while the handler runs: its record waits for the handler, so it
/// holds what the handler did (here the call to a gateway app it records), and goes out
/// before the reply is handed to a retry; a handler still running at the deadline lets the
/// record go at the deadline, and the late follow-up carries the call.
#[tokio::test(start_paused = true)]
async fn a_caller_that_hangs_up_is_recorded_with_what_its_handler_did() {
    use wemp_server::{Ctx, ForwardRecord, ForwardResult, ForwardTarget};
    let records = Records::default();
    let router = Router::new().fallback(|ctx: Ctx, Content(text): Content| async move {
        let secs: u64 = text.parse().unwrap();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let target = ForwardTarget::Url { url: "http://127.0.0.1:9/app".into() };
        ctx.record_forward(ForwardRecord::new(
            target,
            ForwardResult::Reply,
            b"{}",
            Duration::from_secs(secs),
        ));
        Reply::text(format!("after {secs} s"))
    });
    let svc = builder(router).observer(records.observer()).build().unwrap();

    // The handler takes 2 s; the caller gives up after 1 s.
    let first = wechat_post(Mode::Safe, &text_xml("2", 8));
    assert!(tokio::time::timeout(Duration::from_secs(1), send(&svc, first)).await.is_err());
    assert!(records.all().is_empty(), "the record waits for the handler");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let all = records.all();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].outcome, RecordOutcome::HungUp);
    assert_eq!(all[0].latency, Duration::from_secs(1), "how long the caller waited");
    assert_eq!(all[0].status, 0);
    // What arrived went with it: kept with the message, before the caller hung up.
    assert!(all[0].query.contains_key("msg_signature"), "{:?}", all[0].query);
    assert!(
        all[0].raw_xml.as_deref().is_some_and(|x| x.contains("<MsgId>8</MsgId>")),
        "{:?}",
        all[0].raw_xml
    );
    let forward = all[0].forward.as_deref().expect("the handler's call to the app");
    assert_eq!(forward.latency, Duration::from_secs(2));
    // WeChat's retry is answered from the reply cache, after the record.
    let (_, body) = send(&svc, wechat_post(Mode::Safe, &text_xml("2", 8))).await;
    assert_eq!(reply_text(&body).as_deref(), Some("after 2 s"));
    let all = records.all();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].dedup, Some(DedupOutcome::Cached));

    // The handler takes 7 s: the record goes at the deadline (4.5 s), the follow-up at 7 s.
    let slow = wechat_post(Mode::Safe, &text_xml("7", 9));
    assert!(tokio::time::timeout(Duration::from_secs(1), send(&svc, slow)).await.is_err());
    tokio::time::sleep(Duration::from_millis(3_600)).await;
    let all = records.all();
    assert_eq!(all.len(), 3, "the deadline passed: the record went");
    assert_eq!(all[2].outcome, RecordOutcome::HungUp);
    assert!(all[2].forward.is_none(), "the handler had not called the app yet");
    assert!(svc.drain(Duration::from_secs(10)).await);
    let all = records.all();
    assert_eq!(all.len(), 4);
    assert!(matches!(all[3].outcome, RecordOutcome::Late { .. }), "{:?}", all[3].outcome);
    assert_eq!(all[3].id, all[2].id);
    assert_eq!(all[3].forward.as_deref().map(|f| f.latency), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn message_log_observer_writes_one_entry_per_message() {
    let log = Arc::new(MemoryMessageLog::new(100));
    let writer = LogWriter::spawn(log.clone(), LogWriterConfig::default());
    let svc = builder(echo()).observer(MessageLogObserver::new(writer.clone())).build().unwrap();
    let xml = text_xml("hello", 9);
    for _ in 0..3 {
        send(&svc, wechat_post(Mode::Safe, &xml)).await;
    }
    send(&svc, wechat_post(Mode::Safe, &text_xml("boom", 10))).await;
    writer.flush().await;

    let rows = log.query(&LogQuery::default()).await.unwrap();
    assert_eq!(rows.len(), 2, "retries are not logged by default: {rows:?}");
    let e = &rows[0].1;
    assert_eq!((e.appid.as_deref(), e.openid.as_deref(), e.msg_id), (Some(APPID), Some(OPENID), Some(9)));
    assert_eq!(
        (e.msg_type.as_deref(), e.mode, e.dedup),
        (Some("text"), Some(Mode::Safe), Some(DedupOutcome::New))
    );
    assert_eq!(e.outcome, RecordOutcome::Answered);
    assert_eq!(e.raw_xml.as_deref(), Some(xml.as_str()));
    assert_eq!(e.summary.as_deref(), Some("hello"));
    assert!(e.reply_xml.as_deref().unwrap().contains("echo: hello"));
    assert_eq!(rows[1].1.outcome, RecordOutcome::HandlerError);
    assert_eq!(rows[1].1.error.as_deref(), Some("database is down"));
    assert_eq!(writer.stats().written(), 2);
}

#[tokio::test]
async fn broadcast_observer_fans_out() {
    let live = BroadcastObserver::new(16);
    let mut a = live.subscribe();
    let mut b = live.subscribe();
    assert_eq!(live.receiver_count(), 2);
    let svc = builder(echo()).observer(live.clone()).build().unwrap();
    send(&svc, wechat_post(Mode::Safe, &text_xml("hi", 3))).await;
    let ra = a.try_recv().unwrap();
    let rb = b.try_recv().unwrap();
    assert!(Arc::ptr_eq(&ra, &rb), "one shared record");
    assert_eq!(ra.msg_id, Some(3));
    drop((a, b));
    // No subscriber left: observing still works.
    send(&svc, wechat_post(Mode::Safe, &text_xml("hi", 4))).await;
}

#[tokio::test]
async fn a_handler_can_name_the_rule_it_applied() {
    let records = Records::default();
    let router = Router::new().fallback(|Content(text): Content, ctx: wemp_server::Ctx| async move {
        ctx.set_rule_name(format!("keyword:{text}"));
        Reply::text("named")
    });
    let svc = builder(router).observer(records.observer()).build().unwrap();
    send(&svc, wechat_post(Mode::Plain, &text_xml("help", 5))).await;
    let all = records.all();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].handler.as_deref(), Some("keyword:help"), "the handler's name wins over `fallback`");
}

#[tokio::test]
async fn a_reply_wechat_would_refuse_is_a_handler_error() {
    // Two articles answering a user's message (WeChat allows one) cannot be sent: the
    // delivery is a handler error for the metrics, the observers and the error policy,
    // not a quiet `success` that looks like a handler choosing not to reply.
    let records = Records::default();
    let two = || async {
        Reply::news(vec![Article::new("a", "", "", "https://a"), Article::new("b", "", "", "https://b")])
    };
    let svc = builder(Router::new().fallback(two))
        .observer(records.observer())
        .error_policy(ErrorPolicy::Apology("sorry, try later".into()))
        .build()
        .unwrap();
    let (_, body) = send(&svc, wechat_post(Mode::Safe, &text_xml("news", 1))).await;
    assert_eq!(reply_text(&body).as_deref(), Some("sorry, try later"));
    let all = records.all();
    assert_eq!(all[0].outcome, RecordOutcome::HandlerError);
    let error = all[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("news reply has 2 articles; 1 allowed"), "{error}");
    assert!(svc.metrics_text().contains("wemp_handler_errors_total 1"), "{}", svc.metrics_text());
}

/// Each record keeps what arrived: the query, the headers (less `Cookie` and
/// `Authorization`) and the peer address — a refused request too.
#[tokio::test]
async fn records_keep_the_query_headers_and_peer_as_received() {
    let records = Records::default();
    let svc = builder(echo()).observer(records.observer()).build().unwrap();
    let peer: std::net::SocketAddr = "203.0.113.7:50123".parse().unwrap();
    let mut req = wechat_post(Mode::Safe, &text_xml("hello", 11));
    let headers = req.headers_mut();
    headers.insert("user-agent", "Mozilla/4.0".parse().unwrap());
    headers.append("x-forwarded-for", "1.2.3.4".parse().unwrap());
    headers.append("x-forwarded-for", "5.6.7.8".parse().unwrap());
    headers.insert("cookie", "session=secret".parse().unwrap());
    headers.insert("authorization", "Bearer secret".parse().unwrap());
    req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
    send(&svc, req).await;

    let mut forged = Request::post("/?signature=0000&timestamp=1&nonce=n%20x&openid=o1")
        .body(Body::from("<xml/>"))
        .unwrap();
    // A refused request's record keeps its peer too (set when the record is started, kept
    // when what arrived is kept at the end).
    let forger: std::net::SocketAddr = "10.9.8.7:4321".parse().unwrap();
    forged.extensions_mut().insert(axum::extract::ConnectInfo(forger));
    let (status, _) = send(&svc, forged).await;
    assert!(status.is_client_error());

    let all = records.all();
    let ok = &all[0];
    assert_eq!(ok.outcome, RecordOutcome::Answered);
    for name in ["signature", "timestamp", "nonce", "encrypt_type", "msg_signature"] {
        assert!(ok.query.contains_key(name), "{name} in {:?}", ok.query);
    }
    assert_eq!(ok.headers.get("user-agent").unwrap(), "Mozilla/4.0");
    assert_eq!(ok.headers.get("x-forwarded-for").unwrap(), "1.2.3.4, 5.6.7.8");
    assert!(
        !ok.headers.contains_key("cookie") && !ok.headers.contains_key("authorization"),
        "{:?}",
        ok.headers
    );
    assert_eq!(ok.peer, Some(peer));

    let refused = &all[1];
    assert_eq!(refused.outcome, RecordOutcome::Rejected);
    assert_eq!(refused.peer, Some(forger));
    assert_eq!(refused.query.get("signature").unwrap(), "0000");
    assert_eq!(refused.query.get("nonce").unwrap(), "n x", "percent-decoded");
    assert_eq!(refused.query.get("openid").unwrap(), "o1");
    let json = serde_json::to_value(refused.as_ref()).unwrap();
    assert_eq!(json["query"]["timestamp"], "1", "{json}");
    assert_eq!(json["attempts"], 1, "{json}");
}

/// MsgIds exceed 2^53: in JSON they are strings, and read back as numbers again.
#[tokio::test]
async fn msg_ids_are_strings_in_json() {
    let records = Records::default();
    let svc = builder(echo()).observer(records.observer()).build().unwrap();
    send(&svc, wechat_post(Mode::Safe, &text_xml("hello", u64::MAX - 1))).await;
    let record = records.all()[0].clone();
    let json = serde_json::to_value(record.as_ref()).unwrap();
    assert_eq!(json["msg_id"], (u64::MAX - 1).to_string());
    let back: DeliveryRecord = serde_json::from_value(json).unwrap();
    let mut expected = DeliveryRecord::clone(&record);
    expected.latency = Duration::from_micros(record.latency.as_micros() as u64); // JSON keeps µs
    assert_eq!(back, expected);
}
