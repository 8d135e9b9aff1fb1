//! Python functions (integration/functions-py) through `fwasm up`, in the Python runtime
//! scripts/build-python builds: Faasm's upload (`PUT /p/`), its JSON message and planner batch
//! (the real faasmctl's Python API), fwasm's direct calls; pyfaasm's input, output, chaining
//! and state; the `handle(request)` form; Python and C/Rust functions chaining each other;
//! start-up from the snapshot; and every way a script fails, the executor serving on.

use std::path::Path;

use fwasm_proto::pb::{CallStatus, FailureKind, InvokeRequest};

use crate::c_guests::c_guest;
use crate::support::{Platform, guest, mesh_with, python_executor_config, up, up_python, up_with};

fn script(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("functions-py")
        .join(format!("{name}.py"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `PUT /p/<user>/<function>`: status, the kind the upload reports, and the body.
async fn put_script(
    p: &Platform,
    user_function: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, String, String) {
    let response = p
        .http
        .put(format!("{}/p/{user_function}", p.upload))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("x-fwasm-abi")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, kind, response.text().await.unwrap())
}

async fn upload_script(p: &Platform, user_function: &str, name: &str) {
    let (status, kind, body) = put_script(p, user_function, script(name)).await;
    assert_eq!((status, body.as_str()), (200, "Function upload complete\n"));
    assert_eq!(kind, "Python 3.11");
}

/// `POST /p/<user>/<function>`: status and body.
async fn call_p(
    p: &Platform,
    user_function: &str,
    input: impl Into<reqwest::Body>,
) -> (u16, String) {
    let response = p
        .http
        .post(format!("{}/p/{user_function}", p.invoke))
        .body(input)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Faasm's JSON message for a Python function, as faasm/python's `inv func.invoke` sends it.
fn faasm_python_message(py_user: &str, py_func: &str, input: &str) -> String {
    serde_json::json!({
        "user": "python", "function": "py_func", "python": true,
        "py_user": py_user, "py_func": py_func, "input_data": input,
    })
    .to_string()
}

#[tokio::test]
async fn faasms_hello_runs_from_its_json_message_and_fwasms_direct_calls() {
    let p = up_python().await;
    upload_script(&p, "python/hello", "hello").await;
    let hello = "Hello! Running Python version 3.11.2";

    let (status, body) = p
        .post_message(faasm_python_message("python", "hello", ""))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with(hello), "{body}");

    // fwasm's own doors: /p/ and /f/ call the same function.
    for door in ["p", "f"] {
        let url = format!("{}/{door}/python/hello", p.invoke);
        let response = p.http.post(url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert!(response.text().await.unwrap().starts_with(hello));
    }

    // The script comes back as uploaded, marked as Python.
    let url = format!("{}/p/python/hello", p.upload);
    let response = p.http.get(url).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/x-python");
    assert_eq!(response.text().await.unwrap(), script("hello"));

    // A Python message without the script's name is refused, as is one for no function.
    let (status, body) = p
        .post_message(r#"{"user": "python", "function": "py_func", "python": true}"#)
        .await;
    assert_eq!(
        (status, body.as_str()),
        (400, "Python call without py_user and py_func\n")
    );
    let (status, _) = p
        .post_message(faasm_python_message("python", "nope", ""))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn input_and_output_go_through_pyfaasm_byte_for_byte() {
    let p = up_python().await;
    upload_script(&p, "u/echo", "echo").await;
    let input: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
    let response = p
        .http
        .post(format!("{}/p/u/echo", p.invoke))
        .body(input.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.bytes().await.unwrap(), input);
    assert_eq!(
        call_p(&p, "u/echo", "").await,
        (200, "Nothing to echo".into())
    );
    let (status, body) = p
        .post_message(faasm_python_message("u", "echo", "via JSON"))
        .await;
    assert_eq!((status, body.as_str()), (200, "via JSON\n"));
}

#[tokio::test]
async fn a_script_chains_its_own_functions_and_awaits_them() {
    let p = up_python().await;
    upload_script(&p, "u/chain", "chain").await;
    assert_eq!(
        call_p(&p, "u/chain", "").await,
        (200, "children returned 0 and 0".into())
    );
    // A chained entry, named as Faasm's `pythonEntry` does: chain_two checks its input.
    let message = serde_json::json!({
        "user": "python", "function": "py_func", "python": true, "py_user": "u",
        "py_func": "chain", "pythonEntry": "chain_two", "input_data": "not 5678",
    });
    let (status, body) = p.post_message(message.to_string()).await;
    assert_eq!(
        (status, body.as_str()),
        (500, "Call failed (return value=3)\n")
    );
}

#[tokio::test]
async fn state_is_written_pushed_pulled_and_read_at_offsets() {
    let p = up_python().await;
    upload_script(&p, "u/state", "state").await;
    assert_eq!(
        call_p(&p, "u/state", "write").await,
        (200, "written".into())
    );
    let (status, body) = call_p(&p, "u/state", "read").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "10|0199956789|1999|89\0\0|ab\0\0\0\0");
    // Pushed to the global tier: the HTTP state API sees it.
    assert_eq!(
        p.get_state("u/pyStateTest").await,
        (200, "0199956789".into())
    );
}

#[tokio::test]
async fn handle_returns_the_response_with_its_status_and_headers() {
    let p = up_python().await;
    upload_script(&p, "u/web", "web").await;
    let response = p
        .http
        .post(format!("{}/p/u/web", p.invoke))
        .header("x-test", "yes")
        .body(r#"{"name": "Ann"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"greeting": "Hello, Ann!", "header": "yes", "method": "POST"}"#
    );
    let response = p
        .http
        .post(format!("{}/p/u/web/teapot", p.invoke))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 418);
    assert_eq!(response.headers()["x-kind"], "teapot");
    assert_eq!(response.text().await.unwrap(), "short and stout");
}

#[tokio::test]
async fn python_and_c_and_rust_functions_chain_each_other() {
    let p = up_python().await;
    // Python calls the Rust testkit's `upper` by name.
    p.upload("u/upper", guest("testkit")).await;
    upload_script(&p, "u/mixed", "mixed").await;
    assert_eq!(call_p(&p, "u/mixed", "abc").await, (200, "0 ABC".into()));
    // A C function (Faasm's C API) chains two Python functions by name.
    p.upload("u/chain_named", c_guest("chain_named.c")).await;
    upload_script(&p, "u/chain_named_b", "upper").await;
    upload_script(&p, "u/chain_named_c", "reverse").await;
    assert_eq!(
        p.call("u/chain_named", "").await,
        (200, "b:ABC,c:zyx".into())
    );
}

#[tokio::test]
async fn calls_start_from_the_snapshot_taken_once_with_random_numbers_of_their_own() {
    let p = up_python().await;
    upload_script(&p, "u/started", "started").await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (status, body) = call_p(&p, "u/started", "").await;
        assert_eq!(status, 200, "{body}");
        let words: Vec<String> = body.split(' ').map(str::to_string).collect();
        assert_eq!(words.len(), 5, "{body}");
        seen.push(words);
    }
    // fwasm_init() ran once: every call sees its timestamp, and none sees another's count.
    assert!(
        seen.iter().all(|w| w[0] == seen[0][0] && w[0] != "None"),
        "{seen:?}"
    );
    assert!(seen.iter().all(|w| w[1] == "1"), "{seen:?}");
    // json was imported before the snapshot.
    assert!(seen.iter().all(|w| w[2] == "True"), "{seen:?}");
    // random and os.urandom draw afresh in every call.
    for column in [3, 4] {
        let mut values: Vec<&String> = seen.iter().map(|w| &w[column]).collect();
        values.dedup();
        assert_eq!(values.len(), 3, "column {column} repeats: {seen:?}");
    }
}

#[tokio::test]
async fn every_way_a_script_fails_is_named_and_the_executor_serves_on() {
    let p = up_python().await;
    upload_script(&p, "u/failing", "failing").await;
    upload_script(&p, "u/syntax", "syntax").await;
    upload_script(&p, "u/noentry", "noentry").await;
    upload_script(&p, "u/hello", "hello").await;

    let (status, body) = call_p(&p, "u/failing", "raise").await;
    assert_eq!(status, 500);
    assert!(
        body.starts_with("u/failing failed with code 1: Traceback"),
        "{body}"
    );
    assert!(
        body.contains("File \"/pyfuncs/u/failing/function.py\", line 20, in inner"),
        "{body}"
    );
    assert!(
        body.contains("RuntimeError: something went wrong"),
        "{body}"
    );
    assert!(
        !body.contains("_fwasm_runtime"),
        "the runtime's frames show: {body}"
    );

    let (status, body) = call_p(&p, "u/failing", "zlib").await;
    assert_eq!(status, 500);
    assert!(
        body.contains("ModuleNotFoundError: No module named 'zlib'"),
        "{body}"
    );
    assert!(body.contains("(zlib is not in fwasm's Python"), "{body}");

    let (status, body) = call_p(&p, "u/failing", "exit").await;
    assert_eq!(
        (status, body.as_str()),
        (
            500,
            "u/failing failed with code 3: Call failed (return value=3)\n"
        )
    );

    let (status, body) = call_p(&p, "u/syntax", "").await;
    assert_eq!(status, 500);
    assert!(
        body.contains("/pyfuncs/u/syntax/function.py: does not compile"),
        "{body}"
    );
    assert!(body.contains("SyntaxError: invalid syntax"), "{body}");

    let (status, body) = call_p(&p, "u/noentry", "").await;
    assert_eq!(
        (status, body.as_str()),
        (
            500,
            "u/noentry failed with code 1: /pyfuncs/u/noentry/function.py defines neither \
             faasm_main() nor handle(request)\n"
        )
    );

    // Each failure is the call's own, with its kind in the record.
    let mut client = p.grpc_client().await;
    let request = InvokeRequest {
        user: "u".into(),
        function: "failing".into(),
        input: "exit".into(),
        ..InvokeRequest::default()
    };
    let result = client.invoke(request).await.unwrap().into_inner();
    assert_eq!(result.status, CallStatus::Failed as i32);
    assert_eq!(result.failure, FailureKind::Exit as i32);
    assert_eq!(result.return_code, 3);
    // The traceback is in the call's console output too (its stderr).
    let request = InvokeRequest {
        user: "u".into(),
        function: "failing".into(),
        input: "raise".into(),
        ..InvokeRequest::default()
    };
    let result = client.invoke(request).await.unwrap().into_inner();
    let printed = String::from_utf8_lossy(&result.stdout);
    assert!(
        printed.starts_with("Traceback (most recent call last):"),
        "{printed}"
    );
    assert!(
        printed.contains("RuntimeError: something went wrong"),
        "{printed}"
    );

    let (status, body) = call_p(&p, "u/hello", "").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_looping_script_is_stopped_at_its_cpu_and_time_limits() {
    let p = up_python().await;
    upload_script(&p, "u/failing", "failing").await;
    let (status, body) = call_p(&p, "u/failing", "loop").await;
    assert_eq!(
        (status, body.as_str()),
        (
            500,
            "u/failing used up its CPU budget of 20000000000 fuel\n"
        )
    );
    assert_eq!(call_p(&p, "u/failing", "ok").await, (200, String::new()));

    // With CPU to spare, the clock stops it.
    let mut config = python_executor_config();
    config.limits.timeout = std::time::Duration::from_secs(5);
    config.limits.max_fuel = u64::MAX / 4;
    let p = up_with(config).await;
    upload_script(&p, "u/failing", "failing").await;
    let (status, body) = call_p(&p, "u/failing", "loop").await;
    assert_eq!(
        (status, body.as_str()),
        (500, "u/failing timed out after 5s\n")
    );
}

#[tokio::test]
async fn bad_scripts_are_refused_at_upload_and_wasm_and_python_share_one_namespace() {
    let p = up_python().await;
    let refused = |status: u16, body: &str, wanted: &str| {
        assert_eq!(status, 400, "{body}");
        assert!(body.contains(wanted), "{body}");
    };
    let echo = guest("echo");
    let (status, _, body) = put_script(&p, "u/x", echo.clone()).await;
    refused(
        status,
        &body,
        "this is a wasm module, not a Python script: upload it with PUT /f/",
    );
    let (status, _, body) = put_script(&p, "u/x", vec![b'x', 0xff, b'\n']).await;
    refused(status, &body, "the script is not UTF-8 text");
    let (status, _, body) = put_script(&p, "u/x", "   \n").await;
    refused(status, &body, "the script is empty");
    let (status, _, body) = put_script(&p, "u/x", vec![b'#'; (1 << 20) + 1]).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("over the limit of 1048576 bytes"), "{body}");

    // One namespace: each upload replaces the function of that name, whatever its kind.
    p.upload("u/x", echo.clone()).await;
    assert_eq!(call_p(&p, "u/x", "wasm").await, (200, "wasm".into()));
    upload_script(&p, "u/x", "reverse").await;
    assert_eq!(call_p(&p, "u/x", "python").await, (200, "nohtyp".into()));
    p.upload("u/x", echo).await;
    assert_eq!(
        call_p(&p, "u/x", "wasm again").await,
        (200, "wasm again".into())
    );
    assert_eq!(call_p(&p, "u/nope", "").await.0, 404);
}

#[tokio::test]
async fn an_executor_without_the_runtime_says_how_to_get_it() {
    let p = up().await;
    upload_script(&p, "u/hello", "hello").await;
    let (status, body) = call_p(&p, "u/hello", "").await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("no Python runtime"), "{body}");
    assert!(body.contains("scripts/build-python"), "{body}");
}

#[tokio::test]
async fn fwasm_upload_takes_a_python_script_over_grpc() {
    let p = up_python().await;
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("functions-py/reverse.py");
    let mut out = Vec::new();
    fwasm::client::upload(&p.grpc, "cli/reverse", &file, &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("Uploaded cli/reverse: ABI Python 3.11, sha256 "),
        "{text}"
    );
    let mut out = Vec::new();
    fwasm::client::invoke(&p.grpc, "cli/reverse", b"gRPC".to_vec(), &mut out)
        .await
        .unwrap();
    assert_eq!(out, b"CPRg");
}

#[tokio::test]
async fn python_functions_run_on_the_executors_of_a_mesh() {
    let p = mesh_with(2, python_executor_config()).await;
    upload_script(&p, "u/chain", "chain").await;
    upload_script(&p, "u/echo", "echo").await;
    assert_eq!(
        call_p(&p, "u/chain", "").await,
        (200, "children returned 0 and 0".into())
    );
    let (status, body) = p
        .post_message(faasm_python_message("u", "echo", "mesh"))
        .await;
    assert_eq!((status, body.as_str()), (200, "mesh\n"));
}

#[tokio::test]
async fn a_caller_picks_only_public_functions_of_the_script_as_entries() {
    let p = up_python().await;
    upload_script(&p, "u/entries", "entries").await;
    let entry = |name: &str| {
        serde_json::json!({"python": true, "py_user": "u", "py_func": "entries",
            "pythonEntry": name, "input_data": "x"})
        .to_string()
    };
    let (status, body) = p.post_message(entry("public")).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "public got x, PYTHONWASM=1\n")
    );
    // Faasm's door says only "Call failed"; fwasm's names the entry.
    let (status, body) = p.post_message(entry("_private")).await;
    assert_eq!(
        (status, body.as_str()),
        (500, "Call failed (return value=1)\n")
    );
    for name in ["_private", "rmtree", "__class__", "nope"] {
        let input = fwasm_proto::python::entry_input(name, b"x");
        let (status, body) = call_p(&p, "u/entries", input).await;
        assert_eq!(status, 500, "{name}: {body}");
        assert!(
            body.contains(&format!(
                "defines no public function '{name}' to run as a chained entry"
            )),
            "{name}: {body}"
        );
    }
    // sys.exit with a message, as Python's own: printed, and the call fails with code 1.
    let (status, body) = call_p(&p, "u/entries", "exit").await;
    assert_eq!(
        (status, body.as_str()),
        (
            500,
            "u/entries failed with code 1: leaving with a message\n"
        )
    );
}
