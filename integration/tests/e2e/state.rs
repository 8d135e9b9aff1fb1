//! State through the whole platform, on both backends (the embedded store and a real
//! redis-server): Faasm's semantics for locks, offsets, append lists, missing keys and the two
//! tiers, and the HTTP state API.

use std::collections::BTreeSet;

use fwasm_proto::pb::CallRef;

use crate::support::{Platform, each_backend, guest, mesh_on_both_backends};

/// Every testkit behaviour these tests use, uploaded for user `t`.
const STATEFUL: &[&str] = &["counter", "state_offset", "appender", "state"];

#[tokio::test]
async fn two_hundred_concurrent_increments_under_a_global_lock_leave_200() {
    for (backend, p) in each_backend().await {
        p.upload_testkit("t", STATEFUL).await;
        let calls: Vec<_> = (0..200)
            .map(|_| {
                let (http, url) = (p.http.clone(), format!("{}/f/t/counter", p.invoke));
                tokio::spawn(async move {
                    let response = http.post(url).send().await.unwrap();
                    let status = response.status().as_u16();
                    (status, response.text().await.unwrap())
                })
            })
            .collect();
        let mut seen = BTreeSet::new();
        for call in calls {
            let (status, body) = call.await.unwrap();
            assert_eq!(status, 200, "{backend}: {body}");
            seen.insert(body.parse::<u64>().unwrap());
        }
        // Each call saw a different count: no two held the lock at once.
        assert_eq!(seen, (1..=200).collect(), "{backend}");
        assert_eq!(
            p.get_state("t/counter").await,
            (200, "200".into()),
            "{backend}"
        );
        p.stop().await;
    }
}

#[tokio::test]
async fn offset_writes_and_reads_behave_as_in_faasms_state_offset() {
    for (backend, p) in each_backend().await {
        p.upload_testkit("t", STATEFUL).await;
        assert_eq!(
            p.call("t/state_offset", "").await,
            (200, "success".into()),
            "{backend}"
        );
        // The same steps, spelled out: partial writes, push, pull, partial read.
        let script = "set k abcdefg; push k; set_offset k 0 XYZ; set_offset k 2 zz; push k; \
                      pull k; get_offset k 0 5; get_offset k 5 2; size k; get_offset k 6 2";
        assert_eq!(
            p.script("t", script).await,
            "XYzze;fg;7;error: state_get_offset: \"k\" has 7 bytes; 2 bytes at offset 6 run past its end",
            "{backend}"
        );
        // Writing past the end grows the value with zero bytes.
        assert_eq!(
            p.script("t", "set g ab; set_offset g 4 c; size g; get_offset g 2 2")
                .await,
            "5;\0\0",
            "{backend}"
        );
        p.stop().await;
    }
}

#[tokio::test]
async fn appends_from_several_calls_are_all_kept_in_order_per_writer() {
    for (backend, p) in each_backend().await {
        p.upload_testkit("t", STATEFUL).await;
        let writers: Vec<_> = ["A", "B", "C"]
            .into_iter()
            .map(|writer| {
                let (http, url) = (p.http.clone(), format!("{}/f/t/appender", p.invoke));
                tokio::spawn(async move {
                    let reply = http.post(url).body(format!("{writer} 40")).send().await;
                    reply.unwrap().text().await.unwrap()
                })
            })
            .collect();
        for writer in writers {
            assert_eq!(writer.await.unwrap(), "ok", "{backend}");
        }
        let list = p.script("t", "read_appended appended").await;
        let elements: Vec<&str> = list.split(',').collect();
        assert_eq!(elements.len(), 120, "{backend}: {list}");
        for writer in ["A", "B", "C"] {
            let mine: Vec<String> = elements
                .iter()
                .filter(|e| e.starts_with(&format!("{writer}:")))
                .map(|e| e.to_string())
                .collect();
            let expected: Vec<String> = (0..40).map(|i| format!("{writer}:{i}")).collect();
            assert_eq!(mine, expected, "{backend}");
        }
        assert_eq!(
            p.script("t", "clear_appended appended; read_appended appended")
                .await,
            "",
            "{backend}"
        );
        p.stop().await;
    }
}

#[tokio::test]
async fn a_missing_key_reads_as_empty_with_size_zero() {
    for (backend, p) in each_backend().await {
        p.upload_testkit("t", STATEFUL).await;
        assert_eq!(
            p.script("t", "size nothing; get nothing; size nothing")
                .await,
            "0;;0",
            "{backend}"
        );
        assert_eq!(p.get_state("t/nothing").await.0, 404, "{backend}");
        p.stop().await;
    }
}

