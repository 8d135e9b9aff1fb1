//! The guest ABIs fwasm runs, each an adapter over the host capabilities in [`crate::host`]:
//! it declares the markers and imports that identify its modules, defines its imports, and
//! says how a request becomes a call of its exports and how the reply is read back. Adding an
//! ABI is one new module here, plus its name in [`Abi`] (and [`BUILD_HINTS`]) and its place in
//! [`ADAPTERS`].
//!
//! Detection happens at upload (and again when an executor compiles a module): the first
//! adapter that recognises a module's markers and imports checks it in detail, and a module no
//! adapter recognises is refused with a message that says how to build for each.

pub(crate) mod faasm_host;
pub(crate) mod fwasm_v1;
pub(crate) mod http;
pub(crate) mod net;
pub(crate) mod proxy_wasm;
pub(crate) mod sidecar;
pub(crate) mod wasi_command;
pub(crate) mod wasi_preview1;
mod wasi_sockets;

use fwasm_proto::pb::{CallResult, FailureKind};
use wasmi::{
    Engine, ExternType, Func, FuncType, Instance, Linker, Memory, Module, Store, Val, ValType,
};

use crate::call::{Context, Failure};
use crate::host::HostState;
use crate::host::io::Streams;
use crate::snapshot::InitPlan;

/// The guest ABI a module speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Abi {
    FwasmV1,
    /// Faasm's C API (`faasm/faasm.h`), as sdk-c implements it on fwasm v1.
    FaasmC,
    /// A WASI preview1 program with `main`: request body on stdin, reply on stdout.
    WasiCommand,
    /// proxy-wasm (0.1.0, 0.2.0, 0.2.1) HTTP filters and Layotto's FaaS functions.
    ProxyWasm,
    /// Binaries built by Faasm's own toolchain: Faasm's raw host interface (`env.__faasm_*`).
    FaasmHost,
}

/// The environment Faasm gives every function (beneath the function's own settings).
const FAASM_ENV: &[(&str, &str)] = &[
    ("MKL_NUM_THREADS", "1"),
    ("OPENBLAS_NUM_THREADS", "1"),
    ("PYTHONHASHSEED", "0"),
    ("PYTHONHOME", "/"),
    ("PYTHONNOUSERSITE", "on"),
    ("PYTHONWASM", "1"),
    ("PYTHON_PATH", "/"),
];

impl Abi {
    /// What a function of this ABI finds in its environment besides its settings: Faasm's
    /// conventions for Faasm's ABIs, nothing for the others.
    pub(crate) fn default_env(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Abi::FaasmC | Abi::FaasmHost => FAASM_ENV,
            Abi::FwasmV1 | Abi::WasiCommand | Abi::ProxyWasm => &[],
        }
    }

    pub const ALL: [Abi; 5] = [
        Abi::FwasmV1,
        Abi::FaasmC,
        Abi::WasiCommand,
        Abi::ProxyWasm,
        Abi::FaasmHost,
    ];
}

/// The marker export of a module built against sdk-c's Faasm headers.
pub const EXPORT_FAASM_MARKER: &str = "fwasm_faasm_api";

impl std::fmt::Display for Abi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Abi::FwasmV1 => f.write_str("fwasm v1"),
            Abi::FaasmC => f.write_str("Faasm C API (on fwasm v1)"),
            Abi::WasiCommand => f.write_str("WASI command"),
            Abi::ProxyWasm => f.write_str("proxy-wasm"),
            Abi::FaasmHost => f.write_str("Faasm host interface"),
        }
    }
}

