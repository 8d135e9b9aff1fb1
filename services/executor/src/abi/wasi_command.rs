//! WASI commands as functions, as Wagi made them for Spin: any program with a `main` built for
//! WASI preview1 (clang's wasm32-wasi, Rust's wasm32-wasip1) runs without an SDK. The request
//! body is its stdin and its stdout the reply body; stderr goes to the call's logs; argv is the
//! function's name and then the call's command line; the environment is the function's
//! settings; a non-zero exit code fails the call with that code.

use bytes::Bytes;
use fwasm_proto::pb::{CallResult, FailureKind};
use wasmi::{Instance, Linker, Memory, Module, Store};

use super::{
    Abi, Adapter, EXPORT_START, Ended, Entry, Next, ValidationError, expect_func, expect_imports,
    expect_memory, exports, http, net, sidecar, start_entry, wasi_preview1,
};
use crate::call::{Context, Failure};
use crate::host::HostState;
use crate::host::io::Streams;

pub(crate) struct WasiCommand;

impl Adapter for WasiCommand {
    fn abis(&self) -> &'static [Abi] {
        &[Abi::WasiCommand]
    }

    fn recognise(&self, module: &Module) -> Option<Abi> {
        exports(module, EXPORT_START).then_some(Abi::WasiCommand)
    }

    fn check(&self, module: &Module, abi: Abi) -> Result<(), ValidationError> {
        expect_func(module, abi, EXPORT_START, &[], &[], "() -> ()")?;
        expect_memory(module, abi)?;
        expect_imports(
            module,
            wasi_preview1::signatures()
                .chain(sidecar::IMPORTS.iter().copied())
                .chain(http::IMPORTS.iter().copied())
                .chain(net::IMPORTS.iter().copied()),
            "a WASI command may import only WASI preview1, `wasi_snapshot_preview1`, and the \
             sidecar's `fwasm_sidecar`",
        )
    }

    fn define_imports(&self, linker: &mut Linker<HostState>) {
        wasi_preview1::define_imports(linker);
        sidecar::define_imports(linker);
        http::define_imports(linker);
        net::define_imports(linker);
    }

    fn streams(&self) -> Streams {
        Streams::Program
    }

    fn entry(&self) -> &'static str {
        EXPORT_START
    }

    fn enter(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
        _memory: Memory,
        cx: &Context<'_>,
    ) -> Result<Entry, Failure> {
        start_entry(store, instance, cx)
    }

    fn next(
        &self,
        store: &mut Store<HostState>,
        _memory: Memory,
        _ended: Ended<'_>,
        cx: &Context<'_>,
    ) -> Result<Next, Failure> {
        let io = &mut store.data_mut().io;
        let Some(reply) = io.take_reply() else {
            return Err(Failure::new(
                FailureKind::OutputLimit,
                format!(
                    "{} printed more output than its limit of {} bytes",
                    cx.name(),
                    io.max_reply()
                ),
            ));
        };
        Ok(Next::Reply(CallResult {
            http_status: 200,
            output: Bytes::from(reply),
            ..CallResult::default()
        }))
    }
}
