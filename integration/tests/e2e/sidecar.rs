//! Layotto's and Dapr's runtime APIs on the public gRPC port, driven with clients generated
//! from fwasm's copies of their protos, on the embedded store and on Redis: state with etags
//! (the same state `/s/` and functions see), bulk reads, transactions, the sequencer, locks
//! (the users' global locks), Layotto's file API on the shared files, and invoking functions
//! as app methods. Publishing is in `pubsub.rs`.

use fwasm_proto::dapr::proto::common::v1 as dapr_common;
use fwasm_proto::dapr::proto::runtime::v1 as dapr;
use fwasm_proto::dapr::proto::runtime::v1::dapr_client::DaprClient;
use fwasm_proto::layotto;
use fwasm_proto::layotto::runtime_client::RuntimeClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::support::{Platform, each_backend, each_platform};

async fn clients(p: &Platform) -> (DaprClient<Channel>, RuntimeClient<Channel>) {
    let channel = Channel::from_shared(p.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    (
        DaprClient::new(channel.clone()),
        RuntimeClient::new(channel),
    )
}

fn dapr_item(key: &str, value: &str, etag: Option<&str>) -> dapr_common::StateItem {
    dapr_common::StateItem {
        key: key.into(),
        value: value.to_string().into(),
        etag: etag.map(|value| dapr_common::Etag {
            value: value.into(),
        }),
        ..Default::default()
    }
}

fn layotto_item(key: &str, value: &str, etag: &str) -> layotto::StateItem {
    layotto::StateItem {
        key: key.into(),
        value: value.to_string().into(),
        etag: Some(layotto::Etag { value: etag.into() }),
        ..Default::default()
    }
}

async fn dapr_get(client: &mut DaprClient<Channel>, store: &str, key: &str) -> (String, String) {
    let request = dapr::GetStateRequest {
        store_name: store.into(),
        key: key.into(),
        ..Default::default()
    };
    let reply = client.get_state(request).await.unwrap().into_inner();
    (String::from_utf8(reply.data.to_vec()).unwrap(), reply.etag)
}

async fn dapr_save(
    client: &mut DaprClient<Channel>,
    store: &str,
    items: Vec<dapr_common::StateItem>,
) -> Result<(), tonic::Status> {
    let request = dapr::SaveStateRequest {
        store_name: store.into(),
        states: items,
    };
    client.save_state(request).await.map(drop)
}

fn assert_code<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code, says: &str) {
    let status = result.expect_err("the call should fail");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(status.message().contains(says), "{status:?} lacks {says:?}");
}

