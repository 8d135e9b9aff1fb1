//! Dapr's runtime API against fwasm's own gRPC API, same server, same run: reading and writing
//! a state key (GetState / SaveState against fwasm.v1.Functions GetState / SetState) and
//! calling the demo echo function (InvokeService against Invoke). The sidecar APIs should cost
//! no more than fwasm's own.
//!
//! cargo bench -p fwasm-integration --bench runtime_apis

use criterion::{Criterion, criterion_group, criterion_main};
use fwasm::up::UpConfig;
use fwasm_proto::dapr::proto::common::v1 as common;
use fwasm_proto::dapr::proto::runtime::v1 as dapr;
use fwasm_proto::dapr::proto::runtime::v1::dapr_client::DaprClient;
use fwasm_proto::pb::functions_client::FunctionsClient;
use fwasm_proto::pb::{InvokeRequest, SetStateRequest, StateKey};
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// `fwasm up` in this process (embedded store in a temporary directory); its gRPC channel.
async fn up(data: &std::path::Path) -> Channel {
    let listener = || TcpListener::bind("127.0.0.1:0");
    let listeners = fwasm_gateway::GatewayListeners {
        invoke: listener().await.unwrap(),
        upload: listener().await.unwrap(),
        grpc: listener().await.unwrap(),
    };
    let grpc = listeners.grpc.local_addr().unwrap();
    let config = UpConfig {
        data_dir: data.to_path_buf(),
        state_backend: None,
        executor: fwasm_executor::ExecutorConfig::default(),
        gateway: fwasm_gateway::GatewayConfig::default(),
    };
    let gateway = fwasm::up::start(config).await.unwrap();
    tokio::spawn(fwasm_gateway::serve(
        listeners,
        gateway,
        std::future::pending(),
    ));
    let endpoint = Channel::from_shared(format!("http://{grpc}")).unwrap();
    endpoint.connect().await.unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let channel = rt.block_on(up(data.path()));
    let fwasm = FunctionsClient::new(channel.clone());
    let dapr = DaprClient::new(channel);
    let value = || bytes::Bytes::from(vec![7u8; 64]);

    let mut group = c.benchmark_group("state get");
    group.bench_function("fwasm GetState", |b| {
        b.to_async(&rt).iter(|| {
            let mut client = fwasm.clone();
            let key = StateKey {
                user: "bench".into(),
                key: "k".into(),
            };
            async move { client.get_state(key).await.unwrap() }
        })
    });
    group.bench_function("dapr GetState", |b| {
        b.to_async(&rt).iter(|| {
            let mut client = dapr.clone();
            let request = dapr::GetStateRequest {
                store_name: "bench".into(),
                key: "k".into(),
                ..Default::default()
            };
            async move { client.get_state(request).await.unwrap() }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("state set 64 B");
    group.bench_function("fwasm SetState", |b| {
        b.to_async(&rt).iter(|| {
            let mut client = fwasm.clone();
            let request = SetStateRequest {
                user: "bench".into(),
                key: "k".into(),
                value: value(),
            };
            async move { client.set_state(request).await.unwrap() }
        })
    });
    group.bench_function("dapr SaveState", |b| {
        b.to_async(&rt).iter(|| {
            let mut client = dapr.clone();
            let request = dapr::SaveStateRequest {
                store_name: "bench".into(),
                states: vec![common::StateItem {
                    key: "k".into(),
                    value: value(),
                    ..Default::default()
                }],
            };
            async move { client.save_state(request).await.unwrap() }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("invoke demo/echo");
    group.bench_function("fwasm Invoke", |b| {
        b.to_async(&rt).iter(|| {
            let mut client = fwasm.clone();
            let request = InvokeRequest {
                user: "demo".into(),
                function: "echo".into(),
                input: "hi".into(),
                ..Default::default()
            };
            async move { client.invoke(request).await.unwrap() }
        })
    });
    group.bench_function("dapr InvokeService", |b| {
        b.to_async(&rt).iter(|| {
            let mut client = dapr.clone();
            let request = dapr::InvokeServiceRequest {
                id: "demo".into(),
                message: Some(common::InvokeRequest {
                    method: "echo".into(),
                    data: Some(prost_types::Any {
                        type_url: String::new(),
                        value: b"hi".to_vec(),
                    }),
                    ..Default::default()
                }),
            };
            async move { client.invoke_service(request).await.unwrap() }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
