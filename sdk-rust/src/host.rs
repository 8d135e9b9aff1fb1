//! The raw `fwasm_v1` imports. Off wasm (unit tests of guest code on the build machine) they
//! fall back to stderr, and chaining and state report that they need the host, so guest crates
//! can be tested natively.

pub(crate) mod http;
pub(crate) mod sidecar;
pub(crate) mod state;

#[cfg(target_arch = "wasm32")]
mod imports {
    #[link(wasm_import_module = "fwasm_v1")]
    unsafe extern "C" {
        pub fn log(level: i32, ptr: *const u8, len: usize) -> i32;
        pub fn fail(ptr: *const u8, len: usize) -> i32;
        pub fn chain(
            name_ptr: *const u8,
            name_len: usize,
            input_ptr: *const u8,
            input_len: usize,
        ) -> i64;
        pub fn publish(
            topic_ptr: *const u8,
            topic_len: usize,
            data_ptr: *const u8,
            data_len: usize,
        ) -> i32;
        // `await` is a Rust keyword, so the import gets another name here.
        #[link_name = "await"]
        pub fn await_call(call_id: i64, timeout_ms: i32) -> i32;
        pub fn call_output(call_id: i64, buf_ptr: *mut u8, buf_len: usize) -> i64;
        pub fn last_error(buf_ptr: *mut u8, buf_len: usize) -> i32;

        // State. Keys are (ptr, len) text; offsets are i64 as the ABI passes them.
        pub fn state_get(
            key_ptr: *const u8,
            key_len: usize,
            buf_ptr: *mut u8,
            buf_len: usize,
        ) -> i64;
        pub fn state_get_offset(
            key_ptr: *const u8,
            key_len: usize,
            offset: i64,
            buf_ptr: *mut u8,
            buf_len: usize,
        ) -> i64;
        pub fn state_size(key_ptr: *const u8, key_len: usize) -> i64;
        pub fn state_set(
            key_ptr: *const u8,
            key_len: usize,
            val_ptr: *const u8,
            val_len: usize,
        ) -> i32;
        pub fn state_set_offset(
            key_ptr: *const u8,
            key_len: usize,
            offset: i64,
            val_ptr: *const u8,
            val_len: usize,
        ) -> i32;
        pub fn state_append(
            key_ptr: *const u8,
            key_len: usize,
            val_ptr: *const u8,
            val_len: usize,
        ) -> i32;
        pub fn state_read_appended(
            key_ptr: *const u8,
            key_len: usize,
            buf_ptr: *mut u8,
            buf_len: usize,
        ) -> i64;
        pub fn state_clear_appended(key_ptr: *const u8, key_len: usize) -> i32;
        pub fn state_push(key_ptr: *const u8, key_len: usize) -> i32;
        pub fn state_pull(key_ptr: *const u8, key_len: usize) -> i32;
        pub fn state_delete(key_ptr: *const u8, key_len: usize) -> i32;
        pub fn state_lock(key_ptr: *const u8, key_len: usize, mode: i32) -> i32;
        pub fn state_unlock(key_ptr: *const u8, key_len: usize, mode: i32) -> i32;
    }
}

/// What `last_error` explains off wasm: only chaining and state fail there, both for want of
/// the host.
#[cfg(not(target_arch = "wasm32"))]
const NATIVE_ERROR: &str = "this needs the fwasm host";

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

/// Starts a call of `function`: its id (> 0) or a negative status.
pub(crate) fn chain(function: &str, input: &[u8]) -> i64 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host only reads the two ranges, which `function` and `input` own for the call.
    unsafe {
        imports::chain(
            function.as_ptr(),
            function.len(),
            input.as_ptr(),
            input.len(),
        )
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (function, input);
        fwasm_abi::HostStatus::Unavailable.code().into()
    }
}

/// Publishes an event: how many functions it started (>= 0) or a negative status.
pub(crate) fn publish(topic: &str, data: &[u8]) -> i32 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host only reads the two ranges, which `topic` and `data` own for the call.
    unsafe {
        imports::publish(topic.as_ptr(), topic.len(), data.as_ptr(), data.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (topic, data);
        fwasm_abi::HostStatus::Unavailable.code()
    }
}

/// Waits for a call: 0 = it succeeded, > 0 = its failure code, < 0 = a status.
pub(crate) fn await_call(call_id: i64, timeout_ms: i32) -> i32 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: no pointers are passed.
    unsafe {
        imports::await_call(call_id, timeout_ms)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (call_id, timeout_ms);
        fwasm_abi::HostStatus::Unavailable.code()
    }
}

/// Copies the start of an awaited call's output (or failure reason) into `buf`; returns its
/// full length or a negative status.
pub(crate) fn call_output(call_id: i64, buf: &mut [u8]) -> i64 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host writes at most `buf.len()` bytes at `buf`, which is borrowed mutably.
    unsafe {
        imports::call_output(call_id, buf.as_mut_ptr(), buf.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (call_id, buf);
        fwasm_abi::HostStatus::NotFound.code().into()
    }
}

/// Copies the start of the message for the last negative status into `buf`; returns its full
/// length (0 when there is none).
pub(crate) fn last_error(buf: &mut [u8]) -> i32 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: as for `call_output`.
    unsafe {
        imports::last_error(buf.as_mut_ptr(), buf.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let n = buf.len().min(NATIVE_ERROR.len());
        buf[..n].copy_from_slice(&NATIVE_ERROR.as_bytes()[..n]);
        NATIVE_ERROR.len() as i32
    }
}
