//! Layotto's FaaS demo function 1, on fwasm unchanged: for a request `name=BOOK` it asks
//! function `id_2` (by `proxy_invoke_service`) how many of BOOK are in stock.

#[allow(dead_code)]
#[path = "../../layotto_abi.rs"]
mod layotto;

#[no_mangle]
pub extern "C" fn _start() {}

#[no_mangle]
pub extern "C" fn proxy_get_id() {
    layotto::set_id("id_1");
}

#[no_mangle]
pub extern "C" fn proxy_on_request_body(_context: u32, body_size: usize, _end: u32) -> u32 {
    let body = layotto::request_body(body_size);
    let body = String::from_utf8_lossy(&body);
    let Some(book) = body.split('&').find_map(|pair| pair.strip_prefix("name=")) else {
        layotto::set_response_body(b"ask for a book: name=BOOK");
        return 0;
    };
    let reply = match layotto::invoke_service("id_2", "", book) {
        Ok(count) => format!(
            "There are {} inventories for {book}.",
            String::from_utf8_lossy(&count)
        ),
        Err(status) => format!("id_2 could not be reached (status {status})"),
    };
    layotto::log(&reply);
    layotto::set_response_body(reply.as_bytes());
    0
}
