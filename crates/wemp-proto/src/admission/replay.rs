//! A bounded memory of the `(timestamp, nonce)` pairs of admitted plain-mode requests.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher as _;

use sha1::{Digest, Sha1};

/// What [`ReplayCache::check`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Replay {
    /// The pair was not seen within the window: now remembered.
    Fresh,
    /// The same pair with the same body: a retry of the same request (deduplication
    /// answers it).
    Repeated,
    /// The same pair with **another** body: someone reuses a captured `signature`.
    OtherBody,
}

/// A pair's key: a 128-bit fingerprint of the account, `timestamp` and `nonce` (two SipHash
/// passes under keys drawn for this cache), 16 bytes where three strings took a few hundred.
/// The sender chooses `timestamp` and `nonce`, which is why the hash is keyed: without the
/// keys, no one can make two pairs collide.
type Key = u128;

/// Remembers, for the freshness window, the account, `timestamp` and `nonce` of each
/// admitted plain-mode request with a digest of its body, so that a captured plain-mode
/// URL cannot carry another body (issue 16 item 7). Sans-IO: the time comes in as an
/// argument. Memory is bounded: at most `capacity` entries (the oldest go first), and only
/// requests that passed the `signature` check are remembered, so unauthenticated traffic
/// cannot fill it.
///
/// It protects one process: a forged body sent to another instance behind the same URL is
/// not seen here (see docs/protocol.md, "What plain mode can and cannot promise").
///
/// ```
/// use wemp_proto::admission::{Replay, ReplayCache};
/// let mut cache = ReplayCache::new(300, 10_000);
/// assert_eq!(cache.check("wx1", "1700000000", "42", b"<xml>a</xml>", 1_700_000_000), Replay::Fresh);
/// assert_eq!(cache.check("wx1", "1700000000", "42", b"<xml>a</xml>", 1_700_000_001), Replay::Repeated);
/// assert_eq!(cache.check("wx1", "1700000000", "42", b"<xml>b</xml>", 1_700_000_002), Replay::OtherBody);
/// ```
#[derive(Debug)]
pub struct ReplayCache {
    window: i64,
    capacity: usize,
    seen: HashMap<Key, [u8; 20]>,
    order: VecDeque<(i64, Key)>,
    keys: [RandomState; 2],
}

impl ReplayCache {
    /// Remembers pairs for `window_secs` (use the freshness window) and at most `capacity`
    /// of them.
    pub fn new(window_secs: u64, capacity: usize) -> Self {
        Self {
            window: i64::try_from(window_secs).unwrap_or(i64::MAX),
            capacity: capacity.max(1),
            seen: HashMap::new(),
            order: VecDeque::new(),
            keys: [RandomState::new(), RandomState::new()],
        }
    }

    /// How many pairs are remembered now.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Checks (and on [`Replay::Fresh`] remembers) one admitted request at `now` (Unix
    /// seconds).
    pub fn check(&mut self, appid: &str, timestamp: &str, nonce: &str, body: &[u8], now: i64) -> Replay {
        // Forget what is older than the window (twice over: a timestamp may be up to a
        // window ahead of the clock).
        while let Some((at, _)) = self.order.front() {
            if now.saturating_sub(*at) <= self.window.saturating_mul(2) && self.order.len() < self.capacity {
                break;
            }
            if let Some((_, key)) = self.order.pop_front() {
                self.seen.remove(&key);
            }
        }
        let digest: [u8; 20] = Sha1::digest(body).as_slice().try_into().unwrap_or_default();
        let pair = (appid, timestamp, nonce);
        let key = u128::from(self.keys[0].hash_one(pair)) << 64 | u128::from(self.keys[1].hash_one(pair));
        match self.seen.get(&key) {
            Some(d) if *d == digest => Replay::Repeated,
            Some(_) => Replay::OtherBody,
            None => {
                self.seen.insert(key, digest);
                self.order.push_back((now, key));
                Replay::Fresh
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_after_the_window_and_beyond_the_capacity() {
        let mut c = ReplayCache::new(300, 3);
        assert_eq!(c.check("a", "1", "n", b"x", 1000), Replay::Fresh);
        assert_eq!(c.check("a", "1", "n", b"y", 1600), Replay::OtherBody);
        assert_eq!(c.check("a", "1", "n", b"y", 1601), Replay::Fresh, "601 s later it is forgotten");
        // Another account's pair is another pair.
        assert_eq!(c.check("b", "1", "n", b"z", 1601), Replay::Fresh);
        for i in 0..10 {
            c.check("a", "2", &i.to_string(), b"x", 1602);
        }
        assert!(c.len() <= 3, "{}", c.len());
    }

    #[test]
    fn the_three_parts_stay_apart() {
        // The same characters split differently are different pairs.
        let mut c = ReplayCache::new(300, 100);
        assert_eq!(c.check("wx1", "17", "00", b"x", 1000), Replay::Fresh);
        assert_eq!(c.check("wx1", "170", "0", b"y", 1000), Replay::Fresh);
        assert_eq!(c.check("wx11", "7", "00", b"z", 1000), Replay::Fresh);
        assert_eq!(c.check("wx1", "17", "00", b"x", 1001), Replay::Repeated);
        assert_eq!(c.len(), 3);
    }
}
