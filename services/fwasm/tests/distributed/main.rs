//! Distributed mode for real: every service its own `fwasm` process on loopback, talking
//! gRPC, with state on a real redis-server or the embedded store.

mod config;
mod console;
mod harness;
mod load;
mod mpi;
mod observability;
mod restart;
mod retry;
mod sdks;
mod snapshots;
mod support;
