//! Chaining in the executor: calls parked in `await` hold no worker thread, results and
//! failures reach the awaiting caller, and every refusal explains itself through `last_error`.

mod support;

use std::time::{Duration, Instant};

use fwasm_executor::{ExecutorConfig, Limits};
use fwasm_proto::ApiError;
use fwasm_proto::api::{ExecutorApi, SchedulerApi};
use fwasm_proto::pb::{
    Call, CallRecord, CallRef, CallResult, CallStatus, ExecutorHeartbeat, FailureKind,
    FunctionInfo, HeartbeatReply, PlaceRequest, Placement, QuotaRef, SubmitRequest, UserQuota,
    WaitCallRequest,
};

use support::*;

/// A guest whose `fwasm_handle` runs `body` and then returns "hi". `$arg` holds the last 8
/// bytes of the request (an i64 input), `$fail_last` fails the call with `last_error`'s
/// message and `$fail_output` with a call's output.
fn chaining_guest(body: &str) -> String {
    format!(
        r#"(module
            (import "fwasm_v1" "fail" (func $fail (param i32 i32) (result i32)))
            (import "fwasm_v1" "last_error" (func $last_error (param i32 i32) (result i32)))
            (import "fwasm_v1" "chain" (func $chain (param i32 i32 i32 i32) (result i64)))
            (import "fwasm_v1" "await" (func $await (param i64 i32) (result i32)))
            (import "fwasm_v1" "call_output" (func $call_output (param i64 i32 i32) (result i64)))
            (memory (export "memory") 1)
            (data (i32.const 100) "\01\c8\00\00\00\00\00\02\00\00\00hi")
            (data (i32.const 300) "child")
            (data (i32.const 320) "trapper")
            (data (i32.const 340) "other/child")
            (func (export "fwasm_abi_v1"))
            (func (export "fwasm_alloc") (param i32) (result i32) i32.const 1024)
            (func $fail_last (local $n i32)
                (local.set $n (call $last_error (i32.const 8192) (i32.const 4096)))
                (drop (call $fail (i32.const 8192) (local.get $n)))
                unreachable)
            (func $fail_output (param $id i64) (local $n i32)
                (local.set $n (i32.wrap_i64
                    (call $call_output (local.get $id) (i32.const 8192) (i32.const 4096))))
                (drop (call $fail (i32.const 8192) (local.get $n)))
                unreachable)
            (func (export "fwasm_handle") (param $p i32) (param $n i32) (result i64)
                (local $id i64) (local $arg i64) (local $input i32)
                (local.set $input (i32.sub (i32.add (local.get $p) (local.get $n)) (i32.const 8)))
                (local.set $arg (i64.load (local.get $input)))
                {body}
                {RETURN_HI}))"#
    )
}

/// Chains `child` with this call's 8-byte input and awaits it.
const CHAIN_CHILD_AND_AWAIT: &str = r#"
    (local.set $id (call $chain (i32.const 300) (i32.const 5) (local.get $input) (i32.const 8)))
    (if (i64.le_s (local.get $id) (i64.const 0)) (then (call $fail_last)))
    (if (call $await (local.get $id) (i32.const -1)) (then (call $fail_last)))"#;

/// Awaits the call whose id is this call's input, for `timeout_ms`.
fn await_input(timeout_ms: i32) -> String {
    format!("(if (call $await (local.get $arg) (i32.const {timeout_ms})) (then (call $fail_last)))")
}

/// Runs `u/parent` with `body` in a chaining guest, as a call from outside.
async fn run_parent(h: &Harness, body: &str) -> CallResult {
    let parent = h.add_function("parent", &chaining_guest(body)).await;
    call(h, "parent", &parent, 0).await
}

/// A call nobody runs, which the test ends by reporting its outcome: a gate callers await.
async fn gate(h: &Harness, user: &str) -> u64 {
    h.add_function_of(user, "gate", &guest(RETURN_HI, "")).await;
    place(h, user, "gate").await
}

/// The id the scheduler gives a call of `user/function` from outside.
async fn place(h: &Harness, user: &str, function: &str) -> u64 {
    let request = PlaceRequest {
        user: user.into(),
        function: function.into(),
        ..PlaceRequest::default()
    };
    h.scheduler.place(request).await.unwrap().call_id
}

