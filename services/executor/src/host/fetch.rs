//! Fetches: an import that needs bytes from elsewhere (a global state value, the output of
//! another of the user's functions) parks its call with what to fetch and a continuation, the
//! ABI's own way of handing the bytes to the guest (which may mean calling the guest's
//! allocator, as proxy-wasm's does).

use std::fmt;

use bytes::Bytes;
use wasmi::{Memory, Store};

use super::HostState;
use super::park::Refusal;
use crate::outbound::OutboundRequest;
use crate::sidecar::SidecarRequest;
use crate::sockets::NetOp;
use fwasm_proto::outbound::HostPattern;
use std::sync::Arc;

/// What a parked call waits to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fetch {
    /// The caller's user's global state value of `key` (empty if it has none).
    State { key: String },
    /// Calls the caller's user's `function` with `input` and waits for its output.
    Invoke { function: String, input: Bytes },
    /// A request to the executor's sidecar.
    Sidecar(SidecarRequest),
    /// An outbound HTTP request, to check against the function's allow-list and send.
    Http {
        request: OutboundRequest,
        allowed: Arc<[HostPattern]>,
    },
    /// A name lookup or a socket operation.
    Net(NetOp),
}

/// What the call does with the fetched bytes: the import's return value.
pub(crate) type AfterFetch =
    Box<dyn FnOnce(&mut Store<HostState>, Memory, Result<Bytes, Refusal>) -> i64 + Send>;

/// A fetch a parked call waits for.
pub(crate) struct FetchOp {
    pub(crate) what: Fetch,
    pub(crate) then: AfterFetch,
}

impl fmt::Debug for FetchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchOp").field("what", &self.what).finish()
    }
}
