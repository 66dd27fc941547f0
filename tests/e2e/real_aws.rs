//! The shipped aws-ec2 provider against the real AWS CLI (PyPI `awscli`) and moto's EC2
//! server on loopback (PyPI `moto[server]`), reached through `AWS_ENDPOINT_URL` with fake
//! credentials. `.ci/run` installs both; without them (and without `CI` set) each test prints
//! `SKIPPED: ...`. Every test starts its own moto server on a free port and stops it.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Run, World, real_cli_available, run};

const HINT: &str = "pip install awscli==1.45.11 'moto[server]==5.2.1'";

/// A moto server on 127.0.0.1, killed when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Moto {
    /// Starts `moto_server` on a free loopback port and waits until it accepts connections.
    fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let mut moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited before listening: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen in 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Both the AWS CLI and moto's server are installed (or the test is skipped outside CI).
fn available() -> bool {
    real_cli_available("aws", HINT) && real_cli_available("moto_server", HINT)
}

/// `cpi ARGS` with the AWS CLI pointed at moto (fake credentials, no config files).
fn cpi(w: &World, moto: &Moto, args: &[String]) -> Run {
    run(w
        .command()
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_CONFIG_FILE", w.dir.path().join("aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            w.dir.path().join("aws-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_PAGER", "")
        .args(args))
}

/// `cpi run aws-ec2 ACTION --json -p k=v ...`.
fn ec2(w: &World, moto: &Moto, action: &str, params: &[(&str, &str)]) -> Run {
    let mut args: Vec<String> = vec![
        "run".into(),
        "aws-ec2".into(),
        action.into(),
        "--json".into(),
    ];
    for (k, v) in params {
        args.push("-p".into());
        args.push(format!("{k}={v}"));
    }
    cpi(w, moto, &args)
}

/// An AMI that moto offers (its default Amazon images).
fn an_image(w: &World, moto: &Moto) -> String {
    let images = ec2(
        w,
        moto,
        "list_images",
        &[("image_owner", "amazon"), ("image_filter", "*")],
    )
    .ok();
    images[0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("moto lists no image: {images}"))
        .to_string()
}

fn create_worker(w: &World, moto: &Moto, image: &str, name: &str) -> Run {
    ec2(
        w,
        moto,
        "create_worker",
        &[
            ("name", name),
            ("image", image),
            ("worker_type", "t3.micro"),
        ],
    )
}

/// The Tags of one instance, straight from the AWS CLI (not through cpi's parse rules).
fn raw_tags(w: &World, moto: &Moto, id: &str) -> Value {
    let out = run(Command::new("aws")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", w.dir.path())
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .args([
            "ec2",
            "describe-instances",
            "--region",
            "us-east-1",
            "--output",
            "json",
            "--instance-ids",
            id,
        ]));
    assert_eq!(out.code, 0, "{}", out.all_output());
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    v["Reservations"][0]["Instances"][0]["Tags"].clone()
}

