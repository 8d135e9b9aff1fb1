//! The host side of ABI v1: per-call host state and the `fwasm_v1` imports.
//!
//! Every import checks the guest's pointers against its memory and answers with a status code;
//! nothing a guest passes can make the host panic.

use fwasm_abi::{HostStatus, IMPORT_FAIL, IMPORT_LAST_ERROR, IMPORT_LOG, IMPORT_MODULE, log_level};
use wasmi::{Caller, Engine, Linker, Memory};

use crate::chaining::Chaining;
use crate::limits::{Limits, MemoryLimiter};
use crate::park::HostOp;
use crate::state::CallState;
use crate::wasi::WasiState;

/// Longest log line or failure reason kept; longer ones are cut.
const MAX_MESSAGE_BYTES: usize = 16 << 10;

/// What the host keeps for one call while its instance lives.
pub(crate) struct HostState {
    pub(crate) limiter: MemoryLimiter,
    /// Set once the instance exists; imports read guest memory through it.
    pub(crate) memory: Option<Memory>,
    /// Why the guest says it is failing (e.g. its panic message), reported with its trap.
    pub(crate) failure_reason: Option<String>,
    /// The message for the last negative status an import returned (read by `last_error`).
    pub(crate) last_error: Option<String>,
    /// Set while `fwasm_handle` runs: the only time imports may park the call.
    pub(crate) can_park: bool,
    /// The op an import just parked the call for.
    pub(crate) pending: Option<HostOp>,
    pub(crate) chaining: Chaining,
    pub(crate) state: CallState,
    pub(crate) wasi: WasiState,
}

impl HostState {
    pub(crate) fn new(
        limits: &Limits,
        chaining: Chaining,
        state: CallState,
        wasi: WasiState,
    ) -> Self {
        Self {
            limiter: MemoryLimiter::new(limits.max_memory_bytes),
            memory: None,
            failure_reason: None,
            last_error: None,
            can_park: false,
            pending: None,
            chaining,
            state,
            wasi,
        }
    }

    /// Records why an import failed and returns its status code.
    pub(crate) fn refuse(&mut self, status: HostStatus, message: impl Into<String>) -> i32 {
        self.last_error = Some(message.into());
        status.code()
    }
}

/// The guest bytes at `ptr..ptr+len`, or `OutOfBounds`.
pub(crate) fn guest_slice(memory: &[u8], ptr: i32, len: i32) -> Result<&[u8], HostStatus> {
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    let end = start.checked_add(len).ok_or(HostStatus::OutOfBounds)?;
    memory.get(start..end).ok_or(HostStatus::OutOfBounds)
}

/// The guest bytes at `ptr..ptr+len`, writable, or `OutOfBounds`.
pub(crate) fn guest_slice_mut(
    memory: &mut [u8],
    ptr: i32,
    len: i32,
) -> Result<&mut [u8], HostStatus> {
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    let end = start.checked_add(len).ok_or(HostStatus::OutOfBounds)?;
    memory.get_mut(start..end).ok_or(HostStatus::OutOfBounds)
}

/// Copies as much of `bytes` as fits into the guest buffer at `ptr..ptr+len` and returns the
/// full length, so a guest with too small a buffer learns the size it needs.
pub(crate) fn copy_out(
    caller: &mut Caller<'_, HostState>,
    bytes: &[u8],
    ptr: i32,
    len: i32,
) -> Result<usize, HostStatus> {
    let memory = caller.data().memory.ok_or(HostStatus::Unavailable)?;
    copy_into(memory.data_mut(caller), bytes, ptr, len)
}

/// [`copy_out`] into `memory`.
pub(crate) fn copy_into(
    memory: &mut [u8],
    bytes: &[u8],
    ptr: i32,
    len: i32,
) -> Result<usize, HostStatus> {
    let buffer = guest_slice_mut(memory, ptr, len)?;
    let n = buffer.len().min(bytes.len());
    buffer[..n].copy_from_slice(&bytes[..n]);
    Ok(bytes.len())
}

