//! The `env.MPI_*` imports, as Faasm's toolchain emits them (every argument an i32: pointers,
//! counts and handles; `MPI_Wtime` a double), for every ABI whose guests may call MPI: Faasm
//! toolchain binaries and sdk-c's `mpi.h` alike.
//!
//! Handles are guest objects, as faabric's `mpi.h` defines them: a communicator, group or op
//! points at `{int id}`, a datatype at `{int id; int size}`; a request is the integer the
//! host wrote into the guest's `MPI_Request`. A communicator's id is its context in the world
//! (`MPI_COMM_WORLD`'s is 1): every import names ranks by their rank in the communicator it is
//! called in, and the host by their world rank.

use std::sync::Arc;

use bytes::Bytes;
use wasmi::{Caller, Linker, ValType};

use super::{CallMpi, Cart, Landing, MpiOp, Placement, Status, Window};
use crate::abi::ImportSignature;
use crate::host::io::ProcExit;
use crate::host::memory::{guest_slice, guest_slice_mut};
use crate::host::park::{HostOp, park};
use crate::host::{AfterOp, HostState};
use crate::mpi::WorldHandle;
use crate::mpi::collective::{Collective, Pieces};
use crate::mpi::reduce::{Datatype, Op};
use crate::mpi::world::{Among, Matching, Message};

const MODULE: &str = "env";
const I: ValType = ValType::I32;

/// `MPI_IN_PLACE`: the pointer value 2.
const IN_PLACE: i32 = 2;
const ANY_SOURCE: i32 = -1;
const ANY_TAG: i32 = -1;
const PROC_NULL: i32 = -2;
const UNDEFINED: i32 = -1;
/// Fuel the guest's allocator may use beyond the slice, when an import calls it.
const ALLOCATOR_FUEL: u64 = 10_000_000;
/// Dimensions of a Cartesian communicator at most (MPI sets no limit; a guest's arrays must).
const MAX_CART_DIMS: i32 = 16;

macro_rules! signatures {
    ($($name:literal: $params:literal),* $(,)?) => {
        &[$((MODULE, $name, &[I; $params], &[I])),*]
    };
}

/// Every `env.MPI_*` import, with its type (all return an i32 but `MPI_Wtime`).
pub(crate) const IMPORTS: &[ImportSignature] = signatures![
    "MPI_Init": 2, "MPI_Init_thread": 4, "MPI_Initialized": 1, "MPI_Finalized": 1,
    "MPI_Query_thread": 1, "MPI_Get_version": 2, "MPI_Finalize": 0, "MPI_Abort": 2,
    "MPI_Comm_rank": 2, "MPI_Comm_size": 2, "MPI_Comm_dup": 2, "MPI_Comm_free": 1,
    "MPI_Send": 6, "MPI_Rsend": 6, "MPI_Recv": 7, "MPI_Sendrecv": 12, "MPI_Isend": 7,
    "MPI_Irecv": 7, "MPI_Wait": 2, "MPI_Waitall": 3, "MPI_Waitany": 4, "MPI_Request_free": 1,
    "MPI_Get_count": 3, "MPI_Probe": 4, "MPI_Barrier": 1, "MPI_Bcast": 5, "MPI_Scatter": 8,
    "MPI_Gather": 8, "MPI_Gatherv": 9, "MPI_Allgather": 7, "MPI_Allgatherv": 8,
    "MPI_Reduce": 7, "MPI_Allreduce": 6, "MPI_Scan": 6, "MPI_Reduce_scatter": 6,
    "MPI_Alltoall": 7, "MPI_Alltoallv": 9, "MPI_Cart_create": 6, "MPI_Cart_rank": 3,
    "MPI_Cart_get": 5, "MPI_Cart_shift": 5, "MPI_Type_size": 2, "MPI_Type_contiguous": 3,
    "MPI_Type_commit": 1, "MPI_Type_free": 1, "MPI_Alloc_mem": 3, "MPI_Free_mem": 1,
    "MPI_Get_processor_name": 2, "MPI_Win_create": 6, "MPI_Win_fence": 2, "MPI_Put": 8,
    "MPI_Get": 8, "MPI_Win_free": 1, "MPI_Win_get_attr": 4,
];

/// `MPI_Wtime`, the one import that is not all i32.
pub(crate) const WTIME: ImportSignature = (MODULE, "MPI_Wtime", &[], &[ValType::F64]);

