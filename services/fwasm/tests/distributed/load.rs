//! Distributed mode for real: state (on a real redis-server), scheduler, three executors and a
//! gateway, each its own `fwasm` process on loopback. One executor is killed with SIGKILL in
//! the middle of a few thousand calls: every call still ends SUCCESS or FAILED with a reason,
//! and every asynchronous result can be read.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fwasm_proto::pb::functions_client::FunctionsClient;
use fwasm_proto::pb::{CallStatus, InvokeRequest, WaitCallRequest};

const FWASM: &str = env!("CARGO_BIN_EXE_fwasm");

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn spawn(args: &[&str]) -> Process {
    let child = Command::new(FWASM)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start fwasm");
    Process(child)
}

/// An executor with one worker thread, joining the scheduler as `id`.
fn executor_process(listen: &str, state: &str, scheduler: &str, id: &str) -> Process {
    spawn(&[
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
    ])
}

/// A gateway on the invoke, upload and gRPC ports given.
fn gateway(state: &str, scheduler: &str, [invoke, upload, grpc]: [u16; 3]) -> Process {
    spawn(&[
        "gateway",
        "--state",
        state,
        "--scheduler",
        scheduler,
        "--invoke-port",
        &invoke.to_string(),
        "--upload-port",
        &upload.to_string(),
        "--grpc-port",
        &grpc.to_string(),
    ])
}

/// Waits until `check` passes, for at most 20 s.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "{what} did not happen in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A function that counts to a few million before answering: long enough to be in flight
/// when an executor dies.
const SLOW: &str = r#"(module
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_executor_mid_load_loses_no_call() {
    let redis = redis_harness::RedisServer::start();
    let data = tempfile::tempdir().unwrap();
    let [state, scheduler, metrics] = [free_port(), free_port(), free_port()];
    let [invoke, upload, grpc] = [free_port(), free_port(), free_port()];
    let state_addr = format!("127.0.0.1:{state}");
    let scheduler_addr = format!("127.0.0.1:{scheduler}");
    let _state = spawn(&[
        "state",
        "--listen",
        &state_addr,
        "--backend",
        &redis.url(),
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    let _scheduler = spawn(&[
        "scheduler",
        "--listen",
        &scheduler_addr,
        "--state",
        &state_addr,
        "--metrics",
        &format!("127.0.0.1:{metrics}"),
    ]);
    let mut executors: Vec<Process> = (1..=3)
        .map(|i| {
            let listen = format!("127.0.0.1:{}", free_port());
            executor_process(&listen, &state_addr, &scheduler_addr, &format!("e{i}"))
        })
        .collect();
    let _gateway = gateway(&state_addr, &scheduler_addr, [invoke, upload, grpc]);
    let http = reqwest::Client::new();
    eventually("all three executors joining", async || {
        let url = format!("http://127.0.0.1:{metrics}/metrics");
        match http.get(&url).send().await {
            Ok(reply) => reply
                .text()
                .await
                .unwrap_or_default()
                .contains("fwasm_scheduler_executors 3"),
            Err(_) => false,
        }
    })
    .await;
    for (name, wasm) in [
        ("echo", include_bytes!("../demo/echo.wasm").to_vec()),
        ("slow", wat::parse_str(SLOW).unwrap()),
    ] {
        let url = format!("http://127.0.0.1:{upload}/f/load/{name}");
        let reply = http.put(url).body(wasm).send().await.unwrap();
        assert_eq!(reply.status().as_u16(), 200);
    }
    let grpc_url = format!("http://127.0.0.1:{grpc}");
    let client = FunctionsClient::connect(grpc_url).await.unwrap();

    // 1,500 async calls of `slow` and 1,500 sync calls of `echo`, 48 in flight at a time.
    let gate = Arc::new(tokio::sync::Semaphore::new(48));
    let mut async_calls = Vec::new();
    let mut sync_calls = Vec::new();
    for i in 0..1500 {
        let (permits, mut client) = (gate.clone(), client.clone());
        async_calls.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            let request = InvokeRequest {
                user: "load".into(),
                function: "slow".into(),
                ..InvokeRequest::default()
            };
            client
                .invoke_async(request)
                .await
                .map(|r| r.into_inner().call_id)
        }));
        let (permits, http) = (gate.clone(), http.clone());
        sync_calls.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            let url = format!("http://127.0.0.1:{invoke}/f/load/echo");
            let reply = http
                .post(url)
                .body(format!("call {i}"))
                .send()
                .await
                .unwrap();
            let status = reply.status().as_u16();
            (i, status, reply.text().await.unwrap())
        }));
        if i == 300 {
            // Let the first calls get going first.
            tokio::time::sleep(Duration::from_millis(200)).await;
            // SIGKILL: no goodbye, calls in flight on it are cut off.
            let victim = executors.remove(1);
            unsafe_kill(&victim);
            drop(victim);
        }
    }

    let (mut ok, mut failed) = (0, 0);
    for call in sync_calls {
        let (i, status, body) = call.await.unwrap();
        if status == 200 {
            assert_eq!(body, format!("call {i}"));
            ok += 1;
        } else {
            assert!(
                status >= 500 && body.trim().len() > 10,
                "call {i}: {status} {body:?} is not a failure with a reason"
            );
            if failed == 0 {
                eprintln!("first failure: {status} {body}");
            }
            failed += 1;
        }
    }
    eprintln!("sync: {ok} ok, {failed} failed");
    assert!(
        ok > 1000,
        "the platform kept serving: {ok} ok, {failed} failed"
    );

    let mut async_ok = 0;
    for call in async_calls {
        let id = call
            .await
            .unwrap()
            .expect("an async call is always accepted");
        let mut client = client.clone();
        let wait = WaitCallRequest {
            id,
            timeout_ms: 60_000,
            ..WaitCallRequest::default()
        };
        let record = client.wait_call(wait).await.unwrap().into_inner();
        match record.status() {
            CallStatus::Success => {
                assert_eq!(&record.output[..], b"ok");
                async_ok += 1;
            }
            CallStatus::Failed => assert!(!record.error.is_empty(), "call {id} failed silently"),
            other => panic!("call {id} is still {other:?}"),
        }
    }
    eprintln!("async: {async_ok} of 1500 ok");
    assert!(async_ok > 1000, "{async_ok} of 1500 async calls succeeded");
}

