//! Runs a command: no shell, no stdin unless given, a timeout that kills the whole process
//! group, and capped output. Only [`super::Gate`] starts processes, and [`crate::install`]
//! runs git through [`run_raw`] to fetch a git source.

use std::process::Stdio;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::group::{Group, Killer, Spawning};
use super::{ErrorRules, Limits, classify_text, excerpt, retry_after_in_text};
use crate::error::{Error, ErrorKind, Result};
use crate::provider::AcceptExit;

/// What a finished command produced.
#[derive(Debug, Clone)]
pub struct ProcessOutput {
    /// Standard output (UTF-8).
    pub stdout: String,
    /// Standard error, possibly truncated to [`Limits::max_stderr`].
    pub stderr: String,
}

/// How to run one command.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'a> {
    /// Program and arguments (no shell).
    pub argv: &'a [String],
    /// Extra environment variables.
    pub env: &'a [(String, String)],
    /// Whether the child inherits cpi's environment (JSON providers: yes; components: no).
    pub inherit_env: bool,
    /// Bytes written to the child's stdin, which is otherwise closed.
    pub stdin: Option<&'a [u8]>,
}

/// What a command produced, whatever its exit status.
#[derive(Debug, Clone)]
pub struct RawOutput {
    /// Exit code (-1 when killed by a signal).
    pub exit_code: i32,
    /// Standard output, at most [`Limits::max_output`] bytes.
    pub stdout: Vec<u8>,
    /// Standard error, truncated to [`Limits::max_stderr`] bytes.
    pub stderr: String,
}

/// What a finished command means: its output, or the error its exit status stands for.
/// Shared by real runs and by fixtures that record an exit status (`cpi test`).
pub fn finish(
    program: &str,
    raw: RawOutput,
    accept: &[AcceptExit],
    errors: &ErrorRules,
) -> Result<ProcessOutput> {
    if raw.exit_code != 0 && !accepted(accept, &raw)? {
        let error = exit_error(program, &raw);
        let stdout = String::from_utf8_lossy(&raw.stdout);
        return Err(errors.apply(error, raw.exit_code, &[&raw.stderr, &stdout]));
    }
    if raw.exit_code != 0 {
        tracing::info!(
            "'{program}' exited with {}: accepted (accept_exit)",
            raw.exit_code
        );
    }
    let stdout = String::from_utf8(raw.stdout).map_err(|err| {
        Error::provider(format!(
            "command '{program}' printed output that is not valid UTF-8 (invalid byte at offset {})",
            err.utf8_error().valid_up_to()
        ))
    })?;
    Ok(ProcessOutput {
        stdout,
        stderr: raw.stderr,
    })
}

