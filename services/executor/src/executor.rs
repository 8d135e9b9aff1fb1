//! The executor service: admission, module loading (cache, then the state service), handing
//! calls to the worker pool, reporting outcomes to the scheduler, and the chaining ops of
//! parked calls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use crossbeam_channel::Sender;
use fwasm_abi::HostStatus;
use fwasm_proto::api::{ExecutorApi, SchedulerApi, StateApi};
use fwasm_proto::outcome::not_run;
use fwasm_proto::pb::{
    Call, CallRef, CallResult, CallStatus, ModuleRef, PlaceRequest, SubmitRequest, WaitCallRequest,
};
use fwasm_proto::{ApiError, ErrorCode};
use tokio::sync::oneshot;
use tracing::Instrument;
use wasmi::{Engine, Linker, Module};

use crate::ExecutorConfig;
use crate::cache::ModuleCache;
use crate::call::CallTask;
use crate::chaining::{Ended, HostOp, OpResult, Refusal};
use crate::host::{self, HostState};
use crate::limits::Limits;
use crate::pool::WorkerPool;
use crate::validate::check_abi;

pub struct Executor {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    limits: Arc<Limits>,
    cache: ModuleCache,
    pool: WorkerPool,
    state: Arc<dyn StateApi>,
    scheduler: Arc<dyn SchedulerApi>,
    admission: Admission,
    /// Calls parked in a host call right now (awaiting, chaining).
    parked: AtomicUsize,
    /// Where parked calls' host ops run.
    runtime: tokio::runtime::Handle,
}

/// The caller of a host op, as the op needs to know it.
struct Parent {
    id: u64,
    user: String,
    depth: u32,
    time_left: Duration,
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
        let runtime = tokio::runtime::Handle::try_current()
            .expect("fwasm_executor::Executor::new must be called within a tokio runtime");
        let inner = Arc::new_cyclic(|inner: &Weak<Inner>| {
            let inner = inner.clone();
            let on_park = Arc::new(move |task, op, requeue: Sender<CallTask>| {
                // Gone only while the executor shuts down; the dropped task tells its caller.
                if let Some(inner) = inner.upgrade() {
                    inner.park(task, op, requeue);
                }
            });
            Inner {
                id: config.id,
                linker: Arc::new(host::linker(&engine)),
                engine,
                limits: Arc::new(config.limits),
                cache: ModuleCache::new(config.module_cache_capacity),
                pool: WorkerPool::new(config.workers, on_park),
                state,
                scheduler,
                admission: Admission {
                    live: Arc::new(AtomicUsize::new(0)),
                    max: config.max_concurrent_calls,
                },
                parked: AtomicUsize::new(0),
                runtime,
            }
        });
        Self { inner }
    }

    /// Calls admitted here and not yet ended: running, queued or parked.
    pub fn live_calls(&self) -> usize {
        self.inner.admission.live.load(Ordering::Acquire)
    }

    /// Calls parked in a host call (awaiting another call, or chaining): they hold no thread.
    pub fn parked_calls(&self) -> usize {
        self.inner.parked.load(Ordering::Acquire)
    }
}

#[async_trait]
impl ExecutorApi for Executor {
    #[tracing::instrument(name = "executor.execute", skip_all, fields(call_id = call.id, user = %call.user, function = %call.function))]
    async fn execute(&self, call: Call) -> Result<CallResult, ApiError> {
        self.inner.execute(call).await
    }
}

impl Inner {
    /// Runs an admitted call and reports its outcome. `Err` means it never ran; reporting that
    /// is left to whoever sent the call.
    async fn execute(&self, call: Call) -> Result<CallResult, ApiError> {
        let _admitted = self.admission.admit(call.parent_id != 0)?;
        let result = self.run(call).await?;
        self.report(result.clone()).await;
        Ok(result)
    }

    async fn run(&self, call: Call) -> Result<CallResult, ApiError> {
        let (module, cold_start) = self.module(&call.module_hash).await?;
        let (reply, result) = oneshot::channel();
        self.pool.submit(CallTask::new(
            call,
            module,
            self.linker.clone(),
            self.limits.clone(),
            cold_start,
            reply,
        ));
        result.await.map_err(|_| {
            ApiError::internal(
                "the executor lost the call before it finished (worker failure or shutdown)",
            )
        })
    }

    async fn report(&self, result: CallResult) {
        let id = result.id;
        if let Err(err) = self.scheduler.call_finished(result).await {
            tracing::warn!(call_id = id, error = %err, "could not report a call's outcome");
        }
    }

