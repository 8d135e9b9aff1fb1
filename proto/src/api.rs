//! One trait per internal service. Implementations are either the service itself (in-process)
//! or a gRPC client ([`crate::grpc`]); callers cannot tell which.

use async_trait::async_trait;

use crate::ApiError;
use crate::pb::{
    AppendedState, Call, CallList, CallRecord, CallRef, CallResult, CallsFinishedRequest,
    ExecutorHeartbeat, FileData, FileList, FileRef, FunctionCode, FunctionInfo, FunctionList,
    FunctionRef, HeartbeatReply, KeyList, LeaseRequest, ListCallsRequest, ListFilesRequest,
    ListFunctionsRequest, ListKeysRequest, ListQuotasRequest, ListSubscriptionsRequest,
    ListTokensRequest, ListUsersRequest, LoadedCall, LockReply, LockRequest, ModuleRef,
    PlaceRequest, Placement, PlacementLease, PutFileRequest, PutFunctionRequest,
    PutSnapshotRequest, QuotaList, QuotaRef, RecordCallsRequest, SaveCallRequest, SetStateRequest,
    SnapshotRef, StateKey, StateValue, StorageUsage, StoredSnapshot, SubmitRequest, Subscription,
    SubscriptionList, TokenList, TokenRecord, TokenRef, UnlockRequest, UserList, UserQuota,
    WaitCallRequest, WriteStateReply, WriteStateRequest,
};

/// The global store: function binaries and the global state tier.
#[async_trait]
pub trait StateApi: Send + Sync + 'static {
    async fn put_function(&self, req: PutFunctionRequest) -> Result<FunctionInfo, ApiError>;
    async fn get_function_info(&self, req: FunctionRef) -> Result<FunctionInfo, ApiError>;
    async fn list_functions(&self, req: ListFunctionsRequest) -> Result<FunctionList, ApiError>;
    /// The users that have functions, in order.
    async fn list_users(&self, req: ListUsersRequest) -> Result<UserList, ApiError> {
        let _ = req;
        Err(ApiError::new(
            crate::ErrorCode::FailedPrecondition,
            "this store keeps no functions to list users by",
        ))
    }
    /// NOT_FOUND if the user has no such function.
    async fn delete_function(&self, req: FunctionRef) -> Result<(), ApiError>;
    async fn get_function(&self, req: FunctionRef) -> Result<FunctionCode, ApiError>;
    async fn get_module(&self, req: ModuleRef) -> Result<FunctionCode, ApiError>;

    async fn get_state(&self, req: StateKey) -> Result<StateValue, ApiError>;
    async fn set_state(&self, req: SetStateRequest) -> Result<(), ApiError>;
    async fn state_size(&self, req: StateKey) -> Result<u64, ApiError>;
    async fn delete_state(&self, req: StateKey) -> Result<(), ApiError>;
    async fn list_keys(&self, req: ListKeysRequest) -> Result<KeyList, ApiError>;
    async fn write_state(&self, req: WriteStateRequest) -> Result<WriteStateReply, ApiError>;
    async fn next_id(&self, req: StateKey) -> Result<u64, ApiError>;
    async fn append_state(&self, req: SetStateRequest) -> Result<(), ApiError>;
    async fn read_appended(&self, req: StateKey) -> Result<AppendedState, ApiError>;
    async fn clear_appended(&self, req: StateKey) -> Result<(), ApiError>;
    /// Whether the lock was granted within the request's wait.
    async fn lock_state(&self, req: LockRequest) -> Result<LockReply, ApiError>;
    /// NOT_FOUND when no one holds the lock, FAILED_PRECONDITION when others hold it.
    async fn unlock_state(&self, req: UnlockRequest) -> Result<(), ApiError>;

    async fn put_file(&self, req: PutFileRequest) -> Result<(), ApiError>;
    async fn get_file(&self, req: FileRef) -> Result<FileData, ApiError>;
    async fn delete_file(&self, req: FileRef) -> Result<(), ApiError>;
    async fn list_files(&self, req: ListFilesRequest) -> Result<FileList, ApiError>;

    async fn subscribe(&self, req: Subscription) -> Result<(), ApiError>;
    /// NOT_FOUND if there was no such subscription.
    async fn unsubscribe(&self, req: Subscription) -> Result<(), ApiError>;
    async fn list_subscriptions(
        &self,
        req: ListSubscriptionsRequest,
    ) -> Result<SubscriptionList, ApiError>;

    async fn save_call(&self, req: SaveCallRequest) -> Result<(), ApiError>;
    async fn load_call(&self, req: CallRef) -> Result<LoadedCall, ApiError>;

    async fn put_token(&self, req: TokenRecord) -> Result<(), ApiError>;
    /// NOT_FOUND if no token has the id.
    async fn get_token(&self, req: TokenRef) -> Result<TokenRecord, ApiError>;
    /// NOT_FOUND if no token has the id.
    async fn delete_token(&self, req: TokenRef) -> Result<(), ApiError>;
    async fn list_tokens(&self, req: ListTokensRequest) -> Result<TokenList, ApiError>;

    /// A user's own quotas; every limit 0 removes them.
    async fn put_quota(&self, req: UserQuota) -> Result<(), ApiError>;
    async fn list_quotas(&self, req: ListQuotasRequest) -> Result<QuotaList, ApiError>;
    /// What a user stores against the storage limits in force for it.
    async fn get_usage(&self, req: QuotaRef) -> Result<StorageUsage, ApiError>;

    /// Keeps a function's snapshot, replacing the one it had.
    async fn put_snapshot(&self, req: PutSnapshotRequest) -> Result<(), ApiError>;
    /// The function's snapshot if it has one under the key (else `found` is false).
    async fn get_snapshot(&self, req: SnapshotRef) -> Result<StoredSnapshot, ApiError>;
}

