//! WXBizMsgCrypt-compatible message encryption (safe and compatible modes).
//!
//! * `key = base64_decode(EncodingAESKey + "=")`, 32 bytes; decoded leniently, because real
//!   keys may carry non-zero trailing bits;
//! * AES-256-CBC with `IV = key[..16]` and cipher padding off;
//! * plaintext = `random(16) ‖ u32_be(len(msg)) ‖ msg ‖ appid`, padded PKCS#7-style to a
//!   multiple of **32** bytes (pad values 1..=32).
//!
//! ```
//! use wemp_proto::Cipher;
//! let cipher = Cipher::new("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2")?;
//! let encrypted = cipher.encrypt("<xml>hi</xml>", *b"0123456789abcdef")?;
//! assert_eq!(cipher.decrypt(&encrypted)?, "<xml>hi</xml>");
//! # Ok::<(), wemp_proto::Error>(())
//! ```

use std::fmt;

use aes::Aes256;
use aes::cipher::consts::U16;
use aes::cipher::{
    BlockBackend, BlockClosure, BlockDecrypt, BlockEncrypt, BlockSizeUser, KeyInit,
    generic_array::GenericArray,
};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::ReferenceCode;

/// Block size of the WeChat padding scheme (not AES's 16).
pub const PAD_BLOCK: usize = 32;
/// Length of an EncodingAESKey.
pub const ENCODING_AES_KEY_LEN: usize = 43;

/// The longest plaintext [`Cipher::encrypt_into`] encrypts on the stack: the 20-byte header,
/// the message, the appid and the padding of a text reply with up to ~200 bytes of content.
/// A longer one is encrypted in a buffer of its own.
const ENCRYPT_ON_STACK: usize = 480;

/// Standard alphabet, padding optional, trailing bits allowed: what real keys and real
/// `Encrypt` values need.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes the `Encrypt` text. What WeChat sends (the standard alphabet, padded, no stray
/// bits) goes through the SIMD decoder, which accepts nothing else; anything it refuses goes
/// to [`LENIENT`], which decides: the same bytes (missing padding, non-zero trailing bits) or
/// the `base64` crate's error. On what both accept they agree (a proptest holds them
/// together), so the result is [`LENIENT`]'s for every input.
fn decode_base64(text: &[u8]) -> Result<Vec<u8>, DecryptError> {
    match base64_simd::STANDARD.decode_to_vec(text) {
        Ok(buf) => Ok(buf),
        Err(_) => LENIENT.decode(text).map_err(|e| DecryptError::Base64(e.to_string())),
    }
}

/// Appends `bytes` in standard padded base64, as the `base64` crate's `STANDARD` writes it
/// (SIMD; a proptest holds the two together).
fn encode_base64(bytes: &[u8], out: &mut String) {
    base64_simd::STANDARD.encode_append(bytes, out);
}

/// The EncodingAESKey is not usable (`-40004`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not 43 characters long.
    #[error("EncodingAESKey must be 43 characters, got {0}")]
    Length(usize),
    /// Contains a character outside the base64 alphabet.
    #[error("EncodingAESKey has a character outside [A-Za-z0-9+/] at position {position}")]
    Alphabet {
        /// Zero-based position of the first bad character.
        position: usize,
    },
}

impl KeyError {
    /// Always [`ReferenceCode::IllegalAesKey`].
    pub const fn reference_code(&self) -> ReferenceCode {
        ReferenceCode::IllegalAesKey
    }
}

