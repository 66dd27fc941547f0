//! Defects provider authors reported, each pinned by the behaviour they saw through `cpi`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::support::{World, repo};

/// Writes `providers` (name → JSON text) into a fresh provider directory under the world.
fn provider_dir(w: &World, dir: &str, providers: &[(&str, String)]) -> String {
    let dir = w.dir.path().join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in providers {
        std::fs::write(dir.join(format!("{name}.json")), text).unwrap();
    }
    let dir = dir.display().to_string();
    // Not built in: this user approves them, as a person would with `cpi grant`.
    let names: Vec<&str> = providers.iter().map(|(name, _)| *name).collect();
    w.approve(&dir, &names);
    dir
}

/// A provider whose configure_auth makes an id from a secret-looking (but public) parameter
/// and whose test_auth sends that id to the simulator.
fn token_provider(name: &str, extra: &str) -> String {
    format!(
        r#"{{"name": "{name}", "type": "endpoint", {extra}
        "actions": {{
          "configure_auth": {{
            "target": {{"Command": "printf 'auth_id=root@pam!%s\n' {{token_name}}"}},
            "params": ["token_name"],
            "parse_rules": {{"type": "object", "patterns": {{"auth_id": {{"regex": "auth_id=(\\S+)"}}}}}}
          }},
          "test_auth": {{
            "target": {{"Endpoint": {{"url": "{{api_url}}/auth/check?who={{auth_id}}", "method": "Get",
                        "headers": {{"Authorization": "Bearer {{api_key}}"}}}}}},
            "params": ["api_url", "api_key", "auth_id"],
            "parse_rules": {{"type": "object", "patterns": {{
              "authenticated": {{"regex": "\"authenticated\":\\s*(true|false)", "transform": "boolean"}}}}}}
          }}
        }}}}"#
    )
}

