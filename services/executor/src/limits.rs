//! Per-call resource limits and the memory limiter that enforces the memory one.

use std::time::Duration;

/// What one call may use. Defaults suit a general-purpose serverless function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory a call may grow to.
    pub max_memory_bytes: usize,
    /// CPU budget in wasmi fuel units (roughly one per instruction).
    pub max_fuel: u64,
    /// Fuel a call runs before it yields its worker thread to the next queued call.
    pub fuel_slice: u64,
    /// Wall-clock limit from the moment the call starts running.
    pub timeout: Duration,
    /// Largest response body a call may return.
    pub max_output_bytes: usize,
    /// Deepest chain: a call from outside has depth 0, a call it chains depth 1, and so on.
    pub max_chain_depth: u32,
    /// Most calls one call may chain (its fan-out).
    pub max_chained_calls: u32,
    /// Largest input of a chained call.
    pub max_chain_input_bytes: usize,
    /// Largest state value a call may write.
    pub max_state_value_bytes: usize,
    /// Most bytes of stdout and stderr kept per call; the rest is cut.
    pub max_stdout_bytes: usize,
    /// Most bytes of log lines kept with a call's record; the rest is cut.
    pub max_log_bytes: usize,
    /// Most ranks in an MPI world a call starts.
    pub max_mpi_world_size: u32,
    /// Most outbound HTTP requests and client connections one call may make.
    pub max_outbound_requests: u32,
    /// Most bytes one call may send over the network, and most it may receive (each).
    pub max_outbound_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_memory_bytes: 64 << 20,
            max_fuel: 20_000_000_000,
            fuel_slice: 2_000_000,
            timeout: Duration::from_secs(30),
            max_output_bytes: 16 << 20,
            max_chain_depth: 32,
            max_chained_calls: 1000,
            max_chain_input_bytes: 16 << 20,
            max_state_value_bytes: 16 << 20,
            max_stdout_bytes: 1 << 20,
            max_log_bytes: 64 << 10,
            max_mpi_world_size: 64,
            max_outbound_requests: 100,
            max_outbound_bytes: 256 << 20,
        }
    }
}

/// Caps linear memory and remembers whether it refused a growth, so a trap that follows can
/// be reported as what it is: the memory limit.
pub(crate) struct MemoryLimiter {
    max_memory_bytes: usize,
    pub(crate) refused_growth: bool,
    /// The largest size a memory was allowed (its initial size counts: wasmi asks for it).
    pub(crate) peak_bytes: usize,
}

impl MemoryLimiter {
    /// The most memory the call may have.
    pub(crate) fn max_bytes(&self) -> usize {
        self.max_memory_bytes
    }

    pub(crate) fn new(max_memory_bytes: usize) -> Self {
        Self {
            max_memory_bytes,
            refused_growth: false,
            peak_bytes: 0,
        }
    }
}

impl wasmi::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        let allowed = desired <= self.max_memory_bytes;
        self.refused_growth |= !allowed;
        if allowed {
            self.peak_bytes = self.peak_bytes.max(desired);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        // A pooled memory is counted twice: once as the host makes it in the store, once
        // as the instance's (imported) memory. A module still has at most one.
        2
    }
}
