//! A plain Rust program (std only, no fwasm SDK), the twin of wasi_echo.c: with no arguments
//! it copies stdin to stdout and says how much on stderr; `args` prints argv, one per line;
//! `env NAME` prints NAME's value; `exit CODE` says goodbye on stderr and exits with CODE.

use std::io::{Read, Write};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("args") => {
            for arg in &args {
                println!("{arg}");
            }
        }
        Some("env") if args.len() > 2 => {
            let value = std::env::var(&args[2]).unwrap_or_else(|_| "(unset)".into());
            println!("{value}");
        }
        Some("exit") if args.len() > 2 => {
            eprintln!("exiting with {}", args[2]);
            std::process::exit(args[2].parse().unwrap_or(1));
        }
        _ => {
            let mut input = Vec::new();
            std::io::stdin().read_to_end(&mut input).expect("read stdin");
            std::io::stdout().write_all(&input).expect("write stdout");
            eprintln!("echoed {} bytes", input.len());
        }
    }
}
