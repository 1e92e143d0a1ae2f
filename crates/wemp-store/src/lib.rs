#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod component;
pub mod dedup;
mod error;
pub mod fallback;
pub mod log;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
pub mod session;
pub mod session_token;
mod spool;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod token;
pub mod writer;

pub use component::ComponentState;
pub use dedup::{Claim, DedupStore, Ticket};
pub use error::{Result, StoreError};
pub use fallback::FallbackDedupStore;
pub use log::{
    DedupOutcome, DeliveryRecord, ForwardRecord, ForwardResult, ForwardTarget, HandlerFailure, LogQuery,
    MessageLog, RecordOutcome, RejectionRecord, RequestHeaders, RequestQuery, SharedText, SinkOutcome,
    apply_retention, merge,
};
pub use session::{SessionStore, Versioned};
pub use session_token::SessionTokenStore;
pub use token::{CachedToken, Lease, TokenStore};
pub use writer::{LogWriter, LogWriterConfig, LogWriterStats, SpoolConfig};

/// What a read-only probe of a database found (`postgres::probe`, `sqlite::probe`),
/// without changing it: diagnostics must not write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaState {
    /// The schema does not exist yet: the first open creates it.
    Missing,
    /// The schema exists at this migration version.
    Version(usize),
    /// The schema exists at this version, written by a newer wemp than this one.
    Newer(usize),
}

/// Milliseconds since the Unix epoch, on this machine's clock.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn now_ms() -> i64 {
    // The one system clock (wemp_proto::clock); this name stays for the call sites.
    wemp_proto::clock::Clock::now_ms(&wemp_proto::clock::SystemClock)
}

/// A TTL in milliseconds, saturating.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn ttl_ms(ttl: std::time::Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}