/// 1a, 1c: what a lifecycle step produced reaches the next step unredacted, even when a
/// secret-named parameter's value is part of it; only the report is redacted, and a provider
/// can declare such a parameter not secret.
#[test]
fn lifecycle_steps_pass_values_on_unredacted_and_only_the_report_is_redacted() {
    let w = World::new();
    let dir = provider_dir(
        &w,
        "tok",
        &[
            ("tok", token_provider("tok", "")),
            (
                "tok-public",
                token_provider("tok-public", r#""not_secret": ["token_name"],"#),
            ),
        ],
    );
    let init = |provider: &str| {
        w.cpi(&[
            "--provider-dir",
            &dir,
            "init",
            provider,
            "--json",
            "-p",
            "token_name=cpi-automation",
            "-p",
            &format!("api_key={}", w.token()),
            "-p",
            &format!("api_url={}", w.url()),
        ])
    };

    let run = init("tok");
    let report = run.ok();
    assert_eq!(report["ready"], true, "{report}");
    // What test_auth sent is the real id (before, `root@pam![REDACTED]` went to the server).
    let sent: Vec<String> = w.requests()["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["path"].as_str())
        .filter(|p| p.starts_with("/auth/check"))
        .map(str::to_string)
        .collect();
    assert_eq!(sent, ["/auth/check?who=root%40pam%21cpi-automation"]);
    // What is shown still hides the secret-named value, and the token never shows.
    assert_eq!(
        report["steps"][1]["result"]["auth_id"],
        "root@pam![REDACTED]"
    );
    assert_eq!(report["steps"][2]["result"]["authenticated"], true);
    assert!(!run.all_output().contains(w.token()));

    // Declared not secret: shown as it is.
    let report = init("tok-public").ok();
    assert_eq!(report["ready"], true, "{report}");
    assert_eq!(
        report["steps"][1]["result"]["auth_id"],
        "root@pam!cpi-automation"
    );
}

/// 5: `cpi run P test_auth` fails with AuthenticationError (exit 11) when the parsed result
/// says not authenticated, exactly as `cpi init` decides.
#[test]
fn run_test_auth_that_is_not_authenticated_exits_11() {
    let w = World::new();
    let fixtures = repo().join("tests/fixtures/lifecycle");
    w.approve(fixtures.to_str().unwrap(), &["truenas-auth"]);
    let run = |key: &str| {
        w.cpi(&[
            "--provider-dir",
            fixtures.to_str().unwrap(),
            "run",
            "truenas-auth",
            "test_auth",
            "--json",
            "-p",
            &format!("api_url={}/api/v2.0", w.url()),
            "-p",
            &format!("api_key={key}"),
        ])
    };
    // The simulator answers 200 {"authenticated": false} for a wrong token.
    let bad = run("not-the-token-at-all");
    assert_eq!(bad.code, 11, "{}", bad.all_output());
    let err = bad.err("AuthenticationError");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("not authenticated"),
        "{err}"
    );
    assert_eq!(err["details"]["result"], json!({"authenticated": false}));
    assert!(!bad.all_output().contains("not-the-token-at-all"));
    assert_eq!(run(w.token()).ok(), json!({"authenticated": true}));
}

/// 3: a command that fails with its explanation on stdout keeps a redacted excerpt of it.
#[test]
fn a_failing_command_keeps_its_stdout_redacted() {
    let w = World::new();
    let dir = provider_dir(
        &w,
        "loud",
        &[(
            "loud",
            r#"{"name": "loud", "type": "command", "actions": {"get_worker": {
                "target": {"Command": "sh -c 'printf \"{\\\"error\\\": \\\"key %s is not valid for worker %s\\\"}\\n\" \"$1\" \"$2\"; exit 3' sh {api_key} {worker_id}"},
                "params": ["api_key", "worker_id"]}}}"#
                .to_string(),
        )],
    );
    let run = w.cpi(&[
        "--provider-dir",
        &dir,
        "run",
        "loud",
        "get_worker",
        "--json",
        "-p",
        "api_key=k-Secret-77",
        "-p",
        "worker_id=w-1",
    ]);
    assert_eq!(run.code, 15, "{}", run.all_output());
    let err = run.err("ProviderError");
    let message = err["message"].as_str().unwrap();
    assert!(!message.contains("no error output"), "{message}");
    assert!(
        message.contains("key [REDACTED] is not valid for worker w-1"),
        "{message}"
    );
    assert_eq!(
        err["details"]["stdout"],
        r#"{"error": "key [REDACTED] is not valid for worker w-1"}"#
    );
    assert!(!run.all_output().contains("k-Secret-77"));
}

/// A one-shot HTTP server on loopback answering every request with `response`; counts them.
fn canned_server(response: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 8192];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (format!("http://{addr}"), hits)
}

