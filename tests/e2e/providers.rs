//! The standard's two example providers (§4), run unchanged against the simulated cloud:
//! every required method (§2.1), the lifecycle (§8), and the error categories (§10).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{World, repo};

/// Polls `get_worker` until the status is `want` (the simulator moves states over time).
fn wait_status(world: &World, provider_args: &[String], want: &str) -> Value {
    let started = Instant::now();
    loop {
        let mut args: Vec<String> = vec!["run".into(), "--json".into()];
        args.extend(provider_args.iter().cloned());
        let got = world.cpi(&args).ok();
        if got["status"] == want {
            return got;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never reached {want}: {got}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn cloudco_every_required_method_end_to_end() {
    let w = World::new();
    let version = w.cpi(&["run", "cloudco", "test_install", "--json"]).ok();
    assert_eq!(version, json!({"version": "1.4.2"}));

    let created = w
        .cpi(&[
            "run",
            "cloudco",
            "create_worker",
            "-p",
            "name=web-1",
            "--json",
        ])
        .ok();
    let id = created["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("wrk-"), "{created}");
    assert_eq!(created["name"], "web-1");
    assert_eq!(created["status"], "provisioning");
    assert_eq!(created["raw_status"], "provisioning");
    // Output keys follow the provider file's order, with raw_status right after status.
    let keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["id", "name", "ip_address", "status", "raw_status"]);

    let listed = w.cpi(&["run", "cloudco", "list_workers", "--json"]).ok();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["type"], "standard-2");

    let get = vec![
        "cloudco".to_string(),
        "get_worker".into(),
        "-p".into(),
        format!("worker_id={id}"),
    ];
    let running = wait_status(&w, &get, "running");
    assert_eq!(running["ip_address"], created["ip_address"]);

    let by_id = |action: &str| {
        w.cpi(&[
            "run",
            "cloudco",
            action,
            "-p",
            &format!("worker_id={id}"),
            "--json",
        ])
    };
    assert_eq!(by_id("stop_worker").ok(), json!({"success": true}));
    wait_status(&w, &get, "stopped");
    assert_eq!(by_id("start_worker").ok(), json!({"success": true}));
    wait_status(&w, &get, "running");
    assert_eq!(by_id("reboot_worker").ok(), json!({"success": true}));
    assert_eq!(by_id("delete_worker").ok(), json!({"success": true}));
    assert_eq!(
        w.cpi(&["run", "cloudco", "list_workers", "--json"]).ok(),
        json!([])
    );

    let err = by_id("get_worker").err("ResourceNotFoundError");
    assert!(err["message"].as_str().unwrap().contains(&id), "{err}");
    assert_eq!(by_id("get_worker").code, 12);
}

#[test]
fn truenas_every_required_method_end_to_end() {
    let w = World::new();
    let auth = w.truenas_args();
    let run = |action: &str, extra: &[&str]| {
        let mut args: Vec<String> = vec![
            "run".into(),
            "truenas".into(),
            action.into(),
            "--json".into(),
        ];
        args.extend(auth.iter().cloned());
        args.extend(extra.iter().map(|s| s.to_string()));
        w.cpi(&args)
    };
    let info = run("test_install", &[]).ok();
    assert_eq!(info["hostname"], "cpi-sim");

    // disk_names sits in a bare JSON position of the body: it must be one JSON value.
    let created = run(
        "create_worker",
        &["-p", "name=tank", "-p", r#"disk_names=["ada0","ada1"]"#],
    )
    .ok();
    let id = created["id"]
        .as_str()
        .expect("id is captured text")
        .to_string();
    let body = last_request(&w)["body"].as_str().unwrap().to_string();
    let sent: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        sent,
        json!({"name": "tank", "topology": {"data": [{"type": "STRIPE", "disks": ["ada0", "ada1"]}]}})
    );

    let datasets = run("list_workers", &[]).ok();
    assert_eq!(
        datasets["datasets"][0]["name"], "tank",
        "whole-body capture yields JSON: {datasets}"
    );

    let worker = format!("worker_id={id}");
    let pool = run("get_worker", &["-p", &worker]).ok();
    assert_eq!(pool["pool"]["name"], "tank");
    assert_eq!(pool["pool"]["status"], "running");
    assert_eq!(pool["pool"]["raw_status"], "ONLINE");

    let stopped = run("stop_worker", &["-p", &worker]).ok();
    assert_eq!(stopped["result"]["status"], "stopped", "{stopped}");
    assert_eq!(
        run("get_worker", &["-p", &worker]).ok()["pool"]["raw_status"],
        "OFFLINE"
    );
    let started = run("start_worker", &["-p", &worker]).ok();
    assert_eq!(started["result"]["status"], "running");
    assert_eq!(
        run("delete_worker", &["-p", &worker]).ok(),
        json!({"result": true})
    );
    run("get_worker", &["-p", &worker]).err("ResourceNotFoundError");

    let bad_disks = run(
        "create_worker",
        &["-p", "name=x", "-p", "disk_names=ada0, ada1"],
    );
    let err = bad_disks.err("ValidationError");
    assert!(
        err["message"].as_str().unwrap().contains("disk_names"),
        "{err}"
    );
}

fn last_request(w: &World) -> Value {
    let log = w.requests();
    let list = log["requests"]
        .as_array()
        .or_else(|| log.as_array())
        .cloned()
        .unwrap_or_default();
    list.last()
        .cloned()
        .unwrap_or_else(|| panic!("no requests recorded: {log}"))
}

#[test]
fn lifecycle_runs_the_steps_a_provider_defines_in_order() {
    let w = World::new();
    let mut args: Vec<String> = vec!["init".into(), "truenas".into(), "--json".into()];
    args.extend(w.truenas_args());
    let report = w.cpi(&args).ok();
    assert_eq!(report["ready"], true);
    let steps: Vec<(&str, &str)> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["action"].as_str().unwrap(),
                s["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("initialize_cli", "skipped"),
            ("configure_auth", "skipped"),
            ("test_auth", "skipped"),
            ("test_install", "ok")
        ]
    );
}

/// `cpi init PROVIDER --json -p ...` with the §8.2 fixture providers loaded.
fn init_fixture(w: &World, provider: &str, params: &[String]) -> crate::support::Run {
    let fixtures = repo().join("tests/fixtures/lifecycle");
    w.approve(fixtures.to_str().unwrap(), &[provider]);
    let mut args: Vec<String> = vec![
        "--provider-dir".into(),
        fixtures.display().to_string(),
        "init".into(),
        provider.into(),
        "--json".into(),
    ];
    for param in params {
        args.push("-p".into());
        args.push(param.clone());
    }
    w.cpi(&args)
}

/// The §8.2 snippets (both revisions of test_auth) assembled into full providers.
#[test]
fn lifecycle_with_auth_steps_feeds_the_token_forward() {
    let w = World::new();
    let password = w.sim.as_ref().unwrap().password().to_string();
    let run = init_fixture(
        &w,
        "truenas-auth",
        &[
            format!("api_url={}/api/v2.0", w.url()),
            format!("password={password}"),
        ],
    );
    let report = run.ok();
    assert_eq!(report["ready"], true, "{report}");
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps[1]["action"], "configure_auth");
    // The token configure_auth returned is a secret: it is never printed...
    assert_eq!(steps[1]["result"]["api_key"], "[REDACTED]");
    // ...but test_auth used it and the simulator accepted it.
    assert_eq!(steps[2]["result"]["authenticated"], true);
    assert!(!run.all_output().contains(&password));

    // A wrong password fails at configure_auth; later steps do not run.
    let bad = init_fixture(
        &w,
        "truenas-auth",
        &[
            format!("api_url={}/api/v2.0", w.url()),
            "password=wrong".to_string(),
        ],
    );
    assert_eq!(
        bad.code, 11,
        "AuthenticationError exit code: {}",
        bad.stdout
    );
    let report = bad.json();
    assert_eq!(report["ready"], false);
    assert_eq!(report["steps"][1]["outcome"], "failed");
    assert_eq!(report["steps"][2]["outcome"], "not_run");

    let cloudco = init_fixture(
        &w,
        "cloudco-auth",
        &[
            format!("api_key={}", w.token()),
            "project_id=demo".to_string(),
        ],
    );
    let report = cloudco.ok();
    assert_eq!(report["ready"], true, "{report}");
    assert_eq!(report["steps"][1]["result"]["success"], true);
    assert_eq!(report["steps"][2]["result"]["status"], "authenticated");
}

