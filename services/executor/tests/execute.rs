//! The executor's call path against hand-written guests: each ABI violation and limit fails
//! its call with a precise reason, and the next call still succeeds.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fwasm_executor::Limits;
use fwasm_proto::ErrorCode;
use fwasm_proto::api::ExecutorApi;
use fwasm_proto::pb::{Call, FailureKind};

use support::*;

#[tokio::test]
async fn a_well_behaved_guest_returns_its_response() {
    let h = Harness::new(Limits::default()).await;
    let result = h.run(&guest(RETURN_HI, "")).await;
    assert_hi(&result);
    assert_eq!(result.id, 7);
    assert!(result.cold_start);
    assert!(
        !h.run(&guest(RETURN_HI, "")).await.cold_start,
        "second call is warm"
    );
}

#[tokio::test]
async fn each_call_gets_a_fresh_instance() {
    // The guest counts its calls in a global and answers with the count: always 1.
    let handle = r#"
        (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
        (i32.store8 (i32.const 112) (i32.add (global.get $calls) (i32.const 48)))
        i64.const 429496729613"#;
    let h = Harness::new(Limits::default()).await;
    for _ in 0..3 {
        let result = h.run(&guest(handle, "")).await;
        assert_eq!(&result.output[..], b"h1");
    }
}

#[tokio::test]
async fn a_trap_fails_the_call_and_the_executor_keeps_serving() {
    let h = Harness::new(Limits::default()).await;
    let result = h.run(&guest("unreachable", "")).await;
    assert_failed(&result, FailureKind::Trap, "u/f trapped:");
    assert_hi(&h.run(&guest(RETURN_HI, "")).await);
}

#[tokio::test]
async fn the_reason_a_guest_gives_before_trapping_is_reported() {
    let h = Harness::new(Limits::default()).await;
    let handle = "(drop (call $fail (i32.const 200) (i32.const 13))) unreachable";
    let result = h.run(&guest(handle, "")).await;
    assert_failed(&result, FailureKind::Trap, "u/f failed: guest gave up");
}

#[tokio::test]
async fn an_out_of_bounds_response_pointer_fails_the_call() {
    let h = Harness::new(Limits::default()).await;
    // (0xFFFF0000 << 32) | 10
    let result = h.run(&guest("i64.const -281474976710646", "")).await;
    assert_failed(
        &result,
        FailureKind::AbiViolation,
        "returned a response at 4294901760 of 10 bytes, outside its 65536-byte memory",
    );
    assert_hi(&h.run(&guest(RETURN_HI, "")).await);
}

#[tokio::test]
async fn a_malformed_response_envelope_fails_the_call() {
    let h = Harness::new(Limits::default()).await;
    // Points at "guest gave up", which is not an envelope.
    let result = h.run(&guest("i64.const 858993459213", "")).await;
    assert_failed(
        &result,
        FailureKind::AbiViolation,
        "u/f returned a malformed response: envelope version 103 is not supported",
    );
}

#[tokio::test]
async fn an_allocator_returning_a_bad_pointer_fails_the_call() {
    let h = Harness::new(Limits::default()).await;
    let wat = guest(RETURN_HI, "").replace("i32.const 1024)\n", "i32.const 65530)\n");
    let result = h.run(&wat).await;
    assert_failed(
        &result,
        FailureKind::AbiViolation,
        "u/f broke the ABI: fwasm_alloc(39) returned 65530, outside its 65536-byte memory",
    );
}

#[tokio::test]
async fn out_of_bounds_pointers_to_imports_return_a_status_not_a_panic() {
    let h = Harness::new(Limits::default()).await;
    // log(-1 = out of bounds) must return -1; anything else traps.
    let handle = r#"
        (if (i32.ne (call $log (i32.const 3) (i32.const 65000) (i32.const 1000)) (i32.const -1))
            (then unreachable))
        (if (i32.ne (call $fail (i32.const -8) (i32.const 16)) (i32.const -1))
            (then unreachable))
        ;; an undefined log level is an invalid argument (-3); a defined one is Ok (0)
        (if (i32.ne (call $log (i32.const 9) (i32.const 200) (i32.const 5)) (i32.const -3))
            (then unreachable))
        (if (i32.ne (call $log (i32.const 5) (i32.const 200) (i32.const 5)) (i32.const 0))
            (then unreachable))
        i64.const 429496729613"#;
    assert_hi(&h.run(&guest(handle, "")).await);
}

#[tokio::test]
async fn a_loop_is_stopped_by_the_cpu_limit() {
    let h = Harness::new(Limits {
        max_fuel: 50_000_000,
        ..Limits::default()
    })
    .await;
    let result = h.run(&guest("(loop $l (br $l)) unreachable", "")).await;
    assert_failed(
        &result,
        FailureKind::CpuLimit,
        "u/f used up its CPU budget of 50000000 fuel",
    );
    assert_hi(&h.run(&guest(RETURN_HI, "")).await);
}

#[tokio::test]
async fn a_loop_is_stopped_by_the_wall_clock_limit() {
    let limit = Duration::from_millis(300);
    let h = Harness::new(Limits {
        timeout: limit,
        ..Limits::default()
    })
    .await;
    let result = h.run(&guest("(loop $l (br $l)) unreachable", "")).await;
    assert_failed(&result, FailureKind::Timeout, "u/f timed out after 300ms");
    // Stopped within its limit plus a fuel slice, far before the default CPU budget runs out
    // (which takes tens of seconds).
    let ran = Duration::from_micros(result.exec_micros);
    assert!(ran < limit * 10, "ran {ran:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn wasm_never_runs_on_the_async_runtime_thread() {
    // One runtime thread: if the loop ran on it, the timer below could not fire until the
    // call ended at its limit, two seconds later.
    let h = Arc::new(
        Harness::new(Limits {
            timeout: Duration::from_secs(2),
            ..Limits::default()
        })
        .await,
    );
    let started = Instant::now();
    let looping = {
        let h = h.clone();
        tokio::spawn(async move { h.run(&guest("(loop $l (br $l)) unreachable", "")).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!looping.is_finished(), "the loop is still running");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the runtime thread stayed free"
    );
    assert_failed(&looping.await.unwrap(), FailureKind::Timeout, "timed out");
}

#[tokio::test]
async fn looping_calls_do_not_starve_short_ones() {
    // Two workers, four loops: short calls still get worker time between slices.
    let h = Arc::new(
        Harness::new(Limits {
            timeout: Duration::from_secs(5),
            ..Limits::default()
        })
        .await,
    );
    // Stored and compiled before the loops start their clocks.
    let hi = h.add_module(&guest(RETURN_HI, "")).await;
    assert_hi(&h.run_stored(hi.clone()).await);
    let loops: Vec<_> = (0..4)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move { h.run(&guest("(loop $l (br $l)) unreachable", "")).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_hi(&h.run_stored(hi).await);
    assert!(
        loops.iter().all(|l| !l.is_finished()),
        "the loops were still running"
    );
    for l in loops {
        assert_failed(&l.await.unwrap(), FailureKind::Timeout, "timed out");
    }
}

#[tokio::test]
async fn what_a_call_wrote_to_its_memory_is_never_seen_by_the_next() {
    // One worker, so every call reuses the memory region the one before it used. The guest
    // answers "h0" when the bytes it is about to write (in its first page and in a page it
    // grows) are zero, then writes them.
    let handle = r#"
        (local $grown i32)
        (local.set $grown (i32.add (i32.shl (memory.grow (i32.const 1)) (i32.const 16)) (i32.const 16)))
        (i32.store8 (i32.const 112) (i32.add (i32.const 48)
            (i32.add (i32.load8_u (i32.const 60000)) (i32.load8_u (local.get $grown)))))
        (i32.store8 (i32.const 60000) (i32.const 7))
        (i32.store8 (local.get $grown) (i32.const 7))
        i64.const 429496729613"#;
    let h = Harness::with_config(fwasm_executor::ExecutorConfig {
        workers: 1,
        ..fwasm_executor::ExecutorConfig::default()
    })
    .await;
    for _ in 0..3 {
        let result = h.run(&guest(handle, "")).await;
        assert_eq!(&result.output[..], b"h0", "{result:?}");
    }
}

#[tokio::test]
async fn growing_memory_past_the_limit_fails_with_the_memory_limit() {
    let h = Harness::new(Limits {
        max_memory_bytes: 4 << 20,
        ..Limits::default()
    })
    .await;
    // Ask for 100 more pages (6.4 MiB); trap when refused, as an allocator would.
    let handle = "(if (i32.eq (memory.grow (i32.const 100)) (i32.const -1)) (then unreachable)) i64.const 429496729613";
    let result = h.run(&guest(handle, "")).await;
    assert_failed(
        &result,
        FailureKind::MemoryLimit,
        "u/f ran out of memory: its limit is 4 MiB",
    );
    // Within the limit the same growth succeeds.
    let h = Harness::new(Limits::default()).await;
    assert_hi(&h.run(&guest(handle, "")).await);
}

#[tokio::test]
async fn output_over_the_limit_fails_the_call() {
    let h = Harness::new(Limits {
        max_output_bytes: 1,
        ..Limits::default()
    })
    .await;
    let result = h.run(&guest(RETURN_HI, "")).await;
    assert_failed(
        &result,
        FailureKind::OutputLimit,
        "u/f returned 2 bytes of output, over the limit of 1 bytes",
    );
}

#[tokio::test]
async fn an_unknown_module_hash_is_not_found() {
    let h = Harness::new(Limits::default()).await;
    let err = h
        .executor
        .execute(Call {
            module_hash: "nope".into(),
            ..Call::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert_eq!(err.message, "no module with hash nope");
}

#[tokio::test]
async fn a_calls_outcome_is_reported_after_its_answer_and_an_executor_can_wait_for_that() {
    use fwasm_proto::api::SchedulerApi;
    use fwasm_proto::pb::{CallStatus, WaitCallRequest};
    let h = Harness::new(Limits::default()).await;
    let hash = h.add_function("hi", &guest(RETURN_HI, "")).await;
    let call = Call {
        user: "u".into(),
        function: "hi".into(),
        module_hash: hash,
        ..Call::default()
    };
    let result = h.place_and_execute(call).await;
    assert_hi(&result);
    assert!(h.executor.reports_sent(Duration::from_secs(10)).await);
    // Sent means the scheduler's table has it: no wait for it there.
    let wait = WaitCallRequest {
        id: result.id,
        timeout_ms: 1,
        ..WaitCallRequest::default()
    };
    let record = h.scheduler.wait_call(wait).await.unwrap();
    assert_eq!(record.status(), CallStatus::Success, "{record:?}");
}
