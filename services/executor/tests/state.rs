//! State in the executor: global locks are per user, are released when the call that took
//! them ends, and a call cannot wait on a lock it holds itself.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fwasm_executor::Limits;
use fwasm_proto::api::{SchedulerApi, StateApi};
use fwasm_proto::pb::{
    CallResult, CallStatus, FailureKind, LockMode, LockRequest, PlaceRequest, SetStateRequest,
    StateKey,
};

use support::*;

/// A guest whose `fwasm_handle` runs `body`, then returns "hi". The key "shared" is at 300,
/// the bytes "done" at 320 and the function name "locker" at 340; `$fail_last` fails the
/// call with `last_error`'s message.
fn state_guest(body: &str) -> String {
    format!(
        r#"(module
            (import "fwasm_v1" "fail" (func $fail (param i32 i32) (result i32)))
            (import "fwasm_v1" "last_error" (func $last_error (param i32 i32) (result i32)))
            (import "fwasm_v1" "state_lock" (func $lock (param i32 i32 i32) (result i32)))
            (import "fwasm_v1" "state_size" (func $size (param i32 i32) (result i64)))
            (import "fwasm_v1" "state_get" (func $get (param i32 i32 i32 i32) (result i64)))
            (import "fwasm_v1" "state_set" (func $set (param i32 i32 i32 i32) (result i32)))
            (import "fwasm_v1" "state_delete" (func $delete (param i32 i32) (result i32)))
            (import "fwasm_v1" "await" (func $await (param i64 i32) (result i32)))
            (import "fwasm_v1" "chain" (func $chain (param i32 i32 i32 i32) (result i64)))
            (memory (export "memory") 1)
            (data (i32.const 100) "\01\c8\00\00\00\00\00\02\00\00\00hi")
            (data (i32.const 300) "shared")
            (data (i32.const 320) "done")
            (data (i32.const 340) "locker")
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
        not_reentrant: false,
    }
}

