//! WASI preview1 (`wasi_snapshot_preview1`) as an import set over the host capabilities:
//! standard streams and command line (host::io), clocks, random bytes, `proc_exit`, and a
//! filesystem preopened at "/" whose files are the shared files users upload (host::files).
//! Every other preview1 function returns ENOSYS instead of trapping.
//!
//! fwasm v1 guests (C and C++ through wasi-libc) import it beside `fwasm_v1`; a WASI command
//! imports nothing else.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fwasm_proto::names::PathProblem;
use wasmi::{Caller, FuncType, Linker, Memory, Store, Val, ValType};

use crate::host::HostState;
use crate::host::files::{FileOp, Mounted, OverBudget};
use crate::host::io::{CallIo, ProcExit};
use crate::host::memory::guest_slice;
use crate::host::park::{HostOp, park};

use super::wasi_sockets;

pub(crate) const MODULE: &str = "wasi_snapshot_preview1";

/// The errno values this host returns.
pub(super) mod errno {
    pub const SUCCESS: i32 = 0;
    pub const ACCES: i32 = 2;
    pub const BADF: i32 = 8;
    pub const CONNRESET: i32 = 15;
    pub const NOBUFS: i32 = 42;
    pub const NOTCONN: i32 = 53;
    pub const NOTSOCK: i32 = 57;
    pub const NOTSUP: i32 = 58;
    pub const PIPE: i32 = 64;
    pub const TIMEDOUT: i32 = 73;
    pub const EXIST: i32 = 20;
    pub const FAULT: i32 = 21;
    pub const FBIG: i32 = 22;
    pub const INVAL: i32 = 28;
    pub const IO: i32 = 29;
    pub const ISDIR: i32 = 31;
    pub const NOENT: i32 = 44;
    pub const NOMEM: i32 = 48;
    pub const NOSYS: i32 = 52;
    pub const NOTDIR: i32 = 54;
    pub const ROFS: i32 = 69;
    pub const SPIPE: i32 = 70;
    pub const NOTCAPABLE: i32 = 76;
}

const FILETYPE_CHARACTER_DEVICE: u8 = 2;
const FILETYPE_DIRECTORY: u8 = 3;
const FILETYPE_REGULAR_FILE: u8 = 4;
const FILETYPE_SOCKET_STREAM: u8 = 6;
const OFLAG_CREAT: i32 = 1;
const OFLAG_DIRECTORY: i32 = 2;
const OFLAG_EXCL: i32 = 4;
const OFLAG_TRUNC: i32 = 8;
const FDFLAG_APPEND: i32 = 1;
const RIGHT_FD_WRITE: i64 = 1 << 6;
/// The one preopened directory, the filesystem root; files opened later get the fds above it.
const ROOT_FD: usize = 3;
const _: () = assert!(crate::host::files::FIRST_FD == ROOT_FD + 1);

fn over_budget(_: OverBudget) -> i32 {
    errno::NOMEM
}

/// How a file op goes on: with the file the call has already (`None`), or with what fetching
/// the shared file found (`Some`).
type Found = Option<Result<Option<Bytes>, String>>;

/// The contents a fetch found, or the errno it ends the op with (`create`: a missing file is
/// created empty).
fn fetched(host: &mut HostState, found: Found, create: bool) -> Result<Option<Vec<u8>>, i32> {
    match found {
        None => Ok(None),
        Some(Ok(Some(data))) => Ok(Some(data.to_vec())),
        Some(Ok(None)) if create => Ok(Some(Vec::new())),
        Some(Ok(None)) => Err(errno::NOENT),
        Some(Err(message)) => {
            host.last_error = Some(message);
            Err(errno::IO)
        }
    }
}

/// A file op parked until its shared file is fetched; `finish` then completes it.
fn after_fetch(
    path: String,
    finish: impl FnOnce(&mut [u8], &mut HostState, String, Found) -> i32 + Send + 'static,
) -> FileOp {
    let kept = path.clone();
    let then = move |store: &mut Store<HostState>,
                     memory: Memory,
                     found: Result<Option<Bytes>, String>| {
        let (data, host) = memory.data_and_store_mut(store);
        i64::from(finish(data, host, kept, Some(found)))
    };
    FileOp {
        path,
        then: Box::new(then),
    }
}

/// `path_open`'s flags, kept until the file is known.
#[derive(Clone, Copy)]
struct Open {
    fd_out: u32,
    write: bool,
    append: bool,
    truncate: bool,
    /// O_CREAT: a file that does not exist is created empty.
    create: bool,
}

