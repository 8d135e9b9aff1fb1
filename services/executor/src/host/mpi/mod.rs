//! A call's side of MPI: which rank of which world it is, its open requests, its Cartesian
//! communicators, and the ops a blocking MPI import parks the call for. The imports
//! themselves are in `imports.rs`; the worlds in `crate::mpi`.
//!
//! MPI errors are fatal, as MPI's default error handler (and Faasm) makes them: an import
//! that cannot do what it is asked fails the rank's call with the reason, and that breaks the
//! world for the other ranks.

pub(crate) mod imports;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use wasmi::{Memory, Store};

use super::HostState;
use super::memory::copy_into;
use crate::mpi::WorldHandle;
use crate::mpi::collective::{Collective, Pieces};
use crate::mpi::world::{Among, Matching, Message, WORLD_CONTEXT};

/// `rank R of MPI world W`: how messages name a rank.
pub(crate) fn rank_name(rank: u32, world: u64) -> String {
    format!("rank {rank} of MPI world {world}")
}

/// How a rank's blocking MPI call ended badly: the call fails with this.
#[derive(Debug)]
pub(crate) struct MpiFailure {
    pub(crate) message: String,
    /// The call's time ran out while it waited.
    pub(crate) timed_out: bool,
    /// A rank called `MPI_Abort` with this code: the call exits with it too.
    pub(crate) exit_code: Option<i32>,
}

/// The MPI side of one call.
pub(crate) struct CallMpi {
    call_id: u64,
    /// The world this call joins (0: it makes one, as rank 0).
    world_id: u64,
    rank: u32,
    /// The world's size, for a rank 0 that makes it.
    size: u32,
    /// What the other ranks get, for a rank 0 that starts them.
    input: Bytes,
    cmdline: String,
    /// Where its world is kept, for a rank on another executor than rank 0's.
    home: String,
    /// Set by `MPI_Init`.
    pub(crate) world: Option<WorldHandle>,
    pub(crate) finalized: bool,
    /// Collectives this rank has entered, per communicator: every member's n-th there is the
    /// same round.
    collectives: HashMap<u32, u64>,
    /// The communicators this rank is in, by context: their world ranks, in their order.
    pub(crate) comms: HashMap<u32, Arc<[u32]>>,
    /// The windows this rank made (`MPI_Win_create`), by their handle's address.
    pub(crate) windows: HashMap<u32, Window>,
    /// The groups this rank made (`MPI_Comm_group`, `MPI_Group_incl`), by id: world ranks.
    pub(crate) groups: HashMap<i32, Arc<[u32]>>,
    next_group: i32,
    /// Receives posted and not yet matched, in the order posted (which is the order they match
    /// in).
    posted: VecDeque<Posted>,
    /// Requests complete and not yet waited for, with their status.
    done: HashMap<i32, Status>,
    next_request: i32,
    /// The Cartesian communicators this rank made, by the guest address of their handle.
    pub(crate) carts: HashMap<u32, Cart>,
}

/// A posted receive: where its message goes.
#[derive(Debug, Clone)]
pub(crate) struct Posted {
    pub(crate) request: i32,
    pub(crate) matching: Matching,
    pub(crate) buf: u32,
    pub(crate) capacity: u32,
    /// Its communicator's world ranks, to name the sender by its rank there.
    pub(crate) members: Arc<[u32]>,
}

/// `source`, a world rank, by its rank in the communicator of `members`.
pub(crate) fn rank_among(members: &[u32], source: u32) -> i32 {
    members
        .iter()
        .position(|m| *m == source)
        .map_or(-1, |at| at as i32)
}

impl Posted {
    /// Where `message` goes (as much as fits), and the request's status once it has.
    pub(crate) fn received(&self, message: Message) -> ((u32, Bytes), (i32, Status)) {
        let fits = message.data.len().min(self.capacity as usize);
        let status = Status {
            source: rank_among(&self.members, message.source),
            tag: message.tag,
            bytes: fits as i32,
        };
        (
            (self.buf, message.data.slice(..fits)),
            (self.request, status),
        )
    }

