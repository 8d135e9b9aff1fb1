//! Compiled modules by content hash, least recently used evicted first.
//!
//! Note: a wasmi `Engine` keeps the code of every module it compiled until the engine is
//! dropped, so eviction bounds the map, not the engine's code memory.

use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use lru::LruCache;
use wasmi::{Engine, Module};

use crate::abi::faasm_host::HIDDEN_TABLE_EXPORT;
use crate::abi::{Abi, check_abi};
use crate::data_segments::{without_active_segments, written_at_instantiation};
use crate::globals::{exporting_mutable_globals, exporting_table};
use crate::memory_import::{MEMORY_MODULE, MEMORY_NAME, importing_memory};
use crate::snapshot::InitPlan;

/// Active data segments of at least this many bytes in all get a module without them, to
/// make instances over a snapshot's image from (see `data_segments`): about what writing
/// them twice per call costs as much as a mapping (`snapshot::MAPPED_BEYOND_BYTES`).
const OVER_IMAGE_BEYOND: usize = 128 << 10;

/// A compiled module, the ABI it speaks and the initialisation it runs, if any.
#[derive(Clone)]
pub(crate) struct Compiled {
    pub(crate) module: Module,
    pub(crate) abi: Abi,
    pub(crate) init: Option<InitPlan>,
    /// The type of the memory its instances get from the executor's pool, when the module
    /// was rewritten to import its memory (see `memory_import`).
    pub(crate) memory: Option<wasmi::MemoryType>,
    /// Where its instantiation writes its pooled memory, when that is all it writes and it
    /// initialises: its snapshots may then be mapped under each call's memory.
    pub(crate) segments: Option<Arc<[Range<usize>]>>,
    /// The same module without its active data segments (see `data_segments`), for
    /// instances made over a snapshot's image that holds their bytes: when it has some.
    pub(crate) over_image: Option<Module>,
    /// A Python function's script, which this module (the Python runtime's interpreter)
    /// runs; `None` for a wasm function.
    pub(crate) script: Option<Bytes>,
}

impl Compiled {
    /// Compiles `wasm` as the executor runs it: the ABI checked, the initialisation found,
    /// and the module rewritten where needed (mutable globals exported for a snapshot to
    /// reach; its memory imported, to come from the pool).
    pub(crate) fn compile(engine: &Engine, wasm: &[u8]) -> Result<Compiled, String> {
        let module = Module::new(engine, wasm).map_err(|e| e.to_string())?;
        let abi = check_abi(&module).map_err(|e| e.to_string())?;
        let init = InitPlan::of(&module, abi);
        let globals_exported = match init {
            Some(_) => exporting_mutable_globals(wasm).map_err(|e| e.to_string())?,
            None => None,
        };
        let rewritten = globals_exported.as_deref().unwrap_or(wasm);
        let table_exported = match abi {
            Abi::FaasmHost => exporting_table(rewritten, HIDDEN_TABLE_EXPORT)
                .map_err(|e| e.to_string())?
                .or(globals_exported),
            _ => globals_exported,
        };
        let rewritten = table_exported.as_deref().unwrap_or(wasm);
        let memory_imported = importing_memory(rewritten).map_err(|e| e.to_string())?;
        let Some(rewritten) = memory_imported.or(table_exported) else {
            return Ok(Compiled {
                module,
                abi,
                init,
                memory: None,
                segments: None,
                over_image: None,
                script: None,
            });
        };
        // Compiled again as rewritten: the ABI and the initialisation were read from the
        // module as uploaded (the ABI check knows nothing of the pool's import).
        let module = Module::new(engine, &rewritten).map_err(|e| e.to_string())?;
        let memory = module.imports().find_map(|import| {
            let pooled = (import.module(), import.name()) == (MEMORY_MODULE, MEMORY_NAME);
            pooled.then(|| import.ty().memory().copied()).flatten()
        });
        let segments = match (init, memory) {
            (Some(_), Some(_)) => written_at_instantiation(wasm).map_err(|e| e.to_string())?,
            _ => None,
        };
        // Only worth a second module (and its compilation) when the segments are large
        // enough to cost a call something to write twice.
        let over_image = match &segments {
            Some(segments) if segments.iter().map(|s| s.len()).sum::<usize>() >= OVER_IMAGE_BEYOND => {
                without_active_segments(&rewritten)
                    .map_err(|e| e.to_string())
                    .and_then(|bare| Module::new(engine, &bare).map_err(|e| e.to_string()))
                    .inspect_err(|e| {
                        tracing::warn!(error = %e, "could not make a module without its data segments; its instances write them");
                    })
                    .ok()
            }
            _ => None,
        };
        Ok(Compiled {
            module,
            abi,
            init,
            memory,
            segments,
            over_image,
            script: None,
        })
    }

    /// The Python runtime's interpreter as it runs `script`.
    pub(crate) fn running(&self, script: Bytes) -> Compiled {
        Compiled {
            script: Some(script),
            ..self.clone()
        }
    }
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
