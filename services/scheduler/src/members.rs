//! The executors calls can be placed on: configured ones, which are always members, and ones
//! that joined by heartbeat, which stay while they keep beating. Placement prefers an executor
//! that has the module warm, then the least loaded, and answers "all full" rather than queue
//! without bound.

use std::collections::HashSet;
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fwasm_proto::ApiError;
use fwasm_proto::pb::ExecutorHeartbeat;

use crate::scheduler::ExecutorEndpoint;

/// How many more calls than the least loaded executor a warm one may hold and still be chosen.
const WARM_SLACK: u32 = 4;

pub(crate) struct Members {
    members: RwLock<Vec<Member>>,
    /// A joined member silent this long is removed.
    timeout: Duration,
    /// Breaks ties between equally loaded executors, so work spreads.
    next: AtomicUsize,
}

struct Member {
    endpoint: ExecutorEndpoint,
    /// Calls from outside it admits at once; 0 = unknown, treated as no limit.
    capacity: u32,
    /// Calls it holds: as last reported, plus those placed on it since.
    live: u32,
    warm: HashSet<String>,
    /// `None` for a configured member, which never expires.
    last_seen: Option<Instant>,
    /// A call placed on it could not reach it: no more placements until it beats again, so
    /// a dead executor (looking empty) does not draw every call until it is swept.
    suspect: bool,
}

impl Member {
    /// Beat within `timeout` (a configured member always is).
    fn alive(&self, now: Instant, timeout: Duration) -> bool {
        self.last_seen
            .is_none_or(|seen| now.duration_since(seen) < timeout)
    }

    fn has_room(&self) -> bool {
        self.capacity == 0 || self.live < self.capacity
    }

    fn load(&self) -> f64 {
        if self.capacity == 0 {
            f64::from(self.live)
        } else {
            f64::from(self.live) / f64::from(self.capacity)
        }
    }
}

