//! A rank's way to its world: the world itself when it lives on the rank's executor, else
//! the world's home executor over gRPC (executor.proto's `Mpi*` calls), which keeps it for
//! every rank. Either way a rank sees the same world: one place matches its messages, runs
//! its rounds and knows when it broke.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use fwasm_proto::api::{ExecutorApi, MpiRequest, MpiResponse};
use fwasm_proto::pb::{MpiAbortRequest, MpiBroken, MpiMessage, MpiRankRef, MpiReceiveRequest};

use super::collective::{Collective, Pieces};
use super::world::{Among, Broken, Matching, Message, World};

#[derive(Clone)]
pub(crate) enum WorldHandle {
    Local(Arc<World>),
    Remote(Arc<RemoteWorld>),
}

/// A world kept by another executor, as a rank here reaches it.
pub(crate) struct RemoteWorld {
    pub(crate) id: u64,
    pub(crate) size: u32,
    created: Instant,
    home: Arc<dyn ExecutorApi>,
    /// The code of the `MPI_Abort` that ended the world, once the home has said so.
    aborted: Mutex<Option<i32>>,
}

impl RemoteWorld {
    /// World `id` of `size` ranks, made `age` ago, kept by `home`.
    pub(crate) fn new(id: u64, size: u32, age: Duration, home: Arc<dyn ExecutorApi>) -> Self {
        Self {
            id,
            size,
            created: Instant::now().checked_sub(age).unwrap_or_else(Instant::now),
            home,
            aborted: Mutex::new(None),
        }
    }

    async fn ask(&self, request: MpiRequest) -> Result<MpiResponse, Broken> {
        self.home.mpi(request).await.map_err(|e| {
            format!(
                "the executor that keeps MPI world {} did not answer: {}",
                self.id, e.message
            )
        })
    }

    /// `Err` with the reason if the home says the world broke.
    fn check(&self, broken: Option<MpiBroken>) -> Result<(), Broken> {
        match broken {
            None => Ok(()),
            Some(broken) => {
                if broken.aborted {
                    *self.aborted.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(broken.abort_code);
                }
                Err(broken.reason)
            }
        }
    }

    fn rank(&self, rank: u32) -> MpiRankRef {
        MpiRankRef {
            world_id: self.id,
            rank,
        }
    }
}

/// What the home answered, when it is not what the request asks for.
fn unexpected(response: MpiResponse) -> Broken {
    format!("the world's executor answered {response:?}")
}

impl WorldHandle {
    pub(crate) fn id(&self) -> u64 {
        match self {
            WorldHandle::Local(world) => world.id,
            WorldHandle::Remote(world) => world.id,
        }
    }

    pub(crate) fn size(&self) -> u32 {
        match self {
            WorldHandle::Local(world) => world.size,
            WorldHandle::Remote(world) => world.size,
        }
    }

    /// When rank 0 made the world.
    pub(crate) fn created(&self) -> Instant {
        match self {
            WorldHandle::Local(world) => world.created,
            WorldHandle::Remote(world) => world.created,
        }
    }

    /// The code of the `MPI_Abort` that ended the world, if one did (and this rank knows).
    pub(crate) fn abort_code(&self) -> Option<i32> {
        match self {
            WorldHandle::Local(world) => world.abort_code(),
            WorldHandle::Remote(world) => {
                *world.aborted.lock().unwrap_or_else(PoisonError::into_inner)
            }
        }
    }

    /// The world itself, when it lives here (its sends need no wait).
    pub(crate) fn local(&self) -> Option<&Arc<World>> {
        match self {
            WorldHandle::Local(world) => Some(world),
            WorldHandle::Remote(_) => None,
        }
    }

    pub(crate) async fn send(&self, to: u32, message: Message) -> Result<(), Broken> {
        let world = match self {
            WorldHandle::Local(world) => return world.send(to, message),
            WorldHandle::Remote(world) => world,
        };
        let request = MpiRequest::Send(MpiMessage {
            world_id: world.id,
            source: message.source,
            dest: to,
            tag: message.tag,
            data: message.data,
            broken: None,
            context: message.context,
        });
        match world.ask(request).await? {
            MpiResponse::Done(reply) => world.check(reply.broken),
            other => Err(unexpected(other)),
        }
    }

    pub(crate) async fn receive(
        &self,
        at: u32,
        matching: Matching,
        takes: bool,
    ) -> Result<Message, Broken> {
        let world = match self {
            WorldHandle::Local(world) => return world.receive(at, matching, takes).await,
            WorldHandle::Remote(world) => world,
        };
        let request = MpiRequest::Receive(MpiReceiveRequest {
            world_id: world.id,
            rank: at,
            source: matching.source,
            tag: matching.tag,
            takes,
            context: matching.context,
        });
        match world.ask(request).await? {
            MpiResponse::Message(message) => {
                world.check(message.broken)?;
                Ok(Message {
                    source: message.source,
                    tag: message.tag,
                    context: matching.context,
                    data: message.data,
                })
            }
            other => Err(unexpected(other)),
        }
    }

    pub(crate) async fn collective(
        &self,
        rank: u32,
        among: Among,
        collective: Collective,
        contribution: Pieces,
    ) -> Result<Pieces, Broken> {
        let world = match self {
            WorldHandle::Local(world) => {
                return world
                    .collective(rank, among, collective, contribution)
                    .await;
            }
            WorldHandle::Remote(world) => world,
        };
        let request =
            MpiRequest::Collective(collective.contribution(world.id, rank, &among, contribution));
        match world.ask(request).await? {
            MpiResponse::Share(share) => {
                world.check(share.broken)?;
                Ok(share.pieces)
            }
            other => Err(unexpected(other)),
        }
    }

    pub(crate) async fn finalize(&self, rank: u32) -> Result<(), Broken> {
        let world = match self {
            WorldHandle::Local(world) => return world.finalize(rank).await,
            WorldHandle::Remote(world) => world,
        };
        match world.ask(MpiRequest::Finalize(world.rank(rank))).await? {
            MpiResponse::Done(reply) => world.check(reply.broken),
            other => Err(unexpected(other)),
        }
    }

    /// Ends the world with rank `rank`'s `MPI_Abort(code)`.
    pub(crate) async fn abort(&self, rank: u32, code: i32) {
        match self {
            WorldHandle::Local(world) => world.abort(rank, code),
            WorldHandle::Remote(world) => {
                *world.aborted.lock().unwrap_or_else(PoisonError::into_inner) = Some(code);
                let request = MpiRequest::Abort(MpiAbortRequest {
                    world_id: world.id,
                    rank,
                    code,
                });
                // If the home cannot be reached, the rank's end (reported as for any rank)
                // still ends the world.
                if let Err(why) = world.ask(request).await {
                    tracing::warn!(world = world.id, error = %why, "MPI_Abort did not reach its world");
                }
            }
        }
    }
}
