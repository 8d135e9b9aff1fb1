//! Snapshots: a function's initialisation runs once per executor, and every call starts from
//! what it left, never from what an earlier call wrote.

mod support;

use fwasm_executor::Limits;
use fwasm_proto::pb::{CallStatus, FailureKind};
use support::{Harness, assert_failed, guest};

/// A reply envelope at 300 with the 3-byte body "abc" (at 311), and `init` as `fwasm_init`.
fn initialising(init: &str, handle: &str) -> String {
    guest(
        &format!("{handle} i64.const 1288490188814"),
        &format!(
            r#"(data (i32.const 300) "\01\c8\00\00\00\00\00\03\00\00\00abc")
               (global $g (export "g") (mut i32) (i32.const 0))
               (func (export "fwasm_init") {init})"#
        ),
    )
}

/// Initialisation writes the body's first byte, sets an exported global and grows memory;
/// each call bumps the second byte and the global, and writes the global into the third.
const INIT: &str = r#"
    (i32.store8 (i32.const 311) (i32.const 73))
    (global.set $g (i32.const 5))
    (drop (memory.grow (i32.const 1)))
    (i32.store8 (i32.const 65546) (i32.const 90))"#;
const HANDLE: &str = r#"
    (if (i32.ne (i32.load8_u (i32.const 65546)) (i32.const 90)) (then unreachable))
    (i32.store8 (i32.const 312) (i32.add (i32.load8_u (i32.const 312)) (i32.const 1)))
    (global.set $g (i32.add (global.get $g) (i32.const 2)))
    (i32.store8 (i32.const 313) (i32.add (global.get $g) (i32.const 90)))"#;

#[tokio::test]
async fn every_call_starts_from_what_initialisation_left_and_it_runs_once() {
    let h = Harness::new(Limits::default()).await;
    let wat = initialising(INIT, HANDLE);
    for _ in 0..3 {
        let result = h.run_as("u", &wat).await;
        assert_eq!(result.status(), CallStatus::Success, "{result:?}");
        // 'I' from init; 'b' + 1, never + 2; 5 + 2 + 90 = 'a', never 5 + 4.
        assert_eq!(&result.output[..], b"Ica");
    }
    assert_eq!(h.executor.snapshots_taken(), 1);
    // Another user's function of the same module has its own.
    let other = h.run_as("v", &wat).await;
    assert_eq!(&other.output[..], b"Ica");
    assert_eq!(h.executor.snapshots_taken(), 2);
    // Many at once: initialised once, the others wait for it.
    let h = std::sync::Arc::new(h);
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let (h, wat) = (h.clone(), wat.clone());
            tokio::spawn(async move { h.run_as("w", &wat).await })
        })
        .collect();
    for call in calls {
        let result = call.await.unwrap();
        assert_eq!(&result.output[..], b"Ica", "{result:?}");
    }
    assert_eq!(h.executor.snapshots_taken(), 3);
}

/// [`INIT`], then four more pages filled with 'Z': a snapshot large enough to be kept as an
/// image mapped under each call's memory (its first page holds the data segment init wrote
/// into, which instantiation writes over again).
fn large_init() -> String {
    format!(
        r#"{INIT}
           (drop (memory.grow (i32.const 4)))
           (memory.fill (i32.const 131072) (i32.const 90) (i32.const 262144))"#
    )
}

/// [`HANDLE`], and each call checks the filled pages, writes over them, and grows the memory
/// by a page that must read as zeros before writing into it.
const LARGE_HANDLE: &str = r#"
    (if (i32.ne (i32.load8_u (i32.const 131072)) (i32.const 90)) (then unreachable))
    (if (i32.ne (i32.load8_u (i32.const 393215)) (i32.const 90)) (then unreachable))
    (memory.fill (i32.const 131072) (i32.const 1) (i32.const 262144))
    (if (i32.ne (memory.grow (i32.const 1)) (i32.const 6)) (then unreachable))
    (if (i32.ne (i32.load8_u (i32.const 393216)) (i32.const 0)) (then unreachable))
    (if (i32.ne (i32.load8_u (i32.const 458751)) (i32.const 0)) (then unreachable))
    (i32.store8 (i32.const 458751) (i32.const 7))"#;

