//! Faasm's raw host interface (module `env`) over fwasm's host capabilities. Faasm raises an
//! error where fwasm's own ABI returns a status, so a refused import fails the call with the
//! reason. Keys, names and paths are NUL-terminated guest strings; state keys belong to the
//! call's user, as on Faasm.

use bytes::Bytes;
use fwasm_abi::lock_mode;
use wasmi::{Caller, Linker, Memory, Module, Store, ValType};

use super::{FUNCTION_POINTER_MAGIC, FaasmCall, Mapped};
use crate::abi::{ImportSignature, ValidationError, expect_imports, wasi_preview1};
use crate::host::memory::{Args, GuestBuf, copy_into, guest_slice};
use crate::host::mpi::imports as mpi;
use crate::host::park::{HostOp, Refusal, park};
use crate::host::state::{self, Answer, StateOp};
use crate::host::{AfterOp, HostState, chaining};

pub(super) const MODULE: &str = "env";

/// Longest key, function name or flag read from a guest string.
const MAX_TEXT: usize = 4096;

const WASM_PAGE: u64 = 64 << 10;

const I: ValType = ValType::I32;

/// Every `env` import a Faasm-toolchain binary may have on fwasm, with its type.
pub(crate) const IMPORTS: &[ImportSignature] = &[
    (MODULE, "__faasm_read_input", &[I, I], &[I]),
    (MODULE, "__faasm_write_output", &[I, I], &[]),
    (MODULE, "__faasm_chain_name", &[I, I, I], &[I]),
    (MODULE, "__faasm_chain_ptr", &[I, I, I], &[I]),
    (MODULE, "__faasm_await_call", &[I], &[I]),
    (MODULE, "__faasm_await_call_output", &[I, I, I], &[I]),
    (MODULE, "__faasm_read_state", &[I, I, I], &[I]),
    (MODULE, "__faasm_read_state_ptr", &[I, I], &[I]),
    (MODULE, "__faasm_read_state_offset", &[I, I, I, I, I], &[]),
    (MODULE, "__faasm_read_state_offset_ptr", &[I, I, I, I], &[I]),
    (MODULE, "__faasm_write_state", &[I, I, I], &[]),
    (MODULE, "__faasm_write_state_offset", &[I, I, I, I, I], &[]),
    (MODULE, "__faasm_append_state", &[I, I, I], &[]),
    (MODULE, "__faasm_read_appended_state", &[I, I, I, I], &[]),
    (MODULE, "__faasm_clear_appended_state", &[I], &[]),
    (MODULE, "__faasm_flag_state_dirty", &[I, I], &[]),
    (
        MODULE,
        "__faasm_flag_state_offset_dirty",
        &[I, I, I, I],
        &[],
    ),
    (MODULE, "__faasm_push_state", &[I], &[]),
    (MODULE, "__faasm_push_state_partial", &[I], &[]),
    (MODULE, "__faasm_pull_state", &[I, I], &[]),
    (MODULE, "__faasm_lock_state_read", &[I], &[]),
    (MODULE, "__faasm_unlock_state_read", &[I], &[]),
    (MODULE, "__faasm_lock_state_write", &[I], &[]),
    (MODULE, "__faasm_unlock_state_write", &[I], &[]),
    (MODULE, "__faasm_conf_flag", &[I], &[I]),
    (MODULE, "__faasm_backtrace", &[I], &[]),
    (MODULE, "__faasm_sm_reduce", &[I, I, I, I], &[]),
    (MODULE, "__faasm_sm_critical_local", &[], &[]),
    (MODULE, "__faasm_sm_critical_local_end", &[], &[]),
    (MODULE, "__faasm_migrate_point", &[I, I], &[]),
    (MODULE, "mmap", &[I, I, I, I, I, ValType::I64], &[I]),
    (MODULE, "munmap", &[I, I], &[I]),
    (MODULE, "__sbrk", &[I], &[I]),
];

