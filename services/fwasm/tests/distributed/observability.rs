//! What operators see of a mesh of processes: one invocation's spans from every service,
//! exported over OTLP to a collector (here a real OTLP/gRPC server in the test) under one
//! trace id; Prometheus metrics from every process; health and reflection on every gRPC
//! server.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use fwasm_proto::pb::{CallStatus, InvokeRequest, WaitCallRequest};

use crate::support::*;

/// An OTLP/gRPC trace collector that keeps, per trace id, the services that sent spans.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<HashMap<Vec<u8>, BTreeSet<String>>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut traces = self.0.lock().unwrap();
        for batch in request.into_inner().resource_spans {
            let service = batch
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|attribute| attribute.key == "service.name")
                .and_then(|attribute| attribute.value.as_ref()?.value.as_ref())
                .map(|value| match value {
                    Value::StringValue(name) => name.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for span in batch.scope_spans.into_iter().flat_map(|s| s.spans) {
                traces
                    .entry(span.trace_id)
                    .or_default()
                    .insert(service.clone());
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    /// Serves on a free loopback port; returns its address.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(self.clone()))
            .serve_with_incoming(incoming);
        tokio::spawn(server);
        format!("http://{addr}")
    }

    /// Whether one trace has spans from every service in `services`.
    fn has_trace_across(&self, services: &[&str]) -> bool {
        let traces = self.0.lock().unwrap();
        traces
            .values()
            .any(|seen| services.iter().all(|s| seen.contains(*s)))
    }
}

/// The services a gRPC server lists through reflection.
async fn reflected_services(addr: &str) -> Vec<String> {
    let mut reflection = ServerReflectionClient::new(channel(addr).await);
    let list = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = reflection
        .server_reflection_info(tokio_stream::iter([list]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(services)) = reply.message_response else {
        panic!("{addr}: not a service list: {reply:?}");
    };
    services.service.into_iter().map(|s| s.name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_process_exports_its_spans_of_one_trace_serves_metrics_health_and_reflection() {
    let collector = Collector::default();
    let otlp = collector.start().await;
    let dir = tempfile::tempdir().unwrap();
    // Trace export is switched on by the config file every process reads.
    let config = dir.path().join("fwasm.toml");
    std::fs::write(&config, format!("otlp_endpoint = \"{otlp}\"\n")).unwrap();
    let env = [
        ("FWASM_CONFIG", config.to_str().unwrap()),
        // Export every 100 ms rather than every 5 s.
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let mesh = Mesh::start(MeshOptions {
        executors: 1,
        env: &env,
        ..MeshOptions::default()
    })
    .await;
    let http = &mesh.http;
    let echo = include_bytes!("../../demo/echo.wasm").to_vec();
    mesh.upload("obs/echo", echo).await;
    let reply = http
        .post(mesh.invoke_url("obs/echo"))
        .body("traced")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    assert_eq!(reply.text().await.unwrap(), "traced");

    // One trace: the gateway took the call, the scheduler placed it, the executor ran it
    // (fetching the module from the state service on this cold start).
    let services = [
        "fwasm-gateway",
        "fwasm-scheduler",
        "fwasm-executor",
        "fwasm-state",
    ];
    eventually("one trace with spans from every service", async || {
        collector.has_trace_across(&services)
    })
    .await;

    // Metrics from every process.
    let gateway_metrics = &format!("127.0.0.1:{}", mesh.ports.invoke);
    let executor_metrics = &mesh.executors[0].metrics;
    let (state_metrics, scheduler_metrics) = (&mesh.state_metrics, &mesh.scheduler_metrics);
    let scrapes = [
        (
            gateway_metrics,
            r#"fwasm_invocations_total{mode="sync",outcome="success"}"#,
        ),
        (scheduler_metrics, "fwasm_scheduler_executors"),
        (executor_metrics, r#"fwasm_calls_total{outcome="success"}"#),
        // Uploads have the executor prepare the function (see snapshots.rs for no cold start).
        (
            executor_metrics,
            r#"fwasm_grpc_requests_total{rpc="prepare",code="OK"}"#,
        ),
        (
            state_metrics,
            r#"fwasm_grpc_requests_total{rpc="get_module",code="OK"}"#,
        ),
        (
            state_metrics,
            r#"fwasm_grpc_requests_total{rpc="put_function",code="OK"}"#,
        ),
        (
            scheduler_metrics,
            r#"fwasm_grpc_requests_total{rpc="heartbeat",code="OK"}"#,
        ),
        (
            executor_metrics,
            r#"fwasm_grpc_request_seconds_count{rpc="execute"}"#,
        ),
    ];
    for (addr, metric) in scrapes {
        // Each is counted by the time the calls above answered, but for the executor's
        // preparation, which runs beside the upload.
        eventually(&format!("{addr}: {metric} at least 1"), async || {
            let text = scrape(http, addr).await.unwrap_or_default();
            sample(&text, metric) >= 1.0
        })
        .await;
    }

    // Health and reflection on every gRPC server.
    let grpc = format!("127.0.0.1:{}", mesh.ports.grpc);
    let public = [
        "fwasm.v1.Functions",
        "spec.proto.runtime.v1.Runtime",
        "dapr.proto.runtime.v1.Dapr",
    ];
    for (addr, services) in [
        (&mesh.state, &["fwasm.v1.State"][..]),
        (&mesh.scheduler, &["fwasm.v1.Scheduler"]),
        (&mesh.executors[0].addr, &["fwasm.v1.Executor"]),
        (&grpc, &public),
    ] {
        let mut health = HealthClient::new(channel(addr).await);
        // The server as a whole, and each of its services by name.
        for service in services.iter().chain(&[""]) {
            let request = HealthCheckRequest {
                service: service.to_string(),
            };
            let reply = health.check(request).await.unwrap();
            assert_eq!(
                reply.into_inner().status(),
                ServingStatus::Serving,
                "{addr} {service}"
            );
        }
        let listed = reflected_services(addr).await;
        for expected in services.iter().chain(&["grpc.health.v1.Health"]) {
            assert!(listed.iter().any(|s| s == expected), "{addr}: {listed:?}");
        }
        assert_eq!(
            listed.len(),
            services.len() + 1,
            "{addr}: only its own: {listed:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_calls_wait_in_the_scheduler_while_executors_are_full_and_the_queue_depth_says_so()
 {
    let mesh = Mesh::start(MeshOptions {
        executors: 1,
        executor_flags: &["--max-calls", "1"],
        ..MeshOptions::default()
    })
    .await;
    // Each call runs 3 s: two surely wait while the first runs, however slow the test.
    mesh.upload("queue/spin", spin(3)).await;
    let mut client = mesh.client().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let invoke = InvokeRequest {
            user: "queue".into(),
            function: "spin".into(),
            ..InvokeRequest::default()
        };
        ids.push(
            client
                .invoke_async(invoke)
                .await
                .unwrap()
                .into_inner()
                .call_id,
        );
    }
    let depth = async || {
        let text = scrape(&mesh.http, &mesh.scheduler_metrics).await.unwrap();
        sample(&text, "fwasm_scheduler_queued_calls")
    };
    // One runs on the executor, which admits one call; two wait in the scheduler.
    eventually("two calls queued", async || depth().await == 2.0).await;
    for id in ids {
        let wait = WaitCallRequest {
            id,
            timeout_ms: 30_000,
            ..WaitCallRequest::default()
        };
        let record = client.wait_call(wait).await.unwrap().into_inner();
        assert_eq!(record.status(), CallStatus::Success, "{record:?}");
    }
    assert_eq!(depth().await, 0.0);
}
