//! fwasm's scheduler: decides which executor runs each call.
//!
//! It resolves `user/function` to the module hash to run (cached; uploads notify it), prefers
//! an executor that already ran that module (warm affinity), and otherwise spreads calls round
//! robin. It hands back a placement; the call's data then goes straight to that executor, so
//! the scheduler is one small request on the call path, not a relay for its bytes. Calls run in
//! the background (async invocations, chained calls that their executor has no room for) are
//! the exception: it sends those to an executor itself.
//!
//! It also keeps the call table: every call's status, outcome, timings and parent, which
//! status polls and `await` read.

mod calls;
mod leased;
mod members;
mod quotas;
mod scheduler;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use calls::Retention;
pub use quotas::check_rate;
pub use scheduler::{ExecutorEndpoint, Scheduler};

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// The executors calls may be placed on.
    pub executors: Vec<ExecutorEndpoint>,
    /// How long finished calls stay in the call table.
    pub retention: Retention,
    /// Most calls one call from outside may lead to, through chains of any depth and width.
    pub max_tree_calls: u64,
    /// How often executors beat; one silent for three intervals is removed.
    pub heartbeat_interval: Duration,
    /// Background calls accepted and not yet ended (waiting for an executor or running);
    /// more are refused with RESOURCE_EXHAUSTED.
    pub max_queued_calls: usize,
    /// How long a background call may wait for an executor with room before it fails.
    pub max_queue_wait: Duration,
    /// Save the call table through the state service, so a restarted scheduler still knows
    /// every call (with the Redis backend, across machines too).
    pub durable_calls: bool,
    /// Every user's quotas unless it has its own (0 in a field: no limit).
    pub default_quota: fwasm_proto::pb::UserQuota,
    /// Serve, and reach the state service and executors, over mutual TLS.
    pub tls: Option<fwasm_proto::tls::Tls>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            executors: Vec::new(),
            retention: Retention::default(),
            max_tree_calls: 100_000,
            heartbeat_interval: Duration::from_millis(500),
            max_queued_calls: 10_000,
            max_queue_wait: Duration::from_secs(30),
            durable_calls: false,
            default_quota: fwasm_proto::pb::UserQuota::default(),
            tls: None,
        }
    }
}

/// Serves the scheduler over gRPC on `listener`, resolving functions through the state service
/// at `state_addr`, until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: SchedulerConfig,
    state_addr: &str,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let tls = config.tls.clone();
    let state = fwasm_proto::grpc::connect_state(state_addr, tls.as_ref())?;
    let directory = Arc::new(fwasm_proto::directory::RemoteExecutors::new(tls.clone()));
    let scheduler: Arc<dyn fwasm_proto::api::SchedulerApi> =
        Arc::new(Scheduler::new(config, state, directory));
    fwasm_proto::grpc::serve(
        listener,
        fwasm_proto::grpc::SchedulerServer(scheduler).into_service(),
        tls.as_ref(),
        shutdown,
    )
    .await?;
    Ok(())
}
