//! The storage trait every state backend implements.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use fwasm_proto::pb::FunctionSettings;

/// What a `user/function` name points at.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionRecord {
    pub module_hash: String,
    pub size: u64,
    /// What the owner set at upload; `None` = the defaults.
    pub settings: Option<FunctionSettings>,
    /// The ABI its upload found ("" for records kept before it was).
    pub abi: String,
    /// When it was uploaded, in ms since the Unix epoch (0: not known).
    pub uploaded_at_ms: u64,
}

/// Settings as stored (a `FunctionSettings` message).
pub(crate) fn decode_settings(bytes: &[u8]) -> Result<FunctionSettings, BackendError> {
    prost::Message::decode(bytes).map_err(|e| {
        BackendError::Storage(format!("a function's stored settings do not decode: {e}"))
    })
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot open the store at {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("storage failure: {0}")]
    Storage(String),
    /// A write would give the user a key beyond its limit.
    #[error("the user already has its limit of {max} state keys; delete some first")]
    TooManyKeys { max: u64 },
    /// An append would take a list past its limit in bytes.
    #[error("the append list would grow past its limit of {max} bytes; read it and clear it first")]
    ListFull { max: u64 },
    /// A write would take the user's stored bytes past its quota.
    #[error(
        "(quota: stored bytes) this would take the user past its {max} bytes of functions, state \
         and files; delete state or files, or replace a function with a smaller one, or ask an \
         admin for more (fwasm quota set)"
    )]
    OverStoredBytes { max: u64 },
    /// An upload would give the user a function beyond its quota.
    #[error(
        "(quota: functions) the user already has its {max} functions; replace one, or ask an \
         admin for more (fwasm quota set)"
    )]
    TooManyFunctions { max: u64 },
    /// A write expected a version the key does not have (it was written since, or has no
    /// value): nothing was written.
    #[error("state key {key:?} is not at the version the write expected; read it again and retry")]
    VersionMismatch { key: String },
}

/// A state value and its version: a number that changes on every write of the key, by any
/// path, and never comes back, not even after the key is deleted and written again (every
/// write takes the next number of one counter per store). Values stored before versions were
/// kept get theirs when the store is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub value: Bytes,
    pub version: u64,
}

/// One write of a transaction ([`Backend::write_state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateOp {
    pub key: String,
    /// The new value; `None` deletes the key (its value and its append list).
    pub value: Option<Bytes>,
    /// Write only if the key is at this version; `None` writes whatever it is at.
    pub expected_version: Option<u64>,
}

impl StateOp {
    pub fn set(key: impl Into<String>, value: Bytes) -> Self {
        StateOp {
            key: key.into(),
            value: Some(value),
            expected_version: None,
        }
    }

    pub fn delete(key: impl Into<String>) -> Self {
        StateOp {
            key: key.into(),
            value: None,
            expected_version: None,
        }
    }

    /// This write, only if the key is at `version`.
    pub fn if_version(self, version: u64) -> Self {
        StateOp {
            expected_version: Some(version),
            ..self
        }
    }
}

/// What a user may store: bytes of functions' modules, state (values and append lists) and
/// files, and functions. `u64::MAX`: no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageQuota {
    pub max_bytes: u64,
    pub max_functions: u64,
}

impl StorageQuota {
    pub const NONE: StorageQuota = StorageQuota {
        max_bytes: u64::MAX,
        max_functions: u64::MAX,
    };
}

/// What a user stores, as its quota counts it. Backends keep it with every write, in the
/// same atomic step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub functions: u64,
}

impl Usage {
    /// The usage after `bytes` and `functions` more (or fewer, if negative), refused if it
    /// grows past `quota`; shrinking is never refused.
    pub(crate) fn grown(
        self,
        bytes: i64,
        functions: i64,
        quota: StorageQuota,
    ) -> Result<Usage, BackendError> {
        let after = Usage {
            bytes: self.bytes.saturating_add_signed(bytes),
            functions: self.functions.saturating_add_signed(functions),
        };
        if bytes > 0 && after.bytes > quota.max_bytes {
            return Err(BackendError::OverStoredBytes {
                max: quota.max_bytes,
            });
        }
        if functions > 0 && after.functions > quota.max_functions {
            return Err(BackendError::TooManyFunctions {
                max: quota.max_functions,
            });
        }
        Ok(after)
    }
}

