//! `fwasm up`: all four services in one process, handed to each other directly (no sockets
//! between them), on the embedded durable store, with the demo functions uploaded.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use fwasm_executor::{Executor, ExecutorConfig};
use fwasm_gateway::{Gateway, GatewayConfig};
use fwasm_proto::api::{ExecutorApi, SchedulerApi, StateApi};
use fwasm_proto::directory::{BackReference, LocalExecutor};
use fwasm_scheduler::{ExecutorEndpoint, Scheduler, SchedulerConfig};
use fwasm_state::StateConfig;

/// The functions every `fwasm up` serves, built from integration/functions by
/// scripts/build-demos and bundled so no wasm toolchain is needed to run them.
pub const DEMOS: &[(&str, &str, &[u8])] = &[
    ("demo", "echo", include_bytes!("../demo/echo.wasm")),
    ("demo", "hello", include_bytes!("../demo/hello.wasm")),
    // The echo as a proxy-wasm filter, for Layotto and Envoy users.
    (
        "demo",
        "proxy-echo",
        include_bytes!("../demo/proxy-echo.wasm"),
    ),
];

#[derive(Debug, Clone)]
pub struct UpConfig {
    pub data_dir: PathBuf,
    /// `redis://HOST:PORT` to keep state (and functions) in Redis instead of under `data_dir`.
    pub state_backend: Option<String>,
    pub executor: ExecutorConfig,
    pub gateway: GatewayConfig,
    /// Every user's quotas on calls unless it has its own (0 in a field: no limit).
    pub default_quota: fwasm_proto::pb::UserQuota,
    /// The state service's limits, every user's storage quotas among them.
    pub state_limits: fwasm_state::StateLimits,
}

/// Wires the services together and uploads the demos; returns the gateway to serve.
pub async fn start(config: UpConfig) -> anyhow::Result<Arc<Gateway>> {
    let state_config = StateConfig {
        data_dir: config.data_dir.clone(),
        redis_url: config.state_backend.clone(),
        limits: config.state_limits.clone(),
        ..StateConfig::default()
    };
    let state: Arc<dyn StateApi> =
        Arc::new(
            state_config
                .open()
                .await
                .with_context(|| match &config.state_backend {
                    Some(url) => format!("cannot use the Redis state backend at {url}"),
                    None => format!(
                        "is another `fwasm up` using {}? Stop it or pass a different --data-dir",
                        config.data_dir.display()
                    ),
                })?,
        );
    // The scheduler sends background calls to the executor, and the executor reports to the
    // scheduler: the executor owns the scheduler, which reaches it back without owning it.
    let back = Arc::new(BackReference::default());
    let local = ExecutorEndpoint {
        id: config.executor.id.clone(),
        addr: String::new(),
    };
    let scheduler: Arc<dyn SchedulerApi> = Arc::new(Scheduler::new(
        SchedulerConfig {
            executors: vec![local],
            default_quota: config.default_quota.clone(),
            ..SchedulerConfig::default()
        },
        state.clone(),
        back.clone(),
    ));
    let executor: Arc<dyn ExecutorApi> = Arc::new(Executor::new(
        config.executor,
        state.clone(),
        scheduler.clone(),
    ));
    back.set(&executor);
    let gateway = Arc::new(Gateway::new(
        config.gateway,
        scheduler,
        state,
        Arc::new(LocalExecutor(executor)),
    ));
    // The operator's own uploads, whoever may call later.
    for (user, function, wasm) in DEMOS {
        let upload = gateway.upload(user, function, Bytes::from_static(wasm), None);
        fwasm_gateway::Caller::Admin
            .scope(upload)
            .await
            .with_context(|| format!("uploading the demo function {user}/{function}"))?;
    }
    Ok(gateway)
}
