//! Stored trust (grant files, the compile cache, the `serve` token) is believed only from the
//! user's own files: owned by the user, not writable by group or others, not symlinks. A place
//! that fails is refused or left unused, never `chmod`-ed private and then believed.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{self, World};

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The grants directory of the world's user, created private.
fn grants_dir(w: &World) -> PathBuf {
    let dir = w.dir.path().join("config/cpi/grants");
    std::fs::create_dir_all(&dir).unwrap();
    chmod(&dir, 0o700);
    dir
}

fn grant(provider: &str, env: &[&str]) -> String {
    serde_json::json!({
        "provider": provider,
        "component_sha256": "0".repeat(64),
        "commands": [], "http": [], "env": env,
    })
    .to_string()
}

#[test]
fn a_hand_added_ld_preload_in_a_grant_file_is_refused_when_read() {
    let w = World::new();
    let dir = grants_dir(&w);
    let file = dir.join("sneaky.json");
    std::fs::write(&file, grant("sneaky", &["CLOUDCO_API_KEY", "LD_PRELOAD"])).unwrap();
    chmod(&file, 0o600);
    let err = w.cpi(&["grants", "--json"]).err("CapabilityDeniedError");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("LD_PRELOAD") && message.contains("sneaky.json"),
        "{message}"
    );
}

#[test]
fn grant_files_others_could_write_or_that_are_symlinks_are_not_believed() {
    let w = World::new();
    let dir = grants_dir(&w);
    let file = dir.join("cloudco-wasm.json");
    std::fs::write(&file, grant("cloudco-wasm", &[])).unwrap();
    chmod(&file, 0o600);
    w.cpi(&["grants", "--json"]).ok();

    chmod(&file, 0o666);
    let err = w.cpi(&["grants", "--json"]).err("CapabilityDeniedError");
    assert!(
        err["message"].as_str().unwrap().contains("mode 0666"),
        "{err}"
    );
    assert_eq!(
        mode(&file),
        0o666,
        "the file was repaired instead of refused"
    );

    chmod(&file, 0o600);
    let elsewhere = w.dir.path().join("elsewhere.json");
    std::fs::rename(&file, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &file).unwrap();
    let err = w.cpi(&["grants", "--json"]).err("CapabilityDeniedError");
    assert!(
        err["message"].as_str().unwrap().contains("symlink"),
        "{err}"
    );
    std::fs::remove_file(&file).unwrap();

    std::fs::rename(&elsewhere, &file).unwrap();
    chmod(&dir, 0o777);
    let err = w.cpi(&["grants", "--json"]).err("CapabilityDeniedError");
    assert!(
        err["message"].as_str().unwrap().contains("mode 0777"),
        "{err}"
    );
    assert_eq!(mode(&dir), 0o777);
}

#[test]
fn a_compile_cache_directory_others_can_write_is_left_alone_and_unused() {
    let w = World::new();
    let providers = w.dir.path().join("components");
    std::fs::create_dir(&providers).unwrap();
    std::fs::write(
        providers.join("trapper.wasm"),
        crate::wasm::dummy_component("0.1.0"),
    )
    .unwrap();
    let cache_home = w.dir.path().join("cache");
    let cache = cache_home.join("cpi/components");
    std::fs::create_dir_all(&cache).unwrap();
    chmod(&cache, 0o777);
    let run = support::run(
        w.command()
            .env("XDG_CACHE_HOME", &cache_home)
            .arg("--provider-dir")
            .arg(&providers)
            .args(["run", "trapper", "get_worker", "--json"]),
    );
    run.err("ProviderError");
    assert_eq!(
        mode(&cache),
        0o777,
        "the cache directory was chmod-ed mid-run"
    );
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        0,
        "written to a shared cache"
    );
    assert!(
        run.stderr.contains("not using the component compile cache"),
        "{}",
        run.stderr
    );

    // A private cache directory is used as before.
    chmod(&cache, 0o700);
    let run = support::run(
        w.command()
            .env("XDG_CACHE_HOME", &cache_home)
            .arg("--provider-dir")
            .arg(&providers)
            .args(["run", "trapper", "get_worker", "--json"]),
    );
    run.err("ProviderError");
    assert!(std::fs::read_dir(&cache).unwrap().count() > 0);
}

#[test]
fn a_serve_token_that_is_a_symlink_or_writable_by_others_is_refused() {
    let w = World::new();
    let real = w.dir.path().join("real.token");
    std::fs::write(&real, "a".repeat(64)).unwrap();
    chmod(&real, 0o600);
    let link = w.dir.path().join("link.token");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let writable = w.dir.path().join("writable.token");
    std::fs::write(&writable, "b".repeat(64)).unwrap();
    chmod(&writable, 0o622);
    for (file, why) in [(&link, "symlink"), (&writable, "mode 0622")] {
        let mut cmd = w.command();
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--token-file"])
            .arg(file)
            .arg("--json");
        let served = support::run_watched(&mut cmd, Duration::from_secs(20), u64::MAX);
        assert!(
            served.killed.is_none(),
            "cpi serve started with {}",
            file.display()
        );
        let err = served.run.err("ValidationError");
        assert!(err["message"].as_str().unwrap().contains(why), "{err}");
    }
}
