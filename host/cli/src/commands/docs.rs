//! `cpi docs`: Markdown documentation (§11) generated from provider files.

use std::path::Path;
use std::process::ExitCode;

use cpi::{Error, Provider, Result};
use serde_json::json;

use super::registry;
use crate::cli::Global;
use crate::output::{self, out, outln};

use std::path::PathBuf;
/// The arguments of `cpi docs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Provider names.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub providers: Vec<String>,
    /// Every provider found (JSON files; component-only providers are skipped).
    #[arg(long)]
    pub all: bool,
    /// Write NAME.md files (and an index, README.md, with --all) into DIR.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Writes Markdown documentation for providers.
pub fn exec(g: &Global, args: Args) -> Result<ExitCode> {
    write_docs(g, &args.providers, args.all, args.out.as_deref())
}

fn write_docs(g: &Global, names: &[String], all: bool, out: Option<&Path>) -> Result<ExitCode> {
    let registry = registry(g)?;
    let mut providers: Vec<&Provider> = super::select(&registry, if all { &[] } else { names })?;
    if all {
        // A standalone component carries its definition inside; there is no file to document.
        providers.retain(|p| !(p.component.is_some() && p.actions.is_empty()));
    }
    let engine = super::default_engine()?;
    let mut pages = Vec::new();
    for p in &providers {
        if p.actions.is_empty() && p.component.is_some() {
            return Err(Error::validation(format!(
                "{} is a component provider whose actions live in the component; document its provider JSON instead",
                p.name
            )));
        }
        pages.push((
            format!("{}.md", p.name),
            cpi_authoring::docs::markdown(&engine, p)?,
        ));
    }
    let Some(dir) = out else {
        let text: Vec<&str> = pages.iter().map(|(_, md)| md.as_str()).collect();
        out!("{}", text.join("\n---\n\n"));
        return Ok(ExitCode::SUCCESS);
    };
    if all {
        pages.push((
            "README.md".to_string(),
            cpi_authoring::docs::index(&providers),
        ));
    }
    let written: Vec<String> = cpi_authoring::docs::write_pages(dir, &pages)?
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    if g.json {
        output::print_machine(g, &json!({"written": written}));
    } else {
        for path in &written {
            outln!("wrote {path}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
