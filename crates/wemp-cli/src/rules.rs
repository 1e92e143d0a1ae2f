//! `[[rules]]` of `wemp serve`: the config schema, reply templates, and the compiler from
//! them to one [`wemp_server::Router`] (every problem collected, not only the first).
//! Matching and hot reload are wemp-server's ([`wemp_server::Matcher`],
//! [`wemp_server::LiveRouter`]); this module only translates.
//!
//! Matchers: `keyword` (exact), `contains` — both any of several words, case-insensitive
//! unless `ignore_case = false`, reading voice recognition too — `regex` (captures as
//! `{1}`…), `event` (with `scene` for subscribe/SCAN and `key` for menu events), `type`
//! (message type) and `default` (any message; events too only with `events = true`).
//! Actions: a reply — `text` (with `{openid}`, `{content}`, `{account}`, `{scene}`, `{key}`
//! and captures), `image`/`voice` by media id, `video`, `music`, `news`, `transfer`
//! (customer service) or `none` — or `forward` (the message goes to an app at a URL, or
//! through the relay, and the app's answer is the reply: docs/gateway.md) — each compiled
//! into the rule's handler.
//!
//! ```
//! use wemp_cli::rules::RuleSet;
//! let rules = RuleSet::from_toml(r#"
//! [[rules]]
//! name = "orders"
//! regex = '^order (\d+)$'
//! reply.text = "Order {1} ships today, {openid}."
//! "#).unwrap();
//! assert_eq!(rules.len(), 1);
//! assert_eq!(rules.router().rules()[0].name(), "orders");
//! let service = wemp_server::LiveRouter::new(rules.into_router()).service();
//! # drop(service);
//! ```

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use wemp_proto::reply::{Article, MAX_ARTICLES, MAX_ARTICLES_FOR_MESSAGE, Music};
use wemp_proto::{Event, EventKind, Incoming, MsgKind, Reply};
use wemp_server::{Answer, Forward, Inbound, Matcher, Router, Rule, RuleService};

use crate::gateway::GatewayError;
use crate::i18n::{Msg, Wording};

/// The demo rules `wemp serve` runs when no config file is given (`demo_rules.toml`).
pub const DEMO_RULES: &str = include_str!("demo_rules.toml");

/// Zero, one or several strings (`keyword = "hi"` or `keyword = ["hi", "hello"]`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Words {
    /// One string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Words {
    fn to_vec(&self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s.clone()],
            Self::Many(v) => v.clone(),
        }
    }
}

/// One `[[rules]]` entry as written.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// A name for logs.
    pub name: Option<String>,
    /// Text equal to one of these (trimmed).
    pub keyword: Option<Words>,
    /// Text containing one of these.
    pub contains: Option<Words>,
    /// Text matching this regular expression.
    pub regex: Option<String>,
    /// Case-insensitive `keyword` and `contains` (default true).
    pub ignore_case: Option<bool>,
    /// An event (`subscribe`, `SCAN`, `CLICK`, `VIEW`, … case-insensitive).
    pub event: Option<String>,
    /// The QR scene, with `event = "subscribe"` or `"SCAN"`.
    pub scene: Option<String>,
    /// The `EventKey`, with menu events (`CLICK` key, `VIEW` URL, …).
    pub key: Option<String>,
    /// A message type (`text`, `image`, `voice`, `location`, …).
    #[serde(rename = "type")]
    pub msg_type: Option<String>,
    /// Matches any message (not events: a follower opening the chat sends a `LOCATION`
    /// event, and a catch-all apology would answer it).
    pub default: Option<bool>,
    /// With `default = true`: answer events too.
    pub events: Option<bool>,
    /// Waits this long before answering (`"6s"`; at most a minute), to try out what
    /// happens when a handler is slow: past `server.deadline` the server answers
    /// `success` and the reply goes out later as a customer-service message.
    pub delay: Option<String>,
    /// The reply.
    #[serde(default)]
    pub reply: ReplyConfig,
    /// Instead of a reply: forward the message to the app at this URL, or through the relay
    /// (`"relay"`), with `[gateway]`'s secret, fallback text and timeout; the app's answer is
    /// the reply (docs/gateway.md).
    pub forward: Option<String>,
}

/// `reply` of a rule: exactly one of the fields.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReplyConfig {
    /// A text template.
    pub text: Option<String>,
    /// An image by media id.
    pub image: Option<String>,
    /// A voice message by media id.
    pub voice: Option<String>,
    /// A video.
    pub video: Option<VideoConfig>,
    /// Music.
    pub music: Option<MusicConfig>,
    /// News articles.
    pub news: Option<Vec<ArticleConfig>>,
    /// Transfer to customer service: `true`, or an agent account `"kf@wechat_id"`.
    pub transfer: Option<Transfer>,
    /// No reply (`success`).
    pub none: Option<bool>,
}

/// A video reply.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VideoConfig {
    /// Media id.
    pub media_id: String,
    /// Title.
    pub title: Option<String>,
    /// Description.
    pub description: Option<String>,
}

/// A music reply.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MusicConfig {
    /// Title.
    pub title: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Music URL.
    pub music_url: Option<String>,
    /// High-quality music URL.
    pub hq_music_url: Option<String>,
    /// Thumbnail media id.
    pub thumb_media_id: String,
}

/// One news article.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ArticleConfig {
    /// Title (a template).
    pub title: String,
    /// Description (a template).
    #[serde(default)]
    pub description: String,
    /// Picture URL.
    #[serde(default)]
    pub pic_url: String,
    /// Link.
    pub url: String,
}

/// `transfer = true` or `transfer = "agent@wechat_id"`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Transfer {
    /// To any agent.
    Any(bool),
    /// To one agent.
    Agent(String),
}

/// A rule that cannot be used (or, among [`RuleSet::warnings`], looks wrong), with the path of
/// the offending field (`rules[2].regex`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    /// Dotted path of the field, from the config root.
    pub path: String,
    /// What is wrong, worded in any language.
    pub message: Wording,
}

