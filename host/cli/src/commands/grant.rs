//! `cpi grant`, `cpi revoke`, `cpi grants`: the one review and approval verb for every provider
//! that is not built in (JSON and component providers alike), and the list of approvals.

use std::process::ExitCode;

use cpi::escape;
use cpi::grants::{Grant, GrantStore};
use cpi::policy::{Capabilities, CommandRule, HttpRule};
use cpi::{Error, Provider, Result};
use serde_json::json;

use super::registry;
use super::review::{self, Consent};
use crate::cli::Global;
use crate::output::{self, outln};

/// The arguments of `cpi grant`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Provider names.
    #[arg(required = true, value_name = "PROVIDER")]
    pub providers: Vec<String>,
    /// Approve without asking (for scripts): everything the provider asks for.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Approve without asking only if what the provider asks for has exactly this
    /// capability digest (shown by the review), e.g. in CI: growth is then refused.
    #[arg(long, value_name = "sha256:HEX", conflicts_with = "yes")]
    pub approve: Option<String>,
    /// Grant everything the component requests.
    #[arg(long)]
    pub all: bool,
    /// Grant one requested command pattern, e.g. 'cloudco-cli worker -**' (repeatable).
    #[arg(long = "run", value_name = "PATTERN")]
    pub run: Vec<String>,
    /// Grant one requested HTTP origin, e.g. https://api.example.com:443 (repeatable).
    #[arg(long = "net", value_name = "URL")]
    pub net: Vec<String>,
    /// Pass this environment variable to the commands it runs (repeatable; never LD_*).
    #[arg(long = "env", value_name = "NAME")]
    pub env: Vec<String>,
}

/// Reviews and approves providers.
pub fn exec(g: &Global, args: Args) -> Result<ExitCode> {
    let choice = Choice {
        yes: args.yes,
        approve: args.approve.as_deref(),
        all: args.all,
        run: &args.run,
        net: &args.net,
        env: &args.env,
        nested: false,
    };
    grant(g, &args.providers, &choice)
}

/// The approval store (`$XDG_CONFIG_HOME/cpi/grants`).
pub fn store() -> Result<GrantStore> {
    GrantStore::default_store()
        .ok_or_else(|| Error::internal("no user config directory for grants"))
}

/// What `cpi grant` was asked to approve.
pub struct Choice<'a> {
    /// `--yes`: approve without asking.
    pub yes: bool,
    /// `--approve sha256:<digest>`: approve without asking only that exact capability set.
    pub approve: Option<&'a str>,
    /// `--all`: grant a component everything it requests.
    pub all: bool,
    /// `--run`: one requested command pattern.
    pub run: &'a [String],
    /// `--net`: one requested origin.
    pub net: &'a [String],
    /// `--env`: variables passed to its commands.
    pub env: &'a [String],
    /// Called by `cpi install`/`cpi update`: they print the machine summary, so the review
    /// goes to stderr when stdout is JSON.
    pub nested: bool,
}

/// Prints a review line where a person reads it: stdout for tables, stderr when stdout is
/// JSON for another command.
fn say(to_stderr: bool, line: &str) {
    if to_stderr {
        eprintln!("{line}");
    } else {
        outln!("{line}");
    }
}

