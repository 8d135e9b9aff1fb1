//! Outbound HTTP: requests to the hosts the function is allowed to reach (`fwasm upload
//! --allow-host HOST:PORT`, within the platform's `--allow-outbound`). The call waits for the
//! response without holding a thread, up to its own time limit (30 s at most per request).
//!
//! ```no_run
//! let reply = fwasm_sdk::http::get("http://api.example.com/items")?;
//! if reply.status() == 200 {
//!     let _items = reply.body();
//! }
//! # Ok::<(), fwasm_sdk::Error>(())
//! ```

use crate::Error;
use crate::buffer::read_sized;

/// A request to send.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// A request with `method` (such as "GET") to `url` (`http://HOST[:PORT]/PATH?QUERY`).
    pub fn new(method: &str, url: &str) -> Self {
        Request {
            method: method.to_string(),
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(own, _)| own.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every header, in the order they came.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// Sends `request`: its response (whatever its status), or why there is none (not allowed,
/// unreachable, too slow, too large).
pub fn send(request: &Request) -> Result<Response, Error> {
    let headers = request
        .headers
        .iter()
        .map(|(name, value)| fwasm_abi::Header { name, value })
        .collect();
    let envelope = fwasm_abi::Request {
        call_id: 0,
        user: "",
        function: "",
        method: &request.method,
        path: &request.url,
        query: "",
        headers,
        body: &request.body,
    }
    .encode();
    let code = crate::host::http::send(&envelope);
    if code < 0 {
        return Err(Error::from_status(code));
    }
    let bytes = read_sized(crate::host::http::answer).map_err(Error::from_status)?;
    let response = fwasm_abi::Response::decode(&bytes).map_err(|e| Error::Host {
        status: fwasm_abi::HostStatus::InvalidArgument,
        message: format!("the host's response envelope does not decode: {e}"),
    })?;
    Ok(Response {
        status: response.status,
        headers: response
            .headers
            .iter()
            .map(|header| (header.name.to_string(), header.value.to_string()))
            .collect(),
        body: response.body.to_vec(),
    })
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, Error> {
    send(&Request::new("GET", url))
}

/// `POST url` with `body`.
pub fn post(url: &str, body: impl Into<Vec<u8>>) -> Result<Response, Error> {
    send(&Request::new("POST", url).body(body))
}