/// One guest ABI over the host capabilities.
pub(crate) trait Adapter: Sync {
    /// The ABIs this adapter runs.
    fn abis(&self) -> &'static [Abi];
    /// The ABI a module speaks if its markers and imports say it is this adapter's.
    fn recognise(&self, module: &Module) -> Option<Abi>;
    /// Checks a recognised module's exports and imports in detail.
    fn check(&self, module: &Module, abi: Abi) -> Result<(), ValidationError>;
    /// Defines every import this ABI's guests may use.
    fn define_imports(&self, linker: &mut Linker<HostState>);
    /// Where the call's standard streams go.
    fn streams(&self) -> Streams;
    /// The export the call runs, for messages.
    fn entry(&self) -> &'static str;
    /// Hands a fresh instance the request: the export to run (resumably) and its arguments.
    fn enter(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
        memory: Memory,
        cx: &Context<'_>,
    ) -> Result<Entry, Failure>;
    /// What follows once an entry ended (it returned `results`, or the guest exited with 0):
    /// the reply, or the next entry of an ABI that hands a request over in several callbacks.
    fn next(
        &self,
        store: &mut Store<HostState>,
        memory: Memory,
        ended: Ended<'_>,
        cx: &Context<'_>,
    ) -> Result<Next, Failure>;
}

/// What follows an entry.
pub(crate) enum Next {
    Reply(CallResult),
    Entry(Entry),
}

/// The export a call runs, with its arguments and room for its results.
pub(crate) struct Entry {
    pub(crate) func: Func,
    pub(crate) params: Vals,
    pub(crate) results: Vals,
}

/// An entry's arguments or results: at most three values, kept inline so that starting a call
/// allocates nothing for them.
pub(crate) struct Vals {
    vals: [Val; 3],
    len: usize,
}

impl Vals {
    pub(crate) fn new(vals: &[Val]) -> Self {
        let mut inline = [Val::I32(0), Val::I32(0), Val::I32(0)];
        inline[..vals.len()].clone_from_slice(vals);
        Self {
            vals: inline,
            len: vals.len(),
        }
    }

    pub(crate) fn as_slice(&self) -> &[Val] {
        &self.vals[..self.len]
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [Val] {
        &mut self.vals[..self.len]
    }
}

/// How a call's entry ended without failing.
pub(crate) enum Ended<'a> {
    Returned(&'a [Val]),
    /// `proc_exit(0)`.
    Exited,
}

/// Every adapter, in the order they are tried: the ones with markers first, the WASI command
/// (anything with `_start`) last.
pub(crate) const ADAPTERS: &[&dyn Adapter] = &[
    &fwasm_v1::FwasmV1,
    &proxy_wasm::ProxyWasm,
    &faasm_host::FaasmHost,
    &wasi_command::WasiCommand,
];

/// Parks the call to fetch `what`; once fetched, `keep` holds the bytes for the guest's
/// `answer` import and their length is the import's result (a refusal's status otherwise,
/// explained by `last_error`).
pub(crate) fn park_for_answer(
    caller: &mut wasmi::Caller<'_, HostState>,
    what: Result<crate::host::fetch::Fetch, crate::host::park::Refusal>,
    keep: fn(&mut HostState, bytes::Bytes),
) -> Result<i64, wasmi::Error> {
    use crate::host::fetch::FetchOp;
    use crate::host::park::{HostOp, park};
    let op = what.map(|what| {
        HostOp::Fetch(FetchOp {
            what,
            then: Box::new(move |store, _memory, answered| {
                let host = store.data_mut();
                match answered {
                    Ok(bytes) => {
                        let len = bytes.len() as i64;
                        keep(host, bytes);
                        len
                    }
                    Err(refusal) => {
                        host.outbound.received(refusal.received);
                        host.refuse(refusal.status, refusal.message).into()
                    }
                }
            }),
        })
    });
    match op.and_then(|op| park(caller, op)) {
        Ok(suspend) => Err(suspend),
        Err(refusal) => Ok(caller
            .data_mut()
            .refuse(refusal.status, refusal.message)
            .into()),
    }
}

/// `MODULE.last_error(buf, buf_len) -> i32`: the last refusal's message, as
/// `fwasm_v1.last_error` (for the import modules every ABI's guests may use).
pub(crate) fn define_last_error(linker: &mut Linker<HostState>, module: &'static str) {
    linker
        .func_wrap(
            module,
            "last_error",
            |mut caller: wasmi::Caller<'_, HostState>, ptr: i32, len: i32| -> i32 {
                let message = caller.data().last_error.clone().unwrap_or_default();
                match crate::host::memory::copy_out(&mut caller, message.as_bytes(), ptr, len) {
                    Ok(total) => total as i32,
                    Err(status) => status.code(),
                }
            },
        )
        .expect("last_error is defined once per module");
}

