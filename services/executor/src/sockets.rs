//! Functions' client TCP sockets (the `fwasm_net` imports and WASI's socket calls on their
//! descriptors): connections to the hosts a function is allowed, checked as its outbound
//! HTTP is (`crate::outbound`), made and used on the executor's runtime while the call
//! parks. Names are looked up by the host, which keeps only their public addresses; a
//! connection to an address a lookup gave is checked against the name it came from.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fwasm_abi::HostStatus;
use fwasm_proto::outbound::HostPattern;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::host::park::Refusal;
use crate::outbound::{Outbound, error_chain, lookup_failure, public_addresses, time_for};

/// The most bytes one receive takes at once.
pub(crate) const MAX_RECEIVE: usize = 1 << 20;

/// One socket of a call: unconnected until `connect` fills it.
#[derive(Clone, Default)]
pub(crate) struct SocketHandle(Arc<tokio::sync::Mutex<Option<TcpStream>>>);

impl PartialEq for SocketHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SocketHandle {}

impl std::fmt::Debug for SocketHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SocketHandle")
    }
}

/// What a call asks of the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NetOp {
    /// Looks `name` up: its public addresses, one per line.
    Resolve {
        name: String,
        allowed: Arc<[HostPattern]>,
    },
    /// Connects `socket` to `host` (an address, or a name) on `port`; `name` is the name a
    /// lookup gave the address from, which the lists are checked against.
    Connect {
        socket: SocketHandle,
        host: String,
        name: Option<String>,
        port: u16,
        allowed: Arc<[HostPattern]>,
    },
    /// Sends all of `data`.
    Send { socket: SocketHandle, data: Bytes },
    /// Receives up to `max` bytes (none: the peer closed its side).
    Receive { socket: SocketHandle, max: usize },
    /// Closes the sending side.
    Shutdown { socket: SocketHandle },
}

impl NetOp {
    /// The op's name, for its span.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            NetOp::Resolve { .. } => "resolve",
            NetOp::Connect { .. } => "connect",
            NetOp::Send { .. } => "send",
            NetOp::Receive { .. } => "receive",
            NetOp::Shutdown { .. } => "shutdown",
        }
    }

    /// The host (and port) the op reaches, for its span; empty for ops on a connection.
    pub(crate) fn server(&self) -> String {
        match self {
            NetOp::Resolve { name, .. } => name.clone(),
            NetOp::Connect {
                host, name, port, ..
            } => format!("{}:{port}", name.as_deref().unwrap_or(host)),
            _ => String::new(),
        }
    }

    /// Does the op for `function` within `time`: what it answers (the addresses for a lookup,
    /// the bytes received), or why not.
    pub(crate) async fn run(
        &self,
        outbound: &Outbound,
        function: &str,
        time: Duration,
    ) -> Result<Bytes, Refusal> {
        let time = time_for(time);
        let timed_out = |what: String| {
            Refusal::new(
                HostStatus::Timeout,
                format!("{what} took longer than the call allows"),
            )
        };
        match self {
            NetOp::Resolve { name, allowed } => {
                outbound.check_name(name, function, allowed)?;
                let found = tokio::time::timeout(time, public_addresses(name))
                    .await
                    .map_err(|_| timed_out(format!("looking up {name}")))?
                    .map_err(|e| lookup_failure(name, e.as_ref()))?;
                let lines: Vec<String> = found.iter().map(IpAddr::to_string).collect();
                Ok(Bytes::from(lines.join("\n")))
            }
            NetOp::Connect {
                socket,
                host,
                name,
                port,
                allowed,
            } => {
                let target = name.as_deref().unwrap_or(host);
                outbound.check_target("connection", target, *port, function, allowed)?;
                let addresses = match host.parse::<IpAddr>() {
                    Ok(address) => vec![address],
                    Err(_) => public_addresses(host)
                        .await
                        .map_err(|e| lookup_failure(host, e.as_ref()))?,
                };
                let addresses: Vec<SocketAddr> = addresses
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, *port))
                    .collect();
                let stream = tokio::time::timeout(time, TcpStream::connect(&addresses[..]))
                    .await
                    .map_err(|_| timed_out(format!("connecting to {target}:{port}")))?
                    .map_err(|e| {
                        Refusal::new(
                            HostStatus::Unavailable,
                            format!("connecting to {target}:{port} failed: {}", error_chain(&e)),
                        )
                    })?;
                let _ = stream.set_nodelay(true);
                *socket.0.lock().await = Some(stream);
                Ok(Bytes::new())
            }
            NetOp::Send { socket, data } => {
                let mut stream = socket.0.lock().await;
                let stream = connected(&mut stream)?;
                tokio::time::timeout(time, stream.write_all(data))
                    .await
                    .map_err(|_| timed_out("sending".into()))?
                    .map_err(|e| broken("sending", &e))?;
                Ok(Bytes::new())
            }
            NetOp::Receive { socket, max } => {
                let mut stream = socket.0.lock().await;
                let stream = connected(&mut stream)?;
                let mut buf = vec![0; (*max).min(MAX_RECEIVE)];
                let n = tokio::time::timeout(time, stream.read(&mut buf))
                    .await
                    .map_err(|_| timed_out("receiving".into()))?
                    .map_err(|e| broken("receiving", &e))?;
                buf.truncate(n);
                Ok(Bytes::from(buf))
            }
            NetOp::Shutdown { socket } => {
                let mut stream = socket.0.lock().await;
                let stream = connected(&mut stream)?;
                stream
                    .shutdown()
                    .await
                    .map_err(|e| broken("shutting down", &e))?;
                Ok(Bytes::new())
            }
        }
    }
}

fn connected(stream: &mut Option<TcpStream>) -> Result<&mut TcpStream, Refusal> {
    stream.as_mut().ok_or_else(|| {
        Refusal::new(
            HostStatus::InvalidArgument,
            "the socket is not connected (connect it first)",
        )
    })
}

fn broken(what: &str, error: &std::io::Error) -> Refusal {
    Refusal::new(
        HostStatus::Unavailable,
        format!("{what} failed: {}", error_chain(error)),
    )
}
