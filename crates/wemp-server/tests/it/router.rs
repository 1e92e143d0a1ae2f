use std::sync::Arc;
use std::time::Duration;

use tower::ServiceExt as _;
use wemp_proto::message::Text;
use wemp_proto::{Incoming, Mode};
use wemp_server::extract::{ClickKey, Content, EventKey, OpenId, Scene};
use wemp_server::{
    Account, BoxError, Captures, Ctx, EventKind, FallThrough, Inbound, Matcher, MsgKind, Reply, Router, Rule,
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
    async fn scene(Scene(s): Scene) -> Reply {
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
        .on_event(EventKind::Other("custom_thing".into()), t("custom"))
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
    let router = Router::new()
        .route(Rule::new(Matcher::text("a"), t("A")).layer(suffix("+rule")))
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
