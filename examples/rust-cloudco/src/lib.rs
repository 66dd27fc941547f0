//! `cloudco-wasm`: a cpi provider for the simulated CloudCo cloud, as a WebAssembly component.
//!
//! The component ships its own provider definition (`cloudco-wasm.json`: the §4.1 CloudCo
//! actions with the same `cloudco-cli` command targets as `providers/cloudco.json`), so cpi
//! runs most actions itself, and it hooks in where Rust does better than regexes:
//!
//! - `parse`: `list_workers` output is read with serde (the same fields as the JSON
//!   provider: `id`, `name`, `status`, `type`);
//! - `invoke`: `get_worker` runs entirely here (`cloudco-cli worker describe ID --output
//!   json`, returning `id`, `name`, `status`, `type`, `ip_address`), and `count_workers`, an
//!   action the definition does not have, counts a region's workers;
//! - `map_status`: the simulator's raw statuses (`rebooting` → `starting`, ...);
//! - `invoke` of `fetch_workers`: lists the workers from the CloudCo API at `api_url`
//!   (default: `cpi sim`'s address) with the SDK's wasi:http client
//!   ([`http::Request::fetch`](cpi_guest_sdk::http::Request::fetch)), which cpi checks against
//!   the grants like every other request.
//!
//! It asks to run only `cloudco-cli worker ...` and `cloudco-cli --version` (for
//! `test_install`), and to reach only `http://127.0.0.1:8787/instances`.

use cpi_guest_sdk::prelude::*;
use serde::{Deserialize, Serialize};

/// The provider.
struct CloudCo;

/// The provider definition the component ships.
const DEFINITION: &str = include_str!("../cloudco-wasm.json");

/// The CloudCo API `fetch_workers` asks for by default (`cpi sim`'s address).
const API_URL: &str = "http://127.0.0.1:8787";
/// The part of it the component asks to reach.
const API_PATH: &str = "/instances";

impl Provider for CloudCo {
    fn manifest() -> Manifest {
        Manifest::new("cloudco-wasm", env!("CARGO_PKG_VERSION"))
            .command("cloudco-cli", &["worker", "-**"])
            .command("cloudco-cli", &["--version"])
            .provider_json(DEFINITION)
            .parses(&["list_workers"])
            .invokes(&["get_worker", "count_workers", "fetch_workers"])
            .http(&format!("{API_URL}{API_PATH}"))
            .maps_status()
            .env("CLOUDCO_API_URL", "the CloudCo API cloudco-cli talks to")
            .env("CLOUDCO_API_KEY", "cloudco-cli's API key")
            .parameter(
                Parameter::new("worker_id", ParamType::String)
                    .description("the worker's ID")
                    .pattern("[a-z0-9][a-z0-9-]*"),
            )
    }

    fn parse(action: &str, raw: &str) -> Result<Value> {
        match action {
            "list_workers" => Ok(serde_json::to_value(parse_list(raw)?)?),
            other => Err(Error::unsupported(format!(
                "cloudco-wasm does not parse the output of '{other}'"
            ))),
        }
    }

    fn map_status(raw: &str) -> Status {
        match raw.trim().to_ascii_lowercase().as_str() {
            "provisioning" | "pending" | "creating" => Status::Provisioning,
            "running" => Status::Running,
            "starting" | "rebooting" => Status::Starting,
            "stopping" => Status::Stopping,
            "stopped" => Status::Stopped,
            "terminating" | "deleting" => Status::Terminating,
            "error" | "failed" => Status::Error,
            "suspended" => Status::Suspended,
            _ => Status::Unknown,
        }
    }

    fn invoke(action: &str, params: &Params) -> Result<Value> {
        match action {
            "get_worker" => {
                let id = worker_id(params)?;
                let mut args = vec!["worker", "describe", id];
                if let Some(region) = params.get_opt("region").filter(|r| !r.is_empty()) {
                    args.extend(["--region", region]);
                }
                args.extend(["--output", "json"]);
                let stdout = exec::Command::new("cloudco-cli").args(args).run()?;
                Ok(serde_json::to_value(parse_describe(&stdout)?)?)
            }
            "count_workers" => {
                let region = params.get("region")?;
                let stdout = exec::Command::new("cloudco-cli")
                    .args(["worker", "list", "--region", region, "--output", "json"])
                    .run()?;
                let count = parse_list(&stdout)?.len();
                log::debug!("{count} workers in {region}");
                Ok(json!({ "region": region, "count": count }))
            }
            "fetch_workers" => fetch_workers(params),
            other => Err(Error::unsupported(format!(
                "cloudco-wasm does not invoke '{other}'"
            ))),
        }
    }
}

