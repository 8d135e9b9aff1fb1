//! Snapshots (Faasm's Proto-Faaslets): a function's instance as its initialisation left it,
//! taken once per executor and function, and every call's instance restored from it instead
//! of initialising again.
//!
//! Initialisation is, in order, whichever of these the module exports: `_initialize` (a WASI
//! reactor's runtime and C++ constructors), `_faasm_zygote` (Faasm's `FAASM_ZYGOTE`, whose
//! non-zero result fails it) and `fwasm_init` (fwasm's own, `#[fwasm_sdk::init]` and
//! `FWASM_INIT`). It runs once on the blocking pool, with the call limits (one budget for all
//! of it), for the function alone (its user and settings, not a call's input), and may use
//! any import that answers at once (console, clocks, random numbers, the local state tier);
//! one that would park the call (global state, chaining, files, a sidecar) is refused, as in
//! a start function. A snapshot keeps the pages of linear memory initialisation left
//! different from a fresh instance, the memory's size, and the mutable globals of number
//! types it changed (the executor exports those a module keeps to itself as it compiles it).
//! Tables, and passive segments dropped during initialisation, are not kept: a restored
//! instance has them as a fresh one does.
//!
//! Restoring makes a fresh instance (a start section runs again; its writes are overwritten)
//! and copies the changed pages in: nothing one call writes is seen by the next. A larger
//! snapshot of a module whose memory comes from the pool, and whose instantiation writes only
//! its constant-placed data segments, is kept as an image mapped copy-on-write under each
//! call's memory instead (`memory_image`): the instance is made over it and only the bytes its
//! data segments wrote over are put back, so a restore costs the pages a call touches, not
//! the pages the snapshot holds. Taken here, the image holds the data segments' pages as
//! initialisation left them too, and the instance is made from the module without its
//! active segments: nothing is written at instantiation, nothing put back. Random
//! numbers come from the host per call, but a guest PRNG seeded during initialisation starts
//! every call from the same seed unless the handler reseeds it.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use fwasm_proto::pb::snapshot_global::Value as GlobalValue;
use fwasm_proto::pb::{FailureKind, SnapshotGlobal, SnapshotImage, SnapshotPage};
use lru::LruCache;
use wasmi::{Extern, Func, Instance, Memory, Module, Mutability, Store, Val, ValType};

use crate::abi::Abi;
use crate::memory_image::MemoryImage;

use fwasm_abi::{EXPORT_FAASM_ZYGOTE, EXPORT_INIT as EXPORT_FWASM_INIT, EXPORT_INITIALIZE};

use crate::WASM_PAGE as PAGE;

/// A module's static constructors (Faasm's toolchain exports them).
pub(crate) const EXPORT_CTORS: &str = "__wasm_call_ctors";

/// What a module runs to initialise, if anything: then its calls start from a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InitPlan {
    /// A Faasm-toolchain binary's constructors, run before its zygote as Faasm does.
    ctors: bool,
    initialize: bool,
    zygote: bool,
    init: bool,
    /// The Python runtime's per-function step, run from the interpreter's own snapshot.
    python_load: bool,
}

impl InitPlan {
    /// The initialisation `module` exports, for the ABIs whose calls start from a snapshot
    /// (a WASI command's start-up is its program; proxy-wasm's is its own protocol).
    pub(crate) fn of(module: &Module, abi: Abi) -> Option<InitPlan> {
        // Their types were checked at upload (and again as the executor compiled the module).
        let exports = |name: &str| crate::abi::exports(module, name);
        let plan = match abi {
            Abi::FwasmV1 | Abi::FaasmC => InitPlan {
                ctors: false,
                initialize: exports(EXPORT_INITIALIZE),
                zygote: abi == Abi::FaasmC && exports(EXPORT_FAASM_ZYGOTE),
                init: exports(EXPORT_FWASM_INIT),
                python_load: false,
            },
            // A Faasm-toolchain binary starts from its zygote, if it has one, as on Faasm.
            Abi::FaasmHost if exports(EXPORT_FAASM_ZYGOTE) => InitPlan {
                ctors: exports(EXPORT_CTORS),
                initialize: false,
                zygote: true,
                init: false,
                python_load: false,
            },
            _ => return None,
        };
        (plan.initialize || plan.zygote || plan.init).then_some(plan)
    }

