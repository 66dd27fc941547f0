//! Safe parameter substitution into targets — cpi's injection boundary.
//!
//! A parameter value is data, never code, and is substituted exactly once (a value that
//! itself contains `{other}` stays literal):
//! - **Commands** are split into words with shell-word rules *before* substitution, so a value
//!   fills its place inside one word and can never add, remove or split arguments. No shell
//!   runs, so shell syntax (`|`, `;`, `$(...)`) in a template is refused rather than silently
//!   passed on as text. When the program is a shell given a script (`sh -c '...'`), values
//!   inside the script are quoted for the exact shell context they land in. A word that is a
//!   JSON array or object with placeholders in it (a CLI's JSON input form, such as
//!   `--cli-input-json '{"Name":"{name}"}'`) is filled like a JSON body, so a value can never
//!   add structure inside the CLI's own syntax.
//! - **URLs**: a placeholder that starts the URL is the base URL (checked to be absolute
//!   http(s)); every other value is percent-encoded as one path segment or one query value.
//! - **Headers**: values containing CR, LF or NUL are rejected.
//! - **Bodies**: inside a JSON string a value is JSON-escaped; in a bare value position it must
//!   itself be exactly one JSON value. Form-encoded bodies percent-encode every value.

use indexmap::IndexMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::{Error, Result};

/// Resolved parameter values by name.
pub type Values = IndexMap<String, String>;

/// Everything but RFC 3986 unreserved characters is encoded, so a value is always exactly one
/// path segment or one query value.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `value` percent-encoded exactly as URLs and form bodies carry it.
pub(crate) fn encode_component(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// One `{name}` occurrence in a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Placeholder<'a> {
    start: usize,
    end: usize,
    name: &'a str,
}

/// Finds `{identifier}` placeholders; other braces (`{print $1}`, JSON) are plain text.
fn scan(text: &str) -> impl Iterator<Item = Placeholder<'_>> {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            if bytes[i] == b'{' {
                let start = i;
                let mut j = i + 1;
                if j < bytes.len() && (bytes[j].is_ascii_alphabetic() || bytes[j] == b'_') {
                    while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_')
                    {
                        j += 1;
                    }
                    if j < bytes.len() && bytes[j] == b'}' {
                        i = j + 1;
                        return Some(Placeholder {
                            start,
                            end: j + 1,
                            name: &text[start + 1..j],
                        });
                    }
                }
            }
            i += 1;
        }
        None
    })
}

/// The placeholder names in `text`, in order (with repeats).
pub fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    scan(text).map(|p| p.name)
}

fn lookup<'v>(values: &'v Values, name: &str) -> Result<&'v str> {
    values.get(name).map(String::as_str).ok_or_else(|| {
        Error::validation(format!("no value for parameter '{name}'")).with_detail("parameter", name)
    })
}

/// Replaces every placeholder in `text` through `render`, in one pass.
fn substitute(
    text: &str,
    mut render: impl FnMut(Placeholder<'_>) -> Result<String>,
) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for p in scan(text) {
        out.push_str(&text[last..p.start]);
        out.push_str(&render(p)?);
        last = p.end;
    }
    out.push_str(&text[last..]);
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Commands

/// Splits a command template into argv and substitutes values into each word. A value that
/// begins a word and starts with `-` is refused (see [`command_argv_with`]).
pub fn command_argv(template: &str, values: &Values) -> Result<Vec<String>> {
    command_argv_with(template, values, &|_| false)
}

/// [`command_argv`], where `allows_dash(name)` says which parameters may begin a word with
/// `-`: anywhere else, a value that begins an argv word (or a word of a `sh -c` script) and
/// starts with `-` is refused, since the program would read it as an option.
pub fn command_argv_with(
    template: &str,
    values: &Values,
    allows_dash: &dyn Fn(&str) -> bool,
) -> Result<Vec<String>> {
    let words = split_words(template)?;
    if words.is_empty() {
        return Err(Error::validation("command template is empty"));
    }
    let mut argv: Vec<String> = Vec::with_capacity(words.len());
    let mut script_next = false;
    // A shell's script is quoted wherever the shell comes in the command: `sh -c`, but also
    // behind a wrapper (`env sh -c`, `timeout 5 bash -c`, `docker exec box sh -c`).
    let mut shell_seen = false;
    for word in &words {
        let value = if script_next {
            script_next = false;
            quote_into_script(word, values, allows_dash)?
        } else if is_json_word(word) {
            json_document(word, values, "command argument")?
        } else {
            if let Some((name, value)) = leading_value(word, values)? {
                check_leading_dash(&name, value, allows_dash)?;
            }
            substitute(word, |p| lookup(values, p.name).map(str::to_string))?
        };
        if shell_seen && is_command_flag(&value) {
            script_next = true;
        }
        shell_seen |= is_shell(&value);
        argv.push(value);
    }
    Ok(argv)
}

/// The placeholder whose value begins `word` once substituted, with that value: the first
/// with a non-empty value among the placeholders the word starts with (`{a}{b}` with `a`
/// empty begins with `b`'s value).
fn leading_value<'v>(word: &str, values: &'v Values) -> Result<Option<(String, &'v str)>> {
    let mut at = 0;
    for p in scan(word) {
        if p.start != at {
            break;
        }
        let value = lookup(values, p.name)?;
        if !value.is_empty() {
            return Ok(Some((p.name.to_string(), value)));
        }
        at = p.end;
    }
    Ok(None)
}

