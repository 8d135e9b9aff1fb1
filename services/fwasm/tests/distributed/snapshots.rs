//! Snapshots in a real `fwasm up`: a function's initialisation runs once in the process, as
//! its metrics say, and every call starts from what it left.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_functions_init_runs_once_and_every_call_starts_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = [
        &["up"][..],
        &ANY_GATEWAY_PORTS,
        &["--data-dir", data.to_str().unwrap()],
    ];
    let mut up = Process::spawn(dir.path(), "up", &args.concat(), &[]);
    let ready = up.ready().await;
    let http = reqwest::Client::new();
    let wasm = fwasm_integration::guest("initialised");
    upload_as(&http, GatewayPorts::of(&ready), "snap/init", wasm, None).await;
    // The upload has the executor get it ready before any call: compiled and initialised.
    let invoke = ready.addr("invoke");
    eventually("the upload prepares the function", async || {
        let metrics = scrape(&http, &invoke).await.unwrap_or_default();
        sample(&metrics, "fwasm_snapshots_taken_total") == 1.0
    })
    .await;
    let url = format!("http://{}/f/snap/init", ready.addr("invoke"));
    for n in [3, 4, 1000] {
        let reply = http.post(&url).body(n.to_string()).send().await.unwrap();
        assert_eq!(reply.status(), 200);
        let body = reply.text().await.unwrap();
        // Every call is the first its instance saw, with the table init built.
        assert_eq!(body, format!("calls=1 table=1048576 value={}", n * n));
    }
    let metrics = scrape(&http, &ready.addr("invoke")).await.unwrap();
    assert_eq!(
        sample(&metrics, "fwasm_snapshots_taken_total"),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "fwasm_cold_starts_total"),
        0.0,
        "the first call found the function ready: {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_past_the_memory_flag_are_dropped_and_taken_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = [
        &["up"][..],
        &ANY_GATEWAY_PORTS,
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--max-snapshot-mib",
            "1",
        ],
    ];
    let mut up = Process::spawn(dir.path(), "up", &args.concat(), &[]);
    let ready = up.ready().await;
    let http = reqwest::Client::new();
    let wasm = fwasm_integration::guest("initialised");
    for function in ["snap/a", "snap/b"] {
        upload_as(
            &http,
            GatewayPorts::of(&ready),
            function,
            wasm.clone(),
            None,
        )
        .await;
    }
    // Each upload has the function prepared (a snapshot each); each snapshot holds a 4 MiB
    // table, so only the latest fits in 1 MiB: every call below takes its own again.
    let invoke = ready.addr("invoke");
    eventually("both uploads prepare their function", async || {
        let metrics = scrape(&http, &invoke).await.unwrap_or_default();
        sample(&metrics, "fwasm_snapshots_taken_total") == 2.0
    })
    .await;
    for function in ["snap/a", "snap/b", "snap/a"] {
        let url = format!("http://{}/f/{function}", ready.addr("invoke"));
        let reply = http.post(&url).body("2").send().await.unwrap();
        assert_eq!(reply.text().await.unwrap(), "calls=1 table=1048576 value=4");
    }
    let metrics = scrape(&http, &ready.addr("invoke")).await.unwrap();
    assert_eq!(
        sample(&metrics, "fwasm_snapshots_taken_total"),
        5.0,
        "{metrics}"
    );
}
