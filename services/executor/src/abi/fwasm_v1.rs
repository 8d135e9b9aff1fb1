//! function-wasm v1 (ABI.md): the module exports `fwasm_abi_v1`, `fwasm_alloc`,
//! `fwasm_handle` and `memory`; the request envelope goes into memory the guest allocates,
//! `fwasm_handle` returns where its response envelope lies. Its imports (module `fwasm_v1`)
//! are thin readers of guest arguments over the host capabilities; WASI preview1 sits beside
//! them for C and C++ guests. sdk-c's Faasm C API is this ABI with one more marker.

use std::time::Duration;

use bytes::Bytes;
use fwasm_abi::{self as abi, HostStatus};
use fwasm_proto::pb::{CallResult, FailureKind, Header};
use wasmi::{Caller, Instance, Linker, Memory, Module, Store, Val, ValType};

use super::{
    Abi, Adapter, EXPORT_FAASM_MARKER, Ended, Entry, ImportSignature, Next, ValidationError, Vals,
    check_output, expect_func, expect_imports, expect_memory, exports, http, net, sidecar,
    wasi_preview1,
};
use crate::call::{Context, Failure};
use crate::host::memory::{Args, copy_out, cut_message, guest_slice};
use crate::host::mpi::imports as mpi;
use crate::host::park::{HostOp, Refusal, park_or_refuse};
use crate::host::state::{self, Answer};
use crate::host::{HostState, chaining, io, publishing};

pub(crate) struct FwasmV1;

/// What a v1 module may import, for the message about one it may not.
const PROVIDES: &str = "it provides the `fwasm_v1` imports, the sidecar's `fwasm_sidecar`, outbound HTTP's `fwasm_http`, MPI's \
`env.MPI_*` (sdk-c's mpi.h) and WASI preview1, `wasi_snapshot_preview1`";

