//! Scaffolding for provider authors (`cpi new`).
//!
//! [`provider`] writes a provider file with every required method of §2.1 stubbed with
//! realistic targets and parse rules, plus a fixture, so the new provider passes `cpi
//! validate` and `cpi test` from the first second and the author edits working code.
//! [`component`] writes a WebAssembly component project (Rust with the guest SDK, Python with
//! componentize-py, or JavaScript with ComponentizeJS) modelled on the repository's examples.
//! Files are only ever created: [`write`] refuses to overwrite anything.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use cpi::error::{Error, Result};

/// What a scaffolded provider's actions do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Run a CLI program (named like the provider).
    Command,
    /// Call an HTTP API.
    Endpoint,
}

/// The language of a component project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// Rust, with `cpi-guest-sdk`, built for `wasm32-wasip2`.
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with ComponentizeJS.
    JavaScript,
}

/// A file to create, relative to the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Where, relative to the output directory.
    pub path: PathBuf,
    /// What.
    pub contents: String,
    /// Whether to mark it executable (build scripts).
    pub executable: bool,
}

impl File {
    fn new(path: impl Into<PathBuf>, contents: impl Into<String>) -> File {
        File {
            path: path.into(),
            contents: contents.into(),
            executable: false,
        }
    }
}

/// The WIT contract, copied into Python and JavaScript projects (their build tools read it).
const PROVIDER_WIT: &str = include_str!("../../../wit/provider.wit");

/// Checks a new provider's name: a valid provider name ([`cpi::provider::check_name`]) that
/// starts with a letter, since it also names a CLI program, a crate and a component.
pub fn check_name(name: &str) -> Result<()> {
    cpi::provider::check_name(name)?;
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(Error::validation(format!(
            "invalid name for a new provider \"{name}\": it also names a crate and a \
             component, so it starts with a lowercase letter"
        )));
    }
    Ok(())
}

/// A provider file `NAME.json` and its fixture `fixtures/NAME/list_workers.json`.
///
/// `schema` is the `$schema` reference to put in the file (a path relative to it), if any.
pub fn provider(name: &str, kind: Kind, schema: Option<&str>) -> Result<Vec<File>> {
    check_name(name)?;
    let mut definition = definition(name, kind);
    if let (Some(schema), Some(map)) = (schema, definition.as_object_mut()) {
        let mut with_schema = serde_json::Map::new();
        with_schema.insert("$schema".into(), Value::from(schema));
        with_schema.extend(std::mem::take(map));
        *map = with_schema;
    }
    let mut files = vec![
        File::new(format!("{name}.json"), pretty(&definition)),
        File::new(
            format!("fixtures/{name}/list_workers.json"),
            pretty(&fixture(name, kind)),
        ),
    ];
    if kind == Kind::Command {
        files.push(File::new(
            format!("fixtures/{name}/list_images.json"),
            pretty(&table_fixture(name)),
        ));
    }
    Ok(files)
}

/// The provider definition: every §2.1 method, with standard parameter names (§7).
fn definition(name: &str, kind: Kind) -> Value {
    match kind {
        Kind::Command => command_definition(name),
        Kind::Endpoint => endpoint_definition(name),
    }
}

/// Declarations for the scaffold's parameters: every value is checked before anything runs
/// (tighten the patterns to the real platform's names and ids).
fn parameters(kind: Kind) -> Value {
    let word = "[A-Za-z0-9][A-Za-z0-9._-]{0,62}";
    let mut decls = json!({
        "region": {"description": "Where workers live.", "pattern": word},
        "worker_type": {"description": "The worker's size.", "pattern": word},
        "image": {"description": "The image a worker boots.", "pattern": word},
        "name": {"description": "The worker's name.", "pattern": "[A-Za-z0-9][A-Za-z0-9-]{0,62}"},
        "worker_id": {"description": "The platform's id of a worker.", "pattern": word}
    });
    if matches!(kind, Kind::Endpoint) {
        decls["api_url"] =
            json!({"description": "The API's base URL.", "pattern": "https?://[^\\s]+"});
        decls["api_key"] = json!({"description": "The API key.", "secret": true});
    }
    decls
}