    /// The Python runtime's second start-up step (see `python`), run from the snapshot its
    /// first left.
    pub(crate) fn python_load() -> InitPlan {
        InitPlan {
            ctors: false,
            initialize: false,
            zygote: false,
            init: false,
            python_load: true,
        }
    }

    /// Runs the steps on `instance` in fuel slices, drawing on one budget of `fuel`, up to
    /// `deadline`: the fuel they used, or the step that failed and how.
    pub(crate) fn run<T>(
        &self,
        store: &mut Store<T>,
        instance: &Instance,
        budget: u64,
        slice: u64,
        deadline: std::time::Instant,
    ) -> Result<u64, (&'static str, StepFailure)> {
        let mut fuel = budget;
        for (export, returns_status) in self.steps() {
            let Some(func) = instance.get_func(&*store, export) else {
                continue;
            };
            match run_to_end(store, func, returns_status, &mut fuel, slice, deadline) {
                Ok(None | Some(0)) => {}
                Ok(Some(status)) => return Err((export, StepFailure::Status(status))),
                Err(e) => return Err((export, StepFailure::Run(e))),
            }
        }
        Ok(budget - fuel)
    }

    /// The exports to run, in order, and whether each returns a status (non-zero: failed).
    fn steps(&self) -> impl Iterator<Item = (&'static str, bool)> {
        [
            (self.ctors, EXPORT_CTORS, false),
            (self.initialize, EXPORT_INITIALIZE, false),
            (self.zygote, EXPORT_FAASM_ZYGOTE, true),
            (self.init, EXPORT_FWASM_INIT, false),
            (self.python_load, crate::python::EXPORT_LOAD, false),
        ]
        .into_iter()
        .filter(|(runs, _, _)| *runs)
        .map(|(_, name, status)| (name, status))
    }
}

/// Snapshots holding more than this many changed bytes are mapped under each call's memory
/// rather than copied into it, where the module allows: a mapping costs about 10 µs whatever
/// its size, a copy about 50 µs per MiB (BENCHMARKS.md, "Copy-on-write restores").
const MAPPED_BEYOND_BYTES: usize = 128 << 10;

/// An instance as initialisation left it, against a fresh one.
pub(crate) struct Snapshot {
    /// The memory's size in pages.
    pages: u64,
    /// The pages that differ from a fresh instance's, by index, in order (and the data
    /// segments' pages, changed or not, when its image holds them: `kept_bytes`).
    changed: Vec<(u64, Bytes)>,
    /// Bytes of `changed` kept though unchanged (see [`Snapshot::keep_pages`]).
    kept_bytes: usize,
    /// The same pages as an image each call's memory is made over, if they are so kept.
    mapped: Option<Mapped>,
    /// Calls restored over the image.
    restored_over_image: AtomicU64,
    /// The exported mutable globals initialisation changed.
    globals: Vec<(Box<str>, Val)>,
    /// The fuel the initialisation used (0 for one fetched from another executor).
    init_fuel: u64,
}

impl Snapshot {
    /// The linear memory its calls start with, in bytes.
    pub(crate) fn memory_bytes(&self) -> usize {
        (self.pages as usize).saturating_mul(crate::WASM_PAGE)
    }

