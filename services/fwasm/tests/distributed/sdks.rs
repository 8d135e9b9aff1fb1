//! Apps written against the sidecars' official SDKs, installed from their registries by
//! scripts/test (Dapr's Python SDK from PyPI, Layotto's Node.js SDK from npm), run against a
//! real `fwasm up`: fwasm answers them as their sidecar would.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// A program from scripts/test's installs, named by `variable`.
pub(crate) fn installed(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!("{variable} is not set: run scripts/test, which installs the sidecar SDKs")
    })
}

pub(crate) fn app(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../integration/sdks")
        .join(name)
}

/// `fwasm up` with, for each store (user) an app uses, the testkit guest as STORE/counter
/// (takes the global write lock on "counter" and counts) and STORE/subscriber (keeps each event
/// it gets at "last-event"), subscribed to the topic "orders".
async fn up_for_apps(dir: &Path, stores: &[&str]) -> (Process, Ready) {
    up_for_apps_with(dir, stores, None).await
}

/// [`up_for_apps`], with tokens on (`--auth`) and `admin` as the admin token when given.
pub(crate) async fn up_for_apps_with(
    dir: &Path,
    stores: &[&str],
    admin: Option<&str>,
) -> (Process, Ready) {
    let data = dir.join("data");
    let auth: &[&str] = if admin.is_some() { &["--auth"] } else { &[] };
    let args = [
        &["up"][..],
        &ANY_GATEWAY_PORTS,
        &["--data-dir", data.to_str().unwrap()],
        auth,
    ];
    let env: Vec<(&str, &str)> = admin
        .map(|a| ("FWASM_ADMIN_TOKEN", a))
        .into_iter()
        .collect();
    let mut up = Process::spawn(dir, "up", &args.concat(), &env);
    let ready = up.ready().await;
    let ports = GatewayPorts::of(&ready);
    let http = crate::support::http_client();
    let testkit = fwasm_integration::guest("testkit");
    for store in stores {
        for function in ["counter", "subscriber"] {
            let target = format!("{store}/{function}");
            upload_as(&http, ports, &target, testkit.clone(), admin).await;
        }
        let subscribe = format!(
            "http://127.0.0.1:{}/sub/{store}/orders/subscriber",
            ports.upload
        );
        let subscribe = http.put(subscribe);
        let subscribe = match admin {
            Some(admin) => subscribe.bearer_auth(admin),
            None => subscribe,
        };
        let reply = subscribe.send().await.unwrap();
        assert!(reply.status().is_success(), "{:?}", reply.text().await);
    }
    (up, ready)
}

/// Runs an app to its end; panics with its output unless it printed `ok_line`.
pub(crate) fn run_app(mut command: Command, ok_line: &str) -> String {
    let output = command.output().expect("run the SDK app");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains(ok_line),
        "the SDK app failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout.into_owned()
}

/// Runs the Dapr SDK app against `fwasm up`, invoking over `protocol`.
fn run_dapr_app(ready: &Ready, protocol: &str, store: &str) {
    // Sent on every request as dapr-api-token; with tokens off, nothing checks it.
    run_app(
        dapr_app(ready, protocol, store, "any-token"),
        "dapr sdk: ok",
    );
}

/// The Dapr SDK app, set to run against `fwasm up` with `token` as its DAPR_API_TOKEN.
fn dapr_app(ready: &Ready, protocol: &str, store: &str, token: &str) -> Command {
    let mut command = Command::new(installed("FWASM_TEST_PYTHON"));
    if token != "any-token" {
        command.env("HELLO_APP", store);
    }
    command
        .arg(app("dapr_app.py"))
        .env(
            "DAPR_HTTP_ENDPOINT",
            format!("http://{}", ready.addr("invoke")),
        )
        .env("FWASM_GRPC", ready.addr("grpc"))
        .env("DAPR_API_METHOD_INVOCATION_PROTOCOL", protocol)
        .env("DAPR_API_TOKEN", token)
        .env("STORE", store);
    command
}

