//! The executor service: admission, module loading (cache, then the state service), handing
//! calls to the worker pool, reporting outcomes to the scheduler, and the chaining ops of
//! parked calls.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use crossbeam_channel::Sender;
use fwasm_abi::HostStatus;
use fwasm_proto::api::{ExecutorApi, MpiRequest, MpiResponse, SchedulerApi, StateApi};
use fwasm_proto::directory::{ExecutorDirectory, RemoteExecutors};
use fwasm_proto::leases::{Leases, Tree};
use fwasm_proto::outcome::not_run;
use fwasm_proto::pb::{
    Call, CallRef, CallResult, CallStatus, ExecutorHeartbeat, FailureKind, FileRef, FunctionInfo,
    LockMode, LockRequest, ModuleRef, MpiRank, MpiRankEndedRequest, MpiRankRef, PlaceRequest,
    Placement, SetStateRequest, StateKey, SubmitRequest, UnlockRequest, WaitCallRequest,
};
use fwasm_proto::pubsub::{self, Event, Publisher};
use fwasm_proto::{ApiError, ErrorCode};
use tokio::sync::oneshot;
use tracing::Instrument;
use wasmi::{Engine, Linker};

use crate::abi::{self, Abi};
use crate::cache::{Compiled, ModuleCache};
use crate::call::{CallTask, Finished, Guest, Instantiating, Program, Reply, in_subscriber_of};
use crate::cancels::{Cancellable, Cancels};
use crate::first_poll;
use crate::host::chaining::Ended;
use crate::host::fetch::Fetch;
use crate::host::files::MountedFiles;
use crate::host::local_state::LocalState;
use crate::host::mpi::{MpiDone, MpiFailure, MpiOp, Posted};
use crate::host::park::{HostOp, OpResult, Refusal};
use crate::host::sidecar::NO_SIDECAR;
use crate::host::state::{LocalGuard, StateOp, StateOutcome};
use crate::limits::Limits;
use crate::local_calls::{LocalCall, LocalCalls};
use crate::memory_pool::MemoryPool;
use crate::mpi::answered_here::{Entering, collective_here, receive_here};
use crate::mpi::{RemoteWorld, WorldHandle, Worlds};
use crate::outbound::Outbound;
use crate::parked::{ParkedCall, ParkedCount};
use crate::pool::WorkerPool;
use crate::python::{self, PythonRuntime};
use crate::reporting::Reporter;
use crate::shared_snapshots::{self, shared_ref};
use crate::sidecar::Sidecar;
use crate::snapshot::{InitFailure, InitPlan, Origin, SlotKey, Snapshot, Snapshots};
use crate::sockets::NetOp;
use crate::{ExecutorConfig, WASM_PAGE};

/// Every ABI's adapter with a linker of its imports: one linker per adapter, built once per
/// engine (ABIs that share an adapter share it).
fn guests(engine: &Engine, sidecar: bool, pool: &Arc<MemoryPool>) -> HashMap<Abi, Guest> {
    let mut guests = HashMap::new();
    for &adapter in abi::ADAPTERS {
        let mut linker = Linker::new(engine);
        adapter.define_imports(&mut linker);
        let linker = Arc::new(linker);
        for &abi in adapter.abis() {
            let guest = Guest {
                abi,
                adapter,
                linker: linker.clone(),
                sidecar,
                pool: pool.clone(),
            };
            guests.insert(abi, guest);
        }
    }
    guests
}

pub struct Executor {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    engine: Engine,
    /// Each ABI's adapter with its linker.
    guests: HashMap<Abi, Guest>,
    limits: Arc<Limits>,
    cache: ModuleCache,
    /// Functions' instances after their initialisation, which their calls start from.
    snapshots: Snapshots,
    /// Whether snapshots are shared with other executors through the state service.
    share_snapshots: bool,
    pool: WorkerPool,
    state: Arc<dyn StateApi>,
    scheduler: Arc<dyn SchedulerApi>,
    admission: Admission,
    /// Calls parked in a host call right now (awaiting, chaining, state).
    parked: ParkedCount,
    /// Chained calls running here, which their callers here await without the scheduler.
    local_calls: Arc<LocalCalls>,
    /// The calls admitted here and not ended, for cancelling.
    cancels: Arc<Cancels>,
    /// Leases of call ids for the calls it chains, with a scheduler in another process.
    chain_leases: Option<Leases>,
    /// Tells the scheduler how calls ended.
    reporter: Reporter,
    /// The local tier of state, shared by the calls on this executor.
    local_state: Arc<LocalState>,
    /// Where parked calls' host ops run.
    runtime: tokio::runtime::Handle,
    sidecar: Option<Sidecar>,
    /// The MPI worlds whose ranks run here.
    worlds: Worlds,
    /// Where other executors reach this one (for the ranks of its worlds it places there);
    /// `None` in `fwasm up`, whose worlds stay here.
    advertise_addr: Option<String>,
    /// Other executors, for the ranks here of worlds they keep.
    peers: RemoteExecutors,
    /// The Python runtime, if this executor has one, its interpreter once compiled, and the
    /// interpreter's snapshot once started: kept for good (outside the snapshots' bound, so
    /// it is never taken again).
    python: Option<Arc<PythonRuntime>>,
    interpreter: tokio::sync::OnceCell<Compiled>,
    python_started: std::sync::Mutex<Option<Arc<Snapshot>>>,
    /// Functions' outbound HTTP requests (see `outbound`).
    outbound: Outbound,
}

/// The host and port a URL names, for traces.
fn server_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(url) => format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(0)
        ),
        Err(_) => "(not a URL)".into(),
    }
}

/// How a function's snapshot is taken.
struct Taking {
    /// The exports to run.
    plan: InitPlan,
    /// The snapshot they run from; a fresh instance if none.
    from: Option<Arc<Snapshot>>,
    /// The read-only files they find mounted.
    files: Option<Arc<MountedFiles>>,
    /// Whether it may be fetched from, and shared with, other executors.
    share: bool,
    /// The limits the steps run under (a call's, but for the Python interpreter's own).
    limits: Arc<Limits>,
}

/// The caller of a host op, as the op needs to know it.
struct Parent {
    id: u64,
    /// The call from outside its tree grew from (itself, for such a call).
    root: u64,
    user: String,
    function: String,
    depth: u32,
    /// When the caller's own time limit runs out.
    deadline: Instant,
}

