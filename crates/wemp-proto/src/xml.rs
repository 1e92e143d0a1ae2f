//! The lossless raw layer: any well-formed XML document as a tree of [`Element`]s, plus the
//! exact text that arrived.
//!
//! Parsing is deliberately conservative: a `<!DOCTYPE …>` (and so any entity declaration) is
//! rejected, only the five predefined entities and character references are resolved, and
//! nesting is bounded by [`MAX_DEPTH`]. Nothing is ever fetched or expanded.
//!
//! ```
//! use wemp_proto::Document;
//! let doc = Document::parse("<xml><MsgType><![CDATA[text]]></MsgType><MsgId>1</MsgId></xml>")?;
//! assert_eq!(doc.root.text_of("MsgType"), Some("text"));
//! assert_eq!(doc.raw.as_str(), "<xml><MsgType><![CDATA[text]]></MsgType><MsgId>1</MsgId></xml>");
//! # Ok::<(), wemp_proto::XmlError>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use quick_xml::Reader;
use quick_xml::events::Event as XmlEvent;

use crate::ReferenceCode;

/// The deepest nesting accepted; WeChat's deepest documents need 5.
pub const MAX_DEPTH: usize = 32;

/// The XML is not acceptable (`-40002`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// The document is not well-formed.
    #[error("malformed XML at byte {position}: {reason}")]
    Syntax {
        /// Byte offset where the parser gave up.
        position: u64,
        /// What the parser said.
        reason: String,
    },
    /// A `<!DOCTYPE>` was present; DTDs and entity declarations are never accepted.
    #[error("DOCTYPE and entity declarations are not allowed")]
    Doctype,
    /// A reference to an entity other than the five predefined ones.
    #[error("undefined entity reference &{0};")]
    Entity(String),
    /// Elements nest deeper than [`MAX_DEPTH`].
    #[error("elements nest deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// No root element at all (an empty body, or only whitespace).
    #[error("no root element (empty body?)")]
    NoRoot,
    /// Content after the root element ends.
    #[error("content after the root element at byte {position}")]
    Trailing {
        /// Byte offset of the extra content.
        position: u64,
    },
    /// A JSON body (a Mini Program's JSON push) is not one JSON object.
    #[error("malformed JSON: {0}")]
    Json(String),
}

impl XmlError {
    /// Always [`ReferenceCode::ParseXml`].
    pub const fn reference_code(&self) -> ReferenceCode {
        ReferenceCode::ParseXml
    }
}

/// Exactly the text that arrived (after decryption), shared cheaply.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct RawXml(Arc<str>);

impl RawXml {
    /// Wraps a string.
    pub fn new(xml: impl Into<Arc<str>>) -> Self {
        Self(xml.into())
    }

    /// The XML text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The XML text, shared (no copy).
    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

impl fmt::Debug for RawXml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for RawXml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One element: its name, attributes, text and child elements, in document order.
///
/// Repeated children stay repeated (`children_named` yields each); a leaf's text is the
/// concatenation of its text and CDATA pieces, entities resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Element {
    /// Tag name as written (WeChat's own tag names are shared, not allocated per element).
    pub name: Cow<'static, str>,
    /// Attributes in order (WeChat sends none, but nothing is dropped).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attrs: Vec<(String, String)>,
    /// Text content; whitespace between child elements is not kept.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// Whether the text arrived (or should be written) as CDATA.
    #[serde(skip)]
    pub cdata: bool,
    /// Child elements in document order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Self>,
}

impl Element {
    /// An empty element.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Self { name: name.into(), ..Self::default() }
    }

    /// A leaf written as CDATA (how WeChat writes strings).
    pub fn cdata(name: impl Into<Cow<'static, str>>, text: impl Into<String>) -> Self {
        Self { name: name.into(), text: text.into(), cdata: true, ..Self::default() }
    }

    /// A leaf written as bare text (how WeChat writes numbers).
    pub fn bare(name: impl Into<Cow<'static, str>>, text: impl Into<String>) -> Self {
        Self { name: name.into(), text: text.into(), cdata: false, ..Self::default() }
    }

    /// The element as a Mini Program's JSON push would carry it (the inverse of
    /// [`Document::from_json`]): each child a member, bare integers as numbers, everything
    /// else as strings, nested elements as objects, repeated ones as arrays.
    ///
    /// ```
    /// use wemp_proto::Element;
    /// let el = Element::new("xml").with(Element::cdata("Content", "hi")).with(Element::bare("CreateTime", "1"));
    /// assert_eq!(el.to_json(), r#"{"Content":"hi","CreateTime":1}"#);
    /// ```
    pub fn to_json(&self) -> String {
        json_of(self).to_string()
    }

    /// Appends a child and returns `self`, for building.
    #[must_use]
    pub fn with(mut self, child: Self) -> Self {
        self.children.push(child);
        self
    }

    /// The first child with this name.
    pub fn child(&self, name: &str) -> Option<&Self> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child with this name, in order (one or many: WeChat repeats some elements).
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Self> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child with this name.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// Writes the element as XML: strings as CDATA (with `]]>` split safely), numbers bare.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(256);
        self.write_to(&mut out);
        out
    }

    /// Appends the element's XML to `out`.
    pub fn write_to(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            escape_into(v, out, true);
            out.push('"');
        }
        out.push('>');
        if !self.text.is_empty() {
            if self.cdata {
                cdata_into(&self.text, out);
            } else {
                escape_into(&self.text, out, false);
            }
        }
        for child in &self.children {
            child.write_to(out);
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

/// Writes `text` as one or more CDATA sections; a `]]>` inside is split across two sections
/// so it can never close the section early.
pub fn cdata_into(text: &str, out: &mut String) {
    out.push_str("<![CDATA[");
    cdata_text(text, out);
    out.push_str("]]>");
}

/// What [`cdata_into`] writes between its first `<![CDATA[` and its last `]]>`.
pub(crate) fn cdata_text(text: &str, out: &mut String) {
    let mut rest = text;
    while let Some(i) = cdata_end(rest) {
        // Keep "]]" in this section and start the next one with ">".
        out.push_str(&rest[..i + 2]);
        out.push_str("]]><![CDATA[");
        rest = &rest[i + 2..];
    }
    out.push_str(rest);
}

/// [`cdata_leaf`] for a tag named where it is written: the markup around the text as two
/// literals, three pushes where `cdata_leaf` makes eight (each one a capacity check and a
/// copy), so the same bytes for ~40 % fewer instructions. Evaluates to whether XML carries
/// every character of the text ([`crate::reply::cdata_text_carried`]).
macro_rules! cdata_leaf_lit {
    ($out:expr, $tag:literal, $text:expr) => {{
        let (out, text): (&mut String, &str) = ($out, $text);
        if text.is_empty() {
            out.push_str(concat!("<", $tag, "></", $tag, ">"));
            true
        } else {
            out.push_str(concat!("<", $tag, "><![CDATA["));
            let carried = $crate::reply::cdata_text_carried(text, out);
            out.push_str(concat!("]]></", $tag, ">"));
            carried
        }
    }};
}
pub(crate) use cdata_leaf_lit;

/// Where the first `]]>` in `text` starts: found by its `>`, which text seldom has (and
/// base64 never), rather than by a substring search set up anew for every call.
pub(crate) fn cdata_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'>', &bytes[from..]) {
        let gt = from + i;
        if gt >= 2 && &bytes[gt - 2..gt] == b"]]" {
            return Some(gt - 2);
        }
        from = gt + 1;
    }
    None
}

