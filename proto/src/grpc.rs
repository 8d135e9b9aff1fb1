//! gRPC on both sides of each service trait: `*Server` adapts an implementation to tonic, and
//! the generated tonic clients implement the traits.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::net::TcpListener;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, ServerTlsConfig};
use tonic::{Request, Response, Status};
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::HealthService;

use crate::ApiError;
use crate::api::{ExecutorApi, MpiRequest, MpiResponse, SchedulerApi, StateApi};
use crate::pb::{
    self, executor_client::ExecutorClient, scheduler_client::SchedulerClient,
    state_client::StateClient,
};
use crate::tls::Tls;

/// The encoded descriptors of every fwasm proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/fwasm_descriptor.bin"));

/// Serves `service` on `listener` until `shutdown` resolves, with the standard gRPC health
/// service (`grpc.health.v1`, serving while the server runs) and server reflection beside it,
/// which lists exactly the services this server answers.
///
/// With `tls`, over TLS; with its CA, mutual TLS: only peers the mesh's CA vouched for.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    tls: Option<&Tls>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error>
where
    S: Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let tls = tls.map(Tls::grpc_server);
    serve_routes(listener, Routes::new(service), &[S::NAME], tls, shutdown).await
}

/// Like [`serve`], for several services on one server: `names` are theirs, for reflection.
pub async fn serve_routes(
    listener: TcpListener,
    routes: Routes,
    names: &[&'static str],
    tls: Option<ServerTlsConfig>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in names.iter().chain(&[""]) {
        health
            .set_service_status(*name, tonic_health::ServingStatus::Serving)
            .await;
    }
    let mut reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(<HealthServer<HealthService> as NamedService>::NAME);
    for name in names {
        reflection = reflection.with_service_name(*name);
    }
    let reflection = reflection
        .build_v1()
        .expect("the descriptor sets compiled into fwasm are valid");
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let routes = routes.add_service(health_service).add_service(reflection);
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        server = server.tls_config(tls)?;
    }
    server
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

/// `host:port` or a full URI, as a URI tonic accepts.
pub fn uri(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// The same over TLS: `https://` (a full URI is kept).
fn tls_uri(addr: &str) -> String {
    match addr.strip_prefix("http://") {
        Some(rest) => format!("https://{rest}"),
        None if addr.contains("://") => addr.to_string(),
        None => format!("https://{addr}"),
    }
}

/// A lazily connecting channel to `addr` (`host:port` or a full `http://` URI).
///
/// With mutual `tls`, over TLS, showing this process's certificate.
pub fn channel(addr: &str, tls: Option<&Tls>) -> Result<Channel, ApiError> {
    let bad = |e: tonic::transport::Error| {
        ApiError::invalid_argument(format!("bad service address {addr:?}: {e}"))
    };
    let endpoint = match tls.and_then(Tls::grpc_client) {
        Some(client) => Endpoint::from_shared(tls_uri(addr))
            .map_err(bad)?
            .tls_config(client)
            .map_err(bad)?,
        None => Endpoint::from_shared(uri(addr)).map_err(bad)?,
    };
    // A peer that vanishes without closing its connection (a machine gone) is noticed by the
    // keepalive pings, so no stream or call waits on it for ever.
    Ok(endpoint
        .tcp_nodelay(true)
        .connect_timeout(std::time::Duration::from_secs(5))
        .http2_keep_alive_interval(std::time::Duration::from_secs(10))
        .keep_alive_timeout(std::time::Duration::from_secs(20))
        .keep_alive_while_idle(true)
        .connect_lazy())
}

/// The state service at `addr`, as its trait.
pub fn connect_state(addr: &str, tls: Option<&Tls>) -> Result<Arc<dyn StateApi>, ApiError> {
    Ok(Arc::new(state_client(channel(addr, tls)?)))
}

/// The scheduler at `addr`, as its trait.
pub fn connect_scheduler(addr: &str, tls: Option<&Tls>) -> Result<Arc<dyn SchedulerApi>, ApiError> {
    Ok(Arc::new(scheduler_client(channel(addr, tls)?)))
}

/// Runs a trait method for a tonic handler, in a span continuing the caller's trace, and
/// counts it in the gRPC metrics.
macro_rules! serve_with {
    ($inner:expr, $method:ident, $request:expr) => {{
        static METER: crate::metrics::RpcMeter = crate::metrics::RpcMeter::new(stringify!($method));
        let span = crate::trace::incoming_span($request.metadata(), METER.rpc);
        let started = std::time::Instant::now();
        let result =
            tracing::Instrument::instrument($inner.$method($request.into_inner()), span).await;
        METER.record(started, result.as_ref().err());
        result.map(Response::new).map_err(Status::from)
    }};
}

/// Runs a tonic client method for a trait method, carrying the current trace context.
macro_rules! call_with {
    ($client_type:ident, $client:expr, $method:ident, $request:expr) => {
        // By path: `client.method()` would resolve to this trait's `&self` method instead.
        $client_type::<Channel>::$method(&mut $client.clone(), crate::trace::outgoing($request))
            .await
            .map(Response::into_inner)
            .map_err(ApiError::from)
    };
}

/// Serves a [`StateApi`] implementation over gRPC.
pub struct StateServer(pub Arc<dyn StateApi>);

impl StateServer {
    pub fn into_service(self) -> pb::state_server::StateServer<Self> {
        pb::state_server::StateServer::new(self).max_decoding_message_size(usize::MAX)
    }
}

#[tonic::async_trait]
impl pb::state_server::State for StateServer {
    async fn put_function(
        &self,
        r: Request<pb::PutFunctionRequest>,
    ) -> Result<Response<pb::FunctionInfo>, Status> {
        serve_with!(self.0, put_function, r)
    }
    async fn get_function_info(
        &self,
        r: Request<pb::FunctionRef>,
    ) -> Result<Response<pb::FunctionInfo>, Status> {
        serve_with!(self.0, get_function_info, r)
    }
    async fn list_functions(
        &self,
        r: Request<pb::ListFunctionsRequest>,
    ) -> Result<Response<pb::FunctionList>, Status> {
        serve_with!(self.0, list_functions, r)
    }
    async fn list_users(
        &self,
        r: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::UserList>, Status> {
        serve_with!(self.0, list_users, r)
    }
    async fn list_keys(
        &self,
        r: Request<pb::ListKeysRequest>,
    ) -> Result<Response<pb::KeyList>, Status> {
        serve_with!(self.0, list_keys, r)
    }
    async fn delete_function(
        &self,
        r: Request<pb::FunctionRef>,
    ) -> Result<Response<pb::StateReply>, Status> {
        serve_with!(self.0, delete_function, r).map(|r| r.map(|()| pb::StateReply {}))
    }
    async fn get_function(
        &self,
        r: Request<pb::FunctionRef>,
    ) -> Result<Response<pb::FunctionCode>, Status> {
        serve_with!(self.0, get_function, r)
    }
    async fn get_module(
        &self,
        r: Request<pb::ModuleRef>,
    ) -> Result<Response<pb::FunctionCode>, Status> {
        serve_with!(self.0, get_module, r)
    }
    async fn get_state(
        &self,
        r: Request<pb::StateKey>,
    ) -> Result<Response<pb::StateValue>, Status> {
        serve_with!(self.0, get_state, r)
    }
    async fn set_state(
        &self,
        r: Request<pb::SetStateRequest>,
    ) -> Result<Response<pb::StateReply>, Status> {
        serve_with!(self.0, set_state, r).map(|r| r.map(|()| pb::StateReply {}))
    }
    async fn write_state(
        &self,
        r: Request<pb::WriteStateRequest>,
    ) -> Result<Response<pb::WriteStateReply>, Status> {
        serve_with!(self.0, write_state, r)
    }
    async fn next_id(&self, r: Request<pb::StateKey>) -> Result<Response<pb::NextIdReply>, Status> {
        serve_with!(self.0, next_id, r).map(|r| r.map(|id| pb::NextIdReply { id }))
    }
    async fn state_size(
        &self,
        r: Request<pb::StateKey>,
    ) -> Result<Response<pb::StateSizeReply>, Status> {
        serve_with!(self.0, state_size, r).map(|r| r.map(|size| pb::StateSizeReply { size }))
    }
    async fn delete_state(
        &self,
        r: Request<pb::StateKey>,
    ) -> Result<Response<pb::StateReply>, Status> {
        serve_with!(self.0, delete_state, r).map(|r| r.map(|()| pb::StateReply {}))
    }
    async fn append_state(
        &self,
        r: Request<pb::SetStateRequest>,
    ) -> Result<Response<pb::StateReply>, Status> {
        serve_with!(self.0, append_state, r).map(|r| r.map(|()| pb::StateReply {}))
    }
    async fn read_appended(
        &self,
        r: Request<pb::StateKey>,
    ) -> Result<Response<pb::AppendedState>, Status> {
        serve_with!(self.0, read_appended, r)
    }
    async fn clear_appended(
        &self,
        r: Request<pb::StateKey>,
    ) -> Result<Response<pb::StateReply>, Status> {
        serve_with!(self.0, clear_appended, r).map(|r| r.map(|()| pb::StateReply {}))
    }
    async fn lock_state(
        &self,
        r: Request<pb::LockRequest>,
    ) -> Result<Response<pb::LockReply>, Status> {
        serve_with!(self.0, lock_state, r)
    }
    async fn unlock_state(
        &self,
        r: Request<pb::UnlockRequest>,
    ) -> Result<Response<pb::StateReply>, Status> {
        serve_with!(self.0, unlock_state, r).map(|r| r.map(|()| pb::StateReply {}))
    }
    async fn put_file(
        &self,
        r: Request<pb::PutFileRequest>,
    ) -> Result<Response<pb::StateReply>, Status> {
        serve_with!(self.0, put_file, r).map(|r| r.map(|()| pb::StateReply {}))
    }
    async fn get_file(&self, r: Request<pb::FileRef>) -> Result<Response<pb::FileData>, Status> {
        serve_with!(self.0, get_file, r)
    }
    async fn delete_file(
        &self,
        r: Request<pb::FileRef>,
    ) -> Result<Response<pb::StateReply>, Status> {
        serve_with!(self.0, delete_file, r).map(|r| r.map(|()| pb::StateReply {}))
    }
    async fn list_files(
        &self,
        r: Request<pb::ListFilesRequest>,
    ) -> Result<Response<pb::FileList>, Status> {
        serve_with!(self.0, list_files, r)
    }
    async fn subscribe(
        &self,
        r: Request<pb::Subscription>,
    ) -> Result<Response<pb::StateReply>, Status> {
        serve_with!(self.0, subscribe, r).map(|r| r.map(|()| pb::StateReply {}))
    }
    async fn unsubscribe(
        &self,
        r: Request<pb::Subscription>,
    ) -> Result<Response<pb::StateReply>, Status> {
        serve_with!(self.0, unsubscribe, r).map(|r| r.map(|()| pb::StateReply {}))
    }
    async fn list_subscriptions(
        &self,
        r: Request<pb::ListSubscriptionsRequest>,
    ) -> Result<Response<pb::SubscriptionList>, Status> {
        serve_with!(self.0, list_subscriptions, r)
    }
    async fn save_call(
        &self,
        r: Request<pb::SaveCallRequest>,
    ) -> Result<Response<pb::StateReply>, Status> {
        serve_with!(self.0, save_call, r).map(|r| r.map(|()| pb::StateReply {}))
    }
    async fn load_call(&self, r: Request<pb::CallRef>) -> Result<Response<pb::LoadedCall>, Status> {
        serve_with!(self.0, load_call, r)
    }
    async fn put_snapshot(
        &self,
        r: Request<pb::PutSnapshotRequest>,
    ) -> Result<Response<pb::StateReply>, Status> {
        serve_with!(self.0, put_snapshot, r).map(|r| r.map(|()| pb::StateReply {}))
    }
    async fn get_snapshot(
        &self,
        r: Request<pb::SnapshotRef>,
    ) -> Result<Response<pb::StoredSnapshot>, Status> {
        serve_with!(self.0, get_snapshot, r)
    }
    async fn put_token(
        &self,
        r: Request<pb::TokenRecord>,
    ) -> Result<Response<pb::StateReply>, Status> {
        serve_with!(self.0, put_token, r).map(|r| r.map(|()| pb::StateReply {}))
    }
    async fn get_token(
        &self,
        r: Request<pb::TokenRef>,
    ) -> Result<Response<pb::TokenRecord>, Status> {
        serve_with!(self.0, get_token, r)
    }
    async fn delete_token(
        &self,
        r: Request<pb::TokenRef>,
    ) -> Result<Response<pb::StateReply>, Status> {
        serve_with!(self.0, delete_token, r).map(|r| r.map(|()| pb::StateReply {}))
    }
    async fn list_tokens(
        &self,
        r: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::TokenList>, Status> {
        serve_with!(self.0, list_tokens, r)
    }
    async fn put_quota(
        &self,
        r: Request<pb::UserQuota>,
    ) -> Result<Response<pb::StateReply>, Status> {
        serve_with!(self.0, put_quota, r).map(|r| r.map(|()| pb::StateReply {}))
    }
    async fn list_quotas(
        &self,
        r: Request<pb::ListQuotasRequest>,
    ) -> Result<Response<pb::QuotaList>, Status> {
        serve_with!(self.0, list_quotas, r)
    }
    async fn get_usage(
        &self,
        r: Request<pb::QuotaRef>,
    ) -> Result<Response<pb::StorageUsage>, Status> {
        serve_with!(self.0, get_usage, r)
    }
}

#[async_trait]
impl StateApi for StateClient<Channel> {
    async fn put_function(
        &self,
        req: pb::PutFunctionRequest,
    ) -> Result<pb::FunctionInfo, ApiError> {
        call_with!(StateClient, self, put_function, req)
    }
    async fn get_function_info(&self, req: pb::FunctionRef) -> Result<pb::FunctionInfo, ApiError> {
        call_with!(StateClient, self, get_function_info, req)
    }
    async fn list_functions(
        &self,
        req: pb::ListFunctionsRequest,
    ) -> Result<pb::FunctionList, ApiError> {
        call_with!(StateClient, self, list_functions, req)
    }
    async fn list_users(&self, req: pb::ListUsersRequest) -> Result<pb::UserList, ApiError> {
        call_with!(StateClient, self, list_users, req)
    }
    async fn list_keys(&self, req: pb::ListKeysRequest) -> Result<pb::KeyList, ApiError> {
        call_with!(StateClient, self, list_keys, req)
    }
    async fn delete_function(&self, req: pb::FunctionRef) -> Result<(), ApiError> {
        call_with!(StateClient, self, delete_function, req).map(|_| ())
    }
    async fn get_function(&self, req: pb::FunctionRef) -> Result<pb::FunctionCode, ApiError> {
        call_with!(StateClient, self, get_function, req)
    }
    async fn get_module(&self, req: pb::ModuleRef) -> Result<pb::FunctionCode, ApiError> {
        call_with!(StateClient, self, get_module, req)
    }
    async fn get_state(&self, req: pb::StateKey) -> Result<pb::StateValue, ApiError> {
        call_with!(StateClient, self, get_state, req)
    }
    async fn set_state(&self, req: pb::SetStateRequest) -> Result<(), ApiError> {
        call_with!(StateClient, self, set_state, req).map(|_| ())
    }
    async fn state_size(&self, req: pb::StateKey) -> Result<u64, ApiError> {
        call_with!(StateClient, self, state_size, req).map(|r| r.size)
    }
    async fn delete_state(&self, req: pb::StateKey) -> Result<(), ApiError> {
        call_with!(StateClient, self, delete_state, req).map(|_| ())
    }
    async fn write_state(
        &self,
        req: pb::WriteStateRequest,
    ) -> Result<pb::WriteStateReply, ApiError> {
        call_with!(StateClient, self, write_state, req)
    }
    async fn next_id(&self, req: pb::StateKey) -> Result<u64, ApiError> {
        call_with!(StateClient, self, next_id, req).map(|r| r.id)
    }
    async fn append_state(&self, req: pb::SetStateRequest) -> Result<(), ApiError> {
        call_with!(StateClient, self, append_state, req).map(|_| ())
    }
    async fn read_appended(&self, req: pb::StateKey) -> Result<pb::AppendedState, ApiError> {
        call_with!(StateClient, self, read_appended, req)
    }
    async fn clear_appended(&self, req: pb::StateKey) -> Result<(), ApiError> {
        call_with!(StateClient, self, clear_appended, req).map(|_| ())
    }
    async fn lock_state(&self, req: pb::LockRequest) -> Result<pb::LockReply, ApiError> {
        call_with!(StateClient, self, lock_state, req)
    }
    async fn unlock_state(&self, req: pb::UnlockRequest) -> Result<(), ApiError> {
        call_with!(StateClient, self, unlock_state, req).map(|_| ())
    }
    async fn put_file(&self, req: pb::PutFileRequest) -> Result<(), ApiError> {
        call_with!(StateClient, self, put_file, req).map(|_| ())
    }
    async fn get_file(&self, req: pb::FileRef) -> Result<pb::FileData, ApiError> {
        call_with!(StateClient, self, get_file, req)
    }
    async fn delete_file(&self, req: pb::FileRef) -> Result<(), ApiError> {
        call_with!(StateClient, self, delete_file, req).map(|_| ())
    }
    async fn list_files(&self, req: pb::ListFilesRequest) -> Result<pb::FileList, ApiError> {
        call_with!(StateClient, self, list_files, req)
    }
    async fn subscribe(&self, req: pb::Subscription) -> Result<(), ApiError> {
        call_with!(StateClient, self, subscribe, req).map(|_| ())
    }
    async fn unsubscribe(&self, req: pb::Subscription) -> Result<(), ApiError> {
        call_with!(StateClient, self, unsubscribe, req).map(|_| ())
    }
    async fn list_subscriptions(
        &self,
        req: pb::ListSubscriptionsRequest,
    ) -> Result<pb::SubscriptionList, ApiError> {
        call_with!(StateClient, self, list_subscriptions, req)
    }
    async fn save_call(&self, req: pb::SaveCallRequest) -> Result<(), ApiError> {
        call_with!(StateClient, self, save_call, req).map(|_| ())
    }
    async fn load_call(&self, req: pb::CallRef) -> Result<pb::LoadedCall, ApiError> {
        call_with!(StateClient, self, load_call, req)
    }
    async fn put_snapshot(&self, req: pb::PutSnapshotRequest) -> Result<(), ApiError> {
        call_with!(StateClient, self, put_snapshot, req).map(|_| ())
    }
    async fn get_snapshot(&self, req: pb::SnapshotRef) -> Result<pb::StoredSnapshot, ApiError> {
        call_with!(StateClient, self, get_snapshot, req)
    }
    async fn put_token(&self, req: pb::TokenRecord) -> Result<(), ApiError> {
        call_with!(StateClient, self, put_token, req).map(|_| ())
    }
    async fn get_token(&self, req: pb::TokenRef) -> Result<pb::TokenRecord, ApiError> {
        call_with!(StateClient, self, get_token, req)
    }
    async fn delete_token(&self, req: pb::TokenRef) -> Result<(), ApiError> {
        call_with!(StateClient, self, delete_token, req).map(|_| ())
    }
    async fn list_tokens(&self, req: pb::ListTokensRequest) -> Result<pb::TokenList, ApiError> {
        call_with!(StateClient, self, list_tokens, req)
    }
    async fn put_quota(&self, req: pb::UserQuota) -> Result<(), ApiError> {
        call_with!(StateClient, self, put_quota, req).map(|_| ())
    }
    async fn list_quotas(&self, req: pb::ListQuotasRequest) -> Result<pb::QuotaList, ApiError> {
        call_with!(StateClient, self, list_quotas, req)
    }
    async fn get_usage(&self, req: pb::QuotaRef) -> Result<pb::StorageUsage, ApiError> {
        call_with!(StateClient, self, get_usage, req)
    }
}

/// Serves a [`SchedulerApi`] implementation over gRPC.
pub struct SchedulerServer(pub Arc<dyn SchedulerApi>);

impl SchedulerServer {
    pub fn into_service(self) -> pb::scheduler_server::SchedulerServer<Self> {
        pb::scheduler_server::SchedulerServer::new(self)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
    }
}

#[tonic::async_trait]
impl pb::scheduler_server::Scheduler for SchedulerServer {
    async fn place(&self, r: Request<pb::PlaceRequest>) -> Result<Response<pb::Placement>, Status> {
        serve_with!(self.0, place, r)
    }
    async fn submit(
        &self,
        r: Request<pb::SubmitRequest>,
    ) -> Result<Response<pb::Placement>, Status> {
        serve_with!(self.0, submit, r)
    }
    async fn function_updated(
        &self,
        r: Request<pb::FunctionInfo>,
    ) -> Result<Response<pb::FunctionUpdatedReply>, Status> {
        serve_with!(self.0, function_updated, r).map(|r| r.map(|()| pb::FunctionUpdatedReply {}))
    }
    async fn function_deleted(
        &self,
        r: Request<pb::FunctionRef>,
    ) -> Result<Response<pb::FunctionUpdatedReply>, Status> {
        serve_with!(self.0, function_deleted, r).map(|r| r.map(|()| pb::FunctionUpdatedReply {}))
    }
    async fn set_quota(
        &self,
        r: Request<pb::UserQuota>,
    ) -> Result<Response<pb::SetQuotaReply>, Status> {
        serve_with!(self.0, set_quota, r).map(|r| r.map(|()| pb::SetQuotaReply {}))
    }
    async fn get_quota(&self, r: Request<pb::QuotaRef>) -> Result<Response<pb::UserQuota>, Status> {
        serve_with!(self.0, get_quota, r)
    }
    async fn call_finished(
        &self,
        r: Request<pb::CallResult>,
    ) -> Result<Response<pb::CallFinishedReply>, Status> {
        serve_with!(self.0, call_finished, r).map(|r| r.map(|()| pb::CallFinishedReply {}))
    }
    async fn calls_finished(
        &self,
        r: Request<pb::CallsFinishedRequest>,
    ) -> Result<Response<pb::CallFinishedReply>, Status> {
        serve_with!(self.0, calls_finished, r).map(|r| r.map(|()| pb::CallFinishedReply {}))
    }
    async fn get_call(&self, r: Request<pb::CallRef>) -> Result<Response<pb::CallRecord>, Status> {
        serve_with!(self.0, get_call, r)
    }
    async fn wait_call(
        &self,
        r: Request<pb::WaitCallRequest>,
    ) -> Result<Response<pb::CallRecord>, Status> {
        serve_with!(self.0, wait_call, r)
    }
    async fn cancel_call(
        &self,
        r: Request<pb::CallRef>,
    ) -> Result<Response<pb::CallRecord>, Status> {
        serve_with!(self.0, cancel_call, r)
    }
    async fn list_calls(
        &self,
        r: Request<pb::ListCallsRequest>,
    ) -> Result<Response<pb::CallList>, Status> {
        serve_with!(self.0, list_calls, r)
    }
    async fn heartbeat(
        &self,
        r: Request<pb::ExecutorHeartbeat>,
    ) -> Result<Response<pb::HeartbeatReply>, Status> {
        serve_with!(self.0, heartbeat, r)
    }
    async fn lease(
        &self,
        r: Request<pb::LeaseRequest>,
    ) -> Result<Response<pb::PlacementLease>, Status> {
        serve_with!(self.0, lease, r)
    }
    async fn record_calls(
        &self,
        r: Request<pb::RecordCallsRequest>,
    ) -> Result<Response<pb::RecordCallsReply>, Status> {
        serve_with!(self.0, record_calls, r).map(|r| r.map(|()| pb::RecordCallsReply {}))
    }
}

#[async_trait]
impl SchedulerApi for SchedulerClient<Channel> {
    async fn place(&self, req: pb::PlaceRequest) -> Result<pb::Placement, ApiError> {
        call_with!(SchedulerClient, self, place, req)
    }
    async fn submit(&self, req: pb::SubmitRequest) -> Result<pb::Placement, ApiError> {
        call_with!(SchedulerClient, self, submit, req)
    }
    async fn function_updated(&self, info: pb::FunctionInfo) -> Result<(), ApiError> {
        call_with!(SchedulerClient, self, function_updated, info).map(|_| ())
    }
    async fn function_deleted(&self, req: pb::FunctionRef) -> Result<(), ApiError> {
        call_with!(SchedulerClient, self, function_deleted, req).map(|_| ())
    }
    async fn set_quota(&self, req: pb::UserQuota) -> Result<(), ApiError> {
        call_with!(SchedulerClient, self, set_quota, req).map(|_| ())
    }
    async fn get_quota(&self, req: pb::QuotaRef) -> Result<pb::UserQuota, ApiError> {
        call_with!(SchedulerClient, self, get_quota, req)
    }
    async fn call_finished(&self, result: pb::CallResult) -> Result<(), ApiError> {
        call_with!(SchedulerClient, self, call_finished, result).map(|_| ())
    }
    async fn calls_finished(&self, req: pb::CallsFinishedRequest) -> Result<(), ApiError> {
        call_with!(SchedulerClient, self, calls_finished, req).map(|_| ())
    }
    async fn get_call(&self, req: pb::CallRef) -> Result<pb::CallRecord, ApiError> {
        call_with!(SchedulerClient, self, get_call, req)
    }
    async fn wait_call(&self, req: pb::WaitCallRequest) -> Result<pb::CallRecord, ApiError> {
        call_with!(SchedulerClient, self, wait_call, req)
    }
    async fn cancel_call(&self, req: pb::CallRef) -> Result<pb::CallRecord, ApiError> {
        call_with!(SchedulerClient, self, cancel_call, req)
    }
    async fn list_calls(&self, req: pb::ListCallsRequest) -> Result<pb::CallList, ApiError> {
        call_with!(SchedulerClient, self, list_calls, req)
    }
    async fn heartbeat(&self, beat: pb::ExecutorHeartbeat) -> Result<pb::HeartbeatReply, ApiError> {
        call_with!(SchedulerClient, self, heartbeat, beat)
    }
    async fn lease(&self, req: pb::LeaseRequest) -> Result<pb::PlacementLease, ApiError> {
        call_with!(SchedulerClient, self, lease, req)
    }
    async fn record_calls(&self, req: pb::RecordCallsRequest) -> Result<(), ApiError> {
        call_with!(SchedulerClient, self, record_calls, req).map(|_| ())
    }
}

/// Serves an [`ExecutorApi`] implementation over gRPC.
pub struct ExecutorServer(pub Arc<dyn ExecutorApi>);

impl ExecutorServer {
    pub fn into_service(self) -> pb::executor_server::ExecutorServer<Self> {
        pb::executor_server::ExecutorServer::new(self).max_decoding_message_size(usize::MAX)
    }
}

#[tonic::async_trait]
impl pb::executor_server::Executor for ExecutorServer {
    async fn execute(&self, r: Request<pb::Call>) -> Result<Response<pb::CallResult>, Status> {
        serve_with!(self.0, execute, r)
    }

    async fn prepare(
        &self,
        r: Request<pb::FunctionInfo>,
    ) -> Result<Response<pb::PrepareReply>, Status> {
        // The inherent `prepare` below (which inherent-first lookup picks), so the method is
        // metered as "prepare".
        serve_with!(self, prepare, r)
    }

    async fn cancel_call(
        &self,
        r: Request<pb::CallRef>,
    ) -> Result<Response<pb::CancelReply>, Status> {
        serve_with!(self, cancel_call, r)
    }

    async fn mpi_join(
        &self,
        r: Request<pb::MpiRankRef>,
    ) -> Result<Response<pb::MpiJoinReply>, Status> {
        serve_with!(self, mpi_join, r)
    }

    async fn mpi_send(&self, r: Request<pb::MpiMessage>) -> Result<Response<pb::MpiReply>, Status> {
        serve_with!(self, mpi_send, r)
    }

    async fn mpi_receive(
        &self,
        r: Request<pb::MpiReceiveRequest>,
    ) -> Result<Response<pb::MpiMessage>, Status> {
        serve_with!(self, mpi_receive, r)
    }

    async fn mpi_collective(
        &self,
        r: Request<pb::MpiContribution>,
    ) -> Result<Response<pb::MpiShare>, Status> {
        serve_with!(self, mpi_collective, r)
    }

    async fn mpi_finalize(
        &self,
        r: Request<pb::MpiRankRef>,
    ) -> Result<Response<pb::MpiReply>, Status> {
        serve_with!(self, mpi_finalize, r)
    }

    async fn mpi_abort(
        &self,
        r: Request<pb::MpiAbortRequest>,
    ) -> Result<Response<pb::MpiReply>, Status> {
        serve_with!(self, mpi_abort, r)
    }

    async fn mpi_rank_ended(
        &self,
        r: Request<pb::MpiRankEndedRequest>,
    ) -> Result<Response<pb::MpiReply>, Status> {
        serve_with!(self, mpi_rank_ended, r)
    }
}

impl ExecutorServer {
    async fn prepare(&self, info: pb::FunctionInfo) -> Result<pb::PrepareReply, ApiError> {
        self.0.prepare(info).await.map(|()| pb::PrepareReply {})
    }

    async fn cancel_call(&self, call: pb::CallRef) -> Result<pb::CancelReply, ApiError> {
        self.0.cancel(call).await.map(|()| pb::CancelReply {})
    }

    // One inherent method per MPI request, so each is metered and traced under its name.
    async fn mpi_join(&self, r: pb::MpiRankRef) -> Result<pb::MpiJoinReply, ApiError> {
        match self.0.mpi(MpiRequest::Join(r)).await? {
            MpiResponse::Joined(reply) => Ok(reply),
            other => Err(unexpected(other)),
        }
    }

    async fn mpi_send(&self, r: pb::MpiMessage) -> Result<pb::MpiReply, ApiError> {
        done(self.0.mpi(MpiRequest::Send(r)).await?)
    }

    async fn mpi_receive(&self, r: pb::MpiReceiveRequest) -> Result<pb::MpiMessage, ApiError> {
        match self.0.mpi(MpiRequest::Receive(r)).await? {
            MpiResponse::Message(message) => Ok(message),
            other => Err(unexpected(other)),
        }
    }

    async fn mpi_collective(&self, r: pb::MpiContribution) -> Result<pb::MpiShare, ApiError> {
        match self.0.mpi(MpiRequest::Collective(r)).await? {
            MpiResponse::Share(share) => Ok(share),
            other => Err(unexpected(other)),
        }
    }

    async fn mpi_finalize(&self, r: pb::MpiRankRef) -> Result<pb::MpiReply, ApiError> {
        done(self.0.mpi(MpiRequest::Finalize(r)).await?)
    }

    async fn mpi_abort(&self, r: pb::MpiAbortRequest) -> Result<pb::MpiReply, ApiError> {
        done(self.0.mpi(MpiRequest::Abort(r)).await?)
    }

    async fn mpi_rank_ended(&self, r: pb::MpiRankEndedRequest) -> Result<pb::MpiReply, ApiError> {
        done(self.0.mpi(MpiRequest::RankEnded(r)).await?)
    }
}

fn done(response: MpiResponse) -> Result<pb::MpiReply, ApiError> {
    match response {
        MpiResponse::Done(reply) => Ok(reply),
        other => Err(unexpected(other)),
    }
}

fn unexpected(response: MpiResponse) -> ApiError {
    ApiError::internal(format!("an MPI request was answered with {response:?}"))
}

#[async_trait]
impl ExecutorApi for ExecutorClient<Channel> {
    async fn execute(&self, call: pb::Call) -> Result<pb::CallResult, ApiError> {
        call_with!(ExecutorClient, self, execute, call)
    }

    async fn prepare(&self, info: pb::FunctionInfo) -> Result<(), ApiError> {
        call_with!(ExecutorClient, self, prepare, info).map(drop)
    }

    async fn cancel(&self, call: pb::CallRef) -> Result<(), ApiError> {
        call_with!(ExecutorClient, self, cancel_call, call).map(drop)
    }

    async fn mpi(&self, request: MpiRequest) -> Result<MpiResponse, ApiError> {
        Ok(match request {
            MpiRequest::Join(r) => {
                MpiResponse::Joined(call_with!(ExecutorClient, self, mpi_join, r)?)
            }
            MpiRequest::Send(r) => {
                MpiResponse::Done(call_with!(ExecutorClient, self, mpi_send, r)?)
            }
            MpiRequest::Receive(r) => {
                MpiResponse::Message(call_with!(ExecutorClient, self, mpi_receive, r)?)
            }
            MpiRequest::Collective(r) => {
                MpiResponse::Share(call_with!(ExecutorClient, self, mpi_collective, r)?)
            }
            MpiRequest::Finalize(r) => {
                MpiResponse::Done(call_with!(ExecutorClient, self, mpi_finalize, r)?)
            }
            MpiRequest::Abort(r) => {
                MpiResponse::Done(call_with!(ExecutorClient, self, mpi_abort, r)?)
            }
            MpiRequest::RankEnded(r) => {
                MpiResponse::Done(call_with!(ExecutorClient, self, mpi_rank_ended, r)?)
            }
        })
    }
}

/// Clients for each service over a channel, with message size limits lifted: the sender
/// enforces the real limits (request and output sizes) before anything crosses the wire.
pub fn state_client(channel: Channel) -> StateClient<Channel> {
    StateClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX)
}

pub fn scheduler_client(channel: Channel) -> SchedulerClient<Channel> {
    // Submitted calls and call records carry inputs and outputs.
    SchedulerClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX)
}

pub fn executor_client(channel: Channel) -> ExecutorClient<Channel> {
    ExecutorClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX)
}
