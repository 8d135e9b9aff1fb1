//! Global reader/writer locks on state keys, held here in the state service for executors
//! anywhere. They live in this process's memory: a restart of the state service frees every
//! lock (holders learn of it when their unlock is refused). Every lock has a lease: a holder that vanishes (a crashed executor) cannot block
//! a key for longer than its lease. Waiters are woken when a lock is released, and are granted
//! the lock in the order they started waiting, so none waits for ever behind newcomers.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Read,
    Write,
}

#[derive(Default)]
pub(crate) struct GlobalLocks {
    keys: Mutex<HashMap<(String, String), KeyLock>>,
}

#[derive(Default)]
struct KeyLock {
    writer: Option<(String, Instant)>,
    readers: HashMap<String, Instant>,
    /// Woken whenever a holder lets go or the queue moves.
    released: Arc<Notify>,
    /// Tickets of the waiting requests, oldest first; only the oldest may be granted.
    queue: VecDeque<u64>,
    next_ticket: u64,
}

impl KeyLock {
    fn drop_expired(&mut self, now: Instant) {
        if self.writer.as_ref().is_some_and(|(_, until)| *until <= now) {
            self.writer = None;
        }
        self.readers.retain(|_, until| *until > now);
    }

    /// Grants the lock if it is free for `holder` (a holder asking again keeps what it has).
    fn try_grant(&mut self, mode: Mode, holder: &str, until: Instant) -> bool {
        let writer = self.writer.as_ref().map(|(h, _)| h.as_str());
        let granted = match mode {
            Mode::Write => {
                writer.is_none_or(|w| w == holder)
                    && self.readers.keys().all(|reader| reader == holder)
            }
            Mode::Read => writer.is_none_or(|w| w == holder),
        };
        if granted {
            match mode {
                Mode::Write => self.writer = Some((holder.to_string(), until)),
                Mode::Read => {
                    self.readers.insert(holder.to_string(), until);
                }
            }
        }
        granted
    }

    /// When the earliest lease ends, if anyone holds the lock.
    fn next_expiry(&self) -> Option<Instant> {
        let writer = self.writer.as_ref().map(|(_, until)| *until);
        writer
            .into_iter()
            .chain(self.readers.values().copied())
            .min()
    }

    fn is_idle(&self) -> bool {
        self.writer.is_none() && self.readers.is_empty() && self.queue.is_empty()
    }
}

impl GlobalLocks {
    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), KeyLock>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the lock for `holder` for `lease`, waiting up to `wait`. False if not granted.
    pub(crate) async fn lock(
        &self,
        user: &str,
        key: &str,
        mode: Mode,
        holder: &str,
        lease: Duration,
        wait: Duration,
    ) -> bool {
        let id = (user.to_string(), key.to_string());
        let deadline = Instant::now() + wait;
        // Our place in the key's queue once we wait; it is given up however this ends (when
        // dropped, after the table's guard), a caller that stops waiting included.
        let mut queued: Option<Queued> = None;
        loop {
            let (released, wake_at) = {
                let mut keys = self.keys();
                let lock = keys.entry(id.clone()).or_default();
                let now = Instant::now();
                lock.drop_expired(now);
                // Newcomers queue behind waiters instead of overtaking them.
                let turn = match &queued {
                    Some(queued) => lock.queue.front() == Some(&queued.ticket),
                    None => lock.queue.is_empty(),
                };
                if turn && lock.try_grant(mode, holder, now + lease) {
                    if queued.is_some() {
                        lock.queue.pop_front();
                        // The next in line may be a reader that can share.
                        lock.released.notify_waiters();
                    }
                    return true;
                }
                if now >= deadline {
                    return false;
                }
                if queued.is_none() {
                    lock.queue.push_back(lock.next_ticket);
                    queued = Some(Queued {
                        locks: self,
                        id: id.clone(),
                        ticket: lock.next_ticket,
                    });
                    lock.next_ticket += 1;
                }
                let wake_at = lock.next_expiry().map_or(deadline, |e| e.min(deadline));
                // Registered while the table is locked, so no release can slip in unseen.
                let mut released = Box::pin(lock.released.clone().notified_owned());
                released.as_mut().enable();
                (released, wake_at)
            };
            let _ = tokio::time::timeout_at(wake_at.into(), released).await;
        }
    }

    /// Releases what `holder` holds on the key. False if it held nothing.
    pub(crate) fn unlock(&self, user: &str, key: &str, holder: &str) -> bool {
        let id = (user.to_string(), key.to_string());
        let mut keys = self.keys();
        let Some(lock) = keys.get_mut(&id) else {
            return false;
        };
        let mut held = lock.readers.remove(holder).is_some();
        if lock.writer.as_ref().is_some_and(|(h, _)| h == holder) {
            lock.writer = None;
            held = true;
        }
        lock.released.notify_waiters();
        if lock.is_idle() {
            keys.remove(&id);
        }
        held
    }
}

