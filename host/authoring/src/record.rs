//! Recorded fixtures (`cpi test --record`): run one action for real and keep what the platform
//! printed as a fixture, so a provider is pinned to its cloud's real output.
//!
//! The action's own command runs once (its `pre_exec`/`post_exec` steps do not: a fixture
//! pins one output). The fixture holds the output, the exit code and stderr of a failure, the
//! result `cpi test` derives from them as `expected` (or `expected_error`), the `-p` values and
//! the argv as `params`/`request` when a dry run reproduces it, and the program's `--version`
//! and the date. Every secret value the caller gave is redacted everywhere in it.

use serde_json::{Map, Value, json};

use crate::fixture::{self, Fixture, Recorded};
use cpi::engine::Engine;
use cpi::error::{Error, Result};
use cpi::exec::gate::{Command, Scope};
use cpi::params::{self, Inputs};
use cpi::provider::{Provider, Target};
use cpi::secret::{REDACTED, Redactor};
use cpi::target::{self, Invocation};

/// The longest `--version` line kept.
const MAX_VERSION_LEN: usize = 200;

/// Runs `action_name` for real with `inputs` and returns the fixture to write (a JSON object).
pub async fn record(
    engine: &Engine,
    provider: &Provider,
    action_name: &str,
    inputs: &Inputs,
) -> Result<Value> {
    let action = provider.action(action_name)?;
    let unsupported = |why: &str| {
        Error::unsupported(format!(
            "cannot record {}.{action_name}: {why}",
            provider.name
        ))
    };
    if let Some(why) = unrecordable(provider, action) {
        return Err(unsupported(why));
    }
    let resolved = params::resolve(provider, action, inputs);
    resolved.check(provider, action)?;
    let redactor = Redactor::new(resolved.secret_values());
    let dash_ok = |n: &str| resolved.dash_ok.contains(n);
    let Invocation::Command { argv } = target::build(&action.target, &resolved.values, &dash_ok)?
    else {
        return Err(unsupported("only command targets are recorded"));
    };
    let scope = scope_of(provider);
    let raw = engine
        .gate()
        .command_raw(
            &scope,
            &Command {
                argv: &argv,
                ..Command::default()
            },
        )
        .await?;
    let version = version_of(engine, &scope, &argv[0], &redactor).await;

    let output = redactor.redact(&String::from_utf8_lossy(&raw.stdout));
    let mut case = recorded_case(action_name, &output, &raw, &redactor);
    let parsed = fixture::parse_case(provider, &case, output).map_err(|why| unsupported(&why))?;

    let mut out = Map::new();
    out.insert("action".into(), json!(action_name));
    out.insert(
        "description".into(),
        json!(format!("recorded by cpi test --record from {}", argv[0])),
    );
    let given = given_params(provider, inputs);
    if let Some(request) =
        reproducible_request(engine, provider, action_name, &given, &argv, &redactor)
    {
        out.insert("params".into(), Value::Object(given));
        out.insert("request".into(), json!({ "argv": request }));
    }
    out.insert("output".into(), json!(case.output.take()));
    if let Some(code) = case.exit_code {
        out.insert("exit_code".into(), json!(code));
        out.insert("stderr".into(), json!(case.stderr.take()));
    }
    match parsed {
        Ok(mut value) => {
            redactor.redact_json(&mut value);
            out.insert("expected".into(), value);
        }
        Err(err) => {
            out.insert("expected_error".into(), json!(err.kind().code()));
        }
    }
    let recorded = Recorded {
        at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        program: argv[0].clone(),
        version,
    };
    out.insert(
        "recorded".into(),
        serde_json::to_value(recorded).map_err(|e| Error::internal(e.to_string()))?,
    );
    Ok(Value::Object(out))
}

/// Why an action cannot be recorded, if it cannot: a component's, one with `pre_exec` steps
/// (a single output cannot show their effects), or one that is not a command.
fn unrecordable(provider: &Provider, action: &cpi::provider::Action) -> Option<&'static str> {
    if provider.component.is_some() {
        return Some("it is a component provider");
    }
    if !action.pre_exec.is_empty() {
        return Some("it has pre_exec steps, whose effects a single recorded output cannot show");
    }
    if !matches!(action.target, Target::Command(_)) {
        return Some("only command targets are recorded");
    }
    None
}

/// The fixture case of one recorded run: its (redacted) output, and the exit code and
/// (redacted) stderr of a failure.
fn recorded_case(
    action_name: &str,
    output: &str,
    raw: &cpi::exec::command::RawOutput,
    redactor: &Redactor,
) -> Fixture {
    let failed = raw.exit_code != 0;
    Fixture {
        action: action_name.to_string(),
        description: None,
        source: None,
        output: Some(output.to_string()),
        output_file: None,
        exit_code: failed.then_some(raw.exit_code),
        stderr: failed.then(|| redactor.redact(&raw.stderr)),
        expected: None,
        expected_error: None,
        params: Map::new(),
        request: None,
        recorded: None,
    }
}

