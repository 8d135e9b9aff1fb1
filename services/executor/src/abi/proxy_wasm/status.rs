//! proxy-wasm's status codes, and an import's refusal: the code with, for the codes the SDKs
//! do not expect (and so panic on), the reason the call failed.

/// proxy-wasm's `Status` (Layotto's extra codes are never returned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub(crate) enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
    InternalFailure = 10,
}

/// Why an import answered with a status other than OK.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) status: Status,
    /// What went wrong, for statuses that mean something did.
    pub(crate) message: Option<String>,
}

impl Refused {
    /// An answer the guest expects in the normal run of things (a missing header, an empty
    /// queue).
    pub(crate) fn quietly(status: Status) -> Self {
        Self {
            status,
            message: None,
        }
    }

    pub(crate) fn because(status: Status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: Some(message.into()),
        }
    }
}
