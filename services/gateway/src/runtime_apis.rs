//! Layotto's (`spec.proto.runtime.v1.Runtime`) and Dapr's (`dapr.proto.runtime.v1.Dapr`)
//! runtime APIs on the public gRPC port. Their messages are alike field for field, so one
//! macro writes both services over the [`Sidecar`]; each adds the methods only it has.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use fwasm_proto::dapr::proto::common::v1 as dapr_common;
use fwasm_proto::dapr::proto::runtime::v1 as dapr;
use fwasm_proto::layotto;
use prost_types::Any;
use tonic::body::Body;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use crate::sidecar::{Item, MethodCall, Sidecar};

fn unimplemented(service: &str, method: &str) -> Status {
    Status::unimplemented(format!("{service}/{method} is not served by fwasm yet"))
}

/// A state item of either API, with its etag's text.
macro_rules! item {
    ($state:expr) => {{
        let state = $state;
        Item {
            key: state.key,
            value: state.value,
            etag: state.etag.map(|etag| etag.value).unwrap_or_default(),
        }
    }};
}

/// `impl $service for Sidecar`: `$api` holds its requests, `$common` its state items, etags,
/// invoke reply and HTTP extension; `$($extra)*` are the methods only this API has.
macro_rules! runtime_api {
    ($service:path, $api:ident, $common:ident, { $($extra:tt)* }) => {
        #[tonic::async_trait]
        impl $service for Sidecar {
            async fn invoke_service(
                &self,
                request: Request<$api::InvokeServiceRequest>,
            ) -> Result<Response<$common::InvokeResponse>, Status> {
                use $common::http_extension::Verb;
                let req = request.into_inner();
                let message = req.message.unwrap_or_default();
                let extension = message.http_extension.unwrap_or_default();
                let call = MethodCall {
                    app: req.id,
                    method: message.method,
                    data: message.data.map_or_else(Bytes::new, |any| any.value.into()),
                    content_type: message.content_type,
                    verb: match extension.verb() {
                        Verb::None => "POST".into(),
                        verb => verb.as_str_name().into(),
                    },
                    querystring: extension.querystring,
                };
                let (output, content_type) = self.invoke(call).await?;
                let data = Any {
                    type_url: String::new(),
                    value: output.into(),
                };
                Ok(Response::new($common::InvokeResponse {
                    data: Some(data),
                    content_type,
                }))
            }

            async fn get_state(
                &self,
                request: Request<$api::GetStateRequest>,
            ) -> Result<Response<$api::GetStateResponse>, Status> {
                let req = request.into_inner();
                let (data, etag) = self.get(&req.store_name, &req.key).await?;
                Ok(Response::new($api::GetStateResponse {
                    data,
                    etag,
                    metadata: Default::default(),
                }))
            }

            async fn get_bulk_state(
                &self,
                request: Request<$api::GetBulkStateRequest>,
            ) -> Result<Response<$api::GetBulkStateResponse>, Status> {
                let req = request.into_inner();
                let items = self.get_bulk(&req.store_name, req.keys).await?;
                let items = items
                    .into_iter()
                    .map(|item| $api::BulkStateItem {
                        key: item.key,
                        data: item.data,
                        etag: item.etag,
                        error: item.error,
                        metadata: Default::default(),
                    })
                    .collect();
                Ok(Response::new($api::GetBulkStateResponse { items }))
            }

            async fn save_state(
                &self,
                request: Request<$api::SaveStateRequest>,
            ) -> Result<Response<()>, Status> {
                let req = request.into_inner();
                let items = req.states.into_iter().map(|s| item!(s));
                self.write_items(&req.store_name, items.collect(), false).await?;
                Ok(Response::new(()))
            }

            async fn delete_state(
                &self,
                request: Request<$api::DeleteStateRequest>,
            ) -> Result<Response<()>, Status> {
                let req = request.into_inner();
                let item = Item {
                    key: req.key,
                    value: Bytes::new(),
                    etag: req.etag.map(|e| e.value).unwrap_or_default(),
                };
                self.write_items(&req.store_name, vec![item], true).await?;
                Ok(Response::new(()))
            }

            async fn delete_bulk_state(
                &self,
                request: Request<$api::DeleteBulkStateRequest>,
            ) -> Result<Response<()>, Status> {
                let req = request.into_inner();
                let items = req.states.into_iter().map(|s| item!(s));
                self.write_items(&req.store_name, items.collect(), true).await?;
                Ok(Response::new(()))
            }

            async fn execute_state_transaction(
                &self,
                request: Request<$api::ExecuteStateTransactionRequest>,
            ) -> Result<Response<()>, Status> {
                let req = request.into_inner();
                let ops = req.operations.into_iter().map(|op| {
                    let s = op.request.unwrap_or_default();
                    (op.operation_type, item!(s))
                });
                self.transact(&req.store_name, ops.collect()).await?;
                Ok(Response::new(()))
            }

            async fn publish_event(
                &self,
                _: Request<$api::PublishEventRequest>,
            ) -> Result<Response<()>, Status> {
                Err(unimplemented(SERVICE, "PublishEvent"))
            }

            $($extra)*
        }
    };
}

