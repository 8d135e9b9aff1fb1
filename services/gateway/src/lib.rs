//! fwasm's gateway, the only public door: Faasm-compatible HTTP (upload on 8002, invoke on
//! 8080) and the public gRPC API (8081), with name validation and size limits.
//!
//! A call costs one placement request to the scheduler and then goes straight to the chosen
//! executor; in `fwasm up` both are in-process function calls.

pub mod auth;
mod authenticated;
mod calls_http;
mod console;
mod dapr_http;
mod faasm_json;
mod faasm_output;
mod faasm_planner;
mod functions_http;
mod gateway;
mod http;
mod metered;
mod public_grpc;
mod runtime_apis;
mod sidecar;
mod subscriptions_http;
mod tls_listener;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use auth::Caller;
pub use gateway::{Gateway, Invocation};
pub use public_grpc::routes as grpc_routes;

/// Request size limits.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Largest call input (HTTP body or gRPC input).
    pub max_input_bytes: usize,
    /// Largest module upload.
    pub max_module_bytes: usize,
    /// Whether every request must bring a token (`--auth`).
    pub auth: bool,
    /// With tokens on, Faasm's doors (`/f/`, `/fa/`, `POST /`, `/s/`, `/file`) still serve a
    /// request without a token as Faasm does (`--open-faasm-api-on-loopback`): for Faasm's own
    /// clients, which cannot send one. Only ever set with every listener on loopback.
    pub open_faasm_api: bool,
    /// Serve the public ports over TLS (this certificate, no client certificates); with the
    /// mesh's CA, reach the scheduler, state service and executors over mutual TLS.
    pub tls: Option<fwasm_proto::tls::Tls>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            max_input_bytes: 16 << 20,
            max_module_bytes: 64 << 20,
            auth: false,
            open_faasm_api: false,
            tls: None,
        }
    }
}

/// The gateway's three listening sockets.
pub struct GatewayListeners {
    pub invoke: TcpListener,
    pub upload: TcpListener,
    pub grpc: TcpListener,
}

/// Serves `gateway` on all three listeners until `shutdown` resolves.
pub async fn serve(
    listeners: GatewayListeners,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let signal = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|&s| s).await;
        }
    };
    let tls = match &gateway.config().tls {
        Some(tls) => Some(tls.http_server().map_err(std::io::Error::other)?),
        None => None,
    };
    let invoke = http::serve(
        listeners.invoke,
        http::invoke_router(gateway.clone()),
        tls.clone(),
        signal(),
    );
    let upload = http::serve(
        listeners.upload,
        http::upload_router(gateway.clone()),
        tls,
        signal(),
    );
    let grpc = public_grpc::serve(listeners.grpc, gateway, signal());
    tokio::try_join!(invoke, upload, grpc)?;
    Ok(())
}

/// Serves a gateway that reaches the scheduler and state services over gRPC; with tokens on,
/// `admin_token` becomes the operator's admin token.
pub async fn run(
    listeners: GatewayListeners,
    config: GatewayConfig,
    admin_token: Option<&str>,
    scheduler_addr: &str,
    state_addr: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use fwasm_proto::grpc::{connect_scheduler, connect_state};
    let tls = config.tls.clone();
    let gateway = Gateway::new(
        config,
        connect_scheduler(scheduler_addr, tls.as_ref())?,
        connect_state(state_addr, tls.as_ref())?,
        Arc::new(fwasm_proto::directory::RemoteExecutors::new(tls)),
    )
    .placing_from_leases();
    if let Some(token) = admin_token {
        gateway.install_admin_token(token).await?;
    }
    serve(listeners, Arc::new(gateway), shutdown).await?;
    Ok(())
}

/// Entry points for the fuzz targets (`fuzz/`): the parsers that see untrusted bytes.
#[doc(hidden)]
pub mod fuzzing {
    /// Parses a Faasm JSON message or planner message, as `POST /` does.
    pub fn faasm_json(body: &[u8]) {
        let _ = crate::faasm_json::parse(body);
        crate::faasm_planner::parse_for_fuzzing(body);
    }
}
