//! Outcomes every service builds the same way.

use crate::ApiError;
use crate::pb::{Call, CallResult, CallStatus, FailureKind};

/// The outcome of a call that never reached a worker: the function is missing, its executor
/// could not be reached or refused it.
pub fn not_run(call: &Call, err: &ApiError) -> CallResult {
    CallResult {
        id: call.id,
        status: CallStatus::Failed as i32,
        failure: FailureKind::NotRun as i32,
        error: format!(
            "{}/{} could not run: {}",
            call.user, call.function, err.message
        ),
        ..CallResult::default()
    }
}
