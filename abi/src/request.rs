//! The request envelope: what the host writes into guest memory before calling `fwasm_handle`.
//!
//! Layout (all integers little-endian, `str`/`bytes` = u32 length + that many bytes):
//! `u8 version=1 | u64 call_id | str user | str function | str method | str path | str query |
//!  u32 header_count | header_count x (str name | str value) | bytes body`

use alloc::vec::Vec;

use crate::names::ENVELOPE_VERSION;
use crate::wire::{DecodeError, Reader, Writer, field_len, len_u32, to_vec};

/// One HTTP-style header. Names are compared case-insensitively by readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

impl Header<'_> {
    pub(crate) fn encoded_len(&self) -> usize {
        field_len(self.name.as_bytes()) + field_len(self.value.as_bytes())
    }
}

/// A call's request, borrowing from wherever it was decoded from or will be encoded from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request<'a> {
    pub call_id: u64,
    pub user: &'a str,
    pub function: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: Vec<Header<'a>>,
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// Exact number of bytes [`Request::encode_into`] writes.
    pub fn encoded_len(&self) -> usize {
        1 + 8
            + [self.user, self.function, self.method, self.path, self.query]
                .iter()
                .map(|s| field_len(s.as_bytes()))
                .sum::<usize>()
            + tail_len(&self.headers, self.body)
    }

    /// Encodes into `out`, which must be at least [`Request::encoded_len`] bytes; returns the
    /// number of bytes written.
    pub fn encode_into(&self, out: &mut [u8]) -> usize {
        let mut w = Writer::new(out);
        w.raw(&[ENVELOPE_VERSION]);
        w.raw(&self.call_id.to_le_bytes());
        for s in [self.user, self.function, self.method, self.path, self.query] {
            w.bytes(s.as_bytes());
        }
        encode_tail(w, &self.headers, self.body)
    }

    pub fn encode(&self) -> Vec<u8> {
        to_vec(self.encoded_len(), |out| self.encode_into(out))
    }

    /// Decodes an envelope, borrowing strings and body from `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, ENVELOPE_VERSION)?;
        let call_id = r.u64("call_id")?;
        let user = r.str("user")?;
        let function = r.str("function")?;
        let method = r.str("method")?;
        let path = r.str("path")?;
        let query = r.str("query")?;
        let (headers, body) = decode_tail(r)?;
        Ok(Self {
            call_id,
            user,
            function,
            method,
            path,
            query,
            headers,
            body,
        })
    }

    /// The value of the first header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        find_header(&self.headers, name)
    }
}

// Both envelopes end the same way: `u32 header_count | headers | bytes body`.

pub(crate) fn tail_len(headers: &[Header<'_>], body: &[u8]) -> usize {
    4 + headers.iter().map(Header::encoded_len).sum::<usize>() + field_len(body)
}

pub(crate) fn encode_tail(mut w: Writer<'_>, headers: &[Header<'_>], body: &[u8]) -> usize {
    w.u32(len_u32(headers.len()));
    for h in headers {
        w.bytes(h.name.as_bytes());
        w.bytes(h.value.as_bytes());
    }
    w.bytes(body);
    w.written()
}

/// Reads the headers and body and checks nothing follows them.
pub(crate) fn decode_tail<'a>(
    mut r: Reader<'a>,
) -> Result<(Vec<Header<'a>>, &'a [u8]), DecodeError> {
    // An empty header is two zero lengths: 8 bytes.
    let count = r.count("header_count", 8)?;
    let mut headers = Vec::with_capacity(count);
    for _ in 0..count {
        let name = r.str("header name")?;
        let value = r.str("header value")?;
        headers.push(Header { name, value });
    }
    let body = r.bytes("body")?;
    r.finish()?;
    Ok((headers, body))
}

pub(crate) fn find_header<'a>(headers: &[Header<'a>], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sample() -> Request<'static> {
        Request {
            call_id: 0x0102_0304_0506_0708,
            user: "demo",
            function: "echo",
            method: "POST",
            path: "/f/demo/echo",
            query: "a=1&b=2",
            headers: vec![
                Header {
                    name: "Content-Type",
                    value: "text/plain",
                },
                Header {
                    name: "x-empty",
                    value: "",
                },
            ],
            body: b"hello \x00\xff world",
        }
    }

    #[test]
    fn round_trips_every_field() {
        let req = sample();
        let bytes = req.encode();
        assert_eq!(bytes.len(), req.encoded_len());
        assert_eq!(Request::decode(&bytes), Ok(req));
    }

    #[test]
    fn round_trips_the_empty_request() {
        let req = Request::default();
        let bytes = req.encode();
        assert_eq!(bytes.len(), 1 + 8 + 5 * 4 + 4 + 4);
        assert_eq!(Request::decode(&bytes), Ok(req));
    }

    #[test]
    fn layout_is_little_endian_and_length_prefixed() {
        let req = Request {
            call_id: 7,
            user: "u",
            ..Default::default()
        };
        let bytes = req.encode();
        assert_eq!(bytes[0], 1, "version");
        assert_eq!(&bytes[1..9], &7u64.to_le_bytes());
        assert_eq!(&bytes[9..13], &1u32.to_le_bytes(), "user length");
        assert_eq!(bytes[13], b'u');
    }

    #[test]
    fn header_lookup_ignores_case() {
        let req = sample();
        assert_eq!(req.header("content-type"), Some("text/plain"));
        assert_eq!(req.header("X-EMPTY"), Some(""));
        assert_eq!(req.header("missing"), None);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert!(
                Request::decode(&bytes[..cut]).is_err(),
                "prefix of {cut} bytes decoded"
            );
        }
    }

    #[test]
    fn rejects_malformed_envelopes_with_precise_errors() {
        assert_eq!(Request::decode(&[]), Err(DecodeError::Empty));
        assert_eq!(
            Request::decode(&[2]),
            Err(DecodeError::UnsupportedVersion {
                found: 2,
                expected: 1
            })
        );

        let mut trailing = sample().encode();
        trailing.push(0);
        assert_eq!(
            Request::decode(&trailing),
            Err(DecodeError::TrailingBytes(1))
        );

        let mut bad_utf8 = Request {
            user: "ab",
            ..Default::default()
        }
        .encode();
        bad_utf8[13] = 0xff;
        assert_eq!(
            Request::decode(&bad_utf8),
            Err(DecodeError::InvalidUtf8 { field: "user" })
        );
    }

    #[test]
    fn a_hostile_header_count_cannot_force_a_huge_allocation() {
        let mut bytes = Request::default().encode();
        let count_at = 1 + 8 + 5 * 4;
        bytes[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Request::decode(&bytes),
            Err(DecodeError::Truncated {
                field: "header_count",
                ..
            })
        ));
    }

    #[test]
    fn a_length_past_the_end_is_truncation() {
        let mut bytes = Request::default().encode();
        bytes[9..13].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(
            Request::decode(&bytes),
            Err(DecodeError::Truncated {
                field: "user",
                needed: 1000,
                remaining: bytes.len() - 13
            })
        );
    }
}
