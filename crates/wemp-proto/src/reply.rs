//! Passive replies: what the server answers to a POST, within WeChat's 5-second window.
//!
//! A reply swaps the direction of the message it answers (`ToUserName` = the user's OpenID,
//! `FromUserName` = the account's `gh_…` id) and carries `CreateTime` in seconds; the
//! [`ReplyContext`] takes care of both. [`Reply::None`] renders as `success`, which tells
//! WeChat there is no reply and stops its retries.
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Passive_user_reply_message.html>
//!
//! ```
//! use wemp_proto::{Incoming, Reply, ReplyContext};
//! let msg = Incoming::parse("<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName>\
//!     <CreateTime>1</CreateTime><MsgType>text</MsgType><Content>hi</Content><MsgId>7</MsgId></xml>")?;
//! let xml = Reply::text("hello ]]> world").to_xml(&ReplyContext::answering(&msg, 1_700_000_000))?;
//! assert!(xml.starts_with("<xml><ToUserName><![CDATA[o1]]></ToUserName><FromUserName><![CDATA[gh_1]]>"));
//! assert!(xml.contains("<CreateTime>1700000000</CreateTime>"));
//! # Ok::<(), wemp_proto::Error>(())
//! ```

use crate::ReferenceCode;
use crate::field::{Field, FieldError, Record, record, tag};
use crate::message::{Header, Incoming};
use crate::xml::{Document, Element, XmlError, cdata_leaf, cdata_leaf_lit, close_tag, open_tag, push_int};

/// Most articles in a news reply to an event or in other contexts.
pub const MAX_ARTICLES: usize = 8;
/// Most articles in a news reply that answers a user's message.
pub const MAX_ARTICLES_FOR_MESSAGE: usize = 1;

record! {
    /// One article of a news reply.
    #[derive(serde::Deserialize)]
    #[serde(default)]
    pub struct Article {
        /// Title.
        "Title" => title: String,
        /// Description.
        "Description" => description: String,
        /// Picture URL (large 360×200, small 200×200).
        "PicUrl" => pic_url: String,
        /// Where a tap leads.
        "Url" => url: String,
    }

    /// A music reply.
    #[derive(serde::Deserialize)]
    #[serde(default)]
    pub struct Music {
        /// Title.
        "Title" => title: Option<String>,
        /// Description.
        "Description" => description: Option<String>,
        /// Music URL.
        "MusicUrl" => music_url: Option<String>,
        /// High-quality music URL (preferred on Wi-Fi).
        "HQMusicUrl" => hq_music_url: Option<String>,
        /// Media id of the thumbnail.
        "ThumbMediaId" => thumb_media_id: String,
    }
}

impl Article {
    /// An article with all four fields.
    pub fn new(
        title: impl Into<String>,
        description: impl Into<String>,
        pic_url: impl Into<String>,
        url: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            description: description.into(),
            pic_url: pic_url.into(),
            url: url.into(),
        }
    }
}

impl Music {
    /// A music reply with a thumbnail and the given URLs.
    pub fn new(thumb_media_id: impl Into<String>) -> Self {
        Self { thumb_media_id: thumb_media_id.into(), ..Self::default() }
    }
}

/// A passive reply. In JSON (as `wemp parse`, the console and a gateway app's answer write it):
/// `{"type": "text", "content": "hi"}`, `{"type": "news", "articles": [...]}`,
/// `{"type": "none"}` and so on; it reads back to the same value.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reply {
    /// No reply: the body is `success`.
    #[default]
    None,
    /// A text bubble.
    Text {
        /// The text.
        content: String,
    },
    /// An image by media id.
    Image {
        /// Media id of an uploaded image.
        media_id: String,
    },
    /// A voice message by media id.
    Voice {
        /// Media id of an uploaded recording.
        media_id: String,
    },
    /// A video by media id.
    Video {
        /// Media id of an uploaded video.
        media_id: String,
        /// Title.
        title: Option<String>,
        /// Description.
        description: Option<String>,
    },
    /// Music.
    Music(Music),
    /// Articles (news): 1 when answering a user's message, at most 8 otherwise. In JSON:
    /// `{"type": "news", "articles": [...]}`.
    News(
        #[serde(serialize_with = "serialize_articles", deserialize_with = "deserialize_articles")]
        Vec<Article>,
    ),
    /// Hand the conversation to the customer-service system, optionally to one agent.
    TransferCustomerService {
        /// `TransInfo/KfAccount`: the agent (`account@wechat_id`).
        kf_account: Option<String>,
    },
}

