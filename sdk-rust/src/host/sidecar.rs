//! The raw `fwasm_sidecar` imports: requests to the Layotto or Dapr sidecar beside the
//! executor. Off wasm they report that they need the host.

#[cfg(target_arch = "wasm32")]
mod imports {
    #[link(wasm_import_module = "fwasm_sidecar")]
    unsafe extern "C" {
        pub fn get_state(a: *const u8, a_len: usize, b: *const u8, b_len: usize) -> i64;
        pub fn save_state(
            a: *const u8,
            a_len: usize,
            b: *const u8,
            b_len: usize,
            data: *const u8,
            data_len: usize,
        ) -> i32;
        pub fn delete_state(a: *const u8, a_len: usize, b: *const u8, b_len: usize) -> i32;
        pub fn invoke(
            a: *const u8,
            a_len: usize,
            b: *const u8,
            b_len: usize,
            data: *const u8,
            data_len: usize,
        ) -> i64;
        pub fn publish(
            a: *const u8,
            a_len: usize,
            b: *const u8,
            b_len: usize,
            data: *const u8,
            data_len: usize,
        ) -> i32;
        pub fn invoke_binding(
            a: *const u8,
            a_len: usize,
            b: *const u8,
            b_len: usize,
            data: *const u8,
            data_len: usize,
        ) -> i64;
        pub fn get_secret(a: *const u8, a_len: usize, b: *const u8, b_len: usize) -> i64;
        pub fn answer(buf: *mut u8, buf_len: usize) -> i64;
    }
}

/// The sidecar request an import makes.
#[derive(Clone, Copy)]
pub(crate) enum Op {
    GetState,
    SaveState,
    DeleteState,
    Invoke,
    Publish,
    InvokeBinding,
    GetSecret,
}

/// Sends a request of two texts and data (ignored by requests without data): the length of
/// the answer (0 for requests that answer nothing) or a negative status.
pub(crate) fn request(op: Op, first: &str, second: &str, data: &[u8]) -> i64 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host only reads the three ranges, which the arguments own for the call.
    unsafe {
        let (a, a_len, b, b_len) = (first.as_ptr(), first.len(), second.as_ptr(), second.len());
        let (d, d_len) = (data.as_ptr(), data.len());
        match op {
            Op::GetState => imports::get_state(a, a_len, b, b_len),
            Op::SaveState => imports::save_state(a, a_len, b, b_len, d, d_len).into(),
            Op::DeleteState => imports::delete_state(a, a_len, b, b_len).into(),
            Op::Invoke => imports::invoke(a, a_len, b, b_len, d, d_len),
            Op::Publish => imports::publish(a, a_len, b, b_len, d, d_len).into(),
            Op::InvokeBinding => imports::invoke_binding(a, a_len, b, b_len, d, d_len),
            Op::GetSecret => imports::get_secret(a, a_len, b, b_len),
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (op, first, second, data);
        fwasm_abi::HostStatus::Unavailable.code().into()
    }
}

/// Copies the start of the last answer into `buf`; returns its full length.
pub(crate) fn answer(buf: &mut [u8]) -> i64 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host writes at most `buf.len()` bytes at `buf`, which is borrowed mutably.
    unsafe {
        imports::answer(buf.as_mut_ptr(), buf.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = buf;
        0
    }
}
