//! The executor's per-call path: admission, cached module, fresh instance, request hand-over,
//! `handle`, response read, and the hop to and from a wasm worker thread, for the echo in the
//! fwasm ABI and as a proxy-wasm filter; and a chain of ten
//! calls, each chaining the next and awaiting it (park, place, run, report, wake, resume); and
//! calls restored from a snapshot of 0 to 16 MiB of initialised memory, against doing that
//! initialisation in every call; and a function's first call on another executor, which
//! restores the snapshot the first one shared, against initialising there; and a call whose
//! memory holds a 64 KiB stack against one holding Faasm's 4 MiB; and a Faasm C++ function
//! whose zygote wrote 4 MiB, when FWASM_BENCH_ZYGOTE_WASM names it built.
//!
//! cargo bench -p fwasm-executor --bench call_path

mod support;

use std::sync::Arc;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fwasm_executor::{Executor, ExecutorConfig};
use fwasm_proto::api::{ExecutorApi, StateApi};
use fwasm_proto::pb::{Call, CallStatus};

const ECHO: &[u8] = include_bytes!("../../fwasm/demo/echo.wasm");
/// The same echo as a proxy-wasm filter (proxy-wasm Rust SDK, same stack size).
const PROXY_ECHO: &[u8] = include_bytes!("../../fwasm/demo/proxy-echo.wasm");

