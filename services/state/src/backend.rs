//! The storage trait every state backend implements.

use std::time::Duration;

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
    /// A write would give the user a key beyond its limit.
    #[error("the user already has its limit of {max} state keys; delete some first")]
    TooManyKeys { max: u64 },
    /// An append would take a list past its limit in bytes.
    #[error("the append list would grow past its limit of {max} bytes; read it and clear it first")]
    ListFull { max: u64 },
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

    // The global state tier. A user's keys are its own: every method takes the user. A key
    // "exists" while it has a value or a non-empty append list; the user's count of existing
    // keys is what `max_keys` limits.

    /// The value of `key`, `None` if it has none.
    async fn get_state(&self, user: &str, key: &str) -> Result<Option<Bytes>, BackendError>;

    /// The size of the value of `key`, 0 if it has none.
    async fn state_size(&self, user: &str, key: &str) -> Result<u64, BackendError>;

    /// Sets the value of `key`. Refused with [`BackendError::TooManyKeys`] if `key` does not
    /// exist yet and the user already has `max_keys` keys.
    async fn set_state(
        &self,
        user: &str,
        key: &str,
        value: Bytes,
        max_keys: u64,
    ) -> Result<(), BackendError>;

    /// Removes the value and the append list of `key`. Removing a missing key is not an error.
    async fn delete_state(&self, user: &str, key: &str) -> Result<(), BackendError>;

    /// Adds `element` at the end of the append list of `key`, with the same key limit as
    /// [`Backend::set_state`]. Refused with [`BackendError::ListFull`] if the list's elements
    /// would then add up to more than `max_list_bytes` (a reader gets the whole list at once).
    async fn append_state(
        &self,
        user: &str,
        key: &str,
        element: Bytes,
        max_keys: u64,
        max_list_bytes: u64,
    ) -> Result<(), BackendError>;

    /// The append list of `key` in the order its elements were added; empty if it has none.
    async fn read_appended(&self, user: &str, key: &str) -> Result<Vec<Bytes>, BackendError>;

    /// Empties the append list of `key` (its value stays).
    async fn clear_appended(&self, user: &str, key: &str) -> Result<(), BackendError>;

    /// Stores a shared file at `path` (already in canonical form), replacing any there.
    async fn put_file(&self, path: &str, data: Bytes) -> Result<(), BackendError>;

    /// The shared file at `path`, `None` if there is none.
    async fn file(&self, path: &str) -> Result<Option<Bytes>, BackendError>;

    /// Keeps an encoded call record under its id, replacing any there, for about `ttl`.
    async fn save_call(&self, id: u64, record: Bytes, ttl: Duration) -> Result<(), BackendError>;

    /// The encoded call record saved under `id`, `None` if there is none (or it expired).
    async fn call(&self, id: u64) -> Result<Option<Bytes>, BackendError>;
}
