use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use fwasm::serve::{call_limits, gateway_addrs, gateway_listeners, write_ready_file};
use fwasm::up::{DEMOS, UpConfig};
use fwasm_executor::{ExecutorConfig, Limits};
use fwasm_gateway::GatewayConfig;
use fwasm_proto::pb::FunctionSettings;

mod service_commands;

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
    /// Compile C/C++ sources into a function (.wasm) with clang and the built-in C SDK.
    #[command(long_about = BUILD_ABOUT)]
    Build(BuildArgs),
    /// Upload a function (a compiled .wasm file, or a .py Python script) as USER/NAME.
    Upload {
        /// Who the function belongs to and its name, e.g. demo/echo.
        target: String,
        /// The .wasm file, or a Python script (a .py file: its calls run in the executors'
        /// Python runtime).
        file: PathBuf,
        /// An environment variable its calls see, as KEY=VALUE (repeat for more).
        #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
        env: Vec<(String, String)>,
        /// A host its calls may reach over the network, as HOST:PORT (`*.example.com:443`
        /// for subdomains, `:*` for any port; repeat for more), within what the platform
        /// allows (`--allow-outbound`). None by default.
        #[arg(long = "allow-host", value_name = "HOST:PORT")]
        allow_hosts: Vec<String>,
        /// A limit of its calls, timeout=SECS or memory=MIB (repeat for both); each at most
        /// the platform's own (`up --timeout`, `--max-memory-mib`), which apply without one.
        #[arg(long = "limit", value_name = "NAME=VALUE")]
        limits: Vec<String>,
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
        /// The program's command line: its argv after the function's name (WASI commands and
        /// Faasm's `main` functions read it), e.g. --cmdline "-n 3 data.txt".
        #[arg(long, default_value = "", allow_hyphen_values = true)]
        cmdline: String,
        /// Run the function as an MPI world of N ranks (Faasm's `mpi_world_size`): this call
        /// is rank 0, its MPI_Init starts ranks 1 to N-1, and its output is rank 0's.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        mpi: Option<u32>,
        /// Start the call in the background and print its id instead of its output.
        #[arg(long = "async")]
        run_async: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Start a function project in a new folder NAME: a Rust crate with the SDK (or a C or
    /// C++ handler), ready for `fwasm build`.
    New {
        /// The project's folder and the function's name, e.g. hello.
        name: String,
        /// The language to write it in.
        #[arg(long, value_enum, default_value = "rust")]
        lang: fwasm::new::Lang,
    },
    /// Load a function: call it over N connections for D seconds, and print its latencies
    /// (p50, p99, max) and calls per second.
    Bench {
        /// The function to call, e.g. demo/echo.
        target: String,
        /// Connections, each with one call in flight at a time.
        #[arg(short = 'c', long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        connections: u32,
        /// How long to run, in seconds.
        #[arg(short = 'd', long, default_value_t = 10.0)]
        duration: f64,
        /// Input of every call, as text.
        #[arg(long)]
        input: Option<String>,
        /// Input of every call, read from a file.
        #[arg(long, conflicts_with = "input")]
        input_file: Option<PathBuf>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Run the state service, or read or write a user's state with `get` and `set`.
    #[command(args_conflicts_with_subcommands = true)]
    State(StateArgs),
    /// Run the scheduler service (distributed mode).
    Scheduler(service_commands::SchedulerService),
    /// Run an executor, which joins the scheduler (distributed mode).
    Executor(service_commands::ExecutorService),
    /// Run a gateway, the public HTTP and gRPC APIs (distributed mode).
    Gateway(service_commands::GatewayService),
    /// List or delete shared files (Faasm's `/file`): a user's, or the common ones.
    #[command(subcommand)]
    Files(FilesCommand),
    /// List a user's functions: name, size, ABI, hash, when uploaded, settings.
    List {
        /// The user, e.g. demo.
        user: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Delete a function: its calls are refused from then on.
    Rm {
        /// The function, e.g. demo/echo.
        target: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Subscribe a function to a topic of its user: every event published there (Dapr's or
    /// Layotto's PublishEvent, Dapr's HTTP publish, a function's `publish`) calls it in the
    /// background with the event in a CloudEvents JSON envelope.
    Subscribe {
        /// The function, e.g. shop/ship.
        target: String,
        /// The topic, e.g. orders.
        topic: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// End a function's subscription to a topic.
    Unsubscribe {
        /// The function, e.g. shop/ship.
        target: String,
        /// The topic, e.g. orders.
        topic: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Create, list and revoke API tokens (with an admin token).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Show a user's quotas, or give it its own (with an admin token).
    #[command(subcommand)]
    Quota(QuotaCommand),
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
    /// Cancel a call that has not ended (running, waiting or queued): it ends FAILED
    /// "cancelled", and the state locks it held are released.
    Cancel {
        /// The call id (`fwasm invoke --async` prints it; HTTP replies carry it in
        /// x-fwasm-call-id).
        id: u64,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Print a call's log lines (what it logged, and each line it wrote to stderr).
    Logs {
        /// The call id (`fwasm invoke --async` prints it; HTTP replies carry it in
        /// x-fwasm-call-id).
        id: u64,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Subcommand)]
enum FilesCommand {
    /// List shared files, with their sizes.
    List {
        /// Whose files [default: the common ones, which every function reads (an admin's)].
        #[arg(long)]
        user: Option<String>,
        /// Only paths that start with this.
        #[arg(long, default_value = "")]
        prefix: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Delete a shared file.
    Rm {
        /// Its path, e.g. data/model.bin.
        path: String,
        /// Whose file [default: a common one (an admin's)].
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Subcommand)]
enum QuotaCommand {
    /// Give USER its own quotas in place of the defaults (0, or a limit left out, keeps the
    /// default's; all 0 goes back to the defaults). In force at once.
    Set {
        /// The user, e.g. alice.
        user: String,
        /// Its most calls unfinished at once (running, queued or waiting).
        #[arg(long, default_value_t = 0)]
        concurrent_calls: u32,
        /// Its most calls started per second, on average.
        #[arg(long, default_value_t = 0.0)]
        calls_per_second: f64,
        /// Its most calls started at once after a quiet while.
        #[arg(long, default_value_t = 0)]
        burst_calls: u32,
        /// Its most bytes stored: its functions' modules, its state and its files.
        #[arg(long, default_value_t = 0)]
        stored_bytes: u64,
        /// Its most functions.
        #[arg(long, default_value_t = 0)]
        functions: u32,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show the quotas in force for USER (its own, else the defaults), and what it stores.
    Get {
        /// The user, e.g. alice.
        user: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Make a token for USER (or an admin token) and print it: it is shown this once.
    Create {
        /// The user whose functions, state and calls the token reaches.
        #[arg(required_unless_present = "admin")]
        user: Option<String>,
        /// An admin token instead: it reaches every user and manages tokens.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List every token: id, user, whether admin, when made (never the secrets).
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Revoke a token by its id: it stops working at once.
    Revoke {
        /// The token's id (`fwasm token list` shows them).
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Args)]
struct StateArgs {
    #[command(subcommand)]
    command: Option<StateCommand>,
    #[command(flatten)]
    service: service_commands::StateService,
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
    /// List a user's keys, one per line.
    List {
        /// The user, e.g. demo.
        user: String,
        /// Only keys that start with this.
        #[arg(long, default_value = "")]
        prefix: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Delete a key (its value and append list).
    Rm {
        /// The user and key, e.g. demo/counter.
        target: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

const BUILD_ABOUT: &str = "\
Compile C/C++ sources into a function (.wasm) with clang and the built-in C SDK.

A function is written against one of two C APIs:
  fwasm  #include <fwasm.h> and define
           void fwasm_handle_request(const fwasm_request *req, fwasm_response *res)
         (or FWASM_HANDLER(req, res) { ... }): read the request, fill in the response.
  faasm  define int main() (and #include <faasm/faasm.h> for its calls): Faasm's C API (faasmGetInput,
         faasmSetOutput, faasmChain, faasmReadState, ...), so a Faasm function's source builds
         unchanged. Input is the request body, output the response body; a non-zero return
         value fails the call with that return code.
The API is the one whose entry point the compiled sources define: main makes a Faasm-API
function, fwasm_handle_request an fwasm one. --api overrides the detection.

The SDK's headers and sources are built into this binary and written to a temporary directory
for each build, so no checkout of fwasm is needed. Every source is compiled with
`clang --target=wasm32-wasi -O2` (C++, by its extension .cc/.cpp/.cxx/.c++/.C, with
-fno-exceptions -std=c++17), the macro __fwasm__ defined, then linked with the SDK into a WASI
reactor (-mexec-model=reactor) with a 64 KiB stack. printf, fopen of shared files under /,
time() and the like work through WASI's libc.

Needs clang with the wasm32-wasi target, lld and WASI's libc. On Debian or Ubuntu:
  sudo apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32 \\
      libc++-14-dev-wasm32 libc++abi-14-dev-wasm32
clang is $FWASM_CLANG, --clang, or clang (clang-NN) on PATH; Debian's finds the WASI sysroot
by itself, another clang (wasi-sdk's, say) may need --sysroot.

Example:
  fwasm build hello.c -o hello.wasm && fwasm upload demo/hello hello.wasm";

#[derive(Args)]
struct BuildArgs {
    /// The function's C (.c) and C++ (.cc, .cpp, .cxx) sources [default: the Rust crate in
    /// this folder (its Cargo.toml), else the C and C++ sources here].
    #[arg(value_name = "SRC")]
    sources: Vec<PathBuf>,
    /// The module to write [default: the first source's name with .wasm].
    #[arg(short, long, value_name = "OUT.wasm")]
    output: Option<PathBuf>,
    /// The C API the sources use [default: faasm if a source defines main, fwasm if one
    /// defines fwasm_handle_request].
    #[arg(long, value_enum)]
    api: Option<fwasm::build::Api>,
    /// The WASI sysroot (include/ and lib/ of wasi-libc), if clang does not find it itself.
    #[arg(long, env = "FWASM_SYSROOT", value_name = "DIR")]
    sysroot: Option<PathBuf>,
    /// The clang to run [default: $FWASM_CLANG, else clang or clang-NN on PATH].
    #[arg(long, value_name = "PATH")]
    clang: Option<PathBuf>,
    /// Another directory to search for headers.
    #[arg(short = 'I', long = "include", value_name = "DIR")]
    include_dirs: Vec<PathBuf>,
    /// An extra argument for clang when compiling the sources, e.g. --cflag=-DDEBUG.
    #[arg(long = "cflag", value_name = "ARG", allow_hyphen_values = true)]
    cflags: Vec<String>,
    /// An extra argument for clang when linking, e.g. --ldflag=-lm.
    #[arg(long = "ldflag", value_name = "ARG", allow_hyphen_values = true)]
    ldflags: Vec<String>,
    /// Print the clang commands.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Args)]
struct ServerArgs {
    /// Address of fwasm's public gRPC API.
    #[arg(long, env = "FWASM_ADDR", default_value = "http://127.0.0.1:8081")]
    addr: String,
    /// The token to send (for an fwasm started with --auth).
    #[arg(long, env = "FWASM_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// For an https:// --addr: the CA certificate (PEM) that signed the gateway's.
    #[arg(long, env = "FWASM_TLS_CA", value_name = "FILE")]
    tls_ca: Option<PathBuf>,
}

impl From<&ServerArgs> for fwasm::client::Server {
    fn from(args: &ServerArgs) -> Self {
        Self {
            addr: args.addr.clone(),
            token: args.token.clone(),
            tls_ca: args.tls_ca.clone(),
        }
    }
}

#[derive(Args)]
struct UpArgs {
    /// Port of the invoke API (Faasm's 8080); 0 for any free port (the banner says which).
    #[arg(long, env = "FWASM_INVOKE_PORT", default_value_t = 8080)]
    invoke_port: u16,
    /// Port of the upload API (Faasm's 8002).
    #[arg(long, env = "FWASM_UPLOAD_PORT", default_value_t = 8002)]
    upload_port: u16,
    /// Port of the public gRPC API.
    #[arg(long, env = "FWASM_GRPC_PORT", default_value_t = 8081)]
    grpc_port: u16,
    /// Address to listen on; 0.0.0.0 to accept connections from other machines.
    #[arg(long, env = "FWASM_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// Where the embedded store keeps functions (created if missing).
    #[arg(long, env = "FWASM_DATA_DIR", default_value = ".fwasm")]
    data_dir: PathBuf,
    /// Wall-clock limit of one call, in seconds.
    #[arg(long, env = "FWASM_TIMEOUT", default_value_t = 30)]
    timeout: u64,
    /// Memory limit of one call, in MiB.
    #[arg(long, env = "FWASM_MAX_MEMORY_MIB", default_value_t = 64)]
    max_memory_mib: usize,
    /// Most ranks in an MPI world (`fwasm invoke --mpi N`, Faasm's `mpi_world_size`).
    #[arg(long, env = "FWASM_MAX_MPI_WORLD_SIZE", default_value_t = 64)]
    max_mpi_world_size: u32,
    /// Threads that run wasm (default: one per core).
    #[arg(long, env = "FWASM_WORKERS")]
    workers: Option<usize>,
    /// Memory all functions' snapshots (what their initialisation set up) may hold together,
    /// in MiB; past it the least recently used are dropped and taken again when needed.
    #[arg(long, env = "FWASM_MAX_SNAPSHOT_MIB", default_value_t = 1024)]
    max_snapshot_mib: usize,
    /// Keep state and functions in Redis (redis://HOST:PORT) instead of under --data-dir.
    #[arg(long, env = "FWASM_STATE_BACKEND", value_name = "redis://HOST:PORT")]
    state_backend: Option<String>,
    /// Export spans over OTLP/gRPC to this collector, e.g. http://localhost:4317.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// Once serving, write the addresses bound (JSON: invoke, upload, grpc) to FILE.
    #[arg(long, env = "FWASM_READY_FILE", value_name = "FILE")]
    ready_file: Option<PathBuf>,
    /// A TOML file of flag values (e.g. `timeout = 10`); flags and FWASM_* variables win.
    #[arg(long, env = "FWASM_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    sidecar: service_commands::SidecarArgs,
    #[command(flatten)]
    python: service_commands::PythonArgs,
    #[command(flatten)]
    outbound: service_commands::OutboundArgs,
    #[command(flatten)]
    auth: service_commands::AuthArgs,
    #[command(flatten)]
    quotas: service_commands::QuotaArgs,
    #[command(flatten)]
    storage_quotas: service_commands::StorageQuotaArgs,
    #[command(flatten)]
    tls: service_commands::TlsArgs,
}

fn main() -> std::process::ExitCode {
    // Before any other thread exists: taking the sockets clears LISTEN_FDS from the
    // environment, which is only sound while no thread can be reading it.
    fwasm::serve::claim_passed_sockets();
    let ran = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run()));
    match ran {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The message and its causes on one line: a user's mistake is not a crash, so no
        // backtrace even with RUST_BACKTRACE set.
        Err(error) => {
            eprintln!("Error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `KEY=VALUE` for `--env`.
fn parse_env(pair: &str) -> Result<(String, String), String> {
    match pair.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("{pair:?} is not KEY=VALUE")),
    }
}

async fn run() -> anyhow::Result<()> {
    let args = std::env::args_os().collect();
    let args = fwasm::config::with_config_file(args, &<Cli as clap::CommandFactory>::command())?;
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Up(args) => up(args).await,
        Command::Build(args) => build(args),
        Command::Upload {
            target,
            file,
            env,
            allow_hosts,
            limits,
            server,
        } => {
            let mut settings = FunctionSettings {
                env: env.into_iter().collect(),
                allow_hosts,
                ..FunctionSettings::default()
            };
            for limit in &limits {
                fwasm_proto::names::set_limit(&mut settings, limit)
                    .map_err(|e| anyhow::anyhow!("--limit {limit}: {}", e.message))?;
            }
            let settings = (settings != FunctionSettings::default()).then_some(settings);
            let out = &mut std::io::stdout();
            fwasm::client::upload_with_settings(&server, &target, &file, settings, out).await
        }
        Command::Invoke {
            target,
            input,
            input_file,
            cmdline,
            mpi,
            run_async,
            server,
        } => {
            let input = fwasm::client::CallInput {
                input: text_or_file(input, input_file)?.unwrap_or_default(),
                cmdline,
                mpi_world_size: mpi.unwrap_or(0),
            };
            let out = &mut std::io::stdout();
            if run_async {
                let id = fwasm::client::invoke_async(&server, &target, input, out).await?;
                eprintln!("Follow it: fwasm status {id} --wait");
                return Ok(());
            }
            fwasm::client::invoke(&server, &target, input, out).await?;
            // On a terminal the prompt goes on a line of its own; piped output stays exact.
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                println!();
            }
            Ok(())
        }
        Command::State(StateArgs {
            command: None,
            service,
        }) => service_commands::state(service).await,
        Command::Scheduler(args) => service_commands::scheduler(args).await,
        Command::Executor(args) => service_commands::executor(args).await,
        Command::Gateway(args) => service_commands::gateway(args).await,
        Command::State(StateArgs {
            command: Some(StateCommand::Get { target, server }),
            ..
        }) => fwasm::client::state_get(&server, &target, &mut std::io::stdout()).await,
        Command::State(StateArgs {
            command:
                Some(StateCommand::Set {
                    target,
                    value,
                    file,
                    server,
                }),
            ..
        }) => {
            let Some(value) = text_or_file(value, file)? else {
                anyhow::bail!("give the value, or --file FILE");
            };
            fwasm::client::state_set(&server, &target, value).await
        }
        Command::State(StateArgs {
            command:
                Some(StateCommand::List {
                    user,
                    prefix,
                    server,
                }),
            ..
        }) => fwasm::client::state_list(&server, &user, &prefix, &mut std::io::stdout()).await,
        Command::State(StateArgs {
            command: Some(StateCommand::Rm { target, server }),
            ..
        }) => fwasm::client::state_rm(&server, &target, &mut std::io::stdout()).await,
        Command::Files(FilesCommand::List {
            user,
            prefix,
            server,
        }) => {
            let user = user.unwrap_or_default();
            fwasm::client::files_list(&server, &user, &prefix, &mut std::io::stdout()).await
        }
        Command::Files(FilesCommand::Rm { path, user, server }) => {
            let user = user.unwrap_or_default();
            fwasm::client::files_rm(&server, &user, &path, &mut std::io::stdout()).await
        }
        Command::List { user, server } => {
            fwasm::client::list_functions(&server, &user, &mut std::io::stdout()).await
        }
        Command::Rm { target, server } => {
            fwasm::client::delete_function(&server, &target, &mut std::io::stdout()).await
        }
        Command::Subscribe {
            target,
            topic,
            server,
        } => {
            let out = &mut std::io::stdout();
            fwasm::client::subscribe(&server, &target, &topic, true, out).await
        }
        Command::Unsubscribe {
            target,
            topic,
            server,
        } => {
            let out = &mut std::io::stdout();
            fwasm::client::subscribe(&server, &target, &topic, false, out).await
        }
        Command::Token(TokenCommand::Create {
            user,
            admin,
            server,
        }) => {
            let user = user.unwrap_or_default();
            let (out, note) = (&mut std::io::stdout(), &mut std::io::stderr());
            fwasm::client::token_create(&server, &user, admin, out, note).await
        }
        Command::Token(TokenCommand::List { server }) => {
            fwasm::client::token_list(&server, &mut std::io::stdout()).await
        }
        Command::Token(TokenCommand::Revoke { id, server }) => {
            fwasm::client::token_revoke(&server, &id, &mut std::io::stdout()).await
        }
        Command::Quota(QuotaCommand::Set {
            user,
            concurrent_calls,
            calls_per_second,
            burst_calls,
            stored_bytes,
            functions,
            server,
        }) => {
            let quota = fwasm_proto::pb::UserQuota {
                user,
                max_concurrent_calls: concurrent_calls,
                calls_per_second,
                burst_calls,
                max_stored_bytes: stored_bytes,
                max_functions: functions,
            };
            fwasm::client::quota_set(&server, quota, &mut std::io::stdout()).await
        }
        Command::Quota(QuotaCommand::Get { user, server }) => {
            fwasm::client::quota_get(&server, &user, &mut std::io::stdout()).await
        }
        Command::New { name, lang } => {
            let (dir, next) = fwasm::new::create(&std::env::current_dir()?, &name, lang)?;
            println!("Created {} ({lang:?}). Next:", dir.display());
            for command in next {
                println!("  {command}");
            }
            Ok(())
        }
        Command::Bench {
            target,
            connections,
            duration,
            input,
            input_file,
            server,
        } => {
            if !(duration > 0.0 && duration <= 86_400.0) {
                anyhow::bail!("-d takes seconds, more than 0 and at most a day");
            }
            let options = fwasm::bench::BenchOptions {
                connections: connections as usize,
                duration: std::time::Duration::from_secs_f64(duration),
                input: text_or_file(input, input_file)?.unwrap_or_default(),
            };
            let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
            fwasm::bench::bench(
                &server,
                &target,
                &options,
                &mut std::io::stderr(),
                terminal,
                &mut std::io::stdout(),
            )
            .await?;
            Ok(())
        }
        Command::Cancel { id, server } => {
            fwasm::client::cancel(&server, id, &mut std::io::stdout()).await
        }
        Command::Logs { id, server } => {
            fwasm::client::logs(&server, id, &mut std::io::stdout()).await
        }
        Command::Status { id, wait, server } => {
            if wait {
                eprintln!("Waiting for call {id} to end ...");
            }
            let status = fwasm::client::status(&server, id, wait, &mut std::io::stdout()).await?;
            if status == fwasm_proto::pb::CallStatus::Failed {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

/// The bytes given as text on the command line, or else read from a file.
fn text_or_file(text: Option<String>, file: Option<PathBuf>) -> anyhow::Result<Option<Vec<u8>>> {
    match (text, file) {
        (Some(text), _) => Ok(Some(text.into_bytes())),
        (None, Some(path)) => std::fs::read(&path)
            .map(Some)
            .with_context(|| format!("cannot read {}", path.display())),
        (None, None) => Ok(None),
    }
}

fn build(mut args: BuildArgs) -> anyhow::Result<()> {
    if args.sources.is_empty() {
        let here = std::env::current_dir()?;
        if here.join("Cargo.toml").is_file() {
            if args.api.is_some() {
                anyhow::bail!("--api is for C and C++ sources; a Rust crate's SDK says its API");
            }
            eprintln!(
                "building the Rust crate here for {}",
                fwasm::build_rust::TARGET
            );
            let mut module = fwasm::build_rust::build_crate(&here)?;
            if let Some(output) = args.output {
                std::fs::copy(&module, &output)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", output.display()))?;
                std::fs::remove_file(&module).ok();
                module = output;
            }
            let file = module
                .strip_prefix(&here)
                .unwrap_or(&module)
                .display()
                .to_string();
            let name = module.file_stem().unwrap_or_default().to_string_lossy();
            eprintln!("built {file}; next: fwasm upload me/{name} {file}");
            return Ok(());
        }
        args.sources = c_sources_in(&here)?;
    }
    let output = args.output.unwrap_or_else(|| {
        Path::new(args.sources[0].file_stem().unwrap_or_default()).with_extension("wasm")
    });
    let shown = output.display().to_string();
    let name = output
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    fwasm::build::build(&fwasm::build::BuildOptions {
        sources: args.sources,
        output,
        api: args.api,
        sysroot: args.sysroot,
        clang: args.clang,
        include_dirs: args.include_dirs,
        cflags: args.cflags,
        ldflags: args.ldflags,
        verbose: args.verbose,
        quiet: false,
    })?;
    eprintln!("next: fwasm upload me/{name} {shown}");
    Ok(())
}

/// The C and C++ sources in `dir`, for a bare `fwasm build`.
fn c_sources_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut sources: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| PathBuf::from(e.file_name())))
        .filter(|path| fwasm::build::is_source(path))
        .collect();
    sources.sort();
    if sources.is_empty() {
        anyhow::bail!(
            "nothing to build in {}: no Cargo.toml and no C or C++ sources; name the sources \
             (fwasm build hello.c), or start a project with fwasm new NAME",
            dir.display()
        );
    }
    Ok(sources)
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    args.sidecar.check_tenancy(args.auth.auth)?;
    let admin_token = args.auth.admin_token(args.host, Some(&args.data_dir))?;
    let _tracing = fwasm_proto::trace::init("fwasm", args.otlp_endpoint.as_deref())?;
    let ports = [args.invoke_port, args.upload_port, args.grpc_port];
    let listeners = gateway_listeners(args.host, ports).await?;
    let addrs = gateway_addrs(&listeners)?;
    let defaults = ExecutorConfig::default();
    let config = UpConfig {
        data_dir: args.data_dir.clone(),
        state_backend: args.state_backend.clone(),
        executor: ExecutorConfig {
            limits: Limits {
                max_mpi_world_size: args.max_mpi_world_size,
                ..call_limits(args.timeout, args.max_memory_mib)
            },
            workers: args.workers.unwrap_or(defaults.workers),
            max_snapshot_bytes: args.max_snapshot_mib << 20,
            sidecar: args.sidecar.config(),
            python: args.python.load()?,
            allow_outbound: args.outbound.allow_outbound.clone(),
            outbound_roots: args.outbound.roots()?,
            ..defaults
        },
        gateway: GatewayConfig {
            auth: args.auth.auth,
            open_faasm_api: args.auth.open_faasm_api_on_loopback,
            tls: up_tls(&args.tls)?,
            ..GatewayConfig::default()
        },
        default_quota: args.quotas.default_quota()?,
        state_limits: args.storage_quotas.limits(),
    };
    let gateway = fwasm::up::start(config).await?;
    if let Some(admin) = &admin_token {
        gateway.install_admin_token(&admin.token).await?;
    }
    let demos: Vec<String> = DEMOS.iter().map(|(u, f, _)| format!("{u}/{f}")).collect();
    // The ports bound, which differ from the flags' when those say 0.
    let [(_, invoke), (_, upload), (_, grpc)] = addrs;
    let (invoke, upload, grpc) = (invoke.port(), upload.port(), grpc.port());
    if let Some(path) = &args.ready_file {
        write_ready_file(path, &addrs)?;
    }
    let scheme = match gateway.config().tls {
        Some(_) => "https",
        None => "http",
    };
    println!("fwasm is up (data in {})", args.data_dir.display());
    println!(
        "  invoke  {scheme}://{}:{invoke}   try: curl -X POST {scheme}://localhost:{invoke}/f/demo/echo -d hi",
        args.host
    );
    println!(
        "  upload  {scheme}://{}:{upload}   curl -X PUT {scheme}://localhost:{upload}/f/USER/NAME -T function.wasm",
        args.host
    );
    // The CLI's default address is port 8081; on another port, or over TLS, it needs --addr.
    let addr = match (grpc, scheme) {
        (8081, "http") => String::new(),
        (port, scheme) => format!(" --addr {scheme}://localhost:{port}"),
    };
    println!(
        "  gRPC    {}:{grpc}          fwasm invoke demo/hello --input you{addr}",
        args.host
    );
    println!("  demo functions: {}", demos.join(", "));
    if let Some(admin) = &admin_token {
        print_tokens_banner(admin, args.auth.open_faasm_api_on_loopback);
    }
    println!("Press Ctrl-C to stop.");
    fwasm_gateway::serve(listeners, gateway, shutdown_signal()).await?;
    println!("fwasm stopped");
    Ok(())
}

/// The public ports' TLS of `fwasm up`, which has no mesh for a CA to guard.
fn up_tls(args: &service_commands::TlsArgs) -> anyhow::Result<Option<fwasm_proto::tls::Tls>> {
    if args.tls_ca.is_some() {
        anyhow::bail!(
            "fwasm up runs every service in one process, so it has no mesh for --tls-ca to \
             guard; give --tls-cert and --tls-key for its public ports"
        );
    }
    args.load()
}

/// How to reach a gateway whose tokens are on.
fn print_tokens_banner(admin: &fwasm::auth::AdminToken, open_faasm_api: bool) {
    let whence = match (&admin.file, admin.generated) {
        (Some(file), true) => format!("made an admin token in {} (mode 0600)", file.display()),
        (Some(file), false) => format!("the admin token is in {}", file.display()),
        (None, _) => format!("the admin token is ${}", fwasm::auth::ADMIN_TOKEN_ENV),
    };
    println!("  tokens  on: {whence}; every request needs a token");
    if open_faasm_api {
        println!("          except Faasm's API (/f/, /fa/, POST /, /s/, /file), open on loopback");
    }
    let token = match &admin.file {
        Some(file) => format!("$(cat {})", file.display()),
        None => format!("${}", fwasm::auth::ADMIN_TOKEN_ENV),
    };
    println!(
        "          FWASM_TOKEN={token} fwasm token create USER   # a token for USER's requests"
    );
}

/// Ctrl-C, or SIGTERM as sent by container runtimes.
pub(crate) async fn shutdown_signal() {
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