impl Parent {
    fn time_left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

impl Executor {
    /// An executor that fetches modules it has not cached from `state` and reports outcomes to
    /// `scheduler`. Must be called within a tokio runtime: parked calls' host ops run on it.
    pub fn new(
        config: ExecutorConfig,
        state: Arc<dyn StateApi>,
        scheduler: Arc<dyn SchedulerApi>,
    ) -> Self {
        let mut wasmi_config = wasmi::Config::default();
        wasmi_config.consume_fuel(true);
        let engine = Engine::new(&wasmi_config);
        fwasm_proto::metrics::meters();
        let runtime = tokio::runtime::Handle::try_current()
            .expect("fwasm_executor::Executor::new must be called within a tokio runtime");
        let workers = config.workers.max(1);
        // Idle regions for the next calls: one per worker whatever it holds, more within a
        // bound on what they hold.
        let pool = Arc::new(MemoryPool::new(config.limits.max_memory_bytes, workers));
        let local_calls = Arc::new(LocalCalls::default());
        let timers = {
            let local_calls = local_calls.clone();
            Arc::new(move || local_calls.expire_due())
        };
        let reporter = Reporter::new(scheduler.clone(), local_calls.clone(), runtime.clone());
        let chain_leases = config
            .lease_chained_calls
            .then(|| Leases::new(scheduler.clone(), config.id.clone(), &runtime));
        let inner = Arc::new_cyclic(|inner: &Weak<Inner>| {
            let inner = inner.clone();
            let on_park = Arc::new(move |task, op, requeue: Sender<CallTask>| {
                // Gone only while the executor shuts down; the dropped task tells its caller.
                inner.upgrade()?.park(task, op, requeue)
            });
            Inner {
                id: config.id,
                guests: guests(&engine, config.sidecar.is_some(), &pool),
                engine,
                limits: Arc::new(config.limits),
                cache: ModuleCache::new(config.module_cache_capacity),
                snapshots: Snapshots::new(config.module_cache_capacity, config.max_snapshot_bytes),
                share_snapshots: config.share_snapshots,
                pool: WorkerPool::new(workers, on_park, timers),
                state,
                scheduler,
                admission: Admission {
                    live: Arc::new(AtomicUsize::new(0)),
                    max: config.max_concurrent_calls,
                },
                parked: ParkedCount::default(),
                local_calls,
                cancels: Arc::default(),
                chain_leases,
                reporter,
                local_state: Arc::new(LocalState::new(config.max_local_state_bytes)),
                runtime,
                sidecar: config.sidecar.map(Sidecar::new),
                worlds: Worlds::default(),
                advertise_addr: config.advertise_addr,
                peers: RemoteExecutors::new(config.tls),
                python: config.python,
                interpreter: tokio::sync::OnceCell::new(),
                python_started: std::sync::Mutex::default(),
                outbound: Outbound::new(config.allow_outbound, config.outbound_roots),
            }
        });
        Self { inner }
    }

    /// Calls admitted here and not yet ended: running, queued or parked.
    pub fn live_calls(&self) -> usize {
        self.inner.admission.live.load(Ordering::Acquire)
    }

    /// Functions this executor initialised and snapshotted (or failed to), once each.
    pub fn snapshots_taken(&self) -> u64 {
        self.inner.snapshots.taken()
    }

    /// Waits, up to `patience`, until every outcome report is sent (or given up): what an
    /// executor that stops serving does before it exits. Whether they all were.
    pub async fn reports_sent(&self, patience: Duration) -> bool {
        self.inner.reporter.all_sent(patience).await
    }

    /// Functions whose snapshot this executor fetched from another's instead of initialising.
    pub fn snapshots_fetched(&self) -> u64 {
        self.inner.snapshots.fetched()
    }

    /// This executor's snapshots kept as images mapped under each call's memory.
    pub fn snapshots_mapped(&self) -> usize {
        self.inner.snapshots.mapped()
    }

    /// Calls this executor restored over their snapshots' images (of the snapshots it keeps).
    pub fn restores_over_images(&self) -> u64 {
        self.inner.snapshots.restored_over_images()
    }

    /// Bytes of memory this executor's snapshots hold together.
    pub fn snapshot_bytes(&self) -> usize {
        self.inner.snapshots.bytes()
    }

    /// Calls parked in a host call (awaiting another call, or chaining): they hold no thread.
    pub fn parked_calls(&self) -> usize {
        self.inner.parked.get()
    }

    /// Callers parked awaiting a chained call this executor runs (answered by the worker that
    /// ends it).
    pub fn callers_awaiting_here(&self) -> usize {
        self.inner.local_calls.waiting()
    }

    /// This executor as its heartbeat describes it to the scheduler.
    pub fn heartbeat(&self, addr: &str) -> ExecutorHeartbeat {
        ExecutorHeartbeat {
            executor_id: self.inner.id.clone(),
            addr: addr.to_string(),
            capacity: self.inner.admission.max.min(u32::MAX as usize) as u32,
            live_calls: self.live_calls().min(u32::MAX as usize) as u32,
            warm_modules: self.inner.cache.hashes(),
        }
    }
}

#[async_trait]
impl ExecutorApi for Executor {
    #[tracing::instrument(name = "executor.execute", skip_all, fields(call_id = call.id, user = %call.user, function = %call.function, abi = tracing::field::Empty))]
    async fn execute(&self, call: Call) -> Result<CallResult, ApiError> {
        self.inner.clone().execute(call).await
    }

    #[tracing::instrument(name = "executor.cancel", skip_all, fields(call_id = call.id))]
    async fn cancel(&self, call: CallRef) -> Result<(), ApiError> {
        let inner = &self.inner;
        if !inner.cancels.cancel(call.id) {
            return Err(ApiError::not_found(format!(
                "call {} is not running on executor {}",
                call.id, inner.id
            )));
        }
        // With what it chained here (and they chained), as the scheduler does elsewhere.
        let mut cancelled = vec![call.id];
        while let Some(id) = cancelled.pop() {
            // A call parked on a chained call of this executor waits where no token reaches:
            // taken back here, it ends on the worker that picks it up.
            inner.local_calls.release_waiter(id);
            for child in inner.local_calls.children_of(id) {
                if inner.cancels.cancel(child) {
                    cancelled.push(child);
                }
            }
        }
        Ok(())
    }

    #[tracing::instrument(name = "executor.mpi", skip_all)]
    async fn mpi(&self, request: MpiRequest) -> Result<MpiResponse, ApiError> {
        crate::mpi::home::answer(&self.inner.worlds, request).await
    }

    #[tracing::instrument(name = "executor.prepare", skip_all, fields(user = %info.user, function = %info.function))]
    async fn prepare(&self, info: FunctionInfo) -> Result<(), ApiError> {
        let (compiled, _) = self.inner.module(&info.module_hash).await?;
        let guest = self.inner.guests[&compiled.abi].clone();
        let function = Call {
            user: info.user,
            function: info.function,
            module_hash: info.module_hash,
            settings: info.settings,
            ..Call::default()
        };
        // A failure is kept for the function's calls to report.
        let _ = self.inner.snapshot(&function, &compiled, &guest).await;
        Ok(())
    }
}

impl Inner {
    /// Admits a call, runs it and reports its outcome, whatever it is. `Err` from admission
    /// means it never started; reporting that is left to whoever sent the call.
    async fn execute(self: Arc<Self>, call: Call) -> Result<CallResult, ApiError> {
        let admitted = self.admission.admit(call.parent_id != 0)?;
        // In a task of its own, so the call runs to its end and is reported even if whoever
        // asked stops waiting (a client that hangs up).
        tokio::spawn(self.run_and_report(call, admitted).in_current_span())
            .await
            .map_err(|e| ApiError::internal(format!("the call's task failed: {e}")))?
    }

    async fn run_and_report(
        self: Arc<Self>,
        call: Call,
        _admitted: Admitted,
    ) -> Result<CallResult, ApiError> {
        let (id, user, function) = (call.id, call.user.clone(), call.function.clone());
        let rank_of = (call.mpi_world_id != 0).then_some((call.mpi_world_id, call.mpi_rank));
        let home = call.mpi_home.clone();
        let mut result = self.run(call).await;
        let mut outcome = match &result {
            Ok(result) => result.clone(),
            Err(err) => not_run(id, &user, &function, err),
        };
        if let Some(ended) = self.worlds.call_ended(&mut outcome, &self.id, rank_of) {
            self.tell_home(home, rank_of, ended);
        }
        if rank_of.is_none() {
            self.worlds.outlived(&mut outcome, RANKS_STOPPING).await;
        }
        if let Ok(result) = &mut result {
            result.mpi_ranks = outcome.mpi_ranks.clone();
        }
        self.after_end(outcome, false);
        result
    }

