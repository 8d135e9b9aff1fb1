//! `fwasm bench USER/NAME`: calls a function over N connections for D seconds, each
//! connection sending its next call as soon as the last comes back, and reports the calls'
//! latencies (p50, p99, max) and how many calls a second came back; a progress line shows
//! the run as it goes.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use fwasm_proto::pb::CallStatus;

use crate::client::{CallInput, Server, connect, invoke_request};

/// How to load the function.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Connections, each with one call in flight at a time.
    pub connections: usize,
    pub duration: Duration,
    pub input: Vec<u8>,
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    /// Calls that succeeded.
    pub calls: u64,
    /// Calls that failed or were refused.
    pub failed: u64,
    /// The first failure's reason, if any failed.
    pub first_failure: Option<String>,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl BenchReport {
    pub fn calls_per_second(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }
}

/// What one connection measured.
#[derive(Default)]
struct Measured {
    /// Latencies of the calls that succeeded, in microseconds.
    latencies: Vec<u64>,
    failed: u64,
    first_failure: Option<String>,
}

/// Runs the load, writing progress to `progress` once a second (on one line rewritten in
/// place when `terminal`), then the report to `out`.
pub async fn bench(
    server: impl Into<Server>,
    target: &str,
    options: &BenchOptions,
    progress: &mut impl Write,
    terminal: bool,
    out: &mut impl Write,
) -> anyhow::Result<BenchReport> {
    if options.connections == 0 {
        bail!("-c must be at least 1");
    }
    let server = server.into();
    let request = invoke_request(target, CallInput::from(options.input.clone()))?;
    // One call first: a function that cannot run is an error now, not a run of failures.
    let mut client = connect(server.clone()).await?;
    let first = client
        .invoke(request.clone())
        .await
        .map_err(|status| anyhow::anyhow!("{target} cannot be called: {}", status.message()))?
        .into_inner();
    if first.status() != CallStatus::Success {
        bail!(
            "{target} fails, so there is nothing to measure: {}",
            first.error
        );
    }
    writeln!(
        progress,
        "bench {target}: {} connection{} for {} s",
        options.connections,
        if options.connections == 1 { "" } else { "s" },
        options.duration.as_secs_f64()
    )?;
    let done = Arc::new(AtomicU64::new(0));
    // Every connection made before the clock starts.
    let mut clients = vec![client];
    for _ in 1..options.connections {
        clients.push(connect(server.clone()).await?);
    }
    let started = Instant::now();
    let deadline = started + options.duration;
    let mut connections = Vec::new();
    for mut client in clients {
        let (request, done) = (request.clone(), done.clone());
        connections.push(tokio::spawn(async move {
            let mut measured = Measured::default();
            while Instant::now() < deadline {
                let sent = Instant::now();
                let failure = match client.invoke(request.clone()).await {
                    Ok(reply) if reply.get_ref().status() == CallStatus::Success => None,
                    Ok(reply) => Some(reply.into_inner().error),
                    Err(status) => Some(status.message().to_string()),
                };
                match failure {
                    None => measured.latencies.push(sent.elapsed().as_micros() as u64),
                    Some(why) => {
                        measured.failed += 1;
                        measured.first_failure.get_or_insert(why);
                        // A refusal comes back at once: not a reason to spin.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            measured
        }));
    }
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    while Instant::now() + Duration::from_millis(500) < deadline {
        ticks.tick().await;
        let seconds = started.elapsed().as_secs_f64();
        let calls = done.load(Ordering::Relaxed);
        let line = format!(
            "  {seconds:.0} s of {:.0}: {calls} calls, {:.0} calls/s",
            options.duration.as_secs_f64(),
            calls as f64 / seconds
        );
        match terminal {
            true => write!(progress, "\r{line}   ")?,
            false => writeln!(progress, "{line}")?,
        }
        progress.flush()?;
    }
    let mut all = Measured::default();
    for connection in connections {
        let measured = connection.await?;
        all.latencies.extend(measured.latencies);
        all.failed += measured.failed;
        all.first_failure = all.first_failure.or(measured.first_failure);
    }
    if terminal {
        writeln!(progress)?;
    }
    let elapsed = started.elapsed();
    all.latencies.sort_unstable();
    let at = |quantile: f64| -> Duration {
        // Nearest rank: the smallest latency at least `quantile` of the calls took no longer
        // than.
        let rank = (quantile * all.latencies.len() as f64).ceil() as usize;
        let index = rank.clamp(1, all.latencies.len().max(1)) - 1;
        Duration::from_micros(all.latencies.get(index).copied().unwrap_or(0))
    };
    let report = BenchReport {
        calls: all.latencies.len() as u64,
        failed: all.failed,
        first_failure: all.first_failure,
        elapsed,
        p50: at(0.50),
        p99: at(0.99),
        max: Duration::from_micros(all.latencies.last().copied().unwrap_or(0)),
    };
    writeln!(
        out,
        "{target}: {} calls in {:.1} s, {:.0} calls/s",
        report.calls,
        elapsed.as_secs_f64(),
        report.calls_per_second()
    )?;
    writeln!(
        out,
        "latency: p50 {}, p99 {}, max {}",
        shown(report.p50),
        shown(report.p99),
        shown(report.max)
    )?;
    if let Some(why) = &report.first_failure {
        writeln!(
            out,
            "failed: {} calls, the first because: {why}",
            report.failed
        )?;
        if report.calls == 0 {
            bail!("every call of {target} failed: {why}");
        }
    }
    Ok(report)
}

/// A latency as people read one: µs below a millisecond, ms below a second.
fn shown(latency: Duration) -> String {
    let micros = latency.as_micros();
    match micros {
        0..1_000 => format!("{micros} µs"),
        1_000..1_000_000 => format!("{:.2} ms", micros as f64 / 1e3),
        _ => format!("{:.2} s", latency.as_secs_f64()),
    }
}

#[cfg(test)]
mod tests {
    use super::shown;
    use std::time::Duration;

    #[test]
    fn latencies_are_shown_in_the_unit_that_reads_best() {
        assert_eq!(shown(Duration::from_micros(87)), "87 µs");
        assert_eq!(shown(Duration::from_micros(1234)), "1.23 ms");
        assert_eq!(shown(Duration::from_millis(2500)), "2.50 s");
    }
}
