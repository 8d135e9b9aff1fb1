//! Parking: how an import that needs async work (the scheduler, the state service) suspends
//! its call instead of blocking a worker thread.
//!
//! The import leaves a [`HostOp`] in the call's host state and returns the [`Suspend`] host
//! error, which ends the slice with a resumable host trap. The worker hands the op to the
//! async runtime; when it completes, [`complete`] applies the [`OpResult`] to the call (its host
//! state and, for reads, its memory) and yields the import's return value, and the call
//! resumes on whichever worker is free.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use fwasm_abi::HostStatus;
use wasmi::{Caller, Memory, Store};

use super::HostState;
use super::chaining::{self, Ended};
use super::fetch::FetchOp;
use super::files::FileOp;
use super::mpi::{self, MpiDone, MpiFailure, MpiOp};
use super::publishing;
use super::state::{self, StateOp, StateOutcome};

/// Work a parked call waits for.
#[derive(Debug)]
pub(crate) enum HostOp {
    Chain {
        function: String,
        input: Bytes,
    },
    /// `timeout`: `None` = as long as the caller may run; zero = just look.
    Await {
        id: u64,
        timeout: Option<Duration>,
    },
    State(StateOp),
    /// A shared file the call opens.
    File(FileOp),
    /// Bytes an ABI's import hands to the guest once fetched.
    Fetch(FetchOp),
    /// A blocking MPI call: a receive, a collective, joining or ending a world.
    Mpi(MpiOp),
    /// An event for the subscribers of the caller's user's topic.
    Publish {
        topic: String,
        data: Bytes,
        /// How many more calls the caller may start.
        room: u32,
    },
}

/// What a [`HostOp`] came back with.
#[derive(Debug)]
pub(crate) enum OpResult {
    Chained(Result<u64, Refusal>),
    Awaited {
        id: u64,
        ended: Result<Ended, Refusal>,
    },
    State(StateOp, Result<StateOutcome, Refusal>),
    File(FileOp, Result<Option<Bytes>, String>),
    Fetched(FetchOp, Result<Bytes, Refusal>),
    Mpi(Result<MpiDone, MpiFailure>),
    /// How many subscribed functions the event started, or why it was refused and how many
    /// it had started by then.
    Published(Result<u32, (u32, Refusal)>),
}

/// Why the host refused an op: a status for the guest and a message for `last_error`.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) status: HostStatus,
    pub(crate) message: String,
    /// Bytes an outbound request received before it failed: they count against the call's
    /// network budget all the same.
    pub(crate) received: usize,
}

impl Refusal {
    pub(crate) fn new(status: HostStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            received: 0,
        }
    }

    pub(crate) fn after_receiving(mut self, bytes: usize) -> Self {
        self.received = bytes;
        self
    }
}

/// The host error an import returns to park its call. Never reaches a user.
#[derive(Debug)]
pub(crate) struct Suspend;

impl fmt::Display for Suspend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("call parked until a host operation completes")
    }
}

impl wasmi::errors::HostError for Suspend {}

/// Parks the calling import's call until `op` completes: returns the error the import must
/// return. Only the ABI's entry runs as a resumable call, so elsewhere (the start function,
/// an allocator export) the op is refused instead.
pub(crate) fn park(
    caller: &mut Caller<'_, HostState>,
    op: HostOp,
) -> Result<wasmi::Error, Refusal> {
    if !caller.data().can_park {
        return Err(Refusal::new(
            HostStatus::Unavailable,
            format!(
                "this import can only be used while {} runs",
                caller.data().entry
            ),
        ));
    }
    caller.data_mut().pending = Some(op);
    Ok(wasmi::Error::host(Suspend))
}

/// Parks the call for `op`, or answers the import with the refusal (as its status).
pub(crate) fn park_or_refuse(
    caller: &mut Caller<'_, HostState>,
    op: Result<HostOp, Refusal>,
) -> Result<i32, wasmi::Error> {
    match op.and_then(|op| park(caller, op)) {
        Ok(suspend) => Err(suspend),
        Err(refusal) => Ok(caller.data_mut().refuse(refusal.status, refusal.message)),
    }
}

/// Applies an op's result to the parked call and returns the import's return value (which
/// the call narrows to the import's result type).
pub(crate) fn complete(store: &mut Store<HostState>, memory: Memory, result: OpResult) -> i64 {
    let value = op_value(store, memory, result);
    match store.data_mut().after_op.take() {
        Some(after) => after(store, memory, value),
        None => value,
    }
}

fn op_value(store: &mut Store<HostState>, memory: Memory, result: OpResult) -> i64 {
    match result {
        OpResult::Chained(chained) => chaining::chained(store.data_mut(), chained),
        OpResult::Awaited { id, ended } => chaining::awaited(store.data_mut(), id, ended).into(),
        OpResult::State(op, outcome) => state::complete(store, memory, op, outcome),
        OpResult::File(op, fetched) => (op.then)(store, memory, fetched),
        OpResult::Fetched(op, fetched) => (op.then)(store, memory, fetched),
        OpResult::Published(started) => publishing::published(store.data_mut(), started).into(),
        OpResult::Mpi(done) => mpi::complete(store, memory, done),
    }
}
