//! State imports, with Faasm's two tiers: writes land in this executor's local copy (shared by
//! its calls), `state_push` makes a copy global, `state_pull` refreshes it, and the first read
//! of a key here pulls it. Append lists and global locks live in the state service. Imports
//! that need the state service park the call (see [`crate::park`]).

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use fwasm_abi::{self as abi, HostStatus, lock_mode};
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};
use wasmi::{Caller, Linker, Memory, Store, Val};

use crate::host::{HostState, copy_into, guest_slice};
use crate::limits::Limits;
use crate::local_state::{Full, LocalState};
use crate::park::{HostOp, Refusal, park_or_refuse};

/// The state side of one call's host state.
pub(crate) struct CallState {
    user: String,
    local: Arc<LocalState>,
    max_value_bytes: usize,
    /// Locks this call holds, most recent last.
    held: Vec<HeldLock>,
}

struct HeldLock {
    key: String,
    mode: i32,
    /// The guard of a local lock; global locks are held in the state service.
    _guard: Option<LocalGuard>,
}

/// A local lock, held until this is dropped.
#[expect(
    dead_code,
    reason = "the guards are held only to release the lock when dropped"
)]
pub(crate) enum LocalGuard {
    Read(OwnedRwLockReadGuard<()>),
    Write(OwnedRwLockWriteGuard<()>),
}

impl fmt::Debug for LocalGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LocalGuard::Read(_) => "LocalGuard::Read",
            LocalGuard::Write(_) => "LocalGuard::Write",
        })
    }
}

impl CallState {
    pub(crate) fn new(user: &str, local: Arc<LocalState>, limits: &Limits) -> Self {
        Self {
            user: user.to_string(),
            local,
            max_value_bytes: limits.max_state_value_bytes,
            held: Vec::new(),
        }
    }

    /// The global locks the call still holds, for the executor to release when it ends.
    pub(crate) fn global_locks(&self) -> Vec<String> {
        self.held
            .iter()
            .filter(|held| is_global(held.mode))
            .map(|held| held.key.clone())
            .collect()
    }

    fn holds(&self, key: &str, mode: i32) -> Option<usize> {
        self.held
            .iter()
            .rposition(|held| held.key == key && held.mode == mode)
    }
}

fn is_global(mode: i32) -> bool {
    matches!(mode, lock_mode::GLOBAL_READ | lock_mode::GLOBAL_WRITE)
}

/// A guest buffer, checked when the import is called and written when its op completes
/// (linear memory never shrinks, so it stays in bounds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuestBuf {
    ptr: i32,
    len: i32,
}

/// What a parked state import waits for, and what it needs to finish.
#[derive(Debug)]
pub(crate) enum StateOp {
    Get {
        key: String,
        buf: GuestBuf,
    },
    GetOffset {
        key: String,
        offset: u64,
        buf: GuestBuf,
    },
    Size {
        key: String,
    },
    SetOffset {
        key: String,
        offset: u64,
        bytes: Vec<u8>,
    },
    Pull {
        key: String,
    },
    Push {
        key: String,
        value: Bytes,
    },
    Delete {
        key: String,
    },
    Append {
        key: String,
        element: Bytes,
    },
    ReadAppended {
        key: String,
        buf: GuestBuf,
    },
    ClearAppended {
        key: String,
    },
    LocalLock {
        key: String,
        mode: i32,
        lock: Arc<RwLock<()>>,
    },
    GlobalLock {
        key: String,
        mode: i32,
    },
    GlobalUnlock {
        key: String,
    },
}

