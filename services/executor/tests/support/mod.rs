#![allow(dead_code)] // Each test binary uses a different part.
//! A real executor with a real scheduler beside it, and hand-written WAT guests.

use std::sync::Arc;

use fwasm_executor::{Executor, ExecutorConfig, Limits};
use fwasm_proto::ApiError;
use fwasm_proto::api::SchedulerApi;
use fwasm_proto::api::{ExecutorApi, StateApi};
use fwasm_proto::directory::BackReference;
use fwasm_proto::pb::{
    Call, CallResult, CallStatus, FailureKind, PlaceRequest, PutFunctionRequest,
};
use fwasm_scheduler::{ExecutorEndpoint, Scheduler, SchedulerConfig};
use fwasm_state::{StateConfig, StateService};

/// A v1 guest whose `fwasm_handle` body is `handle` and whose memory holds, at 100, the
/// response envelope for body "hi".
pub fn guest(handle: &str, extra: &str) -> String {
    format!(
        r#"(module
            (import "fwasm_v1" "log" (func $log (param i32 i32 i32) (result i32)))
            (import "fwasm_v1" "fail" (func $fail (param i32 i32) (result i32)))
            (memory (export "memory") 1)
            (data (i32.const 100) "\01\c8\00\00\00\00\00\02\00\00\00hi")
            (data (i32.const 200) "guest gave up")
            (global $calls (mut i32) (i32.const 0))
            (func (export "fwasm_abi_v1"))
            (func (export "fwasm_alloc") (param i32) (result i32) i32.const 1024)
            (func (export "fwasm_handle") (param i32 i32) (result i64) {handle})
            {extra})"#
    )
}

/// `(100 << 32) | 13`: the "hi" envelope.
pub const RETURN_HI: &str = "i64.const 429496729613";

pub struct Harness {
    pub executor: Arc<Executor>,
    pub scheduler: Arc<Scheduler>,
    pub state: Arc<StateService>,
    _data: tempfile::TempDir,
}

impl Harness {
    pub async fn new(limits: Limits) -> Self {
        Self::with_config(ExecutorConfig {
            limits,
            workers: 2,
            ..ExecutorConfig::default()
        })
        .await
    }

    /// An executor with a real scheduler (and call table) and state service beside it, as in
    /// `fwasm up`.
    pub async fn with_config(config: ExecutorConfig) -> Self {
        let data = tempfile::tempdir().unwrap();
        let state = StateConfig {
            data_dir: data.path().to_path_buf(),
            ..StateConfig::default()
        };
        let state = Arc::new(state.open().await.unwrap());
        let back = Arc::new(BackReference::default());
        let scheduler = Arc::new(Scheduler::new(
            SchedulerConfig {
                executors: vec![ExecutorEndpoint {
                    id: config.id.clone(),
                    addr: String::new(),
                }],
                ..SchedulerConfig::default()
            },
            state.clone(),
            back.clone(),
        ));
        let executor = Arc::new(Executor::new(config, state.clone(), scheduler.clone()));
        back.set(&(executor.clone() as Arc<dyn ExecutorApi>));
        Self {
            executor,
            scheduler,
            state,
            _data: data,
        }
    }

    /// Stores a module (as a function named after its content) and returns its hash.
    pub async fn add_module(&self, wat: &str) -> String {
        let wasm = wat::parse_str(wat).expect("test guest is valid WAT");
        let name = format!("m{:x}", md5ish(&wasm));
        self.put("u", &name, wasm).await
    }

    /// Makes `u/<name>` run the module `wat`; returns its hash.
    pub async fn add_function(&self, name: &str, wat: &str) -> String {
        self.add_function_of("u", name, wat).await
    }

    /// Makes `<user>/<name>` run the module `wat`; returns its hash.
    pub async fn add_function_of(&self, user: &str, name: &str, wat: &str) -> String {
        let wasm = wat::parse_str(wat).expect("test guest is valid WAT");
        self.put(user, name, wasm).await
    }

    async fn put(&self, user: &str, name: &str, wasm: Vec<u8>) -> String {
        let request = PutFunctionRequest {
            user: user.into(),
            function: name.into(),
            wasm: wasm.into(),
            settings: None,
            beyond_quota: false,
            abi: String::new(),
        };
        self.state.put_function(request).await.unwrap().module_hash
    }

    /// Runs `wat` as a call from outside of a function of `user`, with a fresh call id.
    pub async fn run_as(&self, user: &str, wat: &str) -> CallResult {
        let wasm = wat::parse_str(wat).expect("test guest is valid WAT");
        let function = format!("m{:x}", md5ish(&wasm));
        let module_hash = self.put(user, &function, wasm).await;
        let call = Call {
            user: user.into(),
            function,
            module_hash,
            ..Call::default()
        };
        self.place_and_execute(call).await
    }

    /// Another executor beside the first, on the same state service and scheduler (as on
    /// another machine of a mesh).
    pub fn another_executor(&self, config: ExecutorConfig) -> Arc<Executor> {
        Arc::new(Executor::new(
            config,
            self.state.clone(),
            self.scheduler.clone(),
        ))
    }

    /// Runs `call` as a call from outside: placed by the scheduler (which gives it its id),
    /// then executed.
    pub async fn place_and_execute(&self, call: Call) -> CallResult {
        self.place_and_execute_on(&self.executor, call).await
    }

    /// [`Harness::place_and_execute`] on `executor`.
    pub async fn place_and_execute_on(&self, executor: &Executor, mut call: Call) -> CallResult {
        let placement = self
            .scheduler
            .place(PlaceRequest {
                user: call.user.clone(),
                function: call.function.clone(),
                ..PlaceRequest::default()
            })
            .await
            .unwrap();
        call.id = placement.call_id;
        executor
            .execute(call)
            .await
            .expect("the call reaches the guest")
    }

    pub async fn run(&self, wat: &str) -> CallResult {
        self.try_run(wat).await.expect("the call reaches the guest")
    }

    pub async fn try_run(&self, wat: &str) -> Result<CallResult, ApiError> {
        let hash = self.add_module(wat).await;
        self.try_run_stored(hash).await
    }

    /// Runs a module stored before with [`Harness::add_module`].
    pub async fn run_stored(&self, hash: String) -> CallResult {
        let result = self.try_run_stored(hash).await;
        result.expect("the call reaches the guest")
    }

    async fn try_run_stored(&self, hash: String) -> Result<CallResult, ApiError> {
        self.executor
            .execute(Call {
                id: 7,
                user: "u".into(),
                function: "f".into(),
                module_hash: hash,
                ..Call::default()
            })
            .await
    }
}

/// A cheap content hash; the executor only needs distinct keys per module.
pub fn md5ish(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

pub fn assert_failed(result: &CallResult, kind: FailureKind, message: &str) {
    assert_eq!(result.status(), CallStatus::Failed, "{result:?}");
    assert_eq!(result.failure(), kind, "{result:?}");
    assert!(
        result.error.contains(message),
        "error {:?} lacks {message:?}",
        result.error
    );
}

pub fn assert_hi(result: &CallResult) {
    assert_eq!(result.status(), CallStatus::Success, "{result:?}");
    assert_eq!(result.http_status, 200);
    assert_eq!(&result.output[..], b"hi");
}

/// Waits until `executor` has no call admitted or parked (a chained call's admission is
/// released a moment after its caller has its answer); fails after 30 s.
pub async fn until_idle(executor: &Executor) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while executor.live_calls() > 0 || executor.parked_calls() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} calls still admitted, {} parked",
            executor.live_calls(),
            executor.parked_calls()
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
