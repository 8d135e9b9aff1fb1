//! The state service's API implementation over any [`Backend`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fwasm_proto::api::StateApi;
use fwasm_proto::pb::{
    AppendedState, CallRecord, CallRef, FileData, FileEntry, FileList, FileRef, FunctionCode,
    FunctionInfo, FunctionList, FunctionRef, FunctionSettings, KeyList, ListFilesRequest,
    ListFunctionsRequest, ListKeysRequest, ListQuotasRequest, ListSubscriptionsRequest,
    ListTokensRequest, ListUsersRequest, LoadedCall, LockMode, LockReply, LockRequest, ModuleRef,
    PutFileRequest, PutFunctionRequest, PutSnapshotRequest, QuotaList, QuotaRef, SaveCallRequest,
    SetStateRequest, SnapshotRef, StateKey, StateValue, StorageUsage, StoredSnapshot, Subscription,
    SubscriptionList, TokenList, TokenRecord, TokenRef, UnlockRequest, UserList, UserQuota,
    WriteStateReply, WriteStateRequest,
};
use fwasm_proto::{ApiError, ErrorCode, names};
use sha2::{Digest, Sha256};

use crate::StateLimits;
use crate::backend::{
    Backend, BackendError, FunctionRecord, LockMode as Mode, StateOp, StorageQuota, Unlocked,
};
use crate::locks::{Ask, GlobalLocks};
use crate::storage_quotas::{StorageQuotas, decode_quota};

pub struct StateService {
    backend: Arc<dyn Backend>,
    limits: StateLimits,
    locks: GlobalLocks,
    quotas: StorageQuotas,
}

impl StateService {
    pub fn new(backend: Arc<dyn Backend>, limits: StateLimits) -> Self {
        let quotas = StorageQuotas::new(
            limits.max_stored_bytes_per_user,
            limits.max_functions_per_user,
        );
        Self {
            backend,
            limits,
            locks: GlobalLocks::default(),
            quotas,
        }
    }

    /// The storage limits in force for `user`.
    async fn quota(&self, user: &str) -> Result<StorageQuota, ApiError> {
        self.quotas.of(user, self.backend.as_ref()).await
    }

    fn check_value(&self, what: &str, len: usize) -> Result<(), ApiError> {
        check_size(&format!("a state {what}"), len, self.limits.max_value_bytes)
    }
}

/// The most functions one topic may call for each event.
const MAX_SUBSCRIBERS_PER_TOPIC: usize = 1000;
/// The most subscriptions one user may have (a listing returns them all). The limits are
/// checked before the write, so concurrent subscribes may pass them by a few.
const MAX_SUBSCRIPTIONS_PER_USER: usize = 10_000;
/// The most files one listing returns.
const MAX_FILES_PER_PAGE: usize = 1000;
/// The most state keys one listing returns.
const MAX_KEYS_PER_PAGE: usize = 1000;
/// The most ops one state transaction may have.
const MAX_TRANSACTION_OPS: usize = 1000;
/// The most bytes of values one state transaction may write.
const MAX_TRANSACTION_BYTES: usize = 64 << 20;

/// A file's owner: a user, or "" for the common files.
fn check_file_owner(user: &str) -> Result<(), ApiError> {
    match user {
        "" => Ok(()),
        user => names::check_name("user", user),
    }
}

/// Refuses `len` bytes of `what` over `max`.
fn check_size(what: &str, len: usize, max: usize) -> Result<(), ApiError> {
    if len > max {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("{what} of {len} bytes is over the limit of {max} bytes"),
        ));
    }
    Ok(())
}

impl From<BackendError> for ApiError {
    fn from(err: BackendError) -> Self {
        match err {
            BackendError::TooManyKeys { .. }
            | BackendError::ListFull { .. }
            | BackendError::OverStoredBytes { .. }
            | BackendError::TooManyFunctions { .. } => {
                ApiError::resource_exhausted(err.to_string())
            }
            BackendError::VersionMismatch { .. } => {
                ApiError::new(ErrorCode::Aborted, err.to_string())
            }
            _ => ApiError::unavailable(err.to_string()),
        }
    }
}

fn check_key(user: &str, key: &str) -> Result<(), ApiError> {
    names::check_name("user", user)?;
    names::check_state_key(key)
}

/// The longest name of a lock's holder.
const MAX_HOLDER_BYTES: usize = 256;

