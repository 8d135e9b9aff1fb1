//! proxy-wasm guests, as Layotto runs its FaaS functions and Envoy its HTTP filters: a module
//! that exports a `proxy_abi_version_*` marker gets a fresh instance per call, the plugin's
//! start-up callbacks and then one HTTP stream, the call's request (see [`steps`]). The reply
//! is the local response the guest sent, else the response body buffer with the response
//! headers it set. Every host function the proxy-wasm Rust SDK links is provided (see
//! [`imports`]), with Layotto's `proxy_get_state` and `proxy_invoke_service` (see
//! [`layotto`]).

mod guest;
mod imports;
mod layotto;
mod maps;
mod status;
mod steps;
mod stream;

use fwasm_proto::pb::{Call, FailureKind};
use wasmi::{Instance, Linker, Memory, Module, Store, Val, ValType};

use super::{
    Abi, Adapter, Ended, Entry, Next, ValidationError, expect_func, expect_imports, expect_memory,
    exports, http, net, sidecar, wasi_preview1,
};
use crate::call::{Context, Failure};
use crate::host::HostState;
use crate::host::io::{ProcExit, Streams};
use crate::limits::Limits;
use steps::{Callbacks, Step, has_body_step, next_entry};
use stream::ProxyCall;

pub(crate) use imports::IMPORTS;

pub(crate) struct ProxyWasm;

/// The markers of the proxy-wasm ABI versions fwasm runs.
const MARKERS: [&str; 3] = [
    "proxy_abi_version_0_1_0",
    "proxy_abi_version_0_2_0",
    "proxy_abi_version_0_2_1",
];

/// What a proxy-wasm module may import, for the message about one it may not.
const PROVIDES: &str = "it provides the proxy-wasm host functions (module `env`) that the \
proxy-wasm SDKs link, Layotto's `proxy_get_state` and `proxy_invoke_service`, the \
sidecar's `fwasm_sidecar` and WASI preview1, `wasi_snapshot_preview1`";

/// Layotto's export that sets the function's id (in the call-data buffer).
const EXPORT_GET_ID: &str = "proxy_get_id";

use ValType::I32;

/// Callbacks with their types, checked at upload when the module exports them.
const CALLBACKS: &[(&str, &[ValType], &[ValType], &str)] = &[
    ("proxy_on_context_create", &[I32, I32], &[], "(i32, i32)"),
    (
        "proxy_on_vm_start",
        &[I32, I32],
        &[I32],
        "(i32, i32) -> i32",
    ),
    (
        "proxy_on_configure",
        &[I32, I32],
        &[I32],
        "(i32, i32) -> i32",
    ),
    (
        "proxy_on_request_body",
        &[I32, I32, I32],
        &[I32],
        "(i32, i32, i32) -> i32",
    ),
    ("proxy_on_done", &[I32], &[I32], "(i32) -> i32"),
    ("proxy_on_delete", &[I32], &[], "(i32)"),
    (EXPORT_GET_ID, &[], &[], "() -> ()"),
    ("_start", &[], &[], "() -> ()"),
];

impl Adapter for ProxyWasm {
    fn abis(&self) -> &'static [Abi] {
        &[Abi::ProxyWasm]
    }

    fn recognise(&self, module: &Module) -> Option<Abi> {
        MARKERS
            .iter()
            .any(|marker| exports(module, marker))
            .then_some(Abi::ProxyWasm)
    }

    fn check(&self, module: &Module, abi: Abi) -> Result<(), ValidationError> {
        expect_memory(module, abi)?;
        let allocator = ["proxy_on_memory_allocate", "malloc"]
            .into_iter()
            .find(|name| exports(module, name))
            .unwrap_or("proxy_on_memory_allocate");
        expect_func(module, abi, allocator, &[I32], &[I32], "(i32) -> i32")?;
        expect_func(
            module,
            abi,
            CALLBACKS[0].0,
            CALLBACKS[0].1,
            CALLBACKS[0].2,
            CALLBACKS[0].3,
        )?;
        for (name, params, results, expected) in CALLBACKS {
            if exports(module, name) {
                expect_func(module, abi, name, params, results, expected)?;
            }
        }
        let headers = "proxy_on_request_headers";
        if exports(module, headers) {
            let three = expect_func(
                module,
                abi,
                headers,
                &[I32, I32, I32],
                &[I32],
                "(i32, i32, i32) -> i32",
            );
            // proxy-wasm 0.1.0's has no end_of_stream.
            if three.is_err() {
                expect_func(
                    module,
                    abi,
                    headers,
                    &[I32, I32],
                    &[I32],
                    "(i32, i32, i32) -> i32",
                )
                .map_err(|_| three.unwrap_err())?;
            }
        }
        let known = IMPORTS
            .iter()
            .chain(sidecar::IMPORTS)
            .chain(http::IMPORTS)
            .chain(net::IMPORTS)
            .copied()
            .chain(wasi_preview1::signatures());
        expect_imports(module, known, PROVIDES)
    }

    fn define_imports(&self, linker: &mut Linker<HostState>) {
        imports::define_imports(linker);
        sidecar::define_imports(linker);
        http::define_imports(linker);
        net::define_imports(linker);
        wasi_preview1::define_imports(linker);
    }

    fn streams(&self) -> Streams {
        Streams::Console
    }

    fn entry(&self) -> &'static str {
        "its proxy-wasm callbacks"
    }

    fn enter(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
        _memory: Memory,
        cx: &Context<'_>,
    ) -> Result<Entry, Failure> {
        let mut proxy = ProxyCall::new(
            cx.call,
            cx.limits.max_memory_bytes,
            cx.limits.max_output_bytes,
        );
        proxy.callbacks = Callbacks::of(store, instance);
        proxy.allocator = allocator(store, instance);
        let Some((step, entry)) = next_entry(&proxy, Step::Instantiated) else {
            return Err(Failure::new(
                FailureKind::AbiViolation,
                format!("{} exports no proxy-wasm callback", cx.name()),
            ));
        };
        proxy.step = step;
        store.data_mut().abi_state = Some(Box::new(proxy));
        Ok(entry)
    }

    fn next(
        &self,
        store: &mut Store<HostState>,
        _memory: Memory,
        ended: Ended<'_>,
        cx: &Context<'_>,
    ) -> Result<Next, Failure> {
        let action = match ended {
            Ended::Returned([Val::I32(action)]) => *action,
            _ => 0,
        };
        let mut proxy = take_proxy(store, cx)?;
        let step = proxy.step;
        if matches!(step, Step::RequestHeaders | Step::RequestBody) {
            if proxy.reset {
                return Err(Failure::new(
                    FailureKind::Trap,
                    format!(
                        "{} reset the request in {} (proxy_close_stream)",
                        cx.name(),
                        step.export()
                    ),
                ));
            }
            let last = step == Step::RequestBody || !has_body_step(&proxy);
            if proxy.local_response.is_some() || (last && action == 0) {
                proxy.reply = Some(proxy.take_reply());
            } else if last {
                return Err(Failure::new(
                    FailureKind::Trap,
                    format!(
                        "{} paused the request in {} and never answered: a proxy-wasm function \
                         on fwasm answers within its request callbacks, with the response body \
                         buffer or proxy_send_local_response",
                        cx.name(),
                        step.export()
                    ),
                ));
            }
        }
        match next_entry(&proxy, step) {
            Some((step, entry)) => {
                proxy.step = step;
                store.data_mut().abi_state = Some(proxy);
                Ok(Next::Entry(entry))
            }
            None => Ok(Next::Reply(match proxy.reply.take() {
                Some(reply) => reply,
                None => proxy.take_reply(),
            })),
        }
    }
}

