//! Around every public gRPC service: each request is handled as its caller (see `auth`), the
//! token coming from its `authorization: Bearer` or `dapr-api-token` metadata. A request with
//! no token or an unknown one (while tokens are on) ends here with UNAUTHENTICATED. The gRPC
//! health and reflection services stay open.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;

use crate::auth;
use crate::gateway::Gateway;

#[derive(Clone)]
pub(crate) struct Authenticated<S> {
    inner: S,
    gateway: Arc<Gateway>,
}

impl<S> Authenticated<S> {
    pub(crate) fn new(inner: S, gateway: Arc<Gateway>) -> Self {
        Self { inner, gateway }
    }
}

impl<S> Service<http::Request<Body>> for Authenticated<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let headers = request.headers();
        let token = auth::presented(|name| headers.get(name).and_then(|v| v.to_str().ok()))
            .map(str::to_string);
        // The clone takes the place of the service made ready, which handles this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gateway = self.gateway.clone();
        Box::pin(async move {
            match gateway.caller(token.as_deref()).await {
                Ok(caller) => caller.scope(inner.call(request)).await,
                Err(err) => Ok(tonic::Status::from(err).into_http()),
            }
        })
    }
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}
