//! The execution gate: every command and HTTP request of every provider passes through
//! [`Gate`], which owns the capability check, the environment policy, timeouts, output caps,
//! TLS settings, the redirect policy (each hop checked) and error classification.
//!
//! Who asks is a [`Scope`]: a provider with a capability set (a component's grants; later,
//! approved patterns for JSON providers) may run only what the set allows, with a scrubbed
//! environment; a provider without one runs what its file names with cpi's environment.

use std::sync::Arc;
use std::time::Duration;

use super::command::{self, ProcessOutput, RawOutput};
use super::http::{self, Clients, HttpResponse, RawResponse, Request};
use super::{ErrorRules, Limits};
use crate::error::{Error, ErrorKind, Result};
use crate::policy::Capabilities;
use crate::provider::AcceptExit;

/// Variables every command of a provider with a capability set gets from cpi's environment
/// (besides the ones granted): where programs are, and the locale and time zone they print in.
pub const BASE_ENV: [&str; 5] = ["PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ"];

/// Request headers a provider may not set: the connection's own (cpi sets `Host` from the
/// URL and frames the body itself), so a granted address cannot reach another virtual host
/// or smuggle a second request.
pub const FORBIDDEN_HEADERS: [&str; 10] = [
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "expect",
];

/// The one executor of commands and HTTP requests, shared by every call of an engine.
#[derive(Debug, Clone)]
pub struct Gate {
    limits: Limits,
    env: Arc<Vec<(String, String)>>,
    http: Clients,
}

/// Who is asking, and under which rules.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Provider name, for logs and errors.
    pub provider: String,
    /// What the provider may run and reach; `None`: what its own file names (a JSON
    /// provider's targets, written by the user who runs them).
    pub grants: Option<Capabilities>,
    /// Names of the environment variables granted to the provider's commands (used only with
    /// `grants`; never a dynamic loader's `LD_*` / `DYLD_*`).
    pub env: Vec<String>,
}

/// One command as the gate runs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Command<'a> {
    /// Program and arguments (no shell).
    pub argv: &'a [String],
    /// Bytes written to stdin, which is otherwise closed.
    pub stdin: Option<&'a [u8]>,
    /// A shorter deadline than the gate's own, if the caller wants one.
    pub timeout: Option<Duration>,
}

impl Gate {
    /// A gate with `limits`; no HTTP client is built until a request needs one.
    pub fn new(limits: Limits) -> Gate {
        let connect = limits.timeout.min(Duration::from_secs(10));
        Gate {
            limits,
            env: Arc::default(),
            http: Clients::new(connect),
        }
    }