impl Reply {
    /// A text reply.
    pub fn text(content: impl Into<String>) -> Self {
        Self::Text { content: content.into() }
    }
    /// An image reply.
    pub fn image(media_id: impl Into<String>) -> Self {
        Self::Image { media_id: media_id.into() }
    }
    /// A voice reply.
    pub fn voice(media_id: impl Into<String>) -> Self {
        Self::Voice { media_id: media_id.into() }
    }
    /// A video reply.
    pub fn video(media_id: impl Into<String>, title: Option<String>, description: Option<String>) -> Self {
        Self::Video { media_id: media_id.into(), title, description }
    }
    /// A music reply.
    pub fn music(music: Music) -> Self {
        Self::Music(music)
    }
    /// A news reply.
    pub fn news(articles: Vec<Article>) -> Self {
        Self::News(articles)
    }
    /// Transfer to the customer-service system.
    pub fn transfer_customer_service() -> Self {
        Self::TransferCustomerService { kf_account: None }
    }
    /// Transfer to one customer-service agent.
    pub fn transfer_to(kf_account: impl Into<String>) -> Self {
        Self::TransferCustomerService { kf_account: Some(kf_account.into()) }
    }

    /// Whether this is [`Reply::None`].
    pub fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }

    /// The `MsgType` this reply is sent with (`None` for no reply).
    pub fn msg_type(&self) -> Option<&'static str> {
        Some(match self {
            Self::None => return None,
            Self::Text { .. } => "text",
            Self::Image { .. } => "image",
            Self::Voice { .. } => "voice",
            Self::Video { .. } => "video",
            Self::Music(_) => "music",
            Self::News(_) => "news",
            Self::TransferCustomerService { .. } => "transfer_customer_service",
        })
    }

    /// Checks the reply against WeChat's rules for the given context.
    ///
    /// # Errors
    /// [`ReplyError`] for a news reply with no articles or too many, an empty media id or
    /// music thumbnail, or text that XML cannot carry.
    pub fn validate(&self, ctx: &ReplyContext) -> Result<(), ReplyError> {
        self.validate_answering(ctx.answering_message)
    }

    /// [`Reply::validate`] for a reply to a user's message (`true`) or to an event.
    fn validate_answering(&self, answering_message: bool) -> Result<(), ReplyError> {
        let required = match self {
            Self::Image { media_id } | Self::Voice { media_id } | Self::Video { media_id, .. } => {
                Some(("MediaId", media_id))
            }
            Self::Music(music) => Some(("ThumbMediaId", &music.thumb_media_id)),
            _ => None,
        };
        if let Some((field, value)) = required
            && value.trim().is_empty()
        {
            return Err(ReplyError::EmptyField { field });
        }
        if let Self::News(articles) = self {
            let limit = article_limit(answering_message);
            if articles.is_empty() || articles.len() > limit {
                return Err(ReplyError::ArticleCount { count: articles.len(), limit, answering_message });
            }
        }
        Ok(())
    }

    /// Renders the reply as the body WeChat expects (`success` for [`Reply::None`]).
    ///
    /// # Errors
    /// [`ReplyError`] as in [`Reply::validate`].
    pub fn to_xml(&self, ctx: &ReplyContext) -> Result<String, ReplyError> {
        self.xml_for(&ctx.to, &ctx.from, ctx.create_time, ctx.answering_message)
    }

    /// [`Reply::to_xml`] in the context [`ReplyContext::answering`] makes for `incoming` at
    /// `now`, without copying its two ids into one.
    ///
    /// # Errors
    /// [`ReplyError`] as in [`Reply::validate`].
    pub fn to_xml_answering(&self, incoming: &Incoming, now: i64) -> Result<String, ReplyError> {
        let header = incoming.header();
        self.xml_for(&header.from, &header.to, now, !incoming.is_event())
    }

    /// [`Reply::to_xml`] from the context's parts.
    fn xml_for(
        &self,
        to: &str,
        from: &str,
        create_time: i64,
        answering_message: bool,
    ) -> Result<String, ReplyError> {
        self.validate_answering(answering_message)?;
        let Some(msg_type) = self.msg_type() else { return Ok("success".to_owned()) };
        // Written straight into one string, byte for byte what `to_element(ctx)?.to_xml()`
        // writes (a proptest in tests/it/props.rs holds the two together).
        let mut out = String::with_capacity(self.xml_capacity(to.len() + from.len()));
        out.push_str("<xml>");
        // Whether XML carries every character of the texts written so far, each looked at as
        // it is written; `false` where a text goes in unlooked-at, so that `out` is looked at.
        let mut carried = cdata_leaf_lit!(&mut out, "ToUserName", to);
        carried &= cdata_leaf_lit!(&mut out, "FromUserName", from);
        out.push_str("<CreateTime>");
        push_int(&mut out, create_time);
        out.push_str("</CreateTime><MsgType><![CDATA[");
        // One of `msg_type`'s few words, each of ASCII letters and `_`.
        out.push_str(msg_type);
        out.push_str("]]></MsgType>");
        // The other kinds' texts go in unlooked-at.
        carried &= matches!(self, Self::Text { .. });
        match self {
            Self::None => {}
            Self::Text { content } => carried &= cdata_leaf_lit!(&mut out, "Content", content),
            Self::Image { media_id } => media_xml(&mut out, "Image", media_id),
            Self::Voice { media_id } => media_xml(&mut out, "Voice", media_id),
            Self::Video { media_id, title, description } => {
                open_tag(&mut out, "Video");
                cdata_leaf(&mut out, "MediaId", media_id);
                title.write_xml(&mut out, "Title");
                description.write_xml(&mut out, "Description");
                close_tag(&mut out, "Video");
            }
            Self::Music(music) => music.write_xml(&mut out, "Music"),
            Self::News(articles) => {
                open_tag(&mut out, "ArticleCount");
                push_int(&mut out, i64::try_from(articles.len()).unwrap_or(i64::MAX));
                close_tag(&mut out, "ArticleCount");
                open_tag(&mut out, "Articles");
                articles.write_xml(&mut out, "item");
                close_tag(&mut out, "Articles");
            }
            Self::TransferCustomerService { kf_account } => {
                if let Some(kf) = kf_account {
                    open_tag(&mut out, "TransInfo");
                    cdata_leaf(&mut out, "KfAccount", kf);
                    close_tag(&mut out, "TransInfo");
                }
            }
        }
        out.push_str("</xml>");
        // Every text of the reply is in `out` (split CDATA and escapes add only ASCII), so
        // when `out` carries every character, so does each text, and the other way round
        // (the markup is ASCII). When it does not, the tree names the element that holds the
        // first character XML cannot carry.
        if !carried && !carries(&out) {
            let ctx =
                ReplyContext { to: to.to_owned(), from: from.to_owned(), create_time, answering_message };
            return self.to_element(&ctx).map(|el| el.map_or_else(|| "success".to_owned(), |el| el.to_xml()));
        }
        Ok(out)
    }

    /// Room for [`Reply::to_xml`]'s output: the texts and the markup around them.
    fn xml_capacity(&self, ids: usize) -> usize {
        let opt = |s: &Option<String>| s.as_deref().map_or(0, str::len);
        let texts = match self {
            Self::None => 0,
            Self::Text { content } => content.len(),
            Self::Image { media_id } | Self::Voice { media_id } => media_id.len() + 64,
            Self::Video { media_id, title, description } => {
                media_id.len() + opt(title) + opt(description) + 128
            }
            Self::Music(m) => {
                opt(&m.title)
                    + opt(&m.description)
                    + opt(&m.music_url)
                    + opt(&m.hq_music_url)
                    + m.thumb_media_id.len()
                    + 256
            }
            Self::News(articles) => {
                articles
                    .iter()
                    .map(|a| a.title.len() + a.description.len() + a.pic_url.len() + a.url.len() + 160)
                    .sum::<usize>()
                    + 64
            }
            Self::TransferCustomerService { kf_account } => opt(kf_account) + 64,
        };
        ids + texts + 192
    }

    /// The reply as an element tree (`None` for [`Reply::None`]).
    ///
    /// # Errors
    /// [`ReplyError`] as in [`Reply::validate`].
    pub fn to_element(&self, ctx: &ReplyContext) -> Result<Option<Element>, ReplyError> {
        self.validate(ctx)?;
        let Some(msg_type) = self.msg_type() else { return Ok(None) };
        let header = Header {
            to: ctx.to.clone(),
            from: ctx.from.clone(),
            create_time: ctx.create_time,
            agent_id: None,
        };
        let mut root = header.to_root(msg_type);
        match self {
            Self::None => {}
            Self::Text { content } => content.write(&mut root, "Content"),
            Self::Image { media_id } => {
                root.children.push(Element::new("Image").with(Element::cdata("MediaId", media_id.as_str())))
            }
            Self::Voice { media_id } => {
                root.children.push(Element::new("Voice").with(Element::cdata("MediaId", media_id.as_str())))
            }
            Self::Video { media_id, title, description } => {
                let mut video = Element::new("Video").with(Element::cdata("MediaId", media_id.as_str()));
                title.write(&mut video, "Title");
                description.write(&mut video, "Description");
                root.children.push(video);
            }
            Self::Music(music) => music.write(&mut root, "Music"),
            Self::News(articles) => {
                root.children.push(Element::bare("ArticleCount", articles.len().to_string()));
                let mut list = Element::new("Articles");
                articles.write(&mut list, "item");
                root.children.push(list);
            }
            Self::TransferCustomerService { kf_account } => {
                if let Some(kf) = kf_account {
                    root.children
                        .push(Element::new("TransInfo").with(Element::cdata("KfAccount", kf.as_str())));
                }
            }
        }
        check_chars(&root)?;
        Ok(Some(root))
    }
}