/// The adapter that runs modules of `abi`.
pub(crate) fn adapter(abi: Abi) -> &'static dyn Adapter {
    *ADAPTERS
        .iter()
        .find(|adapter| adapter.abis().contains(&abi))
        .expect("every ABI has an adapter")
}

/// What fwasm runs and how to build for it, for a module that speaks none of its ABIs.
pub const BUILD_HINTS: &str = "fwasm runs these ABIs: \
fwasm v1 (exports `fwasm_abi_v1`; Rust with the fwasm-sdk crate, C or C++ with `fwasm build`), \
the Faasm C API on fwasm v1 (`#include <faasm/faasm.h>`, built with `fwasm build --api faasm`), \
WASI commands (a plain `main` that exports `_start` and imports only `wasi_snapshot_preview1`: \
`clang --target=wasm32-wasi` or `cargo build --target wasm32-wasip1`), \
proxy-wasm filters and Layotto functions (export `proxy_abi_version_0_2_1`, `_0_2_0` or `_0_1_0`; \
the proxy-wasm Rust SDK does), \
and binaries built by Faasm's own toolchain (import Faasm's host interface, `env.__faasm_*`, and export `_start`); \
see ABI.md, \"ABIs fwasm runs\"";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("not a valid WebAssembly module: {0}")]
    InvalidWasm(String),
    /// A module that speaks none of the ABIs fwasm runs.
    #[error(
        "module speaks no ABI fwasm runs: it has no ABI's marker (such as the export `_start` or `fwasm_abi_v1`). {BUILD_HINTS}"
    )]
    UnknownAbi,
    #[error(
        "module does not declare a known ABI: export `{}` (function-wasm v1) is missing; build it with fwasm-sdk",
        fwasm_abi::EXPORT_ABI_MARKER
    )]
    NoAbiMarker,
    #[error("module is missing the export `{name}` ({expected}) that ABI {abi} requires")]
    MissingExport {
        abi: Abi,
        name: &'static str,
        expected: &'static str,
    },
    #[error("export `{name}` has the wrong type: expected {expected}, found {found}")]
    WrongExportType {
        name: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("module imports `{module}.{name}`, which fwasm does not provide ({provides})")]
    UnknownImport {
        module: String,
        name: String,
        /// What the module's ABI offers instead.
        provides: &'static str,
    },
    /// A module whose start-up (run at upload to read what it declares) failed.
    #[error("module failed while it started: {0}")]
    StartFailed(String),
    #[error(
        "export `{0}` has a name fwasm keeps for itself (names beginning `fwasm:global:`): \
         rename it"
    )]
    ReservedExport(String),
    /// Its initialisation, run once as a check, failed: every call would.
    #[error("module failed in its initialisation, which runs before its first call: {0}")]
    InitFailed(String),
    #[error("import `{module}.{name}` has the wrong type: expected {expected}, found {found}")]
    WrongImportType {
        module: String,
        name: String,
        expected: String,
        found: String,
    },
}

/// A host function the executor provides: (module, name, params, results).
pub(crate) type ImportSignature = (
    &'static str,
    &'static str,
    &'static [ValType],
    &'static [ValType],
);

const WASM_MAGIC: &[u8] = b"\0asm";

/// What an upload learns of a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    pub abi: Abi,
    /// The id a proxy-wasm module's `proxy_get_id` gives (Layotto's function id).
    pub proxy_id: Option<String>,
}

/// Compiles `wasm` on a throwaway engine (wasmi engines never free code), finds its ABI and,
/// for a proxy-wasm module, runs its start-up to read the id it gives.
pub fn validate(wasm: &[u8]) -> Result<Validated, ValidationError> {
    validate_with(wasm, None)
}

