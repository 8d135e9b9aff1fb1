//! The `--config` file: any text, against a command with each kind of flag, is merged into
//! the arguments or refused with an error, never a panic.
#![no_main]

use std::ffi::OsString;
use std::path::Path;

use clap::{Arg, ArgAction, Command};
use libfuzzer_sys::fuzz_target;

fn command() -> Command {
    Command::new("fwasm").subcommand(
        Command::new("service")
            .arg(Arg::new("listen").long("listen"))
            .arg(
                Arg::new("durable-calls")
                    .long("durable-calls")
                    .action(ArgAction::SetTrue),
            )
            .arg(
                Arg::new("executor")
                    .long("executor")
                    .action(ArgAction::Append),
            )
            .arg(
                Arg::new("workers")
                    .long("workers")
                    .value_parser(clap::value_parser!(u32)),
            )
            .subcommand(Command::new("get")),
    )
}

fuzz_target!(|text: &str| {
    let args: Vec<OsString> = ["fwasm", "service"].map(OsString::from).into();
    let command = command();
    if let Ok(args) = fwasm::config::with_config_text(args, text, Path::new("fuzz.toml"), &command)
    {
        // What the file gave is then parsed as the command line is.
        let _ = command.try_get_matches_from(args);
    }
});
