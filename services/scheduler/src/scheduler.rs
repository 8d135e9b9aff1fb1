//! Placement of calls on executors.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use fwasm_proto::api::{SchedulerApi, StateApi};
use fwasm_proto::pb::{FunctionInfo, FunctionRef, PlaceRequest, Placement};
use fwasm_proto::{ApiError, names};

use crate::SchedulerConfig;

/// An executor calls can be placed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorEndpoint {
    pub id: String,
    /// gRPC address; empty for the executor in this process.
    pub addr: String,
}

pub struct Scheduler {
    state: Arc<dyn StateApi>,
    executors: Vec<ExecutorEndpoint>,
    /// `user/function` -> module hash.
    functions: RwLock<HashMap<String, String>>,
    /// module hash -> index of the executor that last ran it.
    warm: RwLock<HashMap<String, usize>>,
    next_executor: AtomicUsize,
    next_call_id: AtomicU64,
}

impl Scheduler {
    pub fn new(config: SchedulerConfig, state: Arc<dyn StateApi>) -> Self {
        Self {
            state,
            executors: config.executors,
            functions: RwLock::default(),
            warm: RwLock::default(),
            next_executor: AtomicUsize::new(0),
            next_call_id: AtomicU64::new(1),
        }
    }

    async fn module_hash(&self, user: &str, function: &str) -> Result<String, ApiError> {
        let key = format!("{user}/{function}");
        if let Some(hash) = read(&self.functions).get(&key) {
            return Ok(hash.clone());
        }
        let info = self
            .state
            .get_function_info(FunctionRef {
                user: user.into(),
                function: function.into(),
            })
            .await?;
        write(&self.functions).insert(key, info.module_hash.clone());
        Ok(info.module_hash)
    }

    /// The executor that last ran this module, else the next one in turn.
    fn choose_executor(&self, module_hash: &str) -> Result<usize, ApiError> {
        if self.executors.is_empty() {
            return Err(ApiError::unavailable(
                "no executors are available to run calls",
            ));
        }
        if let Some(&index) = read(&self.warm).get(module_hash) {
            return Ok(index);
        }
        let index = self.next_executor.fetch_add(1, Ordering::Relaxed) % self.executors.len();
        write(&self.warm).insert(module_hash.to_string(), index);
        Ok(index)
    }
}

/// Lock helpers: the maps hold plain values, so a panicked holder cannot leave them torn.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl SchedulerApi for Scheduler {
    #[tracing::instrument(name = "scheduler.place", skip_all, fields(user = %req.user, function = %req.function))]
    async fn place(&self, req: PlaceRequest) -> Result<Placement, ApiError> {
        names::check_function_ref(&req.user, &req.function)?;
        let module_hash = self.module_hash(&req.user, &req.function).await?;
        let executor = &self.executors[self.choose_executor(&module_hash)?];
        Ok(Placement {
            call_id: self.next_call_id.fetch_add(1, Ordering::Relaxed),
            executor_id: executor.id.clone(),
            executor_addr: executor.addr.clone(),
            module_hash,
        })
    }

    async fn function_updated(&self, info: FunctionInfo) -> Result<(), ApiError> {
        write(&self.functions).insert(format!("{}/{}", info.user, info.function), info.module_hash);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fwasm_proto::ErrorCode;
    use fwasm_proto::pb::{FunctionCode, ModuleRef, PutFunctionRequest};
    use std::sync::Mutex;

    /// Knows one function, `u/f`, and counts lookups.
    struct OneFunction(Mutex<u32>);

    #[async_trait]
    impl StateApi for OneFunction {
        async fn put_function(&self, _: PutFunctionRequest) -> Result<FunctionInfo, ApiError> {
            unreachable!()
        }
        async fn get_function_info(&self, req: FunctionRef) -> Result<FunctionInfo, ApiError> {
            *self.0.lock().unwrap() += 1;
            match (req.user.as_str(), req.function.as_str()) {
                ("u", "f") => Ok(FunctionInfo {
                    module_hash: "h1".into(),
                    ..FunctionInfo::default()
                }),
                _ => Err(ApiError::not_found("no such function")),
            }
        }
        async fn get_function(&self, _: FunctionRef) -> Result<FunctionCode, ApiError> {
            unreachable!()
        }
        async fn get_module(&self, _: ModuleRef) -> Result<FunctionCode, ApiError> {
            unreachable!()
        }
    }

    fn scheduler(executors: usize) -> (Scheduler, Arc<OneFunction>) {
        let state = Arc::new(OneFunction(Mutex::new(0)));
        let executors = (0..executors)
            .map(|i| ExecutorEndpoint {
                id: format!("e{i}"),
                addr: format!("127.0.0.1:{}", 9000 + i),
            })
            .collect();
        (
            Scheduler::new(SchedulerConfig { executors }, state.clone()),
            state,
        )
    }

    fn place(f: &str) -> PlaceRequest {
        PlaceRequest {
            user: "u".into(),
            function: f.into(),
        }
    }

    #[tokio::test]
    async fn places_with_fresh_call_ids_and_resolves_each_function_once() {
        let (s, state) = scheduler(1);
        let a = s.place(place("f")).await.unwrap();
        let b = s.place(place("f")).await.unwrap();
        assert_eq!(
            (a.module_hash.as_str(), a.executor_addr.as_str()),
            ("h1", "127.0.0.1:9000")
        );
        assert_ne!(a.call_id, b.call_id);
        assert_eq!(
            *state.0.lock().unwrap(),
            1,
            "the second placement used the cache"
        );
    }

    #[tokio::test]
    async fn an_upload_notification_switches_the_module_at_once() {
        let (s, _) = scheduler(1);
        s.place(place("f")).await.unwrap();
        let info = FunctionInfo {
            user: "u".into(),
            function: "f".into(),
            module_hash: "h2".into(),
            size: 1,
        };
        s.function_updated(info).await.unwrap();
        assert_eq!(s.place(place("f")).await.unwrap().module_hash, "h2");
    }

    #[tokio::test]
    async fn a_module_sticks_to_the_executor_that_ran_it() {
        let (s, _) = scheduler(3);
        let first = s.place(place("f")).await.unwrap().executor_id;
        for _ in 0..5 {
            assert_eq!(s.place(place("f")).await.unwrap().executor_id, first);
        }
    }

    #[tokio::test]
    async fn unknown_functions_bad_names_and_no_executors_are_errors() {
        let (s, _) = scheduler(1);
        assert_eq!(
            s.place(place("missing")).await.unwrap_err().code,
            ErrorCode::NotFound
        );
        assert_eq!(
            s.place(place("a/b")).await.unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        let (s, _) = scheduler(0);
        let err = s.place(place("f")).await.unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                ErrorCode::Unavailable,
                "no executors are available to run calls"
            )
        );
    }
}
