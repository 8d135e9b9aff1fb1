//! A fixed set of OS threads that run wasm, so guest code never blocks the async runtime.
//!
//! Calls run in fuel slices: a call that uses up its slice goes to the back of the queue, which
//! keeps a long call from starving short ones and lets a wall-clock timeout stop a loop. A call
//! parked in a host call (awaiting another call) leaves the pool entirely until its op is done,
//! so waiting calls hold no thread.
//!
//! A call queued by what a worker runs (a chained call it starts, a caller whose awaited call
//! it ends) waits in that worker's slot for its next turn, so handing a call on wakes no other
//! thread; the one it displaces goes to the shared queue, where any worker takes it. A call
//! whose host op completed at once may run on before the slot's call only if the slot was
//! empty when its slice began (a chain then an await: the await parks it and the child runs),
//! so a call polling its child cannot keep the child from running.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, select, unbounded};

use crate::call::{CallTask, Slice};
use crate::host::park::HostOp;

/// Takes a call parked in a host call; it queues the task again with `requeue` once the op
/// has completed, or hands it back if the op completed at once (to run on, on this worker).
pub(crate) type ParkHandler =
    Arc<dyn Fn(CallTask, HostOp, Sender<CallTask>) -> Option<CallTask> + Send + Sync>;

/// Ends the waits of parked calls whose time has run out (queueing those calls again), and
/// says when the next one will. Workers call it between calls and sleep no longer than that,
/// so timing out a wait costs no other thread.
pub(crate) type TimerCheck = Arc<dyn Fn() -> Option<Instant> + Send + Sync>;

thread_local! {
    /// On a worker, its pool's queue.
    static POOL: RefCell<Option<Sender<CallTask>>> = const { RefCell::new(None) };
    /// On a worker, the call it runs next.
    static NEXT: RefCell<Option<CallTask>> = const { RefCell::new(None) };
}

/// Queues `task` on `queue`: as the call this thread runs next if it is a worker of that
/// queue's pool, else for any worker.
pub(crate) fn queue(queue: &Sender<CallTask>, task: CallTask) {
    let here = POOL.with_borrow(|pool| pool.as_ref().is_some_and(|p| p.same_channel(queue)));
    let displaced = match here {
        true => NEXT.with_borrow_mut(|next| next.replace(task)),
        false => Some(task),
    };
    if let Some(task) = displaced {
        // Workers hold a sender too, so the queue is open for as long as the pool exists.
        let _ = queue.send(task);
        let depth = queue.len() as f64;
        fwasm_proto::metrics::meters().queue_depth.set(depth);
    }
}

pub(crate) struct WorkerPool {
    queue: Sender<CallTask>,
    /// Dropping the pool drops this sender, which tells every worker to stop.
    _stop: Sender<()>,
}

impl WorkerPool {
    pub(crate) fn new(workers: usize, on_park: ParkHandler, timers: TimerCheck) -> Self {
        let (queue, tasks) = unbounded::<CallTask>();
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        for index in 0..workers.max(1) {
            let (tasks, requeue, stopped) = (tasks.clone(), queue.clone(), stopped.clone());
            let (on_park, timers) = (on_park.clone(), timers.clone());
            thread::Builder::new()
                .name(format!("fwasm-wasm-{index}"))
                .spawn(move || work(tasks, requeue, stopped, on_park, timers))
                .expect("spawn a wasm worker thread");
        }
        Self { queue, _stop: stop }
    }

    pub(crate) fn submit(&self, task: CallTask) {
        queue(&self.queue, task);
    }
}

fn work(
    tasks: Receiver<CallTask>,
    requeue: Sender<CallTask>,
    stopped: Receiver<()>,
    on_park: ParkHandler,
    timers: TimerCheck,
) {
    let _worker = Worker::of(&requeue);
    // A call whose host op completed at once, to run on here.
    let mut ready: Option<CallTask> = None;
    loop {
        // A panic here (a bug) must not end the worker either; the timers are still whole.
        let due = catch_unwind(AssertUnwindSafe(|| timers())).unwrap_or_else(|_| {
            tracing::error!("a wasm worker panicked while ending timed-out waits");
            None
        });
        let next = ready.take().or_else(|| NEXT.take());
        let task = match next {
            Some(task) => task,
            None => {
                let task = match due {
                    None => select! {
                        recv(tasks) -> task => task,
                        recv(stopped) -> _ => return,
                    },
                    Some(due) => select! {
                        recv(tasks) -> task => task,
                        recv(stopped) -> _ => return,
                        default(due.saturating_duration_since(Instant::now())) => continue,
                    },
                };
                let Ok(task) = task else { return };
                fwasm_proto::metrics::meters()
                    .queue_depth
                    .set(tasks.len() as f64);
                task
            }
        };
        let slot_was_taken = NEXT.with_borrow(Option::is_some);
        // A panic here would be a bug in fwasm, wasmi or an op begun here; it must cost one
        // call, not the worker. The task drops with its reply, and its caller is told (a
        // chained call of this executor ends as not run).
        let ran = catch_unwind(AssertUnwindSafe(|| match task.run_slice() {
            Slice::Again(unfinished) => {
                let _ = requeue.send(unfinished);
                None
            }
            Slice::Parked(parked, op) => on_park(parked, op, requeue.clone()),
            Slice::Done => None,
        }));
        match ran {
            // Runs on here only while no other call waits for a worker, here or in the shared
            // queue: else to the back.
            Ok(Some(task)) if tasks.is_empty() && !slot_was_taken => ready = Some(task),
            Ok(Some(task)) => {
                let _ = requeue.send(task);
            }
            Ok(None) => {}
            Err(_) => tracing::error!("a wasm worker panicked while running a call"),
        }
    }
}

/// This thread as a worker of the pool of `queue`, until dropped: then the slot is emptied
/// into the shared queue and the thread is no longer the pool's.
struct Worker;

impl Worker {
    fn of(queue: &Sender<CallTask>) -> Self {
        POOL.set(Some(queue.clone()));
        Worker
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let (Some(queue), Some(task)) = (POOL.take(), NEXT.take()) {
            let _ = queue.send(task);
        }
    }
}