/// All of them, for an ABI's import check.
pub(crate) fn signatures() -> impl Iterator<Item = ImportSignature> + Clone {
    let own = communicators::OWN_IMPORTS.iter().copied();
    IMPORTS
        .iter()
        .copied()
        .chain(own)
        .chain(std::iter::once(WTIME))
}

/// What an import answers: `Done` (MPI_SUCCESS), a parked op, or a failure of the call.
enum Answer {
    Done,
    Park(MpiOp, Option<AfterOp>),
}

type Outcome = Result<Answer, String>;

/// One import's view of its call: the guest's memory and the call's MPI state.
struct Mpi<'a, 'c> {
    caller: &'a mut Caller<'c, HostState>,
    /// Sends to a world kept on another executor, which the import parks for.
    outbox: Vec<(u32, Message)>,
    /// The communicator the import was called in, once [`Mpi::comm`] has read it.
    comm: Option<Comm>,
}

/// A communicator as an import uses it.
#[derive(Clone)]
struct Comm {
    context: u32,
    /// World ranks, in the communicator's order.
    members: Arc<[u32]>,
    /// This rank's place among them.
    rank: u32,
}

impl Mpi<'_, '_> {
    fn state(&mut self) -> &mut CallMpi {
        &mut self.caller.data_mut().mpi
    }

    fn memory(&mut self) -> Result<wasmi::Memory, String> {
        self.caller
            .data()
            .memory
            .ok_or_else(|| "called before the instance's start-up ended".to_string())
    }

    fn bytes(&mut self, ptr: i32, len: usize) -> Result<Bytes, String> {
        let memory = self.memory()?;
        let len = i32::try_from(len).map_err(|_| format!("a buffer of {len} bytes"))?;
        guest_slice(memory.data(&*self.caller), ptr, len)
            .map(Bytes::copy_from_slice)
            .map_err(|_| format!("the buffer at {ptr} of {len} bytes lies outside memory"))
    }

    /// A send buffer's bytes: never `MPI_IN_PLACE` (where it is allowed, callers look for it
    /// first).
    fn sent(&mut self, ptr: i32, len: usize) -> Result<Bytes, String> {
        if ptr == IN_PLACE {
            return Err("MPI_IN_PLACE cannot be the send buffer here".into());
        }
        self.bytes(ptr, len)
    }

    fn write(&mut self, ptr: i32, bytes: &[u8]) -> Result<(), String> {
        let memory = self.memory()?;
        let out = guest_slice_mut(memory.data_mut(&mut *self.caller), ptr, bytes.len() as i32)
            .map_err(|_| format!("the address {ptr} lies outside memory"))?;
        out.copy_from_slice(bytes);
        Ok(())
    }

    fn read_i32(&mut self, ptr: i32) -> Result<i32, String> {
        let bytes = self.bytes(ptr, 4)?;
        Ok(i32::from_le_bytes(bytes[..].try_into().expect("4 bytes")))
    }

    fn write_i32(&mut self, ptr: i32, value: i32) -> Result<(), String> {
        self.write(ptr, &value.to_le_bytes())
    }

