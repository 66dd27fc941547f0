//! The example provider in other guest languages (examples/python-cloudco with componentize-py,
//! examples/js-cloudco with ComponentizeJS, examples/c-cloudco with no SDK: `wit-bindgen c`,
//! clang and wasi-libc, `wasm-tools component new`), each run through `cpi run` like the Rust example
//! and compared with the JSON provider.
//!
//! A toolchain that is not installed skips its test with a `SKIPPED: ...` line on stderr;
//! `.ci/run` installs both. Components are built once per test run into `target/guests/`.
//! Run with `--nocapture` to see the build and `cpi run` timings.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{World, repo};

/// What building a guest came to: the component, or why its test is skipped.
pub(crate) type Built = Result<PathBuf, String>;

/// Whether `program --version` runs (the toolchain is installed).
fn available(program: &str) -> Result<(), String> {
    match Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("`{program} --version` failed ({status})")),
        Err(e) => Err(format!("`{program}` not found ({e})")),
    }
}

/// Runs a build command, panicking with its output when it fails (the toolchain is there, so
/// a failed build is a real failure), and returns the component.
fn build(what: &str, cmd: &mut Command, out: PathBuf) -> PathBuf {
    let started = Instant::now();
    let output = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let size = std::fs::metadata(&out)
        .unwrap_or_else(|e| panic!("{what}: no {} ({e})", out.display()))
        .len();
    eprintln!(
        "{what}: {} ({size} bytes, {:.1} MiB) in {:.1}s",
        out.display(),
        size as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );
    out
}

/// examples/python-cloudco built with componentize-py (`build.sh`).
fn python_guest() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        available("componentize-py")
            .map_err(|e| format!("{e}; install it with `pip install componentize-py==0.25.1`"))?;
        let out = repo().join("target/guests/cloudco-py.wasm");
        let script = repo().join("examples/python-cloudco/build.sh");
        Ok(build(
            "componentize-py build of examples/python-cloudco",
            Command::new("bash").arg(script).arg(&out),
            out,
        ))
    })
}

/// examples/js-cloudco built with ComponentizeJS (`build.mjs`, after `npm ci` there).
fn js_guest() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        available("node")?;
        let example = repo().join("examples/js-cloudco");
        let installed = example.join("node_modules/@bytecodealliance/componentize-js/package.json");
        if !installed.is_file() {
            return Err(format!(
                "ComponentizeJS is not installed; run `npm ci` in {}",
                example.display()
            ));
        }
        let out = repo().join("target/guests/cloudco-js.wasm");
        Ok(build(
            "ComponentizeJS build of examples/js-cloudco",
            Command::new("node")
                .current_dir(&example)
                .arg("build.mjs")
                .arg(&out),
            out,
        ))
    })
}

/// examples/c-cloudco built from the WIT alone: `wit-bindgen c`, Debian's clang with wasi-libc,
/// `wasm-tools component new` (`build.sh`). With `CI` set, a missing toolchain fails the test
/// (`.ci/run` installs it) instead of skipping it.
fn c_guest() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let missing: Vec<String> = ["clang", "wit-bindgen", "wasm-tools"]
            .iter()
            .filter_map(|tool| available(tool).err())
            .collect();
        if !missing.is_empty() {
            let why = format!(
                "{}; install clang lld wasi-libc libclang-rt-dev-wasm32 (apt) and \
                 wit-bindgen-cli and wasm-tools (cargo install, see .ci/run)",
                missing.join("; ")
            );
            assert!(std::env::var_os("CI").is_none(), "CI: {why}");
            return Err(why);
        }
        let out = repo().join("target/guests/cloudco-c.wasm");
        let script = repo().join("examples/c-cloudco/build.sh");
        Ok(build(
            "clang + wit-bindgen c + wasm-tools build of examples/c-cloudco",
            Command::new("bash").arg(script).arg(&out),
            out,
        ))
    })
}

