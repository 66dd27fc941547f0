//! Real CLI output shapes: column-aligned tables, provider error rules, CRLF line ends, JSON
//! read by pointer whatever its key order.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::json;

use crate::support::{Run, World, repo, run};

/// A stand-in `virsh` that prints what libvirt 9's virsh prints: a `list --all` table with
/// names and states containing spaces, and `failed to get domain` (exit 1) for any other
/// domain lookup.
const VIRSH: &str = r#"#!/bin/sh
for last; do :; done
case "$*" in
  *" list --all") printf ' Id   Name      State\n--------------------------\n 1    web-1     running\n 2    cache 1   paused\n -    db 2      shut off\n\n' ;;
  *" dominfo "*) echo "error: failed to get domain '$last'" >&2; exit 1 ;;
  *) echo "error: unknown command" >&2; exit 1 ;;
esac
"#;

fn fake_virsh(w: &World) -> std::path::PathBuf {
    let bin = w.dir.path().join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let path = bin.join("virsh");
    std::fs::write(&path, VIRSH).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn libvirt(w: &World, bin: &Path, args: &[&str]) -> Run {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run(w
        .command()
        .env("PATH", path)
        .args(["run", "libvirt"])
        .args(args)
        .arg("--json"))
}

#[test]
fn libvirt_reads_a_virsh_table_whose_names_and_states_have_spaces() {
    let w = World::new();
    let bin = fake_virsh(&w);
    let list = libvirt(&w, &bin, &["list_workers"]).ok();
    assert_eq!(
        list,
        json!([
            {"id": "web-1", "name": "web-1", "status": "running", "raw_status": "running", "domain_id": "1"},
            {"id": "cache 1", "name": "cache 1", "status": "suspended", "raw_status": "paused", "domain_id": "2"},
            {"id": "db 2", "name": "db 2", "status": "stopped", "raw_status": "shut off", "domain_id": "-"}
        ])
    );
}

#[test]
fn a_provider_error_rule_makes_virsh_failed_to_get_domain_a_not_found() {
    let w = World::new();
    let bin = fake_virsh(&w);
    let run = libvirt(&w, &bin, &["get_worker", "-p", "worker_id=nope"]);
    assert_eq!(run.code, 12, "{}", run.all_output());
    let err = run.err("ResourceNotFoundError");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("failed to get domain 'nope'"),
        "{err}"
    );
    assert!(err["details"]["error_rule"].is_string(), "{err}");
}

#[test]
fn crlf_output_parses_as_if_its_lines_ended_in_lf() {
    let w = World::new();
    let dir = w.dir.path().join("win");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("win.json"),
        r#"{"name": "win", "type": "command", "actions": {
            "get_worker": {"target": {"Command": "winvm show {worker_id}"}, "params": ["worker_id"],
                "normalize_status": false,
                "parse_rules": {"type": "object", "patterns": {
                    "name": {"regex": "Name:\\s+(.*)"}, "status": {"regex": "^State: (.*)$"}}}},
            "list_workers": {"target": {"Command": "winvm list"}, "params": [],
                "normalize_status": false,
                "parse_rules": {"type": "table", "patterns": {
                    "name": {"column": "Name"}, "status": {"column": "State"}}}}}}"#,
    )
    .unwrap();
    let parse = |action: &str, text: &str| {
        let saved = w.dir.path().join(format!("{action}.txt"));
        std::fs::write(&saved, text).unwrap();
        w.cpi(&[
            "--provider-dir",
            dir.to_str().unwrap(),
            "parse",
            "win",
            action,
            "--input",
            saved.to_str().unwrap(),
            "--json",
        ])
        .ok()
    };
    assert_eq!(
        parse("get_worker", "Name: win-01\r\nState: Running\r\n"),
        json!({"name": "win-01", "status": "Running"})
    );
    assert_eq!(
        parse(
            "list_workers",
            "Name     State\r\n----     -----\r\nwin 01   Running\r\n\r\n"
        ),
        json!([{"name": "win 01", "status": "Running"}])
    );
}

