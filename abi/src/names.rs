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
/// Optional `fwasm_init() -> ()`: initialisation, run once per executor; calls start from the
/// memory it leaves.
pub const EXPORT_INIT: &str = "fwasm_init";
/// Optional `_faasm_zygote() -> i32` of a Faasm module: initialisation as Faasm runs it, 0 for
/// success.
pub const EXPORT_FAASM_ZYGOTE: &str = "_faasm_zygote";
/// Optional `_initialize() -> ()` of a WASI reactor (libc, C++ constructors).
pub const EXPORT_INITIALIZE: &str = "_initialize";

/// The one import module the host provides for ABI v1.
pub const IMPORT_MODULE: &str = "fwasm_v1";
/// `log(level: i32, ptr: i32, len: i32) -> i32`.
pub const IMPORT_LOG: &str = "log";
/// `fail(ptr: i32, len: i32) -> i32`: records why the call is about to fail (e.g. a panic message).
pub const IMPORT_FAIL: &str = "fail";

/// `chain(name_ptr: i32, name_len: i32, input_ptr: i32, input_len: i32) -> i64`: starts a call of
/// another function of the same user; the new call's id (> 0) or a negative status.
pub const IMPORT_CHAIN: &str = "chain";
/// `publish(topic_ptr: i32, topic_len: i32, data_ptr: i32, data_len: i32) -> i32`: publishes
/// an event on a topic of the caller's user; how many subscribed functions it started (>= 0)
/// or a negative status.
pub const IMPORT_PUBLISH: &str = "publish";
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

// State (addition to v1). Every key is a (key_ptr, key_len) pair of UTF-8 text, scoped to the
// calling function's user. Values live in the executor's local copy until pushed.

/// `state_get(key_ptr, key_len, buf_ptr, buf_len) -> i64`: copies up to `buf_len` bytes of the
/// value (pulled first if this executor has no copy) and returns its full size.
pub const IMPORT_STATE_GET: &str = "state_get";
/// `state_get_offset(key_ptr, key_len, offset: i64, buf_ptr, buf_len) -> i64`: copies the
/// `buf_len` bytes at `offset`; returns `buf_len`.
pub const IMPORT_STATE_GET_OFFSET: &str = "state_get_offset";
/// `state_size(key_ptr, key_len) -> i64`: the value's size (0 for a missing key).
pub const IMPORT_STATE_SIZE: &str = "state_size";
/// `state_set(key_ptr, key_len, val_ptr, val_len) -> i32`: replaces the local copy.
pub const IMPORT_STATE_SET: &str = "state_set";
/// `state_set_offset(key_ptr, key_len, offset: i64, val_ptr, val_len) -> i32`: writes into the
/// local copy at `offset`, growing it with zeros if needed.
pub const IMPORT_STATE_SET_OFFSET: &str = "state_set_offset";
/// `state_append(key_ptr, key_len, val_ptr, val_len) -> i32`: adds an element to the key's
/// global append-only list.
pub const IMPORT_STATE_APPEND: &str = "state_append";
/// `state_read_appended(key_ptr, key_len, buf_ptr, buf_len) -> i64`: the list's elements, each
/// as a u32 little-endian length and its bytes; copies up to `buf_len`, returns the full length.
pub const IMPORT_STATE_READ_APPENDED: &str = "state_read_appended";
/// `state_clear_appended(key_ptr, key_len) -> i32`.
pub const IMPORT_STATE_CLEAR_APPENDED: &str = "state_clear_appended";
/// `state_push(key_ptr, key_len) -> i32`: makes the local copy the global value.
pub const IMPORT_STATE_PUSH: &str = "state_push";
/// `state_pull(key_ptr, key_len) -> i32`: replaces the local copy with the global value.
pub const IMPORT_STATE_PULL: &str = "state_pull";
/// `state_delete(key_ptr, key_len) -> i32`: removes the key locally and globally.
pub const IMPORT_STATE_DELETE: &str = "state_delete";
/// `state_lock(key_ptr, key_len, mode: i32) -> i32`: waits for a lock (see [`lock_mode`]).
pub const IMPORT_STATE_LOCK: &str = "state_lock";
/// `state_unlock(key_ptr, key_len, mode: i32) -> i32`.
pub const IMPORT_STATE_UNLOCK: &str = "state_unlock";

/// Lock modes of `state_lock` and `state_unlock`.
pub mod lock_mode {
    /// Shared lock on this executor's copy.
    pub const LOCAL_READ: i32 = 1;
    /// Exclusive lock on this executor's copy.
    pub const LOCAL_WRITE: i32 = 2;
    /// Shared lock held in the state service, across executors.
    pub const GLOBAL_READ: i32 = 3;
    /// Exclusive lock held in the state service, across executors.
    pub const GLOBAL_WRITE: i32 = 4;
}

/// Log levels accepted by `log`.
pub mod log_level {
    pub const ERROR: i32 = 1;
    pub const WARN: i32 = 2;
    pub const INFO: i32 = 3;
    pub const DEBUG: i32 = 4;
    pub const TRACE: i32 = 5;
}
