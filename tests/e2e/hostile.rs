//! Hostile parameter values against cpi's injection boundary, with real processes and real HTTP
//! over loopback.
//!
//! Every value of [`hostile_values`] goes through every command context cpi quotes for (argv,
//! `sh -c` scripts at top level, in quotes, in `$(...)`, in backticks, behind `env`) and through
//! every position of an HTTP request (path segment, query value, header, JSON string, bare JSON
//! value). A value must come out byte-equal, as exactly one argument / segment / query value /
//! header / JSON string, must never run as code (canary files), and must be refused *before*
//! anything is sent where it cannot be placed safely. Secrets must never be printed, in any form.
//!
//! The fixture providers live in `tests/fixtures/hostile/`.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{self, Run, World, repo};

// ---------------------------------------------------------------------------------------------
// The values

/// The 64 KiB value: mostly alphanumeric, with shell metacharacters sprinkled in every 64 bytes
/// (no `"` or `\`, so its JSON form is the value itself and a truncated log can still be compared).
fn big_value() -> String {
    let chunk = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV'$(); ";
    assert_eq!(chunk.len(), 64);
    chunk.repeat(1024)
}

/// Values that would break out of a naive substitution somewhere. Payloads that would create a
/// file name it `CANARY` (relative to the working directory) or `$HOME/CANARY`.
fn hostile_values() -> Vec<String> {
    let fixed: &[&str] = &[
        // Quotes and shell quoting tricks.
        "'",
        "\"",
        "it's \"quoted\"",
        "'\"'\"'",
        "'\\''",
        "\\'",
        "'; touch CANARY; '",
        "\"; touch CANARY; \"",
        // Command separators and substitutions.
        ";",
        "a; touch CANARY",
        "&&",
        "x && touch CANARY",
        "|",
        "x | touch CANARY",
        "x || touch CANARY &",
        "$(touch CANARY)",
        "\"$(touch CANARY)\"",
        "'$(touch CANARY)'",
        "`touch CANARY`",
        "\"`touch CANARY`\"",
        "x`touch CANARY`y",
        "$(touch $HOME/CANARY)",
        "$HOME",
        "${HOME}",
        "$((6*7))",
        "$'\\x41'",
        "$1 $@ $0 $$",
        "!!",
        "# comment",
        "(",
        ")",
        "<<EOF",
        ">out",
        "<in",
        "2>&1",
        // Line breaks, tabs and control characters.
        "\n",
        "a\nb",
        "x\ntouch CANARY\n",
        "\\\ntouch CANARY",
        "trailing newlines\n\n",
        "\r",
        "a\r\nb",
        "x\r\nX-Injected: 1",
        "\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        "\t",
        "a\tb",
        "\u{1}\u{2}\u{7}\u{8}\u{b}\u{c}\u{1b}[31mred\u{1b}[0m\u{7f}",
        // Placeholders: substituted exactly once, so these stay literal.
        "{name}",
        "{api_key}",
        "{v}",
        "{{v}}",
        // Paths, URL syntax and encodings.
        "../",
        "..",
        ".",
        "...",
        "../../etc/passwd",
        "/",
        "//",
        "a/b",
        "?#&=",
        "a=b&c=d",
        "#frag",
        "%2e%2e",
        "%2e%2e%2f",
        "%00",
        "%2F",
        "%",
        "a+b",
        // Spaces, flags, globs, home.
        " ",
        "  padded  ",
        "-",
        "--flag",
        "-n",
        "--help",
        "*",
        "/*",
        "~",
        "~root",
        // Unicode: emoji, RTL override, combining marks, separators, BOM.
        "🚀🔥",
        "שלום\u{202e}gnp.exe",
        "e\u{301}\u{302}\u{303}",
        "\u{2028}\u{2029}\u{85}\u{feff}",
        // Empty.
        "",
        // JSON fragments and JSON values.
        "\",\"x\":\"",
        "\"}",
        "{\"a\":1}",
        "[1,2]",
        "null",
        "true",
        "123",
        "1, \"x\": 2",
        // Backslashes and escapes.
        "\\",
        "\\\\",
        "\\\"",
        "\\n",
        "\\u0000",
        "%s%n%x",
        "<script>alert(1)</script>",
        "' OR '1'='1",
    ];
    let mut values: Vec<String> = fixed.iter().map(|s| s.to_string()).collect();
    values.push(big_value());
    values
}

/// Values with NUL: they cannot be passed on a command line, so they come from a config file.
const NUL_VALUES: [&str; 3] = ["a\0b", "\0", "%00\0$(touch CANARY)"];

/// A short, printable description of a value for failure messages.
fn show(v: &str) -> String {
    let dbg = format!("{v:?}");
    if dbg.len() <= 90 {
        return dbg;
    }
    let mut cut = 80;
    while !dbg.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes)", &dbg[..cut], v.len())
}

