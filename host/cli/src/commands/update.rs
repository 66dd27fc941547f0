//! `cpi update`: installed providers fetched again.

use std::process::ExitCode;

use cpi::Result;

use super::install::{self, Options};
use crate::cli::{Global, InstallArgs};

/// The arguments of `cpi update`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this provider.
    pub provider: Option<String>,
    #[command(flatten)]
    pub opts: InstallArgs,
}

/// Fetches installed providers again (asking again only when they grew).
pub fn exec(g: &Global, args: Args) -> Result<ExitCode> {
    install::update(
        g,
        args.provider.as_deref(),
        &Options::from_args(args.opts, None),
    )
}
