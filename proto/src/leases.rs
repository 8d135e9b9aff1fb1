//! Placement from leases: with the scheduler in another process, asking it to place every
//! call is a network round trip in series with the call itself. Instead a gateway takes a
//! lease per function (a block of call ids and the executor to send them to), and an
//! executor one per function and call tree for the calls it chains (run by itself, their
//! places in the tree's limit reserved); each places calls from its leases and records the
//! calls it started with the scheduler in batches, off the calls' path. Users with a quota of
//! calls get no lease: their calls are placed one by one, where the quota is checked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::api::SchedulerApi;
use crate::outcome::unix_micros;
use crate::pb::{CallRecord, LeaseRequest, Placement, PlacementLease, RecordCallsRequest};
use crate::{ApiError, ErrorCode};
use tokio::sync::mpsc;
use tracing::Instrument;

pub struct Leases {
    scheduler: Arc<dyn SchedulerApi>,
    /// The executor asking, for leases of chained calls ("" for a gateway).
    executor_id: String,
    /// `user/function` -> its lease.
    held: Arc<Mutex<HashMap<String, Held>>>,
    /// Calls started from leases, for the recorder to send.
    started: mpsc::UnboundedSender<CallRecord>,
}

struct Held {
    lease: PlacementLease,
    /// The next of the lease's ids to give, and the first past them.
    next_id: u64,
    end_id: u64,
    until: Instant,
}

/// Tries at taking a fresh lease when calls racing for it use its ids up first.
const LEASE_ATTEMPTS: u32 = 3;

/// Tries at recording a batch, for a scheduler that is restarting: about eight seconds of
/// pauses in all, within the ten the scheduler takes records of a lease for after it ends.
const RECORD_ATTEMPTS: u32 = 14;

impl Leases {
    /// Leases from `scheduler` for `executor_id`'s chained calls, or for a gateway's calls
    /// ("" as `executor_id`); the recorder runs on `runtime`.
    pub fn new(
        scheduler: Arc<dyn SchedulerApi>,
        executor_id: String,
        runtime: &tokio::runtime::Handle,
    ) -> Self {
        let (started, batches) = mpsc::unbounded_channel();
        let held = Arc::default();
        runtime.spawn(record(scheduler.clone(), batches, Arc::clone(&held)).in_current_span());
        Self {
            scheduler,
            executor_id,
            held,
            started,
        }
    }

    /// A placement for a call of `user/function` (chained by a call of `tree`, if given) from
    /// its lease, taking one if needed, and the call recorded; `None` when the scheduler must
    /// place the call (its user has a quota of calls, or its tree no room left).
    pub async fn place(
        &self,
        user: &str,
        function: &str,
        tree: Option<Tree>,
    ) -> Result<Option<Placement>, ApiError> {
        let key = match tree {
            Some(tree) => format!("{user}/{function}/{}", tree.root_id),
            None => format!("{user}/{function}"),
        };
        let parent_id = tree.map_or(0, |tree| tree.parent_id);
        for _ in 0..LEASE_ATTEMPTS {
            match self.take(&key) {
                Taken::Id(placement) => {
                    self.record(&placement, user, function, parent_id);
                    return Ok(Some(placement));
                }
                Taken::PlaceEach => return Ok(None),
                Taken::Nothing => {}
            }
            let lease = self
                .scheduler
                .lease(LeaseRequest {
                    user: user.to_string(),
                    function: function.to_string(),
                    parent_id,
                    executor_id: self.executor_id.clone(),
                })
                .instrument(tracing::debug_span!("lease"))
                .await?;
            self.hold(&key, lease);
        }
        Ok(None)
    }

    /// Drops the leases of `user/function` (its function changed, or its executor failed).
    pub fn forget(&self, user: &str, function: &str) {
        let (exact, tree) = (format!("{user}/{function}"), format!("{user}/{function}/"));
        self.held()
            .retain(|key, _| *key != exact && !key.starts_with(&tree));
    }

