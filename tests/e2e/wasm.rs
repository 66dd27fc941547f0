//! Component providers in the sandbox: a hostile guest's attacks each fail with the right
//! error while cpi survives and the next call succeeds; grants are pinned and bounded.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::support::{World, repo};

/// Builds a guest crate for wasm32-wasip2 (once per test run) and returns the component.
pub fn guest(package: &str, file: &str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<Vec<String>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    let out = repo().join("target/wasm32-wasip2/release").join(file);
    if !built.iter().any(|p| p == package) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(repo())
            .args([
                "build",
                "--quiet",
                "--release",
                "--target",
                "wasm32-wasip2",
                "-p",
                package,
            ])
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "building {package} for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`)"
        );
        built.push(package.to_string());
    }
    assert!(out.is_file(), "{} missing", out.display());
    out
}

/// A world whose provider directory holds the hostile component as `hostile.wasm`.
pub fn hostile_world() -> (World, PathBuf) {
    let w = World::new();
    let dir = w.dir.path().join("components");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(
        guest("cpi-test-hostile-guest", "cpi_test_hostile_guest.wasm"),
        dir.join("hostile.wasm"),
    )
    .unwrap();
    (w, dir)
}

fn run(w: &World, dir: &Path, action: &str, extra: &[&str]) -> crate::support::Run {
    let mut args: Vec<String> = vec![
        "--provider-dir".into(),
        dir.display().to_string(),
        "run".into(),
        "hostile".into(),
        action.into(),
        "--json".into(),
        "--wasm-fuel".into(),
        "300000000".into(),
        "--wasm-memory-mb".into(),
        "64".into(),
        "--timeout".into(),
        "20".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    w.cpi(&args)
}

/// A one-shot HTTP server on `127.0.0.1:PORT` (an origin a guest requests), redirecting
/// elsewhere; it returns how many requests it answered.
pub(crate) fn redirect_server(port: u16, to: String) -> std::thread::JoinHandle<usize> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("port {port} is free for a redirect test: {e}"));
    std::thread::spawn(move || {
        let mut served = 0;
        listener.set_nonblocking(false).unwrap();
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let reply = format!(
                "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(reply.as_bytes());
            served += 1;
        }
        served
    })
}

#[test]
fn hostile_guest_attacks_fail_cleanly_and_the_next_call_succeeds() {
    let (w, dir) = hostile_world();
    let allow = ["--allow-run", "echo hello *"];
    let attacks: &[(&str, &[&str], &str, &str)] = &[
        ("spin", &[], "TimeoutError", "CPU budget"),
        ("alloc-bomb", &[], "ProviderError", "memory"),
        // Rust guests overflow their shadow stack in linear memory first: a trap either way.
        ("recurse", &[], "ProviderError", "trapped"),
        ("run-undeclared", &allow, "CapabilityDeniedError", "\"rm\""),
        (
            "run-outside-grant",
            &allow,
            "CapabilityDeniedError",
            "goodbye",
        ),
        // A bare wildcard never matches an option.
        (
            "run-option",
            &allow,
            "CapabilityDeniedError",
            "--api-url=https://evil.example",
        ),
        ("run-semicolon", &[], "CapabilityDeniedError", "not granted"),
        (
            "http-ungranted",
            &[],
            "CapabilityDeniedError",
            "127.0.0.1:9",
        ),
        ("trap", &[], "ProviderError", "trapped"),
        ("huge-result", &[], "ProviderError", "memory cap"),
        ("invalid-json", &[], "ProviderError", "invalid JSON"),
    ];
    for (attack, extra, code, says) in attacks {
        let out = run(&w, &dir, attack, extra);
        let err = out.err(code);
        assert!(
            err["message"].as_str().unwrap().contains(says),
            "{attack}: {err}"
        );
        // The host survives and the very next call succeeds.
        assert_eq!(
            run(&w, &dir, "ok", &[]).ok(),
            serde_json::json!({"ok": true}),
            "after {attack}"
        );
    }
    // With room to build it, a 20 MiB result still exceeds the 16 MiB result limit.
    let pd = dir.display().to_string();
    let huge = w.cpi(&[
        "--provider-dir",
        &pd,
        "run",
        "hostile",
        "huge-result",
        "--json",
        "--wasm-memory-mb",
        "512",
    ]);
    let err = huge.err("ProviderError");
    assert!(
        err["message"].as_str().unwrap().contains("the limit is"),
        "{err}"
    );
}

