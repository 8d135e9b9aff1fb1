//! The building blocks of the Layotto or Dapr sidecar beside the executor (started with
//! `--sidecar ADDR --sidecar-api layotto|dapr`): its state stores, service invocation, pub/sub,
//! output bindings and secret stores, each request sent to it verbatim in its own API. The
//! call waits for the answer without holding a thread; a sidecar that is missing, unreachable
//! or slow ends the request with an error (`HostStatus::Unavailable`, `Timeout`, ...) and its
//! reason, in time for the call to go on.

use crate::Error;
use crate::buffer::read_sized;
use crate::host::sidecar::{Op, answer, request};

/// The value of `key` in the state store `store` (empty if it has none).
pub fn get_state(store: &str, key: &str) -> Result<Vec<u8>, Error> {
    answered(request(Op::GetState, store, key, &[]))
}

/// Saves `value` as `key` in the state store `store`.
pub fn save_state(store: &str, key: &str, value: &[u8]) -> Result<(), Error> {
    done(request(Op::SaveState, store, key, value))
}

/// Deletes `key` from the state store `store`.
pub fn delete_state(store: &str, key: &str) -> Result<(), Error> {
    done(request(Op::DeleteState, store, key, &[]))
}

/// Calls `method` of the app `app` with `data` (service invocation); its reply.
pub fn invoke(app: &str, method: &str, data: &[u8]) -> Result<Vec<u8>, Error> {
    answered(request(Op::Invoke, app, method, data))
}

/// Publishes `data` on `topic` of the pub/sub component `pubsub`.
pub fn publish(pubsub: &str, topic: &str, data: &[u8]) -> Result<(), Error> {
    done(request(Op::Publish, pubsub, topic, data))
}

/// Invokes the output binding `name` with `operation` (such as "create") and `data`; the
/// binding's answer.
pub fn invoke_binding(name: &str, operation: &str, data: &[u8]) -> Result<Vec<u8>, Error> {
    answered(request(Op::InvokeBinding, name, operation, data))
}

/// The secret `key` of the secret store `store`: its value (or, from a store that answers with
/// several values, all of them as a JSON object).
pub fn get_secret(store: &str, key: &str) -> Result<Vec<u8>, Error> {
    answered(request(Op::GetSecret, store, key, &[]))
}

fn answered(code: i64) -> Result<Vec<u8>, Error> {
    if code < 0 {
        return Err(Error::from_status(code));
    }
    read_sized(answer).map_err(Error::from_status)
}

fn done(code: i64) -> Result<(), Error> {
    match code {
        code if code < 0 => Err(Error::from_status(code)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fwasm_abi::HostStatus;

    #[test]
    fn off_wasm_the_sidecar_reports_that_it_needs_the_host() {
        let err = get_state("store", "key").unwrap_err();
        assert!(
            matches!(
                err,
                Error::Host {
                    status: HostStatus::Unavailable,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(save_state("store", "key", b"v").is_err());
    }
}
