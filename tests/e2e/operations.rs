//! Operating under real conditions: retries with backoff on safe actions only.

use serde_json::json;

use crate::support::World;

fn truenas(w: &World, action: &str, extra: &[&str]) -> crate::support::Run {
    let mut args: Vec<String> = vec![
        "run".into(),
        "truenas".into(),
        action.into(),
        "--json".into(),
    ];
    args.extend(w.truenas_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    w.cpi(&args)
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
