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

    pub(crate) fn from_envelope(env: &fwasm_abi::Request<'_>) -> Self {
        Self {
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
            body: env.body.into(),
        }
    }

    /// The input bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The input bytes, taken by value.
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
