//! Files a provider or a user directory hands cpi are read as untrusted: regular files only,
//! opened without blocking, size-capped, never echoed in errors; and they stay in their place
//! (a fixture's `output_file` under its fixture directory, `cpi docs --out DIR` under DIR).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{self, Measured, World};

/// Resident memory a command that reads hostile files may reach (cpi itself needs a few tens
/// of MiB); above it the process is killed and the test fails.
const MAX_KIB: u64 = 256 * 1024;

/// A provider directory inside the world's temp dir holding `files` (name, text).
fn provider_dir(w: &World, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = w.dir.path().join(name);
    for (file, text) in files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `cpi --provider-dir DIR ARGS...`, killed (and failing) past 20 s or `MAX_KIB`.
fn watched(w: &World, dir: &Path, args: &[&str]) -> Measured {
    let mut cmd = w.command();
    cmd.arg("--provider-dir").arg(dir).args(args);
    let measured = support::run_watched(&mut cmd, Duration::from_secs(20), MAX_KIB);
    assert!(
        measured.killed.is_none(),
        "cpi {args:?} was killed: {:?}\n{}",
        measured.killed,
        measured.run.all_output()
    );
    measured
}

fn with_component(name: &str, component: &str) -> String {
    format!(
        r#"{{"name": "{name}", "type": "command", "component": "{component}",
            "actions": {{"get_worker": {{"target": {{"Command": "true"}}}}}}}}"#
    )
}

#[test]
fn a_fifo_as_component_is_refused_at_once_instead_of_hanging_cpi_show() {
    let w = World::new();
    let dir = provider_dir(
        &w,
        "p",
        &[("fifo.json", &with_component("fifo", "fifo.wasm"))],
    );
    let fifo = std::ffi::CString::new(dir.join("fifo.wasm").to_str().unwrap()).unwrap();
    // SAFETY: a valid C string; creates a FIFO nobody will ever write to.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let shown = watched(&w, &dir, &["show", "fifo", "--json"]);
    let err = shown.run.err("ValidationError");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("a FIFO, not a regular file"), "{message}");
}

#[test]
fn dev_zero_as_component_and_a_3_gib_provider_file_cost_neither_time_nor_memory() {
    let w = World::new();
    let dir = provider_dir(
        &w,
        "p",
        &[
            ("zero.json", &with_component("zero", "/dev/zero")),
            ("small.json", &with_component("small", "small.wasm")),
        ],
    );
    // Sparse: 3 GiB of apparent size, no disk blocks.
    let huge = std::fs::File::create(dir.join("huge.json")).unwrap();
    huge.set_len(3 << 30).unwrap();
    let listed = watched(&w, &dir, &["providers", "--json"]);
    let names: Vec<String> = listed
        .run
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(names.contains(&"zero".to_string()) && names.contains(&"small".to_string()));
    assert!(
        listed.run.stderr.contains("huge.json"),
        "{}",
        listed.run.stderr
    );
    assert!(
        listed.run.stderr.contains("over the 4194304-byte limit"),
        "{}",
        listed.run.stderr
    );
    let zero = watched(&w, &dir, &["show", "zero", "--json"]);
    let err = zero.run.err("ValidationError");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("a character device, not a regular file"),
        "{err}"
    );
    let validated = watched(
        &w,
        &dir,
        &[
            "validate",
            "--json",
            dir.join("huge.json").to_str().unwrap(),
        ],
    );
    assert!(
        validated.run.stdout.contains("limit"),
        "{}",
        validated.run.all_output()
    );
    eprintln!(
        "peak RSS: providers {} KiB, show /dev/zero {} KiB, validate 3 GiB {} KiB",
        listed.peak_kib, zero.peak_kib, validated.peak_kib
    );
}

#[test]
fn an_error_about_a_file_never_shows_its_first_bytes() {
    let w = World::new();
    let secret = "SECRET-TOKEN-4f9a1c";
    let dir = provider_dir(
        &w,
        "p",
        &[
            (
                "notwasm.json",
                &with_component("notwasm", "lib/notwasm.wasm"),
            ),
            ("lib/notwasm.wasm", &format!("{secret}\nmore\n")),
        ],
    );
    let shown = watched(&w, &dir, &["show", "notwasm", "--json"]);
    let err = shown.run.err("ValidationError");
    let all = shown.run.all_output();
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("not a WebAssembly component"),
        "{err}"
    );
    // Neither the text nor its bytes in hex (wasmtime's own message quotes `actual=[0x53, ...]`).
    for leak in [secret, "SECR", "0x53", "0x45, 0x43"] {
        assert!(!all.contains(leak), "{leak:?} leaked: {all}");
    }
}