#[test]
fn error_categories_are_reachable_from_the_simulator() {
    // Authentication: a wrong key.
    let w = World::with(|cfg| cfg.max_workers = 1);
    let run = |extra: &[&str]| {
        let mut args: Vec<String> = vec!["run".into(), "truenas".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push("--json".into());
        args.push("--attempts".into());
        args.push("1".into());
        args.push("-p".into());
        args.push(format!("api_url={}/api/v2.0", w.url()));
        w.cpi(&args)
    };
    let denied = run(&["test_install", "-p", "api_key=wrong-key"]);
    denied.err("AuthenticationError");
    assert_eq!(denied.code, 11);

    let key = format!("api_key={}", w.token());
    // ResourceNotFound.
    run(&["get_worker", "-p", &key, "-p", "worker_id=999"]).err("ResourceNotFoundError");
    // Validation (before anything runs): a missing parameter, named.
    let missing = run(&["get_worker", "-p", &key]).err("ValidationError");
    assert!(
        missing["message"].as_str().unwrap().contains("worker_id"),
        "{missing}"
    );
    // Validation from the server: a non-numeric pool id.
    run(&["get_worker", "-p", &key, "-p", "worker_id=abc"]).err("ValidationError");

    // QuotaExceeded through the command provider (quota is one worker).
    w.cpi(&["run", "cloudco", "create_worker", "-p", "name=a", "--json"])
        .ok();
    let quota = w.cpi(&["run", "cloudco", "create_worker", "-p", "name=b", "--json"]);
    quota.err("QuotaExceededError");
    assert_eq!(quota.code, 13);

    // RateLimit with Retry-After kept.
    w.set_faults(json!({"fail_status": 429, "fail_count": 1, "retry_after_secs": 7}));
    let limited = run(&["test_install", "-p", &key]).err("RateLimitError");
    assert_eq!(limited["details"]["retry_after"], 7, "{limited}");

    // Provider: a 500.
    w.set_faults(json!({"fail_status": 500, "fail_count": 1}));
    run(&["test_install", "-p", &key]).err("ProviderError");

    // Provider: malformed output the parse rules cannot read, naming the field.
    w.set_faults(json!({"malformed": true}));
    let garbled = w.cpi(&[
        "run",
        "cloudco",
        "get_worker",
        "-p",
        "worker_id=wrk-1",
        "--json",
    ]);
    let err = garbled.json()["error"].clone();
    assert!(
        err["code"] == "ProviderError" || err["code"] == "ResourceNotFoundError",
        "malformed output must not parse: {err}"
    );
    w.set_faults(json!({"malformed": false}));

    // Timeout: a slow server.
    w.set_faults(json!({"latency_ms": 3000}));
    let slow = run(&["test_install", "-p", &key, "--timeout", "0.5"]);
    slow.err("TimeoutError");
    assert_eq!(slow.code, 16);
    w.set_faults(json!({"latency_ms": 0}));

    // Unsupported: an OmniCloud-style in_vm command.
    let fixtures = repo().join("tests/fixtures/lifecycle");
    w.approve(fixtures.to_str().unwrap(), &["cloudco-auth"]);
    let in_vm = w.cpi(&[
        "--provider-dir".to_string(),
        fixtures.display().to_string(),
        "run".into(),
        "cloudco-auth".into(),
        "ssh_uptime".into(),
        "--json".into(),
    ]);
    let err = in_vm.err("UnsupportedError");
    assert!(err["message"].as_str().unwrap().contains("in_vm"), "{err}");
}

#[test]
fn dry_run_shows_the_exact_call_and_runs_nothing() {
    let w = World::new();
    let plan = w
        .cpi(&[
            "run",
            "cloudco",
            "create_worker",
            "-p",
            "name=web 1; rm -rf /",
            "--dry-run",
            "--json",
        ])
        .ok();
    assert_eq!(
        plan["calls"][0]["argv"],
        json!([
            "cloudco-cli",
            "worker",
            "create",
            "--name",
            "web 1; rm -rf /",
            "--type",
            "standard-2",
            "--image",
            "ubuntu-20-04",
            "--region",
            "us-central",
            "--network",
            "default"
        ])
    );
    assert_eq!(plan["params"]["region"]["source"], "provider_default");
    assert_eq!(plan["params"]["name"]["source"], "command_line");
    // A secret inside another value (a URL's user:password@) is redacted there too.
    let leaky = w.cpi(&[
        "run",
        "truenas",
        "list_workers",
        "-p",
        "api_key=s3cr3t-in-url-42",
        "-p",
        "api_url=https://admin:s3cr3t-in-url-42@nas.example/api/v2.0",
        "--dry-run",
        "--json",
    ]);
    assert!(
        !leaky.all_output().contains("s3cr3t-in-url-42"),
        "{}",
        leaky.all_output()
    );
    assert!(
        leaky.ok()["params"]["api_url"]["value"]
            .as_str()
            .unwrap()
            .contains("[REDACTED]")
    );
    // Only the values this action uses: cli_path is a provider default for other actions.
    let shown: Vec<&String> = plan["params"].as_object().unwrap().keys().collect();
    assert_eq!(
        shown,
        ["region", "worker_type", "image", "network", "name"],
        "{plan}"
    );
    assert_eq!(
        w.cpi(&["run", "cloudco", "list_workers", "--json"]).ok(),
        json!([])
    );
}

#[test]
fn parameter_precedence_cli_env_config_defaults() {
    let w = World::new();
    let config = w.dir.path().join("cpi.toml");
    std::fs::write(
        &config,
        "[providers.cloudco]\nregion = \"from-config\"\nimage = \"img-config\"\n",
    )
    .unwrap();
    let plan = |cmd: &mut std::process::Command| {
        let out = crate::support::run(cmd);
        out.ok()
    };
    let mut cmd = w.command();
    cmd.args([
        "--config",
        config.to_str().unwrap(),
        "run",
        "cloudco",
        "create_worker",
        "-p",
        "name=n",
    ])
    .args(["--dry-run", "--json"])
    .env("CPI_PARAM_REGION", "from-env")
    .env("CPI_PARAM_NETWORK", "net-env");
    let p = plan(&mut cmd);
    assert_eq!(p["params"]["region"]["value"], "from-env");
    assert_eq!(p["params"]["image"]["value"], "img-config");
    assert_eq!(p["params"]["network"]["value"], "net-env");
    assert_eq!(p["params"]["worker_type"]["value"], "standard-2");

    let mut cmd = w.command();
    cmd.args([
        "--config",
        config.to_str().unwrap(),
        "run",
        "cloudco",
        "create_worker",
    ])
    .args([
        "-p",
        "name=n",
        "-p",
        "region=from-cli",
        "--dry-run",
        "--json",
    ])
    .env("CPI_PARAM_REGION", "from-env");
    assert_eq!(plan(&mut cmd)["params"]["region"]["value"], "from-cli");

    // A typo in -p is caught, not ignored.
    let typo = w.cpi(&[
        "run",
        "cloudco",
        "create_worker",
        "-p",
        "name=n",
        "-p",
        "regoin=x",
        "--json",
    ]);
    let err = typo.err("ValidationError");
    assert!(err["message"].as_str().unwrap().contains("regoin"), "{err}");
}

#[test]
fn parse_applies_rules_to_saved_output() {
    let w = World::new();
    let saved = w.dir.path().join("describe.txt");
    std::fs::write(&saved, "{\n  \"id\": \"wrk-9\",\n  \"name\": \"db\",\n  \"status\": \"shut off\",\n  \"type\": \"m\"\n}\n").unwrap();
    let parsed = w
        .cpi(&[
            "parse",
            "cloudco",
            "get_worker",
            "--input",
            saved.to_str().unwrap(),
            "--json",
        ])
        .ok();
    assert_eq!(
        parsed,
        json!({"id": "wrk-9", "name": "db", "status": "stopped", "raw_status": "shut off", "type": "m"})
    );
}

#[test]
fn a_long_list_parse_prints_every_record_and_an_error_late_in_it_prints_only_the_error() {
    let w = World::new();
    let dir = w.dir.path().join("vms");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("vms.json"),
        r#"{"name": "vms", "type": "command", "actions": {"list_workers": {
            "target": {"Command": "VBoxManage list vms"},
            "parse_rules": {"type": "array", "patterns": {
                "name": {"regex": "^\"(.+)\" \\{"},
                "id": {"regex": "\\{([0-9a-f-]{36})\\}"},
                "status": {"regex": "\\} (\\w+)", "optional": true}}}}}}"#,
    )
    .unwrap();
    // More than the megabyte `cpi parse` holds in memory before a temporary file.
    let mut text = String::new();
    let mut expected = Vec::new();
    for i in 0..30_000 {
        let id = format!("{i:08x}-0000-4000-8000-{i:012x}");
        let line = if i % 2 == 0 {
            expected.push(json!({"name": format!("vm \u{7f}{i}"), "id": id, "status": "unknown", "raw_status": "odd"}));
            format!("\"vm \u{7f}{i}\" {{{id}}} odd\n")
        } else {
            expected.push(json!({"name": format!("vm-{i}"), "id": id, "status": "running", "raw_status": "running"}));
            format!("\"vm-{i}\" {{{id}}} running\n")
        };
        text.push_str(&line);
    }
    let saved = w.dir.path().join("vms.txt");
    let parse = |text: &str| {
        std::fs::write(&saved, text).unwrap();
        w.cpi(&[
            "--provider-dir",
            dir.to_str().unwrap(),
            "parse",
            "vms",
            "list_workers",
            "--input",
            saved.to_str().unwrap(),
            "--json",
        ])
    };
    let run = parse(&text);
    assert!(run.stdout.len() > 1 << 20, "{}", run.stdout.len());
    assert_eq!(
        run.stdout,
        format!(
            "{}\n",
            cpi::escape::json(&Value::Array(expected).to_string())
        )
    );
    // The last record lacks its id: stdout has the error alone, no part of the list.
    text.push_str("\"vm-last\" {x}\n");
    let run = parse(&text);
    let err = run.err("ProviderError");
    assert_eq!(err["details"]["record"], 30_001, "{err}");
    assert!(
        run.stdout.starts_with("{\"error\""),
        "{}",
        &run.stdout[..80]
    );
}

