//! The state service's API implementation over any [`Backend`].

use std::sync::Arc;

use async_trait::async_trait;
use fwasm_proto::api::StateApi;
use fwasm_proto::pb::{FunctionCode, FunctionInfo, FunctionRef, ModuleRef, PutFunctionRequest};
use fwasm_proto::{ApiError, names};
use sha2::{Digest, Sha256};

use crate::backend::{Backend, BackendError, FunctionRecord};

pub struct StateService {
    backend: Arc<dyn Backend>,
}

impl StateService {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self { backend }
    }
}

impl From<BackendError> for ApiError {
    fn from(err: BackendError) -> Self {
        ApiError::unavailable(err.to_string())
    }
}

fn info(user: String, function: String, record: FunctionRecord) -> FunctionInfo {
    FunctionInfo {
        user,
        function,
        module_hash: record.module_hash,
        size: record.size,
    }
}

fn unknown_function(user: &str, function: &str) -> ApiError {
    ApiError::not_found(format!(
        "function {user}/{function} does not exist; upload it first"
    ))
}

#[async_trait]
impl StateApi for StateService {
    #[tracing::instrument(skip_all, fields(user = %req.user, function = %req.function, size = req.wasm.len()))]
    async fn put_function(&self, req: PutFunctionRequest) -> Result<FunctionInfo, ApiError> {
        names::check_function_ref(&req.user, &req.function)?;
        let record = FunctionRecord {
            module_hash: hex::encode(Sha256::digest(&req.wasm)),
            size: req.wasm.len() as u64,
        };
        self.backend
            .put_function(&req.user, &req.function, &record, req.wasm)
            .await?;
        Ok(info(req.user, req.function, record))
    }

    #[tracing::instrument(skip_all, fields(user = %req.user, function = %req.function))]
    async fn get_function_info(&self, req: FunctionRef) -> Result<FunctionInfo, ApiError> {
        match self.backend.function(&req.user, &req.function).await? {
            Some(record) => Ok(info(req.user, req.function, record)),
            None => Err(unknown_function(&req.user, &req.function)),
        }
    }

    #[tracing::instrument(skip_all, fields(user = %req.user, function = %req.function))]
    async fn get_function(&self, req: FunctionRef) -> Result<FunctionCode, ApiError> {
        let info = self.get_function_info(req).await?;
        self.get_module(ModuleRef {
            module_hash: info.module_hash,
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(module_hash = %req.module_hash))]
    async fn get_module(&self, req: ModuleRef) -> Result<FunctionCode, ApiError> {
        match self.backend.module(&req.module_hash).await? {
            Some(wasm) => Ok(FunctionCode {
                module_hash: req.module_hash,
                wasm,
            }),
            None => Err(ApiError::not_found(format!(
                "no module with hash {}",
                req.module_hash
            ))),
        }
    }
}
