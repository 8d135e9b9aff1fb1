//! Messages between two ranks: blocking sends and receives, and the non-blocking requests
//! (`MPI_Isend`, `MPI_Irecv`, `MPI_Wait*`).

use super::*;

pub(super) fn define(linker: &mut Linker<HostState>) {
    // A ready send is a send that may assume the receive is posted: a send does as well.
    for name in ["MPI_Send", "MPI_Rsend"] {
        define!(linker, name, |mpi,
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
    }
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
        let matching = mpi.matching(source, tag)?;
        let members = mpi.current()?.members.clone();
        let (world, rank) = (mpi.world()?, mpi.world_rank());
        let status = (status != 0).then_some(status as u32);
        let op = MpiOp::Probe {
            world,
            rank,
            matching,
            status,
            members,
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

pub(super) fn define_requests(linker: &mut Linker<HostState>) {
    define!(
        linker,
        "MPI_Isend",
        |mpi, buf, count, datatype, dest, tag, comm, request| {
            mpi.comm(comm)?;
            mpi.bytes(request, 4)?;
            let bytes = mpi.send(buf, count, datatype, dest, tag)?;
            let source = mpi.comm_rank()? as i32;
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
