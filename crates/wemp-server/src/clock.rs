//! Injectable time and randomness for timestamps, nonces and reply encryption.

use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock used for `CreateTime`, reply timestamps and the freshness check.
///
/// Deadlines use `tokio::time` and so follow a paused test clock on their own.
pub trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch.
    fn now_unix(&self) -> i64;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
    }
}

/// A clock stuck at one instant, for tests.
#[derive(Clone, Copy, Debug)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now_unix(&self) -> i64 {
        self.0
    }
}

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
