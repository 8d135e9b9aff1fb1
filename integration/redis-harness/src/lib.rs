//! A throwaway `redis-server` for tests: on a free port of 127.0.0.1, without persistence,
//! killed (and waited for) when the [`RedisServer`] is dropped.
//!
//! Tests never skip for want of Redis: if `redis-server` is missing, [`RedisServer::start`]
//! panics and says how to install it (`scripts/test` does).

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a freshly spawned server gets to answer PING.
const STARTUP_DEADLINE: Duration = Duration::from_secs(20);
/// How often a port is retried when another process takes it between probing and binding.
const PORT_ATTEMPTS: usize = 5;

/// A running `redis-server`, killed on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts a server on a free loopback port and waits until it answers PING.
    ///
    /// Panics with the reason if `redis-server` is not installed or does not come up in time.
    pub fn start() -> RedisServer {
        let mut last_failure = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let mut child = spawn(port);
            match wait_until_ready(&mut child, port) {
                Ok(()) => {
                    if let Some(mut log) = child.stdout.take() {
                        thread::spawn(move || io::copy(&mut log, &mut io::sink()));
                    }
                    return RedisServer { child, port };
                }
                Err(failure) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_failure = failure;
                }
            }
        }
        panic!("redis-server did not start after {PORT_ATTEMPTS} attempts: {last_failure}");
    }

    /// The URL clients connect with: `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago (the OS picks it; the listener is closed again).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("cannot find a free port on 127.0.0.1: {e}"))
}

fn spawn(port: u16) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .args(["--loglevel", "warning"])
        .args(["--logfile", ""])
        .args(["--daemonize", "no"])
        // With `--logfile ""` the log goes to stdout: kept so a server that exits at once can
        // say why (e.g. the port was taken), then drained once it is up.
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            if e.kind() == ErrorKind::NotFound {
                panic!(
                    "redis-server is not installed; scripts/test installs it \
                     (apt-get install redis-server)"
                );
            }
            panic!("cannot start redis-server: {e}");
        })
}

/// Polls until the server answers PING, it exits, or the deadline passes.
fn wait_until_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + STARTUP_DEADLINE;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            let mut log = String::new();
            if let Some(mut pipe) = child.stdout.take() {
                let _ = pipe.read_to_string(&mut log);
            }
            return Err(format!(
                "redis-server on port {port} exited with {status}: {}",
                log.trim()
            ));
        }
        if ping(port) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "redis-server on port {port} did not answer PING within {STARTUP_DEADLINE:?}"
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a Redis server on `port` answers `PING` with `+PONG`.
fn ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let timeout = Some(Duration::from_millis(500));
    if stream.set_read_timeout(timeout).is_err() || stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_ping_and_stops_on_drop() {
        let server = RedisServer::start();
        let port = server.port();
        assert_eq!(server.url(), format!("redis://127.0.0.1:{port}"));
        assert!(ping(port));
        drop(server);
        assert!(!ping(port), "the server still answers after drop");
    }
}
