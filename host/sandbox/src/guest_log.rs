//! What a guest may put on cpi's log during one run: every copy (`log` calls at their own
//! level, the debug copy of its stdout/stderr, capability-denial warnings) is redacted of the
//! run's secrets, escaped, cut per message and counted against one budget per run; a message
//! repeated back to back is shown once, then summarised.

use std::sync::Mutex;

use cpi::escape;
use cpi::secret::Redactor;

/// Bytes of one guest message (a `log` call, a denial) shown; the rest is cut.
pub const MESSAGE_BYTES: usize = 2 << 10;
/// Bytes of guest text (all copies together) shown on cpi's log per run.
pub const RUN_BYTES: usize = 64 << 10;
/// Capability-denial warnings shown per run; later denials are only counted.
pub const DENIAL_WARNINGS: usize = 8;

/// Bytes looked at past a message's cut, so a secret that starts before the cut is still
/// redacted whole.
const SECRET_MARGIN: usize = 4 << 10;

/// The level a guest message is logged at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `log(trace)`.
    Trace,
    /// `log(debug)`, and the debug copy of guest stdout/stderr.
    Debug,
    /// `log(info)`.
    Info,
    /// `log(warn)` and denial warnings.
    Warn,
    /// `log(error)`.
    Error,
}

impl Level {
    fn enabled(self) -> bool {
        match self {
            Level::Trace => tracing::enabled!(tracing::Level::TRACE),
            Level::Debug => tracing::enabled!(tracing::Level::DEBUG),
            Level::Info => tracing::enabled!(tracing::Level::INFO),
            Level::Warn => tracing::enabled!(tracing::Level::WARN),
            Level::Error => tracing::enabled!(tracing::Level::ERROR),
        }
    }
}

/// The per-run guest log: shared by every hook call of one run.
#[derive(Debug, Default)]
pub struct GuestLog {
    redactor: Redactor,
    state: Mutex<LogState>,
}

#[derive(Debug, Default)]
struct LogState {
    /// Bytes shown so far this run.
    shown: usize,
    /// Whether the "suppressed" notice was given.
    announced: bool,
    /// The last message shown, and how many times it came again since.
    last: Option<(Level, String)>,
    repeats: usize,
    /// Denials seen this run.
    denials: usize,
}

impl GuestLog {
    /// A log that redacts these secret values from everything it shows.
    pub fn new(redactor: Redactor) -> GuestLog {
        GuestLog {
            redactor,
            state: Mutex::default(),
        }
    }

    /// `text` as it may be shown: secrets redacted, then cut to `max` bytes, then escaped
    /// (`multi_line` keeps newlines and tabs).
    pub fn clean(&self, text: &str, max: usize, multi_line: bool) -> String {
        let shown = self.redact_cut(text, max);
        if multi_line {
            escape::text(&shown).into_owned()
        } else {
            escape::line(&shown).into_owned()
        }
    }

    /// `text` with secrets redacted, cut to `max` bytes (only its start is looked at).
    pub fn redact_cut(&self, text: &str, max: usize) -> String {
        let head = prefix(text, max.saturating_add(SECRET_MARGIN));
        let redacted = self.redactor.redact(head);
        if head.len() < text.len() || redacted.len() > max {
            // A secret cut where `head` ends can only survive right before the cut mark,
            // where the redactor's cut rule finds it.
            let cut = format!("{}… ({} bytes in all)", prefix(&redacted, max), text.len());
            self.redactor.redact(&cut)
        } else {
            redacted
        }
    }

    /// A guest `log` call (or the debug copy of its output), within the caps.
    pub fn message(&self, provider: &str, level: Level, text: &str, max: usize) {
        if !level.enabled() {
            return;
        }
        let shown = self.clean(text, max, true);
        let mut state = self.state.lock().expect("guest log lock");
        if state
            .last
            .as_ref()
            .is_some_and(|(l, t)| *l == level && *t == shown)
        {
            state.repeats += 1;
            return;
        }
        flush_repeats(&mut state, provider);
        if state.shown + shown.len() > RUN_BYTES {
            if !state.announced {
                state.announced = true;
                tracing::warn!(
                    provider = %provider,
                    "further guest log output is not shown (at most {} KiB per run)",
                    RUN_BYTES >> 10
                );
            }
            return;
        }
        state.shown += shown.len();
        emit(provider, level, &shown);
        state.last = Some((level, shown));
    }

    /// A capability denial: a warning for the first [`DENIAL_WARNINGS`] of the run.
    pub fn denial(&self, provider: &str, message: &str) {
        let count = {
            let mut state = self.state.lock().expect("guest log lock");
            state.denials += 1;
            state.denials
        };
        if count < DENIAL_WARNINGS {
            let text = format!("capability denied: {message}");
            self.message(provider, Level::Warn, &text, MESSAGE_BYTES / 4);
        } else if count == DENIAL_WARNINGS {
            self.message(
                provider,
                Level::Warn,
                "capability denied again; further denials of this run are not shown",
                MESSAGE_BYTES,
            );
        }
    }

    /// Shows the summary of a message still repeating (at the end of a hook call).
    pub fn flush(&self, provider: &str) {
        let mut state = self.state.lock().expect("guest log lock");
        flush_repeats(&mut state, provider);
    }
}

/// The longest prefix of `text` of at most `max` bytes.
fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn flush_repeats(state: &mut LogState, provider: &str) {
    if state.repeats > 0
        && let Some((level, _)) = state.last
    {
        emit(
            provider,
            level,
            &format!("(the previous message came {} more times)", state.repeats),
        );
    }
    state.repeats = 0;
    state.last = None;
}

fn emit(provider: &str, level: Level, text: &str) {
    match level {
        Level::Trace => tracing::trace!(provider = %provider, "{text}"),
        Level::Debug => tracing::debug!(provider = %provider, "{text}"),
        Level::Info => tracing::info!(provider = %provider, "{text}"),
        Level::Warn => tracing::warn!(provider = %provider, "{text}"),
        Level::Error => tracing::error!(provider = %provider, "{text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_redacts_before_cutting_and_escapes() {
        let log = GuestLog::new(Redactor::new(["hunter2-secret-value".to_string()]));
        let shown = log.clean("key=hunter2-secret-value \u{1b}[2J\u{9b}", 4096, true);
        assert_eq!(shown, "key=[REDACTED] \\u{1b}[2J\\u{9b}");
        // A secret straddling the cut does not survive as a prefix.
        let text = format!("{}hunter2-secret-value", "x".repeat(10));
        let shown = log.clean(&text, 15, false);
        assert!(!shown.contains("hunt"), "{shown}");
    }
}