#[test]
fn providers_show_and_validate_the_standard_examples() {
    let w = World::new();
    let list = w.cpi(&["providers", "--json"]).ok();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // The two standard examples and the nine real-platform providers (issue 6).
    assert_eq!(names, crate::support::SHIPPED_PROVIDERS);
    let show = w.cpi(&["show", "truenas", "--json"]).ok();
    assert_eq!(show["actions"]["get_worker"]["target"]["method"], "GET");
    let validate = w.cpi(&[
        "validate",
        repo().join("providers").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(validate.code, 0, "{}", validate.stdout);
    for report in validate.json().as_array().unwrap() {
        let errors: Vec<&Value> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] == "error")
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
    }
}

#[test]
fn show_action_says_where_each_value_comes_from_and_how_the_action_behaves() {
    let w = World::new();
    let shown = w.cpi(&["show", "proxmox", "create_worker", "--json"]).ok();
    let param = |name: &str| -> Value {
        shown["params"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no parameter {name}: {shown}"))
    };
    assert_eq!(param("node")["source"], "provider default");
    assert_eq!(param("node")["default"], "pve");
    assert_eq!(param("image")["source"], "required");
    assert_eq!(param("api_token_secret")["secret"], true);
    assert_eq!(
        param("api_token_secret")["env"],
        "CPI_PARAM_API_TOKEN_SECRET"
    );
    // The VM id comes from the pre_exec step (GET /cluster/nextid) unless the user gives one.
    assert_eq!(param("worker_id")["source"], "pre_exec 1, unless given");
    let steps: Vec<&str> = shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["pre_exec 1", "action"]);
    assert_eq!(shown["steps"][1]["target"]["method"], "POST");
    assert!(
        shown["description"].as_str().unwrap().contains("VM"),
        "{shown}"
    );
    assert_eq!(
        shown["retried_on_failure"], false,
        "create_* is never retried"
    );
    assert_eq!(shown["normalizes_status"], true);

    let listed = w.cpi(&["show", "proxmox", "list_disks", "--json"]).ok();
    assert_eq!(listed["retried_on_failure"], true);
    assert_eq!(
        listed["normalizes_status"], false,
        "disks have no worker status"
    );

    // The whole-provider view carries each action's description.
    let all = w.cpi(&["show", "proxmox", "--json"]).ok();
    assert_eq!(
        all["actions"]["create_worker"]["description"],
        shown["description"]
    );

    let missing = w.cpi(&["show", "proxmox", "create_vm", "--json"]);
    let err = missing.err("ValidationError");
    assert!(
        err["message"].as_str().unwrap().contains("create_worker"),
        "the error lists the actions there are: {err}"
    );
}

