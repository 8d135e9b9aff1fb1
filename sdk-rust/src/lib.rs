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

mod exports;
mod host;
pub mod log;
mod request;
mod response;

pub use fwasm_sdk_macros::handler;
pub use request::Request;
pub use response::Response;

/// Not public API: the code `#[handler]` expands to calls these.
#[doc(hidden)]
pub mod __private {
    pub use crate::exports::{alloc, handle};
}
