//! One call on its way through a worker: instantiate, hand over the request, run `fwasm_handle`
//! in fuel slices, read the response. Between slices the whole call (store and suspended
//! execution) is a value that can wait in the queue and resume on any worker thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fwasm_abi as abi;
use fwasm_proto::pb::{Call, CallResult, CallStatus, FailureKind, Header};
use tokio::sync::oneshot;
use wasmi::{
    Linker, Memory, Module, Store, TrapCode, TypedResumableCall, TypedResumableCallHostTrap,
    TypedResumableCallOutOfFuel, Val,
};

use crate::chaining::Chaining;
use crate::host::{HostState, guest_slice};
use crate::limits::Limits;
use crate::local_state::LocalState;
use crate::park::{HostOp, OpResult, Suspend, complete};
use crate::state::CallState;
use crate::wasi::{ProcExit, WasiState};

/// How a call ended, and the global state locks it still held (which the executor releases).
pub(crate) struct Finished {
    pub(crate) result: CallResult,
    pub(crate) global_locks: Vec<String>,
}

/// A call waiting for (more) worker time.
pub(crate) struct CallTask {
    call: Call,
    module: Module,
    linker: Arc<Linker<HostState>>,
    limits: Arc<Limits>,
    cold_start: bool,
    local_state: Arc<LocalState>,
    span: tracing::Span,
    reply: oneshot::Sender<Finished>,
    running: Option<Box<Running>>,
    /// Global locks still held when the call ended.
    global_locks: Vec<String>,
    /// What the call wrote to stdout and stderr.
    stdout: Bytes,
}

/// A call suspended between fuel slices or parked in a host call.
struct Running {
    store: Store<HostState>,
    memory: Memory,
    /// Taken while the call runs or its host call completes; always set between slices.
    paused: Option<Paused>,
    fuel_left: u64,
    started: Instant,
}

enum Paused {
    OutOfFuel(TypedResumableCallOutOfFuel<i64>),
    /// Parked in an import until its op completes.
    InHostCall(TypedResumableCallHostTrap<i64>),
    /// The op completed: resume with the import's return value.
    HostCallDone(TypedResumableCallHostTrap<i64>, Val),
}

/// What became of a task after a slice.
pub(crate) enum Slice {
    /// Preempted: queue it again.
    Again(CallTask),
    /// Parked until `HostOp` completes; then [`CallTask::complete_op`] and queue it again.
    Parked(CallTask, HostOp),
    Done,
}

/// How a call failed: the kind and the sentence its caller reads.
struct Failure {
    kind: FailureKind,
    message: String,
    /// The code of a call that exited with one.
    return_code: i32,
}

impl Failure {
    fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            return_code: 0,
        }
    }
}

enum Step {
    /// Boxed: a store is large, and a paused call moves through the queue.
    Paused(Box<Running>),
    Parked(Box<Running>, HostOp),
    Done(Result<CallResult, Failure>, Instant),
}

impl CallTask {
    pub(crate) fn new(
        call: Call,
        module: Module,
        linker: Arc<Linker<HostState>>,
        limits: Arc<Limits>,
        cold_start: bool,
        local_state: Arc<LocalState>,
        reply: oneshot::Sender<Finished>,
    ) -> Self {
        let span = tracing::Span::current();
        Self {
            call,
            module,
            linker,
            limits,
            cold_start,
            local_state,
            span,
            reply,
            running: None,
            global_locks: Vec::new(),
            stdout: Bytes::new(),
        }
    }

    /// Runs one slice.
    pub(crate) fn run_slice(mut self) -> Slice {
        let span = self.span.clone();
        let _entered = span.enter();
        let step = match self.running.take() {
            None => self.start(),
            Some(running) => self.resume(running),
        };
        match step {
            Step::Paused(running) => {
                self.running = Some(running);
                Slice::Again(self)
            }
            Step::Parked(running, op) => {
                self.running = Some(running);
                Slice::Parked(self, op)
            }
            Step::Done(outcome, started) => {
                self.finish(outcome, started);
                Slice::Done
            }
        }
    }

    pub(crate) fn call(&self) -> &Call {
        &self.call
    }

    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Wall-clock time the call has left before its timeout.
    pub(crate) fn time_left(&self) -> Duration {
        let started = self.running.as_ref().map(|r| r.started);
        let elapsed = started.map_or(Duration::ZERO, |s| s.elapsed());
        self.limits.timeout.saturating_sub(elapsed)
    }

