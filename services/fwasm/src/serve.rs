//! `fwasm state|scheduler|executor|gateway`: one service per process, as in distributed mode.
//! Each serves gRPC (with health and reflection) on `--listen`, and Prometheus metrics on
//! `--metrics` (the gateway on its invoke port).

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

/// Binds `addr`, saying which flag to change when it is taken.
pub async fn listen(addr: SocketAddr, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}; choose another address with {flag}"))
}

/// The per-call limits the `--timeout` (seconds) and `--max-memory-mib` flags set.
pub fn call_limits(timeout_secs: u64, max_memory_mib: usize) -> fwasm_executor::Limits {
    fwasm_executor::Limits {
        timeout: std::time::Duration::from_secs(timeout_secs),
        max_memory_bytes: max_memory_mib << 20,
        ..fwasm_executor::Limits::default()
    }
}

/// Serves `/metrics` for Prometheus on `addr` until the process ends.
pub async fn serve_metrics(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = listen(addr, "--metrics").await?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async { fwasm_proto::metrics::handle().render() }),
    );
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(error = %err, "the metrics server stopped");
        }
    });
    Ok(())
}

/// Maps a service's boxed error into anyhow, for the binary's edge.
pub async fn run_service<E>(service: impl Future<Output = Result<(), E>>) -> anyhow::Result<()>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    service.await.map_err(|err| anyhow::anyhow!(err.into()))
}