impl Members {
    pub(crate) fn new(configured: Vec<ExecutorEndpoint>, timeout: Duration) -> Self {
        let members = configured
            .into_iter()
            .map(|endpoint| Member {
                endpoint,
                capacity: 0,
                live: 0,
                warm: HashSet::new(),
                last_seen: None,
                suspect: false,
            })
            .collect();
        Self {
            members: RwLock::new(members),
            timeout,
            next: AtomicUsize::new(0),
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Member>> {
        self.members.write().unwrap_or_else(|p| p.into_inner())
    }

    /// How long a joined member may stay silent.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn count(&self) -> usize {
        self.members.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Records a heartbeat: a new executor joins, a known one updates its load and modules.
    pub(crate) fn beat(&self, beat: ExecutorHeartbeat) {
        let mut members = self.write();
        let seen = Some(Instant::now());
        match members
            .iter_mut()
            .find(|m| m.endpoint.id == beat.executor_id)
        {
            Some(member) => {
                member.capacity = beat.capacity;
                member.suspect = false;
                member.live = beat.live_calls;
                member.warm = beat.warm_modules.into_iter().collect();
                if member.last_seen.is_some() {
                    member.last_seen = seen;
                    member.endpoint.addr = beat.addr;
                }
            }
            None => {
                tracing::info!(executor = %beat.executor_id, addr = %beat.addr, "executor joined");
                members.push(Member {
                    endpoint: ExecutorEndpoint {
                        id: beat.executor_id,
                        addr: beat.addr,
                    },
                    capacity: beat.capacity,
                    live: beat.live_calls,
                    warm: beat.warm_modules.into_iter().collect(),
                    last_seen: seen,
                    suspect: false,
                });
            }
        }
    }

    /// Where executor `executor_id` is reached, if it is a member.
    pub(crate) fn endpoint(&self, executor_id: &str) -> Option<ExecutorEndpoint> {
        let members = self.write();
        let member = members.iter().find(|m| m.endpoint.id == executor_id)?;
        Some(member.endpoint.clone())
    }

    /// A call was placed on `executor_id` without choosing (from a lease).
    pub(crate) fn call_placed(&self, executor_id: &str) {
        let mut members = self.write();
        if let Some(member) = members.iter_mut().find(|m| m.endpoint.id == executor_id) {
            member.live += 1;
        }
    }

    /// A call placed on `executor_id` ended: it holds one call fewer (until its next beat says).
    pub(crate) fn call_ended(&self, executor_id: &str) {
        let mut members = self.write();
        if let Some(member) = members.iter_mut().find(|m| m.endpoint.id == executor_id) {
            member.live = member.live.saturating_sub(1);
        }
    }

    /// A call could not reach `executor_id`: place nothing more there until it beats again.
    /// Configured members (which never beat) are left alone.
    pub(crate) fn suspect(&self, executor_id: &str) {
        let mut members = self.write();
        if let Some(member) = members
            .iter_mut()
            .find(|m| m.endpoint.id == executor_id && m.last_seen.is_some())
        {
            member.suspect = true;
        }
    }

    /// Returns once `executor_id` is no longer a member (it stopped beating and was swept),
    /// as the error a call on it ends with.
    pub(crate) async fn gone(&self, executor_id: &str) -> ApiError {
        loop {
            tokio::time::sleep(self.timeout / 3).await;
            let present = self
                .members
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .any(|m| m.endpoint.id == executor_id);
            if !present {
                return ApiError::unavailable(format!(
                    "executor {executor_id} stopped beating while it ran the call"
                ));
            }
        }
    }

    /// Removes joined members that stopped beating; returns their ids.
    pub(crate) fn expire(&self) -> Vec<String> {
        let now = Instant::now();
        let mut members = self.write();
        let mut gone = Vec::new();
        members.retain(|m| {
            let alive = m.alive(now, self.timeout);
            if !alive {
                tracing::warn!(executor = %m.endpoint.id, "executor stopped beating; removed");
                gone.push(m.endpoint.id.clone());
            }
            alive
        });
        gone
    }

    /// The executor for a call of `module_hash`: one with the module warm and room, else the
    /// least loaded with room; never `busy` when there is another.
    /// The executor a new function's first call would go to (the least loaded live one with
    /// room), marked as having its module warm so that call goes there: for it to prepare.
    pub(crate) fn warm_up(&self, module_hash: &str) -> Option<ExecutorEndpoint> {
        let mut members = self.write();
        let now = Instant::now();
        let total = members.len();
        // Ties broken in turn, as placement does, so new functions spread out.
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let index = (0..total)
            .map(|i| (start + i) % total)
            .filter(|&i| {
                let m = &members[i];
                m.alive(now, self.timeout) && m.has_room() && !m.suspect
            })
            .min_by(|&a, &b| members[a].load().total_cmp(&members[b].load()))?;
        let chosen = &mut members[index];
        chosen.warm.insert(module_hash.to_string());
        Some(chosen.endpoint.clone())
    }

    pub(crate) fn choose(
        &self,
        module_hash: &str,
        busy: &str,
    ) -> Result<ExecutorEndpoint, ApiError> {
        let mut members = self.write();
        // A silent member counts as gone already; the next sweep removes it and fails its calls.
        let now = Instant::now();
        let total = members.len();
        if !members.iter().any(|m| m.alive(now, self.timeout)) {
            return Err(ApiError::unavailable(
                "no executors are available to run calls",
            ));
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let usable = |m: &Member| {
            (total == 1 || m.endpoint.id != busy)
                && m.alive(now, self.timeout)
                && m.has_room()
                && !m.suspect
        };
        let best = |warm_only: bool| {
            (0..total)
                .map(|i| (start + i) % total)
                .filter(|&i| usable(&members[i]))
                .filter(|&i| !warm_only || members[i].warm.contains(module_hash))
                .min_by(|&a, &b| members[a].load().total_cmp(&members[b].load()))
        };
        let Some(least) = best(false) else {
            return Err(ApiError::resource_exhausted(format!(
                "all {total} executors are running as many calls as they admit; retry shortly"
            )));
        };
        // A warm executor saves a cold start, but not at any price: once it holds a few more
        // calls than the least loaded one, a busy function spreads out.
        let index = match best(true) {
            Some(warm) if members[warm].live <= members[least].live + WARM_SLACK => warm,
            _ => least,
        };
        let member = &mut members[index];
        // Counted now, so placements between heartbeats spread too.
        member.live += 1;
        member.warm.insert(module_hash.to_string());
        Ok(member.endpoint.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(id: &str, capacity: u32, live: u32, warm: &[&str]) -> ExecutorHeartbeat {
        ExecutorHeartbeat {
            executor_id: id.into(),
            addr: format!("{id}:1"),
            capacity,
            live_calls: live,
            warm_modules: warm.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn warm_then_least_loaded_then_full() {
        let members = Members::new(Vec::new(), Duration::from_secs(3));
        members.beat(beat("a", 4, 3, &["m"]));
        members.beat(beat("b", 4, 0, &[]));
        assert_eq!(members.choose("m", "").unwrap().id, "a", "warm wins");
        assert_eq!(members.choose("m", "").unwrap().id, "b", "a is full now");
        assert_eq!(members.choose("other", "").unwrap().id, "b", "least loaded");
        members.beat(beat("a", 4, 4, &["m"]));
        members.beat(beat("b", 4, 4, &[]));
        let err = members.choose("m", "").unwrap_err();
        assert_eq!(err.code, fwasm_proto::ErrorCode::ResourceExhausted);
    }

    #[test]
    fn a_busy_function_spreads_beyond_its_warm_executor() {
        let members = Members::new(Vec::new(), Duration::from_secs(3));
        members.beat(beat("a", 0, 0, &["m"]));
        members.beat(beat("b", 0, 0, &[]));
        let placed: Vec<String> = (0..12)
            .map(|_| members.choose("m", "").unwrap().id)
            .collect();
        let on_a = placed.iter().filter(|id| *id == "a").count();
        assert_eq!(&placed[..5], ["a"; 5], "warm first");
        assert!(on_a < 12, "then spread: {placed:?}");
    }

    #[test]
    fn a_suspect_member_gets_nothing_until_it_beats_again() {
        let members = Members::new(Vec::new(), Duration::from_secs(3));
        members.beat(beat("a", 0, 0, &[]));
        members.beat(beat("b", 0, 5, &[]));
        members.suspect("a");
        assert_eq!(members.choose("m", "").unwrap().id, "b");
        members.beat(beat("a", 0, 0, &[]));
        assert_eq!(members.choose("m", "").unwrap().id, "a");
    }

    #[test]
    fn silent_members_are_removed_and_configured_ones_stay() {
        let configured = ExecutorEndpoint {
            id: "local".into(),
            addr: String::new(),
        };
        let members = Members::new(vec![configured], Duration::from_millis(20));
        members.beat(beat("joined", 0, 0, &[]));
        assert_eq!(members.count(), 2);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(members.expire(), ["joined"]);
        assert_eq!(members.count(), 1);
    }
}
