//! The `fwasm` command's library half: `fwasm up` wiring, the CLI's client commands and
//! `fwasm build`, kept here so tests can drive them exactly as the binary does.

pub mod auth;
pub mod bench;
pub mod build;
pub mod build_rust;
pub mod client;
pub mod config;
pub mod new;
pub mod serve;
pub mod up;
