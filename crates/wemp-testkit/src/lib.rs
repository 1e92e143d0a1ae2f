#![doc = include_str!("../README.md")]

pub mod log_buffer;
pub mod platform;
pub mod redis_server;
