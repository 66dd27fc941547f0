//! The `cloudco-cli` program: the §4.1 "CloudCo" command provider's CLI, a synchronous
//! client of the simulator's `/instances` and `/auth` routes.
//!
//! Environment: `CLOUDCO_API_URL` (server base URL), `CLOUDCO_API_KEY` (bearer token;
//! otherwise the one stored by `auth configure`), `CLOUDCO_CONFIG_DIR` (where
//! `config.json` lives; default `$HOME/.cloudco`), `CLOUDCO_TIMEOUT_SECS` (HTTP timeout,
//! default 60).
//!
//! Exit codes: 0 success, 1 server error (5xx, unreachable), 2 invalid argument / usage,
//! 3 authentication failed, 4 not found, 5 quota exceeded, 6 rate limited.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::util::{fnv1a32, percent_encode, random_hex};

/// The version `--version` reports.
pub const VERSION: &str = "1.4.2";

const USAGE: &str = "\
Usage: cloudco-cli <command> [options]

Commands:
  --version                                   Print the CLI version
  worker create --name N [--type T] [--image I] [--region R] [--network W] [--output text|json]
  worker list [--region R] [--output json]    One JSON object per line
  worker describe ID [--region R] [--output json]
  worker delete ID [--region R]
  worker start ID [--region R]
  worker stop ID [--region R]
  worker reboot ID [--region R]
  auth configure --api-key K [--project P]
  auth status | auth validate

'workers' is accepted as a synonym of 'worker'.

Environment:
  CLOUDCO_API_URL       API base URL, e.g. http://127.0.0.1:8080
  CLOUDCO_API_KEY       API key (overrides the configured one)
  CLOUDCO_CONFIG_DIR    Directory of config.json (default $HOME/.cloudco)
  CLOUDCO_TIMEOUT_SECS  HTTP timeout in seconds (default 60)
";

/// Runs the whole program with `args` (`argv[0]` is ignored) and returns the exit code.
///
/// Output goes to the process's stdout/stderr. Safe to call from inside an async runtime:
/// the work happens on a dedicated thread.
pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Vec<OsString> = args.into_iter().skip(1).collect();
    let outcome = std::thread::Builder::new()
        .name("cloudco-cli".to_owned())
        .spawn(move || run(args, &Env::from_process()))
        .ok()
        .and_then(|h| h.join().ok())
        .unwrap_or_else(|| Outcome::failed(CliError::server("internal error in cloudco-cli")));
    // Write errors (e.g. a closed pipe) are deliberately ignored: never panic.
    let _ = io::stdout().lock().write_all(outcome.stdout.as_bytes());
    let _ = io::stdout().lock().flush();
    let _ = io::stderr().lock().write_all(outcome.stderr.as_bytes());
    outcome.code
}

/// What a run produced.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn failed(e: CliError) -> Self {
        Outcome {
            code: e.code,
            stdout: String::new(),
            stderr: e.render(),
        }
    }
}

/// The process environment the CLI reads.
struct Env {
    api_url: Option<String>,
    api_key: Option<String>,
    config_dir: Option<PathBuf>,
    home: Option<PathBuf>,
    timeout: Duration,
}

impl Env {
    fn from_process() -> Self {
        let text = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let path = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Env {
            api_url: text("CLOUDCO_API_URL"),
            api_key: text("CLOUDCO_API_KEY"),
            config_dir: path("CLOUDCO_CONFIG_DIR"),
            home: path("HOME"),
            timeout: Duration::from_secs(
                text("CLOUDCO_TIMEOUT_SECS")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .filter(|n| *n > 0)
                    .unwrap_or(60),
            ),
        }
    }

    fn config_path(&self) -> Option<PathBuf> {
        self.config_dir
            .as_ref()
            .map(|d| d.join("config.json"))
            .or_else(|| {
                self.home
                    .as_ref()
                    .map(|h| h.join(".cloudco").join("config.json"))
            })
    }
}

/// A failure: exit code plus a one-line message containing the category words.
#[derive(Debug)]
struct CliError {
    code: i32,
    message: String,
    usage: bool,
}

