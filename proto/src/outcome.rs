//! Outcomes every service builds the same way.

use crate::ApiError;
use crate::pb::{CallResult, CallStatus, FailureKind};

/// A call's status as its one upper-case word: `QUEUED`, `RUNNING`, `SUCCESS` or `FAILED`.
pub fn status_word(status: CallStatus) -> &'static str {
    match status {
        CallStatus::Queued => "QUEUED",
        CallStatus::Success => "SUCCESS",
        CallStatus::Failed => "FAILED",
        CallStatus::Running | CallStatus::Unspecified => "RUNNING",
    }
}

/// How a call that has ended went, in a word: `succeeded`, `cancelled` or `failed`.
pub fn ended_word(status: CallStatus, failure: FailureKind) -> &'static str {
    match (status, failure) {
        (CallStatus::Success, _) => "succeeded",
        (_, FailureKind::Cancelled) => "cancelled",
        _ => "failed",
    }
}

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
