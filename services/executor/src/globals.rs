//! Exports what a module keeps to itself that the executor must reach, as wasmi reaches
//! globals and tables only through exports: its mutable globals, so that a snapshot can read
//! what its initialisation left in them and restore it, and (for Faasm's binaries) its
//! function table.
//! The module is rewritten as the executor compiles it; what is stored stays as uploaded.

use std::collections::HashSet;

use wasm_encoder::ExportKind;
use wasmparser::{ExternalKind, Parser, Payload, TypeRef};

/// The names the added exports take, followed by the global's index; upload refuses a module
/// that exports a name beginning so.
pub(crate) const HIDDEN_GLOBAL_PREFIX: &str = "fwasm:global:";

/// `wasm` with every mutable global of a number type it does not export exported, or `None`
/// if it exports them all already.
pub(crate) fn exporting_mutable_globals(
    wasm: &[u8],
) -> Result<Option<Vec<u8>>, wasmparser::BinaryReaderError> {
    let mut imported = 0u32;
    let mut mutable = Vec::new();
    let mut exported = HashSet::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    if matches!(import?.ty, TypeRef::Global(_)) {
                        imported += 1;
                    }
                }
            }
            Payload::GlobalSection(globals) => {
                for (index, global) in globals.into_iter().enumerate() {
                    // References cannot outlive the store they belong to: a snapshot keeps
                    // numbers only.
                    let ty = global?.ty;
                    if ty.mutable && !matches!(ty.content_type, wasmparser::ValType::Ref(_)) {
                        mutable.push(imported + index as u32);
                    }
                }
            }
            Payload::ExportSection(exports) => {
                for export in exports {
                    let export = export?;
                    if export.kind == ExternalKind::Global {
                        exported.insert(export.index);
                    }
                }
            }
            _ => {}
        }
    }
    let hidden: Vec<u32> = mutable
        .into_iter()
        .filter(|index| !exported.contains(index))
        .collect();
    if hidden.is_empty() {
        return Ok(None);
    }
    let added: Vec<(String, ExportKind, u32)> = hidden
        .into_iter()
        .map(|index| {
            let name = format!("{HIDDEN_GLOBAL_PREFIX}{index}");
            (name, ExportKind::Global, index)
        })
        .collect();
    with_exports(wasm, &added).map(Some)
}

/// `wasm` with its function table (table 0) exported as `name`, or `None` if it has no table
/// or exports one already: Faasm's toolchain does not export it, and wasmi reaches a table
/// only through an export.
pub(crate) fn exporting_table(
    wasm: &[u8],
    name: &str,
) -> Result<Option<Vec<u8>>, wasmparser::BinaryReaderError> {
    let mut tables = 0u32;
    let mut exported = false;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    if matches!(import?.ty, TypeRef::Table(_)) {
                        tables += 1;
                    }
                }
            }
            Payload::TableSection(section) => tables += section.count(),
            Payload::ExportSection(exports) => {
                for export in exports {
                    exported |= export?.kind == ExternalKind::Table;
                }
            }
            _ => {}
        }
    }
    if tables == 0 || exported {
        return Ok(None);
    }
    with_exports(wasm, &[(name.to_string(), ExportKind::Table, 0)]).map(Some)
}

/// `wasm` with `added` exports (name, kind, index) after its own.
fn with_exports(
    wasm: &[u8],
    added: &[(String, ExportKind, u32)],
) -> Result<Vec<u8>, wasmparser::BinaryReaderError> {
    let mut module = wasm_encoder::Module::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        if let Payload::ExportSection(exports) = &payload {
            let mut section = wasm_encoder::ExportSection::new();
            for export in exports.clone() {
                let export = export?;
                section.export(export.name, export_kind(export.kind), export.index);
            }
            for (name, kind, index) in added {
                section.export(name, *kind, *index);
            }
            module.section(&section);
        } else if let Some((id, range)) = payload.as_section() {
            let data = &wasm[range.start as usize..range.end as usize];
            module.section(&wasm_encoder::RawSection { id, data });
        }
    }
    // Every module an ABI runs exports its memory, so it has an export section.
    Ok(module.finish())
}

fn export_kind(kind: ExternalKind) -> ExportKind {
    match kind {
        ExternalKind::Func | ExternalKind::FuncExact => ExportKind::Func,
        ExternalKind::Table => ExportKind::Table,
        ExternalKind::Memory => ExportKind::Memory,
        ExternalKind::Global => ExportKind::Global,
        ExternalKind::Tag => ExportKind::Tag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_mutable_globals_are_exported_and_nothing_else_changes() {
        let wasm = wat::parse_str(
            r#"(module
                (import "m" "g" (global $imported i32))
                (global $sp (mut i32) (i32.const 1024))
                (global $constant i32 (i32.const 7))
                (global $shown (export "shown") (mut i32) (i32.const 0))
                (global $state (mut i64) (i64.const 0))
                (memory (export "memory") 1)
                (func (export "f") (result i32) (global.get $sp)))"#,
        )
        .unwrap();
        let rewritten = exporting_mutable_globals(&wasm).unwrap().unwrap();
        let engine = wasmi::Engine::default();
        let module = wasmi::Module::new(&engine, &rewritten).unwrap();
        let mut names: Vec<&str> = module.exports().map(|e| e.name()).collect();
        names.sort();
        assert_eq!(
            names,
            ["f", "fwasm:global:1", "fwasm:global:4", "memory", "shown"]
        );
        let none_hidden =
            wat::parse_str(r#"(module (global (export "g") (mut i32) (i32.const 0)))"#);
        assert_eq!(
            exporting_mutable_globals(&none_hidden.unwrap()).unwrap(),
            None
        );
    }
}