    /// Drops every lease of `user` (its quotas changed).
    pub fn forget_user(&self, user: &str) {
        let prefix = format!("{user}/");
        self.held().retain(|key, _| !key.starts_with(&prefix));
    }

    fn take(&self, key: &str) -> Taken {
        let mut held = self.held();
        let Some(lease) = held.get_mut(key).filter(|h| h.until > Instant::now()) else {
            return Taken::Nothing;
        };
        if lease.lease.place_each {
            return Taken::PlaceEach;
        }
        if lease.next_id == lease.end_id {
            return Taken::Nothing;
        }
        let call_id = lease.next_id;
        lease.next_id += 1;
        let lease = &lease.lease;
        Taken::Id(Placement {
            call_id,
            executor_id: lease.executor_id.clone(),
            executor_addr: lease.executor_addr.clone(),
            module_hash: lease.module_hash.clone(),
            settings: lease.settings.clone(),
        })
    }

    fn hold(&self, key: &str, lease: PlacementLease) {
        let now = Instant::now();
        let held = Held {
            next_id: lease.first_call_id,
            end_id: lease.first_call_id + u64::from(lease.call_ids),
            until: now + Duration::from_millis(lease.valid_ms.into()),
            lease,
        };
        let mut leases = self.held();
        // Leases past their time or used up go as new ones come: one per call tree would
        // otherwise stay for good.
        leases.retain(|_, held| {
            held.until > now && (held.lease.place_each || held.next_id < held.end_id)
        });
        leases.insert(key.to_string(), held);
    }

    fn record(&self, placement: &Placement, user: &str, function: &str, parent_id: u64) {
        crate::metrics::meters().leased_calls.increment(1);
        let record = CallRecord {
            id: placement.call_id,
            user: user.to_string(),
            function: function.to_string(),
            parent_id,
            executor_id: placement.executor_id.clone(),
            submitted_unix_micros: unix_micros(),
            trace_id: crate::trace::current_trace_id(),
            ..CallRecord::default()
        };
        // The recorder runs as long as the runtime does.
        let _ = self.started.send(record);
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        lock(&self.held)
    }
}

fn lock(held: &Mutex<HashMap<String, Held>>) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
    held.lock().unwrap_or_else(|p| p.into_inner())
}

/// The call tree a chained call joins: its caller, and the call from outside the tree grew
/// from.
#[derive(Debug, Clone, Copy)]
pub struct Tree {
    pub parent_id: u64,
    pub root_id: u64,
}

enum Taken {
    Id(Placement),
    PlaceEach,
    Nothing,
}