/// [`validate`] for a function with `settings`: its initialisation, if it has one, runs as
/// a check with the function's environment.
pub fn validate_with(
    wasm: &[u8],
    settings: Option<&fwasm_proto::pb::FunctionSettings>,
) -> Result<Validated, ValidationError> {
    if !wasm.starts_with(WASM_MAGIC) {
        return Err(ValidationError::InvalidWasm(
            "it does not start with the \\0asm magic bytes (upload the compiled .wasm binary, not source or text)".into(),
        ));
    }
    // Metered, as every executor's is: validation may run a module's start-up.
    let mut config = wasmi::Config::default();
    config.consume_fuel(true);
    let engine = Engine::new(&config);
    let module =
        Module::new(&engine, wasm).map_err(|e| ValidationError::InvalidWasm(e.to_string()))?;
    let abi = check_abi(&module)?;
    let proxy_id = match abi {
        Abi::ProxyWasm => proxy_wasm::read_id(&module).map_err(ValidationError::StartFailed)?,
        _ => None,
    };
    if let Some(plan) = InitPlan::of(&module, abi) {
        crate::snapshot::try_init(&module, abi, plan, settings)
            .map_err(ValidationError::InitFailed)?;
    }
    Ok(Validated { abi, proxy_id })
}

/// The ABI of a compiled module: the first adapter that recognises it checks it.
pub(crate) fn check_abi(module: &Module) -> Result<Abi, ValidationError> {
    for adapter in ADAPTERS {
        if let Some(abi) = adapter.recognise(module) {
            adapter.check(module, abi)?;
            return Ok(abi);
        }
    }
    Err(ValidationError::UnknownAbi)
}

/// The entry of a WASI program: its `_start`, run without arguments.
pub(crate) fn start_entry(
    store: &Store<HostState>,
    instance: &Instance,
    cx: &Context<'_>,
) -> Result<Entry, Failure> {
    let start = instance.get_func(store, EXPORT_START).ok_or_else(|| {
        Failure::new(
            FailureKind::AbiViolation,
            format!("{} exports no {EXPORT_START}", cx.name()),
        )
    })?;
    Ok(Entry {
        func: start,
        params: Vals::new(&[]),
        results: Vals::new(&[]),
    })
}

/// The entry of a WASI program (wasi-libc's and Rust's `_start` run `main`).
pub(crate) const EXPORT_START: &str = "_start";

/// Fails a call whose output of `len` bytes is over its limit.
pub(crate) fn check_output(len: usize, cx: &Context<'_>) -> Result<(), Failure> {
    if len <= cx.limits.max_output_bytes {
        return Ok(());
    }
    Err(Failure::new(
        FailureKind::OutputLimit,
        format!(
            "{} returned {len} bytes of output, over the limit of {} bytes",
            cx.name(),
            cx.limits.max_output_bytes
        ),
    ))
}

/// Whether `module` exports anything named `name`.
pub(crate) fn exports(module: &Module, name: &str) -> bool {
    module.get_export(name).is_some()
}

/// Checks that `name` is an exported function of type `params -> results`.
pub(crate) fn expect_func(
    module: &Module,
    abi: Abi,
    name: &'static str,
    params: &[ValType],
    results: &[ValType],
    expected: &'static str,
) -> Result<(), ValidationError> {
    match module.get_export(name) {
        Some(ExternType::Func(ty)) if ty.params() == params && ty.results() == results => Ok(()),
        Some(other) => Err(ValidationError::WrongExportType {
            name,
            expected,
            found: describe(&other),
        }),
        None => Err(ValidationError::MissingExport {
            abi,
            name,
            expected,
        }),
    }
}

/// Checks that the module exports its memory as `memory`.
pub(crate) fn expect_memory(module: &Module, abi: Abi) -> Result<(), ValidationError> {
    match module.get_export(fwasm_abi::EXPORT_MEMORY) {
        Some(ExternType::Memory(_)) => Ok(()),
        Some(other) => Err(ValidationError::WrongExportType {
            name: fwasm_abi::EXPORT_MEMORY,
            expected: "a memory",
            found: describe(&other),
        }),
        None => Err(ValidationError::MissingExport {
            abi,
            name: fwasm_abi::EXPORT_MEMORY,
            expected: "a memory",
        }),
    }
}

