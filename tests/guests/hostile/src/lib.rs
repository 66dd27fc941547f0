//! A hostile provider component for the sandbox tests: every `invoke` action is an attack.
//! Built for `wasm32-wasip2` against the frozen `cpi:provider@0.1.0` (`wit/v0.1.0/`), so the
//! sandbox tests run through the host's adapter for that version; see `tests/e2e/wasm.rs`.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

wit_bindgen::generate!({
    path: "../../../wit/v0.1.0",
    world: "provider-component",
});

use cpi::provider::host;
use cpi::provider::types::{CommandCapability, Error, ErrorCategory, Manifest, WorkerStatus};
use exports::cpi::provider::provider::Guest;

/// The origin the redirect test grants (a server the test runs on this fixed loopback port;
/// the fixed ports sit below Linux's ephemeral range, where no outgoing connection or
/// `bind(:0)` of a test running beside it can take them).
const GRANTED_ORIGIN: &str = "http://127.0.0.1:27311";

/// The origin the header test grants (its own port: e2e tests run in parallel).
const HEADER_ORIGIN: &str = "http://127.0.0.1:27312";

/// The origins the classification test grants: a server of canned answers, and a port where
/// nothing listens.
const ANSWER_ORIGINS: [&str; 2] = ["http://127.0.0.1:27313", "http://127.0.0.1:27314"];

const ACTIONS: &[&str] = &[
    "ok",
    "spin",
    "alloc-bomb",
    "recurse",
    "run-undeclared",
    "run-outside-grant",
    "run-option",
    "run-semicolon",
    "http-ungranted",
    "http-redirect",
    "read-file",
    "read-env",
    "trap",
    "huge-result",
    "invalid-json",
    "flood-stdout",
    "escape-log",
    "tcp",
    "swallow-run",
    "swallow-http",
    "log-loop",
    "echo-loop",
    "log-flood",
    "deny-flood",
    "leak-secret",
    "escape-denial",
    "escape-result",
    "http-header",
    "get_answer",
    "sleep",
    "hang-command",
];

struct Hostile;

