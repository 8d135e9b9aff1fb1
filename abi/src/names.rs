//! Names of the exports a guest provides and of the import module the host provides.

/// Version of the envelope layout written as the first byte of every envelope.
pub const ENVELOPE_VERSION: u8 = 1;

/// Marker export `() -> ()` declaring that a module speaks ABI v1.
pub const EXPORT_ABI_MARKER: &str = "fwasm_abi_v1";
/// `fwasm_alloc(len: i32) -> i32`: guest memory for the host to write the request into.
pub const EXPORT_ALLOC: &str = "fwasm_alloc";
/// `fwasm_handle(req_ptr: i32, req_len: i32) -> i64`: packed pointer/length of the response.
pub const EXPORT_HANDLE: &str = "fwasm_handle";
/// The guest's linear memory.
pub const EXPORT_MEMORY: &str = "memory";

/// The one import module the host provides for ABI v1.
pub const IMPORT_MODULE: &str = "fwasm_v1";
/// `log(level: i32, ptr: i32, len: i32) -> i32`.
pub const IMPORT_LOG: &str = "log";
/// `fail(ptr: i32, len: i32) -> i32`: records why the call is about to fail (e.g. a panic message).
pub const IMPORT_FAIL: &str = "fail";

/// `chain(name_ptr: i32, name_len: i32, input_ptr: i32, input_len: i32) -> i64`: starts a call of
/// another function of the same user; the new call's id (> 0) or a negative status.
pub const IMPORT_CHAIN: &str = "chain";
/// `await(call_id: i64, timeout_ms: i32) -> i32`: suspends until the call ends. 0 = it
/// succeeded, > 0 = it failed with that return code, < 0 = a status (e.g. `Timeout`).
/// `timeout_ms < 0` waits for as long as the caller's own time limit allows.
pub const IMPORT_AWAIT: &str = "await";
/// `call_output(call_id: i64, buf_ptr: i32, buf_len: i32) -> i64`: the output (or failure
/// reason) of a call this call awaited: copies up to `buf_len` bytes, returns the full length.
pub const IMPORT_CALL_OUTPUT: &str = "call_output";
/// `last_error(buf_ptr: i32, buf_len: i32) -> i32`: the message for the most recent negative
/// status an import returned to this call: copies up to `buf_len` bytes, returns the full length.
pub const IMPORT_LAST_ERROR: &str = "last_error";

/// Log levels accepted by `log`.
pub mod log_level {
    pub const ERROR: i32 = 1;
    pub const WARN: i32 = 2;
    pub const INFO: i32 = 3;
    pub const DEBUG: i32 = 4;
    pub const TRACE: i32 = 5;
}
