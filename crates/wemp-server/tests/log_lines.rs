//! Log lines of the service, captured from a subscriber of the test's own.
//!
//! A test binary of its own: tracing caches whether a call site is enabled process-wide,
//! and a test on another thread with no subscriber that reaches a call site first can
//! leave it cached as disabled (the in-process suite ran these next to ~70 other tests,
//! and lost a line in about one run in ten on a loaded machine). Every test here installs
//! a subscriber that takes every line at DEBUG and above.

#[path = "it/common.rs"]
#[allow(dead_code)]
mod common;

use std::sync::{Arc, Mutex};

use http::StatusCode;
use wemp_proto::{Cipher, Mode};
use wemp_server::Router;

use crate::common::*;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every line at DEBUG and above on this thread, into the buffer, while the guard lives.
fn capture() -> (Buf, tracing::subscriber::DefaultGuard) {
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    // A call site another test reached first may be cached for the subscribers then: ask again.
    tracing::callsite::rebuild_interest_cache();
    (buf, guard)
}

#[tokio::test(flavor = "current_thread")]
async fn rejection_log_line_names_code_mode_and_parameter_but_no_secret() {
    let (buf, _guard) = capture();
    let svc = service(Router::new());
    let ok = wechat_post(Mode::Safe, &text_xml("x", 1));
    let bad = ok.uri().query().unwrap().replace("msg_signature=", "msg_signature=0");
    let body = format!("<xml><ToUserName>{GH}</ToUserName><Encrypt>AAAA</Encrypt></xml>");
    let (status, _) = send(&svc, post(&bad, body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // An appid with a NUL and an escape sequence: escaped in the log line.
    let nul_app = Cipher::new(KEY, "wx\0\u{1b}[2Jevil").unwrap().encrypt(&text_xml("x", 5), [1; 16]).unwrap();
    assert_eq!(send(&svc, signed_safe(&nul_app)).await.0, StatusCode::BAD_REQUEST);
    // And one accepted request, to check the OpenID is shortened.
    let (status, _) = send(&svc, wechat_post(Mode::Safe, &text_xml("x", 2))).await;
    assert_eq!(status, StatusCode::OK);

    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let line = log.lines().find(|l| l.contains("request rejected")).unwrap_or_else(|| panic!("{log}"));
    for needle in [
        "code=-40001",
        "mode=\"safe\"",
        "param=\"msg_signature\"",
        "token of length 8",
        "appid=\"wx2c2769f8efd9abc2\"",
    ] {
        assert!(line.contains(needle), "{needle} missing in {line}");
    }
    assert!(!log.contains(TOKEN) && !log.contains(KEY), "secret in log: {log}");
    assert!(!log.contains('\0') && !log.contains('\u{1b}'), "a control character in the log: {log:?}");
    assert!(!log.contains(OPENID), "OpenID not shortened: {log}");
    assert!(log.contains("oyOR…f0rs"), "{log}");
}

/// The `answered` line of a safe-mode text message (MsgId `msg_id`) whose handler names
/// its rule `keyword:help`.
async fn answered_by_a_named_rule(msg_id: u64) -> String {
    let (buf, _guard) = capture();
    let router = Router::new().fallback(|ctx: wemp_server::Ctx| async move {
        ctx.set_rule_name("keyword:help");
        wemp_proto::Reply::text("named")
    });
    let svc = service(router);
    let (status, _) = send(&svc, wechat_post(Mode::Safe, &text_xml("help", msg_id))).await;
    assert_eq!(status, StatusCode::OK);
    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    log.lines().find(|l| l.contains("answered")).unwrap_or_else(|| panic!("{log}")).to_owned()
}

/// Issue 16 item 16: the request span's `rule` field is recorded once, with the name that
/// answered (a handler naming its rule used to add a second `rule=` to every line).
#[tokio::test(flavor = "current_thread")]
async fn the_rule_is_recorded_once_in_the_request_span() {
    let line = answered_by_a_named_rule(7).await;
    assert_eq!(line.matches("rule=").count(), 1, "{line}");
    assert!(line.contains("rule=\"keyword:help\"") || line.contains("rule=keyword:help"), "{line}");
}

/// The `wechat` span's fields as tracing's own fmt subscriber writes them on a line inside
/// it: every value but `rule` unquoted (given as `Display`), the OpenID shortened.
#[tokio::test(flavor = "current_thread")]
async fn a_line_in_the_message_span_reads_as_pinned() {
    let line = answered_by_a_named_rule(8).await;
    let (_time, line) = line.split_once(' ').unwrap();
    let (line, _latency) = line.split_once(" latency_us=").unwrap_or_else(|| panic!("{line}"));
    assert_eq!(
        line,
        "DEBUG wechat{appid=wx2c2769f8efd9abc2 mode=safe msg_type=text openid=oyOR…f0rs dedup=new \
         rule=\"keyword:help\"}: wemp_server::service: answered status=200",
    );
}

/// The rule's name reaches the request span from wherever it is known: the router (before
/// the handler runs, so the handler's own lines carry it), or the handler's task once it
/// ran in a task of its own (`fallback`, recorded after the handler).
#[tokio::test(flavor = "current_thread")]
async fn the_rule_reaches_the_span_from_the_router_and_from_a_handler_task() {
    let (buf, _guard) = capture();
    async fn waits() -> wemp_proto::Reply {
        // Pending at its first poll: the handler goes on in a task of its own.
        tokio::task::yield_now().await;
        tracing::info!("handler line");
        wemp_proto::Reply::text("waited")
    }
    let router = Router::new()
        .route(wemp_server::Rule::new(wemp_server::Matcher::text("named"), waits).named("daily"))
        .fallback(waits);
    let svc = service(router);
    for (i, text) in ["named", "other"].into_iter().enumerate() {
        let (status, _) = send(&svc, wechat_post(Mode::Safe, &text_xml(text, 20 + i as u64))).await;
        assert_eq!(status, StatusCode::OK);
    }
    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines = |what: &str| log.lines().filter(|l| l.contains(what)).map(str::to_owned).collect::<Vec<_>>();
    let (handler, answered) = (lines("handler line"), lines("answered"));
    assert_eq!((handler.len(), answered.len()), (2, 2), "{log}");
    let named = |line: &str, name: &str| {
        line.matches("rule=").count() == 1
            && (line.contains(&format!("rule=\"{name}\"")) || line.contains(&format!("rule={name} ")))
    };
    assert!(named(&handler[0], "daily") && named(&answered[0], "daily"), "{log}");
    // The fallback is named after the handler ran: its own line has no name yet.
    assert!(!handler[1].contains("rule="), "{log}");
    assert!(named(&answered[1], "fallback"), "{log}");
}

/// The message span's values handed over as text (`wemp_server::log::take_handed`, what
/// `wemp serve`'s log layer keeps instead of formatting them) are, field by field, what the
/// span's own `%` values write: for a message and an event, in safe and plain mode, with the
/// OpenID shortened and whole, and for a retry (another dedup outcome).
#[tokio::test(flavor = "current_thread")]
async fn the_span_values_handed_over_are_what_the_fields_write() {
    use tracing::field::{Field, Visit};
    use tracing_subscriber::layer::SubscriberExt as _;

    /// A span's values, one text each.
    type Values = Vec<String>;

    /// Each `wechat` span's values as handed over, and as its fields write them.
    #[derive(Clone, Default)]
    struct Compare(Arc<Mutex<Vec<(Values, Values)>>>);

    struct Written(Vec<String>);

    impl Visit for Written {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            assert_eq!(field.index(), self.0.len(), "{}", field.name());
            self.0.push(format!("{value:?}"));
        }
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Compare {
        fn on_register_dispatch(&self, _: &tracing::Dispatch) {
            wemp_server::log::handed_values_are_taken();
        }

        fn on_new_span(
            &self,
            attrs: &tracing::span::Attributes<'_>,
            _: &tracing::span::Id,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let handed = wemp_server::log::take_handed(|handed| {
                let mut start = 0;
                let values = handed.ends().iter().map(|&end| {
                    let value = handed.text()[start..end].to_owned();
                    start = end;
                    value
                });
                values.collect::<Vec<_>>()
            });
            // Taken once.
            assert!(wemp_server::log::take_handed(|_| ()).is_none());
            let mut written = Written(Vec::new());
            attrs.record(&mut written);
            if attrs.metadata().name() == "wechat" {
                let handed = handed.expect("the message span's values handed over");
                self.0.lock().unwrap().push((handed, written.0));
            } else {
                assert!(handed.is_none(), "handed over for another span: {handed:?}");
            }
        }
    }

    let compare = Compare::default();
    let subscriber = tracing_subscriber::registry().with(compare.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    tracing::info_span!("other", n = 1).in_scope(|| ());
    let svc = service(Router::new().fallback(|| async { wemp_proto::Reply::text("ok") }));
    for (mode, xml) in [
        (Mode::Safe, text_xml("help", 40)),
        (Mode::Safe, text_xml("help", 40)),
        (Mode::Plain, event_xml("subscribe", None)),
    ] {
        assert_eq!(send(&svc, wechat_post(mode, &xml)).await.0, StatusCode::OK);
    }
    let full = builder(Router::new().fallback(|| async { wemp_proto::Reply::text("ok") }))
        .log_full_openids(true)
        .build()
        .unwrap();
    assert_eq!(send(&full, wechat_post(Mode::Safe, &text_xml("help", 41))).await.0, StatusCode::OK);
    let seen = compare.0.lock().unwrap();
    let values: Vec<_> = seen.iter().map(|(handed, _)| handed.join(" ")).collect();
    assert_eq!(
        values,
        [
            "wx2c2769f8efd9abc2 safe text oyOR…f0rs new",
            "wx2c2769f8efd9abc2 safe text oyOR…f0rs cached",
            "wx2c2769f8efd9abc2 plain event/subscribe oyOR…f0rs new",
            format!("wx2c2769f8efd9abc2 safe text {OPENID} new").as_str(),
        ]
    );
    for (handed, written) in seen.iter() {
        assert_eq!(handed, written);
    }
}
