//! The web console at `GET /` on the upload port: one bundled page (HTML, script, style)
//! that reads the port's own JSON APIs as the token typed into it. The page holds no data, so
//! it is served to anyone; every API it calls checks the token as for any client. Its
//! content security policy keeps it to this origin: no fetches elsewhere, no inline script.

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const PAGE: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                      img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
                      base-uri 'none'; form-action 'self'";

/// The console's routes, outside the token check.
pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { serve("text/html; charset=utf-8", PAGE) }),
        )
        .route(
            "/console.js",
            get(|| async { serve("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/console.css",
            get(|| async { serve("text/css; charset=utf-8", STYLE) }),
        )
}

fn serve(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
