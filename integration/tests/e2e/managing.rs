//! Managing functions: a user's functions are listed (HTTP as JSON, gRPC, the CLI) with what
//! their upload found, and deleted through each door, after which their calls are refused and
//! what they stored leaves the user's usage; in `fwasm up` and in the mesh.

use fwasm_proto::pb::{FunctionRef, ListFunctionsRequest, QuotaRef, UploadRequest};
use serde_json::Value;

use crate::support::{each_platform, guest};

#[tokio::test]
async fn functions_are_listed_and_deleted_through_every_door() {
    let wasm = guest("testkit");
    for (mode, p) in each_platform().await {
        // Over HTTP with settings, over gRPC, and a Python script.
        let put = p
            .http
            .put(format!(
                "{}/f/alice/upper?env=GREETING=hi&allow_host=example.com:443",
                p.upload
            ))
            .body(wasm.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 200, "{mode}");
        let mut grpc = p.grpc_client().await;
        let hash = grpc
            .upload(UploadRequest {
                user: "alice".into(),
                function: "inspect".into(),
                wasm: wasm.clone().into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .module_hash;
        let script = p
            .http
            .put(format!("{}/p/alice/three", p.upload))
            .body("def faasm_main():\n    return 0\n")
            .send()
            .await
            .unwrap();
        assert_eq!(script.status(), 200, "{mode}");
        p.upload("bob/other", wasm.clone()).await;

        let listed = p
            .http
            .get(format!("{}/f/alice", p.upload))
            .send()
            .await
            .unwrap();
        assert_eq!(listed.headers()["content-type"], "application/json");
        let listed: Value = serde_json::from_str(&listed.text().await.unwrap()).unwrap();
        let names: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["inspect", "three", "upper"], "{mode}");
        let one = &listed[2];
        assert_eq!(one["size"], wasm.len() as u64, "{mode}");
        assert_eq!(one["abi"], "fwasm v1", "{mode}");
        assert_eq!(one["hash"], hash.as_str(), "{mode}");
        let uploaded = one["uploaded_at"].as_str().unwrap();
        assert!(
            uploaded.starts_with("20") && uploaded.ends_with('Z'),
            "{uploaded}"
        );
        assert_eq!(one["settings"]["env"]["GREETING"], "hi", "{mode}");
        assert_eq!(
            one["settings"]["allow_hosts"][0], "example.com:443",
            "{mode}"
        );
        assert_eq!(listed[1]["abi"], "Python 3.11", "{mode}");

        let over_grpc = grpc
            .list_functions(ListFunctionsRequest {
                user: "alice".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(over_grpc.functions.len(), 3, "{mode}");
        assert_eq!(over_grpc.functions[0].function, "inspect");
        assert_eq!(over_grpc.functions[0].abi, "fwasm v1");
        let mut table = Vec::new();
        fwasm::client::list_functions(&p.grpc, "alice", &mut table)
            .await
            .unwrap();
        let table = String::from_utf8(table).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("NAME "), "{table}");
        assert!(
            lines[3].starts_with("upper ") && lines[3].contains("fwasm v1"),
            "{table}"
        );
        assert!(
            lines[3].contains("env GREETING=hi, allow example.com:443"),
            "{table}"
        );
        assert!(lines[3].contains(&hash[..12]), "{table}");

        let subscribed = p
            .http
            .put(format!("{}/sub/alice/news/upper", p.upload))
            .send()
            .await
            .unwrap();
        assert_eq!(subscribed.status(), 200, "{mode}");
        let (_, subscriptions) = p.get(format!("{}/sub/alice", p.upload)).await;
        assert_eq!(
            String::from_utf8_lossy(&subscriptions),
            "news upper\n",
            "{mode}"
        );
        // Deleted over HTTP: its calls are refused at once, and a second delete finds nothing.
        assert_eq!(
            p.call("alice/upper", "x").await,
            (200, "X".into()),
            "{mode}"
        );
        let deleted = p
            .http
            .delete(format!("{}/f/alice/upper", p.upload))
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), 200, "{mode}");
        assert_eq!(deleted.text().await.unwrap(), "alice/upper deleted\n");
        let (status, body) = p.call("alice/upper", "x").await;
        assert_eq!(status, 404, "{mode}");
        assert!(
            body.contains("alice/upper does not exist"),
            "{mode}: {body}"
        );
        let again = p
            .http
            .delete(format!("{}/f/alice/upper", p.upload))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 404, "{mode}");
        // Its subscriptions went with it.
        let (_, subscriptions) = p.get(format!("{}/sub/alice", p.upload)).await;
        assert!(
            !String::from_utf8_lossy(&subscriptions).contains("upper"),
            "{mode}: {subscriptions:?}"
        );
        // Over gRPC, and with the CLI.
        grpc.delete_function(FunctionRef {
            user: "alice".into(),
            function: "inspect".into(),
        })
        .await
        .unwrap();
        let mut out = Vec::new();
        fwasm::client::delete_function(&p.grpc, "alice/three", &mut out)
            .await
            .unwrap();
        assert_eq!(out, b"Deleted alice/three\n");
        let err = fwasm::client::delete_function(&p.grpc, "alice/three", &mut Vec::new())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "rm failed: function alice/three does not exist; upload it first"
        );
        let mut out = Vec::new();
        fwasm::client::list_functions(&p.grpc, "alice", &mut out)
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "alice has no functions; upload one with fwasm upload alice/NAME FILE\n"
        );
        let usage = grpc
            .get_usage(QuotaRef {
                user: "alice".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((usage.functions, usage.stored_bytes), (0, 0), "{mode}");
        // Another user's function is untouched.
        assert!(
            p.get(format!("{}/f/bob/other", p.upload)).await.0 == 200,
            "{mode}"
        );
        p.stop().await;
    }
}

