//! Tools for provider authors: `cpi docs` (and the committed docs/providers being current),
//! `cpi schema` (and every provider file matching it), `cpi new`, plus the CLI's output
//! formats, colour rules and shell completions.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::{Run, cpi_bin, repo, run};

/// `cpi ARGS` in `dir` with an isolated home (no user providers, config or grants): only the
/// built-in providers and the `--provider-dir`s given are searched.
fn cpi_in(dir: &Path, args: &[&str]) -> Run {
    run(isolated(dir).args(args))
}

fn isolated(dir: &Path) -> Command {
    let home = dir.join(".home");
    let mut cmd = Command::new(cpi_bin());
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_DATA_HOME", home.join("data"))
        .stdin(Stdio::null());
    cmd
}

fn ok(run: &Run) {
    assert_eq!(
        run.code, 0,
        "cpi failed:\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
}

/// The Markdown files of a directory, by name.
fn markdown_files(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "md"))
                .map(|p| {
                    let name = p.file_name().unwrap().to_string_lossy().into_owned();
                    (name, std::fs::read_to_string(&p).unwrap_or_default())
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// docs/providers is what `cpi docs --all` makes of whatever is in providers/ now.
#[test]
fn provider_docs_are_current() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("docs");
    let providers = repo().join("providers");
    ok(&cpi_in(
        tmp.path(),
        &[
            "--provider-dir",
            providers.to_str().unwrap(),
            "docs",
            "--all",
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    let fresh = markdown_files(&out);
    let committed = markdown_files(&repo().join("docs/providers"));
    let fix = "run `cpi docs --all --out docs/providers` from the repository root (e.g. `cargo run -- docs --all --out docs/providers`)";
    let names = |files: &[(String, String)]| -> Vec<String> {
        files.iter().map(|(n, _)| n.clone()).collect()
    };
    assert_eq!(
        names(&committed),
        names(&fresh),
        "docs/providers does not match providers/: {fix}"
    );
    for ((name, want), (_, have)) in fresh.iter().zip(&committed) {
        if want != have {
            let line = want
                .lines()
                .zip(have.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| want.lines().count().min(have.lines().count()));
            panic!(
                "docs/providers/{name} is stale (first difference at line {}): {fix}",
                line + 1
            );
        }
    }
    // Every provider has its page, and the index links it.
    let index = &fresh.iter().find(|(n, _)| n == "README.md").unwrap().1;
    for entry in std::fs::read_dir(&providers).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            assert!(
                fresh.iter().any(|(n, _)| *n == format!("{name}.md")),
                "{name}"
            );
            assert!(index.contains(&format!("]({name}.md)")), "{name}");
        }
    }
}

/// One provider's page, on stdout, in the §11.2 layout.
#[test]
fn docs_follow_the_action_documentation_format() {
    let tmp = tempfile::tempdir().unwrap();
    let providers = repo().join("providers");
    let page = cpi_in(
        tmp.path(),
        &[
            "--provider-dir",
            providers.to_str().unwrap(),
            "docs",
            "cloudco",
        ],
    );
    ok(&page);
    let md = &page.stdout;
    let action = &md[md
        .find("\n## create_worker\n")
        .expect("create_worker section")..];
    let action = &action[..action[1..].find("\n## ").map_or(action.len(), |e| e + 1)];
    for heading in [
        "### Parameters",
        "### Returns",
        "### Errors",
        "### Example",
        "### Expected Response",
    ] {
        assert!(action.contains(heading), "{heading} in:\n{action}");
    }
    assert!(
        action.contains("| name | string | Yes | A worker name (free text"),
        "{action}"
    );
    assert!(
        action.contains("| worker_type | string | No (default: `standard-2`) |"),
        "{action}"
    );
    assert!(
        action.contains("cpi run cloudco create_worker -p name=web-1"),
        "{action}"
    );
    // The request is the dry run's argv, defaults filled in.
    assert!(
        action.contains("\"--type\",\n    \"standard-2\""),
        "{action}"
    );
    assert!(action.contains("- QuotaExceededError:"), "{action}");
    // list_workers ships a fixture: its expected result is the example response.
    assert!(
        md.contains("From the fixture `fixtures/cloudco/list_workers.json`"),
        "{md}"
    );
}

/// `cpi schema` is the committed schema, and every provider file in the repository (and the
/// OmniCloud corpus beside it) validates against it; typos do not.
#[test]
fn provider_files_match_the_committed_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let printed = cpi_in(tmp.path(), &["schema"]);
    ok(&printed);
    let committed =
        std::fs::read_to_string(repo().join("schema/provider.schema.json")).unwrap_or_default();
    assert!(
        printed.stdout == committed,
        "schema/provider.schema.json is stale: run `cargo run -- schema > schema/provider.schema.json`"
    );
    let schema: Value = serde_json::from_str(&committed).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");

    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [
        repo().join("providers"),
        repo().join("../shared/compat/omnicloud"),
        repo().join("examples/rust-cloudco"),
        repo().join("examples/c-cloudco"),
    ] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            files.extend(
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "json")),
            );
        }
    }
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    for file in &files {
        let value: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} does not match schema/provider.schema.json: {errors:#?}",
            file.display()
        );
    }

    let base: Value = serde_json::from_str(
        r#"{"$schema": "../schema/provider.schema.json", "name": "x", "type": "endpoint",
            "actions": {"a": {"target": {"Endpoint": {"url": "{api_url}/x", "method": "get"}},
                              "params": ["api_url"],
                              "parse_rules": {"type": "json", "patterns": {"id": {"pointer": "/id"}}}},
                        "b": {"target": {"Command": {"command": "ls", "in_vm": false}}},
                        "c": {"target": {"Endpoint": {"url": "u", "method": {"Custom": "PURGE"}}}}}}"#,
    )
    .unwrap();
    assert!(validator.is_valid(&base), "{:?}", validator.validate(&base));
    let broken = [
        ("/actions/a/parse_rules/type", Value::from("yaml")),
        ("/actions/a/target/Endpoint/method", Value::from("Fetch")),
        (
            "/actions/a/parse_rules/patterns/id/optinal",
            Value::from(true),
        ),
        ("/actions/a/target/Endpoint/headerz", serde_json::json!({})),
        ("/actions/b/target", serde_json::json!({"Shell": "ls"})),
        ("/type", Value::from("cli")),
    ];
    for (at, value) in broken {
        let mut doc = base.clone();
        let (parent, key) = at.rsplit_once('/').unwrap();
        doc.pointer_mut(parent).unwrap()[key] = value;
        assert!(!validator.is_valid(&doc), "{at} should be refused");
    }
}

