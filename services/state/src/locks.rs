//! Global reader/writer locks on state keys, for executors anywhere and for apps (the runtime
//! APIs' TryLock). Who holds a lock is kept by the backend, like state, so a restart of the
//! state service neither frees nor loses a lock; every hold has a lease, so a holder that
//! vanishes (a crashed executor) cannot block a key for longer than its lease.
//!
//! What lives here, in memory, is the waiting: waiters queue per key and are granted the lock
//! in the order they started waiting, so none waits for ever behind newcomers; a release
//! through this service wakes the first at once. Holds given up elsewhere (another state
//! service on the same Redis, a lease ending) are seen by looking again every
//! [`LOOK_AGAIN`] or when the first other lease ends.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::backend::{Backend, BackendError, LockMode, Unlocked};

/// How often a waiter looks at the lock again when nothing here woke it.
const LOOK_AGAIN: Duration = Duration::from_millis(200);

pub(crate) struct GlobalLocks {
    keys: Mutex<HashMap<(String, String), Waiting>>,
    look_again: Duration,
}

impl Default for GlobalLocks {
    fn default() -> Self {
        GlobalLocks {
            keys: Mutex::default(),
            look_again: LOOK_AGAIN,
        }
    }
}

/// The waiters of one key.
#[derive(Default)]
struct Waiting {
    /// Tickets of the waiting requests, oldest first, each with what wakes it; only the
    /// oldest may be granted, so only it is woken when a holder lets go here or the queue
    /// moves (waking every waiter would make a queue of n cost n wake-ups per hand-over).
    queue: VecDeque<(u64, Arc<Notify>)>,
    next_ticket: u64,
}

impl Waiting {
    /// Wakes the first in line, now or (a permit kept) as soon as it next waits.
    fn wake_first(&self) {
        if let Some((_, wake)) = self.queue.front() {
            wake.notify_one();
        }
    }
}

/// A lock request.
pub(crate) struct Ask<'a> {
    pub user: &'a str,
    pub key: &'a str,
    pub holder: &'a str,
    pub mode: LockMode,
    pub lease: Duration,
    /// How long to wait for it; zero = try once.
    pub wait: Duration,
    /// Whether a holder asking again renews its hold (a function's calls) or is refused
    /// (an app's TryLock).
    pub reentrant: bool,
}

impl GlobalLocks {
    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Waiting>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the lock, waiting up to `ask.wait`. False if not granted.
    pub(crate) async fn lock(
        &self,
        backend: &dyn Backend,
        ask: Ask<'_>,
    ) -> Result<bool, BackendError> {
        let id = (ask.user.to_string(), ask.key.to_string());
        let deadline = Instant::now() + ask.wait;
        // Our place in the key's queue once we wait; it is given up however this ends (when
        // dropped), a caller that stops waiting included.
        let mut queued: Option<Queued> = None;
        loop {
            let turn = {
                let mut keys = self.keys();
                let waiting = keys.entry(id.clone()).or_default();
                // Newcomers queue behind waiters instead of overtaking them.
                match &queued {
                    Some(queued) => {
                        waiting.queue.front().map(|(ticket, _)| *ticket) == Some(queued.ticket)
                    }
                    None => waiting.queue.is_empty(),
                }
            };
            let mut look_again = self.look_again;
            if turn {
                let tried = backend
                    .try_lock(
                        ask.user,
                        ask.key,
                        ask.holder,
                        ask.mode,
                        ask.lease,
                        ask.reentrant,
                    )
                    .await;
                let tried = match tried {
                    Ok(tried) => tried,
                    Err(err) => {
                        drop(queued);
                        self.forget_if_idle(&id);
                        return Err(err);
                    }
                };
                if tried.granted {
                    if let Some(queued) = queued.take() {
                        // Leaving the queue wakes the next in line, who may be a reader.
                        drop(queued);
                    } else {
                        self.forget_if_idle(&id);
                    }
                    return Ok(true);
                }
                if let Some(busy_for) = tried.busy_for {
                    look_again = look_again.min(busy_for + Duration::from_millis(1));
                }
            }
            let now = Instant::now();
            if now >= deadline {
                drop(queued);
                self.forget_if_idle(&id);
                return Ok(false);
            }
            let Some(place) = &queued else {
                let mut keys = self.keys();
                let waiting = keys.entry(id.clone()).or_default();
                let wake = Arc::new(Notify::new());
                waiting.queue.push_back((waiting.next_ticket, wake.clone()));
                queued = Some(Queued {
                    locks: self,
                    id: id.clone(),
                    ticket: waiting.next_ticket,
                    wake,
                });
                waiting.next_ticket += 1;
                // Look again at once: our turn may have come meanwhile.
                continue;
            };
            // A wake-up sent since we last looked was kept (notify_one): none slips by. Only
            // the first in line looks again on its own (for holds given up elsewhere); the
            // others are woken when they become first.
            let wake_at = match turn {
                true => (now + look_again).min(deadline),
                false => deadline,
            };
            let _ = tokio::time::timeout_at(wake_at.into(), place.wake.notified()).await;
        }
    }

