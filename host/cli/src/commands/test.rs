//! `cpi test`: run providers' fixtures (saved output → expected JSON).

use std::path::Path;
use std::process::ExitCode;

use cpi::escape;
use cpi::{Error, Result};
use cpi_authoring::fixture::{self, CaseReport};
use serde_json::Value;

use crate::cli::{Global, ParamArgs};
use crate::output::{self, BAD, GOOD, outln, outln_styled, paint};

use std::path::PathBuf;
/// The arguments of `cpi test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Provider names (default: every provider with fixtures); with --record, PROVIDER ACTION.
    pub providers: Vec<String>,
    /// Run PROVIDER ACTION for real and write what it printed as a fixture (secrets
    /// redacted, the program's version and the date recorded); an earlier recording is
    /// compared and the differences shown.
    #[arg(long)]
    pub record: bool,
    /// Where --record writes (default: fixtures/PROVIDER/ACTION.recorded.json beside the
    /// provider file).
    #[arg(long, value_name = "FILE", requires = "record")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub params: ParamArgs,
}

/// Runs fixtures, or (`--record`) records one.
pub fn exec(g: &Global, args: Args) -> Result<ExitCode> {
    if args.record {
        return record(g, &args.providers, args.out.as_deref(), &args.params);
    }
    if !args.params.params.is_empty() {
        return Err(Error::validation(
            "-p values are for --record; fixtures carry their own params",
        ));
    }
    run_fixtures(g, &args.providers)
}

fn run_fixtures(g: &Global, names: &[String]) -> Result<ExitCode> {
    let registry = super::registry(g)?;
    let providers = super::select(&registry, names)?;
    let engine = super::default_engine()?;
    let mut all: Vec<(String, Vec<CaseReport>)> = Vec::new();
    for provider in providers {
        let cases = fixture::run_all(&engine, provider)?;
        if cases.is_empty() && names.is_empty() {
            continue;
        }
        if cases.is_empty() {
            return Err(Error::validation(format!(
                "{} has no fixtures (expected *.json files in {})",
                provider.name,
                fixture::dir_for(provider).display()
            )));
        }
        all.push((provider.name.clone(), cases));
    }
    let total: usize = all.iter().map(|(_, c)| c.len()).sum();
    let failed: usize = all
        .iter()
        .map(|(_, c)| c.iter().filter(|c| !c.passed()).count())
        .sum();
    if g.json {
        let value: serde_json::Map<_, _> = all
            .iter()
            .map(|(name, cases)| (name.clone(), serde_json::json!(cases)))
            .collect();
        output::print_machine(g, &serde_json::Value::Object(value));
    } else {
        for (name, cases) in &all {
            for case in cases {
                let file = case
                    .file
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                match &case.failure {
                    None => {
                        outln_styled!("{}      {name} {} ({file})", paint(GOOD, "ok"), case.action)
                    }
                    Some(why) => outln_styled!(
                        "{}  {name} {} ({file}): {why}",
                        paint(BAD, "FAILED"),
                        case.action
                    ),
                }
            }
        }
        outln!(
            "{total} fixture(s) in {} provider(s): {} passed, {failed} failed",
            all.len(),
            total - failed
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `cpi test --record PROVIDER ACTION`: runs the action for real and writes it as a fixture,
/// showing what changed since an earlier recording in the same file.
fn record(g: &Global, names: &[String], out: Option<&Path>, args: &ParamArgs) -> Result<ExitCode> {
    let [provider, action] = names else {
        return Err(Error::validation(
            "--record takes exactly PROVIDER ACTION (e.g. cpi test --record libvirt list_workers)",
        ));
    };
    let registry = super::registry(g)?;
    let provider = registry.get(provider)?;
    let inputs = super::inputs(g, provider, args)?;
    let def = provider.action(action)?;
    cpi::params::check_unknown(
        &inputs.cli,
        &cpi::params::known_names(provider, def, &inputs),
    )?;
    let path = match out {
        Some(out) => out.to_path_buf(),
        // A built-in provider's fixtures are in the binary: there is no directory to add to.
        None if provider.is_builtin() => {
            return Err(Error::validation(format!(
                "{} is a built-in provider; name the fixture file to write with --out FILE",
                provider.name
            )));
        }
        None => fixture::dir_for(provider).join(format!("{action}.recorded.json")),
    };
    let engine = super::engine(args)?;
    let recorded = super::runtime()?.block_on(cpi_authoring::record::record(
        &engine, provider, action, &inputs,
    ))?;
    let earlier: Option<Value> = cpi::fsread::read_string(&path, cpi::fsread::Kind::Fixture)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let changes = earlier
        .as_ref()
        .map(|old| cpi_authoring::record::changes(old, &recorded));
    write_fixture(&path, &recorded)?;
    if g.json {
        output::print_machine(
            g,
            &serde_json::json!({
                "file": path,
                "changes": changes,
                "fixture": recorded,
            }),
        );
        return Ok(ExitCode::SUCCESS);
    }
    let shown = escape::line(&path.to_string_lossy()).into_owned();
    match changes {
        None => outln!("recorded {}.{action} into {shown} (new)", provider.name),
        Some(list) if list.is_empty() => outln!(
            "recorded {}.{action} into {shown}: no changes since the last recording",
            provider.name
        ),
        Some(list) => {
            outln!(
                "recorded {}.{action} into {shown}; changed since the last recording:",
                provider.name
            );
            for change in list {
                outln!("  {}", escape::line(&change));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_fixture(path: &Path, fixture: &Value) -> Result<()> {
    let fail = |e: std::io::Error| {
        Error::validation(format!("cannot write the fixture {}: {e}", path.display()))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut text =
        serde_json::to_string_pretty(fixture).map_err(|e| Error::internal(e.to_string()))?;
    text.push('\n');
    std::fs::write(path, text).map_err(fail)
}