fn check_holder(holder: &str) -> Result<(), ApiError> {
    if holder.len() > MAX_HOLDER_BYTES {
        return Err(ApiError::invalid_argument(format!(
            "a lock holder's name of {} bytes is over the limit of {MAX_HOLDER_BYTES} bytes",
            holder.len()
        )));
    }
    Ok(())
}

fn check_subscription(req: &Subscription) -> Result<(), ApiError> {
    names::check_function_ref(&req.user, &req.function)?;
    names::check_name("topic", &req.topic)
}

fn info(user: String, function: String, record: FunctionRecord) -> FunctionInfo {
    FunctionInfo {
        user,
        function,
        module_hash: record.module_hash,
        size: record.size,
        settings: record.settings,
        abi: record.abi,
        uploaded_at_ms: record.uploaded_at_ms,
    }
}

fn unknown_function(user: &str, function: &str) -> ApiError {
    ApiError::not_found(format!(
        "function {user}/{function} does not exist; upload it first"
    ))
}

#[async_trait]
impl StateApi for StateService {
    #[tracing::instrument(skip_all, fields(user = %req.user, function = %req.function, size = req.wasm.len()))]
    async fn put_function(&self, req: PutFunctionRequest) -> Result<FunctionInfo, ApiError> {
        names::check_function_ref(&req.user, &req.function)?;
        let record = FunctionRecord {
            module_hash: hex::encode(Sha256::digest(&req.wasm)),
            size: req.wasm.len() as u64,
            settings: req.settings.filter(|s| *s != FunctionSettings::default()),
            abi: req.abi,
            uploaded_at_ms: crate::backend::unix_millis(),
        };
        let quota = match req.beyond_quota {
            true => StorageQuota::NONE,
            false => self.quota(&req.user).await?,
        };
        let before = self.backend.function(&req.user, &req.function).await?;
        self.backend
            .put_function(&req.user, &req.function, &record, req.wasm, quota)
            .await?;
        // A snapshot of what the function ran before would never be found again (its key
        // names the old module and settings): not kept.
        let same_code = |before: &FunctionRecord| {
            before.module_hash == record.module_hash && before.settings == record.settings
        };
        if before.is_some_and(|before| !same_code(&before)) {
            let dropped = self.backend.delete_snapshot(&req.user, &req.function).await;
            if let Err(err) = dropped {
                tracing::warn!(error = %err, "could not drop the function's old snapshot");
            }
        }
        Ok(info(req.user, req.function, record))
    }

    #[tracing::instrument(skip_all, fields(user = %req.user, function = %req.function))]
    async fn get_function_info(&self, req: FunctionRef) -> Result<FunctionInfo, ApiError> {
        match self.backend.function(&req.user, &req.function).await? {
            Some(record) => Ok(info(req.user, req.function, record)),
            None => Err(unknown_function(&req.user, &req.function)),
        }
    }

    #[tracing::instrument(skip_all)]
    async fn list_users(&self, _: ListUsersRequest) -> Result<UserList, ApiError> {
        let users = self.backend.function_users().await?;
        Ok(UserList { users })
    }

    #[tracing::instrument(skip_all, fields(user = %req.user))]
    async fn list_functions(&self, req: ListFunctionsRequest) -> Result<FunctionList, ApiError> {
        names::check_name("user", &req.user)?;
        let functions = self.backend.list_functions(&req.user).await?;
        Ok(FunctionList {
            functions: functions
                .into_iter()
                .map(|(name, record)| info(req.user.clone(), name, record))
                .collect(),
        })
    }

