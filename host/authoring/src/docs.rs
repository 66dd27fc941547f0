//! Provider documentation (§11), generated from the provider file (`cpi docs`).
//!
//! Everything in the Markdown comes from the file and its fixtures, so the documentation can
//! be regenerated whenever the file changes and checked for staleness in CI:
//!
//! - the overview, prerequisites (the programs commands run, the base URLs endpoints call),
//!   setup and authentication (secret parameters, the config file section);
//! - a parameter reference: every parameter, its default and the actions using it;
//! - per action, in the §11.2 format: description, parameters (required or optional, with
//!   defaults), returned fields (from the parse rules), possible errors (the §10.1
//!   categories the action's target type can produce), an example request (the dry-run plan
//!   of example parameters) and an example response (the fixture's expected result when the
//!   provider ships one for the action, an illustrative shape otherwise).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use crate::fixture;
use crate::validate::REQUIRED_METHODS;
use cpi::engine::{self, Engine};
use cpi::error::{Error, ErrorKind, Result};
use cpi::params::{self, Inputs};
use cpi::provider::{Action, ParamDecl, Pattern, Provider, ProviderKind, RuleKind, Target};
use cpi::secret::{self, REDACTED};
use cpi::status::{AUTH_STATUSES, Vocabulary, WORKER_STATUSES};
use cpi::template::{self, BodyKind};

/// The command that regenerates the repository's provider docs.
pub const REGENERATE: &str = "cpi docs --all --out docs/providers";

/// Descriptions of the standard's methods (§2.1, §3), used when an action has none.
const STANDARD_METHODS: &[(&str, &str)] = &[
    (
        "test_install",
        "Verifies that the provider's CLI tools are installed and accessible.",
    ),
    ("list_workers", "Lists all workers (virtual machines)."),
    ("create_worker", "Creates a new worker."),
    ("delete_worker", "Permanently removes a worker."),
    ("get_worker", "Retrieves details about a specific worker."),
    ("start_worker", "Powers on a stopped worker."),
    ("stop_worker", "Powers off a running worker."),
    ("reboot_worker", "Restarts a running worker."),
    ("resize_worker", "Changes a worker's size/type."),
    ("rename_worker", "Changes a worker's name."),
    ("update_worker", "Updates worker metadata or tags."),
    ("has_worker", "Checks if a worker exists."),
    ("suspend_worker", "Suspends a worker (pause state)."),
    ("resume_worker", "Resumes a suspended worker."),
    ("list_disks", "Lists storage volumes."),
    ("create_disk", "Creates a new storage volume."),
    ("delete_disk", "Removes a storage volume."),
    ("attach_disk", "Attaches a volume to a worker."),
    ("detach_disk", "Detaches a volume from a worker."),
    ("resize_disk", "Changes a volume's size."),
    ("has_disk", "Checks if a disk exists."),
    ("list_images", "Lists available OS images."),
    ("create_snapshot", "Creates a worker snapshot."),
    ("list_snapshots", "Lists available snapshots."),
    ("delete_snapshot", "Removes a snapshot."),
    ("has_snapshot", "Checks if a snapshot exists."),
    ("list_networks", "Lists available networks."),
    ("create_network", "Creates a new network."),
    ("delete_network", "Removes a network."),
    ("list_subnets", "Lists subnets within a network."),
    ("create_subnet", "Creates a new subnet."),
    ("delete_subnet", "Removes a subnet."),
    ("list_firewall_rules", "Lists firewall rules."),
    ("create_firewall_rule", "Creates a new firewall rule."),
    ("delete_firewall_rule", "Removes a firewall rule."),
    ("configure_auth", "Configures authentication credentials."),
    ("test_auth", "Tests if current authentication is valid."),
    (
        "get_account_info",
        "Retrieves information about the current account.",
    ),
    ("list_credentials", "Lists available credentials."),
    ("create_credential", "Creates a new credential."),
    ("delete_credential", "Removes a credential."),
    ("rotate_credential", "Rotates/regenerates a credential."),
    (
        "set_default_project",
        "Sets the default project or organization.",
    ),
    (
        "list_projects",
        "Lists available projects or organizations.",
    ),
    ("initialize_cli", "Sets up the CLI environment."),
    ("setup_environment", "Configures environment variables."),
    ("update_cli", "Updates the CLI to the latest version."),
    (
        "validate_prerequisites",
        "Checks if all prerequisites are met.",
    ),
    ("install_plugin", "Installs a CLI plugin."),
    ("list_regions", "Lists available regions/locations."),
    ("list_zones", "Lists zones within a region."),
    ("list_worker_types", "Lists available worker types/sizes."),
    ("get_pricing", "Retrieves pricing information."),
    ("get_quota", "Retrieves account resource quotas."),
];

/// Descriptions of the standard's parameter names (§7) and common ones.
const STANDARD_PARAMS: &[(&str, &str)] = &[
    ("worker_id", "Identifier for a worker"),
    ("name", "Resource name"),
    ("region", "Geographic region"),
    ("zone", "Availability zone within a region"),
    ("worker_type", "Type/size of worker"),
    ("image", "OS image identifier"),
    ("disk_id", "Identifier for a disk/volume"),
    ("disk_type", "Type of storage (SSD, HDD, etc.)"),
    ("size_gb", "Size in gigabytes"),
    ("network", "Network identifier"),
    ("subnet", "Subnet identifier"),
    ("ip_address", "IP address"),
    ("api_url", "Base URL of the API"),
    ("api_key", "API key"),
    ("api_token", "API token"),
    ("token", "Access token"),
    ("password", "Password"),
    ("project_id", "Project identifier"),
    (
        "verify_ssl",
        "Check the server's TLS certificate (`false` accepts any; prefer `ca_cert_file`)",
    ),
    (
        "ca_cert_file",
        "PEM file of extra trusted roots, for a server with its own CA",
    ),
];

/// Descriptions of common result fields.
const STANDARD_FIELDS: &[(&str, &str)] = &[
    ("id", "Identifier of the resource"),
    ("name", "Name of the resource"),
    ("type", "Type/size"),
    ("worker_type", "Type/size of the worker"),
    (
        "ip_address",
        "IP address (may be empty until the worker is running)",
    ),
    ("region", "Region"),
    ("image", "OS image"),
    ("version", "Version"),
    ("hostname", "Host name"),
    ("success", "Whether the platform confirmed the operation"),
    ("exists", "Whether the resource exists"),
];

/// The Markdown documentation of one provider.
pub fn markdown(engine: &Engine, provider: &Provider) -> Result<String> {
    let mut out = String::new();
    let doc = Doc { engine, provider };
    doc.header(&mut out);
    doc.prerequisites(&mut out);
    doc.setup(&mut out);
    doc.parameters(&mut out);
    doc.errors(&mut out);
    for (name, action) in &provider.actions {
        doc.action(&mut out, name, action)?;
    }
    Ok(out)
}

