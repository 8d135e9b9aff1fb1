//! Placement of calls on executors, and the call table.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fwasm_proto::api::{SchedulerApi, StateApi};
use fwasm_proto::directory::ExecutorDirectory;
use fwasm_proto::outcome::ended_word;
use fwasm_proto::outcome::{not_run, unix_micros};
use fwasm_proto::pb::{
    Call, CallList, CallRecord, CallRef, CallResult, CallStatus, CallsFinishedRequest,
    ExecutorHeartbeat, FailureKind, FunctionInfo, FunctionRef, FunctionSettings, HeartbeatReply,
    LeaseRequest, ListCallsRequest, PlaceRequest, Placement, PlacementLease, QuotaRef,
    RecordCallsRequest, SaveCallRequest, SubmitRequest, UserQuota, WaitCallRequest,
};
use fwasm_proto::{ApiError, ErrorCode, names};
use tracing::Instrument;

use crate::SchedulerConfig;
use crate::calls::{CallTable, Change, lost};
use crate::members::Members;
use crate::quotas::Quotas;

/// An executor calls can be placed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorEndpoint {
    pub id: String,
    /// gRPC address; empty for the executor in this process.
    pub addr: String,
}

pub struct Scheduler {
    state: Arc<dyn StateApi>,
    directory: Arc<dyn ExecutorDirectory>,
    members: Arc<Members>,
    /// `user/function` -> module hash.
    functions: RwLock<HashMap<String, Function>>,
    /// Uploads and deletes seen: a lookup that overlapped one does not cache what it read.
    function_changes: AtomicU64,
    next_call_id: AtomicU64,
    calls: Arc<CallTable>,
    max_tree_calls: u64,
    heartbeat_interval: Duration,
    /// Background calls waiting for an executor with room, and how many may.
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    queue_wait: Duration,
    quotas: Quotas,
}

/// What placing a function's calls needs to know of it: the version to run and its settings.
#[derive(Clone)]
struct Function {
    module_hash: String,
    settings: Option<FunctionSettings>,
}

impl From<FunctionInfo> for Function {
    fn from(info: FunctionInfo) -> Self {
        Self {
            module_hash: info.module_hash,
            settings: info.settings,
        }
    }
}

/// Tries to save a changed call record before giving up on it.
const SAVE_ATTEMPTS: u32 = 5;

/// Attempts a background call gets on executors that vanish under it.
const MAX_DISPATCH_ATTEMPTS: u32 = 3;

/// How long a status poll of a call its executor has not reported yet, or a placement its
/// user's quota of concurrent calls would refuse, waits for a call's report first. Executors
/// report how a call ended after answering it (a chained call's caller on the same executor
/// hears first too), so its caller can poll, or call again, before the report lands.
const REPORT_GRACE: Duration = Duration::from_millis(250);

/// Call ids in a placement lease, and how long its holder may use them. Small enough that ids
/// a gateway leaves unused stay few (ids grow about a million a second; see
/// [`first_call_id`]), long enough that a busy function's calls take a lease every few dozen
/// calls.
const LEASE_IDS: u32 = 64;
const _: () = assert!(LEASE_IDS as u64 <= crate::leased::MAX_IDS);
const LEASE_VALID: Duration = Duration::from_secs(1);

/// How long after a lease ends its calls may still be recorded (a gateway records the calls
/// it starts in batches).
const LEASE_RECORD_MARGIN: Duration = Duration::from_secs(10);

impl Scheduler {
    /// A scheduler that resolves functions through `state` and reaches executors through
    /// `directory` (for the calls it runs in the background).
    pub fn new(
        config: SchedulerConfig,
        state: Arc<dyn StateApi>,
        directory: Arc<dyn ExecutorDirectory>,
    ) -> Self {
        let meters = fwasm_proto::metrics::meters();
        meters.executors.set(config.executors.len() as f64);
        let calls = Arc::new(call_table(&config, &state));
        let members = Arc::new(Members::new(
            config.executors,
            config.heartbeat_interval * 3,
        ));
        sweep_in_background(&members, &calls, config.heartbeat_interval);
        Self {
            state,
            directory,
            members,
            functions: RwLock::default(),
            function_changes: AtomicU64::new(0),
            next_call_id: AtomicU64::new(first_call_id()),
            calls,
            max_tree_calls: config.max_tree_calls,
            heartbeat_interval: config.heartbeat_interval,
            queued: Arc::default(),
            max_queued: config.max_queued_calls,
            queue_wait: config.max_queue_wait,
            quotas: Quotas::new(config.default_quota),
        }
    }

    async fn function(&self, user: &str, function: &str) -> Result<Function, ApiError> {
        let key = format!("{user}/{function}");
        if let Some(function) = read(&self.functions).get(&key) {
            return Ok(function.clone());
        }
        let seen = self.function_changes.load(Ordering::Acquire);
        let info: Function = self
            .state
            .get_function_info(FunctionRef {
                user: user.into(),
                function: function.into(),
            })
            .await?
            .into();
        // Kept only if no function was uploaded or deleted while this looked: what it read
        // may already be out of date (this call still runs with it).
        let mut functions = write(&self.functions);
        if self.function_changes.load(Ordering::Acquire) == seen {
            functions.insert(key, info.clone());
        }
        Ok(info)
    }

    /// Forgets what is known of `user/function` (uploaded anew, or deleted): its next call
    /// reads it from the state service.
    fn forget_function(&self, user: &str, function: &str) {
        let mut functions = write(&self.functions);
        self.function_changes.fetch_add(1, Ordering::AcqRel);
        functions.remove(&format!("{user}/{function}"));
    }

    /// Removes executors that stopped beating, and fails the calls they were running that
    /// nobody else will report (a background call's dispatcher retries its own).
    fn sweep(&self) {
        sweep(&self.members, &self.calls);
    }

    /// Gives a call its id and executor and records it.
    async fn place_call(
        &self,
        call: &Call,
        on_executor: &str,
        status: CallStatus,
    ) -> Result<Placement, ApiError> {
        names::check_function_ref(&call.user, &call.function)?;
        if call.parent_id != 0 {
            // A parent started from a lease may not be recorded yet; its tree counts from it.
            self.calls.await_record(call.parent_id, REPORT_GRACE).await;
            // What a cancelled call asked for on its way out is no longer wanted.
            if self
                .calls
                .get(call.parent_id)
                .is_some_and(|parent| parent.failure() == FailureKind::Cancelled)
            {
                return Err(ApiError::new(
                    ErrorCode::FailedPrecondition,
                    format!(
                        "call {} was cancelled: it starts no more calls",
                        call.parent_id
                    ),
                ));
            }
        }
        self.quotas.load(self.state.as_ref()).await?;
        let limits = self.quotas.limits(&call.user);
        let Function {
            module_hash,
            settings,
        } = self.function(&call.user, &call.function).await?;
        let executor = if status == CallStatus::Queued {
            // A background call: its dispatcher finds it an executor.
            ExecutorEndpoint {
                id: String::new(),
                addr: String::new(),
            }
        } else if on_executor.is_empty() {
            self.members.choose(&module_hash, "")?
        } else {
            // The executor asking runs the call itself; it needs no address.
            ExecutorEndpoint {
                id: on_executor.to_string(),
                addr: String::new(),
            }
        };
        let placement = Placement {
            call_id: self.next_call_id.fetch_add(1, Ordering::Relaxed),
            executor_id: executor.id,
            executor_addr: executor.addr,
            module_hash,
            settings,
        };
        let record = CallRecord {
            id: placement.call_id,
            user: call.user.clone(),
            function: call.function.clone(),
            status: status as i32,
            parent_id: call.parent_id,
            executor_id: placement.executor_id.clone(),
            submitted_unix_micros: unix_micros(),
            trace_id: fwasm_proto::trace::current_trace_id(),
            ..CallRecord::default()
        };
        let dispatched = status == CallStatus::Queued;
        // Only a call that could run spends from its user's rate.
        self.quotas.take_call(&limits)?;
        let max_unfinished = limits.max_concurrent_calls;
        let (max_tree_calls, grace) = (self.max_tree_calls, REPORT_GRACE);
        self.calls
            .insert_within(record, max_tree_calls, max_unfinished, dispatched, grace)
            .await?;
        Ok(placement)
    }