#[test]
fn hostile_guest_has_no_files_environment_or_sockets() {
    let (w, dir) = hostile_world();
    let file = run(&w, &dir, "read-file", &[]).ok();
    assert_eq!(file["passwd"], Value::Null, "{file}");
    assert_eq!(file["root_entries"], Value::Null, "{file}");
    let mut cmd = w.command();
    cmd.env("SECRET_TOKEN", "leak-me").args([
        "--provider-dir",
        dir.to_str().unwrap(),
        "run",
        "hostile",
        "read-env",
        "--json",
    ]);
    let env = crate::support::run(&mut cmd).ok();
    assert_eq!(env["vars"], 0, "{env}");
    assert_eq!(run(&w, &dir, "tcp", &[]).ok()["connected"], false);
}

#[test]
fn granted_programs_get_literal_arguments_and_a_scrubbed_environment() {
    let (w, dir) = hostile_world();
    let out = run(&w, &dir, "run-semicolon", &["--allow-run", "echo hello *"]).ok();
    assert_eq!(
        out["stdout"],
        "hello x; touch CANARY $(touch CANARY) `touch CANARY`\n"
    );
    assert!(!w.dir.path().join("CANARY").exists());
    // A one-off grant can never exceed what the manifest requested.
    let err =
        run(&w, &dir, "run-semicolon", &["--allow-run", "echo **"]).err("CapabilityDeniedError");
    assert!(
        err["message"].as_str().unwrap().contains("did not request"),
        "{err}"
    );
}

#[test]
fn redirects_are_followed_only_to_granted_destinations() {
    let (w, dir) = hostile_world();
    let server = redirect_server(27311, format!("{}/instances", w.url()));
    let before = w.requests()["count"].as_u64();
    let err = run(
        &w,
        &dir,
        "http-redirect",
        &["--allow-net", "http://127.0.0.1:27311"],
    )
    .err("CapabilityDeniedError");
    assert!(
        err["message"].as_str().unwrap().contains("redirect"),
        "{err}"
    );
    assert_eq!(server.join().unwrap(), 1);
    assert_eq!(
        w.requests()["count"].as_u64(),
        before,
        "the ungranted destination saw no request"
    );
}

#[test]
fn output_floods_and_terminal_escapes_are_contained() {
    let (w, dir) = hostile_world();
    assert_eq!(run(&w, &dir, "flood-stdout", &[]).ok()["flooded"], true);
    let out = run(&w, &dir, "escape-log", &["-vv"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("visible-text"), "{}", out.stderr);
    assert!(
        !out.stderr.contains('\u{1b}') && !out.stderr.contains('\u{7}'),
        "escapes reached the terminal"
    );
}

#[test]
fn grants_are_stored_pinned_and_lost_when_the_component_changes() {
    let (w, dir) = hostile_world();
    let pd = ["--provider-dir", dir.to_str().unwrap()];
    let show = w
        .cpi(&[&pd[..], &["grant", "hostile", "--json"]].concat())
        .ok();
    assert_eq!(show["requested"]["commands"][0]["program"], "echo");
    assert_eq!(show["granted"]["commands"], serde_json::json!([]));
    // More than requested is refused.
    w.cpi(&[&pd[..], &["grant", "hostile", "--run", "rm **", "--json"]].concat())
        .err("CapabilityDeniedError");
    w.cpi(&[&pd[..], &["grant", "hostile", "--all", "--json"]].concat())
        .ok();
    let listed = w.cpi(&["grants", "--json"]).ok();
    assert_eq!(listed[0]["provider"], "hostile");
    assert_eq!(run(&w, &dir, "run-semicolon", &[]).ok()["exit_code"], 0);

    // Swap the component for a different build: its grants no longer apply, and it says so.
    let path = dir.join("hostile.wasm");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0, 6, 5, b'x', b'-', b'c', b'p', b'i']);
    std::fs::write(&path, bytes).unwrap();
    let err = run(&w, &dir, "run-semicolon", &[]).err("CapabilityDeniedError");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("changed since it was granted"),
        "{err}"
    );

    w.cpi(&["revoke", "hostile", "--json"]).ok();
    assert_eq!(w.cpi(&["grants", "--json"]).ok(), serde_json::json!([]));
}

