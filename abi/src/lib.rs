//! The function-wasm ABI, version 1: the contract between the fwasm host and a guest module.
//!
//! This crate holds what both sides must agree on byte for byte: export and import names,
//! host status codes, and the request/response envelopes. It is `no_std` + `alloc` so the
//! same code runs inside guests and in the host. The prose specification is `abi/ABI.md`.

#![no_std]

extern crate alloc;

mod names;
mod request;
mod response;
mod status;
mod wire;

pub use names::*;
pub use request::{Header, Request};
pub use response::Response;
pub use status::HostStatus;
pub use wire::DecodeError;

/// Packs a guest pointer and length into the `i64` that `fwasm_handle` returns.
pub fn pack_ptr_len(ptr: u32, len: u32) -> i64 {
    (((ptr as u64) << 32) | len as u64) as i64
}

/// Splits the `i64` returned by `fwasm_handle` into a guest pointer and length.
pub fn unpack_ptr_len(packed: i64) -> (u32, u32) {
    let packed = packed as u64;
    ((packed >> 32) as u32, packed as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ptr_len_packing_round_trips_at_the_extremes() {
        for (ptr, len) in [(0, 0), (1, 2), (u32::MAX, u32::MAX), (0x8000_0000, 7)] {
            assert_eq!(unpack_ptr_len(pack_ptr_len(ptr, len)), (ptr, len));
        }
    }
}
