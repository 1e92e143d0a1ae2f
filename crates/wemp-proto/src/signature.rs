//! The two SHA-1 signatures WeChat puts in the query string.
//!
//! * `signature` = `hex(sha1(sort(token, timestamp, nonce)))`, on the URL verification GET
//!   and on every POST;
//! * `msg_signature` = `hex(sha1(sort(token, timestamp, nonce, encrypt)))`, on encrypted
//!   POSTs and in encrypted replies.
//!
//! The parts are sorted as byte strings and joined with no separator. Verification compares
//! in constant time and accepts the hex digest in either case.
//!
//! ```
//! use wemp_proto::signature;
//! let sig = signature::sign("weixin", "1540176606", "1854606751");
//! assert_eq!(sig, "6a62fc79ddf83b3ff96e5cbd068b983f88f192ba");
//! assert!(signature::verify("weixin", "1540176606", "1854606751", &sig).is_ok());
//! ```

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use crate::ReferenceCode;

/// Which of the two signatures failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureKind {
    /// The `signature` query parameter (token, timestamp, nonce).
    Signature,
    /// The `msg_signature` query parameter (token, timestamp, nonce, Encrypt).
    MsgSignature,
}

impl SignatureKind {
    /// The query parameter's name.
    pub const fn param(self) -> &'static str {
        match self {
            Self::Signature => "signature",
            Self::MsgSignature => "msg_signature",
        }
    }
}

/// A signature did not match (`-40001`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} mismatch", kind.param())]
pub struct VerifyError {
    /// Which signature failed.
    pub kind: SignatureKind,
}

impl VerifyError {
    /// Always [`ReferenceCode::ValidateSignature`].
    pub const fn reference_code(&self) -> ReferenceCode {
        ReferenceCode::ValidateSignature
    }
}

/// SHA-1 over the parts sorted as byte strings and concatenated, as lowercase hex.
pub fn sha1_sorted(parts: &mut [&str]) -> String {
    hex(&digest_sorted(parts))
}

