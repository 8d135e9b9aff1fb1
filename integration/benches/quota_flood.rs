//! One tenant floods while another calls: the calm user's latency during the flood, against
//! the same user's latency alone (the floor, same run), with per-user quotas on; and the same
//! flood against a platform without quotas, for contrast. Prints percentiles and ratios.
//!
//! cargo bench -p fwasm-integration --bench quota_flood
//!
//! Each platform is `fwasm up` in this process (two executor workers, one per core here). The
//! flood: 16 tasks calling `flood/slow` (a CPU-bound loop of a few milliseconds) back to back;
//! with quotas every user may have one unfinished call, half the executor. The calm user calls
//! `calm/upper` one call at a time.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fwasm_integration::guest;
use fwasm_proto::pb::functions_client::FunctionsClient;
use fwasm_proto::pb::{CallStatus, InvokeRequest, UploadRequest, UserQuota};
use tonic::transport::Channel;

const CALM_CALLS: usize = 2000;
const FLOODERS: usize = 16;

fn invocation(user: &str, function: &str, input: &str) -> InvokeRequest {
    InvokeRequest {
        user: user.into(),
        function: function.into(),
        input: input.to_string().into(),
        ..InvokeRequest::default()
    }
}

/// The calm user's latencies over `CALM_CALLS` calls, and how many failed.
async fn calm(client: &FunctionsClient<Channel>) -> (Vec<Duration>, usize) {
    let mut took = Vec::with_capacity(CALM_CALLS);
    let mut failed = 0;
    for _ in 0..CALM_CALLS {
        let started = Instant::now();
        let reply = client
            .clone()
            .invoke(invocation("calm", "upper", "hi"))
            .await;
        match reply {
            Ok(result) if result.get_ref().status() == CallStatus::Success => {
                took.push(started.elapsed())
            }
            _ => failed += 1,
        }
    }
    took.sort();
    (took, failed)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[at - 1]
}

/// Runs the calm user alone, then during a flood; prints both and their ratios.
async fn measure(label: &str, quota: UserQuota) {
    let data = tempfile::tempdir().unwrap();
    let client = FunctionsClient::new(support::up(data.path(), quota).await)
        .max_decoding_message_size(usize::MAX);
    for (user, function) in [("flood", "slow"), ("calm", "upper")] {
        let upload = UploadRequest {
            user: user.into(),
            function: function.into(),
            wasm: guest("testkit").into(),
            settings: None,
            python: false,
        };
        client.clone().upload(upload).await.unwrap();
    }
    let (alone, alone_failed) = calm(&client).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (served, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let flooders: Vec<_> = (0..FLOODERS)
        .map(|_| {
            let (client, stop) = (client.clone(), stop.clone());
            let (served, refused) = (served.clone(), refused.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let reply = client
                        .clone()
                        .invoke(invocation("flood", "slow", "1"))
                        .await;
                    match reply {
                        Ok(_) => served.fetch_add(1, Ordering::Relaxed),
                        Err(_) => refused.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    let (flooded, flooded_failed) = calm(&client).await;
    stop.store(true, Ordering::Relaxed);
    for flooder in flooders {
        flooder.await.unwrap();
    }
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    println!("{label}:");
    for (name, p) in [("p50", 0.50), ("p99", 0.99)] {
        let (a, f) = (percentile(&alone, p), percentile(&flooded, p));
        println!(
            "  calm {name}: alone {:.0} µs, during the flood {:.0} µs, ratio {:.2}",
            micros(a),
            micros(f),
            micros(f) / micros(a)
        );
    }
    println!(
        "  calm calls failed: alone {alone_failed}, during the flood {flooded_failed} of {CALM_CALLS}"
    );
    println!(
        "  flood calls: {} served, {} refused",
        served.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed)
    );
}

fn main() {
    // `cargo test --benches` runs benches with --bench absent: build, do not measure.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let one_call = UserQuota {
            max_concurrent_calls: 1,
            ..UserQuota::default()
        };
        measure("with quotas (1 concurrent call per user)", one_call).await;
        measure("without quotas", UserQuota::default()).await;
    });
}
