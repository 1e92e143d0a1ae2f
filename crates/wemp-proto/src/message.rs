//! Inbound messages: the [`Incoming`] enum and the ordinary message types.
//!
//! Parsing happens in two steps: the raw layer ([`Document`]) reads any well-formed XML,
//! then `MsgType` (and `Event`) pick the one typed variant to decode. A type that is not
//! modelled — or a known type whose fields do not decode — arrives as
//! [`Incoming::Unknown`] with every field and the exact XML, never as an error.
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html>
//!
//! ```
//! use wemp_proto::{Incoming, MsgKind};
//! let xml = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>\
//!            <CreateTime>1348831860</CreateTime><MsgType><![CDATA[text]]></MsgType>\
//!            <Content><![CDATA[hello]]></Content><MsgId>1234567890123456</MsgId></xml>";
//! let msg = Incoming::parse(xml)?;
//! assert_eq!(msg.kind(), MsgKind::Text);
//! let Incoming::Text(text) = &msg else { unreachable!() };
//! assert_eq!(text.content, "hello");
//! assert_eq!(Incoming::parse(&msg.to_xml())?, msg);
//! # Ok::<(), wemp_proto::Error>(())
//! ```

use std::borrow::Cow;
use std::fmt;

use crate::event::Event;
use crate::field::{Field, FieldError, Fields, tag, top_level};
use crate::xml::{Document, Element, Leaves, RawXml};

/// Who sent a message to whom, and when.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Header {
    /// `ToUserName`: the account's original id (`gh_…`) on inbound messages.
    pub to: String,
    /// `FromUserName`: the user's OpenID on inbound messages.
    pub from: String,
    /// `CreateTime`, seconds since the Unix epoch.
    pub create_time: i64,
    /// `AgentID`: the WeCom application a message is for (WeCom callbacks only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

impl Header {
    pub(crate) fn read(fields: &impl Fields) -> Result<Self, FieldError> {
        Ok(Self {
            to: String::read(fields, tag!("ToUserName"))?,
            from: String::read(fields, tag!("FromUserName"))?,
            create_time: i64::read(fields, tag!("CreateTime"))?,
            agent_id: agent_id(fields),
        })
    }

    /// Whatever header fields are present; absent ones are empty or zero.
    pub(crate) fn read_lenient(root: &Element) -> Self {
        Self {
            to: root.text_of("ToUserName").unwrap_or_default().to_owned(),
            from: root.text_of("FromUserName").unwrap_or_default().to_owned(),
            create_time: i64::read(root, tag!("CreateTime")).unwrap_or(0),
            agent_id: agent_id(root),
        }
    }

    pub(crate) fn to_root(&self, msg_type: &str) -> Element {
        let mut root = Element::new("xml");
        root.children.reserve(8);
        root.children.push(Element::cdata("ToUserName", self.to.as_str()));
        root.children.push(Element::cdata("FromUserName", self.from.as_str()));
        root.children.push(Element::bare("CreateTime", self.create_time.to_string()));
        root.children.push(Element::cdata("MsgType", msg_type));
        if let Some(agent) = &self.agent_id {
            root.children.push(Element::bare("AgentID", agent.as_str()));
        }
        root
    }
}

/// `AgentID`, when the message has one (WeCom).
fn agent_id(fields: &impl Fields) -> Option<String> {
    fields.text(tag!("AgentID")).map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned)
}