/// What a Faasm binary may import, for the message about one it may not.
const PROVIDES: &str = "it provides Faasm's host interface (`env.__faasm_*`: input, output, \
chaining, awaiting, state, locks, conf flags, and the shared-memory and migration calls, which \
do nothing for a function on one thread that is never migrated), MPI's `env.MPI_*` (not \
`MPI_Comm_split`, `_create`, `_group`, `MPI_Group_*`, `MPI_Win_lock`/`_unlock`, \
`MPI_Accumulate` or user-defined operations), but not its Python or S3 \
imports, nor `__faasm_push_state_partial_mask`, `__faasm_write_state_from_file` or \
`__faasm_host_interface_test`; `env.mmap`, `munmap` and `__sbrk`; client sockets (`env.socket`, `connect`; `bind` and `listen` \
answer -1); and WASI preview1";

pub(super) fn check(module: &Module) -> Result<(), ValidationError> {
    expect_imports(
        module,
        IMPORTS
            .iter()
            .copied()
            .chain(super::network::IMPORTS.iter().copied())
            .chain(mpi::signatures())
            .chain(wasi_preview1::signatures()),
        PROVIDES,
    )
}

/// The call's Faasm state, set as the call begins: a start function, which runs before, has
/// none (Faasm's imports are for the call).
fn faasm<'h>(host: &'h mut HostState, import: &str) -> Result<&'h mut FaasmCall, Refusal> {
    let call = host.abi_state.as_mut();
    call.and_then(|state| state.downcast_mut::<FaasmCall>())
        .ok_or_else(|| {
            Refusal::new(
                fwasm_abi::HostStatus::Unavailable,
                format!(
                    "{import} can only be used once the call has begun (not in a start function)"
                ),
            )
        })
}

/// Fails the call with `message`: the trap reports it as the reason.
fn fail(caller: &mut Caller<'_, HostState>, message: String) -> wasmi::Error {
    caller.data_mut().failure_reason = Some(message.clone());
    wasmi::Error::new(message)
}

fn refused(caller: &mut Caller<'_, HostState>, refusal: Refusal) -> wasmi::Error {
    fail(caller, refusal.message)
}

fn memory(caller: &Caller<'_, HostState>, import: &str) -> Result<Memory, Refusal> {
    caller.data().memory.ok_or_else(|| {
        Refusal::new(
            fwasm_abi::HostStatus::Unavailable,
            format!("{import} called before start-up"),
        )
    })
}

/// The NUL-terminated guest string at `ptr` (`what` names it in refusals).
fn c_string(
    caller: &Caller<'_, HostState>,
    import: &str,
    what: &str,
    ptr: i32,
) -> Result<String, Refusal> {
    let data = memory(caller, import)?.data(caller);
    let start = ptr as u32 as usize;
    let bad = |why: &str| {
        Refusal::new(
            fwasm_abi::HostStatus::InvalidArgument,
            format!("{import}: the {what} {why}"),
        )
    };
    let tail = data
        .get(start..)
        .ok_or_else(|| bad("lies outside the guest's memory"))?;
    let tail = &tail[..tail.len().min(MAX_TEXT + 1)];
    let end = tail
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| bad("has no terminating NUL within 4096 bytes"))?;
    let text = std::str::from_utf8(&tail[..end]).map_err(|_| bad("is not UTF-8"))?;
    Ok(text.to_string())
}

fn key(caller: &Caller<'_, HostState>, import: &str, ptr: i32) -> Result<String, Refusal> {
    state::key(import, &c_string(caller, import, "key", ptr)?)
}

/// Parks the call for `op`; `after` turns the op's value into the import's.
fn park_then(
    caller: &mut Caller<'_, HostState>,
    op: HostOp,
    after: AfterOp,
) -> Result<i64, wasmi::Error> {
    caller.data_mut().after_op = Some(after);
    match park(caller, op) {
        Ok(suspend) => Err(suspend),
        Err(refusal) => {
            caller.data_mut().after_op = None;
            Err(refused(caller, refusal))
        }
    }
}

