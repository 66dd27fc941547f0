//! Approval: a provider that is not built in runs only once approved, pinned to its bytes and
//! its path; what was approved is what is enforced; the review cannot be spoofed.

use std::path::{Path, PathBuf};

use crate::support::World;

/// A provider directory inside the world holding `files` (name → text).
fn provider_dir(w: &World, dir: &str, files: &[(&str, String)]) -> PathBuf {
    let path = w.dir.path().join(dir);
    std::fs::create_dir_all(&path).unwrap();
    for (name, text) in files {
        std::fs::write(path.join(name), text).unwrap();
    }
    path
}

/// A command provider whose `list_workers` runs `command`.
fn command_provider(name: &str, command: &str) -> String {
    serde_json::json!({
        "name": name,
        "type": "command",
        "actions": {"list_workers": {"target": {"Command": command}}}
    })
    .to_string()
}

fn message(err: &serde_json::Value) -> String {
    err["message"].as_str().unwrap_or_default().to_string()
}

fn pd(dir: &Path) -> String {
    dir.display().to_string()
}

#[test]
fn a_provider_from_a_directory_runs_only_after_it_is_approved() {
    let w = World::new();
    let marker = w.dir.path().join("pwned");
    let evil = command_provider("evil", &format!("sh -c 'touch {}'", marker.display()));
    let dir = pd(&provider_dir(&w, "repo/providers", &[("evil.json", evil)]));
    let run = || {
        w.cpi(&[
            "--provider-dir",
            &dir,
            "run",
            "evil",
            "list_workers",
            "--json",
        ])
    };

    let err = run().err("CapabilityDeniedError");
    assert!(message(&err).contains("not approved"), "{err}");
    assert!(message(&err).contains("cpi grant evil"), "{err}");
    assert!(!marker.exists(), "an unapproved provider ran");

    // Other providers are not disturbed by it.
    w.cpi(&[
        "--provider-dir",
        &dir,
        "run",
        "cloudco",
        "list_workers",
        "--json",
    ])
    .ok();

    // `cpi validate` names what the review will highlight.
    let validated = w.cpi(&["validate", &format!("{dir}/evil.json")]);
    assert!(
        validated
            .all_output()
            .contains("arbitrary code: a shell or interpreter"),
        "{}",
        validated.all_output()
    );

    // Looking is not approving: without a terminal and without --yes nothing is approved.
    let look = w.cpi(&["--provider-dir", &dir, "grant", "evil", "-o", "table"]);
    assert_eq!(look.code, 0, "{}", look.all_output());
    assert!(look.stdout.contains("ARBITRARY CODE"), "{}", look.stdout);
    assert!(look.stdout.contains("not approved"), "{}", look.stdout);
    run().err("CapabilityDeniedError");
    assert!(!marker.exists());

    w.approve(&dir, &["evil"]);
    run().ok();
    assert!(marker.exists(), "the approved provider did not run");
}

#[test]
fn an_edit_after_approval_is_refused_even_a_same_size_swap_with_the_old_mtime() {
    let w = World::new();
    let marker = w.dir.path().join("swapped");
    let good = command_provider("swap", "echo hello-from-an-approved-provider-xxxxxx");
    let bad = command_provider("swap", &format!("sh -c 'touch {}'", marker.display()));
    // Pad the shorter file with trailing spaces so both have the same size.
    let size = good.len().max(bad.len());
    let (good, bad) = (format!("{good:<size$}"), format!("{bad:<size$}"));
    let dir = provider_dir(&w, "p", &[("swap.json", good)]);
    let file = dir.join("swap.json");
    let d = pd(&dir);
    w.approve(&d, &["swap"]);
    let ran = w.cpi(&[
        "--provider-dir",
        &d,
        "run",
        "swap",
        "list_workers",
        "--json",
    ]);
    ran.ok();

    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    std::fs::write(&file, &bad).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(std::fs::metadata(&file).unwrap().len() as usize, size);

    let err = w
        .cpi(&[
            "--provider-dir",
            &d,
            "run",
            "swap",
            "list_workers",
            "--json",
        ])
        .err("CapabilityDeniedError");
    let msg = message(&err);
    assert!(msg.contains("changed since you approved it"), "{msg}");
    assert!(msg.contains("+ run  sh -c"), "{msg}");
    assert!(msg.contains("cpi grant swap"), "{msg}");
    assert!(!marker.exists(), "the swapped provider ran");

    // The same approved bytes in another directory are not approved either.
    std::fs::write(
        &file,
        format!("{:<size$}", command_provider("swap", "echo x")),
    )
    .unwrap();
    let elsewhere = provider_dir(&w, "elsewhere", &[]);
    std::fs::copy(&file, elsewhere.join("swap.json")).unwrap();
    w.approve(&d, &["swap"]);
    let err = w
        .cpi(&[
            "--provider-dir",
            &pd(&elsewhere),
            "run",
            "swap",
            "list_workers",
            "--json",
        ])
        .err("CapabilityDeniedError");
    assert!(message(&err).contains("was approved as"), "{err}");
}

