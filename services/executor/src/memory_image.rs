//! A snapshot's linear memory as a file in memory (a sealed memfd), mapped privately over a
//! call's memory region: a restore then costs an `mmap` and a page fault for each page the
//! call touches (a read maps the image's page, a write copies it), or, in a region mapped over
//! the same image already, a copy of the pages earlier calls wrote, whatever the snapshot's
//! size, instead of a copy of every page it changed. The image is sealed, so no one can change
//! what later calls start from, and the executor reads it through one read-only mapping.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::ptr::NonNull;

/// A sealed in-memory file of a memory's bytes, and a read-only view of it.
pub(crate) struct MemoryImage {
    file: File,
    view: NonNull<u8>,
    len: usize,
    /// Unique in the process (an address could be reused by a later image).
    id: u64,
}

// SAFETY: the view is a read-only mapping of a sealed file: nothing writes it while it lives.
unsafe impl Send for MemoryImage {}
// SAFETY: as above; shared references only read it.
unsafe impl Sync for MemoryImage {}

impl MemoryImage {
    /// An image of `len` bytes (a whole number of host pages, not 0) holding each of `pages`
    /// at its offset and zeros elsewhere (which take no memory).
    pub(crate) fn new<'a>(
        len: usize,
        pages: impl IntoIterator<Item = (usize, &'a [u8])>,
    ) -> io::Result<Self> {
        if len == 0 || !len.is_multiple_of(crate::memory_pool::host_page_size()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("an image of {len} bytes is not whole pages"),
            ));
        }
        // SAFETY: a C string literal; the flags are memfd_create's.
        let fd = unsafe {
            libc::memfd_create(
                c"fwasm-snapshot".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a descriptor just opened, owned by nothing else.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        file.set_len(len as u64)?;
        for (at, bytes) in pages {
            if at + bytes.len() > len {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("a page at {at} is beyond the image's {len} bytes"),
                ));
            }
            file.write_all_at(bytes, at as u64)?;
        }
        let seals =
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
        // SAFETY: fcntl on a descriptor this function owns.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new read-only shared mapping of the whole file.
        let view = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if view == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let view = NonNull::new(view.cast()).ok_or_else(io::Error::last_os_error)?;
        static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Self {
            file,
            view,
            len,
            id,
        })
    }

    /// Its size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// What tells it from every other image of the process (never 0).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Maps the image privately over the `len()` bytes at `at`, replacing what was mapped
    /// there: writes through the mapping copy the pages they touch and stay private to it.
    ///
    /// # Safety
    ///
    /// `at` starts `len()` bytes of a mapping the caller owns and that no one else uses.
    pub(crate) unsafe fn map_private_at(&self, at: NonNull<u8>) -> io::Result<()> {
        // SAFETY: the caller's promise; MAP_FIXED replaces the caller's own pages.
        let mapped = unsafe {
            libc::mmap(
                at.as_ptr().cast(),
                self.len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_FIXED,
                self.file.as_raw_fd(),
                0,
            )
        };
        if mapped == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl AsRef<[u8]> for MemoryImage {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the view maps `len` bytes, read-only, for as long as the image lives.
        unsafe { std::slice::from_raw_parts(self.view.as_ptr(), self.len) }
    }
}

impl Drop for MemoryImage {
    fn drop(&mut self) {
        // SAFETY: the view made in `new`, which no one uses once the image is dropped (slices
        // of it borrow the image).
        unsafe { libc::munmap(self.view.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_holds_its_pages_and_zeros_and_cannot_be_changed() {
        let page = crate::memory_pool::host_page_size();
        let image = MemoryImage::new(4 * page, [(page, &[7u8; 16][..])]).unwrap();
        let bytes = image.as_ref();
        assert_eq!(bytes.len(), 4 * page);
        assert_eq!(&bytes[page..page + 16], &[7; 16]);
        assert!(bytes[..page].iter().all(|&b| b == 0));
        assert!(image.file.write_all_at(b"x", 0).is_err(), "sealed");
        assert!(MemoryImage::new(page + 1, []).is_err());
        assert!(MemoryImage::new(page, [(page - 1, &[1u8, 2][..])]).is_err());
    }

    #[test]
    fn a_private_mapping_starts_as_the_image_and_keeps_its_writes_to_itself() {
        let page = crate::memory_pool::host_page_size();
        let image = MemoryImage::new(2 * page, [(0, &[9u8; 8][..])]).unwrap();
        // SAFETY: a fresh anonymous mapping this test owns, mapped over and then unmapped.
        unsafe {
            let region = libc::mmap(
                std::ptr::null_mut(),
                2 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(region, libc::MAP_FAILED);
            let at = NonNull::new(region.cast::<u8>()).unwrap();
            image.map_private_at(at).unwrap();
            let mapped = std::slice::from_raw_parts_mut(at.as_ptr(), 2 * page);
            assert_eq!(&mapped[..8], &[9; 8]);
            mapped[0] = 1;
            mapped[page] = 2;
            assert_eq!(image.as_ref()[0], 9, "the image is unchanged");
            assert_eq!(image.as_ref()[page], 0);
            libc::munmap(region, 2 * page);
        }
    }
}
