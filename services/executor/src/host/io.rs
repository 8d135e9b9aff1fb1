//! A call's input and output as a program sees them: its standard streams, command line,
//! environment and clock, and its log lines.
//!
//! For an ABI whose reply is what the program prints (a WASI command), stdin holds the request
//! body, stdout becomes the reply body and stderr the call's console output, each line also
//! logged; otherwise stdin is empty and stdout and stderr are kept as the console output.

use std::cell::OnceCell;
use std::time::Instant;

use bytes::Bytes;
use fwasm_abi::log_level;
use fwasm_proto::pb::Call;

use crate::limits::Limits;

/// Where a call's standard streams go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Streams {
    /// stdin empty; stdout and stderr are console output (fwasm v1 and its C APIs).
    Console,
    /// stdin is the request body and stdout the reply body (WASI commands).
    Program,
}

/// One call's input and output.
pub(crate) struct CallIo {
    pub(crate) started: Instant,
    streams: Streams,
    stdin: Bytes,
    stdin_read: usize,
    /// The reply body a program prints; `None` once it passed the output limit.
    reply: Option<Vec<u8>>,
    max_reply: usize,
    /// Console output (stdout and stderr, or stderr alone for a program), cut at a limit.
    console: Vec<u8>,
    max_console: usize,
    /// Stderr not yet ended by a newline, logged when it is (or when the call ends). Only
    /// what the console kept is logged, so the logs are bounded like it.
    stderr_line: Vec<u8>,
    /// The log lines kept with the call's record, cut at a limit.
    logs: Vec<u8>,
    max_logs: usize,
    /// argv[0]: the function's name.
    program: String,
    /// The rest of argv, split on whitespace.
    cmdline: String,
    /// The environment from the function's settings, sorted by name.
    env: Vec<(String, String)>,
    /// argv and the environment as a guest reads them, built on first use.
    args: OnceCell<Vec<Vec<u8>>>,
    environ: OnceCell<Vec<Vec<u8>>>,
}

