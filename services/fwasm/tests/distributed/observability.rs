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

/// The value of the sample `name_and_labels` in a scrape (0 when absent).
fn sample(scrape: &str, name_and_labels: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .map_or(0.0, |value| value.parse().unwrap())
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
    let [state, scheduler, executor] = [free_addr(), free_addr(), free_addr()];
    let [state_metrics, scheduler_metrics, executor_metrics] =
        [free_addr(), free_addr(), free_addr()];
    let ports = GatewayPorts::free();
    let data = dir.path().join("data");
    let _processes = [
        spawn_with_env(
            &[
                "state",
                "--listen",
                &state,
                "--data-dir",
                data.to_str().unwrap(),
                "--metrics",
                &state_metrics,
            ],
            &env,
        ),
        spawn_with_env(
            &[
                "scheduler",
                "--listen",
                &scheduler,
                "--state",
                &state,
                "--metrics",
                &scheduler_metrics,
            ],
            &env,
        ),
        spawn_with_env(
            &[
                "executor",
                "--listen",
                &executor,
                "--state",
                &state,
                "--scheduler",
                &scheduler,
                "--metrics",
                &executor_metrics,
            ],
            &env,
        ),
        spawn_with_env(
            &[
                "gateway",
                "--state",
                &state,
                "--scheduler",
                &scheduler,
                "--invoke-port",
                &ports.invoke.to_string(),
                "--upload-port",
                &ports.upload.to_string(),
                "--grpc-port",
                &ports.grpc.to_string(),
            ],
            &env,
        ),
    ];
    let http = reqwest::Client::new();
    executors_joined(&http, &scheduler_metrics, 1).await;
    let echo = include_bytes!("../../demo/echo.wasm").to_vec();
    upload(&http, ports, "obs/echo", echo).await;
    let url = format!("http://127.0.0.1:{}/f/obs/echo", ports.invoke);
    let reply = http.post(&url).body("traced").send().await.unwrap();
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
    let gateway_metrics = format!("127.0.0.1:{}", ports.invoke);
    let scrapes = [
        (
            &gateway_metrics,
            r#"fwasm_invocations_total{mode="sync",outcome="success"}"#,
        ),
        (&scheduler_metrics, "fwasm_scheduler_executors"),
        (&executor_metrics, r#"fwasm_calls_total{outcome="success"}"#),
        (&executor_metrics, "fwasm_cold_starts_total"),
        (
            &state_metrics,
            r#"fwasm_grpc_requests_total{rpc="get_module",code="OK"}"#,
        ),
        (
            &state_metrics,
            r#"fwasm_grpc_requests_total{rpc="put_function",code="OK"}"#,
        ),
        (
            &scheduler_metrics,
            r#"fwasm_grpc_requests_total{rpc="heartbeat",code="OK"}"#,
        ),
        (
            &executor_metrics,
            r#"fwasm_grpc_request_seconds_count{rpc="execute"}"#,
        ),
    ];
    for (addr, metric) in scrapes {
        let text = scrape(&http, addr).await.unwrap();
        let value = sample(&text, metric);
        assert!(value >= 1.0, "{addr}: {metric} is {value} in\n{text}");
    }

    // Health and reflection on every gRPC server.
    let grpc = format!("127.0.0.1:{}", ports.grpc);
    for (addr, service) in [
        (&state, "fwasm.v1.State"),
        (&scheduler, "fwasm.v1.Scheduler"),
        (&executor, "fwasm.v1.Executor"),
        (&grpc, "fwasm.v1.Functions"),
    ] {
        let mut health = HealthClient::new(channel(addr).await);
        let reply = health.check(HealthCheckRequest::default()).await.unwrap();
        assert_eq!(
            reply.into_inner().status(),
            ServingStatus::Serving,
            "{addr}"
        );
        let listed = reflected_services(addr).await;
        for expected in [service, "grpc.health.v1.Health"] {
            assert!(listed.iter().any(|s| s == expected), "{addr}: {listed:?}");
        }
    }
}