impl Open {
    /// Opens the file and writes its fd for the guest: returns the errno.
    fn finish(self, data: &mut [u8], host: &mut HostState, path: String, found: Found) -> i32 {
        let contents = match fetched(host, found, self.create) {
            Ok(contents) => contents,
            Err(errno) => return errno,
        };
        let contents = match contents {
            _ if self.truncate && self.write => Some(Vec::new()),
            contents => contents,
        };
        if let Some(contents) = contents
            && let Err(full) = host.files.keep(path.clone(), contents)
        {
            return over_budget(full);
        }
        let fd = host.files.open(path, self.write, self.append);
        errno_of(write_u32(data, self.fd_out, fd as u32))
    }
}

/// `path_filestat_get` once the file is known: writes its filestat, returns the errno.
fn stat(data: &mut [u8], host: &mut HostState, path: String, buf: u32, found: Found) -> i32 {
    let contents = match fetched(host, found, false) {
        Ok(contents) => contents,
        Err(errno) => return errno,
    };
    if let Some(contents) = contents
        && let Err(full) = host.files.keep(path.clone(), contents)
    {
        return over_budget(full);
    }
    let size = host.files.size(&path) as u64;
    errno_of(write_filestat(data, buf, FILETYPE_REGULAR_FILE, size))
}

fn errno_of(result: Result<(), i32>) -> i32 {
    result.err().unwrap_or(errno::SUCCESS)
}

pub(super) fn slot(memory: &mut [u8], at: u32, len: usize) -> Result<&mut [u8], i32> {
    let start = at as usize;
    memory
        .get_mut(start..start.checked_add(len).ok_or(errno::FAULT)?)
        .ok_or(errno::FAULT)
}