impl CallIo {
    pub(crate) fn new(call: &Call, streams: Streams, limits: &Limits) -> Self {
        let stdin = match streams {
            Streams::Program => call.input.clone(),
            Streams::Console => Bytes::new(),
        };
        let mut env: Vec<_> = call
            .settings
            .as_ref()
            .map(|s| s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        env.sort();
        Self {
            started: Instant::now(),
            streams,
            stdin,
            stdin_read: 0,
            reply: Some(Vec::new()),
            max_reply: limits.max_output_bytes,
            console: Vec::new(),
            max_console: limits.max_stdout_bytes,
            stderr_line: Vec::new(),
            logs: Vec::new(),
            max_logs: limits.max_log_bytes,
            program: call.function.clone(),
            cmdline: call.cmdline.clone(),
            env,
            args: OnceCell::new(),
            environ: OnceCell::new(),
        }
    }

    /// argv, each NUL-terminated: the function's name, then the call's command line.
    pub(crate) fn args(&self) -> &[Vec<u8>] {
        self.args.get_or_init(|| {
            std::iter::once(self.program.as_str())
                .chain(self.cmdline.split_whitespace())
                .map(nul_terminated)
                .collect()
        })
    }

    /// Adds `defaults` (an ABI's conventional environment) beneath the function's settings,
    /// which win where both name a variable.
    pub(crate) fn add_default_env(&mut self, defaults: &[(&str, &str)]) {
        if defaults.is_empty() {
            return; // most ABIs: nothing to add, and the settings are sorted already
        }
        for (key, value) in defaults {
            if !self.env.iter().any(|(k, _)| k == key) {
                self.env.push((key.to_string(), value.to_string()));
            }
        }
        self.env.sort();
    }

    /// The value of the environment variable `key`, if the function's settings set it.
    pub(crate) fn env_var(&self, key: &str) -> Option<&str> {
        let found = self.env.iter().find(|(k, _)| k == key);
        found.map(|(_, value)| value.as_str())
    }

    /// The environment as `KEY=VALUE` entries, each NUL-terminated.
    pub(crate) fn environ(&self) -> &[Vec<u8>] {
        self.environ.get_or_init(|| {
            self.env
                .iter()
                .map(|(key, value)| nul_terminated(&format!("{key}={value}")))
                .collect()
        })
    }

    /// Up to `max` more bytes of stdin, without taking them.
    pub(crate) fn peek_stdin(&self, max: usize) -> &[u8] {
        let start = self.stdin_read;
        &self.stdin[start..start + max.min(self.stdin.len() - start)]
    }

    /// Takes `n` bytes of stdin (at most what [`CallIo::peek_stdin`] showed).
    pub(crate) fn consume_stdin(&mut self, n: usize) {
        self.stdin_read = (self.stdin_read + n).min(self.stdin.len());
    }

    /// Takes what a guest wrote to fd 1 (stdout) or 2 (stderr).
    pub(crate) fn write(&mut self, fd: i32, bytes: &[u8]) {
        match (fd, self.streams) {
            (1, Streams::Program) => {
                let room = self.max_reply;
                if let Some(reply) = &mut self.reply {
                    if reply.len() + bytes.len() > room {
                        self.reply = None;
                    } else {
                        reply.extend_from_slice(bytes);
                    }
                }
            }
            (2, _) => {
                let kept = self.keep_console(bytes);
                self.log_stderr(&bytes[..kept]);
            }
            _ => {
                self.keep_console(bytes);
            }
        }
    }

    /// The reply body a program printed, or `None` if it printed more than the output limit.
    pub(crate) fn take_reply(&mut self) -> Option<Vec<u8>> {
        self.reply.take()
    }

    /// The console output, with any unfinished stderr line logged.
    pub(crate) fn take_console(&mut self) -> Bytes {
        if !self.stderr_line.is_empty() {
            let line = std::mem::take(&mut self.stderr_line);
            self.log_stderr_line(&line);
        }
        std::mem::take(&mut self.console).into()
    }

    /// The log lines kept for the call's record (take the console first: it logs the last
    /// stderr line).
    pub(crate) fn take_logs(&mut self) -> Bytes {
        std::mem::take(&mut self.logs).into()
    }

    /// A guest's log line: an event inside the call's span, and a line of its record's logs;
    /// `false` for an unknown level.
    pub(crate) fn log(&mut self, level: i32, message: &str) -> bool {
        let name = match level {
            log_level::ERROR => "ERROR",
            log_level::WARN => "WARN",
            log_level::INFO => "INFO",
            log_level::DEBUG => "DEBUG",
            log_level::TRACE => "TRACE",
            _ => return false,
        };
        log(level, message);
        self.keep_log(name, message);
        true
    }

    /// Keeps `LEVEL message` in the record's logs, while they have room.
    pub(crate) fn keep_log(&mut self, level: &str, message: &str) {
        const CUT: &str = "[logs cut: over the limit]\n";
        if self.max_logs == 0 {
            return;
        }
        // A message's own line breaks are indented: a guest cannot forge another line.
        let line = format!("{level} {}\n", message.replace('\n', "\n  "));
        if self.logs.len() + line.len() + CUT.len() > self.max_logs {
            self.logs.extend_from_slice(CUT.as_bytes());
            self.max_logs = 0;
            return;
        }
        self.logs.extend_from_slice(line.as_bytes());
    }

    pub(crate) fn max_reply(&self) -> usize {
        self.max_reply
    }

    /// Keeps what fits of `bytes` in the console output; returns how many bytes it kept.
    fn keep_console(&mut self, bytes: &[u8]) -> usize {
        const CUT: &[u8] = b"\n[output cut: over the limit]\n";
        let room = self.max_console.saturating_sub(self.console.len());
        if room == 0 {
            return 0;
        }
        if bytes.len() <= room {
            self.console.extend_from_slice(bytes);
            bytes.len()
        } else {
            self.console.extend_from_slice(&bytes[..room]);
            self.console.extend_from_slice(CUT);
            self.max_console = 0;
            room
        }
    }

    /// Logs each finished stderr line, a line longer than a log message in parts.
    fn log_stderr(&mut self, mut bytes: &[u8]) {
        const MAX: usize = super::memory::MAX_MESSAGE_BYTES;
        while !bytes.is_empty() {
            let room = MAX - self.stderr_line.len();
            let (piece, ended) = match bytes.iter().take(room).position(|&b| b == b'\n') {
                Some(end) => (&bytes[..end], end + 1),
                None if bytes.len() >= room => (&bytes[..room], room),
                None => {
                    self.stderr_line.extend_from_slice(bytes);
                    return;
                }
            };
            self.stderr_line.extend_from_slice(piece);
            let line = std::mem::take(&mut self.stderr_line);
            self.log_stderr_line(&line);
            bytes = &bytes[ended..];
        }
    }
}

/// The host error that ends a call with an exit code (WASI `proc_exit`, a Faasm `main`'s
/// return). Never reaches a user as an error.
#[derive(Debug)]
pub(crate) struct ProcExit(pub(crate) i32);

impl std::fmt::Display for ProcExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exited with code {}", self.0)
    }
}

