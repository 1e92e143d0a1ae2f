//! Ordered, first-match routing of messages and events to handlers.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;
use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;

use futures_util::future::BoxFuture;
use regex::Regex;
use tower::{Layer, Service, ServiceExt};
use wemp_proto::{Event, EventKind, Incoming, MsgKind, Reply};

use crate::handler::{Answer, BoxError, BoxHandler, CallShared, Called, Handler, RuleService};
use crate::{Captures, Inbound};

/// A condition of your own, for [`Matcher::custom`]: the open end of the matchers.
pub trait Match: Send + Sync + 'static {
    /// `None` when it does not match; otherwise the captures, if it produced any.
    fn matches(&self, inbound: &Inbound) -> Option<Option<Captures>>;

    /// How logs name it (default `custom`).
    ///
    /// # Errors
    /// As [`fmt::Display::fmt`].
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("custom")
    }
}

struct Predicate<F>(F);

impl<F: Fn(&Inbound) -> bool + Send + Sync + 'static> Match for Predicate<F> {
    fn matches(&self, inbound: &Inbound) -> Option<Option<Captures>> {
        (self.0)(inbound).then_some(None)
    }

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("predicate")
    }
}

/// How a text matcher compares.
#[derive(Clone)]
enum TextTest {
    /// Equal to one of the words (surrounding whitespace ignored).
    Exact(Words),
    /// Containing one of the words.
    Contains(Words),
    /// Matching the regex.
    Regex(Regex),
}

/// A text matcher's words, each with its lowercase form made once, when the matcher is
/// built, rather than for every message a rule looks at.
#[derive(Clone)]
struct Words {
    /// As given (what the captures and `Debug` show), shared with the captures.
    given: Vec<Arc<str>>,
    /// Lowercase (for [`TextTest::Exact`], of the trimmed word).
    folded: Vec<String>,
}

impl Words {
    fn new(given: Vec<String>, trim: bool) -> Self {
        let folded = given.iter().map(|w| if trim { w.trim() } else { w.as_str() }.to_lowercase()).collect();
        Self { given: given.into_iter().map(Arc::from).collect(), folded }
    }
}

/// `text` in lowercase, allocating only when lowercasing changes it (text in Chinese,
/// or already in lowercase, is borrowed as it is).
fn lowercase(text: &str) -> Cow<'_, str> {
    // ASCII in lowercase already (a message such as "hello"): one pass over the bytes.
    if !text.bytes().any(|b| b >= 0x80 || b.is_ascii_uppercase()) {
        return Cow::Borrowed(text);
    }
    // ASCII (most keywords and messages that reach a case-insensitive matcher): a byte
    // test, where `char::to_lowercase` looks every character up in Unicode's tables.
    if text.is_ascii() {
        let upper = text.bytes().any(|b| b.is_ascii_uppercase());
        return if upper { Cow::Owned(text.to_ascii_lowercase()) } else { Cow::Borrowed(text) };
    }
    let changes = |c: char| {
        let mut lower = c.to_lowercase();
        lower.next() != Some(c) || lower.next().is_some()
    };
    if text.chars().any(changes) { Cow::Owned(text.to_lowercase()) } else { Cow::Borrowed(text) }
}

/// `text.trim()`, without decoding a character at either end when both ends are ASCII
/// letters, digits or punctuation (no whitespace, so nothing to trim).
fn trim(text: &str) -> &str {
    match text.as_bytes() {
        [first, .., last] | [first @ last] if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

#[derive(Clone)]
enum Node {
    Text { test: TextTest, ignore_case: bool, voice: bool },
    Event(EventKind),
    EventKey(String),
    EventKeyPrefix(String),
    EventKeyRegex(Regex),
    Scene(String),
    MsgType(MsgKind),
    Message,
    Any,
    Sender(Vec<String>),
    Custom(Arc<dyn Match>),
    And(Box<Self>, Box<Self>),
    Or(Box<Self>, Box<Self>),
    Not(Box<Self>),
}

/// What a [`Rule`] matches: text (any of several words, exactly or contained, or a regex;
/// optionally case-insensitive and reading voice recognition), events, event keys, QR
/// scenes, message types, senders, predicates or a [`Match`] of your own, combined with
/// [`Matcher::and`], [`Matcher::or`] and `!` (not).
///
/// ```
/// use wemp_server::{EventKind, Matcher, MsgKind};
/// // "help" or "帮助" in any case, typed or spoken, but not from the test account.
/// let help = Matcher::text_any(["help", "帮助"])
///     .ignore_case()
///     .with_voice()
///     .and(!Matcher::sender(["o_test"]));
/// // Following through the "spring" QR code, or scanning it when already following.
/// let spring = Matcher::event(EventKind::Subscribe)
///     .or(Matcher::event(EventKind::Scan))
///     .and(Matcher::scene("spring"));
/// // Any message that is not an event.
/// let catch_all = Matcher::message();
/// # let _ = (help, spring, catch_all, MsgKind::Text);
/// ```
#[derive(Clone)]
pub struct Matcher(Node);

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

fn words_list(words: &Words) -> String {
    words.given.iter().map(|w| format!("{w:?}")).collect::<Vec<_>>().join(" | ")
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text { test, ignore_case, voice } => {
                let what = if *voice { "text or voice" } else { "text" };
                match test {
                    TextTest::Exact(w) => write!(f, "{what} == {}", words_list(w))?,
                    TextTest::Contains(w) => write!(f, "{what} contains {}", words_list(w))?,
                    TextTest::Regex(r) => write!(f, "{what} =~ /{}/", r.as_str())?,
                }
                if *ignore_case { f.write_str(" (any case)") } else { Ok(()) }
            }
            Self::Event(k) => write!(f, "event == {k}"),
            Self::EventKey(s) => write!(f, "event key == {s:?}"),
            Self::EventKeyPrefix(s) => write!(f, "event key starts with {s:?}"),
            Self::EventKeyRegex(r) => write!(f, "event key =~ /{}/", r.as_str()),
            Self::Scene(s) => write!(f, "scene == {s:?}"),
            Self::MsgType(k) => write!(f, "msg type == {k}"),
            Self::Message => f.write_str("any message"),
            Self::Any => f.write_str("anything"),
            Self::Sender(s) => write!(f, "sender in {} openids", s.len()),
            Self::Custom(m) => {
                struct D<'a>(&'a dyn Match);
                impl fmt::Display for D<'_> {
                    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        self.0.describe(f)
                    }
                }
                write!(f, "{}", D(&**m))
            }
            Self::And(a, b) => write!(f, "({a:?}) and ({b:?})"),
            Self::Or(a, b) => write!(f, "({a:?}) or ({b:?})"),
            Self::Not(a) => write!(f, "not ({a:?})"),
        }
    }
}