#[tokio::test]
async fn state_with_etags_is_one_state_for_dapr_layotto_and_fwasm() {
    for (backend, p) in each_backend().await {
        let (mut dapr, mut layotto) = clients(&p).await;
        dapr_save(&mut dapr, "alice", vec![dapr_item("k", "v1", None)])
            .await
            .unwrap();
        let (value, first) = dapr_get(&mut dapr, "alice", "k").await;
        assert_eq!(value, "v1", "{backend}");
        assert!(!first.is_empty(), "{backend}: a value has an etag");

        // A save with the current etag succeeds and changes it; the old one is stale.
        let save = vec![dapr_item("k", "v2", Some(&first))];
        dapr_save(&mut dapr, "alice", save).await.unwrap();
        let (value, second) = dapr_get(&mut dapr, "alice", "k").await;
        assert_eq!(value, "v2");
        assert_ne!(second, first);
        let stale = vec![dapr_item("k", "v3", Some(&first))];
        assert_code(
            dapr_save(&mut dapr, "alice", stale).await,
            Code::Aborted,
            "version",
        );
        let bad = vec![dapr_item("k", "v3", Some("not-an-etag"))];
        assert_code(
            dapr_save(&mut dapr, "alice", bad).await,
            Code::InvalidArgument,
            "etag",
        );

        // Layotto reads the same value and etag; its SDK's etag "0" means "none".
        let request = layotto::GetStateRequest {
            store_name: "alice".into(),
            key: "k".into(),
            ..Default::default()
        };
        let got = layotto.get_state(request).await.unwrap().into_inner();
        assert_eq!(
            (&got.data[..], got.etag.as_str()),
            (&b"v2"[..], second.as_str())
        );
        let request = layotto::SaveStateRequest {
            store_name: "alice".into(),
            states: vec![layotto_item("k", "from layotto", "0")],
        };
        layotto.save_state(request).await.unwrap();

        // fwasm's own door sees it, and its writes change the etag too.
        assert_eq!(
            p.get_state("alice/k").await,
            (200, "from layotto".to_string())
        );
        let (_, third) = dapr_get(&mut dapr, "alice", "k").await;
        p.put_state("alice/k", "from /s/").await;
        let (value, fourth) = dapr_get(&mut dapr, "alice", "k").await;
        assert_eq!(value, "from /s/");
        assert_ne!(
            fourth, third,
            "{backend}: every path's write changes the etag"
        );

        // Deletes check etags the same way; a deleted key reads empty, with no etag.
        let delete = |etag: &str| dapr::DeleteStateRequest {
            store_name: "alice".into(),
            key: "k".into(),
            etag: Some(dapr_common::Etag { value: etag.into() }),
            ..Default::default()
        };
        assert_code(
            dapr.delete_state(delete(&third)).await,
            Code::Aborted,
            "version",
        );
        dapr.delete_state(delete(&fourth)).await.unwrap();
        assert_eq!(
            dapr_get(&mut dapr, "alice", "k").await,
            (String::new(), String::new())
        );

        // Store names are fwasm users; keys are checked like fwasm's.
        let request = dapr::GetStateRequest {
            store_name: "no/such".into(),
            key: "k".into(),
            ..Default::default()
        };
        assert_code(
            dapr.get_state(request).await,
            Code::InvalidArgument,
            "no/such",
        );
        let empty_key = vec![dapr_item("", "v", None)];
        assert_code(
            dapr_save(&mut dapr, "alice", empty_key).await,
            Code::InvalidArgument,
            "empty",
        );
        p.stop().await;
    }
}

