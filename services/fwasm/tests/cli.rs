//! The `fwasm` binary itself: every command has --help, and `fwasm up` serves the demos at once.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const FWASM: &str = env!("CARGO_BIN_EXE_fwasm");

/// Port 0 for each of `fwasm up`'s ports: it binds free ones, and says which.
const ANY_PORTS: [&str; 6] = [
    "--invoke-port",
    "0",
    "--upload-port",
    "0",
    "--grpc-port",
    "0",
];

fn help(args: &[&str]) -> String {
    let output = Command::new(FWASM)
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn every_command_has_help_naming_its_flags() {
    let top = help(&[]);
    for command in [
        "up",
        "upload",
        "invoke",
        "status",
        "state",
        "build",
        "scheduler",
        "executor",
        "gateway",
        "token",
        "new",
        "bench",
        "cancel",
        "logs",
    ] {
        assert!(top.contains(command), "{top}");
    }
    let cancel = help(&["cancel"]);
    assert!(
        cancel.contains("<ID>") && cancel.contains("--addr"),
        "{cancel}"
    );
    assert!(help(&["new"]).contains("--lang <LANG>"));
    let bench = help(&["bench"]);
    for flag in ["-c, --connections", "-d, --duration", "--input"] {
        assert!(bench.contains(flag), "{bench}");
    }
    for flag in ["--auth", "--admin-token-file", "--insecure-no-auth"] {
        assert!(help(&["up"]).contains(flag), "up: {flag}");
        assert!(help(&["gateway"]).contains(flag), "gateway: {flag}");
    }
    assert!(help(&["token", "create"]).contains("--admin"));
    for command in ["create", "list", "revoke"] {
        assert!(
            help(&["token", command]).contains("--token"),
            "token {command}"
        );
    }
    let up = help(&["up"]);
    for flag in [
        "--invoke-port",
        "--upload-port",
        "--grpc-port",
        "--data-dir",
        "--state-backend",
        "--ready-file",
    ] {
        assert!(up.contains(flag), "{up}");
    }
    assert!(help(&["upload"]).contains("<TARGET> <FILE>"));
    let invoke = help(&["invoke"]);
    assert!(
        invoke.contains("--input") && invoke.contains("--async"),
        "{invoke}"
    );
    assert!(help(&["state", "get"]).contains("<TARGET>"));
    for (command, flags) in [
        (
            "state",
            &[
                "--listen",
                "--backend",
                "--data-dir",
                "--metrics",
                "--config",
                "--ready-file",
            ][..],
        ),
        (
            "scheduler",
            &[
                "--listen",
                "--state",
                "--metrics",
                "--otlp-endpoint",
                "--ready-file",
            ],
        ),
        (
            "executor",
            &[
                "--listen",
                "--state",
                "--scheduler",
                "--id",
                "--advertise",
                "--ready-file",
            ],
        ),
        (
            "gateway",
            &[
                "--state",
                "--scheduler",
                "--invoke-port",
                "--upload-port",
                "--grpc-port",
                "--ready-file",
            ],
        ),
    ] {
        let text = help(&[command]);
        for flag in flags {
            assert!(
                text.contains(flag),
                "{command} --help lacks {flag}:\n{text}"
            );
        }
    }
    assert!(help(&["state", "set"]).contains("--file"));
    let status = help(&["status"]);
    assert!(
        status.contains("<ID>") && status.contains("--wait"),
        "{status}"
    );
}

/// A child process, killed when dropped; its stderr goes to a file, shown if the test fails.
struct Running(Child, std::path::PathBuf);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.1).unwrap_or_default();
            eprintln!("---- fwasm's stderr:\n{log}\n----");
        }
    }
}

