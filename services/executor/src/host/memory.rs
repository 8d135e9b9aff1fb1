//! Reading and writing guest memory: every pointer a guest passes is checked here, so no
//! argument can make the host read or write outside the guest's memory.

use fwasm_abi::HostStatus;
use wasmi::{Caller, Memory};

use super::{HostState, Refusal};

/// Longest guest text kept (log lines, failure reasons); longer text is cut.
pub(crate) const MAX_MESSAGE_BYTES: usize = 16 << 10;

/// A guest buffer, checked when an import is called and written when its op completes
/// (linear memory never shrinks, so it stays in bounds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuestBuf {
    pub(crate) ptr: i32,
    pub(crate) len: i32,
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

/// Copies as much of `bytes` as fits into `buf`; returns the full length.
pub(crate) fn write_guest(memory: &mut [u8], bytes: &[u8], buf: GuestBuf) -> Result<i64, Refusal> {
    copy_into(memory, bytes, buf.ptr, buf.len)
        .map(|total| total as i64)
        .map_err(|status| Refusal::new(status, "the buffer lies outside the guest's memory"))
}

/// Reads one argument of an import from guest memory: `what` names it in refusals.
pub(crate) struct Args<'a, 'c> {
    caller: &'a Caller<'c, HostState>,
    import: &'a str,
}

impl<'a, 'c> Args<'a, 'c> {
    pub(crate) fn new(caller: &'a Caller<'c, HostState>, import: &'a str) -> Self {
        Self { caller, import }
    }

    fn memory(&self) -> Result<Memory, Refusal> {
        self.caller.data().memory.ok_or_else(|| {
            Refusal::new(
                HostStatus::Unavailable,
                format!("{} called before start-up", self.import),
            )
        })
    }

    /// The bytes at `ptr..ptr+len`.
    pub(crate) fn bytes(&self, what: &str, ptr: i32, len: i32) -> Result<&'a [u8], Refusal> {
        let memory = self.memory()?;
        guest_slice(memory.data(self.caller), ptr, len).map_err(|status| {
            Refusal::new(
                status,
                format!(
                    "{}: the {what} lies outside the guest's memory",
                    self.import
                ),
            )
        })
    }

    /// The UTF-8 text at `ptr..ptr+len`.
    pub(crate) fn text(&self, what: &str, ptr: i32, len: i32) -> Result<&'a str, Refusal> {
        std::str::from_utf8(self.bytes(what, ptr, len)?).map_err(|_| {
            Refusal::new(
                HostStatus::InvalidUtf8,
                format!("{}: the {what} is not UTF-8", self.import),
            )
        })
    }

    /// A buffer the host will write into.
    pub(crate) fn buf(&self, ptr: i32, len: i32) -> Result<GuestBuf, Refusal> {
        self.bytes("buffer", ptr, len)?;
        Ok(GuestBuf { ptr, len })
    }
}

/// Guest text cut at [`MAX_MESSAGE_BYTES`] on a character boundary.
pub(crate) fn cut_message(text: &str) -> String {
    let mut cut = text.len().min(MAX_MESSAGE_BYTES);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text[..cut].to_string()
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

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let text = "é".repeat(MAX_MESSAGE_BYTES);
        let cut = cut_message(&text);
        assert!(cut.len() <= MAX_MESSAGE_BYTES && cut.chars().all(|c| c == 'é'));
    }
}
