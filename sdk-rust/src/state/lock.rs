//! Locks on state keys, held by a guard that releases them when dropped.
//!
//! Locks are advisory: they only coordinate calls that take them. Local locks are shared by
//! the calls on this executor; global locks are held in the state service for every executor.
//! Waiting for one parks the call without holding a thread. A call holds at most one local and
//! one global lock per key: to switch between read and write it unlocks first.

use fwasm_abi::lock_mode;

use super::status;
use crate::{Error, host};

/// A lock on a state key, released when dropped (or by `unlock`). The host also releases
/// every lock a call still holds when the call ends.
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct StateLock {
    key: String,
    mode: i32,
    /// False once released, so that drop does not release it again.
    held: bool,
}

impl StateLock {
    /// The key this lock is on.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Releases the lock, reporting an error that dropping the guard would ignore.
    pub fn unlock(mut self) -> Result<(), Error> {
        self.held = false;
        status(host::state::unlock(&self.key, self.mode))
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        if self.held {
            // Nothing to do about a failure here: the host releases the lock at call end.
            host::state::unlock(&self.key, self.mode);
        }
    }
}

/// A shared lock on the key among the calls on this executor.
pub fn lock_read(key: &str) -> Result<StateLock, Error> {
    lock(key, lock_mode::LOCAL_READ)
}

/// An exclusive lock on the key among the calls on this executor.
pub fn lock_write(key: &str) -> Result<StateLock, Error> {
    lock(key, lock_mode::LOCAL_WRITE)
}

/// A shared lock on the key across all executors.
pub fn lock_global_read(key: &str) -> Result<StateLock, Error> {
    lock(key, lock_mode::GLOBAL_READ)
}

/// An exclusive lock on the key across all executors.
pub fn lock_global_write(key: &str) -> Result<StateLock, Error> {
    lock(key, lock_mode::GLOBAL_WRITE)
}

/// Waits for the lock, as long as this call's time limit allows.
fn lock(key: &str, mode: i32) -> Result<StateLock, Error> {
    status(host::state::lock(key, mode))?;
    Ok(StateLock {
        key: key.to_string(),
        mode,
        held: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::state::UNLOCKS;
    use crate::state::tests::needs_the_host;

    fn held(key: &str, mode: i32) -> StateLock {
        StateLock {
            key: key.into(),
            mode,
            held: true,
        }
    }

    fn unlocks() -> Vec<(String, i32)> {
        UNLOCKS.take()
    }

    #[test]
    fn off_wasm_locking_reports_that_it_needs_the_host() {
        assert_eq!(lock_read("k").map(drop), Err(needs_the_host()));
        assert_eq!(lock_write("k").map(drop), Err(needs_the_host()));
        assert_eq!(lock_global_read("k").map(drop), Err(needs_the_host()));
        assert_eq!(lock_global_write("k").map(drop), Err(needs_the_host()));
        // A lock never granted is never released.
        assert_eq!(unlocks(), []);
    }

    #[test]
    fn dropping_a_guard_releases_its_lock_once() {
        drop(held("a", lock_mode::LOCAL_WRITE));
        assert_eq!(unlocks(), [("a".to_string(), lock_mode::LOCAL_WRITE)]);
    }

    #[test]
    fn unlock_releases_once_and_reports_the_hosts_answer() {
        let lock = held("b", lock_mode::GLOBAL_READ);
        assert_eq!(lock.key(), "b");
        assert_eq!(lock.unlock(), Err(needs_the_host()));
        assert_eq!(unlocks(), [("b".to_string(), lock_mode::GLOBAL_READ)]);
    }
}
