//! The sandbox's limits against the hostile guest (`tests/guests/hostile`): a swallowed denial
//! still fails the run, wall-clock and host-call budgets stop loops on the host, every copy of
//! guest output is capped, control characters and secrets never reach a person raw, and a
//! component has one name in every error.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{Run, World};
use crate::wasm::dummy_component;

/// The exit code of `CapabilityDeniedError`.
const DENIED_EXIT: i32 = 17;

/// A world whose provider directory holds the hostile component, approved (not built in, it
/// must be reviewed before it runs), and the JSON provider `hp` around a copy of it, approved.
fn hostile_world() -> (World, std::path::PathBuf) {
    let (w, dir) = crate::wasm::hostile_world();
    write_hp(&dir);
    w.approve(dir.to_str().unwrap(), &["hostile", "hp"]);
    (w, dir)
}

/// A JSON provider `hp` around (a copy of) the hostile component: `list_workers` runs
/// `echo hello MODE`, and the component's `parse` and `map-status` hooks act on MODE. The copy
/// is hp's own, so `hostile.wasm` stays a standalone provider.
fn write_hp(dir: &Path) {
    std::fs::copy(dir.join("hostile.wasm"), dir.join("hp-guest.wasm")).unwrap();
    let provider = serde_json::json!({
        "name": "hp",
        "type": "command",
        "component": "hp-guest.wasm",
        "actions": {"list_workers": {"target": {"Command": "echo hello {mode}"}, "params": ["mode"]}}
    });
    std::fs::write(dir.join("hp.json"), provider.to_string()).unwrap();
}

/// `cpi --provider-dir DIR ARGS...` with the given extra arguments, timed.
fn cpi(w: &World, dir: &Path, args: &[&str]) -> (Run, Duration) {
    let mut all = vec!["--provider-dir", dir.to_str().unwrap()];
    all.extend(args);
    let started = Instant::now();
    let run = w.cpi(&all);
    (run, started.elapsed())
}

fn message(err: &serde_json::Value) -> &str {
    err["message"].as_str().unwrap_or_default()
}

#[test]
fn a_swallowed_denial_fails_the_run_in_invoke_parse_and_map_status() {
    let (w, dir) = hostile_world();
    let allow = ["--allow-run", "echo hello *"];
    let cases: [(&[&str], &str); 4] = [
        (&["run", "hostile", "swallow-run", "--json"], "\"rm\""),
        (&["run", "hostile", "swallow-http", "--json"], "127.0.0.1:9"),
        (
            &["run", "hp", "list_workers", "-p", "mode=swallow", "--json"],
            "\"rm\"",
        ),
        (
            &[
                "run",
                "hp",
                "list_workers",
                "-p",
                "mode=map-swallow",
                "--json",
            ],
            "\"rm\"",
        ),
    ];
    for (args, says) in cases {
        let args = [args, &allow[..]].concat();
        let (run, _) = cpi(&w, &dir, &args);
        let err = run.err("CapabilityDeniedError");
        assert_eq!(run.code, DENIED_EXIT, "{args:?}");
        assert!(message(&err).contains(says), "{args:?}: {err}");
    }
    // The same hooks without a denial succeed.
    let (run, _) = cpi(
        &w,
        &dir,
        &[
            "run",
            "hp",
            "list_workers",
            "-p",
            "mode=plain",
            "--json",
            "--allow-run",
            "echo hello *",
        ],
    );
    assert_eq!(run.ok()[0]["id"], "w1");
}

#[test]
fn wall_clock_limits_and_host_call_charges_stop_a_guest() {
    let (w, dir) = hostile_world();
    // A spin with fuel to spare: the per-call wall-clock limit stops it.
    let (run, took) = cpi(
        &w,
        &dir,
        &[
            "run",
            "hostile",
            "spin",
            "--json",
            "--wasm-fuel",
            "1000000000000000",
            "--wasm-timeout",
            "1",
        ],
    );
    let err = run.err("TimeoutError");
    assert!(message(&err).contains("--wasm-timeout"), "{err}");
    assert!(took < Duration::from_secs(20), "spin ran {took:?}");

    // Loops on the host at the default budget: each host call is charged.
    for (action, extra) in [
        ("log-loop", &[][..]),
        ("echo-loop", &["--allow-run", "echo hello *"][..]),
    ] {
        let args = [&["run", "hostile", action, "--json"][..], extra].concat();
        let (run, took) = cpi(&w, &dir, &args);
        let err = run.err("TimeoutError");
        assert!(message(&err).contains("--wasm-fuel"), "{action}: {err}");
        eprintln!("{action}: stopped after {took:?}");
        assert!(took < Duration::from_secs(30), "{action} ran {took:?}");
    }

    // Status mapping: bounded in number, and all calls of a run share the run's limit.
    let hp = |mode: &str, extra: &[&str]| {
        let m = format!("mode={mode}");
        let args = [
            &[
                "run",
                "hp",
                "list_workers",
                "-p",
                &m,
                "--json",
                "--allow-run",
                "echo hello *",
            ][..],
            extra,
        ]
        .concat();
        cpi(&w, &dir, &args)
    };
    let (run, _) = hp("statuses", &[]);
    let err = run.err("ProviderError");
    assert!(message(&err).contains("at most 1000"), "{err}");
    let (run, took) = hp("slow-statuses", &["--wasm-run-timeout", "2"]);
    let err = run.err("TimeoutError");
    assert!(message(&err).contains("--wasm-run-timeout"), "{err}");
    assert!(
        took < Duration::from_secs(8),
        "40 slow mappings ran {took:?}"
    );
}

