//! The HTTP stream a proxy-wasm call sees, as the host keeps it between callbacks: the
//! buffers and header maps the guest reads and writes, the local response it may send, and
//! what a proxy would keep for a plugin (properties, shared data, queues, metrics) for the
//! life of the call's instance.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use fwasm_proto::pb::{Call, CallResult, Header};
use wasmi::Func;

use super::maps::Pairs;
use super::steps::{Callbacks, Step};

/// Buffer types (proxy-wasm's `BufferType`; 8 is Layotto's call data).
pub(crate) mod buffer {
    pub(crate) const HTTP_REQUEST_BODY: i32 = 0;
    pub(crate) const HTTP_RESPONSE_BODY: i32 = 1;
    pub(crate) const VM_CONFIGURATION: i32 = 6;
    pub(crate) const PLUGIN_CONFIGURATION: i32 = 7;
    pub(crate) const CALL_DATA: i32 = 8;
}

/// Header map types, as indexes into the call's maps.
pub(crate) mod map {
    pub(crate) const HTTP_REQUEST_HEADERS: i32 = 0;
    pub(crate) const HTTP_RESPONSE_HEADERS: i32 = 2;
    /// Request and response headers and trailers, gRPC metadata, HTTP call response maps.
    pub(crate) const COUNT: usize = 8;
}

/// The context ids fwasm gives: the plugin's root context (Layotto's default) and the one
/// HTTP stream of the call.
pub(crate) const ROOT_CONTEXT: i32 = 1;
pub(crate) const STREAM_CONTEXT: i32 = 2;

/// A reply the guest sent itself (`proxy_send_local_response`).
#[derive(Debug)]
pub(crate) struct LocalResponse {
    pub(crate) status: u32,
    pub(crate) headers: Pairs,
    pub(crate) body: Vec<u8>,
}

/// What the host keeps for one proxy-wasm call.
pub(crate) struct ProxyCall {
    pub(crate) callbacks: Callbacks,
    /// `proxy_on_memory_allocate`, else `malloc`: where data handed to the guest goes.
    pub(crate) allocator: Option<Func>,
    /// The callback running now, or the last one that ran.
    pub(crate) step: Step,
    pub(crate) request_body: Bytes,
    pub(crate) response_body: Vec<u8>,
    pub(crate) plugin_configuration: Vec<u8>,
    pub(crate) call_data: Vec<u8>,
    /// The header maps; the request's headers are laid out only when the guest first asks
    /// (most filters never do).
    maps: [Pairs; map::COUNT],
    request_headers: Option<Vec<Header>>,
    pub(crate) local_response: Option<LocalResponse>,
    /// Set when the guest reset the request (`proxy_close_stream`).
    pub(crate) reset: bool,
    /// The reply, once the request callbacks have run (callbacks after it may still fail).
    pub(crate) reply: Option<CallResult>,
    pub(crate) request: RequestFacts,
    pub(crate) properties: HashMap<Vec<u8>, Vec<u8>>,
    pub(crate) shared_data: HashMap<Vec<u8>, (Vec<u8>, u32)>,
    pub(crate) queues: Vec<(Vec<u8>, VecDeque<Vec<u8>>)>,
    pub(crate) metrics: Vec<i64>,
    /// Bytes the guest has had the host keep for it (maps, properties, shared data, queues):
    /// bounded by the call's memory limit, like the guest's own memory.
    pub(crate) held_bytes: usize,
    pub(crate) max_held_bytes: usize,
    pub(crate) max_response_bytes: usize,
}

/// The request as properties report it.
pub(crate) struct RequestFacts {
    pub(crate) method: String,
    pub(crate) url_path: String,
    pub(crate) query: String,
    pub(crate) function: String,
}

impl RequestFacts {
    /// The path with its query, as `:path` has it.
    fn path(&self) -> Vec<u8> {
        match self.query.is_empty() {
            true => self.url_path.as_bytes().to_vec(),
            false => format!("{}?{}", self.url_path, self.query).into_bytes(),
        }
    }
}

/// `:method`, `:path` and `:authority`.
const PSEUDO_HEADERS: usize = 3;

/// The host would keep more for the guest than its memory limit allows.
#[derive(Debug)]
pub(crate) struct OverBudget;

impl ProxyCall {
    /// The stream of `call`: its headers with the pseudo-headers a proxy adds, its body (or,
    /// for a request without one, its query string, as Layotto hands it over).
    pub(crate) fn new(call: &Call, max_held_bytes: usize, max_response_bytes: usize) -> Self {
        let request_body = match call.input.is_empty() {
            true => Bytes::from(call.query.clone()),
            false => call.input.clone(),
        };
        let plugin_configuration = call
            .settings
            .as_ref()
            .filter(|settings| !settings.env.is_empty())
            .map(|settings| {
                let mut env: Pairs = settings
                    .env
                    .iter()
                    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                    .collect();
                env.sort();
                super::maps::serialize(&env)
            })
            .unwrap_or_default();
        Self {
            callbacks: Callbacks::default(),
            allocator: None,
            step: Step::Instantiated,
            request_body,
            response_body: Vec::new(),
            plugin_configuration,
            call_data: Vec::new(),
            maps: Default::default(),
            request_headers: Some(call.headers.clone()),
            local_response: None,
            reset: false,
            reply: None,
            request: RequestFacts {
                method: call.method.clone(),
                url_path: call.path.clone(),
                query: call.query.clone(),
                function: call.function.clone(),
            },
            properties: HashMap::new(),
            shared_data: HashMap::new(),
            queues: Vec::new(),
            metrics: Vec::new(),
            held_bytes: 0,
            max_held_bytes,
            max_response_bytes,
        }
    }

