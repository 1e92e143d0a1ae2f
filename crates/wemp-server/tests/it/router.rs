use std::sync::Arc;
use std::time::Duration;

use tower::ServiceExt as _;
use wemp_proto::message::Text;
use wemp_proto::{Incoming, Mode};
use wemp_server::extract::{ClickKey, Content, EventKey, OpenId, QrScene};
use wemp_server::{
    Account, Answer, BoxError, Captures, Ctx, EventKind, FallThrough, Inbound, LiveRouter, Match, Matcher,
    MsgKind, Reply, Router, Rule,
};

use crate::common::*;

async fn run(router: &Router, xml: &str) -> Result<Reply, BoxError> {
    let inbound = Inbound::new(
        Incoming::parse(xml).unwrap(),
        Arc::new(account()),
        Mode::Plain,
        Ctx::detached(Duration::from_secs(5)),
    );
    router.clone().into_service().oneshot(inbound).await
}

async fn said(router: &Router, xml: &str) -> String {
    match run(router, xml).await.unwrap() {
        Reply::Text { content } => content,
        Reply::None => "<none>".into(),
        other => format!("{other:?}"),
    }
}

fn t(s: &'static str) -> impl Fn() -> std::future::Ready<Reply> + Clone + Send + Sync + 'static {
    move || std::future::ready(Reply::text(s))
}

fn image_xml() -> String {
    format!(
        "<xml><ToUserName>{GH}</ToUserName><FromUserName>{OPENID}</FromUserName><CreateTime>1</CreateTime>\
         <MsgType>image</MsgType><PicUrl>http://x</PicUrl><MediaId>m</MediaId><MsgId>9</MsgId></xml>"
    )
}

#[tokio::test]
async fn text_rules_exact_contains_regex_with_captures() {
    async fn order(c: Captures, Content(all): Content) -> Reply {
        Reply::text(format!("order {} qty {} of {all:?}", c.get(1).unwrap(), c.name("qty").unwrap()))
    }
    let router = Router::new()
        .on_text("help", t("help!"))
        .on_text_regex(r"^order (\d+) x(?<qty>\d+)$", order)
        .on_text_contains("price", t("prices"))
        .fallback(t("fallback"));
    assert_eq!(said(&router, &text_xml("help", 1)).await, "help!");
    assert_eq!(said(&router, &text_xml("  help \n", 1)).await, "help!", "exact ignores surrounding space");
    assert_eq!(said(&router, &text_xml("helpme", 1)).await, "fallback");
    assert_eq!(said(&router, &text_xml("what price?", 1)).await, "prices");
    assert_eq!(said(&router, &text_xml("order 42 x3", 1)).await, "order 42 qty 3 of \"order 42 x3\"");
    assert_eq!(said(&router, &image_xml()).await, "fallback");
}

#[tokio::test]
async fn events_case_insensitive_and_event_keys() {
    async fn scene(QrScene(s): QrScene) -> Reply {
        Reply::text(format!("scene {s}"))
    }
    async fn click(ClickKey(k): ClickKey, c: Captures) -> Reply {
        Reply::text(format!("click {k} item {}", c.get(1).unwrap_or("-")))
    }
    async fn key(EventKey(k): EventKey) -> Reply {
        Reply::text(format!("key {k}"))
    }
    let router = Router::new()
        .on_event_key("MENU_EXACT", key)
        .on_event_key_regex(r"^ITEM_(\d+)$", click)
        .on_event_key_prefix("MENU_", key)
        .on_event(EventKind::Subscribe, scene)
        .on_event(EventKind::from_wire("custom_thing"), t("custom"))
        .on_msg(MsgKind::Event, t("other event"));
    assert_eq!(said(&router, &event_xml("CLICK", Some("MENU_EXACT"))).await, "key MENU_EXACT");
    assert_eq!(said(&router, &event_xml("CLICK", Some("MENU_OTHER"))).await, "key MENU_OTHER");
    assert_eq!(said(&router, &event_xml("CLICK", Some("ITEM_7"))).await, "click ITEM_7 item 7");
    assert_eq!(said(&router, &event_xml("subscribe", Some("qrscene_123"))).await, "scene 123");
    assert_eq!(
        said(&router, &event_xml("SUBSCRIBE", Some("qrscene_9"))).await,
        "scene 9",
        "case-insensitive"
    );
    assert_eq!(said(&router, &event_xml("Custom_Thing", None)).await, "custom");
    assert_eq!(said(&router, &event_xml("unsubscribe", None)).await, "other event");
    assert_eq!(said(&router, &text_xml("hi", 1)).await, "<none>", "no rule, no fallback: success");
}

#[tokio::test]
async fn msg_type_sender_predicate_and_and() {
    let router = Router::new()
        .from_sender("o_vip", t("vip"))
        .route(Rule::new(Matcher::msg_type(MsgKind::Text).and(Matcher::text_contains("!")), t("shout")))
        .when(|i: &Inbound| i.text().is_some_and(|t| t.len() > 10), t("long"))
        .on_msg(MsgKind::Image, t("image"));
    assert_eq!(said(&router, &text_xml_from("o_vip", "hi", 1)).await, "vip");
    assert_eq!(said(&router, &text_xml("hi!", 1)).await, "shout");
    assert_eq!(said(&router, &text_xml("a long message", 1)).await, "long");
    assert_eq!(said(&router, &image_xml()).await, "image");
}

#[tokio::test]
async fn first_match_wins_and_fall_through_is_explicit() {
    async fn picky(OpenId(id): OpenId) -> Result<Reply, FallThrough> {
        if id == "o_special" { Ok(Reply::text("picky took it")) } else { Err(FallThrough) }
    }
    let router = Router::new()
        .on_text_contains("a", picky)
        .on_text_contains("a", t("second"))
        .on_text_contains("a", t("third, never"))
        .fallback(t("fallback"));
    assert_eq!(said(&router, &text_xml_from("o_special", "a", 1)).await, "picky took it");
    assert_eq!(said(&router, &text_xml("a", 1)).await, "second");

    let only_picky = Router::new().on_text("a", picky).fallback(t("fallback"));
    assert_eq!(said(&only_picky, &text_xml("a", 1)).await, "fallback");
}

#[tokio::test]
async fn handler_errors_and_extractor_mismatch_are_errors() {
    async fn fails() -> Result<Reply, std::io::Error> {
        Err(std::io::Error::other("db down"))
    }
    async fn wants_text(_t: Text) -> Reply {
        Reply::text("text")
    }
    async fn optional(c: Option<Content>) -> Reply {
        Reply::text(format!("{:?}", c.map(|c| c.0)))
    }
    let router = Router::new().on_text("fail", fails).on_msg(MsgKind::Image, wants_text).fallback(optional);
    let err = run(&router, &text_xml("fail", 1)).await.unwrap_err();
    assert_eq!(err.to_string(), "db down");
    let err = run(&router, &image_xml()).await.unwrap_err();
    assert_eq!(err.to_string(), "extractor Text does not apply to an image message");
    assert_eq!(said(&router, &text_xml("x", 1)).await, "Some(\"x\")");
    assert_eq!(said(&router, &event_xml("CLICK", Some("K"))).await, "None");
}

#[tokio::test]
async fn layers_around_router_and_single_rule() {
    use tower::util::MapResponseLayer;
    fn suffix(s: &'static str) -> MapResponseLayer<impl Fn(Reply) -> Reply + Clone> {
        MapResponseLayer::new(move |r: Reply| match r {
            Reply::Text { content } => Reply::text(format!("{content}{s}")),
            other => other,
        })
    }
    // A rule's layer sees the rule's `Answer` (fall-through included), the router's the `Reply`.
    fn rule_suffix(s: &'static str) -> MapResponseLayer<impl Fn(Answer) -> Answer + Clone> {
        MapResponseLayer::new(move |a: Answer| match a {
            Answer::Reply(Reply::Text { content }) => Answer::Reply(Reply::text(format!("{content}{s}"))),
            other => other,
        })
    }
    let router = Router::new()
        .route(Rule::new(Matcher::text("a"), t("A")).layer(rule_suffix("+rule")))
        .on_text("b", t("B"))
        .layer(suffix("+inner"))
        .layer(suffix("+outer"));
    assert_eq!(said(&router, &text_xml("a", 1)).await, "A+rule+inner+outer");
    assert_eq!(said(&router, &text_xml("b", 1)).await, "B+inner+outer");
}

#[tokio::test]
async fn account_and_ctx_extractors() {
    async fn who(account: Arc<Account>, ctx: Ctx, mode: Mode) -> Reply {
        Reply::text(format!("{} {} {}", account.appid(), ctx.remaining() <= Duration::from_secs(5), mode))
    }
    let router = Router::new().fallback(who);
    assert_eq!(said(&router, &text_xml("x", 1)).await, format!("{APPID} true plain"));
}

fn voice_xml(recognition: &str) -> String {
    format!(
        "<xml><ToUserName>{GH}</ToUserName><FromUserName>{OPENID}</FromUserName><CreateTime>1</CreateTime>\
         <MsgType>voice</MsgType><MediaId>m</MediaId><Format>amr</Format>\
         <Recognition><![CDATA[{recognition}]]></Recognition><MsgId>11</MsgId></xml>"
    )
}

fn location_event_xml() -> String {
    format!(
        "<xml><ToUserName>{GH}</ToUserName><FromUserName>{OPENID}</FromUserName><CreateTime>1</CreateTime>\
         <MsgType>event</MsgType><Event>LOCATION</Event><Latitude>23.1</Latitude>\
         <Longitude>113.3</Longitude><Precision>119.4</Precision></xml>"
    )
}

#[tokio::test]
async fn any_of_words_case_and_voice_are_options() {
    let router = Router::new()
        .route(Rule::new(Matcher::text_any(["Help", "帮助"]), t("strict")))
        .route(Rule::new(Matcher::text_any(["menu", "菜单"]).ignore_case(), t("any case")))
        .route(Rule::new(
            Matcher::text_contains_any(["weather", "天气"]).ignore_case().with_voice(),
            t("weather"),
        ))
        .route(Rule::new(Matcher::text_regex(r"^order (\d+)$").ignore_case().with_voice(), t("order")));
    assert_eq!(said(&router, &text_xml("Help", 1)).await, "strict");
    assert_eq!(said(&router, &text_xml(" 帮助 ", 1)).await, "strict");
    assert_eq!(said(&router, &text_xml("help", 1)).await, "<none>", "case-sensitive by default");
    assert_eq!(said(&router, &text_xml("MENU", 1)).await, "any case");
    assert_eq!(said(&router, &voice_xml("Help")).await, "<none>", "voice is opt-in");
    assert_eq!(said(&router, &voice_xml("What's the WEATHER like?")).await, "weather");
    assert_eq!(said(&router, &text_xml("今天天气", 1)).await, "weather");
    assert_eq!(said(&router, &voice_xml("ORDER 42")).await, "order");
    assert_eq!(said(&router, &text_xml("Order 7", 1)).await, "order");
}

#[tokio::test]
async fn any_case_folds_the_rule_words_too() {
    // The words are lowercased once when the matcher is built; the text per message.
    let router = Router::new()
        .route(Rule::new(Matcher::text_any([" Äpfel ", "MENU"]).ignore_case(), t("exact")))
        .route(Rule::new(Matcher::text_contains_any(["WiFi", "ΟΔΟΣ"]).ignore_case(), t("contains")));
    assert_eq!(said(&router, &text_xml("menu", 1)).await, "exact");
    assert_eq!(said(&router, &text_xml("äPFEL", 1)).await, "exact");
    assert_eq!(said(&router, &text_xml("wifi 密码是多少", 1)).await, "contains");
    assert_eq!(said(&router, &text_xml("WIFI", 1)).await, "contains");
    assert_eq!(
        said(&router, &text_xml("Η ΟΔΟΣ", 1)).await,
        "contains",
        "Unicode lowercase, as str::to_lowercase"
    );
    assert_eq!(said(&router, &text_xml("menus", 1)).await, "<none>");
}

#[tokio::test]
async fn word_matchers_capture_what_they_matched() {
    async fn got(c: Captures) -> Reply {
        Reply::text(c.get(0).unwrap_or("-").to_owned())
    }
    let router = Router::new()
        .route(Rule::new(Matcher::text_any(["hi"]).ignore_case(), got))
        .route(Rule::new(Matcher::text_contains_any(["price", "cost"]), got));
    assert_eq!(said(&router, &text_xml("  HI ", 1)).await, "HI");
    assert_eq!(said(&router, &text_xml("what does it cost?", 1)).await, "cost");
}

#[tokio::test]
async fn or_not_scene_message_and_custom_compose() {
    struct LongText(usize);
    impl Match for LongText {
        fn matches(&self, inbound: &Inbound) -> Option<Option<Captures>> {
            inbound.text().is_some_and(|t| t.chars().count() > self.0).then_some(None)
        }
        fn describe(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "text longer than {}", self.0)
        }
    }
    let spring = Matcher::event(EventKind::Subscribe)
        .or(Matcher::event(EventKind::Scan))
        .and(Matcher::scene("spring"));
    let router = Router::new()
        .route(Rule::new(spring, t("spring")))
        .route(Rule::new(Matcher::text("vip").and(!Matcher::sender(["o_test"])), t("vip")))
        .route(Rule::new(Matcher::custom(LongText(10)), t("long")))
        .route(Rule::new(Matcher::message(), t("message")));
    assert_eq!(said(&router, &event_xml("subscribe", Some("qrscene_spring"))).await, "spring");
    assert_eq!(said(&router, &event_xml("SCAN", Some("spring"))).await, "spring");
    assert_eq!(said(&router, &event_xml("SCAN", Some("autumn"))).await, "<none>", "events are not messages");
    assert_eq!(said(&router, &text_xml("vip", 1)).await, "vip");
    assert_eq!(said(&router, &text_xml_from("o_test", "vip", 1)).await, "message", "not from o_test");
    assert_eq!(said(&router, &text_xml("a very long text", 1)).await, "long");
    assert_eq!(said(&router, &image_xml()).await, "message");
    assert_eq!(said(&router, &location_event_xml()).await, "<none>", "a LOCATION report is no message");
    assert_eq!(
        format!("{:?}", Matcher::custom(LongText(3)).or(!Matcher::message())),
        "(text longer than 3) or (not (any message))"
    );
}

