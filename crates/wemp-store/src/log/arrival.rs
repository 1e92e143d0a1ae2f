//! What arrived with a request, kept as it came: its query string, its headers and its
//! message.
//!
//! A [`DeliveryRecord`](super::DeliveryRecord) is made for every request, and most are never
//! read field by field; so the query and the headers are kept as one string each (no
//! decoding on the request path) and read as parameters or a map only where they are shown
//! ([`RequestQuery::to_map`], [`RequestHeaders::to_map`], and their JSON, which is that map).
//! The server keeps the two with the message ([`DeliveryRecord::keep_arrival`]): one
//! allocation for the three texts, shared ([`SharedText`]), and one free when the record goes.
//!
//! [`DeliveryRecord::keep_arrival`]: super::DeliveryRecord::keep_arrival

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use wemp_proto::admission::percent_decode;
use wemp_proto::wechat::percent_encode_into;

/// A text of a [`DeliveryRecord`](super::DeliveryRecord) that may share its allocation with
/// the record's other texts: what arrived with a request (its query string, its headers, its
/// message) is kept in one allocation for the three
/// ([`DeliveryRecord::keep_arrival`](super::DeliveryRecord::keep_arrival)), and each is a part
/// of it. Reads as the `str` it is (`Deref`); equal, ordered, hashed, shown and (de)serialised
/// as that `str`. A clone shares the text (a reference count); the empty text holds nothing.
///
/// ```
/// use wemp_store::SharedText;
///
/// let xml = SharedText::from("<xml/>");
/// assert_eq!(xml, "<xml/>");
/// assert_eq!(xml.len(), 6);
/// assert_eq!(serde_json::to_string(&xml).unwrap(), r#""<xml/>""#);
/// ```
#[derive(Clone, Default)]
pub struct SharedText {
    /// The allocation (`None`: the empty text) and this text's bytes in it, `start..end`
    /// (`end` [`TO_END`]: to the allocation's end). Offsets of 32 bits: a record keeps three
    /// of these, and at 24 bytes each rather than 32 the record's shared allocation is 512
    /// bytes, eight cache lines, rather than nine. A part the offsets cannot name (at 4 GiB
    /// or beyond) is copied into an allocation of its own ([`SharedText::part`]).
    all: Option<Arc<str>>,
    start: u32,
    end: u32,
}

/// [`SharedText::end`] for "to the end of the allocation": a whole text of any length.
const TO_END: u32 = u32::MAX;

impl SharedText {
    /// The bytes `start..end` of `all` (at character boundaries): shared when 32-bit offsets
    /// name them, else copied. Inlined: three calls a request (what arrived), each a few
    /// instructions.
    #[inline]
    fn part(all: &Arc<str>, start: usize, end: usize) -> Self {
        if start == end {
            return Self::default();
        }
        match Self::offsets(start, end) {
            Some((start, end)) => Self { all: Some(all.clone()), start, end },
            None => Self::copied(all, start, end),
        }
    }

    /// [`SharedText::part`] at offsets 32 bits cannot name: copied into its own allocation.
    #[cold]
    #[inline(never)]
    fn copied(all: &str, start: usize, end: usize) -> Self {
        Self::whole(Arc::from(all.get(start..end).unwrap_or_default()))
    }

    /// `start..end` as the 32-bit offsets a part is kept with, if they fit ([`TO_END`] is
    /// not an offset).
    #[inline]
    fn offsets(start: usize, end: usize) -> Option<(u32, u32)> {
        let end = u32::try_from(end).ok().filter(|&end| end != TO_END)?;
        Some((u32::try_from(start).ok()?, end))
    }

    /// All of `all`.
    fn whole(all: Arc<str>) -> Self {
        if all.is_empty() {
            return Self::default();
        }
        Self { all: Some(all), start: 0, end: TO_END }
    }

    /// The allocation and where the text is in it, `start..end` (`None`: the empty text).
    #[inline]
    fn span(&self) -> Option<(&str, std::ops::Range<usize>)> {
        let all = self.all.as_deref()?;
        let end = if self.end == TO_END { all.len() } else { self.end as usize };
        Some((all, self.start as usize..end))
    }