/// `<Image><MediaId>…</MediaId></Image>` and the like.
fn media_xml(out: &mut String, tag: &str, media_id: &str) {
    open_tag(out, tag);
    cdata_leaf(out, "MediaId", media_id);
    close_tag(out, tag);
}

/// Writes `text` as [`crate::xml::cdata_text`] does and tells whether XML carries every
/// character of it ([`carries`]). Nearly every text has no `>` (so no `]]>` to split), no C0
/// control and no `0xEF` byte (with which U+FFFE and U+FFFF begin): found so eight bytes at a
/// time, such a text is copied whole, where `cdata_text`'s `memchr` for `>` and `carries` of
/// the reply cost ~100 instructions a text; any other goes the long way.
pub(crate) fn cdata_text_carried(text: &str, out: &mut String) -> bool {
    if plain(text.as_bytes()) {
        out.push_str(text);
        return true;
    }
    crate::xml::cdata_text(text, out);
    carries(text)
}

/// Whether `bytes` has no `>`, no byte below 0x20 and no `0xEF` ([`cdata_text_carried`]).
fn plain(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Whether any byte of `x` is below 0x20, a `>` or 0xEF: each test exact for "any" (a
    // byte's borrow reaches the next byte only from a byte that is itself found).
    let found = |x: u64| {
        let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        (x.wrapping_sub(ONES * 0x20) & !x & HIGH)
            | zero(x ^ (ONES * u64::from(b'>')))
            | zero(x ^ (ONES * 0xEF))
            != 0
    };
    let word = |at: usize| {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(eight)
    };
    let n = bytes.len();
    if n < 8 {
        return !bytes.iter().any(|&b| b < 0x20 || b == b'>' || b == 0xEF);
    }
    // Whole words from the start, and the last eight bytes (overlapping the words before).
    (0..n / 8).all(|i| !found(word(i * 8))) && !found(word(n - 8))
}

/// Whether XML can carry every character of `text` ([`is_xml_char`]), by bytes: the only
/// characters it cannot are the C0 controls other than tab, newline and return, and U+FFFE
/// and U+FFFF (UTF-8 `EF BF BE`, `EF BF BF`); a `str` holds no surrogates.
fn carries(text: &str) -> bool {
    let bytes = text.as_bytes();
    let control = |b: &u8| *b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r');
    // Eight bytes at a time: whether any is below 0x20 is one subtraction and two masks
    // (exact for "any"); only then are that word's bytes looked at one by one.
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(word);
        let x = u64::from_le_bytes(eight);
        if x.wrapping_sub(0x2020_2020_2020_2020) & !x & 0x8080_8080_8080_8080 != 0 && word.iter().any(control)
        {
            return false;
        }
    }
    if words.remainder().iter().any(control) {
        return false;
    }
    let mut from = 0;
    while let Some(i) = memchr::memchr(0xEF, &bytes[from..]) {
        let at = from + i;
        if bytes.get(at + 1) == Some(&0xBF) && matches!(bytes.get(at + 2), Some(0xBE | 0xBF)) {
            return false;
        }
        from = at + 1;
    }
    true
}

