//! Modules wasm-smith generates, shaped as WASI commands (they export `_start` and a memory):
//! validated at upload, and every one accepted then run under tight limits through the
//! executor: it ends (succeeding, trapping or out of fuel or time) with no panic, and no hang
//! past its limits (libFuzzer's -timeout catches one).
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arbitrary::Unstructured;
use fwasm_executor::{Executor, ExecutorConfig, Limits};
use fwasm_proto::api::{ExecutorApi, StateApi};
use fwasm_proto::directory::BackReference;
use fwasm_proto::pb::{Call, PutFunctionRequest};
use fwasm_scheduler::{ExecutorEndpoint, Scheduler, SchedulerConfig};
use libfuzzer_sys::fuzz_target;

/// The exports every generated module has: a WASI command's.
const SHAPE: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;

struct Platform {
    runtime: tokio::runtime::Runtime,
    state: Arc<dyn StateApi>,
    executor: Executor,
    _data: tempfile::TempDir,
}

fn platform() -> &'static Platform {
    static PLATFORM: OnceLock<Platform> = OnceLock::new();
    PLATFORM.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let data = tempfile::tempdir().unwrap();
        let config = fwasm_state::StateConfig {
            data_dir: data.path().into(),
            ..fwasm_state::StateConfig::default()
        };
        let state: Arc<dyn StateApi> = Arc::new(runtime.block_on(config.open()).unwrap());
        let _entered = runtime.enter();
        let local = ExecutorEndpoint {
            id: "fuzz".into(),
            addr: String::new(),
        };
        let scheduler = Arc::new(Scheduler::new(
            SchedulerConfig {
                executors: vec![local],
                ..SchedulerConfig::default()
            },
            state.clone(),
            Arc::new(BackReference::default()),
        ));
        // Tight: a generated loop ends within a second, its memory within 16 MiB.
        let limits = Limits {
            max_memory_bytes: 16 << 20,
            max_fuel: 50_000_000,
            timeout: Duration::from_secs(1),
            ..Limits::default()
        };
        let config = ExecutorConfig {
            id: "fuzz".into(),
            limits,
            workers: 1,
            ..ExecutorConfig::default()
        };
        let executor = Executor::new(config, state.clone(), scheduler);
        Platform {
            runtime,
            state,
            executor,
            _data: data,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let mut config = wasm_smith::Config {
        exports: Some(wat::parse_str(SHAPE).unwrap()),
        max_imports: 0,
        ..wasm_smith::Config::default()
    };
    config.max_memory32_bytes = 16 << 20;
    let Ok(module) = wasm_smith::Module::new(config, &mut Unstructured::new(data)) else {
        return;
    };
    let wasm = module.to_bytes();
    if fwasm_executor::validate(&wasm).is_err() {
        return;
    }
    let platform = platform();
    let upload = PutFunctionRequest {
        user: "fuzz".into(),
        function: "module".into(),
        wasm: wasm.into(),
        settings: None,
        beyond_quota: false,
        abi: String::new(),
    };
    let info = platform
        .runtime
        .block_on(platform.state.put_function(upload))
        .unwrap();
    let call = Call {
        id: 1,
        user: "fuzz".into(),
        function: "module".into(),
        module_hash: info.module_hash,
        ..Call::default()
    };
    // Success or a failed call with its reason: both are fine; an Err would be the host's.
    let result = platform.runtime.block_on(platform.executor.execute(call));
    assert!(result.is_ok(), "{result:?}");
});
