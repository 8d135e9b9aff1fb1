//! Cartesian communicators, datatypes and memory: `MPI_Cart_*`, `MPI_Type_*`,
//! `MPI_Alloc_mem`.

use super::*;

pub(super) fn define(linker: &mut Linker<HostState>) {
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
            let size = mpi.size()? as i64;
            let cells = dims.iter().try_fold(1i64, |n, d| {
                (*d > 0)
                    .then(|| n.saturating_mul(*d as i64))
                    .filter(|n| *n <= size)
            });
            match cells {
                Some(cells) if cells <= size => {}
                _ => {
                    return Err(format!(
                        "a grid of {dims:?} does not fit the communicator of {size} ranks"
                    ));
                }
            }
            mpi.bytes(new, 4)?;
            // The same ranks in a communicator of its own (a collective, as MPI makes it),
            // with a grid; its context lands in the handle.
            let (members, rank) = (mpi.current()?.members.clone(), mpi.comm_rank()? as i32);
            let handle = mpi.allocate(4)?;
            mpi.write_i32(new, handle)?;
            let cart = Cart {
                dims,
                periods: periods.iter().map(|p| *p != 0).collect(),
            };
            mpi.state().carts.insert(handle as u32, cart);
            super::communicators::split(mpi, (0, rank), (handle, 4), Some(members))
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
            let own = cart.coords_of(mpi.comm_rank()? as i32);
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
            let own = cart.coords_of(mpi.comm_rank()? as i32);
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

pub(super) fn define_types_and_memory(linker: &mut Linker<HostState>) {
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
}