    /// Hands a parked call the result of its op, so the next slice resumes it.
    pub(crate) fn complete_op(&mut self, result: OpResult) {
        let Some(running) = self.running.as_mut() else {
            return;
        };
        running.paused = match running.paused.take() {
            Some(Paused::InHostCall(trap)) => Some(Paused::HostCallDone(
                trap,
                complete(&mut running.store, running.memory, result),
            )),
            other => other,
        };
    }

    fn name(&self) -> String {
        format!("{}/{}", self.call.user, self.call.function)
    }

    fn start(&mut self) -> Step {
        let started = Instant::now();
        match self.prepare() {
            Ok((mut store, memory, handle, ptr, len)) => {
                let mut fuel_left = store.get_fuel().unwrap_or(0);
                let give = self.give_fuel(&mut store, fuel_left, 0);
                store.data_mut().can_park = true;
                let result = handle.call_resumable(&mut store, (ptr, len));
                fuel_left -= give - store.get_fuel().unwrap_or(0);
                self.after_slice(result, store, memory, fuel_left, started)
            }
            Err(failure) => Step::Done(Err(failure), started),
        }
    }

    fn resume(&mut self, running: Box<Running>) -> Step {
        if running.started.elapsed() >= self.limits.timeout {
            let mut running = running;
            self.keep_leftovers(&mut running.store);
            return Step::Done(Err(self.timed_out()), running.started);
        }
        let Running {
            mut store,
            memory,
            paused,
            fuel_left,
            started,
        } = *running;
        let required = match &paused {
            Some(Paused::OutOfFuel(paused)) => paused.required_fuel(),
            _ => 0,
        };
        let give = self.give_fuel(&mut store, fuel_left, required);
        let result = match paused {
            Some(Paused::OutOfFuel(paused)) => paused.resume(&mut store),
            Some(Paused::HostCallDone(paused, value)) => paused.resume(&mut store, &[value]),
            Some(Paused::InHostCall(_)) | None => {
                self.keep_leftovers(&mut store);
                let failure = Failure::new(
                    FailureKind::Trap,
                    format!("{} was resumed before its host call completed", self.name()),
                );
                return Step::Done(Err(failure), started);
            }
        };
        let fuel_left = fuel_left - (give - store.get_fuel().unwrap_or(0));
        self.after_slice(result, store, memory, fuel_left, started)
    }

    /// Sets the store's fuel to the next slice (at least what the paused instruction needs)
    /// and returns how much that is.
    fn give_fuel(&self, store: &mut Store<HostState>, fuel_left: u64, required: u64) -> u64 {
        let give = self.limits.fuel_slice.max(required).min(fuel_left);
        store
            .set_fuel(give)
            .expect("fuel metering is enabled on every fwasm engine");
        give
    }

