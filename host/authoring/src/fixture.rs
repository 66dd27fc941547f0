//! Provider fixtures: saved raw output and the JSON a provider must turn it into (`cpi test`).
//!
//! A provider ships fixtures in `fixtures/NAME/*.json` beside its file. Each fixture names an
//! action, the raw output the platform prints or returns for it (inline `output`, or
//! `output_file` relative to the fixture), and either the `expected` result or the
//! `expected_error` category; `exit_code` (and `stderr`) record a command that failed, checking
//! the action's `accept_exit` or the error the exit stands for. With `params`, the fixture can
//! also pin the `request` the action would make (argv, or method / url / body), checked
//! against a dry run — so a fixture guards both directions of a provider without an account on
//! the platform.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use cpi::engine::Engine;
use cpi::error::{Error, ErrorKind, Result};
use cpi::params::Inputs;
use cpi::provider::Provider;

/// One fixture file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// The action whose parse rules are exercised.
    pub action: String,
    /// What the case shows (shown in reports).
    #[serde(default)]
    pub description: Option<String>,
    /// Where the output format is documented (an API reference or CLI docs URL).
    #[serde(default)]
    pub source: Option<String>,
    /// The raw output, inline.
    #[serde(default)]
    pub output: Option<String>,
    /// The raw output, in a file relative to the fixture.
    #[serde(default)]
    pub output_file: Option<PathBuf>,
    /// The command's exit status when it was not 0: the fixture then checks the action's
    /// `accept_exit` (the output is a result) or the error the exit stands for.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// What the command printed on stderr (with `exit_code`).
    #[serde(default)]
    pub stderr: Option<String>,
    /// The parsed, status-normalized result the provider must produce.
    #[serde(default)]
    pub expected: Option<Value>,
    /// The error category the output must produce instead (e.g. `"ProviderError"`).
    #[serde(default)]
    pub expected_error: Option<String>,
    /// Parameters for the `request` check.
    #[serde(default)]
    pub params: Map<String, Value>,
    /// The request the action makes with `params`: keys of the dry-run call to compare
    /// (`argv`, `method`, `url`, `body`, `headers`).
    #[serde(default)]
    pub request: Option<Map<String, Value>>,
    /// Where a recorded fixture came from (`cpi test --record`).
    #[serde(default)]
    pub recorded: Option<Recorded>,
}

/// When, and with which version of which program, a fixture's output was recorded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Recorded {
    /// The UTC time of the run (RFC 3339).
    pub at: String,
    /// The program that printed the output.
    pub program: String,
    /// The first line `PROGRAM --version` printed (none when it prints nothing or fails).
    #[serde(default)]
    pub version: Option<String>,
}

/// The outcome of one fixture.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    /// The fixture file.
    pub file: PathBuf,
    /// The action it exercises.
    pub action: String,
    /// The fixture's description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `None` when it passed; otherwise what differed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl CaseReport {
    /// True when the fixture passed.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// The fixture directory of a provider: `fixtures/NAME/` beside its file (shown as
/// `<built-in>/fixtures/NAME` for a built-in provider, whose fixtures are in the binary).
pub fn dir_for(provider: &Provider) -> PathBuf {
    provider
        .source
        .parent()
        .unwrap_or(Path::new("."))
        .join("fixtures")
        .join(&provider.name)
}

/// One fixture file: on disk, or built into cpi with a built-in provider.
#[derive(Debug, Clone)]
pub struct FixtureFile {
    /// Where it is (shown in reports; `<built-in>/fixtures/NAME/FILE` when built in).
    pub path: PathBuf,
    /// Its text when it is built in.
    builtin: Option<&'static str>,
}

impl FixtureFile {
    /// A fixture file on disk.
    pub fn on_disk(path: PathBuf) -> FixtureFile {
        FixtureFile {
            path,
            builtin: None,
        }
    }
}

/// The fixture files of a provider, sorted by name (empty when it has none).
pub fn files_for(provider: &Provider) -> Result<Vec<FixtureFile>> {
    let dir = dir_for(provider);
    if provider.is_builtin() {
        return Ok(cpi::provider::builtin::fixtures(&provider.name)
            .map(|(file, text)| FixtureFile {
                path: dir.join(file),
                builtin: Some(text),
            })
            .collect());
    }
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::validation(format!(
                "cannot read fixture directory {}: {e}",
                dir.display()
            )));
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    Ok(files.into_iter().map(FixtureFile::on_disk).collect())
}

