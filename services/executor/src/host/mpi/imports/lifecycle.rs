//! Joining and leaving a world, and what a rank asks of it: `MPI_Init(_thread)`,
//! `MPI_Finalize`, `MPI_Abort`, rank and size, versions, `MPI_Wtime`.

use super::*;

pub(super) fn define(linker: &mut Linker<HostState>) {
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
        let (world, rank) = (mpi.world()?, mpi.world_rank());
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
        let own = mpi.comm_rank()? as i32;
        mpi.write_i32(rank, own)?;
        Ok(Answer::Done)
    });
    define!(linker, "MPI_Comm_size", |mpi, comm, size| {
        mpi.comm(comm)?;
        let own = mpi.size()? as i32;
        mpi.write_i32(size, own)?;
        Ok(Answer::Done)
    });
    // Forgets a communicator it made (never the world's); its handle is the module's to free.
    define!(linker, "MPI_Comm_free", |mpi, comm| {
        let handle = mpi.read_i32(comm)?;
        mpi.comm(handle)?;
        let context = mpi.current()?.context;
        if context != crate::mpi::world::WORLD_CONTEXT {
            mpi.state().comms.remove(&context);
        }
        Ok(Answer::Done)
    });
}

fn init(mpi: &mut Mpi<'_, '_>) -> Outcome {
    if mpi.state().world.is_some() {
        return Err("MPI_Init was called already".into());
    }
    Ok(Answer::Park(mpi.state().init_op(), None))
}
