//! Writing to cpi's log.
//!
//! Messages go to the host, which caps their size, strips terminal escapes and shows them
//! with `cpi -v`. A component's stdout and stderr are captured the same way, but these carry
//! a level. Functions take a message; the macros take `format!` arguments:
//!
//! ```
//! use cpi_guest_sdk::log;
//!
//! log::info("listing workers");
//! let region = "us-central";
//! log::debug!("listing workers in {region}");
//! ```

use std::fmt;

use crate::bindings;

/// How important a log message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected that is not (yet) an error.
    Warn,
    /// A failure.
    Error,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        })
    }
}

/// Logs `message` at `level`.
pub fn log(level: Level, message: &str) {
    bindings::log(level, message);
}

/// Logs at [`Level::Trace`].
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Logs at [`Level::Debug`].
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Logs at [`Level::Info`].
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Logs at [`Level::Warn`].
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Logs at [`Level::Error`].
pub fn error(message: &str) {
    log(Level::Error, message);
}

/// Logs `format!` arguments at [`Level::Trace`]: `log::trace!("{x}")`.
#[doc(inline)]
pub use crate::__cpi_log_trace as trace;

/// Logs `format!` arguments at [`Level::Debug`]: `log::debug!("{x}")`.
#[doc(inline)]
pub use crate::__cpi_log_debug as debug;

/// Logs `format!` arguments at [`Level::Info`]: `log::info!("{x}")`.
#[doc(inline)]
pub use crate::__cpi_log_info as info;

/// Logs `format!` arguments at [`Level::Warn`]: `log::warn!("{x}")`.
#[doc(inline)]
pub use crate::__cpi_log_warn as warn;

/// Logs `format!` arguments at [`Level::Error`]: `log::error!("{x}")`.
#[doc(inline)]
pub use crate::__cpi_log_error as error;

#[doc(hidden)]
#[macro_export]
macro_rules! __cpi_log_trace {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Trace, &::std::format!($($arg)+))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __cpi_log_debug {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Debug, &::std::format!($($arg)+))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __cpi_log_info {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Info, &::std::format!($($arg)+))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __cpi_log_warn {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Warn, &::std::format!($($arg)+))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __cpi_log_error {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Error, &::std::format!($($arg)+))
    };
}