    /// Compares an initialised instance, whose initialisation used `init_fuel`, with a fresh
    /// one of the same module.
    pub(crate) fn capture<T>(
        (initialised, instance): (&Store<T>, &Instance),
        (fresh, fresh_instance): (&Store<T>, &Instance),
        (memory, fresh_memory): (Memory, Memory),
        init_fuel: u64,
    ) -> Snapshot {
        let (after, before) = (memory.data(initialised), fresh_memory.data(fresh));
        let changed = after
            .chunks(PAGE)
            .enumerate()
            .filter(
                |(index, page)| match before.get(index * PAGE..(index + 1) * PAGE) {
                    Some(was) => was != *page,
                    None => page.iter().any(|&byte| byte != 0),
                },
            )
            .map(|(index, page)| (index as u64, Bytes::copy_from_slice(page)))
            .collect();
        let mut globals = Vec::new();
        for export in instance.exports(initialised) {
            let name = export.name();
            let Extern::Global(global) = export.into_extern() else {
                continue;
            };
            if global.ty(initialised).mutability() != Mutability::Var {
                continue;
            }
            let value = global.get(initialised);
            // A reference belongs to the store it came from: not kept (and references are
            // never exported to the snapshot by the executor's rewrite).
            if matches!(value, Val::FuncRef(_) | Val::ExternRef(_)) {
                continue;
            }
            let was = fresh_instance.get_global(fresh, name).map(|g| g.get(fresh));
            if was.is_none_or(|was| !same(&was, &value)) {
                globals.push((Box::from(name), value));
            }
        }
        Snapshot {
            pages: memory.size(initialised),
            changed,
            kept_bytes: 0,
            mapped: None,
            restored_over_image: AtomicU64::new(0),
            globals,
            init_fuel,
        }
    }

    /// The same snapshot kept as an image to map under each call's memory, if it is large
    /// enough to gain from it and the module's instantiation writes only `segments` (see
    /// `data_segments`); else as it is. Given the `initialised` memory, the image holds the
    /// segments' pages as initialisation left them too, changed or not, so that instances
    /// made over it need not write them (nor a restore put them back). Blocking: writes the
    /// image.
    pub(crate) fn mapped_if_worth_it(
        mut self,
        segments: Option<Arc<[Range<usize>]>>,
        initialised: Option<&[u8]>,
    ) -> Self {
        let Some(segments) = segments else {
            return self;
        };
        if self.changed_bytes() <= MAPPED_BEYOND_BYTES {
            return self;
        }
        let holds_segments = initialised.is_some_and(|memory| self.keep_pages(memory, &segments));
        // Up to the last page it changed: the memory beyond reads as zeros in any region. (A
        // call that reads a page the image leaves as a hole fills it in: it may come to hold
        // all of its length, which is what it counts for.)
        let Some(&(last, _)) = self.changed.last() else {
            return self;
        };
        let pages = self
            .changed
            .iter()
            .map(|(index, page)| (*index as usize * PAGE, &page[..]));
        let image = match MemoryImage::new((last as usize + 1) * PAGE, pages) {
            Ok(image) => Arc::new(image),
            Err(e) => {
                tracing::warn!(error = %e, "could not make a snapshot's image; copying it into each call instead");
                return self;
            }
        };
        // The pages become views of the image: held once.
        let bytes = Bytes::from_owner(ImageBytes(image.clone()));
        for (index, page) in &mut self.changed {
            let at = *index as usize * PAGE;
            *page = bytes.slice(at..at + PAGE);
        }
        self.mapped = Some(Mapped {
            image,
            segments,
            holds_segments,
        });
        self
    }

    /// Adds the pages of `memory` that `ranges` overlap to the ones it holds, changed or not:
    /// whether `memory` had them all.
    fn keep_pages(&mut self, memory: &[u8], ranges: &[Range<usize>]) -> bool {
        let kept: std::collections::BTreeSet<u64> =
            self.changed.iter().map(|(index, _)| *index).collect();
        let pages = ranges
            .iter()
            .flat_map(|range| range.start / PAGE..range.end.div_ceil(PAGE))
            .map(|index| index as u64)
            .filter(|index| !kept.contains(index))
            .collect::<std::collections::BTreeSet<u64>>();
        let mut all = true;
        for index in pages {
            let at = index as usize * PAGE;
            match memory.get(at..at + PAGE) {
                Some(page) => {
                    self.changed.push((index, Bytes::copy_from_slice(page)));
                    self.kept_bytes += PAGE;
                }
                None => all = false,
            }
        }
        self.changed.sort_by_key(|(index, _)| *index);
        all
    }

