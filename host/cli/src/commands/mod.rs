//! One module per subcommand, each with its `Args` (the subcommand's clap arguments) and an
//! `exec` that calls the library and renders the outcome.

mod batch;
pub mod completions;
mod demo;
pub mod docs;
pub mod grant;
mod grants;
pub mod init;
pub mod install;
pub mod new;
pub mod parse;
mod providers;
mod review;
pub mod revoke;
pub mod run;
mod schema;
pub mod serve;
pub mod show;
pub mod sim;
pub mod test;
pub mod uninstall;
pub mod update;
pub mod validate;
pub mod wait;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use cpi::config::{self, Config};
use cpi::exec::Limits;
use cpi::params::Inputs;
use cpi::{Engine, Error, Registry, Result};
use cpi_sandbox::Components;

use crate::cli::{Cli, Command, Global, ParamArgs};

/// Runs the parsed command line: each subcommand's `exec` with its `Args`.
pub fn exec(cli: Cli) -> Result<ExitCode> {
    let g = &cli.global;
    match cli.command {
        Command::Providers => providers::exec(g),
        Command::Show(args) => show::exec(g, args),
        Command::Validate(args) => validate::exec(g, args),
        Command::Test(args) => test::exec(g, args),
        Command::Run(args) => run::exec(g, args),
        Command::Wait(args) => wait::exec(g, args),
        Command::Parse(args) => parse::exec(g, args),
        Command::Init(args) => init::exec(g, args),
        Command::Sim(args) => sim::exec(args),
        Command::Grant(args) => grant::exec(g, args),
        Command::Install(args) => install::exec(g, args),
        Command::Update(args) => update::exec(g, args),
        Command::Uninstall(args) => uninstall::exec(g, args),
        Command::Revoke(args) => revoke::exec(g, args),
        Command::Grants => grants::exec(g),
        Command::Serve(args) => serve::exec(g, args),
        Command::Demo => demo::exec(g),
        Command::Docs(args) => docs::exec(g, args),
        Command::Schema => schema::exec(),
        Command::New(args) => new::exec(g, args),
        Command::Completions(args) => completions::exec(args),
    }
}

/// The built-in providers plus those in the user's provider directory, the user config's
/// `provider_dirs` and the `--provider-dir`s (never the working directory's `./providers`).
pub fn registry(g: &Global) -> Result<Registry> {
    registry_of(&search_dirs(g)?)
}

/// A registry that answers `get(name)` as [`registry`]'s would, parsing only the built-in
/// provider named (see [`Registry::for_name`]); a name it does not know is looked up in the
/// full registry, whose error lists every provider there is.
pub fn registry_for(g: &Global, name: &str) -> Result<Registry> {
    let dirs = search_dirs(g)?;
    let registry = Registry::for_name(&dirs, name)?;
    if registry.get(name).is_err() {
        return registry_of(&dirs);
    }
    warn_skipped(&registry);
    Ok(registry)
}

fn registry_of(dirs: &[PathBuf]) -> Result<Registry> {
    let registry = Registry::with_builtins(dirs)?;
    warn_skipped(&registry);
    Ok(registry)
}

fn warn_skipped(registry: &Registry) {
    for problem in registry.problems().iter().chain(&registry.conflicts()) {
        tracing::warn!("skipped a provider: {}", problem.message());
    }
}

/// The provider directories searched, in order (the built-in providers come first).
fn search_dirs(g: &Global) -> Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = cpi::provider::default_search_dirs();
    dirs.extend(cpi::install::installed_dirs()?);
    dirs.extend(config(g)?.provider_dirs());
    for dir in &g.provider_dirs {
        if !dir.is_dir() {
            return Err(Error::validation(format!(
                "--provider-dir {}: not a directory",
                dir.display()
            )));
        }
        dirs.push(dir.clone());
    }
    Ok(dirs)
}

/// The providers named on the command line, or every discovered one when none is named.
pub fn select<'r>(registry: &'r Registry, names: &[String]) -> Result<Vec<&'r cpi::Provider>> {
    if names.is_empty() {
        return Ok(registry.providers().collect());
    }
    names.iter().map(|n| registry.get(n)).collect()
}

