//! The global state tier's operations through the state service, on each backend: one
//! operation at a time (latency) and 64 at once (throughput).
//!
//! cargo bench -p fwasm-state --bench state_ops

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fwasm_proto::api::StateApi;
use fwasm_proto::pb::{SetStateRequest, StateKey};
use fwasm_state::StateConfig;

const CONCURRENT: usize = 64;

fn set(key: String) -> SetStateRequest {
    SetStateRequest {
        user: "bench".into(),
        key,
        value: vec![7u8; 64].into(),
    }
}

fn get(key: &str) -> StateKey {
    StateKey {
        user: "bench".into(),
        key: key.into(),
    }
}

fn bench_backend(
    c: &mut Criterion,
    name: &str,
    state: Arc<dyn StateApi>,
    rt: &tokio::runtime::Runtime,
) {
    rt.block_on(state.set_state(set("k".into()))).unwrap();
    let mut group = c.benchmark_group(format!("state/{name}"));
    group.bench_function("set 64 B", |b| {
        b.to_async(rt).iter(|| state.set_state(set("k".into())))
    });
    group.bench_function("get 64 B", |b| {
        b.to_async(rt).iter(|| state.get_state(get("k")))
    });
    group.throughput(Throughput::Elements(CONCURRENT as u64));
    group.bench_function(format!("{CONCURRENT} concurrent sets"), |b| {
        b.to_async(rt).iter(|| {
            let state = state.clone();
            async move {
                let sets = (0..CONCURRENT).map(|i| {
                    let state = state.clone();
                    tokio::spawn(async move { state.set_state(set(format!("k{i}"))).await })
                });
                for set in sets.collect::<Vec<_>>() {
                    set.await.unwrap().unwrap();
                }
            }
        })
    });
    group.bench_function(format!("{CONCURRENT} concurrent gets"), |b| {
        b.to_async(rt).iter(|| {
            let state = state.clone();
            async move {
                let gets = (0..CONCURRENT).map(|_| {
                    let state = state.clone();
                    tokio::spawn(async move { state.get_state(get("k")).await })
                });
                for get in gets.collect::<Vec<_>>() {
                    get.await.unwrap().unwrap();
                }
            }
        })
    });
    group.finish();
}

fn state_ops(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let embedded = StateConfig {
        data_dir: data.path().into(),
        ..StateConfig::default()
    };
    let embedded = Arc::new(rt.block_on(embedded.open()).unwrap());
    bench_backend(c, "embedded", embedded, &rt);

    let redis = redis_harness::RedisServer::start();
    let on_redis = StateConfig {
        redis_url: Some(redis.url()),
        ..StateConfig::default()
    };
    let on_redis = Arc::new(rt.block_on(on_redis.open()).unwrap());
    bench_backend(c, "redis", on_redis, &rt);
}

criterion_group!(benches, state_ops);
criterion_main!(benches);