/// `cpi grant NAME...`: review each provider and approve it.
fn grant(g: &Global, names: &[String], choice: &Choice<'_>) -> Result<ExitCode> {
    let registry = registry(g)?;
    for name in names {
        let provider = registry.get(name)?;
        if provider.is_builtin() {
            if !g.json {
                outln!("{name} is built into cpi: it needs no approval");
            }
            continue;
        }
        match provider.component {
            None => {
                grant_json(g, provider, choice)?;
            }
            Some(_) => {
                grant_component(g, provider, choice)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The values a provider's parameters have now (config, environment, defaults), for showing
/// which base URL a configured origin is.
fn current_values(g: &Global, provider: &Provider) -> cpi::template::Values {
    let inputs = cpi::params::Inputs {
        cli: Default::default(),
        config: super::config(g)
            .and_then(|c| c.provider(&provider.name))
            .unwrap_or_default(),
        use_env: true,
        ..Default::default()
    };
    let mut values = cpi::template::Values::new();
    for action in provider.actions.values() {
        for (k, v) in cpi::params::resolve(provider, action, &inputs).values {
            values.entry(k).or_insert(v);
        }
    }
    values
}

/// Reviews and approves a JSON provider: its derived request, pinned to its file and path.
/// Whether it is approved afterwards.
/// Where a JSON provider's approval stands: approved, not approved, approved at another
/// path, or changed since.
fn approval_status(existing: Option<&Grant>, path: &str, current: bool) -> String {
    match existing {
        _ if current => "approved".to_string(),
        None => "not approved".to_string(),
        Some(old) if old.path != path => format!(
            "not approved here (approved as {})",
            escape::line(&old.path)
        ),
        Some(_) => "CHANGED since it was approved: the approval no longer applies".into(),
    }
}

/// Reviews a JSON provider and approves it when asked to; whether it is approved afterwards.
pub fn grant_json(g: &Global, provider: &Provider, choice: &Choice<'_>) -> Result<bool> {
    let name = &provider.name;
    let store = store()?;
    let existing = store.load(name)?;
    let proposed = cpi::approval::approve_json(provider, choice.env)?;
    let request = proposed.request.clone().unwrap_or_default();
    let current = existing.as_ref().is_some_and(|e| {
        cpi::approval::check_pins(e, provider).is_ok() && e.kind == "json" && e.env == proposed.env
    });
    let grew: Vec<String> = match existing.as_ref().and_then(|e| e.request.as_ref()) {
        Some(old) if !current => request.growth_since(old),
        _ => Vec::new(),
    };
    if g.json && !choice.yes && choice.approve.is_none() && !choice.nested {
        output::print_machine(
            g,
            &json!({"provider": name, "kind": "json",
            "path": proposed.path, "sha256": provider.sha256, "approved": current,
            "request": request, "grew": grew,
            "capabilities_sha256": proposed.capabilities_sha256}),
        );
        return Ok(current);
    }
    let err_out = g.json;
    let say = |line: &str| say(err_out, line);
    if !g.json || choice.nested {
        say(&format!("{}: JSON provider", escape::line(name)));
        say(&format!("  file    {}", escape::line(&proposed.path)));
        say(&format!("  sha256  {}", provider.sha256));
        say(&format!(
            "  capabilities  {}",
            review::shown_digest(&proposed.capabilities_sha256)
        ));
        let status = approval_status(existing.as_ref(), &proposed.path, current);
        say(&format!("  status  {status}"));
        if !grew.is_empty() {
            say("What it asks for beyond what was approved:");
            for line in &grew {
                say(&format!("  {}", escape::line(line)));
            }
        }
        for line in review::lines(provider, &request, &current_values(g, provider)) {
            say(&line);
        }
    }
    if current && !choice.yes {
        return Ok(true);
    }
    let asked = review::ask(
        Consent {
            yes: choice.yes || choice.all,
            approve: choice.approve,
        },
        name,
        request.runs_arbitrary_code(),
        &proposed.capabilities_sha256,
    );
    if let Err(err) = asked {
        if existing.is_none() && !choice.yes && choice.approve.is_none() && !stdin_is_terminal() {
            if choice.nested {
                // `cpi install`/`update` say themselves what was not done and how.
                return Ok(false);
            }
            // Showing is not approving: say how to approve, without failing a look.
            say(&format!(
                "not approved: run `cpi grant {} --yes` to approve it",
                escape::line(name)
            ));
            return Ok(false);
        }
        return Err(err);
    }
    let path = store.save(&proposed)?;
    if g.json && !choice.nested {
        output::print_machine(
            g,
            &json!({"provider": name, "approved": true,
            "sha256": provider.sha256, "capabilities_sha256": proposed.capabilities_sha256}),
        );
    } else {
        say(&format!(
            "approved {} (pinned to sha256 {} of {}), saved in {}",
            escape::line(name),
            &provider.sha256[..12],
            escape::line(&proposed.path),
            path.display()
        ));
    }
    Ok(true)
}

fn stdin_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// A component's grant widened by the chosen rules and environment variables: the one in
/// force (unless stale) or a new one, pinned to the component and the provider's JSON file.
fn widened_grant(
    previous: Option<Grant>,
    provider: &Provider,
    component_sha256: &str,
    chosen: &Capabilities,
    env: &[String],
) -> Result<Grant> {
    let mut grant = previous.unwrap_or_else(|| Grant {
        provider: provider.name.clone(),
        kind: "component".into(),
        component_sha256: component_sha256.to_string(),
        ..Grant::default()
    });
    grant.kind = "component".into();
    grant.path = cpi::approval::canonical(&provider.source);
    grant.json_sha256 = (!provider.sha256.is_empty()).then(|| provider.sha256.clone());
    grant.capabilities.extend(chosen);
    for var in env {
        if !grant.env.contains(var) {
            grant.env.push(var.clone());
        }
    }
    cpi::grants::check_env_names(&grant.env)?;
    Ok(grant)
}

/// Reviews and grants a component provider: the rules its manifest requests (all with
/// `--yes`/`--all`, or some with `--run`/`--net`), pinned to its component and its JSON file.
/// Whether it is granted afterwards.
pub fn grant_component(g: &Global, provider: &Provider, choice: &Choice<'_>) -> Result<bool> {
    let name = provider.name.as_str();
    let component = super::load_component(provider)?;
    let manifest = component.manifest();
    let store = store()?;
    let existing = store.load(name)?;
    let stale = existing.as_ref().is_some_and(|e| {
        e.component_sha256 != component.sha256() || cpi::approval::check_pins(e, provider).is_err()
    });
    let digest = component_digest(&manifest.requested);
    let mut chosen = Capabilities::default();
    if let Some(given) = choice.approve {
        let consent = Consent {
            yes: false,
            approve: Some(given),
        };
        review::ask(consent, name, false, &digest)?;
        chosen.extend(&manifest.requested);
    }
    if choice.all || choice.yes {
        chosen.extend(&manifest.requested);
    }
    for pattern in choice.run {
        chosen.commands.push(CommandRule::parse(pattern)?);
    }
    for origin in choice.net {
        chosen.http.push(HttpRule::parse(origin)?);
    }
    let choosing = choice.all || choice.yes || !chosen.is_empty() || !choice.env.is_empty();
    if !choosing && !g.json && stdin_is_terminal() {
        show_component(provider, &component, &Capabilities::default(), stale);
        review::ask(
            Consent::default(),
            name,
            !manifest.requested.commands.is_empty(),
            &digest,
        )?;
        chosen.extend(&manifest.requested);
    }
    if choosing || !chosen.is_empty() {
        chosen.check_within(&manifest.requested)?;
        let previous = existing.filter(|_| !stale);
        let grant = widened_grant(previous, provider, component.sha256(), &chosen, choice.env)?;
        let path = store.save(&grant)?;
        if !g.json {
            outln!(
                "granted to {} (pinned to sha256 {}), saved in {}",
                escape::line(name),
                &component.sha256()[..12],
                escape::line(&path.display().to_string())
            );
        }
    }
    let granted = store.load(name)?.filter(|gr| {
        gr.component_sha256 == component.sha256() && cpi::approval::check_pins(gr, provider).is_ok()
    });
    if choice.nested {
        return Ok(granted.is_some());
    }
    let caps = granted
        .as_ref()
        .map(|gr| gr.capabilities.clone())
        .unwrap_or_default();
    if g.json {
        output::print_machine(
            g,
            &json!({"provider": name, "component": component.path().display().to_string(),
                   "sha256": component.sha256(), "stale_grant": stale && !choosing,
                   "capabilities_sha256": digest,
                   "requested": manifest.requested, "granted": caps,
                   "requested_env": manifest.env, "parameters": manifest.parameters,
                   "env": granted.as_ref().map(|gr| gr.env.clone()).unwrap_or_default()}),
        );
        return Ok(granted.is_some());
    }
    show_component(provider, &component, &caps, stale && !choosing);
    let env = granted
        .as_ref()
        .map(|gr| gr.env.clone())
        .unwrap_or_default();
    print_declared(
        &json!(manifest.env),
        &json!(manifest.parameters),
        Some(&env),
    );
    Ok(granted.is_some())
}

/// The capability digest of what a component requests (what `--approve` names).
fn component_digest(requested: &Capabilities) -> String {
    cpi::request::sha256(&serde_json::to_vec(requested).expect("capabilities serialize"))
}

/// The requested-versus-granted table of a component, every manifest string escaped.
fn show_component(
    provider: &Provider,
    component: &cpi_sandbox::Component,
    caps: &Capabilities,
    stale: bool,
) {
    let manifest = component.manifest();
    outln!(
        "{}: component {} ({} {}), sha256 {}",
        escape::line(&provider.name),
        escape::line(&component.path().display().to_string()),
        escape::line(&manifest.name),
        escape::line(&manifest.version),
        component.sha256()
    );
    outln!(
        "  capabilities  {}",
        review::shown_digest(&component_digest(&manifest.requested))
    );
    if stale {
        outln!("  ! the provider changed since it was granted: the old grant no longer applies");
    }
    outln!("  requested                                  granted");
    for rule in &manifest.requested.commands {
        let mark = if caps.commands.contains(rule) {
            "yes"
        } else {
            "no"
        };
        let shell = ["sh", "bash", "dash", "zsh"].contains(&rule.program.as_str());
        let flag = if shell || rule.args.iter().any(|a| a == "**" || a == "-**") {
            "  !! ARBITRARY CODE OR ARGUMENTS"
        } else {
            ""
        };
        outln!(
            "  run  {:<38} {mark}{flag}",
            escape::line(&rule.to_string()).into_owned()
        );
    }
    for rule in &manifest.requested.http {
        let mark = if caps.http.contains(rule) {
            "yes"
        } else {
            "no"
        };
        outln!(
            "  net  {:<38} {mark}",
            escape::line(&rule.to_string()).into_owned()
        );
    }
    if manifest.requested.is_empty() {
        outln!("  (nothing: this component cannot run commands or reach the network)");
    }
}

/// The environment variables and parameters a component declares (`env` and `parameters` of
/// its manifest, as JSON), with whether each variable is granted when `granted` is given;
/// every manifest string escaped.
pub(super) fn print_declared(
    env: &serde_json::Value,
    parameters: &serde_json::Value,
    granted: Option<&[String]>,
) {
    let text = |v: &serde_json::Value| escape::line(v.as_str().unwrap_or("")).into_owned();
    for var in env.as_array().into_iter().flatten() {
        let name = var["name"].as_str().unwrap_or("");
        let mark = match granted {
            Some(env) if env.iter().any(|g| g == name) => " yes",
            Some(_) => " no (grant it with --env)",
            None => "",
        };
        let why = match var.get("description") {
            Some(d) if d.is_string() => format!(" ({})", text(d)),
            _ => String::new(),
        };
        outln!("  env  {}{why}{mark}", escape::line(name));
    }
    let declared = parameters.as_object().filter(|p| !p.is_empty());
    if let Some(declared) = declared {
        outln!("  parameters (declared by the component):");
        for (name, decl) in declared {
            let what = match decl.get("description") {
                Some(d) if d.is_string() => format!(": {}", text(d)),
                _ => String::new(),
            };
            outln!("    {} ({}){what}", escape::line(name), text(&decl["type"]));
        }
    }
}