/// Loads a fixture file, naming the file and the JSON path of any problem.
pub fn load(file: &FixtureFile) -> Result<Fixture> {
    let path = &file.path;
    let text = match file.builtin {
        Some(text) => std::borrow::Cow::Borrowed(text),
        None => cpi::fsread::read_string(path, cpi::fsread::Kind::Fixture)?.into(),
    };
    let de = &mut serde_json::Deserializer::from_str(&text);
    let fixture: Fixture = serde_path_to_error::deserialize(de).map_err(|err| {
        Error::validation(format!(
            "{}: invalid fixture at `{}`: {}",
            path.display(),
            err.path(),
            err.inner()
        ))
    })?;
    if fixture.expected.is_some() == fixture.expected_error.is_some() {
        return Err(Error::validation(format!(
            "{}: a fixture needs exactly one of \"expected\" and \"expected_error\"",
            path.display()
        )));
    }
    if fixture.output.is_some() == fixture.output_file.is_some() {
        return Err(Error::validation(format!(
            "{}: a fixture needs exactly one of \"output\" and \"output_file\"",
            path.display()
        )));
    }
    Ok(fixture)
}

/// Runs every fixture of a provider; a broken fixture file is a failed case, not an abort.
pub fn run_all(engine: &Engine, provider: &Provider) -> Result<Vec<CaseReport>> {
    Ok(files_for(provider)?
        .into_iter()
        .map(|file| run_file(engine, provider, &file))
        .collect())
}

/// Runs one fixture file.
pub fn run_file(engine: &Engine, provider: &Provider, file: &FixtureFile) -> CaseReport {
    let fixture = match load(file) {
        Ok(f) => f,
        Err(err) => {
            return CaseReport {
                file: file.path.clone(),
                action: String::new(),
                description: None,
                failure: Some(err.message().to_string()),
            };
        }
    };
    let failure = check(engine, provider, file, &fixture).err();
    CaseReport {
        file: file.path.clone(),
        action: fixture.action,
        description: fixture.description,
        failure,
    }
}

fn check(
    engine: &Engine,
    provider: &Provider,
    file: &FixtureFile,
    fixture: &Fixture,
) -> std::result::Result<(), String> {
    let output = match (&fixture.output, &fixture.output_file) {
        (Some(text), _) => text.clone(),
        (None, Some(rel)) => read_output_file(file, rel)?,
        (None, None) => unreachable!("load checks for output"),
    };
    let parsed = parse_case(provider, fixture, output)?;
    match (&fixture.expected, &fixture.expected_error, parsed) {
        (Some(expected), _, Ok(actual)) if &actual == expected => {}
        (Some(expected), _, Ok(actual)) => return Err(difference(expected, &actual)),
        (Some(_), _, Err(err)) => {
            return Err(format!(
                "expected a result, got {}: {}",
                err.kind().code(),
                err.message()
            ));
        }
        (None, Some(category), Ok(actual)) => {
            return Err(format!(
                "expected a {category} error, got the result {actual}"
            ));
        }
        (None, Some(category), Err(err)) => {
            if !category_matches(category, err.kind()) {
                return Err(format!(
                    "expected a {category} error, got {}: {}",
                    err.kind().code(),
                    err.message()
                ));
            }
        }
        (None, None, _) => unreachable!("load checks for expected"),
    }
    if let Some(request) = &fixture.request {
        let inputs = Inputs {
            cli: fixture
                .params
                .iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect(),
            ..Inputs::default()
        };
        let plan = engine
            .plan(provider, &fixture.action, &inputs)
            .map_err(|e| format!("the request check's dry run failed: {e}"))?;
        let Some(call) = plan.calls.last() else {
            return Err("the dry run made no call".to_string());
        };
        for (key, want) in request {
            let got = call.get(key).unwrap_or(&Value::Null);
            if got != want {
                return Err(format!("request `{key}`: expected {want}, got {got}"));
            }
        }
    }
    Ok(())
}