    /// The text's bytes, found without reading them (`as_str` reads the bytes at its ends,
    /// to check they start and end characters): what the message log's writer reads ahead
    /// ([`DeliveryRecord::read_ahead`](super::DeliveryRecord::read_ahead)).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn bytes_unread(&self) -> &[u8] {
        self.span().and_then(|(all, at)| all.as_bytes().get(at)).unwrap_or_default()
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        self.span().and_then(|(all, at)| all.get(at)).unwrap_or_default()
    }
}

impl std::ops::Deref for SharedText {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedText {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<Arc<str>> for SharedText {
    fn from(all: Arc<str>) -> Self {
        Self::whole(all)
    }
}

impl From<&str> for SharedText {
    fn from(text: &str) -> Self {
        if text.is_empty() { Self::default() } else { Self::from(Arc::<str>::from(text)) }
    }
}

impl From<String> for SharedText {
    fn from(text: String) -> Self {
        if text.is_empty() { Self::default() } else { Self::from(Arc::<str>::from(text)) }
    }
}

impl From<Box<str>> for SharedText {
    fn from(text: Box<str>) -> Self {
        if text.is_empty() { Self::default() } else { Self::from(Arc::<str>::from(text)) }
    }
}

impl PartialEq for SharedText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SharedText {}

impl PartialEq<str> for SharedText {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SharedText {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialOrd for SharedText {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedText {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for SharedText {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl std::fmt::Debug for SharedText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for SharedText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SharedText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SharedText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Cow::<'de, str>::deserialize(d).map(|text| Self::from(&*text))
    }
}

/// A thread's buffer that grew past this is let go after use (one large message does not keep
/// its size in every thread).
const KEPT_CAPACITY: usize = 16 * 1024;

thread_local! {
    /// Where [`keep`] writes what arrived out before the one allocation it is kept in: the
    /// header block, then the three texts.
    static SCRATCH: RefCell<(Vec<u8>, String)> = const { RefCell::new((Vec::new(), String::new())) };
}

/// What arrived with a request, as [`DeliveryRecord::keep_arrival`](super::DeliveryRecord::keep_arrival)
/// keeps it: the query string `query` and the `headers` (as [`RequestHeaders::from_pairs`]
/// keeps them) and, when given, the `message`, in one allocation (written out in a buffer of
/// the thread's first, so that the allocation is the only one).
pub(super) fn keep<'a>(
    query: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    message: Option<&str>,
) -> (RequestQuery, RequestHeaders, Option<SharedText>) {
    let keep = |(block, text): &mut (Vec<u8>, String)| {
        block.clear();
        text.clear();
        write_block(block, headers);
        let block_text = match std::str::from_utf8(block) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(block),
        };
        text.reserve(query.len() + block_text.len() + message.map_or(0, str::len));
        text.push_str(query);
        text.push_str(&block_text);
        text.push_str(message.unwrap_or_default());
        let (q, h) = (query.len(), query.len() + block_text.len());
        drop(block_text);
        if text.is_empty() {
            return (
                RequestQuery::default(),
                RequestHeaders::default(),
                message.map(|_| SharedText::default()),
            );
        }
        let all = Arc::<str>::from(text.as_str());
        let kept = (
            RequestQuery(SharedText::part(&all, 0, q)),
            RequestHeaders(SharedText::part(&all, q, h)),
            message.map(|_| SharedText::part(&all, h, all.len())),
        );
        if text.capacity() > KEPT_CAPACITY {
            *text = String::new();
        }
        if block.capacity() > KEPT_CAPACITY {
            *block = Vec::new();
        }
        kept
    };
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => keep(&mut scratch),
        // Only if writing the headers out came back here: buffers of its own.
        Err(_) => keep(&mut Default::default()),
    })
}

/// What a request part kept as it arrived shares with a map of its names and values: it is
/// made from an array of pairs (as from any iterator of them), equal when its map is,
/// shown and (de)serialised as that map.
macro_rules! read_as_a_map {
    ($t:ty) => {
        impl<K: AsRef<str>, V: AsRef<str>, const N: usize> From<[(K, V); N]> for $t {
            fn from(pairs: [(K, V); N]) -> Self {
                pairs.into_iter().collect()
            }
        }

        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                self.0 == other.0 || self.to_map() == other.to_map()
            }
        }

        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_map().entries(self.to_map()).finish()
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.to_map().serialize(s)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok(BTreeMap::<String, String>::deserialize(d)?.into_iter().collect())
            }
        }
    };
}