#[test]
fn the_value_list_covers_the_brief() {
    let values = hostile_values();
    assert!(values.len() >= 50, "only {} values", values.len());
    let distinct: BTreeSet<&String> = values.iter().collect();
    assert_eq!(distinct.len(), values.len(), "duplicate values");
    for needle in [
        "'",
        "\"",
        ";",
        "&&",
        "|",
        "$(",
        "`",
        "$HOME",
        "\n",
        "\r\n",
        "\t",
        "{name}",
        "../",
        "%2e",
        "%00",
        " ",
        "--",
        "*",
        "~",
        "\u{202e}",
        "\u{301}",
        "🚀",
        "\",\"x\":\"",
        "\\",
    ] {
        assert!(
            values.iter().any(|v| v.contains(needle)),
            "no value contains {needle:?}"
        );
    }
    for exact in ["", ".", ".."] {
        assert!(values.iter().any(|v| v == exact), "{exact:?}");
    }
    assert!(
        values
            .iter()
            .any(|v| v.chars().any(|c| c.is_control() && c != '\n'))
    );
    assert!(values.iter().any(|v| v.len() == 64 * 1024));
}

// ---------------------------------------------------------------------------------------------
// Harness

/// A world plus a private, empty working directory that must stay empty (and a HOME that must
/// never get a canary): any file appearing there means a value ran as code.
struct Harness {
    world: World,
    work: PathBuf,
}

impl Harness {
    fn new(world: World) -> Harness {
        let work = world.dir.path().join("work");
        std::fs::create_dir(&work).expect("work dir");
        // Not built in: this user approves the fixtures (which cpi still refuses to run).
        for name in [
            "hostile-cmd",
            "hostile-http",
            "hostile-refused",
            "hostile-secret-cmd",
            "hostile-secret",
            "hostile-show",
        ] {
            world.approve(fixtures().to_str().unwrap(), &[name]);
        }
        Harness { world, work }
    }

    /// Runs `cpi ARGS` with the hostile fixtures loaded, in the work directory.
    fn cpi(&self, args: &[OsString]) -> Run {
        self.cpi_with(args, |_| {})
    }

    fn cpi_with(&self, args: &[OsString], tweak: impl FnOnce(&mut std::process::Command)) -> Run {
        let mut cmd = self.world.command();
        cmd.current_dir(&self.work)
            .arg("--provider-dir")
            .arg(fixtures())
            .args(args);
        tweak(&mut cmd);
        let run = support::run(&mut cmd);
        assert!(
            run.code != 101 && !run.stderr.contains("panicked"),
            "cpi panicked on {args:?}:\n{}",
            run.stderr
        );
        run
    }

    /// `cpi --json run PROVIDER ACTION -p v=VALUE EXTRA...`.
    fn run_value(&self, provider: &str, action: &str, value: &str, extra: &[String]) -> Run {
        let mut args: Vec<OsString> = vec![
            "--json".into(),
            "run".into(),
            provider.into(),
            action.into(),
            "-p".into(),
            format!("v={value}").into(),
        ];
        args.extend(extra.iter().map(OsString::from));
        self.cpi(&args)
    }

    /// `cpi --json run PROVIDER ACTION` with `v` (which may hold NUL) from a config file.
    fn run_value_from_config(
        &self,
        provider: &str,
        action: &str,
        value: &str,
        extra: &[String],
    ) -> Run {
        let config = self.world.dir.path().join("hostile-config.toml");
        std::fs::write(
            &config,
            format!("[providers.{provider}]\nv = {}\n", toml_string(value)),
        )
        .expect("write config");
        let mut args: Vec<OsString> = vec![
            "--json".into(),
            "--config".into(),
            config.into(),
            "run".into(),
            provider.into(),
            action.into(),
        ];
        args.extend(extra.iter().map(OsString::from));
        self.cpi(&args)
    }

    /// Fails if any value has run as code: the work dir must be empty and HOME canary-free.
    fn assert_no_canary(&self, what: &str) {
        let leftovers: Vec<_> = std::fs::read_dir(&self.work)
            .expect("read work dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(
            leftovers.is_empty(),
            "{what}: a value ran as code and created {leftovers:?}"
        );
        for entry in std::fs::read_dir(self.world.dir.path()).expect("read home") {
            let name = entry.expect("entry").file_name();
            assert!(
                !name.to_string_lossy().contains("CANARY"),
                "{what}: a value ran as code and created $HOME/{name:?}"
            );
        }
    }
}

fn fixtures() -> PathBuf {
    repo().join("tests/fixtures/hostile")
}

/// A TOML basic string holding exactly `value` (control characters as `\uXXXX`).
fn toml_string(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Asserts a failed run with this §10 code and returns the error object.
fn refused(run: &Run, code: &str, what: &str) -> Value {
    assert_ne!(
        run.code, 0,
        "{what}: expected {code}, cpi succeeded: {}",
        run.stdout
    );
    let json: Value = serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{what}: error is not JSON ({e}): {}\n{}",
            run.stdout, run.stderr
        )
    });
    assert_eq!(json["error"]["code"], code, "{what}: {json}");
    json["error"].clone()
}

