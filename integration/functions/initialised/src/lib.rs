//! A function with an expensive initialisation: a 4 MiB table built once per executor. Each
//! call answers "calls=C table=T value=V": C counts the calls this instance has seen (1 when
//! every call starts from the snapshot), T the table's length, V the table's entry for the
//! number in the body.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use fwasm_sdk::{Request, Response};

static TABLE: OnceLock<Vec<u32>> = OnceLock::new();
static CALLS: AtomicU32 = AtomicU32::new(0);

#[fwasm_sdk::init]
fn init() {
    TABLE.get_or_init(|| (0..1u32 << 20).map(|n| n.wrapping_mul(n)).collect());
    fwasm_sdk::log::info("initialised: a table of 4 MiB");
}

#[fwasm_sdk::handler]
fn handle(req: Request) -> Response {
    let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
    let n: usize = String::from_utf8_lossy(req.body()).trim().parse().unwrap_or(0);
    let table = TABLE.get().map_or(0, Vec::len);
    let value = TABLE.get().and_then(|t| t.get(n)).copied().unwrap_or(0);
    Response::ok(format!("calls={calls} table={table} value={value}"))
}
