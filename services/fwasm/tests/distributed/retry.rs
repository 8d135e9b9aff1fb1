//! A background call cut off by an executor killed with SIGKILL runs again on another
//! executor and ends SUCCESS there. State is the embedded store, run as its own process.

use std::time::Duration;

use fwasm_proto::pb::functions_client::FunctionsClient;
use fwasm_proto::pb::{CallRef, CallStatus, InvokeRequest, WaitCallRequest};

use crate::support::*;

/// Answers "ok" after 1.5 s of wall-clock time (read through WASI's monotonic clock), however
/// fast the machine: a call surely in flight when its executor is killed.
const SPIN: &str = r#"(module
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cut_off_by_a_killed_executor_succeeds_on_another() {
    let data = tempfile::tempdir().unwrap();
    let [state, scheduler, metrics] = [free_addr(), free_addr(), free_addr()];
    let ports = GatewayPorts::free();
    // No --backend: the embedded store under --data-dir.
    let _state = spawn(&[
        "state",
        "--listen",
        &state,
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    let _scheduler = spawn(&[
        "scheduler",
        "--listen",
        &scheduler,
        "--state",
        &state,
        "--metrics",
        &metrics,
    ]);
    let mut executors: Vec<(&str, Process)> = ["e1", "e2"]
        .into_iter()
        .map(|id| {
            let process = executor_process(&free_addr(), &state, &scheduler, id, &[]);
            (id, process)
        })
        .collect();
    let _gateway = gateway(&state, &scheduler, ports);
    let http = reqwest::Client::new();
    executors_joined(&http, &metrics, 2).await;
    upload(&http, ports, "retry/spin", wat::parse_str(SPIN).unwrap()).await;
    let mut client = FunctionsClient::connect(format!("http://127.0.0.1:{}", ports.grpc))
        .await
        .unwrap();

    let invoke = InvokeRequest {
        user: "retry".into(),
        function: "spin".into(),
        ..InvokeRequest::default()
    };
    let id = client
        .invoke_async(invoke)
        .await
        .unwrap()
        .into_inner()
        .call_id;
    let mut first = String::new();
    eventually("the call running on an executor", async || {
        let record = client.get_call(CallRef { id }).await.unwrap().into_inner();
        first = record.executor_id.clone();
        record.status() == CallStatus::Running && !first.is_empty()
    })
    .await;
    // Well inside its 1.5 s of running.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let victim = executors.iter().position(|(id, _)| *id == first).unwrap();
    executors.remove(victim).1.kill();

    let wait = WaitCallRequest {
        id,
        timeout_ms: 30_000,
        ..WaitCallRequest::default()
    };
    let record = client.wait_call(wait).await.unwrap().into_inner();
    let survivor = executors[0].0;
    assert_eq!(
        (
            record.status(),
            &record.output[..],
            record.executor_id.as_str()
        ),
        (CallStatus::Success, &b"ok"[..], survivor),
        "{record:?}"
    );
}