impl Adapter for FwasmV1 {
    fn abis(&self) -> &'static [Abi] {
        &[Abi::FwasmV1, Abi::FaasmC]
    }

    fn recognise(&self, module: &Module) -> Option<Abi> {
        let v1 = exports(module, abi::EXPORT_ABI_MARKER)
            || exports(module, abi::EXPORT_HANDLE)
            || module.imports().any(|i| i.module() == abi::IMPORT_MODULE);
        match () {
            _ if exports(module, EXPORT_FAASM_MARKER) => Some(Abi::FaasmC),
            _ if v1 => Some(Abi::FwasmV1),
            _ => None,
        }
    }

    fn check(&self, module: &Module, abi: Abi) -> Result<(), ValidationError> {
        if abi == Abi::FaasmC {
            expect_func(module, abi, EXPORT_FAASM_MARKER, &[], &[], "() -> ()")?;
        }
        if !exports(module, abi::EXPORT_ABI_MARKER) {
            return Err(ValidationError::NoAbiMarker);
        }
        let v1 = Abi::FwasmV1;
        expect_func(module, v1, abi::EXPORT_ABI_MARKER, &[], &[], "() -> ()")?;
        // The names the executor gives the globals it exports to itself for snapshots.
        if let Some(export) = module
            .exports()
            .find(|e| e.name().starts_with(crate::globals::HIDDEN_GLOBAL_PREFIX))
        {
            return Err(ValidationError::ReservedExport(export.name().to_string()));
        }
        expect_func(
            module,
            v1,
            abi::EXPORT_ALLOC,
            &[ValType::I32],
            &[ValType::I32],
            "(i32) -> i32",
        )?;
        expect_func(
            module,
            v1,
            abi::EXPORT_HANDLE,
            &[ValType::I32, ValType::I32],
            &[ValType::I64],
            "(i32, i32) -> i64",
        )?;
        expect_memory(module, v1)?;
        // Initialisation is optional; when exported, it has its own signature.
        let optional: [(&'static str, &[ValType], &'static str); 3] = [
            (abi::EXPORT_INITIALIZE, &[], "() -> ()"),
            (abi::EXPORT_INIT, &[], "() -> ()"),
            (abi::EXPORT_FAASM_ZYGOTE, &[ValType::I32], "() -> i32"),
        ];
        for (name, results, expected) in optional {
            if module.get_export(name).is_some() {
                expect_func(module, abi, name, &[], results, expected)?;
            }
        }
        let known = V1_IMPORTS
            .iter()
            .copied()
            .chain(sidecar::IMPORTS.iter().copied())
            .chain(http::IMPORTS.iter().copied())
            .chain(net::IMPORTS.iter().copied())
            .chain(mpi::signatures())
            .chain(wasi_preview1::signatures());
        expect_imports(module, known, PROVIDES)
    }

    fn define_imports(&self, linker: &mut Linker<HostState>) {
        define_imports(linker);
        sidecar::define_imports(linker);
        http::define_imports(linker);
        net::define_imports(linker);
        mpi::define(linker);
        wasi_preview1::define_imports(linker);
    }

    fn streams(&self) -> io::Streams {
        io::Streams::Console
    }

    fn entry(&self) -> &'static str {
        abi::EXPORT_HANDLE
    }

    fn enter(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
        memory: Memory,
        cx: &Context<'_>,
    ) -> Result<Entry, Failure> {
        let call = cx.call;
        let export_error = |e: wasmi::Error| Failure::new(FailureKind::AbiViolation, e.to_string());
        let alloc = instance
            .get_typed_func::<i32, i32>(&*store, abi::EXPORT_ALLOC)
            .map_err(export_error)?;
        let handle = instance
            .get_func(&*store, abi::EXPORT_HANDLE)
            .ok_or_else(|| {
                Failure::new(
                    FailureKind::AbiViolation,
                    format!("{} exports no {}", cx.name(), abi::EXPORT_HANDLE),
                )
            })?;
        let headers = call
            .headers
            .iter()
            .map(|h| abi::Header {
                name: &h.name,
                value: &h.value,
            })
            .collect();
        let envelope = abi::Request {
            call_id: call.id,
            user: &call.user,
            function: &call.function,
            method: &call.method,
            path: &call.path,
            query: &call.query,
            headers,
            body: &call.input,
        };
        let len = i32::try_from(envelope.encoded_len()).map_err(|_| {
            Failure::new(FailureKind::AbiViolation, "request envelope exceeds 2 GiB")
        })?;
        let ptr = alloc
            .call(&mut *store, len)
            .map_err(|e| Failure::trap(store, e, cx))?;
        let memory_size = memory.data(&*store).len();
        let Ok(target) = guest_slice(memory.data(&*store), ptr, len).map(|s| s.len()) else {
            return Err(Failure::new(
                FailureKind::AbiViolation,
                format!(
                    "{} broke the ABI: fwasm_alloc({len}) returned {}, outside its {memory_size}-byte memory",
                    cx.name(),
                    ptr as u32
                ),
            ));
        };
        let start = ptr as u32 as usize;
        envelope.encode_into(&mut memory.data_mut(&mut *store)[start..start + target]);
        Ok(Entry {
            func: handle,
            params: Vals::new(&[Val::I32(ptr), Val::I32(len)]),
            results: Vals::new(&[Val::I64(0)]),
        })
    }

    fn next(
        &self,
        store: &mut Store<HostState>,
        memory: Memory,
        ended: Ended<'_>,
        cx: &Context<'_>,
    ) -> Result<Next, Failure> {
        let packed = match ended {
            Ended::Returned([Val::I64(packed)]) => *packed,
            // A C `main` that returned 0 through `exit`: an empty success.
            Ended::Exited | Ended::Returned(_) => {
                return Ok(Next::Reply(CallResult {
                    http_status: 200,
                    ..CallResult::default()
                }));
            }
        };
        let (ptr, len) = abi::unpack_ptr_len(packed);
        let data = memory.data(&*store);
        let bytes = guest_slice(data, ptr as i32, len as i32).map_err(|_| {
            Failure::new(
                FailureKind::AbiViolation,
                format!(
                    "{} returned a response at {ptr} of {len} bytes, outside its {}-byte memory",
                    cx.name(),
                    data.len()
                ),
            )
        })?;
        let response = abi::Response::decode(bytes).map_err(|e| {
            Failure::new(
                FailureKind::AbiViolation,
                format!("{} returned a malformed response: {e}", cx.name()),
            )
        })?;
        check_output(response.body.len(), cx)?;
        Ok(Next::Reply(CallResult {
            http_status: u32::from(response.status),
            headers: response
                .headers
                .iter()
                .map(|h| Header {
                    name: h.name.to_string(),
                    value: h.value.to_string(),
                })
                .collect(),
            output: Bytes::copy_from_slice(response.body),
            ..CallResult::default()
        }))
    }
}