    /// `count` i32s at `ptr`.
    fn read_i32s(&mut self, ptr: i32, count: i32) -> Result<Vec<i32>, String> {
        let count = usize::try_from(count).map_err(|_| format!("a count of {count}"))?;
        let bytes = self.bytes(ptr, count * 4)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect())
    }

    /// Checks a communicator handle: `MPI_COMM_WORLD` or a copy of it.
    /// Reads the communicator `ptr` points at: the one the import's ranks and collective
    /// belong to.
    fn comm(&mut self, ptr: i32) -> Result<(), String> {
        self.world()?;
        let id = self.read_i32(ptr)?;
        let found = u32::try_from(id).ok().and_then(|context| {
            let members = self.state().comms.get(&context)?.clone();
            Some((context, members))
        });
        let Some((context, members)) = found else {
            return Err(format!(
                "communicator {id} is not one this rank is in (MPI_COMM_NULL, or one it never \
                 got)"
            ));
        };
        let own = self.world_rank();
        let Some(rank) = members.iter().position(|m| *m == own) else {
            return Err(format!("communicator {id} does not have this rank"));
        };
        self.comm = Some(Comm {
            context,
            members,
            rank: rank as u32,
        });
        Ok(())
    }

    /// Makes communicator `context` (of `members`) the import's, as [`Mpi::comm`] does.
    fn use_comm(&mut self, context: u32, members: Arc<[u32]>) -> Result<(), String> {
        let own = self.world_rank();
        let rank = members
            .iter()
            .position(|m| *m == own)
            .ok_or("the communicator does not have this rank")?;
        self.comm = Some(Comm {
            context,
            members,
            rank: rank as u32,
        });
        Ok(())
    }

    /// The window whose handle is at `ptr` (one this rank made).
    fn window_mut(&mut self, ptr: i32) -> Result<&mut Window, String> {
        let found = self.state().windows.get_mut(&(ptr as u32));
        found.ok_or_else(|| format!("window {ptr} is not one this rank made (or it was freed)"))
    }

    fn current(&self) -> Result<&Comm, String> {
        // Every import that takes a communicator reads it first.
        self.comm
            .as_ref()
            .ok_or_else(|| "used no communicator".to_string())
    }

    /// The number of ranks in the import's communicator.
    fn size(&mut self) -> Result<u32, String> {
        Ok(self.current()?.members.len() as u32)
    }

    /// This rank's rank in the import's communicator.
    fn comm_rank(&mut self) -> Result<u32, String> {
        Ok(self.current()?.rank)
    }

    /// The world ranks of group `id` (one this rank made).
    fn group(&mut self, id: i32) -> Result<Arc<[u32]>, String> {
        let group = self.state().groups.get(&id).cloned();
        group.ok_or_else(|| format!("group {id} is not one this rank made (or it was freed)"))
    }

    fn datatype(&mut self, ptr: i32) -> Result<Datatype, String> {
        let id = self.read_i32(ptr)?;
        let size = self.read_i32(ptr.wrapping_add(4))?;
        if size <= 0 {
            return Err(format!("datatype {id} has size {size}"));
        }
        Ok(Datatype { id, size })
    }

    fn op(&mut self, ptr: i32) -> Result<Op, String> {
        let id = self.read_i32(ptr)?;
        Op::from_id(id)
    }

    /// Bytes in `count` elements of `datatype`.
    fn span(count: i32, datatype: Datatype) -> Result<usize, String> {
        let count = usize::try_from(count).map_err(|_| format!("a count of {count}"))?;
        count
            .checked_mul(datatype.size as usize)
            .filter(|n| *n <= i32::MAX as usize)
            .ok_or_else(|| format!("{count} elements of {} bytes", datatype.size))
    }

    /// The world, once `MPI_Init` has joined it and before `MPI_Finalize`.
    fn world(&mut self) -> Result<WorldHandle, String> {
        let mpi = self.state();
        match (&mpi.world, mpi.finalized) {
            (Some(_), true) => Err("called after MPI_Finalize".into()),
            (Some(world), false) => Ok(world.clone()),
            (None, _) => Err("called before MPI_Init".into()),
        }
    }

    /// A rank of the import's communicator, as a destination or source: its world rank.
    fn peer(&mut self, rank: i32) -> Result<u32, String> {
        let comm = self.current()?;
        let size = comm.members.len();
        let at = usize::try_from(rank).ok().filter(|r| *r < size);
        match (at, comm.context) {
            (Some(at), _) => Ok(comm.members[at]),
            (None, 1) => Err(format!("rank {rank} is not in the world of {size} ranks")),
            (None, _) => Err(format!(
                "rank {rank} is not in the communicator of {size} ranks"
            )),
        }
    }

    /// This rank's rank in the world.
    fn world_rank(&mut self) -> u32 {
        self.state().rank()
    }

    /// Calls the guest's allocator for `size` bytes (`malloc`, else fwasm's `fwasm_alloc`).
    fn allocate(&mut self, size: i32) -> Result<i32, String> {
        let found = ["malloc", fwasm_abi::EXPORT_ALLOC]
            .iter()
            .find_map(|name| self.caller.get_export(name).and_then(|e| e.into_func()));
        let Some(allocator) = found else {
            return Err("the module exports no allocator (malloc) for MPI to use".into());
        };
        let allocator = allocator
            .typed::<i32, i32>(&*self.caller)
            .map_err(|e| format!("the module's allocator: {e}"))?;
        // The allocator runs inside the import, where running out of the slice's fuel would be
        // a trap, not a pause: it gets a little more, and what it used comes off the slice
        // (the rest of it, at most: the call's budget is checked as the slice ends).
        let fuel = |e: wasmi::Error| format!("fuel: {e}");
        let before = self.caller.get_fuel().map_err(fuel)?;
        let given = before.saturating_add(ALLOCATOR_FUEL);
        self.caller.set_fuel(given).map_err(fuel)?;
        let ptr = allocator.call(&mut *self.caller, size);
        let used = given.saturating_sub(self.caller.get_fuel().map_err(fuel)?);
        self.caller
            .set_fuel(before.saturating_sub(used))
            .map_err(fuel)?;
        let ptr = ptr.map_err(|e| format!("the module's allocator failed: {e}"))?;
        if ptr == 0 {
            return Err(format!(
                "the module's allocator had no {size} bytes to give"
            ));
        }
        Ok(ptr)
    }

    /// A collective: parks the rank until every rank has entered it; its share lands at
    /// `placements`.
    fn collective(
        &mut self,
        collective: Collective,
        contribution: Pieces,
        placements: Vec<Placement>,
    ) -> Outcome {
        self.collective_landing(collective, contribution, Landing::At(placements))
    }

    /// [`Mpi::collective`], its share landing as `landing` says.
    fn collective_landing(
        &mut self,
        collective: Collective,
        contribution: Pieces,
        landing: Landing,
    ) -> Outcome {
        let world = self.world()?;
        let Comm {
            context, members, ..
        } = self.current()?.clone();
        let seq = self.state().next_collective(context);
        let among = Among {
            context,
            seq,
            members,
        };
        let rank = self.world_rank();
        let op = MpiOp::Collective {
            world,
            rank,
            among,
            collective,
            contribution,
            landing,
        };
        Ok(Answer::Park(op, None))
    }

    /// Whether `root` is this rank, after checking it is a rank.
    fn is_root(&mut self, root: i32) -> Result<bool, String> {
        let root = self.peer(root)?;
        Ok(root == self.world_rank())
    }

    /// Sends `count` elements at `buf` to `dest`.
    fn send(
        &mut self,
        buf: i32,
        count: i32,
        datatype: i32,
        dest: i32,
        tag: i32,
    ) -> Result<i32, String> {
        let datatype = self.datatype(datatype)?;
        let data = self.sent(buf, Self::span(count, datatype)?)?;
        let bytes = data.len() as i32;
        if dest != PROC_NULL {
            let (to, source, world) = (self.peer(dest)?, self.world_rank(), self.world()?);
            let context = self.current()?.context;
            let message = Message {
                source,
                tag,
                context,
                data,
            };
            match world.local() {
                Some(world) => world.send(to, message)?,
                None => self.outbox.push((to, message)),
            }
        }
        Ok(bytes)
    }

    /// The import's answer, with the sends it left for another executor: the call parks for
    /// them (before the receives it may wait for).
    fn finish(&mut self, outcome: Outcome) -> Outcome {
        if self.outbox.is_empty() {
            return outcome;
        }
        let sends = std::mem::take(&mut self.outbox);
        match outcome? {
            Answer::Done => {
                let (world, rank) = (self.world()?, self.world_rank());
                let receives = Vec::new();
                let op = MpiOp::Receive {
                    world,
                    rank,
                    sends,
                    receives,
                };
                Ok(Answer::Park(op, None))
            }
            Answer::Park(
                MpiOp::Receive {
                    world,
                    rank,
                    receives,
                    ..
                },
                after,
            ) => {
                let op = MpiOp::Receive {
                    world,
                    rank,
                    sends,
                    receives,
                };
                Ok(Answer::Park(op, after))
            }
            Answer::Park(other, _) => Err(format!("sent, then waited {}", other.waiting_for())),
        }
    }

    /// Posts a receive of at most `count` elements into `buf`; its request id.
    fn post(
        &mut self,
        buf: i32,
        count: i32,
        datatype: i32,
        source: i32,
        tag: i32,
    ) -> Result<i32, String> {
        let datatype = self.datatype(datatype)?;
        let capacity = Self::span(count, datatype)?;
        self.bytes(buf, capacity)?;
        if source == PROC_NULL {
            let status = Status {
                source: PROC_NULL,
                tag: ANY_TAG,
                bytes: 0,
            };
            return Ok(self.state().sent(status));
        }
        let matching = self.matching(source, tag)?;
        let members = self.current()?.members.clone();
        Ok(self
            .state()
            .post(matching, buf as u32, capacity as u32, members))
    }

    /// What a receive (or probe) from `source` with `tag` in the import's communicator takes.
    fn matching(&mut self, source: i32, tag: i32) -> Result<Matching, String> {
        Ok(Matching {
            source: match source {
                ANY_SOURCE => None,
                rank => Some(self.peer(rank)?),
            },
            tag: (tag != ANY_TAG).then_some(tag),
            context: self.current()?.context,
        })
    }

    /// Waits for `requests` (and the receives posted before them); `then` runs once they
    /// are complete, now or when the call resumes.
    fn wait(
        &mut self,
        requests: &[i32],
        then: impl FnOnce(&mut CallMpi, &mut [u8]) + Send + 'static,
    ) -> Outcome {
        let receives = self.state().receives_for(requests);
        if receives.is_empty() {
            let memory = self.memory()?;
            let (data, host) = memory.data_and_store_mut(&mut *self.caller);
            then(&mut host.mpi, data);
            return Ok(Answer::Done);
        }
        let (world, rank) = (self.world()?, self.world_rank());
        let after: AfterOp = Box::new(move |store, memory, value| {
            if value >= 0 {
                let (data, host) = memory.data_and_store_mut(store);
                then(&mut host.mpi, data);
            }
            value
        });
        let op = MpiOp::Receive {
            world,
            rank,
            sends: Vec::new(),
            receives,
        };
        Ok(Answer::Park(op, Some(after)))
    }
}

