//! A WASI preview1 subset for C and C++ guests (wasi-libc): stdout and stderr captured per
//! call, clocks, random bytes, args and environment, `proc_exit`, and a virtual filesystem
//! preopened at "/" whose files are the shared files users upload (`PUT /file`). A call may
//! write files, but its writes stay in its own copy. Every other preview1 function returns
//! ENOSYS instead of trapping.

use std::collections::HashMap;
use std::fmt;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fwasm_proto::names::PathProblem;
use wasmi::{Caller, FuncType, Linker, Memory, Store, Val, ValType};

use crate::host::{HostState, guest_slice};
use crate::limits::Limits;
use crate::park::{HostOp, park};

pub(crate) const MODULE: &str = "wasi_snapshot_preview1";

/// The errno values this host returns.
mod errno {
    pub const SUCCESS: i32 = 0;
    pub const BADF: i32 = 8;
    pub const EXIST: i32 = 20;
    pub const FAULT: i32 = 21;
    pub const FBIG: i32 = 22;
    pub const INVAL: i32 = 28;
    pub const IO: i32 = 29;
    pub const ISDIR: i32 = 31;
    pub const NOENT: i32 = 44;
    pub const NOMEM: i32 = 48;
    pub const NOSYS: i32 = 52;
    pub const SPIPE: i32 = 70;
    pub const NOTCAPABLE: i32 = 76;
}

const FILETYPE_CHARACTER_DEVICE: u8 = 2;
const FILETYPE_DIRECTORY: u8 = 3;
const FILETYPE_REGULAR_FILE: u8 = 4;
const OFLAG_CREAT: i32 = 1;
const OFLAG_DIRECTORY: i32 = 2;
const OFLAG_EXCL: i32 = 4;
const OFLAG_TRUNC: i32 = 8;
const FDFLAG_APPEND: i32 = 1;
const RIGHT_FD_WRITE: i64 = 1 << 6;
/// The one preopened directory, the filesystem root.
const ROOT_FD: usize = 3;

/// The WASI side of one call's host state.
pub(crate) struct WasiState {
    function: String,
    started: Instant,
    output: Vec<u8>,
    max_output: usize,
    /// File contents this call has seen or written, by canonical path.
    files: HashMap<String, Vec<u8>>,
    /// Bytes in `files`, bounded like the call's memory: they are the call's, held by the host.
    files_bytes: usize,
    max_files_bytes: usize,
    /// Open files; fds 0 to 3 are stdin, stdout, stderr and the root.
    open: HashMap<usize, OpenFile>,
    next_fd: usize,
}

struct OpenFile {
    path: String,
    pos: usize,
    write: bool,
    append: bool,
}

impl WasiState {
    pub(crate) fn new(function: &str, limits: &Limits) -> Self {
        Self {
            function: function.to_string(),
            started: Instant::now(),
            output: Vec::new(),
            max_output: limits.max_stdout_bytes,
            files: HashMap::new(),
            files_bytes: 0,
            max_files_bytes: limits.max_memory_bytes,
            open: HashMap::new(),
            next_fd: ROOT_FD + 1,
        }
    }

    /// What the call wrote to stdout and stderr.
    pub(crate) fn take_output(&mut self) -> Bytes {
        std::mem::take(&mut self.output).into()
    }

    /// Keeps `contents` as the file at `path`, if the call's file budget allows.
    fn keep_file(&mut self, path: String, contents: Vec<u8>) -> Result<(), i32> {
        let old = self.files.get(&path).map_or(0, Vec::len);
        let total = self.files_bytes - old + contents.len();
        if total > self.max_files_bytes {
            return Err(errno::NOMEM);
        }
        self.files_bytes = total;
        self.files.insert(path, contents);
        Ok(())
    }