    /// Makes sure the table has call `id` if an earlier scheduler saved it.
    async fn recall(&self, id: u64) {
        if !self.calls.is_durable() || self.calls.contains(id) {
            return;
        }
        match self
            .state
            .load_call(CallRef {
                id,
                ..CallRef::default()
            })
            .await
        {
            Ok(loaded) => {
                if let Some(record) = loaded.record.filter(|_| loaded.exists) {
                    self.calls.restore(record);
                }
            }
            Err(err) => tracing::warn!(call_id = id, error = %err, "could not load a saved call"),
        }
    }

    /// Records how a call ended (not yet saved, for a durable table).
    async fn finished(&self, result: &CallResult) {
        // A call from a lease not recorded yet is not one an earlier scheduler saved.
        if !self.calls.is_leased(result.id) {
            self.recall(result.id).await;
        }
        if let Some(executor) = self.calls.finish(result).filter(|e| !e.is_empty()) {
            self.members.call_ended(&executor);
            if result.failure() == FailureKind::NotRun {
                self.members.suspect(&executor);
            }
        }
    }

    /// Cancels one call that has not ended: at once if it is queued, else by its executor
    /// (looked for until `deadline` if it is not there yet).
    async fn cancel_one(&self, call: &CallRef, deadline: Instant) -> Result<(), ApiError> {
        let asked = CallRef {
            at_once: true,
            ..call.clone()
        };
        loop {
            let record = self.get_call(asked.clone()).await?;
            match record.status() {
                CallStatus::Success | CallStatus::Failed => {
                    return Err(ApiError::new(
                        ErrorCode::FailedPrecondition,
                        format!(
                            "call {} has already ended ({}); there is nothing to cancel",
                            record.id,
                            ended_word(record.status(), record.failure())
                        ),
                    ));
                }
                CallStatus::Queued if self.calls.cancel_queued(record.id) => return Ok(()),
                // Sent to an executor just now: look again.
                CallStatus::Queued => {}
                _ => match self.cancel_on_executor(&record).await {
                    // Not there yet (on its way, or back in the queue), or just ended: look
                    // again.
                    Err(err) if err.code == ErrorCode::NotFound && Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Err(err) if err.code == ErrorCode::NotFound => {
                        return Err(ApiError::unavailable(format!(
                            "call {} could not be cancelled: {}; try again",
                            record.id, err.message
                        )));
                    }
                    done => return done,
                },
            }
        }
    }

    /// Asks the executor running `record`'s call to cancel it.
    async fn cancel_on_executor(&self, record: &CallRecord) -> Result<(), ApiError> {
        let Some(executor) = self.members.endpoint(&record.executor_id) else {
            return Err(ApiError::unavailable(format!(
                "call {} runs on executor {:?}, which is no longer a member; it ends as lost",
                record.id, record.executor_id
            )));
        };
        let placement = Placement {
            call_id: record.id,
            executor_id: executor.id,
            executor_addr: executor.addr,
            ..Placement::default()
        };
        let cancel = CallRef {
            id: record.id,
            ..CallRef::default()
        };
        self.directory.executor(&placement)?.cancel(cancel).await
    }

    fn unknown_call(&self, id: u64) -> ApiError {
        ApiError::not_found(format!(
            "no call with id {id} is known (finished calls are kept for {:?})",
            self.calls.retention().max_age
        ))
    }
}

/// Call ids grow from the start time in milliseconds times 1024, so they stay unique across
/// restarts (unless more than a million calls a second were placed before one) and below
/// 2^53, where JSON clients still read them exactly.
fn first_call_id() -> u64 {
    (unix_micros() / 1000) << 10
}

/// Lock helpers: the maps hold plain values, so a panicked holder cannot leave them torn.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The call table, saving every change through the state service when it must be durable.
fn call_table(config: &SchedulerConfig, state: &Arc<dyn StateApi>) -> CallTable {
    let runtime = tokio::runtime::Handle::try_current();
    let (true, Ok(runtime)) = (config.durable_calls, runtime) else {
        return CallTable::new(config.retention.clone());
    };
    let (changes, mut saved) = tokio::sync::mpsc::unbounded_channel::<Change>();
    let state = state.clone();
    let ttl_seconds = config.retention.max_age.as_secs();
    // One writer, so a call's changes are saved in the order they happened.
    runtime.spawn(async move {
        while let Some(change) = saved.recv().await {
            let record = match change {
                Change::Save(record) => record,
                Change::Flush(done) => {
                    let _ = done.send(());
                    continue;
                }
            };
            let id = record.id;
            let save = SaveCallRequest {
                record: Some(*record),
                ttl_seconds,
            };
            // Saved before the writer moves on: a state service that is restarting gets a
            // few tries.
            for attempt in 0..SAVE_ATTEMPTS {
                match state.save_call(save.clone()).await {
                    Ok(()) => break,
                    Err(err) if attempt + 1 == SAVE_ATTEMPTS => {
                        tracing::error!(call_id = id, error = %err, "could not save a call record");
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100 << attempt)).await,
                }
            }
        }
    });
    CallTable::durable(config.retention.clone(), changes)
}

/// Sweeps every heartbeat interval, so lost calls end even when no request comes.
fn sweep_in_background(members: &Arc<Members>, calls: &Arc<CallTable>, every: Duration) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let (members, calls) = (Arc::downgrade(members), Arc::downgrade(calls));
    runtime.spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            // Ends with the scheduler.
            let (Some(members), Some(calls)) = (members.upgrade(), calls.upgrade()) else {
                return;
            };
            sweep(&members, &calls);
        }
    });
}

fn sweep(members: &Members, calls: &CallTable) {
    for executor in members.expire() {
        calls.fail_lost(&executor);
    }
    calls.fail_unreported_restored();
    fwasm_proto::metrics::meters()
        .executors
        .set(members.count() as f64);
}

/// Runs one background call: waits (boundedly) for an executor with room, and tries another
/// executor when the one it is on vanishes, a bounded number of times.
struct Dispatch {
    members: Arc<Members>,
    directory: Arc<dyn ExecutorDirectory>,
    calls: Arc<CallTable>,
    queued: Arc<AtomicUsize>,
    deadline: Instant,
}

impl Dispatch {
    async fn run(self, call: Call, busy: String) {
        let result = self.dispatch(&call, busy).await;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        // The executor reports the calls it ran; this covers every other ending.
        self.calls.finish(
            &result.unwrap_or_else(|err| not_run(call.id, &call.user, &call.function, &err)),
        );
    }

