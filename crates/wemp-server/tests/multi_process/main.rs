//! Proofs across real processes (issue 5). This binary has no libtest harness: run without
//! `WEMP_CHILD` it is the test, and it starts copies of itself with `WEMP_CHILD` set as
//! the other processes.
//!
//! * `multi_instance`: three server processes share Redis (dedup) and PostgreSQL (message
//!   log). One message (one MsgId) is delivered to all three at once, as WeChat's retries
//!   may land on different instances: the handler runs exactly once (counted in Redis),
//!   all three answer with the same reply, and the log holds exactly one entry for it.
//! * `token_refresh`: three client processes share a `RedisTokenStore` and use the classic
//!   token endpoint (where a second fetch retires the first token). They need a token at
//!   once, then all find it expired at once: each time exactly one token request reaches
//!   the fake platform, every call succeeds, and no call gets 40001 or 42001.
//!
//! Each test prints why and passes without running when Redis or PostgreSQL
//! (`REDIS_URL`, `DATABASE_URL`) cannot be reached.

#![allow(clippy::print_stdout, clippy::print_stderr)]

#[cfg(all(feature = "redis", feature = "postgres", feature = "client"))]
mod proofs;

fn main() {
    #[cfg(all(feature = "redis", feature = "postgres", feature = "client"))]
    proofs::run();
    #[cfg(not(all(feature = "redis", feature = "postgres", feature = "client")))]
    println!("multi_process: skipped, needs the redis, postgres and client features");
}