#[tokio::test]
async fn named_rules_and_fall_through_as_a_value() {
    async fn maybe(OpenId(id): OpenId) -> Option<Reply> {
        (id == "o_special").then(|| Reply::text("special"))
    }
    async fn decline() -> Answer {
        Answer::FallThrough
    }
    let router = Router::new()
        .route(Rule::new(Matcher::any(), decline).named("declines"))
        .route(Rule::new(Matcher::text("a"), maybe).named("special users"))
        .fallback(t("fallback"));
    assert_eq!(router.rules()[1].name(), "special users");
    assert_eq!(said(&router, &text_xml_from("o_special", "a", 1)).await, "special");
    assert_eq!(said(&router, &text_xml("a", 1)).await, "fallback");
    let declining_fallback = Router::new().fallback(decline);
    assert_eq!(said(&declining_fallback, &text_xml("a", 1)).await, "<none>");
    let merged = Router::new()
        .on_text("x", t("first"))
        .merge(Router::new().on_text("y", t("second")).fallback(t("theirs")));
    assert_eq!(said(&merged, &text_xml("y", 1)).await, "second");
    assert_eq!(said(&merged, &text_xml("z", 1)).await, "theirs");
}

/// Each router answers with its label from a rule that falls through after yielding and a
/// fallback, both wrapped in a router layer adding the label again: a delivery that saw
/// parts of two routers would answer e.g. "A/B".
fn labelled(label: &'static str) -> Router {
    use tower::util::MapResponseLayer;
    let slow_decline = move || async move {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
        Err::<Reply, _>(FallThrough)
    };
    Router::new().route(Rule::new(Matcher::any(), slow_decline)).fallback(t(label)).layer(
        MapResponseLayer::new(move |r: Reply| match r {
            Reply::Text { content } => Reply::text(format!("{content}/{label}")),
            other => other,
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_router_swaps_whole_under_load() {
    let live = LiveRouter::new(labelled("A"));
    let service = live.service();
    // A delivery that started on A finishes on A even when B takes over midway.
    let before = {
        let service = service.clone();
        let inbound = inbound(&text_xml("x", 1));
        tokio::spawn(async move { service.oneshot(inbound).await.unwrap() })
    };
    tokio::task::yield_now().await;
    let swapper = {
        let live = live.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                live.swap(labelled(if i % 2 == 0 { "B" } else { "A" }));
                tokio::task::yield_now().await;
            }
        })
    };
    let mut tasks = Vec::new();
    for i in 0..400 {
        let service = service.clone();
        let inbound = inbound(&text_xml("x", i));
        tasks.push(tokio::spawn(async move { service.oneshot(inbound).await.unwrap() }));
    }
    let mut seen = std::collections::BTreeSet::new();
    for task in tasks {
        let Reply::Text { content } = task.await.unwrap() else { panic!("not text") };
        assert!(content == "A/A" || content == "B/B", "a half-swapped router answered {content:?}");
        seen.insert(content);
    }
    swapper.await.unwrap();
    assert_eq!(before.await.unwrap(), Reply::text("A/A"));
    live.swap(labelled("B"));
    assert_eq!(service.clone().oneshot(inbound(&text_xml("x", 1))).await.unwrap(), Reply::text("B/B"));
    assert_eq!(live.rules().len(), 1);
    assert!(!seen.is_empty());
}

fn inbound(xml: &str) -> Inbound {
    Inbound::new(
        Incoming::parse(xml).unwrap(),
        Arc::new(account()),
        Mode::Plain,
        Ctx::detached(Duration::from_secs(5)),
    )
}

/// A layer whose services are not ready at first: each one (each clone too) answers
/// `Pending` to its first `poll_ready` (and wakes its task), and panics when called before
/// `poll_ready` said ready. `polls` counts every `poll_ready`.
#[derive(Clone)]
struct NotReadyAtFirst {
    polls: Arc<std::sync::atomic::AtomicUsize>,
}

struct Gate<S> {
    inner: S,
    ready: bool,
    polls: Arc<std::sync::atomic::AtomicUsize>,
}

impl<S: Clone> Clone for Gate<S> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), ready: false, polls: self.polls.clone() }
    }
}