impl CliError {
    fn new(code: i32, message: String) -> Self {
        CliError {
            code,
            message: one_line(&message),
            usage: false,
        }
    }
    fn server(msg: impl AsRef<str>) -> Self {
        Self::new(1, format!("server error: {}", msg.as_ref()))
    }
    fn invalid(msg: impl AsRef<str>) -> Self {
        Self::new(2, format!("invalid argument: {}", msg.as_ref()))
    }
    fn usage(msg: impl AsRef<str>) -> Self {
        CliError {
            usage: true,
            ..Self::invalid(msg)
        }
    }
    fn auth(msg: impl AsRef<str>) -> Self {
        Self::new(3, format!("authentication failed: {}", msg.as_ref()))
    }
    fn not_found(msg: impl AsRef<str>) -> Self {
        Self::new(4, format!("not found: {}", msg.as_ref()))
    }
    fn quota(msg: impl AsRef<str>) -> Self {
        Self::new(5, format!("quota exceeded: {}", msg.as_ref()))
    }
    fn rate_limited(secs: u64) -> Self {
        Self::new(
            6,
            format!("rate limit exceeded, retry after {secs} seconds"),
        )
    }

    fn render(&self) -> String {
        let mut s = format!("Error: {}\n", self.message);
        if self.usage {
            s.push('\n');
            s.push_str(USAGE);
        }
        s
    }
}

/// Collapses control characters (newlines included) so output stays line-oriented.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Runs the program and captures its output.
fn run(args: Vec<OsString>, env: &Env) -> Outcome {
    match execute(args, env) {
        Ok(stdout) => Outcome {
            code: 0,
            stdout,
            stderr: String::new(),
        },
        Err(e) => Outcome::failed(e),
    }
}

fn execute(args: Vec<OsString>, env: &Env) -> Result<String, CliError> {
    let mut strings = Vec::with_capacity(args.len());
    for a in args {
        match a.into_string() {
            Ok(s) => strings.push(s),
            Err(raw) => {
                return Err(CliError::invalid(format!(
                    "argument {raw:?} is not valid UTF-8"
                )));
            }
        }
    }
    let args = strings;
    let before_dashdash = args.iter().take_while(|a| *a != "--");
    if before_dashdash.clone().any(|a| a == "--help" || a == "-h") {
        return Ok(USAGE.to_owned());
    }
    match args.first().map(String::as_str) {
        None => Err(CliError::usage("no command given")),
        Some("--version" | "-V" | "version") => Ok(format!("cloudco-cli version {VERSION}\n")),
        Some("help") => Ok(USAGE.to_owned()),
        Some("worker" | "workers") => worker_cmd(&args[1..], env),
        Some("auth") => auth_cmd(&args[1..], env),
        Some(other) => Err(CliError::usage(format!("unknown command '{other}'"))),
    }
}

/// Parsed flags and positional arguments of one subcommand.
struct Flags {
    values: HashMap<&'static str, String>,
    positionals: Vec<String>,
}

