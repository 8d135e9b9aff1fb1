//! Linear memories from reused regions. Each region is a private anonymous mapping as large
//! as the memory limit, reserved once and handed from call to call. An idle region reads as
//! zeros throughout, so wasmi is told to take a memory's bytes as they are (the patched
//! `Memory::new_static_vouched`, vendor/README.md) and writes nothing when it makes or grows
//! one: a large initial memory (a Faasm function's 4 MiB stack) costs a call only the pages
//! it touches. When a region comes back, what its call's memory reached is zeroed: all written
//! over while that is small; in a larger one, the pages that hold something (found with
//! `mincore` and a read) written over and the rest handed back to the kernel. Pages a call
//! wrote stay mapped, so a next call that writes them again (a restored snapshot, a large
//! input) takes no page faults; pages it no longer uses stop costing anything. Nothing one
//! call wrote is readable by the next.
//!
//! A call restored from a snapshot kept as an image (`memory_image`) has the image mapped
//! privately over its region's start. When the region comes back, the pages the call wrote
//! there (its private copies, told apart by the kernel's page map) are set back from the
//! image, with no change to the region's mappings (a change costs a TLB flush on every core),
//! and the rest is zeroed as above: an idle region reads as its image, if it has one, and as
//! zeros elsewhere. Lent again for the same image it is ready as it is; for another image or
//! none, that range is mapped again first.
//!
//! Idle regions are kept for as many calls as run at once, not only one per worker: calls
//! parked in chains or awaits hold regions too, and a region unmapped and mapped again costs
//! every core a TLB flush and the next call a page fault per page. A region holds the pages
//! its calls left mapped; one idle region per worker is kept whatever it holds, more while all
//! idle ones together hold at most [`IDLE_BYTES`], and the others are unmapped.

use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use wasmi::{AsContextMut, Memory, MemoryType};

use crate::memory_image::MemoryImage;

