//! The home executor's side of MPI between executors: what it answers a rank on another
//! executor (executor.proto's `Mpi*` calls), from the world it keeps. Every request is checked
//! against the world (its ranks, roots) before the world is touched.

use std::sync::Arc;
use std::time::Duration;

use fwasm_proto::ApiError;
use fwasm_proto::api::{MpiRequest, MpiResponse};
use fwasm_proto::pb::{MpiBroken, MpiJoinReply, MpiMessage, MpiReply, MpiShare};

use super::Worlds;
use super::collective::Collective;
use super::world::{Among, Broken, Matching, Message, WORLD_CONTEXT, World};

/// Answers `request` from the worlds this executor keeps. How long a receive or a collective
/// waits is the asking rank's to bound (it stops asking when its time runs out).
pub(crate) async fn answer(worlds: &Worlds, request: MpiRequest) -> Result<MpiResponse, ApiError> {
    let world_id = match &request {
        MpiRequest::Join(r) | MpiRequest::Finalize(r) => r.world_id,
        MpiRequest::Send(m) => m.world_id,
        MpiRequest::Receive(r) => r.world_id,
        MpiRequest::Collective(c) => c.world_id,
        MpiRequest::Abort(a) => a.world_id,
        MpiRequest::RankEnded(e) => e.world_id,
    };
    // Rank 0 always runs here, where its world is: no other executor speaks for it.
    let not_rank_0 = |rank: u32| match rank {
        0 => Err(ApiError::invalid_argument(format!(
            "rank 0 of MPI world {world_id} runs on the world's own executor"
        ))),
        rank => Ok(rank),
    };
    if let MpiRequest::RankEnded(ended) = request {
        let ended = ended
            .ended
            .ok_or_else(|| ApiError::invalid_argument("a rank's end without the rank"))?;
        not_rank_0(ended.rank)?;
        worlds.rank_ended_at(world_id, ended);
        return Ok(MpiResponse::Done(MpiReply::default()));
    }
    let world = worlds.get(world_id).ok_or_else(|| {
        ApiError::not_found(format!(
            "MPI world {world_id} is not kept here (it has ended)"
        ))
    })?;
    let rank = |rank: u32| -> Result<u32, ApiError> {
        (rank < world.size).then_some(rank).ok_or_else(|| {
            ApiError::invalid_argument(format!(
                "rank {rank} is not in MPI world {world_id} of {} ranks",
                world.size
            ))
        })
    };
    // A communicator the world has, and its members: what every rank named must be among.
    let members_of = |context: u32| {
        world.members_of(context).ok_or_else(|| {
            ApiError::invalid_argument(format!(
                "MPI world {world_id} has no communicator with context {context}"
            ))
        })
    };
    let member = |members: &[u32], rank: u32| -> Result<u32, ApiError> {
        members.contains(&rank).then_some(rank).ok_or_else(|| {
            ApiError::invalid_argument(format!("rank {rank} is not in the communicator"))
        })
    };
    Ok(match request {
        MpiRequest::Join(r) => {
            let joined = world.join(rank(not_rank_0(r.rank)?)?);
            MpiResponse::Joined(MpiJoinReply {
                size: world.size,
                age_seconds: world.created.elapsed().as_secs_f64(),
                broken: joined.err().map(|why| broken(&world, why)),
            })
        }
        MpiRequest::Send(m) => {
            let (to, source) = (rank(m.dest)?, rank(not_rank_0(m.source)?)?);
            let members = members_of(context(m.context))?;
            let (to, source) = (member(&members, to)?, member(&members, source)?);
            let message = Message {
                source,
                tag: m.tag,
                context: context(m.context),
                data: m.data,
            };
            done(&world, world.send(to, message))
        }
        MpiRequest::Receive(r) => {
            let at = rank(not_rank_0(r.rank)?)?;
            let source = r.source.map(&rank).transpose()?;
            let members = members_of(context(r.context))?;
            member(&members, at)?;
            if let Some(source) = source {
                member(&members, source)?;
            }
            let matching = Matching {
                source,
                tag: r.tag,
                context: context(r.context),
            };
            match world.receive(at, matching, r.takes).await {
                Ok(message) => MpiResponse::Message(MpiMessage {
                    world_id,
                    source: message.source,
                    dest: at,
                    tag: message.tag,
                    data: message.data,
                    broken: None,
                    context: message.context,
                }),
                Err(why) => MpiResponse::Message(MpiMessage {
                    broken: Some(broken(&world, why)),
                    ..MpiMessage::default()
                }),
            }
        }
        MpiRequest::Collective(c) => {
            let from = rank(not_rank_0(c.rank)?)?;
            let members = members_of(context(c.context))?;
            if !c.members.is_empty() && c.members[..] != members[..] {
                return Err(ApiError::invalid_argument(format!(
                    "the communicator with context {} has other ranks than {:?}",
                    c.context, c.members
                )));
            }
            member(&members, from)?;
            let collective =
                Collective::of(&c, members.len() as u32).map_err(ApiError::invalid_argument)?;
            let among = Among {
                context: context(c.context),
                seq: c.seq,
                members,
            };
            match world.collective(from, among, collective, c.pieces).await {
                Ok(pieces) => MpiResponse::Share(MpiShare {
                    pieces,
                    broken: None,
                }),
                Err(why) => MpiResponse::Share(MpiShare {
                    pieces: Vec::new(),
                    broken: Some(broken(&world, why)),
                }),
            }
        }
        MpiRequest::Finalize(r) => {
            let at = rank(not_rank_0(r.rank)?)?;
            done(&world, world.finalize(at).await)
        }
        MpiRequest::Abort(a) => {
            world.abort(rank(not_rank_0(a.rank)?)?, a.code);
            MpiResponse::Done(MpiReply::default())
        }
        // Answered above.
        MpiRequest::RankEnded(_) => MpiResponse::Done(MpiReply::default()),
    })
}

