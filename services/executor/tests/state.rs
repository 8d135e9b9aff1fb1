//! State in the executor: global locks are per user, are released when the call that took
//! them ends, and a call cannot wait on a lock it holds itself.

mod support;

use std::time::Duration;

use fwasm_executor::Limits;
use fwasm_proto::api::StateApi;
use fwasm_proto::pb::{FailureKind, LockMode, LockRequest, SetStateRequest};

use support::*;

/// A guest whose `fwasm_handle` runs `body`, then returns "hi". The key "shared" is at 300;
/// `$fail_last` fails the call with `last_error`'s message.
fn state_guest(body: &str) -> String {
    format!(
        r#"(module
            (import "fwasm_v1" "fail" (func $fail (param i32 i32) (result i32)))
            (import "fwasm_v1" "last_error" (func $last_error (param i32 i32) (result i32)))
            (import "fwasm_v1" "state_lock" (func $lock (param i32 i32 i32) (result i32)))
            (import "fwasm_v1" "state_size" (func $size (param i32 i32) (result i64)))
            (memory (export "memory") 1)
            (data (i32.const 100) "\01\c8\00\00\00\00\00\02\00\00\00hi")
            (data (i32.const 300) "shared")
            (func (export "fwasm_abi_v1"))
            (func (export "fwasm_alloc") (param i32) (result i32) i32.const 1024)
            (func $fail_last (local $n i32)
                (local.set $n (call $last_error (i32.const 8192) (i32.const 4096)))
                (drop (call $fail (i32.const 8192) (local.get $n)))
                unreachable)
            (func (export "fwasm_handle") (param $p i32) (param $n i32) (result i64)
                {body}
                {RETURN_HI}))"#
    )
}

fn lock(mode: i32) -> String {
    format!(
        "(if (call $lock (i32.const 300) (i32.const 6) (i32.const {mode})) (then (call $fail_last)))"
    )
}

fn outsiders_lock(user: &str) -> LockRequest {
    LockRequest {
        user: user.into(),
        key: "shared".into(),
        mode: LockMode::Write as i32,
        holder: "outsider".into(),
        lease_ms: 60_000,
        wait_ms: 0,
    }
}

#[tokio::test]
async fn one_user_can_neither_read_nor_lock_anothers_keys() {
    let h = Harness::new(Limits {
        timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let set = SetStateRequest {
        user: "alice".into(),
        key: "shared".into(),
        value: "alice's".into(),
    };
    h.state.set_state(set).await.unwrap();
    assert!(
        h.state
            .lock_state(outsiders_lock("alice"))
            .await
            .unwrap()
            .granted
    );

    // Bob's "shared" is his own: it is empty, and its lock is free.
    let bob = state_guest(&format!(
        "(if (i64.ne (call $size (i32.const 300) (i32.const 6)) (i64.const 0)) (then unreachable)) {}",
        lock(4)
    ));
    assert_hi(&h.run_as("bob", &bob).await);
    // Alice's own call waits for the lock the outsider holds, until its time is up.
    let result = h.run_as("alice", &state_guest(&lock(4))).await;
    assert_failed(&result, FailureKind::Timeout, "timed out after 300ms");
}

#[tokio::test]
async fn global_locks_are_released_when_the_call_that_took_them_ends() {
    let h = Harness::new(Limits::default()).await;
    // Takes the global write lock and returns without unlocking.
    assert_hi(&h.run_as("alice", &state_guest(&lock(4))).await);
    let reply = h.state.lock_state(outsiders_lock("alice")).await.unwrap();
    assert!(reply.granted, "free at once, not after the lease");
}

#[tokio::test]
async fn global_locks_are_released_when_the_call_holding_them_traps_or_times_out() {
    let h = Harness::new(Limits {
        timeout: Duration::from_millis(200),
        ..Limits::default()
    })
    .await;
    let trapped = h
        .run_as("alice", &state_guest(&format!("{} unreachable", lock(4))))
        .await;
    assert_failed(&trapped, FailureKind::Trap, "trapped");
    assert!(
        h.state
            .lock_state(outsiders_lock("alice"))
            .await
            .unwrap()
            .granted
    );
    h.state
        .unlock_state(fwasm_proto::pb::UnlockRequest {
            user: "alice".into(),
            key: "shared".into(),
            holder: "outsider".into(),
        })
        .await
        .unwrap();

    let looping = h
        .run_as("alice", &state_guest(&format!("{} (loop (br 0))", lock(4))))
        .await;
    assert_failed(&looping, FailureKind::Timeout, "timed out");
    assert!(
        h.state
            .lock_state(outsiders_lock("alice"))
            .await
            .unwrap()
            .granted,
        "free at once, not after the lease"
    );
}

#[tokio::test]
async fn a_call_cannot_take_a_second_lock_of_the_same_scope_on_a_key() {
    let h = Harness::new(Limits::default()).await;
    let result = h
        .run_as("alice", &state_guest(&format!("{} {}", lock(2), lock(1))))
        .await;
    assert_failed(
        &result,
        FailureKind::Trap,
        "state_lock: this call already holds lock mode 2 on \"shared\"",
    );
    // Local and global locks are independent.
    assert_hi(
        &h.run_as("alice", &state_guest(&format!("{} {}", lock(2), lock(4))))
            .await,
    );
}
