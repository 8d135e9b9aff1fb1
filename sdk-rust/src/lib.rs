//! Write fwasm functions in Rust.
//!
//! ```ignore
//! use fwasm_sdk::{Request, Response};
//!
//! #[fwasm_sdk::handler]
//! fn handle(req: Request) -> Response {
//!     Response::ok(req.body().to_ascii_uppercase())
//! }
//! ```
//!
//! Build with `cargo build --release --target wasm32-unknown-unknown` (crate-type `cdylib`).
//! A panic fails the call and its message becomes the call's error.
//!
//! A function can call the user's other functions by name: `chain` starts a call that runs
//! concurrently, and `await_call` waits for it without holding a thread.
//!
//! ```no_run
//! use fwasm_sdk::{Error, Request, Response};
//!
//! /// Calls `shout` and `count` at once and joins their outputs.
//! fn both(req: &Request) -> Result<Vec<u8>, Error> {
//!     let shout = fwasm_sdk::chain("shout", req.body())?;
//!     let count = fwasm_sdk::chain("count", req.body())?;
//!     let mut out = fwasm_sdk::await_call(shout)?;
//!     out.extend(fwasm_sdk::await_call(count)?);
//!     Ok(out)
//! }
//!
//! #[fwasm_sdk::handler]
//! fn handle(req: Request) -> Response {
//!     match both(&req) {
//!         Ok(out) => Response::ok(out),
//!         Err(err) => Response::new(500, err.to_string()),
//!     }
//! }
//! ```
//!
//! Start-up that every call would repeat (a table to build, a file to parse) goes in an
//! initialisation: it runs once per executor, and every call starts from the memory it left,
//! never from what an earlier call wrote. It may log, but not chain or use global state.
//!
//! ```ignore
//! use std::sync::OnceLock;
//!
//! static SQUARES: OnceLock<Vec<u64>> = OnceLock::new();
//!
//! #[fwasm_sdk::init]
//! fn init() {
//!     SQUARES.get_or_init(|| (0..1_000_000).map(|n| n * n).collect());
//! }
//! ```
//!
//! Functions of one user share [`state`]: byte values by key. Each executor works on a local
//! copy that `push` publishes and `pull` refreshes; a global lock keeps the read-modify-write
//! below whole across executors.
//!
//! ```no_run
//! use fwasm_sdk::{Error, state};
//!
//! /// Adds one to the user's "hits" counter, a decimal number, and returns the new count.
//! fn hit() -> Result<u64, Error> {
//!     let _lock = state::lock_global_write("hits")?; // released when dropped
//!     state::pull("hits")?;
//!     let hits: u64 = String::from_utf8_lossy(&state::get("hits")?)
//!         .parse()
//!         .unwrap_or(0);
//!     state::set("hits", (hits + 1).to_string().as_bytes())?;
//!     state::push("hits")?;
//!     Ok(hits + 1)
//! }
//! ```

mod buffer;
mod call_id;
mod chain;
mod error;
mod exports;
mod host;
pub mod http;
pub mod log;
mod publish;
mod request;
mod response;
pub mod sidecar;
pub mod state;

pub use call_id::CallId;
pub use chain::{await_call, await_call_timeout, chain};
pub use error::Error;
pub use fwasm_sdk_macros::{handler, init};
pub use publish::publish;
pub use request::Request;
pub use response::Response;

/// Not public API: the code `#[handler]` expands to calls these.
#[doc(hidden)]
pub mod __private {
    pub use crate::exports::{alloc, handle, init};
}
