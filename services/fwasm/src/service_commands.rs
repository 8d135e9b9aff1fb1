//! `fwasm state|scheduler|executor|gateway`: each service in a process of its own, for
//! distributed mode. Every flag can also come from its `FWASM_*` environment variable or a
//! `--config` file (see `fwasm::config`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use fwasm::serve::{
    call_limits, gateway_addrs, gateway_listeners, listen_or_inherit, run_service, serve_metrics,
    write_ready_file,
};
use fwasm_executor::{ExecutorConfig, PythonRuntime, SidecarConfig};
use fwasm_gateway::GatewayConfig;
use fwasm_proto::outbound::HostPattern;
use fwasm_proto::tls::{CertificateDer, Tls};
use fwasm_scheduler::{ExecutorEndpoint, SchedulerConfig};
use fwasm_state::StateConfig;

/// Flags every service takes.
#[derive(Args)]
pub struct Common {
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, env = "FWASM_METRICS", value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Export spans over OTLP/gRPC to this collector, e.g. http://otel-collector:4317.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// A TOML file of flag values (e.g. `state = "host:7000"`); flags and FWASM_* variables win.
    #[arg(long, env = "FWASM_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Once listening, write the addresses bound (JSON, e.g. {"listen": "127.0.0.1:7000"})
    /// to FILE: how a supervisor learns the ports when an address says port 0.
    #[arg(long, env = "FWASM_READY_FILE", value_name = "FILE")]
    ready_file: Option<PathBuf>,
}

impl Common {
    /// Tracing and metrics for a service called `name`; keep the result until it stops.
    async fn start(&self, name: &str) -> anyhow::Result<Started> {
        let tracing = fwasm_proto::trace::init(name, self.otlp_endpoint.as_deref())?;
        let metrics = match self.metrics {
            Some(addr) => Some(serve_metrics(addr).await?),
            None => None,
        };
        Ok(Started {
            _tracing: tracing,
            metrics,
            ready_file: self.ready_file.clone(),
        })
    }
}

/// A service process's tracing and metrics, running until it is dropped.
struct Started {
    _tracing: fwasm_proto::trace::Tracing,
    metrics: Option<SocketAddr>,
    ready_file: Option<PathBuf>,
}

impl Started {
    /// Says where the service listens: in the log, and in the ready file if one is asked for.
    fn ready(&self, mut addrs: Vec<(&str, SocketAddr)>) -> anyhow::Result<()> {
        addrs.extend(self.metrics.map(|addr| ("metrics", addr)));
        tracing::info!(?addrs, "listening");
        match &self.ready_file {
            Some(path) => write_ready_file(path, &addrs),
            None => Ok(()),
        }
    }
}

#[derive(Args)]
pub struct StateService {
    /// Address to serve the state service's gRPC on (port 0: any free port). A listening socket passed
    /// by socket activation (systemd's LISTEN_FDS) takes its place.
    #[arg(long, env = "FWASM_LISTEN", default_value = "127.0.0.1:7000")]
    listen: SocketAddr,
    /// Directory of the embedded store (created if missing), unless --backend is set.
    #[arg(long, env = "FWASM_DATA_DIR", default_value = ".fwasm")]
    data_dir: PathBuf,
    /// Keep state, functions and shared files in Redis instead (redis://HOST:PORT).
    #[arg(long, env = "FWASM_BACKEND", value_name = "redis://HOST:PORT")]
    backend: Option<String>,
    #[command(flatten)]
    quotas: StorageQuotaArgs,
    #[command(flatten)]
    mesh: MeshArgs,
    #[command(flatten)]
    common: Common,
}

pub async fn state(args: StateService) -> anyhow::Result<()> {
    let started = args.common.start("fwasm-state").await?;
    let listener = listen_or_inherit(args.listen, "--listen").await?;
    // Run bare, this is a service of a deployment: say so, and where its data goes, for a
    // user who wanted a value (`get`, `set`).
    let store = match &args.backend {
        // Never the password a URL may carry.
        Some(url) => match url.split_once("://") {
            Some((scheme, rest)) if rest.contains('@') => {
                let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
                format!("in Redis at {scheme}://…@{host}")
            }
            _ => format!("in Redis at {url}"),
        },
        None => format!("under {}", args.data_dir.display()),
    };
    eprintln!(
        "fwasm state: serving the state service of a deployment on {}, its data {store}. \
         To read or write a value instead: fwasm state get USER/KEY, fwasm state set USER/KEY \
         VALUE.",
        listener.local_addr()?
    );
    let config = StateConfig {
        data_dir: args.data_dir,
        redis_url: args.backend,
        tls: args.mesh.load(listener.local_addr()?)?,
        limits: args.quotas.limits(),
    };
    started.ready(vec![("listen", listener.local_addr()?)])?;
    run_service(fwasm_state::run(listener, config, crate::shutdown_signal())).await
}

