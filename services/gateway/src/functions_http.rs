//! Managing functions on the upload port (8002): `GET /f/<user>` lists a user's functions as
//! JSON (name, size, ABI, hash, when uploaded, settings); `DELETE /f/<user>/<function>` (or
//! `/p/...`) removes one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fwasm_proto::pb::FunctionInfo;
use serde_json::{Value, json};
use std::sync::Arc;

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
        "uploaded_at": fwasm_proto::timestamps::rfc3339_from_unix_ms(info.uploaded_at_ms),
        "settings": {
            "env": settings.env,
            "allow_hosts": settings.allow_hosts,
            "timeout_seconds": settings.timeout_seconds,
            "memory_mib": settings.memory_mib,
        },
    })
}