top_level! {
    /// A text message (`MsgType=text`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html>
    pub struct Text ["text"] {
        /// The text the user sent.
        "Content" => content: String,
        /// `MsgId`, unique per user; exceeds 2^53.
        #[serde(serialize_with = "crate::field::u64_as_string")]
        "MsgId" => id: u64,
        /// Set when the user tapped a menu item of a menu message.
        "bizmsgmenuid" => biz_msg_menu_id: Option<String>,
        /// Data id of the article the message came from, if any.
        "MsgDataId" => msg_data_id: Option<String>,
        /// Index of that article in its multi-article message.
        "Idx" => idx: Option<String>,
    }

    /// An image message (`MsgType=image`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html>
    pub struct Image ["image"] {
        /// URL of the picture.
        "PicUrl" => pic_url: String,
        /// Media id for the media download API.
        "MediaId" => media_id: String,
        /// `MsgId`.
        #[serde(serialize_with = "crate::field::u64_as_string")]
        "MsgId" => id: u64,
        /// Data id of the article the message came from, if any.
        "MsgDataId" => msg_data_id: Option<String>,
        /// Index of that article.
        "Idx" => idx: Option<String>,
    }

    /// A voice message (`MsgType=voice`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html>
    pub struct Voice ["voice"] {
        /// Media id of the recording.
        "MediaId" => media_id: String,
        /// Audio format, e.g. `amr` or `speex`.
        "Format" => format: String,
        /// Media id of the 16 kHz version, when WeChat provides one.
        "MediaId16K" => media_id_16k: Option<String>,
        /// Speech recognition result, when enabled for the account.
        "Recognition" => recognition: Option<String>,
        /// `MsgId`.
        #[serde(serialize_with = "crate::field::u64_as_string")]
        "MsgId" => id: u64,
        /// Data id of the article the message came from, if any.
        "MsgDataId" => msg_data_id: Option<String>,
        /// Index of that article.
        "Idx" => idx: Option<String>,
    }

    /// A video message (`MsgType=video`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html>
    pub struct Video ["video"] {
        /// Media id of the video.
        "MediaId" => media_id: String,
        /// Media id of its thumbnail.
        "ThumbMediaId" => thumb_media_id: String,
        /// `MsgId`.
        #[serde(serialize_with = "crate::field::u64_as_string")]
        "MsgId" => id: u64,
        /// Data id of the article the message came from, if any.
        "MsgDataId" => msg_data_id: Option<String>,
        /// Index of that article.
        "Idx" => idx: Option<String>,
    }

    /// A short video message (`MsgType=shortvideo`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html>
    pub struct ShortVideo ["shortvideo"] {
        /// Media id of the video.
        "MediaId" => media_id: String,
        /// Media id of its thumbnail.
        "ThumbMediaId" => thumb_media_id: String,
        /// `MsgId`.
        #[serde(serialize_with = "crate::field::u64_as_string")]
        "MsgId" => id: u64,
        /// Data id of the article the message came from, if any.
        "MsgDataId" => msg_data_id: Option<String>,
        /// Index of that article.
        "Idx" => idx: Option<String>,
    }

    /// A location the user shared (`MsgType=location`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html>
    pub struct Location ["location"] {
        /// Latitude.
        "Location_X" => latitude: f64,
        /// Longitude.
        "Location_Y" => longitude: f64,
        /// Map zoom level.
        "Scale" => scale: u32,
        /// Place description.
        "Label" => label: String,
        /// `MsgId`.
        #[serde(serialize_with = "crate::field::u64_as_string")]
        "MsgId" => id: u64,
        /// Data id of the article the message came from, if any.
        "MsgDataId" => msg_data_id: Option<String>,
        /// Index of that article.
        "Idx" => idx: Option<String>,
    }

    /// A link the user shared (`MsgType=link`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html>
    pub struct Link ["link"] {
        /// Title.
        "Title" => title: String,
        /// Description.
        "Description" => description: String,
        /// Target URL.
        "Url" => url: String,
        /// `MsgId`.
        #[serde(serialize_with = "crate::field::u64_as_string")]
        "MsgId" => id: u64,
        /// Data id of the article the message came from, if any.
        "MsgDataId" => msg_data_id: Option<String>,
        /// Index of that article.
        "Idx" => idx: Option<String>,
    }

    /// A mini program card (`MsgType=miniprogrampage`).
    pub struct MiniProgramPage ["miniprogrampage"] {
        /// Card title.
        "Title" => title: String,
        /// The mini program's appid.
        "AppId" => app_id: String,
        /// Page path inside the mini program.
        "PagePath" => page_path: String,
        /// Thumbnail URL.
        "ThumbUrl" => thumb_url: Option<String>,
        /// Thumbnail media id.
        "ThumbMediaId" => thumb_media_id: Option<String>,
        /// `MsgId`.
        #[serde(serialize_with = "crate::field::u64_as_string")]
        "MsgId" => id: u64,
    }
}

/// Why [`Incoming::typed`] has no typed value: the message (or, for `Event`, the event) is
/// not modelled (`None`) or a field does not decode.
enum Untyped {
    /// It becomes [`Incoming::Unknown`].
    Message(Option<FieldError>),
    /// It becomes [`Event::Unknown`].
    Event(Option<FieldError>),
}

/// A message or event whose type is not modelled (or whose fields did not decode).
///
/// Nothing is lost: `fields` is the whole document as a tree and `raw` the exact XML.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct Unknown {
    /// Whatever header fields were present.
    #[serde(flatten)]
    pub header: Header,
    /// The `MsgType` as sent.
    pub msg_type: String,
    /// The `Event` as sent, for events.
    #[serde(rename = "event_name")]
    pub event: Option<String>,
    /// Why a known type fell back to `Unknown` (a field that did not decode), if it did.
    pub decode_error: Option<String>,
    /// The whole document.
    pub fields: Element,
    /// Exactly what arrived (after decryption).
    pub raw: RawXml,
}

impl Unknown {
    pub(crate) fn from_document(doc: &Document, decode_error: Option<FieldError>) -> Self {
        Self {
            header: Header::read_lenient(&doc.root),
            msg_type: doc.root.text_of("MsgType").unwrap_or_default().to_owned(),
            event: doc.root.text_of("Event").map(str::to_owned),
            decode_error: decode_error.map(|e| e.to_string()),
            fields: doc.root.clone(),
            raw: doc.raw.clone(),
        }
    }

    /// The text of a top-level field, e.g. `unknown.field("MsgId")`.
    pub fn field(&self, tag: &str) -> Option<&str> {
        self.fields.text_of(tag)
    }
}

/// The `MsgType` of an inbound message: an open set.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[non_exhaustive]
pub enum MsgKind {
    /// `text`
    Text,
    /// `image`
    Image,
    /// `voice`
    Voice,
    /// `video`
    Video,
    /// `shortvideo`
    ShortVideo,
    /// `location`
    Location,
    /// `link`
    Link,
    /// `miniprogrampage`
    MiniProgramPage,
    /// `event`
    Event,
    /// Any other value, normalised to ASCII lowercase (see [`OtherKind`]).
    Other(OtherKind),
}