/// 2: Proxmox answers a missing VM with HTTP 500 and the reason only in the status line: that
/// is a ResourceNotFoundError (exit 12) naming the reason, and a `get_*` is not retried.
#[test]
fn a_500_that_says_does_not_exist_is_not_found_and_not_retried() {
    let w = World::new();
    let (url, hits) = canned_server(
        "HTTP/1.1 500 Configuration file 'nodes/pve/qemu-server/100.conf' does not exist\r\n\
         Content-Type: application/json;charset=UTF-8\r\nContent-Length: 13\r\n\
         Connection: close\r\n\r\n{\"data\":null}",
    );
    let run = w.cpi(&[
        "run",
        "proxmox",
        "get_worker",
        "--json",
        "-p",
        &format!("api_url={url}/api2/json"),
        "-p",
        "worker_id=100",
        "-p",
        "auth_id=root@pam!cpi",
        "-p",
        "api_token_secret=0b5e-secret",
    ]);
    assert_eq!(run.code, 12, "{}", run.all_output());
    let err = run.err("ResourceNotFoundError");
    assert!(
        err["message"].as_str().unwrap().contains(
            "HTTP 500 Configuration file 'nodes/pve/qemu-server/100.conf' does not exist"
        ),
        "{err}"
    );
    assert_eq!(err["details"]["http_status"], 500);
    assert!(err["details"].get("attempts").is_none(), "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "a NotFound is not retried");
}

/// 4: a reader that closes stdout early (`cpi show X | head`) ends cpi quietly: exit 0, no
/// panic, whatever the command and format.
#[test]
fn a_closed_stdout_ends_quietly() {
    let w = World::new();
    let providers = repo().join("providers").display().to_string();
    for args in [
        &["show", "cloudco", "--output", "table"][..],
        &["show", "cloudco", "--json"],
        &["providers", "--output", "yaml"],
        &["schema"],
        &["completions", "bash"],
        &["docs", "cloudco"],
        &["validate", providers.as_str(), "--output", "table"],
        &["run", "cloudco", "list_workers", "--json"],
    ] {
        let mut child = w
            .command()
            .args(args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cpi starts");
        // The reader goes away before cpi writes a byte.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("cpi ends");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
    // And through a real pipeline into `head`.
    let script = format!(
        "'{}' --provider-dir '{}' docs --all | head -n 1",
        crate::support::cpi_bin().display(),
        repo().join("providers").display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

/// 6: only worker (and authentication) results get §6.1 (§6.2) statuses; a disk's,
/// snapshot's or image's status stays as the platform said it, unless the action opts in.
#[test]
fn only_worker_statuses_are_normalized() {
    let w = World::new();
    let dir = provider_dir(
        &w,
        "mixed",
        &[(
            "mixed",
            r#"{"name": "mixed", "type": "command", "actions": {
              "list_disks": {"target": {"Command": "printf '[{\"id\":\"d-1\",\"status\":\"available\"},{\"id\":\"d-2\",\"status\":\"in-use\"}]'"},
                "parse_rules": {"type": "json", "items": "", "patterns": {
                  "id": {"pointer": "/id"}, "status": {"pointer": "/status"}}}},
              "list_images": {"target": {"Command": "printf '[{\"id\":\"i-1\",\"status\":\"READY\"}]'"}},
              "create_snapshot": {"target": {"Command": "printf '{\"id\":\"s-1\",\"status\":\"success\"}'"}},
              "list_workers": {"target": {"Command": "printf '[{\"id\":\"w-1\",\"status\":\"active\"}]'"}},
              "attach_disk": {"normalize_status": true,
                "target": {"Command": "printf '{\"id\":\"w-1\",\"status\":\"RUNNING\"}'"}}}}"#
                .to_string(),
        )],
    );
    let run = |action: &str| w.cpi(&["--provider-dir", &dir, "run", "mixed", action, "--json"]);
    assert_eq!(
        run("list_disks").ok(),
        json!([{"id": "d-1", "status": "available"}, {"id": "d-2", "status": "in-use"}])
    );
    assert_eq!(
        run("list_images").ok(),
        json!([{"id": "i-1", "status": "READY"}])
    );
    assert_eq!(
        run("create_snapshot").ok(),
        json!({"id": "s-1", "status": "success"})
    );
    assert_eq!(
        run("list_workers").ok(),
        json!([{"id": "w-1", "status": "running", "raw_status": "active"}])
    );
    assert_eq!(
        run("attach_disk").ok(),
        json!({"id": "w-1", "status": "running", "raw_status": "RUNNING"})
    );
    // `cpi parse` decides the same way.
    let saved = w.dir.path().join("disks.json");
    std::fs::write(&saved, r#"[{"id":"d-1","status":"available"}]"#).unwrap();
    let parsed: Value = w
        .cpi(&[
            "--provider-dir",
            &dir,
            "parse",
            "mixed",
            "list_disks",
            "--input",
            saved.to_str().unwrap(),
            "--json",
        ])
        .ok();
    assert_eq!(parsed, json!([{"id": "d-1", "status": "available"}]));
}
