//! The CLI's upload and invoke commands against a running platform.

use crate::support::{guest, up};

#[tokio::test]
async fn fwasm_upload_then_invoke() {
    let p = up().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("testkit.wasm");
    std::fs::write(&file, guest("testkit")).unwrap();

    let mut out = Vec::new();
    fwasm::client::upload(&p.grpc, "erin/upper", &file, &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("Uploaded erin/upper: ABI fwasm v1, sha256 "),
        "{text}"
    );

    let mut out = Vec::new();
    fwasm::client::invoke(&p.grpc, "erin/upper", b"from the cli".to_vec(), &mut out)
        .await
        .unwrap();
    assert_eq!(out, b"FROM THE CLI");

    let err = fwasm::client::invoke(&p.grpc, "erin/missing", vec![], &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invoke failed: function erin/missing does not exist; upload it first"
    );
    let err = fwasm::client::invoke(&p.grpc, "no-slash", vec![], &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected USER/NAME (for example demo/echo), got \"no-slash\""
    );
}

#[tokio::test]
async fn an_unreachable_server_tells_the_user_what_to_do() {
    let err = fwasm::client::invoke("http://127.0.0.1:1", "demo/echo", vec![], &mut Vec::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is `fwasm up` running?"), "{err}");
}

#[tokio::test]
async fn fwasm_invoke_async_then_status() {
    let p = up().await;
    p.upload_testkit("erin", &["upper", "panic"]).await;
    let mut out = Vec::new();
    let id = fwasm::client::invoke_async(&p.grpc, "erin/upper", b"later".to_vec(), &mut out)
        .await
        .unwrap();
    assert_eq!(out, format!("{id}\n").into_bytes());

    let mut out = Vec::new();
    let status = fwasm::client::status(&p.grpc, id, true, &mut out)
        .await
        .unwrap();
    assert_eq!(status, fwasm_proto::pb::CallStatus::Success);
    assert_eq!(out, b"SUCCESS: LATER\n");

    let id = fwasm::client::invoke_async(&p.grpc, "erin/panic", vec![], &mut Vec::new())
        .await
        .unwrap();
    let mut out = Vec::new();
    let status = fwasm::client::status(&p.grpc, id, true, &mut out)
        .await
        .unwrap();
    assert_eq!(status, fwasm_proto::pb::CallStatus::Failed);
    let line = String::from_utf8(out).unwrap();
    assert!(line.starts_with("FAILED: erin/panic failed: "), "{line}");
}

#[tokio::test]
async fn fwasm_state_set_then_get() {
    let p = up().await;
    fwasm::client::state_set(&p.grpc, "erin/config/mode", b"fast".to_vec())
        .await
        .unwrap();
    let mut out = Vec::new();
    fwasm::client::state_get(&p.grpc, "erin/config/mode", &mut out)
        .await
        .unwrap();
    assert_eq!(out, b"fast");
    assert_eq!(p.get_state("erin/config/mode").await, (200, "fast".into()));

    let err = fwasm::client::state_get(&p.grpc, "erin/missing", &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "erin has no state value \"missing\"; set one with `fwasm state set erin/missing VALUE`"
    );
    let err = fwasm::client::state_get(&p.grpc, "nokey", &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected USER/KEY (for example demo/counter), got \"nokey\""
    );
}

#[tokio::test]
async fn fwasm_subscribe_then_unsubscribe() {
    let p = up().await;
    p.upload_testkit("erin", &["subscriber"]).await;
    let listed = async || {
        let url = format!("{}/sub/erin", p.upload);
        p.http.get(url).send().await.unwrap().text().await.unwrap()
    };
    let mut out = Vec::new();
    fwasm::client::subscribe(&p.grpc, "erin/subscriber", "orders", true, &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with("erin/subscriber is subscribed to orders\nPublish to it: curl"),
        "{text}"
    );
    assert_eq!(listed().await, "orders subscriber\n");

    let mut out = Vec::new();
    fwasm::client::subscribe(&p.grpc, "erin/subscriber", "orders", false, &mut out)
        .await
        .unwrap();
    assert_eq!(out, b"erin/subscriber is no longer subscribed to orders\n");
    assert_eq!(listed().await, "");
    let err = fwasm::client::subscribe(&p.grpc, "erin/subscriber", "orders", false, &mut out)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsubscribe failed: erin/subscriber is not subscribed to the topic \"orders\""
    );
    let err = fwasm::client::subscribe(&p.grpc, "erin/missing", "orders", true, &mut out)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "subscribe failed: function erin/missing does not exist; upload it first"
    );
}