fn regex(pattern: &str) -> Regex {
    match Regex::new(pattern) {
        Ok(re) => re,
        Err(e) => panic!("invalid routing regex {pattern:?}: {e}"),
    }
}

fn owned<I, S>(words: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    words.into_iter().map(Into::into).collect()
}

impl Matcher {
    fn text_test(test: TextTest) -> Self {
        Self(Node::Text { test, ignore_case: false, voice: false })
    }

    /// Text equal to `s` (surrounding whitespace ignored; case-sensitive unless
    /// [`Matcher::ignore_case`]).
    pub fn text(s: impl Into<String>) -> Self {
        Self::text_test(TextTest::Exact(Words::new(vec![s.into()], true)))
    }

    /// Text equal to any of `words` (surrounding whitespace ignored).
    pub fn text_any<I, S>(words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::text_test(TextTest::Exact(Words::new(owned(words), true)))
    }

    /// Text containing `s`.
    pub fn text_contains(s: impl Into<String>) -> Self {
        Self::text_test(TextTest::Contains(Words::new(vec![s.into()], false)))
    }

    /// Text containing any of `words`; capture 0 is the word found.
    pub fn text_contains_any<I, S>(words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::text_test(TextTest::Contains(Words::new(owned(words), false)))
    }

    /// Text matching the regex `pattern`.
    ///
    /// # Panics
    /// When `pattern` is not a valid regex (a programming error, caught at startup); use
    /// [`Matcher::try_text_regex`] for patterns from a config file.
    pub fn text_regex(pattern: &str) -> Self {
        Self::text_test(TextTest::Regex(regex(pattern)))
    }

    /// Text matching the regex `pattern`.
    ///
    /// # Errors
    /// `pattern` is not a valid regex.
    pub fn try_text_regex(pattern: &str) -> Result<Self, regex::Error> {
        Ok(Self::text_test(TextTest::Regex(Regex::new(pattern)?)))
    }

    /// The text matchers inside this one compare case-insensitively (Unicode lowercase; a
    /// regex is compiled case-insensitive).
    #[must_use]
    pub fn ignore_case(mut self) -> Self {
        self.0.set_text_options(Some(true), None);
        self
    }

    /// The text matchers inside this one also read a voice message's speech recognition
    /// (`Recognition`, when the account has it switched on).
    #[must_use]
    pub fn with_voice(mut self) -> Self {
        self.0.set_text_options(None, Some(true));
        self
    }

    /// An event of this kind.
    pub fn event(kind: EventKind) -> Self {
        Self(Node::Event(kind))
    }

    /// An event whose key equals `key`.
    pub fn event_key(key: impl Into<String>) -> Self {
        Self(Node::EventKey(key.into()))
    }

    /// An event whose key starts with `prefix`.
    pub fn event_key_prefix(prefix: impl Into<String>) -> Self {
        Self(Node::EventKeyPrefix(prefix.into()))
    }

    /// An event whose key matches the regex `pattern`.
    ///
    /// # Panics
    /// When `pattern` is not a valid regex; see [`Matcher::try_event_key_regex`].
    pub fn event_key_regex(pattern: &str) -> Self {
        Self(Node::EventKeyRegex(regex(pattern)))
    }

    /// An event whose key matches the regex `pattern`.
    ///
    /// # Errors
    /// `pattern` is not a valid regex.
    pub fn try_event_key_regex(pattern: &str) -> Result<Self, regex::Error> {
        Ok(Self(Node::EventKeyRegex(Regex::new(pattern)?)))
    }

    /// A `subscribe` or `SCAN` event from the parametric QR code of this scene (without the
    /// `qrscene_` prefix).
    pub fn scene(scene: impl Into<String>) -> Self {
        Self(Node::Scene(scene.into()))
    }

    /// A message of this type.
    pub fn msg_type(kind: MsgKind) -> Self {
        Self(Node::MsgType(kind))
    }

    /// Any message that is not an event: what a catch-all reply should answer (an event
    /// such as a `LOCATION` report arrives without the user writing anything).
    pub fn message() -> Self {
        Self(Node::Message)
    }

    /// Anything, events included.
    pub fn any() -> Self {
        Self(Node::Any)
    }

    /// A message from one of these users.
    pub fn sender<I, S>(openids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self(Node::Sender(owned(openids)))
    }

    /// A message for which `f` returns true.
    pub fn predicate(f: impl Fn(&Inbound) -> bool + Send + Sync + 'static) -> Self {
        Self::custom(Predicate(f))
    }

    /// A condition of your own.
    pub fn custom(m: impl Match) -> Self {
        Self(Node::Custom(Arc::new(m)))
    }

    /// Both this and `other` (captures from whichever produced them, this one preferred).
    #[must_use]
    pub fn and(self, other: Self) -> Self {
        Self(Node::And(Box::new(self.0), Box::new(other.0)))
    }

    /// This or else `other` (captures from the one that matched).
    #[must_use]
    pub fn or(self, other: Self) -> Self {
        Self(Node::Or(Box::new(self.0), Box::new(other.0)))
    }

    /// `None` when it does not match; otherwise the captures, if a regex (or a word list:
    /// capture 0 is the text or the word found) produced any.
    pub fn matches(&self, inbound: &Inbound) -> Option<Option<Captures>> {
        self.0.matches(&Facts::new(inbound))
    }
}

/// Not this matcher (`!Matcher::sender(["o_test"])`).
impl std::ops::Not for Matcher {
    type Output = Self;

    fn not(self) -> Self {
        Self(Node::Not(Box::new(self.0)))
    }
}