impl RuleError {
    /// `rules[2].regex: …` in `lang`.
    pub fn text(&self, lang: crate::i18n::Lang) -> String {
        format!("{}: {}", self.path, self.message.get(lang))
    }
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for RuleError {}

impl TemplateError {
    /// The error as a [`Wording`], for the config check's problems.
    pub fn message(&self) -> Wording {
        match self {
            Self::UnmatchedClose => Msg::RuleUnmatchedClose.into(),
            Self::Unclosed => Msg::RuleUnclosed.into(),
            Self::UnknownPlaceholder(p) => {
                Wording::new(Msg::RuleUnknownPlaceholder).with("placeholder", format!("{{{p}}}"))
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    OpenId,
    Account,
    Content,
    Scene,
    Key,
    Capture(usize),
}

impl Piece {
    /// [`Piece::text`] where it is borrowed; `None` where it is made for the message.
    fn borrowed<'a>(&'a self, inbound: &'a Inbound) -> Option<&'a str> {
        let incoming = inbound.message();
        Some(match self {
            Self::Literal(s) => s,
            Self::OpenId => &incoming.header().from,
            Self::Account => &incoming.header().to,
            Self::Content => return content_borrowed(incoming),
            Self::Scene => incoming.event().and_then(Event::scene).unwrap_or_default(),
            Self::Key => incoming.event().and_then(Event::event_key).unwrap_or_default(),
            Self::Capture(n) => inbound.captures().and_then(|c| c.get(*n)).unwrap_or_default(),
        })
    }

    /// What the piece stands for in a reply to `inbound`.
    fn text<'a>(&'a self, inbound: &'a Inbound) -> Cow<'a, str> {
        match self.borrowed(inbound) {
            Some(s) => Cow::Borrowed(s),
            None => content_ref(inbound.message()),
        }
    }
}

/// Room for a piece made for the message: a location's two coordinates.
const MADE_ROOM: usize = 32;

/// Why a reply text is not a usable template.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// A `}` that closes nothing.
    #[error("unmatched `}}` (write `}}}}` for a brace)")]
    UnmatchedClose,
    /// A `{` never closed.
    #[error("unclosed `{{` (write `{{{{` for a brace)")]
    Unclosed,
    /// A placeholder the templates do not have.
    #[error(
        "unknown placeholder {{{0}}}: use {{openid}}, {{account}}, {{content}}, {{scene}}, {{key}} or a capture {{1}}"
    )]
    UnknownPlaceholder(String),
}

/// Why a TOML document of rules cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// Not TOML, or not `[[rules]]` only.
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    /// The rules' errors, every one found.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Rules(Vec<RuleError>),
}

/// A reply text with placeholders, checked when the rules load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextTemplate(Vec<Piece>);

impl TextTemplate {
    /// Parses `{openid}`, `{account}`, `{content}`, `{scene}`, `{key}`, `{0}`…`{99}`;
    /// `{{` and `}}` are literal braces.
    ///
    /// # Errors
    /// An unknown placeholder or an unbalanced brace.
    pub fn parse(s: &str) -> Result<Self, TemplateError> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '}' => return Err(TemplateError::UnmatchedClose),
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(TemplateError::Unclosed),
                        }
                    }
                    let piece = match name.as_str() {
                        "openid" => Piece::OpenId,
                        "account" => Piece::Account,
                        "content" => Piece::Content,
                        "scene" => Piece::Scene,
                        "key" => Piece::Key,
                        n if !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit()) => {
                            Piece::Capture(n.parse().unwrap_or(0))
                        }
                        other => return Err(TemplateError::UnknownPlaceholder(other.to_owned())),
                    };
                    if !lit.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut lit)));
                    }
                    pieces.push(piece);
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Literal(lit));
        }
        Ok(Self(pieces))
    }

    fn max_capture(&self) -> usize {
        self.0.iter().map(|p| if let Piece::Capture(n) = p { *n } else { 0 }).max().unwrap_or(0)
    }

    fn uses_content(&self) -> bool {
        self.0.contains(&Piece::Content)
    }

    /// The text for one delivery; captures come from the rule's matcher.
    ///
    /// Written into one string sized for it up front: pushed piece by piece, a reply such
    /// as `Hello, {openid}!` grew (and reallocated) once a piece, and `{content}` was
    /// copied twice.
    fn render(&self, inbound: &Inbound) -> String {
        // Measured without making anything: a piece made for the message (a location's
        // coordinates) is made once, when it is written, into the room left for it.
        let len = self.0.iter().map(|p| p.borrowed(inbound).map_or(MADE_ROOM, str::len)).sum();
        let mut out = String::with_capacity(len);
        for p in &self.0 {
            out.push_str(&p.text(inbound));
        }
        out
    }
}

/// What `{content}` stands for: the text, a voice message's recognition, a location's
/// label (or coordinates), a link's URL; empty for other messages. A rule that can answer
/// events cannot use `{content}` (an error when the rules compile): events have no content;
/// use `{key}` or `{scene}`.
pub fn content_of(incoming: &Incoming) -> String {
    content_ref(incoming).into_owned()
}

/// [`content_of`], borrowed from the message where it can be.
fn content_ref(incoming: &Incoming) -> Cow<'_, str> {
    match (content_borrowed(incoming), incoming) {
        (Some(s), _) => Cow::Borrowed(s),
        (None, Incoming::Location(l)) => Cow::Owned(format!("{}, {}", l.latitude, l.longitude)),
        (None, _) => Cow::Borrowed(""),
    }
}

/// [`content_ref`] where it is borrowed; `None` where it is made (a location's coordinates).
fn content_borrowed(incoming: &Incoming) -> Option<&str> {
    Some(match incoming {
        Incoming::Text(t) => &t.content,
        Incoming::Voice(v) => v.recognition.as_deref().unwrap_or_default(),
        Incoming::Location(l) if !l.label.is_empty() => &l.label,
        Incoming::Location(_) => return None,
        Incoming::Link(l) => &l.url,
        _ => "",
    })
}

#[derive(Clone, Debug)]
enum ReplyTemplate {
    Text(TextTemplate),
    Image(String),
    Voice(String),
    Video { media_id: String, title: Option<String>, description: Option<String> },
    Music(Music),
    News(Vec<(TextTemplate, TextTemplate, String, String)>),
    Transfer(Option<String>),
    None,
}

impl ReplyTemplate {
    fn render(&self, inbound: &Inbound) -> Reply {
        match self {
            Self::Text(t) => Reply::text(t.render(inbound)),
            Self::Image(id) => Reply::image(id.clone()),
            Self::Voice(id) => Reply::voice(id.clone()),
            Self::Video { media_id, title, description } => {
                Reply::video(media_id.clone(), title.clone(), description.clone())
            }
            Self::Music(m) => Reply::music(m.clone()),
            Self::News(items) => Reply::news(
                items
                    .iter()
                    .map(|(title, desc, pic, url)| {
                        Article::new(title.render(inbound), desc.render(inbound), pic, url)
                    })
                    .collect(),
            ),
            Self::Transfer(None) => Reply::transfer_customer_service(),
            Self::Transfer(Some(kf)) => Reply::transfer_to(kf.clone()),
            Self::None => Reply::None,
        }
    }

    /// The rule's handler: this reply, after the rule's delay. (A rule's `forward`
    /// compiles to the gateway's forwarder instead: [`crate::gateway::forwarding`].)
    fn into_handler(self, delay: Option<Duration>) -> RuleService {
        let reply = Arc::new(self);
        let Some(delay) = delay else {
            // Nothing to wait for: answered where the router runs, without a future a delivery.
            return RuleService::from_sync_fn(move |inbound| Ok(Answer::Reply(reply.render(inbound))));
        };
        let handler = move |inbound: Inbound| {
            let reply = reply.clone();
            async move {
                tokio::time::sleep(delay).await;
                Answer::Reply(reply.render(&inbound))
            }
        };
        wemp_server::Handler::into_service(handler)
    }
}

