//! The raw `fwasm_v1` imports. Off wasm (unit tests of guest code on the build machine) they
//! fall back to stderr so guest crates can be tested natively.

#[cfg(target_arch = "wasm32")]
mod imports {
    #[link(wasm_import_module = "fwasm_v1")]
    unsafe extern "C" {
        pub fn log(level: i32, ptr: *const u8, len: usize) -> i32;
        pub fn fail(ptr: *const u8, len: usize) -> i32;
    }
}

pub(crate) fn log(level: i32, message: &str) {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host only reads `len` bytes at `ptr`, which `message` owns for the call.
    unsafe {
        imports::log(level, message.as_ptr(), message.len());
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[fwasm log {level}] {message}");
}

/// Tells the host why the call is about to trap.
pub(crate) fn fail(reason: &str) {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: as for `log`.
    unsafe {
        imports::fail(reason.as_ptr(), reason.len());
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[fwasm fail] {reason}");
}
