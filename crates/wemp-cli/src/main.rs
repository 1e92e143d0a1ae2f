//! The `wemp` command.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod crypto;
mod parse;

/// wemp — WeChat Official Account server toolkit.
#[derive(Debug, Parser)]
#[command(name = "wemp", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Signatures and message encryption, as WeChat computes them.
    #[command(subcommand)]
    Crypto(crypto::CryptoCommand),
    /// Parse a message XML from stdin and print the typed value as JSON.
    Parse(parse::ParseArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crypto(cmd) => crypto::run(cmd),
        Command::Parse(args) => parse::run(args),
    }
}