#[tokio::test]
async fn one_user_can_neither_read_nor_lock_anothers_keys() {
    // Time enough for bob's call on a loaded machine; alice's waits all of it.
    let h = Harness::new(Limits {
        timeout: Duration::from_secs(2),
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
    assert_failed(&result, FailureKind::Timeout, "timed out after 2s");
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
async fn a_chained_call_s_global_locks_are_released_before_its_caller_resumes() {
    let h = Harness::new(Limits::default()).await;
    // Takes the global write lock and returns without unlocking.
    h.add_function_of("alice", "locker", &state_guest(&lock(4)))
        .await;
    let chain_and_await = r#"
        (if (call $await
                (call $chain (i32.const 340) (i32.const 6) (i32.const 0) (i32.const 0))
                (i32.const -1))
            (then (call $fail_last)))"#;
    assert_hi(&h.run_as("alice", &state_guest(chain_and_await)).await);
    // Its caller, chained on the same executor, resumed only once the lock was free.
    let reply = h.state.lock_state(outsiders_lock("alice")).await.unwrap();
    assert!(reply.granted, "free once the caller has its answer");
}

#[tokio::test]
async fn global_locks_are_released_when_the_call_holding_them_traps_or_times_out() {
    // Time enough for the trapping call to take its lock first, on a loaded machine.
    let h = Harness::new(Limits {
        timeout: Duration::from_secs(2),
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

/// A call nobody runs, which the test ends by reporting its outcome: a gate callers await.
async fn gate(h: &Harness) -> u64 {
    h.add_function("gate", &guest(RETURN_HI, "")).await;
    let place = PlaceRequest {
        user: "u".into(),
        function: "gate".into(),
        ..PlaceRequest::default()
    };
    h.scheduler.place(place).await.unwrap().call_id
}

async fn open_gate(h: &Harness, id: u64) {
    let result = CallResult {
        id,
        status: CallStatus::Success as i32,
        ..CallResult::default()
    };
    h.scheduler.call_finished(result).await.unwrap();
}

/// Awaits the gate; the call stays parked, holding its locks, until the test opens it.
fn await_gate(gate: u64) -> String {
    format!("(if (call $await (i64.const {gate}) (i32.const -1)) (then (call $fail_last)))")
}

/// Starts `wat` as a call of "u" in the background.
fn spawn_call(h: &Arc<Harness>, wat: String) -> tokio::task::JoinHandle<CallResult> {
    let h = h.clone();
    tokio::spawn(async move { h.run_as("u", &wat).await })
}

async fn wait_until_parked(h: &Harness, calls: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while h.executor.parked_calls() < calls {
        assert!(
            Instant::now() < deadline,
            "only {} of {calls} calls parked",
            h.executor.parked_calls()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_write_lock_makes_another_call_wait_until_it_is_released() {
    let h = Arc::new(Harness::new(Limits::default()).await);
    let gate = gate(&h).await;
    // The holder takes the local write lock, waits at the gate, then sets "shared" to "done"
    // and ends, which releases the lock.
    let holder = spawn_call(
        &h,
        state_guest(&format!(
            "{} {}
             (if (call $set (i32.const 300) (i32.const 6) (i32.const 320) (i32.const 4))
                 (then (call $fail_last)))",
            lock(2),
            await_gate(gate)
        )),
    );
    wait_until_parked(&h, 1).await;
    // The waiter takes the same lock, then finds "done": had it not waited for the holder to
    // end, the key would still be empty.
    let waiter = spawn_call(
        &h,
        state_guest(&format!(
            "{} (if (i64.ne (call $size (i32.const 300) (i32.const 6)) (i64.const 4))
                    (then unreachable))",
            lock(2)
        )),
    );
    wait_until_parked(&h, 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiter.is_finished(),
        "the waiter did not wait for the lock"
    );

    open_gate(&h, gate).await;
    assert_hi(&holder.await.unwrap());
    assert_hi(&waiter.await.unwrap());
    assert_eq!(h.executor.live_calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_read_locks_are_shared_and_keep_out_a_writer() {
    let h = Arc::new(Harness::new(Limits::default()).await);
    let gate = gate(&h).await;
    let reader = spawn_call(
        &h,
        state_guest(&format!("{} {}", lock(1), await_gate(gate))),
    );
    wait_until_parked(&h, 1).await;

    // A second reader gets the lock while the first holds it, and ends.
    let second = tokio::time::timeout(
        Duration::from_secs(60),
        h.run_as("u", &state_guest(&lock(1))),
    )
    .await
    .expect("a second read lock is granted while the first is held");
    assert_hi(&second);
    assert!(!reader.is_finished());

    // A writer waits for the reader, then writes.
    let writer = spawn_call(
        &h,
        state_guest(&format!(
            "{} (if (call $set (i32.const 300) (i32.const 6) (i32.const 320) (i32.const 4))
                    (then (call $fail_last)))",
            lock(2)
        )),
    );
    wait_until_parked(&h, 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !writer.is_finished(),
        "the writer did not wait for the reader"
    );
    open_gate(&h, gate).await;
    assert_hi(&reader.await.unwrap());
    assert_hi(&writer.await.unwrap());
}

#[tokio::test]
async fn state_delete_removes_the_local_copy_the_global_value_and_the_append_list() {
    let h = Harness::new(Limits::default()).await;
    let key = || StateKey {
        user: "u".into(),
        key: "shared".into(),
    };
    let set = SetStateRequest {
        user: "u".into(),
        key: "shared".into(),
        value: "global value".into(),
    };
    h.state.set_state(set.clone()).await.unwrap();
    h.state.append_state(set).await.unwrap();

    // Read it (pulling a local copy), change the copy, delete: both tiers read as empty after.
    // A second delete, of a missing key, is no error.
    let guest = state_guest(
        r#"(if (i64.ne (call $get (i32.const 300) (i32.const 6) (i32.const 4096) (i32.const 64)) (i64.const 12))
               (then unreachable))
           (if (call $set (i32.const 300) (i32.const 6) (i32.const 320) (i32.const 4)) (then (call $fail_last)))
           (if (i64.ne (call $size (i32.const 300) (i32.const 6)) (i64.const 4)) (then unreachable))
           (if (call $delete (i32.const 300) (i32.const 6)) (then (call $fail_last)))
           (if (i64.ne (call $size (i32.const 300) (i32.const 6)) (i64.const 0)) (then unreachable))
           (if (i64.ne (call $get (i32.const 300) (i32.const 6) (i32.const 4096) (i32.const 64)) (i64.const 0))
               (then unreachable))
           (if (call $delete (i32.const 300) (i32.const 6)) (then (call $fail_last)))"#,
    );
    assert_hi(&h.run_as("u", &guest).await);

    let value = h.state.get_state(key()).await.unwrap();
    assert!(!value.exists && value.value.is_empty(), "{value:?}");
    assert_eq!(h.state.state_size(key()).await.unwrap(), 0);
    let list = h.state.read_appended(key()).await.unwrap();
    assert!(list.elements.is_empty(), "{list:?}");
    // A later call on this executor finds no local copy either.
    let after = state_guest(
        "(if (i64.ne (call $size (i32.const 300) (i32.const 6)) (i64.const 0)) (then unreachable))",
    );
    assert_hi(&h.run_as("u", &after).await);
}
