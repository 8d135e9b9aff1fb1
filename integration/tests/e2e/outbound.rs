//! Outbound HTTP: the testkit's `fetch` (fwasm_sdk::http) against a server the test starts on
//! loopback, allowed explicitly: what comes back, a 5 MB body, a server too slow for the call,
//! a refused connection; and every refusal: a host the function may not reach, one the
//! platform does not allow, a loopback address reached through a name; https verified
//! against the roots the executor trusts.

use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use fwasm_executor::ExecutorConfig;

use crate::c_guests::c_guest;
use crate::support::{Platform, guest, test_executor_config, up_with};
use crate::tls::Authority;

/// A server on loopback: `/hello` ("hi there", header `x-reply: yes`), `/echo` (the body and
/// the `x-test` header back), `/big` (5 MB), `/slow` (answers after 20 s). Its port.
async fn server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app()).await.unwrap() });
    port
}

/// The same server over TLS, with a certificate `authority` signed for 127.0.0.1.
async fn https_server(authority: &Authority) -> u16 {
    let config = authority
        .tls(&authority.sign(), false)
        .http_server()
        .unwrap();
    let listener = TlsListener {
        tcp: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        acceptor: tokio_rustls::TlsAcceptor::from(config),
    };
    let port = listener.tcp.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app()).await.unwrap() });
    port
}

/// Connections that completed a TLS handshake (those that did not are dropped).
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

fn app() -> Router {
    Router::new()
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
        )
}

/// A platform whose executor allows `platform` entries, with calls of `timeout`.
async fn platform(platform: &[&str], timeout: Duration) -> Platform {
    up_with(platform_config(platform, timeout)).await
}

fn platform_config(platform: &[&str], timeout: Duration) -> ExecutorConfig {
    let mut config: ExecutorConfig = test_executor_config();
    config.allow_outbound = platform.iter().map(|e| e.parse().unwrap()).collect();
    config.limits.timeout = timeout;
    config.limits.max_memory_bytes = 32 << 20;
    config
}

/// Uploads the testkit's `fetch` as `user/fetch` allowed `hosts`.
async fn upload_fetch(p: &Platform, user: &str, hosts: &[String]) {
    upload_allowed(p, &format!("{user}/fetch"), guest("testkit"), hosts).await
}

