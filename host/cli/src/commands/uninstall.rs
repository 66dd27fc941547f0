//! `cpi uninstall`: an installed provider removed.

use std::process::ExitCode;

use cpi::Result;

use super::install::{self, Options};
use crate::cli::{Global, InstallArgs};

/// The arguments of `cpi uninstall`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Provider name.
    pub provider: String,
    #[command(flatten)]
    pub opts: InstallArgs,
}

/// Removes an installed provider, its approval and its store entry.
pub fn exec(g: &Global, args: Args) -> Result<ExitCode> {
    install::uninstall(g, &args.provider, &Options::from_args(args.opts, None))
}
