//! The local tier of state: one copy of each value per executor, shared by the calls running
//! on it, plus the reader/writer locks those calls take on it ("local" locks).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::RwLock;

#[derive(Default)]
pub(crate) struct LocalState {
    keys: Mutex<HashMap<(String, String), Arc<LocalKey>>>,
}

/// One key on this executor: its copy, if it has one, and its local lock.
#[derive(Default)]
pub(crate) struct LocalKey {
    /// `None` until the key is first read (pulled) or written here.
    copy: Mutex<Option<Vec<u8>>>,
    pub(crate) lock: Arc<RwLock<()>>,
}

impl LocalKey {
    pub(crate) fn copy(&self) -> MutexGuard<'_, Option<Vec<u8>>> {
        // Critical sections copy bytes in or out; a panicked holder leaves whole bytes.
        self.copy.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl LocalState {
    /// The key's entry, created (without a copy) if this executor has not seen it.
    pub(crate) fn key(&self, user: &str, key: &str) -> Arc<LocalKey> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.entry((user.to_string(), key.to_string()))
            .or_default()
            .clone()
    }

    /// Forgets the key's copy (its lock stays, so holders keep excluding each other).
    pub(crate) fn drop_copy(&self, user: &str, key: &str) {
        *self.key(user, key).copy() = None;
    }
}
