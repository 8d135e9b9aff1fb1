//! C and C++ functions, compiled from integration/functions-c with `fwasm build` (the real
//! clang and wasi-libc) and run through `fwasm up`: fwasm's own C API, and Faasm functions
//! that compile unchanged against sdk-c's Faasm headers.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use fwasm_proto::layotto;
use fwasm_proto::layotto::runtime_client::RuntimeClient;
use fwasm_proto::pb::UploadRequest;
use tonic::transport::Channel;

use crate::support::{Platform, up};

/// A function from integration/functions-c, built once per test run.
pub fn c_guest(source: &str) -> Vec<u8> {
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

/// `fwasm build` options for `source` alone, quiet, writing its module into `dir`.
fn build_options(source: std::path::PathBuf, dir: &Path) -> fwasm::build::BuildOptions {
    let name = source.file_name().unwrap().to_string_lossy().into_owned();
    fwasm::build::BuildOptions {
        sources: vec![source],
        output: dir.join(format!("{name}.wasm")),
        quiet: true,
        ..fwasm::build::BuildOptions::default()
    }
}

/// Uploads a common shared file (Faasm's `PUT /file`), as an operator does.
async fn share_file(p: &Platform, path: &str, text: &'static str) {
    let upload = p
        .http
        .put(format!("{}/file", p.upload))
        .header("FilePath", path)
        .body(text)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status().as_u16(), 200);
}