fn command_definition(name: &str) -> Value {
    let cli = name;
    let worker = json!({"type": "json", "patterns": {
        "id": {"pointer": "/id"},
        "name": {"pointer": "/name"},
        "status": {"pointer": "/status"},
        "type": {"pointer": "/type"},
        "ip_address": {"pointer": "/ip_address", "optional": true}
    }});
    let confirms = |word: &str| {
        json!({"type": "object", "patterns": {
            "success": {"regex": format!("(?i)\\b{word}\\b"), "transform": "boolean"}
        }})
    };
    json!({
        "name": name,
        "type": "command",
        "description": format!("{name}: a command-based provider scaffolded by `cpi new`. Replace the `{cli}` commands, output formats and defaults with the real CLI's, and the fixture with real output."),
        "default_settings": {
            "region": "us-east-1",
            "worker_type": "small",
            "image": "ubuntu-22.04"
        },
        "parameters": parameters(Kind::Command),
        "error_rules": [
            {"when": "^Error: no such (server|image)", "category": "ResourceNotFoundError"},
            {"when": "^Error: not logged in", "category": "AuthenticationError"}
        ],
        "actions": {
            "test_install": {
                "target": {"Command": format!("{cli} --version")},
                "params": [],
                "parse_rules": {"type": "object", "patterns": {
                    "version": {"regex": "(\\d+\\.\\d+(?:\\.\\d+)?)"}
                }}
            },
            "list_workers": {
                "target": {"Command": format!("{cli} server list --region {{region}} --output json")},
                "params": ["region"],
                "parse_rules": {"type": "json", "items": "", "patterns": worker["patterns"].clone()}
            },
            "list_images": {
                "target": {"Command": format!("{cli} image list --region {{region}}")},
                "params": ["region"],
                "parse_rules": {"type": "table", "patterns": {
                    "id": {"column": "ID"},
                    "name": {"column": "NAME"},
                    "os": {"column": "OS", "optional": true}
                }}
            },
            "create_worker": {
                "target": {"Command": format!("{cli} server create --name {{name}} --type {{worker_type}} --image {{image}} --region {{region}} --output json")},
                "params": ["name", "worker_type", "image", "region"],
                "parse_rules": worker.clone()
            },
            "get_worker": {
                "target": {"Command": format!("{cli} server show {{worker_id}} --output json")},
                "params": ["worker_id"],
                "parse_rules": worker
            },
            "delete_worker": {
                "target": {"Command": format!("{cli} server delete {{worker_id}} --yes")},
                "params": ["worker_id"],
                "parse_rules": confirms("deleted")
            },
            "start_worker": {
                "target": {"Command": format!("{cli} server start {{worker_id}}")},
                "params": ["worker_id"],
                "parse_rules": confirms("started")
            },
            "stop_worker": {
                "target": {"Command": format!("{cli} server stop {{worker_id}}")},
                "params": ["worker_id"],
                "parse_rules": confirms("stopped")
            }
        }
    })
}

fn endpoint_definition(name: &str) -> Value {
    let headers = json!({
        "Authorization": "Bearer {api_key}",
        "Accept": "application/json"
    });
    let mut json_headers = headers.clone();
    json_headers["Content-Type"] = Value::from("application/json");
    let endpoint = |method: &str, path: &str, headers: &Value| json!({"Endpoint": {"url": format!("{{api_url}}{path}"), "method": method, "headers": headers}});
    let server = |prefix: &str| {
        json!({"type": "json", "patterns": {
            "id": {"pointer": format!("{prefix}/id")},
            "name": {"pointer": format!("{prefix}/name")},
            "status": {"pointer": format!("{prefix}/status")},
            "type": {"pointer": format!("{prefix}/type")},
            "ip_address": {"pointer": format!("{prefix}/public_ip"), "optional": true}
        }})
    };
    let action = json!({"type": "json", "patterns": {
        "action_id": {"pointer": "/action/id"},
        "command": {"pointer": "/action/command"}
    }});
    let mut create = endpoint("Post", "/servers", &json_headers);
    create["Endpoint"]["body"] = Value::from(
        "{\"name\":\"{name}\",\"type\":\"{worker_type}\",\"image\":\"{image}\",\"region\":\"{region}\"}",
    );
    let mut list_rules = server("");
    list_rules["items"] = Value::from("/servers");
    json!({
        "name": name,
        "type": "endpoint",
        "description": format!("{name}: an endpoint-based provider scaffolded by `cpi new`. Replace the URLs, bodies, JSON Pointers and defaults with the real API's, and the fixture with a real response."),
        "default_settings": {
            "api_url": "https://api.example.com/v1",
            "api_key": "",
            "region": "us-east-1",
            "worker_type": "small",
            "image": "ubuntu-22.04"
        },
        "parameters": parameters(Kind::Endpoint),
        "actions": {
            "test_install": {
                "target": endpoint("Get", "/version", &headers),
                "params": ["api_url", "api_key"],
                "parse_rules": {"type": "json", "patterns": {"version": {"pointer": "/version"}}}
            },
            "list_workers": {
                "target": endpoint("Get", "/servers?region={region}", &headers),
                "params": ["api_url", "api_key", "region"],
                "parse_rules": list_rules
            },
            "create_worker": {
                "target": create,
                "params": ["api_url", "api_key", "name", "worker_type", "image", "region"],
                "parse_rules": server("/server")
            },
            "get_worker": {
                "target": endpoint("Get", "/servers/{worker_id}", &headers),
                "params": ["api_url", "api_key", "worker_id"],
                "parse_rules": server("/server")
            },
            "delete_worker": {
                "target": endpoint("Delete", "/servers/{worker_id}", &headers),
                "params": ["api_url", "api_key", "worker_id"],
                "parse_rules": action.clone()
            },
            "start_worker": {
                "target": endpoint("Post", "/servers/{worker_id}/actions/start", &headers),
                "params": ["api_url", "api_key", "worker_id"],
                "parse_rules": action.clone()
            },
            "stop_worker": {
                "target": endpoint("Post", "/servers/{worker_id}/actions/stop", &headers),
                "params": ["api_url", "api_key", "worker_id"],
                "parse_rules": action
            }
        }
    })
}

