//! The sidecar's building blocks, driven by a script: one request per line of the body,
//! `get STORE KEY`, `save STORE KEY VALUE`, `delete STORE KEY`, `invoke APP METHOD DATA`,
//! `publish PUBSUB TOPIC DATA`, `binding NAME OPERATION DATA` or `secret STORE KEY`; one line
//! per request in the reply, `ok`, `ok ANSWER` or `error: REASON`.

use fwasm_sdk::{Error, Request, Response, sidecar};

pub fn script(req: &Request) -> Response {
    let body = String::from_utf8_lossy(req.body());
    let mut reply = String::new();
    for line in body.lines().filter(|line| !line.trim().is_empty()) {
        let mut words = line.splitn(4, ' ');
        let mut word = || words.next().unwrap_or_default();
        let (op, a, b, c) = (word(), word(), word(), word());
        let answer: Result<Vec<u8>, Error> = match op {
            "get" => sidecar::get_state(a, b),
            "save" => sidecar::save_state(a, b, c.as_bytes()).map(|()| Vec::new()),
            "delete" => sidecar::delete_state(a, b).map(|()| Vec::new()),
            "invoke" => sidecar::invoke(a, b, c.as_bytes()),
            "publish" => sidecar::publish(a, b, c.as_bytes()).map(|()| Vec::new()),
            "binding" => sidecar::invoke_binding(a, b, c.as_bytes()),
            "secret" => sidecar::get_secret(a, b),
            other => return Response::new(400, format!("no sidecar request {other:?}")),
        };
        match answer {
            Ok(bytes) if bytes.is_empty() => reply.push_str("ok\n"),
            Ok(bytes) => reply.push_str(&format!("ok {}\n", String::from_utf8_lossy(&bytes))),
            Err(err) => reply.push_str(&format!("error: {err}\n")),
        }
    }
    Response::ok(reply)
}
