//! MPI worlds: a clang-built MPI program (integration/functions-c/mpi_checks.c, sdk-c's
//! `mpi.h`) run as worlds of 1, 2, 4 and 8 ranks through `fwasm up`, started by gRPC's
//! `mpi_world_size` and Faasm's JSON message (faasmctl's planner batch: faasmctl.rs); and the
//! ways a world ends badly (a rank that traps, a receive nobody matches, `MPI_Abort`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fwasm_executor::{ExecutorConfig, Limits};
use fwasm_proto::pb::{CallResult, CallStatus, FailureKind, InvokeRequest};

use crate::c_guests::c_guest;
use crate::support::{Platform, mesh_with, test_executor_config, test_limits, up, up_with};

async fn with_mpi_checks(p: &Platform) {
    p.upload("mpi/checks", c_guest("mpi_checks.c")).await;
}

/// Runs `check` as a world of `size` ranks over gRPC.
async fn world(p: &Platform, size: u32, check: &str) -> CallResult {
    let request = InvokeRequest {
        user: "mpi".into(),
        function: "checks".into(),
        input: check.as_bytes().to_vec().into(),
        mpi_world_size: size,
        ..InvokeRequest::default()
    };
    let mut client = p.grpc_client().await;
    client.invoke(request).await.expect("Invoke").into_inner()
}

fn output(result: &CallResult) -> String {
    assert_eq!(
        result.status,
        CallStatus::Success as i32,
        "the world failed: {}\nstdout: {}",
        result.error,
        String::from_utf8_lossy(&result.stdout)
    );
    String::from_utf8_lossy(&result.output).into_owned()
}

/// What `userop` computes: the product, in rank order, of rank r's matrix [[r+2, r], [1, 1]]
/// (mod 1009), as "a b c d".
fn product(size: u32) -> String {
    let mut p = [1i64, 0, 0, 1];
    for r in 0..size as i64 {
        let m = [r + 2, r, 1, 1];
        p = [
            (p[0] * m[0] + p[1] * m[2]) % 1009,
            (p[0] * m[1] + p[1] * m[3]) % 1009,
            (p[2] * m[0] + p[3] * m[2]) % 1009,
            (p[2] * m[1] + p[3] * m[3]) % 1009,
        ];
    }
    format!("{} {} {} {}", p[0], p[1], p[2], p[3])
}

/// A state key no other test run uses.
fn fresh_key() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("barrier-{}", nanos.as_nanos())
}

#[tokio::test]
async fn every_check_passes_at_world_sizes_1_2_4_and_8() {
    let p = up().await;
    with_mpi_checks(&p).await;
    for size in [1u32, 2, 4, 8] {
        let n = size as i64;
        let sum = n * (n - 1) / 2;
        let expected = [
            ("ring", format!("got {}", (n - 1) % n)),
            ("allreduce", format!("sum={sum} max={}", n - 1)),
            ("bcast", "100 101 102 103".into()),
            ("scatter", format!("gathered 0..{}", 4 * n - 2)),
            ("alltoall", format!("last {}", (n - 1) * (n - 1))),
            ("scan", "prefix 1".into()),
            ("cart", format!("source {} dest {}", (n - 1) % n, 1 % n)),
            ("rma", format!("got {} from rank {}", 200 + 1 % n, 1 % n)),
            (
                "split",
                format!("halves {}+{} first {}", (n + 1) / 2, n / 2, (n + 1) / 2),
            ),
            ("waitall", format!("{} receives", n - 1)),
            ("probe", "probed".into()),
            ("userop", product(size)),
        ];
        for (check, computed) in expected {
            let result = world(&p, size, check).await;
            assert_eq!(
                output(&result),
                format!("{check} ok size={size} {computed}"),
                "at size {size}"
            );
        }
        let key = fresh_key();
        let result = world(&p, size, &format!("barrier {key}")).await;
        assert_eq!(
            output(&result),
            format!("barrier {key} ok size={size} 3 rounds")
        );
    }
    p.stop().await;
}

