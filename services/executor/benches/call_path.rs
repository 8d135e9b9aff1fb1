//! The executor's per-call path: admission, cached module, fresh instance, request hand-over,
//! `handle`, response read, and the hop to and from a wasm worker thread.
//!
//! cargo bench -p fwasm-executor --bench call_path

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fwasm_executor::{Executor, ExecutorConfig};
use fwasm_proto::api::{ExecutorApi, StateApi};
use fwasm_proto::directory::BackReference;
use fwasm_proto::pb::{Call, CallStatus, PutFunctionRequest};
use fwasm_scheduler::{Scheduler, SchedulerConfig};

const ECHO: &[u8] = include_bytes!("../../fwasm/demo/echo.wasm");

fn call_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let state: Arc<dyn StateApi> = Arc::new(
        fwasm_state::StateConfig {
            data_dir: data.path().into(),
        }
        .open()
        .unwrap(),
    );
    let module_hash = runtime
        .block_on(state.put_function(PutFunctionRequest {
            user: "bench".into(),
            function: "echo".into(),
            wasm: ECHO.into(),
        }))
        .unwrap()
        .module_hash;
    let _entered = runtime.enter();
    let scheduler = Arc::new(Scheduler::new(
        SchedulerConfig::default(),
        state.clone(),
        Arc::new(BackReference::default()),
    ));
    let executor = Executor::new(ExecutorConfig::default(), state, scheduler);

    let mut group = c.benchmark_group("executor/echo");
    for size in [16usize, 64 << 10] {
        let call = Call {
            id: 1,
            user: "bench".into(),
            function: "echo".into(),
            method: "POST".into(),
            path: "/f/bench/echo".into(),
            input: vec![b'x'; size].into(),
            module_hash: module_hash.clone(),
            ..Call::default()
        };
        // Warm the module cache and check the path works before timing it.
        let result = runtime.block_on(executor.execute(call.clone())).unwrap();
        assert_eq!(
            (result.status(), result.output.len()),
            (CallStatus::Success, size)
        );
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &call, |b, call| {
            b.to_async(&runtime).iter(|| executor.execute(call.clone()))
        });
    }
    group.finish();
}

criterion_group!(benches, call_path);
criterion_main!(benches);
