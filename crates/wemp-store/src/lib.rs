#![doc = include_str!("../README.md")]

pub mod dedup;
mod error;
pub mod log;
pub mod memory;
pub mod session;
pub mod token;

pub use dedup::{Claim, DedupStore};
pub use error::{Result, StoreError};
pub use log::{LogEntry, LogQuery, MessageLog};
pub use session::{SessionStore, Versioned};
pub use token::{CachedToken, Lease, TokenStore};
