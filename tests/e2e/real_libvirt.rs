//! The shipped libvirt provider against the real `virsh` (Debian `libvirt-clients`) and
//! libvirt's built-in test driver: no daemon, no KVM. `.ci/run` installs virsh; without it
//! (and without `CI` set) each test prints `SKIPPED: ...`.
//!
//! The driver loads `tests/fixtures/realcli/libvirt-node.xml` afresh for every virsh process,
//! and each cpi action is one process, so a state change lasts for that action only: the tests
//! check what virsh answers to each action from the fixture's state.

use serde_json::Value;

use crate::support::{Run, World, real_cli_available, repo};

const HINT: &str = "apt-get install libvirt-clients";

/// `-p libvirt_uri=test:///ABS/node.xml`: the test driver on the fixture host.
fn uri() -> String {
    let node = repo().join("tests/fixtures/realcli/libvirt-node.xml");
    format!("libvirt_uri=test://{}", node.display())
}

/// `cpi run libvirt ACTION --json -p libvirt_uri=... [-p k=v ...]`.
fn virsh(w: &World, action: &str, params: &[(&str, &str)]) -> Run {
    let mut args: Vec<String> = vec![
        "run".into(),
        "libvirt".into(),
        action.into(),
        "--json".into(),
        "-p".into(),
        uri(),
    ];
    for (k, v) in params {
        args.push("-p".into());
        args.push(format!("{k}={v}"));
    }
    w.cpi(&args)
}

fn row<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .expect("a list")
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no row named {name:?} in {list}"))
}

#[test]
fn real_virsh_reports_its_version_and_the_test_connection() {
    if !real_cli_available("virsh", HINT) {
        return;
    }
    let w = World::new();
    let version = virsh(&w, "test_install", &[]).ok();
    assert!(
        version["version"].as_str().is_some_and(|v| v.contains('.')),
        "{version}"
    );
    let auth = virsh(&w, "test_auth", &[]).ok();
    assert_eq!(auth["authenticated"], true, "{auth}");
    assert!(
        auth["uri"]
            .as_str()
            .is_some_and(|u| u.starts_with("test://")),
        "{auth}"
    );
}

#[test]
fn real_virsh_list_keeps_a_domain_name_with_a_space_whole() {
    if !real_cli_available("virsh", HINT) {
        return;
    }
    let w = World::new();
    let list = virsh(&w, "list_workers", &[]).ok();
    assert_eq!(list.as_array().map(Vec::len), Some(4), "{list}");
    let web = row(&list, "web1");
    assert_eq!(web["status"], "running", "{list}");
    assert_eq!(web["domain_id"], "1", "{list}");
    let db = row(&list, "db");
    assert_eq!(db["status"], "stopped", "{list}");
    assert_eq!(db["raw_status"], "shut off", "{list}");
    // Issue 14: a regex over whitespace read this row as name `cache`, status `unknown`.
    let cache = row(&list, "cache 1");
    assert_eq!(cache["id"], "cache 1", "{list}");
    assert_eq!(cache["status"], "suspended", "{list}");
    assert_eq!(cache["raw_status"], "paused", "{list}");
}

#[test]
fn real_virsh_get_reads_dominfo_of_a_named_domain() {
    if !real_cli_available("virsh", HINT) {
        return;
    }
    let w = World::new();
    let web = virsh(&w, "get_worker", &[("worker_id", "web1")]).ok();
    assert_eq!(web["name"], "web1", "{web}");
    assert_eq!(web["status"], "running", "{web}");
    assert_eq!(web["uuid"], "6695eb01-f6a4-8304-79aa-97f2502e193f", "{web}");
    assert_eq!(web["cpus"], 2, "{web}");
    assert_eq!(web["max_memory_kib"], 524288, "{web}");
    let cache = virsh(&w, "get_worker", &[("worker_id", "cache2")]).ok();
    assert_eq!(cache["name"], "cache2", "{cache}");
    assert_eq!(cache["status"], "suspended", "{cache}");
    let db = virsh(&w, "get_worker", &[("worker_id", "db")]).ok();
    assert_eq!(db["status"], "stopped", "{db}");
    // A name with a space is one --domain argument, as `virsh list` shows it.
    let spaced = virsh(&w, "get_worker", &[("worker_id", "cache 1")]).ok();
    assert_eq!(spaced["name"], "cache 1", "{spaced}");
    assert_eq!(spaced["status"], "suspended", "{spaced}");
}

