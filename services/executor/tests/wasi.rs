//! The WASI subset: captured output, exit codes, the read-only shared filesystem, ENOSYS for
//! what is not supported, and the reactor's `_initialize`.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fwasm_executor::Limits;
use fwasm_proto::api::StateApi;
use fwasm_proto::pb::{Call, CallResult, CallStatus, FailureKind, PutFileRequest};

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
async fn stdout_is_captured_and_each_call_starts_after_initialize_ran_once() {
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
    let put = async |user: &str, path: &str, data: &str| {
        let file = PutFileRequest {
            path: path.into(),
            data: data.to_string().into(),
            user: user.into(),
        };
        h.state.put_file(file).await.unwrap();
    };
    put("u", "/data/greeting.txt", "hello, file").await;
    // A common file at the same path is under u's own; another user's file is not seen.
    put("", "data/greeting.txt", "hello, everyone").await;
    put("", "data/common.txt", "common").await;
    put("v", "data/secret.txt", "v's").await;
    // Open `path`, read 64 bytes into 4096 and print them.
    let read = |path: &str| {
        wasi_guest(
            &format!(r#"(data (i32.const 200) "{path}")"#),
            &format!(
                r#"(if (call $open (i32.const 200) (i32.const {})) (then unreachable))
                   (i32.store (i32.const 3100) (i32.const 4096))
                   (i32.store (i32.const 3104) (i32.const 64))
                   (if (call $fd_read (i32.load (i32.const 2048)) (i32.const 3100) (i32.const 1) (i32.const 3108))
                       (then unreachable))
                   (call $print (i32.const 4096) (i32.load (i32.const 3108)))"#,
                path.len()
            ),
        )
    };
    let result = h.run_as("u", &read("data/greeting.txt")).await;
    assert_hi(&result);
    assert_eq!(&result.stdout[..], b"hello, file");
    let result = h.run_as("w", &read("data/greeting.txt")).await;
    assert_eq!(&result.stdout[..], b"hello, everyone");
    let result = h.run_as("u", &read("data/common.txt")).await;
    assert_eq!(&result.stdout[..], b"common");

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
    let others = h.run_as("u", &errno_of("data/secret.txt")).await;
    assert_eq!(&others.stdout[..], &[44], "v's file is not u's to open");
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

/// A guest with WASI's clock, random, args and environ imports whose `fwasm_handle` runs
/// `body` and answers with the 128 bytes at 4096 as its body (the envelope's head sits just
/// before them, at 4085).
fn wasi_out_guest(body: &str) -> String {
    format!(
        r#"(module
            (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
            (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
            (memory (export "memory") 1)
            (data (i32.const 4085) "\01\c8\00\00\00\00\00\80\00\00\00")
            (func (export "fwasm_abi_v1"))
            (func (export "fwasm_alloc") (param i32) (result i32) i32.const 8192)
            (func (export "fwasm_handle") (param $p i32) (param $n i32) (result i64)
                (local $i i32)
                {body}
                ;; (4085 << 32) | (11 + 128)
                i64.const {packed}))"#,
        packed = (4085u64 << 32) | 139
    )
}

/// Runs `wat` as `u/<name>`, a call from outside, and returns its 128-byte body.
async fn body_of(h: &Harness, name: &str, wat: &str) -> Vec<u8> {
    let result = run_named(h, name, wat).await;
    assert_eq!(result.status(), CallStatus::Success, "{result:?}");
    assert_eq!(result.output.len(), 128, "{result:?}");
    result.output.to_vec()
}

async fn run_named(h: &Harness, name: &str, wat: &str) -> CallResult {
    let module_hash = h.add_function(name, wat).await;
    h.place_and_execute(Call {
        user: "u".into(),
        function: name.into(),
        module_hash,
        ..Call::default()
    })
    .await
}

fn u32_at(body: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(body[at..at + 4].try_into().unwrap())
}

fn u64_at(body: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(body[at..at + 8].try_into().unwrap())
}

#[tokio::test]
async fn realtime_is_unix_time_and_the_monotonic_clock_counts_up_from_the_calls_start() {
    let h = Harness::new(Limits::default()).await;
    // Body: realtime at 0, monotonic at 8, monotonic again after some work at 16, the
    // process CPU clock at 24, then the errno of each read (4 bytes from 32) and of an
    // unknown clock (at 36), whose output slot (40) must stay untouched.
    let guest = wasi_out_guest(
        r#"(i32.store8 (i32.const 4128) (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 4096)))
           (i32.store8 (i32.const 4129) (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 4104)))
           (block $done (loop $work
               (br_if $done (i32.ge_u (local.get $i) (i32.const 1000000)))
               (local.set $i (i32.add (local.get $i) (i32.const 1)))
               (br $work)))
           (i32.store8 (i32.const 4130) (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 4112)))
           (i32.store8 (i32.const 4131) (call $clock_time_get (i32.const 2) (i64.const 1) (i32.const 4120)))
           (i64.store (i32.const 4136) (i64.const -1))
           (i32.store8 (i32.const 4132) (call $clock_time_get (i32.const 9) (i64.const 1) (i32.const 4136)))"#,
    );
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let body = body_of(&h, "clocks", &guest).await;
    let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    assert_eq!(
        &body[32..37],
        &[0, 0, 0, 0, 28],
        "errnos; EINVAL for clock 9"
    );
    assert_eq!(u64_at(&body, 40), u64::MAX, "nothing written for clock 9");

    let realtime = Duration::from_nanos(u64_at(&body, 0));
    assert!(
        before <= realtime && realtime <= after,
        "realtime {realtime:?} is not between {before:?} and {after:?}"
    );
    let (first, second) = (u64_at(&body, 8), u64_at(&body, 16));
    assert!(
        first < second,
        "the monotonic clock went from {first} to {second} across a million iterations"
    );
    // It counts from the call's start, not from some far epoch.
    assert!(Duration::from_nanos(second) < after - before, "{second}ns");
    let cpu = u64_at(&body, 24);
    assert!(
        second <= cpu && Duration::from_nanos(cpu) < after - before,
        "{cpu}ns"
    );
}

#[tokio::test]
async fn random_get_fills_the_buffer_with_fresh_bytes_each_time() {
    let h = Harness::new(Limits::default()).await;
    // Two fills, 32 bytes at 4096 and 31 at 4128 (so 4159 keeps its 0xff), and their errnos
    // at 4160 and 4161.
    let guest = wasi_out_guest(
        r#"(memory.fill (i32.const 4096) (i32.const 0xff) (i32.const 64))
           (i32.store8 (i32.const 4160) (call $random_get (i32.const 4096) (i32.const 32)))
           (i32.store8 (i32.const 4161) (call $random_get (i32.const 4128) (i32.const 31)))"#,
    );
    let body = body_of(&h, "random", &guest).await;
    let other = body_of(&h, "random", &guest).await;
    assert_eq!(&body[64..66], &[0, 0], "errnos");
    assert_eq!(
        body[63], 0xff,
        "random_get wrote past the 31 bytes asked for"
    );
    let (first, second) = (&body[..32], &body[32..63]);
    for fill in [first, second, &other[..32]] {
        // From the OS generator, 8 zeros (or 8 untouched 0xff bytes) among 32 is about a
        // one-in-10^12 chance.
        let zeros = fill.iter().filter(|&&x| x == 0).count();
        let untouched = fill.iter().filter(|&&x| x == 0xff).count();
        assert!(zeros < 8 && untouched < 8, "{fill:?} does not look random");
    }
    assert_ne!(&first[..31], second, "two fills in one call are the same");
    assert_ne!(first, &other[..32], "two calls got the same bytes");
}

#[tokio::test]
async fn the_only_argument_is_the_function_name_and_the_environment_is_empty() {
    let h = Harness::new(Limits::default()).await;
    // Every out-slot starts as 0xff, so untouched bytes show. Body: argc at 0, argv buffer
    // size at 4, argv[0] at 8 (argv[1] at 12 must stay untouched), the argv strings from 16;
    // environ count at 64, size at 68, environ[0] at 72 (untouched), its buffer from 76;
    // the errnos of the four calls at 120..124.
    let guest = wasi_out_guest(
        r#"(memory.fill (i32.const 4096) (i32.const 0xff) (i32.const 128))
           (i32.store8 (i32.const 4216) (call $args_sizes_get (i32.const 4096) (i32.const 4100)))
           (i32.store8 (i32.const 4217) (call $args_get (i32.const 4104) (i32.const 4112)))
           (i32.store8 (i32.const 4218) (call $environ_sizes_get (i32.const 4160) (i32.const 4164)))
           (i32.store8 (i32.const 4219) (call $environ_get (i32.const 4168) (i32.const 4172)))"#,
    );
    let body = body_of(&h, "argv-reader", &guest).await;
    assert_eq!(&body[120..124], &[0, 0, 0, 0], "errnos");

    let argv0 = b"argv-reader\0";
    assert_eq!(u32_at(&body, 0), 1, "argc");
    assert_eq!(u32_at(&body, 4) as usize, argv0.len(), "argv buffer size");
    assert_eq!(u32_at(&body, 8), 4112, "argv[0] points into the buffer");
    assert_eq!(u32_at(&body, 12), u32::MAX, "argv has one entry");
    assert_eq!(&body[16..16 + argv0.len()], argv0);
    assert_eq!(body[16 + argv0.len()], 0xff, "nothing written past argv[0]");

    assert_eq!(
        (u32_at(&body, 64), u32_at(&body, 68)),
        (0, 0),
        "environ sizes"
    );
    assert!(
        body[72..120].iter().all(|&x| x == 0xff),
        "environ_get wrote into an empty environment's buffers: {:?}",
        &body[72..120]
    );
}
