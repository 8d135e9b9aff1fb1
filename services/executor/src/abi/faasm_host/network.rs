//! Faasm's client networking calls (`env.socket`, `env.connect`; `env.bind` and `env.listen`
//! refused: functions do not listen), for Faasm-toolchain binaries: over fwasm's sockets (see
//! `crate::abi::net`), so the same allow-lists and limits hold and WASI's calls (`fd_read`,
//! `fd_write`, `sock_send`, `sock_recv`, `fd_close`) use the socket. As on Faasm, each
//! returns what the system call would: a descriptor or 0, or -1 on failure, and the call goes
//! on (the reason is logged in the call's trace). Addresses are WASI's `sockaddr_in` (family 1) and
//! `sockaddr_in6` (family 2), as wasi-libc lays them out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use wasmi::{Caller, Linker, Store, ValType};

use super::imports::MODULE;
use crate::abi::ImportSignature;
use crate::abi::net::{connect_op, open_socket};
use crate::host::HostState;
use crate::host::fetch::FetchOp;
use crate::host::memory::guest_slice;
use crate::host::park::{HostOp, Refusal, park};

const I: ValType = ValType::I32;

pub(super) const IMPORTS: &[ImportSignature] = &[
    (MODULE, "socket", &[I, I, I], &[I]),
    (MODULE, "connect", &[I, I, I], &[I]),
    (MODULE, "bind", &[I, I, I], &[I]),
    (MODULE, "listen", &[I, I], &[I]),
];

/// wasi-libc's address families and stream type.
const AF_INET: u16 = 1;
const AF_INET6: u16 = 2;
const SOCK_STREAM: i32 = 6;

/// -1, the reason logged (a Faasm binary has no import to read it).
fn failed(host: &mut HostState, why: impl Into<String>) -> i32 {
    let why = why.into();
    tracing::info!(target: "fwasm::guest", %why, "a socket call answered -1");
    host.last_error = Some(why);
    -1
}

/// The address and port of the `sockaddr` of `len` bytes at `ptr`.
fn socket_address(
    caller: &Caller<'_, HostState>,
    ptr: i32,
    len: i32,
) -> Result<(IpAddr, u16), String> {
    let memory = caller
        .data()
        .memory
        .ok_or("connect called before start-up")?;
    let bytes = guest_slice(memory.data(caller), ptr, len)
        .map_err(|_| "the address lies outside the guest's memory".to_string())?;
    let family = bytes.get(..2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let port = |b: &[u8]| u16::from_be_bytes([b[2], b[3]]);
    match family {
        Some(AF_INET) if bytes.len() >= 8 => {
            let ip: [u8; 4] = bytes[4..8].try_into().expect("4 bytes");
            Ok((IpAddr::V4(Ipv4Addr::from(ip)), port(bytes)))
        }
        Some(AF_INET6) if bytes.len() >= 24 => {
            let ip: [u8; 16] = bytes[8..24].try_into().expect("16 bytes");
            Ok((IpAddr::V6(Ipv6Addr::from(ip)), port(bytes)))
        }
        _ => Err(format!(
            "the address is not a sockaddr_in or sockaddr_in6 of wasi-libc ({len} bytes)"
        )),
    }
}

fn connect(
    caller: &mut Caller<'_, HostState>,
    fd: i32,
    ptr: i32,
    len: i32,
) -> Result<i32, wasmi::Error> {
    let (address, port) = match socket_address(caller, ptr, len) {
        Ok(found) => found,
        Err(why) => return Ok(failed(caller.data_mut(), why)),
    };
    let what = match connect_op(caller.data_mut(), fd, &address.to_string(), port.into()) {
        Ok(what) => what,
        Err(refusal) => return Ok(failed(caller.data_mut(), refusal.message)),
    };
    let then = |store: &mut Store<HostState>, _, answered: Result<_, Refusal>| match answered {
        Ok(_) => 0,
        Err(refusal) => {
            // The guest's answer, not a refusal that fails the call.
            store.data_mut().negative_is_answer = true;
            i64::from(failed(store.data_mut(), refusal.message))
        }
    };
    let op = HostOp::Fetch(FetchOp {
        what,
        then: Box::new(then),
    });
    match park(caller, op) {
        Ok(suspend) => Err(suspend),
        Err(refusal) => Ok(failed(caller.data_mut(), refusal.message)),
    }
}

pub(super) fn define(linker: &mut Linker<HostState>) {
    let defined = linker
        .func_wrap(
            MODULE,
            "socket",
            |mut caller: Caller<'_, HostState>, domain: i32, kind: i32, _protocol: i32| -> i32 {
                let host = caller.data_mut();
                let family = u16::try_from(domain).unwrap_or(0);
                if ![AF_INET, AF_INET6].contains(&family) || kind & 0xff != SOCK_STREAM {
                    return failed(
                        host,
                        "only TCP client sockets (AF_INET or AF_INET6, SOCK_STREAM)",
                    );
                }
                match open_socket(host) {
                    Ok(fd) => fd as i32,
                    Err(refusal) => failed(host, refusal.message),
                }
            },
        )
        .and_then(|l| {
            l.func_wrap(
                MODULE,
                "connect",
                |mut caller: Caller<'_, HostState>, fd: i32, ptr: i32, len: i32| {
                    connect(&mut caller, fd, ptr, len)
                },
            )
        })
        .and_then(|l| {
            l.func_wrap(
                MODULE,
                "bind",
                |mut caller: Caller<'_, HostState>, _: i32, _: i32, _: i32| -> i32 {
                    failed(
                        caller.data_mut(),
                        "functions cannot bind: they do not listen",
                    )
                },
            )
        })
        .and_then(|l| {
            l.func_wrap(
                MODULE,
                "listen",
                |mut caller: Caller<'_, HostState>, _: i32, _: i32| -> i32 {
                    failed(caller.data_mut(), "functions cannot listen")
                },
            )
        });
    defined.expect("each Faasm network import is defined once");
}
