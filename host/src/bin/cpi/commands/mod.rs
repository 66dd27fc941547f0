//! One module per subcommand; each `exec` calls the library and renders the outcome.

mod batch;
mod completions;
mod demo;
mod docs;
mod grant;
mod install;
mod new;
mod review;
mod run;
mod schema;
mod serve;
mod show;
mod sim;
mod test;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cpi::config::{self, Config};
use cpi::exec::Limits;
use cpi::params::Inputs;
use cpi::{Engine, Error, Registry, Result};

use crate::cli::{Cli, Command, Global, ParamArgs};

/// Runs the parsed command line.
pub fn exec(cli: Cli) -> Result<ExitCode> {
    let g = &cli.global;
    match cli.command {
        Command::Providers => show::providers(g),
        Command::Show { provider, action } => show::show(g, &provider, action.as_deref()),
        Command::Validate { paths } => validate::exec(g, paths),
        Command::Test {
            providers,
            record: true,
            out,
            params,
        } => test::record(g, &providers, out.as_deref(), &params),
        Command::Test {
            providers, params, ..
        } => {
            if !params.params.is_empty() {
                return Err(Error::validation(
                    "-p values are for --record; fixtures carry their own params",
                ));
            }
            test::exec(g, &providers)
        }
        Command::Run {
            provider,
            action,
            params,
            batch: Some(file),
            parallel,
            allow_override,
            ..
        } => batch::exec(
            g,
            &provider,
            &action,
            &params,
            &file,
            batch::Options {
                parallel,
                allow_override,
            },
        ),
        Command::Run {
            provider,
            action,
            params,
            dry_run,
            wait,
            wait_timeout,
            batch: None,
            refresh,
            ..
        } => run::run(
            g,
            &provider,
            &action,
            &params,
            run::Flags { dry_run, refresh },
            wait.as_deref(),
            wait_timeout,
        ),
        Command::Wait {
            provider,
            worker_id,
            target,
            wait_timeout,
            params,
        } => run::wait(g, &provider, &worker_id, &target, wait_timeout, &params),
        Command::Parse {
            provider,
            action,
            input,
        } => run::parse(g, &provider, &action, &input),
        Command::Init { provider, params } => run::init(g, &provider, &params),
        Command::Sim {
            addr,
            state,
            transition_ms,
        } => sim::exec(addr, state, Duration::from_millis(transition_ms)),
        Command::Grant {
            providers,
            yes,
            approve,
            all,
            run,
            net,
            env,
        } => grant::grant(
            g,
            &providers,
            &grant::Choice {
                yes,
                approve: approve.as_deref(),
                all,
                run: &run,
                net: &net,
                env: &env,
                nested: false,
            },
        ),
        Command::Install {
            source,
            opts,
            locked,
            sha256,
        } => {
            let options = install_options(opts, sha256);
            match source {
                Some(source) if !locked => install::install(g, &source, &options),
                _ => install::install_locked(g, &options),
            }
        }
        Command::Update { provider, opts } => {
            install::update(g, provider.as_deref(), &install_options(opts, None))
        }
        Command::Uninstall { provider, opts } => {
            install::uninstall(g, &provider, &install_options(opts, None))
        }
        Command::Revoke { provider } => grant::revoke(g, &provider),
        Command::Grants => grant::list(g),
        Command::Serve { serve, params } => serve::exec(g, &serve, &params),
        Command::Demo => demo::exec(g),
        Command::Docs {
            providers,
            all,
            out,
        } => docs::exec(g, &providers, all, out.as_deref()),
        Command::Schema => schema::exec(),
        Command::New {
            name,
            kind,
            component,
            dir,
            sdk,
        } => new::exec(g, &name, kind, component, dir, sdk),
        Command::Completions { shell } => completions::exec(shell),
    }
}

fn install_options(opts: crate::cli::InstallArgs, sha256: Option<String>) -> install::Options {
    install::Options {
        yes: opts.yes,
        approve: opts.approve,
        sha256,
        allow_http_loopback: opts.allow_http_loopback,
        lock: opts.lock,
    }
}

/// The built-in providers plus those in the user's provider directory, the user config's
/// `provider_dirs` and the `--provider-dir`s (never the working directory's `./providers`).
pub fn registry(g: &Global) -> Result<Registry> {
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
    let registry = Registry::with_builtins(&dirs)?;
    for problem in registry.problems().iter().chain(&registry.conflicts()) {
        tracing::warn!("skipped a provider: {}", problem.message());
    }
    Ok(registry)
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
    let wasm = cpi::engine::WasmOptions {
        limits: cpi::wasm::SandboxLimits {
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
        .with_wasm(wasm)
        .with_retry(retry))
}

/// A tokio runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))
}
