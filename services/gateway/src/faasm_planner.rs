//! Faasm's planner protocol (`POST /` with `{"http_type": ..., "payload": "<JSON>"}`), as
//! `faasmctl` speaks it: `EXECUTE_BATCH` starts a batch of calls and `EXECUTE_BATCH_STATUS`
//! polls for their results. Messages are faabric's protobufs in proto3 JSON.
//!
//! faasmctl's ids are 32-bit and its own (the app id and each message id): replies echo them,
//! and [`PlannerApps`] keeps which fwasm calls an app's messages became.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use bytes::Bytes;
use fwasm_proto::pb::{CallRecord, CallStatus};
use fwasm_proto::{ApiError, ErrorCode};
use serde::{Deserialize, Deserializer, Serialize};

use crate::faasm_output::Ended;
use crate::gateway::{Gateway, Invocation, acting_user};
use crate::http::error_response;

/// Apps kept for status polls; the oldest is forgotten past this.
const MAX_APPS: usize = 100_000;

/// The outer message: which request, and its payload (a JSON document in a string).
#[derive(Debug, Deserialize)]
struct HttpMessage {
    #[serde(
        rename = "http_type",
        alias = "type",
        deserialize_with = "request_kind"
    )]
    kind: RequestKind,
    #[serde(default, rename = "payload", alias = "payloadJson")]
    payload: String,
}

/// `HttpMessage.Type`, by name or number, as proto3 JSON allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestKind {
    ExecuteBatch,
    ExecuteBatchStatus,
    /// A request of Faasm's planner fwasm does not serve (its name).
    Other(&'static str),
    Unknown,
}

const KIND_NAMES: [(&str, i64); 15] = [
    ("NO_TYPE", 0),
    ("RESET", 1),
    ("FLUSH_AVAILABLE_HOSTS", 2),
    ("FLUSH_EXECUTORS", 3),
    ("FLUSH_SCHEDULING_STATE", 4),
    ("GET_AVAILABLE_HOSTS", 5),
    ("GET_CONFIG", 6),
    ("GET_EXEC_GRAPH", 7),
    ("GET_IN_FLIGHT_APPS", 8),
    ("EXECUTE_BATCH", 10),
    ("EXECUTE_BATCH_STATUS", 11),
    ("PRELOAD_SCHEDULING_DECISION", 12),
    ("SET_POLICY", 13),
    ("GET_POLICY", 14),
    ("SET_NEXT_EVICTED_VM", 15),
];

fn request_kind<'de, D: Deserializer<'de>>(d: D) -> Result<RequestKind, D::Error> {
    let found = match NameOrNumber::deserialize(d)? {
        NameOrNumber::Name(name) => KIND_NAMES.iter().find(|(n, _)| *n == name),
        NameOrNumber::Number(number) => KIND_NAMES.iter().find(|(_, n)| *n == number),
    };
    Ok(match found {
        Some(("EXECUTE_BATCH", _)) => RequestKind::ExecuteBatch,
        Some(("EXECUTE_BATCH_STATUS", _)) => RequestKind::ExecuteBatchStatus,
        Some(("NO_TYPE", _)) | None => RequestKind::Unknown,
        Some((name, _)) => RequestKind::Other(name),
    })
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NameOrNumber {
    Name(String),
    Number(i64),
}

/// An int32 field: proto3 JSON writes it as a number, and accepts a string too.
fn int32<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    let number = match NameOrNumber::deserialize(d)? {
        NameOrNumber::Number(number) => number,
        NameOrNumber::Name(text) => text.trim().parse().map_err(serde::de::Error::custom)?,
    };
    i32::try_from(number).map_err(serde::de::Error::custom)
}

/// `faabric.BatchExecuteRequest`, the fields fwasm acts on.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BatchRequest {
    #[serde(rename = "appId", alias = "app_id", deserialize_with = "int32")]
    app_id: i32,
    user: String,
    function: String,
    /// FUNCTIONS (0), THREADS, PROCESSES or MIGRATION.
    #[serde(rename = "type", deserialize_with = "batch_type")]
    batch_type: i64,
    messages: Vec<BatchMessage>,
}