/// Decryption failed; each case names the reference code it corresponds to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// `-40010`: the `Encrypt` value is not base64.
    #[error("Encrypt is not valid base64: {0}")]
    Base64(String),
    /// `-40007`: the ciphertext is empty or not a whole number of AES blocks.
    #[error("ciphertext length {0} is not a positive multiple of 16 (truncated Encrypt?)")]
    BlockLength(usize),
    /// `-40008`: the padding is not 1..=32 identical bytes — almost always a wrong key.
    #[error("padding byte {pad} is not a valid pad (1..=32 identical bytes); wrong EncodingAESKey?")]
    Padding {
        /// The last byte of the decrypted buffer.
        pad: u8,
    },
    /// `-40008`: the decrypted buffer is shorter than its 20-byte header (16 random bytes and
    /// the length field).
    #[error("decrypted message is {len} bytes, shorter than its 20-byte header; wrong EncodingAESKey?")]
    TooShort {
        /// The bytes decrypted (after the padding).
        len: usize,
    },
    /// `-40008`: the length field overruns the buffer.
    #[error("length field says {declared} bytes but only {available} follow; wrong EncodingAESKey?")]
    Length {
        /// The declared message length.
        declared: u64,
        /// The bytes available after the header.
        available: usize,
    },
    /// `-40008`: the message is not UTF-8.
    #[error("decrypted message is not UTF-8 (byte {valid_up_to}); wrong EncodingAESKey?")]
    Utf8 {
        /// Length of the valid UTF-8 prefix.
        valid_up_to: usize,
    },
    /// `-40005`: the trailing appid is not the one configured. `found` is printable: control
    /// characters (a NUL from a wrong key or a forged payload) are escaped and a long value is
    /// cut, so it can go into a log line as it is.
    #[error("appid mismatch: expected {expected}, found {found}")]
    AppidMismatch {
        /// The appid this cipher was built with.
        expected: String,
        /// The appid found in the payload (lossily decoded).
        found: String,
    },
}

/// `s` with control characters escaped (`\u{0}`, `\n`, `\u{1b}`) and cut after 64 characters
/// (with `…`): safe to write into a log line or a one-line error.
fn printable(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == 64 {
            out.push('…');
            break;
        }
        if c.is_control() { out.extend(c.escape_default()) } else { out.push(c) }
    }
    out
}

impl DecryptError {
    /// The reference code of this failure.
    pub const fn reference_code(&self) -> ReferenceCode {
        match self {
            Self::Base64(_) => ReferenceCode::DecodeBase64,
            Self::BlockLength(_) => ReferenceCode::DecryptAes,
            Self::Padding { .. } | Self::TooShort { .. } | Self::Length { .. } | Self::Utf8 { .. } => {
                ReferenceCode::IllegalBuffer
            }
            Self::AppidMismatch { .. } => ReferenceCode::ValidateAppid,
        }
    }
}

/// Encryption failed (`-40006`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// The message is longer than the 32-bit length field can say.
    #[error("message of {0} bytes does not fit the 32-bit length field")]
    TooLong(usize),
}

impl EncryptError {
    /// Always [`ReferenceCode::EncryptAes`].
    pub const fn reference_code(&self) -> ReferenceCode {
        ReferenceCode::EncryptAes
    }
}

/// The AES key and appid of one account. Its `Debug` output never shows the key.
#[derive(Clone)]
pub struct Cipher {
    aes: Aes256,
    iv: [u8; 16],
    appid: Box<str>,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cipher").field("appid", &self.appid).finish_non_exhaustive()
    }
}

/// Decodes an EncodingAESKey into the 32-byte AES key.
///
/// # Errors
/// [`KeyError`] when the key is not 43 characters of the base64 alphabet.
pub fn decode_key(encoding_aes_key: &str) -> Result<[u8; 32], KeyError> {
    let chars = encoding_aes_key.chars().count();
    if encoding_aes_key.len() != ENCODING_AES_KEY_LEN || chars != ENCODING_AES_KEY_LEN {
        return Err(KeyError::Length(chars));
    }
    if let Some(position) =
        encoding_aes_key.bytes().position(|b| !(b.is_ascii_alphanumeric() || b == b'+' || b == b'/'))
    {
        return Err(KeyError::Alphabet { position });
    }
    let bytes = LENIENT.decode(encoding_aes_key).map_err(|_| KeyError::Length(chars))?;
    bytes.try_into().map_err(|_| KeyError::Length(chars))
}

impl Cipher {
    /// Builds a cipher from the console's EncodingAESKey and the account's appid.
    ///
    /// # Errors
    /// [`KeyError`] (`-40004`) when the key is not 43 base64 characters.
    pub fn new(encoding_aes_key: &str, appid: &str) -> Result<Self, KeyError> {
        Ok(Self::from_key(decode_key(encoding_aes_key)?, appid))
    }