/// A tagged enum cannot serialize a bare list; the articles go under `articles`.
#[allow(clippy::ptr_arg)] // serde hands the field over as it is declared
fn serialize_articles<S: serde::Serializer>(articles: &Vec<Article>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap as _;
    let mut map = s.serialize_map(Some(1))?;
    map.serialize_entry("articles", articles)?;
    map.end()
}

fn deserialize_articles<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Article>, D::Error> {
    #[derive(serde::Deserialize)]
    struct News {
        articles: Vec<Article>,
    }
    <News as serde::Deserialize>::deserialize(d).map(|n| n.articles)
}

fn check_chars(el: &Element) -> Result<(), ReplyError> {
    // Printable ASCII (and tab, newline, return) is all XML characters: a byte scan decides
    // most replies without decoding a char at a time (this runs for every reply).
    let plain = el.text.bytes().all(|b| matches!(b, b'\t' | b'\n' | b'\r' | 0x20..=0x7e));
    if !plain && let Some(ch) = el.text.chars().find(|&c| !is_xml_char(c)) {
        return Err(ReplyError::InvalidChar { field: el.name.clone().into_owned(), ch });
    }
    el.children.iter().try_for_each(check_chars)
}

/// Whether XML 1.0 can carry the character at all (in text or CDATA).
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Who the reply goes to, from whom, when, and what it answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyContext {
    /// `ToUserName` of the reply: the user's OpenID.
    pub to: String,
    /// `FromUserName` of the reply: the account's original id.
    pub from: String,
    /// `CreateTime` of the reply, in seconds.
    pub create_time: i64,
    /// Whether the reply answers a user's message (not an event): limits news to one article.
    pub answering_message: bool,
}

