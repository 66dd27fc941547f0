//! Capabilities: what a sandboxed component may do, checked on every host call.
//!
//! Deny by default. A [`Capabilities`] value allows nothing until rules are added:
//! - a [`CommandRule`] allows one program with an argument pattern: each pattern element is an
//!   exact string, `*` (exactly one argument that is not an option), `PREFIX*` with a `PREFIX`
//!   starting with `-` (one argument starting with it: `-*` any option, `--output=*` any
//!   `--output=` value) or, last, `**` (any remaining arguments that are not options, including
//!   none) or `-**` (any remaining arguments, options included). An option is an argument
//!   starting with `-`: a wildcard without a dash of its own never passes `--api-url=...` or
//!   `--endpoint-url=...` to a CLI;
//! - an [`HttpRule`] allows one `scheme://host:port` and, optionally, only paths under a prefix
//!   (matched on whole segments: `/v1` allows `/v1` and `/v1/x`, not `/v10`).
//!
//! A component's manifest *requests* rules; the user *grants* a subset. A grant can never exceed
//! the request: [`Capabilities::check_within`] enforces it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// Permission to run one program with arguments matching a pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CommandRule {
    /// The program, exactly as the component passes it (no path search tricks: `ls` and
    /// `/bin/ls` are different programs).
    pub program: String,
    /// Argument patterns.
    pub args: Vec<String>,
}

impl CommandRule {
    /// Parses the CLI form: `program arg-pattern...` (whitespace-separated).
    pub fn parse(text: &str) -> Result<CommandRule> {
        let mut words = text.split_whitespace().map(str::to_string);
        let program = words
            .next()
            .ok_or_else(|| Error::validation("an empty command capability"))?;
        let rule = CommandRule {
            program,
            args: words.collect(),
        };
        rule.check()?;
        Ok(rule)
    }

    /// Checks the pattern is well formed (`**` only last).
    pub fn check(&self) -> Result<()> {
        if self.program.is_empty() || self.program.contains(['*', '\0']) {
            return Err(Error::validation(format!(
                "invalid program in capability {self}"
            )));
        }
        if let Some(pos) = self.args.iter().position(|a| a == "**" || a == "-**")
            && pos != self.args.len() - 1
        {
            return Err(Error::validation(format!(
                "`{}` must be the last argument pattern in {self}",
                self.args[pos]
            )));
        }
        Ok(())
    }

    /// Whether this rule allows running `program` with `args` (a bare wildcard never matches an
    /// option).
    pub fn allows(&self, program: &str, args: &[String]) -> bool {
        self.matches(program, args, false)
    }

    /// Like [`CommandRule::allows`]; with `options`, bare wildcards match options too.
    fn matches(&self, program: &str, args: &[String], options: bool) -> bool {
        if program != self.program {
            return false;
        }
        let free = |arg: &str| options || !arg.starts_with('-');
        let mut given = args.iter();
        for (i, pattern) in self.args.iter().enumerate() {
            let last = i == self.args.len() - 1;
            match pattern.as_str() {
                "-**" if last => return true,
                "**" if last => return given.all(|a| free(a)),
                _ => {}
            }
            let Some(arg) = given.next() else {
                return false;
            };
            let fits = match pattern.as_str() {
                "*" => free(arg),
                p => match p.strip_suffix('*').filter(|prefix| prefix.starts_with('-')) {
                    Some(prefix) => arg.starts_with(prefix),
                    None => p == arg,
                },
            };
            if !fits {
                return false;
            }
        }
        given.next().is_none()
    }
}

impl fmt::Display for CommandRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.program)?;
        for arg in &self.args {
            write!(f, " {arg}")?;
        }
        Ok(())
    }
}

/// Permission to reach one HTTP origin, optionally under a path prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HttpRule {
    scheme: String,
    host: String,
    port: u16,
    path_prefix: Option<String>,
}