/// A component generated from the WIT (every function traps), for a given API version: the
/// frozen WIT of a released one (`wit/vX.Y.Z/`), else the current one relabelled.
pub(crate) fn dummy_component(version: &str) -> Vec<u8> {
    let frozen = repo().join(format!("wit/v{version}/provider.wit"));
    let wit = match std::fs::read_to_string(&frozen) {
        Ok(wit) => wit,
        Err(_) => std::fs::read_to_string(repo().join("wit/provider.wit"))
            .unwrap()
            .replace("@0.2.0", &format!("@{version}")),
    };
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve.push_str("provider.wit", &wit).unwrap();
    let world = resolve
        .select_world(&[pkg], Some("provider-component"))
        .unwrap();
    let mut module =
        wit_component::dummy_module(&resolve, world, wit_parser::ManglingAndAbi::Standard32);
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
}

#[test]
fn foreign_versions_non_components_and_trapping_manifests_are_refused_clearly() {
    let w = World::new();
    let dir = w.dir.path().join("components");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("future.wasm"), dummy_component("0.9.0")).unwrap();
    std::fs::write(dir.join("trapper.wasm"), dummy_component("0.1.0")).unwrap();
    std::fs::write(dir.join("junk.wasm"), b"\0asm\x01\0\0\0garbage").unwrap();
    let pd = dir.to_str().unwrap();
    let future = w
        .cpi(&[
            "--provider-dir",
            pd,
            "run",
            "future",
            "get_worker",
            "--json",
        ])
        .err("ValidationError");
    assert!(
        future["message"]
            .as_str()
            .unwrap()
            .contains("cpi:provider@0.9.0"),
        "{future}"
    );
    let trapper = w
        .cpi(&[
            "--provider-dir",
            pd,
            "run",
            "trapper",
            "get_worker",
            "--json",
        ])
        .err("ProviderError");
    assert!(
        trapper["message"].as_str().unwrap().contains("trapped"),
        "{trapper}"
    );
    let junk = w
        .cpi(&["--provider-dir", pd, "run", "junk", "get_worker", "--json"])
        .err("ValidationError");
    assert!(
        junk["message"]
            .as_str()
            .unwrap()
            .contains("not a valid WebAssembly component"),
        "{junk}"
    );
}

/// The Rust SDK example, run through `cpi run` exactly like the JSON provider it mirrors.
#[test]
fn rust_example_component_runs_like_its_json_provider() {
    let wasm = guest("cpi-example-rust-cloudco", "cpi_example_rust_cloudco.wasm");
    crate::guests::runs_like_its_json_provider("cloudco-wasm", &Ok(wasm));
}