/// A module with a 128 KiB data segment of 'K's on its third and fourth pages, which its
/// initialisation never touches while it fills enough other pages to be mapped: large enough
/// for its instances over the image to be made without the segment (see `data_segments`).
fn untouched_segment() -> String {
    let ks = "K".repeat(131072);
    format!(
        r#"(module
    (import "fwasm_v1" "log" (func $log (param i32 i32 i32) (result i32)))
    (memory (export "memory") 4)
    (data (i32.const 100) "\01\c8\00\00\00\00\00\02\00\00\00hi")
    (data (i32.const 131072) "{ks}")
    (func (export "fwasm_abi_v1"))
    (func (export "fwasm_alloc") (param i32) (result i32) i32.const 1024)
    (func (export "fwasm_init")
        (memory.fill (i32.const 65536) (i32.const 90) (i32.const 65536))
        (drop (memory.grow (i32.const 2)))
        (memory.fill (i32.const 262144) (i32.const 90) (i32.const 131072)))
    (func (export "fwasm_handle") (param i32 i32) (result i64)
        (if (i32.ne (i32.load8_u (i32.const 131172)) (i32.const 75)) (then unreachable))
        (if (i32.ne (i32.load8_u (i32.const 262143)) (i32.const 75)) (then unreachable))
        (i32.store8 (i32.const 131172) (i32.const 0))
        (i32.store8 (i32.const 262143) (i32.const 0))
        i64.const 429496729613))"#
    )
}

#[tokio::test]
async fn a_data_segment_initialisation_left_alone_is_in_the_image_calls_are_made_over() {
    let h = Harness::new(Limits::default()).await;
    // Each call finds the segment's byte, then clears it: the next must find it again.
    for _ in 0..4 {
        let result = h.run_as("u", &untouched_segment()).await;
        assert_eq!(result.status(), CallStatus::Success, "{result:?}");
        assert_eq!(&result.output[..], b"hi");
    }
    assert_eq!(h.executor.snapshots_mapped(), 1);
    assert_eq!(h.executor.restores_over_images(), 4);
}

#[tokio::test]
async fn a_large_snapshot_mapped_under_each_call_is_what_initialisation_left() {
    let h = std::sync::Arc::new(Harness::new(Limits::default()).await);
    let wat = initialising(&large_init(), &format!("{LARGE_HANDLE} {HANDLE}"));
    for _ in 0..3 {
        let result = h.run_as("u", &wat).await;
        assert_eq!(result.status(), CallStatus::Success, "{result:?}");
        // 'I' (init's write over the data segment) survives instantiation writing it again.
        assert_eq!(&result.output[..], b"Ica");
    }
    assert_eq!(
        (h.executor.snapshots_taken(), h.executor.snapshots_mapped()),
        (1, 1)
    );
    // Many at once, each over its own mapping.
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let (h, wat) = (h.clone(), wat.clone());
            tokio::spawn(async move { h.run_as("u", &wat).await })
        })
        .collect();
    for call in calls {
        let result = call.await.unwrap();
        assert_eq!(&result.output[..], b"Ica", "{result:?}");
    }
    // The regions those calls used read as zeros for a function without a snapshot.
    let zeros = guest(
        r#"(if (i32.ne (memory.grow (i32.const 7)) (i32.const 1)) (then unreachable))
           (if (i32.ne (i32.load8_u (i32.const 65546)) (i32.const 0)) (then unreachable))
           (if (i32.ne (i32.load8_u (i32.const 200000)) (i32.const 0)) (then unreachable))
           (if (i32.ne (i32.load8_u (i32.const 458751)) (i32.const 0)) (then unreachable))
           i64.const 429496729613"#,
        "",
    );
    for _ in 0..4 {
        let result = h.run_as("u", &zeros).await;
        assert_eq!(&result.output[..], b"hi", "{result:?}");
    }
    // A small snapshot is copied in: nothing to gain from a mapping.
    let small = h.run_as("v", &initialising(INIT, HANDLE)).await;
    assert_eq!(&small.output[..], b"Ica", "{small:?}");
    assert_eq!(h.executor.snapshots_mapped(), 1);
    // The large one counts its image's length (6 pages), the small one its 2 changed pages.
    assert_eq!(h.executor.snapshot_bytes(), (6 + 2) * 65536);
    // Every call of the large one was made over the image (the first restored too).
    assert_eq!(h.executor.restores_over_images(), 3 + 8);
}