    /// Builds a cipher from the 32 raw key bytes.
    pub fn from_key(key: [u8; 32], appid: &str) -> Self {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&key[..16]);
        Self { aes: Aes256::new(GenericArray::from_slice(&key)), iv, appid: appid.into() }
    }

    /// The appid this cipher checks and appends.
    pub fn appid(&self) -> &str {
        &self.appid
    }

    /// Decrypts an `Encrypt` value into the message it carries, checking the appid.
    ///
    /// # Errors
    /// [`DecryptError`]: bad base64 (`-40010`), bad block length (`-40007`), bad padding,
    /// length field or UTF-8 (`-40008`), or another account's appid (`-40005`).
    pub fn decrypt(&self, encrypt: &str) -> Result<String, DecryptError> {
        let (msg, appid) = self.open(encrypt, |found| {
            (found != self.appid.as_bytes()).then(|| printable(&String::from_utf8_lossy(found)))
        })?;
        match appid {
            Some(found) => Err(DecryptError::AppidMismatch { expected: self.appid.to_string(), found }),
            None => Ok(msg),
        }
    }

    /// Decrypts without checking the appid; returns the message and the appid found.
    ///
    /// # Errors
    /// As [`Cipher::decrypt`], except that no appid mismatch is reported.
    pub fn decrypt_any_appid(&self, encrypt: &str) -> Result<(String, String), DecryptError> {
        self.open(encrypt, |found| String::from_utf8_lossy(found).into_owned())
    }

    /// Decrypts `encrypt` into the message, and what `appid` makes of the appid bytes that
    /// follow it (read before the buffer becomes the message, so that no copy is made).
    fn open<T>(&self, encrypt: &str, appid: impl FnOnce(&[u8]) -> T) -> Result<(String, T), DecryptError> {
        let mut buf = decode_base64(crate::trim(encrypt).as_bytes())?;
        if buf.is_empty() || buf.len() % 16 != 0 {
            return Err(DecryptError::BlockLength(buf.len()));
        }
        self.cbc_decrypt(&mut buf);
        let pad = *buf.last().unwrap_or(&0);
        let pad_len = usize::from(pad);
        if pad == 0 || pad_len > PAD_BLOCK || pad_len > buf.len() {
            return Err(DecryptError::Padding { pad });
        }
        if buf[buf.len() - pad_len..].iter().any(|&b| b != pad) {
            return Err(DecryptError::Padding { pad });
        }
        buf.truncate(buf.len() - pad_len);
        if buf.len() < 20 {
            return Err(DecryptError::TooShort { len: buf.len() });
        }
        let declared = u32::from_be_bytes([buf[16], buf[17], buf[18], buf[19]]);
        let available = buf.len() - 20;
        let len = usize::try_from(declared).unwrap_or(usize::MAX);
        if len > available {
            return Err(DecryptError::Length { declared: u64::from(declared), available });
        }
        let found = appid(&buf[20 + len..]);
        // The message moved down over its header (a `drain` did the same with more steps).
        buf.copy_within(20..20 + len, 0);
        buf.truncate(len);
        let msg = String::from_utf8(buf)
            .map_err(|e| DecryptError::Utf8 { valid_up_to: e.utf8_error().valid_up_to() })?;
        Ok((msg, found))
    }

    /// Encrypts a message with the given 16 random bytes; returns the base64 `Encrypt` text.
    ///
    /// # Errors
    /// [`EncryptError::TooLong`] (`-40006`) for a message over 4 GiB.
    pub fn encrypt(&self, msg: &str, random: [u8; 16]) -> Result<String, EncryptError> {
        let mut out = String::with_capacity(self.encrypted_len(msg.len()));
        self.encrypt_into(msg, random, &mut out)?;
        Ok(out)
    }

    /// [`Cipher::encrypt`], appending the `Encrypt` text to `out` (which then needs room for
    /// [`Cipher::encrypted_len`] more bytes).
    ///
    /// # Errors
    /// [`EncryptError::TooLong`] (`-40006`) for a message over 4 GiB; `out` is unchanged.
    pub fn encrypt_into(&self, msg: &str, random: [u8; 16], out: &mut String) -> Result<(), EncryptError> {
        let len = u32::try_from(msg.len()).map_err(|_| EncryptError::TooLong(msg.len()))?;
        let body = 20 + msg.len() + self.appid.len();
        let padded = self.padded_len(msg.len());
        // The pad is in 1..=32, so it fits a byte.
        let pad = (padded - body) as u8;
        // One buffer, filled with the pad and then written over, encrypted in place, then
        // encoded straight into `out`: on the stack when the plaintext fits there (a text
        // reply's), else on the heap.
        let mut on_stack;
        let mut on_heap;
        let buf: &mut [u8] = if padded <= ENCRYPT_ON_STACK {
            on_stack = [pad; ENCRYPT_ON_STACK];
            &mut on_stack[..padded]
        } else {
            on_heap = vec![pad; padded];
            &mut on_heap
        };
        buf[..16].copy_from_slice(&random);
        buf[16..20].copy_from_slice(&len.to_be_bytes());
        buf[20..20 + msg.len()].copy_from_slice(msg.as_bytes());
        buf[20 + msg.len()..body].copy_from_slice(self.appid.as_bytes());
        self.cbc_encrypt(buf);
        encode_base64(buf, out);
        Ok(())
    }

    /// The length of the `Encrypt` text of a message of `msg_len` bytes.
    pub fn encrypted_len(&self, msg_len: usize) -> usize {
        self.padded_len(msg_len).div_ceil(3) * 4
    }

    /// The plaintext's length once padded: random (16) ‖ length (4) ‖ message ‖ appid, then
    /// PKCS#7 to [`PAD_BLOCK`] (always at least one byte of padding).
    fn padded_len(&self, msg_len: usize) -> usize {
        let body = 20 + msg_len + self.appid.len();
        body + (PAD_BLOCK - body % PAD_BLOCK)
    }

    /// CBC encryption of whole blocks in place, run by the AES backend itself: one dispatch
    /// for the buffer (`encrypt_block` chose the backend again for every block).
    fn cbc_encrypt(&self, buf: &mut [u8]) {
        self.aes.encrypt_with_backend(CbcEncrypt { prev: self.iv, buf });
    }

    /// CBC decryption of whole blocks in place, as [`Cipher::cbc_encrypt`].
    fn cbc_decrypt(&self, buf: &mut [u8]) {
        self.aes.decrypt_with_backend(CbcDecrypt { prev: self.iv, buf });
    }
}