    /// The compiled module and whether it had to be loaded now (a cold start).
    async fn module(&self, module_hash: &str) -> Result<(Module, bool), ApiError> {
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
        let engine = self.engine.clone();
        // Compiling (validation and translation) is CPU work: keep it off the async workers.
        let module = tokio::task::spawn_blocking(move || {
            let module = Module::new(&engine, &code.wasm).map_err(|e| e.to_string())?;
            check_abi(&module).map_err(|e| e.to_string())?;
            Ok::<_, String>(module)
        })
        .await
        .map_err(|e| ApiError::internal(format!("module compilation task failed: {e}")))?
        .map_err(|e| ApiError::invalid_argument(format!("module {module_hash} cannot run: {e}")))?;
        self.cache.insert(module_hash.to_string(), module.clone());
        Ok((module, true))
    }

    /// Runs a parked call's op on the async runtime, then queues the call to resume.
    fn park(self: Arc<Self>, mut task: CallTask, op: HostOp, requeue: Sender<CallTask>) {
        let call = task.call();
        let parent = Parent {
            id: call.id,
            user: call.user.clone(),
            depth: call.depth,
            time_left: task.time_left(),
        };
        let span = task.span().clone();
        let runtime = self.runtime.clone();
        self.parked.fetch_add(1, Ordering::AcqRel);
        runtime.spawn(
            async move {
                let result = self.perform(&parent, op).await;
                task.complete_op(result);
                self.parked.fetch_sub(1, Ordering::AcqRel);
                let _ = requeue.send(task);
            }
            .instrument(span),
        );
    }

    async fn perform(self: &Arc<Self>, parent: &Parent, op: HostOp) -> OpResult {
        match op {
            HostOp::Chain { function, input } => {
                OpResult::Chained(self.chain(parent, function, input).await)
            }
            HostOp::Await { id, timeout } => OpResult::Awaited {
                id,
                ended: self.await_call(parent, id, timeout).await,
            },
        }
    }

    /// Starts a chained call: here while this executor has room, else wherever the scheduler
    /// finds room.
    async fn chain(
        self: &Arc<Self>,
        parent: &Parent,
        function: String,
        input: bytes::Bytes,
    ) -> Result<u64, Refusal> {
        let mut child = Call {
            path: format!("/f/{}/{function}", parent.user),
            user: parent.user.clone(),
            function,
            method: "POST".into(),
            input,
            parent_id: parent.id,
            depth: parent.depth + 1,
            ..Call::default()
        };
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
        let placement = self
            .scheduler
            .place(PlaceRequest {
                user: child.user.clone(),
                function: child.function.clone(),
                parent_id: child.parent_id,
                depth: child.depth,
                executor_id: self.id.clone(),
            })
            .await
            .map_err(|e| refusal("chain", e))?;
        child.id = placement.call_id;
        child.module_hash = placement.module_hash;
        let inner = self.clone();
        tokio::spawn(
            async move {
                let summary = Call {
                    input: bytes::Bytes::new(),
                    ..child.clone()
                };
                if let Err(err) = inner.execute(child).await {
                    inner.report(not_run(&summary, &err)).await;
                }
            }
            .instrument(tracing::info_span!(
                "executor.chained",
                call_id = placement.call_id
            )),
        );
        Ok(placement.call_id)
    }

    /// Waits for a call of the same user to end, at most `timeout` and never past the
    /// caller's own time limit.
    async fn await_call(
        &self,
        parent: &Parent,
        id: u64,
        timeout: Option<Duration>,
    ) -> Result<Ended, Refusal> {
        let limit = timeout.map_or(parent.time_left, |t| t.min(parent.time_left));
        let record = if timeout == Some(Duration::ZERO) {
            self.scheduler.get_call(CallRef { id }).await
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
                bytes: record.output,
            }),
            CallStatus::Failed => Ok(Ended {
                code: record.return_code.max(1),
                bytes: record.error.into(),
            }),
            _ => Err(Refusal::new(
                HostStatus::Timeout,
                format!("await: call {id} is still running after {limit:?}"),
            )),
        }
    }
}

fn refusal(op: &str, err: ApiError) -> Refusal {
    let status = match err.code {
        ErrorCode::NotFound => HostStatus::NotFound,
        ErrorCode::InvalidArgument => HostStatus::InvalidArgument,
        ErrorCode::PayloadTooLarge | ErrorCode::ResourceExhausted => HostStatus::LimitExceeded,
        ErrorCode::DeadlineExceeded => HostStatus::Timeout,
        ErrorCode::Unavailable | ErrorCode::Internal => HostStatus::Unavailable,
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
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    /// Calls from outside are refused when the executor is full. Chained calls never are:
    /// their callers are already here, and refusing them could leave every caller waiting.
    fn admit(&self, chained: bool) -> Result<Admitted, ApiError> {
        let before = self.live.fetch_add(1, Ordering::AcqRel);
        let admitted = Admitted(self.live.clone());
        if !chained && before >= self.max {
            return Err(ApiError::resource_exhausted(format!(
                "executor is running its limit of {} calls; retry shortly",
                self.max
            )));
        }
        Ok(admitted)
    }

    fn has_room(&self) -> bool {
        self.live.load(Ordering::Acquire) < self.max
    }
}