fn digest_sorted(parts: &mut [&str]) -> [u8; 20] {
    // The parts nearly always differ in their first byte (a Token, digits, base64): compared
    // there first, the whole strings only on a tie, which orders them as `str`'s `Ord` does.
    parts.sort_unstable_by(|a, b| a.as_bytes().first().cmp(&b.as_bytes().first()).then_with(|| a.cmp(b)));
    let mut hasher = Sha1::new();
    for part in parts.iter() {
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

/// The `signature` over token, timestamp and nonce.
pub fn sign(token: &str, timestamp: &str, nonce: &str) -> String {
    sha1_sorted(&mut [token, timestamp, nonce])
}

/// The `msg_signature` over token, timestamp, nonce and the `Encrypt` text as sent.
pub fn sign_msg(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> String {
    sha1_sorted(&mut [token, timestamp, nonce, encrypt])
}

/// Checks a `signature` in constant time.
///
/// # Errors
/// [`VerifyError`] with [`SignatureKind::Signature`] when it does not match.
pub fn verify(token: &str, timestamp: &str, nonce: &str, signature: &str) -> Result<(), VerifyError> {
    check(&digest_sorted(&mut [token, timestamp, nonce]), signature, SignatureKind::Signature)
}

/// Checks a `msg_signature` in constant time.
///
/// # Errors
/// [`VerifyError`] with [`SignatureKind::MsgSignature`] when it does not match.
pub fn verify_msg(
    token: &str,
    timestamp: &str,
    nonce: &str,
    encrypt: &str,
    msg_signature: &str,
) -> Result<(), VerifyError> {
    check(&digest_sorted(&mut [token, timestamp, nonce, encrypt]), msg_signature, SignatureKind::MsgSignature)
}

/// Compares `digest` with the hex digest `given` (trimmed, in either case), in constant time
/// and without allocating.
fn check(digest: &[u8; 20], given: &str, kind: SignatureKind) -> Result<(), VerifyError> {
    let Ok(given) = <&[u8; 40]>::try_from(crate::trim(given).as_bytes()) else {
        return Err(VerifyError { kind });
    };
    let mut decoded = [0u8; 20];
    // The digits by table; a character that is not one sets the high bits of `marks`.
    let mut marks = 0u8;
    // Indexed in arrays of known length, so without bounds checks.
    for (i, byte) in decoded.iter_mut().enumerate() {
        let (high, low) = (HEX_VALUE[usize::from(given[2 * i])], HEX_VALUE[usize::from(given[2 * i + 1])]);
        marks |= high | low;
        *byte = high << 4 | low;
    }
    // Only the shape of `given` (public) decides before the comparison of the digests, which
    // is in constant time, as two words (a comparison a byte at a time cost ~15 instructions
    // a byte).
    let words = |d: &[u8; 20]| {
        let (head, tail) = d.split_at(16);
        let head: [u8; 16] = head.try_into().unwrap_or_default();
        let tail: [u8; 4] = tail.try_into().unwrap_or_default();
        (u128::from_ne_bytes(head), u32::from_ne_bytes(tail))
    };
    let ((a, b), (c, d)) = (words(digest), words(&decoded));
    if marks < 16 && bool::from(a.ct_eq(&c) & b.ct_eq(&d)) { Ok(()) } else { Err(VerifyError { kind }) }
}

/// The value of each byte as a hexadecimal digit (either case), `0xff` for any other byte.
const HEX_VALUE: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut c = 0;
    while c < 256 {
        // `c` is below 256.
        table[c] = match nibble(c as u8) {
            Some(v) => v,
            None => 0xff,
        };
        c += 1;
    }
    table
};

/// The value of one hexadecimal digit (either case).
pub(crate) const fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    hex_into(bytes, &mut out);
    out
}

/// Appends `bytes` as lowercase hex, a digest (20 bytes) in one `push_str`.
pub(crate) fn hex_into(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for chunk in bytes.chunks(20) {
        let mut text = [0u8; 40];
        for (pair, &b) in text.chunks_exact_mut(2).zip(chunk) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0x0f)];
        }
        // Hex digits are ASCII, so this never falls back to the empty string.
        out.push_str(std::str::from_utf8(&text[..2 * chunk.len()]).unwrap_or_default());
    }
}

