//! MPI between executors on one gRPC stream per pair of executors (executor.proto's
//! `MpiStream`): a rank's requests to its world's home go out on it with ids, and the home
//! answers each as soon as it is ready, so a receive that waits holds up nothing behind it and
//! no request pays for a call of its own. A stream that breaks fails the requests waiting on
//! it as unavailable (as a unary call would fail) and the next request opens another.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Status, Streaming};
use tracing::Instrument;

use crate::ApiError;
use crate::api::{ExecutorApi, MpiRequest, MpiResponse};
use crate::pb::executor_client::ExecutorClient;
use crate::pb::{MpiEnvelope, MpiRefusal, mpi_envelope::Body};

/// Requests (and answers) a stream holds before its sender waits.
const IN_FLIGHT: usize = 256;

fn request_body(request: MpiRequest) -> Body {
    match request {
        MpiRequest::Join(r) => Body::Join(r),
        MpiRequest::Send(r) => Body::Send(r),
        MpiRequest::Receive(r) => Body::Receive(r),
        MpiRequest::Collective(r) => Body::Collective(r),
        MpiRequest::Finalize(r) => Body::Finalize(r),
        MpiRequest::Abort(r) => Body::Abort(r),
        MpiRequest::RankEnded(r) => Body::RankEnded(r),
    }
}

fn request_of(body: Body) -> Option<MpiRequest> {
    Some(match body {
        Body::Join(r) => MpiRequest::Join(r),
        Body::Send(r) => MpiRequest::Send(r),
        Body::Receive(r) => MpiRequest::Receive(r),
        Body::Collective(r) => MpiRequest::Collective(r),
        Body::Finalize(r) => MpiRequest::Finalize(r),
        Body::Abort(r) => MpiRequest::Abort(r),
        Body::RankEnded(r) => MpiRequest::RankEnded(r),
        _ => return None,
    })
}

fn answer_body(answer: Result<MpiResponse, ApiError>) -> Body {
    match answer {
        Ok(MpiResponse::Joined(r)) => Body::Joined(r),
        Ok(MpiResponse::Done(r)) => Body::Done(r),
        Ok(MpiResponse::Message(r)) => Body::Message(r),
        Ok(MpiResponse::Share(r)) => Body::Share(r),
        Err(err) => {
            let status = Status::from(err);
            Body::Refused(MpiRefusal {
                code: status.code() as i32,
                message: status.message().to_string(),
            })
        }
    }
}

fn answer_of(body: Option<Body>) -> Result<MpiResponse, ApiError> {
    match body {
        Some(Body::Joined(r)) => Ok(MpiResponse::Joined(r)),
        Some(Body::Done(r)) => Ok(MpiResponse::Done(r)),
        Some(Body::Message(r)) => Ok(MpiResponse::Message(r)),
        Some(Body::Share(r)) => Ok(MpiResponse::Share(r)),
        Some(Body::Refused(refused)) => {
            let code = tonic::Code::from_i32(refused.code);
            Err(Status::new(code, refused.message).into())
        }
        _ => Err(ApiError::internal(
            "the world's executor answered an MPI request with another request",
        )),
    }
}

/// The requests waiting for their answers on one stream, by id; closed once it has broken.
#[derive(Default)]
struct Waiting {
    closed: bool,
    replies: HashMap<u64, oneshot::Sender<Result<MpiResponse, ApiError>>>,
}

fn lock(waiting: &Mutex<Waiting>) -> MutexGuard<'_, Waiting> {
    // Nothing panics while holding it; if something did, the map is still whole.
    waiting.lock().unwrap_or_else(PoisonError::into_inner)
}

fn broken() -> ApiError {
    ApiError::unavailable("the stream to the MPI world's executor broke")
}

/// A client's end of the stream to one executor, opened at its first request.
pub(crate) struct MpiStreamClient {
    client: ExecutorClient<Channel>,
    open: tokio::sync::Mutex<Option<Open>>,
    next_id: AtomicU64,
}