    /// The header map of `map_type`, if there is one.
    pub(crate) fn map(&mut self, map_type: i32) -> Option<&mut Pairs> {
        let index = usize::try_from(map_type).ok().filter(|i| *i < map::COUNT)?;
        if index == map::HTTP_REQUEST_HEADERS as usize
            && let Some(headers) = self.request_headers.take()
        {
            self.maps[index] = self.lay_out_request_headers(headers);
        }
        Some(&mut self.maps[index])
    }

    /// How many request headers the guest is told of.
    pub(crate) fn request_header_count(&self) -> usize {
        match &self.request_headers {
            Some(headers) => headers.len() + PSEUDO_HEADERS,
            None => self.maps[map::HTTP_REQUEST_HEADERS as usize].len(),
        }
    }

    /// The request's headers after the pseudo-headers `:method`, `:path` (with the query) and
    /// `:authority` (the `host` header).
    fn lay_out_request_headers(&self, headers: Vec<Header>) -> Pairs {
        let authority = headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("host"))
            .map(|h| h.value.as_bytes().to_vec())
            .unwrap_or_default();
        let mut pairs: Pairs = Vec::with_capacity(headers.len() + PSEUDO_HEADERS);
        pairs.push((b":method".to_vec(), self.request.method.as_bytes().to_vec()));
        pairs.push((b":path".to_vec(), self.request.path()));
        pairs.push((b":authority".to_vec(), authority));
        pairs.extend(
            headers
                .into_iter()
                .map(|h| (h.name.into_bytes(), h.value.into_bytes())),
        );
        pairs
    }

    /// Counts `bytes` more against what the host keeps for the guest.
    pub(crate) fn hold(&mut self, bytes: usize) -> Result<(), OverBudget> {
        let held = self.held_bytes.saturating_add(bytes);
        if held > self.max_held_bytes {
            return Err(OverBudget);
        }
        self.held_bytes = held;
        Ok(())
    }

    /// The buffer of `buffer_type`, if the stream has one.
    /// (The request body, the one usually read, without a copy.)
    pub(crate) fn buffer(&self, buffer_type: i32) -> Option<Bytes> {
        let copy = Bytes::copy_from_slice;
        match buffer_type {
            buffer::HTTP_REQUEST_BODY => Some(self.request_body.clone()),
            buffer::HTTP_RESPONSE_BODY => Some(copy(&self.response_body)),
            buffer::VM_CONFIGURATION => Some(Bytes::new()),
            buffer::PLUGIN_CONFIGURATION => Some(copy(&self.plugin_configuration)),
            buffer::CALL_DATA => Some(copy(&self.call_data)),
            _ => None,
        }
    }

    /// A host property (Envoy's attribute names for the request and the plugin), or one the
    /// guest set. `path` is the segments joined by NUL.
    pub(crate) fn property(&self, path: &[u8]) -> Option<Vec<u8>> {
        if let Some(value) = self.properties.get(path) {
            return Some(value.clone());
        }
        let facts = &self.request;
        let value = match path {
            b"request\0method" => &facts.method,
            b"request\0path" => return Some(facts.path()),
            b"request\0url_path" => &facts.url_path,
            b"request\0query" => &facts.query,
            b"request\0host" => {
                let headers = self.request_headers.as_deref().unwrap_or_default();
                let host = headers.iter().find(|h| h.name.eq_ignore_ascii_case("host"));
                return match host {
                    Some(host) => Some(host.value.as_bytes().to_vec()),
                    None => self.maps[map::HTTP_REQUEST_HEADERS as usize]
                        .iter()
                        .find(|(name, _)| name == b":authority")
                        .map(|(_, value)| value.clone()),
                };
            }
            b"plugin_name" | b"plugin_root_id" => &facts.function,
            _ => return None,
        };
        Some(value.as_bytes().to_vec())
    }

    /// The reply the guest made: its local response, else the response body buffer with the
    /// response headers it set (`:status` among them, if it set one).
    pub(crate) fn take_reply(&mut self) -> CallResult {
        let (mut status, headers, body) = match self.local_response.take() {
            Some(local) => (local.status, local.headers, local.body),
            None => (
                200,
                std::mem::take(&mut self.maps[map::HTTP_RESPONSE_HEADERS as usize]),
                std::mem::take(&mut self.response_body),
            ),
        };
        let mut reply_headers = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            let value = String::from_utf8_lossy(&value).into_owned();
            if name == b":status" {
                status = value.trim().parse().unwrap_or(status);
                continue;
            }
            reply_headers.push(Header {
                name: String::from_utf8_lossy(&name).into_owned(),
                value,
            });
        }
        CallResult {
            http_status: status,
            headers: reply_headers,
            output: Bytes::from(body),
            ..CallResult::default()
        }
    }
}
