//! Around every public gRPC service (`fwasm.v1.Functions` and the runtime APIs): metrics and
//! trace context for every method, recorded as the internal services' adapters record theirs
//! (`fwasm_grpc_requests_total` by `rpc`, the method's path, and `code`;
//! `fwasm_grpc_request_seconds` by `rpc`; a span continuing the caller's trace when it sent W3C
//! trace context), and a message naming the method for one the service does not serve (Dapr
//! has some ninety; tonic's own UNIMPLEMENTED names nothing).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::body::Body;
use tonic::codegen::{Service, http};
use tonic::metadata::MetadataMap;
use tonic::server::NamedService;
use tracing::Instrument;

/// A service whose requests are counted, timed and traced, and whose unserved methods say so
/// by name.
#[derive(Clone)]
pub(crate) struct Metered<S>(pub S);

impl<S> Service<http::Request<Body>> for Metered<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let rpc = request.uri().path().trim_start_matches('/').to_string();
        // Only a traced caller gets a span, so other calls pay for none.
        let span = request.headers().contains_key("traceparent").then(|| {
            let metadata = MetadataMap::from_headers(request.headers().clone());
            fwasm_proto::trace::incoming_span(&metadata, &rpc)
        });
        let started = Instant::now();
        let answer = self.0.call(request);
        let answer = async move {
            let response = answer.await?;
            let mut meter = Meter {
                rpc: Some(rpc),
                started,
            };
            // An error before any message comes in the headers ("trailers only"); otherwise
            // the status is in the trailers, after the body.
            if let Some(code) = response.headers().get("grpc-status") {
                let code = code.to_str().unwrap_or("?").to_string();
                let unserved = code == "12" && !response.headers().contains_key("grpc-message");
                let response = match unserved {
                    true => {
                        let rpc = meter.rpc.as_deref().unwrap_or_default();
                        let message = format!("{rpc} is not served by fwasm");
                        tonic::Status::unimplemented(message).into_http()
                    }
                    false => response,
                };
                meter.record(&code);
                return Ok(response);
            }
            Ok(response.map(|body| Body::new(MeteredBody { body, meter })))
        };
        match span {
            Some(span) => Box::pin(answer.instrument(span)),
            None => Box::pin(answer),
        }
    }
}

impl<S: NamedService> NamedService for Metered<S> {
    const NAME: &'static str = S::NAME;
}

/// Records one request once its status is known.
struct Meter {
    /// Taken when recorded, so a request counts once.
    rpc: Option<String>,
    started: Instant,
}

impl Meter {
    /// Records the request with its gRPC status code (the number, as it travels).
    fn record(&mut self, code: &str) {
        let Some(mut rpc) = self.rpc.take() else {
            return;
        };
        let code = code_name(code);
        if code == "UNIMPLEMENTED" {
            // Any name under a service's path reaches it: counted as one, so callers cannot
            // grow the metrics without bound.
            let service = rpc.split('/').next().unwrap_or_default();
            rpc = format!("{service}/unimplemented");
        }
        let seconds = self.started.elapsed().as_secs_f64();
        let metrics = fwasm_proto::metrics::GRPC_REQUESTS;
        metrics::counter!(metrics, "rpc" => rpc.clone(), "code" => code).increment(1);
        let seconds_metric = fwasm_proto::metrics::GRPC_SECONDS;
        metrics::histogram!(seconds_metric, "rpc" => rpc).record(seconds);
    }
}

impl Drop for Meter {
    /// A response dropped before its status (the caller went away) counts as cancelled.
    fn drop(&mut self) {
        self.record("1");
    }
}

/// A gRPC status code's name, as the internal services' metrics label it.
fn code_name(code: &str) -> &'static str {
    let code = code.parse::<i32>().map(tonic::Code::from_i32);
    match code {
        Ok(tonic::Code::Ok) => "OK",
        Ok(tonic::Code::Cancelled) => "CANCELLED",
        Ok(tonic::Code::InvalidArgument) => "INVALID_ARGUMENT",
        Ok(tonic::Code::DeadlineExceeded) => "DEADLINE_EXCEEDED",
        Ok(tonic::Code::NotFound) => "NOT_FOUND",
        Ok(tonic::Code::AlreadyExists) => "ALREADY_EXISTS",
        Ok(tonic::Code::PermissionDenied) => "PERMISSION_DENIED",
        Ok(tonic::Code::ResourceExhausted) => "RESOURCE_EXHAUSTED",
        Ok(tonic::Code::FailedPrecondition) => "FAILED_PRECONDITION",
        Ok(tonic::Code::Aborted) => "ABORTED",
        Ok(tonic::Code::OutOfRange) => "OUT_OF_RANGE",
        Ok(tonic::Code::Unimplemented) => "UNIMPLEMENTED",
        Ok(tonic::Code::Internal) => "INTERNAL",
        Ok(tonic::Code::Unavailable) => "UNAVAILABLE",
        Ok(tonic::Code::DataLoss) => "DATA_LOSS",
        Ok(tonic::Code::Unauthenticated) => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

/// A response body that records its request when its trailers (with the status) pass.
struct MeteredBody {
    body: Body,
    meter: Meter,
}

impl HttpBody for MeteredBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(|t| t.get("grpc-status")) {
                    let code = code.to_str().unwrap_or("?").to_string();
                    self.meter.record(&code);
                }
            }
            Poll::Ready(Some(Err(status))) => {
                let code = (status.code() as i32).to_string();
                self.meter.record(&code);
            }
            Poll::Ready(None) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
