//! Each kind of bad input gets a precise error, and the next good call still succeeds.

use crate::support::{Platform, SLOW, guest, up};

/// The platform still serves good calls.
async fn still_serving(p: &Platform) {
    assert_eq!(
        p.call("demo/echo", "still here").await,
        (200, "still here".into())
    );
}

async fn assert_upload_rejected(p: &Platform, name: &str, wasm: Vec<u8>, message: &str) {
    let response = p.put(name, wasm).await;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(message), "{body:?} lacks {message:?}");
    let (missing, _) = p.get(format!("{}/f/{name}", p.upload)).await;
    assert_eq!(missing, 404, "a rejected module is not stored");
    still_serving(p).await;
}

const V1_MODULE: &str = r#"(module
    (memory (export "memory") 1)
    (func (export "fwasm_abi_v1"))
    (func (export "fwasm_alloc") (param i32) (result i32) i32.const 1024)
    (func (export "fwasm_handle") (param i32 i32) (result i64) i64.const 0))"#;

#[tokio::test]
async fn malformed_wasm_is_rejected_at_upload() {
    let p = up().await;
    assert_upload_rejected(
        &p,
        "carol/text",
        b"hello".to_vec(),
        "carol/text was not uploaded",
    )
    .await;
    assert_upload_rejected(
        &p,
        "carol/text",
        b"hello".to_vec(),
        "does not start with the \\0asm magic bytes",
    )
    .await;
    let mut truncated = guest("echo");
    truncated.truncate(truncated.len() / 2);
    assert_upload_rejected(&p, "carol/cut", truncated, "not a valid WebAssembly module").await;
}

#[tokio::test]
async fn a_missing_export_is_named_at_upload() {
    let p = up().await;
    let wasm = wat::parse_str(V1_MODULE.replace("(export \"fwasm_handle\")", "")).unwrap();
    assert_upload_rejected(
        &p,
        "carol/noexport",
        wasm,
        "module is missing the export `fwasm_handle` ((i32, i32) -> i64)",
    )
    .await;
    let wasm = wat::parse_str(V1_MODULE.replace("(export \"fwasm_abi_v1\")", "")).unwrap();
    assert_upload_rejected(
        &p,
        "carol/nomarker",
        wasm,
        "export `fwasm_abi_v1` (function-wasm v1) is missing",
    )
    .await;
}

#[tokio::test]
async fn an_initialisation_that_fails_is_named_at_upload() {
    let p = up().await;
    let with_init = |init: &str| {
        let init = format!("(func (export \"fwasm_init\") {init}) (memory");
        wat::parse_str(V1_MODULE.replace("(memory", &init)).unwrap()
    };
    assert_upload_rejected(
        &p,
        "carol/badinit",
        with_init("unreachable"),
        "module failed in its initialisation, which runs before its first call: fwasm_init \
         failed: wasm `unreachable` instruction executed",
    )
    .await;
    let wrong_type = V1_MODULE.replace(
        "(memory",
        "(func (export \"fwasm_init\") (param i32)) (memory",
    );
    assert_upload_rejected(
        &p,
        "carol/badinit",
        wat::parse_str(wrong_type).unwrap(),
        "export `fwasm_init` has the wrong type: expected () -> ()",
    )
    .await;
    assert_eq!(p.put("carol/goodinit", with_init("")).await.status(), 200);
}

#[tokio::test]
async fn an_unknown_import_is_named_at_upload() {
    let p = up().await;
    let wasm = wat::parse_str(V1_MODULE.replace(
        "(memory",
        "(import \"wasi_snapshot_preview1\" \"sock_open\" (func (param i32) (result i32))) (memory",
    ))
    .unwrap();
    assert_upload_rejected(
        &p,
        "carol/imports",
        wasm,
        "module imports `wasi_snapshot_preview1.sock_open`, which fwasm does not provide",
    )
    .await;
}

#[tokio::test]
async fn a_panicking_guest_fails_with_its_panic_message() {
    let p = up().await;
    p.upload("carol/panic", guest("testkit")).await;
    let (status, body) = p.call("carol/panic", "at the disco").await;
    assert_eq!(status, 500);
    assert!(
        body.starts_with("carol/panic failed: panicked at "),
        "{body}"
    );
    assert!(body.contains("boom: at the disco"), "{body}");
    still_serving(&p).await;
}

#[tokio::test]
async fn a_looping_guest_is_stopped_by_its_time_limit() {
    let p = crate::support::up_with(crate::support::short_time_limit()).await;
    p.upload("carol/spin", guest("testkit")).await;
    let (status, body) = p.call("carol/spin", "").await;
    assert_eq!(
        (status, body.as_str()),
        (500, "carol/spin timed out after 1s\n")
    );
    still_serving(&p).await;
}

#[tokio::test]
async fn a_guest_hoarding_memory_is_stopped_at_its_memory_limit() {
    let p = up().await;
    p.upload("carol/hog", guest("testkit")).await;
    let (status, body) = p.call("carol/hog", "").await;
    assert_eq!(status, 500);
    assert!(
        body.starts_with("carol/hog ran out of memory: its limit is 16 MiB"),
        "{body}"
    );
    still_serving(&p).await;
}