/// The `-p` values, secret ones replaced by `[REDACTED]`.
fn given_params(provider: &Provider, inputs: &Inputs) -> Map<String, Value> {
    inputs
        .cli
        .iter()
        .map(|(name, value)| {
            let shown = if cpi::secret::is_secret_name(name, provider) {
                REDACTED.to_string()
            } else {
                value.clone()
            };
            (name.clone(), Value::String(shown))
        })
        .collect()
}

/// The redacted argv that ran, when a dry run with just `given` (as `cpi test` makes it)
/// builds exactly that argv; otherwise (values from the environment or a config file) none.
fn reproducible_request(
    engine: &Engine,
    provider: &Provider,
    action_name: &str,
    given: &Map<String, Value>,
    argv: &[String],
    redactor: &Redactor,
) -> Option<Vec<String>> {
    let ran: Vec<String> = argv.iter().map(|a| redactor.redact(a)).collect();
    let inputs = Inputs {
        cli: given
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        ..Inputs::default()
    };
    let plan = engine.plan(provider, action_name, &inputs).ok()?;
    let planned = plan.calls.last()?.get("argv")?.clone();
    (planned == json!(ran)).then_some(ran)
}

/// How the gate sees the provider being recorded: a JSON provider, whose own file names what
/// it runs (component providers are refused above).
fn scope_of(provider: &Provider) -> Scope {
    Scope {
        provider: provider.name.clone(),
        ..Scope::default()
    }
}

/// The first line a successful `PROGRAM --version` prints (stdout, else stderr), redacted and
/// shown safely.
async fn version_of(
    engine: &Engine,
    scope: &Scope,
    program: &str,
    redactor: &Redactor,
) -> Option<String> {
    let argv = [program.to_string(), "--version".to_string()];
    let raw = engine
        .gate()
        .command_raw(
            scope,
            &Command {
                argv: &argv,
                ..Command::default()
            },
        )
        .await
        .ok()
        .filter(|raw| raw.exit_code == 0)?;
    let stdout = String::from_utf8_lossy(&raw.stdout);
    let line = stdout
        .lines()
        .chain(raw.stderr.lines())
        .map(str::trim)
        .find(|l| !l.is_empty())?;
    let line: String = line.chars().take(MAX_VERSION_LEN).collect();
    Some(cpi::escape::line(&redactor.redact(&line)).into_owned())
}

/// What changed between an earlier recording and a new one, one line per change (empty when
/// they agree apart from the date).
pub fn changes(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["exit_code", "stderr", "expected_error"] {
        if old.get(key) != new.get(key) {
            out.push(format!(
                "{key}: {} -> {}",
                old.get(key).unwrap_or(&Value::Null),
                new.get(key).unwrap_or(&Value::Null)
            ));
        }
    }
    if let (Some(was), Some(now)) = (old.get("expected"), new.get("expected"))
        && was != now
    {
        out.push(format!("expected: {}", fixture::difference(was, now)));
    } else if old.get("expected").is_some() != new.get("expected").is_some() {
        out.push("expected: a result now, an error before (or the reverse)".to_string());
    }
    let (was, now) = (text_of(old, "output"), text_of(new, "output"));
    if was != now {
        let was: Vec<&str> = was.lines().collect();
        let now: Vec<&str> = now.lines().collect();
        let gone = was.iter().filter(|l| !now.contains(l)).take(5);
        let added = now.iter().filter(|l| !was.contains(l)).take(5);
        out.push(format!(
            "output: {} line(s) before, {} now",
            was.len(),
            now.len()
        ));
        out.extend(gone.map(|l| format!("  - {l}")));
        out.extend(added.map(|l| format!("  + {l}")));
    }
    let version = |v: &Value| v.pointer("/recorded/version").cloned();
    if version(old) != version(new) {
        out.push(format!(
            "version: {} -> {}",
            version(old).unwrap_or(Value::Null),
            version(new).unwrap_or(Value::Null)
        ));
    }
    out
}

fn text_of<'v>(fixture: &'v Value, key: &str) -> &'v str {
    fixture.get(key).and_then(Value::as_str).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_name_the_result_output_and_version_differences() {
        let old = json!({
            "output": "a\nb\n", "expected": {"id": "1", "status": "running"},
            "recorded": {"at": "2026-01-01T00:00:00Z", "program": "x", "version": "1.0"}
        });
        let mut new = old.clone();
        new["recorded"]["at"] = json!("2026-02-01T00:00:00Z");
        assert!(changes(&old, &new).is_empty(), "only the date changed");
        new["output"] = json!("a\nc\n");
        new["expected"]["status"] = json!("stopped");
        new["recorded"]["version"] = json!("1.1");
        let text = changes(&old, &new).join("\n");
        assert!(
            text.contains("/status: expected \"running\", got \"stopped\""),
            "{text}"
        );
        assert!(text.contains("  - b") && text.contains("  + c"), "{text}");
        assert!(text.contains("version: \"1.0\" -> \"1.1\""), "{text}");
        new["exit_code"] = json!(3);
        assert!(
            changes(&old, &new)
                .join("\n")
                .contains("exit_code: null -> 3")
        );
    }
}
