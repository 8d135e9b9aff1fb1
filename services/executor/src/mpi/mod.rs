//! MPI worlds (Faasm's `mpi_world_size`): a call's `MPI_Init` makes it rank 0 of a world and
//! starts ranks 1..n as calls of the same function on this executor; the ranks exchange
//! messages and run collectives through their [`World`], parking while they wait.

pub(crate) mod answered_here;
pub(crate) mod collective;
pub(crate) mod handle;
pub(crate) mod home;
pub(crate) mod reduce;
pub(crate) mod world;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use fwasm_proto::pb::{CallResult, MpiRank};

pub(crate) use handle::{RemoteWorld, WorldHandle};
pub(crate) use world::World;

/// The worlds whose ranks run on this executor, and which call is which rank.
#[derive(Default)]
pub(crate) struct Worlds {
    registry: Mutex<Registry>,
    /// Ranks registered: while none are, a call's end costs no lookup.
    ranks: AtomicUsize,
}

#[derive(Default)]
struct Registry {
    by_id: HashMap<u64, Arc<World>>,
    /// Each rank's call: its world and rank.
    by_call: HashMap<u64, (Arc<World>, u32)>,
}

fn lock(registry: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Worlds {
    /// A new world whose rank 0 is call `id` (the world's id too), holding at most
    /// `max_queued_bytes` of messages not yet received.
    pub(crate) fn create(&self, id: u64, size: u32, max_queued_bytes: usize) -> Arc<World> {
        let world = Arc::new(World::new(id, size, max_queued_bytes));
        lock(&self.registry).by_id.insert(id, world.clone());
        self.add_rank(&world, 0, id);
        world
    }

    /// Registers call `call_id` as `rank` of `world`, so its end reaches the world.
    pub(crate) fn add_rank(&self, world: &Arc<World>, rank: u32, call_id: u64) {
        world.rank_is(rank, call_id);
        lock(&self.registry)
            .by_call
            .insert(call_id, (world.clone(), rank));
        self.ranks.fetch_add(1, Ordering::AcqRel);
    }

    /// The world `id`, if its ranks run here.
    pub(crate) fn get(&self, id: u64) -> Option<Arc<World>> {
        lock(&self.registry).by_id.get(&id).cloned()
    }

    /// A call of this executor (`executor_id`) ended: if it was a rank of a world kept
    /// here, its world learns how (and is forgotten once every rank has ended); rank 0's
    /// outcome gets every rank's. `rank_of`: the world and rank the call says it is, for a
    /// rank that came here through the scheduler. Returns what to tell the world's home when
    /// the world is kept elsewhere.
    pub(crate) fn call_ended(
        &self,
        outcome: &mut CallResult,
        executor_id: &str,
        rank_of: Option<(u64, u32)>,
    ) -> Option<MpiRank> {
        let registered = match self.ranks.load(Ordering::Acquire) {
            0 => None,
            _ => lock(&self.registry).by_call.remove(&outcome.id),
        };
        let (world_id, rank) = match (&registered, rank_of) {
            (Some((world, rank)), _) => (world.id, *rank),
            (None, Some(rank_of)) => rank_of,
            (None, None) => return None,
        };
        if registered.is_some() {
            self.ranks.fetch_sub(1, Ordering::AcqRel);
        }
        let ended = MpiRank {
            rank,
            call_id: outcome.id,
            status: outcome.status,
            return_code: fwasm_proto::outcome::return_code(outcome),
            executor_id: executor_id.to_string(),
            exec_micros: outcome.exec_micros,
            error: outcome.error.clone(),
        };
        let world = match registered {
            Some((world, _)) => world,
            None => match self.get(world_id) {
                Some(world) => world,
                // Kept by another executor: its home is to be told.
                None => return Some(ended),
            },
        };
        self.ended(&world, ended);
        if rank == 0 {
            outcome.mpi_ranks = world.ranks();
        }
        None
    }

    /// Rank `ended.rank` of world `world_id` (kept here) ended, wherever it ran.
    pub(crate) fn rank_ended_at(&self, world_id: u64, ended: MpiRank) {
        if let Some(world) = self.get(world_id)
            && ended.rank < world.size
        {
            self.ended(&world, ended);
        }
    }

    /// A world is forgotten once every rank has ended (or, see [`Worlds::forget`], once its
    /// call has given up waiting for the ranks its break is stopping).
    fn ended(&self, world: &World, ended: MpiRank) {
        let rank = ended.rank;
        if rank >= world.size {
            return;
        }
        if world.rank_ended(ended) {
            lock(&self.registry).by_id.remove(&world.id);
        }
    }

    /// The world's call (rank 0) has ended before some of its ranks (the world broke): waits
    /// up to `patience` for the others, which the break is stopping, so that the call's
    /// outcome lists how each ended; then forgets the world. Ranks still running after that
    /// find it gone.
    pub(crate) async fn outlived(&self, outcome: &mut CallResult, patience: Duration) {
        let Some(world) = self.get(outcome.id) else {
            return;
        };
        world.every_rank_ended(patience).await;
        outcome.mpi_ranks = world.ranks();
        lock(&self.registry).by_id.remove(&world.id);
    }
}
