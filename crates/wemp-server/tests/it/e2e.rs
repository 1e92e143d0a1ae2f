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

mod simulated_wechat {
    use std::time::Duration;

    use tokio::net::TcpListener;
    use wemp_client::callback::{Exchange, Schedule, Simulator, Target};
    use wemp_proto::wechat::{EventMessage, Message};
    use wemp_proto::{Mode, Reply};
    use wemp_server::extract::{Content, EventKey};
    use wemp_server::{EventKind, Router, WechatService, serve};

    use crate::common::*;

    async fn start(svc: WechatService) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, svc));
        format!("http://{addr}/wechat")
    }

    fn wechat(url: &str, mode: Mode) -> Simulator {
        let mut target = Target::new(url, TOKEN);
        target.appid = Some(APPID.into());
        target.aes_key = Some(KEY.into());
        target.mode = mode;
        target.account = GH.into();
        target.openid = OPENID.into();
        Simulator::new(target).unwrap()
    }

    fn text(content: &str) -> Message {
        Message::Text { content: content.into() }
    }

    async fn echo(Content(text): Content) -> Reply {
        Reply::text(format!("echo: {text}"))
    }

    async fn menu(EventKey(key): EventKey) -> Reply {
        Reply::text(format!("menu {key}"))
    }

    #[tokio::test]
    async fn every_mode_end_to_end() {
        let router = Router::new().on_event(EventKind::Click, menu).fallback(echo);
        let svc = WechatService::builder().account(account()).router(router).build().unwrap();
        let url = start(svc).await;
        for mode in [Mode::Plain, Mode::Compatible, Mode::Safe] {
            let wx = wechat(&url, mode);
            assert!(wx.verify("echo-123").await.ok, "{mode}");
            let d = wx.send(&text("hi ]]> there")).await;
            assert_eq!(d.outcome.text(), Some("echo: hi ]]> there"), "{mode}: {d:?}");
            assert_eq!(d.attempts.len(), 1);
            assert_eq!(d.outcome.encrypted(), mode.is_encrypted());
            let d = wx.send(&Message::Event(EventMessage::Click { key: "V1001_TODAY_MUSIC".into() })).await;
            assert_eq!(d.outcome.text(), Some("menu V1001_TODAY_MUSIC"), "{mode}: {d:?}");
        }
        // A wrong token: every try is refused and the user sees the banner.
        let wrong = Simulator::new(Target::new(&url, "wrongtoken"))
            .unwrap()
            .with_schedule(Schedule { timeout: Duration::from_secs(2), tries: 3 });
        assert!(!wrong.verify("x").await.ok);
        let d = wrong.send(&text("hi")).await;
        assert!(d.outcome.user_sees_error(), "{d:?}");
        assert_eq!(d.attempts.len(), 3);
        assert!(matches!(&d.attempts[0].exchange, Exchange::Http { status: 403, .. }));
    }

    #[tokio::test]
    async fn slow_handler_user_sees_nothing_then_the_sink_delivers() {
        let sink = RecordingSink::default();
        let runs = Counter::default();
        let r = runs.clone();
        let router = Router::new().fallback(move || {
            let r = r.clone();
            async move {
                r.hit();
                tokio::time::sleep(Duration::from_millis(700)).await;
                Reply::text("late but here")
            }
        });
        let svc = WechatService::builder()
            .account(account())
            .router(router)
            .budget(Duration::from_millis(200))
            .late_sink(sink.clone())
            .build()
            .unwrap();
        let url = start(svc.clone()).await;
        let wx = wechat(&url, Mode::Safe)
            .with_schedule(Schedule { timeout: Duration::from_millis(500), tries: 3 });
        let d = wx.send(&text("slow please")).await;
        assert_eq!(d.outcome.reply(), Some(&Reply::None), "{d:?}");
        assert_eq!(d.attempts.len(), 1);
        assert!(svc.drain(Duration::from_secs(5)).await);
        assert_eq!(runs.get(), 1);
        let late = sink.replies();
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].2, Reply::text("late but here"));
    }

    #[tokio::test]
    async fn no_server_means_the_error_banner_after_three_tries() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let wx = wechat(&format!("http://{addr}/wechat"), Mode::Safe)
            .with_schedule(Schedule { timeout: Duration::from_millis(300), tries: 3 });
        let d = wx.send(&text("anyone?")).await;
        assert_eq!(d.attempts.len(), 3);
        assert!(d.outcome.user_sees_error());
    }
}