impl StateOp {
    /// The import that parked for this op, for messages.
    pub(crate) fn import(&self) -> &'static str {
        match self {
            StateOp::Get { .. } => abi::IMPORT_STATE_GET,
            StateOp::GetOffset { .. } => abi::IMPORT_STATE_GET_OFFSET,
            StateOp::Size { .. } => abi::IMPORT_STATE_SIZE,
            StateOp::SetOffset { .. } => abi::IMPORT_STATE_SET_OFFSET,
            StateOp::Pull { .. } => abi::IMPORT_STATE_PULL,
            StateOp::Push { .. } => abi::IMPORT_STATE_PUSH,
            StateOp::Delete { .. } => abi::IMPORT_STATE_DELETE,
            StateOp::Append { .. } => abi::IMPORT_STATE_APPEND,
            StateOp::ReadAppended { .. } => abi::IMPORT_STATE_READ_APPENDED,
            StateOp::ClearAppended { .. } => abi::IMPORT_STATE_CLEAR_APPENDED,
            StateOp::LocalLock { .. } | StateOp::GlobalLock { .. } => abi::IMPORT_STATE_LOCK,
            StateOp::GlobalUnlock { .. } => abi::IMPORT_STATE_UNLOCK,
        }
    }

    /// Whether the import returns an `i64` (a size) rather than an `i32` status.
    fn returns_i64(&self) -> bool {
        matches!(
            self,
            StateOp::Get { .. }
                | StateOp::GetOffset { .. }
                | StateOp::Size { .. }
                | StateOp::ReadAppended { .. }
        )
    }
}

/// What the state service answered.
#[derive(Debug)]
pub(crate) enum StateOutcome {
    /// A global value (empty for a missing key).
    Value(Bytes),
    Size(u64),
    Elements(Vec<Bytes>),
    Locked(Option<LocalGuard>),
    Done,
}

/// Applies a completed op to the call and returns the parked import's return value.
pub(crate) fn complete(
    store: &mut Store<HostState>,
    memory: Memory,
    op: StateOp,
    outcome: Result<StateOutcome, Refusal>,
) -> Val {
    let wide = op.returns_i64();
    let value = match outcome {
        Ok(outcome) => finish(store, memory, op, outcome),
        Err(refusal) => Err(refusal),
    };
    let value = value.unwrap_or_else(|r| store.data_mut().refuse(r.status, r.message).into());
    if wide {
        Val::I64(value)
    } else {
        Val::I32(value as i32)
    }
}

fn finish(
    store: &mut Store<HostState>,
    memory: Memory,
    op: StateOp,
    outcome: StateOutcome,
) -> Result<i64, Refusal> {
    let state = &mut store.data_mut().state;
    match (op, outcome) {
        (StateOp::Get { key, buf }, StateOutcome::Value(value)) => {
            let copy = adopt(state, &key, value)?;
            copy_out(store, memory, &copy, buf)
        }
        (StateOp::GetOffset { key, offset, buf }, StateOutcome::Value(value)) => {
            let copy = adopt(state, &key, value)?;
            let range = read_range(&key, copy.len(), offset, buf.len)?;
            copy_out(store, memory, &copy[range], buf)
        }
        (StateOp::SetOffset { key, offset, bytes }, StateOutcome::Value(value)) => {
            adopt(state, &key, value)?;
            write_at(state, &key, offset, &bytes)?;
            Ok(0)
        }
        (StateOp::Pull { key }, StateOutcome::Value(value)) => {
            let entry = state.local.key(&state.user, &key).map_err(full)?;
            state
                .local
                .replace(&mut entry.copy(), value.to_vec())
                .map_err(full)?;
            Ok(0)
        }
        (StateOp::Size { .. }, StateOutcome::Size(size)) => Ok(size as i64),
        (StateOp::ReadAppended { buf, .. }, StateOutcome::Elements(elements)) => {
            let mut encoded = Vec::new();
            for element in &elements {
                encoded.extend_from_slice(&(element.len() as u32).to_le_bytes());
                encoded.extend_from_slice(element);
            }
            copy_out(store, memory, &encoded, buf)
        }
        (
            StateOp::LocalLock { key, mode, .. } | StateOp::GlobalLock { key, mode },
            StateOutcome::Locked(guard),
        ) => {
            state.held.push(HeldLock {
                key,
                mode,
                _guard: guard,
            });
            Ok(0)
        }
        (StateOp::GlobalUnlock { key }, StateOutcome::Done) => {
            state
                .held
                .retain(|held| !(held.key == key && is_global(held.mode)));
            Ok(0)
        }
        (_, StateOutcome::Done) => Ok(0),
        (op, outcome) => Err(Refusal::new(
            HostStatus::Unavailable,
            format!("internal error: {op:?} completed with {outcome:?}"),
        )),
    }
}