impl HttpRule {
    /// Parses `scheme://host[:port][/path-prefix]` (the port defaults by scheme).
    pub fn parse(text: &str) -> Result<HttpRule> {
        let bad = |why: &str| Error::validation(format!("invalid HTTP capability {text:?}: {why}"));
        let url = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("the scheme must be http or https"));
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(bad("no query, fragment or user info allowed"));
        }
        let host = url
            .host_str()
            .ok_or_else(|| bad("no host"))?
            .to_ascii_lowercase();
        if host.contains('*') {
            return Err(bad("wildcard hosts are not supported; list each host"));
        }
        let port = url.port_or_known_default().ok_or_else(|| bad("no port"))?;
        let path = url.path().trim_end_matches('/');
        let path_prefix = (!path.is_empty()).then(|| path.to_string());
        Ok(HttpRule {
            scheme: url.scheme().to_string(),
            host,
            port,
            path_prefix,
        })
    }

    /// Whether this rule allows a request to `url`.
    pub fn allows(&self, url: &url::Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        if url.scheme() != self.scheme
            || !host.eq_ignore_ascii_case(&self.host)
            || url.port_or_known_default() != Some(self.port)
            || !url.username().is_empty()
        {
            return false;
        }
        match &self.path_prefix {
            None => true,
            Some(prefix) => {
                let path = url.path();
                // Under a prefix, a path whose encoded separators hide a climb (`..%2f`) is
                // refused: a server that decodes first would leave the prefix.
                let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
                !crate::template::climbs(&decoded)
                    && (path == prefix
                        || path
                            .strip_prefix(prefix.as_str())
                            .is_some_and(|rest| rest.starts_with('/')))
            }
        }
    }
}

impl fmt::Display for HttpRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}:{}{}",
            self.scheme,
            self.host,
            self.port,
            self.path_prefix.as_deref().unwrap_or("")
        )
    }
}

impl TryFrom<String> for HttpRule {
    type Error = String;
    fn try_from(text: String) -> std::result::Result<Self, String> {
        HttpRule::parse(&text).map_err(|e| e.message().to_string())
    }
}

impl From<HttpRule> for String {
    fn from(rule: HttpRule) -> String {
        rule.to_string()
    }
}

/// A set of command and HTTP rules: requested by a manifest, or granted by the user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Programs that may run.
    #[serde(default)]
    pub commands: Vec<CommandRule>,
    /// Origins that may be contacted.
    #[serde(default)]
    pub http: Vec<HttpRule>,
    /// Whether bare wildcards (`*`, `**`) also match options: only for a JSON provider's
    /// approved patterns, whose wildcards stand for substituted values that its templates
    /// already refuse to start with `-` (unless a parameter says `allow_leading_dash`).
    #[serde(skip)]
    pub wildcards_match_options: bool,
}

