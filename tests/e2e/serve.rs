//! `cpi serve`: the HTTP API, run as a real process against the simulated cloud.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::World;

/// A running `cpi serve` on an ephemeral loopback port.
pub struct Served {
    child: Child,
    pub url: String,
    pub token: String,
    token_file: std::path::PathBuf,
}

/// Writes the server's `cpi.toml` (mode 0600): truenas's `api_url` and `api_key` point at the
/// simulator, as an operator configures them; requests cannot change them.
pub fn write_config(w: &World, extra: &str) -> std::path::PathBuf {
    let dir = w.dir.path().join("config/cpi");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cpi.toml");
    std::fs::write(
        &path,
        format!(
            "[providers.truenas]\napi_url = \"{}/api/v2.0\"\napi_key = \"{}\"\n{extra}",
            w.url(),
            w.token()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

impl Served {
    /// Starts `cpi serve` with the default config of [`write_config`] unless one exists.
    pub fn start(w: &World, extra: &[&str]) -> Served {
        Served::start_with(w, extra, None)
    }

    /// Starts `cpi serve` allowed at most `files` open file descriptors (when given).
    pub fn start_with(w: &World, extra: &[&str], files: Option<u64>) -> Served {
        Served::start_from(w, w.command(), extra, files)
    }

    /// `start_with`, from a `cpi` command the caller prepared (its environment, say).
    pub fn start_from(
        w: &World,
        mut command: std::process::Command,
        extra: &[&str],
        files: Option<u64>,
    ) -> Served {
        if !w.dir.path().join("config/cpi/cpi.toml").exists() {
            write_config(w, "");
        }
        let token_file = w.dir.path().join("serve.token");
        command
            .args(["serve", "--addr", "127.0.0.1:0", "--token-file"])
            .arg(&token_file)
            .args(extra)
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        if let Some(files) = files {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit(2) is async-signal-safe; nothing else runs in the child here.
            unsafe {
                command.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: files,
                        rlim_max: files,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command.spawn().expect("cpi serve starts");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while stderr.read_line(&mut sink).is_ok_and(|n| n > 0) {}
        });
        let token = std::fs::read_to_string(&token_file)
            .unwrap()
            .trim()
            .to_string();
        Served {
            child,
            url,
            token,
            token_file,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn run(&self, body: &Value) -> (u16, Value) {
        let resp = reqwest::blocking::Client::new()
            .post(format!("{}/v1/run", self.url))
            .bearer_auth(&self.token)
            .json(body)
            .timeout(Duration::from_secs(30))
            .send()
            .expect("POST /v1/run");
        let status = resp.status().as_u16();
        (status, resp.json().expect("JSON answer"))
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The params a request gives truenas: none, the server's config has its URL and key.
pub fn truenas_params(_w: &World) -> Value {
    json!({})
}

#[test]
fn serve_runs_the_standard_request_shape_and_answers_errors_in_the_standard_format() {
    let w = World::new();
    let served = Served::start(&w, &[]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&served.token_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the token file is private");
    }
    let client = reqwest::blocking::Client::new();
    let health = client
        .get(format!("{}/healthz", served.url))
        .send()
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);

    // No token, or a wrong one: 401 with the §10.2 shape.
    let body = json!({"provider": "cloudco", "action": "list_workers"});
    for auth in [None, Some("Bearer nope")] {
        let mut req = client.post(format!("{}/v1/run", served.url)).json(&body);
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        let resp = req.send().unwrap();
        assert_eq!(resp.status().as_u16(), 401);
        let err: Value = resp.json().unwrap();
        assert_eq!(err["error"]["code"], "AuthenticationError");
    }

    // A command provider and an endpoint provider, with values as plain data.
    let hostile = "web; touch /tmp/cpi-serve-canary $(id)";
    let (status, created) = served.run(&json!({
        "provider": "cloudco", "action": "create_worker", "params": {"name": hostile}
    }));
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["name"], hostile);
    assert!(!std::path::Path::new("/tmp/cpi-serve-canary").exists());
    let (status, list) = served.run(&json!({
        "provider": "truenas", "action": "list_workers", "params": truenas_params(&w)
    }));
    assert_eq!(status, 200, "{list}");
    assert!(
        !list.to_string().contains(served.token.as_str()),
        "the serve token never appears in answers"
    );

    // Errors: category → HTTP status, §10.2 body.
    let (status, err) = served.run(&json!({"provider": "nope", "action": "list_workers"}));
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("ValidationError"))
    );
    let (status, err) = served.run(&json!({
        "provider": "cloudco", "action": "get_worker", "params": {"worker_id": "wrk-00000000"}
    }));
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("ResourceNotFoundError")),
        "{err}"
    );
    let (status, err) = served.run(&json!({"provider": "cloudco"}));
    assert_eq!(status, 400);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"action\"")
    );

    // A client cannot make the server read (or probe) one of its files as a CA bundle.
    let mut params = crate::serve::truenas_params(&w);
    params["ca_cert_file"] = json!("/etc/passwd");
    let (status, err) = served.run(&json!({
        "provider": "truenas", "action": "list_workers", "params": params
    }));
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (403, Some("CapabilityDeniedError")),
        "{err}"
    );
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("TLS setting"),
        "{err}"
    );

    // Oversized bodies are refused before they are read whole.
    let big = json!({"provider": "cloudco", "action": "list_workers",
                     "params": {"x": "a".repeat(200_000)}});
    let resp = client
        .post(format!("{}/v1/run", served.url))
        .bearer_auth(&served.token)
        .json(&big)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
}

