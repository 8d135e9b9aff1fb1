//! The state imports, one safe function each. Every one names a key, which the host only reads
//! (it copies what it keeps), so borrowing the `&str` for the call is enough. Off wasm they
//! all return `Unavailable`, which `last_error` explains.

#[cfg(target_arch = "wasm32")]
use super::imports;

/// Off wasm: the status every state import returns.
#[cfg(not(target_arch = "wasm32"))]
fn no_host() -> i32 {
    fwasm_abi::HostStatus::Unavailable.code()
}

/// Copies the start of the value into `buf`; its full size or a negative status.
pub(crate) fn get(key: &str, buf: &mut [u8]) -> i64 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host reads the key and writes at most `buf.len()` bytes at `buf`, which is
    // borrowed mutably.
    unsafe {
        imports::state_get(key.as_ptr(), key.len(), buf.as_mut_ptr(), buf.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (key, buf);
        no_host().into()
    }
}

/// Fills `buf` with the bytes at `offset`; `buf.len()` or a negative status.
pub(crate) fn get_offset(key: &str, offset: i64, buf: &mut [u8]) -> i64 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: as for `get`.
    unsafe {
        imports::state_get_offset(key.as_ptr(), key.len(), offset, buf.as_mut_ptr(), buf.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (key, offset, buf);
        no_host().into()
    }
}

/// The value's size or a negative status.
pub(crate) fn size(key: &str) -> i64 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host only reads the key.
    unsafe {
        imports::state_size(key.as_ptr(), key.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = key;
        no_host().into()
    }
}

pub(crate) fn set(key: &str, value: &[u8]) -> i32 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host only reads the key and the value, which the caller owns for the call.
    unsafe {
        imports::state_set(key.as_ptr(), key.len(), value.as_ptr(), value.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (key, value);
        no_host()
    }
}

pub(crate) fn set_offset(key: &str, offset: i64, bytes: &[u8]) -> i32 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: as for `set`.
    unsafe {
        imports::state_set_offset(key.as_ptr(), key.len(), offset, bytes.as_ptr(), bytes.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (key, offset, bytes);
        no_host()
    }
}

pub(crate) fn append(key: &str, element: &[u8]) -> i32 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: as for `set`.
    unsafe {
        imports::state_append(key.as_ptr(), key.len(), element.as_ptr(), element.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (key, element);
        no_host()
    }
}

/// Copies the start of the encoded append list into `buf`; its full length or a negative status.
pub(crate) fn read_appended(key: &str, buf: &mut [u8]) -> i64 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: as for `get`.
    unsafe {
        imports::state_read_appended(key.as_ptr(), key.len(), buf.as_mut_ptr(), buf.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (key, buf);
        no_host().into()
    }
}

pub(crate) fn clear_appended(key: &str) -> i32 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host only reads the key.
    unsafe {
        imports::state_clear_appended(key.as_ptr(), key.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = key;
        no_host()
    }
}

pub(crate) fn push(key: &str) -> i32 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host only reads the key.
    unsafe {
        imports::state_push(key.as_ptr(), key.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = key;
        no_host()
    }
}

pub(crate) fn pull(key: &str) -> i32 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host only reads the key.
    unsafe {
        imports::state_pull(key.as_ptr(), key.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = key;
        no_host()
    }
}

pub(crate) fn delete(key: &str) -> i32 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host only reads the key.
    unsafe {
        imports::state_delete(key.as_ptr(), key.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = key;
        no_host()
    }
}

/// Waits for the lock `mode` (a `fwasm_abi::lock_mode`) on the key.
pub(crate) fn lock(key: &str, mode: i32) -> i32 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host only reads the key.
    unsafe {
        imports::state_lock(key.as_ptr(), key.len(), mode)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (key, mode);
        no_host()
    }
}

pub(crate) fn unlock(key: &str, mode: i32) -> i32 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host only reads the key.
    unsafe {
        imports::state_unlock(key.as_ptr(), key.len(), mode)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        #[cfg(test)]
        UNLOCKS.with_borrow_mut(|unlocks| unlocks.push((key.to_string(), mode)));
        let _ = (key, mode);
        no_host()
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
thread_local! {
    /// Every `unlock` this test thread made, so tests can see what a lock guard releases.
    pub(crate) static UNLOCKS: std::cell::RefCell<Vec<(String, i32)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}