/// The component `built`, or `None` after a `SKIPPED: {what}: ...` line when its toolchain is
/// missing.
fn built_or_skipped<'a>(what: &str, built: &'a Built) -> Option<&'a PathBuf> {
    match built {
        Ok(wasm) => Some(wasm),
        Err(reason) => {
            eprintln!("SKIPPED: {what}: {reason}");
            None
        }
    }
}

/// Runs `f` and returns its result with the time it took.
fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let started = Instant::now();
    let r = f();
    (r, started.elapsed())
}

/// The Rust example's scenario (tests/e2e/wasm.rs) for the component `name`: refused until
/// granted, then create, list (parse hook), get (invoke hook) and count like the JSON provider.
/// The scenario every language's example runs: refused before a grant, then the same
/// answers as the JSON `cloudco` provider.
pub(crate) fn runs_like_its_json_provider(name: &str, built: &Built) {
    let Some(wasm) = built_or_skipped(name, built) else {
        return;
    };
    // Workers leave `provisioning` after 2 s (not 100 ms): an interpreter-based component
    // takes longer per call than the Rust one, and the list below should see them first.
    let w = World::with(|cfg| cfg.transition = Duration::from_secs(2));
    let dir = w.dir.path().join("components");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(wasm, dir.join(format!("{name}.wasm"))).unwrap();
    let pd = dir.display().to_string();
    let cpi = |args: &[&str]| {
        let mut all = vec!["--provider-dir", pd.as_str()];
        all.extend_from_slice(args);
        all.push("--json");
        w.cpi(&all)
    };

    // Nothing granted: the very first command is refused. It is also the first load of the
    // component, so it compiles it (and fills the world's compile cache).
    let (denied, first) = timed(|| cpi(&["run", name, "test_install"]));
    denied.err("CapabilityDeniedError");
    cpi(&[
        "grant",
        name,
        "--all",
        "--env",
        "CLOUDCO_API_URL",
        "--env",
        "CLOUDCO_API_KEY",
    ])
    .ok();
    assert_eq!(
        cpi(&["run", name, "test_install"]).ok(),
        json!({"version": "1.4.2"})
    );

    let created = cpi(&["run", name, "create_worker", "-p", "name=guest-1"]).ok();
    let id = created["id"].as_str().unwrap().to_string();
    // list_workers is parsed by the component, statuses mapped by its map-status hook.
    let (listed, warm) = timed(|| cpi(&["run", name, "list_workers"]).ok());
    assert_eq!(listed[0]["id"], id.as_str(), "{listed}");
    assert_eq!(listed[0]["name"], "guest-1");
    assert!(
        ["provisioning", "running"].contains(&listed[0]["status"].as_str().unwrap()),
        "{listed}"
    );
    assert_eq!(listed[0]["raw_status"], listed[0]["status"]);
    let (json_listed, json_time) = timed(|| w.cpi(&["run", "cloudco", "list_workers", "--json"]));
    let json_listed = json_listed.ok();
    // get_worker runs entirely inside the component through the host's run-command.
    let started = Instant::now();
    let worker = loop {
        let got = cpi(&["run", name, "get_worker", "-p", &format!("worker_id={id}")]).ok();
        if got["status"] == "running" || started.elapsed() > Duration::from_secs(10) {
            break got;
        }
    };
    assert_eq!(worker["status"], "running", "{worker}");
    assert_eq!(worker["name"], "guest-1");
    // Same answers as the JSON provider.
    let json = w
        .cpi(&[
            "run",
            "cloudco",
            "get_worker",
            "-p",
            &format!("worker_id={id}"),
            "--json",
        ])
        .ok();
    assert_eq!(worker, json);
    let listed: Vec<Value> = listed.as_array().unwrap().to_vec();
    let json_listed = json_listed.as_array().unwrap();
    assert_eq!(listed.len(), json_listed.len());
    for (ours, theirs) in listed.iter().zip(json_listed) {
        assert_eq!(ours["id"], theirs["id"]);
        assert_eq!(ours["name"], theirs["name"]);
        assert_eq!(ours["type"], theirs["type"]);
    }
    let counted = cpi(&["run", name, "count_workers", "-p", "region=us-central"]).ok();
    assert_eq!(counted, json!({"region": "us-central", "count": 1}));
    // A worker that does not exist: the same category as the JSON provider says (the
    // components ask the host's classifier, or share its rules through the contract).
    let missing = ["get_worker", "-p", "worker_id=wrk-00000000"];
    let theirs = w.cpi(&[&["run", "cloudco"][..], &missing, &["--json"]].concat());
    let code = theirs.json()["error"]["code"].clone();
    assert_eq!(code, "ResourceNotFoundError", "{}", theirs.all_output());
    cpi(&[&["run", name][..], &missing].concat()).err(code.as_str().unwrap());
    // A flag-looking id is refused by the component before anything runs.
    cpi(&["run", name, "get_worker", "-p", "worker_id=--help"]).err("ValidationError");

    eprintln!(
        "{name}: first `cpi run` (compiles) {:.2}s; warm `cpi run {name} list_workers` {:.3}s; \
         `cpi run cloudco list_workers` (JSON provider) {:.3}s",
        first.as_secs_f64(),
        warm.as_secs_f64(),
        json_time.as_secs_f64()
    );
}

