//! The ABI's envelopes as the host decodes them: a request a host might be handed back and a
//! response a guest wrote. Anything decodes to a value or an error, never a panic; whatever
//! decodes encodes back to bytes that decode to the same.
#![no_main]

use fwasm_abi::{Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = Request::decode(data) {
        let again = request.encode();
        assert_eq!(Request::decode(&again).unwrap().encode(), again);
    }
    if let Ok(response) = Response::decode(data) {
        let again = response.encode();
        assert_eq!(Response::decode(&again).unwrap().encode(), again);
    }
});
