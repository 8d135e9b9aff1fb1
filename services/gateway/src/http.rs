//! The HTTP front doors: Faasm's invoke API (port 8080) and upload API (port 8002).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::serve::ListenerExt;
use fwasm_proto::pb::{CallResult, CallStatus, FunctionSettings, Header};
use fwasm_proto::trace::within;
use fwasm_proto::{ApiError, ErrorCode};
use tokio::net::TcpListener;
use tokio_rustls::rustls::ServerConfig;

use crate::auth::{self, Caller};
use crate::faasm_json::{self, FaasmRequest};
use crate::faasm_output::Ended;
use crate::faasm_planner;
use crate::gateway::{Gateway, Invocation, acting_user};
use crate::tls_listener::TlsListener;

/// Serves `router` on `listener` until `shutdown` resolves; over TLS with `tls`.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match tls {
        Some(config) => {
            let listener = TlsListener::new(listener, config)?;
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

/// Port 8080: `/f/<user>/<function>[/...]` (sync) and `/fa/<user>/<function>[/...]` (async:
/// replies with the call id) with any method, which the function sees; `POST /` (Faasm
/// JSON), `GET /logs/<id>` (a call's log lines), `GET /ping`, and Dapr's HTTP API under
/// `/v1.0/`.
pub(crate) fn invoke_router(gateway: Arc<Gateway>) -> Router {
    let limit = gateway.config().max_input_bytes;
    Router::new()
        .route("/f/{user}/{function}", any(invoke_sync))
        .route("/f/{user}/{function}/{*rest}", any(invoke_sync))
        .route("/p/{user}/{function}", any(invoke_sync))
        .route("/p/{user}/{function}/{*rest}", any(invoke_sync))
        .route("/fa/{user}/{function}", any(invoke_async))
        .route("/fa/{user}/{function}/{*rest}", any(invoke_async))
        .route("/", post(invoke_json))
        .route("/ping", get(ping))
        .route("/logs/{id}", get(call_logs))
        .route("/cancel/{id}", post(cancel_call))
        .route("/metrics", get(metrics))
        .merge(crate::dapr_http::router())
        .fallback(no_such_endpoint)
        .layer(DefaultBodyLimit::max(limit))
        .layer(from_fn_with_state(gateway.clone(), authenticate))
        .with_state(gateway)
}

/// Paths anyone may ask for, tokens or not: health checks and metrics.
const OPEN_PATHS: [&str; 4] = [
    "/ping",
    "/metrics",
    "/v1.0/healthz",
    "/v1.0/healthz/outbound",
];

/// Handles a request as its caller (see `auth`): the token it sent decides what it reaches;
/// a request without one, or with one fwasm does not know, is refused here (401).
async fn authenticate(
    State(gateway): State<Arc<Gateway>>,
    request: Request,
    next: Next,
) -> Response {
    if OPEN_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let token = auth::presented(|name| headers.get(name).and_then(|v| v.to_str().ok()));
    if token.is_none() && gateway.config().open_faasm_api && is_faasm_door(&request) {
        return Caller::Open.scope(next.run(request)).await;
    }
    match gateway.caller(token).await {
        Ok(caller) => caller.scope(next.run(request)).await,
        Err(err) => {
            let mut response = error_response(err);
            let challenge = HeaderValue::from_static("Bearer");
            response.headers_mut().insert("www-authenticate", challenge);
            response
        }
    }
}

/// Faasm's own API: what its clients (faasmctl, its scripts) call, without tokens. fwasm's
/// own management (a user's function listing, deleting a function) always wants one.
fn is_faasm_door(request: &Request) -> bool {
    let (path, method) = (request.uri().path(), request.method());
    let faasms_method = [Method::GET, Method::POST, Method::PUT].contains(method);
    let listing = *method == Method::GET
        && ["/f/", "/p/", "/s/"]
            .iter()
            .any(|door| path.starts_with(door))
        && path.trim_end_matches('/').matches('/').count() < 3;
    let classic = ["/f/", "/fa/", "/p/", "/s/"]
        .iter()
        .any(|door| path.starts_with(door));
    (classic && faasms_method && !listing)
        || path == "/file"
        || (path == "/" && *method == Method::POST)
}

/// Prometheus' scrape of this process.
async fn metrics() -> Response {
    let text = fwasm_proto::metrics::handle().render();
    (
        StatusCode::OK,
        [("content-type", "text/plain; version=0.0.4")],
        text,
    )
        .into_response()
}

/// Port 8002: `PUT`/`GET`/`DELETE /f/<user>/<function>` and `GET /f/<user>` (functions),
/// `PUT/GET /s/<user>/<key>`, `PUT`/`GET /file`, subscriptions (`/sub/...`), users and calls
/// (`/users`, `/calls`, `/invoke/...`, `/cancel/<id>`), the console (`GET /`), `GET /ping`.
pub(crate) fn upload_router(gateway: Arc<Gateway>) -> Router {
    let limit = gateway.config().max_module_bytes;
    Router::new()
        .route("/f/{user}", get(crate::functions_http::list))
        .route(
            "/f/{user}/{function}",
            get(download)
                .put(upload)
                .delete(crate::functions_http::delete),
        )
        .route(
            "/p/{user}/{function}",
            get(download)
                .put(upload_python)
                .delete(crate::functions_http::delete),
        )
        .route("/s/{user}", get(list_keys))
        .route(
            "/s/{user}/{*key}",
            get(get_state).put(set_state).delete(delete_state),
        )
        .route("/file", get(get_file).put(put_file).delete(delete_file))
        .route("/files", get(list_files))
        .route("/users", get(crate::calls_http::users))
        .route("/calls", get(crate::calls_http::list))
        .route("/calls/{id}", get(crate::calls_http::one))
        .route("/invoke/{user}/{function}", post(crate::calls_http::invoke))
        .route("/cancel/{id}", post(cancel_call))
        .route("/ping", get(ping))
        .merge(crate::subscriptions_http::router())
        .fallback(no_such_endpoint)
        .layer(DefaultBodyLimit::max(limit))
        .layer(from_fn_with_state(gateway.clone(), authenticate))
        // The page itself holds nothing: what it shows comes through the checked APIs.
        .merge(crate::console::router())
        .with_state(gateway)
}

async fn ping() -> &'static str {
    "PONG"
}