    /// Watches rank `rank` of world `world_id`, placed elsewhere as call `call_id`, in the
    /// scheduler's table for up to `patience`: once the call has ended there (even one that
    /// never ran, or whose executor was lost), the world learns it, as it would from the
    /// rank's executor (whichever comes first counts).
    fn watch_rank(self: &Arc<Self>, world_id: u64, rank: u32, call_id: u64, patience: Duration) {
        let inner = self.clone();
        let watch = async move {
            let request = WaitCallRequest {
                id: call_id,
                timeout_ms: patience.as_millis() as u64 + 1,
                ..WaitCallRequest::default()
            };
            let record = match inner.scheduler.wait_call(request).await {
                Ok(record) => record,
                Err(err) => {
                    tracing::warn!(world = world_id, rank, error = %err, "could not watch an MPI rank");
                    return;
                }
            };
            if !matches!(record.status(), CallStatus::Success | CallStatus::Failed) {
                return;
            }
            let ended = MpiRank {
                rank,
                call_id,
                status: record.status,
                return_code: record.return_code,
                executor_id: record.executor_id,
                exec_micros: record.exec_micros,
                error: record.error,
            };
            inner.worlds.rank_ended_at(world_id, ended);
        };
        self.runtime.spawn(watch.in_current_span());
    }

    /// Tells the executor that keeps a world (`home`) that its rank here ended, as `ended`.
    fn tell_home(&self, home: String, rank_of: Option<(u64, u32)>, ended: MpiRank) {
        let Some((world_id, _)) = rank_of.filter(|_| !home.is_empty()) else {
            return;
        };
        let request = MpiRequest::RankEnded(MpiRankEndedRequest {
            world_id,
            ended: Some(ended),
        });
        let home = self.peer(&home);
        // Until it has it (a few times): the world's call waits for it.
        let tell = async move {
            let home = home?;
            let mut pause = Duration::from_millis(100);
            for _ in 0..4 {
                match home.mpi(request.clone()).await {
                    Err(err) if err.code == ErrorCode::Unavailable => {
                        tokio::time::sleep(pause).await;
                        pause *= 4;
                    }
                    done => return done.map(drop),
                }
            }
            home.mpi(request).await.map(drop)
        };
        let tell = async move {
            // The home also learns it from the scheduler's table (see `watch_rank`).
            let told = tokio::time::timeout(Duration::from_secs(60), tell).await;
            match told {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::warn!(world = world_id, error = %err, "could not tell an MPI world that its rank ended");
                }
                Err(_) => {
                    tracing::warn!(
                        world = world_id,
                        "gave up telling an MPI world that its rank ended"
                    );
                }
            }
        };
        self.runtime.spawn(tell.in_current_span());
    }

    /// The executor at `addr`, over gRPC.
    fn peer(&self, addr: &str) -> Result<Arc<dyn ExecutorApi>, ApiError> {
        let placement = Placement {
            executor_addr: addr.to_string(),
            ..Placement::default()
        };
        self.peers.executor(&placement)
    }

    /// What follows a call's end here, whoever ran it. `local`: a chained call of this
    /// executor (see [`LocalRun`]).
    fn after_end(&self, outcome: CallResult, local: bool) {
        self.local_calls.forget_children(outcome.id);
        record_call(&outcome);
        // Off the answer's path: the caller has the result now, the scheduler's table a moment
        // later (its status polls and quota checks allow for that).
        match local {
            true => self.reporter.report_local(outcome),
            false => self.reporter.report(outcome),
        }
    }

    async fn run(&self, call: Call) -> Result<CallResult, ApiError> {
        let (id, user) = (call.id, call.user.clone());
        // Cancellable from its arrival: one cancelled while its function is got ready ends at
        // its first slice.
        let cancel = self.cancels.register(id);
        let (program, cold_start) = self.program(&call).await?;
        let (reply, finished) = oneshot::channel();
        self.submit(call, program, cold_start, Reply::Channel(reply), cancel);
        let finished = finished.await.map_err(|_| ApiError::internal(LOST))?;
        self.release_locks(id, &user, finished.global_locks).await;
        Ok(finished.result)
    }

    /// Queues `call` for a worker.
    fn submit(
        &self,
        call: Call,
        program: Program,
        cold_start: bool,
        reply: Reply,
        cancel: Cancellable,
    ) {
        let (limits, local_state) = (self.limits_for(&call), self.local_state.clone());
        let task = CallTask::new(
            call,
            program,
            limits,
            cold_start,
            local_state,
            reply,
            cancel,
        );
        self.pool.submit(task);
    }

    /// The limits of `call`: the platform's, lowered by its function's own (`--limit`), never
    /// raised.
    fn limits_for(&self, call: &Call) -> Arc<Limits> {
        let settings = call.settings.as_ref();
        let timeout = settings.map_or(0, |s| s.timeout_seconds);
        let memory_mib = settings.map_or(0, |s| s.memory_mib);
        if timeout == 0 && memory_mib == 0 {
            return self.limits.clone();
        }
        let mut limits = (*self.limits).clone();
        if timeout > 0 {
            limits.timeout = limits.timeout.min(Duration::from_secs(timeout.into()));
        }
        if memory_mib > 0 {
            limits.max_memory_bytes = limits.max_memory_bytes.min((memory_mib as usize) << 20);
        }
        Arc::new(limits)
    }

    /// What `call` runs (its module, and the snapshot it starts from), and whether the module
    /// had to be loaded for it.
    async fn program(&self, call: &Call) -> Result<(Program, bool), ApiError> {
        let (compiled, cold_start) = self.module(&call.module_hash).await?;
        let abi = match compiled.script {
            Some(_) => fwasm_proto::python::KIND.to_string(),
            None => compiled.abi.to_string(),
        };
        tracing::Span::current().record("abi", tracing::field::display(abi));
        let guest = self.guests[&compiled.abi].clone();
        let files = self.mounted_files(&call.user, &call.function, &compiled);
        let snapshot = self.snapshot(call, &compiled, &guest).await;
        let program = Program {
            module: compiled.module,
            module_over_image: compiled.over_image,
            memory: compiled.memory,
            guest,
            snapshot,
            files,
        };
        Ok((program, cold_start))
    }

    /// The read-only files a call of `user/function` running `compiled` finds mounted: a
    /// Python function's runtime and script.
    fn mounted_files(
        &self,
        user: &str,
        function: &str,
        compiled: &Compiled,
    ) -> Option<Arc<MountedFiles>> {
        let (python, script) = (self.python.as_ref()?, compiled.script.as_ref()?);
        Some(python.files(user, function, script))
    }

    /// Releases the global locks a call still held when it ended: before its outcome is
    /// known, so the next holder never waits on a lease.
    async fn release_locks(&self, id: u64, user: &str, keys: Vec<String>) {
        for key in keys {
            let unlock = UnlockRequest {
                user: user.to_string(),
                key,
                holder: self.lock_holder(id),
            };
            if let Err(err) = self.state.unlock_state(unlock).await {
                tracing::warn!(error = %err, "could not release a global state lock");
            }
        }
    }

    /// Gives back the lock on `key` that a cancelled call's request may have been granted
    /// (none, if it was not).
    async fn release_if_granted(&self, id: u64, user: &str, key: String) {
        let unlock = UnlockRequest {
            user: user.to_string(),
            key,
            holder: self.lock_holder(id),
        };
        match self.state.unlock_state(unlock).await {
            Err(err)
                if !matches!(
                    err.code,
                    ErrorCode::NotFound | ErrorCode::FailedPrecondition
                ) =>
            {
                tracing::warn!(error = %err, "could not release a cancelled call's global state lock");
            }
            _ => {}
        }
    }

