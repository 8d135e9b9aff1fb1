//! The response a function returns.

/// Status (200 by default), headers and body of a function's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// A 200 response with this body.
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self::new(200, body)
    }

    /// A response with this status and body.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Sets the status (builder style).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn set_status(&mut self, status: u16) {
        self.status = status;
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The response envelope, built in the body's own buffer.
    pub(crate) fn encode(self) -> Vec<u8> {
        fwasm_abi::Response {
            status: self.status,
            headers: self
                .headers
                .iter()
                .map(|(name, value)| fwasm_abi::Header { name, value })
                .collect(),
            body: &[],
        }
        .encode_around(self.body)
    }
}