/// The value of an open set (`MsgType`, `Event`) that wemp does not model, normalised to
/// ASCII lowercase, as WeChat matches these values case-insensitively.
///
/// It can only be built through `from_wire` (ruma's `PrivOwnedStr` pattern), so a kind is
/// never an un-normalised copy of a known one and derived equality is right:
/// `EventKind::from_wire("SUBSCRIBE") == EventKind::Subscribe` and
/// `EventKind::from_wire("User_Stamp_Card") == EventKind::from_wire("user_stamp_card")`.
/// The spelling as sent stays in [`Unknown`] and its raw XML.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct OtherKind(Box<str>);

impl OtherKind {
    /// Normalises a value no known kind has (trimmed, ASCII lowercase).
    pub(crate) fn new(s: &str) -> Self {
        Self(s.trim().to_ascii_lowercase().into())
    }

    /// The normalised value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OtherKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for OtherKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl MsgKind {
    /// Reads a `MsgType` value (case-insensitively).
    #[inline]
    pub fn from_wire(s: &str) -> Self {
        // As WeChat writes it, by one `match`; else trimmed and in lowercase.
        Self::known(s).unwrap_or_else(|| {
            let other = OtherKind::new(s);
            Self::known(other.as_str()).unwrap_or(Self::Other(other))
        })
    }

    /// The kind spelt exactly `s`, if one is.
    #[inline]
    fn known(s: &str) -> Option<Self> {
        Some(match s {
            "text" => Self::Text,
            "image" => Self::Image,
            "voice" => Self::Voice,
            "video" => Self::Video,
            "shortvideo" => Self::ShortVideo,
            "location" => Self::Location,
            "link" => Self::Link,
            "miniprogrampage" => Self::MiniProgramPage,
            "event" => Self::Event,
            _ => return None,
        })
    }

    /// The wire spelling (an unmodelled value in ASCII lowercase).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(s) => s.as_str(),
            known => known.known_str(),
        }
    }

    /// [`as_str`](Self::as_str) to keep: a modelled kind's spelling borrowed, an
    /// unmodelled one's copied.
    pub fn to_cow(&self) -> Cow<'static, str> {
        match self {
            Self::Other(s) => Cow::Owned(s.as_str().to_owned()),
            known => Cow::Borrowed(known.known_str()),
        }
    }

    /// A modelled kind's spelling (`""` for [`MsgKind::Other`]).
    fn known_str(&self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
            Self::Voice => "voice",
            Self::Video => "video",
            Self::ShortVideo => "shortvideo",
            Self::Location => "location",
            Self::Link => "link",
            Self::MiniProgramPage => "miniprogrampage",
            Self::Event => "event",
            Self::Other(_) => "",
        }
    }
}

impl fmt::Display for MsgKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Anything WeChat POSTs to the server.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Incoming {
    /// `text`
    Text(Text),
    /// `image`
    Image(Image),
    /// `voice`
    Voice(Voice),
    /// `video`
    Video(Video),
    /// `shortvideo`
    ShortVideo(ShortVideo),
    /// `location`
    Location(Location),
    /// `link`
    Link(Link),
    /// `miniprogrampage`
    MiniProgramPage(MiniProgramPage),
    /// `event`, typed by its `Event` value.
    Event(Event),
    /// A type not modelled here, or one whose fields did not decode.
    Unknown(Unknown),
}

impl Incoming {
    /// Parses the (decrypted) XML of a message or event.
    ///
    /// # Errors
    /// Only when the XML itself is not acceptable ([`crate::XmlError`]); unknown or
    /// undecodable types arrive as [`Incoming::Unknown`].
    pub fn parse(xml: &str) -> Result<Self, crate::Error> {
        Ok(Self::read(xml)?)
    }

    /// [`Incoming::parse`] with the XML's own error: a flat message (a root of leaves, as
    /// nearly every one WeChat sends) of a type wemp models is typed straight from its leaves
    /// ([`Leaves`]), without a [`Document`]; anything else — not flat, a type not modelled,
    /// a field that does not decode — as `Incoming::from_document(&Document::parse(xml)?)`
    /// reads it. Both read the same fields through the same readers, so they agree.
    pub(crate) fn read(xml: &str) -> Result<Self, crate::XmlError> {
        let mut leaves = Leaves::new();
        if leaves.scan(xml)
            && let Ok(typed) = Self::typed(&leaves)
        {
            return Ok(typed);
        }
        let doc = Document::parse(xml)?;
        Ok(Self::from_document(&doc))
    }

    /// Types an already parsed document.
    pub fn from_document(doc: &Document) -> Self {
        Self::typed(&doc.root).unwrap_or_else(|untyped| match untyped {
            Untyped::Message(error) => Self::Unknown(Unknown::from_document(doc, error)),
            Untyped::Event(error) => Self::Event(Event::Unknown(Unknown::from_document(doc, error))),
        })
    }

