//! The callback's query string: the one parser of WeChat's parameters.

use std::borrow::Cow;

use crate::signature::nibble;

/// The parameters WeChat puts in the callback URL. The first occurrence of each counts;
/// the names are matched exactly, the values percent- and plus-decoded.
///
/// ```
/// use wemp_proto::admission::Query;
/// let q = Query::parse("signature=abc&timestamp=1&nonce=2&encrypt_type=AES&msg_signature=d%2Be");
/// assert_eq!(q.signature.as_deref(), Some("abc"));
/// assert!(q.is_encrypted());
/// assert_eq!(q.msg_signature.as_deref(), Some("d+e"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query<'a> {
    /// `signature`: over Token, timestamp and nonce, on every request.
    pub signature: Option<Cow<'a, str>>,
    /// `timestamp`, seconds.
    pub timestamp: Option<Cow<'a, str>>,
    /// `nonce`.
    pub nonce: Option<Cow<'a, str>>,
    /// `echostr`, on URL verification.
    pub echostr: Option<Cow<'a, str>>,
    /// `encrypt_type` (`aes` in compatible and safe mode).
    pub encrypt_type: Option<Cow<'a, str>>,
    /// `msg_signature`: over Token, timestamp, nonce and `Encrypt`, in encrypted modes.
    pub msg_signature: Option<Cow<'a, str>>,
    /// `openid`, the sender (informational: only the signed body is trusted).
    pub openid: Option<Cow<'a, str>>,
}

impl<'a> Query<'a> {
    /// Reads a raw query string (without the `?`).
    pub fn parse(query: &'a str) -> Self {
        let mut q = Self::default();
        // WeChat's query has nothing to decode (hex, digits, base64url-like ids): one look
        // over the whole of it spares a look at each value.
        let plain = memchr::memchr2(b'%', b'+', query.as_bytes()).is_none();
        let mut rest = query;
        loop {
            // Each `&` a word at a time from where the pair starts (a value is short).
            let end = crate::find::byte(b'&', rest.as_bytes());
            // `&` is ASCII, so the cuts fall on character boundaries.
            let pair = end.map_or(rest, |end| &rest[..end]);
            // The name is what comes before the first `=`, and none of the seven has one: a
            // pair is a name's when it is the name, or the name and `=`. Its first bytes
            // tell which name it can be; that name is then compared as a literal (inline,
            // where a name chosen at run time was compared by a `memcmp` call).
            macro_rules! value {
                ($slot:ident, $name:literal) => {
                    match pair.strip_prefix($name).map(str::as_bytes) {
                        Some([]) => Some((&mut q.$slot, "")),
                        Some([b'=', ..]) => Some((&mut q.$slot, &pair[$name.len() + 1..])),
                        _ => None,
                    }
                };
            }
            let found = match pair.as_bytes() {
                [b's', ..] => value!(signature, "signature"),
                [b't', ..] => value!(timestamp, "timestamp"),
                [b'n', ..] => value!(nonce, "nonce"),
                [b'e', b'c', ..] => value!(echostr, "echostr"),
                [b'e', ..] => value!(encrypt_type, "encrypt_type"),
                [b'm', ..] => value!(msg_signature, "msg_signature"),
                [b'o', ..] => value!(openid, "openid"),
                _ => None,
            };
            if let Some((slot, value)) = found
                && slot.is_none()
            {
                *slot = Some(if plain { Cow::Borrowed(value) } else { percent_decode(value) });
            }
            match end {
                Some(end) => rest = &rest[end + 1..],
                None => return q,
            }
        }
    }

    /// Whether `encrypt_type` says `aes` (in any case), as WeChat sends it in compatible
    /// and safe mode.
    pub fn is_encrypted(&self) -> bool {
        self.encrypt_type.as_deref().is_some_and(|t| crate::trim(t).eq_ignore_ascii_case("aes"))
    }
}