register_provider!(CloudCo);

/// `GET {api_url}/instances[?region=R]` over wasi:http: the workers' summaries.
fn fetch_workers(params: &Params) -> Result<Value> {
    let base = params
        .get_opt("api_url")
        .filter(|u| !u.is_empty())
        .unwrap_or(API_URL);
    let key = params.get("api_key")?;
    let mut url = format!("{}{API_PATH}", base.trim_end_matches('/'));
    if let Some(region) = params.get_opt("region").filter(|r| !r.is_empty()) {
        url.push_str("?region=");
        url.push_str(&query_value(region));
    }
    let workers: Vec<WorkerSummary> = cpi_guest_sdk::http::Request::new("GET", &url)
        .header("authorization", &format!("Bearer {key}"))
        .header("accept", "application/json")
        .fetch()?
        .json()?;
    Ok(serde_json::to_value(workers)?)
}

/// `value` percent-encoded for a query string (unreserved characters kept).
fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A worker as `list_workers` reports it (the JSON provider's fields).
#[derive(Debug, Deserialize, Serialize, PartialEq)]
struct WorkerSummary {
    id: String,
    name: String,
    status: String,
    #[serde(rename = "type")]
    kind: String,
}

/// A worker as `get_worker` reports it: the summary plus its IP address, when it has one.
#[derive(Debug, Serialize, PartialEq)]
struct WorkerDetail {
    #[serde(flatten)]
    summary: WorkerSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_address: Option<String>,
}

/// `cloudco-cli worker describe ... --output json`: a pretty JSON object with `ip` (and
/// fields this provider does not report).
#[derive(Debug, Deserialize)]
struct Described {
    #[serde(flatten)]
    summary: WorkerSummary,
    #[serde(default)]
    ip: Option<String>,
}

/// `cloudco-cli worker list --output json`: a JSON array, one object per line (blank output
/// is an empty list).
fn parse_list(raw: &str) -> Result<Vec<WorkerSummary>> {
    if raw.trim().is_empty() {
        return Ok(Vec::new());
    }
    Ok(serde_json::from_str(raw)?)
}

fn parse_describe(raw: &str) -> Result<WorkerDetail> {
    let d: Described = serde_json::from_str(raw)?;
    Ok(WorkerDetail {
        summary: d.summary,
        ip_address: d.ip.filter(|ip| !ip.is_empty()),
    })
}

/// The `worker_id` parameter, refused if it could be taken for a flag.
fn worker_id(params: &Params) -> Result<&str> {
    let id = params.get("worker_id")?;
    if id.is_empty() || id.starts_with('-') {
        return Err(Error::validation(format!(
            "parameter 'worker_id' must be a worker ID, not {id:?}"
        )));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"[
  {"id": "w-1a2b", "name": "web-1", "status": "running", "type": "standard-2", "region": "us-central"},
  {"id": "w-3c4d", "name": "db \"main\"", "status": "rebooting", "type": "standard-4", "region": "us-central"}
]
"#;

    const DESCRIBE: &str = r#"{
  "id": "w-1a2b",
  "name": "web-1",
  "status": "running",
  "type": "standard-2",
  "image": "ubuntu-20-04",
  "region": "us-central",
  "network": "default",
  "ip": "10.0.0.7",
  "created_at": 1700000000
}
"#;

    #[test]
    fn manifest_asks_for_exactly_the_cli_and_the_api() {
        let m = CloudCo::manifest();
        assert_eq!(m.name(), "cloudco-wasm");
        let commands: Vec<(&str, Vec<&str>)> = m
            .commands()
            .iter()
            .map(|c| {
                (
                    c.program.as_str(),
                    c.args.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            commands,
            [
                ("cloudco-cli", vec!["worker", "-**"]),
                ("cloudco-cli", vec!["--version"])
            ]
        );
        assert_eq!(m.http_destinations(), ["http://127.0.0.1:8787/instances"]);
        let definition: Value = serde_json::from_str(m.provider_definition().unwrap()).unwrap();
        assert_eq!(definition["name"], "cloudco-wasm");
        for action in m.parsed_actions().iter().chain(&m.invoked_actions()[..1]) {
            assert!(definition["actions"].get(action).is_some(), "{action}");
        }
    }

    #[test]
    fn definition_keeps_the_json_providers_command_targets() {
        let ours: Value = serde_json::from_str(DEFINITION).unwrap();
        let theirs: Value =
            serde_json::from_str(include_str!("../../../providers/cloudco.json")).unwrap();
        let (ours, theirs) = (ours["actions"].as_object().unwrap(), &theirs["actions"]);
        assert_eq!(ours.len(), theirs.as_object().unwrap().len());
        for (name, action) in ours {
            assert_eq!(action["target"], theirs[name]["target"], "{name}");
            assert_eq!(action["params"], theirs[name]["params"], "{name}");
        }
    }

    #[test]
    fn parses_the_worker_list() {
        let parsed = CloudCo::parse("list_workers", LIST).unwrap();
        assert_eq!(
            parsed,
            json!([
                {"id": "w-1a2b", "name": "web-1", "status": "running", "type": "standard-2"},
                {"id": "w-3c4d", "name": "db \"main\"", "status": "rebooting", "type": "standard-4"}
            ])
        );
        assert_eq!(CloudCo::parse("list_workers", "[\n]\n").unwrap(), json!([]));
        assert_eq!(CloudCo::parse("list_workers", "").unwrap(), json!([]));
    }

    #[test]
    fn bad_output_is_a_provider_error() {
        let err = CloudCo::parse("list_workers", "Worker list:\n").unwrap_err();
        assert_eq!(err.category, ErrorCategory::Provider);
        let err = CloudCo::parse("list_workers", r#"[{"id": "w-1"}]"#).unwrap_err();
        assert!(err.message.contains("name"), "{}", err.message);
        let err = CloudCo::parse("get_worker", "{}").unwrap_err();
        assert_eq!(err.category, ErrorCategory::Unsupported);
    }

    #[test]
    fn describes_a_worker_with_its_ip() {
        let detail = serde_json::to_value(parse_describe(DESCRIBE).unwrap()).unwrap();
        assert_eq!(
            detail,
            json!({"id": "w-1a2b", "name": "web-1", "status": "running", "type": "standard-2",
                   "ip_address": "10.0.0.7"})
        );
        let no_ip = DESCRIBE.replace("\"10.0.0.7\"", "null");
        let detail = serde_json::to_value(parse_describe(&no_ip).unwrap()).unwrap();
        assert!(detail.get("ip_address").is_none());
    }

    #[test]
    fn maps_the_simulator_statuses() {
        let cases = [
            ("provisioning", Status::Provisioning),
            ("running", Status::Running),
            ("stopping", Status::Stopping),
            ("stopped", Status::Stopped),
            ("starting", Status::Starting),
            ("rebooting", Status::Starting),
            ("Running", Status::Running),
            ("melting", Status::Unknown),
        ];
        for (raw, want) in cases {
            assert_eq!(CloudCo::map_status(raw), want, "{raw}");
        }
    }

    #[test]
    fn invoke_checks_parameters_before_running_anything() {
        let missing = CloudCo::invoke("get_worker", &Params::new()).unwrap_err();
        assert_eq!(missing.category, ErrorCategory::Validation);
        assert!(
            missing.message.contains("'worker_id'"),
            "{}",
            missing.message
        );
        let flag: Params = [("worker_id", "--output=text")].into_iter().collect();
        let err = CloudCo::invoke("get_worker", &flag).unwrap_err();
        assert_eq!(err.category, ErrorCategory::Validation);
        let err = CloudCo::invoke("count_workers", &Params::new()).unwrap_err();
        assert!(err.message.contains("'region'"), "{}", err.message);
        let err = CloudCo::invoke("delete_worker", &Params::new()).unwrap_err();
        assert_eq!(err.category, ErrorCategory::Unsupported);
    }
}
