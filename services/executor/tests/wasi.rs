//! The WASI subset: captured output, exit codes, the read-only shared filesystem, ENOSYS for
//! what is not supported, and the reactor's `_initialize`.

mod support;

use fwasm_executor::Limits;
use fwasm_proto::api::StateApi;
use fwasm_proto::pb::{CallStatus, FailureKind, PutFileRequest};

use support::*;

/// A guest with WASI imports whose `fwasm_handle` runs `body` and returns "hi". Scratch memory
/// from 2048; `$open` opens the path at (`$p`, `$n`) read-only and returns the errno, leaving
/// the fd at 2048.
fn wasi_guest(data: &str, body: &str) -> String {
    format!(
        r#"(module
            (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
            (import "wasi_snapshot_preview1" "path_link" (func $path_link (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "fd_seek" (func $fd_seek (param i32 i64 i32 i32) (result i32)))
            (import "fwasm_v1" "fail" (func $fail (param i32 i32) (result i32)))
            (memory (export "memory") 1)
            (data (i32.const 100) "\01\c8\00\00\00\00\00\02\00\00\00hi")
            {data}
            (global $inits (mut i32) (i32.const 0))
            (func (export "_initialize") (global.set $inits (i32.add (global.get $inits) (i32.const 1))))
            (func (export "fwasm_abi_v1"))
            (func (export "fwasm_alloc") (param i32) (result i32) i32.const 1024)
            (func $print (param $ptr i32) (param $len i32)
                (i32.store (i32.const 3000) (local.get $ptr))
                (i32.store (i32.const 3004) (local.get $len))
                (drop (call $fd_write (i32.const 1) (i32.const 3000) (i32.const 1) (i32.const 3008))))
            (func $open (param $p i32) (param $n i32) (result i32)
                (call $path_open (i32.const 3) (i32.const 0) (local.get $p) (local.get $n)
                    (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 2048)))
            (func (export "fwasm_handle") (param $p i32) (param $n i32) (result i64)
                {body}
                i64.const 429496729613))"#
    )
}

#[tokio::test]
async fn stdout_is_captured_and_initialize_runs_once_per_instance() {
    let h = Harness::new(Limits::default()).await;
    let guest = wasi_guest(
        r#"(data (i32.const 200) "printed\n")"#,
        r#"(call $print (i32.const 200) (i32.const 8))
           (if (i32.ne (global.get $inits) (i32.const 1)) (then unreachable))"#,
    );
    let result = h.run_as("u", &guest).await;
    assert_hi(&result);
    assert_eq!(&result.stdout[..], b"printed\n");
}

#[tokio::test]
async fn an_exit_code_fails_the_call_with_that_code_and_exit_zero_succeeds() {
    let h = Harness::new(Limits::default()).await;
    let result = h
        .run_as("u", &wasi_guest("", "(call $proc_exit (i32.const 3))"))
        .await;
    assert_failed(&result, FailureKind::Exit, "exited with code 3");
    assert_eq!(result.return_code, 3);
    let result = h
        .run_as("u", &wasi_guest("", "(call $proc_exit (i32.const 0))"))
        .await;
    assert_eq!(
        (result.status(), result.output.len()),
        (CallStatus::Success, 0)
    );
}

#[tokio::test]
async fn shared_files_are_read_and_paths_cannot_escape_the_root() {
    let h = Harness::new(Limits::default()).await;
    let file = PutFileRequest {
        path: "/data/greeting.txt".into(),
        data: "hello, file".into(),
    };
    h.state.put_file(file).await.unwrap();
    // Open, read 64 bytes into 4096 and print them.
    let read = wasi_guest(
        r#"(data (i32.const 200) "data/greeting.txt")"#,
        r#"(if (call $open (i32.const 200) (i32.const 17)) (then unreachable))
           (i32.store (i32.const 3100) (i32.const 4096))
           (i32.store (i32.const 3104) (i32.const 64))
           (if (call $fd_read (i32.load (i32.const 2048)) (i32.const 3100) (i32.const 1) (i32.const 3108))
               (then unreachable))
           (call $print (i32.const 4096) (i32.load (i32.const 3108)))"#,
    );
    let result = h.run_as("u", &read).await;
    assert_hi(&result);
    assert_eq!(&result.stdout[..], b"hello, file");

    // The errno of opening each path, as a byte: ENOTCAPABLE (76), ENOENT (44).
    let errno_of = |path: &str| {
        wasi_guest(
            &format!(r#"(data (i32.const 200) "{path}")"#),
            &format!(
                "(i32.store8 (i32.const 4096) (call $open (i32.const 200) (i32.const {})))
                 (call $print (i32.const 4096) (i32.const 1))",
                path.len()
            ),
        )
    };
    let escape = h.run_as("u", &errno_of("../../etc/passwd")).await;
    assert_eq!(&escape.stdout[..], &[76]);
    let missing = h.run_as("u", &errno_of("data/missing.txt")).await;
    assert_eq!(&missing.stdout[..], &[44]);
}

#[tokio::test]
async fn unsupported_wasi_functions_return_enosys() {
    let h = Harness::new(Limits::default()).await;
    let guest = wasi_guest(
        "",
        "(i32.store8 (i32.const 4096) (call $path_link (i32.const 3) (i32.const 0) (i32.const 0)
             (i32.const 0) (i32.const 3) (i32.const 0) (i32.const 0)))
         (call $print (i32.const 4096) (i32.const 1))",
    );
    let result = h.run_as("u", &guest).await;
    assert_hi(&result);
    assert_eq!(&result.stdout[..], &[52]);
}

#[tokio::test]
async fn a_calls_own_files_are_created_bounded_and_kept_to_itself() {
    let h = Harness::new(Limits {
        max_memory_bytes: 1 << 20,
        ..Limits::default()
    })
    .await;
    // Each step's errno (or byte count) goes out as one byte.
    let steps = r#"
        ;; create "new.txt" (O_CREAT, write rights), write "hello"
        (i32.store8 (i32.const 5000)
            (call $path_open (i32.const 3) (i32.const 0) (i32.const 200) (i32.const 7)
                (i32.const 1) (i64.const 66) (i64.const 0) (i32.const 0) (i32.const 2048)))
        (i32.store (i32.const 3100) (i32.const 300))
        (i32.store (i32.const 3104) (i32.const 5))
        (i32.store8 (i32.const 5001)
            (call $fd_write (i32.load (i32.const 2048)) (i32.const 3100) (i32.const 1) (i32.const 3108)))
        ;; seek past the end and read: nothing, no error
        (drop (call $fd_seek (i32.load (i32.const 2048)) (i64.const 100) (i32.const 0) (i32.const 3200)))
        (i32.store (i32.const 3100) (i32.const 4096))
        (i32.store (i32.const 3104) (i32.const 10))
        (i32.store8 (i32.const 5002)
            (call $fd_read (i32.load (i32.const 2048)) (i32.const 3100) (i32.const 1) (i32.const 3108)))
        (i32.store8 (i32.const 5003) (i32.load (i32.const 3108)))
        ;; a terabyte out, then one byte: over the call's budget
        (drop (call $fd_seek (i32.load (i32.const 2048)) (i64.const 1099511627776) (i32.const 0) (i32.const 3200)))
        (i32.store (i32.const 3100) (i32.const 300))
        (i32.store (i32.const 3104) (i32.const 1))
        (i32.store8 (i32.const 5004)
            (call $fd_write (i32.load (i32.const 2048)) (i32.const 3100) (i32.const 1) (i32.const 3108)))
        (call $print (i32.const 5000) (i32.const 5))"#;
    let guest = wasi_guest(
        r#"(data (i32.const 200) "new.txt") (data (i32.const 300) "hello")"#,
        steps,
    );
    let result = h.run_as("u", &guest).await;
    assert_hi(&result);
    // created, written, read 0 bytes past the end, EFBIG
    assert_eq!(&result.stdout[..], &[0, 0, 0, 0, 22]);

    // Another call does not see the file: writes stay in the call that made them.
    let open = wasi_guest(
        r#"(data (i32.const 200) "new.txt")"#,
        "(i32.store8 (i32.const 4096) (call $open (i32.const 200) (i32.const 7)))
         (call $print (i32.const 4096) (i32.const 1))",
    );
    assert_eq!(&h.run_as("u", &open).await.stdout[..], &[44]);
}

#[tokio::test]
async fn output_written_many_times_from_the_same_memory_is_cut_at_the_limit() {
    let h = Harness::new(Limits {
        max_stdout_bytes: 1000,
        ..Limits::default()
    })
    .await;
    // 4,000 iovecs all pointing at the same 60 KiB: 240 MB asked for, 1,000 bytes kept.
    let guest = wasi_guest(
        "",
        r#"(local.set $n (i32.const 0))
           (block $done (loop $fill
               (br_if $done (i32.ge_u (local.get $n) (i32.const 4000)))
               (i32.store (i32.add (i32.const 8192) (i32.mul (local.get $n) (i32.const 8))) (i32.const 0))
               (i32.store (i32.add (i32.const 8196) (i32.mul (local.get $n) (i32.const 8))) (i32.const 60000))
               (local.set $n (i32.add (local.get $n) (i32.const 1)))
               (br $fill)))
           (drop (call $fd_write (i32.const 1) (i32.const 8192) (i32.const 4000) (i32.const 3008)))"#,
    );
    let result = h.run_as("u", &guest).await;
    assert_hi(&result);
    assert!(result.stdout.len() < 1100, "{}", result.stdout.len());
    assert!(result.stdout.ends_with(b"[output cut: over the limit]\n"));
}
