//! Little-endian, length-prefixed primitives the envelopes are made of.

use alloc::vec::Vec;

/// Why an envelope could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("envelope is empty")]
    Empty,
    #[error("envelope version {found} is not supported (expected {expected})")]
    UnsupportedVersion { found: u8, expected: u8 },
    #[error("envelope truncated while reading {field}: needed {needed} bytes, {remaining} left")]
    Truncated {
        field: &'static str,
        needed: usize,
        remaining: usize,
    },
    #[error("envelope field {field} is not valid UTF-8")]
    InvalidUtf8 { field: &'static str },
    #[error("envelope has {0} unexpected trailing bytes")]
    TrailingBytes(usize),
}

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], expected_version: u8) -> Result<Self, DecodeError> {
        let (&version, rest) = bytes.split_first().ok_or(DecodeError::Empty)?;
        if version != expected_version {
            return Err(DecodeError::UnsupportedVersion {
                found: version,
                expected: expected_version,
            });
        }
        Ok(Self { bytes: rest })
    }

    fn take(&mut self, field: &'static str, needed: usize) -> Result<&'a [u8], DecodeError> {
        if needed > self.bytes.len() {
            return Err(DecodeError::Truncated {
                field,
                needed,
                remaining: self.bytes.len(),
            });
        }
        let (head, rest) = self.bytes.split_at(needed);
        self.bytes = rest;
        Ok(head)
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(field, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(field, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let b = self.take(field, 8)?;
        let mut word = [0u8; 8];
        word.copy_from_slice(b);
        Ok(u64::from_le_bytes(word))
    }

    pub(crate) fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)? as usize;
        self.take(field, len)
    }

    pub(crate) fn str(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        core::str::from_utf8(self.bytes(field)?).map_err(|_| DecodeError::InvalidUtf8 { field })
    }

    /// A count of items each at least `min_item_len` bytes long; never larger than what the
    /// remaining bytes could hold, so a hostile count cannot force a huge allocation.
    pub(crate) fn count(
        &mut self,
        field: &'static str,
        min_item_len: usize,
    ) -> Result<usize, DecodeError> {
        let count = self.u32(field)? as usize;
        let needed = count.saturating_mul(min_item_len);
        if needed > self.bytes.len() {
            return Err(DecodeError::Truncated {
                field,
                needed,
                remaining: self.bytes.len(),
            });
        }
        Ok(count)
    }

    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        match self.bytes.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// Writes into a buffer whose exact size was computed beforehand (`encoded_len`), so the host
/// can encode straight into guest memory.
pub(crate) struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(out: &'a mut [u8]) -> Self {
        Self { out, at: 0 }
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.out[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.raw(&value.to_le_bytes());
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        self.u32(len_u32(bytes.len()));
        self.raw(bytes);
    }

    pub(crate) fn written(&self) -> usize {
        self.at
    }
}

/// Envelope lengths are u32 on the wire; callers bound sizes far below that.
pub(crate) fn len_u32(len: usize) -> u32 {
    u32::try_from(len).expect("envelope field longer than 4 GiB")
}

/// Size of a length-prefixed field.
pub(crate) fn field_len(bytes: &[u8]) -> usize {
    4 + bytes.len()
}

/// Encodes into a fresh vector using a type's exact length and in-place writer.
pub(crate) fn to_vec(len: usize, encode_into: impl FnOnce(&mut [u8]) -> usize) -> Vec<u8> {
    let mut out = alloc::vec![0u8; len];
    let written = encode_into(&mut out);
    debug_assert_eq!(written, len);
    out
}
