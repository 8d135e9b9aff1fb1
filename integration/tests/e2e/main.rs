//! End-to-end tests: the platform started for real on 127.0.0.1:0 and driven over its sockets.

mod async_api;
mod bad_input;
mod c_guests;
mod chaining;
mod cli_client;
mod commands;
mod faasmctl;
mod files;
mod http_api;
mod isolation;
mod managing;
mod mpi;
mod outbound;
mod proxy_wasm;
mod public_grpc;
mod pubsub;
mod python;
mod quotas;
mod recording_sidecar;
mod restart;
mod sidecar;
mod sidecar_mode;
mod state;
mod support;
mod tls;
mod tokens;
