//! One invocation is one trace: in the mesh, the gateway's, scheduler's and executor's spans
//! share a trace id, because each gRPC hop carries W3C trace context; a caller that sends its
//! own trace context gets them in its trace.
//!
//! A test binary of its own: `tracing` caches per call site whether anyone listens, so spans
//! recorded by a subscriber scoped to one test are unreliable beside other tests' threads.

#[allow(dead_code)]
#[path = "../e2e/support.rs"]
mod support;

#[allow(dead_code)]
#[path = "../e2e/recording_sidecar.rs"]
mod recording_sidecar;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt;

use support::{guest, mesh};

// One thread, so the subscriber set for this test sees every server task of the mesh.
#[tokio::test(flavor = "current_thread")]
async fn one_invocation_is_one_trace_across_gateway_scheduler_and_executor() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    fwasm_proto::trace::use_w3c_propagation();
    let only_fwasm =
        tracing_subscriber::filter::Targets::new().with_target("fwasm", tracing::Level::TRACE);
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
        .with(only_fwasm);
    let _subscriber = tracing::subscriber::set_default(subscriber);

    let p = mesh().await;
    p.upload("tom/upper", guest("testkit")).await;
    exporter.reset();
    assert_eq!(p.call("tom/upper", "traced").await, (200, "TRACED".into()));
    // A span ends when its last holder lets go: the executor's worker may still hold the
    // call's span for a moment after the reply is out. Wait for every span checked below (the
    // checks then say what is missing).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let spans = loop {
        provider.force_flush().unwrap();
        let spans = exporter.get_finished_spans().unwrap();
        let count = |name: &str| spans.iter().filter(|s| s.name == name).count();
        let all_there = ["gateway.invoke", "scheduler.lease", "executor.execute"]
            .iter()
            .all(|name| count(name) > 0)
            && count("grpc.serve") >= 2;
        if all_there || std::time::Instant::now() > deadline {
            break spans;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let trace_of = |name: &str| {
        spans
            .iter()
            .find(|span| span.name == name)
            .unwrap_or_else(|| {
                let names: Vec<_> = spans.iter().map(|s| s.name.to_string()).collect();
                panic!("no {name} span among {names:?}")
            })
            .span_context
            .trace_id()
    };
    let trace = trace_of("gateway.invoke");
    // The function's first call through this gateway took a lease of call ids (the calls
    // after it are placed from the lease, without asking the scheduler).
    assert_eq!(trace_of("scheduler.lease"), trace);
    assert_eq!(trace_of("executor.execute"), trace);
    let hops = spans
        .iter()
        .filter(|span| span.name == "grpc.serve" && span.span_context.trace_id() == trace)
        .count();
    assert!(hops >= 2, "the lease and the call each crossed a gRPC hop");

    // A caller that sends its own trace context (W3C `traceparent`, over HTTP or as gRPC
    // metadata) finds fwasm's spans in its trace.
    let caller_span = "00f067aa0ba902b7";
    let over_http = "4bf92f3577b34da6a3ce929d0e0e4736";
    let over_grpc = "0af7651916cd43dd8448eb211c80319c";
    let reply = p
        .http
        .post(format!("{}/f/tom/upper", p.invoke))
        .header("traceparent", format!("00-{over_http}-{caller_span}-01"))
        .body("joined")
        .send()
        .await
        .unwrap();
    let call = reply.headers()["x-fwasm-call-id"].to_str().unwrap().parse();
    assert_eq!(reply.text().await.unwrap(), "JOINED");
    // Its record names the trace, for the console and for scripts to look it up by.
    assert_eq!(p.record(call.unwrap()).await.trace_id, over_http);
    let mut request = tonic::Request::new(fwasm_proto::pb::InvokeRequest {
        user: "tom".into(),
        function: "upper".into(),
        input: b"joined".to_vec().into(),
        ..Default::default()
    });
    let traceparent = format!("00-{over_grpc}-{caller_span}-01");
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    let reply = p.grpc_client().await.invoke(request).await.unwrap();
    assert_eq!(&reply.into_inner().output[..], b"JOINED");
    for trace in [over_http, over_grpc] {
        let trace = opentelemetry::trace::TraceId::from_hex(trace).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            provider.force_flush().unwrap();
            let spans = exporter.get_finished_spans().unwrap();
            let joined = |name: &str| {
                spans
                    .iter()
                    .any(|s| s.name == name && s.span_context.trace_id() == trace)
            };
            if joined("gateway.invoke") && joined("executor.execute") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no gateway and executor spans in the caller's trace {trace}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    // The calls a tree chains are placed from a lease its executor takes (one request to the
    // scheduler for the tree, not one per chained call).
    p.upload("tom/nest", guest("testkit")).await;
    exporter.reset();
    assert_eq!(p.call("tom/nest", "4").await, (200, "4".into()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (placed, leased) = loop {
        provider.force_flush().unwrap();
        let spans = exporter.get_finished_spans().unwrap();
        let count = |name: &str| spans.iter().filter(|s| s.name == name).count();
        let counts = (count("scheduler.place"), count("scheduler.lease"));
        // And every span of the tree ends (a chained call's span ends on a wasm worker, and
        // must let go of its parents there too).
        let ended = count("gateway.invoke") == 1
            && count("executor.execute") == 1
            && count("executor.chained") == 3;
        if ended || std::time::Instant::now() > deadline {
            let names: Vec<_> = spans.iter().map(|s| s.name.to_string()).collect();
            assert!(ended, "not every span of the tree ended: {names:?}");
            break counts;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(placed, 0, "no chained call was placed one by one");
    assert_eq!(
        leased, 2,
        "a lease for the call from outside, and one for its tree"
    );

    // The call's span names its ABI, and a WASI command's stderr lines are events in it.
    p.upload("tom/cat", fwasm_integration::wasi_command("c"))
        .await;
    exporter.reset();
    assert_eq!(p.call("tom/cat", "hello").await, (200, "hello".into()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (abi, events) = loop {
        provider.force_flush().unwrap();
        let spans = exporter.get_finished_spans().unwrap();
        let executed = spans.iter().find(|s| s.name == "executor.execute");
        if let Some(span) = executed {
            let abi = span
                .attributes
                .iter()
                .find(|kv| kv.key.as_str() == "abi")
                .map(|kv| kv.value.to_string());
            let events: Vec<String> = span.events.iter().map(|e| e.name.to_string()).collect();
            break (abi, events);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no executor.execute span for tom/cat"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(abi.as_deref(), Some("WASI command"));
    assert!(
        events.iter().any(|e| e == "echoed 5 bytes"),
        "the command's stderr line is an event of its span: {events:?}"
    );
    p.stop().await;

    // A request to the sidecar is a span of the call's trace naming the sidecar and the
    // method, and carries the trace to the sidecar.
    let recorder = recording_sidecar::RecordingSidecar::default();
    let addr = recorder.start().await;
    let p = support::up_with(fwasm_executor::ExecutorConfig {
        sidecar: Some(fwasm_executor::SidecarConfig::new(
            addr.clone(),
            fwasm_executor::SidecarApi::Dapr,
        )),
        ..support::test_executor_config()
    })
    .await;
    p.upload("tom/sidecar", guest("testkit")).await;
    exporter.reset();
    assert_eq!(
        p.call("tom/sidecar", "get orders o-1").await,
        (200, "ok\n".into())
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (request, executed) = loop {
        provider.force_flush().unwrap();
        let spans = exporter.get_finished_spans().unwrap();
        let find = |name: &str| spans.iter().find(|s| s.name == name).cloned();
        if let (Some(request), Some(executed)) = (find("sidecar.request"), find("executor.execute"))
        {
            break (request, executed);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no sidecar.request and executor.execute spans"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let trace = executed.span_context.trace_id();
    assert_eq!(request.span_context.trace_id(), trace);
    let attribute = |key: &str| {
        request
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attribute("sidecar.addr"), Some(addr));
    assert_eq!(attribute("sidecar.api").as_deref(), Some("dapr"));
    assert_eq!(attribute("rpc.method").as_deref(), Some("GetState"));
    let recorded = recorder.recorded();
    let traceparent = recorded[0].traceparent.clone().unwrap_or_default();
    assert!(
        traceparent.contains(&trace.to_string()),
        "the sidecar got the call's trace: {traceparent:?}"
    );
    p.stop().await;

    // An outbound HTTP request is a span of the call's trace, and the called server gets
    // the trace: its parent is that span.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let recorded = seen.clone();
    let app = axum::Router::new().route(
        "/traced",
        axum::routing::get(move |headers: axum::http::HeaderMap| async move {
            let traceparent = headers
                .get("traceparent")
                .map_or("", |v| v.to_str().unwrap_or(""));
            recorded.lock().unwrap().push(traceparent.to_string());
            "seen"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let p = support::up_with(fwasm_executor::ExecutorConfig {
        allow_outbound: vec!["127.0.0.1:*".parse().unwrap()],
        ..support::test_executor_config()
    })
    .await;
    let uploaded = p
        .http
        .put(format!(
            "{}/f/tom/fetch?allow_host=127.0.0.1:{port}",
            p.upload
        ))
        .body(guest("testkit"))
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 200);
    exporter.reset();
    // This binary runs one test, so the process's metrics count only its own requests.
    let series = [
        r#"fwasm_outbound_requests_total{outcome="answered"}"#,
        r#"fwasm_outbound_bytes_total{direction="in"}"#,
        r#"fwasm_outbound_bytes_total{direction="out"}"#,
    ];
    let before = metrics(&p, &series).await;
    let url = format!("http://127.0.0.1:{port}/traced");
    assert_eq!(
        p.call("tom/fetch", format!("GET {url}")).await,
        (200, "200 - 4 seen".into())
    );
    let after = metrics(&p, &series).await;
    // One request; "seen" in; the URL and the header `x-test: testkit` out.
    let sent = (url.len() + "x-test".len() + "testkit".len()) as f64;
    assert_eq!(
        [
            after[0] - before[0],
            after[1] - before[1],
            after[2] - before[2]
        ],
        [1.0, 4.0, sent]
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (request, executed) = loop {
        provider.force_flush().unwrap();
        let spans = exporter.get_finished_spans().unwrap();
        let find = |name: &str| spans.iter().find(|s| s.name == name).cloned();
        if let (Some(request), Some(executed)) =
            (find("outbound.request"), find("executor.execute"))
        {
            break (request, executed);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no outbound.request and executor.execute spans"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let trace = executed.span_context.trace_id();
    assert_eq!(request.span_context.trace_id(), trace);
    let server = request
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "server")
        .map(|kv| kv.value.to_string());
    assert_eq!(server, Some(format!("127.0.0.1:{port}")));
    let traceparent = seen.lock().unwrap()[0].clone();
    assert_eq!(
        traceparent,
        format!("00-{trace}-{}-01", request.span_context.span_id()),
        "the server got the call's trace, under the request's span"
    );
    p.stop().await;
}

/// The values of the metric lines starting with each of `series` (0 for one not there yet).
async fn metrics(p: &support::Platform, series: &[&str]) -> Vec<f64> {
    let (status, body) = p.get(format!("{}/metrics", p.invoke)).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body.to_vec()).unwrap();
    series
        .iter()
        .map(|series| {
            text.lines()
                .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        })
        .collect()
}
