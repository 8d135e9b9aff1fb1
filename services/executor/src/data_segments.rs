//! Where a module's instantiation writes its linear memory: the byte ranges of its active data
//! segments. A snapshot mapped under a call's memory (see `memory_image`) is written over
//! there as the instance is made, so a restore puts the snapshot's bytes back in those ranges,
//! and only there. That holds for a module whose instantiation writes nothing else: none with
//! a start function (it could write anywhere) or a segment placed by anything but a constant.

use std::ops::Range;
use std::sync::Arc;

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
