//! The public gRPC API (`fwasm.v1.Functions`).

use std::future::Future;
use std::sync::Arc;

use fwasm_proto::pb::functions_server::{Functions, FunctionsServer};
use std::time::Duration;

use fwasm_proto::pb::{
    CallList, CallRecord, CallRef, CallResult, CreateTokenRequest, CreatedToken, FileList, FileRef,
    FunctionList, FunctionRef, InvokeAsyncReply, InvokeRequest, KeyList, ListCallsRequest,
    ListFilesRequest, ListFunctionsRequest, ListKeysRequest, ListSubscriptionsRequest,
    ListTokensRequest, ListUsersRequest, QuotaRef, SetStateRequest, StateKey, StateReply,
    StateValue, StorageUsage, Subscription, SubscriptionList, TokenList, TokenRef, UploadReply,
    UploadRequest, UserList, UserQuota, WaitCallRequest,
};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

use crate::authenticated::Authenticated;
use crate::gateway::{Gateway, Invocation};
use crate::metered::Metered;
use crate::sidecar::Sidecar;
use fwasm_proto::dapr::proto::runtime::v1::dapr_server::DaprServer;
use fwasm_proto::layotto::runtime_server::RuntimeServer;
use tonic::server::NamedService;
use tonic::service::Routes;

struct PublicApi(Arc<Gateway>);

#[tonic::async_trait]
impl Functions for PublicApi {
    async fn upload(
        &self,
        request: Request<UploadRequest>,
    ) -> Result<Response<UploadReply>, Status> {
        let req = request.into_inner();
        let (user, function, code) = (&req.user, &req.function, req.wasm);
        let reply = match req.python {
            true => {
                self.0
                    .upload_python(user, function, code, req.settings)
                    .await
            }
            false => self.0.upload(user, function, code, req.settings).await,
        };
        Ok(Response::new(reply?))
    }

    async fn invoke(
        &self,
        request: Request<InvokeRequest>,
    ) -> Result<Response<CallResult>, Status> {
        let invocation = invocation(request.into_inner());
        Ok(Response::new(self.0.invoke(invocation).await?))
    }

    async fn invoke_async(
        &self,
        request: Request<InvokeRequest>,
    ) -> Result<Response<InvokeAsyncReply>, Status> {
        let invocation = invocation(request.into_inner());
        let call_id = self.0.invoke_async(invocation).await?;
        Ok(Response::new(InvokeAsyncReply { call_id }))
    }

    async fn get_call(&self, request: Request<CallRef>) -> Result<Response<CallRecord>, Status> {
        Ok(Response::new(
            self.0.get_call(request.into_inner().id).await?,
        ))
    }

    async fn list_users(&self, _: Request<ListUsersRequest>) -> Result<Response<UserList>, Status> {
        Ok(Response::new(self.0.list_users().await?))
    }

    async fn list_calls(
        &self,
        request: Request<ListCallsRequest>,
    ) -> Result<Response<CallList>, Status> {
        Ok(Response::new(
            self.0.list_calls(request.into_inner()).await?,
        ))
    }

    async fn cancel_call(&self, request: Request<CallRef>) -> Result<Response<CallRecord>, Status> {
        Ok(Response::new(
            self.0.cancel_call(request.into_inner().id).await?,
        ))
    }

    async fn wait_call(
        &self,
        request: Request<WaitCallRequest>,
    ) -> Result<Response<CallRecord>, Status> {
        let req = request.into_inner();
        let timeout = (req.timeout_ms > 0).then(|| Duration::from_millis(req.timeout_ms));
        Ok(Response::new(self.0.wait_call(req.id, timeout).await?))
    }

    async fn set_state(
        &self,
        request: Request<SetStateRequest>,
    ) -> Result<Response<StateReply>, Status> {
        let req = request.into_inner();
        self.0.set_state(&req.user, &req.key, req.value).await?;
        Ok(Response::new(StateReply {}))
    }

    async fn get_state(&self, request: Request<StateKey>) -> Result<Response<StateValue>, Status> {
        let req = request.into_inner();
        Ok(Response::new(
            self.0.get_versioned(&req.user, &req.key).await?,
        ))
    }

    async fn list_keys(
        &self,
        request: Request<ListKeysRequest>,
    ) -> Result<Response<KeyList>, Status> {
        let req = request.into_inner();
        let keys = self
            .0
            .list_keys(&req.user, &req.prefix, &req.after, req.limit)
            .await?;
        Ok(Response::new(keys))
    }

    async fn list_files(
        &self,
        request: Request<ListFilesRequest>,
    ) -> Result<Response<FileList>, Status> {
        let req = request.into_inner();
        let files = self
            .0
            .list_files(&req.user, &req.prefix, &req.after, req.limit)
            .await?;
        Ok(Response::new(files))
    }

    async fn delete_file(&self, request: Request<FileRef>) -> Result<Response<StateReply>, Status> {
        let req = request.into_inner();
        self.0.delete_file(&req.user, &req.path).await?;
        Ok(Response::new(StateReply {}))
    }

    async fn delete_state(
        &self,
        request: Request<StateKey>,
    ) -> Result<Response<StateReply>, Status> {
        let req = request.into_inner();
        self.0.delete_state(&req.user, &req.key).await?;
        Ok(Response::new(StateReply {}))
    }

