//! What arrived with a request, kept as it came: its query string and its headers.
//!
//! A [`DeliveryRecord`](super::DeliveryRecord) is made for every request, and most are never
//! read field by field; so the query and the headers are kept as one string each (one
//! allocation, no decoding on the request path) and read as parameters or a map only where
//! they are shown ([`RequestQuery::to_map`], [`RequestHeaders::to_map`], and their JSON,
//! which is that map).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use wemp_proto::admission::percent_decode;
use wemp_proto::wechat::percent_encode_into;

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
pub struct RequestQuery(Box<str>);

impl RequestQuery {
    /// The query string `raw` (without the `?`), kept as it is.
    pub fn new(raw: &str) -> Self {
        Self(raw.into())
    }

    /// The query string as it arrived.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it holds no parameter.
    pub fn is_empty(&self) -> bool {
        self.pairs().next().is_none()
    }

    /// The parameters in the order they came, percent-decoded (repeated names repeated).
    pub fn pairs(&self) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
        self.0.split('&').filter(|p| !p.is_empty()).map(|pair| {
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
pub struct RequestHeaders(String);

impl RequestHeaders {
    /// Headers given as (name, value) pairs in the order they came. Names are lowercased;
    /// values that are not UTF-8 are read lossily; `Cookie` and `Authorization` are left
    /// out. What HTTP cannot carry is replaced by a space: a line break in a value, a colon
    /// or line break in a name.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let pairs = pairs.into_iter();
        // One allocation for a request's usual headers (about 40 bytes a line). Bytes are
        // copied as they came where they are ASCII without a line break (what HTTP carries),
        // so each one is looked at once; anything else goes through `str` first.
        let mut out = Vec::with_capacity(pairs.size_hint().0 * 48);
        for (name, value) in pairs {
            if name.eq_ignore_ascii_case(COOKIE) || name.eq_ignore_ascii_case(AUTHORIZATION) {
                continue;
            }
            if name.bytes().any(|b| b.is_ascii_uppercase() || matches!(b, b':' | b'\n' | b'\r')) {
                let mut line = [0; 4];
                for c in name.chars() {
                    let c = match c {
                        ':' | '\n' | '\r' => ' ',
                        c => c.to_ascii_lowercase(),
                    };
                    out.extend_from_slice(c.encode_utf8(&mut line).as_bytes());
                }
            } else {
                out.extend_from_slice(name.as_bytes());
            }
            out.extend_from_slice(b": ");
            if value.iter().all(|&b| b.is_ascii() && b != b'\n' && b != b'\r') {
                out.extend_from_slice(value);
            } else {
                out.extend_from_slice(String::from_utf8_lossy(value).replace(['\n', '\r'], " ").as_bytes());
            }
            out.push(b'\n');
        }
        // Only ASCII and whole `str`s went in.
        Self(String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    /// The block as kept: one `name: value` line per header.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Kept as it is: a block written by [`as_str`](Self::as_str).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn from_block(block: &str) -> Self {
        Self(block.to_owned())
    }

    /// Whether no header was kept.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The headers in the order they came (repeated names repeated).
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.lines().map(|line| line.split_once(": ").unwrap_or((line, "")))
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
        let pieces: [&[u8]; 12] = [
            b"a",
            b"Z",
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
