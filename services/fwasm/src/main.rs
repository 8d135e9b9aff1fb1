use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use fwasm::up::{DEMOS, UpConfig};
use fwasm_executor::{ExecutorConfig, Limits};
use fwasm_gateway::{GatewayConfig, GatewayListeners};
use tokio::net::TcpListener;

/// fwasm: serverless WebAssembly functions.
#[derive(Parser)]
#[command(name = "fwasm", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole platform in one process, with demo functions ready to call.
    Up(UpArgs),
    /// Upload a compiled function (a .wasm file) as USER/NAME.
    Upload {
        /// Who the function belongs to and its name, e.g. demo/echo.
        target: String,
        /// The .wasm file.
        file: PathBuf,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Call a function and print its output.
    Invoke {
        /// The function to call, e.g. demo/hello.
        target: String,
        /// Input as text.
        #[arg(long)]
        input: Option<String>,
        /// Input read from a file.
        #[arg(long, conflicts_with = "input")]
        input_file: Option<PathBuf>,
        /// Start the call in the background and print its id instead of its output.
        #[arg(long = "async")]
        run_async: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Read or write a user's state (the global tier functions pull from and push to).
    #[command(subcommand)]
    State(StateCommand),
    /// Show how a call is doing: RUNNING, SUCCESS: <output> or FAILED: <reason>.
    ///
    /// Exits with status 1 when the call failed.
    Status {
        /// The call id `fwasm invoke --async` printed.
        id: u64,
        /// Wait until the call has ended.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Subcommand)]
enum StateCommand {
    /// Print a value (its bytes as they are).
    Get {
        /// The user and key, e.g. demo/counter.
        target: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Set a value.
    Set {
        /// The user and key, e.g. demo/counter.
        target: String,
        /// The value as text.
        value: Option<String>,
        /// The value read from a file.
        #[arg(long, conflicts_with = "value")]
        file: Option<PathBuf>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Args)]
struct ServerArgs {
    /// Address of fwasm's public gRPC API.
    #[arg(long, env = "FWASM_ADDR", default_value = "http://127.0.0.1:8081")]
    addr: String,
}

#[derive(Args)]
struct UpArgs {
    /// Port of the invoke API (Faasm's 8080).
    #[arg(long, default_value_t = 8080)]
    invoke_port: u16,
    /// Port of the upload API (Faasm's 8002).
    #[arg(long, default_value_t = 8002)]
    upload_port: u16,
    /// Port of the public gRPC API.
    #[arg(long, default_value_t = 8081)]
    grpc_port: u16,
    /// Address to listen on; 0.0.0.0 to accept connections from other machines.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Where the embedded store keeps functions (created if missing).
    #[arg(long, default_value = ".fwasm")]
    data_dir: PathBuf,
    /// Wall-clock limit of one call, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Memory limit of one call, in MiB.
    #[arg(long, default_value_t = 64)]
    max_memory_mib: usize,
    /// Threads that run wasm (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Keep state and functions in Redis (redis://HOST:PORT) instead of under --data-dir.
    #[arg(long, value_name = "redis://HOST:PORT")]
    state_backend: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Up(args) => up(args).await,
        Command::Upload {
            target,
            file,
            server,
        } => fwasm::client::upload(&server.addr, &target, &file, &mut std::io::stdout()).await,
        Command::Invoke {
            target,
            input,
            input_file,
            run_async,
            server,
        } => {
            let input = match (input, input_file) {
                (Some(text), _) => text.into_bytes(),
                (None, Some(path)) => std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                (None, None) => Vec::new(),
            };
            let out = &mut std::io::stdout();
            if run_async {
                let id = fwasm::client::invoke_async(&server.addr, &target, input, out).await?;
                eprintln!("Follow it: fwasm status {id} --wait");
                return Ok(());
            }
            fwasm::client::invoke(&server.addr, &target, input, out).await
        }
        Command::State(StateCommand::Get { target, server }) => {
            fwasm::client::state_get(&server.addr, &target, &mut std::io::stdout()).await
        }
        Command::State(StateCommand::Set {
            target,
            value,
            file,
            server,
        }) => {
            let value = match (value, file) {
                (Some(text), _) => text.into_bytes(),
                (None, Some(path)) => std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                (None, None) => anyhow::bail!("give the value, or --file FILE"),
            };
            fwasm::client::state_set(&server.addr, &target, value).await
        }
        Command::Status { id, wait, server } => {
            if wait {
                eprintln!("Waiting for call {id} to end ...");
            }
            let status =
                fwasm::client::status(&server.addr, id, wait, &mut std::io::stdout()).await?;
            if status == fwasm_proto::pb::CallStatus::Failed {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let listen = |port: u16, flag: &'static str| async move {
        let addr = SocketAddr::new(args.host, port);
        TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}; choose another port with {flag}"))
    };
    let listeners = GatewayListeners {
        invoke: listen(args.invoke_port, "--invoke-port").await?,
        upload: listen(args.upload_port, "--upload-port").await?,
        grpc: listen(args.grpc_port, "--grpc-port").await?,
    };
    let defaults = ExecutorConfig::default();
    let config = UpConfig {
        data_dir: args.data_dir.clone(),
        state_backend: args.state_backend.clone(),
        executor: ExecutorConfig {
            limits: Limits {
                timeout: Duration::from_secs(args.timeout),
                max_memory_bytes: args.max_memory_mib << 20,
                ..Limits::default()
            },
            workers: args.workers.unwrap_or(defaults.workers),
            ..defaults
        },
        gateway: GatewayConfig::default(),
    };
    let gateway = fwasm::up::start(config).await?;
    let demos: Vec<String> = DEMOS.iter().map(|(u, f, _)| format!("{u}/{f}")).collect();
    println!("fwasm is up (data in {})", args.data_dir.display());
    println!(
        "  invoke  http://{}:{}   try: curl -X POST localhost:{}/f/demo/echo -d hi",
        args.host, args.invoke_port, args.invoke_port
    );
    println!(
        "  upload  http://{}:{}   curl -X PUT localhost:{}/f/USER/NAME -T function.wasm",
        args.host, args.upload_port, args.upload_port
    );
    println!(
        "  gRPC    {}:{}          fwasm invoke demo/hello --input you",
        args.host, args.grpc_port
    );
    println!("  demo functions: {}", demos.join(", "));
    println!("Press Ctrl-C to stop.");
    fwasm_gateway::serve(listeners, gateway, shutdown_signal()).await?;
    println!("fwasm stopped");
    Ok(())
}

/// Ctrl-C, or SIGTERM as sent by container runtimes.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
