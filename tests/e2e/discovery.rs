//! Where providers come from: built into cpi, the user's own directories, or a directory the
//! user names; never the working directory. A name declared twice breaks that name only, and
//! names and descriptions that could disguise a provider on a terminal are refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::{Run, SHIPPED_PROVIDERS, cpi_bin, run};

/// A bare user: an empty working directory `work`, an empty home, nothing else.
struct User {
    tmp: tempfile::TempDir,
}

impl User {
    fn new() -> User {
        let user = User {
            tmp: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(user.work()).unwrap();
        user
    }

    fn work(&self) -> PathBuf {
        self.tmp.path().join("work")
    }

    fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    /// The user's own provider directory (`$XDG_CONFIG_HOME/cpi/providers`).
    fn own_providers(&self) -> PathBuf {
        self.home().join("config/cpi/providers")
    }

    fn cpi(&self, args: &[&str]) -> Run {
        run(Command::new(cpi_bin())
            .current_dir(self.work())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.home().join("config"))
            .env("XDG_CACHE_HOME", self.home().join("cache"))
            .env("XDG_DATA_HOME", self.home().join("data"))
            .args(args)
            .stdin(Stdio::null()))
    }

    fn names(&self, extra: &[&str]) -> Vec<String> {
        let listed = self.cpi(&[extra, &["providers", "--json"]].concat());
        listed
            .ok()
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    }
}

fn write(dir: &Path, file: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(file), text).unwrap();
}

/// A provider named `name` whose `list_workers` runs `command`.
fn provider(name: &str, command: &str) -> String {
    serde_json::json!({
        "name": name, "type": "command",
        "actions": {"list_workers": {"target": {"Command": command}}}
    })
    .to_string()
}

#[test]
fn the_shipped_providers_are_built_in_and_work_from_any_directory() {
    let user = User::new();
    let names = user.names(&[]);
    assert_eq!(names, SHIPPED_PROVIDERS.to_vec(), "{names:?}");
    let listed = user.cpi(&["providers", "--json"]).ok();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["source"].as_str().unwrap().starts_with("<built-in>/")),
        "{listed}"
    );
    let planned = user
        .cpi(&["run", "aws-ec2", "list_workers", "--dry-run", "--json"])
        .ok();
    let argv = planned["calls"][0]["argv"].as_array().unwrap();
    assert_eq!(argv[..3], ["aws", "ec2", "describe-instances"], "{planned}");
    // Their fixtures come along: `cpi test` and `cpi docs` need no checkout.
    let tested = user.cpi(&["test", "aws-ec2", "--json"]);
    let cases = tested.ok()["aws-ec2"].as_array().unwrap().len();
    assert!(cases > 10, "{}", tested.stdout);
    // Recording needs a file to write: a built-in provider has no directory beside it.
    let recorded = user.cpi(&["test", "--record", "cloudco", "list_workers", "--json"]);
    let message = recorded.err("ValidationError")["message"].to_string();
    assert!(message.contains("--out FILE"), "{message}");
    assert_eq!(std::fs::read_dir(user.work()).unwrap().count(), 0);
    let docs = user.cpi(&["docs", "cloudco"]);
    assert_eq!(docs.code, 0, "{}", docs.stderr);
    assert!(docs.stdout.starts_with("# cloudco"));
}