/// The query string of a request as it arrived (percent-encoded, without the `?`), read as
/// its parameters: percent-decoded, the first of a repeated name, as the server reads them.
/// In JSON it is that map of parameters; equal when the parameters are.
///
/// ```
/// use wemp_store::RequestQuery;
///
/// let q = RequestQuery::new("signature=abc&nonce=n%20n&nonce=2&openid=o1");
/// assert_eq!(q.get("nonce").as_deref(), Some("n n"));
/// assert_eq!(q.to_map().len(), 3);
/// assert_eq!(q, [("openid", "o1"), ("signature", "abc"), ("nonce", "n n")].into_iter().collect());
/// ```
#[derive(Clone, Default)]
pub struct RequestQuery(SharedText);

impl RequestQuery {
    /// The query string `raw` (without the `?`), kept as it is.
    pub fn new(raw: &str) -> Self {
        Self(raw.into())
    }

    /// The query string as it arrived.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Its bytes, found without reading them ([`SharedText::bytes_unread`]).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn bytes_unread(&self) -> &[u8] {
        self.0.bytes_unread()
    }

    /// Whether it holds no parameter.
    pub fn is_empty(&self) -> bool {
        self.pairs().next().is_none()
    }

    /// The parameters in the order they came, percent-decoded (repeated names repeated).
    pub fn pairs(&self) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
        self.as_str().split('&').filter(|p| !p.is_empty()).map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
    }

    /// The value of the first parameter named `name`, percent-decoded.
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        self.pairs().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Whether a parameter named `name` arrived.
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The parameters by name (the first of a repeated name), percent-decoded.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        for (k, v) in self.pairs() {
            map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        map
    }
}

/// A query string of these parameters (percent-encoded).
impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for RequestQuery {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut raw = String::new();
        for (k, v) in iter {
            if !raw.is_empty() {
                raw.push('&');
            }
            percent_encode_into(&mut raw, k.as_ref());
            raw.push('=');
            percent_encode_into(&mut raw, v.as_ref());
        }
        Self(raw.into())
    }
}

read_as_a_map!(RequestQuery);

/// The headers of a request as they arrived, less `Cookie` and `Authorization` (which WeChat
/// never sends): kept as one block of `name: value` lines, names lowercase, in the order they
/// came. Read by name, a repeated header's values are joined with `, `. In JSON it is that
/// map; equal when the maps are.
///
/// ```
/// use wemp_store::RequestHeaders;
///
/// let h = RequestHeaders::from_pairs(
///     [("User-Agent", &b"Mozilla/4.0"[..]), ("x-forwarded-for", b"1.2.3.4"), ("cookie", b"s=1"),
///      ("x-forwarded-for", b"5.6.7.8")],
/// );
/// assert_eq!(h.get("user-agent").as_deref(), Some("Mozilla/4.0"));
/// assert_eq!(h.get("x-forwarded-for").as_deref(), Some("1.2.3.4, 5.6.7.8"));
/// assert!(!h.contains_key("cookie"));
/// ```
#[derive(Clone, Default)]
pub struct RequestHeaders(SharedText);

impl RequestHeaders {
    /// Headers given as (name, value) pairs in the order they came. Names are lowercased;
    /// values that are not UTF-8 are read lossily; `Cookie` and `Authorization` are left
    /// out. What HTTP cannot carry is replaced by a space: a line break in a value, a colon
    /// or line break in a name.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut out = Vec::new();
        write_block(&mut out, pairs);
        // Only ASCII and whole `str`s went in.
        Self(
            String::from_utf8(out)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
                .into(),
        )
    }

    /// The block as kept: one `name: value` line per header.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Its bytes, found without reading them ([`SharedText::bytes_unread`]).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn bytes_unread(&self) -> &[u8] {
        self.0.bytes_unread()
    }

    /// Kept as it is: a block written by [`as_str`](Self::as_str).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn from_block(block: &str) -> Self {
        Self(block.into())
    }

    /// Whether no header was kept.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The headers in the order they came (repeated names repeated).
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.as_str().lines().map(|line| line.split_once(": ").unwrap_or((line, "")))
    }

    /// The value of the header `name` (lowercase), a repeated one's values joined with `, `.
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        let mut values = self.pairs().filter(|(n, _)| *n == name).map(|(_, v)| v);
        let first = values.next()?;
        Some(match values.next() {
            None => Cow::Borrowed(first),
            Some(second) => {
                let mut joined = format!("{first}, {second}");
                for v in values {
                    joined.push_str(", ");
                    joined.push_str(v);
                }
                Cow::Owned(joined)
            }
        })
    }

    /// Whether the header `name` (lowercase) arrived.
    pub fn contains_key(&self, name: &str) -> bool {
        self.pairs().any(|(n, _)| n == name)
    }

    /// The headers by name, a repeated one's values joined with `, `.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::<String, String>::new();
        for (name, value) in self.pairs() {
            map.entry(name.to_owned())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(value);
                })
                .or_insert_with(|| value.to_owned());
        }
        map
    }
}