/// Durable storage. An acknowledged write survives a restart.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Stores `wasm` under `record.module_hash` and points `user/function` at it, atomically;
    /// refused, with nothing written, if the user's usage would grow past `quota` (a function's
    /// bytes are its module's size, counted for every function that points at it).
    async fn put_function(
        &self,
        user: &str,
        function: &str,
        record: &FunctionRecord,
        wasm: Bytes,
        quota: StorageQuota,
    ) -> Result<(), BackendError>;

    /// What `user` stores.
    async fn usage(&self, user: &str) -> Result<Usage, BackendError>;

    async fn function(
        &self,
        user: &str,
        function: &str,
    ) -> Result<Option<FunctionRecord>, BackendError>;

    async fn module(&self, module_hash: &str) -> Result<Option<Bytes>, BackendError>;

    /// The users that have functions, in order.
    async fn function_users(&self) -> Result<Vec<String>, BackendError>;

    /// `user`'s functions, by name.
    async fn list_functions(
        &self,
        user: &str,
    ) -> Result<Vec<(String, FunctionRecord)>, BackendError>;

    /// Removes `user/function`, giving back what it stored to the user's usage: the record
    /// removed, `None` if there was none. The module stays (other functions may point at it).
    async fn delete_function(
        &self,
        user: &str,
        function: &str,
    ) -> Result<Option<FunctionRecord>, BackendError>;

    // The global state tier. A user's keys are its own: every method takes the user. A key
    // "exists" while it has a value or a non-empty append list; the user's count of existing
    // keys is what `max_keys` limits.

    /// The value of `key`, `None` if it has none.
    async fn get_state(&self, user: &str, key: &str) -> Result<Option<Bytes>, BackendError> {
        Ok(self.get_versioned(user, key).await?.map(|v| v.value))
    }

    /// The value of `key` and its version, `None` if it has no value.
    async fn get_versioned(&self, user: &str, key: &str)
    -> Result<Option<Versioned>, BackendError>;

    /// `user`'s keys (with a value or an append list) that start with `prefix` and sort
    /// after `after`, in order, at most `limit` of them.
    async fn list_keys(
        &self,
        user: &str,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, BackendError>;

    /// The size of the value of `key`, 0 if it has none.
    async fn state_size(&self, user: &str, key: &str) -> Result<u64, BackendError>;

    /// Applies `ops` in order, all or none: a transaction of the user's keys. Refused, with
    /// nothing written, with [`BackendError::VersionMismatch`] if an op expects a version its
    /// key is not at (after the ops before it), with [`BackendError::TooManyKeys`] if the
    /// user would end up with more keys than it has and more than `max_keys`, and with
    /// [`BackendError::OverStoredBytes`] if the user would store more than it does and more
    /// than `quota` allows. Returns the version each op left its key at (0 for a delete).
    async fn write_state(
        &self,
        user: &str,
        ops: Vec<StateOp>,
        max_keys: u64,
        quota: StorageQuota,
    ) -> Result<Vec<u64>, BackendError>;

    /// Sets the value of `key` whatever its version; returns the new version. Refused with
    /// [`BackendError::TooManyKeys`] if `key` does not exist yet and the user already has
    /// `max_keys` keys, or if it would take the user's bytes past `quota`.
    async fn set_state(
        &self,
        user: &str,
        key: &str,
        value: Bytes,
        max_keys: u64,
        quota: StorageQuota,
    ) -> Result<u64, BackendError> {
        let versions = self
            .write_state(user, vec![StateOp::set(key, value)], max_keys, quota)
            .await?;
        versions
            .first()
            .copied()
            .ok_or_else(|| BackendError::Storage("a write reported no version".into()))
    }

    /// Removes the value and the append list of `key`. Removing a missing key is not an error.
    async fn delete_state(&self, user: &str, key: &str) -> Result<(), BackendError> {
        let op = vec![StateOp::delete(key)];
        self.write_state(user, op, u64::MAX, StorageQuota::NONE)
            .await?;
        Ok(())
    }

    /// The next number of the sequence `key` of `user`: 1 first, then each one greater than
    /// the last, never repeated (durable before it is returned).
    async fn next_id(&self, user: &str, key: &str) -> Result<u64, BackendError>;

    /// Adds `element` at the end of the append list of `key`, with the same key limit as
    /// [`Backend::set_state`]. Refused with [`BackendError::ListFull`] if the list's elements
    /// would then add up to more than `max_list_bytes` (a reader gets the whole list at once),
    /// and with [`BackendError::OverStoredBytes`] past `quota`.
    async fn append_state(
        &self,
        user: &str,
        key: &str,
        element: Bytes,
        max_keys: u64,
        max_list_bytes: u64,
        quota: StorageQuota,
    ) -> Result<(), BackendError>;

    /// The append list of `key` in the order its elements were added; empty if it has none.
    async fn read_appended(&self, user: &str, key: &str) -> Result<Vec<Bytes>, BackendError>;

    /// Empties the append list of `key` (its value stays).
    async fn clear_appended(&self, user: &str, key: &str) -> Result<(), BackendError>;

    /// Takes the lock on `key` of `user` for `holder` in `mode` until `lease` from now, if it
    /// is free for it: for a write, no one else holds it; for a read, no one else holds it to
    /// write. A holder that holds it already renews its lease (keeping a write), or with
    /// `reentrant` false is refused. Locks are kept like state, so a restart neither frees
    /// nor loses them; a lease that has ended frees its hold.
    async fn try_lock(
        &self,
        user: &str,
        key: &str,
        holder: &str,
        mode: LockMode,
        lease: Duration,
        reentrant: bool,
    ) -> Result<LockTry, BackendError>;

    /// Gives up what `holder` holds of the lock on `key` of `user`.
    async fn unlock(&self, user: &str, key: &str, holder: &str) -> Result<Unlocked, BackendError>;

    // Shared files belong to a user; the user "" holds the common files.

    /// Stores `user`'s file at `path` (already in canonical form), replacing any there;
    /// refused with [`BackendError::OverStoredBytes`] past `quota`.
    async fn put_file(
        &self,
        user: &str,
        path: &str,
        data: Bytes,
        quota: StorageQuota,
    ) -> Result<(), BackendError>;

    /// `user`'s file at `path`, `None` if there is none.
    async fn file(&self, user: &str, path: &str) -> Result<Option<Bytes>, BackendError>;

    /// Removes `user`'s file at `path`; false if there was none.
    async fn delete_file(&self, user: &str, path: &str) -> Result<bool, BackendError>;

    /// The paths and sizes of `user`'s files whose paths start with `prefix` and sort after
    /// `after`, in order, at most `limit` of them.
    async fn list_files(
        &self,
        user: &str,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, BackendError>;

    /// Subscribes `user/function` to the user's `topic`, or with `subscribed` false
    /// unsubscribes it: whether that changed anything.
    async fn set_subscription(
        &self,
        user: &str,
        topic: &str,
        function: &str,
        subscribed: bool,
    ) -> Result<bool, BackendError>;

    /// The user's subscriptions as (topic, function), sorted; only `topic`'s if given.
    async fn subscriptions(
        &self,
        user: &str,
        topic: Option<&str>,
    ) -> Result<Vec<(String, String)>, BackendError>;

    /// Keeps an encoded call record under its id, replacing any there, for about `ttl`.
    async fn save_call(&self, id: u64, record: Bytes, ttl: Duration) -> Result<(), BackendError>;

    /// The encoded call record saved under `id`, `None` if there is none (or it expired).
    async fn call(&self, id: u64) -> Result<Option<Bytes>, BackendError>;

    /// Keeps an encoded token record under its id, replacing any there.
    async fn put_token(&self, id: &str, record: Bytes) -> Result<(), BackendError>;

    /// The encoded token record of `id`, `None` if there is none.
    async fn token(&self, id: &str) -> Result<Option<Bytes>, BackendError>;

    /// Removes the token `id`; whether there was one.
    async fn delete_token(&self, id: &str) -> Result<bool, BackendError>;

    /// Every encoded token record, in no particular order.
    async fn tokens(&self) -> Result<Vec<Bytes>, BackendError>;

    /// Keeps a user's encoded quota, replacing any; `None` removes it.
    async fn put_quota(&self, user: &str, quota: Option<Bytes>) -> Result<(), BackendError>;

    /// Every encoded quota, in no particular order.
    async fn quotas(&self) -> Result<Vec<Bytes>, BackendError>;

    /// Keeps a function's encoded snapshot, replacing any it had.
    async fn put_snapshot(
        &self,
        user: &str,
        function: &str,
        record: Bytes,
    ) -> Result<(), BackendError>;

    /// The function's encoded snapshot, `None` if it has none.
    async fn snapshot(&self, user: &str, function: &str) -> Result<Option<Bytes>, BackendError>;

    /// Removes the function's snapshot, if it has one.
    async fn delete_snapshot(&self, user: &str, function: &str) -> Result<(), BackendError>;
}

/// How a lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LockMode {
    Read,
    Write,
}