/// Writes `status` at `ptr` unless it is `MPI_STATUS_IGNORE` (null); out-of-bounds writes were
/// ruled out when the import was called.
fn put_status(data: &mut [u8], ptr: i32, status: Status) {
    if ptr != 0
        && let Ok(out) = guest_slice_mut(data, ptr, 16)
    {
        out.copy_from_slice(&status.encode());
    }
}

fn put_i32(data: &mut [u8], ptr: i32, value: i32) {
    if let Ok(out) = guest_slice_mut(data, ptr, 4) {
        out.copy_from_slice(&value.to_le_bytes());
    }
}

/// Answers an import: `MPI_SUCCESS`, the call parked, or the call failed with the reason.
fn answer_import(
    caller: &mut Caller<'_, HostState>,
    import: &str,
    outcome: Outcome,
) -> Result<i32, wasmi::Error> {
    match outcome {
        Ok(Answer::Done) => Ok(0),
        Ok(Answer::Park(op, after)) => {
            let parked = park(caller, HostOp::Mpi(op));
            match parked {
                Ok(suspend) => {
                    caller.data_mut().after_op = after;
                    Err(suspend)
                }
                Err(refusal) => Err(fail(caller, import, refusal.message)),
            }
        }
        Err(why) => Err(fail(caller, import, why)),
    }
}

