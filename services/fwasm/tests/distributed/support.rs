//! Starting `fwasm` service processes on loopback, and waiting for them.
//!
//! No port is picked by the harness and reused later: each process binds port 0 itself and
//! reports what it got in its `--ready-file`, except the scheduler, whose listening socket the
//! harness holds and passes down (socket activation), so a restarted scheduler has the same
//! address. Each process's output goes to a log file; a failing test prints the tail of every
//! log.

use std::collections::HashMap;
use std::fs::File;
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt, FdMapping};
use fwasm_proto::pb::functions_client::FunctionsClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

pub const FWASM: &str = env!("CARGO_BIN_EXE_fwasm");

/// How long anything a test waits for may take: a process starting, executors joining, an
/// upload accepted. Sized for a loaded 2-core machine; the wait ends as soon as it happens.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// How many lines of a process's log a failing test shows.
const LOG_TAIL_LINES: usize = 40;

/// An `fwasm` child process, killed when dropped. Its stdout and stderr go to `NAME.log` in
/// the directory it was started in; if the test is failing when it is dropped, the log's
/// tail is printed with the failure.
pub struct Process {
    child: Child,
    name: String,
    log: PathBuf,
    ready_file: PathBuf,
}

impl Process {
    /// Starts `fwasm ARGS` as `name`, with the environment variables given.
    pub fn spawn(dir: &Path, name: &str, args: &[&str], env: &[(&str, &str)]) -> Process {
        Self::start(dir, name, args, env, None)
    }

    /// Like [`Process::spawn`], with `socket` passed as its listener (systemd's LISTEN_FDS).
    /// The harness keeps its own copy, so the address outlives the process.
    pub fn spawn_on(
        dir: &Path,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
        socket: &TcpListener,
    ) -> Process {
        let fd = OwnedFd::from(socket.try_clone().expect("copy the listening socket"));
        Self::start(dir, name, args, env, Some(fd))
    }

    fn start(
        dir: &Path,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
        socket: Option<OwnedFd>,
    ) -> Process {
        let log = dir.join(format!("{name}.log"));
        let ready_file = dir.join(format!("{name}.ready"));
        // A restart appends to the log and must write a new ready file.
        let _ = std::fs::remove_file(&ready_file);
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .expect("create the process log");
        let err = out.try_clone().expect("share the process log");
        let mut command = Command::new(FWASM);
        command
            .args(args)
            .arg("--ready-file")
            .arg(&ready_file)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(out)
            .stderr(err);
        if let Some(fd) = socket {
            command.env("LISTEN_FDS", "1");
            command
                .fd_mappings(vec![FdMapping {
                    parent_fd: fd,
                    child_fd: 3,
                }])
                .expect("one socket, on fd 3");
        }
        let child = command.spawn().expect("start fwasm");
        Process {
            child,
            name: name.to_string(),
            log,
            ready_file,
        }
    }

    /// Waits until the process has bound its listeners and its gRPC server (if it has one)
    /// answers health checks as SERVING: the addresses it reports. Panics with its log if it
    /// exits first or takes longer than [`PATIENCE`].
    pub async fn ready(&mut self) -> Ready {
        let file = self.ready_file.clone();
        let addrs: HashMap<String, String> = self
            .alive_until("listening", async || {
                let text = std::fs::read(&file).ok()?;
                Some(serde_json::from_slice(&text).expect("a ready file is JSON"))
            })
            .await;
        let ready = Ready {
            name: self.name.clone(),
            addrs,
        };
        let grpc = ["listen", "grpc"].iter().find_map(|k| ready.addrs.get(*k));
        if let Some(addr) = grpc {
            let url = format!("http://{addr}");
            self.alive_until("serving gRPC", async || {
                let endpoint = tonic::transport::Endpoint::from_shared(url.clone()).ok()?;
                let mut health = HealthClient::new(endpoint.connect().await.ok()?);
                let reply = health.check(HealthCheckRequest::default()).await.ok()?;
                (reply.into_inner().status() == ServingStatus::Serving).then_some(())
            })
            .await;
        }
        ready
    }

    /// Polls `check` until it gives a value, panicking with the log if the process exits
    /// first or [`PATIENCE`] runs out.
    async fn alive_until<T>(&mut self, what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(value) = check().await {
                return value;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "{} exited ({status}) before it was {what}; its log ends:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} was not {what} after {PATIENCE:?}; its log ends:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The last lines of its output.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    /// Kills it with SIGKILL: no goodbye, its calls in flight are cut off. Its log is still
    /// printed should the test fail while it is kept.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (what Kubernetes sends) and waits for it to exit.
    pub fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(
            exit.success(),
            "{} exited with {exit} after SIGTERM; its log ends:\n{}",
            self.name,
            self.log_tail()
        );
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- {} ({}), last {LOG_TAIL_LINES} lines:\n{}\n----",
                self.name,
                self.log.display(),
                self.log_tail()
            );
        }
    }
}

