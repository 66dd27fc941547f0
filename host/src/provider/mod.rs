//! The provider file: serde types for everything the standard shows, plus the OmniCloud
//! variants (`{"Command": {"command", "in_vm"}}`, action-level `default_settings`,
//! `pre_exec`/`post_exec`).
//!
//! Types here are serde data plus caches: an action's parse rules and error rules are compiled
//! lazily into a `OnceLock` beside them, once per action, the first time they are needed
//! ([`Action::rules`], [`Action::error_rules`]), so discovering a hundred providers costs only
//! their JSON parsing. The parse rule types themselves live in [`crate::parse::rules`] (and
//! are re-exported here): `parse` depends on nothing of `provider`.

pub mod builtin;
mod discover;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::exec::ErrorRules;
use crate::parse::CompiledRules;
pub use crate::parse::rules::{ArrayPattern, ParseRules, Pattern, RuleKind};

pub use discover::provider_files;
pub use discover::{Registry, default_search_dirs};

/// A loaded provider file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Provider {
    /// The provider's unique name (`cpi run NAME ...`).
    pub name: String,
    /// Whether actions are CLI commands or HTTP endpoints (informational: each action's
    /// target decides how it runs).
    #[serde(rename = "type")]
    pub kind: ProviderKind,
    /// Optional one-paragraph description (used by `cpi show`).
    #[serde(default)]
    pub description: Option<String>,
    /// Provider-wide parameter defaults.
    #[serde(default)]
    pub default_settings: Map<String, Value>,
    /// Extra raw-status → standard-status entries, checked before the built-in table.
    #[serde(default)]
    pub status_map: IndexMap<String, String>,
    /// Extra parameter names whose values are secret (beyond the built-in name rules).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Parameter names the built-in rules would take for secrets but that are not (a
    /// `token_name`, a `password_policy`): their values are shown and never redacted.
    /// `secrets` wins over this list.
    #[serde(default)]
    pub not_secret: Vec<String>,
    /// Parameter declarations by name: type, pattern, allowed values, bounds. Every value of a
    /// declared parameter is checked before anything runs; actions still list the names they
    /// take in `params`.
    #[serde(default)]
    pub parameters: IndexMap<String, ParamDecl>,
    /// A WebAssembly component (path relative to this file) whose hooks override the JSON
    /// rules for the actions it covers.
    #[serde(default)]
    pub component: Option<String>,
    /// What the platform's error messages mean, for every action: checked in order (after
    /// the action's own rules) before the built-in heuristics.
    #[serde(default)]
    pub error_rules: Vec<ErrorRule>,
    /// Environment variables its commands read (`AWS_PROFILE`): once the provider is
    /// approved they are passed on; every other variable but a small base is not. Never
    /// `LD_*`/`DYLD_*`.
    #[serde(default)]
    pub env: Vec<String>,
    /// The provider's actions, in file order.
    #[serde(default)]
    pub actions: IndexMap<String, Action>,
    /// Where the provider was loaded from (`<built-in>/NAME.json` for a built-in one).
    #[serde(skip)]
    pub source: PathBuf,
    /// The sha256 of the exact bytes the provider was parsed from (empty for a standalone
    /// component, whose own digest pins it).
    #[serde(skip)]
    pub sha256: String,
    /// Whether it is built into cpi or read from a file.
    #[serde(skip)]
    pub origin: Origin,
    #[serde(skip)]
    compiled_errors: OnceLock<std::result::Result<ErrorRules, Error>>,
}

/// Where a provider came from, which decides how far it is trusted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Origin {
    /// Shipped inside the cpi binary ([`builtin`]): versioned with cpi, trusted as cpi is.
    BuiltIn,
    /// Read from a file in a provider directory.
    #[default]
    File,
}

/// What values a parameter accepts (§12.1 "validate and sanitize all user inputs"). Every
/// rule given must hold; a value is checked as the text that is substituted.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ParamDecl {
    /// `string` (the default), `integer`, `number` or `boolean` (`true`/`false`).
    #[serde(rename = "type", default)]
    pub kind: ParamType,
    /// What the parameter is, for `cpi show`, `cpi docs` and `--help`-like listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A regex the whole value must match (cpi anchors it: `^(?:PATTERN)$`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The only values accepted (compared as text: `2` and `"2"` are the same value).
    #[serde(rename = "enum", default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<Value>>,
    /// Smallest value of an `integer`/`number`; shortest length (characters) of a `string`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest value of an `integer`/`number`; longest length (characters) of a `string`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// `true`: the value is secret whatever its name; `false`: never treated as secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<bool>,
    /// Whether a value may start with `-` where it begins a command word (where a CLI would
    /// read it as an option). Refused unless this is `true`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_leading_dash: bool,
    #[serde(skip)]
    compiled: OnceLock<std::result::Result<regex::Regex, String>>,
}