    #[tracing::instrument(skip_all, fields(user = %req.user, function = %req.function))]
    async fn delete_function(&self, req: FunctionRef) -> Result<(), ApiError> {
        names::check_function_ref(&req.user, &req.function)?;
        if self
            .backend
            .delete_function(&req.user, &req.function)
            .await?
            .is_none()
        {
            return Err(unknown_function(&req.user, &req.function));
        }
        // Its snapshot would never be used again; its subscriptions would start calls of a
        // function that is not there (or, once the name is uploaded again, of another).
        let dropped = self.backend.delete_snapshot(&req.user, &req.function).await;
        if let Err(err) = dropped {
            tracing::warn!(error = %err, "could not drop a deleted function's snapshot");
        }
        for (topic, function) in self.backend.subscriptions(&req.user, None).await? {
            if function == req.function {
                self.backend
                    .set_subscription(&req.user, &topic, &function, false)
                    .await?;
            }
        }
        tracing::info!("function deleted");
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user = %req.user, function = %req.function))]
    async fn get_function(&self, req: FunctionRef) -> Result<FunctionCode, ApiError> {
        let info = self.get_function_info(req).await?;
        self.get_module(ModuleRef {
            module_hash: info.module_hash,
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(module_hash = %req.module_hash))]
    async fn get_module(&self, req: ModuleRef) -> Result<FunctionCode, ApiError> {
        match self.backend.module(&req.module_hash).await? {
            Some(wasm) => Ok(FunctionCode {
                module_hash: req.module_hash,
                wasm,
            }),
            None => Err(ApiError::not_found(format!(
                "no module with hash {}",
                req.module_hash
            ))),
        }
    }

    #[tracing::instrument(skip_all, fields(user = %req.user, key = %req.key))]
    async fn get_state(&self, req: StateKey) -> Result<StateValue, ApiError> {
        check_key(&req.user, &req.key)?;
        let found = self.backend.get_versioned(&req.user, &req.key).await?;
        Ok(match found {
            Some(found) => StateValue {
                exists: true,
                value: found.value,
                version: found.version,
            },
            None => StateValue::default(),
        })
    }

    #[tracing::instrument(skip_all, fields(user = %req.user, ops = req.ops.len()))]
    async fn write_state(&self, req: WriteStateRequest) -> Result<WriteStateReply, ApiError> {
        names::check_name("user", &req.user)?;
        if req.ops.len() > MAX_TRANSACTION_OPS {
            return Err(ApiError::invalid_argument(format!(
                "a state transaction of {} operations is over the limit of {MAX_TRANSACTION_OPS}",
                req.ops.len()
            )));
        }
        let mut total = 0;
        let mut ops = Vec::with_capacity(req.ops.len());
        for op in req.ops {
            check_key(&req.user, &op.key)?;
            self.check_value("value", op.value.len())?;
            total += op.value.len();
            ops.push(StateOp {
                key: op.key,
                value: (!op.delete).then_some(op.value),
                expected_version: op.expected_version,
            });
        }
        check_size("a state transaction", total, MAX_TRANSACTION_BYTES)?;
        let (max_keys, quota) = (self.limits.max_keys_per_user, self.quota(&req.user).await?);
        let versions = self
            .backend
            .write_state(&req.user, ops, max_keys, quota)
            .await?;
        Ok(WriteStateReply { versions })
    }

    async fn next_id(&self, req: StateKey) -> Result<u64, ApiError> {
        check_key(&req.user, &req.key)?;
        Ok(self.backend.next_id(&req.user, &req.key).await?)
    }

    #[tracing::instrument(skip_all, fields(user = %req.user, key = %req.key, size = req.value.len()))]
    async fn set_state(&self, req: SetStateRequest) -> Result<(), ApiError> {
        check_key(&req.user, &req.key)?;
        self.check_value("value", req.value.len())?;
        let (max_keys, quota) = (self.limits.max_keys_per_user, self.quota(&req.user).await?);
        self.backend
            .set_state(&req.user, &req.key, req.value, max_keys, quota)
            .await?;
        Ok(())
    }

    async fn state_size(&self, req: StateKey) -> Result<u64, ApiError> {
        check_key(&req.user, &req.key)?;
        Ok(self.backend.state_size(&req.user, &req.key).await?)
    }

    #[tracing::instrument(skip_all, fields(user = %req.user, key = %req.key))]
    async fn delete_state(&self, req: StateKey) -> Result<(), ApiError> {
        check_key(&req.user, &req.key)?;
        Ok(self.backend.delete_state(&req.user, &req.key).await?)
    }

    async fn append_state(&self, req: SetStateRequest) -> Result<(), ApiError> {
        check_key(&req.user, &req.key)?;
        self.check_value("list element", req.value.len())?;
        let max_keys = self.limits.max_keys_per_user;
        let max_list_bytes = self.limits.max_list_bytes;
        let quota = self.quota(&req.user).await?;
        Ok(self
            .backend
            .append_state(
                &req.user,
                &req.key,
                req.value,
                max_keys,
                max_list_bytes,
                quota,
            )
            .await?)
    }

    async fn read_appended(&self, req: StateKey) -> Result<AppendedState, ApiError> {
        check_key(&req.user, &req.key)?;
        let elements = self.backend.read_appended(&req.user, &req.key).await?;
        Ok(AppendedState { elements })
    }

    async fn clear_appended(&self, req: StateKey) -> Result<(), ApiError> {
        check_key(&req.user, &req.key)?;
        Ok(self.backend.clear_appended(&req.user, &req.key).await?)
    }

    #[tracing::instrument(skip_all, fields(user = %req.user, key = %req.key, holder = %req.holder))]
    async fn lock_state(&self, req: LockRequest) -> Result<LockReply, ApiError> {
        check_key(&req.user, &req.key)?;
        let mode = match req.mode() {
            LockMode::Read => Mode::Read,
            LockMode::Write => Mode::Write,
            LockMode::Unspecified => {
                return Err(ApiError::invalid_argument("a lock request names no mode"));
            }
        };
        if req.holder.is_empty() || req.lease_ms == 0 {
            return Err(ApiError::invalid_argument(
                "a lock request needs a holder and a lease",
            ));
        }
        check_holder(&req.holder)?;
        let ask = Ask {
            user: &req.user,
            key: &req.key,
            holder: &req.holder,
            mode,
            lease: Duration::from_millis(req.lease_ms).min(self.limits.max_lock_lease),
            wait: Duration::from_millis(req.wait_ms).min(self.limits.max_lock_lease),
            reentrant: !req.not_reentrant,
        };
        let granted = self.locks.lock(self.backend.as_ref(), ask).await?;
        Ok(LockReply { granted })
    }

    #[tracing::instrument(skip_all, fields(user = %req.user, key = %req.key, holder = %req.holder))]
    async fn unlock_state(&self, req: UnlockRequest) -> Result<(), ApiError> {
        check_key(&req.user, &req.key)?;
        check_holder(&req.holder)?;
        let backend = self.backend.as_ref();
        match self
            .locks
            .unlock(backend, &req.user, &req.key, &req.holder)
            .await?
        {
            Unlocked::Released => Ok(()),
            Unlocked::NotLocked => Err(ApiError::not_found(format!(
                "{} holds no lock on the state key {:?}: no one does",
                req.holder, req.key
            ))),
            Unlocked::HeldByOthers => Err(ApiError::new(
                ErrorCode::FailedPrecondition,
                format!(
                    "{} holds no lock on the state key {:?}: another holder does",
                    req.holder, req.key
                ),
            )),
        }
    }

    #[tracing::instrument(skip_all, fields(user = %req.user, path = %req.path, size = req.data.len()))]
    async fn put_file(&self, req: PutFileRequest) -> Result<(), ApiError> {
        let path = names::normalize_file_path(&req.path)?;
        check_file_owner(&req.user)?;
        check_size("a shared file", req.data.len(), self.limits.max_file_bytes)?;
        // The common files are an operator's, under no user's quota.
        let quota = match req.user.as_str() {
            "" => StorageQuota::NONE,
            user => self.quota(user).await?,
        };
        Ok(self
            .backend
            .put_file(&req.user, &path, req.data, quota)
            .await?)
    }

    async fn get_file(&self, req: FileRef) -> Result<FileData, ApiError> {
        let path = names::normalize_file_path(&req.path)?;
        check_file_owner(&req.user)?;
        let mut data = self.backend.file(&req.user, &path).await?;
        if data.is_none() && req.or_common && !req.user.is_empty() {
            data = self.backend.file("", &path).await?;
        }
        Ok(FileData {
            exists: data.is_some(),
            data: data.unwrap_or_default(),
        })
    }

    async fn delete_file(&self, req: FileRef) -> Result<(), ApiError> {
        let path = names::normalize_file_path(&req.path)?;
        check_file_owner(&req.user)?;
        match self.backend.delete_file(&req.user, &path).await? {
            true => Ok(()),
            false => Err(ApiError::not_found(format!("no shared file at {path:?}"))),
        }
    }

    async fn list_keys(&self, req: ListKeysRequest) -> Result<KeyList, ApiError> {
        names::check_name("user", &req.user)?;
        if req.prefix.len() > names::MAX_STATE_KEY_LEN || req.after.len() > names::MAX_STATE_KEY_LEN
        {
            return Err(ApiError::invalid_argument("a key prefix is too long"));
        }
        let limit = match req.limit {
            0 => MAX_KEYS_PER_PAGE,
            limit => (limit as usize).min(MAX_KEYS_PER_PAGE),
        };
        // One more than asked, to know whether more follow.
        let mut keys = self
            .backend
            .list_keys(&req.user, &req.prefix, &req.after, limit + 1)
            .await?;
        let truncated = keys.len() > limit;
        keys.truncate(limit);
        Ok(KeyList { keys, truncated })
    }

    async fn list_files(&self, req: ListFilesRequest) -> Result<FileList, ApiError> {
        // A prefix is a path's beginning, not a path: it may end in "/" or be empty.
        if req.prefix.len() > names::MAX_FILE_PATH_LEN || req.after.len() > names::MAX_FILE_PATH_LEN
        {
            return Err(ApiError::invalid_argument("a file path prefix is too long"));
        }
        check_file_owner(&req.user)?;
        let limit = match req.limit {
            0 => MAX_FILES_PER_PAGE,
            limit => (limit as usize).min(MAX_FILES_PER_PAGE),
        };
        // One more than asked, to know whether more follow.
        let mut found = self
            .backend
            .list_files(&req.user, &req.prefix, &req.after, limit + 1)
            .await?;
        let truncated = found.len() > limit;
        found.truncate(limit);
        let files = found
            .into_iter()
            .map(|(path, size)| FileEntry { path, size })
            .collect();
        Ok(FileList { files, truncated })
    }

    #[tracing::instrument(skip_all, fields(user = %req.user, topic = %req.topic, function = %req.function))]
    async fn subscribe(&self, req: Subscription) -> Result<(), ApiError> {
        check_subscription(&req)?;
        let subscribed = self
            .backend
            .subscriptions(&req.user, Some(&req.topic))
            .await?;
        let already = subscribed.iter().any(|(_, f)| *f == req.function);
        if !already && subscribed.len() >= MAX_SUBSCRIBERS_PER_TOPIC {
            return Err(ApiError::resource_exhausted(format!(
                "topic {:?} of {} already has its limit of {MAX_SUBSCRIBERS_PER_TOPIC} \
                 subscribed functions; unsubscribe some first",
                req.topic, req.user
            )));
        }
        let all = self.backend.subscriptions(&req.user, None).await?;
        if !already && all.len() >= MAX_SUBSCRIPTIONS_PER_USER {
            return Err(ApiError::resource_exhausted(format!(
                "{} already has its limit of {MAX_SUBSCRIPTIONS_PER_USER} subscriptions; \
                 unsubscribe some first",
                req.user
            )));
        }
        self.backend
            .set_subscription(&req.user, &req.topic, &req.function, true)
            .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user = %req.user, topic = %req.topic, function = %req.function))]
    async fn unsubscribe(&self, req: Subscription) -> Result<(), ApiError> {
        check_subscription(&req)?;
        let changed = self
            .backend
            .set_subscription(&req.user, &req.topic, &req.function, false)
            .await?;
        match changed {
            true => Ok(()),
            false => Err(ApiError::not_found(format!(
                "{}/{} is not subscribed to the topic {:?}",
                req.user, req.function, req.topic
            ))),
        }
    }

    async fn list_subscriptions(
        &self,
        req: ListSubscriptionsRequest,
    ) -> Result<SubscriptionList, ApiError> {
        names::check_name("user", &req.user)?;
        if !req.topic.is_empty() {
            names::check_name("topic", &req.topic)?;
        }
        let topic = (!req.topic.is_empty()).then_some(req.topic.as_str());
        let found = self.backend.subscriptions(&req.user, topic).await?;
        let subscriptions = found
            .into_iter()
            .map(|(topic, function)| Subscription {
                user: req.user.clone(),
                topic,
                function,
            })
            .collect();
        Ok(SubscriptionList { subscriptions })
    }

    async fn save_call(&self, req: SaveCallRequest) -> Result<(), ApiError> {
        let record = req
            .record
            .ok_or_else(|| ApiError::invalid_argument("save_call names no record"))?;
        let encoded = prost::Message::encode_to_vec(&record);
        let ttl = Duration::from_secs(req.ttl_seconds);
        Ok(self
            .backend
            .save_call(record.id, encoded.into(), ttl)
            .await?)
    }

    async fn load_call(&self, req: CallRef) -> Result<LoadedCall, ApiError> {
        let Some(encoded) = self.backend.call(req.id).await? else {
            return Ok(LoadedCall::default());
        };
        let record = <CallRecord as prost::Message>::decode(encoded)
            .map_err(|e| ApiError::internal(format!("call {} is stored garbled: {e}", req.id)))?;
        Ok(LoadedCall {
            record: Some(record),
            exists: true,
        })
    }

    async fn put_token(&self, req: TokenRecord) -> Result<(), ApiError> {
        check_token_id(&req.id)?;
        let encoded = prost::Message::encode_to_vec(&req);
        Ok(self.backend.put_token(&req.id, encoded.into()).await?)
    }

    async fn get_token(&self, req: TokenRef) -> Result<TokenRecord, ApiError> {
        check_token_id(&req.id)?;
        match self.backend.token(&req.id).await? {
            Some(encoded) => decode_token(encoded),
            None => Err(unknown_token(&req.id)),
        }
    }

    async fn delete_token(&self, req: TokenRef) -> Result<(), ApiError> {
        check_token_id(&req.id)?;
        match self.backend.delete_token(&req.id).await? {
            true => Ok(()),
            false => Err(unknown_token(&req.id)),
        }
    }

    async fn put_quota(&self, req: UserQuota) -> Result<(), ApiError> {
        // Loaded first, so a load under way cannot bring back what this replaces.
        self.quotas
            .in_force(&req.user, self.backend.as_ref())
            .await?;
        put_quota_in(self.backend.as_ref(), &req).await?;
        self.quotas.set(&req);
        Ok(())
    }

    async fn list_quotas(&self, _: ListQuotasRequest) -> Result<QuotaList, ApiError> {
        let encoded = self.backend.quotas().await?;
        let quotas = encoded
            .into_iter()
            .map(decode_quota)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(QuotaList { quotas })
    }

    async fn get_usage(&self, req: QuotaRef) -> Result<StorageUsage, ApiError> {
        names::check_name("user", &req.user)?;
        let usage = self.backend.usage(&req.user).await?;
        let (max_stored_bytes, max_functions) = self
            .quotas
            .in_force(&req.user, self.backend.as_ref())
            .await?;
        Ok(StorageUsage {
            user: req.user,
            stored_bytes: usage.bytes,
            functions: usage.functions.try_into().unwrap_or(u32::MAX),
            max_stored_bytes,
            max_functions,
        })
    }

    async fn list_tokens(&self, _: ListTokensRequest) -> Result<TokenList, ApiError> {
        let encoded = self.backend.tokens().await?;
        let mut tokens = encoded
            .into_iter()
            .map(decode_token)
            .collect::<Result<Vec<_>, _>>()?;
        tokens.sort_by(|a, b| (a.created_unix_millis, &a.id).cmp(&(b.created_unix_millis, &b.id)));
        Ok(TokenList { tokens })
    }

    #[tracing::instrument(skip_all, fields(bytes = req.image.len()))]
    async fn put_snapshot(&self, req: PutSnapshotRequest) -> Result<(), ApiError> {
        let Some(of) = &req.snapshot else {
            return Err(ApiError::invalid_argument("put_snapshot names no function"));
        };
        names::check_function_ref(&of.user, &of.function)?;
        let (user, function) = (of.user.clone(), of.function.clone());
        // Megabytes to copy: off the async workers.
        let record = tokio::task::spawn_blocking(move || prost::Message::encode_to_vec(&req))
            .await
            .map_err(|e| ApiError::internal(format!("encoding the snapshot failed: {e}")))?;
        Ok(self
            .backend
            .put_snapshot(&user, &function, record.into())
            .await?)
    }

    #[tracing::instrument(skip_all, fields(user = %req.user, function = %req.function))]
    async fn get_snapshot(&self, req: SnapshotRef) -> Result<StoredSnapshot, ApiError> {
        names::check_function_ref(&req.user, &req.function)?;
        let Some(record) = self.backend.snapshot(&req.user, &req.function).await? else {
            return Ok(StoredSnapshot::default());
        };
        let stored = <PutSnapshotRequest as prost::Message>::decode(record).map_err(|e| {
            ApiError::internal(format!(
                "the snapshot of {}/{} is stored garbled: {e}",
                req.user, req.function
            ))
        })?;
        // One kept per function: the one there may be of an earlier module or settings.
        match stored.snapshot.is_some_and(|of| of.key == req.key) {
            true => Ok(StoredSnapshot {
                found: true,
                image: stored.image,
            }),
            false => Ok(StoredSnapshot::default()),
        }
    }
}

