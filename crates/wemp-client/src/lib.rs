#![doc = include_str!("../README.md")]

mod client;
mod clock;
mod error;
pub mod media;
pub mod token;

pub use client::{Client, ClientBuilder, DEFAULT_BASE_URL, DEFAULT_MP_BASE_URL, DEFAULT_OPEN_BASE_URL};
pub use clock::{Clock, FakeClock, SystemClock};
pub use error::{ApiError, ErrCode, Error, Result};
pub use token::{AccessToken, ClassicToken, RemoteToken, RetryPolicy, StableToken, TokenPolicy, TokenProvider};
pub use wemp_store::{TokenStore, memory::MemoryTokenStore};