/// The type of a declared parameter's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// Any text (the default).
    #[default]
    String,
    /// A whole number in decimal (`-3`, `42`).
    Integer,
    /// A decimal number (`1.5`, `2e3`); never `NaN` or infinity.
    Number,
    /// `true` or `false`.
    Boolean,
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Boolean => "boolean",
        })
    }
}

impl ParamDecl {
    /// The rules in a few words for people (`integer, 1 to 64`, `string matching ^[a-z]+$`);
    /// the description is not included.
    pub fn summary(&self) -> String {
        let mut parts = vec![self.kind.to_string()];
        if let Some(choices) = &self.choices {
            let list: Vec<String> = choices
                .iter()
                .map(|c| match c {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            parts.push(format!("one of {}", list.join(", ")));
        }
        let unit = if self.kind == ParamType::String {
            " characters"
        } else {
            ""
        };
        match (self.min, self.max) {
            (Some(min), Some(max)) => parts.push(format!("{min} to {max}{unit}")),
            (Some(min), None) => parts.push(format!("at least {min}{unit}")),
            (None, Some(max)) => parts.push(format!("at most {max}{unit}")),
            (None, None) => {}
        }
        if let Some(pattern) = &self.pattern {
            parts.push(format!("matching {pattern}"));
        }
        if self.allow_leading_dash {
            parts.push("may start with -".into());
        }
        parts.join(", ")
    }

    /// The declaration's `pattern`, anchored to the whole value and compiled once; `None`
    /// without one, an error text when it does not compile.
    pub fn regex(&self) -> Option<std::result::Result<&regex::Regex, &str>> {
        let pattern = self.pattern.as_deref()?;
        let compiled = self.compiled.get_or_init(|| {
            regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
                .size_limit(1 << 20)
                .build()
                .map_err(|e| e.to_string())
        });
        Some(compiled.as_ref().map_err(String::as_str))
    }
}

/// `command` or `endpoint` (§4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Actions run a CLI program.
    Command,
    /// Actions call an HTTP API.
    Endpoint,
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProviderKind::Command => "command",
            ProviderKind::Endpoint => "endpoint",
        })
    }
}

/// One action (`create_worker`, ...) or a `pre_exec`/`post_exec` step of one.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Action {
    /// What runs: a command template or an HTTP endpoint template.
    pub target: Target,
    /// The parameters the action takes, in declaration order.
    #[serde(default)]
    pub params: Vec<String>,
    /// How raw output becomes structured JSON; without rules the raw output is returned.
    #[serde(default)]
    pub parse_rules: Option<ParseRules>,
    /// Action-level defaults, overriding the provider's `default_settings`.
    #[serde(default)]
    pub default_settings: Map<String, Value>,
    /// Steps run before the action; their parsed fields become parameters of later steps.
    #[serde(default)]
    pub pre_exec: Vec<Action>,
    /// Steps run after the action, fed with the action's parsed fields.
    #[serde(default)]
    pub post_exec: Vec<Action>,
    /// Optional description (used by `cpi show`).
    #[serde(default)]
    pub description: Option<String>,
    /// Whether the action is safe to repeat, so failed attempts may be retried (`get_*`,
    /// `list_*`, `has_*` and `test_*` are by name).
    #[serde(default)]
    pub idempotent: Option<bool>,
    /// Whether the result's `status` fields are normalized: `true` to the §6.1 worker
    /// statuses (§6.2 for authentication actions), `false` left as the platform reported
    /// them. Without it the action's name decides: worker and authentication actions are
    /// normalized, others (`list_disks`, `create_snapshot`) are not.
    #[serde(default)]
    pub normalize_status: Option<bool>,
    /// Non-zero exits of a command target that are not failures, each recognised by what the
    /// command printed (`VBoxManage snapshot VM list` exits 1 for a VM without snapshots).
    #[serde(default)]
    pub accept_exit: Vec<AcceptExit>,
    /// How to fetch every page of a paged list: the parameter that selects a page and where
    /// the answer says which page comes next.
    #[serde(default)]
    pub paginate: Option<Paginate>,
    /// What the platform's error messages mean for this action (or step): checked in order
    /// before the provider's `error_rules` and the built-in heuristics.
    #[serde(default)]
    pub error_rules: Vec<ErrorRule>,
    /// How long the result may be reused (`"1h"`, `"30m"`; `"0"`: never): `list_regions`,
    /// `list_zones`, `list_images` and `list_worker_types` are kept an hour without it; worker
    /// and disk state is never cached.
    #[serde(default)]
    pub cache: Option<String>,
    #[serde(skip)]
    compiled: OnceLock<std::result::Result<CompiledRules, Error>>,
    #[serde(skip)]
    compiled_errors: OnceLock<std::result::Result<ErrorRules, Error>>,
    #[serde(skip)]
    placeholders: OnceLock<Vec<String>>,
}

