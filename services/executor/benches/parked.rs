//! What a parked call costs in memory: 1,000 and then 10,000 calls of a guest that touches two
//! pages of linear memory (128 KiB, as a Rust SDK guest with its 64 KiB stack does) and then
//! waits for a global lock an outsider holds. The process's resident memory is read before
//! the calls start and once every one of them is parked; the difference per call, beyond the
//! 128 KiB each touched, is what parking costs. The state service and the scheduler are in
//! this process, as in `fwasm up`, so the lock's waiters count too. Then the outsider lets go
//! and the calls take the lock one after another: the time that takes is printed too.
//!
//! cargo bench -p fwasm-executor --bench parked

mod support;

use std::sync::Arc;
use std::time::Duration;

use fwasm_executor::{Executor, ExecutorConfig};
use fwasm_proto::api::ExecutorApi;
use fwasm_proto::pb::{Call, CallStatus, LockMode, LockRequest, UnlockRequest};

/// Touches its second page, then takes the write lock of the key "gate" (waiting for it);
/// answers "hi".
const WAITER: &str = r#"(module
    (import "fwasm_v1" "state_lock" (func $lock (param i32 i32 i32) (result i32)))
    (memory (export "memory") 2)
    (data (i32.const 100) "\01\c8\00\00\00\00\00\02\00\00\00hi")
    (data (i32.const 300) "gate")
    (func (export "fwasm_abi_v1"))
    (func (export "fwasm_alloc") (param i32) (result i32) i32.const 1024)
    (func (export "fwasm_handle") (param i32 i32) (result i64)
        (i32.store (i32.const 70000) (i32.const 1))
        (if (call $lock (i32.const 300) (i32.const 4) (i32.const 4)) (then unreachable))
        i64.const 429496729613))"#;

const TOUCHED: u64 = 128 << 10;

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _entered = runtime.enter();
    let (state, scheduler, _data) = support::platform(&runtime);
    let config = ExecutorConfig {
        max_concurrent_calls: 20_000,
        ..ExecutorConfig::default()
    };
    let executor = Arc::new(Executor::new(config, state.clone(), scheduler));
    let module_hash = support::put(&runtime, &state, "waiter", wat::parse_str(WAITER).unwrap());
    let call = |id| Call {
        id,
        user: "bench".into(),
        function: "waiter".into(),
        module_hash: module_hash.clone(),
        ..Call::default()
    };
    // Warm: the module compiled, the pool and the runtime's threads up.
    let warm = runtime.block_on(executor.execute(call(1))).unwrap();
    assert_eq!(warm.status(), CallStatus::Success, "{warm:?}");
    let mut next_id = 2;
    for calls in [1_000u64, 10_000] {
        let outsider = LockRequest {
            user: "bench".into(),
            key: "gate".into(),
            mode: LockMode::Write as i32,
            holder: "outsider".into(),
            lease_ms: 600_000,
            ..LockRequest::default()
        };
        assert!(
            runtime
                .block_on(state.lock_state(outsider))
                .unwrap()
                .granted
        );
        let before = resident_bytes();
        let waiting: Vec<_> = (0..calls)
            .map(|_| {
                next_id += 1;
                let (executor, call) = (executor.clone(), call(next_id));
                runtime.spawn(async move { executor.execute(call).await })
            })
            .collect();
        let mut patience = 6000;
        while (executor.parked_calls() as u64) < calls {
            patience -= 1;
            assert!(
                patience > 0,
                "only {} calls parked",
                executor.parked_calls()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let parked = resident_bytes();
        let per_call = (parked.saturating_sub(before)) / calls;
        println!(
            "parked/{calls}: {:.1} MiB resident for {calls} parked calls: {:.1} KiB per call, \
             {:.1} KiB beyond the {} KiB each touched",
            (parked - before) as f64 / (1 << 20) as f64,
            per_call as f64 / 1024.0,
            per_call.saturating_sub(TOUCHED) as f64 / 1024.0,
            TOUCHED >> 10
        );
        let unlock = UnlockRequest {
            user: "bench".into(),
            key: "gate".into(),
            holder: "outsider".into(),
        };
        let released = std::time::Instant::now();
        runtime.block_on(state.unlock_state(unlock)).unwrap();
        for call in waiting {
            let result = runtime.block_on(call).unwrap().unwrap();
            assert_eq!(result.status(), CallStatus::Success, "{result:?}");
        }
        // Each takes the lock in turn and ends: the hand-overs of one queue.
        println!(
            "parked/{calls}: all ended {:.2?} after the release ({:.1?} per hand-over)",
            released.elapsed(),
            released.elapsed() / calls as u32
        );
    }
}
