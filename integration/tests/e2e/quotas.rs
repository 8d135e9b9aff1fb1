//! Per-user quotas: one user's flood is refused with 429s naming the quota while another
//! user's calls all succeed; a user's own quotas, set through the admin API, apply at once;
//! what a user stores (functions, state, files) is held to its storage quotas.

use fwasm_proto::layotto;
use fwasm_proto::layotto::runtime_client::RuntimeClient;
use fwasm_proto::pb::functions_client::FunctionsClient;
use fwasm_proto::pb::{UploadRequest, UserQuota};
use tonic::Code;
use tonic::transport::Channel;

use crate::support::{Platform, mesh, up_at, up_with_default_quota};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_users_flood_is_refused_while_another_users_calls_succeed() {
    // One unfinished call per user: well below the executor's two workers.
    let p = up_with_default_quota(UserQuota {
        max_concurrent_calls: 1,
        ..UserQuota::default()
    })
    .await;
    p.upload_testkit("flood", &["state"]).await;
    p.upload_testkit("calm", &["upper"]).await;
    // flood's one call waits for a lock an app holds, so its quota stays full until then.
    let channel = Channel::from_shared(p.grpc.clone()).unwrap();
    let mut layotto = RuntimeClient::new(channel.connect().await.unwrap());
    let lock = layotto::TryLockRequest {
        store_name: "flood".into(),
        resource_id: "gate".into(),
        lock_owner: "test".into(),
        expire: 60,
    };
    assert!(layotto.try_lock(lock).await.unwrap().into_inner().success);
    let waiting = p.call_async("flood/state", "lock_global_write gate").await;
    let flood: Vec<_> = (0..20)
        .map(|_| {
            let (http, url) = (p.http.clone(), format!("{}/f/flood/state", p.invoke));
            tokio::spawn(async move {
                let response = http.post(url).body("set k v").send().await.unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            })
        })
        .collect();
    for i in 0..10 {
        let (status, body) = p.call("calm/upper", format!("call {i}")).await;
        assert_eq!((status, body), (200, format!("CALL {i}")));
    }
    for call in flood {
        let (status, body) = call.await.unwrap();
        assert_eq!(status, 429, "{body}");
        assert!(
            body.contains("flood has its quota of 1 concurrent calls")
                && body.contains("(quota: concurrent calls)")
                && body.contains("retry when one of them ends"),
            "{body}"
        );
    }
    // The waiting call ends once the app lets go; then the user calls again.
    let unlock = layotto::UnlockRequest {
        store_name: "flood".into(),
        resource_id: "gate".into(),
        lock_owner: "test".into(),
    };
    layotto.unlock(unlock).await.unwrap();
    assert_eq!(p.status_when_done(waiting).await, "SUCCESS: ");
    assert_eq!(p.call("flood/state", "set k v").await, (200, String::new()));
    p.stop().await;
}

#[tokio::test]
async fn a_users_own_quota_applies_at_once_and_says_when_to_retry() {
    let platforms = [
        (
            "fwasm up",
            up_with_default_quota(UserQuota::default()).await,
        ),
        ("mesh", mesh().await),
    ];
    for (mode, p) in platforms {
        own_quota_applies_at_once(mode, p).await;
    }
}

async fn own_quota_applies_at_once(mode: &str, p: Platform) {
    p.upload_testkit("rated", &["upper"]).await;
    // Called before it has a quota (in the mesh the gateway then holds a lease of call ids
    // for the function, which the quota must end).
    assert_eq!(
        p.call("rated/upper", "a").await,
        (200, "A".into()),
        "{mode}"
    );
    p.upload_testkit("free", &["upper"]).await;
    let server = || fwasm::client::Server::from(&p.grpc);
    let one_a_minute = UserQuota {
        user: "rated".into(),
        calls_per_second: 1.0 / 60.0,
        burst_calls: 2,
        ..UserQuota::default()
    };
    let mut out = Vec::new();
    fwasm::client::quota_set(server(), one_a_minute, &mut out)
        .await
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("calls per second: 0.0166"), "{out}");
    assert!(out.contains("burst calls: 2\n"), "{out}");
    assert!(out.contains("concurrent calls: no limit"), "{out}");
    for _ in 0..2 {
        assert_eq!(p.call("rated/upper", "a").await, (200, "A".into()));
    }
    // A rate that is not one is refused, and changes nothing.
    for rate in [f64::NAN, -1.0, f64::INFINITY] {
        let bad = UserQuota {
            user: "rated".into(),
            calls_per_second: rate,
            ..UserQuota::default()
        };
        let refused = fwasm::client::quota_set(server(), bad, &mut Vec::new())
            .await
            .unwrap_err()
            .to_string();
        assert!(refused.contains("is not a rate"), "{rate}: {refused}");
    }
    let (status, body) = p.call("rated/upper", "a").await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body.contains("(quota: calls per second, bursts of 2)"),
        "{body}"
    );
    let retry_ms: u64 = body
        .trim_end()
        .rsplit("retry in ")
        .next()
        .and_then(|rest| rest.strip_suffix(" ms"))
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("{body}"));
    assert!((1_000..=60_000).contains(&retry_ms), "{body}");
    // Others keep the defaults.
    for _ in 0..5 {
        assert_eq!(p.call("free/upper", "b").await, (200, "B".into()));
    }
    // All zero: back to the defaults (no limit), at once.
    let back = UserQuota {
        user: "rated".into(),
        ..UserQuota::default()
    };
    fwasm::client::quota_set(server(), back, &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(p.call("rated/upper", "a").await, (200, "A".into()));
    let mut out = Vec::new();
    fwasm::client::quota_get(server(), "rated", &mut out)
        .await
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    let limits = "concurrent calls: no limit\ncalls per second: no limit\nburst calls: no limit\n";
    assert!(out.starts_with(limits), "{out}");
    assert!(out.ends_with("functions: 1 (no limit)\n"), "{out}");
    p.stop().await;
}

