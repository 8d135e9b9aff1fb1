//! Binaries built by Faasm's own toolchain: they import Faasm's raw host interface from module
//! `env` (`__faasm_read_input`, `__faasm_write_output`, the chaining and state calls, ...),
//! enter at `_start` (wasi-libc runs `main`), and exit with `main`'s return value. Recognised
//! by those imports. What the imports do is in `imports.rs`.
//!
//! Faasm's two runtimes differ on two imports; fwasm follows WAVM, Faasm's default:
//! `__faasm_write_output(ptr, len)` takes the NUL-terminated string at `ptr` (WAVM ignores
//! `len`), and `__faasm_await_call_output(id, buffer, capacity)` copies the output into the
//! guest's buffer (WAMR allocates one instead).
//!
//! A call chained by function pointer (`__faasm_chain_ptr`) runs the same function with its
//! input behind sdk-c's marker (so sdk-c's Faasm functions and these chain alike): the callee
//! calls table entry `index` instead of `_start`, with no argument or with the integer its
//! input spells, and its i32 result is the call's return value.

mod imports;
mod network;

#[cfg(test)]
pub(crate) use imports::IMPORTS;

use std::collections::HashMap;

use bytes::Bytes;
use fwasm_proto::pb::{CallResult, FailureKind};
use wasmi::{Instance, Linker, Memory, Module, Store, Val, ValType};

use super::{
    Abi, Adapter, EXPORT_START, Ended, Entry, Next, ValidationError, Vals, check_output,
    expect_func, expect_memory, exports, start_entry, wasi_preview1,
};
use crate::call::{Context, Failure};
use crate::host::HostState;
use crate::host::io::Streams;
use crate::snapshot::EXPORT_CTORS;

pub(crate) struct FaasmHost;

/// sdk-c's marker for a call chained by function pointer: these 14 bytes, then the table
/// index (u32, little-endian), then the input (see sdk-c/src/faasm.c).
pub(crate) const FUNCTION_POINTER_MAGIC: [u8; 14] = *b"\xFF\0fwasm-fnptr\0";
const FUNCTION_POINTER_HEADER: usize = FUNCTION_POINTER_MAGIC.len() + 4;

/// The export the executor adds for a module's function table, which Faasm's toolchain does
/// not export (chaining by pointer needs it); upload refuses modules that export the name.
pub(crate) const HIDDEN_TABLE_EXPORT: &str = "fwasm:table";

/// What a call of a Faasm-toolchain binary keeps while it runs.
pub(crate) struct FaasmCall {
    /// The function's name: what `__faasm_chain_ptr` chains.
    function: String,
    input: Bytes,
    output: Vec<u8>,
    /// fwasm's ids of the calls this call chained; Faasm's 32-bit id is the index + 1.
    chained: Vec<u64>,
    /// State values `__faasm_read_state(_offset)_ptr` placed in guest memory, by key.
    mapped: HashMap<String, Mapped>,
    /// For a call chained by function pointer: the table index it runs.
    function_index: Option<u32>,
}

/// A state value's copy in guest memory: `len` bytes at `addr`, and those bytes as they were
/// when last in step with the local copy (so only what the guest changed is written back).
#[derive(Debug, Clone)]
struct Mapped {
    addr: u32,
    len: u32,
    clean: Vec<u8>,
}

