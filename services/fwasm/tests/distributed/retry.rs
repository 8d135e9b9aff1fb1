//! A background call cut off by an executor killed with SIGKILL runs again on another
//! executor and ends SUCCESS there. State is the embedded store, run as its own process.

use fwasm_proto::pb::{CallRef, CallStatus, InvokeRequest, WaitCallRequest};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cut_off_by_a_killed_executor_succeeds_on_another() {
    // State on the embedded store (no --backend), as its own process too.
    let mut mesh = Mesh::start(MeshOptions {
        executors: 2,
        ..MeshOptions::default()
    })
    .await;
    // Long enough that it is surely still running when its executor is killed.
    mesh.upload("retry/spin", spin(5)).await;
    let mut client = mesh.client().await;

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
        let record = client
            .get_call(CallRef {
                id,
                ..CallRef::default()
            })
            .await
            .unwrap()
            .into_inner();
        first = record.executor_id.clone();
        record.status() == CallStatus::Running && !first.is_empty()
    })
    .await;
    let holder = mesh.executors.iter().find(|m| m.id == first).unwrap();
    holding_a_call(&mesh.http, &holder.metrics).await;
    mesh.kill_executor(&first);

    let wait = WaitCallRequest {
        id,
        timeout_ms: 30_000,
        ..WaitCallRequest::default()
    };
    let record = client.wait_call(wait).await.unwrap().into_inner();
    let survivor = mesh.executors[0].id.as_str();
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

/// An executor started without --id on port 0 names itself and advertises from the address it
/// bound, so the scheduler reaches it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_on_any_port_advertises_and_names_itself_from_the_bound_address() {
    let mut mesh = Mesh::start(MeshOptions {
        executors: 1,
        ..MeshOptions::default()
    })
    .await;
    let (state, scheduler) = (mesh.state.clone(), mesh.scheduler.clone());
    let args = ["executor", "--listen", "127.0.0.1:0", "--state", &state];
    let mut anonymous = mesh.spawn(
        "anonymous",
        &[&args[..], &["--scheduler", &scheduler]].concat(),
    );
    let bound = anonymous.ready().await.addr("listen");
    executors_joined(&mesh.http, &mesh.scheduler_metrics, 2).await;
    mesh.kill_executor("e1");
    executors_joined(&mesh.http, &mesh.scheduler_metrics, 1).await;

    mesh.upload("anon/echo", include_bytes!("../../demo/echo.wasm").to_vec())
        .await;
    let mut client = mesh.client().await;
    let invoke = InvokeRequest {
        user: "anon".into(),
        function: "echo".into(),
        input: b"reached".to_vec().into(),
        ..InvokeRequest::default()
    };
    let id = client
        .invoke_async(invoke)
        .await
        .unwrap()
        .into_inner()
        .call_id;
    let wait = WaitCallRequest {
        id,
        timeout_ms: 30_000,
        ..WaitCallRequest::default()
    };
    let record = client.wait_call(wait).await.unwrap().into_inner();
    let expected_id = bound.replace(':', "-");
    assert_eq!(
        (
            record.status(),
            &record.output[..],
            record.executor_id.as_str()
        ),
        (CallStatus::Success, &b"reached"[..], expected_id.as_str()),
        "{record:?}"
    );
}