/// The placeholder a command word starts with, if any (`{name}`, `{name}.img`).
fn leading_placeholder(word: &str) -> Option<&str> {
    scan(word).next().filter(|p| p.start == 0).map(|p| p.name)
}

/// The parameters whose values begin a word of `template` (outside `sh -c` scripts): the
/// values that must not start with `-`.
pub fn leading_placeholders(template: &str) -> Result<Vec<String>> {
    Ok(split_words(template)?
        .iter()
        .filter_map(|w| leading_placeholder(w).map(str::to_string))
        .collect())
}

/// Refuses `value` of `name` starting with `-` where it begins a word, unless allowed.
pub fn check_leading_dash(
    name: &str,
    value: &str,
    allows_dash: &dyn Fn(&str) -> bool,
) -> Result<()> {
    if value.starts_with('-') && !allows_dash(name) {
        return Err(Error::validation(format!(
            "parameter '{name}' must not start with '-': its value begins a command word, where \
             the program would read it as an option (a provider may declare \
             \"allow_leading_dash\": true for it)"
        ))
        .with_detail("parameter", name)
        .with_detail("rule", "leading_dash"));
    }
    Ok(())
}

/// Checks that a command template can run: it splits into words and uses no shell syntax
/// outside a shell script. Placeholders are tried with `0`, a plain word that is also one JSON
/// value (for a bare placeholder in a JSON argument).
pub fn check_command(template: &str) -> Result<()> {
    let values: Values = placeholders(template)
        .map(|n| (n.to_string(), "0".to_string()))
        .collect();
    command_argv(template, &values).map(|_| ())
}

/// One word of a command template, split exactly as [`command_argv`] splits it, before any
/// value is substituted: what a review shows is what runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateWord {
    /// The word with its quotes removed and its placeholders kept (`--region={region}`).
    pub text: String,
    /// Whether a placeholder fills all or part of it.
    pub has_placeholder: bool,
    /// Whether it is the script of a shell given `-c` (values are quoted into it).
    pub is_script: bool,
}

/// Splits a command template into words with [`command_argv`]'s rules, without substituting.
pub fn command_words(template: &str) -> Result<Vec<TemplateWord>> {
    let mut out = Vec::new();
    let (mut script_next, mut shell_seen) = (false, false);
    for text in split_words(template)? {
        let is_script = std::mem::take(&mut script_next);
        if !is_script && shell_seen && is_command_flag(&text) {
            script_next = true;
        }
        shell_seen |= !is_script && is_shell(&text);
        let has_placeholder = scan(&text).next().is_some();
        out.push(TemplateWord {
            has_placeholder,
            is_script,
            text,
        });
    }
    Ok(out)
}

/// The name of the placeholder a URL template starts with (its base URL), if any.
pub fn url_base(template: &str) -> Option<&str> {
    scan(template)
        .next()
        .filter(|p| p.start == 0)
        .map(|p| p.name)
}

/// Whether `program` (a name or path) is a POSIX shell that runs a script given with `-c`.
pub(crate) fn is_shell(program: &str) -> bool {
    let base = program.rsplit('/').next().unwrap_or(program);
    matches!(
        base,
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "ash" | "mksh" | "busybox"
    )
}

/// `-c`, or a combined short-option word containing `c` (`-ec`, `-lc`).
pub(crate) fn is_command_flag(word: &str) -> bool {
    word.len() >= 2
        && word.starts_with('-')
        && !word.starts_with("--")
        && word[1..].bytes().all(|b| b.is_ascii_alphabetic())
        && word.contains('c')
}

