//! An ended call as Faasm's doors give it (the JSON message, its status poll, the planner
//! protocol): what the function printed, then its output; a call that returned non-zero reads
//! `Call failed (return value=N)`, as Faasm's workers write it. fwasm's own doors keep their
//! wording (the failure's reason, stdout only when asked for, after the output).

use fwasm_proto::pb::{CallRecord, CallResult, CallStatus, FailureKind};

/// The parts of a call's outcome Faasm's reply is made from.
pub(crate) struct Ended<'a> {
    pub succeeded: bool,
    pub failure: FailureKind,
    /// For a failure, the code an awaiting caller sees (see `outcome::return_code`).
    pub return_code: i32,
    pub output: &'a [u8],
    pub stdout: &'a [u8],
    pub error: &'a str,
}

impl<'a> Ended<'a> {
    pub fn of_record(record: &'a CallRecord) -> Self {
        Self {
            succeeded: record.status() == CallStatus::Success,
            failure: record.failure(),
            return_code: record.return_code,
            output: &record.output,
            stdout: &record.stdout,
            error: &record.error,
        }
    }

    pub fn of_result(result: &'a CallResult) -> Self {
        Self {
            succeeded: result.status() == CallStatus::Success,
            failure: result.failure(),
            return_code: fwasm_proto::outcome::return_code(result),
            output: &result.output,
            stdout: &result.stdout,
            error: &result.error,
        }
    }

    /// Faasm's `returnValue`: 0 for a success, else the call's code (never 0).
    pub fn return_value(&self) -> i32 {
        match (self.succeeded, self.return_code) {
            (true, _) => 0,
            (false, 0) => 1,
            (false, code) => code,
        }
    }

    /// Stdout and a newline (when it printed anything), then the output (or why the call
    /// failed), as Faasm's workers put them together.
    pub fn text(&self) -> Vec<u8> {
        let mut text = self.stdout.to_vec();
        if !text.is_empty() {
            text.push(b'\n');
        }
        match (self.succeeded, self.failure) {
            (true, _) => text.extend_from_slice(self.output),
            (false, FailureKind::Exit) => text.extend_from_slice(
                format!("Call failed (return value={})", self.return_value()).as_bytes(),
            ),
            (false, _) => text.extend_from_slice(self.error.as_bytes()),
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(succeeded: bool, failure: FailureKind, return_code: i32) -> Ended<'static> {
        Ended {
            succeeded,
            failure,
            return_code,
            output: b"out",
            stdout: b"printed\n",
            error: "f trapped: unreachable",
        }
    }

    #[test]
    fn stdout_comes_first() {
        let success = ended(true, FailureKind::Unspecified, 0);
        assert_eq!(success.text(), b"printed\n\nout");
        assert_eq!(success.return_value(), 0);
    }

    #[test]
    fn a_non_zero_return_reads_as_on_faasm() {
        let exited = ended(false, FailureKind::Exit, 3);
        assert_eq!(exited.text(), b"printed\n\nCall failed (return value=3)");
        assert_eq!(exited.return_value(), 3);
    }

    #[test]
    fn other_failures_keep_their_reason() {
        let trapped = ended(false, FailureKind::Trap, 1);
        assert_eq!(trapped.text(), b"printed\n\nf trapped: unreachable");
        assert_eq!(trapped.return_value(), 1);
    }
}
