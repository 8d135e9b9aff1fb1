//! What Layotto's and Dapr's runtime APIs mean on fwasm, once for both (the two gRPC services
//! in `layotto.rs` and `dapr.rs` only translate their messages).
//!
//! The mapping: a caller from outside names the user it acts on, as `store_name` (state and
//! the sequencer) or as the `id` of an invoked app; an invoked `method` is a function of that
//! user, optionally followed by `/path`. Etags are the decimal versions of fwasm's state keys;
//! an empty etag, or `"0"` (what the Layotto SDKs send when their caller gave none), means
//! "write whatever the version".

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use fwasm_proto::pb::{CallResult, CallStatus, FailureKind, Header, StateWrite};
use fwasm_proto::pubsub::Event;
use fwasm_proto::{ApiError, ErrorCode, names};

use crate::gateway::{Gateway, Invocation};

/// A state item as both APIs carry it.
pub(crate) struct Item {
    pub key: String,
    pub value: Bytes,
    pub etag: String,
}

/// A key as read: its value and etag (empty when it has no value).
pub(crate) struct Read {
    pub data: Bytes,
    pub etag: String,
    pub exists: bool,
}

/// One read of a bulk get: the value and its etag, or why it could not be read.
pub(crate) struct BulkItem {
    pub key: String,
    pub data: Bytes,
    pub etag: String,
    pub error: String,
}

/// A call of a function as an invoked app method.
pub(crate) struct MethodCall {
    pub app: String,
    pub method: String,
    pub data: Bytes,
    pub content_type: String,
    /// The HTTP verb's name, `POST` when none is given.
    pub verb: String,
    pub querystring: String,
}

/// How an unlock ended, in the runtime APIs' terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnlockStatus {
    Success,
    /// No one holds the lock.
    NotLocked,
    /// Another owner holds it.
    OthersHold,
}

/// A page of a file listing.
pub(crate) struct FilePage {
    pub files: Vec<(String, u64)>,
    /// Where the next page starts (the last name of this one); empty at the end.
    pub marker: String,
    pub truncated: bool,
}

/// The longest lock owner (the state service allows 256 bytes of holder, `app:` included).
const MAX_OWNER_BYTES: usize = 200;

/// The most keys one bulk read may name.
const MAX_BULK_KEYS: usize = 1000;

/// The runtime APIs' operations over one gateway.
#[derive(Clone)]
pub(crate) struct Sidecar(pub Arc<Gateway>);

/// The user a `store_name` (or `pubsub_name`, or app id) names.
pub(crate) fn user_of(store: &str) -> Result<&str, ApiError> {
    names::check_name("store (fwasm user)", store)?;
    Ok(store)
}

/// The version an etag asks a write to expect; `None` for none.
pub(crate) fn expected_version(etag: &str) -> Result<Option<u64>, ApiError> {
    match etag {
        "" | "0" => Ok(None),
        etag => etag.parse().map(Some).map_err(|_| {
            ApiError::invalid_argument(format!(
                "etag {etag:?} is not one fwasm gave: etags are the numbers state reads return"
            ))
        }),
    }
}

fn etag_of(version: u64) -> String {
    match version {
        0 => String::new(),
        version => version.to_string(),
    }
}

fn checked_key(key: &str) -> Result<(), ApiError> {
    names::check_state_key(key)
}

impl Sidecar {
    /// A key's value and etag; a missing key is empty data and no etag.
    pub async fn get(&self, store: &str, key: &str) -> Result<Read, ApiError> {
        let user = user_of(store)?;
        checked_key(key)?;
        let found = self.0.get_versioned(user, key).await?;
        Ok(Read {
            data: found.value,
            etag: etag_of(found.version),
            exists: found.exists,
        })
    }

    /// Each key's value and etag; a key that cannot be read says why in its item.
    pub async fn get_bulk(
        &self,
        store: &str,
        keys: Vec<String>,
    ) -> Result<Vec<BulkItem>, ApiError> {
        // Checked for the whole request: each item's own error is for that key alone.
        crate::auth::check_user(user_of(store)?, "state")?;
        if keys.len() > MAX_BULK_KEYS {
            return Err(ApiError::invalid_argument(format!(
                "a bulk read of {} keys is over the limit of {MAX_BULK_KEYS}",
                keys.len()
            )));
        }
        let mut items = Vec::with_capacity(keys.len());
        for key in keys {
            let item = match self.get(store, &key).await {
                Ok(read) => BulkItem {
                    key,
                    data: read.data,
                    etag: read.etag,
                    error: String::new(),
                },
                Err(err) => BulkItem {
                    key,
                    data: Bytes::new(),
                    etag: String::new(),
                    error: err.message,
                },
            };
            items.push(item);
        }
        Ok(items)
    }

