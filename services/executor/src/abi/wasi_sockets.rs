//! WASI preview1's calls on a call's sockets (opened by `fwasm_net`, see `super::net`):
//! `fd_write` and `sock_send` send, `fd_read` and `sock_recv` receive, `sock_shutdown` closes
//! the sending side, each parking the call while the executor does it; `sock_accept` answers
//! NOTSUP, for functions do not listen. Failures answer an errno (and `last_error` says why).

use bytes::Bytes;
use fwasm_abi::HostStatus;
use wasmi::{Caller, Linker, Memory, Store};

use super::wasi_preview1::{MODULE, errno, iovecs, memory_of, slot, with_memory, write_u32};
use crate::host::HostState;
use crate::host::fetch::{Fetch, FetchOp};
use crate::host::park::{HostOp, Refusal, park};
use crate::sockets::{MAX_RECEIVE, NetOp, SocketHandle};

/// `sock_shutdown`'s flags: the receiving side, the sending side.
const SHUT_RD: i32 = 1;
const SHUT_WR: i32 = 2;

/// The errno for a socket op's refusal (`receiving`: a broken connection is a reset, not a
/// broken pipe), keeping its reason for `last_error`.
fn refused(host: &mut HostState, refusal: Refusal, receiving: bool) -> i32 {
    let errno = match refusal.status {
        HostStatus::Timeout => errno::TIMEDOUT,
        HostStatus::LimitExceeded => errno::NOBUFS,
        HostStatus::InvalidArgument => errno::NOTCONN,
        HostStatus::PermissionDenied => errno::ACCES,
        HostStatus::Unavailable if receiving => errno::CONNRESET,
        HostStatus::Unavailable => errno::PIPE,
        _ => errno::IO,
    };
    host.last_error = Some(refusal.message);
    errno
}

/// The iovecs at `iovs` with their total length, each checked to lie in `data` (before any
/// byte is gathered or received: iovecs may repeat the same memory), and `out`'s 4 bytes.
fn checked_iovecs(
    data: &[u8],
    iovs: (i32, i32),
    out: i32,
) -> Result<(Vec<(u32, u32)>, usize), i32> {
    let vecs = iovecs(data, iovs.0 as u32, iovs.1 as u32)?;
    let mut total = 0usize;
    for &(ptr, len) in &vecs {
        slot_in(data, ptr, len as usize)?;
        total = total.saturating_add(len as usize);
    }
    slot_in(data, out as u32, 4)?;
    Ok((vecs, total))
}

/// Whether `len` bytes at `at` lie in `data`.
fn slot_in(data: &[u8], at: u32, len: usize) -> Result<(), i32> {
    let end = (at as usize).checked_add(len).ok_or(errno::FAULT)?;
    match end <= data.len() {
        true => Ok(()),
        false => Err(errno::FAULT),
    }
}

/// Parks the call for `op`; `then` finishes the call with what it answered.
fn park_for(
    caller: &mut Caller<'_, HostState>,
    op: NetOp,
    then: impl FnOnce(&mut [u8], &mut HostState, Bytes) -> i32 + Send + 'static,
    receiving: bool,
) -> Result<i32, wasmi::Error> {
    let then = move |store: &mut Store<HostState>, memory: Memory, answered| {
        let (data, host) = memory.data_and_store_mut(store);
        i64::from(match answered {
            Ok(bytes) => then(data, host, bytes),
            Err(refusal) => refused(host, refusal, receiving),
        })
    };
    let op = HostOp::Fetch(FetchOp {
        what: Fetch::Net(op),
        then: Box::new(then),
    });
    match park(caller, op) {
        Ok(suspend) => Err(suspend),
        Err(refusal) => Ok(refused(caller.data_mut(), refusal, receiving)),
    }
}

/// Sends the bytes of the iovecs at `iovs` on `socket` (descriptor `fd`), writing how many
/// to `out`.
pub(super) fn send(
    caller: &mut Caller<'_, HostState>,
    socket: SocketHandle,
    iovs: (i32, i32),
    out: i32,
) -> Result<i32, wasmi::Error> {
    let Ok(memory) = memory_of(caller) else {
        return Ok(errno::IO);
    };
    let (data, host) = memory.data_and_store_mut(&mut *caller);
    let (vecs, total) = match checked_iovecs(data, iovs, out) {
        Ok(checked) => checked,
        Err(errno) => return Ok(errno),
    };
    if !socket.is_connected() {
        return Ok(refused(host, not_connected(), false));
    }
    if let Err(refusal) = host.outbound.send_bytes(total) {
        return Ok(refused(host, refusal, false));
    }
    let mut bytes = Vec::with_capacity(total);
    for (ptr, len) in vecs {
        bytes.extend_from_slice(&data[ptr as usize..ptr as usize + len as usize]);
    }
    let op = NetOp::Send {
        socket,
        data: bytes.into(),
    };
    park_for(
        caller,
        op,
        move |data, _, _| match write_u32(data, out as u32, total as u32) {
            Ok(()) => errno::SUCCESS,
            Err(errno) => errno,
        },
        false,
    )
}