/// The addresses a process reported it listens on, by name (`listen`, `metrics`, `invoke`,
/// `upload`, `grpc`).
#[derive(Clone)]
pub struct Ready {
    name: String,
    addrs: HashMap<String, String>,
}

impl Ready {
    /// The address called `what`, as `host:port`.
    pub fn addr(&self, what: &str) -> String {
        match self.addrs.get(what) {
            Some(addr) => addr.clone(),
            None => panic!("{} reported no {what} address: {:?}", self.name, self.addrs),
        }
    }

    /// The port of the address called `what`.
    pub fn port(&self, what: &str) -> u16 {
        let addr = self.addr(what);
        let port = addr.rsplit_once(':').map(|(_, port)| port.parse());
        match port {
            Some(Ok(port)) => port,
            _ => panic!("{}: {what} = {addr:?} has no port", self.name),
        }
    }
}

/// The gateway's ports.
#[derive(Clone, Copy)]
pub struct GatewayPorts {
    pub invoke: u16,
    pub upload: u16,
    pub grpc: u16,
}

impl GatewayPorts {
    /// The ports a gateway (or `up`) said it listens on.
    pub fn of(ready: &Ready) -> Self {
        GatewayPorts {
            invoke: ready.port("invoke"),
            upload: ready.port("upload"),
            grpc: ready.port("grpc"),
        }
    }
}

/// Waits until `check` passes, for at most [`PATIENCE`].
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Uploads `wasm` as `user/name`, waiting for the gateway to come up first.
pub async fn upload(http: &reqwest::Client, ports: GatewayPorts, target: &str, wasm: Vec<u8>) {
    upload_as(http, ports, target, wasm, None).await;
}

/// [`upload`] bringing `token` (for a gateway started with --auth).
pub async fn upload_as(
    http: &reqwest::Client,
    ports: GatewayPorts,
    target: &str,
    wasm: Vec<u8>,
    token: Option<&str>,
) {
    let url = format!("http://127.0.0.1:{}/f/{target}", ports.upload);
    eventually("the upload being accepted", async || {
        let request = http.put(&url).body(wasm.clone());
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        matches!(request.send().await, Ok(reply) if reply.status().is_success())
    })
    .await;
}

/// The text of `http://ADDR/metrics`, or None while nothing answers there.
pub async fn scrape(http: &reqwest::Client, addr: &str) -> Option<String> {
    let reply = http.get(format!("http://{addr}/metrics")).send().await;
    reply.ok()?.text().await.ok()
}

/// Waits for the scheduler (whose metrics are at `metrics`) to count `n` executors.
pub async fn executors_joined(http: &reqwest::Client, metrics: &str, n: usize) {
    let line = format!("fwasm_scheduler_executors {n}\n");
    eventually(&format!("{n} executors joining"), async || {
        scrape(http, metrics)
            .await
            .is_some_and(|text| text.contains(&line))
    })
    .await;
}

/// A gRPC channel to `addr` (`host:port`), once something serves there.
pub async fn channel(addr: &str) -> tonic::transport::Channel {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap();
    let mut channel = None;
    eventually(&format!("{addr} serving"), async || {
        channel = endpoint.connect().await.ok();
        channel.is_some()
    })
    .await;
    channel.unwrap()
}

/// A function that counts to a few million before answering "ok": long enough to be in
/// flight when an executor dies.
pub const SLOW: &str = r#"(module
    (memory (export "memory") 1)
    (data (i32.const 100) "\01\c8\00\00\00\00\00\02\00\00\00ok")
    (func (export "fwasm_abi_v1"))
    (func (export "fwasm_alloc") (param i32) (result i32) i32.const 1024)
    (func (export "fwasm_handle") (param i32 i32) (result i64) (local $n i32)
        (local.set $n (i32.const 3000000))
        (loop $again
            (local.set $n (i32.sub (local.get $n) (i32.const 1)))
            (br_if $again (local.get $n)))
        i64.const 429496729613))"#;

