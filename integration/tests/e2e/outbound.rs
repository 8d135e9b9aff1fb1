//! Outbound HTTP: the testkit's `fetch` (fwasm_sdk::http) against a server the test starts on
//! loopback, allowed explicitly: what comes back, a 5 MB body, a server too slow for the call,
//! a refused connection; and every refusal: a host the function may not reach, one the
//! platform does not allow, a loopback address reached through a name.

use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use fwasm_executor::ExecutorConfig;

use crate::support::{Platform, guest, test_executor_config, up_with};

/// A server on loopback: `/hello` ("hi there", header `x-reply: yes`), `/echo` (the body and
/// the `x-test` header back), `/big` (5 MB), `/slow` (answers after 20 s). Its port.
async fn server() -> u16 {
    let app = Router::new()
        .route(
            "/hello",
            get(|| async { ([("x-reply", "yes")], "hi there") }),
        )
        .route(
            "/echo",
            post(|headers: HeaderMap, body: String| async move {
                let test = headers
                    .get("x-test")
                    .map_or("", |v| v.to_str().unwrap_or(""));
                format!("{test}:{body}")
            }),
        )
        .route("/big", get(|| async { vec![b'x'; 5 << 20] }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(20)).await;
                "late"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// A platform whose executor allows `platform` entries, with calls of `timeout`.
async fn platform(platform: &[&str], timeout: Duration) -> Platform {
    let mut config: ExecutorConfig = test_executor_config();
    config.allow_outbound = platform.iter().map(|e| e.parse().unwrap()).collect();
    config.limits.timeout = timeout;
    config.limits.max_memory_bytes = 32 << 20;
    up_with(config).await
}

/// Uploads the testkit's `fetch` as `user/fetch` allowed `hosts`.
async fn upload_fetch(p: &Platform, user: &str, hosts: &[String]) {
    let query: Vec<String> = hosts.iter().map(|h| format!("allow_host={h}")).collect();
    let response = p
        .http
        .put(format!("{}/f/{user}/fetch?{}", p.upload, query.join("&")))
        .body(guest("testkit"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

#[tokio::test]
async fn a_function_reaches_the_host_it_is_allowed_and_gets_its_answer() {
    let port = server().await;
    let p = platform(&["127.0.0.1:*"], Duration::from_secs(3)).await;
    upload_fetch(&p, "u", &[format!("127.0.0.1:{port}")]).await;
    let base = format!("http://127.0.0.1:{port}");
    let fetch = |input: String| p.call("u/fetch", input);
    assert_eq!(
        fetch(format!("GET {base}/hello")).await,
        (200, "200 yes 8 hi there".into())
    );
    assert_eq!(
        fetch(format!("POST {base}/echo some body")).await,
        (200, "200 - 17 testkit:some body".into())
    );
    assert_eq!(
        fetch(format!("GET {base}/nothing")).await,
        (200, "404 - 0 ".into())
    );
    let (status, big) = fetch(format!("GET {base}/big")).await;
    assert_eq!(status, 200);
    assert!(big.starts_with("200 - 5242880 xxxx"), "{big}");
    // Too slow for the call: the request ends in time for the call to say so.
    let (status, slow) = fetch(format!("GET {base}/slow")).await;
    assert_eq!(status, 200);
    assert_eq!(
        slow,
        format!("error: the request to 127.0.0.1:{port} took longer than the call allows")
    );
}

#[tokio::test]
async fn a_refused_connection_is_the_calls_error_not_its_end() {
    // A port just freed: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let p = platform(&["127.0.0.1:*"], Duration::from_secs(5)).await;
    upload_fetch(&p, "u", &[format!("127.0.0.1:{port}")]).await;
    let (status, body) = p
        .call("u/fetch", format!("GET http://127.0.0.1:{port}/"))
        .await;
    assert_eq!(status, 200);
    assert!(
        body.starts_with(&format!("error: the request to 127.0.0.1:{port} failed")),
        "{body}"
    );
}

#[tokio::test]
async fn hosts_not_allowed_are_refused_naming_the_host_and_the_rule() {
    let port = server().await;
    let p = platform(&[&format!("127.0.0.1:{port}")], Duration::from_secs(5)).await;
    let url = format!("http://127.0.0.1:{port}/hello");
    // Not in the function's allow-list (another function's list does not count).
    upload_fetch(&p, "other", &[format!("127.0.0.1:{port}")]).await;
    upload_fetch(&p, "u", &[]).await;
    assert_eq!(
        p.call("u/fetch", format!("GET {url}")).await.1,
        format!(
            "error: outbound request to 127.0.0.1:{port} refused: u/fetch may not reach it \
             (upload it with --allow-host 127.0.0.1:{port})"
        )
    );
    assert_eq!(
        p.call("other/fetch", format!("GET {url}")).await.1,
        "200 yes 8 hi there"
    );
    // In the function's list, not the platform's.
    upload_fetch(&p, "v", &["127.0.0.1:*".into()]).await;
    let elsewhere = format!("GET http://127.0.0.1:{}/", port.wrapping_add(1).max(1));
    let refused = p.call("v/fetch", elsewhere).await.1;
    assert!(
        refused
            .contains("refused: the platform does not allow it (the executor's --allow-outbound)"),
        "{refused}"
    );
    // A loopback address reached through a name: refused even though both lists allow the
    // name, since the check is on the address connected to.
    let p = platform(&["*:*"], Duration::from_secs(5)).await;
    upload_fetch(&p, "u", &[format!("localhost:{port}")]).await;
    let refused = p
        .call("u/fetch", format!("GET http://localhost:{port}/hello"))
        .await
        .1;
    assert!(
        refused.starts_with("error: localhost resolves only to addresses no name may lead to"),
        "{refused}"
    );
    assert!(refused.contains("is a loopback address"), "{refused}");
    // Nor through an address written in the URL, in any of its forms, unless both lists
    // name the address itself: `*` is not enough.
    upload_fetch(&p, "any", &["*:*".into()]).await;
    for url in [
        format!("http://127.0.0.1:{port}/hello"),
        format!("http://2130706433:{port}/hello"),
        format!("http://[::ffff:7f00:1]:{port}/hello"),
    ] {
        let refused = p.call("any/fetch", format!("GET {url}")).await.1;
        assert!(
            refused.contains(
                "is a loopback address, reached only where both any/fetch's \
                 allow-list and the platform's name it itself"
            ),
            "{url}: {refused}"
        );
    }
    // https is not sent yet; other schemes never.
    upload_fetch(&p, "w", &["example.com:*".into()]).await;
    let refused = p
        .call("w/fetch", "GET https://example.com/".to_string())
        .await
        .1;
    assert_eq!(refused, "error: https is not supported yet: only http URLs");
}

#[tokio::test]
async fn allow_lists_are_checked_at_upload() {
    let p = platform(&[], Duration::from_secs(5)).await;
    let response = p
        .http
        .put(format!(
            "{}/f/u/fetch?allow_host=no-port.example.com",
            p.upload
        ))
        .body(guest("testkit"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body = response.text().await.unwrap();
    assert!(body.contains("invalid allowed host"), "{body}");
    assert!(body.contains("is not HOST:PORT"), "{body}");
}
