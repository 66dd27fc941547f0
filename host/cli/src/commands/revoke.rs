//! `cpi revoke`: removes a provider's approval and grants.

use std::process::ExitCode;

use cpi::{Result, escape};
use serde_json::json;

use super::grant::store;
use crate::cli::Global;
use crate::output::{self, outln};

/// The arguments of `cpi revoke`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Provider name.
    pub provider: String,
}

/// Revokes every grant of the provider.
pub fn exec(g: &Global, args: Args) -> Result<ExitCode> {
    revoke(g, &args.provider)
}

fn revoke(g: &Global, name: &str) -> Result<ExitCode> {
    let removed = store()?.remove(name)?;
    if g.json {
        output::print_machine(g, &json!({"provider": name, "revoked": removed}));
    } else if removed {
        outln!("revoked every grant of {}", escape::line(name));
    } else {
        outln!("{} had no grants", escape::line(name));
    }
    Ok(ExitCode::SUCCESS)
}