/// A `list_workers` fixture: two workers, one of them with a raw status the built-in table
/// normalizes (`off` → `stopped`), and the request the action makes.
fn fixture(name: &str, kind: Kind) -> Value {
    let workers = [
        json!({"id": "srv-1001", "name": "web-1", "status": "running", "type": "small", "ip_address": "203.0.113.10"}),
        json!({"id": "srv-1002", "name": "db-1", "status": "off", "type": "large", "ip_address": null}),
    ];
    let expected = json!([
        {"id": "srv-1001", "name": "web-1", "status": "running", "raw_status": "running", "type": "small", "ip_address": "203.0.113.10"},
        {"id": "srv-1002", "name": "db-1", "status": "stopped", "raw_status": "off", "type": "large"}
    ]);
    match kind {
        Kind::Command => {
            let lines: Vec<String> = workers.iter().map(Value::to_string).collect();
            json!({
                "action": "list_workers",
                "description": format!("two workers as `{name} server list --output json` prints them (scaffolded: replace with real output)"),
                "params": {"region": "us-east-1"},
                "request": {"argv": [name, "server", "list", "--region", "us-east-1", "--output", "json"]},
                "output": format!("[\n  {}\n]\n", lines.join(",\n  ")),
                "expected": expected
            })
        }
        Kind::Endpoint => {
            let servers: Vec<Value> = workers
                .iter()
                .map(|w| {
                    json!({"id": w["id"], "name": w["name"], "status": w["status"],
                           "type": w["type"], "public_ip": w["ip_address"]})
                })
                .collect();
            json!({
                "action": "list_workers",
                "description": "two servers as GET /servers returns them (scaffolded: replace with a real response)",
                "params": {"region": "us-east-1"},
                "request": {"method": "GET", "url": "https://api.example.com/v1/servers?region=us-east-1"},
                "output": pretty(&json!({"servers": servers, "meta": {"total": 2}})),
                "expected": expected
            })
        }
    }
}

/// A `list_images` fixture for the command scaffold: a table as a CLI prints it for people,
/// with a value that has spaces.
fn table_fixture(name: &str) -> Value {
    json!({
        "action": "list_images",
        "description": format!("`{name} image list` prints a column-aligned table (scaffolded: replace with real output)"),
        "params": {"region": "us-east-1"},
        "request": {"argv": [name, "image", "list", "--region", "us-east-1"]},
        "output": "ID        NAME                OS\nimg-101   Ubuntu 22.04 LTS    linux\nimg-102   Windows Server      windows\n",
        "expected": [
            {"id": "img-101", "name": "Ubuntu 22.04 LTS", "os": "linux"},
            {"id": "img-102", "name": "Windows Server", "os": "windows"}
        ]
    })
}