/// How to start a [`Mesh`].
#[derive(Default)]
pub struct MeshOptions<'a> {
    pub executors: usize,
    /// The state service's Redis (`redis://...`); the embedded store when None.
    pub redis: Option<&'a str>,
    pub scheduler_flags: &'a [&'a str],
    pub executor_flags: &'a [&'a str],
    /// Environment variables of every process.
    pub env: &'a [(&'a str, &'a str)],
}

/// One executor process of a mesh.
pub struct Member {
    pub id: String,
    pub addr: String,
    pub metrics: String,
    process: Process,
}

/// A whole platform of separate processes on loopback: state, scheduler, executors (one
/// worker thread each, named e1, e2, ...) and a gateway, each with metrics on its own address.
pub struct Mesh {
    pub state: String,
    pub state_metrics: String,
    pub scheduler: String,
    pub scheduler_metrics: String,
    pub executors: Vec<Member>,
    pub ports: GatewayPorts,
    pub http: reqwest::Client,
    scheduler_args: Vec<String>,
    scheduler_socket: TcpListener,
    env: Vec<(String, String)>,
    // Dropped before `dir`, so a failing test can still print their logs, the killed ones'
    // too.
    killed: Vec<Process>,
    _state_process: Process,
    scheduler_process: Option<Process>,
    _gateway_process: Process,
    dir: tempfile::TempDir,
}

/// Any free port on loopback, bound by the process itself.
const ANY_PORT: &str = "127.0.0.1:0";

/// The gateway's (and `fwasm up`'s) ports, each any free one.
pub const ANY_GATEWAY_PORTS: [&str; 6] = [
    "--invoke-port",
    "0",
    "--upload-port",
    "0",
    "--grpc-port",
    "0",
];

fn strs(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

fn env_strs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

impl Mesh {
    /// Starts every process and waits until each serves and the executors have joined the
    /// scheduler.
    pub async fn start(options: MeshOptions<'_>) -> Mesh {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path();
        let env: Vec<(String, String)> = options
            .env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let store = logs.join("store");
        let mut state_args = vec!["state", "--listen", ANY_PORT, "--metrics", ANY_PORT];
        match options.redis {
            Some(url) => state_args.extend(["--backend", url]),
            None => state_args.extend(["--data-dir", store.to_str().unwrap()]),
        }
        let mut state_process = Process::spawn(logs, "state", &state_args, options.env);
        let ready = state_process.ready().await;
        let (state, state_metrics) = (ready.addr("listen"), ready.addr("metrics"));

        let scheduler_socket = TcpListener::bind(ANY_PORT).unwrap();
        let scheduler = scheduler_socket.local_addr().unwrap().to_string();
        let mut scheduler_args: Vec<String> = ["scheduler", "--state", &state]
            .iter()
            .chain(&["--metrics", ANY_PORT])
            .chain(options.scheduler_flags)
            .map(|s| s.to_string())
            .collect();
        // Says where, though the passed socket takes its place.
        scheduler_args.extend(["--listen".to_string(), scheduler.clone()]);
        let mut scheduler_process = Process::spawn_on(
            logs,
            "scheduler",
            &strs(&scheduler_args),
            options.env,
            &scheduler_socket,
        );
        let scheduler_metrics = scheduler_process.ready().await.addr("metrics");

        let mut started: Vec<(String, Process)> = (1..=options.executors)
            .map(|i| {
                let id = format!("e{i}");
                let mut args = vec!["executor", "--listen", ANY_PORT, "--metrics", ANY_PORT];
                args.extend(["--state", &state, "--scheduler", &scheduler]);
                args.extend(["--id", &id, "--workers", "1"]);
                args.extend(options.executor_flags);
                let process = Process::spawn(logs, &id, &args, options.env);
                (id, process)
            })
            .collect();
        let mut executors = Vec::new();
        for (id, mut process) in started.drain(..) {
            let ready = process.ready().await;
            executors.push(Member {
                id,
                addr: ready.addr("listen"),
                metrics: ready.addr("metrics"),
                process,
            });
        }

        let mut gateway_args = vec!["gateway", "--state", &state, "--scheduler", &scheduler];
        gateway_args.extend(ANY_GATEWAY_PORTS);
        let mut gateway_process = Process::spawn(logs, "gateway", &gateway_args, options.env);
        let ready = gateway_process.ready().await;
        let ports = GatewayPorts::of(&ready);

        let mesh = Mesh {
            state,
            state_metrics,
            scheduler,
            scheduler_metrics,
            executors,
            ports,
            http: http_client(),
            scheduler_args,
            scheduler_socket,
            env,
            killed: Vec::new(),
            _state_process: state_process,
            scheduler_process: Some(scheduler_process),
            _gateway_process: gateway_process,
            dir,
        };
        executors_joined(&mesh.http, &mesh.scheduler_metrics, options.executors).await;
        mesh
    }

    /// Uploads `wasm` as `target` (`user/function`).
    pub async fn upload(&self, target: &str, wasm: Vec<u8>) {
        upload(&self.http, self.ports, target, wasm).await;
    }

    /// A client of the gateway's public gRPC API.
    pub async fn client(&self) -> FunctionsClient<tonic::transport::Channel> {
        FunctionsClient::new(channel(&format!("127.0.0.1:{}", self.ports.grpc)).await)
    }

    /// The gateway's invoke URL of `target` (`user/function`).
    pub fn invoke_url(&self, target: &str) -> String {
        format!("http://127.0.0.1:{}/f/{target}", self.ports.invoke)
    }

    /// Kills executor `id` with SIGKILL.
    pub fn kill_executor(&mut self, id: &str) {
        let at = self.executors.iter().position(|m| m.id == id).unwrap();
        let mut process = self.executors.remove(at).process;
        process.kill();
        self.killed.push(process);
    }

    /// Starts one more `fwasm` process in this mesh, logging beside the others.
    pub fn spawn(&self, name: &str, args: &[&str]) -> Process {
        Process::spawn(self.dir.path(), name, args, &env_strs(&self.env))
    }

    /// Kills the scheduler with SIGKILL and starts it again with the same flags on the same
    /// socket; waits until it serves.
    pub async fn restart_scheduler(&mut self) {
        let mut old = self.scheduler_process.take().unwrap();
        old.kill();
        self.killed.push(old);
        let mut process = Process::spawn_on(
            self.dir.path(),
            "scheduler",
            &strs(&self.scheduler_args),
            &env_strs(&self.env),
            &self.scheduler_socket,
        );
        self.scheduler_metrics = process.ready().await.addr("metrics");
        self.scheduler_process = Some(process);
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        // The processes' log tails are printed as they drop; keep the whole logs too.
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!("the mesh's logs are kept in {}", self.dir.path().display());
        }
    }
}

