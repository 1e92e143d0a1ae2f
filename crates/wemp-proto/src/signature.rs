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
    parts.sort_unstable();
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
    // Only the shape of `given` (public) decides before the comparison of the digests.
    if well_formed && bool::from(digest.ct_eq(&decoded)) { Ok(()) } else { Err(VerifyError { kind }) }
}

/// The value of one hexadecimal digit (either case).
pub(crate) fn nibble(c: u8) -> Option<u8> {
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

/// Appends `bytes` as lowercase hex.
pub(crate) fn hex_into(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
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
