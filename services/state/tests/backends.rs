//! Conformance tests of the [`Backend`] contract: every scenario is written once and run against
//! each backend, the embedded store (on a temporary directory) and Redis (a throwaway
//! `redis-server` per test, from `redis-harness`).
//!
//! `cargo test -p fwasm-state --test backends embedded::` (or `redis::`) runs one backend.

use std::any::Any;
use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use fwasm_state::{Backend, BackendError, EmbeddedBackend, FunctionRecord, RedisBackend};
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
);

/// A Redis list from before list sizes were kept (no size key) is measured at its next append,
/// and the size is kept even when that append is refused.
#[tokio::test]
async fn redis_lists_without_a_size_are_measured() {
    let server = RedisServer::start();
    let store = RedisBackend::connect(&server.url()).await.unwrap();
    let mut raw = ::redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = ::redis::cmd("RPUSH")
        .arg("fwasm:a:u:log")
        .arg("12345")
        .arg("678")
        .query_async(&mut raw)
        .await
        .unwrap();
    let refused = store
        .append_state("u", "log", b("abc"), NO_LIMIT, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, BackendError::ListFull { max: 10 }),
        "{refused}"
    );
    let size: u64 = ::redis::cmd("GET")
        .arg("fwasm:ab:u:log")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(size, 8);
    store
        .append_state("u", "log", b("ab"), NO_LIMIT, 10)
        .await
        .unwrap();
    assert_eq!(
        store.read_appended("u", "log").await.unwrap(),
        vec![b("12345"), b("678"), b("ab")]
    );
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
    assert_eq!(store.file("data/a.txt").await.unwrap(), None);
    store.put_file("data/a.txt", b("one")).await.unwrap();
    store.put_file("data/a.txt", b("two")).await.unwrap();
    store.put_file("data/b.txt", b("")).await.unwrap();
    assert_eq!(store.file("data/a.txt").await.unwrap(), Some(b("two")));
    assert_eq!(store.file("data/b.txt").await.unwrap(), Some(b("")));
}

const NO_LIMIT: u64 = u64::MAX;

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn record(hash: &str, size: u64) -> FunctionRecord {
    FunctionRecord {
        module_hash: hash.into(),
        size,
    }
}

fn assert_too_many_keys(result: Result<(), BackendError>, max: u64) {
    match result {
        Err(BackendError::TooManyKeys { max: got }) => assert_eq!(got, max),
        other => panic!("expected TooManyKeys {{ max: {max} }}, got {other:?}"),
    }
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
    store.set_state("u", "only", b("x"), 1).await.unwrap();
}

async fn set_get_overwrite_and_size(store: Arc<dyn Backend>) {
    store.set_state("u", "k", b("v1"), NO_LIMIT).await.unwrap();
    assert_eq!(store.get_state("u", "k").await.unwrap(), Some(b("v1")));
    assert_eq!(store.state_size("u", "k").await.unwrap(), 2);

    store
        .set_state("u", "k", b("a longer value"), NO_LIMIT)
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
        .set_state("u", "bin", binary.clone(), NO_LIMIT)
        .await
        .unwrap();
    assert_eq!(store.get_state("u", "bin").await.unwrap(), Some(binary));
    assert_eq!(store.state_size("u", "bin").await.unwrap(), 256);

    // An empty value is a value.
    store
        .set_state("u", "empty", Bytes::new(), NO_LIMIT)
        .await
        .unwrap();
    assert_eq!(
        store.get_state("u", "empty").await.unwrap(),
        Some(Bytes::new())
    );
    assert_eq!(store.state_size("u", "empty").await.unwrap(), 0);
}

async fn delete_removes_value_and_list(store: Arc<dyn Backend>) {
    store.set_state("u", "k", b("v"), NO_LIMIT).await.unwrap();
    store
        .append_state("u", "k", b("e1"), NO_LIMIT, NO_LIMIT)
        .await
        .unwrap();
    store
        .set_state("u", "other", b("o"), NO_LIMIT)
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
        .append_state("u", "list", b("e"), NO_LIMIT, NO_LIMIT)
        .await
        .unwrap();
    store.delete_state("u", "list").await.unwrap();
    assert!(store.read_appended("u", "list").await.unwrap().is_empty());
}

