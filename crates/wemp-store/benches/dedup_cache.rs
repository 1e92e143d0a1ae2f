//! The memory dedup store's cache misses, for callgrind's cache simulation (`perf stat` needs
//! hardware counters that a virtual machine may not have). Not a criterion bench: it fills
//! the default store to twice its bound, then runs 100 000 new messages (claim with a
//! ticket, complete with it) inside `measure`, the only function to collect:
//!
//! ```sh
//! cargo bench -p wemp-store --bench dedup_cache --no-run   # prints the binary's path
//! valgrind --tool=callgrind --cache-sim=yes --D1=32768,8,64 --LL=1048576,16,64 \
//!     --toggle-collect='dedup_cache::measure' BINARY [text|success]
//! ```
#![allow(missing_docs)]

use std::fmt::Write as _;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use wemp_store::DedupStore;
use wemp_store::memory::MemoryDedupStore;

const TTL: Duration = Duration::from_secs(60);

/// A passive text reply as the demo rules send one (230 bytes).
const REPLY: &str = "<xml><ToUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></ToUserName><FromUserName><![CDATA[gh_10f6c3c3ac5a]]></FromUserName><CreateTime>1409735670</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[ok]]></Content></xml>";

const PREFIX: &str = "wx2c2769f8efd9abc2:msg:oyORnuP8q7ou2gfYjqLzSIWZf0rs:";

/// The memory store's futures are ready at their first poll.
fn ready<F: Future>(f: F) -> F::Output {
    match pin!(f).as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("the memory store does not wait"),
    }
}

fn messages(store: &MemoryDedupStore, key: &mut String, from: u64, to: u64, reply: &str) {
    for n in from..to {
        key.truncate(PREFIX.len());
        let _ = write!(key, "{}", 6_054_768_590_064_713_728 + n);
        let (_, ticket) = ready(store.claim_ticket(key, TTL)).unwrap();
        ready(store.complete_claimed(key, ticket, reply, TTL)).unwrap();
    }
}

#[inline(never)]
fn measure(store: &MemoryDedupStore, key: &mut String, reply: &str) {
    messages(store, key, 200_000, 300_000, reply);
}

fn main() {
    // `cargo bench` passes `--bench`; the reply kind is the first other argument.
    let success = std::env::args().skip(1).any(|a| a == "success");
    let reply = if success { "success" } else { REPLY };
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let _entered = rt.enter();
    let store = MemoryDedupStore::default();
    let mut key = PREFIX.to_owned();
    messages(&store, &mut key, 0, 200_000, reply);
    measure(&store, &mut key, reply);
    assert!(store.len() > 40_000, "{}", store.len());
}
