//! fwasm's state service: the global store for uploaded function binaries (and, later, the
//! global state tier), behind one [`Backend`] trait.
//!
//! Modules are content-addressed: `user/function` points at a SHA-256 hash, and executors fetch
//! and cache modules by hash, so a re-upload can never be served from a stale cache.

mod backend;
mod embedded;
mod service;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use backend::{Backend, BackendError, FunctionRecord};
pub use embedded::EmbeddedBackend;
pub use service::StateService;

/// Where the state service keeps its data.
#[derive(Debug, Clone)]
pub struct StateConfig {
    /// Directory of the embedded store (created if missing).
    pub data_dir: PathBuf,
}

impl StateConfig {
    /// Opens the configured backend and wraps it in the service.
    pub fn open(&self) -> Result<StateService, BackendError> {
        let backend = EmbeddedBackend::open(&self.data_dir)?;
        Ok(StateService::new(Arc::new(backend)))
    }
}

/// Serves the state service over gRPC on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: StateConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let service: Arc<dyn fwasm_proto::api::StateApi> = Arc::new(config.open()?);
    let routes = fwasm_proto::grpc::Routes::default()
        .add_service(fwasm_proto::grpc::StateServer(service).into_service());
    fwasm_proto::grpc::serve(listener, routes, shutdown).await?;
    Ok(())
}
