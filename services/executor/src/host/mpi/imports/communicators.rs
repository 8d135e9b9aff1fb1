//! New communicators and groups. `MPI_Comm_dup` (Faasm's import) and fwasm's own imports
//! behind sdk-c's `MPI_Comm_split`, `MPI_Comm_create` and the group functions: a new
//! communicator is a split of the one it comes from, which every member enters as a
//! collective; the world gives it a context of its own, so its messages and collectives never
//! mix with another's. Groups are lists of world ranks this rank keeps.

use super::*;

/// fwasm's own imports (module `env`), each returning an i32: what sdk-c's functions of
/// the same names without the `fwasm_` prefix call.
pub(crate) const OWN_IMPORTS: &[ImportSignature] = signatures![
    "fwasm_mpi_comm_split": 5, "fwasm_mpi_comm_create": 4, "fwasm_mpi_comm_group": 2,
    "fwasm_mpi_group_incl": 4, "fwasm_mpi_group_size": 2, "fwasm_mpi_group_rank": 2,
    "fwasm_mpi_group_free": 1,
];

/// Communicators, and groups, a rank may hold at once.
const MAX_COMMUNICATORS: usize = 1024;
const MAX_GROUPS: usize = 1024;

pub(super) fn define(linker: &mut Linker<HostState>) {
    // The same ranks in the same order, in a context of their own. The handle is allocated
    // now; the context lands in it once every member has entered.
    define!(linker, "MPI_Comm_dup", |mpi, comm, new| {
        mpi.comm(comm)?;
        mpi.bytes(new, 4)?;
        let (members, key) = (mpi.current()?.members.clone(), mpi.comm_rank()? as i32);
        let handle = mpi.allocate(4)?;
        mpi.write_i32(new, handle)?;
        split(mpi, (0, key), (handle, 4), Some(members))
    });
    // Writes at `out` (`capacity` bytes) the new communicator's context (0: the rank is in
    // none), its size and its world ranks, for sdk-c to make the handle.
    define!(
        linker,
        "fwasm_mpi_comm_split",
        |mpi, comm, color, key, out, capacity| {
            mpi.comm(comm)?;
            if color < 0 && color != UNDEFINED {
                return Err(format!(
                    "color {color} (a color is 0 or more, or MPI_UNDEFINED)"
                ));
            }
            split(mpi, (color, key), (out, capacity), None)
        }
    );
    define!(
        linker,
        "fwasm_mpi_comm_create",
        |mpi, comm, group, out, capacity| {
            mpi.comm(comm)?;
            let group = mpi.group(group)?;
            let members = mpi.current()?.members.clone();
            if let Some(outside) = group.iter().find(|g| !members.contains(g)) {
                return Err(format!(
                    "the group has world rank {outside}, which is not in the communicator"
                ));
            }
            let own = mpi.world_rank();
            // Members of the group in its order; the rest get no communicator.
            let asked = match group.iter().position(|g| *g == own) {
                Some(at) => (0, at as i32),
                None => (UNDEFINED, 0),
            };
            split(mpi, asked, (out, capacity), None)
        }
    );
    define!(linker, "fwasm_mpi_comm_group", |mpi, comm, group| {
        mpi.comm(comm)?;
        mpi.bytes(group, 4)?;
        let members = mpi.current()?.members.clone();
        let id = new_group(mpi, members)?;
        mpi.write_i32(group, id)?;
        Ok(Answer::Done)
    });
    define!(
        linker,
        "fwasm_mpi_group_incl",
        |mpi, group, n, ranks, new| {
            let group = mpi.group(group)?;
            mpi.bytes(new, 4)?;
            let picked = mpi.read_i32s(ranks, n)?;
            let mut members = Vec::with_capacity(picked.len());
            for rank in picked {
                let member = usize::try_from(rank)
                    .ok()
                    .and_then(|at| group.get(at))
                    .ok_or_else(|| format!("rank {rank} is not in the group of {}", group.len()))?;
                if members.contains(member) {
                    return Err(format!("rank {rank} is named twice"));
                }
                members.push(*member);
            }
            let id = new_group(mpi, members.into())?;
            mpi.write_i32(new, id)?;
            Ok(Answer::Done)
        }
    );
    define!(linker, "fwasm_mpi_group_size", |mpi, group, size| {
        let group = mpi.group(group)?;
        mpi.write_i32(size, group.len() as i32)?;
        Ok(Answer::Done)
    });
    define!(linker, "fwasm_mpi_group_rank", |mpi, group, rank| {
        let group = mpi.group(group)?;
        let own = mpi.world_rank();
        let at = group.iter().position(|g| *g == own);
        mpi.write_i32(rank, at.map_or(UNDEFINED, |at| at as i32))?;
        Ok(Answer::Done)
    });
    define!(linker, "fwasm_mpi_group_free", |mpi, group| {
        mpi.state().groups.remove(&group);
        Ok(Answer::Done)
    });
}

/// Keeps group `members` for this rank; its id.
fn new_group(mpi: &mut Mpi<'_, '_>, members: Arc<[u32]>) -> Result<i32, String> {
    let state = mpi.state();
    if state.groups.len() >= MAX_GROUPS {
        return Err(format!(
            "{MAX_GROUPS} groups at once (MPI_Group_free gives them back)"
        ));
    }
    Ok(state.new_group(members))
}

/// Enters a split of the import's communicator as `(color, key)`. The new communicator (see
/// `collective::split_shares`) lands at `out`, as much of it as `capacity` bytes hold; once it
/// has, this rank knows it: with `members` if given, else with the ranks that landed.
pub(super) fn split(
    mpi: &mut Mpi<'_, '_>,
    (color, key): (i32, i32),
    (out, capacity): (i32, i32),
    members: Option<Arc<[u32]>>,
) -> Outcome {
    let capacity = u32::try_from(capacity).map_err(|_| format!("{capacity} bytes"))?;
    // Room for the context, and (unless the members are known) the size and every rank a
    // communicator made from this one may have.
    let needed = match members {
        Some(_) => 4,
        None => 8 + 4 * mpi.size()?,
    };
    if capacity < needed {
        return Err(format!(
            "{capacity} bytes hold no communicator of up to {} ranks ({needed} do)",
            mpi.size()?
        ));
    }
    if mpi.state().comms.len() >= MAX_COMMUNICATORS {
        return Err(format!(
            "{MAX_COMMUNICATORS} communicators at once (MPI_Comm_free gives them back)"
        ));
    }
    mpi.bytes(out, capacity as usize)?;
    let asked = [color.to_le_bytes(), key.to_le_bytes()].concat();
    let placements = vec![Placement {
        addr: out as u32,
        capacity,
    }];
    let after: AfterOp = Box::new(move |store, memory, value| {
        if value < 0 {
            return value;
        }
        // Checked when the import was called; memory never shrinks.
        let Ok(landed) = guest_slice(memory.data(&*store), out, capacity as i32) else {
            return value;
        };
        let word = |at: usize| {
            landed
                .get(4 * at..4 * at + 4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("four bytes")))
        };
        let context = word(0).unwrap_or(0);
        if context == 0 {
            return value;
        }
        let members = members.or_else(|| {
            let count = word(1)? as usize;
            (0..count)
                .map(|at| word(2 + at))
                .collect::<Option<Arc<[u32]>>>()
        });
        if let Some(members) = members {
            store.data_mut().mpi.comms.insert(context, members);
        }
        value
    });
    match mpi.collective(Collective::Split, vec![asked.into()], placements)? {
        Answer::Park(op, None) => Ok(Answer::Park(op, Some(after))),
        other => Ok(other),
    }
}