/// `fwasm up` on free ports with `extra` arguments, its data in `data`: the process, once
/// its banner is out, and the port it names for each API.
fn start_up(data: &std::path::Path, extra: &[&str]) -> (Running, impl Fn(&str) -> u16 + use<>) {
    let log = data.join("stderr.log");
    let mut child = Running(
        Command::new(FWASM)
            .arg("up")
            .args(ANY_PORTS)
            .arg("--data-dir")
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
        log,
    );
    // The banner is printed once every port is listening and the demos are uploaded. Read on
    // a thread of its own, so a banner that never comes fails the test instead of hanging it.
    let stdout = BufReader::new(child.0.stdout.take().unwrap());
    let (lines, banner_lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    loop {
        let line = banner_lines
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("no whole banner from fwasm up ({e}): {banner:?}"));
        if line.starts_with("Press Ctrl-C") {
            break;
        }
        banner.push(line);
    }
    assert!(
        banner
            .iter()
            .any(|l| l.contains("demo functions: demo/echo, demo/hello")),
        "{banner:?}"
    );
    let port = move |api: &str| -> u16 {
        let prefix = format!("  {api} ");
        let line = banner.iter().find(|l| l.starts_with(&prefix));
        let addr = line.and_then(|l| l[prefix.len()..].split_whitespace().next());
        let port = addr.and_then(|a| a.rsplit_once(':')?.1.parse().ok());
        port.unwrap_or_else(|| panic!("no {api} port in the banner: {banner:?}"))
    };
    (child, port)
}