/// An index of documented providers (`README.md` beside their pages).
pub fn index(providers: &[&Provider]) -> String {
    let mut out = String::from("# Provider documentation\n\n");
    let _ = writeln!(
        out,
        "Generated by `cpi docs` from the provider files; do not edit: run `{REGENERATE}`.\n"
    );
    out.push_str("| Provider | Type | Actions | Description |\n|---|---|---|---|\n");
    for p in providers {
        let description = p
            .description
            .as_deref()
            .map(first_sentence)
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| [{name}]({name}.md) | {} | {} | {} |",
            p.kind,
            p.actions.len(),
            cell(&description),
            name = p.name
        );
    }
    out
}

/// Writes `(file name, text)` pages into `dir` (created if missing) and returns their paths.
///
/// Every page lands directly in `dir`: a name that is not one plain file name (`../x.md`,
/// `/abs.md`, `a/b.md`) is refused, and each page is written to a new temporary file in `dir`
/// then renamed over its name, so a symlink planted at that name is replaced, never followed.
pub fn write_pages(dir: &Path, pages: &[(String, String)]) -> Result<Vec<PathBuf>> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::internal(format!("cannot create {}: {e}", dir.display())))?;
    let mut written = Vec::new();
    for (file, text) in pages {
        let plain = Path::new(file)
            .file_name()
            .is_some_and(|n| n == file.as_str())
            && !file.starts_with('.');
        if !plain {
            return Err(Error::validation(format!(
                "refusing to write {} outside {}",
                cpi::escape::line(file),
                dir.display()
            )));
        }
        let path = dir.join(file);
        let io =
            |e: std::io::Error| Error::internal(format!("cannot write {}: {e}", path.display()));
        let mut tmp = tempfile::Builder::new()
            .prefix(".cpi-docs-")
            .tempfile_in(dir)
            .map_err(io)?;
        tmp.write_all(text.as_bytes()).map_err(io)?;
        // Pages are for publishing: readable by all, as `std::fs::write` would leave them.
        let readable =
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o644);
        tmp.as_file().set_permissions(readable).map_err(io)?;
        tmp.persist(&path).map_err(|e| io(e.error))?;
        written.push(path);
    }
    Ok(written)
}

struct Doc<'a> {
    engine: &'a Engine,
    provider: &'a Provider,
}

/// One parameter of one action, as documented.
struct Param {
    name: String,
    default: Option<Value>,
    /// Produced by a `pre_exec` step of the action.
    from_step: bool,
    /// Goes into a JSON body outside quotes, so its value must be JSON.
    json: bool,
    /// The declared rules in a few words, when the provider declares the parameter.
    accepts: Option<String>,
    /// The declared description.
    description: Option<String>,
    /// The declared type (`string` without a declaration).
    kind: String,
}