/// Asserts success and returns the action's raw output (a JSON string result).
fn output(run: &Run, what: &str) -> String {
    assert_eq!(
        run.code, 0,
        "{what}: cpi failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    let json: Value = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e}): {}", run.stdout));
    match json {
        Value::String(s) => s,
        other => panic!("{what}: expected the raw output as a string, got {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Commands

/// `printf '<%s>\0' ARGS...` output for these arguments: each one delimited, NUL-terminated, so
/// the number of arguments the program received is exact (argv cannot hold NUL).
fn printed(args: &[&str]) -> String {
    args.iter().map(|a| format!("<{a}>\0")).collect()
}

/// The `hostile-cmd` actions that print `v` alone through a shell script.
const SCRIPT_ACTIONS: [&str; 9] = [
    "sh_plain",
    "sh_double",
    "sh_single",
    "sh_subst",
    "sh_subst_double",
    "sh_backtick",
    "sh_backtick_double",
    "bash_double",
    "env_sh",
];

#[test]
fn command_values_fill_exactly_one_argument() {
    let h = Harness::new(World::new());
    for v in hostile_values() {
        let what = format!("argv {}", show(&v));
        let got = output(&h.run_value("hostile-cmd", "argv", &v, &[]), &what);
        let items: Vec<&str> = got.split_terminator('\0').collect();
        assert_eq!(items.len(), 3, "{what}: {items:?}");
        assert_eq!(items[1].as_bytes(), format!("<{v}>").as_bytes(), "{what}");
        assert_eq!(got, printed(&["a", &v, "b"]), "{what}");
        h.assert_no_canary(&what);
    }
}

#[test]
fn shell_script_values_stay_one_literal_string() {
    let h = Harness::new(World::new());
    for v in hostile_values() {
        for action in SCRIPT_ACTIONS {
            let what = format!("{action} {}", show(&v));
            let got = output(&h.run_value("hostile-cmd", action, &v, &[]), &what);
            assert_eq!(got.matches('\0').count(), 1, "{what}: {got:?}");
            assert_eq!(got.as_bytes(), printed(&[&v]).as_bytes(), "{what}");
            h.assert_no_canary(&what);
        }
    }
}

/// The canary check sees real code execution: a provider that `eval`s its own positional
/// argument (data to cpi, code to the script) does create the canary.
#[test]
fn the_canary_check_catches_a_value_that_runs() {
    let h = Harness::new(World::new());
    let got = output(
        &h.run_value("hostile-cmd", "control_eval", "touch CANARY", &[]),
        "control",
    );
    assert_eq!(got, "");
    assert!(h.work.join("CANARY").exists());
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        h.assert_no_canary("control");
    }));
    assert!(caught.is_err(), "the canary check missed a created file");
}

#[test]
fn shell_contexts_that_cannot_be_quoted_are_refused_before_running() {
    let h = Harness::new(World::new());
    let values = [
        "x\ntouch CANARY\n",
        "'; touch CANARY; '",
        "\\'; touch CANARY; echo \\'",
        "x; touch CANARY",
        "$(touch CANARY)",
        "}$(touch CANARY)",
        "\nEOF\ntouch CANARY\ncat <<EOF",
        "plain",
    ];
    for action in [
        "comment",
        "ansi_c",
        "case_in_subst",
        "param_expansion",
        "heredoc",
    ] {
        for v in values {
            let what = format!("{action} {}", show(v));
            let run = h.run_value("hostile-refused", action, v, &[]);
            let err = refused(&run, "UnsupportedError", &what);
            assert_eq!(err["details"]["parameter"], "v", "{what}: {err}");
            h.assert_no_canary(&what);
        }
    }
}

#[test]
fn nul_and_empty_values_in_commands() {
    let h = Harness::new(World::new());
    // NUL cannot be in an argument: a clear error before anything runs.
    for v in NUL_VALUES {
        for action in ["argv", "sh_plain", "sh_double"] {
            let what = format!("{action} {}", show(v));
            let run = h.run_value_from_config("hostile-cmd", action, v, &[]);
            let err = refused(&run, "ValidationError", &what);
            let message = err["message"].as_str().unwrap_or_default();
            assert!(message.contains("NUL"), "{what}: {err}");
            h.assert_no_canary(&what);
        }
    }
    // The config file path is the same substitution as -p: a hostile value still round-trips.
    let v = "it's $(touch CANARY) \"q\"\n";
    let got = output(
        &h.run_value_from_config("hostile-cmd", "argv", v, &[]),
        "config",
    );
    assert_eq!(got, printed(&["a", v, "b"]));
    // An empty value is one empty argument, not a missing one.
    let got = output(&h.run_value("hostile-cmd", "argv", "", &[]), "empty");
    assert_eq!(got, "<a>\0<>\0<b>\0");
    h.assert_no_canary("nul and empty");
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// RFC 3986 unreserved characters: the only ones a percent-encoded component may keep raw.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Strict percent-decoding of one URL component; panics on anything but unreserved bytes and
/// `%XX` (so a component that decodes proves the value could not add a `/`, `?`, `&`, `=`, `#`).
fn decode_component(component: &str, what: &str) -> Vec<u8> {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = component
                    .get(i + 1..i + 3)
                    .unwrap_or_else(|| panic!("{what}: truncated escape in {component:?}"));
                out.push(
                    u8::from_str_radix(hex, 16)
                        .unwrap_or_else(|_| panic!("{what}: bad escape %{hex}")),
                );
                i += 3;
            }
            b if unreserved(b) => {
                out.push(b);
                i += 1;
            }
            b => panic!(
                "{what}: raw byte {:?} in a percent-encoded component {}",
                b as char,
                show(component)
            ),
        }
    }
    out
}