/// Percent- and plus-decoding of one query value; invalid escapes are kept as they are and
/// bytes that are not UTF-8 become U+FFFD.
pub fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (nibble(bytes[i + 1]), nibble(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wechat_query() {
        let q =
            Query::parse("signature=abc&timestamp=1&nonce=2&openid=o&encrypt_type=aes&msg_signature=d%2Be+f");
        assert_eq!(q.signature.as_deref(), Some("abc"));
        assert_eq!(q.timestamp.as_deref(), Some("1"));
        assert_eq!(q.encrypt_type.as_deref(), Some("aes"));
        assert_eq!(q.msg_signature.as_deref(), Some("d+e f"));
        assert_eq!(q.openid.as_deref(), Some("o"));
        assert_eq!(q.echostr, None);
    }

    #[test]
    fn empty_pairs_bare_names_and_repeats() {
        let q = Query::parse("&&nonce&signature=a=b&=x&signature=second&timestamp=&openid=%E4%B8%AD+1&");
        assert_eq!(q.nonce.as_deref(), Some(""));
        assert_eq!(q.signature.as_deref(), Some("a=b"), "the first occurrence counts, cut at the first =");
        assert_eq!(q.timestamp.as_deref(), Some(""));
        assert_eq!(q.openid.as_deref(), Some("中 1"));
        assert_eq!(q.echostr, None);
        assert_eq!(
            Query::parse("中文=1&echostr=中"),
            Query { echostr: Some("中".into()), ..Query::default() }
        );
    }

    #[test]
    fn bad_escapes_are_kept() {
        assert_eq!(percent_decode("a%zz%4"), "a%zz%4");
        assert_eq!(percent_decode("%41%"), "A%");
    }

    /// `Query::parse` as it was: a byte scan for each `&` and `=`, every value through
    /// `percent_decode`.
    fn parsed_before(query: &str) -> Query<'_> {
        let mut q = Query::default();
        let mut rest = query;
        while !rest.is_empty() {
            let end = rest.bytes().position(|b| b == b'&').unwrap_or(rest.len());
            let pair = &rest[..end];
            rest = rest.get(end + 1..).unwrap_or_default();
            let (k, v) = match pair.bytes().position(|b| b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, ""),
            };
            let slot = match k {
                "signature" => &mut q.signature,
                "timestamp" => &mut q.timestamp,
                "nonce" => &mut q.nonce,
                "echostr" => &mut q.echostr,
                "encrypt_type" => &mut q.encrypt_type,
                "msg_signature" => &mut q.msg_signature,
                "openid" => &mut q.openid,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(percent_decode(v));
            }
        }
        q
    }

    /// Query strings as WeChat writes them and worse: the seven names and others, repeated,
    /// bare, empty, with `=` in values, escapes good and bad, `+`, non-ASCII text.
    fn queries() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let name = prop_oneof![
            proptest::sample::select(vec![
                "signature",
                "timestamp",
                "nonce",
                "echostr",
                "encrypt_type",
                "msg_signature",
                "openid",
                "Signature",
                "nonce ",
                "",
            ])
            .prop_map(str::to_owned),
            "[a-z_%=+中]{0,6}",
        ];
        let value = prop_oneof![
            "[0-9a-f]{0,40}",
            "[A-Za-z0-9_-]{0,28}",
            "[a-z0-9%+=中 ]{0,12}",
            "(%[0-9A-Fa-fzZ]{0,2}){0,4}"
        ];
        let pair = (name, proptest::option::of(value)).prop_map(|(n, v)| match v {
            Some(v) => format!("{n}={v}"),
            None => n,
        });
        proptest::collection::vec(pair, 0..9).prop_map(|pairs| pairs.join("&"))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        #[test]
        fn parses_as_before(query in queries()) {
            proptest::prop_assert_eq!(Query::parse(&query), parsed_before(&query));
        }

        #[test]
        fn parses_any_text_as_before(query in proptest::prelude::any::<String>()) {
            proptest::prop_assert_eq!(Query::parse(&query), parsed_before(&query));
        }
    }

    /// What WeChat sends, decoding nothing, is borrowed whole.
    #[test]
    fn plain_values_are_borrowed() {
        let q = Query::parse(
            "signature=6a62fc79&timestamp=1540176606&nonce=1854606751&openid=oBench_0-1&encrypt_type=aes&msg_signature=5d19",
        );
        for v in [q.signature, q.timestamp, q.nonce, q.openid, q.encrypt_type, q.msg_signature] {
            assert!(matches!(v, Some(Cow::Borrowed(_))), "{v:?}");
        }
        let q = Query::parse("nonce=1&openid=a%41");
        assert!(matches!(q.nonce, Some(Cow::Borrowed("1"))), "no escape in this value");
        assert_eq!(q.openid.as_deref(), Some("aA"));
    }

    #[test]
    fn encrypt_type_in_any_case() {
        assert!(Query::parse("encrypt_type=AES").is_encrypted());
        assert!(!Query::parse("encrypt_type=raw").is_encrypted());
        assert!(!Query::parse("").is_encrypted());
    }
}