/// What a [`Backend::try_lock`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockTry {
    pub granted: bool,
    /// When refused: how long until the first of the other holders' leases ends.
    pub busy_for: Option<Duration>,
}

/// What a [`Backend::unlock`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlocked {
    Released,
    /// No one holds the lock.
    NotLocked,
    /// Others hold it, the one unlocking not.
    HeldByOthers,
}

/// One holder's hold on a lock, as the embedded backend keeps it (the Redis backend's script
/// decides the same way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hold {
    pub holder: String,
    pub mode: LockMode,
    /// When its lease ends, in milliseconds since the Unix epoch.
    pub until_ms: u64,
}

/// Decides a lock request against the live holds: the hold to record if it is granted.
pub(crate) fn grant(
    holds: &[Hold],
    holder: &str,
    mode: LockMode,
    until_ms: u64,
    reentrant: bool,
) -> Option<Hold> {
    let mine = holds.iter().find(|h| h.holder == holder);
    if mine.is_some() && !reentrant {
        return None;
    }
    let mut others = holds.iter().filter(|h| h.holder != holder);
    let free = match mode {
        LockMode::Write => others.next().is_none(),
        LockMode::Read => others.all(|h| h.mode == LockMode::Read),
    };
    free.then(|| Hold {
        holder: holder.to_string(),
        mode: mine.map_or(mode, |held| held.mode.max(mode)),
        until_ms,
    })
}