impl Doc<'_> {
    fn file_name(&self) -> String {
        self.provider
            .source
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{}.json", self.provider.name))
    }

    fn header(&self, out: &mut String) {
        let p = self.provider;
        let _ = writeln!(out, "# {}\n", p.name);
        let what = match p.kind {
            ProviderKind::Command => "each action runs a command-line program, without a shell",
            ProviderKind::Endpoint => "each action sends an HTTP request to the platform's API",
        };
        match &p.description {
            Some(d) => {
                let _ = writeln!(out, "{}\n", d.trim());
            }
            None => {
                let _ = writeln!(
                    out,
                    "`{}` is {} provider for cpi: {what}.\n",
                    p.name,
                    match p.kind {
                        ProviderKind::Command => "a command-based",
                        ProviderKind::Endpoint => "an endpoint-based",
                    }
                );
            }
        }
        let _ = writeln!(
            out,
            "<!-- Generated by `cpi docs {}` from {}; do not edit: run `{REGENERATE}`. -->\n",
            p.name,
            self.file_name()
        );
        out.push_str("## Overview\n\n");
        let _ = writeln!(out, "- **Type:** {} ({what}).", p.kind);
        let missing: Vec<&str> = REQUIRED_METHODS
            .iter()
            .copied()
            .filter(|m| !p.actions.contains_key(*m))
            .collect();
        if missing.is_empty() {
            out.push_str("- **Standard methods:** all seven required methods of §2.1.\n");
        } else {
            let _ = writeln!(
                out,
                "- **Standard methods:** missing {} (§2.1).",
                code_list(&missing)
            );
        }
        if let Some(component) = &p.component {
            let _ = writeln!(
                out,
                "- **Component:** `{component}` overrides parsing or whole actions where its manifest says so (`cpi show {}` lists them).",
                p.name
            );
        }
        if !p.status_map.is_empty() {
            let pairs: Vec<String> = p
                .status_map
                .iter()
                .map(|(raw, standard)| format!("`{raw}` → `{standard}`"))
                .collect();
            let _ = writeln!(
                out,
                "- **Status mapping:** {} (before the built-in table).",
                pairs.join(", ")
            );
        }
        out.push('\n');
        if !p.actions.is_empty() {
            out.push_str("| Action | Description | Target |\n|---|---|---|\n");
            for (name, action) in &p.actions {
                let _ = writeln!(
                    out,
                    "| [`{name}`](#{}) | {} | {} |",
                    anchor(name),
                    cell(&first_sentence(&description(name, action))),
                    cell(&target_summary(&action.target))
                );
            }
            out.push('\n');
        }
    }

    fn prerequisites(&self, out: &mut String) {
        let p = self.provider;
        out.push_str("## Prerequisites\n\n");
        let mut programs: Vec<String> = Vec::new();
        let mut bases: IndexMap<String, Option<Value>> = IndexMap::new();
        for action in p.actions.values() {
            for step in steps(action) {
                match &step.target {
                    Target::Command(c) => {
                        if let Some(program) = c.command.split_whitespace().next()
                            && !programs.iter().any(|known| known == program)
                        {
                            programs.push(program.to_string());
                        }
                    }
                    Target::Endpoint(e) => {
                        let base = match template::placeholders(&e.url).next() {
                            Some(first) if e.url.starts_with(&format!("{{{first}}}")) => {
                                format!("{{{first}}}")
                            }
                            _ => e.url.split('/').take(3).collect::<Vec<_>>().join("/"),
                        };
                        let default = base
                            .strip_prefix('{')
                            .and_then(|b| b.strip_suffix('}'))
                            .and_then(|name| p.default_settings.get(name).cloned());
                        bases.entry(base).or_insert(default);
                    }
                }
            }
        }
        if !programs.is_empty() {
            let _ = writeln!(
                out,
                "- Installed and on `PATH`: {}.{}",
                code_list(&programs),
                if p.actions.contains_key("test_install") {
                    format!(" `cpi run {} test_install` checks.", p.name)
                } else {
                    String::new()
                }
            );
        }
        for (base, default) in &bases {
            let default = match default {
                Some(v) => format!(" (default `{}`)", display_value(v)),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "- Network access to the API at `{base}`{default}.{}",
                if base.starts_with('{') {
                    format!(
                        " Set it with `-p {}=URL` or the config file.",
                        base.trim_matches(['{', '}'])
                    )
                } else {
                    String::new()
                }
            );
        }
        if programs.is_empty() && bases.is_empty() {
            out.push_str("- Nothing beyond cpi itself.\n");
        }
        out.push('\n');
    }

    fn setup(&self, out: &mut String) {
        let p = self.provider;
        out.push_str("## Setup and authentication\n\n");
        out.push_str(
            "A parameter takes its value from, highest precedence first: `-p NAME=VALUE`, the \
             environment (`CPI_PARAM_NAME`, upper-cased), the config file \
             (`$XDG_CONFIG_HOME/cpi/cpi.toml` or `--config`), the action's defaults, the \
             provider's defaults.\n\n",
        );
        let all = self.all_params();
        let secrets: Vec<&String> = all
            .keys()
            .filter(|n| secret::is_secret_name(n, p))
            .collect();
        let to_set: Vec<(&String, &Option<Value>)> = all
            .iter()
            .filter(|(name, (default, _))| {
                secret::is_secret_name(name, p)
                    || name.ends_with("_url")
                    || (default.is_none() && matches!(name.as_str(), "region" | "zone"))
            })
            .map(|(name, (default, _))| (name, default))
            .collect();
        if !to_set.is_empty() {
            let _ = writeln!(
                out,
                "Settings you usually keep in the config file:\n\n```toml\n[providers.{}]",
                toml_key(&p.name)
            );
            for (name, default) in &to_set {
                let value = if secret::is_secret_name(name, p) {
                    "\"…\"".to_string()
                } else {
                    match default {
                        Some(Value::String(s)) if !s.is_empty() => {
                            serde_json::to_string(s).expect("strings serialize")
                        }
                        _ => format!("\"{}\"", example_string(name)),
                    }
                };
                let _ = writeln!(out, "{} = {value}", toml_key(name));
            }
            out.push_str("```\n\n");
        }
        if secrets.is_empty() {
            let _ = writeln!(
                out,
                "No parameter holds a secret: {}\n",
                match p.kind {
                    ProviderKind::Command => "the CLI uses its own login or configuration.",
                    ProviderKind::Endpoint => "the API is reached without a key.",
                }
            );
        } else {
            let _ = writeln!(
                out,
                "Secret parameters: {}. Their values are redacted (`{REDACTED}`) in every output, \
                 log and error; give them with `CPI_PARAM_{}` or the config file rather than in \
                 the provider file.\n",
                code_list(&secrets),
                secrets[0].to_ascii_uppercase()
            );
        }
        let lifecycle: Vec<&str> = engine::LIFECYCLE
            .iter()
            .copied()
            .filter(|a| p.actions.contains_key(*a))
            .collect();
        if !lifecycle.is_empty() {
            let _ = writeln!(
                out,
                "`cpi init {}` runs the §8 lifecycle ({}), each step's fields feeding the next.\n",
                p.name,
                code_list(&lifecycle)
            );
        }
    }

    /// Every parameter any action uses, with its provider-level default and the actions.
    fn all_params(&self) -> IndexMap<String, (Option<Value>, Vec<String>)> {
        let mut all: IndexMap<String, (Option<Value>, Vec<String>)> = IndexMap::new();
        for (name, action) in &self.provider.actions {
            for param in self.action_params(action) {
                if param.from_step {
                    continue;
                }
                let entry = all.entry(param.name.clone()).or_insert_with(|| {
                    (
                        self.provider.default_settings.get(&param.name).cloned(),
                        Vec::new(),
                    )
                });
                entry.1.push(name.clone());
            }
        }
        all
    }

    fn parameters(&self, out: &mut String) {
        let all = self.all_params();
        if all.is_empty() {
            return;
        }
        out.push_str(
            "## Parameters\n\n| Parameter | Default | Used by | Description |\n|---|---|---|---|\n",
        );
        for (name, (default, users)) in &all {
            let default = match default {
                Some(v) => format!("`{}`", self.shown_default(name, v)),
                None => "—".to_string(),
            };
            let users: Vec<String> =
                if users.len() == self.provider.actions.len() && users.len() > 1 {
                    vec!["all actions".to_string()]
                } else {
                    users
                        .iter()
                        .map(|a| format!("[`{a}`](#{})", anchor(a)))
                        .collect()
                };
            let _ = writeln!(
                out,
                "| `{name}` | {} | {} | {} |",
                cell(&default),
                users.join(", "),
                cell(&param_description(name, self.provider))
            );
        }
        if self.provider.kind == cpi::provider::ProviderKind::Endpoint {
            // Read by cpi's HTTP client for every endpoint action, declared or not.
            // (cpi::params::TLS_SETTINGS, with their built-in defaults.)
            for (name, builtin) in [("verify_ssl", "`true`"), ("ca_cert_file", "—")] {
                if !all.contains_key(name) {
                    let default = match self.provider.default_settings.get(name) {
                        Some(v) => format!("`{}`", self.shown_default(name, v)),
                        None => builtin.to_string(),
                    };
                    let _ = writeln!(
                        out,
                        "| `{name}` | {default} | all actions | {} |",
                        cell(&param_description(name, self.provider))
                    );
                }
            }
        }
        out.push('\n');
    }

    fn errors(&self, out: &mut String) {
        out.push_str("## Errors\n\n");
        out.push_str(
            "Errors are reported in the §10.2 format (`{\"error\": {\"code\", \"message\", \
             \"details\"}}` with `--output json`), and each category has its own exit code:\n\n",
        );
        out.push_str("| Category | Exit code | When |\n|---|---|---|\n");
        let http = self.has_http();
        let command = self.has_command();
        let rows: [(ErrorKind, String); 8] = [
            (
                ErrorKind::Validation,
                "a parameter is missing or its value is refused (a placeholder's value must not change the command's words, a URL's segments or the body's JSON)".into(),
            ),
            (ErrorKind::Authentication, either(http, command, "HTTP 401 or 403", "the CLI reports that authentication failed")),
            (ErrorKind::ResourceNotFound, either(http, command, "HTTP 404", "the CLI reports that the resource was not found")),
            (ErrorKind::QuotaExceeded, "the platform's error names a quota or limit".into()),
            (ErrorKind::RateLimit, either(http, command, "HTTP 429 (`details.retry_after` keeps `Retry-After`)", "the CLI reports a rate limit")),
            (ErrorKind::Provider, either(http, command, "HTTP 5xx, or a body the parse rules cannot read", "the command fails otherwise, or its output does not match the parse rules")),
            (ErrorKind::Timeout, "no answer within `--timeout` (default 120 s)".into()),
            (ErrorKind::Internal, "a local I/O problem or a bug in cpi".into()),
        ];
        for (kind, when) in rows {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} |",
                kind.code(),
                kind.exit_code(),
                cell(&when)
            );
        }
        out.push('\n');
        error_rules(out, &self.provider.error_rules, "every action");
    }

    fn has_http(&self) -> bool {
        self.provider
            .actions
            .values()
            .flat_map(steps)
            .any(|s| matches!(s.target, Target::Endpoint(_)))
    }

    fn has_command(&self) -> bool {
        self.provider
            .actions
            .values()
            .flat_map(steps)
            .any(|s| matches!(s.target, Target::Command(_)))
    }

    fn shown_default(&self, name: &str, value: &Value) -> String {
        if secret::is_secret_name(name, self.provider) && value.as_str() != Some("") {
            REDACTED.to_string()
        } else {
            display_value(value)
        }
    }

    /// The parameters an action takes ([`params::action_params`]), minus the fields the
    /// action or a `post_exec` step produces for later steps.
    fn action_params(&self, action: &Action) -> Vec<Param> {
        let json_names = bare_json_placeholders(action);
        params::action_params(self.provider, action)
            .into_iter()
            .filter(|p| matches!(p.produced_by, None | Some(params::Step::PreExec(_))))
            .map(|p| Param {
                from_step: p.produced_by.is_some(),
                json: json_names.contains(&p.name),
                default: p.default.map(|(v, _)| v.clone()),
                accepts: p.decl.map(ParamDecl::summary),
                kind: p.decl.map(|d| d.kind.to_string()).unwrap_or_default(),
                description: p.decl.and_then(|d| d.description.clone()),
                name: p.name,
            })
            .collect()
    }

    fn action(&self, out: &mut String, name: &str, action: &Action) -> Result<()> {
        self.action_intro(out, name, action);
        let params = self.action_params(action);
        self.params_table(out, &params);
        out.push_str("### Returns\n\n");
        let returns = self.returns(name, action)?;
        out.push_str(&returns.text);

        out.push_str("### Errors\n\n");
        for (kind, why) in action_errors(name, action, &params) {
            let _ = writeln!(out, "- {}: {why}", kind.code());
        }
        out.push('\n');
        error_rules(out, &action.error_rules, "this action");
        self.example(out, name, &params);
        self.expected_response(out, name, returns.shape);
        Ok(())
    }

    /// An action's heading and what it does: its target, steps, retries, paging, accepted
    /// exits.
    fn action_intro(&self, out: &mut String, name: &str, action: &Action) {
        let p = self.provider;
        let _ = writeln!(out, "## {name}\n");
        let _ = writeln!(out, "{}\n", description(name, action));
        match &action.target {
            Target::Command(c) => {
                let _ = writeln!(out, "Runs `{}`.", c.command);
                if c.in_vm {
                    out.push_str(" Its target asks to run inside the worker (`in_vm`), which cpi refuses with an `UnsupportedError`.");
                }
            }
            Target::Endpoint(e) => {
                let _ = writeln!(out, "Sends `{} {}`.", e.method.wire_name(), e.url);
            }
        }
        if !action.pre_exec.is_empty() || !action.post_exec.is_empty() {
            let _ = write!(
                out,
                "It runs {} step(s) before and {} after (`pre_exec`/`post_exec`).",
                action.pre_exec.len(),
                action.post_exec.len()
            );
            out.push('\n');
        }
        if engine::is_repeatable(p, name) {
            out.push_str(
                "Safe to repeat: retried on rate limits, timeouts, connection failures and 5xx answers (`--attempts`).\n",
            );
        }
        if let Some(paginate) = &action.paginate {
            let _ = writeln!(
                out,
                "Paged: cpi fetches every page (at most {}) and returns one list; `-p {}=N` fetches page N only.",
                paginate.max_pages.unwrap_or(100),
                paginate.param
            );
        }
        for accept in &action.accept_exit {
            let _ = writeln!(
                out,
                "Exit status {} is an answer, not a failure, when the output matches `{}`.",
                accept.code, accept.when
            );
        }
        out.push('\n');
    }

    /// The `### Parameters` table of an action.
    fn params_table(&self, out: &mut String, params: &[Param]) {
        out.push_str("### Parameters\n\n");
        if params.is_empty() {
            out.push_str("None.\n\n");
            return;
        }
        out.push_str("| Parameter | Type | Required | Description |\n|---|---|---|---|\n");
        for param in params {
            self.param_row(out, param);
        }
        out.push('\n');
    }

    /// One row of the parameters table: name, type, whether it is required, description.
    fn param_row(&self, out: &mut String, param: &Param) {
        let p = self.provider;
        let kind = match &param.default {
            _ if param.json => "JSON",
            _ if param.accepts.is_some() => param.kind.as_str(),
            Some(Value::Bool(_)) => "boolean",
            Some(Value::Number(_)) => "number",
            Some(Value::Array(_)) => "array",
            Some(Value::Object(_)) => "object",
            _ => "string",
        };
        let required = match (&param.default, param.from_step) {
            (_, true) => "No (set by a `pre_exec` step)".to_string(),
            (Some(v), _) => {
                format!("No (default: `{}`)", self.shown_default(&param.name, v))
            }
            (None, _) => "Yes".to_string(),
        };
        let mut description = param
            .description
            .clone()
            .unwrap_or_else(|| param_description(&param.name, p));
        if let Some(accepts) = &param.accepts {
            let sep = match description.chars().last() {
                None => "",
                Some('.') => " ",
                Some(_) => ". ",
            };
            let _ = write!(description, "{sep}Accepts: {accepts}");
        }
        let _ = writeln!(
            out,
            "| {} | {kind} | {} | {} |",
            param.name,
            cell(&required),
            cell(&description)
        );
    }

    /// The `### Example` section: the command line, the request, and what cpi runs.
    fn example(&self, out: &mut String, name: &str, params: &[Param]) {
        let p = self.provider;
        out.push_str("### Example\n\n");
        let example = self.example_params(name, params);
        let mut line = String::new();
        for param in example.keys() {
            if secret::is_secret_name(param, p) {
                let _ = write!(line, "CPI_PARAM_{}=… ", param.to_ascii_uppercase());
            }
        }
        let _ = write!(line, "cpi run {} {name}", p.name);
        for (param, value) in &example {
            if !secret::is_secret_name(param, p) {
                let _ = write!(line, " -p {}", shell_word(&format!("{param}={value}")));
            }
        }
        let _ = writeln!(out, "```sh\n{line}\n```\n");
        let shown: Map<String, Value> = example
            .iter()
            .map(|(k, v)| {
                let v = if secret::is_secret_name(k, p) {
                    Value::from(REDACTED)
                } else {
                    Value::from(v.as_str())
                };
                (k.clone(), v)
            })
            .collect();
        let request = json!({"action": name, "params": shown});
        let _ = writeln!(out, "```json\n{}\n```\n", pretty(&request));
        let inputs = Inputs {
            cli: example.clone(),
            config: Map::new(),
            ..Inputs::default()
        };
        match self.engine.plan(p, name, &inputs) {
            Ok(plan) => {
                let _ = writeln!(
                    out,
                    "What cpi runs (`--dry-run`, defaults filled in, secrets redacted):\n"
                );
                for call in &plan.calls {
                    let mut call = call.clone();
                    if let Some(map) = call.as_object_mut() {
                        map.remove("type");
                    }
                    let _ = writeln!(out, "```json\n{}\n```\n", pretty(&call));
                }
            }
            Err(err) => {
                let _ = writeln!(out, "(No dry run with these values: {}.)\n", err.message());
            }
        }
    }

    /// The `### Expected Response` section: a fixture's expected result, else the shape.
    fn expected_response(&self, out: &mut String, name: &str, shape: Option<Value>) {
        let p = self.provider;
        out.push_str("### Expected Response\n\n");
        match preferred_fixture(p, name).and_then(|(file, f)| Some((file, f.expected?))) {
            Some((file, expected)) => {
                let _ = writeln!(
                    out,
                    "From the fixture `{file}` (checked by `cpi test {}`):\n",
                    p.name
                );
                let _ = writeln!(out, "```json\n{}\n```\n", pretty(&expected));
            }
            None => match shape {
                Some(shape) => {
                    out.push_str("The shape of the result (illustrative values; no fixture ships for this action):\n\n");
                    let _ = writeln!(out, "```json\n{}\n```\n", pretty(&shape));
                }
                None => out.push_str("The platform's output as it is (no parse rules).\n\n"),
            },
        }
    }

    /// The example values for an action's parameters without defaults: a fixture's `params`
    /// when one ships for the action, otherwise values made up from the names.
    fn example_params(&self, name: &str, params: &[Param]) -> IndexMap<String, String> {
        // The shown response's fixture's parameters if it has some, else any fixture's.
        let from_fixture = preferred_fixture(self.provider, name)
            .map(|(_, f)| f)
            .filter(|f| !f.params.is_empty())
            .or_else(|| {
                fixtures_for(self.provider, name)
                    .into_iter()
                    .map(|(_, f)| f)
                    .find(|f| !f.params.is_empty())
            });
        let mut values: IndexMap<String, String> = self
            .made_up_params(params)
            .into_iter()
            .filter(|(name, _)| {
                from_fixture
                    .as_ref()
                    .is_none_or(|f| !f.params.contains_key(name))
            })
            .collect();
        if let Some(f) = from_fixture {
            values.extend(
                f.params
                    .iter()
                    .map(|(k, v)| (k.clone(), params::value_to_param(v))),
            );
        }
        values
    }

    /// An example that fits the parameter's declaration, when the name's usual example does
    /// not: its first enum value, its minimum, `true`.
    fn declared_example(&self, name: &str) -> Option<String> {
        let decl = self.provider.parameters.get(name)?;
        let usual = example_string(name);
        if params::check_value(name, decl, usual, false).is_ok() {
            return None;
        }
        if let Some(first) = decl.choices.as_ref().and_then(|c| c.first()) {
            return Some(params::value_to_param(first));
        }
        match decl.kind {
            cpi::provider::ParamType::Boolean => Some("true".into()),
            cpi::provider::ParamType::Integer | cpi::provider::ParamType::Number => {
                Some(decl.min.unwrap_or(1.0).to_string())
            }
            cpi::provider::ParamType::String => None,
        }
    }

    /// Values made up from the names, for the parameters that have no default.
    fn made_up_params(&self, params: &[Param]) -> IndexMap<String, String> {
        params
            .iter()
            .filter(|p| p.default.is_none() && !p.from_step)
            .map(|p| {
                let value = if p.json {
                    format!("[\"{}\"]", example_string(&p.name))
                } else {
                    self.declared_example(&p.name)
                        .unwrap_or_else(|| example_string(&p.name).to_string())
                };
                (p.name.clone(), value)
            })
            .collect()
    }

    fn returns(&self, name: &str, action: &Action) -> Result<Returns> {
        let mut text = String::new();
        let Some(rules) = action.rules()? else {
            let _ = writeln!(
                text,
                "The platform's output as it is: parsed as JSON when it is JSON, a string otherwise (the action has no parse rules).\n"
            );
            return Ok(Returns { text, shape: None });
        };
        let vocabulary = Vocabulary::for_flagged_action(name, action.normalize_status);
        let fields = self.returned_fields(name, action, rules);
        let (rows, shape) = field_rows(&fields, vocabulary);
        let list = rules.is_list();
        if list {
            text.push_str("A list of objects, one per item, each with:\n\n");
        }
        text.push_str("| Field | Type | Description |\n|---|---|---|\n");
        for (field, kind, description) in rows {
            let _ = writeln!(text, "| {field} | {kind} | {} |", cell(&description));
        }
        text.push('\n');
        let shape = if list {
            Value::Array(vec![Value::Object(shape)])
        } else {
            Value::Object(shape)
        };
        Ok(Returns {
            text,
            shape: Some(shape),
        })
    }

    /// The fields an action returns (its own, then those its `post_exec` steps add), each
    /// with its type: a pointer field's type is whatever the platform sends, as the fixtures
    /// show it.
    fn returned_fields(
        &self,
        name: &str,
        action: &Action,
        rules: &cpi::parse::CompiledRules,
    ) -> Vec<(String, FieldInfo)> {
        let Some(raw) = action.parse_rules.as_ref() else {
            return Vec::new();
        };
        let mut fields: Vec<(String, FieldInfo)> = rules
            .field_names()
            .into_iter()
            .map(|f| (f.to_string(), field_info(raw.kind, f, raw)))
            .collect();
        for step in &action.post_exec {
            if let Some(rules) = &step.parse_rules {
                for f in rules.patterns.keys().chain(rules.array_patterns.keys()) {
                    if !fields.iter().any(|(n, _)| n == f) {
                        let mut info = field_info(rules.kind, f, rules);
                        info.note = Some("from a `post_exec` step".into());
                        fields.push((f.clone(), info));
                    }
                }
            }
        }
        let fixtures = fixtures_for(self.provider, name);
        let observed = |field: &str| -> Option<&'static str> {
            fixtures.iter().find_map(|(_, fixture)| {
                let items: Vec<&Value> = match fixture.expected.as_ref()? {
                    Value::Array(list) => list.iter().collect(),
                    one => vec![one],
                };
                items
                    .into_iter()
                    .find_map(|item| item.get(field).and_then(json_type_name))
            })
        };
        for (field, info) in &mut fields {
            if info.kind == "JSON value"
                && let Some(kind) = observed(field)
            {
                info.kind = kind.to_string();
            }
        }
        fields
    }
}

