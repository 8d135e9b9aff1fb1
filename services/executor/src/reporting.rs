//! Telling the scheduler how calls ended: off every caller's path, retried while the scheduler
//! cannot be reached, and counted, so a stopping executor can wait for the reports it owes.
//!
//! A call from outside is reported from its task on the async runtime. A chained call of this
//! executor ends on a worker thread; its report joins a batch, so the runtime is woken once
//! per batch rather than once per call.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fwasm_proto::api::SchedulerApi;
use fwasm_proto::pb::CallResult;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::local_calls::LocalCalls;

/// Retries of a report the scheduler did not take (about a minute and a half in all).
const REPORT_RETRIES: u32 = 20;

/// How long the reports of chained calls ended on workers gather before the next batch is
/// sent (tokio's timers count whole milliseconds).
const BATCH_PACE: Duration = Duration::from_millis(1);

/// Most reports sent in one batch.
const BATCH_MAX: usize = 1024;

/// Sends outcomes to the scheduler.
pub(crate) struct Reporter {
    inner: Arc<Sender>,
    /// Reports of chained calls of this executor, for the batch task.
    batched: mpsc::UnboundedSender<Report>,
}

/// What every report needs, shared with the batch task (which outlives the executor until it
/// has sent what was queued).
struct Sender {
    scheduler: Arc<dyn SchedulerApi>,
    local_calls: Arc<LocalCalls>,
    in_flight: InFlight,
    runtime: tokio::runtime::Handle,
}

/// One outcome on its way, counted until sent or given up, with its call's span.
struct Report {
    result: CallResult,
    counted: Counted,
    span: tracing::Span,
}

impl Reporter {
    /// A reporter whose batch task runs on `runtime`.
    pub(crate) fn new(
        scheduler: Arc<dyn SchedulerApi>,
        local_calls: Arc<LocalCalls>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        let inner = Arc::new(Sender {
            scheduler,
            local_calls,
            in_flight: InFlight::default(),
            runtime: runtime.clone(),
        });
        let (batched, queue) = mpsc::unbounded_channel();
        runtime.spawn(send_batches(inner.clone(), queue));
        Self { inner, batched }
    }

    /// Reports a call from outside (or any call not run here as a chained call).
    pub(crate) fn report(&self, result: CallResult) {
        let report = self.inner.counted(result);
        self.inner.send(report, false);
    }

    /// Reports a chained call of this executor, in the next batch; it is forgotten here once
    /// the scheduler has it.
    pub(crate) fn report_local(&self, result: CallResult) {
        let report = self.inner.counted(result);
        // The batch task stops only when the runtime does, and then nothing can be sent.
        if self.batched.send(report).is_err() {
            tracing::debug!("a report was dropped: the runtime has stopped");
        }
    }

    /// Waits, up to `patience`, until every report is sent or given up. Whether they all were.
    pub(crate) async fn all_sent(&self, patience: Duration) -> bool {
        self.inner.in_flight.none_left(patience).await
    }
}

impl Sender {
    fn counted(&self, result: CallResult) -> Report {
        Report {
            result,
            counted: self.in_flight.count(),
            span: tracing::Span::current(),
        }
    }

    /// Sends `report` in a task of its own, retried while the scheduler cannot be reached
    /// (restarting, say), so the outcome is not lost. `forget`: a chained call of this
    /// executor, forgotten here once the scheduler has it.
    fn send(&self, report: Report, forget: bool) {
        let scheduler = self.scheduler.clone();
        let local_calls = forget.then(|| self.local_calls.clone());
        let Report {
            result,
            counted,
            span,
        } = report;
        let send = async move {
            let _counted = counted;
            let mut pause = Duration::from_millis(100);
            for attempt in 0..=REPORT_RETRIES {
                match scheduler.call_finished(result.clone()).await {
                    Ok(()) => {
                        if let Some(local_calls) = local_calls {
                            local_calls.forget(result.id);
                        }
                        return;
                    }
                    Err(err) if attempt == 0 => {
                        tracing::warn!(call_id = result.id, error = %err, "could not report a call's outcome; retrying");
                    }
                    Err(_) => {}
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            tracing::error!(call_id = result.id, "gave up reporting a call's outcome");
        };
        self.runtime.spawn(send.instrument(span));
    }
}

/// Sends the queued reports a batch at a time, until the reporter is gone and the queue empty.
async fn send_batches(sender: Arc<Sender>, mut queue: mpsc::UnboundedReceiver<Report>) {
    let mut batch = Vec::new();
    while queue.recv_many(&mut batch, BATCH_MAX).await > 0 {
        for report in batch.drain(..) {
            sender.send(report, true);
        }
        tokio::time::sleep(BATCH_PACE).await;
    }
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
