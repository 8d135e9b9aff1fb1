//! Python functions as the services store them: a function's code is either a wasm module or
//! a Python script (uploaded with `PUT /p/<user>/<name>`), told apart by the wasm magic every
//! module starts with. The executor runs a script with its Python runtime.

/// The largest script an upload accepts.
pub const MAX_SCRIPT_BYTES: usize = 1 << 20;

/// What uploads and listings call a Python function's kind (its "ABI").
pub const KIND: &str = "Python 3.11";

/// What a call's input starts with when it is to run a Python function's `entry` (a function
/// of the script, by name) instead of its usual entry: this, the entry's name, a NUL, then
/// the entry's argument. Python's chaining makes such calls (Faasm's `pythonEntry`).
pub const ENTRY_PREFIX: &[u8] = b"\0fwasm-python-entry:";

/// The input of a call that runs `entry` with `argument`.
pub fn entry_input(entry: &str, argument: &[u8]) -> Vec<u8> {
    [ENTRY_PREFIX, entry.as_bytes(), b"\0", argument].concat()
}

/// The four bytes every wasm module starts with.
const WASM_MAGIC: &[u8] = b"\0asm";

/// Whether stored code is a Python script rather than a wasm module.
pub fn is_script(code: &[u8]) -> bool {
    !code.starts_with(WASM_MAGIC)
}

/// Why `script` cannot be stored as a Python function, if it cannot (its size aside: see
/// [`MAX_SCRIPT_BYTES`]).
pub fn check_script(script: &[u8]) -> Result<(), String> {
    if !is_script(script) {
        return Err("this is a wasm module, not a Python script: upload it with PUT /f/".into());
    }
    if script.trim_ascii().is_empty() {
        return Err("the script is empty".into());
    }
    if std::str::from_utf8(script).is_err() {
        return Err("the script is not UTF-8 text".into());
    }
    if script.contains(&0) {
        return Err("the script contains a NUL byte".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_and_modules_are_told_apart() {
        assert!(is_script(b"def faasm_main():\n    return 0\n"));
        assert!(!is_script(b"\0asm\x01\0\0\0"));
        assert!(check_script(b"print('hi')\n").is_ok());
        assert!(
            check_script(b"\0asm\x01\0\0\0")
                .unwrap_err()
                .contains("PUT /f/")
        );
        assert!(check_script(b"  \n").unwrap_err().contains("empty"));
        assert!(check_script(b"x = '\xff'").unwrap_err().contains("UTF-8"));
        assert!(check_script(b"x = 1\0").unwrap_err().contains("NUL"));
    }
}
