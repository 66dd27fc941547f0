//! `cpi install` / `update` / `uninstall` and the lock file: from a local file, a loopback
//! HTTP server and a local git repository; a grown provider asks again; a tampered file is
//! refused when installing from the lock.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

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
    let src = w.dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let file = src.join("hello.json");
    std::fs::write(&file, provider("v1", &[("list_workers", "echo one")])).unwrap();
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
    std::fs::write(
        &file,
        provider(
            "v2",
            &[
                ("list_workers", "echo one"),
                ("test_install", "sh -c 'echo two'"),
            ],
        ),
    )
    .unwrap();
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
    std::fs::write(
        &file,
        provider(
            "v3",
            &[
                ("list_workers", "echo one"),
                ("test_install", "sh -c 'echo two'"),
            ],
        ),
    )
    .unwrap();
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
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .current_dir(&repo)
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
    };
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
    let src = w.dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let file = src.join("hello.json");
    std::fs::write(
        &file,
        provider("locked", &[("list_workers", "echo locked")]),
    )
    .unwrap();
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