#[derive(Args)]
pub struct SchedulerService {
    /// Address to serve the scheduler's gRPC on (port 0: any free port). A listening socket passed
    /// by socket activation (systemd's LISTEN_FDS) takes its place.
    #[arg(long, env = "FWASM_LISTEN", default_value = "127.0.0.1:7001")]
    listen: SocketAddr,
    /// The state service (host:port).
    #[arg(long, env = "FWASM_STATE", default_value = "127.0.0.1:7000")]
    state: String,
    /// An executor to use without waiting for its heartbeat, as ID=HOST:PORT (repeatable).
    /// Executors also join by themselves.
    #[arg(long = "executor", value_name = "ID=HOST:PORT")]
    executors: Vec<String>,
    /// Save the call table in the state service, so calls and their results survive a
    /// restart of the scheduler (with the Redis backend, a move to another machine too).
    #[arg(long, env = "FWASM_DURABLE_CALLS", value_parser = clap::builder::BoolishValueParser::new())]
    durable_calls: bool,
    #[command(flatten)]
    quotas: QuotaArgs,
    #[command(flatten)]
    mesh: MeshArgs,
    #[command(flatten)]
    common: Common,
}

pub async fn scheduler(args: SchedulerService) -> anyhow::Result<()> {
    let started = args.common.start("fwasm-scheduler").await?;
    let executors = args
        .executors
        .iter()
        .map(|spec| match spec.split_once('=') {
            Some((id, addr)) if !id.is_empty() && !addr.is_empty() => Ok(ExecutorEndpoint {
                id: id.into(),
                addr: addr.into(),
            }),
            _ => anyhow::bail!("--executor takes ID=HOST:PORT, got {spec:?}"),
        })
        .collect::<anyhow::Result<_>>()?;
    let listener = listen_or_inherit(args.listen, "--listen").await?;
    let config = SchedulerConfig {
        executors,
        durable_calls: args.durable_calls,
        default_quota: args.quotas.default_quota()?,
        tls: args.mesh.load(listener.local_addr()?)?,
        ..SchedulerConfig::default()
    };
    tracing::info!(state = %args.state, "scheduler starting");
    started.ready(vec![("listen", listener.local_addr()?)])?;
    run_service(fwasm_scheduler::run(
        listener,
        config,
        &args.state,
        crate::shutdown_signal(),
    ))
    .await
}

#[derive(Args)]
pub struct ExecutorService {
    /// Address to serve the executor's gRPC on (port 0: any free port). A listening socket passed
    /// by socket activation (systemd's LISTEN_FDS) takes its place.
    #[arg(long, env = "FWASM_LISTEN", default_value = "127.0.0.1:7002")]
    listen: SocketAddr,
    /// The state service (host:port).
    #[arg(long, env = "FWASM_STATE", default_value = "127.0.0.1:7000")]
    state: String,
    /// The scheduler (host:port), which this executor joins by heartbeat.
    #[arg(long, env = "FWASM_SCHEDULER", default_value = "127.0.0.1:7001")]
    scheduler: String,
    /// This executor's name among the scheduler's executors [default: made from the
    /// advertised address].
    #[arg(long, env = "FWASM_ID")]
    id: Option<String>,
    /// The address others reach this executor at (host:port) [default: the address bound].
    #[arg(long, env = "FWASM_ADVERTISE")]
    advertise: Option<String>,
    /// Threads that run wasm [default: one per core].
    #[arg(long, env = "FWASM_WORKERS")]
    workers: Option<usize>,
    /// Calls from outside admitted at once; more are refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "FWASM_MAX_CALLS", default_value_t = 10_000)]
    max_calls: usize,
    /// Memory all functions' snapshots (what their initialisation set up) may hold together,
    /// in MiB; past it the least recently used are dropped and taken again when needed.
    #[arg(long, env = "FWASM_MAX_SNAPSHOT_MIB", default_value_t = 1024)]
    max_snapshot_mib: usize,
    /// Wall-clock limit of one call, in seconds.
    #[arg(long, env = "FWASM_TIMEOUT", default_value_t = 30)]
    timeout: u64,
    /// Memory limit of one call, in MiB.
    #[arg(long, env = "FWASM_MAX_MEMORY_MIB", default_value_t = 64)]
    max_memory_mib: usize,
    /// Most ranks in an MPI world a call here starts.
    #[arg(long, env = "FWASM_MAX_MPI_WORLD_SIZE", default_value_t = 64)]
    max_mpi_world_size: u32,
    #[command(flatten)]
    sidecar: SidecarArgs,
    #[command(flatten)]
    python: PythonArgs,
    #[command(flatten)]
    outbound: OutboundArgs,
    #[command(flatten)]
    mesh: MeshArgs,
    #[command(flatten)]
    common: Common,
}