    /// Starts a chained call of this executor: queued for a worker, which ends it (see
    /// [`LocalRun`]).
    async fn start_local(self: Arc<Self>, call: Call, run: LocalRun) {
        let cancel = self.cancels.register(call.id);
        match self.program(&call).await {
            Ok((program, cold_start)) => {
                let end = Reply::Here(Box::new(move |finished| run.finished(finished)));
                self.submit(call, program, cold_start, end, cancel);
            }
            Err(err) => {
                let outcome = not_run(call.id, &call.user, &call.function, &err);
                run.end(outcome);
            }
        }
    }

    /// The snapshot `call`'s function starts from, if its module initialises: for a Python
    /// function, the one its script's loading left, taken from the interpreter's own (see
    /// `python`).
    async fn snapshot(
        &self,
        call: &Call,
        compiled: &Compiled,
        guest: &Guest,
    ) -> Option<Result<Arc<Snapshot>, InitFailure>> {
        let plan = compiled.init?;
        let (Some(python), Some(_)) = (&self.python, &compiled.script) else {
            let taking = Taking {
                plan,
                from: None,
                files: None,
                share: self.share_snapshots,
                limits: self.limits.clone(),
            };
            return Some(self.snapshot_of(call, compiled, guest, taking).await);
        };
        // The interpreter started once per executor, then the function's script loaded from
        // there, per function.
        let started = match self.python_started(python, compiled, guest, plan).await {
            Ok(started) => started,
            Err(failed) => return Some(Err(failed)),
        };
        let taking = Taking {
            plan: InitPlan::python_load(),
            from: Some(started),
            files: self.mounted_files(&call.user, &call.function, compiled),
            share: false,
            limits: self.limits.clone(),
        };
        Some(self.snapshot_of(call, compiled, guest, taking).await)
    }

    /// The Python interpreter as its own start-up left it (no script, no settings), taken
    /// once per executor, when its first Python function is uploaded or called. Not shared:
    /// it depends on this executor's build of the runtime.
    async fn python_started(
        &self,
        python: &PythonRuntime,
        interpreter: &Compiled,
        guest: &Guest,
        plan: InitPlan,
    ) -> Result<Arc<Snapshot>, InitFailure> {
        let pinned = || {
            self.python_started
                .lock()
                .unwrap_or_else(|p| p.into_inner())
        };
        if let Some(started) = pinned().clone() {
            return Ok(started);
        }
        let taking = Taking {
            plan,
            from: None,
            files: Some(python.interpreter_files()),
            share: false,
            limits: Arc::new(python::start_up_limits(&self.limits)),
        };
        let call = python.interpreter_call();
        let started = self.snapshot_of(&call, interpreter, guest, taking).await?;
        *pinned() = Some(started.clone());
        Ok(started)
    }