/// The status an import returns; a refusal also leaves its explanation for `last_error`.
fn status(caller: &mut Caller<'_, HostState>, import: &str, result: Result<(), HostStatus>) -> i32 {
    match result {
        Ok(()) => HostStatus::Ok.code(),
        Err(status) => caller
            .data_mut()
            .refuse(status, format!("{import}: {}", status.description())),
    }
}

/// Guest text for `log` and `fail`, cut to the longest message kept.
fn message(caller: &Caller<'_, HostState>, ptr: i32, len: i32) -> Result<String, HostStatus> {
    let memory = caller.data().memory.ok_or(HostStatus::Unavailable)?;
    let bytes = guest_slice(memory.data(caller), ptr, len)?;
    let text = std::str::from_utf8(bytes).map_err(|_| HostStatus::InvalidUtf8)?;
    Ok(cut_message(text))
}

/// A state key argument, checked.
fn key(args: &Args<'_, '_>, import: &str, ptr: i32, len: i32) -> Result<String, Refusal> {
    state::key(import, args.text("key", ptr, len)?)
}

/// Defines one state import: `$body` computes a [`state::Answer`] from the arguments.
macro_rules! state_import {
    ($linker:expr, $name:expr, |$caller:ident $(, $arg:ident: $ty:ty)*| -> $ret:ty $body:block) => {
        $linker
            .func_wrap(
                abi::IMPORT_MODULE,
                $name,
                |mut $caller: Caller<'_, HostState>, $($arg: $ty),*| -> Result<$ret, wasmi::Error> {
                    fn body(
                        $caller: &mut Caller<'_, HostState>,
                        $($arg: $ty),*
                    ) -> Result<Answer, Refusal> {
                        $body
                    }
                    let result = body(&mut $caller, $($arg),*);
                    state::answer(&mut $caller, result).map(|value| value as $ret)
                },
            )
            .expect("a state import is defined once");
    };
}

