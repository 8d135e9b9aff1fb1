//! A throwaway `redis-server` for tests: on a free port of 127.0.0.1, without persistence,
//! killed (and waited for) when the [`RedisServer`] is dropped.
//!
//! The server's log goes to a file; if a test is failing when the server is dropped, the
//! log's tail is printed with the failure.
//!
//! Tests never skip for want of Redis: if `redis-server` is missing, [`RedisServer::start`]
//! panics and says how to install it (`scripts/test` does).

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a freshly spawned server gets to answer PING (sized for a loaded machine).
const STARTUP_DEADLINE: Duration = Duration::from_secs(60);
/// How often a port is retried when another process takes it between probing and binding.
const PORT_ATTEMPTS: usize = 5;

/// A running `redis-server`, killed on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
    log: tempfile::NamedTempFile,
}

impl RedisServer {
    /// Starts a server on a free loopback port and waits until it answers PING.
    ///
    /// Panics with the reason if `redis-server` is not installed or does not come up in time.
    pub fn start() -> RedisServer {
        let mut last_failure = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let log = tempfile::NamedTempFile::new().expect("a file for the redis-server log");
            let mut child = spawn(port, &log);
            match wait_until_ready(&mut child, port, &log) {
                Ok(()) => return RedisServer { child, port, log },
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
        if thread::panicking() {
            eprintln!(
                "---- redis-server on port {}, its log:\n{}\n----",
                self.port,
                log_text(&self.log)
            );
        }
    }
}

fn log_text(log: &tempfile::NamedTempFile) -> String {
    std::fs::read_to_string(log.path()).unwrap_or_default()
}

/// A port that was free a moment ago (the OS picks it; the listener is closed again).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("cannot find a free port on 127.0.0.1: {e}"))
}

fn spawn(port: u16, log: &tempfile::NamedTempFile) -> Child {
    let log = log.reopen().expect("open the redis-server log");
    Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .args(["--loglevel", "warning"])
        .args(["--logfile", ""])
        .args(["--daemonize", "no"])
        // With `--logfile ""` the log goes to stdout: kept so a server that exits at once can
        // say why (e.g. the port was taken).
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("share the redis-server log"))
        .stderr(log)
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

/// Polls until this very server answers PING, it exits, or the deadline passes.
fn wait_until_ready(
    child: &mut Child,
    port: u16,
    log: &tempfile::NamedTempFile,
) -> Result<(), String> {
    let deadline = Instant::now() + STARTUP_DEADLINE;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!(
                "redis-server on port {port} exited with {status}: {}",
                log_text(log).trim()
            ));
        }
        // Another test's server may have won the port: only ours counts.
        if ping(port) && server_pid(port) == Some(child.id()) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "redis-server on port {port} did not answer PING within {STARTUP_DEADLINE:?}: {}",
                log_text(log).trim()
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn connect(port: u16) -> Option<TcpStream> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    Some(stream)
}

/// Whether a Redis server on `port` answers `PING` with `+PONG`.
fn ping(port: u16) -> bool {
    let Some(mut stream) = connect(port) else {
        return false;
    };
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// The process id the server on `port` reports in `INFO server`.
fn server_pid(port: u16) -> Option<u32> {
    let mut stream = connect(port)?;
    stream.write_all(b"INFO server\r\n").ok()?;
    let mut reader = BufReader::new(stream);
    // A bulk string: `$LEN\r\n`, then LEN bytes of `field:value\r\n` lines.
    let mut header = String::new();
    reader.read_line(&mut header).ok()?;
    let len: usize = header.strip_prefix('$')?.trim().parse().ok()?;
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|line| line.strip_prefix("process_id:")?.trim().parse().ok())
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
        assert_eq!(
            server_pid(port),
            Some(server.child.id()),
            "our own server answers"
        );
        drop(server);
        assert!(!ping(port), "the server still answers after drop");
    }
}
