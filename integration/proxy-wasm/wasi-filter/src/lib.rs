//! A proxy-wasm filter built for WASI (wasm32-wasip1): the SDK then exports
//! `proxy_on_memory_allocate` rather than `malloc`, and the filter's prints go through WASI.
//! It answers with what it learnt from its plugin configuration, a property and the clock.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default)]
struct Root {
    configuration: Vec<u8>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        self.configuration = self.get_plugin_configuration().unwrap_or_default();
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Reporter {
            configuration: self.configuration.clone(),
        }))
    }
}

struct Reporter {
    configuration: Vec<u8>,
}

impl Context for Reporter {}

impl HttpContext for Reporter {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        println!("wasi-filter: request headers arrived");
        eprintln!("wasi-filter: end of stream {end_of_stream}");
        let method = self
            .get_property(vec!["request", "method"])
            .map(|m| String::from_utf8_lossy(&m).into_owned())
            .unwrap_or_default();
        let now = self.get_current_time();
        let after_2020 = now > std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_577_836_800);
        // The configuration is the function's settings as a proxy-wasm map (Layotto's way).
        let mode_is_test = self
            .configuration
            .windows(10)
            .any(|window| window == b"MODE\0test\0");
        let body = format!("method={method} after_2020={after_2020} mode_is_test={mode_is_test}");
        self.send_http_response(200, vec![("x-wasi", "yes")], Some(body.as_bytes()));
        Action::Pause
    }
}
