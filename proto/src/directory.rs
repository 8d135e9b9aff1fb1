//! Finding the executor a placement names.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::ApiError;
use crate::api::ExecutorApi;
use crate::grpc::{channel, executor_client};
use crate::pb::Placement;
use crate::tls::Tls;

pub trait ExecutorDirectory: Send + Sync + 'static {
    fn executor(&self, placement: &Placement) -> Result<Arc<dyn ExecutorApi>, ApiError>;
}

/// The executor in this process (`fwasm up`): no socket, no serialisation.
pub struct LocalExecutor(pub Arc<dyn ExecutorApi>);

impl ExecutorDirectory for LocalExecutor {
    fn executor(&self, _placement: &Placement) -> Result<Arc<dyn ExecutorApi>, ApiError> {
        Ok(self.0.clone())
    }
}

/// The executor in this process as the scheduler reaches it: set after both exist, and held
/// weakly, because the executor owns the scheduler it reports to.
#[derive(Default)]
pub struct BackReference(OnceLock<Weak<dyn ExecutorApi>>);

impl BackReference {
    /// Sets the executor; later calls are ignored.
    pub fn set(&self, executor: &Arc<dyn ExecutorApi>) {
        let _ = self.0.set(Arc::downgrade(executor));
    }
}

impl ExecutorDirectory for BackReference {
    fn executor(&self, _placement: &Placement) -> Result<Arc<dyn ExecutorApi>, ApiError> {
        self.0
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| ApiError::unavailable("the executor is not running"))
    }
}

/// Executors reached over gRPC, one lazily connected channel per address (over mutual TLS
/// when given the mesh's).
#[derive(Default)]
pub struct RemoteExecutors {
    clients: Mutex<HashMap<String, Arc<dyn ExecutorApi>>>,
    tls: Option<Tls>,
}

impl RemoteExecutors {
    pub fn new(tls: Option<Tls>) -> Self {
        Self {
            clients: Mutex::default(),
            tls,
        }
    }
}

impl ExecutorDirectory for RemoteExecutors {
    fn executor(&self, placement: &Placement) -> Result<Arc<dyn ExecutorApi>, ApiError> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(&placement.executor_addr) {
            return Ok(client.clone());
        }
        if placement.executor_addr.is_empty() {
            return Err(ApiError::internal(format!(
                "executor {} has no address this gateway can reach",
                placement.executor_id
            )));
        }
        let client: Arc<dyn ExecutorApi> = Arc::new(executor_client(channel(
            &placement.executor_addr,
            self.tls.as_ref(),
        )?));
        clients.insert(placement.executor_addr.clone(), client.clone());
        Ok(client)
    }
}
