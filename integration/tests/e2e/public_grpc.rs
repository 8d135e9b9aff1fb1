//! The public gRPC API: Upload and Invoke.

use fwasm_proto::pb::{CallStatus, FailureKind, InvokeRequest, UploadRequest};
use tonic::Code;

use crate::support::{each_platform, guest};

fn invoke(user: &str, function: &str, input: &str) -> InvokeRequest {
    InvokeRequest {
        user: user.into(),
        function: function.into(),
        input: input.to_string().into(),
        headers: vec![],
        cmdline: String::new(),
        ..InvokeRequest::default()
    }
}

#[tokio::test]
async fn upload_and_invoke_over_grpc() {
    for (mode, p) in each_platform().await {
        let mut client = p.grpc_client().await;
        let wasm = guest("testkit");
        let reply = client
            .upload(UploadRequest {
                user: "bob".into(),
                function: "upper".into(),
                wasm: wasm.clone().into(),
                settings: None,
                python: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.abi, "fwasm v1");
        assert_eq!(reply.size, wasm.len() as u64);
        assert_eq!(reply.module_hash.len(), 64, "hex sha256");

        let result = client
            .invoke(invoke("bob", "upper", "grpc"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(result.status(), CallStatus::Success, "{mode}: {result:?}");
        assert_eq!(&result.output[..], b"GRPC");
        assert_eq!(result.http_status, 200);
        assert!(result.id > 0);
        p.stop().await;
    }
}

#[tokio::test]
async fn grpc_errors_carry_codes_and_reasons() {
    for (mode, p) in each_platform().await {
        let mut client = p.grpc_client().await;
        let status = client
            .invoke(invoke("bob", "missing", ""))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{mode}");
        assert_eq!(
            status.message(),
            "function bob/missing does not exist; upload it first"
        );

        let status = client
            .invoke(invoke("bob", "../etc", ""))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{mode}");
        assert!(
            status
                .message()
                .starts_with("invalid function name \"../etc\""),
            "{}",
            status.message()
        );

        let bad = UploadRequest {
            user: "bob".into(),
            function: "junk".into(),
            wasm: b"junk".to_vec().into(),
            settings: None,
            python: false,
        };
        let status = client.upload(bad).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains("not a valid WebAssembly module"),
            "{}",
            status.message()
        );

        // A call that ran and failed is a reply with the reason, not an RPC error.
        client
            .upload(UploadRequest {
                user: "bob".into(),
                function: "panic".into(),
                wasm: guest("testkit").into(),
                settings: None,
                python: false,
            })
            .await
            .unwrap();
        let result = client
            .invoke(invoke("bob", "panic", "grpc"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (result.status(), result.failure()),
            (CallStatus::Failed, FailureKind::Trap),
            "{mode}"
        );
        assert!(result.error.contains("boom: grpc"), "{}", result.error);
        p.stop().await;
    }
}

#[tokio::test]
async fn state_over_grpc() {
    use fwasm_proto::pb::{SetStateRequest, StateKey};
    for (mode, p) in each_platform().await {
        let mut client = p.grpc_client().await;
        let key = |key: &str| StateKey {
            user: "bob".into(),
            key: key.into(),
        };
        let missing = client.get_state(key("k")).await.unwrap().into_inner();
        assert!(!missing.exists && missing.value.is_empty(), "{mode}");
        client
            .set_state(SetStateRequest {
                user: "bob".into(),
                key: "k".into(),
                value: "v".into(),
            })
            .await
            .unwrap();
        let value = client.get_state(key("k")).await.unwrap().into_inner();
        assert_eq!(
            (value.exists, &value.value[..]),
            (true, &b"v"[..]),
            "{mode}"
        );
        let err = client.get_state(key("")).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{mode}");
        p.stop().await;
    }
}