/// Checks every import against the signatures `known` yields; `provides` says what the ABI
/// offers, for an import it does not.
pub(crate) fn expect_imports<'a>(
    module: &Module,
    known: impl Iterator<Item = ImportSignature> + Clone + 'a,
    provides: &'static str,
) -> Result<(), ValidationError> {
    for import in module.imports() {
        let found = known
            .clone()
            .find(|(m, n, ..)| *m == import.module() && *n == import.name());
        let Some((_, _, params, results)) = found else {
            return Err(ValidationError::UnknownImport {
                module: import.module().into(),
                name: import.name().into(),
                provides,
            });
        };
        let matches = matches!(import.ty(), ExternType::Func(ty) if ty.params() == params && ty.results() == results);
        if !matches {
            return Err(ValidationError::WrongImportType {
                module: import.module().into(),
                name: import.name().into(),
                expected: signature(params, results),
                found: describe(import.ty()),
            });
        }
    }
    Ok(())
}

fn describe(ty: &ExternType) -> String {
    match ty {
        ExternType::Func(f) => func_signature(f),
        ExternType::Memory(_) => "a memory".into(),
        ExternType::Table(_) => "a table".into(),
        ExternType::Global(_) => "a global".into(),
    }
}

fn func_signature(f: &FuncType) -> String {
    signature(f.params(), f.results())
}

