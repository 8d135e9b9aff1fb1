//! Chained calls this executor runs, which callers here await without asking the scheduler.
//!
//! A child that ends resumes the callers parked on it from the worker it ended on, so the
//! answer never crosses to the async runtime and back. An await that runs out of time is
//! ended by the next worker that looks at the timers: every worker does between slices and
//! sleeps no longer than until the next one is due, so a timeout is late by at most the slice
//! a busy worker is running. The scheduler still gets every outcome (the executor reports it
//! as for any call); once it has it, or once the child's caller has ended, the child is
//! forgotten here and its callers ask the scheduler, as callers elsewhere do.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use fwasm_abi::HostStatus;

use crate::call::CallTask;
use crate::host::chaining::Ended;
use crate::host::park::{OpResult, Refusal};
use crate::parked::ParkedCall;

#[derive(Default)]
pub(crate) struct LocalCalls {
    registry: Mutex<Registry>,
    timers: Arc<Timers>,
    next_token: AtomicU64,
}

#[derive(Default)]
struct Registry {
    by_id: HashMap<u64, Arc<LocalCall>>,
    /// The children each caller started here, forgotten when the caller ends.
    by_parent: HashMap<u64, Vec<u64>>,
}

/// When each waiting await runs out of time, earliest first; an await that is answered
/// takes its timer out.
#[derive(Default)]
struct Timers(Mutex<BTreeMap<(Instant, u64), Weak<LocalCall>>>);

/// One chained call started here, and who waits for it.
pub(crate) struct LocalCall {
    id: u64,
    user: String,
    function: String,
    progress: Mutex<Progress>,
    timers: Arc<Timers>,
}

enum Progress {
    Running(Vec<Waiter>),
    Ended(Ended),
}

struct Waiter {
    /// Its timer's key.
    due: (Instant, u64),
    call: ParkedCall,
    /// What the caller hears if the child is still running when the wait runs out.
    expired: Expiry,
}

/// Why a wait runs out: the await's own timeout, or the caller's time limit.
#[derive(Clone, Copy)]
enum Expiry {
    Timeout(Duration),
    CallersLimit,
}

