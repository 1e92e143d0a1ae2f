#![doc = include_str!("../README.md")]

pub mod platform;
pub mod redis_server;
