//! Dapr's runtime API against fwasm's own gRPC API, same server, same run: reading and writing
//! a state key (GetState / SaveState against fwasm.v1.Functions GetState / SetState) and
//! calling the demo echo function (InvokeService against Invoke), each pair interleaved. The
//! sidecar APIs should cost no more than fwasm's own.
//!
//! cargo bench -p fwasm-integration --bench runtime_apis

use criterion::{Criterion, criterion_group, criterion_main};
use fwasm::up::UpConfig;
use fwasm_proto::dapr::proto::common::v1 as common;
use fwasm_proto::dapr::proto::runtime::v1 as dapr;
use fwasm_proto::dapr::proto::runtime::v1::dapr_client::DaprClient;
use fwasm_proto::pb::functions_client::FunctionsClient;
use fwasm_proto::pb::{InvokeRequest, SetStateRequest, StateKey};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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

/// One request of the benchmark, through one API.
#[derive(Clone, Copy)]
enum Op {
    FwasmGetState,
    DaprGetState,
    FwasmSetState,
    DaprSaveState,
    FwasmInvoke,
    DaprInvokeService,
}

#[derive(Clone)]
struct Clients {
    fwasm: FunctionsClient<Channel>,
    dapr: DaprClient<Channel>,
}

impl Clients {
    async fn run(&self, op: Op) {
        let (mut fwasm, mut dapr) = (self.fwasm.clone(), self.dapr.clone());
        let value = || bytes::Bytes::from(vec![7u8; 64]);
        match op {
            Op::FwasmGetState => {
                let key = StateKey {
                    user: "bench".into(),
                    key: "k".into(),
                };
                fwasm.get_state(key).await.map(drop)
            }
            Op::DaprGetState => {
                let request = dapr::GetStateRequest {
                    store_name: "bench".into(),
                    key: "k".into(),
                    ..Default::default()
                };
                dapr.get_state(request).await.map(drop)
            }
            Op::FwasmSetState => {
                let request = SetStateRequest {
                    user: "bench".into(),
                    key: "k".into(),
                    value: value(),
                };
                fwasm.set_state(request).await.map(drop)
            }
            Op::DaprSaveState => {
                let request = dapr::SaveStateRequest {
                    store_name: "bench".into(),
                    states: vec![common::StateItem {
                        key: "k".into(),
                        value: value(),
                        ..Default::default()
                    }],
                };
                dapr.save_state(request).await.map(drop)
            }
            Op::FwasmInvoke => {
                let request = InvokeRequest {
                    user: "demo".into(),
                    function: "echo".into(),
                    input: "hi".into(),
                    ..Default::default()
                };
                fwasm.invoke(request).await.map(drop)
            }
            Op::DaprInvokeService => {
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
                dapr.invoke_service(request).await.map(drop)
            }
        }
        .unwrap()
    }
}

/// Benchmarks a pair of requests interleaved: every iteration of either runs both, in
/// alternating order, and criterion reports the time of its own. Both are also timed in every
/// iteration, and the ratio of their totals (second / first) is printed once the group ends:
/// the two measured at the same moments, which a shared machine's drifting load cannot bias.
fn interleaved(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    clients: &Clients,
    group: &str,
    pair: [(&str, Op); 2],
) {
    // Nanoseconds of the first and of the second request, over every iteration.
    let totals = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let mut benches = c.benchmark_group(group);
    for mine in [0, 1] {
        let (name, _) = pair[mine];
        benches.bench_function(name, |b| {
            b.to_async(rt).iter_custom(|iters| {
                let (clients, totals) = (clients.clone(), totals.clone());
                async move {
                    let mut took = [Duration::ZERO; 2];
                    for i in 0..iters {
                        // Alternate which goes first, so neither always follows the other.
                        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
                        for which in order {
                            let started = Instant::now();
                            clients.run(pair[which].1).await;
                            took[which] += started.elapsed();
                        }
                    }
                    for which in [0, 1] {
                        totals[which].fetch_add(took[which].as_nanos() as u64, Ordering::Relaxed);
                    }
                    took[mine]
                }
            })
        });
    }
    benches.finish();
    let [first, second] = [0, 1].map(|which| totals[which].load(Ordering::Relaxed) as f64);
    println!(
        "{group}: {} / {} over the same moments = {:.3}",
        pair[1].0,
        pair[0].0,
        second / first
    );
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let channel = rt.block_on(up(data.path()));
    let clients = Clients {
        fwasm: FunctionsClient::new(channel.clone()),
        dapr: DaprClient::new(channel),
    };
    rt.block_on(clients.run(Op::FwasmSetState));
    let pairs = [
        (
            "state get",
            [
                ("fwasm GetState", Op::FwasmGetState),
                ("dapr GetState", Op::DaprGetState),
            ],
        ),
        (
            "state set 64 B",
            [
                ("fwasm SetState", Op::FwasmSetState),
                ("dapr SaveState", Op::DaprSaveState),
            ],
        ),
        (
            "invoke demo/echo",
            [
                ("fwasm Invoke", Op::FwasmInvoke),
                ("dapr InvokeService", Op::DaprInvokeService),
            ],
        ),
    ];
    for (group, pair) in pairs {
        interleaved(c, &rt, &clients, group, pair);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
