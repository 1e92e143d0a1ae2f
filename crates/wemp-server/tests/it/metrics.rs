use axum::body::Body;
use http::{Request, StatusCode};
use wemp_proto::{Mode, Reply};
use wemp_server::{DeliveryRecord, ErrorPolicy, RecordOutcome, RejectionLogRate, Router};

use crate::common::*;

#[tokio::test]
async fn prometheus_text_at_the_configured_path() {
    let svc = builder(Router::new().fallback(|| async { Reply::text("ok") }))
        .metrics_path("/metrics")
        .metrics_source(|out| out.push_str("extra_component_total 7\n"))
        .build()
        .unwrap();
    send(&svc, wechat_post(Mode::Safe, &text_xml("a", 1))).await;
    send(&svc, wechat_post(Mode::Safe, &text_xml("a", 1))).await;
    send(&svc, wechat_post(Mode::Plain, &text_xml("b", 2))).await;
    let bad = wechat_post(Mode::Safe, &text_xml("c", 3));
    let q = bad.uri().query().unwrap().replace("msg_signature=", "msg_signature=f");
    send(&svc, Request::post(format!("/?{q}")).body(bad.into_body()).unwrap()).await;

    let (status, text) = send(&svc, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        "wemp_requests_total{mode=\"safe\",outcome=\"answered\"} 2",
        "wemp_requests_total{mode=\"plain\",outcome=\"answered\"} 1",
        "wemp_requests_total{mode=\"safe\",outcome=\"rejected\"} 1",
        "wemp_verification_failures_total{reason=\"signature_mismatch\"} 1",
        "wemp_rejections_unlogged_total{reason=\"signature_mismatch\"} 0",
        "wemp_dedup_total{outcome=\"new\"} 2",
        "wemp_dedup_total{outcome=\"cached\"} 1",
        "wemp_handler_duration_seconds_count 2",
        "wemp_deadline_misses_total 0",
        "extra_component_total 7",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    assert!(text.contains("# TYPE wemp_handler_duration_seconds histogram"));

    // Without a metrics path, GET /metrics is a verification request like any other.
    let plain = service(Router::new());
    let (status, _) = send(&plain, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Requests are counted by the outcome their record ends with: the metrics and the
/// message log tell one story.
#[tokio::test]
async fn requests_are_counted_by_their_records_outcome() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let s = seen.clone();
    let router = Router::new()
        .on_text("boom", || async { Err::<Reply, _>(std::io::Error::other("down")) })
        .fallback(|| async { Reply::text("ok") });
    let svc = builder(router)
        .error_policy(ErrorPolicy::Apology("sorry".into()))
        .observer(move |r: &std::sync::Arc<DeliveryRecord>| {
            s.lock().unwrap().push(r.outcome.label().to_owned())
        })
        .build()
        .unwrap();
    send(&svc, wechat_post(Mode::Plain, &text_xml("hi", 1))).await;
    send(&svc, wechat_post(Mode::Plain, &text_xml("boom", 2))).await;
    let text = svc.metrics_text();
    for line in [
        "wemp_requests_total{mode=\"plain\",outcome=\"answered\"} 1",
        "wemp_requests_total{mode=\"plain\",outcome=\"handler_error\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    assert_eq!(*seen.lock().unwrap(), ["answered", "handler_error"]);
    assert_eq!(RecordOutcome::HandlerError.label(), "handler_error");
}

/// Refusals beyond the logging rate get no record (and no WARN line) but are counted.
#[tokio::test]
async fn rejections_over_the_rate_are_counted_not_recorded() {
    let records = std::sync::Arc::new(std::sync::Mutex::new(0usize));
    let r = records.clone();
    let svc = builder(Router::new())
        .rejection_log_rate(RejectionLogRate { burst: 3, per_second: 0.0 })
        .observer(move |rec: &std::sync::Arc<DeliveryRecord>| {
            assert_eq!(rec.outcome, RecordOutcome::Rejected);
            *r.lock().unwrap() += 1;
        })
        .build()
        .unwrap();
    for i in 0..20 {
        let bad = wechat_post(Mode::Plain, &text_xml("x", i));
        let q = bad.uri().query().unwrap().replace("signature=", "signature=f");
        let (status, _) = send(&svc, Request::post(format!("/?{q}")).body(bad.into_body()).unwrap()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    assert_eq!(*records.lock().unwrap(), 3, "the burst is recorded, the rest is not");
    let text = svc.metrics_text();
    for line in [
        "wemp_verification_failures_total{reason=\"signature_mismatch\"} 20",
        "wemp_rejections_unlogged_total{reason=\"signature_mismatch\"} 17",
        "wemp_requests_total{mode=\"unknown\",outcome=\"rejected\"} 20",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
}

/// Each kind of answer says what it is: a message's reply is XML (in either mode), the
/// metrics are Prometheus text.
#[tokio::test]
async fn answers_carry_their_content_type() {
    let svc = builder(Router::new().fallback(|| async { Reply::text("ok") }))
        .metrics_path("/metrics")
        .build()
        .unwrap();
    let content_type = |res: http::Response<Body>| {
        let headers: Vec<_> = res
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect();
        (res.status(), headers)
    };
    for (mode, id) in [(Mode::Safe, 1), (Mode::Plain, 2)] {
        let res =
            tower::ServiceExt::oneshot(svc.clone(), wechat_post(mode, &text_xml("a", id))).await.unwrap();
        assert_eq!(
            content_type(res),
            (StatusCode::OK, vec![("content-type".to_owned(), "application/xml".to_owned())]),
            "{mode:?}"
        );
    }
    let metrics = Request::get("/metrics").body(Body::empty()).unwrap();
    let res = tower::ServiceExt::oneshot(svc.clone(), metrics).await.unwrap();
    assert_eq!(
        content_type(res),
        (StatusCode::OK, vec![("content-type".to_owned(), "text/plain; version=0.0.4".to_owned())])
    );
}