fn define_imports(linker: &mut Linker<HostState>) {
    use abi::*;
    linker
        .func_wrap(
            IMPORT_MODULE,
            IMPORT_LOG,
            |mut caller: Caller<'_, HostState>, level: i32, ptr: i32, len: i32| {
                let result = message(&caller, ptr, len).and_then(|message| {
                    match caller.data_mut().io.log(level, &message) {
                        true => Ok(()),
                        false => Err(HostStatus::InvalidArgument),
                    }
                });
                status(&mut caller, IMPORT_LOG, result)
            },
        )
        .expect("log is defined once");
    linker
        .func_wrap(
            IMPORT_MODULE,
            IMPORT_FAIL,
            |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| {
                let result = message(&caller, ptr, len).map(|reason| {
                    caller.data_mut().failure_reason = Some(reason);
                });
                status(&mut caller, IMPORT_FAIL, result)
            },
        )
        .expect("fail is defined once");
    linker
        .func_wrap(
            IMPORT_MODULE,
            IMPORT_LAST_ERROR,
            |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| {
                let message = caller.data().last_error.clone().unwrap_or_default();
                match copy_out(&mut caller, message.as_bytes(), ptr, len) {
                    Ok(total) => total as i32,
                    Err(status) => status.code(),
                }
            },
        )
        .expect("last_error is defined once");
    linker
        .func_wrap(
            IMPORT_MODULE,
            IMPORT_CHAIN,
            |mut caller: Caller<'_, HostState>,
             name_ptr: i32,
             name_len: i32,
             input_ptr: i32,
             input_len: i32|
             -> Result<i64, wasmi::Error> {
                let args = Args::new(&caller, "chain");
                let op = args
                    .bytes("function name", name_ptr, name_len)
                    .and_then(|name| {
                        let name = std::str::from_utf8(name).map_err(|_| {
                            Refusal::new(HostStatus::InvalidUtf8, "chain: the name is not UTF-8")
                        })?;
                        let input = args.bytes("input", input_ptr, input_len);
                        chaining::chain_request(caller.data(), name, input)
                    });
                park_or_refuse(&mut caller, op).map(i64::from)
            },
        )
        .expect("chain is defined once");
    linker
        .func_wrap(
            IMPORT_MODULE,
            IMPORT_AWAIT,
            |mut caller: Caller<'_, HostState>,
             id: i64,
             timeout_ms: i32|
             -> Result<i32, wasmi::Error> {
                let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
                match chaining::await_request(caller.data(), id, timeout) {
                    Ok(Ok(code)) => Ok(code),
                    Ok(Err(op)) => park_or_refuse(&mut caller, Ok(op)),
                    Err(refusal) => park_or_refuse(&mut caller, Err(refusal)),
                }
            },
        )
        .expect("await is defined once");
    linker
        .func_wrap(
            IMPORT_MODULE,
            IMPORT_CALL_OUTPUT,
            |mut caller: Caller<'_, HostState>, id: i64, ptr: i32, len: i32| -> i64 {
                let bytes = match chaining::call_output(caller.data(), id) {
                    Ok(bytes) => bytes,
                    Err(r) => return caller.data_mut().refuse(r.status, r.message).into(),
                };
                match copy_out(&mut caller, &bytes, ptr, len) {
                    Ok(total) => total as i64,
                    Err(status) => caller
                        .data_mut()
                        .refuse(
                            status,
                            "call_output: the buffer lies outside the guest's memory",
                        )
                        .into(),
                }
            },
        )
        .expect("call_output is defined once");
    linker
        .func_wrap(
            IMPORT_MODULE,
            IMPORT_PUBLISH,
            |mut caller: Caller<'_, HostState>,
             topic_ptr: i32,
             topic_len: i32,
             data_ptr: i32,
             data_len: i32|
             -> Result<i32, wasmi::Error> {
                let args = Args::new(&caller, "publish");
                let op: Result<HostOp, Refusal> =
                    args.text("topic", topic_ptr, topic_len).and_then(|topic| {
                        let data = args.bytes("data", data_ptr, data_len);
                        publishing::publish_request(caller.data(), topic, data)
                    });
                park_or_refuse(&mut caller, op)
            },
        )
        .expect("publish is defined once");
    state_import!(linker, IMPORT_STATE_GET, |caller,
                                             k: i32,
                                             kl: i32,
                                             b: i32,
                                             bl: i32|
     -> i64 {
        let args = Args::new(caller, IMPORT_STATE_GET);
        let (key, buf) = (key(&args, IMPORT_STATE_GET, k, kl)?, args.buf(b, bl)?);
        state::get(caller, key, None, buf)
    });
    state_import!(linker, IMPORT_STATE_GET_OFFSET, |caller,
                                                    k: i32,
                                                    kl: i32,
                                                    o: i64,
                                                    b: i32,
                                                    bl: i32|
     -> i64 {
        let import = IMPORT_STATE_GET_OFFSET;
        let args = Args::new(caller, import);
        let (key, buf) = (key(&args, import, k, kl)?, args.buf(b, bl)?);
        let offset = state::offset(import, o)?;
        state::get(caller, key, Some(offset), buf)
    });
    state_import!(linker, IMPORT_STATE_SIZE, |caller,
                                              k: i32,
                                              kl: i32|
     -> i64 {
        let key = key(
            &Args::new(caller, IMPORT_STATE_SIZE),
            IMPORT_STATE_SIZE,
            k,
            kl,
        )?;
        Ok(state::size(caller.data(), key))
    });
    state_import!(linker, IMPORT_STATE_SET, |caller,
                                             k: i32,
                                             kl: i32,
                                             v: i32,
                                             vl: i32|
     -> i32 {
        let args = Args::new(caller, IMPORT_STATE_SET);
        let key = key(&args, IMPORT_STATE_SET, k, kl)?;
        let value = state::value(caller.data(), args.bytes("value", v, vl)?)?;
        state::set(caller.data(), key, value)
    });
    state_import!(linker, IMPORT_STATE_SET_OFFSET, |caller,
                                                    k: i32,
                                                    kl: i32,
                                                    o: i64,
                                                    v: i32,
                                                    vl: i32|
     -> i32 {
        let import = IMPORT_STATE_SET_OFFSET;
        let args = Args::new(caller, import);
        let key = key(&args, import, k, kl)?;
        let bytes = state::value(caller.data(), args.bytes("value", v, vl)?)?;
        let offset = state::offset(import, o)?;
        state::set_offset(caller.data(), key, offset, bytes)
    });
    state_import!(linker, IMPORT_STATE_APPEND, |caller,
                                                k: i32,
                                                kl: i32,
                                                v: i32,
                                                vl: i32|
     -> i32 {
        let args = Args::new(caller, IMPORT_STATE_APPEND);
        let key = key(&args, IMPORT_STATE_APPEND, k, kl)?;
        let element = state::value(caller.data(), args.bytes("value", v, vl)?)?.into();
        Ok(Answer::Park(state::StateOp::Append { key, element }))
    });
    state_import!(linker, IMPORT_STATE_READ_APPENDED, |caller,
                                                       k: i32,
                                                       kl: i32,
                                                       b: i32,
                                                       bl: i32|
     -> i64 {
        let import = IMPORT_STATE_READ_APPENDED;
        let args = Args::new(caller, import);
        let (key, buf) = (key(&args, import, k, kl)?, args.buf(b, bl)?);
        Ok(Answer::Park(state::StateOp::ReadAppended {
            key,
            buf,
            first: None,
        }))
    });
    state_import!(linker, IMPORT_STATE_CLEAR_APPENDED, |caller,
                                                        k: i32,
                                                        kl: i32|
     -> i32 {
        let import = IMPORT_STATE_CLEAR_APPENDED;
        let key = key(&Args::new(caller, import), import, k, kl)?;
        Ok(Answer::Park(state::StateOp::ClearAppended { key }))
    });
    state_import!(linker, IMPORT_STATE_PUSH, |caller,
                                              k: i32,
                                              kl: i32|
     -> i32 {
        let key = key(
            &Args::new(caller, IMPORT_STATE_PUSH),
            IMPORT_STATE_PUSH,
            k,
            kl,
        )?;
        Ok(state::push(caller.data(), key))
    });
    state_import!(linker, IMPORT_STATE_PULL, |caller,
                                              k: i32,
                                              kl: i32|
     -> i32 {
        let key = key(
            &Args::new(caller, IMPORT_STATE_PULL),
            IMPORT_STATE_PULL,
            k,
            kl,
        )?;
        Ok(Answer::Park(state::StateOp::Pull { key }))
    });
    state_import!(linker, IMPORT_STATE_DELETE, |caller,
                                                k: i32,
                                                kl: i32|
     -> i32 {
        let key = key(
            &Args::new(caller, IMPORT_STATE_DELETE),
            IMPORT_STATE_DELETE,
            k,
            kl,
        )?;
        Ok(state::delete(caller.data(), key))
    });
    state_import!(linker, IMPORT_STATE_LOCK, |caller,
                                              k: i32,
                                              kl: i32,
                                              mode: i32|
     -> i32 {
        let key = key(
            &Args::new(caller, IMPORT_STATE_LOCK),
            IMPORT_STATE_LOCK,
            k,
            kl,
        )?;
        state::lock(caller.data_mut(), key, mode)
    });
    state_import!(linker, IMPORT_STATE_UNLOCK, |caller,
                                                k: i32,
                                                kl: i32,
                                                mode: i32|
     -> i32 {
        let key = key(
            &Args::new(caller, IMPORT_STATE_UNLOCK),
            IMPORT_STATE_UNLOCK,
            k,
            kl,
        )?;
        state::unlock(caller.data_mut(), key, mode)
    });
}