/// `--tls-cert`, `--tls-key` and `--tls-ca`: this process's certificate, and the mesh's CA.
#[derive(Args)]
pub struct TlsArgs {
    /// This process's TLS certificate (PEM; a chain, leaf first): its ports serve TLS.
    #[arg(
        long,
        env = "FWASM_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(
        long,
        env = "FWASM_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// The mesh's certificate authority (PEM): the services talk mutual TLS, each showing its
    /// certificate, and accept only peers whose certificate it signed.
    #[arg(long, env = "FWASM_TLS_CA", value_name = "FILE", requires = "tls_cert")]
    pub tls_ca: Option<PathBuf>,
    /// The name every peer's certificate carries, checked in place of the host of its address
    /// (for peers known by IP, such as executors' pods).
    #[arg(
        long,
        env = "FWASM_TLS_SERVER_NAME",
        value_name = "NAME",
        requires = "tls_ca"
    )]
    pub tls_server_name: Option<String>,
}

impl TlsArgs {
    /// The files, read and checked; `None` without --tls-cert.
    pub fn load(&self) -> anyhow::Result<Option<Tls>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let tls = Tls::from_files(cert, key, self.tls_ca.as_deref())?;
        Ok(Some(tls.with_server_name(self.tls_server_name.clone())))
    }
}

/// TLS of an internal service (state, scheduler, executor), and the explicit opt-out.
#[derive(Args)]
pub struct MeshArgs {
    #[command(flatten)]
    tls: TlsArgs,
    /// Serve on a non-loopback address without mutual TLS anyway: whoever reaches the port
    /// can read every user's state or join the mesh.
    #[arg(long)]
    insecure_no_auth: bool,
}

impl MeshArgs {
    /// The mesh's TLS for a service bound to `bound`, refusing to serve beyond loopback
    /// without mutual TLS unless told --insecure-no-auth.
    fn load(&self, bound: SocketAddr) -> anyhow::Result<Option<Tls>> {
        let tls = self.tls.load()?;
        let mutual = tls.as_ref().is_some_and(Tls::is_mutual);
        if !mutual && !bound.ip().is_loopback() {
            if !self.insecure_no_auth {
                anyhow::bail!(
                    "refusing to serve on {bound} without mutual TLS: anyone who reaches it could \
                     read every user's state or join the mesh. Give --tls-cert, --tls-key and \
                     --tls-ca, listen on 127.0.0.1, or say --insecure-no-auth if this network \
                     is the mesh's alone"
                );
            }
            eprintln!(
                "WARNING: serving on {bound} without mutual TLS (--insecure-no-auth): anyone who \
                 reaches it can read every user's state or join the mesh"
            );
        }
        Ok(tls)
    }
}

/// Every user's quotas, of `up` and `scheduler`; an admin gives a user its own with
/// `fwasm quota set`.
#[derive(Args)]
pub struct QuotaArgs {
    /// Each user's most calls unfinished at once (running, queued or waiting), unless it has
    /// its own quota; 0: no limit. Below the executors' capacity, no user can take all of it.
    #[arg(long, env = "FWASM_QUOTA_CONCURRENT_CALLS", default_value_t = 0)]
    pub quota_concurrent_calls: u32,
    /// Each user's most calls started per second, on average; 0: no limit.
    #[arg(long, env = "FWASM_QUOTA_CALLS_PER_SECOND", default_value_t = 0.0)]
    pub quota_calls_per_second: f64,
    /// Each user's most calls started at once after a quiet while; 0: a second's worth.
    #[arg(long, env = "FWASM_QUOTA_BURST_CALLS", default_value_t = 0)]
    pub quota_burst_calls: u32,
}