    /// Whether its image holds the module's data segments as initialisation left them: an
    /// instance made over it is made from the module without them.
    pub(crate) fn holds_segments(&self) -> bool {
        self.mapped.as_ref().is_some_and(|m| m.holds_segments)
    }

    /// The image to make a call's memory over, if the snapshot is kept as one.
    pub(crate) fn image(&self) -> Option<&Arc<MemoryImage>> {
        self.mapped.as_ref().map(|mapped| &mapped.image)
    }

    /// Makes a fresh instance what the snapshot holds; `over_image`: its memory was made over
    /// the snapshot's [`image`](Self::image).
    pub(crate) fn restore<T>(
        &self,
        store: &mut Store<T>,
        instance: &Instance,
        memory: Memory,
        over_image: bool,
    ) -> Result<(), String> {
        let grow = self.pages.saturating_sub(memory.size(&*store));
        if grow > 0 {
            memory
                .grow(&mut *store, grow)
                .map_err(|e| format!("restoring its snapshot's memory: {e}"))?;
        }
        let data = memory.data_mut(&mut *store);
        match (&self.mapped, over_image) {
            // Made without its data segments: the image is all it needs.
            (Some(mapped), true) if mapped.holds_segments => {
                self.restored_over_image.fetch_add(1, Ordering::Relaxed);
            }
            // Only what instantiation wrote over the image is put back.
            (Some(mapped), true) => {
                self.restored_over_image.fetch_add(1, Ordering::Relaxed);
                for segment in mapped.segments.iter() {
                    self.put_back(data, segment.clone());
                }
            }
            _ => {
                for (index, page) in &self.changed {
                    let at = *index as usize * PAGE;
                    data[at..at + page.len()].copy_from_slice(page);
                }
            }
        }
        for (name, value) in &self.globals {
            let global = instance
                .get_global(&*store, name)
                .ok_or_else(|| format!("its snapshot names a global {name} it does not have"))?;
            global
                .set(&mut *store, value.clone())
                .map_err(|e| format!("restoring the global {name}: {e}"))?;
        }
        Ok(())
    }

    /// Copies the snapshot's bytes in `range` into `data` where they differ from a fresh
    /// instance's (the pages it changed).
    fn put_back(&self, data: &mut [u8], range: Range<usize>) {
        let pages = range.start / PAGE..range.end.div_ceil(PAGE);
        let first = self
            .changed
            .partition_point(|(index, _)| (*index as usize) < pages.start);
        for (index, page) in &self.changed[first..] {
            let at = *index as usize * PAGE;
            if *index as usize >= pages.end {
                break;
            }
            let (from, to) = (range.start.max(at), range.end.min(at + PAGE));
            data[from..to].copy_from_slice(&page[from - at..to - at]);
        }
    }

    /// Bytes of memory it holds: the pages it changed, or its image's length.
    pub(crate) fn held_bytes(&self) -> usize {
        match &self.mapped {
            Some(mapped) => mapped.image.len(),
            None => self.changed_bytes(),
        }
    }

    /// Bytes of memory that differ from a fresh instance's.
    pub(crate) fn changed_bytes(&self) -> usize {
        let held: usize = self.changed.iter().map(|(_, page)| page.len()).sum();
        held - self.kept_bytes
    }

    /// The fuel its initialisation used (0 for one fetched from another executor).
    pub(crate) fn init_fuel(&self) -> u64 {
        self.init_fuel
    }

    /// The same, as if its initialisation had used `fuel`.
    #[cfg(test)]
    pub(crate) fn with_init_fuel(self, fuel: u64) -> Self {
        Snapshot {
            init_fuel: fuel,
            ..self
        }
    }