/// Appends what [`Element::write_to`] writes for `Element::cdata(name, text)`, without
/// building the element: the direct writers (`Field::write_xml`, `Reply::to_xml`) use it.
pub(crate) fn cdata_leaf(out: &mut String, name: &str, text: &str) {
    open_tag(out, name);
    if !text.is_empty() {
        cdata_into(text, out);
    }
    close_tag(out, name);
}

/// Appends `<name>`.
pub(crate) fn open_tag(out: &mut String, name: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
}

/// Appends `</name>`.
pub(crate) fn close_tag(out: &mut String, name: &str) {
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// Appends `n` in decimal, as its `Display` does (a bare number needs no escaping).
pub(crate) fn push_int(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    push_uint(out, n.unsigned_abs());
}

/// Appends `n` in decimal, as its `Display` does (by `itoa`: a `push` for each digit cost
/// ~27 instructions a digit, and a MsgId has 19).
pub(crate) fn push_uint(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

fn escape_into(text: &str, out: &mut String, attr: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            _ => out.push(c),
        }
    }
}

/// A parsed document: the root element and the exact text it came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Document {
    /// The root element (WeChat's is `<xml>`).
    pub root: Element,
    /// The text as it arrived.
    pub raw: RawXml,
}

impl Document {
    /// Parses any well-formed document.
    ///
    /// # Errors
    /// [`XmlError`] for malformed XML, a DOCTYPE, an unknown entity, nesting deeper than
    /// [`MAX_DEPTH`], an empty body, or content after the root element.
    pub fn parse(xml: &str) -> Result<Self, XmlError> {
        Ok(Self { root: parse_root(xml)?, raw: RawXml::new(xml) })
    }

    /// Reads a JSON object — a Mini Program's push in the JSON data format — as the
    /// document its XML form would be: each member becomes a child element of `<xml>`
    /// (strings as CDATA, numbers and booleans as bare text, objects as nested elements, each
    /// item of an array as a repeated element), so the same typed messages read both formats.
    /// [`Document::raw`] keeps the JSON exactly as it arrived.
    ///
    /// ```
    /// use wemp_proto::Document;
    /// let doc = Document::from_json(r#"{"ToUserName":"gh_1","CreateTime":1482048670,"MsgType":"text","Content":"hi"}"#)?;
    /// assert_eq!(doc.root.text_of("Content"), Some("hi"));
    /// assert_eq!(doc.root.text_of("CreateTime"), Some("1482048670"));
    /// # Ok::<(), wemp_proto::XmlError>(())
    /// ```
    ///
    /// # Errors
    /// [`XmlError::Json`] when the text is not one JSON object; [`XmlError::TooDeep`] when it
    /// nests deeper than [`MAX_DEPTH`].
    pub fn from_json(json: &str) -> Result<Self, XmlError> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| XmlError::Json(e.to_string()))?;
        let serde_json::Value::Object(members) = value else {
            return Err(XmlError::Json("the body is not a JSON object".to_owned()));
        };
        let mut root = Element::new("xml");
        for (name, value) in members {
            json_into(&mut root, name, value, 1)?;
        }
        Ok(Self { root, raw: RawXml::new(json) })
    }

    /// Whether `body` looks like JSON rather than XML (its first non-blank character is `{`).
    pub fn looks_like_json(body: &str) -> bool {
        body.trim_start().starts_with('{')
    }
}

fn json_of(el: &Element) -> serde_json::Value {
    use serde_json::Value;
    if el.children.is_empty() {
        return match el.text.trim().parse::<i64>() {
            Ok(n) if !el.cdata => Value::from(n),
            _ => Value::from(el.text.as_str()),
        };
    }
    let mut members = serde_json::Map::new();
    for child in &el.children {
        let value = json_of(child);
        match members.get_mut(&*child.name) {
            Some(Value::Array(items)) => items.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
            None => {
                members.insert(child.name.clone().into_owned(), value);
            }
        }
    }
    Value::Object(members)
}