/// Calls `user_function` (no input) with its captured stdout after its output.
async fn with_stdout(p: &Platform, user_function: &str) -> reqwest::Response {
    p.http
        .post(format!("{}/f/{user_function}", p.invoke))
        .header("x-fwasm-stdout", "include")
        .send()
        .await
        .unwrap()
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
        settings: None,
        python: false,
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
    let record = p.record(id).await;
    assert_eq!(&record.stdout[..], b"hello from printf\n");
    let response = with_stdout(&p, "c/printf").await;
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
    share_file(&p, "/data/greeting.txt", "hello from a shared file").await;
    assert_eq!(
        p.call("c/read_file", "").await,
        (200, "hello from a shared file".into())
    );
    // That file is a common one (Faasm's `/file` with no token): every user's functions read
    // it, unless their user has its own file at the path. Another user's file is not seen.
    with(&p, "d/read_file", "read_file.c").await;
    let mut layotto = RuntimeClient::new(
        Channel::from_shared(p.grpc.clone())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let own = |user: &str, data: &str| layotto::PutFileRequest {
        store_name: user.into(),
        name: "data/greeting.txt".into(),
        data: data.to_string().into(),
        ..Default::default()
    };
    let put = tokio_stream::iter([own("c", "c's own greeting")]);
    layotto.put_file(put).await.unwrap();
    let put = tokio_stream::iter([own("e", "e's own greeting")]);
    layotto.put_file(put).await.unwrap();
    assert_eq!(
        p.call("c/read_file", "").await,
        (200, "c's own greeting".into())
    );
    assert_eq!(
        p.call("d/read_file", "").await,
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
    let record = p.record(id).await;
    assert_eq!(record.return_code, 3);
    // Faasm's doors word it as Faasm does.
    assert_eq!(p.status(id).await.1, "FAILED: Call failed (return value=3)");
    p.stop().await;
}

#[tokio::test]
async fn faasms_doors_give_stdout_first_and_a_failures_stdout_with_it() {
    let p = up().await;
    with(&p, "c/demo", "faasmctl_demo.c").await;
    let message = |input: &str, is_async: bool| {
        let message = serde_json::json!({"user": "c", "function": "demo",
            "input_data": input, "cmdline": "x", "async": is_async});
        message.to_string()
    };
    // Faasm's JSON message: what the function printed, then its output.
    let (status, body) = p.post_message(message("you", false)).await;
    assert_eq!((status, body.as_str()), (200, "arg x\n\nhello you\n"));
    let (status, body) = p.post_message(message("fail", false)).await;
    assert_eq!(
        (status, body.as_str()),
        (
            500,
            "arg x\nfailing as asked\n\nCall failed (return value=3)\n"
        )
    );
    let (_, id) = p.post_message(message("fail", true)).await;
    assert_eq!(
        p.status_when_done(id.parse().unwrap()).await,
        "FAILED: arg x\nfailing as asked\n\nCall failed (return value=3)"
    );
    let (_, id) = p.post_message(message("me", true)).await;
    let id: u64 = id.parse().unwrap();
    assert_eq!(p.status_when_done(id).await, "SUCCESS: arg x\n\nhello me");

    // fwasm's own door keeps its order (output, then stdout) and wording; a failure's stdout
    // follows its reason.
    let response = p
        .http
        .post(format!("{}/f/c/demo", p.invoke))
        .header("x-fwasm-stdout", "include")
        .body("fail")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let id: u64 = response.headers()["x-fwasm-call-id"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        response.text().await.unwrap(),
        "c/demo failed with code 3: main returned 3\nfailing as asked\n"
    );
    let failed = p.http.post(format!("{}/f/c/demo", p.invoke)).body("fail");
    let failed = failed.send().await.unwrap().text().await.unwrap();
    assert_eq!(failed, "c/demo failed with code 3: main returned 3\n");
    let record = p.record(id).await;
    assert_eq!(&record.stdout[..], b"failing as asked\n");
    p.stop().await;
}

/// Uploads faasm_api.cpp under each role's name (see the source).
async fn with_faasm_api(p: &Platform, roles: &[&str]) {
    for role in roles {
        with(p, &format!("c/{role}"), "faasm_api.cpp").await;
    }
}

#[tokio::test]
async fn faasm_cpp_input_helpers_and_conf_flags() {
    let p = up().await;
    with_faasm_api(&p, &["faasm_api"]).await;
    // Faasm's environment; getConfFlag: 0 for an unset variable, 1 only for
    // exactly "on", "1" or "true".
    let flags = "openblas=1 unset=0 always=10\nflags=11100000\n";
    assert_eq!(
        p.call("c/faasm_api", "7").await,
        (200, format!("string=7 int=7\n{flags}"))
    );
    assert_eq!(
        p.call("c/faasm_api", "-12 apples").await,
        (200, format!("string=-12 apples int=-12\n{flags}"))
    );
    // Empty input: both helpers give their defaults; not a number: getIntInput's default.
    assert_eq!(
        p.call("c/faasm_api", "").await,
        (200, format!("string=(none) int=-1\n{flags}"))
    );
    assert_eq!(
        p.call("c/faasm_api", "seven").await,
        (200, format!("string=seven int=-1\n{flags}"))
    );
    p.stop().await;
}

#[tokio::test]
async fn faasm_await_call_gives_the_chained_calls_return_code() {
    let p = up().await;
    with_faasm_api(&p, &["faasm_api_await", "faasm_api_rc"]).await;
    // faasmAwaitCallOutput gives a failed callee's failure message, which carries its output.
    let expect = |input: &str, named: u32, named_output: &str| {
        let ptr_output = format!("c/faasm_api_await failed with code 42: fails saw {input}");
        format!(
            "ptr=42 ptr_output={ptr_output} named={named} named_output={named_output} unknown=7"
        )
    };
    assert_eq!(
        p.call("c/faasm_api_await", "7").await,
        (
            200,
            expect("7", 7, "c/faasm_api_rc failed with code 7: returning 7")
        )
    );
    // A callee that succeeds gives 0 (and its output); one whose main returns -1, 255.
    assert_eq!(
        p.call("c/faasm_api_await", "0").await,
        (200, expect("0", 0, "returning 0"))
    );
    assert_eq!(
        p.call("c/faasm_api_await", "-1").await,
        (
            200,
            expect(
                "-1",
                255,
                "c/faasm_api_rc failed with code 255: returning -1"
            )
        )
    );
    // The callee on its own fails with its code too.
    assert_eq!(
        p.call("c/faasm_api_rc", "9").await,
        (
            500,
            "c/faasm_api_rc failed with code 9: returning 9\n".into()
        )
    );
    p.stop().await;
}

#[tokio::test]
async fn faasm_state_locks_are_taken_released_and_shared_by_readers() {
    let p = up().await;
    with_faasm_api(&p, &["faasm_api_locks", "faasm_api_count"]).await;
    assert_eq!(
        p.call("c/faasm_api_locks", "x").await,
        (
            200,
            "local=local:x shared_local=local:x global=global:x shared_global=global:x \
             both=global:x"
                .into()
        )
    );
    assert_eq!(
        p.get_state("c/faasm_api_locks").await,
        (200, "global:x".into())
    );
    // Again: every lock the first call took was released when it returned.
    assert_eq!(
        p.call("c/faasm_api_locks", "y").await,
        (
            200,
            "local=local:y shared_local=local:y global=global:y shared_global=global:y \
             both=global:y"
                .into()
        )
    );
    // The local write lock keeps concurrent read-modify-writes from losing increments.
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (http, url) = (p.http.clone(), format!("{}/f/c/faasm_api_count", p.invoke));
            tokio::spawn(async move {
                let reply = http.post(url).send().await.unwrap();
                reply.text().await.unwrap()
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for call in calls {
        let body = call.await.unwrap();
        seen.insert(body.parse::<u64>().unwrap_or_else(|_| panic!("{body}")));
    }
    assert_eq!(seen, (1..=20).collect());
    p.stop().await;
}

#[tokio::test]
async fn c_and_cpp_initialisations_run_once_and_every_call_starts_from_them() {
    let p = up().await;
    with(&p, "c/init", "init.c").await;
    with(&p, "c/zygote_check", "zygote_check.cpp").await;
    for _ in 0..4 {
        assert_eq!(
            p.call("c/init", "").await,
            (200, "calls=1 square=900".into())
        );
        assert_eq!(
            p.call("c/zygote_check", "").await,
            (200, "zygote ok".into())
        );
    }
    p.stop().await;
}

#[tokio::test]
async fn a_cpp_zygotes_4_mib_table_is_mapped_under_every_call_as_it_left_it() {
    const MAPPED: &str = "fwasm_snapshots_mapped_total";
    let p = up().await;
    let mapped = || async {
        let (status, body) = p.get(format!("{}/metrics", p.invoke)).await;
        assert_eq!(status, 200);
        let text = String::from_utf8(body.to_vec()).unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(MAPPED)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let before = mapped().await;
    with(&p, "c/zygote_table", "zygote_table.cpp").await;
    for (input, entry) in [
        ("", 12345u32),
        ("7", 7),
        ("12345", 12345),
        ("1048575", 1048575),
    ] {
        let expected = format!("table[{entry}]={}", entry.wrapping_mul(2654435761));
        assert_eq!(
            p.call("c/zygote_table", input).await,
            (200, expected),
            "input {input:?}"
        );
    }
    // The metric is the process's, shared with other tests: counts only grow.
    assert!(
        mapped().await >= before + 1.0,
        "the snapshot was not mapped"
    );
    p.stop().await;
}

#[test]
fn a_zygote_that_fails_fails_the_build_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("functions-c/zygote_fails.c");
    let options = build_options(source, dir.path());
    let refused = format!("{:#}", fwasm::build::build(&options).unwrap_err());
    let why = "module failed in its initialisation, which runs before its first call: \
               _faasm_zygote returned 3";
    assert!(refused.contains(why), "{refused}");
}

#[tokio::test]
async fn a_source_that_defines_main_is_a_faasm_function_whatever_it_includes() {
    let p = up().await;
    let mut client = p.grpc_client().await;
    let upload = UploadRequest {
        user: "c".into(),
        function: "noop".into(),
        wasm: c_guest("noop.c").into(),
        settings: None,
        python: false,
    };
    let uploaded = client.upload(upload).await.unwrap().into_inner();
    assert_eq!(uploaded.abi, "Faasm C API (on fwasm v1)");
    assert_eq!(p.call("c/noop", "").await, (200, String::new()));
    p.stop().await;
}

#[test]
fn a_source_with_both_entry_points_is_refused_saying_which_defines_which() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("both.c");
    let both = "#include <fwasm.h>\nint main(void) { return 0; }\n\
                FWASM_HANDLER(req, res) { (void)req; (void)res; }\n";
    std::fs::write(&source, both).unwrap();
    let options = build_options(source, dir.path());
    let refused = format!("{:#}", fwasm::build::build(&options).unwrap_err());
    assert!(
        refused.contains("both.c defines main (Faasm's API)")
            && refused.contains("defines fwasm_handle_request (fwasm's)")
            && refused.contains("--api"),
        "{refused}"
    );
    // Told which, it builds.
    let options = fwasm::build::BuildOptions {
        api: Some(fwasm::build::Api::Fwasm),
        ..options
    };
    let built = fwasm::build::build(&options).unwrap();
    assert_eq!(built.api, fwasm::build::Api::Fwasm);
}

#[tokio::test]
async fn faasms_helper_library_builds_and_works() {
    let p = up().await;
    with(&p, "c/helpers", "helpers.cpp").await;
    share_file(&p, "/data/helpers.txt", "shared text").await;
    let response = with_stdout(&p, "c/helpers").await;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("helpers ok"), "{body}");
    // printArray, and compareArrays showing where two arrays differ.
    assert!(body.contains("[1, 2, 3]\n"), "{body}");
    assert!(
        body.contains("Arrays differ at 2: [1, 2, 3] != [1, 2, 4]"),
        "{body}"
    );

    // FAASM_PROF_START/END print their time when built with WASM_PROF=1.
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("prof.c");
    let timed = "#include <faasm/faasm.h>\n#include <faasm/time.h>\n\
                 int main(void) { FAASM_PROF_START(whole) FAASM_PROF_END(whole) return 0; }\n";
    std::fs::write(&source, timed).unwrap();
    let options = fwasm::build::BuildOptions {
        cflags: vec!["-DWASM_PROF=1".into()],
        ..build_options(source, dir.path())
    };
    let built = fwasm::build::build(&options).unwrap();
    p.upload("c/prof", std::fs::read(built.output).unwrap())
        .await;
    let response = with_stdout(&p, "c/prof").await;
    let body = response.text().await.unwrap();
    assert!(body.starts_with("TIME: whole "), "{body}");
    p.stop().await;
}

#[tokio::test]
async fn clock_anonymous_mmap_and_long_double_printf_work_as_faasms_toolchain_gives_them() {
    let p = up().await;
    with(&p, "c/environment", "environment.c").await;
    assert_eq!(p.call("c/environment", "").await, (200, "0.333333".into()));
    p.stop().await;
}

#[test]
fn an_unsupported_feature_fails_the_build_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, feature) in [
        (
            "threads.c",
            "#include <pthread.h>\nint main(void) { return 0; }\n",
            "fwasm functions cannot use threads (pthread.h)",
        ),
        (
            "dlopen.c",
            "#include <dlfcn.h>\nint main(void) { return 0; }\n",
            "fwasm functions cannot use dynamic loading (dlfcn.h, dlopen)",
        ),
        (
            "openmp.c",
            "#include <omp.h>\nint main(void) { return 0; }\n",
            "fwasm functions cannot use OpenMP (omp.h)",
        ),
        (
            "throws.cpp",
            "int main() { throw 1; }\n",
            "built without C++ exceptions",
        ),
        (
            "thread.cpp",
            "#include <thread>\nint main() { std::thread t([] {}); t.join(); }\n",
            "fwasm functions cannot use threads (std::thread",
        ),
        // A header WASI lacks is missing, not the build machine's glibc one.
        (
            "epoll.c",
            "#include <sys/epoll.h>\nint main(void) { return 0; }\n",
            "'sys/epoll.h' file not found",
        ),
    ] {
        let source = dir.path().join(name);
        std::fs::write(&source, text).unwrap();
        let options = build_options(source, dir.path());
        let refused = format!("{:#}", fwasm::build::build(&options).unwrap_err());
        assert!(refused.contains(feature), "{name}: {refused}");
        assert!(
            !refused.contains("bits/"),
            "{name}: the build machine's headers: {refused}"
        );
    }
}

