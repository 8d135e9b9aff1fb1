//! Managing functions on the upload port (8002): `GET /f/<user>` lists a user's functions as
//! JSON (name, size, ABI, hash, when uploaded, settings); `DELETE /f/<user>/<function>` (or
//! `/p/...`) removes one.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fwasm_proto::pb::FunctionInfo;
use serde_json::{Value, json};

use crate::gateway::Gateway;
use crate::http::{error_response, text};

pub(crate) async fn list(
    State(gateway): State<Arc<Gateway>>,
    Path(user): Path<String>,
) -> Response {
    match gateway.list_functions(&user).await {
        Ok(list) => {
            let functions: Vec<Value> = list.functions.iter().map(listed).collect();
            axum::Json(Value::Array(functions)).into_response()
        }
        Err(err) => error_response(err),
    }
}

pub(crate) async fn delete(
    State(gateway): State<Arc<Gateway>>,
    Path((user, function)): Path<(String, String)>,
) -> Response {
    match gateway.delete_function(&user, &function).await {
        Ok(()) => text(StatusCode::OK, format!("{user}/{function} deleted")),
        Err(err) => error_response(err),
    }
}

/// One function as the listing shows it.
pub(crate) fn listed(info: &FunctionInfo) -> Value {
    let settings = info.settings.clone().unwrap_or_default();
    json!({
        "name": info.function,
        "size": info.size,
        "abi": info.abi,
        "hash": info.module_hash,
        "uploaded_at": uploaded_at(info.uploaded_at_ms),
        "settings": {
            "env": settings.env,
            "allow_hosts": settings.allow_hosts,
        },
    })
}

/// When it was uploaded, in RFC 3339 (UTC, to the second); null when not known.
pub(crate) fn uploaded_at(ms: u64) -> Value {
    match ms {
        0 => Value::Null,
        ms => {
            let at = UNIX_EPOCH + Duration::from_millis(ms);
            Value::String(humantime::format_rfc3339_seconds(at).to_string())
        }
    }
}