#[test]
fn real_aws_cli_runs_the_worker_lifecycle_against_moto() {
    if !available() {
        return;
    }
    let (w, moto) = (World::new(), Moto::start());
    let version = ec2(&w, &moto, "test_install", &[]).ok();
    assert!(version["version"].as_str().is_some(), "{version}");
    let me = ec2(&w, &moto, "test_auth", &[]).ok();
    assert_eq!(me["authenticated"], true, "{me}");
    for action in [
        "list_regions",
        "list_zones",
        "list_worker_types",
        "list_networks",
    ] {
        let list = ec2(&w, &moto, action, &[]).ok();
        assert!(
            list.as_array().is_some_and(|l| !l.is_empty()),
            "{action}: {list}"
        );
    }

    let image = an_image(&w, &moto);
    let created = create_worker(&w, &moto, &image, "web-1").ok();
    let id = created["id"].as_str().expect("an instance id").to_string();
    assert!(id.starts_with("i-"), "{created}");
    assert_eq!(created["name"], "web-1", "{created}");
    assert_eq!(created["image"], image.as_str(), "{created}");
    assert_eq!(created["type"], "t3.micro", "{created}");

    let list = ec2(&w, &moto, "list_workers", &[]).ok();
    assert!(
        list.as_array().is_some_and(|l| l
            .iter()
            .any(|r| r["id"] == id.as_str() && r["name"] == "web-1")),
        "{list}"
    );
    let got = ec2(&w, &moto, "get_worker", &[("worker_id", &id)]).ok();
    assert_eq!(got["status"], "running", "{got}");
    assert_eq!(got["name"], "web-1", "{got}");

    let stopped = ec2(&w, &moto, "stop_worker", &[("worker_id", &id)]).ok();
    assert_eq!(stopped["id"], id.as_str(), "{stopped}");
    assert_eq!(stopped["previous_state"], "running", "{stopped}");
    let resized = ec2(
        &w,
        &moto,
        "resize_worker",
        &[("worker_id", &id), ("worker_type", "t3.small")],
    );
    resized.ok();
    let renamed = ec2(
        &w,
        &moto,
        "rename_worker",
        &[("worker_id", &id), ("name", "web-2")],
    );
    renamed.ok();
    let got = ec2(&w, &moto, "get_worker", &[("worker_id", &id)]).ok();
    assert_eq!(got["status"], "stopped", "{got}");
    assert_eq!(got["type"], "t3.small", "{got}");
    assert_eq!(got["name"], "web-2", "{got}");

    let started = ec2(&w, &moto, "start_worker", &[("worker_id", &id)]).ok();
    assert_eq!(started["previous_state"], "stopped", "{started}");
    ec2(&w, &moto, "reboot_worker", &[("worker_id", &id)]).ok();
    let gone = ec2(&w, &moto, "delete_worker", &[("worker_id", &id)]).ok();
    assert_eq!(gone["id"], id.as_str(), "{gone}");
    assert_eq!(gone["raw_status"], "shutting-down", "{gone}");
}

#[test]
fn real_aws_cli_manages_disks_and_snapshots_against_moto() {
    if !available() {
        return;
    }
    let (w, moto) = (World::new(), Moto::start());
    let image = an_image(&w, &moto);
    let worker = create_worker(&w, &moto, &image, "db-1").ok();
    let worker_id = worker["id"].as_str().expect("id").to_string();
    let zone = worker["zone"].as_str().expect("zone").to_string();

    let disk = ec2(
        &w,
        &moto,
        "create_disk",
        &[("name", "data, 1"), ("size_gb", "10"), ("zone", &zone)],
    )
    .ok();
    let disk_id = disk["id"].as_str().expect("a volume id").to_string();
    assert_eq!(disk["size_gb"], 10, "{disk}");
    assert_eq!(disk["name"], "data, 1", "{disk}");
    let disks = ec2(&w, &moto, "list_disks", &[]).ok();
    assert!(
        disks
            .as_array()
            .is_some_and(|l| l.iter().any(|d| d["id"] == disk_id.as_str())),
        "{disks}"
    );
    let attached = ec2(
        &w,
        &moto,
        "attach_disk",
        &[("worker_id", &worker_id), ("disk_id", &disk_id)],
    )
    .ok();
    assert_eq!(attached["device"], "/dev/sdf", "{attached}");
    assert_eq!(attached["worker_id"], worker_id.as_str(), "{attached}");

    let snaps = ec2(
        &w,
        &moto,
        "create_snapshot",
        &[("worker_id", &worker_id), ("name", "before \"upgrade\"")],
    )
    .ok();
    let snap = snaps
        .as_array()
        .and_then(|l| l.iter().find(|s| s["disk_id"] == disk_id.as_str()))
        .unwrap_or_else(|| panic!("no snapshot of {disk_id}: {snaps}"))
        .clone();
    assert_eq!(snap["description"], "before \"upgrade\"", "{snap}");
    let snap_id = snap["id"].as_str().expect("snapshot id").to_string();
    let listed = ec2(&w, &moto, "list_snapshots", &[]).ok();
    assert!(
        listed
            .as_array()
            .is_some_and(|l| l.iter().any(|s| s["id"] == snap_id.as_str())),
        "{listed}"
    );
    ec2(&w, &moto, "delete_snapshot", &[("snapshot_id", &snap_id)]).ok();

    let detached = ec2(
        &w,
        &moto,
        "detach_disk",
        &[("worker_id", &worker_id), ("disk_id", &disk_id)],
    )
    .ok();
    assert_eq!(detached["disk_id"], disk_id.as_str(), "{detached}");
    let resized = ec2(
        &w,
        &moto,
        "resize_disk",
        &[("disk_id", &disk_id), ("size_gb", "20")],
    )
    .ok();
    assert_eq!(resized["size_gb"], 20, "{resized}");
    ec2(&w, &moto, "delete_disk", &[("disk_id", &disk_id)]).ok();

    let vpc = ec2(
        &w,
        &moto,
        "create_network",
        &[("name", "net=a,b"), ("cidr", "10.9.0.0/16")],
    )
    .ok();
    let vpc_id = vpc["id"].as_str().expect("vpc id").to_string();
    assert_eq!(vpc["name"], "net=a,b", "{vpc}");
    let subnet = ec2(
        &w,
        &moto,
        "create_subnet",
        &[
            ("name", "sub 1"),
            ("network", &vpc_id),
            ("cidr", "10.9.1.0/24"),
            ("zone", &zone),
        ],
    )
    .ok();
    let subnet_id = subnet["id"].as_str().expect("subnet id").to_string();
    let subnets = ec2(&w, &moto, "list_subnets", &[("network", &vpc_id)]).ok();
    assert_eq!(subnets.as_array().map(Vec::len), Some(1), "{subnets}");
    ec2(&w, &moto, "delete_subnet", &[("subnet", &subnet_id)]).ok();
    ec2(&w, &moto, "delete_network", &[("network", &vpc_id)]).ok();
}

