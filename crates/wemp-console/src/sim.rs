//! The chat simulator: what a user does in the chat, turned into the message WeChat would
//! post, delivered to the real callback URL on WeChat's schedule.

use serde::{Deserialize, Serialize};
use wemp_client::callback::{
    Delivery, DeliveryVerdict, ERROR_BANNER, Exchange as Answer, FailCause, Simulator, random_msg_id,
};
use wemp_proto::Header;
use wemp_proto::reply::ReplyError;
use wemp_proto::wechat::{EventMessage, Message, Problem, Unreadable};

use crate::feed::LiveEntry;

/// What the user does in the chat.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Sends a text.
    Text {
        /// The text.
        content: String,
    },
    /// Sends an image from the media store.
    Image {
        /// Its media id.
        media_id: String,
        /// Where the picture can be fetched.
        #[serde(default)]
        pic_url: String,
    },
    /// Shares a location.
    Location {
        /// Latitude (`Location_X`).
        lat: f64,
        /// Longitude (`Location_Y`).
        lon: f64,
        /// Map zoom (`Scale`).
        #[serde(default = "default_scale")]
        scale: u32,
        /// The place's name (`Label`).
        #[serde(default)]
        label: String,
    },
    /// Shares a link.
    Link {
        /// Title.
        title: String,
        /// Description.
        #[serde(default)]
        description: String,
        /// URL.
        url: String,
    },
    /// Follows the account, optionally by scanning a QR code with a scene.
    Subscribe {
        /// The scene of the QR code scanned, if any.
        #[serde(default)]
        scene: Option<String>,
    },
    /// Unfollows the account.
    Unsubscribe,
    /// Scans a QR code with a scene while already following.
    Scan {
        /// The scene.
        scene: String,
    },
    /// Taps a `click` menu button.
    Click {
        /// The button's key.
        key: String,
    },
    /// Taps a `view` menu button.
    View {
        /// The URL opened.
        url: String,
    },
}

fn default_scale() -> u32 {
    15
}

/// The result of one action, as the page renders it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatResult {
    /// The account WeChat was played for ([`crate::ConsoleAccount::id`]).
    pub account: String,
    /// The message XML sent (plain, before encryption).
    pub sent_xml: String,
    /// What the user sees.
    pub sees: Sees,
    /// Every try WeChat made.
    pub attempts: Vec<TryReport>,
    /// Whether the answer came encrypted.
    pub encrypted: bool,
    /// What deviates from the docs in the reply although WeChat shows it (a `CreateTime`
    /// in milliseconds …).
    pub warnings: Vec<ReplyFinding>,
    /// What the server reported about this message while it was delivered (its observer
    /// records: a `deadline` answer, a rejection …), oldest first.
    pub server: Vec<LiveEntry>,
}

/// What the user sees in the chat.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sees {
    /// A passive reply.
    Reply {
        /// The reply.
        reply: wemp_proto::Reply,
    },
    /// Nothing.
    Nothing,
    /// WeChat's error banner.
    Banner {
        /// The banner text (`该公众号暂时无法提供服务，请稍后再试`).
        banner: &'static str,
        /// Why WeChat showed it, in English.
        reason: String,
        /// The kind of failure, for the page to word in its language (`no-answer`,
        /// `unsigned`, `unreadable`, `refused`: a reply WeChat refuses, see `problems`).
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<&'static str>,
        /// For `no-answer`: how many tries WeChat made.
        #[serde(skip_serializing_if = "Option::is_none")]
        tries: Option<usize>,
        /// For `refused`: what WeChat refuses about the reply, one by one.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        problems: Vec<ReplyFinding>,
        /// For `unreadable`: why the answer is not a usable reply ([`Unreadable`]), for the
        /// page to word in its language.
        #[serde(skip_serializing_if = "Option::is_none")]
        unreadable: Option<ReplyFinding>,
    },
}

/// One of WeChat's findings about a reply ([`Problem`], or why it is unreadable:
/// [`Unreadable`]), for the page to word in its language: its kind, its English words and
/// its parameters (flattened beside them).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReplyFinding {
    /// [`Problem::code`]; for a news reply beyond the article limits `news-limits-message`
    /// or `news-limits-event`, for an empty field `empty-field`, for a character XML cannot
    /// carry `invalid-char`. For an unreadable answer [`Unreadable::code`].
    pub code: &'static str,
    /// The English words.
    pub text: String,
    /// The parameters the words name.
    #[serde(flatten)]
    pub params: serde_json::Map<String, serde_json::Value>,
}