    /// A fresh instance with the request envelope written into its memory.
    #[allow(clippy::type_complexity)]
    fn prepare(
        &self,
    ) -> Result<
        (
            Store<HostState>,
            Memory,
            wasmi::TypedFunc<(i32, i32), i64>,
            i32,
            i32,
        ),
        Failure,
    > {
        let chaining = Chaining::new(&self.call, &self.limits);
        let state = CallState::new(&self.call.user, self.local_state.clone(), &self.limits);
        let wasi = WasiState::new(&self.call.function, &self.limits);
        let host = HostState::new(&self.limits, chaining, state, wasi);
        let mut store = Store::new(self.module.engine(), host);
        store.limiter(|host| &mut host.limiter);
        // Start functions and the allocator are not preempted: they draw on the whole budget.
        store
            .set_fuel(self.limits.max_fuel)
            .expect("fuel metering is enabled");
        let instance = self
            .linker
            .instantiate_and_start(&mut store, &self.module)
            .map_err(|e| self.trap_failure(&store, e))?;
        let memory = instance
            .get_memory(&store, abi::EXPORT_MEMORY)
            .ok_or_else(|| Failure::new(FailureKind::AbiViolation, "module exports no memory"))?;
        store.data_mut().memory = Some(memory);
        // A WASI reactor (C, C++) initialises its runtime here, once per instance.
        // (Looked up as a plain export: a typed lookup's miss builds an error on every call.)
        if let Some(initialize) = instance.get_func(&store, "_initialize") {
            let initialize = initialize.typed::<(), ()>(&store).map_err(|e| {
                Failure::new(FailureKind::AbiViolation, format!("_initialize: {e}"))
            })?;
            initialize
                .call(&mut store, ())
                .map_err(|e| self.trap_failure(&store, e))?;
        }
        let export_error = |e: wasmi::Error| Failure::new(FailureKind::AbiViolation, e.to_string());
        let alloc = instance
            .get_typed_func::<i32, i32>(&store, abi::EXPORT_ALLOC)
            .map_err(export_error)?;
        let handle = instance
            .get_typed_func::<(i32, i32), i64>(&store, abi::EXPORT_HANDLE)
            .map_err(export_error)?;

        let headers = self
            .call
            .headers
            .iter()
            .map(|h| abi::Header {
                name: &h.name,
                value: &h.value,
            })
            .collect();
        let envelope = abi::Request {
            call_id: self.call.id,
            user: &self.call.user,
            function: &self.call.function,
            method: &self.call.method,
            path: &self.call.path,
            query: &self.call.query,
            headers,
            body: &self.call.input,
        };
        let len = i32::try_from(envelope.encoded_len()).map_err(|_| {
            Failure::new(FailureKind::AbiViolation, "request envelope exceeds 2 GiB")
        })?;
        let ptr = alloc
            .call(&mut store, len)
            .map_err(|e| self.trap_failure(&store, e))?;
        let memory_size = memory.data(&store).len();
        let Ok(target) = guest_slice(memory.data(&store), ptr, len).map(|s| s.len()) else {
            return Err(Failure::new(
                FailureKind::AbiViolation,
                format!(
                    "{} broke the ABI: fwasm_alloc({len}) returned {}, outside its {memory_size}-byte memory",
                    self.name(),
                    ptr as u32
                ),
            ));
        };
        let start = ptr as u32 as usize;
        envelope.encode_into(&mut memory.data_mut(&mut store)[start..start + target]);
        Ok((store, memory, handle, ptr, len))
    }

    fn after_slice(
        &mut self,
        result: Result<TypedResumableCall<i64>, wasmi::Error>,
        store: Store<HostState>,
        memory: Memory,
        fuel_left: u64,
        started: Instant,
    ) -> Step {
        let outcome = match result {
            Ok(TypedResumableCall::Finished(packed)) => self.read_response(&store, memory, packed),
            Ok(TypedResumableCall::OutOfFuel(paused)) => {
                // wasmi takes no fuel from an instruction that needs more than is left.
                if fuel_left == 0 || paused.required_fuel() > fuel_left {
                    Err(self.out_of_fuel())
                } else if started.elapsed() >= self.limits.timeout {
                    Err(self.timed_out())
                } else {
                    return Step::Paused(Box::new(Running {
                        store,
                        memory,
                        paused: Some(Paused::OutOfFuel(paused)),
                        fuel_left,
                        started,
                    }));
                }
            }
            Ok(TypedResumableCall::HostTrap(trap))
                if trap.host_error().downcast_ref::<Suspend>().is_some() =>
            {
                let mut store = store;
                let Some(op) = store.data_mut().pending.take() else {
                    self.keep_leftovers(&mut store);
                    let failure = Failure::new(
                        FailureKind::Trap,
                        format!("{} parked without a host operation", self.name()),
                    );
                    return Step::Done(Err(failure), started);
                };
                return Step::Parked(
                    Box::new(Running {
                        store,
                        memory,
                        paused: Some(Paused::InHostCall(trap)),
                        fuel_left,
                        started,
                    }),
                    op,
                );
            }
            Ok(TypedResumableCall::HostTrap(trap)) => {
                match trap.host_error().downcast_ref::<ProcExit>() {
                    Some(exit) => self.exited(&store, exit.0),
                    None => Err(Failure::new(
                        FailureKind::Trap,
                        format!(
                            "{} failed in a host call: {}",
                            self.name(),
                            trap.host_error()
                        ),
                    )),
                }
            }
            Err(e) => Err(self.trap_failure(&store, e)),
        };
        let mut store = store;
        self.keep_leftovers(&mut store);
        Step::Done(outcome, started)
    }