impl QuotaArgs {
    pub fn default_quota(&self) -> anyhow::Result<fwasm_proto::pb::UserQuota> {
        fwasm_scheduler::check_rate(self.quota_calls_per_second)
            .map_err(|e| anyhow::anyhow!("--quota-calls-per-second: {e}"))?;
        Ok(fwasm_proto::pb::UserQuota {
            user: String::new(),
            max_concurrent_calls: self.quota_concurrent_calls,
            calls_per_second: self.quota_calls_per_second,
            burst_calls: self.quota_burst_calls,
            ..Default::default()
        })
    }
}

/// Every user's storage quotas, of `up` and `state`; an admin gives a user its own with
/// `fwasm quota set`.
#[derive(Args)]
pub struct StorageQuotaArgs {
    /// Each user's most bytes stored (its functions' modules, its state and its files),
    /// unless it has its own quota; 0: no limit.
    #[arg(long, env = "FWASM_QUOTA_STORED_BYTES", default_value_t = 0)]
    pub quota_stored_bytes: u64,
    /// Each user's most functions, unless it has its own quota; 0: no limit.
    #[arg(long, env = "FWASM_QUOTA_FUNCTIONS", default_value_t = 0)]
    pub quota_functions: u32,
}

impl StorageQuotaArgs {
    /// The state service's limits with these quotas.
    pub fn limits(&self) -> fwasm_state::StateLimits {
        fwasm_state::StateLimits {
            max_stored_bytes_per_user: self.quota_stored_bytes,
            max_functions_per_user: self.quota_functions,
            ..fwasm_state::StateLimits::default()
        }
    }
}

/// `--auth`, `--admin-token-file` and `--insecure-no-auth`, of `up` and `gateway`.
#[derive(Args)]
pub struct AuthArgs {
    /// Require a token on every request (Authorization: Bearer, or dapr-api-token): a user's
    /// token reaches that user's functions, state and calls; an admin's reaches all. The
    /// admin token comes from FWASM_ADMIN_TOKEN or --admin-token-file (for `up`, else one is
    /// made and kept in <data-dir>/admin-token).
    #[arg(long, conflicts_with = "insecure_no_auth")]
    pub auth: bool,
    /// A file holding the admin token (such as a mounted Kubernetes Secret).
    #[arg(long, env = "FWASM_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Serve without tokens on a non-loopback address anyway (anyone who can reach it can do
    /// anything). Without --auth, fwasm otherwise serves only on loopback.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// With --auth, still serve Faasm's own API (/f/, /fa/, POST /, /s/, /file) to requests
    /// without a token, for Faasm's clients, which cannot send one: on loopback only.
    #[arg(long, requires = "auth")]
    pub open_faasm_api_on_loopback: bool,
}

impl AuthArgs {
    /// Checks the flags against `host`, and finds the admin token when tokens are on (for
    /// `up`, `data_dir` is where a generated one is kept).
    pub fn admin_token(
        &self,
        host: IpAddr,
        data_dir: Option<&std::path::Path>,
    ) -> anyhow::Result<Option<fwasm::auth::AdminToken>> {
        fwasm::auth::check_exposure(host, self.auth, self.insecure_no_auth)?;
        if self.open_faasm_api_on_loopback && !host.is_loopback() {
            anyhow::bail!(
                "--open-faasm-api-on-loopback serves Faasm's API without tokens, so only on a \
                 loopback address, not {host}: listen on 127.0.0.1, or drop the flag and give \
                 Faasm's clients a token"
            );
        }
        if !self.auth {
            return Ok(None);
        }
        let from_env = std::env::var(fwasm::auth::ADMIN_TOKEN_ENV).ok();
        let token = fwasm::auth::admin_token(from_env, self.admin_token_file.as_deref(), data_dir)?;
        match token {
            Some(token) => Ok(Some(token)),
            None => anyhow::bail!(
                "--auth needs the admin token: set {} or give --admin-token-file FILE",
                fwasm::auth::ADMIN_TOKEN_ENV
            ),
        }
    }
}

