//! Injectable time and randomness for timestamps, nonces and reply encryption. The clock is
//! `wemp_proto`'s one [`Clock`] (used for `CreateTime`, reply timestamps and the freshness
//! check; deadlines use `tokio::time` and so follow a paused test clock on their own).

pub use wemp_proto::clock::{Clock, FakeClock, FixedClock, SystemClock};

/// Where encrypted replies get their nonce and 16 random prefix bytes.
pub trait NonceSource: Send + Sync + 'static {
    /// The 16 random bytes prefixed to an encrypted reply.
    fn random16(&self) -> [u8; 16];
    /// The reply envelope's `Nonce` (WeChat uses decimal digits).
    fn nonce(&self) -> String;
    /// The reply envelope's `Nonce`, written in `buf`: what wemp calls for every encrypted
    /// reply. By default [`NonceSource::nonce`], kept in `buf`; a source whose nonce is a
    /// number writes it with [`NonceBuf::number`], without a `String`.
    fn nonce_in<'b>(&self, buf: &'b mut NonceBuf) -> &'b str {
        buf.text(self.nonce())
    }
}

/// Room for a reply's nonce on the stack (see [`NonceSource::nonce_in`]): a number's decimal
/// digits, or a source's own `String`.
#[derive(Default)]
pub struct NonceBuf {
    digits: itoa::Buffer,
    text: String,
}

impl NonceBuf {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// `n` in decimal digits, written in the buffer.
    pub fn number(&mut self, n: u32) -> &str {
        self.digits.format(n)
    }

    /// `text`, kept in the buffer.
    pub fn text(&mut self, text: String) -> &str {
        self.text = text;
        &self.text
    }
}

impl std::fmt::Debug for NonceBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceBuf").finish_non_exhaustive()
    }
}

/// `rand`'s thread-local generator.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomNonce;

impl NonceSource for RandomNonce {
    /// Two 64-bit words of the generator (`rand::random::<[u8; 16]>()` drew a 32-bit word
    /// for each byte: 16 words where 4 do).
    fn random16(&self) -> [u8; 16] {
        rand::random::<u128>().to_le_bytes()
    }

    /// [`RandomNonce::nonce_in`]'s digits, as a `String`.
    fn nonce(&self) -> String {
        self.nonce_in(&mut NonceBuf::new()).to_owned()
    }

    /// A random `u32` in decimal, written without a `String` or `core::fmt`.
    fn nonce_in<'b>(&self, buf: &'b mut NonceBuf) -> &'b str {
        buf.number(rand::random())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    impl NonceSource for Fixed {
        fn random16(&self) -> [u8; 16] {
            [0; 16]
        }

        fn nonce(&self) -> String {
            "n0nce-abc".to_owned()
        }
    }

    /// A source with only `nonce` gives it through `nonce_in`; `RandomNonce` writes a random
    /// `u32`'s decimal digits, different from call to call, and its `nonce` is the same as a
    /// `String`.
    #[test]
    fn nonce_in_gives_the_source_s_nonce() {
        let mut buf = NonceBuf::new();
        assert_eq!(Fixed.nonce_in(&mut buf), "n0nce-abc");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..64 {
            let mut buf = NonceBuf::new();
            let nonce = RandomNonce.nonce_in(&mut buf);
            assert!(!nonce.is_empty() && nonce.bytes().all(|b| b.is_ascii_digit()), "{nonce}");
            assert_eq!(nonce.parse::<u32>().unwrap().to_string(), nonce);
            seen.insert(nonce.to_owned());
        }
        assert!(seen.len() > 60, "{seen:?}");
        // `nonce` gives the same kind of number, as a `String`.
        let owned: std::collections::HashSet<String> = (0..64).map(|_| RandomNonce.nonce()).collect();
        assert!(owned.len() > 60, "{owned:?}");
        for nonce in &owned {
            assert_eq!(&nonce.parse::<u32>().unwrap().to_string(), nonce);
        }
        assert_eq!(NonceBuf::new().number(u32::MAX), "4294967295");
        assert_eq!(NonceBuf::new().number(0), "0");
    }

    /// Every one of the 16 bytes varies from call to call, and no two calls give the same.
    #[test]
    fn random16_varies_in_every_byte() {
        let draws: Vec<[u8; 16]> = (0..64).map(|_| RandomNonce.random16()).collect();
        for at in 0..16 {
            let values: std::collections::HashSet<u8> = draws.iter().map(|d| d[at]).collect();
            assert!(values.len() > 32, "byte {at}: {values:?}");
        }
        let distinct: std::collections::HashSet<_> = draws.iter().collect();
        assert_eq!(distinct.len(), draws.len());
    }
}