#[tokio::test]
async fn bulk_reads_and_transactions_apply_whole_or_not_at_all() {
    for (backend, p) in each_backend().await {
        let (mut dapr, mut layotto) = clients(&p).await;
        let items = vec![dapr_item("a", "1", None), dapr_item("b", "2", None)];
        dapr_save(&mut dapr, "bob", items).await.unwrap();
        let request = dapr::GetBulkStateRequest {
            store_name: "bob".into(),
            keys: vec!["a".into(), "b".into(), "missing".into(), String::new()],
            ..Default::default()
        };
        let items = dapr
            .get_bulk_state(request)
            .await
            .unwrap()
            .into_inner()
            .items;
        let seen: Vec<_> = items
            .iter()
            .map(|i| {
                (
                    i.key.as_str(),
                    &i.data[..],
                    i.etag.is_empty(),
                    i.error.is_empty(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("a", &b"1"[..], false, true),
                ("b", &b"2"[..], false, true),
                ("missing", &b""[..], true, true),
                ("", &b""[..], true, false),
            ],
            "{backend}"
        );

        // Layotto's transaction: upsert one, delete another, in one go.
        let (_, a_etag) = dapr_get(&mut dapr, "bob", "a").await;
        let op = |kind: &str, item: layotto::StateItem| layotto::TransactionalStateOperation {
            operation_type: kind.into(),
            request: Some(item),
        };
        let transaction = |operations| layotto::ExecuteStateTransactionRequest {
            store_name: "bob".into(),
            operations,
            ..Default::default()
        };
        let ops = vec![
            op("upsert", layotto_item("a", "10", &a_etag)),
            op("delete", layotto_item("b", "", "0")),
            op("upsert", layotto_item("c", "30", "0")),
        ];
        layotto
            .execute_state_transaction(transaction(ops))
            .await
            .unwrap();
        for (key, value) in [("a", "10"), ("b", ""), ("c", "30")] {
            assert_eq!(dapr_get(&mut dapr, "bob", key).await.0, value, "{backend}");
        }
        // A stale etag in the last op: nothing of it is applied.
        let ops = vec![
            op("upsert", layotto_item("a", "11", "0")),
            op("upsert", layotto_item("d", "40", "0")),
            op("delete", layotto_item("c", "", &a_etag)),
        ];
        assert_code(
            layotto.execute_state_transaction(transaction(ops)).await,
            Code::Aborted,
            "version",
        );
        for (key, value) in [("a", "10"), ("c", "30"), ("d", "")] {
            assert_eq!(dapr_get(&mut dapr, "bob", key).await.0, value, "{backend}");
        }
        let ops = vec![op("merge", layotto_item("a", "1", "0"))];
        assert_code(
            layotto.execute_state_transaction(transaction(ops)).await,
            Code::InvalidArgument,
            "operationType",
        );
        p.stop().await;
    }
}

#[tokio::test]
async fn sequences_count_from_one_per_user_and_key() {
    for (backend, p) in each_backend().await {
        let (_, mut layotto) = clients(&p).await;
        let next = |store: &str, key: &str| layotto::GetNextIdRequest {
            store_name: store.into(),
            key: key.into(),
            ..Default::default()
        };
        for expected in 1..=3 {
            let id = layotto.get_next_id(next("carol", "orders")).await.unwrap();
            assert_eq!(id.into_inner().next_id, expected, "{backend}");
        }
        let other = layotto
            .get_next_id(next("carol", "invoices"))
            .await
            .unwrap();
        assert_eq!(other.into_inner().next_id, 1);
        let other = layotto.get_next_id(next("dave", "orders")).await.unwrap();
        assert_eq!(other.into_inner().next_id, 1);
        assert_code(
            layotto.get_next_id(next("carol", "")).await,
            Code::InvalidArgument,
            "empty",
        );
        p.stop().await;
    }
}

#[tokio::test]
async fn functions_are_invoked_as_app_methods_from_both_apis() {
    for (mode, p) in each_platform().await {
        p.upload_testkit("t", &["upper", "inspect", "panic"]).await;
        let (mut dapr, mut layotto) = clients(&p).await;
        let data = |text: &str| {
            Some(prost_types::Any {
                type_url: String::new(),
                value: text.as_bytes().to_vec(),
            })
        };
        let request = dapr::InvokeServiceRequest {
            id: "t".into(),
            message: Some(dapr_common::InvokeRequest {
                method: "upper".into(),
                data: data("shout"),
                content_type: "text/plain".into(),
                http_extension: None,
            }),
        };
        let reply = dapr.invoke_service(request).await.unwrap().into_inner();
        assert_eq!(reply.data.unwrap().value, b"SHOUT", "{mode}");
        assert_eq!(reply.content_type, "text/plain");

        // The verb, query and a path after the function reach it.
        let request = layotto::InvokeServiceRequest {
            id: "t".into(),
            message: Some(layotto::CommonInvokeRequest {
                method: "inspect/orders/7".into(),
                data: data("body"),
                content_type: "application/json".into(),
                http_extension: Some(layotto::HttpExtension {
                    verb: layotto::http_extension::Verb::Put as i32,
                    querystring: "a=1".into(),
                }),
            }),
        };
        let reply = layotto.invoke_service(request).await.unwrap().into_inner();
        let text = String::from_utf8(reply.data.unwrap().value).unwrap();
        for line in [
            "method=PUT",
            "path=/f/t/inspect/orders/7",
            "query=a=1",
            "body=body",
        ] {
            assert!(text.contains(line), "{mode}: {line} not in {text}");
        }

        let call = |method: &str| dapr::InvokeServiceRequest {
            id: "t".into(),
            message: Some(dapr_common::InvokeRequest {
                method: method.into(),
                data: data("why"),
                ..Default::default()
            }),
        };
        assert_code(
            dapr.invoke_service(call("nothing")).await,
            Code::NotFound,
            "nothing",
        );
        assert_code(
            dapr.invoke_service(call("panic")).await,
            Code::Internal,
            "boom: why",
        );
        p.stop().await;
    }
}

#[tokio::test]
async fn bulk_deletes_and_daprs_transactions_apply_whole() {
    let p = crate::support::up().await;
    let (mut dapr, mut layotto) = clients(&p).await;
    let items = vec![dapr_item("x", "1", None), dapr_item("y", "2", None)];
    dapr_save(&mut dapr, "erin", items).await.unwrap();
    let (_, x_etag) = dapr_get(&mut dapr, "erin", "x").await;

    // Layotto reads in bulk, and deletes in bulk: a stale etag refuses the whole delete.
    let delete = |items| layotto::DeleteBulkStateRequest {
        store_name: "erin".into(),
        states: items,
    };
    let stale = vec![layotto_item("x", "", "0"), layotto_item("y", "", &x_etag)];
    assert_code(
        layotto.delete_bulk_state(delete(stale)).await,
        Code::Aborted,
        "version",
    );
    let read = layotto::GetBulkStateRequest {
        store_name: "erin".into(),
        keys: vec!["x".into(), "y".into()],
        ..Default::default()
    };
    let items = layotto
        .get_bulk_state(read.clone())
        .await
        .unwrap()
        .into_inner()
        .items;
    let values: Vec<_> = items.iter().map(|i| &i.data[..]).collect();
    assert_eq!(values, [&b"1"[..], &b"2"[..]]);
    let both = vec![layotto_item("x", "", &x_etag), layotto_item("y", "", "")];
    layotto.delete_bulk_state(delete(both)).await.unwrap();
    let items = layotto
        .get_bulk_state(read)
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(items.iter().all(|i| i.data.is_empty() && i.etag.is_empty()));

    // Dapr's transaction, and Layotto's single delete.
    let op = |kind: &str, key: &str, value: &str| dapr::TransactionalStateOperation {
        operation_type: kind.into(),
        request: Some(dapr_item(key, value, None)),
    };
    let transaction = dapr::ExecuteStateTransactionRequest {
        store_name: "erin".into(),
        operations: vec![op("upsert", "x", "10"), op("upsert", "z", "30")],
        ..Default::default()
    };
    dapr.execute_state_transaction(transaction).await.unwrap();
    assert_eq!(dapr_get(&mut dapr, "erin", "z").await.0, "30");
    let delete_one = layotto::DeleteStateRequest {
        store_name: "erin".into(),
        key: "z".into(),
        ..Default::default()
    };
    layotto.delete_state(delete_one).await.unwrap();
    assert_eq!(dapr_get(&mut dapr, "erin", "z").await.0, "");
    let bad_store = dapr::GetBulkStateRequest {
        store_name: "no such".into(),
        keys: vec!["x".into()],
        ..Default::default()
    };
    assert_code(
        dapr.get_bulk_state(bad_store).await,
        Code::InvalidArgument,
        "no such",
    );
    p.stop().await;
}

/// Calls a method by path with an empty message, as a client generated from the whole of a
/// sidecar's proto would.
async fn call_by_path(p: &Platform, path: &'static str) -> tonic::Status {
    let channel = Channel::from_shared(p.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    grpc.unary(tonic::Request::new(()), path, codec)
        .await
        .expect_err("fwasm does not serve it")
}

#[tokio::test]
async fn methods_fwasm_does_not_serve_yet_say_so_by_name() {
    let p = crate::support::up().await;
    let (mut dapr, mut layotto) = clients(&p).await;
    for path in [
        "/dapr.proto.runtime.v1.Dapr/GetSecret",
        "/spec.proto.runtime.v1.Runtime/GetConfiguration",
        "/spec.proto.runtime.v1.Runtime/GetFileMeta",
    ] {
        let status = call_by_path(&p, path).await;
        assert_eq!(status.code(), Code::Unimplemented, "{path}");
        assert!(status.message().contains(&path[1..]), "{path}: {status:?}");
    }
    let hello = layotto::SayHelloRequest {
        name: "you".into(),
        ..Default::default()
    };
    let reply = layotto.say_hello(hello).await.unwrap().into_inner();
    assert!(reply.hello.contains("you"), "{}", reply.hello);
    let metadata = dapr
        .get_metadata(dapr::GetMetadataRequest {})
        .await
        .unwrap();
    let metadata = metadata.into_inner();
    assert_eq!(metadata.id, "fwasm");
    let capabilities = &metadata.registered_components[0].capabilities;
    assert!(capabilities.iter().any(|c| c == "ETAG"), "{capabilities:?}");
    p.stop().await;
}

#[tokio::test]
async fn daprs_http_api_serves_health_invocation_and_state() {
    let p = crate::support::up().await;
    p.upload_testkit("t", &["inspect"]).await;
    let url = |path: &str| format!("{}/v1.0/{path}", p.invoke);
    for path in ["healthz", "healthz/outbound"] {
        let reply = p.http.get(url(path)).send().await.unwrap();
        assert_eq!(reply.status().as_u16(), 204, "{path}");
    }

    // Any verb; the function's own status, headers and body.
    let reply = p
        .http
        .put(url("invoke/t/method/inspect/a/b?q=1"))
        .header("x-test", "dapr")
        .header("dapr-api-token", "ignored")
        .body("in")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    assert_eq!(reply.headers()["x-from-guest"], "yes");
    let text = reply.text().await.unwrap();
    for line in [
        "method=PUT",
        "path=/f/t/inspect/a/b",
        "query=q=1",
        "x-test=dapr",
        "body=in",
    ] {
        assert!(text.contains(line), "{line} not in {text}");
    }
    let reply = p
        .http
        .post(url("invoke/t/method/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 404);

    // State: a JSON list to save; reads give the value's JSON and its ETag.
    let save = |body: &str| {
        p.http
            .post(url("state/frank"))
            .body(body.to_string())
            .send()
    };
    let reply = save(r#"[{"key": "k", "value": {"n": 1}}]"#).await.unwrap();
    assert_eq!(reply.status().as_u16(), 204);
    let reply = p.http.get(url("state/frank/k")).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    let etag = reply.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(reply.text().await.unwrap(), r#"{"n":1}"#);
    let reply = save(&format!(
        r#"[{{"key": "k", "value": "two", "etag": "{etag}"}}]"#
    ))
    .await
    .unwrap();
    assert_eq!(reply.status().as_u16(), 204);
    let stale = save(&format!(
        r#"[{{"key": "k", "value": 3, "etag": "{etag}"}}]"#
    ))
    .await
    .unwrap();
    assert_eq!(stale.status().as_u16(), 409);
    let body: serde_json::Value = serde_json::from_str(&stale.text().await.unwrap()).unwrap();
    assert_eq!(body["errorCode"], "ERR_STATE_SAVE");
    assert_eq!(save("not json").await.unwrap().status().as_u16(), 400);
    let reply = p
        .http
        .delete(url("state/frank/k"))
        .header("if-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 409, "a stale If-Match");
    let reply = p.http.delete(url("state/frank/k")).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 204);
    let reply = p.http.get(url("state/frank/k")).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 204, "a missing key");
    // Publishing with no subscriber is accepted (the event reaches no one); a topic that is
    // not a name is refused Dapr's way.
    let reply = p
        .http
        .post(url("publish/frank/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 204);
    let reply = p.http.post(url("publish/frank/a/b")).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 400);
    let body = reply.text().await.unwrap();
    assert!(body.contains("ERR_PUBSUB_PUBLISH_MESSAGE"), "{body}");
    p.stop().await;
}

#[tokio::test]
async fn a_functions_push_changes_the_etag_apps_see() {
    for (mode, p) in each_platform().await {
        p.upload_testkit("g", &["counter"]).await;
        let (mut dapr, _) = clients(&p).await;
        assert_eq!(
            p.call("g/counter", "").await,
            (200, "1".to_string()),
            "{mode}"
        );
        let (value, first) = dapr_get(&mut dapr, "g", "counter").await;
        assert_eq!(value, "1");
        // The function takes its global lock, pulls, adds one and pushes: a new version.
        assert_eq!(p.call("g/counter", "").await, (200, "2".to_string()));
        let (value, second) = dapr_get(&mut dapr, "g", "counter").await;
        assert_eq!(value, "2");
        assert_ne!(second, first, "{mode}");
        // So an app holding the etag it read before the push is told its copy is stale.
        let stale = vec![dapr_item("counter", "100", Some(&first))];
        assert_code(
            dapr_save(&mut dapr, "g", stale).await,
            Code::Aborted,
            "version",
        );
        let current = vec![dapr_item("counter", "100", Some(&second))];
        dapr_save(&mut dapr, "g", current).await.unwrap();
        assert_eq!(
            p.call("g/counter", "").await,
            (200, "101".to_string()),
            "{mode}"
        );
        p.stop().await;
    }
}

fn layotto_lock(store: &str, resource: &str, owner: &str, expire: i32) -> layotto::TryLockRequest {
    layotto::TryLockRequest {
        store_name: store.into(),
        resource_id: resource.into(),
        lock_owner: owner.into(),
        expire,
    }
}

fn dapr_lock(store: &str, resource: &str, owner: &str, expiry: i32) -> dapr::TryLockRequest {
    dapr::TryLockRequest {
        store_name: store.into(),
        resource_id: resource.into(),
        lock_owner: owner.into(),
        expiry_in_seconds: expiry,
    }
}

fn layotto_unlock(store: &str, resource: &str, owner: &str) -> layotto::UnlockRequest {
    layotto::UnlockRequest {
        store_name: store.into(),
        resource_id: resource.into(),
        lock_owner: owner.into(),
    }
}

#[tokio::test]
async fn locks_are_non_reentrant_expire_and_say_who_holds_them() {
    use dapr::unlock_response::Status as DaprUnlock;
    use layotto::unlock_response::Status as Unlock;
    for (backend, p) in each_backend().await {
        let (mut dapr, mut layotto) = clients(&p).await;
        let got = layotto.try_lock(layotto_lock("lu", "res", "one", 60)).await;
        assert!(got.unwrap().into_inner().success, "{backend}");
        let again = layotto.try_lock(layotto_lock("lu", "res", "one", 60)).await;
        assert!(
            !again.unwrap().into_inner().success,
            "{backend}: not reentrant"
        );
        // Dapr's and Layotto's names for one lock are one lock.
        let other = dapr
            .try_lock_alpha1(dapr_lock("lu", "res", "two", 60))
            .await;
        assert!(!other.unwrap().into_inner().success, "{backend}");
        let elsewhere = dapr
            .try_lock_alpha1(dapr_lock("lu2", "res", "two", 60))
            .await;
        assert!(
            elsewhere.unwrap().into_inner().success,
            "another user's lock"
        );

        let unlock = |owner| layotto_unlock("lu", "res", owner);
        let status = layotto.unlock(unlock("two")).await.unwrap().into_inner();
        assert_eq!(status.status(), Unlock::LockBelongToOthers, "{backend}");
        let status = layotto.unlock(unlock("one")).await.unwrap().into_inner();
        assert_eq!(status.status(), Unlock::Success, "{backend}");
        let status = layotto.unlock(unlock("one")).await.unwrap().into_inner();
        assert_eq!(status.status(), Unlock::LockUnexist, "{backend}");
        let dapr_unlock = dapr::UnlockRequest {
            store_name: "lu2".into(),
            resource_id: "res".into(),
            lock_owner: "two".into(),
        };
        let status = dapr.unlock_alpha1(dapr_unlock).await.unwrap().into_inner();
        assert_eq!(status.status(), DaprUnlock::Success, "{backend}");

        // A lock frees itself when it expires.
        let short = layotto
            .try_lock(layotto_lock("lu", "brief", "one", 1))
            .await;
        assert!(short.unwrap().into_inner().success);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let took = layotto
                .try_lock(layotto_lock("lu", "brief", "two", 60))
                .await;
            if took.unwrap().into_inner().success {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{backend}: never expired"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }

        for (bad, says) in [
            (layotto_lock("lu", "res", "one", 0), "positive"),
            (layotto_lock("lu", "res", "one", -5), "positive"),
            (layotto_lock("lu", "", "one", 10), "resource_id"),
            (layotto_lock("lu", "res", "", 10), "lock_owner"),
            (
                layotto_lock("lu", "res", &"o".repeat(201), 10),
                "over the limit of 200",
            ),
            (layotto_lock("not/a/user", "res", "one", 10), "user"),
        ] {
            assert_code(layotto.try_lock(bad).await, Code::InvalidArgument, says);
        }
        let bad = dapr_lock("lu", "res", "one", 0);
        assert_code(
            dapr.try_lock_alpha1(bad).await,
            Code::InvalidArgument,
            "positive",
        );
        let bad = layotto_unlock("lu", "", "one");
        assert_code(
            layotto.unlock(bad).await,
            Code::InvalidArgument,
            "resource_id",
        );
        p.stop().await;
    }
}

#[tokio::test]
async fn an_apps_lock_is_the_users_global_lock_that_functions_take() {
    use layotto::unlock_response::Status as Unlock;
    for (mode, p) in each_platform().await {
        p.upload_testkit("g", &["state"]).await;
        let (mut dapr, mut layotto) = clients(&p).await;
        let held = layotto
            .try_lock(layotto_lock("g", "counter", "app", 60))
            .await;
        assert!(held.unwrap().into_inner().success, "{mode}");
        // The function says it is about to take the global write lock on "counter", takes
        // it, then reads the value the app wrote while it held the lock.
        let script = "set waiting yes;push waiting;lock_global_write counter;pull counter;\
                      get counter;set counted yes;push counted";
        let id = p.call_async("g/state", script).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while p.get_state("g/waiting").await.0 != 200 {
            assert!(
                std::time::Instant::now() < deadline,
                "{mode}: never waiting"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        dapr_save(&mut dapr, "g", vec![dapr_item("counter", "7", None)])
            .await
            .unwrap();
        assert_eq!(p.status(id).await.1, "RUNNING", "{mode}");
        assert_eq!(
            p.get_state("g/counted").await.0,
            404,
            "{mode}: past the lock"
        );
        let unlocked = layotto.unlock(layotto_unlock("g", "counter", "app")).await;
        assert_eq!(unlocked.unwrap().into_inner().status(), Unlock::Success);
        assert_eq!(p.status_when_done(id).await, "SUCCESS: 7", "{mode}");
        // The function's hold ended with its call.
        let after = layotto
            .try_lock(layotto_lock("g", "counter", "app", 60))
            .await;
        assert!(after.unwrap().into_inner().success, "{mode}");
        p.stop().await;
    }
}

#[tokio::test]
async fn layottos_file_api_reads_and_writes_the_files_of_the_user_its_store_names() {
    for (backend, p) in each_backend().await {
        layottos_file_api_on(backend, p).await;
    }
}

async fn layottos_file_api_on(backend: &str, p: Platform) {
    use tokio_stream::StreamExt;
    let (_, mut layotto) = clients(&p).await;
    // A file put in chunks is one file.
    let big = "x".repeat(100_000);
    let chunks = [("fu", "docs/a.txt", "hello "), ("", "", "file")]
        .into_iter()
        .map(|(store, name, data)| layotto::PutFileRequest {
            store_name: store.into(),
            name: name.into(),
            data: data.to_string().into(),
            ..Default::default()
        });
    layotto.put_file(tokio_stream::iter(chunks)).await.unwrap();
    let put = |name: &str, data: &str| layotto::PutFileRequest {
        store_name: "fu".into(),
        name: name.into(),
        data: data.to_string().into(),
        ..Default::default()
    };
    let one = |name: &str, data: &str| tokio_stream::iter([put(name, data)]);
    layotto.put_file(one("docs/big.txt", &big)).await.unwrap();
    layotto.put_file(one("other/c.txt", "c")).await.unwrap();
    // They are fu's files: Faasm's `/file` (with no token, the common files) has none of them.
    let common = p
        .http
        .get(format!("{}/file", p.upload))
        .header("FilePath", "docs/a.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(common.status(), 404);

    let get = |name: &str| layotto::GetFileRequest {
        store_name: "fu".into(),
        name: name.into(),
        ..Default::default()
    };
    let mut stream = layotto
        .get_file(get("docs/big.txt"))
        .await
        .unwrap()
        .into_inner();
    let mut read = Vec::new();
    let mut messages = 0;
    while let Some(chunk) = stream.next().await {
        read.extend_from_slice(&chunk.unwrap().data);
        messages += 1;
    }
    assert_eq!(read, big.as_bytes());
    assert!(messages > 1, "a large file comes in chunks");

    let list_under = |name: &str, page_size, marker: &str| layotto::ListFileRequest {
        request: Some(layotto::FileRequest {
            store_name: "fu".into(),
            name: name.into(),
            ..Default::default()
        }),
        page_size,
        marker: marker.into(),
    };
    let list = |page_size, marker: &str| list_under("docs/", page_size, marker);
    for same in ["/docs/", "./docs/"] {
        let listed = layotto.list_file(list_under(same, 0, "")).await.unwrap();
        assert_eq!(listed.into_inner().files.len(), 2, "{same}");
    }
    let everything = layotto.list_file(list_under("/", 0, "")).await.unwrap();
    assert_eq!(everything.into_inner().files.len(), 3, "from the root");
    let all = layotto.list_file(list(0, "")).await.unwrap().into_inner();
    let names: Vec<_> = all
        .files
        .iter()
        .map(|f| (f.file_name.as_str(), f.size))
        .collect();
    assert_eq!(
        names,
        [("docs/a.txt", 10), ("docs/big.txt", 100_000)],
        "{backend}"
    );
    assert!(!all.is_truncated);
    let first = layotto.list_file(list(1, "")).await.unwrap().into_inner();
    assert!(
        first.is_truncated && first.marker == "docs/a.txt",
        "{first:?}"
    );
    let second = layotto
        .list_file(list(1, &first.marker))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.files[0].file_name, "docs/big.txt");
    assert!(!second.is_truncated);

    let del = |name: &str| layotto::DelFileRequest {
        request: Some(layotto::FileRequest {
            store_name: "fu".into(),
            name: name.into(),
            ..Default::default()
        }),
    };
    layotto.del_file(del("docs/a.txt")).await.unwrap();
    assert_code(
        layotto.del_file(del("docs/a.txt")).await,
        Code::NotFound,
        "no shared file",
    );
    let missing = layotto.get_file(get("docs/a.txt")).await;
    let missing = match missing {
        Ok(stream) => stream.into_inner().next().await.unwrap().map(drop),
        Err(status) => Err(status),
    };
    assert_code(missing, Code::NotFound, "no shared file");
    assert_code(
        layotto.get_file(get("../etc/passwd")).await.map(drop),
        Code::InvalidArgument,
        "path",
    );
    let nameless = layotto::GetFileRequest {
        store_name: "not/a/user".into(),
        ..get("docs/big.txt")
    };
    assert_code(
        layotto.get_file(nameless).await.map(drop),
        Code::InvalidArgument,
        "user",
    );
    assert_code(
        layotto.put_file(tokio_stream::iter(Vec::new())).await,
        Code::InvalidArgument,
        "no message",
    );
    p.stop().await;
}

/// Field 1 as bytes: where a GetStateRequest has its store_name, a string.
#[derive(Clone, PartialEq, prost::Message)]
struct NotUtf8 {
    #[prost(bytes = "vec", tag = "1")]
    value: Vec<u8>,
}

#[tokio::test]
async fn oversized_and_malformed_requests_get_precise_statuses_and_the_server_goes_on() {
    let p = crate::support::up().await;
    let (mut dapr, mut layotto) = clients(&p).await;
    let operation = |key: String| dapr::TransactionalStateOperation {
        operation_type: "upsert".into(),
        request: Some(dapr_item(&key, "v", None)),
    };
    let huge = dapr::ExecuteStateTransactionRequest {
        store_name: "olga".into(),
        operations: (0..1001).map(|i| operation(format!("k{i}"))).collect(),
        ..Default::default()
    };
    assert_code(
        dapr.execute_state_transaction(huge).await,
        Code::InvalidArgument,
        "over the limit of 1000",
    );
    let bulk = layotto::GetBulkStateRequest {
        store_name: "olga".into(),
        keys: (0..1001).map(|i| format!("k{i}")).collect(),
        ..Default::default()
    };
    assert_code(
        layotto.get_bulk_state(bulk).await,
        Code::InvalidArgument,
        "over the limit of 1000",
    );
    // Bytes that are not a GetStateRequest (its store_name not UTF-8): INTERNAL with the
    // decoder's reason, as gRPC's status code rules have it for a message that cannot be
    // parsed.
    let channel = Channel::from_shared(p.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<NotUtf8, ()>::default();
    let path = "/dapr.proto.runtime.v1.Dapr/GetState";
    let garbage = NotUtf8 {
        value: vec![0xff, 0xfe],
    };
    let status = grpc
        .unary(
            tonic::Request::new(garbage),
            tonic::codegen::http::uri::PathAndQuery::from_static(path),
            codec,
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert!(
        status
            .message()
            .contains("failed to decode Protobuf message"),
        "{status:?}"
    );
    assert_eq!(
        dapr_get(&mut dapr, "olga", "k").await.0,
        "",
        "still serving"
    );
    p.stop().await;
}
