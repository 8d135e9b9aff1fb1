//! Faasm's HTTP API: upload on one port, invoke (both styles) on another.

use crate::support::{Platform, each_platform, guest, up};

#[tokio::test]
async fn an_sdk_function_uploads_and_answers_both_invoke_styles() {
    for (mode, p) in each_platform().await {
        let wasm = guest("testkit");
        p.upload("alice/upper", wasm.clone()).await;

        assert_eq!(
            p.call("alice/upper", "hello fwasm").await,
            (200, "HELLO FWASM".into()),
            "{mode}"
        );

        let message = r#"{"user": "alice", "function": "upper", "input_data": "json style"}"#;
        assert_eq!(
            p.post_message(message).await,
            (200, "JSON STYLE\n".into()),
            "{mode}: Faasm replies end in a newline"
        );

        let (status, download) = p.get(format!("{}/f/alice/upper", p.upload)).await;
        assert_eq!(
            (status, download.to_vec()),
            (200, wasm),
            "{mode}: download returns the upload"
        );
        p.stop().await;
    }
}

#[tokio::test]
async fn output_bytes_come_back_exactly() {
    let p = crate::support::up().await;
    p.upload("alice/echo", guest("echo")).await;
    let input: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let response = p
        .http
        .post(format!("{}/f/alice/echo", p.invoke))
        .body(input.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().to_vec(), input);
}

#[tokio::test]
async fn the_demo_functions_are_ready_at_start() {
    let p = crate::support::up().await;
    assert_eq!(p.call("demo/echo", "hi").await, (200, "hi".into()));
    assert_eq!(
        p.call("demo/hello", "fwasm").await,
        (200, "Hello, fwasm!".into())
    );
    assert_eq!(
        p.call("demo/hello", "").await,
        (200, "Hello, world!".into())
    );
}

#[tokio::test]
async fn the_function_sees_the_whole_request_and_shapes_the_response() {
    for (mode, p) in each_platform().await {
        p.upload("alice/inspect", guest("testkit")).await;
        let response = p
            .http
            .post(format!("{}/f/alice/inspect/sub/path?a=1&b=two", p.invoke))
            .header("X-Test", "header value")
            .header("x-status", "201")
            .body("the body")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{mode}: status set by the function");
        assert_eq!(response.headers()["x-from-guest"], "yes");
        let call_id = response.headers()["x-fwasm-call-id"]
            .to_str()
            .unwrap()
            .to_string();
        let text = response.text().await.unwrap();
        let expected = format!(
            "call_id={call_id}\nuser=alice\nfunction=inspect\nmethod=POST\npath=/f/alice/inspect/sub/path\nquery=a=1&b=two\nx-test=header value\nbody=the body\n"
        );
        assert_eq!(text, expected, "{mode}");
    }
}

#[tokio::test]
async fn every_method_reaches_the_function_which_sees_it() {
    let p = up().await;
    p.upload("alice/inspect", guest("testkit")).await;
    for method in ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = p
            .http
            .request(method.clone(), format!("{}/f/alice/inspect/item", p.invoke))
            .body("sent")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{method}");
        let text = response.text().await.unwrap();
        assert!(
            text.contains(&format!("method={method}\n")),
            "{method}: {text}"
        );
    }
    // A PUT of a module on the invoke port is a call like any other (uploads go to the upload
    // port): the function sees the module's bytes as its body.
    let response = p
        .http
        .put(format!("{}/f/alice/inspect", p.invoke))
        .body(b"\0asm\x01\0\0\0".to_vec())
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert!(
        text.contains("method=PUT\n") && text.contains("body=\0asm"),
        "{text}"
    );
    p.stop().await;
}

#[tokio::test]
async fn ping_answers_pong_on_both_ports() {
    let p: Platform = crate::support::up().await;
    for base in [&p.upload, &p.invoke] {
        assert_eq!(p.get(format!("{base}/ping")).await, (200, "PONG".into()));
    }
}

#[tokio::test]
async fn a_re_upload_replaces_the_function_at_once() {
    let p = crate::support::up().await;
    p.upload("alice/f", guest("echo")).await;
    assert_eq!(p.call("alice/f", "abc").await, (200, "abc".into()));
    p.upload("alice/f", guest("hello")).await;
    assert_eq!(p.call("alice/f", "abc").await, (200, "Hello, abc!".into()));
}

#[tokio::test]
async fn the_invoke_port_serves_prometheus_metrics() {
    let p = crate::support::up().await;
    let scrape = || async {
        let (status, body) = p.get(format!("{}/metrics", p.invoke)).await;
        assert_eq!(status, 200);
        String::from_utf8(body.to_vec()).unwrap()
    };
    // The recorder is shared by every test in this process: counts only grow, so a check is
    // that ours were added.
    let value = |text: &str, metric: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(metric)?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    const SYNC_OK: &str = "fwasm_invocations_total{mode=\"sync\",outcome=\"success\"}";
    const COLD: &str = "fwasm_cold_starts_total";
    let before = scrape().await;
    p.upload("meg/upper", crate::support::guest("testkit"))
        .await;
    for _ in 0..3 {
        assert_eq!(p.call("meg/upper", "x").await.0, 200);
    }
    let text = scrape().await;
    assert!(
        value(&text, SYNC_OK) >= value(&before, SYNC_OK) + 3.0,
        "{text}"
    );
    // Uploads have the function prepared, so these calls need not be cold: the metric is
    // there, whatever it counts.
    assert!(text.contains(COLD), "{text}");
    for metric in [
        "fwasm_invocations_total{mode=\"sync\",outcome=\"success\"}",
        "fwasm_invocation_seconds_bucket",
        "fwasm_calls_total{outcome=\"success\"}",
        "fwasm_cold_starts_total",
        "fwasm_executor_live_calls",
        "fwasm_executor_queue_depth",
        "fwasm_scheduler_executors",
    ] {
        assert!(text.contains(metric), "{metric} missing from:\n{text}");
    }
    p.stop().await;
}