    fn capture(&mut self, bytes: &[u8]) {
        const CUT: &[u8] = b"\n[output cut: over the limit]\n";
        let room = self.max_output.saturating_sub(self.output.len());
        if room == 0 {
            return;
        }
        if bytes.len() <= room {
            self.output.extend_from_slice(bytes);
        } else {
            self.output.extend_from_slice(&bytes[..room]);
            self.output.extend_from_slice(CUT);
            self.max_output = 0;
        }
    }

    fn open_file(&mut self, path: String, write: bool, append: bool) -> usize {
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
}

/// `proc_exit`: ends the call with a code. Never reaches a user as an error.
#[derive(Debug)]
pub(crate) struct ProcExit(pub(crate) i32);

impl fmt::Display for ProcExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exited with code {}", self.0)
    }
}

impl wasmi::errors::HostError for ProcExit {}

/// What a `path_open` or `path_filestat_get` of a file this call has not seen waits for.
#[derive(Debug)]
pub(crate) struct FileOp {
    pub(crate) path: String,
    then: AfterFetch,
}

#[derive(Debug)]
enum AfterFetch {
    Open {
        fd_out: u32,
        write: bool,
        append: bool,
        truncate: bool,
        /// O_CREAT: a file that does not exist is created empty.
        create: bool,
    },
    Stat {
        buf: u32,
    },
}

/// Finishes a parked file op once the shared file (or its absence) is known.
pub(crate) fn complete(
    store: &mut Store<HostState>,
    memory: Memory,
    op: FileOp,
    fetched: Result<Option<Bytes>, String>,
) -> Val {
    let creates = matches!(op.then, AfterFetch::Open { create: true, .. });
    let data = match fetched {
        Ok(Some(data)) => data.to_vec(),
        Ok(None) if creates => Vec::new(),
        Ok(None) => return Val::I32(errno::NOENT),
        Err(message) => {
            store.data_mut().last_error = Some(message);
            return Val::I32(errno::IO);
        }
    };
    let wasi = &mut store.data_mut().wasi;
    let mut contents = data;
    match op.then {
        AfterFetch::Open {
            fd_out,
            write,
            append,
            truncate,
            ..
        } => {
            if truncate && write {
                contents.clear();
            }
            if let Err(errno) = wasi.keep_file(op.path.clone(), contents) {
                return Val::I32(errno);
            }
            let fd = wasi.open_file(op.path, write, append);
            Val::I32(errno_of(write_u32(
                memory.data_mut(store),
                fd_out,
                fd as u32,
            )))
        }
        AfterFetch::Stat { buf } => {
            let size = contents.len() as u64;
            if let Err(errno) = wasi.keep_file(op.path, contents) {
                return Val::I32(errno);
            }
            Val::I32(errno_of(write_filestat(
                memory.data_mut(store),
                buf,
                FILETYPE_REGULAR_FILE,
                size,
            )))
        }
    }
}

fn errno_of(result: Result<(), i32>) -> i32 {
    result.err().unwrap_or(errno::SUCCESS)
}

fn slot(memory: &mut [u8], at: u32, len: usize) -> Result<&mut [u8], i32> {
    let start = at as usize;
    memory
        .get_mut(start..start.checked_add(len).ok_or(errno::FAULT)?)
        .ok_or(errno::FAULT)
}

fn write_u32(memory: &mut [u8], at: u32, value: u32) -> Result<(), i32> {
    slot(memory, at, 4)?.copy_from_slice(&value.to_le_bytes());
    Ok(())
}

fn write_u64(memory: &mut [u8], at: u32, value: u64) -> Result<(), i32> {
    slot(memory, at, 8)?.copy_from_slice(&value.to_le_bytes());
    Ok(())
}

fn read_u32(memory: &[u8], at: u32) -> Result<u32, i32> {
    let start = at as usize;
    let bytes = memory
        .get(start..start.checked_add(4).ok_or(errno::FAULT)?)
        .ok_or(errno::FAULT)?;
    Ok(u32::from_le_bytes(bytes.try_into().expect("four bytes")))
}

