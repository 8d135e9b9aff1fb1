//! fwasm's state service: the global store for uploaded function binaries and the global tier
//! of functions' state, behind one [`Backend`] trait with two implementations: the embedded
//! durable store (redb) and Redis. Global state locks live in the service itself, with leases.
//!
//! Modules are content-addressed: `user/function` points at a SHA-256 hash, and executors fetch
//! and cache modules by hash, so a re-upload can never be served from a stale cache.

mod backend;
mod embedded;
mod group_commit;
mod locks;
mod redis;
mod service;
mod storage_quotas;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use backend::{
    Backend, BackendError, FunctionRecord, LockMode, LockTry, StateOp, StorageQuota, Unlocked,
    Usage, Versioned,
};
pub use embedded::EmbeddedBackend;
pub use redis::RedisBackend;
pub use service::StateService;

/// Where the state service keeps its data, and its limits.
#[derive(Debug, Clone, Default)]
pub struct StateConfig {
    /// Directory of the embedded store (created if missing), used unless `redis_url` is set.
    pub data_dir: PathBuf,
    /// `redis://HOST:PORT`: keep everything in Redis instead of the embedded store.
    pub redis_url: Option<String>,
    pub limits: StateLimits,
    /// Serve over mutual TLS: only peers with a certificate the mesh's CA signed.
    pub tls: Option<fwasm_proto::tls::Tls>,
}

/// Limits on state, answered with clear errors.
#[derive(Debug, Clone)]
pub struct StateLimits {
    /// Largest value (and largest append list element).
    pub max_value_bytes: usize,
    /// Largest append list, all its elements together: a reader gets the whole list at once.
    pub max_list_bytes: u64,
    /// Most keys one user may have.
    pub max_keys_per_user: u64,
    /// Longest lease (and longest wait) of a global lock.
    pub max_lock_lease: Duration,
    /// Largest shared file.
    pub max_file_bytes: usize,
    /// Each user's most bytes stored (functions, state, files) unless it has its own quota;
    /// 0: no limit.
    pub max_stored_bytes_per_user: u64,
    /// Each user's most functions unless it has its own quota; 0: no limit.
    pub max_functions_per_user: u32,
}

impl Default for StateLimits {
    fn default() -> Self {
        Self {
            max_value_bytes: 16 << 20,
            max_list_bytes: 16 << 20,
            max_keys_per_user: 10_000,
            max_lock_lease: Duration::from_secs(600),
            max_file_bytes: 64 << 20,
            max_stored_bytes_per_user: 0,
            max_functions_per_user: 0,
        }
    }
}

impl StateConfig {
    /// Opens the configured backend and wraps it in the service.
    pub async fn open(&self) -> Result<StateService, BackendError> {
        let backend: Arc<dyn Backend> = match &self.redis_url {
            Some(url) => Arc::new(RedisBackend::connect(url).await?),
            None => Arc::new(EmbeddedBackend::open(&self.data_dir)?),
        };
        Ok(StateService::new(backend, self.limits.clone()))
    }
}

/// Serves the state service over gRPC on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: StateConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let service: Arc<dyn fwasm_proto::api::StateApi> = Arc::new(config.open().await?);
    fwasm_proto::grpc::serve(
        listener,
        fwasm_proto::grpc::StateServer(service).into_service(),
        config.tls.as_ref(),
        shutdown,
    )
    .await?;
    Ok(())
}
