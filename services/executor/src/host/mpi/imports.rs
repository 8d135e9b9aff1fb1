//! The `env.MPI_*` imports, as Faasm's toolchain emits them (every argument an i32: pointers,
//! counts and handles; `MPI_Wtime` a double), for every ABI whose guests may call MPI: Faasm
//! toolchain binaries and sdk-c's `mpi.h` alike.
//!
//! Handles are guest objects, as faabric's `mpi.h` defines them: a communicator, group or op
//! points at `{int id}`, a datatype at `{int id; int size}`; a request is the integer the
//! host wrote into the guest's `MPI_Request`. Communicators are `MPI_COMM_WORLD` and the
//! copies of it that `MPI_Comm_dup` and `MPI_Cart_create` make.

use bytes::Bytes;
use wasmi::{Caller, Linker, ValType};

use super::{CallMpi, Cart, MpiOp, Placement, Status};
use crate::abi::ImportSignature;
use crate::host::io::ProcExit;
use crate::host::memory::{guest_slice, guest_slice_mut};
use crate::host::park::{HostOp, park};
use crate::host::{AfterOp, HostState};
use crate::mpi::WorldHandle;
use crate::mpi::collective::{Collective, Pieces};
use crate::mpi::reduce::{Datatype, Op};
use crate::mpi::world::{Matching, Message};

const MODULE: &str = "env";
const I: ValType = ValType::I32;

/// faabric's id of `MPI_COMM_WORLD` (and of every copy of it).
const COMM_WORLD_ID: i32 = 1;
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
    "MPI_Get_processor_name": 2,
];

/// `MPI_Wtime`, the one import that is not all i32.
pub(crate) const WTIME: ImportSignature = (MODULE, "MPI_Wtime", &[], &[ValType::F64]);