/// The config file (`--config`, or the default path when it exists).
pub fn config(g: &Global) -> Result<Config> {
    match &g.config {
        Some(path) => Config::load(path, true),
        None => match config::default_path() {
            Some(path) => Config::load(&path, false),
            None => Ok(Config::default()),
        },
    }
}

/// Parameter inputs for `provider` from `-p` flags, the environment and the config file.
pub fn inputs(g: &Global, provider: &cpi::Provider, args: &ParamArgs) -> Result<Inputs> {
    let mut cli = indexmap::IndexMap::new();
    for assignment in &args.params {
        let (name, value) = cpi::params::parse_assignment(assignment)?;
        cli.insert(name, value);
    }
    Ok(Inputs {
        cli,
        config: config(g)?.values_for(provider)?,
        use_env: true,
        ..Inputs::default()
    })
}

/// An engine honouring `--timeout`, the one-off grants and the sandbox limits.
pub fn engine(args: &ParamArgs) -> Result<Engine> {
    // A day at most: `Duration::from_secs_f64` panics past u64 seconds (`--timeout 1e308`),
    // and deadlines far beyond that overflow `Instant` arithmetic.
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 86_400.0) {
        return Err(Error::validation(format!(
            "--timeout must be a number of seconds more than 0 and at most 86400, got {}",
            args.timeout
        )));
    }
    let limits = Limits {
        timeout: Duration::from_secs_f64(args.timeout),
        ..Limits::default()
    };
    let mut one_off = cpi::policy::Capabilities::default();
    for pattern in &args.allow_run {
        one_off
            .commands
            .push(cpi::policy::CommandRule::parse(pattern)?);
    }
    for origin in &args.allow_net {
        one_off.http.push(cpi::policy::HttpRule::parse(origin)?);
    }
    if args.wasm_fuel == 0 || args.wasm_memory_mb == 0 {
        return Err(Error::validation(
            "--wasm-fuel and --wasm-memory-mb must be positive",
        ));
    }
    let seconds = |flag: &str, secs: f64| {
        Duration::try_from_secs_f64(secs)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                Error::validation(format!(
                    "{flag} must be a positive number of seconds, got {secs}"
                ))
            })
    };
    let wasm = cpi_sandbox::Options {
        limits: cpi_sandbox::SandboxLimits {
            fuel: args.wasm_fuel,
            memory_bytes: args.wasm_memory_mb.saturating_mul(1 << 20),
            call_time: seconds("--wasm-timeout", args.wasm_timeout)?,
            run_time: seconds("--wasm-run-timeout", args.wasm_run_timeout)?,
            ..Default::default()
        },
        one_off,
        ..Default::default()
    };
    if args.attempts == 0 {
        return Err(Error::validation("--attempts must be at least 1"));
    }
    let retry = cpi::engine::RetryPolicy {
        attempts: args.attempts,
        ..Default::default()
    };
    Ok(Engine::with_limits(limits)?
        .with_components(Arc::new(Components::new(wasm)))
        .with_retry(retry))
}

/// An engine with default limits, component providers running in a sandbox with default
/// settings.
pub fn default_engine() -> Result<Engine> {
    let components = Components::new(cpi_sandbox::Options::default());
    Ok(Engine::new()?.with_components(Arc::new(components)))
}

/// Loads a provider's component (compiling it, or taking it from the cache) in a sandbox with
/// default settings: what `show` and `grant` read its manifest from.
pub fn load_component(provider: &cpi::Provider) -> Result<Arc<cpi_sandbox::Component>> {
    // Its host calls (none are granted while it describes itself) block on this runtime,
    // whose worker threads drive them.
    let runtime = runtime()?;
    let _entered = runtime.enter();
    Components::new(Default::default()).load(provider)
}

/// A single-threaded tokio runtime, for a command that runs one thing at a time (`run`,
/// `wait`, `init`): it starts in a fraction of the multi-threaded one's time. Blocking work
/// (component calls) still goes to tokio's blocking threads.
pub fn runtime_single() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))
}

/// A tokio runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))
}
