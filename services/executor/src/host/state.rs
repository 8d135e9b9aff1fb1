//! State, with Faasm's two tiers: writes land in this executor's local copy (shared by its
//! calls), a push makes a copy global, a pull refreshes it, and the first read of a key here
//! pulls it. Append lists and global locks live in the state service. Operations that need the
//! state service park the call (see [`super::park`]).

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use fwasm_abi::{self as abi, HostStatus, lock_mode};
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};
use wasmi::{Caller, Memory, Store};

use super::HostState;
use super::local_state::{Full, LocalState};
use super::memory::{GuestBuf, write_guest};
use super::park::{HostOp, Refusal, park_or_refuse};
use crate::limits::Limits;

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
        /// Faasm's layout: the first this many elements back to back. Else each element
        /// after its length (u32, little-endian).
        first: Option<usize>,
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
) -> i64 {
    let value = match outcome {
        Ok(outcome) => finish(store, memory, op, outcome),
        Err(refusal) => Err(refusal),
    };
    value.unwrap_or_else(|r| store.data_mut().refuse(r.status, r.message).into())
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
        (StateOp::ReadAppended { buf, first, .. }, StateOutcome::Elements(elements)) => {
            let mut encoded = Vec::new();
            for element in elements.iter().take(first.unwrap_or(usize::MAX)) {
                if first.is_none() {
                    encoded.extend_from_slice(&(element.len() as u32).to_le_bytes());
                }
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

/// An operation's answer: a value now, or an op to park for.
pub(crate) enum Answer {
    Now(i64),
    Park(StateOp),
}

/// Turns an answer into the import's result: parked calls end the slice.
pub(crate) fn answer(
    caller: &mut Caller<'_, HostState>,
    answer: Result<Answer, Refusal>,
) -> Result<i64, wasmi::Error> {
    match answer {
        Ok(Answer::Now(value)) => Ok(value),
        Ok(Answer::Park(op)) => park_or_refuse(caller, Ok(HostOp::State(op))).map(i64::from),
        Err(refusal) => park_or_refuse(caller, Err(refusal)).map(i64::from),
    }
}

/// `key`, if it is a valid state key.
pub(crate) fn key(import: &str, key: &str) -> Result<String, Refusal> {
    fwasm_proto::names::check_state_key(key).map_err(|e| {
        Refusal::new(
            HostStatus::InvalidArgument,
            format!("{import}: {}", e.message),
        )
    })?;
    Ok(key.to_string())
}

/// `bytes` as a value to write, if within the value limit.
pub(crate) fn value(host: &HostState, bytes: &[u8]) -> Result<Vec<u8>, Refusal> {
    let state = &host.state;
    if bytes.len() > state.max_value_bytes {
        return Err(too_big(state, bytes.len() as u64));
    }
    Ok(bytes.to_vec())
}

pub(crate) fn offset(import: &str, offset: i64) -> Result<u64, Refusal> {
    u64::try_from(offset).map_err(|_| {
        Refusal::new(
            HostStatus::InvalidArgument,
            format!("{import}: the offset {offset} is negative"),
        )
    })
}

/// Reads `key` (from `offset`, if given) into `buf`: from the local copy, or parked for a pull.
pub(crate) fn get(
    caller: &mut Caller<'_, HostState>,
    key: String,
    offset: Option<u64>,
    buf: GuestBuf,
) -> Result<Answer, Refusal> {
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
    let memory = caller
        .data()
        .memory
        .ok_or_else(|| Refusal::new(HostStatus::Unavailable, "state read before start-up"))?;
    write_guest(memory.data_mut(&mut *caller), &copy[range], buf).map(Answer::Now)
}

/// The call's local copy of `key`'s value, if it has one.
pub(crate) fn local_copy(host: &HostState, key: &str) -> Option<Vec<u8>> {
    let state = &host.state;
    let entry = state.local.find(&state.user, key)?;
    entry.copy().clone()
}

/// The size of `key`'s value.
pub(crate) fn size(host: &HostState, key: String) -> Answer {
    let state = &host.state;
    let entry = state.local.find(&state.user, &key);
    let size = entry.and_then(|entry| entry.copy().as_ref().map(Vec::len));
    match size {
        Some(size) => Answer::Now(size as i64),
        None => Answer::Park(StateOp::Size { key }),
    }
}

/// Replaces the local copy of `key`.
pub(crate) fn set(host: &HostState, key: String, value: Vec<u8>) -> Result<Answer, Refusal> {
    let state = &host.state;
    let entry = state.local.key(&state.user, &key).map_err(full)?;
    state
        .local
        .replace(&mut entry.copy(), value)
        .map_err(full)?;
    Ok(Answer::Now(0))
}

/// Writes `bytes` at `offset` into the local copy of `key` (pulling it first if needed).
pub(crate) fn set_offset(
    host: &HostState,
    key: String,
    offset: u64,
    bytes: Vec<u8>,
) -> Result<Answer, Refusal> {
    let state = &host.state;
    let entry = state.local.find(&state.user, &key);
    let present = entry.is_some_and(|entry| entry.copy().is_some());
    if !present {
        return Ok(Answer::Park(StateOp::SetOffset { key, offset, bytes }));
    }
    write_at(state, &key, offset, &bytes).map(|()| Answer::Now(0))
}

/// Makes the local copy of `key` global (nothing to do if the call has none).
pub(crate) fn push(host: &HostState, key: String) -> Answer {
    let state = &host.state;
    let entry = state.local.find(&state.user, &key);
    let copy = entry.and_then(|entry| entry.copy().clone());
    match copy {
        Some(value) => Answer::Park(StateOp::Push {
            key,
            value: value.into(),
        }),
        // Nothing written or read here: nothing to make global.
        None => Answer::Now(0),
    }
}

/// Deletes `key` here and globally.
pub(crate) fn delete(host: &HostState, key: String) -> Answer {
    let state = &host.state;
    state.local.drop_copy(&state.user, &key);
    Answer::Park(StateOp::Delete { key })
}

/// Takes a lock on `key` in `mode` (local read or write at once if free; global ones parked).
pub(crate) fn lock(host: &mut HostState, key: String, mode: i32) -> Result<Answer, Refusal> {
    let import = abi::IMPORT_STATE_LOCK;
    let state = &host.state;
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
            host.state.held.push(HeldLock {
                key,
                mode,
                _guard: Some(guard),
            });
            Ok(Answer::Now(0))
        }
        None => Ok(Answer::Park(StateOp::LocalLock { key, mode, lock })),
    }
}

/// Releases the call's lock on `key` in `mode`.
pub(crate) fn unlock(host: &mut HostState, key: String, mode: i32) -> Result<Answer, Refusal> {
    let state = &mut host.state;
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