/// Which messages a node can match, as bits: [`Node::classes`] is a superset of the
/// classes of the messages it matches, so a rule whose bits miss the message's is passed
/// over without looking at it.
const TEXT: u8 = 1;
const VOICE: u8 = 2;
const EVENT: u8 = 4;
/// Any other message, [`Incoming::Unknown`] ones included.
const OTHER: u8 = 8;
const ALL: u8 = TEXT | VOICE | EVENT | OTHER;

/// What the matchers read from one message, derived once for all the rules a dispatch
/// tries (and each of their nodes), rather than again by every node: its class, the text a
/// text matcher reads, and that text trimmed and lowercased when a matcher first asks.
struct Facts<'a> {
    inbound: &'a Inbound,
    msg: &'a Incoming,
    class: u8,
    /// A text message's content or a voice message's speech recognition.
    text: Option<&'a str>,
    trimmed: OnceCell<&'a str>,
    /// [`lowercase`] of the text.
    folded: OnceCell<Cow<'a, str>>,
    /// [`lowercase`] of the trimmed text, when trimming changed it.
    folded_trimmed: OnceCell<Cow<'a, str>>,
    /// The message's `MsgType` and the event's kind, which an unknown message or event
    /// derives from its name.
    kind: OnceCell<MsgKind>,
    event_kind: OnceCell<Option<EventKind>>,
}

impl<'a> Facts<'a> {
    fn new(inbound: &'a Inbound) -> Self {
        let msg = inbound.message();
        let (class, text) = match msg {
            Incoming::Text(t) => (TEXT, Some(t.content.as_str())),
            Incoming::Voice(v) => (VOICE, v.recognition.as_deref()),
            Incoming::Event(_) => (EVENT, None),
            _ => (OTHER, None),
        };
        Self {
            inbound,
            msg,
            class,
            text,
            trimmed: OnceCell::new(),
            folded: OnceCell::new(),
            folded_trimmed: OnceCell::new(),
            kind: OnceCell::new(),
            event_kind: OnceCell::new(),
        }
    }

    /// The text a text matcher reads: a text message's content, and with `voice` a voice
    /// message's speech recognition.
    fn text(&self, voice: bool) -> Option<&'a str> {
        if self.class == VOICE && !voice { None } else { self.text }
    }

    fn trimmed(&self, text: &'a str) -> &'a str {
        self.trimmed.get_or_init(|| trim(text))
    }

    fn folded(&self, text: &'a str) -> &str {
        self.folded.get_or_init(|| lowercase(text))
    }

    fn folded_trimmed(&self, text: &'a str) -> &str {
        let trimmed = self.trimmed(text);
        if trimmed.len() == text.len() {
            return self.folded(text);
        }
        self.folded_trimmed.get_or_init(|| lowercase(trimmed))
    }

    fn kind(&self) -> &MsgKind {
        self.kind.get_or_init(|| self.msg.kind())
    }

    fn event_kind(&self) -> Option<&EventKind> {
        self.event_kind.get_or_init(|| self.msg.event().map(Event::kind)).as_ref()
    }

    fn event_key(&self) -> Option<&'a str> {
        self.msg.event().and_then(Event::event_key)
    }
}

impl Node {
    fn set_text_options(&mut self, case: Option<bool>, with_voice: Option<bool>) {
        match self {
            Self::Text { test, ignore_case, voice } => {
                if let Some(c) = case {
                    *ignore_case = c;
                    if let TextTest::Regex(re) = test
                        && let Ok(rebuilt) = regex::RegexBuilder::new(re.as_str()).case_insensitive(c).build()
                    {
                        *re = rebuilt;
                    }
                }
                if let Some(v) = with_voice {
                    *voice = v;
                }
            }
            Self::And(a, b) | Self::Or(a, b) => {
                a.set_text_options(case, with_voice);
                b.set_text_options(case, with_voice);
            }
            Self::Not(a) => a.set_text_options(case, with_voice),
            _ => {}
        }
    }

    /// The classes of the messages this node can match (a superset).
    fn classes(&self) -> u8 {
        match self {
            Self::Text { voice, .. } => TEXT | if *voice { VOICE } else { 0 },
            Self::Event(_)
            | Self::EventKey(_)
            | Self::EventKeyPrefix(_)
            | Self::EventKeyRegex(_)
            | Self::Scene(_) => EVENT,
            // An unknown message's `MsgType` can be any name.
            Self::MsgType(kind) => {
                OTHER
                    | match kind {
                        MsgKind::Text => TEXT,
                        MsgKind::Voice => VOICE,
                        MsgKind::Event => EVENT,
                        _ => 0,
                    }
            }
            Self::Message => TEXT | VOICE | OTHER,
            Self::Any | Self::Sender(_) | Self::Custom(_) | Self::Not(_) => ALL,
            Self::And(a, b) => a.classes() & b.classes(),
            Self::Or(a, b) => a.classes() | b.classes(),
        }
    }

