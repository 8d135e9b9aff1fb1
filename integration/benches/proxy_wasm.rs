//! The echo in two guest ABIs through `fwasm up`, same run, over the public gRPC API: the
//! fwasm-ABI echo (demo/echo) against a proxy-wasm echo shaped like Layotto's functions (its
//! imports declared by hand, no SDK), and against the echo built with the proxy-wasm Rust SDK
//! (demo/proxy-echo). Each pair is interleaved; besides criterion's end-to-end times, each
//! prints the mean executor time per call (what the executor reports: fresh instance,
//! callbacks, reply) of both and its ratio.
//!
//! cargo bench -p fwasm-integration --bench proxy_wasm

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use fwasm_integration::proxy_wasm_guest;
use fwasm_proto::pb::functions_client::FunctionsClient;
use fwasm_proto::pb::{CallStatus, InvokeRequest, UploadRequest};
use support::interleaved;
use tonic::transport::Channel;

/// Calls and summed executor microseconds of each function of a pair.
type Tally = Arc<[[AtomicU64; 2]; 2]>;

async fn invoke(client: &FunctionsClient<Channel>, function: &str) -> u64 {
    let request = InvokeRequest {
        user: "demo".into(),
        function: function.into(),
        input: "0123456789abcdef".into(),
        ..InvokeRequest::default()
    };
    let result = client.clone().invoke(request).await.unwrap().into_inner();
    assert_eq!(
        (result.status(), &result.output[..]),
        (CallStatus::Success, &b"0123456789abcdef"[..]),
        "{function}: {result:?}"
    );
    result.exec_micros
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let client = FunctionsClient::new(rt.block_on(support::up(data.path(), Default::default())));
    rt.block_on(client.clone().upload(UploadRequest {
        user: "demo".into(),
        function: "layotto-echo".into(),
        wasm: proxy_wasm_guest("layotto_echo").into(),
        settings: None,
        python: false,
    }))
    .unwrap();
    for other in ["layotto-echo", "proxy-echo"] {
        let functions = ["echo", other];
        let tally: Tally = Default::default();
        let (client, counted) = (client.clone(), tally.clone());
        let group = format!("through fwasm up: echo vs {other}");
        interleaved(c, &rt, &group, functions, move |which| {
            let (client, tally) = (client.clone(), counted.clone());
            async move {
                let micros = invoke(&client, functions[which]).await;
                tally[which][0].fetch_add(1, Ordering::Relaxed);
                tally[which][1].fetch_add(micros, Ordering::Relaxed);
            }
        });
        let mean = |which: usize| {
            let [calls, micros] = &tally[which];
            micros.load(Ordering::Relaxed) as f64 / calls.load(Ordering::Relaxed).max(1) as f64
        };
        println!(
            "{group}: mean executor time {:.2} µs vs {:.2} µs, ratio {:.3}",
            mean(0),
            mean(1),
            mean(1) / mean(0)
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
