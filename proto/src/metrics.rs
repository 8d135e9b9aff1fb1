//! Prometheus metrics: every service records through the `metrics` facade, and one recorder
//! per process renders them for a scrape (`/metrics`).

use std::sync::OnceLock;
use std::time::Instant;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::ApiError;

/// Calls from outside, by `mode` (sync, async) and `outcome` (success, failed, refused).
pub const INVOCATIONS: &str = "fwasm_invocations_total";
/// Seconds from a sync invocation's arrival at the gateway to its result.
pub const INVOCATION_SECONDS: &str = "fwasm_invocation_seconds";
/// Calls an executor ran, by `outcome` (success, failed).
pub const CALLS: &str = "fwasm_calls_total";
/// Seconds a call ran on its executor.
pub const CALL_SECONDS: &str = "fwasm_call_seconds";
/// Calls whose module had to be fetched and compiled first.
pub const COLD_STARTS: &str = "fwasm_cold_starts_total";
/// Functions initialised and snapshotted (or whose initialisation failed), once per
/// executor and function.
pub const SNAPSHOTS: &str = "fwasm_snapshots_taken_total";
/// Functions' snapshots an executor restored from another's (kept in the state service)
/// instead of initialising, once per executor and function.
pub const SNAPSHOTS_FETCHED: &str = "fwasm_snapshots_fetched_total";
/// Snapshots (taken or fetched) kept as an image mapped copy-on-write under each call's
/// memory, rather than copied into it, once per executor and function.
pub const SNAPSHOTS_MAPPED: &str = "fwasm_snapshots_mapped_total";
/// Outbound HTTP requests functions sent (or tried to: `outcome` "failed" for those refused
/// or that got no response).
pub const OUTBOUND_REQUESTS: &str = "fwasm_outbound_requests_total";
/// Client TCP connections functions opened (or tried to: `outcome` "failed").
pub const OUTBOUND_CONNECTIONS: &str = "fwasm_outbound_connections_total";
/// Bytes functions sent (`direction` "out") and received ("in") over the network: outbound
/// HTTP's URLs, headers and bodies out and response bodies in, and what their sockets carried.
pub const OUTBOUND_BYTES: &str = "fwasm_outbound_bytes_total";
/// Calls an executor holds right now: running, queued for a worker, or parked.
pub const LIVE_CALLS: &str = "fwasm_executor_live_calls";
/// Calls waiting for a worker thread.
pub const QUEUE_DEPTH: &str = "fwasm_executor_queue_depth";
/// Calls parked in a host call (awaiting, state, files).
pub const PARKED_CALLS: &str = "fwasm_executor_parked_calls";
/// Executors the scheduler can place calls on.
pub const EXECUTORS: &str = "fwasm_scheduler_executors";
/// Background calls the scheduler holds until an executor has room.
pub const SCHEDULER_QUEUED: &str = "fwasm_scheduler_queued_calls";
/// Placement leases (blocks of call ids for one function's calls) the scheduler granted.
pub const LEASES: &str = "fwasm_scheduler_leases_total";
/// Calls placed from a lease (by a gateway, or an executor chaining), without asking the
/// scheduler.
pub const LEASED_CALLS: &str = "fwasm_leased_calls_total";

/// Events published, by `outcome` (accepted: every subscribed function's call recorded;
/// refused).
pub const EVENTS: &str = "fwasm_events_published_total";
/// Background calls events started, one per subscribed function.
pub const EVENT_CALLS: &str = "fwasm_event_calls_total";

/// gRPC requests a service answered, by `rpc` (the method) and `code` (OK or the gRPC
/// status code's name).
pub const GRPC_REQUESTS: &str = "fwasm_grpc_requests_total";
/// Seconds a service took to answer a gRPC request, by `rpc`.
pub const GRPC_SECONDS: &str = "fwasm_grpc_request_seconds";

/// Latency buckets, in seconds: 50 µs to 30 s.
const BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0,
];

/// The process's recorder, installed on first use; render it for a scrape.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may be installed already (a test harness, say): then that one
        // records, and this handle renders nothing.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// The metrics of one gRPC method, with the handles of its common case (answered OK) made on
/// first use, so recording skips the registry lookup.
pub struct RpcMeter {
    pub rpc: &'static str,
    handles: OnceLock<(metrics::Counter, metrics::Histogram)>,
}

impl RpcMeter {
    pub const fn new(rpc: &'static str) -> Self {
        RpcMeter {
            rpc,
            handles: OnceLock::new(),
        }
    }