#[tokio::test]
async fn fwasm_bench_measures_a_function_and_refuses_one_that_cannot_run() {
    let p = up().await;
    p.upload_testkit("erin", &["upper", "panic"]).await;
    let options = fwasm::bench::BenchOptions {
        connections: 2,
        duration: std::time::Duration::from_secs(2),
        input: b"load".to_vec(),
    };
    let (mut progress, mut out) = (Vec::new(), Vec::new());
    let report = fwasm::bench::bench(
        &p.grpc,
        "erin/upper",
        &options,
        &mut progress,
        false,
        &mut out,
    )
    .await
    .unwrap();
    assert!(report.calls > 10, "{report:?}");
    assert_eq!((report.failed, report.first_failure.as_deref()), (0, None));
    assert!(report.p50 > std::time::Duration::ZERO, "{report:?}");
    assert!(
        report.p50 <= report.p99 && report.p99 <= report.max,
        "{report:?}"
    );
    assert!(report.elapsed >= options.duration, "{report:?}");
    let progress = String::from_utf8(progress).unwrap();
    let mut lines = progress.lines();
    assert_eq!(
        lines.next(),
        Some("bench erin/upper: 2 connections for 2 s")
    );
    // A line a second (which second each shows depends on how busy the machine is).
    assert!(
        lines
            .next()
            .is_some_and(|l| l.contains(" s of 2: ") && l.ends_with(" calls/s")),
        "{progress}"
    );
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.starts_with(&format!("erin/upper: {} calls in 2.", report.calls)),
        "{out}"
    );
    assert!(out.contains("\nlatency: p50 "), "{out}");
    // Nothing to measure: said at once.
    for (target, why) in [
        (
            "erin/missing",
            "erin/missing cannot be called: function erin/missing does not exist; upload it first",
        ),
        (
            "erin/panic",
            "erin/panic fails, so there is nothing to measure: erin/panic failed: ",
        ),
    ] {
        let err = fwasm::bench::bench(
            &p.grpc,
            target,
            &options,
            &mut Vec::new(),
            false,
            &mut Vec::new(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().starts_with(why), "{err}");
    }
}

#[tokio::test]
async fn fwasm_cancel_ends_a_running_call_and_says_so() {
    let p = up().await;
    p.upload_testkit("erin", &["spin"]).await;
    let id = fwasm::client::invoke_async(&p.grpc, "erin/spin", vec![], &mut Vec::new())
        .await
        .unwrap();
    // Running (a queued call would end "cancelled before it started").
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while p.record(id).await.status() != fwasm_proto::pb::CallStatus::Running {
        assert!(std::time::Instant::now() < deadline, "call {id} never ran");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut out = Vec::new();
    fwasm::client::cancel(&p.grpc, id, &mut out).await.unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("Cancelled call {id}: erin/spin was cancelled\n")
    );
    let mut out = Vec::new();
    let status = fwasm::client::status(&p.grpc, id, false, &mut out)
        .await
        .unwrap();
    assert_eq!(status, fwasm_proto::pb::CallStatus::Failed);
    assert_eq!(out, b"FAILED: erin/spin was cancelled\n");
    let err = fwasm::client::cancel(&p.grpc, id, &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cancel failed: call {id} has already ended (cancelled); there is nothing to cancel"
        )
    );
}