/// The answer to a path whose call id is not one.
pub(crate) fn not_a_call_id(id: &str) -> Response {
    text(
        StatusCode::BAD_REQUEST,
        format!("{id:?} is not a call id (a number, as `fwasm invoke --async` prints)"),
    )
}

/// `POST /cancel/<id>`: cancels a call of the caller's (any, for an admin) that has not
/// ended; answers how it ended, as text (200), that it is still ending (202), or 409 if it
/// had ended already (or succeeded before the cancel took effect).
async fn cancel_call(State(gateway): State<Arc<Gateway>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return not_a_call_id(&id);
    };
    match gateway.cancel_call(id).await {
        Ok(record) => match record.status() {
            CallStatus::Failed => text(StatusCode::OK, record.error),
            CallStatus::Success => text(
                StatusCode::CONFLICT,
                format!("call {id} succeeded before the cancel took effect"),
            ),
            status => text(
                StatusCode::ACCEPTED,
                format!(
                    "call {id} is being cancelled: it is still {} on {}; `fwasm status {id}` \
                     shows when it ends",
                    fwasm_proto::outcome::status_word(status),
                    record.executor_id
                ),
            ),
        },
        Err(err) => error_response(err),
    }
}

/// `GET /logs/<id>`: the call's log lines (its caller's, or an admin's), as text.
async fn call_logs(State(gateway): State<Arc<Gateway>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return not_a_call_id(&id);
    };
    match gateway.get_call(id).await {
        Ok(record) => (
            StatusCode::OK,
            [("content-type", "text/plain; charset=utf-8")],
            record.logs,
        )
            .into_response(),
        Err(err) => error_response(err),
    }
}

async fn no_such_endpoint(method: Method, uri: Uri) -> Response {
    text(
        StatusCode::NOT_FOUND,
        format!("no such endpoint: {method} {}", uri.path()),
    )
}