struct Returns {
    text: String,
    shape: Option<Value>,
}

struct FieldInfo {
    kind: String,
    optional: bool,
    example: Value,
    note: Option<String>,
}

/// One row of the returned-fields table: field, type, description.
type FieldRow = (String, String, String);

/// The rows of the returned-fields table and the result's shape
/// with illustrative values; a normalized `status` adds its `raw_status`.
fn field_rows(
    fields: &[(String, FieldInfo)],
    vocabulary: Option<Vocabulary>,
) -> (Vec<FieldRow>, Map<String, Value>) {
    let mut rows: Vec<FieldRow> = Vec::new();
    let mut shape = Map::new();
    for (field, info) in fields {
        let mut notes = Vec::new();
        if info.optional {
            notes.push("may be absent");
        }
        if let Some(note) = &info.note {
            notes.push(note);
        }
        let mut description = field_description(field, vocabulary);
        if !notes.is_empty() {
            let notes = notes.join("; ");
            description = if description.is_empty() {
                format!("({notes})")
            } else {
                format!("{description} ({notes})")
            };
        }
        rows.push((field.clone(), info.kind.clone(), description));
        shape.insert(field.clone(), info.example.clone());
        if field == "status"
            && let Some(vocabulary) = vocabulary
        {
            let statuses = match vocabulary {
                Vocabulary::Worker => WORKER_STATUSES[0],
                Vocabulary::Auth => AUTH_STATUSES[0],
            };
            shape.insert(field.clone(), Value::from(statuses));
            shape.insert("raw_status".into(), Value::from(statuses));
            rows.push((
                "raw_status".into(),
                "string".into(),
                "The platform's own status text, before normalization".into(),
            ));
        }
    }
    (rows, shape)
}

