//! The capability request of a JSON provider, derived statically from its targets: which
//! programs it runs with which argument shapes, which origins it contacts (and which secrets go
//! there), which environment variables its commands read, and what deserves a closer look
//! (shells given scripts, interpreters given code, runners, downloads piped into a shell, fixed
//! temp paths, programs run by path).
//!
//! Commands are split with [`crate::template::command_words`], the splitter that runs them, so
//! what a person reviews is what runs. A placeholder becomes `*` (exactly one argument:
//! substitution never adds arguments), while the template is kept for display. A placeholder as
//! the program, or in a URL's scheme or host, refuses the provider.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::policy::{Capabilities, CommandRule, HttpRule};
use crate::provider::{Action, Provider, Target};
use crate::template::{self, TemplateWord};

/// What a provider asks to do, as a person reviews it and a grant records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Programs it runs, one item per distinct rule and template.
    #[serde(default)]
    pub commands: Vec<CommandItem>,
    /// Origins it contacts.
    #[serde(default)]
    pub http: Vec<HttpItem>,
    /// Environment variables its commands read.
    #[serde(default)]
    pub env: Vec<String>,
}

/// One program with an argument shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandItem {
    /// The argv pattern enforced at run time (`*` for a word with a placeholder).
    pub rule: CommandRule,
    /// The template as written, for display.
    pub template: String,
    /// The sha256 of the script a shell is given (`sh -c SCRIPT`), which is shown in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_sha256: Option<String>,
    /// What deserves a closer look.
    #[serde(default)]
    pub flags: Vec<Flag>,
    /// The actions (and steps) that run it.
    #[serde(default)]
    pub used_by: Vec<String>,
}

/// One origin contacted, fixed by the provider or the base URL the user configures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpItem {
    /// `scheme://host:port[/prefix]`, or `{param}` for "the base URL you configure".
    pub origin: String,
    /// The parameter holding the base URL, when the user configures the origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_param: Option<String>,
    /// Secret parameters sent there (in the URL, a header or the body).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// The actions (and steps) that contact it.
    #[serde(default)]
    pub used_by: Vec<String>,
}

/// Something in a command that a reviewer should read closely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// A shell given a script or an interpreter given code: it can do anything.
    ArbitraryCode,
    /// A runner whose arguments are another program (`env`, `sudo`, `xargs`, ...).
    Runner,
    /// Downloads something and runs or unpacks it (`curl ... | sh`).
    DownloadAndRun,
    /// Uses a fixed path in a shared temp directory another user can pre-create.
    FixedTempPath,
    /// Runs a program by absolute path.
    AbsoluteProgram,
    /// Runs a program by a path relative to the working directory (whatever is there).
    RelativeProgram,
}

impl Flag {
    /// Whether the flag means arbitrary code (highlighted, and typed confirmation on review).
    pub fn is_arbitrary_code(self) -> bool {
        matches!(
            self,
            Flag::ArbitraryCode | Flag::DownloadAndRun | Flag::RelativeProgram | Flag::Runner
        )
    }

    /// What the flag means, for people.
    pub fn explain(self) -> &'static str {
        match self {
            Flag::ArbitraryCode => "arbitrary code: a shell or interpreter given a script",
            Flag::Runner => "arbitrary code: a runner whose arguments are another program",
            Flag::DownloadAndRun => "arbitrary code: downloads something and runs or unpacks it",
            Flag::FixedTempPath => {
                "uses a fixed path in a shared temp directory (another user can create it first)"
            }
            Flag::AbsoluteProgram => "runs a program by absolute path",
            Flag::RelativeProgram => {
                "arbitrary code: runs a program by a path relative to the working directory"
            }
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.explain())
    }
}

const SHELLS: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "zsh",
    "ksh",
    "ash",
    "mksh",
    "fish",
    "pwsh",
    "powershell",
    "cmd",
];
const INTERPRETERS: &[&str] = &[
    "python",
    "python2",
    "python3",
    "perl",
    "ruby",
    "node",
    "deno",
    "bun",
    "php",
    "lua",
    "osascript",
    "awk",
    "gawk",
];
const RUNNERS: &[&str] = &[
    "env", "sudo", "doas", "su", "xargs", "nohup", "timeout", "nice", "stdbuf", "time", "watch",
    "busybox", "ssh", "chroot", "setsid", "unshare", "nsenter", "flock",
];