/// Whether one of `accept` names this exit code and its regex matches stdout or stderr.
fn accepted(accept: &[AcceptExit], raw: &RawOutput) -> Result<bool> {
    for rule in accept.iter().filter(|a| a.code == raw.exit_code) {
        let re = regex::Regex::new(&rule.when).map_err(|e| {
            Error::validation(format!("accept_exit: invalid regex {:?}: {e}", rule.when))
        })?;
        if re.is_match(&String::from_utf8_lossy(&raw.stdout)) || re.is_match(&raw.stderr) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The categorized error for a failed run: what stderr says, else what stdout says.
fn exit_error(program: &str, raw: &RawOutput) -> Error {
    let text = raw.stderr.trim();
    let stdout = String::from_utf8_lossy(&raw.stdout);
    let stdout = stdout.trim();
    // What explains the failure: stderr, else stdout.
    let (said, on_stdout) = if text.is_empty() {
        (stdout, !stdout.is_empty())
    } else {
        (text, false)
    };
    let kind = classify_text(said);
    let shown = match (said.is_empty(), on_stdout) {
        (true, _) => "(no output)".to_string(),
        (false, true) => format!("(stdout) {}", excerpt(said, 2048)),
        (false, false) => excerpt(said, 2048),
    };
    let how = match raw.exit_code {
        -1 => "was killed by a signal".to_string(),
        code => format!("exited with status {code}"),
    };
    let mut error = Error::new(kind, format!("command '{program}' {how}: {shown}"))
        .with_detail("program", program)
        .with_detail("stderr", excerpt(text, 8192))
        .with_detail("exit_code", raw.exit_code);
    if on_stdout {
        error = error.with_detail("stdout", excerpt(stdout, 8192));
    }
    if let Some(secs) = retry_after_in_text(said) {
        error = error.with_detail("retry_after", secs);
    }
    error
}

/// Runs a command to completion under `limits`; only failures to run it at all, timeouts and
/// output floods are errors.
pub(crate) async fn run_raw(spec: &Spec<'_>, limits: &Limits) -> Result<RawOutput> {
    let (program, args) = spec
        .argv
        .split_first()
        .ok_or_else(|| Error::validation("empty command"))?;
    if spec.argv.iter().any(|a| a.contains('\0')) {
        return Err(Error::validation(format!(
            "an argument of '{program}' contains a NUL byte"
        )));
    }
    let mut cmd = if spec.inherit_env {
        Command::new(program)
    } else {
        // With a cleared environment the child has no PATH, so find the program the way a
        // shell would, on cpi's own PATH.
        let mut cmd = Command::new(find_program(program).unwrap_or_else(|| program.into()));
        cmd.env_clear();
        cmd
    };
    cmd.args(args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    if let Some(bytes) = limits.max_file_bytes {
        // SAFETY: setrlimit(2) is async-signal-safe, and the closure touches nothing else
        // between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let spawning = Spawning::enter();
    let mut child = cmd.spawn().map_err(|err| {
        let why = match err.kind() {
            std::io::ErrorKind::NotFound => "not found (is it installed and on PATH?)".to_string(),
            std::io::ErrorKind::PermissionDenied => {
                "not executable (permission denied)".to_string()
            }
            _ => err.to_string(),
        };
        Error::provider(format!("cannot run program '{program}': {why}"))
            .with_detail("program", program.as_str())
    })?;
    let killer = Killer::of(child.id());
    let registered = Group::register(killer);
    drop(spawning);
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let stdin = child.stdin.take();
    let input = spec.stdin.map(<[u8]>::to_vec);

    let work = async {
        let feed = async {
            if let (Some(mut pipe), Some(bytes)) = (stdin, input) {
                use tokio::io::AsyncWriteExt;
                let _ = pipe.write_all(&bytes).await;
            }
        };
        // Past the stdout cap the command is killed at once: only closing the pipe would
        // leave it running (and holding stderr open) until it notices, if ever. The pipe stays
        // open until the kill has been sent, so the command cannot take a closed pipe as a
        // polite end and go on to its next line.
        let out = async {
            let out = read_capped(&mut stdout, limits.max_output, true).await;
            if out.is_err() {
                killer.kill();
            }
            drop(stdout);
            out
        };
        let (out, err, ()) = tokio::join!(out, read_capped(stderr, limits.max_stderr, false), feed);
        let status = child.wait().await;
        (out, err, status)
    };
    // Past the timeout the group is killed while `work` still holds the pipes, for the same
    // reason as at the cap: nothing in the group may see a closed pipe before the kill.
    let work = std::pin::pin!(work);
    // Bound again after `work`, so dropped before it: should this run be dropped part-way (a
    // client gone, a batch stopped), the group is killed before `work` closes the pipes.
    let group = registered;
    let (out, err, status) = match tokio::time::timeout(limits.timeout, work).await {
        Ok(done) => done,
        Err(_) => {
            group.kill();
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "command '{program}' did not finish within {:?}; its process group was killed",
                    limits.timeout
                ),
            )
            .with_detail("program", program.as_str())
            .with_detail("timeout_secs", limits.timeout.as_secs_f64()));
        }
    };
    if status.is_ok() {
        group.reaped();
    }
    let stdout = match out {
        Ok(bytes) => bytes,
        // The group was killed when the cap was passed.
        Err(Overflow) => {
            return Err(Error::provider(format!(
                "command '{program}' printed more than {} bytes on stdout; it was stopped",
                limits.max_output
            ))
            .with_detail("program", program.as_str())
            .with_detail("limit_bytes", limits.max_output));
        }
    };
    let stderr = String::from_utf8_lossy(&err.unwrap_or_default()).into_owned();
    let status =
        status.map_err(|e| Error::internal(format!("waiting for '{program}' failed: {e}")))?;
    Ok(RawOutput {
        exit_code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    })
}

/// The first executable file named `program` on cpi's `PATH` (programs with a `/` are used as
/// given).
fn find_program(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if program.contains('/') {
        return None;
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

struct Overflow;

/// Reads a pipe to its end keeping at most `cap` bytes; past the cap, either fails (`strict`) or
/// keeps draining so the child never blocks on a full pipe.
async fn read_capped(
    mut pipe: impl AsyncRead + Unpin,
    cap: usize,
    strict: bool,
) -> std::result::Result<Vec<u8>, Overflow> {
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return Ok(kept),
            Ok(n) => n,
        };
        if kept.len() + n > cap {
            if strict {
                return Err(Overflow);
            }
            let room = cap - kept.len();
            kept.extend_from_slice(&buf[..room]);
        } else {
            kept.extend_from_slice(&buf[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    async fn run_accepting(
        spec: &Spec<'_>,
        limits: &Limits,
        accept: &[AcceptExit],
        errors: &ErrorRules,
    ) -> Result<ProcessOutput> {
        let raw = run_raw(spec, limits).await?;
        finish(&spec.argv[0], raw, accept, errors)
    }

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    async fn run(
        argv: &[String],
        env: &[(String, String)],
        limits: &Limits,
    ) -> Result<ProcessOutput> {
        run_accepting(
            &Spec {
                argv,
                env,
                inherit_env: true,
                stdin: None,
            },
            limits,
            &[],
            &ErrorRules::default(),
        )
        .await
    }

    #[tokio::test]
    async fn an_accepted_exit_is_a_result_only_when_the_output_says_so() {
        let accept = [AcceptExit {
            code: 1,
            when: "does not have any snapshots".into(),
        }];
        let script = |body: &str| argv(&["sh", "-c", body]);
        let spec = |argv| Spec {
            argv,
            env: &[],
            inherit_env: true,
            stdin: None,
        };
        let limits = Limits::default();
        let none = script("echo 'This machine does not have any snapshots'; exit 1");
        let out = run_accepting(&spec(&none), &limits, &accept, &ErrorRules::default())
            .await
            .unwrap();
        assert_eq!(
            out.stdout.trim(),
            "This machine does not have any snapshots"
        );
        // The same code for another reason is still a failure, categorized as usual.
        let missing = script("echo 'error: Could not find a registered machine' >&2; exit 1");
        let err = run_accepting(&spec(&missing), &limits, &accept, &ErrorRules::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ResourceNotFound, "{err}");
        // Another code with the accepted text is a failure too.
        let other = script("echo 'This machine does not have any snapshots'; exit 2");
        assert!(
            run_accepting(&spec(&other), &limits, &accept, &ErrorRules::default())
                .await
                .is_err()
        );
        // Without accept_exit nothing changes.
        assert!(
            run_accepting(&spec(&none), &limits, &[], &ErrorRules::default())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_provider_error_rule_categorizes_what_a_real_process_said() {
        let rule: crate::provider::ErrorRule = serde_json::from_value(serde_json::json!(
            {"when": "^error: failed to get domain '", "category": "ResourceNotFoundError"}
        ))
        .unwrap();
        let rules = ErrorRules::compile(&[rule]).unwrap();
        let virsh = argv(&[
            "sh",
            "-c",
            "echo \"error: failed to get domain 'nope'\" >&2; exit 1",
        ]);
        let spec = Spec {
            argv: &virsh,
            env: &[],
            inherit_env: true,
            stdin: None,
        };
        let limits = Limits::default();
        let plain = run_accepting(&spec, &limits, &[], &ErrorRules::default()).await;
        assert_eq!(plain.unwrap_err().kind(), ErrorKind::Provider);
        let err = run_accepting(&spec, &limits, &[], &rules)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ResourceNotFound, "{err}");
        assert_eq!(err.details()["exit_code"], 1);
    }

    #[tokio::test]
    async fn captures_stdout_and_classifies_failures() {
        let out = run(&argv(&["echo", "hello"]), &[], &Limits::default())
            .await
            .unwrap();
        assert_eq!(out.stdout, "hello\n");
        let err = run(
            &argv(&["sh", "-c", "echo 'Error: worker x not found' >&2; exit 4"]),
            &[],
            &Limits::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ResourceNotFound);
        assert_eq!(err.details()["exit_code"], 4);
        let err = run(
            &argv(&["definitely-not-a-program-cpi"]),
            &[],
            &Limits::default(),
        )
        .await
        .unwrap_err();
        assert!(err.message().contains("not found"), "{err}");
    }

    #[tokio::test]
    async fn a_failure_reported_on_stdout_keeps_an_excerpt_of_it() {
        let err = run(
            &argv(&[
                "sh",
                "-c",
                "echo '{\"error\": \"VM web-1 not found\"}'; exit 3",
            ]),
            &[],
            &Limits::default(),
        )
        .await
        .unwrap_err();
        assert!(!err.message().contains("no error output"), "{err}");
        assert!(err.message().contains("VM web-1 not found"), "{err}");
        assert_eq!(err.kind(), ErrorKind::ResourceNotFound, "{err}");
        assert_eq!(
            err.details()["stdout"],
            "{\"error\": \"VM web-1 not found\"}"
        );
        // Capped: a flood on stdout keeps an excerpt.
        let err = run(
            &argv(&["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x; exit 1"]),
            &[],
            &Limits::default(),
        )
        .await
        .unwrap_err();
        let kept = err.details()["stdout"].as_str().unwrap();
        assert!(
            kept.len() < 8300 && kept.ends_with("(100000 bytes in all)"),
            "{kept:.80}"
        );
        assert!(err.message().len() < 2300, "{}", err.message().len());
        // With neither stream, the message says so.
        let err = run(&argv(&["false"]), &[], &Limits::default())
            .await
            .unwrap_err();
        assert!(err.message().ends_with("(no output)"), "{err}");
        assert!(err.details().get("stdout").is_none());
    }

    #[tokio::test]
    async fn timeout_kills_the_process_group() {
        let limits = Limits {
            timeout: Duration::from_millis(300),
            ..Limits::default()
        };
        let started = Instant::now();
        let err = run(&argv(&["sh", "-c", "sleep 30 & sleep 30"]), &[], &limits)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn output_flood_is_capped() {
        let limits = Limits {
            max_output: 1 << 20,
            ..Limits::default()
        };
        let err = run(&argv(&["sh", "-c", "yes flood"]), &[], &limits)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Provider);
        assert!(err.message().contains("more than"), "{err}");
    }
}