/// The longest `delay` a rule may have.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

/// What one compiled rule is, in the config's words, for the console and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    /// The rule's name (or `rules[i]`).
    pub name: String,
    delay: Option<Duration>,
    when: String,
    answer: String,
}

impl RuleInfo {
    /// How long the rule waits before answering (`delay`).
    pub fn delay(&self) -> Option<Duration> {
        self.delay
    }

    /// When the rule applies, as written (`keyword "help" | "帮助"`, `event CLICK, key "NEWS"`).
    pub fn when(&self) -> &str {
        &self.when
    }

    /// What it answers (`text "Hello, {openid}!"`, `news: 2 articles`), with its delay.
    pub fn answer(&self) -> &str {
        &self.answer
    }
}

/// `[[rules]]` compiled: the [`Router`] that answers, what each rule is in the config's
/// words, and the warnings (rules that compile but look wrong).
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    router: Router,
    info: Vec<RuleInfo>,
    warnings: Vec<RuleError>,
}

impl RuleSet {
    /// Compiles `[[rules]]` entries into one router; errors carry paths like
    /// `rules[2].regex`. A rule's `forward` goes to a [`Forward`] with default settings (no
    /// secret); `serve` compiles with its gateway ([`RuleSet::compile_with`]).
    ///
    /// # Errors
    /// Every problem found, not only the first.
    pub fn compile(configs: &[RuleConfig]) -> Result<Self, Vec<RuleError>> {
        let standalone = std::sync::OnceLock::new();
        Self::compile_with(configs, &|target: &str| {
            let base = standalone.get_or_init(|| Forward::new(crate::gateway::RELAY).map_err(Arc::new));
            let base = base.clone().map_err(GatewayError::Client)?;
            Ok(if target == crate::gateway::RELAY {
                base.to_relay(wemp_server::Relay::new(rand::random::<[u8; 32]>()))
            } else {
                base.to_url(target)
            })
        })
    }

