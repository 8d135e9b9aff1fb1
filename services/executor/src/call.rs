//! One call on its way through a worker: instantiate, let the module's ABI hand over the
//! request and name its entry, run the entry in fuel slices, let the ABI read the reply.
//! Between slices the whole call (store and suspended execution) is a value that can wait in
//! the queue and resume on any worker thread. Nothing here depends on which ABI the guest
//! speaks: limits, parking, failures and timing are the same for all.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fwasm_proto::pb::{Call, CallResult, CallStatus, FailureKind};
use tokio::sync::oneshot;
use wasmi::{
    Instance, Linker, Memory, MemoryType, Module, ResumableCall, ResumableCallHostTrap,
    ResumableCallOutOfFuel, Store, TrapCode, Val, ValType,
};

use crate::abi::{Adapter, Ended, Entry, Next, Vals};
use crate::cancels::Cancellable;
use crate::host::HostState;
use crate::host::chaining::Chaining;
use crate::host::files::{CallFiles, MountedFiles};
use crate::host::io::{CallIo, ProcExit};
use crate::host::local_state::LocalState;
use crate::host::mpi::{CallMpi, MpiFailure};
use crate::host::park::{HostOp, OpResult, Suspend, complete};
use crate::host::sidecar::CallSidecar;
use crate::host::state::CallState;
use crate::limits::Limits;
use crate::memory_import::{MEMORY_MODULE, MEMORY_NAME};
use crate::memory_pool::MemoryPool;
use crate::snapshot::{InitFailure, InitPlan, RunError, Snapshot, StepFailure};

/// A guest ABI ready to run calls: its adapter and the linker with its imports (built once per
/// engine and shared by all calls), and whether the executor has a sidecar for its guests.
#[derive(Clone)]
pub(crate) struct Guest {
    /// The ABI its modules speak (one of the adapter's).
    pub(crate) abi: crate::abi::Abi,
    pub(crate) adapter: &'static dyn Adapter,
    pub(crate) linker: Arc<Linker<HostState>>,
    pub(crate) sidecar: bool,
    /// Where instances whose module imports its memory get it.
    pub(crate) pool: Arc<MemoryPool>,
}

/// What a call runs: the module, its ABI's guest, and, when the module initialises, the
/// snapshot its instance starts from (or why there is none).
pub(crate) struct Program {
    pub(crate) module: Module,
    /// The module without its active data segments, for instances made over a snapshot's
    /// image that holds them (see `data_segments`).
    pub(crate) module_over_image: Option<Module>,
    /// The type of the memory the module imports from the pool, if it does.
    pub(crate) memory: Option<MemoryType>,
    pub(crate) guest: Guest,
    pub(crate) snapshot: Option<Result<Arc<Snapshot>, InitFailure>>,
    /// The read-only files its calls find mounted (a Python function's runtime and script).
    pub(crate) files: Option<Arc<MountedFiles>>,
}

/// How a call ended, and the global state locks it still held (which the executor releases).
pub(crate) struct Finished {
    pub(crate) result: CallResult,
    pub(crate) global_locks: Vec<String>,
}

/// A call waiting for (more) worker time.
pub(crate) struct CallTask {
    call: Call,
    program: Program,
    limits: Arc<Limits>,
    cold_start: bool,
    local_state: Arc<LocalState>,
    span: tracing::Span,
    reply: Reply,
    /// Set when someone cancels the call: it ends before its next slice.
    cancel: Cancellable,
    running: Option<Box<Running>>,
    /// Global locks still held when the call ended.
    global_locks: Vec<String>,
    /// What the call printed to its console (stdout and stderr, or stderr for a program).
    stdout: Bytes,
    /// Its log lines, kept with its record.
    logs: Bytes,
}

/// Where a call's end goes.
pub(crate) enum Reply {
    /// To a task on the async runtime that awaits it.
    Channel(oneshot::Sender<Finished>),
    /// Handled on the worker the call ends on (a chained call of this executor, whose callers
    /// here resume from there). Dropped unused if the call is lost.
    Here(Box<dyn FnOnce(Finished) + Send>),
}

