//! Python functions: a function whose code is a Python script runs in the executor's Python
//! runtime, CPython built for wasm32-wasi with fwasm's embedding (`scripts/build-python`,
//! `python/`). The interpreter is an fwasm v1 module like any other, compiled once per
//! executor, whose start-up is two snapshots: its own `fwasm_init` (the interpreter
//! initialised, the common modules imported) once per executor, then, from that snapshot,
//! `fwasm_python_load` (the function's environment taken, its script compiled, the standard
//! modules it imports imported) once per function. Each call starts from its function's.
//!
//! The runtime's files reach the interpreter as read-only mounted files, never copied into a
//! call: the standard library (one zip of .pyc files), and, per function, its script at Faasm's
//! place for it (`/pyfuncs/<user>/<name>/function.py`) and its name (`/fwasm/python-function`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fwasm_proto::pb::Call;

use crate::host::files::MountedFiles;
use crate::limits::Limits;

/// Where the interpreter finds the standard library (its `sys.path`).
const STDLIB_PATH: &str = "/usr/local/lib/python311.zip";
/// The file that names the function for the interpreter's start-up.
const FUNCTION_NAME_PATH: &str = "/fwasm/python-function";

/// The interpreter's second start-up step, once per function.
pub(crate) const EXPORT_LOAD: &str = "fwasm_python_load";

/// The runtime as `scripts/build-python` leaves it in a directory.
pub struct PythonRuntime {
    /// The interpreter module.
    pub(crate) wasm: Bytes,
    stdlib: Bytes,
    /// What the runtime was built from (the build's key): part of its snapshots' identity.
    pub(crate) build: String,
}

impl std::fmt::Debug for PythonRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PythonRuntime")
            .field("build", &self.build)
            .finish_non_exhaustive()
    }
}

impl PythonRuntime {
    /// The directory `scripts/build-python` builds into by default:
    /// `$FWASM_PYTHON_HOME`, else `~/.cache/fwasm/python` (`$XDG_CACHE_HOME` if set).
    pub fn default_home() -> Option<PathBuf> {
        if let Some(home) = std::env::var_os("FWASM_PYTHON_HOME") {
            return Some(home.into());
        }
        let cache = match std::env::var_os("XDG_CACHE_HOME") {
            Some(cache) => PathBuf::from(cache),
            None => PathBuf::from(std::env::var_os("HOME")?).join(".cache"),
        };
        Some(cache.join("fwasm").join("python"))
    }

    /// Reads the runtime built into `home` (blocking).
    pub fn load(home: &Path) -> Result<PythonRuntime, String> {
        let read = |name: &str| {
            std::fs::read(home.join(name)).map_err(|e| {
                format!(
                    "no Python runtime in {}: {name}: {e} (build it with scripts/build-python)",
                    home.display()
                )
            })
        };
        let wasm = read("python.wasm")?;
        let stdlib = read("lib/python311.zip")?;
        let build = String::from_utf8_lossy(&read("KEY")?).trim().to_string();
        Ok(PythonRuntime {
            wasm: wasm.into(),
            stdlib: stdlib.into(),
            build,
        })
    }

    /// The interpreter's own start-up as the executor runs it: a function of no user's (its
    /// snapshot's slot), named for messages.
    pub(crate) fn interpreter_call(&self) -> Call {
        Call {
            user: "fwasm".into(),
            function: "python".into(),
            module_hash: format!("python-{}", self.build),
            ..Call::default()
        }
    }

    /// The files the interpreter's own start-up finds mounted: the standard library.
    pub(crate) fn interpreter_files(&self) -> Arc<MountedFiles> {
        let stdlib = [(STDLIB_PATH.to_string(), self.stdlib.clone())];
        Arc::new(MountedFiles::new(&MOUNTED_DIRS, stdlib))
    }

    /// The files a call of `user/function`, whose script is `script`, finds mounted.
    pub(crate) fn files(&self, user: &str, function: &str, script: &Bytes) -> Arc<MountedFiles> {
        let files = [
            (STDLIB_PATH.to_string(), self.stdlib.clone()),
            (script_path(user, function), script.clone()),
            (
                FUNCTION_NAME_PATH.to_string(),
                Bytes::from(format!("{user}/{function}")),
            ),
        ];
        Arc::new(MountedFiles::new(&MOUNTED_DIRS, files))
    }
}

/// The directories mounted files are under, which hold nothing else.
const MOUNTED_DIRS: [&str; 3] = ["/usr/local/lib", "/pyfuncs", "/fwasm"];

/// The limits the interpreter's own start-up runs under: the calls' (memory, output), but at
/// least a minute and 10¹¹ fuel. It is the runtime's start, once per executor, not any
/// function's code: about 1.5·10¹⁰ fuel and a second (BENCHMARKS.md), more than a strict
/// call limit allows.
pub(crate) fn start_up_limits(limits: &Limits) -> Limits {
    Limits {
        timeout: limits.timeout.max(Duration::from_secs(60)),
        max_fuel: limits.max_fuel.max(100_000_000_000),
        ..limits.clone()
    }
}

/// Where a function's script is, as Faasm puts it (and tracebacks name it).
fn script_path(user: &str, function: &str) -> String {
    format!("/pyfuncs/{user}/{function}/function.py")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::files::Mounted;

    #[test]
    fn the_mounted_files_hold_only_the_runtime_and_the_script() {
        let runtime = PythonRuntime {
            wasm: Bytes::new(),
            stdlib: Bytes::from_static(b"PK"),
            build: "test".into(),
        };
        let files = runtime.files("alice", "hello", &Bytes::from_static(b"print(1)"));
        // Paths as WASI gives them: relative to the root.
        let file = |path: &str| match files.find(path.trim_start_matches('/')) {
            Mounted::File(contents) => Some(contents.clone()),
            _ => None,
        };
        assert_eq!(file(STDLIB_PATH).unwrap(), "PK");
        assert_eq!(
            file("/pyfuncs/alice/hello/function.py").unwrap(),
            "print(1)"
        );
        assert_eq!(file(FUNCTION_NAME_PATH).unwrap(), "alice/hello");
        let find = |path: &str| files.find(path.trim_start_matches('/'));
        assert!(matches!(
            find("/usr/local/lib/python3.11/os.py"),
            Mounted::Missing
        ));
        assert!(matches!(
            find("/pyfuncs/bob/x/function.py"),
            Mounted::Missing
        ));
        assert!(matches!(find("/usr/local"), Mounted::Directory));
        assert!(matches!(find("/pyfuncs/alice"), Mounted::Directory));
        assert!(matches!(find("/data/input.txt"), Mounted::Elsewhere));
        assert!(matches!(find("/usr/share/x"), Mounted::Elsewhere));
    }
}