/// Sends what gathered while the last batch was on its way, as one batch. A batch the
/// scheduler refuses (it restarted, and knows nothing of leases before) ends every lease held.
async fn record(
    scheduler: Arc<dyn SchedulerApi>,
    mut started: mpsc::UnboundedReceiver<CallRecord>,
    held: Arc<Mutex<HashMap<String, Held>>>,
) {
    let mut batch = Vec::new();
    while started.recv_many(&mut batch, 1024).await > 0 {
        let request = RecordCallsRequest {
            records: std::mem::take(&mut batch),
        };
        for attempt in 0..RECORD_ATTEMPTS {
            match scheduler.record_calls(request.clone()).await {
                Ok(()) => break,
                Err(err)
                    if attempt + 1 == RECORD_ATTEMPTS || err.code != ErrorCode::Unavailable =>
                {
                    let ids: Vec<u64> = request.records.iter().map(|r| r.id).collect();
                    tracing::error!(?ids, error = %err, "could not record calls started from a lease");
                    lock(&held).clear();
                    break;
                }
                Err(_) => {
                    let pause = Duration::from_millis(50 << attempt.min(4));
                    tokio::time::sleep(pause.min(Duration::from_secs(1))).await
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::{
        CallRef, CallResult, ExecutorHeartbeat, FunctionInfo, HeartbeatReply, PlaceRequest,
        QuotaRef, SubmitRequest, UserQuota, WaitCallRequest,
    };
    use async_trait::async_trait;

    /// Leases of three ids on executor "e" ("place each" for user q), and what was recorded.
    #[derive(Default)]
    struct ThreeIdLeases {
        leases: Mutex<u64>,
        recorded: Mutex<Vec<CallRecord>>,
        recorded_one: tokio::sync::Notify,
        /// Refuse records, as a scheduler that restarted does.
        forgot_leases: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl SchedulerApi for ThreeIdLeases {
        async fn lease(&self, req: LeaseRequest) -> Result<PlacementLease, ApiError> {
            let mut leases = self.leases.lock().unwrap();
            *leases += 1;
            Ok(PlacementLease {
                place_each: req.user == "q",
                first_call_id: *leases * 100,
                call_ids: 3,
                executor_id: match req.parent_id {
                    0 => "e".into(),
                    _ => req.executor_id,
                },
                module_hash: format!("{}-hash", req.function),
                valid_ms: 60_000,
                ..PlacementLease::default()
            })
        }
        async fn record_calls(&self, req: RecordCallsRequest) -> Result<(), ApiError> {
            if self.forgot_leases.load(std::sync::atomic::Ordering::SeqCst) {
                self.recorded_one.notify_waiters();
                return Err(ApiError::invalid_argument("not from a lease of mine"));
            }
            self.recorded.lock().unwrap().extend(req.records);
            self.recorded_one.notify_waiters();
            Ok(())
        }
        async fn place(&self, _: PlaceRequest) -> Result<Placement, ApiError> {
            unreachable!()
        }
        async fn submit(&self, _: SubmitRequest) -> Result<Placement, ApiError> {
            unreachable!()
        }
        async fn function_updated(&self, _: FunctionInfo) -> Result<(), ApiError> {
            unreachable!()
        }
        async fn function_deleted(&self, _: crate::pb::FunctionRef) -> Result<(), ApiError> {
            unreachable!()
        }
        async fn call_finished(&self, _: CallResult) -> Result<(), ApiError> {
            unreachable!()
        }
        async fn calls_finished(&self, _: crate::pb::CallsFinishedRequest) -> Result<(), ApiError> {
            unreachable!()
        }
        async fn get_call(&self, _: CallRef) -> Result<CallRecord, ApiError> {
            unreachable!()
        }
        async fn wait_call(&self, _: WaitCallRequest) -> Result<CallRecord, ApiError> {
            unreachable!()
        }
        async fn heartbeat(&self, _: ExecutorHeartbeat) -> Result<HeartbeatReply, ApiError> {
            unreachable!()
        }
        async fn set_quota(&self, _: UserQuota) -> Result<(), ApiError> {
            unreachable!()
        }
        async fn get_quota(&self, _: QuotaRef) -> Result<UserQuota, ApiError> {
            unreachable!()
        }
    }

    async fn ids(leases: &Leases, user: &str, function: &str, n: usize) -> Vec<u64> {
        let mut ids = Vec::new();
        for _ in 0..n {
            let placement = leases.place(user, function, None).await.unwrap().unwrap();
            assert_eq!(
                (placement.executor_id.as_str(), placement.module_hash),
                ("e", format!("{function}-hash"))
            );
            ids.push(placement.call_id);
        }
        ids
    }

    #[tokio::test]
    async fn calls_take_ids_from_their_functions_lease_and_are_all_recorded() {
        let scheduler = Arc::new(ThreeIdLeases::default());
        let leases = Leases::new(
            scheduler.clone(),
            "e".into(),
            &tokio::runtime::Handle::current(),
        );
        assert_eq!(ids(&leases, "u", "f", 4).await, [100, 101, 102, 200]);
        assert_eq!(
            ids(&leases, "u", "g", 1).await,
            [300],
            "a lease per function"
        );
        assert_eq!(ids(&leases, "u", "f", 1).await, [201]);
        leases.forget("u", "f");
        assert_eq!(
            ids(&leases, "u", "f", 1).await,
            [400],
            "forgotten: a new lease"
        );
        leases.forget_user("u");
        assert_eq!(ids(&leases, "u", "g", 1).await, [500]);
        assert_eq!(*scheduler.leases.lock().unwrap(), 5);

        // A user with a quota: placed one by one, without asking for a lease each time.
        for _ in 0..3 {
            assert!(leases.place("q", "f", None).await.unwrap().is_none());
        }
        assert_eq!(*scheduler.leases.lock().unwrap(), 6);

        until_recorded(&scheduler, &[100, 101, 102, 200, 201, 300, 400, 500]).await;
    }

    /// Waits until the scheduler has recorded exactly `ids`.
    async fn until_recorded(scheduler: &ThreeIdLeases, ids: &[u64]) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let recorded = scheduler.recorded_one.notified();
            tokio::pin!(recorded);
            recorded.as_mut().enable();
            let mut got: Vec<u64> = scheduler
                .recorded
                .lock()
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect();
            got.sort_unstable();
            if got == ids {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "recorded {got:?}");
            let _ = tokio::time::timeout_at(deadline, recorded).await;
        }
    }

    #[tokio::test]
    async fn a_refused_record_ends_every_lease_held() {
        let scheduler = Arc::new(ThreeIdLeases::default());
        let leases = Leases::new(
            scheduler.clone(),
            "e".into(),
            &tokio::runtime::Handle::current(),
        );
        assert_eq!(ids(&leases, "u", "f", 1).await, [100]);
        until_recorded(&scheduler, &[100]).await;
        scheduler
            .forgot_leases
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let refused = scheduler.recorded_one.notified();
        tokio::pin!(refused);
        refused.as_mut().enable();
        assert_eq!(ids(&leases, "u", "f", 1).await, [101]);
        tokio::time::timeout(Duration::from_secs(30), refused)
            .await
            .unwrap();
        // The recorder drops the leases after the refusal it was told of.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !leases.held().is_empty() {
            assert!(Instant::now() < deadline, "the lease is still held");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(ids(&leases, "u", "f", 1).await, [200]);
    }

    #[tokio::test]
    async fn chained_calls_take_a_lease_per_tree_and_are_recorded_with_their_parents() {
        let scheduler = Arc::new(ThreeIdLeases::default());
        let leases = Leases::new(
            scheduler.clone(),
            "e7".into(),
            &tokio::runtime::Handle::current(),
        );
        let chain = |parent_id, root_id| {
            let leases = &leases;
            async move {
                let tree = Tree { parent_id, root_id };
                let placement = leases.place("u", "f", Some(tree)).await.unwrap().unwrap();
                assert_eq!(placement.executor_id, "e7", "run by the executor asking");
                placement.call_id
            }
        };
        let child = chain(1, 1).await;
        let grandchild = chain(child, 1).await;
        let other_tree = chain(5, 5).await;
        assert_eq!((child, grandchild, other_tree), (100, 101, 200));
        assert_eq!(
            ids(&leases, "u", "f", 1).await,
            [300],
            "calls from outside: a lease of their own"
        );
        leases.forget("u", "f");
        assert_eq!(
            chain(1, 1).await,
            400,
            "forgotten with the function's other leases"
        );
        until_recorded(&scheduler, &[100, 101, 200, 300, 400]).await;
        let parents: HashMap<u64, u64> = scheduler
            .recorded
            .lock()
            .unwrap()
            .iter()
            .map(|r| (r.id, r.parent_id))
            .collect();
        assert_eq!(
            [
                parents[&100],
                parents[&101],
                parents[&200],
                parents[&300],
                parents[&400]
            ],
            [1, 100, 5, 0, 1]
        );
    }
}