/// A state answer as the import's value: now, or once its op completes.
fn answer(
    caller: &mut Caller<'_, HostState>,
    answer: Result<Answer, Refusal>,
) -> Result<i64, wasmi::Error> {
    match answer {
        Ok(Answer::Now(value)) => Ok(value),
        Ok(Answer::Park(op)) => match park(caller, HostOp::State(op)) {
            Ok(suspend) => Err(suspend),
            Err(refusal) => Err(refused(caller, refusal)),
        },
        Err(refusal) => Err(refused(caller, refusal)),
    }
}

/// Grows guest memory by `bytes` (whole pages) as Faasm's `mmap` and `sbrk` do: the old
/// break, or `None` if the memory may not grow so far.
fn grow(caller: &mut Caller<'_, HostState>, bytes: u64) -> Option<u32> {
    let memory = caller.data().memory?;
    let pages = bytes.div_ceil(WASM_PAGE);
    let old = memory.grow(&mut *caller, pages).ok()?;
    u32::try_from(old * WASM_PAGE).ok()
}

/// Copies what the guest wrote through its state pointers into the local copies.
pub(super) fn sync_mapped(store: &mut Store<HostState>, memory: Memory) {
    let (data, host) = memory.data_and_store_mut(store);
    sync(data, host, None);
}

/// [`sync_mapped`] for `only` one key, if given. Only the bytes the guest changed since the
/// mapping was last in step are written, over the local copy as it is now: a call that only
/// read through its pointer leaves alone what others wrote meanwhile.
fn sync(data: &[u8], host: &mut HostState, only: Option<&str>) {
    let Ok(call) = faasm(host, "__faasm_push_state") else {
        return;
    };
    let mut changed = Vec::new();
    for (key, mapped) in &mut call.mapped {
        if only.is_some_and(|only| only != key.as_str()) {
            continue;
        }
        let Ok(now) = guest_slice(data, mapped.addr as i32, mapped.len as i32) else {
            continue;
        };
        if now != mapped.clean.as_slice() {
            changed.push((key.clone(), mapped.clean.clone(), now.to_vec()));
            mapped.clean = now.to_vec();
        }
    }
    for (key, was, now) in changed {
        let mut value = state::local_copy(host, &key).unwrap_or_else(|| was.clone());
        if value.len() < now.len() {
            value.resize(now.len(), 0);
        }
        for (index, (old, new)) in was.iter().zip(&now).enumerate() {
            if old != new {
                value[index] = *new;
            }
        }
        let _ = state::set(host, key, value);
    }
}

/// Notes the mapping of `key` as in step with the local copy (what the guest sees now).
fn in_step(data: &[u8], host: &mut HostState, key: &str) {
    let Ok(call) = faasm(host, "__faasm_read_state_ptr") else {
        return;
    };
    if let Some(mapped) = call.mapped.get_mut(key)
        && let Ok(now) = guest_slice(data, mapped.addr as i32, mapped.len as i32)
    {
        mapped.clean = now.to_vec();
    }
}

fn sync_key(caller: &mut Caller<'_, HostState>, key: &str) {
    if let Some(memory) = caller.data().memory {
        let (data, host) = memory.data_and_store_mut(&mut *caller);
        sync(data, host, Some(key));
    }
}