    /// Sets every item (or with `delete`, deletes its key), each checked against its etag,
    /// all or none.
    pub async fn write_items(
        &self,
        store: &str,
        items: Vec<Item>,
        delete: bool,
    ) -> Result<(), ApiError> {
        let ops = items
            .into_iter()
            .map(|item| write(item, delete))
            .collect::<Result<_, _>>()?;
        self.write(store, ops).await
    }

    /// A transaction of `upsert` and `delete` operations, all or none.
    pub async fn transact(&self, store: &str, ops: Vec<(String, Item)>) -> Result<(), ApiError> {
        let ops = ops
            .into_iter()
            .map(|(operation, item)| match operation.as_str() {
                "upsert" => write(item, false),
                "delete" => write(item, true),
                other => Err(ApiError::invalid_argument(format!(
                    "unknown operationType {other:?}: use \"upsert\" or \"delete\""
                ))),
            })
            .collect::<Result<_, _>>()?;
        self.write(store, ops).await
    }

    async fn write(&self, store: &str, ops: Vec<StateWrite>) -> Result<(), ApiError> {
        let user = user_of(store)?;
        if ops.is_empty() {
            return Ok(());
        }
        self.0.write_state(user, ops).await.map(drop)
    }

    /// The next id of the sequence `key` of the user `store` names.
    pub async fn next_id(&self, store: &str, key: &str) -> Result<i64, ApiError> {
        let user = user_of(store)?;
        checked_key(key)?;
        let id = self.0.next_id(user, key).await?;
        i64::try_from(id).map_err(|_| ApiError::internal("the sequence ran past i64"))
    }

    /// Takes the lock `resource` of the user `store` for `owner` for `expire_seconds`: the
    /// user's global write lock on the state key `resource`, so functions holding it exclude
    /// the app and the other way round. Not reentrant: an owner asking again is refused.
    pub async fn try_lock(
        &self,
        store: &str,
        resource: &str,
        owner: &str,
        expire_seconds: i32,
    ) -> Result<bool, ApiError> {
        if expire_seconds <= 0 {
            return Err(ApiError::invalid_argument(format!(
                "a lock's expiry must be a positive number of seconds, not {expire_seconds}"
            )));
        }
        let user = lock_target(store, resource, owner)?;
        let lease = std::time::Duration::from_secs(expire_seconds as u64);
        self.0
            .try_lock(user, resource, &app_holder(owner), lease)
            .await
    }

    /// Releases `owner`'s lock `resource` of the user `store`.
    pub async fn unlock(
        &self,
        store: &str,
        resource: &str,
        owner: &str,
    ) -> Result<UnlockStatus, ApiError> {
        let user = lock_target(store, resource, owner)?;
        match self.0.unlock(user, resource, &app_holder(owner)).await {
            Ok(()) => Ok(UnlockStatus::Success),
            Err(err) if err.code == ErrorCode::NotFound => Ok(UnlockStatus::NotLocked),
            Err(err) if err.code == ErrorCode::FailedPrecondition => Ok(UnlockStatus::OthersHold),
            Err(err) => Err(err),
        }
    }

    /// The shared file `name` of the user the store names.
    pub async fn get_file(&self, store: &str, name: &str) -> Result<Bytes, ApiError> {
        let user = user_of(store)?;
        let path = names::normalize_file_path(name)?;
        self.0
            .get_file(user, &path)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no shared file {path:?}")))
    }

    pub async fn put_file(&self, store: &str, name: &str, data: Bytes) -> Result<(), ApiError> {
        let user = user_of(store)?;
        self.0
            .put_file(user, &names::normalize_file_path(name)?, data)
            .await
    }

    pub async fn delete_file(&self, store: &str, name: &str) -> Result<(), ApiError> {
        let user = user_of(store)?;
        self.0
            .delete_file(user, &names::normalize_file_path(name)?)
            .await
    }

    /// The shared files whose paths start with `prefix`, a page of up to `page_size` (0: the
    /// state service's page) after `marker`.
    pub async fn list_files(
        &self,
        store: &str,
        prefix: &str,
        page_size: i32,
        marker: &str,
    ) -> Result<FilePage, ApiError> {
        let user = user_of(store)?;
        let limit = u32::try_from(page_size).map_err(|_| {
            ApiError::invalid_argument(format!("page_size {page_size} is negative"))
        })?;
        let prefix = path_prefix(prefix)?;
        let list = self.0.list_files(user, &prefix, marker, limit).await?;
        let files: Vec<(String, u64)> = list.files.into_iter().map(|f| (f.path, f.size)).collect();
        let marker = match list.truncated {
            true => files
                .last()
                .map(|(path, _)| path.clone())
                .unwrap_or_default(),
            false => String::new(),
        };
        Ok(FilePage {
            files,
            marker,
            truncated: list.truncated,
        })
    }

