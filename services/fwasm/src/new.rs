//! `fwasm new NAME [--lang rust|c|cpp]`: writes a ready function project into `NAME/`. A Rust
//! project gets the Rust SDK's sources beside it (`.fwasm-sdk/`, from inside this binary: the
//! SDK is not on crates.io), so it builds anywhere with nothing but crates.io.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The language of a new project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    C,
    Cpp,
}

/// The Rust SDK's sources: (path under `.fwasm-sdk/`, text).
const RUST_SDK_FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/rust_sdk_files.rs"));

/// Where a project keeps its copy of the Rust SDK (not under `.fwasm/`: `fwasm up` keeps its
/// data there when run in the project).
pub const SDK_DIR: &str = ".fwasm-sdk";

/// Writes project `name` into `parent/name`: the files written, and the commands to run next.
pub fn create(parent: &Path, name: &str, lang: Lang) -> anyhow::Result<(PathBuf, Vec<String>)> {
    check_name(name)?;
    if lang == Lang::Rust {
        check_crate_name(name)?;
    }
    let dir = parent.join(name);
    if dir.exists() {
        bail!(
            "{} already exists: choose another name, or remove it first",
            dir.display()
        );
    }
    let files = match lang {
        Lang::Rust => rust_project(name),
        Lang::C => vec![(format!("{name}.c"), c_handler()), gitignore()],
        Lang::Cpp => vec![(format!("{name}.cpp"), c_handler()), gitignore()],
    };
    for (path, text) in &files {
        let file = dir.join(path);
        let parent = file.parent().expect("project files are in the project");
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
    }
    let next = vec![
        format!("cd {}", dir.display()),
        "fwasm build".to_string(),
        format!("fwasm upload me/{name} {name}.wasm"),
        format!("fwasm invoke me/{name} --input you"),
    ];
    Ok((dir, next))
}

/// A name that is both a function's and a crate's: letters, digits, '-' and '_', starting
/// with a letter.
fn check_name(name: &str) -> anyhow::Result<()> {
    let fine = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !fine {
        bail!(
            "{name:?} cannot name a function project: use letters, digits, '-' and '_', \
             starting with a letter (e.g. hello-world)"
        );
    }
    Ok(())
}

/// Names cargo refuses for a package (keywords, the standard crates, the SDK's own).
const NOT_CRATE_NAMES: &[&str] = &[
    "abstract",
    "alloc",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "core",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "fwasm-abi",
    "fwasm-sdk",
    "fwasm-sdk-macros",
    "fwasm_abi",
    "fwasm_sdk",
    "fwasm_sdk_macros",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "proc-macro",
    "proc_macro",
    "pub",
    "ref",
    "return",
    "self",
    "std",
    "static",
    "struct",
    "super",
    "test",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

fn check_crate_name(name: &str) -> anyhow::Result<()> {
    if NOT_CRATE_NAMES.contains(&name) {
        bail!(
            "{name:?} cannot name a Rust crate (a keyword, or a crate's own name): choose another"
        );
    }
    Ok(())
}

fn gitignore() -> (String, String) {
    (".gitignore".into(), "/target\n*.wasm\n/.fwasm\n".into())
}

fn c_handler() -> String {
    r#"#include <fwasm.h>

/* Called once per call: the request's body is any bytes, followed by a NUL. */
FWASM_HANDLER(req, res) {
    fwasm_response_printf(res, "Hello, %.*s!", (int)req->body_len, (const char *)req->body);
}
"#
    .into()
}

fn rust_project(name: &str) -> Vec<(String, String)> {
    let version = env!("CARGO_PKG_VERSION");
    let mut files = vec![
        (
            "Cargo.toml".to_string(),
            format!(
                r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib"]

[dependencies]
fwasm-sdk = {{ path = "{SDK_DIR}/fwasm-sdk" }}

[profile.release]
opt-level = "s"
lto = true
panic = "abort"
strip = true

# A project of its own, even inside another Cargo workspace.
[workspace]
"#
            ),
        ),
        (
            ".cargo/config.toml".to_string(),
            r#"# A 64 KiB wasm stack (Rust's default is 1 MiB): a call touches only what it uses, but a
# smaller module memory is cheaper to snapshot and restore.
[target.wasm32-unknown-unknown]
rustflags = ["-C", "link-arg=-zstack-size=65536"]
"#
            .to_string(),
        ),
        (
            "src/lib.rs".to_string(),
            r#"use fwasm_sdk::{Request, Response};

/// Called once per call.
#[fwasm_sdk::handler]
fn handle(req: Request) -> Response {
    let name = String::from_utf8_lossy(req.body());
    Response::ok(format!("Hello, {name}!"))
}
"#
            .to_string(),
        ),
        (
            ".gitignore".to_string(),
            "/target\n*.wasm\n/.fwasm\n".to_string(),
        ),
    ];
    let manifests = [
        (
            "fwasm-abi",
            "[dependencies]\nthiserror = { version = \"2\", default-features = false }\n",
        ),
        ("fwasm-sdk-macros", "[lib]\nproc-macro = true\n"),
        (
            "fwasm-sdk",
            "[dependencies]\nfwasm-abi = { path = \"../fwasm-abi\" }\nfwasm-sdk-macros = { path = \"../fwasm-sdk-macros\" }\n",
        ),
    ];
    for (krate, rest) in manifests {
        files.push((
            format!("{SDK_DIR}/{krate}/Cargo.toml"),
            format!(
                "[package]\nname = \"{krate}\"\nversion = \"{version}\"\nedition = \"2024\"\nlicense = \"Apache-2.0\"\n\n{rest}"
            ),
        ));
    }
    for (path, text) in RUST_SDK_FILES {
        files.push((format!("{SDK_DIR}/{path}"), text.to_string()));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_suit_a_function_and_a_crate() {
        for bad in ["", "1st", "has space", "dots.in", "a/b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["hello", "hello-world", "a_1"] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
        for keyword in ["fn", "async", "test", "fwasm-sdk"] {
            assert!(check_crate_name(keyword).is_err(), "{keyword:?}");
        }
    }

    #[test]
    fn a_rust_project_carries_every_sdk_source() {
        let files = rust_project("x");
        for needed in [
            "Cargo.toml",
            "src/lib.rs",
            ".fwasm-sdk/fwasm-sdk/src/lib.rs",
            ".fwasm-sdk/fwasm-sdk/src/state/lock.rs",
            ".fwasm-sdk/fwasm-sdk-macros/src/lib.rs",
            ".fwasm-sdk/fwasm-abi/src/wire.rs",
            ".fwasm-sdk/fwasm-abi/Cargo.toml",
        ] {
            assert!(files.iter().any(|(path, _)| path == needed), "{needed}");
        }
    }
}
