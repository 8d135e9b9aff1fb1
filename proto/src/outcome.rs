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
