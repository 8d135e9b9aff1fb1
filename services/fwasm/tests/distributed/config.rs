//! A service process takes its settings from flags, `FWASM_*` environment variables and a
//! config file, in that order of precedence; `fwasm state` without --backend keeps state in
//! the embedded store under --data-dir, across restarts.

use fwasm_proto::pb::state_client::StateClient;
use fwasm_proto::pb::{SetStateRequest, StateKey};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_beat_environment_variables_which_beat_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let [file_listen, env_listen, flag_listen] = [free_addr(), free_addr(), free_addr()];
    let [file_metrics, env_metrics] = [free_addr(), free_addr()];
    let config = dir.path().join("fwasm.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"{file_listen}\"\nmetrics = \"{file_metrics}\"\ndata_dir = {:?}\n",
            store.to_str().unwrap()
        ),
    )
    .unwrap();
    let args = ["state", "--listen", &flag_listen];
    let env = [
        ("FWASM_CONFIG", config.to_str().unwrap()),
        ("FWASM_LISTEN", &env_listen),
        ("FWASM_METRICS", &env_metrics),
    ];
    let first = spawn_with_env(&args, &env);

    // gRPC where the flag says, metrics where the variable says, data where the file says.
    let mut state = StateClient::new(channel(&flag_listen).await);
    let http = reqwest::Client::new();
    eventually("metrics served", async || {
        scrape(&http, &env_metrics).await.is_some()
    })
    .await;
    for (addr, overridden) in [
        (&env_listen, "FWASM_LISTEN by --listen"),
        (&file_listen, "the file's listen by --listen"),
        (&file_metrics, "the file's metrics by FWASM_METRICS"),
    ] {
        assert!(!listening(addr), "{overridden}: {addr} should be unused");
    }
    let set = SetStateRequest {
        user: "conf".into(),
        key: "k".into(),
        value: b"kept".to_vec().into(),
    };
    state.set_state(set).await.unwrap();
    let entries = std::fs::read_dir(&store).map(|d| d.count()).unwrap_or(0);
    assert!(
        entries > 0,
        "the embedded store lives in the file's data_dir"
    );

    // SIGTERM, then the same settings again: the value was durable.
    first.terminate();
    let _second = spawn_with_env(&args, &env);
    let mut state = StateClient::new(channel(&flag_listen).await);
    let key = StateKey {
        user: "conf".into(),
        key: "k".into(),
    };
    let value = state.get_state(key).await.unwrap().into_inner();
    assert_eq!((value.exists, &value.value[..]), (true, &b"kept"[..]));
}