    /// The snapshot of `call`'s function taken as `taking` says, got now if this executor
    /// has none: the one another executor shared, else taken here on the blocking pool, so
    /// neither the async workers nor the wasm workers wait for it, and for the function alone
    /// (its user, settings and module; never the call's input or command line). The calls
    /// that come meanwhile await it.
    async fn snapshot_of(
        &self,
        call: &Call,
        compiled: &Compiled,
        guest: &Guest,
        taking: Taking,
    ) -> Result<Arc<Snapshot>, InitFailure> {
        let mut env: Vec<(String, String)> = call
            .settings
            .as_ref()
            .map(|s| s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        env.sort();
        let key = SlotKey {
            user: &call.user,
            function: &call.function,
            module_hash: &call.module_hash,
            env: &env,
        };
        let slot = self.snapshots.slot(key);
        // Only the call that gets it does this work (and makes these copies).
        let (snapshot, got) = slot
            .get_or_take(|| self.fetch_or_take_snapshot(call, compiled, guest, taking, &env))
            .await;
        if let Some(origin) = got {
            self.snapshots.got_one(origin, &snapshot);
        }
        snapshot
    }

    /// The snapshot another executor shared for the function, else one taken here (shared
    /// after, off this path, if worth it).
    async fn fetch_or_take_snapshot(
        &self,
        call: &Call,
        compiled: &Compiled,
        guest: &Guest,
        taking: Taking,
        env: &[(String, String)],
    ) -> Result<(Snapshot, Origin), InitFailure> {
        let shared = shared_ref(&call.user, &call.function, &call.module_hash, env);
        let Taking {
            plan,
            from,
            files,
            share,
            limits,
        } = taking;
        if share {
            let max_pages = (self.limits.max_memory_bytes / WASM_PAGE) as u64;
            let fetched = shared_snapshots::fetch(&*self.state, &shared, compiled, max_pages);
            if let Some(fetched) = fetched.await {
                return Ok((fetched, Origin::Fetched));
            }
        }
        let function = Call {
            user: call.user.clone(),
            function: call.function.clone(),
            module_hash: call.module_hash.clone(),
            settings: call.settings.clone(),
            ..Call::default()
        };
        let (module, memory, guest) = (compiled.module.clone(), compiled.memory, guest.clone());
        let (segments, over_image) = (compiled.segments.clone(), compiled.over_image.clone());
        let local_state = self.local_state.clone();
        let span = tracing::Span::current();
        let taking = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let making = Instantiating {
                module: &module,
                module_over_image: over_image.as_ref(),
                memory,
                guest: &guest,
                call: &function,
                limits: &limits,
                local_state: &local_state,
                files: files.as_ref(),
            };
            making.take_snapshot(plan, segments, from.as_deref())
        });
        let taken = taking.await.unwrap_or_else(|e| {
            Err(InitFailure {
                kind: FailureKind::Trap,
                message: format!("the initialisation's task failed: {e}"),
                lasting: false,
            })
        })?;
        if share && shared_snapshots::worth_sharing(&taken) {
            let (state, image) = (self.state.clone(), taken.to_image());
            let share = async move { shared_snapshots::share(&*state, shared, image).await };
            self.runtime.spawn(share.in_current_span());
        }
        Ok((taken, Origin::Initialised))
    }

    /// Who holds a call's global locks in the state service.
    fn lock_holder(&self, call_id: u64) -> String {
        format!("{}/{call_id}", self.id)
    }

    /// The compiled module and whether it had to be loaded now (a cold start).
    async fn module(&self, module_hash: &str) -> Result<(Compiled, bool), ApiError> {
        if let Some(module) = self.cache.get(module_hash) {
            return Ok((module, false));
        }
        if module_hash.is_empty() {
            return Err(ApiError::invalid_argument("call names no module hash"));
        }
        let code = self
            .state
            .get_module(ModuleRef {
                module_hash: module_hash.to_string(),
            })
            .await?;
        if fwasm_proto::python::is_script(&code.wasm) {
            let module = self.interpreter().await?.running(code.wasm);
            self.cache.insert(module_hash.to_string(), module.clone());
            return Ok((module, true));
        }
        let engine = self.engine.clone();
        // Compiling (validation and translation) is CPU work: keep it off the async workers.
        let module = tokio::task::spawn_blocking(move || Compiled::compile(&engine, &code.wasm))
            .await
            .map_err(|e| ApiError::internal(format!("module compilation task failed: {e}")))?
            .map_err(|e| {
                ApiError::invalid_argument(format!("module {module_hash} cannot run: {e}"))
            })?;
        self.cache.insert(module_hash.to_string(), module.clone());
        Ok((module, true))
    }

    /// The Python runtime's interpreter, compiled the first time a Python function runs.
    async fn interpreter(&self) -> Result<Compiled, ApiError> {
        let Some(python) = self.python.clone() else {
            return Err(ApiError::new(
                ErrorCode::FailedPrecondition,
                "this executor has no Python runtime to run Python functions with: build it \
                 with scripts/build-python, then restart the executor (or give its place \
                 with --python-home)",
            ));
        };
        let engine = self.engine.clone();
        let compiling = || async move {
            let compiled =
                tokio::task::spawn_blocking(move || Compiled::compile(&engine, &python.wasm))
                    .await
                    .map_err(|e| {
                        ApiError::internal(format!("interpreter compilation task failed: {e}"))
                    })?;
            compiled.map_err(|e| {
                ApiError::internal(format!("the Python runtime's interpreter cannot run: {e}"))
            })
        };
        self.interpreter.get_or_try_init(compiling).await.cloned()
    }

    /// Parks a call for its host op. Hands the call back if the op completed at once, for
    /// this worker to run it on.
    fn park(
        self: Arc<Self>,
        task: CallTask,
        op: HostOp,
        requeue: Sender<CallTask>,
    ) -> Option<CallTask> {
        let parked = ParkedCall::new(task, requeue, &self.parked);
        let task = parked.task();
        let call = task.call();
        // A chained call running here: awaited here, resumed by the worker that ends it.
        if let HostOp::Await { id, timeout } = op
            && let Some(child) = self.local_calls.get(id, &call.user)
        {
            return self.local_calls.await_here(&child, parked, timeout);
        }
        // One receive, or a collective, in a world kept here: resumed by the worker that sends
        // its message or completes its round.
        let op = match op {
            HostOp::Mpi(MpiOp::Collective {
                world: WorldHandle::Local(world),
                rank,
                among,
                collective,
                contribution,
                landing,
            }) => {
                let entering = Entering {
                    rank,
                    among,
                    collective,
                    contribution,
                    landing,
                };
                return collective_here(&world, entering, parked, &self.runtime);
            }
            HostOp::Mpi(MpiOp::Receive {
                world: WorldHandle::Local(world),
                rank,
                sends,
                receives,
            }) if sends.is_empty() && receives.len() == 1 => {
                match <[Posted; 1]>::try_from(receives) {
                    Ok([posted]) => {
                        return receive_here(&world, rank, posted, parked, &self.runtime);
                    }
                    Err(receives) => HostOp::Mpi(MpiOp::Receive {
                        world: WorldHandle::Local(world),
                        rank,
                        sends,
                        receives,
                    }),
                }
            }
            op => op,
        };
        let parent = Parent {
            id: call.id,
            root: match call.root_id {
                0 => call.id,
                root => root,
            },
            user: call.user.clone(),
            function: call.function.clone(),
            depth: call.depth,
            deadline: Instant::now() + task.time_left(),
        };
        let span = task.span().clone();
        let cancel = task.cancel().token().clone();
        let runtime = self.runtime.clone();
        // Begun here: an op that needs nothing it must wait for (a placement by a scheduler
        // in this process, a chained call started here) completes without leaving the worker.
        let _in_runtime = runtime.enter();
        let in_span = span.clone();
        let op = async move {
            let HostOp::State(StateOp::GlobalLock { key, .. }) = &op else {
                return cancel.run_until_cancelled(self.perform(&parent, op)).await;
            };
            // A lock request dropped on the way may still be granted (the state service may
            // not hear of the drop first): cancelled, it runs to its end on its own, and a lock
            // it got is given back.
            let (key, id, user) = (key.clone(), parent.id, parent.user.clone());
            let inner = self.clone();
            let mut locking = Box::pin(async move { inner.perform(&parent, op).await });
            tokio::select! {
                biased;
                performed = &mut locking => Some(performed),
                _ = cancel.cancelled() => {
                    let runtime = self.runtime.clone();
                    let give_back = async move {
                        let _ = locking.await;
                        self.release_if_granted(id, &user, key).await;
                    };
                    runtime.spawn(give_back.in_current_span());
                    None
                }
            }
        };
        let mut op = Box::pin(op.instrument(span));
        match in_subscriber_of(&in_span, || first_poll::poll_once(&mut op)) {
            Poll::Ready(Some(result)) => Some(parked.complete(result)),
            Poll::Ready(None) => Some(parked.cancelled()),
            Poll::Pending => {
                let resume = async move {
                    match op.await {
                        Some(result) => parked.resume(result),
                        None => parked.resume_cancelled(),
                    }
                };
                // Polled from now on where its call's span is recorded, like its first poll.
                first_poll::spawn_in_subscriber_of(&runtime, &in_span, resume);
                None
            }
        }
    }

    async fn perform(self: &Arc<Self>, parent: &Parent, op: HostOp) -> OpResult {
        match op {
            HostOp::Chain { function, input } => {
                OpResult::Chained(within(parent, self.chain(parent, function, input)).await)
            }
            HostOp::Await { id, timeout } => OpResult::Awaited {
                id,
                ended: within(parent, self.await_call(parent, id, timeout)).await,
            },
            HostOp::State(op) => {
                let outcome = within(parent, self.state_op(parent, &op)).await;
                OpResult::State(op, outcome)
            }
            HostOp::Publish { topic, data, room } => {
                let published = self.publish(parent, topic, data, room);
                // The caller fails with its timeout once its time is up, whatever was started.
                let published = tokio::time::timeout_at(parent.deadline.into(), published)
                    .await
                    .unwrap_or_else(|_| Err((0, timed_out())));
                OpResult::Published(published)
            }
            HostOp::File(op) => {
                // The call's user's own file, else the common one an operator published.
                let fetch = self.state.get_file(FileRef {
                    path: op.path.clone(),
                    user: parent.user.clone(),
                    or_common: true,
                });
                let fetched = match tokio::time::timeout_at(parent.deadline.into(), fetch).await {
                    Ok(Ok(file)) => Ok(file.exists.then_some(file.data)),
                    Ok(Err(err)) => Err(format!(
                        "reading shared file {:?}: {}",
                        op.path, err.message
                    )),
                    Err(_) => Err("the call's time ran out while it waited for a file".into()),
                };
                OpResult::File(op, fetched)
            }
            HostOp::Fetch(op) => {
                let fetched = within(parent, self.fetch(parent, &op.what)).await;
                OpResult::Fetched(op, fetched)
            }
            HostOp::Mpi(op) => OpResult::Mpi(self.mpi(parent, op).await),
        }
    }

    /// A rank's blocking MPI call, within its call's time.
    async fn mpi(self: &Arc<Self>, parent: &Parent, op: MpiOp) -> Result<MpiDone, MpiFailure> {
        let (waiting, world) = (op.waiting_for(), op.world().cloned());
        let who = op.who(parent.id);
        let done = async {
            match op {
                MpiOp::Init {
                    world_id,
                    rank,
                    size,
                    input,
                    cmdline,
                    home,
                } => match world_id {
                    0 => self.mpi_start(parent, size, input, cmdline).await,
                    world_id => self.mpi_join(world_id, (rank, size), &home).await,
                },
                op => op.run().await,
            }
        };
        match tokio::time::timeout_at(parent.deadline.into(), done).await {
            Ok(Ok(done)) => Ok(done),
            // Its own time up too (a rank that started later timed out just after it): its own
            // account first.
            Ok(Err(_)) if Instant::now() >= parent.deadline => {
                Err(MpiFailure::timed_out(&who, &waiting))
            }
            Ok(Err(why)) => {
                let code = world.and_then(|w| w.abort_code());
                Err(MpiFailure::stopped(&who, &why, code))
            }
            Err(_) => Err(MpiFailure::timed_out(&who, &waiting)),
        }
    }

    /// A rank's `MPI_Init`: joins world `world_id`, kept here or by the executor at `home`.
    async fn mpi_join(
        &self,
        world_id: u64,
        (rank, size): (u32, u32),
        home: &str,
    ) -> Result<MpiDone, String> {
        if let Some(world) = self.worlds.get(world_id) {
            if rank == 0 || rank >= world.size {
                let size = world.size;
                return Err(format!("rank {rank} cannot join a world of {size} ranks"));
            }
            world.join(rank)?;
            return Ok(MpiDone::Joined(WorldHandle::Local(world)));
        }
        if home.is_empty() {
            return Err("its world is not on this executor (it has ended)".into());
        }
        let reached = |e: ApiError| format!("its world's executor ({home}): {}", e.message);
        let executor = self.peer(home).map_err(reached)?;
        let asked = MpiRequest::Join(MpiRankRef { world_id, rank });
        let joined = match executor.mpi(asked).await.map_err(reached)? {
            MpiResponse::Joined(joined) => joined,
            other => return Err(format!("its world's executor answered {other:?}")),
        };
        if let Some(broken) = joined.broken {
            return Err(broken.reason);
        }
        if rank >= joined.size || joined.size != size {
            return Err(format!(
                "its world's executor says the world has {} ranks, which rank {rank} of a world \
                 of {size} cannot join",
                joined.size
            ));
        }
        let age = crate::mpi::home::age(&joined);
        let world = RemoteWorld::new(world_id, joined.size, age, executor);
        Ok(MpiDone::Joined(WorldHandle::Remote(Arc::new(world))))
    }

    /// Rank 0's `MPI_Init`: makes its world here and starts ranks 1..size, each a chained call
    /// of its function with its input: here while this executor has room, else wherever the
    /// scheduler finds room (those ranks reach the world here over gRPC).
    async fn mpi_start(
        self: &Arc<Self>,
        parent: &Parent,
        size: u32,
        input: bytes::Bytes,
        cmdline: String,
    ) -> Result<MpiDone, String> {
        let max = self.limits.max_mpi_world_size;
        if size > max {
            return Err(format!(
                "a world of {size} ranks is over the limit of {max} (the executor's \
                 --max-mpi-world-size)"
            ));
        }
        // Messages not yet received are copies of the ranks' memory: at most all of it.
        let max_queued = self.limits.max_memory_bytes.saturating_mul(size as usize);
        let world = self.worlds.create(parent.id, size, max_queued);
        for rank in 1..size {
            let mut child = self.child_call(parent, parent.function.clone(), input.clone());
            child.cmdline = cmdline.clone();
            child.mpi_world_size = size;
            child.mpi_world_id = world.id;
            child.mpi_rank = rank;
            let started = match &self.advertise_addr {
                Some(home) if !self.admission.has_room() => {
                    child.mpi_home = home.clone();
                    let submit = SubmitRequest {
                        call: Some(child),
                        busy_executor_id: self.id.clone(),
                    };
                    // Its end comes back by world and rank, from wherever it runs; the
                    // scheduler's record of it tells too if that executor never can.
                    let placed = self.scheduler.submit(submit).await;
                    placed.map(|placement| {
                        world.rank_is(rank, placement.call_id);
                        self.watch_rank(world.id, rank, placement.call_id, parent.time_left());
                    })
                }
                _ => self
                    .place_here(parent, child)
                    .await
                    .map(|child| {
                        // Registered before it starts, so its end always reaches the world.
                        self.worlds.add_rank(&world, rank, child.id);
                        self.start_placed(child);
                    })
                    .map_err(|refusal| ApiError::unavailable(refusal.message)),
            };
            if let Err(err) = started {
                let why = format!("rank {rank} could not be started: {}", err.message);
                world.never_started(rank..size, &why);
                return Err(why);
            }
        }
        Ok(MpiDone::Joined(WorldHandle::Local(world)))
    }

    /// The bytes a parked import fetches.
    async fn fetch(self: &Arc<Self>, parent: &Parent, what: &Fetch) -> Result<Bytes, Refusal> {
        match what {
            Fetch::State { key } => {
                let at = StateKey {
                    user: parent.user.clone(),
                    key: key.clone(),
                };
                let value = self.state.get_state(at).await;
                value.map(|v| v.value).map_err(|e| refusal("get state", e))
            }
            Fetch::Invoke { function, input } => {
                let id = self.chain(parent, function.clone(), input.clone()).await?;
                let ended = self.await_call(parent, id, None).await?;
                let output = ended.bytes.unwrap_or_default();
                match ended.code {
                    0 => Ok(output),
                    code => Err(Refusal::new(
                        HostStatus::Unavailable,
                        format!(
                            "{}/{function} failed (code {code}): {}",
                            parent.user,
                            String::from_utf8_lossy(&output)
                        ),
                    )),
                }
            }
            Fetch::Sidecar(request) => match &self.sidecar {
                Some(sidecar) => sidecar.send(request, parent.deadline).await,
                None => Err(Refusal::new(HostStatus::Unavailable, NO_SIDECAR)),
            },
            Fetch::Http { request, allowed } => {
                let name = format!("{}/{}", parent.user, parent.function);
                let meters = fwasm_proto::metrics::meters();
                let span = tracing::info_span!(
                    "outbound.request",
                    http.method = %request.method,
                    // Not the whole URL: its userinfo and query may hold secrets.
                    server = %server_of(&request.url),
                    http.status = tracing::field::Empty,
                );
                let sending = async {
                    let url = self.outbound.check(request, &name, allowed)?;
                    let response = self.outbound.send(url, request, parent.time_left()).await?;
                    tracing::Span::current().record("http.status", response.status);
                    Ok(response)
                };
                let sent: Result<_, Refusal> = sending.instrument(span).await;
                let response = match sent {
                    Ok(response) => {
                        meters.outbound_requests.increment(1);
                        meters
                            .outbound_bytes_out
                            .increment(request.bytes_out() as u64);
                        meters
                            .outbound_bytes_in
                            .increment(response.body.len() as u64);
                        response
                    }
                    Err(refused) => {
                        meters.outbound_failures.increment(1);
                        return Err(refused);
                    }
                };
                let headers = response
                    .headers
                    .iter()
                    .map(|(name, value)| fwasm_abi::Header { name, value })
                    .collect();
                let envelope = fwasm_abi::Response {
                    status: response.status,
                    headers,
                    body: &response.body,
                };
                Ok(Bytes::from(envelope.encode()))
            }
            Fetch::Net(op) => {
                let name = format!("{}/{}", parent.user, parent.function);
                let meters = fwasm_proto::metrics::meters();
                let span =
                    tracing::info_span!("outbound.socket", op = op.name(), server = %op.server());
                let done = op
                    .run(&self.outbound, &name, parent.time_left())
                    .instrument(span)
                    .await;
                match (op, &done) {
                    (NetOp::Connect { .. }, Ok(_)) => meters.outbound_connections.increment(1),
                    (NetOp::Connect { .. }, Err(_)) => {
                        meters.outbound_connection_failures.increment(1)
                    }
                    (NetOp::Send { data, .. }, Ok(_)) => {
                        meters.outbound_bytes_out.increment(data.len() as u64)
                    }
                    (NetOp::Receive { .. }, Ok(received)) => {
                        meters.outbound_bytes_in.increment(received.len() as u64)
                    }
                    _ => {}
                }
                done
            }
        }
    }

    /// Does the state service's part of a state import.
    async fn state_op(&self, parent: &Parent, op: &StateOp) -> Result<StateOutcome, Refusal> {
        let at = |key: &str| StateKey {
            user: parent.user.clone(),
            key: key.to_string(),
        };
        let set = |key: &str, value: &bytes::Bytes| SetStateRequest {
            user: parent.user.clone(),
            key: key.to_string(),
            value: value.clone(),
        };
        let state = &self.state;
        let outcome = match op {
            StateOp::Get { key, .. }
            | StateOp::GetOffset { key, .. }
            | StateOp::SetOffset { key, .. }
            | StateOp::Pull { key } => state
                .get_state(at(key))
                .await
                .map(|v| StateOutcome::Value(v.value)),
            StateOp::Size { key } => state.state_size(at(key)).await.map(StateOutcome::Size),
            StateOp::Push { key, value } => state.set_state(set(key, value)).await.map(done),
            StateOp::Delete { key } => state.delete_state(at(key)).await.map(done),
            StateOp::Append { key, element } => {
                state.append_state(set(key, element)).await.map(done)
            }
            StateOp::ReadAppended { key, .. } => state
                .read_appended(at(key))
                .await
                .map(|list| StateOutcome::Elements(list.elements)),
            StateOp::ClearAppended { key } => state.clear_appended(at(key)).await.map(done),
            StateOp::LocalLock { mode, lock, .. } => {
                let guard = if *mode == fwasm_abi::lock_mode::LOCAL_READ {
                    LocalGuard::Read(lock.clone().read_owned().await)
                } else {
                    LocalGuard::Write(lock.clone().write_owned().await)
                };
                return Ok(StateOutcome::Locked(Some(guard)));
            }
            StateOp::GlobalLock { key, mode } => {
                let mode = if *mode == fwasm_abi::lock_mode::GLOBAL_READ {
                    LockMode::Read
                } else {
                    LockMode::Write
                };
                // The service gives up a moment before the caller does, so no grant is left on
                // the wire when the caller stops listening.
                let wait = parent
                    .time_left()
                    .saturating_sub(Duration::from_millis(200));
                let request = LockRequest {
                    user: parent.user.clone(),
                    key: key.clone(),
                    mode: mode as i32,
                    holder: self.lock_holder(parent.id),
                    // Outlives the call by a margin; the call releases it when it ends.
                    lease_ms: (wait + Duration::from_secs(5)).as_millis() as u64,
                    wait_ms: wait.as_millis() as u64,
                    not_reentrant: false,
                };
                match state.lock_state(request).await {
                    Ok(reply) if reply.granted => Ok(StateOutcome::Locked(None)),
                    Ok(_) => {
                        // The caller's time is up: it fails with its timeout when it resumes.
                        tokio::time::sleep_until(parent.deadline.into()).await;
                        return Err(Refusal::new(
                            HostStatus::Timeout,
                            format!(
                                "state_lock: {key:?} stayed locked for the rest of the call's time ({wait:?})"
                            ),
                        ));
                    }
                    Err(err) => Err(err),
                }
            }
            StateOp::GlobalUnlock { key } => {
                let request = UnlockRequest {
                    user: parent.user.clone(),
                    key: key.clone(),
                    holder: self.lock_holder(parent.id),
                };
                state.unlock_state(request).await.map(done)
            }
        };
        outcome.map_err(|e| refusal(op.import(), e))
    }

    /// Starts a chained call: here while this executor has room, else wherever the scheduler
    /// finds room.
    async fn chain(
        self: &Arc<Self>,
        parent: &Parent,
        function: String,
        input: bytes::Bytes,
    ) -> Result<u64, Refusal> {
        let child = self.child_call(parent, function, input);
        if !self.admission.has_room() {
            let placement = self
                .scheduler
                .submit(SubmitRequest {
                    call: Some(child),
                    busy_executor_id: self.id.clone(),
                })
                .await
                .map_err(|e| refusal("chain", e))?;
            return Ok(placement.call_id);
        }
        let child = self.place_here(parent, child).await?;
        let id = child.id;
        self.start_placed(child);
        Ok(id)
    }

    /// A call `parent` chains, of its user's `function`.
    fn child_call(&self, parent: &Parent, function: String, input: bytes::Bytes) -> Call {
        Call {
            path: format!("/f/{}/{function}", parent.user),
            user: parent.user.clone(),
            function,
            method: "POST".into(),
            input,
            parent_id: parent.id,
            depth: parent.depth + 1,
            root_id: parent.root,
            ..Call::default()
        }
    }

    /// `child` given an id (and its function's module and settings) to run here.
    async fn place_here(&self, parent: &Parent, mut child: Call) -> Result<Call, Refusal> {
        let leased = match &self.chain_leases {
            Some(leases) => {
                let tree = Tree {
                    parent_id: parent.id,
                    root_id: parent.root,
                };
                let placed = leases.place(&child.user, &child.function, Some(tree)).await;
                placed.map_err(|e| refusal("chain", e))?
            }
            None => None,
        };
        let placement = match leased {
            Some(placement) => placement,
            None => self
                .scheduler
                .place(PlaceRequest {
                    user: child.user.clone(),
                    function: child.function.clone(),
                    parent_id: child.parent_id,
                    depth: child.depth,
                    executor_id: self.id.clone(),
                })
                .await
                .map_err(|e| refusal("chain", e))?,
        };
        child.id = placement.call_id;
        child.module_hash = placement.module_hash;
        child.settings = placement.settings;
        Ok(child)
    }

    /// Starts a placed chained call here.
    fn start_placed(self: &Arc<Self>, child: Call) {
        let run = LocalRun {
            inner: self.clone(),
            local: self.local_calls.started(&child),
            admitted: Some(self.admission.admit_chained()),
            outcome: None,
        };
        let span = tracing::info_span!(
            "executor.chained",
            call_id = child.id,
            abi = tracing::field::Empty
        );
        // Begun here, so the child is queued for a worker before its caller runs on.
        let start = self
            .clone()
            .start_local(child, run)
            .instrument(span.clone());
        first_poll::start_here(&self.runtime, &span, start);
    }

    /// Publishes a function's event on its user's topic: how many subscribed functions it
    /// started, each a child of the publishing call.
    async fn publish(
        &self,
        parent: &Parent,
        topic: String,
        data: bytes::Bytes,
        room: u32,
    ) -> Result<u32, (u32, Refusal)> {
        let event = Event {
            user: parent.user.clone(),
            topic,
            content_type: crate::host::publishing::content_type(&data).into(),
            data,
            source: format!("{}/{}", parent.user, parent.function),
            raw: false,
        };
        let publisher = Publisher {
            call_id: parent.id,
            root_id: parent.root,
            depth: parent.depth,
            room,
        };
        let published = pubsub::publish(
            self.state.as_ref(),
            self.scheduler.as_ref(),
            &event,
            Some(publisher),
        )
        .await;
        match published {
            Ok(started) => Ok(started.len() as u32),
            Err(unpublished) => Err((
                unpublished.started.len() as u32,
                refusal("publish", unpublished.error),
            )),
        }
    }

    /// Waits for a call of the same user to end, at most `timeout` and never past the
    /// caller's own time limit.
    async fn await_call(
        &self,
        parent: &Parent,
        id: u64,
        timeout: Option<Duration>,
    ) -> Result<Ended, Refusal> {
        let callers_limit = parent.time_left();
        let limit = timeout.map_or(callers_limit, |t| t.min(callers_limit));
        let record = if timeout == Some(Duration::ZERO) {
            // Only the guest's own user's calls: another's is as unknown as none.
            let user = parent.user.clone();
            let at_once = true;
            self.scheduler.get_call(CallRef { id, user, at_once }).await
        } else {
            let timeout_ms = (limit.as_millis() as u64).max(1);
            let user = parent.user.clone();
            let wait = WaitCallRequest {
                id,
                timeout_ms,
                user,
            };
            self.scheduler.wait_call(wait).await
        }
        .map_err(|e| refusal("await", e))?;
        // The same words as for an unknown id: another user's calls are not visible.
        if record.user != parent.user {
            return Err(Refusal::new(
                HostStatus::NotFound,
                format!("await: no call with id {id} is known"),
            ));
        }
        match record.status() {
            CallStatus::Success => Ok(Ended {
                code: 0,
                bytes: Some(record.output),
            }),
            CallStatus::Failed => Ok(Ended {
                code: record.return_code.max(1),
                bytes: Some(record.error.into()),
            }),
            _ if limit >= callers_limit => {
                // The caller's own time is up: it fails with its timeout when it resumes and
                // never sees this status. Timers may fire a little early; wait out the rest.
                tokio::time::sleep_until(parent.deadline.into()).await;
                Err(Refusal::new(
                    HostStatus::Timeout,
                    "await: the caller's time ran out",
                ))
            }
            _ => Err(Refusal::new(
                HostStatus::Timeout,
                format!("await: call {id} is still running after {limit:?}"),
            )),
        }
    }
}

