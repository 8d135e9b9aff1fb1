//! Linear memories from reused regions. Each region is a private anonymous mapping as large
//! as the memory limit, reserved once and handed from call to call: its pages stay mapped, so
//! a call that grows its memory or takes a large input pays for zeroing, not for a page fault
//! per page and a fresh allocation. wasmi zeroes every byte it makes part of the memory (the
//! initial pages at creation, new pages as it grows), so nothing one call wrote is readable by
//! the next, whoever's it was.
//!
//! Idle regions are kept for as many calls as run at once, not only one per worker: calls
//! parked in chains or awaits hold regions too, and a region unmapped and mapped again costs
//! every core a TLB flush and the next call a page fault per page. A region holds every page
//! any of its calls touched (its memory's largest size so far); one idle region per worker is
//! kept whatever it holds, more while all idle ones together hold at most [`IDLE_BYTES`], and
//! the others are unmapped.

use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use wasmi::{AsContextMut, Memory, MemoryType};

/// Bytes idle regions may hold together, beyond which only one per worker is kept.
const IDLE_BYTES: usize = 64 << 20;
/// Most idle regions kept (each reserves address space as large as the memory limit).
const MAX_IDLE: usize = 1024;

/// Regions for calls' memories; keeps idle ones for the next calls.
pub(crate) struct MemoryPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    idle: Mutex<Idle>,
    region_bytes: usize,
    /// Idle regions kept whatever they hold (one per worker).
    keep: usize,
}

#[derive(Default)]
struct Idle {
    /// Each with the bytes it holds; the most recently used last.
    regions: Vec<(Region, usize)>,
    /// What they hold, together.
    bytes: usize,
}

/// One mapping of `len` bytes.
struct Region {
    start: NonNull<u8>,
    len: usize,
}

// SAFETY: a region is plain memory owned by whoever holds the `Region`.
unsafe impl Send for Region {}

impl Region {
    fn map(len: usize) -> std::io::Result<Self> {
        // SAFETY: a fresh private anonymous mapping, aliased by nothing.
        let start = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if start == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let start = NonNull::new(start.cast()).ok_or_else(std::io::Error::last_os_error)?;
        Ok(Self { start, len })
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, which nothing uses once its `Region` is dropped.
        unsafe { libc::munmap(self.start.as_ptr().cast(), self.len) };
    }
}

/// A region lent to one store; dropping it gives the region back to the pool.
pub(crate) struct PooledRegion {
    region: Option<Region>,
    pool: Arc<PoolInner>,
    /// What the region held when lent (the pages its earlier calls touched).
    held: usize,
    /// How large this store's memory grew, if told (else it may have touched all of it).
    grew_to: Option<usize>,
}

impl PooledRegion {
    /// Tells how large the memory in the region grew.
    pub(crate) fn touched(&mut self, bytes: usize) {
        self.grew_to = Some(bytes);
    }

    /// What the region holds once given back.
    fn holds(&self) -> usize {
        let grew_to = self.grew_to.unwrap_or(self.pool.region_bytes);
        grew_to.max(self.held).min(self.pool.region_bytes)
    }
}

impl Drop for PooledRegion {
    fn drop(&mut self) {
        let Some(region) = self.region.take() else {
            return;
        };
        let holds = self.holds();
        let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
        let kept = idle.regions.len() < self.pool.keep
            || (idle.regions.len() < MAX_IDLE && idle.bytes + holds <= IDLE_BYTES);
        if kept {
            idle.bytes += holds;
            idle.regions.push((region, holds));
        }
        // Else the region is unmapped as it drops, after the lock is released.
        drop(idle);
    }
}

impl MemoryPool {
    /// Regions for memories of at most `max_memory_bytes`, keeping `keep` idle ones whatever
    /// they hold, and more within [`IDLE_BYTES`].
    pub(crate) fn new(max_memory_bytes: usize, keep: usize) -> Self {
        // Whole wasm pages, so a memory at its limit fits.
        let region_bytes = max_memory_bytes.div_ceil(crate::WASM_PAGE) * crate::WASM_PAGE;
        Self {
            inner: Arc::new(PoolInner {
                idle: Mutex::default(),
                region_bytes,
                keep,
            }),
        }
    }

    /// The memory of type `ty` for `store`, in a region the returned guard lends it. The guard
    /// must live as long as the store: keep it in the store's data, which wasmi drops after
    /// the store's memories, and which is dropped with the store.
    pub(crate) fn memory(
        &self,
        mut store: impl AsContextMut,
        ty: MemoryType,
    ) -> Result<(Memory, PooledRegion), wasmi::Error> {
        let idle = {
            let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
            let region = idle.regions.pop();
            if let Some((_, held)) = &region {
                idle.bytes -= held;
            }
            region
        };
        let (region, held) = match idle {
            Some(idle) => idle,
            None => {
                let region = Region::map(self.inner.region_bytes)
                    .map_err(|e| wasmi::Error::new(format!("cannot map a memory region: {e}")))?;
                (region, 0)
            }
        };
        // SAFETY: the region is lent to this store alone until the returned guard gives it
        // back, which the caller does only after the store is gone, so the slice is never
        // aliased while wasmi may use it. wasmi keeps a raw pointer and never frees a buffer it
        // was given.
        let buffer: &'static mut [u8] =
            unsafe { std::slice::from_raw_parts_mut(region.start.as_ptr(), region.len) };
        let memory = Memory::new_static(store.as_context_mut(), ty, buffer)?;
        Ok((
            memory,
            PooledRegion {
                region: Some(region),
                pool: self.inner.clone(),
                held,
                grew_to: None,
            },
        ))
    }