/// A `filestat`: dev, ino, filetype, nlink, size, atim, mtim, ctim (64 bytes).
fn write_filestat(memory: &mut [u8], at: u32, filetype: u8, size: u64) -> Result<(), i32> {
    let stat = slot(memory, at, 64)?;
    stat.fill(0);
    stat[16] = filetype;
    stat[24..32].copy_from_slice(&1u64.to_le_bytes());
    stat[32..40].copy_from_slice(&size.to_le_bytes());
    Ok(())
}

/// The (pointer, length) pairs of an iovec array.
fn iovecs(memory: &[u8], iovs: u32, count: u32) -> Result<Vec<(u32, u32)>, i32> {
    (0..count)
        .map(|i| {
            let at = iovs.checked_add(i.checked_mul(8).ok_or(errno::FAULT)?);
            let at = at.ok_or(errno::FAULT)?;
            Ok((read_u32(memory, at)?, read_u32(memory, at + 4)?))
        })
        .collect()
}

fn memory_of(caller: &Caller<'_, HostState>) -> Result<Memory, i32> {
    caller.data().memory.ok_or(errno::IO)
}

fn args(function: &str) -> Vec<Vec<u8>> {
    vec![[function.as_bytes(), b"\0"].concat()]
}

/// Writes a list of NUL-terminated strings as `args_get`/`environ_get` do.
fn write_strings(memory: &mut [u8], list: &[Vec<u8>], ptrs: u32, buf: u32) -> Result<(), i32> {
    let mut at = buf;
    for (i, item) in list.iter().enumerate() {
        write_u32(memory, ptrs + 4 * i as u32, at)?;
        slot(memory, at, item.len())?.copy_from_slice(item);
        at += item.len() as u32;
    }
    Ok(())
}

fn fd_write(caller: &mut Caller<'_, HostState>, fd: i32, iovs: i32, count: i32, out: i32) -> i32 {
    let Ok(memory) = memory_of(caller) else {
        return errno::IO;
    };
    let (data, host) = memory.data_and_store_mut(&mut *caller);
    let vecs = match iovecs(data, iovs as u32, count as u32) {
        Ok(vecs) => vecs,
        Err(errno) => return errno,
    };
    // Checked first, and never gathered into one buffer: iovecs may repeat the same memory.
    let mut total = 0usize;
    for &(ptr, len) in &vecs {
        if slot(data, ptr, len as usize).is_err() {
            return errno::FAULT;
        }
        total = total.saturating_add(len as usize);
    }
    let wasi = &mut host.wasi;
    let chunks = vecs
        .iter()
        .map(|&(ptr, len)| &data[ptr as usize..ptr as usize + len as usize]);
    match fd {
        1 | 2 => {
            // Output past the limit is cut, but reported as written: the guest moves on.
            for chunk in chunks {
                wasi.capture(chunk);
            }
        }
        0 => return errno::BADF,
        fd => {
            let Some(file) = wasi.open.get_mut(&(fd as usize)) else {
                return errno::BADF;
            };
            if !file.write {
                return errno::BADF;
            }
            let contents = wasi.files.entry(file.path.clone()).or_default();
            if file.append {
                file.pos = contents.len();
            }
            let end = file.pos.saturating_add(total);
            let growth = end.saturating_sub(contents.len());
            if wasi.files_bytes.saturating_add(growth) > wasi.max_files_bytes {
                return errno::FBIG;
            }
            if growth > 0 {
                contents.resize(end, 0);
                wasi.files_bytes += growth;
            }
            for chunk in chunks {
                contents[file.pos..file.pos + chunk.len()].copy_from_slice(chunk);
                file.pos += chunk.len();
            }
        }
    }
    errno_of(write_u32(
        data,
        out as u32,
        total.min(u32::MAX as usize) as u32,
    ))
}