/// The type name the docs use for a JSON value (`None` for `null`, which says nothing).
fn json_type_name(value: &Value) -> Option<&'static str> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    })
}

/// The provider's `error_rules` as a table: which messages get which category, checked in
/// order before the built-in rules.
fn error_rules(out: &mut String, rules: &[cpi::provider::ErrorRule], scope: &str) {
    if rules.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "The provider reads its platform's messages for {scope} first, in this order (the \
         first regex found in the error text decides):\n"
    );
    out.push_str("| Error text matches | Exit status | Category |\n|---|---|---|\n");
    for rule in rules {
        let status = rule
            .exit_code
            .map_or_else(|| "any".to_string(), |c| c.to_string());
        let _ = writeln!(
            out,
            "| `{}` | {status} | `{}` |",
            cell(&rule.when),
            rule.category.kind().code()
        );
    }
    out.push('\n');
}

fn field_info(kind: RuleKind, field: &str, rules: &cpi::provider::ParseRules) -> FieldInfo {
    if let Some(array) = rules.array_patterns.get(field) {
        let item: Map<String, Value> = array
            .object
            .iter()
            .map(|(name, p)| (name.clone(), pattern_example(name, p)))
            .collect();
        let names: Vec<&String> = array.object.keys().collect();
        return FieldInfo {
            kind: format!("list of objects ({})", code_list(&names)),
            optional: false,
            example: Value::Array(vec![Value::Object(item)]),
            note: None,
        };
    }
    let Some(pattern) = rules.patterns.get(field) else {
        return FieldInfo {
            kind: "string".into(),
            optional: false,
            example: Value::from(example_string(field)),
            note: None,
        };
    };
    let wildcard = pattern
        .pointer
        .as_deref()
        .is_some_and(|p| p.split('/').any(|s| s == "*"));
    let kind_name = match pattern.transform.as_deref() {
        Some("boolean" | "bool") => "boolean",
        Some("number" | "int" | "integer" | "float") => "number",
        Some("json") => "JSON",
        _ if wildcard => "list",
        _ if field == "status" => "string",
        _ if kind == RuleKind::Json && pattern.regex.is_none() => "JSON value",
        _ => "string",
    };
    FieldInfo {
        kind: kind_name.to_string(),
        optional: pattern.optional,
        example: pattern_example(field, pattern),
        note: None,
    }
}

