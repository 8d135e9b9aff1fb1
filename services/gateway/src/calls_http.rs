//! Calls and users as JSON on the upload port (8002), for the console and for scripts:
//! `GET /users` (admin), `GET /calls[?user&function&status&limit&before]` (a user's recent
//! calls, newest first: without `user`, the caller's own, or every user's for an admin),
//! `GET /calls/<id>` (one call, with its output and logs), `POST /invoke/<user>/<function>`
//! (runs a call, answering its outcome as JSON) and `POST /cancel/<id>`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fwasm_proto::outcome::status_word;
use fwasm_proto::pb::{CallRecord, CallResult, CallStatus, FailureKind, ListCallsRequest};
use serde_json::{Value, json};

use crate::gateway::{Gateway, Invocation};
use crate::http::{error_response, text};

/// `GET /users`: every user with functions or tokens.
pub(crate) async fn users(State(gateway): State<Arc<Gateway>>) -> Response {
    match gateway.list_users().await {
        Ok(list) => axum::Json(json!({ "users": list.users })).into_response(),
        Err(err) => error_response(err),
    }
}

/// `GET /calls`: the calls the scheduler keeps that the query asks for.
pub(crate) async fn list(
    State(gateway): State<Arc<Gateway>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let request = match listing(query) {
        Ok(request) => request,
        Err(why) => return text(StatusCode::BAD_REQUEST, why),
    };
    match gateway.list_calls(request).await {
        Ok(list) => {
            let calls: Vec<Value> = list.calls.iter().map(summary).collect();
            axum::Json(Value::Array(calls)).into_response()
        }
        Err(err) => error_response(err),
    }
}

/// `GET /calls/<id>`: one call, with its output, console output and logs.
pub(crate) async fn one(State(gateway): State<Arc<Gateway>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return crate::http::not_a_call_id(&id);
    };
    match gateway.get_call(id).await {
        Ok(record) => {
            let mut call = summary(&record);
            call["output"] = lossy(&record.output);
            call["stdout"] = lossy(&record.stdout);
            call["logs"] = lossy(&record.logs);
            axum::Json(call).into_response()
        }
        Err(err) => error_response(err),
    }
}

/// `POST /invoke/<user>/<function>`: calls the function with the body as input and answers
/// how the call went (200 whether it succeeded or failed; an error status if it could not
/// run).
pub(crate) async fn invoke(
    State(gateway): State<Arc<Gateway>>,
    Path((user, function)): Path<(String, String)>,
    input: Bytes,
) -> Response {
    match gateway
        .invoke(Invocation::post(user, function, input))
        .await
    {
        Ok(result) => axum::Json(outcome(&result)).into_response(),
        Err(err) => error_response(err),
    }
}

/// The listing a query asks for: `user`, `function`, `status` (queued, running, success or
/// failed), `limit` and `before` (a call id: the page after the one that ended there).
fn listing(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<ListCallsRequest, String> {
    let Query(pairs) = query.map_err(|e| e.body_text())?;
    let mut request = ListCallsRequest::default();
    for (name, value) in pairs {
        let number = |what: &str| {
            value
                .parse::<u64>()
                .map_err(|_| format!("{what} must be a number, not {value:?}"))
        };
        match name.as_str() {
            "user" => request.user = value,
            "function" => request.function = value,
            "status" => request.status = status_named(&value)? as i32,
            "limit" => request.limit = number("limit")?.min(u64::from(u32::MAX)) as u32,
            "before" => request.before_id = number("before")?,
            other => {
                return Err(format!(
                    "unknown parameter {other:?}: calls are listed by user, function, status, \
                     limit and before"
                ));
            }
        }
    }
    Ok(request)
}

fn status_named(name: &str) -> Result<CallStatus, String> {
    match name.to_ascii_lowercase().as_str() {
        "queued" => Ok(CallStatus::Queued),
        "running" => Ok(CallStatus::Running),
        "success" => Ok(CallStatus::Success),
        "failed" => Ok(CallStatus::Failed),
        _ => Err(format!(
            "unknown status {name:?}: one of queued, running, success, failed"
        )),
    }
}

/// A call as listings show it: everything but its output, console output and logs.
fn summary(record: &CallRecord) -> Value {
    let at = |micros: u64| match micros {
        0 => Value::Null,
        micros => fwasm_proto::timestamps::rfc3339_from_unix_ms(micros / 1000).into(),
    };
    json!({
        "id": record.id,
        "user": record.user,
        "function": record.function,
        "status": status_word(record.status()),
        "failure": failure_word(record.failure()),
        "error": record.error,
        "return_code": record.return_code,
        "http_status": record.http_status,
        "parent_id": record.parent_id,
        "executor": record.executor_id,
        "submitted_at": at(record.submitted_unix_micros),
        "finished_at": at(record.finished_unix_micros),
        "exec_micros": record.exec_micros,
        "cold_start": record.cold_start,
        "trace_id": record.trace_id,
    })
}

/// A call that has just run, as its caller learns it.
fn outcome(result: &CallResult) -> Value {
    json!({
        "id": result.id,
        "status": status_word(result.status()),
        "failure": failure_word(result.failure()),
        "error": result.error,
        "http_status": result.http_status,
        "output": lossy(&result.output),
        "logs": lossy(&result.logs),
        "exec_micros": result.exec_micros,
        "cold_start": result.cold_start,
    })
}

/// The failure kind's own name (`CANCELLED`, `TIMEOUT`, ...), or "" for none.
fn failure_word(failure: FailureKind) -> &'static str {
    match failure {
        FailureKind::Unspecified => "",
        kind => kind.as_str_name().trim_start_matches("FAILURE_KIND_"),
    }
}

/// Bytes as text (invalid UTF-8 replaced), for a page to show.
fn lossy(bytes: &[u8]) -> Value {
    String::from_utf8_lossy(bytes).into_owned().into()
}