impl<S> tower::Layer<S> for NotReadyAtFirst {
    type Service = Gate<S>;

    fn layer(&self, inner: S) -> Gate<S> {
        Gate { inner, ready: false, polls: self.polls.clone() }
    }
}

impl<S: tower::Service<Inbound>> tower::Service<Inbound> for Gate<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
        self.polls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if !self.ready {
            self.ready = true;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, inbound: Inbound) -> S::Future {
        assert!(self.ready, "called before poll_ready said ready");
        self.ready = false;
        self.inner.call(inbound)
    }
}

#[tokio::test]
async fn layers_not_ready_at_first_are_driven_through_poll_ready() {
    let (rule_polls, router_polls) = (Arc::default(), Arc::default());
    let gated = || {
        Router::new()
            .route(
                Rule::new(Matcher::text("a"), t("A"))
                    .layer(NotReadyAtFirst { polls: Arc::clone(&rule_polls) }),
            )
            .fallback(t("F"))
            .layer(NotReadyAtFirst { polls: Arc::clone(&router_polls) })
    };
    let polls = |p: &Arc<std::sync::atomic::AtomicUsize>| p.load(std::sync::atomic::Ordering::Relaxed);
    // Called directly, through a live router, and by the WeChat service.
    assert_eq!(said(&gated(), &text_xml("a", 1)).await, "A");
    assert_eq!(said(&gated(), &text_xml("b", 1)).await, "F");
    assert_eq!((polls(&rule_polls), polls(&router_polls)), (2, 4));
    let live = LiveRouter::new(gated());
    assert_eq!(live.service().oneshot(inbound(&text_xml("a", 2))).await.unwrap(), Reply::text("A"));
    assert_eq!((polls(&rule_polls), polls(&router_polls)), (4, 6));
    let svc = builder(Router::new()).handler_service(live.service()).build().unwrap();
    let (status, body) = send(&svc, wechat_post(Mode::Safe, &text_xml("a", 3))).await;
    assert_eq!((status, reply_text(&body).as_deref()), (http::StatusCode::OK, Some("A")));
    let svc = builder(gated()).build().unwrap();
    let (_, body) = send(&svc, wechat_post(Mode::Safe, &text_xml("b", 4))).await;
    assert_eq!(reply_text(&body).as_deref(), Some("F"));
    assert_eq!((polls(&rule_polls), polls(&router_polls)), (6, 10));
}