impl Capabilities {
    /// Whether nothing at all is allowed.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty() && self.http.is_empty()
    }

    /// Checks a command; the error names what was refused.
    pub fn check_command(&self, program: &str, args: &[String]) -> Result<()> {
        let options = self.wildcards_match_options;
        if self
            .commands
            .iter()
            .any(|r| r.matches(program, args, options))
        {
            return Ok(());
        }
        let shown: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
        Err(Error::new(
            ErrorKind::CapabilityDenied,
            format!(
                "running {program:?} with arguments [{}] was not granted",
                shown.join(", ")
            ),
        )
        .with_detail("program", program))
    }

    /// Checks an HTTP destination; the error names the origin refused.
    pub fn check_url(&self, url: &url::Url) -> Result<()> {
        if self.http.iter().any(|r| r.allows(url)) {
            return Ok(());
        }
        let origin = format!(
            "{}://{}:{}",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        );
        Err(Error::new(
            ErrorKind::CapabilityDenied,
            format!(
                "HTTP access to {origin} (path {}) was not granted",
                url.path()
            ),
        )
        .with_detail("origin", origin))
    }

    /// Fails unless every rule here is one of `requested`'s: a grant never exceeds a request.
    pub fn check_within(&self, requested: &Capabilities) -> Result<()> {
        for rule in &self.commands {
            if !requested.commands.contains(rule) {
                return Err(Error::new(
                    ErrorKind::CapabilityDenied,
                    format!("cannot grant `{rule}`: the component did not request it"),
                ));
            }
        }
        for rule in &self.http {
            if !requested.http.contains(rule) {
                return Err(Error::new(
                    ErrorKind::CapabilityDenied,
                    format!("cannot grant `{rule}`: the component did not request it"),
                ));
            }
        }
        Ok(())
    }

    /// Adds the rules of `other` not already present.
    pub fn extend(&mut self, other: &Capabilities) {
        for rule in &other.commands {
            if !self.commands.contains(rule) {
                self.commands.push(rule.clone());
            }
        }
        for rule in &other.http {
            if !self.http.contains(rule) {
                self.http.push(rule.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_patterns() {
        let table: &[(&str, &str, &[&str], bool)] = &[
            (
                "cloudco-cli worker list",
                "cloudco-cli",
                &["worker", "list"],
                true,
            ),
            (
                "cloudco-cli worker list",
                "cloudco-cli",
                &["worker", "list", "--all"],
                false,
            ),
            ("cloudco-cli worker list", "cloudco-cli", &["worker"], false),
            (
                "cloudco-cli worker *",
                "cloudco-cli",
                &["worker", "delete"],
                true,
            ),
            ("cloudco-cli worker *", "cloudco-cli", &["worker"], false),
            (
                "cloudco-cli worker *",
                "cloudco-cli",
                &["worker", "a", "b"],
                false,
            ),
            ("cloudco-cli worker **", "cloudco-cli", &["worker"], true),
            (
                "cloudco-cli worker **",
                "cloudco-cli",
                &["worker", "a", "b; rm -rf /"],
                true,
            ),
            (
                "cloudco-cli worker **",
                "cloudco-cli",
                &["auth", "configure"],
                false,
            ),
            (
                "cloudco-cli worker **",
                "/usr/bin/cloudco-cli",
                &["worker"],
                false,
            ),
            ("cloudco-cli", "cloudco-cli", &[], true),
            ("cloudco-cli", "cloudco-cli", &["x"], false),
            ("ping -c *", "ping", &["-c", "3"], true),
            ("ping -c *", "ping", &["-c", "3; id"], true),
            ("ping -c *", "ping", &["-c", "3", "evil.com"], false),
        ];
        for (rule, program, given, want) in table {
            let rule = CommandRule::parse(rule).unwrap();
            assert_eq!(
                rule.allows(program, &args(given)),
                *want,
                "{rule} vs {program} {given:?}"
            );
        }
        assert!(CommandRule::parse("x ** y").is_err());
        assert!(CommandRule::parse("x -** y").is_err());
        assert!(CommandRule::parse("").is_err());
    }

    #[test]
    fn wildcards_never_match_options_unless_the_pattern_has_a_dash() {
        let table: &[(&str, &[&str], bool)] = &[
            (
                "doctl compute droplet list *",
                &["--api-url=https://evil"],
                false,
            ),
            ("doctl compute droplet list *", &["-o"], false),
            ("doctl compute droplet list *", &["--"], false),
            ("doctl compute droplet list *", &["web"], true),
            ("doctl compute droplet list **", &["web", "-o"], false),
            ("doctl compute droplet list **", &["--api-url=x"], false),
            ("doctl compute droplet list **", &["a", "b"], true),
            ("doctl compute droplet list -*", &["-o"], true),
            ("doctl compute droplet list -*", &["web"], false),
            (
                "doctl compute droplet list --output=*",
                &["--output=json"],
                true,
            ),
            (
                "doctl compute droplet list --output=*",
                &["--api-url=x"],
                false,
            ),
            (
                "doctl compute droplet list --output *",
                &["--output", "json"],
                true,
            ),
            (
                "doctl compute droplet list --output *",
                &["--output", "-x"],
                false,
            ),
            (
                "doctl compute droplet list -**",
                &["--api-url=x", "a"],
                true,
            ),
            ("doctl compute droplet list -**", &[], true),
        ];
        for (rule, given, want) in table {
            let rule = CommandRule::parse(rule).unwrap();
            assert_eq!(
                rule.allows(
                    "doctl",
                    &args(&[&["compute", "droplet", "list"], *given].concat())
                ),
                *want,
                "{rule} vs {given:?}"
            );
        }
        // A JSON provider's approved wildcards stand for checked substituted values.
        let mut caps = Capabilities {
            commands: vec![CommandRule::parse("cli --region *").unwrap()],
            ..Capabilities::default()
        };
        let opt = args(&["--region", "-x"]);
        assert!(caps.check_command("cli", &opt).is_err());
        caps.wildcards_match_options = true;
        assert!(caps.check_command("cli", &opt).is_ok());
    }

    #[test]
    fn http_rules() {
        let table: &[(&str, &str, bool)] = &[
            (
                "https://api.example.com",
                "https://api.example.com/v1/servers",
                true,
            ),
            (
                "https://api.example.com",
                "https://api.example.com:443/",
                true,
            ),
            ("https://api.example.com", "http://api.example.com/", false),
            (
                "https://api.example.com",
                "https://api.example.com:8443/",
                false,
            ),
            ("https://api.example.com", "https://evil.com/", false),
            (
                "https://api.example.com",
                "https://api.example.com.evil.com/",
                false,
            ),
            (
                "https://api.example.com",
                "https://user@api.example.com/",
                false,
            ),
            (
                "http://127.0.0.1:8787/api/v2.0",
                "http://127.0.0.1:8787/api/v2.0/pool",
                true,
            ),
            (
                "http://127.0.0.1:8787/api/v2.0",
                "http://127.0.0.1:8787/api/v2.0",
                true,
            ),
            (
                "http://127.0.0.1:8787/api/v2.0",
                "http://127.0.0.1:8787/api/v2.00",
                false,
            ),
            (
                "http://127.0.0.1:8787/api/v2.0",
                "http://127.0.0.1:8787/_sim/faults",
                false,
            ),
            (
                "http://127.0.0.1:8787/api/v2.0",
                "http://127.0.0.1:8787/api/v2.0/../../_sim",
                false,
            ),
            // Encoded separators that hide a climb, for a server that decodes first.
            (
                "http://127.0.0.1:8787/api/v2.0",
                "http://127.0.0.1:8787/api/v2.0/..%2f_sim/faults",
                false,
            ),
            (
                "http://127.0.0.1:8787/api/v2.0",
                "http://127.0.0.1:8787/api/v2.0/x/..%5C..%5Cadmin",
                false,
            ),
            (
                "http://127.0.0.1:8787/api/v2.0",
                "http://127.0.0.1:8787/api/v2.0/images/ubuntu%2F24.04",
                true,
            ),
        ];
        for (rule, url, want) in table {
            let rule = HttpRule::parse(rule).unwrap();
            let url = url::Url::parse(url).unwrap();
            assert_eq!(rule.allows(&url), *want, "{rule} vs {url}");
        }
        assert!(HttpRule::parse("ftp://x").is_err());
        assert!(HttpRule::parse("https://*.example.com").is_err());
    }

    #[test]
    fn grants_never_exceed_requests() {
        let requested = Capabilities {
            commands: vec![CommandRule::parse("cloudco-cli worker **").unwrap()],
            http: vec![HttpRule::parse("https://api.example.com").unwrap()],
            ..Capabilities::default()
        };
        let mut granted = Capabilities::default();
        assert!(granted.check_within(&requested).is_ok());
        granted
            .commands
            .push(CommandRule::parse("cloudco-cli worker **").unwrap());
        assert!(granted.check_within(&requested).is_ok());
        granted
            .commands
            .push(CommandRule::parse("sh -c **").unwrap());
        assert_eq!(
            granted.check_within(&requested).unwrap_err().kind(),
            ErrorKind::CapabilityDenied
        );
    }
}