/// What unlocking finds among the live holds.
pub(crate) fn release(holds: &[Hold], holder: &str) -> Unlocked {
    if holds.iter().any(|h| h.holder == holder) {
        Unlocked::Released
    } else if holds.is_empty() {
        Unlocked::NotLocked
    } else {
        Unlocked::HeldByOthers
    }
}

/// Milliseconds since the Unix epoch: lock leases are kept as wall-clock times, so they keep
/// their meaning across restarts.
pub(crate) fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A key as a transaction finds it before its first op on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyBefore {
    /// It has a value or an append list (it counts against the user's key limit).
    pub exists: bool,
    /// Its version, if it has a value.
    pub version: Option<u64>,
}

/// Checks a transaction before anything is written: each op's expected version against the
/// key as the ops before it leave it (a key set in this transaction is at a version no op
/// can know yet), and the user's key count after all of them (`count` now) against
/// `max_keys`, refusing only growth.
pub(crate) fn check_transaction(
    ops: &[StateOp],
    mut before: impl FnMut(&str) -> Result<KeyBefore, BackendError>,
    count: u64,
    max_keys: u64,
) -> Result<(), BackendError> {
    use std::collections::HashMap;
    // key -> (existed before, exists now, version now: None = no value, Some(None) = fresh)
    let mut keys: HashMap<&str, (bool, bool, Option<Option<u64>>)> = HashMap::new();
    for op in ops {
        let key = op.key.as_str();
        let entry = match keys.get_mut(key) {
            Some(entry) => entry,
            None => {
                let found = before(key)?;
                let version = found.version.map(Some);
                keys.entry(key)
                    .or_insert((found.exists, found.exists, version))
            }
        };
        if let Some(expected) = op.expected_version
            && entry.2 != Some(Some(expected))
        {
            return Err(BackendError::VersionMismatch {
                key: op.key.clone(),
            });
        }
        let set = op.value.is_some();
        entry.1 = set;
        entry.2 = set.then_some(None);
    }
    let gained = keys.values().filter(|(was, is, _)| !was && *is).count() as u64;
    let lost = keys.values().filter(|(was, is, _)| *was && !is).count() as u64;
    let after = (count + gained).saturating_sub(lost);
    if after > count && after > max_keys {
        return Err(BackendError::TooManyKeys { max: max_keys });
    }
    Ok(())
}
