//! WASI commands as functions (a plain `main` in C or Rust, no SDK), and ABI detection at
//! upload: every ABI named in the reply, a module of none refused with how to build for each.

use fwasm_proto::pb::{CallResult, CallStatus, FailureKind, InvokeRequest, UploadRequest};

use crate::c_guests::c_guest;
use crate::support::{Platform, each_platform, guest, up};
use fwasm_integration::wasi_command;

/// Uploads over HTTP with settings in the query; returns the ABI the reply names.
async fn upload_with_query(
    p: &Platform,
    user_function: &str,
    query: &str,
    wasm: Vec<u8>,
) -> String {
    let response = p
        .http
        .put(format!("{}/f/{user_function}?{query}", p.upload))
        .body(wasm)
        .send()
        .await
        .unwrap();
    let abi = response
        .headers()
        .get("x-fwasm-abi")
        .map(|v| v.to_str().unwrap().to_string());
    let (status, body) = (response.status().as_u16(), response.text().await.unwrap());
    assert_eq!((status, body.as_str()), (200, "Function upload complete\n"));
    abi.expect("the upload reply names the ABI")
}

async fn run(p: &Platform, function: &str, input: &str, cmdline: &str) -> CallResult {
    p.grpc_client()
        .await
        .invoke(InvokeRequest {
            user: "cmd".into(),
            function: function.into(),
            input: input.to_string().into(),
            headers: vec![],
            cmdline: cmdline.into(),
            ..InvokeRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
}

fn output(result: &CallResult) -> &str {
    assert_eq!(result.status(), CallStatus::Success, "{result:?}");
    std::str::from_utf8(&result.output).unwrap()
}

#[tokio::test]
async fn wasi_commands_in_c_and_rust_run_as_functions() {
    for (mode, p) in each_platform().await {
        for lang in ["c", "rust"] {
            let name = format!("echo-{lang}");
            let abi = upload_with_query(
                &p,
                &format!("cmd/{name}"),
                "env=GREETING=hello%20there&env=EMPTY=",
                wasi_command(lang),
            )
            .await;
            assert_eq!(abi, "WASI command", "{mode} {lang}");

            // The body on stdin, stdout as the reply (over HTTP as any function), stderr kept.
            let (status, body) = p.call(&format!("cmd/{name}"), "some input").await;
            assert_eq!(
                (status, body.as_str()),
                (200, "some input"),
                "{mode} {lang}"
            );
            let big = "0123456789abcdef".repeat(8 << 10);
            let result = run(&p, &name, &big, "").await;
            assert!(
                output(&result) == big,
                "{mode} {lang}: 128 KiB echoed whole"
            );
            assert_eq!(
                &result.stdout[..],
                b"echoed 131072 bytes\n",
                "{mode} {lang}"
            );

            // argv: the function's name, then the command line.
            let result = run(&p, &name, "", "args one  two").await;
            assert_eq!(
                output(&result),
                format!("{name}\nargs\none\ntwo\n"),
                "{mode} {lang}"
            );

            // The environment is the function's settings.
            let result = run(&p, &name, "", "env GREETING").await;
            assert_eq!(output(&result), "hello there\n", "{mode} {lang}");
            let result = run(&p, &name, "", "env EMPTY").await;
            assert_eq!(output(&result), "\n", "{mode} {lang}");
            let result = run(&p, &name, "", "env PATH").await;
            assert_eq!(
                output(&result),
                "(unset)\n",
                "{mode} {lang}: nothing from the host"
            );

            // A non-zero exit fails the call with that code; what it printed stays readable.
            let result = run(&p, &name, "", "exit 3").await;
            assert_eq!(
                (
                    result.status(),
                    result.failure(),
                    result.return_code,
                    result.error.as_str(),
                    &result.stdout[..]
                ),
                (
                    CallStatus::Failed,
                    FailureKind::Exit,
                    3,
                    format!("cmd/{name} exited with code 3").as_str(),
                    &b"exiting with 3\n"[..]
                ),
                "{mode} {lang}"
            );
            let result = run(&p, &name, "", "exit 0").await;
            assert_eq!(output(&result), "", "{mode} {lang}");
        }

        // Faasm's JSON message carries the command line too.
        let response = p
            .http
            .post(format!("{}/", p.invoke))
            .body(r#"{"user": "cmd", "function": "echo-c", "cmdline": "args x"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.text().await.unwrap(),
            "echo-c\nargs\nx\n\n",
            "{mode}"
        );

        // A re-upload replaces the settings: without any, the variable is gone.
        let abi = upload_with_query(&p, "cmd/echo-c", "", wasi_command("c")).await;
        assert_eq!(abi, "WASI command");
        let result = run(&p, "echo-c", "", "env GREETING").await;
        assert_eq!(output(&result), "(unset)\n", "{mode}");
    }
}

#[tokio::test]
async fn the_upload_names_each_abi_and_refuses_a_module_of_none() {
    let p = up().await;
    for (function, wasm, abi) in [
        ("v1", guest("testkit"), "fwasm v1"),
        ("faasm", c_guest("printf.c"), "Faasm C API (on fwasm v1)"),
        ("command", wasi_command("c"), "WASI command"),
    ] {
        assert_eq!(
            upload_with_query(&p, &format!("d/{function}"), "", wasm).await,
            abi
        );
    }
    // Over gRPC and through `fwasm upload`, too.
    let reply = p
        .grpc_client()
        .await
        .upload(UploadRequest {
            user: "d".into(),
            function: "command".into(),
            wasm: wasi_command("rust").into(),
            settings: None,
            python: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.abi, "WASI command");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("echo.wasm");
    std::fs::write(&file, wasi_command("c")).unwrap();
    let mut out = Vec::new();
    fwasm::client::upload_with_settings(&p.grpc, "d/cli", &file, None, &mut out)
        .await
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("Uploaded d/cli: ABI WASI command, sha256 "),
        "{out}"
    );

    // A reactor with a `main` but no entry any ABI knows: refused, saying how to build.
    let none = wat::parse_str(
        r#"(module (memory (export "memory") 1) (func (export "main") (result i32) i32.const 0))"#,
    )
    .unwrap();
    let response = p.put("d/none", none).await;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert_eq!(status, 400, "{body}");
    for part in [
        "d/none was not uploaded: module speaks no ABI fwasm runs",
        "fwasm v1 (exports `fwasm_abi_v1`; Rust with the fwasm-sdk crate, C or C++ with `fwasm build`)",
        "`fwasm build --api faasm`",
        "WASI commands",
        "cargo build --target wasm32-wasip1",
    ] {
        assert!(body.contains(part), "{body:?} lacks {part:?}");
    }
    // A command that imports more than WASI is told what commands may import.
    let greedy = wat::parse_str(
        r#"(module (import "env" "extra" (func)) (memory (export "memory") 1) (func (export "_start")))"#,
    )
    .unwrap();
    let response = p.put("d/greedy", greedy).await;
    assert_eq!(response.status().as_u16(), 400);
    assert!(
        response.text().await.unwrap().contains(
            "module imports `env.extra`, which fwasm does not provide (a WASI command may import only WASI preview1, `wasi_snapshot_preview1`, and the sidecar's `fwasm_sidecar`)"
        )
    );
}

#[tokio::test]
async fn bad_settings_are_refused_at_upload() {
    let p = up().await;
    for (query, message) in [
        ("env=NOEQUALS", "env=NOEQUALS is not KEY=VALUE"),
        ("env==x", "invalid environment variable name \"\""),
        ("memory=5", "unknown upload setting \"memory\""),
    ] {
        let response = p
            .http
            .put(format!("{}/f/cmd/bad?{query}", p.upload))
            .body(wasi_command("c"))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(
            status == 400 && body.contains(message),
            "{query}: {status} {body}"
        );
    }
}
