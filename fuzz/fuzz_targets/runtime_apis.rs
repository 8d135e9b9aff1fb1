//! The public gRPC APIs' request handling: any bytes as the message of a Layotto, Dapr or
//! fwasm method, through the gateway's real services (decoding, checks, the operation on a
//! platform in this process). Each answers a status, never a panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use tonic::service::Routes;
use tower::ServiceExt;

/// The methods the fuzzer picks from (by the input's first byte).
const METHODS: &[&str] = &[
    "/spec.proto.runtime.v1.Runtime/GetState",
    "/spec.proto.runtime.v1.Runtime/SaveState",
    "/spec.proto.runtime.v1.Runtime/GetBulkState",
    "/spec.proto.runtime.v1.Runtime/DeleteState",
    "/spec.proto.runtime.v1.Runtime/ExecuteStateTransaction",
    "/spec.proto.runtime.v1.Runtime/InvokeService",
    "/spec.proto.runtime.v1.Runtime/PublishEvent",
    "/spec.proto.runtime.v1.Runtime/TryLock",
    "/spec.proto.runtime.v1.Runtime/Unlock",
    "/spec.proto.runtime.v1.Runtime/GetNextId",
    "/spec.proto.runtime.v1.Runtime/PutFile",
    "/spec.proto.runtime.v1.Runtime/ListFile",
    "/dapr.proto.runtime.v1.Dapr/GetState",
    "/dapr.proto.runtime.v1.Dapr/SaveState",
    "/dapr.proto.runtime.v1.Dapr/ExecuteStateTransaction",
    "/dapr.proto.runtime.v1.Dapr/InvokeService",
    "/dapr.proto.runtime.v1.Dapr/PublishEvent",
    "/dapr.proto.runtime.v1.Dapr/TryLockAlpha1",
    "/fwasm.v1.Functions/Invoke",
    "/fwasm.v1.Functions/SetState",
    "/fwasm.v1.Functions/GetCall",
    "/fwasm.v1.Functions/Subscribe",
];

struct Platform {
    runtime: tokio::runtime::Runtime,
    routes: Routes,
    _data: tempfile::TempDir,
}

fn platform() -> &'static Platform {
    static PLATFORM: OnceLock<Platform> = OnceLock::new();
    PLATFORM.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let data = tempfile::tempdir().unwrap();
        let config = fwasm::up::UpConfig {
            data_dir: data.path().into(),
            state_backend: None,
            executor: fwasm_executor::ExecutorConfig::default(),
            gateway: fwasm_gateway::GatewayConfig::default(),
            default_quota: Default::default(),
            state_limits: Default::default(),
        };
        let gateway: Arc<fwasm_gateway::Gateway> =
            runtime.block_on(fwasm::up::start(config)).unwrap();
        let (routes, _) = fwasm_gateway::grpc_routes(gateway);
        Platform {
            runtime,
            routes,
            _data: data,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, message)) = data.split_first() else {
        return;
    };
    let method = METHODS[usize::from(pick) % METHODS.len()];
    // One gRPC frame: not compressed, the length, the message.
    let mut frame = vec![0];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(message);
    let request = http::Request::post(method)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(Full::new(Bytes::from(frame))))
        .unwrap();
    let platform = platform();
    platform.runtime.block_on(async {
        let response = platform.routes.clone().oneshot(request).await.unwrap();
        let _ = response.into_body().collect().await;
    });
});
