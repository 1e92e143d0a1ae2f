//! In-process tests of wemp-server (no port bound, except in `e2e`).

mod accounts;
mod clock;
mod common;
#[cfg(feature = "client")]
mod cs_sink;
mod deadline;
mod e2e;
mod metrics;
mod modes;
mod observe;
#[cfg(feature = "redis")]
mod redis_outage;
mod reject;
mod router;
mod session;
mod verify;