fn ok(text: String) -> Result<String, Error> {
    Ok(text)
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The WIT category of a contract category.
fn category(kind: cpi_contract::ErrorKind) -> ErrorCategory {
    use cpi_contract::ErrorKind as K;
    match kind {
        K::Authentication => ErrorCategory::Authentication,
        K::ResourceNotFound => ErrorCategory::ResourceNotFound,
        K::QuotaExceeded => ErrorCategory::QuotaExceeded,
        K::Validation => ErrorCategory::Validation,
        K::RateLimit => ErrorCategory::RateLimit,
        K::Timeout => ErrorCategory::Timeout,
        K::CapabilityDenied => ErrorCategory::CapabilityDenied,
        K::Unsupported => ErrorCategory::Unsupported,
        K::Provider | K::Internal => ErrorCategory::Provider,
    }
}

/// The string value of `key` in the flat JSON object of parameters cpi passes (no escapes).
fn param(params: &str, key: &str) -> String {
    let tag = format!("\"{key}\":\"");
    params
        .find(&tag)
        .map(|at| &params[at + tag.len()..])
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string()
}

#[inline(never)]
fn recurse(n: u64) -> u64 {
    if n == u64::MAX {
        return 0;
    }
    let mut buf = [0u8; 256];
    buf[(n % 256) as usize] = n as u8;
    std::hint::black_box(&mut buf);
    recurse(n + 1) + u64::from(buf[0])
}

impl Guest for Hostile {
    fn describe() -> Manifest {
        Manifest {
            name: "hostile".into(),
            version: "0.0.1".into(),
            api_version: "0.1.0".into(),
            commands: vec![
                CommandCapability {
                    program: "echo".into(),
                    args: vec!["hello".into(), "*".into()],
                },
                // For a granted command that hangs (`hang-command`).
                CommandCapability {
                    program: "sleep".into(),
                    args: vec!["*".into()],
                },
            ],
            http: [GRANTED_ORIGIN, HEADER_ORIGIN]
                .into_iter()
                .chain(ANSWER_ORIGINS)
                .map(String::from)
                .collect(),
            provider_json: None,
            // Used by a JSON provider the tests write around this component (`list_workers`
            // runs `echo hello MODE`; the mode picks the attack).
            parses: vec!["list_workers".into()],
            invokes: ACTIONS.iter().map(|s| s.to_string()).collect(),
            maps_status: true,
        }
    }

    fn parse(_action: String, raw: String) -> Result<String, Error> {
        let mode = raw.trim().strip_prefix("hello ").unwrap_or("");
        match mode {
            "plain" => ok("[{\"id\":\"w1\",\"status\":\"RUNNING\"}]".into()),
            // Denied, error ignored, success returned.
            "swallow" => {
                let _ = host::run_command(&rm());
                ok("[{\"id\":\"w1\",\"status\":\"RUNNING\"}]".into())
            }
            // The map-status hook swallows a denial for this status.
            "map-swallow" => ok("[{\"id\":\"w1\",\"status\":\"SWALLOW\"}]".into()),
            // More distinct statuses than cpi maps (each one a map-status call).
            "statuses" => {
                let items: Vec<String> = (0..5000)
                    .map(|i| format!("{{\"id\":\"w{i}\",\"status\":\"S{i}\"}}"))
                    .collect();
                ok(format!("[{}]", items.join(",")))
            }
            // 40 statuses whose mapping each takes 250 ms of wall-clock time.
            "slow-statuses" => {
                let items: Vec<String> = (0..40)
                    .map(|i| format!("{{\"id\":\"w{i}\",\"status\":\"SLOW{i}\"}}"))
                    .collect();
                ok(format!("[{}]", items.join(",")))
            }
            other => Err(Error {
                category: ErrorCategory::Validation,
                message: format!("unknown parse mode {other:?}"),
            }),
        }
    }

    fn map_status(raw: String) -> WorkerStatus {
        if raw == "SWALLOW" {
            let _ = host::run_command(&rm());
            return WorkerStatus::Running;
        }
        if raw.starts_with("SLOW") {
            let start = std::time::Instant::now();
            while start.elapsed() < std::time::Duration::from_millis(250) {
                std::hint::black_box(0);
            }
        }
        WorkerStatus::Unknown
    }

    fn invoke(action: String, params: String) -> Result<String, Error> {
        match action.as_str() {
            "ok" => ok("{\"ok\":true}".into()),
            "spin" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "alloc-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![7u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "recurse" => ok(format!("{}", recurse(0))),
            "run-undeclared" => {
                let cmd = host::Command {
                    program: "rm".into(),
                    args: vec!["-rf".into(), "/tmp/cpi-hostile".into()],
                    stdin: None,
                    timeout_ms: None,
                };
                host::run_command(&cmd).map(|o| o.stdout)
            }
            "run-outside-grant" => {
                let cmd = host::Command {
                    program: "echo".into(),
                    args: vec!["goodbye".into(), "world".into()],
                    stdin: None,
                    timeout_ms: None,
                };
                host::run_command(&cmd).map(|o| o.stdout)
            }
            // An option where the grant (`echo hello *`) has a bare wildcard: a CLI would
            // send its token to this URL.
            "run-option" => {
                let cmd = host::Command {
                    program: "echo".into(),
                    args: vec!["hello".into(), "--api-url=https://evil.example".into()],
                    stdin: None,
                    timeout_ms: None,
                };
                host::run_command(&cmd).map(|o| o.stdout)
            }
            "run-semicolon" => {
                let cmd = host::Command {
                    program: "echo".into(),
                    args: vec![
                        "hello".into(),
                        "x; touch CANARY $(touch CANARY) `touch CANARY`".into(),
                    ],
                    stdin: None,
                    timeout_ms: None,
                };
                let out = host::run_command(&cmd)?;
                ok(format!(
                    "{{\"stdout\":{},\"exit_code\":{}}}",
                    quote(&out.stdout),
                    out.exit_code
                ))
            }
            "http-ungranted" => {
                let req = host::Request {
                    method: "GET".into(),
                    url: "http://127.0.0.1:9/steal".into(),
                    headers: vec![],
                    body: None,
                };
                host::http_request(&req).map(|r| r.status.to_string())
            }
            "http-redirect" => {
                let req = host::Request {
                    method: "GET".into(),
                    url: format!("{GRANTED_ORIGIN}/redirect"),
                    headers: vec![],
                    body: None,
                };
                host::http_request(&req).map(|r| format!("{{\"status\":{}}}", r.status))
            }
            "read-file" => {
                let read = std::fs::read_to_string("/etc/passwd");
                let dir = std::fs::read_dir("/").map(|d| d.count());
                ok(format!(
                    "{{\"passwd\":{},\"root_entries\":{}}}",
                    read.map(|t| quote(&t)).unwrap_or_else(|_| "null".into()),
                    dir.map(|n| n.to_string()).unwrap_or_else(|_| "null".into())
                ))
            }
            "read-env" => {
                let vars = std::env::vars().count();
                let args = std::env::args().count();
                ok(format!("{{\"vars\":{vars},\"args\":{args}}}"))
            }
            "trap" => panic!("the guest gave up mid-call"),
            "huge-result" => ok(format!("\"{}\"", "x".repeat(20 << 20))),
            "invalid-json" => ok("{\"unterminated\": ".into()),
            "flood-stdout" => {
                use std::io::Write;
                let line = vec![b'A'; 64 << 10];
                let mut out = std::io::stdout();
                for _ in 0..512 {
                    let _ = out.write_all(&line);
                }
                ok("{\"flooded\":true}".into())
            }
            "escape-log" => {
                host::log(
                    host::LogLevel::Warn,
                    "\u{1b}[2J\u{1b}]0;pwned\u{7}visible-text",
                );
                ok("{\"logged\":true}".into())
            }
            "swallow-run" => {
                let _ = host::run_command(&rm());
                ok("{\"swallowed\":true}".into())
            }
            "swallow-http" => {
                let req = host::Request {
                    method: "GET".into(),
                    url: "http://127.0.0.1:9/steal".into(),
                    headers: vec![],
                    body: None,
                };
                let _ = host::http_request(&req);
                ok("{\"swallowed\":true}".into())
            }
            "log-loop" => loop {
                host::log(host::LogLevel::Trace, "tick");
            },
            "echo-loop" => {
                let cmd = host::Command {
                    program: "echo".into(),
                    args: vec!["hello".into(), "again".into()],
                    stdin: None,
                    timeout_ms: None,
                };
                loop {
                    let _ = host::run_command(&cmd);
                }
            }
            "log-flood" => {
                // 1 GiB of warnings, 1 MiB per call, each one different.
                let mut line = "w".repeat(1 << 20);
                for i in 0..1024 {
                    line.replace_range(0..8, &format!("{i:08}"));
                    host::log(host::LogLevel::Warn, &line);
                }
                ok("{\"flooded\":true}".into())
            }
            "deny-flood" => {
                // 1,024 denials of a 1 MiB argument.
                let cmd = host::Command {
                    program: "cat".into(),
                    args: vec!["d".repeat(1 << 20)],
                    stdin: None,
                    timeout_ms: None,
                };
                for _ in 0..1024 {
                    let _ = host::run_command(&cmd);
                }
                ok("{\"flooded\":true}".into())
            }
            "leak-secret" => {
                // The parameters (a secret among them) on every copy cpi shows.
                host::log(host::LogLevel::Warn, &format!("params: {params}"));
                host::log(host::LogLevel::Info, &format!("params: {params}"));
                println!("stdout params: {params}");
                eprintln!("stderr params: {params}");
                let cmd = host::Command {
                    program: "cat".into(),
                    args: vec![params.clone()],
                    stdin: None,
                    timeout_ms: None,
                };
                let _ = host::run_command(&cmd);
                ok("{\"leaked\":false}".into())
            }
            "escape-denial" => {
                let cmd = host::Command {
                    program: "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\rfake".into(),
                    args: vec!["\u{1b}[1A".into()],
                    stdin: None,
                    timeout_ms: None,
                };
                host::run_command(&cmd).map(|o| o.stdout)
            }
            "escape-result" => ok(
                "{\"workers\":[{\"id\":\"w1\",\"name\":\"\\u001b[2J\\u009b31m\\rfake\\u202e\"}],\
                  \"note\":\"\\u001b]0;pwned\\u0007\\u0085\"}"
                    .into(),
            ),
            "http-header" => {
                // Sets the header the caller names (`-p name=... -p value=...`).
                let req = host::Request {
                    method: "GET".into(),
                    url: format!("{HEADER_ORIGIN}/probe"),
                    headers: vec![(param(&params, "name"), param(&params, "value"))],
                    body: None,
                };
                host::http_request(&req).map(|r| format!("{{\"status\":{}}}", r.status))
            }
            "get_answer" => {
                // `-p base=... -p path=...`, like the JSON provider it is compared with; an
                // error status is classified by the contract, as the guest SDK does.
                let req = host::Request {
                    method: "GET".into(),
                    url: format!("{}/{}", param(&params, "base"), param(&params, "path")),
                    headers: vec![],
                    body: None,
                };
                let response = host::http_request(&req)?;
                let body = String::from_utf8_lossy(&response.body).into_owned();
                if (200..300).contains(&response.status) {
                    return ok(body);
                }
                Err(Error {
                    category: category(cpi_contract::classify_http(response.status, &body)),
                    message: format!("HTTP {}: {body}", response.status),
                })
            }
            // An hour's sleep: a wait inside WASI (a clock's pollable, blocked on).
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                ok("{\"slept\":true}".into())
            }
            // A granted command that hangs far longer than the call may last.
            "hang-command" => {
                let cmd = host::Command {
                    program: "sleep".into(),
                    args: vec!["100".into()],
                    stdin: None,
                    timeout_ms: None,
                };
                host::run_command(&cmd).map(|o| o.stdout)
            }
            "tcp" => {
                let connected = std::net::TcpStream::connect("127.0.0.1:9").is_ok();
                ok(format!("{{\"connected\":{connected}}}"))
            }
            other => Err(Error {
                category: ErrorCategory::Validation,
                message: format!("unknown action {other}"),
            }),
        }
    }
}

/// A command the manifest never requested.
fn rm() -> host::Command {
    host::Command {
        program: "rm".into(),
        args: vec!["-rf".into(), "/tmp/cpi-hostile".into()],
        stdin: None,
        timeout_ms: None,
    }
}

// WIT-named exports only link for wasm32; a native `cargo build --workspace` leaves them out.
#[cfg(target_arch = "wasm32")]
export!(Hostile);
