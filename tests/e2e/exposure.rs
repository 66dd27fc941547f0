//! What serve clients and batch lines may set, and how `cpi serve` holds up against callers
//! without a token: real `cpi serve` processes over loopback, a listener standing in for
//! wherever a client would like the server's credentials sent.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::serve::{Served, write_config};
use crate::support::World;

/// A loopback HTTP listener that answers every request with `answer` and keeps each request's
/// head (request line and headers) for the test to inspect.
pub struct Listener {
    pub url: String,
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl Listener {
    pub fn start(answer: impl Fn(&str) -> String + Send + 'static) -> Listener {
        let socket = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", socket.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in socket.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let head = read_head(&mut stream);
                log.lock().unwrap().push(head.clone());
                let _ = stream.write_all(answer(&head).as_bytes());
            }
        });
        Listener { url, seen }
    }

    /// Every request head received so far.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// A self-signed certificate for `localhost`/127.0.0.1 (not a CA, so rustls accepts it as a
/// server's identity when it is also the client's root): `NAME.pem` and `NAME.key` in `dir`.
pub fn self_signed(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// Reads up to the end of the headers (the body is ignored).
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A complete HTTP/1.1 response that closes the connection.
pub fn http_response(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn serve_requests_cannot_redirect_the_servers_credentials_or_relax_its_tls() {
    let w = World::new();
    let canary = Listener::start(|_| http_response("200 OK", "", "[]"));
    let served = Served::start(&w, &[]);
    let ask = |params: Value| {
        served.run(&json!({"provider": "truenas", "action": "list_workers", "params": params}))
    };
    // The base URL, a value from cpi.toml, a TLS setting: each the operator's.
    for (params, why) in [
        (
            json!({"api_url": format!("{}/api/v2.0", canary.url)}),
            "config sets it",
        ),
        (json!({"api_key": "client-chosen"}), "config sets it"),
        (json!({"verify_ssl": "false"}), "TLS setting"),
    ] {
        let (status, err) = ask(params.clone());
        assert_eq!(status, 403, "{params}: {err}");
        assert_eq!(err["error"]["code"], "CapabilityDeniedError", "{err}");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains(why), "{message}");
    }
    assert!(
        canary.requests().is_empty(),
        "the server's key went to the client's listener: {:?}",
        canary.requests()
    );
    // What the action is about stays the client's to say.
    let (status, list) = ask(json!({}));
    assert_eq!(status, 200, "{list}");
}

#[test]
fn an_operators_allow_list_is_exactly_what_requests_may_set() {
    let w = World::new();
    write_config(&w, "[serve.allow]\ntruenas = [\"verify_ssl\"]\n");
    let served = Served::start(&w, &[]);
    let ask = |params: Value| {
        served.run(&json!({"provider": "truenas", "action": "get_worker", "params": params}))
    };
    // Allowed: verify_ssl (the request then fails for the missing id, not for the setting).
    let (status, err) = ask(json!({"verify_ssl": "true"}));
    assert_eq!(status, 400, "{err}");
    assert!(err.to_string().contains("worker_id"), "{err}");
    // Not listed: refused, even a parameter the action itself declares.
    let (status, err) = ask(json!({"worker_id": "3"}));
    assert_eq!(status, 403, "{err}");
    assert!(err.to_string().contains("[serve.allow]"), "{err}");
}

#[test]
fn serve_errors_never_name_the_servers_files() {
    let w = World::new();
    write_config(
        &w,
        "[providers.cloudco]\nregion = { file = \"secrets/missing-region\" }\n",
    );
    let served = Served::start(&w, &[]);
    let (status, err) = served.run(&json!({"provider": "cloudco", "action": "list_workers"}));
    assert_eq!(status, 400, "{err}");
    let text = err.to_string();
    assert!(text.contains("providers.cloudco.region"), "{text}");
    let home = w.dir.path().display().to_string();
    assert!(!text.contains(&home), "a server path in {text}");
    assert!(!text.contains("missing-region"), "{text}");
}

#[test]
fn batch_lines_cannot_change_base_urls_or_configured_values_without_the_flag() {
    let w = World::new();
    let canary = Listener::start(|_| http_response("200 OK", "", "[]"));
    let batch = w.dir.path().join("lines.jsonl");
    std::fs::write(
        &batch,
        format!("{{}}\n{{\"api_url\": \"{}/api/v2.0\"}}\n", canary.url),
    )
    .unwrap();
    let args = w.truenas_args();
    let mut cmd: Vec<&str> = vec!["run", "truenas", "list_workers", "--batch"];
    let file = batch.display().to_string();
    cmd.push(&file);
    cmd.extend(args.iter().map(String::as_str));
    let run = w.cpi(&cmd);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{}", run.all_output());
    assert_eq!(lines[0]["ok"], true, "{}", lines[0]);
    assert_eq!(
        lines[1]["error"]["code"], "CapabilityDeniedError",
        "{}",
        lines[1]
    );
    assert!(lines[1].to_string().contains("--allow-override"));
    assert!(canary.requests().is_empty());
    // The explicit flag lets lines do it.
    cmd.push("--allow-override");
    let run = w.cpi(&cmd);
    assert_eq!(canary.requests().len(), 1, "{}", run.all_output());
}

/// Sends `head` on a fresh connection to `served` and returns how long the first byte of the
/// answer took and the answer (or `None` when nothing came within `wait`).
fn raw(served: &Served, head: &str, wait: Duration) -> (Duration, Option<String>) {
    let addr = served.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    let started = Instant::now();
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = vec![0u8; 4096];
    match stream.read(&mut answer) {
        Ok(n) if n > 0 => (
            started.elapsed(),
            Some(String::from_utf8_lossy(&answer[..n]).into_owned()),
        ),
        _ => (started.elapsed(), None),
    }
}

#[test]
fn serve_checks_the_token_before_reading_a_body_and_accepts_any_case_of_bearer() {
    let w = World::new();
    let served = Served::start(&w, &[]);
    // Headers promising a body that never comes, and no token: answered at once.
    let (_, answer) = raw(
        &served,
        "POST /v1/run HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n{\"provider\":",
        Duration::from_secs(5),
    );
    let answer = answer.expect("a 401 without waiting for the body");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // `bearer` in lower case is the same scheme (RFC 9110 §11.1).
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/v1/run", served.url))
        .header("Authorization", format!("bearer {}", served.token))
        .json(&json!({"provider": "cloudco", "action": "list_workers"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // An authorized body that stalls is cut off by the body timeout.
    let served = Served::start(&w, &["--body-timeout", "1s"]);
    let head = format!(
        "POST /v1/run HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 500\r\n\r\n{{",
        served.token
    );
    let (_, answer) = raw(&served, &head, Duration::from_secs(10));
    assert!(answer.expect("an answer").starts_with("HTTP/1.1 408"));
}

#[test]
fn idle_connections_are_closed_and_cannot_crowd_out_real_requests() {
    let w = World::new();
    // 100 file descriptors: without a connection cap, 200 idle connections use them all.
    let served = Served::start_with(
        &w,
        &["--header-timeout", "1s", "--max-connections", "16"],
        Some(100),
    );
    // A connection that never sends a request is closed after the header timeout.
    let (took, answer) = raw(&served, "", Duration::from_secs(8));
    assert!(
        answer
            .as_deref()
            .is_none_or(|a| a.starts_with("HTTP/1.1 408"))
            && took < Duration::from_secs(5),
        "idle connection kept open for {took:?}: {answer:?}"
    );
    // Many more idle connections than the cap: requests with a token are still answered.
    let addr = served.url.trim_start_matches("http://").to_string();
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    for _ in 0..5 {
        let health = client
            .get(format!("{}/healthz", served.url))
            .send()
            .unwrap();
        assert_eq!(health.status().as_u16(), 200);
    }
    let (status, _) = served.run(&json!({"provider": "cloudco", "action": "list_workers"}));
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(idle);
}

#[test]
fn serve_speaks_tls_when_given_a_certificate_and_warns_about_plain_http_beyond_loopback() {
    let w = World::new();
    let dir = w.dir.path();
    let (cert, key) = self_signed(dir, "serve");
    let served = Served::start(
        &w,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(served.url.starts_with("https://"), "{}", served.url);
    let root = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(root)
        .build()
        .unwrap();
    let resp = client
        .post(format!("{}/v1/run", served.url))
        .bearer_auth(&served.token)
        .json(&json!({"provider": "cloudco", "action": "list_workers"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // Plain HTTP beyond loopback is allowed with the flag, and warned about.
    let mut child = w
        .command()
        .args([
            "serve",
            "--addr",
            "0.0.0.0:0",
            "--allow-remote",
            "--token-file",
        ])
        .arg(dir.join("serve.token"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut first).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.contains("warning: serving plain HTTP"), "{first}");
}
