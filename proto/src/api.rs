//! One trait per internal service. Implementations are either the service itself (in-process)
//! or a gRPC client ([`crate::grpc`]); callers cannot tell which.

use async_trait::async_trait;

use crate::ApiError;
use crate::pb::{
    Call, CallResult, FunctionCode, FunctionInfo, FunctionRef, ModuleRef, PlaceRequest, Placement,
    PutFunctionRequest,
};

/// The global store: function binaries now, the global state tier later.
#[async_trait]
pub trait StateApi: Send + Sync + 'static {
    async fn put_function(&self, req: PutFunctionRequest) -> Result<FunctionInfo, ApiError>;
    async fn get_function_info(&self, req: FunctionRef) -> Result<FunctionInfo, ApiError>;
    async fn get_function(&self, req: FunctionRef) -> Result<FunctionCode, ApiError>;
    async fn get_module(&self, req: ModuleRef) -> Result<FunctionCode, ApiError>;
}

/// Placement of calls on executors.
#[async_trait]
pub trait SchedulerApi: Send + Sync + 'static {
    async fn place(&self, req: PlaceRequest) -> Result<Placement, ApiError>;
    async fn function_updated(&self, info: FunctionInfo) -> Result<(), ApiError>;
}

/// Running calls.
#[async_trait]
pub trait ExecutorApi: Send + Sync + 'static {
    async fn execute(&self, call: Call) -> Result<CallResult, ApiError>;
}