impl ReplyContext {
    /// The context for answering `incoming` at `now` (seconds): direction swapped.
    pub fn answering(incoming: &Incoming, now: i64) -> Self {
        let header = incoming.header();
        Self {
            to: header.from.clone(),
            from: header.to.clone(),
            create_time: now,
            answering_message: !incoming.is_event(),
        }
    }

    /// How many articles a news reply may hold here.
    pub fn article_limit(&self) -> usize {
        article_limit(self.answering_message)
    }
}

/// How many articles a news reply may hold when answering a user's message (`true`) or an
/// event.
const fn article_limit(answering_message: bool) -> usize {
    if answering_message { MAX_ARTICLES_FOR_MESSAGE } else { MAX_ARTICLES }
}

/// A reply that WeChat would refuse (`-40011`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// A news reply with no articles or more than allowed.
    #[error(
        "news reply has {count} articles; {limit} allowed when answering {}",
        if *answering_message { "a user's message" } else { "an event" }
    )]
    ArticleCount {
        /// Articles in the reply.
        count: usize,
        /// Articles allowed.
        limit: usize,
        /// Whether the reply answers a message (limit 1) rather than an event (limit 8).
        answering_message: bool,
    },
    /// A field WeChat requires is empty (a media id, a music thumbnail).
    #[error("<{field}> must not be empty")]
    EmptyField {
        /// The element.
        field: &'static str,
    },
    /// A character XML cannot carry (a control character).
    #[error("<{field}> contains U+{:04X}, which XML cannot carry", *ch as u32)]
    InvalidChar {
        /// The element holding it.
        field: String,
        /// The character.
        ch: char,
    },
}

