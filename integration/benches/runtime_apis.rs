//! Dapr's runtime API against fwasm's own gRPC API, same server, same run: reading and writing
//! a state key (GetState / SaveState against fwasm.v1.Functions GetState / SetState) and
//! calling the demo echo function (InvokeService against Invoke), each pair interleaved. The
//! sidecar APIs should cost no more than fwasm's own.
//!
//! cargo bench -p fwasm-integration --bench runtime_apis

mod support;

use criterion::{Criterion, criterion_group, criterion_main};
use fwasm_proto::dapr::proto::common::v1 as common;
use fwasm_proto::dapr::proto::runtime::v1 as dapr;
use fwasm_proto::dapr::proto::runtime::v1::dapr_client::DaprClient;
use fwasm_proto::pb::functions_client::FunctionsClient;
use fwasm_proto::pb::{InvokeRequest, SetStateRequest, StateKey};
use support::interleaved;

use tonic::transport::Channel;

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

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let channel = rt.block_on(support::up(data.path(), Default::default()));
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
    for (group, [(first, op1), (second, op2)]) in pairs {
        let clients = clients.clone();
        interleaved(c, &rt, group, [first, second], move |which| {
            let clients = clients.clone();
            async move { clients.run([op1, op2][which]).await }
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
