//! Starting the platform (`fwasm up` wiring, or every service over gRPC) and building guests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use fwasm::up::UpConfig;
use fwasm_executor::{ExecutorConfig, Limits};
use fwasm_gateway::{GatewayConfig, GatewayListeners};
use fwasm_proto::pb::functions_client::FunctionsClient;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Limits small enough that limit tests finish quickly.
pub fn test_limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(1),
        max_memory_bytes: 16 << 20,
        max_output_bytes: 1 << 20,
        ..Limits::default()
    }
}

pub fn test_gateway_config() -> GatewayConfig {
    GatewayConfig {
        max_input_bytes: 1 << 20,
        max_module_bytes: 8 << 20,
    }
}

/// A guest from integration/functions, built once per test run with the Rust SDK.
pub fn guest(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let functions = Path::new(env!("CARGO_MANIFEST_DIR")).join("functions");
        let target = functions.join("target");
        // Run from the functions workspace so its .cargo/config.toml (stack size) applies.
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&functions)
            .args(["build", "--release", "--target", "wasm32-unknown-unknown", "--quiet"])
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .status()
            .expect("run cargo to build the test guests");
        assert!(status.success(), "building integration/functions failed (is the wasm32-unknown-unknown target installed? run scripts/test)");
        target.join("wasm32-unknown-unknown/release")
    });
    std::fs::read(dir.join(format!("{name}.wasm"))).expect("built guest")
}

/// A running platform and the addresses of its front doors.
pub struct Platform {
    pub invoke: String,
    pub upload: String,
    pub grpc: String,
    pub http: reqwest::Client,
    stop: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
    _data: Option<tempfile::TempDir>,
}

impl Platform {
    pub async fn grpc_client(&self) -> FunctionsClient<tonic::transport::Channel> {
        FunctionsClient::connect(self.grpc.clone())
            .await
            .expect("connect to the public gRPC API")
    }

    /// Uploads a module over the HTTP upload API, asserting success.
    pub async fn upload(&self, user_function: &str, wasm: Vec<u8>) {
        let response = self.put(user_function, wasm).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(
            (status.as_u16(), body.as_str()),
            (200, "Function upload complete\n")
        );
    }

    pub async fn put(&self, user_function: &str, wasm: Vec<u8>) -> reqwest::Response {
        self.http
            .put(format!("{}/f/{user_function}", self.upload))
            .body(wasm)
            .send()
            .await
            .unwrap()
    }

