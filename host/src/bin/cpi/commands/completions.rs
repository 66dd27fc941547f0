//! `cpi completions SHELL`: a completion script generated from the command-line definition.

use std::process::ExitCode;

use clap::CommandFactory;
use cpi::Result;

use crate::cli::Cli;

pub fn exec(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "cpi", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
