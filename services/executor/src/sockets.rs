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

impl SocketHandle {
    /// Whether `connect` has connected it (no op runs on it while its call runs).
    pub(crate) fn is_connected(&self) -> bool {
        self.0.try_lock().map_or(true, |stream| stream.is_some())
    }
}

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
                check_connection(outbound, host, name.as_deref(), *port, function, allowed)?;
                let target = name.as_deref().unwrap_or(host);
                let addresses = match host.parse::<IpAddr>() {
                    Ok(address) => vec![address],
                    Err(_) => tokio::time::timeout(time, public_addresses(host))
                        .await
                        .map_err(|_| timed_out(format!("looking up {host}")))?
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

/// Checks a connection to `host` on `port` against the lists: by the name a lookup gave the
/// address from, if one did, or by the address itself.
fn check_connection(
    outbound: &Outbound,
    host: &str,
    name: Option<&str>,
    port: u16,
    function: &str,
    allowed: &[HostPattern],
) -> Result<(), Refusal> {
    let check = |target: &str| outbound.check_target("connection", target, port, function, allowed);
    match name {
        None => check(host),
        Some(name) => check(name).or_else(|refused| check(host).map_err(|_| refused)),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(entries: &[&str]) -> Vec<HostPattern> {
        entries.iter().map(|e| e.parse().unwrap()).collect()
    }

    #[test]
    fn an_address_a_name_gave_is_checked_by_the_name_or_by_itself() {
        let outbound = Outbound::new(patterns(&["*:*"]), Vec::new());
        let allowed = patterns(&["api.example.com:443", "93.184.216.34:22"]);
        let check = |host: &str, name: Option<&str>, port: u16| {
            check_connection(&outbound, host, name, port, "u/f", &allowed)
        };
        let from_name = Some("api.example.com");
        assert!(check("93.184.216.34", from_name, 443).is_ok());
        assert!(
            check("93.184.216.34", from_name, 22).is_ok(),
            "the address's own entry"
        );
        let refused = check("93.184.216.34", from_name, 80).unwrap_err();
        assert_eq!(
            refused.message,
            "outbound connection to api.example.com:80 refused: u/f may not reach it (upload \
             it with --allow-host api.example.com:80)"
        );
        // An address no lookup gave is checked as itself: the name's entry does not cover it.
        assert!(check("93.184.216.35", None, 443).is_err());
    }

    #[test]
    fn a_non_public_address_needs_both_lists_to_name_it_whatever_the_wildcards() {
        let outbound = Outbound::new(patterns(&["*:*"]), Vec::new());
        for (host, kind) in [
            ("127.0.0.1", "a loopback address"),
            ("10.1.2.3", "a private address"),
            ("169.254.169.254", "a cloud metadata endpoint"),
            ("::ffff:7f00:1", "a loopback address"),
        ] {
            let refused = check_connection(&outbound, host, None, 80, "u/f", &patterns(&["*:80"]))
                .unwrap_err();
            assert!(
                refused.message.contains(&format!("is {kind}")),
                "{host}: {}",
                refused.message
            );
        }
        let named = Outbound::new(patterns(&["127.0.0.1:*"]), Vec::new());
        assert!(
            check_connection(
                &named,
                "127.0.0.1",
                None,
                80,
                "u/f",
                &patterns(&["127.0.0.1:80"])
            )
            .is_ok()
        );
    }
}
