//! A call's client sockets (see [`crate::sockets`]): their descriptors, numbered with the
//! call's open files (so WASI's `fd_read`, `fd_write` and `fd_close` reach them), and the
//! addresses its name lookups gave, with the name each came from.

use std::collections::HashMap;
use std::net::IpAddr;

use bytes::Bytes;
use fwasm_abi::HostStatus;

use super::park::Refusal;
use crate::sockets::SocketHandle;

/// The most sockets a call holds open at once.
pub(crate) const MAX_OPEN_SOCKETS: usize = 16;

#[derive(Default)]
pub(crate) struct CallSockets {
    open: HashMap<usize, SocketHandle>,
    resolved: HashMap<IpAddr, String>,
    /// The name being looked up while the call is parked.
    pub(crate) looking_up: Option<String>,
    /// The last lookup's addresses, one per line, for `fwasm_net.answer`.
    pub(crate) answer: Bytes,
}

impl CallSockets {
    /// Whether another socket may be opened.
    pub(crate) fn check_room(&self) -> Result<(), Refusal> {
        match self.open.len() < MAX_OPEN_SOCKETS {
            true => Ok(()),
            false => Err(Refusal::new(
                HostStatus::LimitExceeded,
                format!("this call has {MAX_OPEN_SOCKETS} sockets open, the most a call may"),
            )),
        }
    }

    /// Keeps a new socket as descriptor `fd`.
    pub(crate) fn insert(&mut self, fd: usize) {
        self.open.insert(fd, SocketHandle::default());
    }

    pub(crate) fn get(&self, fd: i32) -> Option<SocketHandle> {
        // Every fd_write and fd_read asks: most calls have no socket, so no hashing then.
        if self.open.is_empty() {
            return None;
        }
        usize::try_from(fd)
            .ok()
            .and_then(|fd| self.open.get(&fd))
            .cloned()
    }

    pub(crate) fn is_socket(&self, fd: i32) -> bool {
        !self.open.is_empty() && usize::try_from(fd).is_ok_and(|fd| self.open.contains_key(&fd))
    }

    /// Closes `fd` (the connection ends when the last op holding it lets go): whether it was
    /// a socket.
    pub(crate) fn close(&mut self, fd: i32) -> bool {
        usize::try_from(fd).is_ok_and(|fd| self.open.remove(&fd).is_some())
    }

    /// Keeps what the lookup of `looking_up` found: its addresses (one per line), each
    /// remembered as coming from that name.
    pub(crate) fn found(&mut self, addresses: Bytes) {
        if let Some(name) = self.looking_up.take() {
            for line in String::from_utf8_lossy(&addresses).lines() {
                if let Ok(address) = line.parse() {
                    self.resolved.insert(address, name.clone());
                }
            }
        }
        self.answer = addresses;
    }

    /// The name a lookup of this call gave `host` (an address) from, if one did.
    pub(crate) fn name_of(&self, host: &str) -> Option<String> {
        let address: IpAddr = host.parse().ok()?;
        self.resolved.get(&address).cloned()
    }
}
