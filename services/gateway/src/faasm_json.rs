//! Faasm's JSON invoke message (`POST /` on the invoke port).

use serde::Deserialize;

/// The fields Faasm clients send; all optional, as in Faasm.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct FaasmMessage {
    pub user: String,
    pub function: String,
    pub input_data: String,
    /// The program's command line: argv after the function's name.
    pub cmdline: String,
    #[serde(rename = "async")]
    pub is_async: bool,
    pub status: bool,
    pub id: u64,
    pub python: bool,
    pub mpi: bool,
    pub mpi_world_size: i32,
}

/// The world size of an MPI call that names none, as on Faasm (`DEFAULT_MPI_WORLD_SIZE`).
pub(crate) const DEFAULT_MPI_WORLD_SIZE: u32 = 5;

/// The MPI world size a Faasm message asks for: its `mpi_world_size`, or Faasm's default for
/// one marked `mpi` without a size; 0 for a call that is not MPI.
pub(crate) fn mpi_world_size(mpi: bool, size: i32) -> u32 {
    match (mpi, size) {
        (_, size) if size > 0 => size as u32,
        (true, _) => DEFAULT_MPI_WORLD_SIZE,
        (false, _) => 0,
    }
}

/// What a message asks for, or the exact reply Faasm gives when it asks for nothing usable.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FaasmRequest {
    Call {
        user: String,
        function: String,
        input: String,
        cmdline: String,
        /// Reply with the call id at once instead of waiting for the output.
        is_async: bool,
        mpi_world_size: u32,
    },
    Status {
        id: u64,
    },
    Unsupported(&'static str),
    Invalid(String),
}

pub(crate) fn parse(body: &[u8]) -> FaasmRequest {
    if body.iter().all(u8::is_ascii_whitespace) {
        return FaasmRequest::Invalid("Empty request".into());
    }
    let message: FaasmMessage = match serde_json::from_slice(body) {
        Ok(message) => message,
        Err(e) => return FaasmRequest::Invalid(format!("Invalid JSON message: {e}")),
    };
    if message.status {
        if message.id == 0 {
            return FaasmRequest::Invalid("Status request without a call id".into());
        }
        return FaasmRequest::Status { id: message.id };
    }
    if message.python {
        return FaasmRequest::Unsupported("Python functions are not supported");
    }
    if message.user.is_empty() {
        return FaasmRequest::Invalid("Empty user".into());
    }
    if message.function.is_empty() {
        return FaasmRequest::Invalid("Empty function".into());
    }
    FaasmRequest::Call {
        user: message.user,
        function: message.function,
        input: message.input_data,
        cmdline: message.cmdline,
        is_async: message.is_async,
        mpi_world_size: mpi_world_size(message.mpi, message.mpi_world_size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_message_names_user_function_and_input() {
        assert_eq!(
            parse(br#"{"user": "demo", "function": "echo", "input_data": "hi"}"#),
            FaasmRequest::Call {
                user: "demo".into(),
                function: "echo".into(),
                input: "hi".into(),
                cmdline: String::new(),
                is_async: false,
                mpi_world_size: 0,
            }
        );
        let FaasmRequest::Call { cmdline, .. } =
            parse(br#"{"user": "u", "function": "f", "cmdline": "-n 3 in.txt"}"#)
        else {
            panic!("not a call")
        };
        assert_eq!(cmdline, "-n 3 in.txt");
    }

    #[test]
    fn an_mpi_message_names_its_world_size_or_gets_faasms_default() {
        let size = |json: &[u8]| match parse(json) {
            FaasmRequest::Call { mpi_world_size, .. } => mpi_world_size,
            other => panic!("not a call: {other:?}"),
        };
        assert_eq!(
            size(br#"{"user": "u", "function": "f", "mpi_world_size": 4}"#),
            4
        );
        assert_eq!(size(br#"{"user": "u", "function": "f", "mpi": true}"#), 5);
        assert_eq!(
            size(br#"{"user": "u", "function": "f", "mpi": true, "mpi_world_size": 2}"#),
            2
        );
        assert_eq!(size(br#"{"user": "u", "function": "f"}"#), 0);
    }

    #[test]
    fn async_calls_and_status_polls_are_recognised() {
        let FaasmRequest::Call { is_async, .. } =
            parse(br#"{"user": "u", "function": "f", "async": true}"#)
        else {
            panic!("not a call")
        };
        assert!(is_async);
        assert_eq!(
            parse(br#"{"status": true, "id": 1234}"#),
            FaasmRequest::Status { id: 1234 }
        );
        assert_eq!(
            parse(br#"{"status": true}"#),
            FaasmRequest::Invalid("Status request without a call id".into())
        );
    }

    #[test]
    fn missing_fields_get_faasms_replies() {
        assert_eq!(parse(b""), FaasmRequest::Invalid("Empty request".into()));
        assert_eq!(
            parse(br#"{"function": "f"}"#),
            FaasmRequest::Invalid("Empty user".into())
        );
        assert_eq!(
            parse(br#"{"user": "u"}"#),
            FaasmRequest::Invalid("Empty function".into())
        );
    }

    #[test]
    fn bad_json_is_named() {
        let FaasmRequest::Invalid(message) = parse(b"{not json") else {
            panic!("accepted bad JSON")
        };
        assert!(message.starts_with("Invalid JSON message: "), "{message}");
    }
}