fn done(_: ()) -> StateOutcome {
    StateOutcome::Done
}

/// Bounds a parked call's op by the call's remaining time.
async fn within<T>(
    parent: &Parent,
    op: impl Future<Output = Result<T, Refusal>>,
) -> Result<T, Refusal> {
    tokio::time::timeout_at(parent.deadline.into(), op)
        .await
        .unwrap_or_else(|_| Err(timed_out()))
}

fn timed_out() -> Refusal {
    Refusal::new(
        HostStatus::Timeout,
        "the call's time ran out while it waited for the host",
    )
}

fn refusal(op: &str, err: ApiError) -> Refusal {
    let status = match err.code {
        // A guest unlocking a lock it does not hold (its lease ended): the same to it whether
        // another holder took the lock since or no one did.
        ErrorCode::NotFound | ErrorCode::FailedPrecondition => HostStatus::NotFound,
        ErrorCode::InvalidArgument => HostStatus::InvalidArgument,
        ErrorCode::PayloadTooLarge | ErrorCode::ResourceExhausted => HostStatus::LimitExceeded,
        ErrorCode::DeadlineExceeded => HostStatus::Timeout,
        ErrorCode::Unauthenticated | ErrorCode::PermissionDenied => HostStatus::PermissionDenied,
        ErrorCode::Aborted | ErrorCode::Unavailable | ErrorCode::Internal => {
            HostStatus::Unavailable
        }
    };
    Refusal::new(status, format!("{op}: {}", err.message))
}