    /// The typed message or event `fields` (a document's root, or a flat document's leaves)
    /// hold, or why there is none.
    fn typed(fields: &impl Fields) -> Result<Self, Untyped> {
        let msg_type = fields.text(tag!("MsgType")).unwrap_or_default();
        let typed = match MsgKind::from_wire(msg_type) {
            MsgKind::Text => Text::read(fields).map(Self::Text),
            MsgKind::Image => Image::read(fields).map(Self::Image),
            MsgKind::Voice => Voice::read(fields).map(Self::Voice),
            MsgKind::Video => Video::read(fields).map(Self::Video),
            MsgKind::ShortVideo => ShortVideo::read(fields).map(Self::ShortVideo),
            MsgKind::Location => Location::read(fields).map(Self::Location),
            MsgKind::Link => Link::read(fields).map(Self::Link),
            MsgKind::MiniProgramPage => MiniProgramPage::read(fields).map(Self::MiniProgramPage),
            MsgKind::Event => return Event::typed(fields).map(Self::Event).map_err(Untyped::Event),
            MsgKind::Other(_) => return Err(Untyped::Message(None)),
        };
        typed.map_err(|e| Untyped::Message(Some(e)))
    }

    /// [`Incoming::from_document`], taking a text message's ids and content out of `doc`
    /// rather than copying them (they are left empty in `doc.root`; `doc.raw` is untouched).
    /// Any other document (a `MsgType` other than `text` as WeChat writes it, or a text
    /// message that does not decode) is read as [`Incoming::from_document`] reads it, and
    /// left as it was.
    pub fn take_from_document(doc: &mut Document) -> Self {
        // As WeChat writes it; any other spelling is read the usual way.
        if doc.root.text_of("MsgType") != Some("text") {
            return Self::from_document(doc);
        }
        // Each taken text leaves its element empty (the first of its name, which is the one
        // read), and empty text is copied without an allocation; a text message takes them
        // back.
        // Where each taken text goes.
        let slot = |name: &str| match name {
            "ToUserName" => Some(0),
            "FromUserName" => Some(1),
            "Content" => Some(2),
            _ => None,
        };
        let mut taken: [Option<String>; 3] = Default::default();
        let mut left = taken.len();
        for child in &mut doc.root.children {
            let Some(i) = slot(&child.name) else { continue };
            if taken[i].is_none() {
                taken[i] = Some(std::mem::take(&mut child.text));
                left -= 1;
                if left == 0 {
                    break;
                }
            }
        }
        let mut incoming = Self::from_document(doc);
        let Self::Text(text) = &mut incoming else {
            // Not a text message after all (a field did not decode): read again as it came.
            let mut taken = taken;
            for child in &mut doc.root.children {
                let Some(i) = slot(&child.name) else { continue };
                if let Some(t) = taken[i].take() {
                    child.text = t;
                }
            }
            return Self::from_document(doc);
        };
        let [to, from, content] = taken;
        text.header.to = to.unwrap_or_default();
        text.header.from = from.unwrap_or_default();
        text.content = content.unwrap_or_default();
        incoming
    }

    /// The message's header.
    pub fn header(&self) -> &Header {
        match self {
            Self::Text(m) => &m.header,
            Self::Image(m) => &m.header,
            Self::Voice(m) => &m.header,
            Self::Video(m) => &m.header,
            Self::ShortVideo(m) => &m.header,
            Self::Location(m) => &m.header,
            Self::Link(m) => &m.header,
            Self::MiniProgramPage(m) => &m.header,
            Self::Event(e) => e.header(),
            Self::Unknown(u) => &u.header,
        }
    }

    /// The `MsgType`.
    pub fn kind(&self) -> MsgKind {
        match self {
            Self::Text(_) => MsgKind::Text,
            Self::Image(_) => MsgKind::Image,
            Self::Voice(_) => MsgKind::Voice,
            Self::Video(_) => MsgKind::Video,
            Self::ShortVideo(_) => MsgKind::ShortVideo,
            Self::Location(_) => MsgKind::Location,
            Self::Link(_) => MsgKind::Link,
            Self::MiniProgramPage(_) => MsgKind::MiniProgramPage,
            Self::Event(_) => MsgKind::Event,
            Self::Unknown(u) => MsgKind::from_wire(&u.msg_type),
        }
    }

    /// The event, if this is one (typed or unknown events).
    pub fn event(&self) -> Option<&Event> {
        match self {
            Self::Event(e) => Some(e),
            _ => None,
        }
    }

    /// Whether this is an event (`MsgType=event`), typed or not.
    pub fn is_event(&self) -> bool {
        self.kind() == MsgKind::Event
    }

    /// The `MsgId` of an ordinary message (`None` for events).
    pub fn msg_id(&self) -> Option<u64> {
        match self {
            Self::Text(m) => Some(m.id),
            Self::Image(m) => Some(m.id),
            Self::Voice(m) => Some(m.id),
            Self::Video(m) => Some(m.id),
            Self::ShortVideo(m) => Some(m.id),
            Self::Location(m) => Some(m.id),
            Self::Link(m) => Some(m.id),
            Self::MiniProgramPage(m) => Some(m.id),
            Self::Event(_) => None,
            Self::Unknown(u) if !u.msg_type.eq_ignore_ascii_case("event") => {
                u.field("MsgId").and_then(|s| s.trim().parse().ok())
            }
            Self::Unknown(_) => None,
        }
    }

    /// The `InfoType` of an Open Platform third-party platform's push (`component_verify_ticket`,
    /// `authorized` …), which has no `MsgType`; `None` for everything else.
    pub fn info_type(&self) -> Option<&str> {
        match self {
            Self::Unknown(u) if u.msg_type.is_empty() => u.field("InfoType").map(str::trim),
            _ => None,
        }
    }

