//! Starting `fwasm` service processes on free loopback ports, and waiting for them.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

pub fn spawn(args: &[&str]) -> Process {
    spawn_with_env(args, &[])
}

/// An executor with one worker thread, joining the scheduler as `id`; `extra` flags after.
pub fn executor_process(
    listen: &str,
    state: &str,
    scheduler: &str,
    id: &str,
    extra: &[&str],
) -> Process {
    let mut args = vec![
        "executor",
        "--listen",
        listen,
        "--state",
        state,
        "--scheduler",
        scheduler,
        "--id",
        id,
        "--workers",
        "1",
    ];
    args.extend_from_slice(extra);
    spawn(&args)
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

/// A gateway on the ports given.
pub fn gateway(state: &str, scheduler: &str, ports: GatewayPorts) -> Process {
    spawn(&[
        "gateway",
        "--state",
        state,
        "--scheduler",
        scheduler,
        "--invoke-port",
        &ports.invoke.to_string(),
        "--upload-port",
        &ports.upload.to_string(),
        "--grpc-port",
        &ports.grpc.to_string(),
    ])
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
