//! Shared files as a call sees them: the files users upload (`PUT /file`), fetched from the
//! state service the first time the call opens one (parking it), and kept in the call's own
//! copy. A call may write files, but its writes stay in that copy, which is bounded like the
//! call's memory: the bytes are the call's, held by the host.

use std::collections::HashMap;
use std::fmt;

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
}

pub(crate) struct OpenFile {
    pub(crate) path: String,
    pub(crate) pos: usize,
    pub(crate) write: bool,
    pub(crate) append: bool,
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
        let fd = self.next_fd;
        self.next_fd += 1;
        self.open.insert(
            fd,
            OpenFile {
                path,
                pos: 0,
                write,
                append,
            },
        );
        fd
    }

    pub(crate) fn size(&self, path: &str) -> usize {
        self.files.get(path).map_or(0, Vec::len)
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
