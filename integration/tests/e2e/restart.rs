//! What `fwasm up` stores survives its restart: uploaded functions and state, in the embedded
//! store and in Redis.

use crate::support::{guest, up_at, up_redis_at};

#[tokio::test]
async fn functions_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let p = up_at(data.path()).await;
    p.upload("dave/upper", guest("testkit")).await;
    assert_eq!(p.call("dave/upper", "before").await, (200, "BEFORE".into()));
    p.stop().await;

    let p = up_at(data.path()).await;
    assert_eq!(p.call("dave/upper", "after").await, (200, "AFTER".into()));
    p.stop().await;
}

/// Bytes that are not text, to be sure nothing is re-encoded on the way.
const VALUE: &[u8] = &[0, 159, 146, 150, 255, b'\n', 7];

#[tokio::test]
async fn state_set_through_the_api_survives_a_restart_of_the_embedded_store() {
    let data = tempfile::tempdir().unwrap();
    let p = up_at(data.path()).await;
    put(&p, "dave/blob").await;
    p.stop().await;

    let p = up_at(data.path()).await;
    assert_eq!(get(&p, "dave/blob").await, VALUE);
    p.stop().await;
}

#[tokio::test]
async fn state_in_redis_survives_a_restart_of_fwasm_up() {
    let redis = redis_harness::RedisServer::start();
    let data = tempfile::tempdir().unwrap();
    let p = up_redis_at(data.path(), redis.url()).await;
    put(&p, "dave/blob").await;
    p.upload("dave/upper", guest("testkit")).await;
    p.stop().await;

    // A fresh data directory: everything comes back from Redis.
    let data = tempfile::tempdir().unwrap();
    let p = up_redis_at(data.path(), redis.url()).await;
    assert_eq!(get(&p, "dave/blob").await, VALUE);
    assert_eq!(p.call("dave/upper", "after").await, (200, "AFTER".into()));
    p.stop().await;
}

async fn put(p: &crate::support::Platform, user_key: &str) {
    let url = format!("{}/s/{user_key}", p.upload);
    let response = p.http.put(url).body(VALUE).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

async fn get(p: &crate::support::Platform, user_key: &str) -> Vec<u8> {
    let (status, body) = p.get(format!("{}/s/{user_key}", p.upload)).await;
    assert_eq!(status, 200);
    body.to_vec()
}
