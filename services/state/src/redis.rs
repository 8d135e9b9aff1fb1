//! The Redis backend: functions, modules and the global state tier on a Redis server, through
//! one multiplexed connection that reconnects by itself (`redis::aio::ConnectionManager`).
//!
//! # Key layout
//!
//! Everything lives under the `fwasm:` prefix, so the database can be shared with other data:
//!
//! | key                          | type   | holds                                           |
//! |------------------------------|--------|-------------------------------------------------|
//! | `fwasm:fn:{user}/{function}` | hash   | `module_hash` and `size` of the function        |
//! | `fwasm:mod:{hash}`           | string | the module's bytes                              |
//! | `fwasm:v:{user}:{key}`       | string | the value of a state key                        |
//! | `fwasm:a:{user}:{key}`       | list   | the append list of a state key (RPUSH / LRANGE) |
//! | `fwasm:ab:{user}:{key}`      | string | the append list's total size in bytes           |
//! | `fwasm:k:{user}`             | set    | the user's existing state keys (for `max_keys`) |
//! | `fwasm:ver:{user}:{key}`     | string | the version of a state key's value              |
//! | `fwasm:state-version`        | string | the last version given (INCR)                   |
//! | `fwasm:seq:{user}:{key}`     | string | the last id of a sequence (INCR)                |
//! | `fwasm:lock:{user}:{key}`    | hash   | holder -> `r:` or `w:` and its lease's end (ms) |
//! | `fwasm:file:{path}`          | string | a common shared file (every user's to read)     |
//! | `fwasm:files`                | zset   | every common file's path (for listing)          |
//! | `fwasm:ufile:{user}:{path}`  | string | a user's shared file                            |
//! | `fwasm:ufiles:{user}`        | zset   | the paths of the user's files (for listing)     |
//! | `fwasm:usage:{user}`         | hash   | `bytes` the user stores, `functions` it has     |
//! | `fwasm:usage-common`         | hash   | the same for the common files (never checked)   |
//! | `fwasm:usage-counted`        | string | set once every user's usage was counted         |
//! | `fwasm:sub:{user}:{topic}`   | set    | the functions subscribed to a topic             |
//! | `fwasm:topics:{user}`        | set    | the user's topics with subscriptions            |
//!
//! User names never contain `:` or `/` (they are `[A-Za-z0-9_.-]`; this backend refuses one
//! that does), while state keys may contain anything. The user therefore always comes first and
//! ends at the first `:` (or `/`) after the tag, so two different `(user, key)` pairs can never
//! name the same Redis key, whatever the key holds.
//!
//! # Atomicity
//!
//! `write_state` (sets and deletes, with versions checked), `append_state`, `clear_appended`,
//! `put_function`, `put_file` and `delete_file` are Lua scripts, so checking versions, the key
//! limit (SISMEMBER / SCARD) and the storage quota, recording the key (SADD / SREM), writing
//! and keeping the user's usage (HINCRBY) happen in one step even with concurrent writers.
//! The set `fwasm:k:{user}` holds exactly the keys that have a value or a non-empty list.
//!
//! # Durability
//!
//! A write is acknowledged once Redis has applied it; whether it survives a restart of Redis is
//! up to the server's persistence settings. For the [`Backend`] contract ("an acknowledged
//! write survives a restart") run Redis with `appendonly yes` and `appendfsync always`;
//! [`RedisBackend::connect`] logs a warning when the server says it does not persist that way.

use std::collections::HashMap;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use ::redis::{AsyncConnectionConfig, Client, RedisError, Script};
use async_trait::async_trait;
use bytes::Bytes;
use prost::Message;

use crate::backend::{
    Backend, BackendError, FunctionRecord, LockMode, LockTry, StateOp, StorageQuota, Unlocked,
    Usage, Versioned, decode_settings,
};

/// Takes a lock (see `Backend::try_lock`), by Redis's clock, removing holds whose lease ended.
/// KEYS: the lock's hash. ARGV: holder, `r` or `w`, lease in ms, `1` if reentrant.
/// Returns {1} when granted, else {0, ms until the first other hold ends, or -1}.
const LOCK_SCRIPT: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local holder, mode = ARGV[1], ARGV[2]
local holds = redis.call('HGETALL', KEYS[1])
local mine, others, others_write, first_end, last_end = nil, false, false, nil, 0
for i = 1, #holds, 2 do
  local held, ends = string.match(holds[i + 1], '^(%a):(%d+)$')
  ends = tonumber(ends)
  if ends <= now then
    redis.call('HDEL', KEYS[1], holds[i])
  elseif holds[i] == holder then
    mine = held
  else
    others = true
    others_write = others_write or held == 'w'
    if first_end == nil or ends < first_end then first_end = ends end
    if ends > last_end then last_end = ends end
  end
end
local free = (mode == 'w' and not others) or (mode == 'r' and not others_write)
if (mine and ARGV[4] ~= '1') or not free then
  if first_end == nil then return {0, -1} end
  return {0, first_end - now}
end
if mine == 'w' then mode = 'w' end
local ends = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], holder, mode .. ':' .. string.format('%d', ends))
redis.call('PEXPIREAT', KEYS[1], math.max(ends, last_end))
return {1}
";

/// Gives up a holder's hold (see `Backend::unlock`). KEYS: the lock's hash. ARGV: holder.
/// Returns 0 released, 1 no one holds it, 2 others hold it.
const UNLOCK_SCRIPT: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local holds = redis.call('HGETALL', KEYS[1])
local mine, others = false, false
for i = 1, #holds, 2 do
  local ends = tonumber(string.match(holds[i + 1], ':(%d+)$'))
  if ends <= now then
    redis.call('HDEL', KEYS[1], holds[i])
  elseif holds[i] == ARGV[1] then
    mine = true
  else
    others = true
  end
end
if mine then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
if others then return 2 end
return 1
";

/// Ends a subscription, and forgets the topic once no function is subscribed to it.
/// KEYS: the topic's subscribers, the user's topics. ARGV: function, topic.
/// Returns 1 if the function was subscribed, else 0.
const UNSUBSCRIBE_SCRIPT: &str = r"
local removed = redis.call('SREM', KEYS[1], ARGV[1])
if redis.call('SCARD', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[2])
end
return removed
";

