//! Starting `fwasm` service processes on free loopback ports, and waiting for them.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fwasm_proto::pb::functions_client::FunctionsClient;

pub const FWASM: &str = env!("CARGO_BIN_EXE_fwasm");

/// A child process, killed when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    /// Kills it with SIGKILL: no goodbye, its calls in flight are cut off.
    pub fn kill(self) {
        drop(self);
    }

    /// Sends SIGTERM (what Kubernetes sends) and waits for it to exit.
    pub fn terminate(mut self) {
        let pid = self.0.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let exit = self.0.wait().unwrap();
        assert!(exit.success(), "fwasm exited with {exit} after SIGTERM");
    }
}

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A free loopback address, as `host:port`.
pub fn free_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// `fwasm ARGS` with the environment variables given.
pub fn spawn_with_env(args: &[&str], env: &[(&str, &str)]) -> Process {
    let child = Command::new(FWASM)
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start fwasm");
    Process(child)
}

/// The gateway's ports.
#[derive(Clone, Copy)]
pub struct GatewayPorts {
    pub invoke: u16,
    pub upload: u16,
    pub grpc: u16,
}

impl GatewayPorts {
    pub fn free() -> Self {
        GatewayPorts {
            invoke: free_port(),
            upload: free_port(),
            grpc: free_port(),
        }
    }
}

/// Waits until `check` passes, for at most 20 s.
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "{what} did not happen in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Uploads `wasm` as `user/name`, waiting for the gateway to come up first.
pub async fn upload(http: &reqwest::Client, ports: GatewayPorts, target: &str, wasm: Vec<u8>) {
    let url = format!("http://127.0.0.1:{}/f/{target}", ports.upload);
    eventually("the upload being accepted", async || {
        matches!(http.put(&url).body(wasm.clone()).send().await,
            Ok(reply) if reply.status().is_success())
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

/// Whether anything accepts connections at `addr`.
pub fn listening(addr: &str) -> bool {
    std::net::TcpStream::connect(addr).is_ok()
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
    env: Vec<(String, String)>,
    _processes: Vec<Process>,
    scheduler_process: Option<Process>,
    _data: tempfile::TempDir,
}

fn spawn_owned(args: &[String], env: &[(String, String)]) -> Process {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    spawn_with_env(&args, &env)
}

fn owned(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

impl Mesh {
    /// Starts every process and waits for the executors to join the scheduler.
    pub async fn start(options: MeshOptions<'_>) -> Mesh {
        let data = tempfile::tempdir().unwrap();
        let env: Vec<(String, String)> = options
            .env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let [state, state_metrics] = [free_addr(), free_addr()];
        let [scheduler, scheduler_metrics] = [free_addr(), free_addr()];
        let ports = GatewayPorts::free();
        let store = data.path().to_str().unwrap();
        let mut state_args = owned(&["state", "--listen", &state, "--metrics", &state_metrics]);
        match options.redis {
            Some(url) => state_args.extend(owned(&["--backend", url])),
            None => state_args.extend(owned(&["--data-dir", store])),
        }
        let mut processes = vec![spawn_owned(&state_args, &env)];
        let mut scheduler_args = owned(&[
            "scheduler",
            "--listen",
            &scheduler,
            "--state",
            &state,
            "--metrics",
            &scheduler_metrics,
        ]);
        scheduler_args.extend(owned(options.scheduler_flags));
        let scheduler_process = Some(spawn_owned(&scheduler_args, &env));
        let executors = (1..=options.executors)
            .map(|i| {
                let (id, addr, metrics) = (format!("e{i}"), free_addr(), free_addr());
                let mut args = owned(&[
                    "executor",
                    "--listen",
                    &addr,
                    "--state",
                    &state,
                    "--scheduler",
                    &scheduler,
                    "--id",
                    &id,
                    "--workers",
                    "1",
                    "--metrics",
                    &metrics,
                ]);
                args.extend(owned(options.executor_flags));
                let process = spawn_owned(&args, &env);
                Member {
                    id,
                    addr,
                    metrics,
                    process,
                }
            })
            .collect();
        let gateway_args = owned(&[
            "gateway",
            "--state",
            &state,
            "--scheduler",
            &scheduler,
            "--invoke-port",
            &ports.invoke.to_string(),
            "--upload-port",
            &ports.upload.to_string(),
            "--grpc-port",
            &ports.grpc.to_string(),
        ]);
        processes.push(spawn_owned(&gateway_args, &env));
        let mesh = Mesh {
            state,
            state_metrics,
            scheduler,
            scheduler_metrics,
            executors,
            ports,
            http: reqwest::Client::new(),
            scheduler_args,
            env,
            _processes: processes,
            scheduler_process,
            _data: data,
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
        self.executors.remove(at).process.kill();
    }

    /// Kills the scheduler with SIGKILL and starts it again with the same flags.
    pub fn restart_scheduler(&mut self) {
        self.scheduler_process.take().unwrap().kill();
        self.scheduler_process = Some(spawn_owned(&self.scheduler_args, &self.env));
    }
}

/// Answers "ok" after 1.5 s of wall-clock time (read through WASI's monotonic clock), however
/// fast the machine: a call surely in flight when its executor is killed.
pub const SPIN: &str = r#"(module
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
        (local.set $end (i64.add (call $monotonic) (i64.const 1500000000)))
        (loop $wait
            (br_if $wait (i64.lt_u (call $monotonic) (local.get $end))))
        i64.const 429496729613))"#;

/// The value of the sample `name_and_labels` in a scrape (0 when absent).
pub fn sample(scrape: &str, name_and_labels: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .map_or(0.0, |value| value.parse().unwrap())
}