/// Splits a raw `path?query` and checks the path is `prefix` + exactly one value segment
/// (+ `suffix`), returning the decoded value segment and the query.
fn value_segment(raw: &str, prefix: &[&str], suffix: &[&str], what: &str) -> (Vec<u8>, String) {
    let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
    let segments: Vec<&str> = path.split('/').collect();
    assert_eq!(segments[0], "", "{what}: {raw}");
    let segments = &segments[1..];
    assert_eq!(
        segments.len(),
        prefix.len() + 1 + suffix.len(),
        "{what}: wrong number of segments in {}",
        show(raw)
    );
    assert_eq!(&segments[..prefix.len()], prefix, "{what}");
    assert_eq!(&segments[prefix.len() + 1..], suffix, "{what}");
    (
        decode_component(segments[prefix.len()], what),
        query.to_string(),
    )
}

/// Checks a raw query is exactly `q=<value>&fixed=1` and returns the decoded value.
fn query_value(query: &str, what: &str) -> Vec<u8> {
    let pairs: Vec<&str> = query.split('&').collect();
    assert_eq!(pairs.len(), 2, "{what}: query {}", show(query));
    let (k1, v1) = pairs[0].split_once('=').expect("q=...");
    assert_eq!(k1, "q", "{what}");
    assert_eq!(pairs[1], "fixed=1", "{what}");
    decode_component(v1, what)
}

/// Whether cpi can send `<v>` as a header value: CR, LF and NUL are refused as a line break;
/// other control characters as an invalid header value (RFC 9110 field values are visible
/// characters, space, tab and obs-text, i.e. bytes >= 0x80, which UTF-8 text is sent as).
fn header_error(v: &str) -> Option<&'static str> {
    if v.contains(['\r', '\n', '\0']) {
        Some("line break or NUL")
    } else if v.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        Some("invalid value for HTTP header")
    } else {
        None
    }
}

/// Whether cpi must refuse `v` as a URL path segment value.
fn path_refused(v: &str) -> bool {
    // Empty, or with a `.`/`..` part a server that decodes `%2f`/`%5c` first would climb by.
    v.is_empty() || v.split(['/', '\\']).any(|part| part == "." || part == "..")
}

/// Whether a URL of `len` bytes is too long to send (`http::Uri` is limited to 65534 bytes): cpi
/// must refuse it before sending.
fn url_too_long(len: usize) -> bool {
    len > 65534
}

/// The encoded length of `v` as one URL component.
fn encoded_len(v: &str) -> usize {
    v.bytes().map(|b| if unreserved(b) { 1 } else { 3 }).sum()
}

/// The simulator's request log, tracked by count so each run's requests are known exactly.
struct SimLog {
    count: u64,
}

impl SimLog {
    fn new(world: &World) -> SimLog {
        SimLog {
            count: world.requests()["count"].as_u64().expect("count"),
        }
    }

    /// The requests that arrived since the last call.
    fn new_requests(&mut self, world: &World) -> Vec<Value> {
        let log = world.requests();
        let count = log["count"].as_u64().expect("count");
        let fresh = usize::try_from(count - self.count).expect("small");
        self.count = count;
        let requests = log["requests"].as_array().expect("requests");
        assert!(fresh <= requests.len(), "request log overflowed");
        requests[requests.len() - fresh..].to_vec()
    }

    fn exactly_one(&mut self, world: &World, what: &str) -> Value {
        let fresh = self.new_requests(world);
        assert_eq!(
            fresh.len(),
            1,
            "{what}: expected exactly one request, got {fresh:?}"
        );
        fresh[0].clone()
    }

    fn none(&mut self, world: &World, what: &str) {
        let fresh = self.new_requests(world);
        assert!(
            fresh.is_empty(),
            "{what}: refused value still sent {fresh:?}"
        );
    }
}

/// The simulator's log keeps 64 KiB of each body.
const SIM_LOG_BODY_MAX: usize = 64 * 1024;

/// Checks a logged JSON body is exactly `expected` (or, when the log cut it, a prefix of it).
fn assert_body(logged: &str, expected: &Value, what: &str) {
    if logged.len() == SIM_LOG_BODY_MAX {
        let full = expected.to_string();
        assert!(full.starts_with(logged), "{what}: truncated body differs");
        return;
    }
    let parsed: Value = serde_json::from_str(logged)
        .unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {}", show(logged)));
    assert_eq!(&parsed, expected, "{what}");
}

