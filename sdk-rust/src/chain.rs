//! Chaining: starting calls of the user's other functions and awaiting their results.

use std::time::Duration;

use crate::buffer::read_sized;
use crate::{CallId, Error, host};

/// Starts a call of `function` (a function of the same user, named without `user/`) with
/// `input`. The callee runs concurrently; `await_call` collects its result.
pub fn chain(function: &str, input: &[u8]) -> Result<CallId, Error> {
    match host::chain(function, input) {
        id if id > 0 => Ok(CallId::new(id as u64)),
        code => Err(Error::from_status(code)),
    }
}

/// Waits until the call ends, for as long as this call's own time limit allows, and returns
/// its output. A callee that failed gives `Error::CallFailed` with its code and reason.
pub fn await_call(id: CallId) -> Result<Vec<u8>, Error> {
    wait(id, -1)
}

/// As `await_call`, but gives up after `timeout` (whole milliseconds; below 1 ms only checks)
/// with `HostStatus::Timeout`. The call keeps running and may be awaited again.
pub fn await_call_timeout(id: CallId, timeout: Duration) -> Result<Vec<u8>, Error> {
    wait(id, i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX))
}

fn wait(id: CallId, timeout_ms: i32) -> Result<Vec<u8>, Error> {
    match host::await_call(id.to_raw(), timeout_ms) {
        0 => output(id),
        code if code > 0 => {
            let reason = match output(id) {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(err) => format!("(reason unavailable: {err})"),
            };
            Err(Error::CallFailed { id, code, reason })
        }
        status => Err(Error::from_status(status.into())),
    }
}

/// The output, or failure reason, of a call awaited to completion.
fn output(id: CallId) -> Result<Vec<u8>, Error> {
    read_sized(|buf| host::call_output(id.to_raw(), buf)).map_err(Error::from_status)
}

#[cfg(test)]
mod tests {
    use fwasm_abi::HostStatus;

    use super::*;

    fn needs_the_host() -> Error {
        Error::Host {
            status: HostStatus::Unavailable,
            message: "this needs the fwasm host".into(),
        }
    }

    #[test]
    fn off_wasm_chaining_reports_that_it_needs_the_host() {
        assert_eq!(chain("upper", b"hi"), Err(needs_the_host()));
        assert_eq!(await_call(CallId::new(1)), Err(needs_the_host()));
        let timeout = Duration::from_secs(u64::MAX);
        assert_eq!(
            await_call_timeout(CallId::new(1), timeout),
            Err(needs_the_host())
        );
    }
}