/// The local copy after a pull: the pulled value, unless another call made a copy here while
/// this one waited (that copy is newer).
fn adopt(state: &CallState, key: &str, pulled: Bytes) -> Result<Vec<u8>, Refusal> {
    let entry = state.local.key(&state.user, key).map_err(full)?;
    let mut copy = entry.copy();
    if copy.is_none() {
        state
            .local
            .replace(&mut copy, pulled.to_vec())
            .map_err(full)?;
    }
    Ok(copy.clone().unwrap_or_default())
}

/// The refusal for a write the executor's budget for local copies cannot take.
fn full(full: Full) -> Refusal {
    Refusal::new(
        HostStatus::LimitExceeded,
        format!(
            "this executor's local copies of state are at their limit of {} bytes; \
             delete keys no longer needed",
            full.max_bytes
        ),
    )
}

fn copy_out(
    store: &mut Store<HostState>,
    memory: Memory,
    bytes: &[u8],
    buf: GuestBuf,
) -> Result<i64, Refusal> {
    write_guest(memory.data_mut(store), bytes, buf)
}

/// Copies as much of `bytes` as fits into the guest buffer; returns the full length.
fn write_guest(memory: &mut [u8], bytes: &[u8], buf: GuestBuf) -> Result<i64, Refusal> {
    copy_into(memory, bytes, buf.ptr, buf.len)
        .map(|total| total as i64)
        .map_err(|status| Refusal::new(status, "the buffer lies outside the guest's memory"))
}

fn read_range(
    key: &str,
    size: usize,
    offset: u64,
    len: i32,
) -> Result<std::ops::Range<usize>, Refusal> {
    let len = len as u32 as usize;
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    match start.checked_add(len) {
        Some(end) if end <= size => Ok(start..end),
        _ => Err(Refusal::new(
            HostStatus::InvalidArgument,
            format!(
                "state_get_offset: {key:?} has {size} bytes; {len} bytes at offset {offset} run past its end"
            ),
        )),
    }
}

/// Writes `bytes` at `offset` into the local copy, growing it with zeros.
fn write_at(state: &CallState, key: &str, offset: u64, bytes: &[u8]) -> Result<(), Refusal> {
    let end = usize::try_from(offset)
        .ok()
        .and_then(|start| start.checked_add(bytes.len()))
        .filter(|end| *end <= state.max_value_bytes)
        .ok_or_else(|| too_big(state, offset.saturating_add(bytes.len() as u64)))?;
    let entry = state.local.key(&state.user, key).map_err(full)?;
    let mut copy = entry.copy();
    let old = copy.as_ref().map_or(0, Vec::len);
    state.local.resize(old, old.max(end)).map_err(full)?;
    let copy = copy.get_or_insert_with(Vec::new);
    if copy.len() < end {
        copy.resize(end, 0);
    }
    copy[end - bytes.len()..end].copy_from_slice(bytes);
    Ok(())
}

fn too_big(state: &CallState, size: u64) -> Refusal {
    Refusal::new(
        HostStatus::LimitExceeded,
        format!(
            "a state value of {size} bytes is over the limit of {} bytes",
            state.max_value_bytes
        ),
    )
}

/// An import's answer: a value now, or an op to park for.
enum Answer {
    Now(i64),
    Park(StateOp),
}

fn memory_of(caller: &Caller<'_, HostState>, import: &str) -> Result<Memory, Refusal> {
    caller.data().memory.ok_or_else(|| {
        Refusal::new(
            HostStatus::Unavailable,
            format!("{import} called before start-up"),
        )
    })
}

fn key_arg(
    caller: &Caller<'_, HostState>,
    import: &str,
    ptr: i32,
    len: i32,
) -> Result<String, Refusal> {
    let memory = memory_of(caller, import)?;
    let bytes = guest_slice(memory.data(caller), ptr, len).map_err(|status| {
        Refusal::new(
            status,
            format!("{import}: the key lies outside the guest's memory"),
        )
    })?;
    let key = std::str::from_utf8(bytes).map_err(|_| {
        Refusal::new(
            HostStatus::InvalidUtf8,
            format!("{import}: the key is not UTF-8"),
        )
    })?;
    fwasm_proto::names::check_state_key(key).map_err(|e| {
        Refusal::new(
            HostStatus::InvalidArgument,
            format!("{import}: {}", e.message),
        )
    })?;
    Ok(key.to_string())
}