#[test]
fn an_accepted_exit_code_is_a_result_only_for_the_output_it_names() {
    let w = World::new();
    let dir = w.dir.path().join("vbox");
    std::fs::create_dir(&dir).unwrap();
    // A stand-in for `VBoxManage snapshot VM list`: exit 1 both for "no snapshots" and for a
    // VM that does not exist.
    std::fs::write(
        dir.join("snaps.json"),
        r#"{"name": "snaps", "type": "command", "actions": {"list_snapshots": {
            "target": {"Command": "sh -c 'if [ \"$1\" = empty ]; then echo \"This machine does not have any snapshots\"; else echo \"error: Could not find a registered machine named $1\" >&2; fi; exit 1' sh {worker_id}"},
            "params": ["worker_id"],
            "accept_exit": [{"code": 1, "when": "does not have any snapshots"}],
            "parse_rules": {"type": "properties", "array_patterns": {"snapshots": {
                "prefix": "SnapshotName", "object": {"name": {"regex": "^SnapshotName=\"(.*)\""}}}}}}}}"#,
    )
    .unwrap();
    w.approve(dir.to_str().unwrap(), &["snaps"]);
    let run = |vm: &str| {
        w.cpi(&[
            "--provider-dir",
            dir.to_str().unwrap(),
            "run",
            "snaps",
            "list_snapshots",
            "-p",
            &format!("worker_id={vm}"),
            "--json",
        ])
    };
    assert_eq!(run("empty").ok(), json!({"snapshots": []}));
    let err = run("web-9").err("ResourceNotFoundError");
    assert!(err["message"].as_str().unwrap().contains("web-9"), "{err}");
}

