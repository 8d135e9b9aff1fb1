//! Behaviours the integration tests need, chosen by the name the module is uploaded under, so
//! one build serves them all.
mod chaining;
mod sidecar;
mod state;

use fwasm_sdk::{Request, Response};

#[fwasm_sdk::handler]
fn handle(req: Request) -> Response {
    // "name.anything" behaves as "name": several copies of one behaviour under one user.
    match req.function().split('.').next().unwrap_or_default() {
        "inspect" => inspect(&req),
        "panic" => panic!("boom: {}", String::from_utf8_lossy(req.body())),
        "spin" => spin(),
        "hog" => hog(),
        "big" => big(&req),
        "upper" => Response::ok(req.body().to_ascii_uppercase()),
        "reverse" => Response::ok(req.body().iter().rev().copied().collect::<Vec<u8>>()),
        "slow" => slow(&req),
        "pair" => chaining::pair(&req),
        "fanout" => chaining::fanout(&req),
        "fanmid" => chaining::fanmid(&req),
        "leaf" => chaining::leaf(&req),
        "recurse" => chaining::recurse(&req),
        "await_panic" => chaining::await_panic(),
        "fanlimit" => chaining::fanlimit(&req),
        "chain_other" => chaining::chain_other(&req),
        "child_id" => chaining::child_id(&req),
        "await_id" => chaining::await_id(&req),
        "await_spin" => chaining::await_spin(),
        "nest" => chaining::nest(&req),
        "counter" => state::counter(),
        "state_offset" => state::state_offset(),
        "appender" => state::appender(&req),
        "state" => state::script(&req),
        "publisher" => publisher(&req),
        "fetch" => fetch(&req),
        "subscriber" => subscriber(&req),
        "sidecar" => sidecar::script(&req),
        other => Response::new(404, format!("testkit has no behaviour named {other}")),
    }
}

/// Sends the outbound request "METHOD URL [BODY]" (with the header `x-test: testkit`):
/// "STATUS X-REPLY LENGTH PREFIX" (the `x-reply` header or "-", the body's length and its
/// first 32 bytes), or "error: WHY".
fn fetch(req: &Request) -> Response {
    use fwasm_sdk::http;
    let text = String::from_utf8_lossy(req.body());
    let mut words = text.splitn(3, ' ');
    let (method, url) = (words.next().unwrap_or("GET"), words.next().unwrap_or(""));
    let request = http::Request::new(method, url)
        .header("x-test", "testkit")
        .body(words.next().unwrap_or("").as_bytes().to_vec());
    match http::send(&request) {
        Ok(reply) => {
            let body = reply.body();
            let prefix = String::from_utf8_lossy(&body[..body.len().min(32)]).into_owned();
            let x_reply = reply.header("x-reply").unwrap_or("-");
            Response::ok(format!("{} {x_reply} {} {prefix}", reply.status(), body.len()))
        }
        Err(err) => Response::ok(format!("error: {err}")),
    }
}

/// Publishes "DATA" on the topic "TOPIC" given as "TOPIC DATA": "started N", or why not.
fn publisher(req: &Request) -> Response {
    let body = String::from_utf8_lossy(req.body());
    let (topic, data) = body.split_once(' ').unwrap_or((&body, ""));
    match fwasm_sdk::publish(topic, data.as_bytes()) {
        Ok(started) => Response::ok(format!("started {started}")),
        Err(err) => Response::ok(format!("refused: {err}")),
    }
}

/// Keeps the event it is called with in the global state keys "last-event" and
/// "seen.FUNCTION" (this function's name), and its content type in "last-event-type".
fn subscriber(req: &Request) -> Response {
    use fwasm_sdk::state;
    let content_type = req.header("content-type").unwrap_or_default();
    let mut stored = Ok(());
    for (key, value) in [
        ("last-event", req.body()),
        (&format!("seen.{}", req.function()), req.body()),
        ("last-event-type", content_type.as_bytes()),
    ] {
        stored = stored
            .and_then(|()| state::set(key, value))
            .and_then(|()| state::push(key));
    }
    match stored {
        Ok(()) => Response::ok("kept"),
        Err(err) => Response::new(500, format!("could not keep the event: {err}")),
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
    let status = req
        .header("x-status")
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    Response::ok(text)
        .with_status(status)
        .with_header("x-from-guest", "yes")
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
    let n: usize = String::from_utf8_lossy(req.body())
        .trim()
        .parse()
        .unwrap_or(0);
    Response::ok(vec![b'x'; n])
}

/// `n` million iterations of arithmetic (n from the body, 1000 when empty), then "done".
fn slow(req: &Request) -> Response {
    let millions = match numbers(req) {
        Ok(n) if n.is_empty() => 1000,
        Ok(n) if n.len() == 1 => n[0],
        _ => return Response::new(400, "slow takes one number: millions of iterations"),
    };
    let Some(iterations) = millions.checked_mul(1_000_000) else {
        return Response::new(400, "slow: too many iterations");
    };
    let mut acc: u64 = 0;
    for i in 0..iterations {
        // black_box on every step: the optimizer can neither fold the loop nor drop it.
        acc = std::hint::black_box(acc.wrapping_mul(31).wrapping_add(i));
    }
    std::hint::black_box(acc);
    Response::ok("done")
}

/// The body as whitespace-separated decimal numbers.
fn numbers(req: &Request) -> Result<Vec<u64>, Response> {
    String::from_utf8_lossy(req.body())
        .split_whitespace()
        .map(|n| n.parse())
        .collect::<Result<_, _>>()
        .map_err(|err| Response::new(400, format!("expected decimal numbers: {err}")))
}

/// 200 with the output, or 500 with the error text.
fn respond(result: Result<Vec<u8>, impl ToString>) -> Response {
    match result {
        Ok(out) => Response::ok(out),
        Err(err) => Response::new(500, err.to_string()),
    }
}