/// Placement of calls on executors, and the table of calls and their outcomes.
#[async_trait]
pub trait SchedulerApi: Send + Sync + 'static {
    /// Records a call and picks its executor; the caller sends the call there itself.
    async fn place(&self, req: PlaceRequest) -> Result<Placement, ApiError>;
    /// Records a call and runs it in the background; returns once it is recorded.
    async fn submit(&self, req: SubmitRequest) -> Result<Placement, ApiError>;
    async fn function_updated(&self, info: FunctionInfo) -> Result<(), ApiError>;
    /// The function is gone: no more placements of it.
    async fn function_deleted(&self, req: FunctionRef) -> Result<(), ApiError>;
    /// How a call ended. The first report for a call wins; later ones are ignored.
    async fn call_finished(&self, result: CallResult) -> Result<(), ApiError>;
    /// How several calls ended, as [`SchedulerApi::call_finished`] each.
    async fn calls_finished(&self, req: CallsFinishedRequest) -> Result<(), ApiError>;
    async fn get_call(&self, req: CallRef) -> Result<CallRecord, ApiError>;
    /// The record once the call has ended, or as it is when the timeout passes.
    async fn wait_call(&self, req: WaitCallRequest) -> Result<CallRecord, ApiError>;
    /// Cancels a call that has not ended; answers its record once it has (scheduler.proto).
    async fn cancel_call(&self, req: CallRef) -> Result<CallRecord, ApiError> {
        let _ = req;
        Err(ApiError::new(
            crate::ErrorCode::FailedPrecondition,
            "this scheduler cannot cancel calls",
        ))
    }
    /// The calls the table keeps that match, newest first, without their outputs.
    async fn list_calls(&self, req: ListCallsRequest) -> Result<CallList, ApiError> {
        let _ = req;
        Err(ApiError::new(
            crate::ErrorCode::FailedPrecondition,
            "this scheduler keeps no calls to list",
        ))
    }
    /// An executor's heartbeat: it joins, or stays, a member.
    async fn heartbeat(&self, beat: ExecutorHeartbeat) -> Result<HeartbeatReply, ApiError>;
    /// Sets a user's own quotas (every limit 0: back to the defaults).
    async fn set_quota(&self, req: UserQuota) -> Result<(), ApiError>;
    /// The limits in force for a user.
    async fn get_quota(&self, req: QuotaRef) -> Result<UserQuota, ApiError>;
    /// A block of call ids and an executor for a run of one function's calls (none for a
    /// user with a quota of calls: `place_each`).
    async fn lease(&self, req: LeaseRequest) -> Result<PlacementLease, ApiError>;
    /// Records calls started from leases, as running.
    async fn record_calls(&self, req: RecordCallsRequest) -> Result<(), ApiError>;
}

/// Running calls.
#[async_trait]
pub trait ExecutorApi: Send + Sync + 'static {
    async fn execute(&self, call: Call) -> Result<CallResult, ApiError>;

    /// Gets the function ready for its first call (module compiled, snapshot taken). An
    /// executor that keeps nothing between calls has nothing to do.
    async fn prepare(&self, info: crate::pb::FunctionInfo) -> Result<(), ApiError> {
        let _ = info;
        Ok(())
    }

    /// Cancels a call admitted here that has not ended (executor.proto); NOT_FOUND if there
    /// is none. An executor that runs calls to their end whatever happens has none to cancel.
    async fn cancel(&self, call: CallRef) -> Result<(), ApiError> {
        Err(ApiError::not_found(format!(
            "call {} is not running on this executor",
            call.id
        )))
    }

    /// MPI between executors (executor.proto): what the home of a world answers for a rank
    /// on another executor. An executor that keeps no worlds has none to answer for.
    async fn mpi(&self, request: MpiRequest) -> Result<MpiResponse, ApiError> {
        let _ = request;
        Err(ApiError::new(
            crate::ErrorCode::FailedPrecondition,
            "this executor keeps no MPI worlds",
        ))
    }
}

/// One of the executor-to-executor MPI requests.
#[derive(Debug, Clone)]
pub enum MpiRequest {
    Join(crate::pb::MpiRankRef),
    Send(crate::pb::MpiMessage),
    Receive(crate::pb::MpiReceiveRequest),
    Collective(crate::pb::MpiContribution),
    Finalize(crate::pb::MpiRankRef),
    Abort(crate::pb::MpiAbortRequest),
    RankEnded(crate::pb::MpiRankEndedRequest),
}

/// Its answer.
#[derive(Debug, Clone)]
pub enum MpiResponse {
    Joined(crate::pb::MpiJoinReply),
    Done(crate::pb::MpiReply),
    Message(crate::pb::MpiMessage),
    Share(crate::pb::MpiShare),
}
