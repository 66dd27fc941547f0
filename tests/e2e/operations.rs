//! Operating under real conditions: retries with backoff on safe actions only.

use serde_json::json;

use crate::support::World;

fn truenas(w: &World, action: &str, extra: &[&str]) -> crate::support::Run {
    w.truenas(action, extra)
}

fn requests_to(w: &World, suffix: &str) -> usize {
    let log = w.requests();
    log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"].as_str().unwrap_or("").ends_with(suffix))
        .count()
}

#[test]
fn safe_actions_retry_through_a_429_storm_honouring_retry_after() {
    let w = World::new();
    w.set_faults(json!({"fail_status": 429, "fail_count": 2, "retry_after_secs": 1}));
    let started = std::time::Instant::now();
    let info = truenas(&w, "test_install", &["-v"]);
    assert_eq!(info.ok()["hostname"], "cpi-sim");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "Retry-After was honoured twice"
    );
    assert_eq!(
        requests_to(&w, "/system/info"),
        3,
        "two refused attempts, then success"
    );
    assert!(
        info.stderr.contains("attempt 1 of 3 failed"),
        "retries are visible in verbose logs: {}",
        info.stderr
    );
}

#[test]
fn retries_give_up_after_the_configured_attempts_and_say_how_many() {
    let w = World::new();
    w.set_faults(json!({"fail_status": 503, "fail_count": 10, "retry_after_secs": 0}));
    let err = truenas(&w, "test_install", &["--attempts", "2"]).err("ProviderError");
    assert_eq!(err["details"]["attempts"], 2, "{err}");
    assert_eq!(requests_to(&w, "/system/info"), 2);
}

#[test]
fn create_is_never_retried_blindly() {
    let w = World::new();
    w.set_faults(json!({"fail_status": 500, "fail_count": 1}));
    truenas(
        &w,
        "create_worker",
        &["-p", "name=tank", "-p", "disk_names=[\"ada0\"]"],
    )
    .err("ProviderError");
    assert_eq!(
        requests_to(&w, "/pool"),
        1,
        "a failed create is reported, not repeated"
    );
    // Nothing was created behind the user's back.
    assert_eq!(truenas(&w, "list_workers", &[]).ok()["datasets"], json!([]));
}

#[test]
fn wait_polls_until_the_status_and_fails_fast_or_times_out() {
    let w = World::with(|cfg| cfg.transition = std::time::Duration::from_millis(600));
    // create + --wait: returns once the worker runs.
    let running = w
        .cpi(&[
            "run",
            "cloudco",
            "create_worker",
            "-p",
            "name=w1",
            "--wait",
            "running",
            "--wait-timeout",
            "10s",
            "--json",
        ])
        .ok();
    assert_eq!(running["status"], "running", "{running}");
    let id = running["id"].as_str().unwrap().to_string();

    // stop, then wait separately; plain progress lines when not on a terminal.
    w.cpi(&[
        "run",
        "cloudco",
        "stop_worker",
        "-p",
        &format!("worker_id={id}"),
        "--json",
    ])
    .ok();
    let waited = w.cpi(&[
        "wait",
        "cloudco",
        &id,
        "--for",
        "stopped",
        "--wait-timeout",
        "10s",
    ]);
    assert_eq!(waited.code, 0, "{}", waited.stderr);
    assert!(
        waited.stderr.contains("stopping"),
        "progress shows the intermediate status: {}",
        waited.stderr
    );

    // A status it never reaches within the timeout: TimeoutError naming the current status.
    let slow = w.cpi(&[
        "wait",
        "cloudco",
        &id,
        "--for",
        "running",
        "--wait-timeout",
        "1s",
        "--json",
    ]);
    let err = slow.err("TimeoutError");
    assert_eq!(err["details"]["status"], "stopped", "{err}");

    // A worker that is gone fails at once with ResourceNotFound, not after the timeout.
    w.cpi(&[
        "run",
        "cloudco",
        "delete_worker",
        "-p",
        &format!("worker_id={id}"),
        "--json",
    ])
    .ok();
    let started = std::time::Instant::now();
    w.cpi(&[
        "wait",
        "cloudco",
        &id,
        "--for",
        "running",
        "--wait-timeout",
        "60s",
        "--json",
        "--attempts",
        "1",
    ])
    .err("ResourceNotFoundError");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    // Nonsense targets and --wait on a read action are usage errors.
    w.cpi(&["wait", "cloudco", &id, "--for", "happy", "--json"])
        .err("ValidationError");
    w.cpi(&[
        "run",
        "cloudco",
        "list_workers",
        "--wait",
        "running",
        "--json",
    ])
    .err("ValidationError");
}

/// `cpi run ... --batch FILE`: the batch file, written to the world's directory.
fn batch_file(w: &World, lines: &str) -> String {
    let path = w.dir.path().join("batch.jsonl");
    std::fs::write(&path, lines).unwrap();
    path.display().to_string()
}

fn records(run: &crate::support::Run) -> Vec<serde_json::Value> {
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn batch_results_come_in_input_order_and_one_failure_never_stops_the_others() {
    let w = World::new();
    let file = batch_file(
        &w,
        "{\"name\": \"b-1\"}\n\n{\"name\": \"b-2\", \"region\": \"eu-west-1\"}\n{oops\n\
         {\"name\": \"b-3\", \"bogus\": 1}\n{\"name\": \"b-4\"}\n",
    );
    let run = w.cpi(&[
        "run",
        "cloudco",
        "create_worker",
        "--batch",
        &file,
        "--parallel",
        "3",
    ]);
    assert_eq!(
        run.code,
        10,
        "first failure is a ValidationError: {}",
        run.all_output()
    );
    let out = records(&run);
    let lines: Vec<u64> = out.iter().map(|r| r["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [1, 3, 4, 5, 6], "input order, blank line skipped");
    let ok: Vec<bool> = out.iter().map(|r| r["ok"].as_bool().unwrap()).collect();
    assert_eq!(ok, [true, true, false, false, true]);
    assert_eq!(out[0]["result"]["name"], "b-1");
    assert_eq!(out[2]["error"]["code"], "ValidationError");
    assert!(
        out[2]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 4")
    );
    assert!(
        out[3]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'bogus'")
    );
    assert!(run.stderr.contains("3 ok, 2 failed"), "{}", run.stderr);
    // Exactly the three good lines created workers.
    let list = w
        .cpi(&[
            "run",
            "cloudco",
            "list_workers",
            "-p",
            "region=us-central",
            "--json",
        ])
        .ok();
    let mut names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["b-1", "b-4"], "b-2 went to eu-west-1");
}

#[test]
fn a_parallel_batch_backs_off_together_when_one_call_is_rate_limited() {
    let w = World::new();
    w.set_faults(json!({"fail_status": 429, "fail_count": 1, "retry_after_secs": 2}));
    let file = batch_file(&w, &"{}\n".repeat(8));
    let mut args: Vec<String> = ["-v", "run", "truenas", "test_install", "--batch", &file]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--parallel".into(), "4".into()]);
    args.extend(w.truenas_args());
    let started = std::time::Instant::now();
    let run = w.cpi(&args);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(records(&run).iter().all(|r| r["ok"] == true));
    assert_eq!(
        requests_to(&w, "/system/info"),
        9,
        "8 items, one refused once"
    );
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
    assert!(
        run.stderr.contains("held back"),
        "items that started after the 429 waited for its Retry-After: {}",
        run.stderr
    );
}