#[test]
fn paged_lists_follow_every_page_unless_the_user_picks_one() {
    let w = World::new();
    let dir = w.dir.path().join("paged");
    std::fs::create_dir(&dir).unwrap();
    // Three pages; then a platform whose pages never end, and one that names page 1 again.
    std::fs::write(
        dir.join("paged.json"),
        r#"{"name": "paged", "type": "command", "default_settings": {"page": 1},
          "actions": {
            "list_workers": {
              "target": {"Command": "sh -c 'case $1 in 1) echo \"{\\\"items\\\": [{\\\"id\\\": 1}, {\\\"id\\\": 2}], \\\"next\\\": 2}\";; 2) echo \"{\\\"items\\\": [{\\\"id\\\": 3}], \\\"next\\\": \\\"https://x/v1?page=3\\\"}\";; *) echo \"{\\\"items\\\": [{\\\"id\\\": 4}], \\\"next\\\": null}\";; esac' sh {page}"},
              "params": ["page"],
              "paginate": {"param": "page", "next": {"pointer": "/next", "regex": "(\\d+)$"}},
              "parse_rules": {"type": "json", "items": "/items", "patterns": {"id": {"pointer": "/id"}}}},
            "list_disks": {
              "target": {"Command": "sh -c 'echo \"{\\\"items\\\": [{\\\"id\\\": $1}], \\\"next\\\": $(($1 + 1))}\"' sh {page}"},
              "params": ["page"],
              "paginate": {"param": "page", "next": {"pointer": "/next"}, "max_pages": 5},
              "parse_rules": {"type": "json", "items": "/items", "patterns": {"id": {"pointer": "/id"}}}},
            "list_images": {
              "target": {"Command": "sh -c 'echo \"{\\\"items\\\": [{\\\"id\\\": $1}], \\\"next\\\": 1}\"' sh {page}"},
              "params": ["page"],
              "paginate": {"param": "page", "next": {"pointer": "/next"}},
              "parse_rules": {"type": "json", "items": "/items", "patterns": {"id": {"pointer": "/id"}}}}}}"#,
    )
    .unwrap();
    w.approve(dir.to_str().unwrap(), &["paged"]);
    let run = |action: &str, extra: &[&str]| {
        let mut args = vec![
            "--provider-dir",
            dir.to_str().unwrap(),
            "run",
            "paged",
            action,
            "--json",
        ];
        args.extend(extra);
        w.cpi(&args)
    };
    let ids = |v: Value| -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect()
    };
    // Every page, in order (the next page read from a number, then from a URL).
    assert_eq!(ids(run("list_workers", &[]).ok()), [1, 2, 3, 4]);
    // A page the user chose is that page only.
    assert_eq!(ids(run("list_workers", &["-p", "page=2"]).ok()), [3]);
    // Never a silently cut list: past max_pages is an error saying so.
    let err = run("list_disks", &[]).err("ProviderError");
    assert_eq!(err["details"]["max_pages"], 5, "{err}");
    // A platform that names a fetched page again ends the list instead of looping.
    assert_eq!(ids(run("list_images", &[]).ok()), [1]);
}

