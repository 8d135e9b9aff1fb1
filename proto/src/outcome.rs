//! Outcomes every service builds the same way.

use crate::ApiError;
use crate::pb::{CallResult, CallStatus, FailureKind};

/// The outcome of a call that never reached a worker: the function is missing, its executor
/// could not be reached or refused it.
pub fn not_run(id: u64, user: &str, function: &str, err: &ApiError) -> CallResult {
    CallResult {
        id,
        status: CallStatus::Failed as i32,
        failure: FailureKind::NotRun as i32,
        error: format!("{user}/{function} could not run: {}", err.message),
        ..CallResult::default()
    }
}

/// The code an awaiting caller sees for a call's outcome: 0 for a success, the call's own code
/// for one that exited with one, else a code above 0 for how it failed.
pub fn return_code(result: &CallResult) -> i32 {
    if result.status() == CallStatus::Success {
        0
    } else if result.return_code != 0 {
        result.return_code
    } else {
        result.failure().max(FailureKind::Trap) as i32
    }
}

/// Now, in microseconds since the Unix epoch: the times a call record keeps.
pub fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
