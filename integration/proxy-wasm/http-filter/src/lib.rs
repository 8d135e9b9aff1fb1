//! An HTTP filter written with the proxy-wasm Rust SDK, as Envoy users write them: it reads the
//! request's headers and body and answers with `send_http_response`.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Greeter::default()))
    }
}

#[derive(Default)]
struct Greeter {
    method: String,
    path: String,
    name: String,
}

impl Context for Greeter {}

impl HttpContext for Greeter {
    fn on_http_request_headers(&mut self, num_headers: usize, _end_of_stream: bool) -> Action {
        let headers = self.get_http_request_headers();
        assert_eq!(headers.len(), num_headers, "the host counts the headers it hands over");
        self.method = self.get_http_request_header(":method").unwrap_or_default();
        self.path = self.get_http_request_header(":path").unwrap_or_default();
        self.name = self.get_http_request_header("x-name").unwrap_or_else(|| "stranger".into());
        log::info!("{} {} from {}", self.method, self.path, self.name);
        if self.path.ends_with("/deny") {
            self.send_http_response(403, vec![("x-denied-by", "http-filter")], Some(b"denied\n"));
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        let reply = format!(
            "hello {} ({} {}): {}",
            self.name,
            self.method,
            self.path,
            String::from_utf8_lossy(&body)
        );
        self.send_http_response(
            201,
            vec![("x-filter", "http-filter"), ("content-type", "text/plain")],
            Some(reply.as_bytes()),
        );
        Action::Pause
    }
}