/// What a fixture's output parses into, exactly as `cpi test` checks it: the action's rules on
/// `output`, or, with a non-zero `exit_code`, the action's `accept_exit` or the error the exit
/// and `stderr` stand for. The outer error is a fixture that cannot be checked at all.
pub(crate) fn parse_case(
    provider: &Provider,
    fixture: &Fixture,
    output: String,
) -> std::result::Result<Result<Value>, String> {
    if fixture.stderr.is_some() && fixture.exit_code.is_none() {
        return Err("stderr is only read for a command that failed: add its exit_code".into());
    }
    Ok(match fixture.exit_code.filter(|&code| code != 0) {
        None => Engine::parse_saved(provider, &fixture.action, &output),
        Some(code) => {
            let action = provider
                .action(&fixture.action)
                .map_err(|e| e.to_string())?;
            let cpi::provider::Target::Command(command) = &action.target else {
                return Err("exit_code is for actions with a command target".to_string());
            };
            let program = command
                .command
                .split_whitespace()
                .next()
                .unwrap_or("command");
            let raw = cpi::exec::command::RawOutput {
                exit_code: code,
                stdout: output.into_bytes(),
                stderr: fixture.stderr.clone().unwrap_or_default(),
            };
            let errors = action
                .error_rules()
                .and_then(|own| Ok(own.then(provider.error_rules()?)))
                .map_err(|e| e.to_string())?;
            cpi::exec::command::finish(program, raw, &action.accept_exit, &errors)
                .and_then(|out| Engine::parse_saved(provider, &fixture.action, &out.stdout))
        }
    })
}

/// Reads a fixture's `output_file`, which must stay inside the fixture's directory: a
/// relative path without `..`, resolving (symlinks followed) to a regular file under it. A
/// fixture can therefore never show `/proc/self/environ` or `~/.ssh/id_rsa` in a diff.
fn read_output_file(file: &FixtureFile, rel: &Path) -> std::result::Result<String, String> {
    use std::path::Component;
    let shown = cpi::escape::line(&rel.display().to_string()).into_owned();
    if file.builtin.is_some() {
        return Err(format!(
            "output_file {shown}: a built-in fixture carries its output inline"
        ));
    }
    if !rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "output_file {shown} must be a relative path inside the fixture's directory \
             (no `..`, not absolute)"
        ));
    }
    let dir = file.path.parent().unwrap_or(Path::new("."));
    let base = dir
        .canonicalize()
        .map_err(|e| format!("output_file {shown}: {e}"))?;
    let real = match dir.join(rel).canonicalize() {
        Ok(real) => real,
        Err(e) => return Err(format!("output_file {shown}: {e}")),
    };
    if !real.starts_with(&base) {
        return Err(format!(
            "output_file {shown} leads outside the fixture's directory"
        ));
    }
    cpi::fsread::read_string(&real, cpi::fsread::Kind::Fixture)
        .map_err(|e| format!("output_file: {e}"))
}

fn category_matches(category: &str, kind: ErrorKind) -> bool {
    let code = kind.code();
    code.eq_ignore_ascii_case(category)
        || code
            .strip_suffix("Error")
            .is_some_and(|short| short.eq_ignore_ascii_case(category))
}

/// A readable account of where `actual` departs from `expected` (first differences).
pub(crate) fn difference(expected: &Value, actual: &Value) -> String {
    let mut diffs = Vec::new();
    diff_at("", expected, actual, &mut diffs);
    let shown: Vec<String> = diffs.iter().take(5).cloned().collect();
    let more = diffs.len().saturating_sub(shown.len());
    let mut text = format!("the result differs: {}", shown.join("; "));
    if more > 0 {
        text.push_str(&format!("; and {more} more"));
    }
    text
}

fn diff_at(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let p = format!("{path}/{k}");
                match a.get(k) {
                    Some(av) => diff_at(&p, ev, av, out),
                    None => out.push(format!("{p}: missing (expected {ev})")),
                }
            }
            for k in a.keys().filter(|k| !e.contains_key(*k)) {
                out.push(format!("{path}/{k}: unexpected {}", a[k]));
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                diff_at(&format!("{path}/{i}"), ev, av, out);
            }
        }
        (Value::Array(e), Value::Array(a)) => out.push(format!(
            "{}: expected {} item(s), got {}",
            if path.is_empty() { "/" } else { path },
            e.len(),
            a.len()
        )),
        (e, a) if e != a => out.push(format!(
            "{}: expected {e}, got {a}",
            if path.is_empty() { "/" } else { path }
        )),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_point_at_the_field() {
        let text = difference(
            &json!([{"id": "a", "status": "running"}]),
            &json!([{"id": "a", "status": "stopped", "extra": 1}]),
        );
        assert!(
            text.contains("/0/status: expected \"running\", got \"stopped\""),
            "{text}"
        );
        assert!(text.contains("/0/extra: unexpected 1"), "{text}");
        assert!(difference(&json!([1]), &json!([])).contains("expected 1 item(s), got 0"));
    }

    #[test]
    fn categories_match_with_or_without_the_error_suffix() {
        assert!(category_matches("ProviderError", ErrorKind::Provider));
        assert!(category_matches("provider", ErrorKind::Provider));
        assert!(!category_matches("NotFound", ErrorKind::Provider));
    }
}