fn bytes_arg(
    caller: &Caller<'_, HostState>,
    import: &str,
    ptr: i32,
    len: i32,
) -> Result<Vec<u8>, Refusal> {
    let memory = memory_of(caller, import)?;
    let bytes = guest_slice(memory.data(caller), ptr, len).map_err(|status| {
        Refusal::new(
            status,
            format!("{import}: the value lies outside the guest's memory"),
        )
    })?;
    let state = &caller.data().state;
    if bytes.len() > state.max_value_bytes {
        return Err(too_big(state, bytes.len() as u64));
    }
    Ok(bytes.to_vec())
}

fn buf_arg(
    caller: &Caller<'_, HostState>,
    import: &str,
    ptr: i32,
    len: i32,
) -> Result<GuestBuf, Refusal> {
    let memory = memory_of(caller, import)?;
    guest_slice(memory.data(caller), ptr, len).map_err(|status| {
        Refusal::new(
            status,
            format!("{import}: the buffer lies outside the guest's memory"),
        )
    })?;
    Ok(GuestBuf { ptr, len })
}

fn offset_arg(import: &str, offset: i64) -> Result<u64, Refusal> {
    u64::try_from(offset).map_err(|_| {
        Refusal::new(
            HostStatus::InvalidArgument,
            format!("{import}: the offset {offset} is negative"),
        )
    })
}

/// Turns an answer into the import's result: parked calls end the slice.
fn answer(
    caller: &mut Caller<'_, HostState>,
    answer: Result<Answer, Refusal>,
) -> Result<i64, wasmi::Error> {
    match answer {
        Ok(Answer::Now(value)) => Ok(value),
        Ok(Answer::Park(op)) => park_or_refuse(caller, Ok(HostOp::State(op))).map(i64::from),
        Err(refusal) => park_or_refuse(caller, Err(refusal)).map(i64::from),
    }
}

/// `state_get` and `state_get_offset`: from the local copy, or parked for a pull.
fn get(
    caller: &mut Caller<'_, HostState>,
    import: &str,
    key: (i32, i32),
    offset: Option<i64>,
    buf: (i32, i32),
) -> Result<Answer, Refusal> {
    let key = key_arg(caller, import, key.0, key.1)?;
    let buf = buf_arg(caller, import, buf.0, buf.1)?;
    let offset = offset.map(|o| offset_arg(import, o)).transpose()?;
    let entry = {
        let state = &caller.data().state;
        state.local.find(&state.user, &key)
    };
    let copy = entry.as_ref().map(|entry| entry.copy());
    let Some(copy) = copy.as_ref().and_then(|copy| copy.as_ref()) else {
        return Ok(Answer::Park(match offset {
            None => StateOp::Get { key, buf },
            Some(offset) => StateOp::GetOffset { key, offset, buf },
        }));
    };
    let range = match offset {
        None => 0..copy.len(),
        Some(offset) => read_range(&key, copy.len(), offset, buf.len)?,
    };
    let memory = memory_of(caller, import)?;
    write_guest(memory.data_mut(&mut *caller), &copy[range], buf).map(Answer::Now)
}

