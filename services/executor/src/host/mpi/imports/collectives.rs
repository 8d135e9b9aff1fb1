//! The collectives: each rank's part read out of its memory, and where its share goes.

use super::*;

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

pub(super) fn define(linker: &mut Linker<HostState>) {
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
            let size = mpi.size()?;
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
            let size = mpi.size()?;
            let (counts, displs) = even(size, recvcount);
            gather(
                mpi,
                (sendbuf, sendcount, sendtype),
                (recvbuf, &counts, &displs, recvtype),
                Some(root),
            )
        }
    );
    define!(
        linker,
        "MPI_Gatherv",
        |mpi, sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, root, comm| {
            mpi.comm(comm)?;
            let size = mpi.size()? as i32;
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
                (recvbuf, &counts, &displs, recvtype),
                Some(root),
            )
        }
    );
    define!(
        linker,
        "MPI_Allgather",
        |mpi, sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm| {
            mpi.comm(comm)?;
            let size = mpi.size()?;
            let (counts, displs) = even(size, recvcount);
            gather(
                mpi,
                (sendbuf, sendcount, sendtype),
                (recvbuf, &counts, &displs, recvtype),
                None,
            )
        }
    );
    define!(
        linker,
        "MPI_Allgatherv",
        |mpi, sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, comm| {
            mpi.comm(comm)?;
            let size = mpi.size()? as i32;
            let (counts, displs) = (
                mpi.read_i32s(recvcounts, size)?,
                mpi.read_i32s(displs, size)?,
            );
            gather(
                mpi,
                (sendbuf, sendcount, sendtype),
                (recvbuf, &counts, &displs, recvtype),
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
            let size = mpi.size()? as i32;
            let counts = mpi.read_i32s(recvcounts, size)?;
            let bytes = counts
                .iter()
                .map(|c| Mpi::span(*c, datatype))
                .collect::<Result<Vec<_>, _>>()?;
            let data = send_or_in_place(mpi, sendbuf, recvbuf, 0, bytes.iter().sum())?;
            let own = counts.get(mpi.comm_rank()? as usize).copied().unwrap_or(0);
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
            let size = mpi.size()?;
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
            let size = mpi.size()? as i32;
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
    (recvbuf, counts, displs, recvtype): (i32, &[i32], &[i32], i32),
    root: Option<i32>,
) -> Outcome {
    let receives = match root {
        Some(root) => mpi.is_root(root)?,
        None => true,
    };
    let rank = mpi.comm_rank()? as usize;
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