/// Keeps a user's own quotas; one with every limit 0 removes them.
async fn put_quota_in(backend: &dyn Backend, req: &UserQuota) -> Result<(), ApiError> {
    names::check_name("user", &req.user)?;
    if !req.calls_per_second.is_finite() || req.calls_per_second < 0.0 {
        return Err(ApiError::invalid_argument(format!(
            "{} calls per second is not a rate",
            req.calls_per_second
        )));
    }
    let unlimited = UserQuota {
        user: req.user.clone(),
        ..UserQuota::default()
    };
    let quota = (*req != unlimited).then(|| prost::Message::encode_to_vec(req).into());
    Ok(backend.put_quota(&req.user, quota).await?)
}

/// The longest token id (ids fwasm makes are 16 hex digits; the admin token's is `admin`).
const MAX_TOKEN_ID_BYTES: usize = 64;

fn check_token_id(id: &str) -> Result<(), ApiError> {
    let fine = !id.is_empty()
        && id.len() <= MAX_TOKEN_ID_BYTES
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    match fine {
        true => Ok(()),
        false => Err(ApiError::invalid_argument(format!(
            "{id:?} is not a token id (letters, digits and '-', at most {MAX_TOKEN_ID_BYTES})"
        ))),
    }
}

fn unknown_token(id: &str) -> ApiError {
    ApiError::not_found(format!("no token has the id {id:?}"))
}