/// The guest address of `key`'s value of `len` bytes, copied into memory the first time.
fn map_state(
    caller: &mut Caller<'_, HostState>,
    import: &str,
    key: String,
    len: i32,
    offset: u32,
) -> Result<i64, wasmi::Error> {
    let known = match faasm(caller.data_mut(), import) {
        Ok(call) => call.mapped.get(&key).map(|m| (m.addr, m.len)),
        Err(refusal) => return Err(refused(caller, refusal)),
    };
    let past_end =
        |len: u32| format!("{import}({key:?}): offset {offset} lies past the value's {len} bytes");
    if let Some((addr, len)) = known {
        if offset >= len && len > 0 {
            return Err(fail(caller, past_end(len)));
        }
        return Ok(i64::from(addr + offset));
    }
    if len <= 0 {
        let why = format!("{import}({key:?}): the value's length must be given (it was {len})");
        return Err(fail(caller, why));
    }
    if offset >= len as u32 {
        return Err(fail(caller, past_end(len as u32)));
    }
    let Some(addr) = grow(caller, len as u64) else {
        let why = format!("{import}({key:?}): memory cannot grow by {len} bytes for the value");
        return Err(fail(caller, why));
    };
    let mapped = Mapped {
        addr,
        len: len as u32,
        clean: Vec::new(),
    };
    if let Ok(call) = faasm(caller.data_mut(), import) {
        call.mapped.insert(key.clone(), mapped);
    }
    let at = i64::from(addr + offset);
    let buf = GuestBuf {
        ptr: addr as i32,
        len,
    };
    let filled_key = key.clone();
    match state::get(caller, key, None, buf) {
        Ok(Answer::Now(_)) => {
            if let Some(memory) = caller.data().memory {
                let (data, host) = memory.data_and_store_mut(&mut *caller);
                in_step(data, host, &filled_key);
            }
            Ok(at)
        }
        Ok(Answer::Park(op)) => park_then(
            caller,
            HostOp::State(op),
            Box::new(move |store, memory, value| {
                let (data, host) = memory.data_and_store_mut(store);
                in_step(data, host, &filled_key);
                if value < 0 { value } else { at }
            }),
        ),
        Err(refusal) => Err(refused(caller, refusal)),
    }
}

/// Faasm's 32-bit id for a call this call chained (`value`: fwasm's id, or a status).
fn short_id(host: &mut HostState, value: i64) -> i64 {
    if value <= 0 {
        return value;
    }
    let Ok(call) = faasm(host, "__faasm_chain_name") else {
        return value;
    };
    call.chained.push(value as u64);
    call.chained.len() as i64
}

/// fwasm's id of the call Faasm's id `id` names, if this call chained it.
fn long_id(host: &mut HostState, id: i32) -> Option<i64> {
    let chained = &faasm(host, "__faasm_await_call").ok()?.chained;
    let index = usize::try_from(id).ok()?.checked_sub(1)?;
    chained.get(index).map(|id| *id as i64)
}

/// Chains `function` with `input`; the import's value is Faasm's id of the new call.
fn chain(
    caller: &mut Caller<'_, HostState>,
    import: &str,
    function: &str,
    input: Bytes,
) -> Result<i64, wasmi::Error> {
    match chaining::chain_request(caller.data(), function, Ok(&input)) {
        Ok(op) => park_then(
            caller,
            op,
            Box::new(|store, _, value| short_id(store.data_mut(), value)),
        ),
        Err(refusal) => {
            let why = format!("{import}({function:?}) was refused: {}", refusal.message);
            Err(fail(caller, why))
        }
    }
}

/// Waits for Faasm's call `id`; the import's value is its return value (1 if it cannot be
/// awaited, as on Faasm). `output`: the guest buffer its output is copied into.
fn await_call(
    caller: &mut Caller<'_, HostState>,
    id: i32,
    output: Option<GuestBuf>,
) -> Result<i64, wasmi::Error> {
    let Some(id) = long_id(caller.data_mut(), id) else {
        return Ok(1);
    };
    match chaining::await_request(caller.data(), id, None) {
        Ok(Ok(code)) => {
            if let (Some(buf), Some(memory)) = (output, caller.data().memory) {
                let (data, host) = memory.data_and_store_mut(&mut *caller);
                copy_output(data, host, id, buf);
            }
            Ok(code.into())
        }
        Ok(Err(op)) => park_then(
            caller,
            op,
            Box::new(move |store, memory, code| {
                if let Some(buf) = output {
                    let (data, host) = memory.data_and_store_mut(store);
                    copy_output(data, host, id, buf);
                }
                if code < 0 { 1 } else { code }
            }),
        ),
        Err(_) => Ok(1),
    }
}

