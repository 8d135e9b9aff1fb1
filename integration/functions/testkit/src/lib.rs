//! Behaviours the integration tests need, chosen by the name the module is uploaded under, so
//! one build serves them all.
use fwasm_sdk::{Request, Response};

#[fwasm_sdk::handler]
fn handle(req: Request) -> Response {
    match req.function() {
        "inspect" => inspect(&req),
        "panic" => panic!("boom: {}", String::from_utf8_lossy(req.body())),
        "spin" => spin(),
        "hog" => hog(),
        "big" => big(&req),
        "upper" => Response::ok(req.body().to_ascii_uppercase()),
        other => Response::new(404, format!("testkit has no behaviour named {other}")),
    }
}

/// Every request field, one per line, and a status and header chosen by the caller.
fn inspect(req: &Request) -> Response {
    fwasm_sdk::log::info("inspect called");
    let text = format!(
        "call_id={}\nuser={}\nfunction={}\nmethod={}\npath={}\nquery={}\nx-test={}\nbody={}\n",
        req.call_id(),
        req.user(),
        req.function(),
        req.method(),
        req.path(),
        req.query(),
        req.header("X-Test").unwrap_or("-"),
        String::from_utf8_lossy(req.body()),
    );
    let status = req.header("x-status").and_then(|s| s.parse().ok()).unwrap_or(200);
    Response::ok(text).with_status(status).with_header("x-from-guest", "yes")
}

/// Never returns: the CPU and time limits must stop it.
fn spin() -> Response {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Grows memory until the memory limit refuses.
fn hog() -> Response {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

/// An output of as many bytes as the input asks for.
fn big(req: &Request) -> Response {
    let n: usize = String::from_utf8_lossy(req.body()).trim().parse().unwrap_or(0);
    Response::ok(vec![b'x'; n])
}
