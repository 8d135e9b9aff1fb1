//! The `fwasm` command's library half: `fwasm up` wiring and the CLI's client commands, kept
//! here so tests can drive them exactly as the binary does.

pub mod client;
pub mod up;