/// Copies the output of awaited call `id` into `buf` (as much as fits).
fn copy_output(data: &mut [u8], host: &HostState, id: i64, buf: GuestBuf) {
    if let Ok(bytes) = chaining::call_output(host, id) {
        let _ = copy_into(data, &bytes, buf.ptr, buf.len);
    }
}

/// Defines one import that fails the call on a refusal: `$body` gives the import's value.
macro_rules! import {
    ($linker:expr, $name:literal, |$caller:ident $(, $arg:ident)*| -> i32 $body:block) => {
        $linker
            .func_wrap(
                MODULE,
                $name,
                |mut $caller: Caller<'_, HostState>, $($arg: i32),*| -> Result<i32, wasmi::Error> {
                    // A closure, so that `?` and `return` in the body answer the import.
                    #[allow(clippy::redundant_closure_call)]
                    let value: Result<i64, wasmi::Error> = (|| $body)();
                    value.map(|value| value as i32)
                },
            )
            .expect("each Faasm import is defined once");
    };
    ($linker:expr, $name:literal, |$caller:ident $(, $arg:ident)*| $body:block) => {
        $linker
            .func_wrap(
                MODULE,
                $name,
                |mut $caller: Caller<'_, HostState>, $($arg: i32),*| -> Result<(), wasmi::Error> {
                    // A closure, so that `?` and `return` in the body answer the import.
                    #[allow(clippy::redundant_closure_call)]
                    let value: Result<i64, wasmi::Error> = (|| $body)();
                    value.map(drop)
                },
            )
            .expect("each Faasm import is defined once");
    };
}

/// A guest argument read through `$read`, failing the call on a refusal.
macro_rules! arg {
    ($caller:ident, $read:expr) => {
        match $read {
            Ok(value) => value,
            Err(refusal) => return Err(refused(&mut $caller, refusal)),
        }
    };
}

pub(super) fn define(linker: &mut Linker<HostState>) {
    mpi::define(linker);
    super::network::define(linker);
    define_single_thread(linker);
    define_io_and_chaining(linker);
    define_state(linker);
    define_locks(linker);
    define_memory(linker);
}

/// Threads' shared memory and migration: a function on fwasm runs on one thread and is never
/// migrated, so there is nothing to merge, exclude or move.
fn define_single_thread(linker: &mut Linker<HostState>) {
    let defined = linker
        .func_wrap(
            MODULE,
            "__faasm_sm_reduce",
            |_: i32, _: i32, _: i32, _: i32| {},
        )
        .and_then(|l| l.func_wrap(MODULE, "__faasm_sm_critical_local", || {}))
        .and_then(|l| l.func_wrap(MODULE, "__faasm_sm_critical_local_end", || {}))
        .and_then(|l| l.func_wrap(MODULE, "__faasm_migrate_point", |_: i32, _: i32| {}));
    defined.expect("each Faasm import is defined once");
}

