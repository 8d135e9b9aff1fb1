//! State: byte values by key, shared by the calls of one user's functions.
//!
//! Each executor keeps a local copy of the values its calls use. Reads and writes work on that
//! copy (the first read of a key on an executor fetches it); `push` makes the local copy the
//! global value every executor sees, and `pull` replaces the local copy with the global value.
//! Append lists are separate, global and need no push. A missing key reads as empty.
//!
//! Keys are 1 to 256 bytes of text without control characters, and belong to the calling
//! function's user: a function cannot name another user's keys.

mod lock;

use fwasm_abi::HostStatus;

pub use lock::{StateLock, lock_global_read, lock_global_write, lock_read, lock_write};

use crate::buffer::read_sized;
use crate::{Error, host};

/// The whole value (empty for a missing key).
pub fn get(key: &str) -> Result<Vec<u8>, Error> {
    read_sized(|buf| host::state::get(key, buf)).map_err(Error::from_status)
}

/// The `len` bytes at `offset`. A range running past the end of the value is refused with
/// `HostStatus::InvalidArgument`.
pub fn get_offset(key: &str, offset: u64, len: usize) -> Result<Vec<u8>, Error> {
    let offset = raw_offset(offset)?;
    let mut buf = vec![0u8; len];
    match host::state::get_offset(key, offset, &mut buf) {
        code if code < 0 => Err(Error::from_status(code)),
        _ => Ok(buf),
    }
}

/// The value's size in bytes (0 for a missing key).
pub fn size(key: &str) -> Result<u64, Error> {
    match host::state::size(key) {
        code if code < 0 => Err(Error::from_status(code)),
        size => Ok(size as u64),
    }
}

/// Replaces the local copy of the value; `push` publishes it.
pub fn set(key: &str, value: &[u8]) -> Result<(), Error> {
    status(host::state::set(key, value))
}

/// Writes `bytes` into the local copy at `offset`, growing it with zero bytes if needed.
pub fn set_offset(key: &str, offset: u64, bytes: &[u8]) -> Result<(), Error> {
    status(host::state::set_offset(key, raw_offset(offset)?, bytes))
}

/// Adds `element` at the end of the key's append list (global at once; no push needed).
pub fn append(key: &str, element: &[u8]) -> Result<(), Error> {
    status(host::state::append(key, element))
}

/// The elements of the key's append list, oldest first.
pub fn read_appended(key: &str) -> Result<Vec<Vec<u8>>, Error> {
    let encoded =
        read_sized(|buf| host::state::read_appended(key, buf)).map_err(Error::from_status)?;
    decode_appended(&encoded)
}

/// Empties the key's append list; its value stays.
pub fn clear_appended(key: &str) -> Result<(), Error> {
    status(host::state::clear_appended(key))
}

/// Makes this executor's local copy the global value.
pub fn push(key: &str) -> Result<(), Error> {
    status(host::state::push(key))
}

/// Replaces this executor's local copy with the global value.
pub fn pull(key: &str) -> Result<(), Error> {
    status(host::state::pull(key))
}

/// Removes the value and the append list, locally and globally.
pub fn delete(key: &str) -> Result<(), Error> {
    status(host::state::delete(key))
}

/// The result of an import that returns 0 or a negative status.
fn status(code: i32) -> Result<(), Error> {
    if code < 0 {
        Err(Error::from_status(code.into()))
    } else {
        Ok(())
    }
}

/// The ABI passes offsets as `i64`; a larger one is past the end of any value there can be.
fn raw_offset(offset: u64) -> Result<i64, Error> {
    i64::try_from(offset).map_err(|_| Error::Host {
        status: HostStatus::InvalidArgument,
        message: format!("state offset {offset} is larger than the largest the ABI takes"),
    })
}

/// Splits `state_read_appended`'s encoding: per element, a u32 little-endian length and then
/// that many bytes. A host that breaks it gets an error, not a panic.
fn decode_appended(mut encoded: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let mut elements = Vec::new();
    while !encoded.is_empty() {
        let malformed = |what: String| Error::Host {
            status: HostStatus::Unavailable,
            message: format!(
                "the host sent a malformed append list: element {} {what}",
                elements.len()
            ),
        };
        let Some((len, rest)) = encoded.split_first_chunk::<4>() else {
            return Err(malformed(format!(
                "has {} bytes for its 4-byte length",
                encoded.len()
            )));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if len > rest.len() {
            return Err(malformed(format!(
                "claims {len} bytes but {} are left",
                rest.len()
            )));
        }
        let (element, rest) = rest.split_at(len);
        elements.push(element.to_vec());
        encoded = rest;
    }
    Ok(elements)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What every state function gives off wasm.
    pub(super) fn needs_the_host() -> Error {
        Error::Host {
            status: HostStatus::Unavailable,
            message: "this needs the fwasm host".into(),
        }
    }

    fn encode(elements: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for element in elements {
            out.extend((element.len() as u32).to_le_bytes());
            out.extend(*element);
        }
        out
    }

    #[test]
    fn an_encoded_append_list_decodes_to_its_elements() {
        assert_eq!(decode_appended(&[]), Ok(vec![]));
        let elements: [&[u8]; 4] = [b"a:0", b"", b"\x00\xff", &[7u8; 300]];
        let decoded = decode_appended(&encode(&elements)).expect("well formed");
        assert_eq!(decoded, elements.map(<[u8]>::to_vec));
    }

    #[test]
    fn a_malformed_append_list_is_an_error() {
        let mut long = encode(&[b"ok", b"abc"]);
        long.pop();
        for (encoded, why) in [
            (&long[..], "element 1 claims 3 bytes but 2 are left"),
            (&[1, 0][..], "element 0 has 2 bytes for its 4-byte length"),
            (
                &[0, 0, 0, 0, 9][..],
                "element 1 has 1 bytes for its 4-byte length",
            ),
            (
                &[0xff, 0xff, 0xff, 0xff][..],
                "element 0 claims 4294967295 bytes but 0 are left",
            ),
        ] {
            let Err(Error::Host { status, message }) = decode_appended(encoded) else {
                panic!("{encoded:?} decoded");
            };
            assert_eq!(status, HostStatus::Unavailable);
            assert_eq!(
                message,
                format!("the host sent a malformed append list: {why}")
            );
        }
    }

    #[test]
    fn off_wasm_state_reports_that_it_needs_the_host() {
        assert_eq!(get("k"), Err(needs_the_host()));
        assert_eq!(get_offset("k", 0, 4), Err(needs_the_host()));
        assert_eq!(size("k"), Err(needs_the_host()));
        assert_eq!(set("k", b"v"), Err(needs_the_host()));
        assert_eq!(set_offset("k", 2, b"v"), Err(needs_the_host()));
        assert_eq!(append("k", b"v"), Err(needs_the_host()));
        assert_eq!(read_appended("k"), Err(needs_the_host()));
        assert_eq!(clear_appended("k"), Err(needs_the_host()));
        assert_eq!(push("k"), Err(needs_the_host()));
        assert_eq!(pull("k"), Err(needs_the_host()));
        assert_eq!(delete("k"), Err(needs_the_host()));
    }

    #[test]
    fn an_offset_past_what_the_abi_takes_is_refused_before_the_host() {
        let past = i64::MAX as u64 + 1;
        for result in [
            get_offset("k", past, 1).map(drop),
            set_offset("k", past, b"v"),
        ] {
            let Err(Error::Host { status, message }) = result else {
                panic!("offset {past} accepted");
            };
            assert_eq!(status, HostStatus::InvalidArgument);
            assert!(message.contains("9223372036854775808"), "{message}");
        }
    }
}