/// Every import ABI v1 guests may use.
pub(crate) const V1_IMPORTS: &[ImportSignature] = &[
    (
        abi::IMPORT_MODULE,
        abi::IMPORT_LOG,
        &[ValType::I32, ValType::I32, ValType::I32],
        &[ValType::I32],
    ),
    (
        abi::IMPORT_MODULE,
        abi::IMPORT_FAIL,
        &[ValType::I32, ValType::I32],
        &[ValType::I32],
    ),
    (
        abi::IMPORT_MODULE,
        abi::IMPORT_LAST_ERROR,
        &[ValType::I32, ValType::I32],
        &[ValType::I32],
    ),
    (
        abi::IMPORT_MODULE,
        abi::IMPORT_CHAIN,
        &[ValType::I32, ValType::I32, ValType::I32, ValType::I32],
        &[ValType::I64],
    ),
    (
        abi::IMPORT_MODULE,
        abi::IMPORT_PUBLISH,
        &[ValType::I32, ValType::I32, ValType::I32, ValType::I32],
        &[ValType::I32],
    ),
    (
        abi::IMPORT_MODULE,
        abi::IMPORT_AWAIT,
        &[ValType::I64, ValType::I32],
        &[ValType::I32],
    ),
    (
        abi::IMPORT_MODULE,
        abi::IMPORT_CALL_OUTPUT,
        &[ValType::I64, ValType::I32, ValType::I32],
        &[ValType::I64],
    ),
    (
        abi::IMPORT_MODULE,
        abi::IMPORT_STATE_GET,
        &[ValType::I32, ValType::I32, ValType::I32, ValType::I32],
        &[ValType::I64],
    ),
    (
        abi::IMPORT_MODULE,
        abi::IMPORT_STATE_GET_OFFSET,
        &[
            ValType::I32,
            ValType::I32,
            ValType::I64,
            ValType::I32,
            ValType::I32,
        ],
        &[ValType::I64],
    ),
    (
        abi::IMPORT_MODULE,
        abi::IMPORT_STATE_SIZE,
        &[ValType::I32, ValType::I32],
        &[ValType::I64],
    ),
    (
        abi::IMPORT_MODULE,
        abi::IMPORT_STATE_SET,
        &[ValType::I32, ValType::I32, ValType::I32, ValType::I32],
        &[ValType::I32],
    ),
    (
        abi::IMPORT_MODULE,
        abi::IMPORT_STATE_SET_OFFSET,
        &[
            ValType::I32,
            ValType::I32,
            ValType::I64,
            ValType::I32,
            ValType::I32,
        ],
        &[ValType::I32],
    ),
    (
        abi::IMPORT_MODULE,
        abi::IMPORT_STATE_APPEND,
        &[ValType::I32, ValType::I32, ValType::I32, ValType::I32],
        &[ValType::I32],
    ),
    (
        abi::IMPORT_MODULE,
        abi::IMPORT_STATE_READ_APPENDED,
        &[ValType::I32, ValType::I32, ValType::I32, ValType::I32],
        &[ValType::I64],
    ),
    (
        abi::IMPORT_MODULE,
        abi::IMPORT_STATE_CLEAR_APPENDED,
        &[ValType::I32, ValType::I32],
        &[ValType::I32],
    ),
    (
        abi::IMPORT_MODULE,
        abi::IMPORT_STATE_PUSH,
        &[ValType::I32, ValType::I32],
        &[ValType::I32],
    ),
    (
        abi::IMPORT_MODULE,
        abi::IMPORT_STATE_PULL,
        &[ValType::I32, ValType::I32],
        &[ValType::I32],
    ),
    (
        abi::IMPORT_MODULE,
        abi::IMPORT_STATE_DELETE,
        &[ValType::I32, ValType::I32],
        &[ValType::I32],
    ),
    (
        abi::IMPORT_MODULE,
        abi::IMPORT_STATE_LOCK,
        &[ValType::I32, ValType::I32, ValType::I32],
        &[ValType::I32],
    ),
    (
        abi::IMPORT_MODULE,
        abi::IMPORT_STATE_UNLOCK,
        &[ValType::I32, ValType::I32, ValType::I32],
        &[ValType::I32],
    ),
];