#[test]
fn python_component_runs_like_its_json_provider() {
    runs_like_its_json_provider("cloudco-py", python_guest());
}

#[test]
fn js_component_runs_like_its_json_provider() {
    runs_like_its_json_provider("cloudco-js", js_guest());
}

#[test]
fn c_component_built_from_the_wit_alone_runs_like_its_json_provider() {
    runs_like_its_json_provider("cloudco-c", c_guest());
}

/// Where the examples' `fetch_workers` asks to reach by default (`cpi sim`'s address; their
/// manifests request `http://127.0.0.1:8787/instances`).
const SIM_PORT: u16 = 8787;

/// Port 8787 is where every example's `fetch_workers` looks for the API: one test at a time.
static PORT_8787: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The JavaScript example lists workers with `fetch()` (wasi:http, sent by cpi's gate).
#[test]
fn js_component_fetches_only_what_it_was_granted() {
    let Some(wasm) = built_or_skipped("cloudco-js fetch()", js_guest()) else {
        return;
    };
    fetches_only_what_it_was_granted("cloudco-js", wasm);
}

/// The Python example lists workers over wasi:http with componentize-py's own helpers
/// (`poll_loop.send`), checked by the same gate.
#[test]
fn python_component_fetches_with_componentize_py_wasi_http_only_what_it_was_granted() {
    let Some(wasm) = built_or_skipped("cloudco-py wasi:http", python_guest()) else {
        return;
    };
    fetches_only_what_it_was_granted("cloudco-py", wasm);
}

/// The Rust example lists workers with the guest SDK's wasi:http client
/// (`http::Request::fetch`), checked by the same gate.
#[test]
fn rust_component_fetches_with_the_sdk_wasi_http_client_only_what_it_was_granted() {
    let wasm = crate::wasm::guest("cpi-example-rust-cloudco", "cpi_example_rust_cloudco.wasm");
    fetches_only_what_it_was_granted("cloudco-wasm", &wasm);
}

/// A component's `fetch_workers` over wasi:http: a redirect to an origin it was not granted is
/// stopped at that hop, which sees no request; without a grant the request is a
/// CapabilityDeniedError and the simulator sees nothing; with one, it lists what the JSON
/// provider lists. One such test at a time (they all need port 8787).
fn fetches_only_what_it_was_granted(name: &str, wasm: &std::path::Path) {
    let _port = PORT_8787.lock().unwrap_or_else(|e| e.into_inner());
    let setup = |w: &World| {
        let dir = w.dir.path().join("components");
        std::fs::create_dir(&dir).unwrap();
        std::fs::copy(wasm, dir.join(format!("{name}.wasm"))).unwrap();
        dir.display().to_string()
    };
    let fetch = |w: &World, pd: &str, extra: &[&str]| {
        let key = format!("api_key={}", w.token());
        let mut args = vec!["--provider-dir", pd, "run", name, "fetch_workers"];
        args.extend_from_slice(&["-p", &key, "--json"]);
        args.extend_from_slice(extra);
        w.cpi(&args)
    };

    // A granted origin that redirects to another one: refused at the hop.
    let elsewhere = World::new();
    let pd = setup(&elsewhere);
    let server = crate::wasm::redirect_server(SIM_PORT, format!("{}/instances", elsewhere.url()));
    let before = elsewhere.requests()["count"].as_u64();
    let granted = format!("http://127.0.0.1:{SIM_PORT}/instances");
    let err = fetch(&elsewhere, &pd, &["--allow-net", &granted]).err("CapabilityDeniedError");
    assert!(
        err["message"].as_str().unwrap().contains("redirect"),
        "{err}"
    );
    assert_eq!(
        server.join().unwrap(),
        1,
        "the granted origin was asked once"
    );
    assert_eq!(
        elsewhere.requests()["count"].as_u64(),
        before,
        "the ungranted destination saw no request"
    );
    drop(elsewhere);

    // The simulator where the component looks for it.
    let w = World::with(|cfg| cfg.addr = ([127, 0, 0, 1], SIM_PORT).into());
    let pd = setup(&w);
    w.cpi(&[
        "run",
        "cloudco",
        "create_worker",
        "-p",
        "name=fetched-1",
        "--json",
    ])
    .ok();
    let before = w.requests()["count"].as_u64();
    let err = fetch(&w, &pd, &[]).err("CapabilityDeniedError");
    assert!(
        err["message"].as_str().unwrap().contains("not granted"),
        "{err}"
    );
    assert_eq!(
        w.requests()["count"].as_u64(),
        before,
        "an ungranted fetch() reached the simulator"
    );

    w.cpi(&["--provider-dir", &pd, "grant", name, "--all", "--json"])
        .ok();
    let listed = fetch(&w, &pd, &[]).ok();
    let json = w.cpi(&["run", "cloudco", "list_workers", "--json"]).ok();
    let ids = |v: &Value| -> Vec<Value> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].clone())
            .collect()
    };
    assert_eq!(ids(&listed), ids(&json), "{listed}\n{json}");
    assert_eq!(listed[0]["name"], "fetched-1", "{listed}");
}

