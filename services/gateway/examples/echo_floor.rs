//! The floor fwasm's HTTP figures are compared with: a bare axum server that answers
//! `POST /f/{user}/{function}` with the request's body, on the same runtime settings as the
//! gateway. Run it beside `fwasm up` and point wrk at both in the same run (BENCHMARKS.md).
//!
//! cargo run --release -p fwasm-gateway --example echo_floor -- 127.0.0.1:18090

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18090".into());
    let app = Router::new()
        .route("/f/{user}/{function}", post(|body: Bytes| async { body }))
        // As large as the gateway takes by default.
        .layer(DefaultBodyLimit::max(64 << 20));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("echo floor on http://{addr}/f/demo/echo");
    axum::serve(listener, app).await
}
