//! Behaviours that chain calls to one another (all uploaded under the same user).

use fwasm_sdk::{CallId, Error, Request, Response, await_call, chain};

use crate::{numbers, respond};

/// `upper(B + "1")` and `reverse(B + "2")` at once, outputs joined: "ab" gives "AB12ba".
pub fn pair(req: &Request) -> Response {
    let run = || -> Result<Vec<u8>, Error> {
        let upper = chain("upper", &[req.body(), b"1"].concat())?;
        let reverse = chain("reverse", &[req.body(), b"2"].concat())?;
        let mut out = await_call(upper)?;
        out.extend(await_call(reverse)?);
        Ok(out)
    };
    respond(run())
}

/// "N M": N `fanmid` calls, each of M `leaf` calls over k = 1..=N*M; the sum of all k².
pub fn fanout(req: &Request) -> Response {
    match numbers(req).as_deref() {
        Ok(&[n, m]) => respond(sum_of_calls("fanmid", (0..n).map(|i| format!("{i} {m}")))),
        _ => Response::new(400, "fanout takes \"N M\""),
    }
}

/// "i M": M `leaf` calls with k = i*M + 1 ..= i*M + M; the sum of their outputs.
pub fn fanmid(req: &Request) -> Response {
    match numbers(req).as_deref() {
        Ok(&[i, m]) => respond(sum_of_calls(
            "leaf",
            (0..m).map(|j| (i * m + j + 1).to_string()),
        )),
        _ => Response::new(400, "fanmid takes \"i M\""),
    }
}

/// k: k² in decimal.
pub fn leaf(req: &Request) -> Response {
    match numbers(req).as_deref() {
        Ok(&[k]) => match k.checked_mul(k) {
            Some(square) => Response::ok(square.to_string()),
            None => Response::new(400, format!("leaf: {k} squared overflows u64")),
        },
        _ => Response::new(400, "leaf takes one number"),
    }
}

/// n (empty = 0): calls itself with n + 1 until the host refuses, then reports the depth.
pub fn recurse(req: &Request) -> Response {
    let n = match numbers(req).as_deref() {
        Ok(&[]) => 0,
        Ok(&[n]) => n,
        _ => return Response::new(400, "recurse takes one number"),
    };
    let child = match chain("recurse", (n + 1).to_string().as_bytes()) {
        Ok(child) => child,
        Err(err) => return Response::ok(format!("stopped at depth {n}: {err}")),
    };
    respond(await_call(child))
}

/// n: a chain of n calls, each calling the next and awaiting it; the last answers 1 and each
/// adds 1, so the output is n.
pub fn nest(req: &Request) -> Response {
    let n = match numbers(req).as_deref() {
        Ok(&[n]) if n >= 1 => n,
        _ => return Response::new(400, "nest takes a number of at least 1"),
    };
    if n == 1 {
        return Response::ok("1");
    }
    let run = || -> Result<Vec<u8>, String> {
        let child = chain("nest", (n - 1).to_string().as_bytes()).map_err(|e| e.to_string())?;
        let out = await_call(child).map_err(|e| e.to_string())?;
        let depth: u64 = String::from_utf8_lossy(&out)
            .parse()
            .map_err(|_| format!("nest {} returned {out:?}", n - 1))?;
        Ok((depth + 1).to_string().into_bytes())
    };
    respond(run())
}

/// Awaits a child that panics and reports its failure code and reason.
pub fn await_panic() -> Response {
    let child = match chain("panic", b"child") {
        Ok(child) => child,
        Err(err) => return Response::new(500, err.to_string()),
    };
    match await_call(child) {
        Err(Error::CallFailed { code, reason, .. }) => {
            Response::ok(format!("code={code} reason={reason}"))
        }
        Err(err) => Response::new(500, err.to_string()),
        Ok(_) => Response::new(500, format!("call {child} of panic succeeded")),
    }
}

/// N: starts N `upper` calls without awaiting any, stopping at the first refusal.
pub fn fanlimit(req: &Request) -> Response {
    let n = match numbers(req).as_deref() {
        Ok(&[n]) => n,
        _ => return Response::new(400, "fanlimit takes one number"),
    };
    for k in 0..n {
        if let Err(err) = chain("upper", k.to_string().as_bytes()) {
            return Response::ok(format!("chained {k} then: {err}"));
        }
    }
    Response::ok(format!("chained {n}"))
}

/// Tries to reach another user's function, which the host must refuse.
pub fn chain_other(req: &Request) -> Response {
    match chain("other/upper", req.body()) {
        Ok(id) => Response::new(500, format!("chain accepted other/upper as call {id}")),
        Err(err) => Response::ok(err.to_string()),
    }
}

/// Awaits the call "ID" given as "ID TIMEOUT_MS": "ok OUTPUT", or "error: WHY" (a timeout of
/// 0 only looks).
pub fn await_id(req: &Request) -> Response {
    let body = String::from_utf8_lossy(req.body());
    let mut words = body.split_whitespace();
    let id = words.next().and_then(|id| id.parse().ok()).unwrap_or(0);
    let timeout = words.next().and_then(|ms| ms.parse().ok()).unwrap_or(0);
    let timeout = std::time::Duration::from_millis(timeout);
    match fwasm_sdk::await_call_timeout(CallId::new(id), timeout) {
        Ok(output) => Response::ok([&b"ok "[..], &output].concat()),
        Err(err) => Response::ok(format!("error: {err}")),
    }
}

/// Runs `upper` on the body and returns the child's call id.
pub fn child_id(req: &Request) -> Response {
    let run = || -> Result<CallId, Error> {
        let child = chain("upper", req.body())?;
        await_call(child)?;
        Ok(child)
    };
    respond(run().map(|id| id.to_string().into_bytes()))
}

/// Starts one call of `function` per input, awaits them all and sums their decimal outputs.
fn sum_of_calls(function: &str, inputs: impl Iterator<Item = String>) -> Result<Vec<u8>, String> {
    let calls = inputs
        .map(|input| chain(function, input.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| err.to_string())?;
    let mut sum: u64 = 0;
    for call in calls {
        let out = await_call(call).map_err(|err| err.to_string())?;
        let text = String::from_utf8_lossy(&out);
        let value: u64 = text
            .parse()
            .map_err(|_| format!("call {call} of {function} returned {text:?}, not a number"))?;
        sum = sum.wrapping_add(value);
    }
    Ok(sum.to_string().into_bytes())
}

/// Chains `spin` (which never ends by itself) and awaits it.
pub fn await_spin() -> Response {
    let run = || -> Result<Vec<u8>, Error> { await_call(chain("spin", b"")?) };
    respond(run())
}
