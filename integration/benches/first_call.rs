//! The first call of a function just uploaded, against a warm call of the same code, through
//! `fwasm up` over gRPC. Each iteration uploads a module no executor has seen (the echo guest
//! with a custom section that differs every time, so its hash is new), untimed, then times
//! a warm call and the new function's first call, in alternating order. Prints the mean
//! difference: what an upload leaves its first call to do.
//!
//! cargo bench -p fwasm-integration --bench first_call

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fwasm_integration::guest;
use fwasm_proto::pb::functions_client::FunctionsClient;
use fwasm_proto::pb::{CallStatus, InvokeRequest, UploadRequest, UserQuota};
use tonic::transport::Channel;

fn invocation(function: &str) -> InvokeRequest {
    InvokeRequest {
        user: "bench".into(),
        function: function.into(),
        input: "hi".into(),
        ..InvokeRequest::default()
    }
}

async fn call(client: &FunctionsClient<Channel>, function: &str) {
    let reply = client.clone().invoke(invocation(function)).await.unwrap();
    assert_eq!(reply.get_ref().status(), CallStatus::Success, "{reply:?}");
}

/// `wasm` with a custom section holding `n`: the same code, a module of its own.
fn unique(wasm: &[u8], n: u64) -> Vec<u8> {
    let mut module = wasm.to_vec();
    // Section id 0 (custom), 10 bytes: a 1-byte name "n", then n.
    module.extend_from_slice(&[0, 10, 1, b'n']);
    module.extend_from_slice(&n.to_le_bytes());
    module
}

async fn upload(client: &FunctionsClient<Channel>, function: &str, wasm: Vec<u8>) {
    let upload = UploadRequest {
        user: "bench".into(),
        function: function.into(),
        wasm: wasm.into(),
        settings: None,
        python: false,
    };
    client.clone().upload(upload).await.unwrap();
}

fn main() {
    let mut c = criterion::Criterion::default().configure_from_args();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let channel = rt.block_on(support::up(data.path(), UserQuota::default()));
    let client = FunctionsClient::new(channel);
    let echo = guest("echo");
    rt.block_on(async {
        upload(&client, "warm", echo.clone()).await;
        call(&client, "warm").await;
    });
    let uploads = Arc::new(AtomicU64::new(0));
    // Nanoseconds of warm and of first calls, over every iteration of both benchmarks.
    let totals = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let mut group = c.benchmark_group("first_call");
    for (mine, name) in ["warm", "after_upload"].into_iter().enumerate() {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (client, echo) = (client.clone(), echo.clone());
                let (uploads, totals) = (uploads.clone(), totals.clone());
                async move {
                    let mut took = [Duration::ZERO; 2];
                    for i in 0..iters {
                        let n = uploads.fetch_add(1, Ordering::Relaxed);
                        upload(&client, "fresh", unique(&echo, n)).await;
                        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
                        for which in order {
                            let function = ["warm", "fresh"][which];
                            let started = Instant::now();
                            call(&client, function).await;
                            took[which] += started.elapsed();
                        }
                    }
                    for which in [0, 1] {
                        let nanos = took[which].as_nanos() as u64;
                        totals[which].fetch_add(nanos, Ordering::Relaxed);
                    }
                    took[mine]
                }
            })
        });
    }
    group.finish();
    let count = uploads.load(Ordering::Relaxed).max(1) as f64;
    let [warm, first] = [0, 1].map(|which| totals[which].load(Ordering::Relaxed) as f64 / count);
    println!(
        "first_call: warm {:.1} µs, first after upload {:.1} µs, difference {:.1} µs over {count} uploads",
        warm / 1e3,
        first / 1e3,
        (first - warm) / 1e3
    );
    c.final_summary();
}
