//! Rewrites a module that defines its linear memory so that it imports it instead. wasmi backs
//! a memory the module defines with a fresh `Vec` per instance (allocated, zeroed, grown and
//! freed on every call: page faults for every page a call touches), and lets the host choose
//! the buffer only for a memory the host makes. Imported, the memory can come from
//! [`crate::memory_pool`]. Done as the executor compiles a module; what is stored stays as
//! uploaded, and the module's exports (its memory among them) are unchanged.

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{EntityType, ImportSection};
use wasmparser::{Parser, Payload, TypeRef};

/// Where the rewritten module imports its memory from.
pub(crate) const MEMORY_MODULE: &str = "fwasm:pooled";
pub(crate) const MEMORY_NAME: &str = "memory";

/// The import section's id, and the sections that come after it.
const IMPORT_SECTION: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub(crate) enum RewriteError {
    #[error("{0}")]
    Parse(#[from] wasmparser::BinaryReaderError),
    #[error("{0}")]
    Encode(#[from] wasm_encoder::reencode::Error),
}

/// `wasm` importing the one memory it defines, with the same limits; `None` when the
/// module imports a memory already, defines none or several, or defines one the pool cannot
/// back (64-bit, shared, or with pages of another size).
pub(crate) fn importing_memory(wasm: &[u8]) -> Result<Option<Vec<u8>>, RewriteError> {
    let mut defined = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    if matches!(import?.ty, TypeRef::Memory(_)) {
                        return Ok(None);
                    }
                }
            }
            Payload::MemorySection(memories) => {
                for memory in memories {
                    defined.push(memory?);
                }
            }
            _ => {}
        }
    }
    let [memory] = defined[..] else {
        return Ok(None);
    };
    if memory.memory64 || memory.shared || memory.page_size_log2.is_some() {
        return Ok(None);
    }
    let entity = EntityType::Memory(RoundtripReencoder.memory_type(memory)?);
    let mut module = wasm_encoder::Module::new();
    let mut imported = false;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        match &payload {
            Payload::ImportSection(imports) => {
                let mut section = ImportSection::new();
                RoundtripReencoder.parse_import_section(&mut section, imports.clone())?;
                section.import(MEMORY_MODULE, MEMORY_NAME, entity);
                module.section(&section);
                imported = true;
            }
            // Index 0 is now the imported memory: data segments and exports keep meaning it.
            Payload::MemorySection(_) => {}
            _ => {
                let Some((id, range)) = payload.as_section() else {
                    continue;
                };
                // A module without imports gets its import section before the first section
                // that must follow one (custom sections may sit anywhere).
                if !imported && id > IMPORT_SECTION && id != 0 {
                    let mut section = ImportSection::new();
                    section.import(MEMORY_MODULE, MEMORY_NAME, entity);
                    module.section(&section);
                    imported = true;
                }
                let data = &wasm[range.start as usize..range.end as usize];
                module.section(&wasm_encoder::RawSection { id, data });
            }
        }
    }
    Ok(Some(module.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(wat: &str) -> Option<wasmi::Module> {
        let wasm = wat::parse_str(wat).unwrap();
        let wasm = importing_memory(&wasm).unwrap()?;
        Some(wasmi::Module::new(&wasmi::Engine::default(), &wasm).unwrap())
    }

    #[test]
    fn a_defined_memory_becomes_an_import_with_the_same_limits_and_exports() {
        for wat in [
            // With imports of its own, and without any.
            r#"(module (import "env" "f" (func)) (memory (export "memory") 2 40)
                (data (i32.const 8) "hi") (func (export "g")))"#,
            r#"(module (type (func)) (memory (export "memory") 2 40)
                (data (i32.const 8) "hi") (func (export "g") (type 0)))"#,
        ] {
            let module = rewritten(wat).unwrap();
            let memory = module.imports().last().unwrap();
            assert_eq!(
                (memory.module(), memory.name()),
                (MEMORY_MODULE, MEMORY_NAME)
            );
            let ty = memory.ty().memory().unwrap();
            assert_eq!((ty.minimum(), ty.maximum()), (2, Some(40)));
            // The data segment lands in the imported memory.
            let mut store = wasmi::Store::new(module.engine(), ());
            let memory = wasmi::Memory::new(&mut store, *ty).unwrap();
            let mut linker = wasmi::Linker::new(module.engine());
            linker.define(MEMORY_MODULE, MEMORY_NAME, memory).unwrap();
            linker.func_wrap("env", "f", || {}).unwrap();
            let instance = linker.instantiate_and_start(&mut store, &module).unwrap();
            let exported = instance.get_memory(&store, "memory").unwrap();
            assert_eq!(&exported.data(&store)[8..10], b"hi");
            let mut exports: Vec<&str> = module.exports().map(|e| e.name()).collect();
            exports.sort();
            assert_eq!(exports, ["g", "memory"]);
        }
    }

    #[test]
    fn modules_the_pool_cannot_back_are_left_alone() {
        for wat in [
            r#"(module (import "env" "memory" (memory 1)))"#,
            r#"(module (func))"#,
            r#"(module (memory 1 1 shared))"#,
            r#"(module (memory i64 1))"#,
        ] {
            let wasm = wat::parse_str(wat).unwrap();
            assert!(importing_memory(&wasm).unwrap().is_none(), "{wat}");
        }
    }
}