pub(crate) fn text(status: StatusCode, message: impl Into<String>) -> Response {
    let mut body = message.into();
    body.push('\n');
    (
        status,
        [("content-type", "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

pub(crate) fn error_response(err: ApiError) -> Response {
    text(status_of(err.code), err.message)
}

/// The HTTP status that says what `code` says.
pub(crate) fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::Aborted | ErrorCode::FailedPrecondition => StatusCode::CONFLICT,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
    }
}

/// The body, or the limit it broke, in our words rather than the extractor's.
fn body_or_error(
    body: Result<Bytes, BytesRejection>,
    what: &str,
    limit: usize,
) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("{what} is over the limit of {limit} bytes"),
        ),
        _ => ApiError::invalid_argument(rejection.body_text()),
    })
}

/// The invocation an HTTP request to `/f/...` or `/fa/...` makes. A bad body (one over the
/// limit) is answered in our words, as every other error is.
pub(crate) struct HttpInvocation(pub Invocation);

impl FromRequest<Arc<Gateway>> for HttpInvocation {
    type Rejection = Response;

    async fn from_request(req: Request, gateway: &Arc<Gateway>) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Path(mut params) =
            Path::<HashMap<String, String>>::from_request_parts(&mut parts, gateway)
                .await
                .map_err(IntoResponse::into_response)?;
        let mut invocation = Invocation {
            user: params.remove("user").unwrap_or_default(),
            function: params.remove("function").unwrap_or_default(),
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or_default().to_string(),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| Header {
                    name: name.to_string(),
                    value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
                })
                .collect(),
            input: Bytes::new(),
            ..Invocation::default()
        };
        let body = Bytes::from_request(Request::from_parts(parts, body), gateway).await;
        invocation.input = body_or_error(body, "input", gateway.config().max_input_bytes)
            .map_err(error_response)?;
        Ok(Self(invocation))
    }
}

async fn invoke_sync(
    State(gateway): State<Arc<Gateway>>,
    HttpInvocation(invocation): HttpInvocation,
) -> Response {
    // Faasm-style: what the function printed can follow its output.
    let with_stdout = invocation.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("x-fwasm-stdout") && h.value.eq_ignore_ascii_case("include")
    });
    let caller = caller_span(&invocation);
    match within(caller, gateway.invoke(invocation)).await {
        Ok(mut result) => {
            if with_stdout && result.status() == CallStatus::Success {
                result.output = [&result.output[..], &result.stdout[..]].concat().into();
            } else if with_stdout && !result.stdout.is_empty() {
                // A failed call's printing is often what tells why (Faasm's tests printf).
                let printed = String::from_utf8_lossy(&result.stdout);
                result.error = format!("{}\n{}", result.error, printed.trim_end_matches('\n'));
            }
            call_response(result)
        }
        Err(err) => error_response(err),
    }
}

/// Faasm's `/fa/...`: the reply is the call id in decimal and nothing else.
async fn invoke_async(
    State(gateway): State<Arc<Gateway>>,
    HttpInvocation(invocation): HttpInvocation,
) -> Response {
    let caller = caller_span(&invocation);
    match within(caller, gateway.invoke_async(invocation)).await {
        Ok(id) => call_id_response(id),
        Err(err) => error_response(err),
    }
}

/// The span continuing the trace the request's `traceparent` header names, if it has one.
fn caller_span(invocation: &Invocation) -> Option<tracing::Span> {
    let header = |name: &str| {
        let mut headers = invocation.headers.iter();
        let found = headers.find(|h| h.name.eq_ignore_ascii_case(name));
        found.map(|h| h.value.as_str())
    };
    fwasm_proto::trace::caller_span(header("traceparent"), header("tracestate"))
}

fn call_id_response(id: u64) -> Response {
    (
        StatusCode::OK,
        [("content-type", "text/plain; charset=utf-8")],
        id.to_string(),
    )
        .into_response()
}

/// A finished call as the function shaped it: its status, headers and output bytes. A failed
/// call is a 500 with the reason.
pub(crate) fn call_response(result: CallResult) -> Response {
    let call_id = HeaderValue::from(result.id);
    if result.status() != CallStatus::Success {
        let mut response = text(StatusCode::INTERNAL_SERVER_ERROR, result.error);
        response.headers_mut().insert("x-fwasm-call-id", call_id);
        return response;
    }
    let status = u16::try_from(result.http_status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    // Built bare so the function's own headers are the only ones (no default content-type).
    let mut response = Response::new(axum::body::Body::from(result.output));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for header in &result.headers {
        // Headers a guest got wrong are dropped rather than failing a call that succeeded.
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(header.name.as_str()),
            HeaderValue::try_from(header.value.as_str()),
        ) {
            headers.append(name, value);
        }
    }
    headers.insert("x-fwasm-call-id", call_id);
    response
}

