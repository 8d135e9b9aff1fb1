//! Faasm's JSON messages (`POST /` on the invoke port), as the gateway parses them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    fwasm_gateway::fuzzing::faasm_json(body);
});