fn json_into(
    parent: &mut Element,
    name: String,
    value: serde_json::Value,
    depth: usize,
) -> Result<(), XmlError> {
    use serde_json::Value;
    if depth >= MAX_DEPTH {
        return Err(XmlError::TooDeep);
    }
    match value {
        Value::Null => parent.children.push(Element::new(name)),
        Value::Bool(b) => parent.children.push(Element::bare(name, b.to_string())),
        Value::Number(n) => parent.children.push(Element::bare(name, n.to_string())),
        Value::String(s) => parent.children.push(Element::cdata(name, s)),
        Value::Array(items) => {
            for item in items {
                json_into(parent, name.clone(), item, depth + 1)?;
            }
        }
        Value::Object(members) => {
            let mut el = Element::new(name);
            for (k, v) in members {
                json_into(&mut el, k, v, depth + 1)?;
            }
            parent.children.push(el);
        }
    }
    Ok(())
}

fn syntax(reader: &Reader<&[u8]>, reason: impl fmt::Display) -> XmlError {
    XmlError::Syntax { position: reader.buffer_position(), reason: reason.to_string() }
}

/// What the one parsing loop ([`walk`]) reports, in document order: a [`Document`]'s tree is
/// one receiver, the envelope's outline (`crate::envelope::Outline`) another, so both
/// accept and refuse exactly the same documents.
pub(crate) trait Sink<'x> {
    /// An element opens; `depth` is 0 for the root. `empty` for `<a/>`, which gets no
    /// [`Sink::close`].
    fn open(&mut self, depth: usize, name: &'x str, attrs: Attrs, empty: bool);
    /// A text, CDATA or resolved reference piece of the innermost open element.
    fn text(&mut self, piece: Cow<'x, str>, cdata: bool);
    /// The innermost open element closes.
    fn close(&mut self);
}

/// The text pieces of one open element: the first one inline, so an element with one text
/// or CDATA section (all of WeChat's) costs no vector, each borrowed from the input until
/// the element closes.
#[derive(Default)]
pub(crate) struct Pieces<'x> {
    first: Option<(Cow<'x, str>, bool)>,
    more: Vec<(Cow<'x, str>, bool)>,
}

fn only_ws(s: &str) -> bool {
    s.chars().all(char::is_whitespace)
}

impl<'x> Pieces<'x> {
    /// Adds a piece; adjacent text pieces (not CDATA) join. `has_children`: whether the
    /// element already has a child element.
    pub(crate) fn push(&mut self, piece: Cow<'x, str>, cdata: bool, has_children: bool) {
        let last = match self.more.last_mut() {
            Some(last) => Some(last),
            None => self.first.as_mut(),
        };
        match last {
            None => self.first = Some((piece, cdata)),
            Some((last, false)) if !cdata => {
                // Whitespace between children: [`Pieces::finish`] drops it whole, so there is
                // no need to join it.
                if !(has_children && only_ws(last) && only_ws(&piece)) {
                    last.to_mut().push_str(&piece);
                }
            }
            Some(_) => self.more.push((piece, cdata)),
        }
    }

    /// The element's text and whether it came as CDATA. Around children or CDATA sections,
    /// whitespace-only text is layout, not content.
    pub(crate) fn finish(self, has_children: bool) -> (Cow<'x, str>, bool) {
        let saw_cdata = self.first.iter().chain(&self.more).any(|(_, c)| *c);
        let drop_layout = has_children || saw_cdata;
        let mut kept =
            self.first.into_iter().chain(self.more).filter(|(s, c)| !drop_layout || *c || !only_ws(s));
        let text = match kept.next() {
            None => Cow::Borrowed(""),
            Some((one, _)) => match kept.next() {
                None => one,
                Some((two, _)) => {
                    let mut all = one.into_owned();
                    all.push_str(&two);
                    kept.for_each(|(s, _)| all.push_str(&s));
                    Cow::Owned(all)
                }
            },
        };
        (text, saw_cdata)
    }
}

/// `bytes` as the `&str` of `xml` it is a slice of, without checking UTF-8 again; `None`
/// when it is not a slice of `xml` (a piece the reader had to copy).
fn slice_of<'x>(xml: &'x str, bytes: &[u8]) -> Option<&'x str> {
    let start = (bytes.as_ptr() as usize).checked_sub(xml.as_ptr() as usize)?;
    xml.get(start..start.checked_add(bytes.len())?)
}