#[test]
fn real_virsh_state_actions_are_accepted_where_the_fixture_state_allows_them() {
    if !real_cli_available("virsh", HINT) {
        return;
    }
    let w = World::new();
    for (action, id) in [
        ("start_worker", "db"),
        ("stop_worker", "web1"),
        ("reboot_worker", "web1"),
        ("suspend_worker", "web1"),
        ("resume_worker", "cache2"),
    ] {
        let out = virsh(&w, action, &[("worker_id", id)]).ok();
        assert_eq!(out["id"], id, "{action}: {out}");
    }
    // virsh refuses what the state forbids: a running domain cannot start, a paused one
    // cannot be resumed twice within one connection, a shut-off one cannot be suspended.
    for (action, id) in [
        ("start_worker", "web1"),
        ("resume_worker", "web1"),
        ("suspend_worker", "db"),
    ] {
        let run = virsh(&w, action, &[("worker_id", id)]);
        assert_ne!(run.code, 0, "{action} {id} succeeded: {}", run.stdout);
        let err = run.json();
        assert!(
            err["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("error:")),
            "{action} {id}: {err}"
        );
    }
}

#[test]
fn real_virsh_unknown_domain_is_resource_not_found() {
    if !real_cli_available("virsh", HINT) {
        return;
    }
    let w = World::new();
    // `error: failed to get domain 'nope'`: the provider's error rules say what it means.
    for action in ["get_worker", "start_worker", "stop_worker", "resume_worker"] {
        let run = virsh(&w, action, &[("worker_id", "nope")]);
        assert_eq!(run.code, 12, "{action}: {}", run.all_output());
        run.err("ResourceNotFoundError");
    }
}

#[test]
fn real_virsh_takes_hostile_domain_names_as_one_name() {
    if !real_cli_available("virsh", HINT) {
        return;
    }
    let w = World::new();
    let canary = w.dir.path().join("canary");
    let touch = format!("x; touch {}", canary.display());
    let hostile = [
        "-x",
        "--help",
        "--domain=web1",
        "web1 --all",
        "a b",
        "a'b\"c",
        touch.as_str(),
        "$(id)",
    ];
    for id in hostile {
        for action in ["get_worker", "suspend_worker"] {
            let run = virsh(&w, action, &[("worker_id", id)]);
            assert_ne!(run.code, 0, "{action} {id:?} succeeded: {}", run.stdout);
            let err = run.json()["error"].clone();
            let code = err["code"].as_str().unwrap_or_default();
            // Refused before virsh runs, or looked up by virsh as one domain name (its
            // message quotes the whole value): never read as an option or a second word.
            match code {
                "ValidationError" => {}
                "ResourceNotFoundError" => {
                    let message = err["message"].as_str().unwrap_or_default();
                    assert!(
                        message.contains(&format!("failed to get domain '{id}'")),
                        "{action} {id:?}: {err}"
                    );
                }
                other => panic!("{action} {id:?}: unexpected {other}: {err}"),
            }
        }
    }
    assert!(!canary.exists(), "a value ran a command");
}

#[test]
fn real_virsh_creates_a_snapshot_and_empty_tables_are_empty_lists() {
    if !real_cli_available("virsh", HINT) {
        return;
    }
    let w = World::new();
    let name = "before-upgrade.1";
    let snap = virsh(
        &w,
        "create_snapshot",
        &[("worker_id", "cache2"), ("name", name)],
    )
    .ok();
    assert_eq!(snap["id"], name, "{snap}");
    // A fresh connection has no snapshots and the fixture host no networks: a header and a
    // rule line only.
    let snaps = virsh(&w, "list_snapshots", &[("worker_id", "web1")]).ok();
    assert_eq!(snaps, serde_json::json!([]), "{snaps}");
    let nets = virsh(&w, "list_networks", &[]).ok();
    assert_eq!(nets, serde_json::json!([]), "{nets}");
}
