//! fwasm end-to-end tests live in tests/e2e; example and test functions in functions/. This
//! library builds those functions for every test that needs them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A guest from integration/functions, built once per test process with the Rust SDK (cargo
/// serializes concurrent builds of the same target directory).
pub fn guest(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    // Built from the functions workspace so its .cargo/config.toml (stack size) applies.
    let dir = BUILT.get_or_init(|| cargo_build("functions", "wasm32-unknown-unknown"));
    std::fs::read(dir.join(format!("{name}.wasm"))).expect("built guest")
}

/// A proxy-wasm guest from integration/proxy-wasm (`http_filter`, `echo_filter`,
/// `layotto_function1`, `layotto_function2` for wasm32-unknown-unknown; `wasi_filter` for
/// wasm32-wasip1). Built once per test process.
pub fn proxy_wasm_guest(name: &str) -> Vec<u8> {
    static UNKNOWN: OnceLock<PathBuf> = OnceLock::new();
    static WASI: OnceLock<PathBuf> = OnceLock::new();
    let dir = match name {
        // Only the WASI filter: the Layotto-shaped guests define `malloc`, as wasi-libc does.
        "wasi_filter" => {
            WASI.get_or_init(|| cargo_build_in("proxy-wasm", "wasm32-wasip1", &["wasi-filter"]))
        }
        _ => UNKNOWN.get_or_init(|| cargo_build("proxy-wasm", "wasm32-unknown-unknown")),
    };
    std::fs::read(dir.join(format!("{name}.wasm"))).expect("built proxy-wasm guest")
}

/// Builds the cargo workspace `folder` of this crate in release for `target`; returns the
/// folder its modules are in.
fn cargo_build(folder: &str, target: &str) -> PathBuf {
    cargo_build_in(folder, target, &[])
}

/// [`cargo_build`], of `packages` only (all, if none are named).
fn cargo_build_in(folder: &str, target: &str, packages: &[&str]) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let target_dir = workspace.join("target");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&workspace)
        .args(["build", "--release", "--target", target, "--quiet"])
        .args(packages.iter().flat_map(|p| ["-p", p]))
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("RUSTFLAGS")
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build integration/{folder}: {e}"));
    assert!(
        status.success(),
        "building integration/{folder} failed (is the {target} target installed? run scripts/test)"
    );
    target_dir.join(target).join("release")
}

/// A plain WASI command from integration/commands, with no fwasm SDK: `"rust"` builds the
/// Rust program for wasm32-wasip1, `"c"` compiles wasi_echo.c with clang for wasm32-wasi.
/// Built once per test process.
pub fn wasi_command(lang: &str) -> Vec<u8> {
    static RUST: OnceLock<PathBuf> = OnceLock::new();
    static C: OnceLock<PathBuf> = OnceLock::new();
    let commands = Path::new(env!("CARGO_MANIFEST_DIR")).join("commands");
    let path = match lang {
        "rust" => {
            RUST.get_or_init(|| cargo_build("commands", "wasm32-wasip1").join("wasi-echo.wasm"))
        }
        "c" => C.get_or_init(|| {
            let target = commands.join("target");
            std::fs::create_dir_all(&target).expect("create the commands' target folder");
            let out = target.join("wasi_echo_c.wasm");
            let status = Command::new("clang")
                .args(["--target=wasm32-wasi", "-O2", "-s", "-o"])
                .arg(&out)
                .arg(commands.join("wasi_echo.c"))
                .status()
                .expect("run clang (scripts/test installs it with wasi-libc)");
            assert!(status.success(), "clang could not build wasi_echo.c");
            out
        }),
        other => panic!("no WASI command in {other}"),
    };
    std::fs::read(path).expect("built WASI command")
}
