//! What the gateway does, independent of the protocol a request came in on.

use std::sync::Arc;

use bytes::Bytes;
use std::time::Duration;

use fwasm_proto::api::{SchedulerApi, StateApi};
use fwasm_proto::directory::ExecutorDirectory;
use fwasm_proto::outcome::not_run;
use fwasm_proto::pb::{
    Call, CallList, CallRecord, CallRef, CallResult, CreatedToken, FileList, FileRef, FunctionList,
    FunctionRef, FunctionSettings, Header, KeyList, ListCallsRequest, ListFilesRequest,
    ListFunctionsRequest, ListKeysRequest, ListSubscriptionsRequest, ListTokensRequest,
    ListUsersRequest, LockMode, LockRequest, PlaceRequest, Placement, PutFileRequest,
    PutFunctionRequest, QuotaRef, SetStateRequest, StateKey, StateValue, StateWrite, StorageUsage,
    SubmitRequest, Subscription, TokenRecord, TokenRef, UnlockRequest, UploadReply, UserList,
    UserQuota, WaitCallRequest, WriteStateRequest,
};
use fwasm_proto::pubsub::{self, Event};
use fwasm_proto::{ApiError, ErrorCode, names, python};

use crate::GatewayConfig;
use crate::auth::{self, Caller, Tokens, check_admin, check_user};
use crate::faasm_planner::PlannerApps;
use fwasm_proto::leases::Leases;
use tracing::Instrument;

pub struct Gateway {
    config: GatewayConfig,
    scheduler: Arc<dyn SchedulerApi>,
    state: Arc<dyn StateApi>,
    executors: Arc<dyn ExecutorDirectory>,
    /// Set when tokens are on (`--auth`).
    tokens: Option<Tokens>,
    /// Uploads validated at once (validation compiles a module and may run its
    /// initialisation): one per core, so uploads cannot take every thread of the machine.
    validations: tokio::sync::Semaphore,
    /// Set when calls are placed from leases (the scheduler is in another process).
    leases: Option<Arc<Leases>>,
    /// The batches faasmctl started here (Faasm's planner protocol), for its status polls.
    planner_apps: PlannerApps,
}

/// Places `call` (from a lease when there is one to place it from) and runs it there.
async fn place_and_run(
    scheduler: &dyn SchedulerApi,
    executors: &dyn ExecutorDirectory,
    leases: Option<&Leases>,
    call: Call,
) -> Result<CallResult, ApiError> {
    let (user, function) = (call.user.clone(), call.function.clone());
    let leased = match leases {
        Some(leases) => leases.place(&user, &function, None).await?,
        None => None,
    };
    if let Some(placement) = leased {
        let result = run_placed(scheduler, executors, &placement, call.clone()).await;
        let Err(err) = &result else {
            return result;
        };
        // The lease's executor is gone or full: the next call takes a new lease.
        if matches!(
            err.code,
            ErrorCode::Unavailable | ErrorCode::ResourceExhausted
        ) && let Some(leases) = leases
        {
            leases.forget(&user, &function);
        }
        // A full executor refused it before it ran: the scheduler places it (as another
        // call) where there is room. One that could not be reached may have run: not sent
        // again, as a placed call is not.
        if err.code != ErrorCode::ResourceExhausted {
            return result;
        }
        tracing::debug!(error = %err, executor = %placement.executor_id, "a leased executor was full");
    }
    let placement = scheduler
        .place(PlaceRequest {
            user,
            function,
            ..PlaceRequest::default()
        })
        .await?;
    run_placed(scheduler, executors, &placement, call).await
}

/// Sends `call` where `placement` says, with the placement's id and module; a call that never
/// ran there is reported as not run (the executor reports those it ran).
async fn run_placed(
    scheduler: &dyn SchedulerApi,
    executors: &dyn ExecutorDirectory,
    placement: &Placement,
    call: Call,
) -> Result<CallResult, ApiError> {
    let (user, function) = (call.user.clone(), call.function.clone());
    let call = Call {
        id: placement.call_id,
        module_hash: placement.module_hash.clone(),
        settings: placement.settings.clone(),
        ..call
    };
    let result = match executors.executor(placement) {
        Ok(executor) => executor.execute(call).await,
        Err(err) => Err(err),
    };
    if let Err(err) = &result {
        let outcome = not_run(placement.call_id, &user, &function, err);
        let _ = scheduler.call_finished(outcome).await;
    }
    result
}

