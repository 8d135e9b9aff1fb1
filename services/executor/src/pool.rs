//! A fixed set of OS threads that run wasm, so guest code never blocks the async runtime.
//!
//! Calls run in fuel slices: a call that uses up its slice goes to the back of the queue, which
//! keeps a long call from starving short ones and lets a wall-clock timeout stop a loop.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread;

use crossbeam_channel::{Receiver, Sender, select, unbounded};

use crate::call::CallTask;

pub(crate) struct WorkerPool {
    queue: Sender<CallTask>,
    /// Dropping the pool drops this sender, which tells every worker to stop.
    _stop: Sender<()>,
}

impl WorkerPool {
    pub(crate) fn new(workers: usize) -> Self {
        let (queue, tasks) = unbounded::<CallTask>();
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        for index in 0..workers.max(1) {
            let (tasks, requeue, stopped) = (tasks.clone(), queue.clone(), stopped.clone());
            thread::Builder::new()
                .name(format!("fwasm-wasm-{index}"))
                .spawn(move || work(tasks, requeue, stopped))
                .expect("spawn a wasm worker thread");
        }
        Self { queue, _stop: stop }
    }

    pub(crate) fn submit(&self, task: CallTask) {
        // Workers hold a sender too, so the queue is open for as long as the pool exists.
        let _ = self.queue.send(task);
    }
}

fn work(tasks: Receiver<CallTask>, requeue: Sender<CallTask>, stopped: Receiver<()>) {
    loop {
        select! {
            recv(tasks) -> task => {
                let Ok(task) = task else { return };
                // A panic here would be a bug in fwasm or wasmi; it must cost one call, not the
                // worker. The task's reply channel drops with it and its caller is told.
                match catch_unwind(AssertUnwindSafe(|| task.run_slice())) {
                    Ok(Some(unfinished)) => {
                        let _ = requeue.send(unfinished);
                    }
                    Ok(None) => {}
                    Err(_) => tracing::error!("a wasm worker panicked while running a call"),
                }
            }
            recv(stopped) -> _ => return,
        }
    }
}
