//! The host capabilities every guest ABI stands on: the call's input and output, chaining and
//! awaiting, publishing, the state tiers and locks, shared files, logging, limits and parking.
//!
//! Nothing here knows an import name or a calling convention: the adapters in [`crate::abi`]
//! read their guests' arguments and call these, so every ABI gets the same limits, parking (a
//! waiting guest holds no thread), checks and traces. Every capability answers bad input with
//! a [`Refusal`]; nothing a guest passes can make the host panic.

pub(crate) mod chaining;
pub(crate) mod fetch;
pub(crate) mod files;
pub(crate) mod io;
pub(crate) mod local_state;
pub(crate) mod memory;
pub(crate) mod mpi;
pub(crate) mod outbound;
pub(crate) mod park;
pub(crate) mod publishing;
pub(crate) mod sidecar;
pub(crate) mod sockets;
pub(crate) mod state;

use std::any::Any;
use std::sync::Arc;

use fwasm_abi::HostStatus;
use wasmi::Memory;

use crate::limits::{Limits, MemoryLimiter};
use crate::memory_pool::PooledRegion;
use chaining::Chaining;
use files::CallFiles;
use io::{CallIo, Streams};
use local_state::LocalState;
use park::HostOp;
pub(crate) use park::Refusal;
use sidecar::CallSidecar;
use state::CallState;

/// An ABI's last step of a parked import: the op's value in, the import's value out.
pub(crate) type AfterOp = Box<dyn FnOnce(&mut wasmi::Store<HostState>, Memory, i64) -> i64 + Send>;

/// What the host keeps for one call while its instance lives.
pub(crate) struct HostState {
    pub(crate) limiter: MemoryLimiter,
    /// Set once the instance exists; imports read guest memory through it.
    pub(crate) memory: Option<Memory>,
    /// Why the guest says it is failing (e.g. its panic message), reported with its trap.
    pub(crate) failure_reason: Option<String>,
    /// The message for the last refusal an import returned (read by `last_error`).
    pub(crate) last_error: Option<String>,
    /// Set while the ABI's entry runs: the only time imports may park the call.
    pub(crate) can_park: bool,
    /// The export that entry is, for messages.
    pub(crate) entry: &'static str,
    /// The op an import just parked the call for.
    pub(crate) pending: Option<HostOp>,
    /// What the parking import's ABI does with the op's value before the import returns it
    /// (e.g. Faasm's raw interface hands out 32-bit call ids, and copies an awaited output).
    pub(crate) after_op: Option<AfterOp>,
    /// Whether a parked import whose op is refused fails the call (Faasm raises an error where
    /// fwasm's own ABI returns a status), rather than answering with the status.
    pub(crate) refusals_fail: bool,
    /// The parked op's negative result is the guest's answer (a POSIX call's -1), not a
    /// refusal to fail the call with.
    pub(crate) negative_is_answer: bool,
    pub(crate) io: CallIo,
    pub(crate) chaining: Chaining,
    pub(crate) state: CallState,
    pub(crate) files: CallFiles,
    /// What the call's ABI keeps between the callbacks it makes (proxy-wasm's buffers).
    pub(crate) abi_state: Option<Box<dyn Any + Send>>,
    pub(crate) sidecar: CallSidecar,
    pub(crate) outbound: outbound::CallOutbound,
    pub(crate) sockets: sockets::CallSockets,
    pub(crate) mpi: mpi::CallMpi,
    /// Set when a parked op's failure ends the call (an MPI world that broke): the call fails
    /// with it as it resumes, even if its time ran out meanwhile.
    pub(crate) op_failure: Option<mpi::MpiFailure>,
    /// The pooled region the instance's memory lives in, if it has one: dropped with the
    /// store, after the memory (wasmi drops a store's memories before its data).
    pub(crate) region: Option<PooledRegion>,
}

impl Drop for HostState {
    fn drop(&mut self) {
        // What the instance's memory reached is what its region holds when given back.
        // (A store without the limiter reports nothing: then the whole region is zeroed.)
        if let Some(region) = &mut self.region
            && self.limiter.peak_bytes > 0
        {
            region.touched(self.limiter.peak_bytes);
        }
    }
}

impl HostState {
    pub(crate) fn new(
        limits: &Limits,
        io: CallIo,
        chaining: Chaining,
        state: CallState,
        files: CallFiles,
    ) -> Self {
        Self {
            limiter: MemoryLimiter::new(limits.max_memory_bytes),
            memory: None,
            failure_reason: None,
            last_error: None,
            can_park: false,
            entry: "the function's entry",
            pending: None,
            after_op: None,
            refusals_fail: false,
            negative_is_answer: false,
            io,
            chaining,
            state,
            files,
            abi_state: None,
            sidecar: CallSidecar::new(false),
            outbound: outbound::CallOutbound::new(&fwasm_proto::pb::Call::default(), limits),
            sockets: sockets::CallSockets::default(),
            mpi: mpi::CallMpi::new(&fwasm_proto::pb::Call::default()),
            op_failure: None,
            region: None,
        }
    }

    /// The host state of an instance that runs outside any call: a module's start-up, run at
    /// upload to read what it declares.
    pub(crate) fn standalone(limits: &Limits, streams: Streams) -> Self {
        Self::standalone_for(&fwasm_proto::pb::Call::default(), limits, streams)
    }

    /// [`HostState::standalone`], with `call`'s settings (its environment).
    pub(crate) fn standalone_for(
        call: &fwasm_proto::pb::Call,
        limits: &Limits,
        streams: Streams,
    ) -> Self {
        Self::new(
            limits,
            CallIo::new(call, streams, limits),
            Chaining::new(call, limits),
            CallState::new("", Arc::new(LocalState::new(0)), limits),
            CallFiles::new(limits),
        )
    }

    /// Records why an import failed and returns its status code.
    pub(crate) fn refuse(&mut self, status: HostStatus, message: impl Into<String>) -> i32 {
        self.last_error = Some(message.into());
        status.code()
    }
}