/// One provider-declared error rule: a failed command or request whose error text matches
/// `when` (and whose exit status is `exit_code`, when given) is an error of `category`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorRule {
    /// A regex searched in the command's stderr and stdout, or the HTTP error body and reason
    /// phrase (`"error: failed to get domain '"`); it may not match the empty text.
    pub when: String,
    /// The category the error gets.
    pub category: ErrorCategory,
    /// Only for this exit status (a command) or HTTP status (an endpoint).
    #[serde(default)]
    pub exit_code: Option<i32>,
}

/// The categories an error rule can give (§10.1, plus timeouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum ErrorCategory {
    /// Credentials missing, invalid or expired.
    #[serde(rename = "AuthenticationError")]
    Authentication,
    /// The resource named does not exist.
    #[serde(rename = "ResourceNotFoundError")]
    ResourceNotFound,
    /// A platform limit was reached.
    #[serde(rename = "QuotaExceededError")]
    QuotaExceeded,
    /// The platform throttled the caller (retried for safe actions).
    #[serde(rename = "RateLimitError")]
    RateLimit,
    /// The request was invalid.
    #[serde(rename = "ValidationError")]
    Validation,
    /// The platform failed.
    #[serde(rename = "ProviderError")]
    Provider,
    /// The platform gave up waiting.
    #[serde(rename = "TimeoutError")]
    Timeout,
}

impl ErrorCategory {
    /// The error kind of this category.
    pub fn kind(self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            ErrorCategory::Authentication => ErrorKind::Authentication,
            ErrorCategory::ResourceNotFound => ErrorKind::ResourceNotFound,
            ErrorCategory::QuotaExceeded => ErrorKind::QuotaExceeded,
            ErrorCategory::RateLimit => ErrorKind::RateLimit,
            ErrorCategory::Validation => ErrorKind::Validation,
            ErrorCategory::Provider => ErrorKind::Provider,
            ErrorCategory::Timeout => ErrorKind::Timeout,
        }
    }
}

/// Paging for a list action: cpi follows the pages (unless the user chose one) and returns
/// one list, so a long list is never cut silently at the first page.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Paginate {
    /// The parameter the target uses to select a page (`page`).
    pub param: String,
    /// Where the JSON answer names the next page: a `pointer`, with an optional `regex` to
    /// take it from a URL (`"regex": "[?&]page=(\\d+)"`). Absent, `null` or empty on the
    /// last page.
    pub next: Pattern,
    /// At most this many pages are fetched (default 100); more is an error, never a cut list.
    #[serde(default)]
    pub max_pages: Option<u32>,
}

/// A known non-zero exit whose output is still a result: the exit code, and a regex that
/// stdout or stderr must match, so that the same code for a real failure is still an error.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptExit {
    /// The exit code (not 0).
    pub code: i32,
    /// A regex the command's stdout or stderr must match for the exit to be accepted.
    pub when: String,
}

impl Action {
    /// Collects this action's description and its steps' as (JSON path, text).
    fn descriptions<'a>(&'a self, at: &str, out: &mut Vec<(String, &'a str)>) {
        if let Some(d) = &self.description {
            out.push((format!("{at}.description"), d));
        }
        for (list, steps) in [("pre_exec", &self.pre_exec), ("post_exec", &self.post_exec)] {
            for (i, step) in steps.iter().enumerate() {
                step.descriptions(&format!("{at}.{list}[{i}]"), out);
            }
        }
    }

    /// The compiled parse rules, compiled on first use and cached.
    pub fn rules(&self) -> Result<Option<&CompiledRules>> {
        let Some(rules) = &self.parse_rules else {
            return Ok(None);
        };
        match self.compiled.get_or_init(|| CompiledRules::compile(rules)) {
            Ok(compiled) => Ok(Some(compiled)),
            Err(err) => Err(err.clone()),
        }
    }

