//! The call table: every call's status and, once it ends, its outcome, kept for a retention
//! time within a memory budget. Waiters are woken when the call they wait for ends.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fwasm_proto::ApiError;
use fwasm_proto::outcome::unix_micros;
use fwasm_proto::pb::{CallRecord, CallResult, CallStatus, FailureKind, ListCallsRequest};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::leased::LeasedIds;

/// How long and how much of finished calls the table keeps. Unfinished calls are always kept:
/// someone may be waiting for them.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Finished calls older than this are forgotten.
    pub max_age: Duration,
    /// At most this many finished calls are kept.
    pub max_calls: usize,
    /// At most this many bytes of finished calls' outputs and errors are kept.
    pub max_output_bytes: usize,
    /// How long a call an earlier scheduler saved as waiting for an executor may still be
    /// reported (its dispatch may have reached one just before that scheduler stopped).
    pub restored_report_grace: Duration,
}
// Over the count or bytes, the oldest synchronous call from outside goes first: its caller has
// its answer already. Background and chained calls, whose results someone will come for, go
// only when no such call is left; so a flood of synchronous calls cannot push a background
// call's result out before it is read.

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(3600),
            max_calls: 100_000,
            max_output_bytes: 256 << 20,
            restored_report_grace: Duration::from_secs(60),
        }
    }
}

pub(crate) struct CallTable {
    retention: Retention,
    inner: Mutex<Calls>,
    /// Where every change goes when the table must outlive the scheduler.
    changes: Option<mpsc::UnboundedSender<Change>>,
    /// Woken whenever calls started from leases are recorded.
    recorded: Notify,
}

/// What recording calls from leases leaves to do.
#[derive(Default)]
pub(crate) struct Recorded {
    /// Ids no open lease gave out: not recorded.
    pub(crate) refused: Vec<u64>,
    /// The executor of each call recorded.
    pub(crate) started: Vec<String>,
    /// Reports that came before their calls were recorded.
    pub(crate) early: Vec<CallResult>,
}

/// What the writer of a durable table receives, in order.
pub(crate) enum Change {
    /// Boxed: records are large, and most changes in the queue are saves anyway.
    Save(Box<CallRecord>),
    /// Answered once every change sent before it is saved.
    Flush(oneshot::Sender<()>),
}

#[derive(Default)]
struct Calls {
    by_id: HashMap<u64, Entry>,
    /// Finished synchronous calls from outside, in the order they finished, for eviction.
    answered: VecDeque<(u64, Instant)>,
    /// Finished background and chained calls, in the order they finished.
    awaited: VecDeque<(u64, Instant)>,
    /// The call that finished last: never evicted, so whoever asks next can read it.
    newest: u64,
    output_bytes: usize,
    /// Calls restored as waiting for an executor, and when they count as lost unless an
    /// executor reports them first.
    restored: Vec<(u64, Instant)>,
    /// Each user's calls that have not ended (queued, running or parked), for its quota.
    unfinished: HashMap<String, u32>,
    /// Users with placements waiting for room in that quota: each call of theirs that ends
    /// wakes one of them.
    waiting_for_room: HashMap<String, Arc<Notify>>,
    /// Call ids given out in leases, whose calls may be recorded late.
    leased: LeasedIds,
}

impl Calls {
    fn started(&mut self, user: &str) {
        // The user's name is copied only for its first unfinished call.
        match self.unfinished.get_mut(user) {
            Some(count) => *count += 1,
            None => {
                self.unfinished.insert(user.to_string(), 1);
            }
        }
    }

    fn ended(&mut self, user: &str) {
        if let Some(count) = self.unfinished.get_mut(user) {
            *count -= 1;
            if *count == 0 {
                self.unfinished.remove(user);
            }
        }
        if let Some(room) = self.waiting_for_room.get(user) {
            room.notify_one();
        }
    }

    /// Records that call `id` has just finished, with `size` bytes of outcome.
    fn finished(&mut self, id: u64, size: usize, awaited: bool) {
        let queue = if awaited {
            &mut self.awaited
        } else {
            &mut self.answered
        };
        queue.push_back((id, Instant::now()));
        self.output_bytes += size;
        self.newest = id;
    }
}

struct Entry {
    record: CallRecord,
    waiters: Vec<oneshot::Sender<CallRecord>>,
    /// The call from outside this call descends from (itself for such a call).
    root: u64,
    /// For a root: how many calls its tree has had, itself included.
    tree_calls: u64,
    /// Run by the scheduler's own dispatcher, which reports how it ends whatever happens.
    dispatched: bool,
    /// Taken back from an earlier scheduler: someone will come for its result, and no
    /// executor's count of live calls here includes it.
    restored: bool,
    /// Ended as lost because no executor reported it in time after a restart; a report that
    /// comes later still tells how it really ended.
    presumed_lost: bool,
}

impl CallTable {
    pub(crate) fn new(retention: Retention) -> Self {
        Self {
            retention,
            inner: Mutex::default(),
            changes: None,
            recorded: Notify::new(),
        }
    }

    /// A table that sends each changed record to `changes` (to be saved elsewhere).
    pub(crate) fn durable(retention: Retention, changes: mpsc::UnboundedSender<Change>) -> Self {
        Self {
            changes: Some(changes),
            ..Self::new(retention)
        }
    }

