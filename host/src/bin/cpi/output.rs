//! Rendering: human-readable text on a terminal, JSON with `--json`; errors as §10.2 JSON.

use std::io::{IsTerminal, Write};

use cpi::Error;
use serde_json::Value;

/// Sets up `tracing` on stderr at the requested verbosity (`RUST_LOG` overrides).
pub fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        (_, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("cpi={level},cpi_sim={level}"))
    });
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .without_time()
        .try_init();
}

/// Prints an error: the §10.2 JSON on stdout with `--json`, a readable line on stderr otherwise.
pub fn print_error(err: &Error, json: bool) {
    if json {
        println!("{}", err.to_json());
        return;
    }
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error[{}]: {}", err.kind().code(), err.message());
    for (key, value) in err.details() {
        let shown = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if key != "stderr" && key != "output_excerpt" {
            let _ = writeln!(stderr, "  {key}: {shown}");
        }
    }
}

/// Prints a JSON value: compact JSON with `--json`, readable text otherwise.
pub fn print_value(value: &Value, json: bool) {
    if json {
        println!("{value}");
    } else {
        print!("{}", render(value));
    }
}

/// Human rendering: objects as `key: value` lines, lists of objects as aligned tables.
pub fn render(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let width = map.keys().map(|k| k.len()).max().unwrap_or(0);
            let mut out = String::new();
            for (key, v) in map {
                match v {
                    Value::Array(items)
                        if !items.is_empty() && items.iter().all(Value::is_object) =>
                    {
                        out.push_str(&format!("{key}:\n"));
                        for line in table(items).lines() {
                            out.push_str(&format!("  {line}\n"));
                        }
                    }
                    _ => out.push_str(&format!("{key:width$}  {}\n", scalar(v))),
                }
            }
            out
        }
        Value::Array(items) if items.iter().all(Value::is_object) => {
            if items.is_empty() {
                "(none)\n".to_string()
            } else {
                table(items)
            }
        }
        other => format!("{}\n", scalar(other)),
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn table(items: &[Value]) -> String {
    let mut columns: Vec<String> = Vec::new();
    for item in items {
        for key in item.as_object().into_iter().flat_map(|m| m.keys()) {
            if !columns.contains(key) {
                columns.push(key.clone());
            }
        }
    }
    let cells: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            columns
                .iter()
                .map(|c| item.get(c).map(scalar).unwrap_or_default())
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
                .max(c.len())
        })
        .collect();
    let line = |row: Vec<String>| {
        let padded: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(columns.iter().map(|c| c.to_uppercase()).collect());
    for row in cells {
        out.push_str(&line(row));
    }
    out
}
