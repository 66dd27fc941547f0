//! `cpi validate`.

use std::path::PathBuf;
use std::process::ExitCode;

use cpi::Result;
use cpi_authoring::validate::{self, Severity};

use crate::cli::Global;
use crate::output::{self, BAD, GOOD, WARN, outln, outln_styled, paint};

/// The arguments of `cpi validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Provider files or directories (default: ./providers).
    pub paths: Vec<PathBuf>,
}

/// Reports on every provider file under the paths.
pub fn exec(g: &Global, args: Args) -> Result<ExitCode> {
    report(g, args.paths)
}

fn report(g: &Global, paths: Vec<PathBuf>) -> Result<ExitCode> {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("providers")]
    } else {
        paths
    };
    let files = validate::expand_paths(&paths)?;
    if files.is_empty() {
        return Err(cpi::Error::validation(format!(
            "no provider files (*.json) found in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let reports: Vec<_> = files.iter().map(|f| validate::validate_file(f)).collect();
    let errors: usize = reports.iter().map(|r| r.errors()).sum();
    if g.json {
        output::print_machine(
            g,
            &serde_json::to_value(&reports).expect("reports serialize"),
        );
    } else {
        for report in &reports {
            let name = report.provider.as_deref().unwrap_or("?");
            let verdict = if report.errors() == 0 {
                paint(GOOD, "ok")
            } else {
                paint(BAD, "FAILED")
            };
            outln_styled!(
                "{} ({name}): {verdict}, {} error(s), {} warning(s)",
                report.file.display(),
                report.errors(),
                report.warnings()
            );
            for f in &report.findings {
                let sev = match f.severity {
                    Severity::Error => paint(BAD, "error"),
                    Severity::Warning => paint(WARN, "warning"),
                };
                let at = if f.path.is_empty() {
                    String::new()
                } else {
                    format!(" {}", f.path)
                };
                outln_styled!("  {sev}{at}: {}", f.message);
            }
        }
        if reports.len() > 1 {
            let clean = reports.iter().filter(|r| r.errors() == 0).count();
            outln!(
                "{} file(s) checked: {clean} without errors, {errors} error(s) in all",
                reports.len()
            );
        }
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