/// All of them, for an ABI's import check.
pub(crate) fn signatures() -> impl Iterator<Item = ImportSignature> + Clone {
    IMPORTS.iter().copied().chain(std::iter::once(WTIME))
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
    fn comm(&mut self, ptr: i32) -> Result<(), String> {
        match self.read_i32(ptr)? {
            COMM_WORLD_ID => Ok(()),
            id => Err(format!(
                "communicator {id} is not MPI_COMM_WORLD or a copy of it (the only ones fwasm \
                 has)"
            )),
        }
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

    /// A rank of the world, as a destination or source: in range.
    fn peer(&mut self, rank: i32) -> Result<u32, String> {
        let size = self.world()?.size();
        u32::try_from(rank)
            .ok()
            .filter(|r| *r < size)
            .ok_or_else(|| format!("rank {rank} is not in the world of {size} ranks"))
    }

    fn rank(&mut self) -> u32 {
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

    /// A collective: parks the rank until every rank has entered it.
    fn collective(
        &mut self,
        collective: Collective,
        contribution: Pieces,
        placements: Vec<Placement>,
    ) -> Outcome {
        let world = self.world()?;
        let (rank, seq) = (self.rank(), self.state().next_collective());
        let op = MpiOp::Collective {
            world,
            rank,
            seq,
            collective,
            contribution,
            placements,
        };
        Ok(Answer::Park(op, None))
    }

    /// Whether `root` is this rank, after checking it is a rank.
    fn is_root(&mut self, root: i32) -> Result<bool, String> {
        let root = self.peer(root)?;
        Ok(root == self.rank())
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
            let (to, source, world) = (self.peer(dest)?, self.rank(), self.world()?);
            let message = Message { source, tag, data };
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
                let (world, rank) = (self.world()?, self.rank());
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
        let matching = Matching {
            source: match source {
                ANY_SOURCE => None,
                rank => Some(self.peer(rank)?),
            },
            tag: (tag != ANY_TAG).then_some(tag),
        };
        Ok(self.state().post(matching, buf as u32, capacity as u32))
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
        let (world, rank) = (self.world()?, self.rank());
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
    ($linker:expr, $name:literal, |$mpi:ident $(, $arg:ident)*| $body:block) => {
        $linker
            .func_wrap(
                MODULE,
                $name,
                |mut caller: Caller<'_, HostState>, $($arg: i32),*| -> Result<i32, wasmi::Error> {
                    let outcome = {
                        let $mpi = &mut Mpi { caller: &mut caller, outbox: Vec::new() };
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

pub(crate) fn define(linker: &mut Linker<HostState>) {
    define_lifecycle(linker);
    define_point_to_point(linker);
    define_requests(linker);
    define_collectives(linker);
    define_topology(linker);
    define_types_and_memory(linker);
}

fn define_lifecycle(linker: &mut Linker<HostState>) {
    define!(linker, "MPI_Init", |mpi, _argc, _argv| { init(mpi) });
    define!(
        linker,
        "MPI_Init_thread",
        |mpi, _argc, _argv, required, provided| {
            // One thread runs a rank, so every level is trivially what it gets.
            mpi.write_i32(provided, required.clamp(0, 3))?;
            init(mpi)
        }
    );
    define!(linker, "MPI_Initialized", |mpi, flag| {
        let initialized = mpi.state().world.is_some();
        mpi.write_i32(flag, initialized as i32)?;
        Ok(Answer::Done)
    });
    define!(linker, "MPI_Finalized", |mpi, flag| {
        let finalized = mpi.state().finalized;
        mpi.write_i32(flag, finalized as i32)?;
        Ok(Answer::Done)
    });
    define!(linker, "MPI_Query_thread", |mpi, provided| {
        mpi.write_i32(provided, 0)?;
        Ok(Answer::Done)
    });
    define!(linker, "MPI_Get_version", |mpi, version, subversion| {
        mpi.write_i32(version, 3)?;
        mpi.write_i32(subversion, 1)?;
        Ok(Answer::Done)
    });
    define!(linker, "MPI_Finalize", |mpi| {
        let (world, rank) = (mpi.world()?, mpi.rank());
        mpi.state().finalized = true;
        Ok(Answer::Park(MpiOp::Finalize { world, rank }, None))
    });
    linker
        .func_wrap(
            MODULE,
            "MPI_Abort",
            |mut caller: Caller<'_, HostState>,
             _comm: i32,
             code: i32|
             -> Result<i32, wasmi::Error> {
                let mpi = &caller.data().mpi;
                let (rank, reason) = (mpi.rank(), format!("{}: MPI_Abort({code})", mpi.who()));
                let remote = match mpi.world() {
                    Some(WorldHandle::Local(world)) => {
                        world.abort(rank, code);
                        None
                    }
                    Some(world) => Some(world.clone()),
                    None => None,
                };
                caller.data_mut().failure_reason = Some(reason);
                match remote {
                    // Parks until the world's executor has it; the call then exits with `code`.
                    Some(world) => {
                        let op = MpiOp::Abort { world, rank, code };
                        let answer = Ok(Answer::Park(op, None));
                        answer_import(&mut caller, "MPI_Abort", answer).map(|_| 0)
                    }
                    None => Err(wasmi::Error::host(ProcExit(code))),
                }
            },
        )
        .expect("MPI_Abort is defined once");
    linker
        .func_wrap(
            MODULE,
            "MPI_Wtime",
            |caller: Caller<'_, HostState>| -> f64 {
                caller
                    .data()
                    .mpi
                    .world()
                    .map_or(0.0, |world| world.created().elapsed().as_secs_f64())
            },
        )
        .expect("MPI_Wtime is defined once");
    define!(linker, "MPI_Get_processor_name", |mpi, name, length| {
        let host = b"fwasm\0";
        mpi.write(name, host)?;
        mpi.write_i32(length, host.len() as i32 - 1)?;
        Ok(Answer::Done)
    });
    define!(linker, "MPI_Comm_rank", |mpi, comm, rank| {
        mpi.comm(comm)?;
        let own = mpi.rank() as i32;
        mpi.write_i32(rank, own)?;
        Ok(Answer::Done)
    });
    define!(linker, "MPI_Comm_size", |mpi, comm, size| {
        mpi.comm(comm)?;
        let own = mpi.world()?.size() as i32;
        mpi.write_i32(size, own)?;
        Ok(Answer::Done)
    });
    define!(linker, "MPI_Comm_dup", |mpi, comm, new| {
        mpi.comm(comm)?;
        let copy = mpi.allocate(4)?;
        mpi.write_i32(copy, COMM_WORLD_ID)?;
        mpi.write_i32(new, copy)?;
        Ok(Answer::Done)
    });
    define!(linker, "MPI_Comm_free", |_mpi, _comm| { Ok(Answer::Done) });
}

fn init(mpi: &mut Mpi<'_, '_>) -> Outcome {
    if mpi.state().world.is_some() {
        return Err("MPI_Init was called already".into());
    }
    Ok(Answer::Park(mpi.state().init_op(), None))
}

fn define_point_to_point(linker: &mut Linker<HostState>) {
    define!(linker, "MPI_Send", |mpi,
                                 buf,
                                 count,
                                 datatype,
                                 dest,
                                 tag,
                                 comm| {
        mpi.comm(comm)?;
        mpi.send(buf, count, datatype, dest, tag)?;
        Ok(Answer::Done)
    });
    // A ready send is a send that may assume the receive is posted: a send does as well.
    define!(
        linker,
        "MPI_Rsend",
        |mpi, buf, count, datatype, dest, tag, comm| {
            mpi.comm(comm)?;
            mpi.send(buf, count, datatype, dest, tag)?;
            Ok(Answer::Done)
        }
    );
    define!(
        linker,
        "MPI_Recv",
        |mpi, buf, count, datatype, source, tag, comm, status| {
            mpi.comm(comm)?;
            recv(mpi, buf, count, datatype, source, tag, status)
        }
    );
    define!(
        linker,
        "MPI_Sendrecv",
        |mpi,
         sendbuf,
         sendcount,
         sendtype,
         dest,
         sendtag,
         recvbuf,
         recvcount,
         recvtype,
         source,
         recvtag,
         comm,
         status| {
            mpi.comm(comm)?;
            mpi.send(sendbuf, sendcount, sendtype, dest, sendtag)?;
            recv(mpi, recvbuf, recvcount, recvtype, source, recvtag, status)
        }
    );
    define!(linker, "MPI_Probe", |mpi, source, tag, comm, status| {
        mpi.comm(comm)?;
        if status != 0 {
            mpi.bytes(status, 16)?;
        }
        let matching = Matching {
            source: match source {
                ANY_SOURCE => None,
                rank => Some(mpi.peer(rank)?),
            },
            tag: (tag != ANY_TAG).then_some(tag),
        };
        let (world, rank) = (mpi.world()?, mpi.rank());
        let status = (status != 0).then_some(status as u32);
        let op = MpiOp::Probe {
            world,
            rank,
            matching,
            status,
        };
        Ok(Answer::Park(op, None))
    });
}

/// A blocking receive: posted, then waited for.
fn recv(
    mpi: &mut Mpi<'_, '_>,
    buf: i32,
    count: i32,
    datatype: i32,
    source: i32,
    tag: i32,
    status: i32,
) -> Outcome {
    if status != 0 {
        mpi.bytes(status, 16)?;
    }
    let request = mpi.post(buf, count, datatype, source, tag)?;
    mpi.wait(&[request], move |mpi, data| {
        put_status(data, status, mpi.take_status(request));
    })
}

fn define_requests(linker: &mut Linker<HostState>) {
    define!(
        linker,
        "MPI_Isend",
        |mpi, buf, count, datatype, dest, tag, comm, request| {
            mpi.comm(comm)?;
            mpi.bytes(request, 4)?;
            let bytes = mpi.send(buf, count, datatype, dest, tag)?;
            let source = mpi.rank() as i32;
            let id = mpi.state().sent(Status { source, tag, bytes });
            mpi.write_i32(request, id)?;
            Ok(Answer::Done)
        }
    );
    define!(
        linker,
        "MPI_Irecv",
        |mpi, buf, count, datatype, source, tag, comm, request| {
            mpi.comm(comm)?;
            mpi.bytes(request, 4)?;
            let id = mpi.post(buf, count, datatype, source, tag)?;
            mpi.write_i32(request, id)?;
            Ok(Answer::Done)
        }
    );
    define!(linker, "MPI_Wait", |mpi, request, status| {
        let id = mpi.read_i32(request)?;
        if status != 0 {
            mpi.bytes(status, 16)?;
        }
        mpi.wait(&[id], move |mpi, data| {
            put_status(data, status, mpi.take_status(id));
            put_i32(data, request, 0);
        })
    });
    define!(linker, "MPI_Waitall", |mpi, count, requests, statuses| {
        let ids = mpi.read_i32s(requests, count)?;
        if statuses != 0 {
            mpi.bytes(statuses, ids.len() * 16)?;
        }
        let waited = ids.clone();
        mpi.wait(&waited, move |mpi, data| {
            for (i, id) in ids.into_iter().enumerate() {
                let status = mpi.take_status(id);
                if statuses != 0 {
                    put_status(data, statuses + 16 * i as i32, status);
                }
                put_i32(data, requests + 4 * i as i32, 0);
            }
        })
    });
    define!(
        linker,
        "MPI_Waitany",
        |mpi, count, requests, index, status| {
            let ids = mpi.read_i32s(requests, count)?;
            mpi.bytes(index, 4)?;
            if status != 0 {
                mpi.bytes(status, 16)?;
            }
            // One already complete, else the one posted first.
            let state = mpi.state();
            let active = |at: &usize| ids[*at] != 0;
            let chosen = (0..ids.len())
                .filter(active)
                .find(|at| state.is_done(ids[*at]))
                .or_else(|| {
                    (0..ids.len())
                        .filter(active)
                        .min_by_key(|at| state.posted.iter().position(|p| p.request == ids[*at]))
                });
            let Some(chosen) = chosen else {
                // Every request is MPI_REQUEST_NULL: no index, the empty status.
                mpi.write_i32(index, UNDEFINED)?;
                if status != 0 {
                    let empty = mpi.state().take_status(0);
                    mpi.write(status, &empty.encode())?;
                }
                return Ok(Answer::Done);
            };
            let id = ids[chosen];
            mpi.wait(&[id], move |mpi, data| {
                put_i32(data, index, chosen as i32);
                put_status(data, status, mpi.take_status(id));
                put_i32(data, requests + 4 * chosen as i32, 0);
            })
        }
    );
    // The request still completes; nothing will wait for it.
    define!(linker, "MPI_Request_free", |mpi, request| {
        let id = mpi.read_i32(request)?;
        mpi.state().free(id);
        mpi.write_i32(request, 0)?;
        Ok(Answer::Done)
    });
    define!(linker, "MPI_Get_count", |mpi, status, datatype, count| {
        let bytes = mpi.read_i32(status.wrapping_add(12))?;
        let size = mpi.datatype(datatype)?.size;
        let elements = match bytes % size {
            0 => bytes / size,
            _ => UNDEFINED,
        };
        mpi.write_i32(count, elements)?;
        Ok(Answer::Done)
    });
}

/// Where a rank's send buffer is for a collective that may take it `MPI_IN_PLACE` from the
/// receive buffer (at `in_place_at` bytes into it).
fn send_or_in_place(
    mpi: &mut Mpi<'_, '_>,
    sendbuf: i32,
    recvbuf: i32,
    in_place_at: usize,
    len: usize,
) -> Result<Bytes, String> {
    match sendbuf {
        IN_PLACE => mpi.bytes(recvbuf.wrapping_add(in_place_at as i32), len),
        buf => mpi.bytes(buf, len),
    }
}

/// Places for one piece per rank: `counts[i]` elements at `displs[i]` elements into `buf`
/// (each checked to lie in memory).
fn placements(
    mpi: &mut Mpi<'_, '_>,
    buf: i32,
    counts: &[i32],
    displs: &[i32],
    datatype: Datatype,
) -> Result<Vec<Placement>, String> {
    counts
        .iter()
        .zip(displs)
        .map(|(count, displ)| {
            let len = Mpi::span(*count, datatype)?;
            let at = Mpi::span(*displ, datatype)?;
            let addr = buf.wrapping_add(at as i32);
            mpi.bytes(addr, len)?;
            Ok(Placement {
                addr: addr as u32,
                capacity: len as u32,
            })
        })
        .collect()
}

/// Equal pieces, one per rank, laid end to end.
fn even(size: u32, count: i32) -> (Vec<i32>, Vec<i32>) {
    let counts = vec![count; size as usize];
    let displs = (0..size as i32).map(|r| r.saturating_mul(count)).collect();
    (counts, displs)
}

/// `counts[i]` elements at `displs[i]` elements into `buf`, for each rank.
fn pieces(
    mpi: &mut Mpi<'_, '_>,
    buf: i32,
    counts: &[i32],
    displs: &[i32],
    datatype: Datatype,
) -> Result<Pieces, String> {
    counts
        .iter()
        .zip(displs)
        .map(|(count, displ)| {
            let at = Mpi::span(*displ, datatype)?;
            if buf == IN_PLACE {
                return Err("MPI_IN_PLACE cannot be the send buffer here".to_string());
            }
            mpi.bytes(buf.wrapping_add(at as i32), Mpi::span(*count, datatype)?)
        })
        .collect()
}

fn define_collectives(linker: &mut Linker<HostState>) {
    define!(linker, "MPI_Barrier", |mpi, comm| {
        mpi.comm(comm)?;
        mpi.collective(Collective::Barrier, Vec::new(), Vec::new())
    });
    define!(
        linker,
        "MPI_Bcast",
        |mpi, buf, count, datatype, root, comm| {
            mpi.comm(comm)?;
            let len = Mpi::span(count, mpi.datatype(datatype)?)?;
            let bcast = Collective::Bcast { root: root as u32 };
            match mpi.is_root(root)? {
                true => {
                    let data = mpi.bytes(buf, len)?;
                    mpi.collective(bcast, vec![data], Vec::new())
                }
                false => {
                    mpi.bytes(buf, len)?;
                    let at = Placement {
                        addr: buf as u32,
                        capacity: len as u32,
                    };
                    mpi.collective(bcast, Vec::new(), vec![at])
                }
            }
        }
    );
    define!(
        linker,
        "MPI_Scatter",
        |mpi, sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, root, comm| {
            mpi.comm(comm)?;
            let size = mpi.world()?.size();
            let contribution = match mpi.is_root(root)? {
                true => {
                    let (counts, displs) = even(size, sendcount);
                    let sendtype = mpi.datatype(sendtype)?;
                    pieces(mpi, sendbuf, &counts, &displs, sendtype)?
                }
                false => Vec::new(),
            };
            let placements = match recvbuf {
                IN_PLACE => Vec::new(),
                buf => {
                    let recvtype = mpi.datatype(recvtype)?;
                    placements(mpi, buf, &[recvcount], &[0], recvtype)?
                }
            };
            mpi.collective(
                Collective::Scatter { root: root as u32 },
                contribution,
                placements,
            )
        }
    );
    define!(
        linker,
        "MPI_Gather",
        |mpi, sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, root, comm| {
            mpi.comm(comm)?;
            let size = mpi.world()?.size();
            let (counts, displs) = even(size, recvcount);
            gather(
                mpi,
                (sendbuf, sendcount, sendtype),
                recvbuf,
                &counts,
                &displs,
                recvtype,
                Some(root),
            )
        }
    );
    define!(
        linker,
        "MPI_Gatherv",
        |mpi, sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, root, comm| {
            mpi.comm(comm)?;
            let size = mpi.world()?.size() as i32;
            let (counts, displs) = match mpi.is_root(root)? {
                true => (
                    mpi.read_i32s(recvcounts, size)?,
                    mpi.read_i32s(displs, size)?,
                ),
                false => (Vec::new(), Vec::new()),
            };
            gather(
                mpi,
                (sendbuf, sendcount, sendtype),
                recvbuf,
                &counts,
                &displs,
                recvtype,
                Some(root),
            )
        }
    );
    define!(
        linker,
        "MPI_Allgather",
        |mpi, sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm| {
            mpi.comm(comm)?;
            let size = mpi.world()?.size();
            let (counts, displs) = even(size, recvcount);
            gather(
                mpi,
                (sendbuf, sendcount, sendtype),
                recvbuf,
                &counts,
                &displs,
                recvtype,
                None,
            )
        }
    );
    define!(
        linker,
        "MPI_Allgatherv",
        |mpi, sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, comm| {
            mpi.comm(comm)?;
            let size = mpi.world()?.size() as i32;
            let (counts, displs) = (
                mpi.read_i32s(recvcounts, size)?,
                mpi.read_i32s(displs, size)?,
            );
            gather(
                mpi,
                (sendbuf, sendcount, sendtype),
                recvbuf,
                &counts,
                &displs,
                recvtype,
                None,
            )
        }
    );
    define!(
        linker,
        "MPI_Reduce",
        |mpi, sendbuf, recvbuf, count, datatype, op, root, comm| {
            mpi.comm(comm)?;
            let (datatype, op) = (mpi.datatype(datatype)?, mpi.op(op)?);
            let len = Mpi::span(count, datatype)?;
            let is_root = mpi.is_root(root)?;
            // Only the root's receive buffer matters (and only its send buffer may be in place).
            let data = match is_root {
                true => send_or_in_place(mpi, sendbuf, recvbuf, 0, len)?,
                false => mpi.sent(sendbuf, len)?,
            };
            let placements = match is_root {
                true => placements(mpi, recvbuf, &[count], &[0], datatype)?,
                false => Vec::new(),
            };
            let reduce = Collective::Reduce {
                root: root as u32,
                op,
                datatype,
            };
            mpi.collective(reduce, vec![data], placements)
        }
    );
    define!(
        linker,
        "MPI_Allreduce",
        |mpi, sendbuf, recvbuf, count, datatype, op, comm| {
            mpi.comm(comm)?;
            let (datatype, op) = (mpi.datatype(datatype)?, mpi.op(op)?);
            reduce_to_all(
                mpi,
                sendbuf,
                recvbuf,
                count,
                Collective::Allreduce { op, datatype },
                datatype,
            )
        }
    );
    define!(linker, "MPI_Scan", |mpi,
                                 sendbuf,
                                 recvbuf,
                                 count,
                                 datatype,
                                 op,
                                 comm| {
        mpi.comm(comm)?;
        let (datatype, op) = (mpi.datatype(datatype)?, mpi.op(op)?);
        reduce_to_all(
            mpi,
            sendbuf,
            recvbuf,
            count,
            Collective::Scan { op, datatype },
            datatype,
        )
    });
    define!(
        linker,
        "MPI_Reduce_scatter",
        |mpi, sendbuf, recvbuf, recvcounts, datatype, op, comm| {
            mpi.comm(comm)?;
            let (datatype, op) = (mpi.datatype(datatype)?, mpi.op(op)?);
            let size = mpi.world()?.size() as i32;
            let counts = mpi.read_i32s(recvcounts, size)?;
            let bytes = counts
                .iter()
                .map(|c| Mpi::span(*c, datatype))
                .collect::<Result<Vec<_>, _>>()?;
            let data = send_or_in_place(mpi, sendbuf, recvbuf, 0, bytes.iter().sum())?;
            let own = counts[mpi.rank() as usize];
            let placements = placements(mpi, recvbuf, &[own], &[0], datatype)?;
            let collective = Collective::ReduceScatter {
                op,
                datatype,
                bytes,
            };
            mpi.collective(collective, vec![data], placements)
        }
    );
    define!(
        linker,
        "MPI_Alltoall",
        |mpi, sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm| {
            mpi.comm(comm)?;
            let size = mpi.world()?.size();
            let (sendtype, recvtype) = (mpi.datatype(sendtype)?, mpi.datatype(recvtype)?);
            let (counts, displs) = even(size, sendcount);
            let contribution = pieces(mpi, sendbuf, &counts, &displs, sendtype)?;
            let (counts, displs) = even(size, recvcount);
            let placements = placements(mpi, recvbuf, &counts, &displs, recvtype)?;
            mpi.collective(Collective::Alltoall, contribution, placements)
        }
    );
    define!(
        linker,
        "MPI_Alltoallv",
        |mpi,
         sendbuf,
         sendcounts,
         sdispls,
         sendtype,
         recvbuf,
         recvcounts,
         rdispls,
         recvtype,
         comm| {
            mpi.comm(comm)?;
            let size = mpi.world()?.size() as i32;
            let (sendtype, recvtype) = (mpi.datatype(sendtype)?, mpi.datatype(recvtype)?);
            let (counts, displs) = (
                mpi.read_i32s(sendcounts, size)?,
                mpi.read_i32s(sdispls, size)?,
            );
            let contribution = pieces(mpi, sendbuf, &counts, &displs, sendtype)?;
            let (counts, displs) = (
                mpi.read_i32s(recvcounts, size)?,
                mpi.read_i32s(rdispls, size)?,
            );
            let placements = placements(mpi, recvbuf, &counts, &displs, recvtype)?;
            mpi.collective(Collective::Alltoall, contribution, placements)
        }
    );
}

/// A gather to `root` (`None`: to every rank), each rank's piece placed at `displs[i]`.
fn gather(
    mpi: &mut Mpi<'_, '_>,
    (sendbuf, sendcount, sendtype): (i32, i32, i32),
    recvbuf: i32,
    counts: &[i32],
    displs: &[i32],
    recvtype: i32,
    root: Option<i32>,
) -> Outcome {
    let receives = match root {
        Some(root) => mpi.is_root(root)?,
        None => true,
    };
    let rank = mpi.rank() as usize;
    let (data, placements) = match receives {
        true => {
            let recvtype = mpi.datatype(recvtype)?;
            let placements = placements(mpi, recvbuf, counts, displs, recvtype)?;
            let own = placements.get(rank).map_or(0, |p| p.capacity as usize);
            let at = Mpi::span(displs.get(rank).copied().unwrap_or(0), recvtype)?;
            let data = match sendbuf {
                IN_PLACE => mpi.bytes(recvbuf.wrapping_add(at as i32), own)?,
                buf => {
                    let len = Mpi::span(sendcount, mpi.datatype(sendtype)?)?;
                    mpi.bytes(buf, len)?
                }
            };
            (data, placements)
        }
        false => {
            let len = Mpi::span(sendcount, mpi.datatype(sendtype)?)?;
            (mpi.sent(sendbuf, len)?, Vec::new())
        }
    };
    let collective = match root {
        Some(root) => Collective::Gather { root: root as u32 },
        None => Collective::Allgather,
    };
    mpi.collective(collective, vec![data], placements)
}

/// A reduction whose result every rank gets into `recvbuf` (`MPI_Allreduce`, `MPI_Scan`).
fn reduce_to_all(
    mpi: &mut Mpi<'_, '_>,
    sendbuf: i32,
    recvbuf: i32,
    count: i32,
    collective: Collective,
    datatype: Datatype,
) -> Outcome {
    let len = Mpi::span(count, datatype)?;
    let data = send_or_in_place(mpi, sendbuf, recvbuf, 0, len)?;
    let placements = placements(mpi, recvbuf, &[count], &[0], datatype)?;
    mpi.collective(collective, vec![data], placements)
}

fn define_topology(linker: &mut Linker<HostState>) {
    define!(
        linker,
        "MPI_Cart_create",
        |mpi, comm, ndims, dims, periods, _reorder, new| {
            mpi.comm(comm)?;
            if !(1..=MAX_CART_DIMS).contains(&ndims) {
                return Err(format!(
                    "{ndims} dimensions (fwasm takes 1 to {MAX_CART_DIMS})"
                ));
            }
            let dims = mpi.read_i32s(dims, ndims)?;
            let periods = mpi.read_i32s(periods, ndims)?;
            let size = mpi.world()?.size() as i64;
            let cells = dims.iter().try_fold(1i64, |n, d| {
                (*d > 0)
                    .then(|| n.saturating_mul(*d as i64))
                    .filter(|n| *n <= size)
            });
            match cells {
                Some(cells) if cells <= size => {}
                _ => {
                    return Err(format!(
                        "a grid of {dims:?} does not fit the world of {size} ranks"
                    ));
                }
            }
            mpi.bytes(new, 4)?;
            let handle = mpi.allocate(4)?;
            mpi.write_i32(handle, COMM_WORLD_ID)?;
            mpi.write_i32(new, handle)?;
            let cart = Cart {
                dims,
                periods: periods.iter().map(|p| *p != 0).collect(),
            };
            mpi.state().carts.insert(handle as u32, cart);
            Ok(Answer::Done)
        }
    );
    define!(linker, "MPI_Cart_rank", |mpi, comm, coords, rank| {
        let cart = cart(mpi, comm)?;
        let coords = mpi.read_i32s(coords, cart.dims.len() as i32)?;
        let found = cart.rank_at(&coords).ok_or_else(|| {
            format!(
                "coordinates {coords:?} lie outside the grid {:?}",
                cart.dims
            )
        })?;
        mpi.write_i32(rank, found)?;
        Ok(Answer::Done)
    });
    define!(
        linker,
        "MPI_Cart_get",
        |mpi, comm, maxdims, dims, periods, coords| {
            let cart = cart(mpi, comm)?;
            let n = (maxdims.max(0) as usize).min(cart.dims.len());
            let own = cart.coords_of(mpi.rank() as i32);
            let each = cart.dims.iter().zip(&cart.periods).zip(&own).take(n);
            for (i, ((dim, periodic), coord)) in each.enumerate() {
                let at = 4 * i as i32;
                mpi.write_i32(dims.wrapping_add(at), *dim)?;
                mpi.write_i32(periods.wrapping_add(at), *periodic as i32)?;
                mpi.write_i32(coords.wrapping_add(at), *coord)?;
            }
            Ok(Answer::Done)
        }
    );
    define!(
        linker,
        "MPI_Cart_shift",
        |mpi, comm, direction, disp, source, dest| {
            let cart = cart(mpi, comm)?;
            if !(0..cart.dims.len() as i32).contains(&direction) {
                return Err(format!(
                    "direction {direction} of a {}-D grid",
                    cart.dims.len()
                ));
            }
            let own = cart.coords_of(mpi.rank() as i32);
            let shifted = |by: i32| {
                let mut at = own.clone();
                at[direction as usize] = at[direction as usize].saturating_add(by);
                cart.rank_at(&at).unwrap_or(PROC_NULL)
            };
            mpi.write_i32(source, shifted(disp.saturating_neg()))?;
            mpi.write_i32(dest, shifted(disp))?;
            Ok(Answer::Done)
        }
    );
}

fn cart(mpi: &mut Mpi<'_, '_>, comm: i32) -> Result<Cart, String> {
    mpi.comm(comm)?;
    mpi.state()
        .carts
        .get(&(comm as u32))
        .cloned()
        .ok_or_else(|| {
            "the communicator has no Cartesian topology (MPI_Cart_create makes one)".into()
        })
}

impl Cart {
    /// The rank at `coords` (row-major; periodic dimensions wrap), if on the grid.
    fn rank_at(&self, coords: &[i32]) -> Option<i32> {
        let mut rank = 0i32;
        for ((c, d), periodic) in coords.iter().zip(&self.dims).zip(&self.periods) {
            let c = match periodic {
                true => c.rem_euclid(*d),
                false if (0..*d).contains(c) => *c,
                false => return None,
            };
            rank = rank * d + c;
        }
        Some(rank)
    }

    fn coords_of(&self, rank: i32) -> Vec<i32> {
        let mut left = rank;
        let mut coords = vec![0; self.dims.len()];
        for (i, d) in self.dims.iter().enumerate().rev() {
            coords[i] = left % d;
            left /= d;
        }
        coords
    }
}

fn define_types_and_memory(linker: &mut Linker<HostState>) {
    define!(linker, "MPI_Type_size", |mpi, datatype, size| {
        let datatype = mpi.datatype(datatype)?;
        mpi.write_i32(size, datatype.size)?;
        Ok(Answer::Done)
    });
    define!(linker, "MPI_Type_contiguous", |mpi, count, old, new| {
        let old = mpi.datatype(old)?;
        let size = Mpi::span(count, old)? as i32;
        mpi.bytes(new, 4)?;
        let handle = mpi.allocate(8)?;
        mpi.write_i32(handle, old.id)?;
        mpi.write_i32(handle.wrapping_add(4), size)?;
        mpi.write_i32(new, handle)?;
        Ok(Answer::Done)
    });
    define!(linker, "MPI_Type_commit", |_mpi, _datatype| {
        Ok(Answer::Done)
    });
    define!(linker, "MPI_Type_free", |_mpi, _datatype| {
        Ok(Answer::Done)
    });
    define!(linker, "MPI_Alloc_mem", |mpi, size, _info, base| {
        mpi.bytes(base, 4)?;
        let ptr = mpi.allocate(size)?;
        mpi.write_i32(base, ptr)?;
        Ok(Answer::Done)
    });
    // Memory from MPI_Alloc_mem is the guest's own heap: its `free` may take it back.
    define!(linker, "MPI_Free_mem", |mpi, base| {
        let free = mpi.caller.get_export("free").and_then(|e| e.into_func());
        if let Some(free) = free.and_then(|f| f.typed::<i32, ()>(&*mpi.caller).ok()) {
            free.call(&mut *mpi.caller, base)
                .map_err(|e| format!("the module's free failed: {e}"))?;
        }
        Ok(Answer::Done)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cartesian_ranks_are_row_major_and_periodic_dimensions_wrap() {
        let cart = Cart {
            dims: vec![2, 3],
            periods: vec![false, true],
        };
        assert_eq!(cart.rank_at(&[1, 2]), Some(5));
        assert_eq!(cart.coords_of(5), vec![1, 2]);
        assert_eq!(cart.rank_at(&[0, 3]), Some(0));
        assert_eq!(cart.rank_at(&[0, -1]), Some(2));
        assert_eq!(cart.rank_at(&[2, 0]), None);
        assert_eq!(cart.rank_at(&[0, i32::MAX]), Some(i32::MAX % 3));
    }

    #[test]
    fn every_import_is_listed_once() {
        let mut names: Vec<_> = signatures().map(|(_, name, ..)| name).collect();
        let listed = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), listed);
    }
}