/// Runs the hostile guest's `action` with `flag` at 2 s (and `extra`), killed if it outlives
/// 60 s (a wait the sandbox fails to bound would otherwise hang the test), and checks it ended
/// within a few seconds as the `TimeoutError` naming `flag`.
fn stopped_by(action: &str, flag: &str, extra: &[&str]) {
    let (w, dir) = hostile_world();
    let mut cmd = w.command();
    cmd.args(["--provider-dir", dir.to_str().unwrap()]);
    cmd.args(["run", "hostile", action, "--json", flag, "2"])
        .args(extra);
    let started = Instant::now();
    let measured = crate::support::run_watched(&mut cmd, Duration::from_secs(60), u64::MAX);
    let took = started.elapsed();
    assert!(measured.killed.is_none(), "{action} hung ({took:?})");
    let err = measured.run.err("TimeoutError");
    assert!(message(&err).contains(flag), "{action}: {err}");
    assert!(took < Duration::from_secs(20), "{action} ran {took:?}");
}

/// An hour's `std::thread::sleep`: a WASI clock's pollable, blocked on inside a host call,
/// where the epoch check never runs. The run's limit ends it.
#[test]
fn a_sleep_inside_wasi_ends_at_the_runs_deadline() {
    stopped_by("sleep", "--wasm-run-timeout", &[]);
}

/// A granted command that hangs (`sleep 100`) is killed at the call's deadline, not at the
/// gate's own limit (120 s), and the call ends with its timeout.
#[test]
fn a_granted_command_that_hangs_ends_at_the_calls_deadline() {
    stopped_by(
        "hang-command",
        "--wasm-timeout",
        &["--allow-run", "sleep *"],
    );
}

#[test]
fn guest_output_is_capped_on_every_copy() {
    let (w, dir) = hostile_world();
    // 1 GiB of distinct warnings, shown at every level.
    let (run, _) = cpi(&w, &dir, &["run", "hostile", "log-flood", "--json", "-vvv"]);
    assert_eq!(run.ok()["flooded"], true, "{}", run.stderr.len());
    eprintln!("log flood: {} bytes on stderr", run.stderr.len());
    assert!(
        run.stderr.len() < 256 << 10,
        "{} bytes on stderr",
        run.stderr.len()
    );
    assert!(run.stderr.contains("not shown"), "no notice of the cut");
    // 1,024 denials of 1 MiB arguments: warnings capped, the reported denial cut.
    let (run, _) = cpi(
        &w,
        &dir,
        &["run", "hostile", "deny-flood", "--json", "-vvv"],
    );
    run.err("CapabilityDeniedError");
    eprintln!(
        "denial flood: {} bytes on stderr, {} on stdout",
        run.stderr.len(),
        run.stdout.len()
    );
    assert!(
        run.stderr.len() < 256 << 10,
        "{} bytes on stderr",
        run.stderr.len()
    );
    assert!(
        run.stdout.len() < 64 << 10,
        "{} bytes on stdout",
        run.stdout.len()
    );
}

/// Fails if `text` holds a raw control (C0 but newline, C1, DEL) or bidi character.
fn assert_clean(text: &str, what: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c))
        .collect();
    assert!(bad.is_empty(), "{what}: raw {bad:?} in\n{text}");
}