#[test]
fn an_approved_provider_gets_only_its_argv_patterns_and_a_scrubbed_environment() {
    let w = World::new();
    let provider = serde_json::json!({
        "name": "envy",
        "type": "command",
        "env": ["ENVY_WANTED"],
        "actions": {"list_workers": {"target": {"Command": "printenv"}}}
    })
    .to_string();
    let d = pd(&provider_dir(&w, "p", &[("envy.json", provider)]));
    w.approve(&d, &["envy"]);
    let out = w
        .command()
        .env("ENVY_WANTED", "yes")
        .env("ENVY_SECRET", "leak-me")
        .env("LD_LIBRARY_PATH", "/nonexistent")
        .args([
            "--provider-dir",
            &d,
            "run",
            "envy",
            "list_workers",
            "--json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("ENVY_WANTED=yes"), "{stdout}");
    assert!(stdout.contains("PATH="), "{stdout}");
    assert!(!stdout.contains("leak-me"), "{stdout}");
    assert!(!stdout.contains("LD_LIBRARY_PATH"), "{stdout}");
    assert!(!stdout.contains("CLOUDCO_API_KEY"), "{stdout}");

    // What is enforced is the approval on disk: narrowed by hand, the command is refused.
    let grant_file = w.dir.path().join("config/cpi/grants/envy.json");
    let mut grant: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&grant_file).unwrap()).unwrap();
    grant["request"]["commands"] = serde_json::json!([]);
    std::fs::write(&grant_file, grant.to_string()).unwrap();
    let err = w
        .cpi(&[
            "--provider-dir",
            &d,
            "run",
            "envy",
            "list_workers",
            "--json",
        ])
        .err("CapabilityDeniedError");
    assert!(message(&err).contains("printenv"), "{err}");
}

#[test]
fn a_provider_in_the_users_own_directory_asks_once_with_a_clear_message() {
    let w = World::new();
    let own = w.dir.path().join("config/cpi/providers");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::write(own.join("mine.json"), command_provider("mine", "echo mine")).unwrap();
    let err = w
        .cpi(&["run", "mine", "list_workers", "--json"])
        .err("CapabilityDeniedError");
    let msg = message(&err);
    assert!(msg.contains("New in this version of cpi"), "{msg}");
    assert!(msg.contains("cpi grant mine"), "{msg}");
    w.cpi(&["grant", "mine", "--yes"]).ok_text();
    w.cpi(&["run", "mine", "list_workers", "--json"]).ok();
}

/// A provider named `name` whose cached `list_regions` answers `{"r": "<answer>"}`.
fn region_provider(name: &str, answer: &str) -> String {
    serde_json::json!({
        "name": name,
        "type": "command",
        "actions": {"list_regions": {"target": {"Command": format!("echo {answer}")},
            "parse_rules": {"type": "object", "patterns": {"r": {"regex": "(\\S+)"}}}}}
    })
    .to_string()
}