/// Splits a template into words with POSIX shell quoting rules, refusing shell operators.
///
/// Hand-written rather than taken from `shell-words`/`shlex` because cpi must also know
/// *where* unquoted shell syntax appears, to refuse it with a precise message.
fn split_words(template: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = template.char_indices().peekable();
    let refuse = |at: usize, what: &str| {
        Error::unsupported(format!(
            "command template uses shell syntax {what} at byte {at}; cpi runs commands without a \
             shell. Wrap the command in sh -c '...' if the provider really needs a shell"
        ))
        .with_detail("template_offset", at)
    };
    while let Some((at, c)) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, c)) => word.push(c),
                        None => return Err(unterminated(at, "single")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, c @ ('$' | '`' | '"' | '\\'))) => word.push(c),
                            Some((_, '\n')) => {}
                            Some((_, c)) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(unterminated(at, "double")),
                        },
                        Some((at, '$')) if is_expansion(chars.peek().map(|&(_, c)| c)) => {
                            return Err(refuse(at, "`$` (expansion)"));
                        }
                        Some((at, '`')) => {
                            return Err(refuse(at, "`` ` `` (command substitution)"));
                        }
                        Some((_, c)) => word.push(c),
                        None => return Err(unterminated(at, "double")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some((_, '\n')) => {}
                    Some((_, c)) => word.push(c),
                    None => word.push('\\'),
                }
            }
            '|' => return Err(refuse(at, "`|` (pipeline)")),
            '&' => return Err(refuse(at, "`&` (background or `&&`)")),
            ';' => return Err(refuse(at, "`;` (command list)")),
            '<' | '>' => return Err(refuse(at, &format!("`{c}` (redirection)"))),
            '(' | ')' => return Err(refuse(at, &format!("`{c}` (subshell)"))),
            '`' => return Err(refuse(at, "`` ` `` (command substitution)")),
            '$' if is_expansion(chars.peek().map(|&(_, c)| c)) => {
                return Err(refuse(at, "`$` (expansion)"));
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn is_expansion(next: Option<char>) -> bool {
    next.is_some_and(|c| c == '(' || c == '{' || c == '_' || c.is_ascii_alphanumeric())
}

fn unterminated(at: usize, kind: &str) -> Error {
    Error::validation(format!(
        "command template has an unterminated {kind} quote starting at byte {at}"
    ))
    .with_detail("template_offset", at)
}

/// Shell contexts a placeholder can land in inside a `sh -c` script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// Top level or inside `$(...)`: the value is single-quoted. The number counts open `(`.
    Plain(u32),
    /// Inside `'...'`: close, insert, reopen.
    Single,
    /// Inside `"..."`: backslash-escape `$`, `` ` ``, `"` and `\`.
    Double,
    /// Inside `` `...` ``: like plain, then escaped once more for the backtick (see
    /// [`escape_for_backtick`]).
    Backtick,
    /// Inside `${...}`: too subtle to quote for; placeholders are refused.
    Opaque,
    /// A `#` comment, up to the end of the line: a newline in a value would end it, so
    /// placeholders are refused.
    Comment,
}