/// Kills a child with SIGKILL (std's `Child::kill` sends SIGKILL on Unix).
fn unsafe_kill(process: &Process) {
    let pid = process.0.id().to_string();
    let status = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_scheduler_still_knows_every_call() {
    let redis = redis_harness::RedisServer::start();
    let [state, scheduler] = [free_port(), free_port()];
    let [invoke, upload, grpc] = [free_port(), free_port(), free_port()];
    let state_addr = format!("127.0.0.1:{state}");
    let scheduler_addr = format!("127.0.0.1:{scheduler}");
    let scheduler_args = [
        "scheduler",
        "--listen",
        &scheduler_addr,
        "--state",
        &state_addr,
        "--durable-calls",
    ];
    let _state = spawn(&["state", "--listen", &state_addr, "--backend", &redis.url()]);
    let first_scheduler = spawn(&scheduler_args);
    let executor = format!("127.0.0.1:{}", free_port());
    let _executor = executor_process(&executor, &state_addr, &scheduler_addr, "e1");
    let _gateway = gateway(&state_addr, &scheduler_addr, [invoke, upload, grpc]);
    let http = reqwest::Client::new();
    eventually("the gateway answering", async || {
        let url = format!("http://127.0.0.1:{upload}/f/load/slow");
        let wasm = wat::parse_str(SLOW).unwrap();
        matches!(http.put(url).body(wasm).send().await, Ok(r) if r.status().is_success())
    })
    .await;
    let mut client = FunctionsClient::connect(format!("http://127.0.0.1:{grpc}"))
        .await
        .unwrap();
    let request = || InvokeRequest {
        user: "load".into(),
        function: "slow".into(),
        ..InvokeRequest::default()
    };
    let mut finished = None;
    eventually("a call succeeding", async || {
        let Ok(reply) = client.invoke_async(request()).await else {
            return false;
        };
        let id = reply.into_inner().call_id;
        let wait = WaitCallRequest {
            id,
            timeout_ms: 10_000,
            ..WaitCallRequest::default()
        };
        let done = client.wait_call(wait).await.map(|r| r.into_inner());
        finished = done
            .ok()
            .filter(|r| r.status() == CallStatus::Success)
            .map(|r| r.id);
        finished.is_some()
    })
    .await;
    let finished = finished.unwrap();
    // Started just before the scheduler dies, and reported to the next one.
    let in_flight = client
        .invoke_async(request())
        .await
        .unwrap()
        .into_inner()
        .call_id;

    unsafe_kill(&first_scheduler);
    drop(first_scheduler);
    let _second_scheduler = spawn(&scheduler_args);

    let mut restored = None;
    eventually("the new scheduler answering", async || {
        let wait = WaitCallRequest {
            id: finished,
            timeout_ms: 1_000,
            ..WaitCallRequest::default()
        };
        restored = client.wait_call(wait).await.ok().map(|r| r.into_inner());
        restored.is_some()
    })
    .await;
    let restored = restored.unwrap();
    // Every gRPC server answers health checks (what the Kubernetes probes ask).
    for addr in [&state_addr, &scheduler_addr, &executor] {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        let reply = health
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            reply.status(),
            tonic_health::pb::health_check_response::ServingStatus::Serving,
            "{addr}"
        );
    }
    assert_eq!(
        (restored.status(), &restored.output[..]),
        (CallStatus::Success, &b"ok"[..])
    );
    let wait = WaitCallRequest {
        id: in_flight,
        timeout_ms: 20_000,
        ..WaitCallRequest::default()
    };
    let record = client.wait_call(wait).await.unwrap().into_inner();
    assert!(
        matches!(record.status(), CallStatus::Success | CallStatus::Failed),
        "the call in flight ended: {record:?}"
    );
}