fn call_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _entered = runtime.enter();
    let (state, scheduler, _data) = support::platform(&runtime);
    let executor = Executor::new(ExecutorConfig::default(), state.clone(), scheduler.clone());

    // The fwasm-ABI echo and the proxy-wasm echo, one after the other in the same run.
    for (function, wasm) in [("echo", ECHO), ("proxy-echo", PROXY_ECHO)] {
        let module_hash = support::put(&runtime, &state, function, wasm.to_vec());
        let mut group = c.benchmark_group(format!("executor/{function}"));
        for size in [16usize, 64 << 10] {
            let call = Call {
                id: 1,
                user: "bench".into(),
                function: function.into(),
                method: "POST".into(),
                path: format!("/f/bench/{function}"),
                input: vec![b'x'; size].into(),
                module_hash: module_hash.clone(),
                ..Call::default()
            };
            // Warm the module cache and check the path works before timing it.
            let result = runtime.block_on(executor.execute(call.clone())).unwrap();
            assert_eq!(
                (result.status(), result.output.len()),
                (CallStatus::Success, size),
                "{function}: {result:?}"
            );
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_with_input(BenchmarkId::from_parameter(size), &call, |b, call| {
                b.to_async(&runtime).iter(|| executor.execute(call.clone()))
            });
        }
        group.finish();
    }

    // Initialisation that computes `mib` MiB of memory: restored from its snapshot on every
    // call, against the same work done in every call (what a call costs without snapshots).
    for (group, snapshot) in [
        ("executor/snapshot_restore", true),
        ("executor/init_every_call", false),
    ] {
        let mut group = c.benchmark_group(group);
        group.sample_size(20);
        for mib in [0u32, 1, 4, 16] {
            let function = format!("init{mib}{}", if snapshot { "s" } else { "e" });
            let wasm = wat::parse_str(initialising(mib, snapshot)).unwrap();
            let module_hash = support::put(&runtime, &state, &function, wasm);
            let call = Call {
                id: 1,
                user: "bench".into(),
                function,
                module_hash,
                ..Call::default()
            };
            let result = runtime.block_on(executor.execute(call.clone())).unwrap();
            assert_eq!(result.status(), CallStatus::Success, "{result:?}");
            group.bench_with_input(
                BenchmarkId::from_parameter(format!("{mib}MiB")),
                &call,
                |b, call| b.to_async(&runtime).iter(|| executor.execute(call.clone())),
            );
        }
        group.finish();
    }

    // A Faasm C++ function whose zygote builds a 4 MiB table
    // (integration/functions-c/zygote_table.cpp), restored into every call; built with
    // `fwasm build` beforehand, as this crate cannot run clang and sdk-c itself.
    match std::env::var_os("FWASM_BENCH_ZYGOTE_WASM") {
        Some(path) => {
            let wasm = std::fs::read(&path).expect("FWASM_BENCH_ZYGOTE_WASM names a module");
            let module_hash = support::put(&runtime, &state, "zygote_table", wasm);
            let call = Call {
                id: 1,
                user: "bench".into(),
                function: "zygote_table".into(),
                input: "77".into(),
                module_hash,
                ..Call::default()
            };
            let mapped = executor.snapshots_mapped();
            let result = runtime.block_on(executor.execute(call.clone())).unwrap();
            assert_eq!(result.status(), CallStatus::Success, "{result:?}");
            assert_eq!(
                executor.snapshots_mapped(),
                mapped + 1,
                "the snapshot is mapped"
            );
            c.bench_with_input(
                BenchmarkId::new("executor/zygote_cpp", "4MiB"),
                &call,
                |b, call| b.to_async(&runtime).iter(|| executor.execute(call.clone())),
            );
        }
        None => eprintln!(
            "executor/zygote_cpp skipped: run `fwasm build integration/functions-c/zygote_table.cpp \
             -o zygote_table.wasm` and set FWASM_BENCH_ZYGOTE_WASM to the module"
        ),
    }

    // A program that does nothing, its memory as a Faasm function's would be laid out with
    // fwasm's 64 KiB stack and with Faasm's 4 MiB one (stack first, then a page of data):
    // what the larger stack costs every call.
    let mut group = c.benchmark_group("executor/stack");
    for (name, pages) in [("64KiB", 2u32), ("4MiB", 65)] {
        let function = format!("stack{name}");
        let wat =
            format!(r#"(module (memory (export "memory") {pages}) (func (export "_start")))"#);
        let module_hash = support::put(&runtime, &state, &function, wat::parse_str(wat).unwrap());
        let call = Call {
            id: 1,
            user: "bench".into(),
            function,
            module_hash,
            ..Call::default()
        };
        let result = runtime.block_on(executor.execute(call.clone())).unwrap();
        assert_eq!(result.status(), CallStatus::Success, "{result:?}");
        group.bench_with_input(BenchmarkId::from_parameter(name), &call, |b, call| {
            b.to_async(&runtime).iter(|| executor.execute(call.clone()))
        });
    }
    group.finish();

    // The first call of a function on an executor that has no snapshot of it yet, the state
    // service reached over gRPC on loopback: restored from the snapshot another executor shared,
    // against initialising (sharing off). Each iteration is a new executor; both fetch and
    // compile the module the same way.
    let remote = state_over_grpc(&runtime, state.clone());
    let fresh_executor = |share_snapshots: bool| {
        let config = ExecutorConfig {
            workers: 1,
            share_snapshots,
            ..ExecutorConfig::default()
        };
        Executor::new(config, remote.clone(), scheduler.clone())
    };
    let mut group = c.benchmark_group("executor/first_call_elsewhere");
    group.sample_size(10);
    // Sixteen rounds of work per word (about ten fuel a byte): an init worth sharing.
    for mib in [1u32, 4, 16] {
        let function = format!("shared{mib}");
        let wasm = wat::parse_str(initialising_with(mib, true, 16)).unwrap();
        let module_hash = support::put(&runtime, &state, &function, wasm);
        let call = Call {
            id: 1,
            user: "bench".into(),
            function: function.clone(),
            module_hash: module_hash.clone(),
            ..Call::default()
        };
        // One executor takes the snapshot and shares it.
        let result = runtime.block_on(fresh_executor(true).execute(call.clone()));
        assert_eq!(result.unwrap().status(), CallStatus::Success);
        let shared = fwasm_executor::shared_snapshot_ref("bench", &function, &module_hash, &[]);
        let mut patience = 500;
        while !runtime
            .block_on(state.get_snapshot(shared.clone()))
            .unwrap()
            .found
        {
            patience -= 1;
            assert!(patience > 0, "the {mib} MiB snapshot was not shared");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        for (arm, share) in [("fetches", true), ("initialises", false)] {
            let id = BenchmarkId::new(arm, format!("{mib}MiB"));
            group.bench_with_input(id, &call, |b, call| {
                b.to_async(&runtime).iter_batched(
                    || fresh_executor(share),
                    |executor| async move {
                        let result = executor.execute(call.clone()).await.unwrap();
                        assert_eq!(result.status(), CallStatus::Success);
                        assert_eq!(executor.snapshots_fetched(), u64::from(share));
                        // Dropped (its threads stopped) outside the measurement.
                        executor
                    },
                    BatchSize::PerIteration,
                )
            });
        }
    }
    group.finish();

    let nest = wat::parse_str(NEST).unwrap();
    let module_hash = support::put(&runtime, &state, "nest", nest);
    let chain = Call {
        id: 1,
        user: "bench".into(),
        function: "nest".into(),
        input: 10u64.to_le_bytes().to_vec().into(),
        module_hash,
        ..Call::default()
    };
    let result = runtime.block_on(executor.execute(chain.clone())).unwrap();
    assert_eq!(result.status(), CallStatus::Success, "{result:?}");
    c.bench_function("executor/chain/10", |b| {
        b.to_async(&runtime)
            .iter(|| executor.execute(chain.clone()))
    });
}

/// `state` served over gRPC on a loopback port, and a client of it.
fn state_over_grpc(
    runtime: &tokio::runtime::Runtime,
    state: Arc<dyn StateApi>,
) -> Arc<dyn StateApi> {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let service = fwasm_proto::grpc::StateServer(state).into_service();
    runtime.spawn(fwasm_proto::grpc::serve(
        listener,
        service,
        None,
        std::future::pending(),
    ));
    fwasm_proto::grpc::connect_state(&addr, None).unwrap()
}

/// A guest whose initialisation computes `mib` MiB of memory past its first page (a loop of
/// stores), as `fwasm_init` when `snapshot`, else at the start of every call.
fn initialising(mib: u32, snapshot: bool) -> String {
    initialising_with(mib, snapshot, 0)
}

/// [`initialising`], each word's value taking `rounds` more multiplications and additions.
fn initialising_with(mib: u32, snapshot: bool, rounds: usize) -> String {
    let work = "(local.set $v (i32.add (i32.mul (local.get $v) (i32.const 31)) (local.get $i)))"
        .repeat(rounds);
    let fill = format!(
        r#"(func $fill (local $i i32) (local $v i32)
            (drop (memory.grow (i32.const {pages})))
            (local.set $i (i32.const 65536))
            (block $done (loop $next
                (br_if $done (i32.ge_u (local.get $i) (i32.const {end})))
                (local.set $v (i32.mul (local.get $i) (local.get $i)))
                {work}
                (i32.store (local.get $i) (local.get $v))
                (local.set $i (i32.add (local.get $i) (i32.const 4)))
                (br $next))))"#,
        pages = mib * 16,
        end = 65536 + (mib << 20)
    );
    let (init, per_call) = match snapshot {
        true => (r#"(func (export "fwasm_init") (call $fill))"#, ""),
        false => ("", "(call $fill)"),
    };
    format!(
        r#"(module
            (memory (export "memory") 1)
            (data (i32.const 100) "\01\c8\00\00\00\00\00\02\00\00\00hi")
            (func (export "fwasm_abi_v1"))
            (func (export "fwasm_alloc") (param i32) (result i32) i32.const 1024)
            {fill}
            {init}
            (func (export "fwasm_handle") (param i32 i32) (result i64)
                {per_call}
                i64.const 429496729613))"#
    )
}

