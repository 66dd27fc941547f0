//! `cpi run PROVIDER ACTION --batch FILE.jsonl`: one action over many parameter sets.
//!
//! Each non-blank line is a JSON object of parameters (overriding `-p` values, which apply to
//! every line; values from cpi.toml, base URLs, TLS settings and server paths only with
//! `--allow-override`). Lines are read as bytes one at a time as items start: a line that is
//! not UTF-8 is that line's error. Results are JSON lines in input order — `{"line", "ok", "result"}` or
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

use super::{engine, inputs, registry_for, runtime};
use crate::cli::{Global, ParamArgs};

/// One input line: its 1-based number and its parameters (or why it is unusable).
struct Item {
    line: usize,
    params: Result<indexmap::IndexMap<String, String>>,
}

/// How a batch runs.
pub struct Options {
    /// How many items run at once.
    pub parallel: usize,
    /// Whether lines may set what is otherwise the operator's (see `cpi::exposed`).
    pub allow_override: bool,
}

/// The longest line read; a longer one is that line's error (and is skipped, not held).
const MAX_LINE: usize = 1 << 20;

pub fn exec(
    g: &Global,
    provider: &str,
    action: &str,
    args: &ParamArgs,
    file: &Path,
    opts: Options,
) -> Result<ExitCode> {
    if opts.parallel == 0 {
        return Err(Error::validation("--parallel must be at least 1"));
    }
    let lines = Lines::open(file)?;
    let registry = registry_for(g, provider)?;
    let provider = registry.get(provider)?;
    let base = inputs(g, provider, args)?;
    let engine = engine(args)?;
    let known = if provider.component.is_none() {
        let def = provider.action(action)?;
        Some(cpi::params::known_names(provider, def, &base))
    } else {
        None
    };
    // What lines may not change without --allow-override: the values from cpi.toml and the
    // kinds `cpi::exposed` reserves (base URLs, TLS settings, server paths). Lines still
    // override other -p values, which are the same user's defaults for every line.
    let operator = (!opts.allow_override).then(|| base.config.clone());
    let bar = progress_bar(g);
    let rt = runtime()?;
    let mut tally = Tally::default();
    let check = Check {
        known: known.as_ref(),
        operator: operator.as_ref(),
        provider,
    };
    rt.block_on(async {
        // Items finish in any order (a slow one never holds back the start of the next);
        // records are printed in input order as soon as every earlier one is out. Lines are
        // read as the items start, so the input is never held whole.
        let (engine, base, check) = (&engine, &base, &check);
        let results = items(lines, opts.parallel)
            .enumerate()
            .map(|(n, item)| async move { (n, run_item(engine, action, base, check, item).await) })
            .buffer_unordered(opts.parallel);
        let mut results = std::pin::pin!(results);
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
                let record = tally.record(line, outcome);
                // A closed stdout (`| head`) ends the batch quietly rather than with a panic.
                if writeln!(stdout, "{record}")
                    .and_then(|()| stdout.flush())
                    .is_err()
                {
                    break 'out;
                }
                if let Some(bar) = &bar {
                    bar.set_message(format!("{} failed", tally.failed));
                }
            }
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if !g.quiet {
        eprintln!("batch: {} ok, {} failed", tally.ok, tally.failed);
    }
    Ok(match tally.first_failure {
        None => ExitCode::SUCCESS,
        Some(kind) => ExitCode::from(kind.exit_code()),
    })
}

/// A spinner on stderr while the batch runs (only on a terminal, never with -q).
fn progress_bar(g: &Global) -> Option<indicatif::ProgressBar> {
    (std::io::stderr().is_terminal() && !g.quiet).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} [{elapsed_precise}] {msg}")
                .expect("valid template"),
        );
        bar
    })
}

/// The lines that succeeded and failed so far, and the first failure's category (the exit
/// code of the batch).
#[derive(Default)]
struct Tally {
    ok: usize,
    failed: usize,
    first_failure: Option<cpi::ErrorKind>,
}

impl Tally {
    /// The JSON record of one line's outcome, counted.
    fn record(&mut self, line: usize, outcome: Result<Value>) -> Value {
        match outcome {
            Ok(result) => {
                self.ok += 1;
                json!({"line": line, "ok": true, "result": result})
            }
            Err(err) => {
                self.failed += 1;
                self.first_failure.get_or_insert(err.kind());
                json!({"line": line, "ok": false, "error": err.to_json()["error"]})
            }
        }
    }
}

