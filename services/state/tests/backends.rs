//! Conformance tests of the [`Backend`] contract: every scenario is written once and run against
//! each backend, the embedded store (on a temporary directory) and Redis (a throwaway
//! `redis-server` per test, from `redis-harness`).
//!
//! `cargo test -p fwasm-state --test backends embedded::` (or `redis::`) runs one backend.

use std::any::Any;
use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use std::time::Duration;

use fwasm_state::{
    Backend, BackendError, EmbeddedBackend, FunctionRecord, LockMode, RedisBackend, StateOp,
    StorageQuota, Unlocked, Usage, Versioned,
};
use redis_harness::RedisServer;

/// A backend and whatever must outlive it (its directory or its server).
struct Fixture {
    backend: Arc<dyn Backend>,
    _keep: Box<dyn Any>,
}

async fn embedded_fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let backend = EmbeddedBackend::open(dir.path()).expect("open the embedded store");
    Fixture {
        backend: Arc::new(backend),
        _keep: Box::new(dir),
    }
}

async fn redis_fixture() -> Fixture {
    let server = RedisServer::start();
    let backend = RedisBackend::connect(&server.url())
        .await
        .expect("connect to the test redis-server");
    Fixture {
        backend: Arc::new(backend),
        _keep: Box::new(server),
    }
}

/// Writes one test per scenario per backend: `embedded::SCENARIO` and `redis::SCENARIO`.
macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let fixture = super::embedded_fixture().await;
                    super::$scenario(fixture.backend.clone()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let fixture = super::redis_fixture().await;
                    super::$scenario(fixture.backend.clone()).await;
                }
            )*
        }
    };
}

conformance!(
    a_missing_key_is_empty,
    an_append_list_is_capped_in_bytes,
    set_get_overwrite_and_size,
    delete_removes_value_and_list,
    appends_keep_their_order,
    clear_appended_keeps_the_value,
    keys_are_per_user_and_never_collide,
    the_key_limit_counts_existing_keys,
    concurrent_appends_all_land,
    concurrent_new_keys_respect_the_limit,
    functions_and_modules_round_trip,
    files_round_trip,
    call_records_round_trip_and_expire,
    versions_change_on_every_write_and_never_come_back,
    a_write_expecting_another_version_writes_nothing,
    a_transaction_applies_whole_or_not_at_all,
    a_transaction_is_held_to_the_key_limit_as_a_whole,
    concurrent_transactions_are_never_seen_half_applied,
    sequences_start_at_one_and_never_repeat,
    locks_exclude_expire_and_say_who_holds_them,
    files_are_listed_by_prefix_a_page_at_a_time_and_deleted,
    files_are_per_user_and_never_collide,
    usage_is_kept_with_every_write,
    storage_quotas_refuse_growth_and_only_growth,
    subscriptions_are_kept_per_user_topic_and_function,
    tokens_are_kept_by_id_replaced_and_deleted,
    quotas_are_kept_per_user_and_removed,
    snapshots_are_kept_one_per_function_and_replaced,
    functions_are_listed_per_user_and_deleted_giving_back_their_usage,
    keys_are_listed_per_user_by_prefix_a_page_at_a_time,
);