#[tokio::test]
async fn an_initialisation_that_traps_or_loops_fails_every_call_saying_why() {
    let h = Harness::new(Limits {
        max_fuel: 1_000_000,
        fuel_slice: 10_000,
        ..Limits::default()
    })
    .await;
    let trapping = initialising("unreachable", HANDLE);
    for _ in 0..2 {
        let result = h.run_as("u", &trapping).await;
        assert_failed(
            &result,
            FailureKind::Trap,
            "cannot start: its initialisation (fwasm_init) failed: u/",
        );
    }
    assert_eq!(h.executor.snapshots_taken(), 1, "tried once");
    let looping = initialising("(loop $forever (br $forever))", HANDLE);
    let result = h.run_as("u", &looping).await;
    assert_failed(
        &result,
        FailureKind::CpuLimit,
        "its initialisation (fwasm_init) failed",
    );
    assert!(result.error.contains("CPU budget"), "{}", result.error);
}

#[tokio::test]
async fn initialisation_cannot_use_imports_that_wait() {
    // fwasm v1's `state_pull` parks the call; during initialisation it is refused, and the
    // init keeps the status it got ('0' + status) as the body's first byte.
    let init = r#"(i32.store8 (i32.const 311)
        (i32.add (i32.const 48) (call $state_pull (i32.const 200) (i32.const 1))))"#;
    let wat = initialising(init, "").replace(
        r#"(import "fwasm_v1" "fail""#,
        r#"(import "fwasm_v1" "state_pull" (func $state_pull (param i32 i32) (result i32)))
           (import "fwasm_v1" "fail""#,
    );
    let h = Harness::new(Limits::default()).await;
    let result = h.run_as("u", &wat).await;
    assert_eq!(result.status(), CallStatus::Success, "{result:?}");
    let unavailable = fwasm_abi::HostStatus::Unavailable.code();
    assert_eq!(result.output[0] as i32, 48 + unavailable, "{result:?}");
}

#[tokio::test]
async fn a_module_without_initialisation_takes_no_snapshot() {
    let h = Harness::new(Limits::default()).await;
    let result = h.run_as("u", &guest(support::RETURN_HI, "")).await;
    support::assert_hi(&result);
    assert_eq!(h.executor.snapshots_taken(), 0);
}