fn lock(caller: &mut Caller<'_, HostState>, key: String, mode: i32) -> Result<Answer, Refusal> {
    let import = abi::IMPORT_STATE_LOCK;
    let state = &caller.data().state;
    if !(lock_mode::LOCAL_READ..=lock_mode::GLOBAL_WRITE).contains(&mode) {
        return Err(Refusal::new(
            HostStatus::InvalidArgument,
            format!("{import}: {mode} is not a lock mode (1 to 4)"),
        ));
    }
    // One lock per key and scope: a second one (even of the other mode) could only wait
    // for the call itself.
    let held = state
        .held
        .iter()
        .find(|held| held.key == key && is_global(held.mode) == is_global(mode));
    if let Some(held) = held {
        return Err(Refusal::new(
            HostStatus::InvalidArgument,
            format!(
                "{import}: this call already holds lock mode {} on {key:?}",
                held.mode
            ),
        ));
    }
    if is_global(mode) {
        return Ok(Answer::Park(StateOp::GlobalLock { key, mode }));
    }
    let lock = state
        .local
        .key(&state.user, &key)
        .map_err(full)?
        .lock
        .clone();
    let guard = match mode {
        lock_mode::LOCAL_READ => lock.clone().try_read_owned().ok().map(LocalGuard::Read),
        _ => lock.clone().try_write_owned().ok().map(LocalGuard::Write),
    };
    match guard {
        // Free: taken at once, without parking.
        Some(guard) => {
            caller.data_mut().state.held.push(HeldLock {
                key,
                mode,
                _guard: Some(guard),
            });
            Ok(Answer::Now(0))
        }
        None => Ok(Answer::Park(StateOp::LocalLock { key, mode, lock })),
    }
}

fn unlock(caller: &mut Caller<'_, HostState>, key: String, mode: i32) -> Result<Answer, Refusal> {
    let state = &mut caller.data_mut().state;
    let Some(index) = state.holds(&key, mode) else {
        return Err(Refusal::new(
            HostStatus::NotFound,
            format!(
                "{}: this call holds no lock mode {mode} on {key:?}",
                abi::IMPORT_STATE_UNLOCK
            ),
        ));
    };
    if is_global(mode) {
        return Ok(Answer::Park(StateOp::GlobalUnlock { key }));
    }
    // Dropping the guard releases the local lock.
    state.held.remove(index);
    Ok(Answer::Now(0))
}

/// Defines one state import: `$body` computes an [`Answer`] from the caller and the arguments.
macro_rules! import {
    ($linker:expr, $name:expr, |$caller:ident $(, $arg:ident: $ty:ty)*| -> $ret:ty $body:block) => {
        $linker
            .func_wrap(
                IMPORT_MODULE,
                $name,
                |mut $caller: Caller<'_, HostState>, $($arg: $ty),*| -> Result<$ret, wasmi::Error> {
                    fn body(
                        $caller: &mut Caller<'_, HostState>,
                        $($arg: $ty),*
                    ) -> Result<Answer, Refusal> {
                        $body
                    }
                    let result = body(&mut $caller, $($arg),*);
                    answer(&mut $caller, result).map(|value| value as $ret)
                },
            )
            .expect("a state import is defined once");
    };
}