#[test]
fn secrets_the_caller_gave_never_come_back_in_results() {
    let w = World::new();
    let dir = w.dir.path().join("echo");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("echo.json"),
        r#"{"name": "echo-key", "type": "command", "actions": {"test_auth": {
            "target": {"Command": "printf 'key=%s user=%s\n' {api_key} {user}"},
            "params": ["api_key", "user"],
            "parse_rules": {"type": "object", "patterns": {
                "key": {"regex": "key=(\\S+)"}, "user": {"regex": "user=(\\S+)"}}}}}}"#,
    )
    .unwrap();
    w.approve(dir.to_str().unwrap(), &["echo-key"]);
    let out = w.cpi(&[
        "--provider-dir",
        dir.to_str().unwrap(),
        "run",
        "echo-key",
        "test_auth",
        "-p",
        "api_key=s3cr3t-Zq9-echo",
        "-p",
        "user=alice",
        "--json",
    ]);
    assert_eq!(out.ok(), json!({"key": "[REDACTED]", "user": "alice"}));
    assert!(!out.all_output().contains("s3cr3t-Zq9-echo"));
}

#[test]
fn every_shipped_provider_passes_its_fixtures_and_real_ones_cover_every_action() {
    let w = World::new();
    let report = w.cpi(&["test", "--json"]).ok();
    for name in crate::support::SHIPPED_PROVIDERS {
        if name == "cloudco" || name == "truenas" {
            continue; // exercised live against the simulator instead
        }
        let cases = report[name]
            .as_array()
            .unwrap_or_else(|| panic!("{name} ships no fixtures: {report}"));
        let failed: Vec<&Value> = cases
            .iter()
            .filter(|c| c.get("failure").is_some())
            .collect();
        assert!(failed.is_empty(), "{name}: {failed:#?}");
        let show = w.cpi(&["show", name, "--json"]).ok();
        for action in show["actions"].as_object().unwrap().keys() {
            assert!(
                cases.iter().any(|c| c["action"] == action.as_str()),
                "{name}/{action} has no fixture in providers/fixtures/{name}/"
            );
        }
    }
    // A wrong expectation fails the run with exit code 1 and names the field (in a copy under
    // another name: a file with the built-in's name and bytes is the built-in provider).
    let dir = tempfile::tempdir().unwrap();
    let fixtures = dir.path().join("providers/fixtures/mycloud");
    std::fs::create_dir_all(&fixtures).unwrap();
    let mut copy: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("providers/cloudco.json")).unwrap(),
    )
    .unwrap();
    copy["name"] = json!("mycloud");
    std::fs::write(dir.path().join("providers/mycloud.json"), copy.to_string()).unwrap();
    let mut case: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("providers/fixtures/cloudco/list_workers.json"))
            .unwrap(),
    )
    .unwrap();
    case["expected"][0]["name"] = json!("not-web-1");
    std::fs::write(fixtures.join("list_workers.json"), case.to_string()).unwrap();
    let run = crate::support::run(
        std::process::Command::new(crate::support::cpi_bin())
            .current_dir(dir.path())
            .env_clear()
            .env("HOME", dir.path())
            .env("NO_COLOR", "1")
            .args([
                "--provider-dir",
                "providers",
                "test",
                "mycloud",
                "--output",
                "table",
            ]),
    );
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(
        run.stdout
            .contains("/0/name: expected \"not-web-1\", got \"web-1\""),
        "{}",
        run.stdout
    );
}
