//! Rules for user and function names: they appear in URLs, keys and file paths.

use crate::ApiError;

pub const MAX_NAME_LEN: usize = 128;

/// Accepts ASCII letters, digits, `_`, `-` and `.`, not starting with `.`, 1 to 128 bytes.
pub fn check_name(kind: &str, name: &str) -> Result<(), ApiError> {
    let problem = if name.is_empty() {
        Some("is empty".to_string())
    } else if name.len() > MAX_NAME_LEN {
        Some(format!("is longer than {MAX_NAME_LEN} bytes"))
    } else if name.starts_with('.') {
        Some("may not start with '.'".to_string())
    } else {
        name.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
            .map(|c| format!("contains {c:?}; use letters, digits, '_', '-' or '.'"))
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(ApiError::invalid_argument(format!(
            "invalid {kind} name {name:?}: {problem}"
        ))),
    }
}

/// Longest state key, in bytes.
pub const MAX_STATE_KEY_LEN: usize = 256;

/// State keys are text: 1 to 256 bytes of UTF-8 without control characters.
pub fn check_state_key(key: &str) -> Result<(), ApiError> {
    let problem = if key.is_empty() {
        Some("is empty".to_string())
    } else if key.len() > MAX_STATE_KEY_LEN {
        Some(format!("is longer than {MAX_STATE_KEY_LEN} bytes"))
    } else {
        key.chars()
            .find(|c| c.is_control())
            .map(|c| format!("contains the control character {c:?}"))
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(ApiError::invalid_argument(format!(
            "invalid state key {key:?}: {problem}"
        ))),
    }
}

/// Longest shared file path, in bytes.
pub const MAX_FILE_PATH_LEN: usize = 1024;

/// What is wrong with a shared file's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    TooLong,
    ControlCharacter,
    LeavesRoot,
    NamesNoFile,
}

impl std::fmt::Display for PathProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathProblem::TooLong => write!(f, "is longer than {MAX_FILE_PATH_LEN} bytes"),
            PathProblem::ControlCharacter => f.write_str("contains a control character"),
            PathProblem::LeavesRoot => f.write_str("leaves the filesystem root"),
            PathProblem::NamesNoFile => f.write_str("names no file"),
        }
    }
}

/// A shared file's path in canonical form: relative to the functions' filesystem root, with
/// no empty, "." or ".." segments (a path cannot leave the root). "/data/./a.txt" and
/// "data/a.txt" are both "data/a.txt".
pub fn file_path(path: &str) -> Result<String, PathProblem> {
    if path.len() > MAX_FILE_PATH_LEN {
        return Err(PathProblem::TooLong);
    }
    if path.chars().any(char::is_control) {
        return Err(PathProblem::ControlCharacter);
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop().ok_or(PathProblem::LeavesRoot)?;
            }
            segment => segments.push(segment),
        }
    }
    if segments.is_empty() {
        return Err(PathProblem::NamesNoFile);
    }
    Ok(segments.join("/"))
}

/// [`file_path`], with the problem as an error for whoever sent the path.
pub fn normalize_file_path(path: &str) -> Result<String, ApiError> {
    file_path(path).map_err(|problem| {
        ApiError::invalid_argument(format!("invalid file path {path:?}: {problem}"))
    })
}

/// Checks both names of a user's function.
pub fn check_function_ref(user: &str, function: &str) -> Result<(), ApiError> {
    check_name("user", user)?;
    check_name("function", function)
}

/// Longest command line a call may have, in bytes.
pub const MAX_CMDLINE_BYTES: usize = 64 << 10;

/// A call's command line: at most 64 KiB, without NUL (a C program's argv could not hold it).
pub fn check_cmdline(cmdline: &str) -> Result<(), ApiError> {
    if cmdline.len() > MAX_CMDLINE_BYTES {
        return Err(ApiError::invalid_argument(format!(
            "a command line of {} bytes is over the limit of {MAX_CMDLINE_BYTES}",
            cmdline.len()
        )));
    }
    if cmdline.contains('\0') {
        return Err(ApiError::invalid_argument("the command line contains NUL"));
    }
    Ok(())
}

/// The most hosts a function's allow-list names.
pub const MAX_ALLOW_HOSTS: usize = 64;
/// Most environment variables a function may set.
pub const MAX_ENV_VARS: usize = 256;
/// Most bytes of environment (names and values) a function may set.
pub const MAX_ENV_BYTES: usize = 64 << 10;

/// The longest time limit a function may ask for, in seconds (a day); the platform's own
/// limit, usually far lower, applies above it.
pub const MAX_TIMEOUT_SECONDS: u32 = 86_400;
/// The most memory a function may ask for, in MiB: all a wasm32 memory can hold.
pub const MAX_MEMORY_MIB: u32 = 4096;

/// Sets the limit `entry` names, `timeout=SECS` or `memory=MIB` (`fwasm upload --limit`,
/// `PUT /f/...?limit=...`).
pub fn set_limit(settings: &mut crate::pb::FunctionSettings, entry: &str) -> Result<(), ApiError> {
    let bad = |why: &str| {
        ApiError::invalid_argument(format!(
            "limit {entry:?} {why}; limits are timeout=SECS and memory=MIB"
        ))
    };
    let (name, value) = entry
        .split_once('=')
        .ok_or_else(|| bad("is not NAME=VALUE"))?;
    let value: u32 = value
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| bad("needs a whole number above 0"))?;
    match name {
        "timeout" => settings.timeout_seconds = value,
        "memory" => settings.memory_mib = value,
        _ => return Err(bad("names no limit")),
    }
    Ok(())
}

