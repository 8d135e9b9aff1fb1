//! Where a module's instantiation writes its linear memory: the byte ranges of its active data
//! segments. A snapshot mapped under a call's memory (see `memory_image`) is written over
//! there as the instance is made, so a restore puts the snapshot's bytes back in those ranges,
//! and only there. That holds for a module whose instantiation writes nothing else: none with
//! a start function (it could write anywhere) or a segment placed by anything but a constant.
//!
//! Better still, when the image already holds the segments' bytes as the snapshot has them,
//! the instance is made from the module without its active segments
//! ([`without_active_segments`]): instantiation then writes nothing, and nothing is put back.

use std::ops::Range;
use std::sync::Arc;

use wasm_encoder::{DataSection, DataSegment, DataSegmentMode};
use wasmparser::{DataKind, Operator, Parser, Payload};

/// The ranges `wasm`'s active data segments write, in bytes of its memory; `None` when its
/// instantiation may write elsewhere too (a start function, a segment placed by a global or
/// an expression, a segment of another memory).
pub(crate) fn written_at_instantiation(
    wasm: &[u8],
) -> Result<Option<Arc<[Range<usize>]>>, wasmparser::BinaryReaderError> {
    let mut ranges = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::StartSection { .. } => return Ok(None),
            Payload::DataSection(segments) => {
                for segment in segments {
                    let segment = segment?;
                    let DataKind::Active {
                        memory_index,
                        offset_expr,
                    } = segment.kind
                    else {
                        continue;
                    };
                    if memory_index != 0 {
                        return Ok(None);
                    }
                    let mut operators = offset_expr.get_operators_reader();
                    let offset = match (operators.read()?, operators.read()?) {
                        (Operator::I32Const { value }, Operator::End) => value as u32 as usize,
                        _ => return Ok(None),
                    };
                    if !segment.data.is_empty() {
                        ranges.push(offset..offset + segment.data.len());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(Some(ranges.into()))
}

/// `wasm` with each active data segment made passive and empty: its instances write nothing
/// as they are made. (Passive and empty, not removed, so segment indices keep their meaning;
/// an active segment is dropped once applied, and an empty passive one reads as a dropped one
/// does.)
pub(crate) fn without_active_segments(
    wasm: &[u8],
) -> Result<Vec<u8>, wasmparser::BinaryReaderError> {
    let mut module = wasm_encoder::Module::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        if let Payload::DataSection(segments) = &payload {
            let mut section = DataSection::new();
            for segment in segments.clone() {
                let segment = segment?;
                let data = match segment.kind {
                    DataKind::Active { .. } => &[][..],
                    DataKind::Passive => segment.data,
                };
                section.segment(DataSegment {
                    mode: DataSegmentMode::Passive,
                    data: data.iter().copied(),
                });
            }
            module.section(&section);
        } else if let Some((id, range)) = payload.as_section() {
            let data = &wasm[range.start as usize..range.end as usize];
            module.section(&wasm_encoder::RawSection { id, data });
        }
    }
    Ok(module.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(wat: &str) -> Option<Vec<Range<usize>>> {
        let wasm = wat::parse_str(wat).unwrap();
        written_at_instantiation(&wasm).unwrap().map(|r| r.to_vec())
    }

    #[test]
    fn constant_segments_are_listed_and_passive_ones_are_not() {
        let wat = r#"(module (memory 2)
            (data (i32.const 8) "hi")
            (data (i32.const 65540) "there")
            (data "passive")
            (data (i32.const 100) ""))"#;
        assert_eq!(ranges(wat), Some(vec![8..10, 65540..65545]));
        assert_eq!(ranges("(module (memory 1))"), Some(vec![]));
    }

    #[test]
    fn without_its_active_segments_a_module_writes_nothing_and_keeps_its_passive_ones() {
        let wasm = wat::parse_str(
            r#"(module (memory (export "memory") 1)
                (data (i32.const 8) "hi")
                (data "passive")
                (func (export "init")
                    (memory.init 1 (i32.const 100) (i32.const 0) (i32.const 7)))
                (func (export "init_dropped")
                    (memory.init 0 (i32.const 200) (i32.const 0) (i32.const 1))))"#,
        )
        .unwrap();
        let bare = without_active_segments(&wasm).unwrap();
        assert_eq!(written_at_instantiation(&bare).unwrap().unwrap().len(), 0);
        let engine = wasmi::Engine::default();
        let module = wasmi::Module::new(&engine, &bare).unwrap();
        let mut store = wasmi::Store::new(&engine, ());
        let instance = wasmi::Linker::new(&engine)
            .instantiate_and_start(&mut store, &module)
            .unwrap();
        let memory = instance.get_memory(&store, "memory").unwrap();
        assert_eq!(&memory.data(&store)[8..10], [0, 0]);
        let call = |store: &mut wasmi::Store<()>, name: &str| {
            let f = instance.get_typed_func::<(), ()>(&*store, name).unwrap();
            f.call(store, ())
        };
        call(&mut store, "init").unwrap();
        assert_eq!(&memory.data(&store)[100..107], b"passive");
        // As with the active segment applied and dropped: initialising from it traps.
        assert!(call(&mut store, "init_dropped").is_err());
    }

    #[test]
    fn instantiation_that_may_write_elsewhere_is_not_listed() {
        for wat in [
            r#"(module (memory 1) (func $s) (start $s))"#,
            r#"(module (import "env" "base" (global i32)) (memory 1)
                (data (global.get 0) "hi"))"#,
        ] {
            assert_eq!(ranges(wat), None, "{wat}");
        }
    }
}
