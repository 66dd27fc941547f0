//! The execution gate: every path that runs a provider's targets (run, init, ...) checks the
//! same grants, and a guest cannot set the headers that belong to the connection.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::World;

/// A world whose provider directory holds the hostile component and `probe.json`, a JSON
/// provider naming it whose lifecycle targets are programs the component was never granted.
fn probe_world() -> (World, PathBuf) {
    let (w, dir) = crate::wasm::hostile_world();
    let probe = serde_json::json!({
        "name": "probe",
        "type": "command",
        "description": "Lifecycle targets outside the component's grants.",
        "component": "hostile.wasm",
        "actions": {
            "initialize_cli": {"target": {"Command": "touch CANARY"}, "params": []},
            "test_install": {"target": {"Command": "env"}, "params": []}
        }
    });
    std::fs::write(dir.join("probe.json"), probe.to_string()).unwrap();
    (w, dir)
}

/// `cpi init` runs a component-backed provider's lifecycle under the component's grants,
/// exactly like `cpi run`: an ungranted target is refused (exit 17) and nothing runs.
#[test]
fn init_checks_lifecycle_targets_against_the_component_grants() {
    let (w, dir) = probe_world();
    let pd = dir.display().to_string();
    let mut cmd = w.command();
    cmd.env("SECRET_TOKEN", "leak-me")
        .args(["--provider-dir", &pd, "init", "probe", "--json"]);
    let init = crate::support::run(&mut cmd);
    assert_eq!(init.code, 17, "{}\n{}", init.stdout, init.stderr);
    let report = init.json();
    assert_eq!(report["ready"], false, "{report}");
    assert_eq!(report["steps"][0]["outcome"], "failed", "{report}");
    assert_eq!(
        report["steps"][0]["error"]["error"]["code"], "CapabilityDeniedError",
        "{report}"
    );
    assert!(
        !w.dir.path().join("CANARY").exists(),
        "an ungranted target ran"
    );
    assert!(
        !init.all_output().contains("leak-me"),
        "{}",
        init.all_output()
    );
    // `cpi run` of the same step says the same.
    let run = w.cpi(&[
        "--provider-dir",
        &pd,
        "run",
        "probe",
        "initialize_cli",
        "--json",
    ]);
    assert_eq!(run.code, 17, "{}", run.stderr);
    run.err("CapabilityDeniedError");
    assert!(!w.dir.path().join("CANARY").exists());
}

/// A loopback server on the header test's origin: records the head of every request until
/// one carries `x-probe`, then returns them all.
fn recording_server() -> std::thread::JoinHandle<Vec<String>> {
    let listener =
        TcpListener::bind("127.0.0.1:27312").expect("port 27312 is free for the header test");
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let mut heads = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            let Ok((mut stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 8192];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
            let done = head.contains("x-probe");
            heads.push(head);
            if done {
                break;
            }
        }
        heads
    })
}

/// A guest cannot set `Host` (reaching another virtual host behind a granted address) or
/// the headers that frame the connection; what it may set arrives, with cpi's own `Host`.
#[test]
fn a_guest_cannot_set_host_or_connection_headers() {
    let (w, dir) = crate::wasm::hostile_world();
    let server = recording_server();
    let pd = dir.display().to_string();
    let header = |name: &str, value: &str| {
        w.cpi(&[
            "--provider-dir",
            &pd,
            "run",
            "hostile",
            "http-header",
            "--json",
            "--allow-net",
            "http://127.0.0.1:27312",
            "-p",
            &format!("name={name}"),
            "-p",
            &format!("value={value}"),
        ])
    };
    for (name, value) in [
        ("Host", "internal.example"),
        ("host", "internal.example:27312"),
        ("Connection", "keep-alive, x-probe"),
        ("Transfer-Encoding", "chunked"),
        ("Content-Length", "5"),
    ] {
        let out = header(name, value);
        assert_eq!(out.code, 17, "{name}: {}\n{}", out.stdout, out.stderr);
        let err = out.err("CapabilityDeniedError");
        assert!(
            err["message"].as_str().unwrap().contains(name),
            "{name}: {err}"
        );
    }
    assert_eq!(header("X-Probe", "1").ok()["status"], 200);
    let heads = server.join().unwrap();
    assert_eq!(heads.len(), 1, "a refused request was sent: {heads:?}");
    assert!(
        heads[0].contains("\r\nhost: 127.0.0.1:27312\r\n"),
        "{heads:?}"
    );
    assert!(!heads[0].contains("internal.example"), "{heads:?}");
}

