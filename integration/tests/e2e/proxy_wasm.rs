//! proxy-wasm functions through the whole platform: filters built with the proxy-wasm Rust SDK
//! from crates.io (a local response with its status and headers, the response body buffer, a
//! WASI build), and Layotto's FaaS quickstart with two functions shaped like its demo.

use fwasm_integration::proxy_wasm_guest;
use fwasm_proto::pb::{CallStatus, InvokeRequest};

use crate::support::{Platform, each_platform};

/// Uploads over HTTP; returns the reply's ABI header, proxy id header and body.
async fn upload(
    p: &Platform,
    user_function: &str,
    query: &str,
    wasm: Vec<u8>,
) -> (String, Option<String>, String) {
    let response = p
        .http
        .put(format!("{}/f/{user_function}{query}", p.upload))
        .body(wasm)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (abi, id) = (header("x-fwasm-abi").unwrap(), header("x-fwasm-proxy-id"));
    (abi, id, response.text().await.unwrap())
}

#[tokio::test]
async fn filters_built_with_the_proxy_wasm_sdk_answer_http_callers() {
    for (mode, p) in each_platform().await {
        let (abi, id, body) = upload(&p, "px/greet", "", proxy_wasm_guest("http_filter")).await;
        assert_eq!(
            (abi.as_str(), id, body.as_str()),
            ("proxy-wasm", None, "Function upload complete\n")
        );
        // Headers and body read by the filter; its local response's status and headers reach
        // the caller.
        let response = p
            .http
            .post(format!("{}/f/px/greet?lang=en", p.invoke))
            .header("x-name", "ada")
            .body("how are you?")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201, "{mode}");
        assert_eq!(response.headers()["x-filter"], "http-filter");
        let id = response.headers()["x-fwasm-call-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(
            response.text().await.unwrap(),
            "hello ada (POST /f/px/greet?lang=en): how are you?"
        );
        // What the filter logged through the SDK's `log` crate (proxy_log) is the call's log.
        let (_, logs) = p.get(format!("{}/logs/{id}", p.invoke)).await;
        assert_eq!(
            String::from_utf8_lossy(&logs),
            "INFO POST /f/px/greet?lang=en from ada\n",
            "{mode}"
        );
        let response = p
            .http
            .post(format!("{}/f/px/greet/deny", p.invoke))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 403, "{mode}");
        assert_eq!(response.headers()["x-denied-by"], "http-filter");
        assert_eq!(response.text().await.unwrap(), "denied\n");

        // The response body buffer and the headers the filter set make the reply.
        upload(&p, "px/echo", "", proxy_wasm_guest("echo_filter")).await;
        let response = p
            .http
            .post(format!("{}/f/px/echo", p.invoke))
            .body("echo me")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{mode}");
        assert_eq!(response.headers()["x-echo-bytes"], "7");
        assert_eq!(response.text().await.unwrap(), "echo me");
        p.stop().await;
    }
}

#[tokio::test]
async fn a_filter_built_for_wasi_gets_its_allocator_called_and_wasi_served() {
    let wasm = proxy_wasm_guest("wasi_filter");
    let contains = |needle: &[u8]| wasm.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"wasi_snapshot_preview1") && contains(b"proxy_on_memory_allocate"));
    for (mode, p) in each_platform().await {
        let (abi, ..) = upload(&p, "px/wasi", "?env=MODE=test", wasm.clone()).await;
        assert_eq!(abi, "proxy-wasm");
        let result = p
            .grpc_client()
            .await
            .invoke(InvokeRequest {
                user: "px".into(),
                function: "wasi".into(),
                ..InvokeRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(result.status(), CallStatus::Success, "{mode}: {result:?}");
        assert_eq!(
            std::str::from_utf8(&result.output).unwrap(),
            "method=POST after_2020=true mode_is_test=true"
        );
        let console = String::from_utf8_lossy(&result.stdout);
        assert!(
            console.contains("wasi-filter: request headers arrived"),
            "{console}"
        );
        assert!(
            console.contains("wasi-filter: end of stream true"),
            "{console}"
        );
        p.stop().await;
    }
}

/// Layotto's FaaS quickstart, on fwasm: function 1 asks function 2 (by
/// `proxy_invoke_service`), which reads the stock with `proxy_get_state`.
#[tokio::test]
async fn layottos_quickstart_runs_unchanged() {
    for (mode, p) in each_platform().await {
        for (name, wasm) in [("id_1", "layotto_function1"), ("id_2", "layotto_function2")] {
            let (abi, id, body) =
                upload(&p, &format!("demo/{name}"), "", proxy_wasm_guest(wasm)).await;
            assert_eq!(abi, "proxy-wasm");
            assert_eq!(
                id.as_deref(),
                Some(name),
                "{mode}: the id proxy_get_id sets"
            );
            assert_eq!(
                body,
                format!("Function upload complete\nproxy-wasm id: {name}\n")
            );
        }
        assert_eq!(p.put_state("demo/book1", "100").await.0, 200);
        let (status, body) = p.call("demo/id_1", "name=book1").await;
        assert_eq!(
            (status, body.as_str()),
            (200, "There are 100 inventories for book1."),
            "{mode}"
        );
        // A request without a body hands its query over, as Layotto does.
        let response = p
            .http
            .post(format!("{}/f/demo/id_1?name=book1", p.invoke))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.text().await.unwrap(),
            "There are 100 inventories for book1."
        );
        // A book nobody stocked: the state is empty, as Layotto's state API answers.
        let (_, body) = p.call("demo/id_1", "name=book2").await;
        assert_eq!(body, "There are  inventories for book2.", "{mode}");
        p.stop().await;
    }
}
