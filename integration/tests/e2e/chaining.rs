//! Chaining through the whole platform: functions call functions of the same user by name,
//! await them and read their outputs, within depth and fan-out limits.

use fwasm_executor::ExecutorConfig;
use fwasm_proto::pb::{CallRef, CallStatus};

use crate::support::{each_platform, mesh_with, test_executor_config};

/// Every testkit behaviour the chaining tests use, uploaded for user `t`.
const CHAINING: &[&str] = &[
    "pair",
    "upper",
    "reverse",
    "fanout",
    "fanmid",
    "leaf",
    "recurse",
    "panic",
    "await_panic",
    "fanlimit",
    "chain_other",
    "child_id",
    "nest",
];

/// Calls `t/<function>` with `input` on both platforms and expects 200 with `expected`.
async fn expect_output(function: &str, input: &str, expected: &str) {
    for (mode, p) in each_platform().await {
        p.upload_testkit("t", CHAINING).await;
        let reply = p.call(&format!("t/{function}"), input.to_string()).await;
        assert_eq!(reply, (200, expected.to_string()), "{mode}");
        p.stop().await;
    }
}

#[tokio::test]
async fn a_function_chains_two_others_and_joins_their_outputs() {
    expect_output("pair", "ab", "AB12ba").await;
}

#[tokio::test]
async fn a_chain_of_ten_calls_each_awaiting_the_next() {
    expect_output("nest", "10", "10").await;
}

#[tokio::test]
async fn a_fan_out_of_100_children_each_chaining_10_grandchildren_adds_up() {
    // The sum of k² for k = 1..=1000, each k squared by its own grandchild call.
    expect_output("fanout", "100 10", "333833500").await;
}

#[tokio::test]
async fn a_self_chaining_function_is_stopped_by_the_depth_limit() {
    let expected = "stopped at depth 32: chain refused: t/recurse is at the call depth limit of 32";
    expect_output("recurse", "", expected).await;
}

#[tokio::test]
async fn the_fan_out_limit_stops_a_call_chaining_too_many() {
    let expected =
        "chained 1000 then: chain refused: t/fanlimit already chained its limit of 1000 calls";
    expect_output("fanlimit", "1001", expected).await;
}

#[tokio::test]
async fn a_parent_awaiting_a_trapping_child_gets_its_failure() {
    for (mode, p) in each_platform().await {
        p.upload_testkit("t", CHAINING).await;
        let (status, body) = p.call("t/await_panic", "").await;
        assert_eq!(status, 200, "{mode}: {body}");
        assert!(
            body.starts_with("code=1 reason=t/panic failed: ") && body.contains("boom: child"),
            "{mode}: {body}"
        );
        p.stop().await;
    }
}

#[tokio::test]
async fn chaining_reaches_only_the_callers_own_functions() {
    for (mode, p) in each_platform().await {
        p.upload_testkit("t", CHAINING).await;
        p.upload_testkit("other", &["upper"]).await;
        let (status, body) = p.call("t/chain_other", "").await;
        assert_eq!(status, 200, "{mode}: {body}");
        assert!(
            body.starts_with("chain refused: invalid function name \"other/upper\"")
                && body.contains("chaining reaches only the caller's own functions"),
            "{mode}: {body}"
        );
        p.stop().await;
    }
}

#[tokio::test]
async fn a_guest_awaits_only_its_own_users_calls() {
    for (mode, p) in each_platform().await {
        p.upload_testkit("t", &["await_id", "upper"]).await;
        p.upload_testkit("other", &["upper"]).await;
        let theirs = p.call_async("other/upper", "secret").await;
        let ours = p.call_async("t/upper", "ours").await;
        for id in [theirs, ours] {
            assert!(
                p.status_when_done(id).await.starts_with("SUCCESS"),
                "{mode}"
            );
        }
        // Waiting or only looking (timeout 0), another user's call is as unknown as none.
        for timeout in ["0", "1000"] {
            let (status, body) = p.call("t/await_id", format!("{theirs} {timeout}")).await;
            assert_eq!(status, 200, "{mode}");
            assert!(
                body.starts_with("error:")
                    && body.contains(&format!("no call with id {theirs} is known")),
                "{mode}, timeout {timeout}: {body}"
            );
            assert!(!body.contains("SECRET"), "{mode}: {body}");
            let (_, body) = p.call("t/await_id", format!("{ours} {timeout}")).await;
            assert_eq!(body, "ok OURS", "{mode}, timeout {timeout}");
        }
        p.stop().await;
    }
}

/// Runs `child_id` and returns the parent's and the child's records.
async fn parent_and_child(
    p: &crate::support::Platform,
) -> (fwasm_proto::pb::CallRecord, fwasm_proto::pb::CallRecord) {
    let (status, body, parent_id) = p.call_with_id("t/child_id", "x").await;
    assert_eq!(status, 200, "{body}");
    let mut client = p.grpc_client().await;
    let parent = client
        .get_call(CallRef {
            id: parent_id,
            ..CallRef::default()
        })
        .await
        .unwrap();
    let child_id = body.parse().unwrap();
    let child = client
        .get_call(CallRef {
            id: child_id,
            ..CallRef::default()
        })
        .await
        .unwrap();
    (parent.into_inner(), child.into_inner())
}

#[tokio::test]
async fn a_chained_call_runs_on_its_callers_executor_while_it_has_room() {
    let p = mesh_with(2, test_executor_config()).await;
    p.upload_testkit("t", CHAINING).await;
    let (parent, child) = parent_and_child(&p).await;
    assert_eq!(child.parent_id, parent.id);
    assert_eq!(child.status(), CallStatus::Success);
    assert_eq!(&child.output[..], b"X");
    assert_eq!(child.executor_id, parent.executor_id, "local first");
    p.stop().await;
}

#[tokio::test]
async fn a_chained_call_goes_to_another_executor_when_its_callers_is_full() {
    let full = ExecutorConfig {
        max_concurrent_calls: 1,
        ..test_executor_config()
    };
    let p = mesh_with(2, full).await;
    p.upload_testkit("t", CHAINING).await;
    let (parent, child) = parent_and_child(&p).await;
    assert_eq!(child.parent_id, parent.id);
    assert_eq!(child.status(), CallStatus::Success);
    assert_ne!(
        child.executor_id, parent.executor_id,
        "through the scheduler, to the executor with room"
    );
    p.stop().await;
}