#[test]
fn terminal_controls_from_a_guest_are_escaped_everywhere() {
    let (w, dir) = hostile_world();
    // A denial naming a hostile program: JSON on stdout (piped) and the error line on stderr.
    let (run, _) = cpi(&w, &dir, &["run", "hostile", "escape-denial"]);
    assert_eq!(run.code, DENIED_EXIT, "{}", run.all_output());
    assert_clean(&run.stdout, "denial JSON");
    assert_clean(&run.stderr, "denial on stderr");
    assert!(
        run.stderr.contains("program: \\u{1b}]0;pwned"),
        "{}",
        run.stderr
    );
    let err = run.err("CapabilityDeniedError");
    assert!(
        err["details"]["program"]
            .as_str()
            .unwrap()
            .starts_with("\u{1b}]0;pwned")
    );

    // A result with controls, as JSON (C1 \u-escaped, same value) and as a table.
    let (run, _) = cpi(&w, &dir, &["run", "hostile", "escape-result", "--json"]);
    assert_clean(&run.stdout, "result JSON");
    assert_eq!(run.ok()["note"], "\u{1b}]0;pwned\u{7}\u{85}");
    let (run, _) = cpi(
        &w,
        &dir,
        &["run", "hostile", "escape-result", "--output", "table"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_clean(&run.stdout, "result table");
    assert!(
        run.stdout.contains("\\u{1b}[2J\\u{9b}31m\\rfake"),
        "{}",
        run.stdout
    );

    // Provider and manifest text in grant, show and grants (files and manifests holding
    // controls are refused when loaded; what is shown is escaped as well).
    for args in [
        &["grant", "hostile", "--output", "table"][..],
        &["grant", "hp", "--all", "--output", "table"],
        &["show", "hp", "--output", "table"],
        &["grant", "hostile", "--all", "--output", "table"],
        &["show", "hostile", "--output", "table"],
        &["grants", "--output", "table"],
        &["grant", "hostile", "--json"],
    ] {
        let (run, _) = cpi(&w, &dir, args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.all_output());
        assert_clean(&run.stdout, &format!("{args:?}"));
        assert_clean(&run.stderr, &format!("{args:?}"));
    }
}

#[test]
fn secrets_never_reach_stderr_from_guest_logs_output_or_denials() {
    let (w, dir) = hostile_world();
    let secret = "s3cr3t-Guest-Qx7Lm2";
    let param = format!("api_key={secret}");
    let (run, _) = cpi(
        &w,
        &dir,
        &[
            "run",
            "hostile",
            "leak-secret",
            "-p",
            &param,
            "--json",
            "-vvv",
        ],
    );
    run.err("CapabilityDeniedError");
    assert!(!run.all_output().contains("Qx7Lm2"), "{}", run.all_output());
    for copy in [
        "params:",
        "stdout params:",
        "stderr params:",
        "capability denied",
    ] {
        assert!(
            run.stderr.contains(copy),
            "no {copy:?} line:\n{}",
            run.stderr
        );
    }
    assert!(run.stderr.contains("[REDACTED]"), "{}", run.stderr);
}

#[test]
fn a_component_is_named_one_way_in_every_error() {
    let (w, dir) = hostile_world();
    std::fs::write(dir.join("trapper.wasm"), dummy_component("0.1.0")).unwrap();
    let tp = serde_json::json!({"name": "tp", "type": "command", "component": "trapper.wasm",
        "actions": {"list_workers": {"target": {"Command": "echo hello"}, "params": []}}});
    std::fs::write(dir.join("tp.json"), tp.to_string()).unwrap();
    // Its manifest cannot load, so it cannot be reviewed: approving it fails, and so does
    // running it, naming it 'tp'.
    let _ = w.cpi(&[
        "--provider-dir",
        dir.to_str().unwrap(),
        "grant",
        "tp",
        "--yes",
    ]);
    // The component calls itself "hostile"; run as "hp" (and "tp"), that is its name.
    let cases: [(&[&str], &str, &str); 4] = [
        (
            &["run", "hp", "invalid-json", "--json"],
            "ProviderError",
            "'hp'",
        ),
        (&["run", "hp", "trap", "--json"], "ProviderError", "'hp'"),
        (
            &["run", "hp", "spin", "--json", "--wasm-fuel", "100000000"],
            "TimeoutError",
            "'hp'",
        ),
        (
            &["run", "tp", "list_workers", "--json"],
            "ProviderError",
            "'tp'",
        ),
    ];
    for (args, code, name) in cases {
        let (run, _) = cpi(&w, &dir, args);
        let err = run.err(code);
        let text = message(&err);
        assert!(
            text.contains(&format!("component {name}")),
            "{args:?}: {err}"
        );
        assert!(
            !text.contains("hostile") && !text.contains("(loading)"),
            "{args:?}: {err}"
        );
    }
}