/// Counts the calls on this executor (running, queued or parked).
struct Admission {
    live: Arc<AtomicUsize>,
    max: usize,
}

/// One admitted call; dropping it frees its place.
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        let before = self.0.fetch_sub(1, Ordering::AcqRel);
        fwasm_proto::metrics::meters()
            .live_calls
            .set((before - 1) as f64);
    }
}

/// A chained call of this executor from its start to its end, which the worker it ends on
/// handles: no task on the runtime waits for it. It ends as it is dropped: its report is
/// queued, then its callers here resume, then its admission is released. Dropped before it
/// finished (its worker lost it, or the executor stopped), it ends as not run.
struct LocalRun {
    inner: Arc<Inner>,
    local: Arc<LocalCall>,
    admitted: Option<Admitted>,
    /// How it ended, once it has.
    outcome: Option<CallResult>,
}

impl LocalRun {
    /// On the worker the call ended on.
    fn finished(mut self, finished: Finished) {
        // Kept first, so a release that never completes still reports the real outcome.
        self.outcome = Some(finished.result);
        if finished.global_locks.is_empty() {
            return;
        }
        // Its callers resume once the locks it left are released, as for any call.
        let (inner, span) = (self.inner.clone(), tracing::Span::current());
        let (id, user, _) = self.local.name();
        let user = user.to_string();
        let runtime = inner.runtime.clone();
        let release = async move {
            inner.release_locks(id, &user, finished.global_locks).await;
            drop(self);
        };
        first_poll::spawn_in_subscriber_of(&runtime, &span, release.instrument(span.clone()));
    }

