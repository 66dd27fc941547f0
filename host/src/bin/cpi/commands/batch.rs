//! `cpi run PROVIDER ACTION --batch FILE.jsonl`: one action over many parameter sets.
//!
//! Each non-blank line is a JSON object of parameters (overriding `-p` values, which apply to
//! every line). Results are JSON lines in input order — `{"line", "ok", "result"}` or
//! `{"line", "ok": false, "error": <§10.2>}` — and one item's failure never stops the others.
//! Items run `--parallel` at a time through one engine, so a rate limit met by one holds back
//! all of them (see `cpi::throttle`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use futures_util::stream::{self, StreamExt};
use serde_json::{Value, json};

use cpi::params::Inputs;
use cpi::{Engine, Error, Provider, Result};

use super::{engine, inputs, registry, runtime};
use crate::cli::{Global, ParamArgs};

/// One input line: its 1-based number and its parameters (or why it is unusable).
struct Item {
    line: usize,
    params: Result<indexmap::IndexMap<String, String>>,
}

pub fn exec(
    g: &Global,
    provider: &str,
    action: &str,
    args: &ParamArgs,
    file: &Path,
    parallel: usize,
) -> Result<ExitCode> {
    if parallel == 0 {
        return Err(Error::validation("--parallel must be at least 1"));
    }
    let items = read_items(file)?;
    let registry = registry(g)?;
    let provider = registry.get(provider)?;
    let base = inputs(g, &provider.name, args)?;
    let engine = engine(args)?;
    let known = if provider.component.is_none() {
        let def = provider.action(action)?;
        Some(cpi::params::known_names(provider, def, &base))
    } else {
        None
    };
    let bar = (std::io::stderr().is_terminal() && !g.quiet).then(|| {
        let bar = indicatif::ProgressBar::new(items.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {pos}/{len} [{elapsed_precise}] {wide_bar} {msg}",
            )
            .expect("valid template"),
        );
        bar
    });
    let rt = runtime()?;
    let (mut ok, mut failed, mut first_failure) = (0usize, 0usize, None);
    rt.block_on(async {
        // Items finish in any order (a slow one never holds back the start of the next);
        // records are printed in input order as soon as every earlier one is out.
        let (engine, base, known) = (&engine, &base, known.as_ref());
        let mut results = stream::iter(items.into_iter().enumerate())
            .map(|(n, item)| async move {
                (
                    n,
                    run_item(engine, provider, action, base, known, item).await,
                )
            })
            .buffer_unordered(parallel);
        let mut pending = std::collections::BTreeMap::new();
        let mut next = 0;
        let mut stdout = std::io::stdout().lock();
        'out: while let Some((n, (line, outcome))) = results.next().await {
            if let Some(bar) = &bar {
                bar.inc(1);
            }
            pending.insert(n, (line, outcome));
            while let Some((line, outcome)) = pending.remove(&next) {
                next += 1;
                let record = match outcome {
                    Ok(result) => {
                        ok += 1;
                        json!({"line": line, "ok": true, "result": result})
                    }
                    Err(err) => {
                        failed += 1;
                        first_failure.get_or_insert(err.kind());
                        json!({"line": line, "ok": false, "error": err.to_json()["error"]})
                    }
                };
                // A closed stdout (`| head`) ends the batch quietly rather than with a panic.
                if writeln!(stdout, "{record}")
                    .and_then(|()| stdout.flush())
                    .is_err()
                {
                    break 'out;
                }
                if let Some(bar) = &bar {
                    bar.set_message(format!("{failed} failed"));
                }
            }
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if !g.quiet {
        eprintln!("batch: {ok} ok, {failed} failed");
    }
    Ok(match first_failure {
        None => ExitCode::SUCCESS,
        Some(kind) => ExitCode::from(kind.exit_code()),
    })
}

async fn run_item(
    engine: &Engine,
    provider: &Provider,
    action: &str,
    base: &Inputs,
    known: Option<&std::collections::BTreeSet<String>>,
    item: Item,
) -> (usize, Result<Value>) {
    let outcome = async {
        let params = item.params?;
        if let Some(known) = known {
            cpi::params::check_unknown(&params, known)?;
        }
        let mut inputs = base.clone();
        inputs.cli.extend(params);
        engine.run(provider, action, &inputs).await
    };
    (item.line, outcome.await)
}

/// Reads the batch file (`-` is stdin); a bad line becomes that item's error.
fn read_items(file: &Path) -> Result<Vec<Item>> {
    let cannot = |e: std::io::Error| {
        Error::validation(format!("cannot read batch file {}: {e}", file.display()))
    };
    let reader: Box<dyn BufRead> = if file == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(file).map_err(cannot)?,
        ))
    };
    let mut items = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(cannot)?;
        if line.trim().is_empty() {
            continue;
        }
        items.push(Item {
            line: n + 1,
            params: parse_line(&line).map_err(|why| {
                Error::validation(format!("{} line {}: {why}", file.display(), n + 1))
                    .with_detail("line", n + 1)
            }),
        });
    }
    Ok(items)
}

fn parse_line(line: &str) -> std::result::Result<indexmap::IndexMap<String, String>, String> {
    let value: Value =
        serde_json::from_str(line).map_err(|e| format!("not a JSON object ({e})"))?;
    let Value::Object(map) = value else {
        return Err("expected a JSON object of parameters, e.g. {\"name\": \"web-1\"}".into());
    };
    map.into_iter()
        .map(|(k, v)| match v {
            Value::Object(_) | Value::Array(_) => Err(format!(
                "parameter '{k}' must be a string, number or boolean"
            )),
            other => Ok((k, cpi::params::value_to_param(&other))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse_line;

    #[test]
    fn lines_are_flat_objects_of_scalars() {
        let p = parse_line(r#"{"name": "web-1", "count": 2, "public": true}"#).unwrap();
        assert_eq!(p["name"], "web-1");
        assert_eq!(p["count"], "2");
        assert_eq!(p["public"], "true");
        assert!(parse_line("[1]").unwrap_err().contains("JSON object"));
        assert!(parse_line("{\"a\": [1]}").unwrap_err().contains("'a'"));
        assert!(
            parse_line("{oops")
                .unwrap_err()
                .contains("not a JSON object")
        );
    }
}