struct Open {
    requests: mpsc::Sender<MpiEnvelope>,
    waiting: Arc<Mutex<Waiting>>,
}

impl MpiStreamClient {
    pub(crate) fn new(client: ExecutorClient<Channel>) -> Self {
        Self {
            client,
            open: tokio::sync::Mutex::default(),
            next_id: AtomicU64::new(1),
        }
    }

    /// Sends `request` on the stream (opening one if there is none that works) and waits for
    /// its answer.
    pub(crate) async fn ask(&self, request: MpiRequest) -> Result<MpiResponse, ApiError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        let requests = {
            let mut open = self.open.lock().await;
            let working = open.as_ref().is_some_and(|o| !lock(&o.waiting).closed);
            if !working {
                *open = Some(self.connect().await?);
            }
            let open = open.as_ref().expect("opened just now if it was not");
            let mut waiting = lock(&open.waiting);
            if waiting.closed {
                return Err(broken());
            }
            waiting.replies.insert(id, reply);
            open.requests.clone()
        };
        let envelope = MpiEnvelope {
            id,
            body: Some(request_body(request)),
        };
        // A stream that stopped taking requests has broken: its reader fails the reply.
        let _ = requests.send(envelope).await;
        answer.await.unwrap_or_else(|_| Err(broken()))
    }

    async fn connect(&self) -> Result<Open, ApiError> {
        let (requests, outgoing) = mpsc::channel(IN_FLIGHT);
        let mut client = self.client.clone();
        let outgoing = crate::trace::outgoing(ReceiverStream::new(outgoing));
        let answers = client.mpi_stream(outgoing).await?.into_inner();
        let waiting = Arc::new(Mutex::new(Waiting::default()));
        tokio::spawn(read_answers(answers, waiting.clone()).in_current_span());
        Ok(Open { requests, waiting })
    }
}

/// Hands each answer to the request waiting for it; once the stream ends, fails every request
/// still waiting.
async fn read_answers(mut answers: Streaming<MpiEnvelope>, waiting: Arc<Mutex<Waiting>>) {
    while let Ok(Some(envelope)) = answers.message().await {
        let reply = lock(&waiting).replies.remove(&envelope.id);
        if let Some(reply) = reply {
            let _ = reply.send(answer_of(envelope.body));
        }
    }
    let stranded = {
        let mut waiting = lock(&waiting);
        waiting.closed = true;
        std::mem::take(&mut waiting.replies)
    };
    for (_, reply) in stranded {
        let _ = reply.send(Err(broken()));
    }
}