/// Input: a depth as 8 little-endian bytes. Above 1, chains itself with depth - 1 and awaits it.
const NEST: &str = r#"(module
    (import "fwasm_v1" "chain" (func $chain (param i32 i32 i32 i32) (result i64)))
    (import "fwasm_v1" "await" (func $await (param i64 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 100) "\01\c8\00\00\00\00\00\02\00\00\00hi")
    (data (i32.const 300) "nest")
    (func (export "fwasm_abi_v1"))
    (func (export "fwasm_alloc") (param i32) (result i32) i32.const 1024)
    (func (export "fwasm_handle") (param $p i32) (param $n i32) (result i64)
        (local $depth i64) (local $id i64)
        (local.set $depth
            (i64.load (i32.sub (i32.add (local.get $p) (local.get $n)) (i32.const 8))))
        (if (i64.gt_u (local.get $depth) (i64.const 1)) (then
            (i64.store (i32.const 400) (i64.sub (local.get $depth) (i64.const 1)))
            (local.set $id (call $chain (i32.const 300) (i32.const 4) (i32.const 400) (i32.const 8)))
            (if (i64.le_s (local.get $id) (i64.const 0)) (then unreachable))
            (if (call $await (local.get $id) (i32.const -1)) (then unreachable))))
        i64.const 429496729613))"#;

criterion_group!(benches, call_path);
criterion_main!(benches);