#[tokio::test]
async fn a_faasm_calls_cmdline_is_its_mains_argv() {
    let p = up().await;
    with(&p, "c/argv", "argv.c").await;
    let (status, body) = p
        .post_message(r#"{"user": "c", "function": "argv", "cmdline": "-n 3 input.txt"}"#)
        .await;
    assert_eq!((status, body.as_str()), (200, "-n 3 input.txt (argv)\n"));
    p.stop().await;
}

/// integration/functions-c/`source` built as Faasm's toolchain builds functions: plain clang
/// and WASI libc, nothing of sdk-c.
fn faasm_toolchain_guest(source: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("functions-c")
        .join(source);
    let output = dir.path().join("function.wasm");
    let clang = fwasm::build::find_clang(None).expect("scripts/test installs clang");
    let built = std::process::Command::new(clang)
        .args(["--target=wasm32-wasi", "-O2", "-o"])
        .arg(&output)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "clang {source}: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    std::fs::read(output).unwrap()
}

#[tokio::test]
async fn a_binary_of_faasms_toolchain_connects_with_faasms_socket_calls() {
    let port = crate::outbound::tcp_echo_server().await;
    let p = crate::support::up_with(fwasm_executor::ExecutorConfig {
        allow_outbound: vec!["127.0.0.1:*".parse().unwrap()],
        ..crate::support::test_executor_config()
    })
    .await;
    let wasm = faasm_toolchain_guest("faasm_toolchain.c");
    let hosts = [format!("127.0.0.1:{port}")];
    crate::outbound::upload_allowed(&p, "demo/toolchain", wasm, &hosts).await;
    assert_eq!(
        p.call("demo/toolchain", format!("net:{port}:over env.connect"))
            .await,
        (200, "net: over env.connect".into())
    );
    // As on Faasm, a refused connect answers -1 and the call goes on.
    let other = port.wrapping_add(1).max(1);
    assert_eq!(
        p.call("demo/toolchain", format!("net:{other}:hi")).await,
        (200, "socket 4 connect -1".into())
    );
    assert_eq!(
        p.call("demo/toolchain", "listen").await,
        (200, "bind -1 listen -1".into())
    );
    p.stop().await;
}

#[tokio::test]
async fn a_binary_of_faasms_toolchain_runs_on_its_raw_host_interface() {
    let p = up().await;
    let wasm = faasm_toolchain_guest("faasm_toolchain.c");
    let mut client = p.grpc_client().await;
    let upload = UploadRequest {
        user: "demo".into(),
        function: "toolchain".into(),
        wasm: wasm.into(),
        settings: Some(fwasm_proto::pb::FunctionSettings {
            env: [("MY_FLAG".to_string(), "on".to_string())].into(),
            ..Default::default()
        }),
        python: false,
    };
    let uploaded = client.upload(upload).await.unwrap().into_inner();
    assert_eq!(uploaded.abi, "Faasm host interface");
    let call = async |input: &str| {
        let (status, body, _) = p.call_with_id("demo/toolchain", input).await;
        (status, body)
    };
    assert_eq!(call("echo:hello").await, (200, "hello".into()));
    assert_eq!(
        call("chain").await,
        (200, "square=49 rc=0 named=named rc=0 unknown=1".into())
    );
    // A refusal that comes back to a parked import fails the call, as Faasm raises.
    let (status, body) = call("chain_unknown").await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.starts_with("demo/toolchain failed: ") && body.contains("nothing"),
        "{body}"
    );
    assert_eq!(call("state").await, (200, "jello 5 5 j abcd".into()));
    assert_eq!(call("memory").await, (200, "xy 1".into()));
    // ALWAYS_ON, PYTHON_PRELOAD (off), a flag the function's settings turn on, ALWAYS_OFF.
    assert_eq!(call("conf").await, (200, "1010".into()));
    // Its zygote ran once; every call starts from what it left.
    for _ in 0..3 {
        assert_eq!(call("zygote").await, (200, "6".into()));
    }
    // Faasm's environment beneath the function's settings.
    assert_eq!(call("env").await, (200, "0 1 on".into()));
    // Faasm's doors: stdout, then Faasm's wording for a non-zero return.
    let message = r#"{"user": "demo", "function": "toolchain", "input_data": "fail"}"#;
    assert_eq!(
        p.post_message(message).await,
        (
            500,
            "failing with 5\n\nCall failed (return value=5)\n".into()
        )
    );
    let message =
        r#"{"user": "demo", "function": "toolchain", "input_data": "args", "cmdline": "a b"}"#;
    assert_eq!(p.post_message(message).await, (200, "a;b;\n".into()));
    p.stop().await;
}

#[tokio::test]
async fn faasms_pi_demo_and_its_raw_interface_headers_build_and_run() {
    let p = up().await;
    with(&p, "c/pi", "pi.cpp").await;
    let (status, body, _) = p.call_with_id("c/pi", "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("pi ok 3.1"), "{body}");
    // host_interface.h, migrate.h and shared_mem.h: a migration point returns at once (the
    // function is never migrated), the macros act on the one thread.
    with(&p, "c/host_interface", "host_interface.c").await;
    let (status, body, _) = p.call_with_id("c/host_interface", "raw").await;
    assert_eq!((status, body.as_str()), (200, "raw 3 1"));
    p.stop().await;
}

#[tokio::test]
async fn a_faasm_function_has_faasms_4_mib_stack() {
    let p = up().await;
    with(&p, "c/stack", "stack.c").await;
    // 1 MiB of 0, 1, 2, 3, ... summed: 1.5 per byte.
    for _ in 0..2 {
        let (status, body, _) = p.call_with_id("c/stack", "").await;
        assert_eq!((status, body.as_str()), (200, "1572864"));
    }
    p.stop().await;
}