    /// What a rank waiting for it waits for, for messages.
    pub(crate) fn waiting_for(&self) -> String {
        format!("for a message from {}", self.matching.describe())
    }
}

impl Landing {
    /// A collective's share written into the rank's memory.
    pub(crate) fn land(self, share: Pieces) -> MpiDone {
        let writes = match self {
            // Where the rank asked, each piece as much as fits.
            Landing::At(placements) => share
                .into_iter()
                .zip(placements)
                .map(|(piece, at)| {
                    let fits = piece.len().min(at.capacity as usize);
                    (at.addr, piece.slice(..fits))
                })
                .collect(),
            // Where the share says (a piece too short to say is no write).
            Landing::Said => share
                .into_iter()
                .filter(|piece| piece.len() >= 4)
                .map(|piece| {
                    let addr = u32::from_le_bytes(piece[..4].try_into().expect("four bytes"));
                    (addr, piece.slice(4..))
                })
                .collect(),
        };
        MpiDone::Wrote {
            writes,
            completed: Vec::new(),
        }
    }
}

impl MpiFailure {
    /// `who` (a rank) stopped because its world broke (`why`), maybe by an `MPI_Abort`.
    pub(crate) fn stopped(who: &str, why: &str, exit_code: Option<i32>) -> Self {
        Self {
            message: format!("{who} stopped: {why}"),
            timed_out: false,
            exit_code,
        }
    }

    /// `who`'s time ran out while it waited (`waiting`: what for).
    pub(crate) fn timed_out(who: &str, waiting: &str) -> Self {
        Self {
            message: format!("{who} waited {waiting} until the call's time ran out"),
            timed_out: true,
            exit_code: None,
        }
    }
}

/// What `MPI_Status` reports of a completed request.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Status {
    pub(crate) source: i32,
    pub(crate) tag: i32,
    pub(crate) bytes: i32,
}

impl Status {
    /// `MPI_Status` as Faasm lays it out: source, tag, error, byte count (4 x i32).
    pub(crate) fn encode(&self) -> [u8; 16] {
        let mut out = [0; 16];
        out[0..4].copy_from_slice(&self.source.to_le_bytes());
        out[4..8].copy_from_slice(&self.tag.to_le_bytes());
        out[12..16].copy_from_slice(&self.bytes.to_le_bytes());
        out
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Cart {
    pub(crate) dims: Vec<i32>,
    pub(crate) periods: Vec<bool>,
}

/// A window of this rank's memory for one-sided communication, and the puts and gets it made
/// since the last fence.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    /// Its communicator.
    pub(crate) context: u32,
    pub(crate) members: Arc<[u32]>,
    pub(crate) base: u32,
    pub(crate) size: u32,
    pub(crate) disp_unit: u32,
    /// Targets by rank in the communicator.
    pub(crate) made: crate::mpi::collective::FenceEntry,
    /// Bytes its puts and gets of this epoch move: at most the call's memory limit.
    pub(crate) moving: usize,
}

/// Where a piece of a collective's share lands in guest memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placement {
    pub(crate) addr: u32,
    pub(crate) capacity: u32,
}

/// Where a collective's share lands in guest memory.
pub(crate) enum Landing {
    /// Piece i at placement i.
    At(Vec<Placement>),
    /// Each piece says where: an address (u32 LE), then its bytes (an RMA fence's writes).
    Said,
}

/// What a blocking MPI import parks its call for.
pub(crate) enum MpiOp {
    /// Rank 0 makes its world and starts ranks 1..size; another rank joins its world.
    Init {
        world_id: u64,
        rank: u32,
        size: u32,
        input: Bytes,
        cmdline: String,
        /// Where the world is kept, for a rank placed on another executor than rank 0's.
        home: String,
    },
    /// `MPI_Abort` in a world kept by another executor: the call then exits with `code`.
    Abort {
        world: WorldHandle,
        rank: u32,
        code: i32,
    },
    /// Sends to a world kept by another executor (to one kept here a send never waits),
    /// then receives, in the order posted: the ones a `MPI_Recv` or `MPI_Wait*` needs, and
    /// every receive posted before them that could take their messages.
    Receive {
        world: WorldHandle,
        rank: u32,
        sends: Vec<(u32, Message)>,
        receives: Vec<Posted>,
    },
    Probe {
        world: WorldHandle,
        rank: u32,
        matching: Matching,
        status: Option<u32>,
        /// The communicator's world ranks, to name the sender by its rank there.
        members: Arc<[u32]>,
    },
    Collective {
        world: WorldHandle,
        rank: u32,
        among: Among,
        collective: Collective,
        contribution: Pieces,
        landing: Landing,
    },
    Finalize {
        world: WorldHandle,
        rank: u32,
    },
}