/// A user's keys are listed in order, by prefix and a page at a time; a deleted key is gone;
/// a key with only an append list counts; other users' keys never show.
async fn keys_are_listed_per_user_by_prefix_a_page_at_a_time(store: Arc<dyn Backend>) {
    for key in ["b/2", "a", "b/1", "c"] {
        store
            .set_state("u", key, b("v"), NO_LIMIT, NO_QUOTA)
            .await
            .unwrap();
    }
    store
        .append_state("u", "b/3", b("x"), NO_LIMIT, NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    store
        .set_state("u0", "b/9", b("v"), NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    let list = async |prefix: &str, after: &str, limit: usize| {
        store.list_keys("u", prefix, after, limit).await.unwrap()
    };
    assert_eq!(list("", "", 10).await, ["a", "b/1", "b/2", "b/3", "c"]);
    assert_eq!(list("b/", "", 10).await, ["b/1", "b/2", "b/3"]);
    assert_eq!(list("b/", "", 2).await, ["b/1", "b/2"]);
    assert_eq!(list("b/", "b/2", 2).await, ["b/3"]);
    assert_eq!(list("", "c", 10).await, Vec::<String>::new());
    store.delete_state("u", "b/1").await.unwrap();
    assert_eq!(list("b/", "", 10).await, ["b/2", "b/3"]);
    assert_eq!(store.list_keys("u0", "", "", 10).await.unwrap(), ["b/9"]);
}

/// A user's functions are listed by name, with what their upload found; a deleted one is
/// gone from the listing and its lookups, and what it stored leaves the user's usage. Another
/// user's functions, and names that share a prefix, are untouched. The users with functions
/// are listed once each.
async fn functions_are_listed_per_user_and_deleted_giving_back_their_usage(
    store: Arc<dyn Backend>,
) {
    let module = |size: usize| Bytes::from(vec![1u8; size]);
    for (user, name, size) in [
        ("u", "b", 20),
        ("u", "a", 10),
        ("u", "a-longer", 5),
        ("u0", "x", 7),
        ("uu", "y", 3),
    ] {
        let hash = format!("h{size}");
        store
            .put_function(
                user,
                name,
                &record(&hash, size),
                module(size as usize),
                NO_QUOTA,
            )
            .await
            .unwrap();
    }
    let names = |list: Vec<(String, FunctionRecord)>| -> Vec<String> {
        list.into_iter().map(|(name, _)| name).collect()
    };
    let listed = store.list_functions("u").await.unwrap();
    assert_eq!(listed[0].1, record("h10", 10));
    assert_eq!(names(listed), ["a", "a-longer", "b"]);
    assert_eq!(store.usage("u").await.unwrap(), usage(35, 3));

    let removed = store.delete_function("u", "a").await.unwrap();
    assert_eq!(removed, Some(record("h10", 10)));
    assert_eq!(store.function("u", "a").await.unwrap(), None);
    assert_eq!(
        names(store.list_functions("u").await.unwrap()),
        ["a-longer", "b"]
    );
    assert_eq!(store.usage("u").await.unwrap(), usage(25, 2));
    assert_eq!(store.delete_function("u", "a").await.unwrap(), None);
    // The module stays: another function may point at it.
    assert!(store.module("h10").await.unwrap().is_some());
    assert_eq!(names(store.list_functions("u0").await.unwrap()), ["x"]);
    assert_eq!(names(store.list_functions("uu").await.unwrap()), ["y"]);
    assert!(store.list_functions("nobody").await.unwrap().is_empty());
    // Each user with functions once, in order (u's deleted one does not matter).
    assert_eq!(store.function_users().await.unwrap(), ["u", "u0", "uu"]);
    store.delete_function("u0", "x").await.unwrap();
    assert_eq!(store.function_users().await.unwrap(), ["u", "uu"]);
}

async fn snapshots_are_kept_one_per_function_and_replaced(store: Arc<dyn Backend>) {
    assert_eq!(store.snapshot("a", "f").await.unwrap(), None);
    // Megabytes, as a snapshot of a real initialisation is.
    let big = Bytes::from(vec![7u8; 4 << 20]);
    store.put_snapshot("a", "f", big.clone()).await.unwrap();
    store.put_snapshot("a", "g", b("other")).await.unwrap();
    store.put_snapshot("b", "f", b("user b's")).await.unwrap();
    assert_eq!(store.snapshot("a", "f").await.unwrap(), Some(big));
    store.put_snapshot("a", "f", b("replaced")).await.unwrap();
    assert_eq!(store.snapshot("a", "f").await.unwrap(), Some(b("replaced")));
    assert_eq!(store.snapshot("a", "g").await.unwrap(), Some(b("other")));
    assert_eq!(store.snapshot("b", "f").await.unwrap(), Some(b("user b's")));
    assert_eq!(store.snapshot("b", "g").await.unwrap(), None);
    store.delete_snapshot("a", "f").await.unwrap();
    store.delete_snapshot("a", "never").await.unwrap();
    assert_eq!(store.snapshot("a", "f").await.unwrap(), None);
    assert_eq!(store.snapshot("a", "g").await.unwrap(), Some(b("other")));
}

async fn quotas_are_kept_per_user_and_removed(store: Arc<dyn Backend>) {
    assert_eq!(store.quotas().await.unwrap(), Vec::<Bytes>::new());
    store.put_quota("a", Some(b("one"))).await.unwrap();
    store.put_quota("b", Some(b("two"))).await.unwrap();
    store.put_quota("a", Some(b("three"))).await.unwrap();
    let mut all = store.quotas().await.unwrap();
    all.sort();
    assert_eq!(all, [b("three"), b("two")]);
    store.put_quota("a", None).await.unwrap();
    store.put_quota("never", None).await.unwrap();
    assert_eq!(store.quotas().await.unwrap(), [b("two")]);
}

async fn tokens_are_kept_by_id_replaced_and_deleted(store: Arc<dyn Backend>) {
    assert_eq!(store.token("a1").await.unwrap(), None);
    assert_eq!(store.tokens().await.unwrap(), Vec::<Bytes>::new());
    store.put_token("a1", b("first")).await.unwrap();
    store.put_token("b2", b("second")).await.unwrap();
    store.put_token("a1", b("replaced")).await.unwrap();
    assert_eq!(store.token("a1").await.unwrap(), Some(b("replaced")));
    let mut all = store.tokens().await.unwrap();
    all.sort();
    assert_eq!(all, [b("replaced"), b("second")]);
    assert!(store.delete_token("a1").await.unwrap());
    assert!(!store.delete_token("a1").await.unwrap(), "gone");
    assert_eq!(store.token("a1").await.unwrap(), None);
    assert_eq!(store.tokens().await.unwrap(), [b("second")]);
}

async fn subscriptions_are_kept_per_user_topic_and_function(store: Arc<dyn Backend>) {
    let pair = |topic: &str, function: &str| (topic.to_string(), function.to_string());
    // Whether subscribing (or unsubscribing) `user/function` to `topic` changed anything.
    let set = async |user: &str, topic: &str, function: &str, on: bool| {
        let changed = store.set_subscription(user, topic, function, on).await;
        changed.unwrap()
    };
    assert!(set("u", "orders", "ship", true).await);
    assert!(!set("u", "orders", "ship", true).await, "once");
    assert!(set("u", "orders", "bill", true).await);
    assert!(set("u", "returns", "ship", true).await);
    assert!(set("v", "orders", "other", true).await);
    assert_eq!(
        store.subscriptions("u", Some("orders")).await.unwrap(),
        [pair("orders", "bill"), pair("orders", "ship")]
    );
    assert_eq!(
        store.subscriptions("u", None).await.unwrap(),
        [
            pair("orders", "bill"),
            pair("orders", "ship"),
            pair("returns", "ship")
        ]
    );
    assert!(set("u", "orders", "bill", false).await);
    assert!(!set("u", "orders", "bill", false).await, "gone");
    assert_eq!(
        store.subscriptions("u", Some("orders")).await.unwrap(),
        [pair("orders", "ship")]
    );
    assert_eq!(store.subscriptions("w", None).await.unwrap(), []);
}

async fn locks_exclude_expire_and_say_who_holds_them(store: Arc<dyn Backend>) {
    use LockMode::{Read, Write};
    let lease = Duration::from_secs(30);
    let lock = async |key: &str, holder: &str, mode, reentrant| {
        let tried = store
            .try_lock("u", key, holder, mode, lease, reentrant)
            .await;
        tried.unwrap().granted
    };
    assert!(lock("k", "a", Read, true).await);
    assert!(lock("k", "b", Read, true).await, "readers share");
    assert!(!lock("k", "c", Write, true).await);
    assert!(
        !lock("k", "a", Write, true).await,
        "no upgrade past another reader"
    );
    assert!(
        !lock("k", "a", Read, false).await,
        "not reentrant when asked"
    );
    assert_eq!(
        store.unlock("u", "k", "c").await.unwrap(),
        Unlocked::HeldByOthers
    );
    assert_eq!(
        store.unlock("u", "k", "b").await.unwrap(),
        Unlocked::Released
    );
    assert!(
        lock("k", "a", Write, true).await,
        "the last reader upgrades"
    );
    assert!(!lock("k", "b", Read, true).await, "held to write");
    assert!(
        lock("k", "a", Read, true).await,
        "a renewal keeps the write"
    );
    assert!(!lock("k", "b", Read, true).await, "still held to write");
    let other = store.try_lock("other", "k", "b", Write, lease, false).await;
    assert!(other.unwrap().granted, "another user's key is another lock");
    assert_eq!(
        store.unlock("u", "k", "a").await.unwrap(),
        Unlocked::Released
    );
    assert_eq!(
        store.unlock("u", "k", "a").await.unwrap(),
        Unlocked::NotLocked
    );

    // A hold ends with its lease; a refusal says when the first other lease ends.
    // Long enough that the refused try surely comes before it ends, on a loaded machine too.
    let short = Duration::from_secs(3);
    assert!(
        store
            .try_lock("u", "t", "a", Write, short, false)
            .await
            .unwrap()
            .granted
    );
    let refused = store
        .try_lock("u", "t", "b", Write, lease, false)
        .await
        .unwrap();
    let busy_for = refused.busy_for.expect("a lease that ends");
    assert!(!refused.granted && busy_for <= short, "{busy_for:?}");
    tokio::time::sleep(busy_for + Duration::from_millis(50)).await;
    assert!(
        store
            .try_lock("u", "t", "b", Write, lease, false)
            .await
            .unwrap()
            .granted
    );
    assert_eq!(
        store.unlock("u", "t", "a").await.unwrap(),
        Unlocked::HeldByOthers
    );
}

async fn files_are_listed_by_prefix_a_page_at_a_time_and_deleted(store: Arc<dyn Backend>) {
    for path in ["docs/b.txt", "docs/a.txt", "docs2/c.txt", "data/d.txt"] {
        store.put_file("u", path, b(path), NO_QUOTA).await.unwrap();
    }
    let list = async |prefix: &str, after: &str, limit| {
        store.list_files("u", prefix, after, limit).await.unwrap()
    };
    let size = "docs/a.txt".len() as u64;
    assert_eq!(
        list("docs/", "", 10).await,
        [
            ("docs/a.txt".to_string(), size),
            ("docs/b.txt".to_string(), size)
        ]
    );
    assert_eq!(
        list("docs/", "", 1).await,
        [("docs/a.txt".to_string(), size)]
    );
    assert_eq!(
        list("docs/", "docs/a.txt", 1).await,
        [("docs/b.txt".to_string(), size)]
    );
    assert_eq!(list("docs/", "docs/b.txt", 1).await, []);
    assert_eq!(list("", "", 10).await.len(), 4);
    assert!(store.delete_file("u", "docs/a.txt").await.unwrap());
    assert!(
        !store.delete_file("u", "docs/a.txt").await.unwrap(),
        "gone already"
    );
    assert_eq!(store.file("u", "docs/a.txt").await.unwrap(), None);
    assert_eq!(
        list("docs/", "", 10).await,
        [("docs/b.txt".to_string(), size)]
    );
}

/// A user's files, another user's and the common files (user "") at the same paths are three
/// files, listed and deleted apart.
async fn files_are_per_user_and_never_collide(store: Arc<dyn Backend>) {
    // "a/x" of the common files and "x" of user "a" would share a key in a naive layout.
    store
        .put_file("", "a/x", b("common a/x"), NO_QUOTA)
        .await
        .unwrap();
    store
        .put_file("a", "x", b("a's x"), NO_QUOTA)
        .await
        .unwrap();
    store
        .put_file("a", "a/x", b("a's a/x"), NO_QUOTA)
        .await
        .unwrap();
    store
        .put_file("b", "a/x", b("b's a/x"), NO_QUOTA)
        .await
        .unwrap();
    store
        .put_file("ab", "x", b("ab's x"), NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(store.file("", "a/x").await.unwrap(), Some(b("common a/x")));
    assert_eq!(store.file("a", "x").await.unwrap(), Some(b("a's x")));
    assert_eq!(store.file("a", "a/x").await.unwrap(), Some(b("a's a/x")));
    assert_eq!(store.file("b", "a/x").await.unwrap(), Some(b("b's a/x")));
    assert_eq!(store.file("b", "x").await.unwrap(), None);
    assert_eq!(store.file("", "x").await.unwrap(), None);
    let paths = async |user: &str| -> Vec<String> {
        let listed = store.list_files(user, "", "", 10).await.unwrap();
        listed.into_iter().map(|(path, _)| path).collect()
    };
    assert_eq!(paths("").await, ["a/x"]);
    assert_eq!(paths("a").await, ["a/x", "x"]);
    assert_eq!(paths("ab").await, ["x"]);
    assert_eq!(paths("b").await, ["a/x"]);
    assert!(!store.delete_file("b", "x").await.unwrap());
    assert!(store.delete_file("a", "a/x").await.unwrap());
    assert_eq!(store.file("b", "a/x").await.unwrap(), Some(b("b's a/x")));
    assert_eq!(store.file("", "a/x").await.unwrap(), Some(b("common a/x")));
    assert_eq!(paths("a").await, ["x"]);
}

/// A Redis list from before list sizes were kept (no size key) is measured at its next append,
/// and the size is kept even when that append is refused.
/// A plain connection to the test server, beside the backend's.
async fn raw_connection(server: &RedisServer) -> ::redis::aio::MultiplexedConnection {
    let client = ::redis::Client::open(server.url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// Runs `commands` on the server directly: data laid out as an earlier fwasm wrote it.
async fn as_older_fwasm_left_it(server: &RedisServer, commands: &[&[&str]]) {
    let mut raw = raw_connection(server).await;
    for command in commands {
        let mut cmd = ::redis::cmd(command[0]);
        for arg in &command[1..] {
            cmd.arg(*arg);
        }
        cmd.query_async::<()>(&mut raw).await.unwrap();
    }
}

/// What users stored in a Redis database before usage was kept is counted when a state
/// service connects.
#[tokio::test]
async fn redis_usage_from_before_it_was_kept_is_counted() {
    let server = RedisServer::start();
    as_older_fwasm_left_it(
        &server,
        &[
            &["HSET", "fwasm:fn:u/f", "module_hash", "h", "size", "5"],
            &["HSET", "fwasm:fn:u/g", "module_hash", "h", "size", "5"],
            &["SET", "fwasm:v:u:k", "abc"],
            &["RPUSH", "fwasm:a:u:l", "de"],
            &["SET", "fwasm:ab:u:l", "2"],
            // From before list sizes were kept: measured as it is counted.
            &["RPUSH", "fwasm:a:u:old", "1234"],
            &["SET", "fwasm:ufile:u:x", "123456"],
            &["SET", "fwasm:v:v:k", "1"],
        ],
    )
    .await;
    let store = RedisBackend::connect(&server.url()).await.unwrap();
    assert_eq!(
        store.usage("u").await.unwrap(),
        usage(5 + 5 + 3 + 2 + 4 + 6, 2)
    );
    store.clear_appended("u", "old").await.unwrap();
    assert_eq!(store.usage("u").await.unwrap(), usage(5 + 5 + 3 + 2 + 6, 2));
    assert_eq!(store.usage("v").await.unwrap(), usage(1, 0));
    drop(store);
    // Counted once: a later write counts from there.
    let store = RedisBackend::connect(&server.url()).await.unwrap();
    store
        .set_state("v", "k", b("12"), NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(store.usage("v").await.unwrap(), usage(2, 0));
}

#[tokio::test]
async fn redis_lists_without_a_size_are_measured() {
    let server = RedisServer::start();
    let store = RedisBackend::connect(&server.url()).await.unwrap();
    as_older_fwasm_left_it(&server, &[&["RPUSH", "fwasm:a:u:log", "12345", "678"]]).await;
    let refused = store
        .append_state("u", "log", b("abc"), NO_LIMIT, 10, NO_QUOTA)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, BackendError::ListFull { max: 10 }),
        "{refused}"
    );
    let mut raw = raw_connection(&server).await;
    let size: u64 = ::redis::cmd("GET")
        .arg("fwasm:ab:u:log")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(size, 8);
    store
        .append_state("u", "log", b("ab"), NO_LIMIT, 10, NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(
        store.read_appended("u", "log").await.unwrap(),
        vec![b("12345"), b("678"), b("ab")]
    );
    // Counted once measured, so clearing it takes off as much as it added.
    assert_eq!(store.usage("u").await.unwrap(), usage(10, 0));
    store.clear_appended("u", "log").await.unwrap();
    assert_eq!(store.usage("u").await.unwrap(), usage(0, 0));
}

async fn call_records_round_trip_and_expire(store: Arc<dyn Backend>) {
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(store.call(7).await.unwrap(), None);
    store.save_call(7, b("running"), hour).await.unwrap();
    store.save_call(7, b("done"), hour).await.unwrap();
    assert_eq!(store.call(7).await.unwrap(), Some(b("done")));
    store
        .save_call(8, b("short"), std::time::Duration::from_secs(1))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(store.call(8).await.unwrap(), None, "expired");
}

async fn files_round_trip(store: Arc<dyn Backend>) {
    assert_eq!(store.file("u", "data/a.txt").await.unwrap(), None);
    store
        .put_file("u", "data/a.txt", b("one"), NO_QUOTA)
        .await
        .unwrap();
    store
        .put_file("u", "data/a.txt", b("two"), NO_QUOTA)
        .await
        .unwrap();
    store
        .put_file("u", "data/b.txt", b(""), NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(store.file("u", "data/a.txt").await.unwrap(), Some(b("two")));
    assert_eq!(store.file("u", "data/b.txt").await.unwrap(), Some(b("")));
}

const NO_LIMIT: u64 = u64::MAX;
const NO_QUOTA: StorageQuota = StorageQuota::NONE;

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn record(hash: &str, size: u64) -> FunctionRecord {
    FunctionRecord {
        module_hash: hash.into(),
        size,
        settings: None,
        abi: "fwasm v1".into(),
        uploaded_at_ms: 1_765_000_000_000,
    }
}

fn assert_too_many_keys<T: std::fmt::Debug>(result: Result<T, BackendError>, max: u64) {
    match result {
        Err(BackendError::TooManyKeys { max: got }) => assert_eq!(got, max),
        other => panic!("expected TooManyKeys {{ max: {max} }}, got {other:?}"),
    }
}

fn usage(bytes: u64, functions: u64) -> Usage {
    Usage { bytes, functions }
}

/// Every write that changes what a user stores changes its usage by as much, and only its.
async fn usage_is_kept_with_every_write(store: Arc<dyn Backend>) {
    let used = async || store.usage("u").await.unwrap();
    assert_eq!(used().await, usage(0, 0));
    let module = |size: usize| Bytes::from(vec![0u8; size]);
    let f = record("h10", 10);
    store
        .put_function("u", "f", &f, module(10), NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(used().await, usage(10, 1));
    let smaller = record("h4", 4);
    store
        .put_function("u", "f", &smaller, module(4), NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(used().await, usage(4, 1), "a replaced function counts once");
    // The same module under two names counts for each.
    store
        .put_function("u", "g", &smaller, module(4), NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(used().await, usage(8, 2));

    store
        .set_state("u", "k", b("12345"), NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(used().await, usage(13, 2));
    store
        .set_state("u", "k", b("12"), NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(used().await, usage(10, 2));
    store
        .append_state("u", "k", b("abc"), NO_LIMIT, NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(used().await, usage(13, 2));
    store.clear_appended("u", "k").await.unwrap();
    assert_eq!(used().await, usage(10, 2));
    store
        .append_state("u", "k", b("abc"), NO_LIMIT, NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    // A transaction counts as a whole: a set, and a delete of the value and its list.
    let ops = vec![StateOp::set("a", b("1234")), StateOp::delete("k")];
    store
        .write_state("u", ops, NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(used().await, usage(12, 2));
    store.delete_state("u", "a").await.unwrap();
    store.delete_state("u", "never-set").await.unwrap();
    assert_eq!(used().await, usage(8, 2));

    store
        .put_file("u", "x.txt", b("123456"), NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(used().await, usage(14, 2));
    store
        .put_file("u", "x.txt", b("1"), NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(used().await, usage(9, 2));
    assert!(store.delete_file("u", "x.txt").await.unwrap());
    assert!(!store.delete_file("u", "x.txt").await.unwrap());
    assert_eq!(used().await, usage(8, 2));

    assert_eq!(
        store.usage("v").await.unwrap(),
        usage(0, 0),
        "another user's"
    );
    store
        .put_file("", "common.txt", b("123"), NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(used().await, usage(8, 2), "the common files are no user's");
}

fn assert_over_bytes<T: std::fmt::Debug>(result: Result<T, BackendError>, max: u64) {
    match result {
        Err(BackendError::OverStoredBytes { max: got }) => assert_eq!(got, max),
        other => panic!("expected OverStoredBytes {{ max: {max} }}, got {other:?}"),
    }
}

/// A write that would take a user past its quota is refused whole, and nothing changes; a
/// write that shrinks what it stores is never refused, even over the quota.
async fn storage_quotas_refuse_growth_and_only_growth(store: Arc<dyn Backend>) {
    let tight = StorageQuota {
        max_bytes: 10,
        max_functions: 1,
    };
    store
        .put_function("u", "f", &record("h4", 4), Bytes::from(vec![0u8; 4]), tight)
        .await
        .unwrap();
    match store
        .put_function("u", "g", &record("h1", 1), b("1"), tight)
        .await
    {
        Err(BackendError::TooManyFunctions { max: 1 }) => {}
        other => panic!("expected TooManyFunctions {{ max: 1 }}, got {other:?}"),
    }
    assert_eq!(store.function("u", "g").await.unwrap(), None);
    let too_big = record("h11", 11);
    assert_over_bytes(
        store
            .put_function("u", "f", &too_big, b("1234567"), tight)
            .await,
        10,
    );
    assert_eq!(store.function("u", "f").await.unwrap().unwrap().size, 4);
    store
        .set_state("u", "k", b("123456"), NO_LIMIT, tight)
        .await
        .unwrap();
    assert_eq!(
        store.usage("u").await.unwrap(),
        usage(10, 1),
        "exactly the quota"
    );
    assert_over_bytes(store.set_state("u", "n", b("1"), NO_LIMIT, tight).await, 10);
    assert_over_bytes(
        store
            .append_state("u", "k", b("1"), NO_LIMIT, NO_LIMIT, tight)
            .await,
        10,
    );
    assert_over_bytes(store.put_file("u", "x", b("1"), tight).await, 10);
    let grows = vec![StateOp::delete("k"), StateOp::set("n", b("1234567"))];
    assert_over_bytes(store.write_state("u", grows, NO_LIMIT, tight).await, 10);
    assert_eq!(store.get_state("u", "k").await.unwrap(), Some(b("123456")));
    assert_eq!(store.get_state("u", "n").await.unwrap(), None);
    assert_eq!(store.file("u", "x").await.unwrap(), None);
    assert_eq!(store.usage("u").await.unwrap(), usage(10, 1), "unchanged");
    // Net growth is what counts: a transaction that frees as much as it adds passes.
    let even = vec![StateOp::delete("k"), StateOp::set("n", b("654321"))];
    store.write_state("u", even, NO_LIMIT, tight).await.unwrap();
    // Over a quota lowered since, shrinking still passes, growing not.
    let lower = StorageQuota {
        max_bytes: 2,
        ..tight
    };
    store
        .set_state("u", "n", b("1"), NO_LIMIT, lower)
        .await
        .unwrap();
    assert_eq!(store.usage("u").await.unwrap(), usage(5, 1));
    assert_over_bytes(store.set_state("u", "n", b("12"), NO_LIMIT, lower).await, 2);
    // Another user is under its own quota, whatever this one stores.
    store
        .set_state("v", "k", b("12"), NO_LIMIT, lower)
        .await
        .unwrap();
}

async fn a_missing_key_is_empty(store: Arc<dyn Backend>) {
    assert_eq!(store.get_state("u", "missing").await.unwrap(), None);
    assert_eq!(store.state_size("u", "missing").await.unwrap(), 0);
    assert!(
        store
            .read_appended("u", "missing")
            .await
            .unwrap()
            .is_empty()
    );
    // Clearing or deleting what is not there is not an error, and creates nothing.
    store.clear_appended("u", "missing").await.unwrap();
    store.delete_state("u", "missing").await.unwrap();
    assert_eq!(store.get_state("u", "missing").await.unwrap(), None);
    // ...and takes no room under the key limit.
    store
        .set_state("u", "only", b("x"), 1, NO_QUOTA)
        .await
        .unwrap();
}

async fn set_get_overwrite_and_size(store: Arc<dyn Backend>) {
    store
        .set_state("u", "k", b("v1"), NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(store.get_state("u", "k").await.unwrap(), Some(b("v1")));
    assert_eq!(store.state_size("u", "k").await.unwrap(), 2);

    store
        .set_state("u", "k", b("a longer value"), NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(
        store.get_state("u", "k").await.unwrap(),
        Some(b("a longer value"))
    );
    assert_eq!(store.state_size("u", "k").await.unwrap(), 14);

    // Values are bytes, not text.
    let binary: Bytes = (0..=255u8).collect::<Vec<u8>>().into();
    store
        .set_state("u", "bin", binary.clone(), NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(store.get_state("u", "bin").await.unwrap(), Some(binary));
    assert_eq!(store.state_size("u", "bin").await.unwrap(), 256);

    // An empty value is a value.
    store
        .set_state("u", "empty", Bytes::new(), NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(
        store.get_state("u", "empty").await.unwrap(),
        Some(Bytes::new())
    );
    assert_eq!(store.state_size("u", "empty").await.unwrap(), 0);
}

async fn delete_removes_value_and_list(store: Arc<dyn Backend>) {
    store
        .set_state("u", "k", b("v"), NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    store
        .append_state("u", "k", b("e1"), NO_LIMIT, NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    store
        .set_state("u", "other", b("o"), NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();

    store.delete_state("u", "k").await.unwrap();
    assert_eq!(store.get_state("u", "k").await.unwrap(), None);
    assert_eq!(store.state_size("u", "k").await.unwrap(), 0);
    assert!(store.read_appended("u", "k").await.unwrap().is_empty());
    // Other keys stay.
    assert_eq!(store.get_state("u", "other").await.unwrap(), Some(b("o")));

    // Deleting again, or deleting a key that never existed, is fine.
    store.delete_state("u", "k").await.unwrap();
    store.delete_state("u", "never").await.unwrap();

    // A key with only a list goes entirely too.
    store
        .append_state("u", "list", b("e"), NO_LIMIT, NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    store.delete_state("u", "list").await.unwrap();
    assert!(store.read_appended("u", "list").await.unwrap().is_empty());
}

async fn appends_keep_their_order(store: Arc<dyn Backend>) {
    let elements = ["first", "second", "", "fourth", "first"];
    for element in elements {
        store
            .append_state("u", "log", b(element), NO_LIMIT, NO_LIMIT, NO_QUOTA)
            .await
            .unwrap();
    }
    let read = store.read_appended("u", "log").await.unwrap();
    assert_eq!(read, elements.map(b).to_vec());
    // Appending leaves the value alone (there is none).
    assert_eq!(store.get_state("u", "log").await.unwrap(), None);
    assert_eq!(store.state_size("u", "log").await.unwrap(), 0);

    // After clearing, a list starts afresh.
    store.clear_appended("u", "log").await.unwrap();
    store
        .append_state("u", "log", b("again"), NO_LIMIT, NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(
        store.read_appended("u", "log").await.unwrap(),
        vec![b("again")]
    );
}

async fn an_append_list_is_capped_in_bytes(store: Arc<dyn Backend>) {
    const MAX: u64 = 10;
    let append = |key: &'static str, element: &'static str| {
        let store = store.clone();
        async move {
            store
                .append_state("u", key, b(element), NO_LIMIT, MAX, NO_QUOTA)
                .await
        }
    };
    append("log", "1234").await.unwrap();
    append("log", "56789").await.unwrap();
    // 4 + 5 + 2 bytes is one too many: refused, and nothing of it is kept.
    let refused = append("log", "ab").await.unwrap_err();
    assert!(
        matches!(refused, BackendError::ListFull { max: MAX }),
        "{refused:?}"
    );
    assert_eq!(
        refused.to_string(),
        "the append list would grow past its limit of 10 bytes; read it and clear it first"
    );
    append("log", "0").await.unwrap();
    assert_eq!(
        store.read_appended("u", "log").await.unwrap(),
        vec![b("1234"), b("56789"), b("0")]
    );
    append("log", "x").await.unwrap_err();
    // Other lists have their own budget; clearing or deleting a list gives its budget back.
    append("other", "0123456789").await.unwrap();
    store.clear_appended("u", "log").await.unwrap();
    append("log", "0123456789").await.unwrap();
    store.delete_state("u", "log").await.unwrap();
    append("log", "0123456789").await.unwrap();
    // A value does not count against the list.
    store
        .set_state("u", "log", b("a long value"), NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    store.clear_appended("u", "log").await.unwrap();
    append("log", "0123456789").await.unwrap();
}

async fn clear_appended_keeps_the_value(store: Arc<dyn Backend>) {
    store
        .set_state("u", "k", b("value"), NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    store
        .append_state("u", "k", b("e1"), NO_LIMIT, NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    store
        .append_state("u", "k", b("e2"), NO_LIMIT, NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(
        store.read_appended("u", "k").await.unwrap(),
        vec![b("e1"), b("e2")]
    );

    store.clear_appended("u", "k").await.unwrap();
    assert!(store.read_appended("u", "k").await.unwrap().is_empty());
    assert_eq!(store.get_state("u", "k").await.unwrap(), Some(b("value")));

    // The key still exists (it has a value): with a limit of 1 it is the one key.
    store
        .set_state("u", "k", b("v2"), 1, NO_QUOTA)
        .await
        .unwrap();
    assert_too_many_keys(store.set_state("u", "new", b("x"), 1, NO_QUOTA).await, 1);
}

async fn keys_are_per_user_and_never_collide(store: Arc<dyn Backend>) {
    store
        .set_state("a", "k", b("a's"), NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    store
        .set_state("b", "k", b("b's"), NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    store
        .append_state("a", "k", b("a1"), NO_LIMIT, NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(store.get_state("a", "k").await.unwrap(), Some(b("a's")));
    assert_eq!(store.get_state("b", "k").await.unwrap(), Some(b("b's")));
    assert!(store.read_appended("b", "k").await.unwrap().is_empty());

    store.delete_state("a", "k").await.unwrap();
    assert_eq!(store.get_state("a", "k").await.unwrap(), None);
    assert_eq!(store.get_state("b", "k").await.unwrap(), Some(b("b's")));

    // Keys are text and may hold separators; users hold dots, dashes and underscores. None of
    // these pairs may share storage with another.
    let pairs = [
        ("a", "b:c"),
        ("a", "b"),
        ("a", ":b:c"),
        ("a.b", "c"),
        ("a", "b/c"),
        ("a_b", "c"),
        ("a-b", "c"),
        ("a", "é ü/ß"),
        ("ab", "c"),
        ("a", "bc"),
    ];
    for (i, (user, key)) in pairs.iter().enumerate() {
        store
            .set_state(user, key, b(&format!("value {i}")), NO_LIMIT, NO_QUOTA)
            .await
            .unwrap();
        store
            .append_state(
                user,
                key,
                b(&format!("element {i}")),
                NO_LIMIT,
                NO_LIMIT,
                NO_QUOTA,
            )
            .await
            .unwrap();
    }
    for (i, (user, key)) in pairs.iter().enumerate() {
        assert_eq!(
            store.get_state(user, key).await.unwrap(),
            Some(b(&format!("value {i}"))),
            "{user:?} {key:?}"
        );
        assert_eq!(
            store.read_appended(user, key).await.unwrap(),
            vec![b(&format!("element {i}"))],
            "{user:?} {key:?}"
        );
    }
}

async fn the_key_limit_counts_existing_keys(store: Arc<dyn Backend>) {
    const MAX: u64 = 2;
    store
        .set_state("u", "k1", b("v"), MAX, NO_QUOTA)
        .await
        .unwrap();
    store
        .append_state("u", "k2", b("e"), MAX, NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();

    // A third new key is refused, by a set as by an append, and nothing is written.
    assert_too_many_keys(store.set_state("u", "k3", b("v"), MAX, NO_QUOTA).await, MAX);
    assert_too_many_keys(
        store
            .append_state("u", "k3", b("e"), MAX, NO_LIMIT, NO_QUOTA)
            .await,
        MAX,
    );
    assert_eq!(store.get_state("u", "k3").await.unwrap(), None);
    assert!(store.read_appended("u", "k3").await.unwrap().is_empty());

    // Existing keys take writes of either kind.
    store
        .set_state("u", "k1", b("v2"), MAX, NO_QUOTA)
        .await
        .unwrap();
    store
        .append_state("u", "k2", b("e2"), MAX, NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    store
        .append_state("u", "k1", b("e"), MAX, NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    store
        .set_state("u", "k2", b("v"), MAX, NO_QUOTA)
        .await
        .unwrap();

    // Each user has its own count.
    store
        .set_state("other", "k1", b("v"), MAX, NO_QUOTA)
        .await
        .unwrap();
    store
        .set_state("other", "k3", b("v"), MAX, NO_QUOTA)
        .await
        .unwrap();

    // After a delete a new key fits again.
    store.delete_state("u", "k1").await.unwrap();
    store
        .set_state("u", "k3", b("v"), MAX, NO_QUOTA)
        .await
        .unwrap();
    assert_too_many_keys(store.set_state("u", "k4", b("v"), MAX, NO_QUOTA).await, MAX);

    // Clearing the list of a key that also has a value keeps the key...
    store.clear_appended("u", "k2").await.unwrap();
    assert_too_many_keys(
        store
            .append_state("u", "k4", b("e"), MAX, NO_LIMIT, NO_QUOTA)
            .await,
        MAX,
    );
    // ...but a key whose only content was its list is gone once the list is cleared.
    store.delete_state("u", "k2").await.unwrap();
    store
        .append_state("u", "k4", b("e"), MAX, NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    store.clear_appended("u", "k4").await.unwrap();
    store
        .set_state("u", "k5", b("v"), MAX, NO_QUOTA)
        .await
        .unwrap();

    // A limit of 0 admits no key at all.
    assert_too_many_keys(store.set_state("empty", "k", b("v"), 0, NO_QUOTA).await, 0);
    assert_too_many_keys(
        store
            .append_state("empty", "k", b("e"), 0, NO_LIMIT, NO_QUOTA)
            .await,
        0,
    );
}

async fn concurrent_appends_all_land(store: Arc<dyn Backend>) {
    const TASKS: usize = 8;
    const PER_TASK: usize = 25;
    let writers: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..PER_TASK {
                    store
                        .append_state(
                            "u",
                            "log",
                            b(&format!("{task}:{i}")),
                            10,
                            NO_LIMIT,
                            NO_QUOTA,
                        )
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let read = store.read_appended("u", "log").await.unwrap();
    assert_eq!(read.len(), TASKS * PER_TASK);
    // Every element is there once, and each task's elements are in the order it added them.
    let distinct: HashSet<_> = read.iter().collect();
    assert_eq!(distinct.len(), TASKS * PER_TASK);
    for task in 0..TASKS {
        let prefix = format!("{task}:");
        let own: Vec<String> = read
            .iter()
            .map(|element| String::from_utf8(element.to_vec()).unwrap())
            .filter(|element| element.starts_with(&prefix))
            .collect();
        let expected: Vec<String> = (0..PER_TASK).map(|i| format!("{task}:{i}")).collect();
        assert_eq!(own, expected);
    }
}

async fn concurrent_new_keys_respect_the_limit(store: Arc<dyn Backend>) {
    const MAX: u64 = 5;
    const WRITERS: usize = 24;
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let key = format!("k{i}");
                if i % 2 == 0 {
                    store
                        .set_state("u", &key, b("v"), MAX, NO_QUOTA)
                        .await
                        .map(drop)
                } else {
                    store
                        .append_state("u", &key, b("e"), MAX, NO_LIMIT, NO_QUOTA)
                        .await
                }
            })
        })
        .collect();
    let mut admitted = 0;
    for writer in writers {
        match writer.await.unwrap() {
            Ok(()) => admitted += 1,
            Err(BackendError::TooManyKeys { max: MAX }) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(admitted, MAX);
    let mut existing = 0;
    for i in 0..WRITERS {
        let key = format!("k{i}");
        let has_value = store.get_state("u", &key).await.unwrap().is_some();
        let has_list = !store.read_appended("u", &key).await.unwrap().is_empty();
        existing += u64::from(has_value || has_list);
    }
    assert_eq!(existing, MAX);
}

async fn functions_and_modules_round_trip(store: Arc<dyn Backend>) {
    assert_eq!(store.function("u", "f").await.unwrap(), None);
    assert_eq!(store.module("h1").await.unwrap(), None);

    let wasm_v1 = Bytes::from_static(b"\0asm\x01\0\0\0v1");
    store
        .put_function("u", "f", &record("h1", 10), wasm_v1.clone(), NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(
        store.function("u", "f").await.unwrap(),
        Some(record("h1", 10))
    );
    assert_eq!(store.module("h1").await.unwrap(), Some(wasm_v1.clone()));

    // A re-upload points the name at the new module; the old module stays fetchable by hash.
    let wasm_v2 = Bytes::from(vec![7u8; 100_000]);
    store
        .put_function("u", "f", &record("h2", 100_000), wasm_v2.clone(), NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(
        store.function("u", "f").await.unwrap(),
        Some(record("h2", 100_000))
    );
    assert_eq!(store.module("h2").await.unwrap(), Some(wasm_v2));
    assert_eq!(store.module("h1").await.unwrap(), Some(wasm_v1.clone()));

    // Names are per user and per function.
    assert_eq!(store.function("v", "f").await.unwrap(), None);
    assert_eq!(store.function("u", "g").await.unwrap(), None);
    store
        .put_function("v", "f", &record("h1", 10), wasm_v1, NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(
        store.function("v", "f").await.unwrap(),
        Some(record("h1", 10))
    );
    assert_eq!(
        store.function("u", "f").await.unwrap(),
        Some(record("h2", 100_000))
    );

    // Settings are kept with the function, and a re-upload without them clears them.
    let with_env = FunctionRecord {
        settings: Some(fwasm_proto::pb::FunctionSettings {
            env: [("GREETING".to_string(), "hi there".to_string())].into(),
            ..Default::default()
        }),
        ..record("h2", 100_000)
    };
    let wasm_v2 = store.module("h2").await.unwrap().unwrap();
    store
        .put_function("u", "f", &with_env, wasm_v2.clone(), NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(store.function("u", "f").await.unwrap(), Some(with_env));
    store
        .put_function("u", "f", &record("h2", 100_000), wasm_v2, NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(
        store.function("u", "f").await.unwrap(),
        Some(record("h2", 100_000))
    );
}

/// The embedded store is durable by itself: what it acknowledged is there after a reopen.
#[tokio::test]
async fn embedded_state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = EmbeddedBackend::open(dir.path()).unwrap();
        store
            .set_state("u", "k", b("kept"), 2, NO_QUOTA)
            .await
            .unwrap();
        store
            .append_state("u", "log", b("e1"), 2, NO_LIMIT, NO_QUOTA)
            .await
            .unwrap();
        store
            .append_state("u", "log", b("e2"), 2, NO_LIMIT, NO_QUOTA)
            .await
            .unwrap();
        store
            .set_state("u", "gone", b("x"), 3, NO_QUOTA)
            .await
            .unwrap();
        store.delete_state("u", "gone").await.unwrap();
    }
    let store = EmbeddedBackend::open(dir.path()).unwrap();
    assert_eq!(store.get_state("u", "k").await.unwrap(), Some(b("kept")));
    assert_eq!(store.state_size("u", "k").await.unwrap(), 4);
    assert_eq!(
        store.read_appended("u", "log").await.unwrap(),
        vec![b("e1"), b("e2")]
    );
    assert_eq!(store.get_state("u", "gone").await.unwrap(), None);
    // The key count survives too: two keys exist, so a third is refused and appends continue
    // in order.
    assert_too_many_keys(store.set_state("u", "new", b("v"), 2, NO_QUOTA).await, 2);
    store
        .append_state("u", "log", b("e3"), 2, NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(
        store.read_appended("u", "log").await.unwrap(),
        vec![b("e1"), b("e2"), b("e3")]
    );
}

async fn version(store: &Arc<dyn Backend>, user: &str, key: &str) -> u64 {
    let found = store.get_versioned(user, key).await.unwrap();
    found
        .unwrap_or_else(|| panic!("{user}/{key} has no value"))
        .version
}

fn assert_mismatch<T: std::fmt::Debug>(result: Result<T, BackendError>, key: &str) {
    match result {
        Err(BackendError::VersionMismatch { key: got }) => assert_eq!(got, key),
        other => panic!("expected VersionMismatch for {key}, got {other:?}"),
    }
}

async fn versions_change_on_every_write_and_never_come_back(store: Arc<dyn Backend>) {
    let mut seen = HashSet::new();
    for value in ["a", "b", "b"] {
        let given = store
            .set_state("u", "k", b(value), NO_LIMIT, NO_QUOTA)
            .await
            .unwrap();
        assert!(given > 0, "versions are never 0");
        assert_eq!(
            store.get_versioned("u", "k").await.unwrap(),
            Some(Versioned {
                value: b(value),
                version: given
            })
        );
        assert!(seen.insert(given), "version {given} given twice");
    }
    // Deleted and written again: still a version never seen, so an old one cannot match.
    store.delete_state("u", "k").await.unwrap();
    assert_eq!(store.get_versioned("u", "k").await.unwrap(), None);
    assert!(
        seen.insert(
            store
                .set_state("u", "k", b("a"), NO_LIMIT, NO_QUOTA)
                .await
                .unwrap()
        )
    );
    // Other keys and users draw from the same numbers.
    assert!(
        seen.insert(
            store
                .set_state("u", "other", b("a"), NO_LIMIT, NO_QUOTA)
                .await
                .unwrap()
        )
    );
    assert!(
        seen.insert(
            store
                .set_state("v", "k", b("a"), NO_LIMIT, NO_QUOTA)
                .await
                .unwrap()
        )
    );
    // Appending changes the list, not the value or its version.
    let before = version(&store, "u", "k").await;
    store
        .append_state("u", "k", b("e"), NO_LIMIT, NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(version(&store, "u", "k").await, before);
}

async fn a_write_expecting_another_version_writes_nothing(store: Arc<dyn Backend>) {
    let first = store
        .set_state("u", "k", b("first"), NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    let set = |value: &str, expected: u64| vec![StateOp::set("k", b(value)).if_version(expected)];
    let second = store
        .write_state("u", set("second", first), NO_LIMIT, NO_QUOTA)
        .await
        .unwrap()[0];
    // Stale: `first` was overwritten.
    assert_mismatch(
        store
            .write_state("u", set("third", first), NO_LIMIT, NO_QUOTA)
            .await,
        "k",
    );
    let delete = |expected: u64| vec![StateOp::delete("k").if_version(expected)];
    assert_mismatch(
        store
            .write_state("u", delete(first), NO_LIMIT, NO_QUOTA)
            .await,
        "k",
    );
    assert_eq!(
        store.get_versioned("u", "k").await.unwrap(),
        Some(Versioned {
            value: b("second"),
            version: second
        })
    );
    store
        .write_state("u", delete(second), NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(store.get_state("u", "k").await.unwrap(), None);
    // A key without a value is at no version at all.
    assert_mismatch(
        store
            .write_state("u", set("again", second), NO_LIMIT, NO_QUOTA)
            .await,
        "k",
    );
    assert_mismatch(
        store
            .write_state("u", delete(second), NO_LIMIT, NO_QUOTA)
            .await,
        "k",
    );
    assert_eq!(store.get_state("u", "k").await.unwrap(), None);
}

async fn a_transaction_applies_whole_or_not_at_all(store: Arc<dyn Backend>) {
    store
        .set_state("u", "gone", b("x"), NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    store
        .append_state("u", "gone", b("e"), NO_LIMIT, NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    let a = store
        .set_state("u", "a", b("a0"), NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    let ops = vec![
        StateOp::set("a", b("a1")).if_version(a),
        StateOp::set("b", b("b1")),
        StateOp::delete("gone"),
        // Ops apply in order: the last write of a key wins.
        StateOp::set("c", b("c0")),
        StateOp::delete("c"),
        StateOp::set("c", b("c1")),
    ];
    let versions = store
        .write_state("u", ops, NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(versions.len(), 6);
    assert_eq!(versions[2], 0, "a delete leaves no version");
    assert_eq!(version(&store, "u", "a").await, versions[0]);
    assert_eq!(version(&store, "u", "c").await, versions[5]);
    for (key, value) in [("a", "a1"), ("b", "b1"), ("c", "c1")] {
        assert_eq!(store.get_state("u", key).await.unwrap(), Some(b(value)));
    }
    assert_eq!(store.get_state("u", "gone").await.unwrap(), None);
    assert!(store.read_appended("u", "gone").await.unwrap().is_empty());

    // One stale op (the last) refuses them all.
    let ops = vec![
        StateOp::set("a", b("a2")),
        StateOp::delete("b"),
        StateOp::set("new", b("n")),
        StateOp::set("c", b("c2")).if_version(a),
    ];
    assert_mismatch(store.write_state("u", ops, NO_LIMIT, NO_QUOTA).await, "c");
    for (key, value) in [("a", "a1"), ("b", "b1"), ("c", "c1")] {
        assert_eq!(store.get_state("u", key).await.unwrap(), Some(b(value)));
    }
    assert_eq!(store.get_state("u", "new").await.unwrap(), None);
    // A version given inside the transaction is not known to it: it matches nothing.
    let ops = vec![
        StateOp::set("a", b("a3")),
        StateOp::set("a", b("a4")).if_version(version(&store, "u", "a").await),
    ];
    assert_mismatch(store.write_state("u", ops, NO_LIMIT, NO_QUOTA).await, "a");
    assert_eq!(store.get_state("u", "a").await.unwrap(), Some(b("a1")));
}

async fn a_transaction_is_held_to_the_key_limit_as_a_whole(store: Arc<dyn Backend>) {
    store
        .set_state("u", "k1", b("v"), 3, NO_QUOTA)
        .await
        .unwrap();
    store
        .set_state("u", "k2", b("v"), 3, NO_QUOTA)
        .await
        .unwrap();
    // Two new keys would make 4: refused whole, the first new key included.
    let grow = vec![StateOp::set("k3", b("v")), StateOp::set("k4", b("v"))];
    assert_too_many_keys(store.write_state("u", grow, 3, NO_QUOTA).await, 3);
    assert_eq!(store.get_state("u", "k3").await.unwrap(), None);
    // Deleting one in the same transaction makes room for one.
    let swap = vec![
        StateOp::delete("k1"),
        StateOp::set("k3", b("v")),
        StateOp::set("k4", b("v")),
    ];
    store.write_state("u", swap, 3, NO_QUOTA).await.unwrap();
    assert_eq!(store.get_state("u", "k4").await.unwrap(), Some(b("v")));
    // At the limit, rewriting existing keys is fine, and so is shrinking past a lowered one.
    let rewrite = vec![StateOp::set("k2", b("w")), StateOp::delete("k3")];
    store.write_state("u", rewrite, 1, NO_QUOTA).await.unwrap();
    assert_eq!(store.get_state("u", "k2").await.unwrap(), Some(b("w")));
}

/// Writers move units between two keys, each move a transaction that expects the versions it
/// read: however the writers interleave, no unit is ever lost or made, which a transaction
/// applied in part would do.
async fn concurrent_transactions_are_never_seen_half_applied(store: Arc<dyn Backend>) {
    const WRITERS: usize = 8;
    const MOVES: usize = 15;
    store
        .set_state("u", "x", b("100"), NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    store
        .set_state("u", "y", b("0"), NO_LIMIT, NO_QUOTA)
        .await
        .unwrap();
    let read = |store: Arc<dyn Backend>, key: &'static str| async move {
        let found = store.get_versioned("u", key).await.unwrap().unwrap();
        let number: i64 = String::from_utf8(found.value.to_vec())
            .unwrap()
            .parse()
            .unwrap();
        (number, found.version)
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut refused = 0;
                for _ in 0..MOVES {
                    loop {
                        let (x, x_version) = read(store.clone(), "x").await;
                        let (y, y_version) = read(store.clone(), "y").await;
                        let ops = vec![
                            StateOp::set("x", b(&(x - 1).to_string())).if_version(x_version),
                            StateOp::set("y", b(&(y + 1).to_string())).if_version(y_version),
                        ];
                        match store.write_state("u", ops, NO_LIMIT, NO_QUOTA).await {
                            Ok(_) => break,
                            Err(BackendError::VersionMismatch { .. }) => refused += 1,
                            Err(other) => panic!("{other}"),
                        }
                    }
                }
                refused
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let (x, _) = read(store.clone(), "x").await;
    let (y, _) = read(store.clone(), "y").await;
    let moves = (WRITERS * MOVES) as i64;
    assert_eq!((x, y), (100 - moves, moves));
}

async fn sequences_start_at_one_and_never_repeat(store: Arc<dyn Backend>) {
    assert_eq!(store.next_id("u", "orders").await.unwrap(), 1);
    assert_eq!(store.next_id("u", "orders").await.unwrap(), 2);
    // Per user and per key.
    assert_eq!(store.next_id("u", "other").await.unwrap(), 1);
    assert_eq!(store.next_id("v", "orders").await.unwrap(), 1);
    // Many at once: each id once, together exactly the next ones.
    let takers: Vec<_> = (0..40)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.next_id("u", "orders").await.unwrap() })
        })
        .collect();
    let mut ids = Vec::new();
    for taker in takers {
        ids.push(taker.await.unwrap());
    }
    ids.sort();
    assert_eq!(ids, (3..=42).collect::<Vec<u64>>());
}

/// Shared files a Redis database held before files were indexed (or had owners) are listed,
/// as the common files, after a state service connects.
#[tokio::test]
async fn redis_files_from_before_the_index_are_listed() {
    let server = RedisServer::start();
    as_older_fwasm_left_it(&server, &[&["SET", "fwasm:file:old/a.txt", "abc"]]).await;
    let store = RedisBackend::connect(&server.url()).await.unwrap();
    let listed = store.list_files("", "old/", "", 10).await.unwrap();
    assert_eq!(listed, [("old/a.txt".to_string(), 3)]);
}

/// Versions, sequences, locks, subscriptions and tokens survive a restart: the embedded store reopened on its directory,
/// and a new connection (a restarted state service) to the same Redis.
#[tokio::test]
async fn versions_and_sequences_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start();
    for (name, reopen) in [("embedded", false), ("redis", true)] {
        let open = async || -> Arc<dyn Backend> {
            if reopen {
                Arc::new(RedisBackend::connect(&server.url()).await.unwrap()) as Arc<dyn Backend>
            } else {
                Arc::new(EmbeddedBackend::open(dir.path()).unwrap())
            }
        };
        let store = open().await;
        let version = store
            .set_state("u", "k", b("v"), NO_LIMIT, NO_QUOTA)
            .await
            .unwrap();
        assert_eq!(store.next_id("u", "ids").await.unwrap(), 1, "{name}");
        let lease = Duration::from_secs(60);
        let held = store
            .try_lock("u", "k", "a", LockMode::Write, lease, false)
            .await;
        assert!(held.unwrap().granted, "{name}");
        store.set_subscription("u", "t", "f", true).await.unwrap();
        store.put_token("t1", b("hash")).await.unwrap();
        drop(store);
        let store = open().await;
        assert_eq!(
            store.get_versioned("u", "k").await.unwrap(),
            Some(Versioned {
                value: b("v"),
                version
            }),
            "{name}"
        );
        assert_eq!(store.next_id("u", "ids").await.unwrap(), 2, "{name}");
        let other = store
            .try_lock("u", "k", "b", LockMode::Write, lease, false)
            .await;
        assert!(
            !other.unwrap().granted,
            "{name}: a lock is not freed by a restart"
        );
        let unlocked = store.unlock("u", "k", "a").await.unwrap();
        assert_eq!(unlocked, Unlocked::Released, "{name}: nor lost");
        let subscriptions = store.subscriptions("u", None).await.unwrap();
        assert_eq!(
            subscriptions,
            [("t".to_string(), "f".to_string())],
            "{name}"
        );
        let token = store.token("t1").await.unwrap();
        assert_eq!(token, Some(b("hash")), "{name}: tokens survive a restart");
        let next = store
            .set_state("u", "other", b("v"), NO_LIMIT, NO_QUOTA)
            .await
            .unwrap();
        assert!(
            next > version,
            "{name}: the counter goes on after a restart"
        );
    }
}

/// A Redis value from before versions were kept gets a version when a state service connects,
/// which the next write changes.
#[tokio::test]
async fn redis_values_without_a_version_get_one() {
    let server = RedisServer::start();
    let older = [
        &["SET", "fwasm:v:u:old", "kept"][..],
        &["SADD", "fwasm:k:u", "old"],
    ];
    as_older_fwasm_left_it(&server, &older).await;
    let store: Arc<dyn Backend> = Arc::new(RedisBackend::connect(&server.url()).await.unwrap());
    let old = version(&store, "u", "old").await;
    assert!(old > 0);
    let written = store
        .write_state(
            "u",
            vec![StateOp::set("old", b("new")).if_version(old)],
            NO_LIMIT,
            NO_QUOTA,
        )
        .await
        .unwrap()[0];
    assert_ne!(written, old);
}