/// `cpi show` reads a standalone component's manifest and the definition it carries.
#[test]
fn show_presents_a_component_provider() {
    let w = World::new();
    let dir = w.dir.path().join("components");
    std::fs::create_dir(&dir).unwrap();
    let wasm = guest("cpi-example-rust-cloudco", "cpi_example_rust_cloudco.wasm");
    std::fs::copy(wasm, dir.join("cloudco-wasm.wasm")).unwrap();
    let shown = w
        .cpi(&[
            "--provider-dir",
            dir.to_str().unwrap(),
            "show",
            "cloudco-wasm",
            "--json",
        ])
        .ok();
    assert_eq!(
        shown["component"]["invokes"],
        serde_json::json!(["get_worker", "count_workers", "fetch_workers"])
    );
    assert_eq!(
        shown["component"]["requested"]["commands"][0]["program"],
        "cloudco-cli"
    );
    assert_eq!(
        shown["component"]["requested"]["http"],
        serde_json::json!(["http://127.0.0.1:8787/instances"]),
        "{shown}"
    );
    assert!(shown["actions"].get("create_worker").is_some(), "{shown}");
}

/// One cpi runs a component built against the frozen `cpi:provider@0.1.0` (the hostile guest,
/// `wit/v0.1.0/`) and one built against 0.2.0 (the Rust example, through the guest SDK) from
/// the same provider directory: each refused what it was not granted, each runs what it was,
/// and `cpi show` says which version each was built for and what the 0.2.0 one declares.
#[test]
fn frozen_0_1_0_and_current_0_2_0_components_run_side_by_side() {
    let (w, dir) = hostile_world();
    let wasm = guest("cpi-example-rust-cloudco", "cpi_example_rust_cloudco.wasm");
    std::fs::copy(wasm, dir.join("cloudco-wasm.wasm")).unwrap();
    let pd = dir.to_str().unwrap();
    let show = |name: &str| {
        w.cpi(&["--provider-dir", pd, "show", name, "--json"]).ok()["component"].clone()
    };
    let frozen = show("hostile");
    assert_eq!(frozen["api_version"], "0.1.0");
    // Built without the guest SDK: no version stamp.
    assert_eq!(frozen["sdk"], Value::Null, "{frozen}");
    let current = show("cloudco-wasm");
    assert_eq!(current["api_version"], "0.2.0");
    assert_eq!(
        current["sdk"],
        concat!("cpi-guest-sdk ", env!("CARGO_PKG_VERSION")),
        "{current}"
    );
    assert_eq!(current["env"][0]["name"], "CLOUDCO_API_URL", "{current}");
    assert_eq!(
        current["parameters"]["worker_id"]["pattern"], "[a-z0-9][a-z0-9-]*",
        "{current}"
    );

    // Nothing granted: both versions' host calls are refused.
    run(&w, &dir, "ok", &[]).ok();
    run(&w, &dir, "run-semicolon", &[]).err("CapabilityDeniedError");
    let cloudco = |args: &[&str]| {
        w.cpi(
            &[
                &["--provider-dir", pd, "run", "cloudco-wasm"][..],
                args,
                &["--json"],
            ]
            .concat(),
        )
    };
    cloudco(&["test_install"]).err("CapabilityDeniedError");

    // Granted: both run, in the same cpi.
    let echo = run(&w, &dir, "run-semicolon", &["--allow-run", "echo hello *"]).ok();
    assert_eq!(echo["exit_code"], 0, "{echo}");
    w.cpi(&[
        "--provider-dir",
        pd,
        "grant",
        "cloudco-wasm",
        "--all",
        "--env",
        "CLOUDCO_API_URL",
        "--env",
        "CLOUDCO_API_KEY",
        "--json",
    ])
    .ok();
    assert_eq!(cloudco(&["test_install"]).ok()["version"], "1.4.2");
    let grant = w
        .cpi(&["--provider-dir", pd, "grant", "cloudco-wasm", "--json"])
        .ok();
    assert_eq!(
        grant["requested_env"][1]["name"], "CLOUDCO_API_KEY",
        "{grant}"
    );
    assert_eq!(
        grant["env"],
        serde_json::json!(["CLOUDCO_API_URL", "CLOUDCO_API_KEY"])
    );
    assert_eq!(
        grant["parameters"]["worker_id"]["type"], "string",
        "{grant}"
    );
}
