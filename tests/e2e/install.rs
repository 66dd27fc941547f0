//! `cpi install` / `update` / `uninstall` and the lock file: from a local file, a loopback
//! HTTP server and a local git repository; a grown provider asks again; a tampered file is
//! refused when installing from the lock.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::World;

fn provider(description: &str, commands: &[(&str, &str)]) -> String {
    let actions: serde_json::Map<String, serde_json::Value> = commands
        .iter()
        .map(|(action, cmd)| {
            (
                action.to_string(),
                serde_json::json!({"target": {"Command": cmd}}),
            )
        })
        .collect();
    serde_json::json!({"name": "hello", "type": "command", "description": description,
                       "actions": actions})
    .to_string()
}

/// `src/hello.json` in the world's directory, written from `provider(description, commands)`.
fn source(w: &World, description: &str, commands: &[(&str, &str)]) -> std::path::PathBuf {
    let src = w.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let file = src.join("hello.json");
    std::fs::write(&file, provider(description, commands)).unwrap();
    file
}

/// The text an action printed (its result is the raw output).
fn printed(run: crate::support::Run) -> String {
    run.ok().as_str().unwrap_or_default().trim().to_string()
}

fn message(run: &crate::support::Run) -> String {
    run.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn install_asks_then_update_asks_again_only_when_the_provider_grows() {
    let w = World::new();
    let file = source(&w, "v1", &[("list_workers", "echo one")]);
    let f = file.display().to_string();

    // No terminal and no --yes: not installed.
    let refused = w.cpi(&["install", &f, "--json"]);
    refused.err("CapabilityDeniedError");
    assert!(!w.dir.path().join("config/cpi/cpi.lock").exists());

    let installed = w.cpi(&["install", &f, "--yes"]);
    installed.ok_text();
    let out = installed.all_output();
    assert!(
        out.contains("Will run:") && out.contains("echo one"),
        "{out}"
    );
    let lock = std::fs::read_to_string(w.dir.path().join("config/cpi/cpi.lock")).unwrap();
    let sha = cpi::request::sha256(&std::fs::read(&file).unwrap());
    assert!(
        lock.contains(&sha) && lock.contains("name = \"hello\""),
        "{lock}"
    );
    assert_eq!(
        printed(w.cpi(&["run", "hello", "list_workers", "--json"])),
        "one"
    );

    // A new program: shown as growth, refused without approval; the old version still runs.
    source(
        &w,
        "v2",
        &[
            ("list_workers", "echo one"),
            ("test_install", "sh -c 'echo two'"),
        ],
    );
    let asked = w.cpi(&["update", "hello", "--json"]);
    assert_ne!(asked.code, 0, "{}", asked.all_output());
    assert!(
        asked.all_output().contains("+ run  sh -c 'echo two'"),
        "{}",
        asked.all_output()
    );
    assert_eq!(
        printed(w.cpi(&["run", "hello", "list_workers", "--json"])),
        "one"
    );
    w.cpi(&["update", "hello", "--yes"]).ok_text();
    assert_eq!(
        printed(w.cpi(&["run", "hello", "test_install", "--json"])),
        "two"
    );

    // Nothing new asked for: the approval moves without a question.
    source(
        &w,
        "v3",
        &[
            ("list_workers", "echo one"),
            ("test_install", "sh -c 'echo two'"),
        ],
    );
    let moved = w.cpi(&["update", "hello"]);
    moved.ok_text();
    assert!(
        moved.all_output().contains("did not grow"),
        "{}",
        moved.all_output()
    );
    w.cpi(&["run", "hello", "list_workers", "--json"]).ok();

    w.cpi(&["uninstall", "hello"]).ok_text();
    let gone = w.cpi(&["run", "hello", "list_workers", "--json"]);
    assert!(
        message(&gone).contains("no provider named 'hello'"),
        "{}",
        gone.stdout
    );
}

/// Serves `body` for every request on a loopback port, in a thread.
fn serve_once_per_request(body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    format!("http://{addr}/providers/hello.json")
}

/// Runs `git ARGS` in `repo` (as a committer named t), asserting it succeeds; its stdout.
fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(repo)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn install_from_a_loopback_url_and_from_a_git_revision() {
    let w = World::new();
    let url = serve_once_per_request(provider("web", &[("list_workers", "echo web")]));
    let plain = w.cpi(&["install", &url, "--yes", "--json"]);
    assert!(message(&plain).contains("https only"), "{}", plain.stdout);
    w.cpi(&["install", &url, "--yes", "--allow-http-loopback"])
        .ok_text();
    assert_eq!(
        printed(w.cpi(&["run", "hello", "list_workers", "--json"])),
        "web"
    );
    w.cpi(&["uninstall", "hello"]).ok_text();

    let repo = w.dir.path().join("repo");
    std::fs::create_dir_all(repo.join("p")).unwrap();
    let git = |args: &[&str]| git(&repo, args);
    git(&["init", "-q"]);
    std::fs::write(
        repo.join("p/hello.json"),
        provider("v1", &[("list_workers", "echo v1")]),
    )
    .unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "v1"]);
    git(&["tag", "v1"]);
    let v1 = git(&["rev-parse", "HEAD"]);
    std::fs::write(
        repo.join("p/hello.json"),
        provider("v2", &[("list_workers", "echo v2")]),
    )
    .unwrap();
    git(&["commit", "-q", "-am", "v2"]);
    let source = format!("git+file://{}@v1#p", repo.display());
    w.cpi(&["install", &source, "--yes"]).ok_text();
    assert_eq!(
        printed(w.cpi(&["run", "hello", "list_workers", "--json"])),
        "v1"
    );
    let lock = std::fs::read_to_string(w.dir.path().join("config/cpi/cpi.lock")).unwrap();
    assert!(lock.contains(&format!("revision = \"{v1}\"")), "{lock}");
}