    /// A one-line summary for logs and consoles: a text's content, an event's name and key
    /// (a card event's card and the user's code), a media id, a location or a link; at most
    /// 200 characters (longer ones end in `…`).
    pub fn summary(&self) -> String {
        fn non_empty(s: Option<&str>) -> Option<&str> {
            s.filter(|s| !s.is_empty())
        }
        let text = match self {
            Self::Text(t) => t.content.clone(),
            Self::Event(e) => {
                // The key of a menu or QR event; a card event's card (and the user's code).
                let detail = non_empty(e.event_key()).map(str::to_owned).or_else(|| {
                    let card = non_empty(e.card_id())?;
                    Some(match non_empty(e.user_card_code()) {
                        Some(code) => format!("{card} {code}"),
                        None => card.to_owned(),
                    })
                });
                match detail {
                    Some(d) => format!("{} {d}", e.kind().as_str()),
                    None => e.kind().as_str().to_owned(),
                }
            }
            Self::Image(m) => format!("image {}", m.media_id),
            Self::Voice(m) => format!("voice {}", m.media_id),
            Self::Video(m) => format!("video {}", m.media_id),
            Self::ShortVideo(m) => format!("shortvideo {}", m.media_id),
            Self::Location(m) => format!("location {},{} {}", m.latitude, m.longitude, m.label),
            Self::Link(m) => format!("link {}", m.url),
            // A third-party platform's push: its InfoType and authorizer (never the ticket or
            // the authorization code).
            Self::Unknown(u) if self.info_type().is_some() => {
                let info = self.info_type().unwrap_or_default();
                match non_empty(u.field("AuthorizerAppid").map(str::trim)) {
                    Some(appid) => format!("{info} {appid}"),
                    None => info.to_owned(),
                }
            }
            other => other.kind().as_str().to_owned(),
        };
        // No more characters than bytes: a short text is not counted.
        if text.len() > 200 && text.chars().count() > 200 {
            text.chars().take(199).chain(['…']).collect()
        } else {
            text
        }
    }

    /// The key WeChat's retries of this delivery share (PROTOCOL.md §3):
    /// `msg:<FromUserName>:<MsgId>` for messages (ids have collided across users), and
    /// `event:<FromUserName>:<CreateTime>:<Event>:<EventKey>` for events. A card event has
    /// no `EventKey`; its `UserCardCode` (or else, when it has none or an empty one, its
    /// `CardId`) stands in, so that two cards a user receives in the same second are two
    /// deliveries, not a delivery and its retry. A coin-ledger push (`card_pay_order`) uses
    /// `OrderId:Status` (an order moves through several statuses), a member-card update
    /// adds its `ModifyBonus:ModifyBalance`. A message whose `MsgId` or `CreateTime` does not
    /// decode keys on the text as written.
    pub fn dedup_key(&self) -> String {
        if self.msg_id().is_some() {
            // Every message has one: sized once, no `format!` machinery.
            let mut key = String::with_capacity(self.dedup_key_room());
            self.push_dedup_key(&mut key);
            return key;
        }
        self.dedup_key_slow()
    }

    /// The room [`Incoming::push_dedup_key`] takes for a message (`msg:`, its sender, `:`, a
    /// `MsgId` of up to 20 digits); an event's key may take more.
    pub fn dedup_key_room(&self) -> usize {
        4 + self.header().from.len() + 1 + 20
    }

    /// Appends [`Incoming::dedup_key`] to `out`: for a message (which has a `MsgId`) with no
    /// string of its own, so that a caller prefixing the key builds it in one allocation.
    pub fn push_dedup_key(&self, out: &mut String) {
        match self.msg_id() {
            Some(id) => {
                out.push_str("msg:");
                out.push_str(&self.header().from);
                out.push(':');
                crate::xml::push_uint(out, id);
            }
            None => out.push_str(&self.dedup_key_slow()),
        }
    }

    /// [`Incoming::dedup_key`] of a delivery without a decoded `MsgId`.
    fn dedup_key_slow(&self) -> String {
        let header = self.header();
        // A message whose fields did not decode keys on their text as it came (a retry is
        // the same bytes): two with a garbled MsgId or CreateTime must not share a key.
        let garbled = match self {
            Self::Unknown(u) | Self::Event(Event::Unknown(u)) => Some(u),
            _ => None,
        };
        let raw = |name| garbled.and_then(|u| u.field(name)).map(str::trim).filter(|s| !s.is_empty());
        let is_event = matches!(self, Self::Event(_))
            || garbled.is_some_and(|u| u.msg_type.eq_ignore_ascii_case("event"));
        if let Some(id) = raw("MsgId").filter(|_| !is_event) {
            return format!("msg:{}:{id}", header.from);
        }
        let created = match raw("CreateTime") {
            Some(text) if header.create_time == 0 => text.to_owned(),
            _ => header.create_time.to_string(),
        };
        let (event, key) = match self {
            Self::Event(e) => {
                let card = [e.event_key(), e.user_card_code(), e.card_id()]
                    .into_iter()
                    .flatten()
                    .find(|k| !k.is_empty())
                    .unwrap_or_default();
                let key = match e {
                    Event::CardPayOrder(o) => format!("{}:{}", o.order_id, o.status),
                    Event::UpdateMemberCard(u) => format!("{card}:{}:{}", u.modify_bonus, u.modify_balance),
                    _ => card.to_owned(),
                };
                (e.kind().as_str().to_owned(), key)
            }
            // A third-party platform's push has no MsgType: its InfoType and authorizer tell
            // a ticket from an authorization in the same second.
            Self::Unknown(u) if self.info_type().is_some() => (
                self.info_type().unwrap_or_default().to_owned(),
                u.field("AuthorizerAppid").unwrap_or_default().to_owned(),
            ),
            Self::Unknown(u) => (
                u.event.clone().unwrap_or_else(|| u.msg_type.clone()),
                u.field("EventKey").unwrap_or_default().to_owned(),
            ),
            _ => (String::new(), String::new()),
        };
        format!("event:{}:{created}:{}:{}", header.from, event, key)
    }

