//! Layotto's (`spec.proto.runtime.v1.Runtime`) and Dapr's (`dapr.proto.runtime.v1.Dapr`)
//! runtime APIs on the public gRPC port. Their messages are alike field for field, so one
//! macro writes both services over the [`Sidecar`]; each adds the methods only it has.

use bytes::Bytes;
use fwasm_proto::dapr::proto::common::v1 as dapr_common;
use fwasm_proto::dapr::proto::runtime::v1 as dapr;
use fwasm_proto::layotto;
use prost_types::Any;
use tonic::{Request, Response, Status};

use crate::sidecar::{Item, MethodCall, Sidecar, UnlockStatus};

/// A file sent back as a stream of messages of at most this many bytes each.
const FILE_CHUNK_BYTES: usize = 64 << 10;

/// The messages a file is streamed in.
type FileChunks<M> = tokio_stream::Iter<std::vec::IntoIter<Result<M, Status>>>;

/// `data` in chunks, each wrapped by `message` (one empty chunk for an empty file).
fn chunks<M>(data: Bytes, message: impl Fn(Bytes) -> M) -> FileChunks<M> {
    let mut messages = Vec::new();
    let mut offset = 0;
    loop {
        let end = (offset + FILE_CHUNK_BYTES).min(data.len());
        messages.push(Ok(message(data.slice(offset..end))));
        offset = end;
        if offset >= data.len() {
            break;
        }
    }
    tokio_stream::iter(messages)
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

/// `impl $service for Sidecar` (`$service_name` is its gRPC name): `$api` holds its requests,
/// `$common` its state items, etags, invoke reply and HTTP extension; `locks` and `unlocked`
/// name its lock methods, its expiry field and its unlock statuses; `$($extra)*` are the
/// methods only this API has.
macro_rules! runtime_api {
    (
        $service:path = $service_name:expr, $api:ident, $common:ident,
        locks: $try_lock:ident($expire:ident), $unlock:ident,
        unlocked: [$success:ident, $not_locked:ident, $others_hold:ident],
        { $($extra:tt)* }
    ) => {
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

            // fwasm has no output bindings or secret stores (its executors call a sidecar's
            // for their functions, with `--sidecar`).
            async fn invoke_binding(
                &self,
                request: Request<$api::InvokeBindingRequest>,
            ) -> Result<Response<$api::InvokeBindingResponse>, Status> {
                Err(Status::unimplemented(format!(
                    "{}/InvokeBinding: fwasm has no output bindings (asked for {:?}); run its executors \
                     with --sidecar to reach a Layotto's or Dapr's",
                    $service_name,
                    request.into_inner().name
                )))
            }

            async fn get_secret(
                &self,
                request: Request<$api::GetSecretRequest>,
            ) -> Result<Response<$api::GetSecretResponse>, Status> {
                Err(Status::unimplemented(format!(
                    "{}/GetSecret: fwasm has no secret stores (asked for {:?}); run its executors \
                     with --sidecar to reach a Layotto's or Dapr's",
                    $service_name,
                    request.into_inner().store_name
                )))
            }

            async fn get_state(
                &self,
                request: Request<$api::GetStateRequest>,
            ) -> Result<Response<$api::GetStateResponse>, Status> {
                let req = request.into_inner();
                let read = self.get(&req.store_name, &req.key).await?;
                Ok(Response::new($api::GetStateResponse {
                    data: read.data,
                    etag: read.etag,
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
                request: Request<$api::PublishEventRequest>,
            ) -> Result<Response<()>, Status> {
                let req = request.into_inner();
                self.publish(&req.pubsub_name, &req.topic, req.data, &req.data_content_type, &req.metadata)
                    .await?;
                Ok(Response::new(()))
            }

            async fn $try_lock(
                &self,
                request: Request<$api::TryLockRequest>,
            ) -> Result<Response<$api::TryLockResponse>, Status> {
                let req = request.into_inner();
                let (store, resource) = (&req.store_name, &req.resource_id);
                let success = Sidecar::try_lock(self, store, resource, &req.lock_owner, req.$expire)
                    .await?;
                Ok(Response::new($api::TryLockResponse { success }))
            }

            async fn $unlock(
                &self,
                request: Request<$api::UnlockRequest>,
            ) -> Result<Response<$api::UnlockResponse>, Status> {
                use $api::unlock_response::Status as Unlock;
                let req = request.into_inner();
                let (store, resource) = (&req.store_name, &req.resource_id);
                let status = match Sidecar::unlock(self, store, resource, &req.lock_owner).await? {
                    UnlockStatus::Success => Unlock::$success,
                    UnlockStatus::NotLocked => Unlock::$not_locked,
                    UnlockStatus::OthersHold => Unlock::$others_hold,
                };
                Ok(Response::new($api::UnlockResponse { status: status as i32 }))
            }

            $($extra)*
        }
    };
}

mod layotto_api {
    use super::*;

    runtime_api!(
        layotto::runtime_server::Runtime = layotto::runtime_server::SERVICE_NAME, layotto, layotto,
        locks: try_lock(expire), unlock,
        unlocked: [Success, LockUnexist, LockBelongToOthers],
    {
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

        type GetFileStream = FileChunks<layotto::GetFileResponse>;

        async fn get_file(
            &self,
            request: Request<layotto::GetFileRequest>,
        ) -> Result<Response<Self::GetFileStream>, Status> {
            let req = request.into_inner();
            let data = Sidecar::get_file(self, &req.store_name, &req.name).await?;
            Ok(Response::new(chunks(data, |data| {
                layotto::GetFileResponse { data }
            })))
        }

        async fn put_file(
            &self,
            request: Request<tonic::Streaming<layotto::PutFileRequest>>,
        ) -> Result<Response<()>, Status> {
            let mut stream = request.into_inner();
            let limit = self.0.config().max_module_bytes;
            // The first message names the file; every message adds data.
            let mut named = None;
            let mut data = Vec::new();
            while let Some(chunk) = stream.message().await? {
                if data.len() + chunk.data.len() > limit {
                    return Err(Status::out_of_range(format!(
                        "a shared file over {limit} bytes is over the limit"
                    )));
                }
                data.extend_from_slice(&chunk.data);
                named.get_or_insert((chunk.store_name, chunk.name));
            }
            let (store, name) =
                named.ok_or_else(|| Status::invalid_argument("PutFile sent no message"))?;
            Sidecar::put_file(self, &store, &name, data.into()).await?;
            Ok(Response::new(()))
        }

        async fn list_file(
            &self,
            request: Request<layotto::ListFileRequest>,
        ) -> Result<Response<layotto::ListFileResp>, Status> {
            let req = request.into_inner();
            let dir = req.request.unwrap_or_default();
            let page =
                Sidecar::list_files(self, &dir.store_name, &dir.name, req.page_size, &req.marker)
                    .await?;
            let files = page
                .files
                .into_iter()
                .map(|(file_name, size)| layotto::FileInfo {
                    file_name,
                    size: size as i64,
                    ..Default::default()
                })
                .collect();
            Ok(Response::new(layotto::ListFileResp {
                files,
                marker: page.marker,
                is_truncated: page.truncated,
            }))
        }

        async fn del_file(
            &self,
            request: Request<layotto::DelFileRequest>,
        ) -> Result<Response<()>, Status> {
            let file = request.into_inner().request.unwrap_or_default();
            Sidecar::delete_file(self, &file.store_name, &file.name).await?;
            Ok(Response::new(()))
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

    runtime_api!(
        dapr::dapr_server::Dapr = dapr::dapr_server::SERVICE_NAME, dapr, dapr_common,
        locks: try_lock_alpha1(expiry_in_seconds), unlock_alpha1,
        unlocked: [Success, LockDoesNotExist, LockBelongsToOthers],
    {
        async fn get_metadata(
            &self,
            _: Request<dapr::GetMetadataRequest>,
        ) -> Result<Response<dapr::GetMetadataResponse>, Status> {
            Ok(Response::new(dapr::GetMetadataResponse {
                id: "fwasm".into(),
                registered_components: vec![
                    component("state.fwasm", &["ETAG", "TRANSACTIONAL"]),
                    component("lock.fwasm", &[]),
                    component("pubsub.fwasm", &[]),
                ],
                runtime_version: env!("CARGO_PKG_VERSION").into(),
                enabled_features: Vec::new(),
            }))
        }
    });
}

/// A building block fwasm serves, as Dapr's GetMetadata lists it: every store, lock and
/// pub/sub name is a user, so one component of each type stands for all.
fn component(kind: &str, capabilities: &[&str]) -> dapr::RegisteredComponents {
    dapr::RegisteredComponents {
        name: "fwasm".into(),
        r#type: kind.into(),
        version: "v1".into(),
        capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
    }
}