/// A place in a key's queue, given up when dropped.
struct Queued<'a> {
    locks: &'a GlobalLocks,
    id: (String, String),
    ticket: u64,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        let mut keys = self.locks.keys();
        if let Some(lock) = keys.get_mut(&self.id) {
            let before = lock.queue.len();
            lock.queue.retain(|waiting| *waiting != self.ticket);
            if lock.queue.len() != before {
                lock.released.notify_waiters();
            }
            if lock.is_idle() {
                keys.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(10);
    const NOW: Duration = Duration::ZERO;

    #[tokio::test]
    async fn readers_share_and_a_writer_excludes() {
        let locks = GlobalLocks::default();
        assert!(locks.lock("u", "k", Mode::Read, "a", LEASE, NOW).await);
        assert!(locks.lock("u", "k", Mode::Read, "b", LEASE, NOW).await);
        assert!(!locks.lock("u", "k", Mode::Write, "c", LEASE, NOW).await);
        assert!(locks.unlock("u", "k", "a") && locks.unlock("u", "k", "b"));
        assert!(locks.lock("u", "k", Mode::Write, "c", LEASE, NOW).await);
        assert!(!locks.lock("u", "k", Mode::Read, "a", LEASE, NOW).await);
        assert!(
            locks.lock("v", "k", Mode::Write, "a", LEASE, NOW).await,
            "another user's key is another lock"
        );
        assert!(!locks.unlock("u", "k", "nobody"));
    }

    #[tokio::test]
    async fn a_waiter_gets_the_lock_when_it_is_released() {
        let locks = Arc::new(GlobalLocks::default());
        assert!(locks.lock("u", "k", Mode::Write, "a", LEASE, NOW).await);
        let waiter = tokio::spawn({
            let locks = locks.clone();
            async move {
                let started = Instant::now();
                let granted = locks
                    .lock("u", "k", Mode::Write, "b", LEASE, Duration::from_secs(60))
                    .await;
                (granted, started.elapsed())
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        locks.unlock("u", "k", "a");
        let (granted, waited) = waiter.await.unwrap();
        assert!(granted);
        assert!(
            waited < Duration::from_secs(30),
            "woken, not timed out: {waited:?}"
        );
    }

    #[tokio::test]
    async fn waiters_are_granted_in_the_order_they_came() {
        let locks = Arc::new(GlobalLocks::default());
        assert!(
            locks
                .lock("u", "k", Mode::Write, "holder", LEASE, NOW)
                .await
        );
        let (order, received) = tokio::sync::mpsc::unbounded_channel();
        let mut waiters = Vec::new();
        for name in ["first", "second", "third"] {
            let (locks, order) = (locks.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                let wait = Duration::from_secs(5);
                assert!(locks.lock("u", "k", Mode::Write, name, LEASE, wait).await);
                order.send(name).unwrap();
                locks.unlock("u", "k", name);
            }));
            // Each starts waiting before the next arrives.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            !locks
                .lock("u", "k", Mode::Write, "newcomer", LEASE, NOW)
                .await,
            "a newcomer does not overtake the queue"
        );
        locks.unlock("u", "k", "holder");
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
        let locks = Arc::new(GlobalLocks::default());
        assert!(
            locks
                .lock("u", "k", Mode::Write, "holder", LEASE, NOW)
                .await
        );
        let quitter = tokio::spawn({
            let locks = locks.clone();
            async move {
                let wait = Duration::from_secs(60);
                locks
                    .lock("u", "k", Mode::Write, "quitter", LEASE, wait)
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        quitter.abort();
        let _ = quitter.await;
        locks.unlock("u", "k", "holder");
        assert!(
            locks.lock("u", "k", Mode::Write, "next", LEASE, NOW).await,
            "nobody is left queued ahead"
        );
    }

    #[tokio::test]
    async fn a_lease_ends_a_vanished_holders_lock() {
        let locks = GlobalLocks::default();
        // Long enough that the next line surely runs before it ends, on a loaded machine too.
        let short = Duration::from_secs(1);
        assert!(
            locks
                .lock("u", "k", Mode::Write, "crashed", short, NOW)
                .await
        );
        assert!(!locks.lock("u", "k", Mode::Write, "b", LEASE, NOW).await);
        assert!(
            locks
                .lock("u", "k", Mode::Write, "b", LEASE, Duration::from_secs(5))
                .await
        );
    }
}