/// A component project in `NAME/`.
///
/// `sdk` is the path of `guest-sdk/` as the project's `Cargo.toml` should name it (Rust
/// only; relative to the project directory, or absolute).
pub fn component(name: &str, language: Language, sdk: Option<&str>) -> Result<Vec<File>> {
    check_name(name)?;
    let definition = pretty(&definition(name, Kind::Command));
    let at = |file: &str| PathBuf::from(name).join(file);
    let fill = |template: &str| {
        template
            .replace("@NAME@", name)
            .replace("@TYPE@", &camel_case(name))
            .replace("@CRATE@", &name.replace('-', "_"))
    };
    let mut files = vec![File::new(at(&format!("{name}.json")), definition)];
    match language {
        Language::Rust => {
            let sdk = sdk.ok_or_else(|| {
                Error::validation(
                    "a Rust component needs the cpi guest SDK: pass --sdk PATH/TO/cpi/guest-sdk",
                )
            })?;
            let sdk = serde_json::to_string(sdk).expect("strings serialize");
            files.push(File::new(
                at("Cargo.toml"),
                fill(RUST_CARGO).replace("@SDK@", &sdk),
            ));
            files.push(File::new(at("src/lib.rs"), fill(RUST_LIB)));
            files.push(File::new(at(".gitignore"), "/target\n"));
            files.push(File::new(at("README.md"), fill(RUST_README)));
        }
        Language::Python => {
            files.push(File::new(at("app.py"), fill(PYTHON_APP)));
            files.push(File {
                executable: true,
                ..File::new(at("build.sh"), fill(PYTHON_BUILD))
            });
            files.push(File::new(at("wit/provider.wit"), PROVIDER_WIT));
            files.push(File::new(at(".gitignore"), "/build\n*.wasm\n"));
            files.push(File::new(at("README.md"), fill(PYTHON_README)));
        }
        Language::JavaScript => {
            files.push(File::new(at("app.js"), fill(JS_APP)));
            files.push(File::new(at("build.mjs"), fill(JS_BUILD)));
            files.push(File::new(at("package.json"), fill(JS_PACKAGE)));
            files.push(File::new(at("wit/provider.wit"), PROVIDER_WIT));
            files.push(File::new(
                at(".gitignore"),
                "/node_modules\n*.wasm\n*.src.js\n",
            ));
            files.push(File::new(at("README.md"), fill(JS_README)));
        }
    }
    Ok(files)
}

/// Creates `files` under `dir`; refuses (before writing anything) if any of them exists.
/// Returns the paths written.
pub fn write(dir: &Path, files: &[File]) -> Result<Vec<PathBuf>> {
    for file in files {
        let path = dir.join(&file.path);
        if path.symlink_metadata().is_ok() {
            return Err(Error::validation(format!(
                "{} already exists; cpi new never overwrites (pick another name or --dir)",
                path.display()
            ))
            .with_detail("file", path.display().to_string()));
        }
    }
    let mut written = Vec::new();
    for file in files {
        let path = dir.join(&file.path);
        let io =
            |e: std::io::Error| Error::internal(format!("cannot write {}: {e}", path.display()));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        // create_new: a file that appeared since the check is still not overwritten.
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io)?;
        std::io::Write::write_all(&mut out, file.contents.as_bytes()).map_err(io)?;
        if file.executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
        }
        written.push(path);
    }
    Ok(written)
}

/// The first `relative` path that exists in `start` or one of its ancestors.
pub fn find_upwards(start: &Path, relative: &str) -> Option<PathBuf> {
    let start = normalize(&std::path::absolute(start).ok()?);
    start
        .ancestors()
        .map(|dir| dir.join(relative))
        .find(|candidate| candidate.exists())
}

/// `to` relative to the directory `from` (both absolute), e.g. `../schema/x.json`.
pub fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let (from, to) = (normalize(from), normalize(to));
    let from: Vec<_> = from.components().collect();
    let to_parts: Vec<_> = to.components().collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &to_parts[common..] {
        out.push(part);
    }
    out
}

/// How a file in `dir` should name `target` (both absolute): relative when they share a
/// directory below the root (a checkout with its projects beside it), absolute otherwise.
pub fn reference(dir: &Path, target: &Path) -> PathBuf {
    let (dir, target) = (normalize(dir), normalize(target));
    let shared = dir
        .components()
        .zip(target.components())
        .take_while(|(a, b)| a == b)
        .count();
    if shared > 1 {
        relative_path(&dir, &target)
    } else {
        target
    }
}

/// `path` without `.` and with each `..` applied to the component before it (lexically).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn camel_case(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    text.push('\n');
    text
}

const RUST_CARGO: &str = r#"[package]
name = "@NAME@"
description = "@NAME@: a cpi provider component (scaffolded by `cpi new @NAME@ --component rust`)."
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
cpi-guest-sdk = { path = @SDK@ }
serde = { version = "1", features = ["derive"] }
serde_json = "1"

# A workspace of its own, so the project builds wherever it lives.
[workspace]

[profile.release]
# Without DWARF the component is a few hundred KiB instead of a few MiB.
strip = "debuginfo"
"#;

