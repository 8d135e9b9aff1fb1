//! Cancelling calls, in `fwasm up` and in the mesh: a running call (over gRPC, and over HTTP);
//! one parked on a global lock, whose own lock is released and which never keeps the lock it
//! was waiting for; one parked awaiting the call it chained, which is cancelled with it. A call
//! that has ended, or never was, is refused with why, and the platform keeps serving.

use std::time::{Duration, Instant};

use fwasm_proto::layotto::runtime_client::RuntimeClient;
use fwasm_proto::layotto::{TryLockRequest, UnlockRequest};
use fwasm_proto::pb::{CallRecord, CallRef, CallStatus, FailureKind, ListCallsRequest};
use tonic::transport::Channel;

use crate::support::{Platform, each_platform};

/// Polls call `id` until `ready` says yes (at most 30 s).
async fn record_when(p: &Platform, id: u64, ready: impl Fn(&CallRecord) -> bool) -> CallRecord {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let record = p.record(id).await;
        if ready(&record) {
            return record;
        }
        assert!(Instant::now() < deadline, "call {id} stays {record:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn cancel(p: &Platform, id: u64) -> Result<CallRecord, tonic::Status> {
    let call = CallRef {
        id,
        ..CallRef::default()
    };
    let cancelled = p.grpc_client().await.cancel_call(call).await;
    cancelled.map(tonic::Response::into_inner)
}

fn assert_cancelled(record: &CallRecord, function: &str) {
    assert_eq!(
        (record.status(), record.failure(), record.error.as_str()),
        (
            CallStatus::Failed,
            FailureKind::Cancelled,
            format!("{function} was cancelled").as_str()
        ),
        "{record:?}"
    );
    assert_eq!(record.return_code, FailureKind::Cancelled as i32);
}

async fn layotto(p: &Platform) -> RuntimeClient<Channel> {
    let channel = Channel::from_shared(p.grpc.clone()).unwrap();
    RuntimeClient::new(channel.connect().await.unwrap())
}

/// A global lock on alice's `key`, as an app holds it (Layotto's TryLock).
fn lock(key: &str, owner: &str) -> TryLockRequest {
    TryLockRequest {
        store_name: "alice".into(),
        resource_id: key.into(),
        lock_owner: owner.into(),
        expire: 60,
    }
}

fn unlock(key: &str, owner: &str) -> UnlockRequest {
    UnlockRequest {
        store_name: "alice".into(),
        resource_id: key.into(),
        lock_owner: owner.into(),
    }
}

#[tokio::test]
async fn a_running_call_is_cancelled_over_grpc_and_http() {
    for (mode, p) in each_platform().await {
        p.upload_testkit("alice", &["spin", "upper"]).await;
        let id = p.call_async("alice/spin", "").await;
        let running = record_when(&p, id, |r| r.status() == CallStatus::Running).await;
        assert!(!running.executor_id.is_empty(), "{mode}");
        let cancelled = cancel(&p, id).await.unwrap();
        assert_cancelled(&cancelled, "alice/spin");
        // Far from its time limit (30 s): ended by the cancel.
        assert!(cancelled.exec_micros < 20_000_000, "{mode}: {cancelled:?}");
        assert_cancelled(&p.record(id).await, "alice/spin");

        // Over HTTP, on the invoke port.
        let id = p.call_async("alice/spin", "").await;
        record_when(&p, id, |r| r.status() == CallStatus::Running).await;
        let url = format!("{}/cancel/{id}", p.invoke);
        let reply = p.http.post(&url).send().await.unwrap();
        assert_eq!(reply.status(), 200, "{mode}");
        assert_eq!(reply.text().await.unwrap(), "alice/spin was cancelled\n");
        assert_cancelled(&p.record(id).await, "alice/spin");

        // Once ended there is nothing to cancel; unknown ids and words are refused.
        let again = p.http.post(&url).send().await.unwrap();
        assert_eq!(again.status(), 409, "{mode}");
        assert_eq!(
            again.text().await.unwrap(),
            format!("call {id} has already ended (cancelled); there is nothing to cancel\n")
        );
        let refused = cancel(&p, id).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{mode}");
        let unknown = cancel(&p, 987_654_321).await.unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound, "{mode}");
        let nonsense = p.http.post(format!("{}/cancel/soon", p.invoke));
        assert_eq!(nonsense.send().await.unwrap().status(), 400, "{mode}");

        // The executor that ran them serves on, and counts them apart from failures.
        assert_eq!(p.call("alice/upper", "still here").await.1, "STILL HERE");
        let (_, metrics) = p.get(format!("{}/metrics", p.invoke)).await;
        let metrics = String::from_utf8_lossy(&metrics);
        assert!(
            metrics.contains("fwasm_calls_total{outcome=\"cancelled\"}"),
            "{mode}: {metrics}"
        );
        p.stop().await;
    }
}

#[tokio::test]
async fn a_call_parked_on_a_lock_is_cancelled_and_lets_go_of_its_locks() {
    for (mode, p) in each_platform().await {
        p.upload_testkit("alice", &["state"]).await;
        let mut app = layotto(&p).await;
        // The test holds "b"; the call takes "a", then waits for "b".
        assert!(
            app.try_lock(lock("b", "test"))
                .await
                .unwrap()
                .into_inner()
                .success
        );
        let id = p
            .call_async("alice/state", "lock_global_write a; lock_global_write b")
            .await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let taken = app.try_lock(lock("a", "probe")).await.unwrap().into_inner();
            if !taken.success {
                break; // The call holds "a".
            }
            app.unlock(unlock("a", "probe")).await.unwrap();
            assert!(
                Instant::now() < deadline,
                "{mode}: the call never took \"a\""
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(p.record(id).await.status(), CallStatus::Running, "{mode}");

        assert_cancelled(&cancel(&p, id).await.unwrap(), "alice/state");
        // "a" is free at once. "b", once the test lets go, may go to the request the call was
        // waiting in (it runs to its end), which gives it straight back: never for the
        // minute a lease lasts.
        let a = app.try_lock(lock("a", "probe")).await.unwrap().into_inner();
        assert!(a.success, "{mode}: the cancelled call still holds \"a\"");
        app.unlock(unlock("b", "test")).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !app
            .try_lock(lock("b", "probe"))
            .await
            .unwrap()
            .into_inner()
            .success
        {
            assert!(
                Instant::now() < deadline,
                "{mode}: the cancelled call's wait kept \"b\""
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        p.stop().await;
    }
}

#[tokio::test]
async fn cancelling_a_call_that_awaits_its_chained_call_cancels_both() {
    for (mode, p) in each_platform().await {
        p.upload_testkit("alice", &["await_spin", "spin"]).await;
        let id = p.call_async("alice/await_spin", "").await;
        // Its child, found by its parent.
        let deadline = Instant::now() + Duration::from_secs(30);
        let child = loop {
            let chained = ListCallsRequest {
                user: "alice".into(),
                parent_id: id,
                ..ListCallsRequest::default()
            };
            let listed = p.grpc_client().await.list_calls(chained).await.unwrap();
            if let [child] = &listed.into_inner().calls[..] {
                break child.id;
            }
            assert!(Instant::now() < deadline, "{mode}: no chained call");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        record_when(&p, child, |r| r.status() == CallStatus::Running).await;

        assert_cancelled(&cancel(&p, id).await.unwrap(), "alice/await_spin");
        let child = record_when(&p, child, |r| r.status() != CallStatus::Running).await;
        assert_cancelled(&child, "alice/spin");
        p.stop().await;
    }
}