/// A wasi:http request whose server accepts and never answers ends with the call that sent it
/// (`--wasm-timeout`), not at the gate's own limit (120 s): the guest waiting on the answer's
/// pollable is stopped at the call's deadline.
#[test]
fn a_wasi_http_request_that_is_never_answered_ends_at_the_calls_deadline() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let wasm = crate::wasm::guest("cpi-example-rust-cloudco", "cpi_example_rust_cloudco.wasm");
    let _port = PORT_8787.lock().unwrap_or_else(|e| e.into_inner());
    let listener = std::net::TcpListener::bind(("127.0.0.1", SIM_PORT)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => held.push(conn),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
            held.len()
        })
    };
    let w = World::new();
    let dir = w.dir.path().join("components");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(&wasm, dir.join("cloudco-wasm.wasm")).unwrap();
    let mut cmd = w.command();
    cmd.args(["--provider-dir", dir.to_str().unwrap()]);
    cmd.args([
        "run",
        "cloudco-wasm",
        "fetch_workers",
        "-p",
        "api_key=k",
        "--json",
    ]);
    cmd.args(["--wasm-timeout", "2", "--allow-net"]);
    cmd.arg(format!("http://127.0.0.1:{SIM_PORT}/instances"));
    let started = Instant::now();
    let measured = crate::support::run_watched(&mut cmd, Duration::from_secs(60), u64::MAX);
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let connections = server.join().unwrap();
    assert!(measured.killed.is_none(), "fetch_workers hung ({took:?})");
    let err = measured.run.err("TimeoutError");
    assert!(
        err["message"].as_str().unwrap().contains("--wasm-timeout"),
        "{err}"
    );
    assert!(took < Duration::from_secs(20), "the request ran {took:?}");
    assert!(connections >= 1, "the request never reached the server");
}