/// Fails the call: `rank R of MPI world W: IMPORT: WHY`. If a rank aborted the world, this
/// rank exits with the abort's code.
fn fail(caller: &mut Caller<'_, HostState>, import: &str, why: String) -> wasmi::Error {
    let mpi = &caller.data().mpi;
    let reason = format!("{}: {import}: {why}", mpi.who());
    let aborted = mpi.world().and_then(|w| w.abort_code());
    caller.data_mut().failure_reason = Some(reason.clone());
    match aborted {
        Some(code) => wasmi::Error::host(ProcExit(code)),
        None => wasmi::Error::new(reason),
    }
}

macro_rules! define {
    ($linker:expr, $name:expr, |$mpi:ident $(, $arg:ident)*| $body:block) => {
        $linker
            .func_wrap(
                MODULE,
                $name,
                move |mut caller: Caller<'_, HostState>, $($arg: i32),*| -> Result<i32, wasmi::Error> {
                    let outcome = {
                        let $mpi = &mut Mpi { caller: &mut caller, outbox: Vec::new(), comm: None };
                        // A closure, so that `?` in the body answers the import.
                        #[allow(clippy::redundant_closure_call)]
                        let outcome = (|| -> Outcome { $body })();
                        $mpi.finish(outcome)
                    };
                    answer_import(&mut caller, $name, outcome)
                },
            )
            .expect("each MPI import is defined once");
    };
}

mod collectives;
mod communicators;
mod lifecycle;
mod point_to_point;
mod topology;
mod windows;

pub(crate) fn define(linker: &mut Linker<HostState>) {
    lifecycle::define(linker);
    point_to_point::define(linker);
    point_to_point::define_requests(linker);
    collectives::define(linker);
    topology::define(linker);
    topology::define_types_and_memory(linker);
    communicators::define(linker);
    windows::define(linker);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_import_is_listed_once() {
        let mut names: Vec<_> = signatures().map(|(_, name, ..)| name).collect();
        let listed = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), listed);
    }
}
