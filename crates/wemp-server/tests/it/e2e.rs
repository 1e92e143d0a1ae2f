//! Over a real TCP port.

use std::time::Duration;

use tokio::net::TcpListener;
use wemp_proto::{Mode, Reply};
use wemp_server::{Router, serve_with_shutdown};

use crate::common::*;

async fn raw_post(addr: std::net::SocketAddr, req: http::Request<axum::body::Body>) -> (u16, String) {
    use http_body_util::BodyExt as _;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let res = sender.send_request(req).await.unwrap();
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn graceful_shutdown_hands_running_handlers_to_the_sink() {
    let sink = RecordingSink::default();
    let router = Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        Reply::text("finished after shutdown")
    });
    let svc = builder(router).budget(Duration::from_millis(100)).late_sink(sink.clone()).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_with_shutdown(listener, svc.clone(), async {
        let _ = stopped.await;
    }));

    let (status, body) = raw_post(addr, wechat_post(Mode::Safe, &text_xml("bye", 1))).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    assert_eq!(svc.in_flight(), 1);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    // serve_with_shutdown returned only after the handler finished and the sink got it.
    assert_eq!(svc.in_flight(), 0);
    let late = sink.replies();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].2, Reply::text("finished after shutdown"));
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "listener closed");
}
