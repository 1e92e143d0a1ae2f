//! The customer-service late-reply sink against the fake API platform: a reply that
//! misses a short budget is sent as a customer-service message; a closed 48-hour window
//! and an exhausted quota come back as their own outcomes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use wemp_proto::{Mode, Reply};
use wemp_server::extract::Content;
use wemp_server::{
    Account, CustomerServiceSink, DeliveryRecord, RecordOutcome, Router, SinkOutcome, WechatService,
};
use wemp_testkit::platform::{FakePlatform, PlatformConfig};

use crate::common::*;

fn late_outcomes(records: &Mutex<Vec<Arc<DeliveryRecord>>>) -> Vec<Option<SinkOutcome>> {
    records
        .lock()
        .unwrap()
        .iter()
        .filter_map(|r| match &r.outcome {
            RecordOutcome::Late { sink } => Some(sink.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_replies_go_out_as_customer_service_messages() {
    let mut cfg = PlatformConfig::default();
    cfg.cs_message_limit = 2;
    let platform = FakePlatform::start_with(cfg).await;
    let client = wemp_client::Client::builder(platform.appid())
        .secret(platform.secret())
        .all_base_urls(platform.url())
        .build()
        .unwrap();
    let router = Router::new()
        .on_text("transfer", || async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            Reply::TransferCustomerService { kf_account: None }
        })
        .fallback(|Content(text): Content| async move {
            // Misses the 50 ms budget below.
            tokio::time::sleep(Duration::from_millis(150)).await;
            Reply::text(format!("late: {text}"))
        });
    let records: Arc<Mutex<Vec<Arc<DeliveryRecord>>>> = Arc::default();
    let seen = records.clone();
    let svc = WechatService::builder()
        .account(Account::new(platform.appid(), TOKEN))
        .router(router)
        .clock(wemp_server::FixedClock(NOW))
        .budget(Duration::from_millis(50))
        .late_sink(CustomerServiceSink::new(client))
        .observer(move |r: &Arc<DeliveryRecord>| seen.lock().unwrap().push(r.clone()))
        .build()
        .unwrap();

    let deliver = |content: &str, id: u64| {
        let svc = svc.clone();
        let req = wechat_post(Mode::Plain, &text_xml(content, id));
        async move {
            let (status, body) = send(&svc, req).await;
            assert_eq!((status.as_u16(), body.as_str()), (200, "success"), "answered at the budget");
            assert!(svc.drain(Duration::from_secs(10)).await, "the late reply was handed over");
        }
    };

    deliver("one", 1).await;
    let sent = platform.sent_messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0], json!({"touser": OPENID, "msgtype": "text", "text": {"content": "late: one"}}));

    deliver("two", 2).await;
    // The limit of 2 messages since the user last wrote is reached: 45047.
    deliver("three", 3).await;
    assert_eq!(platform.sent_messages().len(), 2);

    platform.user_interacted(OPENID);
    platform.close_cs_window(OPENID);
    // 48 hours passed: 45015.
    deliver("four", 4).await;
    // Transfer to customer service has no message form.
    deliver("transfer", 5).await;
    assert_eq!(platform.sent_messages().len(), 2);

    assert_eq!(
        late_outcomes(&records),
        vec![
            Some(SinkOutcome::Delivered),
            Some(SinkOutcome::Delivered),
            Some(SinkOutcome::QuotaExceeded),
            Some(SinkOutcome::WindowExpired),
            Some(SinkOutcome::Unsupported),
        ]
    );
    let metrics = svc.metrics_text();
    assert!(metrics.contains("wemp_late_replies_total{outcome=\"window_expired\"} 1"), "{metrics}");
}

#[tokio::test]
async fn an_account_without_a_client_is_reported() {
    let platform = FakePlatform::start().await;
    let client = wemp_client::Client::builder(platform.appid())
        .secret(platform.secret())
        .all_base_urls(platform.url());
    let sink = CustomerServiceSink::new(client.build().unwrap());
    assert!(sink.client(&platform.appid()).is_some());
    let out = wemp_server::LateReplySink::deliver(&sink, "wx_other", OPENID, Reply::text("x")).await;
    assert!(matches!(out, SinkOutcome::Failed { errcode: None, .. }), "{out:?}");
    assert!(platform.requests().is_empty());
}

#[tokio::test]
async fn clients_known_only_while_serving_are_looked_up_by_appid() {
    let platform = FakePlatform::start().await;
    let client = wemp_client::Client::builder(platform.appid())
        .secret(platform.secret())
        .all_base_urls(platform.url())
        .build()
        .unwrap();
    let appid = platform.appid();
    let lookup: wemp_server::ClientLookup =
        Arc::new(move |wanted: &str| (wanted == appid).then(|| client.clone()));
    let sink = CustomerServiceSink::empty().more_clients(lookup);
    assert!(sink.client("wx_other").is_none());
    let out = wemp_server::LateReplySink::deliver(&sink, &platform.appid(), OPENID, Reply::text("x")).await;
    assert_eq!(out, SinkOutcome::Delivered);
    assert_eq!(platform.sent_messages().len(), 1);
    let out = wemp_server::LateReplySink::deliver(&sink, "wx_other", OPENID, Reply::text("y")).await;
    assert!(matches!(out, SinkOutcome::Failed { errcode: None, .. }), "{out:?}");
}
