//! Redirects, redaction and bounds: what a server's answer, a provider's rules or a flag
//! value can make cpi do. Real `cpi` processes against loopback listeners.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::exposure::{Listener, http_response};
use crate::support::World;

/// `cpi ARGS` with the world's `providers/` directory (where [`provider`] writes) searched.
fn cpi(w: &World, args: &[&str]) -> crate::support::Run {
    std::fs::create_dir_all(w.dir.path().join("providers")).unwrap();
    crate::support::run(
        w.command()
            .arg("--provider-dir")
            .arg(w.dir.path().join("providers"))
            .args(args),
    )
}

/// Writes `providers/NAME.json` in the world's directory.
fn provider(w: &World, name: &str, json: &str) {
    let dir = w.dir.path().join("providers");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.json")), json).unwrap();
    // Providers not built in need a person's approval first; one that does not load (the
    // empty-match rules) cannot be approved, and its run reports why it did not load.
    let _ = cpi(w, &["grant", "--yes", name]);
}

/// `cpi --json run leaky get_worker` against `api_url` with `api_key`, plus `extra`.
fn run_leaky(w: &World, api_url: &str, api_key: &str, extra: &[&str]) -> crate::support::Run {
    let (url, key) = (format!("api_url={api_url}"), format!("api_key={api_key}"));
    let mut args = vec![
        "--json",
        "run",
        "leaky",
        "get_worker",
        "-p",
        &url,
        "-p",
        &key,
    ];
    args.extend(["-p", "worker_id=1"]);
    args.extend(extra);
    cpi(w, &args)
}

/// An endpoint provider whose `get_worker` sends the secret in two custom headers and the
/// query string, to `{api_url}`.
fn leaky(w: &World) {
    provider(
        w,
        "leaky",
        r#"{"name": "leaky", "type": "endpoint", "actions": {"get_worker": {
          "target": {"Endpoint": {"url": "{api_url}/w/{worker_id}?token={api_key}", "method": "Get",
            "headers": {"X-Api-Key": "{api_key}", "PRIVATE-TOKEN": "{api_key}", "Accept": "application/json"}}},
          "params": ["api_url", "api_key", "worker_id"],
          "parse_rules": {"type": "object", "patterns": {"id": {"regex": "\"id\": *\"([^\"]+)\""}}}}}}"#,
    );
}