    /// As [`RuleSet::compile`], each rule's `forward = "…"` compiled to `forwarder(target)`
    /// (`serve`: [`crate::gateway::Gateway::forward`]).
    ///
    /// # Errors
    /// Every problem found, not only the first.
    pub fn compile_with(
        configs: &[RuleConfig],
        forwarder: &dyn Fn(&str) -> Result<Forward, GatewayError>,
    ) -> Result<Self, Vec<RuleError>> {
        let mut out = Self::default();
        let mut errors = Vec::new();
        for (i, config) in configs.iter().enumerate() {
            match compile_rule(i, config, &mut out.warnings, forwarder) {
                Ok((rule, info)) => {
                    out.router = out.router.route(rule);
                    out.info.push(info);
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() { Ok(out) } else { Err(errors) }
    }

    /// Parses and compiles a TOML document holding `[[rules]]` (and nothing else).
    ///
    /// # Errors
    /// A TOML error or the rules' errors.
    pub fn from_toml(src: &str) -> Result<Self, RulesError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Doc {
            #[serde(default)]
            rules: Vec<RuleConfig>,
        }
        let doc: Doc = toml::from_str(src)?;
        Self::compile(&doc.rules).map_err(RulesError::Rules)
    }

    /// The demo rules ([`DEMO_RULES`]).
    pub fn demo() -> Self {
        Self::from_toml(DEMO_RULES).unwrap_or_default()
    }

    /// The rules in order, in the config's words.
    pub fn rules(&self) -> &[RuleInfo] {
        &self.info
    }

    /// What looks wrong but compiles (`event = "subscibe"`: did you mean `subscribe`?).
    pub fn warnings(&self) -> &[RuleError] {
        &self.warnings
    }

    /// The compiled router.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The compiled router, to serve (through a [`wemp_server::LiveRouter`] for reloads).
    pub fn into_router(self) -> Router {
        self.router
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.info.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.info.is_empty()
    }
}

const KEYED_EVENTS: &[EventKind] = &[
    EventKind::Click,
    EventKind::View,
    EventKind::ViewMiniprogram,
    EventKind::ScancodePush,
    EventKind::ScancodeWaitmsg,
    EventKind::PicSysphoto,
    EventKind::PicPhotoOrAlbum,
    EventKind::PicWeixin,
    EventKind::LocationSelect,
];

/// Levenshtein distance over lowercase ASCII, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_ascii_lowercase().chars().collect();
    let b: Vec<char> = b.to_ascii_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Why an event name wemp does not know looks like a mistake, if it does: close to a known
/// name (a typo), or not shaped like WeChat's names (letters, digits, `_`). A well-formed
/// name far from every known one is plausibly an event wemp does not model yet.
fn implausible_event(name: &str) -> Option<Wording> {
    let closest = EventKind::known().iter().map(|k| (distance(name, k.as_str()), k.as_str())).min();
    if let Some((d, known)) = closest
        && d <= 2.max(name.len() / 5)
    {
        return Some(Wording::new(Msg::RuleEventDidYouMean).with("name", name).with("known", known));
    }
    let shaped = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (!shaped).then(|| Wording::new(Msg::RuleEventShape).with("name", name))
}

#[allow(clippy::too_many_lines)]
fn compile_rule(
    i: usize,
    c: &RuleConfig,
    warnings: &mut Vec<RuleError>,
    forwarder: &dyn Fn(&str) -> Result<Forward, GatewayError>,
) -> Result<(Rule, RuleInfo), Vec<RuleError>> {
    let base = format!("rules[{i}]");
    let mut errors = Vec::new();
    let err = |field: &str, message: Wording| RuleError { path: format!("{base}.{field}"), message };
    let ignore_case = c.ignore_case.unwrap_or(true);

    let set: Vec<&str> = [
        ("keyword", c.keyword.is_some()),
        ("contains", c.contains.is_some()),
        ("regex", c.regex.is_some()),
        ("event", c.event.is_some()),
        ("type", c.msg_type.is_some()),
        ("default", c.default == Some(true)),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    let mut matcher = None;
    // Whether the rule may answer a user's message (WeChat's one-article limit), and
    // whether it may answer an event (no `{content}`).
    let mut answers_messages = false;
    let mut answers_events = false;
    // How many regex groups the templates may use; `None` when the regex did not compile
    // (its error is the one reported, not the templates').
    let mut groups = Some(0);
    match set.as_slice() {
        [] => errors.push(RuleError { path: base.clone(), message: Msg::RuleNoMatcher.into() }),
        [_, _, ..] => errors.push(RuleError {
            path: base.clone(),
            message: Wording::new(Msg::RuleSeveralMatchers).with("set", set.join(", ")),
        }),
        [one] => match *one {
            "keyword" | "contains" => {
                let words = if *one == "keyword" { &c.keyword } else { &c.contains };
                let words = words.as_ref().map(Words::to_vec).unwrap_or_default();
                if words.is_empty() || words.iter().any(|w| w.trim().is_empty()) {
                    errors.push(err(one, Msg::RuleEmptyWords.into()));
                }
                let words: Vec<String> = words.into_iter().map(|w| w.trim().to_owned()).collect();
                answers_messages = true;
                let m = if *one == "keyword" {
                    Matcher::text_any(words)
                } else {
                    Matcher::text_contains_any(words)
                };
                let m = m.with_voice();
                matcher = Some(if ignore_case { m.ignore_case() } else { m });
            }
            "regex" => {
                answers_messages = true;
                let pattern = c.regex.as_deref().unwrap_or_default();
                match Matcher::try_text_regex(pattern) {
                    Ok(m) => {
                        groups = regex::Regex::new(pattern).ok().map(|re| re.captures_len() - 1);
                        matcher = Some(m.with_voice());
                    }
                    Err(e) => {
                        groups = None;
                        errors.push(err("regex", Wording::new(Msg::RuleBadRegex).with("error", e)));
                    }
                }
            }
            "event" => {
                let name = c.event.as_deref().unwrap_or_default();
                let kind = EventKind::from_wire(name);
                answers_events = true;
                if kind.as_str().is_empty() {
                    errors.push(err("event", Msg::RuleEmptyEvent.into()));
                } else if let EventKind::Other(_) = kind
                    && let Some(why) = implausible_event(name.trim())
                {
                    warnings.push(err("event", why));
                }
                if c.scene.is_some() && !matches!(kind, EventKind::Subscribe | EventKind::Scan) {
                    errors.push(err("scene", Wording::new(Msg::RuleSceneEvent).with("event", &kind)));
                }
                if c.key.is_some() && !(KEYED_EVENTS.contains(&kind) || matches!(kind, EventKind::Other(_))) {
                    errors.push(err("key", Wording::new(Msg::RuleKeyEvent).with("event", &kind)));
                }
                let mut m = Matcher::event(kind);
                if let Some(scene) = &c.scene {
                    m = m.and(Matcher::scene(scene.clone()));
                }
                if let Some(key) = &c.key {
                    m = m.and(Matcher::event_key(key.clone()));
                }
                matcher = Some(m);
            }
            "type" => {
                let kind = MsgKind::from_wire(c.msg_type.as_deref().unwrap_or_default());
                if let MsgKind::Other(other) = &kind {
                    errors.push(err("type", Wording::new(Msg::RuleUnknownType).with("type", other.as_str())));
                }
                if kind == MsgKind::Event {
                    answers_events = true;
                } else {
                    answers_messages = true;
                }
                matcher = Some(Matcher::msg_type(kind));
            }
            _ => {
                answers_messages = true;
                answers_events = c.events == Some(true);
                matcher = Some(if answers_events { Matcher::any() } else { Matcher::message() });
            }
        },
    }
    if !matches!(set.as_slice(), ["event"]) {
        if c.scene.is_some() {
            errors.push(err("scene", Msg::RuleSceneNeedsEvent.into()));
        }
        if c.key.is_some() {
            errors.push(err("key", Msg::RuleKeyNeedsEvent.into()));
        }
    }
    if c.ignore_case.is_some() && !matches!(set.as_slice(), ["keyword"] | ["contains"]) {
        errors.push(err("ignore_case", Msg::RuleIgnoreCase.into()));
    }
    if c.events.is_some() && !matches!(set.as_slice(), ["default"]) {
        errors.push(err("events", Msg::RuleEvents.into()));
    }

    let r = &c.reply;
    let replies: Vec<&str> = [
        ("text", r.text.is_some()),
        ("image", r.image.is_some()),
        ("voice", r.voice.is_some()),
        ("video", r.video.is_some()),
        ("music", r.music.is_some()),
        ("news", r.news.is_some()),
        ("transfer", r.transfer.is_some()),
        ("none", r.none.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    let template = |field: &str, s: &str, errors: &mut Vec<RuleError>| -> TextTemplate {
        match TextTemplate::parse(s) {
            Ok(t) => {
                if let Some(groups) = groups
                    && t.max_capture() > groups
                {
                    let capture = format!("{{{}}}", t.max_capture());
                    let message = if groups == 0 {
                        Wording::new(Msg::RuleNoCaptures).with("capture", capture)
                    } else {
                        Wording::new(Msg::RuleTooFewGroups).with("capture", capture).with("groups", groups)
                    };
                    errors.push(err(field, message));
                }
                if answers_events && t.uses_content() {
                    errors.push(err(field, Msg::RuleContentForEvents.into()));
                }
                t
            }
            Err(e) => {
                errors.push(err(field, e.message()));
                TextTemplate(Vec::new())
            }
        }
    };
    let forward = match (&c.forward, replies.as_slice()) {
        (None, _) => None,
        (Some(_), [_, ..]) => {
            errors.push(err(
                "forward",
                Wording::new(Msg::RuleReplyAndForward).with("replies", replies.join(", reply.")),
            ));
            None
        }
        (Some(target), []) => {
            // Whether a secret is needed is [gateway]'s business (the config check); here the
            // target itself.
            match crate::gateway::check_target(target, true).and_then(|()| forwarder(target)) {
                Ok(f) => Some(f),
                Err(e) => {
                    errors.push(err("forward", e.message()));
                    None
                }
            }
        }
    };
    if c.forward.is_some() && c.delay.is_some() {
        errors.push(err("delay", Msg::RuleDelayForward.into()));
    }
    let reply = match replies.as_slice() {
        [] if c.forward.is_some() => None,
        [] => {
            errors.push(err("reply", Msg::RuleNoReply.into()));
            None
        }
        [_, _, ..] => {
            errors.push(err(
                "reply",
                Wording::new(Msg::RuleSeveralReplies).with("replies", replies.join(", ")),
            ));
            None
        }
        [one] => Some(match *one {
            "text" => ReplyTemplate::Text(template(
                "reply.text",
                r.text.as_deref().unwrap_or_default(),
                &mut errors,
            )),
            "image" => ReplyTemplate::Image(r.image.clone().unwrap_or_default()),
            "voice" => ReplyTemplate::Voice(r.voice.clone().unwrap_or_default()),
            "video" => {
                let v = r.video.clone().unwrap_or_default();
                ReplyTemplate::Video { media_id: v.media_id, title: v.title, description: v.description }
            }
            "music" => {
                let m = r.music.clone().unwrap_or_default();
                let mut music = Music::new(m.thumb_media_id);
                music.title = m.title;
                music.description = m.description;
                music.music_url = m.music_url;
                music.hq_music_url = m.hq_music_url;
                ReplyTemplate::Music(music)
            }
            "news" => {
                let items = r.news.clone().unwrap_or_default();
                let limit = if answers_messages { MAX_ARTICLES_FOR_MESSAGE } else { MAX_ARTICLES };
                if items.is_empty() || items.len() > limit {
                    let msg =
                        if answers_messages { Msg::RuleArticlesMessage } else { Msg::RuleArticlesEvent };
                    errors.push(err(
                        "reply.news",
                        Wording::new(msg).with("n", items.len()).with("limit", limit),
                    ));
                }
                let news = items
                    .iter()
                    .enumerate()
                    .map(|(j, a)| {
                        (
                            template(&format!("reply.news[{j}].title"), &a.title, &mut errors),
                            template(&format!("reply.news[{j}].description"), &a.description, &mut errors),
                            a.pic_url.clone(),
                            a.url.clone(),
                        )
                    })
                    .collect();
                ReplyTemplate::News(news)
            }
            "transfer" => match r.transfer.clone() {
                Some(Transfer::Agent(kf)) => ReplyTemplate::Transfer(Some(kf)),
                Some(Transfer::Any(true)) => ReplyTemplate::Transfer(None),
                _ => {
                    errors.push(err("reply.transfer", Msg::RuleTransfer.into()));
                    ReplyTemplate::None
                }
            },
            _ => ReplyTemplate::None,
        }),
    };
    let delay = match c.delay.as_deref().map(crate::config::parse_duration) {
        None => None,
        Some(Ok(d)) if d <= MAX_DELAY => Some(d).filter(|d| !d.is_zero()),
        Some(Ok(_)) => {
            errors.push(err("delay", Msg::RuleDelayMax.into()));
            None
        }
        Some(Err(e)) => {
            errors.push(err("delay", e.message()));
            None
        }
    };
    let action = match (reply, forward) {
        (Some(reply), None) => Some(reply.into_handler(delay)),
        (None, Some(forward)) => Some(crate::gateway::forwarding(&forward)),
        _ => None,
    };
    match (matcher, action) {
        (Some(matcher), Some(action)) if errors.is_empty() => {
            let mut answer = match &c.forward {
                Some(t) if t == crate::gateway::RELAY => "forward through the relay".to_owned(),
                Some(url) => format!("forward to {url}"),
                None => describe_reply(r),
            };
            if let Some(d) = delay {
                answer.push_str(&format!(", after a {} delay", show_duration(d)));
            }
            let name = c.name.clone().unwrap_or(base);
            let rule = Rule::service(matcher, action).named(name.as_str());
            Ok((rule, RuleInfo { name, when: describe_when(c), answer, delay }))
        }
        _ => Err(errors),
    }
}

fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

fn quoted(words: &Words) -> String {
    words.to_vec().iter().map(|w| format!("{w:?}")).collect::<Vec<_>>().join(" | ")
}

/// When a rule applies, in the config's words.
fn describe_when(c: &RuleConfig) -> String {
    let case = if c.ignore_case == Some(false) { " (case-sensitive)" } else { "" };
    if let Some(w) = &c.keyword {
        return format!("keyword {}{case}", quoted(w));
    }
    if let Some(w) = &c.contains {
        return format!("contains {}{case}", quoted(w));
    }
    if let Some(re) = &c.regex {
        return format!("regex '{re}'");
    }
    if let Some(e) = &c.event {
        let mut s = format!("event {e}");
        if let Some(scene) = &c.scene {
            s.push_str(&format!(", scene {scene:?}"));
        }
        if let Some(key) = &c.key {
            s.push_str(&format!(", key {key:?}"));
        }
        return s;
    }
    if let Some(t) = &c.msg_type {
        return format!("type {t}");
    }
    if c.events == Some(true) {
        "anything, events too (default)".into()
    } else {
        "any message (default)".into()
    }
}

/// What a rule answers, in the config's words.
fn describe_reply(r: &ReplyConfig) -> String {
    if let Some(t) = &r.text {
        return format!("text {t:?}");
    }
    if let Some(id) = &r.image {
        return format!("image {id}");
    }
    if let Some(id) = &r.voice {
        return format!("voice {id}");
    }
    if let Some(v) = &r.video {
        return format!("video {}", v.media_id);
    }
    if let Some(m) = &r.music {
        return format!("music {:?}", m.title.as_deref().unwrap_or(&m.thumb_media_id));
    }
    if let Some(news) = &r.news {
        let titles: Vec<String> = news.iter().map(|a| format!("{:?}", a.title)).collect();
        return format!("news: {} article(s), {}", news.len(), titles.join(", "));
    }
    match &r.transfer {
        Some(Transfer::Agent(kf)) => return format!("transfer to customer service agent {kf}"),
        Some(Transfer::Any(_)) => return "transfer to customer service".into(),
        None => {}
    }
    "no reply (success)".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(content: &str) -> Incoming {
        Incoming::parse(&format!(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>\
             <MsgType>text</MsgType><Content><![CDATA[{content}]]></Content><MsgId>7</MsgId></xml>"
        ))
        .unwrap()
    }

    fn event(name: &str, extra: &str) -> Incoming {
        Incoming::parse(&format!(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>\
             <MsgType>event</MsgType><Event>{name}</Event>{extra}</xml>"
        ))
        .unwrap()
    }

    /// [`TextTemplate::render`] as it was before it sized its string up front.
    fn render_before(t: &TextTemplate, inbound: &Inbound) -> String {
        let incoming = inbound.message();
        let mut out = String::new();
        for piece in &t.0 {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::OpenId => out.push_str(&incoming.header().from),
                Piece::Account => out.push_str(&incoming.header().to),
                Piece::Content => out.push_str(&content_of(incoming)),
                Piece::Scene => out.push_str(incoming.event().and_then(Event::scene).unwrap_or_default()),
                Piece::Key => out.push_str(incoming.event().and_then(Event::event_key).unwrap_or_default()),
                Piece::Capture(n) => {
                    out.push_str(inbound.captures().and_then(|c| c.get(*n)).unwrap_or_default())
                }
            }
        }
        out
    }

    #[test]
    fn templates_render_as_before_for_every_kind_of_message() {
        let parts = [
            "",
            "Hi ",
            "{openid}",
            "{account}",
            "{content}",
            "{scene}",
            "{key}",
            "{0}",
            "{1}",
            "{{",
            "。你好",
            "}}",
        ];
        let messages = [
            text("hello"),
            text(""),
            text("帮助 me"),
            event("subscribe", "<EventKey><![CDATA[qrscene_demo]]></EventKey>"),
            event("CLICK", "<EventKey><![CDATA[ABOUT]]></EventKey>"),
            event("SCAN", "<EventKey><![CDATA[42]]></EventKey>"),
            Incoming::parse(
                "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>\
                 <MsgType>location</MsgType><Location_X>23.1</Location_X><Location_Y>113.3</Location_Y>\
                 <Scale>20</Scale><Label><![CDATA[]]></Label><MsgId>8</MsgId></xml>",
            )
            .unwrap(),
            Incoming::parse(
                "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>\
                 <MsgType>location</MsgType><Location_X>23.1</Location_X><Location_Y>113.3</Location_Y>\
                 <Scale>20</Scale><Label><![CDATA[广州]]></Label><MsgId>8</MsgId></xml>",
            )
            .unwrap(),
            Incoming::parse(
                "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>\
                 <MsgType>voice</MsgType><MediaId>m</MediaId><Format>amr</Format>\
                 <Recognition><![CDATA[你好 hello]]></Recognition><MsgId>9</MsgId></xml>",
            )
            .unwrap(),
            Incoming::parse(
                "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>\
                 <MsgType>link</MsgType><Title>t</Title><Description>d</Description>\
                 <Url>https://example.com/a</Url><MsgId>10</MsgId></xml>",
            )
            .unwrap(),
        ];
        let ctx = wemp_server::Ctx::detached(Duration::from_secs(5));
        let account = Arc::new(wemp_server::Account::new("wx_rules_test", "Tok123"));
        let mut checked = 0;
        for incoming in &messages {
            let inbound =
                Inbound::new(incoming.clone(), account.clone(), wemp_proto::Mode::Plain, ctx.clone());
            for a in parts {
                for b in parts {
                    for c in parts {
                        let template = TextTemplate::parse(&format!("{a}{b}{c}")).unwrap();
                        let rendered = template.render(&inbound);
                        assert_eq!(rendered, render_before(&template, &inbound), "{a}{b}{c}");
                        // Sized once, exactly, but where a location's coordinates are made.
                        let made = template.uses_content()
                            && matches!(incoming, Incoming::Location(l) if l.label.is_empty());
                        if !made {
                            assert_eq!(rendered.capacity(), rendered.len(), "{a}{b}{c}");
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, messages.len() * parts.len().pow(3));
    }

    #[test]
    fn events_wemp_does_not_know_match_in_any_case() {
        let r = rules(
            r#"
[[rules]]
event = "user_stamp_card"
reply.text = "stamped"
[[rules]]
default = true
events = true
reply.text = "default"
"#,
        );
        assert_eq!(evaluate(&r, &event("user_stamp_card", "")), Reply::text("stamped"));
        assert_eq!(evaluate(&r, &event("USER_STAMP_CARD", "")), Reply::text("stamped"));
        assert_eq!(evaluate(&r, &event("user_punch_card", "")), Reply::text("default"));
    }

    /// Runs `incoming` through the compiled router, as `wemp serve` does: the name of the
    /// rule that answered and the reply.
    fn run(r: &RuleSet, incoming: &Incoming) -> (Option<String>, Reply) {
        use tower::ServiceExt as _;
        let ctx = wemp_server::Ctx::detached(Duration::from_secs(5));
        let account = Arc::new(wemp_server::Account::new("wx_rules_test", "Tok123"));
        let inbound = Inbound::new(incoming.clone(), account, wemp_proto::Mode::Plain, ctx.clone());
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let reply = rt.block_on(r.router().clone().into_service().oneshot(inbound)).unwrap();
        (ctx.rule_name().map(|n| n.to_string()), reply)
    }

    fn evaluate(r: &RuleSet, incoming: &Incoming) -> Reply {
        run(r, incoming).1
    }

    fn rules(src: &str) -> RuleSet {
        RuleSet::from_toml(src).unwrap()
    }

    fn errors(src: &str) -> String {
        RuleSet::from_toml(src).unwrap_err().to_string()
    }

    #[test]
    fn a_reply_without_delay_is_answered_at_the_first_poll_and_one_with_a_delay_after_it() {
        use futures_util::FutureExt as _;
        use tower::ServiceExt as _;
        let r = rules(
            r#"
[[rules]]
keyword = "now"
reply.text = "now, {openid}"
[[rules]]
keyword = "soon"
delay = "10ms"
reply.text = "soon: {content}"
[[rules]]
keyword = "later"
delay = "6s"
reply.text = "later"
"#,
        );
        let service = r.router().clone().into_service();
        let ctx = wemp_server::Ctx::detached(Duration::from_secs(5));
        let account = Arc::new(wemp_server::Account::new("wx_rules_test", "Tok123"));
        let inbound = |t: &str| Inbound::new(text(t), account.clone(), wemp_proto::Mode::Plain, ctx.clone());
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(async {
            let now = service.clone().oneshot(inbound("now")).now_or_never();
            assert_eq!(now.map(Result::unwrap), Some(Reply::text("now, o1")));
            let mut later = std::pin::pin!(service.clone().oneshot(inbound("later")));
            assert!(later.as_mut().now_or_never().is_none());
            let soon = service.clone().oneshot(inbound("soon")).await.unwrap();
            assert_eq!(soon, Reply::text("soon: soon"));
        });
    }

    #[test]
    fn delays_and_descriptions() {
        let r = rules(
            r#"
[[rules]]
name = "slow"
event = "CLICK"
key = "SLOW"
delay = "6s"
reply.text = "late {key}"
[[rules]]
keyword = ["Help", "帮助"]
ignore_case = false
reply.news = [{ title = "A", url = "https://example.com/" }]
[[rules]]
default = true
reply.transfer = "kf@x"
"#,
        );
        let [slow, help, rest] = r.rules() else { panic!("three rules") };
        assert_eq!(slow.delay(), Some(Duration::from_secs(6)));
        assert_eq!(slow.when(), "event CLICK, key \"SLOW\"");
        assert_eq!(slow.answer(), "text \"late {key}\", after a 6s delay");
        assert_eq!(help.delay(), None);
        assert_eq!(help.when(), "keyword \"Help\" | \"帮助\" (case-sensitive)");
        assert_eq!(help.answer(), "news: 1 article(s), \"A\"");
        assert_eq!(rest.when(), "any message (default)");
        assert_eq!(rest.answer(), "transfer to customer service agent kf@x");
        assert!(
            errors("[[rules]]\ndefault = true\ndelay = \"2m\"\nreply.none = true")
                .contains("rules[0].delay: at most 1m")
        );
        assert!(
            errors("[[rules]]\ndefault = true\ndelay = \"soon\"\nreply.none = true")
                .contains("rules[0].delay")
        );
    }

    #[test]
    fn keyword_contains_and_regex_with_captures() {
        let r = rules(
            r#"
[[rules]]
keyword = ["Help", "帮助"]
reply.text = "help for {openid}"
[[rules]]
contains = "price"
reply.text = "{content}? 42 yuan."
[[rules]]
regex = '^(\w+) to (\w+)$'
reply.text = "from {1} to {2} ({0})"
"#,
        );
        assert_eq!(evaluate(&r, &text(" help ")), Reply::text("help for o1"));
        assert_eq!(evaluate(&r, &text("帮助")), Reply::text("help for o1"));
        assert_eq!(evaluate(&r, &text("What PRICE")), Reply::text("What PRICE? 42 yuan."));
        assert_eq!(evaluate(&r, &text("paris to rome")), Reply::text("from paris to rome (paris to rome)"));
        assert_eq!(evaluate(&r, &text("helpful")), Reply::None);
        assert_eq!(evaluate(&r, &event("subscribe", "")), Reply::None);
    }

    #[test]
    fn case_sensitivity_can_be_turned_on() {
        let r = rules("[[rules]]\nkeyword = \"Help\"\nignore_case = false\nreply.text = \"x\"");
        assert_eq!(evaluate(&r, &text("help")), Reply::None);
        assert_eq!(evaluate(&r, &text("Help")), Reply::text("x"));
    }

    #[test]
    fn events_with_scene_and_key_first_match_wins() {
        let r = rules(
            r#"
[[rules]]
event = "subscribe"
scene = "spring"
reply.text = "spring welcome"
[[rules]]
event = "subscribe"
reply.text = "welcome"
[[rules]]
event = "scan"
scene = "door"
reply.text = "door {scene}"
[[rules]]
event = "CLICK"
key = "HELP"
reply.transfer = true
[[rules]]
event = "click"
reply.text = "clicked {key}"
[[rules]]
event = "VIEW"
key = "https://example.com/"
reply.none = true
[[rules]]
default = true
events = true
reply.text = "default"
"#,
        );
        let qr = event("subscribe", "<EventKey>qrscene_spring</EventKey><Ticket>t</Ticket>");
        assert_eq!(evaluate(&r, &qr), Reply::text("spring welcome"));
        let other_qr = event("subscribe", "<EventKey>qrscene_autumn</EventKey><Ticket>t</Ticket>");
        assert_eq!(evaluate(&r, &other_qr), Reply::text("welcome"));
        assert_eq!(evaluate(&r, &event("subscribe", "")), Reply::text("welcome"));
        assert_eq!(evaluate(&r, &event("SCAN", "<EventKey>door</EventKey>")), Reply::text("door door"));
        assert_eq!(evaluate(&r, &event("SCAN", "<EventKey>gate</EventKey>")), Reply::text("default"));
        assert_eq!(
            evaluate(&r, &event("CLICK", "<EventKey>HELP</EventKey>")),
            Reply::transfer_customer_service()
        );
        assert_eq!(evaluate(&r, &event("CLICK", "<EventKey>K2</EventKey>")), Reply::text("clicked K2"));
        assert_eq!(evaluate(&r, &event("VIEW", "<EventKey>https://example.com/</EventKey>")), Reply::None);
        assert_eq!(evaluate(&r, &text("anything")), Reply::text("default"));
        assert_eq!(run(&r, &text("x")).0.as_deref(), Some("rules[6]"));
    }

    #[test]
    fn message_types_and_every_reply_kind() {
        let r = rules(
            r#"
[[rules]]
type = "image"
reply.image = "MEDIA_IMG"
[[rules]]
type = "voice"
reply.voice = "MEDIA_VOICE"
[[rules]]
type = "location"
reply.video = { media_id = "MEDIA_VIDEO", title = "t" }
[[rules]]
type = "link"
reply.music = { title = "song", music_url = "https://m/1.mp3", thumb_media_id = "THUMB" }
[[rules]]
event = "location"
reply.transfer = "kf1@wx"
[[rules]]
event = "unsubscribe"
reply.news = [
  { title = "a {openid}", url = "https://e/1" },
  { title = "b", description = "d", pic_url = "https://e/p.png", url = "https://e/2" },
]
"#,
        );
        let header = "<ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>";
        let msg =
            |body: &str| Incoming::parse(&format!("<xml>{header}{body}<MsgId>1</MsgId></xml>")).unwrap();
        assert_eq!(
            evaluate(&r, &msg("<MsgType>image</MsgType><PicUrl>u</PicUrl><MediaId>m</MediaId>")),
            Reply::image("MEDIA_IMG")
        );
        assert_eq!(
            evaluate(&r, &msg("<MsgType>voice</MsgType><MediaId>m</MediaId><Format>amr</Format>")),
            Reply::voice("MEDIA_VOICE")
        );
        assert_eq!(
            evaluate(
                &r,
                &msg(
                    "<MsgType>location</MsgType><Location_X>1</Location_X><Location_Y>2</Location_Y><Scale>3</Scale><Label>L</Label>"
                )
            ),
            Reply::video("MEDIA_VIDEO", Some("t".into()), None)
        );
        let Reply::Music(m) = evaluate(
            &r,
            &msg("<MsgType>link</MsgType><Title>t</Title><Description>d</Description><Url>u</Url>"),
        ) else {
            panic!("not music")
        };
        assert_eq!((m.title.as_deref(), m.thumb_media_id.as_str()), (Some("song"), "THUMB"));
        let loc = event("LOCATION", "<Latitude>1</Latitude><Longitude>2</Longitude><Precision>3</Precision>");
        assert_eq!(evaluate(&r, &loc), Reply::transfer_to("kf1@wx"));
        let Reply::News(items) = evaluate(&r, &event("unsubscribe", "")) else { panic!("not news") };
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].title, "a o1");
        assert_eq!(items[1].pic_url, "https://e/p.png");
    }

    #[test]
    fn voice_recognition_counts_as_text_and_content() {
        let r = rules("[[rules]]\ncontains = \"weather\"\nreply.text = \"heard: {content}\"");
        let voice = Incoming::parse(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>\
             <MsgType>voice</MsgType><MediaId>m</MediaId><Format>amr</Format>\
             <Recognition>weather today</Recognition><MsgId>1</MsgId></xml>",
        )
        .unwrap();
        assert_eq!(evaluate(&r, &voice), Reply::text("heard: weather today"));
    }

    #[test]
    fn invalid_rules_name_the_field() {
        assert!(
            errors("[[rules]]\nregex = '('\nreply.text = \"x\"")
                .contains("rules[0].regex: invalid regular expression")
        );
        assert!(errors("[[rules]]\nreply.text = \"x\"").contains("rules[0]: no matcher"));
        assert!(
            errors("[[rules]]\nkeyword = \"a\"\nregex = \"b\"\nreply.text = \"x\"")
                .contains("several matchers (keyword, regex)")
        );
        assert!(errors("[[rules]]\nkeyword = \"a\"").contains("rules[0].reply: no reply"));
        assert!(
            errors("[[rules]]\nkeyword = \"a\"\nreply.text = \"{nope}\"")
                .contains("rules[0].reply.text: unknown placeholder {nope}")
        );
        assert!(errors("[[rules]]\nkeyword = \"a\"\nreply.text = \"{1}\"").contains("has no captures"));
        assert!(errors("[[rules]]\nregex = \"(a)\"\nreply.text = \"{2}\"").contains("only 1 group"));
        assert!(
            errors("[[rules]]\ntype = \"sticker\"\nreply.text = \"x\"")
                .contains("rules[0].type: unknown message type")
        );
        assert!(
            errors("[[rules]]\nevent = \"CLICK\"\nscene = \"s\"\nreply.text = \"x\"")
                .contains("rules[0].scene")
        );
        assert!(
            errors("[[rules]]\nkeyword = \"a\"\nkey = \"k\"\nreply.text = \"x\"").contains("rules[0].key")
        );
        let two = "{ title = \"a\", url = \"u\" }";
        assert!(
            errors(&format!("[[rules]]\nkeyword = \"a\"\nreply.news = [{two}, {two}]"))
                .contains("1 to 1 allowed when answering a user's message")
        );
        assert!(
            RuleSet::from_toml(&format!("[[rules]]\nevent = \"subscribe\"\nreply.news = [{two}, {two}]"))
                .is_ok()
        );
        assert!(
            errors("[[rules]]\nkeyword = \"a\"\nreply.text = \"x\"\nreply.image = \"m\"")
                .contains("several replies")
        );
        assert!(errors("[[rules]]\nkeyword = \"a\"\nreply.txt = \"x\"").contains("unknown field"));
        // Several problems are all reported.
        let many = errors(
            "[[rules]]\nregex = '('\nreply.text = \"x\"\n[[rules]]\ntype = \"bad\"\nreply.text = \"x\"",
        );
        assert!(many.contains("rules[0].regex") && many.contains("rules[1].type"), "{many}");
    }

    #[test]
    fn a_default_rule_answers_messages_not_events_unless_it_says_so() {
        let r = rules("[[rules]]\ndefault = true\nreply.text = \"Sorry, I did not understand\"");
        let location =
            event("LOCATION", "<Latitude>1</Latitude><Longitude>2</Longitude><Precision>3</Precision>");
        assert_eq!(evaluate(&r, &location), Reply::None);
        assert_eq!(evaluate(&r, &event("scancode_push", "<EventKey>k</EventKey>")), Reply::None);
        assert_eq!(evaluate(&r, &text("zzz")), Reply::text("Sorry, I did not understand"));
        let all = rules("[[rules]]\ndefault = true\nevents = true\nreply.text = \"x\"");
        assert_eq!(evaluate(&all, &location), Reply::text("x"));
        assert_eq!(all.rules()[0].when(), "anything, events too (default)");
    }

    #[test]
    fn keyword_rules_ignore_case_and_read_voice_unless_told_otherwise() {
        let r = rules("[[rules]]\nkeyword = [\"Help\", \"帮助\"]\nreply.text = \"{0}\"");
        assert_eq!(evaluate(&r, &text("HELP")), Reply::text("HELP"));
        let voice = Incoming::parse(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>\
             <MsgType>voice</MsgType><MediaId>m</MediaId><Format>amr</Format>\
             <Recognition>帮助</Recognition><MsgId>1</MsgId></xml>",
        )
        .unwrap();
        assert_eq!(evaluate(&r, &voice), Reply::text("帮助"));
    }

    #[test]
    fn templates_escape_braces() {
        let r = rules("[[rules]]\ndefault = true\nreply.text = \"{{literal}} {openid}\"");
        assert_eq!(evaluate(&r, &text("x")), Reply::text("{literal} o1"));
        assert!(TextTemplate::parse("a}b").is_err());
        assert!(TextTemplate::parse("a{b").is_err());
    }

    #[test]
    fn demo_rules_compile_and_answer() {
        let r = RuleSet::from_toml(DEMO_RULES).unwrap();
        assert!(r.len() >= 8);
        assert!(matches!(evaluate(&r, &text("help")), Reply::Text { .. }));
        assert_eq!(evaluate(&r, &text("order 42")), Reply::text("Order 42 is on its way."));
        assert_eq!(evaluate(&r, &text("zzz")), Reply::text("You said: zzz"));
        let qr = event("subscribe", "<EventKey>qrscene_demo</EventKey><Ticket>t</Ticket>");
        assert!(matches!(evaluate(&r, &qr), Reply::Text { content } if content.contains("demo")));
        assert!(
            matches!(evaluate(&r, &event("CLICK", "<EventKey>ABOUT</EventKey>")), Reply::News(a) if a.len() == 1)
        );
        assert_eq!(evaluate(&r, &event("unsubscribe", "")), Reply::None);
    }
}

#[cfg(test)]
mod compile_tests {
    use super::*;

    fn errors(src: &str) -> String {
        RuleSet::from_toml(src).unwrap_err().to_string()
    }

    #[test]
    fn an_invalid_regex_is_reported_once_not_as_missing_captures() {
        let e = errors("[[rules]]\nregex = '('\nreply.text = \"got {1}\"");
        assert!(e.contains("rules[0].regex: invalid regular expression"), "{e}");
        assert!(!e.contains("captures"), "no false report about captures: {e}");
        assert_eq!(e.lines().filter(|l| l.starts_with("rules[")).count(), 1, "{e}");
    }

    #[test]
    fn content_is_an_error_for_rules_that_answer_events() {
        let e = errors("[[rules]]\nevent = \"LOCATION\"\nreply.text = \"at {content}\"");
        assert!(e.contains("rules[0].reply.text: {content} is empty for events"), "{e}");
        let e = errors("[[rules]]\ndefault = true\nevents = true\nreply.text = \"{content}?\"");
        assert!(e.contains("{content} is empty for events"), "{e}");
        let e = errors("[[rules]]\ntype = \"event\"\nreply.news = [{ title = \"{content}\", url = \"u\" }]");
        assert!(e.contains("rules[0].reply.news[0].title: {content}"), "{e}");
        // A default rule answers messages only, so {content} is fine there.
        assert!(RuleSet::from_toml("[[rules]]\ndefault = true\nreply.text = \"{content}?\"").is_ok());
        assert!(
            errors("[[rules]]\nkeyword = \"a\"\nevents = true\nreply.none = true")
                .contains("rules[0].events")
        );
    }

    #[test]
    fn misspelt_event_names_warn_with_the_closest_known_one() {
        let r = RuleSet::from_toml("[[rules]]\nevent = \"subscibe\"\nreply.text = \"hi\"").unwrap();
        let w: Vec<String> = r.warnings().iter().map(ToString::to_string).collect();
        assert_eq!(w, ["rules[0].event: unknown event \"subscibe\": did you mean \"subscribe\"?"]);
        let r = RuleSet::from_toml("[[rules]]\nevent = \"CLIK\"\nreply.text = \"hi\"").unwrap();
        assert!(r.warnings()[0].message.to_string().contains("did you mean \"CLICK\""), "{:?}", r.warnings());
        let r = RuleSet::from_toml("[[rules]]\nevent = \"menu click\"\nreply.text = \"hi\"").unwrap();
        assert!(r.warnings()[0].message.to_string().contains("letters, digits"), "{:?}", r.warnings());
        // Known names in any case, and plausible new ones, are quiet.
        for name in ["subscribe", "SCAN", "click", "user_stamp_card", "wxa_nickname_audit"] {
            let r =
                RuleSet::from_toml(&format!("[[rules]]\nevent = \"{name}\"\nreply.text = \"hi\"")).unwrap();
            assert!(r.warnings().is_empty(), "{name}: {:?}", r.warnings());
        }
    }
}
