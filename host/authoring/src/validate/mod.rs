//! `cpi validate`: a compliance report for a provider file.
//!
//! Errors make a file unusable or non-compliant (bad JSON or schema, missing required methods,
//! placeholders with no possible value, regexes that don't compile, groups beyond the regex,
//! unknown transforms, targets cpi refuses to run). Warnings flag what works but deviates from
//! the standard (unknown fields, unused params, §5 names, §7 parameter names).

//!
//! Each rule is a small check with its test beside it: [`provider::PROVIDER_CHECKS`] for the
//! whole file (required methods, status map, secrets, declarations, ...), and for every
//! action and step [`step::STEP_CHECKS`] (error rules, cache, paging, placeholders, targets,
//! parse rules); [`fields`] reports unknown keys, [`names`] the §5/§7 naming.

mod fields;
mod names;
mod provider;
mod step;

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use cpi::provider::Provider;

pub use names::{standard_action_name, standard_param_name};

/// The required methods of §2.1 (from the contract).
pub use cpi_contract::verbs::REQUIRED_METHODS;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file is unusable or non-compliant.
    Error,
    /// Works, but deviates from the standard or looks like a mistake.
    Warning,
}

/// One problem found in a file.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// Where in the file, as a JSON path (`actions.get_worker.parse_rules.patterns.id`).
    pub path: String,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

/// The compliance report for one file.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The file checked.
    pub file: PathBuf,
    /// The provider name, when the file got that far.
    pub provider: Option<String>,
    /// Every finding, errors first.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count()
    }

    /// An empty report for `file`.
    fn for_file(file: &Path) -> Report {
        Report {
            file: file.to_path_buf(),
            provider: None,
            findings: Vec::new(),
        }
    }

    fn push(&mut self, severity: Severity, path: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Finding {
            severity,
            path: path.into(),
            message: message.into(),
        });
    }
}

/// Validates one file on disk.
pub fn validate_file(path: &Path) -> Report {
    match cpi::fsread::read_string(path, cpi::fsread::Kind::Provider) {
        Ok(text) => validate_text(&text, path),
        Err(err) => {
            let mut report = Report::for_file(path);
            report.push(
                Severity::Error,
                "",
                format!("cannot read file: {}", err.problem),
            );
            report
        }
    }
}

/// Validates provider text; `path` is used for the report.
pub fn validate_text(text: &str, path: &Path) -> Report {
    let mut report = Report::for_file(path);
    let raw: Value = match serde_json::from_str(text) {
        Ok(raw) => raw,
        Err(err) => {
            report.push(
                Severity::Error,
                "",
                format!(
                    "invalid JSON at line {}, column {}: {err}",
                    err.line(),
                    err.column()
                ),
            );
            return report;
        }
    };
    report.provider = raw.get("name").and_then(Value::as_str).map(str::to_string);
    fields::unknown_fields(&raw, &mut report);
    let provider = match Provider::from_json(text, path) {
        Ok(p) => p,
        Err(err) => {
            let at = err
                .details()
                .get("json_path")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            report.push(Severity::Error, at, err.message().to_string());
            return finish(report);
        }
    };
    for check in provider::PROVIDER_CHECKS {
        check(&provider, &mut report);
    }
    check_request(&provider, &mut report);
    finish(report)
}

/// What the review screen flags (shells given scripts, runners, downloads run, fixed temp
/// paths, programs by path) as warnings; a program or origin a parameter chooses as an error.
fn check_request(provider: &Provider, report: &mut Report) {
    match cpi::request::derive(provider) {
        Ok(request) => {
            for (at, message) in request.warnings() {
                report.push(Severity::Warning, format!("actions.{at}.target"), message);
            }
        }
        Err(err) => {
            // A template the target checks already refused is not reported a second time.
            let known = report.findings.iter().any(|f| {
                f.severity == Severity::Error && err.message().ends_with(f.message.as_str())
            });
            if known {
                return;
            }
            let at = err
                .details()
                .get("action")
                .and_then(Value::as_str)
                .map(|a| format!("actions.{a}.target"))
                .unwrap_or_else(|| "env".into());
            report.push(Severity::Error, at, err.message().to_string());
        }
    }
}

fn finish(mut report: Report) -> Report {
    report.findings.sort_by_key(|f| f.severity);
    report
}

