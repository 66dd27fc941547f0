//! Parameter declarations (README "Parameter declarations"): typed values, the leading-`-`
//! rule, the shipped providers' declarations and the libvirt URI that would run a program —
//! each refused before anything runs, checked with real processes and canary files.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::serve::Served;
use crate::support::{Run, World, repo};

/// A world whose working directory is where the fixture actions leave their files.
fn typed_world() -> World {
    let w = World::new();
    let dir = repo().join("tests/fixtures/params");
    w.approve(dir.to_str().unwrap(), &["typed"]);
    w
}

/// `cpi --json --provider-dir tests/fixtures/params run typed ACTION -p ...`.
fn typed(w: &World, action: &str, params: &[&str]) -> Run {
    let mut cmd = w.command();
    cmd.arg("--provider-dir")
        .arg(repo().join("tests/fixtures/params"))
        .args(["--json", "run", "typed", action]);
    for p in params {
        cmd.args(["-p", p]);
    }
    crate::support::run(&mut cmd)
}

/// The files named `made*` in the world's working directory.
fn made(w: &World) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(w.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("made") || n.starts_with('-'))
        .collect();
    names.sort();
    names
}

/// Asserts a `ValidationError` naming `parameter` and `rule`; returns the error object.
fn refused(run: &Run, parameter: &str, rule: &str, what: &str) -> Value {
    assert_ne!(run.code, 0, "{what}: cpi succeeded: {}", run.stdout);
    let json: Value = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}\n{}", run.stdout, run.stderr));
    let err = &json["error"];
    assert_eq!(err["code"], "ValidationError", "{what}: {json}");
    assert_eq!(err["details"]["parameter"], parameter, "{what}: {json}");
    assert_eq!(err["details"]["rule"], rule, "{what}: {json}");
    err.clone()
}

#[test]
fn declared_types_patterns_enums_and_bounds_are_checked_before_anything_runs() {
    let w = typed_world();
    let good = ["count=3", "ratio=0.5", "flag=true", "label=abc"];
    let cases: &[(&str, &str, &str)] = &[
        ("count=three", "count", "type"),
        ("count=2.5", "count", "type"),
        ("count=0", "count", "min"),
        ("count=11", "count", "max"),
        ("ratio=NaN", "ratio", "type"),
        ("ratio=inf", "ratio", "type"),
        ("ratio=0x1", "ratio", "type"),
        ("ratio=1.5", "ratio", "max"),
        ("flag=yes", "flag", "type"),
        ("flag=True", "flag", "type"),
        ("mode=medium", "mode", "enum"),
        ("label=ABC", "label", "pattern"),
        ("label=ab\ncd", "label", "pattern"),
        ("label=abcdefghi", "label", "max"),
    ];
    for (bad, parameter, rule) in cases {
        let name = bad.split('=').next().unwrap();
        let mut params: Vec<&str> = good
            .iter()
            .copied()
            .filter(|g| !g.starts_with(&format!("{name}=")))
            .collect();
        params.push(bad);
        let err = refused(&typed(&w, "make", &params), parameter, rule, bad);
        assert!(
            err["message"].as_str().unwrap().contains(parameter),
            "{bad}: {err}"
        );
        assert_eq!(made(&w), Vec::<String>::new(), "{bad}: the action ran");
    }
    // The same values from the environment and the config file are checked too.
    let mut cmd = w.command();
    cmd.env("CPI_PARAM_COUNT", "99")
        .arg("--provider-dir")
        .arg(repo().join("tests/fixtures/params"))
        .args(["--json", "run", "typed", "make"])
        .args(["-p", "ratio=0.5", "-p", "flag=true", "-p", "label=abc"]);
    refused(
        &crate::support::run(&mut cmd),
        "count",
        "max",
        "environment",
    );
    let config = w.dir.path().join("typed.toml");
    std::fs::write(&config, "[providers.typed]\nmode = \"medium\"\n").unwrap();
    let mut cmd = w.command();
    cmd.arg("--config")
        .arg(&config)
        .arg("--provider-dir")
        .arg(repo().join("tests/fixtures/params"))
        .args(["--json", "run", "typed", "make"]);
    for p in good {
        cmd.args(["-p", p]);
    }
    refused(&crate::support::run(&mut cmd), "mode", "enum", "config");
    assert_eq!(made(&w), Vec::<String>::new());

    // Valid values run.
    let run = typed(&w, "make", &good);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(made(&w), vec!["made-3-0.5-true-fast-abc"]);
}

