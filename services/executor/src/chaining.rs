//! Chaining imports: `chain`, `await` and `call_output`.
//!
//! `chain` and `await` need the scheduler, which is async and may be remote, so they park the
//! call (see [`crate::park`]) instead of blocking a worker.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use fwasm_abi::{HostStatus, IMPORT_AWAIT, IMPORT_CALL_OUTPUT, IMPORT_CHAIN, IMPORT_MODULE};
use wasmi::{Caller, Linker, Val};

use crate::host::{HostState, copy_out, guest_slice};
use crate::limits::Limits;
use crate::park::{HostOp, Refusal, park_or_refuse};

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

/// `chain`'s return value once the scheduler has answered.
pub(crate) fn chained(host: &mut HostState, chained: Result<u64, Refusal>) -> Val {
    match chained {
        Ok(id) => {
            // Counted once started: a refused chain does not count against the fan-out limit.
            host.chaining.chained += 1;
            Val::I64(id as i64)
        }
        Err(refusal) => Val::I64(host.refuse(refusal.status, refusal.message).into()),
    }
}

/// `await`'s return value once the call ended (or the wait was refused).
pub(crate) fn awaited(host: &mut HostState, id: u64, ended: Result<Ended, Refusal>) -> Val {
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
            Val::I32(code)
        }
        Err(r) => Val::I32(host.refuse(r.status, r.message)),
    }
}

/// The chain request a guest made, or why it is refused.
fn chain_op(
    caller: &Caller<'_, HostState>,
    name: (i32, i32),
    input: (i32, i32),
) -> Result<HostOp, Refusal> {
    let host = caller.data();
    let chaining = &host.chaining;
    let memory = host
        .memory
        .ok_or_else(|| Refusal::new(HostStatus::Unavailable, "chain called before start-up"))?;
    let data = memory.data(caller);
    let out_of_bounds = |what: &str| {
        Refusal::new(
            HostStatus::OutOfBounds,
            format!("chain: the {what} lies outside the guest's memory"),
        )
    };
    let name = guest_slice(data, name.0, name.1).map_err(|_| out_of_bounds("function name"))?;
    let name = std::str::from_utf8(name)
        .map_err(|_| Refusal::new(HostStatus::InvalidUtf8, "chain: the name is not UTF-8"))?;
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
    let input = guest_slice(data, input.0, input.1).map_err(|_| out_of_bounds("input"))?;
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

pub(crate) fn define_imports(linker: &mut Linker<HostState>) {
    linker
        .func_wrap(
            IMPORT_MODULE,
            IMPORT_CHAIN,
            |mut caller: Caller<'_, HostState>,
             name_ptr: i32,
             name_len: i32,
             input_ptr: i32,
             input_len: i32|
             -> Result<i64, wasmi::Error> {
                let op = chain_op(&caller, (name_ptr, name_len), (input_ptr, input_len));
                park_or_refuse(&mut caller, op).map(i64::from)
            },
        )
        .expect("chain is defined once");
    linker
        .func_wrap(
            IMPORT_MODULE,
            IMPORT_AWAIT,
            |mut caller: Caller<'_, HostState>,
             id: i64,
             timeout_ms: i32|
             -> Result<i32, wasmi::Error> {
                if id <= 0 {
                    let message = format!("await: {id} is not a call id");
                    return Ok(caller.data_mut().refuse(HostStatus::NotFound, message));
                }
                let id = id as u64;
                if let Some(ended) = caller.data().chaining.awaited.get(&id) {
                    return Ok(ended.code);
                }
                let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
                park_or_refuse(&mut caller, Ok(HostOp::Await { id, timeout }))
            },
        )
        .expect("await is defined once");
    linker
        .func_wrap(
            IMPORT_MODULE,
            IMPORT_CALL_OUTPUT,
            |mut caller: Caller<'_, HostState>, id: i64, ptr: i32, len: i32| -> i64 {
                let ended = caller.data().chaining.awaited.get(&(id as u64)).cloned();
                let Some(ended) = ended else {
                    let message =
                        format!("call_output: this call has not awaited call {id} to its end");
                    return caller
                        .data_mut()
                        .refuse(HostStatus::NotFound, message)
                        .into();
                };
                let Some(bytes) = ended.bytes else {
                    let message = format!(
                        "call_output: the outputs this call awaited are over its limit of {} bytes; \
                         the output of call {id} was not kept",
                        caller.data().chaining.max_awaited_bytes
                    );
                    return caller
                        .data_mut()
                        .refuse(HostStatus::LimitExceeded, message)
                        .into();
                };
                match copy_out(&mut caller, &bytes, ptr, len) {
                    Ok(total) => total as i64,
                    Err(status) => caller
                        .data_mut()
                        .refuse(
                            status,
                            "call_output: the buffer lies outside the guest's memory",
                        )
                        .into(),
                }
            },
        )
        .expect("call_output is defined once");
}