/// A loopback server of canned answers on the classification test's origin, counting the
/// requests for each path until `stop` is set.
fn answering_server(
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<std::collections::HashMap<String, u32>> {
    use std::sync::atomic::Ordering;
    let listener =
        TcpListener::bind("127.0.0.1:27313").expect("port 27313 is free for the answers test");
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let mut counts = std::collections::HashMap::new();
        while !stop.load(Ordering::SeqCst) {
            let Ok((mut stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 8192];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            let path = head.split(' ').nth(1).unwrap_or("").to_string();
            let (status, extra, body) = match path.as_str() {
                "/404" => ("404 Not Found", "", r#"{"message": "no such answer"}"#),
                "/429" => ("429 Too Many Requests", "Retry-After: 1\r\n", "slow down"),
                "/503" => (
                    "503 Service Unavailable",
                    "",
                    "<Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error>",
                ),
                _ => ("200 OK", "", r#"{"ok": true}"#),
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
            *counts.entry(path).or_insert(0) += 1;
        }
        counts
    })
}

/// The same server answers (404, 429 with Retry-After, a 503 saying it throttles, nothing
/// listening) give a component's request and a JSON provider's the same error category,
/// exit code and retries: both go through the one gate and classify with one contract.
#[test]
fn a_component_and_a_json_provider_classify_http_failures_alike() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (w, dir) = crate::wasm::hostile_world();
    let answers = serde_json::json!({
        "name": "answers",
        "type": "endpoint",
        "description": "GETs one canned answer.",
        "actions": {
            "get_answer": {
                "target": {"Endpoint": {"url": "{base}/{path}", "method": "Get"}},
                "params": ["base", "path"]
            }
        }
    });
    std::fs::write(dir.join("answers.json"), answers.to_string()).unwrap();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let server = answering_server(stop.clone());
    let pd = dir.display().to_string();
    w.approve(&pd, &["answers"]);
    let run = |provider: &str, base: &str, path: &str| {
        let mut args = vec![
            "--provider-dir".to_string(),
            pd.clone(),
            "run".into(),
            provider.into(),
            "get_answer".into(),
            "--json".into(),
            "-p".into(),
            format!("base={base}"),
            "-p".into(),
            format!("path={path}"),
        ];
        if provider == "hostile" {
            args.extend(["--allow-net".into(), base.to_string()]);
        }
        w.cpi(&args)
    };
    let served = "http://127.0.0.1:27313";
    let refused = "http://127.0.0.1:27314";
    let cases = [
        (served, "404", "ResourceNotFoundError"),
        (served, "429", "RateLimitError"),
        (served, "503", "RateLimitError"),
        (refused, "x", "ProviderError"),
    ];
    let mut seen = Vec::new();
    for (base, path, code) in cases {
        let json = run("answers", base, path);
        let component = run("hostile", base, path);
        let (je, ce) = (json.err(code), component.err(code));
        assert_eq!(json.code, component.code, "{path}: {je} / {ce}");
        assert_eq!(
            je["details"]["attempts"], ce["details"]["attempts"],
            "{path}: retried alike: {je} / {ce}"
        );
        seen.push((path, je["details"]["attempts"].clone()));
    }
    // Rate limits and a refused connection were retried, the 404 was not.
    assert_eq!(seen[0].1, serde_json::Value::Null, "{seen:?}");
    assert!(seen[1..].iter().all(|(_, a)| a == 3), "{seen:?}");
    stop.store(true, Ordering::SeqCst);
    let counts = server.join().unwrap();
    assert_eq!(counts.get("/404"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("/429"), Some(&6), "{counts:?}");
    assert_eq!(counts.get("/503"), Some(&6), "{counts:?}");
}
