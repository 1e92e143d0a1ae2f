#![doc = include_str!("../README.md")]

pub mod bench;
pub mod component;
pub mod config;
pub mod doctor;
pub mod gateway;
pub mod i18n;
pub mod logview;
pub mod relay;
pub mod rules;
pub mod serve;
pub mod sim;
pub mod storage;
pub mod term;
