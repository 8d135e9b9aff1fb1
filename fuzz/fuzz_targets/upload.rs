//! Upload validation of arbitrary bytes: a module is accepted or refused with a reason, never
//! a panic, and never a start that runs past its fuel.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|wasm: &[u8]| {
    let _ = fwasm_executor::validate(wasm);
});
