//! `cpi test`: run providers' fixtures (saved output → expected JSON).

use std::process::ExitCode;

use cpi::fixture::{self, CaseReport};
use cpi::{Engine, Error, Result};

use crate::cli::Global;
use crate::output::{self, BAD, GOOD, outln, outln_styled, paint};

pub fn exec(g: &Global, names: &[String]) -> Result<ExitCode> {
    let registry = super::registry(g)?;
    let providers = super::select(&registry, names)?;
    let engine = Engine::new()?;
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
        output::print_machine(&serde_json::Value::Object(value));
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