#[test]
fn a_redirect_to_another_origin_carries_no_secret_header_and_no_referer() {
    let w = World::new();
    leaky(&w);
    let other = Listener::start(|_| http_response("200 OK", "", r#"{"id": "w-1"}"#));
    let to = other.url.clone();
    let first = Listener::start(move |_| {
        http_response("302 Found", &format!("Location: {to}/moved\r\n"), "")
    });
    let run = run_leaky(&w, &first.url, "k-SECRET-123", &[]);
    // An approved provider's hops must be granted too: the other origin may be refused
    // outright; either way it never sees the secret.
    if run.code != 0 {
        run.err("CapabilityDeniedError");
        assert!(other.requests().is_empty(), "{:?}", other.requests());
        return;
    }
    assert_eq!(run.ok()["id"], "w-1");
    assert!(
        first.requests()[0].contains("k-SECRET-123"),
        "the first origin is the provider's own"
    );
    let seen = other.requests().join("\n").to_ascii_lowercase();
    assert!(seen.contains("get /moved"), "{seen}");
    for leak in ["k-secret-123", "x-api-key", "private-token", "referer"] {
        assert!(
            !seen.contains(leak),
            "{leak} reached the other origin:\n{seen}"
        );
    }
    assert!(seen.contains("accept: application/json"), "{seen}");
}

/// A built-in provider runs under no approval scope, so its redirects to another origin are
/// followed: the hop must carry neither its credentials nor a `Referer`.
#[test]
fn a_built_in_providers_redirect_to_another_origin_drops_its_credentials() {
    let w = World::new();
    let other = Listener::start(|_| http_response("200 OK", "", "[]"));
    let to = other.url.clone();
    let first = Listener::start(move |_| {
        http_response("302 Found", &format!("Location: {to}/moved?x=1\r\n"), "")
    });
    let _ = w.cpi(&[
        "--json",
        "run",
        "truenas",
        "list_workers",
        "-p",
        &format!("api_url={}", first.url),
        "-p",
        "api_key=k-SECRET-123",
    ]);
    assert!(
        first.requests()[0].contains("k-SECRET-123"),
        "the first origin is the provider's own: {:?}",
        first.requests()
    );
    let seen = other.requests().join("\n").to_ascii_lowercase();
    assert!(seen.contains("get /moved"), "the hop was followed: {seen}");
    for leak in ["k-secret-123", "authorization", "referer"] {
        assert!(
            !seen.contains(leak),
            "{leak} reached the other origin:\n{seen}"
        );
    }
}

#[test]
fn a_redirect_from_https_to_http_is_refused() {
    let w = World::new();
    leaky(&w);
    let plain = Listener::start(|_| http_response("200 OK", "", r#"{"id": "w-1"}"#));
    let tls = TlsRedirect::start(w.dir.path(), &format!("{}/plain", plain.url));
    let (base, ca) = (
        format!("https://localhost:{}", tls.port),
        format!("ca_cert_file={}", tls.ca.display()),
    );
    let run = run_leaky(&w, &base, "k-SECRET-123", &["-p", &ca]);
    let err = run.err("ProviderError");
    assert!(err["message"].as_str().unwrap().contains("HTTPS"), "{err}");
    assert!(plain.requests().is_empty(), "{:?}", plain.requests());
}

/// A TLS listener (rustls, a private CA made with openssl) answering every request with a
/// redirect to `location`.
struct TlsRedirect {
    port: u16,
    ca: std::path::PathBuf,
}

impl TlsRedirect {
    fn start(dir: &std::path::Path, location: &str) -> TlsRedirect {
        let (cert, key) = crate::exposure::self_signed(dir, "r");
        use rustls::pki_types::pem::PemObject;
        let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(&cert)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&key).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let config = std::sync::Arc::new(config);
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        let answer = http_response("302 Found", &format!("Location: {location}\r\n"), "");
        std::thread::spawn(move || {
            for stream in socket.incoming().flatten() {
                let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                    continue;
                };
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match std::io::Read::read(&mut tls, &mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let _ = tls.write_all(answer.as_bytes());
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        TlsRedirect { port, ca: cert }
    }
}

#[test]
fn errors_hide_a_secret_in_base64_lower_case_percent_form_or_a_url_password() {
    use base64::Engine;
    let w = World::new();
    leaky(&w);
    let secret = "k-SECRET/123 x";
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{secret}"));
    let body = format!(
        "{{\"message\": \"bad key {b64} (basic {basic}), sent k-SECRET%2f123+x, \
         retry at https://admin:hunter2@internal.example/x\"}}"
    );
    let server = Listener::start(move |_| http_response("500 Internal Server Error", "", &body));
    let run = run_leaky(&w, &server.url, secret, &["--attempts", "1"]);
    let err = run.err("ProviderError");
    let shown = run.all_output();
    for leak in [b64.as_str(), &basic[8..], "k-SECRET%2f123", "hunter2"] {
        assert!(!shown.contains(leak), "{leak} shown in {err}");
    }
    assert!(shown.contains("[REDACTED]"), "{err}");
}

#[test]
fn a_declared_secret_written_into_a_readable_config_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    provider(
        &w,
        "ticketed",
        r#"{"name": "ticketed", "type": "command", "secrets": ["ticket"], "actions": {
          "list_workers": {"target": {"Command": "echo {ticket}"}, "params": ["ticket"]}}}"#,
    );
    let dir = w.dir.path().join("config/cpi");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("cpi.toml");
    std::fs::write(&config, "[providers.ticketed]\nticket = \"t-0123456789\"\n").unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = cpi(&w, &["--json", "run", "ticketed", "list_workers"]);
    let err = run.err("ValidationError");
    assert!(
        err["message"].as_str().unwrap().contains("chmod 600"),
        "{err}"
    );
    assert!(!run.all_output().contains("t-0123456789"));
}

#[test]
fn rules_that_match_the_empty_string_are_refused_at_load_and_by_validate() {
    let w = World::new();
    provider(
        &w,
        "empty",
        r#"{"name": "empty", "type": "command", "actions": {"list_workers": {
          "target": {"Command": "echo a"},
          "parse_rules": {"type": "array", "separator": "x*",
            "patterns": {"id": {"regex": "(a)"}}}}}}"#,
    );
    let file = w.dir.path().join("providers/empty.json");
    let run = cpi(&w, &["validate", file.to_str().unwrap()]);
    assert_ne!(run.code, 0, "{}", run.all_output());
    assert!(
        run.all_output().contains("empty string"),
        "{}",
        run.all_output()
    );
    let run = cpi(&w, &["--json", "run", "empty", "list_workers"]);
    assert_ne!(run.code, 0, "{}", run.all_output());
    assert!(
        run.all_output().contains("empty string"),
        "{}",
        run.all_output()
    );
}