async fn open_gate(h: &Harness, id: u64) {
    h.scheduler
        .call_finished(CallResult {
            id,
            status: CallStatus::Success as i32,
            ..CallResult::default()
        })
        .await
        .unwrap();
}

/// Runs `u/<function>` as a call from outside, with an 8-byte input.
async fn call(h: &Harness, function: &str, hash: &str, arg: u64) -> CallResult {
    call_on(h, &h.executor, function, hash, arg).await
}

/// [`call`] on `executor`.
async fn call_on(
    h: &Harness,
    executor: &fwasm_executor::Executor,
    function: &str,
    hash: &str,
    arg: u64,
) -> CallResult {
    let call = Call {
        user: "u".into(),
        function: function.into(),
        module_hash: hash.into(),
        input: arg.to_le_bytes().to_vec().into(),
        ..Call::default()
    };
    h.place_and_execute_on(executor, call).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_calls_wait_at_once_on_two_workers_and_all_complete() {
    let h = std::sync::Arc::new(
        Harness::with_config(ExecutorConfig {
            limits: Limits {
                timeout: Duration::from_secs(120),
                ..Limits::default()
            },
            workers: 2,
            // Room for every parent and child here; the next test covers a full executor.
            max_concurrent_calls: 2048,
            ..ExecutorConfig::default()
        })
        .await,
    );
    let parent = h
        .add_function("parent", &chaining_guest(CHAIN_CHILD_AND_AWAIT))
        .await;
    h.add_function("child", &chaining_guest(&await_input(-1)))
        .await;
    let gate = gate(&h, "u").await;

    // 1,000 parents each chain a child that waits on the gate: 2,000 parked calls.
    let calls: Vec<_> = (0..1000)
        .map(|_| {
            let (h, parent) = (h.clone(), parent.clone());
            tokio::spawn(async move { call(&h, "parent", &parent, gate).await })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while h.executor.parked_calls() < 2000 {
        assert!(
            Instant::now() < deadline,
            "only {} of 2000 calls parked",
            h.executor.parked_calls()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Two workers, 2,000 waiting calls, and a new call still runs at once.
    assert_hi(&h.run(&guest(RETURN_HI, "")).await);

    open_gate(&h, gate).await;
    for call in calls {
        assert_hi(&call.await.unwrap());
    }
    // Every admission is released.
    until_idle(&h.executor).await;
}

#[tokio::test]
async fn a_full_executor_sends_chained_calls_through_the_scheduler_without_deadlock() {
    let h = Harness::with_config(ExecutorConfig {
        workers: 1,
        max_concurrent_calls: 1,
        ..ExecutorConfig::default()
    })
    .await;
    let parent = h
        .add_function("parent", &chaining_guest(CHAIN_CHILD_AND_AWAIT))
        .await;
    h.add_function("child", &guest(RETURN_HI, "")).await;
    // The parent fills the executor: its child goes through the scheduler, which has only
    // this executor, and is admitted there because chained calls are never refused for room.
    assert_hi(&call(&h, "parent", &parent, 0).await);
    until_idle(&h.executor).await;
}

#[tokio::test]
async fn an_awaited_child_that_traps_gives_its_caller_the_code_and_reason() {
    let h = Harness::new(Limits::default()).await;
    h.add_function("trapper", &guest("unreachable", "")).await;
    // Code 1 (a trap): fail with the child's reason, read through call_output.
    let result = run_parent(
        &h,
        r#"(local.set $id (call $chain (i32.const 320) (i32.const 7) (i32.const 0) (i32.const 0)))
               (if (i32.eq (call $await (local.get $id) (i32.const -1)) (i32.const 1))
                   (then (call $fail_output (local.get $id))))"#,
    )
    .await;
    assert_failed(
        &result,
        FailureKind::Trap,
        "u/parent failed: u/trapper trapped",
    );
}

#[tokio::test]
async fn an_awaited_child_stopped_by_a_limit_gives_its_caller_that_code() {
    let h = Harness::new(Limits {
        max_fuel: 50_000_000,
        ..Limits::default()
    })
    .await;
    // `trapper` is named so in the guest's data; here it loops until the CPU budget ends.
    h.add_function("trapper", &guest("(loop (br 0)) unreachable", ""))
        .await;
    let result = run_parent(
        &h,
        r#"(local.set $id (call $chain (i32.const 320) (i32.const 7) (i32.const 0) (i32.const 0)))
               (if (i32.eq (call $await (local.get $id) (i32.const -1)) (i32.const 2))
                   (then (call $fail_output (local.get $id))))"#,
    )
    .await;
    assert_failed(
        &result,
        FailureKind::Trap,
        "u/parent failed: u/trapper used up its CPU budget of 50000000 fuel",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_awaited_call_that_times_out_gives_its_caller_that_code_and_reason() {
    // Every call on an executor has the same wall-clock limit, and a chained child starts
    // after its parent, so a parent awaiting a chained looping child always times out first.
    // The child here is instead a call started (from outside) before its awaiting parent, and
    // `await` takes any call of the same user, chained or not.
    let h = std::sync::Arc::new(
        Harness::new(Limits {
            timeout: Duration::from_secs(2),
            fuel_slice: 100_000,
            ..Limits::default()
        })
        .await,
    );
    let looper = h
        .add_function("looper", &guest("(loop (br 0)) unreachable", ""))
        .await;
    let placed = place(&h, "u", "looper").await;
    let running = {
        let (h, id) = (h.clone(), placed);
        tokio::spawn(async move {
            h.executor
                .execute(Call {
                    id,
                    user: "u".into(),
                    function: "looper".into(),
                    module_hash: looper,
                    ..Call::default()
                })
                .await
                .unwrap()
        })
    };
    // The looper ends at its limit before its waiter starts, and `await` finds its outcome (a
    // waiter that started while it ran could reach its own limit first, at the same 2 s).
    assert_failed(
        &running.await.unwrap(),
        FailureKind::Timeout,
        "u/looper timed out after 2s",
    );
    // Code 3 (a timeout): fail with the awaited call's reason, read through call_output.
    let waiter = h
        .add_function(
            "waiter",
            &chaining_guest(
                r#"(if (i32.eq (call $await (local.get $arg) (i32.const -1)) (i32.const 3))
                       (then (call $fail_output (local.get $arg))))"#,
            ),
        )
        .await;
    let result = call(&h, "waiter", &waiter, placed).await;
    assert_failed(
        &result,
        FailureKind::Trap,
        "u/waiter failed: u/looper timed out after 2s",
    );
}

#[tokio::test]
async fn outputs_kept_for_a_caller_are_bounded_by_its_memory_limit() {
    let h = Harness::new(Limits {
        max_memory_bytes: 128 << 10,
        ..Limits::default()
    })
    .await;
    // A child whose response body is 70,000 zero bytes.
    let big = r#"(module
        (memory (export "memory") 2)
        (data (i32.const 100) "\01\c8\00\00\00\00\00\70\11\01\00")
        (func (export "fwasm_abi_v1"))
        (func (export "fwasm_alloc") (param i32) (result i32) i32.const 1024)
        (func (export "fwasm_handle") (param i32 i32) (result i64)
            i64.const 429496799611))"#;
    h.add_function("child", big).await;
    let result = run_parent(&h, r#"(local.set $id (call $chain (i32.const 300) (i32.const 5) (i32.const 0) (i32.const 0)))
                   (if (call $await (local.get $id) (i32.const -1)) (then (call $fail_last)))
                   (if (i64.ne (call $call_output (local.get $id) (i32.const 0) (i32.const 0)) (i64.const 70000))
                       (then unreachable))
                   (local.set $id (call $chain (i32.const 300) (i32.const 5) (i32.const 0) (i32.const 0)))
                   (if (call $await (local.get $id) (i32.const -1)) (then (call $fail_last)))
                   (if (i64.eq (call $call_output (local.get $id) (i32.const 0) (i32.const 0)) (i64.const -5))
                       (then (call $fail_last)))"#).await;
    assert_failed(
        &result,
        FailureKind::Trap,
        "the outputs this call awaited are over its limit of 131072 bytes",
    );
}

#[tokio::test]
async fn chaining_another_users_function_is_refused_with_a_reason() {
    let h = Harness::new(Limits::default()).await;
    let result = run_parent(
        &h,
        r#"(local.set $id (call $chain (i32.const 340) (i32.const 11) (i32.const 0) (i32.const 0)))
               (if (i64.eq (local.get $id) (i64.const -3)) (then (call $fail_last)))"#,
    )
    .await;
    assert_failed(
        &result,
        FailureKind::Trap,
        "chaining reaches only the caller's own functions",
    );
}

#[tokio::test]
async fn chaining_a_missing_function_is_refused_as_not_found() {
    let h = Harness::new(Limits::default()).await;
    let result = run_parent(
        &h,
        r#"(local.set $id (call $chain (i32.const 300) (i32.const 5) (i32.const 0) (i32.const 0)))
               (if (i64.eq (local.get $id) (i64.const -4)) (then (call $fail_last)))"#,
    )
    .await;
    assert_failed(&result, FailureKind::Trap, "chain: ");
    assert!(result.error.contains("u/child"), "{}", result.error);
}

#[tokio::test]
async fn an_await_with_a_timeout_returns_timeout_while_the_call_runs() {
    let h = Harness::new(Limits::default()).await;
    let gate = gate(&h, "u").await;
    let waiter = h
        .add_function("waiter", &chaining_guest(&await_input(50)))
        .await;
    let result = call(&h, "waiter", &waiter, gate).await;
    assert_failed(
        &result,
        FailureKind::Trap,
        &format!("await: call {gate} is still running after 50ms"),
    );
}

#[tokio::test]
async fn a_caller_awaiting_past_its_own_time_limit_times_out() {
    let h = Harness::new(Limits {
        timeout: Duration::from_millis(200),
        ..Limits::default()
    })
    .await;
    let gate = gate(&h, "u").await;
    let waiter = h
        .add_function("waiter", &chaining_guest(&await_input(-1)))
        .await;
    let started = Instant::now();
    let result = call(&h, "waiter", &waiter, gate).await;
    assert_failed(
        &result,
        FailureKind::Timeout,
        "u/waiter timed out after 200ms",
    );
    // At its own limit, not whenever the gate opens (never).
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn another_users_call_cannot_be_awaited() {
    let h = Harness::new(Limits::default()).await;
    let theirs = gate(&h, "v").await;
    let waiter = h
        .add_function("waiter", &chaining_guest(&await_input(-1)))
        .await;
    let result = call(&h, "waiter", &waiter, theirs).await;
    assert_failed(
        &result,
        FailureKind::Trap,
        &format!("await: no call with id {theirs} is known"),
    );
}

/// The harness's scheduler, except that it tells nobody how a call is doing (but `allowed`)
/// and never takes a report: an executor behind it can only learn how its chained calls
/// ended from themselves.
struct SilentOnCalls {
    scheduler: std::sync::Arc<fwasm_scheduler::Scheduler>,
    allowed: u64,
}

impl SilentOnCalls {
    fn check(&self, id: u64) -> Result<(), fwasm_proto::ApiError> {
        match id == self.allowed {
            true => Ok(()),
            false => Err(fwasm_proto::ApiError::unavailable(format!(
                "this scheduler says nothing of call {id}"
            ))),
        }
    }
}

#[async_trait::async_trait]
impl SchedulerApi for SilentOnCalls {
    async fn place(&self, req: PlaceRequest) -> Result<Placement, ApiError> {
        self.scheduler.place(req).await
    }
    async fn submit(&self, req: SubmitRequest) -> Result<Placement, ApiError> {
        self.scheduler.submit(req).await
    }
    async fn function_updated(&self, info: FunctionInfo) -> Result<(), ApiError> {
        self.scheduler.function_updated(info).await
    }
    async fn function_deleted(&self, req: fwasm_proto::pb::FunctionRef) -> Result<(), ApiError> {
        self.scheduler.function_deleted(req).await
    }
    async fn call_finished(&self, _: CallResult) -> Result<(), ApiError> {
        std::future::pending().await
    }
    async fn calls_finished(
        &self,
        _: fwasm_proto::pb::CallsFinishedRequest,
    ) -> Result<(), ApiError> {
        std::future::pending().await
    }
    async fn get_call(&self, req: CallRef) -> Result<CallRecord, ApiError> {
        self.check(req.id)?;
        self.scheduler.get_call(req).await
    }
    async fn wait_call(&self, req: WaitCallRequest) -> Result<CallRecord, ApiError> {
        self.check(req.id)?;
        self.scheduler.wait_call(req).await
    }
    async fn heartbeat(&self, beat: ExecutorHeartbeat) -> Result<HeartbeatReply, ApiError> {
        self.scheduler.heartbeat(beat).await
    }
    async fn set_quota(&self, req: UserQuota) -> Result<(), ApiError> {
        self.scheduler.set_quota(req).await
    }
    async fn get_quota(&self, req: QuotaRef) -> Result<UserQuota, ApiError> {
        self.scheduler.get_quota(req).await
    }
    async fn lease(
        &self,
        req: fwasm_proto::pb::LeaseRequest,
    ) -> Result<fwasm_proto::pb::PlacementLease, ApiError> {
        self.scheduler.lease(req).await
    }
    async fn record_calls(&self, req: fwasm_proto::pb::RecordCallsRequest) -> Result<(), ApiError> {
        self.scheduler.record_calls(req).await
    }
}

/// An executor beside the harness's with `limits`, whose scheduler says nothing of calls but
/// `allowed`.
fn executor_told_nothing(h: &Harness, allowed: u64, limits: Limits) -> fwasm_executor::Executor {
    let scheduler = SilentOnCalls {
        scheduler: h.scheduler.clone(),
        allowed,
    };
    let config = ExecutorConfig {
        limits,
        workers: 2,
        ..ExecutorConfig::default()
    };
    fwasm_executor::Executor::new(config, h.state.clone(), std::sync::Arc::new(scheduler))
}

/// Chains `child` with this call's input, then awaits it for `timeout_ms`.
fn chain_child_and_await_for(timeout_ms: i32) -> String {
    format!(
        r#"(local.set $id (call $chain (i32.const 300) (i32.const 5) (local.get $input) (i32.const 8)))
           (if (i64.le_s (local.get $id) (i64.const 0)) (then (call $fail_last)))
           (if (call $await (local.get $id) (i32.const {timeout_ms})) (then (call $fail_last)))"#
    )
}

#[tokio::test]
async fn a_chained_call_running_here_is_awaited_here_without_asking_the_scheduler() {
    let h = Harness::new(Limits::default()).await;
    let executor = executor_told_nothing(&h, 0, Limits::default());
    let parent = h
        .add_function("parent", &chaining_guest(CHAIN_CHILD_AND_AWAIT))
        .await;
    h.add_function("child", &guest(RETURN_HI, "")).await;
    for _ in 0..20 {
        assert_hi(&call_on(&h, &executor, "parent", &parent, 0).await);
    }
    // How a child failed reaches its caller here too: its code, and its reason as output.
    h.add_function("trapper", &guest("unreachable", "")).await;
    let failing = h
        .add_function(
            "failing",
            &chaining_guest(
                r#"(local.set $id (call $chain (i32.const 320) (i32.const 7) (i32.const 0) (i32.const 0)))
                   (if (i32.eq (call $await (local.get $id) (i32.const -1)) (i32.const 1))
                       (then (call $fail_output (local.get $id))))"#,
            ),
        )
        .await;
    let result = call_on(&h, &executor, "failing", &failing, 0).await;
    let reason = "u/failing failed: u/trapper trapped";
    assert_failed(&result, FailureKind::Trap, reason);
    until_idle(&executor).await;
}

#[tokio::test]
async fn an_await_of_a_chained_call_running_here_times_out_on_time() {
    let h = Harness::new(Limits::default()).await;
    // The child waits on a gate (which its scheduler may tell it about); its caller gives it
    // 50 ms, or only looks, and hears that from this executor's timers.
    let gate = gate(&h, "u").await;
    let executor = executor_told_nothing(&h, gate, Limits::default());
    h.add_function("child", &chaining_guest(&await_input(-1)))
        .await;
    for (timeout_ms, after) in [(50, "50ms"), (0, "0ns")] {
        let name = format!("parent{timeout_ms}");
        let body = chain_child_and_await_for(timeout_ms);
        let parent = h.add_function(&name, &chaining_guest(&body)).await;
        let started = Instant::now();
        let result = call_on(&h, &executor, &name, &parent, gate).await;
        assert_failed(&result, FailureKind::Trap, "await: call ");
        assert!(
            result
                .error
                .contains(&format!("is still running after {after}")),
            "{}",
            result.error
        );
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(timeout_ms as u64));
        // Not at the child's own end, 30 s on (a generous bound: the timer is due at 50 ms).
        assert!(took < Duration::from_secs(10), "took {took:?}");
    }
    // Both children wait on the gate, parked; opening it ends them.
    let deadline = Instant::now() + Duration::from_secs(30);
    while executor.parked_calls() < 2 {
        assert!(
            Instant::now() < deadline,
            "the children never parked on the gate"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    open_gate(&h, gate).await;
    until_idle(&executor).await;
}

#[tokio::test]
async fn a_caller_awaiting_a_chained_call_here_past_its_own_time_limit_times_out() {
    let h = Harness::new(Limits::default()).await;
    let gate = gate(&h, "u").await;
    let limits = Limits {
        timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let executor = executor_told_nothing(&h, gate, limits);
    h.add_function("child", &chaining_guest(&await_input(-1)))
        .await;
    let body = chain_child_and_await_for(-1);
    let parent = h.add_function("parent", &chaining_guest(&body)).await;
    let result = call_on(&h, &executor, "parent", &parent, gate).await;
    let reason = "u/parent timed out after 300ms";
    assert_failed(&result, FailureKind::Timeout, reason);
}

#[tokio::test(flavor = "current_thread")]
async fn a_chain_on_one_executor_runs_on_its_workers_alone() {
    // The executor's async runtime is this test's, which has one thread: this one.
    let h = Harness::new(Limits::default()).await;
    let parent = h
        .add_function("parent", &chaining_guest(CHAIN_CHILD_AND_AWAIT))
        .await;
    h.add_function("child", &guest(RETURN_HI, "")).await;
    // Once through, so the functions are known and their modules compiled.
    assert_hi(&call(&h, "parent", &parent, 0).await);
    let call = Call {
        id: place(&h, "u", "parent").await,
        user: "u".into(),
        function: "parent".into(),
        module_hash: parent,
        input: 0u64.to_le_bytes().to_vec().into(),
        ..Call::default()
    };
    // Sent from another thread's runtime, while this one waits without yielding: chaining,
    // starting the children and awaiting them must not need the executor's runtime.
    let (answer, answered) = std::sync::mpsc::channel();
    let executor = h.executor.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = answer.send(runtime.block_on(executor.execute(call)));
    });
    let result = answered
        .recv_timeout(Duration::from_secs(30))
        .expect("the chain waited for the executor's runtime");
    assert_hi(&result.unwrap());
}

#[tokio::test]
async fn a_chained_call_reported_before_its_caller_awaits_it_is_awaited_through_the_scheduler() {
    let h = std::sync::Arc::new(Harness::new(Limits::default()).await);
    let gate = gate(&h, "u").await;
    h.add_function("trapper", &guest("unreachable", "")).await;
    // Chains the trapper, waits on the gate, then awaits the trapper and fails with its reason.
    let body = r#"
        (local.set $id (call $chain (i32.const 320) (i32.const 7) (i32.const 0) (i32.const 0)))
        (if (i64.le_s (local.get $id) (i64.const 0)) (then (call $fail_last)))
        (if (call $await (local.get $arg) (i32.const -1)) (then (call $fail_last)))
        (if (i32.eq (call $await (local.get $id) (i32.const -1)) (i32.const 1))
            (then (call $fail_output (local.get $id))))"#;
    let parent = h.add_function("parent", &chaining_guest(body)).await;
    let running = {
        let h = h.clone();
        tokio::spawn(async move { call(&h, "parent", &parent, gate).await })
    };
    // The trapper has ended (only its caller is left, parked on the gate) and its outcome is
    // with the scheduler: this executor has forgotten it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while h.executor.live_calls() != 1 || h.executor.parked_calls() != 1 {
        assert!(Instant::now() < deadline, "the trapper never ended");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(h.executor.reports_sent(Duration::from_secs(30)).await);
    open_gate(&h, gate).await;
    let result = running.await.unwrap();
    let reason = "u/parent failed: u/trapper trapped";
    assert_failed(&result, FailureKind::Trap, reason);
}

#[tokio::test]
async fn a_caller_polling_its_child_on_one_worker_lets_the_child_run() {
    let h = Harness::with_config(ExecutorConfig {
        limits: Limits {
            timeout: Duration::from_secs(10),
            ..Limits::default()
        },
        workers: 1,
        ..ExecutorConfig::default()
    })
    .await;
    h.add_function("child", &guest(RETURN_HI, "")).await;
    // Chains the child, then looks (a zero timeout) until it is no longer running.
    let body = r#"
        (local.set $id (call $chain (i32.const 300) (i32.const 5) (i32.const 0) (i32.const 0)))
        (if (i64.le_s (local.get $id) (i64.const 0)) (then (call $fail_last)))
        (loop $poll
            (br_if $poll (i32.eq (call $await (local.get $id) (i32.const 0)) (i32.const -7))))
        (if (call $await (local.get $id) (i32.const -1)) (then (call $fail_last)))"#;
    let parent = h.add_function("parent", &chaining_guest(body)).await;
    // Twice: the second time the child is known, so `chain` completes on the worker and the
    // child waits for that worker's next turn.
    for _ in 0..2 {
        assert_hi(&call(&h, "parent", &parent, 0).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_caller_parked_on_its_running_child_ends_and_so_does_the_child() {
    let h = std::sync::Arc::new(
        Harness::new(Limits {
            timeout: Duration::from_secs(60),
            max_fuel: u64::MAX,
            fuel_slice: 100_000,
            ..Limits::default()
        })
        .await,
    );
    // The child loops until it is cancelled (or its minute is up).
    h.add_function("child", &guest("(loop (br 0)) unreachable", ""))
        .await;
    let parent = h
        .add_function("parent", &chaining_guest(CHAIN_CHILD_AND_AWAIT))
        .await;
    let id = place(&h, "u", "parent").await;
    let running = {
        let h = h.clone();
        tokio::spawn(async move {
            let call = Call {
                id,
                user: "u".into(),
                function: "parent".into(),
                module_hash: parent,
                input: 0u64.to_le_bytes().to_vec().into(),
                ..Call::default()
            };
            h.executor.execute(call).await.unwrap()
        })
    };
    // The parent parked on its child, which runs on this executor.
    let deadline = Instant::now() + Duration::from_secs(30);
    while h.executor.callers_awaiting_here() != 1 || h.executor.live_calls() != 2 {
        assert!(
            Instant::now() < deadline,
            "the parent never parked on its child"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cancel = |id| CallRef {
        id,
        ..CallRef::default()
    };
    h.executor.cancel(cancel(id)).await.unwrap();
    assert_failed(
        &running.await.unwrap(),
        FailureKind::Cancelled,
        "u/parent was cancelled",
    );
    // The child it chained here is cancelled with it.
    until_idle(&h.executor).await;
    let children = fwasm_proto::pb::ListCallsRequest {
        parent_id: id,
        ..Default::default()
    };
    let child = h.scheduler.list_calls(children).await.unwrap().calls[0].id;
    let ended = h.scheduler.wait_call(WaitCallRequest {
        id: child,
        timeout_ms: 30_000,
        ..WaitCallRequest::default()
    });
    let ended = ended.await.unwrap();
    assert_eq!(
        (ended.failure(), ended.error.as_str()),
        (FailureKind::Cancelled, "u/child was cancelled")
    );
    let gone = h.executor.cancel(cancel(child)).await.unwrap_err();
    assert_eq!(gone.code, fwasm_proto::ErrorCode::NotFound);
}