#[tokio::test]
async fn an_initialisation_of_the_wrong_type_is_refused_with_its_signature() {
    let h = Harness::new(Limits::default()).await;
    let wat = guest(
        support::RETURN_HI,
        r#"(func (export "fwasm_init") (param i32))"#,
    );
    let refused = h.try_run(&wat).await.unwrap_err();
    assert!(
        refused.message.contains("fwasm_init") && refused.message.contains("() -> ()"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn random_numbers_differ_between_calls_restored_from_one_snapshot() {
    // The body is 8 bytes at 311; init fills them with random bytes, each call again.
    let wat = format!(
        r#"(module
            (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
            (memory (export "memory") 1)
            (data (i32.const 300) "\01\c8\00\00\00\00\00\08\00\00\00........")
            (func (export "fwasm_abi_v1"))
            (func (export "fwasm_alloc") (param i32) (result i32) i32.const 1024)
            (func (export "fwasm_init") (drop (call $random (i32.const 311) (i32.const 8))))
            (func (export "fwasm_handle") (param i32 i32) (result i64)
                (drop (call $random (i32.const 311) (i32.const 8)))
                i64.const {}))"#,
        (300u64 << 32) | 19
    );
    let h = Harness::new(Limits::default()).await;
    let first = h.run_as("u", &wat).await;
    let second = h.run_as("u", &wat).await;
    assert_eq!(first.status(), CallStatus::Success, "{first:?}");
    assert_eq!(first.output.len(), 8);
    assert_ne!(first.output, second.output);
    assert_eq!(h.executor.snapshots_taken(), 1);
}

#[test]
fn an_upload_runs_initialisation_once_and_refuses_one_that_fails_for_sure() {
    let wasm = |init: &str| wat::parse_str(initialising(init, HANDLE)).unwrap();
    assert!(fwasm_executor::validate(&wasm(INIT)).is_ok());
    let refused = fwasm_executor::validate(&wasm("unreachable")).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "module failed in its initialisation, which runs before its first call: fwasm_init \
         failed: wasm `unreachable` instruction executed"
    );
    // One that outlasts the check's budget may still finish within a call's: not refused.
    assert!(fwasm_executor::validate(&wasm("(loop $forever (br $forever))")).is_ok());
    // Names the executor keeps for itself are refused.
    let reserved = initialising(INIT, HANDLE).replace(
        r#"(global $g (export "g")"#,
        r#"(global $g (export "fwasm:global:0")"#,
    );
    let refused = fwasm_executor::validate(&wat::parse_str(reserved).unwrap()).unwrap_err();
    assert!(
        refused.to_string().contains("`fwasm:global:0`"),
        "{refused}"
    );
    // A Faasm zygote's status counts.
    let zygote = |status: i32| {
        let wat = initialising("", HANDLE).replace(
            r#"(func (export "fwasm_abi_v1"))"#,
            &format!(
                r#"(func (export "fwasm_abi_v1")) (func (export "fwasm_faasm_api"))
                   (func (export "_faasm_zygote") (result i32) i32.const {status})"#
            ),
        );
        fwasm_executor::validate(&wat::parse_str(wat).unwrap())
    };
    assert!(zygote(0).is_ok());
    let refused = zygote(3).unwrap_err().to_string();
    assert!(refused.ends_with("_faasm_zygote returned 3"), "{refused}");
}

#[tokio::test]
async fn initialisation_sees_the_function_not_the_call_that_came_first() {
    // Init keeps argc ('0' + argc) as the body's first byte; the first call has a command
    // line of three words, which must not reach the snapshot every later call starts from.
    let init = r#"(drop (call $args_sizes_get (i32.const 400) (i32.const 404)))
        (i32.store8 (i32.const 311) (i32.add (i32.const 48) (i32.load (i32.const 400))))"#;
    let wat = initialising(init, "").replace(
        r#"(import "fwasm_v1" "fail""#,
        r#"(import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
           (import "fwasm_v1" "fail""#,
    );
    let h = Harness::new(Limits::default()).await;
    let hash = h.add_function_of("u", "argv", &wat).await;
    let call = |cmdline: &str| fwasm_proto::pb::Call {
        user: "u".into(),
        function: "argv".into(),
        module_hash: hash.clone(),
        cmdline: cmdline.into(),
        ..Default::default()
    };
    let first = h.place_and_execute(call("one two three")).await;
    assert_eq!(first.status(), CallStatus::Success, "{first:?}");
    assert_eq!(
        first.output[0], b'1',
        "argv is the function's name alone: {first:?}"
    );
}

#[tokio::test]
async fn snapshots_past_their_byte_budget_are_dropped_and_taken_again() {
    // Each snapshot holds two pages (64 KiB each): the body's page and the grown one.
    let h = Harness::with_config(fwasm_executor::ExecutorConfig {
        workers: 2,
        max_snapshot_bytes: 3 * 65536,
        ..Default::default()
    })
    .await;
    let wat = initialising(INIT, HANDLE);
    for user in ["a", "b", "a"] {
        let result = h.run_as(user, &wat).await;
        assert_eq!(&result.output[..], b"Ica", "{result:?}");
        assert!(h.executor.snapshot_bytes() <= 3 * 65536);
    }
    // a's was dropped to make room for b's, so a's second call took it again.
    assert_eq!(h.executor.snapshots_taken(), 3);
}

#[tokio::test]
async fn a_prepared_function_is_ready_before_its_first_call() {
    use fwasm_proto::api::ExecutorApi;
    let h = Harness::new(Limits::default()).await;
    let hash = h
        .add_function_of("u", "ready", &initialising(INIT, HANDLE))
        .await;
    let info = fwasm_proto::pb::FunctionInfo {
        user: "u".into(),
        function: "ready".into(),
        module_hash: hash.clone(),
        ..Default::default()
    };
    h.executor.prepare(info).await.unwrap();
    assert_eq!(h.executor.snapshots_taken(), 1);
    let call = fwasm_proto::pb::Call {
        user: "u".into(),
        function: "ready".into(),
        module_hash: hash,
        ..Default::default()
    };
    let first = h.place_and_execute(call).await;
    assert_eq!(&first.output[..], b"Ica", "{first:?}");
    assert!(!first.cold_start, "{first:?}");
    assert_eq!(h.executor.snapshots_taken(), 1);
}

/// [`INIT`] after a loop of two million rounds: an initialisation that costs more than
/// fetching its snapshot, so the executor that runs it shares the snapshot.
fn costly_init() -> String {
    costly(INIT)
}

/// `init` after a loop of two million rounds.
fn costly(init: &str) -> String {
    format!(
        r#"(local $n i32)
           (local.set $n (i32.const 2000000))
           (loop $again
             (local.set $n (i32.sub (local.get $n) (i32.const 1)))
             (br_if $again (local.get $n)))
           {init}"#
    )
}

/// Waits (up to 10 s) until the state service keeps a snapshot for `shared` other than `old`:
/// sharing runs after the call that took the snapshot.
async fn until_shared(h: &Harness, shared: &fwasm_proto::pb::SnapshotRef, old: Option<&[u8]>) {
    use fwasm_proto::api::StateApi;
    for _ in 0..1000 {
        let stored = h.state.get_snapshot(shared.clone()).await.unwrap();
        if stored.found && old != Some(&stored.image[..]) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no snapshot was shared (or it was not replaced)");
}

fn call_of(user: &str, function: &str, module_hash: &str) -> fwasm_proto::pb::Call {
    fwasm_proto::pb::Call {
        user: user.into(),
        function: function.into(),
        module_hash: module_hash.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_snapshot_one_executor_took_is_restored_by_another_without_initialising() {
    let h = Harness::new(Limits::default()).await;
    let wat = initialising(&costly_init(), HANDLE);
    let second = restored_by_a_second_executor(&h, "costly", &wat).await;
    assert_eq!(h.executor.snapshots_taken(), 1);
    assert_eq!(
        (second.snapshots_taken(), second.snapshots_fetched()),
        (0, 1)
    );
}

/// Calls `wat` as u/`function` on the harness's executor, which shares its snapshot, then
/// three times on a second executor, which gives the same results: init's writes, never an
/// earlier call's. The second executor.
async fn restored_by_a_second_executor(
    h: &Harness,
    function: &str,
    wat: &str,
) -> std::sync::Arc<fwasm_executor::Executor> {
    let hash = h.add_function_of("u", function, wat).await;
    let call = call_of("u", function, &hash);
    let first = h.place_and_execute(call.clone()).await;
    assert_eq!(&first.output[..], b"Ica", "{first:?}");
    // Shared after the call, off its path.
    let shared = fwasm_executor::shared_snapshot_ref("u", function, &hash, &[]);
    until_shared(h, &shared, None).await;
    let second = h.another_executor(fwasm_executor::ExecutorConfig {
        id: "second".into(),
        workers: 1,
        ..Default::default()
    });
    for _ in 0..3 {
        let result = h.place_and_execute_on(&second, call.clone()).await;
        assert_eq!(&result.output[..], b"Ica", "{result:?}");
    }
    second
}

#[tokio::test]
async fn a_large_shared_snapshot_is_mapped_by_the_executor_that_fetches_it() {
    let h = Harness::new(Limits::default()).await;
    let wat = initialising(&costly(&large_init()), &format!("{LARGE_HANDLE} {HANDLE}"));
    let second = restored_by_a_second_executor(&h, "large", &wat).await;
    assert_eq!(
        (second.snapshots_fetched(), second.snapshots_mapped()),
        (1, 1)
    );
    assert_eq!(second.restores_over_images(), 3);
}

#[tokio::test]
async fn a_shared_snapshot_that_does_not_fit_is_ignored_and_taken_again() {
    use fwasm_proto::api::StateApi;
    let h = Harness::new(Limits::default()).await;
    let hash = h
        .add_function_of("u", "costly", &initialising(&costly_init(), HANDLE))
        .await;
    let shared = fwasm_executor::shared_snapshot_ref("u", "costly", &hash, &[]);
    let image = |image: fwasm_proto::pb::SnapshotImage| fwasm_proto::pb::PutSnapshotRequest {
        snapshot: Some(shared.clone()),
        image: prost::Message::encode_to_vec(&image).into(),
    };
    let global = |name: &str| fwasm_proto::pb::SnapshotGlobal {
        name: name.into(),
        value: Some(fwasm_proto::pb::snapshot_global::Value::I32(1)),
    };
    let misfits = [
        fwasm_proto::pb::PutSnapshotRequest {
            snapshot: Some(shared.clone()),
            image: bytes::Bytes::from_static(b"\xff\xff not a snapshot"),
        },
        image(fwasm_proto::pb::SnapshotImage {
            pages: 1 << 20,
            ..Default::default()
        }),
        image(fwasm_proto::pb::SnapshotImage {
            pages: 2,
            changed: vec![fwasm_proto::pb::SnapshotPage {
                index: 2,
                data: vec![0; 65536].into(),
            }],
            ..Default::default()
        }),
        image(fwasm_proto::pb::SnapshotImage {
            pages: 2,
            globals: vec![global("not_a_global")],
            ..Default::default()
        }),
        // Fewer pages than the module's memory starts with.
        image(fwasm_proto::pb::SnapshotImage {
            pages: 0,
            ..Default::default()
        }),
    ];
    for (n, misfit) in misfits.into_iter().enumerate() {
        let misfit_image = misfit.image.clone();
        h.state.put_snapshot(misfit).await.unwrap();
        let executor = h.another_executor(fwasm_executor::ExecutorConfig {
            id: format!("e{n}"),
            workers: 1,
            ..Default::default()
        });
        let result = h
            .place_and_execute_on(&executor, call_of("u", "costly", &hash))
            .await;
        assert_eq!(&result.output[..], b"Ica", "misfit {n}: {result:?}");
        assert_eq!(
            (executor.snapshots_taken(), executor.snapshots_fetched()),
            (1, 0),
            "misfit {n}"
        );
        // Its own snapshot replaces the misfit (after the call): wait for it, so the next
        // misfit is not replaced by it.
        until_shared(&h, &shared, Some(&misfit_image)).await;
    }
}
