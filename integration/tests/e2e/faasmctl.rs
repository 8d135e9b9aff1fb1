//! The real `faasmctl` (Faasm's CLI, installed from PyPI by scripts/test) against `fwasm up`:
//! it uploads with Faasm's upload API and invokes through Faasm's planner protocol
//! (`EXECUTE_BATCH`, then `EXECUTE_BATCH_STATUS` polls), with a `faasm.ini` pointing at fwasm.

use std::path::{Path, PathBuf};
use std::process::Command;

use fwasm_proto::layotto::runtime_client::RuntimeClient;

use crate::c_guests::c_guest;
use crate::support::{Platform, up};

/// faasmctl, next to the venv's python that scripts/test made.
fn faasmctl() -> PathBuf {
    let python = std::env::var("FWASM_TEST_PYTHON")
        .expect("FWASM_TEST_PYTHON is not set: run scripts/test, which installs faasmctl");
    Path::new(&python).with_file_name("faasmctl")
}

/// A `faasm.ini` naming `p`'s invoke port as the planner and its upload port as the upload
/// server.
fn faasm_ini(p: &Platform, dir: &Path) -> PathBuf {
    let (planner_host, planner_port) = host_port(&p.invoke);
    let (upload_host, upload_port) = host_port(&p.upload);
    let ini = dir.join("faasm.ini");
    let text = format!(
        "[Faasm]\nbackend = compose\nplanner_host = {planner_host}\nplanner_port = {planner_port}\n\
         upload_host = {upload_host}\nupload_port = {upload_port}\n"
    );
    std::fs::write(&ini, text).unwrap();
    ini
}

fn host_port(url: &str) -> (String, String) {
    let authority = url.trim_start_matches("http://");
    let (host, port) = authority.rsplit_once(':').unwrap();
    (host.to_string(), port.to_string())
}