fn fd_read(caller: &mut Caller<'_, HostState>, fd: i32, iovs: i32, count: i32, out: i32) -> i32 {
    let Ok(memory) = memory_of(caller) else {
        return errno::IO;
    };
    let (data, host) = memory.data_and_store_mut(&mut *caller);
    let vecs = match iovecs(data, iovs as u32, count as u32) {
        Ok(vecs) => vecs,
        Err(errno) => return errno,
    };
    let wasi = &mut host.wasi;
    let read = match fd {
        // stdin is empty.
        0 => 0,
        1..=3 => return errno::BADF,
        fd => {
            let Some(file) = wasi.open.get_mut(&(fd as usize)) else {
                return errno::BADF;
            };
            let contents = wasi.files.get(&file.path).map_or(&[][..], Vec::as_slice);
            let mut read = 0;
            for (ptr, len) in vecs {
                let available = contents.len().saturating_sub(file.pos);
                if available == 0 {
                    break;
                }
                let n = available.min(len as usize);
                let Ok(target) = slot(data, ptr, n) else {
                    return errno::FAULT;
                };
                target.copy_from_slice(&contents[file.pos..file.pos + n]);
                file.pos += n;
                read += n;
                if n < len as usize {
                    break;
                }
            }
            read
        }
    };
    errno_of(write_u32(data, out as u32, read as u32))
}

fn fd_seek(caller: &mut Caller<'_, HostState>, fd: i32, offset: i64, whence: i32, out: i32) -> i32 {
    let Ok(memory) = memory_of(caller) else {
        return errno::IO;
    };
    let (data, host) = memory.data_and_store_mut(&mut *caller);
    let wasi = &mut host.wasi;
    let Some(file) = wasi.open.get_mut(&(fd as usize)) else {
        return if (0..=2).contains(&fd) {
            errno::SPIPE
        } else {
            errno::BADF
        };
    };
    let size = wasi.files.get(&file.path).map_or(0, Vec::len) as i64;
    let base = match whence {
        0 => 0,
        1 => file.pos as i64,
        2 => size,
        _ => return errno::INVAL,
    };
    let Some(pos) = base.checked_add(offset).filter(|pos| *pos >= 0) else {
        return errno::INVAL;
    };
    file.pos = pos as usize;
    errno_of(write_u64(data, out as u32, pos as u64))
}

fn path_arg(caller: &Caller<'_, HostState>, dirfd: i32, ptr: i32, len: i32) -> Result<String, i32> {
    if dirfd as usize != ROOT_FD {
        return Err(errno::BADF);
    }
    let memory = memory_of(caller)?;
    let bytes = guest_slice(memory.data(caller), ptr, len).map_err(|_| errno::FAULT)?;
    let path = std::str::from_utf8(bytes).map_err(|_| errno::INVAL)?;
    fwasm_proto::names::file_path(path).map_err(|problem| match problem {
        PathProblem::LeavesRoot => errno::NOTCAPABLE,
        PathProblem::NamesNoFile => errno::ISDIR,
        PathProblem::TooLong | PathProblem::ControlCharacter => errno::INVAL,
    })
}