/// `cpi new` writes providers that validate cleanly, match the schema and pass their own
/// fixtures, and never overwrites anything.
#[test]
fn new_providers_validate_and_pass_their_fixtures() {
    let tmp = tempfile::tempdir().unwrap();
    // A tree with the schema, like the repository: the file points editors at it.
    std::fs::create_dir(tmp.path().join("schema")).unwrap();
    std::fs::copy(
        repo().join("schema/provider.schema.json"),
        tmp.path().join("schema/provider.schema.json"),
    )
    .unwrap();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("schema/provider.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for (name, kind) in [("acme", "command"), ("acme-api", "endpoint")] {
        let created = cpi_in(tmp.path(), &["new", name, "--type", kind, "--json"]);
        ok(&created);
        let file = tmp.path().join(format!("providers/{name}.json"));
        let text = std::fs::read_to_string(&file).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["$schema"], "../schema/provider.schema.json");
        assert_eq!(value["type"], kind);
        assert!(validator.is_valid(&value), "{name}: {text}");
        assert!(
            tmp.path()
                .join(format!("providers/fixtures/{name}/list_workers.json"))
                .is_file()
        );

        let report = cpi_in(tmp.path(), &["validate", "--json", file.to_str().unwrap()]);
        ok(&report);
        assert_eq!(
            report.json()[0]["findings"],
            serde_json::json!([]),
            "{name}: {}",
            report.stdout
        );
        // `./providers` is not searched by default: the project directory is named.
        let pd = ["--provider-dir", "providers"];
        let tested = cpi_in(tmp.path(), &[&pd[..], &["test", name, "--json"]].concat());
        ok(&tested);
        let cases = tested.json()[name].clone();
        // The command scaffold adds a `table` fixture (`list_images`).
        let want = if kind == "command" { 2 } else { 1 };
        assert_eq!(cases.as_array().map(Vec::len), Some(want), "{cases}");
        assert!(
            cases
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c.get("failure").is_none()),
            "{cases}"
        );
        ok(&cpi_in(tmp.path(), &[&pd[..], &["docs", name]].concat()));

        // A second time: refused, and the file is untouched.
        std::fs::write(&file, "{\"mine\": true}").unwrap();
        let again = cpi_in(tmp.path(), &["new", name, "--type", kind, "--json"]);
        assert_eq!(again.code, 10, "{}", again.stdout);
        assert!(again.stdout.contains("already exists"), "{}", again.stdout);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "{\"mine\": true}");
    }
    let bad = cpi_in(tmp.path(), &["new", "Bad Name", "--json"]);
    assert_eq!(bad.code, 10, "{}", bad.stdout);
}