    /// What outlives the instance: the global locks to release and the captured output.
    fn keep_leftovers(&mut self, store: &mut Store<HostState>) {
        self.global_locks = store.data().state.global_locks();
        self.stdout = store.data_mut().wasi.take_output();
    }

    /// A call that ended with `proc_exit`: 0 is an empty success, anything else a failure
    /// with that code (a Faasm `main`'s return value).
    fn exited(&self, store: &Store<HostState>, code: i32) -> Result<CallResult, Failure> {
        if code == 0 {
            return Ok(CallResult {
                http_status: 200,
                ..CallResult::default()
            });
        }
        let message = match &store.data().failure_reason {
            Some(reason) => format!("{} failed with code {code}: {reason}", self.name()),
            None => format!("{} exited with code {code}", self.name()),
        };
        Err(Failure {
            kind: FailureKind::Exit,
            message,
            return_code: code,
        })
    }

    fn read_response(
        &self,
        store: &Store<HostState>,
        memory: Memory,
        packed: i64,
    ) -> Result<CallResult, Failure> {
        let (ptr, len) = abi::unpack_ptr_len(packed);
        let data = memory.data(store);
        let bytes = guest_slice(data, ptr as i32, len as i32).map_err(|_| {
            Failure::new(
                FailureKind::AbiViolation,
                format!(
                    "{} returned a response at {ptr} of {len} bytes, outside its {}-byte memory",
                    self.name(),
                    data.len()
                ),
            )
        })?;
        let response = abi::Response::decode(bytes).map_err(|e| {
            Failure::new(
                FailureKind::AbiViolation,
                format!("{} returned a malformed response: {e}", self.name()),
            )
        })?;
        if response.body.len() > self.limits.max_output_bytes {
            return Err(Failure::new(
                FailureKind::OutputLimit,
                format!(
                    "{} returned {} bytes of output, over the limit of {} bytes",
                    self.name(),
                    response.body.len(),
                    self.limits.max_output_bytes
                ),
            ));
        }
        Ok(CallResult {
            http_status: u32::from(response.status),
            headers: response
                .headers
                .iter()
                .map(|h| Header {
                    name: h.name.to_string(),
                    value: h.value.to_string(),
                })
                .collect(),
            output: Bytes::copy_from_slice(response.body),
            ..CallResult::default()
        })
    }

    fn out_of_fuel(&self) -> Failure {
        Failure::new(
            FailureKind::CpuLimit,
            format!(
                "{} used up its CPU budget of {} fuel",
                self.name(),
                self.limits.max_fuel
            ),
        )
    }

    fn timed_out(&self) -> Failure {
        Failure::new(
            FailureKind::Timeout,
            format!("{} timed out after {:?}", self.name(), self.limits.timeout),
        )
    }

    fn trap_failure(&self, store: &Store<HostState>, err: wasmi::Error) -> Failure {
        let host = store.data();
        if err.as_trap_code() == Some(TrapCode::OutOfFuel) {
            self.out_of_fuel()
        } else if let Some(reason) = &host.failure_reason {
            Failure::new(
                FailureKind::Trap,
                format!("{} failed: {}", self.name(), reason.replace('\n', " ")),
            )
        } else if host.limiter.refused_growth {
            Failure::new(
                FailureKind::MemoryLimit,
                format!(
                    "{} ran out of memory: its limit is {} MiB ({err})",
                    self.name(),
                    self.limits.max_memory_bytes >> 20
                ),
            )
        } else {
            Failure::new(FailureKind::Trap, format!("{} trapped: {err}", self.name()))
        }
    }

    fn finish(self, outcome: Result<CallResult, Failure>, started: Instant) {
        let exec_micros = started.elapsed().as_micros() as u64;
        let result = match outcome {
            Ok(result) => CallResult {
                status: CallStatus::Success as i32,
                ..result
            },
            Err(failure) => {
                tracing::info!(error = %failure.message, "call failed");
                CallResult {
                    status: CallStatus::Failed as i32,
                    failure: failure.kind as i32,
                    error: failure.message,
                    return_code: failure.return_code,
                    ..CallResult::default()
                }
            }
        };
        // The caller may have gone away; then nobody needs the result.
        let _ = self.reply.send(Finished {
            result: CallResult {
                id: self.call.id,
                exec_micros,
                cold_start: self.cold_start,
                stdout: self.stdout,
                ..result
            },
            global_locks: self.global_locks,
        });
    }
}
