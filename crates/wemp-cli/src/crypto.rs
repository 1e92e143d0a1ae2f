//! `wemp crypto sign|decrypt|encrypt`.
use std::process::ExitCode;

use clap::Subcommand;

/// `wemp crypto` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum CryptoCommand {
    /// Print the hex signature (msg_signature when --encrypt is given).
    Sign {
        /// The Token from the console.
        #[arg(long)]
        token: String,
    },
}

pub(crate) fn run(cmd: CryptoCommand) -> ExitCode {
    let _ = cmd;
    ExitCode::FAILURE
}
