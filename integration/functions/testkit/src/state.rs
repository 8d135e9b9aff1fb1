//! Behaviours that use state (all uploaded under the same user, so they share keys).

use fwasm_sdk::{Error, Request, Response, state};

use crate::respond;

/// Adds 1 to the decimal counter in "counter" under a global write lock; the new value.
pub fn counter() -> Response {
    let run = || -> Result<Vec<u8>, String> {
        let lock = state::lock_global_write("counter").map_err(|e| e.to_string())?;
        state::pull("counter").map_err(|e| e.to_string())?;
        let bytes = state::get("counter").map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&bytes);
        let n: u64 = match text.as_ref() {
            "" => 0,
            text => text
                .parse()
                .map_err(|_| format!("counter holds {text:?}, not a number"))?,
        };
        let next = (n + 1).to_string();
        state::set("counter", next.as_bytes()).map_err(|e| e.to_string())?;
        state::push("counter").map_err(|e| e.to_string())?;
        drop(lock);
        Ok(next.into_bytes())
    };
    respond(run())
}

/// Faasm's state_offset demo: whole and offset writes, pushed, pulled and read back at an
/// offset.
pub fn state_offset() -> Response {
    const KEY: &str = "state_offset_example";
    let run = || -> Result<Vec<u8>, Error> {
        state::set(KEY, &[0, 1, 2, 3, 4, 5, 6])?;
        state::push(KEY)?;
        state::set_offset(KEY, 0, &[5, 5, 5])?;
        state::set_offset(KEY, 2, &[6, 6])?;
        state::push(KEY)?;
        state::pull(KEY)?;
        state::get_offset(KEY, 0, 5)
    };
    match run() {
        Ok(got) if got == [5, 5, 6, 6, 4] => Response::ok("success"),
        Ok(got) => Response::ok(format!("failure: got {got:?}")),
        Err(err) => Response::new(500, err.to_string()),
    }
}

/// "W N": appends "W:0" .. "W:N-1" to "appended".
pub fn appender(req: &Request) -> Response {
    let body = String::from_utf8_lossy(req.body());
    let (writer, n) = match body.split_whitespace().collect::<Vec<_>>()[..] {
        [writer, n] => match n.parse::<u64>() {
            Ok(n) => (writer, n),
            Err(_) => return Response::new(400, "appender takes \"W N\" with N a number"),
        },
        _ => return Response::new(400, "appender takes \"W N\""),
    };
    let run = || -> Result<Vec<u8>, Error> {
        for i in 0..n {
            state::append("appended", format!("{writer}:{i}").as_bytes())?;
        }
        Ok(b"ok".to_vec())
    };
    respond(run())
}

/// Runs a script of state commands separated by ";" and replies 200 with the outputs of the
/// commands that read, joined by ";", then `error: ...` if a command failed (which ends the
/// script). Commands are words separated by single spaces:
///
/// `get K`, `get_offset K O L`, `size K`, `set K V`, `set_offset K O V`, `append K V`,
/// `read_appended K` (elements joined by ","), `clear_appended K`, `push K`, `pull K`,
/// `delete K`, `lock_read K`, `lock_write K`, `lock_global_read K`, `lock_global_write K`,
/// `unlock K` (releases the latest lock taken on K; the others last until the script ends).
///
/// V is the rest of the command and may hold spaces or be empty. A missing K is the empty key,
/// so `get` asks for "" and the host refuses it.
pub fn script(req: &Request) -> Response {
    let body = String::from_utf8_lossy(req.body());
    let mut outputs = Vec::new();
    let mut locks = Vec::new();
    for command in body.split(';').map(str::trim).filter(|c| !c.is_empty()) {
        match run(command, &mut locks) {
            Ok(Some(output)) => outputs.push(output),
            Ok(None) => {}
            Err(err) => {
                outputs.push(format!("error: {err}"));
                break;
            }
        }
    }
    drop(locks);
    Response::ok(outputs.join(";"))
}

/// Runs one command: its output if it reads, or what went wrong.
fn run(command: &str, locks: &mut Vec<state::StateLock>) -> Result<Option<String>, String> {
    let (name, rest) = command.split_once(' ').unwrap_or((command, ""));
    let text = |bytes: Vec<u8>| Some(String::from_utf8_lossy(&bytes).into_owned());
    let host = |err: Error| err.to_string();
    Ok(match name {
        "get" => text(state::get(key(rest)?).map_err(host)?),
        "get_offset" => {
            let [key, offset, len] = words(rest, "get_offset K O L")?;
            text(state::get_offset(key, number(offset)?, number(len)?).map_err(host)?)
        }
        "size" => Some(state::size(key(rest)?).map_err(host)?.to_string()),
        "read_appended" => {
            let elements = state::read_appended(key(rest)?).map_err(host)?;
            let elements: Vec<_> = elements
                .iter()
                .map(|e| String::from_utf8_lossy(e))
                .collect();
            Some(elements.join(","))
        }
        "set" | "append" => {
            let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
            let write = if name == "set" {
                state::set
            } else {
                state::append
            };
            write(key, value.as_bytes()).map_err(host)?;
            None
        }
        "set_offset" => {
            let mut parts = rest.splitn(3, ' ');
            let (key, offset) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let value = parts.next().unwrap_or("");
            state::set_offset(key, number(offset)?, value.as_bytes()).map_err(host)?;
            None
        }
        "clear_appended" | "push" | "pull" | "delete" => {
            let op = match name {
                "clear_appended" => state::clear_appended,
                "push" => state::push,
                "pull" => state::pull,
                _ => state::delete,
            };
            op(key(rest)?).map_err(host)?;
            None
        }
        "lock_read" | "lock_write" | "lock_global_read" | "lock_global_write" => {
            let take = match name {
                "lock_read" => state::lock_read,
                "lock_write" => state::lock_write,
                "lock_global_read" => state::lock_global_read,
                _ => state::lock_global_write,
            };
            locks.push(take(key(rest)?).map_err(host)?);
            None
        }
        "unlock" => {
            let key = key(rest)?;
            let latest = locks.iter().rposition(|lock| lock.key() == key);
            let latest = latest.ok_or_else(|| format!("no lock taken on {key} to unlock"))?;
            locks.remove(latest).unlock().map_err(host)?;
            None
        }
        _ => return Err(format!("unknown command {name}")),
    })
}

/// The one word of a command that takes a key.
fn key(rest: &str) -> Result<&str, String> {
    let [key] = words(rest, "a key")?;
    Ok(key)
}

/// Exactly `N` words separated by single spaces; `usage` says what was expected.
fn words<'a, const N: usize>(rest: &'a str, usage: &str) -> Result<[&'a str; N], String> {
    let words: Vec<&str> = rest.split(' ').collect();
    <[&str; N]>::try_from(words).map_err(|_| format!("expected {usage}, found {rest:?}"))
}

fn number<T: std::str::FromStr>(word: &str) -> Result<T, String> {
    word.parse()
        .map_err(|_| format!("expected a number, found {word:?}"))
}