/// Receives into the iovecs at `iovs` from `socket`, writing how many bytes to `out` (and no
/// flags to `flags_out`, for `sock_recv`); 0 once the peer has closed its side.
pub(super) fn receive(
    caller: &mut Caller<'_, HostState>,
    socket: SocketHandle,
    iovs: (i32, i32),
    out: i32,
    flags_out: Option<i32>,
) -> Result<i32, wasmi::Error> {
    let Ok(memory) = memory_of(caller) else {
        return Ok(errno::IO);
    };
    let (data, host) = memory.data_and_store_mut(&mut *caller);
    // Every place the bytes and counts go is checked before any byte is taken off the socket.
    let (vecs, wanted) = match checked_iovecs(data, iovs, out) {
        Ok(checked) => checked,
        Err(errno) => return Ok(errno),
    };
    if let Some(at) = flags_out
        && let Err(errno) = slot(data, at as u32, 2)
    {
        return Ok(errno);
    }
    if !socket.is_connected() {
        return Ok(refused(host, not_connected(), true));
    }
    let room = match host.outbound.room_to_receive(false) {
        Ok(room) => room,
        Err(refusal) => return Ok(refused(host, refusal, true)),
    };
    let finish = move |data: &mut [u8], host: &mut HostState, received: Bytes| {
        host.outbound.received(received.len());
        let mut rest = &received[..];
        for &(ptr, len) in &vecs {
            let n = rest.len().min(len as usize);
            data[ptr as usize..ptr as usize + n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        if let Some(at) = flags_out {
            data[at as u32 as usize..at as u32 as usize + 2].fill(0);
        }
        match write_u32(data, out as u32, received.len() as u32) {
            Ok(()) => errno::SUCCESS,
            Err(errno) => errno,
        }
    };
    if wanted == 0 {
        return Ok(with_memory(caller, |data, host| {
            finish(data, host, Bytes::new())
        }));
    }
    let max = wanted.min(room).min(MAX_RECEIVE);
    park_for(caller, NetOp::Receive { socket, max }, finish, true)
}

fn not_connected() -> Refusal {
    Refusal::new(
        HostStatus::InvalidArgument,
        "the socket is not connected (connect it first)",
    )
}

pub(super) fn define_imports(linker: &mut Linker<HostState>) {
    linker
        .func_wrap(
            MODULE,
            "sock_send",
            |mut caller: Caller<'_, HostState>,
             fd: i32,
             iovs: i32,
             count: i32,
             flags: i32,
             out: i32|
             -> Result<i32, wasmi::Error> {
                let Some(socket) = caller.data().sockets.get(fd) else {
                    return Ok(not_a_socket(&caller, fd));
                };
                if flags != 0 {
                    return Ok(errno::NOTSUP);
                }
                send(&mut caller, socket, (iovs, count), out)
            },
        )
        .expect("wasi sock_send is defined once");
    linker
        .func_wrap(
            MODULE,
            "sock_recv",
            |mut caller: Caller<'_, HostState>,
             fd: i32,
             iovs: i32,
             count: i32,
             flags: i32,
             out: i32,
             flags_out: i32|
             -> Result<i32, wasmi::Error> {
                let Some(socket) = caller.data().sockets.get(fd) else {
                    return Ok(not_a_socket(&caller, fd));
                };
                // MSG_PEEK and MSG_WAITALL are not offered: a receive takes what has come.
                if flags != 0 {
                    return Ok(errno::NOTSUP);
                }
                receive(&mut caller, socket, (iovs, count), out, Some(flags_out))
            },
        )
        .expect("wasi sock_recv is defined once");
    linker
        .func_wrap(
            MODULE,
            "sock_shutdown",
            |mut caller: Caller<'_, HostState>, fd: i32, how: i32| -> Result<i32, wasmi::Error> {
                let Some(socket) = caller.data().sockets.get(fd) else {
                    return Ok(not_a_socket(&caller, fd));
                };
                if how & !(SHUT_RD | SHUT_WR) != 0 || how == 0 {
                    return Ok(errno::INVAL);
                }
                // Reading on after SHUT_RD is the guest's to avoid: only the sending side has
                // anything to close.
                if how & SHUT_WR == 0 {
                    return Ok(errno::SUCCESS);
                }
                park_for(
                    &mut caller,
                    NetOp::Shutdown { socket },
                    |_, _, _| errno::SUCCESS,
                    false,
                )
            },
        )
        .expect("wasi sock_shutdown is defined once");
    linker
        .func_wrap(
            MODULE,
            "sock_accept",
            |mut caller: Caller<'_, HostState>, fd: i32, _flags: i32, _out: i32| -> i32 {
                if !caller.data().sockets.is_socket(fd) {
                    return not_a_socket(&caller, fd);
                }
                caller.data_mut().last_error =
                    Some("functions cannot accept connections: their sockets are clients".into());
                errno::NOTSUP
            },
        )
        .expect("wasi sock_accept is defined once");
}

/// The errno for a socket call on `fd`, which is not a socket.
fn not_a_socket(caller: &Caller<'_, HostState>, fd: i32) -> i32 {
    let host = caller.data();
    let open = fd >= 0 && (fd <= 3 || host.files.open.contains_key(&(fd as usize)));
    match open {
        true => errno::NOTSOCK,
        false => errno::BADF,
    }
}