fn define_io_and_chaining(linker: &mut Linker<HostState>) {
    import!(linker, "__faasm_read_input", |caller, ptr, len| -> i32 {
        let input = arg!(caller, faasm(caller.data_mut(), "__faasm_read_input"))
            .input
            .clone();
        if len == 0 {
            return Ok(input.len() as i64);
        }
        let memory = arg!(caller, memory(&caller, "__faasm_read_input"));
        let n = input.len().min(len as u32 as usize);
        match copy_into(memory.data_mut(&mut caller), &input[..n], ptr, n as i32) {
            Ok(_) => Ok(n as i64),
            Err(_) => Err(fail(
                &mut caller,
                "__faasm_read_input: the buffer lies outside the guest's memory".into(),
            )),
        }
    });
    import!(linker, "__faasm_write_output", |caller, ptr, _len| {
        // As WAVM: the output is the NUL-terminated string at `ptr`; the length is not used.
        let memory = arg!(caller, memory(&caller, "__faasm_write_output"));
        let data = memory.data(&caller);
        let Some(tail) = data.get(ptr as u32 as usize..) else {
            let why = "__faasm_write_output: the output lies outside the guest's memory";
            return Err(fail(&mut caller, why.into()));
        };
        let end = tail.iter().position(|b| *b == 0).unwrap_or(tail.len());
        let output = tail[..end].to_vec();
        arg!(caller, faasm(caller.data_mut(), "__faasm_write_output")).output = output;
        Ok(0)
    });
    import!(linker, "__faasm_chain_name", |caller,
                                           name,
                                           input,
                                           len|
     -> i32 {
        let import = "__faasm_chain_name";
        let function = arg!(caller, c_string(&caller, import, "function name", name));
        let bytes = arg!(
            caller,
            Args::new(&caller, import).bytes("input", input, len)
        );
        let bytes = Bytes::copy_from_slice(bytes);
        chain(&mut caller, import, &function, bytes)
    });
    import!(linker, "__faasm_chain_ptr", |caller,
                                          index,
                                          input,
                                          len|
     -> i32 {
        let import = "__faasm_chain_ptr";
        let bytes = arg!(
            caller,
            Args::new(&caller, import).bytes("input", input, len)
        );
        let mut chained = FUNCTION_POINTER_MAGIC.to_vec();
        chained.extend_from_slice(&(index as u32).to_le_bytes());
        chained.extend_from_slice(bytes);
        let function = arg!(caller, faasm(caller.data_mut(), import))
            .function
            .clone();
        chain(&mut caller, import, &function, chained.into())
    });
    import!(linker, "__faasm_await_call", |caller, id| -> i32 {
        await_call(&mut caller, id, None)
    });
    import!(linker, "__faasm_await_call_output", |caller,
                                                  id,
                                                  ptr,
                                                  len|
     -> i32 {
        let buf = arg!(
            caller,
            Args::new(&caller, "__faasm_await_call_output").buf(ptr, len)
        );
        await_call(&mut caller, id, Some(buf))
    });
    import!(linker, "__faasm_conf_flag", |caller, key| -> i32 {
        let flag = arg!(caller, c_string(&caller, "__faasm_conf_flag", "flag", key));
        // Faasm's own flags; then the function's environment, as sdk-c's getConfFlag reads it.
        let on = match flag.as_str() {
            "ALWAYS_ON" => true,
            "ALWAYS_OFF" => false,
            other => matches!(caller.data().io.env_var(other), Some("on" | "1" | "true")),
        };
        Ok(i64::from(on))
    });
    import!(linker, "__faasm_backtrace", |caller, _depth| {
        let line = b"__faasm_backtrace: fwasm keeps no call stack to print; the call's trace \
has its spans\n";
        caller.data_mut().io.write(1, line);
        Ok(0)
    });
}

