//! Layotto's additions to proxy-wasm: `proxy_get_state(store, key)` and
//! `proxy_invoke_service(id, method, param)`. By default, as for every guest, they reach the
//! caller's own user: the user's global state (whatever the store's name) and the user's
//! function `id`, called as chaining calls it. On an executor with a sidecar they go to it
//! verbatim, as in Layotto: its state store `store`, its invocation of app `id`'s `method`.
//! Both park the call while the host fetches the answer, which is then handed over in memory
//! the guest allocates.

use bytes::Bytes;
use wasmi::{Caller, Linker};

use super::guest::{check_out, hand_over, read};
use super::imports::MODULE;
use super::status::{Refused, Status};
use crate::host::HostState;
use crate::host::chaining::chain_request;
use crate::host::fetch::{Fetch, FetchOp};
use crate::host::park::{HostOp, Refusal, park};
use crate::host::state;
use crate::sidecar::SidecarRequest;

pub(crate) fn define_imports(linker: &mut Linker<HostState>) {
    linker
        .func_wrap(
            MODULE,
            "proxy_get_state",
            |mut caller: Caller<'_, HostState>,
             store_ptr: i32,
             store_len: i32,
             key_ptr: i32,
             key_len: i32,
             ptr_out: i32,
             len_out: i32|
             -> Result<i32, wasmi::Error> {
                let request = read(&caller, "store name", store_ptr, store_len).and_then(|store| {
                    let key = text("key", read(&caller, "key", key_ptr, key_len)?)?;
                    check_out(&caller, ptr_out, len_out)?;
                    if caller.data().sidecar.enabled {
                        let store = text("store name", store)?;
                        return Ok(Fetch::Sidecar(SidecarRequest::GetState { store, key }));
                    }
                    let key = state::key("proxy_get_state", &key)
                        .map_err(|r| Refused::because(Status::InternalFailure, r.message))?;
                    Ok(Fetch::State { key })
                });
                fetch(&mut caller, "proxy_get_state", request, ptr_out, len_out)
            },
        )
        .expect("proxy_get_state is defined once");
    linker
        .func_wrap(
            MODULE,
            "proxy_invoke_service",
            |mut caller: Caller<'_, HostState>,
             id_ptr: i32,
             id_len: i32,
             method_ptr: i32,
             method_len: i32,
             param_ptr: i32,
             param_len: i32,
             ptr_out: i32,
             len_out: i32|
             -> Result<i32, wasmi::Error> {
                let request = read(&caller, "id", id_ptr, id_len).and_then(|id| {
                    let id = text("id", id)?;
                    let method = text("method", read(&caller, "method", method_ptr, method_len)?)?;
                    let param = read(&caller, "param", param_ptr, param_len)?;
                    check_out(&caller, ptr_out, len_out)?;
                    if caller.data().sidecar.enabled {
                        let data = param.into();
                        let app = id;
                        return Ok(Fetch::Sidecar(SidecarRequest::Invoke { app, method, data }));
                    }
                    let chain = chain_request(caller.data(), &id, Ok(&param))
                        .map_err(|r| Refused::because(Status::InternalFailure, r.message))?;
                    let HostOp::Chain { function, input } = chain else {
                        return Err(Refused::because(Status::InternalFailure, "not a call"));
                    };
                    // Counted when asked for, as chaining counts a started call.
                    caller.data_mut().chaining.chained += 1;
                    Ok(Fetch::Invoke { function, input })
                });
                fetch(
                    &mut caller,
                    "proxy_invoke_service",
                    request,
                    ptr_out,
                    len_out,
                )
            },
        )
        .expect("proxy_invoke_service is defined once");
}

/// Guest bytes that must be UTF-8 text.
fn text(what: &str, bytes: Vec<u8>) -> Result<String, Refused> {
    String::from_utf8(bytes)
        .map_err(|_| Refused::because(Status::InternalFailure, format!("the {what} is not UTF-8")))
}

/// Parks the call until `request` is fetched, then hands the bytes over: OK, or (Layotto's
/// codes) INTERNAL_FAILURE for a failed request and INVALID_MEMORY_ACCESS for bad pointers.
fn fetch(
    caller: &mut Caller<'_, HostState>,
    import: &'static str,
    request: Result<Fetch, Refused>,
    ptr_out: i32,
    len_out: i32,
) -> Result<i32, wasmi::Error> {
    let what = match request {
        Ok(what) => what,
        Err(refused) => return Ok(refuse(caller.data_mut(), import, refused)),
    };
    let op = FetchOp {
        what,
        then: Box::new(move |store, _memory, fetched: Result<Bytes, Refusal>| {
            let handed = fetched
                .map_err(|refusal| Refused::because(Status::InternalFailure, refusal.message))
                .and_then(|bytes| hand_over(&mut *store, &bytes, ptr_out, len_out));
            match handed {
                Ok(()) => Status::Ok as i64,
                Err(refused) => refuse(store.data_mut(), import, refused).into(),
            }
        }),
    };
    match park(caller, HostOp::Fetch(op)) {
        Ok(suspend) => Err(suspend),
        Err(refusal) => {
            let refused = Refused::because(Status::InternalFailure, refusal.message);
            Ok(refuse(caller.data_mut(), import, refused))
        }
    }
}

/// Logs a refused request (the guest sees only the status) and keeps it for `last_error`.
fn refuse(host: &mut HostState, import: &str, refused: Refused) -> i32 {
    if let Some(message) = refused.message {
        tracing::warn!(target: "fwasm::guest", "{import}: {message}");
        host.last_error = Some(format!("{import}: {message}"));
    }
    refused.status as i32
}
