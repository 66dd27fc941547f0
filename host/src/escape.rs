//! Making untrusted text safe to show: the one place that decides which characters a provider,
//! a CLI, a server or a guest may not put in front of a person raw.
//!
//! Every string that reaches a terminal or a report from outside cpi (provider names and
//! descriptions, manifest rules, CLI stderr, HTTP error bodies, result cells, guest logs) goes
//! through [`line`] or [`text`]. Characters that could move the cursor, clear the screen, write
//! the clipboard (OSC 52), change the window title, reorder what is displayed (bidi controls)
//! or hide text (zero-width characters) are *escaped*, not stripped, so the real value stays
//! readable: ESC becomes `\u{1b}`. [`json`] does the same for serialized JSON, where
//! `serde_json` leaves C1 controls, DEL and format characters raw inside strings.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must never be shown raw: C0 and C1 controls, DEL, bidi controls and invisible
/// format characters. Newline and tab are included; [`text`] lets those two through.
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        // bidi controls: ALM, LRM/RLM, embeddings and overrides, isolates
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        // invisible format characters: zero-width space/joiners, word joiner and
        // invisible operators, byte-order mark; line and paragraph separators
        | '\u{200b}'..='\u{200d}' | '\u{2060}'..='\u{2064}' | '\u{feff}'
        | '\u{2028}' | '\u{2029}'
    )
}

/// `value` for one line of output (a name, a table cell, a rule): every unsafe character,
/// newline and tab included, becomes a visible `\u{..}` escape (`\n`, `\r`, `\t` as such).
pub fn line(value: &str) -> Cow<'_, str> {
    escape_where(value, is_unsafe)
}

/// Multi-line `value` (stderr of a CLI, an error body, a log message): like [`line`], but
/// newlines and tabs are kept.
pub fn text(value: &str) -> Cow<'_, str> {
    escape_where(value, |c| c != '\n' && c != '\t' && is_unsafe(c))
}

/// One formatted log line (without its final newline) for stderr: like [`line`], but ESC is
/// left to the logger, which escapes every ESC of the text it logs and writes its own for
/// colours; what it leaves raw (`\r`, `\n`, bidi and invisible characters) is escaped here.
pub fn log_line(value: &str) -> Cow<'_, str> {
    escape_where(value, |c| c != '\u{1b}' && is_unsafe(c))
}

/// Serialized JSON with every unsafe character that `serde_json` leaves raw (C1, DEL, bidi
/// and format characters; it already escapes C0) written as a `\uXXXX` escape. The result
/// parses to the same value: such characters can only occur inside JSON strings.
pub fn json(serialized: &str) -> Cow<'_, str> {
    if !serialized.chars().any(is_unsafe) {
        return Cow::Borrowed(serialized);
    }
    let mut out = String::with_capacity(serialized.len() + 16);
    for c in serialized.chars() {
        if is_unsafe(c) {
            // Every unsafe character is in the Basic Multilingual Plane: one \u escape each.
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn escape_where(value: &str, unsafe_char: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !value.chars().any(&unsafe_char) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 16);
    for c in value.chars() {
        if !unsafe_char(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            _ => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_line_keeps_the_loggers_escapes_and_escapes_the_rest() {
        let logged = "\u{1b}[2mINFO\u{1b}[0m failed: boom\r\nWARN forged\u{202e}txt\u{200b}";
        assert_eq!(
            log_line(logged),
            "\u{1b}[2mINFO\u{1b}[0m failed: boom\\r\\nWARN forged\\u{202e}txt\\u{200b}"
        );
    }

    #[test]
    fn line_escapes_terminal_sequences_visibly() {
        let cases = [
            ("web-1", "web-1"),
            ("\u{1b}[2J\u{1b}[H", "\\u{1b}[2J\\u{1b}[H"),
            ("\u{1b}]52;c;ZXZpbA==\u{7}", "\\u{1b}]52;c;ZXZpbA==\\u{7}"),
            ("a\nfake row", "a\\nfake row"),
            ("cr\rover", "cr\\rover"),
            ("c1\u{9b}31m", "c1\\u{9b}31m"),
            ("del\u{7f}", "del\\u{7f}"),
            ("bidi\u{202e}txt.exe", "bidi\\u{202e}txt.exe"),
            ("zero\u{200b}width", "zero\\u{200b}width"),
            ("bom\u{feff}", "bom\\u{feff}"),
            ("ünïcödé ok", "ünïcödé ok"),
        ];
        for (input, want) in cases {
            assert_eq!(line(input), want, "{input:?}");
        }
    }

    #[test]
    fn text_keeps_newlines_and_tabs_but_not_carriage_returns() {
        assert_eq!(text("a\n\tb"), "a\n\tb");
        assert_eq!(text("progress\rdone\u{1b}[K"), "progress\\rdone\\u{1b}[K");
    }

    #[test]
    fn clean_text_is_borrowed() {
        assert!(matches!(line("plain"), Cow::Borrowed(_)));
        assert!(matches!(json("{\"a\":1}"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_escapes_c1_and_format_characters_and_still_parses() {
        let value = serde_json::json!({"name": "x\u{9b}2J\u{202e}y\u{7f}", "n": 1});
        let raw = serde_json::to_string(&value).unwrap();
        let escaped = json(&raw);
        assert!(!escaped.chars().any(is_unsafe), "{escaped}");
        assert!(escaped.contains("\\u009b") && escaped.contains("\\u202e"));
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, value);
    }
}
