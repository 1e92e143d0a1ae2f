#![doc = include_str!("../README.md")]

pub mod api;
#[cfg(feature = "callback")]
pub mod callback;
mod client;
pub mod component;
mod error;
pub mod proxy;
mod serde_util;
pub mod token;
pub mod wecom;

pub use api::kf::ReplyDelivery;
pub use client::{
    Client, ClientBuilder, DEFAULT_BASE_URL, DEFAULT_MP_BASE_URL, DEFAULT_OPEN_BASE_URL,
    DEFAULT_WECOM_BASE_URL, MediaFile, Upload,
};
pub use error::{ApiError, ErrCode, Error, Lifts, Limit, Result};
pub use token::{
    AccessToken, ClassicToken, RemoteToken, RetryPolicy, StableToken, TokenPolicy, TokenProvider, WecomToken,
};
pub use wemp_proto::clock::{Clock, FakeClock, SystemClock};
pub use wemp_store::{CachedToken, TokenStore, memory::MemoryTokenStore};