    /// What other executors restore it from.
    pub(crate) fn to_image(&self) -> SnapshotImage {
        let changed = self
            .changed
            .iter()
            .map(|(index, data)| SnapshotPage {
                index: *index,
                data: data.clone(),
            })
            .collect();
        let globals = self
            .globals
            .iter()
            .filter_map(|(name, value)| {
                let value = match value {
                    Val::I32(v) => GlobalValue::I32(*v),
                    Val::I64(v) => GlobalValue::I64(*v),
                    Val::F32(v) => GlobalValue::F32Bits(v.to_bits()),
                    Val::F64(v) => GlobalValue::F64Bits(v.to_bits()),
                    _ => return None,
                };
                Some(SnapshotGlobal {
                    name: name.to_string(),
                    value: Some(value),
                })
            })
            .collect();
        SnapshotImage {
            pages: self.pages,
            changed,
            globals,
        }
    }

    /// A snapshot another executor took of `module`, checked against it: pages within
    /// `max_pages` and whole, globals the module exports as mutable, of their types.
    pub(crate) fn from_image(
        image: SnapshotImage,
        module: &Module,
        max_pages: u64,
    ) -> Result<Snapshot, String> {
        if image.pages > max_pages {
            return Err(format!(
                "it has {} pages of memory, over the limit of {max_pages}",
                image.pages
            ));
        }
        // The module's one memory, its own or imported from the pool.
        let memory = module
            .exports()
            .find_map(|export| export.ty().memory().copied())
            .or_else(|| {
                module
                    .imports()
                    .find_map(|import| import.ty().memory().copied())
            });
        if let Some(memory) = memory {
            let (least, most) = (memory.minimum(), memory.maximum().unwrap_or(u64::MAX));
            if image.pages < least || image.pages > most {
                return Err(format!(
                    "it has {} pages of memory; the module's memory has {least} to {most}",
                    image.pages
                ));
            }
        }
        let mut changed = Vec::with_capacity(image.changed.len());
        for page in image.changed {
            if page.index >= image.pages || page.data.len() != PAGE {
                return Err(format!(
                    "its page {} ({} bytes) is not a whole page of its {} pages",
                    page.index,
                    page.data.len(),
                    image.pages
                ));
            }
            changed.push((page.index, page.data));
        }
        let mutable: HashMap<&str, ValType> = module
            .exports()
            .filter_map(|export| {
                let global = export.ty().global()?;
                (global.mutability() == Mutability::Var).then(|| (export.name(), global.content()))
            })
            .collect();
        let mut globals = Vec::with_capacity(image.globals.len());
        for global in image.globals {
            let value = match global.value {
                Some(GlobalValue::I32(v)) => Val::I32(v),
                Some(GlobalValue::I64(v)) => Val::I64(v),
                Some(GlobalValue::F32Bits(bits)) => Val::F32(wasmi::F32::from_bits(bits)),
                Some(GlobalValue::F64Bits(bits)) => Val::F64(wasmi::F64::from_bits(bits)),
                None => return Err(format!("its global {} has no value", global.name)),
            };
            if mutable.get(global.name.as_str()) != Some(&value.ty()) {
                return Err(format!(
                    "its global {} is not a mutable {:?} the module exports",
                    global.name,
                    value.ty()
                ));
            }
            globals.push((Box::from(global.name), value));
        }
        changed.sort_by_key(|(index, _)| *index);
        changed.dedup_by_key(|(index, _)| *index);
        Ok(Snapshot {
            pages: image.pages,
            changed,
            kept_bytes: 0,
            mapped: None,
            restored_over_image: AtomicU64::new(0),
            globals,
            init_fuel: 0,
        })
    }
}