    fn matches(&self, facts: &Facts<'_>) -> Option<Option<Captures>> {
        let yes = |b: bool| if b { Some(None) } else { None };
        match self {
            Self::Text { test, ignore_case, voice } => {
                let text = facts.text(*voice)?;
                match test {
                    TextTest::Exact(words) => {
                        let trimmed = facts.trimmed(text);
                        if *ignore_case {
                            let folded = facts.folded_trimmed(text);
                            let found = words.folded.iter().any(|w| w == folded);
                            // The text as it came, in its own case.
                            found.then(|| Some(Captures::whole(trimmed.into())))
                        } else {
                            let word = words.given.iter().find(|w| w.trim() == trimmed)?;
                            // The word is the text; shared unless it had whitespace around it.
                            Some(Some(Captures::whole(if word.len() == trimmed.len() {
                                word.clone()
                            } else {
                                trimmed.into()
                            })))
                        }
                    }
                    TextTest::Contains(words) => {
                        let found = if *ignore_case {
                            let hay = facts.folded(text);
                            words.folded.iter().position(|w| hay.contains(w.as_str()))
                        } else {
                            words.given.iter().position(|w| text.contains(&**w))
                        };
                        found.map(|i| Some(Captures::whole(words.given[i].clone())))
                    }
                    TextTest::Regex(re) => re.captures(text).map(|c| Some(Captures::from_regex(re, &c))),
                }
            }
            Self::Event(kind) => yes(facts.event_kind() == Some(kind)),
            Self::EventKey(s) => yes(facts.event_key().is_some_and(|k| k == s)),
            Self::EventKeyPrefix(s) => yes(facts.event_key().is_some_and(|k| k.starts_with(s.as_str()))),
            Self::EventKeyRegex(re) => {
                let k = facts.event_key()?;
                re.captures(k).map(|c| Some(Captures::from_regex(re, &c)))
            }
            Self::Scene(s) => yes(facts.msg.event().and_then(Event::scene).is_some_and(|x| x == s)),
            Self::MsgType(kind) => yes(facts.kind() == kind),
            Self::Message => yes(facts.class != EVENT && *facts.kind() != MsgKind::Event),
            Self::Any => Some(None),
            Self::Sender(ids) => yes(ids.iter().any(|id| id == facts.inbound.openid())),
            Self::Custom(m) => m.matches(facts.inbound),
            Self::And(a, b) => {
                let ca = a.matches(facts)?;
                let cb = b.matches(facts)?;
                Some(ca.or(cb))
            }
            Self::Or(a, b) => a.matches(facts).or_else(|| b.matches(facts)),
            Self::Not(a) => yes(a.matches(facts).is_none()),
        }
    }
}

/// A matcher and the service that handles what it matches, optionally named and wrapped
/// in layers.
///
/// ```
/// use wemp_server::{Answer, Matcher, Reply, Router, Rule};
/// async fn report() -> Reply { Reply::text("done") }
/// let router = Router::new().route(
///     Rule::new(Matcher::text("report"), report)
///         .named("daily report")
///         .layer(tower::util::MapRequestLayer::new(|inbound| inbound)),
/// );
/// ```
#[derive(Clone)]
pub struct Rule {
    matcher: Matcher,
    service: RuleService,
    name: Arc<str>,
    /// [`Node::classes`] of the matcher.
    classes: u8,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("name", &self.name)
            .field("matcher", &self.matcher)
            .finish_non_exhaustive()
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
    pub fn service(matcher: Matcher, service: RuleService) -> Self {
        let name = format!("{matcher:?}").into();
        let classes = matcher.0.classes();
        Self { matcher, service, name, classes }
    }

