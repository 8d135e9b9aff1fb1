//! The response envelope: what the guest leaves in its memory and points to from `fwasm_handle`.
//!
//! Layout: `u8 version=1 | u16 status | u32 header_count | header_count x (str name | str value) |
//!  bytes body`.

use alloc::vec::Vec;

use crate::names::ENVELOPE_VERSION;
use crate::request::{Header, decode_tail, encode_tail, find_header, tail_len};
use crate::wire::{DecodeError, Reader, Writer, len_u32, to_vec};

/// A call's response, borrowing from wherever it was decoded from or will be encoded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response<'a> {
    /// HTTP-style status; 200 unless the function says otherwise.
    pub status: u16,
    pub headers: Vec<Header<'a>>,
    pub body: &'a [u8],
}

impl Default for Response<'_> {
    fn default() -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: &[],
        }
    }
}

impl<'a> Response<'a> {
    /// Exact number of bytes [`Response::encode_into`] writes.
    pub fn encoded_len(&self) -> usize {
        1 + 2 + tail_len(&self.headers, self.body)
    }

    /// Encodes into `out`, which must be at least [`Response::encoded_len`] bytes.
    pub fn encode_into(&self, out: &mut [u8]) -> usize {
        let mut w = Writer::new(out);
        w.raw(&[ENVELOPE_VERSION]);
        w.raw(&self.status.to_le_bytes());
        encode_tail(w, &self.headers, self.body)
    }

    pub fn encode(&self) -> Vec<u8> {
        to_vec(self.encoded_len(), |out| self.encode_into(out))
    }

    /// The envelope of this response with `body` as its body (`self.body` is not used), built
    /// in `body`'s own buffer: the body moves up by the length of what precedes it, within the
    /// buffer when it has the room, so a large body is not copied into a second buffer (only
    /// the head's bytes are zero-filled before they are written).
    pub fn encode_around(&self, mut body: Vec<u8>) -> Vec<u8> {
        let head_len = 1 + 2 + tail_len(&self.headers, &[]);
        let body_len = body.len();
        body.resize(body_len + head_len, 0);
        body.copy_within(..body_len, head_len);
        let mut w = Writer::new(&mut body[..head_len]);
        w.raw(&[ENVELOPE_VERSION]);
        w.raw(&self.status.to_le_bytes());
        encode_tail(w, &self.headers, &[]);
        // The head ends with an empty body's length: the real one instead.
        body[head_len - 4..head_len].copy_from_slice(&len_u32(body_len).to_le_bytes());
        body
    }

    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, ENVELOPE_VERSION)?;
        let status = r.u16("status")?;
        let (headers, body) = decode_tail(r)?;
        Ok(Self {
            status,
            headers,
            body,
        })
    }

    /// The value of the first header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        find_header(&self.headers, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn encoding_around_a_body_gives_the_same_envelope() {
        let headers = vec![Header {
            name: "content-type",
            value: "text/plain",
        }];
        for body in [&b""[..], b"x", &[7u8; 70_000]] {
            let resp = Response {
                status: 201,
                headers: headers.clone(),
                body,
            };
            let mut roomy = Vec::with_capacity(body.len() + 100);
            roomy.extend_from_slice(body);
            assert_eq!(resp.encode_around(roomy), resp.encode());
            assert_eq!(resp.encode_around(body.to_vec()), resp.encode());
        }
    }

    #[test]
    fn round_trips_every_field() {
        let resp = Response {
            status: 418,
            headers: vec![Header {
                name: "content-type",
                value: "application/json",
            }],
            body: b"{\"tea\":true}",
        };
        let bytes = resp.encode();
        assert_eq!(bytes.len(), resp.encoded_len());
        assert_eq!(Response::decode(&bytes), Ok(resp.clone()));
        assert_eq!(resp.header("Content-Type"), Some("application/json"));
    }

    #[test]
    fn default_is_an_empty_200() {
        let bytes = Response::default().encode();
        assert_eq!(bytes, [1, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Response::decode(&bytes), Ok(Response::default()));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = Response {
            body: b"abc",
            ..Default::default()
        }
        .encode();
        for cut in 0..bytes.len() {
            assert!(Response::decode(&bytes[..cut]).is_err());
        }
        let mut longer = bytes.clone();
        longer.extend_from_slice(b"zz");
        assert_eq!(
            Response::decode(&longer),
            Err(DecodeError::TrailingBytes(2))
        );
    }
}