    async fn subscribe(
        &self,
        request: Request<Subscription>,
    ) -> Result<Response<StateReply>, Status> {
        let req = request.into_inner();
        self.0
            .subscribe(&req.user, &req.topic, &req.function)
            .await?;
        Ok(Response::new(StateReply {}))
    }

    async fn unsubscribe(
        &self,
        request: Request<Subscription>,
    ) -> Result<Response<StateReply>, Status> {
        let req = request.into_inner();
        self.0
            .unsubscribe(&req.user, &req.topic, &req.function)
            .await?;
        Ok(Response::new(StateReply {}))
    }

    async fn list_subscriptions(
        &self,
        request: Request<ListSubscriptionsRequest>,
    ) -> Result<Response<SubscriptionList>, Status> {
        let req = request.into_inner();
        let subscriptions = self.0.subscriptions(&req.user, &req.topic).await?;
        Ok(Response::new(SubscriptionList { subscriptions }))
    }

    async fn create_token(
        &self,
        request: Request<CreateTokenRequest>,
    ) -> Result<Response<CreatedToken>, Status> {
        let req = request.into_inner();
        Ok(Response::new(
            self.0.create_token(&req.user, req.admin).await?,
        ))
    }

    async fn list_tokens(
        &self,
        _: Request<ListTokensRequest>,
    ) -> Result<Response<TokenList>, Status> {
        let tokens = self.0.list_tokens().await?;
        Ok(Response::new(TokenList { tokens }))
    }

    async fn revoke_token(
        &self,
        request: Request<TokenRef>,
    ) -> Result<Response<StateReply>, Status> {
        self.0.revoke_token(&request.into_inner().id).await?;
        Ok(Response::new(StateReply {}))
    }

    async fn set_quota(&self, request: Request<UserQuota>) -> Result<Response<StateReply>, Status> {
        self.0.set_quota(request.into_inner()).await?;
        Ok(Response::new(StateReply {}))
    }

    async fn get_quota(&self, request: Request<QuotaRef>) -> Result<Response<UserQuota>, Status> {
        let user = request.into_inner().user;
        Ok(Response::new(self.0.get_quota(&user).await?))
    }

    async fn get_usage(
        &self,
        request: Request<QuotaRef>,
    ) -> Result<Response<StorageUsage>, Status> {
        let user = request.into_inner().user;
        Ok(Response::new(self.0.get_usage(&user).await?))
    }

    async fn list_functions(
        &self,
        request: Request<ListFunctionsRequest>,
    ) -> Result<Response<FunctionList>, Status> {
        let user = request.into_inner().user;
        Ok(Response::new(self.0.list_functions(&user).await?))
    }

    async fn delete_function(
        &self,
        request: Request<FunctionRef>,
    ) -> Result<Response<StateReply>, Status> {
        let gone = request.into_inner();
        self.0.delete_function(&gone.user, &gone.function).await?;
        Ok(Response::new(StateReply {}))
    }
}

fn invocation(req: InvokeRequest) -> Invocation {
    Invocation {
        headers: req.headers,
        cmdline: req.cmdline,
        mpi_world_size: req.mpi_world_size,
        ..Invocation::post(req.user, req.function, req.input)
    }
}

pub(crate) async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let tls = gateway.config().tls.clone();
    let (routes, names) = routes(gateway);
    let tls = tls.as_ref().map(fwasm_proto::tls::Tls::public_grpc_server);
    fwasm_proto::grpc::serve_routes(listener, routes, &names, tls, shutdown)
        .await
        .map_err(std::io::Error::other)
}

/// The public gRPC services (`fwasm.v1.Functions`, Layotto's and Dapr's runtime APIs), each
/// metered and handled as its caller, and their names.
pub fn routes(gateway: Arc<Gateway>) -> (Routes, [&'static str; 3]) {
    // Room for the largest module or input plus the message around it; the gateway itself
    // answers oversized payloads with a precise error below that.
    let limit = gateway
        .config()
        .max_module_bytes
        .max(gateway.config().max_input_bytes)
        + (64 << 10);
    let sidecar = Sidecar(gateway.clone());
    let functions = FunctionsServer::new(PublicApi(gateway.clone()))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(usize::MAX);
    // Layotto's and Dapr's runtime APIs beside fwasm's own: one implementation behind both.
    let layotto = RuntimeServer::new(sidecar.clone())
        .max_decoding_message_size(limit)
        .max_encoding_message_size(usize::MAX);
    let dapr = DaprServer::new(sidecar)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(usize::MAX);
    let names = [
        <FunctionsServer<PublicApi> as NamedService>::NAME,
        <RuntimeServer<Sidecar> as NamedService>::NAME,
        <DaprServer<Sidecar> as NamedService>::NAME,
    ];
    // Every method is counted, timed and traced (see `metered`), and handled as its caller,
    // whose token decides what it reaches (see `auth`).
    let routes = Routes::new(Metered(Authenticated::new(functions, gateway.clone())))
        .add_service(Metered(Authenticated::new(layotto, gateway.clone())))
        .add_service(Metered(Authenticated::new(dapr, gateway)));
    (routes, names)
}