/// `cpi new NAME --component rust` writes a project that builds into a component cpi loads
/// and runs: its carried definition, its parse hook and its status mapping.
#[test]
fn new_rust_component_builds_and_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let created = cpi_in(
        tmp.path(),
        &["new", "acme-wasm", "--component", "rust", "--json"],
    );
    ok(&created);
    let project = tmp.path().join("acme-wasm");
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        "acme-wasm.json",
        "README.md",
        ".gitignore",
    ] {
        assert!(project.join(file).is_file(), "{file}");
    }
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("cpi-guest-sdk = { path = "), "{manifest}");
    let report = cpi_in(
        tmp.path(),
        &["validate", "--json", "acme-wasm/acme-wasm.json"],
    );
    ok(&report);

    // Build it as a user would, with the workspace's lock file so nothing new is fetched;
    // the target directory is kept across runs.
    std::fs::copy(repo().join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = repo().join("target/scaffold");
    let started = std::time::Instant::now();
    let build = Command::new(cargo)
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", &target)
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
        .output()
        .expect("cargo runs");
    assert!(
        build.status.success(),
        "the scaffolded project does not build (is the target installed? `rustup target add wasm32-wasip2`):\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    eprintln!(
        "built the scaffolded component in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    run_installed(
        tmp.path(),
        "acme-wasm",
        &target.join("wasm32-wasip2/release/acme_wasm.wasm"),
    );
}

/// Installs a scaffolded component as provider `name`, with a stand-in for its CLI on PATH,
/// grants what it asks for and runs `list_workers`: the carried definition's target, the
/// component's parse hook and its status mapping (`OFF` → `stopped`).
fn run_installed(tmp: &Path, name: &str, component: &Path) {
    let providers = tmp.join(format!("installed-{name}"));
    std::fs::create_dir(&providers).unwrap();
    std::fs::copy(component, providers.join(format!("{name}.wasm"))).unwrap();
    let bin = tmp.join(format!("bin-{name}"));
    std::fs::create_dir(&bin).unwrap();
    std::fs::write(
        bin.join(name),
        "#!/bin/sh\necho '[{\"id\": \"srv-1\", \"name\": \"web-1\", \"status\": \"OFF\", \"type\": \"small\", \"ip_address\": null}]'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let cpi = |args: &[&str]| {
        run(isolated(tmp)
            .env("PATH", &path)
            .arg("--provider-dir")
            .arg(&providers)
            .args(args))
    };
    let shown = cpi(&["show", name, "--json"]);
    ok(&shown);
    let shown = shown.json();
    assert_eq!(
        shown["component"]["parses"],
        serde_json::json!(["list_workers"]),
        "{name}"
    );
    assert!(shown["actions"].get("stop_worker").is_some(), "{shown}");
    ok(&cpi(&["grant", name, "--all", "--env", "PATH", "--json"]));
    let listed = cpi(&["run", name, "list_workers", "--json"]);
    ok(&listed);
    assert_eq!(
        listed.json(),
        serde_json::json!([{"id": "srv-1", "name": "web-1", "status": "stopped",
                            "raw_status": "OFF", "type": "small"}]),
        "{name}"
    );
}

