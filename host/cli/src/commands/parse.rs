//! `cpi parse`: an action's parse rules applied to saved output.

use std::io::{Read, Write};
use std::process::ExitCode;

use cpi::{Engine, Error, Result};

use super::registry_for;
use crate::cli::Global;
use crate::output;

/// The arguments of `cpi parse`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Provider name.
    pub provider: String,
    /// Action name.
    pub action: String,
    /// File holding the raw output, or - for stdin (default: stdin).
    #[arg(long, short, value_name = "FILE|-", default_value = "-")]
    pub input: String,
}

/// Parses saved output and prints the result.
pub fn exec(g: &Global, args: Args) -> Result<ExitCode> {
    parse(g, &args.provider, &args.action, &args.input)
}

fn parse(g: &Global, provider: &str, action: &str, input: &str) -> Result<ExitCode> {
    let registry = registry_for(g, provider)?;
    let provider = registry.get(provider)?;
    let mut text = String::new();
    let read = if input == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(input).map(|t| text = t)
    };
    read.map_err(|e| Error::validation(format!("cannot read {input}: {e}")))?;
    if output::is_json(g) {
        // A list streams record by record (no tree), held back until it is complete so that
        // an error part-way prints only the error, as before.
        let mut out = output::Held::default();
        if cpi::parse::stream::write_saved(provider, action, &text, &mut out)? {
            out.write_all(b"\n")
                .map_err(|e| Error::internal(format!("cannot hold the output: {e}")))?;
            out.release();
            // What the OS frees at exit needs no freeing first.
            std::mem::forget(text);
            return Ok(ExitCode::SUCCESS);
        }
    }
    let value = Engine::parse_saved(provider, action, &text)?;
    output::print_value(g, &value);
    Ok(ExitCode::SUCCESS)
}