    /// Idle regions, for tests.
    #[cfg(test)]
    fn idle(&self) -> usize {
        self.inner.idle.lock().unwrap().regions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WASM_PAGE;

    #[test]
    fn a_region_comes_back_zeroed_as_far_as_the_next_memory_reaches() {
        let pool = MemoryPool::new(4 * WASM_PAGE, 1);
        let engine = wasmi::Engine::default();
        let ty = MemoryType::new(1, Some(4));
        let mut store = wasmi::Store::new(&engine, ());
        let (memory, region) = pool.memory(&mut store, ty).unwrap();
        memory.grow(&mut store, 2).unwrap();
        memory.data_mut(&mut store).fill(0xAA);
        // Past the limit: the region is only as large as the limit.
        assert!(memory.grow(&mut store, 2).is_err());
        // The store first, as when the region lives in the store's data.
        drop(store);
        drop(region);
        assert_eq!(pool.idle(), 1);
        let mut store = wasmi::Store::new(&engine, ());
        let (memory, region) = pool.memory(&mut store, ty).unwrap();
        assert_eq!(pool.idle(), 0, "the idle region is reused");
        memory.grow(&mut store, 3).unwrap();
        assert!(memory.data(&store).iter().all(|&b| b == 0));
        assert_eq!(memory.data(&store).len(), 4 * WASM_PAGE);
        drop(store);
        drop(region);
    }

    #[test]
    fn idle_regions_are_kept_beyond_one_per_worker_while_what_they_hold_fits() {
        let engine = wasmi::Engine::default();
        let ty = MemoryType::new(1, None);
        // Returns `n` regions of `pool` at once, each having held `touched` bytes (if told).
        let lend_and_return = |pool: &MemoryPool, n: usize, touched: Option<usize>| {
            let mut stores: Vec<_> = (0..n).map(|_| wasmi::Store::new(&engine, ())).collect();
            let mut regions: Vec<_> = stores
                .iter_mut()
                .map(|store| pool.memory(store, ty).unwrap().1)
                .collect();
            if let Some(touched) = touched {
                regions.iter_mut().for_each(|r| r.touched(touched));
            }
            drop(stores);
            drop(regions);
        };
        // Regions that held half the idle budget each: the one kept for the worker, and one
        // more within the budget; the others are unmapped.
        let pool = MemoryPool::new(IDLE_BYTES / 2, 1);
        lend_and_return(&pool, 4, None);
        assert_eq!(pool.idle(), 2);
        // Regions whose memories stayed small: all kept, for as many calls at once.
        let pool = MemoryPool::new(IDLE_BYTES / 2, 1);
        lend_and_return(&pool, 40, Some(WASM_PAGE));
        assert_eq!(pool.idle(), 40);
        lend_and_return(&pool, 40, Some(WASM_PAGE));
        assert_eq!(pool.idle(), 40, "the idle ones were reused");
        // A region keeps what a big memory touched, whatever smaller ones use it after: two
        // regions that held half the budget, then each lent to a small memory, are still
        // counted at half (the kept one and one more fit; a third would not).
        let pool = MemoryPool::new(IDLE_BYTES / 2, 1);
        lend_and_return(&pool, 2, Some(IDLE_BYTES / 2));
        assert_eq!(pool.idle(), 2);
        lend_and_return(&pool, 2, Some(WASM_PAGE));
        assert_eq!(pool.idle(), 2);
        assert_eq!(pool.inner.idle.lock().unwrap().bytes, IDLE_BYTES);
        lend_and_return(&pool, 3, Some(WASM_PAGE));
        assert_eq!(pool.idle(), 2, "a fresh region over the budget is unmapped");
    }

    #[test]
    fn a_store_gives_its_region_back_holding_what_its_memory_grew_to() {
        use crate::host::HostState;
        use crate::host::io::Streams;
        let pool = MemoryPool::new(IDLE_BYTES / 2, 1);
        let engine = wasmi::Engine::default();
        let limits = crate::Limits::default();
        let mut store =
            wasmi::Store::new(&engine, HostState::standalone(&limits, Streams::Console));
        store.limiter(|host| &mut host.limiter);
        let (memory, region) = pool.memory(&mut store, MemoryType::new(1, None)).unwrap();
        store.data_mut().region = Some(region);
        memory.grow(&mut store, 2).unwrap();
        drop(store);
        assert_eq!(pool.idle(), 1);
        assert_eq!(pool.inner.idle.lock().unwrap().bytes, 3 * WASM_PAGE);
    }
}