pub(super) fn write_u32(memory: &mut [u8], at: u32, value: u32) -> Result<(), i32> {
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
pub(super) fn iovecs(memory: &[u8], iovs: u32, count: u32) -> Result<Vec<(u32, u32)>, i32> {
    (0..count)
        .map(|i| {
            let at = iovs.checked_add(i.checked_mul(8).ok_or(errno::FAULT)?);
            let at = at.ok_or(errno::FAULT)?;
            Ok((
                read_u32(memory, at)?,
                read_u32(memory, at.checked_add(4).ok_or(errno::FAULT)?)?,
            ))
        })
        .collect()
}

pub(super) fn memory_of(caller: &Caller<'_, HostState>) -> Result<Memory, i32> {
    caller.data().memory.ok_or(errno::IO)
}

/// Runs `f` on the guest's memory and the call's host state; EIO before start-up.
pub(super) fn with_memory(
    caller: &mut Caller<'_, HostState>,
    f: impl FnOnce(&mut [u8], &mut HostState) -> i32,
) -> i32 {
    match memory_of(caller) {
        Ok(memory) => {
            let (data, host) = memory.data_and_store_mut(&mut *caller);
            f(data, host)
        }
        Err(errno) => errno,
    }
}

/// Writes a list of NUL-terminated strings as `args_get`/`environ_get` do.
fn write_strings(memory: &mut [u8], list: &[Vec<u8>], ptrs: u32, buf: u32) -> Result<(), i32> {
    let mut at = buf;
    for (i, item) in list.iter().enumerate() {
        let offset = u32::try_from(i).ok().and_then(|i| i.checked_mul(4));
        let ptr = offset
            .and_then(|offset| ptrs.checked_add(offset))
            .ok_or(errno::FAULT)?;
        write_u32(memory, ptr, at)?;
        slot(memory, at, item.len())?.copy_from_slice(item);
        at = at.checked_add(item.len() as u32).ok_or(errno::FAULT)?;
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
    let chunks = vecs
        .iter()
        .map(|&(ptr, len)| &data[ptr as usize..ptr as usize + len as usize]);
    match fd {
        // Output past the limits is cut, but reported as written: the guest moves on.
        1 | 2 => {
            for chunk in chunks {
                host.io.write(fd, chunk);
            }
        }
        0 => return errno::BADF,
        fd => {
            let files = &mut host.files;
            let Some(file) = files.open.get_mut(&(fd as usize)) else {
                return errno::BADF;
            };
            if !file.write {
                return errno::BADF;
            }
            let contents = files.files.entry(file.path.clone()).or_default();
            if file.append {
                file.pos = contents.len();
            }
            let end = file.pos.saturating_add(total);
            let growth = end.saturating_sub(contents.len());
            if files.bytes.saturating_add(growth) > files.max_bytes {
                return errno::FBIG;
            }
            if growth > 0 {
                contents.resize(end, 0);
                files.bytes += growth;
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
    let read = match fd {
        // stdin: the request body for a program, else empty.
        0 => {
            let mut read = 0;
            for (ptr, len) in vecs {
                let chunk = host.io.peek_stdin(len as usize);
                if chunk.is_empty() {
                    break;
                }
                let Ok(target) = slot(data, ptr, chunk.len()) else {
                    return errno::FAULT;
                };
                target.copy_from_slice(chunk);
                let n = chunk.len();
                host.io.consume_stdin(n);
                read += n;
                if n < len as usize {
                    break;
                }
            }
            read
        }
        1..=3 => return errno::BADF,
        fd => {
            let files = &mut host.files;
            let Some(file) = files.open.get_mut(&(fd as usize)) else {
                return errno::BADF;
            };
            let mounted = file.mounted.clone();
            let contents = match &mounted {
                Some(contents) => contents,
                None => files.files.get(&file.path).map_or(&[][..], Vec::as_slice),
            };
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
    let files = &mut host.files;
    let Some(file) = files.open.get_mut(&(fd as usize)) else {
        return if (0..=2).contains(&fd) || host.sockets.is_socket(fd) {
            errno::SPIPE
        } else {
            errno::BADF
        };
    };
    let size = match &file.mounted {
        Some(contents) => contents.len(),
        None => files.files.get(&file.path).map_or(0, Vec::len),
    } as i64;
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
    // Faasm's functions name shared files by URL: `faasm://data/x` is `/data/x`.
    let path = path.strip_prefix("faasm://").unwrap_or(path);
    fwasm_proto::names::file_path(path).map_err(|problem| match problem {
        PathProblem::LeavesRoot => errno::NOTCAPABLE,
        PathProblem::NamesNoFile => errno::ISDIR,
        PathProblem::TooLong | PathProblem::ControlCharacter => errno::INVAL,
    })
}

/// Parks for a shared file, or finishes at once if this call knows the file already.
fn fetch_or(
    caller: &mut Caller<'_, HostState>,
    path: String,
    finish: impl FnOnce(&mut [u8], &mut HostState, String, Found) -> i32 + Send + 'static,
) -> Result<i32, wasmi::Error> {
    if caller.data().files.files.contains_key(&path) {
        return Ok(with_memory(caller, |data, host| {
            finish(data, host, path, None)
        }));
    }
    match park(caller, HostOp::File(after_fetch(path, finish))) {
        Ok(suspend) => Err(suspend),
        // Outside the entry (a static constructor, say) shared files cannot be fetched.
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
    let write = rights & RIGHT_FD_WRITE != 0 || oflags & (OFLAG_CREAT | OFLAG_TRUNC) != 0;
    if let Some(errno) = open_mounted(caller, &path, oflags, write, fd_out as u32) {
        return Ok(errno);
    }
    if oflags & OFLAG_DIRECTORY != 0 {
        return Ok(errno::NOSYS);
    }
    let open = Open {
        fd_out: fd_out as u32,
        write,
        append: fdflags & FDFLAG_APPEND != 0,
        truncate: oflags & OFLAG_TRUNC != 0,
        create: oflags & OFLAG_CREAT != 0,
    };
    let files = &mut caller.data_mut().files;
    if open.create {
        if oflags & OFLAG_EXCL != 0 && files.files.contains_key(&path) {
            return Ok(errno::EXIST);
        }
        // A new file of this call's own: nothing to fetch.
        if (oflags & OFLAG_EXCL != 0 || open.truncate)
            && let Err(full) = files.keep(path.clone(), Vec::new())
        {
            return Ok(over_budget(full));
        }
    }
    fetch_or(caller, path, move |data, host, path, found| {
        open.finish(data, host, path, found)
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
    if let Some(mounted) = caller.data().files.mounted.clone() {
        let filestat = match mounted.find(&path) {
            Mounted::File(contents) => Some((FILETYPE_REGULAR_FILE, contents.len() as u64)),
            Mounted::Directory => Some((FILETYPE_DIRECTORY, 0)),
            Mounted::Missing => return Ok(errno::NOENT),
            Mounted::Elsewhere => None,
        };
        if let Some((filetype, size)) = filestat {
            return Ok(with_memory(caller, |data, _| {
                errno_of(write_filestat(data, buf as u32, filetype, size))
            }));
        }
    }
    fetch_or(caller, path, move |data, host, path, found| {
        stat(data, host, path, buf as u32, found)
    })
}

/// Opens `path` if it is among the call's mounted files (read-only): the errno, or `None`
/// for a path outside them.
fn open_mounted(
    caller: &mut Caller<'_, HostState>,
    path: &str,
    oflags: i32,
    write: bool,
    fd_out: u32,
) -> Option<i32> {
    let mounted = caller.data().files.mounted.clone()?;
    let contents = match mounted.find(path) {
        Mounted::Elsewhere => return None,
        Mounted::Missing if oflags & OFLAG_CREAT != 0 => return Some(errno::ROFS),
        Mounted::Missing => return Some(errno::NOENT),
        _ if oflags & OFLAG_CREAT != 0 && oflags & OFLAG_EXCL != 0 => return Some(errno::EXIST),
        Mounted::Directory => return Some(errno::NOSYS),
        Mounted::File(_) if oflags & OFLAG_DIRECTORY != 0 => return Some(errno::NOTDIR),
        _ if write => return Some(errno::ROFS),
        Mounted::File(contents) => contents.clone(),
    };
    Some(with_memory(caller, |data, host| {
        let fd = host.files.open_mounted(path.to_string(), contents);
        errno_of(write_u32(data, fd_out, fd as u32))
    }))
}

/// `args_sizes_get` and `environ_sizes_get`: how many strings, and their bytes in all.
fn strings_sizes(
    caller: &mut Caller<'_, HostState>,
    list: fn(&CallIo) -> &[Vec<u8>],
    count: i32,
    size: i32,
) -> i32 {
    with_memory(caller, |data, host| {
        let list = list(&host.io);
        let total: usize = list.iter().map(Vec::len).sum();
        errno_of(
            write_u32(data, count as u32, list.len() as u32)
                .and_then(|()| write_u32(data, size as u32, total as u32)),
        )
    })
}

/// `args_get` and `environ_get`.
fn strings_get(
    caller: &mut Caller<'_, HostState>,
    list: fn(&CallIo) -> &[Vec<u8>],
    ptrs: i32,
    buf: i32,
) -> i32 {
    with_memory(caller, |data, host| {
        errno_of(write_strings(data, list(&host.io), ptrs as u32, buf as u32))
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
            if let Some(socket) = caller.data().sockets.get(fd) {
                return wasi_sockets::send(caller, socket, (iovs, count), out);
            }
            Ok(fd_write(caller, fd, iovs, count, out))
        }
    );
    wasi!(linker, "fd_read", |caller,
                              fd: i32,
                              iovs: i32,
                              count: i32,
                              out: i32| {
        if let Some(socket) = caller.data().sockets.get(fd) {
            return wasi_sockets::receive(caller, socket, (iovs, count), out, None);
        }
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
        if caller.data_mut().sockets.close(fd) {
            return Ok(errno::SUCCESS);
        }
        let files = &mut caller.data_mut().files;
        Ok(match fd {
            0..=3 => errno::SUCCESS,
            fd if files.open.remove(&(fd as usize)).is_some() => errno::SUCCESS,
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
            fd if host.sockets.is_socket(fd) => (FILETYPE_SOCKET_STREAM, 0),
            fd => match host.files.open.get(&(fd as usize)) {
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
            fd if host.sockets.is_socket(fd) => (FILETYPE_SOCKET_STREAM, 0),
            fd => match host.files.open.get(&(fd as usize)) {
                Some(file) => (FILETYPE_REGULAR_FILE, host.files.open_size(file) as u64),
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
            let Some(nanos) = now_nanos(caller.data().io.started, clock) else {
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
        Ok(strings_sizes(caller, CallIo::args, count, size))
    });
    wasi!(linker, "args_get", |caller, ptrs: i32, buf: i32| {
        Ok(strings_get(caller, CallIo::args, ptrs, buf))
    });
    wasi!(
        linker,
        "environ_sizes_get",
        |caller, count: i32, size: i32| { Ok(strings_sizes(caller, CallIo::environ, count, size)) }
    );
    wasi!(linker, "environ_get", |caller, ptrs: i32, buf: i32| {
        Ok(strings_get(caller, CallIo::environ, ptrs, buf))
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
    wasi_sockets::define_imports(linker);
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
    ("sock_accept", &[I32, I32, I32], &[I32]),
    ("sock_recv", &[I32, I32, I32, I32, I32, I32], &[I32]),
    ("sock_send", &[I32, I32, I32, I32, I32], &[I32]),
    ("sock_shutdown", &[I32, I32], &[I32]),
];

/// Every preview1 function as an import signature, for upload validation.
pub(crate) fn signatures() -> impl Iterator<Item = super::ImportSignature> + Clone {
    SUPPORTED
        .iter()
        .chain(UNSUPPORTED)
        .map(|(name, params, results)| (MODULE, *name, *params, *results))
}