const COOKIE: &str = "cookie";
const AUTHORIZATION: &str = "authorization";

/// In [`CLASS`]: a byte a header name cannot keep as it is (upper case, a colon, a line break).
const NAME_CHANGES: u8 = 1;
/// In [`CLASS`]: a byte a header value cannot be copied with as it is (not ASCII, a line break).
const VALUE_CHANGES: u8 = 2;

/// What each byte is to [`RequestHeaders::from_pairs`]: [`NAME_CHANGES`], [`VALUE_CHANGES`].
static CLASS: [u8; 256] = {
    let mut class = [0; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_uppercase() || matches!(c, b':' | b'\n' | b'\r') {
            class[b] |= NAME_CHANGES;
        }
        if !c.is_ascii() || matches!(c, b'\n' | b'\r') {
            class[b] |= VALUE_CHANGES;
        }
        b += 1;
    }
    class
};

/// The [`CLASS`]es of the bytes of `bytes`, or-ed: a look-up a byte with no early exit (the
/// branchy `any` over four comparisons a byte it replaces cost twice as many instructions).
#[inline]
fn classes(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |all, &b| all | CLASS[usize::from(b)])
}

/// Writes the block of [`RequestHeaders::from_pairs`] to `out`.
fn write_block<'a>(out: &mut Vec<u8>, pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>) {
    let pairs = pairs.into_iter();
    // Room for a request's usual headers (about 40 bytes a line). Bytes are copied as they
    // came where they need no change (a name without upper case, colon or line break; a value
    // of ASCII without a line break: what HTTP carries), which one look-up a byte in `CLASS`
    // tells; anything else goes through `str` first.
    out.reserve(pairs.size_hint().0 * 48);
    for (name, value) in pairs {
        if name.eq_ignore_ascii_case(COOKIE) || name.eq_ignore_ascii_case(AUTHORIZATION) {
            continue;
        }
        if classes(name.as_bytes()) & NAME_CHANGES == 0 {
            out.extend_from_slice(name.as_bytes());
        } else {
            let mut line = [0; 4];
            for c in name.chars() {
                let c = match c {
                    ':' | '\n' | '\r' => ' ',
                    c => c.to_ascii_lowercase(),
                };
                out.extend_from_slice(c.encode_utf8(&mut line).as_bytes());
            }
        }
        out.extend_from_slice(b": ");
        if classes(value) & VALUE_CHANGES == 0 {
            out.extend_from_slice(value);
        } else {
            out.extend_from_slice(String::from_utf8_lossy(value).replace(['\n', '\r'], " ").as_bytes());
        }
        out.push(b'\n');
    }
}

/// Headers of these names and values (each name once).
impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for RequestHeaders {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let pairs: Vec<(K, V)> = iter.into_iter().collect();
        Self::from_pairs(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref().as_bytes())))
    }
}