const RUST_LIB: &str = r##"//! `@NAME@`: a cpi provider as a WebAssembly component.
//!
//! The component ships its provider definition (`@NAME@.json`, built in with `include_str!`),
//! so cpi runs the actions from its targets and parse rules, and calls the component where
//! Rust does better than a JSON file:
//!
//! - `parse`: `list_workers` output is read with serde instead of parse rules;
//! - `map_status`: the platform's raw statuses become standard ones (cpi normalizes every
//!   `status` field with it).
//!
//! The manifest asks to run only `@NAME@ server ...` and `@NAME@ --version`: cpi grants a
//! component no more than it asks for (`cpi grant @NAME@ --all`). Add an `invoke` hook (see
//! the guest SDK's docs) to run a whole action in the component.

use cpi_guest_sdk::prelude::*;
use serde::{Deserialize, Serialize};

/// The provider.
struct @TYPE@;

/// The provider definition the component ships.
const DEFINITION: &str = include_str!("../@NAME@.json");

impl Provider for @TYPE@ {
    fn manifest() -> Manifest {
        Manifest::new("@NAME@", env!("CARGO_PKG_VERSION"))
            .command("@NAME@", &["server", "-**"])
            .command("@NAME@", &["--version"])
            .provider_json(DEFINITION)
            .parses(&["list_workers"])
            .maps_status()
    }

    fn parse(action: &str, raw: &str) -> Result<Value> {
        match action {
            "list_workers" => Ok(serde_json::to_value(parse_list(raw)?)?),
            other => Err(Error::unsupported(format!(
                "@NAME@ does not parse the output of '{other}'"
            ))),
        }
    }

    fn map_status(raw: &str) -> Status {
        match raw.trim().to_ascii_lowercase().as_str() {
            "off" | "halted" => Status::Stopped,
            "booting" => Status::Starting,
            other => Status::from_name(other),
        }
    }
}

register_provider!(@TYPE@);

/// A worker as `@NAME@ server list --output json` prints it.
#[derive(Debug, Deserialize, Serialize, PartialEq)]
struct Worker {
    id: String,
    name: String,
    status: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip_address: Option<String>,
}