    async fn dispatch(&self, call: &Call, mut busy: String) -> Result<CallResult, ApiError> {
        // The queue-depth gauge counts this call while it is not on an executor.
        let waiting = &fwasm_proto::metrics::meters().scheduler_queued;
        let mut attempts = 0;
        loop {
            let outcome = match self.members.choose(&call.module_hash, &busy) {
                Ok(executor) => {
                    waiting.decrement(1.0);
                    if !self.calls.set_running(call.id, &executor.id) {
                        // Cancelled while it waited: it has ended, and goes nowhere.
                        self.members.call_ended(&executor.id);
                        return Err(ApiError::new(
                            ErrorCode::FailedPrecondition,
                            "the call was cancelled before it reached an executor",
                        ));
                    }
                    let placement = Placement {
                        call_id: call.id,
                        executor_id: executor.id.clone(),
                        executor_addr: executor.addr,
                        module_hash: call.module_hash.clone(),
                        settings: call.settings.clone(),
                    };
                    let outcome = match self.directory.executor(&placement) {
                        Ok(target) => {
                            tokio::select! {
                                result = target.execute(call.clone()) => result,
                                gone = self.members.gone(&executor.id) => Err(gone),
                            }
                        }
                        Err(err) => Err(err),
                    };
                    if let Err(err) = &outcome {
                        self.members.call_ended(&executor.id);
                        if err.code == ErrorCode::Unavailable {
                            self.members.suspect(&executor.id);
                        }
                    }
                    outcome.map_err(|err| (err, executor.id))
                }
                Err(err) => Err((err, String::new())),
            };
            let (err, executor) = match outcome {
                Ok(result) => return Ok(result),
                Err(failed) => failed,
            };
            // Unreachable: it never took the call. A broken connection (Internal) may be the
            // executor dying mid-call or a fault of its own: it counts as vanished only if the
            // executor then stops beating, and the call runs again elsewhere (at least once).
            let vanished = match err.code {
                ErrorCode::Unavailable => true,
                ErrorCode::Internal if !executor.is_empty() => {
                    tokio::select! {
                        _ = self.members.gone(&executor) => true,
                        _ = tokio::time::sleep(self.members.timeout() * 2) => false,
                    }
                }
                _ => false,
            };
            // A rank of an MPI world cannot start over: its world has moved on without it.
            if vanished && !executor.is_empty() && call.mpi_world_id != 0 {
                return Ok(lost(call.id, &call.user, &call.function, &executor));
            }
            // An executor that reported the call itself (say, as not run) ended it: no retry.
            if !executor.is_empty()
                && vanished
                && attempts + 1 < MAX_DISPATCH_ATTEMPTS
                && self.calls.set_queued(call.id)
            {
                tracing::warn!(call_id = call.id, %executor, error = %err, "executor lost the call; trying another");
                attempts += 1;
                waiting.increment(1.0);
                busy = executor;
                continue;
            }
            let placed = !executor.is_empty();
            if err.code == ErrorCode::ResourceExhausted
                && Instant::now() < self.deadline
                && self.calls.set_queued(call.id)
            {
                if placed {
                    waiting.increment(1.0);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            if !placed {
                waiting.decrement(1.0);
            }
            return Err(err);
        }
    }
}

/// How long a cancel looks for a call that is on its way to its executor, and then waits for
/// its end to be reported.
const CANCEL_PATIENCE: Duration = Duration::from_secs(2);

/// How long an upload waits for an executor to get the new function ready.
const PREPARE_PATIENCE: Duration = Duration::from_secs(10);

#[async_trait]
impl SchedulerApi for Scheduler {
    #[tracing::instrument(name = "scheduler.place", skip_all, fields(user = %req.user, function = %req.function))]
    async fn place(&self, req: PlaceRequest) -> Result<Placement, ApiError> {
        let call = Call {
            user: req.user,
            function: req.function,
            parent_id: req.parent_id,
            depth: req.depth,
            ..Call::default()
        };
        self.place_call(&call, &req.executor_id, CallStatus::Running)
            .await
    }

    #[tracing::instrument(name = "scheduler.submit", skip_all)]
    async fn submit(&self, req: SubmitRequest) -> Result<Placement, ApiError> {
        let mut call = req
            .call
            .ok_or_else(|| ApiError::invalid_argument("submit names no call"))?;
        // Counted before anything awaits, so concurrent submits cannot overshoot the bound.
        let counted = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_queued).then_some(n + 1)
            });
        if counted.is_err() {
            return Err(ApiError::resource_exhausted(format!(
                "{} background calls are already waiting or running; retry shortly",
                self.max_queued
            )));
        }
        let placement = match self.place_call(&call, "", CallStatus::Queued).await {
            Ok(placement) => placement,
            Err(err) => {
                self.queued.fetch_sub(1, Ordering::AcqRel);
                return Err(err);
            }
        };
        call.id = placement.call_id;
        call.module_hash = placement.module_hash.clone();
        call.settings = placement.settings.clone();
        let dispatch = Dispatch {
            members: self.members.clone(),
            directory: self.directory.clone(),
            calls: self.calls.clone(),
            queued: self.queued.clone(),
            deadline: Instant::now() + self.queue_wait,
        };
        fwasm_proto::metrics::meters()
            .scheduler_queued
            .increment(1.0);
        tokio::spawn(dispatch.run(call, req.busy_executor_id).in_current_span());
        // Accepted means recorded: a durable table has saved the call before it is answered.
        self.calls.flushed().await;
        Ok(placement)
    }

    async fn function_updated(&self, info: FunctionInfo) -> Result<(), ApiError> {
        // Not cached from the notice: a delete may already have overtaken it.
        self.forget_function(&info.user, &info.function);
        // The executor its first call will likely go to gets it ready (compiled, initialised),
        // so that call is warm. The upload answers once it is, or after PREPARE_PATIENCE: a
        // slow or failed preparation only makes the first call cold, and says why there.
        if let Some(executor) = self.members.warm_up(&info.module_hash) {
            let placement = Placement {
                executor_id: executor.id,
                executor_addr: executor.addr,
                module_hash: info.module_hash.clone(),
                ..Placement::default()
            };
            let prepared = match self.directory.executor(&placement) {
                Ok(target) => tokio::time::timeout(PREPARE_PATIENCE, target.prepare(info))
                    .await
                    .unwrap_or_else(|_| Err(ApiError::unavailable("it took too long"))),
                Err(err) => Err(err),
            };
            if let Err(err) = prepared {
                tracing::warn!(error = %err, "an executor could not prepare a function");
            }
        }
        Ok(())
    }

    async fn function_deleted(&self, req: FunctionRef) -> Result<(), ApiError> {
        // The next call looks the function up in the state service, which says it is gone.
        self.forget_function(&req.user, &req.function);
        Ok(())
    }

    async fn set_quota(&self, quota: UserQuota) -> Result<(), ApiError> {
        names::check_name("user", &quota.user)?;
        crate::quotas::check_rate(quota.calls_per_second)?;
        tracing::info!(user = %quota.user, concurrent = quota.max_concurrent_calls, rate = quota.calls_per_second, burst = quota.burst_calls, "quota set");
        self.quotas.set(quota);
        Ok(())
    }

    async fn get_quota(&self, req: QuotaRef) -> Result<UserQuota, ApiError> {
        names::check_name("user", &req.user)?;
        self.quotas.load(self.state.as_ref()).await?;
        Ok(self.quotas.limits(&req.user))
    }

    #[tracing::instrument(name = "scheduler.lease", skip_all, fields(user = %req.user, function = %req.function))]
    async fn lease(&self, req: LeaseRequest) -> Result<PlacementLease, ApiError> {
        names::check_function_ref(&req.user, &req.function)?;
        let chained = req.parent_id != 0;
        if chained {
            names::check_name("executor", &req.executor_id)?;
            self.calls.await_record(req.parent_id, REPORT_GRACE).await;
        }
        self.quotas.load(self.state.as_ref()).await?;
        let limits = self.quotas.limits(&req.user);
        let place_each = PlacementLease {
            place_each: true,
            valid_ms: LEASE_VALID.as_millis() as u32,
            ..PlacementLease::default()
        };
        if limits.max_concurrent_calls > 0 || limits.calls_per_second > 0.0 {
            // Its quotas are checked as each call is placed.
            return Ok(place_each);
        }
        let Function {
            module_hash,
            settings,
        } = self.function(&req.user, &req.function).await?;
        let (executor, root, call_ids) = if chained {
            // Run by the executor asking; their places in the tree are taken now. A parent
            // unknown here, or a tree at its limit: placed one by one, which says why.
            let reserved = self.calls.reserve_tree(
                req.parent_id,
                &req.user,
                u64::from(LEASE_IDS),
                self.max_tree_calls,
            );
            let Some((root, call_ids @ 1..)) = reserved else {
                return Ok(place_each);
            };
            let executor = ExecutorEndpoint {
                id: req.executor_id,
                addr: String::new(),
            };
            (executor, root, call_ids)
        } else {
            let executor = self.members.choose(&module_hash, "")?;
            // Choosing counted a call there; each call recorded from the lease counts instead.
            self.members.call_ended(&executor.id);
            (executor, 0, u64::from(LEASE_IDS))
        };
        let first_call_id = self.next_call_id.fetch_add(call_ids, Ordering::Relaxed);
        let record_by = Instant::now() + LEASE_VALID + LEASE_RECORD_MARGIN;
        self.calls.lease(first_call_id, call_ids, record_by, root);
        fwasm_proto::metrics::meters().leases_granted.increment(1);
        Ok(PlacementLease {
            place_each: false,
            first_call_id,
            call_ids: call_ids as u32,
            executor_id: executor.id,
            executor_addr: executor.addr,
            module_hash,
            settings,
            valid_ms: place_each.valid_ms,
        })
    }

    #[tracing::instrument(name = "scheduler.record_calls", skip_all, fields(calls = req.records.len()))]
    async fn record_calls(&self, req: RecordCallsRequest) -> Result<(), ApiError> {
        for record in &req.records {
            names::check_function_ref(&record.user, &record.function)?;
        }
        let recorded = self.calls.record(req.records);
        for executor in &recorded.started {
            self.members.call_placed(executor);
        }
        for result in &recorded.early {
            self.finished(result).await;
        }
        // Saved before answering, as a placement is.
        self.calls.flushed().await;
        match recorded.refused.as_slice() {
            [] => Ok(()),
            ids => Err(ApiError::invalid_argument(format!(
                "calls {ids:?} were not given ids from a lease that is still open; place them \
                 with Place"
            ))),
        }
    }

    async fn heartbeat(&self, beat: ExecutorHeartbeat) -> Result<HeartbeatReply, ApiError> {
        names::check_name("executor", &beat.executor_id)?;
        self.members.beat(beat);
        self.sweep();
        Ok(HeartbeatReply {
            interval_ms: self.heartbeat_interval.as_millis() as u64,
        })
    }

    async fn call_finished(&self, result: CallResult) -> Result<(), ApiError> {
        self.finished(&result).await;
        // The executor stops retrying once this is answered: the outcome must be saved first.
        self.calls.flushed().await;
        Ok(())
    }

    #[tracing::instrument(name = "scheduler.calls_finished", skip_all, fields(calls = req.results.len()))]
    async fn calls_finished(&self, req: CallsFinishedRequest) -> Result<(), ApiError> {
        for result in &req.results {
            self.finished(result).await;
        }
        self.calls.flushed().await;
        Ok(())
    }

    async fn get_call(&self, req: CallRef) -> Result<CallRecord, ApiError> {
        self.sweep();
        self.recall(req.id).await;
        self.calls.await_record(req.id, REPORT_GRACE).await;
        let user = (!req.user.is_empty()).then_some(req.user.as_str());
        // A call's caller may know how it ended before this table has the report (sent after
        // the answer): wait briefly for it, so a poll right after the answer finds the call
        // ended. Unless the asker wants only what the table holds now.
        let grace = (!req.at_once && self.calls.running_unreported(req.id)).then_some(REPORT_GRACE);
        let record = match grace {
            Some(grace) => self.calls.wait(req.id, user, Some(grace)).await,
            None => self.calls.get(req.id),
        };
        record
            .filter(|record| user.is_none_or(|user| record.user == user))
            .ok_or_else(|| self.unknown_call(req.id))
    }

    #[tracing::instrument(name = "scheduler.cancel_call", skip_all, fields(call_id = req.id))]
    async fn cancel_call(&self, req: CallRef) -> Result<CallRecord, ApiError> {
        let deadline = Instant::now() + CANCEL_PATIENCE;
        self.cancel_one(&req, deadline).await?;
        let user = (!req.user.is_empty()).then_some(req.user.as_str());
        // Its executor reports its end as for any call; once it has, it chains no more.
        let left = deadline.saturating_duration_since(Instant::now()) + CANCEL_PATIENCE;
        let record = self.calls.wait(req.id, user, Some(left)).await;
        // And what it chained (and that chained): work no one wants any more.
        let deadline = Instant::now() + CANCEL_PATIENCE;
        let mut chained = self.calls.unfinished_children(req.id);
        while let Some(child) = chained.pop() {
            chained.extend(self.calls.unfinished_children(child));
            let child = CallRef {
                id: child,
                ..CallRef::default()
            };
            if let Err(err) = self.cancel_one(&child, deadline).await {
                tracing::debug!(call_id = child.id, error = %err, "a chained call was not cancelled");
            }
        }
        record.ok_or_else(|| self.unknown_call(req.id))
    }

    #[tracing::instrument(name = "scheduler.list_calls", skip_all, fields(user = %req.user))]
    async fn list_calls(&self, req: ListCallsRequest) -> Result<CallList, ApiError> {
        if !req.user.is_empty() {
            names::check_name("user", &req.user)?;
        }
        match self.calls.list(&req) {
            Some(calls) => Ok(CallList { calls }),
            None => Err(ApiError::not_found(format!(
                "call {} is no longer kept, so no page starts after it; list from the newest",
                req.before_id
            ))),
        }
    }

    async fn wait_call(&self, req: WaitCallRequest) -> Result<CallRecord, ApiError> {
        self.sweep();
        self.recall(req.id).await;
        self.calls.await_record(req.id, REPORT_GRACE).await;
        let timeout = (req.timeout_ms > 0).then(|| Duration::from_millis(req.timeout_ms));
        let user = (!req.user.is_empty()).then_some(req.user.as_str());
        self.calls
            .wait(req.id, user, timeout)
            .await
            .ok_or_else(|| self.unknown_call(req.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fwasm_proto::ErrorCode;
    use fwasm_proto::pb::{
        AppendedState, FileData, FileRef, FunctionCode, LoadedCall, LockReply, LockRequest,
        ModuleRef, PutFileRequest, PutFunctionRequest, SetStateRequest, StateKey, StateValue,
        UnlockRequest,
    };
    use std::sync::Mutex;

    /// Knows one function, `u/f` (module h1 until a test changes or removes it), and counts
    /// lookups.
    struct OneFunction(Mutex<u32>, Mutex<Option<FunctionInfo>>);

    impl OneFunction {
        fn new() -> Self {
            let f = FunctionInfo {
                module_hash: "h1".into(),
                ..FunctionInfo::default()
            };
            OneFunction(Mutex::new(0), Mutex::new(Some(f)))
        }
    }

    #[async_trait]
    impl StateApi for OneFunction {
        async fn put_function(&self, _: PutFunctionRequest) -> Result<FunctionInfo, ApiError> {
            unreachable!()
        }
        async fn get_function_info(&self, req: FunctionRef) -> Result<FunctionInfo, ApiError> {
            *self.0.lock().unwrap() += 1;
            let stored = self.1.lock().unwrap().clone();
            match (req.user.as_str(), req.function.as_str(), stored) {
                ("u", "f", Some(info)) => Ok(info),
                _ => Err(ApiError::not_found("no such function")),
            }
        }
        async fn get_function(&self, _: FunctionRef) -> Result<FunctionCode, ApiError> {
            unreachable!()
        }
        async fn list_functions(
            &self,
            _: fwasm_proto::pb::ListFunctionsRequest,
        ) -> Result<fwasm_proto::pb::FunctionList, ApiError> {
            unreachable!()
        }
        async fn delete_function(&self, _: FunctionRef) -> Result<(), ApiError> {
            unreachable!()
        }
        async fn list_keys(
            &self,
            _: fwasm_proto::pb::ListKeysRequest,
        ) -> Result<fwasm_proto::pb::KeyList, ApiError> {
            unreachable!()
        }
        async fn get_module(&self, _: ModuleRef) -> Result<FunctionCode, ApiError> {
            unreachable!()
        }
        async fn get_state(&self, _: StateKey) -> Result<StateValue, ApiError> {
            unreachable!("the scheduler never touches state")
        }
        async fn set_state(&self, _: SetStateRequest) -> Result<(), ApiError> {
            unreachable!("the scheduler never touches state")
        }
        async fn state_size(&self, _: StateKey) -> Result<u64, ApiError> {
            unreachable!("the scheduler never touches state")
        }
        async fn delete_state(&self, _: StateKey) -> Result<(), ApiError> {
            unreachable!("the scheduler never touches state")
        }
        async fn write_state(
            &self,
            _: fwasm_proto::pb::WriteStateRequest,
        ) -> Result<fwasm_proto::pb::WriteStateReply, ApiError> {
            unreachable!("the scheduler never touches state")
        }
        async fn next_id(&self, _: StateKey) -> Result<u64, ApiError> {
            unreachable!("the scheduler never touches state")
        }
        async fn append_state(&self, _: SetStateRequest) -> Result<(), ApiError> {
            unreachable!("the scheduler never touches state")
        }
        async fn read_appended(&self, _: StateKey) -> Result<AppendedState, ApiError> {
            unreachable!("the scheduler never touches state")
        }
        async fn clear_appended(&self, _: StateKey) -> Result<(), ApiError> {
            unreachable!("the scheduler never touches state")
        }
        async fn lock_state(&self, _: LockRequest) -> Result<LockReply, ApiError> {
            unreachable!("the scheduler never touches state")
        }
        async fn unlock_state(&self, _: UnlockRequest) -> Result<(), ApiError> {
            unreachable!("the scheduler never touches state")
        }
        async fn put_file(&self, _: PutFileRequest) -> Result<(), ApiError> {
            unreachable!("the scheduler never touches files")
        }
        async fn get_file(&self, _: FileRef) -> Result<FileData, ApiError> {
            unreachable!("the scheduler never touches files")
        }
        async fn delete_file(&self, _: FileRef) -> Result<(), ApiError> {
            unreachable!("the scheduler never touches files")
        }
        async fn list_files(
            &self,
            _: fwasm_proto::pb::ListFilesRequest,
        ) -> Result<fwasm_proto::pb::FileList, ApiError> {
            unreachable!("the scheduler never touches files")
        }
        async fn subscribe(&self, _: fwasm_proto::pb::Subscription) -> Result<(), ApiError> {
            unreachable!("the scheduler never touches subscriptions")
        }
        async fn unsubscribe(&self, _: fwasm_proto::pb::Subscription) -> Result<(), ApiError> {
            unreachable!("the scheduler never touches subscriptions")
        }
        async fn list_subscriptions(
            &self,
            _: fwasm_proto::pb::ListSubscriptionsRequest,
        ) -> Result<fwasm_proto::pb::SubscriptionList, ApiError> {
            unreachable!("the scheduler never touches subscriptions")
        }
        async fn save_call(&self, _: SaveCallRequest) -> Result<(), ApiError> {
            unreachable!("these tests keep calls in memory")
        }
        async fn load_call(&self, _: CallRef) -> Result<LoadedCall, ApiError> {
            unreachable!("these tests keep calls in memory")
        }
        async fn put_token(&self, _: fwasm_proto::pb::TokenRecord) -> Result<(), ApiError> {
            unreachable!("the scheduler never touches tokens")
        }
        async fn get_token(
            &self,
            _: fwasm_proto::pb::TokenRef,
        ) -> Result<fwasm_proto::pb::TokenRecord, ApiError> {
            unreachable!("the scheduler never touches tokens")
        }
        async fn delete_token(&self, _: fwasm_proto::pb::TokenRef) -> Result<(), ApiError> {
            unreachable!("the scheduler never touches tokens")
        }
        async fn list_tokens(
            &self,
            _: fwasm_proto::pb::ListTokensRequest,
        ) -> Result<fwasm_proto::pb::TokenList, ApiError> {
            unreachable!("the scheduler never touches tokens")
        }
        async fn put_quota(&self, _: fwasm_proto::pb::UserQuota) -> Result<(), ApiError> {
            unreachable!("the scheduler only reads quotas")
        }
        async fn list_quotas(
            &self,
            _: fwasm_proto::pb::ListQuotasRequest,
        ) -> Result<fwasm_proto::pb::QuotaList, ApiError> {
            Ok(fwasm_proto::pb::QuotaList::default())
        }
        async fn get_usage(
            &self,
            _: fwasm_proto::pb::QuotaRef,
        ) -> Result<fwasm_proto::pb::StorageUsage, ApiError> {
            unreachable!("the scheduler never asks for usage")
        }
        async fn put_snapshot(
            &self,
            _: fwasm_proto::pb::PutSnapshotRequest,
        ) -> Result<(), ApiError> {
            unreachable!("the scheduler never touches snapshots")
        }
        async fn get_snapshot(
            &self,
            _: fwasm_proto::pb::SnapshotRef,
        ) -> Result<fwasm_proto::pb::StoredSnapshot, ApiError> {
            unreachable!("the scheduler never touches snapshots")
        }
    }

    fn scheduler(executors: usize) -> (Scheduler, Arc<OneFunction>) {
        scheduler_with(executors, SchedulerConfig::default())
    }

    /// A scheduler configured as `config`, with `executors` executors e0, e1, ...
    fn scheduler_with(executors: usize, config: SchedulerConfig) -> (Scheduler, Arc<OneFunction>) {
        let state = Arc::new(OneFunction::new());
        let executors = (0..executors)
            .map(|i| ExecutorEndpoint {
                id: format!("e{i}"),
                addr: format!("127.0.0.1:{}", 9000 + i),
            })
            .collect();
        let config = SchedulerConfig {
            executors,
            ..config
        };
        let directory = Arc::new(fwasm_proto::directory::RemoteExecutors::default());
        (Scheduler::new(config, state.clone(), directory), state)
    }

    #[tokio::test]
    async fn background_calls_queue_boundedly_then_are_refused_and_none_waits_forever() {
        let state = Arc::new(OneFunction::new());
        let config = SchedulerConfig {
            max_queued_calls: 2,
            // Long enough that the third submit surely comes while two wait.
            max_queue_wait: Duration::from_secs(1),
            // The executor stays a member (it beats only once) for the whole test.
            heartbeat_interval: Duration::from_secs(20),
            ..SchedulerConfig::default()
        };
        let directory = Arc::new(fwasm_proto::directory::RemoteExecutors::default());
        let scheduler = Scheduler::new(config, state, directory);
        // The one executor is full.
        scheduler
            .heartbeat(ExecutorHeartbeat {
                executor_id: "e0".into(),
                addr: "127.0.0.1:9".into(),
                capacity: 1,
                live_calls: 1,
                ..ExecutorHeartbeat::default()
            })
            .await
            .unwrap();
        let submit = submit_u_f;
        let first = scheduler.submit(submit()).await.unwrap();
        let second = scheduler.submit(submit()).await.unwrap();
        let refused = scheduler.submit(submit()).await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::ResourceExhausted);
        assert_eq!(
            refused.message,
            "2 background calls are already waiting or running; retry shortly"
        );
        // The queued ones wait their time, then end failed with the reason.
        for placement in [first, second] {
            let record = scheduler
                .wait_call(WaitCallRequest {
                    id: placement.call_id,
                    timeout_ms: 30_000,
                    ..WaitCallRequest::default()
                })
                .await
                .unwrap();
            assert_eq!(record.status(), CallStatus::Failed);
            assert!(
                record.error.ends_with(
                    "all 1 executors are running as many calls as they admit; retry shortly"
                ),
                "{}",
                record.error
            );
        }
        // The queue has room again.
        scheduler.submit(submit()).await.unwrap();
    }

    /// Executors that die under the first `drops` calls they are given (the connection
    /// breaks: Unavailable) and run the rest; remembers which executor each attempt went to.
    struct Dying {
        drops: usize,
        tried: Mutex<Vec<String>>,
    }

    struct Attempt(bool);

    impl ExecutorDirectory for Dying {
        fn executor(
            &self,
            placement: &Placement,
        ) -> Result<Arc<dyn fwasm_proto::api::ExecutorApi>, ApiError> {
            let mut tried = self.tried.lock().unwrap();
            tried.push(placement.executor_id.clone());
            Ok(Arc::new(Attempt(tried.len() > self.drops)))
        }
    }

    #[async_trait]
    impl fwasm_proto::api::ExecutorApi for Attempt {
        async fn execute(&self, call: Call) -> Result<CallResult, ApiError> {
            if !self.0 {
                return Err(ApiError::unavailable("connection reset by peer"));
            }
            Ok(CallResult {
                id: call.id,
                status: CallStatus::Success.into(),
                output: b"ran".to_vec().into(),
                ..CallResult::default()
            })
        }
    }

    /// A scheduler with `n` idle executors joined by heartbeat, reaching them through `dying`.
    async fn with_dying_executors(n: usize, dying: Arc<Dying>) -> Scheduler {
        let state = Arc::new(OneFunction::new());
        // The executors stay members (they beat only once) for the whole test.
        let config = SchedulerConfig {
            heartbeat_interval: Duration::from_secs(20),
            ..SchedulerConfig::default()
        };
        let scheduler = Scheduler::new(config, state, dying);
        for i in 0..n {
            let beat = ExecutorHeartbeat {
                executor_id: format!("e{i}"),
                addr: format!("127.0.0.1:{}", 9000 + i),
                capacity: 4,
                ..ExecutorHeartbeat::default()
            };
            scheduler.heartbeat(beat).await.unwrap();
        }
        scheduler
    }

    /// A background call of `u/f`.
    fn submit_u_f() -> SubmitRequest {
        SubmitRequest {
            call: Some(Call {
                user: "u".into(),
                function: "f".into(),
                ..Call::default()
            }),
            ..SubmitRequest::default()
        }
    }

    async fn submit_and_wait(scheduler: &Scheduler) -> CallRecord {
        let id = scheduler.submit(submit_u_f()).await.unwrap().call_id;
        let wait = WaitCallRequest {
            id,
            timeout_ms: 30_000,
            ..WaitCallRequest::default()
        };
        scheduler.wait_call(wait).await.unwrap()
    }

    #[tokio::test]
    async fn a_background_call_whose_executor_dies_runs_again_on_another() {
        let dying = Arc::new(Dying {
            drops: 1,
            tried: Mutex::default(),
        });
        let scheduler = with_dying_executors(3, dying.clone()).await;
        let record = submit_and_wait(&scheduler).await;
        let tried = dying.tried.lock().unwrap().clone();
        assert_eq!(tried.len(), 2, "{tried:?}");
        assert_ne!(tried[0], tried[1], "not the executor that died");
        assert_eq!(
            (record.status(), &record.output[..], &record.executor_id),
            (CallStatus::Success, &b"ran"[..], &tried[1])
        );
    }

    #[tokio::test]
    async fn a_background_call_is_tried_on_at_most_three_executors() {
        let dying = Arc::new(Dying {
            drops: usize::MAX,
            tried: Mutex::default(),
        });
        let scheduler = with_dying_executors(5, dying.clone()).await;
        let record = submit_and_wait(&scheduler).await;
        let mut tried = dying.tried.lock().unwrap().clone();
        assert_eq!(tried.len(), MAX_DISPATCH_ATTEMPTS as usize, "{tried:?}");
        tried.sort();
        tried.dedup();
        assert_eq!(tried.len(), 3, "each attempt on another executor");
        assert_eq!(record.status(), CallStatus::Failed);
        assert!(
            record.error.ends_with("connection reset by peer"),
            "the reason: {}",
            record.error
        );
    }

    /// Tells `s` that call `id` succeeded, as its executor does.
    async fn report_success(s: &Scheduler, id: u64) {
        let result = CallResult {
            id,
            status: CallStatus::Success as i32,
            ..CallResult::default()
        };
        s.call_finished(result).await.unwrap();
    }

    #[tokio::test]
    async fn a_queued_call_cancelled_ends_at_once_and_never_reaches_an_executor() {
        let executors = Arc::new(Dying {
            drops: 0,
            tried: Mutex::default(),
        });
        let scheduler = with_dying_executors(0, executors.clone()).await;
        let beat = |live_calls| ExecutorHeartbeat {
            executor_id: "e0".into(),
            addr: "127.0.0.1:9".into(),
            capacity: 1,
            live_calls,
            ..ExecutorHeartbeat::default()
        };
        // The one executor is full: the call waits in the queue.
        scheduler.heartbeat(beat(1)).await.unwrap();
        let queued = scheduler.submit(submit_u_f()).await.unwrap().call_id;
        let at = |id| CallRef {
            id,
            ..CallRef::default()
        };
        let cancelled = scheduler.cancel_call(at(queued)).await.unwrap();
        assert_eq!(
            (
                cancelled.status(),
                cancelled.failure(),
                cancelled.error.as_str()
            ),
            (
                CallStatus::Failed,
                FailureKind::Cancelled,
                "u/f was cancelled before it started"
            )
        );
        // Room comes: the next call runs there; the cancelled one never does.
        scheduler.heartbeat(beat(0)).await.unwrap();
        assert_eq!(
            submit_and_wait(&scheduler).await.status(),
            CallStatus::Success
        );
        assert_eq!(executors.tried.lock().unwrap().len(), 1);
        let again = scheduler.cancel_call(at(queued)).await.unwrap_err();
        assert_eq!(
            (again.code, again.message),
            (
                ErrorCode::FailedPrecondition,
                format!("call {queued} has already ended (cancelled); there is nothing to cancel")
            )
        );
        let unknown = scheduler.cancel_call(at(queued + 100)).await.unwrap_err();
        assert_eq!(unknown.code, ErrorCode::NotFound);
    }

    #[tokio::test]
    async fn calls_are_listed_newest_first_by_user_status_and_page_without_their_outputs() {
        let (s, _) = scheduler(1);
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(s.place(place("f")).await.unwrap().call_id);
        }
        let done = CallResult {
            id: ids[1],
            status: CallStatus::Success as i32,
            output: b"out".to_vec().into(),
            logs: b"log".to_vec().into(),
            ..CallResult::default()
        };
        s.call_finished(done).await.unwrap();
        let list = |req: ListCallsRequest| {
            let s = &s;
            async move {
                let listed = s.list_calls(req).await.unwrap().calls;
                listed.iter().map(|r| r.id).collect::<Vec<_>>()
            }
        };
        let of = |user: &str| ListCallsRequest {
            user: user.into(),
            ..ListCallsRequest::default()
        };
        assert_eq!(list(of("u")).await, [ids[2], ids[1], ids[0]]);
        assert_eq!(list(of("")).await, [ids[2], ids[1], ids[0]]);
        assert_eq!(list(of("v")).await, Vec::<u64>::new());
        let running = ListCallsRequest {
            status: CallStatus::Running as i32,
            ..of("u")
        };
        assert_eq!(list(running).await, [ids[2], ids[0]]);
        let first = ListCallsRequest {
            limit: 1,
            ..of("u")
        };
        assert_eq!(list(first).await, [ids[2]]);
        let next = ListCallsRequest {
            before_id: ids[2],
            ..of("u")
        };
        assert_eq!(list(next).await, [ids[1], ids[0]]);
        // A call no longer kept, or another user's, starts no page.
        for (before_id, user) in [(ids[2] + 1000, "u"), (ids[2], "v")] {
            let gone = ListCallsRequest {
                before_id,
                ..of(user)
            };
            assert_eq!(
                s.list_calls(gone).await.unwrap_err().code,
                ErrorCode::NotFound
            );
        }
        let other = ListCallsRequest {
            function: "g".into(),
            ..of("u")
        };
        assert_eq!(list(other).await, Vec::<u64>::new());
        let listed = s.list_calls(of("u")).await.unwrap().calls;
        assert!(listed[1].output.is_empty() && listed[1].logs.is_empty());
        let kept = s.get_call(CallRef {
            id: ids[1],
            ..CallRef::default()
        });
        assert_eq!(&kept.await.unwrap().output[..], b"out");
    }

    fn place(f: &str) -> PlaceRequest {
        PlaceRequest {
            user: "u".into(),
            function: f.into(),
            ..PlaceRequest::default()
        }
    }

    #[tokio::test]
    async fn places_with_fresh_call_ids_and_resolves_each_function_once() {
        let (s, state) = scheduler(1);
        let a = s.place(place("f")).await.unwrap();
        let b = s.place(place("f")).await.unwrap();
        assert_eq!(
            (a.module_hash.as_str(), a.executor_addr.as_str()),
            ("h1", "127.0.0.1:9000")
        );
        assert_ne!(a.call_id, b.call_id);
        assert_eq!(
            *state.0.lock().unwrap(),
            1,
            "the second placement used the cache"
        );
    }

    #[tokio::test]
    async fn an_upload_notification_switches_the_module_at_once() {
        let (s, state) = scheduler(1);
        s.place(place("f")).await.unwrap();
        let info = FunctionInfo {
            user: "u".into(),
            function: "f".into(),
            module_hash: "h2".into(),
            size: 1,
            settings: Some(FunctionSettings {
                env: [("K".to_string(), "v".to_string())].into(),
                ..FunctionSettings::default()
            }),
            ..FunctionInfo::default()
        };
        // As an upload does: the state service first, then the notice.
        *state.1.lock().unwrap() = Some(info.clone());
        s.function_updated(info.clone()).await.unwrap();
        let placement = s.place(place("f")).await.unwrap();
        // The placement carries the settings for the call to take to its executor.
        assert_eq!(
            (placement.module_hash.as_str(), placement.settings),
            ("h2", info.settings)
        );
    }

    #[tokio::test]
    async fn a_deleted_function_is_placed_no_more() {
        let (s, state) = scheduler(1);
        s.place(place("f")).await.unwrap();
        *state.1.lock().unwrap() = None;
        let gone = FunctionRef {
            user: "u".into(),
            function: "f".into(),
        };
        s.function_deleted(gone).await.unwrap();
        let refused = s.place(place("f")).await.unwrap_err();
        assert_eq!(refused.code, fwasm_proto::ErrorCode::NotFound);
    }

    #[tokio::test]
    async fn a_module_sticks_to_the_executor_that_ran_it_until_it_is_busier_than_the_rest() {
        let (s, _) = scheduler(3);
        let first = s.place(place("f")).await.unwrap().executor_id;
        // Nothing reports calls ending here, so each placement adds to the load.
        for _ in 0..4 {
            assert_eq!(s.place(place("f")).await.unwrap().executor_id, first);
        }
        assert_ne!(s.place(place("f")).await.unwrap().executor_id, first);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_poll_right_after_a_sync_answer_waits_for_the_report_on_its_way() {
        let (s, _) = scheduler(1);
        let s = Arc::new(s);
        let placed = s.place(place("f")).await.unwrap();
        let poll = {
            let s = s.clone();
            tokio::spawn(async move {
                let id = CallRef {
                    id: placed.call_id,
                    ..CallRef::default()
                };
                s.get_call(id).await
            })
        };
        // The poll is waiting (one thread: it ran until it had to) when the report lands.
        tokio::task::yield_now().await;
        assert!(!poll.is_finished());
        report_success(&s, placed.call_id).await;
        assert_eq!(poll.await.unwrap().unwrap().status(), CallStatus::Success);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_poll_of_a_chained_call_waits_for_its_report_unless_asked_for_what_is_known_now() {
        let (s, _) = scheduler(1);
        let mut req = place("f");
        req.parent_id = 7;
        let placed = s.place(req).await.unwrap();
        let (id, user) = (placed.call_id, String::new());
        // Its caller awaits it on its executor, so may know it ended before the table does.
        let started = tokio::time::Instant::now();
        let poll = s
            .get_call(CallRef {
                id,
                user: user.clone(),
                at_once: false,
            })
            .await;
        assert_eq!(poll.unwrap().status(), CallStatus::Running);
        assert_eq!(started.elapsed(), REPORT_GRACE);
        // An executor's `await` that only looks gets what the table holds, at once.
        let started = tokio::time::Instant::now();
        let look = s
            .get_call(CallRef {
                id,
                user,
                at_once: true,
            })
            .await;
        assert_eq!(look.unwrap().status(), CallStatus::Running);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test]
    async fn placed_calls_are_recorded_with_their_parent_until_they_finish() {
        let (s, _) = scheduler(2);
        let mut req = place("f");
        req.parent_id = 42;
        req.executor_id = "e1".into();
        let placed = s.place(req).await.unwrap();
        assert_eq!(
            placed.executor_id, "e1",
            "placed where the chaining executor asked"
        );
        let record = s
            .get_call(CallRef {
                id: placed.call_id,
                ..CallRef::default()
            })
            .await
            .unwrap();
        assert_eq!(
            (record.status(), record.parent_id, record.user.as_str()),
            (CallStatus::Running, 42, "u")
        );
        report_success(&s, placed.call_id).await;
        let wait = WaitCallRequest {
            id: placed.call_id,
            ..WaitCallRequest::default()
        };
        assert_eq!(
            s.wait_call(wait).await.unwrap().status(),
            CallStatus::Success
        );
        let missing = s
            .get_call(CallRef {
                id: 1,
                ..CallRef::default()
            })
            .await
            .unwrap_err();
        assert_eq!(missing.code, ErrorCode::NotFound);
        assert!(missing.message.starts_with("no call with id 1 is known"));
        // Asked for one user's calls, another user's call is as unknown as one that never was.
        let own = CallRef {
            id: placed.call_id,
            user: "u".into(),
            ..CallRef::default()
        };
        assert_eq!(s.get_call(own).await.unwrap().user, "u");
        let others = CallRef {
            id: placed.call_id,
            user: "v".into(),
            ..CallRef::default()
        };
        let hidden = s.get_call(others).await.unwrap_err();
        assert_eq!(hidden.code, ErrorCode::NotFound);
        assert_eq!(
            hidden.message,
            missing
                .message
                .replace("id 1 ", &format!("id {} ", placed.call_id))
        );
    }

    #[tokio::test]
    async fn call_ids_are_unique_across_restarts() {
        let (first, _) = scheduler(1);
        let last = first.place(place("f")).await.unwrap().call_id;
        std::thread::sleep(std::time::Duration::from_millis(2));
        let (second, _) = scheduler(1);
        assert!(second.place(place("f")).await.unwrap().call_id > last);
        assert!(last < 1 << 53, "ids stay exact in JSON numbers");
    }

    fn lease_of(f: &str) -> LeaseRequest {
        LeaseRequest {
            user: "u".into(),
            function: f.into(),
            ..LeaseRequest::default()
        }
    }

    /// What a gateway sends for a call it started from a lease on executor e0.
    fn started(id: u64) -> RecordCallsRequest {
        RecordCallsRequest {
            records: vec![CallRecord {
                id,
                user: "u".into(),
                function: "f".into(),
                executor_id: "e0".into(),
                submitted_unix_micros: unix_micros(),
                ..CallRecord::default()
            }],
        }
    }

    fn at_once(id: u64) -> CallRef {
        CallRef {
            id,
            at_once: true,
            ..CallRef::default()
        }
    }

    #[tokio::test]
    async fn calls_from_a_lease_are_known_once_recorded_whether_reported_before_or_after() {
        let (s, _) = scheduler(1);
        let lease = s.lease(lease_of("f")).await.unwrap();
        assert!(!lease.place_each);
        assert_eq!(
            (
                lease.module_hash.as_str(),
                lease.executor_id.as_str(),
                lease.executor_addr.as_str(),
                lease.call_ids
            ),
            ("h1", "e0", "127.0.0.1:9000", LEASE_IDS)
        );
        let (a, b) = (lease.first_call_id, lease.first_call_id + 1);
        let placed = s.place(place("f")).await.unwrap();
        assert!(
            placed.call_id >= a + u64::from(LEASE_IDS),
            "no placement reuses a leased id"
        );

        s.record_calls(started(a)).await.unwrap();
        let record = s.get_call(at_once(a)).await.unwrap();
        assert_eq!(
            (
                record.status(),
                record.user.as_str(),
                record.executor_id.as_str()
            ),
            (CallStatus::Running, "u", "e0")
        );
        report_success(&s, a).await;
        assert_eq!(
            s.get_call(at_once(a)).await.unwrap().status(),
            CallStatus::Success
        );

        // Its executor's report came before the gateway's record: the record takes it.
        report_success(&s, b).await;
        s.record_calls(started(b)).await.unwrap();
        assert_eq!(
            s.get_call(at_once(b)).await.unwrap().status(),
            CallStatus::Success
        );
        // A batch sent twice changes nothing.
        s.record_calls(started(b)).await.unwrap();
        assert_eq!(
            s.get_call(at_once(b)).await.unwrap().status(),
            CallStatus::Success
        );
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_poll_of_a_leased_call_not_recorded_yet_waits_briefly_for_its_record() {
        let (s, _) = scheduler(1);
        let s = Arc::new(s);
        let id = s.lease(lease_of("f")).await.unwrap().first_call_id;
        let poll = {
            let s = s.clone();
            tokio::spawn(async move { s.get_call(at_once(id)).await })
        };
        tokio::task::yield_now().await;
        assert!(!poll.is_finished(), "waits for the record on its way");
        s.record_calls(started(id)).await.unwrap();
        assert_eq!(poll.await.unwrap().unwrap().status(), CallStatus::Running);

        // Never recorded: unknown after the grace; never leased: unknown at once.
        let asked = tokio::time::Instant::now();
        let err = s.get_call(at_once(id + 1)).await.unwrap_err();
        assert_eq!(
            (err.code, asked.elapsed()),
            (ErrorCode::NotFound, REPORT_GRACE)
        );
        let asked = tokio::time::Instant::now();
        let err = s.get_call(at_once(id + 1000)).await.unwrap_err();
        assert_eq!(
            (err.code, asked.elapsed()),
            (ErrorCode::NotFound, Duration::ZERO)
        );
    }

    #[tokio::test]
    async fn a_record_of_an_id_no_lease_gave_is_refused() {
        let (s, _) = scheduler(1);
        let placed = s.place(place("f")).await.unwrap();
        let err = s
            .record_calls(started(placed.call_id + 5))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        assert!(
            err.message.contains("not given ids from a lease"),
            "{}",
            err.message
        );
        let unknown = s.get_call(at_once(placed.call_id + 5)).await.unwrap_err();
        assert_eq!(unknown.code, ErrorCode::NotFound);
    }

    #[tokio::test]
    async fn a_user_with_a_quota_of_calls_gets_no_lease_until_it_has_none() {
        let (s, _) = scheduler(1);
        let quota = |max_concurrent_calls, calls_per_second| UserQuota {
            user: "u".into(),
            max_concurrent_calls,
            calls_per_second,
            ..UserQuota::default()
        };
        for limited in [quota(2, 0.0), quota(0, 5.0)] {
            s.set_quota(limited).await.unwrap();
            let lease = s.lease(lease_of("f")).await.unwrap();
            assert!(lease.place_each && lease.call_ids == 0 && lease.valid_ms > 0);
        }
        s.set_quota(quota(0, 0.0)).await.unwrap();
        assert!(!s.lease(lease_of("f")).await.unwrap().place_each);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_call_chained_by_a_leased_call_not_recorded_yet_counts_in_its_tree() {
        let tree_limit = SchedulerConfig {
            max_tree_calls: 2,
            ..SchedulerConfig::default()
        };
        let s = Arc::new(scheduler_with(1, tree_limit).0);
        let root = s.lease(lease_of("f")).await.unwrap().first_call_id;
        let chain = || {
            let s = s.clone();
            let mut req = place("f");
            req.parent_id = root;
            tokio::spawn(async move { s.place(req).await })
        };
        let first = chain();
        tokio::task::yield_now().await;
        assert!(!first.is_finished(), "waits for its parent's record");
        s.record_calls(started(root)).await.unwrap();
        first.await.unwrap().unwrap();
        let second = chain().await.unwrap().unwrap_err();
        assert_eq!(second.code, ErrorCode::ResourceExhausted);
        assert!(
            second.message.contains(&format!("started by call {root}")),
            "{}",
            second.message
        );
    }

    #[tokio::test]
    async fn a_lease_for_chained_calls_reserves_its_ids_in_the_trees_limit() {
        let tree_limit = SchedulerConfig {
            max_tree_calls: 8,
            ..SchedulerConfig::default()
        };
        let (s, _) = scheduler_with(1, tree_limit);
        let root = s.place(place("f")).await.unwrap().call_id;
        let chained_by = |parent_id| LeaseRequest {
            parent_id,
            executor_id: "e9".into(),
            ..lease_of("f")
        };
        let lease = s.lease(chained_by(root)).await.unwrap();
        assert!(!lease.place_each);
        assert_eq!(
            (
                lease.call_ids,
                lease.executor_id.as_str(),
                lease.executor_addr.as_str()
            ),
            (3, "e9", ""),
            "half the tree's room left, run by the executor asking"
        );
        let (child, grandchild) = (lease.first_call_id, lease.first_call_id + 1);
        let mut records = started(child);
        records.records.extend(started(grandchild).records);
        records.records[0].parent_id = root;
        records.records[1].parent_id = child;
        s.record_calls(records).await.unwrap();
        let record = s.get_call(at_once(grandchild)).await.unwrap();
        assert_eq!(
            (record.status(), record.parent_id),
            (CallStatus::Running, child)
        );

        // Leases take half the room left each time (4 places, then 2), then none: the
        // tree's last places go one by one, and past them a placement is refused.
        let sizes = [
            s.lease(chained_by(grandchild)).await.unwrap().call_ids,
            s.lease(chained_by(child)).await.unwrap().call_ids,
        ];
        assert_eq!(sizes, [2, 1]);
        assert!(s.lease(chained_by(grandchild)).await.unwrap().place_each);
        let mut req = place("f");
        req.parent_id = grandchild;
        s.place(req.clone()).await.unwrap();
        let refused = s.place(req).await.unwrap_err();
        assert!(
            refused.message.contains(&format!("started by call {root}")),
            "{}",
            refused.message
        );
        // A parent the table does not know: one by one too.
        assert!(s.lease(chained_by(root + 1000)).await.unwrap().place_each);
    }

    #[tokio::test]
    async fn a_batch_of_reports_ends_each_of_its_calls() {
        let (s, _) = scheduler(1);
        let a = s.place(place("f")).await.unwrap().call_id;
        let b = s.place(place("f")).await.unwrap().call_id;
        let failed = CallResult {
            id: b,
            status: CallStatus::Failed as i32,
            failure: FailureKind::Trap as i32,
            error: "trapped".into(),
            ..CallResult::default()
        };
        let success = CallResult {
            id: a,
            status: CallStatus::Success as i32,
            output: b"out".to_vec().into(),
            ..CallResult::default()
        };
        let batch = CallsFinishedRequest {
            results: vec![success, failed],
        };
        s.calls_finished(batch).await.unwrap();
        let (a, b) = (
            s.get_call(at_once(a)).await.unwrap(),
            s.get_call(at_once(b)).await.unwrap(),
        );
        assert_eq!(
            (a.status(), &a.output[..]),
            (CallStatus::Success, &b"out"[..])
        );
        assert_eq!(
            (b.status(), b.error.as_str()),
            (CallStatus::Failed, "trapped")
        );
    }

    #[tokio::test]
    async fn a_busy_executor_is_avoided_when_there_is_another() {
        let (s, _) = scheduler(2);
        let warm = s.place(place("f")).await.unwrap().executor_id;
        let submit = SubmitRequest {
            call: Some(Call {
                user: "u".into(),
                function: "f".into(),
                ..Call::default()
            }),
            busy_executor_id: warm.clone(),
        };
        let placed = s.submit(submit).await.unwrap();
        assert_ne!(placed.executor_id, warm);
        // The executor address is not reachable: the call ends FAILED as not run.
        let record = s
            .wait_call(WaitCallRequest {
                id: placed.call_id,
                timeout_ms: 10_000,
                ..WaitCallRequest::default()
            })
            .await
            .unwrap();
        assert_eq!(
            (record.status(), record.failure()),
            (CallStatus::Failed, fwasm_proto::pb::FailureKind::NotRun)
        );
        assert!(
            record.error.starts_with("u/f could not run: "),
            "{}",
            record.error
        );
    }

    #[tokio::test]
    async fn unknown_functions_bad_names_and_no_executors_are_errors() {
        let (s, _) = scheduler(1);
        assert_eq!(
            s.place(place("missing")).await.unwrap_err().code,
            ErrorCode::NotFound
        );
        assert_eq!(
            s.place(place("a/b")).await.unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        let (s, _) = scheduler(0);
        let err = s.place(place("f")).await.unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                ErrorCode::Unavailable,
                "no executors are available to run calls"
            )
        );
    }
}