/// A snapshot's pages kept as an image each call's memory is made over.
struct Mapped {
    image: Arc<MemoryImage>,
    /// Where the module's instantiation writes over it (its data segments).
    segments: Arc<[Range<usize>]>,
    /// The image holds those ranges as initialisation left them: instances made over it are
    /// made from the module without its active data segments, which writes nothing.
    holds_segments: bool,
}

/// An image as the owner of the [`Bytes`] viewing its pages.
struct ImageBytes(Arc<MemoryImage>);

impl AsRef<[u8]> for ImageBytes {
    fn as_ref(&self) -> &[u8] {
        (*self.0).as_ref()
    }
}

fn same(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::I32(a), Val::I32(b)) => a == b,
        (Val::I64(a), Val::I64(b)) => a == b,
        (Val::F32(a), Val::F32(b)) => a.to_bits() == b.to_bits(),
        (Val::F64(a), Val::F64(b)) => a.to_bits() == b.to_bits(),
        _ => false,
    }
}

/// Why initialisation failed: every call of the function says so.
#[derive(Debug, Clone)]
pub(crate) struct InitFailure {
    pub(crate) kind: FailureKind,
    pub(crate) message: String,
    /// It would fail again (a trap, a limit): kept, so later calls fail at once. One that ran
    /// out of time is tried again by the next call.
    pub(crate) lasting: bool,
}

/// Where a function's snapshot came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// This executor ran the initialisation (or it failed here).
    Initialised,
    /// Another executor's, from the state service.
    Fetched,
}

/// One function's snapshot, taken by the first call that needs it while the others wait
/// (awaiting: no thread is held).
pub(crate) struct SnapshotSlot {
    taken: tokio::sync::OnceCell<Result<Arc<Snapshot>, InitFailure>>,
}

impl SnapshotSlot {
    /// Its snapshot, once taken.
    fn snapshot(&self) -> Option<&Snapshot> {
        match self.taken.get() {
            Some(Ok(snapshot)) => Some(snapshot),
            _ => None,
        }
    }

    /// Bytes of memory its snapshot holds (0 until it is taken).
    fn bytes(&self) -> usize {
        self.snapshot().map_or(0, Snapshot::held_bytes)
    }

    /// Whether its snapshot is kept as an image to map.
    fn mapped(&self) -> bool {
        self.snapshot().is_some_and(|s| s.image().is_some())
    }

    /// Calls restored over its snapshot's image.
    fn restored_over_image(&self) -> u64 {
        self.snapshot()
            .map_or(0, |s| s.restored_over_image.load(Ordering::Relaxed))
    }

    /// The snapshot, got with `take` if no call has got it (or failed lastingly) yet. Where
    /// it came from comes back too, when this call was the one to get it.
    pub(crate) async fn get_or_take<F>(
        &self,
        take: impl FnOnce() -> F,
    ) -> (Result<Arc<Snapshot>, InitFailure>, Option<Origin>)
    where
        F: Future<Output = Result<(Snapshot, Origin), InitFailure>>,
    {
        let mut got = None;
        let kept = self
            .taken
            .get_or_try_init(|| async {
                match take().await {
                    Ok((snapshot, origin)) => {
                        got = Some(origin);
                        Ok(Ok(Arc::new(snapshot)))
                    }
                    Err(failure) => {
                        got = Some(Origin::Initialised);
                        match failure.lasting {
                            true => Ok(Err(failure)),
                            false => Err(failure),
                        }
                    }
                }
            })
            .await;
        let kept = match kept {
            Ok(kept) => kept.clone(),
            Err(passing) => Err(passing),
        };
        (kept, got)
    }
}

/// An executor's snapshots, by function and module: a function's settings (its environment)
/// are part of what initialisation sees, so each function of a user has its own, and a new
/// upload (a new module) a new one.
pub(crate) struct Snapshots {
    slots: Mutex<LruCache<String, Arc<SnapshotSlot>>>,
    taken: AtomicU64,
    fetched: AtomicU64,
    /// What the snapshots may hold together, in bytes of memory.
    max_bytes: usize,
}