impl From<&Problem> for ReplyFinding {
    fn from(p: &Problem) -> Self {
        use serde_json::json;
        let (code, params) = match p {
            Problem::Swapped { openid, account } => {
                (p.code(), json!({ "openid": openid, "account": account }))
            }
            Problem::WrongTo { found, expected } | Problem::WrongFrom { found, expected } => {
                (p.code(), json!({ "found": found, "expected": expected }))
            }
            Problem::Invalid { error: ReplyError::ArticleCount { count, limit, answering_message } } => {
                let code = if *answering_message { "news-limits-message" } else { "news-limits-event" };
                (code, json!({ "count": count, "limit": limit }))
            }
            Problem::Invalid { error: ReplyError::EmptyField { field } } => {
                ("empty-field", json!({ "field": field }))
            }
            Problem::Invalid { error: ReplyError::InvalidChar { field, ch } } => {
                ("invalid-char", json!({ "field": field, "ch": format!("U+{:04X}", u32::from(*ch)) }))
            }
            Problem::CreateTimeMillis { create_time } => (p.code(), json!({ "create_time": create_time })),
            Problem::CreateTimeFar { create_time, now } => {
                (p.code(), json!({ "create_time": create_time, "now": now }))
            }
            _ => (p.code(), json!({})),
        };
        let params = match params {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        Self { code, text: p.to_string(), params }
    }
}

impl From<&Unreadable> for ReplyFinding {
    fn from(u: &Unreadable) -> Self {
        use serde_json::json;
        let params = match u {
            Unreadable::NoDecrypt { detail, code } => json!({ "detail": detail, "code": code }),
            Unreadable::Envelope { detail } | Unreadable::Other { detail } => json!({ "detail": detail }),
            Unreadable::Xml { detail, snippet } | Unreadable::NotReply { detail, snippet } => {
                json!({ "detail": detail, "snippet": snippet })
            }
            _ => json!({}),
        };
        let params = match params {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        Self { code: u.code(), text: u.to_string(), params }
    }
}

/// One try of a delivery.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TryReport {
    /// When it started, ms after the first.
    pub started_ms: u64,
    /// How long it took, ms.
    pub took_ms: u64,
    /// `HTTP 200`, `no answer: WeChat gave up`, or the connection error.
    pub outcome: String,
    /// What [`outcome`](Self::outcome) says, as a code for the page's translations:
    /// `answered` (with [`status`](Self::status)), `timed_out` or `failed` (with
    /// [`error`](Self::error)).
    pub code: &'static str,
    /// The HTTP status of an answered try.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why a failed try could not connect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The QR ticket WeChat sends with a scene (`Subscribe` through a QR code, `Scan`).
fn ticket(scene: &str) -> String {
    format!("gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL{scene}")
}

impl Action {
    /// The message this action makes WeChat post.
    pub fn to_message(&self) -> Message {
        match self {
            Self::Text { content } => Message::Text { content: content.clone() },
            Self::Image { media_id, pic_url } => {
                Message::Image { media_id: media_id.clone(), pic_url: pic_url.clone() }
            }
            Self::Location { lat, lon, scale, label } => {
                Message::Location { lat: *lat, lon: *lon, scale: *scale, label: label.clone() }
            }
            Self::Link { title, description, url } => {
                Message::Link { url: url.clone(), title: title.clone(), description: description.clone() }
            }
            Self::Subscribe { scene } => {
                let scene = scene.clone().filter(|s| !s.is_empty());
                let ticket = scene.as_deref().map(ticket).unwrap_or_default();
                Message::Event(EventMessage::Subscribe { scene, ticket })
            }
            Self::Unsubscribe => Message::Event(EventMessage::Unsubscribe),
            Self::Scan { scene } => {
                Message::Event(EventMessage::Scan { scene: scene.clone(), ticket: ticket(scene) })
            }
            Self::Click { key } => Message::Event(EventMessage::Click { key: key.clone() }),
            Self::View { url } => Message::Event(EventMessage::View { url: url.clone(), menu_id: None }),
        }
    }

