//! Sidecar mode: executors started with a Layotto or Dapr sidecar beside them (`--sidecar`).
//! Functions reach it through the sidecar imports (the Rust SDK's `fwasm_sdk::sidecar`), and
//! Layotto's `proxy_get_state` and `proxy_invoke_service` go to it verbatim. Shown against a
//! second fwasm serving the runtime APIs (its users and functions are then the stores and
//! apps a guest names), against a recording sidecar (the exact requests on the wire), and with
//! the sidecar unreachable, slow or absent.

use std::time::{Duration, Instant};

use fwasm_executor::{ExecutorConfig, SidecarApi, SidecarConfig};
use fwasm_integration::proxy_wasm_guest;
use fwasm_proto::dapr::proto::runtime::v1 as dapr;
use fwasm_proto::layotto;

use crate::recording_sidecar::RecordingSidecar;
use crate::support::{Platform, short_time_limit, test_executor_config, up, up_with};

fn with_sidecar(addr: &str, api: SidecarApi) -> ExecutorConfig {
    ExecutorConfig {
        sidecar: Some(SidecarConfig::new(addr, api)),
        ..test_executor_config()
    }
}

/// Runs the testkit's sidecar script as `alice/sidecar`: one reply line per request.
async fn script(p: &Platform, script: &str) -> String {
    let (status, body) = p.call("alice/sidecar", script.to_string()).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits until `user_key` on `p` holds text containing `marker`.
async fn state_containing(p: &Platform, user_key: &str, marker: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = p.get_state(user_key).await;
        if status == 200 && body.contains(marker) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{user_key} never held {marker:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn functions_use_a_second_fwasm_as_their_sidecar() {
    let sidecar = up().await;
    sidecar
        .upload_testkit("bob", &["upper", "subscriber"])
        .await;
    let subscribed = sidecar
        .http
        .put(format!("{}/sub/bob/news/subscriber", sidecar.upload))
        .send()
        .await
        .unwrap();
    assert_eq!(subscribed.status().as_u16(), 200);
    for api in [SidecarApi::Dapr, SidecarApi::Layotto] {
        let p = up_with(with_sidecar(&sidecar.grpc, api)).await;
        p.upload_testkit("alice", &["sidecar"]).await;
        let reply = script(
            &p,
            &format!(
                "save bob k hello from {api}\nget bob k\ninvoke bob upper shout\n\
                 publish bob news extra from {api}\ndelete bob k\nget bob k\n"
            ),
        )
        .await;
        assert_eq!(
            reply,
            format!("ok\nok hello from {api}\nok SHOUT\nok\nok\nok\n"),
            "{api}"
        );
        // The event reached the subscriber of the sidecar's user `bob`.
        state_containing(&sidecar, "bob/last-event", &format!("extra from {api}")).await;
        // Nothing was written on the executor's own platform.
        assert_eq!(p.get_state("bob/k").await.0, 404);
        p.stop().await;
    }
    sidecar.stop().await;
}

#[tokio::test]
async fn bindings_and_secrets_go_to_the_sidecar_exactly() {
    for api in [SidecarApi::Dapr, SidecarApi::Layotto] {
        let recorder = RecordingSidecar::default();
        let service = match api {
            SidecarApi::Dapr => "/dapr.proto.runtime.v1.Dapr",
            SidecarApi::Layotto => "/spec.proto.runtime.v1.Runtime",
        };
        let secret = [("db-password".to_string(), "s3cret".to_string())].into();
        match api {
            SidecarApi::Dapr => {
                recorder.answer(
                    &format!("{service}/InvokeBinding"),
                    dapr::InvokeBindingResponse {
                        data: "sent".into(),
                        ..Default::default()
                    },
                );
                recorder.answer(
                    &format!("{service}/GetSecret"),
                    dapr::GetSecretResponse { data: secret },
                );
            }
            SidecarApi::Layotto => {
                recorder.answer(
                    &format!("{service}/InvokeBinding"),
                    layotto::InvokeBindingResponse {
                        data: "sent".into(),
                        ..Default::default()
                    },
                );
                recorder.answer(
                    &format!("{service}/GetSecret"),
                    layotto::GetSecretResponse { data: secret },
                );
            }
        }
        let addr = recorder.start().await;
        let p = up_with(with_sidecar(&addr, api)).await;
        p.upload_testkit("alice", &["sidecar"]).await;
        let reply = script(
            &p,
            "binding mail create hi there\nsecret vault db-password\n",
        )
        .await;
        assert_eq!(reply, "ok sent\nok s3cret\n", "{api}");

        let recorded = recorder.recorded();
        let paths: Vec<&str> = recorded.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                format!("{service}/InvokeBinding"),
                format!("{service}/GetSecret")
            ],
            "{api}"
        );
        match api {
            SidecarApi::Dapr => {
                assert_eq!(
                    recorded[0].decode::<dapr::InvokeBindingRequest>(),
                    dapr::InvokeBindingRequest {
                        name: "mail".into(),
                        data: "hi there".into(),
                        metadata: Default::default(),
                        operation: "create".into(),
                    }
                );
                assert_eq!(
                    recorded[1].decode::<dapr::GetSecretRequest>(),
                    dapr::GetSecretRequest {
                        store_name: "vault".into(),
                        key: "db-password".into(),
                        metadata: Default::default(),
                    }
                );
            }
            SidecarApi::Layotto => {
                assert_eq!(
                    recorded[0].decode::<layotto::InvokeBindingRequest>(),
                    layotto::InvokeBindingRequest {
                        name: "mail".into(),
                        data: "hi there".into(),
                        metadata: Default::default(),
                        operation: "create".into(),
                    }
                );
                assert_eq!(
                    recorded[1].decode::<layotto::GetSecretRequest>(),
                    layotto::GetSecretRequest {
                        store_name: "vault".into(),
                        key: "db-password".into(),
                        metadata: Default::default(),
                    }
                );
            }
        }
        p.stop().await;
    }
}

/// Layotto's quickstart functions with a Layotto sidecar: their state read and service call
/// are Layotto's own GetState and InvokeService, as Layotto would send them.
#[tokio::test]
async fn layotto_functions_reach_the_sidecar_verbatim() {
    let recorder = RecordingSidecar::default();
    let runtime = "/spec.proto.runtime.v1.Runtime";
    recorder.answer(
        &format!("{runtime}/InvokeService"),
        layotto::InvokeResponse {
            data: Some(prost_types::Any {
                type_url: String::new(),
                value: b"42".to_vec(),
            }),
            content_type: String::new(),
        },
    );
    recorder.answer(
        &format!("{runtime}/GetState"),
        layotto::GetStateResponse {
            data: "7".into(),
            ..Default::default()
        },
    );
    let addr = recorder.start().await;
    let p = up_with(with_sidecar(&addr, SidecarApi::Layotto)).await;
    for (name, wasm) in [("id_1", "layotto_function1"), ("id_2", "layotto_function2")] {
        let uploaded = p.put(&format!("demo/{name}"), proxy_wasm_guest(wasm)).await;
        assert_eq!(uploaded.status().as_u16(), 200);
    }
    assert_eq!(
        p.call("demo/id_1", "name=book1").await,
        (200, "There are 42 inventories for book1.".into())
    );
    assert_eq!(p.call("demo/id_2", "book1").await, (200, "7".into()));
    let recorded = recorder.recorded();
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    assert_eq!(
        recorded[0].decode::<layotto::InvokeServiceRequest>(),
        layotto::InvokeServiceRequest {
            id: "id_2".into(),
            message: Some(layotto::CommonInvokeRequest {
                method: String::new(),
                data: Some(prost_types::Any {
                    type_url: String::new(),
                    value: b"book1".to_vec(),
                }),
                ..Default::default()
            }),
        }
    );
    assert_eq!(
        recorded[1].decode::<layotto::GetStateRequest>(),
        layotto::GetStateRequest {
            store_name: "redis".into(),
            key: "book1".into(),
            ..Default::default()
        }
    );
    p.stop().await;
}

#[tokio::test]
async fn an_unreachable_slow_or_missing_sidecar_ends_the_request_with_a_reason() {
    // Nothing listens at a port just freed: the request fails at once, refused, rather than
    // waiting out the call's time.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = closed.local_addr().unwrap().to_string();
    drop(closed);
    let p = up_with(with_sidecar(&nobody, SidecarApi::Dapr)).await;
    p.upload_testkit("alice", &["sidecar"]).await;
    let reply = script(&p, "get store key\nsave store key v\n").await;
    assert!(
        reply.starts_with(&format!("error: the sidecar at {nobody} is unreachable")),
        "{reply}"
    );
    assert_eq!(reply.lines().count(), 2, "{reply}");
    assert!(!reply.contains("did not answer"), "it waited: {reply}");
    p.stop().await;

    // A sidecar slower than the call's time: the request gives up before the deadline, and
    // the function still answers.
    let recorder = RecordingSidecar::default();
    recorder.delay(Duration::from_secs(30));
    let addr = recorder.start().await;
    let p = up_with(ExecutorConfig {
        sidecar: Some(SidecarConfig::new(addr.clone(), SidecarApi::Layotto)),
        ..short_time_limit()
    })
    .await;
    p.upload_testkit("alice", &["sidecar"]).await;
    let reply = script(&p, "get store key\n").await;
    assert!(
        reply.starts_with(&format!(
            "error: the sidecar at {addr} did not answer GetState within"
        )),
        "{reply}"
    );
    p.stop().await;

    let p = up().await;
    p.upload_testkit("alice", &["sidecar"]).await;
    let reply = script(&p, "secret vault key\n").await;
    assert_eq!(
        reply,
        "error: this executor has no sidecar: start it (`fwasm up` or `fwasm executor`) with \
         --sidecar ADDR --sidecar-api layotto|dapr\n"
    );
    p.stop().await;
}

/// The same from C, with sdk-c's `fwasm_sidecar_*`.
#[tokio::test]
async fn c_functions_reach_the_sidecar_with_sdk_c() {
    let recorder = RecordingSidecar::default();
    let service = "/dapr.proto.runtime.v1.Dapr";
    recorder.answer(
        &format!("{service}/GetSecret"),
        dapr::GetSecretResponse {
            data: [("db-password".to_string(), "s3cret".to_string())].into(),
        },
    );
    recorder.answer(
        &format!("{service}/GetState"),
        dapr::GetStateResponse {
            data: "from the store".into(),
            ..Default::default()
        },
    );
    let addr = recorder.start().await;
    let wasm = crate::c_guests::c_guest("sidecar.c");
    let p = up_with(with_sidecar(&addr, SidecarApi::Dapr)).await;
    p.upload("c/sidecar", wasm.clone()).await;
    assert_eq!(
        p.call("c/sidecar", "vault db-password").await,
        (200, "secret s3cret state from the store".into())
    );
    let recorded = recorder.recorded();
    let save = recorded
        .iter()
        .find(|r| r.path == format!("{service}/SaveState"))
        .expect("a SaveState request");
    let save: dapr::SaveStateRequest = save.decode();
    assert_eq!(save.store_name, "orders");
    assert_eq!(
        (save.states[0].key.as_str(), &save.states[0].value[..]),
        ("o-1", &b"from c"[..])
    );
    p.stop().await;

    let p = up().await;
    p.upload("c/sidecar", wasm).await;
    let (status, body) = p.call("c/sidecar", "vault db-password").await;
    assert_eq!(status, 200);
    assert!(
        body.starts_with("get_secret failed (-8): this executor has no sidecar"),
        "{body}"
    );
    p.stop().await;
}