impl wasmi::errors::HostError for ProcExit {}

fn nul_terminated(text: &str) -> Vec<u8> {
    [text.as_bytes(), b"\0"].concat()
}

impl CallIo {
    fn log_stderr_line(&mut self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        tracing::info!(target: "fwasm::guest", stream = "stderr", "{line}");
        self.keep_log("stderr", &line);
    }
}

/// A guest's log line, as an event inside the call's span; `false` for an unknown level.
fn log(level: i32, message: &str) -> bool {
    match level {
        log_level::ERROR => tracing::error!(target: "fwasm::guest", "{message}"),
        log_level::WARN => tracing::warn!(target: "fwasm::guest", "{message}"),
        log_level::INFO => tracing::info!(target: "fwasm::guest", "{message}"),
        log_level::DEBUG => tracing::debug!(target: "fwasm::guest", "{message}"),
        log_level::TRACE => tracing::trace!(target: "fwasm::guest", "{message}"),
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use fwasm_proto::pb::FunctionSettings;

    fn call() -> Call {
        Call {
            function: "wc".into(),
            input: Bytes::from_static(b"hello"),
            cmdline: " -l  --bytes ".into(),
            settings: Some(FunctionSettings {
                env: [
                    ("B".to_string(), "2".to_string()),
                    ("A".into(), "x=1".into()),
                ]
                .into(),
                ..FunctionSettings::default()
            }),
            ..Call::default()
        }
    }

    #[test]
    fn a_program_reads_the_body_on_stdin_and_prints_its_reply() {
        let limits = Limits {
            max_output_bytes: 8,
            ..Limits::default()
        };
        let mut io = CallIo::new(&call(), Streams::Program, &limits);
        assert_eq!(io.peek_stdin(3), b"hel");
        io.consume_stdin(3);
        assert_eq!(io.peek_stdin(100), b"lo");
        io.consume_stdin(100);
        assert_eq!(io.peek_stdin(100), b"");
        io.write(1, b"out");
        io.write(2, b"err\n");
        assert_eq!(io.take_reply().as_deref(), Some(&b"out"[..]));
        assert_eq!(io.take_console(), Bytes::from_static(b"err\n"));

        let mut io = CallIo::new(&call(), Streams::Program, &limits);
        io.write(1, b"123456789");
        assert_eq!(io.take_reply(), None, "over the output limit");
    }

    #[test]
    fn console_calls_see_no_stdin_and_keep_stdout_as_console_output() {
        let mut io = CallIo::new(&call(), Streams::Console, &Limits::default());
        assert_eq!(io.peek_stdin(100), b"");
        io.write(1, b"a");
        io.write(2, b"b");
        assert_eq!(io.take_console(), Bytes::from_static(b"ab"));
    }

    #[test]
    fn argv_is_the_name_then_the_command_line_and_the_environment_is_sorted() {
        let io = CallIo::new(&call(), Streams::Program, &Limits::default());
        assert_eq!(io.args(), [&b"wc\0"[..], b"-l\0", b"--bytes\0"]);
        assert_eq!(io.environ(), [&b"A=x=1\0"[..], b"B=2\0"]);
    }
}
