//! Chaining: a call starts calls of its user's functions, awaits them and reads their outputs,
//! within its depth, fan-out and input limits.
//!
//! Starting and awaiting need the scheduler, which is async and may be remote, so they park
//! the call (see [`super::park`]) instead of blocking a worker.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use fwasm_abi::HostStatus;

use super::HostState;
use super::park::{HostOp, Refusal};
use crate::limits::Limits;

/// The chaining side of one call's host state.
pub(crate) struct Chaining {
    pub(crate) user: String,
    pub(crate) function: String,
    pub(crate) depth: u32,
    max_depth: u32,
    max_chained: u32,
    pub(crate) max_input_bytes: usize,
    /// Calls this call has started: chained, and by publishing.
    pub(crate) chained: u32,
    /// Calls this call awaited to their end, with their outputs while they fit the budget.
    awaited: HashMap<u64, Ended>,
    /// Bytes of outputs kept in `awaited`; at most the call's memory limit, since a guest could
    /// otherwise make the host hold more than the guest itself may.
    awaited_bytes: usize,
    max_awaited_bytes: usize,
}

impl Chaining {
    pub(crate) fn new(call: &fwasm_proto::pb::Call, limits: &Limits) -> Self {
        Self {
            user: call.user.clone(),
            function: call.function.clone(),
            depth: call.depth,
            max_depth: limits.max_chain_depth,
            max_chained: limits.max_chained_calls,
            max_input_bytes: limits.max_chain_input_bytes,
            chained: 0,
            awaited: HashMap::new(),
            awaited_bytes: 0,
            max_awaited_bytes: limits.max_memory_bytes,
        }
    }
}

impl Chaining {
    /// How many more calls this call may start.
    pub(crate) fn room(&self) -> u32 {
        self.max_chained.saturating_sub(self.chained)
    }

    /// Refuses `op` (`chain`, `publish`) when it would start calls past the depth limit, or
    /// past the fan-out limit this call has reached.
    pub(crate) fn check_room(&self, op: &str) -> Result<(), Refusal> {
        let (user, function) = (&self.user, &self.function);
        if self.depth >= self.max_depth {
            return Err(Refusal::new(
                HostStatus::LimitExceeded,
                format!(
                    "{op} refused: {user}/{function} is at the call depth limit of {}",
                    self.max_depth
                ),
            ));
        }
        if self.chained >= self.max_chained {
            return Err(Refusal::new(
                HostStatus::LimitExceeded,
                format!(
                    "{op} refused: {user}/{function} already chained its limit of {} calls",
                    self.max_chained
                ),
            ));
        }
        Ok(())
    }
}

/// How a call ended, as its awaiting caller sees it.
#[derive(Debug, Clone)]
pub(crate) struct Ended {
    /// 0 = success, > 0 = failed with this return code.
    pub(crate) code: i32,
    /// The output, or the failure reason; `None` once over the budget for kept outputs.
    pub(crate) bytes: Option<Bytes>,
}

impl Ended {
    /// How a call's outcome looks to its caller: as the scheduler's table records it.
    pub(crate) fn of(result: &fwasm_proto::pb::CallResult) -> Self {
        match fwasm_proto::outcome::return_code(result) {
            0 => Ended {
                code: 0,
                bytes: Some(result.output.clone()),
            },
            code => Ended {
                code: code.max(1),
                bytes: Some(Bytes::from(result.error.clone())),
            },
        }
    }
}

/// `chain`'s return value once the scheduler has answered: the call id or a status.
pub(crate) fn chained(host: &mut HostState, chained: Result<u64, Refusal>) -> i64 {
    match chained {
        Ok(id) => {
            // Counted once started: a refused chain does not count against the fan-out limit.
            host.chaining.chained += 1;
            id as i64
        }
        Err(refusal) => host.refuse(refusal.status, refusal.message).into(),
    }
}

/// `await`'s return value once the call ended (or the wait was refused).
pub(crate) fn awaited(host: &mut HostState, id: u64, ended: Result<Ended, Refusal>) -> i32 {
    match ended {
        Ok(ended) => {
            let code = ended.code;
            let chaining = &mut host.chaining;
            let size = ended.bytes.as_ref().map_or(0, Bytes::len);
            let kept = if chaining.awaited_bytes + size <= chaining.max_awaited_bytes {
                chaining.awaited_bytes += size;
                ended
            } else {
                Ended { code, bytes: None }
            };
            chaining.awaited.insert(id, kept);
            code
        }
        Err(r) => host.refuse(r.status, r.message),
    }
}

/// The chain request a guest made, or why it is refused. `input` is read from the guest after
/// the name and the room are checked, and its own refusal (out of bounds) comes after theirs.
pub(crate) fn chain_request(
    host: &HostState,
    name: &str,
    input: Result<&[u8], Refusal>,
) -> Result<HostOp, Refusal> {
    let chaining = &host.chaining;
    fwasm_proto::names::check_name("function", name).map_err(|e| {
        let hint = if name.contains('/') {
            " (chaining reaches only the caller's own functions: pass the name without a user)"
        } else {
            ""
        };
        Refusal::new(
            HostStatus::InvalidArgument,
            format!("chain refused: {}{hint}", e.message),
        )
    })?;
    chaining.check_room("chain")?;
    let input = input?;
    if input.len() > chaining.max_input_bytes {
        return Err(Refusal::new(
            HostStatus::LimitExceeded,
            format!(
                "chain refused: an input of {} bytes is over the limit of {} bytes",
                input.len(),
                chaining.max_input_bytes
            ),
        ));
    }
    Ok(HostOp::Chain {
        function: name.to_string(),
        input: Bytes::copy_from_slice(input),
    })
}

/// Waits for call `id` to end, or answers at once if this call awaited it already: the op
/// to park for, or the call's code. `timeout`: `None` = as long as the caller may run.
pub(crate) fn await_request(
    host: &HostState,
    id: i64,
    timeout: Option<Duration>,
) -> Result<Result<i32, HostOp>, Refusal> {
    if id <= 0 {
        return Err(Refusal::new(
            HostStatus::NotFound,
            format!("await: {id} is not a call id"),
        ));
    }
    let id = id as u64;
    Ok(match host.chaining.awaited.get(&id) {
        Some(ended) => Ok(ended.code),
        None => Err(HostOp::Await { id, timeout }),
    })
}

/// The output of call `id`, which this call awaited to its end.
pub(crate) fn call_output(host: &HostState, id: i64) -> Result<Bytes, Refusal> {
    let Some(ended) = host.chaining.awaited.get(&(id as u64)) else {
        return Err(Refusal::new(
            HostStatus::NotFound,
            format!("call_output: this call has not awaited call {id} to its end"),
        ));
    };
    ended.bytes.clone().ok_or_else(|| {
        Refusal::new(
            HostStatus::LimitExceeded,
            format!(
                "call_output: the outputs this call awaited are over its limit of {} bytes; \
                 the output of call {id} was not kept",
                host.chaining.max_awaited_bytes
            ),
        )
    })
}