#[test]
fn installing_from_a_lock_file_refuses_a_tampered_file() {
    let w = World::new();
    let file = source(&w, "locked", &[("list_workers", "echo locked")]);
    w.cpi(&["install", &file.display().to_string(), "--yes"])
        .ok_text();
    let team = w.dir.path().join("team.lock");
    std::fs::copy(w.dir.path().join("config/cpi/cpi.lock"), &team).unwrap();

    // Another machine (a fresh home) reproduces it exactly from the lock.
    let other = World::new();
    let t = team.display().to_string();
    other
        .cpi(&["install", "--locked", "--lock", &t, "--yes"])
        .ok_text();
    assert_eq!(
        printed(other.cpi(&["run", "hello", "list_workers", "--json"])),
        "locked"
    );

    // One changed byte in the source: refused, naming the file and both digests.
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("locked", "lockex");
    std::fs::write(&file, text).unwrap();
    let third = World::new();
    let refused = third.cpi(&["install", "--locked", "--lock", &t, "--yes", "--json"]);
    refused.err("ValidationError");
    let msg = message(&refused);
    assert!(
        msg.contains("hello.json") && msg.contains("the lock records"),
        "{msg}"
    );
    assert!(msg.contains("cpi update hello"), "{msg}");
    assert!(!Path::new(&third.dir.path().join("config/cpi/cpi.lock")).exists());
}

