//! A call's side of the sidecar (see [`crate::sidecar`]): whether its executor has one, and
//! the last answer, which the guest reads once its request has parked and resumed.

use bytes::Bytes;

pub(crate) struct CallSidecar {
    pub(crate) enabled: bool,
    pub(crate) answer: Bytes,
}

impl CallSidecar {
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            answer: Bytes::new(),
        }
    }
}

/// Why a request to the sidecar was refused on an executor that has none.
pub(crate) const NO_SIDECAR: &str = "this executor has no sidecar: start it (`fwasm up` or \
`fwasm executor`) with --sidecar ADDR --sidecar-api layotto|dapr";
