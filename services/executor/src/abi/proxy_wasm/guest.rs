//! Guest memory as proxy-wasm's host functions use it: arguments read from it, results
//! written to the out-pointers a guest passes, and data handed over in memory the guest
//! allocates (`proxy_on_memory_allocate`, else `malloc`), which then belongs to the guest.

use wasmi::{AsContextMut, Caller, Val};

use super::status::{Refused, Status};
use super::stream::ProxyCall;
use crate::host::HostState;
use crate::host::memory::{guest_slice, guest_slice_mut};

/// Fuel an allocation may use beyond what is left of the call's slice: the allocator runs
/// inside a host call, where running out of fuel cannot pause the call.
const ALLOCATION_FUEL: u64 = 1_000_000;

/// The call's proxy-wasm stream.
pub(crate) fn proxy(host: &mut HostState) -> Result<&mut ProxyCall, Refused> {
    host.abi_state
        .as_mut()
        .and_then(|state| state.downcast_mut::<ProxyCall>())
        .ok_or_else(|| Refused::because(Status::InternalFailure, "no proxy-wasm stream"))
}

fn out_of_bounds(what: &str) -> Refused {
    Refused::because(
        Status::InvalidMemoryAccess,
        format!("the {what} lies outside the guest's memory"),
    )
}

/// A copy of the guest bytes at `ptr..ptr+len`.
pub(crate) fn read(
    caller: &Caller<'_, HostState>,
    what: &str,
    ptr: i32,
    len: i32,
) -> Result<Vec<u8>, Refused> {
    let memory = caller.data().memory.ok_or_else(|| out_of_bounds(what))?;
    guest_slice(memory.data(caller), ptr, len)
        .map(<[u8]>::to_vec)
        .map_err(|_| out_of_bounds(what))
}

/// Writes `bytes` at the guest's out-pointer `ptr`.
pub(crate) fn write(
    mut ctx: impl AsContextMut<Data = HostState>,
    ptr: i32,
    bytes: &[u8],
) -> Result<(), Refused> {
    let mut ctx = ctx.as_context_mut();
    let memory = ctx
        .data()
        .memory
        .ok_or_else(|| out_of_bounds("result pointer"))?;
    let target = guest_slice_mut(memory.data_mut(&mut ctx), ptr, bytes.len() as i32)
        .map_err(|_| out_of_bounds("result pointer"))?;
    target.copy_from_slice(bytes);
    Ok(())
}

/// Checks that the guest's out-pointers for a handed-over result are writable, before
/// anything is allocated for it.
pub(crate) fn check_out(
    caller: &Caller<'_, HostState>,
    ptr_out: i32,
    len_out: i32,
) -> Result<(), Refused> {
    let memory = caller
        .data()
        .memory
        .ok_or_else(|| out_of_bounds("result pointer"))?;
    let data = memory.data(caller);
    for ptr in [ptr_out, len_out] {
        guest_slice(data, ptr, 4).map_err(|_| out_of_bounds("result pointer"))?;
    }
    Ok(())
}

/// Copies `data` into memory the guest allocates and writes where it lies to `ptr_out` and
/// `len_out`. Empty data is handed over as a null pointer and length 0.
pub(crate) fn hand_over(
    mut ctx: impl AsContextMut<Data = HostState>,
    data: &[u8],
    ptr_out: i32,
    len_out: i32,
) -> Result<(), Refused> {
    let mut ctx = ctx.as_context_mut();
    let ptr = match data.is_empty() {
        true => 0,
        false => {
            let ptr = allocate(&mut ctx, data.len())?;
            let memory = ctx
                .data()
                .memory
                .ok_or_else(|| out_of_bounds("allocation"))?;
            let size = memory.data(&ctx).len();
            let target = guest_slice_mut(memory.data_mut(&mut ctx), ptr, data.len() as i32)
                .map_err(|_| {
                    Refused::because(
                        Status::InvalidMemoryAccess,
                        format!(
                            "the guest's allocator returned {} for {} bytes, outside its {size}-byte memory",
                            ptr as u32,
                            data.len()
                        ),
                    )
                })?;
            target.copy_from_slice(data);
            ptr
        }
    };
    write(&mut ctx, ptr_out, &(ptr as u32).to_le_bytes())?;
    write(&mut ctx, len_out, &(data.len() as u32).to_le_bytes())
}

/// Calls the guest's allocator for `size` bytes.
fn allocate(ctx: &mut impl AsContextMut<Data = HostState>, size: usize) -> Result<i32, Refused> {
    let mut ctx = ctx.as_context_mut();
    let allocator = proxy(ctx.data_mut())?.allocator.ok_or_else(|| {
        Refused::because(
            Status::InternalFailure,
            "the module exports no allocator (proxy_on_memory_allocate or malloc)",
        )
    })?;
    let size = i32::try_from(size)
        .map_err(|_| Refused::because(Status::BadArgument, "data over 2 GiB"))?;
    let fuel = ctx.get_fuel().unwrap_or(0);
    let _ = ctx.set_fuel(fuel.saturating_add(ALLOCATION_FUEL));
    let mut result = [Val::I32(0)];
    let called = allocator.call(&mut ctx, &[Val::I32(size)], &mut result);
    let left = ctx.get_fuel().unwrap_or(0);
    let _ = ctx.set_fuel(left.saturating_sub(ALLOCATION_FUEL));
    called.map_err(|e| {
        Refused::because(
            Status::InternalFailure,
            format!("the guest's allocator failed: {e}"),
        )
    })?;
    match result {
        [Val::I32(ptr)] if ptr != 0 => Ok(ptr),
        _ => Err(Refused::because(
            Status::InternalFailure,
            format!("the guest's allocator returned no memory for {size} bytes"),
        )),
    }
}
