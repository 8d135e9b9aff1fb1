//! The scheduler's call table survives a restart of the scheduler (Redis backend).

use fwasm_proto::pb::functions_client::FunctionsClient;
use fwasm_proto::pb::{CallStatus, InvokeRequest, WaitCallRequest};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_scheduler_still_knows_every_call() {
    let redis = redis_harness::RedisServer::start();
    let [state_addr, scheduler_addr] = [free_addr(), free_addr()];
    let ports = GatewayPorts::free();
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
    let _executor = executor_process(&free_addr(), &state_addr, &scheduler_addr, "e1", &[]);
    let _gateway = gateway(&state_addr, &scheduler_addr, ports);
    let http = reqwest::Client::new();
    upload(&http, ports, "load/slow", wat::parse_str(SLOW).unwrap()).await;
    let mut client = FunctionsClient::connect(format!("http://127.0.0.1:{}", ports.grpc))
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

    first_scheduler.kill();
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
