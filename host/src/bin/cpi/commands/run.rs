//! `cpi run`, `cpi parse` and `cpi init`.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use cpi::wait::WaitOptions;
use cpi::{Engine, Error, Result};

use super::{engine, inputs, registry_for, runtime_single};
use crate::cli::{Global, ParamArgs};
use crate::output::{self, outln, outln_styled};

/// `cpi run`'s switches.
#[derive(Debug, Clone, Copy)]
pub struct Flags {
    /// `--dry-run`: show the call, run nothing.
    pub dry_run: bool,
    /// `--refresh`: bypass the metadata cache (and store the fresh result).
    pub refresh: bool,
}

pub fn run(
    g: &Global,
    provider: &str,
    action: &str,
    args: &ParamArgs,
    flags: Flags,
    wait_for: Option<&str>,
    wait_timeout: Duration,
) -> Result<ExitCode> {
    let dry_run = flags.dry_run;
    let wait_opts = match wait_for {
        Some(_) if !cpi_contract::verbs::is_waitable(action) => {
            return Err(Error::validation(format!(
                "--wait applies to create/start/stop/reboot actions, not '{action}'"
            )));
        }
        Some(target) => Some(WaitOptions::new(target, wait_timeout)?),
        None => None,
    };
    let registry = registry_for(g, provider)?;
    let provider = registry.get(provider)?;
    let inputs = inputs(g, provider, args)?;
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
        let mut value = serde_json::to_value(&plan).map_err(|e| Error::internal(e.to_string()))?;
        if !g.json {
            // For people, the parameters as a table: NAME VALUE SOURCE.
            let rows: Vec<serde_json::Value> = plan
                .params
                .iter()
                .map(|(name, v)| {
                    serde_json::json!({"name": name, "value": v["value"], "source": v["source"]})
                })
                .collect();
            value["params"] = serde_json::Value::Array(rows);
        }
        output::print_value(&value, g.json);
        return Ok(ExitCode::SUCCESS);
    }
    let rt = runtime_single()?;
    let cached = cached_metadata(provider, action, &inputs, flags.refresh)?;
    if let Some((_, _, Some(hit))) = &cached {
        tracing::info!("{action}: the cached result (cpi run --refresh runs it again)");
        output::print_value(hit, g.json);
        return Ok(ExitCode::SUCCESS);
    }
    // The unredacted result feeds `--wait` (the worker id); what is printed is redacted.
    let raw = rt.block_on(engine.run_unredacted(provider, action, &inputs))?;
    let mut result = raw.clone();
    engine
        .redactor(provider, action, &inputs)
        .redact_json(&mut result);
    if let Some((cache, key, _)) = &cached
        && let Err(err) = cache.put(key, &result)
    {
        tracing::warn!("{}", err.message());
    }
    let Some(opts) = wait_opts else {
        output::print_value(&result, g.json);
        return Ok(ExitCode::SUCCESS);
    };
    if !g.json {
        output::print_value(&result, false);
    }
    let worker_id = match (
        raw.get("id").and_then(|v| v.as_str()),
        inputs.cli.get("worker_id"),
    ) {
        (Some(id), _) => id.to_string(),
        (None, Some(id)) => id.clone(),
        (None, None) => inputs
            .config
            .get("worker_id")
            .map(cpi::params::value_to_param)
            .ok_or_else(|| {
                Error::validation(
                    "--wait needs a worker id: the result has no 'id' and no worker_id was given",
                )
            })?,
    };
    let worker = wait_loop(g, &rt, &engine, provider, &inputs, &worker_id, &opts)?;
    output::print_value(&worker, g.json);
    Ok(ExitCode::SUCCESS)
}

/// The metadata cache, this run's key and the cached result (when fresh and not
/// `--refresh`), for an action that may be cached (`cpi::cache`); `None` otherwise. An unsafe
/// cache directory is reported and the action runs uncached.
fn cached_metadata(
    provider: &cpi::Provider,
    action: &str,
    inputs: &cpi::params::Inputs,
    refresh: bool,
) -> Result<Option<(cpi::cache::MetadataCache, String, Option<serde_json::Value>)>> {
    if provider.component.is_some() {
        return Ok(None);
    }
    let def = provider.action(action)?;
    let Some(ttl) = cpi::cache::ttl(action, def)? else {
        return Ok(None);
    };
    let cache = match cpi::cache::MetadataCache::user() {
        Ok(cache) => cache,
        Err(err) => {
            tracing::warn!("{}", err.message());
            return Ok(None);
        }
    };
    let resolved = cpi::params::resolve(provider, def, inputs);
    let key = cpi::cache::key(provider, action, def, &resolved);
    let hit = if refresh { None } else { cache.get(&key, ttl) };
    Ok(Some((cache, key, hit)))
}

pub fn wait(
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
    output::print_value(&worker, g.json);
    Ok(ExitCode::SUCCESS)
}

/// Polls with a spinner on a terminal, plain lines otherwise (nothing with -q).
fn wait_loop(
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

pub fn parse(g: &Global, provider: &str, action: &str, input: &str) -> Result<ExitCode> {
    let registry = registry_for(g, provider)?;
    let provider = registry.get(provider)?;
    let mut text = String::new();
    let read = if input == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(input).map(|t| text = t)
    };
    read.map_err(|e| Error::validation(format!("cannot read {input}: {e}")))?;
    if output::is_json() {
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
    output::print_value(&value, g.json);
    Ok(ExitCode::SUCCESS)
}

pub fn init(g: &Global, provider: &str, args: &ParamArgs) -> Result<ExitCode> {
    let registry = registry_for(g, provider)?;
    let provider = registry.get(provider)?;
    let inputs = inputs(g, provider, args)?;
    let engine = engine(args)?;
    let (reports, outcome) = runtime_single()?.block_on(engine.lifecycle(provider, &inputs));
    if g.json {
        let value = serde_json::json!({"provider": provider.name, "ready": outcome.is_ok(), "steps": reports});
        output::print_machine(&value);
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
                output::print_error(&err, false);
            }
            Ok(ExitCode::from(err.kind().exit_code()))
        }
    }
}