/// The items of `lines`, read on a thread of their own (a read from a pipe blocks) a few
/// ahead of the items running.
fn items(lines: Lines, parallel: usize) -> impl futures_util::Stream<Item = Item> {
    let (tx, rx) = tokio::sync::mpsc::channel(parallel.clamp(1, 1024) * 2);
    std::thread::spawn(move || {
        for item in lines {
            if tx.blocking_send(item).is_err() {
                break;
            }
        }
    });
    stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// What every line is checked against before it runs.
struct Check<'a> {
    /// The names the action can use (declarative providers).
    known: Option<&'a std::collections::BTreeSet<String>>,
    /// The operator's values lines may not change (`None` with --allow-override).
    operator: Option<&'a serde_json::Map<String, Value>>,
    provider: &'a Provider,
}

async fn run_item(
    engine: &Engine,
    action: &str,
    base: &Inputs,
    check: &Check<'_>,
    item: Item,
) -> (usize, Result<Value>) {
    let outcome = async {
        let params = item.params?;
        if let Some(known) = check.known {
            cpi::params::check_unknown(&params, known)?;
        }
        if let Some(operator) = check.operator {
            cpi::exposed::check(
                &params,
                check.provider,
                operator,
                None,
                cpi::exposed::Caller::BatchLine,
            )?;
        }
        let mut inputs = base.clone();
        inputs.cli.extend(params);
        engine.run(check.provider, action, &inputs).await
    };
    (item.line, outcome.await)
}

/// The batch file's items, read one line at a time as bytes (`-` is stdin): a line that is
/// not UTF-8, too long or not a JSON object becomes that item's error; a read error ends the
/// input with one last item saying so.
struct Lines {
    reader: Box<dyn BufRead + Send>,
    name: String,
    number: usize,
    done: bool,
}

impl Lines {
    fn open(file: &Path) -> Result<Lines> {
        let reader: Box<dyn BufRead + Send> = if file == Path::new("-") {
            Box::new(std::io::BufReader::new(std::io::stdin()))
        } else {
            Box::new(std::io::BufReader::new(std::fs::File::open(file).map_err(
                |e| Error::validation(format!("cannot read batch file {}: {e}", file.display())),
            )?))
        };
        Ok(Lines {
            reader,
            name: file.display().to_string(),
            number: 0,
            done: false,
        })
    }

    /// The next line's bytes (without its newline), cut at [`MAX_LINE`]; whether it was cut.
    fn read_line(&mut self) -> std::io::Result<Option<(Vec<u8>, bool)>> {
        let mut line = Vec::new();
        let mut cut = false;
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                return Ok((!line.is_empty() || cut).then_some((line, cut)));
            }
            let (chunk, newline) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (&available[..at], true),
                None => (available, false),
            };
            let room = MAX_LINE.saturating_sub(line.len());
            line.extend_from_slice(&chunk[..chunk.len().min(room)]);
            cut |= chunk.len() > room;
            let used = chunk.len() + usize::from(newline);
            self.reader.consume(used);
            if newline {
                return Ok(Some((line, cut)));
            }
        }
    }
}

impl Iterator for Lines {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        while !self.done {
            self.number += 1;
            let line = self.number;
            let read = self.read_line();
            let at = |why: String| {
                Error::validation(format!("{} line {line}: {why}", self.name))
                    .with_detail("line", line)
            };
            let (bytes, cut) = match read {
                Ok(Some(read)) => read,
                Ok(None) => {
                    self.done = true;
                    break;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Item {
                        line,
                        params: Err(at(format!("cannot read further: {e}"))),
                    });
                }
            };
            let params = if cut {
                Err(at(format!("longer than {MAX_LINE} bytes")))
            } else {
                match std::str::from_utf8(&bytes) {
                    Ok(text) if text.trim().is_empty() => continue,
                    Ok(text) => parse_line(text).map_err(at),
                    Err(e) => Err(at(format!(
                        "not UTF-8 (invalid byte at offset {})",
                        e.valid_up_to()
                    ))),
                }
            };
            return Some(Item { line, params });
        }
        None
    }
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
