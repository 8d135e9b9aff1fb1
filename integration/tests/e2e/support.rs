//! Starting the platform (`fwasm up` wiring, or every service over gRPC) and building guests.

use std::path::Path;
use std::time::Duration;

use fwasm::up::UpConfig;
use fwasm_executor::{ExecutorConfig, Limits};
use fwasm_gateway::{GatewayConfig, GatewayListeners};
use fwasm_proto::pb::functions_client::FunctionsClient;
use redis_harness::RedisServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Memory and output limits small enough that limit tests finish quickly; time enough for a
/// call (with all its chained children and lock waits) on a loaded 2-core machine.
pub fn test_limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(30),
        max_memory_bytes: 16 << 20,
        max_output_bytes: 1 << 20,
        ..Limits::default()
    }
}

/// Millions of iterations that keep the testkit's `slow` busy for about a second (far less than
/// [`test_limits`]' time limit): long enough to be seen RUNNING, however loaded the machine.
pub const SLOW: &str = "100";

/// A one-second time limit, for the tests of the time limit itself.
pub fn short_time_limit() -> ExecutorConfig {
    ExecutorConfig {
        limits: Limits {
            timeout: Duration::from_secs(1),
            ..test_limits()
        },
        ..test_executor_config()
    }
}

pub fn test_gateway_config() -> GatewayConfig {
    GatewayConfig {
        max_input_bytes: 1 << 20,
        max_module_bytes: 8 << 20,
        ..GatewayConfig::default()
    }
}

pub use fwasm_integration::guest;

/// A running platform and the addresses of its front doors.
pub struct Platform {
    pub invoke: String,
    pub upload: String,
    pub grpc: String,
    /// The internal services' addresses, in a mesh (empty for `fwasm up`).
    pub state_addr: String,
    pub scheduler_addr: String,
    pub http: reqwest::Client,
    stop: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
    _data: Option<tempfile::TempDir>,
    _redis: Option<RedisServer>,
}

impl Platform {
    pub async fn grpc_client(&self) -> FunctionsClient<tonic::transport::Channel> {
        FunctionsClient::connect(self.grpc.clone())
            .await
            .expect("connect to the public gRPC API")
    }