mod layotto_api {
    use super::*;
    const SERVICE: &str = "spec.proto.runtime.v1.Runtime";

    runtime_api!(layotto::runtime_server::Runtime, layotto, layotto, {
        async fn say_hello(
            &self,
            request: Request<layotto::SayHelloRequest>,
        ) -> Result<Response<layotto::SayHelloResponse>, Status> {
            let req = request.into_inner();
            let name = if req.name.is_empty() {
                "world"
            } else {
                &req.name
            };
            Ok(Response::new(layotto::SayHelloResponse {
                hello: format!("Hello, {name}! (fwasm)"),
                data: req.data,
            }))
        }

        async fn try_lock(
            &self,
            _: Request<layotto::TryLockRequest>,
        ) -> Result<Response<layotto::TryLockResponse>, Status> {
            Err(unimplemented(SERVICE, "TryLock"))
        }

        async fn unlock(
            &self,
            _: Request<layotto::UnlockRequest>,
        ) -> Result<Response<layotto::UnlockResponse>, Status> {
            Err(unimplemented(SERVICE, "Unlock"))
        }

        async fn get_next_id(
            &self,
            request: Request<layotto::GetNextIdRequest>,
        ) -> Result<Response<layotto::GetNextIdResponse>, Status> {
            let req = request.into_inner();
            let next_id = self.next_id(&req.store_name, &req.key).await?;
            Ok(Response::new(layotto::GetNextIdResponse { next_id }))
        }
    });
}

mod dapr_api {
    use super::*;
    const SERVICE: &str = "dapr.proto.runtime.v1.Dapr";

    runtime_api!(dapr::dapr_server::Dapr, dapr, dapr_common, {
        async fn try_lock_alpha1(
            &self,
            _: Request<dapr::TryLockRequest>,
        ) -> Result<Response<dapr::TryLockResponse>, Status> {
            Err(unimplemented(SERVICE, "TryLockAlpha1"))
        }

        async fn unlock_alpha1(
            &self,
            _: Request<dapr::UnlockRequest>,
        ) -> Result<Response<dapr::UnlockResponse>, Status> {
            Err(unimplemented(SERVICE, "UnlockAlpha1"))
        }

        async fn get_metadata(
            &self,
            _: Request<dapr::GetMetadataRequest>,
        ) -> Result<Response<dapr::GetMetadataResponse>, Status> {
            Ok(Response::new(dapr::GetMetadataResponse {
                id: "fwasm".into(),
                registered_components: vec![dapr::RegisteredComponents {
                    name: "fwasm".into(),
                    r#type: "state.fwasm".into(),
                    version: "v1".into(),
                    capabilities: vec!["ETAG".into(), "TRANSACTIONAL".into()],
                }],
                runtime_version: env!("CARGO_PKG_VERSION").into(),
                enabled_features: Vec::new(),
            }))
        }
    });
}

/// A runtime API service whose methods fwasm does not serve (Dapr has some ninety) answer
/// UNIMPLEMENTED naming the method: tonic's own answer names nothing.
#[derive(Clone)]
pub(crate) struct NamingUnserved<S>(pub S);

impl<S> Service<http::Request<Body>> for NamingUnserved<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let method = request.uri().path().trim_start_matches('/').to_string();
        let answer = self.0.call(request);
        Box::pin(async move {
            let response = answer.await?;
            let headers = response.headers();
            let unserved = headers.get("grpc-status").is_some_and(|code| code == "12")
                && !headers.contains_key("grpc-message");
            Ok(match unserved {
                true => {
                    Status::unimplemented(format!("{method} is not served by fwasm")).into_http()
                }
                false => response,
            })
        })
    }
}

impl<S: NamedService> NamedService for NamingUnserved<S> {
    const NAME: &'static str = S::NAME;
}