/// A JSON array of workers (blank output is an empty list).
fn parse_list(raw: &str) -> Result<Vec<Worker>> {
    if raw.trim().is_empty() {
        return Ok(Vec::new());
    }
    Ok(serde_json::from_str(raw)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_carries_the_definition() {
        let m = @TYPE@::manifest();
        assert_eq!(m.name(), "@NAME@");
        let definition: Value = serde_json::from_str(m.provider_definition().unwrap()).unwrap();
        assert_eq!(definition["name"], "@NAME@");
        assert!(definition["actions"].get("list_workers").is_some());
    }

    #[test]
    fn parses_the_worker_list() {
        let raw = r#"[{"id": "srv-1", "name": "web-1", "status": "running", "type": "small", "ip_address": null}]"#;
        assert_eq!(
            @TYPE@::parse("list_workers", raw).unwrap(),
            json!([{"id": "srv-1", "name": "web-1", "status": "running", "type": "small"}])
        );
        assert_eq!(@TYPE@::parse("list_workers", "").unwrap(), json!([]));
        let err = @TYPE@::parse("list_workers", "not json").unwrap_err();
        assert_eq!(err.category, ErrorCategory::Provider);
    }

    #[test]
    fn maps_statuses() {
        assert_eq!(@TYPE@::map_status("OFF"), Status::Stopped);
        assert_eq!(@TYPE@::map_status("running"), Status::Running);
        assert_eq!(@TYPE@::map_status("melting"), Status::Unknown);
    }
}
"##;

const RUST_README: &str = r#"# `@NAME@`: a cpi provider component in Rust

Scaffolded by `cpi new @NAME@ --component rust`. The provider definition is
[`@NAME@.json`](@NAME@.json) (every required method, run by cpi from its targets and parse
rules); [`src/lib.rs`](src/lib.rs) adds a `parse` hook for `list_workers` and a
`map_status` hook. Replace the `@NAME@ server ...` commands with the real CLI's.

## Build and test

```sh
cargo test                                           # the hooks, natively
rustup target add wasm32-wasip2
cargo build --release --target wasm32-wasip2         # -> target/wasm32-wasip2/release/@CRATE@.wasm
```

## Run

```sh
cpi validate @NAME@.json
mkdir -p ~/.config/cpi/providers
cp target/wasm32-wasip2/release/@CRATE@.wasm ~/.config/cpi/providers/@NAME@.wasm
cpi show @NAME@
cpi grant @NAME@ --all --env PATH
cpi run @NAME@ list_workers
```
"#;

const PYTHON_APP: &str = r#""""`@NAME@`: a cpi provider as a WebAssembly component, in Python.

Built with componentize-py (see build.sh). The component ships its provider definition
(`@NAME@.json`), so cpi runs the actions from its targets and parse rules, and calls the
component for:

- `parse`: `list_workers` output is read with `json.loads`;
- `map_status`: the platform's raw statuses become standard ones.

It asks to run only `@NAME@ server ...` and `@NAME@ --version`.
"""

import json
import os

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import (
    CommandCapability,
    Error,
    ErrorCategory,
    Manifest,
    WorkerStatus,
)

NAME = "@NAME@"
VERSION = "0.1.0"
API_VERSION = "0.2.0"

# Read when componentize-py pre-initializes the module (at build time), so the definition is
# part of the component: the sandbox has no files at run time.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), NAME + ".json")) as f:
    DEFINITION = f.read()

STATUSES = {
    "running": WorkerStatus.RUNNING,
    "off": WorkerStatus.STOPPED,
    "stopped": WorkerStatus.STOPPED,
    "starting": WorkerStatus.STARTING,
    "booting": WorkerStatus.STARTING,
    "stopping": WorkerStatus.STOPPING,
    "provisioning": WorkerStatus.PROVISIONING,
    "deleting": WorkerStatus.TERMINATING,
    "error": WorkerStatus.ERROR,
}

FIELDS = ("id", "name", "status", "type")


def fail(category, message):
    """The exception componentize-py turns into the hook's `error` result."""
    return Err(Error(category=category, message=message))


def parse_list(raw):
    """`@NAME@ server list --output json`: a JSON array (blank output is an empty list)."""
    if not raw.strip():
        return []
    try:
        workers = json.loads(raw)
    except ValueError as e:
        raise fail(ErrorCategory.PROVIDER, f"the worker list is not JSON: {e}")
    if not isinstance(workers, list):
        raise fail(ErrorCategory.PROVIDER, "the worker list is not a JSON array")
    out = []
    for w in workers:
        if not isinstance(w, dict) or not all(isinstance(w.get(k), str) for k in FIELDS):
            raise fail(ErrorCategory.PROVIDER, f"worker list: unexpected item {w!r}")
        item = {k: w[k] for k in FIELDS}
        if isinstance(w.get("ip_address"), str):
            item["ip_address"] = w["ip_address"]
        out.append(item)
    return out


class Provider(exports.Provider):
    def describe(self) -> Manifest:
        return Manifest(
            name=NAME,
            version=VERSION,
            api_version=API_VERSION,
            commands=[
                CommandCapability(program=NAME, args=["server", "-**"]),
                CommandCapability(program=NAME, args=["--version"]),
            ],
            http=[],
            provider_json=DEFINITION,
            parses=["list_workers"],
            invokes=[],
            maps_status=True,
            env=[],
            parameters=[],
        )

    def parse(self, action: str, raw: str) -> str:
        if action == "list_workers":
            return json.dumps(parse_list(raw))
        raise fail(ErrorCategory.UNSUPPORTED, f"{NAME} does not parse the output of '{action}'")

    def map_status(self, raw: str) -> WorkerStatus:
        return STATUSES.get(raw.strip().lower(), WorkerStatus.UNKNOWN)

    def invoke(self, action: str, params: str) -> str:
        raise fail(ErrorCategory.UNSUPPORTED, f"{NAME} does not invoke '{action}'")
"#;

const PYTHON_BUILD: &str = r#"#!/usr/bin/env bash
# Builds the @NAME@ component with componentize-py (`pip install componentize-py==0.25.1`).
#
#   ./build.sh [OUT]     # default OUT: @NAME@.wasm
#
# The bindings for the WIT world go to build/bindings (put it on PYTHONPATH for editors).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/@NAME@.wasm}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

command -v componentize-py >/dev/null || {
    echo "componentize-py not found: pip install componentize-py==0.25.1" >&2
    exit 127
}

cd "$here"
export PYTHONDONTWRITEBYTECODE=1
rm -rf build/bindings
componentize-py -d wit -w provider-component bindings build/bindings
componentize-py -d wit -w provider-component componentize app -o "$out.tmp"
mv "$out.tmp" "$out"
echo "built $out ($(wc -c <"$out") bytes)" >&2
"#;

const PYTHON_README: &str = r#"# `@NAME@`: a cpi provider component in Python

Scaffolded by `cpi new @NAME@ --component python`. The provider definition is
[`@NAME@.json`](@NAME@.json) (every required method, run by cpi from its targets and parse
rules); [`app.py`](app.py) adds a `parse` hook for `list_workers` and a `map_status` hook.
`wit/provider.wit` is the contract of the cpi version that wrote this project.

## Build and run

```sh
pip install componentize-py==0.25.1
./build.sh                                   # -> @NAME@.wasm
cpi validate @NAME@.json
cp @NAME@.wasm ~/.config/cpi/providers/@NAME@.wasm
cpi grant @NAME@ --all --env PATH
cpi run @NAME@ list_workers
```
"#;

const JS_APP: &str = r#"// `@NAME@`: a cpi provider as a WebAssembly component, in JavaScript.
//
// Built with ComponentizeJS (see build.mjs). The component ships its provider definition
// (`@NAME@.json`; build.mjs inlines it as DEFINITION), so cpi runs the actions from its
// targets and parse rules, and calls the component for:
//
// - `parse`: `list_workers` output is read with `JSON.parse`;
// - `mapStatus`: the platform's raw statuses become standard ones.
//
// It asks to run only `@NAME@ server ...` and `@NAME@ --version`.
//
// WIT mapping: records are objects with camelCase fields, enums are kebab-case strings, and a
// hook that returns `result<T, error>` returns T or throws the `error` record.

/* global DEFINITION */

const NAME = '@NAME@';
const VERSION = '0.1.0';
const API_VERSION = '0.2.0';

const STATUSES = new Map(Object.entries({
  running: 'running',
  off: 'stopped',
  stopped: 'stopped',
  starting: 'starting',
  booting: 'starting',
  stopping: 'stopping',
  provisioning: 'provisioning',
  deleting: 'terminating',
  error: 'error',
}));

const FIELDS = ['id', 'name', 'status', 'type'];

function fail(category, message) {
  return { category, message };
}

/** `@NAME@ server list --output json`: a JSON array (blank output is an empty list). */
function parseList(raw) {
  if (!raw.trim()) return [];
  let workers;
  try {
    workers = JSON.parse(raw);
  } catch (e) {
    throw fail('provider', `the worker list is not JSON: ${e.message}`);
  }
  if (!Array.isArray(workers)) throw fail('provider', 'the worker list is not a JSON array');
  return workers.map((w) => {
    if (w === null || typeof w !== 'object' || !FIELDS.every((k) => typeof w[k] === 'string')) {
      throw fail('provider', `worker list: unexpected item ${JSON.stringify(w)}`);
    }
    const item = Object.fromEntries(FIELDS.map((k) => [k, w[k]]));
    if (typeof w.ip_address === 'string') item.ip_address = w.ip_address;
    return item;
  });
}

export const provider = {
  describe() {
    return {
      name: NAME,
      version: VERSION,
      apiVersion: API_VERSION,
      commands: [
        { program: NAME, args: ['server', '-**'] },
        { program: NAME, args: ['--version'] },
      ],
      http: [],
      providerJson: DEFINITION,
      parses: ['list_workers'],
      invokes: [],
      mapsStatus: true,
      env: [],
      parameters: [],
    };
  },

  parse(action, raw) {
    if (action === 'list_workers') return JSON.stringify(parseList(raw));
    throw fail('unsupported', `${NAME} does not parse the output of '${action}'`);
  },

  mapStatus(raw) {
    return STATUSES.get(raw.trim().toLowerCase()) ?? 'unknown';
  },

  invoke(action) {
    throw fail('unsupported', `${NAME} does not invoke '${action}'`);
  },
};
"#;

const JS_BUILD: &str = r#"// Builds the @NAME@ component with ComponentizeJS (`npm install` here first).
//
//   node build.mjs [OUT]     # default OUT: @NAME@.wasm
//
// The provider definition (@NAME@.json) is inlined into the source as DEFINITION: the
// sandbox has no files at run time.
import { readFile, writeFile, rename } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { componentize } from '@bytecodealliance/componentize-js';

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? join(here, '@NAME@.wasm'));

