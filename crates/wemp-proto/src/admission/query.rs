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
        let mut rest = query;
        while !rest.is_empty() {
            // By bytes: `&` and `=` are ASCII, so the cuts fall on character boundaries.
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

    /// Whether `encrypt_type` says `aes` (in any case), as WeChat sends it in compatible
    /// and safe mode.
    pub fn is_encrypted(&self) -> bool {
        self.encrypt_type.as_deref().is_some_and(|t| t.trim().eq_ignore_ascii_case("aes"))
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

    #[test]
    fn encrypt_type_in_any_case() {
        assert!(Query::parse("encrypt_type=AES").is_encrypted());
        assert!(!Query::parse("encrypt_type=raw").is_encrypted());
        assert!(!Query::parse("").is_encrypted());
    }
}
