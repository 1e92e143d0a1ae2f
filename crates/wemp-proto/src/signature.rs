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
    sort_parts(parts);
    let mut hasher = Sha1::new();
    for part in parts.iter() {
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

/// Orders the parts as `str`'s `Ord` does. The three or four of a signature by a sorting
/// network on their first eight bytes (a key worked out once a part), the whole strings
/// compared only on a tie; any other count by `sort_unstable`. (`sort_unstable_by` with the
/// first byte compared first cost ~120 instructions for three parts, as much again in
/// comparisons: timestamp and nonce often begin with the same digit.)
fn sort_parts(parts: &mut [&str]) {
    match parts {
        [a, b, c] => {
            let mut keyed = [(prefix_key(a), *a), (prefix_key(b), *b), (prefix_key(c), *c)];
            order(&mut keyed, 1, 2);
            order(&mut keyed, 0, 2);
            order(&mut keyed, 0, 1);
            for (part, (_, sorted)) in parts.iter_mut().zip(keyed) {
                *part = sorted;
            }
        }
        [a, b, c, d] => {
            let mut keyed =
                [(prefix_key(a), *a), (prefix_key(b), *b), (prefix_key(c), *c), (prefix_key(d), *d)];
            order(&mut keyed, 0, 1);
            order(&mut keyed, 2, 3);
            order(&mut keyed, 0, 2);
            order(&mut keyed, 1, 3);
            order(&mut keyed, 1, 2);
            for (part, (_, sorted)) in parts.iter_mut().zip(keyed) {
                *part = sorted;
            }
        }
        _ => parts.sort_unstable_by(|a, b| prefix_key(a).cmp(&prefix_key(b)).then_with(|| a.cmp(b))),
    }
}

/// The first eight bytes of `part` as a big-endian number, zeros after a shorter part's end:
/// two parts whose keys differ are ordered as their keys are (the first byte that differs is
/// among the eight, or the shorter part ends there with the other's byte above zero).
fn prefix_key(part: &str) -> u64 {
    let bytes = part.as_bytes();
    match bytes.first_chunk::<8>() {
        Some(head) => u64::from_be_bytes(*head),
        None => {
            let mut head = [0u8; 8];
            head[..bytes.len()].copy_from_slice(bytes);
            u64::from_be_bytes(head)
        }
    }
}

/// One comparator of the sorting network: the parts at `i` and `j` (`i < j`) in order.
#[inline(always)]
fn order(keyed: &mut [(u64, &str)], i: usize, j: usize) {
    let ((ki, pi), (kj, pj)) = (keyed[i], keyed[j]);
    if ki > kj || (ki == kj && pi > pj) {
        keyed.swap(i, j);
    }
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
    // `digest` written in lowercase hex, eight digits a word, and compared with `given` a
    // word at a time (decoding `given` by a table cost ~8 instructions a digit): where the
    // digit is a letter, `given`'s is compared with its `0x20` bit set, so either case matches
    // it, and nothing else does (no other byte becomes a letter by that bit); a digit must be
    // the digit. `diff` gathers the bits that differ, without a branch on them.
    let mut diff = 0u64;
    for (digits, bytes) in given.chunks_exact(8).zip(digest.chunks_exact(4)) {
        let expected = encode_hex_word(u32::from_le_bytes(bytes.try_into().unwrap_or_default()));
        let fold = (expected & bytes_of(0x40)) >> 1;
        diff |= (u64::from_le_bytes(digits.try_into().unwrap_or_default()) | fold) ^ expected;
    }
    if bool::from(diff.ct_eq(&0)) { Ok(()) } else { Err(VerifyError { kind }) }
}

/// Repeats a byte in every byte of a word.
const fn bytes_of(b: u8) -> u64 {
    u64::from_le_bytes([b; 8])
}

/// Four bytes (the first in the lowest byte) as eight lowercase hexadecimal digits (the first
/// in the lowest byte).
fn encode_hex_word(bytes: u32) -> u64 {
    // Each byte into the even byte of a pair, then its two halves into the pair.
    let spread = u64::from(bytes);
    let spread = (spread | spread << 16) & 0x0000_ffff_0000_ffff;
    let spread = (spread | spread << 8) & 0x00ff_00ff_00ff_00ff;
    let nibbles = ((spread >> 4) & bytes_of(0x0f)) | ((spread & bytes_of(0x0f)) << 8);
    // `0`-`9` from 0x30; from ten (where adding six carries into bit 4) 39 more, to `a`-`f`.
    let letters = ((nibbles + bytes_of(6)) >> 4) & bytes_of(1);
    nibbles + bytes_of(b'0') + letters * 39
}

/// The value of one hexadecimal digit (either case).
pub(crate) const fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

pub(crate) fn hex(digest: &[u8; 20]) -> String {
    let mut out = String::with_capacity(40);
    hex_into(digest, &mut out);
    out
}

/// Appends a digest in lowercase hex: four bytes a step (a table look-up a digit cost ~6
/// instructions a digit), in one `push_str`.
pub(crate) fn hex_into(digest: &[u8; 20], out: &mut String) {
    let mut text = [0u8; 40];
    for (digits, four) in text.chunks_exact_mut(8).zip(digest.chunks_exact(4)) {
        let word = encode_hex_word(u32::from_le_bytes(four.try_into().unwrap_or_default()));
        digits.copy_from_slice(&word.to_le_bytes());
    }
    // Hex digits are ASCII, so this never falls back to the empty string.
    out.push_str(std::str::from_utf8(&text).unwrap_or_default());
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

        /// Parts that tie in their first eight bytes or end within them (`\0` after a
        /// shorter part's end, where the key pads with zeros), three and four of them.
        #[test]
        fn tied_parts_sort_as_str_sorts(parts in proptest::collection::vec("(12345678|1234|ab|)[0-9\u{0}\u{ff}]{0,9}", 3..5)) {
            let mut ours: Vec<&str> = parts.iter().map(String::as_str).collect();
            let mut theirs = ours.clone();
            sort_parts(&mut ours);
            theirs.sort_unstable();
            proptest::prop_assert_eq!(ours, theirs);
        }

        #[test]
        fn a_hex_word_is_the_digits_of_its_bytes(bytes in proptest::prelude::any::<u32>()) {
            let expected = format!("{:08x}", bytes.swap_bytes());
            proptest::prop_assert_eq!(&encode_hex_word(bytes).to_le_bytes(), expected.as_bytes());
        }

        #[test]
        fn hex_is_the_digits_of_each_byte(bytes in proptest::prelude::any::<[u8; 20]>()) {
            let mut out = "x".to_owned();
            hex_into(&bytes, &mut out);
            let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            proptest::prop_assert_eq!(out, format!("x{expected}"));
        }
    }

    /// Every byte at every place of a digest's hex digits, in either case: the digest
    /// matches exactly when the byte is the digit there, in either case.
    #[test]
    fn each_digit_is_checked_in_either_case() {
        let digest: [u8; 20] = std::array::from_fn(|i| (i as u8).wrapping_mul(0x4b) ^ 0x5a);
        let right = hex(&digest);
        for upper in [false, true] {
            let mut digits = right.clone().into_bytes();
            if upper {
                digits.make_ascii_uppercase();
            }
            for at in 0..40 {
                for c in 0..=255u8 {
                    let mut given = digits.clone();
                    given[at] = c;
                    let want = c.eq_ignore_ascii_case(&right.as_bytes()[at]);
                    let now = match std::str::from_utf8(&given) {
                        Ok(given) => check(&digest, given, SignatureKind::Signature).is_ok(),
                        // Not text: the comparison itself, on bytes no `&str` can hold.
                        Err(_) => continue,
                    };
                    assert_eq!(now, want, "{c:#x} at {at}, upper {upper}");
                    // The same bits changed in the next word too: still refused.
                    let other = (at + 8) % 40;
                    given[other] ^= c ^ digits[at];
                    let both = want && given[other].eq_ignore_ascii_case(&right.as_bytes()[other]);
                    if let Ok(given) = std::str::from_utf8(&given) {
                        let now = check(&digest, given, SignatureKind::Signature).is_ok();
                        assert_eq!(now, both, "{c:#x} at {at} and {other}, upper {upper}");
                    }
                }
            }
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