impl ReplyError {
    /// Always [`ReferenceCode::GenReturnXml`].
    pub const fn reference_code(&self) -> ReferenceCode {
        ReferenceCode::GenReturnXml
    }
}

/// A reply as read back from a server's answer (by simulators and tests).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ReplyMessage {
    /// Direction and time (`None` for `success` or an empty body).
    pub header: Option<Header>,
    /// The reply.
    pub reply: Reply,
}

/// A server's answer that is not a valid passive reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyParseError {
    /// Not well-formed XML.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// A field is missing or malformed.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// `MsgType` is not a reply type.
    #[error("MsgType {0:?} is not a passive reply type")]
    MsgType(String),
    /// `ArticleCount` disagrees with the articles present.
    #[error("ArticleCount says {declared} but {actual} articles follow")]
    ArticleCount {
        /// The declared count.
        declared: usize,
        /// The articles present.
        actual: usize,
    },
}

impl ReplyMessage {
    /// Reads a server's (decrypted) answer; `success` and an empty body mean no reply.
    ///
    /// # Errors
    /// [`ReplyParseError`] when the answer is not a valid passive reply.
    pub fn parse(body: &str) -> Result<Self, ReplyParseError> {
        let trimmed = body.trim();
        if trimmed.is_empty() || trimmed == "success" {
            return Ok(Self { header: None, reply: Reply::None });
        }
        let doc = Document::parse(body)?;
        let root = &doc.root;
        let header = Header::read(root)?;
        let msg_type = String::read(root, tag!("MsgType"))?;
        let media = |tag: &'static str| -> Result<String, FieldError> {
            let el = root.child(tag).ok_or_else(|| FieldError::missing(tag))?;
            String::read(el, tag!("MediaId"))
        };
        let reply = match msg_type.as_str() {
            "text" => Reply::Text { content: String::read(root, tag!("Content"))? },
            "image" => Reply::Image { media_id: media("Image")? },
            "voice" => Reply::Voice { media_id: media("Voice")? },
            "video" => {
                let video = root.child("Video").ok_or_else(|| FieldError::missing("Video"))?;
                Reply::Video {
                    media_id: String::read(video, tag!("MediaId"))?,
                    title: Option::<String>::read(video, tag!("Title"))?,
                    description: Option::<String>::read(video, tag!("Description"))?,
                }
            }
            "music" => Reply::Music(Music::read(root, tag!("Music"))?),
            "news" => {
                let declared = u64::read(root, tag!("ArticleCount"))?;
                let list = root.child("Articles").ok_or_else(|| FieldError::missing("Articles"))?;
                let articles =
                    list.children_named("item").map(Article::from_element).collect::<Result<Vec<_>, _>>()?;
                let declared = usize::try_from(declared).unwrap_or(usize::MAX);
                if declared != articles.len() {
                    return Err(ReplyParseError::ArticleCount { declared, actual: articles.len() });
                }
                Reply::News(articles)
            }
            "transfer_customer_service" => Reply::TransferCustomerService {
                kf_account: match root.child("TransInfo") {
                    Some(info) => Option::<String>::read(info, tag!("KfAccount"))?,
                    None => None,
                },
            },
            other => return Err(ReplyParseError::MsgType(other.to_owned())),
        };
        Ok(Self { header: Some(header), reply })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(answering_message: bool) -> ReplyContext {
        ReplyContext { to: "o1".into(), from: "gh_1".into(), create_time: 1_700_000_000, answering_message }
    }

