//! `wemp parse`.
use std::io::Read;
use std::process::ExitCode;

use wemp_proto::{Document, Incoming};

/// Arguments of `wemp parse`.
#[derive(Debug, clap::Args)]
pub(crate) struct ParseArgs {
    /// Print the lossless raw layer (element tree) instead of the typed value.
    #[arg(long)]
    raw: bool,
}

pub(crate) fn run(args: ParseArgs) -> ExitCode {
    let mut xml = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut xml) {
        eprintln!("cannot read stdin: {e}");
        return ExitCode::FAILURE;
    }
    let doc = match Document::parse(&xml) {
        Ok(doc) => doc,
        Err(e) => {
            eprintln!("{} {}: {e}", e.reference_code().code(), e.reference_code().name());
            return ExitCode::FAILURE;
        }
    };
    let json = if args.raw {
        serde_json::to_string_pretty(&doc.root)
    } else {
        serde_json::to_string_pretty(&Incoming::from_document(&doc))
    };
    match json {
        Ok(json) => {
            outln!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot render JSON: {e}");
            ExitCode::FAILURE
        }
    }
}