#[test]
fn outputs_that_would_amplify_stop_at_a_named_cap() {
    let w = World::new();
    // 300,000 records of one short line each.
    provider(
        &w,
        "many",
        r#"{"name": "many", "type": "command", "actions": {"list_workers": {
          "target": {"Command": "seq 1 300000"},
          "parse_rules": {"type": "array", "patterns": {"id": {"regex": "(\\d+)"}}}}}}"#,
    );
    let err = cpi(&w, &["--json", "run", "many", "list_workers"]).err("ProviderError");
    assert!(
        err["message"].as_str().unwrap().contains("cap on records"),
        "{err}"
    );
    // 40 fields each copying a 2 MB output.
    let fields: Vec<String> = (0..40)
        .map(|n| format!(r#""f{n}": {{"regex": "(?s)(.*)"}}"#))
        .collect();
    provider(
        &w,
        "wide",
        &format!(
            r#"{{"name": "wide", "type": "command", "actions": {{"get_worker": {{
              "target": {{"Command": "head -c 2000000 /dev/zero"}},
              "parse_rules": {{"type": "object", "patterns": {{{}}}}}}}}}}}"#,
            fields.join(",")
        ),
    );
    let err = cpi(&w, &["--json", "run", "wide", "get_worker"]).err("ProviderError");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("cap on result size"),
        "{err}"
    );
}

#[test]
fn fifty_thousand_placeholders_validate_in_seconds() {
    let w = World::new();
    let command: Vec<String> = (0..50_000).map(|n| format!("{{p{n}}}")).collect();
    provider(
        &w,
        "wordy",
        &format!(
            r#"{{"name": "wordy", "type": "command", "actions": {{"list_workers": {{
              "target": {{"Command": "echo {}"}}}}}}}}"#,
            command.join(" ")
        ),
    );
    let file = w.dir.path().join("providers/wordy.json");
    let started = Instant::now();
    let run = cpi(&w, &["validate", file.to_str().unwrap()]);
    let took = started.elapsed();
    assert!(
        !run.all_output().contains("panicked"),
        "{}",
        run.all_output()
    );
    assert!(took < Duration::from_secs(20), "cpi validate took {took:?}");
}

#[test]
fn numeric_flags_out_of_range_are_usage_errors_not_panics() {
    let w = World::new();
    for args in [
        &["run", "cloudco", "list_workers", "--timeout", "1e308"][..],
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--concurrency",
            "18446744073709551615",
        ],
        &["serve", "--addr", "127.0.0.1:0", "--max-connections", "0"],
    ] {
        let run = w.cpi(args);
        assert_eq!(run.code, 10, "{args:?}: {}", run.all_output());
        assert!(
            !run.all_output().contains("panicked"),
            "{}",
            run.all_output()
        );
    }
    // A zero duration limit is refused by the parser, like any malformed flag (exit 2).
    for args in [
        &[
            "wait",
            "cloudco",
            "wrk-1",
            "--for",
            "running",
            "--wait-timeout",
            "0s",
        ][..],
        &["install", "./nowhere", "--fetch-timeout", "0s"],
        &["serve", "--addr", "127.0.0.1:0", "--header-timeout", "0ms"],
    ] {
        let run = w.cpi(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.all_output());
        assert!(
            run.stderr.contains("must be more than zero"),
            "{args:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn a_batch_streams_its_input_and_a_bad_line_fails_alone() {
    let w = World::new();
    // A line that is not UTF-8 between two good ones.
    let file = w.dir.path().join("lines.jsonl");
    let mut bytes = b"{\"name\": \"web-1\"}\n".to_vec();
    bytes.extend_from_slice(b"{\"name\": \"caf\xe9\"}\n{\"name\": \"web-3\"}\n");
    std::fs::write(&file, bytes).unwrap();
    let run = cpi(
        &w,
        &[
            "run",
            "cloudco",
            "create_worker",
            "--batch",
            file.to_str().unwrap(),
        ],
    );
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", run.all_output());
    assert_eq!(
        (lines[0]["ok"].clone(), lines[2]["ok"].clone()),
        (true.into(), true.into())
    );
    assert_eq!(lines[1]["error"]["code"], "ValidationError");
    assert!(lines[1].to_string().contains("UTF-8"), "{}", lines[1]);

    // From a pipe: the first result comes out while the input is still open.
    let mut child = w
        .command()
        .args(["run", "cloudco", "list_workers", "--batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"{}\n").unwrap();
    stdin.flush().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
        let _ = tx.send(line);
    });
    let first = rx.recv_timeout(Duration::from_secs(20));
    drop(stdin);
    let _ = child.wait();
    let first = first.expect("a result before the input ended");
    assert!(first.contains("\"ok\":true"), "{first}");
}
