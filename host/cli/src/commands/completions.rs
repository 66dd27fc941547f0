//! `cpi completions SHELL`: a completion script generated from the command-line definition.

use std::process::ExitCode;

use clap::CommandFactory;
use cpi::Result;

use crate::cli::Cli;
use crate::output::out;

/// The arguments of `cpi completions`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Prints a shell completion script.
pub fn exec(args: Args) -> Result<ExitCode> {
    print_script(args.shell)
}

fn print_script(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut command = Cli::command();
    // Generated into memory first: written straight to a closed stdout it would panic.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "cpi", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    Ok(ExitCode::SUCCESS)
}