    /// Names the rule: logs, the request span's `rule` field and observers show this name
    /// (by default, a description of the matcher).
    #[must_use]
    pub fn named(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Wraps this rule's handler in a tower layer (timeouts, rate limits, logging…). The
    /// layered service answers an [`Answer`], so a layer sees fall-through too.
    #[must_use]
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<RuleService>,
        L::Service: Service<Inbound, Response = Answer> + Clone + Send + Sync + 'static,
        <L::Service as Service<Inbound>>::Error: Into<BoxError>,
        <L::Service as Service<Inbound>>::Future: Send + 'static,
    {
        self.service = RuleService::new(layer.layer(self.service).map_err(Into::into));
        self
    }

    /// The rule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it matches.
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
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

/// Rules tried in order; the first that matches handles the message. A handler answering
/// [`Answer::FallThrough`] (`Err(FallThrough)`, `None`) passes it on to the next matching
/// rule; when no rule takes it, the fallback does (or the answer is `success`).
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
    fallback: Option<RuleService>,
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

    /// Appends `other`'s rules after this router's, so routers built separately (one per
    /// feature, or compiled from a config file) compose into one; `other`'s fallback applies
    /// when this router has none, and `other`'s router-wide layers wrap the merged router
    /// after this one's (use [`Rule::layer`] for a layer that stays with its rules).
    #[must_use]
    pub fn merge(mut self, other: Self) -> Self {
        self.rules.extend(other.rules);
        if self.fallback.is_none() {
            self.fallback = other.fallback;
        }
        self.layers.extend(other.layers);
        self
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
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

    /// Events of `kind` (WeChat's event names are case-insensitive; [`EventKind::from_wire`]
    /// normalises them).
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

    /// A boxed service for what no rule takes (a forwarder, say).
    #[must_use]
    pub fn fallback_service(mut self, service: RuleService) -> Self {
        self.fallback = Some(service);
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
        let dispatch = Dispatch(Arc::new(Rules { rules: self.rules.into(), fallback: self.fallback }));
        let mut service = BoxHandler::shared(dispatch);
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

/// The rules and the fallback of one router, shared by every delivery it dispatches.
struct Dispatch(Arc<Rules>);

struct Rules {
    rules: Box<[Rule]>,
    fallback: Option<RuleService>,
}

static FALLBACK: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("fallback"));
static NONE: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("none"));

/// The name of the rule that handled a delivery, for observers and the request's span. The
/// span's field is recorded once: by the first named rule (so the handler's own log lines
/// carry it), or by what a nested router or [`crate::Ctx::set_rule_name`] names after a
/// `fallback`, or at the end (`fallback`, `none`).
pub(crate) fn record_rule(inbound: &Inbound, name: &Arc<str>) {
    let shared = inbound.ctx().shared();
    if !Arc::ptr_eq(name, &FALLBACK) && !Arc::ptr_eq(name, &NONE) {
        shared.name_in_span(name);
    }
    shared.set_rule(name.clone());
}

/// Where [`Dispatch::walk`] stopped: an answer, or a matched service to be awaited.
enum Step {
    /// Answered in place (by plain functions, or with no rule and no fallback).
    Answered(Result<Reply, BoxError>),
    /// The rule at this index (`None`: the fallback) matched and has to be awaited, with the
    /// delivery carrying its captures when it has any.
    Await(Option<usize>, Option<Inbound>),
}

impl Dispatch {
    /// Runs the rules from the one at `from` as far as they answer in place: each matched
    /// rule whose service is a plain function (`RuleService::from_sync_fn`) is called here,
    /// without a future or a copy of the delivery; the first matched one that is not, stops
    /// the walk. After the rules, the fallback, the same way.
    fn walk(&self, inbound: &Inbound, facts: &Facts<'_>, from: usize) -> Step {
        for (index, rule) in self.0.rules.iter().enumerate().skip(from) {
            if rule.classes & facts.class == 0 {
                continue;
            }
            let Some(captures) = rule.matcher.0.matches(facts) else { continue };
            record_rule(inbound, &rule.name);
            let captured = captures.is_some().then(|| inbound.with_captures(captures));
            let Some(f) = rule.service.sync_fn() else { return Step::Await(Some(index), captured) };
            match f(captured.as_ref().unwrap_or(inbound)) {
                Ok(Answer::Reply(reply)) => return Step::Answered(Ok(reply)),
                Ok(Answer::FallThrough) => continue,
                Err(e) => return Step::Answered(Err(e)),
            }
        }
        match &self.0.fallback {
            Some(fallback) => {
                record_rule(inbound, &FALLBACK);
                match fallback.sync_fn() {
                    Some(f) => Step::Answered(f(inbound).map(Answer::into_reply_or_none)),
                    None => Step::Await(None, None),
                }
            }
            None => {
                record_rule(inbound, &NONE);
                Step::Answered(Ok(Reply::None))
            }
        }
    }

    /// The rest of a dispatch whose walk stopped at `stop` ([`Step::Await`]): that service
    /// awaited, then the walk on from the next rule if it falls through, and so on.
    async fn finish(
        rules: Arc<Rules>,
        inbound: Inbound,
        (mut at, mut captured): (Option<usize>, Option<Inbound>),
    ) -> Result<Reply, BoxError> {
        let this = Self(rules);
        // What the matchers read, derived once for the rules after the awaited ones.
        let facts = Facts::new(&inbound);
        loop {
            let Some(index) = at else {
                let Some(fallback) = &this.0.fallback else { return Ok(Reply::None) };
                return fallback.call_once(inbound.clone()).await.map(Answer::into_reply_or_none);
            };
            let service = &this.0.rules[index].service;
            match service.call_once(captured.take().unwrap_or_else(|| inbound.clone())).await? {
                Answer::Reply(reply) => return Ok(reply),
                Answer::FallThrough => match this.walk(&inbound, &facts, index + 1) {
                    Step::Answered(answer) => return answer,
                    Step::Await(next, with) => (at, captured) = (next, with),
                },
            }
        }
    }
}

impl Answer {
    /// The reply, or none when the handler let the message fall through (past the
    /// fallback: nothing is left to answer it).
    fn into_reply_or_none(self) -> Reply {
        match self {
            Self::Reply(reply) => reply,
            Self::FallThrough => Reply::None,
        }
    }
}

impl CallShared<Reply> for Dispatch {
    fn call_shared(&self, inbound: Inbound) -> BoxFuture<'static, Result<Reply, BoxError>> {
        let rules = self.0.clone();
        // The rules run when the future is first polled, as a service's call would.
        Box::pin(async move {
            let stop = {
                let facts = Facts::new(&inbound);
                match Self(rules.clone()).walk(&inbound, &facts, 0) {
                    Step::Answered(answer) => return answer,
                    Step::Await(at, captured) => (at, captured),
                }
            };
            Self::finish(rules, inbound, stop).await
        })
    }

    /// The rules run now: a delivery whose matched rule is a plain function is answered
    /// without a future (nor its box); the first matched one that has to be awaited goes on in
    /// a boxed future.
    fn call_now(&self, inbound: Inbound) -> Called<Reply> {
        let stop = {
            let facts = Facts::new(&inbound);
            match self.walk(&inbound, &facts, 0) {
                Step::Answered(answer) => return Called::Now(answer),
                Step::Await(at, captured) => (at, captured),
            }
        };
        Called::Later(Box::pin(Self::finish(self.0.clone(), inbound, stop)))
    }
}

/// A router that can be replaced while the server runs (hot reload): every delivery runs
/// on the router in effect when it arrived, start to finish, and a swap never waits for
/// running deliveries nor makes a delivery wait for it.
///
/// ```
/// use wemp_server::{Account, LiveRouter, Reply, Router, WechatService};
/// async fn v1() -> Reply { Reply::text("v1") }
/// async fn v2() -> Reply { Reply::text("v2") }
/// let live = LiveRouter::new(Router::new().fallback(v1));
/// let service = WechatService::builder()
///     .account(Account::new("wx2c2769f8efd9abc2", "spamtest"))
///     .handler_service(live.service())
///     .build()?;
/// // Later, e.g. on SIGHUP:
/// live.swap(Router::new().fallback(v2));
/// # drop(service);
/// # Ok::<(), wemp_server::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct LiveRouter {
    /// The router in effect. Read by every delivery on every worker thread: a lock's or a
    /// shared count's atomic writes would pass their cache line between the threads on
    /// each one, where a load from an `ArcSwap` writes only to the reading thread's own
    /// slot.
    current: Arc<ArcSwap<Built>>,
}

/// A router and its service, built once per swap.
struct Built {
    router: Router,
    service: BoxHandler,
}

impl fmt::Debug for Built {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.router, f)
    }
}

impl Built {
    fn new(router: Router) -> Arc<Self> {
        Arc::new(Self { service: router.clone().into_service(), router })
    }
}

impl LiveRouter {
    /// Starts with `router`.
    pub fn new(router: Router) -> Self {
        Self { current: Arc::new(ArcSwap::new(Built::new(router))) }
    }

    /// Replaces the router; deliveries already running finish on the old one.
    pub fn swap(&self, router: Router) {
        self.current.store(Built::new(router));
    }

    /// The rules in effect now (the router is replaced as a whole, so these are one
    /// router's rules).
    pub fn rules(&self) -> Vec<Rule> {
        self.current.load().router.rules.clone()
    }

    /// A service running each delivery on the router in effect when it arrives: give it to
    /// [`crate::WechatServiceBuilder::handler_service`].
    pub fn service(&self) -> BoxHandler {
        BoxHandler::shared(LiveService { live: self.clone() })
    }
}

struct LiveService {
    live: LiveRouter,
}

