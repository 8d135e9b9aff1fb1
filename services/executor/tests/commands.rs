//! WASI commands at the executor: stdin in pieces, stdout as the reply within the output limit,
//! stderr as console output, exit codes and traps, with the same limits as every ABI.

mod support;

use fwasm_executor::Limits;
use fwasm_proto::api::ExecutorApi;
use fwasm_proto::pb::{Call, CallResult, CallStatus, FailureKind};

use support::*;

/// A command whose `_start` copies stdin to stdout 3 bytes at a time, writes "done\n" to
/// stderr, then runs `tail`.
fn command(tail: &str) -> String {
    format!(
        r#"(module
            (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
            (memory (export "memory") 1)
            (data (i32.const 200) "done\n")
            (func $write (param $fd i32) (param $ptr i32) (param $len i32)
                (i32.store (i32.const 3000) (local.get $ptr))
                (i32.store (i32.const 3004) (local.get $len))
                (drop (call $fd_write (local.get $fd) (i32.const 3000) (i32.const 1) (i32.const 3008))))
            (func (export "_start")
                (loop $more
                    (i32.store (i32.const 3100) (i32.const 1000))
                    (i32.store (i32.const 3104) (i32.const 3))
                    (if (call $fd_read (i32.const 0) (i32.const 3100) (i32.const 1) (i32.const 3108))
                        (then unreachable))
                    (if (i32.load (i32.const 3108))
                        (then
                            (call $write (i32.const 1) (i32.const 1000) (i32.load (i32.const 3108)))
                            (br $more))))
                (call $write (i32.const 2) (i32.const 200) (i32.const 5))
                {tail}))"#
    )
}

async fn run(h: &Harness, wat: &str, input: &str) -> CallResult {
    let module_hash = h.add_function("cat", wat).await;
    h.executor
        .execute(Call {
            id: 9,
            user: "u".into(),
            function: "cat".into(),
            input: input.to_string().into(),
            module_hash,
            ..Call::default()
        })
        .await
        .expect("the call reaches the guest")
}

#[tokio::test]
async fn stdin_is_the_body_and_stdout_the_reply() {
    let h = Harness::new(Limits::default()).await;
    let result = run(&h, &command(""), "hello, command").await;
    assert_eq!(result.status(), CallStatus::Success, "{result:?}");
    assert_eq!(result.http_status, 200);
    assert_eq!(&result.output[..], b"hello, command");
    assert_eq!(&result.stdout[..], b"done\n", "stderr is console output");
    let result = run(&h, &command("(call $proc_exit (i32.const 0))"), "ok").await;
    assert_eq!(
        (result.status(), &result.output[..]),
        (CallStatus::Success, &b"ok"[..])
    );
}

#[tokio::test]
async fn exit_codes_and_traps_fail_the_call() {
    let h = Harness::new(Limits::default()).await;
    let result = run(&h, &command("(call $proc_exit (i32.const 42))"), "x").await;
    assert_failed(&result, FailureKind::Exit, "u/cat exited with code 42");
    assert_eq!(result.return_code, 42);
    assert_eq!(&result.stdout[..], b"done\n");
    let result = run(&h, &command("unreachable"), "x").await;
    assert_failed(&result, FailureKind::Trap, "u/cat trapped: ");
}

#[tokio::test]
async fn a_reply_over_the_output_limit_fails_the_call() {
    let h = Harness::new(Limits {
        max_output_bytes: 10,
        ..Limits::default()
    })
    .await;
    let result = run(&h, &command(""), "0123456789").await;
    assert_eq!(&result.output[..], b"0123456789", "{result:?}");
    let result = run(&h, &command(""), "0123456789a").await;
    assert_failed(
        &result,
        FailureKind::OutputLimit,
        "u/cat printed more output than its limit of 10 bytes",
    );
}

#[tokio::test]
async fn a_looping_command_is_stopped_by_its_cpu_budget() {
    let h = Harness::new(Limits {
        max_fuel: 1_000_000,
        ..Limits::default()
    })
    .await;
    let result = run(&h, &command("(loop $spin (br $spin))"), "x").await;
    assert_failed(
        &result,
        FailureKind::CpuLimit,
        "u/cat used up its CPU budget",
    );
}