fn batch_type<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(match NameOrNumber::deserialize(d)? {
        NameOrNumber::Number(number) => number,
        NameOrNumber::Name(name) => ["FUNCTIONS", "THREADS", "PROCESSES", "MIGRATION"]
            .iter()
            .position(|n| *n == name)
            .map_or(-1, |p| p as i64),
    })
}

/// `faabric.Message`, the fields of a call fwasm acts on.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BatchMessage {
    #[serde(deserialize_with = "int32")]
    id: i32,
    user: String,
    function: String,
    /// Base64, as proto3 JSON writes bytes.
    #[serde(alias = "inputData")]
    input_data: String,
    cmdline: String,
    #[serde(alias = "isPython")]
    python: bool,
    #[serde(alias = "pythonUser")]
    py_user: String,
    #[serde(alias = "pythonFunction")]
    py_func: String,
    #[serde(rename = "pythonEntry")]
    python_entry: String,
    #[serde(alias = "isMpi")]
    mpi: bool,
    #[serde(alias = "mpiWorldSize", deserialize_with = "int32")]
    mpi_world_size: i32,
}

/// `faabric.BatchExecuteRequestStatus`, as asked for.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StatusRequest {
    #[serde(rename = "appId", alias = "app_id", deserialize_with = "int32")]
    app_id: i32,
}

/// `faabric.BatchExecuteRequestStatus` in a reply: only fields of faabric's proto, defaults
/// left out (faasmctl's parser refuses a field it does not know).
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchStatus {
    app_id: i32,
    #[serde(skip_serializing_if = "is_false")]
    finished: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    message_results: Vec<MessageResult>,
    #[serde(skip_serializing_if = "is_zero")]
    expected_num_messages: i32,
}

/// `faabric.Message` of an ended call.
#[derive(Debug, Default, Clone, Serialize)]
struct MessageResult {
    id: i32,
    #[serde(rename = "appId")]
    app_id: i32,
    user: String,
    function: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    output_data: String,
    #[serde(rename = "returnValue", skip_serializing_if = "is_zero")]
    return_value: i32,
    /// Unix milliseconds; int64 is a string in proto3 JSON.
    start_ts: String,
    finish_ts: String,
    #[serde(rename = "executedHost", skip_serializing_if = "String::is_empty")]
    executed_host: String,
    /// Set on each rank's result of an MPI world.
    #[serde(skip_serializing_if = "is_false")]
    mpi: bool,
    #[serde(rename = "mpiWorldId", skip_serializing_if = "is_zero")]
    mpi_world_id: i32,
    #[serde(rename = "mpiRank", skip_serializing_if = "is_zero")]
    mpi_rank: i32,
    #[serde(skip_serializing_if = "is_zero")]
    mpi_world_size: i32,
}

fn is_false(value: &bool) -> bool {
    !value
}

fn is_zero(value: &i32) -> bool {
    *value == 0
}

/// The calls an app's messages became, so its polls find them.
#[derive(Debug, Clone)]
struct App {
    messages: Vec<StartedMessage>,
}

#[derive(Debug, Clone)]
struct StartedMessage {
    id: i32,
    call_id: u64,
    user: String,
    function: String,
    /// The results it ends with: one per rank of an MPI world, else one.
    results: u32,
}

/// The apps this gateway started, by app id and owner (the user who started it; empty for an
/// admin, or anyone on an open API). A user sees only apps it started; an admin sees any.
/// Polls must come to the gateway that took the batch, as Faasm's go to its one planner.
#[derive(Debug, Default)]
pub(crate) struct PlannerApps {
    table: Mutex<AppTable>,
}

#[derive(Debug, Default)]
struct AppTable {
    /// Each app id's apps, one per owner (ids are the clients' own, so users may pick alike).
    apps: HashMap<i32, Vec<(String, App)>>,
    /// Oldest first, for forgetting past MAX_APPS.
    order: VecDeque<(i32, String)>,
}

impl PlannerApps {
    /// The app `viewer` (an acting user; empty: an admin) may see under `app_id`.
    fn get(&self, viewer: &str, app_id: i32) -> Option<App> {
        let table = self.lock();
        let apps = table.apps.get(&app_id)?;
        let visible = match viewer {
            "" => apps.last(),
            user => apps.iter().find(|(owner, _)| owner == user),
        };
        visible.map(|(_, app)| app.clone())
    }

