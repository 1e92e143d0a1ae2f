//! Which reading of the clock each use of the time takes: one wall-clock reading at arrival
//! for the delivery record and the `timestamp` window, one when the reply is made for its
//! `CreateTime` and the encrypted envelope's timestamp.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use http::{Request, StatusCode};
use wemp_proto::{EncryptedReply, Mode};
use wemp_server::extract::Content;
use wemp_server::{Clock, DeliveryRecord, FakeClock, Reply, Router};

use crate::common::*;

/// The same POST as [`wechat_post`], its body read only after `before_body` ran.
fn post_with_slow_body(mode: Mode, xml: &str, before_body: impl FnOnce() + Send + 'static) -> Request<Body> {
    let req = platform().post(mode, xml, OPENID, GH, &NOW.to_string(), "1320562132", [9; 16]).unwrap();
    let uri = format!("/?{}", req.query_string());
    let body = req.body;
    let stream = futures_util::stream::once(async move {
        before_body();
        Ok::<_, std::io::Error>(Bytes::from(body))
    });
    Request::post(uri).body(Body::from_stream(stream)).unwrap()
}

#[tokio::test]
async fn the_timestamp_window_is_checked_at_arrival_not_after_the_body() {
    let clock = FakeClock::at_ms(NOW * 1000);
    let svc = builder(Router::new().fallback(|Content(t): Content| async move { Reply::text(t) }))
        .clock(clock.clone())
        .freshness_window(Duration::from_secs(300))
        .build()
        .unwrap();
    // Fresh when the headers came; ten minutes pass while the body trickles in.
    let late = clock.clone();
    let req =
        post_with_slow_body(Mode::Safe, &text_xml("slow", 1), move || late.advance(Duration::from_secs(600)));
    let (status, body) = send(&svc, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(reply_text(&body).as_deref(), Some("slow"));
    // A request already stale when it arrives is still refused.
    let (status, _) = send(&svc, wechat_post(Mode::Safe, &text_xml("stale", 2))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Every reading moves it one second on.
#[derive(Clone, Debug)]
struct Ticking(Arc<Mutex<i64>>);

impl Clock for Ticking {
    fn now_ms(&self) -> i64 {
        let mut t = self.0.lock().unwrap();
        *t += 1000;
        *t
    }
}

#[tokio::test]
async fn one_reading_at_arrival_and_one_for_the_reply() {
    let clock = Ticking(Arc::new(Mutex::new(NOW * 1000)));
    let records: Arc<Mutex<Vec<Arc<DeliveryRecord>>>> = Arc::default();
    let keep = records.clone();
    // The handler reads the clock too, in between: the reply's time is taken after it ran.
    let during = clock.clone();
    let svc = builder(Router::new().fallback(move |Content(t): Content| {
        let during = during.clone();
        async move { Reply::text(format!("{t} at {}", during.now_unix())) }
    }))
    .clock(clock.clone())
    .observer(move |r: &Arc<DeliveryRecord>| keep.lock().unwrap().push(r.clone()))
    .build()
    .unwrap();

    let (status, body) = send(&svc, wechat_post(Mode::Safe, &text_xml("hi", 3))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Arrival: NOW + 1 (record and window), the handler: NOW + 2, the reply: NOW + 3.
    assert_eq!(reply_text(&body).as_deref(), Some(format!("hi at {}", NOW + 2).as_str()));
    let opened = open(&body);
    assert_eq!(opened.message.header.unwrap().create_time, NOW + 3);
    let envelope = EncryptedReply::parse(&body).unwrap();
    assert_eq!(envelope.timestamp, (NOW + 3).to_string(), "the envelope is the reply's second");
    assert_eq!(records.lock().unwrap()[0].received_at_ms, (NOW + 1) * 1000);
    assert_eq!(*clock.0.lock().unwrap(), (NOW + 3) * 1000, "three readings in all");

    // A retry is answered from the store: sealed with the time now (one reading more
    // than at arrival), its CreateTime the stored reply's.
    let (_, again) = send(&svc, wechat_post(Mode::Safe, &text_xml("hi", 3))).await;
    assert_eq!(EncryptedReply::parse(&again).unwrap().timestamp, (NOW + 5).to_string());
    assert_eq!(open(&again).message.header.unwrap().create_time, NOW + 3);
    assert_eq!(records.lock().unwrap()[1].received_at_ms, (NOW + 4) * 1000);
}
