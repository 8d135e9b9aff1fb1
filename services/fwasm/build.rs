//! Embeds the Rust SDK's sources (sdk-rust, its macros and the ABI crate) in the binary, so
//! `fwasm new` can write them into a project anywhere: the SDK is not on crates.io.

use std::path::{Path, PathBuf};

/// Each embedded crate: the name it is written under, and its source directory.
const CRATES: &[(&str, &str)] = &[
    ("fwasm-abi", "../../abi/src"),
    ("fwasm-sdk", "../../sdk-rust/src"),
    ("fwasm-sdk-macros", "../../sdk-rust/macros/src"),
];

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let mut list = String::from("&[\n");
    for (name, dir) in CRATES {
        let dir = manifest.join(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files = Vec::new();
        rust_files(&dir, &mut files);
        for file in files {
            let relative = file.strip_prefix(&dir).expect("found under its directory");
            let relative = relative.to_string_lossy().replace('\\', "/");
            list.push_str(&format!(
                "    ({:?}, include_str!({:?})),\n",
                format!("{name}/src/{relative}"),
                file.canonicalize()
                    .expect("the file exists")
                    .display()
                    .to_string()
            ));
        }
    }
    list.push(']');
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    std::fs::write(out.join("rust_sdk_files.rs"), list).expect("OUT_DIR is writable");
}
