//! Criterion benchmarks of the memory dedup store filled to its bound, where its table no
//! longer fits in the CPU's caches: `cargo bench -p wemp-store --bench dedup`.
//!
//! Each new message is what `wemp serve` does for one delivery: a claim of a key never seen,
//! then its completion with the reply (with the claim's ticket, as the server does). A retry
//! is a claim of a key answered a moment ago.
#![allow(missing_docs)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use wemp_store::memory::MemoryDedupStore;
use wemp_store::{Claim, DedupStore};

const TTL: Duration = Duration::from_secs(60);

/// A passive text reply as the demo rules send one (230 bytes).
const REPLY: &str = "<xml><ToUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></ToUserName><FromUserName><![CDATA[gh_10f6c3c3ac5a]]></FromUserName><CreateTime>1409735670</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[ok]]></Content></xml>";

/// Keys as the server builds them: `<appid>:msg:<openid>:<MsgId>`.
struct Keys(String, usize);

impl Keys {
    fn new() -> Self {
        let prefix = "wx2c2769f8efd9abc2:msg:oyORnuP8q7ou2gfYjqLzSIWZf0rs:";
        Self(prefix.to_owned(), prefix.len())
    }

    fn key(&mut self, n: u64) -> &str {
        self.0.truncate(self.1);
        let _ = write!(self.0, "{}", 6_054_768_590_064_713_728 + n);
        &self.0
    }
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let mut group = c.benchmark_group("memory_dedup_full");
    // The default store (100 000 keys, 16 MiB): with text replies the bytes bound it (about
    // 46 000 keys), with `success` the keys.
    for (name, reply) in [("text_reply", REPLY), ("success", "success")] {
        let store = MemoryDedupStore::default();
        let mut keys = Keys::new();
        let mut n = 0u64;
        rt.block_on(async {
            // Twice the bound: full, and already evicting.
            while n < 200_000 {
                let key = keys.key(n);
                assert_eq!(store.claim(key, TTL).await.unwrap(), Claim::New);
                store.complete(key, reply, TTL).await.unwrap();
                n += 1;
            }
        });
        group.bench_function(format!("new_message/{name}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let key = keys.key(n);
                        n += 1;
                        let (claim, ticket) = store.claim_ticket(black_box(key), TTL).await.unwrap();
                        debug_assert_eq!(claim, Claim::New);
                        store.complete_claimed(key, ticket, black_box(reply), TTL).await.unwrap();
                    }
                    start.elapsed()
                })
            })
        });
        // Retries of the last thousand messages (each claim moves its key to the newest end).
        let mut back = 0u64;
        group.bench_function(format!("retry/{name}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let key = keys.key(n - 1 - back % 1000);
                        back += 1;
                        let (claim, _) = store.claim_ticket(black_box(key), TTL).await.unwrap();
                        debug_assert!(matches!(claim, Claim::Done(_)));
                        black_box(claim);
                    }
                    start.elapsed()
                })
            })
        });
        assert!(store.len() > 1000);
    }
    group.finish();
}

criterion_group!(dedup, benches);
criterion_main!(dedup);