    /// Records one answered request, started at `started`.
    pub fn record(&self, started: Instant, error: Option<&ApiError>) {
        let (ok, seconds) = self.handles.get_or_init(|| {
            handle();
            (
                metrics::counter!(GRPC_REQUESTS, "rpc" => self.rpc, "code" => "OK"),
                metrics::histogram!(GRPC_SECONDS, "rpc" => self.rpc),
            )
        });
        seconds.record(started.elapsed().as_secs_f64());
        match error {
            None => ok.increment(1),
            Some(err) => {
                let code = err.code.grpc_name();
                metrics::counter!(GRPC_REQUESTS, "rpc" => self.rpc, "code" => code).increment(1);
            }
        }
    }
}

/// Every metric's handle, made once: recording through a handle skips the registry lookup
/// the `metrics` macros do on each use.
pub struct Meters {
    pub sync_succeeded: metrics::Counter,
    pub sync_failed: metrics::Counter,
    pub sync_refused: metrics::Counter,
    pub async_accepted: metrics::Counter,
    pub async_refused: metrics::Counter,
    pub invocation_seconds: metrics::Histogram,
    pub calls_succeeded: metrics::Counter,
    pub calls_failed: metrics::Counter,
    pub calls_cancelled: metrics::Counter,
    pub call_seconds: metrics::Histogram,
    pub cold_starts: metrics::Counter,
    pub snapshots: metrics::Counter,
    pub snapshots_fetched: metrics::Counter,
    pub snapshots_mapped: metrics::Counter,
    pub live_calls: metrics::Gauge,
    pub queue_depth: metrics::Gauge,
    pub parked_calls: metrics::Gauge,
    pub executors: metrics::Gauge,
    pub scheduler_queued: metrics::Gauge,
    pub leases_granted: metrics::Counter,
    pub leased_calls: metrics::Counter,
    pub events_accepted: metrics::Counter,
    pub events_refused: metrics::Counter,
    pub event_calls: metrics::Counter,
    pub outbound_requests: metrics::Counter,
    pub outbound_failures: metrics::Counter,
    pub outbound_connections: metrics::Counter,
    pub outbound_connection_failures: metrics::Counter,
    pub outbound_bytes_in: metrics::Counter,
    pub outbound_bytes_out: metrics::Counter,
}

/// The process's metric handles (installing the recorder first).
pub fn meters() -> &'static Meters {
    static METERS: OnceLock<Meters> = OnceLock::new();
    METERS.get_or_init(|| {
        handle();
        Meters {
            sync_succeeded: metrics::counter!(INVOCATIONS, "mode" => "sync", "outcome" => "success"),
            sync_failed: metrics::counter!(INVOCATIONS, "mode" => "sync", "outcome" => "failed"),
            sync_refused: metrics::counter!(INVOCATIONS, "mode" => "sync", "outcome" => "refused"),
            async_accepted: metrics::counter!(INVOCATIONS, "mode" => "async", "outcome" => "accepted"),
            async_refused: metrics::counter!(INVOCATIONS, "mode" => "async", "outcome" => "refused"),
            invocation_seconds: metrics::histogram!(INVOCATION_SECONDS),
            calls_succeeded: metrics::counter!(CALLS, "outcome" => "success"),
            calls_failed: metrics::counter!(CALLS, "outcome" => "failed"),
            calls_cancelled: metrics::counter!(CALLS, "outcome" => "cancelled"),
            call_seconds: metrics::histogram!(CALL_SECONDS),
            cold_starts: metrics::counter!(COLD_STARTS),
            snapshots: metrics::counter!(SNAPSHOTS),
            snapshots_fetched: metrics::counter!(SNAPSHOTS_FETCHED),
            snapshots_mapped: metrics::counter!(SNAPSHOTS_MAPPED),
            live_calls: metrics::gauge!(LIVE_CALLS),
            queue_depth: metrics::gauge!(QUEUE_DEPTH),
            parked_calls: metrics::gauge!(PARKED_CALLS),
            executors: metrics::gauge!(EXECUTORS),
            scheduler_queued: metrics::gauge!(SCHEDULER_QUEUED),
            leases_granted: metrics::counter!(LEASES),
            leased_calls: metrics::counter!(LEASED_CALLS),
            events_accepted: metrics::counter!(EVENTS, "outcome" => "accepted"),
            events_refused: metrics::counter!(EVENTS, "outcome" => "refused"),
            event_calls: metrics::counter!(EVENT_CALLS),
            outbound_requests: metrics::counter!(OUTBOUND_REQUESTS, "outcome" => "answered"),
            outbound_failures: metrics::counter!(OUTBOUND_REQUESTS, "outcome" => "failed"),
            outbound_connections: metrics::counter!(OUTBOUND_CONNECTIONS, "outcome" => "connected"),
            outbound_connection_failures: metrics::counter!(OUTBOUND_CONNECTIONS, "outcome" => "failed"),
            outbound_bytes_in: metrics::counter!(OUTBOUND_BYTES, "direction" => "in"),
            outbound_bytes_out: metrics::counter!(OUTBOUND_BYTES, "direction" => "out"),
        }
    })
}