/// Reads guest text, cut at [`MAX_MESSAGE_BYTES`] on a character boundary.
fn guest_message(caller: &Caller<'_, HostState>, ptr: i32, len: i32) -> Result<String, HostStatus> {
    let memory = caller.data().memory.ok_or(HostStatus::Unavailable)?;
    let bytes = guest_slice(memory.data(caller), ptr, len)?;
    let text = std::str::from_utf8(bytes).map_err(|_| HostStatus::InvalidUtf8)?;
    let mut cut = text.len().min(MAX_MESSAGE_BYTES);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    Ok(text[..cut].to_string())
}

/// The status an import returns; a failure also leaves its explanation for `last_error`.
fn answer(caller: &mut Caller<'_, HostState>, import: &str, result: Result<(), HostStatus>) -> i32 {
    match result {
        Ok(()) => HostStatus::Ok.code(),
        Err(status) => caller
            .data_mut()
            .refuse(status, format!("{import}: {}", status.description())),
    }
}

/// A linker with every ABI v1 import defined. Built once per engine and shared by all calls.
pub(crate) fn linker(engine: &Engine) -> Linker<HostState> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap(
            IMPORT_MODULE,
            IMPORT_LOG,
            |mut caller: Caller<'_, HostState>, level: i32, ptr: i32, len: i32| {
                let result =
                    guest_message(&caller, ptr, len).and_then(|message| log(level, &message));
                answer(&mut caller, IMPORT_LOG, result)
            },
        )
        .expect("log is defined once");
    linker
        .func_wrap(
            IMPORT_MODULE,
            IMPORT_FAIL,
            |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| {
                let result = guest_message(&caller, ptr, len).map(|reason| {
                    caller.data_mut().failure_reason = Some(reason);
                });
                answer(&mut caller, IMPORT_FAIL, result)
            },
        )
        .expect("fail is defined once");
    linker
        .func_wrap(
            IMPORT_MODULE,
            IMPORT_LAST_ERROR,
            |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| {
                let message = caller.data().last_error.clone().unwrap_or_default();
                match copy_out(&mut caller, message.as_bytes(), ptr, len) {
                    Ok(total) => total as i32,
                    Err(status) => status.code(),
                }
            },
        )
        .expect("last_error is defined once");
    crate::chaining::define_imports(&mut linker);
    crate::publishing::define_imports(&mut linker);
    crate::state::define_imports(&mut linker);
    crate::wasi::define_imports(&mut linker);
    linker
}

/// Guest log lines become events inside the call's span.
fn log(level: i32, message: &str) -> Result<(), HostStatus> {
    match level {
        log_level::ERROR => tracing::error!(target: "fwasm::guest", "{message}"),
        log_level::WARN => tracing::warn!(target: "fwasm::guest", "{message}"),
        log_level::INFO => tracing::info!(target: "fwasm::guest", "{message}"),
        log_level::DEBUG => tracing::debug!(target: "fwasm::guest", "{message}"),
        log_level::TRACE => tracing::trace!(target: "fwasm::guest", "{message}"),
        _ => return Err(HostStatus::InvalidArgument),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_slices_are_bounds_checked_without_overflow() {
        let memory = [0u8; 16];
        assert_eq!(guest_slice(&memory, 0, 16).unwrap().len(), 16);
        assert_eq!(guest_slice(&memory, 16, 0).unwrap().len(), 0);
        assert_eq!(guest_slice(&memory, 8, 9), Err(HostStatus::OutOfBounds));
        assert_eq!(guest_slice(&memory, 17, 0), Err(HostStatus::OutOfBounds));
        // Negative i32s are high addresses, never wrap-arounds.
        assert_eq!(guest_slice(&memory, -1, 2), Err(HostStatus::OutOfBounds));
        assert_eq!(guest_slice(&memory, 4, -1), Err(HostStatus::OutOfBounds));
    }
}
