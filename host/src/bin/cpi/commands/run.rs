//! `cpi run`, `cpi parse` and `cpi init`.

use std::io::Read;
use std::process::ExitCode;

use cpi::{Engine, Error, Result};

use super::{engine, inputs, registry, runtime};
use crate::cli::{Global, ParamArgs};
use crate::output;

pub fn run(
    g: &Global,
    provider: &str,
    action: &str,
    args: &ParamArgs,
    dry_run: bool,
) -> Result<ExitCode> {
    let registry = registry(g)?;
    let provider = registry.get(provider)?;
    let inputs = inputs(g, &provider.name, args)?;
    // A component provider's actions are known only once its component is loaded.
    if provider.component.is_none() {
        let def = provider.action(action)?;
        cpi::params::check_unknown(
            &inputs.cli,
            &cpi::params::known_names(provider, def, &inputs),
        )?;
    }
    let engine = engine(args)?;
    if dry_run {
        let plan = engine.plan(provider, action, &inputs)?;
        let value = serde_json::to_value(&plan).map_err(|e| Error::internal(e.to_string()))?;
        output::print_value(&value, g.json);
        return Ok(ExitCode::SUCCESS);
    }
    let result = runtime()?.block_on(engine.run(provider, action, &inputs))?;
    output::print_value(&result, g.json);
    Ok(ExitCode::SUCCESS)
}

pub fn parse(g: &Global, provider: &str, action: &str, input: &str) -> Result<ExitCode> {
    let registry = registry(g)?;
    let provider = registry.get(provider)?;
    let mut text = String::new();
    let read = if input == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(input).map(|t| text = t)
    };
    read.map_err(|e| Error::validation(format!("cannot read {input}: {e}")))?;
    let value = Engine::parse_saved(provider, action, &text)?;
    output::print_value(&value, g.json);
    Ok(ExitCode::SUCCESS)
}

pub fn init(g: &Global, provider: &str, args: &ParamArgs) -> Result<ExitCode> {
    let registry = registry(g)?;
    let provider = registry.get(provider)?;
    let inputs = inputs(g, &provider.name, args)?;
    let engine = engine(args)?;
    let (reports, outcome) = runtime()?.block_on(engine.lifecycle(provider, &inputs));
    if g.json {
        let value = serde_json::json!({"provider": provider.name, "ready": outcome.is_ok(), "steps": reports});
        println!("{value}");
    } else {
        for step in &reports {
            println!("{:<16} {}", step.action, step.outcome);
            if let Some(result) = &step.result {
                for line in output::render(result).lines() {
                    println!("    {line}");
                }
            }
        }
        match &outcome {
            Ok(()) => println!("{} is ready", provider.name),
            Err(_) => println!("{} is not ready", provider.name),
        }
    }
    match outcome {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(err) => {
            if !g.json {
                output::print_error(&err, false);
            }
            Ok(ExitCode::from(err.kind().exit_code()))
        }
    }
}