#[tokio::test]
async fn the_worlds_call_record_lists_every_rank() {
    let p = up().await;
    with_mpi_checks(&p).await;
    let result = world(&p, 4, "ring").await;
    output(&result);
    let record = p.record(result.id).await;
    assert_eq!(record.mpi_ranks, result.mpi_ranks);
    let ranks: Vec<u32> = record.mpi_ranks.iter().map(|r| r.rank).collect();
    assert_eq!(ranks, [0, 1, 2, 3]);
    assert_eq!(record.mpi_ranks[0].call_id, result.id);
    for rank in &record.mpi_ranks {
        assert_eq!(rank.status, CallStatus::Success as i32, "{rank:?}");
        assert!(!rank.executor_id.is_empty(), "{rank:?}");
        if rank.rank > 0 {
            // Each rank is a call of its own, chained by rank 0.
            let own = p.record(rank.call_id).await;
            assert_eq!(
                (own.parent_id, own.status),
                (result.id, CallStatus::Success as i32)
            );
        }
    }
    // A failed rank is listed with its reason.
    let failed = world(&p, 4, "trap").await;
    let trapped = &failed.mpi_ranks[3];
    assert_eq!(trapped.status, CallStatus::Failed as i32);
    assert!(trapped.error.contains("trapped"), "{trapped:?}");
    p.stop().await;
}

#[tokio::test]
async fn a_world_of_16_runs_on_2_workers_its_waiting_ranks_parked() {
    let p = up_with(ExecutorConfig {
        workers: 2,
        ..test_executor_config()
    })
    .await;
    with_mpi_checks(&p).await;
    for check in ["allreduce", "waitall"] {
        let result = world(&p, 16, check).await;
        assert!(output(&result).starts_with(&format!("{check} ok size=16")));
    }
    p.stop().await;
}

#[tokio::test]
async fn a_world_too_big_for_one_executor_spans_two() {
    // Two calls each: rank 0 and rank 1 fill the first executor, ranks 2 and 3 go to the
    // other, and reach the world on rank 0's executor over gRPC.
    let p = mesh_with(
        2,
        ExecutorConfig {
            max_concurrent_calls: 2,
            ..test_executor_config()
        },
    )
    .await;
    with_mpi_checks(&p).await;
    // In each of these every rank waits for rank 0, which is in MPI_Init until every rank has
    // started: no rank ends early and leaves room for the next on the first executor.
    let checks = [
        "ring",
        "allreduce",
        "bcast",
        "scatter",
        "alltoall",
        "scan",
        "cart",
        "split",
        "rma",
        "waitall",
        "userop",
    ];
    for check in checks {
        let result = world(&p, 4, check).await;
        assert!(
            output(&result).starts_with(&format!("{check} ok size=4")),
            "{check}"
        );
        let executors: std::collections::BTreeSet<_> = result
            .mpi_ranks
            .iter()
            .map(|r| r.executor_id.clone())
            .collect();
        assert_eq!(executors.len(), 2, "{check}: {:?}", result.mpi_ranks);
        assert!(
            result
                .mpi_ranks
                .iter()
                .all(|r| r.status == CallStatus::Success as i32)
        );
    }
    let key = fresh_key();
    let result = world(&p, 4, &format!("barrier {key}")).await;
    assert!(output(&result).ends_with("3 rounds"));
    let result = world(&p, 4, "probe").await;
    assert_eq!(output(&result), "probe ok size=4 probed");
    // A rank on the other executor that traps, or aborts, ends the world as one here does.
    let trapped = world(&p, 4, "trap").await;
    assert!(
        trapped.error.contains("rank 3 failed: mpi/checks trapped"),
        "{}",
        trapped.error
    );
    let aborted = world(&p, 4, "abort").await;
    assert_eq!(aborted.return_code, 7, "{}", aborted.error);
    assert!(
        aborted
            .error
            .contains("rank 3 called MPI_Abort with code 7"),
        "{}",
        aborted.error
    );
    p.stop().await;
}

