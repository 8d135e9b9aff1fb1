//! The local tier of state: one copy of each value per executor, shared by the calls running
//! on it, plus the reader/writer locks those calls take on it ("local" locks). The copies are
//! host memory no call's limit counts, so the executor bounds their total.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::RwLock;

pub(crate) struct LocalState {
    /// user -> key -> entry (nested, so a lookup of a known key allocates nothing).
    keys: Mutex<HashMap<String, HashMap<String, Arc<LocalKey>>>>,
    /// Bytes in all copies, at most `max_bytes`.
    bytes: AtomicUsize,
    max_bytes: usize,
}

/// One key on this executor: its copy, if it has one, and its local lock.
#[derive(Default)]
pub(crate) struct LocalKey {
    /// `None` until the key is first read (pulled) or written here.
    copy: Mutex<Option<Vec<u8>>>,
    pub(crate) lock: Arc<RwLock<()>>,
}

/// The executor's copies already hold as many bytes as it allows.
#[derive(Debug)]
pub(crate) struct Full {
    pub(crate) max_bytes: usize,
}

impl LocalKey {
    pub(crate) fn copy(&self) -> MutexGuard<'_, Option<Vec<u8>>> {
        // Critical sections copy bytes in or out; a panicked holder leaves whole bytes.
        self.copy.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl LocalState {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            keys: Mutex::default(),
            bytes: AtomicUsize::new(0),
            max_bytes,
        }
    }

    /// The key's entry if this executor has one.
    pub(crate) fn find(&self, user: &str, key: &str) -> Option<Arc<LocalKey>> {
        let users = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        users.get(user).and_then(|keys| keys.get(key)).cloned()
    }

    /// The key's entry, created (without a copy) if this executor has not seen it. An entry
    /// counts against the limit too, so calls naming ever new keys cannot grow it unbounded.
    pub(crate) fn key(&self, user: &str, key: &str) -> Result<Arc<LocalKey>, Full> {
        let mut users = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = users.get(user).and_then(|keys| keys.get(key)) {
            return Ok(entry.clone());
        }
        self.resize(0, entry_bytes(key))?;
        Ok(users
            .entry(user.to_string())
            .or_default()
            .entry(key.to_string())
            .or_default()
            .clone())
    }

    /// Accounts for a copy changing from `old` to `new` bytes, refusing growth past the limit.
    pub(crate) fn resize(&self, old: usize, new: usize) -> Result<(), Full> {
        if new <= old {
            self.bytes.fetch_sub(old - new, Ordering::AcqRel);
            return Ok(());
        }
        let growth = new - old;
        let before = self.bytes.fetch_add(growth, Ordering::AcqRel);
        if before + growth > self.max_bytes {
            self.bytes.fetch_sub(growth, Ordering::AcqRel);
            return Err(Full {
                max_bytes: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Replaces the copy behind `slot` (a key's locked copy) with `value`.
    pub(crate) fn replace(&self, slot: &mut Option<Vec<u8>>, value: Vec<u8>) -> Result<(), Full> {
        self.resize(slot.as_ref().map_or(0, Vec::len), value.len())?;
        *slot = Some(value);
        Ok(())
    }

    /// Forgets the key's copy, and the key itself unless a call holds it (or its lock), so
    /// holders keep excluding each other.
    pub(crate) fn drop_copy(&self, user: &str, key: &str) {
        let mut users = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let Some(keys) = users.get_mut(user) else {
            return;
        };
        let Some(entry) = keys.get(key) else { return };
        if let Some(old) = entry.copy().take() {
            let _ = self.resize(old.len(), 0);
        }
        // Only the map refers to it: nobody can reach it but through the map, which is locked.
        if Arc::strong_count(entry) == 1 && Arc::strong_count(&entry.lock) == 1 {
            keys.remove(key);
            let _ = self.resize(entry_bytes(key), 0);
            if keys.is_empty() {
                users.remove(user);
            }
        }
    }
}

/// What a key's entry costs besides its copy: the key and the bookkeeping around it.
fn entry_bytes(key: &str) -> usize {
    key.len() + 128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_bounded_in_total_and_freed_when_dropped() {
        let local = LocalState::new(2 * entry_bytes("a") + 10);
        let a = local.key("u", "a").unwrap();
        local.replace(&mut a.copy(), vec![0; 6]).unwrap();
        let b = local.key("u", "b").unwrap();
        let full = local.replace(&mut b.copy(), vec![0; 5]).unwrap_err();
        assert_eq!(full.max_bytes, 2 * entry_bytes("a") + 10);
        assert!(b.copy().is_none(), "a refused copy is not kept");
        local.drop_copy("u", "a");
        local.replace(&mut b.copy(), vec![0; 5]).unwrap();
    }

    #[test]
    fn keys_count_against_the_limit_and_are_forgotten_when_deleted_and_unheld() {
        let local = LocalState::new(10 * entry_bytes("k0"));
        let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
        for key in &keys {
            local.key("u", key).unwrap();
        }
        assert!(local.key("u", "k10").is_err(), "ten keys fill it");
        assert!(
            local.find("u", "k10").is_none(),
            "a refused key is not kept"
        );
        // A key a call still holds stays; the others go and make room.
        let held = local.find("u", "k0").unwrap();
        for key in &keys {
            local.drop_copy("u", key);
        }
        assert!(local.find("u", "k0").is_some());
        assert!(local.find("u", "k1").is_none());
        drop(held);
        local.drop_copy("u", "k0");
        assert!(local.find("u", "k0").is_none());
        assert_eq!(local.bytes.load(Ordering::Acquire), 0);
        for key in &keys {
            local.key("u", key).unwrap();
        }
    }
}