    fn insert(&self, owner: String, app_id: i32, app: App) {
        let mut table = self.lock();
        let apps = table.apps.entry(app_id).or_default();
        match apps.iter_mut().find(|(o, _)| *o == owner) {
            Some(existing) => existing.1 = app,
            None => {
                apps.push((owner.clone(), app));
                table.order.push_back((app_id, owner));
            }
        }
        while table.order.len() > MAX_APPS {
            let Some((id, owner)) = table.order.pop_front() else {
                break;
            };
            if let Some(apps) = table.apps.get_mut(&id) {
                apps.retain(|(o, _)| *o != owner);
                if apps.is_empty() {
                    table.apps.remove(&id);
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AppTable> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether `body` is a planner message (it names an `http_type`) rather than Faasm's classic
/// JSON call message.
pub(crate) fn is_planner_message(body: &[u8]) -> bool {
    // Most messages are classic ones: those are not parsed twice.
    const KEY: &[u8] = b"\"http_type\"";
    if !body.windows(KEY.len()).any(|window| window == KEY) {
        return false;
    }
    #[derive(Deserialize)]
    struct Probe {
        http_type: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Probe>(body).is_ok_and(|probe| probe.http_type.is_some())
}

/// Answers one planner message.
pub(crate) async fn handle(gateway: &Gateway, body: &[u8]) -> Response {
    let result = match parse(body) {
        Ok(PlannerRequest::ExecuteBatch(batch)) => execute_batch(gateway, batch).await,
        Ok(PlannerRequest::Status(request)) => batch_status(gateway, request).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(status) => {
            let json = serde_json::to_string(&status).expect("a batch status serialises");
            reply(StatusCode::OK, json)
        }
        Err(PlannerError::Reply(status, text)) => reply(status, text),
        Err(PlannerError::Api(err)) => error_response(err),
    }
}

/// A planner request fwasm serves, read in full (the calls a batch asks for included).
#[derive(Debug)]
enum PlannerRequest {
    /// The calls, each with its message id, and the batch's app id (0: none given).
    ExecuteBatch((Vec<(i32, Invocation)>, i32)),
    Status(StatusRequest),
}

/// Reads a planner message; Faasm's replies for what cannot be read or is not served.
fn parse(body: &[u8]) -> Result<PlannerRequest, PlannerError> {
    let message: HttpMessage = serde_json::from_slice(body).map_err(|e| {
        PlannerError::new(
            StatusCode::BAD_REQUEST,
            format!("Bad JSON in request body: {e}"),
        )
    })?;
    let bad_payload = |e: serde_json::Error| {
        PlannerError::new(
            StatusCode::BAD_REQUEST,
            format!("Bad JSON in body's payload: {e}"),
        )
    };
    match message.kind {
        RequestKind::ExecuteBatch => {
            let batch: BatchRequest =
                serde_json::from_str(&message.payload).map_err(bad_payload)?;
            Ok(PlannerRequest::ExecuteBatch((
                invocations_of(&batch)?,
                batch.app_id,
            )))
        }
        RequestKind::ExecuteBatchStatus => {
            let request = serde_json::from_str(&message.payload).map_err(bad_payload)?;
            Ok(PlannerRequest::Status(request))
        }
        RequestKind::Other(name) => Err(PlannerError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!(
                "fwasm does not serve the planner's {name} request: it serves EXECUTE_BATCH and \
                 EXECUTE_BATCH_STATUS (fwasm places calls itself)"
            ),
        )),
        RequestKind::Unknown => Err(PlannerError::new(
            StatusCode::BAD_REQUEST,
            "Unrecognised message type",
        )),
    }
}

/// Parses a planner message as `POST /` does, for the fuzz targets.
pub(crate) fn parse_for_fuzzing(body: &[u8]) {
    if is_planner_message(body) {
        let _ = parse(body);
    }
}

/// A text reply without a trailing newline: faasmctl compares some of them exactly.
fn reply(status: StatusCode, text: impl Into<String>) -> Response {
    let mut response = Response::new(text.into().into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[derive(Debug)]
enum PlannerError {
    Reply(StatusCode, String),
    Api(ApiError),
}

impl PlannerError {
    fn new(status: StatusCode, text: impl Into<String>) -> Self {
        Self::Reply(status, text.into())
    }

    fn bad_batch(why: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("Bad BatchExecRequest: {why}"),
        )
    }
}

impl From<ApiError> for PlannerError {
    fn from(err: ApiError) -> Self {
        Self::Api(err)
    }
}

/// Starts each message of the batch as a background call; replies with the app id.
async fn execute_batch(
    gateway: &Gateway,
    (invocations, app_id): (Vec<(i32, Invocation)>, i32),
) -> Result<BatchStatus, PlannerError> {
    let owner = acting_user()?;
    if app_id != 0 {
        let earlier = gateway.planner_apps().get(&owner, app_id);
        if let Some(app) = earlier
            && still_running(gateway, &app).await?
        {
            return Err(PlannerError::bad_batch(format!(
                "app {app_id} is still running; send the batch under another app id"
            )));
        }
    }
    let mut started = Vec::with_capacity(invocations.len());
    for (id, invocation) in invocations {
        let (user, function) = (invocation.user.clone(), invocation.function.clone());
        let results = invocation.mpi_world_size.max(1);
        let call_id = gateway.invoke_async(invocation).await?;
        started.push(StartedMessage {
            // faasmctl always names its messages; one that came without an id gets its call's.
            id: if id != 0 { id } else { short_id(call_id) },
            call_id,
            user,
            function,
            results,
        });
    }
    let app_id = match app_id {
        0 => short_id(started[0].call_id),
        id => id,
    };
    let expected = expected_results(&started);
    let app = App { messages: started };
    gateway.planner_apps().insert(owner, app_id, app);
    Ok(BatchStatus {
        app_id,
        expected_num_messages: expected,
        ..BatchStatus::default()
    })
}

/// A positive 32-bit id made from a call id, for a batch or message that came without one.
fn short_id(call_id: u64) -> i32 {
    ((call_id & 0x7fff_ffff) as i32).max(1)
}

/// The call each message asks for, with its id; or why the batch cannot run on fwasm.
fn invocations_of(batch: &BatchRequest) -> Result<Vec<(i32, Invocation)>, PlannerError> {
    if batch.batch_type != 0 {
        return Err(PlannerError::new(
            StatusCode::NOT_IMPLEMENTED,
            "only batches of type FUNCTIONS run on fwasm (threads, processes and migrations \
             do not)",
        ));
    }
    if batch.messages.is_empty() {
        return Err(PlannerError::bad_batch("it has no messages"));
    }
    let mut invocations = Vec::with_capacity(batch.messages.len());
    for message in &batch.messages {
        let pick = |own: &str, batch: &str| match own {
            "" => batch.to_string(),
            own => own.to_string(),
        };
        let user = pick(&message.user, &batch.user);
        let function = pick(&message.function, &batch.function);
        let input = base64::engine::general_purpose::STANDARD
            .decode(message.input_data.trim())
            .map_err(|e| PlannerError::bad_batch(format!("input_data is not base64: {e}")))?;
        let python = (
            message.py_user.as_str(),
            message.py_func.as_str(),
            message.python_entry.as_str(),
        );
        let (user, function, input) =
            crate::faasm_json::target((&user, &function), message.python, python, input)
                .map_err(PlannerError::bad_batch)?;
        if user.is_empty() || function.is_empty() {
            return Err(PlannerError::bad_batch(
                "a message names no user or function",
            ));
        }
        let invocation = Invocation {
            cmdline: message.cmdline.clone(),
            mpi_world_size: crate::faasm_json::mpi_world_size(message.mpi, message.mpi_world_size),
            ..Invocation::post(user, function, Bytes::from(input))
        };
        invocations.push((message.id, invocation));
    }
    Ok(invocations)
}

/// The app's status: the results of its ended calls by message id, `finished` once all have.
async fn batch_status(
    gateway: &Gateway,
    request: StatusRequest,
) -> Result<BatchStatus, PlannerError> {
    // Known apps answer at once (not yet finished while no call has ended), so an unknown
    // one never will: a 404, not Faasm's "no results yet", on which faasmctl polls forever.
    let Some(app) = gateway.planner_apps().get(&acting_user()?, request.app_id) else {
        return Err(PlannerError::new(
            StatusCode::NOT_FOUND,
            format!(
                "App {} is not known here: it was not started through this gateway, or is \
                 too old ({MAX_APPS} apps are kept)",
                request.app_id
            ),
        ));
    };
    let (mut message_results, ended) = results(gateway, request.app_id, &app).await?;
    message_results.sort_by_key(|result| result.id);
    let finished = ended == app.messages.len();
    Ok(BatchStatus {
        app_id: request.app_id,
        finished,
        // Once finished, what there is: a world that never started its ranks has one.
        expected_num_messages: match finished {
            true => message_results.len() as i32,
            false => expected_results(&app.messages),
        },
        message_results,
    })
}

/// Whether any of the app's calls has yet to end (one the call table no longer knows ended
/// long ago).
async fn still_running(gateway: &Gateway, app: &App) -> Result<bool, ApiError> {
    for message in &app.messages {
        match gateway.get_call(message.call_id).await {
            Ok(record) if !matches!(record.status(), CallStatus::Success | CallStatus::Failed) => {
                return Ok(true);
            }
            Ok(_) => {}
            Err(err) if err.code == ErrorCode::NotFound => {}
            Err(err) => return Err(err),
        }
    }
    Ok(false)
}

/// How many results the messages end with, together (before they have: one per rank they
/// asked for).
fn expected_results(messages: &[StartedMessage]) -> i32 {
    let results: u64 = messages.iter().map(|m| u64::from(m.results)).sum();
    results.min(i32::MAX as u64) as i32
}

/// The results of the app's calls that have ended (each rank's, for an MPI world), and how
/// many of its calls have.
async fn results(
    gateway: &Gateway,
    app_id: i32,
    app: &App,
) -> Result<(Vec<MessageResult>, usize), PlannerError> {
    let (mut ended, mut calls_ended) = (Vec::new(), 0);
    for message in &app.messages {
        let record = gateway.get_call(message.call_id).await.map_err(|err| {
            if err.code == ErrorCode::NotFound {
                let text = format!(
                    "message {} of app {app_id} (fwasm call {}) is no longer in the call table",
                    message.id, message.call_id
                );
                return PlannerError::new(StatusCode::NOT_FOUND, text);
            }
            err.into()
        })?;
        if matches!(record.status(), CallStatus::Success | CallStatus::Failed) {
            calls_ended += 1;
            let result = message_result(app_id, message, &record);
            ended.extend(rank_results(&result, message, &record));
            ended.push(result);
        }
    }
    Ok((ended, calls_ended))
}

/// For an MPI world's call (rank 0's, whose result is `world`), the results of ranks 1..n, as
/// Faasm's planner lists a result per rank. Message ids follow rank 0's, so rank 0's result
/// comes first (faasmctl prints the first). Each carries the world's return value: a world
/// succeeds or fails as a whole (faasmctl asserts the ranks agree), and a rank's own account
/// of a failure is its output.
fn rank_results(
    world: &MessageResult,
    message: &StartedMessage,
    record: &CallRecord,
) -> Vec<MessageResult> {
    let size = record.mpi_ranks.len() as i32;
    record
        .mpi_ranks
        .iter()
        .filter(|rank| rank.rank != 0)
        .map(|rank| MessageResult {
            id: message.id.wrapping_add(rank.rank as i32),
            output_data: rank.error.clone(),
            executed_host: rank.executor_id.clone(),
            mpi_rank: rank.rank as i32,
            mpi_world_size: size,
            ..world.clone()
        })
        .collect()
}

fn message_result(app_id: i32, message: &StartedMessage, record: &CallRecord) -> MessageResult {
    let ended = Ended::of_record(record);
    let world_size = record.mpi_ranks.len() as i32;
    MessageResult {
        id: message.id,
        app_id,
        user: message.user.clone(),
        function: message.function.clone(),
        output_data: String::from_utf8_lossy(&ended.text()).into_owned(),
        return_value: ended.return_value(),
        start_ts: (record.submitted_unix_micros / 1000).to_string(),
        finish_ts: (record.finished_unix_micros / 1000).to_string(),
        executed_host: record.executor_id.clone(),
        mpi: world_size > 0,
        mpi_world_id: match world_size {
            0 => 0,
            _ => short_id(record.id),
        },
        mpi_rank: 0,
        mpi_world_size: world_size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faasmctls_batch_parses() {
        // As faasmctl 0.51 sends it (protobuf's json_format, enum by name).
        let body = br#"{"http_type": "EXECUTE_BATCH", "payload": "{\"appId\": 342351, \"user\": \"u\", \"function\": \"f\", \"messages\": [{\"id\": 541386, \"appId\": 342351, \"user\": \"u\", \"function\": \"f\", \"input_data\": \"aGk=\", \"cmdline\": \"a b\"}]}"}"#;
        assert!(is_planner_message(body));
        let message: HttpMessage = serde_json::from_slice(body).unwrap();
        assert_eq!(message.kind, RequestKind::ExecuteBatch);
        let batch: BatchRequest = serde_json::from_str(&message.payload).unwrap();
        let invocations = invocations_of(&batch).unwrap();
        let (id, invocation) = &invocations[0];
        assert_eq!(*id, 541386);
        assert_eq!(
            (invocation.user.as_str(), invocation.function.as_str()),
            ("u", "f")
        );
        assert_eq!(
            (&invocation.input[..], invocation.cmdline.as_str()),
            (&b"hi"[..], "a b")
        );
        assert_eq!(batch.app_id, 342351);
    }

    #[test]
    fn kinds_parse_by_name_or_number_and_field_names_either_way() {
        let message: HttpMessage =
            serde_json::from_str(r#"{"type": 11, "payloadJson": "{\"app_id\": \"7\"}"}"#).unwrap();
        assert_eq!(message.kind, RequestKind::ExecuteBatchStatus);
        let status: StatusRequest = serde_json::from_str(&message.payload).unwrap();
        assert_eq!(status.app_id, 7);
        let kind = |json: &str| serde_json::from_str::<HttpMessage>(json).unwrap().kind;
        assert_eq!(
            kind(r#"{"http_type": "RESET"}"#),
            RequestKind::Other("RESET")
        );
        assert_eq!(kind(r#"{"http_type": 99}"#), RequestKind::Unknown);
        assert!(!is_planner_message(br#"{"user": "u", "function": "f"}"#));
    }

    #[test]
    fn batches_fwasm_cannot_run_are_refused_with_the_reason() {
        let refusal = |json: &str| {
            let batch: BatchRequest = serde_json::from_str(json).unwrap();
            match invocations_of(&batch) {
                Err(PlannerError::Reply(status, text)) => (status.as_u16(), text),
                other => panic!("accepted: {other:?}"),
            }
        };
        assert_eq!(
            refusal(r#"{"user": "u", "function": "f"}"#),
            (400, "Bad BatchExecRequest: it has no messages".into())
        );
        assert_eq!(refusal(r#"{"type": "THREADS", "messages": [{}]}"#).0, 501);
        assert_eq!(
            refusal(r#"{"messages": [{"function": "f"}]}"#),
            (
                400,
                "Bad BatchExecRequest: a message names no user or function".into()
            )
        );
        let (status, text) =
            refusal(r#"{"messages": [{"user": "u", "function": "f", "input_data": "!!"}]}"#);
        assert_eq!(status, 400);
        assert!(
            text.starts_with("Bad BatchExecRequest: input_data is not base64"),
            "{text}"
        );
    }

    #[test]
    fn a_status_leaves_out_defaults_and_writes_int64_as_text() {
        let status = BatchStatus {
            app_id: 5,
            finished: true,
            message_results: vec![MessageResult {
                id: 9,
                app_id: 5,
                user: "u".into(),
                function: "f".into(),
                output_data: "out".into(),
                return_value: 0,
                start_ts: "17".into(),
                finish_ts: "20".into(),
                ..MessageResult::default()
            }],
            expected_num_messages: 1,
        };
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            r#"{"appId":5,"finished":true,"messageResults":[{"id":9,"appId":5,"user":"u","function":"f","output_data":"out","start_ts":"17","finish_ts":"20"}],"expectedNumMessages":1}"#
        );
        assert_eq!(
            serde_json::to_string(&BatchStatus {
                app_id: 5,
                ..BatchStatus::default()
            })
            .unwrap(),
            r#"{"appId":5}"#
        );
    }

    #[test]
    fn ids_made_from_call_ids_are_positive_32_bit() {
        assert_eq!(short_id(0x1_0000_0005), 5);
        assert_eq!(short_id(0x8000_0000), 1);
        assert_eq!(short_id(u64::MAX), i32::MAX);
    }
}
