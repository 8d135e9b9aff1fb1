//! What can go wrong when a guest asks the host for something.

use std::fmt;

use fwasm_abi::HostStatus;

use crate::CallId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// An import refused or could not do what was asked; `message` is the host's explanation
    /// (from `last_error`), empty if it gave none.
    Host { status: HostStatus, message: String },
    /// An awaited call ended in failure. For fwasm functions `code` is the failure kind:
    /// 1 trap, 2 CPU limit, 3 timeout, 4 memory limit, 5 output limit, 6 ABI violation,
    /// 7 not run, 9 lost, 10 cancelled; a call that exited with a code of its own has that.
    CallFailed {
        id: CallId,
        code: i32,
        reason: String,
    },
}

impl Error {
    /// The error for a negative value an import just returned, with the host's explanation.
    /// Call it before any other import, which would replace that explanation.
    pub(crate) fn from_status(code: i64) -> Self {
        let mut message = crate::buffer::read_sized(|buf| crate::host::last_error(buf).into())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        let known = i32::try_from(code)
            .ok()
            .and_then(HostStatus::from_code)
            .filter(|status| *status != HostStatus::Ok);
        // A newer host may return codes this SDK does not know; they are still failures.
        let status = known.unwrap_or_else(|| {
            if message.is_empty() {
                message = format!("the host returned {code}, which this SDK does not know");
            }
            HostStatus::Unavailable
        });
        Error::Host { status, message }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Host { status, message } if message.is_empty() => {
                write!(
                    f,
                    "{} (host status {})",
                    status.description(),
                    status.code()
                )
            }
            Error::Host { message, .. } => f.write_str(message),
            Error::CallFailed { id, code, reason } if reason.is_empty() => {
                write!(f, "call {id} failed with code {code}")
            }
            Error::CallFailed { id, code, reason } => {
                write!(f, "call {id} failed with code {code}: {reason}")
            }
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_error_shows_the_hosts_message() {
        let err = Error::Host {
            status: HostStatus::LimitExceeded,
            message: "chain refused: call depth limit of 8 reached".into(),
        };
        assert_eq!(
            err.to_string(),
            "chain refused: call depth limit of 8 reached"
        );
    }

    #[test]
    fn a_host_error_without_a_message_describes_its_status() {
        let err = Error::Host {
            status: HostStatus::Timeout,
            message: String::new(),
        };
        assert_eq!(
            err.to_string(),
            "the deadline passed before the operation completed (host status -7)"
        );
    }

    #[test]
    fn a_failed_call_shows_its_id_code_and_reason() {
        let err = Error::CallFailed {
            id: CallId::new(42),
            code: 1,
            reason: "demo/panic failed: boom".into(),
        };
        assert_eq!(
            err.to_string(),
            "call 42 failed with code 1: demo/panic failed: boom"
        );
        let err = Error::CallFailed {
            id: CallId::new(7),
            code: 3,
            reason: String::new(),
        };
        assert_eq!(err.to_string(), "call 7 failed with code 3");
    }

    #[test]
    fn a_status_the_sdk_does_not_know_is_still_an_error() {
        // Off wasm `last_error` explains that the import needs the host.
        let Error::Host { status, message } = Error::from_status(-99) else {
            panic!("expected a host error");
        };
        assert_eq!(status, HostStatus::Unavailable);
        assert_eq!(message, "this needs the fwasm host");
    }
}