async fn appends_keep_their_order(store: Arc<dyn Backend>) {
    let elements = ["first", "second", "", "fourth", "first"];
    for element in elements {
        store
            .append_state("u", "log", b(element), NO_LIMIT, NO_LIMIT)
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
        .append_state("u", "log", b("again"), NO_LIMIT, NO_LIMIT)
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
                .append_state("u", key, b(element), NO_LIMIT, MAX)
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
        .set_state("u", "log", b("a long value"), NO_LIMIT)
        .await
        .unwrap();
    store.clear_appended("u", "log").await.unwrap();
    append("log", "0123456789").await.unwrap();
}

async fn clear_appended_keeps_the_value(store: Arc<dyn Backend>) {
    store
        .set_state("u", "k", b("value"), NO_LIMIT)
        .await
        .unwrap();
    store
        .append_state("u", "k", b("e1"), NO_LIMIT, NO_LIMIT)
        .await
        .unwrap();
    store
        .append_state("u", "k", b("e2"), NO_LIMIT, NO_LIMIT)
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
    store.set_state("u", "k", b("v2"), 1).await.unwrap();
    assert_too_many_keys(store.set_state("u", "new", b("x"), 1).await, 1);
}

async fn keys_are_per_user_and_never_collide(store: Arc<dyn Backend>) {
    store.set_state("a", "k", b("a's"), NO_LIMIT).await.unwrap();
    store.set_state("b", "k", b("b's"), NO_LIMIT).await.unwrap();
    store
        .append_state("a", "k", b("a1"), NO_LIMIT, NO_LIMIT)
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
            .set_state(user, key, b(&format!("value {i}")), NO_LIMIT)
            .await
            .unwrap();
        store
            .append_state(user, key, b(&format!("element {i}")), NO_LIMIT, NO_LIMIT)
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
    store.set_state("u", "k1", b("v"), MAX).await.unwrap();
    store
        .append_state("u", "k2", b("e"), MAX, NO_LIMIT)
        .await
        .unwrap();

    // A third new key is refused, by a set as by an append, and nothing is written.
    assert_too_many_keys(store.set_state("u", "k3", b("v"), MAX).await, MAX);
    assert_too_many_keys(
        store.append_state("u", "k3", b("e"), MAX, NO_LIMIT).await,
        MAX,
    );
    assert_eq!(store.get_state("u", "k3").await.unwrap(), None);
    assert!(store.read_appended("u", "k3").await.unwrap().is_empty());

    // Existing keys take writes of either kind.
    store.set_state("u", "k1", b("v2"), MAX).await.unwrap();
    store
        .append_state("u", "k2", b("e2"), MAX, NO_LIMIT)
        .await
        .unwrap();
    store
        .append_state("u", "k1", b("e"), MAX, NO_LIMIT)
        .await
        .unwrap();
    store.set_state("u", "k2", b("v"), MAX).await.unwrap();

    // Each user has its own count.
    store.set_state("other", "k1", b("v"), MAX).await.unwrap();
    store.set_state("other", "k3", b("v"), MAX).await.unwrap();

    // After a delete a new key fits again.
    store.delete_state("u", "k1").await.unwrap();
    store.set_state("u", "k3", b("v"), MAX).await.unwrap();
    assert_too_many_keys(store.set_state("u", "k4", b("v"), MAX).await, MAX);

    // Clearing the list of a key that also has a value keeps the key...
    store.clear_appended("u", "k2").await.unwrap();
    assert_too_many_keys(
        store.append_state("u", "k4", b("e"), MAX, NO_LIMIT).await,
        MAX,
    );
    // ...but a key whose only content was its list is gone once the list is cleared.
    store.delete_state("u", "k2").await.unwrap();
    store
        .append_state("u", "k4", b("e"), MAX, NO_LIMIT)
        .await
        .unwrap();
    store.clear_appended("u", "k4").await.unwrap();
    store.set_state("u", "k5", b("v"), MAX).await.unwrap();

    // A limit of 0 admits no key at all.
    assert_too_many_keys(store.set_state("empty", "k", b("v"), 0).await, 0);
    assert_too_many_keys(
        store.append_state("empty", "k", b("e"), 0, NO_LIMIT).await,
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
                        .append_state("u", "log", b(&format!("{task}:{i}")), 10, NO_LIMIT)
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
                    store.set_state("u", &key, b("v"), MAX).await
                } else {
                    store.append_state("u", &key, b("e"), MAX, NO_LIMIT).await
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
        .put_function("u", "f", &record("h1", 10), wasm_v1.clone())
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
        .put_function("u", "f", &record("h2", 100_000), wasm_v2.clone())
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
        .put_function("v", "f", &record("h1", 10), wasm_v1)
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
}

/// The embedded store is durable by itself: what it acknowledged is there after a reopen.
#[tokio::test]
async fn embedded_state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = EmbeddedBackend::open(dir.path()).unwrap();
        store.set_state("u", "k", b("kept"), 2).await.unwrap();
        store
            .append_state("u", "log", b("e1"), 2, NO_LIMIT)
            .await
            .unwrap();
        store
            .append_state("u", "log", b("e2"), 2, NO_LIMIT)
            .await
            .unwrap();
        store.set_state("u", "gone", b("x"), 3).await.unwrap();
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
    assert_too_many_keys(store.set_state("u", "new", b("v"), 2).await, 2);
    store
        .append_state("u", "log", b("e3"), 2, NO_LIMIT)
        .await
        .unwrap();
    assert_eq!(
        store.read_appended("u", "log").await.unwrap(),
        vec![b("e1"), b("e2"), b("e3")]
    );
}
