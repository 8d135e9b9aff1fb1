//! The bodies of the exports `#[handler]` generates: memory hand-over, envelope decoding and
//! panic reporting.

use std::cell::RefCell;
use std::sync::Once;

use crate::{Request, Response};

thread_local! {
    /// The last response, kept alive until the next call so the host can read it.
    static LAST_RESPONSE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// `fwasm_alloc`: a buffer of exactly `len` bytes that `handle` takes back ownership of.
pub fn alloc(len: i32) -> i32 {
    let mut buf = Vec::<u8>::with_capacity(len.max(0) as usize);
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr as usize as i32
}

/// `fwasm_handle`: decode the request, run the user's function, leave the encoded response in
/// memory and return where it is.
pub fn handle(ptr: i32, len: i32, function: fn(Request) -> Response) -> i64 {
    install_panic_hook();
    let len = len as usize;
    // SAFETY: the host wrote `len` bytes into the buffer `alloc(len)` returned at `ptr`;
    // `Vec::with_capacity(len)` allocates exactly `len` bytes for `u8`.
    let raw = unsafe { Vec::from_raw_parts(ptr as usize as *mut u8, len, len) };
    let request = match Request::from_envelope(raw) {
        Ok(request) => request,
        Err(err) => panic!("fwasm-sdk could not decode the request envelope: {err}"),
    };
    let encoded = function(request).encode();
    LAST_RESPONSE.with_borrow_mut(|last| {
        *last = encoded;
        fwasm_abi::pack_ptr_len(last.as_ptr() as usize as u32, last.len() as u32)
    })
}

/// `fwasm_init`: the user's initialisation, with panics reported as for a call.
pub fn init(function: fn()) {
    install_panic_hook();
    function();
}

fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| crate::host::fail(&info.to_string())));
    });
}
