//! In-memory backends, always built. Bounded where they hold per-message state.

mod dedup;
mod log;
mod session;
mod token;

pub use dedup::*;
pub use log::*;
pub use session::*;
pub use token::*;
