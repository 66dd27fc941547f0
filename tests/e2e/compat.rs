//! The OmniCloud compatibility corpus (`shared/compat/omnicloud/`, 30 real provider files):
//! every file loads, every file gets a `cpi validate` report (never a panic or a hang), the
//! reports of a few files say precisely what is refused and why, and `cpi parse` turns saved
//! real-world output into the expected JSON with the files' own rules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Run, cpi_bin, repo};

/// The corpus: `shared/compat/omnicloud` beside the repository (how CI lays it out), else
/// `$CPI_COMPAT_DIR`. Missing both is a failure, never a silent pass.
fn corpus() -> PathBuf {
    let beside = repo()
        .parent()
        .expect("the repository has a parent directory")
        .join("shared/compat/omnicloud");
    if beside.is_dir() {
        return beside;
    }
    match std::env::var_os("CPI_COMPAT_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            assert!(
                dir.is_dir(),
                "CPI_COMPAT_DIR={} is not a directory",
                dir.display()
            );
            dir
        }
        None => panic!(
            "the OmniCloud compatibility corpus was not found: expected {} (a copy of shared/ \
             beside the repository) or CPI_COMPAT_DIR=/path/to/compat/omnicloud",
            beside.display()
        ),
    }
}

/// The corpus's provider files, sorted.
fn corpus_files() -> Vec<PathBuf> {
    let dir = corpus();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        30,
        "the corpus has 30 provider files, found {} in {}",
        files.len(),
        dir.display()
    );
    files
}

fn corpus_file(name: &str) -> PathBuf {
    let path = corpus().join(name);
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

/// Runs a command to completion, killing it (and failing) if it takes longer than `limit`:
/// a provider file must never make cpi hang.
fn run_with_limit(cmd: &mut Command, limit: Duration) -> Run {
    let measured = crate::support::run_watched(cmd, limit, u64::MAX);
    assert!(
        measured.killed.is_none(),
        "cpi was killed ({:?}): {cmd:?}",
        measured.killed
    );
    measured.run
}

/// `cpi ARGS...` in an empty temp directory with an empty home, so neither `./providers` nor a
/// user config dir adds providers.
fn cpi(dir: &Path, args: &[&std::ffi::OsStr]) -> Run {
    let mut cmd = Command::new(cpi_bin());
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .args(args);
    run_with_limit(&mut cmd, Duration::from_secs(60))
}

/// `cpi validate --json FILE`, checked for a clean, well-formed report; returns the report.
fn validate(file: &Path) -> Value {
    let tmp = tempfile::tempdir().expect("temp dir");
    let run = cpi(
        tmp.path(),
        &["validate".as_ref(), "--json".as_ref(), file.as_os_str()],
    );
    let name = file.display();
    assert!(
        run.code == 0 || run.code == 1,
        "{name}: cpi validate exited {} (0 = clean, 1 = errors found; 101 is a panic)\nstderr: {}",
        run.code,
        run.stderr
    );
    assert!(
        !run.stderr.contains("panicked"),
        "{name}: cpi panicked:\n{}",
        run.stderr
    );
    let reports: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{name}: stdout is not JSON ({e}):\n{}", run.stdout));
    let reports = reports.as_array().expect("a list of reports");
    assert_eq!(reports.len(), 1, "{name}: one report per file");
    let report = reports[0].clone();
    assert_eq!(report["file"], json!(file.display().to_string()));
    let errors = findings(&report, "error").len();
    assert_eq!(
        run.code,
        i32::from(errors > 0),
        "{name}: exit code 1 exactly when the report has errors"
    );
    report
}

/// `(path, message)` of each finding with the given severity.
fn findings(report: &Value, severity: &str) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["severity"] == severity)
        .map(|f| {
            (
                f["path"].as_str().expect("path").to_string(),
                f["message"].as_str().expect("message").to_string(),
            )
        })
        .collect()
}

/// The one finding at `path` whose message contains every part; panics listing them all.
fn finding<'a>(list: &'a [(String, String)], path: &str, parts: &[&str]) -> &'a (String, String) {
    let hits: Vec<_> = list
        .iter()
        .filter(|(p, m)| p == path && parts.iter().all(|part| m.contains(part)))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "expected exactly one finding at {path} containing {parts:?}; findings:\n{list:#?}"
    );
    hits[0]
}

