//! The scheduler's call table survives a restart of the scheduler (Redis backend).

use fwasm_proto::pb::{CallStatus, InvokeRequest, WaitCallRequest};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_scheduler_still_knows_every_call() {
    let redis = redis_harness::RedisServer::start();
    let mut mesh = Mesh::start(MeshOptions {
        executors: 1,
        redis: Some(&redis.url()),
        scheduler_flags: &["--durable-calls"],
        ..MeshOptions::default()
    })
    .await;
    mesh.upload("load/slow", wat::parse_str(SLOW).unwrap())
        .await;
    let mut client = mesh.client().await;
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
    // Running on the executor when the scheduler dies, and reported to the next one. (The
    // executor first lets go of the calls above, so the call it holds is this one.)
    idle(&mesh.http, &mesh.executors[0].metrics).await;
    mesh.upload("load/spin", spin(2)).await;
    let spin = InvokeRequest {
        function: "spin".into(),
        ..request()
    };
    let in_flight = client
        .invoke_async(spin)
        .await
        .unwrap()
        .into_inner()
        .call_id;
    holding_a_call(&mesh.http, &mesh.executors[0].metrics).await;

    mesh.restart_scheduler().await;

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
    assert_eq!(
        (record.status(), &record.output[..]),
        (CallStatus::Success, &b"ok"[..]),
        "the call in flight: {record:?}"
    );
}