/// Whether `program --version` runs.
fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The Python and JavaScript projects build with their toolchains and run like the Rust one.
/// A missing toolchain skips its half with a `SKIPPED:` line (`.ci/run` installs both).
#[test]
fn new_python_and_js_components_build_and_run() {
    let tmp = tempfile::tempdir().unwrap();
    let build = |what: &str, cmd: &mut Command| {
        let started = std::time::Instant::now();
        let out = cmd.output().expect("the build runs");
        assert!(
            out.status.success(),
            "{what} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("{what}: {:.1}s", started.elapsed().as_secs_f64());
    };

    ok(&cpi_in(
        tmp.path(),
        &["new", "acme-py", "--component", "python", "--json"],
    ));
    let project = tmp.path().join("acme-py");
    for file in [
        "app.py",
        "build.sh",
        "acme-py.json",
        "wit/provider.wit",
        "README.md",
    ] {
        assert!(project.join(file).is_file(), "acme-py/{file}");
    }
    if available("componentize-py") {
        build(
            "the scaffolded Python component",
            Command::new("bash").arg(project.join("build.sh")),
        );
        run_installed(tmp.path(), "acme-py", &project.join("acme-py.wasm"));
    } else {
        eprintln!("SKIPPED: componentize-py not found (pip install componentize-py==0.25.1)");
    }

    ok(&cpi_in(
        tmp.path(),
        &["new", "acme-js", "--component", "js", "--json"],
    ));
    // ComponentizeJS as the JavaScript example installs it (`npm ci` there).
    let modules = repo().join("examples/js-cloudco/node_modules");
    let project = tmp.path().join("acme-js");
    for file in [
        "app.js",
        "build.mjs",
        "package.json",
        "acme-js.json",
        "wit/provider.wit",
    ] {
        assert!(project.join(file).is_file(), "acme-js/{file}");
    }
    if available("node") && modules.join("@bytecodealliance/componentize-js").is_dir() {
        std::os::unix::fs::symlink(&modules, project.join("node_modules")).unwrap();
        build(
            "the scaffolded JavaScript component",
            Command::new("node").current_dir(&project).arg("build.mjs"),
        );
        run_installed(tmp.path(), "acme-js", &project.join("acme-js.wasm"));
    } else {
        eprintln!("SKIPPED: node or ComponentizeJS not found (npm ci in examples/js-cloudco)");
    }
}

/// Tables on a terminal, JSON when piped, YAML on request; `--json` stays an alias.
#[test]
fn output_formats_and_colour() {
    let tmp = tempfile::tempdir().unwrap();
    let providers = repo().join("providers");
    let dir = providers.to_str().unwrap();
    let piped = cpi_in(tmp.path(), &["--provider-dir", dir, "providers"]);
    ok(&piped);
    let list = piped.json();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "cloudco"),
        "{list}"
    );
    let json = cpi_in(tmp.path(), &["--provider-dir", dir, "providers", "--json"]);
    assert_eq!(json.json(), list);
    let yaml = cpi_in(
        tmp.path(),
        &["--provider-dir", dir, "providers", "-o", "yaml"],
    );
    ok(&yaml);
    let parsed: Value = serde_norway::from_str(&yaml.stdout).expect("YAML");
    assert_eq!(parsed, list);
    let table = cpi_in(
        tmp.path(),
        &["--provider-dir", dir, "providers", "--output", "table"],
    );
    ok(&table);
    assert!(table.stdout.starts_with("NAME"), "{}", table.stdout);
    let both = cpi_in(tmp.path(), &["providers", "--json", "--output", "yaml"]);
    assert_eq!(both.code, 2, "{}", both.stderr);

    // Errors: §10.2 on stdout in a machine format, plus a line on stderr for the person
    // unless they asked for the machine format themselves.
    let auto = cpi_in(tmp.path(), &["show", "nope"]);
    assert_eq!(auto.code, 10);
    assert_eq!(auto.json()["error"]["code"], "ValidationError");
    assert!(
        auto.stderr.contains("error[ValidationError]"),
        "{}",
        auto.stderr
    );
    let asked = cpi_in(tmp.path(), &["show", "nope", "--json"]);
    assert_eq!(asked.json()["error"]["code"], "ValidationError");
    assert!(asked.stderr.is_empty(), "{}", asked.stderr);
    let yaml_error = cpi_in(tmp.path(), &["show", "nope", "-o", "yaml"]);
    let parsed: Value = serde_norway::from_str(&yaml_error.stdout).expect("YAML");
    assert_eq!(parsed["error"]["code"], "ValidationError");

    // Colour: never when piped, forced with CLICOLOR_FORCE, and never with NO_COLOR.
    let file = repo().join("providers/cloudco.json");
    let validate = |env: &[(&str, &str)]| {
        let mut cmd = isolated(tmp.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(cmd.args(["validate", "-o", "table", file.to_str().unwrap()]))
    };
    let plain = validate(&[]);
    ok(&plain);
    assert!(plain.stdout.contains(": ok,"), "{}", plain.stdout);
    assert!(!plain.stdout.contains('\u{1b}'), "{:?}", plain.stdout);
    let forced = validate(&[("CLICOLOR_FORCE", "1")]);
    assert!(
        forced.stdout.contains("\u{1b}[") && forced.stdout.contains("ok"),
        "{:?}",
        forced.stdout
    );
    let no_color = validate(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(!no_color.stdout.contains('\u{1b}'), "{:?}", no_color.stdout);
    let error = run(isolated(tmp.path())
        .env("CLICOLOR_FORCE", "1")
        .env("NO_COLOR", "1")
        .args(["show", "nope", "-o", "table"]));
    assert!(
        error.stderr.starts_with("error[ValidationError]"),
        "{:?}",
        error.stderr
    );
}

/// Completion scripts for every shell clap_complete knows, naming the subcommands.
#[test]
fn completions_and_help_examples() {
    let tmp = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = cpi_in(tmp.path(), &["completions", shell]);
        ok(&script);
        for word in ["docs", "schema", "completions", "validate"] {
            assert!(script.stdout.contains(word), "{shell}: {word}");
        }
    }
    let help = cpi_in(tmp.path(), &["--help"]);
    ok(&help);
    let commands: Vec<String> = help
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // Continuation lines of wrapped descriptions are indented further.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 15, "{commands:?}");
    for command in commands {
        let help = cpi_in(tmp.path(), &[&command, "--help"]);
        ok(&help);
        assert!(
            help.stdout.contains("Examples:\n  cpi "),
            "`cpi {command} --help` has no examples:\n{}",
            help.stdout
        );
    }
}
