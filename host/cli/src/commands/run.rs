//! `cpi run`, `cpi parse` and `cpi init`.

use std::process::ExitCode;
use std::time::Duration;

use cpi::wait::WaitOptions;
use cpi::{Error, Result};

use super::{engine, inputs, registry_for, runtime_single};
use crate::cli::{Global, ParamArgs};
use crate::output;

use std::path::PathBuf;
/// The arguments of `cpi run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Provider name.
    pub provider: String,
    /// Action name (e.g. create_worker).
    pub action: String,
    #[command(flatten)]
    pub params: ParamArgs,
    /// Show the resolved parameters and the exact command or request, without running it.
    #[arg(long)]
    pub dry_run: bool,
    /// After create/start/stop/reboot, wait until the worker reaches this status.
    #[arg(long, value_name = "STATUS")]
    pub wait: Option<String>,
    /// How long --wait waits (e.g. 90s, 10m).
    #[arg(long = "wait-timeout", value_name = "DURATION", default_value = "10m", value_parser = crate::cli::duration)]
    pub wait_timeout: std::time::Duration,
    /// Run the action once per line of a JSON-lines file (`-` for stdin); prints one JSON
    /// result per line, in input order.
    #[arg(long, value_name = "FILE.jsonl", conflicts_with_all = ["dry_run", "wait"])]
    pub batch: Option<PathBuf>,
    /// How many batch items run at once.
    #[arg(long, value_name = "N", default_value_t = 4, requires = "batch")]
    pub parallel: usize,
    /// Let batch lines set what is otherwise the operator's: values from cpi.toml, base
    /// URLs, TLS settings and server paths (see `cpi::exposed`).
    #[arg(long, requires = "batch")]
    pub allow_override: bool,
    /// Run a cached metadata action (list_regions, list_images, ...) for real and store
    /// the fresh result.
    #[arg(long)]
    pub refresh: bool,
}

/// Runs one action (or, with `--batch`, one per line of a file).
pub fn exec(g: &Global, args: Args) -> Result<ExitCode> {
    if let Some(file) = &args.batch {
        let options = super::batch::Options {
            parallel: args.parallel,
            allow_override: args.allow_override,
        };
        return super::batch::exec(g, &args.provider, &args.action, &args.params, file, options);
    }
    let flags = Flags {
        dry_run: args.dry_run,
        refresh: args.refresh,
    };
    run(
        g,
        &args.provider,
        &args.action,
        &args.params,
        flags,
        args.wait.as_deref(),
        args.wait_timeout,
    )
}

/// `cpi run`'s switches.
#[derive(Debug, Clone, Copy)]
pub struct Flags {
    /// `--dry-run`: show the call, run nothing.
    pub dry_run: bool,
    /// `--refresh`: bypass the metadata cache (and store the fresh result).
    pub refresh: bool,
}

fn run(
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
        return dry_run_plan(g, &engine, provider, action, &inputs);
    }
    let rt = runtime_single()?;
    let cached = cached_metadata(provider, action, &inputs, flags.refresh)?;
    if let Some((_, _, Some(hit))) = &cached {
        // The approval a run checks is checked first: a provider that may not run never
        // answers from the cache.
        engine.check_approved(provider, action)?;
        tracing::info!("{action}: the cached result (cpi run --refresh runs it again)");
        output::print_value(g, hit);
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
        output::print_value(g, &result);
        return Ok(ExitCode::SUCCESS);
    };
    if !g.json {
        output::out!("{}", output::render(&result));
    }
    let worker_id = worker_to_wait_for(&raw, &inputs)?;
    let worker = super::wait::wait_loop(g, &rt, &engine, provider, &inputs, &worker_id, &opts)?;
    output::print_value(g, &worker);
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

/// `--dry-run`: the plan, with its parameters as a table (NAME VALUE SOURCE) for people.
fn dry_run_plan(
    g: &Global,
    engine: &cpi::Engine,
    provider: &cpi::Provider,
    action: &str,
    inputs: &cpi::params::Inputs,
) -> Result<ExitCode> {
    let plan = engine.plan(provider, action, inputs)?;
    let mut value = serde_json::to_value(&plan).map_err(|e| Error::internal(e.to_string()))?;
    if !g.json {
        let rows: Vec<serde_json::Value> = plan
            .params
            .iter()
            .map(|(name, v)| {
                serde_json::json!({"name": name, "value": v["value"], "source": v["source"]})
            })
            .collect();
        value["params"] = serde_json::Value::Array(rows);
    }
    output::print_value(g, &value);
    Ok(ExitCode::SUCCESS)
}

/// The worker `--wait` waits for: the new worker's `id` in the (unredacted) result, else the
/// `worker_id` given on the command line or in the config.
fn worker_to_wait_for(raw: &serde_json::Value, inputs: &cpi::params::Inputs) -> Result<String> {
    match (
        raw.get("id").and_then(|v| v.as_str()),
        inputs.cli.get("worker_id"),
    ) {
        (Some(id), _) => Ok(id.to_string()),
        (None, Some(id)) => Ok(id.clone()),
        (None, None) => inputs
            .config
            .get("worker_id")
            .map(cpi::params::value_to_param)
            .ok_or_else(|| {
                Error::validation(
                    "--wait needs a worker id: the result has no 'id' and no worker_id was given",
                )
            }),
    }
}
