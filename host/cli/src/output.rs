//! Rendering: tables on a terminal, JSON when piped, or what `--output` asks for; errors as
//! §10.2 JSON (or YAML) on stdout in those formats. Colour only on a terminal, never with
//! `NO_COLOR` (anstream strips the styles otherwise). Everything rendered goes through
//! [`cpi::escape`]: table cells and error lines escape control characters visibly (on a
//! terminal or not), JSON output `\u`-escapes what `serde_json` leaves raw (C1, DEL, bidi).

use std::io::{IsTerminal, Write};

use anstyle::{AnsiColor, Style};
use cpi::{Error, escape};
use serde_json::Value;

use crate::cli::{Global, OutputFormat};

/// A success verdict (`ok`).
pub const GOOD: Style = AnsiColor::Green.on_default().bold();
/// A failure verdict (`FAILED`, `error`).
pub const BAD: Style = AnsiColor::Red.on_default().bold();
/// A warning.
pub const WARN: Style = AnsiColor::Yellow.on_default();

/// `text` in `style` (stripped again by `anstream` where colour is off).
pub fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

/// How stdout is written, decided once from the flags by [`configure`] and kept in
/// [`Global::settings`]: every printer is given it, none reads a global.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    /// The stdout format.
    pub format: OutputFormat,
    /// Whether the user asked for it (`--output`, `--json`) rather than a pipe implying it.
    pub explicit: bool,
}

/// Resolves `--output` and `--json` (default: a table on a terminal, JSON when stdout is
/// piped) into `g.settings`. Afterwards `g.output` is set and `g.json` is true whenever
/// stdout gets JSON or YAML, so commands pick "machine" or "human" with one flag and
/// [`print_machine`] picks the syntax.
pub fn configure(g: &mut Global) {
    let chosen = if g.json {
        Some(OutputFormat::Json)
    } else {
        g.output
    };
    let format = chosen.unwrap_or(if std::io::stdout().is_terminal() {
        OutputFormat::Table
    } else {
        OutputFormat::Json
    });
    g.output = Some(format);
    g.json = format != OutputFormat::Table;
    g.settings = Settings {
        format,
        explicit: chosen.is_some(),
    };
}

/// Writes to stdout, flushed: as it is, or (`styled`) through `anstream`, which strips the
/// colours of [`paint`] where colour is off. A reader that closed early (`cpi show X | head`)
/// ends cpi quietly with exit code 0, as it does `rg`: the reader had all it wanted and
/// nothing failed. Any other write error (a full disk) is reported on stderr with the
/// `InternalError` exit code. Commands print through [`out!`], [`outln!`] and
/// [`outln_styled!`], never `print!`, which panics on a closed pipe.
pub fn write_out(args: std::fmt::Arguments<'_>, styled: bool) {
    let written = if styled {
        let mut stdout = anstream::stdout().lock();
        stdout.write_fmt(args).and_then(|()| stdout.flush())
    } else {
        let mut stdout = std::io::stdout().lock();
        stdout.write_fmt(args).and_then(|()| stdout.flush())
    };
    check_written(written);
}

/// Writes `bytes` to stdout in one call, as they are (already escaped), with
/// [`write_out`]'s handling of a closed or failing stdout.
pub fn write_bytes(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    check_written(stdout.write_all(bytes).and_then(|()| stdout.flush()));
}

/// Output held back until it is complete, so that an error part-way prints only the error:
/// in memory up to [`Held::IN_MEMORY`] bytes, then in an unlinked temporary file, so a long
/// result costs no memory (the kernel copies it to stdout).
#[derive(Default)]
pub struct Held {
    memory: Vec<u8>,
    file: Option<std::io::BufWriter<std::fs::File>>,
}

impl Held {
    /// What is kept in memory before the rest goes to a temporary file.
    const IN_MEMORY: usize = 1 << 20;

    /// Writes everything held to stdout, with [`write_out`]'s handling of a closed or
    /// failing stdout.
    pub fn release(self) {
        let Some(file) = self.file else {
            return write_bytes(&self.memory);
        };
        let copied = file
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)
            .and_then(|mut file| {
                use std::io::Seek;
                file.rewind()?;
                let mut stdout = std::io::stdout().lock();
                std::io::copy(&mut file, &mut stdout)?;
                stdout.flush()
            });
        check_written(copied);
    }
}