fn pattern_example(field: &str, pattern: &Pattern) -> Value {
    let wildcard = pattern
        .pointer
        .as_deref()
        .is_some_and(|p| p.split('/').any(|s| s == "*"));
    let one = match pattern.transform.as_deref() {
        Some("boolean" | "bool") => Value::Bool(true),
        Some("number" | "int" | "integer" | "float") => Value::from(1),
        Some("json") => json!({}),
        _ => Value::from(example_string(field)),
    };
    if wildcard {
        Value::Array(vec![one])
    } else {
        one
    }
}

/// The action and its steps, in run order.
fn steps(action: &Action) -> impl Iterator<Item = &Action> {
    action
        .pre_exec
        .iter()
        .chain(std::iter::once(action))
        .chain(&action.post_exec)
}

/// Placeholders that sit outside quotes in a JSON body, whose values must be JSON.
fn bare_json_placeholders(action: &Action) -> Vec<String> {
    let mut found = Vec::new();
    for step in steps(action) {
        let Target::Endpoint(e) = &step.target else {
            continue;
        };
        let Some(body) = &e.body else { continue };
        let names: Vec<&str> = template::placeholders(body).collect();
        let zeros: template::Values = names
            .iter()
            .map(|n| (n.to_string(), "0".to_string()))
            .collect();
        for name in &names {
            let mut values = zeros.clone();
            values.insert(name.to_string(), "not json".to_string());
            if let Err(err) = template::body(body, &values, BodyKind::Json)
                && err.details().get("parameter").and_then(Value::as_str) == Some(name)
                && !found.iter().any(|f| f == name)
            {
                found.push(name.to_string());
            }
        }
    }
    found
}

/// When a `ValidationError` happens: a required value missing, a value the target refuses,
/// or (over HTTP) a 400/422 answer.
fn invalid_input(params: &[Param], http: bool) -> String {
    let required: Vec<&str> = params
        .iter()
        .filter(|p| p.default.is_none() && !p.from_step)
        .map(|p| p.name.as_str())
        .collect();
    let missing = if required.is_empty() {
        "a value is refused by the target".to_string()
    } else {
        format!(
            "{} is missing, or a value is refused by the target",
            or_list(&required)
        )
    };
    if http {
        format!("{missing}; or HTTP 400/422")
    } else {
        missing
    }
}