    /// The message XML WeChat would post for this action with `header` (from the user to
    /// the account: [`Simulator::header`], which gives a WeCom message its AgentID).
    pub fn to_xml(&self, header: Header) -> String {
        let message = self.to_message();
        let id = if message.is_message() { random_msg_id() } else { 0 };
        message.build(header, id).to_xml()
    }
}

/// Performs `action` as `openid` through `wechat`, the callback driver of the account (the
/// real endpoint, WeChat's schedule).
pub async fn run(wechat: &Simulator, openid: &str, action: &Action) -> ChatResult {
    let wechat = wechat.with_openid(openid);
    let sent_xml = action.to_xml(wechat.header());
    let delivery = wechat.deliver_xml(&sent_xml, action.to_message().is_message()).await;
    report(sent_xml, delivery)
}

fn report(sent_xml: String, d: Delivery) -> ChatResult {
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let attempts = d
        .attempts
        .iter()
        .map(|a| {
            let (outcome, code, status, error) = match &a.exchange {
                Answer::Http { status, .. } => (format!("HTTP {status}"), "answered", Some(*status), None),
                Answer::Timeout => ("no answer: WeChat gave up".to_owned(), "timed_out", None, None),
                Answer::Connect { error } | Answer::Tls { error } => {
                    (format!("connection failed: {error}"), "failed", None, Some(error.clone()))
                }
            };
            TryReport { started_ms: ms(a.started), took_ms: ms(a.elapsed), outcome, code, status, error }
        })
        .collect();
    let encrypted = d.outcome.encrypted();
    let warnings = d.outcome.warnings().iter().map(ReplyFinding::from).collect();
    let sees = match d.outcome {
        DeliveryVerdict::Reply { message, problems, .. } if problems.is_empty() => match message.reply {
            wemp_proto::Reply::None => Sees::Nothing,
            reply => Sees::Reply { reply },
        },
        DeliveryVerdict::Reply { problems, .. } => Sees::Banner {
            banner: ERROR_BANNER,
            reason: problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
            code: Some("refused"),
            tries: None,
            problems: problems.iter().map(ReplyFinding::from).collect(),
            unreadable: None,
        },
        DeliveryVerdict::Failed { reason, cause } => {
            let (code, tries, unreadable) = match cause {
                FailCause::NoAnswer { tries } => (Some("no-answer"), Some(tries), None),
                FailCause::Unsigned { .. } => (Some("unsigned"), None, None),
                FailCause::Unreadable(why) => (Some("unreadable"), None, Some(ReplyFinding::from(&why))),
                _ => (None, None, None),
            };
            Sees::Banner { banner: ERROR_BANNER, reason, code, tries, problems: Vec::new(), unreadable }
        }
    };
    ChatResult { account: String::new(), sent_xml, sees, attempts, encrypted, warnings, server: Vec::new() }
}

#[cfg(test)]
mod tests {
    use wemp_client::callback::now_secs;
    use wemp_proto::{Event, Incoming};

    use super::*;

    /// A message's header from `openid` to `to`, now.
    fn header(openid: &str, to: &str) -> Header {
        Header { to: to.into(), from: openid.into(), create_time: now_secs(), agent_id: None }
    }

    #[test]
    fn actions_become_wechat_xml() {
        let xml = Action::Text { content: "hi ]]> there".into() }.to_xml(header("oUser", "gh_abc"));
        let m = Incoming::parse(&xml).unwrap();
        assert!(
            matches!(&m, Incoming::Text(t) if t.content == "hi ]]> there" && t.header.from == "oUser" && t.header.to == "gh_abc")
        );
        let xml = Action::Subscribe { scene: Some("42".into()) }.to_xml(header("oUser", "gh_abc"));
        assert!(xml.contains("qrscene_42"), "{xml}");
        assert!(matches!(Incoming::parse(&xml).unwrap(), Incoming::Event(Event::Subscribe(_))));
        let xml = Action::Click { key: "V1001_GOOD".into() }.to_xml(header("oUser", "gh_abc"));
        assert!(
            matches!(Incoming::parse(&xml).unwrap(), Incoming::Event(Event::Click(c)) if c.event_key == "V1001_GOOD")
        );
        let xml = Action::View { url: "https://example.com/".into() }.to_xml(header("oUser", "gh_abc"));
        assert!(matches!(Incoming::parse(&xml).unwrap(), Incoming::Event(Event::View(_))));
        let xml = Action::Location { lat: 23.1, lon: 113.3, scale: 15, label: "广州".into() }
            .to_xml(header("o", "gh"));
        assert!(matches!(Incoming::parse(&xml).unwrap(), Incoming::Location(l) if l.label == "广州"));
        let a: Action = serde_json::from_str(r#"{"kind":"scan","scene":"7"}"#).unwrap();
        assert_eq!(a, Action::Scan { scene: "7".into() });
    }

    /// Each try says what happened in English and as a code with its parameters, which the
    /// page translates.
    #[test]
    fn tries_carry_a_code_for_the_page() {
        use std::time::Duration;

        use wemp_client::callback::Attempt;
        let attempt = |exchange| Attempt {
            number: 1,
            started: Duration::ZERO,
            elapsed: Duration::from_millis(7),
            exchange,
        };
        let d = Delivery {
            mode: wemp_proto::Mode::Plain,
            request: String::new(),
            signed: None,
            attempts: vec![
                attempt(Answer::Connect { error: "connection refused".into() }),
                attempt(Answer::Timeout),
                attempt(Answer::Http { status: 413, content_type: None, body: String::new() }),
            ],
            outcome: DeliveryVerdict::Failed {
                reason: "all 3 tries failed".into(),
                cause: FailCause::NoAnswer { tries: 3 },
            },
        };
        let result = report(String::new(), d);
        // The banner's reason comes with its kind, for the page to word in its language.
        assert_eq!(
            serde_json::to_value(&result.sees).unwrap(),
            serde_json::json!({ "kind": "banner", "banner": ERROR_BANNER, "reason": "all 3 tries failed", "code": "no-answer", "tries": 3 })
        );
        let json = serde_json::to_value(result.attempts).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                { "started_ms": 0, "took_ms": 7, "outcome": "connection failed: connection refused", "code": "failed", "error": "connection refused" },
                { "started_ms": 0, "took_ms": 7, "outcome": "no answer: WeChat gave up", "code": "timed_out" },
                { "started_ms": 0, "took_ms": 7, "outcome": "HTTP 413", "code": "answered", "status": 413 },
            ])
        );
    }