/// Uploads `wasm` as `user_function` allowed `hosts`.
pub(crate) async fn upload_allowed(
    p: &Platform,
    user_function: &str,
    wasm: Vec<u8>,
    hosts: &[String],
) {
    let query: Vec<String> = hosts.iter().map(|h| format!("allow_host={h}")).collect();
    let response = p
        .http
        .put(format!(
            "{}/f/{user_function}?{}",
            p.upload,
            query.join("&")
        ))
        .body(wasm)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

/// `user_function` (a `fetch` that sends `x-test: X_TEST`) gets each of [`server`]'s answers:
/// status, header, body, a 5 MB body, and a server too slow for the call.
async fn fetches_answer(p: &Platform, user_function: &str, port: u16, x_test: &str) {
    let base = format!("http://127.0.0.1:{port}");
    let fetch = |input: String| p.call(user_function, input);
    assert_eq!(
        fetch(format!("GET {base}/hello")).await,
        (200, "200 yes 8 hi there".into())
    );
    let echoed = format!("{x_test}:some body");
    assert_eq!(
        fetch(format!("POST {base}/echo some body")).await,
        (200, format!("200 - {} {echoed}", echoed.len()))
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
async fn a_function_reaches_the_host_it_is_allowed_and_gets_its_answer() {
    let port = server().await;
    let p = platform(&["127.0.0.1:*"], Duration::from_secs(3)).await;
    upload_fetch(&p, "u", &[format!("127.0.0.1:{port}")]).await;
    fetches_answer(&p, "u/fetch", port, "testkit").await;
}

/// Connections a server has accepted.
struct Counting {
    tcp: tokio::net::TcpListener,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl axum::serve::Listener for Counting {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Ok(accepted) = self.tcp.accept().await {
                self.accepted
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return accepted;
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

#[tokio::test]
async fn calls_reuse_the_executors_connections() {
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let listener = Counting {
        tcp: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        accepted: accepted.clone(),
    };
    let port = listener.tcp.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app()).await.unwrap() });
    let p = platform(&["127.0.0.1:*"], Duration::from_secs(5)).await;
    upload_fetch(&p, "u", &[format!("127.0.0.1:{port}")]).await;
    // One call after another: each finds the last one's connection idle in the pool.
    for _ in 0..5 {
        assert_eq!(
            p.call("u/fetch", format!("GET http://127.0.0.1:{port}/hello"))
                .await,
            (200, "200 yes 8 hi there".into())
        );
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_c_function_reaches_the_host_it_is_allowed_with_fwasm_http_request() {
    let port = server().await;
    let p = platform(&["127.0.0.1:*"], Duration::from_secs(3)).await;
    let wasm = c_guest("http_fetch.c");
    upload_allowed(&p, "u/fetch", wasm.clone(), &[format!("127.0.0.1:{port}")]).await;
    upload_allowed(&p, "other/fetch", wasm, &[]).await;
    fetches_answer(&p, "u/fetch", port, "c").await;
    let fetch = |input: String| p.call("u/fetch", input);
    assert_eq!(
        fetch(format!(
            "GET http://127.0.0.1:{}/",
            port.wrapping_add(1).max(1)
        ))
        .await
        .1,
        format!(
            "error: outbound request to 127.0.0.1:{} refused: u/fetch may not reach it \
             (upload it with --allow-host 127.0.0.1:{0})",
            port.wrapping_add(1).max(1)
        )
    );
    assert_eq!(
        p.call("other/fetch", format!("GET http://127.0.0.1:{port}/hello"))
            .await
            .1,
        format!(
            "error: outbound request to 127.0.0.1:{port} refused: other/fetch may not reach it \
             (upload it with --allow-host 127.0.0.1:{port})"
        )
    );
    // A port just freed: nothing listens there.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let wasm = c_guest("http_fetch.c");
    upload_allowed(&p, "u/closed", wasm, &[format!("127.0.0.1:{closed}")]).await;
    let refused = p
        .call("u/closed", format!("GET http://127.0.0.1:{closed}/"))
        .await
        .1;
    assert!(
        refused.starts_with(&format!("error: the request to 127.0.0.1:{closed} failed")),
        "{refused}"
    );
}

/// A TCP server on loopback that sends back what it is sent, once the client has sent it
/// all. Its port.
pub(crate) async fn tcp_echo_server() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut got = Vec::new();
                if stream.read_to_end(&mut got).await.is_ok() {
                    let _ = stream.write_all(&got).await;
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn a_c_function_talks_tcp_through_posix_sockets() {
    let port = tcp_echo_server().await;
    let p = platform(&["*:*", "127.0.0.1:*"], Duration::from_secs(5)).await;
    let wasm = c_guest("tcp_client.c");
    upload_allowed(&p, "u/tcp", wasm.clone(), &[format!("127.0.0.1:{port}")]).await;
    let client = |input: String| p.call("u/tcp", input);
    assert_eq!(
        client(format!("127.0.0.1 {port} hello over tcp")).await,
        (200, "echoed: hello over tcp".into())
    );
    // Two megabytes each way: many receives, each parking the call.
    assert_eq!(
        client(format!("127.0.0.1 {port} @2097152")).await.1,
        "echoed 2097152 bytes"
    );
    // A port the function may not reach.
    let other = port.wrapping_add(1).max(1);
    assert_eq!(
        client(format!("127.0.0.1 {other} hi")).await.1,
        format!(
            "error: connect: Permission denied (outbound connection to 127.0.0.1:{other} \
             refused: u/tcp may not reach it (upload it with --allow-host 127.0.0.1:{other}))"
        )
    );
    // A name that leads only to loopback is refused at the lookup, naming why.
    upload_allowed(&p, "u/named", wasm.clone(), &[format!("localhost:{port}")]).await;
    let refused = p.call("u/named", format!("localhost {port} hi")).await.1;
    assert!(
        refused.starts_with(
            "error: getaddrinfo: Name lookup refused or failed (fwasm_last_error says why) \
             (localhost resolves only to addresses no name may lead to"
        ),
        "{refused}"
    );
    // A name the function may not reach is not even looked up.
    let refused = client(format!("example.com {port} hi")).await.1;
    assert!(
        refused.contains("looking up example.com refused: u/tcp may not reach it"),
        "{refused}"
    );
    // Functions do not listen.
    assert_eq!(
        client("listen".into()).await.1,
        "bind -1: Not supported; listen -1: Not supported; accept -1: Not supported"
    );
    // Nothing listening: the connection is refused.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    upload_allowed(&p, "u/closed", wasm, &[format!("127.0.0.1:{closed}")]).await;
    let refused = p.call("u/closed", format!("127.0.0.1 {closed} hi")).await.1;
    assert!(
        refused.starts_with(&format!(
            "error: connect: Connection refused (connecting to 127.0.0.1:{closed} failed"
        )),
        "{refused}"
    );
}

/// The value of the metric line starting `series` (0 if there is none yet).
async fn metric(p: &Platform, series: &str) -> f64 {
    let (status, body) = p.get(format!("{}/metrics", p.invoke)).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body.to_vec()).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// A TCP server on loopback that sends `size` bytes to each client and closes. Its port.
async fn tcp_source_server(size: usize) -> u16 {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = stream.write_all(&vec![b'y'; size]).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn a_call_sends_and_receives_within_its_byte_budgets_and_the_metrics_count_them() {
    let http_port = server().await;
    let tcp_port = tcp_echo_server().await;
    let mut config = platform_config(&["127.0.0.1:*"], Duration::from_secs(5));
    config.limits.max_outbound_bytes = 1 << 20;
    let p = up_with(config).await;
    let hosts = [
        format!("127.0.0.1:{http_port}"),
        format!("127.0.0.1:{tcp_port}"),
    ];
    upload_allowed(&p, "u/tcp", c_guest("tcp_client.c"), &hosts).await;
    upload_fetch(&p, "u", &hosts).await;
    // The metrics are the process's, shared with other tests: counts only grow.
    let bytes_in = r#"fwasm_outbound_bytes_total{direction="in"}"#;
    let bytes_out = r#"fwasm_outbound_bytes_total{direction="out"}"#;
    let connected = r#"fwasm_outbound_connections_total{outcome="connected"}"#;
    let before = (
        metric(&p, bytes_in).await,
        metric(&p, bytes_out).await,
        metric(&p, connected).await,
    );
    assert_eq!(
        p.call("u/tcp", format!("127.0.0.1 {tcp_port} @600000"))
            .await
            .1,
        "echoed 600000 bytes"
    );
    assert!(metric(&p, bytes_in).await >= before.0 + 600000.0);
    assert!(metric(&p, bytes_out).await >= before.1 + 600000.0);
    assert!(metric(&p, connected).await >= before.2 + 1.0);
    // 1 MiB out: the first half is sent, the second would pass the budget.
    assert_eq!(
        p.call("u/tcp", format!("127.0.0.1 {tcp_port} @2097152"))
            .await
            .1,
        "error: send: No buffer space available (sending 1048576 more bytes would pass the \
         1048576 bytes a call may send)"
    );
    // 1 MiB in, counted over every receive: the call reads up to the budget, then is refused.
    let source = tcp_source_server(3 << 20).await;
    upload_allowed(
        &p,
        "u/drain",
        c_guest("tcp_client.c"),
        &[format!("127.0.0.1:{source}")],
    )
    .await;
    assert_eq!(
        p.call("u/drain", format!("drain 127.0.0.1 {source}"))
            .await
            .1,
        "error: recv after 1048576 bytes: No buffer space available (this call has received \
         the 1048576 bytes a call may)"
    );
    // A 5 MB response is more than the call may still receive.
    assert_eq!(
        p.call("u/fetch", format!("GET http://127.0.0.1:{http_port}/big"))
            .await
            .1,
        format!(
            "error: the response from 127.0.0.1:{http_port} is over the call's limit of \
             1048576 bytes"
        )
    );
    p.stop().await;
}

#[tokio::test]
async fn a_call_holds_16_sockets_at_once_and_makes_100_connections_at_most() {
    let port = tcp_echo_server().await;
    let p = platform(&["127.0.0.1:*"], Duration::from_secs(20)).await;
    upload_allowed(
        &p,
        "u/tcp",
        c_guest("tcp_client.c"),
        &[format!("127.0.0.1:{port}")],
    )
    .await;
    assert_eq!(
        p.call("u/tcp", "sockets 16".to_string()).await.1,
        "opened 16 sockets"
    );
    assert_eq!(
        p.call("u/tcp", "sockets 17".to_string()).await.1,
        "error: socket 17: No file descriptors available (this call has 16 sockets open, the most a call \
         may)"
    );
    let connects = |n: u32| p.call("u/tcp", format!("connects {n} 127.0.0.1 {port}"));
    assert_eq!(connects(100).await.1, "connected 100 times");
    assert_eq!(
        connects(101).await.1,
        "error: connect 101: No buffer space available (this call has made its 100 outbound \
         requests, connections and lookups, the most a call may)"
    );
}

#[tokio::test]
async fn a_calls_sockets_close_when_it_ends() {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let p = platform(&["127.0.0.1:*"], Duration::from_secs(5)).await;
    upload_allowed(
        &p,
        "u/hold",
        c_guest("tcp_client.c"),
        &[format!("127.0.0.1:{port}")],
    )
    .await;
    let (status, body) = p
        .call("u/hold", format!("hold 127.0.0.1 {port} left open"))
        .await;
    assert_eq!((status, body.as_str()), (200, "holding socket 4"));
    // The call returned without closing its socket: the server still sees the end of it.
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the connection outlived its call");
    assert_eq!(got, b"left open");
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
    // Schemes other than http and https are never sent.
    upload_fetch(&p, "w", &["example.com:*".into()]).await;
    let refused = p
        .call("w/fetch", "GET ftp://example.com/".to_string())
        .await
        .1;
    assert_eq!(
        refused,
        "error: ftp: URLs are not a scheme fwasm sends (http, https)"
    );
}

#[tokio::test]
async fn https_reaches_servers_whose_certificates_the_executor_trusts() {
    let authority = Authority::new("outbound test CA");
    let port = https_server(&authority).await;
    let trusting = |authority: &Authority| {
        let mut config = platform_config(&["127.0.0.1:*"], Duration::from_secs(5));
        config.outbound_roots =
            fwasm_proto::tls::certificates(authority.pem.as_bytes(), "test CA").unwrap();
        config
    };
    let p = up_with(trusting(&authority)).await;
    upload_fetch(&p, "u", &[format!("127.0.0.1:{port}")]).await;
    let base = format!("https://127.0.0.1:{port}");
    assert_eq!(
        p.call("u/fetch", format!("GET {base}/hello")).await,
        (200, "200 yes 8 hi there".into())
    );
    let (status, big) = p.call("u/fetch", format!("GET {base}/big")).await;
    assert_eq!(status, 200);
    assert!(big.starts_with("200 - 5242880 xxxx"), "{big}");
    // An executor trusting another authority refuses the server's certificate.
    let p = up_with(trusting(&Authority::new("another CA"))).await;
    upload_fetch(&p, "u", &[format!("127.0.0.1:{port}")]).await;
    let refused = p.call("u/fetch", format!("GET {base}/hello")).await.1;
    assert!(
        refused.starts_with(&format!("error: the request to 127.0.0.1:{port} failed")),
        "{refused}"
    );
    assert!(refused.contains("UnknownIssuer"), "{refused}");
}

#[tokio::test]
async fn allow_lists_are_set_and_checked_over_grpc_too() {
    let port = server().await;
    let p = platform(&["127.0.0.1:*"], Duration::from_secs(5)).await;
    let upload = |hosts: Vec<String>| fwasm_proto::pb::UploadRequest {
        user: "g".into(),
        function: "fetch".into(),
        wasm: guest("testkit").into(),
        settings: Some(fwasm_proto::pb::FunctionSettings {
            allow_hosts: hosts,
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut grpc = p.grpc_client().await;
    let refused = grpc
        .upload(upload(vec!["no-port.example.com".into()]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("is not HOST:PORT"),
        "{refused:?}"
    );
    grpc.upload(upload(vec![format!("127.0.0.1:{port}")]))
        .await
        .unwrap();
    assert_eq!(
        p.call("g/fetch", format!("GET http://127.0.0.1:{port}/hello"))
            .await,
        (200, "200 yes 8 hi there".into())
    );
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
