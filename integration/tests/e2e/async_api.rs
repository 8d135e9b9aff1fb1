//! Asynchronous calls: `POST /fa/...`, Faasm's JSON `async` and `status` messages, and gRPC
//! InvokeAsync / GetCall / WaitCall. The id comes back at once, the call is RUNNING while it
//! runs, then SUCCESS or FAILED with Faasm's exact reply lines.

use fwasm_proto::pb::functions_client::FunctionsClient;
use fwasm_proto::pb::{CallRef, CallStatus, FailureKind, InvokeRequest, WaitCallRequest};
use tonic::Code;

use crate::support::{SLOW, each_platform, each_platform_with, short_time_limit};

#[tokio::test]
async fn an_async_http_call_is_running_then_succeeds() {
    for (mode, p) in each_platform().await {
        p.upload_testkit("t", &["slow"]).await;
        let id = p.call_async("t/slow", SLOW).await;
        assert_eq!(p.status(id).await, (200, "RUNNING".to_string()), "{mode}");
        assert_eq!(p.status_when_done(id).await, "SUCCESS: done", "{mode}");
        p.stop().await;
    }
}

#[tokio::test]
async fn faasm_json_async_calls_and_status_polls() {
    for (mode, p) in each_platform().await {
        p.upload_testkit("t", &["upper", "panic", "slow"]).await;
        let submit = |function: &str, input: &str| {
            format!(
                r#"{{"user": "t", "function": "{function}", "input_data": "{input}", "async": true}}"#
            )
        };
        let (status, body) = p.post_message(submit("upper", "abc")).await;
        assert_eq!(status, 200, "{mode}: {body}");
        let id: u64 = body.parse().expect("the reply is the call id alone");
        assert_eq!(p.status_when_done(id).await, "SUCCESS: ABC", "{mode}");

        let (_, body) = p.post_message(submit("slow", SLOW)).await;
        let id: u64 = body.parse().unwrap();
        assert_eq!(p.status(id).await, (200, "RUNNING".to_string()), "{mode}");
        assert_eq!(p.status_when_done(id).await, "SUCCESS: done", "{mode}");

        let (_, body) = p.post_message(submit("panic", "async")).await;
        let line = p.status_when_done(body.parse().unwrap()).await;
        assert!(
            line.starts_with("FAILED: t/panic failed: ") && line.contains("boom: async"),
            "{mode}: {line}"
        );

        p.stop().await;
    }
}

#[tokio::test]
async fn a_background_call_over_its_time_limit_fails_with_faasms_line() {
    for (mode, p) in each_platform_with(short_time_limit()).await {
        p.upload_testkit("t", &["spin"]).await;
        let message = r#"{"user": "t", "function": "spin", "input_data": "", "async": true}"#;
        let (_, body) = p.post_message(message).await;
        assert_eq!(
            p.status_when_done(body.parse().unwrap()).await,
            "FAILED: t/spin timed out after 1s",
            "{mode}"
        );
        p.stop().await;
    }
}

#[tokio::test]
async fn a_sync_calls_id_can_be_polled_too() {
    for (mode, p) in each_platform().await {
        p.upload_testkit("t", &["upper"]).await;
        let (status, _, id) = p.call_with_id("t/upper", "sync").await;
        assert_eq!(status, 200);
        assert_eq!(
            p.status(id).await,
            (200, "SUCCESS: SYNC".to_string()),
            "{mode}"
        );
        p.stop().await;
    }
}

#[tokio::test]
async fn unknown_calls_and_functions_get_clear_answers() {
    for (mode, p) in each_platform().await {
        let (status, line) = p.status(5).await;
        assert_eq!(status, 404, "{mode}");
        assert!(
            line.starts_with("FAILED: no call with id 5 is known"),
            "{mode}: {line}"
        );
        let response = p
            .http
            .post(format!("{}/fa/t/missing", p.invoke))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 404, "{mode}");
        assert_eq!(
            response.text().await.unwrap(),
            "function t/missing does not exist; upload it first\n"
        );
        let (status, body) = p.post_message(r#"{"status": true}"#).await;
        assert_eq!(
            (status, body.as_str()),
            (400, "Status request without a call id\n")
        );
        p.stop().await;
    }
}

async fn wait(
    client: &mut FunctionsClient<tonic::transport::Channel>,
    id: u64,
) -> fwasm_proto::pb::CallRecord {
    let wait = WaitCallRequest {
        id,
        ..WaitCallRequest::default()
    };
    client.wait_call(wait).await.unwrap().into_inner()
}

#[tokio::test]
async fn grpc_invoke_async_get_call_and_wait_call() {
    for (mode, p) in each_platform().await {
        p.upload_testkit("t", &["slow", "hog"]).await;
        let mut client = p.grpc_client().await;
        let request = |function: &str, input: &str| InvokeRequest {
            user: "t".into(),
            function: function.into(),
            input: input.to_string().into(),
            headers: vec![],
            cmdline: String::new(),
            ..InvokeRequest::default()
        };
        let id = client
            .invoke_async(request("slow", SLOW))
            .await
            .unwrap()
            .into_inner()
            .call_id;
        let running = client
            .get_call(CallRef {
                id,
                ..CallRef::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(running.status(), CallStatus::Running, "{mode}");
        let done = wait(&mut client, id).await;
        assert_eq!(
            (done.status(), &done.output[..], done.return_code),
            (CallStatus::Success, &b"done"[..], 0),
            "{mode}"
        );
        assert_eq!((done.user.as_str(), done.function.as_str()), ("t", "slow"));
        assert!(done.finished_unix_micros >= done.submitted_unix_micros);
        assert!(done.exec_micros > 0 && !done.executor_id.is_empty());

        let id = client
            .invoke_async(request("hog", ""))
            .await
            .unwrap()
            .into_inner()
            .call_id;
        let failed = wait(&mut client, id).await;
        assert_eq!(
            (failed.status(), failed.failure(), failed.return_code),
            (CallStatus::Failed, FailureKind::MemoryLimit, 4),
            "{mode}"
        );
        assert!(failed.error.starts_with("t/hog ran out of memory"));

        let missing = client
            .get_call(CallRef {
                id: 5,
                ..CallRef::default()
            })
            .await
            .unwrap_err();
        assert_eq!(missing.code(), Code::NotFound);
        p.stop().await;
    }
}