/// The server's end: answers every request on `incoming` from `executor`, each as it is
/// ready, in the span `span`.
pub(crate) fn serve(
    executor: Arc<dyn ExecutorApi>,
    mut incoming: Streaming<MpiEnvelope>,
    span: tracing::Span,
) -> ReceiverStream<Result<MpiEnvelope, Status>> {
    static METER: crate::metrics::RpcMeter = crate::metrics::RpcMeter::new("mpi_stream");
    let (answers, outgoing) = mpsc::channel(IN_FLIGHT);
    let reading = async move {
        while let Ok(Some(envelope)) = incoming.message().await {
            let (executor, answers) = (executor.clone(), answers.clone());
            let answering = async move {
                let started = Instant::now();
                let answer = match envelope.body.and_then(request_of) {
                    Some(request) => executor.mpi(request).await,
                    None => Err(ApiError::invalid_argument(
                        "an MPI stream's request names no request",
                    )),
                };
                METER.record(started, answer.as_ref().err());
                let body = Some(answer_body(answer));
                let _ = answers
                    .send(Ok(MpiEnvelope {
                        id: envelope.id,
                        body,
                    }))
                    .await;
            };
            tokio::spawn(answering.in_current_span());
        }
    };
    tokio::spawn(reading.instrument(span));
    ReceiverStream::new(outgoing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::{MpiRankRef, MpiReply};

    /// An executor whose MPI joins never answer (and say when one arrives); finalizes do.
    struct Stalls(Arc<tokio::sync::Notify>);

    #[async_trait::async_trait]
    impl ExecutorApi for Stalls {
        async fn execute(&self, _: crate::pb::Call) -> Result<crate::pb::CallResult, ApiError> {
            Err(ApiError::internal("runs no calls"))
        }
        async fn mpi(&self, request: MpiRequest) -> Result<MpiResponse, ApiError> {
            match request {
                MpiRequest::Join(_) => {
                    self.0.notify_one();
                    std::future::pending().await
                }
                _ => Ok(MpiResponse::Done(MpiReply::default())),
            }
        }
    }

    /// Serves `Stalls` on a port of its own; its address.
    async fn serving() -> (std::net::SocketAddr, Arc<tokio::sync::Notify>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let arrived = Arc::new(tokio::sync::Notify::new());
        let service = crate::grpc::ExecutorServer(Arc::new(Stalls(arrived.clone())));
        let serve = crate::grpc::serve(
            listener,
            service.into_service(),
            None,
            std::future::pending(),
        );
        tokio::spawn(async move { serve.await.unwrap() });
        (addr, arrived)
    }

    /// A proxy to `to` whose connections [`Cut`] breaks, as a network failure would.
    struct Cut(Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>);

    impl Cut {
        async fn proxy(to: std::net::SocketAddr) -> (std::net::SocketAddr, Cut) {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
            let kept = links.clone();
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let link = tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    kept.lock().unwrap().push(link);
                }
            });
            (addr, Cut(links))
        }

        fn now(&self) {
            for link in self.0.lock().unwrap().drain(..) {
                link.abort();
            }
        }
    }

    #[tokio::test]
    async fn a_broken_stream_fails_its_waiting_requests_and_the_next_opens_another() {
        let (home, arrived) = serving().await;
        let (addr, cut) = Cut::proxy(home).await;
        let executor = Arc::new(crate::grpc::GrpcExecutor::new(
            crate::grpc::channel(&addr.to_string(), None).unwrap(),
        ));
        let join = MpiRequest::Join(MpiRankRef {
            world_id: 7,
            rank: 1,
        });
        let waiting = {
            let executor = executor.clone();
            tokio::spawn(async move { executor.mpi(join).await })
        };
        arrived.notified().await;
        // The connection breaks with the request on its stream.
        cut.now();
        let failed = waiting.await.unwrap().unwrap_err();
        assert_eq!(failed.code, crate::ErrorCode::Unavailable, "{failed:?}");
        // The next request opens a stream of its own (once the channel has reconnected).
        let finalize = MpiRequest::Finalize(MpiRankRef {
            world_id: 7,
            rank: 1,
        });
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match executor.mpi(finalize.clone()).await {
                Ok(MpiResponse::Done(_)) => break,
                Err(err)
                    if err.code == crate::ErrorCode::Unavailable && Instant::now() < deadline =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn requests_and_answers_cross_the_stream_unchanged() {
        let join = MpiRankRef {
            world_id: 7,
            rank: 1,
        };
        match request_of(request_body(MpiRequest::Join(join))) {
            Some(MpiRequest::Join(back)) => assert_eq!(back, join),
            other => panic!("{other:?}"),
        }
        let done = answer_of(Some(answer_body(Ok(
            MpiResponse::Done(MpiReply::default()),
        ))));
        assert!(matches!(done, Ok(MpiResponse::Done(_))));
        let refused = answer_of(Some(answer_body(Err(ApiError::not_found("no world 7")))));
        let refused = refused.unwrap_err();
        assert_eq!(
            (refused.code, refused.message.as_str()),
            (crate::ErrorCode::NotFound, "no world 7")
        );
        // An answer where a request belongs is no request.
        assert!(request_of(Body::Done(MpiReply::default())).is_none());
    }
}
