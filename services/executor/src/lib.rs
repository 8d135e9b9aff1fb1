//! fwasm's executor: runs functions in the wasmi interpreter.
//!
//! Layout: [`host`] holds the capabilities every guest gets (input and output, chaining,
//! state, files, publishing, logging, parking); [`abi`] holds one adapter per guest ABI over
//! them (fwasm v1, WASI commands); `call`, `pool` and `executor` run calls whatever their ABI.
//!
//! Each call gets a fresh instance of a cached compiled module, runs on a fixed pool of OS
//! threads (never on the async runtime's workers) in fuel slices, and is bounded by memory,
//! CPU (fuel), wall-clock and output limits. Guests can fail their call, never the executor.

mod abi;
mod cache;
mod call;
mod cancels;
mod data_segments;
mod executor;
mod first_poll;
mod globals;
mod host;
mod limits;
mod local_calls;
mod memory_image;
mod memory_import;
mod memory_pool;
mod mpi;
mod outbound;
mod parked;
mod pool;
mod python;
mod reporting;
mod shared_snapshots;
mod sidecar;
mod snapshot;
mod sockets;

/// A page of wasm linear memory, in bytes.
const WASM_PAGE: usize = 64 << 10;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use abi::{Abi, BUILD_HINTS, Validated, ValidationError, validate, validate_with};
pub use executor::Executor;
pub use limits::Limits;
pub use python::PythonRuntime;
pub use shared_snapshots::shared_ref as shared_snapshot_ref;
pub use sidecar::{SidecarApi, SidecarConfig};

#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// How the scheduler knows this executor.
    pub id: String,
    /// The address the scheduler and gateways reach it at (host:port), sent in heartbeats;
    /// the listening address when not set.
    pub advertise_addr: Option<String>,
    pub limits: Limits,
    /// OS threads that run wasm; one per core by default.
    pub workers: usize,
    /// Compiled modules kept in memory.
    pub module_cache_capacity: usize,
    /// Bytes all functions' snapshots on this executor may hold together (the memory their
    /// initialisation changed); past it, the least recently used are dropped (and taken
    /// again by their next call).
    pub max_snapshot_bytes: usize,
    /// Restore the snapshots other executors keep in the state service, and keep there the
    /// ones worth restoring elsewhere (on by default).
    pub share_snapshots: bool,
    /// Calls from outside admitted at once (running, waiting for a worker or awaiting chained
    /// calls); more are refused with RESOURCE_EXHAUSTED instead of queueing without bound.
    /// Chained calls are never refused for room (refusing them could leave their callers
    /// waiting forever): they run here while there is room, else wherever the scheduler finds it.
    pub max_concurrent_calls: usize,
    /// Bytes all local copies of state on this executor may hold together; writes past it
    /// are refused with LimitExceeded.
    pub max_local_state_bytes: usize,
    /// A Layotto or Dapr sidecar beside this executor, for its guests' requests to it (and
    /// Layotto's proxy-wasm state and service calls); none by default.
    pub sidecar: Option<SidecarConfig>,
    /// Serve, and reach the state service and the scheduler, over mutual TLS.
    pub tls: Option<fwasm_proto::tls::Tls>,
    /// Place the calls it chains and runs itself from leases of call ids, instead of asking
    /// the scheduler for each: for a scheduler in another process (`run`, which serves the
    /// mesh, always sets it).
    pub lease_chained_calls: bool,
    /// The Python runtime Python functions run in (`scripts/build-python`); without one,
    /// their calls fail saying how to get it.
    pub python: Option<Arc<PythonRuntime>>,
    /// The hosts any function may be allowed to reach over the network (`--allow-outbound`):
    /// a function reaches those its own allow-list names that these match too. None by
    /// default.
    pub allow_outbound: Vec<fwasm_proto::outbound::HostPattern>,
    /// Certificate authorities functions' https requests trust beyond the system's
    /// (`--outbound-ca`): a company's own, or a test's.
    pub outbound_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            id: "local".into(),
            advertise_addr: None,
            limits: Limits::default(),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            module_cache_capacity: 256,
            max_snapshot_bytes: 1 << 30,
            share_snapshots: true,
            max_concurrent_calls: 10_000,
            max_local_state_bytes: 512 << 20,
            sidecar: None,
            tls: None,
            lease_chained_calls: false,
            python: None,
            allow_outbound: Vec::new(),
            outbound_roots: Vec::new(),
        }
    }
}

/// Serves an executor over gRPC on `listener`, fetching modules from the state service at
/// `state_addr` and reporting to the scheduler at `scheduler_addr`, until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: ExecutorConfig,
    state_addr: &str,
    scheduler_addr: &str,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let tls = config.tls.clone();
    let state = fwasm_proto::grpc::connect_state(state_addr, tls.as_ref())?;
    let scheduler = fwasm_proto::grpc::connect_scheduler(scheduler_addr, tls.as_ref())?;
    let addr = match &config.advertise_addr {
        Some(addr) => addr.clone(),
        None => listener.local_addr()?.to_string(),
    };
    // The scheduler is in another process: chained calls are placed from leases. The address
    // is what the ranks of its MPI worlds on other executors reach it at.
    let config = ExecutorConfig {
        lease_chained_calls: true,
        advertise_addr: Some(addr.clone()),
        ..config
    };
    let executor = Arc::new(Executor::new(config, state, scheduler.clone()));
    let beating = tokio::spawn(heartbeats(executor.clone(), scheduler, addr));
    let served: Arc<dyn fwasm_proto::api::ExecutorApi> = executor.clone();
    let result = fwasm_proto::grpc::serve(
        listener,
        fwasm_proto::grpc::ExecutorServer(served).into_service(),
        tls.as_ref(),
        shutdown,
    )
    .await;
    beating.abort();
    // Outcomes are reported after the answers: send the last ones before exiting.
    if !executor.reports_sent(REPORTS_PATIENCE).await {
        tracing::warn!("stopped with call outcomes not yet reported to the scheduler");
    }
    result?;
    Ok(())
}

/// How long a stopping executor waits for its last outcome reports.
const REPORTS_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Beats for as long as the executor serves: joining the scheduler, then telling it the load
/// and warm modules. A scheduler that is down is retried at the same pace.
async fn heartbeats(
    executor: Arc<Executor>,
    scheduler: Arc<dyn fwasm_proto::api::SchedulerApi>,
    addr: String,
) {
    let mut interval = std::time::Duration::from_millis(500);
    loop {
        match scheduler.heartbeat(executor.heartbeat(&addr)).await {
            Ok(reply) if reply.interval_ms > 0 => {
                interval = std::time::Duration::from_millis(reply.interval_ms);
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "heartbeat to the scheduler failed"),
        }
        tokio::time::sleep(interval).await;
    }
}