    /// `POST /f/<user>/<function>` on the invoke port.
    pub async fn call(
        &self,
        user_function: &str,
        input: impl Into<reqwest::Body>,
    ) -> (u16, String) {
        let response = self
            .http
            .post(format!("{}/f/{user_function}", self.invoke))
            .body(input)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// `GET url`: status and body.
    pub async fn get(&self, url: String) -> (u16, bytes::Bytes) {
        let response = self.http.get(url).send().await.unwrap();
        (response.status().as_u16(), response.bytes().await.unwrap())
    }

    /// Faasm's JSON message style: `POST /` on the invoke port.
    pub async fn post_message(&self, message: impl Into<reqwest::Body>) -> (u16, String) {
        let url = format!("{}/", self.invoke);
        let response = self.http.post(url).body(message).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Stops every server and waits for them to finish.
    pub async fn stop(mut self) {
        for stop in self.stop.drain(..) {
            let _ = stop.send(());
        }
        for task in self.tasks.drain(..) {
            task.await.expect("server task ended cleanly");
        }
    }
}

async fn listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

fn stop_signal() -> (
    oneshot::Sender<()>,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (tx, rx) = oneshot::channel::<()>();
    (tx, async move {
        let _ = rx.await;
    })
}

async fn gateway_listeners() -> (GatewayListeners, [String; 3]) {
    let (invoke, invoke_addr) = listener().await;
    let (upload, upload_addr) = listener().await;
    let (grpc, grpc_addr) = listener().await;
    (
        GatewayListeners {
            invoke,
            upload,
            grpc,
        },
        [invoke_addr, upload_addr, grpc_addr],
    )
}

fn platform(
    addrs: [String; 3],
    stop: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
    data: Option<tempfile::TempDir>,
) -> Platform {
    let [invoke, upload, grpc] = addrs;
    Platform {
        invoke: format!("http://{invoke}"),
        upload: format!("http://{upload}"),
        grpc: format!("http://{grpc}"),
        http: reqwest::Client::new(),
        stop,
        tasks,
        _data: data,
    }
}

/// `fwasm up` in this process on a fresh data directory.
pub async fn up() -> Platform {
    let data = tempfile::tempdir().unwrap();
    let mut platform = up_at(data.path()).await;
    platform._data = Some(data);
    platform
}

/// `fwasm up` in this process on `data_dir`.
pub async fn up_at(data_dir: &Path) -> Platform {
    let (listeners, addrs) = gateway_listeners().await;
    let config = UpConfig {
        data_dir: data_dir.to_path_buf(),
        executor: ExecutorConfig {
            limits: test_limits(),
            workers: 2,
            ..ExecutorConfig::default()
        },
        gateway: test_gateway_config(),
    };
    let gateway = fwasm::up::start(config).await.expect("fwasm up starts");
    let (stop, stopped) = stop_signal();
    let task = tokio::spawn(async move {
        fwasm_gateway::serve(listeners, gateway, stopped)
            .await
            .expect("gateway serves");
    });
    platform(addrs, vec![stop], vec![task], None)
}

/// Every service as its own gRPC server on its own socket: gateway -> scheduler (placement) ->
/// executor, executor -> state (modules), exactly as in distributed mode.
pub async fn mesh() -> Platform {
    let data = tempfile::tempdir().unwrap();
    let (state_listener, state_addr) = listener().await;
    let (scheduler_listener, scheduler_addr) = listener().await;
    let (executor_listener, executor_addr) = listener().await;
    let (gateway, addrs) = gateway_listeners().await;
    let mut stops = Vec::new();
    let mut tasks = Vec::new();
    let mut spawn = |task: JoinHandle<()>, stop: oneshot::Sender<()>| {
        tasks.push(task);
        stops.push(stop);
    };

    let (stop, stopped) = stop_signal();
    let config = fwasm_state::StateConfig {
        data_dir: data.path().to_path_buf(),
    };
    spawn(
        tokio::spawn(async move {
            fwasm_state::run(state_listener, config, stopped)
                .await
                .unwrap()
        }),
        stop,
    );

    let (stop, stopped) = stop_signal();
    let config = ExecutorConfig {
        limits: test_limits(),
        workers: 2,
        ..ExecutorConfig::default()
    };
    let state = state_addr.clone();
    spawn(
        tokio::spawn(async move {
            fwasm_executor::run(executor_listener, config, &state, stopped)
                .await
                .unwrap()
        }),
        stop,
    );

    let (stop, stopped) = stop_signal();
    let executors = vec![fwasm_scheduler::ExecutorEndpoint {
        id: "e1".into(),
        addr: executor_addr,
    }];
    let config = fwasm_scheduler::SchedulerConfig { executors };
    let state = state_addr.clone();
    spawn(
        tokio::spawn(async move {
            fwasm_scheduler::run(scheduler_listener, config, &state, stopped)
                .await
                .unwrap()
        }),
        stop,
    );

    let (stop, stopped) = stop_signal();
    spawn(
        tokio::spawn(async move {
            fwasm_gateway::run(
                gateway,
                test_gateway_config(),
                &scheduler_addr,
                &state_addr,
                stopped,
            )
            .await
            .unwrap()
        }),
        stop,
    );
    platform(addrs, stops, tasks, Some(data))
}

/// Both ways of running the platform, for tests that must hold in each.
pub async fn each_platform() -> Vec<(&'static str, Platform)> {
    vec![("fwasm up", up().await), ("mesh", mesh().await)]
}
