//! Ordered, first-match routing of messages and events to handlers.

use std::fmt;
use std::sync::{Arc, LazyLock};

use futures_util::future::BoxFuture;
use regex::Regex;
use tower::{Layer, Service, ServiceExt};
use wemp_proto::{EventKind, Incoming, MsgKind, Reply};

use crate::handler::{BoxError, BoxHandler, FallThrough, Handler};
use crate::{Captures, Inbound};

type Predicate = Arc<dyn Fn(&Inbound) -> bool + Send + Sync>;

/// What a [`Rule`] matches. Combine with [`Matcher::and`].
#[derive(Clone)]
pub enum Matcher {
    /// A text message whose content equals this (after trimming whitespace).
    TextExact(String),
    /// A text message whose content contains this.
    TextContains(String),
    /// A text message whose content matches this regex (captures go to the handler).
    TextRegex(Regex),
    /// An event of this kind (case-insensitive).
    Event(EventKind),
    /// An event whose `EventKey` equals this.
    EventKey(String),
    /// An event whose `EventKey` starts with this.
    EventKeyPrefix(String),
    /// An event whose `EventKey` matches this regex (captures go to the handler).
    EventKeyRegex(Regex),
    /// A message of this `MsgType`.
    MsgType(MsgKind),
    /// A message from one of these OpenIDs.
    Sender(Vec<String>),
    /// Any predicate.
    Predicate(Predicate),
    /// Both matchers (captures from whichever produced them, the first preferred).
    And(Box<Self>, Box<Self>),
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TextExact(s) => write!(f, "text == {s:?}"),
            Self::TextContains(s) => write!(f, "text contains {s:?}"),
            Self::TextRegex(r) => write!(f, "text =~ /{}/", r.as_str()),
            Self::Event(k) => write!(f, "event == {k}"),
            Self::EventKey(s) => write!(f, "event key == {s:?}"),
            Self::EventKeyPrefix(s) => write!(f, "event key starts with {s:?}"),
            Self::EventKeyRegex(r) => write!(f, "event key =~ /{}/", r.as_str()),
            Self::MsgType(k) => write!(f, "msg type == {k}"),
            Self::Sender(s) => write!(f, "sender in {} openids", s.len()),
            Self::Predicate(_) => f.write_str("predicate"),
            Self::And(a, b) => write!(f, "({a:?}) and ({b:?})"),
        }
    }
}

fn regex(pattern: &str) -> Regex {
    match Regex::new(pattern) {
        Ok(re) => re,
        Err(e) => panic!("invalid routing regex {pattern:?}: {e}"),
    }
}

impl Matcher {
    /// Text equal to `s` (surrounding whitespace ignored).
    pub fn text(s: impl Into<String>) -> Self {
        Self::TextExact(s.into())
    }

    /// Text containing `s`.
    pub fn text_contains(s: impl Into<String>) -> Self {
        Self::TextContains(s.into())
    }

    /// Text matching the regex `pattern`.
    ///
    /// # Panics
    /// When `pattern` is not a valid regex (a programming error, caught at startup).
    pub fn text_regex(pattern: &str) -> Self {
        Self::TextRegex(regex(pattern))
    }

    /// An event of this kind.
    pub fn event(kind: EventKind) -> Self {
        Self::Event(kind)
    }

    /// An event whose key equals `key`.
    pub fn event_key(key: impl Into<String>) -> Self {
        Self::EventKey(key.into())
    }

    /// An event whose key starts with `prefix`.
    pub fn event_key_prefix(prefix: impl Into<String>) -> Self {
        Self::EventKeyPrefix(prefix.into())
    }

    /// An event whose key matches the regex `pattern`.
    ///
    /// # Panics
    /// When `pattern` is not a valid regex.
    pub fn event_key_regex(pattern: &str) -> Self {
        Self::EventKeyRegex(regex(pattern))
    }

    /// A message of this type.
    pub fn msg_type(kind: MsgKind) -> Self {
        Self::MsgType(kind)
    }