pub(crate) fn define_imports(linker: &mut Linker<HostState>) {
    use abi::*;
    import!(linker, IMPORT_STATE_GET, |caller,
                                       k: i32,
                                       kl: i32,
                                       b: i32,
                                       bl: i32|
     -> i64 {
        get(caller, IMPORT_STATE_GET, (k, kl), None, (b, bl))
    });
    import!(linker, IMPORT_STATE_GET_OFFSET, |caller,
                                              k: i32,
                                              kl: i32,
                                              o: i64,
                                              b: i32,
                                              bl: i32|
     -> i64 {
        get(caller, IMPORT_STATE_GET_OFFSET, (k, kl), Some(o), (b, bl))
    });
    import!(linker, IMPORT_STATE_SIZE, |caller,
                                        k: i32,
                                        kl: i32|
     -> i64 {
        let key = key_arg(caller, IMPORT_STATE_SIZE, k, kl)?;
        let state = &caller.data().state;
        let entry = state.local.find(&state.user, &key);
        let size = entry.and_then(|entry| entry.copy().as_ref().map(Vec::len));
        Ok(match size {
            Some(size) => Answer::Now(size as i64),
            None => Answer::Park(StateOp::Size { key }),
        })
    });
    import!(linker, IMPORT_STATE_SET, |caller,
                                       k: i32,
                                       kl: i32,
                                       v: i32,
                                       vl: i32|
     -> i32 {
        let key = key_arg(caller, IMPORT_STATE_SET, k, kl)?;
        let value = bytes_arg(caller, IMPORT_STATE_SET, v, vl)?;
        let state = &caller.data().state;
        let entry = state.local.key(&state.user, &key).map_err(full)?;
        state
            .local
            .replace(&mut entry.copy(), value)
            .map_err(full)?;
        Ok(Answer::Now(0))
    });
    import!(linker, IMPORT_STATE_SET_OFFSET, |caller,
                                              k: i32,
                                              kl: i32,
                                              o: i64,
                                              v: i32,
                                              vl: i32|
     -> i32 {
        let key = key_arg(caller, IMPORT_STATE_SET_OFFSET, k, kl)?;
        let bytes = bytes_arg(caller, IMPORT_STATE_SET_OFFSET, v, vl)?;
        let offset = offset_arg(IMPORT_STATE_SET_OFFSET, o)?;
        let state = &caller.data().state;
        let entry = state.local.find(&state.user, &key);
        let present = entry.is_some_and(|entry| entry.copy().is_some());
        if !present {
            return Ok(Answer::Park(StateOp::SetOffset { key, offset, bytes }));
        }
        write_at(state, &key, offset, &bytes).map(|()| Answer::Now(0))
    });
    import!(linker, IMPORT_STATE_APPEND, |caller,
                                          k: i32,
                                          kl: i32,
                                          v: i32,
                                          vl: i32|
     -> i32 {
        let key = key_arg(caller, IMPORT_STATE_APPEND, k, kl)?;
        let element = bytes_arg(caller, IMPORT_STATE_APPEND, v, vl)?.into();
        Ok(Answer::Park(StateOp::Append { key, element }))
    });
    import!(linker, IMPORT_STATE_READ_APPENDED, |caller,
                                                 k: i32,
                                                 kl: i32,
                                                 b: i32,
                                                 bl: i32|
     -> i64 {
        let key = key_arg(caller, IMPORT_STATE_READ_APPENDED, k, kl)?;
        let buf = buf_arg(caller, IMPORT_STATE_READ_APPENDED, b, bl)?;
        Ok(Answer::Park(StateOp::ReadAppended { key, buf }))
    });
    import!(linker, IMPORT_STATE_CLEAR_APPENDED, |caller,
                                                  k: i32,
                                                  kl: i32|
     -> i32 {
        let key = key_arg(caller, IMPORT_STATE_CLEAR_APPENDED, k, kl)?;
        Ok(Answer::Park(StateOp::ClearAppended { key }))
    });
    import!(linker, IMPORT_STATE_PUSH, |caller,
                                        k: i32,
                                        kl: i32|
     -> i32 {
        let key = key_arg(caller, IMPORT_STATE_PUSH, k, kl)?;
        let state = &caller.data().state;
        let entry = state.local.find(&state.user, &key);
        let copy = entry.and_then(|entry| entry.copy().clone());
        Ok(match copy {
            Some(value) => Answer::Park(StateOp::Push {
                key,
                value: value.into(),
            }),
            // Nothing written or read here: nothing to make global.
            None => Answer::Now(0),
        })
    });
    import!(linker, IMPORT_STATE_PULL, |caller,
                                        k: i32,
                                        kl: i32|
     -> i32 {
        let key = key_arg(caller, IMPORT_STATE_PULL, k, kl)?;
        Ok(Answer::Park(StateOp::Pull { key }))
    });
    import!(linker, IMPORT_STATE_DELETE, |caller,
                                          k: i32,
                                          kl: i32|
     -> i32 {
        let key = key_arg(caller, IMPORT_STATE_DELETE, k, kl)?;
        let state = &caller.data().state;
        state.local.drop_copy(&state.user, &key);
        Ok(Answer::Park(StateOp::Delete { key }))
    });
    import!(linker, IMPORT_STATE_LOCK, |caller,
                                        k: i32,
                                        kl: i32,
                                        mode: i32|
     -> i32 {
        let key = key_arg(caller, IMPORT_STATE_LOCK, k, kl)?;
        lock(caller, key, mode)
    });
    import!(linker, IMPORT_STATE_UNLOCK, |caller,
                                          k: i32,
                                          kl: i32,
                                          mode: i32|
     -> i32 {
        let key = key_arg(caller, IMPORT_STATE_UNLOCK, k, kl)?;
        unlock(caller, key, mode)
    });
}