/// Bytes idle regions may hold together, beyond which only one per worker is kept.
const IDLE_BYTES: usize = 64 << 20;
/// Most idle regions kept (each reserves address space as large as the memory limit).
const MAX_IDLE: usize = 1024;
/// A memory that reached at most this is zeroed by writing it all; in a larger one, the pages
/// that hold something are written over and the others handed back to the kernel.
const WRITTEN_ZEROS: usize = 256 << 10;

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
    /// The bytes at its start still mapped from a snapshot's image (an earlier call's, with
    /// that call's copies of the pages it wrote): reset or replaced before it is lent again.
    image_mapped: usize,
    /// Which image that is ([`MemoryImage::id`]; 0: none).
    image_id: u64,
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
        Ok(Self {
            start,
            len,
            image_mapped: 0,
            image_id: 0,
        })
    }

    /// Makes `range` (starting at a host page) read as zeros again; returns how many of its
    /// bytes stay mapped.
    fn zero(&mut self, range: std::ops::Range<usize>) -> usize {
        let (from, len) = (range.start, range.end.min(self.len));
        if len <= from {
            return 0;
        }
        if len - from <= WRITTEN_ZEROS {
            self.write_zeros(from..len);
            return len - from;
        }
        // Larger: a page that holds something is written over and stays mapped (the next call
        // likely writes it again: a restored snapshot, a large input); the others are handed
        // back to the kernel, which gives zeros for them: pages never touched, pages swapped
        // out, and pages in memory that hold only zeros (a later call no longer used them).
        let page = host_page_size();
        let mut resident = vec![0u8; (len - from).div_ceil(page)];
        // SAFETY: the region's own mapping; `resident` has a byte per page of the range.
        let listed = unsafe {
            let start = self.start.as_ptr().add(from);
            libc::mincore(start.cast(), len - from, resident.as_mut_ptr())
        };
        if listed != 0 {
            return self.hand_back_or_write(from..len);
        }
        let mut kept = 0;
        let mut handed_back_from = None;
        for (index, flags) in resident.iter().enumerate() {
            let range = from + index * page..(from + (index + 1) * page).min(len);
            let written = flags & 1 == 1 && !self.reads_as_zeros(range.clone());
            match (written, handed_back_from) {
                (true, from) => {
                    if let Some(from) = from {
                        kept += self.hand_back_or_write(from..range.start);
                    }
                    handed_back_from = None;
                    kept += range.len();
                    self.write_zeros(range);
                }
                (false, None) => handed_back_from = Some(range.start),
                (false, Some(_)) => {}
            }
        }
        if let Some(from) = handed_back_from {
            kept += self.hand_back_or_write(from..len);
        }
        kept
    }

    fn reads_as_zeros(&self, range: std::ops::Range<usize>) -> bool {
        // SAFETY: within the region, which nothing else uses while it is being zeroed.
        let bytes = unsafe {
            std::slice::from_raw_parts(self.start.as_ptr().add(range.start), range.len())
        };
        // SAFETY: every bit pattern is a valid u64.
        let (head, words, tail) = unsafe { bytes.align_to::<u64>() };
        head.iter().all(|b| *b == 0)
            && words.iter().all(|w| *w == 0)
            && tail.iter().all(|b| *b == 0)
    }

    fn write_zeros(&mut self, range: std::ops::Range<usize>) {
        // SAFETY: within the region, whose pages nothing else uses while it is being zeroed.
        unsafe { std::ptr::write_bytes(self.start.as_ptr().add(range.start), 0, range.len()) };
    }

    /// Gives `range`'s pages back to the kernel (they read as zeros when next touched).
    fn hand_back(&mut self, range: std::ops::Range<usize>) -> bool {
        // SAFETY: whole pages of the region's own private anonymous mapping.
        let start = unsafe { self.start.as_ptr().add(range.start) };
        unsafe { libc::madvise(start.cast(), range.len(), libc::MADV_DONTNEED) == 0 }
    }

    /// Maps `image` over the region's first bytes (as large as it, at most the region),
    /// replacing an earlier image there: one `mmap`, which also drops an earlier call's
    /// copies of its pages. On an error, what the region holds is unknown: drop it.
    fn overlay(&mut self, image: &MemoryImage) -> std::io::Result<()> {
        if image.len() > self.len {
            return Err(std::io::Error::other("the image is larger than the region"));
        }
        // Set back to it when it came back.
        if self.image_id == image.id() {
            return Ok(());
        }
        self.image_id = 0;
        // SAFETY: the region's own mapping, which nothing else uses while it is lent.
        unsafe { image.map_private_at(self.start)? };
        let earlier = std::mem::replace(&mut self.image_mapped, image.len());
        if earlier > image.len() {
            self.map_anonymous(image.len()..earlier)?;
        }
        self.image_id = image.id();
        Ok(())
    }

    /// Makes the region hold `image` again where it is mapped already: the pages a call wrote
    /// (their private copies, which the kernel's page map tells from the image's own pages)
    /// are written over with the image's bytes. No mapping changes, so no core flushes its
    /// TLB, and the pages stay mapped for the next call to write again.
    fn reset_to_image(&mut self, image: &MemoryImage) -> std::io::Result<()> {
        if self.image_id != image.id() {
            return Err(std::io::Error::other("another image is mapped there"));
        }
        let source = image.as_ref();
        for (index, private) in private_pages(self.start, image.len())?.enumerate() {
            if private {
                let page = host_page_size();
                let range = index * page..(index + 1) * page;
                // SAFETY: within the region's first `image.len()` bytes, which nothing else
                // uses while it is idle or being lent.
                let into = unsafe {
                    std::slice::from_raw_parts_mut(self.start.as_ptr().add(range.start), page)
                };
                into.copy_from_slice(&source[range]);
            }
        }
        Ok(())
    }

    /// Makes the region read as zeros where an earlier image is still mapped. On an error,
    /// what the region holds is unknown: drop it.
    fn unmap_image(&mut self) -> std::io::Result<()> {
        if self.image_mapped > 0 {
            self.image_id = 0;
            self.map_anonymous(0..self.image_mapped)?;
            self.image_mapped = 0;
        }
        Ok(())
    }

    /// Makes `range` a private anonymous mapping again (zeros, holding no memory), dropping
    /// whatever was mapped there (an image and a call's copies of its pages).
    fn map_anonymous(&mut self, range: std::ops::Range<usize>) -> std::io::Result<()> {
        // SAFETY: whole pages of the region, replaced by what `map` made there.
        let mapped = unsafe {
            libc::mmap(
                self.start.as_ptr().add(range.start).cast(),
                range.len(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if mapped == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// [`Region::hand_back`], else (never expected) writes zeros; the bytes left mapped.
    fn hand_back_or_write(&mut self, range: std::ops::Range<usize>) -> usize {
        if self.hand_back(range.clone()) {
            return 0;
        }
        let len = range.len();
        self.write_zeros(range);
        len
    }
}

/// For each host page of the `len` bytes at `start`, whether it is a private copy (a page a
/// write made of a privately mapped file's page), from this process's page map.
fn private_pages(start: NonNull<u8>, len: usize) -> std::io::Result<impl Iterator<Item = bool>> {
    let entries = page_map_entries(page_map()?, start, len)?;
    Ok(entries.into_iter().map(PageEntry::is_private_copy))
}

/// The page map's word for each host page of the `len` bytes at `start`.
fn page_map_entries(
    map: &std::fs::File,
    start: NonNull<u8>,
    len: usize,
) -> std::io::Result<Vec<PageEntry>> {
    use std::os::unix::fs::FileExt;
    let page = host_page_size();
    let mut bytes = vec![0u8; len / page * 8];
    let at = start.as_ptr() as usize / page * 8;
    map.read_exact_at(&mut bytes, at as u64)?;
    Ok(bytes
        .chunks_exact(8)
        .map(|word| PageEntry(u64::from_ne_bytes(word.try_into().unwrap_or_default())))
        .collect())
}

/// A page map word: bits 63 (present), 62 (swapped) and 61 (a file page or shared).
#[derive(Clone, Copy)]
struct PageEntry(u64);

impl PageEntry {
    fn present(self) -> bool {
        self.0 & (1 << 63) != 0
    }

    fn file(self) -> bool {
        self.0 & (1 << 61) != 0
    }

    /// A page a write made private: present or swapped, and not the file's.
    fn is_private_copy(self) -> bool {
        self.0 & (3 << 62) != 0 && !self.file()
    }
}

/// This process's page map (`/proc/self/pagemap`: a word per page of its address space), if
/// it tells private copies from file pages here (checked once, on a mapping of its own: a
/// sandboxed or emulated `/proc` may give no flags, and then regions are mapped again).
fn page_map() -> std::io::Result<&'static std::fs::File> {
    static MAP: std::sync::OnceLock<Option<std::fs::File>> = std::sync::OnceLock::new();
    MAP.get_or_init(|| {
        let map = std::fs::File::open("/proc/self/pagemap").ok()?;
        let told = page_map_tells_copies(&map);
        if !told {
            tracing::info!("the page map does not tell private copies apart; snapshot images are mapped again for every call");
        }
        told.then_some(map)
    })
    .as_ref()
    .ok_or_else(|| std::io::Error::other("the page map cannot tell private copies"))
}

/// Whether `map` reports a written page of a private file mapping as a private copy and a
/// read one as the file's.
fn page_map_tells_copies(map: &std::fs::File) -> bool {
    let page = host_page_size();
    let Ok(image) = MemoryImage::new(2 * page, []) else {
        return false;
    };
    let Ok(region) = Region::map(2 * page) else {
        return false;
    };
    // SAFETY: a region of this function's own, mapped over and then dropped.
    if unsafe { image.map_private_at(region.start) }.is_err() {
        return false;
    }
    // SAFETY: the region's two pages: one written, one read.
    let read = unsafe {
        region.start.as_ptr().write_volatile(1);
        region.start.as_ptr().add(page).read_volatile()
    };
    match page_map_entries(map, region.start, 2 * page).as_deref() {
        Ok(&[written, read_page]) if read == 0 => {
            written.is_private_copy()
                && written.present()
                && read_page.present()
                && read_page.file()
        }
        _ => false,
    }
}

/// The host's page size (what `mincore` reports by).
pub(crate) fn host_page_size() -> usize {
    static SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    // SAFETY: sysconf has no preconditions.
    *SIZE.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        size if size > 0 => size as usize,
        _ => 4096,
    })
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
    /// The bytes the region held mapped when lent (zeros, left by its earlier calls).
    held: usize,
    /// How large this store's memory grew, if told (else it may have touched all of it).
    grew_to: Option<usize>,
    /// The snapshot's image mapped at its start, to set the region back to as it comes back.
    image: Option<Arc<MemoryImage>>,
}

