//! Subscriptions on the upload port (8002): `PUT`/`DELETE /sub/<user>/<topic>/<function>`
//! subscribe and unsubscribe a function; `GET /sub/<user>[/<topic>]` lists them, one
//! `topic function` pair per line.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};

use crate::gateway::Gateway;
use crate::http::{error_response, text};

pub(crate) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route(
            "/sub/{user}/{topic}/{function}",
            put(subscribe).delete(unsubscribe),
        )
        .route("/sub/{user}", get(list_all))
        .route("/sub/{user}/{topic}", get(list_topic))
}

async fn subscribe(
    State(gateway): State<Arc<Gateway>>,
    Path((user, topic, function)): Path<(String, String, String)>,
) -> Response {
    match gateway.subscribe(&user, &topic, &function).await {
        Ok(()) => text(
            StatusCode::OK,
            format!("{user}/{function} is subscribed to {topic}"),
        ),
        Err(err) => error_response(err),
    }
}

async fn unsubscribe(
    State(gateway): State<Arc<Gateway>>,
    Path((user, topic, function)): Path<(String, String, String)>,
) -> Response {
    match gateway.unsubscribe(&user, &topic, &function).await {
        Ok(()) => text(
            StatusCode::OK,
            format!("{user}/{function} is no longer subscribed to {topic}"),
        ),
        Err(err) => error_response(err),
    }
}

async fn list_all(State(gateway): State<Arc<Gateway>>, Path(user): Path<String>) -> Response {
    list(&gateway, &user, "").await
}

async fn list_topic(
    State(gateway): State<Arc<Gateway>>,
    Path((user, topic)): Path<(String, String)>,
) -> Response {
    list(&gateway, &user, &topic).await
}

async fn list(gateway: &Gateway, user: &str, topic: &str) -> Response {
    match gateway.subscriptions(user, topic).await {
        Ok(found) => {
            let body: String = found
                .iter()
                .map(|s| format!("{} {}\n", s.topic, s.function))
                .collect();
            (StatusCode::OK, body).into_response()
        }
        Err(err) => error_response(err),
    }
}