#[tokio::test]
async fn values_cross_between_the_http_api_and_functions() {
    for (backend, p) in each_backend().await {
        p.upload_testkit("t", STATEFUL).await;
        assert_eq!(
            p.put_state("t/greeting", "hello from http").await,
            (200, "State upload complete\n".into()),
            "{backend}"
        );
        assert_eq!(
            p.script("t", "get greeting").await,
            "hello from http",
            "{backend}"
        );
        assert_eq!(p.script("t", "set answer 42; push answer").await, "");
        assert_eq!(
            p.get_state("t/answer").await,
            (200, "42".into()),
            "{backend}"
        );
        // A key may contain '/', as Faasm keys may.
        p.put_state("t/a/b", "nested").await;
        assert_eq!(p.script("t", "get a/b").await, "nested", "{backend}");
        p.stop().await;
    }
}

#[tokio::test]
async fn users_do_not_share_keys() {
    for (backend, p) in each_backend().await {
        p.upload_testkit("t", STATEFUL).await;
        p.upload_testkit("eve", &["state"]).await;
        p.put_state("t/secret", "for t only").await;
        assert_eq!(p.script("eve", "get secret; size secret").await, ";0");
        assert_eq!(p.script("eve", "set secret mine; push secret").await, "");
        assert_eq!(
            p.get_state("t/secret").await,
            (200, "for t only".into()),
            "{backend}"
        );
        p.stop().await;
    }
}

#[tokio::test]
async fn bad_keys_and_values_get_clear_errors() {
    for (backend, p) in each_backend().await {
        p.upload_testkit("t", STATEFUL).await;
        let long = "k".repeat(257);
        let (status, body) = p.put_state(&format!("t/{long}"), "x").await;
        assert_eq!(status, 400, "{backend}");
        assert!(
            body.contains("is longer than 256 bytes"),
            "{backend}: {body}"
        );
        let reply = p.script("t", &format!("set {long} x")).await;
        assert!(
            reply.starts_with("error: state_set: invalid state key"),
            "{backend}: {reply}"
        );
        let (status, body) = p.put_state("bad user/k", "x").await;
        assert_eq!(status, 400, "{backend}: {body}");
        p.stop().await;
    }
}

/// The testkit with a custom section added: the same behaviours as another module, so the
/// scheduler places it apart from the first (warm affinity is per module).
fn second_copy() -> Vec<u8> {
    let mut wasm = guest("testkit");
    let name = b"copy";
    wasm.extend_from_slice(&[0, (1 + name.len() + 1) as u8, name.len() as u8]);
    wasm.extend_from_slice(name);
    wasm.push(b'2');
    wasm
}

/// The executor a call ran on.
async fn executor_of(p: &Platform, id: u64) -> String {
    let mut client = p.grpc_client().await;
    let record = client
        .get_call(CallRef {
            id,
            ..CallRef::default()
        })
        .await
        .unwrap()
        .into_inner();
    record.executor_id
}

#[tokio::test]
async fn two_executors_see_each_others_values_only_after_push_and_pull() {
    for (backend, p) in mesh_on_both_backends(2).await {
        p.upload_testkit("t", &["state.1"]).await;
        p.upload("t/state.2", second_copy()).await;
        let on_first = |script: &'static str| {
            let p = &p;
            async move { p.call_with_id("t/state.1", script).await }
        };
        let on_second = |script: &'static str| {
            let p = &p;
            async move { p.call_with_id("t/state.2", script).await }
        };
        let (_, _, first_id) = on_first("set k v1; push k").await;
        let (_, seen, second_id) = on_second("get k").await;
        assert_ne!(
            executor_of(&p, first_id).await,
            executor_of(&p, second_id).await,
            "{backend}: the two copies run on different executors"
        );
        assert_eq!(seen, "v1", "{backend}: the first read pulls");
        on_first("set k v2").await;
        assert_eq!(on_second("get k").await.1, "v1", "{backend}: not pushed");
        on_first("push k").await;
        assert_eq!(on_second("get k").await.1, "v1", "{backend}: not pulled");
        assert_eq!(on_second("pull k; get k").await.1, "v2", "{backend}");
        // The first executor's copy is its own: it sees v2 without pulling.
        assert_eq!(on_first("get k").await.1, "v2", "{backend}");
        p.stop().await;
    }
}
