//! The `fwasm` binary itself: every command has --help, and `fwasm up` serves the demos at once.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

const FWASM: &str = env!("CARGO_BIN_EXE_fwasm");

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
    ] {
        assert!(top.contains(command), "{top}");
    }
    let up = help(&["up"]);
    for flag in [
        "--invoke-port",
        "--upload-port",
        "--grpc-port",
        "--data-dir",
        "--state-backend",
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
            ][..],
        ),
        (
            "scheduler",
            &["--listen", "--state", "--metrics", "--otlp-endpoint"],
        ),
        (
            "executor",
            &["--listen", "--state", "--scheduler", "--id", "--advertise"],
        ),
        (
            "gateway",
            &[
                "--state",
                "--scheduler",
                "--invoke-port",
                "--upload-port",
                "--grpc-port",
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn fwasm_up_serves_the_demo_functions_at_once() {
    let data = tempfile::tempdir().unwrap();
    let [invoke, upload, grpc] = [free_port(), free_port(), free_port()];
    let mut child = Running(
        Command::new(FWASM)
            .args([
                "up",
                "--invoke-port",
                &invoke.to_string(),
                "--upload-port",
                &upload.to_string(),
            ])
            .args(["--grpc-port", &grpc.to_string(), "--data-dir"])
            .arg(data.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The banner is printed once every port is listening and the demos are uploaded.
    let stdout = BufReader::new(child.0.stdout.take().unwrap());
    let banner: Vec<String> = stdout
        .lines()
        .map(Result::unwrap)
        .take_while(|l| !l.starts_with("Press Ctrl-C"))
        .collect();
    assert!(
        banner
            .iter()
            .any(|l| l.contains("demo functions: demo/echo, demo/hello")),
        "{banner:?}"
    );

    let client = reqwest::blocking::Client::new();
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

    // A second instance on the same data directory is told why it cannot start.
    let second = Command::new(FWASM)
        .args([
            "up",
            "--invoke-port",
            &free_port().to_string(),
            "--upload-port",
            &free_port().to_string(),
        ])
        .args(["--grpc-port", &free_port().to_string(), "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("is another `fwasm up` using"), "{stderr}");
}

/// The Kubernetes manifests start each service with flags the binary accepts.
#[test]
fn the_kubernetes_manifests_use_real_flags() {
    let manifest = include_str!("../../../deploy/k8s/fwasm.yaml");
    let mut checked = 0;
    // Container args are one flow list per container: `args: ["cmd", "--flag", ...]`,
    // possibly continued on the next line.
    let mut lines = manifest.lines();
    while let Some(line) = lines.next() {
        let Some(start) = line.find("args: [") else {
            continue;
        };
        let mut list = line[start + 7..].to_string();
        while !list.contains(']') {
            list.push_str(lines.next().expect("the list ends"));
        }
        let words: Vec<&str> = list.split('"').skip(1).step_by(2).collect();
        let command = words[0];
        if command.starts_with('-') {
            continue; // Redis's own arguments.
        }
        let usage = help(&[command]);
        for flag in words.iter().filter(|w| w.starts_with("--")) {
            assert!(usage.contains(flag), "fwasm {command} has no {flag}");
        }
        checked += 1;
    }
    assert_eq!(checked, 4, "state, scheduler, executor and gateway");
    // The config map's keys name flags too.
    for key in ["state", "scheduler", "backend", "metrics", "durable_calls"] {
        assert!(manifest.contains(&format!("{key} = ")), "{key}");
    }
    assert!(help(&["scheduler"]).contains("--durable-calls"));
    assert!(help(&["state"]).contains("--backend"));
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
    // The API is detected from the includes.
    let (_, stderr) = fwasm_build(dir.path(), &["faasm.cpp", "-o", "faasm.wasm"]);
    assert!(
        stderr.contains("faasm.cpp includes faasm/ headers: building as a Faasm-API function"),
        "{stderr}"
    );
    let (_, stderr) = fwasm_build(dir.path(), &["hello.c", "-o", "c.wasm"]);
    assert!(stderr.contains("against the fwasm C API"), "{stderr}");
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
