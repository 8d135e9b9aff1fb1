//! What the benchmarks through `fwasm up` share: the platform in this process, and a pair of
//! requests timed interleaved.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;
use fwasm::up::UpConfig;
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// `fwasm up` in this process (embedded store in a temporary directory), every user with
/// `quota`; its gRPC channel.
pub async fn up(data: &std::path::Path, quota: fwasm_proto::pb::UserQuota) -> Channel {
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
        state_limits: fwasm_state::StateLimits {
            max_stored_bytes_per_user: quota.max_stored_bytes,
            max_functions_per_user: quota.max_functions,
            ..Default::default()
        },
        default_quota: quota,
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

/// Benchmarks a pair of requests interleaved: every iteration of either runs both (`run(0)`
/// and `run(1)`), in alternating order, and criterion reports the time of its own. Both are
/// also timed in every iteration, and the ratio of their totals (second / first) is printed
/// once the group ends: the two measured at the same moments, which a shared machine's
/// drifting load cannot bias.
#[allow(dead_code)] // Not every bench interleaves.
pub fn interleaved<F, Fut>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    group: &str,
    names: [&str; 2],
    run: F,
) where
    F: Fn(usize) -> Fut + Clone + 'static,
    Fut: Future<Output = ()>,
{
    // Nanoseconds of the first and of the second request, over every iteration.
    let totals = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let mut benches = c.benchmark_group(group);
    for mine in [0, 1] {
        benches.bench_function(names[mine], |b| {
            b.to_async(rt).iter_custom(|iters| {
                let (run, totals) = (run.clone(), totals.clone());
                async move {
                    let mut took = [Duration::ZERO; 2];
                    for i in 0..iters {
                        // Alternate which goes first, so neither always follows the other.
                        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
                        for which in order {
                            let started = Instant::now();
                            run(which).await;
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
        names[1],
        names[0],
        second / first
    );
}
