//! C and C++ functions, compiled from integration/functions-c with `fwasm build` (the real
//! clang and wasi-libc) and run through `fwasm up`: fwasm's own C API, and Faasm functions
//! that compile unchanged against sdk-c's Faasm headers.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use fwasm_proto::pb::{CallRef, UploadRequest};

use crate::support::{Platform, up};

/// A function from integration/functions-c, built once per test run.
fn c_guest(source: &str) -> Vec<u8> {
    static BUILT: OnceLock<Mutex<HashMap<String, Vec<u8>>>> = OnceLock::new();
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    // Held while building, so two tests never build (and write) the same module at once.
    let mut built = BUILT.get_or_init(Mutex::default).lock().unwrap();
    if let Some(wasm) = built.get(source) {
        return wasm.clone();
    }
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("functions-c")
        .join(source);
    let output = dir.path().join(format!("{source}.wasm"));
    let options = fwasm::build::BuildOptions {
        sources: vec![src],
        output: output.clone(),
        quiet: true,
        ..fwasm::build::BuildOptions::default()
    };
    fwasm::build::build(&options).unwrap_or_else(|e| {
        panic!("fwasm build {source} failed (scripts/test installs clang and wasi-libc): {e:#}")
    });
    let wasm = std::fs::read(output).unwrap();
    built.insert(source.to_string(), wasm.clone());
    wasm
}

async fn with(p: &Platform, user_function: &str, source: &str) {
    p.upload(user_function, c_guest(source)).await;
}

#[tokio::test]
async fn native_c_and_cpp_functions_answer() {
    let p = up().await;
    with(&p, "c/echo", "echo.c").await;
    with(&p, "c/hello", "hello.cpp").await;
    assert_eq!(
        p.call("c/echo", "bytes in, bytes out").await,
        (200, "bytes in, bytes out".into())
    );
    assert_eq!(
        p.call("c/hello", "world").await,
        (200, "Hello, world!".into())
    );
    p.stop().await;
}

#[tokio::test]
async fn upload_says_a_module_uses_the_faasm_api() {
    let p = up().await;
    let mut client = p.grpc_client().await;
    let abi = |source: &str| UploadRequest {
        user: "c".into(),
        function: source.replace('.', "_"),
        wasm: c_guest(source).into(),
    };
    let faasm = client.upload(abi("printf.c")).await.unwrap().into_inner();
    assert_eq!(faasm.abi, "Faasm C API (on fwasm v1)");
    let native = client.upload(abi("echo.c")).await.unwrap().into_inner();
    assert_eq!(native.abi, "fwasm v1");
    p.stop().await;
}

#[tokio::test]
async fn printf_output_is_captured_with_the_call() {
    let p = up().await;
    with(&p, "c/printf", "printf.c").await;
    let (status, body, id) = p.call_with_id("c/printf", "").await;
    assert_eq!((status, body.as_str()), (200, "printed"));
    let mut client = p.grpc_client().await;
    let record = client.get_call(CallRef { id }).await.unwrap().into_inner();
    assert_eq!(&record.stdout[..], b"hello from printf\n");
    let response = p
        .http
        .post(format!("{}/f/c/printf", p.invoke))
        .header("x-fwasm-stdout", "include")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "printedhello from printf\n");
    p.stop().await;
}

#[tokio::test]
async fn faasm_chaining_by_name_and_by_function_pointer() {
    let p = up().await;
    for name in ["chain_named", "chain_named_b", "chain_named_c"] {
        with(&p, &format!("c/{name}"), "chain_named.c").await;
    }
    with(&p, "c/chain_ptr", "chain_ptr.c").await;
    assert_eq!(
        p.call("c/chain_named", "go").await,
        (200, "b:ABC,c:zyx".into())
    );
    assert_eq!(p.call("c/chain_ptr", "").await, (200, "[one][two]".into()));
    p.stop().await;
}

#[tokio::test]
async fn faasm_state_counter_offsets_and_append() {
    let p = up().await;
    with(&p, "c/counter", "counter.c").await;
    with(&p, "c/state_offset", "state_offset.cpp").await;
    with(&p, "c/append", "append.c").await;
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (http, url) = (p.http.clone(), format!("{}/f/c/counter", p.invoke));
            tokio::spawn(async move {
                let reply = http.post(url).send().await.unwrap();
                reply.text().await.unwrap()
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for call in calls {
        seen.insert(call.await.unwrap().parse::<u64>().unwrap());
    }
    assert_eq!(seen, (1..=20).collect());
    assert_eq!(p.call("c/state_offset", "").await, (200, "success".into()));
    assert_eq!(p.call("c/append", "5").await, (200, "0,1,2,3,4".into()));
    p.stop().await;
}

#[tokio::test]
async fn shared_files_are_read_and_bad_paths_and_calls_get_errnos() {
    let p = up().await;
    with(&p, "c/read_file", "read_file.c").await;
    with(&p, "c/bad_files", "bad_files.c").await;
    let (status, body) = p.call("c/read_file", "").await;
    assert_eq!(status, 500);
    assert!(
        body.contains("failed with code 1: No such file or directory"),
        "{body}"
    );
    let upload = p
        .http
        .put(format!("{}/file", p.upload))
        .header("FilePath", "/data/greeting.txt")
        .body("hello from a shared file")
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status().as_u16(), 200);
    assert_eq!(
        p.call("c/read_file", "").await,
        (200, "hello from a shared file".into())
    );
    assert_eq!(
        p.call("c/bad_files", "").await,
        (
            200,
            "open /../../etc/passwd: ENOTCAPABLE\nopen /missing.txt: ENOENT\nlink: ENOSYS\n".into()
        )
    );
    p.stop().await;
}

#[tokio::test]
async fn a_faasm_main_returning_non_zero_fails_with_that_code() {
    let p = up().await;
    with(&p, "c/exit_code", "exit_code.c").await;
    let (status, body, id) = p.call_with_id("c/exit_code", "").await;
    assert_eq!(status, 500);
    assert_eq!(body, "c/exit_code failed with code 3: main returned 3\n");
    let mut client = p.grpc_client().await;
    let record = client.get_call(CallRef { id }).await.unwrap().into_inner();
    assert_eq!(record.return_code, 3);
    assert_eq!(
        p.status(id).await.1,
        "FAILED: c/exit_code failed with code 3: main returned 3"
    );
    p.stop().await;
}