    /// Publishes `data` on the topic of the user `pubsub`: every function subscribed to it
    /// is called in the background with the event. Returns once those calls are recorded.
    /// With the metadata `rawPayload` = `true` the functions get the data as published,
    /// without an envelope.
    pub async fn publish(
        &self,
        pubsub: &str,
        topic: &str,
        data: Bytes,
        content_type: &str,
        metadata: &HashMap<String, String>,
    ) -> Result<(), ApiError> {
        let event = Event {
            user: user_of(pubsub)?.to_string(),
            topic: topic.to_string(),
            data,
            content_type: content_type.to_string(),
            source: "fwasm".into(),
            raw: metadata.get("rawPayload").is_some_and(|raw| raw == "true"),
        };
        self.0.publish(&event).await.map(drop)
    }

    /// Runs the function `method` (optionally `function/path`) of the user `app` and returns
    /// its output and content type. A call that ran and failed is an error with its reason.
    pub async fn invoke(&self, call: MethodCall) -> Result<(Bytes, String), ApiError> {
        let user = user_of(&call.app)?.to_string();
        let (function, path) = match call.method.split_once('/') {
            Some((function, path)) => (function.to_string(), format!("/{path}")),
            None => (call.method.clone(), String::new()),
        };
        names::check_name("function", &function)?;
        let mut headers = Vec::new();
        if !call.content_type.is_empty() {
            headers.push(Header {
                name: "content-type".into(),
                value: call.content_type,
            });
        }
        let invocation = Invocation {
            path: format!("/f/{user}/{function}{path}"),
            method: call.verb,
            query: call.querystring,
            headers,
            ..Invocation::post(user, function, call.data)
        };
        let result = self.0.invoke(invocation).await?;
        if result.status() != CallStatus::Success {
            return Err(failure(&result));
        }
        let content_type = result
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-type"))
            .map_or_else(|| "text/plain".to_string(), |h| h.value.clone());
        Ok((result.output, content_type))
    }
}

/// A call that ran and failed, as the error of the method call: its reason, with the code
/// that fits how it failed.
fn failure(result: &CallResult) -> ApiError {
    let code = match result.failure() {
        FailureKind::Timeout => ErrorCode::DeadlineExceeded,
        FailureKind::CpuLimit | FailureKind::MemoryLimit | FailureKind::OutputLimit => {
            ErrorCode::ResourceExhausted
        }
        FailureKind::Lost | FailureKind::NotRun => ErrorCode::Unavailable,
        FailureKind::Cancelled => ErrorCode::Aborted,
        _ => ErrorCode::Internal,
    };
    ApiError::new(code, result.error.clone())
}

/// A listing's prefix in the form paths are kept in (`/docs/` and `./docs/` are `docs/`; the
/// root is ``), keeping a trailing `/`.
fn path_prefix(prefix: &str) -> Result<String, ApiError> {
    match names::file_path(prefix) {
        Ok(mut path) => {
            if prefix.ends_with('/') {
                path.push('/');
            }
            Ok(path)
        }
        Err(names::PathProblem::NamesNoFile) => Ok(String::new()),
        Err(problem) => Err(ApiError::invalid_argument(format!(
            "invalid file path prefix {prefix:?}: {problem}"
        ))),
    }
}

/// Checks a lock request's names; the user whose lock it is.
fn lock_target<'a>(store: &'a str, resource: &str, owner: &str) -> Result<&'a str, ApiError> {
    if resource.is_empty() {
        return Err(ApiError::invalid_argument("the lock names no resource_id"));
    }
    if owner.is_empty() {
        return Err(ApiError::invalid_argument("the lock names no lock_owner"));
    }
    if owner.len() > MAX_OWNER_BYTES {
        return Err(ApiError::invalid_argument(format!(
            "a lock_owner of {} bytes is over the limit of {MAX_OWNER_BYTES} bytes",
            owner.len()
        )));
    }
    checked_key(resource)?;
    user_of(store)
}

/// The holder an app's lock owner is in the state service: apart from functions' calls.
fn app_holder(owner: &str) -> String {
    format!("app:{owner}")
}

/// An item as a write of fwasm's state.
fn write(item: Item, delete: bool) -> Result<StateWrite, ApiError> {
    checked_key(&item.key)?;
    Ok(StateWrite {
        expected_version: expected_version(&item.etag)?,
        key: item.key,
        value: if delete { Bytes::new() } else { item.value },
        delete,
    })
}