/// The capability digest a refusal names ("it asks for capabilities sha256:<hex>").
fn asked_digest(run: &crate::support::Run) -> String {
    let msg = message(run);
    let at = msg
        .find("capabilities sha256:")
        .unwrap_or_else(|| panic!("no digest in: {msg}"));
    msg[at + "capabilities ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches([',', '.'])
        .to_string()
}

#[test]
fn approve_with_a_digest_approves_that_exact_capability_set_and_refuses_growth() {
    let w = World::new();
    let file = source(&w, "v1", &[("list_workers", "echo one")]);
    let f = file.display().to_string();

    // A wrong digest: refused, and the refusal names the digest it asks for.
    let zero = format!("sha256:{}", "0".repeat(64));
    let refused = w.cpi(&["install", &f, "--approve", &zero, "--json"]);
    refused.err("CapabilityDeniedError");
    assert!(!w.dir.path().join("config/cpi/cpi.lock").exists());
    let v1 = asked_digest(&refused);
    assert!(message(&refused).contains(&zero), "{}", message(&refused));

    // The review shows the same digest; approving it installs.
    let installed = w.cpi(&["install", &f, "--approve", &v1]);
    installed.ok_text();
    assert!(
        installed
            .all_output()
            .contains(&format!("capabilities  {v1}")),
        "{}",
        installed.all_output()
    );
    assert_eq!(
        printed(w.cpi(&["run", "hello", "list_workers", "--json"])),
        "one"
    );

    // Growth: the old digest no longer approves it, the new one does.
    source(
        &w,
        "v2",
        &[("list_workers", "echo one"), ("test_install", "echo two")],
    );
    let grown = w.cpi(&["update", "hello", "--approve", &v1, "--json"]);
    grown.err("CapabilityDeniedError");
    let v2 = asked_digest(&grown);
    assert_ne!(v1, v2);
    w.cpi(&["update", "hello", "--approve", &v2]).ok_text();
    assert_eq!(
        printed(w.cpi(&["run", "hello", "test_install", "--json"])),
        "two"
    );

    // `cpi grant` takes it too, for a provider directory; --yes and --approve exclude each other.
    let dir = w.dir.path().join("own");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("mine.json"),
        provider("mine", &[("list_workers", "echo mine")]).replace("\"hello\"", "\"mine\""),
    )
    .unwrap();
    let d = dir.display().to_string();
    let denied = w.cpi(&[
        "--provider-dir",
        &d,
        "grant",
        "mine",
        "--approve",
        &zero,
        "--json",
    ]);
    denied.err("CapabilityDeniedError");
    let mine = asked_digest(&denied);
    w.cpi(&["--provider-dir", &d, "grant", "mine", "--approve", &mine])
        .ok_text();
    assert_eq!(
        printed(w.cpi(&[
            "--provider-dir",
            &d,
            "run",
            "mine",
            "list_workers",
            "--json"
        ])),
        "mine"
    );
    let both = w.cpi(&["grant", "mine", "--yes", "--approve", &mine]);
    assert_ne!(both.code, 0);
}

#[test]
fn a_lock_file_or_store_someone_else_could_write_is_not_believed() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    let file = source(&w, "v1", &[("list_workers", "echo one")]);
    w.cpi(&["install", &file.display().to_string(), "--yes"])
        .ok_text();
    let lock = w.dir.path().join("config/cpi/cpi.lock");
    let store = w.dir.path().join("data/cpi/store");
    let entry = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .unwrap();

    // A group-writable lock file: every command that looks providers up says so.
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o664)).unwrap();
    let run = w.cpi(&["run", "hello", "list_workers", "--json"]);
    run.err("CapabilityDeniedError");
    let msg = message(&run);
    assert!(
        msg.contains("cpi.lock") && msg.contains("group or others can write it"),
        "{msg}"
    );
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o600)).unwrap();
    w.cpi(&["run", "hello", "list_workers", "--json"]).ok();

    // A lock file that is a symlink: refused.
    let real = w.dir.path().join("elsewhere.lock");
    std::fs::rename(&lock, &real).unwrap();
    std::os::unix::fs::symlink(&real, &lock).unwrap();
    let linked = w.cpi(&["providers", "--json"]);
    linked.err("CapabilityDeniedError");
    assert!(message(&linked).contains("symlink"), "{}", message(&linked));
    std::fs::remove_file(&lock).unwrap();
    std::fs::rename(&real, &lock).unwrap();

    // A world-writable store entry: refused, never chmod-ed and believed; nothing ran.
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o777)).unwrap();
    let open = w.cpi(&["run", "hello", "list_workers", "--json"]);
    open.err("CapabilityDeniedError");
    let msg = message(&open);
    assert!(
        msg.contains("provider store") && msg.contains("mode 0777"),
        "{msg}"
    );
    let mode = std::fs::metadata(&entry).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o777, "cpi must not repair the store's mode");

    // An entry replaced by a symlink to a directory another install could control: refused.
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o700)).unwrap();
    let moved = w.dir.path().join("moved-entry");
    std::fs::rename(&entry, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &entry).unwrap();
    let swapped = w.cpi(&["run", "hello", "list_workers", "--json"]);
    swapped.err("CapabilityDeniedError");
    assert!(
        message(&swapped).contains("symlink"),
        "{}",
        message(&swapped)
    );
}

