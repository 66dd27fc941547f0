//! The review screen (what a provider can do) and the approval prompt, shared by `cpi grant`,
//! `cpi install` and `cpi update`. Every string that came from a provider goes through
//! `escape::line`, so escape sequences show as text instead of moving the cursor.

use std::io::{BufRead, IsTerminal, Read, Write};

use cpi::escape;
use cpi::request::{CommandItem, HttpItem, Request};
use cpi::{Error, ErrorKind, Provider, Result};

/// The lines of a JSON provider's review: what it runs, what it contacts, what it reads.
pub fn lines(
    provider: &Provider,
    request: &Request,
    values: &cpi::template::Values,
) -> Vec<String> {
    let mut out = Vec::new();
    if request.commands.is_empty() {
        out.push("Will run: nothing".to_string());
    } else {
        out.push("Will run:".to_string());
    }
    for item in &request.commands {
        command_lines(&mut out, item);
    }
    out.push(if request.http.is_empty() {
        "Will contact: nothing".to_string()
    } else {
        "Will contact:".to_string()
    });
    for item in &request.http {
        origin_lines(&mut out, item, values);
    }
    let env: Vec<&str> = cpi::exec::gate::BASE_ENV
        .iter()
        .chain(cpi::approval::BASE_ENV)
        .copied()
        .chain(request.env.iter().map(String::as_str))
        .collect();
    out.push(format!(
        "Environment its commands see: {}",
        escape::line(&env.join(" "))
    ));
    if let Some(description) = &provider.description {
        out.push(format!(
            "Description (written by the provider, not checked): {}",
            escape::line(description)
        ));
    }
    out
}

/// How the approval is given: `--yes`, `--approve sha256:<digest>`, or an answer on a
/// terminal.
#[derive(Debug, Clone, Copy, Default)]
pub struct Consent<'a> {
    /// `--yes` (or `--all`): approve without asking.
    pub yes: bool,
    /// `--approve sha256:<digest>`: approve without asking only if what the provider asks for
    /// now has exactly this capability digest (so CI approves one exact set, never growth).
    pub approve: Option<&'a str>,
}

/// `sha256:<hex>`: how a capability digest is shown and given to `--approve`.
pub fn shown_digest(hex: &str) -> String {
    format!("sha256:{hex}")
}

/// Whether `given` (`sha256:<hex>` or the bare hex, any case) names the digest `hex`.
fn digest_matches(given: &str, hex: &str) -> bool {
    let given = given.trim();
    let given = given
        .strip_prefix("sha256:")
        .or_else(|| given.strip_prefix("SHA256:"))
        .unwrap_or(given);
    given.eq_ignore_ascii_case(hex)
}

/// Asks for approval on the terminal when stdin and stderr are both TTYs; `--yes` approves
/// without asking, `--approve` when `capabilities` (the digest of what the provider asks for
/// now) is the one given; without any, approval is refused. Arbitrary code needs the
/// provider's name typed, not just `y`.
pub fn ask(
    consent: Consent<'_>,
    name: &str,
    arbitrary_code: bool,
    capabilities: &str,
) -> Result<()> {
    if consent.yes {
        return Ok(());
    }
    if let Some(given) = consent.approve {
        if digest_matches(given, capabilities) {
            return Ok(());
        }
        return Err(Error::new(
            ErrorKind::CapabilityDenied,
            format!(
                "'{}' was not approved: it asks for capabilities {}, while --approve gave {}. \
                 Review what changed with `cpi grant {}`",
                escape::line(name),
                shown_digest(capabilities),
                escape::line(given),
                escape::line(name)
            ),
        ));
    }
    let refused = |why: &str| {
        Error::new(
            ErrorKind::CapabilityDenied,
            format!(
                "'{}' was not approved: {why}. Approve it on a terminal, or with `cpi grant {} --yes` in a script",
                escape::line(name),
                escape::line(name)
            ),
        )
    };
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(refused("no terminal to ask on"));
    }
    // Input typed before the question was shown never answers it.
    // SAFETY: tcflush on fd 0 only discards pending terminal input.
    unsafe {
        libc::tcflush(0, libc::TCIFLUSH);
    }
    let question = if arbitrary_code {
        format!(
            "{} runs arbitrary code. Type its name to approve it (anything else refuses): ",
            escape::line(name)
        )
    } else {
        format!("Approve {}? [y/N] ", escape::line(name))
    };
    let mut stderr = std::io::stderr();
    let _ = stderr.write_all(question.as_bytes());
    let _ = stderr.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .take(1024)
        .read_line(&mut answer)
        .map_err(|e| Error::internal(format!("cannot read the answer: {e}")))?;
    let answer = answer.trim_end_matches(['\n', '\r']);
    let ok = if arbitrary_code {
        answer == name
    } else {
        matches!(answer, "y" | "Y" | "yes")
    };
    if ok {
        Ok(())
    } else {
        Err(refused("the answer was no"))
    }
}

/// The review of one command a provider runs: its template, the argv it allows, what is
/// flagged about it (arbitrary code loudly), a script it gives a shell, and who uses it.
fn command_lines(out: &mut Vec<String>, item: &CommandItem) {
    let code = item.flags.iter().any(|f| f.is_arbitrary_code());
    let mark = if code { "!!" } else { "  " };
    out.push(format!("{mark} {}", escape::line(&item.template)));
    let rule = item.rule.to_string();
    if rule != item.template {
        out.push(format!("     allowed argv: {}", escape::line(&rule)));
    }
    for flag in &item.flags {
        let loud = if flag.is_arbitrary_code() {
            flag.explain().to_uppercase()
        } else {
            flag.explain().to_string()
        };
        out.push(format!("     {} {loud}", if code { "!!" } else { "- " }));
    }
    if let Some(script) = cpi::template::command_words(&item.template)
        .ok()
        .and_then(|w| w.into_iter().find(|w| w.is_script))
    {
        out.push(format!(
            "     script (sha256 {}):",
            item.script_sha256.as_deref().unwrap_or("")
        ));
        for (i, line) in script.text.lines().enumerate() {
            out.push(format!("     {:>3} | {}", i + 1, escape::line(line)));
        }
    }
    out.push(format!(
        "     used by: {}",
        escape::line(&item.used_by.join(", "))
    ));
}

/// The review of one origin a provider contacts (or the base URL the user configures) and
/// the secrets sent there.
fn origin_lines(out: &mut Vec<String>, item: &HttpItem, values: &cpi::template::Values) {
    let origin = match &item.base_param {
        Some(param) => format!(
            "the base URL you configure ({{{}}}; now {})",
            escape::line(param),
            values
                .get(param)
                .map(|v| escape::line(v).into_owned())
                .unwrap_or_else(|| "not set".into())
        ),
        None => escape::line(&item.origin).into_owned(),
    };
    out.push(format!("   {origin}"));
    if !item.secrets.is_empty() {
        out.push(format!(
            "     secrets sent there: {}",
            escape::line(&item.secrets.join(", "))
        ));
    }
}
