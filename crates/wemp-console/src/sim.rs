//! The chat simulator: what a user does in the chat, turned into the message WeChat would
//! post, delivered to the real callback URL on WeChat's schedule.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use wemp_proto::event::{Click, Scan, Subscribe, Unsubscribe, View};
use wemp_proto::message::{Image, Link, Location, Text};
use wemp_proto::{Event, Header, Incoming};
use wemp_testkit::wechat::{AttemptOutcome, Delivery, ERROR_BANNER, UserSees, WechatCallback};

use crate::feed::Exchange;
use crate::view::ReplyView;

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
    /// The message XML sent (plain, before encryption).
    pub sent_xml: String,
    /// What the user sees.
    pub sees: Sees,
    /// Every try WeChat made.
    pub attempts: Vec<TryReport>,
    /// Whether the answer came encrypted.
    pub encrypted: bool,
    /// What the server reported about this message while it was delivered (its observer
    /// records: a `deadline` answer, a rejection …), oldest first.
    pub server: Vec<Exchange>,
}

/// What the user sees in the chat.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sees {
    /// A passive reply.
    Reply {
        /// The reply.
        reply: ReplyView,
    },
    /// Nothing.
    Nothing,
    /// WeChat's error banner.
    Banner {
        /// The banner text (`该公众号暂时无法提供服务，请稍后再试`).
        banner: &'static str,
        /// Why WeChat showed it.
        reason: String,
    },
}

/// One try of a delivery.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TryReport {
    /// When it started, ms after the first.
    pub started_ms: u64,
    /// How long it took, ms.
    pub took_ms: u64,
    /// `HTTP 200`, `timed out after 5000 ms`, or the connection error.
    pub outcome: String,
}

static NEXT_MSG_ID: AtomicU64 = AtomicU64::new(0);

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

fn msg_id() -> u64 {
    if NEXT_MSG_ID.load(Ordering::Relaxed) == 0 {
        let base = 24_000_000_000_000_000 + u64::from(rand::random::<u32>()) * 1_000;
        let _ = NEXT_MSG_ID.compare_exchange(0, base, Ordering::Relaxed, Ordering::Relaxed);
    }
    NEXT_MSG_ID.fetch_add(1, Ordering::Relaxed)
}

impl Action {
    /// The message XML WeChat would post for this action by `openid` to the account
    /// `original_id`.
    pub fn to_xml(&self, openid: &str, original_id: &str) -> String {
        let header = Header { to: original_id.to_owned(), from: openid.to_owned(), create_time: now() };
        let incoming = match self {
            Self::Text { content } => {
                let mut m = Text::default();
                m.header = header;
                m.content = content.clone();
                m.id = msg_id();
                Incoming::Text(m)
            }
            Self::Image { media_id, pic_url } => {
                let mut m = Image::default();
                m.header = header;
                m.media_id = media_id.clone();
                m.pic_url = pic_url.clone();
                m.id = msg_id();
                Incoming::Image(m)
            }
            Self::Location { lat, lon, scale, label } => {
                let mut m = Location::default();
                m.header = header;
                m.latitude = *lat;
                m.longitude = *lon;
                m.scale = *scale;
                m.label = label.clone();
                m.id = msg_id();
                Incoming::Location(m)
            }
            Self::Link { title, description, url } => {
                let mut m = Link::default();
                m.header = header;
                m.title = title.clone();
                m.description = description.clone();
                m.url = url.clone();
                m.id = msg_id();
                Incoming::Link(m)
            }
            Self::Subscribe { scene } => {
                let mut e = Subscribe::default();
                e.header = header;
                if let Some(scene) = scene.as_deref().filter(|s| !s.is_empty()) {
                    e.event_key = Some(format!("qrscene_{scene}"));
                    e.ticket = Some(format!("gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL{scene}"));
                }
                Incoming::Event(Event::Subscribe(e))
            }
            Self::Unsubscribe => {
                let mut e = Unsubscribe::default();
                e.header = header;
                e.event_key = Some(String::new());
                Incoming::Event(Event::Unsubscribe(e))
            }
            Self::Scan { scene } => {
                let mut e = Scan::default();
                e.header = header;
                e.event_key = scene.clone();
                e.ticket = Some(format!("gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL{scene}"));
                Incoming::Event(Event::Scan(e))
            }
            Self::Click { key } => {
                let mut e = Click::default();
                e.header = header;
                e.event_key = key.clone();
                Incoming::Event(Event::Click(e))
            }
            Self::View { url } => {
                let mut e = View::default();
                e.header = header;
                e.event_key = url.clone();
                Incoming::Event(Event::View(e))
            }
        };
        incoming.to_xml()
    }
}

/// Performs `action` as `openid` through `wechat` (the real endpoint, WeChat's schedule).
pub async fn run(wechat: &WechatCallback, original_id: &str, openid: &str, action: &Action) -> ChatResult {
    let sent_xml = action.to_xml(openid, original_id);
    let delivery = wechat.deliver(openid, &sent_xml).await;
    report(sent_xml, delivery)
}

fn report(sent_xml: String, d: Delivery) -> ChatResult {
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let attempts = d
        .attempts
        .iter()
        .map(|a| TryReport {
            started_ms: ms(a.started),
            took_ms: ms(a.took),
            outcome: match &a.outcome {
                AttemptOutcome::Answered { status, .. } => format!("HTTP {status}"),
                AttemptOutcome::TimedOut => "no answer: WeChat gave up".to_owned(),
                AttemptOutcome::Failed(e) => format!("connection failed: {e}"),
            },
        })
        .collect();
    let sees = match d.user_sees {
        UserSees::Reply(reply) => Sees::Reply { reply: ReplyView::from(&reply) },
        UserSees::Nothing => Sees::Nothing,
        UserSees::ErrorBanner { reason } => Sees::Banner { banner: ERROR_BANNER, reason },
    };
    ChatResult { sent_xml, sees, attempts, encrypted: d.encrypted, server: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_become_wechat_xml() {
        let xml = Action::Text { content: "hi ]]> there".into() }.to_xml("oUser", "gh_abc");
        let m = Incoming::parse(&xml).unwrap();
        assert!(
            matches!(&m, Incoming::Text(t) if t.content == "hi ]]> there" && t.header.from == "oUser" && t.header.to == "gh_abc")
        );
        let xml = Action::Subscribe { scene: Some("42".into()) }.to_xml("oUser", "gh_abc");
        assert!(xml.contains("qrscene_42"), "{xml}");
        assert!(matches!(Incoming::parse(&xml).unwrap(), Incoming::Event(Event::Subscribe(_))));
        let xml = Action::Click { key: "V1001_GOOD".into() }.to_xml("oUser", "gh_abc");
        assert!(
            matches!(Incoming::parse(&xml).unwrap(), Incoming::Event(Event::Click(c)) if c.event_key == "V1001_GOOD")
        );
        let xml = Action::View { url: "https://example.com/".into() }.to_xml("oUser", "gh_abc");
        assert!(matches!(Incoming::parse(&xml).unwrap(), Incoming::Event(Event::View(_))));
        let xml =
            Action::Location { lat: 23.1, lon: 113.3, scale: 15, label: "广州".into() }.to_xml("o", "gh");
        assert!(matches!(Incoming::parse(&xml).unwrap(), Incoming::Location(l) if l.label == "广州"));
        let a: Action = serde_json::from_str(r#"{"kind":"scan","scene":"7"}"#).unwrap();
        assert_eq!(a, Action::Scan { scene: "7".into() });
    }

    #[test]
    fn message_ids_differ() {
        assert_ne!(msg_id(), msg_id());
    }
}
