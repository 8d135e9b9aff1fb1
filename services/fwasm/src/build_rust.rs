//! `fwasm build` in a Rust crate's folder: cargo builds it for `wasm32-unknown-unknown` in
//! release mode (the crate's own profile and `.cargo/config.toml` apply), and the module is
//! copied next to `Cargo.toml` as `NAME.wasm`, checked as an upload would check it.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

pub const TARGET: &str = "wasm32-unknown-unknown";

/// Builds the crate in `dir`: the module written, `dir/NAME.wasm`.
pub fn build_crate(dir: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(&cargo)
        .args(["build", "--release", "--target", TARGET])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow::anyhow!(
                "cargo is not on PATH: install Rust with rustup (https://rustup.rs), then \
                 `rustup target add {TARGET}`"
            ),
            _ => anyhow::anyhow!("cannot run cargo: {e}"),
        })?;
    // cargo's JSON messages: the artifacts it wrote, among them the module.
    let mut modules = Vec::new();
    let stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
    for line in stdout.lines() {
        let line = line.context("cannot read cargo's output")?;
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let kinds = message["target"]["kind"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !kinds.iter().any(|kind| kind == "cdylib") {
            continue;
        }
        let files = message["filenames"].as_array().cloned().unwrap_or_default();
        let wasm = files
            .iter()
            .filter_map(|f| f.as_str())
            .find(|f| f.ends_with(".wasm"));
        if let (Some(wasm), Some(name)) = (wasm, message["target"]["name"].as_str()) {
            modules.push((name.to_string(), PathBuf::from(wasm)));
        }
    }
    let status = child.wait().context("cannot wait for cargo")?;
    if !status.success() {
        bail!(
            "cargo could not build the crate in {} (its errors are above; if it says the \
             target is missing: rustup target add {TARGET})",
            dir.display()
        );
    }
    let [(_, built)] = &modules[..] else {
        bail!(
            "the crate in {} built {} wasm modules: a function is one crate with \
             `crate-type = [\"cdylib\"]` under [lib]",
            dir.display(),
            modules.len()
        );
    };
    let wasm = std::fs::read(built).with_context(|| format!("cannot read {}", built.display()))?;
    fwasm_executor::validate(&wasm).with_context(|| {
        format!(
            "{} is not a function fwasm runs: does its handler have #[fwasm_sdk::handler]?",
            built.display()
        )
    })?;
    let output = dir.join(format!("{}.wasm", package_name(dir)?));
    std::fs::write(&output, &wasm).with_context(|| format!("cannot write {}", output.display()))?;
    Ok(output)
}

/// The `[package]` name in `dir/Cargo.toml`.
fn package_name(dir: &Path) -> anyhow::Result<String> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", manifest.display()))?;
    match table
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
    {
        Some(name) => Ok(name.to_string()),
        None => bail!("{} has no [package] name", manifest.display()),
    }
}
