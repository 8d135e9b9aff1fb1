//! A stand-in sidecar for the tests: a gRPC server that takes any method, records the request
//! exactly as it came over the wire (its path, raw message and trace header), and answers with
//! the message set for that path, after a delay if asked to.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use tokio::net::TcpListener;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Request, Response, Status};

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `/package.Service/Method`.
    pub path: String,
    pub message: Bytes,
    /// The W3C trace context it carried (checked by the traces test).
    #[allow(dead_code)]
    pub traceparent: Option<String>,
}

impl Recorded {
    /// The message decoded as `M`.
    pub fn decode<M: prost::Message + Default>(&self) -> M {
        M::decode(self.message.clone()).expect("the recorded request decodes")
    }
}

#[derive(Clone, Default)]
pub struct RecordingSidecar {
    recorded: Arc<Mutex<Vec<Recorded>>>,
    answers: Arc<Mutex<HashMap<String, Bytes>>>,
    delay: Arc<Mutex<Duration>>,
}

impl RecordingSidecar {
    /// Serves on a free loopback port; returns its `host:port`.
    pub async fn start(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let router = axum::Router::new().fallback_service(Recorder(self.clone()));
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_routes(tonic::service::Routes::from(router))
                .serve_with_incoming(incoming),
        );
        addr
    }

    /// Answers requests to `path` with `message` (an empty message otherwise).
    pub fn answer(&self, path: &str, message: impl prost::Message) {
        let encoded = message.encode_to_vec().into();
        self.answers.lock().unwrap().insert(path.into(), encoded);
    }

    /// Waits this long before answering each request.
    pub fn delay(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }
}

/// The HTTP side: every path is a unary gRPC method of raw bytes.
#[derive(Clone)]
struct Recorder(RecordingSidecar);

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl tower::Service<axum::http::Request<axum::body::Body>> for Recorder {
    type Response = axum::http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Boxed<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::http::Request<axum::body::Body>) -> Self::Future {
        let method = Method {
            sidecar: self.0.clone(),
            path: request.uri().path().to_string(),
        };
        Box::pin(async move { Ok(tonic::server::Grpc::new(Raw).unary(method, request).await) })
    }
}

/// The gRPC side of one request.
struct Method {
    sidecar: RecordingSidecar,
    path: String,
}

impl tower::Service<Request<Bytes>> for Method {
    type Response = Response<Bytes>;
    type Error = Status;
    type Future = Boxed<Result<Response<Bytes>, Status>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let sidecar = self.sidecar.clone();
        let path = self.path.clone();
        Box::pin(async move {
            let traceparent = request
                .metadata()
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            sidecar.recorded.lock().unwrap().push(Recorded {
                path: path.clone(),
                message: request.into_inner(),
                traceparent,
            });
            let delay = *sidecar.delay.lock().unwrap();
            tokio::time::sleep(delay).await;
            let answer = sidecar.answers.lock().unwrap().get(&path).cloned();
            Ok(Response::new(answer.unwrap_or_default()))
        })
    }
}

/// Messages as raw bytes, both ways.
#[derive(Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