fn base_name(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

/// The flags of one split command template.
fn flags(words: &[TemplateWord]) -> Vec<Flag> {
    let mut out = Vec::new();
    let program = &words[0].text;
    if program.starts_with('/') {
        out.push(Flag::AbsoluteProgram);
    } else if program.contains('/') {
        out.push(Flag::RelativeProgram);
    }
    let base = base_name(program);
    let interp = INTERPRETERS.iter().any(|i| {
        base == *i
            || (base.starts_with(i)
                && base[i.len()..]
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'.'))
    });
    let shell = SHELLS.contains(&base);
    if words.iter().any(|w| w.is_script)
        || (shell && words.len() > 1)
        || (interp && words.len() > 1)
        || words
            .iter()
            .any(|w| matches!(w.text.as_str(), "/c" | "-Command" | "-EncodedCommand"))
    {
        out.push(Flag::ArbitraryCode);
    }
    let kube_exec = matches!(base, "docker" | "podman" | "kubectl")
        && words.iter().any(|w| w.text == "exec" || w.text == "run");
    if RUNNERS.contains(&base)
        || kube_exec
        || (base == "find" && words.iter().any(|w| w.text.starts_with("-exec")))
    {
        out.push(Flag::Runner);
    }
    for word in words {
        let text = &word.text;
        if (text.contains("curl") || text.contains("wget"))
            && word.is_script
            && (pipes_into_code(text) || text.contains("unzip") || text.contains("tar "))
        {
            out.push(Flag::DownloadAndRun);
        }
        if text.contains("/tmp/") || text.contains("/var/tmp/") || text.ends_with("/tmp") {
            out.push(Flag::FixedTempPath);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Whether a script pipes something into a shell or interpreter (`| sh`, `|bash -s`).
fn pipes_into_code(script: &str) -> bool {
    script.split('|').skip(1).any(|after| {
        let first = after
            .split_whitespace()
            .find(|w| *w != "sudo" && !w.starts_with('-'));
        first.is_some_and(|w| {
            let b = base_name(w);
            SHELLS.contains(&b) || INTERPRETERS.iter().any(|i| b.starts_with(i))
        })
    })
}

/// Derives the request of a provider's JSON targets (every action, `pre_exec` and `post_exec`
/// step). Fails when a program or an origin would be chosen by a parameter.
pub fn derive(provider: &Provider) -> Result<Request> {
    let mut request = Request::default();
    for (name, action) in &provider.actions {
        walk(provider, action, name, &mut request)?;
    }
    for name in &provider.env {
        crate::grants::check_env_names(std::slice::from_ref(name))?;
        if !request.env.contains(name) {
            request.env.push(name.clone());
        }
    }
    request.env.sort();
    Ok(request)
}

fn walk(provider: &Provider, action: &Action, at: &str, request: &mut Request) -> Result<()> {
    for (i, step) in action.pre_exec.iter().enumerate() {
        walk(provider, step, &format!("{at}.pre_exec[{i}]"), request)?;
    }
    match &action.target {
        Target::Command(cmd) => add_command(&cmd.command, at, request)?,
        Target::Endpoint(ep) => {
            let mut secrets: Vec<String> = action
                .target
                .placeholders()
                .into_iter()
                .filter(|n| crate::secret::is_secret_name(n, provider))
                .collect();
            secrets.sort();
            add_origin(&ep.url, secrets, at, request)?;
        }
    }
    for (i, step) in action.post_exec.iter().enumerate() {
        walk(provider, step, &format!("{at}.post_exec[{i}]"), request)?;
    }
    Ok(())
}

fn refuse(at: &str, why: String) -> Error {
    Error::new(ErrorKind::CapabilityDenied, format!("action {at}: {why}")).with_detail("action", at)
}

fn add_command(command: &str, at: &str, request: &mut Request) -> Result<()> {
    let words = template::command_words(command).map_err(|e| refuse(at, e.message().into()))?;
    let Some(program) = words.first() else {
        return Err(refuse(at, "the command template is empty".into()));
    };
    if program.has_placeholder {
        return Err(refuse(
            at,
            format!(
                "the program {:?} is chosen by a parameter; cpi never runs a program a value names",
                program.text
            ),
        ));
    }
    let args = words[1..]
        .iter()
        .map(|w| {
            if w.has_placeholder {
                "*".into()
            } else {
                w.text.clone()
            }
        })
        .collect();
    let rule = CommandRule {
        program: program.text.clone(),
        args,
    };
    rule.check()?;
    let script_sha256 = words
        .iter()
        .find(|w| w.is_script)
        .map(|w| hex(&Sha256::digest(w.text.as_bytes())));
    if let Some(item) = request
        .commands
        .iter_mut()
        .find(|c| c.rule == rule && c.template == command)
    {
        item.used_by.push(at.to_string());
        return Ok(());
    }
    request.commands.push(CommandItem {
        flags: flags(&words),
        rule,
        template: command.to_string(),
        script_sha256,
        used_by: vec![at.to_string()],
    });
    Ok(())
}

fn add_origin(url: &str, secrets: Vec<String>, at: &str, request: &mut Request) -> Result<()> {
    let (origin, base_param) = match template::url_base(url) {
        Some(param) => (format!("{{{param}}}"), Some(param.to_string())),
        None => {
            let literal = url.split('{').next().unwrap_or(url);
            let scheme_end = literal.find("://").map(|i| i + 3).unwrap_or(0);
            let templated = literal.len() < url.len();
            if templated && !literal[scheme_end..].contains(['/', '?']) {
                return Err(refuse(
                    at,
                    format!("the URL {url:?} has a placeholder in its scheme, host or port"),
                ));
            }
            // The literal path up to the last whole segment before the first placeholder.
            let cut = literal.split('?').next().unwrap_or(literal);
            let prefix = if !templated || cut.len() < literal.len() {
                cut.to_string()
            } else {
                cut[..cut.rfind('/').unwrap_or(cut.len())].to_string()
            };
            let rule = HttpRule::parse(&prefix).map_err(|e| refuse(at, e.message().into()))?;
            (rule.to_string(), None)
        }
    };
    match request.http.iter_mut().find(|h| h.origin == origin) {
        Some(item) => {
            item.used_by.push(at.to_string());
            for s in secrets {
                if !item.secrets.contains(&s) {
                    item.secrets.push(s);
                }
            }
            item.secrets.sort();
        }
        None => request.http.push(HttpItem {
            origin,
            base_param,
            secrets,
            used_by: vec![at.to_string()],
        }),
    }
    Ok(())
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `sha256:<hex>` of bytes, as pins and lock files record them.
pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

impl Request {
    /// The sha256 of the request's canonical JSON (its identity in grants and `--approve`).
    pub fn digest(&self) -> String {
        sha256(&serde_json::to_vec(self).expect("requests serialize"))
    }

    /// The rules enforced at run time: every derived argv pattern and fixed origin; the
    /// parameters holding configured base URLs.
    pub fn enforced(&self) -> (Capabilities, Vec<String>) {
        let mut caps = Capabilities::default();
        let mut bases = Vec::new();
        for item in &self.commands {
            if !caps.commands.contains(&item.rule) {
                caps.commands.push(item.rule.clone());
            }
        }
        for item in &self.http {
            match &item.base_param {
                Some(param) => bases.push(param.clone()),
                None => {
                    if let Ok(rule) = HttpRule::parse(&item.origin) {
                        caps.http.push(rule);
                    }
                }
            }
        }
        (caps, bases)
    }

    /// Whether anything here is arbitrary code.
    pub fn runs_arbitrary_code(&self) -> bool {
        self.commands
            .iter()
            .any(|c| c.flags.iter().any(|f| f.is_arbitrary_code()))
    }

    /// What `self` asks for that `old` did not: new programs or argument shapes, changed
    /// scripts, new origins or secrets sent there, new environment variables, new flags.
    /// Empty when nothing grew.
    pub fn growth_since(&self, old: &Request) -> Vec<String> {
        let mut grew = Vec::new();
        for item in &self.commands {
            let before = old
                .commands
                .iter()
                .find(|o| o.rule == item.rule && o.script_sha256 == item.script_sha256);
            match before {
                None => grew.push(format!("+ run  {}", item.template)),
                Some(o) => {
                    for flag in item.flags.iter().filter(|f| !o.flags.contains(f)) {
                        grew.push(format!("+ flag {}: {flag}", item.template));
                    }
                }
            }
        }
        for item in &self.http {
            match old.http.iter().find(|o| o.origin == item.origin) {
                None => grew.push(format!("+ contact {}", item.origin)),
                Some(o) => {
                    for s in item.secrets.iter().filter(|s| !o.secrets.contains(s)) {
                        grew.push(format!("+ send secret {s} to {}", item.origin));
                    }
                }
            }
        }
        for name in self.env.iter().filter(|n| !old.env.contains(n)) {
            grew.push(format!("+ env  {name}"));
        }
        grew
    }

    /// Every warning `cpi validate` reports: one line per flagged command.
    pub fn warnings(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for item in &self.commands {
            let at = item.used_by.first().cloned().unwrap_or_default();
            for flag in &item.flags {
                out.push((at.clone(), format!("{flag}: {}", item.template)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn provider(actions: &str) -> Provider {
        let text = format!(r#"{{"name":"p","type":"command","actions":{{{actions}}}}}"#);
        Provider::from_json(&text, Path::new("p.json")).unwrap()
    }

    fn one(command: &str) -> Result<CommandItem> {
        let json = serde_json::to_string(command).unwrap();
        let p = provider(&format!(r#""a":{{"target":{{"Command":{json}}}}}"#));
        derive(&p).map(|r| r.commands[0].clone())
    }

    #[test]
    fn commands_become_argv_patterns_and_flags() {
        let table: &[(&str, &str, &[Flag])] = &[
            (
                "cloudco-cli worker list --output json",
                "cloudco-cli worker list --output json",
                &[],
            ),
            (
                "cloudco-cli worker describe {id} --region={r}",
                "cloudco-cli worker describe * *",
                &[],
            ),
            ("sh -c 'echo {x}'", "sh -c *", &[Flag::ArbitraryCode]),
            (
                "bash -c 'curl -sSL https://x | bash'",
                "bash -c curl -sSL https://x | bash",
                &[Flag::ArbitraryCode, Flag::DownloadAndRun],
            ),
            (
                "env sh -c 'id'",
                "env sh -c id",
                &[Flag::ArbitraryCode, Flag::Runner],
            ),
            (
                "python3 -c 'print(1)'",
                "python3 -c print(1)",
                &[Flag::ArbitraryCode],
            ),
            (
                "/usr/bin/virsh list",
                "/usr/bin/virsh list",
                &[Flag::AbsoluteProgram],
            ),
            ("./run.sh", "./run.sh", &[Flag::RelativeProgram]),
            ("cp {src} /tmp/x", "cp * /tmp/x", &[Flag::FixedTempPath]),
            ("xargs rm", "xargs rm", &[Flag::Runner]),
        ];
        for (template, rule, want) in table {
            let item = one(template).unwrap();
            assert_eq!(item.rule.to_string(), *rule, "{template}");
            assert_eq!(item.flags, *want, "{template}");
        }
        assert!(one("sh -c 'id'").unwrap().script_sha256.is_some());
    }

    #[test]
    fn a_program_chosen_by_a_parameter_is_refused() {
        let err = one("{tool} list").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CapabilityDenied);
        assert!(err.message().contains("chosen by a parameter"), "{err}");
        assert!(one("x{tool} list").is_err());
    }

    #[test]
    fn origins_and_secrets() {
        let p = provider(
            r#""a":{"target":{"Endpoint":{"url":"{api_url}/servers","method":"Get","headers":{"Authorization":"Bearer {api_token}"}}},
               "pre_exec":[{"target":{"Endpoint":{"url":"https://auth.example.com/v1/token?k={api_key}","method":"Post"}}}]},
               "b":{"target":{"Endpoint":{"url":"https://api.example.com/v2/items/{id}","method":"Get"}}}"#,
        );
        let r = derive(&p).unwrap();
        let origins: Vec<&str> = r.http.iter().map(|h| h.origin.as_str()).collect();
        assert_eq!(
            origins,
            [
                "https://auth.example.com:443/v1/token",
                "{api_url}",
                "https://api.example.com:443/v2/items"
            ]
        );
        assert_eq!(r.http[0].secrets, ["api_key"]);
        assert_eq!(r.http[1].secrets, ["api_token"]);
        assert_eq!(r.http[0].used_by, ["a.pre_exec[0]"]);
        let bad =
            provider(r#""a":{"target":{"Endpoint":{"url":"https://{host}/x","method":"Get"}}}"#);
        assert!(derive(&bad).is_err());
    }

    #[test]
    fn growth_is_what_was_not_requested_before() {
        let old = derive(&provider(r#""a":{"target":{"Command":"cli list"}}"#)).unwrap();
        let same = derive(&provider(r#""b":{"target":{"Command":"cli list"}}"#)).unwrap();
        assert!(same.growth_since(&old).is_empty());
        let new = derive(&provider(
            r#""a":{"target":{"Command":"cli list"}},"b":{"target":{"Command":"sh -c 'id'"}}"#,
        ))
        .unwrap();
        assert_eq!(new.growth_since(&old), ["+ run  sh -c 'id'"]);
        let script = derive(&provider(r#""b":{"target":{"Command":"sh -c 'id -u'"}}"#)).unwrap();
        assert_eq!(script.growth_since(&new).len(), 1);
    }
}
