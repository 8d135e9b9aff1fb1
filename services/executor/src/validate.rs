//! Upload-time checks: a module must be valid wasm and speak an ABI this host knows, with the
//! exports it needs and no imports it cannot satisfy. Each failure names the problem.

use wasmi::{Engine, ExternType, FuncType, Module, ValType};

use fwasm_abi as abi;

use crate::wasi;

/// The guest ABI a module speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abi {
    FwasmV1,
    /// Faasm's C API (`faasm/faasm.h`), as sdk-c implements it on fwasm v1.
    FaasmC,
}

/// The marker export of a module built against sdk-c's Faasm headers.
pub const EXPORT_FAASM_MARKER: &str = "fwasm_faasm_api";

impl std::fmt::Display for Abi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Abi::FwasmV1 => f.write_str("fwasm v1"),
            Abi::FaasmC => f.write_str("Faasm C API (on fwasm v1)"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("not a valid WebAssembly module: {0}")]
    InvalidWasm(String),
    #[error(
        "module does not declare a known ABI: export `{}` (function-wasm v1) is missing; build it with fwasm-sdk",
        abi::EXPORT_ABI_MARKER
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
    #[error(
        "module imports `{module}.{name}`, which fwasm does not provide (it provides the `fwasm_v1` imports and WASI preview1, `wasi_snapshot_preview1`)"
    )]
    UnknownImport { module: String, name: String },
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

const WASM_MAGIC: &[u8] = b"\0asm";

/// Compiles `wasm` on a throwaway engine (wasmi engines never free code) and checks its ABI.
pub fn validate(wasm: &[u8]) -> Result<Abi, ValidationError> {
    if !wasm.starts_with(WASM_MAGIC) {
        return Err(ValidationError::InvalidWasm(
            "it does not start with the \\0asm magic bytes (upload the compiled .wasm binary, not source or text)".into(),
        ));
    }
    let engine = Engine::default();
    let module =
        Module::new(&engine, wasm).map_err(|e| ValidationError::InvalidWasm(e.to_string()))?;
    check_abi(&module)
}

/// Checks the exports and imports of a compiled module.
pub(crate) fn check_abi(module: &Module) -> Result<Abi, ValidationError> {
    let abi = match module.get_export(EXPORT_FAASM_MARKER) {
        Some(_) => {
            expect_func(module, EXPORT_FAASM_MARKER, &[], &[], "() -> ()")?;
            Abi::FaasmC
        }
        None => Abi::FwasmV1,
    };
    if module.get_export(abi::EXPORT_ABI_MARKER).is_none() {
        return Err(ValidationError::NoAbiMarker);
    }
    expect_func(module, abi::EXPORT_ABI_MARKER, &[], &[], "() -> ()")?;
    expect_func(
        module,
        abi::EXPORT_ALLOC,
        &[ValType::I32],
        &[ValType::I32],
        "(i32) -> i32",
    )?;
    expect_func(
        module,
        abi::EXPORT_HANDLE,
        &[ValType::I32, ValType::I32],
        &[ValType::I64],
        "(i32, i32) -> i64",
    )?;
    match module.get_export(abi::EXPORT_MEMORY) {
        Some(ExternType::Memory(_)) => {}
        Some(other) => {
            return Err(ValidationError::WrongExportType {
                name: abi::EXPORT_MEMORY,
                expected: "a memory",
                found: format!("{other:?}"),
            });
        }
        None => {
            return Err(ValidationError::MissingExport {
                abi,
                name: abi::EXPORT_MEMORY,
                expected: "a memory",
            });
        }
    }
    for import in module.imports() {
        let wasi = wasi::SUPPORTED
            .iter()
            .chain(wasi::UNSUPPORTED)
            .map(|(name, params, results)| (wasi::MODULE, *name, *params, *results));
        let known = V1_IMPORTS
            .iter()
            .copied()
            .chain(wasi)
            .find(|(m, n, ..)| *m == import.module() && *n == import.name());
        let Some((_, _, params, results)) = known else {
            return Err(ValidationError::UnknownImport {
                module: import.module().into(),
                name: import.name().into(),
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
    Ok(abi)
}

fn expect_func(
    module: &Module,
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
            abi: Abi::FwasmV1,
            name,
            expected,
        }),
    }
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
        validate(&wat::parse_str(wat).unwrap())
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
            "module imports `env.mystery`, which fwasm does not provide (it provides the `fwasm_v1` imports and WASI preview1, `wasi_snapshot_preview1`)"
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
}