/// What requests share is rebuilt when the configuration changes: a key kept in a file
/// (`{ file = … }`) is read per request, so a rotated key is used by the next request.
#[test]
fn serve_uses_a_rotated_key_file_on_the_next_request() {
    let w = World::new();
    let key = w.dir.path().join("truenas.key");
    let write_key = |text: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&key, text).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    write_key(w.token());
    let dir = w.dir.path().join("config/cpi");
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "[providers.truenas]\napi_url = \"{}/api/v2.0\"\napi_key = {{ file = \"{}\" }}\n",
        w.url(),
        key.display()
    );
    std::fs::write(dir.join("cpi.toml"), config).unwrap();
    let served = Served::start(&w, &[]);
    let body = json!({"provider": "truenas", "action": "list_workers"});
    assert_eq!(served.run(&body).0, 200);
    write_key("not-the-key");
    let (status, answer) = served.run(&body);
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["error"]["code"], "AuthenticationError", "{answer}");
    write_key(w.token());
    assert_eq!(served.run(&body).0, 200);
}

#[test]
fn serve_finishes_in_flight_requests_on_sigterm_and_refuses_unsafe_setups() {
    let w = World::new();
    let mut served = Served::start(&w, &[]);
    // Slow enough that the request is still in flight at SIGTERM on a loaded machine.
    w.set_faults(json!({"latency_ms": 3000}));
    let (url, token, params) = (served.url.clone(), served.token.clone(), truenas_params(&w));
    let in_flight = std::thread::spawn(move || {
        reqwest::blocking::Client::new()
            .post(format!("{url}/v1/run"))
            .bearer_auth(token)
            .json(&json!({"provider": "truenas", "action": "list_workers", "params": params}))
            .send()
            .map(|r| r.status().as_u16())
    });
    std::thread::sleep(Duration::from_millis(1000));
    let status = served.terminate();
    assert!(status.success(), "graceful exit: {status:?}");
    assert_eq!(
        in_flight.join().unwrap().unwrap(),
        200,
        "the slow request finished"
    );

    // Listening beyond loopback needs the explicit flag.
    let run = w.cpi(&["serve", "--addr", "0.0.0.0:0"]);
    assert_eq!(run.code, 10, "{}", run.all_output());
    assert!(run.all_output().contains("--allow-remote"));
    // A token file others can read is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&served.token_file, std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let file = served.token_file.display().to_string();
        let run = w.cpi(&["serve", "--addr", "127.0.0.1:0", "--token-file", &file]);
        assert_eq!(run.code, 10, "{}", run.all_output());
        assert!(run.all_output().contains("chmod 600"));
    }
}

#[test]
fn serve_finishes_an_action_whose_client_hung_up() {
    let w = World::new();
    // A CLI that takes 3 s before it creates: the client gives up first.
    let fake = w.dir.path().join("slow-bin");
    std::fs::create_dir_all(&fake).unwrap();
    let script = fake.join("cloudco-cli");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nsleep 3\nexec '{}' \"$@\"\n",
            w.bin.join("cloudco-cli").display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut command = w.command();
    command.env(
        "PATH",
        format!(
            "{}:{}:{}",
            fake.display(),
            w.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    let served = Served::start_from(&w, command, &[], None);
    let hung_up = reqwest::blocking::Client::new()
        .post(format!("{}/v1/run", served.url))
        .bearer_auth(&served.token)
        .json(
            &json!({"provider": "cloudco", "action": "create_worker", "params": {"name": "late"}}),
        )
        .timeout(Duration::from_millis(1500))
        .send();
    assert!(hung_up.is_err(), "the client gave up first: {hung_up:?}");
    // The create was started, so it is finished, not cut off half-way.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let names = loop {
        let list = w.cpi(&["run", "cloudco", "list_workers", "--json"]).ok();
        let names: Vec<String> = list
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|x| x["name"].as_str().map(str::to_string))
            .collect();
        if names.iter().any(|n| n == "late") || std::time::Instant::now() > deadline {
            break names;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(names, ["late"], "the create ran to its end");
}