impl PooledRegion {
    /// Whether the memory starts as a snapshot's image, mapped under it.
    pub(crate) fn overlaid(&self) -> bool {
        self.image.is_some()
    }

    /// Tells how large the memory in the region grew.
    pub(crate) fn touched(&mut self, bytes: usize) {
        self.grew_to = Some(bytes);
    }
}

impl Drop for PooledRegion {
    fn drop(&mut self) {
        let Some(mut region) = self.region.take() else {
            return;
        };
        // Set back now, outside the lock, so an idle region reads as its image (if it has one)
        // and zeros elsewhere. An image stays mapped: set back from it, or (never expected)
        // zeros mapped there instead, else the region is unmapped as it drops.
        let image = self.image.take();
        let overlaid = image.as_ref().map_or(0, |image| image.len());
        if let Some(image) = image
            && region.reset_to_image(&image).is_err()
            && region.unmap_image().is_err()
        {
            return;
        }
        let reached = self.grew_to.unwrap_or(self.pool.region_bytes);
        let mapped = region.zero(overlaid..reached);
        // What stays mapped: what this call's reach kept, the image (at most), and what earlier
        // calls left beyond both.
        let holds = mapped + region.image_mapped + self.held.saturating_sub(reached.max(overlaid));
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

    /// The memory of type `ty` for `store`, in a region the returned guard lends it, starting
    /// as `image` if one is given and it can be mapped (the guard says whether it was): its
    /// bytes beyond `ty`'s size are the image's too, for the memory to grow into. The guard
    /// must live as long as the store: keep it in the store's data, which wasmi drops after
    /// the store's memories, and which is dropped with the store.
    pub(crate) fn memory(
        &self,
        mut store: impl AsContextMut,
        ty: MemoryType,
        image: Option<&Arc<MemoryImage>>,
    ) -> Result<(Memory, PooledRegion), wasmi::Error> {
        let idle = {
            let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
            // The most recently used region over the same image (or over none), else the most
            // recently used over none, else the least recently used.
            let wanted = image.map_or(0, |image| image.id());
            let over = |id: u64| idle.regions.iter().rposition(|(r, _)| r.image_id == id);
            let found = over(wanted).or_else(|| over(0));
            let region = match (found, idle.regions.is_empty()) {
                (Some(at), _) => Some(idle.regions.remove(at)),
                (None, true) => None,
                (None, false) => Some(idle.regions.remove(0)),
            };
            if let Some((_, held)) = &region {
                idle.bytes -= held;
            }
            region
        };
        let map = || {
            Region::map(self.inner.region_bytes)
                .map_err(|e| wasmi::Error::new(format!("cannot map a memory region: {e}")))
        };
        let (mut region, mut held) = match idle {
            Some(idle) => idle,
            None => (map()?, 0),
        };
        let prepared = match image {
            Some(image) => region.overlay(image).map(|()| Some(image.clone())),
            None => region.unmap_image().map(|()| None),
        };
        let image = match prepared {
            Ok(image) => image,
            Err(e) => {
                // A failed MAP_FIXED may leave a hole or an image: a fresh region instead (the
                // caller then copies the snapshot in, if there is one).
                tracing::warn!(error = %e, "could not map a memory region's start again");
                (region, held) = (map()?, 0);
                None
            }
        };
        // SAFETY: the region is lent to this store alone until the returned guard gives it
        // back, which the caller does only after the store is gone, so the slice is never
        // aliased while wasmi may use it. wasmi keeps a raw pointer and never frees a buffer it
        // was given.
        let buffer: &'static mut [u8] =
            unsafe { std::slice::from_raw_parts_mut(region.start.as_ptr(), region.len) };
        // Goes back to the pool as it was if wasmi refuses the memory (it wrote nothing).
        let mut lent = PooledRegion {
            region: Some(region),
            pool: self.inner.clone(),
            held,
            grew_to: Some(0),
            image,
        };
        // SAFETY: a region lent without an image reads as zeros throughout (a fresh mapping, or
        // zeroed when it came back), which is what a new memory's bytes must be; or it starts as a snapshot's
        // image (and zeros beyond it), which is what a restored memory's bytes must be before
        // its instantiation writes its data segments (the restore puts the image's bytes back
        // there). wasmi takes the bytes beyond the initial size as they are too, as the memory
        // grows into them.
        let memory = unsafe { Memory::new_static_vouched(store.as_context_mut(), ty, buffer)? };
        lent.grew_to = None;
        Ok((memory, lent))
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
    fn a_large_memory_comes_back_as_zeros_too() {
        let pages = (2 * WRITTEN_ZEROS / WASM_PAGE) as u64;
        let pool = MemoryPool::new(pages as usize * WASM_PAGE, 1);
        let engine = wasmi::Engine::default();
        let ty = MemoryType::new(pages as u32, None);
        for round in 0..2 {
            let mut store = wasmi::Store::new(&engine, ());
            let (memory, mut region) = pool.memory(&mut store, ty, None).unwrap();
            assert!(memory.data(&store).iter().all(|&b| b == 0), "round {round}");
            memory.data_mut(&mut store).fill(0x55);
            region.touched(memory.data(&store).len());
            drop(store);
            drop(region);
            let held = pool.inner.idle.lock().unwrap().bytes;
            assert_eq!(
                held,
                pages as usize * WASM_PAGE,
                "written pages stay mapped"
            );
        }
        // A call that reaches as far but writes nothing: the pages, zeros now, go back.
        let mut store = wasmi::Store::new(&engine, ());
        let (memory, mut region) = pool.memory(&mut store, ty, None).unwrap();
        region.touched(memory.data(&store).len());
        drop(store);
        drop(region);
        assert_eq!(pool.inner.idle.lock().unwrap().bytes, 0);
    }

    #[test]
    fn a_large_memory_touched_here_and_there_comes_back_as_zeros_holding_those_pages() {
        let pages = (4 * WRITTEN_ZEROS / WASM_PAGE) as u32;
        let pool = MemoryPool::new(pages as usize * WASM_PAGE, 1);
        let engine = wasmi::Engine::default();
        let ty = MemoryType::new(pages, None);
        let mut store = wasmi::Store::new(&engine, ());
        let (memory, mut region) = pool.memory(&mut store, ty, None).unwrap();
        let data = memory.data_mut(&mut store);
        let len = data.len();
        data[10] = 1;
        data[len / 2] = 2;
        data[len - 1] = 3;
        region.touched(len);
        drop(store);
        drop(region);
        // The three pages written are written over and stay; the rest was never touched.
        let held = pool.inner.idle.lock().unwrap().bytes;
        assert_eq!(held, 3 * host_page_size());
        let mut store = wasmi::Store::new(&engine, ());
        let (memory, region) = pool.memory(&mut store, ty, None).unwrap();
        assert!(memory.data(&store).iter().all(|&b| b == 0));
        drop(store);
        drop(region);
    }

    #[test]
    fn a_region_lent_over_an_image_is_lent_next_over_another_or_as_zeros() {
        let pool = MemoryPool::new(8 * WASM_PAGE, 1);
        let engine = wasmi::Engine::default();
        let ty = MemoryType::new(1, Some(8));
        let page = |byte: u8| vec![byte; WASM_PAGE];
        let (ones, threes, twos) = (page(1), page(3), page(2));
        let long = MemoryImage::new(
            4 * WASM_PAGE,
            [(0, &ones[..]), (3 * WASM_PAGE, &threes[..])],
        )
        .map(Arc::new)
        .unwrap();
        let short = Arc::new(MemoryImage::new(WASM_PAGE, [(0, &twos[..])]).unwrap());
        // Lends a memory (grown to 4 pages) over `image`; gives its bytes, after writing some.
        let lend = |image: Option<&Arc<MemoryImage>>| {
            let mut store = wasmi::Store::new(&engine, ());
            let (memory, region) = pool.memory(&mut store, ty, image).unwrap();
            assert_eq!(region.overlaid(), image.is_some());
            memory.grow(&mut store, 3).unwrap();
            let bytes = memory.data(&store).to_vec();
            memory.data_mut(&mut store)[..8].fill(9);
            memory.data_mut(&mut store)[5 * WASM_PAGE / 2] = 9;
            drop(store);
            drop(region);
            bytes
        };
        // Twice over the same image: the second time over the region as the first left it,
        // the pages it wrote set back.
        for _ in 0..2 {
            let bytes = lend(Some(&long));
            assert!(bytes[..WASM_PAGE].iter().all(|&b| b == 1));
            assert!(bytes[WASM_PAGE..3 * WASM_PAGE].iter().all(|&b| b == 0));
            assert!(bytes[3 * WASM_PAGE..].iter().all(|&b| b == 3));
            assert_eq!(pool.idle(), 1);
        }
        // The shorter image, over the region the longer one was mapped in: zeros beyond it.
        let bytes = lend(Some(&short));
        assert!(
            bytes[..WASM_PAGE].iter().all(|&b| b == 2),
            "no earlier writes"
        );
        assert!(bytes[WASM_PAGE..].iter().all(|&b| b == 0));
        // No image: zeros throughout, twice (the second time after its own writes).
        for _ in 0..2 {
            assert!(lend(None).iter().all(|&b| b == 0));
        }
        assert_eq!(pool.idle(), 1, "one region all along");
    }

    #[test]
    fn the_page_map_tells_a_calls_copies_from_its_images_pages_on_linux() {
        // Else every call over an image maps it again (correct, but a TLB flush per call).
        assert!(page_map().is_ok());
    }

    #[test]
    fn a_memory_wasmi_refuses_leaves_its_region_in_the_pool() {
        let pool = MemoryPool::new(WASM_PAGE, 1);
        let engine = wasmi::Engine::default();
        let mut store = wasmi::Store::new(&engine, ());
        let (_, region) = pool
            .memory(&mut store, MemoryType::new(1, None), None)
            .unwrap();
        drop(region);
        assert_eq!(pool.idle(), 1);
        // Two pages in a one-page region.
        assert!(
            pool.memory(&mut store, MemoryType::new(2, None), None)
                .is_err()
        );
        assert_eq!(pool.idle(), 1, "the region went back");
    }

    #[test]
    fn a_region_comes_back_zeroed_as_far_as_the_next_memory_reaches() {
        let pool = MemoryPool::new(4 * WASM_PAGE, 1);
        let engine = wasmi::Engine::default();
        let ty = MemoryType::new(1, Some(4));
        let mut store = wasmi::Store::new(&engine, ());
        let (memory, region) = pool.memory(&mut store, ty, None).unwrap();
        memory.grow(&mut store, 2).unwrap();
        memory.data_mut(&mut store).fill(0xAA);
        // Past the limit: the region is only as large as the limit.
        assert!(memory.grow(&mut store, 2).is_err());
        // The store first, as when the region lives in the store's data.
        drop(store);
        drop(region);
        assert_eq!(pool.idle(), 1);
        let mut store = wasmi::Store::new(&engine, ());
        let (memory, region) = pool.memory(&mut store, ty, None).unwrap();
        assert_eq!(pool.idle(), 0, "the idle region is reused");
        memory.grow(&mut store, 3).unwrap();
        assert!(memory.data(&store).iter().all(|&b| b == 0));
        assert_eq!(memory.data(&store).len(), 4 * WASM_PAGE);
        drop(store);
        drop(region);
    }

    #[test]
    fn idle_regions_hold_only_what_was_zeroed_by_writing_and_are_kept_while_that_fits() {
        let engine = wasmi::Engine::default();
        let ty = MemoryType::new(1, None);
        // Returns `n` regions of `pool` at once, each having held `touched` bytes (if told).
        let lend_and_return = |pool: &MemoryPool, n: usize, touched: Option<usize>| {
            let mut stores: Vec<_> = (0..n).map(|_| wasmi::Store::new(&engine, ())).collect();
            let mut regions: Vec<_> = stores
                .iter_mut()
                .map(|store| pool.memory(store, ty, None).unwrap().1)
                .collect();
            if let Some(touched) = touched {
                regions.iter_mut().for_each(|r| r.touched(touched));
            }
            drop(stores);
            drop(regions);
        };
        let held = |pool: &MemoryPool| pool.inner.idle.lock().unwrap().bytes;
        // Regions whose memories stayed small hold what was zeroed by writing: all kept, for
        // as many calls at once, and reused.
        let pool = MemoryPool::new(IDLE_BYTES / 2, 1);
        lend_and_return(&pool, 40, Some(WASM_PAGE));
        assert_eq!((pool.idle(), held(&pool)), (40, 40 * WASM_PAGE));
        lend_and_return(&pool, 40, Some(WASM_PAGE));
        assert_eq!(pool.idle(), 40, "the idle ones were reused");
        // Larger memories (or ones that may have touched it all) are handed back to the
        // kernel: their regions hold nothing and are kept.
        let pool = MemoryPool::new(IDLE_BYTES / 2, 1);
        lend_and_return(&pool, 4, None);
        assert_eq!((pool.idle(), held(&pool)), (4, 0));
        // Idle regions beyond the one per worker are kept while what they hold fits.
        let fit = IDLE_BYTES / WRITTEN_ZEROS;
        let pool = MemoryPool::new(WRITTEN_ZEROS, 1);
        lend_and_return(&pool, fit + 2, Some(WRITTEN_ZEROS));
        assert_eq!((pool.idle(), held(&pool)), (fit, IDLE_BYTES));
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
        let (memory, region) = pool
            .memory(&mut store, MemoryType::new(1, None), None)
            .unwrap();
        store.data_mut().region = Some(region);
        memory.grow(&mut store, 2).unwrap();
        drop(store);
        assert_eq!(pool.idle(), 1);
        assert_eq!(pool.inner.idle.lock().unwrap().bytes, 3 * WASM_PAGE);
    }
}