/// Runs one value through every position of a request, against the simulator.
fn check_endpoint_value(h: &Harness, log: &mut SimLog, v: &str, via_config: bool) {
    let w = &h.world;
    let api = [
        "-p".to_string(),
        format!("api_url={}", w.url()),
        "-p".to_string(),
        format!("api_key={}", w.token()),
    ];
    let run = |action: &str| {
        if via_config {
            h.run_value_from_config("hostile-http", action, v, &api)
        } else {
            h.run_value("hostile-http", action, v, &api)
        }
    };
    let sent = |run: &Run, what: &str| {
        // Every sent request hits a route the simulator does not have.
        refused(run, "ResourceNotFoundError", what);
    };

    // Path segment.
    let what = format!("path {}", show(v));
    let r = run("path");
    let base = w.url().len();
    if path_refused(v) {
        let err = refused(&r, "ValidationError", &what);
        assert_eq!(err["details"]["parameter"], "v", "{what}: {err}");
        log.none(w, &what);
    } else if url_too_long(base + "/hostile/seg//end".len() + encoded_len(v)) {
        let err = refused(&r, "ValidationError", &what);
        assert!(
            err["message"]
                .as_str()
                .unwrap_or_default()
                .contains("bytes long"),
            "{what}: {err}"
        );
        log.none(w, &what);
    } else {
        sent(&r, &what);
        let req = log.exactly_one(w, &what);
        assert_eq!(req["method"], "GET", "{what}");
        let raw = req["path"].as_str().expect("path");
        assert!(
            !raw.contains('?'),
            "{what}: a value added a query: {}",
            show(raw)
        );
        let (segment, _) = value_segment(raw, &["hostile", "seg"], &["end"], &what);
        assert_eq!(segment, v.as_bytes(), "{what}");
    }

    // Query value.
    let what = format!("query {}", show(v));
    let r = run("query");
    if url_too_long(base + "/hostile/q?q=&fixed=1".len() + encoded_len(v)) {
        refused(&r, "ValidationError", &what);
        log.none(w, &what);
    } else {
        sent(&r, &what);
        let req = log.exactly_one(w, &what);
        let raw = req["path"].as_str().expect("path");
        let (path, query) = raw.split_once('?').expect("query");
        assert_eq!(path, "/hostile/q", "{what}");
        assert_eq!(query_value(query, &what), v.as_bytes(), "{what}");
    }

    // Header value (its bytes on the wire are checked against the capture server).
    let what = format!("header {}", show(v));
    let r = run("header");
    match header_error(v) {
        Some(why) => {
            let err = refused(&r, "ValidationError", &what);
            assert!(
                err["message"].as_str().unwrap_or_default().contains(why),
                "{what}: {err}"
            );
            log.none(w, &what);
        }
        None => {
            sent(&r, &what);
            let req = log.exactly_one(w, &what);
            assert_eq!(req["path"], "/hostile/h", "{what}");
        }
    }

    // JSON string.
    let what = format!("body {}", show(v));
    sent(&run("body"), &what);
    let req = log.exactly_one(w, &what);
    assert_eq!(req["method"], "POST", "{what}");
    assert_eq!(req["path"], "/hostile/body", "{what}");
    assert_body(
        req["body"].as_str().expect("body"),
        &json!({"name": v, "n": 1}),
        &what,
    );

    // Bare JSON position: only exactly one JSON value is accepted.
    let what = format!("bare {}", show(v));
    let r = run("bare");
    match serde_json::from_str::<Value>(v) {
        Ok(parsed) => {
            sent(&r, &what);
            let req = log.exactly_one(w, &what);
            assert_body(
                req["body"].as_str().expect("body"),
                &json!({"name": "x", "tags": parsed}),
                &what,
            );
        }
        Err(_) => {
            let err = refused(&r, "ValidationError", &what);
            assert_eq!(err["details"]["parameter"], "v", "{what}: {err}");
            log.none(w, &what);
        }
    }

    // Everything at once.
    let what = format!("all {}", show(v));
    let r = run("all");
    let all_len = base + "/hostile/all/?q=&fixed=1".len() + 2 * encoded_len(v);
    if path_refused(v) || header_error(v).is_some() || url_too_long(all_len) {
        refused(&r, "ValidationError", &what);
        log.none(w, &what);
    } else {
        sent(&r, &what);
        let req = log.exactly_one(w, &what);
        let raw = req["path"].as_str().expect("path");
        let (segment, query) = value_segment(raw, &["hostile", "all"], &[], &what);
        assert_eq!(segment, v.as_bytes(), "{what}");
        assert_eq!(query_value(&query, &what), v.as_bytes(), "{what}");
        assert_body(
            req["body"].as_str().expect("body"),
            &json!({"name": v, "n": 1}),
            &what,
        );
    }
    h.assert_no_canary(&format!("endpoint {}", show(v)));
}

#[test]
fn endpoint_values_stay_in_their_place() {
    let h = Harness::new(World::new());
    let mut log = SimLog::new(&h.world);
    for v in hostile_values() {
        check_endpoint_value(&h, &mut log, &v, false);
    }
    for v in NUL_VALUES {
        check_endpoint_value(&h, &mut log, v, true);
    }
}

/// One captured request: its head (request line and header lines) and its body.
type Captured = (String, Vec<u8>);

/// A raw HTTP/1.1 server on loopback that records each request's exact bytes and answers 200.
struct Capture {
    url: String,
    requests: Arc<Mutex<Vec<Captured>>>,
}

impl Capture {
    fn start() -> Capture {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let store = Arc::clone(&requests);
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                // Recorded before the reply, so it is there by the time cpi exits.
                if let Some(request) = Capture::read_one(&mut stream) {
                    store.lock().expect("lock").push(request);
                    let reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                                 Content-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}";
                    let _ = stream.write_all(reply.as_bytes());
                }
            }
        });
        Capture { url, requests }
    }

    /// Reads one request: the head as text, the body as bytes.
    fn read_one(stream: &mut TcpStream) -> Option<Captured> {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 64 * 1024];
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
        let length = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < length {
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Some((head, body))
    }

    fn take(&self) -> Vec<Captured> {
        std::mem::take(&mut *self.requests.lock().expect("lock"))
    }
}

