//! A restored call's memory, as fwasm makes it today (a pooled region: wasmi zeroes the
//! initial pages and the pages it grows, then the snapshot's changed pages are copied in)
//! against copy-on-write (the snapshot in a memfd, mapped privately over the region, and a
//! memory made with the patched `Memory::new_static_vouched`, which leaves the bytes as they
//! are): each call instantiates a module importing its memory, runs `handle` (reads one word
//! of the snapshot, writes one word) and drops its store. The floor: the same call with a
//! fresh one-page memory and no snapshot.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use wasmi::{Engine, Linker, Memory, MemoryType, Module, Store};

const PAGE: usize = 64 << 10;
const REGION: usize = 64 << 20;

const GUEST: &str = r#"
(module
  (import "env" "memory" (memory 1))
  (func (export "handle") (result i32)
    (i32.store (i32.const 16) (i32.const 7))
    (i32.load (i32.const 65536))))
"#;

struct Region(*mut u8);

impl Region {
    fn map() -> Region {
        // SAFETY: a fresh private anonymous mapping.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                REGION,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert_ne!(at, libc::MAP_FAILED);
        Region(at.cast())
    }

    fn buffer(&self) -> &'static mut [u8] {
        // SAFETY: one store at a time uses the region in this bench.
        unsafe { std::slice::from_raw_parts_mut(self.0, REGION) }
    }

    /// Maps `len` bytes of `fd` privately over the region's start (copy on write).
    fn map_snapshot(&self, fd: i32, len: usize) {
        // SAFETY: replaces the start of the region, which no store uses now.
        let at = unsafe {
            libc::mmap(
                self.0.cast(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_FIXED,
                fd,
                0,
            )
        };
        assert_ne!(at, libc::MAP_FAILED);
    }
}

/// An initialised memory image of `mib` MiB: every page written.
fn image(mib: usize) -> Vec<u8> {
    (0..mib << 20).map(|i| (i % 251) as u8 + 1).collect()
}

fn memfd_with(image: &[u8]) -> i32 {
    // SAFETY: plain syscalls on a descriptor made here.
    unsafe {
        let fd = libc::memfd_create(c"snapshot".as_ptr(), 0);
        assert!(fd >= 0);
        let written = libc::write(fd, image.as_ptr().cast(), image.len());
        assert_eq!(written as usize, image.len());
        fd
    }
}

fn call(engine: &Engine, module: &Module, make: impl FnOnce(&mut Store<()>) -> Memory) -> i32 {
    let mut store = Store::new(engine, ());
    let memory = make(&mut store);
    let mut linker = Linker::<()>::new(engine);
    linker.define("env", "memory", memory).unwrap();
    let instance = linker.instantiate_and_start(&mut store, module).unwrap();
    let handle = instance
        .get_typed_func::<(), i32>(&store, "handle")
        .unwrap();
    handle.call(&mut store, ()).unwrap()
}

fn restore(c: &mut Criterion) {
    let engine = Engine::default();
    let module = Module::new(&engine, wat::parse_str(GUEST).unwrap()).unwrap();
    let region = Region::map();
    let mut group = c.benchmark_group("restore");
    group.bench_function("fresh, no snapshot", |b| {
        b.iter(|| {
            black_box(call(&engine, &module, |store| {
                let ty = MemoryType::new(2, None);
                Memory::new_static(store, ty, region.buffer()).unwrap()
            }))
        })
    });
    for mib in [1usize, 4, 16] {
        let image = image(mib);
        let pages = (image.len() / PAGE) as u64;
        group.bench_function(format!("copied/{mib} MiB"), |b| {
            b.iter(|| {
                let got = call(&engine, &module, |store| {
                    let ty = MemoryType::new(1, None);
                    let memory = Memory::new_static(&mut *store, ty, region.buffer()).unwrap();
                    memory.grow(&mut *store, pages - 1).unwrap();
                    memory.data_mut(&mut *store)[..image.len()].copy_from_slice(&image);
                    memory
                });
                assert_eq!(got, i32::from_le_bytes([26, 27, 28, 29]));
            })
        });
        let fd = memfd_with(&image);
        group.bench_function(format!("copy-on-write/{mib} MiB"), |b| {
            b.iter(|| {
                region.map_snapshot(fd, image.len());
                let got = call(&engine, &module, |store| {
                    let ty = MemoryType::new(pages as u32, None);
                    // SAFETY: the region past the image is a fresh anonymous mapping (zero).
                    unsafe { Memory::new_static_vouched(store, ty, region.buffer()) }.unwrap()
                });
                assert_eq!(got, i32::from_le_bytes([26, 27, 28, 29]));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, restore);
criterion_main!(benches);