/// A call suspended between fuel slices or parked in a host call.
struct Running {
    store: Store<HostState>,
    memory: Memory,
    /// Taken while the call runs or its host call completes; always set between slices.
    paused: Option<Paused>,
    /// Where the entry's results go.
    results: Vals,
    fuel_left: u64,
    started: Instant,
}

enum Paused {
    OutOfFuel(ResumableCallOutOfFuel),
    /// Parked in an import until its op completes.
    InHostCall(ResumableCallHostTrap),
    /// The op completed: resume with the import's return value.
    HostCallDone(ResumableCallHostTrap, Option<Val>),
    /// The op was refused, and the call's ABI fails a call on a refusal: why.
    Refused(String),
    /// The op failed in a way that ends the call (an MPI world that broke).
    Failed(MpiFailure),
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
pub(crate) struct Failure {
    kind: FailureKind,
    message: String,
    /// The code of a call that exited with one.
    return_code: i32,
}

/// What an ABI adapter knows of the call it serves, for its messages.
pub(crate) struct Context<'a> {
    pub(crate) call: &'a Call,
    pub(crate) limits: &'a Limits,
}

impl Context<'_> {
    /// `user/function`, for messages (formatted only when one is needed).
    pub(crate) fn name(&self) -> String {
        call_name(self.call)
    }
}

fn call_name(call: &Call) -> String {
    format!("{}/{}", call.user, call.function)
}