impl Expiry {
    fn refusal(self, id: u64) -> Refusal {
        match self {
            // The caller fails with its own timeout when it resumes and never sees this.
            Expiry::CallersLimit => {
                Refusal::new(HostStatus::Timeout, "await: the caller's time ran out")
            }
            Expiry::Timeout(limit) => Refusal::new(
                HostStatus::Timeout,
                format!("await: call {id} is still running after {limit:?}"),
            ),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here panics while holding a lock; if something did, the data is still whole.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LocalCalls {
    /// Registers `call`, which its parent chained and this executor runs.
    pub(crate) fn started(&self, call: &fwasm_proto::pb::Call) -> Arc<LocalCall> {
        let (parent, id) = (call.parent_id, call.id);
        let call = Arc::new(LocalCall {
            id,
            user: call.user.clone(),
            function: call.function.clone(),
            progress: Mutex::new(Progress::Running(Vec::new())),
            timers: self.timers.clone(),
        });
        let mut registry = lock(&self.registry);
        registry.by_id.insert(id, call.clone());
        registry.by_parent.entry(parent).or_default().push(id);
        call
    }

    /// The child `id` of a call of `user`, if this executor runs it and still keeps it.
    pub(crate) fn get(&self, id: u64, user: &str) -> Option<Arc<LocalCall>> {
        let registry = lock(&self.registry);
        registry.by_id.get(&id).filter(|c| c.user == user).cloned()
    }

    /// Forgets child `id` (and its output) once the scheduler has its outcome: whoever awaits
    /// it from then on asks the scheduler.
    pub(crate) fn forget(&self, id: u64) {
        lock(&self.registry).by_id.remove(&id);
    }

    /// Forgets the children `parent` started, once it has ended.
    pub(crate) fn forget_children(&self, parent: u64) {
        let mut registry = lock(&self.registry);
        if let Some(children) = registry.by_parent.remove(&parent) {
            for id in children {
                registry.by_id.remove(&id);
            }
        }
    }

    /// Parks `waiting` until `child` ends, or `timeout` (`None`: the caller's whole time) runs
    /// out. Answers at once if it has ended, or if the await only looks (a zero timeout): the
    /// call is then handed back, to run on at once.
    pub(crate) fn await_here(
        &self,
        child: &Arc<LocalCall>,
        waiting: ParkedCall,
        timeout: Option<Duration>,
    ) -> Option<CallTask> {
        let callers_limit = waiting.task().time_left();
        let (limit, expired) = match timeout {
            Some(t) if t < callers_limit => (t, Expiry::Timeout(t)),
            _ => (callers_limit, Expiry::CallersLimit),
        };
        let mut progress = lock(&child.progress);
        let waiters = match &mut *progress {
            Progress::Ended(ended) => {
                let ended = ended.clone();
                drop(progress);
                return Some(waiting.complete(child.awaited(Ok(ended))));
            }
            Progress::Running(waiters) => waiters,
        };
        if limit.is_zero() {
            drop(progress);
            return Some(waiting.complete(child.awaited(Err(expired.refusal(child.id)))));
        }
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let due = (Instant::now() + limit, token);
        // Set while the call's progress is locked, so an end that comes meanwhile finds it to
        // take out.
        lock(&self.timers.0).insert(due, Arc::downgrade(child));
        let caller = waiting.task().call().id;
        waiters.push(Waiter {
            due,
            call: waiting,
            expired,
        });
        let cancelled = waiters
            .last()
            .is_some_and(|w| w.call.task().cancel().is_cancelled());
        drop(progress);
        // Cancelled before its wait was there for the canceller to take back (which sets the
        // token first, then looks): taken back here.
        if cancelled {
            self.release_waiter(caller);
        }
        None
    }

    /// How many callers wait here for chained calls of this executor.
    pub(crate) fn waiting(&self) -> usize {
        let children: Vec<Arc<LocalCall>> = lock(&self.registry).by_id.values().cloned().collect();
        children
            .iter()
            .map(|child| match &*lock(&child.progress) {
                Progress::Running(waiters) => waiters.len(),
                Progress::Ended(_) => 0,
            })
            .sum()
    }

    /// The calls `parent` chained that this executor runs, as far as it still keeps them.
    pub(crate) fn children_of(&self, parent: u64) -> Vec<u64> {
        let registry = lock(&self.registry);
        registry.by_parent.get(&parent).cloned().unwrap_or_default()
    }

    /// Takes caller `id`'s wait (a cancelled call's) back from the child it awaits here, and
    /// queues the caller to run again. A scan: cancelling is rare, awaiting is not.
    pub(crate) fn release_waiter(&self, id: u64) {
        let children: Vec<Arc<LocalCall>> = lock(&self.registry).by_id.values().cloned().collect();
        for child in children {
            let waiter = match &mut *lock(&child.progress) {
                Progress::Running(waiters) => waiters
                    .iter()
                    .position(|w| w.call.task().call().id == id)
                    .map(|at| waiters.swap_remove(at)),
                Progress::Ended(_) => None,
            };
            if let Some(waiter) = waiter {
                lock(&self.timers.0).remove(&waiter.due);
                waiter.call.resume_cancelled();
                return;
            }
        }
    }

    /// Ends the waits whose time has run out, and says when the next one will.
    pub(crate) fn expire_due(&self) -> Option<Instant> {
        loop {
            let (token, call) = {
                let mut timers = lock(&self.timers.0);
                let (&(at, _), _) = timers.first_key_value()?;
                if at > Instant::now() {
                    return Some(at);
                }
                let ((_, token), call) = timers.pop_first()?;
                (token, call)
            };
            let Some(call) = call.upgrade() else {
                continue;
            };
            let waiter = {
                let mut progress = lock(&call.progress);
                match &mut *progress {
                    Progress::Running(waiters) => waiters
                        .iter()
                        .position(|w| w.due.1 == token)
                        .map(|at| waiters.swap_remove(at)),
                    Progress::Ended(_) => None,
                }
            };
            if let Some(waiter) = waiter {
                let refused = waiter.expired.refusal(call.id);
                waiter.call.resume(call.awaited(Err(refused)));
            }
        }
    }
}

impl LocalCall {
    /// The call has ended: its callers parked on it resume with how. Only the first end
    /// counts.
    pub(crate) fn end(&self, ended: Ended) {
        let waiters = {
            let mut progress = lock(&self.progress);
            if matches!(*progress, Progress::Ended(_)) {
                return;
            }
            match std::mem::replace(&mut *progress, Progress::Ended(ended.clone())) {
                Progress::Running(waiters) => waiters,
                Progress::Ended(_) => Vec::new(),
            }
        };
        if !waiters.is_empty() {
            let mut timers = lock(&self.timers.0);
            for waiter in &waiters {
                timers.remove(&waiter.due);
            }
        }
        for waiter in waiters {
            waiter.call.resume(self.awaited(Ok(ended.clone())));
        }
    }

    /// Its id, user and function.
    pub(crate) fn name(&self) -> (u64, &str, &str) {
        (self.id, &self.user, &self.function)
    }

    fn awaited(&self, ended: Result<Ended, Refusal>) -> OpResult {
        OpResult::Awaited { id: self.id, ended }
    }
}