#[test]
fn a_providers_directory_in_the_working_directory_is_neither_run_nor_able_to_break_anything() {
    let user = User::new();
    let canary = user.tmp.path().join("CANARY");
    let hostile = user.work().join("providers");
    write(
        &hostile,
        "evil.json",
        &provider("evil", &format!("touch {}", canary.display())),
    );
    write(
        &hostile,
        "cloudco.json",
        &provider("cloudco", &format!("touch {}", canary.display())),
    );
    write(
        &user.own_providers(),
        "mine.json",
        &provider("mine", "true"),
    );
    write(
        &hostile,
        "mine.json",
        &provider("mine", &format!("touch {}", canary.display())),
    );

    let names = user.names(&[]);
    assert!(!names.contains(&"evil".to_string()), "{names:?}");
    assert!(names.contains(&"cloudco".to_string()) && names.contains(&"mine".to_string()));
    let evil = user.cpi(&["run", "evil", "list_workers", "--json"]);
    evil.err("ValidationError");
    user.cpi(&["grant", "mine", "--yes"]).ok();
    user.cpi(&["run", "mine", "list_workers", "--json"]).ok();
    let shown = user.cpi(&["show", "cloudco", "--json"]).ok();
    assert!(
        shown["source"].as_str().unwrap().starts_with("<built-in>/"),
        "{shown}"
    );
    assert!(!canary.exists(), "a file in ./providers ran");

    // Named explicitly, the directory is searched; the name it reuses is refused on its own,
    // naming both files, and everything else keeps working.
    let pd = ["--provider-dir", "providers"];
    let names = user.names(&pd);
    assert!(names.contains(&"evil".to_string()), "{names:?}");
    assert!(!names.contains(&"mine".to_string()) && !names.contains(&"cloudco".to_string()));
    let mine = user.cpi(&[&pd[..], &["run", "mine", "list_workers", "--json"]].concat());
    let err = mine.err("ValidationError");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("declared more than once"), "{message}");
    assert!(message.contains(&user.own_providers().join("mine.json").display().to_string()));
    assert!(message.contains("providers/mine.json"), "{message}");
    let cloudco = user.cpi(&[&pd[..], &["run", "cloudco", "list_workers", "--json"]].concat());
    let message = cloudco.err("ValidationError")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("built-in provider's name"), "{message}");
    user.cpi(
        &[
            &pd[..],
            &["run", "aws-ec2", "list_workers", "--dry-run", "--json"],
        ]
        .concat(),
    )
    .ok();
    assert!(!canary.exists(), "a shadowing provider ran");
}

#[test]
fn provider_dirs_in_the_user_config_are_searched() {
    let user = User::new();
    let project = user.tmp.path().join("project/providers");
    write(&project, "proj.json", &provider("proj", "true"));
    assert!(!user.names(&[]).contains(&"proj".to_string()));
    write(
        &user.home().join("config/cpi"),
        "cpi.toml",
        &format!("provider_dirs = [{:?}]\n", project.display().to_string()),
    );
    assert!(user.names(&[]).contains(&"proj".to_string()));
    user.cpi(&["grant", "proj", "--yes"]).ok();
    user.cpi(&["run", "proj", "list_workers", "--json"]).ok();
}

#[test]
fn names_and_descriptions_that_could_disguise_a_provider_are_refused_at_load() {
    let user = User::new();
    let dir = user.tmp.path().join("p");
    let with_description = |file: &str, name: &str, description: &str| {
        let mut value: Value = serde_json::from_str(&provider(name, "true")).unwrap();
        value["description"] = description.into();
        write(&dir, file, &value.to_string());
    };
    with_description("ok.json", "ok-1_x", "Fine.\nTwo lines\tand a tab.");
    with_description("esc.json", "esc", "harmless\u{1b}[2K\u{1b}[1Aruns nothing");
    with_description("bidi.json", "bidi", "safe \u{202e}txt.exe");
    with_description("zw.json", "zw", "zero\u{200b}width");
    with_description("upper.json", "Upper", "x");
    with_description("dots.json", "../x", "x");
    with_description("nl.json", "two\nrows", "x");
    let pd = dir.to_str().unwrap();
    let listed = user.cpi(&["--provider-dir", pd, "providers", "--json"]);
    let names: Vec<String> = listed
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains(&"ok-1_x".to_string()), "{names:?}");
    for refused in ["esc", "bidi", "zw", "Upper", "../x", "two\nrows"] {
        assert!(!names.contains(&refused.to_string()), "{refused:?} loaded");
    }
    // Never printed raw: the refusal escapes what it quotes.
    assert!(!listed.stderr.contains('\u{1b}') && !listed.stderr.contains('\u{202e}'));
    assert!(
        listed.stderr.contains("invalid provider name"),
        "{}",
        listed.stderr
    );
    let report = user.cpi(&[
        "validate",
        "--json",
        dir.join("bidi.json").to_str().unwrap(),
    ]);
    assert_eq!(report.code, 1, "{}", report.stdout);
    assert!(
        report.stdout.contains("bidi or zero-width"),
        "{}",
        report.stdout
    );
}
