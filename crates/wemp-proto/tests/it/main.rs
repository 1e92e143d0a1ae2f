//! Integration tests of wemp-proto: fixtures, the official vector, properties.

mod crypto;
mod event;
mod fixtures;
mod json;
mod message;
mod props;
mod reply;