    #[test]
    fn a_reply_answering_a_message_is_the_reply_in_its_context() {
        let article = Article::new("t", "d", "p", "u");
        let message = Incoming::parse(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>\
             <MsgType>text</MsgType><Content>hi</Content><MsgId>7</MsgId></xml>",
        )
        .unwrap();
        let event = Incoming::parse(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>\
             <MsgType>event</MsgType><Event>subscribe</Event></xml>",
        )
        .unwrap();
        let replies = [
            Reply::None,
            Reply::text("x"),
            Reply::text("a\u{1}b"),
            Reply::image("m"),
            Reply::image(" "),
            Reply::video("m", Some("t".into()), None),
            Reply::music(Music::new("thumb")),
            Reply::news(vec![article.clone()]),
            Reply::news(vec![article; 2]),
            Reply::news(vec![]),
            Reply::transfer_to("kf@x"),
        ];
        for incoming in [&message, &event] {
            let ctx = ReplyContext::answering(incoming, 1_700_000_000);
            for reply in &replies {
                assert_eq!(reply.to_xml_answering(incoming, 1_700_000_000), reply.to_xml(&ctx), "{reply:?}");
            }
        }
        // Two articles answer an event, not a message.
        let two = &replies[8];
        assert!(two.to_xml_answering(&event, 1).is_ok() && two.to_xml_answering(&message, 1).is_err());
        assert!(
            Reply::text("x").to_xml_answering(&message, 1).unwrap().contains("<ToUserName><![CDATA[o1]]>")
        );
    }