fn signature(params: &[ValType], results: &[ValType]) -> String {
    let list = |types: &[ValType]| {
        types
            .iter()
            .map(|t| format!("{t:?}").to_lowercase())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match results {
        [] => format!("({})", list(params)),
        [one] => format!("({}) -> {}", list(params), list(std::slice::from_ref(one))),
        many => format!("({}) -> ({})", list(params), list(many)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"(module
        (import "fwasm_v1" "log" (func (param i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "fwasm_abi_v1"))
        (func (export "fwasm_alloc") (param i32) (result i32) i32.const 1024)
        (func (export "fwasm_handle") (param i32 i32) (result i64) i64.const 0))"#;

    fn check(wat: &str) -> Result<Abi, ValidationError> {
        validate(&wat::parse_str(wat).unwrap()).map(|validated| validated.abi)
    }

    #[test]
    fn accepts_a_complete_v1_module() {
        assert_eq!(check(GOOD), Ok(Abi::FwasmV1));
    }

    #[test]
    fn rejects_bytes_that_are_not_wasm() {
        let err = validate(b"definitely not wasm").unwrap_err();
        assert!(matches!(err, ValidationError::InvalidWasm(_)), "{err}");
        assert!(
            err.to_string()
                .starts_with("not a valid WebAssembly module: "),
            "{err}"
        );
        assert!(matches!(
            validate(b""),
            Err(ValidationError::InvalidWasm(_))
        ));
        // Right magic, broken body: wasmi's parser names the problem.
        let err = validate(b"\0asm\x01\0\0\0\x01").unwrap_err();
        assert!(matches!(err, ValidationError::InvalidWasm(_)), "{err}");
    }

    #[test]
    fn rejects_a_module_without_the_marker() {
        let err = check(&GOOD.replace("(export \"fwasm_abi_v1\")", "")).unwrap_err();
        assert_eq!(err, ValidationError::NoAbiMarker);
        assert!(err.to_string().contains("fwasm_abi_v1"));
    }

    #[test]
    fn names_a_missing_export() {
        let err = check(&GOOD.replace("(export \"fwasm_handle\")", "")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "module is missing the export `fwasm_handle` ((i32, i32) -> i64) that ABI fwasm v1 requires"
        );
        let err = check(&GOOD.replace("(export \"memory\")", "")).unwrap_err();
        assert!(err.to_string().contains("`memory`"), "{err}");
    }

    #[test]
    fn names_an_export_with_the_wrong_type() {
        let err = check(&GOOD.replace(
            "(param i32) (result i32) i32.const 1024",
            "(result i32) i32.const 1024",
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "export `fwasm_alloc` has the wrong type: expected (i32) -> i32, found () -> i32"
        );
    }

    #[test]
    fn the_marker_must_be_a_function_of_no_arguments() {
        let err = check(&GOOD.replace(
            "(func (export \"fwasm_abi_v1\"))",
            "(func (export \"fwasm_abi_v1\") (param i32))",
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "export `fwasm_abi_v1` has the wrong type: expected () -> (), found (i32)"
        );
    }

    #[test]
    fn names_an_unknown_import() {
        let err = check(&GOOD.replace("\"fwasm_v1\" \"log\"", "\"env\" \"mystery\"")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "module imports `env.mystery`, which fwasm does not provide (it provides the `fwasm_v1` imports, the sidecar's `fwasm_sidecar`, outbound HTTP's `fwasm_http`, MPI's `env.MPI_*` (sdk-c's mpi.h) and WASI preview1, `wasi_snapshot_preview1`)"
        );
    }

    #[test]
    fn recognises_the_faasm_api_and_accepts_wasi_imports() {
        let faasm = GOOD.replace(
            "(memory",
            r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
               (import "wasi_snapshot_preview1" "sock_accept" (func (param i32 i32 i32) (result i32)))
               (func (export "fwasm_faasm_api"))
               (memory"#,
        );
        let abi = check(&faasm).unwrap();
        assert_eq!(
            (abi, abi.to_string().as_str()),
            (Abi::FaasmC, "Faasm C API (on fwasm v1)")
        );
        let wrong = GOOD.replace(
            "(memory",
            r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32) (result i32))) (memory"#,
        );
        assert!(check(&wrong).unwrap_err().to_string().starts_with(
            "import `wasi_snapshot_preview1.fd_write` has the wrong type: expected (i32, i32, i32, i32) -> i32"
        ));
    }

    #[test]
    fn names_an_import_with_the_wrong_type() {
        let err = check(&GOOD.replace("(param i32 i32 i32) (result i32)))", "(param i32)))"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "import `fwasm_v1.log` has the wrong type: expected (i32, i32, i32) -> i32, found (i32)"
        );
    }

    const COMMAND: &str = r#"(module
        (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
        (memory (export "memory") 1)
        (func (export "_start")))"#;

    #[test]
    fn recognises_a_wasi_command() {
        assert_eq!(check(COMMAND), Ok(Abi::WasiCommand));
        assert_eq!(Abi::WasiCommand.to_string(), "WASI command");
        let err = check(&COMMAND.replace(
            "(func (export \"_start\"))",
            "(func (export \"_start\") (param i32))",
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "export `_start` has the wrong type: expected () -> (), found (i32)"
        );
        let err =
            check(&COMMAND.replace("(memory (export \"memory\") 1)", "(memory 1)")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "module is missing the export `memory` (a memory) that ABI WASI command requires"
        );
    }

    #[test]
    fn a_module_of_no_abi_is_told_how_to_build_for_each() {
        let err =
            check(r#"(module (memory (export "memory") 1) (func (export "main")))"#).unwrap_err();
        assert_eq!(err, ValidationError::UnknownAbi);
        let message = err.to_string();
        for abi in Abi::ALL {
            let named = match abi {
                Abi::FwasmV1 => "fwasm v1 (exports `fwasm_abi_v1`",
                Abi::FaasmC => "the Faasm C API on fwasm v1",
                Abi::WasiCommand => "WASI commands (a plain `main`",
                Abi::ProxyWasm => "proxy-wasm filters and Layotto functions",
                Abi::FaasmHost => "binaries built by Faasm's own toolchain",
            };
            assert!(message.contains(named), "{message} lacks {abi}");
        }
    }

    const PROXY: &str = r#"(module
        (import "env" "proxy_set_buffer_bytes" (func $set (param i32 i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 64) "id_1")
        (func (export "proxy_abi_version_0_2_0"))
        (func (export "_start"))
        (func (export "malloc") (param i32) (result i32) i32.const 1024)
        (func (export "proxy_get_id") (drop (call $set (i32.const 8) (i32.const 0) (i32.const 4) (i32.const 64) (i32.const 4))))
        (func (export "proxy_on_context_create") (param i32 i32))
        (func (export "proxy_on_request_headers") (param i32 i32) (result i32) i32.const 0))"#;

    #[test]
    fn recognises_proxy_wasm_before_a_command_and_reads_its_id() {
        let validated = validate(&wat::parse_str(PROXY).unwrap()).unwrap();
        assert_eq!(validated.abi, Abi::ProxyWasm);
        assert_eq!(validated.proxy_id.as_deref(), Some("id_1"));
        assert_eq!(Abi::ProxyWasm.to_string(), "proxy-wasm");
        for marker in ["proxy_abi_version_0_1_0", "proxy_abi_version_0_2_1"] {
            let other = PROXY.replace("proxy_abi_version_0_2_0", marker);
            assert_eq!(check(&other), Ok(Abi::ProxyWasm), "{marker}");
        }
        let no_id = PROXY.replace("(export \"proxy_get_id\")", "");
        assert_eq!(
            validate(&wat::parse_str(no_id).unwrap()).unwrap().proxy_id,
            None
        );
    }

    #[test]
    fn a_bad_proxy_wasm_module_is_told_what_is_wrong() {
        let err = check(&PROXY.replace("(export \"malloc\")", "")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "module is missing the export `proxy_on_memory_allocate` ((i32) -> i32) that ABI proxy-wasm requires"
        );
        let err = check(&PROXY.replace("(export \"proxy_on_context_create\")", "")).unwrap_err();
        assert!(
            err.to_string().contains("`proxy_on_context_create`"),
            "{err}"
        );
        let err = check(&PROXY.replace(
            "(param i32 i32) (result i32) i32.const 0",
            "(param i64) (result i32) i32.const 0",
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "export `proxy_on_request_headers` has the wrong type: expected (i32, i32, i32) -> i32, found (i64) -> i32"
        );
        let err = check(&PROXY.replace("proxy_set_buffer_bytes", "proxy_set_buffer")).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "module imports `env.proxy_set_buffer`, which fwasm does not provide (it provides the proxy-wasm host functions"
            ),
            "{err}"
        );
        let err = check(&PROXY.replace(
            "(memory",
            r#"(import "env" "proxy_log" (func (param i32) (result i32))) (memory"#,
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "import `env.proxy_log` has the wrong type: expected (i32, i32, i32) -> i32, found (i32) -> i32"
        );
        // A start-up that traps is refused at upload, with its reason.
        let trapping = PROXY.replace(
            "(func (export \"_start\"))",
            "(func (export \"_start\") unreachable)",
        );
        let err = validate(&wat::parse_str(trapping).unwrap()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("module failed while it started: _start failed: "),
            "{err}"
        );
        let looping = PROXY.replace(
            "(func (export \"_start\"))",
            "(func (export \"_start\") (loop (br 0)))",
        );
        let err = validate(&wat::parse_str(looping).unwrap()).unwrap_err();
        assert!(err.to_string().contains("_start failed"), "{err}");
    }

    const FAASM_TOOLCHAIN: &str = r#"(module
        (import "env" "__faasm_read_input" (func (param i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
        (memory (export "memory") 1)
        (table 2 funcref)
        (func (export "_start")))"#;

    #[test]
    fn a_binary_of_faasms_toolchain_is_known_by_its_imports() {
        let abi = check(FAASM_TOOLCHAIN).unwrap();
        assert_eq!(
            (abi, abi.to_string().as_str()),
            (Abi::FaasmHost, "Faasm host interface")
        );
        // Without Faasm's imports, the same module is a WASI command.
        let command = FAASM_TOOLCHAIN.replace(
            r#"(import "env" "__faasm_read_input" (func (param i32 i32) (result i32)))"#,
            "",
        );
        assert_eq!(check(&command), Ok(Abi::WasiCommand));
        let s3 = FAASM_TOOLCHAIN.replace(
            "(memory",
            r#"(import "env" "__faasm_s3_get_num_buckets" (func (result i32))) (memory"#,
        );
        let err = check(&s3).unwrap_err().to_string();
        assert!(
            err.starts_with("module imports `env.__faasm_s3_get_num_buckets`, which fwasm does not provide (it provides Faasm's host interface"),
            "{err}"
        );
        assert!(err.contains("but not its Python or S3 imports"), "{err}");
        // A program that only calls MPI is one of Faasm's toolchain too.
        let mpi_only = FAASM_TOOLCHAIN.replace(
            r#"(import "env" "__faasm_read_input" (func (param i32 i32) (result i32)))"#,
            r#"(import "env" "MPI_Barrier" (func (param i32) (result i32)))"#,
        );
        assert_eq!(check(&mpi_only), Ok(Abi::FaasmHost));
        let wrong = FAASM_TOOLCHAIN.replace("(param i32 i32) (result i32)", "(param i32)");
        assert!(
            check(&wrong)
                .unwrap_err()
                .to_string()
                .starts_with("import `env.__faasm_read_input` has the wrong type"),
        );
        let reserved = FAASM_TOOLCHAIN.replace(
            "(table 2 funcref)",
            r#"(table (export "fwasm:table") 2 funcref)"#,
        );
        assert!(matches!(
            check(&reserved),
            Err(ValidationError::ReservedExport(_))
        ));
    }

    #[test]
    fn every_abi_has_one_adapter() {
        for abi in Abi::ALL {
            let adapters = ADAPTERS.iter().filter(|a| a.abis().contains(&abi));
            assert_eq!(adapters.count(), 1, "{abi}");
        }
    }

    /// Each adapter's declared imports (what validation accepts) are exactly what its linker
    /// defines: a module importing every one of them instantiates.
    #[test]
    fn every_declared_import_is_defined() {
        use crate::host::HostState;
        use crate::host::chaining::Chaining;
        use crate::host::files::CallFiles;
        use crate::host::io::CallIo;
        use crate::host::local_state::LocalState;
        use crate::host::state::CallState;
        use crate::limits::Limits;

        let declared: [(Abi, Vec<ImportSignature>); 4] = [
            (
                Abi::FwasmV1,
                fwasm_v1::V1_IMPORTS
                    .iter()
                    .chain(sidecar::IMPORTS)
                    .chain(http::IMPORTS)
                    .chain(net::IMPORTS)
                    .copied()
                    .chain(wasi_preview1::signatures())
                    .collect(),
            ),
            (
                Abi::WasiCommand,
                wasi_preview1::signatures()
                    .chain(sidecar::IMPORTS.iter().copied())
                    .chain(http::IMPORTS.iter().copied())
                    .chain(net::IMPORTS.iter().copied())
                    .collect(),
            ),
            (
                Abi::ProxyWasm,
                proxy_wasm::IMPORTS
                    .iter()
                    .chain(sidecar::IMPORTS)
                    .chain(http::IMPORTS)
                    .chain(net::IMPORTS)
                    .copied()
                    .chain(wasi_preview1::signatures())
                    .collect(),
            ),
            (
                Abi::FaasmHost,
                faasm_host::IMPORTS
                    .iter()
                    .copied()
                    .chain(wasi_preview1::signatures())
                    .collect(),
            ),
        ];
        for (abi, imports) in declared {
            let ty = |types: &[ValType]| {
                types
                    .iter()
                    .map(|t| format!("{t:?}").to_lowercase())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let wat = imports
                .iter()
                .map(|(module, name, params, results)| {
                    format!(
                        r#"(import "{module}" "{name}" (func (param {}) (result {})))"#,
                        ty(params),
                        ty(results)
                    )
                })
                .collect::<String>();
            let wasm = wat::parse_str(format!("(module {wat})")).unwrap();
            let engine = Engine::default();
            let module = Module::new(&engine, &wasm).unwrap();
            let mut linker = Linker::new(&engine);
            adapter(abi).define_imports(&mut linker);
            let limits = Limits::default();
            let call = fwasm_proto::pb::Call::default();
            let host = HostState::new(
                &limits,
                CallIo::new(&call, adapter(abi).streams(), &limits),
                Chaining::new(&call, &limits),
                CallState::new("u", std::sync::Arc::new(LocalState::new(1 << 20)), &limits),
                CallFiles::new(&limits),
            );
            let mut store = Store::new(&engine, host);
            linker
                .instantiate_and_start(&mut store, &module)
                .unwrap_or_else(|e| panic!("{abi}: {e}"));
        }
    }
}
