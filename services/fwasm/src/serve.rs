//! `fwasm state|scheduler|executor|gateway`: one service per process, as in distributed mode.
//! Each serves gRPC (with health and reflection) on `--listen`, and Prometheus metrics on
//! `--metrics` (the gateway on its invoke port).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use fwasm_gateway::GatewayListeners;
use tokio::net::TcpListener;

/// Binds `addr`, saying which flag to change when it is taken.
pub async fn listen(addr: SocketAddr, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}; choose another address with {flag}"))
}

/// The sockets a supervisor passed by socket activation (systemd's `LISTEN_FDS`).
static PASSED_SOCKETS: Mutex<Option<listenfd::ListenFd>> = Mutex::new(None);

/// Takes the sockets passed by socket activation, if any, for [`listen_or_inherit`]. Call it
/// first thing in `main`, before any thread starts: it removes `LISTEN_FDS` and `LISTEN_PID`
/// from the environment (so no child inherits them).
pub fn claim_passed_sockets() {
    *PASSED_SOCKETS.lock().unwrap_or_else(|e| e.into_inner()) =
        Some(listenfd::ListenFd::from_env());
}

/// The listening socket a supervisor passed by socket activation (see
/// [`claim_passed_sockets`]), else `addr` bound here. A passed socket outlives this process,
/// so a restarted service keeps its address and connections made meanwhile wait in its
/// backlog.
pub async fn listen_or_inherit(addr: SocketAddr, flag: &str) -> anyhow::Result<TcpListener> {
    let passed = match PASSED_SOCKETS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_mut()
    {
        Some(sockets) => sockets
            .take_tcp_listener(0)
            .context("the socket passed in LISTEN_FDS is not a listening TCP socket")?,
        None => None,
    };
    let Some(listener) = passed else {
        return listen(addr, flag).await;
    };
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    tracing::info!(addr = %listener.local_addr()?, "serving on the socket passed in LISTEN_FDS");
    Ok(listener)
}

/// The gateway's three listeners on `host`; a port of 0 takes any free port.
pub async fn gateway_listeners(
    host: IpAddr,
    [invoke, upload, grpc]: [u16; 3],
) -> anyhow::Result<GatewayListeners> {
    let at = |port| SocketAddr::new(host, port);
    Ok(GatewayListeners {
        invoke: listen(at(invoke), "--invoke-port").await?,
        upload: listen(at(upload), "--upload-port").await?,
        grpc: listen(at(grpc), "--grpc-port").await?,
    })
}

/// The gateway listeners' addresses, named as in a ready file.
pub fn gateway_addrs(
    listeners: &GatewayListeners,
) -> anyhow::Result<[(&'static str, SocketAddr); 3]> {
    Ok([
        ("invoke", listeners.invoke.local_addr()?),
        ("upload", listeners.upload.local_addr()?),
        ("grpc", listeners.grpc.local_addr()?),
    ])
}

/// `--ready-file`: once every listener of a process is bound, the addresses they got, as a
/// JSON object such as `{"listen": "127.0.0.1:7000", "metrics": "127.0.0.1:9000"}`. It is
/// written whole (a rename), so a reader never sees part of it; with port 0 in an address it
/// is how a supervisor or a test learns the port the service got.
pub fn write_ready_file(path: &Path, addrs: &[(&str, SocketAddr)]) -> anyhow::Result<()> {
    let object: serde_json::Map<String, serde_json::Value> = addrs
        .iter()
        .map(|(name, addr)| (name.to_string(), addr.to_string().into()))
        .collect();
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    std::fs::write(&partial, serde_json::to_vec(&object)?)
        .and_then(|()| std::fs::rename(&partial, path))
        .with_context(|| format!("cannot write the ready file {}", path.display()))
}

/// The per-call limits the `--timeout` (seconds) and `--max-memory-mib` flags set.
pub fn call_limits(timeout_secs: u64, max_memory_mib: usize) -> fwasm_executor::Limits {
    fwasm_executor::Limits {
        timeout: std::time::Duration::from_secs(timeout_secs),
        max_memory_bytes: max_memory_mib << 20,
        ..fwasm_executor::Limits::default()
    }
}

/// Serves `/metrics` for Prometheus on `addr` until the process ends; returns the address
/// it got.
pub async fn serve_metrics(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let listener = listen(addr, "--metrics").await?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async { fwasm_proto::metrics::handle().render() }),
    );
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(error = %err, "the metrics server stopped");
        }
    });
    Ok(bound)
}

/// Maps a service's boxed error into anyhow, for the binary's edge.
pub async fn run_service<E>(service: impl Future<Output = Result<(), E>>) -> anyhow::Result<()>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    service.await.map_err(|err| anyhow::anyhow!(err.into()))
}