/// Parses `xml`, reporting to `sink`: the one loop that decides what XML is acceptable (no
/// DOCTYPE, predefined entities only, at most [`MAX_DEPTH`] levels, one root, nothing after
/// it).
pub(crate) fn walk<'x>(xml: &'x str, sink: &mut impl Sink<'x>) -> Result<(), XmlError> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    reader.config_mut().expand_empty_elements = false;
    let mut depth = 0usize;
    let mut done = false;
    loop {
        let event = reader.read_event().map_err(|e| syntax(&reader, e))?;
        if done {
            match event {
                XmlEvent::Eof => return Ok(()),
                XmlEvent::Comment(_) | XmlEvent::PI(_) => continue,
                XmlEvent::Text(ref t) if t.iter().all(u8::is_ascii_whitespace) => continue,
                _ => return Err(XmlError::Trailing { position: reader.buffer_position() }),
            }
        }
        match event {
            XmlEvent::Start(_) | XmlEvent::Empty(_) if depth >= MAX_DEPTH => return Err(XmlError::TooDeep),
            XmlEvent::Start(start) => {
                let (name, attrs) = open(xml, &reader, &start)?;
                sink.open(depth, name, attrs, false);
                depth += 1;
            }
            XmlEvent::Empty(start) => {
                let (name, attrs) = open(xml, &reader, &start)?;
                sink.open(depth, name, attrs, true);
                done = depth == 0;
            }
            XmlEvent::End(_) => {
                depth = depth.checked_sub(1).ok_or_else(|| syntax(&reader, "unexpected end tag"))?;
                sink.close();
                done = depth == 0;
            }
            XmlEvent::Text(text) => {
                let piece = match slice_of(xml, &text) {
                    Some(s) => Cow::Borrowed(s),
                    None => text.decode().map_err(|e| syntax(&reader, e))?,
                };
                if depth > 0 {
                    sink.text(piece, false);
                } else if !only_ws(&piece) {
                    return Err(syntax(&reader, "text outside the root element"));
                }
            }
            XmlEvent::CData(data) => {
                let piece = match slice_of(xml, &data) {
                    Some(s) => Cow::Borrowed(s),
                    None => data.decode().map_err(|e| syntax(&reader, e))?,
                };
                if depth == 0 {
                    return Err(syntax(&reader, "CDATA outside the root element"));
                }
                sink.text(piece, true);
            }
            XmlEvent::GeneralRef(reference) => {
                let resolved: Option<Cow<'x, str>> = if reference.is_char_ref() {
                    reference
                        .resolve_char_ref()
                        .map_err(|e| syntax(&reader, e))?
                        .map(|c| Cow::Owned(String::from(c)))
                } else {
                    let name = reference.decode().map_err(|e| syntax(&reader, e))?;
                    match quick_xml::escape::resolve_xml_entity(&name) {
                        Some(s) => Some(Cow::Borrowed(s)),
                        None => return Err(XmlError::Entity(name.into_owned())),
                    }
                };
                let resolved = resolved.ok_or_else(|| syntax(&reader, "invalid character reference"))?;
                if depth == 0 {
                    return Err(syntax(&reader, "reference outside the root element"));
                }
                sink.text(resolved, false);
            }
            XmlEvent::DocType(_) => return Err(XmlError::Doctype),
            XmlEvent::Decl(_) | XmlEvent::PI(_) | XmlEvent::Comment(_) => {}
            XmlEvent::Eof => {
                if depth == 0 {
                    return Err(XmlError::NoRoot);
                }
                return Err(syntax(&reader, "unexpected end of document (unclosed element)"));
            }
        }
    }
}

/// Attributes in order, names and values.
pub(crate) type Attrs = Vec<(String, String)>;

/// An element's name and attributes.
fn open<'x>(
    xml: &'x str,
    reader: &Reader<&[u8]>,
    start: &quick_xml::events::BytesStart<'_>,
) -> Result<(&'x str, Attrs), XmlError> {
    let raw = start.name();
    let name = match slice_of(xml, raw.as_ref()) {
        Some(name) => name,
        // Not a slice of `xml` (the reader copied it): a name made of the input's
        // characters, so never reached with `Reader::from_str`; refused rather than leaked.
        None => return Err(syntax(reader, "element name not in the input")),
    };
    let mut attrs = Vec::new();
    let mut attributes = start.attributes();
    attributes.with_checks(false);
    let mut attributes = attributes.peekable();
    if attributes.peek().is_none() {
        return Ok((name, attrs));
    }
    // quick-xml's own duplicate check compares each attribute with every earlier one
    // (quadratic: a 64 KiB `<xml a0="" a1="" …/>` costs a fifth of a second); a set keeps it
    // linear. WeChat never sends attributes, but nothing that arrives is dropped.
    let mut seen = std::collections::HashSet::new();
    for attr in attributes {
        let attr = attr.map_err(|e| syntax(reader, e))?;
        let key = std::str::from_utf8(attr.key.as_ref()).map_err(|e| syntax(reader, e))?.to_owned();
        if !seen.insert(key.clone()) {
            return Err(syntax(reader, format!("duplicate attribute {key:?}")));
        }
        let value = attr.unescape_value().map_err(|e| match e {
            quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(_, name)) => {
                XmlError::Entity(name)
            }
            other => syntax(reader, other),
        })?;
        attrs.push((key, value.into_owned()));
    }
    Ok((name, attrs))
}

/// The tree of a [`Document`].
#[derive(Default)]
struct Tree<'x> {
    stack: Vec<(Element, Pieces<'x>)>,
    root: Option<Element>,
}

impl Tree<'_> {
    fn attach(&mut self, element: Element) {
        match self.stack.last_mut() {
            Some((parent, _)) => parent.children.push(element),
            None => self.root = Some(element),
        }
    }
}

impl<'x> Sink<'x> for Tree<'x> {
    fn open(&mut self, _depth: usize, name: &'x str, attrs: Attrs, empty: bool) {
        let element = Element { name: element_name(name), attrs, ..Element::default() };
        if empty {
            self.attach(element);
        } else {
            self.stack.push((element, Pieces::default()));
        }
    }

    fn text(&mut self, piece: Cow<'x, str>, cdata: bool) {
        if let Some((element, pieces)) = self.stack.last_mut() {
            pieces.push(piece, cdata, !element.children.is_empty());
        }
    }

    fn close(&mut self) {
        if let Some((mut element, pieces)) = self.stack.pop() {
            let (text, cdata) = pieces.finish(!element.children.is_empty());
            element.text = text.into_owned();
            element.cdata = cdata;
            self.attach(element);
        }
    }
}

