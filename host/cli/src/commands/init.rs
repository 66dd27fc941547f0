//! `cpi init`: the §8 lifecycle, step by step.

use std::process::ExitCode;

use cpi::Result;

use super::{engine, inputs, registry_for, runtime_single};
use crate::cli::{Global, ParamArgs};
use crate::output::{self, outln, outln_styled};

/// The arguments of `cpi init`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Provider name.
    pub provider: String,
    #[command(flatten)]
    pub params: ParamArgs,
}

/// Runs the lifecycle and reports each step.
pub fn exec(g: &Global, args: Args) -> Result<ExitCode> {
    init(g, &args.provider, &args.params)
}

fn init(g: &Global, provider: &str, args: &ParamArgs) -> Result<ExitCode> {
    let registry = registry_for(g, provider)?;
    let provider = registry.get(provider)?;
    let inputs = inputs(g, provider, args)?;
    let engine = engine(args)?;
    let (reports, outcome) = runtime_single()?.block_on(engine.lifecycle(provider, &inputs));
    if g.json {
        let value = serde_json::json!({"provider": provider.name, "ready": outcome.is_ok(), "steps": reports});
        output::print_machine(g, &value);
    } else {
        for step in &reports {
            let outcome = match step.outcome {
                "ok" => output::paint(output::GOOD, "ok"),
                "failed" => output::paint(output::BAD, "failed"),
                other => other.to_string(),
            };
            outln_styled!("{:<16} {outcome}", step.action);
            if let Some(result) = &step.result {
                for line in output::render(result).lines() {
                    outln!("    {line}");
                }
            }
        }
        match &outcome {
            Ok(()) => outln!("{} is ready", provider.name),
            Err(_) => outln!("{} is not ready", provider.name),
        }
    }
    match outcome {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(err) => {
            if !g.json {
                output::print_error(&g.settings, &err, false);
            }
            Ok(ExitCode::from(err.kind().exit_code()))
        }
    }
}
