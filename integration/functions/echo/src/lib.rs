//! demo/echo: replies with its input.
use fwasm_sdk::{Request, Response};

#[fwasm_sdk::handler]
fn handle(req: Request) -> Response {
    Response::ok(req.into_body())
}