#[tokio::test]
async fn a_functions_own_limits_apply_to_its_calls_within_the_platforms() {
    // The platform's: 30 s and 16 MiB a call.
    let p = crate::support::up().await;
    let put = |target: &str, query: &str| {
        p.http
            .put(format!("{}/f/{target}?{query}", p.upload))
            .body(guest("testkit"))
            .send()
    };
    // Its own time limit, over HTTP: the looping guest stops after 1 s, not 30.
    assert_eq!(
        put("carol/spin", "limit=timeout=1").await.unwrap().status(),
        200
    );
    assert_eq!(
        p.call("carol/spin", "").await,
        (500, "carol/spin timed out after 1s\n".into())
    );
    // Its own memory limit, over gRPC: the hoarding guest stops at 4 MiB.
    let mut grpc = p.grpc_client().await;
    let hog = |memory_mib: u32| UploadRequest {
        user: "carol".into(),
        function: "hog".into(),
        wasm: guest("testkit").into(),
        settings: Some(fwasm_proto::pb::FunctionSettings {
            memory_mib,
            ..Default::default()
        }),
        ..Default::default()
    };
    grpc.upload(hog(4)).await.unwrap();
    let (status, body) = p.call("carol/hog", "").await;
    assert_eq!(status, 500);
    assert!(
        body.starts_with("carol/hog ran out of memory: its limit is 4 MiB"),
        "{body}"
    );
    // Never more than the platform's.
    grpc.upload(hog(1000)).await.unwrap();
    let body = p.call("carol/hog", "").await.1;
    assert!(
        body.starts_with("carol/hog ran out of memory: its limit is 16 MiB"),
        "{body}"
    );
    // Listed with the function.
    let mut table = Vec::new();
    fwasm::client::list_functions(&p.grpc, "carol", &mut table)
        .await
        .unwrap();
    let table = String::from_utf8(table).unwrap();
    assert!(table.contains("memory 1000 MiB"), "{table}");
    assert!(table.contains("timeout 1 s"), "{table}");
    // Limits that are not limits are refused, saying what they may be.
    for (query, why) in [
        ("limit=timeout=0", "needs a whole number above 0"),
        ("limit=speed=3", "names no limit"),
        ("limit=memory=5000", "over the most a wasm32 memory holds"),
    ] {
        let refused = put("carol/bad", query).await.unwrap();
        assert_eq!(refused.status(), 400, "{query}");
        let text = refused.text().await.unwrap();
        assert!(text.contains(why), "{query}: {text}");
    }
    p.stop().await;
}

