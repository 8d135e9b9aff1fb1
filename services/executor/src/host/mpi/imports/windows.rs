//! One-sided communication with active target synchronisation: `MPI_Win_create`, `MPI_Put`,
//! `MPI_Get`, `MPI_Win_fence`, `MPI_Win_free`, `MPI_Win_get_attr`. A rank's window is part
//! of its own memory; puts and gets are kept by the rank that makes them until the next fence,
//! a collective in which every rank hands in its window as it is then with what it made, and
//! gets the writes that complete the epoch (see `collective::fence_shares`). The window
//! handle is Faasm's `{worldId, rank, size, basePtr, dispUnit}`.

use super::*;
use crate::host::mpi::Window;
use crate::mpi::collective::FenceEntry;

/// `MPI_Win_get_attr`'s keys.
const WIN_BASE: i32 = 1;
const WIN_SIZE: i32 = 2;
const WIN_DISP_UNIT: i32 = 3;

pub(super) fn define(linker: &mut Linker<HostState>) {
    define!(
        linker,
        "MPI_Win_create",
        |mpi, base, size, disp_unit, _info, comm, win| {
            mpi.comm(comm)?;
            let bytes = u32::try_from(size).map_err(|_| format!("a window of {size} bytes"))?;
            if disp_unit <= 0 {
                return Err(format!("a displacement unit of {disp_unit}"));
            }
            mpi.bytes(base, bytes as usize)?;
            mpi.bytes(win, 4)?;
            let (world_id, rank) = (mpi.world()?.id(), mpi.comm_rank()?);
            let handle = mpi.allocate(20)?;
            for (at, value) in [world_id as i32, rank as i32, size, base, disp_unit]
                .into_iter()
                .enumerate()
            {
                mpi.write_i32(handle.wrapping_add(4 * at as i32), value)?;
            }
            mpi.write_i32(win, handle)?;
            let Comm {
                context, members, ..
            } = mpi.current()?.clone();
            let window = Window {
                context,
                members,
                base: base as u32,
                size: bytes,
                disp_unit: disp_unit as u32,
                made: FenceEntry::default(),
                moving: 0,
            };
            mpi.state().windows.insert(handle as u32, window);
            // Collective, as MPI makes it: every member has its window once this returns.
            mpi.collective(Collective::Barrier, Vec::new(), Vec::new())
        }
    );
    for (name, puts) in [("MPI_Put", true), ("MPI_Get", false)] {
        define!(linker, name, |mpi,
                               origin,
                               origin_count,
                               origin_type,
                               target,
                               target_disp,
                               target_count,
                               target_type,
                               win| {
            let group = mpi.window_mut(win)?.members.len();
            let len = Mpi::span(origin_count, mpi.datatype(origin_type)?)?;
            let target_len = Mpi::span(target_count, mpi.datatype(target_type)?)?;
            if len != target_len {
                return Err(format!(
                    "{len} bytes at the origin and {target_len} at the target"
                ));
            }
            if target == PROC_NULL {
                return Ok(Answer::Done);
            }
            let target = u32::try_from(target)
                .ok()
                .filter(|t| (*t as usize) < group)
                .ok_or_else(|| format!("rank {target} is not in the window's group of {group}"))?;
            // In the target's unit: the fence scales it.
            let disp = u32::try_from(target_disp)
                .map_err(|_| format!("a displacement of {target_disp}"))?;
            let limit = mpi.caller.data().limiter.max_bytes();
            let moving = mpi.window_mut(win)?.moving.saturating_add(len);
            if moving > limit {
                return Err(format!(
                    "puts and gets of {moving} bytes before the next MPI_Win_fence, over the \
                     call's memory limit of {limit} bytes"
                ));
            }
            let made = if puts {
                let bytes = mpi.sent(origin, len)?;
                Made::Put(target, disp, bytes)
            } else {
                mpi.bytes(origin, len)?;
                Made::Get(target, disp, len as u32, origin as u32)
            };
            let window = mpi.window_mut(win)?;
            window.moving = moving;
            match made {
                Made::Put(target, offset, bytes) => window.made.puts.push((target, offset, bytes)),
                Made::Get(target, offset, len, to) => {
                    window.made.gets.push((target, offset, len, to))
                }
            }
            Ok(Answer::Done)
        });
    }
    define!(linker, "MPI_Win_fence", |mpi, _assert, win| {
        let window = mpi.window_mut(win)?;
        let mut made = std::mem::take(&mut window.made);
        window.moving = 0;
        let (base, size, unit) = (window.base, window.size, window.disp_unit);
        let (context, members) = (window.context, window.members.clone());
        made.window = mpi.bytes(base as i32, size as usize)?;
        made.base = base;
        made.disp_unit = unit;
        mpi.use_comm(context, members)?;
        mpi.collective_landing(Collective::Fence, made.encode(), Landing::Said)
    });
    define!(linker, "MPI_Win_free", |mpi, win| {
        let handle = mpi.read_i32(win)?;
        let window = mpi.window_mut(handle)?;
        if !window.made.puts.is_empty() || !window.made.gets.is_empty() {
            return Err("puts or gets not yet completed by MPI_Win_fence".into());
        }
        let (context, members) = (window.context, window.members.clone());
        mpi.state().windows.remove(&(handle as u32));
        mpi.write_i32(win, 0)?;
        mpi.use_comm(context, members)?;
        mpi.collective(Collective::Barrier, Vec::new(), Vec::new())
    });
    define!(linker, "MPI_Win_get_attr", |mpi, win, key, value, flag| {
        mpi.window_mut(win)?;
        // The base itself; the size and unit by where the handle keeps them.
        let found = match key {
            WIN_BASE => Some(mpi.read_i32(win.wrapping_add(12))?),
            WIN_SIZE => Some(win.wrapping_add(8)),
            WIN_DISP_UNIT => Some(win.wrapping_add(16)),
            _ => None,
        };
        if let Some(found) = found {
            mpi.write_i32(value, found)?;
        }
        mpi.write_i32(flag, found.is_some() as i32)?;
        Ok(Answer::Done)
    });
}

/// A put or a get, before it joins its window's epoch.
enum Made {
    Put(u32, u32, Bytes),
    Get(u32, u32, u32, u32),
}
