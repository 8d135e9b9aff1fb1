//! The outbound HTTP imports (module `fwasm_http`), which every ABI's guests may use: `send`
//! takes a request in the request envelope's layout (ABI section 6: `method`, the whole URL
//! as `path`, headers and body; the other fields empty) and parks the call while the executor
//! sends it (see `crate::outbound`); it returns the length of the response envelope, which
//! `answer` copies, or a negative status that `last_error` explains.

use bytes::Bytes;
use fwasm_abi::HostStatus;
use wasmi::{Caller, Linker, ValType};

use super::ImportSignature;
use crate::host::HostState;
use crate::host::fetch::Fetch;
use crate::host::memory::{Args, copy_out};
use crate::host::park::Refusal;
use crate::outbound::OutboundRequest;

pub(crate) const MODULE: &str = "fwasm_http";

use ValType::{I32, I64};

/// Every outbound HTTP import, for validation.
pub(crate) const IMPORTS: &[ImportSignature] = &[
    (MODULE, "send", &[I32, I32], &[I64]),
    (MODULE, "answer", &[I32, I32], &[I64]),
    (MODULE, "last_error", &[I32, I32], &[I32]),
];

/// The request `envelope` describes.
fn request_of(envelope: &[u8], max_response_bytes: usize) -> Result<OutboundRequest, Refusal> {
    let request = fwasm_abi::Request::decode(envelope).map_err(|e| {
        Refusal::new(
            HostStatus::InvalidArgument,
            format!("the outbound request is not a request envelope: {e}"),
        )
    })?;
    Ok(OutboundRequest {
        method: request.method.to_string(),
        url: request.path.to_string(),
        headers: request
            .headers
            .iter()
            .map(|header| (header.name.to_string(), header.value.to_string()))
            .collect(),
        body: Bytes::copy_from_slice(request.body),
        max_response_bytes,
    })
}

fn send(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Result<i64, wasmi::Error> {
    let room = caller.data().outbound.room_to_receive(true);
    let request = room.and_then(|room| {
        Args::new(caller, "http send")
            .bytes("request", ptr, len)
            .and_then(|envelope| request_of(envelope, room))
    });
    let what = request.and_then(|request| {
        let outbound = &mut caller.data_mut().outbound;
        let allowed = outbound.take_turn()?;
        outbound.send_bytes(request.bytes_out())?;
        Ok(Fetch::Http { request, allowed })
    });
    super::park_for_answer(caller, what, |host, envelope| {
        host.outbound.received(envelope.len());
        host.outbound.answer = envelope
    })
}

pub(crate) fn define_imports(linker: &mut Linker<HostState>) {
    linker
        .func_wrap(
            MODULE,
            "send",
            |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| send(&mut caller, ptr, len),
        )
        .expect("send is defined once");
    linker
        .func_wrap(
            MODULE,
            "answer",
            |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> i64 {
                let answer = caller.data().outbound.answer.clone();
                match copy_out(&mut caller, &answer, ptr, len) {
                    Ok(total) => total as i64,
                    Err(status) => status.code().into(),
                }
            },
        )
        .expect("answer is defined once");
    super::define_last_error(linker, MODULE);
}