impl Adapter for FaasmHost {
    fn abis(&self) -> &'static [Abi] {
        &[Abi::FaasmHost]
    }

    fn recognise(&self, module: &Module) -> Option<Abi> {
        let imports_faasm = module.imports().any(|i| {
            i.module() == imports::MODULE
                && (i.name().starts_with("__faasm_") || i.name().starts_with("MPI_"))
        });
        (imports_faasm && exports(module, EXPORT_START)).then_some(Abi::FaasmHost)
    }

    fn check(&self, module: &Module, abi: Abi) -> Result<(), ValidationError> {
        expect_func(module, abi, EXPORT_START, &[], &[], "() -> ()")?;
        expect_memory(module, abi)?;
        let optional: [(&'static str, &[ValType], &'static str); 2] = [
            (EXPORT_CTORS, &[], "() -> ()"),
            (fwasm_abi::EXPORT_FAASM_ZYGOTE, &[ValType::I32], "() -> i32"),
        ];
        for (name, results, expected) in optional {
            if exports(module, name) {
                expect_func(module, abi, name, &[], results, expected)?;
            }
        }
        // The names the executor gives what it exports to itself (for a zygote's snapshot).
        if let Some(export) = module
            .exports()
            .find(|e| e.name().starts_with(crate::globals::HIDDEN_GLOBAL_PREFIX))
        {
            return Err(ValidationError::ReservedExport(export.name().to_string()));
        }
        if exports(module, HIDDEN_TABLE_EXPORT) {
            return Err(ValidationError::ReservedExport(HIDDEN_TABLE_EXPORT.into()));
        }
        imports::check(module)
    }

    fn define_imports(&self, linker: &mut Linker<HostState>) {
        imports::define(linker);
        wasi_preview1::define_imports(linker);
    }

    fn streams(&self) -> Streams {
        Streams::Console
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
        let mut input = cx.call.input.clone();
        let mut function_index = None;
        if input.len() >= FUNCTION_POINTER_HEADER && input.starts_with(&FUNCTION_POINTER_MAGIC) {
            let index = &input[FUNCTION_POINTER_MAGIC.len()..FUNCTION_POINTER_HEADER];
            function_index = Some(u32::from_le_bytes(index.try_into().expect("4 bytes")));
            input = input.slice(FUNCTION_POINTER_HEADER..);
        }
        let entry = match function_index {
            None => start_entry(store, instance, cx)?,
            Some(index) => {
                // `_start` runs the constructors before `main`; a chained function gets them
                // too, as on Faasm (its toolchain exports them).
                if let Some(ctors) = instance.get_func(&*store, EXPORT_CTORS) {
                    ctors
                        .call(&mut *store, &[], &mut [])
                        .map_err(|e| Failure::trap(store, e, cx))?;
                }
                pointer_entry(store, instance, index, &input, cx)?
            }
        };
        store.data_mut().refusals_fail = true;
        store.data_mut().abi_state = Some(Box::new(FaasmCall {
            function: cx.call.function.clone(),
            input,
            output: Vec::new(),
            chained: Vec::new(),
            mapped: HashMap::new(),
            function_index,
        }));
        Ok(entry)
    }

    fn next(
        &self,
        store: &mut Store<HostState>,
        memory: Memory,
        ended: Ended<'_>,
        cx: &Context<'_>,
    ) -> Result<Next, Failure> {
        imports::sync_mapped(store, memory);
        let call = store
            .data_mut()
            .abi_state
            .take()
            .and_then(|state| state.downcast::<FaasmCall>().ok())
            .ok_or_else(|| Failure::new(FailureKind::AbiViolation, "the call's state is gone"))?;
        if let (Ended::Returned([Val::I32(code)]), Some(index)) = (ended, call.function_index)
            && *code != 0
        {
            let message = format!(
                "{} failed with code {code}: function {index} returned {code}",
                cx.name()
            );
            return Err(Failure::exit(*code, message));
        }
        check_output(call.output.len(), cx)?;
        Ok(Next::Reply(CallResult {
            http_status: 200,
            output: Bytes::from(call.output),
            ..CallResult::default()
        }))
    }
}

/// Table entry `index`, called as Faasm calls a function chained by pointer.
fn pointer_entry(
    store: &Store<HostState>,
    instance: &Instance,
    index: u32,
    input: &[u8],
    cx: &Context<'_>,
) -> Result<Entry, Failure> {
    let broken = |why: String| {
        Failure::new(
            FailureKind::AbiViolation,
            format!(
                "{} was chained by function pointer {index}, but {why}",
                cx.name()
            ),
        )
    };
    let table = instance
        .get_table(store, HIDDEN_TABLE_EXPORT)
        .or_else(|| {
            instance
                .exports(store)
                .find_map(|export| export.into_table())
        })
        .ok_or_else(|| broken("it has no function table".into()))?;
    let func = table
        .get(store, u64::from(index))
        .and_then(|entry| entry.as_func().and_then(|f| f.val().map(|f| **f)))
        .ok_or_else(|| broken("its table has no function there".into()))?;
    let ty = func.ty(store);
    let params = match ty.params() {
        [] => Vals::new(&[]),
        // Faasm passes the integer the input spells (0 for none).
        [ValType::I32] => {
            let text = std::str::from_utf8(input).unwrap_or("").trim();
            Vals::new(&[Val::I32(text.parse().unwrap_or(0))])
        }
        other => return Err(broken(format!("that function takes {other:?}"))),
    };
    let results = match ty.results() {
        [] => Vals::new(&[]),
        [ValType::I32] => Vals::new(&[Val::I32(0)]),
        other => return Err(broken(format!("that function returns {other:?}"))),
    };
    Ok(Entry {
        func,
        params,
        results,
    })
}