#[tokio::test]
async fn state_keys_are_listed_and_deleted_through_every_door() {
    use fwasm_proto::pb::{ListKeysRequest, StateKey};
    for (mode, p) in each_platform().await {
        for key in ["orders/1", "orders/2", "total"] {
            assert_eq!(
                p.put_state(&format!("alice/{key}"), "v").await.0,
                200,
                "{mode}"
            );
        }
        assert_eq!(p.put_state("bob/orders/9", "v").await.0, 200, "{mode}");
        let listed = async |query: &str| -> Value {
            let (status, body) = p.get(format!("{}/s/alice{query}", p.upload)).await;
            assert_eq!(status, 200, "{mode}");
            serde_json::from_slice(&body).unwrap()
        };
        assert_eq!(
            listed("").await,
            serde_json::json!({"keys": ["orders/1", "orders/2", "total"], "truncated": false})
        );
        assert_eq!(
            listed("?prefix=orders/&limit=1").await,
            serde_json::json!({"keys": ["orders/1"], "truncated": true})
        );
        assert_eq!(
            listed("?prefix=orders/&after=orders/1").await,
            serde_json::json!({"keys": ["orders/2"], "truncated": false})
        );
        let mut grpc = p.grpc_client().await;
        let over_grpc = grpc
            .list_keys(ListKeysRequest {
                user: "alice".into(),
                prefix: "orders/".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(over_grpc.keys, ["orders/1", "orders/2"], "{mode}");
        let mut out = Vec::new();
        fwasm::client::state_list(&p.grpc, "alice", "", &mut out)
            .await
            .unwrap();
        assert_eq!(out, b"orders/1\norders/2\ntotal\n", "{mode}");

        // Deleted over HTTP, gRPC and the CLI.
        let deleted = p
            .http
            .delete(format!("{}/s/alice/orders/1", p.upload))
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), 200, "{mode}");
        assert_eq!(p.get_state("alice/orders/1").await.0, 404, "{mode}");
        grpc.delete_state(StateKey {
            user: "alice".into(),
            key: "orders/2".into(),
        })
        .await
        .unwrap();
        let mut out = Vec::new();
        fwasm::client::state_rm(&p.grpc, "alice/total", &mut out)
            .await
            .unwrap();
        assert_eq!(out, b"Deleted alice's \"total\"\n");
        assert_eq!(
            listed("").await,
            serde_json::json!({"keys": [], "truncated": false})
        );
        // Another user's keys are untouched.
        assert_eq!(
            p.get_state("bob/orders/9").await,
            (200, "v".into()),
            "{mode}"
        );
        p.stop().await;
    }
}

#[tokio::test]
async fn shared_files_are_listed_and_deleted_through_every_door() {
    use fwasm_proto::pb::{FileRef, ListFilesRequest};
    let p = crate::support::up().await;
    // Tokens are off: the caller acts as an admin, whose files are the common ones.
    for (path, body) in [
        ("data/a.txt", "aa"),
        ("data/b.txt", "bbb"),
        ("top.txt", "t"),
    ] {
        let put = p
            .http
            .put(format!("{}/file", p.upload))
            .header("FilePath", path)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 200);
    }
    let (status, body) = p.get(format!("{}/files?prefix=data/", p.upload)).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        serde_json::json!({
            "files": [{"path": "data/a.txt", "size": 2}, {"path": "data/b.txt", "size": 3}],
            "truncated": false
        })
    );
    let (_, body) = p.get(format!("{}/files?limit=1", p.upload)).await;
    let page: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(page["truncated"], true);
    let mut grpc = p.grpc_client().await;
    let over_grpc = grpc
        .list_files(ListFilesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(over_grpc.files.len(), 3);
    let mut out = Vec::new();
    fwasm::client::files_list(&p.grpc, "", "", &mut out)
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "         2  data/a.txt\n         3  data/b.txt\n         1  top.txt\n"
    );
    // Deleted over HTTP, gRPC and the CLI.
    let deleted = p
        .http
        .delete(format!("{}/file", p.upload))
        .header("FilePath", "data/a.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    grpc.delete_file(FileRef {
        path: "data/b.txt".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut out = Vec::new();
    fwasm::client::files_rm(&p.grpc, "", "top.txt", &mut out)
        .await
        .unwrap();
    assert_eq!(out, b"Deleted the common file \"top.txt\"\n");
    let err = fwasm::client::files_rm(&p.grpc, "", "top.txt", &mut Vec::new())
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("files rm failed: "), "{err}");
    let (_, body) = p.get(format!("{}/files", p.upload)).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        serde_json::json!({"files": [], "truncated": false})
    );
    p.stop().await;
}

#[tokio::test]
async fn a_memory_limit_below_what_initialisation_left_says_so() {
    let p = crate::support::up().await;
    let put = p
        .http
        .put(format!("{}/f/carol/init?limit=memory=1", p.upload))
        .body(guest("initialised"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let (status, body) = p.call("carol/init", "").await;
    assert_eq!(status, 500);
    assert!(
        body.contains("its initialisation leaves") && body.contains("over its limit of 1 MiB"),
        "{body}"
    );
    p.stop().await;
}
