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
    // Each source names its own loopback address (any port), so the address bound says
    // which source won.
    let [flag_listen, env_listen, file_listen] = ["127.0.0.1:0", "127.0.0.2:0", "127.0.0.3:0"];
    let [env_metrics, file_metrics] = ["127.0.0.4:0", "127.0.0.5:0"];
    let config = dir.path().join("fwasm.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"{file_listen}\"\nmetrics = \"{file_metrics}\"\ndata_dir = {:?}\n",
            store.to_str().unwrap()
        ),
    )
    .unwrap();
    let args = ["state", "--listen", flag_listen];
    let env = [
        ("FWASM_CONFIG", config.to_str().unwrap()),
        ("FWASM_LISTEN", env_listen),
        ("FWASM_METRICS", env_metrics),
    ];
    let mut first = Process::spawn(dir.path(), "state", &args, &env);
    let ready = first.ready().await;

    // gRPC where the flag says, metrics where the variable says, data where the file says.
    let (listen, metrics) = (ready.addr("listen"), ready.addr("metrics"));
    assert!(listen.starts_with("127.0.0.1:"), "--listen lost: {listen}");
    assert!(
        metrics.starts_with("127.0.0.4:"),
        "FWASM_METRICS lost: {metrics}"
    );
    let http = crate::support::http_client();
    assert!(
        scrape(&http, &metrics).await.is_some(),
        "no metrics at {metrics}"
    );
    let mut state = StateClient::new(channel(&listen).await);
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
    let mut second = Process::spawn(dir.path(), "state", &args, &env);
    let listen = second.ready().await.addr("listen");
    let mut state = StateClient::new(channel(&listen).await);
    let key = StateKey {
        user: "conf".into(),
        key: "k".into(),
    };
    let value = state.get_state(key).await.unwrap().into_inner();
    assert_eq!((value.exists, &value.value[..]), (true, &b"kept"[..]));
}