    /// A message from one of these users.
    pub fn sender<I, S>(openids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::Sender(openids.into_iter().map(Into::into).collect())
    }

    /// A message for which `f` returns true.
    pub fn predicate(f: impl Fn(&Inbound) -> bool + Send + Sync + 'static) -> Self {
        Self::Predicate(Arc::new(f))
    }

    /// Both this and `other`.
    #[must_use]
    pub fn and(self, other: Self) -> Self {
        Self::And(Box::new(self), Box::new(other))
    }

    /// `None` when it does not match; otherwise the captures, if a regex produced any.
    pub fn matches(&self, inbound: &Inbound) -> Option<Option<Captures>> {
        let msg = inbound.message();
        let key = || msg.event().and_then(|e| e.event_key());
        let yes = |b: bool| if b { Some(None) } else { None };
        match self {
            Self::TextExact(s) => yes(inbound.text().is_some_and(|t| t.trim() == s)),
            Self::TextContains(s) => yes(inbound.text().is_some_and(|t| t.contains(s.as_str()))),
            Self::TextRegex(re) => {
                let text = inbound.text()?;
                re.captures(text).map(|c| Some(Captures::from_regex(re, &c)))
            }
            Self::Event(kind) => yes(msg.event().is_some_and(|e| e.kind().same_as(kind))),
            Self::EventKey(s) => yes(key().is_some_and(|k| k == s)),
            Self::EventKeyPrefix(s) => yes(key().is_some_and(|k| k.starts_with(s.as_str()))),
            Self::EventKeyRegex(re) => {
                let k = key()?;
                re.captures(k).map(|c| Some(Captures::from_regex(re, &c)))
            }
            Self::MsgType(kind) => yes(same_msg_kind(msg, kind)),
            Self::Sender(ids) => yes(ids.iter().any(|id| id == inbound.openid())),
            Self::Predicate(f) => yes(f(inbound)),
            Self::And(a, b) => {
                let ca = a.matches(inbound)?;
                let cb = b.matches(inbound)?;
                Some(ca.or(cb))
            }
        }
    }
}

fn same_msg_kind(msg: &Incoming, kind: &MsgKind) -> bool {
    match (msg.kind(), kind) {
        (MsgKind::Other(x), MsgKind::Other(y)) => x.eq_ignore_ascii_case(y),
        (a, b) => a == *b,
    }
}

/// A matcher and the service that handles what it matches, optionally wrapped in layers.
///
/// ```
/// use std::time::Duration;
/// use wemp_server::{Matcher, Reply, Router, Rule};
/// async fn slow() -> Reply { Reply::text("done") }
/// let router = Router::new().route(
///     Rule::new(Matcher::text("report"), slow)
///         .layer(tower::util::MapRequestLayer::new(|inbound| inbound)),
/// );
/// ```
#[derive(Clone)]
pub struct Rule {
    matcher: Matcher,
    service: BoxHandler,
    name: Arc<str>,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule").field("matcher", &self.matcher).finish_non_exhaustive()
    }
}

impl Rule {
    /// A rule sending what `matcher` matches to `handler`.
    pub fn new<H, Args>(matcher: Matcher, handler: H) -> Self
    where
        H: Handler<Args>,
        Args: 'static,
    {
        Self::service(matcher, handler.into_service())
    }

    /// A rule sending what `matcher` matches to a boxed service.
    pub fn service(matcher: Matcher, service: BoxHandler) -> Self {
        let name = format!("{matcher:?}").into();
        Self { matcher, service, name }
    }

    /// Wraps this rule's handler in a tower layer (timeouts, rate limits, logging…).
    #[must_use]
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<BoxHandler>,
        L::Service: Service<Inbound, Response = Reply> + Clone + Send + Sync + 'static,
        <L::Service as Service<Inbound>>::Error: Into<BoxError>,
        <L::Service as Service<Inbound>>::Future: Send + 'static,
    {
        self.service = box_layered(layer, self.service);
        self
    }

