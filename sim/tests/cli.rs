//! Integration tests of the `cloudco-cli` binary against a real simulator.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use cpi_sim::{Sim, SimConfig};
use regex::Regex;
use serde_json::{Value, json};
use tempfile::TempDir;

const CLI: &str = env!("CARGO_BIN_EXE_cloudco-cli");

/// A simulator on its own runtime plus a scratch HOME for the CLI.
struct Fixture {
    rt: tokio::runtime::Runtime,
    sim: Option<Sim>,
    url: String,
    token: String,
    dir: TempDir,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Fixture {
    fn new(max_workers: usize) -> Self {
        let dir = TempDir::new().expect("tempdir");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let mut cfg = SimConfig::new(dir.path().join("sim.json"));
        // Long enough for the list test to see "provisioning" even on a loaded machine.
        cfg.transition = Duration::from_secs(1);
        cfg.max_workers = max_workers;
        let sim = rt.block_on(Sim::start(cfg)).expect("sim starts");
        Fixture {
            url: sim.url(),
            token: sim.token().to_owned(),
            sim: Some(sim),
            rt,
            dir,
        }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Runs the CLI with a clean environment; `key` becomes CLOUDCO_API_KEY.
    fn cli_with(&self, args: &[&str], key: Option<&str>, url: &str) -> Out {
        let mut cmd = Command::new(CLI);
        cmd.args(args)
            .env_clear()
            .env("HOME", self.home())
            .env("CLOUDCO_API_URL", url)
            .env("CLOUDCO_TIMEOUT_SECS", "10");
        if let Some(k) = key {
            cmd.env("CLOUDCO_API_KEY", k);
        }
        let out = cmd.output().expect("cloudco-cli runs");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn cli(&self, args: &[&str]) -> Out {
        self.cli_with(args, Some(&self.token), &self.url)
    }

    fn sim_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        let text = req.send().expect("send").text().expect("text");
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    fn create(&self, name: &str, region: &str) -> String {
        let o = self.cli(&["worker", "create", "--name", name, "--region", region]);
        assert_eq!(o.code, 0, "{}", o.stderr);
        capture(r"Worker ID:\s+([a-z0-9-]+)", &o.stdout).expect("worker id")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.rt.block_on(sim.shutdown());
        }
    }
}

fn capture(re: &str, text: &str) -> Option<String> {
    Regex::new(re)
        .expect("regex")
        .captures(text)
        .map(|c| c[1].to_owned())
}

#[test]
fn version_and_usage() {
    let f = Fixture::new(20);
    let o = f.cli(&["--version"]);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "cloudco-cli version 1.4.2\n")
    );
    assert_eq!(
        capture(r"cloudco-cli version ([\d\.]+)", &o.stdout).as_deref(),
        Some("1.4.2")
    );
    let o = f.cli(&["teleport"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("Usage: cloudco-cli"), "{}", o.stderr);
    let o = f.cli(&["worker", "create", "--name", "x", "--colour", "red"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr
            .starts_with("Error: invalid argument: unknown flag '--colour'"),
        "{}",
        o.stderr
    );
}

#[test]
fn create_list_describe_lifecycle_delete() {
    let f = Fixture::new(20);
    f.sim_call("DELETE", "/_sim/requests", None);
    let o = f.cli(&[
        "worker",
        "create",
        "--region",
        "us-west",
        "--name",
        "web 1",
        "--type",
        "standard-4",
        "--image",
        "debian-12",
        "--network",
        "prod",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stderr, "");
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 8, "{}", o.stdout);
    assert_eq!(lines[0], "Worker created successfully");
    assert!(
        Regex::new(r"^Worker ID: wrk-[0-9a-f]{8}$")
            .expect("re")
            .is_match(lines[1]),
        "{}",
        lines[1]
    );
    assert_eq!(
        &lines[2..],
        [
            "Name: web 1",
            "Type: standard-4",
            "Image: debian-12",
            "Region: us-west",
            "IP Address: 10.0.0.2",
            "Status: provisioning"
        ]
    );
    // The §4.1 create_worker regexes.
    let id = capture(r"Worker ID:\s+([a-z0-9-]+)", &o.stdout).expect("id");
    assert_eq!(
        capture(r"Name:\s+([^\n]+)", &o.stdout).as_deref(),
        Some("web 1")
    );
    assert_eq!(
        capture(r"IP Address:\s+([0-9\.]+)", &o.stdout).as_deref(),
        Some("10.0.0.2")
    );
    assert_eq!(
        capture(r"Status:\s+(\w+)", &o.stdout).as_deref(),
        Some("provisioning")
    );

    // Exactly one well-formed request reached the server.
    let log = f.sim_call("GET", "/_sim/requests", None);
    assert_eq!(log["count"], 1, "{log}");
    assert_eq!(log["requests"][0]["method"], "POST");
    assert_eq!(log["requests"][0]["path"], "/instances");
    let sent: Value = serde_json::from_str(log["requests"][0]["body"].as_str().expect("body"))
        .expect("json body");
    assert_eq!(
        sent,
        json!({"name": "web 1", "type": "standard-4", "image": "debian-12", "region": "us-west", "network": "prod"})
    );

    let id2 = f.create("api", "us-west");
    f.create("elsewhere", "eu-central");

    let o = f.cli(&["workers", "list", "--region", "us-west", "--output", "json"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let expected = format!(
        "[\n  {{\"id\": \"{id}\", \"name\": \"web 1\", \"status\": \"provisioning\", \"type\": \"standard-4\", \"region\": \"us-west\"}},\n  {{\"id\": \"{id2}\", \"name\": \"api\", \"status\": \"provisioning\", \"type\": \"standard-2\", \"region\": \"us-west\"}}\n]\n"
    );
    assert_eq!(o.stdout, expected);
    let ids: Vec<String> = o
        .stdout
        .split('\n')
        .filter_map(|l| capture(r#""id":\s*"([^"]+)""#, l))
        .collect();
    assert_eq!(ids, [id.clone(), id2.clone()]);
    let o = f.cli(&["worker", "list", "--region", "nowhere"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "[\n]\n"));

    let t = std::time::Instant::now();
    while f.sim_call("GET", &format!("/instances/{id}"), None)["status"] != "running" {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "worker never became running"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    let o = f.cli(&[
        "worker", "describe", &id, "--region", "us-west", "--output", "json",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let keys: Vec<String> = o
        .stdout
        .lines()
        .filter_map(|l| capture(r#"^  "([a-z_]+)":"#, l))
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "name",
            "status",
            "type",
            "image",
            "region",
            "network",
            "ip",
            "created_at"
        ]
    );
    assert!(o.stdout.starts_with("{\n  \"id\": \""), "{}", o.stdout);
    assert_eq!(
        capture(r#""status":\s*"([^"]+)""#, &o.stdout).as_deref(),
        Some("running")
    );
    assert_eq!(
        capture(r#""ip":\s*"([^"]+)""#, &o.stdout).as_deref(),
        Some("10.0.0.2")
    );
    let v: Value = serde_json::from_str(&o.stdout).expect("describe is JSON");
    assert_eq!(v["network"], "prod");

    for (verb, msg) in [
        ("stop", "Worker stopped successfully\n"),
        ("stop", "Worker stopped successfully\n"),
        ("start", "Worker started successfully\n"),
        ("reboot", "Worker rebooted successfully\n"),
        ("delete", "Worker deleted successfully\n"),
    ] {
        let o = f.cli(&["worker", verb, &id, "--region", "us-west"]);
        assert_eq!(
            (o.code, o.stdout.as_str()),
            (0, msg),
            "{verb}: {}",
            o.stderr
        );
    }
    let o = f.cli(&["workers", "describe", &id]);
    assert_eq!(o.code, 4);
    assert!(o.stderr.starts_with("Error: not found: "), "{}", o.stderr);
    assert_eq!(o.stderr.lines().count(), 1);
    // An ID with reserved characters is percent-encoded, not injected into the path.
    f.sim_call("DELETE", "/_sim/requests", None);
    assert_eq!(f.cli(&["worker", "start", "a/b?c"]).code, 4);
    let log = f.sim_call("GET", "/_sim/requests", None);
    assert_eq!(log["requests"][0]["path"], "/instances/a%2Fb%3Fc/start");
}

#[test]
fn auth_configure_and_status() {
    let f = Fixture::new(20);
    let o = f.cli_with(&["auth", "status"], None, &f.url);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "Authentication Status: unauthenticated\n")
    );
    let o = f.cli_with(&["worker", "list"], None, &f.url);
    assert_eq!(o.code, 3);
    assert!(o.stderr.contains("authentication failed"), "{}", o.stderr);

    let o = f.cli_with(
        &["auth", "configure", "--api-key", "bogus", "--project", "p1"],
        None,
        &f.url,
    );
    assert_eq!(o.code, 3);
    assert!(
        o.stderr.starts_with("Error: authentication failed"),
        "{}",
        o.stderr
    );
    assert!(!f.home().join(".cloudco/config.json").exists());

    let o = f.cli_with(
        &[
            "auth",
            "configure",
            "--api-key",
            &f.token,
            "--project",
            "p1",
        ],
        None,
        &f.url,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "Authentication configured successfully");
    assert!(
        Regex::new(r"^Account ID: acct-[0-9a-f]{8}$")
            .expect("re")
            .is_match(lines[1]),
        "{}",
        o.stdout
    );
    let account = capture(r"Account ID:\s+([a-z0-9-]+)", &o.stdout).expect("account");
    let cfg = f.home().join(".cloudco/config.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cfg)
            .expect("config written")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The stored key is used when CLOUDCO_API_KEY is absent.
    let o = f.cli_with(&["auth", "status"], None, &f.url);
    assert_eq!(
        o.stdout,
        format!("Authentication Status: authenticated\nUsername: admin\nAccount ID: {account}\n")
    );
    assert_eq!(
        capture(r"Authentication Status:\s+(\w+)", &o.stdout).as_deref(),
        Some("authenticated")
    );
    let o = f.cli_with(&["worker", "list"], None, &f.url);
    assert_eq!((o.code, o.stdout.as_str()), (0, "[\n]\n"), "{}", o.stderr);

    let o = f.cli_with(&["auth", "validate"], Some("revoked"), &f.url);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "Authentication Status: invalid\n")
    );
    let o = f.cli_with(&["worker", "list"], Some("revoked"), &f.url);
    assert_eq!(o.code, 3);
}

#[test]
fn errors_are_categorised() {
    let f = Fixture::new(1);
    f.create("only", "us-central");
    let o = f.cli(&["worker", "create", "--name", "second"]);
    assert_eq!(o.code, 5);
    assert!(
        o.stderr.starts_with("Error: quota exceeded"),
        "{}",
        o.stderr
    );

    f.sim_call(
        "PUT",
        "/_sim/faults",
        Some(json!({"fail_status": 429, "fail_count": 1, "retry_after_secs": 2})),
    );
    let o = f.cli(&["worker", "list"]);
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (6, "Error: rate limit exceeded, retry after 2 seconds\n")
    );

    f.sim_call(
        "PUT",
        "/_sim/faults",
        Some(json!({"fail_status": 500, "fail_count": 1})),
    );
    let o = f.cli(&["worker", "list"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.starts_with("Error: server error"), "{}", o.stderr);

    f.sim_call("PUT", "/_sim/faults", Some(json!({"malformed": true})));
    let o = f.cli(&["worker", "list", "--region", "us-central"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        serde_json::from_str::<Value>(&o.stdout).is_err(),
        "{}",
        o.stdout
    );
    assert!(o.stdout.starts_with("[{\"id\""), "{}", o.stdout);
    f.sim_call("DELETE", "/_sim/faults", None);

    let o = f.cli(&["worker", "create", "--name", "x", "--type", ""]);
    assert_eq!(
        o.code, 5,
        "empty values fall back to defaults; quota still applies"
    );

    // Connection refused: a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let o = f.cli_with(
        &["worker", "list"],
        Some("k"),
        &format!("http://127.0.0.1:{port}"),
    );
    assert_eq!(o.code, 1);
    assert!(o.stderr.starts_with("Error: server error"), "{}", o.stderr);
    assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
}