/// A context as the wire carries it: 0 is `MPI_COMM_WORLD`'s.
fn context(sent: u32) -> u32 {
    match sent {
        0 => WORLD_CONTEXT,
        context => context,
    }
}

fn done(world: &Arc<World>, outcome: Result<(), Broken>) -> MpiResponse {
    MpiResponse::Done(MpiReply {
        broken: outcome.err().map(|why| broken(world, why)),
    })
}

fn broken(world: &World, why: Broken) -> MpiBroken {
    let code = world.abort_code();
    MpiBroken {
        reason: why,
        aborted: code.is_some(),
        abort_code: code.unwrap_or(0),
    }
}

/// How old a world a rank joins is, from its home's answer.
pub(crate) fn age(reply: &MpiJoinReply) -> Duration {
    Duration::try_from_secs_f64(reply.age_seconds).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use fwasm_proto::ErrorCode;
    use fwasm_proto::pb::{MpiContribution, MpiRankEndedRequest, MpiRankRef};

    use super::*;

    #[tokio::test]
    async fn requests_from_other_executors_are_checked_against_the_world() {
        let worlds = Worlds::default();
        worlds.create(42, 2, 1 << 20);
        let code = |answer: Result<MpiResponse, ApiError>| answer.unwrap_err().code;
        let join = |rank| MpiRequest::Join(MpiRankRef { world_id: 42, rank });
        // Rank 0 is the world's own executor's; rank 2 is not in a world of 2.
        assert_eq!(
            code(answer(&worlds, join(0)).await),
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            code(answer(&worlds, join(2)).await),
            ErrorCode::InvalidArgument
        );
        let other = MpiRequest::Join(MpiRankRef {
            world_id: 7,
            rank: 1,
        });
        assert_eq!(code(answer(&worlds, other).await), ErrorCode::NotFound);
        let no_rank = MpiRequest::RankEnded(MpiRankEndedRequest {
            world_id: 42,
            ended: None,
        });
        assert_eq!(
            code(answer(&worlds, no_rank).await),
            ErrorCode::InvalidArgument
        );
        let bad_root = MpiRequest::Collective(MpiContribution {
            world_id: 42,
            rank: 1,
            kind: fwasm_proto::pb::MpiCollectiveKind::Bcast as i32,
            root: 5,
            ..MpiContribution::default()
        });
        assert_eq!(
            code(answer(&worlds, bad_root).await),
            ErrorCode::InvalidArgument
        );
        // Only communicators the world made, and ranks in them.
        let unknown_context = MpiRequest::Send(fwasm_proto::pb::MpiMessage {
            world_id: 42,
            source: 1,
            dest: 0,
            context: 99,
            ..fwasm_proto::pb::MpiMessage::default()
        });
        assert_eq!(
            code(answer(&worlds, unknown_context).await),
            ErrorCode::InvalidArgument
        );
        let other_members = MpiRequest::Collective(MpiContribution {
            world_id: 42,
            rank: 1,
            kind: fwasm_proto::pb::MpiCollectiveKind::Barrier as i32,
            members: vec![1, 1],
            ..MpiContribution::default()
        });
        assert_eq!(
            code(answer(&worlds, other_members).await),
            ErrorCode::InvalidArgument
        );
        // A proper join answers with the world's size.
        match answer(&worlds, join(1)).await.unwrap() {
            MpiResponse::Joined(joined) => assert_eq!((joined.size, joined.broken), (2, None)),
            other => panic!("{other:?}"),
        }
    }
}
