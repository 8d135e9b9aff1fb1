//! A call's log lines (what it logged, and each line it wrote to stderr) are kept with its
//! record: `GET /logs/<id>` on the invoke port, gRPC `GetCall`, `fwasm logs ID`, and `fwasm
//! status ID` when the call failed; in `fwasm up` and in the mesh.

use fwasm_proto::pb::CallRef;

use crate::support::{each_platform, guest};

#[tokio::test]
async fn a_calls_logs_are_kept_with_its_record() {
    for (mode, p) in each_platform().await {
        p.upload("alice/inspect", guest("testkit")).await;
        let (status, _, id) = p.call_with_id("alice/inspect", "hi").await;
        assert_eq!(status, 200, "{mode}");
        let expected = "INFO inspect called\n";
        let (status, body) = p.get(format!("{}/logs/{id}", p.invoke)).await;
        assert_eq!(
            (status, String::from_utf8_lossy(&body).as_ref()),
            (200, expected),
            "{mode}"
        );
        let record = p
            .grpc_client()
            .await
            .get_call(CallRef {
                id,
                ..CallRef::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(record.logs, expected.as_bytes(), "{mode}");
        let mut out = Vec::new();
        fwasm::client::logs(&p.grpc, id, &mut out).await.unwrap();
        assert_eq!(out, expected.as_bytes(), "{mode}");

        // A program's stderr lines are its logs; a failed call's status shows them.
        p.upload("alice/cmd", fwasm_integration::wasi_command("c"))
            .await;
        let input = fwasm::client::CallInput {
            cmdline: "exit 3".into(),
            ..Default::default()
        };
        let id = fwasm::client::invoke_async(&p.grpc, "alice/cmd", input, &mut Vec::new())
            .await
            .unwrap();
        let mut out = Vec::new();
        fwasm::client::status(&p.grpc, id, true, &mut out)
            .await
            .unwrap();
        let shown = String::from_utf8(out).unwrap();
        assert!(
            shown.starts_with("FAILED: alice/cmd exited with code 3\n"),
            "{mode}: {shown}"
        );
        assert!(
            shown.ends_with("\nits logs:\nstderr exiting with 3\n"),
            "{mode}: {shown}"
        );

        // Unknown calls and ids that are none say so.
        let (status, _) = p.get(format!("{}/logs/999999999", p.invoke)).await;
        assert_eq!(status, 404, "{mode}");
        let (status, body) = p.get(format!("{}/logs/seven", p.invoke)).await;
        assert_eq!(status, 400, "{mode}");
        assert!(String::from_utf8_lossy(&body).contains("is not a call id"));
        p.stop().await;
    }
}
