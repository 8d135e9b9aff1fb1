//! `--config FILE`: a TOML file of flag values (`state = "host:7000"`, `metrics = "..."`), so
//! one file can configure every service of a deployment. A value given on the command line or
//! in its `FWASM_*` environment variable wins over the file; keys a command has no flag for
//! are ignored, so services can share a file.

use std::ffi::OsString;
use std::path::Path;

use anyhow::Context;

/// `args` with the values from the `--config` file (if any) added for the command's flags
/// that are given neither on the command line nor in the environment.
pub fn with_config_file(
    args: Vec<OsString>,
    command: &clap::Command,
) -> anyhow::Result<Vec<OsString>> {
    // Only the commands that run a service read it: a client command (`fwasm invoke`, say)
    // on a machine with FWASM_CONFIG set takes nothing meant for the services, and never
    // fails over the file.
    let takes_config = args
        .get(1)
        .and_then(|name| name.to_str())
        .and_then(|name| command.find_subcommand(name))
        .is_some_and(|sub| sub.get_arguments().any(|arg| arg.get_id() == "config"));
    let Some(path) = config_path(&args).filter(|_| takes_config) else {
        return Ok(args);
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    with_config_text(args, &text, &path, command)
}

/// [`with_config_file`] for the file's text (`path` names it in errors).
pub fn with_config_text(
    args: Vec<OsString>,
    text: &str,
    path: &Path,
    command: &clap::Command,
) -> anyhow::Result<Vec<OsString>> {
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let Some(subcommand) = args
        .get(1)
        .and_then(|name| name.to_str())
        .and_then(|name| command.find_subcommand(name))
    else {
        return Ok(args);
    };
    if !subcommand
        .get_arguments()
        .any(|arg| arg.get_id() == "config")
    {
        return Ok(args);
    }
    // `fwasm state get ...` is a client command, not the service: the file is not for it.
    let nested = args
        .get(2)
        .and_then(|name| name.to_str())
        .is_some_and(|name| subcommand.find_subcommand(name).is_some());
    if nested {
        return Ok(args);
    }
    let mut args = args;
    for arg in subcommand.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        let key = long.replace('-', "_");
        let Some(value) = table.get(&key).or_else(|| table.get(long)) else {
            continue;
        };
        let flag = format!("--{long}");
        let given = args.iter().any(|a| {
            a.to_str()
                .is_some_and(|a| a == flag || a.starts_with(&format!("{flag}=")))
        });
        let in_env = arg
            .get_env()
            .is_some_and(|name| std::env::var_os(name).is_some());
        if given || in_env {
            continue;
        }
        // A switch (a flag without a value) is given by `true`.
        if !arg.get_action().takes_values() {
            if value.as_bool() == Some(true) {
                args.push(flag.into());
            }
            continue;
        }
        // A repeatable flag takes a list.
        let values = match value {
            toml::Value::Array(items) => items.iter().collect(),
            value => vec![value],
        };
        for value in values {
            let value = match value {
                toml::Value::String(text) => text.clone(),
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => anyhow::bail!(
                    "{}: `{key}` must be a string, number or boolean (or a list of them), not {}",
                    path.display(),
                    other.type_str()
                ),
            };
            // As one `--flag=value` word, so a value starting with '-' stays a value.
            args.push(format!("{flag}={value}").into());
        }
    }
    Ok(args)
}

/// The value of `--config FILE` (or `--config=FILE`), or of `FWASM_CONFIG`.
fn config_path(args: &[OsString]) -> Option<std::path::PathBuf> {
    let mut args = args.iter().filter_map(|a| a.to_str());
    while let Some(arg) = args.next() {
        if arg == "--config" {
            return args.next().map(Into::into);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(path.into());
        }
    }
    std::env::var_os("FWASM_CONFIG").map(|p| Path::new(&p).to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};

    fn command() -> Command {
        Command::new("fwasm")
            .subcommand(Command::new("invoke").arg(Arg::new("addr").long("addr")))
            .subcommand(
                Command::new("executor")
                    .arg(Arg::new("config").long("config"))
                    .arg(Arg::new("state").long("state"))
                    .arg(Arg::new("scheduler").long("scheduler"))
                    .arg(
                        Arg::new("max-calls")
                            .long("max-calls")
                            .env("FWASM_TEST_MAX_CALLS"),
                    ),
            )
    }

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn a_config_file_fills_in_flags_not_given_and_ignores_others() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fwasm.toml");
        std::fs::write(
            &file,
            "state = \"s:7000\"\nscheduler = \"c:7001\"\nmax_calls = 8\nbackend = \"redis://r\"\ndurable = true\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let given = args(&[
            "fwasm",
            "executor",
            "--config",
            path,
            "--scheduler",
            "mine:1",
        ]);
        let merged = with_config_file(given, &command()).unwrap();
        let merged: Vec<&str> = merged.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            merged,
            [
                "fwasm",
                "executor",
                "--config",
                path,
                "--scheduler",
                "mine:1",
                "--state=s:7000",
                "--max-calls=8"
            ]
        );
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "state = [[1]]").unwrap();
        let err = with_config_file(
            args(&["fwasm", "executor", "--config", bad.to_str().unwrap()]),
            &command(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("must be a string, number or boolean (or a list of them), not array")
        );
        // A client command takes nothing from a file meant for the services, and does not
        // even read it.
        std::fs::write(&file, "addr = \"elsewhere:1\"\n").unwrap();
        let given = args(&["fwasm", "invoke", "--config", path]);
        assert_eq!(with_config_file(given.clone(), &command()).unwrap(), given);
        let missing = dir.path().join("missing.toml");
        let given = args(&["fwasm", "invoke", "--config", missing.to_str().unwrap()]);
        assert_eq!(with_config_file(given.clone(), &command()).unwrap(), given);
    }
}
