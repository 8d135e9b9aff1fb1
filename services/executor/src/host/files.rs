//! Shared files as a call sees them: the files users upload (`PUT /file`), fetched from the
//! state service the first time the call opens one (parking it), and kept in the call's own
//! copy. A call may write files, but its writes stay in that copy, which is bounded like the
//! call's memory: the bytes are the call's, held by the host.
//!
//! Beside them, a call may have files the executor mounts read-only from its own memory (the
//! Python runtime's standard library and the function's script): opened without a fetch or
//! a copy, and never written.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use wasmi::{Memory, Store};

use super::HostState;
use crate::limits::Limits;

/// The first descriptor a file opens as: 0 to 2 are the standard streams, 3 the root
/// directory (WASI's one preopen).
pub(crate) const FIRST_FD: usize = 4;

/// One call's files and open descriptors.
pub(crate) struct CallFiles {
    /// File contents this call has seen or written, by canonical path.
    pub(crate) files: HashMap<String, Vec<u8>>,
    /// Bytes in `files`.
    pub(crate) bytes: usize,
    pub(crate) max_bytes: usize,
    /// Open files by descriptor.
    pub(crate) open: HashMap<usize, OpenFile>,
    next_fd: usize,
    /// The read-only files the executor gives this call, if any.
    pub(crate) mounted: Option<Arc<MountedFiles>>,
}

pub(crate) struct OpenFile {
    pub(crate) path: String,
    pub(crate) pos: usize,
    pub(crate) write: bool,
    pub(crate) append: bool,
    /// A mounted file's contents (the call's own files are in [`CallFiles::files`]).
    pub(crate) mounted: Option<Bytes>,
}

/// Read-only files by path, under directories that hold nothing else: a path under one of
/// them is a mounted file or no file at all (never a shared file to fetch).
#[derive(Debug, Default)]
pub(crate) struct MountedFiles {
    /// Directory paths, each ending in `/`.
    dirs: Vec<String>,
    files: HashMap<String, Bytes>,
}

/// What a path is among the mounted files.
pub(crate) enum Mounted<'a> {
    File(&'a Bytes),
    Directory,
    Missing,
    /// Not under a mounted directory: a shared file's path.
    Elsewhere,
}

impl MountedFiles {
    /// `files` under `dirs` (absolute paths, without a trailing `/`).
    pub(crate) fn new(dirs: &[&str], files: impl IntoIterator<Item = (String, Bytes)>) -> Self {
        // Kept in the canonical form WASI paths are given in (`names::file_path`): relative
        // to the root.
        let relative = |path: &str| path.trim_start_matches('/').to_string();
        let dirs = dirs
            .iter()
            .map(|dir| format!("{}/", relative(dir)))
            .collect();
        let files = files
            .into_iter()
            .map(|(path, contents)| (relative(&path), contents))
            .collect();
        Self { dirs, files }
    }

    /// What `path` (canonical: relative to the root, as `names::file_path` makes WASI paths)
    /// is here.
    pub(crate) fn find(&self, path: &str) -> Mounted<'_> {
        if let Some(contents) = self.files.get(path) {
            return Mounted::File(contents);
        }
        let as_dir = format!("{path}/");
        let holds_mounts = self.dirs.iter().any(|dir| dir.starts_with(&as_dir))
            || self.files.keys().any(|file| file.starts_with(&as_dir));
        if holds_mounts {
            Mounted::Directory
        } else if self.dirs.iter().any(|dir| path.starts_with(dir.as_str())) {
            Mounted::Missing
        } else {
            Mounted::Elsewhere
        }
    }
}

/// The call's files would pass its budget.
#[derive(Debug)]
pub(crate) struct OverBudget;

impl CallFiles {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            files: HashMap::new(),
            bytes: 0,
            max_bytes: limits.max_memory_bytes,
            open: HashMap::new(),
            next_fd: FIRST_FD,
            mounted: None,
        }
    }

    /// Keeps `contents` as the file at `path`, if the call's budget allows.
    pub(crate) fn keep(&mut self, path: String, contents: Vec<u8>) -> Result<(), OverBudget> {
        let old = self.files.get(&path).map_or(0, Vec::len);
        let total = self.bytes - old + contents.len();
        if total > self.max_bytes {
            return Err(OverBudget);
        }
        self.bytes = total;
        self.files.insert(path, contents);
        Ok(())
    }

    /// Opens a file the call has (see [`CallFiles::keep`]) and returns its descriptor.
    pub(crate) fn open(&mut self, path: String, write: bool, append: bool) -> usize {
        self.open_file(OpenFile {
            path,
            pos: 0,
            write,
            append,
            mounted: None,
        })
    }

    /// Opens a mounted file, read-only, and returns its descriptor.
    pub(crate) fn open_mounted(&mut self, path: String, contents: Bytes) -> usize {
        self.open_file(OpenFile {
            path,
            pos: 0,
            write: false,
            append: false,
            mounted: Some(contents),
        })
    }

    fn open_file(&mut self, file: OpenFile) -> usize {
        let fd = self.reserve_fd();
        self.open.insert(fd, file);
        fd
    }

    /// A descriptor no file or socket of the call has had.
    pub(crate) fn reserve_fd(&mut self) -> usize {
        let fd = self.next_fd;
        self.next_fd += 1;
        fd
    }

    pub(crate) fn size(&self, path: &str) -> usize {
        self.files.get(path).map_or(0, Vec::len)
    }

    /// An open file's size.
    pub(crate) fn open_size(&self, file: &OpenFile) -> usize {
        match &file.mounted {
            Some(contents) => contents.len(),
            None => self.size(&file.path),
        }
    }
}

/// What a call does once a shared file (or its absence) is known: the ABI's own next step,
/// which returns the parked import's result.
pub(crate) type AfterFetch =
    Box<dyn FnOnce(&mut Store<HostState>, Memory, Result<Option<Bytes>, String>) -> i64 + Send>;

/// A shared file a parked call waits for.
pub(crate) struct FileOp {
    pub(crate) path: String,
    pub(crate) then: AfterFetch,
}

impl fmt::Debug for FileOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileOp").field("path", &self.path).finish()
    }
}