/// The guest's allocator: `proxy_on_memory_allocate`, else the deprecated `malloc`.
fn allocator(store: &Store<HostState>, instance: &Instance) -> Option<wasmi::Func> {
    instance
        .get_func(store, "proxy_on_memory_allocate")
        .or_else(|| instance.get_func(store, "malloc"))
}

fn take_proxy(store: &mut Store<HostState>, cx: &Context<'_>) -> Result<Box<ProxyCall>, Failure> {
    store
        .data_mut()
        .abi_state
        .take()
        .and_then(|state| state.downcast::<ProxyCall>().ok())
        .ok_or_else(|| internal(cx))
}

fn internal(cx: &Context<'_>) -> Failure {
    Failure::new(
        FailureKind::Trap,
        format!("internal error: {} lost its proxy-wasm stream", cx.name()),
    )
}

/// Fuel for a module's start-up at upload: plenty for setting an id, and little enough that
/// a start-up that never ends is refused in a fraction of a second.
const START_FUEL: u64 = 200_000_000;

/// Runs a module's start-up as Layotto does when it loads a function (`_initialize` or
/// `_start`, then `proxy_get_id`) and returns the id it set in the call-data buffer.
pub(crate) fn read_id(module: &Module) -> Result<Option<String>, String> {
    if !exports(module, EXPORT_GET_ID) {
        return Ok(None);
    }
    let limits = Limits::default();
    let engine = module.engine();
    let mut linker = Linker::new(engine);
    ProxyWasm.define_imports(&mut linker);
    let mut host = HostState::standalone(&limits, Streams::Console);
    host.abi_state = Some(Box::new(ProxyCall::new(
        &Call::default(),
        limits.max_memory_bytes,
        limits.max_output_bytes,
    )));
    let mut store = Store::new(engine, host);
    store.limiter(|host| &mut host.limiter);
    store
        .set_fuel(START_FUEL)
        .map_err(|e| format!("internal error: {e}"))?;
    let failed = |store: &Store<HostState>, what: &str, e: wasmi::Error| {
        if matches!(e.downcast_ref::<ProcExit>(), Some(ProcExit(0))) {
            return None;
        }
        let reason = store
            .data()
            .failure_reason
            .clone()
            .unwrap_or_else(|| e.to_string());
        Some(format!("{what} failed: {reason}"))
    };
    let instance = linker
        .instantiate_and_start(&mut store, module)
        .map_err(|e| failed(&store, "instantiation", e).unwrap_or_default())?;
    let memory = instance.get_memory(&store, "memory");
    store.data_mut().memory = memory;
    let allocator = allocator(&store, &instance);
    if let Some(proxy) = store
        .data_mut()
        .abi_state
        .as_mut()
        .and_then(|s| s.downcast_mut::<ProxyCall>())
    {
        proxy.allocator = allocator;
    }
    for name in ["_initialize", "_start", EXPORT_GET_ID] {
        if name == "_start" && instance.get_func(&store, "_initialize").is_some() {
            continue;
        }
        let Some(func) = instance.get_func(&store, name) else {
            continue;
        };
        if let Err(e) = func.call(&mut store, &[], &mut [])
            && let Some(message) = failed(&store, name, e)
        {
            return Err(message);
        }
    }
    let host = store.data_mut();
    let proxy = host
        .abi_state
        .as_ref()
        .and_then(|s| s.downcast_ref::<ProxyCall>());
    let id = proxy.map(|p| String::from_utf8_lossy(&p.call_data).into_owned());
    Ok(id.filter(|id| !id.is_empty()))
}