/// Resolves a finding path (`actions.x.post_exec[0].target.Command`) in the raw file.
fn resolve<'v>(raw: &'v Value, path: &str) -> Option<&'v Value> {
    if path.is_empty() {
        return Some(raw);
    }
    let mut at = raw;
    for segment in path.split('.') {
        let (key, indices) = segment.split_once('[').unwrap_or((segment, ""));
        at = at.get(key)?;
        for index in indices.split('[').filter(|s| !s.is_empty()) {
            at = at.get(index.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(at)
}

#[test]
fn every_corpus_file_loads() {
    let mut names = BTreeSet::new();
    for file in corpus_files() {
        let provider = cpi::Provider::load(&file)
            .unwrap_or_else(|e| panic!("{} does not load: {e}", file.display()));
        // Nothing is dropped on the way: every action of the file is there, in file order.
        let raw: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("JSON");
        let in_file: Vec<&String> = raw["actions"]
            .as_object()
            .expect("actions")
            .keys()
            .collect();
        let loaded: Vec<&String> = provider.actions.keys().collect();
        assert_eq!(loaded, in_file, "{}", file.display());
        assert!(
            names.insert(provider.name.clone()),
            "duplicate provider name {}",
            provider.name
        );
    }
    // The whole corpus as one provider directory: discovery loads all 30, no problems.
    let registry = cpi::Registry::discover(&[corpus()]).expect("discover the corpus");
    assert_eq!(registry.providers().count(), 30);
    assert!(registry.problems().is_empty(), "{:?}", registry.problems());
}

#[test]
fn every_corpus_file_gets_a_report_with_real_paths() {
    let mut with_errors = BTreeMap::new();
    for file in corpus_files() {
        let report = validate(&file);
        let raw: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("JSON");
        assert_eq!(report["provider"], raw["name"], "{}", file.display());
        for f in report["findings"].as_array().expect("findings") {
            let (path, message) = (
                f["path"].as_str().expect("path"),
                f["message"].as_str().expect("message"),
            );
            assert!(
                !message.trim().is_empty(),
                "{}: empty message",
                file.display()
            );
            // Every finding points at a place that exists in the file (a `params` list the
            // file should have but lacks is the one exception: that is where to add it).
            let found = resolve(&raw, path).is_some()
                || path
                    .strip_suffix(".params")
                    .is_some_and(|parent| resolve(&raw, parent).is_some());
            assert!(
                found,
                "{}: no such JSON path {path:?} ({message})",
                file.display()
            );
        }
        let errors = findings(&report, "error").len();
        if errors > 0 {
            let name = file
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            with_errors.insert(name, errors);
        }
    }
    // Which files fail, and with how many errors: a change here is a change in what cpi
    // refuses, to be reviewed, not just re-recorded.
    let expected: BTreeMap<String, usize> = [
        ("cpi-aws-lightsale.json", 1),
        ("cpi-digital-ocean.json", 2),
        // + `direct_target`: a program chosen by a parameter (`{target}`) is never run (issue 12).
        ("cpi-dummy.json", 3),
        ("cpi-equinix-metal.json", 2),
        ("cpi-kvm.json", 1),
        ("cpi-linode.json", 2),
        ("cpi-oracle-cloud.json", 1),
        ("cpi-qemu.json", 8),
        ("cpi-truenas.json", 1),
        ("cpi-vmware-esxi.json", 5),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(with_errors, expected);
}

#[test]
fn the_whole_corpus_in_one_run() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let run = cpi(
        tmp.path(),
        &["--json".as_ref(), "validate".as_ref(), corpus().as_os_str()],
    );
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    let reports: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(reports.as_array().expect("reports").len(), 30);
}

#[test]
fn vmware_esxi_report() {
    let report = validate(&corpus_file("cpi-vmware-esxi.json"));
    let errors = findings(&report, "error");
    let warnings = findings(&report, "warning");
    // Missing §2.1 methods, each pointing at the action that looks like it.
    for (method, lookalike) in [
        ("get_worker", "get_worker_info"),
        ("start_worker", "power_on_worker"),
        ("stop_worker", "shutdown_worker"),
    ] {
        finding(
            &errors,
            "actions",
            &[
                &format!("required method '{method}' is missing (§2.1)"),
                &format!("action '{lookalike}' looks like it"),
            ],
        );
    }
    // `vim-cmd vmsvc/getallvms | grep {worker_name} | awk '{print $1}'`: refused at the
    // first `|`, naming it.
    let (_, pipeline) = finding(
        &errors,
        "actions.create_worker.post_exec[0].target.Command",
        &["shell syntax `|` (pipeline) at byte 24"],
    );
    assert!(pipeline.contains("without a shell"), "{pipeline}");
    finding(
        &errors,
        "actions.list_datastores.target.Command",
        &["`|` (pipeline) at byte 31"],
    );
    assert_eq!(errors.len(), 5, "{errors:#?}");
    // The post_exec step's {worker_name} is create_worker's own parameter: a step runs with its
    // action's values, so it is not reported as a value that can never be given.
    assert!(!report.to_string().contains("{worker_name}"), "{report:#}");
    finding(
        &warnings,
        "actions.get_worker_info.params[0]",
        &["parameter 'vmid' has a standard name: 'worker_id' (§7)"],
    );
    finding(
        &warnings,
        "actions.create_worker.params[0]",
        &["parameter 'worker_name' has a standard name: 'name' (§7)"],
    );
    finding(
        &warnings,
        "actions.reset_worker",
        &["the standard name is 'reboot_worker'"],
    );
}

#[test]
fn truenas_omnicloud_report() {
    let report = validate(&corpus_file("cpi-truenas.json"));
    let errors = findings(&report, "error");
    // `"cpu":{vcpus}` in create_vm's body: never declared, no default anywhere.
    assert_eq!(
        errors,
        [(
            "actions.create_vm.target".to_string(),
            "placeholder {vcpus} is not in params and has no default, so it can never get a \
             value (§9.4)"
                .to_string()
        )]
    );
    let warnings = findings(&report, "warning");
    // ... while the parameter that was probably meant is declared and unused.
    finding(
        &warnings,
        "actions.create_vm.params[3]",
        &["parameter 'worker_type' is declared but never used in the target"],
    );
    // {mac} comes from the action's default_settings: fine, but not declared.
    finding(
        &warnings,
        "actions.create_vm.params",
        &["placeholder {mac} is used but not listed in params (§9.4); it takes its default"],
    );
}

#[test]
fn aws_reports_name_refused_shell_syntax_and_standard_parameter_names() {
    let report = validate(&corpus_file("cpi-aws-lightsale.json"));
    // `--public-key-base64 $(echo {ssh_public_key} | base64)`: refused at the `$`.
    assert_eq!(
        findings(&report, "error"),
        [(
            "actions.create_ssh_key.target.Command".to_string(),
            "command template uses shell syntax `$` (expansion) at byte 73; cpi runs commands \
             without a shell. Wrap the command in sh -c '...' if the provider really needs a \
             shell"
                .to_string()
        )]
    );
    let warnings = findings(&report, "warning");
    // `... --key-pair-name {key_pair_name} {tags_param} --region ...` with tags_param "".
    let (_, tags) = finding(
        &warnings,
        "actions.create_worker.target.Command",
        &["placeholder {tags_param} is a whole argument by itself"],
    );
    assert!(
        tags.contains("the default \"\" of {tags_param} becomes an empty argument"),
        "{tags}"
    );

    // EC2: no errors, and each non-standard parameter gets its §7 name, once per provider,
    // at the parameter itself.
    let report = validate(&corpus_file("cpi-aws-ec2-api.json"));
    assert_eq!(findings(&report, "error"), []);
    let suggestions: Vec<(String, String)> = findings(&report, "warning")
        .into_iter()
        .filter(|(_, m)| m.contains("(§7)"))
        .collect();
    let expected = [
        ("create_worker.params[6]", "image_id", "image"),
        ("create_worker.params[7]", "instance_type", "worker_type"),
        ("delete_worker.params[6]", "instance_id", "worker_id"),
        ("create_volume.params[6]", "availability_zone", "zone"),
        ("create_volume.params[8]", "volume_type", "disk_type"),
        ("attach_volume.params[6]", "volume_id", "disk_id"),
    ]
    .map(|(path, name, standard)| {
        (
            format!("actions.{path}"),
            format!("parameter '{name}' has a standard name: '{standard}' (§7)"),
        )
    });
    assert_eq!(suggestions, expected);
}

#[test]
fn azure_and_huawei_report_what_cpi_cannot_send_as_written() {
    let report = validate(&corpus_file("cpi-azure-api.json"));
    assert_eq!(findings(&report, "error"), []);
    let warnings = findings(&report, "warning");
    // Bodies written in JavaScript (`{...worker_template, ...}`), sent as application/json.
    for action in [
        "attach_volume",
        "detach_volume",
        "resize_worker",
        "remove_tag_from_resource",
    ] {
        finding(
            &warnings,
            &format!("actions.{action}.post_exec[0].target.Endpoint.body"),
            &[
                "the body template is not valid JSON with its placeholders filled in (key must \
                 be a string at line 1 column ",
                "although its Content-Type says JSON; a JSON API will reject it",
            ],
        );
    }
    finding(
        &warnings,
        "actions.test_install.params[7]",
        &["parameter 'access_token' is listed more than once"],
    );

    // A default that itself holds a placeholder is not expanded (values are substituted once).
    let report = validate(&corpus_file("cpi-huawei.json"));
    finding(
        &findings(&report, "warning"),
        "actions.create_worker.default_settings.key_param",
        &["contains the placeholder {key_name}; cpi substitutes values once"],
    );
}

#[test]
fn the_standard_providers_validate_without_errors() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let providers = repo().join("providers");
    let run = cpi(
        tmp.path(),
        &[
            "--json".as_ref(),
            "validate".as_ref(),
            providers.as_os_str(),
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let reports: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let names: Vec<&str> = reports
        .as_array()
        .expect("reports")
        .iter()
        .map(|r| r["provider"].as_str().expect("name"))
        .collect();
    // The two standard examples and the nine real-platform providers (issue 6).
    assert_eq!(names, crate::support::SHIPPED_PROVIDERS);
    for report in reports.as_array().expect("reports") {
        assert_eq!(findings(report, "error"), [], "{report:#}");
    }
}

/// `cpi --json parse PROVIDER ACTION --input FILE` with only the corpus file `file` loaded.
fn parse(file: &str, provider: &str, action: &str, input: &Path) -> Run {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("providers-under-test");
    std::fs::create_dir(&dir).expect("provider dir");
    std::fs::copy(corpus_file(file), dir.join(file)).expect("copy provider");
    cpi(
        tmp.path(),
        &[
            "--json".as_ref(),
            "parse".as_ref(),
            provider.as_ref(),
            action.as_ref(),
            "--input".as_ref(),
            input.as_os_str(),
            "--provider-dir".as_ref(),
            dir.as_os_str(),
        ],
    )
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/compat").join(name)
}

#[test]
fn ovh_list_workers_splits_a_json_array_on_its_separator() {
    // `"separator": "\\},\\{"` over `openstack server list -f json` output, minified.
    let run = parse(
        "cpi-ovh-cloud.json",
        "ovh",
        "list_workers",
        &fixture("ovh-server-list.min.json"),
    );
    assert_eq!(
        run.ok(),
        json!([
            {"id": "6f1c2b9e-4a47-4a0e-9b7e-1d2f3a4b5c6d", "name": "web-1", "status": "running",
             "raw_status": "ACTIVE", "ip_addresses": "Ext-Net=51.68.12.34", "flavor": "d2-2",
             "image": "Ubuntu 22.04"},
            // "Image": "" does not match the optional image pattern: the field is left out.
            {"id": "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d", "name": "db-1", "status": "stopped",
             "raw_status": "SHUTOFF", "ip_addresses": "Ext-Net=51.68.12.35", "flavor": "b2-7"},
            {"id": "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e", "name": "build-7",
             "status": "provisioning", "raw_status": "BUILD", "ip_addresses": "Ext-Net=51.68.12.36",
             "flavor": "d2-4"}
        ])
    );

    // The file's separator assumes minified JSON: openstack's own indented output has
    // `},\n  {` between servers, so it is one record and only the first server comes out.
    // That is the provider file's rule, applied as written.
    let run = parse(
        "cpi-ovh-cloud.json",
        "ovh",
        "list_workers",
        &fixture("ovh-server-list.pretty.json"),
    );
    let workers = run.ok();
    assert_eq!(workers.as_array().map(Vec::len), Some(1), "{workers}");
    assert_eq!(workers[0]["name"], "web-1");

    // A server without the required Networks field fails the whole action, naming the field
    // and the record.
    let tmp = tempfile::tempdir().expect("temp dir");
    let input = tmp.path().join("out.json");
    std::fs::write(
        &input,
        r#"[{"ID":"a","Name":"web-1","Status":"ACTIVE","Networks":"n=1","Flavor":"d2-2"},{"ID":"b","Name":"x","Status":"ERROR","Networks":"","Flavor":"d2-2"}]"#,
    )
    .expect("write output");
    let run = parse("cpi-ovh-cloud.json", "ovh", "list_workers", &input);
    assert_eq!(run.code, 15, "ProviderError: {}", run.stdout);
    let error = run.err("ProviderError");
    assert_eq!(error["details"]["field"], "ip_addresses");
    assert_eq!(error["details"]["record"], 2);
    assert_eq!(error["details"]["provider"], "ovh");
}

#[test]
fn digital_ocean_tables_with_number_and_boolean_transforms() {
    // `doctl compute droplet list --format ID,Name,PublicIPv4,Memory,VCPUs,Disk,Region,Status
    // --no-header`: numbers stay integers, statuses are normalized (§6.1).
    let run = parse(
        "cpi-digital-ocean.json",
        "digital-ocean",
        "list_workers",
        &fixture("do-droplet-list.txt"),
    );
    let workers = run.ok();
    assert_eq!(
        workers,
        json!([
            {"id": 412345678, "name": "web-1", "ip_address": "203.0.113.10", "memory": 1024,
             "vcpus": 1, "disk": 25, "region": "nyc1", "status": "running", "raw_status": "active"},
            {"id": 412345679, "name": "db-1", "ip_address": "203.0.113.11", "memory": 2048,
             "vcpus": 2, "disk": 50, "region": "sfo3", "status": "stopped", "raw_status": "off"},
            {"id": 412345680, "name": "worker-3", "ip_address": "203.0.113.12", "memory": 4096,
             "vcpus": 2, "disk": 80, "region": "ams3", "status": "provisioning",
             "raw_status": "new"}
        ])
    );
    assert!(run.stdout.contains("\"id\":412345678,"), "{}", run.stdout);

    // `doctl compute region list --format Slug,Name,Available --no-header`: a captured
    // `true`/`false` becomes a JSON boolean; names keep their spaces.
    let run = parse(
        "cpi-digital-ocean.json",
        "digital-ocean",
        "list_regions",
        &fixture("do-region-list.txt"),
    );
    assert_eq!(
        run.ok(),
        json!([
            {"slug": "nyc1", "name": "New York 1", "available": true},
            {"slug": "sfo1", "name": "San Francisco 1", "available": false},
            {"slug": "ams3", "name": "Amsterdam 3", "available": true}
        ])
    );
}

#[test]
fn vmware_esxi_properties_from_vim_cmd_summary() {
    // `vim-cmd vmsvc/get.summary 4`: a `properties` rule set picking fields out of the nested
    // summary, with number transforms and an optional IP.
    let run = parse(
        "cpi-vmware-esxi.json",
        "vmware-esxi",
        "get_worker_info",
        &fixture("esxi-get-summary.txt"),
    );
    assert_eq!(
        run.ok(),
        json!({"name": "web-1", "power_state": "poweredOn", "ip_address": "192.168.10.50",
               "guest_full_name": "Ubuntu Linux (64-bit)", "memory_size_mb": 2048, "num_cpu": 2,
               "worker_path_name": "[datastore1] web-1/web-1.vmx"})
    );
}
