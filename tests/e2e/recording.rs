//! `cpi test --record`: an action run for real becomes a fixture that `cpi test` passes.

use serde_json::{Value, json};

use crate::support::World;

fn read(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("the fixture is JSON")
}

#[test]
fn recording_a_simulator_action_writes_a_fixture_and_shows_changes_on_re_recording() {
    let w = World::new();
    let created = w
        .cpi(&[
            "run",
            "cloudco",
            "create_worker",
            "--json",
            "-p",
            "name=rec-1",
        ])
        .ok();
    let id = created["id"].as_str().expect("an id").to_string();
    // The simulator moves a new worker to running after 100 ms.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let file = w.dir.path().join("rec").join("get_worker.recorded.json");
    let record = |extra: &[&str]| {
        let mut args = vec!["test", "--record", "cloudco", "get_worker", "-p"];
        let param = format!("worker_id={id}");
        args.push(&param);
        let out = file.to_string_lossy().into_owned();
        args.extend(["--out", &out]);
        args.extend(extra);
        w.cpi(&args)
    };
    let first = record(&["--json"]).ok();
    assert_eq!(first["changes"], Value::Null, "a new recording: {first}");
    let fixture = read(&file);
    let got = w
        .cpi(&[
            "run",
            "cloudco",
            "get_worker",
            "--json",
            "-p",
            &format!("worker_id={id}"),
        ])
        .ok();
    assert_eq!(fixture["action"], "get_worker");
    assert_eq!(fixture["expected"]["id"], got["id"], "{fixture}");
    assert_eq!(fixture["expected"]["name"], "rec-1", "{fixture}");
    assert!(
        fixture["output"].as_str().is_some_and(|o| o.contains(&id)),
        "{fixture}"
    );
    assert_eq!(fixture["params"], json!({"worker_id": id}), "{fixture}");
    let argv = &fixture["request"]["argv"];
    assert_eq!(argv[0], "cloudco-cli", "{fixture}");
    assert_eq!(fixture["recorded"]["program"], "cloudco-cli", "{fixture}");
    assert!(
        fixture["recorded"]["version"]
            .as_str()
            .is_some_and(|v| !v.is_empty()),
        "{fixture}"
    );
    assert!(
        fixture["recorded"]["at"]
            .as_str()
            .is_some_and(|d| d.starts_with("20") && d.ends_with('Z')),
        "{fixture}"
    );

    // The platform changes: re-recording shows what differs.
    w.cpi(&[
        "run",
        "cloudco",
        "stop_worker",
        "--json",
        "-p",
        &format!("worker_id={id}"),
    ])
    .ok();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let again = record(&["--json"]).ok();
    let changes = again["changes"].to_string();
    assert!(
        changes.contains(r#"/status: expected \"running\", got \"stopped\""#),
        "{again}"
    );
    assert!(
        changes.contains(r#"+   \"status\": \"stopped\""#),
        "{again}"
    );
    assert_eq!(read(&file)["expected"]["status"], "stopped");
    let same = record(&["--json"]).ok();
    assert_eq!(same["changes"], json!([]), "only the date changed: {same}");
}

/// A provider whose command echoes a secret and can fail, in the test's `providers` directory
/// (named with `--provider-dir`: a working directory's ./providers is never searched).
fn recorder_provider(w: &World) -> std::path::PathBuf {
    let dir = w.dir.path().join("providers");
    std::fs::create_dir_all(&dir).expect("providers dir");
    let provider = json!({
        "name": "recorder",
        "type": "command",
        "description": "Prints its inputs, for recording tests.",
        "actions": {
            "get_worker": {
                "description": "Prints the id and the token; exits 3 for the id 'missing'.",
                "target": {"Command": "sh -c 'echo \"id={worker_id} token={api_token}\"; echo \"warn: {api_token}\" >&2; [ {worker_id} != missing ] || { echo \"not found: {worker_id}\" >&2; exit 3; }'"},
                "params": ["worker_id", "api_token"],
                "parse_rules": {"type": "object", "patterns": {
                    "id": {"regex": "^id=(\\S+)"},
                    "token": {"regex": "token=(\\S+)"}
                }}
            }
        }
    });
    std::fs::write(
        dir.join("recorder.json"),
        serde_json::to_string_pretty(&provider).expect("JSON"),
    )
    .expect("provider file");
    dir
}

#[test]
fn recorded_fixtures_redact_secrets_keep_failures_and_pass_cpi_test() {
    let w = World::new();
    let dir = recorder_provider(&w);
    let secret = "s3cr3t-T0KEN-value";
    let pd = dir.to_string_lossy().into_owned();
    let ok = w.cpi(&[
        "--provider-dir",
        &pd,
        "test",
        "--record",
        "recorder",
        "get_worker",
        "-p",
        "worker_id=w-1",
        "-p",
        &format!("api_token={secret}"),
    ]);
    assert_eq!(ok.code, 0, "{}", ok.all_output());
    assert!(!ok.all_output().contains(secret), "{}", ok.all_output());
    let file = dir.join("fixtures/recorder/get_worker.recorded.json");
    let text = std::fs::read_to_string(&file).expect("written beside the provider");
    assert!(!text.contains(secret), "a secret was recorded: {text}");
    let fixture: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(fixture["expected"]["id"], "w-1", "{fixture}");
    assert_eq!(fixture["expected"]["token"], "[REDACTED]", "{fixture}");
    assert_eq!(fixture["params"]["api_token"], "[REDACTED]", "{fixture}");
    assert_eq!(fixture["exit_code"], Value::Null, "{fixture}");
    // `sh --version` fails: no version rather than its error message.
    assert_eq!(fixture["recorded"]["program"], "sh", "{fixture}");
    assert_eq!(fixture["recorded"]["version"], Value::Null, "{fixture}");

    let failed = w.cpi(&[
        "--provider-dir",
        &pd,
        "test",
        "--record",
        "recorder",
        "get_worker",
        "-p",
        "worker_id=missing",
        "-p",
        &format!("api_token={secret}"),
        "--out",
        &dir.join("fixtures/recorder/get_worker.missing.json")
            .to_string_lossy(),
    ]);
    assert_eq!(failed.code, 0, "{}", failed.all_output());
    let text = std::fs::read_to_string(dir.join("fixtures/recorder/get_worker.missing.json"))
        .expect("written");
    assert!(!text.contains(secret), "a secret was recorded: {text}");
    let fixture: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(fixture["exit_code"], 3, "{fixture}");
    assert!(
        fixture["stderr"]
            .as_str()
            .is_some_and(|s| s.contains("not found: missing")),
        "{fixture}"
    );
    assert!(fixture["expected_error"].is_string(), "{fixture}");

    // Both recordings are fixtures `cpi test` passes as they are.
    let test = w.cpi(&["--provider-dir", &pd, "test", "recorder", "--json"]);
    assert_eq!(test.code, 0, "{}", test.all_output());
    let cases = test.json()["recorder"].clone();
    assert_eq!(cases.as_array().map(Vec::len), Some(2), "{cases}");
}

#[test]
fn record_refuses_what_it_cannot_record_faithfully() {
    let w = World::new();
    let run = w.cpi(&["test", "--record", "cloudco", "--json"]);
    run.err("ValidationError");
    let run = w.cpi(&["test", "cloudco", "-p", "x=1", "--json"]);
    run.err("ValidationError");
}