/// A function's settings: environment names are non-empty without `=` or NUL, values have no
/// NUL (a C program's environment could not hold them), limits within what a function may ask,
/// and all of it stays small.
pub fn check_settings(settings: &crate::pb::FunctionSettings) -> Result<(), ApiError> {
    if settings.timeout_seconds > MAX_TIMEOUT_SECONDS {
        return Err(ApiError::invalid_argument(format!(
            "a time limit of {} s is over the most a function may ask for, {MAX_TIMEOUT_SECONDS} s",
            settings.timeout_seconds
        )));
    }
    if settings.memory_mib > MAX_MEMORY_MIB {
        return Err(ApiError::invalid_argument(format!(
            "a memory limit of {} MiB is over the most a wasm32 memory holds, {MAX_MEMORY_MIB} MiB",
            settings.memory_mib
        )));
    }
    if settings.allow_hosts.len() > MAX_ALLOW_HOSTS {
        return Err(ApiError::invalid_argument(format!(
            "{} allowed hosts is over the limit of {MAX_ALLOW_HOSTS}",
            settings.allow_hosts.len()
        )));
    }
    for entry in &settings.allow_hosts {
        entry
            .parse::<crate::outbound::HostPattern>()
            .map_err(|e| ApiError::invalid_argument(format!("invalid allowed host: {e}")))?;
    }
    let env = &settings.env;
    if env.len() > MAX_ENV_VARS {
        return Err(ApiError::invalid_argument(format!(
            "{} environment variables is over the limit of {MAX_ENV_VARS}",
            env.len()
        )));
    }
    let bytes: usize = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    if bytes > MAX_ENV_BYTES {
        return Err(ApiError::invalid_argument(format!(
            "the environment's {bytes} bytes are over the limit of {MAX_ENV_BYTES}"
        )));
    }
    for (name, value) in env {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(ApiError::invalid_argument(format!(
                "invalid environment variable name {name:?}: it must be non-empty, without '=' or NUL"
            )));
        }
        if value.contains('\0') {
            return Err(ApiError::invalid_argument(format!(
                "the value of environment variable {name} contains NUL"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod settings_tests {
    use super::*;
    use crate::pb::FunctionSettings;

    fn env(pairs: &[(&str, &str)]) -> FunctionSettings {
        FunctionSettings {
            env: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..FunctionSettings::default()
        }
    }

    #[test]
    fn settings_are_checked() {
        assert!(check_settings(&env(&[("GREETING", "hello=world")])).is_ok());
        let err = check_settings(&env(&[("A=B", "x")])).unwrap_err();
        assert!(err.message.contains("without '=' or NUL"), "{err:?}");
        assert!(check_settings(&env(&[("", "x")])).is_err());
        assert!(check_settings(&env(&[("A", "x\0y")])).is_err());
        let big = "x".repeat(MAX_ENV_BYTES);
        assert!(
            check_settings(&env(&[("A", &big)]))
                .unwrap_err()
                .message
                .contains("over the limit")
        );
        assert!(check_cmdline("-n 3 in.txt").is_ok());
        assert!(check_cmdline("a\0b").is_err());
        let long = "x".repeat(MAX_CMDLINE_BYTES + 1);
        assert!(
            check_cmdline(&long)
                .unwrap_err()
                .message
                .contains("over the limit")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in [
            "demo",
            "echo",
            "my_func-2",
            "v1.2",
            &"a".repeat(MAX_NAME_LEN),
        ] {
            assert!(check_name("function", name).is_ok(), "{name}");
        }
    }

    #[test]
    fn rejects_names_that_could_escape_or_confuse() {
        for (name, why) in [
            ("", "is empty"),
            ("..", "may not start with '.'"),
            ("a/b", "contains '/'"),
            ("a b", "contains ' '"),
            ("é", "contains 'é'"),
        ] {
            let err = check_name("user", name).unwrap_err();
            assert!(err.message.contains(why), "{name}: {}", err.message);
        }
        assert!(check_name("user", &"a".repeat(MAX_NAME_LEN + 1)).is_err());
    }
}

#[cfg(test)]
mod state_key_tests {
    use super::*;

    #[test]
    fn state_keys_are_text_of_bounded_length() {
        assert!(check_state_key("counter").is_ok());
        assert!(check_state_key("a/b:c d-é").is_ok());
        assert!(check_state_key(&"k".repeat(256)).is_ok());
        for bad in ["", "tab\there", &"k".repeat(257)] {
            let err = check_state_key(bad).unwrap_err();
            assert!(
                err.message.starts_with("invalid state key"),
                "{}",
                err.message
            );
        }
    }
}

#[cfg(test)]
mod file_path_tests {
    use super::*;

    #[test]
    fn file_paths_are_normalized_and_cannot_leave_the_root() {
        assert_eq!(normalize_file_path("/data/./a.txt").unwrap(), "data/a.txt");
        assert_eq!(
            normalize_file_path("data//b/../a.txt").unwrap(),
            "data/a.txt"
        );
        for bad in ["", "/", "..", "/../etc/passwd", "a/../../b", "a\nb"] {
            assert!(normalize_file_path(bad).is_err(), "{bad:?}");
        }
        // The problem is told by kind, never by the text of the path.
        let long = format!(
            "leaves the filesystem root/{}",
            "x".repeat(MAX_FILE_PATH_LEN)
        );
        for (bad, problem) in [
            ("..", PathProblem::LeavesRoot),
            ("/.", PathProblem::NamesNoFile),
            ("names no file\t", PathProblem::ControlCharacter),
            (long.as_str(), PathProblem::TooLong),
        ] {
            assert_eq!(file_path(bad), Err(problem), "{bad:?}");
        }
    }
}