impl Flags {
    fn parse(args: &[String], allowed: &[&'static str], ctx: &str) -> Result<Flags, CliError> {
        let mut values = HashMap::new();
        let mut positionals = Vec::new();
        let mut only_positional = false;
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            i += 1;
            if only_positional || !a.starts_with('-') || a == "-" {
                positionals.push(a.clone());
                continue;
            }
            if a == "--" {
                only_positional = true;
                continue;
            }
            let Some(body) = a.strip_prefix("--") else {
                return Err(CliError::usage(format!("unknown flag '{a}' for '{ctx}'")));
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (body, None),
            };
            let Some(key) = allowed.iter().copied().find(|k| *k == name) else {
                return Err(CliError::usage(format!(
                    "unknown flag '--{name}' for '{ctx}'"
                )));
            };
            let value = match inline {
                Some(v) => v,
                None => match args.get(i) {
                    Some(v) if !v.starts_with("--") => {
                        i += 1;
                        v.clone()
                    }
                    _ => {
                        return Err(CliError::invalid(format!(
                            "flag '--{name}' requires a value"
                        )));
                    }
                },
            };
            if values.insert(key, value).is_some() {
                return Err(CliError::invalid(format!(
                    "flag '--{name}' was given more than once"
                )));
            }
        }
        Ok(Flags {
            values,
            positionals,
        })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    fn no_positionals(&self, ctx: &str) -> Result<(), CliError> {
        match self.positionals.first() {
            Some(p) => Err(CliError::usage(format!(
                "unexpected argument '{p}' for '{ctx}'"
            ))),
            None => Ok(()),
        }
    }

    /// The single positional worker ID.
    fn worker_id(&self, ctx: &str) -> Result<String, CliError> {
        match self.positionals.as_slice() {
            [id] if !id.trim().is_empty() => Ok(id.clone()),
            [_] => Err(CliError::invalid("worker ID must not be empty")),
            [] => Err(CliError::usage(format!("'{ctx}' requires a worker ID"))),
            [_, extra, ..] => Err(CliError::usage(format!(
                "unexpected argument '{extra}' for '{ctx}'"
            ))),
        }
    }

    /// Validates `--output` against the accepted formats; returns the chosen one.
    fn output(&self, accepted: &[&'static str]) -> Result<&'static str, CliError> {
        match self.get("output") {
            None => Ok(accepted[0]),
            Some(o) => accepted.iter().copied().find(|a| *a == o).ok_or_else(|| {
                CliError::invalid(format!(
                    "unsupported --output '{o}' (expected {})",
                    accepted.join(" or ")
                ))
            }),
        }
    }
}

/// What `auth configure` stores.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_url: Option<String>,
}

fn load_config(env: &Env) -> Result<Config, CliError> {
    let Some(path) = env.config_path() else {
        return Ok(Config::default());
    };
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            CliError::invalid(format!("config file {} is not valid: {e}", path.display()))
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(CliError::invalid(format!(
            "cannot read config file {}: {e}",
            path.display()
        ))),
    }
}

/// Writes `config.json` atomically with mode 0600 (its directory 0700).
fn save_config(path: &Path, cfg: &Config) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)?;
    let bytes = serde_json::to_vec_pretty(cfg).map_err(io::Error::other)?;
    let tmp = dir.join(format!(".config.json.tmp-{}", random_hex(4)));
    let result = (|| {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(&bytes)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn account_id(project: &str) -> String {
    format!("acct-{:08x}", fnv1a32(project.as_bytes()))
}

/// A successful response: parsed JSON, or the raw body when it is not JSON.
enum Reply {
    Json(Value),
    Raw(String),
}

/// The HTTP client for one invocation.
struct Api {
    base: String,
    key: Option<String>,
    client: reqwest::blocking::Client,
}

impl Api {
    fn new(env: &Env, cfg: &Config, key: Option<String>) -> Result<Api, CliError> {
        let base = env
            .api_url
            .clone()
            .or_else(|| cfg.api_url.clone())
            .ok_or_else(|| CliError::server("no API endpoint configured (set CLOUDCO_API_URL)"))?;
        let base = base.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(CliError::invalid(format!(
                "CLOUDCO_API_URL '{base}' must start with http:// or https://"
            )));
        }
        let client = reqwest::blocking::Client::builder()
            .timeout(env.timeout)
            .no_proxy()
            .user_agent(concat!("cloudco-cli/", "1.4.2"))
            .build()
            .map_err(|e| CliError::server(format!("cannot create HTTP client: {}", chain(&e))))?;
        Ok(Api { base, key, client })
    }

    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, CliError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.client.request(method, &url);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        let resp = req.send().map_err(|e| {
            CliError::server(format!(
                "cannot reach the CloudCo API at {}: {}",
                self.base,
                chain(&e)
            ))
        })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let bytes = resp
            .bytes()
            .map_err(|e| CliError::server(format!("reading the response failed: {}", chain(&e))))?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if status.is_success() {
            return Ok(match serde_json::from_str::<Value>(&text) {
                Ok(v) => Reply::Json(v),
                Err(_) => Reply::Raw(text),
            });
        }
        let msg = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| format!("HTTP {status}"));
        Err(match status.as_u16() {
            401 => CliError::auth(msg),
            403 => CliError::quota(msg),
            404 => CliError::not_found(msg),
            429 => CliError::rate_limited(retry_after.unwrap_or(1)),
            400..=499 => CliError::invalid(msg),
            _ => CliError::server(msg),
        })
    }
}

