//! Running programs through the host.
//!
//! A component cannot start processes itself. [`Command::output`] asks cpi, which checks the
//! program and arguments against the capabilities the user granted (see
//! [`Manifest::command`](crate::Manifest::command)), then runs it with no shell and no
//! inherited environment, under the host's own timeout. A refused command fails with
//! [`ErrorCategory::CapabilityDenied`].
//!
//! ```no_run
//! use cpi_guest_sdk::exec::Command;
//!
//! let out = Command::new("cloudco-cli")
//!     .args(["worker", "describe", "w-1", "--output", "json"])
//!     .output()?
//!     .check()?;
//! println!("{}", out.stdout);
//! # Ok::<(), cpi_guest_sdk::Error>(())
//! ```

use std::time::Duration;

use crate::bindings::{self, WitCommand, WitCommandOutput};
use crate::error::{Error, ErrorCategory, Result};

/// A program to run through the host, built with chained calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    program: String,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    timeout: Option<Duration>,
}

impl Command {
    /// A command running `program` (found on the host's `PATH`) with no arguments, stdin
    /// closed and the host's default timeout.
    pub fn new(program: impl Into<String>) -> Command {
        Command {
            program: program.into(),
            args: Vec::new(),
            stdin: None,
            timeout: None,
        }
    }

    /// Adds one argument, passed as is (there is no shell).
    pub fn arg(mut self, arg: impl Into<String>) -> Command {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments, passed as is.
    pub fn args<I, S>(mut self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Bytes written to the program's standard input (otherwise it is closed).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Command {
        self.stdin = Some(bytes.into());
        self
    }

    /// A shorter timeout than the host's (never a longer one; milliseconds, at most
    /// `u32::MAX`).
    pub fn timeout(mut self, timeout: Duration) -> Command {
        self.timeout = Some(timeout);
        self
    }

    /// The program.
    pub fn get_program(&self) -> &str {
        &self.program
    }

    /// The arguments.
    pub fn get_args(&self) -> &[String] {
        &self.args
    }

    /// Runs the command and returns what it produced, whatever its exit code; fails only if
    /// the host refused or could not run it (not granted, not found, timed out).
    pub fn output(&self) -> Result<Output> {
        let cmd = WitCommand {
            program: self.program.clone(),
            args: self.args.clone(),
            stdin: self.stdin.clone(),
            timeout_ms: self
                .timeout
                .map(|t| u32::try_from(t.as_millis()).unwrap_or(u32::MAX)),
        };
        let WitCommandOutput {
            exit_code,
            stdout,
            stderr,
        } = bindings::run_command(&cmd)?;
        Ok(Output {
            exit_code,
            stdout,
            stderr,
        })
    }

    /// Runs the command and returns its standard output; a non-zero exit becomes an error
    /// naming the program, categorized from its stderr (see [`Output::check`]).
    pub fn run(&self) -> Result<String> {
        let out = self.output()?;
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(out.failure(Some(&self.program)))
        }
    }
}

/// What a finished command produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// The exit code (`-1` when the program was killed by a signal).
    pub exit_code: i32,
    /// Standard output (invalid UTF-8 replaced).
    pub stdout: String,
    /// Standard error, possibly truncated by the host.
    pub stderr: String,
}

impl Output {
    /// Whether the program exited with code 0.
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }

    /// `Ok(self)` on success; otherwise an error whose category is guessed from stderr (or,
    /// when that is empty, stdout) the way cpi does for JSON providers ("not found" →
    /// resource not found, "quota" → quota exceeded, ...; see
    /// [`ErrorCategory::from_error_text`]) and whose message carries the exit code and text.
    pub fn check(self) -> Result<Output> {
        if self.success() {
            Ok(self)
        } else {
            Err(self.failure(None))
        }
    }

    /// The error for a failed run, worded like cpi's own: what stderr says, or when it is
    /// empty what stdout says (some CLIs report failures there), marked as such.
    fn failure(&self, program: Option<&str>) -> Error {
        let stderr = self.stderr.trim();
        let stdout = self.stdout.trim();
        let (text, on_stdout) = if stderr.is_empty() {
            (stdout, !stdout.is_empty())
        } else {
            (stderr, false)
        };
        let how = match self.exit_code {
            -1 => "was killed by a signal".to_string(),
            code => format!("exited with status {code}"),
        };
        let shown = match (text.is_empty(), on_stdout) {
            (true, _) => "(no output)".to_string(),
            (false, true) => format!("(stdout) {}", excerpt(text, 2048)),
            (false, false) => excerpt(text, 2048),
        };
        let what = match program {
            Some(program) => format!("command '{program}'"),
            None => "command".to_string(),
        };
        Error::new(
            ErrorCategory::from_error_text(text),
            format!("{what} {how}: {shown}"),
        )
    }
}

/// At most `max` bytes of `text`, cut on a character boundary and marked (as cpi quotes).
pub(crate) use cpi_contract::excerpt;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_collects_arguments() {
        let cmd = Command::new("cloudco-cli")
            .arg("worker")
            .args(["describe", "w-1"])
            .args(vec![String::from("--output"), String::from("json")])
            .timeout(Duration::from_secs(5));
        assert_eq!(cmd.get_program(), "cloudco-cli");
        assert_eq!(
            cmd.get_args(),
            ["worker", "describe", "w-1", "--output", "json"]
        );
    }

    #[test]
    fn check_categorizes_failures() {
        let ok = Output {
            exit_code: 0,
            stdout: "x".into(),
            stderr: String::new(),
        };
        assert_eq!(ok.clone().check(), Ok(ok));
        let missing = Output {
            exit_code: 4,
            stdout: String::new(),
            stderr: "Error: not found: worker 'w-9'\n".into(),
        };
        let err = missing.check().unwrap_err();
        assert_eq!(err.category, ErrorCategory::ResourceNotFound);
        assert_eq!(
            err.message,
            "command exited with status 4: Error: not found: worker 'w-9'"
        );
        let killed = Output {
            exit_code: -1,
            ..Output::default()
        };
        assert_eq!(
            killed.failure(Some("cloudco-cli")).message,
            "command 'cloudco-cli' was killed by a signal: (no output)"
        );
        // Nothing on stderr: stdout explains the failure (and gives its category).
        let quota = Output {
            exit_code: 1,
            stdout: "{\"error\": \"quota exceeded for instances\"}\n".into(),
            stderr: String::new(),
        };
        let err = quota.check().unwrap_err();
        assert_eq!(err.category, ErrorCategory::QuotaExceeded);
        assert_eq!(
            err.message,
            "command exited with status 1: (stdout) {\"error\": \"quota exceeded for instances\"}"
        );
    }

    #[test]
    #[cfg(not(target_arch = "wasm32"))]
    fn natively_there_is_no_host() {
        let err = Command::new("true").run().unwrap_err();
        assert_eq!(err.category, ErrorCategory::Unsupported);
        assert!(err.message.contains("wasm32-wasip2"), "{}", err.message);
    }

    #[test]
    fn excerpts_cut_on_char_boundaries() {
        assert_eq!(excerpt("héllo", 2), "h… (6 bytes in all)");
        assert_eq!(excerpt("short", 10), "short");
    }
}
