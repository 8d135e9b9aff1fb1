//! Telling the scheduler how calls ended: off every caller's path, in batches (one message,
//! and one wake-up of the runtime, for every call that ended since the last), retried while
//! the scheduler cannot be reached, and counted, so a stopping executor can wait for the
//! reports it owes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use fwasm_proto::api::SchedulerApi;
use fwasm_proto::pb::{CallResult, CallsFinishedRequest};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::local_calls::LocalCalls;

/// Retries of a batch the scheduler did not take (about a minute and a half in all).
const REPORT_RETRIES: u32 = 20;

/// How long reports gather before the next batch is sent (tokio's timers count whole
/// milliseconds).
const BATCH_PACE: Duration = Duration::from_millis(1);

/// Most reports sent in one batch, and most bytes of their outputs (more go in the next).
const BATCH_MAX: usize = 1024;
const BATCH_BYTES: usize = 4 << 20;

/// Sends outcomes to the scheduler.
pub(crate) struct Reporter {
    /// Reports for the batch task.
    batched: mpsc::UnboundedSender<Report>,
    in_flight: InFlight,
}

/// What sending a batch needs, for the batch task (which outlives the executor until it has
/// sent what was queued). Held weakly: the batch task must not keep the scheduler (in `fwasm
/// up`, with the store under it) alive once the executor is gone; a stopping executor waits
/// for its reports first ([`Reporter::all_sent`]). A batch being sent holds it until sent or
/// given up.
struct Sender {
    scheduler: Weak<dyn SchedulerApi>,
    local_calls: Weak<LocalCalls>,
}

/// One outcome on its way, counted until sent or given up.
struct Report {
    result: CallResult,
    /// A chained call of this executor, forgotten here once the scheduler has it.
    forget: bool,
    _counted: Counted,
}

impl Reporter {
    /// A reporter whose batch task runs on `runtime`.
    pub(crate) fn new(
        scheduler: Arc<dyn SchedulerApi>,
        local_calls: Arc<LocalCalls>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        let sender = Sender {
            scheduler: Arc::downgrade(&scheduler),
            local_calls: Arc::downgrade(&local_calls),
        };
        let (batched, queue) = mpsc::unbounded_channel();
        runtime.spawn(send_batches(sender, queue));
        Self {
            batched,
            in_flight: InFlight::default(),
        }
    }

    /// Reports a call from outside (or any call not run here as a chained call).
    pub(crate) fn report(&self, result: CallResult) {
        self.queue(result, false);
    }

    /// Reports a chained call of this executor; it is forgotten here once the scheduler has it.
    pub(crate) fn report_local(&self, result: CallResult) {
        self.queue(result, true);
    }

    fn queue(&self, result: CallResult, forget: bool) {
        let report = Report {
            result,
            forget,
            _counted: self.in_flight.count(),
        };
        // The batch task stops only when the runtime does, and then nothing can be sent.
        if self.batched.send(report).is_err() {
            tracing::debug!("a report was dropped: the runtime has stopped");
        }
    }

    /// Waits, up to `patience`, until every report is sent or given up. Whether they all were.
    pub(crate) async fn all_sent(&self, patience: Duration) -> bool {
        self.in_flight.none_left(patience).await
    }
}

impl Sender {
    /// Sends `batch` in a task of its own, retried while the scheduler cannot be reached
    /// (restarting, say), so no outcome is lost.
    fn send(&self, batch: Vec<Report>) {
        let (Some(scheduler), local_calls) = (self.scheduler.upgrade(), self.local_calls.clone())
        else {
            tracing::debug!(
                calls = batch.len(),
                "reports dropped: the scheduler is gone"
            );
            return;
        };
        let span = tracing::debug_span!(parent: None, "executor.report", calls = batch.len());
        let send = async move {
            let request = CallsFinishedRequest {
                results: batch.iter().map(|report| report.result.clone()).collect(),
            };
            let mut pause = Duration::from_millis(100);
            for attempt in 0..=REPORT_RETRIES {
                match scheduler.calls_finished(request.clone()).await {
                    Ok(()) => {
                        let local_calls = local_calls.upgrade();
                        for report in batch.iter().filter(|report| report.forget) {
                            if let Some(local_calls) = &local_calls {
                                local_calls.forget(report.result.id);
                            }
                        }
                        return;
                    }
                    Err(err) if attempt == 0 => {
                        tracing::warn!(calls = batch.len(), error = %err, "could not report calls' outcomes; retrying");
                    }
                    Err(_) => {}
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            let ids: Vec<u64> = batch.iter().map(|report| report.result.id).collect();
            tracing::error!(?ids, "gave up reporting calls' outcomes");
        };
        tokio::spawn(send.instrument(span));
    }
}

/// Sends the queued reports a batch at a time, until the reporter is gone and the queue empty.
async fn send_batches(sender: Sender, mut queue: mpsc::UnboundedReceiver<Report>) {
    let mut batch = Vec::new();
    while queue.recv_many(&mut batch, BATCH_MAX).await > 0 {
        let mut reports = std::mem::take(&mut batch);
        while !reports.is_empty() {
            let rest = reports.split_off(within_bytes(&reports));
            sender.send(reports);
            reports = rest;
        }
        tokio::time::sleep(BATCH_PACE).await;
    }
}

/// How many of `reports`, one at least, fit in one batch's bytes.
fn within_bytes(reports: &[Report]) -> usize {
    let mut bytes = 0;
    let fitting = reports.iter().take_while(|report| {
        let result = &report.result;
        bytes += result.output.len() + result.stdout.len() + result.error.len() + result.logs.len();
        bytes <= BATCH_BYTES
    });
    fitting.count().max(1)
}

/// Reports not yet sent, and a wake-up for whoever waits for there to be none.
#[derive(Default)]
struct InFlight(Arc<InFlightCount>);

#[derive(Default)]
struct InFlightCount {
    count: AtomicUsize,
    none_left: tokio::sync::Notify,
}

impl InFlight {
    fn count(&self) -> Counted {
        self.0.count.fetch_add(1, Ordering::AcqRel);
        Counted(self.0.clone())
    }

    async fn none_left(&self, patience: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let none_left = self.0.none_left.notified();
            tokio::pin!(none_left);
            none_left.as_mut().enable();
            if self.0.count.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, none_left).await.is_err() {
                return false;
            }
        }
    }
}

/// One report in flight, counted until dropped.
struct Counted(Arc<InFlightCount>);

impl Drop for Counted {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.none_left.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_holds_what_fits_in_its_bytes_and_one_report_at_least() {
        let in_flight = InFlight::default();
        let report = |mib: usize| Report {
            result: CallResult {
                output: vec![0; mib << 20].into(),
                ..CallResult::default()
            },
            forget: false,
            _counted: in_flight.count(),
        };
        assert_eq!(
            within_bytes(&[report(1), report(1), report(1), report(2)]),
            3
        );
        assert_eq!(within_bytes(&[report(5), report(1)]), 1);
        assert_eq!(within_bytes(&[report(0), report(0)]), 2);
    }
}
