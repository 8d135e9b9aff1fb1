//! What the gateway does, independent of the protocol a request came in on.

use std::sync::Arc;

use bytes::Bytes;
use fwasm_proto::api::{SchedulerApi, StateApi};
use fwasm_proto::pb::{
    Call, CallResult, FunctionRef, Header, PlaceRequest, PutFunctionRequest, UploadReply,
};
use fwasm_proto::{ApiError, ErrorCode, names};

use crate::GatewayConfig;
use crate::directory::ExecutorDirectory;

pub struct Gateway {
    config: GatewayConfig,
    scheduler: Arc<dyn SchedulerApi>,
    state: Arc<dyn StateApi>,
    executors: Arc<dyn ExecutorDirectory>,
}

/// A request to run a function, from any front door.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    pub user: String,
    pub function: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<Header>,
    pub input: Bytes,
}

impl Gateway {
    pub fn new(
        config: GatewayConfig,
        scheduler: Arc<dyn SchedulerApi>,
        state: Arc<dyn StateApi>,
        executors: Arc<dyn ExecutorDirectory>,
    ) -> Self {
        Self {
            config,
            scheduler,
            state,
            executors,
        }
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// Validates a module and stores it as `user/function`.
    #[tracing::instrument(name = "gateway.upload", skip_all, fields(%user, %function, size = wasm.len()))]
    pub async fn upload(
        &self,
        user: &str,
        function: &str,
        wasm: Bytes,
    ) -> Result<UploadReply, ApiError> {
        names::check_function_ref(user, function)?;
        if wasm.len() > self.config.max_module_bytes {
            return Err(too_large(
                "module",
                wasm.len(),
                self.config.max_module_bytes,
            ));
        }
        let checked = wasm.clone();
        // Validation compiles the module: CPU work, kept off the async workers.
        let abi = tokio::task::spawn_blocking(move || fwasm_executor::validate(&checked))
            .await
            .map_err(|e| ApiError::internal(format!("validation task failed: {e}")))?
            .map_err(|e| {
                ApiError::invalid_argument(format!("{user}/{function} was not uploaded: {e}"))
            })?;
        let info = self
            .state
            .put_function(PutFunctionRequest {
                user: user.into(),
                function: function.into(),
                wasm,
            })
            .await?;
        self.scheduler.function_updated(info.clone()).await?;
        tracing::info!(module_hash = %info.module_hash, %abi, "function uploaded");
        Ok(UploadReply {
            module_hash: info.module_hash,
            size: info.size,
            abi: abi.to_string(),
        })
    }

    /// The stored module of `user/function`.
    pub async fn download(&self, user: &str, function: &str) -> Result<Bytes, ApiError> {
        names::check_function_ref(user, function)?;
        let code = self
            .state
            .get_function(FunctionRef {
                user: user.into(),
                function: function.into(),
            })
            .await?;
        Ok(code.wasm)
    }

    /// Runs a call and waits for its result. A call that ran and failed is `Ok` with status
    /// FAILED; `Err` means it could not run.
    #[tracing::instrument(name = "gateway.invoke", skip_all, fields(user = %inv.user, function = %inv.function))]
    pub async fn invoke(&self, inv: Invocation) -> Result<CallResult, ApiError> {
        names::check_function_ref(&inv.user, &inv.function)?;
        if inv.input.len() > self.config.max_input_bytes {
            return Err(too_large(
                "input",
                inv.input.len(),
                self.config.max_input_bytes,
            ));
        }
        let placement = self
            .scheduler
            .place(PlaceRequest {
                user: inv.user.clone(),
                function: inv.function.clone(),
            })
            .await?;
        let executor = self.executors.executor(&placement)?;
        executor
            .execute(Call {
                id: placement.call_id,
                user: inv.user,
                function: inv.function,
                method: inv.method,
                path: inv.path,
                query: inv.query,
                headers: inv.headers,
                input: inv.input,
                module_hash: placement.module_hash,
            })
            .await
    }
}

pub(crate) fn too_large(what: &str, size: usize, limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("{what} of {size} bytes is over the limit of {limit} bytes"),
    )
}