#[test]
fn a_cached_result_never_answers_for_another_provider_of_the_same_name() {
    let w = World::new();
    let a = pd(&provider_dir(
        &w,
        "a",
        &[("acme.json", region_provider("acme", "from-A"))],
    ));
    let b = pd(&provider_dir(
        &w,
        "b",
        &[("acme.json", region_provider("acme", "from-B"))],
    ));
    let run = |dir: &str| {
        w.cpi(&[
            "--provider-dir",
            dir,
            "run",
            "acme",
            "list_regions",
            "--json",
        ])
    };
    w.approve(&a, &["acme"]);
    assert_eq!(run(&a).ok()["r"], "from-A");
    assert_eq!(run(&a).ok()["r"], "from-A", "served from the cache");

    // B was never approved: refused exactly as an uncached run is, never A's answer.
    let err = run(&b).err("CapabilityDeniedError");
    assert!(message(&err).contains("cpi grant acme"), "{err}");
    let uncached = w
        .cpi(&[
            "--provider-dir",
            &b,
            "run",
            "acme",
            "list_regions",
            "--json",
            "--refresh",
        ])
        .err("CapabilityDeniedError");
    assert_eq!(err, uncached);

    // Once approved, B runs for real and keeps its own entry.
    w.approve(&b, &["acme"]);
    assert_eq!(run(&b).ok()["r"], "from-B");
    w.approve(&a, &["acme"]);
    assert_eq!(run(&a).ok()["r"], "from-A");
}

#[test]
fn an_edited_or_revoked_provider_is_refused_not_served_from_the_cache() {
    let w = World::new();
    let dir = provider_dir(&w, "p", &[("acme.json", region_provider("acme", "old"))]);
    let d = pd(&dir);
    let run = || {
        w.cpi(&[
            "--provider-dir",
            &d,
            "run",
            "acme",
            "list_regions",
            "--json",
        ])
    };
    w.approve(&d, &["acme"]);
    assert_eq!(run().ok()["r"], "old");

    // Revoked: the cached entry is still there, and still not served.
    w.cpi(&["revoke", "acme"]).ok_text();
    let err = run().err("CapabilityDeniedError");
    assert!(message(&err).contains("not approved"), "{err}");

    // Approved again, then edited: the edit loses the approval, the cache changes nothing.
    w.approve(&d, &["acme"]);
    assert_eq!(run().ok()["r"], "old");
    std::fs::write(dir.join("acme.json"), region_provider("acme", "new")).unwrap();
    let err = run().err("CapabilityDeniedError");
    assert!(
        message(&err).contains("changed since you approved it"),
        "{err}"
    );
}

#[test]
fn a_provider_cannot_name_its_own_destination_in_a_value_a_step_parses() {
    let w = World::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let elsewhere = format!(
        "http://127.0.0.1:{}/x",
        listener.local_addr().unwrap().port()
    );
    // Its pre_exec "discovers" the base URL, and the action sends the user's token there.
    let sneaky = serde_json::json!({
        "name": "sneaky",
        "type": "endpoint",
        "parameters": {"api_token": {"secret": true}},
        "actions": {"list_workers": {
            "pre_exec": [{
                "target": {"Command": format!("printf %s '{{\"api_url\":\"{elsewhere}\"}}'")},
                "parse_rules": {"type": "json", "patterns": {"api_url": {"pointer": "/api_url"}}}
            }],
            "target": {"Endpoint": {
                "url": "{api_url}/servers",
                "method": "Get",
                "headers": {"Authorization": "Bearer {api_token}"}
            }},
            "params": ["api_token"],
            "parse_rules": {"type": "json", "patterns": {"ok": {"pointer": "/ok"}}}
        }}
    })
    .to_string();
    let dir = pd(&provider_dir(&w, "sneaky", &[("sneaky.json", sneaky)]));
    w.cpi(&["--provider-dir", &dir, "grant", "sneaky", "--yes"])
        .ok_text();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "--provider-dir",
            &dir,
            "run",
            "sneaky",
            "list_workers",
            "-p",
            "api_token=SECRET-TOKEN-123",
            "--json",
            "--timeout",
            "2",
            "--attempts",
            "1",
        ];
        args.extend_from_slice(extra);
        w.cpi(&args)
    };
    let err = run(&[]).err("CapabilityDeniedError");
    assert!(message(&err).contains("127.0.0.1"), "{err}");
    assert!(
        listener.accept().is_err(),
        "the token went where the provider pointed it"
    );
    // The same URL given by the user is the user's choice, and is used.
    let given = format!("api_url={elsewhere}");
    let _ = run(&["-p", &given]);
    assert!(listener.accept().is_ok(), "the user's own base URL is used");
}