/// `--allow-outbound HOST:PORT`, of `up` and `executor`.
#[derive(Args)]
pub struct OutboundArgs {
    /// A host functions may be allowed to reach over the network, as HOST:PORT
    /// (`*.example.com:443`, `*:443`, `10.0.0.7:*`; repeat for more): a function reaches the
    /// hosts its own allow-list names (`fwasm upload --allow-host`) that these match too.
    /// None by default: no function reaches anything.
    #[arg(long = "allow-outbound", env = "FWASM_ALLOW_OUTBOUND", value_name = "HOST:PORT",
          value_delimiter = ',', value_parser = parse_host_pattern)]
    pub allow_outbound: Vec<HostPattern>,
    /// A PEM file of certificate authorities functions' https requests trust besides the
    /// system's (a company's own CA, say).
    #[arg(long = "outbound-ca", env = "FWASM_OUTBOUND_CA", value_name = "FILE")]
    pub outbound_ca: Option<PathBuf>,
}

impl OutboundArgs {
    /// The extra trust roots, read and checked now so a bad file stops the process at start.
    pub fn roots(&self) -> anyhow::Result<Vec<CertificateDer<'static>>> {
        let Some(path) = &self.outbound_ca else {
            return Ok(Vec::new());
        };
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read --outbound-ca {}: {e}", path.display()))?;
        Ok(fwasm_proto::tls::certificates(
            &pem,
            "CA certificates (--outbound-ca)",
        )?)
    }
}

fn parse_host_pattern(entry: &str) -> Result<HostPattern, String> {
    entry.parse()
}

/// `--python-home DIR`, of `up` and `executor`.
#[derive(Args)]
pub struct PythonArgs {
    /// Where the Python runtime is (what scripts/build-python builds: python.wasm and
    /// lib/python311.zip). Default: ~/.cache/fwasm/python, used if it is there; without a
    /// runtime, Python functions' calls fail saying how to build it.
    #[arg(long, env = "FWASM_PYTHON_HOME", value_name = "DIR")]
    python_home: Option<PathBuf>,
}

impl PythonArgs {
    /// The runtime: the one --python-home names (an error if it is not there), else the
    /// default place's if built.
    pub fn load(&self) -> anyhow::Result<Option<Arc<PythonRuntime>>> {
        if let Some(home) = &self.python_home {
            let runtime = PythonRuntime::load(home).map_err(anyhow::Error::msg)?;
            return Ok(Some(Arc::new(runtime)));
        }
        let Some(home) = PythonRuntime::default_home() else {
            return Ok(None);
        };
        match PythonRuntime::load(&home) {
            Ok(runtime) => Ok(Some(Arc::new(runtime))),
            Err(missing) => {
                tracing::info!("Python functions cannot run here: {missing}");
                Ok(None)
            }
        }
    }
}

/// `--sidecar ADDR --sidecar-api layotto|dapr`, of `up` and `executor`.
#[derive(Args)]
pub struct SidecarArgs {
    /// A Layotto or Dapr sidecar (host:port of its gRPC API) for functions to reach: their
    /// sidecar requests, and Layotto's proxy_get_state and proxy_invoke_service, go to it.
    #[arg(
        long,
        env = "FWASM_SIDECAR",
        value_name = "ADDR",
        requires = "sidecar_api"
    )]
    sidecar: Option<String>,
    /// The runtime API the sidecar speaks.
    #[arg(
        long,
        env = "FWASM_SIDECAR_API",
        value_name = "API",
        value_parser = ["layotto", "dapr"],
        requires = "sidecar"
    )]
    sidecar_api: Option<String>,
    /// Say that every user's functions may use the sidecar, one namespace for all (its stores,
    /// apps, bindings and secrets are not scoped to users); `up --auth` needs it to take a
    /// sidecar.
    #[arg(long, requires = "sidecar")]
    sidecar_shared_by_all_users: bool,
}

impl SidecarArgs {
    /// Refuses a sidecar on a platform whose users are tenants, unless the operator said every
    /// user may share it.
    pub fn check_tenancy(&self, auth: bool) -> anyhow::Result<()> {
        if auth && self.sidecar.is_some() && !self.sidecar_shared_by_all_users {
            anyhow::bail!(
                "--sidecar with --auth: every user's functions would reach the one sidecar, its \
                 stores, apps, bindings and secrets, whatever their user; say \
                 --sidecar-shared-by-all-users if they may"
            );
        }
        Ok(())
    }

    pub fn config(&self) -> Option<SidecarConfig> {
        let (addr, api) = (self.sidecar.as_ref()?, self.sidecar_api.as_ref()?);
        // The parser admits only the two names.
        let api = api.parse().ok()?;
        Some(SidecarConfig::new(addr.clone(), api))
    }
}

