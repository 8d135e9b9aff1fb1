//! Layotto's FaaS demo function 2, on fwasm unchanged: the request body names a book, and the
//! reply is its stock, read from the state store `redis` with `proxy_get_state`.

#[allow(dead_code)]
#[path = "../../layotto_abi.rs"]
mod layotto;

#[no_mangle]
pub extern "C" fn _start() {}

#[no_mangle]
pub extern "C" fn proxy_get_id() {
    layotto::set_id("id_2");
}

#[no_mangle]
pub extern "C" fn proxy_on_request_body(_context: u32, body_size: usize, _end: u32) -> u32 {
    let book = layotto::request_body(body_size);
    let book = String::from_utf8_lossy(&book);
    match layotto::get_state("redis", &book) {
        Ok(count) => layotto::set_response_body(&count),
        Err(status) => layotto::set_response_body(format!("state unavailable: {status}").as_bytes()),
    }
    0
}