const definition = await readFile(join(here, '@NAME@.json'), 'utf8');
JSON.parse(definition); // fail the build, not the component, on a broken definition
const app = await readFile(join(here, 'app.js'), 'utf8');
const sourcePath = `${out}.src.js`;
await writeFile(sourcePath, `const DEFINITION = ${JSON.stringify(definition)};\n${app}`);

const { component } = await componentize({
  sourcePath,
  witPath: join(here, 'wit'),
  worldName: 'provider-component',
  // No fetch()/incoming-handler: the component reaches the outside only through cpi's host.
  disableFeatures: ['http', 'fetch-event'],
});
await writeFile(`${out}.tmp`, component);
await rename(`${out}.tmp`, out);
console.error(`built ${out} (${component.byteLength} bytes)`);
"#;

const JS_PACKAGE: &str = r#"{
  "name": "@NAME@",
  "version": "0.1.0",
  "private": true,
  "description": "@NAME@: a cpi provider component in JavaScript (scaffolded by cpi new)",
  "type": "module",
  "scripts": {
    "build": "node build.mjs"
  },
  "devDependencies": {
    "@bytecodealliance/componentize-js": "0.23.0",
    "@bytecodealliance/preview2-shim": "0.25.0"
  }
}
"#;

const JS_README: &str = r#"# `@NAME@`: a cpi provider component in JavaScript