/// An element's name: WeChat's own tag names are shared, not allocated again for every
/// message. A `match` on the literals, which the compiler compares inline by length and
/// then by words (a search of a list called `memcmp` for every name of the same length
/// before the one found: ~100 instructions a name).
fn element_name(name: &str) -> Cow<'static, str> {
    Cow::Borrowed(match name {
        "xml" => "xml",
        "ToUserName" => "ToUserName",
        "FromUserName" => "FromUserName",
        "CreateTime" => "CreateTime",
        "MsgType" => "MsgType",
        "Content" => "Content",
        "MsgId" => "MsgId",
        "MsgDataId" => "MsgDataId",
        "Idx" => "Idx",
        "Encrypt" => "Encrypt",
        "AgentID" => "AgentID",
        "Event" => "Event",
        "EventKey" => "EventKey",
        "Ticket" => "Ticket",
        "PicUrl" => "PicUrl",
        "MediaId" => "MediaId",
        "Format" => "Format",
        "Recognition" => "Recognition",
        "ThumbMediaId" => "ThumbMediaId",
        "Location_X" => "Location_X",
        "Location_Y" => "Location_Y",
        "Scale" => "Scale",
        "Label" => "Label",
        "Title" => "Title",
        "Description" => "Description",
        "Url" => "Url",
        "Latitude" => "Latitude",
        "Longitude" => "Longitude",
        "Precision" => "Precision",
        "MsgSignature" => "MsgSignature",
        "TimeStamp" => "TimeStamp",
        "Nonce" => "Nonce",
        _ => return Cow::Owned(name.to_owned()),
    })
}

fn parse_root(xml: &str) -> Result<Element, XmlError> {
    if let Some(root) = flat_root(xml) {
        return Ok(root);
    }
    let mut tree = Tree::default();
    walk(xml, &mut tree)?;
    tree.root.ok_or(XmlError::NoRoot)
}

/// The tree of a [`flat`] document, as [`walk`] would build it.
fn flat_root(xml: &str) -> Option<Element> {
    let mut children = Vec::with_capacity(8);
    let name = flat(xml, |name, text, cdata| {
        children.push(Element {
            name: element_name(name),
            text: text.to_owned(),
            cdata,
            ..Element::default()
        });
    })?;
    Some(Element { name: element_name(name), children, ..Element::default() })
}

/// XML whitespace.
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).copied().is_some_and(is_ws) {
        at += 1;
    }
    at
}

/// Whether a byte may be in a [`flat`] name after its first: an ASCII letter, digit or `_`
/// (by table: the two range tests cost ~14 instructions a byte, and a message's names have
/// ~55 bytes).
const NAME_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        // `b` is below 256.
        table[b] = (b as u8).is_ascii_alphanumeric() || b == b'_' as usize;
        b += 1;
    }
    table
};

/// How many bytes `bytes` starts with that may be in a [`flat`] name after its first
/// ([`NAME_BYTE`]); all of them when none is another. Eight at a step, each looked up in the
/// table with no check of the end between them (the plain loop cost seven instructions a
/// byte, four of them its end test and counter), then the last few one at a time.
#[inline(always)]
fn name_len(bytes: &[u8]) -> usize {
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let word: &[u8; 8] = word.try_into().unwrap_or(&[0; 8]);
        if let Some(i) = word.iter().position(|&b| !NAME_BYTE[usize::from(b)]) {
            return at + i;
        }
        at += 8;
    }
    let rest = words.remainder();
    at + rest.iter().position(|&b| !NAME_BYTE[usize::from(b)]).unwrap_or(rest.len())
}

/// A start tag `<name>` at `at` with a plain ASCII name (a letter or `_`, then letters,
/// digits or `_`) and nothing else in it: the name and where the tag ends.
fn flat_start(xml: &str, at: usize) -> Option<(&str, usize)> {
    let bytes = xml.as_bytes();
    if bytes.get(at) != Some(&b'<')
        || !bytes.get(at + 1).is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
    {
        return None;
    }
    let end = at + 1 + name_len(&bytes[at + 1..]);
    (bytes.get(end) == Some(&b'>')).then(|| (&xml[at + 1..end], end + 1))
}

/// Whether `</name>` is at `at`.
fn flat_end(bytes: &[u8], at: usize, name: &str) -> bool {
    let close = at + 2 + name.len();
    bytes.get(at..at + 2) == Some(b"</")
        && bytes.get(at + 2..close).is_some_and(|end| same_name(end, name.as_bytes()))
        && bytes.get(close) == Some(&b'>')
}

/// `a == b` for two names of the same length: one at 4 to 16 bytes (WeChat's) compared as two
/// overlapping words each, inline, where `==` calls `memcmp` (~25 instructions a leaf).
fn same_name(a: &[u8], b: &[u8]) -> bool {
    fn word<const N: usize>(s: &[u8], at: usize) -> Option<[u8; N]> {
        s.get(at..at + N)?.try_into().ok()
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        8..=16 => word::<8>(a, 0) == word(b, 0) && word::<8>(a, n - 8) == word(b, n - 8),
        4..=7 => word::<4>(a, 0) == word(b, 0) && word::<4>(a, n - 4) == word(b, n - 4),
        _ => a == b,
    }
}

/// The shape nearly every WeChat document has, read without the general parser: a root
/// element holding one or more leaves, each with nothing in it but one CDATA section or
/// one piece of text free of `<`, `&` and `>`, with XML whitespace only around them, and
/// plain ASCII tag names without attributes. Calls `leaf(name, text, cdata)` for each leaf
/// in order and returns the root's name; `None` (perhaps after some calls) for anything
/// else, which [`walk`] then reads. Every document read here is well-formed, and `walk`
/// reports the same elements and text for it (a proptest holds the two together).
pub(crate) fn flat<'x>(xml: &'x str, mut leaf: impl FnMut(&'x str, &'x str, bool)) -> Option<&'x str> {
    let bytes = xml.as_bytes();
    let (root, mut at) = flat_start(xml, skip_ws(bytes, 0))?;
    let mut leaves = 0usize;
    loop {
        at = skip_ws(bytes, at);
        if bytes.get(at + 1) == Some(&b'/') {
            if leaves == 0 || !flat_end(bytes, at, root) {
                return None;
            }
            return (skip_ws(bytes, at + 3 + root.len()) == bytes.len()).then_some(root);
        }
        let (name, start) = flat_start(xml, at)?;
        let (text, cdata, end) = match xml.get(start..)?.strip_prefix("<![CDATA[") {
            Some(rest) => {
                let len = cdata_end(rest)?;
                (&rest[..len], true, start + 9 + len + 3)
            }
            None => {
                let len = memchr::memchr3(b'<', b'&', b'>', &bytes[start..])?;
                (&xml[start..start + len], false, start + len)
            }
        };
        if !flat_end(bytes, end, name) {
            return None;
        }
        leaf(name, text, cdata);
        leaves += 1;
        at = end + 3 + name.len();
    }
}