    /// Writes the value back as XML (an `Unknown` is written exactly as it arrived).
    pub fn to_xml(&self) -> String {
        match self {
            Self::Text(m) => m.to_xml(),
            Self::Image(m) => m.to_xml(),
            Self::Voice(m) => m.to_xml(),
            Self::Video(m) => m.to_xml(),
            Self::ShortVideo(m) => m.to_xml(),
            Self::Location(m) => m.to_xml(),
            Self::Link(m) => m.to_xml(),
            Self::MiniProgramPage(m) => m.to_xml(),
            Self::Event(e) => e.to_xml(),
            Self::Unknown(u) => u.raw.as_str().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::{Just, Strategy, any, prop_oneof};

    use super::*;

    fn parse(body: &str) -> Incoming {
        let xml = format!(
            "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>\
             <CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>{body}</xml>"
        );
        Incoming::parse(&xml).unwrap()
    }

    /// The message typed from a flat document's leaves, if it is one and types.
    fn from_leaves(xml: &str) -> Option<Incoming> {
        let mut leaves = Leaves::new();
        leaves.scan(xml).then(|| Incoming::typed(&leaves).ok()).flatten()
    }

    #[test]
    fn a_flat_message_is_read_without_its_document() {
        let text = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>\
                    <CreateTime> 1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>\
                    <Content><![CDATA[a]]]></Content><MsgId>7</MsgId><Idx></Idx></xml>";
        let click = "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>\
                     <MsgType>event</MsgType><Event>CLICK</Event><EventKey><![CDATA[K]]></EventKey></xml>";
        for xml in [text, &text.replace("[text]", "[TEXT]"), click] {
            let typed = from_leaves(xml).unwrap();
            assert_eq!(typed, Incoming::from_document(&Document::parse(xml).unwrap()), "{xml}");
            assert!(!matches!(typed, Incoming::Unknown(_) | Incoming::Event(Event::Unknown(_))), "{xml}");
        }
        // Anything else is left to the document.
        for other in [
            text.replace("<MsgId>7", "<MsgId>x"),
            text.replace("<Content>", "<!-- --><Content>"),
            text.replace("<Content><![CDATA[a]]]></Content>", ""),
            text.replace("[text]", "[textual]"),
            click.replace("CLICK", "NEW_EVENT"),
            click.replace("<EventKey><![CDATA[K]]></EventKey>", ""),
        ] {
            assert!(from_leaves(&other).is_none(), "{other}");
        }
    }

    /// Every modelled type: its `MsgType`, its `Event` (events) and its fields' tags.
    fn every_type() -> Vec<(&'static str, Option<&'static str>, &'static [&'static str])> {
        let mut types = vec![
            (Text::MSG_TYPE, None, Text::TAGS),
            (Image::MSG_TYPE, None, Image::TAGS),
            (Voice::MSG_TYPE, None, Voice::TAGS),
            (Video::MSG_TYPE, None, Video::TAGS),
            (ShortVideo::MSG_TYPE, None, ShortVideo::TAGS),
            (Location::MSG_TYPE, None, Location::TAGS),
            (Link::MSG_TYPE, None, Link::TAGS),
            (MiniProgramPage::MSG_TYPE, None, MiniProgramPage::TAGS),
        ];
        types.extend(crate::event::EVENT_TAGS.iter().map(|&(event, tags)| ("event", Some(event), tags)));
        types
    }

    /// A name that is not `name` but has its slot in [`Leaves`]: a leaf a lookup of `name`
    /// must pass over.
    fn decoy(name: &str) -> String {
        decoys(name).next().unwrap_or_default()
    }

    /// Every name `Z<n>` with `name`'s slot in [`Leaves`].
    fn decoys(name: &str) -> impl Iterator<Item = String> {
        let slot = crate::xml::slot_of(name);
        (0..100_000).map(|i| format!("Z{i}")).filter(move |d| crate::xml::slot_of(d) == slot)
    }