Scaffolded by `cpi new @NAME@ --component js`. The provider definition is
[`@NAME@.json`](@NAME@.json) (every required method, run by cpi from its targets and parse
rules); [`app.js`](app.js) adds a `parse` hook for `list_workers` and a `mapStatus` hook.
`wit/provider.wit` is the contract of the cpi version that wrote this project.

## Build and run

```sh
npm install
node build.mjs                               # -> @NAME@.wasm
cpi validate @NAME@.json
cp @NAME@.wasm ~/.config/cpi/providers/@NAME@.wasm
cpi grant @NAME@ --all --env PATH
cpi run @NAME@ list_workers
```

ComponentizeJS imports `@bytecodealliance/preview2-shim` at build time without depending on
it, hence the second devDependency.
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{Severity, validate_text};

    #[test]
    fn names_are_checked() {
        for good in ["acme", "acme-cloud", "a1_b"] {
            check_name(good).unwrap();
        }
        for bad in ["", "Acme", "1cloud", "-x", "a b", "a/b", "ä"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scaffolded_providers_validate_without_findings() {
        for kind in [Kind::Command, Kind::Endpoint] {
            let files = provider("acme", kind, Some("../schema/provider.schema.json")).unwrap();
            let report = validate_text(&files[0].contents, Path::new("acme.json"));
            let errors: Vec<_> = report
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .collect();
            assert!(errors.is_empty(), "{kind:?}: {errors:?}");
            assert!(
                report.findings.is_empty(),
                "{kind:?}: {:?}",
                report.findings
            );
            assert!(files[0].contents.starts_with("{\n  \"$schema\""));
        }
    }

    #[test]
    fn writing_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let files = provider("acme", Kind::Command, None).unwrap();
        let written = write(dir.path(), &files).unwrap();
        // The provider, its list_workers fixture and its table fixture (list_images).
        assert_eq!(written.len(), 3);
        std::fs::write(&written[0], "mine").unwrap();
        let err = write(dir.path(), &files).unwrap_err();
        assert!(err.message().contains("already exists"), "{err}");
        assert_eq!(std::fs::read_to_string(&written[0]).unwrap(), "mine");
    }

    #[test]
    fn relative_paths_climb_to_the_common_ancestor() {
        assert_eq!(
            relative_path(Path::new("/r/providers"), Path::new("/r/schema/p.json")),
            PathBuf::from("../schema/p.json")
        );
        assert_eq!(
            relative_path(Path::new("/r/x/acme"), Path::new("/r/guest-sdk")),
            PathBuf::from("../../guest-sdk")
        );
        assert_eq!(
            relative_path(Path::new("/r/x/../y/./acme"), Path::new("/r/guest-sdk")),
            PathBuf::from("../../guest-sdk")
        );
        assert_eq!(
            reference(Path::new("/tmp/p"), Path::new("/work/guest-sdk")),
            PathBuf::from("/work/guest-sdk")
        );
        assert_eq!(
            reference(Path::new("/work/x/p"), Path::new("/work/guest-sdk")),
            PathBuf::from("../../guest-sdk")
        );
    }

    #[test]
    fn component_projects_have_their_build_files() {
        let rust = component("acme-cloud", Language::Rust, Some("../guest-sdk")).unwrap();
        let paths: Vec<_> = rust
            .iter()
            .map(|f| f.path.to_string_lossy().into_owned())
            .collect();
        assert!(
            paths.contains(&"acme-cloud/Cargo.toml".to_string()),
            "{paths:?}"
        );
        let lib = &rust
            .iter()
            .find(|f| f.path.ends_with("src/lib.rs"))
            .unwrap()
            .contents;
        assert!(
            lib.contains("struct AcmeCloud;") && !lib.contains('@'),
            "{lib}"
        );
        assert!(component("acme", Language::Rust, None).is_err());
        let python = component("acme", Language::Python, None).unwrap();
        assert!(
            python
                .iter()
                .any(|f| f.path.ends_with("build.sh") && f.executable)
        );
        assert!(python.iter().any(|f| f.path.ends_with("wit/provider.wit")));
        let js = component("acme", Language::JavaScript, None).unwrap();
        assert!(js.iter().any(|f| f.path.ends_with("build.mjs")));
    }
}