#[test]
fn fwasm_upload_allow_host_lets_a_function_reach_that_host_only() {
    let data = tempfile::tempdir().unwrap();
    let (_up, port) = start_up(data.path(), &["--allow-outbound", "127.0.0.1:*"]);
    let [invoke, grpc] = [port("invoke"), port("gRPC")];
    let wasm = data.path().join("testkit.wasm");
    std::fs::write(&wasm, fwasm_integration::guest("testkit")).unwrap();
    let addr = format!("127.0.0.1:{grpc}");
    let upload = |name: &str, hosts: &[String]| {
        let mut command = Command::new(FWASM);
        command
            .args(["upload", name])
            .arg(&wasm)
            .args(["--addr", &addr]);
        for host in hosts {
            command.args(["--allow-host", host]);
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    upload("u/fetch", &[format!("127.0.0.1:{invoke}")]);
    upload("v/fetch", &[]);
    let fetch = |name: &str| {
        let output = Command::new(FWASM)
            .args(["invoke", name, "--addr", &addr, "--input"])
            .arg(format!("GET http://127.0.0.1:{invoke}/ping"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    assert_eq!(fetch("u/fetch"), "200 - 4 PONG");
    assert_eq!(
        fetch("v/fetch"),
        format!(
            "error: outbound request to 127.0.0.1:{invoke} refused: v/fetch may not reach it \
             (upload it with --allow-host 127.0.0.1:{invoke})"
        )
    );
    // Limits of its own, shown by `fwasm list`; a limit that is none is refused.
    let output = Command::new(FWASM)
        .args(["upload", "w/fetch"])
        .arg(&wasm)
        .args([
            "--addr",
            &addr,
            "--limit",
            "timeout=2",
            "--limit",
            "memory=8",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed = Command::new(FWASM)
        .args(["list", "w", "--addr", &addr])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("timeout 2 s, memory 8 MiB"), "{listed}");
    let output = Command::new(FWASM)
        .args(["upload", "w/fetch"])
        .arg(&wasm)
        .args(["--addr", &addr, "--limit", "speed=3"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("--limit speed=3: limit \"speed=3\" names no limit"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // An entry that is not HOST:PORT is refused before anything is sent.
    let output = Command::new(FWASM)
        .args(["upload", "u/fetch"])
        .arg(&wasm)
        .args(["--addr", &addr, "--allow-host", "no-port.example.com"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("is not HOST:PORT"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn fwasm_up_serves_the_demo_functions_at_once() {
    let data = tempfile::tempdir().unwrap();
    let ready_file = data.path().join("up.ready");
    let (_up, port) = start_up(data.path(), &["--ready-file", ready_file.to_str().unwrap()]);
    let [invoke, grpc] = [port("invoke"), port("gRPC")];
    assert_ne!(invoke, 0, "the banner shows the bound port");
    // Its log lines went to a file, not a terminal: plain text, no colour codes.
    let log = std::fs::read_to_string(data.path().join("stderr.log")).unwrap();
    assert!(log.contains(" INFO "), "{log}");
    assert!(!log.contains('\u{1b}'), "{log}");
    // The ready file, written before the banner, names the same ports.
    let ready: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&ready_file).unwrap()).unwrap();
    for (api, port) in [
        ("invoke", invoke),
        ("upload", port("upload")),
        ("grpc", grpc),
    ] {
        assert_eq!(ready[api], format!("127.0.0.1:{port}"), "{ready}");
    }

    let client = blocking_http_client();
    let reply = client
        .post(format!("http://127.0.0.1:{invoke}/f/demo/echo"))
        .body("hi")
        .send()
        .unwrap();
    assert_eq!(reply.text().unwrap(), "hi");

    let output = Command::new(FWASM)
        .args([
            "invoke",
            "demo/hello",
            "--input",
            "you",
            "--addr",
            &format!("127.0.0.1:{grpc}"),
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.stdout, b"Hello, you!");

    // An async call prints its id alone; `status --wait` prints Faasm's SUCCESS line.
    let addr = format!("127.0.0.1:{grpc}");
    let output = Command::new(FWASM)
        .args(["invoke", "demo/echo", "--async", "--input", "later"])
        .args(["--addr", &addr])
        .output()
        .unwrap();
    assert!(output.status.success());
    let id = String::from_utf8(output.stdout).unwrap();
    let id = id.trim_end();
    assert!(id.parse::<u64>().is_ok(), "{id:?}");
    let output = Command::new(FWASM)
        .args(["status", id, "--wait", "--addr", &addr])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(output.stdout, b"SUCCESS: later\n");
    let output = Command::new(FWASM)
        .args(["status", "5", "--addr", &addr])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no call with id 5 is known"), "{stderr}");

    // On a terminal the output ends its line (piped, above, it is exact).
    let command = format!("{FWASM} invoke demo/hello --input you --addr {addr}");
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(
        output.stdout.ends_with(b"Hello, you!\r\n"),
        "{:?}",
        String::from_utf8_lossy(&output.stdout)
    );
    // `fwasm bench` loads a function and reports what it measured.
    let output = Command::new(FWASM)
        .args([
            "bench",
            "demo/echo",
            "-c",
            "2",
            "-d",
            "1",
            "--input",
            "hi",
            "--addr",
            &addr,
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.starts_with("demo/echo: ") && report.contains("\nlatency: p50 "),
        "{report}"
    );
    // A user's mistake is a message, not a crash: no backtrace even with RUST_BACKTRACE.
    let output = Command::new(FWASM)
        .args(["invoke", "demo/missing", "--addr", &addr])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "Error: invoke failed: function demo/missing does not exist; upload it first\n"
    );

    // A second instance on the same data directory is told why it cannot start.
    let second = Command::new(FWASM)
        .arg("up")
        .args(ANY_PORTS)
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("is another `fwasm up` using"), "{stderr}");
}

#[test]
fn fwasm_up_refuses_an_outbound_ca_it_cannot_use() {
    let data = tempfile::tempdir().unwrap();
    let not_pem = data.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    for (file, why) in [
        (data.path().join("missing.pem"), "cannot read --outbound-ca"),
        (not_pem, "the CA certificates (--outbound-ca) is not usable"),
    ] {
        let output = Command::new(FWASM)
            .arg("up")
            .args(ANY_PORTS)
            .arg("--data-dir")
            .arg(data.path().join("data"))
            .arg("--outbound-ca")
            .arg(&file)
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(why), "{stderr}");
    }
}

#[test]
fn fwasm_up_reads_a_config_file() {
    let data = tempfile::tempdir().unwrap();
    let ready = data.path().join("from-config.ready");
    let config = data.path().join("fwasm.toml");
    std::fs::write(
        &config,
        format!("ready_file = {:?}\n", ready.to_str().unwrap()),
    )
    .unwrap();
    let (_up, port) = start_up(data.path(), &["--config", config.to_str().unwrap()]);
    let ready: serde_json::Value = serde_json::from_slice(&std::fs::read(&ready).unwrap()).unwrap();
    assert_eq!(ready["invoke"], format!("127.0.0.1:{}", port("invoke")));
}

#[test]
fn fwasm_up_takes_its_flags_from_fwasm_variables() {
    let data = tempfile::tempdir().unwrap();
    let ready = data.path().join("from-env.ready");
    let _up = Running(
        Command::new(FWASM)
            .arg("up")
            .env("FWASM_INVOKE_PORT", "0")
            .env("FWASM_UPLOAD_PORT", "0")
            .env("FWASM_GRPC_PORT", "0")
            .env("FWASM_DATA_DIR", data.path().join("data"))
            .env("FWASM_READY_FILE", &ready)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(data.path().join("stderr.log")).unwrap())
            .spawn()
            .unwrap(),
        data.path().join("stderr.log"),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ready.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no ready file from the variables"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Written whole (a rename), so it parses once it is there.
    let ready: serde_json::Value = serde_json::from_slice(&std::fs::read(&ready).unwrap()).unwrap();
    let invoke = ready["invoke"].as_str().unwrap();
    assert!(
        invoke.starts_with("127.0.0.1:") && !invoke.ends_with(":8080"),
        "{ready}"
    );
    assert!(
        data.path().join("data").is_dir(),
        "FWASM_DATA_DIR was not used"
    );
}

#[test]
fn a_bare_fwasm_state_says_it_is_a_service_and_points_at_get_and_set() {
    let data = tempfile::tempdir().unwrap();
    let line = state_says(
        &data,
        &["--data-dir", data.path().join("state").to_str().unwrap()],
    );
    assert!(
        line.contains("serving the state service of a deployment on 127.0.0.1:"),
        "{line}"
    );
    let dir = data.path().join("state");
    assert!(
        line.contains(&format!("its data under {}.", dir.display())),
        "{line}"
    );
    assert!(line.contains("fwasm state get USER/KEY, fwasm state set USER/KEY VALUE"));
    // A Redis URL is shown without its password.
    let line = state_says(&data, &["--backend", "redis://:hunter2@127.0.0.1:1"]);
    assert!(
        line.contains("its data in Redis at redis://…@127.0.0.1:1."),
        "{line}"
    );
    assert!(!line.contains("hunter2"), "{line}");
}

/// What a bare `fwasm state` with `args` says of itself as it starts (it is stopped then).
fn state_says(data: &tempfile::TempDir, args: &[&str]) -> String {
    let mut state = Running(
        Command::new(FWASM)
            .args(["state", "--listen", "127.0.0.1:0"])
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        data.path().join("none.log"),
    );
    let stderr = BufReader::new(state.0.stderr.take().unwrap());
    let (lines, said) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        let line = said
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("fwasm state said nothing");
        if line.starts_with("fwasm state:") {
            return line;
        }
    }
}

#[test]
fn fwasm_up_beyond_loopback_needs_tokens() {
    let data = tempfile::tempdir().unwrap();
    let any_ports = ANY_PORTS;
    // Without --auth, an address other machines reach is refused, saying what to do.
    let open = Command::new(FWASM)
        .args(["up", "--host", "0.0.0.0"])
        .args(any_ports)
        .arg("--data-dir")
        .arg(data.path())
        .env_remove("FWASM_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(!open.status.success());
    let stderr = String::from_utf8_lossy(&open.stderr);
    assert!(
        stderr.contains("refusing to serve on 0.0.0.0 without tokens")
            && stderr.contains("--auth")
            && stderr.contains("--insecure-no-auth"),
        "{stderr}"
    );
    assert!(!data.path().join("admin-token").exists());
    let opened = Command::new(FWASM)
        .args([
            "up",
            "--host",
            "0.0.0.0",
            "--auth",
            "--open-faasm-api-on-loopback",
        ])
        .args(any_ports)
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!opened.status.success());
    let stderr = String::from_utf8_lossy(&opened.stderr);
    assert!(
        stderr.contains("only on a loopback address, not 0.0.0.0"),
        "{stderr}"
    );
    // Tenants do not share a sidecar unless the operator says they may.
    let shared = Command::new(FWASM)
        .args([
            "up",
            "--auth",
            "--sidecar",
            "127.0.0.1:1",
            "--sidecar-api",
            "dapr",
        ])
        .args(any_ports)
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!shared.status.success());
    let stderr = String::from_utf8_lossy(&shared.stderr);
    assert!(stderr.contains("--sidecar-shared-by-all-users"), "{stderr}");

    // With --auth it serves, with an admin token made for it, readable by its owner alone.
    let log = data.path().join("stderr.log");
    let ready_file = data.path().join("up.ready");
    let _child = Running(
        Command::new(FWASM)
            .args(["up", "--host", "0.0.0.0", "--auth"])
            .args(any_ports)
            .arg("--data-dir")
            .arg(data.path())
            .arg("--ready-file")
            .arg(&ready_file)
            .env_remove("FWASM_ADMIN_TOKEN")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
        log,
    );
    let started = std::time::Instant::now();
    while !ready_file.exists() {
        assert!(
            started.elapsed().as_secs() < 60,
            "fwasm up --auth never got ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let ready: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&ready_file).unwrap()).unwrap();
    let port = |api: &str| {
        let addr = ready[api].as_str().unwrap();
        addr.rsplit_once(':').unwrap().1.to_string()
    };
    let (invoke, grpc) = (port("invoke"), format!("127.0.0.1:{}", port("grpc")));
    let token_file = data.path().join("admin-token");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&token_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let admin = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();

    let client = blocking_http_client();
    let echo = format!("http://127.0.0.1:{invoke}/f/demo/echo");
    let refused = client.post(&echo).body("hi").send().unwrap();
    assert_eq!(refused.status(), 401);
    let reply = client
        .post(&echo)
        .bearer_auth(&admin)
        .body("hi")
        .send()
        .unwrap();
    assert_eq!(reply.text().unwrap(), "hi");

    // The CLI takes the token from FWASM_TOKEN; a user's token reaches that user alone.
    let made = Command::new(FWASM)
        .args(["token", "create", "alice", "--addr", &grpc])
        .env("FWASM_TOKEN", &admin)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let alice = String::from_utf8(made.stdout).unwrap().trim().to_string();
    assert!(alice.starts_with("fwasm_"), "{alice}");
    let others = Command::new(FWASM)
        .args(["invoke", "demo/echo", "--input", "x", "--addr", &grpc])
        .env("FWASM_TOKEN", &alice)
        .output()
        .unwrap();
    assert!(!others.status.success());
    let stderr = String::from_utf8_lossy(&others.stderr);
    assert!(
        stderr.contains("a token of alice does not reach demo's functions"),
        "{stderr}"
    );
}

#[test]
fn internal_services_beyond_loopback_need_mutual_tls() {
    let data = tempfile::tempdir().unwrap();
    for service in ["state", "scheduler", "executor"] {
        let mut command = Command::new(FWASM);
        command.args([service, "--listen", "0.0.0.0:0"]);
        match service {
            "executor" => command.args(["--advertise", "10.0.0.5:7002"]),
            "state" => command.arg("--data-dir").arg(data.path()),
            _ => &mut command,
        };
        let output = command.output().unwrap();
        assert!(!output.status.success(), "{service}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("without mutual TLS") && stderr.contains("--tls-ca"),
            "{service}: {stderr}"
        );
    }
}

/// The Kubernetes manifests start each service with flags the binary accepts.
/// The documents of deploy/k8s/fwasm.yaml, by `kind/name`.
fn manifests() -> std::collections::HashMap<String, serde_norway::Value> {
    use serde::Deserialize;
    let text = include_str!("../../../deploy/k8s/fwasm.yaml");
    serde_norway::Deserializer::from_str(text)
        .map(|document| {
            let value = serde_norway::Value::deserialize(document).expect("valid YAML");
            let id = format!(
                "{}/{}",
                value["kind"].as_str().unwrap(),
                value["metadata"]["name"].as_str().unwrap()
            );
            (id, value)
        })
        .collect()
}

/// Whether a command's `--help` lists `flag` (followed by its value or its text, on the same
/// line or, when the flags are long, the next).
fn takes(usage: &str, flag: &str) -> bool {
    usage.contains(&format!("{flag} ")) || usage.contains(&format!("{flag}\n"))
}

fn strings(value: &serde_norway::Value) -> Vec<&str> {
    let list = value.as_sequence().map(Vec::as_slice).unwrap_or_default();
    list.iter().map(|v| v.as_str().unwrap()).collect()
}

#[test]
fn the_kubernetes_manifests_deploy_every_service_with_real_flags() {
    let manifests = manifests();
    let config = &manifests["ConfigMap/fwasm"]["data"]["fwasm.toml"];
    let config: toml::Table = config.as_str().unwrap().parse().expect("valid TOML");
    let mut config_keys_used = std::collections::HashSet::new();
    for name in ["redis", "state", "scheduler", "executor", "gateway"] {
        let deployment = &manifests[&format!("Deployment/fwasm-{name}")];
        let service = &manifests[&format!("Service/fwasm-{name}")];
        let pod = &deployment["spec"]["template"];
        // The Service selects this Deployment's pods, which the Deployment selects too.
        let labels = &pod["metadata"]["labels"];
        assert_eq!(&service["spec"]["selector"], labels, "{name}");
        assert_eq!(
            &deployment["spec"]["selector"]["matchLabels"], labels,
            "{name}"
        );
        let container = &pod["spec"]["containers"][0];
        let container_ports: Vec<u64> = container["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| p["containerPort"].as_u64().unwrap())
            .collect();
        for port in service["spec"]["ports"].as_sequence().unwrap() {
            let port = port["port"].as_u64().unwrap();
            assert!(
                container_ports.contains(&port),
                "{name}: port {port} is not served"
            );
        }
        if name == "redis" {
            continue;
        }
        // Every flag is one `fwasm NAME` takes, and so is every config key it reads.
        let args = strings(&container["args"]);
        assert_eq!(args[0], name);
        let usage = help(&[name]);
        for flag in args.iter().filter(|a| a.starts_with("--")) {
            assert!(takes(&usage, flag), "fwasm {name} has no {flag}");
        }
        for key in config.keys() {
            if takes(&usage, &format!("--{}", key.replace('_', "-"))) {
                config_keys_used.insert(key.clone());
            }
        }
        // The mesh's certificates, which the config names, are mounted from their Secret.
        let tls_dir = std::path::Path::new(config["tls_cert"].as_str().unwrap())
            .parent()
            .unwrap();
        let mounts = container["volumeMounts"].as_sequence().unwrap();
        let mount = mounts
            .iter()
            .find(|m| m["mountPath"].as_str() == tls_dir.to_str())
            .unwrap_or_else(|| panic!("{name}: nothing mounted at {tls_dir:?}"));
        let volumes = pod["spec"]["volumes"].as_sequence().unwrap();
        let volume = volumes.iter().find(|v| v["name"] == mount["name"]).unwrap();
        assert_eq!(
            volume["secret"]["secretName"].as_str(),
            Some("fwasm-mesh-tls"),
            "{name}"
        );
        // Probes ask the ports the container serves.
        for probe in ["readinessProbe", "livenessProbe"] {
            let probe = &container[probe];
            let port = probe["grpc"]["port"]
                .as_u64()
                .or(probe["httpGet"]["port"].as_u64());
            assert!(
                container_ports.contains(&port.unwrap()),
                "{name}: {probe:?}"
            );
        }
    }
    // The gateway serves other machines, so with tokens, its admin token from a Secret.
    let gateway = &manifests["Deployment/fwasm-gateway"]["spec"]["template"]["spec"];
    let args = strings(&gateway["containers"][0]["args"]);
    assert!(args.contains(&"--auth"), "{args:?}");
    let file = args[args
        .iter()
        .position(|a| *a == "--admin-token-file")
        .unwrap()
        + 1];
    let mounts = gateway["containers"][0]["volumeMounts"]
        .as_sequence()
        .unwrap();
    let mount = mounts
        .iter()
        .find(|m| file.starts_with(m["mountPath"].as_str().unwrap()) && m["name"] != "config")
        .expect("the admin token file is on a mounted volume");
    let volumes = gateway["volumes"].as_sequence().unwrap();
    let volume = volumes.iter().find(|v| v["name"] == mount["name"]).unwrap();
    assert_eq!(
        volume["secret"]["secretName"].as_str(),
        Some("fwasm-admin-token")
    );
    let unused: Vec<_> = config
        .keys()
        .filter(|k| !config_keys_used.contains(*k))
        .collect();
    assert!(
        unused.is_empty(),
        "config keys no service reads: {unused:?}"
    );
    // The addresses in the config are the Services' names and ports.
    for (key, service) in [
        ("state", "fwasm-state:7000"),
        ("scheduler", "fwasm-scheduler:7001"),
        ("backend", "redis://fwasm-redis:6379"),
    ] {
        assert_eq!(config[key].as_str(), Some(service), "{key}");
    }
    for (service, port) in [("state", 7000), ("scheduler", 7001), ("redis", 6379)] {
        let ports = &manifests[&format!("Service/fwasm-{service}")]["spec"]["ports"];
        assert_eq!(ports[0]["port"].as_u64(), Some(port), "{service}");
    }
}

/// The image builds the `fwasm` package from the repository root, without sending build
/// output as context, on a Rust new enough for the workspace.
#[test]
fn the_dockerfile_builds_the_fwasm_package_from_the_sources() {
    let dockerfile = include_str!("../../../deploy/Dockerfile");
    let ignore = include_str!("../../../.dockerignore");
    let workspace: toml::Table = include_str!("../../../Cargo.toml").parse().unwrap();
    let needed = workspace["workspace"]["package"]["rust-version"]
        .as_str()
        .unwrap();
    let image = dockerfile
        .lines()
        .find_map(|line| line.strip_prefix("FROM rust:"))
        .expect("a Rust build stage");
    let version = image.split(['-', ' ']).next().unwrap();
    let number = |v: &str| -> Vec<u32> { v.split('.').map(|n| n.parse().unwrap()).collect() };
    assert!(
        number(version) >= number(needed),
        "rust:{version} is older than {needed}"
    );
    assert!(dockerfile.contains("cargo build --release -p fwasm"));
    let package: toml::Table = include_str!("../Cargo.toml").parse().unwrap();
    assert_eq!(package["package"]["name"].as_str(), Some("fwasm"));
    assert!(dockerfile.contains("ENTRYPOINT [\"fwasm\"]"));
    for excluded in ["target", ".git"] {
        assert!(
            ignore.lines().any(|l| l == excluded),
            "{excluded} is sent as context"
        );
    }
    // The default command is a real one.
    let cmd = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("CMD "))
        .unwrap();
    let cmd: Vec<String> = exec_words(cmd);
    let usage = help(&[&cmd[0]]);
    for flag in cmd.iter().filter(|a| a.starts_with("--")) {
        assert!(
            usage.contains(flag.as_str()),
            "fwasm {} has no {flag}",
            cmd[0]
        );
    }
}

/// The words of a Dockerfile exec-form list such as `["up", "--host", "0.0.0.0"]`.
fn exec_words(list: &str) -> Vec<String> {
    serde_norway::from_str(list).expect("an exec-form list")
}

/// Runs `fwasm build ARGS` in `dir`: exit status success, stderr.
fn fwasm_build(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(FWASM)
        .arg("build")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), stderr)
}

/// The file is a wasm module: the magic `\0asm` and version 1.
fn assert_wasm(path: &std::path::Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\0asm\x01\0\0\0"),
        "{} starts with {:?}",
        path.display(),
        &bytes[..bytes.len().min(8)]
    );
}

#[test]
fn fwasm_build_compiles_c_and_cpp_sources_into_wasm_modules() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "hello.c",
        "#include <fwasm.h>\n\
         FWASM_HANDLER(req, res) {\n\
             fwasm_response_append_str(res, \"Hello, \");\n\
             fwasm_response_append(res, req->body, req->body_len);\n\
         }\n",
    );
    write(
        "hello.cpp",
        "#include <fwasm.h>\n\
         #include <string>\n\
         void fwasm_handle_request(const fwasm_request *req, fwasm_response *res) {\n\
             std::string s(reinterpret_cast<const char *>(req->body), req->body_len);\n\
             s = \"Hello, \" + s;\n\
             fwasm_response_set_body(res, s.data(), s.size());\n\
         }\n",
    );
    write(
        "faasm.cpp",
        "#include <faasm/faasm.h>\n\
         #include <faasm/input.h>\n\
         int main() {\n\
             faasm::setStringOutput(faasm::getStringInput(\"none\"));\n\
             return getConfFlag(\"X\") ? 1 : 0;\n\
         }\n",
    );

    for (source, output) in [
        ("hello.c", "c.wasm"),
        ("hello.cpp", "out/cpp.wasm"),
        ("faasm.cpp", "faasm.wasm"),
    ] {
        let (ok, stderr) = fwasm_build(dir.path(), &[source, "-o", output]);
        assert!(ok, "fwasm build {source} failed:\n{stderr}");
        assert!(stderr.contains(&format!("built {output}")), "{stderr}");
        assert_wasm(&dir.path().join(output));
    }
    // The API is the one whose entry point the sources define.
    let (_, stderr) = fwasm_build(dir.path(), &["faasm.cpp", "-o", "faasm.wasm"]);
    assert!(
        stderr.contains("faasm.cpp defines main: building against the Faasm C API"),
        "{stderr}"
    );
    let (_, stderr) = fwasm_build(dir.path(), &["hello.c", "-o", "c.wasm"]);
    assert!(
        stderr.contains("hello.c defines fwasm_handle_request: building against the fwasm C API"),
        "{stderr}"
    );
    // Without -o, the module is the first source's name with .wasm, in the current directory.
    let (ok, stderr) = fwasm_build(dir.path(), &["hello.c"]);
    assert!(ok, "{stderr}");
    assert_wasm(&dir.path().join("hello.wasm"));
}

#[test]
fn fwasm_build_fails_with_clangs_errors_on_a_broken_source() {
    let dir = tempfile::tempdir().unwrap();
    for (source, text) in [
        (
            "broken.c",
            "#include <fwasm.h>\n\
             FWASM_HANDLER(req, res) { fwasm_response_set_status(res, not_declared); }\n",
        ),
        (
            "broken.cpp",
            "#include <faasm/faasm.h>\n\
             int main() { return not_declared; }\n",
        ),
    ] {
        std::fs::write(dir.path().join(source), text).unwrap();
        let (ok, stderr) = fwasm_build(dir.path(), &[source, "-o", "broken.wasm"]);
        assert!(!ok, "fwasm build {source} succeeded:\n{stderr}");
        // clang's own diagnostic, pointing at the source line, then fwasm's summary.
        assert!(
            stderr.contains(&format!("{source}:2:"))
                && stderr.contains("error: use of undeclared identifier 'not_declared'"),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("clang could not compile {source}")),
            "{stderr}"
        );
        assert!(!dir.path().join("broken.wasm").exists());
    }
}

/// An HTTP client for the tests (its TLS on ring, as fwasm's own).
fn blocking_http_client() -> reqwest::blocking::Client {
    fwasm_proto::tls::use_ring_by_default();
    reqwest::blocking::Client::new()
}

/// Runs the fwasm binary in `dir`: its stdout and stderr, panicking if it failed.
fn fwasm_in(dir: &std::path::Path, args: &[&str]) -> (String, String) {
    let output = Command::new(FWASM)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert!(output.status.success(), "fwasm {args:?}: {stderr}");
    (stdout, stderr)
}

#[test]
fn fwasm_new_makes_a_project_that_builds_uploads_and_answers_outside_the_checkout() {
    let platform = tempfile::tempdir().unwrap();
    let (_up, port) = start_up(platform.path(), &[]);
    let addr = format!("127.0.0.1:{}", port("gRPC"));
    let work = tempfile::tempdir().unwrap();
    for (name, lang) in [("shout", "rust"), ("hello-c", "c"), ("hello-cpp", "cpp")] {
        let (created, _) = fwasm_in(work.path(), &["new", name, "--lang", lang]);
        assert!(
            created.contains(&format!("  cd {}", work.path().join(name).display())),
            "{created}"
        );
        assert!(created.contains("  fwasm build\n"), "{created}");
        let project = work.path().join(name);
        let (_, built) = fwasm_in(&project, &["build"]);
        assert!(
            built.contains(&format!("next: fwasm upload me/{name} {name}.wasm")),
            "{built}"
        );
        let module = format!("{name}.wasm");
        fwasm_in(
            &project,
            &["upload", &format!("me/{name}"), &module, "--addr", &addr],
        );
        let (answer, _) = fwasm_in(
            &project,
            &[
                "invoke",
                &format!("me/{name}"),
                "--input",
                "you",
                "--addr",
                &addr,
            ],
        );
        assert_eq!(answer, "Hello, you!", "{lang}");
    }
    // The SDK came with the project: nothing of this checkout is needed.
    assert!(
        work.path()
            .join("shout/.fwasm-sdk/fwasm-sdk/src/lib.rs")
            .is_file()
    );
    let again = Command::new(FWASM)
        .args(["new", "shout"])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let empty = tempfile::tempdir().unwrap();
    let nothing = Command::new(FWASM)
        .arg("build")
        .current_dir(empty.path())
        .output()
        .unwrap();
    assert!(!nothing.status.success());
    assert!(
        String::from_utf8_lossy(&nothing.stderr).contains("start a project with fwasm new NAME"),
        "{}",
        String::from_utf8_lossy(&nothing.stderr)
    );
}