/// Resident memory `cpi install` may reach while refusing a git source (cpi itself needs a
/// few tens of MiB, the refused component alone 64 MiB): above it the process is killed.
const INSTALL_MAX_KIB: u64 = 56 * 1024;

/// `cpi install ARGS... --yes --json`, killed (and failing) past 20 s or `INSTALL_MAX_KIB`.
fn watched_install(w: &World, args: &[&str]) -> crate::support::Measured {
    let mut cmd = w.command();
    cmd.arg("install").args(args).args(["--yes", "--json"]);
    let measured = crate::support::run_watched(&mut cmd, Duration::from_secs(20), INSTALL_MAX_KIB);
    assert!(
        measured.killed.is_none(),
        "cpi install {args:?} was killed: {:?} (peak {} KiB)\n{}",
        measured.killed,
        measured.peak_kib,
        measured.run.all_output()
    );
    measured
}

#[test]
fn a_git_source_whose_component_is_over_the_cap_is_refused_without_reading_it() {
    const MAX_COMPONENT: u64 = 64 << 20;
    let w = World::new();
    let repo = w.dir.path().join("big");
    std::fs::create_dir_all(repo.join("p")).unwrap();
    let json = serde_json::json!({"name": "big", "type": "command", "component": "p.wasm",
        "actions": {"list_workers": {"target": {"Command": "true"}}}});
    std::fs::write(repo.join("p/big.json"), json.to_string()).unwrap();
    // One byte over the cap, all zeros: git stores it in about 64 KiB.
    std::fs::File::create(repo.join("p/p.wasm"))
        .unwrap()
        .set_len(MAX_COMPONENT + 1)
        .unwrap();
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "big"]);

    let source = format!("git+{}#p", repo.display());
    let refused = watched_install(&w, &[&source]);
    let err = refused.run.err("ValidationError");
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains("p/p.wasm")
            && msg.contains(&(MAX_COMPONENT + 1).to_string())
            && msg.contains(&format!("at most {MAX_COMPONENT}")),
        "{msg}"
    );
    // Refused at the fetch: nothing stored, nothing locked.
    assert!(!w.dir.path().join("data/cpi/store").exists());
    assert!(!w.dir.path().join("config/cpi/cpi.lock").exists());
}

#[test]
fn a_git_source_that_never_answers_times_out_and_its_git_is_killed() {
    let w = World::new();
    // Accepts connections and never says a word; reports when git's connection closes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (closed_tx, closed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let closed_tx = closed_tx.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
                let _ = closed_tx.send(());
            });
        }
    });
    let source = format!("git+https://127.0.0.1:{port}/repo.git");
    let started = std::time::Instant::now();
    let hung = watched_install(&w, &[&source, "--fetch-timeout", "2s"]);
    let err = hung.run.err("TimeoutError");
    let msg = err["message"].as_str().unwrap();
    assert!(msg.contains("git clone") && msg.contains("2s"), "{msg}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    // The whole process group was killed: nothing of git still holds the connection.
    closed
        .recv_timeout(Duration::from_secs(10))
        .expect("git's connection is closed once cpi gives up");
}