/// A request to run a function, from any front door.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    pub user: String,
    pub function: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<Header>,
    pub input: Bytes,
    /// The program's command line (argv after its name), Faasm's `cmdline`.
    pub cmdline: String,
    /// Run as an MPI world of this many ranks (Faasm's `mpi_world_size`); 0: not MPI.
    pub mpi_world_size: u32,
}

impl Gateway {
    pub fn new(
        config: GatewayConfig,
        scheduler: Arc<dyn SchedulerApi>,
        state: Arc<dyn StateApi>,
        executors: Arc<dyn ExecutorDirectory>,
    ) -> Self {
        fwasm_proto::metrics::meters();
        let tokens = config.auth.then(|| Tokens::new(state.clone()));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            config,
            scheduler,
            state,
            executors,
            tokens,
            validations: tokio::sync::Semaphore::new(cores),
            leases: None,
            planner_apps: PlannerApps::default(),
        }
    }

    /// Places calls from leases of call ids instead of asking the scheduler for each (see
    /// [`Leases`]): for a scheduler in another process. Must be called in a tokio runtime.
    pub fn placing_from_leases(mut self) -> Self {
        let runtime = tokio::runtime::Handle::current();
        self.leases = Some(Arc::new(Leases::new(
            self.scheduler.clone(),
            String::new(),
            &runtime,
        )));
        self
    }

    /// Who a request that sent `token` comes from: anyone while tokens are off; else the
    /// token's user or admin, UNAUTHENTICATED for no token or an unknown one.
    pub async fn caller(&self, token: Option<&str>) -> Result<Caller, ApiError> {
        match &self.tokens {
            None => Ok(Caller::Open),
            Some(tokens) => tokens.caller(token).await,
        }
    }

    /// Makes `token` the operator's admin token (replacing the one before): the state
    /// service keeps its hash.
    pub async fn install_admin_token(&self, token: &str) -> Result<(), ApiError> {
        let record = auth::record(auth::ADMIN_TOKEN_ID, "", true, token);
        self.state.put_token(record).await?;
        if let Some(tokens) = &self.tokens {
            tokens.forget(auth::ADMIN_TOKEN_ID);
        }
        Ok(())
    }

    /// A new token for `user` (or an admin token): the only time its secret is shown.
    #[tracing::instrument(name = "gateway.create_token", skip_all, fields(%user, admin))]
    pub async fn create_token(&self, user: &str, admin: bool) -> Result<CreatedToken, ApiError> {
        check_admin("tokens")?;
        if !admin {
            names::check_name("user", user)?;
        }
        let (token, record) = auth::new_token(user, admin)?;
        let created = CreatedToken {
            id: record.id.clone(),
            token,
            user: record.user.clone(),
            admin,
        };
        self.state.put_token(record).await?;
        tracing::info!(id = %created.id, "token created");
        Ok(created)
    }

    /// Every token: ids, users, whether admin, when made (never a secret or its hash).
    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>, ApiError> {
        check_admin("tokens")?;
        let mut tokens = self.state.list_tokens(ListTokensRequest {}).await?.tokens;
        for token in &mut tokens {
            token.secret_sha256 = Bytes::new();
        }
        Ok(tokens)
    }

    /// Gives `quota.user` its own quotas (every limit 0: back to the defaults): kept by the
    /// state service, in force at the scheduler at once.
    #[tracing::instrument(name = "gateway.set_quota", skip_all, fields(user = %quota.user))]
    pub async fn set_quota(&self, quota: UserQuota) -> Result<(), ApiError> {
        check_admin("quotas")?;
        names::check_name("user", &quota.user)?;
        self.state.put_quota(quota.clone()).await?;
        let user = quota.user.clone();
        self.scheduler.set_quota(quota).await?;
        // Its next call takes a lease again, or no more.
        if let Some(leases) = &self.leases {
            leases.forget_user(&user);
        }
        Ok(())
    }

    /// The quotas in force for `user` (its own, or the defaults; 0 = no limit): on calls, as
    /// the scheduler checks them, and on storage, as the state service does.
    pub async fn get_quota(&self, user: &str) -> Result<UserQuota, ApiError> {
        let usage = self.get_usage(user).await?;
        let calls = self.scheduler.get_quota(QuotaRef { user: user.into() });
        Ok(UserQuota {
            max_stored_bytes: usage.max_stored_bytes,
            max_functions: usage.max_functions,
            ..calls.await?
        })
    }

    /// What `user` stores against its storage quotas.
    pub async fn get_usage(&self, user: &str) -> Result<StorageUsage, ApiError> {
        names::check_name("user", user)?;
        check_user(user, "quotas")?;
        self.state.get_usage(QuotaRef { user: user.into() }).await
    }

    /// Revokes the token `id`: it stops working at once here, and within seconds on every
    /// other gateway. NOT_FOUND if no token has that id.
    #[tracing::instrument(name = "gateway.revoke_token", skip_all, fields(%id))]
    pub async fn revoke_token(&self, id: &str) -> Result<(), ApiError> {
        check_admin("tokens")?;
        self.state.delete_token(TokenRef { id: id.into() }).await?;
        if let Some(tokens) = &self.tokens {
            tokens.forget(id);
        }
        Ok(())
    }

    pub(crate) fn planner_apps(&self) -> &PlannerApps {
        &self.planner_apps
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// Validates a module and stores it as `user/function`, with the settings its calls get.
    #[tracing::instrument(name = "gateway.upload", skip_all, fields(%user, %function, size = wasm.len()))]
    pub async fn upload(
        &self,
        user: &str,
        function: &str,
        wasm: Bytes,
        settings: Option<FunctionSettings>,
    ) -> Result<UploadReply, ApiError> {
        let limit = self.config.max_module_bytes;
        check_upload(
            user,
            function,
            settings.as_ref(),
            ("module", wasm.len(), limit),
        )?;
        let validating = self
            .validations
            .acquire()
            .await
            .map_err(|_| ApiError::unavailable("the gateway is shutting down"))?;
        let (checked, with) = (wasm.clone(), settings.clone());
        // Validation compiles the module (and runs its initialisation, if it has one): CPU
        // work, kept off the async workers.
        let validated = tokio::task::spawn_blocking(move || {
            fwasm_executor::validate_with(&checked, with.as_ref())
        })
        .await
        .map_err(|e| ApiError::internal(format!("validation task failed: {e}")))?
        .map_err(|e| {
            ApiError::invalid_argument(format!("{user}/{function} was not uploaded: {e}"))
        })?;
        drop(validating);
        let abi = validated.abi;
        let info = self
            .store(user, function, wasm, settings, &abi.to_string())
            .await?;
        let proxy_id = validated.proxy_id.unwrap_or_default();
        tracing::info!(module_hash = %info.module_hash, %abi, proxy_id, "function uploaded");
        Ok(UploadReply {
            module_hash: info.module_hash,
            size: info.size,
            abi: abi.to_string(),
            proxy_id,
        })
    }

    /// Stores a Python function: `script` runs in the executors' Python runtime. It shares
    /// its user's namespace with wasm functions: uploading it over a function of the same
    /// name (wasm or Python) replaces that function, as uploading a module does.
    #[tracing::instrument(name = "gateway.upload_python", skip_all, fields(%user, %function, size = script.len()))]
    pub async fn upload_python(
        &self,
        user: &str,
        function: &str,
        script: Bytes,
        settings: Option<FunctionSettings>,
    ) -> Result<UploadReply, ApiError> {
        let limit = python::MAX_SCRIPT_BYTES;
        check_upload(
            user,
            function,
            settings.as_ref(),
            ("script", script.len(), limit),
        )?;
        python::check_script(&script).map_err(|problem| {
            ApiError::invalid_argument(format!("{user}/{function} was not uploaded: {problem}"))
        })?;
        let info = self
            .store(user, function, script, settings, python::KIND)
            .await?;
        tracing::info!(module_hash = %info.module_hash, "Python function uploaded");
        Ok(UploadReply {
            module_hash: info.module_hash,
            size: info.size,
            abi: python::KIND.to_string(),
            proxy_id: String::new(),
        })
    }

    /// Stores a checked function's code (a module or a script) and tells the scheduler.
    async fn store(
        &self,
        user: &str,
        function: &str,
        code: Bytes,
        settings: Option<FunctionSettings>,
        abi: &str,
    ) -> Result<fwasm_proto::pb::FunctionInfo, ApiError> {
        let info = self
            .state
            .put_function(PutFunctionRequest {
                user: user.into(),
                function: function.into(),
                wasm: code,
                settings,
                beyond_quota: matches!(Caller::current()?, Caller::Admin),
                abi: abi.into(),
            })
            .await?;
        self.scheduler.function_updated(info.clone()).await?;
        if let Some(leases) = &self.leases {
            leases.forget(user, function);
        }
        Ok(info)
    }

    /// `user`'s functions, by name (the user's own token, or an admin's).
    #[tracing::instrument(name = "gateway.list_functions", skip_all, fields(%user))]
    pub async fn list_functions(&self, user: &str) -> Result<FunctionList, ApiError> {
        names::check_name("user", user)?;
        check_user(user, "functions")?;
        self.state
            .list_functions(ListFunctionsRequest { user: user.into() })
            .await
    }

    /// Removes `user/function`: its calls are refused from then on (those placed from this
    /// gateway's leases at once; the scheduler places no more). NOT_FOUND if there is none.
    #[tracing::instrument(name = "gateway.delete_function", skip_all, fields(%user, %function))]
    pub async fn delete_function(&self, user: &str, function: &str) -> Result<(), ApiError> {
        names::check_function_ref(user, function)?;
        check_user(user, "functions")?;
        let gone = FunctionRef {
            user: user.into(),
            function: function.into(),
        };
        let deleted = self.state.delete_function(gone.clone()).await;
        // Told even when the state service no longer has it: a delete whose notice failed
        // is retried by deleting again.
        let gone_there = match &deleted {
            Ok(()) => true,
            Err(err) => err.code == fwasm_proto::ErrorCode::NotFound,
        };
        if gone_there {
            if let Some(leases) = &self.leases {
                leases.forget(user, function);
            }
            self.scheduler.function_deleted(gone).await?;
        }
        deleted?;
        tracing::info!("function deleted");
        Ok(())
    }

    /// The stored module of `user/function`.
    pub async fn download(&self, user: &str, function: &str) -> Result<Bytes, ApiError> {
        names::check_function_ref(user, function)?;
        check_user(user, "functions")?;
        let code = self
            .state
            .get_function(FunctionRef {
                user: user.into(),
                function: function.into(),
            })
            .await?;
        Ok(code.wasm)
    }

    /// Runs a call and waits for its result. A call that ran and failed is `Ok` with status
    /// FAILED; `Err` means it could not run.
    #[tracing::instrument(name = "gateway.invoke", skip_all, fields(user = %inv.user, function = %inv.function))]
    pub async fn invoke(&self, inv: Invocation) -> Result<CallResult, ApiError> {
        let started = std::time::Instant::now();
        let result = self.invoke_now(inv).await;
        let meters = fwasm_proto::metrics::meters();
        match &result {
            Ok(result) if result.status() == fwasm_proto::pb::CallStatus::Success => {
                meters.sync_succeeded.increment(1)
            }
            Ok(_) => meters.sync_failed.increment(1),
            Err(_) => meters.sync_refused.increment(1),
        }
        meters
            .invocation_seconds
            .record(started.elapsed().as_secs_f64());
        result
    }

    async fn invoke_now(&self, inv: Invocation) -> Result<CallResult, ApiError> {
        self.check(&inv)?;
        let (scheduler, executors) = (self.scheduler.clone(), self.executors.clone());
        let leases = self.leases.clone();
        // On a task of its own, so a caller that hangs up does not strand a placed call: it
        // runs, or is reported as not run, and never stays "running" in the call table (nor
        // keeps a slot of its user's quota).
        let run = async move {
            let call = inv.into_call();
            place_and_run(&*scheduler, &*executors, leases.as_deref(), call).await
        };
        tokio::spawn(run.in_current_span())
            .await
            .map_err(|e| ApiError::internal(format!("the call's task failed: {e}")))?
    }

    /// Starts a call in the background and returns its id once the scheduler has recorded it.
    #[tracing::instrument(name = "gateway.invoke_async", skip_all, fields(user = %inv.user, function = %inv.function))]
    pub async fn invoke_async(&self, inv: Invocation) -> Result<u64, ApiError> {
        self.check(&inv)?;
        let placement = self
            .scheduler
            .submit(SubmitRequest {
                call: Some(inv.into_call()),
                busy_executor_id: String::new(),
            })
            .await;
        let meters = fwasm_proto::metrics::meters();
        match &placement {
            Ok(_) => meters.async_accepted.increment(1),
            Err(_) => meters.async_refused.increment(1),
        }
        Ok(placement?.call_id)
    }

    pub async fn get_call(&self, id: u64) -> Result<CallRecord, ApiError> {
        let user = acting_user()?;
        self.scheduler
            .get_call(CallRef {
                id,
                user,
                ..CallRef::default()
            })
            .await
    }

    /// Every user that has functions or tokens, in order (admin tokens only).
    #[tracing::instrument(name = "gateway.list_users", skip_all)]
    pub async fn list_users(&self) -> Result<UserList, ApiError> {
        check_admin("the list of users")?;
        let mut users = self.state.list_users(ListUsersRequest {}).await?.users;
        let tokens = self.state.list_tokens(ListTokensRequest {}).await?.tokens;
        users.extend(tokens.into_iter().map(|t| t.user).filter(|u| !u.is_empty()));
        users.sort();
        users.dedup();
        Ok(UserList { users })
    }

    /// Calls the scheduler keeps, newest first: a user's (its own token's, or an admin's).
    /// Naming no user lists the caller's own, or for an admin every user's.
    #[tracing::instrument(name = "gateway.list_calls", skip_all, fields(user = %req.user))]
    pub async fn list_calls(&self, mut req: ListCallsRequest) -> Result<CallList, ApiError> {
        if req.user.is_empty() {
            req.user = acting_user()?;
        } else {
            names::check_name("user", &req.user)?;
            check_user(&req.user, "calls")?;
        }
        self.scheduler.list_calls(req).await
    }

    /// Cancels a call of the caller's (any, for an admin) that has not ended: its record once
    /// it has.
    #[tracing::instrument(name = "gateway.cancel_call", skip_all, fields(call_id = id))]
    pub async fn cancel_call(&self, id: u64) -> Result<CallRecord, ApiError> {
        let user = acting_user()?;
        self.scheduler
            .cancel_call(CallRef {
                id,
                user,
                ..CallRef::default()
            })
            .await
    }

    /// The call's record once it has ended, or after `timeout` (if given) as it is then.
    pub async fn wait_call(
        &self,
        id: u64,
        timeout: Option<Duration>,
    ) -> Result<CallRecord, ApiError> {
        let timeout_ms = timeout.map_or(0, |t| (t.as_millis() as u64).max(1));
        let user = acting_user()?;
        self.scheduler
            .wait_call(WaitCallRequest {
                id,
                timeout_ms,
                user,
            })
            .await
    }

    /// Sets a value in the global tier of `user`'s state.
    #[tracing::instrument(name = "gateway.set_state", skip_all, fields(%user, %key, size = value.len()))]
    pub async fn set_state(&self, user: &str, key: &str, value: Bytes) -> Result<(), ApiError> {
        check_user(user, "state")?;
        self.state
            .set_state(SetStateRequest {
                user: user.into(),
                key: key.into(),
                value,
            })
            .await
    }

    /// `user`'s state keys under `prefix`, after `after`, a page of at most `limit` (0: the
    /// state service's page).
    pub async fn list_keys(
        &self,
        user: &str,
        prefix: &str,
        after: &str,
        limit: u32,
    ) -> Result<KeyList, ApiError> {
        names::check_name("user", user)?;
        check_user(user, "state")?;
        self.state
            .list_keys(ListKeysRequest {
                user: user.into(),
                prefix: prefix.into(),
                after: after.into(),
                limit,
            })
            .await
    }

    /// Removes `user`'s `key`: its value and append list.
    #[tracing::instrument(name = "gateway.delete_state", skip_all, fields(%user))]
    pub async fn delete_state(&self, user: &str, key: &str) -> Result<(), ApiError> {
        names::check_name("user", user)?;
        check_user(user, "state")?;
        self.state.delete_state(state_key(user, key)).await
    }

    /// A value of the global tier of `user`'s state; `None` if the key has none.
    pub async fn get_state(&self, user: &str, key: &str) -> Result<Option<Bytes>, ApiError> {
        let value = self.get_versioned(user, key).await?;
        Ok(value.exists.then_some(value.value))
    }

    /// A value of `user`'s state with its version (empty and 0 for a missing key).
    pub async fn get_versioned(&self, user: &str, key: &str) -> Result<StateValue, ApiError> {
        check_user(user, "state")?;
        self.state.get_state(state_key(user, key)).await
    }

    /// Writes of `user`'s state, all or none; the version each left its key at.
    #[tracing::instrument(name = "gateway.write_state", skip_all, fields(%user, ops = ops.len()))]
    pub async fn write_state(
        &self,
        user: &str,
        ops: Vec<StateWrite>,
    ) -> Result<Vec<u64>, ApiError> {
        check_user(user, "state")?;
        let request = WriteStateRequest {
            user: user.into(),
            ops,
        };
        Ok(self.state.write_state(request).await?.versions)
    }

    /// The next id of `user`'s sequence `key`.
    pub async fn next_id(&self, user: &str, key: &str) -> Result<u64, ApiError> {
        check_user(user, "sequences")?;
        self.state.next_id(state_key(user, key)).await
    }

    /// Stores `user`'s shared file at `path` (user "": a common file, every user's to read).
    #[tracing::instrument(name = "gateway.put_file", skip_all, fields(%user, %path, size = data.len()))]
    pub async fn put_file(&self, user: &str, path: &str, data: Bytes) -> Result<(), ApiError> {
        check_file_owner(user)?;
        let request = PutFileRequest {
            path: path.into(),
            data,
            user: user.into(),
        };
        self.state.put_file(request).await
    }

    /// `user`'s shared file at `path`; `None` if there is none.
    pub async fn get_file(&self, user: &str, path: &str) -> Result<Option<Bytes>, ApiError> {
        check_file_owner(user)?;
        let file = self.state.get_file(file_ref(user, path)).await?;
        Ok(file.exists.then_some(file.data))
    }

    /// Removes `user`'s shared file at `path`; NOT_FOUND if there is none.
    pub async fn delete_file(&self, user: &str, path: &str) -> Result<(), ApiError> {
        check_file_owner(user)?;
        self.state.delete_file(file_ref(user, path)).await
    }

    /// A page of `user`'s shared files under `prefix`, after the path `after`.
    pub async fn list_files(
        &self,
        user: &str,
        prefix: &str,
        after: &str,
        limit: u32,
    ) -> Result<FileList, ApiError> {
        check_file_owner(user)?;
        let request = ListFilesRequest {
            prefix: prefix.into(),
            after: after.into(),
            limit,
            user: user.into(),
        };
        self.state.list_files(request).await
    }

    /// Takes `user`'s global write lock on `key` for `holder` for `lease`, without waiting
    /// and without renewing a lock the holder has: whether it was granted.
    #[tracing::instrument(name = "gateway.try_lock", skip_all, fields(%user, %key))]
    pub async fn try_lock(
        &self,
        user: &str,
        key: &str,
        holder: &str,
        lease: Duration,
    ) -> Result<bool, ApiError> {
        check_user(user, "locks")?;
        let request = LockRequest {
            user: user.into(),
            key: key.into(),
            mode: LockMode::Write as i32,
            holder: holder.into(),
            lease_ms: lease.as_millis() as u64,
            wait_ms: 0,
            not_reentrant: true,
        };
        Ok(self.state.lock_state(request).await?.granted)
    }

    /// Releases what `holder` holds of `user`'s global lock on `key`: NOT_FOUND if no one
    /// holds it, FAILED_PRECONDITION if another holder does.
    #[tracing::instrument(name = "gateway.unlock", skip_all, fields(%user, %key))]
    pub async fn unlock(&self, user: &str, key: &str, holder: &str) -> Result<(), ApiError> {
        check_user(user, "locks")?;
        let request = UnlockRequest {
            user: user.into(),
            key: key.into(),
            holder: holder.into(),
        };
        self.state.unlock_state(request).await
    }

    /// Publishes `event`: one background call per function subscribed to its topic, each
    /// recorded before this returns; their call ids. When it fails, calls it started before
    /// run on (a retry reaches their functions again).
    pub async fn publish(&self, event: &Event) -> Result<Vec<u64>, ApiError> {
        check_user(&event.user, "topics")?;
        if event.data.len() > self.config.max_input_bytes {
            return Err(too_large(
                "event",
                event.data.len(),
                self.config.max_input_bytes,
            ));
        }
        pubsub::publish(self.state.as_ref(), self.scheduler.as_ref(), event, None)
            .await
            .map_err(|unpublished| unpublished.error)
    }

    /// Subscribes `user/function` (which must exist) to the user's `topic`.
    #[tracing::instrument(name = "gateway.subscribe", skip_all, fields(%user, %topic, %function))]
    pub async fn subscribe(&self, user: &str, topic: &str, function: &str) -> Result<(), ApiError> {
        names::check_function_ref(user, function)?;
        check_user(user, "subscriptions")?;
        pubsub::check_topic(topic)?;
        self.state
            .get_function_info(FunctionRef {
                user: user.into(),
                function: function.into(),
            })
            .await?;
        self.state
            .subscribe(subscription(user, topic, function))
            .await
    }

    /// Ends a subscription; NOT_FOUND if there is none.
    #[tracing::instrument(name = "gateway.unsubscribe", skip_all, fields(%user, %topic, %function))]
    pub async fn unsubscribe(
        &self,
        user: &str,
        topic: &str,
        function: &str,
    ) -> Result<(), ApiError> {
        check_user(user, "subscriptions")?;
        self.state
            .unsubscribe(subscription(user, topic, function))
            .await
    }

    /// The user's subscriptions, only `topic`'s unless it is empty.
    pub async fn subscriptions(
        &self,
        user: &str,
        topic: &str,
    ) -> Result<Vec<Subscription>, ApiError> {
        check_user(user, "subscriptions")?;
        let request = ListSubscriptionsRequest {
            user: user.into(),
            topic: topic.into(),
        };
        Ok(self.state.list_subscriptions(request).await?.subscriptions)
    }

    fn check(&self, inv: &Invocation) -> Result<(), ApiError> {
        names::check_function_ref(&inv.user, &inv.function)?;
        check_user(&inv.user, "functions")?;
        if inv.input.len() > self.config.max_input_bytes {
            return Err(too_large(
                "input",
                inv.input.len(),
                self.config.max_input_bytes,
            ));
        }
        names::check_cmdline(&inv.cmdline)
    }
}