    /// Gives up what `holder` holds on the key and wakes its waiters.
    pub(crate) async fn unlock(
        &self,
        backend: &dyn Backend,
        user: &str,
        key: &str,
        holder: &str,
    ) -> Result<Unlocked, BackendError> {
        let found = backend.unlock(user, key, holder).await?;
        if let Some(waiting) = self.keys().get(&(user.to_string(), key.to_string())) {
            waiting.wake_first();
        }
        Ok(found)
    }

    fn forget_if_idle(&self, id: &(String, String)) {
        let mut keys = self.keys();
        if keys.get(id).is_some_and(|waiting| waiting.queue.is_empty()) {
            keys.remove(id);
        }
    }
}

/// A place in a key's queue, given up when dropped.
struct Queued<'a> {
    locks: &'a GlobalLocks,
    id: (String, String),
    ticket: u64,
    /// What wakes this waiter when its turn may have come.
    wake: Arc<Notify>,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        let mut keys = self.locks.keys();
        if let Some(waiting) = keys.get_mut(&self.id) {
            let was_first = waiting.queue.front().map(|(ticket, _)| *ticket) == Some(self.ticket);
            waiting.queue.retain(|(ticket, _)| *ticket != self.ticket);
            // The next in line (a reader may share a lock the one leaving just took).
            if was_first {
                waiting.wake_first();
            }
            if waiting.queue.is_empty() {
                keys.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmbeddedBackend;

    const LEASE: Duration = Duration::from_secs(10);
    const NOW: Duration = Duration::ZERO;
    use LockMode::{Read, Write};

    /// Locks over an embedded store of their own.
    #[derive(Clone)]
    struct Locks {
        backend: Arc<EmbeddedBackend>,
        locks: Arc<GlobalLocks>,
        _dir: Arc<tempfile::TempDir>,
    }

    impl Locks {
        /// Waiters that look again only when woken (or a lease ends), so a test sees
        /// whether they are woken.
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let locks = GlobalLocks {
                look_again: Duration::from_secs(3600),
                ..GlobalLocks::default()
            };
            Locks {
                backend: Arc::new(EmbeddedBackend::open(dir.path()).unwrap()),
                locks: Arc::new(locks),
                _dir: Arc::new(dir),
            }
        }

        async fn lock(
            &self,
            key: &str,
            mode: LockMode,
            holder: &str,
            lease: Duration,
            wait: Duration,
        ) -> bool {
            let ask = Ask {
                user: "u",
                key,
                holder,
                mode,
                lease,
                wait,
                reentrant: true,
            };
            self.locks.lock(self.backend.as_ref(), ask).await.unwrap()
        }

        async fn unlock(&self, key: &str, holder: &str) -> Unlocked {
            let backend = self.backend.as_ref();
            self.locks.unlock(backend, "u", key, holder).await.unwrap()
        }
    }

    /// Waits until `n` callers wait in line for key "k" (each waiter joins the line before
    /// it sleeps, so the count says who is waiting, not how long it took).
    async fn until_queued(locks: &Locks, n: usize) {
        let queued = || {
            let keys = locks.locks.keys();
            keys.get(&("u".into(), "k".into()))
                .map_or(0, |w| w.queue.len())
        };
        while queued() < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn readers_share_and_a_writer_excludes() {
        let locks = Locks::new();
        assert!(locks.lock("k", Read, "a", LEASE, NOW).await);
        assert!(locks.lock("k", Read, "b", LEASE, NOW).await);
        assert!(!locks.lock("k", Write, "c", LEASE, NOW).await);
        assert_eq!(locks.unlock("k", "c").await, Unlocked::HeldByOthers);
        assert_eq!(locks.unlock("k", "a").await, Unlocked::Released);
        assert_eq!(locks.unlock("k", "b").await, Unlocked::Released);
        assert!(locks.lock("k", Write, "c", LEASE, NOW).await);
        assert!(!locks.lock("k", Read, "a", LEASE, NOW).await);
        assert!(
            locks.lock("k2", Write, "a", LEASE, NOW).await,
            "another key is another lock"
        );
        assert_eq!(locks.unlock("k3", "nobody").await, Unlocked::NotLocked);
    }

    #[tokio::test]
    async fn a_holder_asking_again_renews_or_with_try_lock_is_refused() {
        let locks = Locks::new();
        assert!(locks.lock("k", Write, "a", LEASE, NOW).await);
        assert!(locks.lock("k", Read, "a", LEASE, NOW).await, "renewed");
        assert!(
            !locks.lock("k", Read, "b", LEASE, NOW).await,
            "still held to write"
        );
        let again = Ask {
            user: "u",
            key: "k",
            holder: "a",
            mode: Write,
            lease: LEASE,
            wait: NOW,
            reentrant: false,
        };
        let backend = locks.backend.as_ref();
        assert!(!locks.locks.lock(backend, again).await.unwrap());
    }

    #[tokio::test]
    async fn a_waiter_gets_the_lock_when_it_is_released() {
        let locks = Locks::new();
        assert!(locks.lock("k", Write, "a", LEASE, NOW).await);
        let waiter = tokio::spawn({
            let locks = locks.clone();
            async move {
                let started = Instant::now();
                let granted = locks
                    .lock("k", Write, "b", LEASE, Duration::from_secs(60))
                    .await;
                (granted, started.elapsed())
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        locks.unlock("k", "a").await;
        let (granted, waited) = waiter.await.unwrap();
        assert!(granted);
        // Not woken, it would wait for the holder's lease (LEASE) to end.
        assert!(waited < LEASE / 2, "woken, not timed out: {waited:?}");
    }

    #[tokio::test]
    async fn readers_queued_behind_a_writer_all_get_the_lock_from_one_release() {
        // Waiters look again only when woken: each reader granted must wake the next.
        let locks = Locks::new();
        assert!(locks.lock("k", Write, "writer", LEASE, NOW).await);
        let readers: Vec<_> = ["r1", "r2", "r3"]
            .into_iter()
            .map(|name| {
                let waiter = locks.clone();
                tokio::spawn(async move {
                    let wait = Duration::from_secs(30);
                    waiter.lock("k", Read, name, LEASE, wait).await
                })
            })
            .collect();
        until_queued(&locks, readers.len()).await;
        locks.unlock("k", "writer").await;
        for reader in readers {
            assert!(reader.await.unwrap(), "every reader shares the lock");
        }
        assert!(!locks.lock("k", Write, "writer", LEASE, NOW).await);
    }

    #[tokio::test]
    async fn waiters_are_granted_in_the_order_they_came() {
        let locks = Locks::new();
        assert!(locks.lock("k", Write, "holder", LEASE, NOW).await);
        let (order, received) = tokio::sync::mpsc::unbounded_channel();
        let mut waiters = Vec::new();
        for name in ["first", "second", "third"] {
            let (waiter, order) = (locks.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                let wait = Duration::from_secs(30);
                assert!(waiter.lock("k", Write, name, LEASE, wait).await);
                order.send(name).unwrap();
                waiter.unlock("k", name).await;
            }));
            // Each starts waiting before the next arrives.
            until_queued(&locks, waiters.len()).await;
        }
        assert!(
            !locks.lock("k", Write, "newcomer", LEASE, NOW).await,
            "a newcomer does not overtake the queue"
        );
        locks.unlock("k", "holder").await;
        for waiter in waiters {
            waiter.await.unwrap();
        }
        drop(order);
        let mut received = received;
        let mut got = Vec::new();
        while let Some(name) = received.recv().await {
            got.push(name);
        }
        assert_eq!(got, ["first", "second", "third"]);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_leaves_the_queue() {
        let locks = Locks::new();
        assert!(locks.lock("k", Write, "holder", LEASE, NOW).await);
        let quitter = tokio::spawn({
            let locks = locks.clone();
            async move {
                locks
                    .lock("k", Write, "quitter", LEASE, Duration::from_secs(60))
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        quitter.abort();
        let _ = quitter.await;
        locks.unlock("k", "holder").await;
        assert!(
            locks.lock("k", Write, "next", LEASE, NOW).await,
            "nobody is left queued ahead"
        );
    }

    #[tokio::test]
    async fn a_lease_ends_a_vanished_holders_lock() {
        let locks = Locks::new();
        // Long enough that the next line surely runs before it ends, on a loaded machine too.
        let short = Duration::from_secs(1);
        assert!(locks.lock("k", Write, "crashed", short, NOW).await);
        assert!(!locks.lock("k", Write, "b", LEASE, NOW).await);
        assert!(
            locks
                .lock("k", Write, "b", LEASE, Duration::from_secs(5))
                .await
        );
    }
}