    /// Ends it with `outcome` (as it is dropped).
    fn end(mut self, outcome: CallResult) {
        self.outcome = Some(outcome);
    }
}

impl Drop for LocalRun {
    fn drop(&mut self) {
        let outcome = self.outcome.take().unwrap_or_else(|| {
            let (id, user, function) = self.local.name();
            not_run(id, user, function, &ApiError::internal(LOST))
        });
        let (inner, local, admitted) =
            (self.inner.clone(), self.local.clone(), self.admitted.take());
        let end = move || {
            let mut outcome = outcome;
            // Ranks started here are registered with their world here.
            inner.worlds.call_ended(&mut outcome, &inner.id, None);
            let ended = Ended::of(&outcome);
            inner.after_end(outcome, true);
            local.end(ended);
            drop(admitted);
        };
        if std::thread::panicking() {
            // Dropped while its worker unwinds from a panic: a second one here would abort the
            // process, so the rest is done on the runtime.
            self.inner.runtime.spawn(async move { end() });
        } else {
            end();
        }
    }
}

/// Why a call that never finished failed.
/// How long a broken world's call waits for the ranks the break is stopping, so its outcome
/// lists how each ended.
const RANKS_STOPPING: Duration = Duration::from_secs(2);

const LOST: &str = "the executor lost the call before it finished (worker failure or shutdown)";

/// The call's outcome, time and cold start, for a scrape.
fn record_call(outcome: &CallResult) {
    let meters = fwasm_proto::metrics::meters();
    match outcome.status() {
        CallStatus::Success => meters.calls_succeeded.increment(1),
        _ if outcome.failure() == FailureKind::Cancelled => meters.calls_cancelled.increment(1),
        _ => meters.calls_failed.increment(1),
    }
    meters.call_seconds.record(outcome.exec_micros as f64 / 1e6);
    if outcome.cold_start {
        meters.cold_starts.increment(1);
    }
}

impl Admission {
    /// Calls from outside are refused when the executor is full. Chained calls never are:
    /// their callers are already here, and refusing them could leave every caller waiting.
    fn admit(&self, chained: bool) -> Result<Admitted, ApiError> {
        if chained {
            return Ok(self.admit_chained());
        }
        // Counted only when admitted, so a refusal never makes the executor look fuller.
        let before = self
            .live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |live| {
                (live < self.max).then_some(live + 1)
            })
            .map_err(|_| {
                ApiError::resource_exhausted(format!(
                    "executor is running its limit of {} calls; retry shortly",
                    self.max
                ))
            })?;
        fwasm_proto::metrics::meters()
            .live_calls
            .set((before + 1) as f64);
        Ok(Admitted(self.live.clone()))
    }

    /// A chained call: never refused.
    fn admit_chained(&self) -> Admitted {
        let before = self.live.fetch_add(1, Ordering::AcqRel);
        fwasm_proto::metrics::meters()
            .live_calls
            .set((before + 1) as f64);
        Admitted(self.live.clone())
    }

    fn has_room(&self) -> bool {
        self.live.load(Ordering::Acquire) < self.max
    }
}
