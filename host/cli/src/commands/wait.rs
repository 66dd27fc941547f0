//! `cpi wait`: polls `get_worker` until the worker reaches a status.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use cpi::wait::WaitOptions;
use cpi::{Engine, Result};

use super::{engine, inputs, registry_for, runtime_single};
use crate::cli::{Global, ParamArgs};
use crate::output;

/// The arguments of `cpi wait`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Provider name.
    pub provider: String,
    /// The worker's ID.
    pub worker_id: String,
    /// The standard status to wait for (running, stopped, ...).
    #[arg(long = "for", value_name = "STATUS")]
    pub target: String,
    /// Give up after this long (e.g. 90s, 10m).
    #[arg(long = "wait-timeout", value_name = "DURATION", default_value = "10m", value_parser = crate::cli::duration)]
    pub wait_timeout: std::time::Duration,
    #[command(flatten)]
    pub params: ParamArgs,
}

/// Waits for the worker's status and prints the worker.
pub fn exec(g: &Global, args: Args) -> Result<ExitCode> {
    wait(
        g,
        &args.provider,
        &args.worker_id,
        &args.target,
        args.wait_timeout,
        &args.params,
    )
}

fn wait(
    g: &Global,
    provider: &str,
    worker_id: &str,
    target: &str,
    timeout: Duration,
    args: &ParamArgs,
) -> Result<ExitCode> {
    let registry = registry_for(g, provider)?;
    let provider = registry.get(provider)?;
    let inputs = inputs(g, provider, args)?;
    let opts = WaitOptions::new(target, timeout)?;
    let engine = engine(args)?;
    let rt = runtime_single()?;
    let worker = wait_loop(g, &rt, &engine, provider, &inputs, worker_id, &opts)?;
    output::print_value(g, &worker);
    Ok(ExitCode::SUCCESS)
}

/// Polls with a spinner on a terminal, plain lines otherwise (nothing with -q).
pub(super) fn wait_loop(
    g: &Global,
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    provider: &cpi::Provider,
    inputs: &cpi::params::Inputs,
    worker_id: &str,
    opts: &WaitOptions,
) -> Result<serde_json::Value> {
    let mut inputs = inputs.clone();
    inputs.cli.insert("worker_id".into(), worker_id.to_string());
    // Progress goes to stderr, whatever stdout's format: only -q silences it.
    let interactive = std::io::stderr().is_terminal() && !g.quiet;
    let spinner = interactive.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let mut last = String::new();
    let outcome = rt.block_on(cpi::wait::wait_for(
        engine,
        provider,
        &inputs,
        opts,
        |status, elapsed| {
            let line = format!(
                "waiting for {} to be {}: {} ({:.0?})",
                cpi::escape::line(worker_id),
                opts.target,
                cpi::escape::line(status),
                elapsed
            );
            match &spinner {
                Some(bar) => bar.set_message(line),
                None if !g.quiet && status != last => eprintln!("{line}"),
                None => {}
            }
            last = status.to_string();
        },
    ));
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    outcome
}