    /// The `{name}` placeholders of the action's target ([`Target::placeholders`]), found
    /// on first use and kept: every run checks them against its values.
    pub fn placeholders(&self) -> &[String] {
        self.placeholders.get_or_init(|| self.target.placeholders())
    }

    /// The action's own error rules, compiled on first use and cached.
    pub fn error_rules(&self) -> Result<&ErrorRules> {
        compiled_errors(&self.compiled_errors, &self.error_rules, "error_rules")
    }
}

/// Compiles error rules once into `cell`; a bad rule is an error naming where it is.
fn compiled_errors<'a>(
    cell: &'a OnceLock<std::result::Result<ErrorRules, Error>>,
    rules: &[ErrorRule],
    at: &str,
) -> Result<&'a ErrorRules> {
    match cell.get_or_init(|| {
        ErrorRules::compile(rules).map_err(|(i, e)| {
            Error::validation(format!("{at}[{i}]: {e}")).with_detail("error_rule", i)
        })
    }) {
        Ok(compiled) => Ok(compiled),
        Err(err) => Err(err.clone()),
    }
}

/// What an action runs.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub enum Target {
    /// A CLI command template, split into argv before substitution.
    Command(CommandTarget),
    /// An HTTP request template.
    Endpoint(EndpointTarget),
}

impl Target {
    /// The `{name}` placeholders the target uses, in order of first appearance.
    pub fn placeholders(&self) -> Vec<String> {
        // A set beside the list keeps this linear: 50,000 placeholders took `cpi validate`
        // 93 s when each was compared with every earlier one.
        let mut names: Vec<String> = Vec::new();
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut add = |text: &str| {
            for name in crate::template::placeholders(text) {
                if !seen.contains(name) {
                    seen.insert(name.to_string());
                    names.push(name.to_string());
                }
            }
        };
        match self {
            Target::Command(cmd) => add(&cmd.command),
            Target::Endpoint(ep) => {
                add(&ep.url);
                for (name, value) in &ep.headers {
                    add(name);
                    add(value);
                }
                if let Some(body) = &ep.body {
                    add(body);
                }
            }
        }
        names
    }
}

/// A command template: the standard's string form or OmniCloud's object form.
#[derive(Debug, Clone)]
pub struct CommandTarget {
    /// The command line template.
    pub command: String,
    /// OmniCloud's "run this over SSH inside the worker"; cpi refuses it at run time.
    pub in_vm: bool,
}

impl<'de> Deserialize<'de> for CommandTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Object {
            command: String,
            #[serde(default)]
            in_vm: bool,
        }
        match Value::deserialize(d)? {
            Value::String(command) => Ok(CommandTarget {
                command,
                in_vm: false,
            }),
            obj @ Value::Object(_) => {
                let o: Object = serde_json::from_value(obj).map_err(de::Error::custom)?;
                Ok(CommandTarget {
                    command: o.command,
                    in_vm: o.in_vm,
                })
            }
            other => Err(de::Error::custom(format!(
                "expected a command string or {{\"command\": ..., \"in_vm\": false}}, found {}",
                cpi_contract::json_kind(&other)
            ))),
        }
    }
}