/// What a completed [`MpiOp`] hands the call.
pub(crate) enum MpiDone {
    Joined(WorldHandle),
    /// Bytes to write into guest memory, and the receive requests now complete.
    Wrote {
        writes: Vec<(u32, Bytes)>,
        completed: Vec<(i32, Status)>,
    },
}

impl std::fmt::Debug for MpiOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.waiting_for())
    }
}

impl std::fmt::Debug for MpiDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MpiDone::Joined(world) => write!(f, "joined world {}", world.id()),
            MpiDone::Wrote { writes, .. } => write!(f, "{} writes", writes.len()),
        }
    }
}

impl MpiOp {
    /// What the rank waits for, for the message if its time runs out.
    pub(crate) fn waiting_for(&self) -> String {
        let from = Matching::describe;
        match self {
            MpiOp::Init { .. } => "in MPI_Init for its world's ranks to start".into(),
            MpiOp::Abort { .. } => "in MPI_Abort".into(),
            MpiOp::Receive {
                sends, receives, ..
            } => match (receives.last(), sends.last()) {
                (Some(last), _) => format!("for a message from {}", from(&last.matching)),
                (None, Some((to, _))) => format!("to send to rank {to}"),
                (None, None) => "for nothing".into(),
            },
            MpiOp::Probe { matching, .. } => format!("in MPI_Probe for {}", from(matching)),
            MpiOp::Collective { collective, .. } => {
                format!("in {} for the other ranks", collective.describe())
            }
            MpiOp::Finalize { .. } => "in MPI_Finalize for the other ranks to end".into(),
        }
    }

    /// Does the op (all but `Init`, which the executor does). `Err`: why the world broke.
    pub(crate) async fn run(self) -> Result<MpiDone, String> {
        match self {
            MpiOp::Init { .. } => Err("MPI_Init is the executor's to do".into()),
            MpiOp::Abort { world, rank, code } => {
                world.abort(rank, code).await;
                Err(format!("rank {rank} called MPI_Abort with code {code}"))
            }
            MpiOp::Receive {
                world,
                rank,
                sends,
                receives,
            } => {
                for (to, message) in sends {
                    world.send(to, message).await?;
                }
                let mut writes = Vec::with_capacity(receives.len());
                let mut completed = Vec::with_capacity(receives.len());
                for posted in receives {
                    let message = world.receive(rank, posted.matching, true).await?;
                    let (write, status) = posted.received(message);
                    writes.push(write);
                    completed.push(status);
                }
                Ok(MpiDone::Wrote { writes, completed })
            }
            MpiOp::Probe {
                world,
                rank,
                matching,
                status,
                members,
            } => {
                let message = world.receive(rank, matching, false).await?;
                let found = Status {
                    source: rank_among(&members, message.source),
                    tag: message.tag,
                    bytes: message.data.len() as i32,
                };
                let writes = status
                    .map(|at| (at, Bytes::copy_from_slice(&found.encode())))
                    .into_iter()
                    .collect();
                Ok(MpiDone::Wrote {
                    writes,
                    completed: Vec::new(),
                })
            }
            MpiOp::Collective {
                world,
                rank,
                among,
                collective,
                contribution,
                landing,
            } => {
                let share = world
                    .collective(rank, among, collective, contribution)
                    .await?;
                Ok(landing.land(share))
            }
            MpiOp::Finalize { world, rank } => {
                world.finalize(rank).await?;
                Ok(MpiDone::Wrote {
                    writes: Vec::new(),
                    completed: Vec::new(),
                })
            }
        }
    }