/// Every `*.json` file under the given paths (files as given, directories one level deep).
pub fn expand_paths(paths: &[PathBuf]) -> cpi::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(cpi::provider::provider_files(path)?);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(text: &str) -> Report {
        validate_text(text, Path::new("t.json"))
    }

    #[test]
    fn reports_missing_methods_bad_regexes_and_undeclared_placeholders() {
        let r = report(
            r#"{"name":"t","type":"command","actions":{
            "get_worker":{"target":{"Command":"cli get {worker_id} {zone}"},"params":["worker_id","unused"],
              "parse_rules":{"type":"object","patterns":{"id":{"regex":"(x","group":1},
              "n":{"regex":"(a)","group":3},"t":{"regex":"a","transform":"upper"}}},"extra":1}}}"#,
        );
        let text = format!("{:#?}", r.findings);
        assert!(text.contains("required method 'create_worker'"), "{text}");
        assert!(text.contains("placeholder {zone}"), "{text}");
        assert!(text.contains("invalid regex"), "{text}");
        assert!(text.contains("group 3"), "{text}");
        assert!(text.contains("unknown transform"), "{text}");
        assert!(
            text.contains("'unused' is declared but never used"),
            "{text}"
        );
        assert!(text.contains("actions.get_worker.extra"), "{text}");
        assert_eq!(r.findings[0].severity, Severity::Error);
    }

    #[test]
    fn accept_exit_needs_a_command_a_non_zero_code_and_a_regex() {
        let r = report(
            r#"{"name":"t","type":"command","actions":{
              "list_snapshots":{"target":{"Command":"vbox list"},
                "accept_exit":[{"code":1,"when":"no snapshots"},{"code":0,"when":"(x"}]},
              "list_disks":{"target":{"Endpoint":{"url":"https://x/d","method":"Get"}},
                "accept_exit":[{"code":1,"when":"none"}]}}}"#,
        );
        let at = |path: &str| -> Vec<String> {
            r.findings
                .iter()
                .filter(|f| f.path == path && f.severity == Severity::Error)
                .map(|f| f.message.clone())
                .collect()
        };
        assert!(at("actions.list_snapshots.accept_exit[0]").is_empty());
        assert!(at("actions.list_snapshots.accept_exit[1]")[0].contains("exit code 0"));
        assert!(at("actions.list_snapshots.accept_exit[1].when")[0].contains("invalid regex"));
        assert!(at("actions.list_disks.accept_exit[0]")[0].contains("command targets only"));
        assert!(
            !format!("{:?}", r.findings).contains("unknown field"),
            "{:?}",
            r.findings
        );
    }

    #[test]
    fn paginate_needs_the_page_in_the_target_a_pointer_and_a_list() {
        let r = report(
            r#"{"name":"t","type":"endpoint","default_settings":{"page":1},"actions":{
              "list_workers":{"target":{"Endpoint":{"url":"https://x/s?page={page}","method":"Get"}},
                "params":["page"],
                "paginate":{"param":"page","next":{"pointer":"/meta/next_page"}},
                "parse_rules":{"type":"json","items":"/servers","patterns":{"id":{"pointer":"/id"}}}},
              "list_disks":{"target":{"Endpoint":{"url":"https://x/d","method":"Get"}},
                "paginate":{"param":"page","next":{"regex":"next=(\\d+)"}},
                "parse_rules":{"type":"json","patterns":{"id":{"pointer":"/id"}}}}}}"#,
        );
        let errors = |prefix: &str| -> Vec<String> {
            r.findings
                .iter()
                .filter(|f| f.path.starts_with(prefix) && f.severity == Severity::Error)
                .map(|f| format!("{}: {}", f.path, f.message))
                .collect()
        };
        assert!(
            errors("actions.list_workers").is_empty(),
            "{:?}",
            r.findings
        );
        let disks = errors("actions.list_disks.paginate").join("\n");
        assert!(disks.contains("does not use {page}"), "{:#?}", r.findings);
        assert!(disks.contains("pointer"), "{disks}");
        assert!(disks.contains("must make a list"), "{disks}");
    }

    #[test]
    fn tls_defaults_are_checked() {
        let finding = |verify: &str| {
            let r = report(&format!(
                r#"{{"name":"t","type":"endpoint","default_settings":{{"verify_ssl":"{verify}"}},
                    "actions":{{}}}}"#
            ));
            r.findings
                .into_iter()
                .find(|f| f.path == "default_settings.verify_ssl")
                .map(|f| (f.severity, f.message))
        };
        assert_eq!(finding("true"), None);
        let (severity, message) = finding("off").unwrap();
        assert_eq!(severity, Severity::Warning);
        assert!(message.contains("ca_cert_file"), "{message}");
        let (severity, message) = finding("sometimes").unwrap();
        assert_eq!(severity, Severity::Error);
        assert!(message.contains("\"sometimes\""), "{message}");
    }

    #[test]
    fn declarations_that_cannot_be_met_or_that_defaults_break_are_errors() {
        let r = report(
            r#"{"name":"t","type":"command","secrets":["k"],
                "default_settings":{"n":0,"m":"c","d":"-1"},
                "parameters":{
                  "n":{"type":"integer","min":1},
                  "m":{"enum":["a","b"]},
                  "e":{"enum":[]},
                  "r":{"pattern":"("},
                  "b":{"type":"boolean","max":1},
                  "x":{"type":"integer","min":5,"max":1},
                  "y":{"enum":["ok","NO"],"pattern":"[a-z]+"},
                  "k":{"secret":false},
                  "bad name":{},
                  "ok":{"type":"number","description":"fine","bogus":1}
                },
                "actions":{"a":{"target":{"Command":"x {n} {m} {d}"},"params":["n","m","d"],
                  "default_settings":{"m":"z"}}}}"#,
        );
        let errors: Vec<(String, String)> = r
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| (f.path.clone(), f.message.clone()))
            .collect();
        let text = format!("{errors:#?}");
        for path in [
            "default_settings.n",
            "default_settings.m",
            "actions.a.default_settings.m",
            "parameters.e.enum",
            "parameters.r.pattern",
            "parameters.b.type",
            "parameters.x.min",
            "parameters.y.enum[1]",
            "parameters.k.secret",
            "parameters.bad name",
            "actions.a",
        ] {
            assert!(
                errors.iter().any(|(p, _)| p == path),
                "{path} missing: {text}"
            );
        }
        assert!(!text.contains("parameters.ok"), "{text}");
        assert!(
            r.findings
                .iter()
                .any(|f| f.path == "parameters.ok.bogus" && f.severity == Severity::Warning),
            "{:#?}",
            r.findings
        );
    }

    #[test]
    fn not_secret_is_a_known_key_and_contradictions_are_errors() {
        let r = report(
            r#"{"name":"t","type":"command","secrets":["token_name"],
                "not_secret":["token_name","ok_token"],"actions":{}}"#,
        );
        let text = format!("{:#?}", r.findings);
        assert!(!text.contains("unknown"), "{text}");
        assert!(
            r.findings.iter().any(|f| f.severity == Severity::Error
                && f.path == "not_secret"
                && f.message.contains("'token_name'")),
            "{text}"
        );
        assert!(!text.contains("'ok_token'"), "{text}");
    }

    #[test]
    fn schema_errors_carry_the_json_path() {
        let r = report(
            r#"{"name":"t","type":"command","actions":{"a":{"target":{"Endpoint":{"url":1,"method":"Get"}}}}}"#,
        );
        assert_eq!(r.errors(), 1);
        assert_eq!(r.findings[0].path, "actions.a.target.Endpoint.url");
    }

    #[test]
    fn steps_run_with_the_actions_values() {
        // OmniCloud's vmware-esxi create_worker: the post_exec step uses the action's param and
        // the field the step before it parsed; neither is a missing value.
        let r = report(
            r#"{"name":"t","type":"command","actions":{
            "create_worker":{"target":{"Command":"vim-cmd create {worker_name}"},"params":["worker_name"],
              "post_exec":[
                {"target":{"Command":"vim-cmd find {worker_name}"},
                 "parse_rules":{"type":"object","patterns":{"vmid":{"regex":"(\\d+)"}}}},
                {"target":{"Command":"vim-cmd devices {vmid} {nowhere}"}}]}}}"#,
        );
        let text = format!("{:#?}", r.findings);
        assert!(!text.contains("{worker_name}"), "{text}");
        assert!(!text.contains("{vmid}"), "{text}");
        assert!(
            r.findings.iter().any(|f| f.severity == Severity::Error
                && f.path == "actions.create_worker.post_exec[1].target"
                && f.message.contains("{nowhere}")),
            "{text}"
        );
    }

    #[test]
    fn names_point_at_the_standard_equivalent() {
        let r = report(
            r#"{"name":"t","type":"command","actions":{
            "power_on_worker":{"target":{"Command":"x"},"params":["instance_id","instance_id"]},
            "restart_service":{"target":{"Command":"x"}},
            "create_disk":{"target":{"Command":"x create {tags_param}"},"default_settings":{"tags_param":""}}}}"#,
        );
        let find = |path: &str| -> Vec<&str> {
            r.findings
                .iter()
                .filter(|f| f.path == path)
                .map(|f| f.message.as_str())
                .collect()
        };
        let all = format!("{:#?}", r.findings);
        assert!(all.contains("required method 'start_worker' is missing (§2.1); action 'power_on_worker' looks like it"), "{all}");
        assert!(find("actions.power_on_worker")[0].contains("the standard name is 'start_worker'"));
        assert!(
            !find("actions.restart_service")[0].contains("reboot"),
            "{all}"
        );
        assert!(find("actions.power_on_worker.params[0]")[0].contains("'worker_id' (§7)"));
        assert!(find("actions.power_on_worker.params[1]")[0].contains("listed more than once"));
        let cmd = find("actions.create_disk.target.Command");
        assert!(
            cmd[0].contains("{tags_param} is a whole argument")
                && cmd[0].contains("empty argument"),
            "{all}"
        );
    }
}