/// A user token for each of `users`, made by the admin with `fwasm token create`.
pub(crate) async fn tokens_for(
    ready: &Ready,
    admin: &str,
    users: &[&'static str],
) -> std::collections::HashMap<&'static str, String> {
    let mut token_of = std::collections::HashMap::new();
    for user in users {
        let server = fwasm::client::Server {
            addr: ready.addr("grpc"),
            token: Some(admin.into()),
            ..Default::default()
        };
        let mut token = Vec::new();
        fwasm::client::token_create(server, user, false, &mut token, &mut Vec::new())
            .await
            .unwrap();
        let token = String::from_utf8(token).unwrap().trim().to_string();
        token_of.insert(*user, token);
    }
    token_of
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daprs_python_sdk_brings_its_users_token_and_reaches_that_user_alone() {
    let admin = "an-admin-token-long-enough-for-the-check-of-its-length";
    let dir = tempfile::tempdir().unwrap();
    let stores = ["pya-http", "pya-grpc"];
    let (_up, ready) = up_for_apps_with(dir.path(), &stores, Some(admin)).await;
    let ports = GatewayPorts::of(&ready);
    let http = crate::support::http_client();
    let hello = fwasm::up::DEMOS.iter().find(|d| d.1 == "hello").unwrap().2;
    let users = ["pya-http", "pya-grpc", "someone-else"];
    for user in users {
        // Each store's own `hello`, the demo one, for its app to invoke.
        let target = format!("{user}/hello");
        upload_as(&http, ports, &target, hello.to_vec(), Some(admin)).await;
    }
    let token_of = tokens_for(&ready, admin, &users).await;
    for (protocol, store) in [("http", stores[0]), ("grpc", stores[1])] {
        let ready = ready.clone();
        let (own, other) = (token_of[store].clone(), token_of["someone-else"].clone());
        tokio::task::spawn_blocking(move || {
            // Another user's token, or one fwasm does not know, gets the app nowhere.
            for wrong in [other.as_str(), "not-a-token"] {
                let output = dapr_app(&ready, protocol, store, wrong).output().unwrap();
                let stdout = String::from_utf8_lossy(&output.stdout);
                assert!(
                    !output.status.success() && !stdout.contains("dapr sdk: ok"),
                    "{protocol}, token {wrong}: {stdout}"
                );
            }
            run_app(dapr_app(&ready, protocol, store, &own), "dapr sdk: ok");
        })
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_on_daprs_python_sdk_uses_fwasm_as_its_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let (_up, ready) = up_for_apps(dir.path(), &["py-http", "py-grpc"]).await;
    for (protocol, store) in [("http", "py-http"), ("grpc", "py-grpc")] {
        let ready = ready.clone();
        tokio::task::spawn_blocking(move || run_dapr_app(&ready, protocol, store))
            .await
            .unwrap();
    }
    // A method no one serves, under any name, is counted as one.
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", ready.addr("grpc")))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    for name in ["NoSuchMethod", "NorThisOne"] {
        grpc.ready().await.unwrap();
        let path = format!("/dapr.proto.runtime.v1.Dapr/{name}");
        let codec = tonic_prost::ProstCodec::<(), ()>::default();
        let path = tonic::codegen::http::uri::PathAndQuery::try_from(path).unwrap();
        let status = grpc.unary(tonic::Request::new(()), path, codec).await;
        assert_eq!(status.unwrap_err().code(), tonic::Code::Unimplemented);
    }

    // Every runtime API method is counted by its path and status, as fwasm's own are.
    let metrics = scrape(&crate::support::http_client(), &ready.addr("invoke"))
        .await
        .unwrap();
    let count = |rpc: &str, code: &str| {
        let labels = format!(
            "fwasm_grpc_requests_total{{rpc=\"dapr.proto.runtime.v1.Dapr/{rpc}\",code=\"{code}\"}}"
        );
        sample(&metrics, &labels)
    };
    // Each run: three tries of the lock (one granted) and three unlocks; one stale save.
    assert_eq!(count("TryLockAlpha1", "OK"), 6.0, "{metrics}");
    assert_eq!(count("UnlockAlpha1", "OK"), 6.0);
    assert_eq!(count("SaveState", "ABORTED"), 2.0);
    assert_eq!(count("unimplemented", "UNIMPLEMENTED"), 2.0, "{metrics}");
    assert!(!metrics.contains("NoSuchMethod"), "{metrics}");
    let seconds = "fwasm_grpc_request_seconds_count{rpc=\"dapr.proto.runtime.v1.Dapr/GetState\"}";
    assert!(sample(&metrics, seconds) >= 2.0, "{metrics}");
}

fn layotto_app(ready: &Ready, store: &str) -> Command {
    let mut command = Command::new("node");
    command
        .arg(app("layotto_app.js"))
        .env("NODE_PATH", installed("FWASM_TEST_NODE_PATH"))
        .env("FWASM_GRPC_PORT", ready.port("grpc").to_string())
        .env("STORE", store);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_on_layottos_node_sdk_uses_fwasm_as_its_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let (_up, ready) = up_for_apps(dir.path(), &["node-app"]).await;
    let command = layotto_app(&ready, "node-app");
    tokio::task::spawn_blocking(move || run_app(command, "layotto sdk: ok"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layottos_node_sdk_brings_its_users_token_and_reaches_that_user_alone() {
    let admin = "an-admin-token-long-enough-for-the-check-of-its-length";
    let dir = tempfile::tempdir().unwrap();
    let (_up, ready) = up_for_apps_with(dir.path(), &["node-own"], Some(admin)).await;
    let ports = GatewayPorts::of(&ready);
    // The app invokes its own user's `hello`, the demo one.
    let hello = fwasm::up::DEMOS.iter().find(|d| d.1 == "hello").unwrap().2;
    let http = crate::support::http_client();
    upload_as(&http, ports, "node-own/hello", hello.to_vec(), Some(admin)).await;
    let token_of = tokens_for(&ready, admin, &["node-own", "node-other"]).await;
    tokio::task::spawn_blocking(move || {
        // No token, another user's, or one fwasm does not know gets the app nowhere.
        for wrong in [
            None,
            Some(token_of["node-other"].as_str()),
            Some("not-a-token"),
        ] {
            let mut app = layotto_app(&ready, "node-own");
            if let Some(wrong) = wrong {
                app.env("FWASM_TOKEN", wrong);
            }
            let output = app.output().unwrap();
            let said = String::from_utf8_lossy(&output.stderr);
            // Refused at its first request, by the token.
            let want = match wrong == Some(token_of["node-other"].as_str()) {
                true => "check state failed: Error: 7 PERMISSION_DENIED",
                false => "check state failed: Error: 16 UNAUTHENTICATED",
            };
            assert!(
                !output.status.success() && said.contains(want),
                "token {wrong:?}: {said}"
            );
        }
        let mut app = layotto_app(&ready, "node-own");
        app.env("FWASM_TOKEN", &token_of["node-own"])
            .env("APP", "node-own")
            .env("OTHER_STORE", "node-other");
        run_app(app, "layotto sdk: ok");
    })
    .await
    .unwrap();
}
