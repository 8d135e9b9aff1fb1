//! Dapr's HTTP API on the invoke port (8080), which Dapr's SDKs use beside gRPC: health,
//! service invocation, state and publishing, shaped as Dapr shapes them, over the same [`Sidecar`]
//! operations as the gRPC runtime APIs (a store or app id is the fwasm user).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use fwasm_proto::ApiError;
use serde::Deserialize;

use crate::gateway::Gateway;
use crate::http::{HttpInvocation, call_response};
use crate::sidecar::{Item, Sidecar};

pub(crate) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/v1.0/healthz", get(healthy))
        .route("/v1.0/healthz/outbound", get(healthy))
        .route("/v1.0/invoke/{user}/method/{function}", any(invoke))
        .route("/v1.0/invoke/{user}/method/{function}/{*rest}", any(invoke))
        .route("/v1.0/state/{user}", post(save))
        .route("/v1.0/state/{user}/{*key}", get(read).delete(delete))
        .route("/v1.0/publish/{user}/{*topic}", post(publish))
}

/// Dapr's health checks: 204 once the sidecar (here: fwasm) serves.
async fn healthy() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// A Dapr-style error: `{"errorCode": ..., "message": ...}` with the status that fits.
fn error(err: ApiError, operation: &str) -> Response {
    let status = crate::http::status_of(err.code);
    let body = serde_json::json!({ "errorCode": operation, "message": err.message });
    (status, axum::Json(body)).into_response()
}

/// `/v1.0/invoke/<user>/method/<function>[/<path>]` with any verb: the function's own status,
/// headers and body. It sees the path `/f/<user>/<function>[/<path>]`, as from any door.
async fn invoke(
    State(gateway): State<Arc<Gateway>>,
    Path(params): Path<Vec<(String, String)>>,
    HttpInvocation(mut invocation): HttpInvocation,
) -> Response {
    let rest = params.iter().find(|(name, _)| name == "rest");
    invocation.path = match rest {
        Some((_, rest)) => format!("/f/{}/{}/{rest}", invocation.user, invocation.function),
        None => format!("/f/{}/{}", invocation.user, invocation.function),
    };
    match gateway.invoke(invocation).await {
        Ok(result) => call_response(result),
        Err(err) => error(err, "ERR_DIRECT_INVOKE"),
    }
}

/// One item of `POST /v1.0/state/<store>`: its value is any JSON, kept as its JSON text.
#[derive(Deserialize)]
struct SaveItem {
    key: String,
    value: serde_json::Value,
    #[serde(default)]
    etag: Option<String>,
}

async fn save(
    State(gateway): State<Arc<Gateway>>,
    Path(store): Path<String>,
    body: Bytes,
) -> Response {
    let items: Vec<SaveItem> = match serde_json::from_slice(&body) {
        Ok(items) => items,
        Err(err) => {
            let err = ApiError::invalid_argument(format!(
                "the body is not a JSON list of {{\"key\", \"value\", \"etag\"}} items: {err}"
            ));
            return error(err, "ERR_MALFORMED_REQUEST");
        }
    };
    let items = items
        .into_iter()
        .map(|item| Item {
            key: item.key,
            value: serde_json::to_vec(&item.value).unwrap_or_default().into(),
            etag: item.etag.unwrap_or_default(),
        })
        .collect();
    match Sidecar(gateway).write_items(&store, items, false).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => error(err, "ERR_STATE_SAVE"),
    }
}

/// `GET /v1.0/state/<store>/<key>`: the value with its `ETag`, or 204 for a missing key.
async fn read(
    State(gateway): State<Arc<Gateway>>,
    Path((store, key)): Path<(String, String)>,
) -> Response {
    match Sidecar(gateway).get(&store, &key).await {
        Ok(read) if !read.exists => StatusCode::NO_CONTENT.into_response(),
        Ok(read) => (StatusCode::OK, [("etag", read.etag)], read.data).into_response(),
        Err(err) => error(err, "ERR_STATE_GET"),
    }
}

/// `DELETE /v1.0/state/<store>/<key>`, only if the `If-Match` etag (when sent) still matches.
async fn delete(
    State(gateway): State<Arc<Gateway>>,
    Path((store, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let etag = headers.get("if-match").and_then(|v| v.to_str().ok());
    let item = Item {
        key,
        value: Bytes::new(),
        etag: etag.unwrap_or_default().to_string(),
    };
    match Sidecar(gateway).write_items(&store, vec![item], true).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => error(err, "ERR_STATE_DELETE"),
    }
}

/// `POST /v1.0/publish/<pubsub>/<topic>`: the body is the event's data, its content type the
/// data's; `metadata.NAME=VALUE` query parameters are the event's metadata
/// (`metadata.rawPayload=true` delivers the data without an envelope). 204 once every
/// subscribed function's call is recorded.
async fn publish(
    State(gateway): State<Arc<Gateway>>,
    Path((pubsub, topic)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let metadata = query
        .into_iter()
        .filter_map(|(name, value)| Some((name.strip_prefix("metadata.")?.to_string(), value)))
        .collect();
    let published = Sidecar(gateway)
        .publish(&pubsub, &topic, body, content_type, &metadata)
        .await;
    match published {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => error(err, "ERR_PUBSUB_PUBLISH_MESSAGE"),
    }
}
