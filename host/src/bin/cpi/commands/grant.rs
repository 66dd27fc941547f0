//! `cpi grant`, `cpi revoke`, `cpi grants`: what component providers may do.

use std::process::ExitCode;

use cpi::escape::line;
use cpi::grants::{Grant, GrantStore};
use cpi::policy::{Capabilities, CommandRule, HttpRule};
use cpi::{Engine, Error, Result};
use serde_json::json;

use super::{registry, runtime};
use crate::cli::Global;
use crate::output::{self, outln};

fn store() -> Result<GrantStore> {
    GrantStore::default_store()
        .ok_or_else(|| Error::internal("no user config directory for grants"))
}

pub fn grant(
    g: &Global,
    name: &str,
    all: bool,
    run: &[String],
    net: &[String],
    env: &[String],
) -> Result<ExitCode> {
    let registry = registry(g)?;
    let provider = registry.get(name)?;
    if provider.component.is_none() {
        return Err(Error::validation(format!(
            "provider '{name}' is a JSON provider without a component; it needs no grants"
        )));
    }
    let engine = Engine::new()?;
    let component = runtime()?.block_on(engine.load_component(provider))?;
    let manifest = component.manifest();
    let store = store()?;
    let existing = store.load(name)?;
    let stale = existing
        .as_ref()
        .is_some_and(|e| e.component_sha256 != component.sha256());

    let choosing = all || !run.is_empty() || !net.is_empty() || !env.is_empty();
    if choosing {
        let mut chosen = Capabilities::default();
        if all {
            chosen.extend(&manifest.requested);
        }
        for pattern in run {
            chosen.commands.push(CommandRule::parse(pattern)?);
        }
        for origin in net {
            chosen.http.push(HttpRule::parse(origin)?);
        }
        chosen.check_within(&manifest.requested)?;
        let mut grant = match existing.filter(|_| !stale) {
            Some(previous) => previous,
            None => Grant {
                provider: name.to_string(),
                component_sha256: component.sha256().to_string(),
                ..Grant::default()
            },
        };
        grant.capabilities.extend(&chosen);
        for var in env {
            if !grant.env.contains(var) {
                grant.env.push(var.clone());
            }
        }
        cpi::grants::check_env_names(&grant.env)?;
        let path = store.save(&grant)?;
        if !g.json {
            outln!(
                "granted to {} (pinned to sha256 {}), saved in {}",
                line(name),
                &component.sha256()[..12],
                line(&path.display().to_string())
            );
        }
    }
    let granted = store
        .load(name)?
        .filter(|gr| gr.component_sha256 == component.sha256());
    let caps = granted
        .as_ref()
        .map(|gr| gr.capabilities.clone())
        .unwrap_or_default();
    if g.json {
        output::print_machine(
            &json!({"provider": name, "component": component.path().display().to_string(),
                   "sha256": component.sha256(), "stale_grant": stale && !choosing,
                   "requested": manifest.requested, "granted": caps,
                   "env": granted.map(|gr| gr.env).unwrap_or_default()}),
        );
        return Ok(ExitCode::SUCCESS);
    }
    // The manifest is the component's own text: escaped, so it cannot redraw this prompt.
    outln!(
        "{}: component {} ({} {}), sha256 {}",
        line(name),
        line(&component.path().display().to_string()),
        line(&manifest.name),
        line(&manifest.version),
        component.sha256()
    );
    if stale && !choosing {
        outln!("  ! the component changed since it was granted: the old grant no longer applies");
    }
    outln!("  requested                                  granted");
    for rule in &manifest.requested.commands {
        let mark = if caps.commands.contains(rule) {
            "yes"
        } else {
            "no"
        };
        outln!("  run  {:<38} {mark}", line(&rule.to_string()));
    }
    for rule in &manifest.requested.http {
        let mark = if caps.http.contains(rule) {
            "yes"
        } else {
            "no"
        };
        outln!("  net  {:<38} {mark}", line(&rule.to_string()));
    }
    if manifest.requested.is_empty() {
        outln!("  (nothing: this component cannot run commands or reach the network)");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn revoke(g: &Global, name: &str) -> Result<ExitCode> {
    let removed = store()?.remove(name)?;
    if g.json {
        output::print_machine(&json!({"provider": name, "revoked": removed}));
    } else if removed {
        outln!("revoked every grant of {}", line(name));
    } else {
        outln!("{} had no grants", line(name));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn list(g: &Global) -> Result<ExitCode> {
    let grants = store()?.list()?;
    if g.json {
        output::print_machine(&serde_json::to_value(&grants).expect("grants serialize"));
        return Ok(ExitCode::SUCCESS);
    }
    if grants.is_empty() {
        outln!("no grants");
    }
    for grant in grants {
        // Grant files hold rules copied from manifests: escaped like the manifests.
        let sha: String = grant.component_sha256.chars().take(12).collect();
        outln!("{} (sha256 {})", line(&grant.provider), line(&sha));
        for rule in &grant.capabilities.commands {
            outln!("  run  {}", line(&rule.to_string()));
        }
        for rule in &grant.capabilities.http {
            outln!("  net  {}", line(&rule.to_string()));
        }
        for var in &grant.env {
            outln!("  env  {}", line(var));
        }
    }
    Ok(ExitCode::SUCCESS)
}
