//! The embedded backend: a redb file under the data directory. Writes go through
//! [`GroupCommit`], so concurrent writes share a transaction and its fsync, and each is
//! acknowledged once durable; reads run on tokio's blocking pool.
//!
//! State lives in seven tables: values by (user, key), their versions, append lists by
//! (user, key, sequence), each append list's size in bytes (for its limit), the keys each user
//! has, each user's key count (for the key limit), and the sequencer's last ids. One counter
//! numbers every value write, so a version is never given twice. Beside state: functions and
//! modules, shared files and their sizes, call records, the holds of global locks (with their
//! leases' ends as wall-clock times, so they keep their meaning across restarts),
//! subscriptions and API tokens (their hashes).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use prost::Message;
use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};

use crate::backend::{
    Backend, BackendError, FunctionRecord, Hold, KeyBefore, LockMode, LockTry, StateOp,
    StorageQuota, Unlocked, Usage, Versioned, check_transaction, decode_settings, grant, release,
    unix_millis,
};
use crate::group_commit::GroupCommit;

/// `user/function` -> (module hash, module size).
const FUNCTIONS: TableDefinition<&str, (&str, u64)> = TableDefinition::new("functions");
/// `user/function` -> its settings (a `FunctionSettings` message); none = the defaults.
const FUNCTION_SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("function_settings");
/// `user/function` -> (the ABI its upload found, when it was uploaded in Unix ms).
const FUNCTION_ABOUT: TableDefinition<&str, (&str, u64)> = TableDefinition::new("function_about");
/// module hash -> module bytes.
const MODULES: TableDefinition<&str, &[u8]> = TableDefinition::new("modules");
/// (user, key) -> value.
const VALUES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("state_values");
/// (user, key, sequence) -> element of the key's append list.
const APPENDED: TableDefinition<(&str, &str, u64), &[u8]> = TableDefinition::new("state_appended");
/// (user, key) -> total bytes of the key's append list, while it has one.
const APPENDED_BYTES: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("state_appended_bytes");
/// (user, key) for every key that has a value or an append list.
const KEYS: TableDefinition<(&str, &str), ()> = TableDefinition::new("state_keys");
/// call id -> (expiry in Unix seconds, encoded call record).
const CALLS: TableDefinition<u64, (u64, &[u8])> = TableDefinition::new("calls");
/// One save in this many (by call id) also removes expired call records.
const EXPIRY_SCAN_EVERY: u64 = 256;
/// (user, path) -> shared file; user "" for the common files.
const FILES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("user_files");
/// (user, path) -> the shared file's size, for listings that read no file.
const FILE_SIZES: TableDefinition<(&str, &str), u64> = TableDefinition::new("user_file_sizes");
/// What older fwasm kept before files had owners: path -> file, path -> size. Their files
/// become the common files when the store is opened.
const UNOWNED_FILES: TableDefinition<&str, &[u8]> = TableDefinition::new("files");
const UNOWNED_FILE_SIZES: TableDefinition<&str, u64> = TableDefinition::new("file_sizes");
/// user -> how many keys it has.
const KEY_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("state_key_counts");
/// (user, key) -> the version of the key's value, while it has one.
const VERSIONS: TableDefinition<(&str, &str), u64> = TableDefinition::new("state_versions");
/// name -> a counter: `state_version`, the last version given; `state_versioned`, 1 once
/// every value has a version.
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
const VERSION_COUNTER: &str = "state_version";
const VERSIONED_MARK: &str = "state_versioned";
/// (user, sequence key) -> the last id the sequence gave.
const SEQUENCES: TableDefinition<(&str, &str), u64> = TableDefinition::new("sequences");
/// (user, topic, function) for every subscription.
const SUBSCRIPTIONS: TableDefinition<(&str, &str, &str), ()> =
    TableDefinition::new("subscriptions");
/// (user, key, holder) -> (1 for a write hold, 0 for a read, when its lease ends in Unix ms).
const LOCKS: TableDefinition<(&str, &str, &str), (u8, u64)> = TableDefinition::new("locks");
/// token id -> its record (a `TokenRecord` message, which holds a hash, never the secret).
const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
/// user -> its own quotas (a `UserQuota` message).
const QUOTAS: TableDefinition<&str, &[u8]> = TableDefinition::new("quotas");
/// Functions' snapshots by "user/function" (`function_key`).
const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");
/// user -> (bytes it stores, functions it has): what its storage quota counts.
const USAGE: TableDefinition<&str, (u64, u64)> = TableDefinition::new("usage");
/// In COUNTERS: 1 once every user's usage is in USAGE.
const USAGE_COUNTED_MARK: &str = "usage_counted";

pub const FILE_NAME: &str = "fwasm.redb";

pub struct EmbeddedBackend {
    db: Arc<Database>,
    writes: GroupCommit,
    /// Lock grants so far, to sweep ended holds every [`SWEEP_LOCKS_EVERY`].
    lock_writes: AtomicU64,
}

/// One lock write in this many also removes every ended hold.
const SWEEP_LOCKS_EVERY: u64 = 256;

impl EmbeddedBackend {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, BackendError> {
        let path = dir.join(FILE_NAME);
        let open_error = |reason: String| BackendError::Open {
            path: path.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_error(e.to_string()))?;
        let db = Database::create(&path).map_err(|e| open_error(e.to_string()))?;
        // Create the tables up front so readers never meet a missing table.
        let txn = db.begin_write().map_err(storage)?;
        txn.open_table(FUNCTIONS).map_err(storage)?;
        txn.open_table(MODULES).map_err(storage)?;
        txn.open_table(VALUES).map_err(storage)?;
        txn.open_table(APPENDED).map_err(storage)?;
        txn.open_table(APPENDED_BYTES).map_err(storage)?;
        txn.open_table(KEYS).map_err(storage)?;
        txn.open_table(KEY_COUNTS).map_err(storage)?;
        txn.open_table(FILES).map_err(storage)?;
        txn.open_table(CALLS).map_err(storage)?;
        txn.open_table(VERSIONS).map_err(storage)?;
        txn.open_table(COUNTERS).map_err(storage)?;
        txn.open_table(SEQUENCES).map_err(storage)?;
        txn.open_table(LOCKS).map_err(storage)?;
        txn.open_table(SUBSCRIPTIONS).map_err(storage)?;
        txn.open_table(TOKENS).map_err(storage)?;
        txn.open_table(QUOTAS).map_err(storage)?;
        txn.open_table(SNAPSHOTS).map_err(storage)?;
        txn.open_table(FILE_SIZES).map_err(storage)?;
        txn.open_table(FUNCTION_SETTINGS).map_err(storage)?;
        txn.open_table(FUNCTION_ABOUT).map_err(storage)?;
        txn.open_table(USAGE).map_err(storage)?;
        measure_lists(&txn)?;
        version_unversioned_values(&txn)?;
        own_unowned_files(&txn)?;
        count_usage(&txn)?;
        txn.commit().map_err(storage)?;
        let db = Arc::new(db);
        let writes = GroupCommit::start(db.clone()).map_err(|e| open_error(e.to_string()))?;
        Ok(Self {
            db,
            writes,
            lock_writes: AtomicU64::new(0),
        })
    }

