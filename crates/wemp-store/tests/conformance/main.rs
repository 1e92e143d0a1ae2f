//! One conformance suite per store trait, run against every backend.
//!
//! Each suite takes two handles `a` and `b` to the same storage: for shared backends they
//! are separate connections (as two instances would have), for memory the same store.

mod suite;

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;