#[tokio::test]
async fn faasms_json_message_starts_worlds_of_its_size_or_faasms_default() {
    let p = up().await;
    with_mpi_checks(&p).await;
    let message =
        r#"{"user": "mpi", "function": "checks", "input_data": "allreduce", "mpi_world_size": 4}"#;
    assert_eq!(
        p.post_message(message).await,
        (200, "allreduce ok size=4 sum=6 max=3\n".into())
    );
    // `mpi` without a size: Faasm's default world of 5.
    let message = r#"{"user": "mpi", "function": "checks", "input_data": "ring", "mpi": true}"#;
    assert_eq!(
        p.post_message(message).await,
        (200, "ring ok size=5 got 4\n".into())
    );
    p.stop().await;
}

#[tokio::test]
async fn fwasm_invoke_mpi_runs_a_world() {
    let p = up().await;
    with_mpi_checks(&p).await;
    let input = fwasm::client::CallInput {
        input: b"scan".to_vec(),
        mpi_world_size: 3,
        ..fwasm::client::CallInput::default()
    };
    let mut out = Vec::new();
    fwasm::client::invoke(&p.grpc, "mpi/checks", input, &mut out)
        .await
        .unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "scan ok size=3 prefix 1");
    p.stop().await;
}

#[tokio::test]
async fn fwasm_status_lists_a_worlds_ranks() {
    let p = up().await;
    with_mpi_checks(&p).await;
    let request = InvokeRequest {
        user: "mpi".into(),
        function: "checks".into(),
        input: b"ring".to_vec().into(),
        mpi_world_size: 3,
        ..InvokeRequest::default()
    };
    let mut client = p.grpc_client().await;
    let id = client
        .invoke_async(request)
        .await
        .unwrap()
        .into_inner()
        .call_id;
    let mut out = Vec::new();
    fwasm::client::status(&p.grpc, id, true, &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "SUCCESS: ring ok size=3 got 2", "{text}");
    for (rank, line) in lines[1..].iter().enumerate() {
        let prefix = format!("  rank {rank}: SUCCESS on ");
        assert!(line.starts_with(&prefix) && line.ends_with(" µs"), "{text}");
    }
    assert_eq!(lines.len(), 4, "{text}");
    p.stop().await;
}

#[tokio::test]
async fn a_rank_that_traps_fails_the_world_naming_it() {
    let p = up().await;
    with_mpi_checks(&p).await;
    let result = world(&p, 4, "trap").await;
    assert_eq!(result.status, CallStatus::Failed as i32);
    assert!(
        result.error.contains("rank 3 failed: mpi/checks trapped"),
        "{}",
        result.error
    );
    // The executor serves on.
    assert!(output(&world(&p, 2, "ring").await).starts_with("ring ok size=2"));
    p.stop().await;
}

#[tokio::test]
async fn mpi_abort_ends_the_world_with_its_code() {
    let p = up().await;
    with_mpi_checks(&p).await;
    let result = world(&p, 3, "abort").await;
    assert_eq!(result.status, CallStatus::Failed as i32);
    assert_eq!(result.return_code, 7, "{}", result.error);
    assert!(
        result.error.contains("rank 2 called MPI_Abort with code 7"),
        "{}",
        result.error
    );
    p.stop().await;
}

#[tokio::test]
async fn a_receive_nobody_matches_ends_at_the_calls_timeout_saying_what_it_waited_for() {
    let p = up_with(ExecutorConfig {
        limits: Limits {
            timeout: Duration::from_secs(2),
            ..test_limits()
        },
        ..test_executor_config()
    })
    .await;
    with_mpi_checks(&p).await;
    let result = world(&p, 2, "never").await;
    assert_eq!(result.status, CallStatus::Failed as i32);
    assert_eq!(result.failure, FailureKind::Timeout as i32);
    assert!(
        result
            .error
            .contains("waited for a message from rank 1 with tag 0 until the call's time ran out"),
        "{}",
        result.error
    );
    p.stop().await;
}

#[tokio::test]
async fn a_world_over_the_size_limit_is_refused_saying_so() {
    let p = up().await;
    with_mpi_checks(&p).await;
    let result = world(&p, 65, "ring").await;
    assert_eq!(result.status, CallStatus::Failed as i32);
    assert!(
        result
            .error
            .contains("a world of 65 ranks is over the limit of 64"),
        "{}",
        result.error
    );
    p.stop().await;
}
