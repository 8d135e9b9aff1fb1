//! A few thousand calls on state (on a real redis-server), scheduler, three executors and a
//! gateway, each its own process. One executor is killed with SIGKILL in the middle: every
//! call still ends SUCCESS or FAILED with a reason, and every asynchronous result can be read.

use std::sync::Arc;

use fwasm_proto::pb::{CallStatus, InvokeRequest, WaitCallRequest};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_executor_mid_load_loses_no_call() {
    let redis = redis_harness::RedisServer::start();
    let mut mesh = Mesh::start(MeshOptions {
        executors: 3,
        redis: Some(&redis.url()),
        // 1,500 background calls run at once, sharing two cores with everything else: each
        // takes as long as all of them.
        executor_flags: &["--timeout", "300"],
        ..MeshOptions::default()
    })
    .await;
    let echo = include_bytes!("../../demo/echo.wasm").to_vec();
    mesh.upload("load/echo", echo).await;
    mesh.upload("load/slow", wat::parse_str(SLOW).unwrap())
        .await;
    let client = mesh.client().await;
    let echo_url = mesh.invoke_url("load/echo");

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
        let (permits, http, url) = (gate.clone(), mesh.http.clone(), echo_url.clone());
        sync_calls.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
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
            // Kill e2 while it holds calls, so some are surely cut off.
            holding_a_call(&mesh.http, &mesh.executors[1].metrics).await;
            mesh.kill_executor("e2");
        }
    }
    // The silent executor is dropped from placement.
    executors_joined(&mesh.http, &mesh.scheduler_metrics, 2).await;
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