    /// A reply WeChat refuses, and its warnings, come as findings with their kinds and
    /// parameters, and the page has Chinese words for every kind.
    #[test]
    fn a_refused_reply_carries_its_findings_for_the_page() {
        use wemp_proto::reply::ReplyMessage;
        let reply = ReplyMessage {
            header: Some(Header { to: "gh_1".into(), from: "o1".into(), create_time: 1, agent_id: None }),
            reply: wemp_proto::Reply::text("hi"),
        };
        let d = Delivery {
            mode: wemp_proto::Mode::Plain,
            request: String::new(),
            signed: None,
            attempts: Vec::new(),
            outcome: DeliveryVerdict::Reply {
                message: reply,
                encrypted: false,
                xml: String::new(),
                problems: vec![Problem::Swapped { openid: "o1".into(), account: "gh_1".into() }],
                warnings: vec![Problem::CreateTimeMillis { create_time: 1_700_000_000_000 }],
            },
        };
        let result = serde_json::to_value(report(String::new(), d)).unwrap();
        let swapped = Problem::Swapped { openid: "o1".into(), account: "gh_1".into() }.to_string();
        assert_eq!(result["sees"]["code"], "refused");
        assert_eq!(result["sees"]["reason"], swapped.as_str());
        assert_eq!(
            result["sees"]["problems"],
            serde_json::json!([{ "code": "wrong-direction-swapped", "text": swapped, "openid": "o1", "account": "gh_1" }])
        );
        assert_eq!(result["warnings"][0]["code"], "create-time-ms");
        assert_eq!(result["warnings"][0]["create_time"], 1_700_000_000_000_i64);

        let strings = include_str!("../assets/strings.js");
        let every = Problem::examples();
        for p in &every {
            let f = ReplyFinding::from(p);
            let key = format!("'server.problem.{}': '", f.code);
            let line = strings.lines().find(|l| l.trim_start().starts_with(&key));
            let line = line.unwrap_or_else(|| panic!("strings.js has no {key}"));
            for name in f.params.keys() {
                assert!(line.contains(&format!("{{{name}}}")), "{key} does not say {{{name}}}");
            }
        }
    }

    /// An unreadable answer comes with its kind and parameters, and the page has Chinese
    /// words for every kind, naming each parameter.
    #[test]
    fn an_unreadable_reply_carries_its_kind_for_the_page() {
        let why = Unreadable::Xml { detail: "unexpected end".into(), snippet: "<xm".into() };
        let d = Delivery {
            mode: wemp_proto::Mode::Plain,
            request: String::new(),
            signed: None,
            attempts: Vec::new(),
            outcome: DeliveryVerdict::Failed {
                reason: why.to_string(),
                cause: FailCause::Unreadable(why.clone()),
            },
        };
        let result = serde_json::to_value(report(String::new(), d)).unwrap();
        assert_eq!(result["sees"]["code"], "unreadable");
        assert_eq!(
            result["sees"]["unreadable"],
            serde_json::json!({ "code": "xml", "text": why.to_string(), "detail": "unexpected end", "snippet": "<xm" })
        );
        let strings = include_str!("../assets/strings.js");
        for u in &Unreadable::examples() {
            let f = ReplyFinding::from(u);
            let key = format!("'server.unreadable.{}': '", f.code);
            let line = strings.lines().find(|l| l.trim_start().starts_with(&key));
            let line = line.unwrap_or_else(|| panic!("strings.js has no {key}"));
            for name in f.params.keys() {
                assert!(line.contains(&format!("{{{name}}}")), "{key} does not say {{{name}}}");
            }
        }
    }

    #[test]
    fn message_ids_differ() {
        let id = |xml: String| match Incoming::parse(&xml).unwrap() {
            Incoming::Text(t) => t.id,
            other => panic!("{other:?}"),
        };
        let text = Action::Text { content: "hi".into() };
        assert_ne!(id(text.to_xml(header("o", "gh"))), id(text.to_xml(header("o", "gh"))));
    }
}
