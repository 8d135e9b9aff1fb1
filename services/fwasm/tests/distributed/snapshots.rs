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
    let http = crate::support::http_client();
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
    let http = crate::support::http_client();
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
    // Taken here, or restored from the one the state service keeps (the embedded store of
    // `fwasm up`), whichever the moment gives: five got in all, two initialisations at least.
    let metrics = scrape(&http, &ready.addr("invoke")).await.unwrap();
    let taken = sample(&metrics, "fwasm_snapshots_taken_total");
    let fetched = sample(&metrics, "fwasm_snapshots_fetched_total");
    assert!(taken >= 2.0 && taken + fetched == 5.0, "{metrics}");
}

/// A function whose initialisation costs more than fetching its snapshot (ten million rounds
/// of a loop, then it writes 'I' into its reply and sets a global to 5); each call bumps the
/// reply's second byte and adds 2 to the global, written as the third ('a' from 5 + 2).
fn costly_init() -> Vec<u8> {
    wat::parse_str(
        r#"(module
    (memory (export "memory") 1)
    (data (i32.const 300) "\01\c8\00\00\00\00\00\03\00\00\00abc")
    (global $g (export "g") (mut i32) (i32.const 0))
    (func (export "fwasm_abi_v1"))
    (func (export "fwasm_alloc") (param i32) (result i32) i32.const 1024)
    (func (export "fwasm_init") (local $n i32)
        (local.set $n (i32.const 10000000))
        (loop $again
            (local.set $n (i32.sub (local.get $n) (i32.const 1)))
            (br_if $again (local.get $n)))
        (i32.store8 (i32.const 311) (i32.const 73))
        (global.set $g (i32.const 5)))
    (func (export "fwasm_handle") (param i32 i32) (result i64)
        (i32.store8 (i32.const 312) (i32.add (i32.load8_u (i32.const 312)) (i32.const 1)))
        (global.set $g (i32.add (global.get $g) (i32.const 2)))
        (i32.store8 (i32.const 313) (i32.add (global.get $g) (i32.const 90)))
        i64.const 1288490188814))"#,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_executor_restores_the_snapshot_the_first_shared() {
    let mut mesh = Mesh::start(MeshOptions {
        executors: 2,
        ..MeshOptions::default()
    })
    .await;
    mesh.upload("snap/costly", costly_init()).await;
    // The upload prepared it on one executor, which shares the snapshot through the state
    // service.
    let shared = r#"fwasm_grpc_requests_total{rpc="put_snapshot",code="OK"}"#;
    eventually("the snapshot shared", async || {
        let metrics = scrape(&mesh.http, &mesh.state_metrics).await;
        sample(&metrics.unwrap_or_default(), shared) == 1.0
    })
    .await;
    let mut prepared = None;
    for member in &mesh.executors {
        let metrics = scrape(&mesh.http, &member.metrics).await.unwrap();
        if sample(&metrics, "fwasm_snapshots_taken_total") == 1.0 {
            prepared = Some(member.id.clone());
        }
    }
    let prepared = prepared.expect("an executor prepared the function");
    mesh.kill_executor(&prepared);
    executors_joined(&mesh.http, &mesh.scheduler_metrics, 1).await;
    for _ in 0..3 {
        let reply = mesh
            .http
            .post(mesh.invoke_url("snap/costly"))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        // What the first executor's calls answer: init's writes, never an earlier call's.
        assert_eq!(reply.text().await.unwrap(), "Ica");
    }
    let survivor = scrape(&mesh.http, &mesh.executors[0].metrics)
        .await
        .unwrap();
    assert_eq!(
        (
            sample(&survivor, "fwasm_snapshots_taken_total"),
            sample(&survivor, "fwasm_snapshots_fetched_total")
        ),
        (0.0, 1.0),
        "{survivor}"
    );
}
