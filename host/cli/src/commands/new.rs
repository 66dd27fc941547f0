//! `cpi new`: scaffold a provider file (with a fixture) or a component project.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cpi::{Error, Result};
use cpi_authoring::scaffold::{self, Kind, Language};
use serde_json::json;

use crate::cli::{Global, NewComponent, NewType};
use crate::output::{self, outln};

/// The arguments of `cpi new`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The provider's name (lowercase letters, digits, '-' and '_').
    pub name: String,
    /// What the actions do: run a CLI program or call an HTTP API.
    #[arg(long = "type", value_enum, default_value = "command")]
    pub kind: NewType,
    /// Write a component project in this language instead of a provider file.
    #[arg(long, value_enum, value_name = "LANG")]
    pub component: Option<NewComponent>,
    /// Where to write [default: ./providers, or . with --component].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The cpi guest SDK (guest-sdk/ of a cpi checkout) for --component rust [default:
    /// found next to the output directory or the cpi binary].
    #[arg(long, value_name = "DIR")]
    pub sdk: Option<PathBuf>,
}

/// Writes a new provider (or component project).
pub fn exec(g: &Global, args: Args) -> Result<ExitCode> {
    scaffold_new(g, &args.name, args.kind, args.component, args.dir, args.sdk)
}

fn scaffold_new(
    g: &Global,
    name: &str,
    kind: NewType,
    component: Option<NewComponent>,
    dir: Option<PathBuf>,
    sdk: Option<PathBuf>,
) -> Result<ExitCode> {
    let (files, dir) = match component {
        None => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("providers"));
            let kind = match kind {
                NewType::Command => Kind::Command,
                NewType::Endpoint => Kind::Endpoint,
            };
            // `$schema` for editors, when the provider lands in a tree that has the schema.
            let schema = scaffold::find_upwards(&dir, "schema/provider.schema.json")
                .and_then(|schema| {
                    Some(scaffold::relative_path(
                        &std::path::absolute(&dir).ok()?,
                        &schema,
                    ))
                })
                .map(|p| p.to_string_lossy().into_owned());
            (scaffold::provider(name, kind, schema.as_deref())?, dir)
        }
        Some(language) => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("."));
            let language = match language {
                NewComponent::Rust => Language::Rust,
                NewComponent::Python => Language::Python,
                NewComponent::Js => Language::JavaScript,
            };
            let sdk = match language {
                Language::Rust => Some(sdk_path(&dir.join(name), sdk)?),
                _ => None,
            };
            (scaffold::component(name, language, sdk.as_deref())?, dir)
        }
    };
    let written = scaffold::write(&dir, &files)?;
    let shown: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    if g.json {
        output::print_machine(g, &json!({"name": name, "written": shown}));
        return Ok(ExitCode::SUCCESS);
    }
    for path in &shown {
        outln!("created {path}");
    }
    let next = match component {
        None => {
            let pd = format!("--provider-dir {}", dir.display());
            format!(
                "next: edit {}, then\n  cpi validate {}\n  cpi {pd} test {name}\n  cpi {pd} docs {name}",
                shown[0], shown[0],
            )
        }
        Some(_) => format!(
            "next: see {}",
            written
                .iter()
                .find(|p| p.ends_with("README.md"))
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
    };
    outln!("{next}");
    Ok(ExitCode::SUCCESS)
}

/// The guest SDK as the project's Cargo.toml names it: `--sdk`, or `guest-sdk/` of a cpi
/// checkout above the project or the running binary; relative to the project when possible.
fn sdk_path(project: &Path, given: Option<PathBuf>) -> Result<String> {
    let found = match given {
        Some(path) => {
            if !path.join("Cargo.toml").is_file() {
                return Err(Error::validation(format!(
                    "--sdk {}: no Cargo.toml there (expected the guest-sdk/ directory of a cpi checkout)",
                    path.display()
                )));
            }
            path
        }
        None => {
            let exe_dir = std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(Path::to_path_buf));
            [Some(project.to_path_buf()), exe_dir]
                .into_iter()
                .flatten()
                .find_map(|start| scaffold::find_upwards(&start, "guest-sdk/Cargo.toml"))
                .and_then(|toml| toml.parent().map(Path::to_path_buf))
                .ok_or_else(|| {
                    Error::validation(
                        "cannot find the cpi guest SDK: pass --sdk PATH/TO/cpi/guest-sdk",
                    )
                })?
        }
    };
    let absolute = std::path::absolute(&found)
        .map_err(|e| Error::internal(format!("{}: {e}", found.display())))?;
    let project = std::path::absolute(project)
        .map_err(|e| Error::internal(format!("{}: {e}", project.display())))?;
    let shown = scaffold::reference(&project, &absolute);
    Ok(shown.to_string_lossy().into_owned())
}