#[test]
fn validate_checks_table_fields_and_error_rules() {
    let w = World::new();
    let file = w.dir.path().join("bad.json");
    std::fs::write(
        &file,
        r#"{"name": "bad", "type": "command",
            "error_rules": [{"when": ".*", "category": "ResourceNotFoundError"}],
            "actions": {"list_workers": {"target": {"Command": "x list"}, "params": [],
                "error_rules": [{"when": "(oops", "category": "ProviderError"}],
                "parse_rules": {"type": "table", "patterns": {"id": {"regex": "x"}}}}}}"#,
    )
    .unwrap();
    let report = w.cpi(&["validate", file.to_str().unwrap(), "--json"]);
    let text = report.all_output();
    assert_ne!(report.code, 0, "{text}");
    assert!(text.contains("error_rules[0].when"), "{text}");
    assert!(text.contains("matches the empty text"), "{text}");
    assert!(
        text.contains("actions.list_workers.error_rules[0].when"),
        "{text}"
    );
    assert!(text.contains("needs a \\\"column\\\""), "{text}");
    // An unknown category is a schema error naming where it is.
    std::fs::write(
        &file,
        r#"{"name": "bad", "type": "command",
            "error_rules": [{"when": "gone", "category": "NotFound"}], "actions": {}}"#,
    )
    .unwrap();
    let text = w
        .cpi(&["validate", file.to_str().unwrap(), "--json"])
        .all_output();
    assert!(text.contains("error_rules[0].category"), "{text}");
}

#[test]
fn shipped_json_providers_read_list_members_by_value_not_by_key_order() {
    // The fixtures with reordered keys are part of `cpi test`; this names them so that
    // deleting one fails here.
    for fixture in [
        "digitalocean/get_worker.reordered_keys.json",
        "azure/list_worker_types.reordered_keys.json",
        "libvirt/list_workers.spaces.json",
        "libvirt/list_workers.crlf.json",
        "libvirt/get_worker.not_found.json",
    ] {
        assert!(
            repo().join("providers/fixtures").join(fixture).is_file(),
            "{fixture}"
        );
    }
    let w = World::new();
    for provider in ["digitalocean", "azure", "libvirt"] {
        let run = w.cpi(&["test", provider]);
        assert_eq!(run.code, 0, "{provider}: {}", run.all_output());
    }
}

#[test]
fn metadata_lists_are_cached_per_values_refreshed_on_demand_and_state_never() {
    let w = World::new();
    let dir = w.dir.path().join("counted");
    std::fs::create_dir(&dir).unwrap();
    let calls = w.dir.path().join("calls.log");
    // Each run appends a line to calls.log and prints how many runs there have been.
    let count = format!(
        "sh -c 'echo $1 >> {}; wc -l < {}' sh {{region}}",
        calls.display(),
        calls.display()
    );
    let provider = serde_json::json!({"name": "counted", "type": "command",
        "default_settings": {"region": "r1", "api_token": "tok-very-secret"},
        "actions": {
            "list_regions": {"target": {"Command": count.clone()}, "params": ["region", "api_token"],
                "parse_rules": {"type": "object", "patterns": {"n": {"regex": "(\\d+)", "transform": "number"}}}},
            "list_workers": {"target": {"Command": count}, "params": ["region"], "cache": "1h",
                "parse_rules": {"type": "object", "patterns": {"n": {"regex": "(\\d+)", "transform": "number"}}}}}});
    std::fs::write(dir.join("counted.json"), provider.to_string()).unwrap();
    w.approve(dir.to_str().unwrap(), &["counted"]);
    let run = |action: &str, extra: &[&str]| {
        let mut args = vec![
            "--provider-dir",
            dir.to_str().unwrap(),
            "run",
            "counted",
            action,
            "--json",
        ];
        args.extend(extra);
        w.cpi(&args).ok()["n"].as_i64().unwrap()
    };
    assert_eq!(run("list_regions", &[]), 1);
    assert_eq!(run("list_regions", &[]), 1, "served from the cache");
    assert_eq!(
        run("list_regions", &["-p", "region=r2"]),
        2,
        "other values, other entry"
    );
    assert_eq!(run("list_regions", &["--refresh"]), 3);
    assert_eq!(
        run("list_regions", &[]),
        3,
        "the refreshed result is stored"
    );
    // Worker state is never cached, whatever the action declares.
    assert_eq!(run("list_workers", &[]), 4);
    assert_eq!(run("list_workers", &[]), 5);
    // Private files named by hash: no value in clear.
    let cache = w.dir.path().join(".cache/cpi/metadata");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache), 0o700);
    let files: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    for file in files {
        assert_eq!(mode(&file), 0o600);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !name.contains("tok") && !text.contains("tok-very-secret"),
            "{name}: {text}"
        );
    }
    // A cache directory others may write is refused, not repaired: the action runs uncached.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(run("list_regions", &[]), 6);
    assert_eq!(mode(&cache), 0o777);
}