    /// Every value of a table keyed by name, in key order.
    async fn values_of(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
    ) -> Result<Vec<Bytes>, BackendError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(table).map_err(storage)?;
            let mut found = Vec::new();
            for entry in table.iter().map_err(storage)? {
                let (_, value) = entry.map_err(storage)?;
                found.push(Bytes::copy_from_slice(value.value()));
            }
            Ok(found)
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, BackendError> + Send + 'static,
    ) -> Result<T, BackendError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|e| BackendError::Storage(format!("store task failed: {e}")))?
    }
}

impl EmbeddedBackend {
    /// The bytes stored under `key` in a table of byte values, `None` if there are none.
    async fn read_bytes(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        key: String,
    ) -> Result<Option<Bytes>, BackendError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(table).map_err(storage)?;
            Ok(table
                .get(key.as_str())
                .map_err(storage)?
                .map(|value| Bytes::copy_from_slice(value.value())))
        })
        .await
    }
}

fn storage(err: impl std::fmt::Display) -> BackendError {
    BackendError::Storage(err.to_string())
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn function_key(user: &str, function: &str) -> String {
    format!("{user}/{function}")
}

/// The record of function `key`, pointing at `module_hash` of `size` bytes, with its
/// settings and what its upload found.
fn function_record(
    txn: &redb::ReadTransaction,
    key: &str,
    module_hash: &str,
    size: u64,
) -> Result<FunctionRecord, BackendError> {
    let settings = txn.open_table(FUNCTION_SETTINGS).map_err(storage)?;
    let settings = match settings.get(key).map_err(storage)? {
        Some(bytes) => Some(decode_settings(bytes.value())?),
        None => None,
    };
    let about = txn.open_table(FUNCTION_ABOUT).map_err(storage)?;
    let (abi, uploaded_at_ms) = match about.get(key).map_err(storage)? {
        Some(entry) => {
            let (abi, at) = entry.value();
            (abi.to_string(), at)
        }
        None => (String::new(), 0),
    };
    Ok(FunctionRecord {
        module_hash: module_hash.to_string(),
        size,
        settings,
        abi,
        uploaded_at_ms,
    })
}

/// Records that `user` has `key`, refusing a new key beyond `max_keys` before writing.
fn admit_key(
    txn: &WriteTransaction,
    user: &str,
    key: &str,
    max_keys: u64,
) -> Result<(), BackendError> {
    let mut keys = txn.open_table(KEYS).map_err(storage)?;
    if keys.get((user, key)).map_err(storage)?.is_some() {
        return Ok(());
    }
    let mut counts = txn.open_table(KEY_COUNTS).map_err(storage)?;
    let count = counts
        .get(user)
        .map_err(storage)?
        .map_or(0, |count| count.value());
    if count >= max_keys {
        return Err(BackendError::TooManyKeys { max: max_keys });
    }
    keys.insert((user, key), ()).map_err(storage)?;
    counts.insert(user, count + 1).map_err(storage)?;
    Ok(())
}

/// Records that `user` no longer has `key`.
fn forget_key(txn: &WriteTransaction, user: &str, key: &str) -> Result<(), BackendError> {
    let mut keys = txn.open_table(KEYS).map_err(storage)?;
    if keys.remove((user, key)).map_err(storage)?.is_none() {
        return Ok(());
    }
    let mut counts = txn.open_table(KEY_COUNTS).map_err(storage)?;
    let count = counts
        .get(user)
        .map_err(storage)?
        .map_or(0, |count| count.value());
    if count <= 1 {
        counts.remove(user).map_err(storage)?;
    } else {
        counts.insert(user, count - 1).map_err(storage)?;
    }
    Ok(())
}

fn clear_list(txn: &WriteTransaction, user: &str, key: &str) -> Result<(), BackendError> {
    let mut list = txn.open_table(APPENDED).map_err(storage)?;
    list.retain_in((user, key, 0)..=(user, key, u64::MAX), |_, _| false)
        .map_err(storage)?;
    let mut sizes = txn.open_table(APPENDED_BYTES).map_err(storage)?;
    sizes.remove((user, key)).map_err(storage)?;
    Ok(())
}

/// The list's size in bytes with `element` more, refused past `max`. Writes nothing.
fn grown_list_size(
    txn: &WriteTransaction,
    user: &str,
    key: &str,
    element: usize,
    max: u64,
) -> Result<u64, BackendError> {
    let sizes = txn.open_table(APPENDED_BYTES).map_err(storage)?;
    let current = sizes
        .get((user, key))
        .map_err(storage)?
        .map_or(0, |size| size.value());
    let grown = current + element as u64;
    if grown > max {
        return Err(BackendError::ListFull { max });
    }
    Ok(grown)
}

/// Records the size of every append list, once, in a store made before sizes were kept.
fn measure_lists(txn: &WriteTransaction) -> Result<(), BackendError> {
    let mut sizes = txn.open_table(APPENDED_BYTES).map_err(storage)?;
    if !sizes.is_empty().map_err(storage)? {
        return Ok(());
    }
    let lists = txn.open_table(APPENDED).map_err(storage)?;
    let mut measured: BTreeMap<(String, String), u64> = BTreeMap::new();
    for entry in lists.iter().map_err(storage)? {
        let (position, element) = entry.map_err(storage)?;
        let (user, key, _) = position.value();
        *measured.entry((user.into(), key.into())).or_default() += element.value().len() as u64;
    }
    for ((user, key), size) in measured {
        sizes
            .insert((user.as_str(), key.as_str()), size)
            .map_err(storage)?;
    }
    Ok(())
}

/// The next version: one more than the last given.
fn next_version(txn: &WriteTransaction) -> Result<u64, BackendError> {
    let mut counters = txn.open_table(COUNTERS).map_err(storage)?;
    let last = counters
        .get(VERSION_COUNTER)
        .map_err(storage)?
        .map_or(0, |last| last.value());
    counters
        .insert(VERSION_COUNTER, last + 1)
        .map_err(storage)?;
    Ok(last + 1)
}

/// Gives a version to every value without one: values stored before versions were kept.
/// Done once per store.
fn version_unversioned_values(txn: &WriteTransaction) -> Result<(), BackendError> {
    {
        let mut counters = txn.open_table(COUNTERS).map_err(storage)?;
        if counters.get(VERSIONED_MARK).map_err(storage)?.is_some() {
            return Ok(());
        }
        counters.insert(VERSIONED_MARK, 1).map_err(storage)?;
    }
    let mut unversioned = Vec::new();
    {
        let values = txn.open_table(VALUES).map_err(storage)?;
        let versions = txn.open_table(VERSIONS).map_err(storage)?;
        for entry in values.iter().map_err(storage)? {
            let (at, _) = entry.map_err(storage)?;
            let (user, key) = at.value();
            if versions.get((user, key)).map_err(storage)?.is_none() {
                unversioned.push((user.to_string(), key.to_string()));
            }
        }
    }
    for (user, key) in unversioned {
        let version = next_version(txn)?;
        let mut versions = txn.open_table(VERSIONS).map_err(storage)?;
        versions
            .insert((user.as_str(), key.as_str()), version)
            .map_err(storage)?;
    }
    Ok(())
}

/// Makes the files an older fwasm stored without owners the common files (with their sizes,
/// which the oldest did not keep), and drops the tables they were in.
fn own_unowned_files(txn: &WriteTransaction) -> Result<(), BackendError> {
    {
        let unowned = txn.open_table(UNOWNED_FILES).map_err(storage)?;
        let mut files = txn.open_table(FILES).map_err(storage)?;
        let mut sizes = txn.open_table(FILE_SIZES).map_err(storage)?;
        for entry in unowned.iter().map_err(storage)? {
            let (path, data) = entry.map_err(storage)?;
            let (at, data) = (("", path.value()), data.value());
            files.insert(at, data).map_err(storage)?;
            sizes.insert(at, data.len() as u64).map_err(storage)?;
        }
    }
    txn.delete_table(UNOWNED_FILES).map_err(storage)?;
    txn.delete_table(UNOWNED_FILE_SIZES).map_err(storage)?;
    Ok(())
}

/// Counts what each user stores, once, in a store made before usage was kept.
fn count_usage(txn: &WriteTransaction) -> Result<(), BackendError> {
    {
        let mut counters = txn.open_table(COUNTERS).map_err(storage)?;
        if counters.get(USAGE_COUNTED_MARK).map_err(storage)?.is_some() {
            return Ok(());
        }
        counters.insert(USAGE_COUNTED_MARK, 1).map_err(storage)?;
    }
    let mut counted: BTreeMap<String, Usage> = BTreeMap::new();
    let mut add = |user: &str, bytes: u64, functions: u64| {
        let usage = counted.entry(user.to_string()).or_default();
        usage.bytes += bytes;
        usage.functions += functions;
    };
    for entry in txn
        .open_table(VALUES)
        .map_err(storage)?
        .iter()
        .map_err(storage)?
    {
        let (at, value) = entry.map_err(storage)?;
        add(at.value().0, value.value().len() as u64, 0);
    }
    let lists = txn.open_table(APPENDED_BYTES).map_err(storage)?;
    for entry in lists.iter().map_err(storage)? {
        let (at, size) = entry.map_err(storage)?;
        add(at.value().0, size.value(), 0);
    }
    for entry in txn
        .open_table(FILE_SIZES)
        .map_err(storage)?
        .iter()
        .map_err(storage)?
    {
        let (at, size) = entry.map_err(storage)?;
        add(at.value().0, size.value(), 0);
    }
    for entry in txn
        .open_table(FUNCTIONS)
        .map_err(storage)?
        .iter()
        .map_err(storage)?
    {
        let (name, record) = entry.map_err(storage)?;
        let user = name.value().split('/').next().unwrap_or_default();
        add(user, record.value().1, 1);
    }
    for (user, usage) in counted {
        record_usage(txn, &user, usage)?;
    }
    Ok(())
}

fn usage_of(txn: &WriteTransaction, user: &str) -> Result<Usage, BackendError> {
    usage_in(&txn.open_table(USAGE).map_err(storage)?, user)
}

fn usage_in(
    table: &impl ReadableTable<&'static str, (u64, u64)>,
    user: &str,
) -> Result<Usage, BackendError> {
    let entry = table.get(user).map_err(storage)?;
    Ok(entry.map_or(Usage::default(), |entry| {
        let (bytes, functions) = entry.value();
        Usage { bytes, functions }
    }))
}

fn record_usage(txn: &WriteTransaction, user: &str, usage: Usage) -> Result<(), BackendError> {
    let mut table = txn.open_table(USAGE).map_err(storage)?;
    match usage == Usage::default() {
        true => table.remove(user).map(drop),
        false => table.insert(user, (usage.bytes, usage.functions)).map(drop),
    }
    .map_err(storage)
}

/// How many bytes `ops` add to the user's state (fewer if negative): values set and
/// deleted, and the append lists deletes remove.
fn state_growth(txn: &WriteTransaction, user: &str, ops: &[StateOp]) -> Result<i64, BackendError> {
    let values = txn.open_table(VALUES).map_err(storage)?;
    let lists = txn.open_table(APPENDED_BYTES).map_err(storage)?;
    // key -> (bytes before, value bytes now, list bytes now)
    let mut keys: std::collections::HashMap<&str, (u64, u64, u64)> = Default::default();
    for op in ops {
        let key = op.key.as_str();
        if !keys.contains_key(key) {
            let value = values
                .get((user, key))
                .map_err(storage)?
                .map_or(0, |v| v.value().len() as u64);
            let list = lists
                .get((user, key))
                .map_err(storage)?
                .map_or(0, |s| s.value());
            keys.insert(key, (value + list, value, list));
        }
        let entry = keys.get_mut(key).expect("inserted above");
        match &op.value {
            Some(value) => entry.1 = value.len() as u64,
            None => (entry.1, entry.2) = (0, 0),
        }
    }
    Ok(keys
        .values()
        .map(|(before, value, list)| (value + list) as i64 - *before as i64)
        .sum())
}

/// How a transaction finds `key` of `user` before touching it.
fn key_before(txn: &WriteTransaction, user: &str, key: &str) -> Result<KeyBefore, BackendError> {
    let keys = txn.open_table(KEYS).map_err(storage)?;
    let exists = keys.get((user, key)).map_err(storage)?.is_some();
    let version = if has_value(txn, user, key)? {
        let versions = txn.open_table(VERSIONS).map_err(storage)?;
        Some(
            versions
                .get((user, key))
                .map_err(storage)?
                .map_or(0, |v| v.value()),
        )
    } else {
        None
    };
    Ok(KeyBefore { exists, version })
}

fn key_count(txn: &WriteTransaction, user: &str) -> Result<u64, BackendError> {
    let counts = txn.open_table(KEY_COUNTS).map_err(storage)?;
    Ok(counts
        .get(user)
        .map_err(storage)?
        .map_or(0, |count| count.value()))
}

/// Writes one op of a checked transaction; returns the version it leaves the key at.
fn apply(txn: &WriteTransaction, user: &str, op: &StateOp) -> Result<u64, BackendError> {
    let key = op.key.as_str();
    match &op.value {
        Some(value) => {
            // The transaction's key count was checked as a whole.
            admit_key(txn, user, key, u64::MAX)?;
            let mut values = txn.open_table(VALUES).map_err(storage)?;
            values
                .insert((user, key), value.as_ref())
                .map_err(storage)?;
            let version = next_version(txn)?;
            let mut versions = txn.open_table(VERSIONS).map_err(storage)?;
            versions.insert((user, key), version).map_err(storage)?;
            Ok(version)
        }
        None => {
            let mut values = txn.open_table(VALUES).map_err(storage)?;
            values.remove((user, key)).map_err(storage)?;
            let mut versions = txn.open_table(VERSIONS).map_err(storage)?;
            versions.remove((user, key)).map_err(storage)?;
            clear_list(txn, user, key)?;
            forget_key(txn, user, key)?;
            Ok(0)
        }
    }
}

/// The live holds of the lock on (user, key); holds whose lease has ended are removed.
fn live_holds(txn: &WriteTransaction, user: &str, key: &str) -> Result<Vec<Hold>, BackendError> {
    let mut locks = txn.open_table(LOCKS).map_err(storage)?;
    let (live, ended) = holds(&locks, user, key, unix_millis())?;
    for holder in ended {
        locks
            .remove((user, key, holder.as_str()))
            .map_err(storage)?;
    }
    Ok(live)
}

/// The holds of the lock on (user, key) in `locks`: the live ones, and the holders of those
/// whose lease ended by `now`.
fn holds(
    locks: &impl ReadableTable<(&'static str, &'static str, &'static str), (u8, u64)>,
    user: &str,
    key: &str,
    now: u64,
) -> Result<(Vec<Hold>, Vec<String>), BackendError> {
    let (mut live, mut ended) = (Vec::new(), Vec::new());
    for entry in locks.range((user, key, "")..).map_err(storage)? {
        let (at, hold) = entry.map_err(storage)?;
        let (hold_user, hold_key, holder) = at.value();
        if hold_user != user || hold_key != key {
            break;
        }
        let (mode, until_ms) = hold.value();
        if until_ms <= now {
            ended.push(holder.to_string());
            continue;
        }
        let mode = if mode == 1 {
            LockMode::Write
        } else {
            LockMode::Read
        };
        live.push(Hold {
            holder: holder.to_string(),
            mode,
            until_ms,
        });
    }
    Ok((live, ended))
}

/// Removes every hold whose lease has ended, of any lock: those of locks no one asks for
/// again would otherwise stay for good.
fn sweep_ended_holds(txn: &WriteTransaction) -> Result<(), BackendError> {
    let mut locks = txn.open_table(LOCKS).map_err(storage)?;
    let now = unix_millis();
    locks
        .extract_if(|_, (_, until_ms)| until_ms <= now)
        .map_err(storage)?
        .try_for_each(|removed| removed.map(drop))
        .map_err(storage)
}

/// What refusing `holder` looks like, if the lock's live holds refuse it.
fn refusal(holds: &[Hold], holder: &str, now: u64) -> LockTry {
    let others = holds.iter().filter(|h| h.holder != holder);
    let first_end = others.map(|h| h.until_ms).min();
    LockTry {
        granted: false,
        busy_for: first_end.map(|at| Duration::from_millis(at - now.min(at))),
    }
}

fn has_value(txn: &WriteTransaction, user: &str, key: &str) -> Result<bool, BackendError> {
    let values = txn.open_table(VALUES).map_err(storage)?;
    Ok(values.get((user, key)).map_err(storage)?.is_some())
}

#[async_trait]
impl Backend for EmbeddedBackend {
    async fn put_function(
        &self,
        user: &str,
        function: &str,
        record: &FunctionRecord,
        wasm: Bytes,
        quota: StorageQuota,
    ) -> Result<(), BackendError> {
        let (user, key) = (user.to_string(), function_key(user, function));
        let record = record.clone();
        self.writes
            .write(wasm.len(), move |txn| {
                let mut functions = txn.open_table(FUNCTIONS).map_err(storage)?;
                let before = functions
                    .get(key.as_str())
                    .map_err(storage)?
                    .map(|e| e.value().1);
                let (bytes, added) = match before {
                    Some(size) => (record.size as i64 - size as i64, 0),
                    None => (record.size as i64, 1),
                };
                let usage = usage_of(txn, &user)?.grown(bytes, added, quota)?;
                functions
                    .insert(key.as_str(), (record.module_hash.as_str(), record.size))
                    .map_err(storage)?;
                let mut modules = txn.open_table(MODULES).map_err(storage)?;
                modules
                    .insert(record.module_hash.as_str(), wasm.as_ref())
                    .map_err(storage)?;
                let mut settings = txn.open_table(FUNCTION_SETTINGS).map_err(storage)?;
                match &record.settings {
                    Some(set) => settings.insert(key.as_str(), set.encode_to_vec().as_slice()),
                    None => settings.remove(key.as_str()),
                }
                .map_err(storage)?;
                let mut about = txn.open_table(FUNCTION_ABOUT).map_err(storage)?;
                about
                    .insert(key.as_str(), (record.abi.as_str(), record.uploaded_at_ms))
                    .map_err(storage)?;
                record_usage(txn, &user, usage)
            })
            .await
    }

    async fn usage(&self, user: &str) -> Result<Usage, BackendError> {
        let user = user.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(storage)?;
            usage_in(&txn.open_table(USAGE).map_err(storage)?, &user)
        })
        .await
    }

    async fn function(
        &self,
        user: &str,
        function: &str,
    ) -> Result<Option<FunctionRecord>, BackendError> {
        let key = function_key(user, function);
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(FUNCTIONS).map_err(storage)?;
            let Some(entry) = table.get(key.as_str()).map_err(storage)? else {
                return Ok(None);
            };
            let (module_hash, size) = entry.value();
            Ok(Some(function_record(&txn, &key, module_hash, size)?))
        })
        .await
    }

    async fn function_users(&self) -> Result<Vec<String>, BackendError> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(FUNCTIONS).map_err(storage)?;
            let mut users: Vec<String> = Vec::new();
            // Keys are `user/function` in order: one look per user, each jumping past the
            // user's functions ("user0" follows every "user/...").
            let mut from = String::new();
            loop {
                let next = table.range(from.as_str()..).map_err(storage)?.next();
                let Some(entry) = next else { break };
                let (key, _) = entry.map_err(storage)?;
                let Some((user, _)) = key.value().split_once('/') else {
                    break;
                };
                from = format!("{user}0");
                users.push(user.to_string());
            }
            Ok(users)
        })
        .await
    }

    async fn list_functions(
        &self,
        user: &str,
    ) -> Result<Vec<(String, FunctionRecord)>, BackendError> {
        // Keys are `user/function`, and names hold no '/': the user's run from "user/" to
        // "user0" ('0' follows '/').
        let (start, end) = (format!("{user}/"), format!("{user}0"));
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(FUNCTIONS).map_err(storage)?;
            let mut found = Vec::new();
            for entry in table.range(start.as_str()..end.as_str()).map_err(storage)? {
                let (key, value) = entry.map_err(storage)?;
                let (module_hash, size) = value.value();
                let name = key.value()[start.len()..].to_string();
                found.push((name, function_record(&txn, key.value(), module_hash, size)?));
            }
            Ok(found)
        })
        .await
    }

    async fn delete_function(
        &self,
        user: &str,
        function: &str,
    ) -> Result<Option<FunctionRecord>, BackendError> {
        let (user, key) = (user.to_string(), function_key(user, function));
        let before = self.function(&user, function).await?;
        if before.is_none() {
            return Ok(None);
        }
        self.writes
            .write(0, move |txn| {
                let mut functions = txn.open_table(FUNCTIONS).map_err(storage)?;
                let Some(size) = functions
                    .remove(key.as_str())
                    .map_err(storage)?
                    .map(|entry| entry.value().1)
                else {
                    return Ok(None);
                };
                let mut settings = txn.open_table(FUNCTION_SETTINGS).map_err(storage)?;
                settings.remove(key.as_str()).map_err(storage)?;
                let mut about = txn.open_table(FUNCTION_ABOUT).map_err(storage)?;
                about.remove(key.as_str()).map_err(storage)?;
                let usage = usage_of(txn, &user)?.grown(-(size as i64), -1, StorageQuota::NONE)?;
                record_usage(txn, &user, usage)?;
                Ok(before)
            })
            .await
    }

    async fn module(&self, module_hash: &str) -> Result<Option<Bytes>, BackendError> {
        self.read_bytes(MODULES, module_hash.to_string()).await
    }

    async fn get_versioned(
        &self,
        user: &str,
        key: &str,
    ) -> Result<Option<Versioned>, BackendError> {
        let (user, key) = (user.to_string(), key.to_string());
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let values = txn.open_table(VALUES).map_err(storage)?;
            let at = (user.as_str(), key.as_str());
            let Some(value) = values.get(at).map_err(storage)? else {
                return Ok(None);
            };
            let versions = txn.open_table(VERSIONS).map_err(storage)?;
            let version = versions.get(at).map_err(storage)?.map_or(0, |v| v.value());
            Ok(Some(Versioned {
                value: Bytes::copy_from_slice(value.value()),
                version,
            }))
        })
        .await
    }

    async fn state_size(&self, user: &str, key: &str) -> Result<u64, BackendError> {
        let (user, key) = (user.to_string(), key.to_string());
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let values = txn.open_table(VALUES).map_err(storage)?;
            Ok(values
                .get((user.as_str(), key.as_str()))
                .map_err(storage)?
                .map_or(0, |value| value.value().len() as u64))
        })
        .await
    }

    async fn write_state(
        &self,
        user: &str,
        ops: Vec<StateOp>,
        max_keys: u64,
        quota: StorageQuota,
    ) -> Result<Vec<u64>, BackendError> {
        let user = user.to_string();
        let bytes = ops
            .iter()
            .map(|op| op.value.as_ref().map_or(0, Bytes::len))
            .sum();
        self.writes
            .write(bytes, move |txn| {
                let count = key_count(txn, &user)?;
                check_transaction(&ops, |key| key_before(txn, &user, key), count, max_keys)?;
                let growth = state_growth(txn, &user, &ops)?;
                let usage = usage_of(txn, &user)?.grown(growth, 0, quota)?;
                let versions = ops.iter().map(|op| apply(txn, &user, op)).collect();
                record_usage(txn, &user, usage)?;
                versions
            })
            .await
    }

    async fn next_id(&self, user: &str, key: &str) -> Result<u64, BackendError> {
        let (user, key) = (user.to_string(), key.to_string());
        self.writes
            .write(0, move |txn| {
                let mut sequences = txn.open_table(SEQUENCES).map_err(storage)?;
                let at = (user.as_str(), key.as_str());
                let last = sequences.get(at).map_err(storage)?.map_or(0, |v| v.value());
                sequences.insert(at, last + 1).map_err(storage)?;
                Ok(last + 1)
            })
            .await
    }

    async fn append_state(
        &self,
        user: &str,
        key: &str,
        element: Bytes,
        max_keys: u64,
        max_list_bytes: u64,
        quota: StorageQuota,
    ) -> Result<(), BackendError> {
        let (user, key) = (user.to_string(), key.to_string());
        self.writes
            .write(element.len(), move |txn| {
                let list_size = grown_list_size(txn, &user, &key, element.len(), max_list_bytes)?;
                let usage = usage_of(txn, &user)?.grown(element.len() as i64, 0, quota)?;
                admit_key(txn, &user, &key, max_keys)?;
                record_usage(txn, &user, usage)?;
                let (user, key) = (user.as_str(), key.as_str());
                let mut list = txn.open_table(APPENDED).map_err(storage)?;
                let last = list
                    .range((user, key, 0)..=(user, key, u64::MAX))
                    .map_err(storage)?
                    .next_back()
                    .transpose()
                    .map_err(storage)?
                    .map(|(entry, _)| entry.value().2);
                let next = last.map_or(0, |last| last + 1);
                list.insert((user, key, next), element.as_ref())
                    .map_err(storage)?;
                let mut sizes = txn.open_table(APPENDED_BYTES).map_err(storage)?;
                sizes.insert((user, key), list_size).map_err(storage)?;
                Ok(())
            })
            .await
    }

    async fn read_appended(&self, user: &str, key: &str) -> Result<Vec<Bytes>, BackendError> {
        let (user, key) = (user.to_string(), key.to_string());
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let list = txn.open_table(APPENDED).map_err(storage)?;
            let (user, key) = (user.as_str(), key.as_str());
            list.range((user, key, 0)..=(user, key, u64::MAX))
                .map_err(storage)?
                .map(|entry| {
                    entry
                        .map(|(_, element)| Bytes::copy_from_slice(element.value()))
                        .map_err(storage)
                })
                .collect()
        })
        .await
    }

    async fn clear_appended(&self, user: &str, key: &str) -> Result<(), BackendError> {
        let (user, key) = (user.to_string(), key.to_string());
        self.writes
            .write(0, move |txn| {
                let lists = txn.open_table(APPENDED_BYTES).map_err(storage)?;
                let size = lists.get((user.as_str(), key.as_str())).map_err(storage)?;
                let size = size.map_or(0, |s| s.value());
                drop(lists);
                let usage = usage_of(txn, &user)?.grown(-(size as i64), 0, StorageQuota::NONE)?;
                record_usage(txn, &user, usage)?;
                clear_list(txn, &user, &key)?;
                if !has_value(txn, &user, &key)? {
                    forget_key(txn, &user, &key)?;
                }
                Ok(())
            })
            .await
    }

    async fn put_file(
        &self,
        user: &str,
        path: &str,
        data: Bytes,
        quota: StorageQuota,
    ) -> Result<(), BackendError> {
        let (user, path) = (user.to_string(), path.to_string());
        self.writes
            .write(data.len(), move |txn| {
                let at = (user.as_str(), path.as_str());
                let mut sizes = txn.open_table(FILE_SIZES).map_err(storage)?;
                let before = sizes.get(at).map_err(storage)?.map_or(0, |s| s.value());
                let growth = data.len() as i64 - before as i64;
                let usage = usage_of(txn, &user)?.grown(growth, 0, quota)?;
                sizes.insert(at, data.len() as u64).map_err(storage)?;
                let mut files = txn.open_table(FILES).map_err(storage)?;
                files.insert(at, data.as_ref()).map_err(storage)?;
                record_usage(txn, &user, usage)
            })
            .await
    }

    async fn file(&self, user: &str, path: &str) -> Result<Option<Bytes>, BackendError> {
        let (user, path) = (user.to_string(), path.to_string());
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let files = txn.open_table(FILES).map_err(storage)?;
            Ok(files
                .get((user.as_str(), path.as_str()))
                .map_err(storage)?
                .map(|data| Bytes::copy_from_slice(data.value())))
        })
        .await
    }

    async fn delete_file(&self, user: &str, path: &str) -> Result<bool, BackendError> {
        let (user, path) = (user.to_string(), path.to_string());
        self.writes
            .write(0, move |txn| {
                let at = (user.as_str(), path.as_str());
                let mut sizes = txn.open_table(FILE_SIZES).map_err(storage)?;
                let size = sizes.remove(at).map_err(storage)?.map_or(0, |s| s.value());
                let usage = usage_of(txn, &user)?.grown(-(size as i64), 0, StorageQuota::NONE)?;
                record_usage(txn, &user, usage)?;
                let mut files = txn.open_table(FILES).map_err(storage)?;
                Ok(files.remove(at).map_err(storage)?.is_some())
            })
            .await
    }

    async fn list_keys(
        &self,
        user: &str,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, BackendError> {
        let (user, prefix, after) = (user.to_string(), prefix.to_string(), after.to_string());
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let keys = txn.open_table(KEYS).map_err(storage)?;
            let start = prefix.as_str().max(after.as_str());
            let mut found = Vec::new();
            for entry in keys.range((user.as_str(), start)..).map_err(storage)? {
                let (at, _) = entry.map_err(storage)?;
                let (owner, key) = at.value();
                if owner != user || !key.starts_with(prefix.as_str()) || found.len() == limit {
                    break;
                }
                if key != after {
                    found.push(key.to_string());
                }
            }
            Ok(found)
        })
        .await
    }

    async fn list_files(
        &self,
        user: &str,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, BackendError> {
        let (user, prefix, after) = (user.to_string(), prefix.to_string(), after.to_string());
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let sizes = txn.open_table(FILE_SIZES).map_err(storage)?;
            let start = prefix.as_str().max(after.as_str());
            let mut found = Vec::new();
            for entry in sizes.range((user.as_str(), start)..).map_err(storage)? {
                let (at, size) = entry.map_err(storage)?;
                let (owner, path) = at.value();
                if owner != user || !path.starts_with(prefix.as_str()) || found.len() == limit {
                    break;
                }
                if path != after {
                    found.push((path.to_string(), size.value()));
                }
            }
            Ok(found)
        })
        .await
    }

    async fn set_subscription(
        &self,
        user: &str,
        topic: &str,
        function: &str,
        subscribed: bool,
    ) -> Result<bool, BackendError> {
        let at = (user.to_string(), topic.to_string(), function.to_string());
        self.writes
            .write(0, move |txn| {
                let mut table = txn.open_table(SUBSCRIPTIONS).map_err(storage)?;
                let at = (at.0.as_str(), at.1.as_str(), at.2.as_str());
                let before = match subscribed {
                    true => table.insert(at, ()).map_err(storage)?.is_some(),
                    false => table.remove(at).map_err(storage)?.is_some(),
                };
                Ok(before != subscribed)
            })
            .await
    }

    async fn subscriptions(
        &self,
        user: &str,
        topic: Option<&str>,
    ) -> Result<Vec<(String, String)>, BackendError> {
        let (user, topic) = (user.to_string(), topic.map(str::to_string));
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(SUBSCRIPTIONS).map_err(storage)?;
            let start = (user.as_str(), topic.as_deref().unwrap_or(""), "");
            let mut found = Vec::new();
            for entry in table.range(start..).map_err(storage)? {
                let (at, _) = entry.map_err(storage)?;
                let (of, on, function) = at.value();
                if of != user || topic.as_deref().is_some_and(|topic| topic != on) {
                    break;
                }
                found.push((on.to_string(), function.to_string()));
            }
            Ok(found)
        })
        .await
    }

    async fn try_lock(
        &self,
        user: &str,
        key: &str,
        holder: &str,
        mode: LockMode,
        lease: Duration,
        reentrant: bool,
    ) -> Result<LockTry, BackendError> {
        let (user, key, holder) = (user.to_string(), key.to_string(), holder.to_string());
        // A refusal needs no write (waiters ask again and again): decided on a read, unless
        // ended holds are to be removed.
        let asked = (user.clone(), key.clone(), holder.clone());
        let refused = self
            .blocking(move |db| {
                let txn = db.begin_read().map_err(storage)?;
                let locks = txn.open_table(LOCKS).map_err(storage)?;
                let now = unix_millis();
                let (live, ended) = holds(&locks, &asked.0, &asked.1, now)?;
                let refused = grant(&live, &asked.2, mode, now, reentrant).is_none();
                Ok((ended.is_empty() && refused).then(|| refusal(&live, &asked.2, now)))
            })
            .await?;
        if let Some(refused) = refused {
            return Ok(refused);
        }
        let sweep = self
            .lock_writes
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_LOCKS_EVERY);
        self.writes
            .write(0, move |txn| {
                if sweep {
                    sweep_ended_holds(txn)?;
                }
                let holds = live_holds(txn, &user, &key)?;
                let now = unix_millis();
                let until = now.saturating_add(lease.as_millis() as u64);
                let Some(hold) = grant(&holds, &holder, mode, until, reentrant) else {
                    return Ok(refusal(&holds, &holder, now));
                };
                let mut locks = txn.open_table(LOCKS).map_err(storage)?;
                let at = (user.as_str(), key.as_str(), holder.as_str());
                let mode = u8::from(hold.mode == LockMode::Write);
                locks.insert(at, (mode, hold.until_ms)).map_err(storage)?;
                Ok(LockTry {
                    granted: true,
                    busy_for: None,
                })
            })
            .await
    }

    async fn unlock(&self, user: &str, key: &str, holder: &str) -> Result<Unlocked, BackendError> {
        let (user, key, holder) = (user.to_string(), key.to_string(), holder.to_string());
        self.writes
            .write(0, move |txn| {
                let holds = live_holds(txn, &user, &key)?;
                let found = release(&holds, &holder);
                if found == Unlocked::Released {
                    let mut locks = txn.open_table(LOCKS).map_err(storage)?;
                    let at = (user.as_str(), key.as_str(), holder.as_str());
                    locks.remove(at).map_err(storage)?;
                }
                Ok(found)
            })
            .await
    }

    async fn save_call(&self, id: u64, record: Bytes, ttl: Duration) -> Result<(), BackendError> {
        let expires = unix_seconds().saturating_add(ttl.as_secs());
        self.writes
            .write(record.len(), move |txn| {
                let mut calls = txn.open_table(CALLS).map_err(storage)?;
                calls
                    .insert(id, (expires, record.as_ref()))
                    .map_err(storage)?;
                // Expired records go as new ones come: every so many ids, a look at the oldest
                // ones (ids grow with time and all records live as long), twice as many as
                // have come since, so removal keeps ahead and a save never reads the table.
                if !id.is_multiple_of(EXPIRY_SCAN_EVERY) {
                    return Ok(());
                }
                let now = unix_seconds();
                let expired: Vec<u64> = calls
                    .iter()
                    .map_err(storage)?
                    .take(2 * EXPIRY_SCAN_EVERY as usize)
                    .filter_map(Result::ok)
                    .filter(|(_, value)| value.value().0 < now)
                    .map(|(key, _)| key.value())
                    .collect();
                for id in expired {
                    calls.remove(id).map_err(storage)?;
                }
                Ok(())
            })
            .await
    }

    async fn call(&self, id: u64) -> Result<Option<Bytes>, BackendError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let calls = txn.open_table(CALLS).map_err(storage)?;
            Ok(calls.get(id).map_err(storage)?.and_then(|value| {
                let (expires, record) = value.value();
                (expires >= unix_seconds()).then(|| Bytes::copy_from_slice(record))
            }))
        })
        .await
    }

    async fn put_token(&self, id: &str, record: Bytes) -> Result<(), BackendError> {
        let id = id.to_string();
        self.writes
            .write(record.len(), move |txn| {
                let mut tokens = txn.open_table(TOKENS).map_err(storage)?;
                tokens
                    .insert(id.as_str(), record.as_ref())
                    .map_err(storage)?;
                Ok(())
            })
            .await
    }

    async fn token(&self, id: &str) -> Result<Option<Bytes>, BackendError> {
        let id = id.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let tokens = txn.open_table(TOKENS).map_err(storage)?;
            let record = tokens.get(id.as_str()).map_err(storage)?;
            Ok(record.map(|record| Bytes::copy_from_slice(record.value())))
        })
        .await
    }

    async fn delete_token(&self, id: &str) -> Result<bool, BackendError> {
        let id = id.to_string();
        self.writes
            .write(0, move |txn| {
                let mut tokens = txn.open_table(TOKENS).map_err(storage)?;
                Ok(tokens.remove(id.as_str()).map_err(storage)?.is_some())
            })
            .await
    }

    async fn tokens(&self) -> Result<Vec<Bytes>, BackendError> {
        self.values_of(TOKENS).await
    }

    async fn put_quota(&self, user: &str, quota: Option<Bytes>) -> Result<(), BackendError> {
        let user = user.to_string();
        let size = quota.as_ref().map_or(0, Bytes::len);
        self.writes
            .write(size, move |txn| {
                let mut quotas = txn.open_table(QUOTAS).map_err(storage)?;
                match &quota {
                    Some(quota) => quotas.insert(user.as_str(), quota.as_ref()),
                    None => quotas.remove(user.as_str()),
                }
                .map_err(storage)?;
                Ok(())
            })
            .await
    }

    async fn quotas(&self) -> Result<Vec<Bytes>, BackendError> {
        self.values_of(QUOTAS).await
    }

    async fn put_snapshot(
        &self,
        user: &str,
        function: &str,
        record: Bytes,
    ) -> Result<(), BackendError> {
        let key = function_key(user, function);
        self.writes
            .write(record.len(), move |txn| {
                let mut snapshots = txn.open_table(SNAPSHOTS).map_err(storage)?;
                snapshots
                    .insert(key.as_str(), record.as_ref())
                    .map_err(storage)?;
                Ok(())
            })
            .await
    }

    async fn snapshot(&self, user: &str, function: &str) -> Result<Option<Bytes>, BackendError> {
        self.read_bytes(SNAPSHOTS, function_key(user, function))
            .await
    }

    async fn delete_snapshot(&self, user: &str, function: &str) -> Result<(), BackendError> {
        let key = function_key(user, function);
        self.writes
            .write(0, move |txn| {
                let mut snapshots = txn.open_table(SNAPSHOTS).map_err(storage)?;
                snapshots.remove(key.as_str()).map_err(storage)?;
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(hash: &str, size: u64) -> FunctionRecord {
        FunctionRecord {
            module_hash: hash.into(),
            size,
            settings: None,
            abi: String::new(),
            uploaded_at_ms: 0,
        }
    }

    #[tokio::test]
    async fn stores_and_reads_back_functions_and_modules() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedBackend::open(dir.path()).unwrap();
        assert_eq!(store.function("u", "f").await.unwrap(), None);
        store
            .put_function(
                "u",
                "f",
                &record("h1", 3),
                Bytes::from_static(b"abc"),
                StorageQuota::NONE,
            )
            .await
            .unwrap();
        assert_eq!(
            store.function("u", "f").await.unwrap(),
            Some(record("h1", 3))
        );
        assert_eq!(
            store.module("h1").await.unwrap().as_deref(),
            Some(&b"abc"[..])
        );
        assert_eq!(store.module("h2").await.unwrap(), None);
        assert_eq!(store.function("u", "g").await.unwrap(), None);
    }

    /// A store written before versions were kept (a value, no version, no mark) opens with a
    /// version for that value, which the next write changes.
    #[tokio::test]
    async fn values_from_before_versions_get_one_when_the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(VALUES)
                .unwrap()
                .insert(("u", "old"), b"kept".as_slice())
                .unwrap();
            txn.open_table(KEYS)
                .unwrap()
                .insert(("u", "old"), ())
                .unwrap();
            txn.open_table(KEY_COUNTS).unwrap().insert("u", 1).unwrap();
            txn.commit().unwrap();
        }
        let store = EmbeddedBackend::open(dir.path()).unwrap();
        let old = store.get_versioned("u", "old").await.unwrap().unwrap();
        assert_eq!(&old.value[..], b"kept");
        assert!(old.version > 0);
        let op = StateOp::set("old", Bytes::from_static(b"new")).if_version(old.version);
        let written = store
            .write_state("u", vec![op], 10, StorageQuota::NONE)
            .await
            .unwrap()[0];
        assert!(written > old.version);
        drop(store);
        // Reopened: marked done, nothing renumbered.
        let store = EmbeddedBackend::open(dir.path()).unwrap();
        assert_eq!(
            store
                .get_versioned("u", "old")
                .await
                .unwrap()
                .unwrap()
                .version,
            written
        );
    }

    #[tokio::test]
    async fn acknowledged_writes_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = EmbeddedBackend::open(dir.path()).unwrap();
            store
                .put_function(
                    "u",
                    "f",
                    &record("h1", 2),
                    Bytes::from_static(b"v1"),
                    StorageQuota::NONE,
                )
                .await
                .unwrap();
            store
                .put_function(
                    "u",
                    "f",
                    &record("h2", 2),
                    Bytes::from_static(b"v2"),
                    StorageQuota::NONE,
                )
                .await
                .unwrap();
        }
        let store = EmbeddedBackend::open(dir.path()).unwrap();
        assert_eq!(
            store.function("u", "f").await.unwrap(),
            Some(record("h2", 2))
        );
        assert_eq!(
            store.module("h1").await.unwrap().as_deref(),
            Some(&b"v1"[..])
        );
    }

    #[tokio::test]
    async fn lists_from_before_sizes_were_kept_are_measured_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = EmbeddedBackend::open(dir.path()).unwrap();
            for element in ["12345", "678"] {
                let element = Bytes::from_static(element.as_bytes());
                store
                    .append_state("u", "log", element, 10, u64::MAX, StorageQuota::NONE)
                    .await
                    .unwrap();
            }
        }
        // Forget the sizes, as in a store from before they were kept.
        {
            let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
            let txn = db.begin_write().unwrap();
            txn.delete_table(APPENDED_BYTES).unwrap();
            txn.commit().unwrap();
        }
        let store = EmbeddedBackend::open(dir.path()).unwrap();
        let append = |element: &'static str| {
            store.append_state(
                "u",
                "log",
                Bytes::from_static(element.as_bytes()),
                10,
                10,
                StorageQuota::NONE,
            )
        };
        // 8 bytes are there: 2 more fit, a third does not.
        append("ab").await.unwrap();
        let refused = append("c").await.unwrap_err();
        assert!(
            matches!(refused, BackendError::ListFull { max: 10 }),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn expired_call_records_are_removed_faster_than_calls_come() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedBackend::open(dir.path()).unwrap();
        // 600 records that expired long ago.
        {
            let txn = store.db.begin_write().unwrap();
            let mut calls = txn.open_table(CALLS).unwrap();
            for id in 1..=600u64 {
                calls.insert(id, (0, &b"old"[..])).unwrap();
            }
            drop(calls);
            txn.commit().unwrap();
        }
        let count = |store: &EmbeddedBackend| {
            let txn = store.db.begin_read().unwrap();
            txn.open_table(CALLS).unwrap().len().unwrap()
        };
        let hour = Duration::from_secs(3600);
        let record = Bytes::from_static(b"new");
        // Two expiry scans (ids that are multiples of EXPIRY_SCAN_EVERY) take them all.
        store
            .save_call(4 * EXPIRY_SCAN_EVERY, record.clone(), hour)
            .await
            .unwrap();
        assert_eq!(count(&store), 600 - 2 * EXPIRY_SCAN_EVERY + 1);
        store
            .save_call(5 * EXPIRY_SCAN_EVERY, record, hour)
            .await
            .unwrap();
        assert_eq!(count(&store), 2);
    }

    #[tokio::test]
    async fn files_from_before_files_had_owners_are_the_common_files_with_their_sizes() {
        let dir = tempfile::tempdir().unwrap();
        {
            // As an older fwasm left it: files by path, the oldest with no size.
            let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
            let txn = db.begin_write().unwrap();
            let mut files = txn.open_table(UNOWNED_FILES).unwrap();
            files.insert("old/a.txt", &b"abc"[..]).unwrap();
            files.insert("old/b.txt", &b"de"[..]).unwrap();
            drop(files);
            let mut sizes = txn.open_table(UNOWNED_FILE_SIZES).unwrap();
            sizes.insert("old/b.txt", 2).unwrap();
            drop(sizes);
            txn.commit().unwrap();
        }
        let store = EmbeddedBackend::open(dir.path()).unwrap();
        let listed = store.list_files("", "old/", "", 10).await.unwrap();
        let want = [("old/a.txt".to_string(), 3), ("old/b.txt".to_string(), 2)];
        assert_eq!(listed, want);
        assert_eq!(store.file("", "old/a.txt").await.unwrap().unwrap(), "abc");
        assert!(store.file("alice", "old/a.txt").await.unwrap().is_none());
        drop(store);
        // Moved once: opening again finds them where they went.
        let store = EmbeddedBackend::open(dir.path()).unwrap();
        assert_eq!(store.list_files("", "old/", "", 10).await.unwrap(), want);
    }

    #[tokio::test]
    async fn what_users_stored_before_usage_was_kept_is_counted_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = EmbeddedBackend::open(dir.path()).unwrap();
            let none = StorageQuota::NONE;
            let f = record("h", 5);
            let wasm = Bytes::from_static(b"12345");
            store.put_function("u", "f", &f, wasm, none).await.unwrap();
            store
                .set_state("u", "k", b"abc"[..].into(), 10, none)
                .await
                .unwrap();
            let element = Bytes::from_static(b"de");
            store
                .append_state("u", "l", element, 10, 10, none)
                .await
                .unwrap();
            store
                .put_file("u", "x", b"123456"[..].into(), none)
                .await
                .unwrap();
            store
                .put_file("", "c", b"zz"[..].into(), none)
                .await
                .unwrap();
        }
        {
            // As an older fwasm left it: no usage, no mark.
            let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
            let txn = db.begin_write().unwrap();
            txn.delete_table(USAGE).unwrap();
            txn.open_table(COUNTERS)
                .unwrap()
                .remove(USAGE_COUNTED_MARK)
                .unwrap();
            txn.commit().unwrap();
        }
        let store = EmbeddedBackend::open(dir.path()).unwrap();
        let counted = Usage {
            bytes: 5 + 3 + 2 + 6,
            functions: 1,
        };
        assert_eq!(store.usage("u").await.unwrap(), counted);
        assert_eq!(store.usage("v").await.unwrap(), Usage::default());
    }

    #[tokio::test]
    async fn ended_lock_holds_are_swept_even_on_locks_no_one_asks_for_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedBackend::open(dir.path()).unwrap();
        let brief = Duration::from_millis(1);
        for i in 0..SWEEP_LOCKS_EVERY {
            let key = format!("once-{i}");
            let tried = store.try_lock("u", &key, "h", LockMode::Write, brief, false);
            assert!(tried.await.unwrap().granted);
        }
        std::thread::sleep(Duration::from_millis(20));
        let tried = store.try_lock(
            "u",
            "k",
            "h",
            LockMode::Write,
            Duration::from_secs(60),
            false,
        );
        assert!(tried.await.unwrap().granted);
        let txn = store.db.begin_read().unwrap();
        let rows = txn.open_table(LOCKS).unwrap().len().unwrap();
        assert_eq!(rows, 1, "only the live hold is left");
    }

    #[test]
    fn a_data_dir_that_cannot_be_created_is_a_clear_error() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let err = EmbeddedBackend::open(&file.path().join("sub"))
            .err()
            .expect("open fails");
        assert!(
            err.to_string().starts_with("cannot open the store at"),
            "{err}"
        );
    }
}