/// An error and its sources on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        let m = src.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = src.source();
    }
    s
}

/// The raw-body output: printed verbatim (the "CLI printing junk" case).
fn raw_output(body: String) -> String {
    if body.ends_with('\n') {
        body
    } else {
        body + "\n"
    }
}

/// A string field of a JSON object, or "" (numbers are rendered).
fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => one_line(s),
        Some(Value::Null) | None => String::new(),
        Some(other) => one_line(&other.to_string()),
    }
}

fn expect_object(v: &Value) -> Result<(), CliError> {
    if v.is_object() {
        Ok(())
    } else {
        Err(CliError::server(
            "unexpected response from the API (expected a JSON object)",
        ))
    }
}

/// The `worker describe` rendering: pretty JSON with a fixed key order.
fn describe_json(v: &Value) -> String {
    let mut m = Map::new();
    for key in [
        "id",
        "name",
        "status",
        "type",
        "image",
        "region",
        "network",
        "ip",
        "created_at",
    ] {
        m.insert(key.to_owned(), v.get(key).cloned().unwrap_or(Value::Null));
    }
    let mut s = serde_json::to_string_pretty(&Value::Object(m)).unwrap_or_default();
    s.push('\n');
    s
}

fn authed_api(env: &Env) -> Result<Api, CliError> {
    let cfg = load_config(env)?;
    let key = env
        .api_key
        .clone()
        .or_else(|| cfg.api_key.clone())
        .ok_or_else(|| {
            CliError::auth(
                "no API key configured (set CLOUDCO_API_KEY or run 'cloudco-cli auth configure')",
            )
        })?;
    Api::new(env, &cfg, Some(key))
}