impl Failure {
    pub(crate) fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            return_code: 0,
        }
    }

    /// A call that ended with a return code other than 0 (kind `Exit`).
    pub(crate) fn exit(code: i32, message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Exit,
            message: message.into(),
            return_code: code,
        }
    }

    /// The failure a trap (or a host error) amounts to, the guest's own account first.
    pub(crate) fn trap(store: &Store<HostState>, err: wasmi::Error, cx: &Context<'_>) -> Self {
        let (name, host) = (cx.name(), store.data());
        if err.as_trap_code() == Some(TrapCode::OutOfFuel) {
            Self::out_of_fuel(cx)
        } else if let Some(reason) = &host.failure_reason {
            Self::new(
                FailureKind::Trap,
                format!("{name} failed: {}", reason.replace('\n', " ")),
            )
        } else if host.limiter.refused_growth {
            Self::new(
                FailureKind::MemoryLimit,
                format!(
                    "{name} ran out of memory: its limit is {} MiB ({err})",
                    cx.limits.max_memory_bytes >> 20
                ),
            )
        } else {
            Self::new(FailureKind::Trap, format!("{name} trapped: {err}"))
        }
    }

    fn out_of_fuel(cx: &Context<'_>) -> Self {
        Self::new(
            FailureKind::CpuLimit,
            format!(
                "{} used up its CPU budget of {} fuel",
                cx.name(),
                cx.limits.max_fuel
            ),
        )
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
        program: Program,
        limits: Arc<Limits>,
        cold_start: bool,
        local_state: Arc<LocalState>,
        reply: Reply,
        cancel: Cancellable,
    ) -> Self {
        let span = tracing::Span::current();
        Self {
            call,
            program,
            limits,
            cold_start,
            local_state,
            span,
            reply,
            cancel,
            running: None,
            global_locks: Vec::new(),
            stdout: Bytes::new(),
            logs: Bytes::new(),
        }
    }

    /// Runs one slice, in its call's span and that span's subscriber.
    pub(crate) fn run_slice(self) -> Slice {
        let dispatch = subscriber_of(&self.span);
        let run = move || {
            let span = self.span.clone();
            let _entered = span.enter();
            self.slice()
            // The span's last handle may be this clone: dropped here, inside the subscriber,
            // so that closing it also lets go of its parent there (the registry closes a
            // parent through the thread's current subscriber, which may be another).
        };
        match dispatch {
            Some(dispatch) => tracing::dispatcher::with_default(&dispatch, run),
            None => run(),
        }
    }

    fn slice(mut self) -> Slice {
        let step = if self.cancel.is_cancelled() {
            self.cancelled()
        } else {
            match self.running.take() {
                None => self.start(),
                Some(running) => self.resume(running),
            }
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

    /// Whether, and when, someone cancels the call.
    pub(crate) fn cancel(&self) -> &Cancellable {
        &self.cancel
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
            Some(Paused::InHostCall(trap)) => {
                let value = complete(&mut running.store, running.memory, result);
                let host = running.store.data_mut();
                if let Some(failure) = host.op_failure.take() {
                    running.paused = Some(Paused::Failed(failure));
                    return;
                }
                let answer = std::mem::take(&mut host.negative_is_answer);
                if host.refusals_fail && value < 0 && !answer {
                    let why = host.last_error.take().unwrap_or_default();
                    running.paused = Some(Paused::Refused(why));
                    return;
                }
                // The import's own result type: an ABI's imports answer in i32 or i64, or
                // nothing (some of Faasm's).
                let ty = trap.host_func().ty(&running.store);
                let value = match ty.results() {
                    [] => None,
                    [ValType::I32] => Some(Val::I32(value as i32)),
                    _ => Some(Val::I64(value)),
                };
                Some(Paused::HostCallDone(trap, value))
            }
            other => other,
        };
    }

    fn name(&self) -> String {
        call_name(&self.call)
    }

    fn start(&mut self) -> Step {
        let started = Instant::now();
        match self.prepare() {
            Ok((mut store, memory, entry)) => {
                let Entry {
                    func,
                    params,
                    mut results,
                } = entry;
                let mut fuel_left = store.get_fuel().unwrap_or(0);
                let give = self.give_fuel(&mut store, fuel_left, 0);
                store.data_mut().can_park = true;
                let result =
                    func.call_resumable(&mut store, params.as_slice(), results.as_mut_slice());
                fuel_left -= give - store.get_fuel().unwrap_or(0);
                let running = Running {
                    store,
                    memory,
                    paused: None,
                    results,
                    fuel_left,
                    started,
                };
                self.after_slice(result, running)
            }
            Err(failure) => Step::Done(Err(failure), started),
        }
    }

    fn resume(&mut self, running: Box<Running>) -> Step {
        let mut running = *running;
        // Its own account of why it ended comes first, even once its time is up.
        if let Some(Paused::Failed(failure)) =
            running.paused.take_if(|p| matches!(p, Paused::Failed(_)))
        {
            self.keep_leftovers(&mut running.store);
            return Step::Done(Err(self.op_failed(failure)), running.started);
        }
        if running.started.elapsed() >= self.limits.timeout {
            self.keep_leftovers(&mut running.store);
            return Step::Done(Err(self.timed_out()), running.started);
        }
        let required = match &running.paused {
            Some(Paused::OutOfFuel(paused)) => paused.required_fuel(),
            _ => 0,
        };
        let give = self.give_fuel(&mut running.store, running.fuel_left, required);
        let result = match running.paused.take() {
            Some(Paused::OutOfFuel(paused)) => {
                paused.resume(&mut running.store, running.results.as_mut_slice())
            }
            Some(Paused::HostCallDone(paused, value)) => {
                let value = value.as_slice();
                paused.resume(&mut running.store, value, running.results.as_mut_slice())
            }
            Some(Paused::Refused(why)) => {
                self.keep_leftovers(&mut running.store);
                let reason = why.replace('\n', " ");
                let failure = Failure::new(
                    FailureKind::Trap,
                    format!("{} failed: {reason}", self.name()),
                );
                return Step::Done(Err(failure), running.started);
            }
            Some(Paused::InHostCall(_) | Paused::Failed(_)) | None => {
                self.keep_leftovers(&mut running.store);
                let failure = Failure::new(
                    FailureKind::Trap,
                    format!("{} was resumed before its host call completed", self.name()),
                );
                return Step::Done(Err(failure), running.started);
            }
        };
        running.fuel_left -= give - running.store.get_fuel().unwrap_or(0);
        self.after_slice(result, running)
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

    /// A fresh instance (or one restored from the function's snapshot), with the request
    /// handed over as its ABI says, and the entry to run.
    fn prepare(&self) -> Result<(Store<HostState>, Memory, Entry), Failure> {
        let cx = Context {
            call: &self.call,
            limits: &self.limits,
        };
        let making = Instantiating {
            module: &self.program.module,
            module_over_image: self.program.module_over_image.as_ref(),
            memory: self.program.memory,
            guest: &self.program.guest,
            call: &self.call,
            limits: &self.limits,
            local_state: &self.local_state,
            files: self.program.files.as_ref(),
        };
        let snapshot = match &self.program.snapshot {
            Some(Ok(snapshot)) => Some(&**snapshot),
            Some(Err(failed)) => return Err(Failure::new(failed.kind, failed.message.clone())),
            None => None,
        };
        // A function whose own memory limit is below what its initialisation left.
        if let Some(snapshot) = snapshot {
            let needed = snapshot.memory_bytes();
            if needed > self.limits.max_memory_bytes {
                return Err(Failure::new(
                    FailureKind::MemoryLimit,
                    format!(
                        "{}: its initialisation leaves {} MiB of memory, over its limit of {} MiB",
                        cx.name(),
                        needed >> 20,
                        self.limits.max_memory_bytes >> 20
                    ),
                ));
            }
        }
        let (mut store, instance, memory) = making.instantiate(&cx, snapshot)?;
        match snapshot {
            Some(snapshot) => {
                let over_image = store.data().region.as_ref().is_some_and(|r| r.overlaid());
                snapshot
                    .restore(&mut store, &instance, memory, over_image)
                    .map_err(|e| Failure::new(FailureKind::Trap, format!("{}: {e}", cx.name())))?
            }
            // A WASI reactor the ABI does not snapshot initialises its runtime here, once per
            // instance. (Looked up as a plain export: a typed lookup's miss builds an error.)
            None => {
                if let Some(initialize) = instance.get_func(&store, "_initialize") {
                    let initialize = initialize.typed::<(), ()>(&store).map_err(|e| {
                        Failure::new(FailureKind::AbiViolation, format!("_initialize: {e}"))
                    })?;
                    initialize
                        .call(&mut store, ())
                        .map_err(|e| Failure::trap(&store, e, &cx))?;
                }
            }
        }
        let entry = (self.program.guest.adapter).enter(&mut store, &instance, memory, &cx)?;
        Ok((store, memory, entry))
    }

    fn after_slice(
        &mut self,
        mut result: Result<ResumableCall, wasmi::Error>,
        running: Running,
    ) -> Step {
        let Running {
            mut store,
            memory,
            mut results,
            mut fuel_left,
            started,
            ..
        } = running;
        let cx = Context {
            call: &self.call,
            limits: &self.limits,
        };
        let adapter = self.program.guest.adapter;
        let outcome = loop {
            let ended = match result {
                Ok(ResumableCall::Finished) => Ended::Returned(results.as_slice()),
                Ok(ResumableCall::OutOfFuel(paused)) => {
                    // wasmi takes no fuel from an instruction that needs more than is left.
                    if fuel_left == 0 || paused.required_fuel() > fuel_left {
                        break Err(Failure::out_of_fuel(&cx));
                    } else if started.elapsed() >= self.limits.timeout {
                        break Err(self.timed_out());
                    }
                    return Step::Paused(Box::new(Running {
                        store,
                        memory,
                        paused: Some(Paused::OutOfFuel(paused)),
                        results,
                        fuel_left,
                        started,
                    }));
                }
                Ok(ResumableCall::HostTrap(trap))
                    if trap.host_error().downcast_ref::<Suspend>().is_some() =>
                {
                    let Some(op) = store.data_mut().pending.take() else {
                        break Err(Failure::new(
                            FailureKind::Trap,
                            format!("{} parked without a host operation", cx.name()),
                        ));
                    };
                    return Step::Parked(
                        Box::new(Running {
                            store,
                            memory,
                            paused: Some(Paused::InHostCall(trap)),
                            results,
                            fuel_left,
                            started,
                        }),
                        op,
                    );
                }
                Ok(ResumableCall::HostTrap(trap)) => {
                    match trap.host_error().downcast_ref::<ProcExit>() {
                        Some(ProcExit(0)) => Ended::Exited,
                        Some(ProcExit(code)) => break Err(self.exited(&store, *code)),
                        None => {
                            break Err(Failure::new(
                                FailureKind::Trap,
                                format!(
                                    "{} failed in a host call: {}",
                                    cx.name(),
                                    trap.host_error()
                                ),
                            ));
                        }
                    }
                }
                Err(e) => break Err(Failure::trap(&store, e, &cx)),
            };
            // The adapter's own calls into the guest (callbacks it makes to read the reply)
            // count against the call's fuel like the entry's.
            let before = store.get_fuel().unwrap_or(0);
            match adapter.next(&mut store, memory, ended, &cx) {
                Ok(Next::Reply(reply)) => break Ok(reply),
                Err(failure) => break Err(failure),
                Ok(Next::Entry(entry)) => {
                    results = entry.results;
                    result = entry.func.call_resumable(
                        &mut store,
                        entry.params.as_slice(),
                        results.as_mut_slice(),
                    );
                    let used = before.saturating_sub(store.get_fuel().unwrap_or(0));
                    fuel_left = fuel_left.saturating_sub(used);
                }
            }
        };
        self.keep_leftovers(&mut store);
        Step::Done(outcome, started)
    }

    /// What outlives the instance: the global locks to release and the console output.
    fn keep_leftovers(&mut self, store: &mut Store<HostState>) {
        self.global_locks = store.data().state.global_locks();
        self.stdout = store.data_mut().io.take_console();
        self.logs = store.data_mut().io.take_logs();
    }

    /// A call that exited with a code other than 0 (a Faasm `main`'s return value, a program's
    /// exit status): a failure with that code.
    fn exited(&self, store: &Store<HostState>, code: i32) -> Failure {
        let message = match &store.data().failure_reason {
            Some(reason) => format!("{} failed with code {code}: {reason}", self.name()),
            None => format!("{} exited with code {code}", self.name()),
        };
        Failure::exit(code, message)
    }

    /// The failure a parked op ended the call with.
    fn op_failed(&self, failure: MpiFailure) -> Failure {
        let message = format!("{} failed: {}", self.name(), failure.message);
        match (failure.exit_code, failure.timed_out) {
            (Some(code), _) => Failure::exit(code, message),
            (None, true) => Failure::new(FailureKind::Timeout, message),
            (None, false) => Failure::new(FailureKind::Trap, message),
        }
    }

    /// Ends a cancelled call, whatever it was doing (its op's result, if one came, unused).
    fn cancelled(&mut self) -> Step {
        let started = match self.running.take() {
            Some(mut running) => {
                self.keep_leftovers(&mut running.store);
                running.started
            }
            None => Instant::now(),
        };
        let failure = Failure::new(
            FailureKind::Cancelled,
            format!("{} was cancelled", self.name()),
        );
        Step::Done(Err(failure), started)
    }

    fn timed_out(&self) -> Failure {
        Failure::new(
            FailureKind::Timeout,
            format!("{} timed out after {:?}", self.name(), self.limits.timeout),
        )
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
        let result = CallResult {
            id: self.call.id,
            exec_micros,
            cold_start: self.cold_start,
            stdout: self.stdout,
            logs: self.logs,
            ..result
        };
        let finished = Finished {
            result,
            global_locks: self.global_locks,
        };
        match self.reply {
            // The caller may have gone away; then nobody needs the result.
            Reply::Channel(reply) => drop(reply.send(finished)),
            Reply::Here(end) => end(finished),
        }
    }
}

/// Runs `f` with the subscriber that has `span` as this thread's default: what a call logs,
/// and the spans of what it does, go where its span goes, which need not be this worker
/// thread's default (a subscriber scoped to one thread, as in tests).
pub(crate) fn in_subscriber_of<R>(span: &tracing::Span, f: impl FnOnce() -> R) -> R {
    match subscriber_of(span) {
        Some(dispatch) => tracing::dispatcher::with_default(&dispatch, f),
        None => f(),
    }
}

/// The subscriber that has `span`, if any.
pub(crate) fn subscriber_of(span: &tracing::Span) -> Option<tracing::Dispatch> {
    span.with_subscriber(|(_, dispatch)| dispatch.clone())
}

type ThreadLinkers = HashMap<usize, (Arc<Linker<HostState>>, Linker<HostState>)>;

thread_local! {
    /// This thread's copies of the shared linkers, keyed by the original's address.
    static THREAD_LINKERS: RefCell<ThreadLinkers> = RefCell::default();
}

/// What makes an instance of a function: its module and guest, for a call (whose settings
/// and user the host serves), under limits.
pub(crate) struct Instantiating<'a> {
    pub(crate) module: &'a Module,
    pub(crate) module_over_image: Option<&'a Module>,
    /// The type of the memory the module imports from the pool, if it does.
    pub(crate) memory: Option<MemoryType>,
    pub(crate) guest: &'a Guest,
    pub(crate) call: &'a Call,
    pub(crate) limits: &'a Limits,
    pub(crate) local_state: &'a Arc<LocalState>,
    pub(crate) files: Option<&'a Arc<MountedFiles>>,
}