/// Files are a user's, or (user "") the common files, which only an admin publishes.
fn check_file_owner(user: &str) -> Result<(), ApiError> {
    match user {
        "" => check_admin("the common files (which every user's functions read)"),
        user => check_user(user, "files"),
    }
}

fn file_ref(user: &str, path: &str) -> FileRef {
    FileRef {
        path: path.into(),
        user: user.into(),
        or_common: false,
    }
}

/// The user the current caller acts for; empty for an admin (or anyone, on an open API). It
/// is whose calls the caller sees (empty: all), and whose files Faasm's `/file` API (which
/// names no user) reaches (empty: the common files).
pub fn acting_user() -> Result<String, ApiError> {
    Ok(match Caller::current()? {
        Caller::User(user) => user,
        Caller::Open | Caller::Admin => String::new(),
    })
}

impl Invocation {
    /// A `POST /f/<user>/<function>` with `input`, as Faasm's JSON API and gRPC invoke.
    pub fn post(user: String, function: String, input: Bytes) -> Self {
        Self {
            path: format!("/f/{user}/{function}"),
            user,
            function,
            method: "POST".into(),
            input,
            ..Self::default()
        }
    }

    fn into_call(self) -> Call {
        Call {
            user: self.user,
            function: self.function,
            method: self.method,
            path: self.path,
            query: self.query,
            headers: self.headers,
            input: self.input,
            cmdline: self.cmdline,
            mpi_world_size: self.mpi_world_size,
            ..Call::default()
        }
    }
}

