//! `cpi grants`: the stored approvals and grants.

use std::process::ExitCode;

use cpi::{Result, escape};

use super::grant::store;
use crate::cli::Global;
use crate::output::{self, outln};

/// Lists the stored grants.
pub fn exec(g: &Global) -> Result<ExitCode> {
    list(g)
}

fn list(g: &Global) -> Result<ExitCode> {
    let grants = store()?.list()?;
    if g.json {
        output::print_machine(g, &serde_json::to_value(&grants).expect("grants serialize"));
        return Ok(ExitCode::SUCCESS);
    }
    if grants.is_empty() {
        outln!("no grants");
    }
    for grant in grants {
        let pin = grant
            .json_sha256
            .as_deref()
            .filter(|_| grant.component_sha256.is_empty())
            .unwrap_or(&grant.component_sha256);
        outln!(
            "{} ({}, sha256 {})",
            escape::line(&grant.provider),
            if grant.kind.is_empty() {
                "component"
            } else {
                &grant.kind
            },
            &pin[..pin.len().min(12)]
        );
        if let Some(request) = &grant.request {
            for item in &request.commands {
                outln!("  run  {}", escape::line(&item.rule.to_string()));
            }
            for item in &request.http {
                outln!("  net  {}", escape::line(&item.origin));
            }
        }
        for rule in &grant.capabilities.commands {
            outln!("  run  {}", escape::line(&rule.to_string()));
        }
        for rule in &grant.capabilities.http {
            outln!("  net  {}", escape::line(&rule.to_string()));
        }
        for var in &grant.env {
            outln!("  env  {}", escape::line(var));
        }
    }
    Ok(ExitCode::SUCCESS)
}
