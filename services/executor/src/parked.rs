//! Calls parked in a host call: out of the worker pool, counted, until something resumes them
//! (an async op on the runtime, or a chained call of this executor that ends).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_channel::Sender;

use crate::call::CallTask;
use crate::host::park::OpResult;

/// How many calls are parked right now.
#[derive(Default)]
pub(crate) struct ParkedCount(Arc<AtomicUsize>);

impl ParkedCount {
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }

    fn count(&self) -> Counted {
        let parked = self.0.fetch_add(1, Ordering::AcqRel) + 1;
        fwasm_proto::metrics::meters()
            .parked_calls
            .set(parked as f64);
        Counted(self.0.clone())
    }
}

/// One parked call counted until dropped.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        let parked = self.0.fetch_sub(1, Ordering::AcqRel) - 1;
        fwasm_proto::metrics::meters()
            .parked_calls
            .set(parked as f64);
    }
}

/// A call parked until its op's result comes, with the queue it goes back to.
pub(crate) struct ParkedCall {
    task: CallTask,
    requeue: Sender<CallTask>,
    _counted: Counted,
}

impl ParkedCall {
    pub(crate) fn new(task: CallTask, requeue: Sender<CallTask>, count: &ParkedCount) -> Self {
        Self {
            task,
            requeue,
            _counted: count.count(),
        }
    }

    pub(crate) fn task(&self) -> &CallTask {
        &self.task
    }

    /// Hands the call its op's result and queues it to run again: next on this worker if this
    /// is one, else on whichever worker is free.
    pub(crate) fn resume(self, result: OpResult) {
        let requeue = self.requeue.clone();
        crate::pool::queue(&requeue, self.complete(result));
    }

    /// Hands the call its op's result, for the worker at hand to run it on.
    pub(crate) fn complete(self, result: OpResult) -> CallTask {
        let mut task = self.task;
        task.complete_op(result);
        task
    }

    /// Queues a cancelled call to run again without its op's result: it ends at once.
    pub(crate) fn resume_cancelled(self) {
        let requeue = self.requeue.clone();
        crate::pool::queue(&requeue, self.cancelled());
    }

    /// A cancelled call without its op's result, for the worker at hand to end.
    pub(crate) fn cancelled(self) -> CallTask {
        self.task
    }
}