/// A function that answers "ok" after `seconds` of wall-clock time (read through WASI's
/// monotonic clock), however fast the machine: a call surely in flight while a test acts.
pub fn spin(seconds: u64) -> Vec<u8> {
    let nanos = seconds * 1_000_000_000;
    wat::parse_str(format!(
        r#"(module
    (import "wasi_snapshot_preview1" "clock_time_get"
        (func $now (param i32 i64 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 100) "\01\c8\00\00\00\00\00\02\00\00\00ok")
    (func $monotonic (result i64)
        (drop (call $now (i32.const 1) (i64.const 0) (i32.const 0)))
        (i64.load (i32.const 0)))
    (func (export "fwasm_abi_v1"))
    (func (export "fwasm_alloc") (param i32) (result i32) i32.const 1024)
    (func (export "fwasm_handle") (param i32 i32) (result i64) (local $end i64)
        (local.set $end (i64.add (call $monotonic) (i64.const {nanos})))
        (loop $wait
            (br_if $wait (i64.lt_u (call $monotonic) (local.get $end))))
        i64.const 429496729613))"#
    ))
    .unwrap()
}

/// Waits until the executor whose metrics are at `metrics` holds no call.
pub async fn idle(http: &reqwest::Client, metrics: &str) {
    eventually(
        &format!("the executor at {metrics} holding no call"),
        async || {
            let text = scrape(http, metrics).await.unwrap_or_default();
            text.contains("fwasm_executor_live_calls")
                && sample(&text, "fwasm_executor_live_calls") == 0.0
        },
    )
    .await;
}

/// Waits until the executor whose metrics are at `metrics` holds at least one call.
pub async fn holding_a_call(http: &reqwest::Client, metrics: &str) {
    eventually(
        &format!("the executor at {metrics} holding a call"),
        async || {
            let text = scrape(http, metrics).await.unwrap_or_default();
            sample(&text, "fwasm_executor_live_calls") >= 1.0
        },
    )
    .await;
}

/// The value of the sample `name_and_labels` in a scrape (0 when absent).
pub fn sample(scrape: &str, name_and_labels: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .map_or(0.0, |value| value.parse().unwrap())
}

/// An HTTP client for the tests (its TLS on ring, as fwasm's own).
pub fn http_client() -> reqwest::Client {
    fwasm_proto::tls::use_ring_by_default();
    reqwest::Client::new()
}