    /// `rank R of MPI world W`, for messages; `call_id` is the call's (a rank 0's world id).
    pub(crate) fn who(&self, call_id: u64) -> String {
        let (rank, world) = match self {
            MpiOp::Init { world_id, rank, .. } => (*rank, *world_id),
            MpiOp::Abort { world, rank, .. } => (*rank, world.id()),
            MpiOp::Receive { world, rank, .. }
            | MpiOp::Probe { world, rank, .. }
            | MpiOp::Collective { world, rank, .. }
            | MpiOp::Finalize { world, rank } => (*rank, world.id()),
        };
        rank_name(rank, if world == 0 { call_id } else { world })
    }

    /// The world the op is in (none yet for `Init`).
    pub(crate) fn world(&self) -> Option<&WorldHandle> {
        match self {
            MpiOp::Init { .. } => None,
            MpiOp::Abort { world, .. }
            | MpiOp::Receive { world, .. }
            | MpiOp::Probe { world, .. }
            | MpiOp::Collective { world, .. }
            | MpiOp::Finalize { world, .. } => Some(world),
        }
    }
}

impl CallMpi {
    pub(crate) fn new(call: &fwasm_proto::pb::Call) -> Self {
        Self {
            call_id: call.id,
            world_id: call.mpi_world_id,
            // A call that makes its world is its rank 0, whatever else it says.
            rank: match call.mpi_world_id {
                0 => 0,
                _ => call.mpi_rank,
            },
            size: call.mpi_world_size.max(1),
            input: call.input.clone(),
            cmdline: call.cmdline.clone(),
            home: call.mpi_home.clone(),
            world: None,
            finalized: false,
            collectives: HashMap::new(),
            comms: HashMap::new(),
            windows: HashMap::new(),
            groups: HashMap::new(),
            next_group: 1,
            posted: VecDeque::new(),
            done: HashMap::new(),
            next_request: 1,
            carts: HashMap::new(),
        }
    }

    pub(crate) fn rank(&self) -> u32 {
        self.rank
    }

    /// The op `MPI_Init` parks for.
    pub(crate) fn init_op(&self) -> MpiOp {
        MpiOp::Init {
            world_id: self.world_id,
            rank: self.rank,
            size: self.size,
            input: self.input.clone(),
            cmdline: self.cmdline.clone(),
            home: self.home.clone(),
        }
    }

    /// `rank R of MPI world W` (or of the world it is to make), for messages.
    pub(crate) fn who(&self) -> String {
        let world = match &self.world {
            Some(world) => world.id(),
            None if self.world_id == 0 => self.call_id,
            None => self.world_id,
        };
        rank_name(self.rank, world)
    }

    /// The number of the next collective this rank enters in communicator `context`.
    pub(crate) fn next_collective(&mut self, context: u32) -> u64 {
        let next = self.collectives.entry(context).or_insert(0);
        *next += 1;
        *next - 1
    }

    /// Keeps group `members`; its new id (one no group held now has).
    pub(crate) fn new_group(&mut self, members: Arc<[u32]>) -> i32 {
        while self.groups.contains_key(&self.next_group) || self.next_group <= 0 {
            self.next_group = self.next_group.wrapping_add(1);
        }
        let id = self.next_group;
        self.next_group = self.next_group.wrapping_add(1);
        self.groups.insert(id, members);
        id
    }

    /// A new request id (never 0, `MPI_REQUEST_NULL`).
    pub(crate) fn new_request(&mut self) -> i32 {
        let id = self.next_request;
        self.next_request = self.next_request.checked_add(1).unwrap_or(1);
        id
    }

    /// Posts a receive; returns its request id.
    pub(crate) fn post(
        &mut self,
        matching: Matching,
        buf: u32,
        capacity: u32,
        members: Arc<[u32]>,
    ) -> i32 {
        let request = self.new_request();
        self.posted.push_back(Posted {
            request,
            matching,
            buf,
            capacity,
            members,
        });
        request
    }

    /// A send request: complete at once (sends are buffered).
    pub(crate) fn sent(&mut self, status: Status) -> i32 {
        let request = self.new_request();
        self.done.insert(request, status);
        request
    }

