//! Faults below the API: connections reset with no answer, bodies cut short of their
//! `Content-Length`, bodies that are not UTF-8, a server slower than `--timeout`, a CLI that
//! hangs, a CLI that floods its output, a corrupt simulator state file. Each test checks the
//! §10 category, how many attempts were made, and that nothing created before the fault was
//! lost (or created twice).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Run, World, cpi_bin};

fn truenas(w: &World, action: &str, extra: &[&str]) -> crate::support::Run {
    w.truenas(action, extra)
}

/// Creates a TrueNAS pool (a "worker") and returns its id.
fn create_pool(w: &World, name: &str) -> String {
    let pool = truenas(
        w,
        "create_worker",
        &["-p", &format!("name={name}"), "-p", "disk_names=[\"ada0\"]"],
    )
    .ok();
    match &pool["id"] {
        Value::String(id) => id.clone(),
        Value::Number(id) => id.to_string(),
        _ => panic!("no pool id: {pool}"),
    }
}

/// The pool names the simulator holds (read directly, not through cpi).
fn pool_names(w: &World) -> Vec<String> {
    let mut names: Vec<String> = w
        .get("/api/v2.0/pool")
        .as_array()
        .expect("pool list")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

/// How many requests reached the simulator since the log was last cleared.
fn request_count(w: &World) -> u64 {
    w.requests()["count"].as_u64().expect("request count")
}

fn clear_requests(w: &World) {
    let resp = reqwest::blocking::Client::new()
        .delete(format!("{}/_sim/requests", w.url()))
        .bearer_auth(w.token())
        .send()
        .expect("DELETE /_sim/requests");
    assert!(resp.status().is_success());
}

fn clear_faults(w: &World) {
    let resp = reqwest::blocking::Client::new()
        .delete(format!("{}/_sim/faults", w.url()))
        .bearer_auth(w.token())
        .send()
        .expect("DELETE /_sim/faults");
    assert!(resp.status().is_success());
}

/// `details.attempts` of an error (1 when absent: the error came from the first attempt).
fn attempts(err: &Value) -> u64 {
    err["details"]["attempts"].as_u64().unwrap_or(1)
}

#[test]
fn a_reset_connection_is_retried_on_reads_never_on_creates_and_changes_nothing() {
    let w = World::new();
    create_pool(&w, "tank");

    // Every request reset: a read is tried --attempts times, then reported.
    w.set_faults(json!({"reset": true}));
    clear_requests(&w);
    let err = truenas(&w, "list_workers", &["--attempts", "3"]).err("ProviderError");
    assert_eq!(attempts(&err), 3, "{err}");
    assert_eq!(request_count(&w), 3);
    let message = err["message"].as_str().unwrap_or_default();
    assert!(message.contains("connection"), "{err}");

    // One reset: the retry gets through.
    w.set_faults(json!({"reset": 1}));
    clear_requests(&w);
    let list = truenas(&w, "list_workers", &[]).ok();
    assert_eq!(list["datasets"][0]["name"], "tank", "{list}");
    assert_eq!(request_count(&w), 2, "one reset, one answer");

    // A create whose connection is reset is reported, never repeated behind the user's back.
    w.set_faults(json!({"reset": 1}));
    clear_requests(&w);
    let err = truenas(
        &w,
        "create_worker",
        &["-p", "name=lost", "-p", "disk_names=[\"ada1\"]"],
    )
    .err("ProviderError");
    assert_eq!(attempts(&err), 1, "{err}");
    assert_eq!(request_count(&w), 1);
    clear_faults(&w);
    assert_eq!(
        pool_names(&w),
        ["tank"],
        "nothing lost, nothing half-created"
    );
}

#[test]
fn a_truncated_body_is_an_error_and_a_truncated_create_is_not_repeated() {
    let w = World::new();
    let id = create_pool(&w, "tank");

    w.set_faults(json!({"truncate": true}));
    clear_requests(&w);
    let err = truenas(
        &w,
        "get_worker",
        &["-p", &format!("worker_id={id}"), "--attempts", "2"],
    )
    .err("ProviderError");
    assert_eq!(attempts(&err), 2, "{err}");
    assert_eq!(request_count(&w), 2);

    // The server did create the pool, but the answer was cut: one request, one pool.
    w.set_faults(json!({"truncate": 1}));
    clear_requests(&w);
    let err = truenas(
        &w,
        "create_worker",
        &["-p", "name=cut", "-p", "disk_names=[\"ada1\"]"],
    )
    .err("ProviderError");
    assert_eq!(attempts(&err), 1, "{err}");
    assert_eq!(request_count(&w), 1);
    assert_eq!(pool_names(&w), ["cut", "tank"], "created once, tank kept");

    // Once the network behaves, everything reads back.
    clear_faults(&w);
    let pool = truenas(&w, "get_worker", &["-p", &format!("worker_id={id}")]).ok();
    assert_eq!(pool["pool"]["name"], "tank", "{pool}");
}

#[test]
fn a_body_that_is_not_utf8_or_not_json_is_reported_at_once() {
    let w = World::new();
    create_pool(&w, "tank");

    // Deterministic garbage is not retried: the same request would get the same answer.
    w.set_faults(json!({"non_utf8": true}));
    clear_requests(&w);
    let err = truenas(&w, "list_workers", &["--attempts", "3"]).err("ProviderError");
    assert_eq!(attempts(&err), 1, "{err}");
    assert_eq!(request_count(&w), 1);
    assert!(
        err["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not valid UTF-8"),
        "{err}"
    );

    w.set_faults(json!({"malformed": true}));
    clear_requests(&w);
    let err = truenas(&w, "list_workers", &["--attempts", "3"]).err("ProviderError");
    assert_eq!(attempts(&err), 1, "{err}");
    assert_eq!(request_count(&w), 1);

    clear_faults(&w);
    let list = truenas(&w, "list_workers", &[]).ok();
    assert_eq!(list["datasets"][0]["name"], "tank", "{list}");
}

#[test]
fn a_server_slower_than_the_timeout_is_a_timeout_after_every_attempt() {
    let w = World::new();
    create_pool(&w, "tank");
    w.set_faults(json!({"latency_ms": 2500}));
    clear_requests(&w);
    let started = Instant::now();
    let err =
        truenas(&w, "list_workers", &["--timeout", "0.5", "--attempts", "2"]).err("TimeoutError");
    let took = started.elapsed();
    assert_eq!(attempts(&err), 2, "{err}");
    assert_eq!(request_count(&w), 2);
    assert!(
        took < Duration::from_millis(4500),
        "gave up at the timeout, not when the server answered: {took:?}"
    );
    clear_faults(&w);
    assert_eq!(pool_names(&w), ["tank"]);
}

/// A directory put in front of `PATH` whose `cloudco-cli` is `script` (a `/bin/sh` script).
fn fake_cloudco(w: &World, script: &str) -> PathBuf {
    let dir = w.dir.path().join("fake-bin");
    std::fs::create_dir_all(&dir).expect("fake bin dir");
    let path = dir.join("cloudco-cli");
    std::fs::write(&path, format!("#!/bin/sh\n{script}")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// `cpi` with `dir` first on `PATH`.
fn command_with(w: &World, dir: &Path) -> Command {
    let mut cmd = w.command();
    let path = format!(
        "{}:{}:{}",
        dir.display(),
        w.bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env("PATH", path);
    cmd
}

/// Whether process `pid` is gone (or a zombie nobody has reaped yet: it runs no more).
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the parenthesized command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

fn pids_in(file: &Path) -> Vec<u32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().expect("pid"))
        .collect()
}

/// Waits up to 5 s for every process in `pids` to be gone.
fn assert_all_gone(pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pids.iter().all(|&p| process_gone(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<u32> = pids.iter().copied().filter(|&p| !process_gone(p)).collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

fn cloudco_names(w: &World) -> Vec<String> {
    let list = w.cpi(&["run", "cloudco", "list_workers", "--json"]).ok();
    let mut names: Vec<String> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|x| x["name"].as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn a_hanging_cli_is_killed_at_the_timeout_with_its_whole_process_group() {
    let w = World::new();
    w.cpi(&[
        "run",
        "cloudco",
        "create_worker",
        "-p",
        "name=keep",
        "--json",
    ])
    .ok();
    let pids = w.dir.path().join("hang.pids");
    // The CLI and a child of its own both hang; both must go.
    let fake = fake_cloudco(
        &w,
        &format!("sleep 300 &\necho $$ $! >> '{}'\nwait\n", pids.display()),
    );
    let started = Instant::now();
    let run = crate::support::run(command_with(&w, &fake).args([
        "run",
        "cloudco",
        "list_workers",
        "--json",
        "--timeout",
        "2",
        "--attempts",
        "2",
    ]));
    let took = started.elapsed();
    let err = run.err("TimeoutError");
    assert_eq!(attempts(&err), 2, "{err}");
    let pids = pids_in(&pids);
    assert_eq!(
        pids.len(),
        4,
        "two attempts, a CLI and its child each: {pids:?}"
    );
    assert_all_gone(&pids);
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(
        cloudco_names(&w),
        ["keep"],
        "the real CLI still sees the worker"
    );
}

#[test]
fn an_interrupted_cpi_kills_the_command_it_was_running() {
    let w = World::new();
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let pids = w.dir.path().join(format!("interrupted-{signal}.pids"));
        let finished = w.dir.path().join(format!("interrupted-{signal}.finished"));
        // The CLI and a child of its own: both must go with cpi, and the CLI never reaches
        // its last line.
        let fake = fake_cloudco(
            &w,
            &format!(
                "sleep 300 &\necho $$ $! >> '{}'\nwait\ntouch '{}'\n",
                pids.display(),
                finished.display()
            ),
        );
        let mut cpi = command_with(&w, &fake)
            .args([
                "run",
                "cloudco",
                "list_workers",
                "--json",
                "--timeout",
                "60",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cpi starts");
        let started = Instant::now();
        while pids_in(&pids).len() < 2 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the CLI never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe { libc::kill(cpi.id() as i32, signal) };
        let status = cpi.wait().expect("cpi exits");
        let mut said = String::new();
        cpi.stderr.take().unwrap().read_to_string(&mut said).ok();
        // cpi dies of the signal, as it would have without its handler (a shell says 130).
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(signal), "{status:?}: {said}");
        assert!(said.contains("interrupted"), "{said}");
        assert_all_gone(&pids_in(&pids));
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !finished.exists(),
            "the CLI went on after cpi was interrupted"
        );
    }
}

#[test]
fn a_wait_ends_at_its_timeout_even_inside_a_hung_poll_and_kills_the_poll() {
    let w = World::new();
    let pids = w.dir.path().join("poll.pids");
    let fake = fake_cloudco(
        &w,
        &format!("sleep 300 &\necho $$ $! >> '{}'\nwait\n", pids.display()),
    );
    let started = Instant::now();
    let run = crate::support::run(command_with(&w, &fake).args([
        "wait",
        "cloudco",
        "wrk-00000000",
        "--for",
        "running",
        "--wait-timeout",
        "2s",
        "--timeout",
        "60",
        "--json",
    ]));
    let took = started.elapsed();
    let err = run.err("TimeoutError");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no poll answered"),
        "{err}"
    );
    assert!(took < Duration::from_secs(15), "the wait took {took:?}");
    let pids = pids_in(&pids);
    assert_eq!(pids.len(), 2, "a CLI and its child: {pids:?}");
    assert_all_gone(&pids);
}

#[test]
fn a_cli_message_in_a_log_line_cannot_forge_or_rewrite_a_line() {
    let w = World::new();
    // A rate limit (retried, so logged) whose text carries a carriage return, a forged log
    // line and a bidi override.
    let fake = fake_cloudco(
        &w,
        "printf 'rate limit exceeded\\r INFO forged\\n WARN forged line\\342\\200\\256txt' >&2\nexit 1\n",
    );
    let run = crate::support::run(command_with(&w, &fake).args([
        "run",
        "cloudco",
        "list_workers",
        "--json",
        "--attempts",
        "2",
        "-v",
    ]));
    let log: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("attempt 1 of 2"))
        .collect();
    assert_eq!(log.len(), 1, "one retry line: {}", run.stderr);
    let line = log[0];
    assert!(
        line.contains("\\r INFO forged\\n WARN forged line\\u{202e}txt"),
        "escaped in place: {line:?}"
    );
    assert!(
        !run.stderr.contains('\r') && !run.stderr.contains('\u{202e}'),
        "{:?}",
        run.stderr
    );
    assert!(
        !run.stderr
            .lines()
            .any(|l| l.trim_start().starts_with("WARN forged")),
        "{:?}",
        run.stderr
    );
}

/// Runs `cmd` and returns what it printed and its peak resident set size in KiB, read from
/// the kernel's accounting for exactly this child (`wait4`).
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped with wait4, for its rusage"
)]
fn run_measured(cmd: &mut Command) -> (Run, u64) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cpi starts");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut stdout = String::new();
    let _ = out.read_to_string(&mut stdout);
    let stderr = reader.join().expect("stderr reader");
    let pid = i32::try_from(child.id()).expect("pid");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child (not yet reaped: `child` was never waited on).
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let run = Run {
        code,
        stdout,
        stderr,
    };
    (run, u64::try_from(usage.ru_maxrss).unwrap_or(0))
}

