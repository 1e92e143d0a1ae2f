use axum::body::Body;
use http::{Request, StatusCode};
use wemp_proto::{Mode, Reply};
use wemp_server::Router;

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
        "wemp_requests_total{mode=\"safe\",outcome=\"reply\"} 2",
        "wemp_requests_total{mode=\"plain\",outcome=\"reply\"} 1",
        "wemp_requests_total{mode=\"safe\",outcome=\"rejected\"} 1",
        "wemp_verification_failures_total{reason=\"signature_mismatch\"} 1",
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
