#![doc = include_str!("../README.md")]

pub mod bench;
pub mod config;
pub mod rules;
pub mod sim;
pub mod term;