#[test]
fn endpoint_header_and_body_bytes_on_the_wire() {
    let h = Harness::new(World::new());
    let capture = Capture::start();
    let api = [
        "-p".to_string(),
        format!("api_url={}", capture.url),
        "-p".to_string(),
        "api_key=capture-token".to_string(),
    ];
    let allowed: BTreeSet<&str> = [
        "host",
        "user-agent",
        "accept",
        "authorization",
        "x-hostile",
        "content-type",
        "content-length",
    ]
    .into();
    let mut values = hostile_values();
    values.extend(NUL_VALUES.iter().map(|v| v.to_string()));
    for v in &values {
        let what = format!("wire {}", show(v));
        let run = if v.contains('\0') {
            h.run_value_from_config("hostile-http", "all", v, &api)
        } else {
            h.run_value("hostile-http", "all", v, &api)
        };
        let got = capture.take();
        let url_len = capture.url.len() + "/hostile/all/?q=&fixed=1".len() + 2 * encoded_len(v);
        if path_refused(v) || header_error(v).is_some() || url_too_long(url_len) {
            refused(&run, "ValidationError", &what);
            assert!(got.is_empty(), "{what}: refused value still sent {got:?}");
            continue;
        }
        assert_eq!(run.code, 0, "{what}: {}\n{}", run.stdout, run.stderr);
        assert_eq!(got.len(), 1, "{what}: expected one request, got {got:?}");
        let (head, body) = &got[0];
        let mut lines = head.split("\r\n");
        let request_line = lines.next().expect("request line");
        let target = request_line
            .strip_prefix("POST ")
            .and_then(|l| l.strip_suffix(" HTTP/1.1"))
            .unwrap_or_else(|| panic!("{what}: request line {}", show(request_line)));
        let (segment, query) = value_segment(target, &["hostile", "all"], &[], &what);
        assert_eq!(segment, v.as_bytes(), "{what}");
        assert_eq!(query_value(&query, &what), v.as_bytes(), "{what}");
        let mut hostile_headers = Vec::new();
        for line in lines {
            let (name, value) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("{what}: malformed header line {}", show(line)));
            let name = name.to_ascii_lowercase();
            assert!(
                allowed.contains(name.as_str()),
                "{what}: unexpected header {name}"
            );
            if name == "x-hostile" {
                hostile_headers.push(value.to_string());
            }
        }
        assert_eq!(hostile_headers.len(), 1, "{what}: {hostile_headers:?}");
        assert_eq!(
            hostile_headers[0].as_bytes(),
            format!("<{v}>").as_bytes(),
            "{what}"
        );
        let body: Value = serde_json::from_slice(body).expect("JSON body");
        assert_eq!(body, json!({"name": v, "n": 1}), "{what}");
        h.assert_no_canary(&what);
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets

/// The simulator's token: a distinctive core plus characters that make its raw, JSON-escaped,
/// percent-encoded and shell-quoted forms all differ.
const SECRET: &str = "s3cr3t-Zq9Xw7Kp/+=' \"q\" \\ $x&y?#";
/// A wrong key with the same core.
const WRONG: &str = "s3cr3t-Zq9Xw7Kp-WRONG/+=' \"q\" \\ $x&y?#";
/// The simulator's password (also written into hostile-show.json).
const PASSWORD: &str = "s3cr3t-Zq9Xw7Kp-pw'\"\\ %41 \u{fc}";
/// The distinctive core every secret shares: seeing it anywhere means a (partial) leak.
const CORE: &str = "Zq9Xw7Kp";
/// The start of every secret: seeing it means a secret was cut, not redacted.
const PREFIX: &str = "s3cr3t-Zq9";

fn percent_encode(s: &str, keep: impl Fn(u8) -> bool, lower: bool) -> String {
    s.bytes()
        .map(|b| {
            if keep(b) {
                (b as char).to_string()
            } else if lower {
                format!("%{b:02x}")
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Every form a secret can take on the way out.
fn secret_forms(secret: &str) -> Vec<(&'static str, String)> {
    let json = serde_json::to_string(secret).expect("string");
    vec![
        ("raw", secret.to_string()),
        ("json-escaped", json[1..json.len() - 1].to_string()),
        (
            "percent-encoded (all)",
            percent_encode(secret, |b| b.is_ascii_alphanumeric(), false),
        ),
        (
            "percent-encoded (component)",
            percent_encode(secret, unreserved, false),
        ),
        (
            "percent-encoded (lowercase)",
            percent_encode(secret, unreserved, true),
        ),
        (
            "form-encoded",
            percent_encode(secret, unreserved, false).replace("%20", "+"),
        ),
        ("shell-quoted", secret.replace('\'', "'\\''")),
        ("core", CORE.to_string()),
        ("prefix", PREFIX.to_string()),
    ]
}

fn assert_no_leak(run: &Run, what: &str) {
    for secret in [SECRET, WRONG, PASSWORD] {
        for (form, needle) in secret_forms(secret) {
            for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
                assert!(
                    !text.contains(&needle),
                    "{what}: the {form} form of a secret leaked on {stream}:\n{text}"
                );
            }
        }
    }
}

fn secret_world() -> Harness {
    Harness::new(World::with(|cfg| {
        cfg.token = Some(SECRET.to_string());
        cfg.password = Some(PASSWORD.to_string());
    }))
}

fn args(list: &[&str]) -> Vec<OsString> {
    list.iter().map(OsString::from).collect()
}

#[test]
fn secrets_never_appear_in_http_runs() {
    let h = secret_world();
    let url = format!("api_url={}", h.world.url());
    let key = format!("api_key={SECRET}");
    let wrong = format!("api_key={WRONG}");
    let password = format!("password={PASSWORD}");
    let bad_password = format!("password={WRONG}");
    let mut log = SimLog::new(&h.world);

    // A successful run really sends the secret (query, header) and prints none of it.
    for verbosity in [None, Some("-vvv")] {
        for json in [true, false] {
            let mut a = vec![
                "run",
                "hostile-secret",
                "list_workers",
                "-p",
                &url,
                "-p",
                &key,
            ];
            a.extend(verbosity);
            if json {
                a.push("--json");
            }
            let run = h.cpi(&args(&a));
            assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
            assert_no_leak(&run, &format!("successful run {a:?}"));
            let req = log.exactly_one(&h.world, "list_workers");
            let raw = req["path"].as_str().expect("path");
            let (_, query) = raw.split_once('?').expect("query");
            let (_, sent) = query.split_once('=').expect("key=");
            assert_eq!(decode_component(sent, "key"), SECRET.as_bytes());
        }
    }
    let run = h.cpi(&args(&[
        "--json",
        "run",
        "hostile-secret",
        "login",
        "-p",
        &url,
        "-p",
        &password,
    ]));
    let token = run.ok();
    assert!(token.is_string() || token.is_object(), "{token}");
    assert_no_leak(&run, "successful login");
    let req = log.exactly_one(&h.world, "login");
    let body: Value = serde_json::from_str(req["body"].as_str().expect("body")).expect("json");
    assert_eq!(body["password"], PASSWORD);

    // Failing runs: the bad key travels in the URL, a header and the server's reply.
    let failing: [(&[&str], &str); 4] = [
        (
            &["hostile-secret", "list_workers", "-p", &url, "-p", &wrong],
            "AuthenticationError",
        ),
        (
            &["hostile-secret", "login", "-p", &url, "-p", &bad_password],
            "AuthenticationError",
        ),
        // A valid key in the path: the 404 reply echoes the decoded path.
        (
            &["hostile-secret", "echo_path", "-p", &url, "-p", &key],
            "ResourceNotFoundError",
        ),
        (
            &[
                "hostile-secret",
                "form",
                "-p",
                &url,
                "-p",
                &key,
                "-p",
                &password,
            ],
            "ResourceNotFoundError",
        ),
    ];
    for verbosity in [None, Some("-vvv")] {
        for json in [true, false] {
            for (case, code) in failing {
                let mut a = vec!["run"];
                a.extend(case);
                a.extend(verbosity);
                if json {
                    a.push("--json");
                }
                let run = h.cpi(&args(&a));
                let what = format!("failing run {a:?}");
                if json {
                    refused(&run, code, &what);
                } else {
                    assert_ne!(run.code, 0, "{what}");
                    assert!(run.stderr.contains(code), "{what}: {}", run.stderr);
                }
                assert_no_leak(&run, &what);
                log.exactly_one(&h.world, &what);
            }
        }
    }

    // Nothing listening: the transport error names the URL, which holds the key.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("api_url=http://{}", l.local_addr().expect("addr"))
    };
    for json in [true, false] {
        let mut a = vec![
            "run",
            "hostile-secret",
            "list_workers",
            "-p",
            &dead,
            "-p",
            &key,
            "-vvv",
        ];
        if json {
            a.push("--json");
        }
        let run = h.cpi(&args(&a));
        assert_ne!(run.code, 0);
        assert!(
            run.all_output().contains("ProviderError"),
            "{}",
            run.all_output()
        );
        assert_no_leak(&run, "connection refused");
    }

    // --dry-run shows every call with the secrets redacted, from -p, the environment or a
    // config file.
    let config = h.world.dir.path().join("secret-config.toml");
    std::fs::write(
        &config,
        format!(
            "[providers.hostile-secret]\napi_key = {}\npassword = {}\n",
            toml_string(SECRET),
            toml_string(PASSWORD)
        ),
    )
    .expect("config");
    // Literal secrets are accepted only in a config file no one else can read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    for action in ["list_workers", "login", "echo_path", "form"] {
        for json in [true, false] {
            let mut a = vec![
                "run",
                "hostile-secret",
                action,
                "--dry-run",
                "-vvv",
                "-p",
                &url,
                "-p",
                &key,
                "-p",
                &password,
            ];
            if json {
                a.push("--json");
            }
            let run = h.cpi(&args(&a));
            assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
            assert!(run.stdout.contains("[REDACTED]"), "{}", run.stdout);
            assert_no_leak(&run, &format!("dry run {a:?}"));

            let config_arg = config.display().to_string();
            let mut a = vec![
                "--config",
                &config_arg,
                "run",
                "hostile-secret",
                action,
                "--dry-run",
                "-p",
                &url,
            ];
            if json {
                a.push("--json");
            }
            let run = h.cpi(&args(&a));
            assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
            assert_no_leak(&run, &format!("dry run from config {a:?}"));

            let mut a = vec!["run", "hostile-secret", action, "--dry-run", "-p", &url];
            if json {
                a.push("--json");
            }
            let run = h.cpi_with(&args(&a), |cmd| {
                cmd.env("CPI_PARAM_API_KEY", SECRET)
                    .env("CPI_PARAM_PASSWORD", PASSWORD);
            });
            assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
            assert_no_leak(&run, &format!("dry run from env {a:?}"));
        }
    }
    log.none(&h.world, "dry runs");
}

#[test]
fn secrets_never_appear_in_show_or_validate() {
    let h = secret_world();
    for a in [
        vec!["show", "hostile-show"],
        vec!["show", "hostile-show", "--json"],
        vec!["show", "hostile-show", "list_workers"],
        vec!["show", "hostile-show", "list_workers", "--json"],
        vec!["providers", "--json"],
    ] {
        let run = h.cpi(&args(&a));
        assert_eq!(run.code, 0, "{a:?}: {}\n{}", run.stdout, run.stderr);
        assert_no_leak(&run, &format!("{a:?}"));
    }
    let shown = h.cpi(&args(&["show", "hostile-show", "--json"])).json();
    for name in ["api_key", "password", "session_cookie"] {
        assert_eq!(shown["default_settings"][name], "[REDACTED]", "{shown}");
    }
    assert_eq!(shown["default_settings"]["region"], "r1");
    let file = fixtures().join("hostile-show.json");
    for json in [true, false] {
        let mut a = vec!["validate".to_string(), file.display().to_string()];
        if json {
            a.push("--json".into());
        }
        let a: Vec<OsString> = a.into_iter().map(OsString::from).collect();
        let run = h.cpi(&a);
        assert_no_leak(&run, "validate");
        assert!(run.all_output().contains("api_key"), "{}", run.all_output());
    }
    // Running with the file's own secret defaults: a dry run and a real (failing) run.
    let url = format!("api_url={}", h.world.url());
    for extra in [&["--dry-run"][..], &[][..]] {
        let mut a = vec![
            "--json",
            "run",
            "hostile-show",
            "list_workers",
            "-p",
            &url,
            "-vvv",
        ];
        a.extend(extra);
        let run = h.cpi(&args(&a));
        assert_no_leak(&run, &format!("hostile-show {a:?}"));
    }
}

#[test]
fn secrets_never_appear_in_command_runs() {
    let h = secret_world();
    let key = format!("api_key={SECRET}");
    let password = format!("password={PASSWORD}");
    let json_form = serde_json::to_string(SECRET).expect("json");
    let echo_json = format!("echo_json={}", &json_form[1..json_form.len() - 1]);
    let echo_url = format!(
        "echo_url={} {}",
        percent_encode(SECRET, unreserved, false),
        percent_encode(SECRET, |b| b.is_ascii_alphanumeric(), false)
    );

    // A CLI that prints the key, raw and encoded, on stderr when it fails.
    for flags in [
        &["--json"][..],
        &[][..],
        &["--json", "-vvv"][..],
        &["-vvv"][..],
    ] {
        let mut a = vec![
            "run",
            "hostile-secret-cmd",
            "fail",
            "-p",
            &key,
            "-p",
            &echo_json,
            "-p",
            &echo_url,
        ];
        a.extend(flags);
        let run = h.cpi(&args(&a));
        let what = format!("failing command {a:?}");
        assert_ne!(run.code, 0, "{what}");
        assert!(
            run.all_output().contains("AuthenticationError"),
            "{what}: {}",
            run.all_output()
        );
        assert!(run.all_output().contains("[REDACTED]"), "{what}");
        assert_no_leak(&run, &what);
    }

    // Long error output: the secret straddles the points where cpi shortens stderr (2 KiB in the
    // message, 8 KiB in details) — a cut secret must not survive as a prefix.
    for cut in [2048usize, 8192] {
        for inside in [1usize, 12, SECRET.len() - 1] {
            let pad = format!("pad={}", "p".repeat(cut - inside));
            let a = vec![
                "--json",
                "run",
                "hostile-secret-cmd",
                "fail_long",
                "-p",
                &key,
                "-p",
                &pad,
            ];
            let run = h.cpi(&args(&a));
            let what = format!("stderr cut at {cut}, {inside} bytes into the secret");
            refused(&run, "ProviderError", &what);
            assert_no_leak(&run, &what);
        }
    }

    // Successful runs, plain and verbose and dry: the key is in argv and inside a script.
    for action in ["ok_argv", "ok_script"] {
        for flags in [
            &["--json"][..],
            &["-vvv"][..],
            &["--json", "--dry-run"][..],
            &["--dry-run", "-vvv"][..],
        ] {
            let mut a = vec![
                "run",
                "hostile-secret-cmd",
                action,
                "-p",
                &key,
                "-p",
                &password,
            ];
            if action == "ok_argv" {
                a.truncate(5);
            }
            a.extend(flags);
            let run = h.cpi(&args(&a));
            let what = format!("command {a:?}");
            assert_eq!(run.code, 0, "{what}: {}\n{}", run.stdout, run.stderr);
            if !flags.contains(&"--dry-run") && flags.contains(&"--json") {
                assert_eq!(run.json(), json!({"ok": true}), "{what}");
            }
            assert_no_leak(&run, &what);
        }
    }

    // Verbose logs show (part of) the raw output: a secret at the cut must not survive.
    {
        let cut = 4096usize;
        for inside in [1usize, 12, SECRET.len() - 1] {
            let pad = format!("pad={}", "p".repeat(cut - inside));
            let a = vec![
                "--json",
                "-vvv",
                "run",
                "hostile-secret-cmd",
                "ok_long_output",
                "-p",
                &key,
                "-p",
                &pad,
            ];
            let run = h.cpi(&args(&a));
            let what = format!("output cut at {cut}, {inside} bytes into the secret");
            assert_eq!(run.ok(), json!({"marker": "OK"}), "{what}");
            assert_no_leak(&run, &what);
        }
    }
    h.assert_no_canary("secret commands");
}
