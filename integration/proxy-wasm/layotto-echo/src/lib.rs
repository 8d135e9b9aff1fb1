//! An echo shaped like Layotto's FaaS functions (its imports declared by hand, no SDK): the
//! request body becomes the response body. With the SDK-built echo it measures the proxy-wasm
//! path itself, apart from what the SDK adds.

#[allow(dead_code)]
#[path = "../../layotto_abi.rs"]
mod layotto;

#[no_mangle]
pub extern "C" fn _start() {}

#[no_mangle]
pub extern "C" fn proxy_get_id() {
    layotto::set_id("echo");
}

#[no_mangle]
pub extern "C" fn proxy_on_request_body(_context: u32, body_size: usize, _end: u32) -> u32 {
    let body = layotto::request_body(body_size);
    layotto::set_response_body(&body);
    0
}