    /// Extra variables for every command: added to cpi's environment for a provider without
    /// a capability set; for one with a set, the values its granted names take first.
    pub fn with_env(mut self, env: Vec<(String, String)>) -> Gate {
        self.env = Arc::new(env);
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Checks a command against the scope's capability set (if it has one).
    pub fn check_command(&self, scope: &Scope, argv: &[String]) -> Result<()> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| Error::validation("empty command"))?;
        match &scope.grants {
            Some(grants) => grants.check_command(program, args),
            None => Ok(()),
        }
    }

    /// Checks a request against the scope's capability set: the URL's origin, and headers
    /// that belong to the connection (refused for every provider).
    pub fn check_request(&self, scope: &Scope, req: &Request<'_>) -> Result<()> {
        if let Some((name, _)) = req.headers.iter().find(|(name, _)| {
            FORBIDDEN_HEADERS
                .iter()
                .any(|f| name.eq_ignore_ascii_case(f))
        }) {
            let kind = match scope.grants {
                Some(_) => ErrorKind::CapabilityDenied,
                None => ErrorKind::Validation,
            };
            return Err(Error::new(
                kind,
                format!(
                    "a request may not set the HTTP header {name:?}: cpi sets the connection's \
                     own headers (Host from the URL, the body's framing) itself"
                ),
            )
            .with_detail("header", name.as_str()));
        }
        let Some(grants) = &scope.grants else {
            return Ok(());
        };
        let url = url::Url::parse(req.url)
            .map_err(|e| Error::validation(format!("invalid URL {:?}: {e}", req.url)))?;
        grants.check_url(&url)
    }

    /// Runs a command to completion (any exit status) after the scope's checks.
    pub async fn command_raw(&self, scope: &Scope, cmd: &Command<'_>) -> Result<RawOutput> {
        self.check_command(scope, cmd.argv)?;
        let mut limits = self.limits.clone();
        if let Some(timeout) = cmd.timeout {
            limits.timeout = limits.timeout.min(timeout);
        }
        let env = self.environment(scope);
        let spec = command::Spec {
            argv: cmd.argv,
            env: &env,
            inherit_env: scope.grants.is_none(),
            stdin: cmd.stdin,
        };
        command::run_raw(&spec, &limits).await
    }

    /// Runs a provider's command target: a non-zero exit (unless `accept` names it) is the
    /// categorized error its output stands for (by the provider's `errors` first).
    pub async fn command(
        &self,
        scope: &Scope,
        argv: &[String],
        accept: &[AcceptExit],
        errors: &ErrorRules,
    ) -> Result<ProcessOutput> {
        let cmd = Command {
            argv,
            ..Command::default()
        };
        let raw = self.command_raw(scope, &cmd).await?;
        command::finish(&argv[0], raw, accept, errors)
    }

    /// Sends a request after the scope's checks and returns the answer whatever its status.
    pub async fn fetch(&self, scope: &Scope, req: &Request<'_>) -> Result<RawResponse> {
        self.check_request(scope, req)?;
        if req.tls.accept_invalid_certs {
            tracing::warn!(
                "{}: verify_ssl is false: the server's TLS certificate is not checked",
                scope.provider
            );
        }
        self.http
            .fetch(req, scope.grants.as_ref(), &self.limits)
            .await
    }

    /// Sends a provider's endpoint request: a non-2xx answer is the categorized error its
    /// status and body stand for (by the provider's `errors` first).
    pub async fn send(
        &self,
        scope: &Scope,
        req: &Request<'_>,
        errors: &ErrorRules,
    ) -> Result<HttpResponse> {
        let raw = self.fetch(scope, req).await?;
        http::check(&format!("{} {}", req.method, req.url), raw, errors)
    }

    /// The variables a command of `scope` gets on top of what it inherits: the gate's own for
    /// a provider without a capability set (which inherits cpi's environment); for one with
    /// a set, [`BASE_ENV`] and the granted names, from the gate's values or cpi's
    /// environment, never a dynamic loader's.
    fn environment(&self, scope: &Scope) -> Vec<(String, String)> {
        if scope.grants.is_none() {
            return self.env.to_vec();
        }
        let loader = |name: &str| {
            let upper = name.to_ascii_uppercase();
            upper.starts_with("LD_") || upper.starts_with("DYLD_")
        };
        BASE_ENV
            .iter()
            .copied()
            .chain(scope.env.iter().map(String::as_str))
            .filter(|name| !name.is_empty() && !name.contains(['=', '\0']) && !loader(name))
            .filter_map(|name| {
                let given = self.env.iter().find(|(k, _)| k == name).map(|(_, v)| v);
                let value = given.cloned().or_else(|| std::env::var(name).ok())?;
                Some((name.to_string(), value))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    fn sandboxed(rules: &[&str], env: &[&str]) -> Scope {
        Scope {
            provider: "p".into(),
            grants: Some(Capabilities {
                commands: rules
                    .iter()
                    .map(|r| crate::policy::CommandRule::parse(r).unwrap())
                    .collect(),
                http: vec![],
                ..Capabilities::default()
            }),
            env: env.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[tokio::test]
    async fn a_scope_with_grants_runs_only_granted_commands_with_a_scrubbed_environment() {
        let gate = Gate::new(Limits::default()).with_env(vec![
            ("GRANTED_VAR".into(), "yes".into()),
            ("OTHER_VAR".into(), "no".into()),
            ("LD_PRELOAD".into(), "/tmp/evil.so".into()),
        ]);
        let scope = sandboxed(&["env"], &["GRANTED_VAR", "LD_PRELOAD"]);
        let err = gate
            .command(&scope, &argv(&["touch", "x"]), &[], &ErrorRules::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CapabilityDenied, "{err}");
        let out = gate
            .command(&scope, &argv(&["env"]), &[], &ErrorRules::default())
            .await
            .unwrap();
        let names: Vec<&str> = out
            .stdout
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            .collect();
        assert!(names.contains(&"GRANTED_VAR"), "{names:?}");
        assert!(
            names
                .iter()
                .all(|n| *n == "GRANTED_VAR" || BASE_ENV.contains(n)),
            "{names:?}"
        );
        // Without a capability set, the provider's own targets run with cpi's environment.
        let open = Scope::default();
        let out = gate
            .command(&open, &argv(&["env"]), &[], &ErrorRules::default())
            .await
            .unwrap();
        assert!(out.stdout.contains("OTHER_VAR=no"), "{}", out.stdout);
    }

    #[tokio::test]
    async fn connection_headers_and_ungranted_origins_are_refused_before_sending() {
        let gate = Gate::new(Limits::default());
        let tls = http::Tls::default();
        let host = [("Host".to_string(), "internal.example".to_string())];
        let req = Request {
            method: "GET",
            url: "http://127.0.0.1:9/x",
            headers: &host,
            body: None,
            tls: &tls,
        };
        let err = gate.fetch(&Scope::default(), &req).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Validation, "{err}");
        let scope = sandboxed(&[], &[]);
        let err = gate.fetch(&scope, &req).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CapabilityDenied, "{err}");
        let plain = Request {
            headers: &[],
            ..req
        };
        let err = gate.fetch(&scope, &plain).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CapabilityDenied, "{err}");
        assert!(err.message().contains("127.0.0.1:9"), "{err}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_marked_transient() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/x", listener.local_addr().unwrap());
        drop(listener);
        let gate = Gate::new(Limits::default());
        let tls = http::Tls::default();
        let req = Request {
            method: "GET",
            url: &url,
            headers: &[],
            body: None,
            tls: &tls,
        };
        let err = gate
            .send(&Scope::default(), &req, &ErrorRules::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Provider, "{err}");
        assert!(err.is_transient(), "{err}");
    }
}