    /// Whether `request` is complete (or unknown: nothing to wait for).
    pub(crate) fn is_done(&self, request: i32) -> bool {
        !self.posted.iter().any(|p| p.request == request)
    }

    /// The receives to complete, in the order posted, so that `requests` are: those still
    /// posted, and every receive posted before one of them that could take its message (MPI
    /// gives a message to the earliest posted receive that accepts it). Empty if they are all
    /// complete.
    pub(crate) fn receives_for(&mut self, requests: &[i32]) -> Vec<Posted> {
        let mut taken = vec![false; self.posted.len()];
        let mut needed: Vec<Matching> = Vec::new();
        for (at, posted) in self.posted.iter().enumerate().rev() {
            let wanted = requests.contains(&posted.request)
                || needed.iter().any(|m| m.overlaps(&posted.matching));
            if wanted {
                taken[at] = true;
                needed.push(posted.matching);
            }
        }
        let mut receives = Vec::new();
        let mut kept = VecDeque::with_capacity(self.posted.len());
        for (posted, taken) in self.posted.drain(..).zip(taken) {
            match taken {
                true => receives.push(posted),
                false => kept.push_back(posted),
            }
        }
        self.posted = kept;
        receives
    }

    /// Forgets a request nobody will wait for (a receive stops being posted).
    pub(crate) fn free(&mut self, request: i32) {
        self.posted.retain(|p| p.request != request);
        self.done.remove(&request);
    }

    /// The status of a completed request, forgotten once read (a request is waited for once).
    pub(crate) fn take_status(&mut self, request: i32) -> Status {
        // MPI_REQUEST_NULL (and a request already waited for) gives the empty status.
        self.done.remove(&request).unwrap_or(Status {
            source: -1,
            tag: -1,
            bytes: 0,
        })
    }

    /// The world, once `MPI_Init` has joined it.
    pub(crate) fn world(&self) -> Option<&WorldHandle> {
        self.world.as_ref()
    }
}

/// Applies a completed op to the call: the world joined, or the bytes received written into
/// guest memory (each place was checked when the op was made; memory never shrinks).
pub(crate) fn complete(
    store: &mut Store<HostState>,
    memory: Memory,
    done: Result<MpiDone, MpiFailure>,
) -> i64 {
    match done {
        Ok(MpiDone::Joined(world)) => {
            let mpi = &mut store.data_mut().mpi;
            mpi.comms.insert(WORLD_CONTEXT, (0..world.size()).collect());
            mpi.world = Some(world);
            0
        }
        Ok(MpiDone::Wrote { writes, completed }) => {
            let data = memory.data_mut(&mut *store);
            for (addr, bytes) in writes {
                let _ = copy_into(data, &bytes, addr as i32, bytes.len() as i32);
            }
            store.data_mut().mpi.done.extend(completed);
            0
        }
        Err(failure) => {
            store.data_mut().op_failure = Some(failure);
            -1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(source: Option<u32>, tag: Option<i32>) -> Matching {
        Matching {
            source,
            tag,
            context: WORLD_CONTEXT,
        }
    }

    #[test]
    fn a_wait_completes_only_the_earlier_receives_that_could_take_its_message() {
        let mut mpi = CallMpi::new(&fwasm_proto::pb::Call::default());
        let world: Arc<[u32]> = (0..2).collect();
        let a = mpi.post(from(Some(1), Some(1)), 0, 4, world.clone());
        let b = mpi.post(from(Some(1), Some(2)), 4, 4, world.clone());
        let any = mpi.post(from(None, None), 8, 4, world);
        let requests = |posted: Vec<Posted>| posted.iter().map(|p| p.request).collect::<Vec<_>>();
        // Tag 1 and tag 2 from rank 1 never match the same message: b waits alone.
        assert_eq!(requests(mpi.receives_for(&[b])), [b]);
        // A wildcard could take a's message, which a (posted first) must get.
        assert_eq!(requests(mpi.receives_for(&[any])), [a, any]);
        assert!(mpi.receives_for(&[a, b, any]).is_empty());
    }
}