/// Whether an action works on a resource that exists already (so it may not be found).
fn acts_on_existing(name: &str, params: &[Param]) -> bool {
    params.iter().any(|p| p.name.ends_with("_id"))
        || [
            "get_", "delete_", "start_", "stop_", "reboot_", "resize_", "rename_", "update_",
            "attach_", "detach_", "suspend_", "resume_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// The §10.1 categories an action can produce, with why, by its target type and name.
fn action_errors(name: &str, action: &Action, params: &[Param]) -> Vec<(ErrorKind, String)> {
    let http = steps(action).any(|s| matches!(s.target, Target::Endpoint(_)));
    let command = steps(action).any(|s| matches!(s.target, Target::Command(_)));
    let mut errors = vec![(ErrorKind::Validation, invalid_input(params, http))];
    let installs = name == "test_install" && command && !http;
    if !installs {
        errors.push((
            ErrorKind::Authentication,
            either(
                http,
                command,
                "HTTP 401 or 403: the credentials are invalid",
                "the CLI reports that authentication failed",
            ),
        ));
    }
    if acts_on_existing(name, params) {
        errors.push((
            ErrorKind::ResourceNotFound,
            either(
                http,
                command,
                "HTTP 404: no such resource",
                "the CLI reports that the resource was not found",
            ),
        ));
    }
    if ["create_", "start_", "resize_", "attach_"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
    {
        errors.push((
            ErrorKind::QuotaExceeded,
            "the platform reports that a quota or limit is reached".to_string(),
        ));
    }
    if !installs {
        errors.push((
            ErrorKind::RateLimit,
            either(
                http,
                command,
                "HTTP 429: too many requests",
                "the CLI reports a rate limit",
            ),
        ));
    }
    let provider = if installs {
        "the program is not installed or not on `PATH`, exits non-zero, or prints something the parse rules cannot read".to_string()
    } else {
        either(
            http,
            command,
            "HTTP 5xx, or a body the parse rules cannot read",
            "the command fails otherwise, or its output does not match the parse rules",
        )
    };
    errors.push((ErrorKind::Provider, provider));
    errors.push((
        ErrorKind::Timeout,
        "no answer within `--timeout`".to_string(),
    ));
    if steps(action).any(|s| matches!(&s.target, Target::Command(c) if c.in_vm)) {
        errors.push((
            ErrorKind::Unsupported,
            "the target asks to run inside the worker (`in_vm`)".to_string(),
        ));
    }
    errors
}

fn either(http: bool, command: bool, if_http: &str, if_command: &str) -> String {
    match (http, command) {
        (true, true) => format!("{if_http}; or {if_command}"),
        (true, false) => if_http.to_string(),
        _ => if_command.to_string(),
    }
}

/// Fixtures of a provider for one action, with their file names relative to the provider's
/// directory, in file order.
fn fixtures_for(provider: &Provider, action: &str) -> Vec<(String, fixture::Fixture)> {
    let base = provider
        .source
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    fixture::files_for(provider)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|file| {
            let loaded = fixture::load(&file).ok()?;
            let shown = file
                .path
                .strip_prefix(&base)
                .unwrap_or(&file.path)
                .to_string_lossy()
                .into_owned();
            (loaded.action == action).then_some((shown, loaded))
        })
        .collect()
}

/// The fixture of an action that shows its result best: with an expected result, preferably
/// a non-empty one, preferably with the `params` of a request; the first in file order.
fn preferred_fixture(provider: &Provider, action: &str) -> Option<(String, fixture::Fixture)> {
    let score = |f: &fixture::Fixture| {
        let filled = match &f.expected {
            Some(Value::Array(items)) => !items.is_empty(),
            Some(Value::Object(map)) => !map.is_empty(),
            Some(_) => true,
            None => return None,
        };
        Some((filled, !f.params.is_empty()))
    };
    let mut best: Option<((bool, bool), (String, fixture::Fixture))> = None;
    for (file, f) in fixtures_for(provider, action) {
        if let Some(s) = score(&f)
            && best.as_ref().is_none_or(|(b, _)| s > *b)
        {
            best = Some((s, (file, f)));
        }
    }
    best.map(|(_, found)| found)
}

fn description(name: &str, action: &Action) -> String {
    if let Some(d) = &action.description {
        return d.trim().to_string();
    }
    if let Some((_, d)) = STANDARD_METHODS.iter().find(|(m, _)| *m == name) {
        return (*d).to_string();
    }
    let words = name.replace('_', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

fn param_description(name: &str, provider: &Provider) -> String {
    let base = STANDARD_PARAMS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, d)| (*d).to_string())
        .unwrap_or_default();
    if secret::is_secret_name(name, provider) {
        if base.is_empty() {
            "Secret (redacted in all output)".into()
        } else {
            format!("{base}; secret (redacted in all output)")
        }
    } else {
        base
    }
}

fn field_description(field: &str, vocabulary: Option<Vocabulary>) -> String {
    if field == "status" {
        let Some(vocabulary) = vocabulary else {
            return "The platform's own status text, as reported (not normalized: §6.1 describes \
                    workers)"
                .into();
        };
        let statuses = match vocabulary {
            Vocabulary::Worker => WORKER_STATUSES.as_slice(),
            Vocabulary::Auth => AUTH_STATUSES.as_slice(),
        };
        let section = match vocabulary {
            Vocabulary::Worker => "§6.1",
            Vocabulary::Auth => "§6.2",
        };
        return format!(
            "Standard status ({section}): {}; `unknown` when no table maps it",
            code_list(
                &statuses
                    .iter()
                    .filter(|s| **s != "unknown")
                    .collect::<Vec<_>>()
            )
        );
    }
    STANDARD_FIELDS
        .iter()
        .find(|(n, _)| *n == field)
        .map(|(_, d)| (*d).to_string())
        .unwrap_or_default()
}

/// A plausible value for a parameter or field, from its name.
fn example_string(name: &str) -> &'static str {
    match name {
        "name" | "worker_name" | "hostname" => "web-1",
        "worker_id" | "id" => "wrk-1a2b3c",
        "region" => "us-east-1",
        "zone" => "us-east-1a",
        "image" => "ubuntu-22.04",
        "worker_type" | "type" | "size" | "plan" => "small",
        "size_gb" => "20",
        "network" | "subnet" => "default",
        "ip_address" | "ip" => "10.0.0.10",
        "version" => "1.0.0",
        "api_url" | "url" | "base_url" => "https://api.example.com",
        n if n.ends_with("_id") => "example-id",
        n if n.ends_with("_url") => "https://api.example.com",
        _ => "example",
    }
}

fn target_summary(target: &Target) -> String {
    match target {
        Target::Command(c) => format!("`{}`", c.command),
        Target::Endpoint(e) => format!("`{} {}`", e.method.wire_name(), e.url),
    }
}

/// The text up to the first full stop that ends a sentence: outside parentheses and code,
/// not after an abbreviation like "e.g.".
fn first_sentence(text: &str) -> String {
    let text = text.trim();
    let (mut depth, mut code) = (0i32, false);
    for (i, c) in text.char_indices() {
        match c {
            '`' => code = !code,
            '(' | '[' if !code => depth += 1,
            ')' | ']' if !code => depth -= 1,
            '.' if !code && depth <= 0 && text[i + 1..].starts_with(' ') => {
                let word = text[..i].rsplit(' ').next().unwrap_or("");
                let abbreviation = matches!(
                    word.to_ascii_lowercase().as_str(),
                    "e.g" | "i.e" | "etc" | "vs" | "cf"
                ) || (word.len() <= 4
                    && word.contains('.')
                    && word.chars().all(|c| c.is_alphabetic() || c == '.'));
                if !abbreviation {
                    return text[..=i].to_string();
                }
            }
            _ => {}
        }
    }
    text.to_string()
}

/// A GitHub-style heading anchor for an action name.
fn anchor(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
        .collect::<String>()
        .to_lowercase()
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// `a`, `a` or `b`, `a`, `b` or `c`.
fn or_list(items: &[impl AsRef<str>]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("`{}`", i.as_ref())).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}

fn code_list(items: &[impl AsRef<str>]) -> String {
    items
        .iter()
        .map(|i| format!("`{}`", i.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn display_value(value: &Value) -> String {
    match value {
        Value::String(s) if s.is_empty() => "\"\"".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("JSON values serialize")
}

fn toml_key(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_string()
    } else {
        serde_json::to_string(name).expect("strings serialize")
    }
}

/// One shell word: as is when it is plain, single-quoted otherwise.
fn shell_word(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.,/:=@+%".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn provider(text: &str) -> Provider {
        Provider::from_json(text, Path::new("/nowhere/p.json")).unwrap()
    }

    #[test]
    fn documents_parameters_returns_errors_and_examples() {
        let p = provider(
            r#"{"name": "p", "type": "endpoint",
                "default_settings": {"api_url": "https://api.example.com/v1", "api_key": "", "region": "r1"},
                "actions": {
                  "create_worker": {
                    "target": {"Endpoint": {"url": "{api_url}/workers", "method": "Post",
                      "headers": {"Authorization": "Bearer {api_key}"},
                      "body": "{\"name\":\"{name}\",\"disks\":{disks},\"region\":\"{region}\"}"}},
                    "params": ["api_url", "api_key", "name", "disks", "region"],
                    "parse_rules": {"type": "json", "patterns": {
                      "id": {"pointer": "/id"}, "status": {"pointer": "/state"},
                      "ip_address": {"pointer": "/ip", "optional": true}}}},
                  "list_workers": {
                    "target": {"Endpoint": {"url": "{api_url}/workers", "method": "Get"}},
                    "params": ["api_url"],
                    "parse_rules": {"type": "json", "items": "/workers", "patterns": {
                      "id": {"pointer": "/id"}, "count": {"pointer": "/n", "transform": "number"}}}}}}"#,
        );
        let engine = Engine::new().unwrap();
        let md = markdown(&engine, &p).unwrap();
        assert!(md.starts_with("# p\n"), "{md}");
        // Every endpoint action takes the TLS settings, declared or not.
        assert!(
            md.contains("| `verify_ssl` | `true` | all actions |")
                && md.contains("| `ca_cert_file` | — | all actions |"),
            "{md}"
        );
        assert!(
            md.contains("## create_worker\n\nCreates a new worker."),
            "{md}"
        );
        assert!(
            md.contains("| name | string | Yes | Resource name |"),
            "{md}"
        );
        assert!(md.contains("| disks | JSON | Yes |"), "{md}");
        assert!(
            md.contains("| region | string | No (default: `r1`) |"),
            "{md}"
        );
        assert!(
            md.contains("| status | string | Standard status (§6.1)"),
            "{md}"
        );
        assert!(md.contains("| raw_status | string |"), "{md}");
        assert!(md.contains("| ip_address | JSON value | IP address (may be empty until the worker is running) (may be absent) |"), "{md}");
        assert!(
            md.contains("A list of objects, one per item, each with:"),
            "{md}"
        );
        assert!(md.contains("| count | number |"), "{md}");
        assert!(md.contains("- QuotaExceededError:"), "{md}");
        assert!(
            md.contains("- AuthenticationError: HTTP 401 or 403"),
            "{md}"
        );
        // The example request is the dry run: method, URL and the body with the example values.
        assert!(
            md.contains("cpi run p create_worker -p name=web-1 -p 'disks=[\"example\"]'"),
            "{md}"
        );
        assert!(
            md.contains("\"url\": \"https://api.example.com/v1/workers\""),
            "{md}"
        );
        assert!(
            md.contains(r#"{\"name\":\"web-1\",\"disks\":[\"example\"],\"region\":\"r1\"}"#),
            "{md}"
        );
        assert!(md.contains("illustrative values; no fixture ships"), "{md}");
        assert!(md.contains("Secret parameters: `api_key`."), "{md}");
    }

    #[test]
    fn first_sentences_skip_abbreviations_parentheses_and_code() {
        assert_eq!(
            first_sentence("Creates a network (RFC 1918, e.g. 10.0.0.0/16). More."),
            "Creates a network (RFC 1918, e.g. 10.0.0.0/16)."
        );
        assert_eq!(
            first_sentence("Runs `aws ec2 ... run-instances`. Then more."),
            "Runs `aws ec2 ... run-instances`."
        );
        assert_eq!(
            first_sentence("Zones, e.g. a and b. Next"),
            "Zones, e.g. a and b."
        );
        assert_eq!(first_sentence("One sentence"), "One sentence");
    }

    #[test]
    fn command_providers_name_their_programs_and_fixture_responses() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("c.json"),
            r#"{"name": "c", "type": "command", "actions": {
                "test_install": {"target": {"Command": "c-cli --version"},
                  "parse_rules": {"type": "object", "patterns": {"version": {"regex": "([\\d.]+)"}}}},
                "get_worker": {"target": {"Command": "c-cli show {worker_id}"}, "params": ["worker_id"],
                  "parse_rules": {"type": "object", "patterns": {"id": {"regex": "id=(\\S+)"}}}}}}"#,
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("fixtures/c")).unwrap();
        std::fs::write(
            dir.path().join("fixtures/c/get_worker.json"),
            r#"{"action": "get_worker", "params": {"worker_id": "w-9"}, "output": "id=w-9\n",
                "expected": {"id": "w-9"}}"#,
        )
        .unwrap();
        let p = Provider::load(&dir.path().join("c.json")).unwrap();
        let md = markdown(&Engine::new().unwrap(), &p).unwrap();
        assert!(md.contains("Installed and on `PATH`: `c-cli`."), "{md}");
        assert!(md.contains("missing `list_workers`"), "{md}");
        assert!(md.contains("cpi run c get_worker -p worker_id=w-9"), "{md}");
        assert!(
            md.contains("\"argv\": [\n    \"c-cli\",\n    \"show\",\n    \"w-9\"\n  ]"),
            "{md}"
        );
        assert!(
            md.contains("From the fixture `fixtures/c/get_worker.json`"),
            "{md}"
        );
        assert!(
            md.contains("- ResourceNotFoundError: the CLI reports"),
            "{md}"
        );
        // test_install of a CLI: no authentication or rate limits, but a missing program.
        let install = &md[md.find("## test_install").unwrap()..md.find("## get_worker").unwrap()];
        assert!(!install.contains("AuthenticationError"), "{install}");
        assert!(install.contains("not installed"), "{install}");
    }
}