/// A provider whose one action returns its whole output as `all`.
const ECHO: &str = r#"{"name": "echo", "type": "command",
    "actions": {"get_worker": {"target": {"Command": "true"},
        "parse_rules": {"type": "object", "patterns": {"all": {"regex": "(?s)(.*)"}}}}}}"#;

fn fixture(output_file: &str) -> String {
    format!(
        r#"{{"action": "get_worker", "output_file": {}, "expected": {{"all": "x"}}}}"#,
        serde_json::to_string(output_file).unwrap()
    )
}

#[test]
fn a_fixture_output_file_stays_in_its_fixture_directory() {
    let w = World::new();
    let token = "ci-token-7d1e0b2a9c";
    let outside = w.dir.path().join("outside.txt");
    std::fs::write(&outside, format!("TOKEN={token}")).unwrap();
    let dir = provider_dir(
        &w,
        "p",
        &[
            ("echo.json", ECHO),
            (
                "fixtures/echo/absolute.json",
                &fixture("/proc/self/environ"),
            ),
            (
                "fixtures/echo/dotdot.json",
                &fixture("../../../outside.txt"),
            ),
            ("fixtures/echo/link.json", &fixture("link.txt")),
            ("fixtures/echo/dirlink.json", &fixture("sub/outside.txt")),
            ("fixtures/echo/inside.json", &fixture("data/out.txt")),
            ("fixtures/echo/data/out.txt", "x"),
        ],
    );
    let fixtures = dir.join("fixtures/echo");
    std::os::unix::fs::symlink("/proc/self/environ", fixtures.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(w.dir.path(), fixtures.join("sub")).unwrap();
    let mut cmd = w.command();
    cmd.env("CI_TOKEN", token)
        .arg("--provider-dir")
        .arg(&dir)
        .args(["test", "echo", "--json"]);
    let run = support::run(&mut cmd);
    let all = run.all_output();
    assert!(
        !all.contains(token),
        "the token leaked through a diff: {all}"
    );
    assert_eq!(run.code, 1, "{all}");
    let cases = run.json()["echo"].as_array().unwrap().clone();
    let failure = |file: &str| {
        cases
            .iter()
            .find(|c| c["file"].as_str().unwrap().ends_with(file))
            .map(|c| c["failure"].as_str().unwrap_or("").to_string())
            .unwrap()
    };
    assert!(failure("absolute.json").contains("relative path inside the fixture's directory"));
    assert!(failure("dotdot.json").contains("no `..`"));
    assert!(failure("link.json").contains("leads outside the fixture's directory"));
    assert!(failure("dirlink.json").contains("leads outside the fixture's directory"));
    // A file inside the directory is read as before.
    assert_eq!(failure("inside.json"), "");
}

#[test]
fn docs_out_writes_only_under_its_directory() {
    let w = World::new();
    let victim = w.dir.path().join("victim.txt");
    std::fs::write(&victim, "untouched").unwrap();
    let provider = |name: &str| ECHO.replace("\"echo\"", &format!("{name:?}"));
    let dir = provider_dir(
        &w,
        "p",
        &[
            ("up.json", &provider("../escaped")),
            (
                "abs.json",
                &provider(&w.dir.path().join("abs").display().to_string()),
            ),
            ("echo.json", ECHO),
        ],
    );
    let out = w.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // A link planted where a page will be written is replaced, never followed.
    std::os::unix::fs::symlink(&victim, out.join("echo.md")).unwrap();
    let run = w.cpi(&[
        "--provider-dir",
        dir.to_str().unwrap(),
        "docs",
        "--all",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    run.ok();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    assert!(!w.dir.path().join("escaped.md").exists());
    assert!(!w.dir.path().join("abs.md").exists());
    let echo = out.join("echo.md");
    assert!(
        std::fs::symlink_metadata(&echo)
            .unwrap()
            .file_type()
            .is_file()
    );
    assert!(
        std::fs::read_to_string(&echo)
            .unwrap()
            .starts_with("# echo")
    );
    for entry in std::fs::read_dir(&out).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(name.ends_with(".md") && !name.starts_with('.'), "{name}");
    }
}