impl JsonSchema for CommandTarget {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CommandTarget".into()
    }

    /// Matches the `Deserialize` impl: a template string, or OmniCloud's object form.
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A command line template, split into words with POSIX quoting rules before substitution; never run through a shell.",
            "oneOf": [
                {"type": "string", "examples": ["cloudco-cli worker describe {worker_id} --output json"]},
                {
                    "type": "object",
                    "description": "OmniCloud's object form.",
                    "properties": {
                        "command": {"type": "string", "description": "The command line template."},
                        "in_vm": {"type": "boolean", "default": false,
                                  "description": "Run over SSH inside the worker: cpi refuses this at run time."}
                    },
                    "required": ["command"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// An HTTP request template.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EndpointTarget {
    /// URL template; a leading `{placeholder}` is the base URL.
    pub url: String,
    /// HTTP method.
    pub method: Method,
    /// Header templates, in file order.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// Body template (JSON-aware substitution).
    #[serde(default)]
    pub body: Option<String>,
}

/// HTTP methods as the standard spells them (§9.3), plus `Head` and `{"Custom": "VERB"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `Get`
    Get,
    /// `Post`
    Post,
    /// `Put`
    Put,
    /// `Patch`
    Patch,
    /// `Delete`
    Delete,
    /// `Option` (sent as `OPTIONS`).
    Option,
    /// `Head` (an extension).
    Head,
    /// `{"Custom": "VERB"}`: any RFC 9110 token.
    Custom(String),
}

impl Method {
    /// The method exactly as it goes on the wire (`GET`, not `Get`).
    pub fn wire_name(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Option => "OPTIONS",
            Method::Head => "HEAD",
            Method::Custom(verb) => verb,
        }
    }
}

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        const EXPECTED: &str =
            "expected one of Get, Post, Put, Patch, Delete, Option, or {\"Custom\": \"VERB\"}";
        match Value::deserialize(d)? {
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "get" => Ok(Method::Get),
                "post" => Ok(Method::Post),
                "put" => Ok(Method::Put),
                "patch" => Ok(Method::Patch),
                "delete" => Ok(Method::Delete),
                "option" | "options" => Ok(Method::Option),
                "head" => Ok(Method::Head),
                _ => Err(de::Error::custom(format!(
                    "unknown HTTP method {s:?}: {EXPECTED}"
                ))),
            },
            Value::Object(map) if map.len() == 1 && map.contains_key("Custom") => {
                match &map["Custom"] {
                    Value::String(verb) if is_http_token(verb) => Ok(Method::Custom(verb.clone())),
                    other => Err(de::Error::custom(format!(
                        "Custom HTTP method must be a token like \"PURGE\", found {other}"
                    ))),
                }
            }
            other => Err(de::Error::custom(format!(
                "invalid HTTP method {other}: {EXPECTED}"
            ))),
        }
    }
}