/// What a faasmctl run printed, and its exit code.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs faasmctl with `args` under a time limit (it polls a status without one of its own),
/// off the test's thread, so the platform in this process keeps serving it.
async fn run(ini: &Path, args: &[&str]) -> Run {
    let mut command = Command::new("timeout");
    command
        .args(["--kill-after=5", "120"])
        .arg(faasmctl())
        .args(args)
        .env("FAASM_INI_FILE", ini)
        // faasmctl reads the *_in_docker keys when it thinks it runs in Faasm's containers.
        .env_remove("FAASM_DOCKER")
        .env_remove("CPP_DOCKER");
    let output = tokio::task::spawn_blocking(move || command.output().expect("run faasmctl"))
        .await
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

impl Run {
    /// The text faasmctl prints under "Output:".
    fn output(&self) -> &str {
        let start = self
            .stdout
            .find("Output:\n")
            .map_or(0, |at| at + "Output:\n".len());
        let end = self.stdout.rfind("\n=====").unwrap_or(self.stdout.len());
        &self.stdout[start..end]
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

#[tokio::test]
async fn faasmctl_uploads_and_invokes_on_fwasm() {
    let p = up().await;
    let dir = tempfile::tempdir().unwrap();
    let ini = faasm_ini(&p, dir.path());
    let wasm = dir.path().join("function.wasm");
    std::fs::write(&wasm, c_guest("faasmctl_demo.c")).unwrap();
    let wasm = wasm.to_str().unwrap();

    let upload = run(&ini, &["upload", "demo", "hello", "--wasm-file", wasm]).await;
    assert_eq!(upload.code, 0, "{upload:?}");

    // Success: what the function printed comes before its output, as on Faasm.
    let args = ["invoke", "demo", "hello", "--input-data", "world"];
    let invoked = run(&ini, &[&args[..], &["--cmdline", "-n 3"]].concat()).await;
    assert_eq!(invoked.code, 0, "{invoked:?}");
    assert!(
        invoked.stdout.contains("Function: \t\t\tdemo/hello\n"),
        "{invoked:?}"
    );
    assert!(
        invoked.stdout.contains("Return value: \t\t\t0\n"),
        "{invoked:?}"
    );
    assert_eq!(
        invoked.output(),
        "arg -n\narg 3\n\nhello world",
        "{invoked:?}"
    );

    // A non-zero return: faasmctl exits with it, and the output says so as Faasm's does.
    let failed = run(&ini, &["invoke", "demo", "hello", "--input-data", "fail"]).await;
    assert_eq!(failed.code, 3, "{failed:?}");
    assert_eq!(
        failed.output(),
        "failing as asked\n\nCall failed (return value=3)",
        "{failed:?}"
    );

    // A shared file, uploaded by faasmctl, read by the function as faasm://PATH.
    let host_file = dir.path().join("greeting.txt");
    std::fs::write(&host_file, "from a shared file").unwrap();
    let host_file = host_file.to_str().unwrap();
    let args = ["upload.file", "--host-path", host_file, "--faasm-path"];
    let shared = run(&ini, &[&args[..], &["data/greeting.txt"]].concat()).await;
    assert_eq!(shared.code, 0, "{shared:?}");
    assert!(shared.stdout.contains("Response (200)"), "{shared:?}");
    let args = ["invoke", "demo", "hello", "--input-data"];
    let read = run(&ini, &[&args[..], &["file:data/greeting.txt"]].concat()).await;
    assert_eq!(
        (read.code, read.output()),
        (0, "from a shared file"),
        "{read:?}"
    );

    // An unknown function: faasmctl shows fwasm's reason (and then fails, as it does on Faasm).
    let unknown = run(&ini, &["invoke", "demo", "nothing"]).await;
    assert_ne!(unknown.code, 0, "{unknown:?}");
    assert!(
        unknown.stdout.contains("POST request failed (code: 404)"),
        "{unknown:?}"
    );
    p.stop().await;
}

#[tokio::test]
async fn faasmctl_runs_an_mpi_world_by_its_size() {
    let p = up().await;
    let dir = tempfile::tempdir().unwrap();
    let ini = faasm_ini(&p, dir.path());
    p.upload("mpi/checks", c_guest("mpi_checks.c")).await;
    // faasmctl sends `mpi_world_size` alone (no `mpi: true`), as it does to Faasm's planner.
    let args = ["invoke", "mpi", "checks", "--input-data", "allreduce"];
    let invoked = run(&ini, &[&args[..], &["--mpi-world-size", "4"]].concat()).await;
    assert_eq!(invoked.code, 0, "{invoked:?}");
    assert_eq!(
        invoked.output(),
        "allreduce ok size=4 sum=6 max=3",
        "{invoked:?}"
    );
    p.stop().await;
}

/// faasmctl's Python API, as faasm/python's tasks use it: `upload_python` (to py_user
/// `python`) and `invoke_wasm` with Faasm's Python message, printing the output.
const FAASMCTL_PYTHON: &str = r#"
import base64, sys
from faasmctl.util.invoke import invoke_wasm
from faasmctl.util.upload import upload_python
ini, func, script, data = sys.argv[1:5]
upload_python(func, script, ini_file=ini)
msg = {"user": "python", "function": "py_func", "python": True, "py_user": "python",
       "py_func": func, "input_data": base64.b64encode(data.encode()).decode()}
result = invoke_wasm(msg, ini_file=ini)
print("OUTPUT " + result.messageResults[0].outputData)
print("RETURN %d" % result.messageResults[0].returnValue)
"#;

#[tokio::test]
async fn faasmctl_uploads_and_invokes_a_python_function() {
    let p = crate::support::up_python().await;
    let dir = tempfile::tempdir().unwrap();
    let ini = faasm_ini(&p, dir.path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("functions-py/echo.py");
    let python = std::env::var("FWASM_TEST_PYTHON")
        .expect("FWASM_TEST_PYTHON is not set: run scripts/test, which installs faasmctl");
    let mut command = Command::new("timeout");
    command
        .args(["--kill-after=5", "120", &python, "-c", FAASMCTL_PYTHON])
        .arg(&ini)
        .args(["echo", script.to_str().unwrap(), "said through faasmctl"]);
    let output = tokio::task::spawn_blocking(move || command.output().expect("run python"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Response (200): Function upload complete"),
        "{stdout}"
    );
    assert!(
        stdout.contains("OUTPUT said through faasmctl\n"),
        "{stdout}"
    );
    assert!(stdout.contains("RETURN 0\n"), "{stdout}");
    p.stop().await;
}

/// A planner message: `kind` with `payload` (a JSON document) as its string payload.
fn planner(kind: &str, payload: serde_json::Value) -> String {
    serde_json::json!({"http_type": kind, "payload": payload.to_string()}).to_string()
}

/// Polls app `app_id` until it has finished; its status.
async fn finished(p: &Platform, app_id: i32) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let poll = planner("EXECUTE_BATCH_STATUS", serde_json::json!({"appId": app_id}));
        let (status, body) = p.post_message(poll).await;
        assert_eq!(status, 200, "{body}");
        let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
        if reply["finished"] == true {
            return reply;
        }
        assert!(std::time::Instant::now() < deadline, "app {app_id}: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_planner_protocol_echoes_the_clients_ids_and_gives_each_result() {
    for (mode, p) in crate::support::each_platform_with(crate::support::short_time_limit()).await {
        p.upload_testkit("t", &["upper", "spin", "state"]).await;
        // Two messages in one app, by the ids the client chose; input is base64 ("aGk=": hi).
        let batch = serde_json::json!({"appId": 4321, "user": "t", "function": "upper",
        "messages": [
            {"id": 20, "appId": 4321, "user": "t", "function": "upper", "input_data": "aGk="},
            {"id": 10, "appId": 4321, "user": "t", "function": "upper", "input_data": "eW8="},
        ]});
        let (status, body) = p.post_message(planner("EXECUTE_BATCH", batch)).await;
        assert_eq!(
            (status, body.as_str()),
            (200, r#"{"appId":4321,"expectedNumMessages":2}"#),
            "{mode}"
        );
        let reply = finished(&p, 4321).await;
        let results = reply["messageResults"].as_array().unwrap();
        let by_id: Vec<(i64, &str)> = results
            .iter()
            .map(|r| {
                (
                    r["id"].as_i64().unwrap(),
                    r["output_data"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(by_id, [(10, "YO"), (20, "HI")], "{mode}: {reply}");
        let first = &results[0];
        assert_eq!(
            (first["appId"].as_i64(), first["user"].as_str()),
            (Some(4321), Some("t"))
        );
        assert!(first.get("returnValue").is_none(), "{mode}: {reply}");
        let (start, finish) = (first["start_ts"].as_str(), first["finish_ts"].as_str());
        let millis = |ts: Option<&str>| ts.unwrap().parse::<u64>().unwrap();
        assert!(millis(start) <= millis(finish) && millis(start) > 1_700_000_000_000);

        // An app id still running cannot be reused: its one call waits for a lock the test
        // holds, until the test lets go.
        let channel = tonic::transport::Channel::from_shared(p.grpc.clone()).unwrap();
        let mut layotto = RuntimeClient::new(channel.connect().await.unwrap());
        let gate = |owner: &str| fwasm_proto::layotto::TryLockRequest {
            store_name: "t".into(),
            resource_id: "gate".into(),
            lock_owner: owner.into(),
            expire: 60,
        };
        assert!(
            layotto
                .try_lock(gate("test"))
                .await
                .unwrap()
                .into_inner()
                .success
        );
        // "lock_global_write gate", base64.
        let waits = serde_json::json!({"appId": 77, "messages": [{"user": "t", "function": "state",
            "input_data": "bG9ja19nbG9iYWxfd3JpdGUgZ2F0ZQ=="}]});
        let (status, _) = p
            .post_message(planner("EXECUTE_BATCH", waits.clone()))
            .await;
        assert_eq!(status, 200, "{mode}");
        let (status, body) = p.post_message(planner("EXECUTE_BATCH", waits)).await;
        assert_eq!(
            (status, body.as_str()),
            (
                400,
                "Bad BatchExecRequest: app 77 is still running; send the batch under another app id"
            ),
            "{mode}"
        );
        let unlock = fwasm_proto::layotto::UnlockRequest {
            store_name: "t".into(),
            resource_id: "gate".into(),
            lock_owner: "test".into(),
        };
        layotto.unlock(unlock).await.unwrap();
        let reply = finished(&p, 77).await;
        assert!(
            reply["messageResults"][0].get("returnValue").is_none(),
            "{mode}: {reply}"
        );

        // A failure gives its code and reason.
        let spin =
            serde_json::json!({"appId": 78, "messages": [{"user": "t", "function": "spin"}]});
        let (status, _) = p.post_message(planner("EXECUTE_BATCH", spin)).await;
        assert_eq!(status, 200, "{mode}");
        let reply = finished(&p, 78).await;
        let result = &reply["messageResults"][0];
        assert_eq!(result["returnValue"], 3, "{mode}: {reply}"); // FAILURE_KIND_TIMEOUT
        assert_eq!(result["output_data"], "t/spin timed out after 1s", "{mode}");
        assert!(
            result["id"].as_i64().unwrap() > 0,
            "{mode}: ids are made for messages without"
        );

        // What fwasm does not serve, or cannot read, is named.
        let cases = [
            (
                planner("EXECUTE_BATCH_STATUS", serde_json::json!({"appId": 5})),
                404,
                "App 5 is not known here",
            ),
            (
                planner("EXECUTE_BATCH", serde_json::json!({"messages": []})),
                400,
                "Bad BatchExecRequest: it has no messages",
            ),
            (
                r#"{"http_type": "EXECUTE_BATCH", "payload": "{"}"#.to_string(),
                400,
                "Bad JSON in body's payload",
            ),
            (
                r#"{"http_type": "RESET"}"#.to_string(),
                501,
                "fwasm does not serve the planner's RESET request",
            ),
            (
                r#"{"http_type": 42}"#.to_string(),
                400,
                "Unrecognised message type",
            ),
            (
                r#"{"http_type": []}"#.to_string(),
                400,
                "Bad JSON in request body",
            ),
        ];
        for (message, want_status, want_text) in cases {
            let (status, body) = p.post_message(message.clone()).await;
            assert_eq!(status, want_status, "{mode}: {message}: {body}");
            assert!(body.starts_with(want_text), "{mode}: {message}: {body}");
        }
        p.stop().await;
    }
}

#[tokio::test]
async fn the_planner_gives_a_result_per_rank_of_an_mpi_world() {
    let p = up().await;
    p.upload("mpi/checks", c_guest("mpi_checks.c")).await;
    // The check to run, base64: "allreduce" or "trap".
    let batch = |app_id: i32, input: &str| {
        let batch = serde_json::json!({"appId": app_id, "user": "mpi", "function": "checks",
            "messages": [{"id": 500, "user": "mpi", "function": "checks",
                "input_data": input, "mpi_world_size": 4}]});
        planner("EXECUTE_BATCH", batch)
    };
    let (status, started) = p.post_message(batch(610, "YWxscmVkdWNl")).await;
    assert_eq!(status, 200, "{started}");
    assert!(started.contains(r#""expectedNumMessages":4"#), "{started}");
    let reply = finished(&p, 610).await;
    let results = reply["messageResults"].as_array().unwrap();
    assert_eq!(results.len(), 4, "{reply}");
    // Rank 0's first (faasmctl prints the first), each rank's result marked as such.
    let world = &results[0]["mpiWorldId"];
    for (rank, result) in results.iter().enumerate() {
        assert_eq!(result["id"], 500 + rank, "{reply}");
        assert_eq!(result["mpi"], true);
        assert_eq!(result["mpi_world_size"], 4);
        assert_eq!(&result["mpiWorldId"], world);
        assert_eq!(result["mpiRank"].as_u64().unwrap_or(0), rank as u64);
        assert!(result.get("returnValue").is_none(), "{result}");
    }
    assert_eq!(results[0]["output_data"], "allreduce ok size=4 sum=6 max=3");

    // A world that fails fails in every rank's result, each saying its own part.
    let (status, _) = p.post_message(batch(611, "dHJhcA==")).await;
    assert_eq!(status, 200);
    let reply = finished(&p, 611).await;
    let results = reply["messageResults"].as_array().unwrap();
    assert_eq!(results.len(), 4, "{reply}");
    let code = &results[0]["returnValue"];
    assert!(code.as_i64().is_some_and(|code| code != 0), "{reply}");
    assert!(results.iter().all(|r| &r["returnValue"] == code), "{reply}");
    let trapped = results[3]["output_data"].as_str().unwrap();
    assert!(trapped.contains("trapped"), "{reply}");
    p.stop().await;
}
