//! The wall clock, as one injectable trait for every crate that reads the time.
//!
//! The protocol functions of this crate take the time as an argument; the crates that run
//! them (the server's admission and reply timestamps, the client's token expiry) read it
//! through a [`Clock`], so tests can stop or move time. One trait, with both units WeChat
//! uses: milliseconds ([`Clock::now_ms`]) and seconds ([`Clock::now_unix`], `CreateTime` and
//! signature timestamps).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// A source of the current time.
///
/// Any `Fn() -> i64` returning milliseconds since the Unix epoch is a clock, so a test can
/// read a fake platform's clock directly.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Seconds since the Unix epoch (rounded down).
    fn now_unix(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

impl<F: Fn() -> i64 + Send + Sync + 'static> Clock for F {
    fn now_ms(&self) -> i64 {
        self()
    }
}

/// The system clock (the default everywhere).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A clock stuck at one instant, given in seconds since the Unix epoch; for tests.
///
/// ```
/// use wemp_proto::clock::{Clock, FixedClock};
/// assert_eq!(FixedClock(1_700_000_000).now_unix(), 1_700_000_000);
/// assert_eq!(FixedClock(1_700_000_000).now_ms(), 1_700_000_000_000);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.saturating_mul(1000)
    }

    fn now_unix(&self) -> i64 {
        self.0
    }
}

/// A clock that moves only when told to; clones share the time.
///
/// ```
/// use std::time::Duration;
/// use wemp_proto::clock::{Clock, FakeClock};
/// let clock = FakeClock::at_ms(1_000);
/// clock.advance(Duration::from_secs(2));
/// assert_eq!((clock.now_ms(), clock.now_unix()), (3_000, 3));
/// ```
#[derive(Clone, Debug, Default)]
pub struct FakeClock(Arc<AtomicI64>);

impl FakeClock {
    /// A clock showing `ms`.
    pub fn at_ms(ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(ms)))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX), Ordering::SeqCst);
    }

    /// Sets the clock.
    pub fn set_ms(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_down_even_before_the_epoch() {
        assert_eq!(FakeClock::at_ms(1_999).now_unix(), 1);
        assert_eq!(FakeClock::at_ms(-1).now_unix(), -1);
        let f = || 42_123;
        assert_eq!((f.now_ms(), f.now_unix()), (42_123, 42));
        let system = SystemClock;
        assert!(system.now_unix() > 1_600_000_000);
        assert_eq!(system.now_unix(), system.now_ms() / 1000);
    }
}
