//! What the executor's benchmarks share: a state service and a scheduler in the bench's
//! process, as in `fwasm up`, and functions stored in it.

use std::sync::Arc;

use fwasm_proto::api::StateApi;
use fwasm_proto::directory::BackReference;
use fwasm_proto::pb::PutFunctionRequest;
use fwasm_scheduler::{ExecutorEndpoint, Scheduler, SchedulerConfig};

/// The state service (embedded store in a temporary directory, kept alive by the returned
/// directory) and a scheduler that places on one executor, "local". Call within `runtime`.
pub fn platform(
    runtime: &tokio::runtime::Runtime,
) -> (Arc<dyn StateApi>, Arc<Scheduler>, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let config = fwasm_state::StateConfig {
        data_dir: data.path().into(),
        ..fwasm_state::StateConfig::default()
    };
    let state: Arc<dyn StateApi> = Arc::new(runtime.block_on(config.open()).unwrap());
    let scheduler = Arc::new(Scheduler::new(
        SchedulerConfig {
            executors: vec![ExecutorEndpoint {
                id: "local".into(),
                addr: String::new(),
            }],
            ..SchedulerConfig::default()
        },
        state.clone(),
        Arc::new(BackReference::default()),
    ));
    (state, scheduler, data)
}

/// Stores `wasm` as `bench/<function>`: its module hash.
pub fn put(
    runtime: &tokio::runtime::Runtime,
    state: &Arc<dyn StateApi>,
    function: &str,
    wasm: Vec<u8>,
) -> String {
    let request = PutFunctionRequest {
        user: "bench".into(),
        function: function.into(),
        wasm: wasm.into(),
        settings: None,
        beyond_quota: false,
        abi: String::new(),
    };
    runtime
        .block_on(state.put_function(request))
        .unwrap()
        .module_hash
}
