//! Compiled modules by content hash, least recently used evicted first.
//!
//! Note: a wasmi `Engine` keeps the code of every module it compiled until the engine is
//! dropped, so eviction bounds the map, not the engine's code memory.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;
use wasmi::Module;

use crate::abi::Abi;
use crate::snapshot::InitPlan;

/// A compiled module, the ABI it speaks and the initialisation it runs, if any.
#[derive(Clone)]
pub(crate) struct Compiled {
    pub(crate) module: Module,
    pub(crate) abi: Abi,
    pub(crate) init: Option<InitPlan>,
    /// The type of the memory its instances get from the executor's pool, when the module
    /// was rewritten to import its memory (see `memory_import`).
    pub(crate) memory: Option<wasmi::MemoryType>,
}

pub(crate) struct ModuleCache {
    modules: Mutex<LruCache<String, Compiled>>,
}

impl ModuleCache {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            modules: Mutex::new(LruCache::new(capacity)),
        }
    }

    pub(crate) fn get(&self, module_hash: &str) -> Option<Compiled> {
        self.lock().get(module_hash).cloned()
    }

    pub(crate) fn insert(&self, module_hash: String, module: Compiled) {
        self.lock().put(module_hash, module);
    }

    /// The hashes of the cached modules, for the scheduler's warm placement.
    pub(crate) fn hashes(&self) -> Vec<String> {
        self.lock().iter().map(|(hash, _)| hash.clone()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, Compiled>> {
        // The map stays consistent even if a holder panicked: every operation is one call.
        self.modules
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
