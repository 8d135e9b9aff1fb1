//! Apps written against the sidecars' official SDKs, installed from their registries by
//! scripts/test, run against a real `fwasm up`: fwasm answers them as their sidecar would.

use std::path::Path;
use std::process::Command;

use crate::support::*;

/// The Python with Dapr's SDK that scripts/test installs (FWASM_TEST_PYTHON).
fn python() -> String {
    std::env::var("FWASM_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("FWASM_TEST_PYTHON is not set: run scripts/test, which installs the Dapr SDK")
    })
}

/// Runs the Dapr SDK app against `fwasm up`, invoking over `protocol`; panics with its output
/// unless it says every check held.
fn run_dapr_app(ready: &Ready, protocol: &str, store: &str) {
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../integration/sdks/dapr_app.py");
    let output = Command::new(python())
        .arg(app)
        .env(
            "DAPR_HTTP_ENDPOINT",
            format!("http://{}", ready.addr("invoke")),
        )
        .env("FWASM_GRPC", ready.addr("grpc"))
        .env("DAPR_API_METHOD_INVOCATION_PROTOCOL", protocol)
        // Sent on every request as dapr-api-token; accepted.
        .env("DAPR_API_TOKEN", "any-token")
        .env("STORE", store)
        .output()
        .expect("run the Dapr SDK app");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("dapr sdk: ok"),
        "the Dapr SDK app ({protocol}) failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_on_daprs_python_sdk_uses_fwasm_as_its_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = [
        &["up"][..],
        &ANY_GATEWAY_PORTS,
        &["--data-dir", data.to_str().unwrap()],
    ];
    let mut up = Process::spawn(dir.path(), "up", &args.concat(), &[]);
    let ready = up.ready().await;
    let for_http = tokio::task::spawn_blocking({
        let ready = ready.clone();
        move || run_dapr_app(&ready, "http", "py-http")
    });
    for_http.await.unwrap();
    let ready_grpc = ready.clone();
    tokio::task::spawn_blocking(move || run_dapr_app(&ready_grpc, "grpc", "py-grpc"))
        .await
        .unwrap();
}