fn decode_token(encoded: bytes::Bytes) -> Result<TokenRecord, ApiError> {
    <TokenRecord as prost::Message>::decode(encoded)
        .map_err(|e| ApiError::internal(format!("a token record is stored garbled: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmbeddedBackend;

    fn service(dir: &std::path::Path) -> StateService {
        let limits = StateLimits {
            max_value_bytes: 4,
            max_keys_per_user: 2,
            ..StateLimits::default()
        };
        StateService::new(Arc::new(EmbeddedBackend::open(dir).unwrap()), limits)
    }

    fn set(user: &str, key: &str, value: &'static str) -> SetStateRequest {
        SetStateRequest {
            user: user.into(),
            key: key.into(),
            value: value.into(),
        }
    }

    #[tokio::test]
    async fn a_snapshot_is_found_only_under_the_key_it_was_put_with() {
        let dir = tempfile::tempdir().unwrap();
        let state = service(dir.path());
        let of = |key: &str| SnapshotRef {
            user: "u".into(),
            function: "f".into(),
            key: key.into(),
        };
        let put = |key: &str, image: &'static str| PutSnapshotRequest {
            snapshot: Some(of(key)),
            image: image.into(),
        };
        assert!(!state.get_snapshot(of("m1")).await.unwrap().found);
        state.put_snapshot(put("m1", "first")).await.unwrap();
        let found = state.get_snapshot(of("m1")).await.unwrap();
        assert_eq!((found.found, &found.image[..]), (true, &b"first"[..]));
        // A new module (or new settings): the old snapshot is not it, and is replaced.
        assert_eq!(
            state.get_snapshot(of("m2")).await.unwrap(),
            StoredSnapshot::default()
        );
        state.put_snapshot(put("m2", "second")).await.unwrap();
        assert!(!state.get_snapshot(of("m1")).await.unwrap().found);
        assert_eq!(
            &state.get_snapshot(of("m2")).await.unwrap().image[..],
            b"second"
        );
        let err = state
            .put_snapshot(PutSnapshotRequest::default())
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument, "{err}");
        let bad = SnapshotRef {
            user: "no/user".into(),
            ..of("m2")
        };
        assert_eq!(
            state.get_snapshot(bad).await.unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }

    #[tokio::test]
    async fn a_new_module_drops_the_functions_snapshot_and_the_same_one_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let state = service(dir.path());
        let upload = |wasm: &'static [u8]| PutFunctionRequest {
            user: "u".into(),
            function: "f".into(),
            wasm: wasm.into(),
            settings: None,
            beyond_quota: true,
            abi: String::new(),
        };
        let of = SnapshotRef {
            user: "u".into(),
            function: "f".into(),
            key: "k".into(),
        };
        let snapshot = PutSnapshotRequest {
            snapshot: Some(of.clone()),
            image: "image".into(),
        };
        state.put_function(upload(b"\0asm one")).await.unwrap();
        state.put_snapshot(snapshot.clone()).await.unwrap();
        state.put_function(upload(b"\0asm one")).await.unwrap();
        assert!(
            state.get_snapshot(of.clone()).await.unwrap().found,
            "the same module"
        );
        state.put_function(upload(b"\0asm two")).await.unwrap();
        assert!(!state.get_snapshot(of).await.unwrap().found, "a new module");
    }

    #[tokio::test]
    async fn transactions_are_checked_whole_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let state = service(dir.path());
        let write = |key: &str, value: &'static str| fwasm_proto::pb::StateWrite {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        };
        let request = |user: &str, ops| WriteStateRequest {
            user: user.into(),
            ops,
        };
        // One value over the limit refuses all, the good one before it included.
        let ops = vec![write("a", "ok"), write("b", "12345")];
        let err = state.write_state(request("u", ops)).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::PayloadTooLarge, "{err}");
        let ops = vec![write("a", "ok"); MAX_TRANSACTION_OPS + 1];
        let err = state.write_state(request("u", ops)).await.unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                ErrorCode::InvalidArgument,
                "a state transaction of 1001 operations is over the limit of 1000"
            )
        );
        let err = state.write_state(request("u", vec![write("", "v")])).await;
        assert_eq!(err.unwrap_err().code, ErrorCode::InvalidArgument);
        let err = state.write_state(request("no/user", vec![])).await;
        assert_eq!(err.unwrap_err().code, ErrorCode::InvalidArgument);
        let a = StateKey {
            user: "u".into(),
            key: "a".into(),
        };
        assert!(!state.get_state(a.clone()).await.unwrap().exists);
        // A stale version is ABORTED.
        let versions = state
            .write_state(request("u", vec![write("a", "v1")]))
            .await
            .unwrap()
            .versions;
        assert_eq!(state.get_state(a).await.unwrap().version, versions[0]);
        let stale = fwasm_proto::pb::StateWrite {
            expected_version: Some(versions[0] + 1),
            ..write("a", "v2")
        };
        let err = state
            .write_state(request("u", vec![stale]))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Aborted, "{err}");
    }

    #[tokio::test]
    async fn values_keys_and_key_counts_are_limited_with_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let state = service(dir.path());
        let err = state.set_state(set("u", "k", "12345")).await.unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                ErrorCode::PayloadTooLarge,
                "a state value of 5 bytes is over the limit of 4 bytes"
            )
        );
        let err = state
            .append_state(set("u", "k", "12345"))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::PayloadTooLarge);

        state.set_state(set("u", "a", "1")).await.unwrap();
        state.append_state(set("u", "b", "1")).await.unwrap();
        let err = state.set_state(set("u", "c", "1")).await.unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                ErrorCode::ResourceExhausted,
                "the user already has its limit of 2 state keys; delete some first"
            )
        );
        state.set_state(set("other", "c", "1")).await.unwrap();

        let err = state.set_state(set("u", "", "1")).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        let err = state.set_state(set("no/user", "k", "1")).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
    }

    #[tokio::test]
    async fn tokens_are_found_by_id_listed_oldest_first_and_ids_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let state = service(dir.path());
        let token = |id: &str, created: u64| TokenRecord {
            id: id.into(),
            user: "u".into(),
            secret_sha256: vec![7; 32].into(),
            created_unix_millis: created,
            ..TokenRecord::default()
        };
        state.put_token(token("late", 2)).await.unwrap();
        state.put_token(token("early", 1)).await.unwrap();
        let found = state.get_token(TokenRef { id: "late".into() }).await;
        assert_eq!(found.unwrap(), token("late", 2));
        let listed = state.list_tokens(ListTokensRequest {}).await.unwrap();
        let ids: Vec<_> = listed.tokens.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["early", "late"]);
        state
            .delete_token(TokenRef { id: "late".into() })
            .await
            .unwrap();
        for gone in [
            state
                .get_token(TokenRef { id: "late".into() })
                .await
                .unwrap_err(),
            state
                .delete_token(TokenRef { id: "late".into() })
                .await
                .unwrap_err(),
        ] {
            assert_eq!(gone.code, ErrorCode::NotFound);
            assert_eq!(gone.message, "no token has the id \"late\"");
        }
        for bad in ["", "a/b", "a_b", &"x".repeat(65)] {
            let err = state.put_token(token(bad, 0)).await.unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidArgument, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn unlocking_a_lock_not_held_is_not_found_and_lock_requests_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let state = service(dir.path());
        let unlock = UnlockRequest {
            user: "u".into(),
            key: "k".into(),
            holder: "h".into(),
        };
        let err = state.unlock_state(unlock).await.unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                ErrorCode::NotFound,
                "h holds no lock on the state key \"k\": no one does"
            )
        );
        let request = LockRequest {
            user: "u".into(),
            key: "k".into(),
            mode: LockMode::Write as i32,
            holder: String::new(),
            lease_ms: 1000,
            wait_ms: 0,
            not_reentrant: false,
        };
        let err = state.lock_state(request.clone()).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        let err = state
            .lock_state(LockRequest {
                mode: LockMode::Unspecified as i32,
                holder: "h".into(),
                ..request
            })
            .await
            .unwrap_err();
        assert_eq!(err.message, "a lock request names no mode");
    }
}
