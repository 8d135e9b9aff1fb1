//! An echo written with the proxy-wasm Rust SDK: it writes the request body to the response
//! body buffer and sets a response header, the way a filter rewrites an upstream's reply.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Echo))
    }
}

struct Echo;

impl Context for Echo {}

impl HttpContext for Echo {
    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        self.set_http_response_body(0, 0, &body);
        self.set_http_response_header("x-echo-bytes", Some(&body.len().to_string()));
        Action::Continue
    }
}
