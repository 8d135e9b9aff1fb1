//! The client socket imports (module `fwasm_net`), which every ABI's guests may use: `socket`
//! opens a descriptor in the call's WASI descriptor space, `connect` connects it to a host the
//! function is allowed (parking the call meanwhile), and WASI's own calls (`fd_read`,
//! `fd_write`, `sock_recv`, `sock_send`, `sock_shutdown`, `fd_close`) use it; `resolve` looks
//! a name up (its public addresses, one per line, which `answer` copies). Failures return a
//! negative status that `last_error` explains.

use wasmi::{Caller, Linker, ValType};

use super::ImportSignature;
use crate::host::HostState;
use crate::host::fetch::Fetch;
use crate::host::memory::{Args, copy_out};
use crate::host::park::Refusal;
use crate::sockets::NetOp;

pub(crate) const MODULE: &str = "fwasm_net";

use ValType::{I32, I64};

/// Every socket import, for validation.
pub(crate) const IMPORTS: &[ImportSignature] = &[
    (MODULE, "socket", &[], &[I32]),
    (MODULE, "connect", &[I32, I32, I32, I32], &[I32]),
    (MODULE, "resolve", &[I32, I32], &[I64]),
    (MODULE, "answer", &[I32, I32], &[I64]),
    (MODULE, "last_error", &[I32, I32], &[I32]),
];

/// Opens an unconnected socket: its descriptor.
pub(crate) fn open_socket(host: &mut HostState) -> Result<usize, Refusal> {
    host.sockets.check_room()?;
    let fd = host.files.reserve_fd();
    if i32::try_from(fd).is_err() {
        return Err(Refusal::new(
            fwasm_abi::HostStatus::LimitExceeded,
            "this call has used up its descriptors",
        ));
    }
    host.sockets.insert(fd);
    Ok(fd)
}

/// The op that connects socket `fd` to `host` on `port`.
pub(crate) fn connect_op(
    state: &mut HostState,
    fd: i32,
    host: &str,
    port: i32,
) -> Result<Fetch, Refusal> {
    let invalid = |why: String| Refusal::new(fwasm_abi::HostStatus::InvalidArgument, why);
    let socket = state
        .sockets
        .get(fd)
        .ok_or_else(|| invalid(format!("{fd} is not a socket of this call")))?;
    let port = u16::try_from(port)
        .ok()
        .filter(|port| *port > 0)
        .ok_or_else(|| invalid(format!("{port} is not a port (1 to 65535)")))?;
    if socket.is_connected() {
        return Err(invalid(format!("socket {fd} is already connected")));
    }
    let allowed = state.outbound.take_turn()?;
    Ok(Fetch::Net(NetOp::Connect {
        socket,
        host: host.to_string(),
        name: state.sockets.name_of(host),
        port,
        allowed,
    }))
}

fn connect(
    caller: &mut Caller<'_, HostState>,
    fd: i32,
    (ptr, len): (i32, i32),
    port: i32,
) -> Result<i32, wasmi::Error> {
    let host = Args::new(caller, "net connect")
        .text("host", ptr, len)
        .map(str::to_string);
    let what = host.and_then(|host| connect_op(caller.data_mut(), fd, &host, port));
    // The status fits i32: 0 or a negative status code.
    super::park_for_answer(caller, what, |_, _| {}).map(|status| status as i32)
}

fn resolve(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Result<i64, wasmi::Error> {
    let name = Args::new(caller, "net resolve")
        .text("name", ptr, len)
        .map(str::to_string);
    let host = caller.data_mut();
    host.sockets.looking_up = name.as_ref().ok().cloned();
    // A lookup counts as one of the call's requests: each takes a thread of the runtime's
    // blocking pool while the system resolver works.
    let what = name.and_then(|name| {
        let allowed = host.outbound.take_turn()?;
        Ok(Fetch::Net(NetOp::Resolve { name, allowed }))
    });
    super::park_for_answer(caller, what, |host, addresses| {
        host.sockets.found(addresses)
    })
}

pub(crate) fn define_imports(linker: &mut Linker<HostState>) {
    linker
        .func_wrap(
            MODULE,
            "socket",
            |mut caller: Caller<'_, HostState>| -> i32 {
                let host = caller.data_mut();
                match open_socket(host) {
                    Ok(fd) => fd as i32,
                    Err(refusal) => host.refuse(refusal.status, refusal.message),
                }
            },
        )
        .expect("socket is defined once");
    linker
        .func_wrap(
            MODULE,
            "connect",
            |mut caller: Caller<'_, HostState>, fd: i32, ptr: i32, len: i32, port: i32| {
                connect(&mut caller, fd, (ptr, len), port)
            },
        )
        .expect("connect is defined once");
    linker
        .func_wrap(
            MODULE,
            "resolve",
            |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| resolve(&mut caller, ptr, len),
        )
        .expect("resolve is defined once");
    linker
        .func_wrap(
            MODULE,
            "answer",
            |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> i64 {
                let answer = caller.data().sockets.answer.clone();
                match copy_out(&mut caller, &answer, ptr, len) {
                    Ok(total) => total as i64,
                    Err(status) => status.code().into(),
                }
            },
        )
        .expect("answer is defined once");
    super::define_last_error(linker, MODULE);
}
