//! The calls this executor has admitted and not yet ended, by id, so that one can be
//! cancelled. Cancelling sets the call's token: its worker ends it before its next slice, and
//! whatever it is parked on hands it back at once (an op on the runtime races the token; a
//! wait answered by a worker is taken back by the executor).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub(crate) struct Cancels {
    /// Each live call's token, with the registration it came from (an id seen twice, as a
    /// retried call may be, keeps the newest).
    live: Mutex<HashMap<u64, (u64, CancellationToken)>>,
    next_registration: AtomicU64,
}

/// A call's place among the cancellable ones, until dropped with the call.
pub(crate) struct Cancellable {
    id: u64,
    registration: u64,
    token: CancellationToken,
    cancels: Arc<Cancels>,
}

impl Cancels {
    /// Makes call `id` cancellable until the returned handle drops.
    pub(crate) fn register(self: &Arc<Self>, id: u64) -> Cancellable {
        let registration = self.next_registration.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        self.lock().insert(id, (registration, token.clone()));
        Cancellable {
            id,
            registration,
            token,
            cancels: self.clone(),
        }
    }

    /// Cancels call `id`; false if it is not live here.
    pub(crate) fn cancel(&self, id: u64) -> bool {
        let token = self.lock().get(&id).map(|(_, token)| token.clone());
        token.map(|token| token.cancel()).is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (u64, CancellationToken)>> {
        // Nothing panics while holding it; if something did, the map is still whole.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Cancellable {
    pub(crate) fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The token, for what waits on the call's behalf to race.
    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }
}

impl Drop for Cancellable {
    fn drop(&mut self) {
        let mut live = self.cancels.lock();
        if live
            .get(&self.id)
            .is_some_and(|(registration, _)| *registration == self.registration)
        {
            live.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_cancellable_while_its_handle_lives_and_the_newest_registration_counts() {
        let cancels = Arc::new(Cancels::default());
        let first = cancels.register(7);
        let second = cancels.register(7);
        drop(first);
        assert!(cancels.cancel(7), "the newer registration is still live");
        assert!(second.is_cancelled());
        drop(second);
        assert!(!cancels.cancel(7));
        assert!(!cancels.cancel(8));
    }
}
