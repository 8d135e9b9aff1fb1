//! A guest of one user cannot reach another user's things through any import: chaining,
//! awaiting, state, locks, publishing, Layotto's proxy-wasm imports, and the network (one
//! function's allow-list is its own; a call's sockets end with it, in `outbound`). (Awaiting another
//! user's call id is shown in `chaining`, files in `c_guests` and the executor's WASI tests; a
//! sidecar is its own namespace, reached verbatim.)

use fwasm_integration::proxy_wasm_guest;
use fwasm_proto::layotto;
use fwasm_proto::layotto::runtime_client::RuntimeClient;
use tonic::transport::Channel;

use crate::support::{Platform, each_platform};

/// User `b` has a secret, a function, a subscription and a lock held; user `a` has a guest.
async fn two_users(p: &Platform) {
    p.upload_testkit("a", &["state", "publisher", "chain_other"])
        .await;
    p.upload_testkit("b", &["state", "subscriber", "upper"])
        .await;
    assert_eq!(p.put_state("b/secret", "b's only").await.0, 200);
    let subscribed = p
        .http
        .put(format!("{}/sub/b/news/subscriber", p.upload))
        .send()
        .await
        .unwrap();
    assert_eq!(subscribed.status(), 200);
}

#[tokio::test]
async fn state_locks_and_topics_are_the_callers_users_own() {
    for (mode, p) in each_platform().await {
        two_users(&p).await;
        // The same key names a's own value, which it has not got.
        let read = p.script("a", "pull secret; get secret").await;
        assert!(!read.contains("b's only"), "{mode}: {read}");
        let written = p.script("a", "set secret mine; push secret").await;
        assert_eq!(written, "", "{mode}");
        assert_eq!(
            p.get_state("b/secret").await,
            (200, "b's only".into()),
            "{mode}: a's write landed on b"
        );
        // b's lock on "k" (held by an app) does not hold up a's lock on its own "k".
        let channel = Channel::from_shared(p.grpc.clone()).unwrap();
        let mut layotto = RuntimeClient::new(channel.connect().await.unwrap());
        let lock = layotto::TryLockRequest {
            store_name: "b".into(),
            resource_id: "k".into(),
            lock_owner: "app".into(),
            expire: 60,
        };
        assert!(layotto.try_lock(lock).await.unwrap().into_inner().success);
        let locked = p
            .script("a", "lock_global_write k; set k a; unlock k")
            .await;
        assert_eq!(locked, "", "{mode}");
        // a's publish on "news" is a's topic: b's subscriber never hears it.
        assert_eq!(
            p.call("a/publisher", "news hello").await,
            (200, "started 0".into()),
            "{mode}"
        );
        let heard = p.get_state("b/last-event").await;
        assert_eq!(heard.0, 404, "{mode}: {heard:?}");
        // Chaining names only a's functions (b/upper is refused by name).
        let (_, chained) = p.call("a/chain_other", "").await;
        assert!(chained.starts_with("chain refused"), "{mode}: {chained}");
        p.stop().await;
    }
}

#[tokio::test]
async fn layottos_imports_reach_the_callers_user_only() {
    for (mode, p) in each_platform().await {
        // b has Layotto's demo whole, and stock of book1; a has only the first function.
        for (user, name, wasm) in [
            ("b", "id_1", "layotto_function1"),
            ("b", "id_2", "layotto_function2"),
            ("a", "id_1", "layotto_function1"),
        ] {
            let response = p
                .put(&format!("{user}/{name}"), proxy_wasm_guest(wasm))
                .await;
            assert_eq!(response.status(), 200, "{mode}");
        }
        assert_eq!(p.put_state("b/book1", "100").await.0, 200);
        assert_eq!(
            p.call("b/id_1", "name=book1").await,
            (200, "There are 100 inventories for book1.".into()),
            "{mode}"
        );
        // a's id_1 invokes a's id_2, which it has not got, never b's.
        let (status, body) = p.call("a/id_1", "name=book1").await;
        assert_eq!(status, 200, "{mode}");
        assert!(
            body.starts_with("id_2 could not be reached"),
            "{mode}: {body}"
        );
        // Given its own id_2, a reads a's stock of book1, which it has not got, never b's.
        let response = p.put("a/id_2", proxy_wasm_guest("layotto_function2")).await;
        assert_eq!(response.status(), 200, "{mode}");
        let (_, body) = p.call("a/id_1", "name=book1").await;
        assert!(!body.contains("100"), "{mode}: {body}");
        p.stop().await;
    }
}

#[tokio::test]
async fn allow_lists_are_the_functions_own() {
    use crate::c_guests::c_guest;
    use crate::outbound::{tcp_echo_server, upload_allowed};
    let port = tcp_echo_server().await;
    let config = fwasm_executor::ExecutorConfig {
        allow_outbound: vec!["127.0.0.1:*".parse().unwrap()],
        ..crate::support::test_executor_config()
    };
    let platforms = [
        ("up", crate::support::up_with(config.clone()).await),
        ("mesh", crate::support::mesh_with(1, config).await),
    ];
    let wasm = c_guest("tcp_client.c");
    for (mode, p) in platforms {
        let allowed = [format!("127.0.0.1:{port}")];
        upload_allowed(&p, "a/net", wasm.clone(), &allowed).await;
        upload_allowed(&p, "a/plain", wasm.clone(), &[]).await;
        upload_allowed(&p, "b/net", wasm.clone(), &[]).await;
        let input = format!("127.0.0.1 {port} mine");
        assert_eq!(
            p.call("a/net", input.clone()).await.1,
            "echoed: mine",
            "{mode}"
        );
        // Neither another function of the user nor another user's function of the same name
        // reaches what a/net may.
        for other in ["a/plain", "b/net"] {
            let refused = p.call(other, input.clone()).await.1;
            assert!(
                refused.contains(&format!("refused: {other} may not reach it")),
                "{mode}: {other}: {refused}"
            );
        }
        p.stop().await;
    }
}