impl CallShared<Reply> for LiveService {
    fn call_shared(&self, inbound: Inbound) -> BoxFuture<'static, Result<Reply, BoxError>> {
        // The router in effect now; its future owns what it needs, so a swap while it runs
        // changes nothing for this delivery.
        self.live.current.load().service.call_owned(inbound)
    }

    fn call_now(&self, inbound: Inbound) -> Called<Reply> {
        // As `call_shared`: the router in effect now, and what is left to await owns what it
        // needs.
        let current = self.live.current.load();
        match current.service.call_now(inbound) {
            Called::NotYet(inbound) => Called::Later(current.service.call_owned(inbound)),
            called => called,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{Account, Ctx};

    fn inbound(xml: &str) -> Inbound {
        let message = Incoming::parse(xml).unwrap();
        let account = Arc::new(Account::new("wx_router_test", "Tok123"));
        Inbound::new(message, account, wemp_proto::Mode::Plain, Ctx::detached(Duration::from_secs(5)))
    }

    fn message(msg_type: &str, fields: &str) -> Inbound {
        inbound(&format!(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>o_1</FromUserName><CreateTime>1</CreateTime>\
             <MsgType>{msg_type}</MsgType>{fields}</xml>"
        ))
    }

    /// Messages of every class: texts with and without whitespace around them and in
    /// other cases, voice with and without recognition, events known and not, an image, a
    /// text that did not decode (unknown, `MsgType` text) and a type wemp does not know.
    fn messages() -> Vec<Inbound> {
        let mut all: Vec<Inbound> =
            ["hello", "  Hello World ", "HELP", " help", "帮助", "Straße ΣΑΣ ", "order 42", ""]
                .iter()
                .map(|t| message("text", &format!("<Content><![CDATA[{t}]]></Content><MsgId>1</MsgId>")))
                .collect();
        all.extend([
            message("voice", "<MediaId>m</MediaId><Format>amr</Format><Recognition><![CDATA[ HELP ]]></Recognition><MsgId>2</MsgId>"),
            message("voice", "<MediaId>m</MediaId><Format>amr</Format><MsgId>3</MsgId>"),
            message("image", "<PicUrl>https://example.com/p</PicUrl><MediaId>m</MediaId><MsgId>4</MsgId>"),
            message("text", "<Content>help</Content><MsgId>not a number</MsgId>"),
            message("text_v2", "<Content>help</Content>"),
            message("event", "<Event>subscribe</Event><EventKey><![CDATA[qrscene_demo]]></EventKey>"),
            message("event", "<Event>SCAN</Event><EventKey><![CDATA[demo]]></EventKey>"),
            message("event", "<Event>CLICK</Event><EventKey><![CDATA[ABOUT]]></EventKey>"),
            message("event", "<Event>user_stamp_card</Event>"),
            message("event", "<Event>LOCATION</Event><Latitude>1</Latitude><Longitude>2</Longitude><Precision>3</Precision>"),
        ]);
        assert!(matches!(all[all.len() - 7].message(), Incoming::Unknown(u) if u.msg_type == "text"));
        all
    }

    /// Matchers of every kind, alone and combined.
    fn matchers() -> Vec<Matcher> {
        let text = [
            Matcher::text("help"),
            Matcher::text_any(["help", "帮助"]).ignore_case(),
            Matcher::text_any(["help", "hello world"]).ignore_case().with_voice(),
            Matcher::text(" help").with_voice(),
            Matcher::text_contains("hello"),
            Matcher::text_contains_any(["hello", "ss σας", "o w"]).ignore_case().with_voice(),
            Matcher::text_contains_any(["LP "]).ignore_case().with_voice(),
            Matcher::text_regex(r"^order (\d+)$"),
            Matcher::text_regex(r"^\s*help").ignore_case().with_voice(),
        ];
        let mut all = text.to_vec();
        all.extend([
            Matcher::event(EventKind::Subscribe),
            Matcher::event(EventKind::from_wire("USER_STAMP_CARD")),
            Matcher::event_key("ABOUT"),
            Matcher::event_key_prefix("qrscene_"),
            Matcher::event_key_regex("^(AB)OUT$"),
            Matcher::scene("demo"),
            Matcher::msg_type(MsgKind::Text),
            Matcher::msg_type(MsgKind::Voice),
            Matcher::msg_type(MsgKind::Event),
            Matcher::msg_type(MsgKind::Image),
            Matcher::msg_type(MsgKind::from_wire("text_v2")),
            Matcher::message(),
            Matcher::any(),
            Matcher::sender(["o_1"]),
            Matcher::sender(["o_2"]),
            Matcher::predicate(|i| i.text().is_none()),
            Matcher::event(EventKind::Subscribe).and(Matcher::scene("demo")),
            Matcher::event(EventKind::Click).and(Matcher::event_key("ABOUT")),
            Matcher::msg_type(MsgKind::Text).or(Matcher::event(EventKind::Scan)),
            text[1].clone().and(Matcher::msg_type(MsgKind::Voice)),
        ]);
        let negated: Vec<Matcher> = all.iter().map(|m| !m.clone()).collect();
        all.extend(negated);
        all
    }

    /// [`Node::matches`] as it was before [`Facts`]: everything derived again by each node.
    fn matches_before(node: &Node, inbound: &Inbound) -> Option<Option<Captures>> {
        fn readable_text(msg: &Incoming, voice: bool) -> Option<&str> {
            match msg {
                Incoming::Text(t) => Some(&t.content),
                Incoming::Voice(v) if voice => v.recognition.as_deref(),
                _ => None,
            }
        }
        let msg = inbound.message();
        let key = || msg.event().and_then(|e| e.event_key());
        let yes = |b: bool| if b { Some(None) } else { None };
        match node {
            Node::Text { test, ignore_case, voice } => {
                let text = readable_text(msg, *voice)?;
                match test {
                    TextTest::Exact(words) => {
                        let text = text.trim();
                        if *ignore_case {
                            let folded = lowercase(text);
                            let found = words.folded.iter().any(|w| *w == folded);
                            found.then(|| Some(Captures::whole(text.into())))
                        } else {
                            let word = words.given.iter().find(|w| w.trim() == text)?;
                            Some(Some(Captures::whole(if word.len() == text.len() {
                                word.clone()
                            } else {
                                text.into()
                            })))
                        }
                    }
                    TextTest::Contains(words) => {
                        let found = if *ignore_case {
                            let hay = lowercase(text);
                            words.folded.iter().position(|w| hay.contains(w.as_str()))
                        } else {
                            words.given.iter().position(|w| text.contains(&**w))
                        };
                        found.map(|i| Some(Captures::whole(words.given[i].clone())))
                    }
                    TextTest::Regex(re) => re.captures(text).map(|c| Some(Captures::from_regex(re, &c))),
                }
            }
            Node::Event(kind) => yes(msg.event().is_some_and(|e| e.kind() == *kind)),
            Node::EventKey(s) => yes(key().is_some_and(|k| k == s)),
            Node::EventKeyPrefix(s) => yes(key().is_some_and(|k| k.starts_with(s.as_str()))),
            Node::EventKeyRegex(re) => {
                let k = key()?;
                re.captures(k).map(|c| Some(Captures::from_regex(re, &c)))
            }
            Node::Scene(s) => yes(msg.event().and_then(|e| e.scene()).is_some_and(|x| x == s)),
            Node::MsgType(kind) => yes(msg.kind() == *kind),
            Node::Message => yes(msg.event().is_none() && msg.kind() != MsgKind::Event),
            Node::Any => Some(None),
            Node::Sender(ids) => yes(ids.iter().any(|id| id == inbound.openid())),
            Node::Custom(m) => m.matches(inbound),
            Node::And(a, b) => {
                let ca = matches_before(a, inbound)?;
                let cb = matches_before(b, inbound)?;
                Some(ca.or(cb))
            }
            Node::Or(a, b) => matches_before(a, inbound).or_else(|| matches_before(b, inbound)),
            Node::Not(a) => yes(matches_before(a, inbound).is_none()),
        }
    }

    fn shown(m: Option<Option<Captures>>) -> String {
        format!("{m:?}")
    }

    #[test]
    fn a_node_matches_only_messages_of_its_classes() {
        let mut matched = [0; 4];
        for m in matchers() {
            let classes = m.0.classes();
            for inbound in messages() {
                let facts = Facts::new(&inbound);
                if m.matches(&inbound).is_some() {
                    assert_ne!(classes & facts.class, 0, "{m:?} matches a message of class {}", facts.class);
                    matched[facts.class.trailing_zeros() as usize] += 1;
                }
            }
        }
        // Every class was matched by something.
        assert!(matched.iter().all(|&n| n > 0), "{matched:?}");
        // The bits are not all set everywhere: the event matchers leave texts out.
        assert_eq!(Matcher::event(EventKind::Subscribe).0.classes() & TEXT, 0);
        assert_eq!(Matcher::text("x").0.classes(), TEXT);
    }

    #[test]
    fn matchers_sharing_facts_match_as_before() {
        // A dispatch asks the matchers in turn with one Facts: whatever one derived first
        // (the trimmed or lowercase text, the kinds) is what the next would derive alone,
        // and each answers (captures included) as it did when it derived everything itself.
        let all = matchers();
        let mut matched = 0;
        for inbound in messages() {
            for order in [all.iter().collect::<Vec<_>>(), all.iter().rev().collect()] {
                let facts = Facts::new(&inbound);
                for m in order {
                    let before = matches_before(&m.0, &inbound);
                    matched += usize::from(before.is_some());
                    let before = shown(before);
                    assert_eq!(shown(m.0.matches(&facts)), before, "{m:?} on {:?}", inbound.message());
                    assert_eq!(shown(m.matches(&inbound)), before, "{m:?} on {:?}", inbound.message());
                }
            }
        }
        assert!(matched > 100, "{matched}");
    }

    #[test]
    fn a_sync_rule_answers_in_place_with_its_captures_or_falls_through() {
        let captured = |i: &Inbound| i.captures().and_then(|c| c.get(1)).unwrap_or("none").to_owned();
        let router = Router::new()
            .route(
                Rule::service(
                    Matcher::text_regex(r"^order (\d+)$"),
                    RuleService::from_sync_fn(move |i| {
                        let n = captured(i);
                        Ok(if n == "0" {
                            Answer::FallThrough
                        } else {
                            Answer::Reply(Reply::text(format!("order {n}")))
                        })
                    }),
                )
                .named("order"),
            )
            .route(
                Rule::service(
                    Matcher::text_contains("order"),
                    RuleService::from_sync_fn(move |i| {
                        Ok(Answer::Reply(Reply::text(format!("any order: {}", captured(i)))))
                    }),
                )
                .named("any"),
            );
        let service = router.into_service();
        for (text, reply, rule) in [
            ("order 42", "order 42", "order"),
            ("order 0", "any order: none", "any"),
            ("my order", "any order: none", "any"),
        ] {
            let inbound = message("text", &format!("<Content>{text}</Content><MsgId>1</MsgId>"));
            let answer =
                futures_util::FutureExt::now_or_never(service.call_once(inbound.clone())).unwrap().unwrap();
            assert_eq!(answer, Reply::text(reply), "{text}");
            assert_eq!(inbound.ctx().rule_name().as_deref(), Some(rule), "{text}");
        }
    }

    #[test]
    fn a_router_called_now_answers_in_place_until_a_rule_must_be_awaited_and_as_its_future_does() {
        // Plain functions and async handlers, each answering (with its capture) or falling
        // through (on `-S`, `-A`, `-T`), before a plain, an async or no fallback.
        let sync = |name: &'static str, pass: &'static str| {
            RuleService::from_sync_fn(move |i: &Inbound| {
                let capture = i.captures().and_then(|c| c.get(1)).unwrap_or("-").to_owned();
                Ok(match i.text().is_some_and(|t| t.contains(pass)) {
                    true => Answer::FallThrough,
                    false => Answer::Reply(Reply::text(format!("{name} {capture}"))),
                })
            })
        };
        async fn later(inbound: Inbound) -> Result<Reply, crate::FallThrough> {
            tokio::task::yield_now().await;
            let capture = inbound.captures().and_then(|c| c.get(1)).unwrap_or("-").to_owned();
            match inbound.text().is_some_and(|t| t.contains("-A")) {
                true => Err(crate::FallThrough),
                false => Ok(Reply::text(format!("async {capture}"))),
            }
        }
        let rules = || {
            Router::new()
                .route(Rule::service(Matcher::text_regex(r"^s(\d*)"), sync("s", "-S")).named("s"))
                .route(Rule::new(Matcher::text_regex(r"a(\d*)"), later).named("async"))
                .route(Rule::service(Matcher::text_contains("t"), sync("t", "-T")).named("t"))
        };
        let routers = [rules().fallback_service(sync("fallback", "-F")), rules().fallback(later), rules()]
            .map(Router::into_service);
        // The text, and for each router whether a rule (or fallback) that must be awaited is
        // reached.
        let cases = [
            ("s1", [false, false, false]),
            ("s1 -S t", [false, false, false]),
            ("s1 -S -T t", [false, true, false]),
            ("a2", [true, true, true]),
            ("s3 a4 -S", [true, true, true]),
            ("a5 t -A", [true, true, true]),
            ("a6 -A -T t", [true, true, true]),
            ("x", [false, true, false]),
            ("tx", [false, false, false]),
        ];
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        for (text, awaited) in cases {
            for (r, service) in routers.iter().enumerate() {
                let fresh = || message("text", &format!("<Content>{text}</Content><MsgId>1</MsgId>"));
                let (now, by_future) = (fresh(), fresh());
                let called = match service.call_now(now.clone()) {
                    Called::Now(answer) => {
                        assert!(!awaited[r], "router {r}: {text}: answered in place");
                        answer
                    }
                    Called::Later(future) => {
                        assert!(awaited[r], "router {r}: {text}: a future");
                        runtime.block_on(future)
                    }
                    Called::NotYet(_) => panic!("a router is always ready"),
                };
                let expected = runtime.block_on(service.call_once(by_future.clone())).unwrap();
                assert_eq!(called.unwrap(), expected, "router {r}: {text}");
                assert_eq!(now.ctx().rule_name(), by_future.ctx().rule_name(), "router {r}: {text}");
            }
        }
        // What the futures answered, pinned (so that both ways cannot be wrong alike).
        let answer = |r: usize, text: &str| {
            let inbound = message("text", &format!("<Content>{text}</Content><MsgId>1</MsgId>"));
            let reply = runtime.block_on(routers[r].call_once(inbound.clone())).unwrap();
            (reply, inbound.ctx().rule_name().map(|n| n.to_string()))
        };
        let text = |t: &str, rule: &str| (Reply::text(t), Some(rule.to_owned()));
        assert_eq!(answer(0, "s1"), text("s 1", "s"));
        assert_eq!(answer(0, "s1 -S t"), text("t -", "t"));
        assert_eq!(answer(0, "s1 -S -T t"), text("fallback -", "fallback"));
        assert_eq!(answer(1, "s1 -S -T t"), text("async -", "fallback"));
        assert_eq!(answer(2, "s1 -S -T t"), (Reply::None, Some("none".to_owned())));
        assert_eq!(answer(0, "s3 a4 -S"), text("async 4", "async"));
        assert_eq!(answer(0, "a5 t -A"), text("t -", "t"));
        assert_eq!(answer(2, "a6 -A -T t"), (Reply::None, Some("none".to_owned())));
    }

    #[test]
    fn the_router_passes_over_rules_of_other_classes_and_answers_as_the_first_match() {
        async fn named(ctx: crate::Ctx) -> Reply {
            Reply::text(ctx.rule_name().map(|n| n.to_string()).unwrap_or_default())
        }
        let all = matchers();
        let router = all
            .iter()
            .enumerate()
            .fold(Router::new(), |r, (i, m)| r.route(Rule::new(m.clone(), named).named(format!("rule {i}"))));
        let service = router.into_service();
        for inbound in messages() {
            let expected =
                all.iter().position(|m| m.matches(&inbound).is_some()).map(|i| format!("rule {i}"));
            let reply =
                futures_util::FutureExt::now_or_never(service.call_once(inbound.clone())).unwrap().unwrap();
            let expected = expected.map_or(Reply::None, Reply::text);
            assert_eq!(reply, expected, "{:?}", inbound.message());
        }
    }

    /// [`lowercase`] as it was before its ASCII shortcut.
    fn lowercase_before(text: &str) -> Cow<'_, str> {
        let changes = |c: char| {
            let mut lower = c.to_lowercase();
            lower.next() != Some(c) || lower.next().is_some()
        };
        if text.chars().any(changes) { Cow::Owned(text.to_lowercase()) } else { Cow::Borrowed(text) }
    }

    #[test]
    fn trim_reads_as_str_trim() {
        // Every character up to U+00FF, and a few wider spaces, at either end of a text and
        // alone.
        let mut ends: Vec<char> = (0u32..=0xFF).filter_map(char::from_u32).collect();
        ends.extend(['\u{2003}', '\u{3000}', '\u{200B}', '帮']);
        let mut untouched = 0;
        for a in &ends {
            for b in &ends {
                for text in [format!("{a}x{b}"), format!("{a}{b}"), a.to_string(), String::new()] {
                    assert_eq!(trim(&text), text.trim(), "{text:?}");
                    untouched += usize::from(trim(&text).len() == text.len());
                }
            }
        }
        assert!(untouched > 1000, "{untouched}");
    }

    #[test]
    fn lowercase_reads_as_before_and_borrows_what_it_does_not_change() {
        // Every ASCII character in every position of a short text, then mixed scripts.
        let mut texts: Vec<String> = (0u8..128).map(|b| format!("a{}Z", b as char)).collect();
        texts.extend((0u8..128).map(|b| (b as char).to_string()));
        texts.extend(
            [
                "",
                "hello",
                "HELLO",
                "Order 42",
                "帮助",
                "你好 Hello",
                "İstanbul",
                "ΣΑΣ",
                "straße",
                "ǅ",
                "\u{0}x",
            ]
            .map(String::from),
        );
        let mut borrowed = 0;
        for text in &texts {
            let (now, before) = (lowercase(text), lowercase_before(text));
            assert_eq!(now, before, "{text:?}");
            assert_eq!(matches!(now, Cow::Borrowed(_)), matches!(before, Cow::Borrowed(_)), "{text:?}");
            borrowed += usize::from(matches!(now, Cow::Borrowed(_)));
        }
        assert!(borrowed > 100 && borrowed < texts.len(), "{borrowed} of {}", texts.len());
    }
}