/// Where [`Leaves`] keep a name: one of [`SLOTS`], from the name's first, middle and last
/// bytes (a few instructions at run time, and worked out when the program is compiled for the
/// names the typed readers ask for). The multipliers were chosen so that no two names of a
/// message type (but `miniprogrampage`'s `Title` and `ThumbUrl`) or of the common events
/// (`subscribe`, `unsubscribe`, `CLICK`, `VIEW`, `view_miniprogram`, `SCAN`, `LOCATION`) share
/// a slot; some of the rarer events' do, which costs a search, not a wrong answer.
pub(crate) const fn slot_of(name: &str) -> usize {
    let b = name.as_bytes();
    let len = b.len();
    if len == 0 {
        return 0;
    }
    (b[0] as usize * 8 + b[len - 1] as usize * 6 + b[len / 2] as usize * 13) % SLOTS
}

/// The slots of [`Leaves`].
const SLOTS: usize = 32;

/// The leaves [`Leaves`] keep outside their slots at most (two names sharing a slot); a
/// document with more is read as a tree.
const OVERFLOW: usize = 8;

/// The leaves of a [`flat`] document: what a message's fields are read from
/// ([`crate::field::Fields`]) without building its [`Document`], whose root would have
/// exactly these leaves.
///
/// Each name's first leaf is kept in the name's slot ([`slot_of`]): a free slot means no leaf
/// has the name. The first leaf of a name whose slot another name took first is kept, in
/// document order, among a few others, which are searched only when the slot holds another
/// name.
pub(crate) struct Leaves<'x> {
    /// Per slot, the first leaf (name and text) whose name has that slot.
    slots: [Option<(&'x str, &'x str)>; SLOTS],
    /// Leaves whose slot another name took, in document order.
    overflow: [Option<(&'x str, &'x str)>; OVERFLOW],
    /// How many of `overflow` are taken; more than [`OVERFLOW`] leaves there: no room.
    spilled: usize,
}

impl<'x> Leaves<'x> {
    /// No leaves yet.
    pub(crate) fn new() -> Self {
        Self { slots: [None; SLOTS], overflow: [None; OVERFLOW], spilled: 0 }
    }

    /// Reads the leaves of `xml` (into a fresh table); `false` when it is not [`flat`] or
    /// has more leaves outside their slots than there is room for.
    pub(crate) fn scan(&mut self, xml: &'x str) -> bool {
        flat(xml, |name, text, _| self.push(name, text)).is_some() && self.spilled <= OVERFLOW
    }

    /// Adds a leaf: to its slot when free, else (another name there first) to the overflow.
    #[inline(always)]
    fn push(&mut self, name: &'x str, text: &'x str) {
        match &mut self.slots[slot_of(name)] {
            free @ None => *free = Some((name, text)),
            Some((first, _)) if *first == name => {}
            Some(_) => self.spill(name, text),
        }
    }

    /// Keeps a leaf whose slot another name took.
    #[cold]
    fn spill(&mut self, name: &'x str, text: &'x str) {
        if let Some(free) = self.overflow.get_mut(self.spilled) {
            *free = Some((name, text));
        }
        self.spilled += 1;
    }

    /// The first leaf named `name` among those whose slot another name took.
    #[cold]
    fn search(&self, name: &str) -> Option<&'x str> {
        self.overflow.iter().flatten().find(|(n, _)| *n == name).map(|(_, text)| *text)
    }
}