    fn publish(&self, record: &CallRecord) {
        if let Some(changes) = &self.changes {
            let _ = changes.send(Change::Save(Box::new(record.clone())));
        }
    }

    /// Waits until every change so far is saved (at once for a table kept only in memory).
    pub(crate) async fn flushed(&self) {
        let Some(changes) = &self.changes else {
            return;
        };
        let (done, saved) = oneshot::channel();
        if changes.send(Change::Flush(done)).is_ok() {
            let _ = saved.await;
        }
    }

    /// Takes back a record saved by an earlier scheduler, unless the table has it already. A
    /// call saved unfinished counts as running until an executor reports it, or as lost once
    /// the grace runs out ([`CallTable::fail_unreported_restored`]): a background call saved
    /// as waiting cannot be sent anymore (its input died with that scheduler), though its
    /// dispatch may have reached an executor just before; a running one's executor may be
    /// gone too.
    pub(crate) fn restore(&self, mut record: CallRecord) {
        let mut calls = self.calls();
        let id = record.id;
        if calls.by_id.contains_key(&id) {
            return;
        }
        // Queued (its input died with that scheduler) or running (its executor may have died
        // too): it counts as running until an executor reports it, and as lost once the
        // grace runs out, so it never holds its user's quota for good. A report that comes
        // later still tells how it really ended.
        if !is_finished(&record) {
            record.set_status(CallStatus::Running);
            let deadline = Instant::now() + self.retention.restored_report_grace;
            calls.restored.push((id, deadline));
        }
        let finished = is_finished(&record);
        let size = retained_bytes(&record);
        if !finished {
            calls.started(&record.user);
        }
        calls.by_id.insert(
            id,
            Entry {
                record,
                waiters: Vec::new(),
                root: id,
                tree_calls: 1,
                dispatched: false,
                restored: true,
                presumed_lost: false,
            },
        );
        if finished {
            // Someone may poll for it after the restart.
            calls.finished(id, size, true);
            self.evict(&mut calls);
        }
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, Calls> {
        // Critical sections only move plain values; a panicked holder leaves nothing torn.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a new call (queued or running). A chained call counts against its tree's
    /// `max_tree_calls`, so no call tree can grow without bound; and every call against its
    /// user's `max_unfinished` calls at once (0: no limit).
    pub(crate) fn insert(
        &self,
        record: CallRecord,
        max_tree_calls: u64,
        max_unfinished: u32,
        dispatched: bool,
    ) -> Result<(), ApiError> {
        let mut calls = self.calls();
        Self::close_leases(&mut calls);
        let user = &record.user;
        let unfinished = calls.unfinished.get(user).copied().unwrap_or(0);
        if max_unfinished > 0 && unfinished >= max_unfinished {
            return Err(ApiError::resource_exhausted(format!(
                "{user} has its quota of {max_unfinished} concurrent calls running or queued \
                 (quota: concurrent calls); retry when one of them ends"
            )));
        }
        let root = match calls.by_id.get(&record.parent_id) {
            Some(parent) if record.parent_id != 0 => parent.root,
            _ => record.id,
        };
        if let Some(tree) = calls.by_id.get_mut(&root).filter(|_| root != record.id) {
            if tree.tree_calls >= max_tree_calls {
                return Err(ApiError::resource_exhausted(format!(
                    "the calls started by call {root} have reached their limit of {max_tree_calls}"
                )));
            }
            tree.tree_calls += 1;
        }
        self.add(&mut calls, record, root, dispatched);
        Ok(())
    }

    /// Adds a new unfinished call of tree `root` (itself, for a root).
    fn add(&self, calls: &mut Calls, record: CallRecord, root: u64, dispatched: bool) {
        let entry = Entry {
            root,
            tree_calls: 1,
            dispatched,
            restored: false,
            presumed_lost: false,
            record,
            waiters: Vec::new(),
        };
        self.publish(&entry.record);
        calls.started(&entry.record.user);
        calls.by_id.insert(entry.record.id, entry);
    }

    /// Reserves up to `wanted` places in the tree `parent_id` belongs to, within
    /// `max_tree_calls` (at most half the room left), for a lease of ids for calls it chains:
    /// the tree's root and how many were reserved (0 when the tree is nearly full). The places
    /// a lease does not use are given back when it closes. `None` when `parent_id` is not a
    /// call of `user` the table knows.
    pub(crate) fn reserve_tree(
        &self,
        parent_id: u64,
        user: &str,
        wanted: u64,
        max_tree_calls: u64,
    ) -> Option<(u64, u64)> {
        let mut calls = self.calls();
        // Places closed leases did not use count as free again.
        Self::close_leases(&mut calls);
        let root = calls
            .by_id
            .get(&parent_id)
            .filter(|parent| parent.record.user == user)?
            .root;
        // A root forgotten while its tree runs on limits nothing, as for placements.
        let Some(tree) = calls.by_id.get_mut(&root) else {
            return Some((root, wanted));
        };
        // At most half the room left: the tree's other callers, and its calls placed one by
        // one once its leases have taken what they may, still find places.
        let room = max_tree_calls.saturating_sub(tree.tree_calls);
        let reserved = wanted.min(room / 2);
        tree.tree_calls += reserved;
        Some((root, reserved))
    }

    /// Gives out `len` ids from `first` in a lease: calls given them are recorded
    /// ([`CallTable::record`]) by `until`, or never; `root`: the tree whose limit the lease
    /// reserved them from (0 for calls from outside).
    pub(crate) fn lease(&self, first: u64, len: u64, until: Instant, root: u64) {
        let mut calls = self.calls();
        Self::close_leases(&mut calls);
        calls.leased.lease(first, len, until, root);
    }

    /// Whether `id` was given out in a lease still open.
    pub(crate) fn is_leased(&self, id: u64) -> bool {
        self.calls().leased.is_out(id)
    }

    /// Closes leases past their time, giving the trees they reserved places in back the
    /// places they did not use.
    fn close_leases(calls: &mut Calls) {
        Self::close_leases_at(calls, Instant::now());
    }

    fn close_leases_at(calls: &mut Calls, now: Instant) {
        for unused in calls.leased.close_past(now) {
            if let Some(tree) = calls.by_id.get_mut(&unused.root) {
                tree.tree_calls = tree.tree_calls.saturating_sub(unused.places);
            }
        }
    }

    /// Records calls started from leases, running, each once, and returns what the caller
    /// must still do: the ids that were not leased (not recorded), and the reports that came
    /// before their calls were recorded (to be applied as reports). No limit applies: a lease
    /// goes only to users without a quota of calls, and a chained call's place in its tree
    /// was reserved with its lease.
    pub(crate) fn record(&self, records: Vec<CallRecord>) -> Recorded {
        let mut recorded = Recorded::default();
        let mut calls = self.calls();
        Self::close_leases(&mut calls);
        for mut record in records {
            let id = record.id;
            if !calls.leased.is_out(id) {
                recorded.refused.push(id);
                continue;
            }
            // A batch sent again: each id is recorded once, even if its call ended since
            // and was forgotten.
            let Some(root) = calls.leased.take_for_record(id) else {
                continue;
            };
            if root == id {
                record.parent_id = 0;
            }
            record.set_status(CallStatus::Running);
            recorded.started.push(record.executor_id.clone());
            self.add(&mut calls, record, root, false);
            recorded.early.extend(calls.leased.take_early(id));
        }
        drop(calls);
        self.recorded.notify_waiters();
        recorded
    }

    /// Waits, up to `within`, for call `id` to be recorded if it is out in a lease; returns at
    /// once if the table has it, or if it is not out.
    pub(crate) async fn await_record(&self, id: u64, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let recorded = self.recorded.notified();
            tokio::pin!(recorded);
            // Registered before looking, so a batch recorded in between still wakes it.
            recorded.as_mut().enable();
            {
                let calls = self.calls();
                if calls.by_id.contains_key(&id) || !calls.leased.is_out(id) {
                    return;
                }
            }
            if tokio::time::timeout_at(deadline, recorded).await.is_err() {
                return;
            }
        }
    }

    /// Marks a queued call as running on `executor_id`. False when it is no longer queued
    /// (cancelled meanwhile), so it must not be sent.
    pub(crate) fn set_running(&self, id: u64, executor_id: &str) -> bool {
        let mut calls = self.calls();
        let Some(entry) = calls.by_id.get_mut(&id) else {
            return false;
        };
        if entry.record.status() != CallStatus::Queued {
            return false;
        }
        entry.record.set_status(CallStatus::Running);
        entry.record.executor_id = executor_id.to_string();
        self.publish(&entry.record);
        true
    }

    /// Ends call `id` as cancelled if it is still queued (no executor has it); false if not.
    pub(crate) fn cancel_queued(&self, id: u64) -> bool {
        let mut calls = self.calls();
        let Some(entry) = calls.by_id.get(&id) else {
            return false;
        };
        if entry.record.status() != CallStatus::Queued {
            return false;
        }
        let (user, function) = (&entry.record.user, &entry.record.function);
        let cancelled = CallResult {
            id,
            status: CallStatus::Failed as i32,
            failure: FailureKind::Cancelled as i32,
            error: format!("{user}/{function} was cancelled before it started"),
            ..CallResult::default()
        };
        self.end_in(&mut calls, &cancelled, false);
        true
    }

    /// Puts a call back in the queue (its executor vanished or was full). False when the
    /// call has ended meanwhile (an executor reported it), so it must not run again.
    pub(crate) fn set_queued(&self, id: u64) -> bool {
        let mut calls = self.calls();
        let Some(entry) = calls.by_id.get_mut(&id) else {
            return false;
        };
        match entry.record.status() {
            CallStatus::Queued => true,
            CallStatus::Running => {
                entry.record.set_status(CallStatus::Queued);
                self.publish(&entry.record);
                true
            }
            _ => false,
        }
    }

    /// Fails the unfinished calls placed on an executor that is gone, except those the
    /// scheduler dispatched itself (their dispatcher tries again or reports).
    pub(crate) fn fail_lost(&self, executor_id: &str) {
        let lost: Vec<CallResult> = self
            .calls()
            .by_id
            .values()
            .filter(|entry| {
                !entry.dispatched
                    && entry.record.executor_id == executor_id
                    && !is_finished(&entry.record)
            })
            .map(|entry| {
                let record = &entry.record;
                lost(record.id, &record.user, &record.function, executor_id)
            })
            .collect();
        for result in lost {
            self.finish(&result);
        }
    }

    /// Ends as lost every restored call whose grace ran out with no executor reporting it.
    pub(crate) fn fail_unreported_restored(&self) {
        let now = Instant::now();
        let due: Vec<u64> = {
            let mut calls = self.calls();
            let (due, waiting) = calls.restored.drain(..).partition(|(_, at)| *at <= now);
            calls.restored = waiting;
            due.into_iter().map(|(id, _)| id).collect()
        };
        for id in due {
            let Some(record) = self.get(id) else { continue };
            self.end(
                &CallResult {
                    id,
                    status: CallStatus::Failed as i32,
                    failure: FailureKind::Lost as i32,
                    error: format!(
                        "{}/{} was lost: the scheduler restarted before the call reached an \
                     executor, and none reported it",
                        record.user, record.function
                    ),
                    ..CallResult::default()
                },
                true,
            );
        }
    }

    /// Records how a call ended and wakes its waiters. The first report wins (but one that
    /// comes after a restored call was presumed lost replaces that guess): returns the executor
    /// whose live calls included it ("" if none), or `None` if the call had already ended or is
    /// unknown.
    pub(crate) fn finish(&self, result: &CallResult) -> Option<String> {
        self.end(result, false)
    }

    /// [`CallTable::finish`]; with `presumed`, the result is a guess that a later report
    /// replaces (marked under the same lock, so no report slips in between).
    fn end(&self, result: &CallResult, presumed: bool) -> Option<String> {
        self.end_in(&mut self.calls(), result, presumed)
    }

    fn end_in(&self, calls: &mut Calls, result: &CallResult, presumed: bool) -> Option<String> {
        let Some(entry) = calls.by_id.get_mut(&result.id) else {
            // A call from a lease may be reported before it is recorded: kept for then.
            if !presumed {
                Self::close_leases(calls);
                calls.leased.hold_early(result);
            }
            return None;
        };
        let late = entry.presumed_lost;
        if is_finished(&entry.record) && !late {
            return None;
        }
        entry.presumed_lost = presumed;
        let before = retained_bytes(&entry.record);
        let restored = entry.restored;
        let record = &mut entry.record;
        let succeeded = result.status() == CallStatus::Success;
        record.set_status(if succeeded {
            CallStatus::Success
        } else {
            CallStatus::Failed
        });
        record.return_code = fwasm_proto::outcome::return_code(result);
        record.stdout = result.stdout.clone();
        record.logs = result.logs.clone();
        record.mpi_ranks = result.mpi_ranks.clone();
        record.http_status = result.http_status;
        record.output = result.output.clone();
        record.failure = result.failure;
        record.error = result.error.clone();
        record.exec_micros = result.exec_micros;
        record.cold_start = result.cold_start;
        record.finished_unix_micros = unix_micros();
        let size = retained_bytes(record);
        let awaited = entry.dispatched || restored || record.parent_id != 0;
        let executor = match restored {
            true => String::new(),
            false => record.executor_id.clone(),
        };
        self.publish(&entry.record);
        for waiter in entry.waiters.drain(..) {
            let _ = waiter.send(entry.record.clone());
        }
        let user = entry.record.user.clone();
        if late {
            // Already among the finished calls: only its size changed.
            calls.output_bytes = calls.output_bytes - before + size;
        } else {
            calls.finished(result.id, size, awaited);
            calls.ended(&user);
        }
        self.evict(calls);
        Some(executor)
    }

    /// Records a new call as [`CallTable::insert`] does; one its user's quota of concurrent
    /// calls would refuse first waits, up to `grace`, for one of them to end. Executors report
    /// how a call ended after they answer it, so a caller's next call can come before the
    /// report of its last: this keeps that call from being refused for a quota its caller no
    /// longer uses. Each call that ends wakes one waiting placement of its user.
    pub(crate) async fn insert_within(
        &self,
        record: CallRecord,
        max_tree_calls: u64,
        max_unfinished: u32,
        dispatched: bool,
        grace: Duration,
    ) -> Result<(), ApiError> {
        if max_unfinished == 0 {
            return self.insert(record, max_tree_calls, max_unfinished, dispatched);
        }
        let deadline = tokio::time::Instant::now() + grace;
        // The user's wake-ups, once this placement waits for them.
        let mut room: Option<(String, Arc<Notify>)> = None;
        let inserted = loop {
            let woken = {
                let mut calls = self.calls();
                let unfinished = calls.unfinished.get(&record.user).copied().unwrap_or(0);
                if unfinished < max_unfinished || tokio::time::Instant::now() >= deadline {
                    drop(calls);
                    break self.insert(record, max_tree_calls, max_unfinished, dispatched);
                }
                let (_, room) = room.get_or_insert_with(|| {
                    let user = record.user.clone();
                    let room = calls.waiting_for_room.entry(user.clone()).or_default();
                    (user, room.clone())
                });
                // A wake-up sent before this waits is kept for it (notify_one).
                room.clone().notified_owned()
            };
            let _ = tokio::time::timeout_at(deadline, woken).await;
        };
        if let Some((user, room)) = room {
            // The last waiter of the user takes the wake-ups away.
            let mut calls = self.calls();
            if Arc::strong_count(&room) == 2 {
                calls.waiting_for_room.remove(&user);
            }
        }
        inserted
    }

    /// Whether `id` is a call run by the executor it was placed on (not dispatched from this
    /// table) that has not been reported yet. Its caller may know how it ended before this
    /// table does: a client from the executor's answer, a chaining caller from its executor.
    pub(crate) fn running_unreported(&self, id: u64) -> bool {
        let calls = self.calls();
        calls.by_id.get(&id).is_some_and(|entry| {
            !entry.dispatched && !entry.restored && entry.record.status() == CallStatus::Running
        })
    }

    /// Whether every change is saved, so the table outlives the scheduler.
    pub(crate) fn is_durable(&self) -> bool {
        self.changes.is_some()
    }

    pub(crate) fn retention(&self) -> &Retention {
        &self.retention
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        self.calls().by_id.contains_key(&id)
    }

    pub(crate) fn get(&self, id: u64) -> Option<CallRecord> {
        let mut calls = self.calls();
        self.evict(&mut calls);
        calls.by_id.get(&id).map(|entry| entry.record.clone())
    }

    /// The calls kept that `req` asks for, newest first (by when they were submitted: ids
    /// from leases are not in that order), without their outputs and logs. `None` if the
    /// call the page starts after is no longer kept.
    pub(crate) fn list(&self, req: &ListCallsRequest) -> Option<Vec<CallRecord>> {
        let limit = match req.limit {
            0 => 100,
            n => n.min(1000) as usize,
        };
        let order = |record: &CallRecord| (record.submitted_unix_micros, record.id);
        let mut calls = self.calls();
        self.evict(&mut calls);
        // Another user's call is as unknown as one never made: its ids reveal nothing.
        let after = match req.before_id {
            0 => None,
            id => {
                let entry = calls.by_id.get(&id)?;
                if !req.user.is_empty() && entry.record.user != req.user {
                    return None;
                }
                Some(order(&entry.record))
            }
        };
        let wanted = |record: &CallRecord| {
            (req.user.is_empty() || record.user == req.user)
                && (req.function.is_empty() || record.function == req.function)
                && (req.status == 0 || record.status == req.status)
                && (req.parent_id == 0 || record.parent_id == req.parent_id)
                && after.is_none_or(|after| order(record) < after)
        };
        // Keys first, so only the page's records are copied.
        let mut found: Vec<(u64, u64)> = calls
            .by_id
            .values()
            .filter(|entry| wanted(&entry.record))
            .map(|entry| order(&entry.record))
            .collect();
        found.sort_unstable_by(|a, b| b.cmp(a));
        found.truncate(limit);
        let page = found
            .iter()
            .filter_map(|(_, id)| calls.by_id.get(id))
            .map(|entry| CallRecord {
                output: Default::default(),
                stdout: Default::default(),
                logs: Default::default(),
                ..entry.record.clone()
            })
            .collect();
        Some(page)
    }

    /// The calls `id` chained that have not ended.
    pub(crate) fn unfinished_children(&self, id: u64) -> Vec<u64> {
        self.calls()
            .by_id
            .values()
            .filter(|entry| entry.record.parent_id == id && !is_finished(&entry.record))
            .map(|entry| entry.record.id)
            .collect()
    }

    /// The record once the call has ended, or as it is after `timeout`; `None` if unknown
    /// (or, when `user` is given, not that user's).
    pub(crate) async fn wait(
        &self,
        id: u64,
        user: Option<&str>,
        timeout: Option<Duration>,
    ) -> Option<CallRecord> {
        let ended = {
            let mut calls = self.calls();
            self.evict(&mut calls);
            let entry = calls
                .by_id
                .get_mut(&id)
                .filter(|e| user.is_none_or(|user| e.record.user == user))?;
            if is_finished(&entry.record) {
                return Some(entry.record.clone());
            }
            let (tx, rx) = oneshot::channel();
            entry.waiters.retain(|w| !w.is_closed());
            entry.waiters.push(tx);
            rx
        };
        let ended = match timeout {
            Some(timeout) => tokio::time::timeout(timeout, ended).await.ok(),
            None => Some(ended.await),
        };
        match ended {
            Some(Ok(record)) => Some(record),
            // Timed out, or the table dropped the waiter: report the call as it is now.
            _ => self.get(id),
        }
    }

    /// Forgets finished calls past their age, then, while over the count or byte budget,
    /// synchronous calls from outside before the others (see [`Retention`]), oldest first. The
    /// newest finished call always stays.
    fn evict(&self, calls: &mut Calls) {
        let now = Instant::now();
        let retention = &self.retention;
        loop {
            let newest = calls.newest;
            let oldest = |queue: &VecDeque<(u64, Instant)>| {
                queue.front().copied().filter(|&(id, _)| id != newest)
            };
            let expired = |oldest: Option<(u64, Instant)>| {
                oldest.is_some_and(|(_, at)| now.duration_since(at) > retention.max_age)
            };
            let (answered, awaited) = (oldest(&calls.answered), oldest(&calls.awaited));
            let over = calls.answered.len() + calls.awaited.len() > retention.max_calls
                || calls.output_bytes > retention.max_output_bytes;
            let queue = if expired(answered) || (over && answered.is_some()) {
                &mut calls.answered
            } else if expired(awaited) || (over && awaited.is_some()) {
                &mut calls.awaited
            } else {
                break;
            };
            let Some((id, _)) = queue.pop_front() else {
                break;
            };
            if let Some(entry) = calls.by_id.remove(&id) {
                calls.output_bytes -= retained_bytes(&entry.record);
            }
        }
    }
}

/// Call `id` of `user/function`, ended by the loss of `executor` while it ran.
pub(crate) fn lost(id: u64, user: &str, function: &str, executor: &str) -> CallResult {
    CallResult {
        id,
        status: CallStatus::Failed as i32,
        failure: FailureKind::Lost as i32,
        error: format!(
            "{user}/{function} was lost: executor {executor} stopped responding while running it"
        ),
        ..CallResult::default()
    }
}

/// What a finished record holds beyond its fixed fields.
fn retained_bytes(record: &CallRecord) -> usize {
    record.output.len() + record.error.len() + record.stdout.len() + record.logs.len()
}

fn is_finished(record: &CallRecord) -> bool {
    matches!(record.status(), CallStatus::Success | CallStatus::Failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn running(id: u64) -> CallRecord {
        CallRecord {
            id,
            status: CallStatus::Running as i32,
            ..CallRecord::default()
        }
    }

    fn success(id: u64, output: &'static [u8]) -> CallResult {
        CallResult {
            id,
            status: CallStatus::Success as i32,
            http_status: 200,
            output: Bytes::from_static(output),
            ..CallResult::default()
        }
    }

    #[test]
    fn a_leased_call_is_recorded_once_even_after_it_ended_and_was_forgotten() {
        let table = CallTable::new(Retention {
            max_calls: 1,
            ..Retention::default()
        });
        table.lease(100, 4, Instant::now() + Duration::from_secs(60), 0);
        let started = |id| CallRecord {
            id,
            user: "u".into(),
            executor_id: "e".into(),
            ..CallRecord::default()
        };
        let recorded = table.record(vec![started(100), started(101), started(7)]);
        assert_eq!((recorded.refused, recorded.started.len()), (vec![7], 2));
        table.finish(&success(100, b"a"));
        table.finish(&success(101, b"b"));
        assert!(
            table.get(100).is_none(),
            "forgotten: the table keeps one finished call"
        );
        // The same batch again (its sender did not hear it was taken).
        let again = table.record(vec![started(100), started(101)]);
        assert!(again.refused.is_empty() && again.started.is_empty());
        assert!(table.get(100).is_none());
        assert_eq!(table.get(101).unwrap().status(), CallStatus::Success);
    }

    #[test]
    fn a_closed_lease_gives_its_tree_back_the_places_it_did_not_use() {
        let table = CallTable::new(Retention::default());
        let root = CallRecord {
            user: "u".into(),
            ..running(1)
        };
        table.insert(root, 100, 0, false).unwrap();
        // At most half the room left (99 places): 49.
        assert_eq!(table.reserve_tree(1, "u", 64, 100), Some((1, 49)));
        let until = Instant::now() + Duration::from_secs(60);
        table.lease(200, 49, until, 1);
        let child = CallRecord {
            id: 200,
            parent_id: 1,
            user: "u".into(),
            ..CallRecord::default()
        };
        assert!(table.record(vec![child]).refused.is_empty());
        assert_eq!(
            table.reserve_tree(1, "u", 64, 100),
            Some((1, 25)),
            "room 50 left"
        );
        assert_eq!(
            table.reserve_tree(1, "v", 64, 100),
            None,
            "another user's tree"
        );
        // Closed (at its time, whatever the clock says now): 48 of its places come back.
        CallTable::close_leases_at(&mut table.calls(), until);
        assert_eq!(
            table.reserve_tree(1, "u", 64, 100),
            Some((1, 36)),
            "room 73 left"
        );
    }

    #[tokio::test]
    async fn a_waiter_is_woken_with_the_outcome_and_the_first_report_wins() {
        let table = std::sync::Arc::new(CallTable::new(Retention::default()));
        table.insert(running(1), 100, 0, false).unwrap();
        let waiter = tokio::spawn({
            let table = table.clone();
            async move { table.wait(1, None, None).await }
        });
        tokio::task::yield_now().await;
        assert!(table.finish(&success(1, b"out")).is_some());
        let failed = CallResult {
            id: 1,
            status: CallStatus::Failed as i32,
            failure: FailureKind::Trap as i32,
            ..CallResult::default()
        };
        assert!(
            table.finish(&failed).is_none(),
            "a second report is ignored"
        );
        let record = waiter.await.unwrap().unwrap();
        assert_eq!(
            (record.status(), record.output.as_ref(), record.return_code),
            (CallStatus::Success, &b"out"[..], 0)
        );
        assert!(record.finished_unix_micros > 0);
    }

    #[tokio::test]
    async fn a_failed_call_has_its_failure_kind_as_return_code() {
        let table = CallTable::new(Retention::default());
        table.insert(running(1), 100, 0, false).unwrap();
        table.finish(&CallResult {
            id: 1,
            status: CallStatus::Failed as i32,
            failure: FailureKind::CpuLimit as i32,
            error: "too much".into(),
            ..CallResult::default()
        });
        let record = table.get(1).unwrap();
        assert_eq!(
            (record.status(), record.return_code, record.error.as_str()),
            (CallStatus::Failed, 2, "too much")
        );
    }

    #[tokio::test]
    async fn a_restored_call_that_never_reached_an_executor_runs_until_reported_or_lost() {
        let queued = |id| CallRecord {
            status: CallStatus::Queued as i32,
            ..running(id)
        };
        let table = CallTable::new(Retention::default());
        table.restore(queued(3));
        assert_eq!(table.get(3).unwrap().status(), CallStatus::Running);
        // Its dispatch did reach an executor, which reports it.
        table.finish(&success(3, b"ran"));
        table.fail_unreported_restored();
        let record = table.get(3).unwrap();
        assert_eq!(
            (record.status(), &record.output[..]),
            (CallStatus::Success, &b"ran"[..])
        );

        // No executor ever reports it: lost once its grace is over.
        let table = CallTable::new(Retention {
            restored_report_grace: Duration::ZERO,
            ..Retention::default()
        });
        table.restore(queued(4));
        table.restore(running(5));
        table.fail_unreported_restored();
        let record = table.get(4).unwrap();
        assert_eq!(
            (record.status(), record.failure()),
            (CallStatus::Failed, FailureKind::Lost)
        );
        assert!(
            record.error.contains("none reported it"),
            "{}",
            record.error
        );
        // Nor is a call restored as running (its executor may be gone for good), so it never
        // holds its user's quota for good; its executor's report, if it comes, still counts.
        assert_eq!(table.get(5).unwrap().failure(), FailureKind::Lost);
        table.finish(&success(5, b"late too"));
        assert_eq!(table.get(5).unwrap().status(), CallStatus::Success);
        // A report that comes after all tells how it really ended, once; and no executor's
        // live calls here ever counted it.
        assert_eq!(table.finish(&success(4, b"late")).as_deref(), Some(""));
        let record = table.get(4).unwrap();
        assert_eq!(
            (record.status(), &record.output[..]),
            (CallStatus::Success, &b"late"[..])
        );
        assert_eq!(table.finish(&success(4, b"again")), None);
    }

    #[tokio::test]
    async fn a_wait_with_a_timeout_returns_the_running_record() {
        let table = CallTable::new(Retention::default());
        table.insert(running(7), 100, 0, false).unwrap();
        let record = table
            .wait(7, None, Some(Duration::from_millis(10)))
            .await
            .unwrap();
        assert_eq!(record.status(), CallStatus::Running);
        assert!(table.wait(8, None, None).await.is_none(), "unknown call");
        assert!(
            table.wait(7, Some("someone"), None).await.is_none(),
            "another user's call"
        );
    }

    #[test]
    fn a_call_goes_back_to_the_queue_only_while_it_has_not_ended() {
        let table = CallTable::new(Retention::default());
        table.insert(running(1), 100, 0, true).unwrap();
        assert!(table.set_queued(1));
        assert_eq!(table.get(1).unwrap().status(), CallStatus::Queued);
        assert!(table.set_queued(1), "still waiting");
        // Its executor reported it (as run, or as not run): a dispatcher must not run it again.
        table.finish(&success(1, b"done"));
        assert!(!table.set_queued(1));
        assert_eq!(table.get(1).unwrap().status(), CallStatus::Success);
        assert!(!table.set_queued(2), "unknown");
    }

    #[test]
    fn a_call_tree_is_limited_in_size() {
        let table = CallTable::new(Retention::default());
        table.insert(running(1), 3, 0, false).unwrap();
        let child = |id, parent| CallRecord {
            parent_id: parent,
            ..running(id)
        };
        table.insert(child(2, 1), 3, 0, false).unwrap();
        table.insert(child(3, 2), 3, 0, false).unwrap();
        let err = table.insert(child(4, 3), 3, 0, false).unwrap_err();
        assert_eq!(
            err.message,
            "the calls started by call 1 have reached their limit of 3"
        );
        table.insert(running(5), 3, 0, false).unwrap();
        table.insert(child(6, 5), 3, 0, false).unwrap();
    }

    #[test]
    fn a_users_unfinished_calls_are_limited_and_each_end_makes_room() {
        let table = CallTable::new(Retention::default());
        let of = |id, user: &str| CallRecord {
            user: user.into(),
            ..running(id)
        };
        table.insert(of(1, "a"), 100, 2, false).unwrap();
        table.insert(of(2, "a"), 100, 2, true).unwrap();
        let refused = table.insert(of(3, "a"), 100, 2, false).unwrap_err();
        assert_eq!(refused.code, fwasm_proto::ErrorCode::ResourceExhausted);
        assert!(
            refused.message.contains("quota of 2 concurrent calls"),
            "{refused:?}"
        );
        table.insert(of(4, "b"), 100, 2, false).unwrap();
        table.finish(&success(1, b""));
        table.finish(&success(1, b"")); // a second report ends nothing more
        table.insert(of(5, "a"), 100, 2, false).unwrap();
        assert!(table.insert(of(6, "a"), 100, 2, false).is_err());
        // Lost calls end too (5, not 2: the scheduler's own dispatcher reports that one).
        table.fail_lost("");
        table.insert(of(6, "a"), 100, 2, false).unwrap();
        assert!(table.insert(of(7, "a"), 100, 2, false).is_err());
        table.insert(of(7, "a"), 100, 0, false).unwrap();
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_placement_at_the_quota_waits_briefly_for_a_report_on_its_way() {
        let table = Arc::new(CallTable::new(Retention::default()));
        let of = |id, user: &str| CallRecord {
            user: user.into(),
            ..running(id)
        };
        let grace = Duration::from_secs(1);
        table.insert(of(1, "a"), 100, 1, false).unwrap();
        // Two wait for the one slot: a report that lands within the grace lets one in; the
        // other goes on waiting, and is let in by the next.
        let waiting: Vec<_> = [2, 3]
            .into_iter()
            .map(|id| {
                let table = table.clone();
                tokio::spawn(
                    async move { table.insert_within(of(id, "a"), 100, 1, false, grace).await },
                )
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(waiting.iter().all(|w| !w.is_finished()), "they wait");
        table.finish(&success(1, b""));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(waiting.iter().filter(|w| w.is_finished()).count(), 1);
        let second = if waiting[0].is_finished() { 2 } else { 3 };
        table.finish(&success(second, b""));
        for placement in waiting {
            placement.await.unwrap().unwrap();
        }
        // None ends within the grace: refused once it has passed.
        let started = tokio::time::Instant::now();
        let refused = table.insert_within(of(4, "a"), 100, 1, false, grace).await;
        assert!(refused.is_err());
        assert_eq!(started.elapsed(), grace);
        assert!(
            table.calls().waiting_for_room.is_empty(),
            "no wake-ups left behind"
        );
        // Room, or no limit: no wait at all.
        let started = tokio::time::Instant::now();
        table
            .insert_within(of(5, "b"), 100, 1, false, grace)
            .await
            .unwrap();
        table
            .insert_within(of(6, "a"), 100, 0, false, grace)
            .await
            .unwrap();
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[test]
    fn answered_sync_calls_are_evicted_before_background_and_chained_ones() {
        let table = CallTable::new(Retention {
            max_age: Duration::from_secs(3600),
            max_calls: 3,
            max_output_bytes: usize::MAX,
            ..Retention::default()
        });
        let chained = |id| CallRecord {
            parent_id: 1,
            ..running(id)
        };
        table.insert(running(1), 100, 0, true).unwrap(); // background
        table.insert(chained(2), 100, 0, false).unwrap();
        table.finish(&success(1, b"async"));
        table.finish(&success(2, b"child"));
        // A flood of synchronous calls: each pushes out the oldest synchronous one only.
        for id in 10..20 {
            table.insert(running(id), 100, 0, false).unwrap();
            table.finish(&success(id, b"sync"));
            assert!(
                table.get(1).is_some() && table.get(2).is_some(),
                "call {id}"
            );
        }
        assert!(table.get(18).is_none());
        assert!(table.get(19).is_some(), "the newest stays");
        // With no synchronous call left to go, the oldest awaited one goes.
        table.insert(running(20), 100, 0, true).unwrap();
        table.finish(&success(20, b"async"));
        assert!(table.get(19).is_none());
        assert!(table.get(1).is_some());
        table.insert(running(21), 100, 0, true).unwrap();
        table.finish(&success(21, b"async"));
        assert!(table.get(1).is_none(), "the oldest awaited call goes last");
        assert!(table.get(2).is_some() && table.get(20).is_some() && table.get(21).is_some());
    }

    #[test]
    fn finished_calls_are_evicted_oldest_first_by_count_bytes_and_age() {
        let table = CallTable::new(Retention {
            max_age: Duration::from_secs(3600),
            max_calls: 2,
            max_output_bytes: 10,
            ..Retention::default()
        });
        for id in 1..=5 {
            table.insert(running(id), 100, 0, false).unwrap();
        }
        table.finish(&success(1, b"a"));
        table.finish(&success(2, b"b"));
        table.finish(&success(3, b"c"));
        assert!(table.get(1).is_none(), "over the count");
        assert!(table.get(2).is_some() && table.get(3).is_some());
        table.finish(&success(4, b"0123456789"));
        assert!(
            table.get(2).is_none() && table.get(3).is_none(),
            "over the bytes"
        );
        assert!(table.get(4).is_some());
        assert_eq!(
            table.get(5).unwrap().status(),
            CallStatus::Running,
            "running calls are never evicted"
        );

        let table = CallTable::new(Retention {
            max_age: Duration::ZERO,
            ..Retention::default()
        });
        table.insert(running(1), 100, 0, false).unwrap();
        table.insert(running(2), 100, 0, false).unwrap();
        table.finish(&success(1, b"a"));
        table.finish(&success(2, b"b"));
        std::thread::sleep(Duration::from_millis(2));
        assert!(table.get(1).is_none(), "past its age");
        assert!(table.get(2).is_some(), "the newest finished call stays");
    }
}
