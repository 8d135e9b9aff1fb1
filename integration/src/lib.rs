//! fwasm end-to-end tests live in tests/e2e; example and test functions in functions/. This
//! library builds those functions for every test that needs them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A guest from integration/functions, built once per test process with the Rust SDK (cargo
/// serializes concurrent builds of the same target directory).
pub fn guest(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let functions = Path::new(env!("CARGO_MANIFEST_DIR")).join("functions");
        let target = functions.join("target");
        // Run from the functions workspace so its .cargo/config.toml (stack size) applies.
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&functions)
            .args(["build", "--release", "--target", "wasm32-unknown-unknown", "--quiet"])
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .status()
            .expect("run cargo to build the test guests");
        assert!(
            status.success(),
            "building integration/functions failed (is the wasm32-unknown-unknown target installed? run scripts/test)"
        );
        target.join("wasm32-unknown-unknown/release")
    });
    std::fs::read(dir.join(format!("{name}.wasm"))).expect("built guest")
}