#[tokio::test]
async fn output_over_the_limit_fails_the_call() {
    let p = up().await;
    p.upload("carol/big", guest("testkit")).await;
    assert_eq!(p.call("carol/big", "1000").await.1.len(), 1000);
    let (status, body) = p.call("carol/big", (2 << 20).to_string()).await;
    assert_eq!(
        (status, body.as_str()),
        (
            500,
            "carol/big returned 2097152 bytes of output, over the limit of 1048576 bytes\n"
        )
    );
    still_serving(&p).await;
}

#[tokio::test]
async fn a_guest_returning_an_out_of_bounds_pointer_fails_the_call() {
    let p = up().await;
    // fwasm_handle returns (0xFFFF0000 << 32) | 10.
    let wasm =
        wat::parse_str(V1_MODULE.replace("i64.const 0", "i64.const -281474976710646")).unwrap();
    p.upload("carol/oob", wasm).await;
    let (status, body) = p.call("carol/oob", "").await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        "carol/oob returned a response at 4294901760 of 10 bytes, outside its 65536-byte memory\n"
    );
    still_serving(&p).await;
}

#[tokio::test]
async fn a_huge_body_is_refused_with_413() {
    let p = up().await;
    let (status, body) = p.call("demo/echo", vec![b'x'; (1 << 20) + 1]).await;
    assert_eq!(
        (status, body.as_str()),
        (413, "input is over the limit of 1048576 bytes\n")
    );
    let response = p.put("carol/huge", vec![0u8; (8 << 20) + 1]).await;
    assert_eq!(response.status(), 413);
    still_serving(&p).await;
}

#[tokio::test]
async fn unknown_users_and_functions_are_404() {
    let p = up().await;
    assert_eq!(
        p.call("nobody/echo", "").await,
        (
            404,
            "function nobody/echo does not exist; upload it first\n".into()
        )
    );
    assert_eq!(
        p.call("demo/nothing", "").await,
        (
            404,
            "function demo/nothing does not exist; upload it first\n".into()
        )
    );
    let (status, body) = p
        .post_message(r#"{"user": "demo", "function": "nothing"}"#)
        .await;
    assert_eq!(
        (status, body.as_str()),
        (
            404,
            "function demo/nothing does not exist; upload it first\n"
        )
    );
    let (missing, _) = p.get(format!("{}/f/demo/nothing", p.upload)).await;
    assert_eq!(missing, 404);
    still_serving(&p).await;
}

#[tokio::test]
async fn invalid_names_are_rejected() {
    let p = up().await;
    let (status, body) = p.call("demo/bad%20name", "").await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "invalid function name \"bad name\": contains ' '; use letters, digits, '_', '-' or '.'\n"
        )
    );
    let (status, body) = p.call(".hidden/echo", "").await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "invalid user name \".hidden\": may not start with '.'\n"
        )
    );
    let response = p.put("demo/bad%20name", guest("echo")).await;
    assert_eq!(response.status(), 400);
    still_serving(&p).await;
}

#[tokio::test]
async fn faasm_json_messages_get_faasms_replies() {
    let p = up().await;
    for (body, status, reply) in [
        ("", 400, "Empty request\n"),
        (r#"{"function": "echo"}"#, 400, "Empty user\n"),
        (r#"{"user": "demo"}"#, 400, "Empty function\n"),
    ] {
        assert_eq!(p.post_message(body).await, (status, reply.to_string()));
    }
    let (status, body) = p.post_message("{oops").await;
    assert_eq!(status, 400);
    assert!(body.starts_with("Invalid JSON message: "), "{body}");
    still_serving(&p).await;
}

#[tokio::test]
async fn unknown_endpoints_say_so() {
    let p = up().await;
    let (status, body) = p.get(format!("{}/nowhere", p.invoke)).await;
    assert_eq!(
        (status, &body[..]),
        (404, &b"no such endpoint: GET /nowhere\n"[..])
    );
}

#[tokio::test]
async fn a_full_platform_answers_429_and_serves_again_once_there_is_room() {
    use crate::support::{mesh_with, test_executor_config};
    let full = fwasm_executor::ExecutorConfig {
        max_concurrent_calls: 1,
        ..test_executor_config()
    };
    let p = mesh_with(1, full).await;
    p.upload_testkit("t", &["slow", "upper"]).await;
    // A background call takes the only place: once the executor has admitted it (RUNNING is
    // said already while it is on its way there), a call from outside is refused.
    let id = p.call_async("t/slow", SLOW).await;
    let mut refusal = None;
    while refusal.is_none() {
        let (status, body) = p.call("t/upper", "x").await;
        match status {
            429 => refusal = Some(body),
            200 => assert_eq!(body, "X"),
            _ => panic!("{status} {body}"),
        }
        let (_, line) = p.status(id).await;
        assert_eq!(line, "RUNNING", "t/slow ended before any call was refused");
    }
    let refusal = refusal.unwrap();
    assert!(refusal.contains("retry shortly"), "{refusal}");
    assert_eq!(p.status_when_done(id).await, "SUCCESS: done");
    assert_eq!(p.call("t/upper", "x").await, (200, "X".into()));
    p.stop().await;
}
