//! MPI worlds across executor processes: checks of every kind with ranks on both; and a world
//! that loses the ranks of an executor that is killed: the
//! world ends at once, not at its time limit, saying which rank was lost and where, and its
//! other ranks are stopped (none is left blocked).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fwasm_proto::pb::{CallStatus, InvokeRequest, ListCallsRequest, WaitCallRequest};

use crate::support::{Mesh, MeshOptions, eventually};

/// integration/functions-c/mpi_checks.c, built by the real `fwasm build`.
fn mpi_checks(dir: &Path) -> Vec<u8> {
    let source =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../integration/functions-c/mpi_checks.c");
    let wasm = dir.join("mpi_checks.wasm");
    let built = Command::new(env!("CARGO_BIN_EXE_fwasm"))
        .arg("build")
        .arg(&source)
        .arg("-o")
        .arg(&wasm)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "fwasm build (scripts/test installs clang and wasi-libc): {}",
        String::from_utf8_lossy(&built.stderr)
    );
    std::fs::read(wasm).unwrap()
}

/// A mesh of two executors of two calls each (a world of 4 has two ranks on each), with
/// the checks uploaded as mpi/checks.
async fn two_executors_with_checks() -> Mesh {
    let mesh = Mesh::start(MeshOptions {
        executors: 2,
        executor_flags: &["--max-calls", "2"],
        ..MeshOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    mesh.upload("mpi/checks", mpi_checks(dir.path())).await;
    mesh
}

/// A world of 4 ranks running `check`.
fn world_of_4(check: &str) -> InvokeRequest {
    InvokeRequest {
        user: "mpi".into(),
        function: "checks".into(),
        input: check.as_bytes().to_vec().into(),
        mpi_world_size: 4,
        ..InvokeRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_world_whose_executor_is_killed_ends_at_once_naming_the_lost_rank() {
    let mut mesh = two_executors_with_checks().await;
    let mut client = mesh.client().await;
    let world = world_of_4("hang");
    let id = client
        .invoke_async(world)
        .await
        .unwrap()
        .into_inner()
        .call_id;
    // Every rank runs (and waits); find the executor of the two that are not rank 0's.
    let mut elsewhere = String::new();
    eventually("every rank of the world running", async || {
        let ranks = ListCallsRequest {
            user: "mpi".into(),
            parent_id: id,
            status: CallStatus::Running as i32,
            ..ListCallsRequest::default()
        };
        let ranks = client.list_calls(ranks).await.unwrap().into_inner().calls;
        let home = client.get_call(fwasm_proto::pb::CallRef {
            id,
            ..Default::default()
        });
        let home = home.await.unwrap().into_inner().executor_id;
        let away: Vec<_> = ranks.iter().filter(|r| r.executor_id != home).collect();
        if ranks.len() == 3 && away.len() == 2 {
            elsewhere = away[0].executor_id.clone();
        }
        !elsewhere.is_empty()
    })
    .await;
    mesh.kill_executor(&elsewhere);

    // Well before its 30 s limit.
    let wait = WaitCallRequest {
        id,
        timeout_ms: 20_000,
        ..WaitCallRequest::default()
    };
    let started = std::time::Instant::now();
    let record = client.wait_call(wait).await.unwrap().into_inner();
    assert_eq!(record.status(), CallStatus::Failed, "{record:?}");
    assert!(started.elapsed() < Duration::from_secs(20), "{record:?}");
    assert!(
        record.error.contains("was lost") && record.error.contains(&elsewhere),
        "{}",
        record.error
    );
    // The world's call lists every rank as it ended (stopped with the world, or lost).
    for rank in &record.mpi_ranks {
        assert_eq!(
            rank.status,
            CallStatus::Failed as i32,
            "{:?}",
            record.mpi_ranks
        );
    }
    let lost: Vec<u32> = record
        .mpi_ranks
        .iter()
        .filter(|r| r.error.starts_with("mpi/checks was lost"))
        .map(|r| r.rank)
        .collect();
    assert!(
        !lost.is_empty() && lost.iter().all(|rank| *rank >= 2),
        "{:?}",
        record.mpi_ranks
    );
    // Every rank's call ends: the lost ones as lost, the others stopped with the world.
    assert_eq!(record.mpi_ranks.len(), 4);
    for rank in &record.mpi_ranks {
        let call = fwasm_proto::pb::WaitCallRequest {
            id: rank.call_id,
            timeout_ms: 20_000,
            ..Default::default()
        };
        let ended = client.wait_call(call).await.unwrap().into_inner();
        assert_eq!(
            ended.status(),
            CallStatus::Failed,
            "rank {}: {ended:?}",
            rank.rank
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worlds_span_two_executor_processes_with_ranks_on_each() {
    let mesh = two_executors_with_checks().await;
    let mut client = mesh.client().await;
    for (check, computed) in [
        ("ring", "got 3"),
        ("allreduce", "sum=6 max=3"),
        ("bcast", "100 101 102 103"),
        ("cart", "source 3 dest 1"),
        ("split", "halves 2+2 first 2"),
        ("rma", "got 201 from rank 1"),
    ] {
        let result = client.invoke(world_of_4(check)).await.unwrap().into_inner();
        assert_eq!(
            result.status(),
            CallStatus::Success,
            "{check}: {}",
            result.error
        );
        assert_eq!(
            String::from_utf8_lossy(&result.output),
            format!("{check} ok size=4 {computed}")
        );
        let call = fwasm_proto::pb::CallRef {
            id: result.id,
            ..Default::default()
        };
        let record = client.get_call(call).await.unwrap().into_inner();
        let executors: std::collections::BTreeSet<_> = record
            .mpi_ranks
            .iter()
            .map(|r| r.executor_id.clone())
            .collect();
        assert_eq!(executors.len(), 2, "{check}: {:?}", record.mpi_ranks);
    }
}
