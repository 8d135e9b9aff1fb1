//! The public gRPC API (`fwasm.v1.Functions`).

use std::future::Future;
use std::sync::Arc;

use fwasm_proto::pb::functions_server::{Functions, FunctionsServer};
use fwasm_proto::pb::{CallResult, InvokeRequest, UploadReply, UploadRequest};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

use crate::gateway::{Gateway, Invocation};

struct PublicApi(Arc<Gateway>);

#[tonic::async_trait]
impl Functions for PublicApi {
    async fn upload(
        &self,
        request: Request<UploadRequest>,
    ) -> Result<Response<UploadReply>, Status> {
        let req = request.into_inner();
        Ok(Response::new(
            self.0.upload(&req.user, &req.function, req.wasm).await?,
        ))
    }

    async fn invoke(
        &self,
        request: Request<InvokeRequest>,
    ) -> Result<Response<CallResult>, Status> {
        let req = request.into_inner();
        let invocation = Invocation {
            path: format!("/f/{}/{}", req.user, req.function),
            user: req.user,
            function: req.function,
            method: "POST".into(),
            headers: req.headers,
            input: req.input,
            ..Invocation::default()
        };
        Ok(Response::new(self.0.invoke(invocation).await?))
    }
}

pub(crate) async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    // Room for the largest module or input plus the message around it; the gateway itself
    // answers oversized payloads with a precise error below that.
    let limit = gateway
        .config()
        .max_module_bytes
        .max(gateway.config().max_input_bytes)
        + (64 << 10);
    let service = FunctionsServer::new(PublicApi(gateway))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(usize::MAX);
    let routes = fwasm_proto::grpc::Routes::default().add_service(service);
    fwasm_proto::grpc::serve(listener, routes, shutdown)
        .await
        .map_err(std::io::Error::other)
}