impl Snapshots {
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            slots: Mutex::new(LruCache::new(capacity)),
            taken: AtomicU64::new(0),
            fetched: AtomicU64::new(0),
            max_bytes,
        }
    }

    /// Counts a snapshot just got (or an initialisation that failed), once the others are
    /// back within the byte budget.
    pub(crate) fn got_one(&self, origin: Origin, got: &Result<Arc<Snapshot>, InitFailure>) {
        self.keep_within_bytes();
        let meters = fwasm_proto::metrics::meters();
        if got
            .as_ref()
            .is_ok_and(|snapshot| snapshot.image().is_some())
        {
            meters.snapshots_mapped.increment(1);
        }
        match origin {
            Origin::Initialised => {
                self.taken.fetch_add(1, Ordering::Relaxed);
                meters.snapshots.increment(1);
            }
            Origin::Fetched => {
                self.fetched.fetch_add(1, Ordering::Relaxed);
                meters.snapshots_fetched.increment(1);
            }
        }
    }

    /// Drops the least recently used snapshots until the others fit in the byte budget (the
    /// most recent one always stays). A call holding a dropped one finishes with it.
    fn keep_within_bytes(&self) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let mut total: usize = slots.iter().map(|(_, slot)| slot.bytes()).sum();
        while total > self.max_bytes && slots.len() > 1 {
            match slots.pop_lru() {
                Some((_, dropped)) => total -= dropped.bytes(),
                None => break,
            }
        }
    }

    /// Bytes the snapshots hold together.
    pub(crate) fn bytes(&self) -> usize {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.iter().map(|(_, slot)| slot.bytes()).sum()
    }

    /// Snapshots kept as images to map under calls' memories.
    pub(crate) fn mapped(&self) -> usize {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.iter().filter(|(_, slot)| slot.mapped()).count()
    }

    /// Calls restored over the images of the snapshots kept.
    pub(crate) fn restored_over_images(&self) -> u64 {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .iter()
            .map(|(_, slot)| slot.restored_over_image())
            .sum()
    }

    /// The slot of `user/function` running `module_hash` with `env`.
    pub(crate) fn slot(&self, key: SlotKey<'_>) -> Arc<SnapshotSlot> {
        let key = format!(
            "{}/{}@{}?{:?}",
            key.user, key.function, key.module_hash, key.env
        );
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let slot = slots.get_or_insert(key, || {
            Arc::new(SnapshotSlot {
                taken: tokio::sync::OnceCell::new(),
            })
        });
        slot.clone()
    }

    /// Snapshots taken (or initialisations failed) so far.
    pub(crate) fn taken(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }

    /// Snapshots fetched from the state service so far.
    pub(crate) fn fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }
}

/// What a function's snapshot is for.
pub(crate) struct SlotKey<'a> {
    pub(crate) user: &'a str,
    pub(crate) function: &'a str,
    pub(crate) module_hash: &'a str,
    pub(crate) env: &'a [(String, String)],
}

/// Runs `func` (no parameters) to its end in fuel slices, drawing on `fuel` (what is left
/// stays there), up to `deadline`: the status it returned, for a function that returns one.
fn run_to_end<T>(
    store: &mut Store<T>,
    func: Func,
    returns_status: bool,
    fuel: &mut u64,
    slice: u64,
    deadline: std::time::Instant,
) -> Result<Option<i32>, RunError> {
    let mut results = [Val::I32(0)];
    let results = match returns_status {
        true => &mut results[..],
        false => &mut results[..0],
    };
    let left = fuel;
    let give = |store: &mut Store<T>, left: u64| {
        let give = slice.min(left);
        store.set_fuel(give).map(|_| give)
    };
    let mut given = give(store, *left).map_err(RunError::Trap)?;
    let mut call = func
        .call_resumable(&mut *store, &[], results)
        .map_err(RunError::Trap)?;
    loop {
        match call {
            wasmi::ResumableCall::Finished => {
                *left = left.saturating_sub(given - store.get_fuel().unwrap_or(0));
                break;
            }
            wasmi::ResumableCall::OutOfFuel(paused) => {
                *left = left.saturating_sub(given - store.get_fuel().unwrap_or(0));
                if *left == 0 || paused.required_fuel() > *left {
                    return Err(RunError::OutOfFuel);
                }
                if std::time::Instant::now() >= deadline {
                    return Err(RunError::TimedOut);
                }
                given = give(store, (*left).max(paused.required_fuel())).map_err(RunError::Trap)?;
                call = paused
                    .resume(&mut *store, results)
                    .map_err(RunError::Trap)?;
            }
            wasmi::ResumableCall::HostTrap(trap) => {
                return Err(RunError::HostTrap(trap.host_error().to_string()));
            }
        }
    }
    Ok(returns_status.then(|| match results.first() {
        Some(Val::I32(status)) => *status,
        _ => 0,
    }))
}