fn worker_cmd(args: &[String], env: &Env) -> Result<String, CliError> {
    let Some(verb) = args.first() else {
        return Err(CliError::usage("missing worker subcommand"));
    };
    let rest = &args[1..];
    match verb.as_str() {
        "create" => {
            let ctx = "worker create";
            let f = Flags::parse(
                rest,
                &["name", "type", "image", "region", "network", "output"],
                ctx,
            )?;
            f.no_positionals(ctx)?;
            let output = f.output(&["text", "json"])?;
            let name = f
                .get("name")
                .ok_or_else(|| CliError::invalid("--name is required for 'worker create'"))?;
            if name.trim().is_empty() {
                return Err(CliError::invalid("--name must not be empty"));
            }
            let mut body = Map::new();
            body.insert("name".into(), Value::String(name.to_owned()));
            for key in ["type", "image", "region", "network"] {
                if let Some(v) = f.get(key) {
                    body.insert(key.into(), Value::String(v.to_owned()));
                }
            }
            let api = authed_api(env)?;
            let v = match api.call(
                reqwest::Method::POST,
                "/instances",
                Some(&Value::Object(body)),
            )? {
                Reply::Raw(s) => return Ok(raw_output(s)),
                Reply::Json(v) => v,
            };
            expect_object(&v)?;
            if output == "json" {
                return Ok(describe_json(&v));
            }
            Ok(format!(
                "Worker created successfully\nWorker ID: {}\nName: {}\nType: {}\nImage: {}\nRegion: {}\nIP Address: {}\nStatus: {}\n",
                text(&v, "id"),
                text(&v, "name"),
                text(&v, "type"),
                text(&v, "image"),
                text(&v, "region"),
                text(&v, "ip"),
                text(&v, "status"),
            ))
        }
        "list" | "ls" => {
            let ctx = "worker list";
            let f = Flags::parse(rest, &["region", "output"], ctx)?;
            f.no_positionals(ctx)?;
            f.output(&["json"])?;
            let region = f.get("region").filter(|r| !r.is_empty());
            let path = match region {
                Some(r) => format!("/instances?region={}", percent_encode(r)),
                None => "/instances".to_owned(),
            };
            let api = authed_api(env)?;
            let v = match api.call(reqwest::Method::GET, &path, None)? {
                Reply::Raw(s) => return Ok(raw_output(s)),
                Reply::Json(v) => v,
            };
            let Value::Array(items) = v else {
                return Err(CliError::server(
                    "unexpected response from the API (expected a JSON array)",
                ));
            };
            let lines: Vec<String> = items
                .iter()
                .filter(|w| region.is_none_or(|r| w.get("region").and_then(Value::as_str) == Some(r)))
                .map(|w| {
                    let field = |k: &str| {
                        serde_json::to_string(&text(w, k)).unwrap_or_else(|_| "\"\"".to_owned())
                    };
                    format!(
                        "  {{\"id\": {}, \"name\": {}, \"status\": {}, \"type\": {}, \"region\": {}}}",
                        field("id"),
                        field("name"),
                        field("status"),
                        field("type"),
                        field("region"),
                    )
                })
                .collect();
            let mut out = String::from("[\n");
            if !lines.is_empty() {
                out.push_str(&lines.join(",\n"));
                out.push('\n');
            }
            out.push_str("]\n");
            Ok(out)
        }
        "describe" | "get" | "show" => {
            let ctx = "worker describe";
            let f = Flags::parse(rest, &["region", "output"], ctx)?;
            let id = f.worker_id(ctx)?;
            f.output(&["json"])?;
            let api = authed_api(env)?;
            let path = format!("/instances/{}", percent_encode(&id));
            match api.call(reqwest::Method::GET, &path, None)? {
                Reply::Raw(s) => Ok(raw_output(s)),
                Reply::Json(v) => {
                    expect_object(&v)?;
                    Ok(describe_json(&v))
                }
            }
        }
        "delete" | "rm" | "start" | "stop" | "reboot" => {
            let (ctx, method, suffix, done) = match verb.as_str() {
                "start" => ("worker start", reqwest::Method::POST, "/start", "started"),
                "stop" => ("worker stop", reqwest::Method::POST, "/stop", "stopped"),
                "reboot" => (
                    "worker reboot",
                    reqwest::Method::POST,
                    "/reboot",
                    "rebooted",
                ),
                _ => ("worker delete", reqwest::Method::DELETE, "", "deleted"),
            };
            let f = Flags::parse(rest, &["region"], ctx)?;
            let id = f.worker_id(ctx)?;
            let api = authed_api(env)?;
            let path = format!("/instances/{}{suffix}", percent_encode(&id));
            match api.call(method, &path, None)? {
                Reply::Raw(s) => Ok(raw_output(s)),
                Reply::Json(_) => Ok(format!("Worker {done} successfully\n")),
            }
        }
        other => Err(CliError::usage(format!(
            "unknown worker subcommand '{other}'"
        ))),
    }
}

