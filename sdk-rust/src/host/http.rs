//! The raw `fwasm_http` imports: outbound HTTP requests. Off wasm they report that they need
//! the host.

#[cfg(target_arch = "wasm32")]
mod imports {
    #[link(wasm_import_module = "fwasm_http")]
    unsafe extern "C" {
        pub fn send(request: *const u8, request_len: usize) -> i64;
        pub fn answer(buf: *mut u8, buf_len: usize) -> i64;
    }
}

/// Sends a request envelope: the length of the response envelope, or a negative status.
pub(crate) fn send(envelope: &[u8]) -> i64 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host only reads the envelope, which the argument owns for the call.
    unsafe {
        imports::send(envelope.as_ptr(), envelope.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = envelope;
        fwasm_abi::HostStatus::Unavailable.code().into()
    }
}

/// Copies the last response envelope into `buf`: its whole length.
pub(crate) fn answer(buf: &mut [u8]) -> i64 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host writes at most `buf.len()` bytes into `buf`.
    unsafe {
        imports::answer(buf.as_mut_ptr(), buf.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = buf;
        fwasm_abi::HostStatus::Unavailable.code().into()
    }
}