    /// The call table's record of call `id` (public gRPC `GetCall`), asserting it is found.
    pub async fn record(&self, id: u64) -> fwasm_proto::pb::CallRecord {
        let call = fwasm_proto::pb::CallRef {
            id,
            ..Default::default()
        };
        let record = self.grpc_client().await.get_call(call).await;
        record.expect("GetCall").into_inner()
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

    /// Uploads the testkit guest under each of `names` for `user`.
    pub async fn upload_testkit(&self, user: &str, names: &[&str]) {
        let wasm = guest("testkit");
        for name in names {
            self.upload(&format!("{user}/{name}"), wasm.clone()).await;
        }
    }

    /// `POST /f/<user>/<function>`: status, body and the call id the gateway gave it.
    pub async fn call_with_id(&self, user_function: &str, input: &str) -> (u16, String, u64) {
        let response = self
            .http
            .post(format!("{}/f/{user_function}", self.invoke))
            .body(input.to_string())
            .send()
            .await
            .unwrap();
        let id = response.headers()["x-fwasm-call-id"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap(), id)
    }

    /// `POST /fa/<user>/<function>`: the call id the reply consists of.
    pub async fn call_async(&self, user_function: &str, input: &str) -> u64 {
        let response = self
            .http
            .post(format!("{}/fa/{user_function}", self.invoke))
            .body(input.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let body = response.text().await.unwrap();
        body.parse()
            .unwrap_or_else(|_| panic!("/fa replied {body:?}, not a call id"))
    }

    /// Faasm's status poll for call `id`: HTTP status and reply line.
    pub async fn status(&self, id: u64) -> (u16, String) {
        self.post_message(format!(r#"{{"status": true, "id": {id}}}"#))
            .await
    }

    /// Polls the status of call `id` until it is not RUNNING (at most 30 s).
    pub async fn status_when_done(&self, id: u64) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (_, line) = self.status(id).await;
            if line != "RUNNING" {
                return line;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "call {id} still RUNNING"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Runs the testkit `state` script behaviour as `user`: its reply body.
    pub async fn script(&self, user: &str, script: &str) -> String {
        let (status, body) = self
            .call(&format!("{user}/state"), script.to_string())
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// `PUT /s/<user>/<key>` on the upload port.
    pub async fn put_state(&self, user_key: &str, value: &str) -> (u16, String) {
        let response = self
            .http
            .put(format!("{}/s/{user_key}", self.upload))
            .body(value.to_string())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// `GET /s/<user>/<key>` on the upload port.
    pub async fn get_state(&self, user_key: &str) -> (u16, String) {
        let (status, body) = self.get(format!("{}/s/{user_key}", self.upload)).await;
        (status, String::from_utf8_lossy(&body).into_owned())
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
        state_addr: String::new(),
        scheduler_addr: String::new(),
        http: http_client(),
        stop,
        tasks,
        _data: data,
        _redis: None,
    }
}

/// `fwasm up` in this process on a fresh data directory.
pub async fn up() -> Platform {
    up_with(test_executor_config()).await
}

/// `fwasm up` with its executor configured as `config`.
pub async fn up_with(config: ExecutorConfig) -> Platform {
    let data = tempfile::tempdir().unwrap();
    let mut platform = up_on(data.path(), None, config).await;
    platform._data = Some(data);
    platform
}

/// `fwasm up` in this process with its state in a Redis server of its own.
pub async fn up_redis() -> Platform {
    let data = tempfile::tempdir().unwrap();
    let redis = RedisServer::start();
    let mut platform = up_on(data.path(), Some(redis.url()), stateful_config()).await;
    platform._data = Some(data);
    platform._redis = Some(redis);
    platform
}

/// `fwasm up` on each state backend, for tests that must hold on both.
pub async fn each_backend() -> Vec<(&'static str, Platform)> {
    let data = tempfile::tempdir().unwrap();
    let mut embedded = up_on(data.path(), None, stateful_config()).await;
    embedded._data = Some(data);
    vec![("embedded", embedded), ("redis", up_redis().await)]
}

/// Time enough for many calls queueing for one global lock.
pub fn stateful_config() -> ExecutorConfig {
    ExecutorConfig {
        limits: Limits {
            timeout: Duration::from_secs(60),
            ..test_limits()
        },
        ..test_executor_config()
    }
}

/// `fwasm up` in this process on `data_dir`.
pub async fn up_at(data_dir: &Path) -> Platform {
    up_on(data_dir, None, test_executor_config()).await
}

/// `fwasm up` on `data_dir` with its state in Redis at `redis_url`.
pub async fn up_redis_at(data_dir: &Path, redis_url: String) -> Platform {
    up_on(data_dir, Some(redis_url), stateful_config()).await
}

async fn up_on(data_dir: &Path, redis_url: Option<String>, executor: ExecutorConfig) -> Platform {
    let config = UpConfig {
        data_dir: data_dir.to_path_buf(),
        state_backend: redis_url,
        executor,
        gateway: test_gateway_config(),
        default_quota: Default::default(),
        state_limits: Default::default(),
    };
    serve_up(config, None).await
}

/// `fwasm up --auth` with `admin_token` as the operator's admin token.
pub async fn up_with_tokens(admin_token: &str) -> Platform {
    let gateway = GatewayConfig {
        auth: true,
        ..test_gateway_config()
    };
    up_with_gateway(gateway, admin_token).await
}

/// `fwasm up` whose users all have `quota` (tokens off).
pub async fn up_with_default_quota(quota: fwasm_proto::pb::UserQuota) -> Platform {
    let data = tempfile::tempdir().unwrap();
    let config = UpConfig {
        data_dir: data.path().to_path_buf(),
        state_backend: None,
        executor: test_executor_config(),
        gateway: test_gateway_config(),
        state_limits: fwasm_state::StateLimits {
            max_stored_bytes_per_user: quota.max_stored_bytes,
            max_functions_per_user: quota.max_functions,
            ..Default::default()
        },
        default_quota: quota,
    };
    let mut platform = serve_up(config, None).await;
    platform._data = Some(data);
    platform
}

/// `fwasm up` with its gateway configured as `gateway`, and `admin_token` installed.
pub async fn up_with_gateway(gateway: GatewayConfig, admin_token: &str) -> Platform {
    let data = tempfile::tempdir().unwrap();
    let config = UpConfig {
        data_dir: data.path().to_path_buf(),
        state_backend: None,
        executor: test_executor_config(),
        gateway,
        default_quota: Default::default(),
        state_limits: Default::default(),
    };
    let mut platform = serve_up(config, Some(admin_token)).await;
    platform._data = Some(data);
    platform
}

async fn serve_up(config: UpConfig, admin_token: Option<&str>) -> Platform {
    let (listeners, addrs) = gateway_listeners().await;
    let gateway = fwasm::up::start(config).await.expect("fwasm up starts");
    if let Some(token) = admin_token {
        gateway.install_admin_token(token).await.unwrap();
    }
    let (stop, stopped) = stop_signal();
    let task = tokio::spawn(async move {
        fwasm_gateway::serve(listeners, gateway, stopped)
            .await
            .expect("gateway serves");
    });
    platform(addrs, vec![stop], vec![task], None)
}

/// Every service as its own gRPC server on its own socket: gateway -> scheduler (placement) ->
/// executor, executor -> state (modules) and scheduler (outcomes), exactly as in distributed
/// mode, with one executor.
pub async fn mesh() -> Platform {
    mesh_with(1, test_executor_config()).await
}

pub fn test_executor_config() -> ExecutorConfig {
    ExecutorConfig {
        limits: test_limits(),
        workers: 2,
        ..ExecutorConfig::default()
    }
}

/// The Python runtime scripts/build-python builds (scripts/test builds it before the tests),
/// read once per test binary.
pub fn python_runtime() -> std::sync::Arc<fwasm_executor::PythonRuntime> {
    static RUNTIME: std::sync::OnceLock<std::sync::Arc<fwasm_executor::PythonRuntime>> =
        std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let home = fwasm_executor::PythonRuntime::default_home()
                .expect("no home directory to find the Python runtime in");
            let runtime = fwasm_executor::PythonRuntime::load(&home).unwrap_or_else(|e| {
                panic!("{e}: scripts/test builds it before the tests; run scripts/build-python")
            });
            std::sync::Arc::new(runtime)
        })
        .clone()
}

/// An executor's configuration for Python functions: the runtime, and room for the
/// interpreter (its memory starts at 10 MiB).
pub fn python_executor_config() -> ExecutorConfig {
    let mut config = test_executor_config();
    config.limits.max_memory_bytes = 64 << 20;
    config.python = Some(python_runtime());
    config
}

/// `fwasm up` that runs Python functions.
pub async fn up_python() -> Platform {
    up_with(python_executor_config()).await
}

/// The mesh with `executors` executors (ids e1, e2, ...), each configured as `config`.
pub async fn mesh_with(executors: usize, config: ExecutorConfig) -> Platform {
    mesh_on(executors, config, None, None).await
}

/// The mesh over mutual TLS: every service shows `tls`'s certificate and wants its CA's.
pub async fn mesh_with_tls(tls: fwasm_proto::tls::Tls) -> Platform {
    mesh_on(1, test_executor_config(), None, Some(tls)).await
}

/// A two-tier mesh on each state backend.
pub async fn mesh_on_both_backends(executors: usize) -> Vec<(&'static str, Platform)> {
    vec![
        (
            "embedded",
            mesh_on(executors, stateful_config(), None, None).await,
        ),
        ("redis", mesh_redis(executors).await),
    ]
}

/// The mesh with its state in a Redis server of its own.
pub async fn mesh_redis(executors: usize) -> Platform {
    let redis = RedisServer::start();
    let mut platform = mesh_on(executors, stateful_config(), Some(redis.url()), None).await;
    platform._redis = Some(redis);
    platform
}

async fn mesh_on(
    executors: usize,
    config: ExecutorConfig,
    redis_url: Option<String>,
    tls: Option<fwasm_proto::tls::Tls>,
) -> Platform {
    let data = tempfile::tempdir().unwrap();
    let (state_listener, state_addr) = listener().await;
    let (scheduler_listener, scheduler_addr) = listener().await;
    let (gateway, addrs) = gateway_listeners().await;
    let mut stops = Vec::new();
    let mut tasks = Vec::new();
    let mut spawn = |task: JoinHandle<()>, stop: oneshot::Sender<()>| {
        tasks.push(task);
        stops.push(stop);
    };

    let (stop, stopped) = stop_signal();
    let state_config = fwasm_state::StateConfig {
        data_dir: data.path().to_path_buf(),
        redis_url,
        tls: tls.clone(),
        ..fwasm_state::StateConfig::default()
    };
    spawn(
        tokio::spawn(async move {
            fwasm_state::run(state_listener, state_config, stopped)
                .await
                .unwrap()
        }),
        stop,
    );

    let mut endpoints = Vec::new();
    for index in 1..=executors {
        let (executor_listener, executor_addr) = listener().await;
        let id = format!("e{index}");
        endpoints.push(fwasm_scheduler::ExecutorEndpoint {
            id: id.clone(),
            addr: executor_addr,
        });
        let (stop, stopped) = stop_signal();
        let config = ExecutorConfig {
            id,
            tls: tls.clone(),
            ..config.clone()
        };
        let (state, scheduler) = (state_addr.clone(), scheduler_addr.clone());
        spawn(
            tokio::spawn(async move {
                fwasm_executor::run(executor_listener, config, &state, &scheduler, stopped)
                    .await
                    .unwrap()
            }),
            stop,
        );
    }

    let (stop, stopped) = stop_signal();
    let scheduler_config = fwasm_scheduler::SchedulerConfig {
        executors: endpoints,
        tls: tls.clone(),
        ..fwasm_scheduler::SchedulerConfig::default()
    };
    let state = state_addr.clone();
    spawn(
        tokio::spawn(async move {
            fwasm_scheduler::run(scheduler_listener, scheduler_config, &state, stopped)
                .await
                .unwrap()
        }),
        stop,
    );

    let internal = (state_addr.clone(), scheduler_addr.clone());
    let (stop, stopped) = stop_signal();
    spawn(
        tokio::spawn(async move {
            let config = GatewayConfig {
                tls,
                ..test_gateway_config()
            };
            fwasm_gateway::run(gateway, config, None, &scheduler_addr, &state_addr, stopped)
                .await
                .unwrap()
        }),
        stop,
    );
    let mut platform = platform(addrs, stops, tasks, Some(data));
    (platform.state_addr, platform.scheduler_addr) = internal;
    platform
}

/// Both ways of running the platform, for tests that must hold in each.
pub async fn each_platform() -> Vec<(&'static str, Platform)> {
    vec![("fwasm up", up().await), ("mesh", mesh().await)]
}

/// Both ways of running the platform, with the executor configured as `config`.
pub async fn each_platform_with(config: ExecutorConfig) -> Vec<(&'static str, Platform)> {
    vec![
        ("fwasm up", up_with(config.clone()).await),
        ("mesh", mesh_with(1, config).await),
    ]
}

/// An HTTP client for the tests (its TLS on ring, as fwasm's own).
pub fn http_client() -> reqwest::Client {
    fwasm_proto::tls::use_ring_by_default();
    reqwest::Client::new()
}
