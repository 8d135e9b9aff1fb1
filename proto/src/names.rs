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

/// A shared file's path in canonical form: relative to the functions' filesystem root, with
/// no empty, "." or ".." segments (a path cannot leave the root). "/data/./a.txt" and
/// "data/a.txt" are both "data/a.txt".
pub fn normalize_file_path(path: &str) -> Result<String, ApiError> {
    let problem = |problem: &str| {
        ApiError::invalid_argument(format!("invalid file path {path:?}: {problem}"))
    };
    if path.len() > MAX_FILE_PATH_LEN {
        return Err(problem(&format!(
            "is longer than {MAX_FILE_PATH_LEN} bytes"
        )));
    }
    if path.chars().any(char::is_control) {
        return Err(problem("contains a control character"));
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(problem("leaves the filesystem root"));
                }
            }
            segment => segments.push(segment),
        }
    }
    if segments.is_empty() {
        return Err(problem("names no file"));
    }
    Ok(segments.join("/"))
}

/// Checks both names of a user's function.
pub fn check_function_ref(user: &str, function: &str) -> Result<(), ApiError> {
    check_name("user", user)?;
    check_name("function", function)
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
    }
}