    /// A readable description of the matcher, used in logs.
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn box_layered<L>(layer: L, inner: BoxHandler) -> BoxHandler
where
    L: Layer<BoxHandler>,
    L::Service: Service<Inbound, Response = Reply> + Clone + Send + Sync + 'static,
    <L::Service as Service<Inbound>>::Error: Into<BoxError>,
    <L::Service as Service<Inbound>>::Future: Send + 'static,
{
    BoxHandler::new(layer.layer(inner).map_err(Into::into))
}

type LayerFn = Arc<dyn Fn(BoxHandler) -> BoxHandler + Send + Sync>;

/// Rules tried in order; the first that matches handles the message. A handler returning
/// [`FallThrough`] passes it on to the next matching rule; when no rule takes it, the
/// fallback does (or the answer is `success`).
///
/// ```
/// use wemp_server::{EventKind, Reply, Router};
/// use wemp_server::extract::{Captures, Content};
/// async fn help() -> Reply { Reply::text("commands: help, order <n>") }
/// async fn order(c: Captures) -> Reply { Reply::text(format!("order #{}", c.get(1).unwrap_or("?"))) }
/// async fn welcome() -> Reply { Reply::text("welcome!") }
/// async fn echo(Content(text): Content) -> Reply { Reply::text(text) }
/// let router = Router::new()
///     .on_text("help", help)
///     .on_text_regex(r"^order (\d+)$", order)
///     .on_event(EventKind::Subscribe, welcome)
///     .fallback(echo);
/// ```
#[derive(Clone, Default)]
pub struct Router {
    rules: Vec<Rule>,
    fallback: Option<BoxHandler>,
    layers: Vec<LayerFn>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("rules", &self.rules)
            .field("fallback", &self.fallback.is_some())
            .field("layers", &self.layers.len())
            .finish()
    }
}

impl Router {
    /// An empty router: answers `success` to everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule (after the ones already added).
    #[must_use]
    pub fn route(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    fn on<H: Handler<Args>, Args: 'static>(self, matcher: Matcher, handler: H) -> Self {
        self.route(Rule::new(matcher, handler))
    }