fn define_state(linker: &mut Linker<HostState>) {
    import!(linker, "__faasm_read_state", |caller, k, buf, len| -> i32 {
        let key = arg!(caller, key(&caller, "__faasm_read_state", k));
        if len == 0 {
            let size = state::size(caller.data(), key);
            return answer(&mut caller, Ok(size));
        }
        let buf = arg!(
            caller,
            Args::new(&caller, "__faasm_read_state").buf(buf, len)
        );
        let read = state::get(&mut caller, key, None, buf);
        answer(&mut caller, read)
    });
    import!(
        linker,
        "__faasm_read_state_offset",
        |caller, k, _total, offset, buf, len| {
            let import = "__faasm_read_state_offset";
            let key = arg!(caller, key(&caller, import, k));
            let buf = arg!(caller, Args::new(&caller, import).buf(buf, len));
            let read = state::get(&mut caller, key, Some(u64::from(offset as u32)), buf);
            answer(&mut caller, read)
        }
    );
    import!(linker, "__faasm_read_state_ptr", |caller,
                                               k,
                                               total|
     -> i32 {
        let key = arg!(caller, key(&caller, "__faasm_read_state_ptr", k));
        map_state(&mut caller, "__faasm_read_state_ptr", key, total, 0)
    });
    import!(linker, "__faasm_read_state_offset_ptr", |caller,
                                                      k,
                                                      total,
                                                      offset,
                                                      _len|
     -> i32 {
        let import = "__faasm_read_state_offset_ptr";
        let key = arg!(caller, key(&caller, import, k));
        map_state(&mut caller, import, key, total, offset as u32)
    });
    import!(linker, "__faasm_write_state", |caller, k, data, len| {
        let import = "__faasm_write_state";
        let key = arg!(caller, key(&caller, import, k));
        let bytes = arg!(caller, Args::new(&caller, import).bytes("value", data, len));
        let value = arg!(caller, state::value(caller.data(), bytes));
        let set = state::set(caller.data(), key.clone(), value);
        let written = answer(&mut caller, set)?;
        copy_to_mapped(&mut caller, &key);
        Ok(written)
    });
    import!(
        linker,
        "__faasm_write_state_offset",
        |caller, k, total, offset, data, len| {
            let import = "__faasm_write_state_offset";
            let key = arg!(caller, key(&caller, import, k));
            let bytes = arg!(caller, Args::new(&caller, import).bytes("value", data, len));
            let bytes = arg!(caller, state::value(caller.data(), bytes));
            let offset = u64::from(offset as u32);
            // Faasm's value is `total` bytes long: a short local copy is padded to it first.
            let padding = state::size(caller.data(), key.clone());
            if let (Answer::Now(size), Ok(total)) = (padding, u64::try_from(total))
                && (size as u64) < total
                && offset + bytes.len() as u64 != total
            {
                let pad = state::set_offset(caller.data(), key.clone(), total - 1, vec![0]);
                answer(&mut caller, pad)?;
            }
            let write = state::set_offset(caller.data(), key, offset, bytes);
            answer(&mut caller, write)
        }
    );
    import!(linker, "__faasm_append_state", |caller, k, data, len| {
        let import = "__faasm_append_state";
        let key = arg!(caller, key(&caller, import, k));
        let bytes = arg!(caller, Args::new(&caller, import).bytes("value", data, len));
        let element = arg!(caller, state::value(caller.data(), bytes)).into();
        answer(
            &mut caller,
            Ok(Answer::Park(StateOp::Append { key, element })),
        )
    });
    import!(
        linker,
        "__faasm_read_appended_state",
        |caller, k, buf, len, n| {
            let import = "__faasm_read_appended_state";
            let key = arg!(caller, key(&caller, import, k));
            let buf = arg!(caller, Args::new(&caller, import).buf(buf, len));
            let first = Some(n.max(0) as usize);
            answer(
                &mut caller,
                Ok(Answer::Park(StateOp::ReadAppended { key, buf, first })),
            )
        }
    );
    import!(linker, "__faasm_clear_appended_state", |caller, k| {
        let key = arg!(caller, key(&caller, "__faasm_clear_appended_state", k));
        answer(
            &mut caller,
            Ok(Answer::Park(StateOp::ClearAppended { key })),
        )
    });
    import!(linker, "__faasm_flag_state_dirty", |caller, k, _total| {
        let key = arg!(caller, key(&caller, "__faasm_flag_state_dirty", k));
        sync_key(&mut caller, &key);
        Ok(0)
    });
    import!(
        linker,
        "__faasm_flag_state_offset_dirty",
        |caller, k, _total, _offset, _len| {
            let key = arg!(caller, key(&caller, "__faasm_flag_state_offset_dirty", k));
            sync_key(&mut caller, &key);
            Ok(0)
        }
    );
    // fwasm pushes whole values: a partial push is a push.
    for name in ["__faasm_push_state", "__faasm_push_state_partial"] {
        linker
            .func_wrap(
                MODULE,
                name,
                move |mut caller: Caller<'_, HostState>, k: i32| -> Result<(), wasmi::Error> {
                    let key = arg!(caller, key(&caller, name, k));
                    sync_key(&mut caller, &key);
                    let push = state::push(caller.data(), key);
                    answer(&mut caller, Ok(push)).map(drop)
                },
            )
            .expect("each Faasm import is defined once");
    }
    import!(linker, "__faasm_pull_state", |caller, k, _len| {
        let key = arg!(caller, key(&caller, "__faasm_pull_state", k));
        let after_key = key.clone();
        park_then(
            &mut caller,
            HostOp::State(StateOp::Pull { key }),
            Box::new(move |store, memory, value| {
                let (data, host) = memory.data_and_store_mut(store);
                copy_mapped(data, host, &after_key);
                value
            }),
        )
    });
}

