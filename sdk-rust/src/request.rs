//! The request a function receives.

/// What the caller sent: the body, HTTP-style metadata, and who and what is being called.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    call_id: u64,
    user: String,
    function: String,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// A request as a test would build it; the platform builds the real ones.
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Self {
            method: "POST".into(),
            body: body.into(),
            ..Self::default()
        }
    }

    /// Adds a header (builder style, for tests).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The request in the envelope `raw` holds. The body stays in `raw`'s buffer, moved to
    /// its start: a large input is not copied into a second buffer (and a reply built from
    /// [`Request::into_body`] has the room to be encoded in that buffer too).
    pub(crate) fn from_envelope(mut raw: Vec<u8>) -> Result<Self, fwasm_abi::DecodeError> {
        let (mut request, body) = {
            let env = fwasm_abi::Request::decode(&raw)?;
            let start = env.body.as_ptr() as usize - raw.as_ptr() as usize;
            let request = Self {
                call_id: env.call_id,
                user: env.user.into(),
                function: env.function.into(),
                method: env.method.into(),
                path: env.path.into(),
                query: env.query.into(),
                headers: env
                    .headers
                    .iter()
                    .map(|h| (h.name.into(), h.value.into()))
                    .collect(),
                body: Vec::new(),
            };
            (request, start..start + env.body.len())
        };
        raw.truncate(body.end);
        raw.drain(..body.start);
        request.body = raw;
        Ok(request)
    }

    /// The input bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The input bytes, taken by value (no copy).
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// The HTTP method the call came in with (`POST` for calls that are not HTTP).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request path, e.g. `/f/demo/echo`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query string without the `?`, empty when there is none.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// The first header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All headers in the order they arrived.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The user the function belongs to.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The function's name.
    pub fn function(&self) -> &str {
        &self.function
    }

    /// This call's id, as the platform's status API reports it.
    pub fn call_id(&self) -> u64 {
        self.call_id
    }
}

#[cfg(test)]
mod tests {
    use super::Request;

    #[test]
    fn a_request_decoded_from_its_envelope_keeps_every_field_and_the_buffer() {
        let headers = vec![fwasm_abi::Header {
            name: "x-a",
            value: "1",
        }];
        let body = vec![5u8; 10_000];
        let envelope = fwasm_abi::Request {
            call_id: 7,
            user: "u",
            function: "f",
            method: "PUT",
            path: "/f/u/f",
            query: "q=1",
            headers,
            body: &body,
        }
        .encode();
        let buffer = envelope.as_ptr();
        let request = Request::from_envelope(envelope).unwrap();
        assert_eq!(
            (request.call_id(), request.user(), request.function()),
            (7, "u", "f")
        );
        assert_eq!(
            (request.method(), request.path(), request.query()),
            ("PUT", "/f/u/f", "q=1")
        );
        assert_eq!(request.header("X-A"), Some("1"));
        assert_eq!(request.body(), &body[..]);
        let body_buffer = request.into_body();
        assert_eq!(
            body_buffer.as_ptr(),
            buffer,
            "the body stays in the envelope's buffer"
        );
        assert!(Request::from_envelope(vec![9, 9]).is_err());
    }

    #[test]
    fn an_empty_body_and_an_echo_through_one_buffer() {
        for body in [&b""[..], &[3u8; 5000][..]] {
            let envelope = fwasm_abi::Request {
                body,
                ..Default::default()
            }
            .encode();
            let request = Request::from_envelope(envelope).unwrap();
            assert_eq!(request.body(), body);
            // The reply to an echo, encoded in the request's buffer, decodes as sent.
            let reply = crate::Response::ok(request.into_body())
                .with_header("x-b", "2")
                .encode();
            let decoded = fwasm_abi::Response::decode(&reply).unwrap();
            assert_eq!((decoded.status, decoded.body), (200, body));
            assert_eq!(decoded.header("X-B"), Some("2"));
        }
    }
}