read_as_a_map!(RequestHeaders);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_reads_as_the_server_reads_it_and_round_trips_through_its_map() {
        let q = RequestQuery::new("signature=abc&nonce=n+x&nonce=2&&openid=o%E4%BD%A0&flag");
        assert_eq!(q.get("nonce").as_deref(), Some("n x"), "decoded, the first of a repeated name");
        assert_eq!(q.get("flag").as_deref(), Some(""));
        assert_eq!(q.get("missing"), None);
        let map = q.to_map();
        assert_eq!(map["openid"], "o你");
        assert_eq!(map.len(), 4);
        // Made from its map (as JSON and old log rows are): the same parameters.
        let again: RequestQuery = map.iter().collect();
        assert_eq!(again.to_map(), map);
        assert_eq!(again, q);
        assert_ne!(RequestQuery::new("nonce=1"), q);
        let odd: RequestQuery = [("a&b=c", "x=y&z%"), ("", "")].into_iter().collect();
        assert_eq!(odd.get("a&b=c").as_deref(), Some("x=y&z%"));
        assert!(RequestQuery::new("&&").is_empty());
        let json = serde_json::to_string(&q).unwrap();
        assert_eq!(json, r#"{"flag":"","nonce":"n x","openid":"o你","signature":"abc"}"#);
        assert_eq!(serde_json::from_str::<RequestQuery>(&json).unwrap(), q);
    }

    /// The block as the version before built it (a `str` check and a line-break scan of each
    /// value): what `from_pairs` must still give.
    fn block_as_before(pairs: &[(String, Vec<u8>)]) -> String {
        let mut out = String::new();
        let breaks = |b: &u8| matches!(b, b'\n' | b'\r');
        for (name, value) in pairs {
            if name.eq_ignore_ascii_case(COOKIE) || name.eq_ignore_ascii_case(AUTHORIZATION) {
                continue;
            }
            if name.bytes().any(|b| b.is_ascii_uppercase() || b == b':' || breaks(&b)) {
                out.extend(name.chars().map(|c| match c {
                    ':' | '\n' | '\r' => ' ',
                    c => c.to_ascii_lowercase(),
                }));
            } else {
                out.push_str(name);
            }
            out.push_str(": ");
            match std::str::from_utf8(value) {
                Ok(text) if !value.iter().any(breaks) => out.push_str(text),
                _ => out.push_str(&String::from_utf8_lossy(value).replace(['\n', '\r'], " ")),
            }
            out.push('\n');
        }
        out
    }

    #[test]
    fn header_blocks_are_as_before_for_any_bytes() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(15);
        // Bytes that matter: ASCII letters of both cases, separators, line breaks, UTF-8
        // (whole and cut), bytes that are never UTF-8.
        let pieces: [&[u8]; 15] = [
            b"a",
            b"Z",
            // Either side of the upper-case letters.
            b"@",
            b"[",
            b"\x7f",
            b":",
            b" ",
            b"\n",
            b"\r",
            b"-",
            "你".as_bytes(),
            &"好".as_bytes()[..2],
            b"\xff",
            b"\t",
            b"0",
        ];
        let text = |rng: &mut rand::rngs::StdRng| -> Vec<u8> {
            (0..rng.random_range(0..8))
                .flat_map(|_| pieces[rng.random_range(0..pieces.len())].to_vec())
                .collect()
        };
        for _ in 0..5000 {
            let pairs: Vec<(String, Vec<u8>)> = (0..rng.random_range(0..5))
                .map(|_| {
                    let name = match rng.random_range(0..6) {
                        0 => "Cookie".to_owned(),
                        1 => "authorization".to_owned(),
                        2 => "x-forwarded-for".to_owned(),
                        _ => String::from_utf8_lossy(&text(&mut rng)).into_owned(),
                    };
                    (name, text(&mut rng))
                })
                .collect();
            let new = RequestHeaders::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_slice())));
            assert_eq!(new.as_str(), block_as_before(&pairs), "{pairs:?}");
        }
    }

    #[test]
    fn what_arrived_is_kept_as_each_part_alone_in_one_allocation() {
        let pairs: [(&str, &[u8]); 3] =
            [("Host", b"example.com"), ("cookie", b"s=1"), ("x-odd", b"\xffa\nb")];
        for (query, message) in [
            ("signature=abc&nonce=n%20n", Some("<xml><Content>你好</Content></xml>")),
            ("signature=abc", None),
            ("", Some("<xml/>")),
            ("", None),
        ] {
            let (q, h, m) = keep(query, pairs, message);
            assert_eq!(q.as_str(), RequestQuery::new(query).as_str());
            assert_eq!(h.as_str(), RequestHeaders::from_pairs(pairs).as_str());
            assert_eq!(h.as_str(), "host: example.com\nx-odd: \u{fffd}a b\n");
            assert_eq!(m.as_deref(), message);
            // One allocation: each part is a part of it.
            let all = h.0.all.as_ref().unwrap();
            assert!(q.0.all.as_ref().is_none_or(|a| Arc::ptr_eq(a, all)), "{query:?}");
            assert!(m.as_ref().is_none_or(|m| m.all.as_ref().is_some_and(|a| Arc::ptr_eq(a, all))));
            assert_eq!(all.len(), query.len() + h.as_str().len() + message.map_or(0, str::len));
        }
        // Nothing arrived: nothing allocated.
        let (q, h, m) = keep("", [], None);
        assert!(q.0.all.is_none() && h.0.all.is_none() && m.is_none());
        // A large message does not keep the thread's buffer at its size.
        let large = "x".repeat(100_000);
        let (_, _, m) = keep("a=1", pairs, Some(&large));
        assert_eq!(m.as_deref(), Some(large.as_str()));
        SCRATCH.with_borrow(|(block, text)| {
            assert!(block.capacity() <= KEPT_CAPACITY && text.capacity() <= KEPT_CAPACITY);
        });
    }

    #[test]
    fn a_shared_text_reads_compares_and_serialises_as_its_str() {
        let all: Arc<str> = Arc::from("abcdef");
        let part = SharedText::part(&all, 2, 4);
        assert_eq!(part, "cd");
        assert_eq!(part, SharedText::from("cd"));
        assert_ne!(part, SharedText::from("cde"));
        assert_eq!(format!("{part} {part:?}"), r#"cd "cd""#);
        assert_eq!(serde_json::to_string(&part).unwrap(), r#""cd""#);
        assert_eq!(serde_json::from_str::<SharedText>(r#""c\"d""#).unwrap(), "c\"d");
        assert!(SharedText::part(&all, 3, 3).all.is_none(), "an empty part holds nothing");
        assert!(SharedText::from(String::new()).all.is_none());
        assert_eq!(SharedText::default(), "");
        // Whole texts, and parts at offsets 32 bits cannot name (copied, not shared).
        let whole = SharedText::from(all.clone());
        assert_eq!((whole.as_str(), whole.end), ("abcdef", TO_END));
        assert_eq!(SharedText::offsets(2, 4), Some((2, 4)));
        assert_eq!(SharedText::offsets(0, TO_END as usize - 1), Some((0, TO_END - 1)));
        assert_eq!(SharedText::offsets(0, TO_END as usize), None, "TO_END is not an offset");
        #[cfg(target_pointer_width = "64")]
        assert_eq!(SharedText::offsets(1 << 32, (1 << 32) + 2), None);
        assert_eq!(SharedText::from(Arc::<str>::from("")).all, None);
        let copied = SharedText::copied(&all, 2, 4);
        assert_eq!((copied.as_str(), copied.end), ("cd", TO_END));
        assert!(!Arc::ptr_eq(copied.all.as_ref().unwrap(), &all), "its own allocation");
    }

    /// The record's shared allocation (its `Arc`'s counts and the record) fits 512 bytes, eight
    /// cache lines: the console's ring keeps 500 records, and each line of one that leaves it
    /// is a last-level miss (read by its drop or written by the allocation reusing it).
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn a_shared_record_fits_eight_cache_lines() {
        assert_eq!(std::mem::size_of::<SharedText>(), 24);
        assert!(std::mem::size_of::<super::super::DeliveryRecord>() + 16 <= 512);
    }

    #[test]
    fn headers_keep_their_order_join_repeats_and_leave_out_credentials() {
        let h = RequestHeaders::from_pairs([
            ("host", &b"example.com"[..]),
            ("X-Forwarded-For", b"1.2.3.4"),
            ("authorization", b"Bearer t"),
            ("Cookie", b"s=1"),
            ("x-forwarded-for", b"5.6.7.8"),
            ("x-odd", b"\xffa"),
        ]);
        assert_eq!(
            h.as_str(),
            "host: example.com\nx-forwarded-for: 1.2.3.4\nx-forwarded-for: 5.6.7.8\nx-odd: \u{fffd}a\n"
        );
        assert_eq!(h.get("x-forwarded-for").as_deref(), Some("1.2.3.4, 5.6.7.8"));
        assert!(!h.contains_key("cookie") && !h.contains_key("authorization"));
        let map = h.to_map();
        assert_eq!(map.len(), 3);
        let again: RequestHeaders = map.iter().collect();
        assert_eq!(again, h);
        // What HTTP cannot carry does not break the block.
        let odd: RequestHeaders = [("a:b", "x\ny"), ("c", "")].into_iter().collect();
        assert_eq!(
            odd.to_map(),
            [("a b".to_owned(), "x y".to_owned()), ("c".to_owned(), String::new())].into()
        );
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<RequestHeaders>(&json).unwrap(), h);
        assert_eq!(RequestHeaders::from_block(h.as_str()), h);
    }
}