/// Parks for a shared file, or answers at once if this call knows the file already.
fn fetch_or(
    caller: &mut Caller<'_, HostState>,
    op: FileOp,
    known: impl FnOnce(&mut Caller<'_, HostState>, FileOp) -> i32,
) -> Result<i32, wasmi::Error> {
    if caller.data().wasi.files.contains_key(&op.path) {
        return Ok(known(caller, op));
    }
    match park(caller, HostOp::File(op)) {
        Ok(suspend) => Err(suspend),
        // Outside fwasm_handle (a static constructor, say) shared files cannot be fetched.
        Err(refusal) => {
            caller.data_mut().last_error = Some(refusal.message);
            Ok(errno::IO)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn path_open(
    caller: &mut Caller<'_, HostState>,
    dirfd: i32,
    path: (i32, i32),
    oflags: i32,
    rights: i64,
    fdflags: i32,
    fd_out: i32,
) -> Result<i32, wasmi::Error> {
    let path = match path_arg(caller, dirfd, path.0, path.1) {
        Ok(path) => path,
        Err(errno) => return Ok(errno),
    };
    if oflags & OFLAG_DIRECTORY != 0 {
        return Ok(errno::NOSYS);
    }
    let write = rights & RIGHT_FD_WRITE != 0 || oflags & (OFLAG_CREAT | OFLAG_TRUNC) != 0;
    let append = fdflags & FDFLAG_APPEND != 0;
    let truncate = oflags & OFLAG_TRUNC != 0;
    let wasi = &mut caller.data_mut().wasi;
    if oflags & OFLAG_CREAT != 0 {
        if oflags & OFLAG_EXCL != 0 && wasi.files.contains_key(&path) {
            return Ok(errno::EXIST);
        }
        // A new file of this call's own: nothing to fetch.
        if (oflags & OFLAG_EXCL != 0 || truncate)
            && let Err(errno) = wasi.keep_file(path.clone(), Vec::new())
        {
            return Ok(errno);
        }
    }
    let then = AfterFetch::Open {
        fd_out: fd_out as u32,
        write,
        append,
        truncate,
        create: oflags & OFLAG_CREAT != 0,
    };
    fetch_or(caller, FileOp { path, then }, |caller, op| {
        let Ok(memory) = memory_of(caller) else {
            return errno::IO;
        };
        let AfterFetch::Open {
            fd_out,
            write,
            append,
            truncate,
            ..
        } = op.then
        else {
            return errno::INVAL;
        };
        let (data, host) = memory.data_and_store_mut(&mut *caller);
        if truncate
            && write
            && let Err(errno) = host.wasi.keep_file(op.path.clone(), Vec::new())
        {
            return errno;
        }
        let fd = host.wasi.open_file(op.path, write, append);
        errno_of(write_u32(data, fd_out, fd as u32))
    })
}

fn path_filestat_get(
    caller: &mut Caller<'_, HostState>,
    dirfd: i32,
    path: (i32, i32),
    buf: i32,
) -> Result<i32, wasmi::Error> {
    let path = match path_arg(caller, dirfd, path.0, path.1) {
        Ok(path) => path,
        Err(errno) => return Ok(errno),
    };
    let then = AfterFetch::Stat { buf: buf as u32 };
    fetch_or(caller, FileOp { path, then }, |caller, op| {
        let Ok(memory) = memory_of(caller) else {
            return errno::IO;
        };
        let (data, host) = memory.data_and_store_mut(&mut *caller);
        let size = host.wasi.files.get(&op.path).map_or(0, Vec::len) as u64;
        errno_of(write_filestat(
            data,
            buf as u32,
            FILETYPE_REGULAR_FILE,
            size,
        ))
    })
}

/// Nanoseconds since the Unix epoch (realtime) or since the call started (the others).
fn now_nanos(started: Instant, clock: i32) -> Option<u64> {
    match clock {
        0 => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_nanos() as u64),
        1..=3 => Some(started.elapsed().as_nanos() as u64),
        _ => None,
    }
}

macro_rules! wasi {
    ($linker:expr, $name:literal, |$caller:ident $(, $arg:ident: $ty:ty)*| $body:block) => {
        $linker
            .func_wrap(MODULE, $name, |mut $caller: Caller<'_, HostState>, $($arg: $ty),*| -> Result<i32, wasmi::Error> {
                let $caller = &mut $caller;
                $body
            })
            .expect(concat!("wasi ", $name, " is defined once"));
    };
}

pub(crate) fn define_imports(linker: &mut Linker<HostState>) {
    wasi!(
        linker,
        "fd_write",
        |caller, fd: i32, iovs: i32, count: i32, out: i32| {
            Ok(fd_write(caller, fd, iovs, count, out))
        }
    );
    wasi!(linker, "fd_read", |caller,
                              fd: i32,
                              iovs: i32,
                              count: i32,
                              out: i32| {
        Ok(fd_read(caller, fd, iovs, count, out))
    });
    wasi!(linker, "fd_seek", |caller,
                              fd: i32,
                              offset: i64,
                              whence: i32,
                              out: i32| {
        Ok(fd_seek(caller, fd, offset, whence, out))
    });
    wasi!(linker, "fd_tell", |caller, fd: i32, out: i32| {
        Ok(fd_seek(caller, fd, 0, 1, out))
    });
    wasi!(linker, "fd_close", |caller, fd: i32| {
        let wasi = &mut caller.data_mut().wasi;
        Ok(match fd {
            0..=3 => errno::SUCCESS,
            fd if wasi.open.remove(&(fd as usize)).is_some() => errno::SUCCESS,
            _ => errno::BADF,
        })
    });
    wasi!(linker, "fd_fdstat_get", |caller, fd: i32, buf: i32| {
        let Ok(memory) = memory_of(caller) else {
            return Ok(errno::IO);
        };
        let (data, host) = memory.data_and_store_mut(&mut *caller);
        let (filetype, flags) = match fd {
            0..=2 => (FILETYPE_CHARACTER_DEVICE, 0u16),
            3 => (FILETYPE_DIRECTORY, 0),
            fd => match host.wasi.open.get(&(fd as usize)) {
                Some(file) => (FILETYPE_REGULAR_FILE, u16::from(file.append)),
                None => return Ok(errno::BADF),
            },
        };
        let Ok(stat) = slot(data, buf as u32, 24) else {
            return Ok(errno::FAULT);
        };
        stat.fill(0);
        stat[0] = filetype;
        stat[2..4].copy_from_slice(&flags.to_le_bytes());
        stat[8..24].fill(0xff);
        Ok(errno::SUCCESS)
    });
    wasi!(linker, "fd_filestat_get", |caller, fd: i32, buf: i32| {
        let Ok(memory) = memory_of(caller) else {
            return Ok(errno::IO);
        };
        let (data, host) = memory.data_and_store_mut(&mut *caller);
        let (filetype, size) = match fd {
            0..=2 => (FILETYPE_CHARACTER_DEVICE, 0),
            3 => (FILETYPE_DIRECTORY, 0),
            fd => match host.wasi.open.get(&(fd as usize)) {
                Some(file) => (
                    FILETYPE_REGULAR_FILE,
                    host.wasi.files.get(&file.path).map_or(0, Vec::len) as u64,
                ),
                None => return Ok(errno::BADF),
            },
        };
        Ok(errno_of(write_filestat(data, buf as u32, filetype, size)))
    });
    wasi!(linker, "fd_prestat_get", |caller, fd: i32, buf: i32| {
        if fd as usize != ROOT_FD {
            return Ok(errno::BADF);
        }
        let Ok(memory) = memory_of(caller) else {
            return Ok(errno::IO);
        };
        let data = memory.data_mut(&mut *caller);
        // A directory (tag 0) whose name, "/", is one byte long.
        Ok(errno_of(slot(data, buf as u32, 8).map(|prestat| {
            prestat.fill(0);
            prestat[4..8].copy_from_slice(&1u32.to_le_bytes());
        })))
    });
    wasi!(
        linker,
        "fd_prestat_dir_name",
        |caller, fd: i32, path: i32, len: i32| {
            if fd as usize != ROOT_FD {
                return Ok(errno::BADF);
            }
            if len < 1 {
                return Ok(errno::INVAL);
            }
            let Ok(memory) = memory_of(caller) else {
                return Ok(errno::IO);
            };
            let data = memory.data_mut(&mut *caller);
            Ok(errno_of(
                slot(data, path as u32, 1).map(|name| name[0] = b'/'),
            ))
        }
    );
    wasi!(
        linker,
        "path_open",
        |caller,
         dirfd: i32,
         _dirflags: i32,
         path: i32,
         path_len: i32,
         oflags: i32,
         rights: i64,
         _inheriting: i64,
         fdflags: i32,
         fd_out: i32| {
            path_open(
                caller,
                dirfd,
                (path, path_len),
                oflags,
                rights,
                fdflags,
                fd_out,
            )
        }
    );
    wasi!(
        linker,
        "path_filestat_get",
        |caller, dirfd: i32, _flags: i32, path: i32, path_len: i32, buf: i32| {
            path_filestat_get(caller, dirfd, (path, path_len), buf)
        }
    );
    wasi!(
        linker,
        "clock_time_get",
        |caller, clock: i32, _precision: i64, out: i32| {
            let Some(nanos) = now_nanos(caller.data().wasi.started, clock) else {
                return Ok(errno::INVAL);
            };
            let Ok(memory) = memory_of(caller) else {
                return Ok(errno::IO);
            };
            Ok(errno_of(write_u64(
                memory.data_mut(&mut *caller),
                out as u32,
                nanos,
            )))
        }
    );
    wasi!(linker, "clock_res_get", |caller, clock: i32, out: i32| {
        if !(0..=3).contains(&clock) {
            return Ok(errno::INVAL);
        }
        let Ok(memory) = memory_of(caller) else {
            return Ok(errno::IO);
        };
        Ok(errno_of(write_u64(
            memory.data_mut(&mut *caller),
            out as u32,
            1_000,
        )))
    });
    wasi!(linker, "random_get", |caller, buf: i32, len: i32| {
        let Ok(memory) = memory_of(caller) else {
            return Ok(errno::IO);
        };
        let Ok(target) = slot(
            memory.data_mut(&mut *caller),
            buf as u32,
            len as u32 as usize,
        ) else {
            return Ok(errno::FAULT);
        };
        Ok(match getrandom::fill(target) {
            Ok(()) => errno::SUCCESS,
            Err(_) => errno::IO,
        })
    });
    wasi!(linker, "args_sizes_get", |caller, count: i32, size: i32| {
        let list = args(&caller.data().wasi.function);
        let total: usize = list.iter().map(Vec::len).sum();
        let Ok(memory) = memory_of(caller) else {
            return Ok(errno::IO);
        };
        let data = memory.data_mut(&mut *caller);
        Ok(errno_of(
            write_u32(data, count as u32, list.len() as u32)
                .and_then(|()| write_u32(data, size as u32, total as u32)),
        ))
    });
    wasi!(linker, "args_get", |caller, ptrs: i32, buf: i32| {
        let list = args(&caller.data().wasi.function);
        let Ok(memory) = memory_of(caller) else {
            return Ok(errno::IO);
        };
        Ok(errno_of(write_strings(
            memory.data_mut(&mut *caller),
            &list,
            ptrs as u32,
            buf as u32,
        )))
    });
    wasi!(
        linker,
        "environ_sizes_get",
        |caller, count: i32, size: i32| {
            let Ok(memory) = memory_of(caller) else {
                return Ok(errno::IO);
            };
            let data = memory.data_mut(&mut *caller);
            Ok(errno_of(
                write_u32(data, count as u32, 0).and_then(|()| write_u32(data, size as u32, 0)),
            ))
        }
    );
    wasi!(linker, "environ_get", |_caller, _ptrs: i32, _buf: i32| {
        Ok(errno::SUCCESS)
    });
    wasi!(linker, "sched_yield", |_caller| { Ok(errno::SUCCESS) });
    linker
        .func_wrap(
            MODULE,
            "proc_exit",
            |_caller: Caller<'_, HostState>, code: i32| -> Result<(), wasmi::Error> {
                Err(wasmi::Error::host(ProcExit(code)))
            },
        )
        .expect("wasi proc_exit is defined once");
    for (name, params, results) in UNSUPPORTED {
        let ty = FuncType::new(params.iter().copied(), results.iter().copied());
        linker
            .func_new(MODULE, name, ty, |_caller, _params, results| {
                if let Some(result) = results.first_mut() {
                    *result = Val::I32(errno::NOSYS);
                }
                Ok(())
            })
            .expect("each unsupported wasi function is defined once");
    }
}

const I32: ValType = ValType::I32;
const I64: ValType = ValType::I64;

/// The rest of WASI preview1, with its signatures: each returns ENOSYS.
pub(crate) const UNSUPPORTED: &[(&str, &[ValType], &[ValType])] = &[
    ("fd_advise", &[I32, I64, I64, I32], &[I32]),
    ("fd_allocate", &[I32, I64, I64], &[I32]),
    ("fd_datasync", &[I32], &[I32]),
    ("fd_fdstat_set_flags", &[I32, I32], &[I32]),
    ("fd_fdstat_set_rights", &[I32, I64, I64], &[I32]),
    ("fd_filestat_set_size", &[I32, I64], &[I32]),
    ("fd_filestat_set_times", &[I32, I64, I64, I32], &[I32]),
    ("fd_pread", &[I32, I32, I32, I64, I32], &[I32]),
    ("fd_pwrite", &[I32, I32, I32, I64, I32], &[I32]),
    ("fd_readdir", &[I32, I32, I32, I64, I32], &[I32]),
    ("fd_renumber", &[I32, I32], &[I32]),
    ("fd_sync", &[I32], &[I32]),
    ("path_create_directory", &[I32, I32, I32], &[I32]),
    (
        "path_filestat_set_times",
        &[I32, I32, I32, I32, I64, I64, I32],
        &[I32],
    ),
    ("path_link", &[I32, I32, I32, I32, I32, I32, I32], &[I32]),
    ("path_readlink", &[I32, I32, I32, I32, I32, I32], &[I32]),
    ("path_remove_directory", &[I32, I32, I32], &[I32]),
    ("path_rename", &[I32, I32, I32, I32, I32, I32], &[I32]),
    ("path_symlink", &[I32, I32, I32, I32, I32], &[I32]),
    ("path_unlink_file", &[I32, I32, I32], &[I32]),
    ("poll_oneoff", &[I32, I32, I32, I32], &[I32]),
    ("proc_raise", &[I32], &[I32]),
    ("sock_accept", &[I32, I32, I32], &[I32]),
    ("sock_recv", &[I32, I32, I32, I32, I32, I32], &[I32]),
    ("sock_send", &[I32, I32, I32, I32, I32], &[I32]),
    ("sock_shutdown", &[I32, I32], &[I32]),
];

/// The signatures of the supported functions, for upload validation.
pub(crate) const SUPPORTED: &[(&str, &[ValType], &[ValType])] = &[
    ("fd_write", &[I32, I32, I32, I32], &[I32]),
    ("fd_read", &[I32, I32, I32, I32], &[I32]),
    ("fd_seek", &[I32, I64, I32, I32], &[I32]),
    ("fd_tell", &[I32, I32], &[I32]),
    ("fd_close", &[I32], &[I32]),
    ("fd_fdstat_get", &[I32, I32], &[I32]),
    ("fd_filestat_get", &[I32, I32], &[I32]),
    ("fd_prestat_get", &[I32, I32], &[I32]),
    ("fd_prestat_dir_name", &[I32, I32, I32], &[I32]),
    (
        "path_open",
        &[I32, I32, I32, I32, I32, I64, I64, I32, I32],
        &[I32],
    ),
    ("path_filestat_get", &[I32, I32, I32, I32, I32], &[I32]),
    ("clock_time_get", &[I32, I64, I32], &[I32]),
    ("clock_res_get", &[I32, I32], &[I32]),
    ("random_get", &[I32, I32], &[I32]),
    ("args_sizes_get", &[I32, I32], &[I32]),
    ("args_get", &[I32, I32], &[I32]),
    ("environ_sizes_get", &[I32, I32], &[I32]),
    ("environ_get", &[I32, I32], &[I32]),
    ("sched_yield", &[], &[I32]),
    ("proc_exit", &[I32], &[]),
];
