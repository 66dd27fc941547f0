//! Turns an action's target template plus resolved values into a concrete [`Invocation`]:
//! an argv or an HTTP request. Nothing here has side effects; [`crate::exec`] runs the result.

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::provider::{Method, Target};
use crate::secret::Redactor;
use crate::template::{self, BodyKind, Values};

/// A fully substituted call, ready to execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Run `argv[0]` with `argv[1..]`, no shell.
    Command {
        /// Program and arguments.
        argv: Vec<String>,
    },
    /// Send one HTTP request.
    Http {
        /// The HTTP method.
        method: Method,
        /// The absolute URL.
        url: String,
        /// Headers in file order.
        headers: Vec<(String, String)>,
        /// The body, if any.
        body: Option<String>,
    },
}

/// Substitutes `values` into `target`; `allows_dash(name)` says which parameters may begin a
/// command word with `-` ([`template::command_argv_with`]).
pub fn build(
    target: &Target,
    values: &Values,
    allows_dash: &dyn Fn(&str) -> bool,
) -> Result<Invocation> {
    match target {
        Target::Command(cmd) => {
            if cmd.in_vm {
                return Err(Error::unsupported(
                    "\"in_vm\": true (run the command over SSH inside the worker) is not \
                     supported by cpi; only host-side commands run",
                )
                .with_detail("feature", "in_vm"));
            }
            Ok(Invocation::Command {
                argv: template::command_argv_with(&cmd.command, values, allows_dash)?,
            })
        }
        Target::Endpoint(ep) => {
            let url = template::url(&ep.url, values)?;
            let mut headers = Vec::with_capacity(ep.headers.len());
            let mut kind = BodyKind::Json;
            for (name, value) in &ep.headers {
                let name = template::header(name, values)?;
                let value = template::header(value, values)?;
                if name.eq_ignore_ascii_case("content-type")
                    && value.to_ascii_lowercase().contains("x-www-form-urlencoded")
                {
                    kind = BodyKind::Form;
                }
                headers.push((name, value));
            }
            let body = ep
                .body
                .as_deref()
                .map(|b| template::body(b, values, kind))
                .transpose()?;
            Ok(Invocation::Http {
                method: ep.method.clone(),
                url,
                headers,
                body,
            })
        }
    }
}

impl Invocation {
    /// A JSON description for `--dry-run`, with secrets redacted.
    pub fn describe(&self, redactor: &Redactor) -> Value {
        let mut value = match self {
            Invocation::Command { argv } => json!({"type": "command", "argv": argv}),
            Invocation::Http {
                method,
                url,
                headers,
                body,
            } => {
                let headers: serde_json::Map<String, Value> = headers
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect();
                json!({"type": "http", "method": method.wire_name(), "url": url,
                       "headers": headers, "body": body})
            }
        };
        redactor.redact_json(&mut value);
        value
    }
}
