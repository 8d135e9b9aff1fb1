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
    pub py_user: String,
    pub py_func: String,
    #[serde(rename = "pythonEntry", alias = "python_entry")]
    pub python_entry: String,
    pub mpi: bool,
    pub mpi_world_size: i32,
}

/// The function a Faasm message runs, and its input: for a Python call, the script
/// `py_user/py_func` (fwasm keeps Python functions as functions of their users, so Faasm's
/// `python/py_func`, its interpreter, is no function here), started at `python_entry` if the
/// message names one; else `user/function`.
pub(crate) fn target(
    (user, function): (&str, &str),
    python: bool,
    (py_user, py_func, python_entry): (&str, &str, &str),
    input: Vec<u8>,
) -> Result<(String, String, Vec<u8>), String> {
    if !python {
        return Ok((user.to_string(), function.to_string(), input));
    }
    if py_user.is_empty() || py_func.is_empty() {
        return Err("Python call without py_user and py_func".into());
    }
    let input = match python_entry {
        "" => input,
        entry => fwasm_proto::python::entry_input(entry, &input),
    };
    Ok((py_user.to_string(), py_func.to_string(), input))
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
        input: Vec<u8>,
        cmdline: String,
        /// Reply with the call id at once instead of waiting for the output.
        is_async: bool,
        mpi_world_size: u32,
    },
    Status {
        id: u64,
    },
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
    let user_function = (message.user.as_str(), message.function.as_str());
    let python = (
        message.py_user.as_str(),
        message.py_func.as_str(),
        message.python_entry.as_str(),
    );
    let input = message.input_data.clone().into_bytes();
    let (user, function, input) = match target(user_function, message.python, python, input) {
        Ok(target) => target,
        Err(problem) => return FaasmRequest::Invalid(problem),
    };
    if user.is_empty() {
        return FaasmRequest::Invalid("Empty user".into());
    }
    if function.is_empty() {
        return FaasmRequest::Invalid("Empty function".into());
    }
    FaasmRequest::Call {
        user,
        function,
        input,
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
                input: b"hi".to_vec(),
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
    fn a_python_message_runs_the_script_it_names() {
        let call = parse(
            br#"{"user": "python", "function": "py_func", "python": true, "py_user": "alice",
                "py_func": "hello", "input_data": "hi"}"#,
        );
        let FaasmRequest::Call {
            user,
            function,
            input,
            ..
        } = call
        else {
            panic!("not a call: {call:?}")
        };
        assert_eq!(
            (user.as_str(), function.as_str(), &input[..]),
            ("alice", "hello", &b"hi"[..])
        );
        let chained = parse(
            br#"{"python": true, "py_user": "a", "py_func": "f", "pythonEntry": "child",
                "input_data": "x"}"#,
        );
        let FaasmRequest::Call { input, .. } = chained else {
            panic!("not a call: {chained:?}")
        };
        assert_eq!(input, fwasm_proto::python::entry_input("child", b"x"));
        assert_eq!(
            parse(br#"{"user": "python", "function": "py_func", "python": true}"#),
            FaasmRequest::Invalid("Python call without py_user and py_func".into())
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
