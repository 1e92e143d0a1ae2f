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
}

/// `rand`'s thread-local generator.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomNonce;

impl NonceSource for RandomNonce {
    fn random16(&self) -> [u8; 16] {
        rand::random()
    }

    fn nonce(&self) -> String {
        rand::random::<u32>().to_string()
    }
}