impl Write for Held {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.file.is_none() && self.memory.len() + buf.len() > Self::IN_MEMORY {
            // Where no temporary file can be made, it all stays in memory.
            if let Ok(file) = tempfile::tempfile() {
                let mut file = std::io::BufWriter::with_capacity(1 << 16, file);
                file.write_all(&std::mem::take(&mut self.memory))?;
                self.file = Some(file);
            }
        }
        match &mut self.file {
            Some(file) => file.write(buf),
            None => self.memory.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

/// Whether stdout gets JSON (not YAML, not a table).
pub fn is_json(g: &Global) -> bool {
    g.settings.format == OutputFormat::Json
}

fn check_written(written: std::io::Result<()>) {
    if let Err(err) = written {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        let _ = writeln!(std::io::stderr(), "cpi: cannot write to stdout: {err}");
        std::process::exit(i32::from(cpi::ErrorKind::Internal.exit_code()));
    }
}

/// `print!` through [`write_out`]: the text as it is, quiet on a closed stdout.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!($($arg)*), false)
    };
}

/// `println!` through [`write_out`]: the text as it is, quiet on a closed stdout.
macro_rules! outln {
    () => {
        $crate::output::write_out(format_args!("\n"), false)
    };
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*)), false)
    };
}

/// `anstream::println!` through [`write_out`]: for lines with [`paint`]ed verdicts.
macro_rules! outln_styled {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*)), true)
    };
}

pub(crate) use {out, outln, outln_styled};

/// Prints a value for machines: JSON (one line) with no raw control, bidi or invisible
/// format character (see [`escape::json`]), or YAML with `--output yaml` (whose emitter
/// escapes C0 and C1 characters itself).
pub fn print_machine(g: &Global, value: &Value) {
    machine(&g.settings, value);
}

/// [`print_machine`] with the settings alone (for an error after the command is gone).
fn machine(settings: &Settings, value: &Value) {
    let json = || escape::json(&value.to_string()).into_owned();
    match settings.format {
        OutputFormat::Yaml => match serde_norway::to_string(value) {
            Ok(yaml) => out!("{yaml}"),
            Err(_) => outln!("{}", json()),
        },
        _ => outln!("{}", json()),
    }
}

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
        .with_writer(|| LogLines)
        .with_ansi(ansi)
        .without_time()
        .try_init();
}

/// Where log events go: stderr, one line per event, with what the logger leaves raw in the
/// text it logs (line breaks, carriage returns, bidi and invisible characters from CLIs,
/// servers and guests) escaped, so a logged message cannot forge or rewrite another line.
struct LogLines;

impl Write for LogLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The logger writes each event whole, in one call.
        let event = String::from_utf8_lossy(buf);
        let (body, end) = match event.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (&*event, ""),
        };
        let mut stderr = std::io::stderr().lock();
        stderr.write_all(escape::log_line(body).as_bytes())?;
        stderr.write_all(end.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Prints an error: the §10.2 shape on stdout for machines (`json`), and a readable line on
/// stderr for people, unless they asked for a machine format themselves.
pub fn print_error(settings: &Settings, err: &Error, json: bool) {
    if json {
        machine(settings, &err.to_json());
        if settings.explicit {
            return;
        }
    }
    // Messages and details carry text from providers, CLIs, servers and guests: escaped here
    // whether stderr is a terminal or not (anstream only strips 7-bit escapes, and only
    // when it is not).
    let mut stderr = anstream::stderr().lock();
    let _ = writeln!(
        stderr,
        "{}: {}",
        paint(BAD, &format!("error[{}]", err.kind().code())),
        escape::text(err.message())
    );
    for (key, value) in err.details() {
        let shown = match value {
            Value::String(s) => escape::line(s).into_owned(),
            other => escape::json(&other.to_string()).into_owned(),
        };
        // Output excerpts are in the message already.
        if !matches!(
            key.as_str(),
            "stderr" | "stdout" | "output_excerpt" | "result"
        ) {
            let _ = writeln!(stderr, "  {}: {shown}", escape::line(key));
        }
    }
}

/// Prints a JSON value: for machines when stdout gets JSON or YAML (see [`print_machine`]),
/// readable text otherwise.
pub fn print_value(g: &Global, value: &Value) {
    if g.json {
        print_machine(g, value);
    } else {
        out!("{}", render(value));
    }
}

/// Human rendering: objects as `key: value` lines, lists of objects as aligned tables.
pub fn render(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let width = map
                .keys()
                .map(|k| escape::line(k).chars().count())
                .max()
                .unwrap_or(0);
            let mut out = String::new();
            for (key, v) in map {
                let key = escape::line(key);
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

/// One value as a table cell or `key: value` line, escaped (see [`escape::line`]).
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => escape::line(s).into_owned(),
        Value::Null => "-".into(),
        other => escape::line(&other.to_string()).into_owned(),
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
    let columns: Vec<String> = columns
        .iter()
        .map(|c| escape::line(c).into_owned())
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
                .max(c.chars().count())
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