fn auth_cmd(args: &[String], env: &Env) -> Result<String, CliError> {
    let Some(verb) = args.first() else {
        return Err(CliError::usage("missing auth subcommand"));
    };
    let rest = &args[1..];
    match verb.as_str() {
        "configure" => {
            let ctx = "auth configure";
            let f = Flags::parse(rest, &["api-key", "project"], ctx)?;
            f.no_positionals(ctx)?;
            let key = f
                .get("api-key")
                .filter(|k| !k.trim().is_empty())
                .ok_or_else(|| CliError::invalid("--api-key is required for 'auth configure'"))?
                .trim()
                .to_owned();
            let project = f
                .get("project")
                .filter(|p| !p.trim().is_empty())
                .unwrap_or("default")
                .to_owned();
            let path = env.config_path().ok_or_else(|| {
                CliError::invalid(
                    "cannot locate the config directory: set CLOUDCO_CONFIG_DIR or HOME",
                )
            })?;
            // An unreadable or corrupt existing config is replaced by this one.
            let old = load_config(env).unwrap_or_default();
            let api = Api::new(env, &old, Some(key.clone()))?;
            let v = match api.call(reqwest::Method::GET, "/auth/check", None)? {
                Reply::Raw(s) => return Ok(raw_output(s)),
                Reply::Json(v) => v,
            };
            if v.get("authenticated").and_then(Value::as_bool) != Some(true) {
                return Err(CliError::auth("the API key was rejected by the server"));
            }
            let cfg = Config {
                api_key: Some(key),
                project: Some(project.clone()),
                api_url: Some(api.base.clone()),
            };
            save_config(&path, &cfg)
                .map_err(|e| CliError::server(format!("cannot write {}: {e}", path.display())))?;
            Ok(format!(
                "Authentication configured successfully\nAccount ID: {}\n",
                account_id(&project)
            ))
        }
        "status" | "validate" => {
            let ctx = if verb == "status" {
                "auth status"
            } else {
                "auth validate"
            };
            let f = Flags::parse(rest, &[], ctx)?;
            f.no_positionals(ctx)?;
            let cfg = load_config(env)?;
            let Some(key) = env.api_key.clone().or_else(|| cfg.api_key.clone()) else {
                return Ok("Authentication Status: unauthenticated\n".to_owned());
            };
            let api = Api::new(env, &cfg, Some(key))?;
            let v = match api.call(reqwest::Method::GET, "/auth/check", None)? {
                Reply::Raw(s) => return Ok(raw_output(s)),
                Reply::Json(v) => v,
            };
            if v.get("authenticated").and_then(Value::as_bool) != Some(true) {
                return Ok("Authentication Status: invalid\n".to_owned());
            }
            let project = cfg.project.as_deref().unwrap_or("default");
            Ok(format!(
                "Authentication Status: authenticated\nUsername: {}\nAccount ID: {}\n",
                text(&v, "username"),
                account_id(project)
            ))
        }
        other => Err(CliError::usage(format!(
            "unknown auth subcommand '{other}'"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env {
            api_url: None,
            api_key: None,
            config_dir: None,
            home: None,
            timeout: Duration::from_secs(1),
        }
    }

    fn run_args(args: &[&str]) -> Outcome {
        let mut v = vec![OsString::from("cloudco-cli")];
        v.extend(args.iter().map(OsString::from));
        run(v.into_iter().skip(1).collect(), &env())
    }

    #[test]
    fn version_and_usage() {
        let o = run_args(&["--version"]);
        assert_eq!(
            (o.code, o.stdout.as_str()),
            (0, "cloudco-cli version 1.4.2\n")
        );
        let o = run_args(&[]);
        assert_eq!(o.code, 2);
        assert!(
            o.stderr
                .starts_with("Error: invalid argument: no command given\n")
        );
        let o = run_args(&["frobnicate"]);
        assert_eq!(o.code, 2);
        assert!(o.stderr.contains("Usage: cloudco-cli"));
    }

    #[test]
    fn flag_errors_exit_2() {
        for args in [
            &["worker", "create", "--bogus", "x"][..],
            &["worker", "create", "--name"],
            &["worker", "create", "--name", "a", "--name", "b"],
            &["worker", "create", "--type", "t"],
            &["worker", "describe"],
            &["worker", "describe", "a", "b"],
            &["worker", "list", "--output", "yaml"],
            &["worker", "create", "-n", "x"],
            &["workers"],
            &["auth", "configure"],
        ] {
            let o = run_args(args);
            assert_eq!(o.code, 2, "{args:?}: {}", o.stderr);
            assert!(
                o.stderr.starts_with("Error: invalid argument"),
                "{args:?}: {}",
                o.stderr
            );
        }
    }

    #[test]
    fn non_utf8_argv_is_an_error_not_a_panic() {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            let o = run(vec![OsString::from_vec(vec![0xff, 0xfe])], &env());
            assert_eq!(o.code, 2);
        }
    }

    #[test]
    fn missing_server_and_key() {
        let o = run_args(&["worker", "list"]);
        assert_eq!(o.code, 3, "{}", o.stderr);
        let o = run_args(&["auth", "status"]);
        assert_eq!(
            (o.code, o.stdout.as_str()),
            (0, "Authentication Status: unauthenticated\n")
        );
    }

    #[test]
    fn account_ids_are_stable() {
        assert_eq!(account_id("p1"), account_id("p1"));
        assert_ne!(account_id("p1"), account_id("p2"));
        assert_eq!(account_id("x").len(), 13);
    }
}