#[test]
fn a_secret_that_breaks_its_declaration_is_refused_without_being_shown() {
    let w = typed_world();
    let secret = "hunter2-not-a-key";
    let run = typed(&w, "keyed", &[&format!("key={secret}")]);
    refused(&run, "key", "pattern", "secret");
    assert!(!run.all_output().contains(secret), "{}", run.all_output());
    assert_eq!(made(&w), Vec::<String>::new());
}

#[test]
fn a_value_beginning_a_command_word_must_not_start_with_a_dash_unless_declared() {
    let w = typed_world();
    for v in ["-", "--help", "-n", "--reference=/etc/passwd"] {
        for action in ["word", "script_word"] {
            let what = format!("{action} {v:?}");
            refused(
                &typed(&w, action, &[&format!("w={v}")]),
                "w",
                "leading_dash",
                &what,
            );
            assert_eq!(made(&w), Vec::<String>::new(), "{what}: the action ran");
        }
    }
    // Inside a word a dash is harmless; a declared parameter may begin a word with one.
    let run = typed(&w, "inside", &["w=-x"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(made(&w), vec!["made-x"]);
    let run = typed(&w, "opt", &["opt=-n"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.json(), json!("-n"));
}

// ---------------------------------------------------------------------------------------------
// The libvirt URI: `qemu+ext://...?command=PROG` makes virsh run PROG.

/// A program that leaves `canary` behind when anything runs it.
fn canary_program(dir: &Path, canary: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let prog = dir.join("prog");
    std::fs::write(&prog, format!("#!/bin/sh\ntouch '{}'\n", canary.display())).unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    prog
}

#[test]
fn a_libvirt_uri_that_would_run_a_program_is_refused_before_anything_runs_in_every_front_end() {
    let w = World::new();
    let canary = w.dir.path().join("CANARY");
    let prog = canary_program(w.dir.path(), &canary);
    let uri = format!("qemu+ext:///system?command={}", prog.display());
    let p = format!("libvirt_uri={uri}");
    let check = |run: &Run, what: &str| {
        refused(run, "libvirt_uri", "pattern", what);
        assert!(!canary.exists(), "{what}: virsh ran the program");
    };
    let run_args = ["--json", "run", "libvirt", "get_worker", "-p", &p, "-p"];
    check(&w.cpi(&[&run_args[..], &["worker_id=web"]].concat()), "run");
    check(
        &w.cpi(&[&run_args[..], &["worker_id=web", "--dry-run"]].concat()),
        "dry-run",
    );
    check(
        &w.cpi(&[
            "--json", "wait", "libvirt", "web", "--for", "running", "-p", &p,
        ]),
        "wait",
    );
    let init = w.cpi(&["--json", "init", "libvirt", "-p", &p]);
    assert_ne!(init.code, 0, "init: {}", init.stdout);
    let report = init.json();
    let step = report["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["action"] == "test_auth"))
        .unwrap_or_else(|| panic!("init: no test_auth step: {report}"));
    assert_eq!(step["outcome"], "failed", "init: {report}");
    let err = &step["error"]["error"];
    assert_eq!(err["code"], "ValidationError", "init: {report}");
    assert_eq!(err["details"]["parameter"], "libvirt_uri", "init: {report}");
    assert!(!canary.exists(), "init: virsh ran the program");
    let batch = w.dir.path().join("batch.jsonl");
    std::fs::write(
        &batch,
        format!("{}\n", json!({"worker_id": "web", "libvirt_uri": uri})),
    )
    .unwrap();
    let run = w.cpi(&[
        "--json",
        "run",
        "libvirt",
        "get_worker",
        "--batch",
        batch.to_str().unwrap(),
        // The batch is the user's own: let it set the URI, so the declaration is what refuses.
        "--allow-override",
    ]);
    let line: Value = serde_json::from_str(run.stdout.lines().next().unwrap_or("")).unwrap();
    assert_eq!(line["ok"], false, "batch: {line}");
    assert_eq!(line["error"]["code"], "ValidationError", "batch: {line}");
    assert_eq!(line["error"]["details"]["parameter"], "libvirt_uri");
    assert!(!canary.exists(), "batch: virsh ran the program");
    // The operator lets requests set the URI, so the declaration is what refuses it.
    crate::serve::write_config(
        &w,
        "[serve.allow]\nlibvirt = [\"worker_id\", \"libvirt_uri\"]\n",
    );
    let served = Served::start(&w, &[]);
    let (status, answer) = served.run(&json!({"provider": "libvirt", "action": "get_worker",
        "params": {"worker_id": "web", "libvirt_uri": uri}}));
    assert_eq!(status, 400, "serve: {answer}");
    assert_eq!(answer["error"]["details"]["parameter"], "libvirt_uri");
    assert!(!canary.exists(), "serve: virsh ran the program");

    // Other options that make virsh run or reach a program are refused too.
    for bad in [
        "qemu+ssh://host/system?netcat=/tmp/prog",
        "qemu+ssh://host/system?command=/tmp/prog",
        "qemu+unix:///system?socket=/tmp/sock",
        "qemu+ext://host/system",
        "-c/tmp/prog",
    ] {
        let p = format!("libvirt_uri={bad}");
        let run = w.cpi(&["--json", "run", "libvirt", "list_workers", "-p", &p]);
        refused(&run, "libvirt_uri", "pattern", bad);
    }
    // The usual URIs are accepted (shown by a dry run, which runs nothing).
    for good in [
        "qemu:///system",
        "qemu:///session",
        "qemu+ssh://admin@host.example/system",
        "qemu+tls://10.0.0.5:16514/system",
        "test:///default",
    ] {
        let p = format!("libvirt_uri={good}");
        let run = w.cpi(&[
            "--json",
            "run",
            "libvirt",
            "list_workers",
            "--dry-run",
            "-p",
            &p,
        ]);
        assert_eq!(run.code, 0, "{good}: {}{}", run.stdout, run.stderr);
    }
}

// ---------------------------------------------------------------------------------------------
// Values inside a CLI's own list syntax.

/// Values that would add an item, a key or a nested structure inside a CLI's list syntax.
const STRUCTURE: [&str; 9] = [
    "a,b",
    "a=b",
    "a{b",
    "a}b",
    "a[b",
    "a]b",
    "a\"b",
    "x,backing_format=raw",
    "evil},{Key=Owner,Value=attacker",
];

/// Fake CLIs on the world's PATH that leave `ran-PROGRAM` behind if cpi ever starts them.
fn fake_clis(w: &World, programs: &[&str]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let marks = w.dir.path().join("ran");
    std::fs::create_dir_all(&marks).unwrap();
    let bin = w.dir.path().join("bin");
    for program in programs {
        let path = bin.join(program);
        let mark = marks.join(program);
        std::fs::write(&path, format!("#!/bin/sh\ntouch '{}'\n", mark.display())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    marks
}

/// One spot where a value lands inside a CLI's or API's list syntax: provider, action, the
/// parameter, and valid values for the others.
struct Spot {
    provider: &'static str,
    action: &'static str,
    param: &'static str,
    others: &'static [&'static str],
}

const SPOTS: &[Spot] = &[
    // virt-install --disk size=..,backing_store={image},backing_format={image_format},...
    Spot {
        provider: "libvirt",
        action: "create_worker",
        param: "image",
        others: &["name=web"],
    },
    Spot {
        provider: "libvirt",
        action: "create_worker",
        param: "image_format",
        others: &["name=web", "image=/var/lib/libvirt/images/base.qcow2"],
    },
    // virt-install --network network={network}
    Spot {
        provider: "libvirt",
        action: "create_worker",
        param: "network",
        others: &["name=web", "image=/var/lib/libvirt/images/base.qcow2"],
    },
    // virsh undefine --storage {boot_disk} (a comma-separated list of volumes)
    Spot {
        provider: "libvirt",
        action: "delete_worker",
        param: "boot_disk",
        others: &["worker_id=web"],
    },
    // docker commit "--change=LABEL cpi.snapshot.of={worker_id}"
    Spot {
        provider: "docker",
        action: "create_snapshot",
        param: "worker_id",
        others: &["name=web-snap:1"],
    },
    // docker image ls --filter label=cpi.snapshot.of={worker_id}
    Spot {
        provider: "docker",
        action: "list_snapshots",
        param: "worker_id",
        others: &[],
    },
    // gcloud ... --filter=region:{region}
    Spot {
        provider: "gce",
        action: "list_zones",
        param: "region",
        others: &["project=my-project-1"],
    },
    // gcloud ... --zones={zone} (a list)
    Spot {
        provider: "gce",
        action: "list_workers",
        param: "zone",
        others: &["project=my-project-1"],
    },
    // gcloud firewall-rules create --allow={allow} --source-ranges={source_ranges}
    Spot {
        provider: "gce",
        action: "create_firewall_rule",
        param: "allow",
        others: &[
            "project=my-project-1",
            "name=fw",
            "source_ranges=10.0.0.0/8",
        ],
    },
    Spot {
        provider: "gce",
        action: "create_firewall_rule",
        param: "source_ranges",
        others: &["project=my-project-1", "name=fw", "allow=tcp:22"],
    },
    // Proxmox property strings: net0=virtio,bridge={network}, ide2={image},media=cdrom,
    // scsi0={storage}:{size_gb}, {device}={disk_id}
    Spot {
        provider: "proxmox",
        action: "create_worker",
        param: "network",
        others: &["worker_id=100", "name=web", "image=local:iso/d.iso"],
    },
    Spot {
        provider: "proxmox",
        action: "create_worker",
        param: "image",
        others: &["worker_id=100", "name=web"],
    },
    Spot {
        provider: "proxmox",
        action: "create_worker",
        param: "storage",
        others: &["worker_id=100", "name=web", "image=local:iso/d.iso"],
    },
    Spot {
        provider: "proxmox",
        action: "attach_disk",
        param: "disk_id",
        others: &["worker_id=100", "device=scsi1"],
    },
    Spot {
        provider: "proxmox",
        action: "attach_disk",
        param: "device",
        others: &["worker_id=100", "disk_id=local-lvm:vm-100-disk-1"],
    },
];

#[test]
fn values_that_would_add_structure_inside_a_cli_list_syntax_are_refused_before_anything_runs() {
    let w = World::new();
    let marks = fake_clis(&w, &["virt-install", "virsh", "docker", "gcloud"]);
    // Proxmox is HTTP: a listener that must never see a connection.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let api_url = format!(
        "api_url=http://{}/api2/json",
        listener.local_addr().unwrap()
    );
    let http = [
        api_url.as_str(),
        "auth_id=root@pam!cpi",
        "api_token_secret=00000000-0000-0000-0000-000000000000",
    ];
    for spot in SPOTS {
        let mut base: Vec<&str> = spot.others.to_vec();
        if spot.provider == "proxmox" {
            base.extend(http);
        }
        for v in STRUCTURE {
            let what = format!("{}/{} {}={v:?}", spot.provider, spot.action, spot.param);
            let p = format!("{}={v}", spot.param);
            let mut args = vec!["--json", "run", spot.provider, spot.action, "-p", &p];
            for b in &base {
                args.extend(["-p", b]);
            }
            let run = w.cpi(&args);
            let err = refused(&run, spot.param, rule_for(spot.param), &what);
            assert!(
                err["message"].as_str().unwrap().contains(spot.param),
                "{what}: {err}"
            );
            let ran: Vec<_> = std::fs::read_dir(&marks).unwrap().collect();
            assert!(ran.is_empty(), "{what}: a CLI ran");
            assert!(
                listener.accept().is_err(),
                "{what}: a request reached the API"
            );
        }
        // The same spot with its documented kind of value is accepted (a dry run).
        let p = format!("{}={}", spot.param, valid_value(spot.provider, spot.param));
        let mut args = vec![
            "--json",
            "run",
            spot.provider,
            spot.action,
            "--dry-run",
            "-p",
            &p,
        ];
        for b in &base {
            args.extend(["-p", b]);
        }
        let run = w.cpi(&args);
        assert_eq!(
            run.code, 0,
            "{}/{} with a valid {}: {}{}",
            spot.provider, spot.action, spot.param, run.stdout, run.stderr
        );
    }
}

/// The rule a structured value breaks: an enum for enums, a pattern for the rest.
fn rule_for(param: &str) -> &'static str {
    if param == "image_format" {
        "enum"
    } else {
        "pattern"
    }
}

fn valid_value(provider: &str, param: &str) -> &'static str {
    match param {
        "image" if provider == "proxmox" => "local:iso/debian-12.iso",
        "network" if provider == "proxmox" => "vmbr0",
        "image" => "/var/lib/libvirt/images/base.qcow2",
        "image_format" => "raw",
        "network" => "default",
        "boot_disk" => "vda",
        "worker_id" => "web-1",
        "region" => "us-central1",
        "zone" => "us-central1-a",
        "allow" => "tcp:22,udp:53",
        "source_ranges" => "10.0.0.0/8,192.168.0.0/16",
        "storage" => "local-lvm",
        "disk_id" => "local-lvm:vm-100-disk-1",
        "device" => "scsi1",
        other => panic!("no valid value for {other}"),
    }
}