impl JsonSchema for Method {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Method".into()
    }

    /// Matches the `Deserialize` impl: a method name in any case, or `{"Custom": "VERB"}`.
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        const NAMES: [&str; 8] = [
            "Get", "Post", "Put", "Patch", "Delete", "Option", "Options", "Head",
        ];
        // Any case, as the loader reads it ("GET", "get"); JSON Schema regexes have no flags,
        // so each letter is a class.
        let any_case: Vec<String> = NAMES
            .iter()
            .map(|name| {
                name.chars()
                    .map(|c| format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase()))
                    .collect()
            })
            .collect();
        let pattern = format!("^({})$", any_case.join("|"));
        schemars::json_schema!({
            "description": "HTTP method as the standard spells it (§9.3, any case), `Head`, or {\"Custom\": \"VERB\"}.",
            "anyOf": [
                {"enum": ["Get", "Post", "Put", "Patch", "Delete", "Option", "Head"]},
                {"type": "string", "pattern": pattern},
                {
                    "type": "object",
                    "properties": {"Custom": {"type": "string", "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
                                              "description": "Any RFC 9110 token, e.g. PURGE."}},
                    "required": ["Custom"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

fn is_http_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl Provider {
    /// Parses a provider file's text; `path` is used in errors and kept as the source.
    pub fn from_json(text: &str, path: &Path) -> Result<Provider> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let mut provider: Provider = serde_path_to_error::deserialize(de).map_err(|err| {
            let at = err.path().to_string();
            let inner = err.into_inner();
            Error::validation(format!(
                "{}: invalid provider file at `{at}` (line {}, column {}): {inner}",
                path.display(),
                inner.line(),
                inner.column()
            ))
            .with_detail("file", path.display().to_string())
            .with_detail("json_path", at)
        })?;
        provider.source = path.to_path_buf();
        provider.sha256 = crate::request::sha256(text.as_bytes());
        provider.check_shown_text(path)?;
        Ok(provider)
    }

    /// Refuses a name outside `[a-z0-9][a-z0-9_-]*`, and descriptions holding characters that
    /// could rewrite a terminal (controls, bidi, zero-width; newline and tab are fine): these
    /// strings are shown to people, so a provider may not disguise itself with them.
    fn check_shown_text(&self, path: &Path) -> Result<()> {
        let bad = |what: String| {
            Error::validation(format!(
                "{}: {what}",
                crate::escape::line(&path.display().to_string())
            ))
            .with_detail("file", path.display().to_string())
        };
        check_name(&self.name)
            .map_err(|why| bad(why.message().to_string()).with_detail("json_path", "name"))?;
        let mut texts: Vec<(String, &str)> = Vec::new();
        if let Some(d) = &self.description {
            texts.push(("description".into(), d));
        }
        for (name, action) in &self.actions {
            action.descriptions(&format!("actions.{name}"), &mut texts);
        }
        for (at, text) in texts {
            if text
                .chars()
                .any(|c| c != '\n' && c != '\t' && crate::escape::is_unsafe(c))
            {
                return Err(bad(format!(
                    "`{at}` holds control, bidi or zero-width characters, which could disguise \
                     what is shown"
                ))
                .with_detail("json_path", at));
            }
        }
        Ok(())
    }

    /// Reads and parses a provider file.
    pub fn load(path: &Path) -> Result<Provider> {
        let text = crate::fsread::read_string(path, crate::fsread::Kind::Provider)?;
        Provider::from_json(&text, path)
    }

    /// A standalone component file (`NAME.wasm` in a provider directory): named after the
    /// file; its definition comes from the component's manifest when it runs.
    pub fn standalone_component(path: &Path) -> Result<Provider> {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        check_name(&name).map_err(|e| {
            Error::validation(format!(
                "cannot name a provider after {}: {}",
                crate::escape::line(&path.display().to_string()),
                e.message()
            ))
        })?;
        Ok(Provider {
            name,
            kind: ProviderKind::Command,
            description: Some("WebAssembly component provider".to_string()),
            default_settings: Map::new(),
            status_map: IndexMap::new(),
            secrets: Vec::new(),
            not_secret: Vec::new(),
            parameters: IndexMap::new(),
            component: path.file_name().map(|n| n.to_string_lossy().into_owned()),
            error_rules: Vec::new(),
            env: Vec::new(),
            actions: IndexMap::new(),
            source: path.to_path_buf(),
            compiled_errors: OnceLock::new(),
            sha256: String::new(),
            origin: Origin::File,
        })
    }

    /// Whether the provider is built into cpi (not read from a file).
    pub fn is_builtin(&self) -> bool {
        self.origin == Origin::BuiltIn
    }

    /// The component file this provider uses, if any (never for a built-in provider).
    pub fn component_path(&self) -> Option<PathBuf> {
        if self.is_builtin() {
            return None;
        }
        let relative = self.component.as_deref()?;
        let base = self.source.parent().unwrap_or(Path::new("."));
        Some(base.join(relative))
    }

    /// The provider-wide error rules, compiled on first use and cached.
    pub fn error_rules(&self) -> Result<&ErrorRules> {
        compiled_errors(&self.compiled_errors, &self.error_rules, "error_rules")
    }

    /// Looks an action up by name, with an error listing the available ones.
    pub fn action(&self, name: &str) -> Result<&Action> {
        self.actions.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.actions.keys().map(String::as_str).collect();
            Error::validation(format!(
                "provider '{}' has no action '{name}' (it has: {})",
                self.name,
                known.join(", ")
            ))
            .with_detail("action", name)
        })
    }
}

/// Checks a provider name: `[a-z0-9][a-z0-9_-]*`, at most 64 characters. A name becomes a
/// file name (`NAME.md`, grant files) and is shown to people, so nothing else is allowed.
pub fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.len() <= 64;
    if ok {
        Ok(())
    } else {
        Err(Error::validation(format!(
            "invalid provider name \"{}\": a name is a lowercase letter or digit, then \
             lowercase letters, digits, '-' and '_' (at most 64)",
            crate::escape::line(name)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Provider> {
        Provider::from_json(text, Path::new("test.json"))
    }

    #[test]
    fn loads_both_target_forms_and_custom_methods() {
        let p = load(
            r#"{"name":"x","type":"command","actions":{
                "a":{"target":{"Command":"echo {name}"},"params":["name"]},
                "b":{"target":{"Command":{"command":"ls","in_vm":true}}},
                "c":{"target":{"Endpoint":{"url":"{api_url}/x","method":{"Custom":"PURGE"}}}}}}"#,
        )
        .unwrap();
        let Target::Command(b) = &p.actions["b"].target else {
            panic!()
        };
        assert!(b.in_vm);
        let Target::Endpoint(c) = &p.actions["c"].target else {
            panic!()
        };
        assert_eq!(c.method.wire_name(), "PURGE");
        assert_eq!(p.actions["a"].target.placeholders(), vec!["name"]);
    }

    #[test]
    fn schema_errors_name_the_json_path() {
        let err = load(
            r#"{"name":"x","type":"command","actions":{"a":{"target":{"Endpoint":{"url":"u","method":"Fetch"}}}}}"#,
        )
        .unwrap_err();
        assert!(
            err.message().contains("actions.a.target.Endpoint.method"),
            "{err}"
        );
        assert!(err.message().contains("Fetch"), "{err}");
    }
}