/// What an upload's check of a module's initialisation may use: about half a second. An
/// initialisation that needs more is not refused at upload; its first call runs it under the
/// call's own limits, and says why if it fails.
const UPLOAD_INIT_FUEL: u64 = 500_000_000;
const UPLOAD_INIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `module`'s initialisation once, as an upload's check, on a host of its own with the
/// function's settings: why it failed, if it did for sure (it trapped or said so).
pub(crate) fn try_init(
    module: &Module,
    abi: Abi,
    plan: InitPlan,
    settings: Option<&fwasm_proto::pb::FunctionSettings>,
) -> Result<(), String> {
    use crate::host::HostState;
    let limits = crate::limits::Limits::default();
    let adapter = crate::abi::adapter(abi);
    let mut linker = wasmi::Linker::new(module.engine());
    adapter.define_imports(&mut linker);
    let call = fwasm_proto::pb::Call {
        settings: settings.cloned(),
        ..Default::default()
    };
    let mut host = HostState::standalone_for(&call, &limits, adapter.streams());
    host.io.add_default_env(abi.default_env());
    let mut store = Store::new(module.engine(), host);
    store.limiter(|host| &mut host.limiter);
    store
        .set_fuel(UPLOAD_INIT_FUEL)
        .map_err(|e| format!("internal error: {e}"))?;
    let why = |store: &Store<HostState>, what: &str, e: wasmi::Error| {
        let reason = store.data().failure_reason.clone();
        format!("{what} failed: {}", reason.unwrap_or_else(|| e.to_string()))
    };
    let instance = linker
        .instantiate_and_start(&mut store, module)
        .map_err(|e| why(&store, "instantiation", e))?;
    store.data_mut().memory = instance.get_memory(&store, fwasm_abi::EXPORT_MEMORY);
    let deadline = std::time::Instant::now() + UPLOAD_INIT_TIMEOUT;
    match plan.run(
        &mut store,
        &instance,
        UPLOAD_INIT_FUEL,
        limits.fuel_slice,
        deadline,
    ) {
        Ok(_) => Ok(()),
        Err((export, StepFailure::Status(status))) => Err(format!("{export} returned {status}")),
        Err((export, StepFailure::Run(RunError::Trap(e)))) => Err(why(&store, export, e)),
        Err((export, StepFailure::Run(RunError::HostTrap(reason)))) => {
            Err(format!("{export} failed: {reason}"))
        }
        // Not a failure for sure: the first call has a larger budget.
        Err((_, StepFailure::Run(RunError::OutOfFuel | RunError::TimedOut))) => Ok(()),
    }
}

/// How a step of initialisation failed.
#[derive(Debug)]
pub(crate) enum StepFailure {
    /// A zygote returned this status (not 0).
    Status(i32),
    Run(RunError),
}

/// How a run to the end failed.
#[derive(Debug)]
pub(crate) enum RunError {
    Trap(wasmi::Error),
    OutOfFuel,
    TimedOut,
    HostTrap(String),
}
