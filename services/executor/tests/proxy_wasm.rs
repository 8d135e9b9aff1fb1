//! proxy-wasm guests at the executor: the request through headers and body callbacks, the
//! reply from the response body buffer or a local response, Layotto's state and service
//! calls parking the call, and every misbehaving callback a failed call with its reason,
//! after which the executor keeps serving.

mod support;

use fwasm_executor::Limits;
use fwasm_proto::api::StateApi;
use fwasm_proto::pb::{Call, CallResult, CallStatus, FailureKind, Header, SetStateRequest};

use support::*;

/// A Layotto-style guest (hand-declared imports, `malloc`, marker 0.2.0) whose headers
/// callback runs `headers` and body callback runs `body`; by default it copies `:path` to
/// the response header `x-path` and the request body to the response body.
fn proxy_guest(headers: &str, body: &str) -> String {
    let headers = if headers.is_empty() {
        r#"(drop (call $get_header (i32.const 0) (i32.const 100) (i32.const 5) (i32.const 200) (i32.const 204)))
           (drop (call $add_header (i32.const 2) (i32.const 120) (i32.const 6) (i32.load (i32.const 200)) (i32.load (i32.const 204))))
           (i32.const 0)"#
    } else {
        headers
    };
    let body = if body.is_empty() {
        r#"(call $check (call $get_buffer (i32.const 0) (i32.const 0) (local.get $size) (i32.const 208) (i32.const 212)))
           (call $check (call $set_buffer (i32.const 1) (i32.const 0) (i32.const 0) (i32.load (i32.const 208)) (i32.load (i32.const 212))))
           (i32.const 0)"#
    } else {
        body
    };
    format!(
        r#"(module
            (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
            (import "env" "proxy_set_buffer_bytes" (func $set_buffer (param i32 i32 i32 i32 i32) (result i32)))
            (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
            (import "env" "proxy_add_header_map_value" (func $add_header (param i32 i32 i32 i32 i32) (result i32)))
            (import "env" "proxy_send_local_response" (func $local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
            (import "env" "proxy_get_state" (func $get_state (param i32 i32 i32 i32 i32 i32) (result i32)))
            (import "env" "proxy_invoke_service" (func $invoke (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
            (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (global $heap (mut i32) (i32.const 16384))
            (data (i32.const 100) ":path")
            (data (i32.const 120) "x-path")
            (data (i32.const 140) "redis")
            (data (i32.const 150) "book1")
            (data (i32.const 160) "callee")
            (data (i32.const 170) "broken")
            (data (i32.const 300) "\01\00\00\00\03\00\00\00\02\00\00\00x-a\00ok\00")
            (data (i32.const 340) "teapot")
            (data (i32.const 360) "status not OK")
            (func (export "proxy_abi_version_0_2_0"))
            (func (export "_start"))
            (func (export "malloc") (param $n i32) (result i32) (local $p i32)
                (local.set $p (global.get $heap))
                (global.set $heap (i32.add (global.get $heap) (local.get $n)))
                (local.get $p))
            (func (export "proxy_on_context_create") (param i32 i32))
            ;; Traps (as the SDKs' wrappers panic) on a status other than OK.
            (func $check (param $status i32)
                (if (local.get $status) (then
                    (drop (call $log (i32.const 5) (i32.const 360) (i32.const 13)))
                    unreachable)))
            (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
                {headers})
            (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
                {body}))"#
    )
}

async fn call(h: &Harness, function: &str, wat: &str, input: &str, query: &str) -> CallResult {
    let module_hash = h.add_function(function, wat).await;
    h.place_and_execute(Call {
        user: "u".into(),
        function: function.into(),
        method: "POST".into(),
        path: format!("/f/u/{function}"),
        query: query.into(),
        headers: vec![Header {
            name: "host".into(),
            value: "example.test".into(),
        }],
        input: input.to_string().into(),
        module_hash,
        ..Call::default()
    })
    .await
}

fn header<'a>(result: &'a CallResult, name: &str) -> Option<&'a str> {
    result
        .headers
        .iter()
        .find(|h| h.name == name)
        .map(|h| h.value.as_str())
}

#[tokio::test]
async fn the_request_goes_through_the_callbacks_and_the_response_buffer_is_the_reply() {
    let h = Harness::new(Limits::default()).await;
    let result = call(&h, "echo", &proxy_guest("", ""), "hello, proxy", "a=1").await;
    assert_eq!(result.status(), CallStatus::Success, "{result:?}");
    assert_eq!(
        (result.http_status, &result.output[..]),
        (200, &b"hello, proxy"[..])
    );
    assert_eq!(header(&result, "x-path"), Some("/f/u/echo?a=1"));
    // Without a body, the body callback gets the query string, as in Layotto.
    let result = call(&h, "echo", &proxy_guest("", ""), "", "name=book1").await;
    assert_eq!(&result.output[..], b"name=book1", "{result:?}");
}

#[tokio::test]
async fn a_local_response_is_the_reply_with_its_status_and_headers() {
    let h = Harness::new(Limits::default()).await;
    let send = r#"(call $check (call $local (i32.const 418) (i32.const 0) (i32.const 0)
                      (i32.const 340) (i32.const 6) (i32.const 300) (i32.const 21) (i32.const -1)))
                  (i32.const 1)"#;
    let result = call(&h, "teapot", &proxy_guest(send, "unreachable"), "x", "").await;
    assert_eq!(result.status(), CallStatus::Success, "{result:?}");
    assert_eq!(
        (result.http_status, &result.output[..]),
        (418, &b"teapot"[..])
    );
    assert_eq!(header(&result, "x-a"), Some("ok"));
}

#[tokio::test]
async fn misbehaving_callbacks_fail_the_call_with_a_reason_and_the_executor_keeps_serving() {
    let h = Harness::new(Limits {
        max_fuel: 50_000_000,
        ..Limits::default()
    })
    .await;
    let trap = call(&h, "trap", &proxy_guest("", "unreachable"), "x", "").await;
    assert_failed(&trap, FailureKind::Trap, "u/trap trapped");
    let pause = call(&h, "pause", &proxy_guest("", "(i32.const 1)"), "x", "").await;
    assert_failed(
        &pause,
        FailureKind::Trap,
        "u/pause paused the request in proxy_on_request_body and never answered",
    );
    // Paused headers with a body to come are fine (as in Envoy): the body callback answers.
    let later = call(&h, "later", &proxy_guest("(i32.const 1)", ""), "body", "").await;
    assert_eq!(&later.output[..], b"body", "{later:?}");
    let no_buffer = r#"(call $check (call $set_buffer (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1)))
                       (i32.const 0)"#;
    let result = call(&h, "nobuffer", &proxy_guest("", no_buffer), "x", "").await;
    assert_failed(
        &result,
        FailureKind::Trap,
        "u/nobuffer failed: proxy_set_buffer_bytes: there is no buffer 3 to write",
    );
    // Reading a buffer that does not exist is NOT_FOUND (1), which the SDKs take as "none".
    let missing = r#"(if (i32.ne (call $get_buffer (i32.const 5) (i32.const 0) (i32.const 10) (i32.const 208) (i32.const 212)) (i32.const 1))
                        (then unreachable))
                     (i32.const 0)"#;
    let result = call(&h, "missing", &proxy_guest("", missing), "x", "").await;
    assert_eq!(result.status(), CallStatus::Success, "{result:?}");
    let wild = r#"(call $check (call $get_buffer (i32.const 0) (i32.const 0) (i32.const 10) (i32.const -16) (i32.const 212)))
                  (i32.const 0)"#;
    let result = call(&h, "wild", &proxy_guest("", wild), "x", "").await;
    assert_failed(
        &result,
        FailureKind::Trap,
        "u/wild failed: proxy_get_buffer_bytes: the result pointer lies outside the guest's memory",
    );
    let spin = call(
        &h,
        "spin",
        &proxy_guest("(loop (br 0)) (i32.const 0)", ""),
        "x",
        "",
    )
    .await;
    assert_failed(&spin, FailureKind::CpuLimit, "used up its CPU budget");
    let result = call(&h, "echo", &proxy_guest("", ""), "still here", "").await;
    assert_eq!(&result.output[..], b"still here", "{result:?}");
}

#[tokio::test]
async fn layotto_state_and_service_calls_park_and_reach_the_users_own_state_and_functions() {
    let h = Harness::new(Limits::default()).await;
    h.state
        .set_state(SetStateRequest {
            user: "u".into(),
            key: "book1".into(),
            value: "100".into(),
        })
        .await
        .unwrap();
    let read_state = r#"(call $check (call $get_state (i32.const 140) (i32.const 5) (i32.const 150) (i32.const 5) (i32.const 208) (i32.const 212)))
                        (call $check (call $set_buffer (i32.const 1) (i32.const 0) (i32.const 0) (i32.load (i32.const 208)) (i32.load (i32.const 212))))
                        (i32.const 0)"#;
    h.add_function("callee", &proxy_guest("", read_state)).await;
    let invoke = r#"(call $check (call $invoke (i32.const 160) (i32.const 6) (i32.const 0) (i32.const 0)
                        (i32.const 150) (i32.const 5) (i32.const 208) (i32.const 212)))
                    (call $check (call $set_buffer (i32.const 1) (i32.const 0) (i32.const 0) (i32.load (i32.const 208)) (i32.load (i32.const 212))))
                    (i32.const 0)"#;
    let result = call(&h, "caller", &proxy_guest("", invoke), "ignored", "").await;
    assert_eq!(result.status(), CallStatus::Success, "{result:?}");
    assert_eq!(&result.output[..], b"100");
    // A failing callee is INTERNAL_FAILURE (10) to the caller, as in Layotto.
    h.add_function("broken", &proxy_guest("", "unreachable"))
        .await;
    let status_back = r#"(i32.store (i32.const 400) (call $invoke (i32.const 170) (i32.const 6) (i32.const 0) (i32.const 0)
                            (i32.const 150) (i32.const 5) (i32.const 208) (i32.const 212)))
                         (i32.store8 (i32.const 400) (i32.add (i32.const 48) (i32.load8_u (i32.const 400))))
                         (call $check (call $set_buffer (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 400) (i32.const 1)))
                         (i32.const 0)"#;
    let result = call(&h, "caller2", &proxy_guest("", status_back), "x", "").await;
    // 48 + 10 = ':'.
    assert_eq!(&result.output[..], b":", "{result:?}");
    assert_eq!(h.executor.parked_calls(), 0);
}
