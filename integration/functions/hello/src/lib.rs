//! demo/hello: greets whoever is named in the input.
use fwasm_sdk::{Request, Response};

#[fwasm_sdk::handler]
fn handle(req: Request) -> Response {
    let name = String::from_utf8_lossy(req.body());
    let name = match name.trim() {
        "" => "world",
        name => name,
    };
    Response::ok(format!("Hello, {name}!")).with_header("content-type", "text/plain; charset=utf-8")
}