#[test]
fn a_cli_printing_a_gibibyte_is_stopped_at_the_cap_and_killed_with_bounded_memory() {
    let w = World::new();
    w.cpi(&[
        "run",
        "cloudco",
        "create_worker",
        "-p",
        "name=keep",
        "--json",
    ])
    .ok();
    let pid_file = w.dir.path().join("flood.pid");
    let finished = w.dir.path().join("flood.finished");
    // Killed at the cap, the script never reaches its last line; merely cut off from its
    // reader (SIGPIPE for `head`), it would.
    let fake = fake_cloudco(
        &w,
        &format!(
            "echo $$ > '{}'\nyes | head -c 1073741824\ntouch '{}'\n",
            pid_file.display(),
            finished.display()
        ),
    );
    // What a normal run costs, for comparison.
    let (_, baseline_kib) =
        run_measured(
            w.command()
                .args(["run", "cloudco", "test_install", "--json"]),
        );

    let started = Instant::now();
    let (run, flood_kib) = run_measured(command_with(&w, &fake).args([
        "run",
        "cloudco",
        "get_worker",
        "-p",
        "worker_id=wrk-00000000",
        "--json",
        "--timeout",
        "60",
        "--attempts",
        "3",
    ]));
    let took = started.elapsed();
    eprintln!("flood: {took:?}, peak RSS {flood_kib} KiB (a normal run: {baseline_kib} KiB)");
    let err = run.err("ProviderError");
    assert_eq!(attempts(&err), 1, "a flood is not retried: {err}");
    let limit = err["details"]["limit_bytes"].as_u64().expect("limit_bytes");
    assert_eq!(limit, 16 << 20, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or_default()
            .contains("printed more than"),
        "{err}"
    );
    assert!(took < Duration::from_secs(20), "{took:?}");
    // Memory: the cap plus the normal footprint, never the gibibyte.
    let limit_kib = limit / 1024;
    assert!(
        flood_kib < baseline_kib + 3 * limit_kib,
        "peak RSS {flood_kib} KiB (a normal run: {baseline_kib} KiB, cap {limit_kib} KiB)"
    );
    assert_all_gone(&pids_in(&pid_file));
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !finished.exists(),
        "the CLI was killed at the cap, not left to finish"
    );
    assert_eq!(cloudco_names(&w), ["keep"]);
}

#[test]
fn a_corrupt_simulator_state_file_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state.json");
    for junk in [
        &b"{\"format\": 1, \"workers\": [{\"id\": \"wrk-1\""[..],
        b"",
        b"\xff\xfe",
    ] {
        std::fs::write(&state, junk).expect("write state");
        let mut child = Command::new(cpi_bin())
            .args(["sim", "--addr", "127.0.0.1:0", "--json", "--state"])
            .arg(&state)
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cpi sim starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().expect("try_wait").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("cpi sim started on a corrupt state file instead of refusing it");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().expect("output");
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        let err = run.err("ValidationError");
        let message = err["message"].as_str().unwrap_or_default();
        assert!(message.contains("corrupt"), "{err}");
        assert!(message.contains(&state.display().to_string()), "{err}");
        assert_eq!(
            std::fs::read(&state).expect("read state"),
            junk,
            "never reset"
        );
    }
}
