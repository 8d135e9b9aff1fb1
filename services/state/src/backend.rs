//! The storage trait every state backend implements.

use async_trait::async_trait;
use bytes::Bytes;

/// What a `user/function` name points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRecord {
    pub module_hash: String,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot open the store at {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("storage failure: {0}")]
    Storage(String),
}

/// Durable storage. An acknowledged write survives a restart.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Stores `wasm` under `record.module_hash` and points `user/function` at it, atomically.
    async fn put_function(
        &self,
        user: &str,
        function: &str,
        record: &FunctionRecord,
        wasm: Bytes,
    ) -> Result<(), BackendError>;

    async fn function(
        &self,
        user: &str,
        function: &str,
    ) -> Result<Option<FunctionRecord>, BackendError>;

    async fn module(&self, module_hash: &str) -> Result<Option<Bytes>, BackendError>;
}