    #[test]
    fn every_reply_serializes_to_json_with_its_type() {
        let article = Article::new("t", "d", "p", "u");
        let cases = [
            (Reply::None, "none"),
            (Reply::text("x"), "text"),
            (Reply::image("m"), "image"),
            (Reply::voice("m"), "voice"),
            (Reply::video("m", None, None), "video"),
            (Reply::music(Music::new("thumb")), "music"),
            (Reply::news(vec![article]), "news"),
            (Reply::transfer_to("kf@x"), "transfer_customer_service"),
        ];
        for (reply, ty) in cases {
            let json = serde_json::to_value(&reply).unwrap_or_else(|e| panic!("{reply:?}: {e}"));
            assert_eq!(json["type"], ty, "{json}");
            let back: Reply = serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{json}: {e}"));
            assert_eq!(back, reply, "{json} reads back to the same reply");
        }
        // What an app writes by hand: optional fields may be left out; unknown types are errors.
        let video: Reply = serde_json::from_str(r#"{"type": "video", "media_id": "m"}"#).unwrap();
        assert_eq!(video, Reply::video("m", None, None));
        let news: Reply =
            serde_json::from_str(r#"{"type": "news", "articles": [{"title": "T", "url": "u"}]}"#).unwrap();
        assert_eq!(news, Reply::news(vec![Article::new("T", "", "", "u")]));
        assert!(serde_json::from_str::<Reply>(r#"{"type": "sticker"}"#).is_err());
        assert!(serde_json::from_str::<Reply>(r#"{"type": "text"}"#).is_err());
        let news = serde_json::to_value(Reply::news(vec![Article::new("T", "", "", "u")])).unwrap();
        assert_eq!(
            news,
            serde_json::json!({"type": "news", "articles": [{"title": "T", "description": "", "pic_url": "", "url": "u"}]})
        );
        let music = serde_json::to_value(Reply::music(Music::new("thumb"))).unwrap();
        assert_eq!(music["thumb_media_id"], "thumb");
    }

    #[test]
    fn none_is_success() {
        assert_eq!(Reply::None.to_xml(&ctx(true)).unwrap(), "success");
        assert_eq!(ReplyMessage::parse("success").unwrap().reply, Reply::None);
        assert_eq!(ReplyMessage::parse("").unwrap().reply, Reply::None);
    }

    #[test]
    fn news_limits_depend_on_what_is_answered() {
        let one = Article::new("t", "d", "p", "u");
        let two = Reply::news(vec![one.clone(), one.clone()]);
        let err = two.to_xml(&ctx(true)).unwrap_err();
        assert_eq!(err, ReplyError::ArticleCount { count: 2, limit: 1, answering_message: true });
        assert!(err.to_string().contains("a user's message"));
        assert!(two.to_xml(&ctx(false)).is_ok());
        let nine = Reply::news(vec![one.clone(); 9]);
        assert!(matches!(nine.to_xml(&ctx(false)), Err(ReplyError::ArticleCount { count: 9, limit: 8, .. })));
        assert!(matches!(
            Reply::news(vec![]).to_xml(&ctx(false)),
            Err(ReplyError::ArticleCount { count: 0, .. })
        ));
        assert_eq!(err.reference_code().code(), -40011);
    }

    #[test]
    fn empty_media_ids_are_refused() {
        assert_eq!(
            Reply::image("").to_xml(&ctx(true)).unwrap_err(),
            ReplyError::EmptyField { field: "MediaId" }
        );
        assert_eq!(
            Reply::voice(" ").to_xml(&ctx(true)).unwrap_err(),
            ReplyError::EmptyField { field: "MediaId" }
        );
        let err = Reply::music(Music::default()).to_xml(&ctx(true)).unwrap_err();
        assert_eq!(err, ReplyError::EmptyField { field: "ThumbMediaId" });
    }

    proptest::proptest! {
        #[test]
        fn carries_is_every_char_an_xml_char(text in proptest::prelude::any::<String>()) {
            proptest::prop_assert_eq!(carries(&text), text.chars().all(is_xml_char));
        }
    }

    #[test]
    fn carries_by_bytes() {
        for text in ["", "a\tb\r\n", "活动，欢迎！", "\u{FFFD}\u{EFFF}", "\u{7F}\u{85}"] {
            assert!(carries(text), "{text:?}");
        }
        for text in ["\u{0}", "a\u{1F}", "x\u{FFFE}", "\u{FFFF}y", "，\u{FFFE}"] {
            assert!(!carries(text), "{text:?}");
        }
        // At every place of a word and of the tail, next to bytes just above and below 0x20.
        for at in 0..21 {
            for (byte, carried) in
                [('\u{1}', false), ('\u{1F}', false), ('\t', true), ('\r', true), (' ', true)]
            {
                let mut text: Vec<char> = "!~ \u{7F}!~ \u{7F}!~ \u{7F}!~ \u{7F}!~ \u{7F}!".chars().collect();
                text[at] = byte;
                let text: String = text.into_iter().collect();
                assert_eq!(carries(&text), carried, "{text:?}");
            }
        }
    }

    /// What [`plain`] finds, a byte at a time.
    fn plain_by_bytes(bytes: &[u8]) -> bool {
        !bytes.iter().any(|&b| b < 0x20 || b == b'>' || b == 0xEF)
    }

    #[test]
    fn plain_finds_every_byte_everywhere() {
        // Each byte at each place of texts of 0 to 24 bytes, among bytes next to the ones
        // found (0x1F/0x20, `=`/`?`, 0xEE/0xF0) and the 0xFF that borrows reach.
        for len in 1..=24 {
            for at in 0..len {
                for filler in [b' ', b'=', b'?', 0xEE, 0xF0, 0xFF, b'a'] {
                    for b in 0..=255u8 {
                        let mut bytes = vec![filler; len];
                        bytes[at] = b;
                        assert_eq!(plain(&bytes), plain_by_bytes(&bytes), "{bytes:?}");
                    }
                }
            }
        }
        assert!(plain(b""));
    }

    proptest::proptest! {
        #[test]
        fn plain_is_plain_by_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            proptest::prop_assert_eq!(plain(&bytes), plain_by_bytes(&bytes));
        }

        #[test]
        fn cdata_text_carried_writes_cdata_text(text in "(]]>|>|\\]|\u{1}|\t|\u{FFFE}|\u{FFFF}|，|[a-z ]{0,9}|.){0,6}") {
            let (mut carried, mut plain) = ("<".to_owned(), "<".to_owned());
            let ok = cdata_text_carried(&text, &mut carried);
            crate::xml::cdata_text(&text, &mut plain);
            proptest::prop_assert_eq!(carried, plain);
            proptest::prop_assert_eq!(ok, carries(&text));
        }
    }

    #[test]
    fn control_characters_are_refused() {
        let err = Reply::text("a\u{1}b").to_xml(&ctx(true)).unwrap_err();
        assert_eq!(err, ReplyError::InvalidChar { field: "Content".into(), ch: '\u{1}' });
    }

    #[test]
    fn transfer_without_and_with_account() {
        let xml = Reply::transfer_customer_service().to_xml(&ctx(true)).unwrap();
        assert!(xml.ends_with("<MsgType><![CDATA[transfer_customer_service]]></MsgType></xml>"));
        let xml = Reply::transfer_to("test1@test").to_xml(&ctx(true)).unwrap();
        assert!(xml.contains("<TransInfo><KfAccount><![CDATA[test1@test]]></KfAccount></TransInfo>"));
    }
}
