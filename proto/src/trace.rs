//! One trace per invocation across every service: spans are OpenTelemetry spans (through
//! `tracing-opentelemetry`), their context crosses each gRPC hop as W3C trace context in the
//! request metadata (`traceparent`), and a process exports its spans over OTLP when told where.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tonic::metadata::{KeyRef, MetadataKey, MetadataMap, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

struct MetadataExtractor<'a>(&'a MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|key| match key {
                KeyRef::Ascii(key) => Some(key.as_str()),
                KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

/// A request that carries the current span's trace context to the service it goes to.
pub fn outgoing<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut MetadataInjector(request.metadata_mut()))
    });
    request
}

/// The current span's W3C trace context as `traceparent` and `tracestate` (absent when there
/// is no trace), for messages that carry it themselves.
pub fn current_context() -> std::collections::HashMap<String, String> {
    let mut fields = std::collections::HashMap::new();
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut fields)
    });
    fields
}

/// The current span's trace id (32 hex digits), or "" when it is not part of a trace (no
/// span exporter: see [`init`]).
pub fn current_trace_id() -> String {
    use opentelemetry::trace::TraceContextExt as _;
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    match span_context.is_valid() {
        true => span_context.trace_id().to_string(),
        false => String::new(),
    }
}

/// The span a served request runs in: a child of the caller's span when it sent its context.
pub fn incoming_span(metadata: &MetadataMap, rpc: &str) -> tracing::Span {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&MetadataExtractor(metadata))
    });
    let span = tracing::info_span!("grpc.serve", rpc);
    // Fails only when no OpenTelemetry layer is installed; the span then stands alone.
    let _ = span.set_parent(parent);
    span
}

/// A caller's W3C trace context, given as its two header values.
struct CallerContext<'a> {
    traceparent: &'a str,
    tracestate: Option<&'a str>,
}

impl Extractor for CallerContext<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => Some(self.traceparent),
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// The span an HTTP call from outside runs in when its caller sent W3C trace context (a
/// `traceparent` header): a child of the caller's span, so fwasm's spans join the caller's
/// trace (gRPC callers get the same from [`incoming_span`]). None when there is none, so other calls pay for no extra span.
pub fn caller_span(traceparent: Option<&str>, tracestate: Option<&str>) -> Option<tracing::Span> {
    let traceparent = traceparent?;
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&CallerContext {
            traceparent,
            tracestate,
        })
    });
    let span = tracing::info_span!("caller");
    // Fails only when no OpenTelemetry layer is installed; the span then stands alone.
    let _ = span.set_parent(parent);
    Some(span)
}

/// Runs `work` inside `span` when there is one.
pub async fn within<F: std::future::Future>(span: Option<tracing::Span>, work: F) -> F::Output {
    match span {
        Some(span) => tracing::Instrument::instrument(work, span).await,
        None => work.await,
    }
}

/// Makes this process read and write W3C trace context. Idempotent.
pub fn use_w3c_propagation() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
}

/// The process's tracing, kept alive until it ends; dropping it flushes exported spans.
pub struct Tracing {
    provider: SdkTracerProvider,
}

impl Drop for Tracing {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot set up trace export to {endpoint}: {reason}")]
pub struct TraceError {
    endpoint: String,
    reason: String,
}

/// Log lines on stderr, coloured only for a terminal (a log file or collector gets plain text).
fn log_lines<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    use std::io::IsTerminal;
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
}

/// Installs this process's tracing: log lines on stderr (filtered by `RUST_LOG`, `info` by
/// default), W3C propagation, and, when `otlp_endpoint` is set (e.g. `http://collector:4317`),
/// span export over OTLP/gRPC with `service` as the service name. Call once, inside a tokio
/// runtime.
pub fn init(service: &str, otlp_endpoint: Option<&str>) -> Result<Tracing, TraceError> {
    use_w3c_propagation();
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service.to_string())
        .build();
    let mut provider = SdkTracerProvider::builder().with_resource(resource);
    if let Some(endpoint) = otlp_endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| TraceError {
                endpoint: endpoint.to_string(),
                reason: e.to_string(),
            })?;
        provider = provider.with_batch_exporter(exporter);
    }
    let provider = provider.build();
    let log_filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match otlp_endpoint {
        // `RUST_LOG` picks the log lines only: exported spans keep their own level, so a
        // quiet log (`warn`) still exports every call's trace.
        Some(_) => {
            let spans = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("fwasm"))
                .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
            tracing_subscriber::registry()
                .with(log_lines().with_filter(log_filter))
                .with(spans)
                .init();
        }
        // No exporter, nobody sees OpenTelemetry spans (a few microseconds each): the log
        // filter then applies to everything, and spans it rules out cost nothing.
        None => tracing_subscriber::registry()
            .with(log_filter)
            .with(log_lines())
            .init(),
    }
    Ok(Tracing { provider })
}