    /// However many names share a field's slot, what the leaves give is what the document
    /// gives (an optional field, so that a leaf lost would show rather than fall back).
    #[test]
    fn many_names_sharing_a_slot_are_not_lost() {
        for n in [0, 1, 7, 8, 9, 12] {
            let mut leaves = complete(0, 0);
            leaves.retain(|(name, _)| name != "Idx");
            let at = leaves.len() / 2;
            for (i, decoy) in decoys("Idx").take(n).enumerate() {
                leaves.insert(at, (decoy, i.to_string()));
            }
            leaves.push(("Idx".to_owned(), "5".to_owned()));
            let xml = to_xml(&leaves, 0);
            let doc = Incoming::from_document(&Document::parse(&xml).unwrap());
            let Incoming::Text(text) = &doc else { panic!("{xml}") };
            assert_eq!(text.idx.as_deref(), Some("5"));
            match from_leaves(&xml) {
                Some(flat) => assert_eq!(flat, doc, "{xml}"),
                None => assert!(n > 8, "{n} names sharing a slot: {xml}"),
            }
            assert_eq!(Incoming::read(&xml).unwrap(), doc);
        }
    }

    /// Leaves as XML: `style` 0 CDATA, 1 bare text (escaped), 2 alternating, 3 alternating
    /// with layout between the leaves, 4 also inside them (around CDATA: not flat).
    fn to_xml(leaves: &[(String, String)], style: u8) -> String {
        let mut xml = String::from("<xml>");
        for (i, (name, value)) in leaves.iter().enumerate() {
            let cdata = match style {
                0 => true,
                1 => false,
                _ => i % 2 == 0,
            };
            if style >= 3 {
                xml.push_str("\n\t ");
            }
            let el = if cdata {
                Element::cdata(name.clone(), value.as_str())
            } else {
                Element::bare(name.clone(), value.as_str())
            };
            let mut leaf = String::new();
            el.write_to(&mut leaf);
            if style == 4 && cdata {
                // Layout around a CDATA section is not text.
                leaf = leaf.replacen("><![CDATA[", ">\n <![CDATA[", 1);
            }
            xml.push_str(&leaf);
        }
        xml.push_str("\r\n</xml>\n");
        xml
    }

    /// A message of `types()[t]` with every field (the header, `MsgType` and `Event` spelt
    /// as `case` says, every declared field `1`).
    fn complete(t: usize, case: u8) -> Vec<(String, String)> {
        let (msg_type, event, tags) = every_type()[t];
        let spell = |s: &str| match case {
            1 => s.to_ascii_uppercase(),
            2 => format!(" {s}\n"),
            _ => s.to_owned(),
        };
        let mut leaves = vec![
            ("ToUserName".to_owned(), "gh_1".to_owned()),
            ("FromUserName".to_owned(), "o1".to_owned()),
            ("CreateTime".to_owned(), "1700000000".to_owned()),
            ("MsgType".to_owned(), spell(msg_type)),
        ];
        if let Some(event) = event {
            leaves.push(("Event".to_owned(), spell(event)));
        }
        leaves.extend(tags.iter().map(|tag| ((*tag).to_owned(), "1".to_owned())));
        leaves
    }