#[test]
fn real_aws_cli_missing_ids_are_resource_not_found() {
    if !available() {
        return;
    }
    let (w, moto) = (World::new(), Moto::start());
    for (action, param, id) in [
        ("get_worker", "worker_id", "i-0123456789abcdef0"),
        ("stop_worker", "worker_id", "i-0123456789abcdef0"),
        ("delete_disk", "disk_id", "vol-0123456789abcdef0"),
        ("delete_snapshot", "snapshot_id", "snap-0123456789abcdef0"),
    ] {
        let run = ec2(&w, &moto, action, &[(param, id)]);
        assert_eq!(run.code, 12, "{action}: {}", run.all_output());
        run.err("ResourceNotFoundError");
    }
}

#[test]
fn real_aws_cli_values_never_add_structure_to_the_cli_syntax() {
    if !available() {
        return;
    }
    let (w, moto) = (World::new(), Moto::start());
    let image = an_image(&w, &moto);
    // Issue 13: with shorthand, the first made two tags and `a,b` failed to parse.
    for name in [
        "evil},{Key=Owner,Value=attacker",
        "a,b",
        "k=v",
        "[x] {y}",
        "q\"uote\\",
        r#"x"}]}],"MinCount":5,"Z":[{"a":"b"#,
        "file:///etc/hostname",
        "-n",
    ] {
        let created = create_worker(&w, &moto, &image, name).ok();
        let id = created["id"].as_str().expect("id").to_string();
        assert_eq!(created["name"], name, "{created}");
        assert_eq!(
            raw_tags(&w, &moto, &id),
            serde_json::json!([{"Key": "Name", "Value": name}]),
            "{name:?}"
        );
    }
    let list = ec2(&w, &moto, "list_workers", &[]).ok();
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(8),
        "one instance per name: {list}"
    );
}

#[test]
fn real_aws_cli_never_reads_a_file_or_url_named_by_a_value() {
    if !available() {
        return;
    }
    let (w, moto) = (World::new(), Moto::start());
    // A canary id in a file: if the CLI read the file (its paramfile feature), the error
    // would name the file's content instead of the value.
    let canary = w.dir.path().join("canary-id");
    std::fs::write(&canary, "i-0cafe0cafe0cafe00").expect("canary");
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}/id", listener.local_addr().expect("addr"));
    for value in [
        format!("file://{}", canary.display()),
        format!("fileb://{}", canary.display()),
        url.clone(),
    ] {
        let run = ec2(&w, &moto, "get_worker", &[("worker_id", &value)]);
        assert_ne!(run.code, 0, "{value}: {}", run.stdout);
        let out = run.all_output();
        assert!(!out.contains("0cafe0cafe"), "the CLI read {value}: {out}");
        let code = run.json()["error"]["code"].clone();
        assert!(
            code == "ResourceNotFoundError" || code == "ValidationError",
            "{value}: {out}"
        );
    }
    assert!(
        listener.accept().is_err(),
        "the CLI fetched the URL {url} named by a value"
    );
}
