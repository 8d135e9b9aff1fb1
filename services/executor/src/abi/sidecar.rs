//! The sidecar imports (module `fwasm_sidecar`), which every ABI's guests may use: requests to
//! the Layotto or Dapr sidecar beside the executor (`--sidecar`), sent verbatim in its API.
//! Each parks the call until the sidecar answers (or gives up in time for the call to hear
//! why). A request that answers bytes returns their length, and `answer` copies them; every
//! request returns a negative status on failure, explained by `last_error`.

use bytes::Bytes;
use fwasm_abi::HostStatus;
use wasmi::{Caller, Linker, ValType};

use super::ImportSignature;
use crate::host::HostState;
use crate::host::fetch::Fetch;
use crate::host::memory::{Args, copy_out};
use crate::host::park::Refusal;
use crate::host::sidecar::NO_SIDECAR;
use crate::sidecar::SidecarRequest;

pub(crate) const MODULE: &str = "fwasm_sidecar";

use ValType::{I32, I64};

/// Every sidecar import, for validation.
pub(crate) const IMPORTS: &[ImportSignature] = &[
    (MODULE, "get_state", &[I32, I32, I32, I32], &[I64]),
    (
        MODULE,
        "save_state",
        &[I32, I32, I32, I32, I32, I32],
        &[I32],
    ),
    (MODULE, "delete_state", &[I32, I32, I32, I32], &[I32]),
    (MODULE, "invoke", &[I32, I32, I32, I32, I32, I32], &[I64]),
    (MODULE, "publish", &[I32, I32, I32, I32, I32, I32], &[I32]),
    (
        MODULE,
        "invoke_binding",
        &[I32, I32, I32, I32, I32, I32],
        &[I64],
    ),
    (MODULE, "get_secret", &[I32, I32, I32, I32], &[I64]),
    (MODULE, "answer", &[I32, I32], &[I64]),
    (MODULE, "last_error", &[I32, I32], &[I32]),
];

/// Parks the call for `request`; once answered, the bytes are kept for `answer` and their
/// length is the import's result.
fn send(
    caller: &mut Caller<'_, HostState>,
    request: Result<SidecarRequest, Refusal>,
) -> Result<i64, wasmi::Error> {
    let request = request.and_then(|request| match caller.data().sidecar.enabled {
        true => Ok(request),
        false => Err(Refusal::new(HostStatus::Unavailable, NO_SIDECAR)),
    });
    let what = request.map(Fetch::Sidecar);
    super::park_for_answer(caller, what, |host, answer| host.sidecar.answer = answer)
}

/// Two text arguments (`what` names them in refusals), as the request `make` builds from them.
macro_rules! two_texts {
    ($linker:expr, $name:literal, $result:ty, [$first:literal, $second:literal], $make:expr) => {
        $linker
            .func_wrap(
                MODULE,
                $name,
                |mut caller: Caller<'_, HostState>,
                 a: i32,
                 a_len: i32,
                 b: i32,
                 b_len: i32|
                 -> Result<$result, wasmi::Error> {
                    let args = Args::new(&caller, concat!("sidecar ", $name));
                    let request = args.text($first, a, a_len).and_then(|first| {
                        let second = args.text($second, b, b_len)?;
                        Ok($make(first.to_string(), second.to_string()))
                    });
                    send(&mut caller, request).map(|value| value as $result)
                },
            )
            .expect(concat!($name, " is defined once"));
    };
}

/// Two text arguments and the data, as the request `make` builds from them.
macro_rules! two_texts_and_data {
    ($linker:expr, $name:literal, $result:ty, [$first:literal, $second:literal], $make:expr) => {
        $linker
            .func_wrap(
                MODULE,
                $name,
                |mut caller: Caller<'_, HostState>,
                 a: i32,
                 a_len: i32,
                 b: i32,
                 b_len: i32,
                 data: i32,
                 data_len: i32|
                 -> Result<$result, wasmi::Error> {
                    let args = Args::new(&caller, concat!("sidecar ", $name));
                    let request = args.text($first, a, a_len).and_then(|first| {
                        let second = args.text($second, b, b_len)?;
                        let data = Bytes::copy_from_slice(args.bytes("data", data, data_len)?);
                        Ok($make(first.to_string(), second.to_string(), data))
                    });
                    send(&mut caller, request).map(|value| value as $result)
                },
            )
            .expect(concat!($name, " is defined once"));
    };
}

pub(crate) fn define_imports(linker: &mut Linker<HostState>) {
    two_texts!(
        linker,
        "get_state",
        i64,
        ["store name", "key"],
        |store, key| { SidecarRequest::GetState { store, key } }
    );
    two_texts_and_data!(
        linker,
        "save_state",
        i32,
        ["store name", "key"],
        |store, key, value| { SidecarRequest::SaveState { store, key, value } }
    );
    two_texts!(
        linker,
        "delete_state",
        i32,
        ["store name", "key"],
        |store, key| { SidecarRequest::DeleteState { store, key } }
    );
    two_texts_and_data!(
        linker,
        "invoke",
        i64,
        ["app id", "method"],
        |app, method, data| { SidecarRequest::Invoke { app, method, data } }
    );
    two_texts_and_data!(
        linker,
        "publish",
        i32,
        ["pub/sub name", "topic"],
        |pubsub, topic, data| {
            SidecarRequest::Publish {
                pubsub,
                topic,
                data,
            }
        }
    );
    two_texts_and_data!(
        linker,
        "invoke_binding",
        i64,
        ["binding name", "operation"],
        |name, operation, data| SidecarRequest::InvokeBinding {
            name,
            operation,
            data
        }
    );
    two_texts!(
        linker,
        "get_secret",
        i64,
        ["secret store name", "key"],
        |store, key| { SidecarRequest::GetSecret { store, key } }
    );
    linker
        .func_wrap(
            MODULE,
            "answer",
            |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> i64 {
                let answer = caller.data().sidecar.answer.clone();
                match copy_out(&mut caller, &answer, ptr, len) {
                    Ok(total) => total as i64,
                    Err(status) => status.code().into(),
                }
            },
        )
        .expect("answer is defined once");
    super::define_last_error(linker, MODULE);
}