impl Instantiating<'_> {
    /// A fresh instance, its start function run; its memory made over `restoring`'s image,
    /// if the snapshot it is to be restored from has one.
    fn instantiate(
        &self,
        cx: &Context<'_>,
        restoring: Option<&Snapshot>,
    ) -> Result<(Store<HostState>, Instance, Memory), Failure> {
        let adapter = self.guest.adapter;
        let mut io = CallIo::new(self.call, adapter.streams(), self.limits);
        io.add_default_env(self.guest.abi.default_env());
        let chaining = Chaining::new(self.call, self.limits);
        let state = CallState::new(&self.call.user, self.local_state.clone(), self.limits);
        let mut files = CallFiles::new(self.limits);
        files.mounted = self.files.cloned();
        let mut host = HostState::new(self.limits, io, chaining, state, files);
        host.entry = adapter.entry();
        host.sidecar = CallSidecar::new(self.guest.sidecar);
        host.outbound = crate::host::outbound::CallOutbound::new(self.call, self.limits);
        host.mpi = CallMpi::new(self.call);
        let mut store = Store::new(self.module.engine(), host);
        store.limiter(|host| &mut host.limiter);
        // Start functions and the allocator are not preempted: they draw on the whole budget.
        store
            .set_fuel(self.limits.max_fuel)
            .expect("fuel metering is enabled");
        let instance = match self.memory {
            None => self
                .guest
                .linker
                .instantiate_and_start(&mut store, self.module),
            Some(ty) => self.instantiate_pooled(&mut store, ty, restoring),
        }
        .map_err(|e| Failure::trap(&store, e, cx))?;
        let memory = instance
            .get_memory(&store, fwasm_abi::EXPORT_MEMORY)
            .ok_or_else(|| Failure::new(FailureKind::AbiViolation, "module exports no memory"))?;
        store.data_mut().memory = Some(memory);
        Ok((store, instance, memory))
    }

    /// Instantiates a module that imports its memory, with a memory from the pool: made over
    /// `restoring`'s image, if it has one, and from the module without its active data
    /// segments if the image holds them.
    fn instantiate_pooled(
        &self,
        store: &mut Store<HostState>,
        ty: MemoryType,
        restoring: Option<&Snapshot>,
    ) -> Result<Instance, wasmi::Error> {
        let image = restoring.and_then(Snapshot::image);
        let (memory, region) = self.guest.pool.memory(&mut *store, ty, image)?;
        let holds_segments = restoring.is_some_and(Snapshot::holds_segments);
        let module = match (region.overlaid() && holds_segments, self.module_over_image) {
            (true, Some(bare)) => bare,
            _ => self.module,
        };
        store.data_mut().region = Some(region);
        // The shared linker cannot hold one store's memory: each thread keeps its own copy of
        // it, where the memory import is redefined for the instance being made.
        THREAD_LINKERS.with_borrow_mut(|linkers| {
            let key = Arc::as_ptr(&self.guest.linker) as usize;
            let (_, linker) = linkers.entry(key).or_insert_with(|| {
                let mut own = (*self.guest.linker).clone();
                own.allow_shadowing(true);
                // Kept with its original, so the key cannot name another linker later.
                (self.guest.linker.clone(), own)
            });
            linker.define(MEMORY_MODULE, MEMORY_NAME, memory)?;
            linker.instantiate_and_start(&mut *store, module)
        })
    }

    /// Initialises a fresh instance as `plan` says and snapshots it, for every call of the
    /// function on this executor; kept as an image where `segments` (what instantiation writes)
    /// allows. Blocking: run it off the async workers and the wasm pool.
    pub(crate) fn take_snapshot(
        &self,
        plan: InitPlan,
        segments: Option<Arc<[Range<usize>]>>,
        from: Option<&Snapshot>,
    ) -> Result<Snapshot, InitFailure> {
        let cx = Context {
            call: self.call,
            limits: self.limits,
        };
        let failed = |export: &str, failure: Failure| InitFailure {
            // Only running out of time depends on the moment: the others recur.
            lasting: failure.kind != FailureKind::Timeout,
            kind: failure.kind,
            message: format!(
                "{} cannot start: its initialisation ({export}) failed: {}",
                cx.name(),
                failure.message
            ),
        };
        let started = Instant::now();
        let (mut store, instance, memory) = self
            .instantiate(&cx, from)
            .map_err(|f| failed("instantiation", f))?;
        if let Some(from) = from {
            let over_image = store.data().region.as_ref().is_some_and(|r| r.overlaid());
            from.restore(&mut store, &instance, memory, over_image)
                .map_err(|e| failed("restoring", Failure::new(FailureKind::Trap, e)))?;
        }
        // One budget for every step, as for a call.
        let deadline = Instant::now() + self.limits.timeout;
        let ran = plan.run(
            &mut store,
            &instance,
            self.limits.max_fuel,
            self.limits.fuel_slice,
            deadline,
        );
        let init_fuel = match ran {
            Ok(init_fuel) => init_fuel,
            Err((export, failed_how)) => {
                let failure = match failed_how {
                    StepFailure::Status(status) => {
                        Failure::new(FailureKind::Exit, format!("{export} returned {status}"))
                    }
                    StepFailure::Run(RunError::Trap(e)) => Failure::trap(&store, e, &cx),
                    StepFailure::Run(RunError::OutOfFuel) => Failure::out_of_fuel(&cx),
                    StepFailure::Run(RunError::TimedOut) => Failure::new(
                        FailureKind::Timeout,
                        format!("it ran for more than {:?}", self.limits.timeout),
                    ),
                    StepFailure::Run(RunError::HostTrap(why)) => {
                        Failure::new(FailureKind::Trap, why)
                    }
                };
                // What it printed says why, often better than the failure (a traceback).
                let printed = store.data_mut().io.take_console();
                if !printed.is_empty() {
                    tracing::warn!(
                        output = %String::from_utf8_lossy(&printed).trim_end(),
                        "a function's initialisation failed"
                    );
                }
                return Err(failed(export, failure));
            }
        };
        let printed = store.data_mut().io.take_console();
        if !printed.is_empty() {
            tracing::info!(
                output = %String::from_utf8_lossy(&printed).trim_end(),
                "function initialised"
            );
        }
        let (fresh, fresh_instance, fresh_memory) = self
            .instantiate(&cx, None)
            .map_err(|f| failed("instantiation", f))?;
        let snapshot = Snapshot::capture(
            (&store, &instance),
            (&fresh, &fresh_instance),
            (memory, fresh_memory),
            init_fuel,
        );
        // With a module to instantiate without its data segments, an image holds them too.
        let initialised = self.module_over_image.map(|_| memory.data(&store));
        let snapshot = snapshot.mapped_if_worth_it(segments, initialised);
        tracing::info!(
            changed_bytes = snapshot.changed_bytes(),
            mapped = snapshot.image().is_some(),
            init_fuel,
            elapsed = ?started.elapsed(),
            "function snapshotted after its initialisation"
        );
        Ok(snapshot)
    }
}
