#![allow(dead_code)] // Each test binary uses a different part.
//! A real executor with a real scheduler beside it, and hand-written WAT guests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use fwasm_executor::{Executor, ExecutorConfig, Limits};
use fwasm_proto::ApiError;
use fwasm_proto::api::{ExecutorApi, StateApi};
use fwasm_proto::directory::BackReference;
use fwasm_proto::pb::{
    Call, CallResult, CallStatus, FailureKind, FunctionCode, FunctionInfo, FunctionRef, ModuleRef,
    PutFunctionRequest,
};
use fwasm_scheduler::{ExecutorEndpoint, Scheduler, SchedulerConfig};

/// Modules by hash, and which module each function of user `u` runs: all the executor and
/// scheduler need from the state service.
#[derive(Default)]
pub struct Modules(Mutex<HashMap<String, bytes::Bytes>>);

#[async_trait]
impl StateApi for Modules {
    async fn put_function(&self, _: PutFunctionRequest) -> Result<FunctionInfo, ApiError> {
        unreachable!("the executor never uploads")
    }
    async fn get_function_info(&self, req: FunctionRef) -> Result<FunctionInfo, ApiError> {
        // Tests store functions under the key "fn:<name>", holding the module hash.
        let key = format!("fn:{}", req.function);
        let hash = self.0.lock().unwrap().get(&key).cloned();
        hash.map(|hash| FunctionInfo {
            module_hash: String::from_utf8(hash.to_vec()).unwrap(),
            user: req.user.clone(),
            function: req.function.clone(),
            size: 0,
        })
        .ok_or_else(|| ApiError::not_found(format!("no function {}/{}", req.user, req.function)))
    }
    async fn get_function(&self, _: FunctionRef) -> Result<FunctionCode, ApiError> {
        unreachable!("the executor looks modules up by hash")
    }
    async fn get_module(&self, req: ModuleRef) -> Result<FunctionCode, ApiError> {
        let wasm = self.0.lock().unwrap().get(&req.module_hash).cloned();
        wasm.map(|wasm| FunctionCode {
            module_hash: req.module_hash.clone(),
            wasm,
        })
        .ok_or_else(|| ApiError::not_found(format!("no module with hash {}", req.module_hash)))
    }
}

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
    pub modules: Arc<Modules>,
}

impl Harness {
    pub fn new(limits: Limits) -> Self {
        Self::with_config(ExecutorConfig {
            limits,
            workers: 2,
            ..ExecutorConfig::default()
        })
    }

    /// An executor with a real scheduler (and call table) beside it, as in `fwasm up`.
    pub fn with_config(config: ExecutorConfig) -> Self {
        let modules = Arc::new(Modules::default());
        let back = Arc::new(BackReference::default());
        let scheduler = Arc::new(Scheduler::new(
            SchedulerConfig {
                executors: vec![ExecutorEndpoint {
                    id: config.id.clone(),
                    addr: String::new(),
                }],
                ..SchedulerConfig::default()
            },
            modules.clone(),
            back.clone(),
        ));
        let executor = Arc::new(Executor::new(config, modules.clone(), scheduler.clone()));
        back.set(&(executor.clone() as Arc<dyn ExecutorApi>));
        Self {
            executor,
            scheduler,
            modules,
        }
    }

    /// Stores a module and returns its hash.
    pub fn add_module(&self, wat: &str) -> String {
        let wasm = wat::parse_str(wat).expect("test guest is valid WAT");
        let hash = format!("{:x}", md5ish(&wasm));
        self.modules
            .0
            .lock()
            .unwrap()
            .insert(hash.clone(), wasm.into());
        hash
    }

    /// Makes `u/<name>` run the module `wat`.
    pub fn add_function(&self, name: &str, wat: &str) -> String {
        let hash = self.add_module(wat);
        self.modules
            .0
            .lock()
            .unwrap()
            .insert(format!("fn:{name}"), hash.clone().into_bytes().into());
        hash
    }

    pub async fn run(&self, wat: &str) -> CallResult {
        self.try_run(wat).await.expect("the call reaches the guest")
    }

    pub async fn try_run(&self, wat: &str) -> Result<CallResult, ApiError> {
        let hash = self.add_module(wat);
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