#[tokio::test]
async fn boxed_services_from_tower_and_of_boxed_services_answer_the_same() {
    use wemp_server::{BoxHandler, RuleService};
    let tower_boxed =
        tower::util::BoxCloneSyncService::new(Router::new().on_text("a", t("A")).into_service());
    let again = BoxHandler::new(BoxHandler::from(tower_boxed));
    assert_eq!(again.oneshot(inbound(&text_xml("a", 1))).await.unwrap(), Reply::text("A"));
    let rule =
        RuleService::new(tower::service_fn(|_: Inbound| async { Ok::<_, BoxError>(Answer::FallThrough) }));
    let router = Router::new().route(Rule::service(Matcher::any(), rule)).fallback(t("F"));
    assert_eq!(said(&router, &text_xml("a", 1)).await, "F");
}

#[test]
fn a_word_matchers_capture_is_the_text_it_matched_and_reads_as_a_regexs() {
    let caps =
        |m: Matcher, text: &str| m.matches(&inbound(&text_xml(text, 1))).expect(text).expect("captures");
    // What a regex capturing the whole text gives: the same value, `Debug` and length.
    let as_regex = |text: &str| caps(Matcher::text_regex("^.*$"), text);
    for (matcher, text, group) in [
        (Matcher::text("help"), "help", "help"),
        (Matcher::text(" help "), "help", "help"),
        (Matcher::text("help"), "  help ", "help"),
        (Matcher::text("help").ignore_case(), "HeLp", "HeLp"),
        (Matcher::text_contains("hello"), "well hello there", "hello"),
        (Matcher::text_contains("hello").ignore_case(), "HELLO you", "hello"),
    ] {
        let c = caps(matcher, text);
        assert_eq!((c.get(0), c.get(1), c.len(), c.name("x")), (Some(group), None, 1, None), "{text:?}");
        assert_eq!(c, as_regex(group), "{text:?}");
        assert_eq!(format!("{c:?}"), format!("Captures {{ groups: [Some({group:?})], named: [] }}"));
    }
    let order = caps(Matcher::text_regex(r"^order (?<n>\d+)( now)?$"), "order 42");
    assert_eq!(
        (order.get(0), order.get(1), order.get(2), order.len()),
        (Some("order 42"), Some("42"), None, 3)
    );
    assert_eq!(order.name("n"), Some("42"));
    assert_eq!(
        format!("{order:?}"),
        r#"Captures { groups: [Some("order 42"), Some("42"), None], named: [("n", "42")] }"#
    );
    assert_ne!(order, as_regex("order 42"));
    assert_eq!(Captures::default().len(), 0);
    assert!(Captures::default().is_empty() && Captures::default().get(0).is_none());
    assert_eq!(Captures::default(), Captures::default());
}