/// Faasm's JSON message style, or its planner protocol (faasmctl's). Replies are text: what
/// the function printed, then its output and a newline, as Faasm's are.
async fn invoke_json(
    State(gateway): State<Arc<Gateway>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body_or_error(body, "request", gateway.config().max_input_bytes) {
        Ok(body) => body,
        Err(err) => return error_response(err),
    };
    if faasm_planner::is_planner_message(&body) {
        return faasm_planner::handle(&gateway, &body).await;
    }
    let (user, function, input, cmdline, is_async, mpi_world_size) = match faasm_json::parse(&body)
    {
        FaasmRequest::Call {
            user,
            function,
            input,
            cmdline,
            is_async,
            mpi_world_size,
        } => (user, function, input, cmdline, is_async, mpi_world_size),
        FaasmRequest::Status { id } => return status_response(&gateway, id).await,
        FaasmRequest::Invalid(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let invocation = Invocation {
        cmdline,
        mpi_world_size,
        ..Invocation::post(user, function, Bytes::from(input))
    };
    if is_async {
        return match gateway.invoke_async(invocation).await {
            Ok(id) => call_id_response(id),
            Err(err) => error_response(err),
        };
    }
    match gateway.invoke(invocation).await {
        Ok(result) => {
            let ended = Ended::of_result(&result);
            let mut reply = ended.text();
            reply.push(b'\n');
            let status = match ended.succeeded {
                true => StatusCode::OK,
                false => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (status, reply).into_response()
        }
        Err(err) => error_response(err),
    }
}

/// Faasm's status poll: `RUNNING`, `SUCCESS: <output>` or `FAILED: <reason>`, exactly (what
/// the call printed comes before the output or reason, as on Faasm).
async fn status_response(gateway: &Gateway, id: u64) -> Response {
    let record = match gateway.get_call(id).await {
        Ok(record) => record,
        // Scripts poll until SUCCESS or FAILED: an id that will never finish must end the loop.
        Err(err) if err.code == ErrorCode::NotFound => {
            return faasm_status(StatusCode::NOT_FOUND, format!("FAILED: {}", err.message));
        }
        Err(err) => return error_response(err),
    };
    let prefix: &[u8] = match record.status() {
        CallStatus::Success => b"SUCCESS: ",
        CallStatus::Failed => b"FAILED: ",
        _ => return faasm_status(StatusCode::OK, "RUNNING"),
    };
    let line = [prefix, &Ended::of_record(&record).text()].concat();
    faasm_status(StatusCode::OK, line)
}

fn faasm_status(status: StatusCode, line: impl Into<axum::body::Body>) -> Response {
    let mut response = Response::new(line.into());
    *response.status_mut() = status;
    response
}

/// Faasm's upload, with the function's settings in the query (`?env=KEY=VALUE`, repeated) and
/// the ABI found in the `x-fwasm-abi` header (the body stays Faasm's). A proxy-wasm module's
/// own id (Layotto's `proxy_get_id`) is added in `x-fwasm-proxy-id` and a line of the body.
async fn upload(
    State(gateway): State<Arc<Gateway>>,
    Path((user, function)): Path<(String, String)>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    upload_code(&gateway, (&user, &function), query, body, Code::Module).await
}

/// Faasm's Python upload (`/p/`): the body is the script; otherwise as [`upload`].
async fn upload_python(
    State(gateway): State<Arc<Gateway>>,
    Path((user, function)): Path<(String, String)>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    upload_code(&gateway, (&user, &function), query, body, Code::Script).await
}

/// What an upload's body is.
#[derive(Clone, Copy)]
enum Code {
    Module,
    Script,
}

async fn upload_code(
    gateway: &Gateway,
    (user, function): (&str, &str),
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
    kind: Code,
) -> Response {
    let settings = match upload_settings(query) {
        Ok(settings) => settings,
        Err(err) => return error_response(err),
    };
    let (what, limit) = match kind {
        Code::Module => ("module", gateway.config().max_module_bytes),
        Code::Script => ("script", fwasm_proto::python::MAX_SCRIPT_BYTES),
    };
    let code = match body_or_error(body, what, limit) {
        Ok(code) => code,
        Err(err) => return error_response(err),
    };
    let uploaded = match kind {
        Code::Module => gateway.upload(user, function, code, settings).await,
        Code::Script => gateway.upload_python(user, function, code, settings).await,
    };
    match uploaded {
        Ok(reply) if !reply.proxy_id.is_empty() => (
            StatusCode::OK,
            [
                ("x-fwasm-abi", reply.abi),
                ("x-fwasm-proxy-id", reply.proxy_id.clone()),
            ],
            format!(
                "Function upload complete\nproxy-wasm id: {}\n",
                reply.proxy_id
            ),
        )
            .into_response(),
        Ok(reply) => (
            StatusCode::OK,
            [("x-fwasm-abi", reply.abi)],
            "Function upload complete\n",
        )
            .into_response(),
        Err(err) => error_response(err),
    }
}

fn upload_settings(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Option<FunctionSettings>, ApiError> {
    query
        .map_err(|e| ApiError::invalid_argument(format!("the upload's query does not parse: {e}")))
        .and_then(|Query(pairs)| settings_from_query(pairs))
}

/// The settings an upload's query gives: `env=KEY=VALUE` pairs (URL-encoded), or none.
fn settings_from_query(pairs: Vec<(String, String)>) -> Result<Option<FunctionSettings>, ApiError> {
    let mut settings = FunctionSettings::default();
    for (name, value) in pairs {
        match name.as_str() {
            "env" => {
                let Some((key, value)) = value.split_once('=') else {
                    return Err(ApiError::invalid_argument(format!(
                        "env={value} is not KEY=VALUE"
                    )));
                };
                settings.env.insert(key.to_string(), value.to_string());
            }
            "allow_host" => settings.allow_hosts.push(value),
            "limit" => fwasm_proto::names::set_limit(&mut settings, &value)?,
            other => {
                return Err(ApiError::invalid_argument(format!(
                    "unknown upload setting {other:?}; the settings are env=KEY=VALUE, \
                     allow_host=HOST:PORT, limit=timeout=SECS and limit=memory=MIB"
                )));
            }
        }
    }
    Ok((settings != FunctionSettings::default()).then_some(settings))
}

async fn set_state(
    State(gateway): State<Arc<Gateway>>,
    Path((user, key)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let value = match body_or_error(body, "state value", gateway.config().max_module_bytes) {
        Ok(value) => value,
        Err(err) => return error_response(err),
    };
    match gateway.set_state(&user, &key, value).await {
        Ok(()) => (StatusCode::OK, "State upload complete\n").into_response(),
        Err(err) => error_response(err),
    }
}

async fn get_state(
    State(gateway): State<Arc<Gateway>>,
    Path((user, key)): Path<(String, String)>,
) -> Response {
    match gateway.get_state(&user, &key).await {
        Ok(Some(value)) => (StatusCode::OK, value).into_response(),
        Ok(None) => text(
            StatusCode::NOT_FOUND,
            format!("{user} has no state value {key:?}"),
        ),
        Err(err) => error_response(err),
    }
}

/// A listing's page: `?prefix=P&after=LAST&limit=N` (all optional).
struct Page {
    prefix: String,
    after: String,
    limit: u32,
}

fn page_of(query: Result<Query<Vec<(String, String)>>, QueryRejection>) -> Result<Page, String> {
    let Ok(Query(pairs)) = query else {
        return Err("the listing's query does not parse".into());
    };
    let mut page = Page {
        prefix: String::new(),
        after: String::new(),
        limit: 0,
    };
    for (name, value) in pairs {
        match name.as_str() {
            "prefix" => page.prefix = value,
            "after" => page.after = value,
            "limit" => {
                page.limit = value
                    .parse()
                    .map_err(|_| format!("limit={value} is not a number"))?
            }
            other => {
                return Err(format!(
                    "unknown listing parameter {other:?}; they are prefix, after and limit"
                ));
            }
        }
    }
    Ok(page)
}

/// `GET /s/<user>[?prefix=P&after=K&limit=N]`: the user's keys, as JSON (`keys`, and
/// `truncated` when more follow the last).
async fn list_keys(
    State(gateway): State<Arc<Gateway>>,
    Path(user): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let Page {
        prefix,
        after,
        limit,
    } = match page_of(query) {
        Ok(page) => page,
        Err(why) => return text(StatusCode::BAD_REQUEST, why),
    };
    match gateway.list_keys(&user, &prefix, &after, limit).await {
        Ok(list) => axum::Json(serde_json::json!({
            "keys": list.keys,
            "truncated": list.truncated,
        }))
        .into_response(),
        Err(err) => error_response(err),
    }
}

async fn delete_state(
    State(gateway): State<Arc<Gateway>>,
    Path((user, key)): Path<(String, String)>,
) -> Response {
    match gateway.delete_state(&user, &key).await {
        Ok(()) => text(StatusCode::OK, format!("{user}'s {key:?} deleted")),
        Err(err) => error_response(err),
    }
}

/// Faasm's shared files: the path is in the `FilePath` header; whose files, the caller's token
/// says (see [`acting_user`]).
fn file_path(headers: &HeaderMap) -> Result<String, ApiError> {
    let path = headers
        .get("FilePath")
        .ok_or_else(|| ApiError::invalid_argument("name the file in a FilePath header"))?;
    path.to_str()
        .map(str::to_string)
        .map_err(|_| ApiError::invalid_argument("the FilePath header is not text"))
}

async fn put_file(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = match (
        file_path(&headers),
        body_or_error(body, "file", gateway.config().max_module_bytes),
    ) {
        (Ok(path), Ok(data)) => match acting_user() {
            Ok(user) => gateway.put_file(&user, &path, data).await,
            Err(err) => Err(err),
        },
        (Err(err), _) | (_, Err(err)) => Err(err),
    };
    match result {
        Ok(()) => (StatusCode::OK, "Shared file uploaded\n").into_response(),
        Err(err) => error_response(err),
    }
}

async fn get_file(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let path = match file_path(&headers) {
        Ok(path) => path,
        Err(err) => return error_response(err),
    };
    let user = match acting_user() {
        Ok(user) => user,
        Err(err) => return error_response(err),
    };
    match gateway.get_file(&user, &path).await {
        Ok(Some(data)) => (StatusCode::OK, data).into_response(),
        Ok(None) => text(StatusCode::NOT_FOUND, format!("no shared file {path:?}")),
        Err(err) => error_response(err),
    }
}

/// `GET /files[?prefix=P&after=PATH&limit=N]`: the caller's shared files (an admin's: the
/// common ones), as JSON (`files`: `path` and `size` each, and `truncated`).
async fn list_files(
    State(gateway): State<Arc<Gateway>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let page = match page_of(query) {
        Ok(page) => page,
        Err(why) => return text(StatusCode::BAD_REQUEST, why),
    };
    let listed = match acting_user() {
        Ok(user) => {
            gateway
                .list_files(&user, &page.prefix, &page.after, page.limit)
                .await
        }
        Err(err) => Err(err),
    };
    match listed {
        Ok(list) => {
            let files: Vec<serde_json::Value> = list
                .files
                .iter()
                .map(|f| serde_json::json!({"path": f.path, "size": f.size}))
                .collect();
            axum::Json(serde_json::json!({"files": files, "truncated": list.truncated}))
                .into_response()
        }
        Err(err) => error_response(err),
    }
}

/// Not Faasm's (which never deletes a file): how a user, or an admin for the common files,
/// takes one back.
async fn delete_file(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let deleted = match (file_path(&headers), acting_user()) {
        (Ok(path), Ok(user)) => gateway.delete_file(&user, &path).await,
        (Err(err), _) | (_, Err(err)) => Err(err),
    };
    match deleted {
        Ok(()) => (StatusCode::OK, "Shared file deleted\n").into_response(),
        Err(err) => error_response(err),
    }
}

async fn download(
    State(gateway): State<Arc<Gateway>>,
    Path((user, function)): Path<(String, String)>,
) -> Response {
    match gateway.download(&user, &function).await {
        Ok(code) if fwasm_proto::python::is_script(&code) => {
            (StatusCode::OK, [("content-type", "text/x-python")], code).into_response()
        }
        Ok(wasm) => (StatusCode::OK, [("content-type", "application/wasm")], wasm).into_response(),
        Err(err) => error_response(err),
    }
}