/// CBC encryption of `buf` (whole blocks) chained from `prev`, given the backend.
struct CbcEncrypt<'b> {
    prev: [u8; 16],
    buf: &'b mut [u8],
}

impl BlockSizeUser for CbcEncrypt<'_> {
    type BlockSize = U16;
}

impl BlockClosure for CbcEncrypt<'_> {
    fn call<B: BlockBackend<BlockSize = U16>>(self, backend: &mut B) {
        // The chaining XOR a block at a time (as one 128-bit word), not a byte at a time.
        let mut prev = u128::from_ne_bytes(self.prev);
        for block in self.buf.chunks_exact_mut(16) {
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(block);
            let mut input = GenericArray::from((u128::from_ne_bytes(bytes) ^ prev).to_ne_bytes());
            backend.proc_block((&mut input).into());
            block.copy_from_slice(&input);
            prev = u128::from_ne_bytes(input.into());
        }
    }
}

/// CBC decryption of `buf` (whole blocks) chained from `prev`, given the backend.
struct CbcDecrypt<'b> {
    prev: [u8; 16],
    buf: &'b mut [u8],
}

impl BlockSizeUser for CbcDecrypt<'_> {
    type BlockSize = U16;
}

impl BlockClosure for CbcDecrypt<'_> {
    fn call<B: BlockBackend<BlockSize = U16>>(self, backend: &mut B) {
        let mut prev = u128::from_ne_bytes(self.prev);
        for block in self.buf.chunks_exact_mut(16) {
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(block);
            let current = u128::from_ne_bytes(bytes);
            let mut output = GenericArray::from(bytes);
            backend.proc_block((&mut output).into());
            block.copy_from_slice(&(u128::from_ne_bytes(output.into()) ^ prev).to_ne_bytes());
            prev = current;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const SAMPLE_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    pub(crate) const SAMPLE_APPID: &str = "wx2c2769f8efd9abc2";
    pub(crate) const SAMPLE_ENCRYPT: &str = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=";

    #[test]
    fn key_validation_names_the_problem() {
        assert_eq!(Cipher::new("short", "wx").unwrap_err(), KeyError::Length(5));
        let bad = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF!";
        assert_eq!(Cipher::new(bad, "wx").unwrap_err(), KeyError::Alphabet { position: 42 });
        assert_eq!(KeyError::Length(5).reference_code().code(), -40004);
    }

    /// Issue 16 item 16: a decrypted buffer shorter than its header says so, rather than
    /// "length field says 0 bytes but only 0 follow".
    #[test]
    fn a_buffer_shorter_than_the_header_is_named() {
        let cipher = Cipher::new(SAMPLE_KEY, SAMPLE_APPID).unwrap();
        let mut buf = [7_u8; 16];
        buf[10..].fill(6); // 10 bytes, then 6 bytes of padding
        cipher.cbc_encrypt(&mut buf);
        let encrypt = base64::engine::general_purpose::STANDARD.encode(buf);
        let err = cipher.decrypt(&encrypt).unwrap_err();
        assert_eq!(err, DecryptError::TooShort { len: 10 });
        assert_eq!(
            err.to_string(),
            "decrypted message is 10 bytes, shorter than its 20-byte header; wrong EncodingAESKey?"
        );
        assert_eq!(err.reference_code().code(), -40008);
    }

    /// Issue 16 item 16: an appid from a payload goes into log lines; its control characters
    /// are escaped and a long one is cut.
    #[test]
    fn a_found_appid_is_printable() {
        let ours = Cipher::new(SAMPLE_KEY, SAMPLE_APPID).unwrap();
        let evil = Cipher::new(SAMPLE_KEY, "wx\0\u{1b}[31mred\nline").unwrap();
        let err = ours.decrypt(&evil.encrypt("<xml/>", [3; 16]).unwrap()).unwrap_err();
        let DecryptError::AppidMismatch { found, .. } = &err else { panic!("{err:?}") };
        assert_eq!(found, "wx\\u{0}\\u{1b}[31mred\\nline");
        assert!(!err.to_string().chars().any(char::is_control), "{err}");
        let long = Cipher::new(SAMPLE_KEY, &"x".repeat(100)).unwrap();
        let err = ours.decrypt(&long.encrypt("<xml/>", [3; 16]).unwrap()).unwrap_err();
        let DecryptError::AppidMismatch { found, .. } = &err else { panic!("{err:?}") };
        assert_eq!(found.chars().count(), 65, "{found}");
    }

    /// `decode_base64` as it was: the `base64` crate alone.
    fn crate_decoded(text: &[u8]) -> Result<Vec<u8>, DecryptError> {
        LENIENT.decode(text).map_err(|e| DecryptError::Base64(e.to_string()))
    }

    fn crate_encoded(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// Base64 text and what may be done to it: nothing, its padding dropped, one character
    /// replaced (by one of the alphabet, `=`, whitespace, the URL-safe `-`/`_`, another ASCII
    /// byte or a non-ASCII one), its last character changed (non-zero trailing bits), cut
    /// short, or bytes put in the middle.
    fn mangled() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let bytes = proptest::collection::vec(any::<u8>(), 0..400);
        let odd = prop_oneof![
            Just(b'='),
            Just(b' '),
            Just(b'\n'),
            Just(b'\r'),
            Just(b'\t'),
            Just(b'-'),
            Just(b'_'),
            Just(0xe4),
            Just(0x80),
            any::<u8>(),
            proptest::sample::select(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".to_vec()
            ),
        ];
        (bytes, 0..6u8, any::<proptest::sample::Index>(), odd, 0..4usize).prop_map(
            |(bytes, how, at, odd, n)| {
                let mut text = crate_encoded(&bytes).into_bytes();
                let at = if text.is_empty() { 0 } else { at.index(text.len()) };
                match how {
                    0 => {}
                    1 => text.retain(|&b| b != b'='),
                    2 if !text.is_empty() => text[at] = odd,
                    3 => {
                        let end = text.iter().rposition(|&b| b != b'=');
                        if let Some(end) = end {
                            text[end] = if text[end] == b'B' { b'C' } else { b'B' };
                        }
                    }
                    4 => text.truncate(at),
                    _ => {
                        for _ in 0..=n {
                            text.insert(at, odd);
                        }
                    }
                }
                text
            },
        )
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// The SIMD decoder, with the crate behind it, gives the crate's bytes or the crate's
        /// error, for valid, nearly valid and broken base64 alike.
        #[test]
        fn base64_decodes_as_the_crate_did(text in mangled()) {
            proptest::prop_assert_eq!(decode_base64(&text), crate_decoded(&text));
        }

        #[test]
        fn base64_decodes_any_bytes_as_the_crate_did(text in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            proptest::prop_assert_eq!(decode_base64(&text), crate_decoded(&text));
        }

        #[test]
        fn base64_encodes_as_the_crate_did(
            prefix in "[a-z<>]{0,8}",
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
        ) {
            let mut out = prefix.clone();
            encode_base64(&bytes, &mut out);
            proptest::prop_assert_eq!(out, format!("{prefix}{}", crate_encoded(&bytes)));
        }
    }

    /// Padding as WeChat sends it (`=`, `==`, none) and without it, around the widths the
    /// SIMD code works in; whitespace inside is refused as before, around it trimmed.
    #[test]
    fn base64_padding_and_whitespace_as_before() {
        for len in 0..=100 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let padded = crate_encoded(&bytes);
            assert_eq!(decode_base64(padded.as_bytes()), Ok(bytes.clone()), "{padded}");
            let bare = padded.trim_end_matches('=');
            assert_eq!(decode_base64(bare.as_bytes()), Ok(bytes.clone()), "{bare}");
            for text in
                [format!("{padded}="), format!("{bare}="), format!(" {padded}"), format!("{padded}\n")]
            {
                assert_eq!(decode_base64(text.as_bytes()), crate_decoded(text.as_bytes()), "{text:?}");
            }
            if len > 0 {
                assert!(decode_base64(format!(" {padded}").as_bytes()).is_err());
                assert!(decode_base64(format!("{padded}=").as_bytes()).is_err());
            }
        }
        let cipher = Cipher::new(SAMPLE_KEY, SAMPLE_APPID).unwrap();
        let encrypted = cipher.encrypt("<xml>hi</xml>", [9; 16]).unwrap();
        assert_eq!(cipher.decrypt(&format!("\n {encrypted}\t")).unwrap(), "<xml>hi</xml>");
        let split = format!("{}\n{}", &encrypted[..20], &encrypted[20..]);
        assert_eq!(
            cipher.decrypt(&split).unwrap_err(),
            DecryptError::Base64("Invalid symbol 10, offset 20.".to_owned())
        );
    }

    /// `encrypt_into` as it was: the whole plaintext in one buffer, encrypted, then encoded.
    fn one_buffer_encrypted(cipher: &Cipher, msg: &str, random: [u8; 16]) -> String {
        let padded = cipher.padded_len(msg.len());
        let body = 20 + msg.len() + cipher.appid.len();
        let mut buf = Vec::with_capacity(padded);
        buf.extend_from_slice(&random);
        buf.extend_from_slice(&u32::try_from(msg.len()).unwrap().to_be_bytes());
        buf.extend_from_slice(msg.as_bytes());
        buf.extend_from_slice(cipher.appid.as_bytes());
        buf.resize(padded, (padded - body) as u8);
        cipher.cbc_encrypt(&mut buf);
        crate_encoded(&buf)
    }

    /// The plaintext encrypted on the stack gives the bytes the buffer of its own gave, for
    /// every message length up to four times the stack's room (so with every padding, on
    /// either side of the limit), with appids of several lengths (one longer than the room),
    /// appended after what `out` holds.
    #[test]
    fn encrypted_on_the_stack_as_in_a_buffer() {
        let text: String = (0..4 * ENCRYPT_ON_STACK).map(|i| char::from(b'a' + (i * 7 % 26) as u8)).collect();
        for appid in ["", "wx", SAMPLE_APPID, &"w".repeat(ENCRYPT_ON_STACK + 5)] {
            let cipher = Cipher::new(SAMPLE_KEY, appid).unwrap();
            for len in 0..=text.len() {
                let msg = &text[..len];
                let random = [len as u8; 16];
                let mut out = "<x>".to_owned();
                cipher.encrypt_into(msg, random, &mut out).unwrap();
                let expected = one_buffer_encrypted(&cipher, msg, random);
                assert_eq!(out.len(), 3 + cipher.encrypted_len(len), "{len} {appid}");
                assert!(out[3..] == expected, "message of {len} bytes, appid {appid:?}");
            }
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let cipher = Cipher::new(SAMPLE_KEY, SAMPLE_APPID).unwrap();
        let shown = format!("{cipher:?}");
        assert!(shown.contains(SAMPLE_APPID));
        assert!(!shown.contains("abcdefgh"));
    }
}
