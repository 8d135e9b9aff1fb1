//! The executor service: admission, module loading (cache, then the state service), and
//! handing calls to the worker pool.

use std::sync::Arc;

use async_trait::async_trait;
use fwasm_proto::ApiError;
use fwasm_proto::api::{ExecutorApi, StateApi};
use fwasm_proto::pb::{Call, CallResult, ModuleRef};
use tokio::sync::{Semaphore, oneshot};
use wasmi::{Engine, Linker, Module};

use crate::ExecutorConfig;
use crate::cache::ModuleCache;
use crate::call::CallTask;
use crate::host::{self, HostState};
use crate::limits::Limits;
use crate::pool::WorkerPool;
use crate::validate::check_abi;

pub struct Executor {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    limits: Arc<Limits>,
    cache: ModuleCache,
    pool: WorkerPool,
    state: Arc<dyn StateApi>,
    admission: Arc<Semaphore>,
    max_concurrent_calls: usize,
}

impl Executor {
    /// An executor that fetches modules it has not cached from `state`.
    pub fn new(config: ExecutorConfig, state: Arc<dyn StateApi>) -> Self {
        let mut wasmi_config = wasmi::Config::default();
        wasmi_config.consume_fuel(true);
        let engine = Engine::new(&wasmi_config);
        Self {
            linker: Arc::new(host::linker(&engine)),
            engine,
            limits: Arc::new(config.limits),
            cache: ModuleCache::new(config.module_cache_capacity),
            pool: WorkerPool::new(config.workers),
            state,
            admission: Arc::new(Semaphore::new(config.max_concurrent_calls)),
            max_concurrent_calls: config.max_concurrent_calls,
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
}

#[async_trait]
impl ExecutorApi for Executor {
    #[tracing::instrument(name = "executor.execute", skip_all, fields(call_id = call.id, user = %call.user, function = %call.function))]
    async fn execute(&self, call: Call) -> Result<CallResult, ApiError> {
        let _permit = self.admission.clone().try_acquire_owned().map_err(|_| {
            ApiError::resource_exhausted(format!(
                "executor is running its limit of {} calls; retry shortly",
                self.max_concurrent_calls
            ))
        })?;
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
}