/// An executor name (letters, digits, `_`, `.`, `-`) made from its address: `[::1]:7002`
/// gives `---1--7002`.
fn id_from(addr: &str) -> String {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    addr.chars()
        .map(|c| if allowed(c) { c } else { '-' })
        .collect()
}

pub async fn executor(args: ExecutorService) -> anyhow::Result<()> {
    let started = args.common.start("fwasm-executor").await?;
    let listener = listen_or_inherit(args.listen, "--listen").await?;
    // The bound address, not --listen: with port 0 only the bound one says the port.
    let bound = listener.local_addr()?;
    if args.advertise.is_none() && bound.ip().is_unspecified() {
        anyhow::bail!(
            "--listen {bound} is no address others can reach this executor at; give --advertise \
             HOST:PORT too"
        );
    }
    let advertise = args.advertise.unwrap_or_else(|| bound.to_string());
    let id = args.id.unwrap_or_else(|| id_from(&advertise));
    let defaults = ExecutorConfig::default();
    let config = ExecutorConfig {
        id: id.clone(),
        advertise_addr: Some(advertise.clone()),
        limits: fwasm_executor::Limits {
            max_mpi_world_size: args.max_mpi_world_size,
            ..call_limits(args.timeout, args.max_memory_mib)
        },
        workers: args.workers.unwrap_or(defaults.workers),
        max_concurrent_calls: args.max_calls,
        max_snapshot_bytes: args.max_snapshot_mib << 20,
        sidecar: args.sidecar.config(),
        tls: args.mesh.load(bound)?,
        python: args.python.load()?,
        outbound_roots: args.outbound.roots()?,
        allow_outbound: args.outbound.allow_outbound,
        ..defaults
    };
    tracing::info!(%id, %advertise, scheduler = %args.scheduler, "executor starting");
    started.ready(vec![("listen", bound)])?;
    run_service(fwasm_executor::run(
        listener,
        config,
        &args.state,
        &args.scheduler,
        crate::shutdown_signal(),
    ))
    .await
}

#[derive(Args)]
pub struct GatewayService {
    /// The state service (host:port).
    #[arg(long, env = "FWASM_STATE", default_value = "127.0.0.1:7000")]
    state: String,
    /// The scheduler (host:port).
    #[arg(long, env = "FWASM_SCHEDULER", default_value = "127.0.0.1:7001")]
    scheduler: String,
    /// Address to listen on; 0.0.0.0 to accept connections from other machines.
    #[arg(long, env = "FWASM_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port of the invoke API (Faasm's 8080); also serves /metrics.
    #[arg(long, env = "FWASM_INVOKE_PORT", default_value_t = 8080)]
    invoke_port: u16,
    /// Port of the upload API (Faasm's 8002).
    #[arg(long, env = "FWASM_UPLOAD_PORT", default_value_t = 8002)]
    upload_port: u16,
    /// Port of the public gRPC API.
    #[arg(long, env = "FWASM_GRPC_PORT", default_value_t = 8081)]
    grpc_port: u16,
    #[command(flatten)]
    auth: AuthArgs,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    common: Common,
}

pub async fn gateway(args: GatewayService) -> anyhow::Result<()> {
    let admin_token = args.auth.admin_token(args.host, None)?;
    let started = args.common.start("fwasm-gateway").await?;
    let ports = [args.invoke_port, args.upload_port, args.grpc_port];
    let listeners = gateway_listeners(args.host, ports).await?;
    tracing::info!(scheduler = %args.scheduler, state = %args.state, auth = args.auth.auth, "gateway starting");
    started.ready(gateway_addrs(&listeners)?.to_vec())?;
    let config = GatewayConfig {
        auth: args.auth.auth,
        open_faasm_api: args.auth.open_faasm_api_on_loopback,
        tls: args.tls.load()?,
        ..GatewayConfig::default()
    };
    run_service(fwasm_gateway::run(
        listeners,
        config,
        admin_token.as_ref().map(|admin| admin.token.as_str()),
        &args.scheduler,
        &args.state,
        crate::shutdown_signal(),
    ))
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_executor_named_by_its_address_gets_a_valid_name() {
        for addr in ["10.0.0.5:7002", "[::1]:7002", "exec-1.local:7002"] {
            let id = super::id_from(addr);
            assert_eq!(
                fwasm_proto::names::check_name("executor", &id),
                Ok(()),
                "{addr}"
            );
        }
        assert_eq!(super::id_from("[::1]:7002"), "---1--7002");
    }
}