#[tokio::test]
async fn a_users_own_quota_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let p = up_at(data.path()).await;
    let quota = UserQuota {
        user: "kept".into(),
        max_concurrent_calls: 3,
        ..UserQuota::default()
    };
    let server = fwasm::client::Server::from(&p.grpc);
    fwasm::client::quota_set(server, quota, &mut Vec::new())
        .await
        .unwrap();
    p.stop().await;
    let p = up_at(data.path()).await;
    let mut out = Vec::new();
    let server = fwasm::client::Server::from(&p.grpc);
    fwasm::client::quota_get(server, "kept", &mut out)
        .await
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("concurrent calls: 3\n"), "{out}");
    p.stop().await;
}

#[tokio::test]
async fn what_a_user_stores_is_held_to_its_quota_and_no_one_elses() {
    let echo = fwasm_integration::guest("echo");
    let size = echo.len() as u64;
    let p = up_with_default_quota(UserQuota {
        max_stored_bytes: 3 * size + 100,
        max_functions: 2,
        ..UserQuota::default()
    })
    .await;
    p.upload("full/a", echo.clone()).await;
    p.upload("full/b", echo.clone()).await;
    let third = p.put("full/c", echo.clone()).await;
    assert_eq!(third.status(), 429);
    let refusal = third.text().await.unwrap();
    assert!(
        refusal.contains("(quota: functions) the user already has its 2 functions"),
        "{refusal}"
    );
    // A Python function counts as one of the user's functions too.
    let script = p
        .http
        .put(format!("{}/p/full/script", p.upload))
        .body("def faasm_main():\n    return 0\n")
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 429);
    let refusal = script.text().await.unwrap();
    assert!(refusal.contains("(quota: functions)"), "{refusal}");
    p.upload("full/a", echo.clone()).await; // replacing one is no more
    let channel = Channel::from_shared(p.grpc.clone()).unwrap();
    let mut functions = FunctionsClient::new(channel.connect().await.unwrap());
    let upload = UploadRequest {
        user: "full".into(),
        function: "d".into(),
        wasm: echo.clone().into(),
        settings: None,
        python: false,
    };
    let refused = functions.upload(upload.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");

    // What is left, state and files share.
    assert_eq!(
        p.put_state("full/k", &"x".repeat(size as usize)).await.0,
        200
    );
    assert_eq!(p.put_state("full/k2", &"x".repeat(60)).await.0, 200);
    let (status, refusal) = p.put_state("full/k3", &"x".repeat(60)).await;
    assert_eq!(status, 429, "{refusal}");
    assert!(refusal.contains("(quota: stored bytes)"), "{refusal}");
    assert!(refusal.contains("fwasm quota set"), "{refusal}");
    let mut layotto = RuntimeClient::new(channel.connect().await.unwrap());
    let file = |data: &str| layotto::PutFileRequest {
        store_name: "full".into(),
        name: "f.txt".into(),
        data: data.to_string().into(),
        ..Default::default()
    };
    let put = layotto.put_file(tokio_stream::iter([file(&"y".repeat(60))]));
    assert_eq!(put.await.unwrap_err().code(), Code::ResourceExhausted);
    assert_eq!(p.put_state("full/k", "small").await.0, 200, "shrinking");
    let put = layotto.put_file(tokio_stream::iter([file(&"y".repeat(60))]));
    put.await.unwrap();

    // Another user stores under its own quota.
    p.upload("other/a", echo.clone()).await;
    assert_eq!(p.put_state("other/k", &"x".repeat(60)).await.0, 200);

    // An admin gives a user more; `fwasm quota get` shows what it stores against it.
    let more = UserQuota {
        user: "full".into(),
        max_stored_bytes: 4 * size,
        max_functions: 3,
        ..UserQuota::default()
    };
    let server = || fwasm::client::Server::from(&p.grpc);
    fwasm::client::quota_set(server(), more, &mut Vec::new())
        .await
        .unwrap();
    functions.upload(upload).await.unwrap();
    let mut out = Vec::new();
    fwasm::client::quota_get(server(), "full", &mut out)
        .await
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    let stored = 3 * size + "small".len() as u64 + 60 + 60;
    assert!(
        out.contains(&format!("stored bytes: {stored} of {}\n", 4 * size)),
        "{out}"
    );
    assert!(out.contains("functions: 3 of 3\n"), "{out}");
    // The operator's own uploads (the demos, as an admin's) are counted, never refused.
    let mut out = Vec::new();
    fwasm::client::quota_get(server(), "demo", &mut out)
        .await
        .unwrap();
    let demos = fwasm::up::DEMOS.len();
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains(&format!("functions: {demos} of 2\n"))
    );
    p.stop().await;
}

#[tokio::test]
async fn a_guests_writes_are_held_to_its_users_storage_quota() {
    let testkit = fwasm_integration::guest("testkit");
    let p = up_with_default_quota(UserQuota {
        max_stored_bytes: testkit.len() as u64 + 50,
        ..UserQuota::default()
    })
    .await;
    p.upload_testkit("tight", &["state"]).await;
    let fits = p
        .script("tight", &format!("set k {}; push k", "x".repeat(40)))
        .await;
    assert_eq!(fits, "");
    let over = p
        .script("tight", &format!("set k2 {}; push k2", "x".repeat(40)))
        .await;
    assert!(over.contains("(quota: stored bytes)"), "{over}");
    assert_eq!(p.get_state("tight/k2").await.0, 404);
    p.stop().await;
}