/// The digest [`sign_msg`] writes in hex.
pub(crate) fn msg_digest(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> [u8; 20] {
    digest_sorted(&mut [token, timestamp, nonce, encrypt])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_verification_vector() {
        let sig = sign("weixin", "1540176606", "1854606751");
        assert_eq!(sig, "6a62fc79ddf83b3ff96e5cbd068b983f88f192ba");
        assert!(verify("weixin", "1540176606", "1854606751", &sig).is_ok());
        assert!(verify("weixin", "1540176606", "1854606751", &sig.to_uppercase()).is_ok());
        assert!(verify("weixin", "1540176606", "1854606751", &format!(" {sig}\n")).is_ok());
    }

    #[test]
    fn rejects_wrong_token_and_truncated_signature() {
        let sig = sign("weixin", "1540176606", "1854606751");
        let err = verify("weixin2", "1540176606", "1854606751", &sig).unwrap_err();
        assert_eq!(err.kind, SignatureKind::Signature);
        assert!(verify("weixin", "1540176606", "1854606751", &sig[..39]).is_err());
        assert!(verify("weixin", "1540176606", "1854606751", "").is_err());
        assert!(verify("weixin", "1540176606", "1854606751", &format!("{sig}0")).is_err());
        let mut flipped = sig.clone().into_bytes();
        flipped[39] = if flipped[39] == b'0' { b'1' } else { b'0' };
        assert!(verify("weixin", "1540176606", "1854606751", &String::from_utf8(flipped).unwrap()).is_err());
    }

    #[test]
    fn order_is_bytewise_not_positional() {
        // Swapping timestamp and nonce must not change the signature: the parts are sorted.
        assert_eq!(sign("t", "1", "2"), sign("t", "2", "1"));
    }

    /// `check` as it was: `nibble` for each digit, `subtle` a byte at a time.
    fn checked_before(digest: &[u8; 20], given: &str) -> bool {
        let given = given.trim().as_bytes();
        let mut decoded = [0u8; 20];
        let mut well_formed = given.len() == 40;
        if well_formed {
            for (byte, pair) in decoded.iter_mut().zip(given.chunks_exact(2)) {
                match (nibble(pair[0]), nibble(pair[1])) {
                    (Some(high), Some(low)) => *byte = high << 4 | low,
                    _ => well_formed = false,
                }
            }
        }
        well_formed && bool::from(digest.ct_eq(&decoded))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// The right digest in either case, with one character changed (to a digit, a letter
        /// that is or is not hex, a non-ASCII one), cut, lengthened, or with whitespace around.
        #[test]
        fn checks_as_before(
            parts in proptest::collection::vec("[0-9a-zA-Z]{0,12}", 3..5),
            upper in proptest::prelude::any::<bool>(),
            how in 0..6u8,
            at in 0..40usize,
            odd in proptest::prelude::any::<char>(),
        ) {
            let mut parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            let digest = digest_sorted(&mut parts);
            let mut given = hex(&digest);
            if upper {
                given = given.to_uppercase();
            }
            match how {
                0 => {}
                1 => given.replace_range(at..=at, odd.encode_utf8(&mut [0; 4])),
                2 => given.truncate(at),
                3 => given.push(odd),
                4 => given = format!(" {given}\n"),
                _ => given.replace_range(at..=at, if &given[at..=at] == "0" { "1" } else { "0" }),
            }
            let now = check(&digest, &given, SignatureKind::Signature).is_ok();
            proptest::prop_assert_eq!(now, checked_before(&digest, &given), "{:?}", given);
        }

        #[test]
        fn checks_any_text_as_before(given in "[0-9a-fA-FgG \u{0}\u{10}\u{b0}\u{ff}]{38,42}", digest in proptest::prelude::any::<[u8; 20]>()) {
            let now = check(&digest, &given, SignatureKind::MsgSignature).is_ok();
            proptest::prop_assert_eq!(now, checked_before(&digest, &given));
            let right = hex(&digest);
            let now = check(&digest, &right, SignatureKind::MsgSignature).is_ok();
            proptest::prop_assert!(now && checked_before(&digest, &right));
        }
    }

    proptest::proptest! {
        /// The order of the parts is `sort_unstable`'s, and so is the digest.
        #[test]
        fn parts_sort_as_str_sorts(parts in proptest::collection::vec("[a1A]{0,3}|[0-9a-zA-Z+/=]{0,12}", 0..6)) {
            let mut ours: Vec<&str> = parts.iter().map(String::as_str).collect();
            let mut theirs = ours.clone();
            let digest = digest_sorted(&mut ours);
            theirs.sort_unstable();
            proptest::prop_assert_eq!(&ours, &theirs);
            let mut hasher = Sha1::new();
            theirs.iter().for_each(|p| hasher.update(p.as_bytes()));
            proptest::prop_assert_eq!(digest, <[u8; 20]>::from(hasher.finalize()));
        }

        #[test]
        fn hex_is_the_digits_of_each_byte(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..70)) {
            let mut out = "x".to_owned();
            hex_into(&bytes, &mut out);
            let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            proptest::prop_assert_eq!(out, format!("x{expected}"));
        }
    }

    #[test]
    fn hex_value_is_nibble() {
        for c in 0..=255u8 {
            assert_eq!(HEX_VALUE[usize::from(c)], nibble(c).unwrap_or(0xff), "{c}");
        }
    }

    #[test]
    fn documented_msg_signature_vector() {
        let encrypt = crate::crypto::tests::SAMPLE_ENCRYPT;
        let sig = sign_msg("spamtest", "1409735669", "1320562132", encrypt);
        assert_eq!(sig, "5d197aaffba7e9b25a30732f161a50dee96bd5fa");
        let err = verify_msg("spamtest", "1409735669", "1320562133", encrypt, &sig).unwrap_err();
        assert_eq!(err.kind, SignatureKind::MsgSignature);
        assert_eq!(err.reference_code().code(), -40001);
    }
}