/// Inside backticks the shell removes one level of backslashes (before `\\`, `` ` `` and `$`)
/// before it parses the inner command, so text meant for the inner command is escaped once
/// more per enclosing backtick.
fn escape_for_backtick(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if matches!(c, '\\' | '`' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A value as it appears inside `"..."` in a script.
fn escape_for_double_quotes(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if matches!(c, '$' | '`' | '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Every form in which [`command_argv`] can write `value` into a shell script (so that
/// redaction can find a secret there too).
pub(crate) fn script_forms(value: &str) -> Vec<String> {
    let single = value.replace('\'', r"'\''");
    let double = escape_for_double_quotes(value);
    let in_backticks = [escape_for_backtick(&single), escape_for_backtick(&double)];
    [single, double].into_iter().chain(in_backticks).collect()
}

/// Whether decoded URL path text has a `.` or `..` part between its `/` or `\` separators:
/// text that moves a request elsewhere on a server that decodes before it normalizes.
pub fn climbs(decoded: &str) -> bool {
    decoded
        .split(['/', '\\'])
        .any(|part| part == "." || part == "..")
}

/// Whether a value written at byte `i` of a script begins a word: at a word start, or behind
/// quotes that open there (`"{a}"`, `'{a}'`, `''{a}`).
fn begins_word(bytes: &[u8], i: usize) -> bool {
    let mut j = i;
    while j > 0 && matches!(bytes[j - 1], b'\'' | b'"') {
        j -= 1;
    }
    at_word_start(bytes, j)
}

/// Whether byte `i` of a script starts a word (so a `#` there starts a comment).
fn at_word_start(bytes: &[u8], i: usize) -> bool {
    i == 0
        || matches!(
            bytes[i - 1],
            b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(' | b')' | b'<' | b'>' | b'`'
        )
}

/// Substitutes values into a shell script so each value stays one literal string.
fn quote_into_script(
    script: &str,
    values: &Values,
    allows_dash: &dyn Fn(&str) -> bool,
) -> Result<String> {
    let bytes = script.as_bytes();
    let mut stack = vec![Ctx::Plain(0)];
    let mut out = String::with_capacity(script.len());
    let mut i = 0;
    let mut placeholders = scan(script).peekable();
    // Set after a here-document (`<<`), an ANSI-C string (`$'...'`, which bash and dash parse
    // differently) or a `case` inside `$(...)` (whose pattern `)` would look like the end of
    // the substitution): the rest of the script is not scanned reliably, so any placeholder
    // after it is refused.
    let mut opaque_rest = false;
    // The end of the placeholders that began a word with empty values so far.
    let mut empty_word_until: Option<usize> = None;
    while i < bytes.len() {
        if let Some(p) = placeholders.peek().copied()
            && p.start == i
        {
            placeholders.next();
            let value = lookup(values, p.name)?;
            // Behind an empty value that began a word, this one begins it.
            if begins_word(bytes, i) || empty_word_until == Some(i) {
                check_leading_dash(p.name, value, allows_dash)?;
                empty_word_until = value.is_empty().then_some(p.end);
            }
            let ctx = if opaque_rest {
                Ctx::Opaque
            } else {
                *stack.last().unwrap_or(&Ctx::Opaque)
            };
            let mut text = match ctx {
                Ctx::Plain(_) | Ctx::Backtick => format!("'{}'", value.replace('\'', r"'\''")),
                Ctx::Single => value.replace('\'', r"'\''"),
                Ctx::Double => escape_for_double_quotes(value),
                Ctx::Opaque | Ctx::Comment => {
                    return Err(Error::unsupported(format!(
                        "placeholder {{{}}} is inside ${{...}}, a comment, or after a \
                         here-document, $'...' or a case inside $(...) of a shell script; cpi \
                         cannot quote a value safely there",
                        p.name
                    ))
                    .with_detail("parameter", p.name));
                }
            };
            for _ in stack.iter().filter(|&&c| c == Ctx::Backtick) {
                text = escape_for_backtick(&text);
            }
            out.push_str(&text);
            i = p.end;
            continue;
        }
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        let depth = stack.len();
        let in_backtick = stack.contains(&Ctx::Backtick);
        let top = stack.last_mut().expect("context stack is never empty");
        let mut advance = 1;
        match (*top, c) {
            (Ctx::Comment, b'\n') => {
                stack.pop();
            }
            (Ctx::Comment, _) => {}
            (Ctx::Plain(_) | Ctx::Backtick, b'#') if at_word_start(bytes, i) => {
                stack.push(Ctx::Comment);
            }
            (Ctx::Single, b'\'') => {
                stack.pop();
            }
            (Ctx::Single, _) => {}
            (Ctx::Double, b'"') => {
                stack.pop();
            }
            (Ctx::Double | Ctx::Plain(_) | Ctx::Backtick, b'\\') => {
                // An escaped backtick inside backticks nests a second level of quoting.
                if in_backtick && next == Some(b'`') {
                    opaque_rest = true;
                }
                advance = 2;
            }
            (Ctx::Plain(_) | Ctx::Backtick | Ctx::Opaque, b'$') if next == Some(b'\'') => {
                opaque_rest = true;
            }
            (Ctx::Plain(_), b'c')
                if depth > 1
                    && at_word_start(bytes, i)
                    && script[i..].starts_with("case")
                    && bytes.get(i + 4).is_some_and(u8::is_ascii_whitespace) =>
            {
                opaque_rest = true;
            }
            (Ctx::Double | Ctx::Plain(_) | Ctx::Backtick | Ctx::Opaque, b'$')
                if next == Some(b'(') =>
            {
                stack.push(Ctx::Plain(0));
                advance = 2;
            }
            (Ctx::Double | Ctx::Plain(_) | Ctx::Backtick | Ctx::Opaque, b'$')
                if next == Some(b'{') =>
            {
                stack.push(Ctx::Opaque);
                advance = 2;
            }
            (Ctx::Opaque, b'}') => {
                stack.pop();
            }
            (Ctx::Backtick, b'`') => {
                stack.pop();
            }
            (Ctx::Double | Ctx::Plain(_), b'`') => stack.push(Ctx::Backtick),
            (Ctx::Plain(_) | Ctx::Backtick | Ctx::Opaque, b'\'') => stack.push(Ctx::Single),
            (Ctx::Plain(_) | Ctx::Backtick | Ctx::Opaque, b'"') => stack.push(Ctx::Double),
            (Ctx::Plain(depth), b'(') => *top = Ctx::Plain(depth + 1),
            (Ctx::Plain(0), b')') if depth > 1 => {
                stack.pop();
            }
            (Ctx::Plain(depth), b')') => *top = Ctx::Plain(depth.saturating_sub(1)),
            (Ctx::Plain(_), b'<') if next == Some(b'<') => {
                opaque_rest = true;
                advance = 2;
            }
            _ => {}
        }
        let end = (i + advance).min(bytes.len());
        // Copy whole UTF-8 characters: advance only ever skips ASCII bytes plus one char.
        let end = (end..=bytes.len())
            .find(|&e| script.is_char_boundary(e))
            .unwrap_or(bytes.len());
        out.push_str(&script[i..end]);
        i = end;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// Builds the request URL from a URL template.
pub fn url(template: &str, values: &Values) -> Result<String> {
    let (base, rest) = match scan(template).next() {
        Some(p) if p.start == 0 => {
            let value = lookup(values, p.name)?;
            (Some(check_base_url(p.name, value)?), &template[p.end..])
        }
        _ => (None, template),
    };
    let query_at = rest.find('?').unwrap_or(rest.len());
    let (path, query) = rest.split_at(query_at);

    let mut out = base.unwrap_or_default();
    // Path: each value is one segment; a segment that ends up `.`, `..` or empty because of a
    // value would let the value move the request elsewhere, so it is refused.
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let mut names = Vec::new();
        let rendered = substitute(segment, |p| {
            names.push(p.name.to_string());
            Ok(utf8_percent_encode(lookup(values, p.name)?, COMPONENT).to_string())
        })?;
        // `%2e` is a dot to URL parsers too (`%2e%2e` climbs a level like `..`), and a server
        // that decodes `%2f` or `%5c` before it normalizes sees `..%2fadmin` climb as well.
        let decoded = percent_encoding::percent_decode_str(&rendered).decode_utf8_lossy();
        if let Some(name) = names.first()
            && (decoded.is_empty() || climbs(&decoded))
        {
            return Err(Error::validation(format!(
                "parameter '{name}' would make the URL path segment {rendered:?}; a value must \
                 be a non-empty path segment with no '.' or '..' part"
            ))
            .with_detail("parameter", name.as_str()));
        }
        out.push_str(&rendered);
    }
    out.push_str(&substitute(query, |p| {
        Ok(utf8_percent_encode(lookup(values, p.name)?, COMPONENT).to_string())
    })?);

    // `http::Uri`, which every request goes through, keeps offsets in 16 bits.
    const MAX_URL_LEN: usize = u16::MAX as usize - 1;
    if out.len() > MAX_URL_LEN {
        return Err(Error::validation(format!(
            "the endpoint URL is {} bytes long after substitution; at most {MAX_URL_LEN} bytes \
             can be sent",
            out.len()
        )));
    }
    let parsed = url::Url::parse(&out).map_err(|err| {
        Error::validation(format!(
            "the endpoint URL is not a valid absolute URL: {err}"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::validation(format!(
            "the endpoint URL must use http or https, not '{}'",
            parsed.scheme()
        )));
    }
    Ok(out)
}

fn check_base_url(name: &str, value: &str) -> Result<String> {
    let bad = |why: &str| {
        Error::validation(format!(
            "parameter '{name}' must be an absolute http(s) base URL: {why}"
        ))
        .with_detail("parameter", name)
    };
    let parsed = url::Url::parse(value).map_err(|err| bad(&err.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad(&format!(
            "scheme '{}' is not http or https",
            parsed.scheme()
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("it must not contain '?' or '#'"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains whitespace or control characters"));
    }
    Ok(value.trim_end_matches('/').to_string())
}

/// Substitutes into a header name or value, refusing values that could split the header.
pub fn header(template: &str, values: &Values) -> Result<String> {
    substitute(template, |p| {
        let value = lookup(values, p.name)?;
        if value.contains(['\r', '\n', '\0']) {
            return Err(Error::validation(format!(
                "parameter '{}' contains a line break or NUL and cannot go into an HTTP header",
                p.name
            ))
            .with_detail("parameter", p.name));
        }
        Ok(value.to_string())
    })
}

/// How a body template's values are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// JSON (the default): escaped in strings, a JSON value in bare positions.
    Json,
    /// `application/x-www-form-urlencoded`: every value percent-encoded.
    Form,
}

/// Substitutes values into a body template.
pub fn body(template: &str, values: &Values, kind: BodyKind) -> Result<String> {
    if kind == BodyKind::Form {
        return substitute(template, |p| {
            Ok(utf8_percent_encode(lookup(values, p.name)?, COMPONENT).to_string())
        });
    }
    json_document(template, values, "body")
}

/// Whether a command word is a JSON array or object with placeholders in it, and so is filled
/// as a JSON document ([`json_document`]) rather than as plain text.
fn is_json_word(word: &str) -> bool {
    if scan(word).next().is_none() || !word.trim_start().starts_with(['[', '{']) {
        return false;
    }
    let in_string = string_positions(word);
    let probe = substitute(word, |p| {
        Ok(if in_string(p.start) { "" } else { "0" }.to_string())
    });
    probe.is_ok_and(|probe| {
        serde_json::from_str::<serde_json::Value>(&probe)
            .is_ok_and(|v| v.is_array() || v.is_object())
    })
}

/// Substitutes values into a JSON document (a body, or a command word in a CLI's JSON input
/// form): inside a JSON string a value is JSON-escaped; in a bare position it must be exactly
/// one JSON value.
fn json_document(template: &str, values: &Values, what: &str) -> Result<String> {
    let in_string = string_positions(template);
    let rendered = substitute(template, |p| {
        let value = lookup(values, p.name)?;
        if in_string(p.start) {
            let quoted = serde_json::to_string(value).expect("a string always serializes");
            Ok(quoted[1..quoted.len() - 1].to_string())
        } else {
            let parsed: serde_json::Value = serde_json::from_str(value).map_err(|_| {
                Error::validation(format!(
                    "parameter '{}' appears outside quotes in the JSON {what}, so its value must \
                     be exactly one JSON value (an array, object, number, true, false or null)",
                    p.name
                ))
                .with_detail("parameter", p.name)
            })?;
            Ok(parsed.to_string())
        }
    })?;
    if template_is_json(template, &in_string)
        && serde_json::from_str::<serde_json::Value>(&rendered).is_err()
    {
        // A bare value is one JSON value, but the template text around it may not take every
        // value (`[1{n}]`, `-{n}`): the value does not fit there.
        let Some(bare) = scan(template).find(|p| !in_string(p.start)) else {
            return Err(Error::internal(format!(
                "the substituted JSON {what} is no longer valid JSON"
            )));
        };
        return Err(Error::validation(format!(
            "the JSON {what} is not valid JSON with the value of '{}' in place: the template \
             text next to a placeholder outside quotes must leave room for a whole JSON value",
            bare.name
        ))
        .with_detail("parameter", bare.name));
    }
    Ok(rendered)
}

/// Returns a predicate telling whether a byte offset of `template` is inside a JSON string.
fn string_positions(template: &str) -> impl Fn(usize) -> bool + use<> {
    let mut inside = vec![false; template.len() + 1];
    let mut in_str = false;
    let mut escaped = false;
    for (i, b) in template.bytes().enumerate() {
        inside[i] = in_str;
        if in_str {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
        } else if b == b'"' {
            in_str = true;
        }
    }
    move |at| inside.get(at).copied().unwrap_or(false)
}

fn template_is_json(template: &str, in_string: &impl Fn(usize) -> bool) -> bool {
    let probe = substitute(template, |p| {
        Ok(if in_string(p.start) { "" } else { "0" }.to_string())
    });
    probe.is_ok_and(|probe| serde_json::from_str::<serde_json::Value>(&probe).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> Values {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_value_beginning_a_word_must_not_start_with_a_dash_unless_allowed() {
        let v = values(&[("a", "-rf"), ("b", "ok"), ("e", "")]);
        for t in [
            "rm {a}",
            "rm {a}.img",
            "rm \"{a}\"",
            "sh -c 'rm {a}'",
            "sh -c 'rm \"x\" {a}'",
            "sh -c 'rm \"{a}\"'",
            "sh -c \"rm '{a}'\"",
            "sh -c 'rm \"\"{a}'",
            "rm {e}{a}",
            "sh -c 'rm {e}{a}'",
            "sh -c 'rm \"{e}{a}\"'",
        ] {
            let err = command_argv(t, &v).unwrap_err();
            assert_eq!(err.details()["rule"], "leading_dash", "{t}");
            assert_eq!(err.details()["parameter"], "a", "{t}");
            command_argv_with(t, &v, &|n| n == "a").unwrap();
        }
        for t in [
            "rm --file={a}",
            "rm x{a}",
            "sh -c 'rm x{a}'",
            "echo {b}",
            "rm {b}{a}",
            "sh -c 'rm \"x\"{a}'",
            "sh -c 'rm {b}{a}'",
        ] {
            command_argv(t, &v).unwrap();
        }
        assert_eq!(
            leading_placeholders("x {a} --b={b} {c}.img '{d}'").unwrap(),
            ["a", "c", "d"]
        );
    }

    #[test]
    fn finds_identifier_placeholders_only() {
        let found: Vec<_> = placeholders("a {x} {print $1} {y_2}{} {{z}}").collect();
        assert_eq!(found, vec!["x", "y_2", "z"]);
    }

    #[test]
    fn a_value_fills_exactly_one_argument() {
        let v = values(&[("name", "a b; rm -rf / $(id) 'q'"), ("t", "")]);
        let argv = command_argv("cli create --name {name} --type={t} '{name}x'", &v).unwrap();
        assert_eq!(
            argv,
            vec![
                "cli",
                "create",
                "--name",
                "a b; rm -rf / $(id) 'q'",
                "--type=",
                "a b; rm -rf / $(id) 'q'x"
            ]
        );
    }

    #[test]
    fn values_are_substituted_once() {
        let v = values(&[("a", "{b}"), ("b", "secret")]);
        assert_eq!(command_argv("echo {a}", &v).unwrap(), vec!["echo", "{b}"]);
    }

    #[test]
    fn shell_syntax_outside_a_shell_is_refused() {
        let v = values(&[]);
        for t in [
            "a | b",
            "a; b",
            "a && b",
            "a > f",
            "echo $(id)",
            "echo `id`",
            "echo $HOME",
        ] {
            let err = command_argv(t, &v).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::Unsupported, "{t}");
        }
        // Quoted, they are plain text.
        assert_eq!(
            command_argv("awk '{print $1}' \"a|b\"", &v).unwrap(),
            vec!["awk", "{print $1}", "a|b"]
        );
    }

    #[test]
    fn shell_scripts_quote_values_for_their_context() {
        let v = values(&[("p", "x'; touch /tmp/pwn; echo '\"$(id)`id`")]);
        let argv = command_argv(
            r#"bash -c 'a {p}; b "{p}"; c "$(dirname {p})"; d `echo {p}`'"#,
            &v,
        )
        .unwrap();
        assert_eq!(argv[0..2], ["bash", "-c"]);
        let script = &argv[2];
        assert!(script.starts_with(r#"a 'x'\''; touch"#), "{script}");
        assert!(
            script.contains(r#"b "x'; touch /tmp/pwn; echo '\"\$(id)\`id\`""#),
            "{script}"
        );
        assert!(script.contains(r#"c "$(dirname 'x'\''"#), "{script}");
    }

    #[test]
    fn shell_scripts_behind_wrappers_and_in_backticks_are_quoted() {
        let v = values(&[("p", "a`b\\c$d'e")]);
        let argv = command_argv("env sh -c 'echo {p}'", &v).unwrap();
        assert_eq!(argv[3], r"echo 'a`b\c$d'\''e'");
        // Inside backticks one more level of backslashes is removed before the inner parse.
        let argv = command_argv("sh -c 'x=`echo {p}`'", &v).unwrap();
        assert_eq!(argv[2], r"x=`echo 'a\`b\\c\$d'\\''e'`");
    }

    #[test]
    fn shell_contexts_the_scanner_cannot_follow_are_refused() {
        let v = values(&[("p", "x")]);
        for t in [
            "sh -c 'echo ok # {p}'",
            r#"bash -c "echo $'{p}'""#,
            r#"sh -c 'echo "$(case a in a) echo {p};; esac)"'"#,
            r"sh -c 'echo `echo \`echo {p}\``'",
        ] {
            let err = command_argv(t, &v).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::Unsupported, "{t}");
        }
        // `#` inside a word starts no comment.
        let argv = command_argv("sh -c 'echo a#{p} $#'", &v).unwrap();
        assert_eq!(argv[2], "echo a#'x' $#");
    }

    #[test]
    fn shell_script_placeholders_in_parameter_expansions_are_refused() {
        let v = values(&[("p", "x")]);
        let err = command_argv(r#"sh -c 'echo "${X:-{p}}"'"#, &v).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Unsupported);
    }

    #[test]
    fn urls_encode_values_as_one_segment_or_query_value() {
        let v = values(&[
            ("api_url", "http://h:1/api/v2.0/"),
            ("id", "a/b?c#d&e"),
            ("q", "x&y=z"),
        ]);
        assert_eq!(
            url("{api_url}/pool/id/{id}?f={q}", &v).unwrap(),
            "http://h:1/api/v2.0/pool/id/a%2Fb%3Fc%23d%26e?f=x%26y%3Dz"
        );
        for bad in ["..", ".", "", "../../admin", "..\\..\\admin", "a/./b"] {
            let v = values(&[("api_url", "http://h"), ("id", bad)]);
            assert!(url("{api_url}/x/{id}/start", &v).is_err(), "{bad:?}");
        }
        // A value with separators but no climb stays one encoded segment.
        let v = values(&[("api_url", "http://h"), ("id", "ubuntu/24.04..x")]);
        assert_eq!(
            url("{api_url}/images/{id}", &v).unwrap(),
            "http://h/images/ubuntu%2F24.04..x"
        );
        for bad in [
            "file:///etc/passwd",
            "h:80",
            "http://h/?x=1",
            "javascript:alert(1)",
        ] {
            let v = values(&[("api_url", bad)]);
            assert!(url("{api_url}/x", &v).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_refuse_line_breaks() {
        let v = values(&[("k", "abc\r\nX-Evil: 1")]);
        assert!(header("Bearer {k}", &v).is_err());
    }

    #[test]
    fn json_bodies_escape_strings_and_require_json_in_bare_positions() {
        let v = values(&[("name", "a\"b\\c\n"), ("disks", "[\"sda\", \"sdb\"]")]);
        let body = body(r#"{"name":"{name}","disks":{disks}}"#, &v, BodyKind::Json).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["name"], "a\"b\\c\n");
        assert_eq!(parsed["disks"][1], "sdb");

        let v = values(&[("disks", "1, \"x\": 2")]);
        let err = super::body(r#"{"disks":{disks}}"#, &v, BodyKind::Json).unwrap_err();
        assert!(err.message().contains("disks"));

        // One JSON value that does not fit next to the template's own text used to be
        // reported as an internal error (found while writing the fuzz targets' checks).
        for (template, value) in [("[1{n}]", "[]"), (r#"{"offset": -{n}}"#, "-5")] {
            let err = super::body(template, &values(&[("n", value)]), BodyKind::Json).unwrap_err();
            assert_eq!(
                err.kind(),
                crate::error::ErrorKind::Validation,
                "{template}"
            );
            assert_eq!(err.details()["parameter"], "n");
        }
    }

    #[test]
    fn json_command_words_keep_each_value_one_json_string() {
        // A CLI's JSON input form: a value is one JSON string whatever it contains, so the
        // CLI's parser sees exactly one tag (issue 13: shorthand let a name add a second tag).
        let template = r#"aws ec2 run-instances --tag-specifications '[{"ResourceType":"instance","Tags":[{"Key":"Name","Value":"{name}"}]}]' --cli-input-json '{"MaxCount": {n}, "Id": "{name}"}'"#;
        for name in [
            "evil},{Key=Owner,Value=attacker",
            r#"evil"}]},{"ResourceType":"instance","Tags":[{"Key":"Owner","Value":"x"#,
            "a,b",
            "k=v [x] {y} \\ \"q\" \n\u{1}",
            "file:///etc/passwd",
            "-flag",
            "{n}",
        ] {
            let argv = command_argv(template, &values(&[("name", name), ("n", "1")])).unwrap();
            assert_eq!(argv.len(), 7, "{name:?}: {argv:?}");
            let tags: serde_json::Value = serde_json::from_str(&argv[4]).unwrap();
            assert_eq!(tags.as_array().unwrap().len(), 1, "{name:?}");
            assert_eq!(tags[0]["Tags"].as_array().unwrap().len(), 1, "{name:?}");
            assert_eq!(tags[0]["Tags"][0]["Value"], name, "{name:?}");
            let input: serde_json::Value = serde_json::from_str(&argv[6]).unwrap();
            assert_eq!(
                input,
                serde_json::json!({"MaxCount": 1, "Id": name}),
                "{name:?}"
            );
        }
    }

    #[test]
    fn json_command_words_take_one_json_value_in_bare_positions() {
        let template = r#"cli '{"Size": {n}}'"#;
        for (n, ok) in [
            ("10", true),
            ("[1, 2]", true),
            ("10, \"Iops\": 1", false),
            ("x", false),
            ("", false),
        ] {
            let result = command_argv(template, &values(&[("n", n)]));
            match result {
                Ok(argv) => {
                    assert!(ok, "{n:?} was accepted: {argv:?}");
                    let doc: serde_json::Value = serde_json::from_str(&argv[1]).unwrap();
                    assert_eq!(doc.as_object().unwrap().len(), 1, "{n:?}");
                }
                Err(err) => {
                    assert!(!ok, "{n:?} was refused: {err}");
                    assert_eq!(err.kind(), crate::error::ErrorKind::Validation, "{n:?}");
                    assert_eq!(err.details()["parameter"], "n");
                }
            }
        }
        // `cpi validate` tries a template with a value that fits a bare JSON position too.
        assert!(check_command(template).is_ok());
    }

    #[test]
    fn only_json_arrays_and_objects_with_placeholders_are_json_words() {
        let v = values(&[("x", "a\"b,c}")]);
        // (word template, substituted as plain text?)
        for (word, plain) in [
            ("{x}", true),
            ("{x}{x}", true),
            ("Key=Name,Value={x}", true),
            ("[{x}", true),
            ("--filter={\"a\":\"{x}\"}", true),
            ("{\"a\":\"{x}\"}", false),
            ("[\"{x}\"]", false),
            (" [\"{x}\", 1]", false),
        ] {
            let argv = command_argv(&format!("cli '{word}'"), &v).unwrap();
            let expected = if plain {
                word.replace("{x}", "a\"b,c}")
            } else {
                word.replace("{x}", r#"a\"b,c}"#)
            };
            assert_eq!(argv[1], expected, "{word}");
        }
    }

    #[test]
    fn percent_encoded_dots_in_the_template_cannot_make_a_dot_segment() {
        // `%2e` is `.` to URL parsers: an empty value must not leave `%2e%2e` (`..`) behind.
        for template in [
            "http://h/a/%2e%2e{id}/b",
            "http://h/a/%2E{id}/b",
            "http://h/.%2e{id}",
        ] {
            let err = url(template, &values(&[("id", "")])).unwrap_err();
            assert_eq!(
                err.kind(),
                crate::error::ErrorKind::Validation,
                "{template}"
            );
        }
        assert_eq!(
            url("http://h/a/%2e{id}/b", &values(&[("id", "x")])).unwrap(),
            "http://h/a/%2ex/b"
        );
    }
}