    /// Text equal to `text` (whitespace around it ignored).
    #[must_use]
    pub fn on_text<H: Handler<Args>, Args: 'static>(self, text: impl Into<String>, handler: H) -> Self {
        self.on(Matcher::text(text), handler)
    }

    /// Text containing `needle`.
    #[must_use]
    pub fn on_text_contains<H: Handler<Args>, Args: 'static>(
        self,
        needle: impl Into<String>,
        handler: H,
    ) -> Self {
        self.on(Matcher::text_contains(needle), handler)
    }

    /// Text matching `pattern`; the handler can take [`Captures`].
    ///
    /// # Panics
    /// When `pattern` is not a valid regex.
    #[must_use]
    pub fn on_text_regex<H: Handler<Args>, Args: 'static>(self, pattern: &str, handler: H) -> Self {
        self.on(Matcher::text_regex(pattern), handler)
    }

    /// Events of `kind`, matched case-insensitively.
    #[must_use]
    pub fn on_event<H: Handler<Args>, Args: 'static>(self, kind: EventKind, handler: H) -> Self {
        self.on(Matcher::event(kind), handler)
    }

    /// Events whose `EventKey` equals `key` (menu clicks, views, scans…).
    #[must_use]
    pub fn on_event_key<H: Handler<Args>, Args: 'static>(self, key: impl Into<String>, handler: H) -> Self {
        self.on(Matcher::event_key(key), handler)
    }

    /// Events whose `EventKey` starts with `prefix`.
    #[must_use]
    pub fn on_event_key_prefix<H: Handler<Args>, Args: 'static>(
        self,
        prefix: impl Into<String>,
        handler: H,
    ) -> Self {
        self.on(Matcher::event_key_prefix(prefix), handler)
    }

    /// Events whose `EventKey` matches `pattern`; the handler can take [`Captures`].
    ///
    /// # Panics
    /// When `pattern` is not a valid regex.
    #[must_use]
    pub fn on_event_key_regex<H: Handler<Args>, Args: 'static>(self, pattern: &str, handler: H) -> Self {
        self.on(Matcher::event_key_regex(pattern), handler)
    }

    /// Messages of `kind` (`MsgKind::Image`, `MsgKind::Event`…).
    #[must_use]
    pub fn on_msg<H: Handler<Args>, Args: 'static>(self, kind: MsgKind, handler: H) -> Self {
        self.on(Matcher::msg_type(kind), handler)
    }

    /// Anything sent by `openid`.
    #[must_use]
    pub fn from_sender<H: Handler<Args>, Args: 'static>(self, openid: impl Into<String>, handler: H) -> Self {
        self.on(Matcher::sender([openid]), handler)
    }

    /// Anything for which `predicate` is true.
    #[must_use]
    pub fn when<H: Handler<Args>, Args: 'static>(
        self,
        predicate: impl Fn(&Inbound) -> bool + Send + Sync + 'static,
        handler: H,
    ) -> Self {
        self.on(Matcher::predicate(predicate), handler)
    }

    /// The handler for what no rule takes (default: answer `success`).
    #[must_use]
    pub fn fallback<H: Handler<Args>, Args: 'static>(mut self, handler: H) -> Self {
        self.fallback = Some(handler.into_service());
        self
    }

    /// Wraps the whole router in a tower layer; layers added later wrap earlier ones.
    #[must_use]
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<BoxHandler> + Send + Sync + 'static,
        L::Service: Service<Inbound, Response = Reply> + Clone + Send + Sync + 'static,
        <L::Service as Service<Inbound>>::Error: Into<BoxError>,
        <L::Service as Service<Inbound>>::Future: Send + 'static,
    {
        let layer = Arc::new(layer);
        self.layers.push(Arc::new(move |inner| box_layered(LayerRef(layer.clone()), inner)));
        self
    }

    /// The router, with its layers, as one boxed service.
    pub fn into_service(self) -> BoxHandler {
        let dispatch = Dispatch { rules: self.rules.into(), fallback: self.fallback };
        let mut service = BoxHandler::new(dispatch);
        for layer in &self.layers {
            service = layer(service);
        }
        service
    }
}

struct LayerRef<L>(Arc<L>);

impl<L: Layer<S>, S> Layer<S> for LayerRef<L> {
    type Service = L::Service;

    fn layer(&self, inner: S) -> Self::Service {
        self.0.layer(inner)
    }
}

#[derive(Clone)]
struct Dispatch {
    rules: Arc<[Rule]>,
    fallback: Option<BoxHandler>,
}

static FALLBACK: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("fallback"));
static NONE: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("none"));

/// The name of the rule that handled a delivery, recorded in the request's span and for
/// observers.
pub(crate) fn record_rule(inbound: &Inbound, name: &Arc<str>) {
    tracing::Span::current().record("rule", &**name);
    inbound.ctx().shared().set_rule(name.clone());
}

impl Service<Inbound> for Dispatch {
    type Response = Reply;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Reply, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, inbound: Inbound) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            for rule in this.rules.iter() {
                let Some(captures) = rule.matcher.matches(&inbound) else { continue };
                let req = if captures.is_some() { inbound.with_captures(captures) } else { inbound.clone() };
                record_rule(&inbound, &rule.name);
                match rule.service.clone().oneshot(req).await {
                    Err(e) if e.is::<FallThrough>() => continue,
                    other => return other,
                }
            }
            match this.fallback {
                Some(fallback) => {
                    record_rule(&inbound, &FALLBACK);
                    match fallback.oneshot(inbound).await {
                        Err(e) if e.is::<FallThrough>() => Ok(Reply::None),
                        other => other,
                    }
                }
                None => {
                    record_rule(&inbound, &NONE);
                    Ok(Reply::None)
                }
            }
        })
    }
}