fn subscription(user: &str, topic: &str, function: &str) -> Subscription {
    Subscription {
        user: user.into(),
        topic: topic.into(),
        function: function.into(),
    }
}

fn state_key(user: &str, key: &str) -> StateKey {
    StateKey {
        user: user.into(),
        key: key.into(),
    }
}

/// An upload's names, caller, settings and size (`what`, its length and the limit).
fn check_upload(
    user: &str,
    function: &str,
    settings: Option<&FunctionSettings>,
    (what, len, limit): (&str, usize, usize),
) -> Result<(), ApiError> {
    names::check_function_ref(user, function)?;
    check_user(user, "functions")?;
    if let Some(settings) = settings {
        names::check_settings(settings)?;
    }
    if len > limit {
        return Err(too_large(what, len, limit));
    }
    Ok(())
}

pub(crate) fn too_large(what: &str, size: usize, limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("{what} of {size} bytes is over the limit of {limit} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use fwasm_proto::api::ExecutorApi;
    use fwasm_proto::pb::{
        CallsFinishedRequest, ExecutorHeartbeat, FailureKind, FunctionInfo, HeartbeatReply,
        LeaseRequest, PlacementLease, RecordCallsRequest,
    };
    use std::sync::Mutex;

    /// Leases ids from 100 on executor `leased_on`, places one by one on "free", and keeps the
    /// reports it gets.
    struct Scheduler {
        leased_on: &'static str,
        placed: Mutex<u32>,
        reports: Mutex<Vec<CallResult>>,
    }

    #[async_trait]
    impl SchedulerApi for Scheduler {
        async fn lease(&self, _: LeaseRequest) -> Result<PlacementLease, ApiError> {
            Ok(PlacementLease {
                first_call_id: 100,
                call_ids: 8,
                executor_id: self.leased_on.into(),
                valid_ms: 60_000,
                ..PlacementLease::default()
            })
        }
        async fn record_calls(&self, _: RecordCallsRequest) -> Result<(), ApiError> {
            Ok(())
        }
        async fn place(&self, _: PlaceRequest) -> Result<Placement, ApiError> {
            *self.placed.lock().unwrap() += 1;
            Ok(Placement {
                call_id: 900,
                executor_id: "free".into(),
                ..Placement::default()
            })
        }
        async fn call_finished(&self, result: CallResult) -> Result<(), ApiError> {
            self.reports.lock().unwrap().push(result);
            Ok(())
        }
        async fn calls_finished(&self, _: CallsFinishedRequest) -> Result<(), ApiError> {
            unreachable!()
        }
        async fn submit(&self, _: SubmitRequest) -> Result<Placement, ApiError> {
            unreachable!()
        }
        async fn function_updated(&self, _: FunctionInfo) -> Result<(), ApiError> {
            unreachable!()
        }
        async fn function_deleted(&self, _: FunctionRef) -> Result<(), ApiError> {
            unreachable!()
        }
        async fn get_call(&self, _: CallRef) -> Result<CallRecord, ApiError> {
            unreachable!()
        }
        async fn wait_call(&self, _: WaitCallRequest) -> Result<CallRecord, ApiError> {
            unreachable!()
        }
        async fn heartbeat(&self, _: ExecutorHeartbeat) -> Result<HeartbeatReply, ApiError> {
            unreachable!()
        }
        async fn set_quota(&self, _: UserQuota) -> Result<(), ApiError> {
            unreachable!()
        }
        async fn get_quota(&self, _: QuotaRef) -> Result<UserQuota, ApiError> {
            unreachable!()
        }
    }

    /// Executor "full" refuses for room, "gone" cannot be reached, "free" runs the call.
    struct Executors;

    struct Named(String);

    #[async_trait]
    impl ExecutorApi for Named {
        async fn execute(&self, call: Call) -> Result<CallResult, ApiError> {
            match self.0.as_str() {
                "full" => Err(ApiError::resource_exhausted("full")),
                "gone" => Err(ApiError::unavailable("connection refused")),
                _ => Ok(CallResult {
                    id: call.id,
                    output: format!("ran on {}", self.0).into_bytes().into(),
                    ..CallResult::default()
                }),
            }
        }
    }

    impl ExecutorDirectory for Executors {
        fn executor(&self, placement: &Placement) -> Result<Arc<dyn ExecutorApi>, ApiError> {
            Ok(Arc::new(Named(placement.executor_id.clone())))
        }
    }

    async fn call_with_lease_on(
        leased_on: &'static str,
    ) -> (Result<CallResult, ApiError>, Arc<Scheduler>) {
        let scheduler = Arc::new(Scheduler {
            leased_on,
            placed: Mutex::new(0),
            reports: Mutex::new(Vec::new()),
        });
        let runtime = tokio::runtime::Handle::current();
        let leases = Leases::new(scheduler.clone(), String::new(), &runtime);
        let call = Call {
            user: "u".into(),
            function: "f".into(),
            ..Call::default()
        };
        let result = place_and_run(&*scheduler, &Executors, Some(&leases), call).await;
        (result, scheduler)
    }

    #[tokio::test]
    async fn a_call_its_leased_executor_is_too_full_for_is_placed_where_there_is_room() {
        let (result, scheduler) = call_with_lease_on("full").await;
        let result = result.unwrap();
        assert_eq!((result.id, &result.output[..]), (900, &b"ran on free"[..]));
        assert_eq!(*scheduler.placed.lock().unwrap(), 1);
        // The leased id it never ran under is reported as not run.
        let reports = scheduler.reports.lock().unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(
            (reports[0].id, reports[0].failure()),
            (100, FailureKind::NotRun)
        );
    }

    #[tokio::test]
    async fn a_call_its_leased_executor_could_not_be_reached_for_is_not_sent_again() {
        let (result, scheduler) = call_with_lease_on("gone").await;
        assert_eq!(result.unwrap_err().code, ErrorCode::Unavailable);
        assert_eq!(
            *scheduler.placed.lock().unwrap(),
            0,
            "it may have run there"
        );
        assert_eq!(scheduler.reports.lock().unwrap()[0].id, 100);
    }

    #[tokio::test]
    async fn a_call_from_a_lease_runs_on_the_leases_executor() {
        let (result, scheduler) = call_with_lease_on("leased").await;
        let result = result.unwrap();
        assert_eq!(
            (result.id, &result.output[..]),
            (100, &b"ran on leased"[..])
        );
        assert_eq!(*scheduler.placed.lock().unwrap(), 0);
        assert!(scheduler.reports.lock().unwrap().is_empty());
    }
}