/// After a write that did not go through its mapping, the mapped copy shows the new value.
fn copy_to_mapped(caller: &mut Caller<'_, HostState>, key: &str) {
    if let Some(memory) = caller.data().memory {
        let (data, host) = memory.data_and_store_mut(&mut *caller);
        copy_mapped(data, host, key);
    }
}

/// Copies `key`'s local copy into its mapping in guest memory, if it has one.
fn copy_mapped(data: &mut [u8], host: &mut HostState, key: &str) {
    let Ok(call) = faasm(host, "__faasm_pull_state") else {
        return;
    };
    let Some((addr, len)) = call.mapped.get(key).map(|m| (m.addr, m.len)) else {
        return;
    };
    if let Some(value) = state::local_copy(host, key) {
        let len = value.len().min(len as usize);
        let _ = copy_into(data, &value[..len], addr as i32, len as i32);
    }
    in_step(data, host, key);
}

fn define_locks(linker: &mut Linker<HostState>) {
    let locks = [
        ("__faasm_lock_state_read", lock_mode::LOCAL_READ, true),
        ("__faasm_unlock_state_read", lock_mode::LOCAL_READ, false),
        ("__faasm_lock_state_write", lock_mode::LOCAL_WRITE, true),
        ("__faasm_unlock_state_write", lock_mode::LOCAL_WRITE, false),
    ];
    for (name, mode, take) in locks {
        linker
            .func_wrap(
                MODULE,
                name,
                move |mut caller: Caller<'_, HostState>, k: i32| -> Result<(), wasmi::Error> {
                    let key = arg!(caller, key(&caller, name, k));
                    let host = caller.data_mut();
                    let done = match take {
                        true => state::lock(host, key, mode),
                        false => state::unlock(host, key, mode),
                    };
                    answer(&mut caller, done).map(drop)
                },
            )
            .expect("each Faasm import is defined once");
    }
}

/// Faasm's memory calls: anonymous `mmap` and `sbrk` grow memory by whole pages and return
/// the old break; nothing is ever unmapped.
fn define_memory(linker: &mut Linker<HostState>) {
    linker
        .func_wrap(
            MODULE,
            "mmap",
            |mut caller: Caller<'_, HostState>,
             _addr: i32,
             len: i32,
             _prot: i32,
             _flags: i32,
             fd: i32,
             _offset: i64|
             -> i32 {
                // Only anonymous mappings: mapping a file is not something fwasm offers.
                if fd != -1 || len <= 0 {
                    return -1;
                }
                grow(&mut caller, len as u64).map_or(-1, |addr| addr as i32)
            },
        )
        .expect("mmap is defined once");
    linker
        .func_wrap(
            MODULE,
            "munmap",
            |_: Caller<'_, HostState>, _addr: i32, _len: i32| -> i32 { 0 },
        )
        .expect("munmap is defined once");
    linker
        .func_wrap(
            MODULE,
            "__sbrk",
            |mut caller: Caller<'_, HostState>, increment: i32| -> i32 {
                match increment {
                    0 => {
                        let pages = caller.data().memory.map_or(0, |m| m.size(&caller));
                        (pages * WASM_PAGE) as i32
                    }
                    n if n > 0 => grow(&mut caller, n as u64).map_or(-1, |addr| addr as i32),
                    _ => -1,
                }
            },
        )
        .expect("__sbrk is defined once");
}