/// Every common file's path, for listing.
const FILE_INDEX: &str = "fwasm:files";
/// Set once every user's usage is counted (see `RedisBackend::count_usage`).
const USAGE_COUNTED_MARK: &str = "fwasm:usage-counted";
/// Set once every shared file stored before the index was kept is in it.
const FILES_INDEXED_MARK: &str = "fwasm:files-indexed";

/// How long connecting (and the first PING) may take before `connect` gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one command may wait for its reply. Generous: a module upload can be megabytes.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// A transaction of sets and deletes (see `Backend::write_state`): checks every op's expected
/// version and the key count first, then writes, each set taking the next version.
/// KEYS: key set, version counter, then per op: value, version, list, list size; last, the
/// user's usage.
/// ARGV: max keys, then per op: state key, `set` or `del`, expected version or "", value; last,
/// the most bytes the user may store.
/// Returns {1, version per op}, {-1, index of the op whose version did not match}, {-2}
/// when the key limit refuses or {-3} when the storage quota does.
const WRITE_SCRIPT: &str = r"
local ops = (#ARGV - 2) / 4
local usage = KEYS[#KEYS]
local keys = {}
for i = 0, ops - 1 do
  local name = ARGV[2 + 4 * i]
  local key = keys[name]
  if not key then
    local version = false
    if redis.call('EXISTS', KEYS[3 + 4 * i]) == 1 then
      version = redis.call('GET', KEYS[4 + 4 * i]) or '0'
    end
    local existed = redis.call('SISMEMBER', KEYS[1], name) == 1
    local value = redis.call('STRLEN', KEYS[3 + 4 * i])
    local list = tonumber(redis.call('GET', KEYS[6 + 4 * i])) or 0
    key = {existed = existed, exists = existed, version = version,
           before = value + list, value = value, list = list}
    keys[name] = key
  end
  local expected = ARGV[4 + 4 * i]
  if expected ~= '' and key.version ~= expected then
    return {-1, i}
  end
  key.exists = ARGV[3 + 4 * i] == 'set'
  key.version = key.exists and 'fresh'
  if key.exists then
    key.value = #ARGV[5 + 4 * i]
  else
    key.value, key.list = 0, 0
  end
end
local count = redis.call('SCARD', KEYS[1])
local after = count
local growth = 0
for _, key in pairs(keys) do
  if key.existed and not key.exists then after = after - 1 end
  if key.exists and not key.existed then after = after + 1 end
  growth = growth + key.value + key.list - key.before
end
if after > count and after > tonumber(ARGV[1]) then
  return {-2}
end
if growth > 0 then
  local used = tonumber(redis.call('HGET', usage, 'bytes')) or 0
  if used + growth > tonumber(ARGV[#ARGV]) then return {-3} end
end
if growth ~= 0 then redis.call('HINCRBY', usage, 'bytes', growth) end
local versions = {1}
for i = 0, ops - 1 do
  local name = ARGV[2 + 4 * i]
  if ARGV[3 + 4 * i] == 'set' then
    redis.call('SADD', KEYS[1], name)
    redis.call('SET', KEYS[3 + 4 * i], ARGV[5 + 4 * i])
    local version = redis.call('INCR', KEYS[2])
    redis.call('SET', KEYS[4 + 4 * i], version)
    versions[#versions + 1] = version
  else
    redis.call('DEL', KEYS[3 + 4 * i], KEYS[4 + 4 * i], KEYS[5 + 4 * i], KEYS[6 + 4 * i])
    redis.call('SREM', KEYS[1], name)
    versions[#versions + 1] = 0
  end
end
return versions
";

/// Gives a value stored before versions were kept its version, once.
/// KEYS: value, version, version counter.
const VERSION_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[2], redis.call('INCR', KEYS[3]))
end
return 1
";

/// The counter every value write takes its version from.
const VERSION_COUNTER: &str = "fwasm:state-version";
/// Set once every value has a version (see [`VERSION_SCRIPT`]).
const VERSIONED_MARK: &str = "fwasm:state-versioned";

/// Appends an element: admits the key under the limit as [`WRITE_SCRIPT`] does, RPUSHes, and keeps the list's size
/// (measured once, kept and counted in the usage even when refusing, if a list predates its
/// size key).
/// KEYS: key set, list, list size, the user's usage. ARGV: state key, max keys, element, max
/// list bytes, the most bytes the user may store.
/// Returns 0 if refused by the key limit, -1 if by the list's size limit, -2 if by the
/// storage quota.
const APPEND_SCRIPT: &str = r"
local size = tonumber(redis.call('GET', KEYS[3]))
if not size then
  size = 0
  for _, element in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    size = size + #element
  end
  -- A list an older fwasm wrote was never counted: counted now, with its size.
  if size > 0 then
    redis.call('SET', KEYS[3], size)
    redis.call('HINCRBY', KEYS[4], 'bytes', size)
  end
end
if size + #ARGV[3] > tonumber(ARGV[4]) then
  return -1
end
size = size + #ARGV[3]
local used = tonumber(redis.call('HGET', KEYS[4], 'bytes')) or 0
if #ARGV[3] > 0 and used + #ARGV[3] > tonumber(ARGV[5]) then
  return -2
end
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then
  if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
  end
  redis.call('SADD', KEYS[1], ARGV[1])
end
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('SET', KEYS[3], size)
redis.call('HINCRBY', KEYS[4], 'bytes', #ARGV[3])
return 1
";

/// A list's size in bytes, kept in its size key if it has none yet. KEYS: list, list size.
const MEASURE_LIST_SCRIPT: &str = r"
local size = tonumber(redis.call('GET', KEYS[2]))
if size then return size end
size = 0
for _, element in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  size = size + #element
end
if size > 0 then redis.call('SET', KEYS[2], size) end
return size
";

/// Empties a list, and forgets the key unless it still has a value.
/// KEYS: key set, value, list, list size, the user's usage. ARGV: state key.
const CLEAR_APPENDED_SCRIPT: &str = r"
local size = tonumber(redis.call('GET', KEYS[4])) or 0
if size > 0 then redis.call('HINCRBY', KEYS[5], 'bytes', -size) end
redis.call('DEL', KEYS[3], KEYS[4])
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SREM', KEYS[1], ARGV[1])
end
return 1
";

/// Points a function at its module (see `Backend::put_function`), within the user's quota.
/// KEYS: the module, the function's record, the user's usage. ARGV: module hash, size,
/// settings, module bytes, most bytes, most functions.
/// Returns 1 when written, -1 if refused by the bytes quota, -2 by the functions quota.
const PUT_FUNCTION_SCRIPT: &str = r"
local before = redis.call('HGET', KEYS[2], 'size')
local size = tonumber(ARGV[2])
local growth, added = size, 1
if before then growth, added = size - tonumber(before), 0 end
local used = redis.call('HMGET', KEYS[3], 'bytes', 'functions')
if growth > 0 and (tonumber(used[1]) or 0) + growth > tonumber(ARGV[5]) then return -1 end
if added > 0 and (tonumber(used[2]) or 0) + added > tonumber(ARGV[6]) then return -2 end
redis.call('SET', KEYS[1], ARGV[4])
redis.call('HSET', KEYS[2], 'module_hash', ARGV[1], 'size', ARGV[2], 'settings', ARGV[3],
  'abi', ARGV[7], 'uploaded_at', ARGV[8])
if growth ~= 0 then redis.call('HINCRBY', KEYS[3], 'bytes', growth) end
if added > 0 then redis.call('HINCRBY', KEYS[3], 'functions', added) end
return 1
";

/// Removes a function, giving back what it stored. KEYS: the function, the user's usage.
/// Returns 1 if there was one, else 0.
const DELETE_FUNCTION_SCRIPT: &str = r"
local size = redis.call('HGET', KEYS[1], 'size')
if not size then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HINCRBY', KEYS[2], 'bytes', -tonumber(size))
redis.call('HINCRBY', KEYS[2], 'functions', -1)
return 1
";

/// Stores a file, within the user's quota. KEYS: the file, the index of the user's files, the
/// user's usage. ARGV: path, data, most bytes. Returns 1 when written, -1 if refused.
const PUT_FILE_SCRIPT: &str = r"
local growth = #ARGV[2] - redis.call('STRLEN', KEYS[1])
if growth > 0 then
  local used = tonumber(redis.call('HGET', KEYS[3], 'bytes')) or 0
  if used + growth > tonumber(ARGV[3]) then return -1 end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
if growth ~= 0 then redis.call('HINCRBY', KEYS[3], 'bytes', growth) end
return 1
";

/// Removes a file. KEYS: the file, the index of the user's files, the user's usage.
/// ARGV: path. Returns 1 if there was one, else 0.
const DELETE_FILE_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
local size = redis.call('STRLEN', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if size > 0 then redis.call('HINCRBY', KEYS[3], 'bytes', -size) end
return 1
";

/// The Redis backend. Cheap to share: commands from concurrent callers are multiplexed on one
/// connection.
pub struct RedisBackend {
    connection: ConnectionManager,
    write_script: Script,
    append_script: Script,
    clear_appended_script: Script,
    put_function_script: Script,
    delete_function_script: Script,
    measure_list_script: Script,
    put_file_script: Script,
    delete_file_script: Script,
    lock_script: Script,
    unlock_script: Script,
    unsubscribe_script: Script,
}

impl RedisBackend {
    /// Connects to the Redis server at `url` (e.g. `redis://127.0.0.1:6379`) and checks that it
    /// answers PING, so a wrong address is reported now rather than at the first request.
    pub async fn connect(url: &str) -> Result<RedisBackend, BackendError> {
        let open_error = |reason: String| BackendError::Open {
            path: url.to_string(),
            reason,
        };
        let client = Client::open(url).map_err(|e| {
            open_error(format!(
                "not a valid Redis URL ({e}); expected e.g. redis://127.0.0.1:6379"
            ))
        })?;

        // One plain connection with short timeouts first: the connection manager would retry
        // a refused connection for seconds before giving up.
        let probe_config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CONNECT_TIMEOUT));
        let mut probe = client
            .get_multiplexed_async_connection_with_config(&probe_config)
            .await
            .map_err(|e| {
                open_error(format!(
                    "cannot connect to Redis ({e}); is redis-server running at {url}?"
                ))
            })?;
        ::redis::cmd("PING")
            .query_async::<String>(&mut probe)
            .await
            .map_err(|e| open_error(format!("the server does not answer PING: {e}")))?;
        warn_unless_durable(&mut probe, url).await;
        drop(probe);

        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| open_error(format!("cannot connect to Redis: {e}")))?;
        let backend = RedisBackend {
            connection,
            write_script: Script::new(WRITE_SCRIPT),
            append_script: Script::new(APPEND_SCRIPT),
            clear_appended_script: Script::new(CLEAR_APPENDED_SCRIPT),
            put_function_script: Script::new(PUT_FUNCTION_SCRIPT),
            delete_function_script: Script::new(DELETE_FUNCTION_SCRIPT),
            measure_list_script: Script::new(MEASURE_LIST_SCRIPT),
            put_file_script: Script::new(PUT_FILE_SCRIPT),
            delete_file_script: Script::new(DELETE_FILE_SCRIPT),
            lock_script: Script::new(LOCK_SCRIPT),
            unlock_script: Script::new(UNLOCK_SCRIPT),
            unsubscribe_script: Script::new(UNSUBSCRIBE_SCRIPT),
        };
        backend
            .version_unversioned_values()
            .await
            .map_err(|e| open_error(format!("cannot give old values their versions: {e}")))?;
        backend
            .index_unindexed_files()
            .await
            .map_err(|e| open_error(format!("cannot index the shared files: {e}")))?;
        backend
            .count_usage()
            .await
            .map_err(|e| open_error(format!("cannot count what users store: {e}")))?;
        Ok(backend)
    }

    /// Gives every value stored before versions were kept its version; done once per database.
    async fn version_unversioned_values(&self) -> Result<(), BackendError> {
        let mut conn = self.conn();
        let done: bool = ::redis::cmd("EXISTS")
            .arg(VERSIONED_MARK)
            .query_async(&mut conn)
            .await
            .map_err(storage)?;
        if done {
            return Ok(());
        }
        let values = self.keys_matching("fwasm:v:*").await?;
        let script = Script::new(VERSION_SCRIPT);
        for value in values {
            let version = format!("fwasm:ver:{}", &value["fwasm:v:".len()..]);
            script
                .key(&value)
                .key(version)
                .key(VERSION_COUNTER)
                .invoke_async::<i64>(&mut conn)
                .await
                .map_err(storage)?;
        }
        ::redis::cmd("SET")
            .arg(VERSIONED_MARK)
            .arg(1)
            .query_async::<()>(&mut conn)
            .await
            .map_err(storage)
    }

    /// Counts what each user stores, once, in a database written before usage was kept.
    async fn count_usage(&self) -> Result<(), BackendError> {
        let mut conn = self.conn();
        let done: bool = ::redis::cmd("EXISTS")
            .arg(USAGE_COUNTED_MARK)
            .query_async(&mut conn)
            .await
            .map_err(storage)?;
        if done {
            return Ok(());
        }
        let mut counted: HashMap<String, (i64, i64)> = HashMap::new();
        // The user is what follows the tag, up to the next ':' (or '/', for functions).
        let user_of = |key: &str, tag: &str| {
            let rest = &key[tag.len()..];
            rest[..rest.find([':', '/']).unwrap_or(rest.len())].to_string()
        };
        for key in self.keys_matching("fwasm:fn:*").await? {
            let size: Option<i64> = ::redis::cmd("HGET")
                .arg(&key)
                .arg("size")
                .query_async(&mut conn)
                .await
                .map_err(storage)?;
            let entry = counted.entry(user_of(&key, "fwasm:fn:")).or_default();
            entry.0 += size.unwrap_or(0);
            entry.1 += 1;
        }
        // Lists with their sizes: one from before sizes were kept is measured now (and its
        // size kept), so that clearing it later takes off what was counted.
        for list in self.keys_matching("fwasm:a:*").await? {
            let size_key = format!("fwasm:ab:{}", &list["fwasm:a:".len()..]);
            let size: i64 = self
                .measure_list_script
                .key(&list)
                .key(size_key)
                .invoke_async(&mut conn)
                .await
                .map_err(storage)?;
            counted.entry(user_of(&list, "fwasm:a:")).or_default().0 += size;
        }
        for (pattern, tag, measure) in [
            ("fwasm:v:*", "fwasm:v:", "STRLEN"),
            ("fwasm:ufile:*", "fwasm:ufile:", "STRLEN"),
        ] {
            for key in self.keys_matching(pattern).await? {
                let size: Option<i64> = ::redis::cmd(measure)
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .map_err(storage)?;
                counted.entry(user_of(&key, tag)).or_default().0 += size.unwrap_or(0);
            }
        }
        for (user, (bytes, functions)) in counted {
            ::redis::cmd("HSET")
                .arg(usage_key(&user)?)
                .arg("bytes")
                .arg(bytes)
                .arg("functions")
                .arg(functions)
                .query_async::<()>(&mut conn)
                .await
                .map_err(storage)?;
        }
        ::redis::cmd("SET")
            .arg(USAGE_COUNTED_MARK)
            .arg(1)
            .query_async::<()>(&mut conn)
            .await
            .map_err(storage)
    }

    /// Puts every shared file stored before files were indexed in the index; done once.
    async fn index_unindexed_files(&self) -> Result<(), BackendError> {
        let mut conn = self.conn();
        let done: bool = ::redis::cmd("EXISTS")
            .arg(FILES_INDEXED_MARK)
            .query_async(&mut conn)
            .await
            .map_err(storage)?;
        if done {
            return Ok(());
        }
        for key in self.keys_matching("fwasm:file:*").await? {
            ::redis::cmd("ZADD")
                .arg(FILE_INDEX)
                .arg(0)
                .arg(&key["fwasm:file:".len()..])
                .query_async::<()>(&mut conn)
                .await
                .map_err(storage)?;
        }
        ::redis::cmd("SET")
            .arg(FILES_INDEXED_MARK)
            .arg(1)
            .query_async::<()>(&mut conn)
            .await
            .map_err(storage)
    }

    /// Every key matching the glob `pattern` (SCAN, so the server is never blocked).
    async fn keys_matching(&self, pattern: &str) -> Result<Vec<String>, BackendError> {
        let mut scan = ::redis::cmd("SCAN");
        scan.cursor_arg(0).arg("MATCH").arg(pattern);
        self.scanned(scan).await
    }

    /// Every member of the set at `key` (SSCAN, so the server is never blocked).
    async fn set_members(&self, key: String) -> Result<Vec<String>, BackendError> {
        let mut scan = ::redis::cmd("SSCAN");
        scan.arg(key).cursor_arg(0);
        self.scanned(scan).await
    }

    /// Everything a cursor command (SCAN, SSCAN) gives, a thousand at a time.
    async fn scanned(&self, mut scan: ::redis::Cmd) -> Result<Vec<String>, BackendError> {
        let mut conn = self.conn();
        scan.arg("COUNT").arg(1000);
        let mut items = scan
            .iter_async::<String>(&mut conn)
            .await
            .map_err(storage)?;
        let mut found = Vec::new();
        while let Some(item) = items.next_item().await {
            found.push(item.map_err(storage)?);
        }
        Ok(found)
    }

    /// A handle for one request (clones share the connection).
    fn conn(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// The bytes at a Redis key, `None` if it has none.
    async fn get_bytes(&self, key: String) -> Result<Option<Bytes>, BackendError> {
        ::redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.conn())
            .await
            .map_err(storage)
    }
}

/// Warns when the server would lose acknowledged writes on a restart. Best effort: a server
/// that refuses CONFIG (some managed ones do) is taken on trust.
async fn warn_unless_durable(connection: &mut MultiplexedConnection, url: &str) {
    let Some((appendonly, appendfsync)) = persistence(connection).await else {
        return;
    };
    if appendonly != "yes" || appendfsync != "always" {
        tracing::warn!(
            appendonly,
            appendfsync,
            "the Redis server at {url} may lose acknowledged writes if it restarts; \
             run it with appendonly yes and appendfsync always"
        );
    }
}

/// The server's `appendonly` and `appendfsync` settings, if it tells them.
async fn persistence(connection: &mut MultiplexedConnection) -> Option<(String, String)> {
    let mut config: HashMap<String, String> = ::redis::cmd("CONFIG")
        .arg("GET")
        .arg("append*")
        .query_async(connection)
        .await
        .ok()?;
    Some((config.remove("appendonly")?, config.remove("appendfsync")?))
}

fn storage(err: RedisError) -> BackendError {
    BackendError::Storage(format!("redis: {err}"))
}

/// `user`, checked to contain none of the separators the layout relies on.
fn checked_user(user: &str) -> Result<&str, BackendError> {
    if user.is_empty() || user.contains([':', '/']) {
        return Err(BackendError::Storage(format!(
            "invalid user name {user:?} for the Redis key layout"
        )));
    }
    Ok(user)
}

fn function_key(user: &str, function: &str) -> Result<String, BackendError> {
    Ok(format!("fwasm:fn:{}/{function}", checked_user(user)?))
}

/// API token records (hashes, never secrets) by token id, in one hash.
const TOKENS_KEY: &str = "fwasm:tokens";

/// Users' own quotas by user, in one hash.
const QUOTAS_KEY: &str = "fwasm:quotas";
/// Functions' snapshots: a hash of "user/function" to the encoded snapshot.
const SNAPSHOTS_KEY: &str = "fwasm:snapshots";

fn snapshot_field(user: &str, function: &str) -> String {
    format!("{user}/{function}")
}

/// The scheduler's call records by id, each with its own expiry.
fn call_key(id: u64) -> String {
    format!("fwasm:call:{id}")
}

/// Shared files by user and path (paths are canonical, so one path has one key). The common
/// files (user "") keep the keys they had before files had owners.
fn file_key(user: &str, path: &str) -> Result<String, BackendError> {
    Ok(match user {
        "" => format!("fwasm:file:{path}"),
        user => format!("fwasm:ufile:{}:{path}", checked_user(user)?),
    })
}

/// The paths of a user's files, or (user "") of the common files.
fn file_index(user: &str) -> Result<String, BackendError> {
    Ok(match user {
        "" => FILE_INDEX.to_string(),
        user => format!("fwasm:ufiles:{}", checked_user(user)?),
    })
}

fn module_key(module_hash: &str) -> String {
    format!("fwasm:mod:{module_hash}")
}

fn value_key(user: &str, key: &str) -> Result<String, BackendError> {
    Ok(format!("fwasm:v:{}:{key}", checked_user(user)?))
}

fn version_key(user: &str, key: &str) -> Result<String, BackendError> {
    Ok(format!("fwasm:ver:{}:{key}", checked_user(user)?))
}

fn sequence_key(user: &str, key: &str) -> Result<String, BackendError> {
    Ok(format!("fwasm:seq:{}:{key}", checked_user(user)?))
}

fn list_key(user: &str, key: &str) -> Result<String, BackendError> {
    Ok(format!("fwasm:a:{}:{key}", checked_user(user)?))
}

fn list_size_key(user: &str, key: &str) -> Result<String, BackendError> {
    Ok(format!("fwasm:ab:{}:{key}", checked_user(user)?))
}

fn lock_key(user: &str, key: &str) -> Result<String, BackendError> {
    Ok(format!("fwasm:lock:{}:{key}", checked_user(user)?))
}

/// Topics are names, which never contain `:`.
fn subscribers_key(user: &str, topic: &str) -> Result<String, BackendError> {
    Ok(format!("fwasm:sub:{}:{topic}", checked_user(user)?))
}

fn topics_key(user: &str) -> Result<String, BackendError> {
    Ok(format!("fwasm:topics:{}", checked_user(user)?))
}

/// What a user stores; the common files' (user "") under a name no user has.
fn usage_key(user: &str) -> Result<String, BackendError> {
    Ok(match user {
        "" => "fwasm:usage-common".to_string(),
        user => format!("fwasm:usage:{}", checked_user(user)?),
    })
}

fn keys_key(user: &str) -> Result<String, BackendError> {
    Ok(format!("fwasm:k:{}", checked_user(user)?))
}

#[async_trait]
impl Backend for RedisBackend {
    async fn put_function(
        &self,
        user: &str,
        function: &str,
        record: &FunctionRecord,
        wasm: Bytes,
        quota: StorageQuota,
    ) -> Result<(), BackendError> {
        let settings = record.settings.as_ref().map(|s| s.encode_to_vec());
        let written: i64 = self
            .put_function_script
            .key(module_key(&record.module_hash))
            .key(function_key(user, function)?)
            .key(usage_key(user)?)
            .arg(&record.module_hash)
            .arg(record.size)
            .arg(settings.unwrap_or_default())
            .arg(wasm.as_ref())
            .arg(quota.max_bytes)
            .arg(quota.max_functions)
            .arg(&record.abi)
            .arg(record.uploaded_at_ms)
            .invoke_async(&mut self.conn())
            .await
            .map_err(storage)?;
        match written {
            1 => Ok(()),
            -1 => Err(BackendError::OverStoredBytes {
                max: quota.max_bytes,
            }),
            _ => Err(BackendError::TooManyFunctions {
                max: quota.max_functions,
            }),
        }
    }

    async fn usage(&self, user: &str) -> Result<Usage, BackendError> {
        // Read signed: the common files' count goes below 0 when a file stored before counts
        // were kept is deleted (it is never checked), and no count should fail a read.
        let (bytes, functions): (Option<i64>, Option<i64>) = ::redis::cmd("HMGET")
            .arg(usage_key(user)?)
            .arg("bytes")
            .arg("functions")
            .query_async(&mut self.conn())
            .await
            .map_err(storage)?;
        Ok(Usage {
            bytes: bytes.unwrap_or(0).max(0) as u64,
            functions: functions.unwrap_or(0).max(0) as u64,
        })
    }

    async fn function(
        &self,
        user: &str,
        function: &str,
    ) -> Result<Option<FunctionRecord>, BackendError> {
        type Fields = (
            Option<String>,
            Option<u64>,
            Option<Vec<u8>>,
            Option<String>,
            Option<u64>,
        );
        let (module_hash, size, settings, abi, uploaded_at): Fields = ::redis::cmd("HMGET")
            .arg(function_key(user, function)?)
            .arg("module_hash")
            .arg("size")
            .arg("settings")
            .arg("abi")
            .arg("uploaded_at")
            .query_async(&mut self.conn())
            .await
            .map_err(storage)?;
        // Records from before settings existed have none: the defaults.
        let settings = match settings.filter(|bytes| !bytes.is_empty()) {
            Some(bytes) => Some(decode_settings(&bytes)?),
            None => None,
        };
        match (module_hash, size) {
            (Some(module_hash), Some(size)) => Ok(Some(FunctionRecord {
                module_hash,
                size,
                settings,
                // Records from before these were kept: not known.
                abi: abi.unwrap_or_default(),
                uploaded_at_ms: uploaded_at.unwrap_or(0),
            })),
            (None, None) => Ok(None),
            _ => Err(BackendError::Storage(format!(
                "redis: the record of {user}/{function} is incomplete"
            ))),
        }
    }

    async fn function_users(&self) -> Result<Vec<String>, BackendError> {
        let mut users: Vec<String> = self
            .keys_matching("fwasm:fn:*")
            .await?
            .into_iter()
            .filter_map(|key| {
                let name = key.strip_prefix("fwasm:fn:")?;
                Some(name.split_once('/')?.0.to_string())
            })
            .collect();
        users.sort();
        users.dedup();
        Ok(users)
    }

    async fn list_functions(
        &self,
        user: &str,
    ) -> Result<Vec<(String, FunctionRecord)>, BackendError> {
        // Names hold none of a glob's special characters, so the pattern matches only them.
        let prefix = function_key(user, "")?;
        let mut names: Vec<String> = self
            .keys_matching(&format!("{prefix}*"))
            .await?
            .into_iter()
            .filter_map(|key| key.strip_prefix(&prefix).map(str::to_string))
            .collect();
        // SCAN may give a key more than once.
        names.sort();
        names.dedup();
        let mut found = Vec::new();
        for name in names {
            // One deleted between the scan and the read is simply not there.
            if let Some(record) = self.function(user, &name).await? {
                found.push((name, record));
            }
        }
        Ok(found)
    }

    async fn delete_function(
        &self,
        user: &str,
        function: &str,
    ) -> Result<Option<FunctionRecord>, BackendError> {
        let Some(before) = self.function(user, function).await? else {
            return Ok(None);
        };
        let removed: i64 = self
            .delete_function_script
            .key(function_key(user, function)?)
            .key(usage_key(user)?)
            .invoke_async(&mut self.conn())
            .await
            .map_err(storage)?;
        Ok((removed == 1).then_some(before))
    }

    async fn module(&self, module_hash: &str) -> Result<Option<Bytes>, BackendError> {
        self.get_bytes(module_key(module_hash)).await
    }

    async fn get_versioned(
        &self,
        user: &str,
        key: &str,
    ) -> Result<Option<Versioned>, BackendError> {
        let (value, version): (Option<Bytes>, Option<u64>) = ::redis::cmd("MGET")
            .arg(value_key(user, key)?)
            .arg(version_key(user, key)?)
            .query_async(&mut self.conn())
            .await
            .map_err(storage)?;
        Ok(value.map(|value| Versioned {
            value,
            version: version.unwrap_or(0),
        }))
    }

    async fn state_size(&self, user: &str, key: &str) -> Result<u64, BackendError> {
        ::redis::cmd("STRLEN")
            .arg(value_key(user, key)?)
            .query_async(&mut self.conn())
            .await
            .map_err(storage)
    }

    async fn write_state(
        &self,
        user: &str,
        ops: Vec<StateOp>,
        max_keys: u64,
        quota: StorageQuota,
    ) -> Result<Vec<u64>, BackendError> {
        let mut invocation = self.write_script.key(keys_key(user)?);
        invocation.key(VERSION_COUNTER).arg(max_keys);
        for op in &ops {
            let key = op.key.as_str();
            invocation
                .key(value_key(user, key)?)
                .key(version_key(user, key)?)
                .key(list_key(user, key)?)
                .key(list_size_key(user, key)?);
            let expected = op
                .expected_version
                .map(|v| v.to_string())
                .unwrap_or_default();
            let kind = if op.value.is_some() { "set" } else { "del" };
            let value = op.value.as_deref().unwrap_or_default();
            invocation.arg(key).arg(kind).arg(expected).arg(value);
        }
        invocation.key(usage_key(user)?).arg(quota.max_bytes);
        let reply: Vec<i64> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(storage)?;
        match reply.split_first() {
            Some((1, versions)) => Ok(versions.iter().map(|&v| v as u64).collect()),
            Some((-1, [index])) => {
                let op = ops.get(*index as usize);
                let key = op.map(|op| op.key.clone()).unwrap_or_default();
                Err(BackendError::VersionMismatch { key })
            }
            Some((-2, [])) => Err(BackendError::TooManyKeys { max: max_keys }),
            Some((-3, [])) => Err(BackendError::OverStoredBytes {
                max: quota.max_bytes,
            }),
            _ => Err(BackendError::Storage(format!(
                "redis: unexpected reply {reply:?} to a state write"
            ))),
        }
    }

    async fn next_id(&self, user: &str, key: &str) -> Result<u64, BackendError> {
        ::redis::cmd("INCR")
            .arg(sequence_key(user, key)?)
            .query_async(&mut self.conn())
            .await
            .map_err(storage)
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
        let admitted: i64 = self
            .append_script
            .key(keys_key(user)?)
            .key(list_key(user, key)?)
            .key(list_size_key(user, key)?)
            .key(usage_key(user)?)
            .arg(key)
            .arg(max_keys)
            .arg(element.as_ref())
            .arg(max_list_bytes)
            .arg(quota.max_bytes)
            .invoke_async(&mut self.conn())
            .await
            .map_err(storage)?;
        match admitted {
            1 => Ok(()),
            0 => Err(BackendError::TooManyKeys { max: max_keys }),
            -2 => Err(BackendError::OverStoredBytes {
                max: quota.max_bytes,
            }),
            _ => Err(BackendError::ListFull {
                max: max_list_bytes,
            }),
        }
    }

    async fn read_appended(&self, user: &str, key: &str) -> Result<Vec<Bytes>, BackendError> {
        ::redis::cmd("LRANGE")
            .arg(list_key(user, key)?)
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn())
            .await
            .map_err(storage)
    }

    async fn clear_appended(&self, user: &str, key: &str) -> Result<(), BackendError> {
        self.clear_appended_script
            .key(keys_key(user)?)
            .key(value_key(user, key)?)
            .key(list_key(user, key)?)
            .key(list_size_key(user, key)?)
            .key(usage_key(user)?)
            .arg(key)
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map(drop)
            .map_err(storage)
    }

    async fn put_file(
        &self,
        user: &str,
        path: &str,
        data: Bytes,
        quota: StorageQuota,
    ) -> Result<(), BackendError> {
        let written: i64 = self
            .put_file_script
            .key(file_key(user, path)?)
            .key(file_index(user)?)
            .key(usage_key(user)?)
            .arg(path)
            .arg(data.as_ref())
            .arg(quota.max_bytes)
            .invoke_async(&mut self.conn())
            .await
            .map_err(storage)?;
        match written {
            1 => Ok(()),
            _ => Err(BackendError::OverStoredBytes {
                max: quota.max_bytes,
            }),
        }
    }

    async fn file(&self, user: &str, path: &str) -> Result<Option<Bytes>, BackendError> {
        self.get_bytes(file_key(user, path)?).await
    }

    async fn delete_file(&self, user: &str, path: &str) -> Result<bool, BackendError> {
        let deleted: i64 = self
            .delete_file_script
            .key(file_key(user, path)?)
            .key(file_index(user)?)
            .key(usage_key(user)?)
            .arg(path)
            .invoke_async(&mut self.conn())
            .await
            .map_err(storage)?;
        Ok(deleted == 1)
    }

    async fn list_keys(
        &self,
        user: &str,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, BackendError> {
        // The user's key set is unordered: read it whole (SSCAN, so the server is never
        // blocked; a user has at most its key limit), then order it.
        let mut keys: Vec<String> = self
            .set_members(keys_key(user)?)
            .await?
            .into_iter()
            .filter(|key| key.starts_with(prefix) && key.as_str() > after)
            .collect();
        keys.sort();
        keys.dedup();
        keys.truncate(limit);
        Ok(keys)
    }

    async fn list_files(
        &self,
        user: &str,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, BackendError> {
        let start = match after >= prefix {
            true => format!("({after}"),
            false => format!("[{prefix}"),
        };
        let mut conn = self.conn();
        let paths: Vec<String> = ::redis::cmd("ZRANGEBYLEX")
            .arg(file_index(user)?)
            .arg(start)
            .arg("+")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut conn)
            .await
            .map_err(storage)?;
        let paths: Vec<String> = paths
            .into_iter()
            .take_while(|path| path.starts_with(prefix))
            .collect();
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let mut sizes = ::redis::pipe();
        for path in &paths {
            sizes.cmd("STRLEN").arg(file_key(user, path)?);
        }
        let sizes: Vec<u64> = sizes.query_async(&mut conn).await.map_err(storage)?;
        Ok(paths.into_iter().zip(sizes).collect())
    }

    async fn set_subscription(
        &self,
        user: &str,
        topic: &str,
        function: &str,
        subscribed: bool,
    ) -> Result<bool, BackendError> {
        let (subscribers, topics) = (subscribers_key(user, topic)?, topics_key(user)?);
        let changed: u64 = if subscribed {
            let (added, _): (u64, u64) = ::redis::pipe()
                .atomic()
                .cmd("SADD")
                .arg(&subscribers)
                .arg(function)
                .cmd("SADD")
                .arg(&topics)
                .arg(topic)
                .query_async(&mut self.conn())
                .await
                .map_err(storage)?;
            added
        } else {
            self.unsubscribe_script
                .key(&subscribers)
                .key(&topics)
                .arg(function)
                .arg(topic)
                .invoke_async(&mut self.conn())
                .await
                .map_err(storage)?
        };
        Ok(changed == 1)
    }

    async fn subscriptions(
        &self,
        user: &str,
        topic: Option<&str>,
    ) -> Result<Vec<(String, String)>, BackendError> {
        let mut conn = self.conn();
        let topics: Vec<String> = match topic {
            Some(topic) => vec![topic.to_string()],
            None => ::redis::cmd("SMEMBERS")
                .arg(topics_key(user)?)
                .query_async(&mut conn)
                .await
                .map_err(storage)?,
        };
        if topics.is_empty() {
            return Ok(Vec::new());
        }
        let mut members = ::redis::pipe();
        for topic in &topics {
            members.cmd("SMEMBERS").arg(subscribers_key(user, topic)?);
        }
        let members: Vec<Vec<String>> = members.query_async(&mut conn).await.map_err(storage)?;
        let mut found: Vec<(String, String)> = topics
            .into_iter()
            .zip(members)
            .flat_map(|(topic, functions)| functions.into_iter().map(move |f| (topic.clone(), f)))
            .collect();
        found.sort();
        Ok(found)
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
        let mode = match mode {
            LockMode::Read => "r",
            LockMode::Write => "w",
        };
        let reply: Vec<i64> = self
            .lock_script
            .key(lock_key(user, key)?)
            .arg(holder)
            .arg(mode)
            .arg(lease.as_millis().max(1) as u64)
            .arg(if reentrant { "1" } else { "0" })
            .invoke_async(&mut self.conn())
            .await
            .map_err(storage)?;
        Ok(match reply.as_slice() {
            [1] => LockTry {
                granted: true,
                busy_for: None,
            },
            [0, busy] => LockTry {
                granted: false,
                busy_for: u64::try_from(*busy).ok().map(Duration::from_millis),
            },
            other => {
                return Err(BackendError::Storage(format!(
                    "the lock script answered {other:?}"
                )));
            }
        })
    }

    async fn unlock(&self, user: &str, key: &str, holder: &str) -> Result<Unlocked, BackendError> {
        let found: i64 = self
            .unlock_script
            .key(lock_key(user, key)?)
            .arg(holder)
            .invoke_async(&mut self.conn())
            .await
            .map_err(storage)?;
        Ok(match found {
            0 => Unlocked::Released,
            2 => Unlocked::HeldByOthers,
            _ => Unlocked::NotLocked,
        })
    }

    async fn save_call(&self, id: u64, record: Bytes, ttl: Duration) -> Result<(), BackendError> {
        ::redis::cmd("SET")
            .arg(call_key(id))
            .arg(record.as_ref())
            .arg("EX")
            .arg(ttl.as_secs().max(1))
            .query_async(&mut self.conn())
            .await
            .map_err(storage)
    }

    async fn call(&self, id: u64) -> Result<Option<Bytes>, BackendError> {
        self.get_bytes(call_key(id)).await
    }

    async fn put_token(&self, id: &str, record: Bytes) -> Result<(), BackendError> {
        ::redis::cmd("HSET")
            .arg(TOKENS_KEY)
            .arg(id)
            .arg(record.as_ref())
            .query_async(&mut self.conn())
            .await
            .map_err(storage)
    }

    async fn token(&self, id: &str) -> Result<Option<Bytes>, BackendError> {
        ::redis::cmd("HGET")
            .arg(TOKENS_KEY)
            .arg(id)
            .query_async(&mut self.conn())
            .await
            .map_err(storage)
    }

    async fn delete_token(&self, id: &str) -> Result<bool, BackendError> {
        let removed: u64 = ::redis::cmd("HDEL")
            .arg(TOKENS_KEY)
            .arg(id)
            .query_async(&mut self.conn())
            .await
            .map_err(storage)?;
        Ok(removed == 1)
    }

    async fn tokens(&self) -> Result<Vec<Bytes>, BackendError> {
        ::redis::cmd("HVALS")
            .arg(TOKENS_KEY)
            .query_async(&mut self.conn())
            .await
            .map_err(storage)
    }

    async fn put_quota(&self, user: &str, quota: Option<Bytes>) -> Result<(), BackendError> {
        let command = match quota {
            Some(quota) => {
                let mut command = ::redis::cmd("HSET");
                command.arg(QUOTAS_KEY).arg(user).arg(quota.as_ref());
                command
            }
            None => {
                let mut command = ::redis::cmd("HDEL");
                command.arg(QUOTAS_KEY).arg(user);
                command
            }
        };
        let _: u64 = command
            .query_async(&mut self.conn())
            .await
            .map_err(storage)?;
        Ok(())
    }

    async fn quotas(&self) -> Result<Vec<Bytes>, BackendError> {
        ::redis::cmd("HVALS")
            .arg(QUOTAS_KEY)
            .query_async(&mut self.conn())
            .await
            .map_err(storage)
    }

    async fn put_snapshot(
        &self,
        user: &str,
        function: &str,
        record: Bytes,
    ) -> Result<(), BackendError> {
        ::redis::cmd("HSET")
            .arg(SNAPSHOTS_KEY)
            .arg(snapshot_field(user, function))
            .arg(record.as_ref())
            .query_async(&mut self.conn())
            .await
            .map_err(storage)
    }

    async fn snapshot(&self, user: &str, function: &str) -> Result<Option<Bytes>, BackendError> {
        ::redis::cmd("HGET")
            .arg(SNAPSHOTS_KEY)
            .arg(snapshot_field(user, function))
            .query_async(&mut self.conn())
            .await
            .map_err(storage)
    }

    async fn delete_snapshot(&self, user: &str, function: &str) -> Result<(), BackendError> {
        ::redis::cmd("HDEL")
            .arg(SNAPSHOTS_KEY)
            .arg(snapshot_field(user, function))
            .query_async(&mut self.conn())
            .await
            .map_err(storage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn different_user_key_pairs_never_share_a_redis_key() {
        let pairs = [
            ("a", "b:c"),
            ("a:b", "c"),
            ("a", "b"),
            ("ab", ""),
            ("a", ":b"),
        ];
        let mut seen = std::collections::HashSet::new();
        for (user, key) in pairs {
            match value_key(user, key) {
                Ok(redis_key) => assert!(seen.insert(redis_key), "{user:?} {key:?}"),
                Err(_) => assert!(user.contains(':'), "{user:?} refused"),
            }
        }
        assert!(checked_user("a:b").is_err());
        assert!(checked_user("a/b").is_err());
        assert!(checked_user("user_1.x-y").is_ok());
    }

    #[tokio::test]
    async fn reads_the_persistence_settings() {
        let server = redis_harness::RedisServer::start();
        let client = Client::open(server.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        // The harness runs without persistence: exactly what `connect` warns about.
        assert_eq!(
            persistence(&mut connection).await,
            Some(("no".to_string(), "everysec".to_string()))
        );
    }

    #[tokio::test]
    async fn a_bad_address_is_reported_at_connect() {
        // Port 1 on loopback: nothing listens there.
        let err = RedisBackend::connect("redis://127.0.0.1:1")
            .await
            .err()
            .expect("connect fails");
        let message = err.to_string();
        assert!(
            message.starts_with("cannot open the store at redis://127.0.0.1:1")
                && message.contains("is redis-server running at redis://127.0.0.1:1?"),
            "{message}"
        );
        let err = RedisBackend::connect("http://nope").await.err().unwrap();
        assert!(err.to_string().contains("not a valid Redis URL"), "{err}");
    }
}