    /// Any type's message, edited: fields left out, given twice, given other values (numbers
    /// that do and do not decode, entities, `]]>`), decoys sharing a field's slot, other
    /// leaves, in another order, written as CDATA or text with or without layout.
    fn any_message() -> impl Strategy<Value = String> {
        let value = prop_oneof![
            Just("1"),
            Just(" 12 "),
            Just("-1"),
            Just("3.5"),
            Just(""),
            Just(" "),
            Just("+7"),
            Just("6054768590064713728"),
            Just("18446744073709551616"),
            Just("abc"),
            Just("a]]>b"),
            Just("中文 <&>"),
            Just("qrscene_1"),
        ];
        let edit = (any::<proptest::sample::Index>(), value, 0..5u8, any::<proptest::sample::Index>());
        (
            0..every_type().len(),
            0..3u8,
            proptest::collection::vec(edit, 0..8),
            any::<proptest::sample::Index>(),
            0..5u8,
        )
            .prop_map(|(t, case, edits, rotate, style)| {
                let mut leaves = complete(t, case);
                let mut names: Vec<String> = leaves.iter().map(|(n, _)| n.clone()).collect();
                names.extend(["AgentID".to_owned(), "Other".to_owned()]);
                for (which, value, op, at) in edits {
                    let name = which.get(&names).clone();
                    let value = value.to_owned();
                    match op {
                        0 => leaves.retain(|(n, _)| *n != name),
                        1 => leaves.insert(at.index(leaves.len() + 1), (name, value)),
                        2 => match leaves.iter_mut().find(|(n, _)| *n == name) {
                            Some(leaf) => leaf.1 = value,
                            None => leaves.push((name, value)),
                        },
                        3 => leaves.insert(0, (decoy(&name), value)),
                        _ => leaves.push((name, value)),
                    }
                }
                if !leaves.is_empty() {
                    let n = rotate.index(leaves.len());
                    leaves.rotate_left(n);
                }
                to_xml(&leaves, style)
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// Whatever is typed from a flat document's leaves is what its document types to, and
        /// `Incoming::read` (leaves first, else the document) always gives the document's.
        #[test]
        fn every_type_reads_from_its_leaves_as_from_its_document(xml in any_message()) {
            let doc = Incoming::from_document(&Document::parse(&xml).unwrap());
            if let Some(flat) = from_leaves(&xml) {
                proptest::prop_assert_eq!(&flat, &doc, "{}", xml);
            }
            proptest::prop_assert_eq!(Incoming::read(&xml).unwrap(), doc, "{}", xml);
        }
    }

    #[test]
    fn every_flat_type_is_read_from_its_leaves() {
        let mut from_tree = Vec::new();
        for t in 0..every_type().len() {
            for (case, style) in [(0, 0), (1, 1), (2, 2), (0, 3)] {
                let xml = to_xml(&complete(t, case), style);
                let doc = Incoming::from_document(&Document::parse(&xml).unwrap());
                assert!(!matches!(doc, Incoming::Unknown(_)), "{xml}");
                match from_leaves(&xml) {
                    Some(flat) => assert_eq!(flat, doc, "{xml}"),
                    None => from_tree.push(every_type()[t].1.unwrap_or_default()),
                }
            }
        }
        // Only events with a nested field (which a flat document has as a leaf, so that the
        // document decides) are left to the tree.
        from_tree.dedup();
        assert_eq!(
            from_tree,
            [
                "scancode_push",
                "scancode_waitmsg",
                "pic_sysphoto",
                "pic_photo_or_album",
                "pic_weixin",
                "location_select",
                "MASSSENDJOBFINISH",
                "PUBLISHJOBFINISH",
                "subscribe_msg_popup_event",
                "subscribe_msg_change_event",
                "subscribe_msg_sent_event",
                "batch_job_result",
            ]
        );
    }

    /// As `slot_of`'s documentation says: no two names of a message type (but one pair of
    /// `miniprogrampage`'s) or of a common event share a slot of `Leaves` (they would cost a
    /// search).
    #[test]
    fn common_types_names_have_slots_of_their_own() {
        let header = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "AgentID", "Event"];
        let common = ["subscribe", "unsubscribe", "CLICK", "VIEW", "view_miniprogram", "SCAN", "LOCATION"];
        for (msg_type, event, tags) in every_type() {
            if event.is_some_and(|e| !common.contains(&e)) {
                continue;
            }
            let mut slots: Vec<_> = header.iter().chain(tags).map(|n| crate::xml::slot_of(n)).collect();
            slots.sort_unstable();
            slots.dedup();
            let shared = usize::from(msg_type == MiniProgramPage::MSG_TYPE);
            assert_eq!(slots.len() + shared, header.len() + tags.len(), "{msg_type} {event:?}");
        }
    }

    /// WeChat's own samples (tests/fixtures): each flat one of a modelled type is read from
    /// its leaves, to what its document types to.
    #[test]
    fn fixtures_are_read_from_their_leaves() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut flat = Vec::new();
        for kind in ["message", "event"] {
            for entry in std::fs::read_dir(dir.join(kind)).unwrap() {
                let path = entry.unwrap().path();
                let xml = std::fs::read_to_string(&path).unwrap();
                let doc = Incoming::from_document(&Document::parse(&xml).unwrap());
                let typed = !matches!(doc, Incoming::Unknown(_) | Incoming::Event(Event::Unknown(_)));
                let is_flat = Leaves::new().scan(&xml);
                match from_leaves(&xml) {
                    Some(m) => {
                        assert_eq!(m, doc, "{path:?}");
                        flat.push(path.file_stem().unwrap().to_string_lossy().into_owned());
                    }
                    None => {
                        assert!(!(typed && is_flat), "{path:?} is flat and typed, but not from its leaves")
                    }
                }
            }
        }
        flat.sort();
        for sample in [
            "text",
            "text_menu",
            "image",
            "voice",
            "voice_recognition",
            "video",
            "shortvideo",
            "location",
            "link",
            "miniprogrampage",
            "subscribe",
            "subscribe_qrscene",
            "unsubscribe",
            "click",
            "view",
            "scan",
        ] {
            assert!(flat.iter().any(|f| f == sample), "{sample} not read from its leaves: {flat:?}");
        }
    }

    #[test]
    fn event_summaries_name_the_key_or_the_card() {
        let click = parse("<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[V1001]]></EventKey>");
        assert_eq!(click.summary(), "CLICK V1001");
        let got = parse(
            "<Event><![CDATA[user_get_card]]></Event><CardId><![CDATA[pCard1]]></CardId>\
             <UserCardCode><![CDATA[12312312]]></UserCardCode><IsGiveByFriend>0</IsGiveByFriend>",
        );
        assert_eq!(got.summary(), "user_get_card pCard1 12312312");
        let review = parse("<Event><![CDATA[card_pass_check]]></Event><CardId><![CDATA[pCard1]]></CardId>");
        assert_eq!(review.summary(), "card_pass_check pCard1");
        let unsubscribe = parse("<Event><![CDATA[unsubscribe]]></Event><EventKey><![CDATA[]]></EventKey>");
        assert_eq!(unsubscribe.summary(), "unsubscribe");
    }

    #[test]
    fn a_text_summary_keeps_200_characters_and_cuts_a_longer_one() {
        let text = |content: &str| {
            Incoming::parse(&format!(
                "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>\
                 <CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>\
                 <Content><![CDATA[{content}]]></Content><MsgId>1</MsgId></xml>"
            ))
            .unwrap()
            .summary()
        };
        // 200 characters in 600 bytes: kept whole.
        assert_eq!(text(&"你".repeat(200)), "你".repeat(200));
        assert_eq!(text(&"a".repeat(200)), "a".repeat(200));
        assert_eq!(text(&"你".repeat(201)), format!("{}…", "你".repeat(199)));
        assert_eq!(text(&"a".repeat(201)), format!("{}…", "a".repeat(199)));
    }
}