impl crate::field::Fields for Leaves<'_> {
    /// Inlined, so that the name is compared with a constant (by words, no `memcmp`).
    #[inline(always)]
    fn text(&self, tag: crate::field::Tag) -> Option<&str> {
        let (name, text) = self.slots[tag.slot]?;
        if name == tag.name { Some(text) } else { self.search(tag.name) }
    }

    fn children(&self, tag: crate::field::Tag) -> Result<&[Element], crate::field::FieldError> {
        match self.text(tag) {
            None => Ok(&[]),
            Some(_) => Err(crate::field::FieldError {
                tag: tag.name,
                reason: "a leaf of a flat document, read from its tree instead".to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::any;

    use super::*;

    #[test]
    fn keeps_order_repetition_and_cdata() {
        let xml = "<xml>\n  <A><![CDATA[x]]></A>\n  <List><B>1</B></List>\n  <List><B>2</B></List>\n</xml>";
        let doc = Document::parse(xml).unwrap();
        assert_eq!(doc.root.children.len(), 3);
        assert!(doc.root.text.is_empty(), "indentation is not content");
        assert!(doc.root.child("A").unwrap().cdata);
        let bs: Vec<_> = doc.root.children_named("List").map(|l| l.text_of("B").unwrap()).collect();
        assert_eq!(bs, ["1", "2"]);
        assert_eq!(doc.raw.as_str(), xml);
    }

    #[test]
    fn resolves_predefined_and_char_refs_only() {
        let doc = Document::parse("<xml><C>a &amp; b &lt;&#x4E2D;&#25991;&gt;</C></xml>").unwrap();
        assert_eq!(doc.root.text_of("C"), Some("a & b <中文>"));
        assert_eq!(Document::parse("<xml><C>&xxe;</C></xml>").unwrap_err(), XmlError::Entity("xxe".into()));
    }

    #[test]
    fn rejects_doctype_and_entity_declarations() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><xml><C>&lol2;</C></xml>"#;
        assert_eq!(Document::parse(bomb).unwrap_err(), XmlError::Doctype);
        let xxe = r#"<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml>&xxe;</xml>"#;
        assert_eq!(Document::parse(xxe).unwrap_err(), XmlError::Doctype);
    }

    #[test]
    fn bounds_depth() {
        let deep = format!("{}{}", "<a>".repeat(MAX_DEPTH + 1), "</a>".repeat(MAX_DEPTH + 1));
        assert_eq!(Document::parse(&deep).unwrap_err(), XmlError::TooDeep);
        let ok = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(Document::parse(&ok).is_ok());
    }

    #[test]
    fn malformed_inputs_are_errors() {
        assert_eq!(Document::parse("").unwrap_err(), XmlError::NoRoot);
        assert_eq!(Document::parse("   ").unwrap_err(), XmlError::NoRoot);
        assert!(matches!(Document::parse("<xml><a></b></xml>"), Err(XmlError::Syntax { .. })));
        assert!(matches!(Document::parse("<xml><a>"), Err(XmlError::Syntax { .. })));
        assert!(matches!(Document::parse("<xml/><xml/>"), Err(XmlError::Trailing { .. })));
        assert!(matches!(Document::parse("hello"), Err(XmlError::Syntax { .. }) | Err(XmlError::NoRoot)));
    }

    #[test]
    fn cdata_split_survives_reparse() {
        for text in ["]]>", "a]]>b", "]]]]>>", "x]]>]]>y", "]]"] {
            let xml = Element::new("xml").with(Element::cdata("C", text)).to_xml();
            let doc = Document::parse(&xml).unwrap();
            assert_eq!(doc.root.text_of("C"), Some(text), "{xml}");
        }
    }

    /// The tree through the general parser only.
    fn walked(xml: &str) -> Result<Element, XmlError> {
        let mut tree = Tree::default();
        walk(xml, &mut tree)?;
        tree.root.ok_or(XmlError::NoRoot)
    }

    /// Whatever [`flat`] reads, the general parser reads to the same tree.
    fn flat_is_walked(xml: &str) {
        if let Some(root) = flat_root(xml) {
            assert_eq!(walked(xml).as_ref(), Ok(&root), "{xml:?}");
        }
        assert_eq!(Document::parse(xml).map(|d| d.root), walked(xml), "{xml:?}");
    }

    #[test]
    fn flat_documents() {
        let text = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName>\n <CreateTime>1</CreateTime><Content><![CDATA[a]]]></Content><E></E><F><![CDATA[]]></F><G> </G></xml>\n";
        let root = flat_root(text).unwrap();
        assert_eq!(root.children.len(), 6);
        assert_eq!(root.text_of("Content"), Some("a]"));
        for xml in [
            text,
            "<xml></xml>",
            "<xml/>",
            "<xml><a/></xml>",
            "<xml><a>x&amp;y</a></xml>",
            "<xml><a>x>y</a></xml>",
            "<xml><a> <![CDATA[x]]></a></xml>",
            "<xml><a><![CDATA[x]]> </a></xml>",
            "<xml><a><b>x</b></a></xml>",
            "<xml><a>x</b></xml>",
            "<xml><a>x</a></xml2>",
            "<xml><a>x</a ></xml>",
            "<xml ><a>x</a></xml>",
            "<xml><a x=\"1\">x</a></xml>",
            "<xml><a>x</a></xml><b/>",
            "<xml><a>x</a></xml>x",
            "<?xml version=\"1.0\"?><xml><a>x</a></xml>",
            "<xml><!-- c --><a>x</a></xml>",
            "<xml><a><![CDATA[x]]</a></xml>",
            "<xml><1>x</1></xml>",
            "<xml><a>\u{1}\r\n</a></xml>",
            "\u{c}<xml><a>x</a></xml>",
        ] {
            flat_is_walked(xml);
        }
    }

    /// [`name_len`] (eight bytes a step, then the rest) answers as the plain scan does: names
    /// of every length to 40 (past the first words and their ends), with each of the 256 byte
    /// values at every place.
    #[test]
    fn name_len_is_the_plain_scan() {
        let plain = |b: &[u8]| b.iter().position(|&c| !NAME_BYTE[usize::from(c)]).unwrap_or(b.len());
        let alphabet = b"aZ9_Mz0";
        for len in 0..=40 {
            let name: Vec<u8> = (0..len).map(|i| alphabet[i % alphabet.len()]).collect();
            assert_eq!(name_len(&name), len);
            for at in 0..len {
                for other in 0..=255u8 {
                    let mut bytes = name.clone();
                    bytes[at] = other;
                    assert_eq!(name_len(&bytes), plain(&bytes), "{bytes:?}");
                }
            }
        }
    }

    /// Root and leaf names of 1 to 25 bytes are read whole; a byte that cannot be in a name
    /// at any place of either makes the document not flat, and the general parser reads it.
    #[test]
    fn flat_names_of_every_length() {
        for len in 1..=25 {
            let name: String = "aB_9cD8eF7".chars().cycle().take(len).collect();
            let xml = format!("<{name}><{name}>x</{name}><b><![CDATA[y]]></b></{name}>");
            let mut leaves = Vec::new();
            assert_eq!(flat(&xml, |n, t, _| leaves.push((n, t))), Some(name.as_str()), "{xml}");
            assert_eq!(leaves, [(name.as_str(), "x"), ("b", "y")]);
            flat_is_walked(&xml);
            for at in 1..len {
                for stray in ["-", " ", ":", ".", "/", ">", "\u{e9}"] {
                    let odd = format!("{}{stray}{}", &name[..at], &name[at..]);
                    for xml in [
                        format!("<{odd}><a>x</a></{odd}>"),
                        format!("<xml><{odd}>x</{odd}></xml>"),
                        format!("<xml><{odd}><![CDATA[x]]></{odd}></xml>"),
                    ] {
                        assert_eq!(flat(&xml, |_, _, _| {}), None, "{xml}");
                        flat_is_walked(&xml);
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn flat_reads_what_walk_reads(
            ws in "[ \t\r\n]{0,2}",
            leaves in proptest::collection::vec(
                ("(ToUserName|Content|MsgId|_a|b1)", any::<String>(), 0..3u8),
                0..6,
            ),
        ) {
            let mut xml = format!("{ws}<xml>");
            for (name, text, how) in &leaves {
                let text = text.replace("]]>", "");
                match how {
                    0 => xml.push_str(&format!("{ws}<{name}><![CDATA[{text}]]></{name}>")),
                    1 => xml.push_str(&format!("<{name}>{text}</{name}>{ws}")),
                    _ => xml.push_str(&format!("<{name}>{ws}</{name}>")),
                }
            }
            xml.push_str(&format!("</xml>{ws}"));
            flat_is_walked(&xml);
        }

        #[test]
        fn flat_reads_what_walk_reads_on_xmlish(
            inner in "(<(a|b|Encrypt)>|</(a|b|Encrypt)>|<a/>|<!\\[CDATA\\[|\\]\\]>|&(amp|x|#65);|[<>/a-z \n\u{1}]{0,3}){0,16}",
        ) {
            flat_is_walked(&inner);
            flat_is_walked(&format!("<xml>{inner}</xml>"));
        }

        #[test]
        fn flat_reads_what_walk_reads_on_any_input(input in proptest::prelude::any::<String>()) {
            flat_is_walked(&input);
        }
    }

    proptest::proptest! {
        #[test]
        fn same_name_is_equality(a in "[a-c]{0,20}", b in "[a-c]{0,20}") {
            proptest::prop_assert_eq!(same_name(a.as_bytes(), b.as_bytes()), a == b);
            proptest::prop_assert!(same_name(a.as_bytes(), a.as_bytes()));
        }
    }

    #[test]
    fn names_are_compared_in_full() {
        for n in 0..=20 {
            let name = "abcdefghijklmnopqrstu"[..n].to_owned();
            assert!(same_name(name.as_bytes(), name.as_bytes()));
            for i in 0..n {
                let mut other = name.clone().into_bytes();
                other[i] = b'X';
                assert!(!same_name(name.as_bytes(), &other), "{name} {i}");
            }
        }
    }

    #[test]
    fn cdata_end_is_the_first_terminator() {
        for text in ["", "]]>", "a]]>b]]>", "]>]]]>", "> ]] >", "]]", "x>y]]>", "]]]]>>", "中]]>文"] {
            assert_eq!(cdata_end(text), text.find("]]>"), "{text:?}");
        }
    }

    /// The names `element_name` shares.
    const KNOWN_NAMES: &[&str] = &[
        "xml",
        "ToUserName",
        "FromUserName",
        "CreateTime",
        "MsgType",
        "Content",
        "MsgId",
        "MsgDataId",
        "Idx",
        "Encrypt",
        "AgentID",
        "Event",
        "EventKey",
        "Ticket",
        "PicUrl",
        "MediaId",
        "Format",
        "Recognition",
        "ThumbMediaId",
        "Location_X",
        "Location_Y",
        "Scale",
        "Label",
        "Title",
        "Description",
        "Url",
        "Latitude",
        "Longitude",
        "Precision",
        "MsgSignature",
        "TimeStamp",
        "Nonce",
    ];

    #[test]
    fn name_bytes_are_letters_digits_and_underscore() {
        for b in 0..=255u8 {
            assert_eq!(NAME_BYTE[usize::from(b)], b.is_ascii_alphanumeric() || b == b'_', "{b}");
        }
    }

    #[test]
    fn known_names_are_shared_and_others_owned() {
        for name in KNOWN_NAMES {
            assert!(matches!(element_name(name), Cow::Borrowed(n) if n == *name), "{name}");
            let other = if name.to_lowercase() == *name { name.to_uppercase() } else { name.to_lowercase() };
            assert!(matches!(element_name(&other), Cow::Owned(n) if n == other), "{other}");
            let longer = format!("{name}s");
            assert!(matches!(element_name(&longer), Cow::Owned(n) if n == longer), "{longer}");
        }
        assert!(matches!(element_name(""), Cow::Owned(n) if n.is_empty()));
    }

    #[test]
    fn integers_are_written_as_display_writes_them() {
        for n in [0, 1, -1, 9, 10, -10, 1_700_000_000, i64::MAX, i64::MIN] {
            let mut out = String::new();
            push_int(&mut out, n);
            assert_eq!(out, n.to_string());
        }
        for n in [0, 7, 10, 99, 100, 101, 999, 1000, 6_054_768_590_064_713_728, u64::MAX] {
            let mut out = String::new();
            push_uint(&mut out, n);
            assert_eq!(out, n.to_string());
        }
        for digits in 1..=20u32 {
            for n in [10u64.saturating_pow(digits - 1), 10u64.checked_pow(digits).map_or(u64::MAX, |p| p - 1)]
            {
                let mut out = "x".to_owned();
                push_uint(&mut out, n);
                assert_eq!(out, format!("x{n}"));
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_integer_is_written_as_display_writes_it(n in proptest::prelude::any::<u64>(), m in proptest::prelude::any::<i64>()) {
            let mut out = String::new();
            push_uint(&mut out, n);
            push_int(&mut out, m);
            proptest::prop_assert_eq!(out, format!("{n}{m}"));
        }
    }

    #[test]
    fn bare_text_is_escaped() {
        let xml = Element::new("xml").with(Element::bare("N", "a<b&c>\r")).to_xml();
        assert_eq!(xml, "<xml><N>a&lt;b&amp;c&gt;&#13;</N></xml>");
        assert_eq!(Document::parse(&xml).unwrap().root.text_of("N"), Some("a<b&c>\r"));
    }
}
